//! Finding the objects to load: every `MONITOR_INTERVAL`, a listing of each folder of
//! the prefix after its own watermark (S3's `StartAfter`: the greatest key listed in
//! that folder so far), and of the whole prefix after the greatest key of all (a new
//! folder); every `S3_RECONCILE`, a full listing that finds what the watermarks cannot
//! see (a key that sorts before its folder's watermark, uploaded late; a key
//! overwritten; a new folder that sorts before the others). A bucket notification (the
//! agent's `/s3/notify`) only wakes the next listing early: listings are the source
//! of truth, so a notification lost costs a delay, never an object.
//!
//! What has been offered is remembered (key, ETag, size and Last-Modified: some
//! servers, s3s-fs among them, list no ETag, and an overwrite still changes the others)
//! until a full listing no longer shows it, so a reconciliation offers again only what the watermark missed, or, when
//! objects are moved away after loading (`S3_AFTER=move`), whatever is still there.
//!
//! Objects left in place (`S3_AFTER=keep`) are looked up in the ledger before they are
//! offered, a page at a time, by their [`SourceIdentity`] (from the listing: key, ETag,
//! size): one the ledger records as loaded, partial or duplicate is left alone, unread
//! (`sensor_ingest_s3_objects_known_total`), after a restart and whichever agent
//! recorded it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectMeta;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::error::S3Error;
use super::{After, Bucket};
use crate::metrics::Metrics;
use crate::pattern::FilePattern;
use crate::sink::Store;
use crate::source::{Candidate, SourceIdentity};

/// Keys per list call (S3's own maximum).
const PAGE: usize = 1000;

/// How long a notification waits for the others of its burst before the listing.
const HINT_GATHER: Duration = Duration::from_millis(200);

/// How discovery runs.
#[derive(Debug, Clone)]
pub struct DiscoverConfig {
    /// Which names are data (`FILE_PATTERN`, with the profiles' globs).
    pub pattern: FilePattern,
    /// Between listings after the watermark (`MONITOR_INTERVAL`).
    pub interval: Duration,
    /// Between full listings (`S3_RECONCILE`).
    pub reconcile: Duration,
    /// Poked by a bucket notification: list now.
    pub hint: Arc<Notify>,
    pub metrics: Option<Arc<Metrics>>,
    /// The ledger objects left in place are looked up in.
    pub ledger: Arc<dyn Store>,
}

/// The state of discovery between listings: a plain value, driven directly by tests.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Per folder of the bucket (a key up to its last `/`), the greatest key listed
    /// there: each folder is listed after its own watermark, so a site's new export is
    /// found even when another site's keys sort after it.
    watermarks: BTreeMap<String, String>,
    /// Offered objects, key to [`Stamp`], as far as the last full listing knows them.
    offered: HashMap<String, Stamp>,
    /// Whether a full listing has been made.
    listed_once: bool,
    /// Whether objects were held back since the last full listing began (their look-up
    /// failed): the next listing is a full one.
    held_back: bool,
    /// Where objects left in place (`S3_AFTER=keep`) are looked up before they are
    /// offered; `None`: every object is offered.
    ledger: Option<Arc<dyn Store>>,
}

/// What tells one upload under a key from the next, as a listing shows it: the ETag
/// (when the server lists one), the size and the Last-Modified.
type Stamp = (Option<String>, u64, chrono::DateTime<chrono::Utc>);

fn stamp(meta: &ObjectMeta) -> Stamp {
    (meta.e_tag.clone(), meta.size, meta.last_modified)
}

/// One listing's result.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub objects: u64,
    pub calls: u64,
    /// Objects a full listing found that had not been offered (the watermark's misses).
    pub found_late: u64,
    /// Objects left in place that the ledger records already: not offered.
    pub known: u64,
}

/// One listing request sequence: keys under `prefix` after `after`, only the folder's
/// own (not its sub-folders') when `one_folder`.
struct Range {
    prefix: String,
    after: Option<String>,
    one_folder: bool,
}

/// The folder of `key`: everything up to its last `/` (empty at the bucket's top).
fn folder_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

impl Discovery {
    /// Discovery that looks objects left in place up in `ledger` before offering them.
    pub fn new(ledger: Arc<dyn Store>) -> Self {
        Self {
            ledger: Some(ledger),
            ..Self::default()
        }
    }

    /// Whether the next listing must be a full one.
    pub fn needs_full(&self) -> bool {
        !self.listed_once || self.held_back
    }

    /// Lists the bucket's prefix (all of it when `full`; else each known folder after
    /// its watermark, and the whole prefix after the greatest key for new folders) and
    /// sends each data object not offered yet (or, in `After::Move`, each still there
    /// on a full listing) to `out`.
    pub async fn list(
        &mut self,
        bucket: &Bucket,
        pattern: &FilePattern,
        full: bool,
        out: &mpsc::Sender<Candidate>,
    ) -> Result<Listed, S3Error> {
        let mut listed = Listed::default();
        let whole = |after| Range {
            prefix: bucket.prefix.clone(),
            after,
            one_folder: false,
        };
        if full {
            self.held_back = false;
            let mut seen_now = HashMap::new();
            self.list_range(
                bucket,
                pattern,
                whole(None),
                Some(&mut seen_now),
                out,
                &mut listed,
            )
            .await?;
            // Forget what is gone: the memory is bounded by what the prefix holds.
            self.offered.retain(|key, _| seen_now.contains_key(key));
            self.listed_once = true;
            return Ok(listed);
        }
        let mut ranges: Vec<Range> = (self.watermarks.iter())
            .map(|(folder, mark)| Range {
                prefix: folder.clone(),
                after: Some(mark.clone()),
                one_folder: true,
            })
            .collect();
        ranges.push(whole(self.watermarks.values().max().cloned()));
        for range in ranges {
            if !self
                .list_range(bucket, pattern, range, None, out, &mut listed)
                .await?
            {
                break;
            }
        }
        Ok(listed)
    }

    /// Lists `range` page by page, offering what it finds (and noting every key in
    /// `seen`, on a full listing); `false` when `out` is closed.
    async fn list_range(
        &mut self,
        bucket: &Bucket,
        pattern: &FilePattern,
        range: Range,
        mut seen: Option<&mut HashMap<String, Stamp>>,
        out: &mpsc::Sender<Candidate>,
        listed: &mut Listed,
    ) -> Result<bool, S3Error> {
        let full = seen.is_some();
        let mut page_token = None;
        loop {
            let opts = PaginatedListOptions {
                offset: range.after.clone(),
                delimiter: range.one_folder.then_some("/".into()),
                max_keys: Some(PAGE),
                page_token: page_token.clone(),
                ..PaginatedListOptions::default()
            };
            let page = list_page(bucket, &range.prefix, opts).await?;
            listed.calls += 1;
            let mut offers = Vec::new();
            for meta in &page.result.objects {
                listed.objects += 1;
                let key = meta.location.as_ref();
                let mark = self
                    .watermarks
                    .entry(folder_of(key).to_owned())
                    .or_default();
                if key > mark.as_str() {
                    *mark = key.to_owned();
                }
                if let Some(seen) = seen.as_deref_mut() {
                    seen.insert(key.to_owned(), stamp(meta));
                }
                if let Some(c) = self.offer(bucket, pattern, meta, full, listed) {
                    offers.push(c);
                }
            }
            for c in self.unknown(bucket, offers, listed).await {
                if out.send(c).await.is_err() {
                    return Ok(false);
                }
            }
            page_token = page.page_token;
            if page_token.is_none() {
                return Ok(true);
            }
        }
    }

    /// Of a page's `offers`, those to send: all of them, unless objects are left in
    /// place (`S3_AFTER=keep`), when those the ledger records already are left alone
    /// (counted in `listed.known`). Should the ledger not answer, none is sent and all
    /// are forgotten, and the next listing is a full one that offers them again: an
    /// object is neither read unlooked-up nor lost.
    async fn unknown(
        &mut self,
        bucket: &Bucket,
        offers: Vec<Candidate>,
        listed: &mut Listed,
    ) -> Vec<Candidate> {
        let Some(ledger) = self.ledger.as_ref().filter(|_| bucket.after == After::Keep) else {
            return offers;
        };
        let identities = match identities(bucket, &offers).await {
            Ok(identities) => identities,
            Err(e) => return self.forget(offers, &e.to_string()),
        };
        let asked: Vec<String> = identities.iter().flatten().cloned().collect();
        if asked.is_empty() {
            return offers;
        }
        match ledger.known_sources(&asked).await {
            Ok(known) => {
                let known: std::collections::HashSet<String> = known.into_iter().collect();
                let before = offers.len();
                let left: Vec<Candidate> = offers
                    .into_iter()
                    .zip(identities)
                    .filter(|(_, id)| id.as_ref().is_none_or(|id| !known.contains(id)))
                    .map(|(c, _)| c)
                    .collect();
                listed.known += (before - left.len()) as u64;
                left
            }
            Err(e) => self.forget(offers, &e.to_string()),
        }
    }

    /// Holds `offers` back after a failed look-up: forgotten, and the next listing a
    /// full one that offers them again.
    fn forget(&mut self, offers: Vec<Candidate>, error: &str) -> Vec<Candidate> {
        warn!(
            error,
            objects = offers.len(),
            "could not look objects left in place up; listing them again"
        );
        for c in &offers {
            if let Some(at) = Bucket::key_of(c) {
                self.offered.remove(&at.key);
            }
        }
        self.held_back = true;
        Vec::new()
    }

    /// The candidate to send for `meta`, if any, remembering it as offered.
    fn offer(
        &mut self,
        bucket: &Bucket,
        pattern: &FilePattern,
        meta: &ObjectMeta,
        full: bool,
        listed: &mut Listed,
    ) -> Option<Candidate> {
        let c = bucket.candidate(meta)?;
        if !pattern.matches(c.name()) {
            return None;
        }
        let key = meta.location.as_ref();
        let known = self.offered.get(key) == Some(&stamp(meta));
        if full && !known && !self.offered.is_empty() {
            listed.found_late += 1;
        }
        if known && !(full && bucket.after == After::Move) {
            return None;
        }
        self.offered.insert(key.to_owned(), stamp(meta));
        Some(c)
    }
}

/// The ledger's source identity of each object `offers` name: from the listing, or,
/// where the listing gave no ETag (s3s-fs gives none), from a HEAD. `None` for an
/// object gone since it was listed (the attempt will find it gone) or without an ETag.
async fn identities(bucket: &Bucket, offers: &[Candidate]) -> Result<Vec<Option<String>>, S3Error> {
    let mut out = Vec::with_capacity(offers.len());
    for c in offers {
        let Some(at) = Bucket::key_of(c) else {
            out.push(None);
            continue;
        };
        let (e_tag, size) = match &at.e_tag {
            Some(e_tag) => (Some(e_tag.clone()), at.size),
            None => match bucket.head(&at.key).await {
                Ok(meta) => (meta.e_tag, meta.size),
                Err(S3Error::NotFound { .. }) => (None, at.size),
                Err(e) => return Err(e),
            },
        };
        let id = SourceIdentity::of(&bucket.bucket, &at.key, e_tag.as_deref(), size);
        out.push(id.map(|i| i.text()));
    }
    Ok(out)
}

/// One list call under `prefix`, retried while the server is away.
async fn list_page(
    bucket: &Bucket,
    prefix: &str,
    opts: PaginatedListOptions,
) -> Result<object_store::list::PaginatedListResult, S3Error> {
    let under = (!prefix.is_empty()).then_some(prefix);
    bucket
        .backoff()
        .retry("LIST", || async {
            bucket
                .store()
                .list_paginated(under, opts.clone())
                .await
                .map_err(|e| bucket.fail(prefix, &e))
        })
        .await
}

/// Every data object under the prefix now, for `once` (less those left in place that
/// `ledger` records already: logged, and counted in `metrics`).
pub async fn present(
    bucket: &Bucket,
    pattern: &FilePattern,
    ledger: Arc<dyn Store>,
    metrics: Option<&Metrics>,
) -> Result<Vec<Candidate>, S3Error> {
    let (tx, mut rx) = mpsc::channel(PAGE);
    let listing = async move {
        let mut discovery = Discovery::new(ledger);
        let listed = discovery.list(bucket, pattern, true, &tx).await?;
        if discovery.needs_full() {
            // Objects were held back, the look-up having failed (logged): `once` does
            // not list again, so it fails rather than leave them out unsaid.
            return Err(S3Error::Transient {
                bucket: bucket.bucket.clone(),
                key: bucket.prefix.clone(),
                message: "objects left in place could not be looked up in the ledger".into(),
            });
        }
        if let Some(m) = metrics {
            m.s3_known(listed.known);
        }
        if listed.known > 0 {
            info!(
                objects = listed.known,
                "objects left in place that the ledger records already: left alone, unread"
            );
        }
        Ok::<_, S3Error>(listed)
    };
    let collect = async {
        let mut all = Vec::new();
        while let Some(c) = rx.recv().await {
            all.push(c);
        }
        all
    };
    let (listed, all) = tokio::join!(listing, collect);
    listed.map(|_| all)
}

/// Lists the bucket until `shutdown`, sending candidates on `out` (bounded: a full
/// queue holds the listing back).
pub async fn discover(
    bucket: Arc<Bucket>,
    cfg: DiscoverConfig,
    out: mpsc::Sender<Candidate>,
    shutdown: CancellationToken,
) {
    let mut discovery = Discovery::new(cfg.ledger.clone());
    let mut last_full = Instant::now();
    info!(bucket = %bucket.bucket, prefix = %bucket.prefix, reconcile_s = cfg.reconcile.as_secs(),
        "listing the bucket for objects");
    while !shutdown.is_cancelled() {
        let full = discovery.needs_full() || last_full.elapsed() >= cfg.reconcile;
        let listing = discovery.list(&bucket, &cfg.pattern, full, &out);
        let result = tokio::select! {
            r = listing => r,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(listed) => {
                if full {
                    last_full = Instant::now();
                }
                if let Some(m) = &cfg.metrics {
                    m.s3_listed(listed.objects, listed.calls, listed.found_late);
                    m.s3_known(listed.known);
                }
                if listed.known > 0 {
                    debug!(
                        objects = listed.known,
                        "objects left in place that the ledger records already: left alone"
                    );
                }
                if listed.found_late > 0 {
                    info!(
                        found = listed.found_late,
                        "the full listing found objects the watermark had missed"
                    );
                }
                debug!(
                    objects = listed.objects,
                    calls = listed.calls,
                    full,
                    "listed the bucket"
                );
            }
            Err(e) => {
                warn!(error = %e, "could not list the bucket; trying again at the next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = cfg.hint.notified() => {
                debug!("a bucket notification asks for a listing");
                // A burst of notifications (one per object uploaded) makes one listing.
                tokio::time::sleep(HINT_GATHER).await;
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_folder_is_everything_up_to_its_last_slash() {
        assert_eq!(
            folder_of("incoming/site-a/2026-12-06.csv"),
            "incoming/site-a/"
        );
        assert_eq!(folder_of("incoming/x.csv"), "incoming/");
        assert_eq!(folder_of("x.csv"), "");
    }

    #[test]
    fn the_first_listing_is_a_full_one() {
        let d = Discovery::default();
        assert!(d.needs_full());
    }
}
