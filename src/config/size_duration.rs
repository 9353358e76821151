//! Byte sizes and durations in settings (`64MiB`, `500ms`, `7d`).

use std::time::Duration;

/// A byte count: plain digits, or digits and a unit (`KB`, `MB`, `GB`, `TB` are powers of
/// 1000; `KiB`, `MiB`, `GiB`, `TiB` powers of 1024; `B` is bytes), case-insensitive, an
/// optional space between.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A duration as a number in `default_unit_ms` units, or with a suffix `ms`, `s`, `m`, `h`.
pub fn parse_duration(v: &str, default_unit_ms: u64) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit_ms = match unit.trim() {
        "" => default_unit_ms as f64,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    let ms = number * unit_ms;
    (0.0..1e12)
        .contains(&ms)
        .then(|| Duration::from_micros((ms * 1000.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units() {
        assert_eq!(parse_duration("5", 1000), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("0.5", 1000),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("250ms", 1000),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("2m", 1), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon", 1), None);
    }
}
