//! The source time zone (`SOURCE_TIMEZONE` in the settings): how timestamps without an offset are read.

use std::str::FromStr;

use chrono::FixedOffset;

/// The time zone in which timestamps without an offset are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceTimezone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Default for SourceTimezone {
    fn default() -> Self {
        SourceTimezone::Fixed(FixedOffset::east_opt(0).expect("zero offset is valid"))
    }
}

impl FromStr for SourceTimezone {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("z") {
            return Ok(Self::default());
        }
        if let Some(offset) = parse_fixed_offset(s) {
            return Ok(SourceTimezone::Fixed(offset));
        }
        s.parse::<chrono_tz::Tz>()
            .map(SourceTimezone::Named)
            .map_err(|_| ())
    }
}

/// `+02:00`, `-0530`, `+02`, optionally prefixed by `UTC`.
fn parse_fixed_offset(s: &str) -> Option<FixedOffset> {
    let s = s
        .strip_prefix("UTC")
        .or_else(|| s.strip_prefix("utc"))
        .unwrap_or(s);
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezones_fixed_and_named() {
        assert_eq!(
            "+02:00".parse::<SourceTimezone>(),
            Ok(SourceTimezone::Fixed(FixedOffset::east_opt(7200).unwrap()))
        );
        assert_eq!(
            "UTC-0530".parse::<SourceTimezone>(),
            Ok(SourceTimezone::Fixed(
                FixedOffset::west_opt(5 * 3600 + 1800).unwrap()
            ))
        );
        assert_eq!(
            "Europe/Berlin".parse::<SourceTimezone>(),
            Ok(SourceTimezone::Named(chrono_tz::Europe::Berlin))
        );
        assert!("Mars/Olympus".parse::<SourceTimezone>().is_err());
        assert!("+25:00".parse::<SourceTimezone>().is_err());
    }
}
