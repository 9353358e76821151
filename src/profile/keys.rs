//! The one list of profile keys: every key a profile file may hold, by table, with its
//! meaning. `docs/reference/profile.md` is generated from it (`sensor-ingest docs
//! reference`), and a test holds it to the keys serde accepts in [`super::spec`]: a key
//! added to a spec struct without its line here, or listed here but not accepted,
//! fails the tests.

/// One key of a profile, in the table `section` (`""` for the top level).
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub section: &'static str,
    pub name: &'static str,
    /// What it means, in Markdown, for the reference.
    pub meaning: &'static str,
}

macro_rules! keys {
    ($($section:literal $name:literal, $meaning:literal;)*) => {
        /// Every key, table by table, in the order the reference lists them.
        pub const KEYS: &[Key] = &[$(Key { section: $section, name: $name, meaning: $meaning },)*];
    };
}

keys! {
    "" "description", "For people: what export this profile reads.";
    "" "match",
        "Globs on the file name (required, case-insensitive), e.g. \
         `[\"TOA5_*.dat\", \"pond_*.csv\"]`. When several profiles match, the most specific \
         glob (most literal characters) wins.";
    "" "missing",
        "Cell values meaning \"no value\" in every column, e.g. `[\"NAN\", \"-7999\", \
         \"NA\"]`: stored as NULL, counted per column in `file_metrics.missing_codes`.";
    "" "relax",
        "Safety rules this profile turns off, by name: only `sensor_is_time`, \
         `duplicate_time`, `stacked_times`, `ambiguous_local_time` (unresolved repeated \
         local times are then read as the earlier instant), `humidity_fraction`.";
    "" "layout", "The `[layout]` table: how the text is laid out.";
    "" "shape", "The `[shape]` table: one reading per row (wide) or one value per row (long).";
    "" "metadata", "The `[metadata]` table: named fields of a line before the header.";
    "" "sensor", "The `[sensor]` table: where the sensor id comes from.";
    "" "time", "The `[time]` table: where the time comes from and how to read it.";
    "" "measures",
        "The `[measures.NAME]` tables: the column, unit, range and missing codes of each \
         measure.";
    "" "rows", "The `[rows]` table: what to do with bad or empty rows.";
    "" "qc", "The `[qc]` table: quality-control thresholds for these files.";
    "" "source", "The `[source]` table: how these files are taken from the data folder.";

    "source" "mode",
        "`\"move\"` (default: loaded once, then moved to `processed/`) or `\"append\"`: \
         followed in place, never moved, renamed or written; every growth loads its \
         complete new lines (see [append mode](../append.md)).";
    "source" "archive_after",
        "With `mode = \"append\"`: its files not grown for this long (`\"26h\"`, `\"90m\"`, \
         `\"2d\"`, `\"600s\"`) are archived as `archive` says, only once no writer could \
         append (read to their end, open for writing by no process); over \
         `FOLLOW_ARCHIVE_AFTER`.";
    "source" "archive",
        "`\"copy\"` (default: a copy into `processed/`, the file stays followed) or \
         `\"move\"` (moved into `processed/`, its position forgotten), with `archive_after`.";

    "layout" "delimiter",
        "`\",\"` (default), `\";\"`, `\"\\t\"`, `\"|\"`, `\" \"`; or `\"whitespace\"`: one \
         or more spaces or tabs separate fields, for columns aligned with blanks (quotes \
         are then ordinary characters).";
    "layout" "decimal",
        "`\".\"` (default) or `\",\"` (with another delimiter): with a decimal comma `21,5` \
         is 21.5; `1.013` and `1.013,25` are refused, never guessed.";
    "layout" "encoding", "`\"utf-8\"` (default), `\"latin-1\"` or `\"windows-1252\"`.";
    "layout" "preamble", "Lines before the header (titles, metadata); default 0.";
    "layout" "skip_after_header",
        "Lines after the header that are not data (units, processing); default 0.";
    "layout" "comment", "Lines starting with this text are skipped (`\"#\"` for annotated CSV).";
    "layout" "header", "`false`: the file has no header line; `names` gives the columns.";
    "layout" "names", "The column names, for a file without a header line.";

    "shape" "kind", "`\"wide\"` (default: one reading per row) or `\"long\"`.";
    "shape" "value", "Long: the column holding the value (required in a long profile).";
    "shape" "metric",
        "Long, tidy style: the column naming the measure; the sensor comes from `[sensor]` \
         (or a column with a usual name).";
    "shape" "entity",
        "Long, entity style: the column naming the entity; then `[sensor]` must not be \
         given.";
    "shape" "entity_pattern",
        "Long, entity style: a regular expression on the entity with the groups `sensor` \
         and `measure`.";
    "shape" "metrics",
        "Long: metric (or captured measure) text → measure name, e.g. `{ temp_c = \
         \"temperature\" }`. Rows of metrics or entities it does not name are skipped and \
         counted.";

    "metadata" "line", "The physical line (1 = first) of the preamble holding the fields.";
    "metadata" "fields",
        "Field name → position on that line, e.g. `{ station = 2, utc_offset = 4 }`. Each \
         is kept in `extra` as `meta_NAME` unless it is the sensor id.";

    "sensor" "column", "One column holds the sensor id.";
    "sensor" "columns", "Several columns, joined with `separator`.";
    "sensor" "separator", "What joins `columns` (default `-`).";
    "sensor" "constant", "The same id for every row, e.g. `\"pond-north\"`.";
    "sensor" "file_name",
        "A regular expression on the file name, e.g. `'^(?P<sensor>[^_]+)_'`; a file it \
         does not match is refused.";
    "sensor" "metadata", "A field of the `[metadata]` line.";

    "time" "column", "The one column holding date and time.";
    "time" "columns", "Several columns joined with a space, e.g. `[\"Date\", \"Time\"]`.";
    "time" "format",
        "A chrono format, e.g. `\"%m/%d/%y %I:%M:%S %p\"` (`%p` also takes `a`/`p`). \
         Default: the built-in reader.";
    "time" "order", "`\"dmy\"`, `\"mdy\"` or `\"ymd\"`: the built-in reader's day/month order.";
    "time" "epoch", "`\"s\"`, `\"ms\"` or `\"us\"`: the column is a Unix time.";
    "time" "year", "Date part: the column holding the year.";
    "time" "month", "Date part: the column holding the month, with `day`.";
    "time" "day", "Date part: the column holding the day of the month.";
    "time" "day_of_year", "Date part: the column holding the day of the year (1–366).";
    "time" "hour", "Time part: the column holding the hour; absent: midnight.";
    "time" "minute", "Time part: the column holding the minute, with `hour`.";
    "time" "second", "Time part: the column holding the second, with `minute`.";
    "time" "hhmm", "Time part: hour and minute as one number (`0`, `130`, `2400`).";
    "time" "end_of_day", "`true`: `24:00` / `2400` is the end of that day.";
    "time" "zone",
        "`\"UTC\"`, a fixed offset (`\"-07:00\"`, `\"UTC-7\"`, `\"-7\"`: local standard \
         time all year) or an IANA name (`\"America/Denver\"`, with daylight saving). \
         Default: `SOURCE_TIMEZONE`.";
    "time" "zone_from_metadata", "The zone is this field of the `[metadata]` line.";
    "time" "zone_from_header",
        "`true`: the offset is in the time column's header (`Date Time, GMT-05:00`).";

    "measures.NAME" "column",
        "The measure's column. `temperature`, `humidity` and `pressure` are stored in \
         their own columns (°C, %RH, hPa); any other name is a further measure, stored as \
         a number in `extra`.";
    "measures.NAME" "columns", "Several possible names: the first present in the header.";
    "measures.NAME" "regex", "A regular expression on header names; exactly one must match.";
    "measures.NAME" "unit",
        "The source unit (see [units](units.md)), converted and recorded in \
         `file_metrics.source_unit`; free text for further measures. Without it, a unit in \
         the header is used.";
    "measures.NAME" "missing", "More missing-value codes for this column.";
    "measures.NAME" "range",
        "Accepted `[min, max]` in the stored unit (default: the settings' ranges).";

    "rows" "on_error",
        "`\"reject_file\"` (default: one bad row holds the whole file back) or \
         `\"skip_rows\"`: good rows load (ledger status `partial`) and the bad rows go to \
         `quarantine/NAME.rejects.EXT` beside a report.";
    "rows" "max_bad_rows",
        "With `skip_rows`: the most bad rows a file may have; over it the file is \
         quarantined (`too_many_bad_rows`).";
    "rows" "max_bad_percent", "With `skip_rows`: the largest share of bad rows, in percent.";
    "rows" "skip_blank", "Rows whose every cell is empty are skipped (default `true`).";
    "rows" "skip_unmeasured",
        "Rows with a time but no value in any measured column (a logger's event rows) are \
         skipped and counted, instead of breaking `no_measurement`.";
    "rows" "skip_malformed",
        "Rows with another number of fields than the header (bookkeeping rows such as \
         WinCC's `$RT_COUNT$`) are skipped and counted, instead of refusing the file with \
         `field_count`.";

    "qc" "enabled", "`false`: no quality flags for these files.";
    "qc" "window", "Readings in the outlier window (2 to 1000).";
    "qc" "gap_factor", "Usual intervals after which a reading is flagged gap (`0`: off).";
    "qc" "time_travel", "`false`: no time-travel flags.";
    "qc" "temperature", "The `[qc.temperature]` thresholds (keys below).";
    "qc" "humidity", "The `[qc.humidity]` thresholds.";
    "qc" "pressure",
        "The `[qc.pressure]` thresholds. Any other `[qc.<measure>]` names a further measure \
         of `[measures.<measure>]` (kept in `extra`) to check with the same four tests: its \
         table gives all nine keys below (a further measure has no defaults); its flags go \
         to `qc_measure_flags`.";

    "qc.MEASURE" "step_per_minute", "Step test: allowed change per minute of gap.";
    "qc.MEASURE" "step_floor", "Step test: the smallest threshold, however short the gap.";
    "qc.MEASURE" "step_max", "Step test: the largest threshold, however long the gap.";
    "qc.MEASURE" "spike", "Spike test: how far a value leaves both neighbours.";
    "qc.MEASURE" "spike_tolerance", "Spike test: how close the two neighbours must agree.";
    "qc.MEASURE" "flat_readings", "Flat test: readings of one value that make a flat run.";
    "qc.MEASURE" "flat_minutes", "Flat test: minutes of one value that make a flat run.";
    "qc.MEASURE" "outlier_z", "Outlier test: the robust z-score above which a value is flagged.";
    "qc.MEASURE" "outlier_mad_floor", "Outlier test: the smallest MAD counted.";
}

/// The keys serde accepts in each table, read from the spec structs themselves.
pub fn accepted() -> Vec<(&'static str, &'static [&'static str])> {
    use crate::qc::config::{MeasureOverrides, QcOverrides};
    use crate::timestamp::TimeSpec;

    use super::spec::{
        LayoutSpec, MeasureSpec, MetadataSpec, ProfileSpec, RowsSpec, SensorSpec, ShapeSpec,
        SourceSpec,
    };
    vec![
        ("", fields::<ProfileSpec>()),
        ("source", fields::<SourceSpec>()),
        ("layout", fields::<LayoutSpec>()),
        ("shape", fields::<ShapeSpec>()),
        ("metadata", fields::<MetadataSpec>()),
        ("sensor", fields::<SensorSpec>()),
        ("time", fields::<TimeSpec>()),
        ("measures.NAME", fields::<MeasureSpec>()),
        ("rows", fields::<RowsSpec>()),
        ("qc", fields::<QcOverrides>()),
        ("qc.MEASURE", fields::<MeasureOverrides>()),
    ]
}

/// The field names a derived `Deserialize` struct accepts: serde hands them to the
/// deserializer it asks for a struct, and this one keeps them.
fn fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    let seen = std::cell::Cell::new(&[][..]);
    let _ = T::deserialize(FieldNames(&seen));
    seen.get()
}

/// A deserializer that only records the fields of the struct it is asked for.
struct FieldNames<'a>(&'a std::cell::Cell<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom(
            "only a struct's field names are read",
        ))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(serde::de::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_serde_accepts_is_listed_and_no_other() {
        let accepted = accepted();
        for (section, fields) in &accepted {
            assert!(!fields.is_empty(), "[{section}]: no fields read");
            let listed: Vec<&str> = KEYS
                .iter()
                .filter(|k| k.section == *section)
                .map(|k| k.name)
                .collect();
            for field in *fields {
                assert!(
                    listed.contains(field),
                    "[{section}] {field} is accepted but not listed in profile::keys::KEYS"
                );
            }
            for name in &listed {
                assert!(
                    fields.contains(name),
                    "[{section}] {name} is listed but profiles do not accept it"
                );
            }
        }
        for key in KEYS {
            assert!(
                accepted.iter().any(|(s, _)| *s == key.section),
                "{}: no such table",
                key.section
            );
        }
    }
}
