//! A measure's decimal in a cell: a point or a comma, refusing what may be a thousands
//! separator.

/// Parses a decimal number. With a decimal comma, `21,5` is 21.5; a value with both a
/// comma and a point, or a point followed by exactly three digits (`1.013`, a thousands
/// separator in such files), is refused rather than guessed. `Err` carries a hint.
pub fn parse_number(s: &str, decimal_comma: bool) -> Result<f64, Option<&'static str>> {
    if decimal_comma {
        if s.contains(',') {
            if s.contains('.') {
                return Err(Some("write decimals without thousands separators"));
            }
            return s.replacen(',', ".", 1).parse().map_err(|_| None);
        }
        if let Some((_, frac)) = s.split_once('.')
            && frac.len() == 3
            && frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Some(
                "a point followed by three digits may be a thousands separator in a file with decimal commas",
            ));
        }
        return s.parse().map_err(|_| None);
    }
    s.parse().map_err(|_| {
        s.contains(',')
            .then_some("write decimals with a point and no thousands separators, or set layout.decimal = \",\" in a profile")
    })
}
