//! The `[time]` table of a profile: where a file keeps its time and how to read it.

use serde::Deserialize;

use super::DateOrder;
use super::format::CompiledFormat;
use super::zone::parse_zone;

/// Where the time of a record is and how to read it: the `[time]` table of a profile.
///
/// Exactly one way to give the time: [`column`](Self::column), [`columns`](Self::columns),
/// or date parts ([`year`](Self::year) with [`month`](Self::month) + [`day`](Self::day) or
/// [`day_of_year`](Self::day_of_year), and optionally [`hour`](Self::hour) (+
/// [`minute`](Self::minute), [`second`](Self::second)) or [`hhmm`](Self::hhmm)). Column
/// names are matched against the header case-insensitively, ignoring surrounding
/// spaces. [`TimeSpec::check`] says whether a spec is usable; [`super::TimeReader`]
/// compiles it against a file's header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// The one column holding date and time.
    pub column: Option<String>,
    /// Several columns (such as `["Date", "Time"]`), joined with one space and read as one
    /// value.
    pub columns: Option<Vec<String>>,
    /// A chrono `strftime` format for `column`/`columns` (`"%m/%d/%y %I:%M:%S %p"`);
    /// without it, the built-in reader. `%y` reads years 1970–2069; `%p` also accepts a
    /// one-letter `a`/`p` at the end of the value (`12:30a`, as WeatherLink writes). An
    /// offset in the value (`%z`) wins over the zone.
    pub format: Option<String>,
    /// The order of day/month dates for the built-in reader; without it, a file whose
    /// dates can be read both ways is refused unless some value proves the order.
    pub order: Option<DateOrder>,
    /// `column` is a Unix epoch in this unit (UTC by definition: no zone applies).
    pub epoch: Option<EpochUnit>,
    /// Date part: the column holding the year (1–9999).
    pub year: Option<String>,
    /// Date part: the column holding the month (1–12), with `day`.
    pub month: Option<String>,
    /// Date part: the column holding the day of the month, with `month`.
    pub day: Option<String>,
    /// Date part: the column holding the day of the year (1–366), instead of
    /// `month` + `day`.
    pub day_of_year: Option<String>,
    /// Time part: the column holding the hour (0–23; 24 with `end_of_day`); absent: the
    /// date's midnight.
    pub hour: Option<String>,
    /// Time part: the column holding the minute, with `hour`.
    pub minute: Option<String>,
    /// Time part: the column holding the second, with `minute`.
    pub second: Option<String>,
    /// Time part: hour and minute as one number, `0`, `30`, `130`, `2359` (`2400` with
    /// `end_of_day`), instead of `hour`/`minute`.
    pub hhmm: Option<String>,
    /// `24:00` (and `2400`, hour `24`) means the end of that day, that is 00:00 of the
    /// next day; otherwise it is refused.
    #[serde(default)]
    pub end_of_day: bool,
    /// The zone of values without an offset: an IANA name (`"America/Denver"`), which
    /// follows daylight-saving time, or a fixed offset (`"-07:00"`, `"+0530"`, `"UTC-7"`,
    /// `"GMT-05:00"`, `"-7"`, `"5.5"`). Files in local *standard* time all year need the
    /// fixed offset: an IANA zone would refuse the hour that clocks skip in spring, which
    /// such files contain. Absent (and no other zone key): the agent's
    /// `SOURCE_TIMEZONE`.
    pub zone: Option<String>,
    /// The zone is a field of the file's metadata line (the profile's name for it); its
    /// text is read like [`zone`](Self::zone).
    pub zone_from_metadata: Option<String>,
    /// The zone is written in the time column's header as a fixed offset: HOBO's
    /// `Date Time, GMT-05:00`, `Time (UTC)`. Abbreviations such as `EDT` are refused.
    /// The column may then be named without its zone (`column = "Date Time"`).
    #[serde(default)]
    pub zone_from_header: bool,
}

/// The unit of a Unix epoch column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum EpochUnit {
    /// `"s"`
    #[serde(rename = "s")]
    Seconds,
    /// `"ms"`
    #[serde(rename = "ms")]
    Milliseconds,
    /// `"us"`
    #[serde(rename = "us")]
    Microseconds,
}

impl EpochUnit {
    /// Nanoseconds in one unit.
    pub(super) fn nanos(self) -> i128 {
        match self {
            EpochUnit::Seconds => 1_000_000_000,
            EpochUnit::Milliseconds => 1_000_000,
            EpochUnit::Microseconds => 1_000,
        }
    }
}

impl TimeSpec {
    /// The date and time parts that are set, with their keys, in reading order.
    pub(super) fn parts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("time.year", &self.year),
            ("time.month", &self.month),
            ("time.day", &self.day),
            ("time.day_of_year", &self.day_of_year),
            ("time.hour", &self.hour),
            ("time.minute", &self.minute),
            ("time.second", &self.second),
            ("time.hhmm", &self.hhmm),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    /// Checks that the keys fit together and that the format and zone can be read.
    /// The error names the first key at fault (`time.format: …`) and what is expected.
    pub fn check(&self) -> Result<(), String> {
        let has_parts = self.parts().next().is_some();
        let ways = [self.column.is_some(), self.columns.is_some(), has_parts];
        match ways.iter().filter(|w| **w).count() {
            0 => {
                return Err("time: say where the time is: `column = \"…\"`, `columns = \
                            [\"Date\", \"Time\"]`, or date parts (`year` with `month` and \
                            `day`, or `day_of_year`)"
                    .into());
            }
            1 => {}
            _ => {
                let given: Vec<&str> = [
                    ("`column`", ways[0]),
                    ("`columns`", ways[1]),
                    ("date parts", ways[2]),
                ]
                .into_iter()
                .filter_map(|(k, on)| on.then_some(k))
                .collect();
                return Err(format!(
                    "time: give exactly one of `column`, `columns` or date parts, not {}",
                    given.join(" and ")
                ));
            }
        }
        if self.column.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err("time.column: expected a column name, found an empty one".into());
        }
        if let Some(cols) = &self.columns {
            if cols.is_empty() {
                return Err("time.columns: expected at least one column name".into());
            }
            if cols.iter().any(|c| c.trim().is_empty()) {
                return Err("time.columns: expected column names, found an empty one".into());
            }
        }
        if has_parts {
            self.check_parts()?;
        }
        if let Some(f) = &self.format {
            if has_parts {
                return Err(
                    "time.format: a format reads `column` or `columns`, not date parts".into(),
                );
            }
            if self.epoch.is_some() {
                return Err("time.format: give a format or an epoch unit, not both".into());
            }
            CompiledFormat::new(f).map_err(|e| format!("time.format: {e}"))?;
        }
        if self.order.is_some() && (has_parts || self.format.is_some() || self.epoch.is_some()) {
            return Err(
                "time.order: the date order is for the built-in reader only; a \
                        format, an epoch or date parts already fix it"
                    .into(),
            );
        }
        if self.epoch.is_some() {
            if self.column.is_none() {
                return Err("time.epoch: an epoch is one column: use `column`".into());
            }
            if self.end_of_day {
                return Err("time.end_of_day: an epoch has no 24:00".into());
            }
        }
        self.check_zone()
    }

    fn check_parts(&self) -> Result<(), String> {
        if self.year.is_none() {
            return Err("time.year: date parts need the `year` column".into());
        }
        match (&self.month, &self.day, &self.day_of_year) {
            (Some(_), Some(_), None) | (None, None, Some(_)) => {}
            (_, _, Some(_)) => {
                return Err(
                    "time.day_of_year: give `month` and `day`, or `day_of_year`, not both".into(),
                );
            }
            (None, _, None) => {
                return Err("time.month: give `month` with `day` (or `day_of_year`)".into());
            }
            (_, None, None) => {
                return Err("time.day: give `day` with `month` (or `day_of_year`)".into());
            }
        }
        if self.hhmm.is_some()
            && (self.hour.is_some() || self.minute.is_some() || self.second.is_some())
        {
            return Err(
                "time.hhmm: give `hhmm`, or `hour` (with `minute`, `second`), not both".into(),
            );
        }
        if self.minute.is_some() && self.hour.is_none() {
            return Err("time.minute: `minute` needs `hour`".into());
        }
        if self.second.is_some() && self.minute.is_none() {
            return Err("time.second: `second` needs `minute`".into());
        }
        if let Some((key, _)) = self.parts().find(|(_, v)| v.trim().is_empty()) {
            return Err(format!("{key}: expected a column name, found an empty one"));
        }
        Ok(())
    }

    fn check_zone(&self) -> Result<(), String> {
        let zone_keys = [
            self.zone.is_some(),
            self.zone_from_metadata.is_some(),
            self.zone_from_header,
        ];
        if zone_keys.iter().filter(|k| **k).count() > 1 {
            return Err(
                "time.zone: give at most one of `zone`, `zone_from_metadata` and \
                        `zone_from_header`"
                    .into(),
            );
        }
        if self.epoch.is_some() && zone_keys.contains(&true) {
            return Err("time.zone: an epoch is UTC by definition; remove the zone".into());
        }
        if let Some(z) = &self.zone
            && parse_zone(z).is_none()
        {
            return Err(format!(
                "time.zone: {z:?} is not a time zone: {ZONE_EXPECTED}"
            ));
        }
        if self
            .zone_from_metadata
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            return Err("time.zone_from_metadata: expected the name of a metadata field".into());
        }
        if self.zone_from_header && self.parts().next().is_some() {
            return Err("time.zone_from_header: only for `column` or `columns`".into());
        }
        Ok(())
    }
}

/// What a zone may look like, for error messages.
pub(super) const ZONE_EXPECTED: &str = "expected an IANA name such as \"America/Denver\" or a \
     fixed offset such as \"-07:00\", \"+0530\", \"UTC-7\" or \"-7\"";

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> TimeSpec {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn good_specs_pass() {
        for json in [
            r#"{"column": "TIMESTAMP"}"#,
            r#"{"column": "TIMESTAMP", "zone": "-07:00", "order": "mdy", "end_of_day": true}"#,
            r#"{"columns": ["Date", "Time"], "format": "%m/%d/%y %I:%M%p"}"#,
            r#"{"column": "Date Time", "format": "%m/%d/%y %I:%M:%S %p", "zone_from_header": true}"#,
            r#"{"column": "ts", "epoch": "ms"}"#,
            r#"{"year": "Y", "month": "M", "day": "D", "hour": "H", "zone": "UTC"}"#,
            r#"{"year": "Year", "day_of_year": "DOY", "hhmm": "HHMM", "end_of_day": true}"#,
            r#"{"year": "Y", "month": "M", "day": "D", "hour": "H", "minute": "Mi", "second": "S"}"#,
            r#"{"year": "Y", "day_of_year": "D", "zone_from_metadata": "utc_offset"}"#,
            r#"{"column": "t", "format": "%Y%m%d"}"#,
            r#"{"column": "t", "zone": "America/Denver"}"#,
        ] {
            assert_eq!(spec(json).check(), Ok(()), "{json}");
        }
    }

    #[test]
    fn bad_specs_name_the_key() {
        for (json, key) in [
            (r#"{}"#, "time: "),
            (r#"{"column": "a", "columns": ["b"]}"#, "time: "),
            (
                r#"{"column": "a", "year": "Y", "day_of_year": "D"}"#,
                "time: ",
            ),
            (r#"{"column": " "}"#, "time.column: "),
            (r#"{"columns": []}"#, "time.columns: "),
            (r#"{"year": "Y", "month": "M"}"#, "time.day: "),
            (r#"{"year": "Y", "day": "D"}"#, "time.month: "),
            (r#"{"month": "M", "day": "D"}"#, "time.year: "),
            (
                r#"{"year": "Y", "month": "M", "day": "D", "day_of_year": "J"}"#,
                "time.day_of_year: ",
            ),
            (
                r#"{"year": "Y", "day_of_year": "J", "hhmm": "T", "hour": "H"}"#,
                "time.hhmm: ",
            ),
            (
                r#"{"year": "Y", "day_of_year": "J", "minute": "M"}"#,
                "time.minute: ",
            ),
            (
                r#"{"year": "Y", "day_of_year": "J", "hour": "H", "second": "S"}"#,
                "time.second: ",
            ),
            (r#"{"year": "Y", "day_of_year": ""}"#, "time.day_of_year: "),
            (
                r#"{"year": "Y", "day_of_year": "J", "format": "%Y"}"#,
                "time.format: ",
            ),
            (
                r#"{"column": "t", "format": "%Y-%m-%d %Q"}"#,
                "time.format: ",
            ),
            (r#"{"column": "t", "format": "%H:%M"}"#, "time.format: "),
            (
                r#"{"column": "t", "format": "%Y-%m-%d %I:%M"}"#,
                "time.format: ",
            ),
            (
                r#"{"column": "t", "format": "%Y", "epoch": "s"}"#,
                "time.format: ",
            ),
            (
                r#"{"column": "t", "format": "%d.%m.%Y", "order": "dmy"}"#,
                "time.order: ",
            ),
            (r#"{"columns": ["a", "b"], "epoch": "s"}"#, "time.epoch: "),
            (
                r#"{"column": "t", "epoch": "s", "end_of_day": true}"#,
                "time.end_of_day: ",
            ),
            (
                r#"{"column": "t", "epoch": "s", "zone": "UTC"}"#,
                "time.zone: ",
            ),
            (r#"{"column": "t", "zone": "Mars/Olympus"}"#, "time.zone: "),
            (r#"{"column": "t", "zone": "EDT"}"#, "time.zone: "),
            (
                r#"{"column": "t", "zone": "UTC", "zone_from_header": true}"#,
                "time.zone: ",
            ),
            (
                r#"{"column": "t", "zone_from_metadata": ""}"#,
                "time.zone_from_metadata: ",
            ),
            (
                r#"{"year": "Y", "day_of_year": "J", "zone_from_header": true}"#,
                "time.zone_from_header: ",
            ),
        ] {
            let err = spec(json).check().expect_err(json);
            assert!(err.starts_with(key), "{json}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_values_are_refused_by_serde() {
        for json in [
            r#"{"colum": "t"}"#,
            r#"{"column": "t", "order": "DMY"}"#,
            r#"{"column": "t", "epoch": "sec"}"#,
            r#"{"column": "t", "end_of_day": "yes"}"#,
        ] {
            assert!(serde_json::from_str::<TimeSpec>(json).is_err(), "{json}");
        }
    }
}
