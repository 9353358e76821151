//! Sources: where files come from. A source offers [`Candidate`]s (a location and a
//! display name, nothing opened yet); the pipeline asks the source to take hold of one
//! ([`Source::take`]: what is there now, and its [`Identity`], which is not a path),
//! to read its bytes ([`Source::read`]: opened and hashed), and, once the outcome is
//! committed, to let it go ([`Source::archive`] after a load, [`Source::quarantine`]
//! after a refusal). Claims key on the identity, the ledger on the display name and
//! the content hash; nothing past this seam knows what a folder is.
//!
//! The data folder is the first source ([`folder`]: its watcher, `intake` and
//! `archive` behind the trait); [`follow`] reads its files in append mode, in place, one
//! increment of complete lines at a time (`docs/append.md`); [`s3`] takes objects from a
//! bucket. The quarantine review reads what a source quarantined through
//! [`QuarantineArea`] ([`review`]). A new source is a file here implementing [`Source`],
//! a [`Location`] and an [`Identity`] variant, and a discovery loop that sends its
//! candidates to the agent; `docs/ARCHITECTURE.md` sketches a followed (appended) file
//! and an S3 object.

pub mod folder;
pub mod follow;
pub mod idle;
pub mod review;
pub mod s3;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

pub use self::folder::{FileId, Folder};
pub use self::follow::Mode;
pub use self::review::{FolderQuarantine, QuarantineArea, Stored};
use crate::archive::ArchiveError;
use crate::read::ContentHash;
use crate::report::QuarantineReport;

/// Something a source offers to load, before anything is opened: where it is, and the
/// name logs, reports, the ledger and profile selection know it by (worked out once,
/// here). Two candidates are the same when they name the same place: the agent keeps
/// one worker per candidate at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    name: String,
    location: Location,
}

/// Where a candidate is in its source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A file directly in the data folder.
    Folder(PathBuf),
    /// An object in the bucket, as listed.
    Object(ObjectRef),
}

/// An object as a listing showed it: its key, and its size, upload time and ETag then.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub key: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub e_tag: Option<String>,
}

impl Candidate {
    /// The file at `path` in the data folder, known by its file name.
    pub fn in_folder(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: crate::intake::display_name(&path),
            location: Location::Folder(path),
        }
    }

    /// The object listed `at`, known by `name` (its key below the source's prefix).
    pub fn in_bucket(name: &str, at: ObjectRef) -> Self {
        Self {
            name: name.to_owned(),
            location: Location::Object(at),
        }
    }

    /// The name it is known by: its file name (for an object, its key below the prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn location(&self) -> &Location {
        &self.location
    }
}

impl From<PathBuf> for Candidate {
    fn from(path: PathBuf) -> Self {
        Self::in_folder(path)
    }
}

/// Which item a candidate named when it was taken hold of. Claims key on it (with the
/// display name), and the source checks it before letting an item go, so that what is
/// archived is what was read, never a newcomer under the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A file in a folder: its device, inode, size and times.
    File(FileId),
    /// An object in a bucket: its bucket, key, ETag and version, size and upload time.
    Object(ObjectId),
}

impl Identity {
    /// What the ledger records of the item's identity (`source_identity`): an
    /// object's [`SourceIdentity`]; nothing for a file (files are moved away, and a
    /// file's inode is reused).
    pub fn recorded(&self) -> Option<SourceIdentity> {
        match self {
            Identity::File(_) => None,
            Identity::Object(id) => id.recorded(),
        }
    }
}

/// An object's identity (see [`Identity::Object`]), kept small and `Copy`: the bucket,
/// key, ETag and version enter a 128-bit digest, beside the size and upload time. The
/// same key overwritten is a new ETag, so a new identity.
///
/// Beside it, what the ledger records of the object ([`SourceIdentity`]): only what a
/// listing shows too, so that an object recorded already is known from the listing,
/// unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId {
    digest: [u8; 16],
    size: u64,
    modified_ns: i64,
    recorded: Option<SourceIdentity>,
}

/// What the ledger records of an object (its `source_identity`): a 128-bit digest of
/// its bucket, full key, ETag and size, as 32 hex digits. Only what a listing shows
/// (a listing gives no version, and its Last-Modified is not always the HEAD's to the
/// second): the same key overwritten with other bytes has another ETag, so another
/// identity; the same bytes uploaded again under the same key are the same identity,
/// which is right, as they would be a duplicate. An object without an ETag has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceIdentity([u8; 16]);

impl SourceIdentity {
    /// The identity of the object at `key` in `bucket` with this ETag and size; `None`
    /// without an ETag (nothing would tell an overwrite apart).
    pub fn of(bucket: &str, key: &str, e_tag: Option<&str>, size: u64) -> Option<Self> {
        let e_tag = e_tag?;
        let mut h = blake3::Hasher::new();
        h.update(b"s3-object-v1");
        for part in [bucket, key, e_tag] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update(&size.to_le_bytes());
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Some(Self(digest))
    }

    /// The 32 hex digits the ledger stores.
    pub fn text(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl ObjectId {
    pub fn of(
        bucket: &str,
        key: &str,
        e_tag: Option<&str>,
        version: Option<&str>,
        size: u64,
        modified: DateTime<Utc>,
    ) -> Self {
        let mut h = blake3::Hasher::new();
        for part in [bucket, key, e_tag.unwrap_or(""), version.unwrap_or("")] {
            // Length-prefixed, so that no two tuples hash the same bytes.
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Self {
            digest,
            size,
            modified_ns: modified.timestamp_nanos_opt().unwrap_or(i64::MAX),
            recorded: SourceIdentity::of(bucket, key, e_tag, size),
        }
    }

    /// What the ledger records of it, if it has an ETag.
    pub fn recorded(&self) -> Option<SourceIdentity> {
        self.recorded
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Upload time, nanoseconds since the Unix epoch.
    pub fn modified_ns(&self) -> i64 {
        self.modified_ns
    }

    /// The digest as the two 64-bit numbers a claim stores in place of a file's inode
    /// and ctime.
    pub fn digest_words(&self) -> (u64, i64) {
        let (a, b) = self.digest.split_at(8);
        let word = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
        (word(a), word(b) as i64)
    }
}

/// Whether a source's I/O error is one a retry can cure: the kinds an object store's
/// client gives a server that is away, slow or restarting (`s3::S3Error::into_io`),
/// and an object that changed while it was read. A local file never fails so.
pub fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::Interrupted
    )
}

/// A candidate taken hold of but not read yet (on a store several agents share, it is
/// claimed in between): its identity, and what the source holds to read it.
#[derive(Debug)]
pub struct Taken {
    identity: Identity,
    held: Held,
}

/// What a source holds of a taken candidate.
#[derive(Debug)]
enum Held {
    /// An open regular file no one is writing, and its metadata as opened.
    File { file: File, meta: std::fs::Metadata },
    /// An object, as its HEAD described it.
    Object(Box<object_store::ObjectMeta>),
}

impl Taken {
    pub fn identity(&self) -> Identity {
        self.identity
    }
}

/// A candidate's bytes, opened for the pipeline.
#[derive(Debug)]
pub enum Opened {
    /// Its bytes, hashed, positioned at their start.
    File {
        file: File,
        hash: ContentHash,
        size: u64,
        identity: Identity,
    },
    /// Not data (gone, a link, a FIFO…), or still being written: why.
    Skip(&'static str),
    /// Over `MAX_FILE_BYTES`: not read at all.
    TooLarge {
        size: u64,
        limit: u64,
        identity: Identity,
    },
}

/// The name an item was archived or quarantined under, or `None` when the candidate no
/// longer names the item that was read (something else took its place meanwhile):
/// nothing was moved, and the newcomer waits for its own turn.
pub type Archived = Option<String>;

/// Writes the content of a new item for the quarantine (the rejected rows of a partial
/// load).
pub type WriteNew<'a> = Box<dyn FnOnce(&mut dyn io::Write) -> io::Result<()> + Send + 'a>;

/// Where files come from, and what taking, archiving and quarantining one means there.
/// Every method does blocking I/O: the pipeline calls them on the blocking pool.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Takes hold of `c` without reading it: `Ok(Err)` says why it is not (or not yet)
    /// an item to load. Used where the item must be claimed before it is read.
    fn take(&self, c: &Candidate) -> io::Result<Result<Taken, &'static str>>;

    /// Opens and hashes what [`Source::take`] held, unless it is larger than
    /// `max_bytes`.
    fn read(&self, taken: Taken, max_bytes: Option<u64>) -> io::Result<Opened>;

    /// Takes hold of `c` and reads it in one go, where nothing is claimed in between.
    fn open(&self, c: &Candidate, max_bytes: Option<u64>) -> io::Result<Opened> {
        match self.take(c)? {
            Ok(taken) => self.read(taken, max_bytes),
            Err(reason) => Ok(Opened::Skip(reason)),
        }
    }

    /// After a commit: moves the item `read` away as processed, never overwriting.
    fn archive(
        &self,
        c: &Candidate,
        read: Identity,
        hash: &ContentHash,
    ) -> Result<Archived, ArchiveError>;

    /// After a refusal: puts the item `read` into the quarantine beside `report` (whose
    /// `quarantined_as` it fills in), never overwriting.
    fn quarantine(
        &self,
        c: &Candidate,
        read: Identity,
        report: &mut QuarantineReport,
        hash: &ContentHash,
    ) -> Result<Archived, ArchiveError>;

    /// Writes a new item into the quarantine under `report.file` (made unique), beside
    /// its report: the rejected rows of a partial load.
    fn quarantine_new(
        &self,
        report: &mut QuarantineReport,
        hash: &ContentHash,
        write: WriteNew<'_>,
    ) -> Result<Archived, ArchiveError>;

    /// Whether the item `read` at `c` arrived in the source no later than `at`: then a
    /// load of its name and content that started at `at` was this very item (committed,
    /// not archived), and not an earlier copy. `false` when it cannot be told.
    fn arrived_before(&self, c: &Candidate, read: Identity, at: DateTime<Utc>) -> bool;

    /// When the item at `c` arrived in the source, if known: the start of its
    /// drop-to-commit latency.
    fn arrival_time(&self, c: &Candidate) -> Option<SystemTime>;

    /// The size of the item at `c` now, without taking it (for the room it needs).
    fn size_hint(&self, c: &Candidate) -> Option<u64>;

    /// Whether the claim on an item ends once the item has been let go (archived or
    /// quarantined): true when it is then no longer where it was found and [`read`]
    /// fetches afresh (a [`Taken`] holds no bytes), so that whatever is taken under
    /// the same identity afterwards is a new arrival to look at (identical bytes
    /// uploaded again under the same key within the same second of Last-Modified),
    /// not the item already done. False for the folder: [`take`] holds the open
    /// file, and an agent that took it just before it was moved could read it once
    /// more and record a spurious duplicate; its claim runs out by itself.
    ///
    /// [`read`]: Source::read
    /// [`take`]: Source::take
    fn claim_ends_when_let_go(&self) -> bool {
        false
    }

    /// Whether items stay where they were found after their outcome is committed (a
    /// bucket with `S3_AFTER=keep`): then an item whose [`Identity::recorded`] the
    /// ledger holds already is left alone, unread, however often it is seen. False for
    /// the folder, whose files are moved away.
    fn leaves_in_place(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_identity_tells_key_etag_and_size_apart_and_ignores_the_rest() {
        let id = |key, e_tag, size| SourceIdentity::of("fleet", key, e_tag, size);
        let base = id("in/a.csv", Some("\"e1\""), 10).unwrap();
        assert_eq!(base.text().len(), 32);
        assert!(base.text().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id("in/a.csv", Some("\"e1\""), 10), Some(base));
        for other in [
            id("in/b.csv", Some("\"e1\""), 10),
            id("in/a.csv", Some("\"e2\""), 10),
            id("in/a.csv", Some("\"e1\""), 11),
            SourceIdentity::of("other", "in/a.csv", Some("\"e1\""), 10),
        ] {
            assert_ne!(other, Some(base));
        }
        assert_eq!(id("in/a.csv", None, 10), None, "no ETag, no identity");
        // The object's identity from a HEAD (with a version and an upload time)
        // records what the listing shows.
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let head = ObjectId::of("fleet", "in/a.csv", Some("\"e1\""), Some("v7"), 10, t);
        assert_eq!(Identity::Object(head).recorded(), Some(base));
    }
}
