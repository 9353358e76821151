//! The sensor: a column naming it, else the metadata line, a title the file is named
//! after, the file name's leading token or a constant;
//! the `[sensor]` section.

use super::Ctx;
use super::names::file_name_sensor;
use super::out::{Out, lit, s};
use super::parts::is_clock;
use super::time::infer_time;

/// The column naming the sensor: a sensor-like name, else a text column with few
/// distinct values that tells apart rows sharing a time; never one of the `used`
/// columns, and never a column whose values read as times or dates (`01:00`…`24:00`
/// are 24 clock readings, not 24 sensors). `time` are the time columns.
pub(super) fn find_column(cx: &Ctx, used: &[usize], time: &[usize]) -> Option<usize> {
    let (header, stats, rows) = (cx.header, &cx.stats, cx.rows);
    let sensor_names = [
        "sensor",
        "sensor_id",
        "sensorid",
        "device",
        "device_id",
        "station",
        "station_id",
        "id",
        "entity",
        "site",
        "host",
        "location",
        "room",
        "node",
        "name",
        "varname",
        "tag",
    ];
    let text_col = |c: usize| {
        !used.contains(&c)
            && !stats[c].mostly_numeric()
            && stats[c].empty == 0
            && !reads_as_time(cx, c)
    };
    let not_unique = |c: usize| rows <= 1 || stats[c].distinct() < rows;
    (0..cx.width)
        .find(|&c| {
            sensor_names.contains(&header[c].trim().to_ascii_lowercase().as_str())
                && text_col(c)
                && not_unique(c)
        })
        .or_else(|| {
            (0..cx.width).find(|&c| {
                text_col(c)
                    && rows >= 10
                    && stats[c].distinct() * 10 <= rows
                    && stats[c].distinct() >= 1
                    && !stats[c].values.iter().any(|(_, v)| v.len() > 64)
                    && tells_apart(cx, c, time)
            })
        })
}

/// Whether the values of column `c` read as times, dates or times of day.
fn reads_as_time(cx: &Ctx, c: usize) -> bool {
    let values: Vec<(usize, String)> = cx.stats[c]
        .values
        .iter()
        .filter(|(_, v)| !v.trim().is_empty() && !cx.is_missing(v))
        .cloned()
        .collect();
    !values.is_empty()
        && (values.iter().all(|(_, v)| is_clock(v)) || infer_time(&values, true).is_some())
}

/// A column with no sensor-like name names the sensor only when the sample repeats a
/// time and the column tells every such pair of rows apart (a long file of several
/// stations); where every time is unique it is a property of the reading (a weather
/// word, a data source), not a sensor.
fn tells_apart(cx: &Ctx, c: usize, time: &[usize]) -> bool {
    let key = |l: &super::Line| -> Vec<String> {
        time.iter()
            .map(|&t| l.fields[t].trim().to_owned())
            .collect()
    };
    let mut times: Vec<Vec<String>> = cx.data.iter().map(|l| key(l)).collect();
    times.sort_unstable();
    times.dedup();
    if times.len() == cx.data.len() {
        return false;
    }
    let mut pairs: Vec<(Vec<String>, &str)> = cx
        .data
        .iter()
        .map(|l| (key(l), l.fields[c].trim()))
        .collect();
    pairs.sort_unstable();
    pairs.windows(2).all(|w| w[0] != w[1])
}

/// Writes the `[sensor]` section, strongest evidence first: the column, the metadata
/// field, the file name as a preamble title gives it (`title`); else the station's name
/// is the person's to give (`# FILL IN`), written as the file name's leading tokens or the
/// profile `name` as a constant.
pub(super) fn write(
    out: &mut Out,
    cx: &Ctx,
    sensor_col: Option<usize>,
    sensor_from_meta: Option<&(String, String)>,
    title: Option<&(String, String)>,
    name: &str,
) {
    let (header, stats, rows) = (cx.header, &cx.stats, cx.rows);
    out.section("sensor");
    if let Some(c) = sensor_col {
        out.kv(
            "column",
            &s(&header[c]),
            Some(&format!(
                "{} distinct value(s) in {rows} rows",
                stats[c].distinct()
            )),
        );
    } else if let Some((field, why)) = sensor_from_meta {
        // A metadata field naming the station or device is stronger evidence than a
        // file-name token (which may be a project, a date or a download name).
        out.kv("metadata", &s(field), Some(why));
    } else if let Some((re, why)) = title {
        out.kv("file_name", &lit(re), Some(why));
    } else if let Some(re) = file_name_sensor(cx.file_name) {
        // A file-name token is not evidence of a station (it may be a project, a dataset
        // or a download name: `psm4_golden.csv` gives `psm4`), so the person fills it in;
        // the capture loads meanwhile and says what it reads from this file.
        let read = regex::Regex::new(&re)
            .ok()
            .and_then(|r| r.captures(cx.file_name).map(|c| c["sensor"].to_owned()))
            .unwrap_or_default();
        out.kv(
            "file_name",
            &lit(&re),
            Some(&format!(
                "FILL IN: the station's name: no column or metadata line names it; this reads {read:?} from {:?} (one sensor per leading part of the file name); or write constant = \"…\" with a match that takes only this station's files",
                cx.file_name
            )),
        );
    } else {
        out.kv(
            "constant",
            &s(name),
            Some("FILL IN: the station's name: no column, metadata line or file name names it"),
        );
    }
}
