//! The agent's metrics registry: files by outcome, rows loaded and rejected, database
//! retries, bytes read, drop-to-commit latency, and the files waiting in the data folder
//! with the age of the oldest (set at each scrape by [`crate::http`], which serves
//! them as OpenMetrics text at `/metrics`).
//!
//! The pipeline records into [`Metrics`] where outcomes are known (see
//! [`crate::pipeline::Pipeline::with_metrics`]); exposition is `prometheus-client`'s.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds of the drop-to-commit latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

type OutcomeLabel = Vec<(&'static str, &'static str)>;

/// The agent's counters, gauges and histogram. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    files: Family<OutcomeLabel, Counter>,
    quarantined: Family<OutcomeLabel, Counter>,
    rows_loaded: Counter,
    rows_rejected: Counter,
    database_retries: Counter,
    bytes_read: Counter,
    files_waiting: Gauge,
    oldest_waiting_age: Gauge<f64, AtomicU64>,
    drop_to_commit: Histogram,
    s3: S3Counts,
    followed_files: Gauge,
    followed_lag: Gauge,
}

/// What listing a bucket counts (`SOURCE=s3://…`); the upload-to-commit lag is
/// `drop_to_commit`, whose start is an object's upload time.
#[derive(Debug, Default)]
struct S3Counts {
    objects_listed: Counter,
    list_calls: Counter,
    reconcile_finds: Counter,
    objects_known: Counter,
}

impl S3Counts {
    fn register(registry: &mut Registry) -> Self {
        let s3 = Self::default();
        registry.register(
            "s3_objects_listed",
            "Objects seen by listings of the bucket",
            s3.objects_listed.clone(),
        );
        registry.register(
            "s3_list_calls",
            "List requests sent to the bucket (one per page of up to 1,000 keys)",
            s3.list_calls.clone(),
        );
        registry.register(
            "s3_reconcile_finds",
            "Objects a full listing found that the watermark listings and notifications had missed",
            s3.reconcile_finds.clone(),
        );
        registry.register(
            "s3_objects_known",
            "Objects left in place (S3_AFTER=keep) that the ledger records already: left alone, unread",
            s3.objects_known.clone(),
        );
        s3
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sensor_ingest");
        let files = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "files",
            "Files processed, by outcome (loaded, duplicate, recovered, quarantined, skipped, failed)",
            files.clone(),
        );
        let quarantined = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "files_quarantined",
            "Files quarantined, by rule (the report's rule: not_a_number, missing_column, …)",
            quarantined.clone(),
        );
        let rows_loaded = Counter::default();
        registry.register(
            "rows_loaded",
            "Rows committed to the database",
            rows_loaded.clone(),
        );
        let rows_rejected = Counter::default();
        registry.register(
            "rows_rejected",
            "Invalid rows found in quarantined files, and bad rows left out of partial loads",
            rows_rejected.clone(),
        );
        let database_retries = Counter::default();
        registry.register(
            "database_retries",
            "Attempts retried because the database was unreachable or busy",
            database_retries.clone(),
        );
        let bytes_read = Counter::default();
        registry.register_with_unit(
            "read",
            "Bytes of data files read",
            Unit::Bytes,
            bytes_read.clone(),
        );
        let files_waiting = Gauge::default();
        registry.register(
            "files_waiting",
            "Data files in the data folder (waiting or in progress), at scrape time",
            files_waiting.clone(),
        );
        let oldest_waiting_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "oldest_waiting_age",
            "Age of the oldest data file in the data folder (by modification time), 0 when none",
            Unit::Seconds,
            oldest_waiting_age.clone(),
        );
        let drop_to_commit = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "drop_to_commit",
            "Time from a file's arrival in the data folder to its commit",
            Unit::Seconds,
            drop_to_commit.clone(),
        );
        let s3 = S3Counts::register(&mut registry);
        let followed_files = Gauge::default();
        registry.register(
            "followed_files",
            "Files followed in place (append mode)",
            followed_files.clone(),
        );
        let followed_lag = Gauge::default();
        registry.register_with_unit(
            "followed_lag",
            "Bytes of followed files after their committed offsets: not loaded yet",
            Unit::Bytes,
            followed_lag.clone(),
        );
        Self {
            registry,
            s3,
            followed_files,
            followed_lag,
            files,
            quarantined,
            rows_loaded,
            rows_rejected,
            database_retries,
            bytes_read,
            files_waiting,
            oldest_waiting_age,
            drop_to_commit,
        }
    }

    /// One file reached `outcome` (`loaded`, `duplicate`, `recovered`, `quarantined`,
    /// `skipped` or `failed`).
    pub fn file(&self, outcome: &'static str) {
        self.files.get_or_create(&vec![("outcome", outcome)]).inc();
    }

    /// One file was quarantined under `rule`.
    pub fn quarantined(&self, rule: crate::rule::Rule) {
        self.quarantined
            .get_or_create(&vec![("rule", rule.name())])
            .inc();
    }

    pub fn rows_loaded(&self, rows: u64) {
        self.rows_loaded.inc_by(rows);
    }

    pub fn rows_rejected(&self, rows: u64) {
        self.rows_rejected.inc_by(rows);
    }

    pub fn database_retry(&self) {
        self.database_retries.inc();
    }

    pub fn bytes_read(&self, bytes: u64) {
        self.bytes_read.inc_by(bytes);
    }

    /// A file that arrived at `dropped_at` was committed now.
    pub fn committed(&self, dropped_at: SystemTime) {
        let latency = SystemTime::now()
            .duration_since(dropped_at)
            .unwrap_or_default();
        self.drop_to_commit.observe(latency.as_secs_f64());
    }

    /// A listing of the bucket saw `objects` in `calls` list requests, `late` of them
    /// missed before (found by a full listing).
    pub fn s3_listed(&self, objects: u64, calls: u64, late: u64) {
        self.s3.objects_listed.inc_by(objects);
        self.s3.list_calls.inc_by(calls);
        self.s3.reconcile_finds.inc_by(late);
    }

    /// `objects` left in place were found recorded in the ledger already, and left
    /// alone unread.
    pub fn s3_known(&self, objects: u64) {
        self.s3.objects_known.inc_by(objects);
    }

    /// Sets the waiting-files gauges: `count` files wait, the oldest for `oldest`.
    pub fn set_waiting(&self, count: usize, oldest: Duration) {
        self.files_waiting
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        self.oldest_waiting_age.set(oldest.as_secs_f64());
    }

    /// Sets the followed-files gauges: how many, and their bytes not loaded yet.
    pub fn set_followed(&self, count: usize, lag_bytes: u64) {
        self.followed_files
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        self.followed_lag
            .set(i64::try_from(lag_bytes).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family() {
        let m = Metrics::new();
        m.file("loaded");
        m.quarantined(crate::rule::Rule::OutOfRange);
        m.rows_loaded(10);
        m.bytes_read(100);
        m.committed(SystemTime::now() - Duration::from_millis(300));
        m.s3_listed(5, 2, 1);
        m.s3_known(3);
        let text = m.encode();
        for needle in [
            "sensor_ingest_files_total{outcome=\"loaded\"} 1",
            "sensor_ingest_files_quarantined_total{rule=\"out_of_range\"} 1",
            "sensor_ingest_rows_loaded_total 10",
            "sensor_ingest_rows_rejected_total 0",
            "sensor_ingest_database_retries_total 0",
            "sensor_ingest_read_bytes_total 100",
            "sensor_ingest_drop_to_commit_seconds_bucket{le=\"0.5\"} 1",
            "sensor_ingest_drop_to_commit_seconds_count 1",
            "sensor_ingest_s3_objects_listed_total 5",
            "sensor_ingest_s3_list_calls_total 2",
            "sensor_ingest_s3_reconcile_finds_total 1",
            "sensor_ingest_s3_objects_known_total 3",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
