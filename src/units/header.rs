//! Unit markers in header names: `Temp (F)`, `temp_f`, `Temp, °C (LGR S/N: …)`.
//!
//! A wrong marker is worse than none, so every rule needs evidence: a bracket, a HOBO
//! comma, a degree sign, or a separator after a word that names the quantity. A bare
//! letter (`C`, `F`, `K`) counts only after a temperature word. Text that could be a
//! processing step, a position or an index (`(avg)`, `(in)`, `(1)`, `_Avg`) is never a
//! marker. Campbell names with the unit in the middle (`AirT_C_Avg`) are not read here:
//! profiles name such columns with their unit.

use super::{Norm, Quantity, Unit, parse_normalized, strip_degree};

/// What a header name says about the unit of its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitMarker {
    /// A unit we read and convert. Only this variant lets a column load as a canonical
    /// quantity, and only when `unit.quantity()` matches the quantity the base names
    /// (`Pressure [°C]` gives `Known(Celsius)`: the caller must refuse that column).
    Known(Unit),
    /// A unit of a quantity we do not convert (`m/s`, `W/m^2`, `ppm`, `mm`, `dB`, `lux`,
    /// an angle `°` or `deg`, or a pressure unit such as `psi` on a column whose name is not
    /// a quantity word), as written. The caller keeps the column as a further measure with
    /// this unit text; it is never one of the canonical three.
    Other(String),
    /// Clearly a unit marker that we cannot read for a canonical quantity, as written:
    /// `Temp (degR)`, `Pressure [psi]`, `Temp (°)`, anything with a degree sign we do not
    /// know. The caller refuses such a column rather than guessing.
    Unknown(String),
}

/// Splits a header name into its base name and the unit marker it carries.
///
/// Guarantees:
/// - With `None`, the base is the trimmed name, unchanged: the caller matches it exactly
///   as before (a name that merely contains a unit-like word is not reinterpreted).
/// - With a marker, the base is the text before the marker, without surrounding
///   punctuation, followed by any text after the marker that is not a serial number
///   (`#9724974`, `(LGR S/N: …)`, `()`): `Temp (F)` → `Temp`, `temp_f` → `temp`,
///   `Temp, °C (LGR S/N: 2073)` → `Temp`, `Temperature [°C] Avg` → `Temperature Avg`.
/// - The base is never longer than `name`; no input panics.
///
/// Forms read, first match wins: a bracketed or parenthesised segment (`Temp [°F]`,
/// `Pressure [mBar]`, `RH (%)`, `Temp (°C) #9724974`); the text after a HOBO comma
/// (`Temp, °C (LGR S/N: …)`, `Temp, °C()`); a degree sign anywhere (`Temp°F`, `°C`,
/// mis-decoded `Â°C`); a suffix after `_`, a space or a glued `%` when the text before it
/// is a quantity word ([`quantity_word`]): `temp_f`, `rh_pct`, `pressure_kpa`,
/// `Temp deg C`, `RH%`.
///
/// Not markers: a bare `C`/`F`/`K` after anything but a temperature word (`field_c`,
/// `Phase (C)`); statistics, positions and indices (`temp_max`, `Temp (avg)`,
/// `Temp (in)`, `WaterT_C(1)`); a unit followed by a processing suffix (Campbell's
/// `AirT_C_Avg`; `AirT_C` alone reads like `temp_c`); a unit glued to the word without a
/// separator (`TempF`). Scaled units (`T (0.1 °C)`, `Temp [°C*10]`) are `Unknown`. Two
/// columns that differ only in serial numbers get the same base, which the caller's
/// duplicate-name check then reports.
pub fn split_header_unit(name: &str) -> (String, Option<UnitMarker>) {
    let s = name.trim();
    match find_marker(s) {
        Some((base, marker)) => (base, Some(marker)),
        None => (s.to_owned(), None),
    }
}

/// The quantity a header base names, if exactly one: temperature for `t`, `temp`, `tmp`,
/// `temperature`, `tair`, `airt` or any name ending in `temp`/`temperature` (`AirTemp`,
/// `air_temp`, `WaterT`, `Dew Point Temp`); humidity for `rh`, `hum`, `humid`,
/// `humidity`, `relh`, `relhum`; pressure for `p`, `pres`, `press`, `pressure`, `bar`,
/// `baro`, `barometer`, `barometric`, `bp`, `slp`, `mslp`, `pmsl`, `qfe`, `qnh`. Words are
/// split at non-alphanumerics and camel-case humps; trailing digits are ignored (`temp1`).
/// A name naming two quantities (`temp_rh`) names none.
pub fn quantity_word(name: &str) -> Option<Quantity> {
    const WORDS: [(Quantity, &[&str]); 3] = [
        (
            Quantity::Temperature,
            &["t", "temp", "tmp", "temperature", "tair", "airt"],
        ),
        (
            Quantity::Humidity,
            &["rh", "hum", "humid", "humidity", "relh", "relhum"],
        ),
        (
            Quantity::Pressure,
            &[
                "p",
                "pres",
                "press",
                "pressure",
                "bar",
                "baro",
                "barometer",
                "barometric",
                "bp",
                "slp",
                "mslp",
                "pmsl",
                "qfe",
                "qnh",
            ],
        ),
    ];
    const ENDINGS: [(Quantity, &[&str]); 3] = [
        (Quantity::Temperature, &["temp", "temperature"]),
        (Quantity::Humidity, &["humidity"]),
        (Quantity::Pressure, &["pressure"]),
    ];
    let mut found = [false; 3];
    for word in words(name) {
        let word = word.trim_end_matches(|c: char| c.is_ascii_digit());
        for (i, (_, list)) in WORDS.iter().enumerate() {
            if list.iter().any(|w| word.eq_ignore_ascii_case(w)) {
                found[i] = true;
            }
        }
    }
    // "airtemp", "outdoortemperature": one word that ends in a quantity word.
    let compact = name
        .trim_end_matches(|c: char| c.is_ascii_digit() || !c.is_alphanumeric())
        .as_bytes();
    for (i, (_, endings)) in ENDINGS.iter().enumerate() {
        if endings.iter().any(|e| {
            compact.len() >= e.len()
                && compact[compact.len() - e.len()..].eq_ignore_ascii_case(e.as_bytes())
        }) {
            found[i] = true;
        }
    }
    let mut quantities = Quantity::ALL.iter().zip(found).filter(|(_, f)| *f);
    match (quantities.next(), quantities.next()) {
        (Some((q, _)), None) => Some(*q),
        _ => None,
    }
}

/// Whether a header base names temperature ([`quantity_word`]); a bare `C`, `F` or `K`
/// counts as a unit only after such a word.
pub fn is_temperature_word(name: &str) -> bool {
    quantity_word(name) == Some(Quantity::Temperature)
}

/// Words of a name: split at non-alphanumerics and where a lowercase letter is followed
/// by an uppercase one (`AirTemp` → `Air`, `Temp`).
fn words(name: &str) -> impl Iterator<Item = &str> {
    let mut start = None::<usize>;
    let mut prev_lower = false;
    let mut chars = name
        .char_indices()
        .chain(std::iter::once((name.len(), ' ')));
    std::iter::from_fn(move || {
        for (i, c) in chars.by_ref() {
            let alnum = c.is_alphanumeric();
            let hump = prev_lower && c.is_uppercase();
            prev_lower = c.is_lowercase();
            let ended = match start {
                Some(s) if !alnum || hump => Some(&name[s..i]),
                _ => None,
            };
            if !alnum {
                start = None;
            } else if start.is_none() || hump {
                start = Some(i);
            }
            if ended.is_some() {
                return ended;
            }
        }
        None
    })
}

/// Where a candidate marker was found; decides which evidence is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Bracket,
    Comma,
    Degree,
    Suffix,
}

/// Units of other quantities, folded as [`Norm`] folds them.
const OTHER_UNITS: &[&str] = &[
    // speed
    "m/s",
    "ms1",
    "km/h",
    "kmh",
    "kph",
    "mph",
    "kn",
    "kt",
    "kts",
    "knot",
    "knots",
    "ft/s",
    // radiation and light
    "w/m2",
    "w/m^2",
    "wm2",
    "kw/m2",
    "kw/m^2",
    "wh/m2",
    "kwh/m2",
    "mj/m2",
    "mj/m^2",
    "umol/m2/s",
    "umol/m^2/s",
    "umolm2s1",
    "umol/s/m2",
    "umol/s/m^2",
    "lux",
    "lx",
    "klux",
    "lum/ft2", // electrical
    "v",
    "mv",
    "volt",
    "volts",
    "vdc",
    "a",
    "ma",
    "ohm",
    "ohms",
    "kohm",
    "w",
    "kw",
    "wh",
    "kwh", // concentration and water
    "ppm",
    "ppb",
    "mg/m3",
    "mg/m^3",
    "ug/m3",
    "ug/m^3",
    "mg/l",
    "g/kg",
    "g/m3",
    "g/m^3",
    "psu",
    "ntu",
    "ms/cm",
    "us/cm", // length and precipitation
    "mm",
    "cm",
    "m",
    "in",
    "ft",
    "inch",
    "inches",
    "meters",
    "metres",
    "mm/h",
    "mm/hr",
    "in/h",
    "in/hr", // angle, sound, frequency, flow
    "rad",
    "db",
    "dba",
    "hz",
    "khz",
    "l/min",
    "m3/h",
    "m^3/h",
];

/// Short units that are also ordinary words or labels (`Temp (in)`, `Probe (A)`): read
/// only after a HOBO comma, where the text is known to be a unit.
const AMBIGUOUS_UNITS: &[&str] = &["v", "a", "w", "m", "in"];

/// Units of a canonical quantity that we do not convert.
const UNSUPPORTED_UNITS: &[&str] = &[
    "psi", "psia", "psig", "bar", "bara", "barg", "atm", "torr", "mtorr", "mpa", "inh2o", "inwc",
    "inwg", "mmh2o", "cmh2o", "kgf/cm2", "kg/cm2", "rankine", "réaumur", "reaumur",
];

/// Classifies the text of a candidate marker; `base` is what the text before it names.
fn classify(token: &str, base: Option<Quantity>, form: Form) -> Option<UnitMarker> {
    let t = token.trim();
    if t.is_empty() {
        return None;
    }
    let degree_sign = t.contains(['°', 'º', '℃', '℉']);
    let Some(norm) = Norm::new(t) else {
        // Longer than any unit: only a degree sign still marks it as one.
        return degree_sign.then(|| UnitMarker::Unknown(t.to_owned()));
    };
    let n = norm.as_str();
    let suffix = form == Form::Suffix;
    if let Some((unit, bare)) = parse_normalized(n) {
        if (bare && base != Some(Quantity::Temperature)) || (suffix && base.is_none()) {
            return None;
        }
        return Some(UnitMarker::Known(unit));
    }
    if let Some(rest) = strip_degree(n) {
        if rest.is_empty() {
            // An angle (wind direction), unless the name says temperature.
            return Some(if base == Some(Quantity::Temperature) {
                UnitMarker::Unknown(t.to_owned())
            } else {
                UnitMarker::Other(t.to_owned())
            });
        }
        if matches!(rest, "n" | "e" | "s" | "w") {
            return Some(UnitMarker::Other(t.to_owned()));
        }
        if degree_sign || (rest.chars().count() <= 3 && rest.chars().all(char::is_alphabetic)) {
            return Some(UnitMarker::Unknown(t.to_owned()));
        }
    }
    if degree_sign {
        return Some(UnitMarker::Unknown(t.to_owned()));
    }
    if UNSUPPORTED_UNITS.contains(&n) {
        return match (base, form) {
            (Some(_), _) => Some(UnitMarker::Unknown(t.to_owned())),
            (None, Form::Suffix) => None,
            (None, _) => Some(UnitMarker::Other(t.to_owned())),
        };
    }
    if OTHER_UNITS.contains(&n) && !suffix && (form == Form::Comma || !AMBIGUOUS_UNITS.contains(&n))
    {
        return Some(UnitMarker::Other(t.to_owned()));
    }
    None
}

/// The first marker in `s` (already trimmed), with the base it leaves.
fn find_marker(s: &str) -> Option<(String, UnitMarker)> {
    bracket_marker(s)
        .or_else(|| comma_marker(s))
        .or_else(|| degree_marker(s))
        .or_else(|| suffix_marker(s))
}

/// Bracketed segments looked at, from the left: real names have one or two, and the
/// bound keeps a hostile header linear.
const MAX_BRACKETS: usize = 8;

fn bracket_marker(s: &str) -> Option<(String, UnitMarker)> {
    let mut from = 0;
    for _ in 0..MAX_BRACKETS {
        let open = from + s.get(from..)?.find(['(', '['])?;
        let close = matching_close(s, open)?;
        let before = trim_base(&s[..open]);
        let content = &s[open + 1..close];
        if let Some(marker) = classify(content, quantity_word(before), Form::Bracket) {
            return Some((join_base(before, &s[close + 1..]), marker));
        }
        from = close + 1;
    }
    None
}

fn comma_marker(s: &str) -> Option<(String, UnitMarker)> {
    let comma = top_level_comma(s)?;
    let head = trim_base(&s[..comma]);
    let tail = &s[comma + 1..];
    let end = tail.find(['(', '[', '#']).unwrap_or(tail.len());
    let marker = classify(&tail[..end], quantity_word(head), Form::Comma)?;
    Some((join_base(head, &tail[end..]), marker))
}

fn degree_marker(s: &str) -> Option<(String, UnitMarker)> {
    let mut chars = s.char_indices().peekable();
    let (at, sign) = loop {
        let (i, c) = chars.next()?;
        match c {
            '°' | 'º' | '℃' | '℉' => break (i, c),
            // A lost byte followed by C or F alone: a degree sign read with the wrong
            // encoding. Anywhere else U+FFFD stands for an unknown character.
            '\u{FFFD}' => {
                let mut rest = s[i + c.len_utf8()..].chars();
                if matches!(rest.next(), Some('C' | 'c' | 'F' | 'f'))
                    && !rest.next().is_some_and(char::is_alphabetic)
                {
                    break (i, c);
                }
            }
            _ => {}
        }
    };
    let start = match s[..at].strip_suffix('Â') {
        Some(before) => before.len(),
        None => at,
    };
    let mut end = at + sign.len_utf8();
    if !matches!(sign, '℃' | '℉') {
        end += s[end..]
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(s.len() - end);
    }
    let before = trim_base(&s[..start]);
    let marker = classify(&s[start..end], quantity_word(before), Form::Degree)?;
    Some((join_base(before, &s[end..]), marker))
}

fn suffix_marker(s: &str) -> Option<(String, UnitMarker)> {
    let (head, token_start) = match s.strip_suffix('%') {
        Some(head) if !head.ends_with(['_', ' ']) => (head, head.len()),
        _ => {
            let sep = s.rfind(['_', ' '])?;
            let head = &s[..sep];
            // "Temp deg C", "temp_deg_c": the degree word belongs to the marker.
            let word_start = head.rfind(['_', ' ']).map_or(0, |i| i + 1);
            let word = &head[word_start..];
            if word_start > 0
                && ["deg", "degree", "degrees"]
                    .iter()
                    .any(|d| word.eq_ignore_ascii_case(d))
            {
                (&head[..word_start], word_start)
            } else {
                (head, sep + 1)
            }
        }
    };
    let token = &s[token_start..];
    if token.contains(['(', ')', '[', ']']) {
        return None;
    }
    let base = trim_base(head);
    if base.is_empty() {
        return None;
    }
    let quantity = quantity_word(base)?;
    let marker = classify(token, Some(quantity), Form::Suffix)?;
    Some((base.to_owned(), marker))
}

/// `before` without trailing separators and spaces.
fn trim_base(before: &str) -> &str {
    before
        .trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, ',' | '_' | '-' | ':' | ';' | '/' | '.' | '|')
        })
        .trim_start()
}

/// The base: `before`, plus the text after the marker unless that is only serial numbers.
fn join_base(before: &str, after: &str) -> String {
    let after = after.trim();
    if is_serial_only(after) {
        before.to_owned()
    } else if before.is_empty() {
        after.to_owned()
    } else {
        format!("{before} {after}")
    }
}

/// Whether `rest` holds only serial numbers: `#9724974`, `(LGR S/N: …, LBL: …)`, `()`.
fn is_serial_only(rest: &str) -> bool {
    let mut r = rest;
    loop {
        r = r.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if r.is_empty() {
            return true;
        }
        if let Some(tag) = r.strip_prefix('#') {
            r = &tag[tag.find(char::is_whitespace).unwrap_or(tag.len())..];
        } else if r.starts_with(['(', '[']) {
            let Some(close) = matching_close(r, 0) else {
                return false;
            };
            let content = r[1..close].trim();
            let serial = content.is_empty()
                || content
                    .as_bytes()
                    .windows(3)
                    .any(|w| w.eq_ignore_ascii_case(b"s/n"))
                || content
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("lbl:"));
            if !serial {
                return false;
            }
            r = &r[close + 1..];
        } else {
            return false;
        }
    }
}

/// The index of the bracket closing the one at `open` (round and square count alike).
fn matching_close(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.get(open..)?.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The first comma outside brackets.
fn top_level_comma(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}
