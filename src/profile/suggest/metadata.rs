//! The metadata line of the preamble, and the `[metadata]` section: the fields the
//! sensor and the zone are taken from.

use crate::timestamp::parse_offset;

use super::out::{Out, toml_key};
use super::time::Zone;
use super::{Ctx, Line, Meta, key};

/// The metadata line among the `preamble` lines, if any.
pub(super) fn find(preamble: &[Line], cx: &Ctx) -> Option<Meta> {
    let number = |s: &str| cx.number(s);
    // Metadata line: a preamble line with fields (named by the line before it when
    // that line is all names and as wide, as Netatmo writes them).
    preamble.iter().rev().find(|l| l.fields.len() > 1).map(|l| {
        let names_line = preamble
            .iter()
            .find(|p| p.no + 1 == l.no && p.fields.len() == l.fields.len())
            .filter(|p| p.fields.iter().all(|f| number(f).is_none()));
        let fields: Vec<(String, usize, String)> = l
            .fields
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let name = names_line
                    .map(|p| key(&p.fields[i]))
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| format!("field{}", i + 1));
                (name, i + 1, v.clone())
            })
            .collect();
        (l.no, fields)
    })
}

/// Writes the `[metadata]` section when a field of `meta` names the sensor (no sensor
/// or entity column) or the zone; returns the sensor's (field, value).
pub(super) fn write(
    out: &mut Out,
    cx: &Ctx,
    meta: Option<&Meta>,
    no_sensor_column: bool,
    zone: &Zone,
) -> Option<(String, String)> {
    let number = |s: &str| cx.number(s);
    let mut meta_used: Vec<(String, usize)> = Vec::new();
    let mut sensor_from_meta: Option<(String, String)> = None;
    if let Some((_, fields)) = meta
        && no_sensor_column
    {
        let pick = fields
            .iter()
            .find(|(n, _, v)| {
                [
                    "name",
                    "station",
                    "stationname",
                    "station_name",
                    "device",
                    "site",
                ]
                .contains(&n.as_str())
                    && !v.is_empty()
            })
            .or_else(|| {
                fields.iter().skip(1).find(|(_, _, v)| {
                    !v.is_empty()
                        && number(v).is_none()
                        && v.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c))
                })
            });
        if let Some((n, i, v)) = pick {
            let n = if n.starts_with("field") {
                "station".to_owned()
            } else {
                n.clone()
            };
            meta_used.push((n.clone(), *i));
            sensor_from_meta = Some((n, v.clone()));
        }
    }
    if let Zone::Metadata { field, index, .. } = zone {
        meta_used.push((field.clone(), *index));
    }
    if let Some((line, fields)) = meta
        && !meta_used.is_empty()
    {
        out.section("metadata");
        out.kv("line", &line.to_string(), Some("the metadata line"));
        out.kv(
            "fields",
            &format!(
                "{{ {} }}",
                meta_used
                    .iter()
                    .map(|(n, i)| format!("{} = {i}", toml_key(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        );
        let others: Vec<String> = fields
            .iter()
            .filter(|(_, i, _)| !meta_used.iter().any(|(_, u)| u == i))
            .map(|(n, i, v)| format!("{n} = {i} ({} {v:?})", looks_like(v, &number)))
            .collect();
        if !others.is_empty() {
            out.line(&format!("# other fields: {}", others.join("; ")));
        }
    }
    sensor_from_meta
}

fn looks_like(v: &str, number: &impl Fn(&str) -> Option<f64>) -> &'static str {
    if v.is_empty() {
        "empty"
    } else if parse_offset(v).is_some()
        && (v.starts_with('+') || v.starts_with('-') || v.starts_with("UTC"))
    {
        "a signed offset"
    } else if let Some(x) = number(v) {
        if v.contains('.') && x.abs() <= 180.0 {
            "a coordinate"
        } else {
            "an id"
        }
    } else {
        "a name"
    }
}
