//! The one list of rules: every reason a row or a file can be refused, with its
//! machine-readable name (as written in quarantine reports and `check --json`), a few
//! words for tables, and advice for the person who fixes the file.
//!
//! Adding a rule is adding a variant here: the compiler then asks for its name, its
//! short reason and its advice, and the report, `check`, `quarantine list/show` and the
//! metrics pick it up.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! rules {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $short:literal, $advice:expr;)*) => {
        /// A rule a cell, a row, or a whole file broke; or a decision of the pipeline
        /// about a file ([`Rule::FileTooLarge`], [`Rule::GrewAfterLoad`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Rule {
            /// Every rule, in the order they are declared.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The machine-readable name, as written in reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(Rule::$variant => $name,)*
                }
            }

            /// The reason in a few words, for tables.
            pub fn short_reason(self) -> &'static str {
                match self {
                    $(Rule::$variant => $short,)*
                }
            }

            /// What a person can do about it.
            pub fn advice(self) -> &'static str {
                match self {
                    $(Rule::$variant => $advice,)*
                }
            }

            /// What the rule refuses, in one sentence: the variant's doc comment (for
            /// the generated reference, `docs/reference/rules.md`).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Rule::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }
    };
}

const NOT_TEXT: &str = "The file has bytes that are not text: re-export it as UTF-8 and remove \
     NUL or control characters from sensor ids.";
const TWO_NAMES: &str = "Two header names mean the same column; remove or rename one of them.";

rules! {
    // Cells and rows.
    /// A required cell (timestamp, sensor id) is empty.
    MissingValue = "missing_value", "missing value",
        "Every row needs a timestamp and a sensor id. Fill them in from the source, or \
         delete rows that cannot be attributed.";
    /// The timestamp cell is not a time in any accepted form.
    InvalidTimestamp = "invalid_timestamp", "bad timestamp",
        "Write times as RFC 3339 (2024-05-01T12:00:00Z), ISO 8601 without offset (read in \
         SOURCE_TIMEZONE) or Unix epoch seconds. Other forms (day/month dates, separate date \
         and time columns, 12-hour clocks) need a profile with [time]; check for impossible \
         dates and 24:00.";
    /// A local time inside a daylight-saving gap.
    NonexistentLocalTime = "nonexistent_local_time", "time in DST gap",
        "The local time falls in a daylight-saving gap of SOURCE_TIMEZONE. Export with an \
         offset or in UTC, or set SOURCE_TIMEZONE to the zone the device really used.";
    /// A measurement cell is not a number.
    NotANumber = "not_a_number", "not a number",
        "A measurement cell is not a decimal number. Use a dot as decimal separator and no \
         thousands separator (21.5, not 21,5); leave the cell empty when there is no value.";
    /// NaN, infinity, or a number too large for a double.
    NotFinite = "not_finite", "not finite",
        "NaN, inf or overflowing numbers are refused. Leave the cell empty when the sensor \
         had no value.";
    /// A measurement outside its configured range.
    OutOfRange = "out_of_range", "out of range",
        "The value is outside the accepted range (TEMPERATURE_*, HUMIDITY_*, PRESSURE_* \
         settings). Check the unit (°C, %RH, hPa) and the sensor; widen the range only if \
         such values are real.";
    /// Every measurement cell of the row is empty.
    NoMeasurement = "no_measurement", "no measurement",
        "Every measurement cell of the row is empty. Remove the row, or fill in at least \
         one value.";
    /// A cell (or the header) is not UTF-8.
    InvalidUtf8 = "invalid_utf8", "not UTF-8", NOT_TEXT;
    /// A sensor id with a control character, or a NUL byte in any cell.
    ControlCharacter = "control_character", "control character", NOT_TEXT;
    /// A sensor id over 256 bytes.
    TooLong = "too_long", "sensor id too long",
        "A sensor id is over 256 bytes: the export is probably broken.";
    /// A value outside what physics allows, whatever the configured range.
    PhysicallyImpossible = "physically_impossible", "physically impossible",
        "The value is below absolute zero, a negative humidity, or a pressure of zero or \
         less: no setting makes that real. Check the unit and the sensor; a missing-value \
         code (-9999, -7999) belongs in the profile's `missing` list.";
    /// One sensor, time and measure given two different values (long-shape files).
    ConflictingValues = "conflicting_values", "conflicting values",
        "Two rows of a long file give the same sensor, time and measure different \
         values: the export holds two sources for one reading. Remove the wrong row, or \
         map the two metrics or entities to different measures in the profile's \
         shape.metrics.";
    /// Rows broke different rules; the report lists each.
    InvalidRows = "invalid_rows", "several row problems",
        "Several rules were broken: see each problem's own rule and advice.";

    // The whole file.
    /// Zero bytes.
    EmptyFile = "empty_file", "empty file", "The file is empty: re-export it, or purge it.";
    /// A header and no data rows.
    HeaderOnly = "header_only", "header only",
        "The file has a header and no data: nothing to load; purge it.";
    /// No timestamp or sensor id column.
    MissingColumn = "missing_column", "missing column",
        "A required column (timestamp or sensor id) is missing or named in a way not \
         recognised; rename the header (the accepted names are in docs/inputs.md).";
    /// No temperature, humidity or pressure column.
    NoMeasurementColumn = "no_measurement_column", "no measurement column",
        "No temperature, humidity or pressure column was recognised; rename the header \
         (temperature/temp/t, humidity/rh/hum, pressure/p/press).";
    /// A header name appears twice.
    DuplicateHeader = "duplicate_header", "duplicate header", TWO_NAMES;
    /// Two header names stand for the same canonical column.
    AmbiguousColumn = "ambiguous_column", "ambiguous column", TWO_NAMES;
    /// A line with another number of fields than the header.
    FieldCount = "field_count", "wrong field count",
        "A line has a different number of fields than the header: look for an unquoted \
         comma inside a value, a missing field, or a truncated last line.";
    /// A record over 1 MiB.
    RecordTooLarge = "record_too_large", "record too large",
        "A record is over 1 MiB, usually an unbalanced quote that swallows the rest of the \
         file; fix the quoting.";
    /// The file could not be read (never quarantined: the file is tried again).
    Io = "io", "unreadable",
        "The file could not be read: check its permissions and the disk, then retry.";

    /// A column the profile names is not in the file, or its metadata or time cannot be read.
    ProfileMismatch = "profile_mismatch", "profile does not fit",
        "The profile that matched this file names a column, metadata field or time part the \
         file does not have (the message says which key). Fix the profile (or its match \
         globs), then `quarantine retry` the file.";
    /// A header's unit disagrees with the profile or with the column's quantity.
    UnitMismatch = "unit_mismatch", "unit mismatch",
        "The header names one unit and the profile another, or a unit of another quantity. \
         Say the right unit in the profile (measures.NAME.unit) or fix the header.";
    /// A header names a unit the agent does not convert.
    UnknownUnit = "unknown_unit", "unknown unit",
        crate::units::unknown_unit_advice();
    /// Dates that read differently day-first and month-first, with nothing to decide.
    AmbiguousDateOrder = "ambiguous_date_order", "ambiguous date order",
        "Dates like 03/04/2024 mean different days day-first and month-first, and no date \
         in the file has a day over 12. Give the order in a profile (time.order = \"dmy\" \
         or \"mdy\") or export ISO dates (2024-04-03).";
    /// The sensor column found by name is unique on every row.
    SensorIsRowId = "sensor_is_row_id", "sensor column is a row id",
        "The column taken as the sensor id has a different value on every row: it is a row \
         or log id. Name the real sensor column in a profile (sensor.column), or a \
         constant, file-name capture or metadata field (sensor.constant, …).";
    /// A sensor id that reads as a clock time or a date (`01:00`, `2024-05-01`).
    SensorIsTime = "sensor_is_time", "sensor id is a time",
        "Sensor ids such as 01:00 or 2024-05-01 are times or dates: the column taken as the \
         sensor holds the time of day or the date. Name the real sensor in the profile \
         (sensor.column, sensor.constant, …) and read that column as part of the time \
         (time.columns = [\"Date\", \"Time\"]). A profile that really names sensors \
         like this lists the rule in `relax`.";
    /// One sensor at one time with two different readings (wide files).
    DuplicateTime = "duplicate_time", "two readings at one time",
        "Two rows give one sensor at one instant different values: the file holds two \
         sources for one reading, or its times lose a part (seconds, a time of day, the \
         sensor). Remove the wrong rows, or read the missing part of the time or the \
         sensor in the profile; list the rule in the profile's `relax` only if both \
         readings must be stored.";
    /// Many readings of one sensor stacked on one instant: the time misses its time of day.
    StackedTimes = "stacked_times", "many readings at one instant",
        "Three or more readings of one sensor fall on the same instant with different \
         values: the time column gives a date (or an hour) where the rows are minutes or \
         hours apart, usually because a time-of-day column beside it is not read. Read \
         both in the profile (time.columns = [\"Date\", \"Time\"]).";
    /// A local time of the autumn change whose order in the file does not prove which one.
    AmbiguousLocalTime = "ambiguous_local_time", "local time happens twice",
        "A local time happens twice when clocks go back, and the file's order does not say \
         which one is meant (a sensor's times must go back once, then forward again). \
         Export with a UTC offset or in UTC, or set time.zone to a fixed offset \
         (\"-05:00\") if the device kept standard time all year.";
    /// Every relative humidity of the file lies between 0 and 1: a fraction, not %RH.
    HumidityFraction = "humidity_fraction", "humidity as a fraction",
        "Every relative humidity of the file lies between 0 and 1: the export writes a \
         fraction (0.55 = 55 %RH), not percent. Say so in a profile \
         (measures.humidity.unit = \"fraction\") and it is converted; list the rule in \
         the profile's `relax` only if the air really was that dry.";
    /// More bad rows than the profile's row policy allows.
    TooManyBadRows = "too_many_bad_rows", "too many bad rows",
        "More rows are bad than the profile's rows.max_bad_rows / max_bad_percent allow: \
         the file is held back whole. Fix the rows (the report lists them) or the profile.";

    // Decisions of the pipeline and of the database.
    /// Over `MAX_FILE_BYTES`: quarantined unread.
    FileTooLarge = "file_too_large", "file too large",
        "The file is larger than MAX_FILE_BYTES and was not read. Split it into smaller \
         files (keeping the header in each), or raise MAX_FILE_BYTES.";
    /// Appended to after its rows were committed.
    GrewAfterLoad = "grew_after_load", "grew after load",
        "A producer appended to the file after its rows were loaded; those rows stay \
         loaded, once. Move the bytes after the loaded ones (the report says how many) into \
         a new file with the header, drop that, and purge this one.";
    /// A followed file holds, for a sensor and time already stored, another value: read
    /// again from the start after a rewrite, or written by a logger whose clock was set
    /// back.
    RewrittenValue = "rewritten_value", "stored value rewritten",
        "A followed file gave a different value for a sensor and time already stored (a \
         rewritten file, or a logger clock set back). The stored value stays; nothing of this \
         increment was loaded. Fix the logger's clock, or correct the stored reading by hand \
         if the new value is the right one.";
    /// The database refused a value the validator accepted.
    DatabaseRejected = "database_rejected", "database refused",
        "The database refused a value the validator accepted; the message says which. Fix \
         the value, or report it as a bug.";
}

impl Rule {
    /// The whole-file rules that refuse what no careful person would store; a profile
    /// turns one off only by naming it in its `relax` list.
    pub const RELAXABLE: &'static [Rule] = &[
        Rule::SensorIsTime,
        Rule::DuplicateTime,
        Rule::StackedTimes,
        Rule::AmbiguousLocalTime,
        Rule::HumidityFraction,
    ];

    /// The rule named `name`, as written in reports.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.name() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compares with a rule's name, as written in a report.
impl PartialEq<&str> for Rule {
    fn eq(&self, name: &&str) -> bool {
        self.name() == *name
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Rule::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rule {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for &rule in Rule::ALL {
            let name = rule.name();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert_eq!(Rule::from_name(name), Some(rule));
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        }
        assert_eq!(Rule::from_name("something else"), None);
        assert!(serde_json::from_str::<Rule>("\"something else\"").is_err());
    }

    #[test]
    fn every_rule_has_its_own_words_and_advice() {
        let shorts: HashSet<_> = Rule::ALL.iter().map(|r| r.short_reason()).collect();
        assert_eq!(
            shorts.len(),
            Rule::ALL.len(),
            "two rules share a short reason"
        );
        for &rule in Rule::ALL {
            assert!(rule.advice().len() > 20, "{rule}: advice too thin");
        }
    }
}
