//! Checks of a profile's `[shape]`: wide, or long (entity or metric style), and the
//! measures a long profile gives values to.

use super::*;

impl Checker<'_> {
    pub(super) fn shape(&mut self, s: &ShapeSpec) -> Shape {
        let long_keys = s.value.is_some()
            || s.metric.is_some()
            || s.entity.is_some()
            || s.entity_pattern.is_some()
            || !s.metrics.is_empty();
        match s.kind.as_deref().unwrap_or("wide") {
            "wide" => {
                if long_keys {
                    self.fail(
                        "shape",
                        "value, metric, entity, entity_pattern and metrics are for a long \
                         file: add shape.kind = \"long\"",
                    );
                }
                return Shape::Wide;
            }
            "long" => {}
            other => {
                self.fail(
                    "shape.kind",
                    format!("{other:?}: expected \"wide\" or \"long\""),
                );
                return Shape::Wide;
            }
        }
        let value = s.value.clone().unwrap_or_else(|| {
            self.fail(
                "shape.value",
                "a long profile needs the column holding the values: shape.value = \"value\"",
            );
            String::new()
        });
        let key = self.long_key(s);
        let mut metrics = Vec::new();
        for (text, measure) in &s.metrics {
            if measure_target(measure).is_none() {
                self.fail(
                    format!("shape.metrics.{text}"),
                    format!(
                        "{measure:?} is not a measure name: temperature, humidity, pressure, \
                         or a further measure's name (letters, digits and _)"
                    ),
                );
            }
            metrics.push((text.clone(), measure.clone()));
        }
        Shape::Long(LongRule {
            value,
            key,
            metrics,
        })
    }

    /// What names the measure of a long profile's rows: a metric column, or an entity
    /// column read by a pattern.
    fn long_key(&mut self, s: &ShapeSpec) -> LongKey {
        match (&s.metric, &s.entity) {
            (Some(metric), None) => {
                if s.entity_pattern.is_some() {
                    self.fail("shape.entity_pattern", "only with shape.entity");
                }
                LongKey::Metric(metric.clone())
            }
            (None, Some(entity)) => {
                let pattern = self.entity_pattern(s);
                match pattern {
                    Some(pattern) => LongKey::Entity {
                        column: entity.clone(),
                        pattern,
                    },
                    None => LongKey::Metric(String::new()),
                }
            }
            _ => {
                self.fail(
                    "shape",
                    "a long profile needs exactly one of metric (the column naming the \
                     measure) or entity (the column naming sensor and measure)",
                );
                LongKey::Metric(String::new())
            }
        }
    }

    /// The pattern of `shape.entity_pattern`, with its groups `sensor` and `measure`.
    fn entity_pattern(&mut self, s: &ShapeSpec) -> Option<Regex> {
        match s.entity_pattern.as_deref().map(Regex::new) {
            None => {
                self.fail(
                    "shape.entity_pattern",
                    "shape.entity needs a pattern with the groups sensor and measure: \
                     '^sensor\\.(?P<sensor>.+)_(?P<measure>temperature|humidity)$'",
                );
                None
            }
            Some(Err(e)) => {
                self.fail(
                    "shape.entity_pattern",
                    format!("not a regular expression: {e}"),
                );
                None
            }
            Some(Ok(re)) => {
                let names: Vec<&str> = re.capture_names().flatten().collect();
                let lacking: Vec<&str> = ["sensor", "measure"]
                    .into_iter()
                    .filter(|g| !names.contains(g))
                    .collect();
                if lacking.is_empty() {
                    Some(re)
                } else {
                    self.fail(
                        "shape.entity_pattern",
                        format!(
                            "the pattern needs the named groups sensor and measure \
                             ((?P<sensor>...), (?P<measure>...)); it lacks {}",
                            lacking.join(" and ")
                        ),
                    );
                    None
                }
            }
        }
    }

    /// The measures of a long profile: its `[measures]` tables, then every measure
    /// `shape.metrics` names without a table (canonical unit, or none); without
    /// `shape.metrics`, the three canonical measures are always there.
    pub(super) fn long_measures(&mut self, rule: &LongRule, measures: &mut Vec<MeasureRule>) {
        if !rule.metrics.is_empty() {
            for m in measures.iter() {
                if !rule.metrics.iter().any(|(_, name)| *name == m.name) {
                    self.fail(
                        format!("measures.{}", m.name),
                        "shape.metrics maps no metric to this measure: no row would give it",
                    );
                }
            }
        }
        let mut wanted: Vec<&str> = rule.metrics.iter().map(|(_, n)| n.as_str()).collect();
        if wanted.is_empty() {
            wanted = vec!["temperature", "humidity", "pressure"];
        }
        for name in wanted {
            if measures.iter().any(|m| m.name == name) {
                continue;
            }
            let Some(target) = measure_target(name) else {
                continue;
            };
            measures.push(MeasureRule {
                name: name.to_owned(),
                target,
                column: None,
                unit: None,
                unit_text: None,
                missing: Vec::new(),
                range: None,
            });
        }
    }
}
