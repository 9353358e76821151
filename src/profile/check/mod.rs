//! A profile spec checked and compiled: globs and regular expressions built once,
//! units parsed, every combination that cannot work refused with the key at fault.

mod shape;
mod source;

pub use source::{ArchiveIdle, Keep};

use crate::qc::QcOverrides;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::spec::{LayoutSpec, MeasureSpec, ProfileSpec, RowsSpec, SensorSpec, ShapeSpec};
use crate::read::{Delimiter, Encoding, TextLayout};
use crate::rule::Rule;
use crate::timestamp::TimeSpec;
use crate::units::Range;
use crate::units::{Quantity, Unit};

/// A problem in a profile file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile {}: {key}: {message}", file.display())]
pub struct ProfileError {
    pub file: PathBuf,
    /// The key at fault (`layout.delimiter`, `measures.temperature.unit`, …); empty
    /// when the file as a whole is unreadable.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ProfileError {
    pub(super) fn io(path: &Path, e: &std::io::Error) -> Self {
        Self {
            file: path.to_owned(),
            key: String::new(),
            message: format!("cannot be read: {e}"),
        }
    }
}

/// Where the sensor id comes from.
#[derive(Debug, Clone)]
pub enum SensorRule {
    /// The default: a column with one of the usual names (`sensor_id`, `sensor`,
    /// `device`, `device_id`, `station`).
    ByName,
    Column(String),
    Columns {
        names: Vec<String>,
        separator: String,
    },
    Constant(String),
    FileName(Regex),
    Metadata(String),
}

/// Where a measure goes.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureTarget {
    /// Temperature, humidity or pressure: its own column, canonical unit.
    Canonical(Quantity),
    /// A further measure, typed in `extra` under this name.
    Further(String),
}

/// How a measure's column is found in the header.
#[derive(Debug, Clone)]
pub enum ColumnRule {
    Name(String),
    /// The first of these present.
    Names(Vec<String>),
    Regex(Regex),
}

/// A measured column (wide shape), or a measure of a long file's value column.
#[derive(Debug, Clone)]
pub struct MeasureRule {
    pub name: String,
    pub target: MeasureTarget,
    /// Always present in a wide profile; absent in a long one.
    pub column: Option<ColumnRule>,
    /// The source unit of a canonical measure (converted on read), when the profile
    /// gives it.
    pub unit: Option<Unit>,
    /// The unit text of a further measure (recorded, not converted).
    pub unit_text: Option<String>,
    pub missing: Vec<String>,
    pub range: Option<Range>,
}

/// How the rows of a file are shaped.
#[derive(Debug, Clone)]
pub enum Shape {
    /// One reading per row, one column per measure.
    Wide,
    /// One value per row; rows of one sensor and time merge into one reading.
    Long(LongRule),
}

/// A long file: which columns hold the value and name its measure (and sensor).
#[derive(Debug, Clone)]
pub struct LongRule {
    /// The column holding the value.
    pub value: String,
    pub key: LongKey,
    /// Metric (or captured measure) text → measure name. Empty: the text must itself
    /// be the name of one of the profile's measures.
    pub metrics: Vec<(String, String)>,
}

/// What names a long row's measure.
#[derive(Debug, Clone)]
pub enum LongKey {
    /// A column naming the measure (tidy `time,sensor,metric,value`); the sensor comes
    /// from `[sensor]`.
    Metric(String),
    /// A column naming an entity (`sensor.cellar_temperature`), matched by a pattern
    /// whose groups `sensor` and `measure` give both.
    Entity { column: String, pattern: Regex },
}

/// What to do with bad rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowPolicy {
    /// One bad row refuses the whole file.
    RejectFile,
    /// Good rows load; bad ones go to a rejects file, within these limits.
    SkipRows {
        max_bad_rows: Option<u64>,
        max_bad_percent: Option<f64>,
    },
}

/// A checked profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub path: PathBuf,
    /// BLAKE3 of the file's text, recorded in the ledger with each file it read.
    pub hash: String,
    pub description: Option<String>,
    globs: Vec<(glob::Pattern, String)>,
    pub missing: Vec<String>,
    pub layout: TextLayout,
    pub shape: Shape,
    pub metadata: Option<(u32, Vec<(String, u32)>)>,
    pub sensor: SensorRule,
    pub time: Option<TimeSpec>,
    pub measures: Vec<MeasureRule>,
    pub rows: RowPolicy,
    pub skip_blank: bool,
    /// Rows without any measured value are skipped, not errors.
    pub skip_unmeasured: bool,
    /// Rows with the wrong number of fields are skipped, not fatal.
    pub skip_malformed: bool,
    /// The profile's `[qc]` thresholds, over the agent's (checked).
    pub qc: QcOverrides,
    /// The safety rules the profile turns off by name (each in [`Rule::RELAXABLE`]).
    pub relax: Vec<Rule>,
    /// `[source] mode = "append"`: its files are followed in place as they grow.
    pub follow: bool,
    /// `[source] archive_after` and `archive`: its followed files archived once they
    /// stopped growing (over `FOLLOW_ARCHIVE_AFTER`).
    pub archive_idle: Option<ArchiveIdle>,
}

impl Profile {
    /// The built-in profile for files that no profile matches: columns by their usual
    /// names, comma-separated UTF-8 with a header on line 1, all-or-nothing.
    pub fn builtin_default() -> Self {
        Self {
            name: super::DEFAULT_NAME.to_owned(),
            path: PathBuf::from("(built in)"),
            hash: "builtin".to_owned(),
            description: Some("columns mapped by their usual names".to_owned()),
            globs: Vec::new(),
            missing: Vec::new(),
            layout: TextLayout::default(),
            shape: Shape::Wide,
            metadata: None,
            sensor: SensorRule::ByName,
            time: None,
            measures: Vec::new(),
            rows: RowPolicy::RejectFile,
            skip_blank: false,
            skip_unmeasured: false,
            skip_malformed: false,
            qc: QcOverrides::default(),
            relax: Vec::new(),
            follow: false,
            archive_idle: None,
        }
    }

    /// True when the profile reads long files (one value per row).
    pub fn is_long(&self) -> bool {
        matches!(self.shape, Shape::Long(_))
    }

    /// Reads and checks the profile at `path`; its name is the file stem.
    pub fn from_file(path: &Path) -> Result<Self, Vec<ProfileError>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![ProfileError::io(path, &e)])?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_text(&name, path, &text)
    }

    /// Parses and checks a profile's text.
    pub fn from_text(name: &str, path: &Path, text: &str) -> Result<Self, Vec<ProfileError>> {
        let spec: ProfileSpec = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                let before = &text.as_bytes()[..s.start.min(text.len())];
                before.iter().filter(|b| **b == b'\n').count() + 1
            });
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            vec![ProfileError {
                file: path.to_owned(),
                key: toml_key(&e),
                message: format!("{}{at}", e.message()),
            }]
        })?;
        let mut c = Checker {
            path,
            errors: Vec::new(),
        };
        let profile = c.profile(name, &spec, text);
        match profile {
            Some(p) if c.errors.is_empty() => Ok(p),
            _ => Err(c.errors),
        }
    }

    /// The match globs, compiled and as written.
    pub fn globs(&self) -> impl Iterator<Item = (&glob::Pattern, &str)> {
        self.globs.iter().map(|(g, t)| (g, t.as_str()))
    }
}

/// The key of a TOML error, from its span when serde did not say.
fn toml_key(e: &toml::de::Error) -> String {
    let message = e.message();
    // serde's messages name the field: "unknown field `delimter`, expected one of …".
    message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
        .unwrap_or("")
        .to_owned()
}

/// Collects every problem of one profile.
struct Checker<'a> {
    path: &'a Path,
    errors: Vec<ProfileError>,
}

impl Checker<'_> {
    fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ProfileError {
            file: self.path.to_owned(),
            key: key.into(),
            message: message.into(),
        });
    }

    fn profile(&mut self, name: &str, spec: &ProfileSpec, text: &str) -> Option<Profile> {
        if name.is_empty() || name == super::DEFAULT_NAME {
            self.fail(
                "",
                format!("{name:?} cannot be a profile's name: rename the file"),
            );
        }
        let globs = self.globs(&spec.matches);
        let mut layout = self.layout(&spec.layout);
        layout.metadata_line = spec.metadata.as_ref().map(|m| m.line);
        let metadata = spec.metadata.as_ref().map(|m| {
            if m.line == 0 || m.line > layout.preamble {
                self.fail(
                    "metadata.line",
                    format!(
                        "{} is not a line before the header (layout.preamble = {})",
                        m.line, layout.preamble
                    ),
                );
            }
            let fields: Vec<(String, u32)> =
                m.fields.iter().map(|(k, v)| (k.clone(), *v)).collect();
            for (k, v) in &fields {
                if *v == 0 {
                    self.fail(
                        format!("metadata.fields.{k}"),
                        "positions start at 1 (the first field)",
                    );
                }
            }
            (m.line, fields)
        });
        let shape = self.shape(&spec.shape);
        if matches!(
            &shape,
            Shape::Long(LongRule {
                key: LongKey::Entity { .. },
                ..
            })
        ) && spec.sensor.is_some()
        {
            self.fail(
                "sensor",
                "with shape.entity the sensor id is the entity_pattern's `sensor` group: \
                 remove [sensor]",
            );
        }
        let sensor = self.sensor(spec.sensor.as_ref(), metadata.as_ref());
        if let Some(t) = &spec.time {
            if let Err(message) = t.check() {
                self.fail("time", message);
            }
            if let Some(field) = &t.zone_from_metadata
                && !metadata
                    .as_ref()
                    .is_some_and(|(_, f)| f.iter().any(|(k, _)| k == field))
            {
                self.fail(
                    "time.zone_from_metadata",
                    format!("{field:?} is not a field of [metadata]"),
                );
            }
        }
        let long = matches!(shape, Shape::Long(_));
        let mut measures: Vec<MeasureRule> = spec
            .measures
            .iter()
            .filter_map(|(name, m)| self.measure(name, m, long))
            .collect();
        if let Shape::Long(rule) = &shape {
            self.long_measures(rule, &mut measures);
        }
        let (rows, skip_blank) = self.rows(&spec.rows);
        let qc = spec.qc.clone().unwrap_or_default();
        for problem in qc.problems() {
            self.fail("qc", problem);
        }
        for name in qc.further.keys() {
            let read = measures
                .iter()
                .any(|m| matches!(&m.target, MeasureTarget::Further(n) if n == name));
            if !read {
                self.fail(
                    "qc",
                    format!(
                        "[qc.{name}]: the profile reads no further measure named {name} \
                         (thresholds apply to temperature, humidity, pressure or a measure \
                         of [measures.*] kept in extra)"
                    ),
                );
            }
        }
        let relax = self.relax(&spec.relax);
        Some(Profile {
            name: name.to_owned(),
            path: self.path.to_owned(),
            hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
            description: spec.description.clone(),
            globs,
            missing: spec.missing.clone(),
            layout,
            shape,
            metadata,
            sensor,
            time: spec.time.clone(),
            measures,
            rows,
            skip_blank,
            skip_unmeasured: spec.rows.skip_unmeasured.unwrap_or(false),
            skip_malformed: spec.rows.skip_malformed.unwrap_or(false),
            qc,
            relax,
            follow: spec.source.as_ref().and_then(|s| s.mode)
                == Some(super::spec::SourceMode::Append),
            archive_idle: spec.source.as_ref().and_then(|s| self.archive_idle(s)),
        })
    }

    /// The rules named in `relax`: each a safety rule, named once.
    fn relax(&mut self, names: &[String]) -> Vec<Rule> {
        let mut out = Vec::new();
        let allowed = || {
            Rule::RELAXABLE
                .iter()
                .map(|r| format!("{:?}", r.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in names {
            match Rule::from_name(name) {
                Some(rule) if Rule::RELAXABLE.contains(&rule) => {
                    if out.contains(&rule) {
                        self.fail("relax", format!("{name:?} is named twice"));
                    }
                    out.push(rule);
                }
                Some(_) => self.fail(
                    "relax",
                    format!(
                        "{name:?} cannot be relaxed: only the safety rules can ({})",
                        allowed()
                    ),
                ),
                None => self.fail(
                    "relax",
                    format!(
                        "{name:?} is not a rule; the rules a profile can relax: {}",
                        allowed()
                    ),
                ),
            }
        }
        out
    }

    fn globs(&mut self, matches: &[String]) -> Vec<(glob::Pattern, String)> {
        if matches.is_empty() {
            self.fail(
                "match",
                "give at least one glob on the file name, e.g. match = [\"TOA5_*.dat\"]",
            );
        }
        let mut out = Vec::new();
        for m in matches {
            if m.contains('/') || m.trim().is_empty() {
                self.fail(
                    "match",
                    format!("{m:?}: a glob on the file name, without a folder"),
                );
                continue;
            }
            match glob::Pattern::new(m) {
                Ok(p) => out.push((p, m.clone())),
                Err(e) => self.fail("match", format!("{m:?} is not a glob: {e}")),
            }
        }
        out
    }

    fn layout(&mut self, l: &LayoutSpec) -> TextLayout {
        let mut out = TextLayout::default();
        if let Some(d) = &l.delimiter {
            match d.as_str() {
                "," | ";" | "\t" | "|" | " " => out.delimiter = Delimiter::Byte(d.as_bytes()[0]),
                "tab" | "\\t" => out.delimiter = Delimiter::Byte(b'\t'),
                "whitespace" => out.delimiter = Delimiter::Blanks,
                _ => self.fail(
                    "layout.delimiter",
                    format!(
                        "{d:?}: expected \",\", \";\", \"\\t\" (tab), \"|\", \" \" or \"whitespace\" \
                         (runs of spaces and tabs)"
                    ),
                ),
            }
        }
        if let Some(d) = &l.decimal {
            match d.as_str() {
                "." => {}
                "," => out.decimal_comma = true,
                _ => self.fail("layout.decimal", format!("{d:?}: expected \".\" or \",\"")),
            }
        }
        if out.decimal_comma && out.delimiter == Delimiter::Byte(b',') {
            self.fail(
                "layout.decimal",
                "a decimal comma needs another delimiter (layout.delimiter = \";\" or \"\\t\")",
            );
        }
        if let Some(e) = &l.encoding {
            match e.to_ascii_lowercase().replace('_', "-").as_str() {
                "utf-8" | "utf8" => {}
                "latin-1" | "latin1" | "iso-8859-1" | "windows-1252" | "cp1252" => {
                    out.encoding = Encoding::Windows1252
                }
                _ => self.fail(
                    "layout.encoding",
                    format!("{e:?}: expected \"utf-8\", \"latin-1\" or \"windows-1252\""),
                ),
            }
        }
        out.preamble = l.preamble;
        out.skip_after_header = l.skip_after_header;
        if let Some(c) = &l.comment {
            if c.is_empty() {
                self.fail("layout.comment", "an empty prefix would skip every line");
            }
            out.comment = Some(c.clone());
        }
        match (l.header.unwrap_or(true), &l.names) {
            (true, Some(_)) => self.fail(
                "layout.names",
                "names are for a file without a header: add layout.header = false",
            ),
            (false, None) => self.fail(
                "layout.header",
                "a file without a header needs its column names: layout.names = [...]",
            ),
            (false, Some(names)) => {
                if names.iter().any(|n| n.trim().is_empty()) {
                    self.fail("layout.names", "every column needs a name");
                }
                out.names = Some(names.clone());
            }
            (true, None) => {}
        }
        out
    }

    fn sensor(
        &mut self,
        s: Option<&SensorSpec>,
        metadata: Option<&(u32, Vec<(String, u32)>)>,
    ) -> SensorRule {
        let Some(s) = s else {
            return SensorRule::ByName;
        };
        let given = [
            s.column.is_some(),
            s.columns.is_some(),
            s.constant.is_some(),
            s.file_name.is_some(),
            s.metadata.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            self.fail(
                "sensor",
                "give exactly one of column, columns, constant, file_name, metadata",
            );
            return SensorRule::ByName;
        }
        if s.separator.is_some() && s.columns.is_none() {
            self.fail("sensor.separator", "only with sensor.columns");
        }
        if let Some(c) = &s.column {
            return SensorRule::Column(c.clone());
        }
        if let Some(names) = &s.columns {
            if names.len() < 2 {
                self.fail("sensor.columns", "name two or more columns to join");
            }
            return SensorRule::Columns {
                names: names.clone(),
                separator: s.separator.clone().unwrap_or_else(|| "-".to_owned()),
            };
        }
        if let Some(c) = &s.constant {
            if c.trim().is_empty() || c.chars().any(char::is_control) {
                self.fail(
                    "sensor.constant",
                    "a non-empty id without control characters",
                );
            }
            return SensorRule::Constant(c.trim().to_owned());
        }
        if let Some(r) = &s.file_name {
            return match Regex::new(r) {
                Ok(re) if re.captures_len() > 1 => SensorRule::FileName(re),
                Ok(_) => {
                    self.fail(
                        "sensor.file_name",
                        "the expression needs a capture group: (?P<sensor>...)",
                    );
                    SensorRule::ByName
                }
                Err(e) => {
                    self.fail("sensor.file_name", format!("not a regular expression: {e}"));
                    SensorRule::ByName
                }
            };
        }
        let field = s.metadata.clone().unwrap_or_default();
        if !metadata.is_some_and(|(_, f)| f.iter().any(|(k, _)| *k == field)) {
            self.fail(
                "sensor.metadata",
                format!("{field:?} is not a field of [metadata]"),
            );
        }
        SensorRule::Metadata(field)
    }

    fn measure(&mut self, name: &str, m: &MeasureSpec, long: bool) -> Option<MeasureRule> {
        let key = format!("measures.{name}");
        let Some(target) = measure_target(name) else {
            self.fail(
                &key,
                "a further measure's name: letters, digits and _ (not a stored column)",
            );
            return None;
        };
        let given = [m.column.is_some(), m.columns.is_some(), m.regex.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        let column = match (&m.column, &m.columns, &m.regex) {
            _ if long && given != 0 => {
                self.fail(
                    &key,
                    "a long profile's values are all in shape.value: remove column, \
                     columns and regex (unit, range and missing stay)",
                );
                return None;
            }
            _ if long => None,
            _ if given != 1 => {
                self.fail(&key, "give exactly one of column, columns, regex");
                return None;
            }
            (Some(c), _, _) => Some(ColumnRule::Name(c.clone())),
            (_, Some(cs), _) if cs.is_empty() => {
                self.fail(format!("{key}.columns"), "name at least one column");
                return None;
            }
            (_, Some(cs), _) => Some(ColumnRule::Names(cs.clone())),
            (_, _, Some(r)) => match Regex::new(r) {
                Ok(re) => Some(ColumnRule::Regex(re)),
                Err(e) => {
                    self.fail(
                        format!("{key}.regex"),
                        format!("not a regular expression: {e}"),
                    );
                    return None;
                }
            },
            _ => unreachable!("exactly one is given"),
        };
        let (unit, unit_text) = match (&target, &m.unit) {
            (MeasureTarget::Canonical(q), Some(u)) => match Unit::parse(u) {
                Some(unit) if unit.quantity() == *q => (Some(unit), None),
                Some(unit) => {
                    self.fail(
                        format!("{key}.unit"),
                        format!(
                            "{u:?} is a unit of {}, not of {name}",
                            unit.quantity().name()
                        ),
                    );
                    (None, None)
                }
                None => {
                    self.fail(
                        format!("{key}.unit"),
                        format!("{u:?}: expected one of {}", units_of(*q)),
                    );
                    (None, None)
                }
            },
            // Not given: the header may say it; else the canonical unit.
            (MeasureTarget::Canonical(_), None) => (None, None),
            (MeasureTarget::Further(_), u) => (None, u.clone()),
        };
        let range = m.range.and_then(|[min, max]| {
            if min.is_finite() && max.is_finite() && min < max {
                Some(Range { min, max })
            } else {
                self.fail(
                    format!("{key}.range"),
                    "[min, max] with min < max, both finite",
                );
                None
            }
        });
        Some(MeasureRule {
            name: name.to_owned(),
            target,
            column,
            unit,
            unit_text,
            missing: m.missing.clone(),
            range,
        })
    }

    fn rows(&mut self, r: &RowsSpec) -> (RowPolicy, bool) {
        let skip_blank = r.skip_blank.unwrap_or(false);
        let policy = match r.on_error.as_deref().unwrap_or("reject_file") {
            "reject_file" => {
                if r.max_bad_rows.is_some() || r.max_bad_percent.is_some() {
                    self.fail(
                        "rows.on_error",
                        "max_bad_rows and max_bad_percent need on_error = \"skip_rows\"",
                    );
                }
                RowPolicy::RejectFile
            }
            "skip_rows" => {
                if let Some(p) = r.max_bad_percent
                    && !(0.0..=100.0).contains(&p)
                {
                    self.fail("rows.max_bad_percent", "a percentage from 0 to 100");
                }
                RowPolicy::SkipRows {
                    max_bad_rows: r.max_bad_rows,
                    max_bad_percent: r.max_bad_percent,
                }
            }
            other => {
                self.fail(
                    "rows.on_error",
                    format!("{other:?}: expected \"reject_file\" or \"skip_rows\""),
                );
                RowPolicy::RejectFile
            }
        };
        (policy, skip_blank)
    }
}

/// Where a measure called `name` goes; `None` for a name that cannot be one.
fn measure_target(name: &str) -> Option<MeasureTarget> {
    Some(match name {
        "temperature" => MeasureTarget::Canonical(Quantity::Temperature),
        "humidity" => MeasureTarget::Canonical(Quantity::Humidity),
        "pressure" => MeasureTarget::Canonical(Quantity::Pressure),
        other => {
            if super::RESERVED_COLUMNS.contains(&other)
                || other.is_empty()
                || !other.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return None;
            }
            MeasureTarget::Further(other.to_owned())
        }
    })
}

/// The units accepted for a quantity, for messages.
fn units_of(q: Quantity) -> String {
    q.units().map(Unit::name).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for MeasureTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeasureTarget::Canonical(q) => f.write_str(q.name()),
            MeasureTarget::Further(n) => f.write_str(n),
        }
    }
}
