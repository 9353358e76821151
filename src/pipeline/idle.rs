//! Archiving a followed file that stopped growing (`FOLLOW_ARCHIVE_AFTER`, a profile's
//! `[source] archive_after`), looked at when a look at it finds no complete new line:
//! [`crate::source::idle`] says whether no writer could still append; then a copy into
//! `processed/`, or, for a move, its position forgotten first and the file moved
//! second (a kill between the two leaves a file with no position: read again from its
//! start, its readings found stored with the same values and skipped).

use std::path::PathBuf;
use std::time::SystemTime;

use tracing::{debug, info, warn};

use super::Pipeline;
use crate::profile::{ArchiveIdle, Keep};
use crate::sink::{ErrorClass, FollowedFile};
use crate::source::idle::{self, Idle};
use crate::source::{Candidate, folder};

impl Pipeline {
    /// How the followed file called `name` is archived once it stopped growing: its
    /// profile's `[source] archive_after`, else `FOLLOW_ARCHIVE_AFTER`; `None`: never.
    pub fn archive_rule(&self, name: &str) -> Option<ArchiveIdle> {
        self.profiles
            .current()
            .select(name)
            .profile
            .archive_idle
            .or(self.follow_archive)
    }

    /// Whether a followed file may be archived by a move (`FOLLOW_ARCHIVE=move` or a
    /// profile's `[source] archive = "move"`): the data folder must then be writable.
    pub fn moves_idle_files(&self) -> bool {
        let moves = |r: Option<ArchiveIdle>| r.is_some_and(|r| r.keep == Keep::Move);
        self.follows_any()
            && (moves(self.follow_archive)
                || self
                    .profiles
                    .current()
                    .profiles()
                    .iter()
                    .any(|p| p.follow && moves(p.archive_idle)))
    }

    /// Archives the followed file `candidate`, at `position`, when `rule` says it
    /// stopped growing and no writer could still append. Never fails the candidate: a
    /// file not archived now is looked at again at its next look.
    pub(super) async fn archive_if_idle(
        &self,
        candidate: &Candidate,
        position: &FollowedFile,
        rule: ArchiveIdle,
    ) {
        let name = position.file_name.clone();
        let path = folder::path_of(candidate).to_owned();
        let (p, at) = (position.clone(), path.clone());
        let verdict =
            tokio::task::spawn_blocking(move || idle::idle(&at, &p, rule, SystemTime::now())).await;
        let (file, identity, hash) = match verdict {
            Ok(Ok(Idle::Ready {
                file,
                identity,
                hash,
            })) => (file, identity, hash),
            Ok(Ok(Idle::Wait(why))) => {
                debug!(why, "the followed file is not archived yet");
                return;
            }
            Ok(Ok(Idle::Unknown(why))) => {
                warn!(
                    why,
                    "the followed file stopped growing but is not archived: no writer \
                      must be able to append to it, and that cannot be known here"
                );
                return;
            }
            Ok(Err(e)) => {
                warn!(error = %e, "the followed file could not be looked at for archiving");
                return;
            }
            Err(e) => {
                warn!(error = %e, "the archiving look at a followed file failed");
                return;
            }
        };
        let processed: PathBuf = self.processed.clone();
        if rule.keep == Keep::Move {
            match self.store.forget_followed(&name, position.ledger_id).await {
                Ok(()) => {}
                Err(e) if e.class == ErrorClass::Transient => {
                    debug!(error = %e, "not archived now: its position changed meanwhile");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "the followed file's position could not be forgotten: not moved");
                    return;
                }
            }
        }
        let keep = rule.keep;
        let done = tokio::task::spawn_blocking(move || {
            crate::archive::ensure_dir(&processed).map_err(|e| e.to_string())?;
            match keep {
                Keep::Copy => idle::copy(&file, &processed, &name, &hash)
                    .map(|(n, new)| new.then_some(n))
                    .map_err(|e| e.to_string()),
                Keep::Move => idle::move_away(&path, identity, &processed, &name, &hash)
                    .map_err(|e| e.to_string()),
            }
        })
        .await;
        match done {
            Ok(Ok(Some(archived_as))) => info!(
                how = %keep,
                archived_as,
                idle_seconds = rule.after.as_secs(),
                "a followed file that stopped growing was archived into the processed folder"
            ),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!(error = e, how = %keep, "the followed file could not be archived"),
            Err(e) => warn!(error = %e, "archiving a followed file failed"),
        }
    }
}
