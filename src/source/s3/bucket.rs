//! The bucket behind the source seam: HEAD to take an object, one streamed GET spooled
//! to an anonymous temporary file to read it, copy-then-delete to let it go.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig,
};
use tokio::runtime::Handle;

use super::error::{Backoff, S3Error};
use super::{After, S3Config};
use crate::archive::ArchiveError;
use crate::read::ContentHash;
use crate::report::QuarantineReport;
use crate::source::{
    Archived, Candidate, Held, Identity, Location, ObjectId, ObjectRef, Opened, Source, Taken,
    WriteNew,
};

/// Retries of one request before the failure goes back to the pipeline (which
/// retries the whole attempt, as long as the agent runs).
const REQUEST_RETRIES: usize = 4;

/// A bucket and the prefix objects are taken from, with where they go afterwards.
#[derive(Debug)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    pub(super) bucket: String,
    pub(super) prefix: String,
    pub(super) processed: String,
    pub(super) quarantine: String,
    pub(super) after: After,
    pub(super) spool_dir: PathBuf,
    backoff: Backoff,
    /// The agent's runtime: the source's methods run on its blocking pool, and drive
    /// their requests on it.
    runtime: Handle,
}

impl Bucket {
    /// A client for the bucket `cfg` names, path-style when an endpoint is given (what
    /// S3-compatible servers expect). Nothing is sent yet. Call it inside a runtime.
    pub fn connect(cfg: &S3Config) -> Result<Self, S3Error> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            // Retries are ours (error::Backoff), so that every one is sorted and logged.
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(5))
                    // A whole GET of a large object must fit; a stalled one ends here.
                    .with_timeout(Duration::from_secs(15 * 60)),
            );
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(id) = &cfg.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &cfg.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let store = builder.build().map_err(|e| S3Error::Refused {
            bucket: cfg.bucket.clone(),
            key: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self {
            store: Arc::new(store),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            processed: cfg.processed_prefix.clone(),
            quarantine: cfg.quarantine_prefix.clone(),
            after: cfg.after,
            spool_dir: cfg.spool_dir.clone().unwrap_or_else(std::env::temp_dir),
            backoff: Backoff {
                max_delay: cfg.retry_max_delay,
                times: REQUEST_RETRIES,
            },
            runtime: Handle::current(),
        })
    }

    /// The object store client, for discovery.
    pub(super) fn store(&self) -> &Arc<AmazonS3> {
        &self.store
    }

    pub(super) fn backoff(&self) -> Backoff {
        self.backoff
    }

    pub(super) fn fail(&self, key: &str, e: &object_store::Error) -> S3Error {
        S3Error::of(&self.bucket, key, e)
    }

    /// The candidate for an object listed under the prefix (at any depth), known by the
    /// last part of its key, as a file is by its name (never a path: profiles match it,
    /// the ledger and the reports show it); `None` for what is not under the prefix,
    /// and for the processed and quarantine prefixes when they lie under it.
    pub fn candidate(&self, meta: &ObjectMeta) -> Option<Candidate> {
        let key = meta.location.as_ref();
        let below = key.strip_prefix(&self.prefix)?;
        let set_aside = |p: &str| !p.is_empty() && key.starts_with(p);
        if below.is_empty() || set_aside(&self.processed) || set_aside(&self.quarantine) {
            return None;
        }
        let name = below.rsplit('/').next().unwrap_or(below);
        let at = ObjectRef {
            key: key.to_owned(),
            size: meta.size,
            modified: meta.last_modified,
            e_tag: meta.e_tag.clone(),
        };
        Some(Candidate::in_bucket(name, at))
    }

    /// The identity of the object `meta` describes.
    fn identity(&self, meta: &ObjectMeta) -> ObjectId {
        ObjectId::of(
            &self.bucket,
            meta.location.as_ref(),
            meta.e_tag.as_deref(),
            meta.version.as_deref(),
            meta.size,
            meta.last_modified,
        )
    }

    /// Runs a request future to its end from the blocking pool.
    pub(super) fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }

    /// HEAD, retried while the server is away.
    pub(super) async fn head(&self, key: &str) -> Result<ObjectMeta, S3Error> {
        let path = Key::from(key);
        self.backoff
            .retry("HEAD", || async {
                self.store.head(&path).await.map_err(|e| self.fail(key, &e))
            })
            .await
    }

    /// HEAD of the object `read` names, or `None` when its key now names another
    /// object (overwritten) or nothing.
    pub(super) async fn still(
        &self,
        key: &str,
        read: ObjectId,
    ) -> Result<Option<ObjectMeta>, S3Error> {
        match self.head(key).await {
            Ok(meta) if self.identity(&meta) == read => Ok(Some(meta)),
            Ok(_) | Err(S3Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One GET of `meta`'s object (pinned to its ETag) streamed into `file` and hashed
    /// as it passes; the size must be the one the HEAD gave.
    async fn spool(
        &self,
        meta: &ObjectMeta,
        mut file: &File,
    ) -> Result<(ContentHash, u64), S3Error> {
        let key = meta.location.as_ref();
        let spool_error = |e: io::Error| S3Error::Refused {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: format!("cannot spool to {}: {e}", self.spool_dir.display()),
        };
        file.set_len(0).map_err(spool_error)?;
        file.rewind().map_err(spool_error)?;
        let options = GetOptions {
            if_match: meta.e_tag.clone(),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&meta.location, options)
            .await
            .map_err(|e| self.fail(key, &e))?;
        let mut stream = got.into_stream();
        let (mut hasher, mut size) = (blake3::Hasher::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.fail(key, &e))?;
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(spool_error)?;
            size += chunk.len() as u64;
        }
        if size != meta.size {
            return Err(S3Error::Changed {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
            });
        }
        file.rewind().map_err(spool_error)?;
        Ok((ContentHash::from_hasher(&hasher), size))
    }

    /// Reads the object `meta` describes into a new anonymous temporary file.
    async fn read_object(&self, meta: &ObjectMeta) -> Result<(File, ContentHash, u64), S3Error> {
        let key = meta.location.as_ref();
        let file = tempfile::tempfile_in(&self.spool_dir).map_err(|e| S3Error::Refused {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: format!("cannot spool to {}: {e}", self.spool_dir.display()),
        })?;
        let (hash, size) = self
            .backoff
            .retry("GET", || self.spool(meta, &file))
            .await?;
        Ok((file, hash, size))
    }

    /// The key a bucket candidate names.
    pub(super) fn key_of(c: &Candidate) -> Option<&ObjectRef> {
        match c.location() {
            Location::Object(at) => Some(at),
            _ => None,
        }
    }

    fn archive_error(&self, name: &str, prefix: &str, e: S3Error) -> ArchiveError {
        ArchiveError {
            file: name.to_owned(),
            dir: PathBuf::from(format!("s3://{}/{prefix}", self.bucket)),
            source: e.into_io(),
        }
    }
}

/// What a candidate that is not an object (a programming error) is answered with.
fn not_an_object() -> io::Error {
    io::Error::other("not an object of this bucket")
}

impl Source for Bucket {
    fn take(&self, c: &Candidate) -> io::Result<Result<Taken, &'static str>> {
        let at = Self::key_of(c).ok_or_else(not_an_object)?;
        match self.block_on(self.head(&at.key)) {
            Ok(meta) => Ok(Ok(Taken {
                identity: Identity::Object(self.identity(&meta)),
                held: Held::Object(Box::new(meta)),
            })),
            Err(S3Error::NotFound { .. }) => Ok(Err(crate::intake::VANISHED)),
            Err(e) => Err(e.into_io()),
        }
    }

    fn read(&self, taken: Taken, max_bytes: Option<u64>) -> io::Result<Opened> {
        let Taken { identity, held } = taken;
        let Held::Object(meta) = held else {
            return Err(not_an_object());
        };
        if let Some(limit) = max_bytes.filter(|limit| meta.size > *limit) {
            return Ok(Opened::TooLarge {
                size: meta.size,
                limit,
                identity,
            });
        }
        match self.block_on(self.read_object(&meta)) {
            Ok((file, hash, size)) => Ok(Opened::File {
                file,
                hash,
                size,
                identity,
            }),
            Err(S3Error::NotFound { .. }) => Ok(Opened::Skip(crate::intake::VANISHED)),
            Err(e) => Err(e.into_io()),
        }
    }

    fn archive(
        &self,
        c: &Candidate,
        read: Identity,
        hash: &ContentHash,
    ) -> Result<Archived, ArchiveError> {
        let (Some(at), Identity::Object(read)) = (Self::key_of(c), read) else {
            return Err(self.archive_error(c.name(), &self.processed, not_object_error(c)));
        };
        if self.after == After::Keep {
            return Ok(Some(c.name().to_owned()));
        }
        self.block_on(self.move_to(&at.key, read, &self.processed, c.name(), hash))
            .map_err(|e| self.archive_error(c.name(), &self.processed, e))
    }

    fn quarantine(
        &self,
        c: &Candidate,
        read: Identity,
        report: &mut QuarantineReport,
        hash: &ContentHash,
    ) -> Result<Archived, ArchiveError> {
        let (Some(at), Identity::Object(read)) = (Self::key_of(c), read) else {
            return Err(self.archive_error(c.name(), &self.quarantine, not_object_error(c)));
        };
        self.block_on(self.quarantine_object(&at.key, read, report, hash))
            .map_err(|e| self.archive_error(c.name(), &self.quarantine, e))
    }

    fn quarantine_new(
        &self,
        report: &mut QuarantineReport,
        hash: &ContentHash,
        write: WriteNew<'_>,
    ) -> Result<Archived, ArchiveError> {
        let name = report.file.clone();
        let fail = |e| self.archive_error(&name, &self.quarantine, e);
        let spooled = tempfile::tempfile_in(&self.spool_dir)
            .and_then(|mut file| write(&mut file).and(file.rewind()).map(|()| file));
        let file = spooled.map_err(|e| {
            fail(S3Error::Refused {
                bucket: self.bucket.clone(),
                key: name.clone(),
                message: format!("cannot spool to {}: {e}", self.spool_dir.display()),
            })
        })?;
        self.block_on(self.quarantine_file(file, report, hash))
            .map_err(fail)
    }

    /// By the object's Last-Modified (the server's clock: when it was uploaded). S3
    /// gives it in whole seconds, so an upload in the second the load started cannot
    /// be placed: `false` (a duplicate, which is moved aside all the same).
    fn arrived_before(&self, c: &Candidate, read: Identity, at: DateTime<Utc>) -> bool {
        let (Some(object), Identity::Object(read)) = (Self::key_of(c), read) else {
            return false;
        };
        match self.block_on(self.still(&object.key, read)) {
            Ok(Some(meta)) => meta.last_modified + chrono::TimeDelta::seconds(1) <= at,
            _ => false,
        }
    }

    /// When it was uploaded, as listed.
    fn arrival_time(&self, c: &Candidate) -> Option<SystemTime> {
        let at = Self::key_of(c)?;
        let nanos = at.modified.timestamp_nanos_opt()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).ok()?))
    }

    /// Its size as listed: no request.
    fn size_hint(&self, c: &Candidate) -> Option<u64> {
        Self::key_of(c).map(|at| at.size)
    }

    /// When objects are moved away (`S3_AFTER=move`): another agent that took the
    /// object before the delete finds it gone when it reads (the GET is afresh), and
    /// one that takes the same identity after it is looking at a new upload. Objects
    /// left in place keep their claim until it runs out, as files do.
    fn claim_ends_when_let_go(&self) -> bool {
        self.after == After::Move
    }

    /// With `S3_AFTER=keep`.
    fn leaves_in_place(&self) -> bool {
        self.after == After::Keep
    }
}

fn not_object_error(c: &Candidate) -> S3Error {
    S3Error::Refused {
        bucket: String::new(),
        key: c.name().to_owned(),
        message: "not an object of this bucket".into(),
    }
}
