//! Timestamps: reading them from exports as they are written, and writing them for the
//! database.
//!
//! Two ways in:
//! - the **built-in reader** ([`parse_timestamp`], [`parse_timestamp_ordered`]) reads one
//!   cell in any of the common unambiguous forms, and says what a day/month date told
//!   about the file's date order ([`OrderEvidence`], summed up per file by
//!   [`OrderTally`]);
//! - a profile's **`[time]` table** ([`TimeSpec`]) says where the time is (one column,
//!   several joined, or date parts such as year + day of year + `HHMM`), in which format
//!   and zone; [`TimeReader`] is that spec compiled against one file's header and reads
//!   the time of each record.
//!
//! The built-in reader accepts, after trimming:
//! - RFC 3339 / ISO 8601 with an offset: `2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.25+02:00`,
//!   `…+0200`, `…+02`, `… +02:00`, `… UTC`;
//! - ISO 8601 without an offset (`T` or space, seconds and fraction optional, or a bare
//!   date meaning midnight), read in the given time zone;
//! - year-first dates with `/` or `.` (`2024/10/27 02:00:00`, Netatmo; month and day may
//!   be unpadded there, not in the `-` form);
//! - day/month dates with a four-digit year, separated by `-`, `.` or `/`
//!   (`01-05-2024 12:00`, `1.5.2024`, `03/14/2024`): read in the declared [`DateOrder`],
//!   or, when none is declared, in the order the value proves (a field over 12) and
//!   otherwise tentatively day-first, flagged [`OrderEvidence::Ambiguous`];
//! - hours may be written with one digit (`1.5.2024 9:30`);
//! - Unix epoch seconds (optionally with a fraction) or, from 100,000,000,000 up,
//!   milliseconds.
//!
//! Two-digit years are not read (only by an explicit [`TimeSpec::format`]). Years outside
//! 0001–9999, leap seconds (`:60`) and local times that do not exist (inside a
//! daylight-saving gap) are refused; `24:00` is refused unless the caller asks for it to
//! mean the end of the day. A local time that occurs twice (when clocks go back) is read
//! as the first occurrence and the later one is handed back
//! ([`parse_timestamp_folded`], [`TimeReader::read_folded`]): the validator decides
//! between them from the order of the file.
//!
//! The built-in reader is written by hand rather than with chrono's format strings: it
//! runs once per row and chrono's `parse_from_str` costs several times more per call.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use serde::Deserialize;

pub use source_zone::SourceTimezone;

mod builtin;
mod format;
mod order;
mod reader;
mod source_zone;
mod spec;
mod zone;

#[cfg(test)]
mod proptests;

pub use order::{OrderTally, OrderVerdict};
pub use reader::{TimeReader, TimeSpecError};
pub use spec::{EpochUnit, TimeSpec};
pub use zone::parse_offset;

/// A time read: the instant (the earlier one of a local time that happens twice), what
/// it said about the date order, and the later instant of a repeated local time.
pub type Folded = (DateTime<Utc>, OrderEvidence, Option<DateTime<Utc>>);

/// An instant, and the later one when its local time happens twice.
type Localized = (DateTime<Utc>, Option<DateTime<Utc>>);

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not in any accepted format (or an empty value).
    Format,
    /// In an accepted format but not a real date or time (Feb 30, 24:00, year 0).
    OutOfRange,
    /// A local time that does not exist in the source time zone (DST gap).
    NonexistentLocalTime,
}

/// The order of the fields in a date written with day and month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Day, month, year (`31.12.2024`, most of Europe).
    Dmy,
    /// Month, day, year (`12/31/2024`, the United States).
    Mdy,
    /// Year, month, day (`2024-12-31`, ISO 8601).
    Ymd,
}

impl DateOrder {
    /// The profile spelling: `"dmy"`, `"mdy"` or `"ymd"`.
    pub fn name(self) -> &'static str {
        match self {
            DateOrder::Dmy => "dmy",
            DateOrder::Mdy => "mdy",
            DateOrder::Ymd => "ymd",
        }
    }
}

/// What one value said about its file's date order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvidence {
    /// Nothing to decide: ISO or other year-first date, epoch, a date whose two readings
    /// are the same day (`05-05-2024`), or a date order declared by the caller.
    NotNeeded,
    /// The first field is over 12, so it is the day (`13-01-2024`).
    DayFirst,
    /// The second field is over 12, so the first is the month (`01-13-2024`).
    MonthFirst,
    /// Both fields are 12 or less and differ (`03/04/2024`): read day-first, tentatively.
    Ambiguous,
}

/// A profile's `time.format`, compiled as the agent compiles it, to test values with
/// (`profile suggest` tries formats on a sample): a value reads here exactly when it
/// reads in a load, a one-letter `a`/`p` for a final `%p` included (`12:30a`).
#[derive(Debug, Clone)]
pub struct FormatProbe(format::CompiledFormat);

impl FormatProbe {
    /// Compiles `format`; the error says why the agent would refuse it.
    pub fn new(format: &str) -> Result<Self, String> {
        format::CompiledFormat::new(format).map(FormatProbe)
    }

    /// Whether `value` reads with the format (`24:00` refused).
    pub fn reads(&self, value: &str) -> bool {
        self.0.read(value, false).is_ok()
    }
}

/// Parses one timestamp cell with the built-in reader; `tz` applies to values without an
/// offset.
///
/// The same as [`parse_timestamp_ordered`] with no declared order and `24:00` refused,
/// keeping only the instant: an ambiguous day/month date (`03/04/2024`) is read
/// day-first. Callers that must not guess (a whole file's order) use
/// [`parse_timestamp_ordered`] and an [`OrderTally`].
pub fn parse_timestamp(s: &str, tz: SourceTimezone) -> Result<DateTime<Utc>, TimestampError> {
    parse_timestamp_ordered(s, tz, None, false).map(|(t, _)| t)
}

/// Parses one timestamp cell with the built-in reader (see the [module docs](self)).
///
/// With `order = Some(o)`, day/month dates are read in that order (a month over 12 is
/// [`TimestampError::OutOfRange`]; with [`DateOrder::Ymd`] a day/month date is
/// [`TimestampError::Format`]) and the evidence is always [`OrderEvidence::NotNeeded`].
/// Year-first dates, ISO timestamps and epochs are read whatever the order.
///
/// With `order = None`, a day/month date is read in the order it proves (evidence
/// [`OrderEvidence::DayFirst`] or [`OrderEvidence::MonthFirst`]); when both readings
/// are possible and differ it is read day-first and flagged
/// [`OrderEvidence::Ambiguous`]: that reading is only tentative, and the caller decides
/// for the whole file.
///
/// With `end_of_day`, `24:00`, `24:00:00` (fraction zero) mean 00:00 of the next day;
/// otherwise they are [`TimestampError::OutOfRange`].
pub fn parse_timestamp_ordered(
    s: &str,
    tz: SourceTimezone,
    order: Option<DateOrder>,
    end_of_day: bool,
) -> Result<(DateTime<Utc>, OrderEvidence), TimestampError> {
    builtin::parse(s.trim().as_bytes(), tz, order, end_of_day).map(|(t, e, _)| (t, e))
}

/// [`parse_timestamp_ordered`], also giving the later instant of a local time that
/// happens twice (when clocks go back): the time is then read as the earlier instant,
/// and the caller decides from the file's order which one it is (see
/// [`crate::validate`]'s fold check).
pub fn parse_timestamp_folded(
    s: &str,
    tz: SourceTimezone,
    order: Option<DateOrder>,
    end_of_day: bool,
) -> Result<Folded, TimestampError> {
    builtin::parse(s.trim().as_bytes(), tz, order, end_of_day)
}

/// What a text that reads as a time looks like: `"clock time"` (`01:00`, `1:30 PM`,
/// `23:59:59`) or `"date"` (`2024-05-01`, `01/05/2024`, `2024-05-01 10:00`); `None` for
/// anything else, bare numbers included (`1200`, `42`, `3.5` name sensors often).
pub fn reads_as_time(s: &str) -> Option<&'static str> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 40 || !b[0].is_ascii_digit() {
        return None;
    }
    if is_clock_time(s) {
        return Some("clock time");
    }
    // Digits with at most one dot are epochs to the built-in reader, not dates.
    if b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && b.iter().filter(|c| **c == b'.').count() <= 1
    {
        return None;
    }
    let utc = SourceTimezone::default();
    match builtin::parse(b, utc, None, true) {
        Ok(_) | Err(TimestampError::OutOfRange) => Some("date"),
        Err(_) => None,
    }
}

/// `H:MM` or `HH:MM`, optional `:SS` and fraction, optional `AM`/`PM`.
fn is_clock_time(s: &str) -> bool {
    let b = s.as_bytes();
    let meridian = b.len() > 2
        && matches!(b[b.len() - 2].to_ascii_lowercase(), b'a' | b'p')
        && b[b.len() - 1].eq_ignore_ascii_case(&b'm');
    let t = if meridian {
        s[..s.len() - 2].trim_end()
    } else {
        s
    };
    let mut parts = t.split(':');
    let (Some(h), Some(m)) = (parts.next(), parts.next()) else {
        return false;
    };
    let sec = parts.next();
    if parts.next().is_some() {
        return false;
    }
    let digits = |d: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit())
    };
    let two_below_60 = |d: &str| digits(d, 2..=2) && d < "60";
    let sec_ok = sec.is_none_or(|s| {
        let mut whole_frac = s.splitn(2, '.');
        let whole = whole_frac.next().unwrap_or("");
        two_below_60(whole) && whole_frac.next().is_none_or(|f| digits(f, 1..=9))
    });
    digits(h, 1..=2) && h.parse::<u32>().is_ok_and(|h| h <= 24) && two_below_60(m) && sec_ok
}

/// Reads a local date and time in `tz`: the earlier instant when it occurs twice (and
/// that later instant), [`TimestampError::NonexistentLocalTime`] in a gap.
fn localize_fold(naive: NaiveDateTime, tz: SourceTimezone) -> Result<Localized, TimestampError> {
    let local = match tz {
        SourceTimezone::Fixed(offset) => offset.from_local_datetime(&naive).map(|t| t.to_utc()),
        SourceTimezone::Named(tz) => tz.from_local_datetime(&naive).map(|t| t.to_utc()),
    };
    match local {
        LocalResult::Single(t) => Ok((check_year(t)?, None)),
        LocalResult::Ambiguous(t, later) => Ok((check_year(t)?, Some(check_year(later)?))),
        LocalResult::None => Err(TimestampError::NonexistentLocalTime),
    }
}

/// Keeps instants whose UTC year is 0001–9999 (what both databases store as text).
fn check_year(t: DateTime<Utc>) -> Result<DateTime<Utc>, TimestampError> {
    if (1..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(TimestampError::OutOfRange)
    }
}

/// A date plus `24:00`: midnight at the start of the next day.
fn next_midnight(date: chrono::NaiveDate) -> Result<NaiveDateTime, TimestampError> {
    date.succ_opt()
        .map(|d| d.and_time(NaiveTime::MIN))
        .ok_or(TimestampError::OutOfRange)
}

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ`: fixed width, so the text sorts in time
/// order, and read back as the same instant by PostgreSQL (`COPY` into `timestamptz`)
/// and by SQLite's date functions. Written directly: chrono's formatter is several
/// times slower and this runs once per row.
pub fn write_utc(buf: &mut Vec<u8>, t: DateTime<Utc>) {
    let d = t.date_naive();
    let tm = t.time();
    // Leap-second nanos (>= 1e9) cannot come out of the validator.
    let micros = (tm.nanosecond() % 1_000_000_000) / 1000;
    let mut digits = |v: u32, width: u32, sep: &[u8]| {
        for p in (0..width).rev() {
            buf.push(b'0' + (v / 10u32.pow(p) % 10) as u8);
        }
        buf.extend_from_slice(sep);
    };
    digits(d.year() as u32, 4, b"-");
    digits(d.month(), 2, b"-");
    digits(d.day(), 2, b"T");
    digits(tm.hour(), 2, b":");
    digits(tm.minute(), 2, b":");
    digits(tm.second(), 2, b".");
    digits(micros, 6, b"Z");
}

/// [`write_utc`] into a new `String`.
pub fn format_utc(t: DateTime<Utc>) -> String {
    let mut buf = Vec::with_capacity(27);
    write_utc(&mut buf, t);
    // Only ASCII digits and separators were written.
    String::from_utf8(buf).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_written_fixed_width() {
        let t = "0001-02-03T04:05:06.000007Z".parse().unwrap();
        assert_eq!(format_utc(t), "0001-02-03T04:05:06.000007Z");
        let t: DateTime<Utc> = "2024-12-31T23:59:59.5+02:00".parse().unwrap();
        assert_eq!(format_utc(t), "2024-12-31T21:59:59.500000Z");
        assert_eq!(format_utc(t).parse::<DateTime<Utc>>().unwrap(), t);
    }

    #[test]
    fn clock_times_and_dates_are_told_from_sensor_names() {
        for clock in [
            "01:00",
            "24:00",
            "9:30",
            "23:59:59",
            "12:00:00.5",
            "1:30 PM",
            "11:15am",
        ] {
            assert_eq!(reads_as_time(clock), Some("clock time"), "{clock}");
        }
        for date in [
            "2024-05-01",
            "01/05/2024",
            "1.5.2024",
            "2024-05-01 10:00",
            "2024-02-30",
            "2024-05-01T10:00:00Z",
        ] {
            assert_eq!(reads_as_time(date), Some("date"), "{date}");
        }
        for name in [
            "1200",
            "42",
            "3.5",
            "s-1",
            "A:01",
            "10:1",
            "25:00",
            "1:60",
            "station 7",
            "2-101",
            "",
            "1:2:3:4",
            "0x1F",
            "12:345",
        ] {
            assert_eq!(reads_as_time(name), None, "{name}");
        }
    }

    #[test]
    fn a_local_time_that_happens_twice_gives_both_instants() {
        let ny = SourceTimezone::Named(chrono_tz::America::New_York);
        let (t, _, later) = parse_timestamp_folded("2024-11-03 01:30", ny, None, false).unwrap();
        assert_eq!(format_utc(t), "2024-11-03T05:30:00.000000Z");
        assert_eq!(format_utc(later.unwrap()), "2024-11-03T06:30:00.000000Z");
        let (_, _, none) = parse_timestamp_folded("2024-11-03 02:30", ny, None, false).unwrap();
        assert_eq!(none, None);
        let (_, _, explicit) =
            parse_timestamp_folded("2024-11-03 01:30-05:00", ny, None, false).unwrap();
        assert_eq!(explicit, None, "an offset in the value decides");
    }

    #[test]
    fn date_order_names_round_trip_through_serde() {
        for o in [DateOrder::Dmy, DateOrder::Mdy, DateOrder::Ymd] {
            let json = format!("{:?}", o.name());
            assert_eq!(serde_json::from_str::<DateOrder>(&json).unwrap(), o);
        }
        assert!(serde_json::from_str::<DateOrder>("\"DMY\"").is_err());
    }
}
