//! A file's date order, decided from all of its values.

use super::{DateOrder, OrderEvidence};

/// Collects the [`OrderEvidence`] of one file's values; [`OrderTally::verdict`] says
/// whether the file's day/month dates can be read.
///
/// Keeps the smallest line of each kind of evidence, so the verdict does not depend on
/// the order in which values are noted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderTally {
    day_first: Option<u64>,
    month_first: Option<u64>,
    ambiguous: Option<u64>,
}

/// What a file's values say about its date order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderVerdict {
    /// No value needed an order: nothing to decide.
    Unneeded,
    /// Some value proves the order and none contradicts it; `line` is the first proof.
    /// Values flagged ambiguous were read day-first: with [`DateOrder::Mdy`] they must be
    /// read again in that order.
    Proven { order: DateOrder, line: u64 },
    /// Some values can be read either way and none proves the order: refuse the file
    /// unless a profile declares the order.
    Ambiguous { first_line: u64 },
    /// One value is day-first (first field over 12), another month-first (second field
    /// over 12): the file mixes orders.
    Conflicting {
        day_first_line: u64,
        month_first_line: u64,
    },
}

impl OrderTally {
    /// Records what the value on `line` said.
    pub fn note(&mut self, evidence: OrderEvidence, line: u64) {
        let slot = match evidence {
            OrderEvidence::NotNeeded => return,
            OrderEvidence::DayFirst => &mut self.day_first,
            OrderEvidence::MonthFirst => &mut self.month_first,
            OrderEvidence::Ambiguous => &mut self.ambiguous,
        };
        *slot = Some(slot.map_or(line, |l| l.min(line)));
    }

    /// The decision for the whole file, from everything noted so far.
    pub fn verdict(&self) -> OrderVerdict {
        match (self.day_first, self.month_first, self.ambiguous) {
            (Some(day_first_line), Some(month_first_line), _) => OrderVerdict::Conflicting {
                day_first_line,
                month_first_line,
            },
            (Some(line), None, _) => OrderVerdict::Proven {
                order: DateOrder::Dmy,
                line,
            },
            (None, Some(line), _) => OrderVerdict::Proven {
                order: DateOrder::Mdy,
                line,
            },
            (None, None, Some(first_line)) => OrderVerdict::Ambiguous { first_line },
            (None, None, None) => OrderVerdict::Unneeded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderEvidence::{Ambiguous, DayFirst, MonthFirst, NotNeeded};

    fn verdict(notes: &[(OrderEvidence, u64)]) -> OrderVerdict {
        let mut t = OrderTally::default();
        for &(e, line) in notes {
            t.note(e, line);
        }
        t.verdict()
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(&[]), OrderVerdict::Unneeded);
        assert_eq!(verdict(&[(NotNeeded, 2)]), OrderVerdict::Unneeded);
        assert_eq!(
            verdict(&[(Ambiguous, 2), (Ambiguous, 3), (NotNeeded, 4)]),
            OrderVerdict::Ambiguous { first_line: 2 }
        );
        assert_eq!(
            verdict(&[(Ambiguous, 2), (MonthFirst, 40), (MonthFirst, 41)]),
            OrderVerdict::Proven {
                order: DateOrder::Mdy,
                line: 40
            }
        );
        assert_eq!(
            verdict(&[(DayFirst, 9), (Ambiguous, 2)]),
            OrderVerdict::Proven {
                order: DateOrder::Dmy,
                line: 9
            }
        );
        assert_eq!(
            verdict(&[(DayFirst, 9), (MonthFirst, 40), (DayFirst, 3)]),
            OrderVerdict::Conflicting {
                day_first_line: 3,
                month_first_line: 40
            }
        );
    }
}
