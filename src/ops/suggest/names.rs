//! What the file name gives: the `match` glob, the profile name, a sensor capture.

use super::{Line, key};

/// The match glob: the file name's leading token, then `*`, then its extension
/// (`TOA5_pond.dat` → `TOA5_*.dat`; `history.csv` → `history*.csv`). Never wider than
/// the file's own name: without a leading token, its digit runs become `*`
/// (`703165TY.csv` → `*TY.csv`), and a name of digits alone is kept as it is
/// (`2024-01-05.csv`), never `*.csv`, which would take every export in the folder.
pub fn derive_glob(file_name: &str) -> String {
    let (stem, ext) = match file_name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (file_name, String::new()),
    };
    let glob_safe = |t: &str| t.replace(['*', '?', '[', ']'], "");
    let lead = match stem.find(['_', '-', ' ']) {
        Some(i) if i > 0 && !stem[..i].bytes().all(|b| b.is_ascii_digit()) => {
            glob_safe(&stem[..=i])
        }
        _ => glob_safe(
            &stem
                .chars()
                .take_while(|c| !c.is_ascii_digit())
                .collect::<String>(),
        ),
    };
    if lead.chars().any(char::is_alphanumeric) {
        return format!("{lead}*{ext}");
    }
    // Digit runs as `*`, the rest as written.
    let mut pattern = String::new();
    for c in glob_safe(stem).chars() {
        if !c.is_ascii_digit() {
            pattern.push(c);
        } else if !pattern.ends_with('*') {
            pattern.push('*');
        }
    }
    if pattern.chars().any(char::is_alphabetic) {
        format!("{pattern}{ext}")
    } else {
        format!("{}{ext}", glob_safe(stem))
    }
}

/// A profile name from the file name: its leading token, lowercase.
pub fn derive_name(file_name: &str) -> String {
    let stem = file_name.split('.').next().unwrap_or(file_name);
    let token = stem.split(['_', '-', ' ']).next().unwrap_or(stem);
    let k = key(token);
    if k.is_empty() {
        "suggested".to_owned()
    } else {
        k
    }
}

/// A capture for the sensor id at the start of a file name, when it looks like a station
/// or room id: the tokens before the first date, number or export word, split at `_`
/// (a token may hold a `-`: `KS-01_2024.csv`), else at a `-` or a space
/// (`Kitchen-data-2024-05-01.csv` → `Kitchen`; `ridge_vp2_2024-01.txt` → `ridge_vp2`, so
/// two consoles at one site keep two ids), as written (the capture keeps its case). Each
/// token must be followed by the separator; never a date or number, nor a word that
/// names the export rather than the place.
pub(super) fn file_name_sensor(file_name: &str) -> Option<String> {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    let generic = [
        "toa5", "history", "export", "data", "log", "feeds", "download", "hourly", "daily",
        "table", "raw",
    ];
    let id_like = |token: &str, inner: &[char]| {
        let word = token
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_ascii_lowercase();
        token.len() >= 2
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || inner.contains(&c))
            && token.chars().any(|c| c.is_ascii_alphabetic())
            && !generic.contains(&word.as_str())
            && !generic.contains(&token.to_ascii_lowercase().as_str())
    };
    // `_` first, else a `-` or a space.
    let (sep, inner): (char, &[char]) = if stem
        .split_once('_')
        .is_some_and(|(t, _)| id_like(t, &['-']))
    {
        ('_', &['-'])
    } else {
        (stem.chars().find(|c| *c == '-' || *c == ' ')?, &[])
    };
    let tokens: Vec<&str> = stem.split(sep).collect();
    // Tokens followed by the separator (never the last), while they look like an id.
    let n = tokens[..tokens.len() - 1]
        .iter()
        .take_while(|t| id_like(t, inner))
        .count();
    (n > 0).then(|| {
        let one = format!("[^{sep}]+");
        let more = format!("(?:{sep}{one})").repeat(n - 1);
        format!("^(?P<sensor>{one}{more}){sep}")
    })
}

/// A capture for the file name when a preamble line titles the file with it
/// (`"Plot Title: Creek_07"` in `Creek_07.csv`): the title, `label: VALUE`, where the
/// file name starts with VALUE, is the sensor id; its digit runs are read as any number
/// (`^(?P<sensor>Creek_\d+)`) so the next logger's file reads as well. Returns the
/// pattern and its evidence; `None` when no title is the start of the file name.
pub(super) fn title_sensor(file_name: &str, preamble: &[Line]) -> Option<(String, String)> {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    preamble.iter().find_map(|l| {
        l.fields.iter().find_map(|f| {
            let (label, value) = f.split_once(':')?;
            let value = value.trim();
            let ok = !label.trim().is_empty()
                && value.len() >= 3
                && stem.starts_with(value)
                && value.chars().any(|c| c.is_alphabetic())
                && value
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-. ".contains(c));
            ok.then(|| {
                let mut pattern = String::new();
                let mut in_digits = false;
                for c in value.chars() {
                    if c.is_ascii_digit() {
                        if !in_digits {
                            pattern.push_str(r"\d+");
                        }
                        in_digits = true;
                    } else {
                        pattern.push_str(&regex::escape(&c.to_string()));
                        in_digits = false;
                    }
                }
                (
                    format!("^(?P<sensor>{pattern})"),
                    format!(
                        "line {} {f:?} titles the file {file_name}: the title is the sensor",
                        l.no
                    ),
                )
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(no: usize, fields: &[&str]) -> Line {
        Line {
            no,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn a_title_that_starts_the_file_name_is_the_sensor() {
        let (re, why) =
            title_sensor("Creek_07.csv", &[line(1, &["Plot Title: Creek_07"])]).unwrap();
        assert_eq!(re, r"^(?P<sensor>Creek_\d+)");
        assert!(why.contains("line 1"), "{why}");
        let re = regex::Regex::new(&re).unwrap();
        assert_eq!(
            &re.captures("Creek_12_b.csv").unwrap()["sensor"],
            "Creek_12"
        );
    }

    #[test]
    fn a_title_the_file_name_does_not_start_with_names_nothing() {
        // Another name, a bare label, a title too short to be evidence.
        assert!(title_sensor("Creek_07.csv", &[line(1, &["Plot Title: Pond_02"])]).is_none());
        assert!(title_sensor("Creek_07.csv", &[line(1, &["Creek_07"])]).is_none());
        assert!(title_sensor("Cr_07.csv", &[line(1, &["Title: Cr"])]).is_none());
        assert!(title_sensor("12_07.csv", &[line(1, &["Title: 12_07"])]).is_none());
    }

    #[test]
    fn the_leading_token_names_the_sensor_with_its_own_separator() {
        assert_eq!(
            file_name_sensor("balcony_feeds.csv").as_deref(),
            Some("^(?P<sensor>[^_]+)_")
        );
        assert_eq!(
            file_name_sensor("Kitchen-data-2024-05-01 12_05_00.csv").as_deref(),
            Some("^(?P<sensor>[^-]+)-")
        );
        assert_eq!(
            file_name_sensor("Attic 2024.csv").as_deref(),
            Some("^(?P<sensor>[^ ]+) ")
        );
    }

    #[test]
    fn the_tokens_before_the_date_name_the_sensor() {
        let re = file_name_sensor("ridge_vp2_2024-01.txt").unwrap();
        assert_eq!(re, "^(?P<sensor>[^_]+(?:_[^_]+))_");
        let re = regex::Regex::new(&re).unwrap();
        assert_eq!(
            &re.captures("ridge_vp2_2024-02.txt").unwrap()["sensor"],
            "ridge_vp2"
        );
        // An export word or a number ends the id.
        assert_eq!(
            file_name_sensor("Boiler_log0.csv").as_deref(),
            Some("^(?P<sensor>[^_]+)_")
        );
        assert_eq!(
            file_name_sensor("Creek_07.csv").as_deref(),
            Some("^(?P<sensor>[^_]+)_")
        );
    }

    #[test]
    fn dates_export_words_and_single_tokens_name_no_sensor() {
        assert_eq!(file_name_sensor("2024-05-01.csv"), None);
        assert_eq!(file_name_sensor("TOA5_pond.dat"), None);
        assert_eq!(file_name_sensor("data-2024.csv"), None);
        assert_eq!(file_name_sensor("history.csv"), None);
        assert_eq!(file_name_sensor("x_1.csv"), None);
        assert_eq!(
            file_name_sensor("KS-01_2024.csv").as_deref(),
            Some("^(?P<sensor>[^_]+)_")
        );
    }
}
