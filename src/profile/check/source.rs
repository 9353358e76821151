//! Checks of a profile's `[source]` table beyond `mode`: archiving its followed files
//! once they stopped growing (`archive_after`, `archive`), and the rule they give
//! ([`ArchiveIdle`], also what `FOLLOW_ARCHIVE_AFTER` gives).

use super::Checker;

/// What archiving a followed file (append mode) that stopped growing does
/// (`FOLLOW_ARCHIVE`, a profile's `[source] archive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// Copied into `processed/`; the file stays, still followed.
    #[default]
    Copy,
    /// Moved into `processed/`, its position forgotten.
    Move,
}

impl std::str::FromStr for Keep {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "copy" => Ok(Keep::Copy),
            "move" => Ok(Keep::Move),
            _ => Err(()),
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Keep::Copy => "copy",
            Keep::Move => "move",
        })
    }
}

/// When and how a followed file that stopped growing is archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveIdle {
    /// Not grown for this long.
    pub after: std::time::Duration,
    pub keep: Keep,
}

impl Checker<'_> {
    /// `[source] archive_after` and `archive`.
    pub(super) fn archive_idle(
        &mut self,
        s: &crate::profile::spec::SourceSpec,
    ) -> Option<ArchiveIdle> {
        let keep = match s.archive.as_deref().map(str::parse::<Keep>) {
            None => Keep::Copy,
            Some(Ok(keep)) => keep,
            Some(Err(())) => {
                self.fail("source.archive", "expected \"copy\" or \"move\"");
                return None;
            }
        };
        if s.archive.is_some() && s.archive_after.is_none() {
            self.fail("source.archive", "needs source.archive_after");
        }
        let text = s.archive_after.as_deref()?;
        if s.mode != Some(crate::profile::spec::SourceMode::Append) {
            self.fail(
                "source.archive_after",
                "applies to followed files: needs mode = \"append\"",
            );
            return None;
        }
        match idle_duration(text) {
            Some(after) => Some(ArchiveIdle { after, keep }),
            None => {
                self.fail(
                    "source.archive_after",
                    format!(
                        "{text:?} is not a duration such as \"26h\", \"90m\", \"2d\" or \"600s\""
                    ),
                );
                None
            }
        }
    }
}

/// A positive whole number of seconds, minutes, hours or days: `600s`, `90m`, `26h`, `2d`.
fn idle_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: u64 = text[..text.len() - 1].trim().parse().ok()?;
    let seconds = n.checked_mul(unit).filter(|s| *s > 0)?;
    Some(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::idle_duration;
    use super::{ArchiveIdle, Keep};
    use crate::profile::Profile;
    use std::path::Path;
    use std::time::Duration;

    fn profile(source: &str) -> Result<Profile, Vec<super::super::ProfileError>> {
        let text = format!("match = [\"day_*.csv\"]\n\n[source]\n{source}\n");
        Profile::from_text("day", Path::new("day.toml"), &text)
    }

    #[test]
    fn archive_keys_need_append_mode_a_duration_and_copy_or_move() {
        let p = profile("mode = \"append\"\narchive_after = \"26h\"\narchive = \"move\"").unwrap();
        assert_eq!(
            p.archive_idle,
            Some(ArchiveIdle {
                after: Duration::from_secs(26 * 3600),
                keep: Keep::Move
            })
        );
        let p = profile("mode = \"append\"\narchive_after = \"2d\"").unwrap();
        assert_eq!(p.archive_idle.map(|a| a.keep), Some(Keep::Copy));
        for (bad, key) in [
            ("archive_after = \"26h\"", "source.archive_after"),
            (
                "mode = \"append\"\narchive_after = \"soon\"",
                "source.archive_after",
            ),
            (
                "mode = \"append\"\narchive_after = \"1h\"\narchive = \"delete\"",
                "source.archive",
            ),
            ("mode = \"append\"\narchive = \"move\"", "source.archive"),
        ] {
            let errors = profile(bad).expect_err(bad);
            assert!(errors.iter().any(|e| e.key == key), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn idle_durations_need_a_unit_and_a_positive_whole_number() {
        assert_eq!(idle_duration("26h"), Some(Duration::from_secs(26 * 3600)));
        assert_eq!(idle_duration("2d"), Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(idle_duration("600s"), Some(Duration::from_secs(600)));
        assert_eq!(idle_duration("90m"), Some(Duration::from_secs(5400)));
        for bad in ["0h", "26", "h", "1.5h", "-1h", "3w"] {
            assert_eq!(idle_duration(bad), None, "{bad}");
        }
    }
}
