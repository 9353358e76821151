//! The name and unit of a further measure (a quantity other than temperature, humidity
//! and pressure, stored as written in `extra`).
//!
//! One rule for every further measure, wide column or long metric: the measure is named
//! after its source in snake case (`Wind Speed` → `wind_speed`, `ModuleType` →
//! `module_type`, `SoilT_C(1)` → `soil_t_1`), its unit comes from a header marker or a
//! units row, else a unit word the name ends in is moved to `unit`, and the value is kept
//! in that unit (`co2_ppm` → `co2` in `ppm`, `Batt_V` → `batt` in `V`); a bare `wind` or
//! `gust` measured in a speed unit is named for the speed (`Wind_mph` and `Wind (mph)` →
//! `wind_speed` in `mph`), as people name it. Only units of the table
//! below are read from a name: an ambiguous suffix (`ms`: m/s or milliseconds) stays part
//! of the name, and a name that is only a unit keeps it.

use crate::units::Unit;

/// Unit words a name may end in: (word, the unit as stored, a speed).
const UNIT_WORDS: [(&str, &str, bool); 19] = [
    ("mph", "mph", true),
    ("kph", "km/h", true),
    ("kmh", "km/h", true),
    ("kn", "kn", true),
    ("kt", "kn", true),
    ("kts", "kn", true),
    ("knots", "kn", true),
    ("mps", "m/s", true),
    ("ppm", "ppm", false),
    ("ppb", "ppb", false),
    ("db", "dB", false),
    ("dba", "dBA", false),
    ("lux", "lux", false),
    ("mm", "mm", false),
    ("v", "V", false),
    ("volt", "V", false),
    ("volts", "V", false),
    ("mv", "mV", false),
    ("ma", "mA", false),
];

/// A unit as written in a units row or a name, as stored (`Volts` → `V`, `Deg C` →
/// `degC`), or `None` when it is not one this module knows.
fn known_unit(text: &str) -> Option<(String, bool)> {
    let l = text.trim().to_ascii_lowercase();
    if let Some((_, u, speed)) = UNIT_WORDS.iter().find(|(w, _, _)| *w == l) {
        return Some(((*u).to_owned(), *speed));
    }
    match l.as_str() {
        "m/s" => return Some(("m/s".to_owned(), true)),
        "km/h" => return Some(("km/h".to_owned(), true)),
        _ => {}
    }
    Unit::parse(text).map(|u| (u.name().to_owned(), false))
}

/// The words of a name: split at anything not a letter or digit, and where a run of two
/// or more lowercase letters meets an uppercase one (`SoilT` → `Soil`, `T`; `pH` stays).
pub(super) fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut lower_run = 0;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            lower_run = 0;
            continue;
        }
        if c.is_uppercase() && lower_run >= 2 {
            out.push(std::mem::take(&mut cur));
        }
        lower_run = if c.is_lowercase() { lower_run + 1 } else { 0 };
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A snake-case key from `name`'s [`words`] (`ModuleType` → `module_type`).
pub(super) fn snake(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// The measure name and unit for the further column or metric `name`; `row_unit` is the
/// unit its units row gives (Campbell's `Volts`, `Deg C`). Without a units row, a unit
/// word at the end of the name is the unit; with one, a word of the name spelling that
/// same unit is dropped (`SoilT_C(1)` under `Deg C` → `soil_t_1`).
pub(super) fn name_and_unit(name: &str, row_unit: Option<&str>) -> (String, Option<String>) {
    let mut w: Vec<String> = words(name).iter().map(|w| w.to_lowercase()).collect();
    let mut unit: Option<(String, bool)> = None;
    if let Some(row) = row_unit.filter(|u| !u.trim().is_empty()) {
        let known = known_unit(row);
        if let Some((u, _)) = &known
            && let Some(i) = (1..w.len()).rev().find(|&i| {
                // A single letter names a unit only beside a units row saying so.
                known_unit(&w[i]).is_some_and(|(wu, _)| &wu == u)
                    && !w[i].bytes().all(|b| b.is_ascii_digit())
            })
        {
            w.remove(i);
        }
        unit = Some(known.unwrap_or_else(|| (row.trim().to_owned(), false)));
    } else if w.len() >= 2
        && let Some((u, speed)) = UNIT_WORDS
            .iter()
            .find(|(word, _, _)| w.last().is_some_and(|l| l == word))
            .map(|(_, u, speed)| ((*u).to_owned(), *speed))
    {
        w.pop();
        unit = Some((u, speed));
    }
    let mut key = w.join("_");
    if matches!(key.as_str(), "wind" | "gust") && unit.as_ref().is_some_and(|(_, speed)| *speed) {
        key.push_str("_speed");
    }
    (key, unit.map(|(u, _)| u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nu(name: &str, row: Option<&str>) -> (String, Option<String>) {
        name_and_unit(name, row)
    }

    #[test]
    fn a_unit_at_the_end_of_the_name_becomes_the_unit() {
        assert_eq!(nu("co2_ppm", None), ("co2".into(), Some("ppm".into())));
        assert_eq!(nu("Noise dB", None), ("noise".into(), Some("dB".into())));
        assert_eq!(nu("batt_v", None), ("batt".into(), Some("V".into())));
        assert_eq!(nu("Rain_mm", None), ("rain".into(), Some("mm".into())));
    }

    #[test]
    fn wind_or_gust_in_a_speed_unit_is_named_for_the_speed() {
        assert_eq!(
            nu("Wind_mph", None),
            ("wind_speed".into(), Some("mph".into()))
        );
        assert_eq!(
            nu("gust_kmh", None),
            ("gust_speed".into(), Some("km/h".into()))
        );
        // Already named for what it is: nothing added.
        assert_eq!(nu("Wind Speed", None), ("wind_speed".into(), None));
        // A unit that is no speed leaves the name alone.
        assert_eq!(nu("wind_mm", None), ("wind".into(), Some("mm".into())));
    }

    #[test]
    fn ambiguous_or_lone_unit_words_are_not_read() {
        // `ms`: metres per second or milliseconds; stays in the name, no unit.
        assert_eq!(nu("wind_ms", None), ("wind_ms".into(), None));
        // A name that is only a unit keeps it as its name.
        assert_eq!(nu("ppm", None), ("ppm".into(), None));
        // Statistics are not units.
        assert_eq!(nu("level_min", None), ("level_min".into(), None));
    }

    #[test]
    fn a_units_row_gives_the_unit_and_removes_its_letter_from_the_name() {
        assert_eq!(
            nu("SoilT_C(1)", Some("Deg C")),
            ("soil_t_1".into(), Some("degC".into()))
        );
        assert_eq!(
            nu("BattV_Min", Some("Volts")),
            ("batt_min".into(), Some("V".into()))
        );
        // A units row text this module does not know is kept as written.
        assert_eq!(
            nu("Flow", Some("l/min")),
            ("flow".into(), Some("l/min".into()))
        );
        // The first word is the name, never dropped as a unit.
        assert_eq!(nu("V", Some("Volts")), ("v".into(), Some("V".into())));
    }

    #[test]
    fn names_split_at_separators_and_lower_to_upper_humps() {
        assert_eq!(snake("ModuleType"), "module_type");
        assert_eq!(snake("SoilT_C(2)"), "soil_t_c_2");
        assert_eq!(snake("pH"), "ph");
        assert_eq!(snake("CO2"), "co2");
        assert_eq!(snake("Dew Pt."), "dew_pt");
    }
}
