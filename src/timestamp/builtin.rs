//! The built-in reader: one hand-written pass over the bytes, no allocation.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};

use super::spec::EpochUnit;
use super::{
    DateOrder, Folded, OrderEvidence, TimestampError, check_year, localize_fold, next_midnight,
};
use crate::timestamp::SourceTimezone;

use TimestampError::{Format, OutOfRange};

/// See [`super::parse_timestamp_ordered`]; `b` is already trimmed.
/// The third value is the later instant of a local time that happens twice (read as the
/// earlier one), as [`super::localize_fold`] gives it.
pub(super) fn parse(
    b: &[u8],
    tz: SourceTimezone,
    order: Option<DateOrder>,
    end_of_day: bool,
) -> Result<Folded, TimestampError> {
    if b.is_empty() {
        return Err(Format);
    }
    if looks_like_epoch(b) {
        return parse_epoch_auto(b).map(|t| (t, OrderEvidence::NotNeeded, None));
    }
    let mut p = Cursor { b, i: 0 };
    let (date, evidence) = p.date(order)?;
    if p.done() {
        return localize_fold(date.and_time(NaiveTime::MIN), tz).map(|(t, f)| (t, evidence, f));
    }
    if !matches!(p.peek(), Some(b'T' | b't' | b' ')) {
        return Err(Format);
    }
    p.i += 1;
    let naive = match p.time(end_of_day)? {
        Some(time) => date.and_time(time),
        None => next_midnight(date)?,
    };
    let (t, fold) = match p.offset()? {
        None => localize_fold(naive, tz)?,
        Some(east) => {
            let utc = naive
                .checked_sub_signed(TimeDelta::seconds(i64::from(east)))
                .ok_or(OutOfRange)?;
            (check_year(Utc.from_utc_datetime(&utc))?, None)
        }
    };
    Ok((t, evidence, fold))
}

/// Digits with at most one dot: a Unix epoch rather than a dotted date (`1.5.2024`).
fn looks_like_epoch(b: &[u8]) -> bool {
    b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && b.iter().filter(|c| **c == b'.').count() <= 1
}

/// Seconds, or milliseconds from 100,000,000,000 up (year 5138 in seconds, 1973 in ms).
fn parse_epoch_auto(b: &[u8]) -> Result<DateTime<Utc>, TimestampError> {
    let (int, frac) = split_fraction(b);
    if int.is_empty() || int.len() > 15 {
        return Err(OutOfRange);
    }
    let n = int.iter().fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    let unit = if n >= 100_000_000_000 {
        EpochUnit::Milliseconds
    } else {
        EpochUnit::Seconds
    };
    epoch_to_utc(false, n, frac, unit)
}

/// A Unix epoch in a declared unit: optional sign, digits, optional `.fraction`.
pub(super) fn parse_epoch(b: &[u8], unit: EpochUnit) -> Result<DateTime<Utc>, TimestampError> {
    let (negative, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = split_fraction(rest);
    let digits_only = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.is_empty() || !digits_only(int) || !digits_only(frac) {
        return Err(Format);
    }
    if int.len() > 18 {
        return Err(OutOfRange);
    }
    let n = int.iter().fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    epoch_to_utc(negative, n, frac, unit)
}

/// Splits at the first `.`; the fraction is empty when there is none.
fn split_fraction(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|c| *c == b'.') {
        Some(dot) => (&b[..dot], &b[dot + 1..]),
        None => (b, &[]),
    }
}

/// `int.frac` units since 1970-01-01 UTC; `frac` holds only ASCII digits, of which the
/// first nine count.
fn epoch_to_utc(
    negative: bool,
    int: u64,
    frac: &[u8],
    unit: EpochUnit,
) -> Result<DateTime<Utc>, TimestampError> {
    let unit_nanos = unit.nanos();
    let (mut f, mut scale) = (0i128, 1i128);
    for &c in frac.iter().take(9) {
        f = f * 10 + i128::from(c - b'0');
        scale *= 10;
    }
    let mut total = i128::from(int) * unit_nanos + f * unit_nanos / scale;
    if negative {
        total = -total;
    }
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).map_err(|_| OutOfRange)?;
    let nanos = total.rem_euclid(1_000_000_000) as u32;
    DateTime::from_timestamp(secs, nanos)
        .ok_or(OutOfRange)
        .and_then(check_year)
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
        let slice = self.b.get(self.i..end).ok_or(Format)?;
        let mut v = 0u32;
        for &c in slice {
            if !c.is_ascii_digit() {
                return Err(Format);
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i = end;
        Ok(v)
    }

    /// One or two ASCII digits (unpadded day, month or hour).
    fn digits_1_2(&mut self) -> Result<u32, TimestampError> {
        let two = self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit);
        self.digits(if two { 2 } else { 1 })
    }

    fn expect(&mut self, c: u8) -> Result<(), TimestampError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Format)
        }
    }

    /// A year-first date, or a day/month date read as `order` says or as it proves.
    fn date(
        &mut self,
        order: Option<DateOrder>,
    ) -> Result<(NaiveDate, OrderEvidence), TimestampError> {
        let year_first = self.b.len() >= 5 && self.b[..4].iter().all(u8::is_ascii_digit);
        if year_first {
            let y = self.digits(4)?;
            let (m, d) = match self.peek() {
                // ISO 8601: padded fields only.
                Some(b'-') => {
                    self.i += 1;
                    let m = self.digits(2)?;
                    self.expect(b'-')?;
                    (m, self.digits(2)?)
                }
                Some(sep @ (b'/' | b'.')) => {
                    self.i += 1;
                    let m = self.digits_1_2()?;
                    self.expect(sep)?;
                    (m, self.digits_1_2()?)
                }
                _ => return Err(Format),
            };
            return ymd(y, m, d).map(|date| (date, OrderEvidence::NotNeeded));
        }
        let a = self.digits_1_2()?;
        let sep = self.peek().ok_or(Format)?;
        if !matches!(sep, b'-' | b'.' | b'/') {
            return Err(Format);
        }
        self.i += 1;
        let b = self.digits_1_2()?;
        self.expect(sep)?;
        let y = self.digits(4)?;
        let (d, m, evidence) = match order {
            Some(DateOrder::Dmy) => (a, b, OrderEvidence::NotNeeded),
            Some(DateOrder::Mdy) => (b, a, OrderEvidence::NotNeeded),
            Some(DateOrder::Ymd) => return Err(Format),
            None if a > 12 => (a, b, OrderEvidence::DayFirst),
            None if b > 12 => (b, a, OrderEvidence::MonthFirst),
            None if a == b => (a, b, OrderEvidence::NotNeeded),
            None => (a, b, OrderEvidence::Ambiguous),
        };
        ymd(y, m, d).map(|date| (date, evidence))
    }

    /// `H:MM`, `HH:MM[:SS[.f]]`; `None` for `24:00[:00[.0]]` when `end_of_day` allows it.
    fn time(&mut self, end_of_day: bool) -> Result<Option<NaiveTime>, TimestampError> {
        let h = self.digits_1_2()?;
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
                    return Err(Format);
                }
                nanos *= 10u32.pow(9u32.saturating_sub(n as u32));
            }
        }
        if h == 24 && end_of_day && min == 0 && sec == 0 && nanos == 0 {
            return Ok(None);
        }
        // chrono would accept :60 as a leap second; PostgreSQL would not store it as such.
        if h > 23 || min > 59 || sec > 59 {
            return Err(OutOfRange);
        }
        NaiveTime::from_hms_nano_opt(h, min, sec, nanos)
            .map(Some)
            .ok_or(OutOfRange)
    }

    /// Nothing, or (after at most one space) `Z`, `UTC`, `±HH:MM`, `±HHMM` or `±HH`, in
    /// seconds east of UTC; nothing may follow.
    fn offset(&mut self) -> Result<Option<i32>, TimestampError> {
        if self.done() {
            return Ok(None);
        }
        if self.peek() == Some(b' ') {
            self.i += 1;
        }
        let rest = &self.b[self.i..];
        if rest.eq_ignore_ascii_case(b"z") || rest.eq_ignore_ascii_case(b"utc") {
            self.i = self.b.len();
            return Ok(Some(0));
        }
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(Format),
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
        if !self.done() {
            return Err(Format);
        }
        if h > 23 || m > 59 {
            return Err(OutOfRange);
        }
        Ok(Some(sign * (h * 3600 + m * 60) as i32))
    }
}

fn ymd(y: u32, m: u32, d: u32) -> Result<NaiveDate, TimestampError> {
    if y == 0 {
        return Err(OutOfRange);
    }
    NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(OutOfRange)
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::super::{parse_timestamp, parse_timestamp_ordered};
    use super::*;
    use OrderEvidence::{Ambiguous, DayFirst, MonthFirst, NotNeeded};

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
            // Home Assistant's toISOString().
            ("2024-10-27T01:17:42.318Z", "2024-10-27T01:17:42.318Z"),
            // ThingSpeak's created_at, and an offset after a space.
            ("2021-02-18 21:46:23 UTC", "2021-02-18T21:46:23Z"),
            ("2024-05-01 12:00:00 +02:00", "2024-05-01T10:00:00Z"),
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
        // Local standard time all year: the spring-forward hour is an ordinary hour.
        let cet = SourceTimezone::Fixed(FixedOffset::east_opt(3600).unwrap());
        assert_eq!(
            parse_timestamp("2024-03-31 02:30:00", cet),
            Ok(ts("2024-03-31T01:30:00Z"))
        );
    }

    #[test]
    fn year_first_dates_with_slashes_and_dots() {
        // Netatmo: year-first slashes are not ambiguous.
        assert_eq!(
            parse_timestamp_ordered("2024/10/27 02:00:00", utc(), None, false),
            Ok((ts("2024-10-27T02:00:00Z"), NotNeeded))
        );
        assert_eq!(
            parse_timestamp_ordered("2024.1.5", utc(), None, false),
            Ok((ts("2024-01-05T00:00:00Z"), NotNeeded))
        );
        // Year-first is read whatever the declared order.
        assert_eq!(
            parse_timestamp_ordered("2024-01-05", utc(), Some(DateOrder::Mdy), false),
            Ok((ts("2024-01-05T00:00:00Z"), NotNeeded))
        );
        assert_eq!(parse_timestamp("2024/10-27", utc()), Err(Format));
    }

    /// (value, evidence, instant) with no declared order, for each separator.
    #[test]
    fn undeclared_order_is_proven_or_flagged() {
        for sep in ['-', '.', '/'] {
            let v = |d: &str| d.replace('-', &sep.to_string());
            let cases = [
                ("13-01-2024 10:00", DayFirst, "2024-01-13T10:00:00Z"),
                ("01-13-2024 10:00", MonthFirst, "2024-01-13T10:00:00Z"),
                ("03-04-2024 10:00", Ambiguous, "2024-04-03T10:00:00Z"),
                ("1-5-2022", Ambiguous, "2022-05-01T00:00:00Z"),
                ("05-05-2024", NotNeeded, "2024-05-05T00:00:00Z"),
                ("12-12-2024 9:30", NotNeeded, "2024-12-12T09:30:00Z"),
                ("31-12-2024", DayFirst, "2024-12-31T00:00:00Z"),
                ("12-31-2024", MonthFirst, "2024-12-31T00:00:00Z"),
            ];
            for (input, evidence, expected) in cases {
                let input = v(input);
                assert_eq!(
                    parse_timestamp_ordered(&input, utc(), None, false),
                    Ok((ts(expected), evidence)),
                    "{input}"
                );
            }
            for bad in ["13-13-2024", "00-05-2024", "31-02-2024"] {
                let input = v(bad);
                assert_eq!(
                    parse_timestamp_ordered(&input, utc(), None, false),
                    Err(OutOfRange),
                    "{input}"
                );
            }
        }
    }

    #[test]
    fn declared_order_is_followed() {
        use DateOrder::{Dmy, Mdy, Ymd};
        let cases: [(&str, DateOrder, Result<&str, TimestampError>); 9] = [
            ("03/04/2024", Dmy, Ok("2024-04-03T00:00:00Z")),
            ("03/04/2024", Mdy, Ok("2024-03-04T00:00:00Z")),
            ("01-05-2022 12:00", Mdy, Ok("2022-01-05T12:00:00Z")),
            ("13.01.2024", Dmy, Ok("2024-01-13T00:00:00Z")),
            ("13.01.2024", Mdy, Err(OutOfRange)),
            ("01/13/2024", Dmy, Err(OutOfRange)),
            ("01/13/2024", Ymd, Err(Format)),
            ("2024/01/13", Ymd, Ok("2024-01-13T00:00:00Z")),
            ("1714564800", Mdy, Ok("2024-05-01T12:00:00Z")),
        ];
        for (input, order, expected) in cases {
            assert_eq!(
                parse_timestamp_ordered(input, utc(), Some(order), false),
                expected.map(|e| (ts(e), NotNeeded)),
                "{input} {order:?}"
            );
        }
    }

    #[test]
    fn parse_timestamp_reads_slashes_like_dashes() {
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
            Ok(ts("2018-12-08T09:30:00Z"))
        );
        assert_eq!(
            parse_timestamp("12/31/2018", utc()),
            Ok(ts("2018-12-31T00:00:00Z"))
        );
        // A bare dotted date is a date, not an epoch.
        assert_eq!(
            parse_timestamp("01.05.2024", utc()),
            Ok(ts("2024-05-01T00:00:00Z"))
        );
    }

    #[test]
    fn two_digit_years_are_refused() {
        for bad in ["06/14/23 10:00:00", "14.06.23", "01-05-22 12:00"] {
            assert_eq!(parse_timestamp(bad, utc()), Err(Format), "{bad}");
        }
    }

    #[test]
    fn end_of_day_only_when_asked() {
        for (input, expected) in [
            ("2024-05-01 24:00", "2024-05-02T00:00:00Z"),
            ("2024-05-01 24:00:00", "2024-05-02T00:00:00Z"),
            ("2024-12-31 24:00:00.000", "2025-01-01T00:00:00Z"),
            ("28/02/2023 24:00", "2023-03-01T00:00:00Z"),
            ("2024-05-01T24:00:00+02:00", "2024-05-01T22:00:00Z"),
        ] {
            assert_eq!(
                parse_timestamp_ordered(input, utc(), None, true).map(|(t, _)| t),
                Ok(ts(expected)),
                "{input}"
            );
            assert_eq!(
                parse_timestamp_ordered(input, utc(), None, false),
                Err(OutOfRange),
                "{input}"
            );
        }
        for bad in [
            "2024-05-01 24:01",
            "2024-05-01 24:00:01",
            "9999-12-31 24:00",
        ] {
            assert_eq!(
                parse_timestamp_ordered(bad, utc(), None, true),
                Err(OutOfRange),
                "{bad}"
            );
        }
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
        assert_eq!(
            parse_timestamp("1714564800123.5", utc()),
            Ok(ts("2024-05-01T12:00:00.1235Z"))
        );
        assert_eq!(parse_timestamp("0", utc()), Ok(ts("1970-01-01T00:00:00Z")));
        assert_eq!(parse_timestamp("1714564800123456", utc()), Err(OutOfRange));
    }

    #[test]
    fn epoch_in_a_declared_unit() {
        let cases = [
            ("1714564800", EpochUnit::Seconds, Ok("2024-05-01T12:00:00Z")),
            (
                "1714564800123",
                EpochUnit::Milliseconds,
                Ok("2024-05-01T12:00:00.123Z"),
            ),
            (
                "1714564800123456",
                EpochUnit::Microseconds,
                Ok("2024-05-01T12:00:00.123456Z"),
            ),
            (
                "1714564800.5",
                EpochUnit::Seconds,
                Ok("2024-05-01T12:00:00.5Z"),
            ),
            ("-1", EpochUnit::Seconds, Ok("1969-12-31T23:59:59Z")),
            (
                "+1",
                EpochUnit::Milliseconds,
                Ok("1970-01-01T00:00:00.001Z"),
            ),
            ("12", EpochUnit::Seconds, Ok("1970-01-01T00:00:12Z")),
            ("1e9", EpochUnit::Seconds, Err(Format)),
            ("", EpochUnit::Seconds, Err(Format)),
            ("-", EpochUnit::Seconds, Err(Format)),
            ("1.2.3", EpochUnit::Seconds, Err(Format)),
            ("999999999999999999", EpochUnit::Seconds, Err(OutOfRange)),
            ("9999999999999999999", EpochUnit::Seconds, Err(OutOfRange)),
        ];
        for (input, unit, expected) in cases {
            assert_eq!(
                parse_epoch(input.as_bytes(), unit),
                expected.map(ts),
                "{input} {unit:?}"
            );
        }
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
            "01/01/0000",
        ] {
            assert_eq!(parse_timestamp(bad, utc()), Err(OutOfRange), "{bad}");
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
            Err(OutOfRange)
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
            "2024-05-01 12:00:00 CET",
            "2024-05-01 12:00:00 UTC+1",
            "2024-05-01 12:00:00  Z",
            "1.2.3",
            ".5",
            "2024-05-01 12:00:00.",
            "01-05/2024",
            "01 05 2024",
            "٢٠٢٤-٠٥-٠١",
        ] {
            assert_eq!(parse_timestamp(bad, utc()), Err(Format), "{bad:?}");
        }
    }
}
