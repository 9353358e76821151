//! Measurement units: the three canonical quantities, the units their values arrive in,
//! conversion to the stored canonical units (°C, %RH, hPa), physical limits, and unit
//! markers in header names ([`split_header_unit`]).
//!
//! Nothing here allocates per value: [`Unit::to_canonical`] is one multiply-add and
//! [`physically_possible`] one comparison, so both may run once per cell. Parsing a unit or
//! splitting a header runs once per column.

mod header;
mod range;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use header::{UnitMarker, is_temperature_word, quantity_word, split_header_unit};
pub use range::{Range, Ranges};

/// Kelvin offset of the Celsius scale.
pub const KELVIN_OFFSET: f64 = 273.15;

/// The lowest physically possible temperature, absolute zero, in °C.
pub const ABSOLUTE_ZERO_C: f64 = -KELVIN_OFFSET;

/// Slack allowed below a physical limit for rounding in a unit conversion: absolute zero
/// written in °F (−459.67) converts to −273.15 plus or minus one ulp.
const LIMIT_SLACK: f64 = 1e-9;

/// One of the three quantities the database stores in canonical units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    Temperature,
    Humidity,
    Pressure,
}

impl Quantity {
    /// Every quantity, in column order.
    pub const ALL: [Quantity; 3] = [
        Quantity::Temperature,
        Quantity::Humidity,
        Quantity::Pressure,
    ];

    /// The unit values of this quantity are stored in: °C, %RH or hPa.
    pub fn canonical_unit(self) -> Unit {
        match self {
            Quantity::Temperature => Unit::Celsius,
            Quantity::Humidity => Unit::Percent,
            Quantity::Pressure => Unit::Hectopascal,
        }
    }

    /// The canonical column name: `temperature`, `humidity` or `pressure`.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::Temperature => "temperature",
            Quantity::Humidity => "humidity",
            Quantity::Pressure => "pressure",
        }
    }

    /// Every unit of this quantity, canonical first (in the order of the table); for
    /// messages such as "temperature accepts degC, degF, K".
    pub fn units(self) -> impl Iterator<Item = Unit> {
        Unit::ALL.into_iter().filter(move |u| u.quantity() == self)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// hPa per mmHg: 13595.1 kg/m³ × 9.80665 m/s² × 1 mm, the conventional definition.
const HPA_PER_MMHG: f64 = 1.333_223_874_15;
/// hPa per inHg: 25.4 mmHg.
const HPA_PER_INHG: f64 = 25.4 * HPA_PER_MMHG;

/// Declares the units, one entry each: its doc (the help), the variant, the name used in
/// profiles, reports and file metrics (`= "degC"`), its quantity, a bare letter if one
/// reads as it (only where the text is known to be a unit), the other spellings (folded
/// as [`Norm`] folds: lowercase, no spaces, `_`, `.` or `-`), whether a degree prefix
/// (`°`, `deg`, `degrees`) may precede the letter and spellings, and the conversion to
/// the stored unit of its quantity and back. Generates [`Unit`], [`Unit::ALL`],
/// [`Unit::name`], [`Unit::quantity`], [`Unit::to_canonical`], [`Unit::from_canonical`]
/// and the spelling table [`Unit::parse`] reads. A quantity's canonical unit comes first
/// among its units.
macro_rules! units {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal, $quantity:ident,
            letter: $letter:expr, spellings: [$($spelling:literal),* $(,)?], degree: $degree:literal,
            to: |$to_v:ident| $to:expr, from: |$from_v:ident| $from:expr;
    )*) => {
        /// A unit a temperature, humidity or pressure value can arrive in.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Unit {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Unit {
            /// Every unit, grouped by quantity, as declared.
            pub const ALL: [Unit; [$(Unit::$variant),*].len()] = [$(Unit::$variant),*];

            /// The unit in a few words: the entry's doc comment (for the generated
            /// reference, `docs/reference/units.md`).
            pub fn description(self) -> &'static str {
                match self {
                    $(Unit::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }

            /// The quantity this unit measures.
            pub fn quantity(self) -> Quantity {
                match self {
                    $(Unit::$variant => Quantity::$quantity,)*
                }
            }

            /// The spelling used in profiles, reports and file metrics (`degC`, `hPa`,
            /// …). [`Unit::parse`] reads it back to the same unit.
            pub fn name(self) -> &'static str {
                match self {
                    $(Unit::$variant => $name,)*
                }
            }

            /// `v` in this unit, converted to the canonical unit of its quantity (°C,
            /// %RH, hPa). Strictly increasing in `v` (up to rounding); NaN stays NaN. Does
            /// not check limits: see [`physically_possible`].
            #[inline]
            pub fn to_canonical(self, v: f64) -> f64 {
                match self {
                    $(Unit::$variant => { let $to_v = v; $to })*
                }
            }

            /// The inverse of [`Unit::to_canonical`]: `v` in the canonical unit,
            /// expressed in this unit (for showing a configured range in the source unit).
            #[inline]
            pub fn from_canonical(self, v: f64) -> f64 {
                match self {
                    $(Unit::$variant => { let $from_v = v; $from })*
                }
            }
        }

        /// Every unit's bare letter (if any), other spellings and whether a degree
        /// prefix may precede them, in the order of the table.
        const SPELLINGS: &[(Unit, Option<&str>, &[&str], bool)] = &[
            $((Unit::$variant, $letter, &[$($spelling),*], $degree),)*
        ];
    };
}

units! {
    /// Degrees Celsius (canonical temperature).
    Celsius = "degC", Temperature,
        letter: Some("c"), spellings: ["celsius", "centigrade"], degree: true,
        to: |v| v, from: |v| v;
    /// Degrees Fahrenheit.
    Fahrenheit = "degF", Temperature,
        letter: Some("f"), spellings: ["fahrenheit"], degree: true,
        to: |v| (v - 32.0) * (5.0 / 9.0), from: |v| v * (9.0 / 5.0) + 32.0;
    /// Kelvin.
    Kelvin = "K", Temperature,
        letter: Some("k"), spellings: ["kelvin"], degree: true,
        to: |v| v - KELVIN_OFFSET, from: |v| v + KELVIN_OFFSET;
    /// Relative humidity in percent (canonical).
    Percent = "%", Humidity,
        letter: None, spellings: ["%", "%rh", "rh%", "pct", "pctrh", "percent", "percentrh"],
        degree: false,
        to: |v| v, from: |v| v;
    /// Relative humidity as a fraction, 0–1.
    Fraction = "fraction", Humidity,
        letter: None, spellings: ["fraction", "frac"], degree: false,
        to: |v| v * 100.0, from: |v| v / 100.0;
    /// Hectopascal (canonical pressure).
    Hectopascal = "hPa", Pressure,
        letter: None, spellings: ["hpa", "hectopascal", "hectopascals"], degree: false,
        to: |v| v, from: |v| v;
    /// Millibar, equal to the hectopascal.
    Millibar = "mbar", Pressure,
        letter: None, spellings: ["mbar", "mbars", "mb", "millibar", "millibars"], degree: false,
        to: |v| v, from: |v| v;
    /// Pascal.
    Pascal = "Pa", Pressure,
        letter: None, spellings: ["pa", "pascal", "pascals"], degree: false,
        to: |v| v / 100.0, from: |v| v * 100.0;
    /// Kilopascal.
    Kilopascal = "kPa", Pressure,
        letter: None, spellings: ["kpa", "kilopascal", "kilopascals"], degree: false,
        to: |v| v * 10.0, from: |v| v / 10.0;
    /// Inch of mercury (conventional, 25.4 mmHg).
    InchMercury = "inHg", Pressure,
        letter: None, spellings: ["inhg", "inchhg", "inchesofmercury", "inchofmercury"],
        degree: false,
        to: |v| v * HPA_PER_INHG, from: |v| v / HPA_PER_INHG;
    /// Millimetre of mercury (conventional, 133.322387415 Pa).
    MillimetreMercury = "mmHg", Pressure,
        letter: None, spellings: ["mmhg", "millimetresofmercury", "millimetersofmercury"],
        degree: false,
        to: |v| v * HPA_PER_MMHG, from: |v| v / HPA_PER_MMHG;
}

impl Unit {
    /// Reads how people write a unit, ignoring case, spaces, `_`, `.` and `-`: the
    /// names and spellings of the table above (`degC`, `°C`, `deg C`, `degrees Celsius`,
    /// `%RH`, `pct`, `mb`, `in Hg`, …). `º`, `℃`, a degree sign mis-decoded from
    /// Windows-1252 (`Â°C`) or replaced by U+FFFD (`�C`) count as a degree sign.
    ///
    /// A bare letter (`C`, `F`, `K`) is accepted because the caller hands over text
    /// that is known to be a unit (a profile value, a units row, a bracketed marker); for
    /// header names use [`split_header_unit`], which accepts a bare letter only after a
    /// temperature word. Returns `None` for anything else, including units of other
    /// quantities (`m/s`) and pressure units we do not convert (`bar`, `torr`).
    pub fn parse(s: &str) -> Option<Unit> {
        let norm = Norm::new(s)?;
        parse_normalized(norm.as_str()).map(|(unit, _bare)| unit)
    }

    /// How the unit may be written besides its name, as the table declares it: a bare
    /// letter (if any), the other spellings (folded: lowercase, no spaces, `_`, `.` or
    /// `-`), and whether a degree prefix (`°`, `deg`, `degrees`) may precede them.
    pub fn spellings(self) -> (Option<&'static str>, &'static [&'static str], bool) {
        SPELLINGS
            .iter()
            .find(|(unit, ..)| *unit == self)
            .map_or((None, &[], false), |&(_, letter, spellings, degree)| {
                (letter, spellings, degree)
            })
    }

    /// The names of every unit, as [`Unit::name`] writes them: `degC, degF, K, …`.
    pub fn names() -> String {
        Unit::ALL.map(Unit::name).join(", ")
    }
}

/// What a person can do about a unit the agent does not convert ([`crate::rule`]'s
/// `unknown_unit` advice), naming every unit it does convert.
pub fn unknown_unit_advice() -> &'static str {
    static ADVICE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "The header names a unit this agent does not convert. Name the source unit in a \
             profile (measures.temperature.unit = \"degF\", …); convertible: {}.",
            Unit::names()
        )
    });
    &ADVICE
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A unit text that [`Unit::parse`] does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown unit `{0}`: expected one of {names} (or a common spelling such as °F, deg C, \
     kelvin, %RH, pct, mb)",
    names = Unit::names()
)]
pub struct UnknownUnit(pub String);

impl FromStr for Unit {
    type Err = UnknownUnit;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Unit::parse(s).ok_or_else(|| UnknownUnit(s.to_owned()))
    }
}

impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Unit;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a unit such as \"degC\", \"degF\", \"K\", \"%\", \"fraction\", \"hPa\", \"kPa\" or \"inHg\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Unit, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Whether `canonical` (a value already in °C, %RH or hPa) is physically possible for
/// `q`: temperature at or above absolute zero (−273.15 °C, with 1e-9 °C of slack for
/// conversion rounding), humidity at or above 0 %RH, pressure above 0 hPa. NaN and
/// infinities are not possible. This holds whatever range is configured; it is not a
/// range check.
#[inline]
pub fn physically_possible(q: Quantity, canonical: f64) -> bool {
    if !canonical.is_finite() {
        return false;
    }
    match q {
        Quantity::Temperature => canonical >= ABSOLUTE_ZERO_C - LIMIT_SLACK,
        Quantity::Humidity => canonical >= 0.0,
        Quantity::Pressure => canonical > 0.0,
    }
}

/// A unit text folded for matching, on the stack: ASCII lowercased; spaces, `_`, `.` and
/// `-` dropped; `º`, `Â°`, U+FFFD unified to `°`; `℃`/`℉` spelled out; `²`/`³` as digits;
/// `µ`/`μ` as `u`. `None` when the text does not fit (no unit is that long).
pub(crate) struct Norm {
    buf: [u8; Norm::CAP],
    len: usize,
}

impl Norm {
    const CAP: usize = 48;

    pub(crate) fn new(s: &str) -> Option<Norm> {
        let mut n = Norm {
            buf: [0; Norm::CAP],
            len: 0,
        };
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                c if c.is_whitespace() => {}
                '_' | '.' | '-' => {}
                // "°" (C2 B0) read as Windows-1252 is "Â°".
                'Â' if chars.peek() == Some(&'°') => {}
                'º' | '\u{FFFD}' => n.push_str("°")?,
                '℃' => n.push_str("°c")?,
                '℉' => n.push_str("°f")?,
                '²' => n.push_str("2")?,
                '³' => n.push_str("3")?,
                'µ' | 'μ' => n.push_str("u")?,
                c => {
                    let mut b = [0; 4];
                    n.push_str(c.to_ascii_lowercase().encode_utf8(&mut b))?;
                }
            }
        }
        Some(n)
    }

    fn push_str(&mut self, s: &str) -> Option<()> {
        let end = self.len.checked_add(s.len())?;
        self.buf
            .get_mut(self.len..end)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Some(())
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole characters are pushed, so this never fails.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Strips a degree prefix (`°`, `degrees`, `degree`, `deg`) from folded text.
pub(crate) fn strip_degree(n: &str) -> Option<&str> {
    ["°", "degrees", "degree", "deg"]
        .iter()
        .find_map(|p| n.strip_prefix(p))
}

/// Parses folded text by the table of [`units!`]; the flag says the unit was a bare
/// letter (`c`, `f`, `k`).
pub(crate) fn parse_normalized(n: &str) -> Option<(Unit, bool)> {
    if let Some(rest) = strip_degree(n) {
        // After a degree prefix only temperature scales make sense.
        return SPELLINGS
            .iter()
            .find(|(_, letter, spellings, degree)| {
                *degree && (*letter == Some(rest) || spellings.contains(&rest))
            })
            .map(|&(unit, ..)| (unit, false));
    }
    if let Some(&(unit, ..)) = SPELLINGS.iter().find(|(_, letter, ..)| *letter == Some(n)) {
        return Some((unit, true));
    }
    SPELLINGS
        .iter()
        .find(|(_, _, spellings, _)| spellings.contains(&n))
        .map(|&(unit, ..)| (unit, false))
}

#[cfg(test)]
mod tests;
