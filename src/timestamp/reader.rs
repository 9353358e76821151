//! A [`TimeSpec`] compiled against one file's header.

use chrono::{
    DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use csv::ByteRecord;

use super::builtin::parse_epoch;
use super::format::CompiledFormat;
use super::spec::{EpochUnit, TimeSpec, ZONE_EXPECTED};
use super::zone::{header_zone, parse_zone};
use super::{
    DateOrder, Folded, Localized, OrderEvidence, TimestampError, check_year, localize_fold,
    next_midnight, parse_timestamp_folded,
};
use crate::timestamp::SourceTimezone;

use TimestampError::{Format, OutOfRange};

/// Longest value, after joining `columns`, that is read; longer ones are
/// [`TimestampError::Format`]. Joining happens on the stack, with no allocation.
const MAX_JOINED: usize = 128;

/// Why a [`TimeSpec`] cannot read a file. Displayed as `key: what is wrong`, naming the
/// profile key (`time.column`, `time.zone_from_header` …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeSpecError {
    /// The spec itself is unusable (what [`TimeSpec::check`] says).
    #[error("{0}")]
    Spec(String),
    /// The header has no column of that name.
    #[error("{key}: no column named {name:?} in the header")]
    MissingColumn { key: &'static str, name: String },
    /// The name matches more than one column (1-based positions).
    #[error("{key}: {name:?} matches columns {first} and {second} of the header")]
    DuplicateColumn {
        key: &'static str,
        name: String,
        first: usize,
        second: usize,
    },
    /// The zone cannot be found or read.
    #[error("{key}: {message}")]
    Zone { key: &'static str, message: String },
}

/// A [`TimeSpec`] resolved against one file: the columns it reads, the zone, the format
/// compiled once. Reads the time of each record of that file.
#[derive(Debug, Clone)]
pub struct TimeReader {
    /// Text columns in joining order, or the parts' columns.
    columns: Vec<usize>,
    how: How,
    tz: SourceTimezone,
    end_of_day: bool,
}

#[derive(Debug, Clone)]
enum How {
    Builtin(Option<DateOrder>),
    Format(CompiledFormat),
    Epoch(EpochUnit),
    Parts {
        year: usize,
        date: DatePart,
        time: TimePart,
    },
}

#[derive(Debug, Clone, Copy)]
enum DatePart {
    MonthDay { month: usize, day: usize },
    DayOfYear(usize),
}

#[derive(Debug, Clone, Copy)]
enum TimePart {
    Midnight,
    Hms {
        hour: usize,
        minute: Option<usize>,
        second: Option<usize>,
    },
    Hhmm(usize),
}

impl TimeReader {
    /// Checks `spec`, finds its columns in `headers` (trimmed; a header of the same case
    /// first, then case-insensitive; a name matching two headers is an error; with
    /// `zone_from_header`, a header also matches without its zone part, so `Date Time`
    /// finds `Date Time, GMT-05:00`) and settles the zone: the spec's `zone`, or the
    /// `metadata_zone` text (the file's metadata field named by `zone_from_metadata`,
    /// `None` when the file has none), or the offset in the time column's header, or
    /// `default_tz`.
    pub fn new(
        spec: &TimeSpec,
        headers: &[String],
        default_tz: SourceTimezone,
        metadata_zone: Option<&str>,
    ) -> Result<Self, TimeSpecError> {
        spec.check().map_err(TimeSpecError::Spec)?;
        let find = |key, name: &str| find_column(headers, key, name, spec.zone_from_header);
        let (columns, how) = if let Some(name) = &spec.column {
            (vec![find("time.column", name)?], text_how(spec)?)
        } else if let Some(names) = &spec.columns {
            let cols = names
                .iter()
                .map(|n| find("time.columns", n))
                .collect::<Result<Vec<_>, _>>()?;
            (cols, text_how(spec)?)
        } else {
            let opt =
                |key, name: &Option<String>| name.as_deref().map(|n| find(key, n)).transpose();
            let year = find("time.year", spec.year.as_deref().unwrap_or_default())?;
            let date = match (opt("time.month", &spec.month)?, opt("time.day", &spec.day)?) {
                (Some(month), Some(day)) => DatePart::MonthDay { month, day },
                _ => DatePart::DayOfYear(find(
                    "time.day_of_year",
                    spec.day_of_year.as_deref().unwrap_or_default(),
                )?),
            };
            let time = match (opt("time.hour", &spec.hour)?, opt("time.hhmm", &spec.hhmm)?) {
                (Some(hour), _) => TimePart::Hms {
                    hour,
                    minute: opt("time.minute", &spec.minute)?,
                    second: opt("time.second", &spec.second)?,
                },
                (None, Some(hhmm)) => TimePart::Hhmm(hhmm),
                (None, None) => TimePart::Midnight,
            };
            let mut cols = vec![year];
            cols.extend(match date {
                DatePart::MonthDay { month, day } => vec![month, day],
                DatePart::DayOfYear(d) => vec![d],
            });
            cols.extend(match time {
                TimePart::Midnight => vec![],
                TimePart::Hms {
                    hour,
                    minute,
                    second,
                } => [Some(hour), minute, second].into_iter().flatten().collect(),
                TimePart::Hhmm(c) => vec![c],
            });
            (cols, How::Parts { year, date, time })
        };
        let tz = resolve_zone(spec, headers, &columns, default_tz, metadata_zone)?;
        Ok(TimeReader {
            columns,
            how,
            tz,
            end_of_day: spec.end_of_day,
        })
    }

    /// The source columns read (0-based, as in the header); the caller keeps them out of
    /// `extra`.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// The zone values without an offset are read in.
    pub fn zone(&self) -> SourceTimezone {
        self.tz
    }

    /// Reads one record's time. The evidence is [`OrderEvidence::NotNeeded`] except for
    /// day/month dates read by the built-in reader without a declared order.
    ///
    /// Cells are trimmed; a missing, empty or non-UTF-8 cell is
    /// [`TimestampError::Format`]. The error names the column at fault (for joined
    /// `columns`, the first of them).
    pub fn read(
        &self,
        record: &ByteRecord,
    ) -> Result<(DateTime<Utc>, OrderEvidence), (usize, TimestampError)> {
        self.read_folded(record).map(|(t, e, _)| (t, e))
    }

    /// [`TimeReader::read`], with the later instant of a local time that happens twice
    /// (the time is then read as the earlier one).
    pub fn read_folded(&self, record: &ByteRecord) -> Result<Folded, (usize, TimestampError)> {
        let first = self.columns[0];
        let at_first = |e| (first, e);
        let mut buf = [0u8; MAX_JOINED];
        match &self.how {
            How::Parts { year, date, time } => self
                .read_parts(record, *year, *date, *time)
                .map(|(t, fold)| (t, OrderEvidence::NotNeeded, fold)),
            How::Builtin(order) => {
                let s = self.text(record, &mut buf)?;
                parse_timestamp_folded(s, self.tz, *order, self.end_of_day).map_err(at_first)
            }
            How::Epoch(unit) => {
                let s = self.text(record, &mut buf)?;
                parse_epoch(s.as_bytes(), *unit)
                    .map(|t| (t, OrderEvidence::NotNeeded, None))
                    .map_err(at_first)
            }
            How::Format(format) => {
                let s = self.text(record, &mut buf)?;
                let (naive, offset) = format.read(s, self.end_of_day).map_err(at_first)?;
                let t = match offset {
                    Some(east) => with_offset(naive, east).map(|t| (t, None)),
                    None => localize_fold(naive, self.tz),
                };
                t.map(|(t, fold)| (t, OrderEvidence::NotNeeded, fold))
                    .map_err(at_first)
            }
        }
    }

    /// The text of the one column, or of the columns joined with one space in `buf`.
    fn text<'a>(
        &self,
        record: &'a ByteRecord,
        buf: &'a mut [u8; MAX_JOINED],
    ) -> Result<&'a str, (usize, TimestampError)> {
        if let [col] = self.columns[..] {
            return cell(record, col);
        }
        let mut len = 0;
        for (i, &col) in self.columns.iter().enumerate() {
            let part = cell(record, col)?.as_bytes();
            let sep = usize::from(i > 0);
            let end = len + sep + part.len();
            if end > buf.len() {
                return Err((self.columns[0], Format));
            }
            if sep == 1 {
                buf[len] = b' ';
            }
            buf[len + sep..end].copy_from_slice(part);
            len = end;
        }
        std::str::from_utf8(&buf[..len]).map_err(|_| (self.columns[0], Format))
    }

    fn read_parts(
        &self,
        record: &ByteRecord,
        year_col: usize,
        date: DatePart,
        time: TimePart,
    ) -> Result<Localized, (usize, TimestampError)> {
        let year = number(record, year_col)?;
        if !(1..=9999).contains(&year) {
            return Err((year_col, OutOfRange));
        }
        let year = year as i32;
        let day = match date {
            DatePart::MonthDay { month, day } => {
                let m = number(record, month)?;
                let d = number(record, day)?;
                if !(1..=12).contains(&m) {
                    return Err((month, OutOfRange));
                }
                NaiveDate::from_ymd_opt(year, m, d).ok_or((day, OutOfRange))?
            }
            DatePart::DayOfYear(col) => {
                NaiveDate::from_yo_opt(year, number(record, col)?).ok_or((col, OutOfRange))?
            }
        };
        let (naive, time_col) = match time {
            TimePart::Midnight => (day.and_time(NaiveTime::MIN), year_col),
            TimePart::Hms {
                hour,
                minute,
                second,
            } => {
                let h = number(record, hour)?;
                let m = minute.map(|c| number(record, c)).transpose()?.unwrap_or(0);
                let s = second.map(|c| number(record, c)).transpose()?.unwrap_or(0);
                let naive = if h == 24 && self.end_of_day && m == 0 && s == 0 {
                    next_midnight(day).map_err(|e| (hour, e))?
                } else if h > 23 {
                    return Err((hour, OutOfRange));
                } else if m > 59 {
                    return Err((minute.unwrap_or(hour), OutOfRange));
                } else if s > 59 {
                    return Err((second.unwrap_or(hour), OutOfRange));
                } else {
                    day.and_hms_opt(h, m, s).ok_or((hour, OutOfRange))?
                };
                (naive, hour)
            }
            TimePart::Hhmm(col) => {
                let v = number(record, col)?;
                let (h, m) = (v / 100, v % 100);
                let naive = if v == 2400 && self.end_of_day {
                    next_midnight(day).map_err(|e| (col, e))?
                } else if h > 23 || m > 59 {
                    return Err((col, OutOfRange));
                } else {
                    day.and_hms_opt(h, m, 0).ok_or((col, OutOfRange))?
                };
                (naive, col)
            }
        };
        localize_fold(naive, self.tz).map_err(|e| match e {
            TimestampError::NonexistentLocalTime => (time_col, e),
            _ => (year_col, e),
        })
    }
}

/// The trimmed text of a cell; a missing, empty or non-UTF-8 cell is a format error.
fn cell(record: &ByteRecord, col: usize) -> Result<&str, (usize, TimestampError)> {
    let raw = record.get(col).ok_or((col, Format))?;
    let s = std::str::from_utf8(raw).map_err(|_| (col, Format))?.trim();
    if s.is_empty() {
        Err((col, Format))
    } else {
        Ok(s)
    }
}

/// A cell of one to nine ASCII digits (`0030` is 30).
fn number(record: &ByteRecord, col: usize) -> Result<u32, (usize, TimestampError)> {
    let s = cell(record, col)?.as_bytes();
    if s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return Err((col, Format));
    }
    Ok(s.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0')))
}

fn with_offset(naive: NaiveDateTime, east: i32) -> Result<DateTime<Utc>, TimestampError> {
    let utc = naive
        .checked_sub_signed(TimeDelta::seconds(i64::from(east)))
        .ok_or(OutOfRange)?;
    check_year(Utc.from_utc_datetime(&utc))
}

fn text_how(spec: &TimeSpec) -> Result<How, TimeSpecError> {
    Ok(match (&spec.format, spec.epoch) {
        (Some(f), _) => How::Format(
            CompiledFormat::new(f).map_err(|e| TimeSpecError::Spec(format!("time.format: {e}")))?,
        ),
        (None, Some(unit)) => How::Epoch(unit),
        (None, None) => How::Builtin(spec.order),
    })
}

/// Header text as compared: trimmed, without a byte-order mark.
fn norm(s: &str) -> &str {
    s.trim().trim_start_matches('\u{feff}').trim()
}

fn find_column(
    headers: &[String],
    key: &'static str,
    name: &str,
    zone_from_header: bool,
) -> Result<usize, TimeSpecError> {
    let name = norm(name);
    let pick = |matches: Vec<usize>| match matches[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [first, second, ..] => Err(TimeSpecError::DuplicateColumn {
            key,
            name: name.to_owned(),
            first: first + 1,
            second: second + 1,
        }),
    };
    // Same case first, so that `M` (month) and `m` (minute) can both be named.
    let same_case = (0..headers.len())
        .filter(|&i| norm(&headers[i]) == name)
        .collect();
    if let Some(i) = pick(same_case)? {
        return Ok(i);
    }
    let any_case = (0..headers.len())
        .filter(|&i| norm(&headers[i]).eq_ignore_ascii_case(name))
        .collect();
    if let Some(i) = pick(any_case)? {
        return Ok(i);
    }
    let without_zone = (0..headers.len())
        .filter(|&i| {
            let hz = header_zone(norm(&headers[i]));
            hz.zone.is_some() && hz.base.eq_ignore_ascii_case(name)
        })
        .collect();
    match pick(without_zone)? {
        Some(i) if zone_from_header => Ok(i),
        // Matching it silently would read its values outside the zone it states.
        Some(i) => Err(TimeSpecError::Zone {
            key,
            message: format!(
                "{name:?} is the header {:?}, which states the zone of its values: set \
                 time.zone_from_header = true (or name the column in full and give \
                 time.zone)",
                norm(&headers[i])
            ),
        }),
        None => Err(TimeSpecError::MissingColumn {
            key,
            name: name.to_owned(),
        }),
    }
}

fn resolve_zone(
    spec: &TimeSpec,
    headers: &[String],
    columns: &[usize],
    default_tz: SourceTimezone,
    metadata_zone: Option<&str>,
) -> Result<SourceTimezone, TimeSpecError> {
    if let Some(z) = &spec.zone {
        return parse_zone(z).ok_or_else(|| TimeSpecError::Zone {
            key: "time.zone",
            message: format!("{z:?} is not a time zone: {ZONE_EXPECTED}"),
        });
    }
    if let Some(field) = &spec.zone_from_metadata {
        let key = "time.zone_from_metadata";
        let text = metadata_zone
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| TimeSpecError::Zone {
                key,
                message: format!("the file has no metadata field {field:?}, or it is empty"),
            })?;
        return parse_zone(text).ok_or_else(|| TimeSpecError::Zone {
            key,
            message: format!(
                "the metadata field {field:?} is {text:?}, which is not a time zone: \
                 {ZONE_EXPECTED}"
            ),
        });
    }
    if spec.zone_from_header {
        let key = "time.zone_from_header";
        let mut found: Option<FixedOffset> = None;
        for &col in columns {
            match header_zone(norm(&headers[col])).zone {
                None => {}
                Some(Err(message)) => return Err(TimeSpecError::Zone { key, message }),
                Some(Ok(o)) if found.is_some_and(|f| f != o) => {
                    return Err(TimeSpecError::Zone {
                        key,
                        message: "the time columns' headers give different offsets".into(),
                    });
                }
                Some(Ok(o)) => found = Some(o),
            }
        }
        let names: Vec<&str> = columns.iter().map(|&c| norm(&headers[c])).collect();
        return found
            .map(SourceTimezone::Fixed)
            .ok_or_else(|| TimeSpecError::Zone {
                key,
                message: format!("the header {names:?} gives no UTC offset such as \"GMT-05:00\""),
            });
    }
    Ok(default_tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> TimeSpec {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    fn utc() -> SourceTimezone {
        SourceTimezone::default()
    }

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn reader(json: &str, h: &[&str], meta: Option<&str>) -> TimeReader {
        TimeReader::new(&spec(json), &headers(h), utc(), meta)
            .unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// spec, header, record, instant (RFC 3339), columns read.
    type StyleCase<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a str, &'a [usize]);

    /// One case per export style.
    #[test]
    fn export_styles() {
        let cases: &[StyleCase] = &[
            // Campbell TOA5, logger clock in local standard time (MST all year).
            (
                r#"{"column": "TIMESTAMP", "zone": "-07:00"}"#,
                &["TIMESTAMP", "RECORD", "BattV_Min"],
                &["2024-03-31 01:00:00", "812", "12.61"],
                "2024-03-31T08:00:00Z",
                &[0],
            ),
            // HOBO, 2-digit year and AM/PM, offset from the header.
            (
                r#"{"column": "Date Time", "format": "%m/%d/%y %I:%M:%S %p", "zone_from_header": true}"#,
                &["#", "Date Time, GMT-05:00", "Temp, °F (LGR S/N: 20731514)"],
                &["1", "06/14/23 10:00:00 AM", "61.342"],
                "2023-06-14T15:00:00Z",
                &[1],
            ),
            // HOBO with date and time in two columns, the offset on the time column.
            (
                r#"{"columns": ["Date", "Time"], "format": "%m/%d/%y %H:%M:%S", "zone_from_header": true}"#,
                &["Date", "Time, GMT-07:00", "Temp (°C) #9724974"],
                &["06/14/23", "22:15:00", "16.1"],
                "2023-06-15T05:15:00Z",
                &[0, 1],
            ),
            // WeatherLink: Date + Time with a one-letter am/pm.
            (
                r#"{"columns": ["Date", "Time"], "format": "%m/%d/%y %I:%M%p", "zone": "-06:00"}"#,
                &["Date", "Time", "Out"],
                &["01/03/24", "12:30a", "34.1"],
                "2024-01-03T06:30:00Z",
                &[0, 1],
            ),
            (
                r#"{"columns": ["Date", "Time"], "format": "%m/%d/%y %I:%M%p", "zone": "-06:00"}"#,
                &["Date", "Time", "Out"],
                &["01/03/24", " 1:00p ", "34.1"],
                "2024-01-03T19:00:00Z",
                &[0, 1],
            ),
            // Netatmo local time: year-first slashes in a named zone.
            (
                r#"{"column": "Timezone : Europe/Zurich", "zone": "Europe/Zurich"}"#,
                &["Timestamp", "Timezone : Europe/Zurich", "Temperature"],
                &["1729987200", "2024/10/27 02:00:00", "6.8"],
                "2024-10-27T00:00:00Z",
                &[1],
            ),
            // Netatmo epoch column.
            (
                r#"{"column": "timestamp", "epoch": "s"}"#,
                &["Timestamp", "Timezone : Europe/Zurich", "Temperature"],
                &["1729987200", "2024/10/27 02:00:00", "6.8"],
                "2024-10-27T00:00:00Z",
                &[0],
            ),
            // Grafana raw: epoch milliseconds.
            (
                r#"{"column": "Time", "epoch": "ms"}"#,
                &["Time", "kitchen"],
                &["1714557600000", "21.4"],
                "2024-05-01T10:00:00Z",
                &[0],
            ),
            // ISD-Lite: year, month, day, hour in UTC.
            (
                r#"{"year": "year", "month": "month", "day": "day", "hour": "hour", "zone": "UTC"}"#,
                &["year", "month", "day", "hour", "temp"],
                &["2023", "01", "15", "01", "-28"],
                "2023-01-15T01:00:00Z",
                &[0, 1, 2, 3],
            ),
            // Old Campbell array: year, day of year, HHMM; 2400 ends the day.
            (
                r#"{"year": "Year", "day_of_year": "DOY", "hhmm": "HHMM", "end_of_day": true}"#,
                &["ID", "Year", "DOY", "HHMM", "T"],
                &["101", "2024", "366", "2400", "1.5"],
                "2025-01-01T00:00:00Z",
                &[1, 2, 3],
            ),
            (
                r#"{"year": "Year", "day_of_year": "DOY", "hhmm": "HHMM"}"#,
                &["ID", "Year", "DOY", "HHMM", "T"],
                &["101", "2024", "60", "130", "1.5"],
                "2024-02-29T01:30:00Z",
                &[1, 2, 3],
            ),
            // Typical-year weather file: Date + Time, month-first, 24:00, offset from
            // the metadata line ("-7").
            (
                r#"{"columns": ["Date (MM/DD/YYYY)", "Time (HH:MM)"], "order": "mdy", "end_of_day": true, "zone_from_metadata": "utc_offset"}"#,
                &["Date (MM/DD/YYYY)", "Time (HH:MM)", "Dry-bulb (C)"],
                &["12/31/1988", "24:00", "3.1"],
                "1989-01-01T07:00:00Z",
                &[0, 1],
            ),
            // GHCN-Daily: a compact date.
            (
                r#"{"column": "date", "format": "%Y%m%d"}"#,
                &["id", "date", "element"],
                &["USC00999999", "20240101", "TMAX"],
                "2024-01-01T00:00:00Z",
                &[1],
            ),
            // WinCC: day-first dotted date with a 2-digit year.
            (
                r#"{"column": "TimeString", "format": "%d.%m.%y %H:%M:%S", "zone": "Europe/Berlin"}"#,
                &["VarName", "TimeString", "VarValue"],
                &["Boiler_T_Flow", "12.03.24 08:15:00", "71,4"],
                "2024-03-12T07:15:00Z",
                &[1],
            ),
            // Home Assistant: ISO with Z, any zone ignored.
            (
                r#"{"column": "last_changed", "zone": "America/Denver"}"#,
                &["entity_id", "state", "last_changed"],
                &["sensor.x", "11.4", "2024-10-27T01:17:42.318Z"],
                "2024-10-27T01:17:42.318Z",
                &[2],
            ),
            // Date parts with minute and second.
            (
                r#"{"year": "Y", "month": "M", "day": "D", "hour": "h", "minute": "m", "second": "s"}"#,
                &["Y", "M", "D", "h", "m", "s"],
                &["2024", "2", "29", "23", "59", "58"],
                "2024-02-29T23:59:58Z",
                &[0, 1, 2, 3, 4, 5],
            ),
        ];
        for (json, h, record, expected, cols) in cases {
            let r = reader(json, h, Some("-7"));
            assert_eq!(r.columns(), *cols, "{json}");
            assert_eq!(
                r.read(&ByteRecord::from(record.to_vec())),
                Ok((ts(expected), OrderEvidence::NotNeeded)),
                "{json} {record:?}"
            );
        }
    }

    #[test]
    fn built_in_reader_reports_evidence() {
        let r = reader(r#"{"columns": ["Date", "Time"]}"#, &["Date", "Time"], None);
        let read = |d: &str, t: &str| r.read(&ByteRecord::from(vec![d, t]));
        assert_eq!(
            read("03/04/2024", "10:00"),
            Ok((ts("2024-04-03T10:00:00Z"), OrderEvidence::Ambiguous))
        );
        assert_eq!(
            read("03/14/2024", "10:00"),
            Ok((ts("2024-03-14T10:00:00Z"), OrderEvidence::MonthFirst))
        );
        assert_eq!(read("03/14/2024", "24:00"), Err((0, OutOfRange)));
        assert_eq!(read("03/14/2024", ""), Err((1, Format)));
    }

    #[test]
    fn errors_name_the_column() {
        let r = reader(
            r#"{"year": "Y", "month": "M", "day": "D", "hour": "h", "minute": "m", "zone": "Europe/Berlin"}"#,
            &["Y", "M", "D", "h", "m"],
            None,
        );
        let read = |f: [&str; 5]| r.read(&ByteRecord::from(f.to_vec()));
        assert_eq!(read(["0", "1", "1", "0", "0"]), Err((0, OutOfRange)));
        assert_eq!(read(["2024", "13", "1", "0", "0"]), Err((1, OutOfRange)));
        assert_eq!(read(["2023", "2", "29", "0", "0"]), Err((2, OutOfRange)));
        assert_eq!(read(["2024", "1", "1", "24", "0"]), Err((3, OutOfRange)));
        assert_eq!(read(["2024", "1", "1", "0", "60"]), Err((4, OutOfRange)));
        assert_eq!(read(["2024", "1", "1", "0", "x"]), Err((4, Format)));
        assert_eq!(read(["2024", "1", "1", "0", " "]), Err((4, Format)));
        assert_eq!(read(["2024", "1", "1", "-1", "0"]), Err((3, Format)));
        // The spring-forward hour in an IANA zone, blamed on the hour.
        assert_eq!(
            read(["2024", "3", "31", "2", "30"]),
            Err((3, TimestampError::NonexistentLocalTime))
        );
        // A short record.
        assert_eq!(
            r.read(&ByteRecord::from(vec!["2024", "1"])),
            Err((2, Format))
        );
    }

    #[test]
    fn dst_gap_fixed_offset_versus_iana_zone() {
        let h = &["TIMESTAMP"];
        let rec = ByteRecord::from(vec!["2024-03-10 02:30:00"]);
        let denver = reader(
            r#"{"column": "TIMESTAMP", "zone": "America/Denver"}"#,
            h,
            None,
        );
        assert_eq!(
            denver.read(&rec),
            Err((0, TimestampError::NonexistentLocalTime))
        );
        let mst = reader(r#"{"column": "TIMESTAMP", "zone": "UTC-7"}"#, h, None);
        assert_eq!(
            mst.read(&rec),
            Ok((ts("2024-03-10T09:30:00Z"), OrderEvidence::NotNeeded))
        );
        let via_format = reader(
            r#"{"column": "TIMESTAMP", "format": "%Y-%m-%d %H:%M:%S", "zone": "America/Denver"}"#,
            h,
            None,
        );
        assert_eq!(
            via_format.read(&rec),
            Err((0, TimestampError::NonexistentLocalTime))
        );
    }

    #[test]
    fn end_of_day_is_refused_unless_asked() {
        let h = &["Year", "DOY", "HHMM"];
        let rec = ByteRecord::from(vec!["2024", "1", "2400"]);
        let r = reader(
            r#"{"year": "Year", "day_of_year": "DOY", "hhmm": "HHMM"}"#,
            h,
            None,
        );
        assert_eq!(r.read(&rec), Err((2, OutOfRange)));
        let r = reader(
            r#"{"year": "Year", "day_of_year": "DOY", "hhmm": "HHMM", "end_of_day": true}"#,
            h,
            None,
        );
        assert_eq!(r.read(&rec).map(|(t, _)| t), Ok(ts("2024-01-02T00:00:00Z")));
        for bad in ["2401", "2360", "99", "12345"] {
            let rec = ByteRecord::from(vec!["2024", "1", bad]);
            assert_eq!(r.read(&rec), Err((2, OutOfRange)), "{bad}");
        }
        let rec = ByteRecord::from(vec!["2023", "366", "0"]);
        assert_eq!(r.read(&rec), Err((1, OutOfRange)));
        let r = reader(
            r#"{"year": "Y", "month": "M", "day": "D", "hour": "H", "end_of_day": true}"#,
            &["Y", "M", "D", "H"],
            None,
        );
        assert_eq!(
            r.read(&ByteRecord::from(vec!["2023", "12", "31", "24"]))
                .map(|(t, _)| t),
            Ok(ts("2024-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn setup_errors_name_the_key() {
        let cases: &[(&str, &[&str], Option<&str>, &str)] = &[
            (
                r#"{"column": "TIMESTAMP"}"#,
                &["time"],
                None,
                "time.column: no column named \"TIMESTAMP\"",
            ),
            (
                r#"{"columns": ["Date", "Hour"]}"#,
                &["Date", "Time"],
                None,
                "time.columns: no column named \"Hour\"",
            ),
            (
                r#"{"year": "Y", "day_of_year": "J"}"#,
                &["Y"],
                None,
                "time.day_of_year: no column",
            ),
            (
                r#"{"column": "t"}"#,
                &["T", " T "],
                None,
                "time.column: \"t\" matches columns 1 and 2",
            ),
            (
                r#"{"column": "Date Time"}"#,
                &["Date Time, GMT-05:00"],
                None,
                "time.column: \"Date Time\" is the header",
            ),
            (
                r#"{"column": "Date-Time", "zone_from_header": true}"#,
                &["Date-Time (EDT)"],
                None,
                "time.zone_from_header: the header \"Date-Time (EDT)\" gives the zone as \"EDT\", an abbreviation",
            ),
            (
                r#"{"column": "Time", "zone_from_header": true}"#,
                &["Time"],
                None,
                "time.zone_from_header: the header [\"Time\"] gives no UTC offset",
            ),
            (
                r#"{"columns": ["Date", "Time"], "zone_from_header": true}"#,
                &["Date, GMT-05:00", "Time, GMT-04:00"],
                None,
                "time.zone_from_header: the time columns' headers give different offsets",
            ),
            (
                r#"{"column": "t", "zone_from_metadata": "utc_offset"}"#,
                &["t"],
                None,
                "time.zone_from_metadata: the file has no metadata field \"utc_offset\"",
            ),
            (
                r#"{"column": "t", "zone_from_metadata": "utc_offset"}"#,
                &["t"],
                Some("34.3"),
                "time.zone_from_metadata: the metadata field \"utc_offset\" is \"34.3\", which is not a time zone",
            ),
            (
                r#"{"column": "t", "zone": "nowhere"}"#,
                &["t"],
                None,
                "time.zone: \"nowhere\" is not a time zone",
            ),
        ];
        for (json, h, meta, message) in cases {
            let e = TimeReader::new(&spec(json), &headers(h), utc(), *meta).unwrap_err();
            assert!(e.to_string().starts_with(message), "{json}: {e}");
        }
    }

    #[test]
    fn header_matching_is_lenient_about_case_space_and_bom() {
        let r = reader(
            r#"{"column": "timestamp"}"#,
            &["\u{feff}\"x\"", " TIMESTAMP "],
            None,
        );
        assert_eq!(r.columns(), &[1]);
        let r = reader("{\"column\": \"\u{feff}x\"}", &["\u{feff}X"], None);
        assert_eq!(r.columns(), &[0]);
        // The full header also matches when the zone comes from elsewhere.
        let r = reader(
            r#"{"column": "Date Time, GMT-05:00", "zone": "-05:00"}"#,
            &["Date Time, GMT-05:00"],
            None,
        );
        assert_eq!(r.columns(), &[0]);
    }

    #[test]
    fn joined_values_longer_than_the_buffer_are_refused() {
        let r = reader(r#"{"columns": ["a", "b"]}"#, &["a", "b"], None);
        let long = "9".repeat(MAX_JOINED);
        assert_eq!(
            r.read(&ByteRecord::from(vec!["1", long.as_str()])),
            Err((0, Format))
        );
    }
}

/// A rough per-value cost of each way of reading, for comparison with the built-in
/// reader; not a benchmark. `cargo test --release --lib timestamp::reader::timing --
/// --ignored --nocapture`
#[cfg(test)]
mod timing {
    use std::hint::black_box;
    use std::time::Instant;

    use super::*;

    fn per_value(label: &str, n: u32, mut f: impl FnMut(u32)) {
        let start = Instant::now();
        for i in 0..n {
            f(i);
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
        println!("{label:<44} {ns:>7.1} ns/value");
    }

    #[test]
    #[ignore = "timing, run by hand in release"]
    fn timing() {
        let n = 1_000_000;
        let tz = SourceTimezone::default();
        let iso = "2024-03-31 01:00:00";
        per_value("parse_timestamp (built-in, ISO)", n, |_| {
            black_box(
                crate::timestamp::parse_timestamp_ordered(black_box(iso), tz, None, false).ok(),
            );
        });
        let spec = |json: &str| serde_json::from_str::<TimeSpec>(json).unwrap();
        let one = [String::from("t")];
        let r = TimeReader::new(&spec(r#"{"column": "t"}"#), &one, tz, None).unwrap();
        let rec = ByteRecord::from(vec![iso]);
        per_value("TimeReader built-in, one column", n, |_| {
            black_box(r.read(black_box(&rec)).ok());
        });
        let r = TimeReader::new(
            &spec(r#"{"column": "t", "format": "%Y-%m-%d %H:%M:%S"}"#),
            &one,
            tz,
            None,
        )
        .unwrap();
        per_value("TimeReader format %Y-%m-%d %H:%M:%S", n, |_| {
            black_box(r.read(black_box(&rec)).ok());
        });
        let hobo = ByteRecord::from(vec!["06/14/23 10:00:00 AM"]);
        let r = TimeReader::new(
            &spec(r#"{"column": "t", "format": "%m/%d/%y %I:%M:%S %p"}"#),
            &one,
            tz,
            None,
        )
        .unwrap();
        per_value("TimeReader format HOBO %m/%d/%y %I:%M:%S %p", n, |_| {
            black_box(r.read(black_box(&hobo)).ok());
        });
        per_value("chrono NaiveDateTime::parse_from_str (ISO)", n, |_| {
            black_box(NaiveDateTime::parse_from_str(black_box(iso), "%Y-%m-%d %H:%M:%S").ok());
        });
        let two = [String::from("d"), String::from("t")];
        let r = TimeReader::new(&spec(r#"{"columns": ["d", "t"]}"#), &two, tz, None).unwrap();
        let rec2 = ByteRecord::from(vec!["2024-03-31", "01:00:00"]);
        per_value("TimeReader built-in, Date + Time joined", n, |_| {
            black_box(r.read(black_box(&rec2)).ok());
        });
        let h = ["Y", "D", "T"].map(String::from);
        let r = TimeReader::new(
            &spec(r#"{"year": "Y", "day_of_year": "D", "hhmm": "T"}"#),
            &h,
            tz,
            None,
        )
        .unwrap();
        let rec3 = ByteRecord::from(vec!["2024", "91", "100"]);
        per_value("TimeReader parts Year + DOY + HHMM", n, |_| {
            black_box(r.read(black_box(&rec3)).ok());
        });
    }
}
