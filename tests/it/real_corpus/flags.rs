//! Quality flags on the real corpus: curated, published series loaded with QC on (the
//! defaults) get few flags, and every flag that remains is explained.

use std::collections::BTreeMap;

use rstest::rstest;
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::qc::Flags;

use super::{CorpusFile, load, loadable};
use crate::common::{Backend, ReadingRow};

/// The most a curated file may have flagged (readings with any flag).
pub const MAX_SHARE: f64 = 0.01;

/// Files whose flags above [`MAX_SHARE`] are real faults of the series, with the
/// reason (checked by hand in the file; see docs/quality.md).
pub const EXPLAINED: &[(&str, &str)] = &[(
    "nrel-tmy3/703165TY.csv",
    "pressure is 1012 mbar in all 8,760 hours, source flag E (modelled or estimated) \
     on every one: a filled constant, no measurement; flagged flat whole",
)];

/// One line of the table: a file, a flag and how many readings hold it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlagCount {
    pub flag: String,
    pub count: usize,
}

/// What the load of one file flagged.
#[derive(Debug, Clone)]
pub struct FileFlags {
    pub rel: String,
    pub readings: usize,
    pub flagged: usize,
    pub by_flag: Vec<FlagCount>,
    /// The flagged readings: time, flags, and the three canonical values.
    pub readings_flagged: Vec<String>,
}

impl FileFlags {
    pub fn share(&self) -> f64 {
        if self.readings == 0 {
            0.0
        } else {
            self.flagged as f64 / self.readings as f64
        }
    }
}

/// Counts the readings holding each flag (`temperature:step`, `gap`, …).
pub fn tally(rel: &str, readings: &[ReadingRow]) -> FileFlags {
    let mut by_flag: BTreeMap<String, usize> = BTreeMap::new();
    for r in readings {
        for name in Flags(r.qc_flags).names() {
            *by_flag.entry(name).or_insert(0) += 1;
        }
    }
    FileFlags {
        rel: rel.to_owned(),
        readings: readings.len(),
        flagged: readings.iter().filter(|r| r.qc_flags != 0).count(),
        by_flag: by_flag
            .into_iter()
            .map(|(flag, count)| FlagCount { flag, count })
            .collect(),
        readings_flagged: readings
            .iter()
            .filter(|r| r.qc_flags != 0)
            .map(|r| {
                format!(
                    "{} {} t={:?} h={:?} p={:?}",
                    r.ts.format("%Y-%m-%dT%H:%M"),
                    Flags(r.qc_flags).describe(),
                    r.temperature,
                    r.humidity,
                    r.pressure
                )
            })
            .collect(),
    }
}

fn table(files: &[FileFlags]) -> String {
    let mut out = String::from("file | readings | flagged | share | flags\n");
    for f in files {
        let flags: Vec<String> = f
            .by_flag
            .iter()
            .map(|c| format!("{} {}", c.flag, c.count))
            .collect();
        out.push_str(&format!(
            "{} | {} | {} | {:.2} % | {}\n",
            f.rel,
            f.readings,
            f.flagged,
            100.0 * f.share(),
            flags.join(", ")
        ));
    }
    out
}

async fn flags_of(backend: Backend, file: &CorpusFile) -> Option<FileFlags> {
    let (outcome, readings) = load(backend, file, &file.profile()).await?;
    assert!(
        matches!(outcome, Outcome::Loaded { .. }),
        "{}: {outcome:?}",
        file.rel
    );
    Some(tally(&file.rel, &readings))
}

/// Every loadable corpus file, loaded with QC on through its careful profile, has at
/// most [`MAX_SHARE`] of its readings flagged, but for the files in [`EXPLAINED`].
/// Run it with `--nocapture` to see the table.
#[rstest]
#[tokio::test]
async fn curated_series_are_rarely_flagged(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let mut files = Vec::new();
    for file in loadable() {
        let Some(f) = flags_of(backend, &file).await else {
            return;
        };
        files.push(f);
    }
    let table = table(&files);
    println!("{table}");
    // The flagged readings of a file, to explain them: CORPUS_FLAGS=publisher/name.
    if let Ok(rel) = std::env::var("CORPUS_FLAGS") {
        for f in files.iter().filter(|f| rel.split(',').any(|r| r == f.rel)) {
            println!("{}:", f.rel);
            println!("{}", f.readings_flagged.join("\n"));
        }
    }
    let over: Vec<&FileFlags> = files
        .iter()
        .filter(|f| f.share() > MAX_SHARE)
        .filter(|f| !EXPLAINED.iter().any(|(rel, _)| *rel == f.rel))
        .collect();
    assert!(over.is_empty(), "{backend:?}, over {MAX_SHARE}:\n{table}");
}
