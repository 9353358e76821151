//! Retrying transient failures: capped, jittered exponential backoff that a shutdown
//! cuts short. Used for a file's attempts ([`super::Pipeline::process`]) and for the
//! database at startup (`agent`).

use std::future::Future;
use std::time::Duration;

use backon::ExponentialBuilder;
use tokio_util::sync::CancellationToken;

/// How long retries go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLimit {
    /// Until the agent shuts down.
    Forever,
    /// At most this many retries after the first attempt.
    Times(usize),
}

/// The backoff policy of the agent, from `RETRY_MAX_DELAY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_delay: Duration,
}

impl RetryPolicy {
    /// No wait is longer than `max_delay`.
    pub fn new(max_delay: Duration) -> Self {
        Self { max_delay }
    }

    /// The backoff for up to `limit` retries. backon's jitter adds up to 100 % of the
    /// delay, so the exponential part is capped at half of `RETRY_MAX_DELAY` to keep
    /// every wait within it.
    pub fn backoff(&self, limit: RetryLimit) -> ExponentialBuilder {
        let cap = self.max_delay / 2;
        let b = ExponentialBuilder::default()
            .with_min_delay(cap.min(Duration::from_millis(250)))
            .with_max_delay(cap)
            .with_jitter();
        match limit {
            RetryLimit::Forever => b.without_max_times(),
            RetryLimit::Times(n) => b.with_max_times(n),
        }
    }
}

/// A sleep for backon that ends early when `shutdown` is cancelled, so a stop never
/// waits out a backoff.
pub fn sleep_unless_cancelled(
    shutdown: &CancellationToken,
) -> impl Fn(Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + use<> {
    let token = shutdown.clone();
    move |d| {
        let token = token.clone();
        Box::pin(async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = token.cancelled() => {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn every_wait_stays_within_the_cap_jitter_included() {
        let policy = RetryPolicy::new(Duration::from_millis(400));
        let waits: Vec<Duration> = policy.backoff(RetryLimit::Times(12)).build().collect();
        assert_eq!(waits.len(), 12);
        assert!(
            waits.iter().all(|d| *d <= Duration::from_millis(400)),
            "{waits:?}"
        );
        assert!(
            policy
                .backoff(RetryLimit::Forever)
                .build()
                .nth(1000)
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_shutdown_ends_the_sleep() {
        let token = CancellationToken::new();
        let sleep = sleep_unless_cancelled(&token);
        let started = std::time::Instant::now();
        let waiting = tokio::spawn(sleep(Duration::from_secs(3600)));
        tokio::task::yield_now().await;
        token.cancel();
        waiting.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
