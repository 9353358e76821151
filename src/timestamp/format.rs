//! A profile's `strftime` format, parsed once and applied to every value.

use std::fmt::Write;

use chrono::format::{Fixed, Item, ParseErrorKind, Parsed, StrftimeItems, parse};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::{TimestampError, next_midnight};

/// Longest value rewritten on the stack to read `24:00` through chrono.
const MAX_REWRITE: usize = 96;

/// A chrono format compiled once; see [`super::TimeSpec::format`].
#[derive(Debug, Clone)]
pub(super) struct CompiledFormat {
    items: Vec<Item<'static>>,
    /// When the format ends with `%p`: how many items come before it, to read a value
    /// that ends with a one-letter `a`/`p` instead.
    before_ampm: Option<usize>,
}

impl CompiledFormat {
    /// Parses `format`, and checks that it gives a full date and a usable time by
    /// formatting a sample and reading it back. The error says what is wrong.
    pub(super) fn new(format: &str) -> Result<Self, String> {
        let items = StrftimeItems::new(format).parse_to_owned().map_err(|_| {
            format!(
                "{format:?} is not a chrono strftime format (%Y %m %d %H %M %S %p …, see \
                 docs.rs/chrono/latest/chrono/format/strftime)"
            )
        })?;
        let last = items
            .iter()
            .rposition(|i| !matches!(i, Item::Space(_) | Item::OwnedSpace(_)));
        let before_ampm =
            last.filter(|&i| matches!(items[i], Item::Fixed(Fixed::LowerAmPm | Fixed::UpperAmPm)));
        let compiled = CompiledFormat { items, before_ampm };
        compiled.check(format)?;
        Ok(compiled)
    }

    fn check(&self, format: &str) -> Result<(), String> {
        let sample = NaiveDate::from_ymd_opt(2024, 3, 5)
            .and_then(|d| d.and_hms_milli_opt(13, 14, 15, 250))
            .ok_or("sample date")?
            .and_utc()
            .fixed_offset();
        // Some items parse but cannot be written (`%#z`): refuse rather than panic.
        let mut text = String::new();
        write!(text, "{}", sample.format_with_items(self.items.iter()))
            .map_err(|_| format!("{format:?} has an item that cannot be used to write a time"))?;
        let mut parsed = Parsed::new();
        parse(&mut parsed, &text, self.items.iter())
            .map_err(|e| format!("{format:?} cannot read back what it writes ({e})"))?;
        if parsed.to_naive_date().is_err() {
            return Err(format!(
                "{format:?} does not give a full date: it needs a year (%Y, or %y) and the \
                 month and day (%m %d, %b %d) or the day of the year (%j)"
            ));
        }
        if parsed.hour_mod_12().is_some() && parsed.hour_div_12().is_none() {
            return Err(format!(
                "{format:?} has a 12-hour clock (%I or %l) without %p (AM/PM)"
            ));
        }
        if time_of(&parsed).is_err() {
            return Err(format!(
                "{format:?} gives part of a time without the hour (%H, or %I with %p)"
            ));
        }
        Ok(())
    }

    /// Reads one trimmed value: its local date and time, and the offset in seconds east
    /// of UTC when the value carries one. With `end_of_day`, `24:00` is 00:00 of the next
    /// day.
    pub(super) fn read(
        &self,
        s: &str,
        end_of_day: bool,
    ) -> Result<(NaiveDateTime, Option<i32>), TimestampError> {
        match self.read_once(s) {
            Err(TimestampError::OutOfRange) if end_of_day => {
                let mut buf = [0u8; MAX_REWRITE];
                let Some(midnight) = rewrite_24(s, &mut buf) else {
                    return Err(TimestampError::OutOfRange);
                };
                let (t, offset) = self.read_once(midnight)?;
                if t.time() != NaiveTime::MIN {
                    return Err(TimestampError::OutOfRange);
                }
                Ok((next_midnight(t.date())?, offset))
            }
            r => r,
        }
    }

    fn read_once(&self, s: &str) -> Result<(NaiveDateTime, Option<i32>), TimestampError> {
        let mut parsed = Parsed::new();
        let short = self
            .before_ampm
            .and_then(|n| one_letter_ampm(s).map(|(rest, pm)| (n, rest, pm)));
        let result = match short {
            Some((n, rest, pm)) => {
                parse(&mut parsed, rest, self.items[..n].iter()).and_then(|()| parsed.set_ampm(pm))
            }
            None => parse(&mut parsed, s, self.items.iter()),
        };
        result.map_err(|e| error_of(e.kind()))?;
        let date = parsed.to_naive_date().map_err(|e| error_of(e.kind()))?;
        let time = time_of(&parsed).map_err(|e| error_of(e.kind()))?;
        // chrono reads :60 as a leap second; the databases would not store it as such.
        if time.nanosecond() >= 1_000_000_000 {
            return Err(TimestampError::OutOfRange);
        }
        Ok((date.and_time(time), parsed.offset()))
    }
}

/// The time fields, or midnight when the format has none.
fn time_of(parsed: &Parsed) -> chrono::format::ParseResult<NaiveTime> {
    let none = parsed.hour_div_12().is_none()
        && parsed.hour_mod_12().is_none()
        && parsed.minute().is_none()
        && parsed.second().is_none();
    if none {
        Ok(NaiveTime::MIN)
    } else {
        parsed.to_naive_time()
    }
}

fn error_of(kind: ParseErrorKind) -> TimestampError {
    match kind {
        ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => TimestampError::OutOfRange,
        _ => TimestampError::Format,
    }
}

/// `12:30a` → (`12:30`, false), `1:00P` → (`1:00`, true); `None` unless the value ends
/// with one letter `a`/`p` after a digit or a space.
fn one_letter_ampm(s: &str) -> Option<(&str, bool)> {
    let b = s.as_bytes();
    let (&last, rest) = b.split_last()?;
    let pm = match last | 0x20 {
        b'a' => false,
        b'p' => true,
        _ => return None,
    };
    let before = *rest.last()?;
    (before.is_ascii_digit() || before == b' ').then(|| (&s[..s.len() - 1], pm))
}

/// Copies `s` into `buf` with its `24:00` written as `00:00`; `None` when there is no
/// such time (a `24` that is an hour: not after a digit or `:`) or `s` is too long.
fn rewrite_24<'b>(s: &str, buf: &'b mut [u8; MAX_REWRITE]) -> Option<&'b str> {
    let b = s.as_bytes();
    if b.len() > buf.len() {
        return None;
    }
    let at = (0..b.len().saturating_sub(4)).find(|&i| {
        &b[i..i + 5] == b"24:00"
            && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b':'))
            && b.get(i + 5).is_none_or(|c| !c.is_ascii_digit())
    })?;
    let out = &mut buf[..b.len()];
    out.copy_from_slice(b);
    out[at] = b'0';
    out[at + 1] = b'0';
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn formats_read_their_values() {
        let cases = [
            (
                "%m/%d/%y %I:%M:%S %p",
                "06/14/23 10:00:00 AM",
                "2023-06-14 10:00:00",
                None,
            ),
            (
                "%m/%d/%y %I:%M:%S %p",
                "06/14/23 12:41:12 pm",
                "2023-06-14 12:41:12",
                None,
            ),
            (
                "%m/%d/%y %I:%M%p",
                "01/03/24 12:30a",
                "2024-01-03 00:30:00",
                None,
            ),
            (
                "%m/%d/%y %I:%M%p",
                "01/03/24 1:00p",
                "2024-01-03 13:00:00",
                None,
            ),
            (
                "%m/%d/%y %I:%M %p",
                "01/03/24 1:00 P",
                "2024-01-03 13:00:00",
                None,
            ),
            (
                "%m/%d/%y %I:%M%p",
                "01/03/24 1:00PM",
                "2024-01-03 13:00:00",
                None,
            ),
            (
                "%d.%m.%y %H:%M:%S",
                "12.03.24 08:15:00",
                "2024-03-12 08:15:00",
                None,
            ),
            (
                "%Y-%m-%d %H:%M:%S%.f",
                "2024-03-31 01:00:00.5",
                "2024-03-31 01:00:00.5",
                None,
            ),
            ("%Y%m%d", "20240101", "2024-01-01 00:00:00", None),
            ("%Y-%j %H%M", "2024-366 2359", "2024-12-31 23:59:00", None),
            (
                "%Y-%m-%d %H:%M:%S %z",
                "2024-05-01 12:00:00 -0700",
                "2024-05-01 12:00:00",
                Some(-25200),
            ),
        ];
        for (format, value, expected, offset) in cases {
            let f = CompiledFormat::new(format).unwrap();
            assert_eq!(
                f.read(value, false),
                Ok((dt(expected), offset)),
                "{format} {value}"
            );
        }
    }

    #[test]
    fn formats_refuse_bad_values() {
        let f = CompiledFormat::new("%m/%d/%y %I:%M%p").unwrap();
        for (value, e) in [
            ("13/03/24 1:00p", TimestampError::OutOfRange),
            ("02/30/24 1:00p", TimestampError::OutOfRange),
            ("01/03/24 1:00", TimestampError::Format),
            ("01/03/24 1:00x", TimestampError::Format),
            ("01/03/24 1:00 pm extra", TimestampError::Format),
            ("a", TimestampError::Format),
            ("", TimestampError::Format),
        ] {
            assert_eq!(f.read(value, false), Err(e), "{value}");
        }
        let f = CompiledFormat::new("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            f.read("2024-05-01 23:59:60", false),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn end_of_day_through_a_format() {
        let f = CompiledFormat::new("%m/%d/%Y %H:%M").unwrap();
        assert_eq!(
            f.read("12/31/2023 24:00", false),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            f.read("12/31/2023 24:00", true),
            Ok((dt("2024-01-01 00:00:00"), None))
        );
        assert_eq!(
            f.read("12/31/2023 24:01", true),
            Err(TimestampError::OutOfRange)
        );
        // A minute 24 is not an hour 24.
        let f = CompiledFormat::new("%m/%d/%Y %H:%M:%S").unwrap();
        assert_eq!(
            f.read("12/31/2023 10:24:00", true),
            Ok((dt("2023-12-31 10:24:00"), None))
        );
        assert_eq!(
            f.read("12/31/2023 24:00:00", true),
            Ok((dt("2024-01-01 00:00:00"), None))
        );
        assert_eq!(
            f.read("12/31/2023 24:00:01", true),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn unusable_formats_are_explained() {
        for (format, says) in [
            ("%Y-%m-%d %Q", "not a chrono strftime format"),
            ("%H:%M", "full date"),
            ("%m-%d %H:%M", "full date"),
            ("%Y-%m-%d %I:%M", "without %p"),
            ("%Y-%m-%d %M", "without the hour"),
            ("%Y-%m-%d %#z", "cannot be used"),
        ] {
            let e = CompiledFormat::new(format).unwrap_err();
            assert!(e.contains(says), "{format}: {e}");
        }
    }
}
