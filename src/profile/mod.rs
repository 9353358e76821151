//! Source profiles: how to read one kind of export.
//!
//! A profile is a TOML file in `PROFILES_DIR` (default `./profiles`); its file stem is
//! its name. Its `match` globs on the file name choose it: of the profiles whose globs
//! match, the most specific glob wins (the one with the most literal characters; a tie
//! between two profiles is refused at load time when their globs are identical, and
//! otherwise broken by name). A file no profile matches is read with the built-in
//! default profile, which maps columns by their usual names.
//!
//! Profiles are checked when they are loaded, like settings: a file that does not
//! parse, has an unknown key, or names an impossible combination stops the agent at
//! startup with the file, the key and what was expected. [`ProfileSet::reload`] keeps
//! the previous set when an edited profile is invalid.
//!
//! - [`spec`]: the TOML as written (serde);
//! - [`check`]: a spec turned into a [`Profile`] (compiled globs and regexes, parsed
//!   units), or every problem found;
//! - [`plan`]: what each column of one file means, from its header and its profile.

pub mod check;
pub mod keys;
pub mod plan;
pub mod spec;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::pattern::glob_matches;

pub use check::{ArchiveIdle, Keep, MeasureTarget, Profile, ProfileError, RowPolicy};

/// The profile every file that no profile matches is read with.
pub const DEFAULT_NAME: &str = "default";

/// Names no further measure may take: columns the readings table has already.
pub const RESERVED_COLUMNS: [&str; 6] = [
    "timestamp",
    "sensor_id",
    "ts",
    "temperature_k",
    "line",
    "extra",
];

/// The profiles of a folder, loaded and checked.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    dir: Option<PathBuf>,
    profiles: Vec<Arc<Profile>>,
    default: Arc<Profile>,
}

/// Which profile reads a file, and why.
#[derive(Debug, Clone)]
pub struct Selection {
    pub profile: Arc<Profile>,
    /// The glob that matched; `None` for the default profile.
    pub glob: Option<String>,
    /// Chosen by the operator (`check --profile`), not by the file name.
    pub forced: bool,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.forced {
            return write!(
                f,
                "profile {} (asked for with --profile)",
                self.profile.name
            );
        }
        match &self.glob {
            Some(glob) => write!(
                f,
                "profile {} (its match {glob:?} fits the file name)",
                self.profile.name
            ),
            None => write!(
                f,
                "the built-in default profile (no profile in PROFILES_DIR matches the file name)"
            ),
        }
    }
}

impl Default for ProfileSet {
    fn default() -> Self {
        Self {
            dir: None,
            profiles: Vec::new(),
            default: Arc::new(Profile::builtin_default()),
        }
    }
}

impl ProfileSet {
    /// Loads every `*.toml` file of `dir`. A folder that does not exist holds no
    /// profiles (the default applies); any invalid profile fails the whole load, with
    /// every problem of every file.
    pub fn load(dir: &Path) -> Result<Self, Vec<ProfileError>> {
        let mut errors = Vec::new();
        let mut profiles = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    dir: Some(dir.to_owned()),
                    ..Self::default()
                });
            }
            Err(e) => {
                return Err(vec![ProfileError::io(dir, &e)]);
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
            })
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            match Profile::from_file(&path) {
                Ok(p) => profiles.push(Arc::new(p)),
                Err(mut e) => errors.append(&mut e),
            }
        }
        errors.extend(same_globs(&profiles));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            dir: Some(dir.to_owned()),
            profiles,
            default: Arc::new(Profile::builtin_default()),
        })
    }

    /// Loads the folder again; on failure the caller keeps `self`.
    pub fn reload(&self) -> Result<Self, Vec<ProfileError>> {
        match &self.dir {
            Some(dir) => Self::load(dir),
            None => Ok(self.clone()),
        }
    }

    /// The folder the profiles come from.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The loaded profiles (not the default), by name.
    pub fn profiles(&self) -> &[Arc<Profile>] {
        &self.profiles
    }

    /// The profile called `name` (`default` for the built-in one).
    pub fn by_name(&self, name: &str) -> Option<Arc<Profile>> {
        if name == DEFAULT_NAME && !self.profiles.iter().any(|p| p.name == name) {
            return Some(self.default.clone());
        }
        self.profiles.iter().find(|p| p.name == name).cloned()
    }

    /// The profile that reads a file called `file_name`.
    pub fn select(&self, file_name: &str) -> Selection {
        let mut best: Option<(usize, &Arc<Profile>, &str)> = None;
        for p in &self.profiles {
            for (glob, text) in p.globs() {
                if !glob_matches(glob, file_name) {
                    continue;
                }
                let score = specificity(text);
                let better = match best {
                    None => true,
                    Some((s, q, _)) => score > s || (score == s && p.name < q.name),
                };
                if better {
                    best = Some((score, p, text));
                }
            }
        }
        match best {
            Some((_, p, text)) => Selection {
                profile: p.clone(),
                glob: Some(text.to_owned()),
                forced: false,
            },
            None => Selection {
                profile: self.default.clone(),
                glob: None,
                forced: false,
            },
        }
    }
}

/// How specific a glob is: its literal characters count.
fn specificity(glob: &str) -> usize {
    glob.chars()
        .filter(|c| !matches!(c, '*' | '?' | '[' | ']'))
        .count()
}

/// Two profiles with the same glob would make the choice depend on file names on disk.
fn same_globs(profiles: &[Arc<Profile>]) -> Vec<ProfileError> {
    let mut errors = Vec::new();
    for (i, a) in profiles.iter().enumerate() {
        for b in &profiles[i + 1..] {
            for (_, ga) in a.globs() {
                if b.globs().any(|(_, gb)| gb.eq_ignore_ascii_case(ga)) {
                    errors.push(ProfileError {
                        file: b.path.clone(),
                        key: "match".to_owned(),
                        message: format!(
                            "{ga:?} is also a match of profile {} ({}): a file name must \
                             choose one profile; make one of them more specific",
                            a.name,
                            a.path.display()
                        ),
                    });
                }
            }
        }
    }
    errors
}

/// The profiles in force, shared by the workers and replaced whole when the folder
/// changes (an invalid edit leaves the previous set in force).
#[derive(Debug, Clone)]
pub struct Profiles {
    current: Arc<RwLock<Arc<ProfileSet>>>,
    seen: Arc<RwLock<Fingerprint>>,
}

/// What the profiles folder looked like: names, sizes and modification times.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl Profiles {
    pub fn new(set: ProfileSet) -> Self {
        let seen = set.dir().map(fingerprint).unwrap_or_default();
        Self {
            current: Arc::new(RwLock::new(Arc::new(set))),
            seen: Arc::new(RwLock::new(seen)),
        }
    }

    /// The set in force.
    pub fn current(&self) -> Arc<ProfileSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads the folder if a profile file was added, removed or changed since the
    /// last look. `Ok(true)`: a new set is in force; `Err`: the edited folder is
    /// invalid and the previous set stays.
    pub fn reload_if_changed(&self) -> Result<bool, Vec<ProfileError>> {
        let set = self.current();
        let Some(dir) = set.dir() else {
            return Ok(false);
        };
        let now = fingerprint(dir);
        {
            let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let fresh = set.reload()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(true)
    }
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Fingerprint = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("toml"))
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    out.sort();
    out
}
