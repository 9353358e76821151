//! `check` on a file that is followed in place (append mode: `SOURCE_MODE=append`, or
//! its profile's `[source] mode = "append"`): where it stands against the position the
//! database stores for it, read without loading or writing anything. The committed
//! offset, the file's size, the complete lines the next increment would read, a
//! partial last line held back, the last growth, and whether the bytes before the
//! offset still match (else it would be read again from its first data line).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::ops::status::human_age;
use crate::profile::Profile;
use crate::sink::{DatabaseSettings, FollowedFile};
use crate::source::follow::{self, Restart, Standing};

/// How long `check` waits for the database's answer.
const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// The stored positions, asked once per `check`.
pub(super) enum Positions {
    /// By file name.
    Stored(HashMap<String, FollowedFile>),
    /// No database (a SQLite file not created yet): nothing was ever followed.
    NoDatabase(String),
    /// The database did not answer: why.
    Unknown(String),
}

impl Positions {
    /// The positions of the database `settings` names, read on a read-only connection.
    pub(super) fn read(settings: &Settings) -> Self {
        if let DatabaseSettings::Sqlite(file) = &settings.database
            && !file.path().exists()
        {
            return Positions::NoDatabase(format!(
                "no database yet ({} does not exist)",
                file.path().display()
            ));
        }
        let asked = super::super::block_on(async {
            // The pool needs the runtime it is opened in.
            let db = crate::sink::open_read_only(&settings.database, 1);
            match tokio::time::timeout(DB_TIMEOUT, db.followed()).await {
                Ok(Ok(files)) => Ok(files),
                Ok(Err(e)) => Err(anyhow::anyhow!("{e}")),
                Err(_) => Err(anyhow::anyhow!(
                    "no answer within {} s",
                    DB_TIMEOUT.as_secs()
                )),
            }
        });
        match asked {
            Ok(files) => Positions::Stored(
                files
                    .into_iter()
                    .map(|f| (f.position.file_name.clone(), f.position))
                    .collect(),
            ),
            Err(e) => Positions::Unknown(format!(
                "the database {} did not answer: {e}",
                settings.database
            )),
        }
    }
}

/// What `check` says of one followed file.
pub(super) struct Followed {
    /// The stored position, if there is one.
    stored: Option<FollowedFile>,
    /// Why there is none, when the database could not say.
    no_position: Option<String>,
    /// Where the file stands, or why it cannot be followed now.
    standing: Result<Standing, String>,
}

impl Followed {
    /// The bytes the agent would read: up to the last complete line (a partial last line
    /// is never read), when the file could be looked at.
    pub(super) fn complete_bytes(&self) -> Option<u64> {
        self.standing
            .as_ref()
            .ok()
            .map(|s| s.size - s.partial_bytes)
    }

    /// Where the file at `path`, called `name`, stands against `positions`.
    pub(super) fn of(path: &Path, name: &str, profile: &Profile, positions: &Positions) -> Self {
        let (stored, no_position) = match positions {
            Positions::Stored(map) => (map.get(name).cloned(), None),
            Positions::NoDatabase(why) | Positions::Unknown(why) => (None, Some(why.clone())),
        };
        let header_lines = follow::header_lines(&profile.layout);
        let standing = match follow::standing(path, stored.as_ref(), header_lines) {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(why)) => Err(why.to_owned()),
            Err(e) => Err(format!("cannot be read: {e}")),
        };
        Self {
            stored,
            no_position,
            standing,
        }
    }

    /// The text lines (indented by the caller).
    pub(super) fn lines(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        match (&self.stored, &self.no_position) {
            (Some(p), _) => out.push(format!(
                "followed: committed offset {} ({} lines), last growth {} ({} ago)",
                p.offset,
                p.lines,
                crate::timestamp::format_utc(p.grown_at),
                human_age(age(now, p.grown_at))
            )),
            (None, Some(why)) => out.push(format!(
                "followed: {why}; without a stored position it would be followed from its start"
            )),
            (None, None) => out
                .push("followed: not followed yet: it would be followed from its start".to_owned()),
        }
        match &self.standing {
            Err(why) => out.push(format!("followed: nothing to read now: {why}")),
            Ok(s) => {
                out.push(format!(
                    "followed: {} bytes now; {} complete {} to read from byte {}; {}",
                    s.size,
                    s.pending_lines,
                    if s.pending_lines == 1 {
                        "line"
                    } else {
                        "lines"
                    },
                    s.start,
                    match s.partial_bytes {
                        0 => "no partial last line".to_owned(),
                        n => format!("a partial last line of {n} bytes held back"),
                    }
                ));
                if let Some(sentence) = restart_sentence(s.restart) {
                    out.push(format!("followed: {sentence}"));
                } else {
                    out.push(
                        "followed: the bytes before the offset still match: it goes on after them"
                            .to_owned(),
                    );
                }
            }
        }
        out
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        let stored = self.stored.as_ref().map(|p| {
            serde_json::json!({
                "committed_offset": p.offset,
                "committed_lines": p.lines,
                "last_growth": crate::timestamp::format_utc(p.grown_at),
            })
        });
        let standing = match &self.standing {
            Ok(s) => serde_json::json!({
                "size": s.size,
                "start": s.start,
                "pending_lines": s.pending_lines,
                "partial_bytes": s.partial_bytes,
                "modified": crate::timestamp::format_utc(s.modified),
                "before_offset_matches": s.restart.is_none(),
                "read_from_start": s.restart.map(Restart::as_str),
            }),
            Err(why) => serde_json::json!({ "nothing_to_read": why }),
        };
        serde_json::json!({
            "stored": stored,
            "no_position": self.no_position,
            "now": standing,
        })
    }
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> f64 {
    (now - then).num_milliseconds().max(0) as f64 / 1000.0
}

/// Why the next increment would read the file from its first data line, in a sentence.
fn restart_sentence(restart: Option<Restart>) -> Option<&'static str> {
    Some(match restart? {
        Restart::New => "never followed: it would be read from its first data line",
        Restart::Rotated => {
            "another file (device, inode) than the one followed: rotated; it would be read again \
             from its first data line, readings stored already with the same values skipped"
        }
        Restart::Truncated => {
            "shorter than the committed offset: truncated; it would be read again from its first \
             data line, readings stored already with the same values skipped"
        }
        Restart::HeaderChanged => {
            "its header lines changed: it would be read again from its first data line, readings \
             stored already with the same values skipped"
        }
        Restart::Rewritten => {
            "the bytes before the committed offset changed: rewritten; it would be read again \
             from its first data line, readings stored already with the same values skipped \
             and a different value refused (rewritten_value)"
        }
    })
}
