//! How a cell or a line of a file is shown in messages and reports: cut to a number of
//! characters, and on request with its control characters escaped so that it stays on
//! one line.

/// `text` cut to its first `max` characters, with `…` after a cut; with `escape`,
/// control characters are written escaped (`\t`, `\u{1b}`).
pub fn shorten(text: &str, max: usize, escape: bool) -> String {
    let mut out = String::with_capacity(text.len().min(4 * max + 4));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if escape && c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn cuts_after_max_characters_and_escapes_on_request() {
        assert_eq!(shorten("abcdef", 3, false), "abc…");
        assert_eq!(shorten("abc", 3, false), "abc");
        assert_eq!(shorten("éé\tx", 3, true), "éé\\t…");
        assert_eq!(shorten("a\tb", 10, false), "a\tb");
    }
}
