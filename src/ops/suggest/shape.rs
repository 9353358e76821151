//! The shape: long (one value per row, named by an entity or a metric column) or wide,
//! and the `[shape]` section of a long file.

use std::collections::BTreeMap;

use crate::units::{UnitMarker, quantity_word, split_header_unit};

use super::further;
use super::measures::{Measure, wider_range};
use super::out::{Out, inline_table, lit, s};
use super::{Ctx, SuggestError, fmt, is_reserved, min_max};

/// The columns of a long file, found by their names.
pub(super) struct Columns {
    pub(super) value: Option<usize>,
    pub(super) entity: Option<usize>,
    pub(super) metric: Option<usize>,
}

impl Columns {
    pub(super) fn find(cx: &Ctx) -> Columns {
        let (header, stats) = (cx.header, &cx.stats);
        let number = |s: &str| cx.number(s);
        // Shape: long (entity or metric) or wide.
        let find = |names: &[&str]| {
            header
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        // WinCC and other historians: VarName/TagName, VarValue/TagValue.
        let value_col = find(&[
            "state", "value", "_value", "val", "reading", "varvalue", "tagvalue",
        ]);
        let entity_col = find(&["entity_id", "entity"]).filter(|&c| {
            stats[c]
                .values
                .iter()
                .all(|(_, v)| v.contains('.') && number(v).is_none())
        });
        let metric_col = find(&[
            "metric", "measure", "_field", "field", "variable", "element", "quantity", "varname",
            "tagname",
        ])
        .filter(|&c| !stats[c].mostly_numeric());
        Columns {
            value: value_col,
            entity: entity_col,
            metric: metric_col,
        }
    }

    /// One value per row: a value column and an entity or a metric column.
    pub(super) fn is_long(&self) -> bool {
        self.value.is_some() && (self.entity.is_some() || self.metric.is_some())
    }
}

/// Writes the `[shape]` section of a long file; returns the measures whose unit a
/// metric name gives. Fails when no entity or metric names a measure.
pub(super) fn write_long(
    out: &mut Out,
    cx: &Ctx,
    cols: &Columns,
) -> Result<Vec<Measure>, SuggestError> {
    let header = cx.header;
    let mut measures: Vec<Measure> = Vec::new();
    let value = cols.value.unwrap_or(0);
    out.section("shape");
    out.kv("kind", &s("long"), Some("one value per row"));
    out.kv("value", &s(&header[value]), None);
    if let Some(e) = cols.entity {
        entity(out, cx, e)?;
    } else if let Some(m) = cols.metric {
        metric(out, cx, m, value, &mut measures)?;
    }
    Ok(measures)
}

/// The entity column `e`: Home Assistant's `sensor.<name>_<measure>`.
fn entity(out: &mut Out, cx: &Ctx, e: usize) -> Result<(), SuggestError> {
    let (header, stats) = (cx.header, &cx.stats);
    let mut words: Vec<String> = Vec::new();
    let mut metrics: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = 0;
    for (_, v) in &stats[e].values {
        let Some(rest) = v.strip_prefix("sensor.") else {
            continue;
        };
        seen += 1;
        let Some((_, word)) = rest.rsplit_once('_') else {
            continue;
        };
        if let Some(q) = quantity_word(word)
            && !words.iter().any(|w| w == word)
        {
            words.push(word.to_owned());
            if word != q.name() {
                metrics.insert(word.to_owned(), q.name().to_owned());
            }
        }
    }
    if words.is_empty() {
        return Err(SuggestError::NoMeasure);
    }
    out.kv(
        "entity",
        &s(&header[e]),
        Some(&format!("{seen} sensor.* entities in the sample")),
    );
    let pattern = format!(
        "^sensor\\.(?P<sensor>.+)_(?P<measure>{})$",
        words
            .iter()
            .map(|w| regex::escape(w))
            .collect::<Vec<_>>()
            .join("|")
    );
    out.kv(
        "entity_pattern",
        &lit(&pattern),
        Some("entity names end in the measure"),
    );
    if !metrics.is_empty() {
        out.kv("metrics", &inline_table(&metrics), None);
    }
    Ok(())
}

/// The metric column `m`: each metric name mapped to a quantity or a name of its own.
fn metric(
    out: &mut Out,
    cx: &Ctx,
    m: usize,
    value: usize,
    measures: &mut Vec<Measure>,
) -> Result<(), SuggestError> {
    // The values of one metric, missing codes left out.
    let values_of = |n: &str| -> Vec<f64> {
        cx.data
            .iter()
            .filter(|l| l.fields[m] == n && !cx.is_missing(&l.fields[value]))
            .filter_map(|l| cx.number(&l.fields[value]))
            .collect()
    };
    let (header, stats) = (cx.header, &cx.stats);
    let mut metrics: BTreeMap<String, String> = BTreeMap::new();
    let mut names: Vec<String> = stats[m].values.iter().map(|(_, v)| v.clone()).collect();
    names.sort();
    names.dedup();
    for n in names.iter().take(50) {
        let (base, marker) = split_header_unit(n);
        let q = quantity_word(&base).or_else(|| quantity_word(n));
        let target = match q {
            Some(q) if !metrics.values().any(|t| t == q.name()) => {
                let unit = match &marker {
                    Some(UnitMarker::Known(u)) if u.quantity() == q => Some(*u),
                    _ => None,
                };
                let vals = values_of(n);
                let range = wider_range(q, unit.unwrap_or(q.canonical_unit()), &vals);
                let named_unit = unit.filter(|u| *u != q.canonical_unit());
                if named_unit.is_some() || range.is_some() {
                    let why = match (named_unit, min_max(&vals)) {
                        (Some(u), _) => format!("metric {n:?}: unit {} from its name", u.name()),
                        (None, Some((lo, hi))) => format!(
                            "metric {n:?}: values {}–{}, read as {}",
                            fmt(lo),
                            fmt(hi),
                            q.canonical_unit().name()
                        ),
                        (None, None) => format!("metric {n:?}"),
                    };
                    measures.push(Measure {
                        name: q.name().to_owned(),
                        column: None,
                        unit: named_unit.map(|u| u.name().to_owned()),
                        range,
                        why,
                    });
                }
                q.name().to_owned()
            }
            _ => {
                let (k, unit) = further::name_and_unit(n, None);
                if k.is_empty() || metrics.values().any(|t| *t == k) || is_reserved(&k) {
                    continue;
                }
                if let Some(u) = unit {
                    measures.push(Measure {
                        name: k.clone(),
                        column: None,
                        unit: Some(u.clone()),
                        range: None,
                        why: format!("metric {n:?}: a further measure in {u}, from its name"),
                    });
                }
                k
            }
        };
        metrics.insert(n.clone(), target);
    }
    if metrics.is_empty() {
        return Err(SuggestError::NoMeasure);
    }
    out.kv(
        "metric",
        &s(&header[m]),
        Some(&format!("{} metric names", names.len())),
    );
    out.kv("metrics", &inline_table(&metrics), None);
    Ok(())
}

#[cfg(test)]
mod tests {

    use crate::ops::suggest::suggested_text as run;

    const WINCC: &str = "\"VarName\";\"TimeString\";\"VarValue\";\"Validity\";\"Time_ms\"\n\
\"Boiler_T_Flow\";\"13.03.2024 08:15:00\";71,4;1;45363343750,0000\n\
\"Boiler_P_Flow\";\"13.03.2024 08:15:00\";1820,5;1;45363343750,0000\n\
\"Boiler_T_Flow\";\"13.03.2024 08:15:10\";71,2;1;45363343865,7407\n\
\"$RT_COUNT$\";3;;;;\n";

    #[test]
    fn a_historian_tag_log_is_long_with_ranges_from_each_metrics_values() {
        let t = run("Boiler_log0.csv", WINCC);
        assert!(t.contains("value = \"VarValue\""), "{t}");
        assert!(t.contains("metric = \"VarName\""), "{t}");
        assert!(
            t.contains(
                "metrics = { Boiler_P_Flow = \"pressure\", Boiler_T_Flow = \"temperature\" }"
            ),
            "{t}"
        );
        // 71.4 °C and 1,820.5 hPa lie outside the default ranges: widened, marked.
        assert!(t.contains("[measures.temperature]\n# metric \"Boiler_T_Flow\": values 71.2–71.4, read as degC\nrange = [-50, 90]  # ASSUMED"), "{t}");
        assert!(t.contains("range = [800, 1920]"), "{t}");
        // The bookkeeping row of another field count is skipped, as an assumption.
        assert!(
            t.contains("skip_malformed = true  # ASSUMED: 1 line(s) after the header have another field count (first: line 5, 6 fields, the header 5)"),
            "{t}"
        );
    }

    #[test]
    fn metrics_inside_the_default_ranges_get_no_measure_section() {
        let t = run(
            "tidy_1.csv",
            "time,sensor,metric,value\n2024-05-01T00:00:00Z,a,temp_c,18.2\n\
2024-05-01T00:00:00Z,a,rh_pct,71\n2024-05-01T00:10:00Z,b,temp_c,18.3\n",
        );
        assert!(!t.contains("[measures."), "{t}");
        assert!(!t.contains("[rows]"), "{t}");
    }
}
