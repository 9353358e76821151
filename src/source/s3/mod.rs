//! An S3-compatible bucket as a source (`SOURCE=s3://bucket/prefix/`): objects under
//! the prefix are found by [`discover`] (a listing after a watermark, and a full
//! reconciliation now and then), taken with a HEAD, read with one streamed GET, and
//! after their outcome is committed copied to `processed/` or `quarantine/` (beside
//! the JSON report) and deleted, or left in place (`S3_AFTER=keep`).
//!
//! An object's identity is its bucket, key, ETag, version and size: the same key
//! overwritten is a new identity, so a new delivery; the content hash still decides
//! duplicates. Each ledger row records the part of it a listing shows (bucket, key,
//! ETag, size: [`crate::source::SourceIdentity`]), by which an object left in place is
//! known from the listing, unread. Requests that fail for a reason a retry can cure are retried
//! ([`error::Backoff`]), then handed to the pipeline's retry as transient; nothing is
//! quarantined because the server was away.
//!
//! Reading: the pipeline reads a `std::fs::File` (it hashes before the load, may read
//! twice when a date order is proven late, and checks the length after the commit), so
//! the GET is streamed chunk by chunk into an anonymous temporary file (unlinked at
//! creation: nothing is left behind by a crash), hashed as it passes. Memory stays at
//! one chunk whatever the object's size; the disk holds one copy per object in
//! progress (at most `WORKERS` + the small files being grouped). One GET serves both
//! passes, where re-reading from the server would cost a GET per pass.

mod bucket;
pub mod discover;
pub mod error;
mod let_go;
mod review;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use self::bucket::Bucket;
pub use self::error::S3Error;

/// What becomes of an object once its outcome is committed (`S3_AFTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Copied to the processed prefix, then deleted (the default).
    Move,
    /// Left where it is. Its ledger row records its identity (bucket, key, ETag,
    /// size), so that it is not read again, after a restart or by another agent; the
    /// same key overwritten is a new delivery.
    Keep,
}

/// The secret access key: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Where the bucket is and how to reach it: plain values, read at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// The key prefix objects are listed under: empty, or ending in `/`.
    pub prefix: String,
    /// An S3-compatible server (`S3_ENDPOINT`, e.g. `http://127.0.0.1:9000`), addressed
    /// path-style; `None` is AWS itself, addressed by region.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretKey>,
    /// Where loaded objects go (`S3_PROCESSED_PREFIX`, default `processed/`).
    pub processed_prefix: String,
    /// Where refused objects and their reports go (`S3_QUARANTINE_PREFIX`, default
    /// `quarantine/`).
    pub quarantine_prefix: String,
    pub after: After,
    /// How often the whole prefix is listed again (`S3_RECONCILE`, default 1 h).
    pub reconcile: Duration,
    /// Where objects are spooled while they are read (`S3_SPOOL_DIR`, default the
    /// system's temporary folder).
    pub spool_dir: Option<PathBuf>,
    /// Upper bound of the wait between retries of one request (`RETRY_MAX_DELAY`).
    pub retry_max_delay: Duration,
}

impl S3Config {
    /// `s3://bucket/prefix/` split into the bucket and the prefix (a prefix not ending
    /// in `/` gets one: a prefix names a folder of the bucket). `None` if it is not an
    /// `s3://` URL with a bucket name S3 accepts.
    pub fn parse_url(url: &str) -> Option<(String, String)> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket || prefix.split('/').any(|s| s == "." || s == "..") {
            return None;
        }
        let prefix = prefix.trim_start_matches('/');
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        Some((bucket.to_owned(), prefix))
    }

    /// `s3://bucket/prefix/`, for logs.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_url_names_a_bucket_and_a_folder_prefix() {
        let p = |u| S3Config::parse_url(u);
        assert_eq!(
            p("s3://fleet/incoming/"),
            Some(("fleet".into(), "incoming/".into()))
        );
        assert_eq!(
            p("s3://fleet/incoming"),
            Some(("fleet".into(), "incoming/".into()))
        );
        assert_eq!(p("s3://fleet"), Some(("fleet".into(), String::new())));
        assert_eq!(p("s3://fleet/"), Some(("fleet".into(), String::new())));
        assert_eq!(p("s3://fleet/a/b/"), Some(("fleet".into(), "a/b/".into())));
        for bad in [
            "fleet/x",
            "s3://",
            "s3://Fleet/x",
            "s3://ab/x",
            "s3://fleet/../x",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_secret_key_is_never_shown() {
        let cfg = S3Config {
            bucket: "fleet".into(),
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some(SecretKey::new("wJalrXUtnFEMI/K7MDENG".into())),
            processed_prefix: "processed/".into(),
            quarantine_prefix: "quarantine/".into(),
            after: After::Move,
            reconcile: Duration::from_secs(3600),
            spool_dir: None,
            retry_max_delay: Duration::from_secs(30),
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("wJalr") && shown.contains("SecretKey(***)"));
    }
}
