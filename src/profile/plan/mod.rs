//! The plan for one file: what each column means, decided once from its header, its
//! metadata line and its name, by the profile that reads it.
//!
//! With the default profile (and for what a profile leaves unsaid) columns are found by
//! their usual names, case-insensitively: time `timestamp`, `ts`, `time`, `datetime`,
//! `date`, `date_time`, `noted_date`; sensor `sensor_id`, `sensor`, `device`,
//! `device_id`, `id`, `station` (refused when unique on every row of a file of more
//! than ten rows: that is a row id); `temperature`/`temp`/`t`, `humidity`/`rh`/`hum`,
//! `pressure`/`p`/`press`. A unit written in the header (`Temp (F)`, `temp_f`,
//! `Pressure [kPa]`) is read in that unit, converted to the stored one, or the file is
//! refused — never taken as the stored unit when it says otherwise.
//!
//! Every whole-file problem is collected, so `check` reports them all at once.

mod long;

use std::collections::HashMap;

use regex::Regex;

use crate::read::{FileError, Header, TextLayout};
use crate::timestamp::SourceTimezone;
use crate::timestamp::TimeReader;
use crate::units::{Quantity, Unit, UnitMarker, split_header_unit};
use crate::units::{Range, Ranges};

use super::check::{
    ColumnRule, LongKey, LongRule, MeasureRule, MeasureTarget, Profile, SensorRule, Shape,
};

/// Rows a file must have before a sensor column unique on every row is taken for a
/// row id rather than a sensor (a snapshot of a few sensors at one time is real).
pub const ROW_ID_MIN_ROWS: u64 = 11;

/// How one file is read.
#[derive(Debug)]
pub struct Plan {
    /// The header (or the profile's names).
    pub headers: Vec<String>,
    pub unnamed: Vec<bool>,
    pub text: TextLayout,
    pub time: TimeSource,
    pub sensor: SensorSource,
    /// Measured columns: the canonical three first (in that order, when present), then
    /// further measures in the profile's order.
    pub measures: Vec<MeasurePlan>,
    /// Other columns, kept in `extra`.
    pub extras: Vec<Extra>,
    /// Fields of the metadata line kept in every reading's `extra` (`meta_<name>`).
    pub constants: Vec<(String, String)>,
    /// Cell values meaning "no value" in every column.
    pub missing: Vec<String>,
    /// The sensor column when it was found by its name alone: a file in which it is
    /// unique on every row is refused (a row id is not a sensor).
    pub row_id_check: Option<usize>,
    pub skip_blank: bool,
    /// Rows with no measured value are skipped (`rows.skip_unmeasured`).
    pub skip_unmeasured: bool,
    /// A long file (one value per row): where its value, measure and sensor are.
    /// Every measure's `index` is then the value column.
    pub long: Option<LongPlan>,
    /// The safety rules the profile relaxes (see [`crate::validate::safety`]).
    pub relax: Vec<crate::rule::Rule>,
}

/// How the rows of a long file are read.
#[derive(Debug)]
pub struct LongPlan {
    /// The column holding the value.
    pub value: usize,
    pub key: LongKeyPlan,
    /// Metric (or captured measure) text → index in [`Plan::measures`]; rows whose
    /// text is not here are skipped and counted.
    pub measures: HashMap<String, usize>,
}

/// What names a long row's measure (and, for an entity, its sensor).
#[derive(Debug)]
pub enum LongKeyPlan {
    /// This column names the measure; the sensor comes from [`Plan::sensor`].
    Metric(usize),
    /// This column names the entity; `pattern`'s groups `sensor` and `measure` give
    /// both ([`Plan::sensor`] is then [`SensorSource::Entity`]).
    Entity { index: usize, pattern: Regex },
}

/// Where a reading's time comes from.
#[derive(Debug)]
pub enum TimeSource {
    /// One column, read by the built-in reader in `tz`; a d/m order the file does not
    /// prove is refused.
    Builtin { index: usize, tz: SourceTimezone },
    /// As the profile's `[time]` says.
    Spec(Box<TimeReader>),
}

/// Where a reading's sensor id comes from.
#[derive(Debug, Clone)]
pub enum SensorSource {
    Column(usize),
    Columns {
        indexes: Vec<usize>,
        separator: String,
    },
    Constant(String),
    /// The `sensor` group of a long file's entity (see [`LongKeyPlan::Entity`]).
    Entity,
}

/// One measured column.
#[derive(Debug, Clone)]
pub struct MeasurePlan {
    pub name: String,
    pub target: MeasureTarget,
    pub index: usize,
    /// The source unit of a canonical measure (`None`: already the stored unit).
    pub unit: Option<Unit>,
    /// The unit as written, for the file's metrics.
    pub unit_text: Option<String>,
    /// Accepted values in the stored unit.
    pub range: Option<Range>,
    /// Values meaning "no value" here (besides the plan's).
    pub missing: Vec<String>,
}

/// A column kept in `extra`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub index: usize,
    /// The header name, or `column_N` (1-based) for a column without one.
    pub name: String,
    /// The header had no name: empty cells are left out of `extra`.
    pub unnamed: bool,
}

/// What the plan needs besides the header and the profile.
#[derive(Debug, Clone, Copy)]
pub struct FileContext<'a> {
    pub file_name: &'a str,
    pub ranges: Ranges,
    pub tz: SourceTimezone,
}

/// The canonical time and sensor column names of the default profile.
fn is_time_name(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "timestamp" | "ts" | "time" | "datetime" | "date" | "date_time" | "noted_date"
    )
}

fn is_sensor_name(name: &str) -> bool {
    // A column found this way, `id` above all, may be a row or log id: the validator
    // refuses a file in which it is unique on every row (see `Plan::row_id_check`).
    matches!(
        name.to_ascii_lowercase().as_str(),
        "sensor_id" | "sensor" | "device" | "device_id" | "id" | "station"
    )
}

fn quantity_of_name(name: &str) -> Option<Quantity> {
    Some(match name.to_ascii_lowercase().as_str() {
        "temperature" | "temp" | "t" => Quantity::Temperature,
        "humidity" | "rh" | "hum" => Quantity::Humidity,
        "pressure" | "p" | "press" => Quantity::Pressure,
        _ => return None,
    })
}

/// The range of a canonical quantity in the settings.
fn configured(ranges: &Ranges, q: Quantity) -> Range {
    match q {
        Quantity::Temperature => ranges.temperature,
        Quantity::Humidity => ranges.humidity,
        Quantity::Pressure => ranges.pressure,
    }
}

/// Canonical measures first, in their stored order, then further ones as given.
fn measure_order(m: &MeasurePlan) -> u8 {
    match &m.target {
        MeasureTarget::Canonical(Quantity::Temperature) => 0,
        MeasureTarget::Canonical(Quantity::Humidity) => 1,
        MeasureTarget::Canonical(Quantity::Pressure) => 2,
        MeasureTarget::Further(_) => 3,
    }
}

/// A long file's metric text → measure index: through `shape.metrics`, or each
/// measure's own name.
fn long_lookup(rule: &LongRule, measures: &[MeasurePlan]) -> HashMap<String, usize> {
    let index_of = |name: &str| measures.iter().position(|m| m.name == name);
    if rule.metrics.is_empty() {
        return measures
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
    }
    rule.metrics
        .iter()
        .filter_map(|(text, name)| Some((text.clone(), index_of(name)?)))
        .collect()
}

impl Plan {
    /// Decides what every column of a file means. Fails with every problem found.
    pub fn build(
        header: &Header,
        text: &TextLayout,
        profile: &Profile,
        cx: FileContext<'_>,
    ) -> Result<Plan, Vec<FileError>> {
        Builder {
            header,
            profile,
            cx,
            used: vec![false; header.names.len()],
            errors: Vec::new(),
        }
        .build(text)
    }

    /// The header name of column `index`.
    pub fn header(&self, index: usize) -> &str {
        &self.headers[index]
    }

    /// The measures that have a stored column of their own.
    pub fn canonical(&self, q: Quantity) -> Option<&MeasurePlan> {
        self.measures
            .iter()
            .find(|m| m.target == MeasureTarget::Canonical(q))
    }
}

struct Builder<'a> {
    header: &'a Header,
    profile: &'a Profile,
    cx: FileContext<'a>,
    /// Columns already given a meaning.
    used: Vec<bool>,
    errors: Vec<FileError>,
}

impl Builder<'_> {
    fn build(mut self, text: &TextLayout) -> Result<Plan, Vec<FileError>> {
        let long_rule = match &self.profile.shape {
            Shape::Wide => None,
            Shape::Long(rule) => Some(rule.clone()),
        };
        if long_rule.is_none() {
            self.duplicate_names();
        }
        let constants = self.metadata_constants();
        let long_columns = long_rule.as_ref().map(|r| self.long_columns(r));
        let time = self.time();
        let (sensor, row_id_check) = match &long_rule {
            Some(LongRule {
                key: LongKey::Entity { .. },
                ..
            }) => (Some(SensorSource::Entity), None),
            // The row-id check is for wide files: a long file repeats each sensor.
            Some(_) => (self.sensor().0, None),
            None => self.sensor(),
        };
        if long_rule.is_some() {
            self.used_names_unique();
        }
        let (measures, long) = match (&long_rule, long_columns) {
            (Some(rule), Some((value, key))) => {
                let measures = self.long_measures();
                let long = match (value, key) {
                    (Some(value), Some(key)) => Some(LongPlan {
                        value,
                        key,
                        measures: long_lookup(rule, &measures),
                    }),
                    _ => None,
                };
                let measures = measures
                    .into_iter()
                    .map(|m| MeasurePlan {
                        index: value.unwrap_or(0),
                        ..m
                    })
                    .collect();
                (measures, long)
            }
            _ => (self.measures(), None),
        };
        if measures.is_empty() && self.errors.is_empty() {
            self.errors.push(FileError::NoMeasurementColumn {
                found: self.header.names.clone(),
            });
        }
        let extras = (0..self.header.names.len())
            // A long file's other columns describe the row, not the merged reading.
            .filter(|i| !self.used[*i] && long_rule.is_none())
            .map(|index| Extra {
                index,
                name: self.header.names[index].clone(),
                unnamed: self.header.unnamed.get(index).copied().unwrap_or(false),
            })
            .collect();
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let (Some(time), Some(sensor)) = (time, sensor) else {
            unreachable!("a missing time or sensor is an error above");
        };
        let mut missing = self.profile.missing.clone();
        missing.retain(|m| !m.trim().is_empty());
        Ok(Plan {
            headers: self.header.names.clone(),
            unnamed: self.header.unnamed.clone(),
            text: text.clone(),
            time,
            sensor,
            measures,
            extras,
            constants,
            missing,
            row_id_check,
            skip_blank: self.profile.skip_blank,
            skip_unmeasured: self.profile.skip_unmeasured,
            long,
            relax: self.profile.relax.clone(),
        })
    }

    fn duplicate_names(&mut self) {
        let names = &self.header.names;
        for (i, name) in names.iter().enumerate() {
            if let Some(j) = names[..i].iter().position(|h| h.eq_ignore_ascii_case(name)) {
                self.errors.push(FileError::DuplicateHeader {
                    name: name.clone(),
                    first: j + 1,
                    second: i + 1,
                });
                // One problem, said once: the second column is not mapped as well.
                self.used[i] = true;
            }
        }
    }

    /// The column called `name` (case-insensitive, trimmed).
    fn find(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        self.header
            .names
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    fn missing_profile_column(&mut self, key: &str, column: &str) {
        self.errors.push(FileError::ProfileColumn {
            profile: self.profile.name.clone(),
            key: key.to_owned(),
            column: column.to_owned(),
            found: self.header.names.clone(),
        });
    }

    fn metadata_field(&self, field: &str) -> Option<String> {
        let (_, fields) = self.profile.metadata.as_ref()?;
        let (_, position) = fields.iter().find(|(k, _)| k == field)?;
        let values = self.header.metadata.as_ref()?;
        values
            .get(*position as usize - 1)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn metadata_constants(&mut self) -> Vec<(String, String)> {
        let Some((line, fields)) = &self.profile.metadata else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, _) in fields {
            if matches!(&self.profile.sensor, SensorRule::Metadata(f) if f == name) {
                continue;
            }
            match self.metadata_field(name) {
                Some(v) => out.push((format!("meta_{name}"), v)),
                None => self.errors.push(FileError::MetadataField {
                    profile: self.profile.name.clone(),
                    field: name.clone(),
                    line: *line,
                }),
            }
        }
        out
    }

    fn time(&mut self) -> Option<TimeSource> {
        let Some(spec) = &self.profile.time else {
            let index = self.by_name(is_time_name, "timestamp")?;
            return Some(TimeSource::Builtin {
                index,
                tz: self.cx.tz,
            });
        };
        let zone_text = spec
            .zone_from_metadata
            .as_deref()
            .and_then(|f| self.metadata_field(f));
        match TimeReader::new(spec, &self.header.names, self.cx.tz, zone_text.as_deref()) {
            Ok(reader) => {
                for &i in reader.columns() {
                    self.used[i] = true;
                }
                Some(TimeSource::Spec(Box::new(reader)))
            }
            Err(e) => {
                self.errors.push(FileError::ProfileTime {
                    profile: self.profile.name.clone(),
                    message: e.to_string(),
                });
                None
            }
        }
    }

    /// The one column whose name `is` accepts; a missing or doubled one is an error.
    fn by_name(&mut self, is: fn(&str) -> bool, canonical: &'static str) -> Option<usize> {
        let found: Vec<usize> = (0..self.header.names.len())
            .filter(|&i| !self.used[i] && is(&self.header.names[i]))
            .collect();
        match found.as_slice() {
            [] => {
                self.errors.push(FileError::MissingColumn {
                    column: canonical,
                    found: self.header.names.clone(),
                });
                None
            }
            [i] => {
                self.used[*i] = true;
                Some(*i)
            }
            [i, j, ..] => {
                self.errors.push(FileError::AmbiguousColumn {
                    canonical,
                    first: self.header.names[*i].clone(),
                    second: self.header.names[*j].clone(),
                });
                None
            }
        }
    }

    fn sensor(&mut self) -> (Option<SensorSource>, Option<usize>) {
        let rule = self.profile.sensor.clone();
        let source = match rule {
            SensorRule::ByName => {
                let index = self.by_name(is_sensor_name, "sensor_id");
                return (index.map(SensorSource::Column), index);
            }
            SensorRule::Column(name) => match self.find(&name) {
                Some(i) => {
                    self.used[i] = true;
                    Some(SensorSource::Column(i))
                }
                None => {
                    self.missing_profile_column("sensor.column", &name);
                    None
                }
            },
            SensorRule::Columns { names, separator } => {
                let mut indexes = Vec::new();
                for name in &names {
                    match self.find(name) {
                        Some(i) => {
                            self.used[i] = true;
                            indexes.push(i);
                        }
                        None => self.missing_profile_column("sensor.columns", name),
                    }
                }
                (indexes.len() == names.len())
                    .then_some(SensorSource::Columns { indexes, separator })
            }
            SensorRule::Constant(id) => Some(SensorSource::Constant(id)),
            SensorRule::FileName(re) => {
                let id = re.captures(self.cx.file_name).and_then(|c| {
                    c.name("sensor")
                        .or_else(|| c.get(1))
                        .map(|m| m.as_str().trim().to_owned())
                        .filter(|s| !s.is_empty())
                });
                match id {
                    Some(id) => Some(SensorSource::Constant(id)),
                    None => {
                        self.errors.push(FileError::SensorFromFileName {
                            profile: self.profile.name.clone(),
                            pattern: re.as_str().to_owned(),
                        });
                        None
                    }
                }
            }
            SensorRule::Metadata(field) => match self.metadata_field(&field) {
                Some(id) => Some(SensorSource::Constant(id)),
                None => {
                    let line = self.profile.metadata.as_ref().map_or(0, |(l, _)| *l);
                    self.errors.push(FileError::MetadataField {
                        profile: self.profile.name.clone(),
                        field,
                        line,
                    });
                    None
                }
            },
        };
        (source, None)
    }

    fn measures(&mut self) -> Vec<MeasurePlan> {
        let mut out = Vec::new();
        let rules = self.profile.measures.clone();
        for rule in &rules {
            if let Some(m) = self.profile_measure(rule) {
                out.push(m);
            }
        }
        // The canonical quantities the profile leaves unsaid are found by name.
        for q in [
            Quantity::Temperature,
            Quantity::Humidity,
            Quantity::Pressure,
        ] {
            if rules
                .iter()
                .any(|r| r.target == MeasureTarget::Canonical(q))
            {
                continue;
            }
            if let Some(m) = self.measure_by_name(q) {
                out.push(m);
            }
        }
        out.sort_by_key(measure_order);
        out
    }

    fn profile_measure(&mut self, rule: &MeasureRule) -> Option<MeasurePlan> {
        let key = format!("measures.{}", rule.name);
        // A wide profile's measures always name their column (checked at load).
        let index = match rule.column.as_ref()? {
            ColumnRule::Name(name) => self.find(name).or_else(|| {
                self.missing_profile_column(&key, name);
                None
            })?,
            ColumnRule::Names(names) => names.iter().find_map(|n| self.find(n)).or_else(|| {
                self.missing_profile_column(&key, &names.join(" | "));
                None
            })?,
            ColumnRule::Regex(re) => {
                let found: Vec<usize> = (0..self.header.names.len())
                    .filter(|&i| re.is_match(&self.header.names[i]))
                    .collect();
                match found.as_slice() {
                    [i] => *i,
                    [] => {
                        self.missing_profile_column(&key, &format!("/{}/", re.as_str()));
                        return None;
                    }
                    [i, j, ..] => {
                        self.errors.push(FileError::AmbiguousColumn {
                            canonical: "a measure of the profile",
                            first: self.header.names[*i].clone(),
                            second: self.header.names[*j].clone(),
                        });
                        return None;
                    }
                }
            }
        };
        self.used[index] = true;
        let column = self.header.names[index].clone();
        let (unit, unit_text, range) = match &rule.target {
            MeasureTarget::Canonical(q) => {
                let unit = self.canonical_unit(*q, &column, rule.unit)?;
                let range = rule.range.unwrap_or(configured(&self.cx.ranges, *q));
                (
                    unit,
                    Some(unit.unwrap_or(q.canonical_unit()).name().to_owned()),
                    Some(range),
                )
            }
            MeasureTarget::Further(_) => (None, rule.unit_text.clone(), rule.range),
        };
        Some(MeasurePlan {
            name: rule.name.clone(),
            target: rule.target.clone(),
            index,
            unit,
            unit_text,
            range,
            missing: rule.missing.clone(),
        })
    }

    /// The source unit of a canonical column: the profile's, or the header's marker; a
    /// marker we cannot read, or one that disagrees with the profile, is refused.
    fn canonical_unit(
        &mut self,
        q: Quantity,
        column: &str,
        given: Option<Unit>,
    ) -> Option<Option<Unit>> {
        let (_, marker) = split_header_unit(column);
        let from_header = match marker {
            None => None,
            Some(UnitMarker::Known(u)) if u.quantity() == q => Some(u),
            Some(UnitMarker::Known(u)) => {
                self.errors.push(FileError::UnitMismatch {
                    column: column.to_owned(),
                    message: format!(
                        "its header names {}, a unit of {}, not of {}",
                        u.name(),
                        u.quantity().name(),
                        q.name()
                    ),
                });
                return None;
            }
            Some(UnitMarker::Unknown(text) | UnitMarker::Other(text)) => {
                if given.is_none() {
                    self.errors.push(FileError::UnknownUnit {
                        column: column.to_owned(),
                        unit: text,
                        quantity: q.name(),
                    });
                    return None;
                }
                None
            }
        };
        match (given, from_header) {
            (Some(g), Some(h)) if g != h => {
                self.errors.push(FileError::UnitMismatch {
                    column: column.to_owned(),
                    message: format!(
                        "the profile says {} but the header says {}",
                        g.name(),
                        h.name()
                    ),
                });
                None
            }
            (Some(g), _) => Some(Some(g).filter(|u| *u != q.canonical_unit())),
            (None, h) => Some(h.filter(|u| *u != q.canonical_unit())),
        }
    }

    /// A canonical quantity found by its usual names (with or without a unit marker).
    fn measure_by_name(&mut self, q: Quantity) -> Option<MeasurePlan> {
        let found: Vec<usize> = (0..self.header.names.len())
            .filter(|&i| !self.used[i])
            .filter(|&i| {
                let name = &self.header.names[i];
                quantity_of_name(name) == Some(q)
                    || quantity_of_name(&split_header_unit(name).0) == Some(q)
            })
            .collect();
        let index = match found.as_slice() {
            [] => return None,
            [i] => *i,
            [i, j, ..] => {
                self.errors.push(FileError::AmbiguousColumn {
                    canonical: q.name(),
                    first: self.header.names[*i].clone(),
                    second: self.header.names[*j].clone(),
                });
                return None;
            }
        };
        self.used[index] = true;
        let column = self.header.names[index].clone();
        let unit = self.canonical_unit(q, &column, None)?;
        Some(MeasurePlan {
            name: q.name().to_owned(),
            target: MeasureTarget::Canonical(q),
            index,
            unit,
            unit_text: Some(unit.unwrap_or(q.canonical_unit()).name().to_owned()),
            range: Some(configured(&self.cx.ranges, q)),
            missing: Vec::new(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::read::CsvSource;

    /// The plan the default profile makes of `header` (comma-separated names).
    pub(crate) fn default_plan(header: &str) -> Plan {
        plan_with(&Profile::builtin_default(), header).unwrap()
    }

    pub(crate) fn plan_with(profile: &Profile, header: &str) -> Result<Plan, Vec<FileError>> {
        let text = format!("{header}\n");
        let source =
            CsvSource::with_layout(text.as_bytes(), profile.layout.clone()).map_err(|e| vec![e])?;
        let cx = FileContext {
            file_name: "f.csv",
            ranges: Ranges::default(),
            tz: SourceTimezone::default(),
        };
        Plan::build(source.header(), source.text(), profile, cx)
    }

    fn profile(toml: &str) -> Profile {
        Profile::from_text("p", std::path::Path::new("p.toml"), toml).unwrap()
    }

    #[test]
    fn usual_names_map_case_insensitively_and_the_rest_is_extra() {
        let p = default_plan(" Noted_Date ,DEVICE,Temp,RH,press,room");
        assert!(matches!(p.time, TimeSource::Builtin { index: 0, .. }));
        assert!(matches!(p.sensor, SensorSource::Column(1)));
        let measures: Vec<(&str, usize)> = p
            .measures
            .iter()
            .map(|m| (m.name.as_str(), m.index))
            .collect();
        assert_eq!(
            measures,
            vec![("temperature", 2), ("humidity", 3), ("pressure", 4)]
        );
        assert_eq!(p.extras.len(), 1);
        assert_eq!(p.extras[0].name, "room");
        assert_eq!(p.row_id_check, Some(1));
    }

    #[test]
    fn every_header_problem_is_reported_at_once() {
        let errors = plan_with(&Profile::builtin_default(), "when,where,room").unwrap_err();
        let rules: Vec<_> = errors.iter().map(|e| e.rule().name()).collect();
        assert_eq!(rules, vec!["missing_column", "missing_column"]);
        let errors = plan_with(&Profile::builtin_default(), "ts,id,humidity,rh,x,X").unwrap_err();
        let rules: Vec<_> = errors.iter().map(|e| e.rule().name()).collect();
        assert_eq!(rules, vec!["duplicate_header", "ambiguous_column"]);
    }

    #[test]
    fn a_unit_in_the_header_is_read_or_refused() {
        let p = default_plan("ts,id,Temp (F),Pressure [kPa],rh_pct");
        let units: Vec<_> = p
            .measures
            .iter()
            .map(|m| (m.name.as_str(), m.unit))
            .collect();
        assert_eq!(
            units,
            vec![
                ("temperature", Some(Unit::Fahrenheit)),
                ("humidity", None),
                ("pressure", Some(Unit::Kilopascal)),
            ]
        );
        let errors = plan_with(&Profile::builtin_default(), "ts,id,Temp (degR)").unwrap_err();
        assert_eq!(errors[0].rule().name(), "unknown_unit");
        let errors = plan_with(&Profile::builtin_default(), "ts,id,Temperature [hPa]").unwrap_err();
        assert_eq!(errors[0].rule().name(), "unit_mismatch");
    }

    #[test]
    fn a_profile_names_columns_sensor_units_and_further_measures() {
        let p = profile(
            r#"
            match = ["*.dat"]
            missing = ["NAN", "-7999"]
            [sensor]
            file_name = '^(?P<sensor>[a-z]+)_'
            [measures.temperature]
            column = "AirT"
            unit = "degF"
            range = [-40, 60]
            [measures.wind]
            regex = "^WS"
            unit = "m/s"
            "#,
        );
        let text = "TIMESTAMP,AirT,WS_ms,note\n";
        let source = CsvSource::with_layout(text.as_bytes(), p.layout.clone()).unwrap();
        let cx = FileContext {
            file_name: "pond_2024.dat",
            ranges: Ranges::default(),
            tz: SourceTimezone::default(),
        };
        let plan = Plan::build(source.header(), source.text(), &p, cx).unwrap();
        assert!(matches!(&plan.sensor, SensorSource::Constant(id) if id == "pond"));
        assert_eq!(plan.measures.len(), 2);
        assert_eq!(plan.measures[0].unit, Some(Unit::Fahrenheit));
        assert_eq!(plan.measures[1].name, "wind");
        assert_eq!(plan.measures[1].unit_text.as_deref(), Some("m/s"));
        assert_eq!(plan.extras.len(), 1);
        assert_eq!(plan.missing, vec!["NAN".to_owned(), "-7999".to_owned()]);
        assert_eq!(plan.row_id_check, None);

        let other = FileContext {
            file_name: "2024.dat",
            ..cx
        };
        let errors = Plan::build(source.header(), source.text(), &p, other).unwrap_err();
        assert_eq!(errors[0].rule().name(), "profile_mismatch");
    }

    #[test]
    fn a_whitespace_profile_reads_columns_aligned_with_blanks() {
        let p = profile(
            r#"
            match = ["*.txt"]
            [layout]
            delimiter = "whitespace"
            [sensor]
            column = "WBANNO"
            [time]
            columns = ["UTC_DATE", "UTC_TIME"]
            format = "%Y%m%d %H%M"
            [measures.temperature]
            column = "AIR_TEMPERATURE"
            "#,
        );
        assert_eq!(p.layout.delimiter, crate::read::Delimiter::Blanks);
        let plan = plan_with(&p, "  WBANNO UTC_DATE  UTC_TIME\tAIR_TEMPERATURE  ").unwrap();
        assert!(matches!(plan.sensor, SensorSource::Column(0)));
        assert_eq!(plan.measures[0].index, 3);

        let refused = |delimiter: &str| {
            let text = format!("match = [\"*\"]\n[layout]\ndelimiter = \"{delimiter}\"\n");
            Profile::from_text("p", std::path::Path::new("p.toml"), &text)
                .unwrap_err()
                .into_iter()
                .map(|e| e.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(refused("blanks"), vec!["layout.delimiter"]);
        assert_eq!(refused("  "), vec!["layout.delimiter"]);
    }

    #[test]
    fn a_column_the_profile_names_must_be_there() {
        let p = profile(
            r#"
            match = ["*.csv"]
            [sensor]
            column = "Station"
            [measures.temperature]
            column = "T_air"
            "#,
        );
        let errors = plan_with(&p, "ts,station_id,temp").unwrap_err();
        let keys: Vec<String> = errors
            .iter()
            .map(|e| match e {
                FileError::ProfileColumn { key, .. } => key.clone(),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(keys, vec!["sensor.column", "measures.temperature"]);
    }
}
