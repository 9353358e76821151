//! The plan of a long file: where its value, measure and sensor are, and which
//! measures it can give.

use super::*;

impl Builder<'_> {
    /// The value and key columns of a long file (`None` for one not found, reported).
    pub(super) fn long_columns(&mut self, rule: &LongRule) -> (Option<usize>, Option<LongKeyPlan>) {
        let column = |this: &mut Self, key: &str, name: &str| match this.find(name) {
            Some(i) => {
                this.used[i] = true;
                Some(i)
            }
            None => {
                this.missing_profile_column(key, name);
                None
            }
        };
        let value = column(self, "shape.value", &rule.value);
        let key = match &rule.key {
            LongKey::Metric(name) => column(self, "shape.metric", name).map(LongKeyPlan::Metric),
            LongKey::Entity {
                column: name,
                pattern,
            } => column(self, "shape.entity", name).map(|index| LongKeyPlan::Entity {
                index,
                pattern: pattern.clone(),
            }),
        };
        (value, key)
    }

    /// In a long file only the columns read must have unique names: other columns
    /// (a Home Assistant export's attribute columns) may repeat a name.
    pub(super) fn used_names_unique(&mut self) {
        let names = &self.header.names;
        for i in (0..names.len()).filter(|&i| self.used[i]) {
            if let Some(j) =
                (0..names.len()).find(|&j| j != i && names[j].eq_ignore_ascii_case(&names[i]))
            {
                self.errors.push(FileError::DuplicateHeader {
                    name: names[i].clone(),
                    first: i.min(j) + 1,
                    second: i.max(j) + 1,
                });
            }
        }
    }

    /// The measures of a long profile (the value column's index is set by the caller),
    /// canonical ones first.
    pub(super) fn long_measures(&mut self) -> Vec<MeasurePlan> {
        let mut out: Vec<MeasurePlan> = self
            .profile
            .measures
            .iter()
            .map(|rule| {
                let (unit, unit_text, range) = match &rule.target {
                    MeasureTarget::Canonical(q) => (
                        rule.unit.filter(|u| *u != q.canonical_unit()),
                        Some(rule.unit.unwrap_or(q.canonical_unit()).name().to_owned()),
                        Some(rule.range.unwrap_or(configured(&self.cx.ranges, *q))),
                    ),
                    MeasureTarget::Further(_) => (None, rule.unit_text.clone(), rule.range),
                };
                MeasurePlan {
                    name: rule.name.clone(),
                    target: rule.target.clone(),
                    index: 0,
                    unit,
                    unit_text,
                    range,
                    missing: rule.missing.clone(),
                }
            })
            .collect();
        out.sort_by_key(measure_order);
        out
    }
}
