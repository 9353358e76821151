//! File-name globs (`FILE_PATTERN` in the settings, a profile's `match`): which file names in the data folder are data files.
//!
//! The setting is a comma-separated list of globs (`*.csv,*.txt,TOA5_*.dat`); a name is
//! a data file when any glob matches it, compared without regard to ASCII or Unicode
//! case. Hidden and temporary names are never data files: they are normal while a
//! producer is still writing.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

/// Name endings of files still being written by common producers (compared without
/// regard to ASCII case).
const TEMP_SUFFIXES: [&str; 4] = [".tmp", ".part", ".partial", "~"];

/// How globs are matched: case-insensitive, and a leading dot is never matched by a
/// wildcard (hidden names are refused before that anyway).
const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// A glob against a file name as every file-name glob of the agent is matched
/// (`FILE_PATTERN`, a profile's `match`): ignoring case, a leading dot never matched by
/// a wildcard.
pub fn glob_matches(glob: &glob::Pattern, name: &str) -> bool {
    glob.matches_with(name, MATCH_OPTIONS)
}

/// Which files in the data folder are taken: one or more case-insensitive globs on the
/// file name. Hidden and temporary names are never taken, whatever the globs.
#[derive(Debug, Clone)]
pub struct FilePattern {
    globs: Vec<glob::Pattern>,
    /// The setting as written (trimmed), for logs and `status`.
    text: String,
    /// The `match` globs of the source profiles in force, shared by every clone (the
    /// watcher's among them) so that a profile added while the agent runs takes its
    /// files at once.
    profile_globs: Arc<RwLock<Vec<glob::Pattern>>>,
}

/// Why a `FILE_PATTERN` value cannot be used; each variant names the faulty item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing at all was given.
    #[error("no glob was given")]
    Nothing,
    /// An item of the list is empty or blank (`*.csv,,*.txt`, or a trailing comma).
    #[error("item {position} of the list is empty")]
    EmptyItem {
        /// 1-based position of the item in the list.
        position: usize,
    },
    /// An item names a folder: globs apply to file names only.
    #[error("item {item:?} contains '/': a glob applies to the file name only")]
    Slash { item: String },
    /// An item is not a valid glob.
    #[error("item {item:?} is not a valid glob: {reason}")]
    Invalid { item: String, reason: String },
}

impl FilePattern {
    /// Parses a comma-separated list of globs. Spaces around each item are ignored.
    /// Fails, naming the item, when an item is empty, contains `/`, or is not a glob.
    pub fn new(list: &str) -> Result<Self, PatternError> {
        let text = list.trim();
        if text.is_empty() {
            return Err(PatternError::Nothing);
        }
        let globs = text
            .split(',')
            .enumerate()
            .map(|(i, item)| parse_item(i + 1, item.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            globs,
            text: text.to_owned(),
            profile_globs: Arc::default(),
        })
    }

    /// Also takes the names that the source profiles' `match` globs choose: a profile
    /// written for `*.dat` files makes the agent take them without a second setting.
    /// The globs replace the previous profiles' ones, for this pattern and every clone
    /// of it (called again when the profiles are reloaded); globs the setting already
    /// has are left out.
    pub fn set_profile_globs<'a>(&self, globs: impl IntoIterator<Item = &'a str>) {
        let fresh: Vec<glob::Pattern> = globs
            .into_iter()
            .filter(|g| {
                !self
                    .globs
                    .iter()
                    .any(|have| have.as_str().eq_ignore_ascii_case(g))
            })
            .filter_map(|g| glob::Pattern::new(g).ok())
            .collect();
        *self
            .profile_globs
            .write()
            .unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// True when `name` is a data file this agent takes: it is neither hidden nor
    /// temporary (see [`FilePattern::is_transient`]) and at least one glob matches it,
    /// ignoring case. This is the one place that decides; every caller goes through it.
    pub fn matches(&self, name: &str) -> bool {
        if is_transient(name) {
            return false;
        }
        self.globs.iter().any(|g| glob_matches(g, name))
            || self
                .profile_globs
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|g| glob_matches(g, name))
    }

    /// True when `name` is left aside by the pattern: it is not hidden or temporary
    /// (those are normal while a producer writes) yet [`FilePattern::matches`] refuses
    /// it. Such files wait in the folder for ever, so the watcher names them in the log.
    pub fn leaves_aside(&self, name: &str) -> bool {
        !is_transient(name) && !self.matches(name)
    }

    /// True for hidden names (leading `.`) and the names producers give files they
    /// are still writing (`*.tmp`, `*.part`, `*.partial`, `*~`, any case). Such names
    /// are never data files and never reported as left aside.
    pub fn is_transient(name: &str) -> bool {
        is_transient(name)
    }
}

fn is_transient(name: &str) -> bool {
    name.starts_with('.') || TEMP_SUFFIXES.iter().any(|s| ends_with_ignore_case(name, s))
}

/// `name.to_ascii_lowercase().ends_with(suffix)` for a lowercase ASCII `suffix`,
/// without allocating.
fn ends_with_ignore_case(name: &str, suffix: &str) -> bool {
    let (name, suffix) = (name.as_bytes(), suffix.as_bytes());
    name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn parse_item(position: usize, item: &str) -> Result<glob::Pattern, PatternError> {
    if item.is_empty() {
        return Err(PatternError::EmptyItem { position });
    }
    if item.contains('/') {
        return Err(PatternError::Slash {
            item: item.to_owned(),
        });
    }
    glob::Pattern::new(item).map_err(|e| PatternError::Invalid {
        item: item.to_owned(),
        reason: e.msg.to_owned(),
    })
}

impl FromStr for FilePattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The list as written in the setting (trimmed at both ends), e.g. `*.csv, *.txt`.
impl fmt::Display for FilePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        let profiles = self.profile_globs.read().unwrap_or_else(|e| e.into_inner());
        if !profiles.is_empty() {
            let globs: Vec<&str> = profiles.iter().map(glob::Pattern::as_str).collect();
            write!(f, " + profiles: {}", globs.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pattern(list: &str) -> FilePattern {
        FilePattern::new(list).unwrap_or_else(|e| panic!("{list:?}: {e}"))
    }

    #[test]
    fn file_pattern_is_case_insensitive_and_skips_temp_names() {
        let p = pattern("*.csv");
        assert!(p.matches("readings.CSV"));
        assert!(p.matches("with space.csv"));
        for name in [
            ".hidden.csv",
            "a.csv.tmp",
            "a.csv.TMP",
            "a.csv.part",
            "a.csv.partial",
            "a.csv.Partial",
            "a.csv~",
            "a.txt",
        ] {
            assert!(!p.matches(name), "{name}");
        }
    }

    #[test]
    fn any_glob_of_the_list_takes_a_name() {
        let p = pattern("*.csv,*.txt,TOA5_*.dat");
        for name in ["a.csv", "B.TXT", "toa5_station.DAT", "TOA5_x.dat"] {
            assert!(p.matches(name), "{name}");
        }
        for name in ["c.dat", "toa6_x.dat", "a.csv.bak", "readme", "x.xlsx"] {
            assert!(!p.matches(name), "{name}");
        }
    }

    #[test]
    fn spaces_around_commas_are_ignored_and_display_keeps_the_text() {
        let p = pattern("  *.csv , *.txt,TOA5_*.dat  ");
        assert!(p.matches("a.csv") && p.matches("b.txt") && p.matches("TOA5_1.dat"));
        assert_eq!(p.to_string(), "*.csv , *.txt,TOA5_*.dat");
        assert_eq!(pattern("*.csv").to_string(), "*.csv");
        // A space inside an item is part of the glob.
        let p = pattern("my data*.csv");
        assert!(p.matches("my data 1.csv") && !p.matches("mydata1.csv"));
    }

    #[test]
    fn bad_items_are_named() {
        let error = |list: &str| FilePattern::new(list).unwrap_err();
        assert_eq!(error(""), PatternError::Nothing);
        assert_eq!(error("   "), PatternError::Nothing);
        for list in ["*.csv,,*.txt", "*.csv,", "*.csv, ,*.txt"] {
            assert_eq!(
                error(list),
                PatternError::EmptyItem { position: 2 },
                "{list}"
            );
        }
        assert_eq!(error(",*.csv"), PatternError::EmptyItem { position: 1 });
        let err = error("*.csv, in/*.txt");
        assert_eq!(
            err,
            PatternError::Slash {
                item: "in/*.txt".into()
            }
        );
        assert!(err.to_string().contains("\"in/*.txt\""), "{err}");
        let err = error("*.csv,[ab");
        assert!(
            matches!(&err, PatternError::Invalid { item, .. } if item == "[ab"),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"[ab\""), "{err}");
    }

    #[test]
    fn left_aside_is_neither_taken_nor_transient() {
        let p = pattern("*.csv");
        assert!(p.leaves_aside("readme.txt"));
        assert!(p.leaves_aside("export.XLSX"));
        for name in [
            "a.csv",
            ".hidden.txt",
            "b.txt.tmp",
            "c.part",
            "d~",
            ".",
            "..",
        ] {
            assert!(!p.leaves_aside(name), "{name}");
        }
        assert!(FilePattern::is_transient(".x"));
        assert!(FilePattern::is_transient("x.PART"));
        assert!(!FilePattern::is_transient("x.csv"));
    }

    proptest! {
        #[test]
        fn never_panics_and_a_name_is_taken_or_transient_or_left_aside(
            list in "[a-z*?.,/ \\[\\]!-]{0,20}",
            name in "\\PC{0,20}",
        ) {
            if let Ok(p) = FilePattern::new(&list) {
                let taken = p.matches(&name);
                let transient = FilePattern::is_transient(&name);
                let aside = p.leaves_aside(&name);
                prop_assert_eq!(u8::from(taken) + u8::from(transient) + u8::from(aside), 1);
                prop_assert_eq!(p.to_string(), list.trim());
            }
        }

        #[test]
        fn a_list_takes_what_any_of_its_items_takes(
            a in "[a-z]{1,4}", b in "[a-z]{1,4}", stem in "[a-zA-Z0-9_]{1,8}",
        ) {
            let p = pattern(&format!("*.{a}, {b}_*"));
            let by_extension = format!("{stem}.{}", a.to_uppercase());
            // `*.tmp` or `*.part` as a glob still never takes a temporary name.
            prop_assert_eq!(p.matches(&by_extension), !FilePattern::is_transient(&by_extension));
            let by_prefix = format!("{b}_{stem}");
            prop_assert!(p.matches(&by_prefix));
        }
    }

    #[test]
    fn profile_globs_reach_every_clone_and_can_be_replaced() {
        let p = FilePattern::new("*.csv").unwrap();
        let watcher = p.clone();
        assert!(!watcher.matches("TOA5_a.dat"));
        p.set_profile_globs(["TOA5_*.dat", "*.CSV"]);
        assert!(watcher.matches("toa5_A.dat"));
        assert_eq!(watcher.to_string(), "*.csv + profiles: TOA5_*.dat");
        p.set_profile_globs([]);
        assert!(!watcher.matches("TOA5_a.dat"));
        assert_eq!(watcher.to_string(), "*.csv");
    }
}
