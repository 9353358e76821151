//! Timestamp parsing for the validate stage.
//!
//! Accepted, after trimming:
//! - RFC 3339 / ISO 8601 with an offset: `2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.25+02:00`,
//!   `…+0200`, `…+02`;
//! - ISO 8601 without an offset (`T` or space, seconds and fraction optional, or a bare
//!   date meaning midnight), read in the configured source time zone;
//! - day-first dates with `-` or `.` (`01-05-2024 12:00`, `01.05.2024 12:00:00`), as
//!   written by many European exports; `/`-separated dates are refused because
//!   `03/04/2024` means different days on either side of the Atlantic;
//! - Unix epoch seconds (optionally with a fraction) or, from 100,000,000,000 up,
//!   milliseconds.
//!
//! Years outside 0001–9999, `24:00`, leap seconds (`:60`) and local times that do not
//! exist (inside a daylight-saving gap) are refused. A local time that occurs twice
//! (when clocks go back) is read as the first occurrence.
//!
//! Written by hand rather than with chrono's format strings: it runs once per row and
//! chrono's `parse_from_str` costs several times more per call.

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};

use crate::config::SourceTimezone;

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not in any accepted format.
    Format,
    /// In an accepted format but not a real date or time (Feb 30, 24:00, year 0).
    OutOfRange,
    /// A local time that does not exist in the source time zone (DST gap).
    NonexistentLocalTime,
}

/// Parses one timestamp cell; `tz` applies to values without an offset.
pub fn parse_timestamp(s: &str, tz: SourceTimezone) -> Result<DateTime<Utc>, TimestampError> {
    let b = s.trim().as_bytes();
    if b.is_empty() {
        return Err(TimestampError::Format);
    }
    if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') && b[0] != b'.' {
        return parse_epoch(b);
    }
    let mut p = Cursor { b, i: 0 };
    let date = p.date()?;
    if p.done() {
        return localize(date.and_time(NaiveTime::MIN), tz);
    }
    if !matches!(p.peek(), Some(b'T' | b't' | b' ')) {
        return Err(TimestampError::Format);
    }
    p.i += 1;
    let time = p.time()?;
    let naive = date.and_time(time);
    if p.done() {
        return localize(naive, tz);
    }
    let offset_secs = p.offset()?;
    if !p.done() {
        return Err(TimestampError::Format);
    }
    let utc = naive - chrono::Duration::seconds(offset_secs as i64);
    check_year(Utc.from_utc_datetime(&utc))
}

fn check_year(t: DateTime<Utc>) -> Result<DateTime<Utc>, TimestampError> {
    use chrono::Datelike;
    if (1..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(TimestampError::OutOfRange)
    }
}

fn localize(naive: NaiveDateTime, tz: SourceTimezone) -> Result<DateTime<Utc>, TimestampError> {
    let local = match tz {
        SourceTimezone::Fixed(offset) => offset.from_local_datetime(&naive).map(|t| t.to_utc()),
        SourceTimezone::Named(tz) => tz.from_local_datetime(&naive).map(|t| t.to_utc()),
    };
    match local {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => check_year(t),
        LocalResult::None => Err(TimestampError::NonexistentLocalTime),
    }
}

fn parse_epoch(b: &[u8]) -> Result<DateTime<Utc>, TimestampError> {
    // Only ASCII digits and dots reach here.
    let s = std::str::from_utf8(b).map_err(|_| TimestampError::Format)?;
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if !f.contains('.') => (i, f),
        Some(_) => return Err(TimestampError::Format),
        None => (s, ""),
    };
    if int.is_empty() || int.len() > 15 {
        return Err(TimestampError::OutOfRange);
    }
    let int: i64 = int.parse().map_err(|_| TimestampError::Format)?;
    let frac_nanos = |digits: &str, scale: u32| -> i64 {
        let d: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        d.parse::<i64>().unwrap_or(0) / 10i64.pow(scale)
    };
    let t = if int >= 100_000_000_000 {
        // Milliseconds; a fraction here would be sub-millisecond precision.
        let nanos = frac_nanos(frac, 3);
        DateTime::from_timestamp(int / 1000, ((int % 1000) * 1_000_000 + nanos) as u32)
    } else {
        DateTime::from_timestamp(int, frac_nanos(frac, 0) as u32)
    };
    t.ok_or(TimestampError::OutOfRange).and_then(check_year)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Result<u32, TimestampError> {
        let end = self.i + n;
        let slice = self.b.get(self.i..end).ok_or(TimestampError::Format)?;
        let mut v = 0u32;
        for &c in slice {
            if !c.is_ascii_digit() {
                return Err(TimestampError::Format);
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i = end;
        Ok(v)
    }

    /// One or two ASCII digits (day and month in day-first dates may be unpadded).
    fn digits_1_2(&mut self) -> Result<u32, TimestampError> {
        let two = self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit);
        self.digits(if two { 2 } else { 1 })
    }

    fn expect(&mut self, c: u8) -> Result<(), TimestampError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(TimestampError::Format)
        }
    }

    fn date(&mut self) -> Result<NaiveDate, TimestampError> {
        let year_first = self.b.len() >= 5 && self.b[..4].iter().all(u8::is_ascii_digit);
        let (y, m, d) = if year_first {
            let y = self.digits(4)?;
            self.expect(b'-')?;
            let m = self.digits(2)?;
            self.expect(b'-')?;
            let d = self.digits(2)?;
            (y, m, d)
        } else {
            let d = self.digits_1_2()?;
            let sep = self.peek().ok_or(TimestampError::Format)?;
            if sep != b'-' && sep != b'.' {
                return Err(TimestampError::Format);
            }
            self.i += 1;
            let m = self.digits_1_2()?;
            self.expect(sep)?;
            let y = self.digits(4)?;
            (y, m, d)
        };
        if y == 0 {
            return Err(TimestampError::OutOfRange);
        }
        NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(TimestampError::OutOfRange)
    }

    fn time(&mut self) -> Result<NaiveTime, TimestampError> {
        let h = self.digits(2)?;
        self.expect(b':')?;
        let min = self.digits(2)?;
        let mut sec = 0;
        let mut nanos = 0;
        if self.peek() == Some(b':') {
            self.i += 1;
            sec = self.digits(2)?;
            if matches!(self.peek(), Some(b'.' | b',')) {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    if self.i - start < 9 {
                        nanos = nanos * 10 + u32::from(self.b[self.i] - b'0');
                    }
                    self.i += 1;
                }
                let n = self.i - start;
                if n == 0 {
                    return Err(TimestampError::Format);
                }
                nanos *= 10u32.pow(9u32.saturating_sub(n as u32));
            }
        }
        // chrono would accept :60 as a leap second; PostgreSQL would not store it as such.
        if h > 23 || min > 59 || sec > 59 {
            return Err(TimestampError::OutOfRange);
        }
        NaiveTime::from_hms_nano_opt(h, min, sec, nanos).ok_or(TimestampError::OutOfRange)
    }

    /// `Z`, `±HH:MM`, `±HHMM` or `±HH`, in seconds east of UTC.
    fn offset(&mut self) -> Result<i32, TimestampError> {
        let sign = match self.peek() {
            Some(b'Z' | b'z') => {
                self.i += 1;
                return Ok(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(TimestampError::Format),
        };
        self.i += 1;
        let h = self.digits(2)?;
        let m = match self.peek() {
            Some(b':') => {
                self.i += 1;
                self.digits(2)?
            }
            Some(c) if c.is_ascii_digit() => self.digits(2)?,
            _ => 0,
        };
        if h > 23 || m > 59 {
            return Err(TimestampError::OutOfRange);
        }
        Ok(sign * (h * 3600 + m * 60) as i32)
    }
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
    use chrono::FixedOffset;

    fn utc() -> SourceTimezone {
        SourceTimezone::default()
    }

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn rfc3339_with_offsets() {
        let cases = [
            ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
            ("2024-05-01t12:00:00z", "2024-05-01T12:00:00Z"),
            ("2024-05-01 12:00:00+02:00", "2024-05-01T10:00:00Z"),
            ("2024-05-01T12:00:00-0530", "2024-05-01T17:30:00Z"),
            ("2024-05-01T12:00:00+02", "2024-05-01T10:00:00Z"),
            (
                "2024-05-01T12:00:00.123456789Z",
                "2024-05-01T12:00:00.123456789Z",
            ),
            ("  2024-05-01T12:00:00.5Z ", "2024-05-01T12:00:00.5Z"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_timestamp(input, utc()), Ok(ts(expected)), "{input}");
        }
    }

    #[test]
    fn naive_values_use_the_source_timezone() {
        let plus2 = SourceTimezone::Fixed(FixedOffset::east_opt(7200).unwrap());
        assert_eq!(
            parse_timestamp("2024-05-01 12:00", plus2),
            Ok(ts("2024-05-01T10:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:30,25", utc()),
            Ok(ts("2024-05-01T12:00:30.25Z"))
        );
        assert_eq!(
            parse_timestamp("2024-05-01", utc()),
            Ok(ts("2024-05-01T00:00:00Z"))
        );
        let berlin = SourceTimezone::Named(chrono_tz::Europe::Berlin);
        assert_eq!(
            parse_timestamp("2024-07-01 12:00:00", berlin),
            Ok(ts("2024-07-01T10:00:00Z"))
        );
    }

    #[test]
    fn dst_gap_is_refused_and_overlap_takes_the_first() {
        let berlin = SourceTimezone::Named(chrono_tz::Europe::Berlin);
        assert_eq!(
            parse_timestamp("2024-03-31 02:30:00", berlin),
            Err(TimestampError::NonexistentLocalTime)
        );
        // 02:30 happens twice on 2024-10-27; the first is still summer time (+02:00).
        assert_eq!(
            parse_timestamp("2024-10-27 02:30:00", berlin),
            Ok(ts("2024-10-27T00:30:00Z"))
        );
    }

    #[test]
    fn day_first_dates() {
        assert_eq!(
            parse_timestamp("08-12-2018 09:30", utc()),
            Ok(ts("2018-12-08T09:30:00Z"))
        );
        assert_eq!(
            parse_timestamp("8.12.2018 09:30:15", utc()),
            Ok(ts("2018-12-08T09:30:15Z"))
        );
        assert_eq!(
            parse_timestamp("08/12/2018 09:30", utc()),
            Err(TimestampError::Format)
        );
    }

    #[test]
    fn epoch_seconds_and_milliseconds() {
        assert_eq!(
            parse_timestamp("1714564800", utc()),
            Ok(ts("2024-05-01T12:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("1714564800.25", utc()),
            Ok(ts("2024-05-01T12:00:00.25Z"))
        );
        assert_eq!(
            parse_timestamp("1714564800123", utc()),
            Ok(ts("2024-05-01T12:00:00.123Z"))
        );
        assert_eq!(parse_timestamp("0", utc()), Ok(ts("1970-01-01T00:00:00Z")));
        assert_eq!(
            parse_timestamp("1714564800123456", utc()),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn impossible_dates_and_times_are_refused() {
        for bad in [
            "2024-02-30 10:00",
            "2023-02-29",
            "2024-05-01 24:00",
            "2024-05-01 23:59:60",
            "2024-13-01",
            "0000-01-01",
            "2024-05-01T12:00:00+24:00",
        ] {
            assert_eq!(
                parse_timestamp(bad, utc()),
                Err(TimestampError::OutOfRange),
                "{bad}"
            );
        }
        assert_eq!(
            parse_timestamp("2024-02-29", utc()),
            Ok(ts("2024-02-29T00:00:00Z"))
        );
        assert!(parse_timestamp("0001-01-01T00:00:00Z", utc()).is_ok());
        assert!(parse_timestamp("9999-12-31T23:59:59Z", utc()).is_ok());
        // 9999-12-31 23:00 at -02:00 is year 10000 in UTC.
        assert_eq!(
            parse_timestamp("9999-12-31T23:00:00-02:00", utc()),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn garbage_is_a_format_error() {
        for bad in [
            "",
            " ",
            "yesterday",
            "2024-5-1",
            "2024-05-01X12:00",
            "2024-05-01 12",
            "2024-05-01 12:00:00 UTC",
            "1.2.3",
            ".5",
            "2024-05-01 12:00:00.",
            "٢٠٢٤-٠٥-٠١",
        ] {
            assert_eq!(
                parse_timestamp(bad, utc()),
                Err(TimestampError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn utc_is_written_fixed_width() {
        let t = "0001-02-03T04:05:06.000007Z".parse().unwrap();
        assert_eq!(format_utc(t), "0001-02-03T04:05:06.000007Z");
        let t: DateTime<Utc> = "2024-12-31T23:59:59.5+02:00".parse().unwrap();
        assert_eq!(format_utc(t), "2024-12-31T21:59:59.500000Z");
        assert_eq!(format_utc(t).parse::<DateTime<Utc>>().unwrap(), t);
    }
}
