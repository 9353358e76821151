//! Letting an object go once its outcome is committed: copied under the processed or
//! quarantine prefix (a free name: never overwriting another object), then deleted.
//! Each request is retried while the server is away; an attempt cut short anywhere is
//! finished by the next one, which finds the copy already made (the same ETag under the
//! chosen name) and goes on to the delete. An object whose delete never happens is seen
//! again, and its content hash (already committed) makes it a duplicate, never a
//! second load.

use std::fs::File;
use std::io::Read;

use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::Bucket;
use super::error::S3Error;
use crate::archive::{self, REPORT_SUFFIX};
use crate::read::ContentHash;
use crate::report::QuarantineReport;
use crate::source::ObjectId;

/// The longest key S3 takes.
const KEY_MAX: usize = 1024;

/// What is under a name an object may be copied to.
enum Slot {
    Free,
    /// A copy of this very object, made by an attempt cut short.
    Ours,
    Taken,
}

/// Bytes per part when an object is uploaded from a local file.
const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

impl Bucket {
    /// What `key` holds, as a place to copy `meta`'s object to.
    async fn slot(&self, key: &str, meta: &ObjectMeta) -> Result<Slot, S3Error> {
        match self.head(key).await {
            Ok(there)
                if there.e_tag.is_some()
                    && there.e_tag == meta.e_tag
                    && there.size == meta.size =>
            {
                Ok(Slot::Ours)
            }
            Ok(_) => Ok(Slot::Taken),
            Err(S3Error::NotFound { .. }) => Ok(Slot::Free),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<(), S3Error> {
        let (src, dst) = (Key::from(from), Key::from(to));
        self.backoff()
            .retry("COPY", || async {
                self.store()
                    .copy(&src, &dst)
                    .await
                    .map_err(|e| self.fail(to, &e))
            })
            .await
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let path = Key::from(key);
        let deleted = self
            .backoff()
            .retry("DELETE", || async {
                self.store()
                    .delete(&path)
                    .await
                    .map_err(|e| self.fail(key, &e))
            })
            .await;
        match deleted {
            Err(S3Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    pub(super) async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        let (path, payload) = (Key::from(key), PutPayload::from(bytes));
        self.backoff()
            .retry("PUT", || async {
                self.store()
                    .put(&path, payload.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| self.fail(key, &e))
            })
            .await
    }

    /// Moves the object `read` at `key` to `prefix` + `name` (or a free variant of it:
    /// `archive::candidates`); `None` when `key` no longer names that object.
    pub(super) async fn move_to(
        &self,
        key: &str,
        read: ObjectId,
        prefix: &str,
        name: &str,
        hash: &ContentHash,
    ) -> Result<Option<String>, S3Error> {
        let Some(meta) = self.still(key, read).await? else {
            return Ok(None);
        };
        for candidate in archive::candidates(name, hash, KEY_MAX - prefix.len()) {
            let to = format!("{prefix}{candidate}");
            match self.slot(&to, &meta).await? {
                Slot::Taken => continue,
                Slot::Free => self.copy(key, &to).await?,
                Slot::Ours => {}
            }
            self.delete(key).await?;
            return Ok(Some(candidate));
        }
        Err(S3Error::Refused {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: format!("no free name left under {prefix}"),
        })
    }

    /// Writes `report` as an object beside the name the object `read` at `key` is
    /// moved to under the quarantine prefix, then moves it there.
    pub(super) async fn quarantine_object(
        &self,
        key: &str,
        read: ObjectId,
        report: &mut QuarantineReport,
        hash: &ContentHash,
    ) -> Result<Option<String>, S3Error> {
        let Some(meta) = self.still(key, read).await? else {
            return Ok(None);
        };
        let prefix = self.quarantine.clone();
        let room = KEY_MAX - prefix.len() - REPORT_SUFFIX.len();
        for candidate in archive::candidates(&report.file, hash, room) {
            let to = format!("{prefix}{candidate}");
            let slot = self.slot(&to, &meta).await?;
            if matches!(slot, Slot::Taken) {
                continue;
            }
            report.quarantined_as = candidate.clone();
            self.put_report(&format!("{to}{REPORT_SUFFIX}"), report)
                .await?;
            if matches!(slot, Slot::Free) {
                self.copy(key, &to).await?;
            }
            self.delete(key).await?;
            return Ok(Some(candidate));
        }
        Err(S3Error::Refused {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: format!("no free name left under {prefix}"),
        })
    }

    async fn put_report(&self, key: &str, report: &QuarantineReport) -> Result<(), S3Error> {
        let json = serde_json::to_vec_pretty(report).map_err(|e| S3Error::Refused {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: e.to_string(),
        })?;
        self.put(key, json).await
    }

    /// Uploads `file` (the rejected rows of a partial load) under a free name in the
    /// quarantine, beside `report`; streamed in parts, so its size does not matter.
    pub(super) async fn quarantine_file(
        &self,
        file: File,
        report: &mut QuarantineReport,
        hash: &ContentHash,
    ) -> Result<Option<String>, S3Error> {
        let prefix = self.quarantine.clone();
        let room = KEY_MAX - prefix.len() - REPORT_SUFFIX.len();
        for candidate in archive::candidates(&report.file, hash, room) {
            let to = format!("{prefix}{candidate}");
            match self.head(&to).await {
                Ok(_) => continue,
                Err(S3Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            report.quarantined_as = candidate.clone();
            self.put_report(&format!("{to}{REPORT_SUFFIX}"), report)
                .await?;
            let file = file.try_clone().map_err(|e| self.local(&to, e))?;
            self.backoff()
                .retry("upload", || self.upload(&file, &to))
                .await?;
            return Ok(Some(candidate));
        }
        Err(S3Error::Refused {
            bucket: self.bucket.clone(),
            key: report.file.clone(),
            message: format!("no free name left under {prefix}"),
        })
    }

    /// One upload of `file`, from its start, in parts of [`UPLOAD_CHUNK`].
    async fn upload(&self, file: &File, key: &str) -> Result<(), S3Error> {
        use std::io::Seek;
        let mut file = file.try_clone().map_err(|e| self.local(key, e))?;
        file.rewind().map_err(|e| self.local(key, e))?;
        let store: std::sync::Arc<dyn object_store::ObjectStore> = self.store().clone();
        let mut out = BufWriter::with_capacity(store, Key::from(key), UPLOAD_CHUNK);
        let mut chunk = vec![0u8; UPLOAD_CHUNK];
        loop {
            let n = file.read(&mut chunk).map_err(|e| self.local(key, e))?;
            if n == 0 {
                break;
            }
            if let Err(e) = out.write_all(&chunk[..n]).await {
                let _ = out.abort().await;
                return Err(self.io_fail(key, e));
            }
        }
        out.shutdown().await.map_err(|e| self.io_fail(key, e))
    }

    /// A local file could not be read or written.
    pub(super) fn local(&self, key: &str, e: std::io::Error) -> S3Error {
        S3Error::Refused {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: format!("local file: {e}"),
        }
    }

    /// An upload's failure, as object_store hands it back through `AsyncWrite`.
    fn io_fail(&self, key: &str, e: std::io::Error) -> S3Error {
        match e.into_inner() {
            Some(inner) => match inner.downcast::<object_store::Error>() {
                Ok(e) => self.fail(key, &e),
                Err(other) => self.fail(
                    key,
                    &object_store::Error::Generic {
                        store: "S3",
                        source: other,
                    },
                ),
            },
            None => S3Error::Transient {
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                message: "upload interrupted".into(),
            },
        }
    }
}
