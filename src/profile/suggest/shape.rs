//! The shape: long (one value per row, named by an entity or a metric column) or wide,
//! and the `[shape]` section of a long file.

use std::collections::BTreeMap;

use crate::units::{UnitMarker, quantity_word, split_header_unit};

use super::further;
use super::measures::Measure;
use super::out::{Out, inline_table, lit, s};
use super::{Ctx, SuggestError, is_reserved};

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
        let value_col = find(&["state", "value", "_value", "val", "reading"]);
        let entity_col = find(&["entity_id", "entity"]).filter(|&c| {
            stats[c]
                .values
                .iter()
                .all(|(_, v)| v.contains('.') && number(v).is_none())
        });
        let metric_col = find(&[
            "metric", "measure", "_field", "field", "variable", "element", "quantity",
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
        metric(out, cx, m, &mut measures)?;
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
    measures: &mut Vec<Measure>,
) -> Result<(), SuggestError> {
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
                    Some(UnitMarker::Known(u)) if u.quantity() == q => Some(u.name().to_owned()),
                    _ => None,
                };
                if let Some(u) = unit
                    && u != q.canonical_unit().name()
                {
                    measures.push(Measure {
                        name: q.name().to_owned(),
                        column: None,
                        unit: Some(u.clone()),
                        range: None,
                        why: format!("metric {n:?}: unit {u} from its name"),
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
