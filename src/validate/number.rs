//! Numbers in cells as JSON: how measured values and extra cells are written (a
//! measure's decimal is parsed by [`crate::read::parse_number`]).

use crate::read::parse_number;

/// An extra cell as JSON: a number when it is written as one — kept as written, so
/// `812` stays an integer and `3.610` keeps its digits (without leading zeros, which
/// would be lost: `007` stays text) — else a string.
pub(super) fn extra_value(s: &str, decimal_comma: bool) -> String {
    // With decimal commas, `1.013` may be a thousands separator: text, as for measures.
    if decimal_comma && parse_number(s, true).is_err() {
        return serde_json::Value::from(s).to_string();
    }
    let normalized = if decimal_comma && s.contains(',') && !s.contains('.') {
        std::borrow::Cow::Owned(s.replacen(',', ".", 1))
    } else if decimal_comma && s.contains(',') {
        return serde_json::Value::from(s).to_string();
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if is_json_number(&normalized) && normalized.parse::<f64>().is_ok_and(f64::is_finite) {
        return normalized.into_owned();
    }
    serde_json::Value::from(s).to_string()
}

/// True when `s` is a number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let start = i;
    let int = digits(&mut i);
    if int == 0 || (int > 1 && b[start] == b'0') {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A measured value as JSON: integers without a fraction, others as the shortest
/// decimal that reads back the same.
pub(super) fn json_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string())
}
