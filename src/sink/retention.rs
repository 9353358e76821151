//! How long readings are kept (`RETENTION` in the settings), as whole months of partitions.

use chrono::{DateTime, Months, TimeDelta, Utc};

/// How long readings are kept (`RETENTION`): a number of days (`400d`, `400 days`) or of
/// calendar months (`18 months`). Readings are dropped a whole monthly partition at a
/// time, once every reading it can hold is older than the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Days(u32),
    Months(u32),
}

impl Retention {
    /// The moment before which readings may go, `now` minus the retention.
    pub fn horizon(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Retention::Days(n) => now - TimeDelta::days(i64::from(n)),
            Retention::Months(n) => now
                .checked_sub_months(Months::new(n))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retention::Days(n) => write!(f, "{n} days"),
            Retention::Months(1) => write!(f, "1 month"),
            Retention::Months(n) => write!(f, "{n} months"),
        }
    }
}

/// What `RETENTION` accepts, for error messages.
pub const RETENTION_EXPECTED: &str =
    "a number of days or months such as 400d, 400 days or 18 months (at most 100000 days)";

impl std::str::FromStr for Retention {
    type Err = ();

    /// `N` followed by `d`, `day`, `days`, `month` or `months`, with or without a space;
    /// N from 1. Nothing else: `18m` could mean minutes, so it is refused.
    fn from_str(text: &str) -> Result<Self, ()> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let n: u32 = number.parse().map_err(|_| ())?;
        if n == 0 || n > 100_000 {
            return Err(());
        }
        match unit.trim_start() {
            "d" | "day" | "days" => Ok(Retention::Days(n)),
            "month" | "months" if n <= 100_000 / 30 => Ok(Retention::Months(n)),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_takes_days_or_months_and_nothing_vague() {
        assert_eq!("400d".parse(), Ok(Retention::Days(400)));
        assert_eq!("400 days".parse(), Ok(Retention::Days(400)));
        assert_eq!("1 day".parse(), Ok(Retention::Days(1)));
        assert_eq!("18 months".parse(), Ok(Retention::Months(18)));
        assert_eq!("18months".parse(), Ok(Retention::Months(18)));
        for bad in [
            "",
            "0d",
            "18m",
            "18",
            "d",
            "-5d",
            "1.5d",
            "18 mo",
            "1 year",
            "400 Days",
            "99999999d",
        ] {
            assert_eq!(bad.parse::<Retention>(), Err(()), "{bad}");
        }
    }

    #[test]
    fn the_horizon_is_now_minus_the_retention() {
        let now: DateTime<Utc> = "2026-03-31T12:00:00Z".parse().unwrap();
        assert_eq!(
            Retention::Days(31).horizon(now),
            "2026-02-28T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // Calendar months, clamped to the shorter month's end.
        assert_eq!(
            Retention::Months(1).horizon(now),
            "2026-02-28T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(Retention::Months(18).to_string(), "18 months");
    }
}
