//! A candidate's claim key, and holding a claim while a file is worked on: renewed every [`RENEW_EVERY`], and the
//! attempt dropped (its transaction rolled back) if another agent has taken it over.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tracing::debug;

use super::{Outcome, ProcessError, TAKEN_OVER};
#[cfg(doc)]
use crate::sink::claim::RENEW_EVERY;
use crate::sink::{ClaimKey, Claims};
use crate::source::{Candidate, Identity};

/// The claim key of the item `identity` names, offered as `c`: claims key on the
/// source's identity, stored as the claims table has always stored a file's (its name,
/// inode, size, mtime and ctime), so claims written before read the same.
pub fn claim_key(c: &Candidate, identity: Identity) -> ClaimKey {
    match identity {
        Identity::File(id) => ClaimKey {
            file_name: c.name().to_owned(),
            inode: id.inode(),
            size: id.size(),
            mtime_ns: id.mtime_ns(),
            ctime_ns: id.ctime_ns(),
        },
        // An object's digest (bucket, key, ETag, version) takes the inode and ctime
        // columns.
        Identity::Object(id) => {
            let (inode, ctime_ns) = id.digest_words();
            ClaimKey {
                file_name: c.name().to_owned(),
                inode,
                size: id.size(),
                mtime_ns: id.modified_ns(),
                ctime_ns,
            }
        }
    }
}

/// Runs `work` on the file of this agent's claim `key`, renewing the claim every
/// `every` ([`RENEW_EVERY`]) until the work ends. When a renewal finds the claim taken over, the work is dropped where it
/// stands and the outcome is [`Outcome::Skipped`] with [`TAKEN_OVER`]: like a kill at
/// that point, which the pipeline survives by design (nothing is moved before its
/// commit, and a commit not followed by its move is finished by whoever comes next).
/// A renewal that fails (database unreachable) changes nothing: the work meets the
/// same trouble and is retried.
pub(super) async fn while_held(
    claims: &dyn Claims,
    key: &ClaimKey,
    every: Duration,
    work: impl Future<Output = Result<Outcome, ProcessError>>,
) -> Result<Outcome, ProcessError> {
    let mut work = std::pin::pin!(work);
    let mut renew = tokio::time::interval_at(Instant::now() + every, every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            result = &mut work => return result,
            _ = renew.tick() => {
                match tokio::time::timeout(every, claims.renew(key)).await {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => {
                        debug!("the claim ran out and another agent took the file over; \
                                leaving it to that agent");
                        return Ok(Outcome::Skipped { reason: TAKEN_OVER });
                    }
                    Ok(Err(e)) => debug!(error = %e, "could not renew the claim"),
                    Err(_) => debug!("renewing the claim timed out"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::sink::SinkError;

    /// Claims whose renewals answer from a script, counting them.
    #[derive(Debug)]
    struct Scripted(Mutex<Vec<bool>>);

    #[async_trait]
    impl Claims for Scripted {
        async fn claim(&self, keys: &[ClaimKey]) -> Result<Vec<bool>, SinkError> {
            Ok(vec![true; keys.len()])
        }
        async fn renew(&self, _: &ClaimKey) -> Result<bool, SinkError> {
            Ok(self.0.lock().unwrap().remove(0))
        }
        async fn release(&self, _: &[ClaimKey]) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn key() -> ClaimKey {
        ClaimKey {
            file_name: "a.csv".into(),
            inode: 1,
            size: 2,
            mtime_ns: 3,
            ctime_ns: 4,
        }
    }

    const EVERY: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn long_work_renews_its_claim_and_is_dropped_once_the_claim_is_lost() {
        let claims = Scripted(Mutex::new(vec![true, true, false]));
        let started = Instant::now();
        let outcome = while_held(&claims, &key(), EVERY, std::future::pending()).await;
        assert_eq!(outcome.unwrap(), Outcome::Skipped { reason: TAKEN_OVER });
        assert!(started.elapsed() >= EVERY * 3);
        assert!(claims.0.lock().unwrap().is_empty(), "renewed three times");
    }

    #[tokio::test]
    async fn short_work_never_renews() {
        // Any renewal would panic: the script is empty.
        let claims = Scripted(Mutex::new(Vec::new()));
        let work = async {
            tokio::time::sleep(EVERY / 2).await;
            Ok(Outcome::Skipped { reason: "done" })
        };
        let outcome = while_held(&claims, &key(), EVERY, work).await.unwrap();
        assert_eq!(outcome, Outcome::Skipped { reason: "done" });
    }
}
