//! What can go wrong talking to a bucket, sorted once into what a retry can cure
//! (the server slow, restarting or out of reach) and what it cannot (access denied, a
//! bad bucket name), and the retry of the first kind: capped, jittered exponential
//! backoff with `backon`.

use std::future::Future;
use std::io;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// One request to the bucket failed. The message names the bucket and the key; it never
/// carries a credential (object_store's errors name the request, not its signature).
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// Worth retrying: a connection refused or reset, a timeout, 5xx (503 SlowDown
    /// among them), 429, a body cut short.
    #[error("s3://{bucket}/{key}: the server did not answer ({message}); retrying")]
    Transient {
        bucket: String,
        key: String,
        message: String,
    },
    /// The credentials may not do this: fix the policy or the keys.
    #[error(
        "s3://{bucket}/{key}: access denied ({message}); check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY and the bucket policy"
    )]
    Denied {
        bucket: String,
        key: String,
        message: String,
    },
    /// The object is not there (any more).
    #[error("s3://{bucket}/{key}: no such object")]
    NotFound { bucket: String, key: String },
    /// The object changed between two requests (its ETag no longer matches).
    #[error("s3://{bucket}/{key}: the object changed while it was being read")]
    Changed { bucket: String, key: String },
    /// Anything else the server refused; a retry would meet the same answer.
    #[error("s3://{bucket}/{key}: {message}")]
    Refused {
        bucket: String,
        key: String,
        message: String,
    },
}

impl S3Error {
    /// Sorts an object_store error about `key` in `bucket`.
    pub fn of(bucket: &str, key: &str, e: &object_store::Error) -> Self {
        use object_store::Error as E;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        match e {
            E::NotFound { .. } => Self::NotFound { bucket, key },
            E::Precondition { .. } | E::NotModified { .. } => Self::Changed { bucket, key },
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => Self::Denied {
                bucket,
                key,
                message: e.to_string(),
            },
            E::Generic { .. } if is_transient_text(&chain_text(e)) => Self::Transient {
                bucket,
                key,
                message: e.to_string(),
            },
            _ => Self::Refused {
                bucket,
                key,
                message: e.to_string(),
            },
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// As an I/O error for the source seam: a transient one takes a kind that
    /// `source::is_transient` recognises (a local file never fails that way), so the
    /// pipeline retries it instead of giving the object up.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            Self::Transient { .. } => io::ErrorKind::TimedOut,
            Self::Denied { .. } => io::ErrorKind::PermissionDenied,
            Self::NotFound { .. } => io::ErrorKind::NotFound,
            Self::Changed { .. } => io::ErrorKind::Interrupted,
            Self::Refused { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

/// The error and every cause under it, as one line.
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Whether object_store's catch-all error is one a retry can cure. object_store maps
/// 404, 412, 304, 401 and 403 to their own variants; what stays generic is a status it
/// has no variant for, or no status at all (the request never got an answer:
/// connect, timeout, reset, a body cut short). Of the statuses, 5xx and 429 are the
/// server's own "try again"; any other 4xx is an answer.
fn is_transient_text(text: &str) -> bool {
    const MARK: &str = "status code: ";
    match text.find(MARK) {
        Some(at) => {
            let code = &text[at + MARK.len()..];
            code.starts_with('5') || code.starts_with("429") || code.starts_with("408")
        }
        // An S3 error document without a status line: the codes S3 documents as
        // retryable.
        None if text.contains("error response") => [
            "SlowDown",
            "InternalError",
            "ServiceUnavailable",
            "RequestTimeout",
        ]
        .iter()
        .any(|code| text.contains(code)),
        None => true,
    }
}

/// The backoff between retries of one request: from 100 ms up to `max_delay` (jitter
/// included), `times` retries at most; what is still failing then is handed to the
/// pipeline's own retry, which a shutdown cuts short.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub max_delay: Duration,
    pub times: usize,
}

impl Backoff {
    fn builder(self) -> ExponentialBuilder {
        let cap = self.max_delay / 2;
        ExponentialBuilder::default()
            .with_min_delay(cap.min(Duration::from_millis(100)))
            .with_max_delay(cap)
            .with_jitter()
            .with_max_times(self.times)
    }

    /// Runs `op` until it succeeds, fails for good, or has been retried `times`.
    pub async fn retry<T, F, Fut>(self, what: &str, op: F) -> Result<T, S3Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        op.retry(self.builder())
            .when(S3Error::is_transient)
            .notify(|e, delay| {
                tracing::warn!(error = %e, next_delay_ms = delay.as_millis() as u64,
                    "{what} failed; retrying")
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.to_owned().into(),
        }
    }

    #[test]
    fn server_trouble_is_transient_and_answers_are_not() {
        for text in [
            "Error performing GET in 1s - Server returned non-2xx status code: 503 Service Unavailable: SlowDown",
            "Error performing GET in 1s - Server returned non-2xx status code: 500 Internal Server Error",
            "Error performing GET in 1s - Server returned non-2xx status code: 429 Too Many Requests",
            "Error performing HEAD in 1s - HTTP error: error sending request: Connection refused (os error 111)",
            "Server returned error response: <Error><Code>SlowDown</Code></Error>",
        ] {
            assert!(
                S3Error::of("b", "k", &generic(text)).is_transient(),
                "{text}"
            );
        }
        for text in [
            "Error performing GET in 1s - Server returned non-2xx status code: 400 Bad Request",
            "Server returned error response: <Error><Code>NoSuchBucket</Code></Error>",
        ] {
            assert!(
                !S3Error::of("b", "k", &generic(text)).is_transient(),
                "{text}"
            );
        }
    }

    #[test]
    fn access_denied_names_bucket_and_key_and_is_permanent() {
        let e = object_store::Error::PermissionDenied {
            path: "in/a.csv".into(),
            source: "403 Forbidden".into(),
        };
        let e = S3Error::of("fleet", "in/a.csv", &e);
        assert!(!e.is_transient());
        let text = e.to_string();
        assert!(text.contains("s3://fleet/in/a.csv") && text.contains("access denied"));
        assert_eq!(e.into_io().kind(), io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_and_a_permanent_one_is_not() {
        let backoff = Backoff {
            max_delay: Duration::from_millis(4),
            times: 5,
        };
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got = backoff
            .retry("GET", || async {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < 2 {
                    Err(S3Error::of("b", "k", &generic("Connection reset by peer")))
                } else {
                    Ok(n)
                }
            })
            .await;
        assert_eq!(got.unwrap(), 2);
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let got: Result<(), _> = backoff
            .retry("GET", || async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(S3Error::NotFound {
                    bucket: "b".into(),
                    key: "k".into(),
                })
            })
            .await;
        assert!(got.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
