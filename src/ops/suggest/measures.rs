//! The measures of a wide file (one numeric column each, quantity and unit from the
//! header, a units row or the values) and the `[measures.*]` and `[rows]` sections.

use crate::config::Ranges;
use crate::units::{Quantity, Unit, UnitMarker, quantity_word, split_header_unit};

use super::evidence::{self, Whose};
use super::further;
use super::out::{Out, s, toml_key};
use super::{Ctx, SuggestError, fmt, is_reserved, min_max};

/// The measures of a wide file: every mostly numeric column not `used` (time, shape
/// columns) nor the sensor nor a counter; and the note on rows with no measured value.
/// A canonical quantity is taken from a column whose name says so ([`evidence`]); of
/// several such columns, only the one named for the air, and then as an assumption.
pub(super) fn wide(
    out: &mut Out,
    cx: &Ctx,
    used: &[usize],
    sensor_col: Option<usize>,
) -> Result<(Vec<Measure>, Option<RowsNote>), SuggestError> {
    let (header, stats) = (cx.header, &cx.stats);
    let mut measures: Vec<Measure> = Vec::new();
    let counters = [
        "record", "#", "entry_id", "id", "index", "row", "rn", "no", "nr", "line",
    ];
    let us = us_units(cx, used);
    let cols: Vec<usize> = (0..cx.width)
        .filter(|&c| !used.contains(&c) && Some(c) != sensor_col && stats[c].mostly_numeric())
        .filter(|&c| !counters.contains(&header[c].trim().to_ascii_lowercase().as_str()))
        .filter(|&c| {
            let index = cx.unnamed[c] && is_index(cx, c);
            if index {
                out.note(&format!(
                    "# column {} (no name in the header) left out: it counts the rows, an index",
                    c + 1
                ));
            }
            !index
        })
        .collect();
    let picks = choose_canonical(cx, &cols);
    for &c in &cols {
        let pick = picks.iter().find(|p| p.col == c);
        if let Some(m) = column(out, cx, c, pick, &measures, us.as_deref()) {
            measures.push(m);
        }
    }
    if measures.is_empty() {
        return Err(SuggestError::NoMeasure);
    }
    let empty_note = empty_rows_note(cx, &measures);
    Ok((measures, empty_note))
}

/// A column whose name says it holds a canonical quantity, and the verdict on it.
struct Pick {
    col: usize,
    q: Quantity,
    /// Taken as the canonical measure.
    canonical: bool,
    /// Why, when the name alone does not settle it (`ASSUMED: …`).
    note: Option<String>,
}

/// The header of column `c` split into its base name and unit marker; the unit may be
/// the header's last word (`Druck mbar`).
fn base_and_marker(cx: &Ctx, c: usize) -> (String, Option<UnitMarker>) {
    let (base, marker) = split_header_unit(cx.header[c].trim());
    match (&marker, base.rsplit_once(' ')) {
        (None, Some((b, u))) if Unit::parse(u).is_some() && !b.trim().is_empty() => {
            (b.trim().to_owned(), Unit::parse(u).map(UnitMarker::Known))
        }
        _ => (base, marker),
    }
}

/// The quantity the name of column `c` gives, and whose it is.
fn named_quantity(cx: &Ctx, c: usize) -> Option<(Quantity, Whose)> {
    let (base, _) = base_and_marker(cx, c);
    evidence::from_name(&base)
        .or_else(|| evidence::from_name(cx.header[c].trim()))
        .or_else(|| other_word(&base).map(|q| (q, Whose::Plain)))
}

/// For each canonical quantity, the columns whose names give it: one that names it
/// plainly or for the air is taken; of several, only the one named for the air (or the
/// one plain name beside others' quantities), as an assumption; else none, each kept as
/// a further measure with a note.
fn choose_canonical(cx: &Ctx, cols: &[usize]) -> Vec<Pick> {
    let named: Vec<(usize, Quantity, Whose)> = cols
        .iter()
        .filter_map(|&c| named_quantity(cx, c).map(|(q, w)| (c, q, w)))
        .collect();
    let mut picks = Vec::new();
    if !named.iter().any(|n| n.1 == Quantity::Pressure)
        && let Some(c) = weak_pressure(cx, cols)
    {
        picks.push(Pick {
            col: c,
            q: Quantity::Pressure,
            canonical: true,
            note: Some(format!(
                "ASSUMED: {:?} is the usual short name of a surface pressure and its values fit one: confirm",
                cx.header[c]
            )),
        });
    }
    for q in Quantity::ALL {
        let cands: Vec<&(usize, Quantity, Whose)> = named.iter().filter(|n| n.1 == q).collect();
        let of = |w: Whose| {
            cands
                .iter()
                .filter(|n| n.2 == w)
                .map(|n| n.0)
                .collect::<Vec<_>>()
        };
        let (ambient, plain) = (of(Whose::Ambient), of(Whose::Plain));
        let names = || {
            cands
                .iter()
                .map(|n| format!("{:?}", cx.header[n.0]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen: Option<(usize, Option<String>)> = match (cands.len(), &ambient[..], &plain[..])
        {
            (1, _, _) if cands[0].2 != Whose::Other => Some((cands[0].0, None)),
            (_, [a], _) => Some((
                *a,
                Some(format!(
                    "ASSUMED: the air's {} of {}: confirm",
                    q.name(),
                    names()
                )),
            )),
            (_, [], [p]) => Some((
                *p,
                Some(format!(
                    "ASSUMED: the one plain {} name of {}: confirm",
                    q.name(),
                    names()
                )),
            )),
            _ => None,
        };
        for n in &cands {
            let canonical = chosen.as_ref().is_some_and(|(c, _)| *c == n.0);
            let note = if canonical {
                chosen.as_ref().and_then(|(_, w)| w.clone())
            } else if let Some((c, _)) = &chosen {
                Some(format!(
                    "names a {} too, but {:?} is taken as the {}",
                    q.name(),
                    cx.header[*c],
                    q.name()
                ))
            } else {
                Some(format!(
                    "ASSUMED: its name gives a {} but not the air's ({}): kept as a \
                     further measure; rename this section to {} if it is the one to store",
                    q.name(),
                    names(),
                    q.name()
                ))
            };
            picks.push(Pick {
                col: n.0,
                q,
                canonical,
                note,
            });
        }
    }
    picks
}

/// A column with a surface pressure's short name (`SP`) whose values a pressure unit
/// fits (hPa, or a unit only they fit).
fn weak_pressure(cx: &Ctx, cols: &[usize]) -> Option<usize> {
    cols.iter().copied().find(|&c| {
        let (base, _) = base_and_marker(cx, c);
        let vals: Vec<f64> = cx.stats[c].numbers.iter().map(|(_, v, _)| *v).collect();
        evidence::weak_pressure(&base)
            && min_max(&vals).is_some_and(|(lo, hi)| {
                unit_from_values(Quantity::Pressure, &vals).is_some() || lo >= 300.0 && hi <= 1100.0
            })
    })
}

/// Whether column `c` holds whole numbers counting up by one (a dataframe's index).
fn is_index(cx: &Ctx, c: usize) -> bool {
    let v: Vec<f64> = cx.stats[c].numbers.iter().map(|(_, v, _)| *v).collect();
    v.len() >= 2
        && v.windows(2)
            .all(|w| w[0].fract() == 0.0 && w[1] - w[0] == 1.0)
}

/// The measure of the numeric column `c`, or `None` (with a note) when its unit
/// cannot be read. `pick` says whether its name makes it a canonical measure.
fn column(
    out: &mut Out,
    cx: &Ctx,
    c: usize,
    pick: Option<&Pick>,
    measures: &[Measure],
    us: Option<&str>,
) -> Option<Measure> {
    let h = cx.header[c].trim();
    let (base, marker) = base_and_marker(cx, c);
    let row_unit = cx
        .units_row
        .map(|l| l.fields[c].trim().to_owned())
        .filter(|u| !u.is_empty());
    // The head's values, and those of the places through the file: a unit only the
    // summer's values prove is read from them as well.
    let vals: Vec<f64> = cx.stats[c]
        .numbers
        .iter()
        .map(|(_, v, t)| (*v, t.as_str()))
        .chain(cx.spread.iter().filter_map(|f| {
            let t = f[c].trim();
            cx.number(t).map(|v| (v, t))
        }))
        .filter(|(_, t)| !cx.is_missing(t))
        .map(|(v, _)| v)
        .collect();
    let canonical = pick.filter(|p| p.canonical && !measures.iter().any(|m| m.name == p.q.name()));
    match (canonical, &marker) {
        (_, Some(UnitMarker::Unknown(u))) => {
            out.note(&format!(
                "# column {h:?} left out: its unit {u:?} cannot be read"
            ));
            None
        }
        (Some(p), _) => {
            // `Dry-bulb (C)`: a bare letter is a unit once the name says temperature.
            let marker = marker.clone().or_else(|| bare_unit(h, p.q));
            let mut m = quantity_column(out, h, p.q, &marker, row_unit.as_deref(), &vals, us)?;
            if let Some(n) = &p.note {
                m.why.push_str(&format!("; {n}"));
            }
            Some(m)
        }
        (None, _) => Some(further_column(
            cx,
            c,
            &base,
            &marker,
            row_unit,
            measures,
            pick.and_then(|p| p.note.as_deref()),
        )),
    }
}

/// A unit in a trailing bracket that [`split_header_unit`] leaves to a quantity word
/// it does not know (`Dry-bulb (C)`), read once the name gives the quantity `q`.
fn bare_unit(h: &str, q: Quantity) -> Option<UnitMarker> {
    let h = h.trim();
    let close = h.chars().last()?;
    let open = match close {
        ')' => '(',
        ']' => '[',
        _ => return None,
    };
    let inner = &h[h.rfind(open)? + 1..h.len() - 1];
    Unit::parse(inner)
        .filter(|u| u.quantity() == q)
        .map(UnitMarker::Known)
}

/// A further measure from column `c`: named by the one naming rule ([`further`]), with
/// the unit its marker or units row gives, and `note` when its name gave a canonical
/// quantity that was not taken.
fn further_column(
    cx: &Ctx,
    c: usize,
    base: &str,
    marker: &Option<UnitMarker>,
    row_unit: Option<String>,
    measures: &[Measure],
    note: Option<&str>,
) -> Measure {
    let h = cx.header[c].trim();
    // One naming rule for every further measure (see `further`).
    let row_unit = row_unit.filter(|u| u.chars().any(|c| c.is_alphanumeric()) || u.contains('%'));
    // A header marker is a unit as a units row gives one (`Wind (mph)` → wind_speed in
    // mph, as `Wind_mph`).
    let unit = match marker {
        Some(UnitMarker::Other(u)) => Some(u.clone()),
        Some(UnitMarker::Known(u)) => row_unit.or_else(|| Some(u.name().to_owned())),
        _ => row_unit,
    };
    let (mut k, unit) = further::name_and_unit(base, unit.as_deref());
    if k.is_empty() || is_reserved(&k) || measures.iter().any(|m| m.name == k) {
        k = format!("column_{}", c + 1);
    }
    let mut why = match &unit {
        Some(u) => format!("a further numeric column {h:?}, in {u}"),
        None => format!("a further numeric column {h:?}"),
    };
    if let Some(n) = note {
        why.push_str(&format!("; {n}"));
    } else if let Some(UnitMarker::Known(u)) = marker
        && !evidence::describes(base)
    {
        // `Vorlauf °C`, `GHI (%)`: a unit alone does not say whose quantity it is.
        let q = u.quantity().name();
        why.push_str(&format!(
            "; ASSUMED: its unit is a {q}'s, its name does not say the air's: kept as a \
             further measure; rename this section to {q} if it is the one to store"
        ));
    } else if numbered_name(h) {
        // ThingSpeak's field1…field8: the quantity is in the channel's settings,
        // not in the file; values alone cannot tell 21.5 °C from 21.5 %.
        why.push_str(
            "; its name says no quantity: if it is a temperature, humidity or \
             pressure, rename this section and add its unit",
        );
    }
    Measure {
        name: k,
        column: Some(h.to_owned()),
        unit,
        range: None,
        why,
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
    us: Option<&str>,
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
        _ => match (unit_from_values(q, vals), us) {
            (Some(u), _) => (
                Some(u),
                "the values (ASSUMED: only this unit fits them; confirm)",
            ),
            (None, Some(why)) if q == Quantity::Temperature => (Some(Unit::Fahrenheit), why),
            (None, _) => (None, ""),
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
        None if q == Quantity::Temperature => {
            // Without a marker nothing proves °C: 20–60 reads as warm air in °C and as
            // cold air in °F alike, and -10–15 as a cold day in either.
            let also = if min_max(vals).is_some_and(|(lo, hi)| lo >= 20.0 && hi <= 60.0) {
                "these values read as degF too"
            } else {
                "no marker says so"
            };
            format!(
                "{} from {h:?}; no unit marker: read as {}{plaus}; ASSUMED: {also}: confirm \
                 (add unit = \"degF\" if they are)",
                q.name(),
                shown.name()
            )
        }
        None => format!(
            "{} from {h:?}; no unit marker: read as {}{plaus}",
            q.name(),
            shown.name()
        ),
    };
    let range = wider_range(q, shown, vals);
    Some(Measure {
        name: q.name().to_owned(),
        column: Some(h.to_owned()),
        unit: unit.map(|u| u.name().to_owned()),
        range,
        why,
    })
}

/// A range for quantity `q` wider than the default, in the stored unit, when the
/// `vals` (in `unit`) lie outside the default (flow water at 71 °C, a system pressure of
/// 1,820 mbar, a mountain station's 779 hPa): the default widened beyond them by 5 % of
/// the value (at least 10), to the next ten, as the rest of the file may go further.
pub(super) fn wider_range(q: Quantity, unit: Unit, vals: &[f64]) -> Option<(f64, f64)> {
    min_max(vals).and_then(|(lo, hi)| {
        let (lo, hi) = (unit.to_canonical(lo), unit.to_canonical(hi));
        let d = default_range(q);
        let margin = |v: f64| (v.abs() * 0.05).max(10.0);
        (lo < d.0 || hi > d.1).then(|| {
            let lo = if lo < d.0 {
                ((lo - margin(lo)) / 10.0).floor() * 10.0
            } else {
                d.0
            };
            let hi = if hi > d.1 {
                ((hi + margin(hi)) / 10.0).ceil() * 10.0
            } else {
                d.1
            };
            (lo, hi)
        })
    })
}

/// A name that only numbers a channel (`field1`, `value 2`, `ch3`, `channel_4`).
fn numbered_name(h: &str) -> bool {
    let l = h.trim().to_ascii_lowercase();
    let stem = l.trim_end_matches(|c: char| c.is_ascii_digit());
    stem.len() < l.len()
        && [
            "field", "value", "ch", "channel", "col", "column", "sensor", "input",
        ]
        .contains(&stem.trim_end_matches([' ', '_']))
}

/// What the sampled rows say about rows with values missing.
pub(super) enum RowsNote {
    /// Some rows have no measured value at all: `skip_unmeasured`, assumed.
    Skip(String),
    /// Some rows have most measured columns empty and others filled: a comment.
    Partial(String),
}

/// The `[rows]` note when some sampled rows have no measured value, or have most of
/// their measured columns empty while others hold values (a station that logged
/// nothing, beside columns computed for every row).
fn empty_rows_note(cx: &Ctx, measures: &[Measure]) -> Option<RowsNote> {
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
    let empty = |l: &super::Line, c: usize| l.fields[c].is_empty() || cx.is_missing(&l.fields[c]);
    let empty_rows: Vec<usize> = cx
        .data
        .iter()
        .filter(|l| cols.iter().all(|&c| empty(l, c)))
        .map(|l| l.no)
        .collect();
    if let Some(first) = empty_rows.first() {
        return Some(RowsNote::Skip(format!(
            "ASSUMED: {} of {} sampled rows have no measured value (first: line {first}): \
             event rows, skipped and counted, the others load; confirm",
            empty_rows.len(),
            cx.rows
        )));
    }
    let partial: Vec<&&super::Line> = cx
        .data
        .iter()
        .filter(|l| {
            let n = cols.iter().filter(|&&c| empty(l, c)).count();
            n >= 2 && n * 2 >= cols.len()
        })
        .collect();
    let first = partial.first()?;
    let names: Vec<String> = cols
        .iter()
        .filter(|&&c| empty(first, c))
        .map(|&c| format!("{:?}", header[c]))
        .collect();
    Some(RowsNote::Partial(format!(
        "ASSUMED: {} of {} sampled rows have {} empty (first: line {}) while other columns \
         hold values: those rows load with what they hold. If they mean \"nothing measured\", \
         keep only the measured columns as measures and set skip_unmeasured = true",
        partial.len(),
        cx.rows,
        names.join(", "),
        first.no
    )))
}

/// Writes a `[measures.NAME]` section per measure, and `[rows]` with `empty_note` (rows
/// with nothing measured) and `malformed_note` (rows of another field count).
pub(super) fn write(
    out: &mut Out,
    measures: &[Measure],
    empty_note: Option<&RowsNote>,
    malformed_note: Option<&str>,
) {
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
    if empty_note.is_some() || malformed_note.is_some() {
        out.section("rows");
    }
    match empty_note {
        // Only rows with nothing measured are skipped: any other bad row still refuses
        // the file, as without the setting.
        Some(RowsNote::Skip(why)) => out.kv("skip_unmeasured", "true", Some(why)),
        Some(RowsNote::Partial(why)) => out.line(&format!("# {why}")),
        None => {}
    }
    if let Some(why) = malformed_note {
        out.kv("skip_malformed", "true", Some(why));
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

/// The evidence that a file is in US units, so an unmarked temperature is °F: a pressure
/// column in inHg, by its header, units row or values (25–32). A station that reports
/// inches of mercury reports Fahrenheit (WeatherLink, Weather Underground and airport
/// exports in US settings); still an assumption for a person to confirm.
fn us_units(cx: &Ctx, used: &[usize]) -> Option<String> {
    (0..cx.width).filter(|c| !used.contains(c)).find_map(|c| {
        let h = cx.header[c].trim();
        let (base, marker) = split_header_unit(h);
        if quantity_word(&base).or_else(|| other_word(&base)) != Some(Quantity::Pressure) {
            return None;
        }
        let row = cx.units_row.and_then(|l| Unit::parse(l.fields[c].trim()));
        let vals: Vec<f64> = cx.stats[c]
            .numbers
            .iter()
            .filter(|(_, _, t)| !cx.is_missing(t))
            .map(|(_, v, _)| *v)
            .collect();
        let inhg = matches!(marker, Some(UnitMarker::Known(Unit::InchMercury)))
            || row == Some(Unit::InchMercury)
            || marker.is_none()
                && row.is_none()
                && unit_from_values(Quantity::Pressure, &vals) == Some(Unit::InchMercury);
        inhg.then(|| format!("US units (ASSUMED: the pressure {h:?} is in inHg): confirm"))
    })
}

/// A unit that alone explains the values of a column of quantity `q`, when the
/// canonical unit does not: temperatures of 200–340 (K), or over 60 and up to 130 with
/// a spread of at least 10 (°F: no air is that hot in °C, and a spread that wide is
/// weather, not a tank held at one temperature); humidities all within 0–1 (a
/// fraction); pressures within 25–32 (inHg), 80–110 (kPa) or 30,000–110,000 (Pa).
fn unit_from_values(q: Quantity, vals: &[f64]) -> Option<Unit> {
    let (lo, hi) = min_max(vals)?;
    match q {
        Quantity::Temperature if lo >= 200.0 && hi <= 340.0 => Some(Unit::Kelvin),
        Quantity::Temperature if hi > 60.0 && hi <= 130.0 && lo >= -60.0 && hi - lo >= 10.0 => {
            Some(Unit::Fahrenheit)
        }
        Quantity::Humidity if lo >= 0.0 && hi <= 1.0 && hi > 0.0 => Some(Unit::Fraction),
        Quantity::Pressure if lo >= 25.0 && hi <= 32.0 => Some(Unit::InchMercury),
        Quantity::Pressure if lo >= 80.0 && hi <= 110.0 => Some(Unit::Kilopascal),
        Quantity::Pressure if lo >= 30_000.0 && hi <= 110_000.0 => Some(Unit::Pascal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {

    use crate::ops::suggest::suggested_text as run;

    #[test]
    fn a_pressure_in_inhg_makes_an_unmarked_temperature_assumed_fahrenheit() {
        let t = run(
            "x_1.csv",
            "time,temp,bar\n2024-01-01T00:00:00Z,34.1,30.01\n2024-01-01T01:00:00Z,35,29.98\n",
        );
        assert!(
            t.contains("unit degF from US units (ASSUMED: the pressure \"bar\" is in inHg)"),
            "{t}"
        );
        assert!(t.contains("column = \"temp\"\nunit = \"degF\""), "{t}");
    }

    #[test]
    fn without_inhg_an_unmarked_temperature_stays_celsius_and_a_marker_wins() {
        let t = run(
            "x_1.csv",
            "time,temp,bar\n2024-01-01T00:00:00Z,21,1013\n2024-01-01T01:00:00Z,22,1012\n",
        );
        assert!(t.contains("no unit marker: read as degC"), "{t}");
        let t = run(
            "x_1.csv",
            "time,Temp (C),bar\n2024-01-01T00:00:00Z,21,30.01\n2024-01-01T01:00:00Z,22,29.9\n",
        );
        assert!(t.contains("unit = \"degC\""), "{t}");
        assert!(!t.contains("degF"), "{t}");
    }

    #[test]
    fn numbered_channels_are_kept_as_further_measures_never_guessed() {
        let t = run(
            "feeds_1.csv",
            "created_at,entry_id,field1,field2\n\
2024-05-01 10:00:07 UTC,1,21.5,48\n2024-05-01 10:00:22 UTC,2,21.6,49\n",
        );
        assert!(t.contains("[measures.field1]"), "{t}");
        assert!(t.contains("its name says no quantity"), "{t}");
        assert!(!t.contains("[measures.temperature]"), "{t}");
        assert!(super::numbered_name("value 2") && super::numbered_name("ch3"));
        assert!(!super::numbered_name("co2") && !super::numbered_name("pm2"));
    }

    #[test]
    fn further_measures_follow_the_naming_rule() {
        let t = run(
            "x_1.csv",
            "time,temp,Wind_mph,co2_ppm,wind_ms,Gust (m/s)\n\
2024-01-01T00:00:00Z,21,4,600,1,3\n2024-01-01T01:00:00Z,22,5,610,2,4\n",
        );
        assert!(
            t.contains("[measures.gust_speed]\n# a further numeric column \"Gust (m/s)\", in m/s"),
            "{t}"
        );
        assert!(t.contains("[measures.wind_speed]\n# a further numeric column \"Wind_mph\", in mph\ncolumn = \"Wind_mph\"\nunit = \"mph\""), "{t}");
        assert!(t.contains("[measures.co2]"), "{t}");
        assert!(t.contains("unit = \"ppm\""), "{t}");
        assert!(
            t.contains("[measures.wind_ms]\n# a further numeric column \"wind_ms\"\ncolumn"),
            "{t}"
        );
    }
}
