//! The bucket's quarantine for the review: the objects directly under the quarantine
//! prefix (each refused object beside its `NAME.error.json` report object), earlier
//! reports under `PREFIX.attempts/`. A retry copies the object back under the source
//! prefix as `PREFIX` + the name it was dropped with, then deletes it from the
//! quarantine: the copy is a new upload (a new identity), listed and loaded like any
//! other, and its content hash still decides whether it is a duplicate.
//!
//! S3 has no rename: a rename here is a HEAD (the new name must be free), a copy and a
//! delete. Two operators renaming to the same name at the same instant could both find
//! it free; the review is a person's action, and the folder's own rename is the atomic
//! one.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;

use super::Bucket;
use super::error::S3Error;
use crate::source::review::{ATTEMPTS, QuarantineArea, Stored, plain};

impl Bucket {
    /// The key of the quarantine item `name`.
    fn quarantine_key(&self, name: &str) -> io::Result<String> {
        Ok(format!("{}{}", self.quarantine, plain(name)?.display()))
    }

    /// The objects directly under `prefix` (not under its sub-prefixes), by their
    /// name below `strip`.
    async fn list_level(&self, prefix: &str, strip: &str) -> Result<Vec<Stored>, S3Error> {
        let under = Key::from(prefix);
        let listed = self
            .backoff()
            .retry("LIST", || async {
                self.store()
                    .list_with_delimiter(Some(&under))
                    .await
                    .map_err(|e| self.fail(prefix, &e))
            })
            .await?;
        let mut out = Vec::new();
        for meta in listed.objects {
            let key = meta.location.as_ref();
            let Some(name) = key.strip_prefix(strip) else {
                continue;
            };
            let base = name.rsplit('/').next().unwrap_or(name);
            if base.is_empty() || base.starts_with('.') {
                continue;
            }
            out.push(Stored {
                name: name.to_owned(),
                modified: meta.last_modified,
            });
        }
        Ok(out)
    }

    /// One GET of `key` streamed into an anonymous temporary file, rewound.
    async fn fetch(&self, key: &str) -> Result<File, S3Error> {
        let file = tempfile::tempfile_in(&self.spool_dir).map_err(|e| self.local(key, e))?;
        let path = Key::from(key);
        self.backoff()
            .retry("GET", || async {
                let mut out = &file;
                out.set_len(0).map_err(|e| self.local(key, e))?;
                out.rewind().map_err(|e| self.local(key, e))?;
                let got = self
                    .store()
                    .get(&path)
                    .await
                    .map_err(|e| self.fail(key, &e))?;
                let mut stream = got.into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| self.fail(key, &e))?;
                    out.write_all(&chunk).map_err(|e| self.local(key, e))?;
                }
                out.rewind().map_err(|e| self.local(key, e))
            })
            .await?;
        Ok(file)
    }

    /// Whether `key` names an object now.
    async fn exists(&self, key: &str) -> Result<bool, S3Error> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(S3Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Copies `from` to `to` unless `to` names an object already (`AlreadyExists`),
    /// then deletes `from`.
    async fn move_no_clobber(&self, from: &str, to: &str) -> io::Result<()> {
        if self.exists(to).await.map_err(S3Error::into_io)? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("s3://{}/{to} exists", self.bucket),
            ));
        }
        self.copy(from, to).await.map_err(S3Error::into_io)?;
        self.delete(from).await.map_err(S3Error::into_io)
    }
}

impl QuarantineArea for Bucket {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.quarantine)
    }

    fn list(&self, attempts: bool) -> io::Result<Vec<Stored>> {
        let prefix = if attempts {
            format!("{}{ATTEMPTS}/", self.quarantine)
        } else {
            self.quarantine.clone()
        };
        self.block_on(self.list_level(&prefix, &self.quarantine))
            .map_err(S3Error::into_io)
    }

    fn stat(&self, name: &str) -> io::Result<Option<Stored>> {
        let key = self.quarantine_key(name)?;
        match self.block_on(self.head(&key)) {
            Ok(meta) => Ok(Some(Stored {
                name: name.to_owned(),
                modified: meta.last_modified,
            })),
            Err(S3Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into_io()),
        }
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let key = self.quarantine_key(name)?;
        let file = self.block_on(self.fetch(&key)).map_err(S3Error::into_io)?;
        Ok(Box::new(file))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.quarantine_key(from)?, self.quarantine_key(to)?);
        self.block_on(self.move_no_clobber(&from, &to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let key = self.quarantine_key(name)?;
        self.block_on(self.delete(&key)).map_err(S3Error::into_io)
    }

    fn is_waiting(&self, original: &str) -> io::Result<bool> {
        let key = format!("{}{}", self.prefix, plain(original)?.display());
        self.block_on(self.exists(&key)).map_err(S3Error::into_io)
    }

    fn put_back(&self, name: &str, original: &str) -> io::Result<String> {
        let from = self.quarantine_key(name)?;
        let to = format!("{}{}", self.prefix, plain(original)?.display());
        self.block_on(self.move_no_clobber(&from, &to))?;
        Ok(format!("s3://{}/{to}", self.bucket))
    }
}
