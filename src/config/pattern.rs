//! `FILE_PATTERN`: which file names in the data folder are data files.

use std::fmt;

/// Which files in the data folder are taken: a case-insensitive glob on the file name.
/// Hidden and temporary names are never taken, whatever the pattern.
#[derive(Debug, Clone)]
pub struct FilePattern {
    pattern: glob::Pattern,
}

impl FilePattern {
    pub fn new(pattern: &str) -> Option<Self> {
        let pattern = pattern.trim();
        if pattern.is_empty() || pattern.contains('/') {
            return None;
        }
        glob::Pattern::new(pattern)
            .ok()
            .map(|pattern| Self { pattern })
    }

    /// True when `name` is a data file this agent should take.
    pub fn matches(&self, name: &str) -> bool {
        const TEMP_SUFFIXES: [&str; 4] = [".tmp", ".part", ".partial", "~"];
        if name.starts_with('.') {
            return false;
        }
        let lower = name.to_ascii_lowercase();
        if TEMP_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
            return false;
        }
        let options = glob::MatchOptions {
            case_sensitive: false,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.pattern.matches_with(name, options)
    }
}

impl fmt::Display for FilePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pattern.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_pattern_is_case_insensitive_and_skips_temp_names() {
        let p = FilePattern::new("*.csv").unwrap();
        assert!(p.matches("readings.CSV"));
        assert!(p.matches("with space.csv"));
        for name in [
            ".hidden.csv",
            "a.csv.tmp",
            "a.csv.part",
            "a.csv.partial",
            "a.csv~",
            "a.txt",
        ] {
            assert!(!p.matches(name), "{name}");
        }
        assert!(FilePattern::new("a/*.csv").is_none());
    }
}
