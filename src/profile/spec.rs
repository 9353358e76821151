//! The profile file, as written: TOML, one file per kind of export, read with serde.
//! Unknown keys are refused (`deny_unknown_fields`) so a typo never silently means
//! "use the default". [`super::check`] turns a spec into a usable [`super::Profile`].
//!
//! ```toml
//! description = "Pond logger, Campbell TOA5"
//! match = ["TOA5_*.dat", "pond_*.csv"]
//! missing = ["NAN", "-7999"]
//! relax = []                  # safety rules turned off, by name (docs/inputs.md)
//!
//! [layout]
//! preamble = 1                # lines before the header
//! skip_after_header = 2       # unit and processing rows
//!
//! [metadata]
//! line = 1
//! fields = { station = 2, logger = 3 }
//!
//! [sensor]
//! metadata = "station"
//!
//! [time]
//! column = "TIMESTAMP"
//! zone = "-07:00"
//!
//! [measures.temperature]
//! column = "AirT_C_Avg"
//! unit = "degC"
//!
//! [measures.battery]
//! column = "BattV_Min"
//! unit = "V"
//! range = [0, 20]
//!
//! [qc.temperature]            # quality-control thresholds (docs/quality.md)
//! step_per_minute = 0.5
//!
//! [source]
//! mode = "append"             # followed in place as the logger appends (docs/append.md)
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::timestamp::TimeSpec;

/// A whole profile file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// For people: what export this profile reads.
    pub description: Option<String>,
    /// Globs on the file name (case-insensitive) that choose this profile.
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    /// Cell values that mean "no value", in every column (besides an empty cell).
    #[serde(default)]
    pub missing: Vec<String>,
    #[serde(default)]
    pub layout: LayoutSpec,
    /// Wide (one reading per row, the default) or long (one value per row).
    #[serde(default)]
    pub shape: ShapeSpec,
    pub metadata: Option<MetadataSpec>,
    pub sensor: Option<SensorSpec>,
    pub time: Option<TimeSpec>,
    /// Measured columns by measure name: `temperature`, `humidity`, `pressure` are
    /// stored in their own columns (converted to °C, %RH, hPa); any other name is a
    /// further measure, stored typed in `extra`.
    #[serde(default)]
    pub measures: BTreeMap<String, MeasureSpec>,
    #[serde(default)]
    pub rows: RowsSpec,
    /// Safety rules this profile turns off, by name (`relax = ["humidity_fraction"]`):
    /// only the whole-file rules of [`crate::rule::Rule::RELAXABLE`].
    #[serde(default)]
    pub relax: Vec<String>,
    /// Quality-control thresholds for these files: `[qc]` (`enabled`, `window`) and
    /// `[qc.temperature]`, `[qc.humidity]`, `[qc.pressure]` (`step_per_minute = 0.5`…).
    pub qc: Option<crate::qc::QcOverrides>,
    /// How the files are taken: `[source] mode = "append"` follows them in place.
    pub source: Option<SourceSpec>,
}

/// How a profile's files are taken from the data folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// `move` (default: loaded once, then moved to `processed/`) or `append`: followed
    /// in place, never moved, renamed or written; every growth loads its complete new
    /// lines (`docs/append.md`).
    pub mode: Option<SourceMode>,
    /// Followed files not grown for this long (`"26h"`, `"90m"`, `"2d"`, `"600s"`) are
    /// archived as `archive` says, once no writer could append.
    pub archive_after: Option<String>,
    /// `copy` (default) or `move`, with `archive_after`.
    pub archive: Option<String>,
}

/// `[source] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    Move,
    Append,
}

/// How the text is laid out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSpec {
    /// Field separator: `,` (default), `;`, `\t`, `|`, ` `, or `whitespace`: runs of
    /// spaces and tabs (columns aligned with blanks; quotes not special).
    pub delimiter: Option<String>,
    /// Decimal mark of numbers: `.` (default) or `,`.
    pub decimal: Option<String>,
    /// `utf-8` (default), `latin-1` or `windows-1252`.
    pub encoding: Option<String>,
    /// Lines before the header (metadata, titles); default 0.
    #[serde(default)]
    pub preamble: u32,
    /// Lines after the header that are not data (units, processing); default 0.
    #[serde(default)]
    pub skip_after_header: u32,
    /// Lines starting with this text are skipped wherever they are.
    pub comment: Option<String>,
    /// `false`: the file has no header line; `names` gives the columns.
    pub header: Option<bool>,
    /// Column names, for a file without a header.
    pub names: Option<Vec<String>>,
}

/// The shape of the rows. Long files hold one value per row, named by a metric column
/// (`time,sensor,metric,value`) or by an entity whose name holds sensor and measure
/// (`entity_id,state,last_changed`); rows of one sensor and time become one reading.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeSpec {
    /// `wide` (default) or `long`.
    pub kind: Option<String>,
    /// Long: the column holding the value.
    pub value: Option<String>,
    /// Long, tidy style: the column naming the measure.
    pub metric: Option<String>,
    /// Long, entity style: the column naming the entity.
    pub entity: Option<String>,
    /// Long, entity style: a regular expression on the entity with the groups
    /// `sensor` and `measure`.
    pub entity_pattern: Option<String>,
    /// Long: metric (or captured measure) text → measure name. Rows of metrics or
    /// entities it does not name are skipped and counted.
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
}

/// Named fields of one line before the header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSpec {
    /// The physical line (1 = first line of the file); must be within the preamble.
    pub line: u32,
    /// Field name → position on that line (1 = first field). Every field is kept in
    /// each reading's `extra` as `meta_<name>` unless it is used as the sensor id.
    pub fields: BTreeMap<String, u32>,
}

/// Where the sensor id comes from: exactly one of the keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSpec {
    /// One column.
    pub column: Option<String>,
    /// Several columns joined with `separator` (default `-`), e.g. room + in/out.
    pub columns: Option<Vec<String>>,
    pub separator: Option<String>,
    /// The same id for every row.
    pub constant: Option<String>,
    /// A regular expression on the file name; the capture group `sensor` (or the first
    /// group) is the id. A file whose name does not match is refused.
    pub file_name: Option<String>,
    /// A field of the metadata line.
    pub metadata: Option<String>,
}

/// Which column holds a measure: exactly one of `column`, `columns`, `regex` (none in a
/// long profile, whose values all sit in `shape.value`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    pub column: Option<String>,
    /// Several possible names: the first present in the header is used.
    pub columns: Option<Vec<String>>,
    /// A regular expression on header names; exactly one column must match.
    pub regex: Option<String>,
    /// The unit the source writes. For temperature, humidity and pressure: one we
    /// convert (a name or spelling of [`Unit`](crate::units::Unit)'s table); for other
    /// measures, free text recorded with the metrics.
    pub unit: Option<String>,
    /// Values meaning "no value" in this column, besides the profile's `missing`.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Accepted values `[min, max]`, in the stored unit.
    pub range: Option<[f64; 2]>,
}

/// What to do with bad rows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowsSpec {
    /// `reject_file` (default: one bad row refuses the file) or `skip_rows`.
    pub on_error: Option<String>,
    /// With `skip_rows`: the most bad rows a file may have and still load.
    pub max_bad_rows: Option<u64>,
    /// With `skip_rows`: the largest share of bad rows, in percent.
    pub max_bad_percent: Option<f64>,
    /// Rows whose every cell is empty are skipped and counted (default true).
    pub skip_blank: Option<bool>,
    /// Rows with a time but no value in any measured column (a logger's event rows:
    /// "Host Connected", "End Of File") are skipped and counted (default false: such
    /// a row breaks `no_measurement`).
    pub skip_unmeasured: Option<bool>,
    /// Rows with another number of fields than the header (bookkeeping rows such as
    /// WinCC's `$RT_COUNT$`) are skipped and counted (default false: the file is
    /// refused with `field_count`).
    pub skip_malformed: Option<bool>,
}
