//! What the file name gives: the `match` glob, the profile name, a sensor capture.

use super::key;

/// The match glob: the file name's leading token, then `*`, then its extension
/// (`TOA5_pond.dat` → `TOA5_*.dat`; `history.csv` → `history*.csv`).
pub fn derive_glob(file_name: &str) -> String {
    let (stem, ext) = match file_name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (file_name, String::new()),
    };
    let glob_safe = |t: &str| t.replace(['*', '?', '[', ']'], "");
    match stem.find(['_', '-', ' ']) {
        Some(i) if i > 0 && !stem[..i].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}*{ext}", glob_safe(&stem[..=i]))
        }
        _ => {
            let letters: String = stem.chars().take_while(|c| !c.is_ascii_digit()).collect();
            format!("{}*{ext}", glob_safe(&letters))
        }
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

/// A capture for a file name's leading token, when it looks like a station id.
pub(super) fn file_name_sensor(file_name: &str) -> Option<String> {
    let (token, _) = file_name.split_once('_')?;
    let generic = [
        "toa5", "history", "export", "data", "log", "feeds", "download",
    ];
    (token.len() >= 2
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !generic.contains(&token.to_ascii_lowercase().as_str()))
    .then(|| "^(?P<sensor>[^_]+)_".to_owned())
}
