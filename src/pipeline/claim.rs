//! Holding a claim while a file is worked on: renewed every [`RENEW_EVERY`], and the
//! attempt dropped (its transaction rolled back) if another agent has taken it over.

use std::future::Future;

use tokio::time::{Instant, MissedTickBehavior};
use tracing::debug;

use super::{Outcome, ProcessError, TAKEN_OVER};
use crate::sink::claim::RENEW_EVERY;
use crate::sink::{ClaimKey, Claims};

/// Runs `work` on the file of this agent's claim `key`, renewing the claim until the
/// work ends. When a renewal finds the claim taken over, the work is dropped where it
/// stands and the outcome is [`Outcome::Skipped`] with [`TAKEN_OVER`]: like a kill at
/// that point, which the pipeline survives by design (nothing is moved before its
/// commit, and a commit not followed by its move is finished by whoever comes next).
/// A renewal that fails (database unreachable) changes nothing: the work meets the
/// same trouble and is retried.
pub(super) async fn while_held(
    claims: &dyn Claims,
    key: &ClaimKey,
    work: impl Future<Output = Result<Outcome, ProcessError>>,
) -> Result<Outcome, ProcessError> {
    let mut work = std::pin::pin!(work);
    let mut renew = tokio::time::interval_at(Instant::now() + RENEW_EVERY, RENEW_EVERY);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            result = &mut work => return result,
            _ = renew.tick() => {
                match tokio::time::timeout(RENEW_EVERY, claims.renew(key)).await {
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
