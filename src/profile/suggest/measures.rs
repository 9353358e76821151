//! The measures of a wide file (one numeric column each, quantity and unit from the
//! header, a units row or the values) and the `[measures.*]` and `[rows]` sections.

use crate::config::Ranges;
use crate::units::{Quantity, Unit, UnitMarker, quantity_word, split_header_unit};

use super::further;
use super::out::{Out, s, toml_key};
use super::{Ctx, SuggestError, fmt, is_reserved, min_max};

/// The measures of a wide file: every mostly numeric column not `used` (time, shape
/// columns) nor the sensor nor a counter; and the note on rows with no measured value.
pub(super) fn wide(
    out: &mut Out,
    cx: &Ctx,
    used: &[usize],
    sensor_col: Option<usize>,
) -> Result<(Vec<Measure>, Option<String>), SuggestError> {
    let (header, stats) = (cx.header, &cx.stats);
    let mut measures: Vec<Measure> = Vec::new();
    let counters = [
        "record", "#", "entry_id", "id", "index", "row", "rn", "no", "nr", "line",
    ];
    for c in 0..cx.width {
        if used.contains(&c) || Some(c) == sensor_col || !stats[c].mostly_numeric() {
            continue;
        }
        let h = header[c].trim();
        if counters.contains(&h.to_ascii_lowercase().as_str()) {
            continue;
        }
        if let Some(m) = column(out, cx, c, &measures) {
            measures.push(m);
        }
    }
    if measures.is_empty() {
        return Err(SuggestError::NoMeasure);
    }
    let empty_note = empty_rows_note(cx, &measures);
    Ok((measures, empty_note))
}

/// The measure of the numeric column `c`, or `None` (with a note) when its unit
/// cannot be read.
fn column(out: &mut Out, cx: &Ctx, c: usize, measures: &[Measure]) -> Option<Measure> {
    let h = cx.header[c].trim();
    let (base, marker) = split_header_unit(h);
    let row_unit = cx
        .units_row
        .map(|l| l.fields[c].trim().to_owned())
        .filter(|u| !u.is_empty());
    // The unit may be the header's last word (`Druck mbar`).
    let (base, marker) = match (&marker, base.rsplit_once(' ')) {
        (None, Some((b, u))) if Unit::parse(u).is_some() && !b.trim().is_empty() => {
            (b.trim().to_owned(), Unit::parse(u).map(UnitMarker::Known))
        }
        _ => (base, marker),
    };
    let q = quantity_word(&base)
        .or_else(|| other_word(&base))
        .or_else(|| match &marker {
            Some(UnitMarker::Known(u)) => Some(u.quantity()),
            _ => None,
        })
        .or_else(|| {
            row_unit
                .as_deref()
                .and_then(Unit::parse)
                .map(Unit::quantity)
        });
    let vals: Vec<f64> = cx.stats[c]
        .numbers
        .iter()
        .map(|(_, v, t)| (*v, t))
        .filter(|(_, t)| !cx.is_missing(t))
        .map(|(v, _)| v)
        .collect();
    let canonical = q.filter(|q| !measures.iter().any(|m| m.name == q.name()));
    match (canonical, &marker) {
        (_, Some(UnitMarker::Unknown(u))) => {
            out.note(&format!(
                "# column {h:?} left out: its unit {u:?} cannot be read"
            ));
            None
        }
        (Some(q), _) => quantity_column(out, h, q, &marker, row_unit.as_deref(), &vals),
        (None, _) => {
            // One naming rule for every further measure (see `further`).
            let row_unit =
                row_unit.filter(|u| u.chars().any(|c| c.is_alphanumeric()) || u.contains('%'));
            let (mut k, unit) = match &marker {
                Some(UnitMarker::Other(u)) => (further::snake(&base), Some(u.clone())),
                Some(UnitMarker::Known(u)) => (
                    further::snake(&base),
                    row_unit.or_else(|| Some(u.name().to_owned())),
                ),
                _ => further::name_and_unit(&base, row_unit.as_deref()),
            };
            if k.is_empty() || is_reserved(&k) || measures.iter().any(|m| m.name == k) {
                k = format!("column_{}", c + 1);
            }
            let why = match &unit {
                Some(u) => format!("a further numeric column {h:?}, in {u}"),
                None => format!("a further numeric column {h:?}"),
            };
            Some(Measure {
                name: k,
                column: Some(h.to_owned()),
                unit,
                range: None,
                why,
            })
        }
    }
}

/// The column `h` of quantity `q`: its unit from the header, the units row or the
/// values, its evidence, and a wider range when the values need one.
fn quantity_column(
    out: &mut Out,
    h: &str,
    q: Quantity,
    marker: &Option<UnitMarker>,
    row_unit: Option<&str>,
    vals: &[f64],
) -> Option<Measure> {
    let (unit, src) = match (marker, row_unit.and_then(Unit::parse)) {
        (Some(UnitMarker::Known(u)), _) if u.quantity() == q => (Some(*u), "the header"),
        (Some(UnitMarker::Known(_)), _) => {
            out.note(&format!(
                "# column {h:?} left out: its unit is not one of {}",
                q.name()
            ));
            return None;
        }
        (_, Some(u)) if u.quantity() == q => (Some(u), "the units row"),
        _ => match unit_from_values(q, vals) {
            Some(u) => (Some(u), "the values (ASSUMED: confirm)"),
            None => (None, ""),
        },
    };
    let shown = unit.unwrap_or(q.canonical_unit());
    let plaus = plausibility(q, shown, vals);
    let why = match unit {
        Some(u) => format!(
            "{} from {h:?}; unit {} from {src}{plaus}",
            q.name(),
            u.name()
        ),
        None => format!(
            "{} from {h:?}; no unit marker: read as {}{plaus}",
            q.name(),
            shown.name()
        ),
    };
    let range = min_max(vals).and_then(|(lo, hi)| {
        let (lo, hi) = (shown.to_canonical(lo), shown.to_canonical(hi));
        let d = default_range(q);
        (lo < d.0 || hi > d.1).then(|| {
            let lo = if lo < d.0 {
                ((lo - 10.0) / 10.0).floor() * 10.0
            } else {
                d.0
            };
            let hi = if hi > d.1 {
                ((hi + 10.0) / 10.0).ceil() * 10.0
            } else {
                d.1
            };
            (lo, hi)
        })
    });
    Some(Measure {
        name: q.name().to_owned(),
        column: Some(h.to_owned()),
        unit: unit.map(|u| u.name().to_owned()),
        range,
        why,
    })
}

/// The `[rows]` note when some sampled rows have no measured value.
fn empty_rows_note(cx: &Ctx, measures: &[Measure]) -> Option<String> {
    let header = cx.header;
    // Rows without any measured value (HOBO event rows) would hold the file back.
    let cols: Vec<usize> = measures
        .iter()
        .filter_map(|m| {
            header
                .iter()
                .position(|h| Some(h.trim()) == m.column.as_deref())
        })
        .collect();
    let empty_rows: Vec<usize> = cx
        .data
        .iter()
        .filter(|l| {
            cols.iter()
                .all(|&c| l.fields[c].is_empty() || cx.is_missing(&l.fields[c]))
        })
        .map(|l| l.no)
        .collect();
    empty_rows.first().map(|first| {
        format!(
            "ASSUMED: {} of {} sampled rows have no measured value (first: line {first}): \
             event rows, skipped and counted, the others load; confirm",
            empty_rows.len(),
            cx.rows
        )
    })
}

/// Writes a `[measures.NAME]` section per measure, and `[rows]` with `empty_note`.
pub(super) fn write(out: &mut Out, measures: &[Measure], empty_note: Option<&str>) {
    for m in measures {
        out.section(&format!("measures.{}", toml_key(&m.name)));
        out.line(&format!("# {}", m.why));
        if let Some(c) = &m.column {
            out.kv("column", &s(c), None);
        }
        if let Some(u) = &m.unit {
            out.kv("unit", &s(u), None);
        }
        if let Some((lo, hi)) = m.range {
            out.kv(
                "range",
                &format!("[{}, {}]", fmt(lo), fmt(hi)),
                Some("ASSUMED: the sampled values lie outside the default range; confirm"),
            );
        }
    }
    if let Some(why) = empty_note {
        out.section("rows");
        // Only rows with nothing measured are skipped: any other bad row still refuses
        // the file, as without the setting.
        out.kv("skip_unmeasured", "true", Some(why));
    }
}

/// One measure of the profile, with the evidence for it.
pub(super) struct Measure {
    pub(super) name: String,
    pub(super) column: Option<String>,
    pub(super) unit: Option<String>,
    pub(super) range: Option<(f64, f64)>,
    pub(super) why: String,
}

fn default_range(q: Quantity) -> (f64, f64) {
    let r = Ranges::default();
    let r = match q {
        Quantity::Temperature => r.temperature,
        Quantity::Humidity => r.humidity,
        Quantity::Pressure => r.pressure,
    };
    (r.min, r.max)
}

/// "; values 23–46: plausible degF" or a warning when they are not.
fn plausibility(q: Quantity, u: Unit, vals: &[f64]) -> String {
    let Some((lo, hi)) = min_max(vals) else {
        return String::new();
    };
    let (clo, chi) = (u.to_canonical(lo), u.to_canonical(hi));
    let d = default_range(q);
    let verdict = if clo >= d.0 && chi <= d.1 {
        format!("plausible {}", u.name())
    } else {
        format!(
            "outside the usual range when read as {}: check the unit",
            u.name()
        )
    };
    format!("; values {}–{}: {verdict}", fmt(lo), fmt(hi))
}

/// Quantity words the units module does not know: German and weather-service names.
fn other_word(base: &str) -> Option<Quantity> {
    let l = base.trim().to_lowercase();
    let words: [(&str, Quantity); 9] = [
        ("temperatur", Quantity::Temperature),
        ("lufttemperatur", Quantity::Temperature),
        ("feuchte", Quantity::Humidity),
        ("luftfeuchte", Quantity::Humidity),
        ("luftfeuchtigkeit", Quantity::Humidity),
        ("druck", Quantity::Pressure),
        ("luftdruck", Quantity::Pressure),
        ("altimeter", Quantity::Pressure),
        ("altim", Quantity::Pressure),
    ];
    words.iter().find(|(w, _)| l == *w).map(|(_, q)| *q)
}

/// A pressure unit the values prove on their own: all within 25–32 (inHg) or 80–110
/// (kPa); the canonical hPa needs no unit.
fn unit_from_values(q: Quantity, vals: &[f64]) -> Option<Unit> {
    let (lo, hi) = min_max(vals)?;
    match q {
        Quantity::Pressure if lo >= 25.0 && hi <= 32.0 => Some(Unit::InchMercury),
        Quantity::Pressure if lo >= 80.0 && hi <= 110.0 => Some(Unit::Kilopascal),
        _ => None,
    }
}
