//! What a column's name says about the quantity it measures. A canonical measure
//! (temperature, humidity, pressure) needs evidence from the name, never from a unit
//! alone: `GHI uncert (%)` is not a humidity, `RH`, `Rel Hum` and `RHum (%)` are;
//! `Dry-bulb (C)`, `Temp` and `T_air` are temperatures. The name also says whose
//! quantity it is: the ambient air's (`ambient`, `air`, `dry-bulb`, `outdoor`), a plain
//! one (`Temp`), or something else's (a module, the soil, a dew point, a daily maximum),
//! so that of several candidates only the air's is taken.

use crate::units::{Quantity, quantity_word};

use super::further::words;

/// Whose quantity a name gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Whose {
    /// The ambient air's, said in the name.
    Ambient,
    /// Nothing but the quantity (and statistics such as `Avg`, a number, a unit).
    Plain,
    /// Something else's, or a statistic other than the reading (`max`, `min`).
    Other,
}

/// Words that name the quantity beyond the units module's list (lowercase words of the
/// name, or the whole name compacted): `drybulb`, `rhum`, `t2m` (the air at 2 m).
const TEMPERATURE: [&str; 5] = ["drybulb", "tdry", "t2m", "tamb", "airtemp"];
const HUMIDITY: [&str; 4] = ["rhum", "relhumidity", "relativehumidity", "humidite"];

/// Words saying the quantity is the ambient air's.
/// `2m`: the screen height at which weather services measure the air.
const AMBIENT: [&str; 13] = [
    "ambient",
    "air",
    "drybulb",
    "outdoor",
    "outside",
    "outdoors",
    "tair",
    "airt",
    "t2m",
    "station",
    "atmospheric",
    "barometric",
    "2m",
];

/// Words saying the quantity is something else's, or not the reading itself.
const OTHER: [&str; 38] = [
    "dew", "dewpoint", "wet", "wetbulb", "soil", "water", "module", "panel", "cell", "pv",
    "logger", "internal", "indoor", "inside", "case", "battery", "batt", "cpu", "board", "sky",
    "surface", "ground", "road", "pipe", "flow", "return", "supply", "boiler", "max", "min",
    "maximum", "minimum", "vapor", "vapour", "specific", "absolute", "feels", "apparent",
];

/// Words saying the column describes a quantity's reading rather than measuring it (its
/// uncertainty, data source, flag, spread): such a column names no quantity at all.
const ABOUT: [&str; 13] = [
    "uncert",
    "uncertainty",
    "source",
    "flag",
    "flags",
    "code",
    "qc",
    "quality",
    "std",
    "stdev",
    "sd",
    "error",
    "err",
];

/// Words that say nothing about whose quantity it is: statistics of the reading,
/// positions, unit words.
const NEUTRAL: [&str; 15] = [
    "avg", "mean", "smp", "sample", "average", "c", "f", "k", "deg", "degc", "degf", "pct",
    "percent", "relative", "rel",
];

/// Whether `base` describes a reading (its uncertainty, source, flag) rather than
/// measuring one.
pub(super) fn describes(base: &str) -> bool {
    words(base)
        .iter()
        .any(|w| ABOUT.contains(&w.to_lowercase().as_str()))
}

/// Whether `base` is the usual short name of a surface pressure (`SP`, `PS`, `PSFC`):
/// evidence only together with values a pressure unit fits.
pub(super) fn weak_pressure(base: &str) -> bool {
    ["sp", "ps", "psfc", "pres_sfc", "sfc_pres"].contains(&base.trim().to_lowercase().as_str())
}

/// The quantity `base` (a header without its unit marker) names, and whose it is; `None`
/// when the name names none (a unit alone is no evidence).
pub(super) fn from_name(base: &str) -> Option<(Quantity, Whose)> {
    let lower: Vec<String> = words(base)
        .iter()
        .map(|w| w.to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let compact: String = lower.concat();
    if lower.iter().any(|w| ABOUT.contains(&w.as_str())) {
        return None;
    }
    let q = quantity_word(base)
        .or_else(|| {
            let any = |list: &[&str]| {
                list.contains(&compact.as_str()) || lower.iter().any(|w| list.contains(&w.as_str()))
            };
            if any(&TEMPERATURE) || compact.contains("drybulb") {
                Some(Quantity::Temperature)
            } else if any(&HUMIDITY) || compact.contains("relhum") {
                Some(Quantity::Humidity)
            } else {
                None
            }
        })
        .or_else(|| compound(&lower))?;
    let has = |list: &[&str]| {
        lower.iter().any(|w| {
            list.contains(&w.as_str())
                || list.contains(&w.trim_end_matches(|c: char| c.is_ascii_digit()))
        }) || list.iter().any(|l| l.len() > 4 && compact.contains(l))
    };
    let whose = if has(&OTHER) {
        Whose::Other
    } else if has(&AMBIENT) {
        Whose::Ambient
    } else if lower.iter().all(|w| plain_word(w, q)) {
        Whose::Plain
    } else {
        Whose::Other
    };
    Some((q, whose))
}

/// `dry bulb` written as two words.
fn compound(lower: &[String]) -> Option<Quantity> {
    lower
        .windows(2)
        .any(|w| w[0] == "dry" && w[1] == "bulb")
        .then_some(Quantity::Temperature)
}

/// A word that names the quantity itself, a neutral statistic, or a number.
fn plain_word(w: &str, q: Quantity) -> bool {
    let stem = w.trim_end_matches(|c: char| c.is_ascii_digit());
    stem.is_empty()
        || NEUTRAL.contains(&stem)
        || crate::units::Unit::parse(stem).is_some_and(|u| u.quantity() == q)
        || quantity_word(stem) == Some(q)
        || TEMPERATURE.contains(&stem)
        || HUMIDITY.contains(&stem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Quantity::*;

    #[test]
    fn a_unit_alone_names_no_quantity() {
        assert_eq!(from_name("GHI uncert"), None);
        assert_eq!(from_name("GHI"), None);
        assert_eq!(from_name("Global illum uncert"), None);
        assert_eq!(from_name("TotCld"), None);
    }

    #[test]
    fn humidity_names_are_read() {
        for n in [
            "RH",
            "Rel Hum",
            "relative humidity",
            "RHum",
            "Relative Humidity",
        ] {
            assert_eq!(from_name(n), Some((Humidity, Whose::Plain)), "{n}");
        }
        // What describes a reading (its uncertainty, source, flag) measures nothing.
        assert_eq!(from_name("RHum uncert"), None);
        assert_eq!(from_name("Dry-bulb uncert (code)"), None);
        assert_eq!(from_name("Temp (stdev)"), None);
    }

    #[test]
    fn temperature_names_are_read_with_whose_they_are() {
        assert_eq!(from_name("Dry-bulb"), Some((Temperature, Whose::Ambient)));
        assert_eq!(from_name("Dry bulb"), Some((Temperature, Whose::Ambient)));
        assert_eq!(from_name("T_air"), Some((Temperature, Whose::Ambient)));
        assert_eq!(
            from_name("AmbientTemperature"),
            Some((Temperature, Whose::Ambient))
        );
        assert_eq!(
            from_name("Air Temperature"),
            Some((Temperature, Whose::Ambient))
        );
        assert_eq!(from_name("T2m"), Some((Temperature, Whose::Ambient)));
        assert_eq!(
            from_name("Temperature @ 2m"),
            Some((Temperature, Whose::Ambient))
        );
        assert_eq!(
            from_name("Temperature @ 50m"),
            Some((Temperature, Whose::Other))
        );
        assert_eq!(from_name("Temp"), Some((Temperature, Whose::Plain)));
        assert_eq!(from_name("Temperature"), Some((Temperature, Whose::Plain)));
        assert_eq!(from_name("temp2"), Some((Temperature, Whose::Plain)));
        assert_eq!(from_name("AirT_C_Avg"), Some((Temperature, Whose::Ambient)));
        for n in [
            "Module Temp",
            "Dew Point Temp",
            "temp_max",
            "CR1000 Temp",
            "WaterT",
        ] {
            assert_eq!(from_name(n), Some((Temperature, Whose::Other)), "{n}");
        }
        // A dew point alone names no temperature at all.
        assert_eq!(from_name("Dew-point"), None);
    }

    #[test]
    fn pressure_names_are_read() {
        assert_eq!(from_name("Pressure"), Some((Pressure, Whose::Plain)));
        // A unit word inside the name (Campbell's `BP_mbar_Avg`) says nothing of whose.
        assert_eq!(from_name("BP_mbar_Avg"), Some((Pressure, Whose::Plain)));
        assert_eq!(from_name("Vapor Pressure").map(|q| q.1), Some(Whose::Other));
        assert_eq!(
            from_name("Station Pressure"),
            Some((Pressure, Whose::Ambient))
        );
    }
}
