//! Time zones as exports and their metadata write them.

use chrono::FixedOffset;

use crate::timestamp::SourceTimezone;

/// Largest offset accepted: real offsets lie between −12:00 and +14:00. Also keeps a
/// latitude such as `34.3` in a metadata field from passing as an offset.
const MAX_OFFSET_SECS: i64 = 14 * 3600;

/// Reads a fixed UTC offset as exports and metadata lines write it.
///
/// Accepts, after trimming: `Z`, `UTC`, `GMT` (zero); a signed offset `±H`, `±HH`,
/// `±HH:MM`, `±H:MM`, `±HHMM` or decimal hours in quarters `±H.5` / `±HH.75`,
/// optionally prefixed by `UTC` or `GMT` (`UTC-7`, `GMT-05:00`, `UTC -07:00`); the same
/// without a sign means east of UTC (`5.5`, `8`, `0`: the time-zone field of typical-year
/// weather files) but only without a prefix (`UTC7` is refused: POSIX reads it as −7).
/// Offsets beyond ±14:00 are refused. Returns `None` for anything else, including zone
/// names and abbreviations.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s = s.trim();
    let b = s.as_bytes();
    let prefixed = b.len() >= 3
        && (b[..3].eq_ignore_ascii_case(b"utc") || b[..3].eq_ignore_ascii_case(b"gmt"));
    let rest = if prefixed { s[3..].trim_start() } else { s };
    if rest.is_empty() || rest.eq_ignore_ascii_case("z") {
        return (prefixed || !rest.is_empty())
            .then(|| FixedOffset::east_opt(0))
            .flatten();
    }
    let (sign, body) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ if prefixed => return None,
        _ => (1, rest),
    };
    let secs = unsigned_offset_secs(body.as_bytes())?;
    if secs > MAX_OFFSET_SECS {
        return None;
    }
    FixedOffset::east_opt(sign * secs as i32)
}

/// `H`, `HH`, `H:MM`, `HH:MM`, `HHMM` or `H.f` / `HH.f` hours, in seconds.
fn unsigned_offset_secs(b: &[u8]) -> Option<i64> {
    let num = |d: &[u8]| -> Option<i64> {
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0i64, |v, c| v * 10 + i64::from(c - b'0')))
    };
    let hours_ok = |d: &[u8]| (1..=2).contains(&d.len());
    if let Some(colon) = b.iter().position(|c| *c == b':') {
        let (h, m) = (&b[..colon], &b[colon + 1..]);
        let (hv, mv) = (num(h)?, num(m)?);
        return (hours_ok(h) && m.len() == 2 && mv < 60).then_some(hv * 3600 + mv * 60);
    }
    if let Some(dot) = b.iter().position(|c| *c == b'.') {
        let (h, f) = (&b[..dot], &b[dot + 1..]);
        if !hours_ok(h) || f.is_empty() || f.len() > 6 {
            return None;
        }
        let scale = 10i64.pow(f.len() as u32);
        let frac_secs = num(f)? * 3600;
        // Real offsets are in quarter hours (+05:45, -09:30).
        if frac_secs % scale != 0 || (frac_secs / scale) % 900 != 0 {
            return None;
        }
        return Some(num(h)? * 3600 + frac_secs / scale);
    }
    match b.len() {
        1 | 2 => Some(num(b)? * 3600),
        4 => {
            let m = num(&b[2..])?;
            (m < 60).then_some(num(&b[..2])? * 3600 + m * 60)
        }
        _ => None,
    }
}

/// A zone written as a fixed offset ([`parse_offset`]) or an IANA name
/// (`America/Denver`, case as in the tz database).
pub(super) fn parse_zone(s: &str) -> Option<SourceTimezone> {
    if let Some(offset) = parse_offset(s) {
        return Some(SourceTimezone::Fixed(offset));
    }
    s.trim()
        .parse::<chrono_tz::Tz>()
        .ok()
        .map(SourceTimezone::Named)
}

/// What a column header says about the time zone of its values.
#[derive(Debug, PartialEq)]
pub(super) struct HeaderZone<'a> {
    /// The header without its zone part: `Date Time` for `Date Time, GMT-05:00`.
    pub base: &'a str,
    /// `None`: the header names no zone; `Err`: it names one that cannot be used.
    pub zone: Option<Result<FixedOffset, String>>,
}

/// Finds a UTC offset written in a header: HOBO's `Date Time, GMT-05:00`,
/// `Time (UTC)`, `timestamp_utc`. Abbreviations such as `EDT` are an error: several
/// zones use the same letters.
pub(super) fn header_zone(header: &str) -> HeaderZone<'_> {
    let b = header.as_bytes();
    let word_edge = |i: usize| b.get(i).is_none_or(|c| !c.is_ascii_alphabetic());
    let marker = (0..b.len().saturating_sub(2)).find(|&i| {
        let w = &b[i..i + 3];
        (w.eq_ignore_ascii_case(b"gmt") || w.eq_ignore_ascii_case(b"utc"))
            && (i == 0 || word_edge(i - 1))
            && word_edge(i + 3)
    });
    let base_before = |i: usize| {
        header[..i].trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, ',' | '(' | '[' | '-' | '_')
        })
    };
    if let Some(i) = marker {
        let after = header[i + 3..].trim_start();
        let len = after
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | ':' | '.')))
            .unwrap_or(after.len());
        let text = &after[..len];
        let zone = if text.is_empty() {
            FixedOffset::east_opt(0).ok_or_else(String::new)
        } else {
            match parse_offset(text) {
                Some(o) if text.starts_with(['+', '-']) => Ok(o),
                _ => Err(format!(
                    "the header {header:?} has no readable UTC offset after {:?}: expected \
                     one such as GMT-05:00",
                    &header[i..i + 3]
                )),
            }
        };
        return HeaderZone {
            base: base_before(i),
            zone: Some(zone),
        };
    }
    // An abbreviation after `(`, `[` or `, `: `Date-Time (EDT)`, `Date Time, EST`.
    let mut start = None;
    for (i, c) in b.iter().enumerate() {
        if matches!(c, b'(' | b'[') || (*c == b',' && b.get(i + 1) == Some(&b' ')) {
            let from = if *c == b',' { i + 2 } else { i + 1 };
            let word = b[from..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let letters = &b[from..from + word];
            let closed = matches!(b.get(from + word), None | Some(b')' | b']'));
            if (2..=5).contains(&word) && letters.iter().all(u8::is_ascii_uppercase) && closed {
                start = Some((i, from, word));
            }
        }
    }
    match start {
        Some((i, from, word)) => {
            let abbrev = &header[from..from + word];
            HeaderZone {
                base: base_before(i),
                zone: Some(Err(format!(
                    "the header {header:?} gives the zone as {abbrev:?}, an abbreviation that \
                     stands for different offsets in different places; set time.zone to a \
                     fixed offset such as \"-05:00\" (or an IANA name) instead"
                ))),
            }
        }
        None => HeaderZone {
            base: header.trim(),
            zone: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn east(secs: i32) -> Option<FixedOffset> {
        FixedOffset::east_opt(secs)
    }

    #[test]
    fn offsets() {
        let h = 3600;
        let cases = [
            ("Z", east(0)),
            ("utc", east(0)),
            ("GMT", east(0)),
            ("-07:00", east(-7 * h)),
            ("+0530", east(5 * h + 1800)),
            ("UTC-7", east(-7 * h)),
            ("GMT-05:00", east(-5 * h)),
            ("UTC -07:00", east(-7 * h)),
            ("utc+5:45", east(5 * h + 45 * 60)),
            ("-7", east(-7 * h)),
            ("-8.0", east(-8 * h)),
            ("-7.5", east(-7 * h - 1800)),
            ("5.75", east(5 * h + 2700)),
            ("5.5", east(5 * h + 1800)),
            (" 8 ", east(8 * h)),
            ("0", east(0)),
            ("-0", east(0)),
            ("+14:00", east(14 * h)),
            ("-12", east(-12 * h)),
            ("UTC7", None),
            ("+14:01", None),
            ("34.3", None),
            ("-116.167", None),
            ("5.1", None),
            ("+", None),
            ("", None),
            ("UTC+", None),
            ("-07:0", None),
            ("-07:60", None),
            ("+530", None),
            ("EDT", None),
            ("America/Denver", None),
            ("UTCZ", east(0)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_offset(input), expected, "{input:?}");
        }
    }

    #[test]
    fn zones_by_offset_or_name() {
        assert_eq!(
            parse_zone("America/Denver"),
            Some(SourceTimezone::Named(chrono_tz::America::Denver))
        );
        assert_eq!(
            parse_zone("-7"),
            Some(SourceTimezone::Fixed(east(-25200).unwrap()))
        );
        assert_eq!(parse_zone("Mars/Olympus"), None);
    }

    #[test]
    fn zones_in_headers() {
        let ok = |h: &str, base: &str, secs: i32| {
            assert_eq!(
                header_zone(h),
                HeaderZone {
                    base,
                    zone: Some(Ok(east(secs).unwrap()))
                },
                "{h:?}"
            );
        };
        ok("Date Time, GMT-05:00", "Date Time", -5 * 3600);
        ok("Time, GMT-07:00", "Time", -7 * 3600);
        ok("Date Time, GMT+00:00", "Date Time", 0);
        ok("Date Time, GMT -5", "Date Time", -5 * 3600);
        ok("Time (UTC)", "Time", 0);
        ok("timestamp_utc", "timestamp", 0);
        ok("Zeit [UTC+01:00]", "Zeit", 3600);
        for bad in ["Date-Time (EDT)", "Date Time, EST", "Zeit [MEZ]"] {
            let z = header_zone(bad);
            assert!(
                matches!(z.zone, Some(Err(ref m)) if m.contains("abbreviation")),
                "{bad}: {z:?}"
            );
        }
        assert_eq!(header_zone("Date-Time (EDT)").base, "Date-Time");
        assert!(matches!(header_zone("Time, GMT+99:00").zone, Some(Err(_))));
        for none in [
            "TIMESTAMP",
            "Date",
            "Time",
            "Temp, °F (LGR S/N: 20731514)",
            "gmtime",
        ] {
            assert_eq!(header_zone(none).zone, None, "{none}");
        }
    }
}
