//! `sensor-ingest check`: validate files without loading them, print every problem, and
//! end each file with a [`Summary`] of what it would store; for a file followed in place
//! (append mode), where it stands against its stored position ([`followed`]).

mod followed;

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use chrono::SecondsFormat;

use self::followed::{Followed, Positions};
use super::summary::Summary;
use crate::config::Settings;
use crate::enrich::EnrichedRow;
use crate::pipeline::{ReadContext, ReadReport, read_rows};
use crate::profile::{Profile, Selection};
use crate::read::TextLayout;

/// Most readings `--show` prints per file, whatever N is asked for.
pub const MAX_SHOWN: usize = 1_000;
/// Characters of a raw line shown beside its reading.
const RAW_CHARS: usize = 120;
/// Bytes of a raw line kept while looking for it (enough for [`RAW_CHARS`] characters).
const RAW_BYTES: usize = 4 * RAW_CHARS + 4;

/// Flags of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read the files with this profile (a file stem in PROFILES_DIR, or `default`)
    /// instead of the one their names match.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// After the verdict, print the first N readings as they would be stored, each
    /// beside its raw line (at most 1,000).
    #[arg(long, value_name = "N")]
    pub show: Option<usize>,
}

/// The measures quality control checks in files read with `profile`, when its
/// `[qc.<measure>]` tables add further measures to the canonical three (QC on).
fn qc_measures(settings: &Settings, profile: &Profile) -> Option<Vec<String>> {
    let qc = settings.qc.with(&profile.qc);
    if !qc.enabled || qc.further.is_empty() {
        return None;
    }
    let canonical = crate::qc::MEASURE_NAMES.iter().map(|m| (*m).to_owned());
    Some(
        canonical
            .chain(qc.further.iter().map(|f| f.name.clone()))
            .collect(),
    )
}

/// Checks each file in turn; exits 1 if any is invalid or cannot be read.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    let json = args.json;
    let forced = match &args.profile {
        Some(name) => match settings.profiles.by_name(name) {
            Some(profile) => Some(Selection {
                profile,
                glob: None,
                forced: true,
            }),
            None => bail!(
                "no profile {name:?} in {} (profiles: {})",
                settings.profiles_dir.display(),
                profile_names(settings)
            ),
        },
        None => None,
    };
    let mut all_valid = true;
    let mut results = Vec::new();
    // The stored positions of followed files, asked once and only when one is checked.
    let mut positions: Option<Positions> = None;
    for path in &args.files {
        let shown = path.display().to_string();
        let name = crate::intake::display_name(path);
        let selection = forced
            .clone()
            .unwrap_or_else(|| settings.profiles.select(&name));
        let followed = (settings.source_mode == crate::source::Mode::Append
            || selection.profile.follow)
            .then(|| {
                let positions = positions.get_or_insert_with(|| Positions::read(settings));
                Followed::of(path, &name, &selection.profile, positions)
            });
        let cx = ReadContext {
            profile: selection.profile.clone(),
            file_name: name,
            ranges: settings.ranges,
            tz: settings.source_timezone,
            order: None,
        };
        let want = args.show.map_or(0, |n| n.min(MAX_SHOWN));
        // A followed file is read as the agent reads it: its complete lines only.
        let limit = followed.as_ref().and_then(Followed::complete_bytes);
        match check_showing(path, &cx, want, limit) {
            Ok((report, rows, summary)) => {
                all_valid &= report.is_valid();
                // Rows read before the first bad one are not loaded: only a file that
                // loads (perhaps partly) has rows to show.
                let rows = if report.is_valid() { rows } else { Vec::new() };
                let shown_rows = match args.show {
                    Some(_) => Some(with_raw_lines(path, &cx.profile, rows)),
                    None => None,
                };
                let checked = qc_measures(settings, &selection.profile);
                if json {
                    let mut value = as_json(&shown, &selection, &report);
                    value["summary"] = summary.to_json(&report);
                    if let Some(measures) = &checked {
                        value["summary"]["qc_measures"] = serde_json::json!(measures);
                    }
                    if let Some(rows) = &shown_rows {
                        value["rows"] = rows.iter().map(ShownRow::to_json).collect();
                    }
                    if let Some(f) = &followed {
                        value["followed"] = f.to_json();
                    }
                    results.push(value);
                } else {
                    print_text(&shown, &selection, &report);
                    if let (Some(rows), true) = (&shown_rows, want > 0) {
                        print_rows(rows, &report);
                    }
                    for line in summary.lines(&report, report.is_valid()) {
                        println!("  {line}");
                    }
                    if let Some(measures) = &checked {
                        println!("  quality checks on: {}", measures.join(", "));
                    }
                    for line in followed.iter().flat_map(|f| f.lines(chrono::Utc::now())) {
                        println!("  {line}");
                    }
                }
            }
            Err(e) => {
                all_valid = false;
                if json {
                    results.push(serde_json::json!({ "file": shown, "valid": false, "error": e.to_string() }));
                } else {
                    println!("ERROR    {shown}: cannot read: {e}");
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Validates a file (its first `limit` bytes, when given) without loading it, keeping
/// its first `want` readings as they would be stored and the [`Summary`] of all of
/// them; reads it again when its dates prove an order other than the one first
/// assumed (as `check_file` does).
fn check_showing(
    path: &Path,
    cx: &ReadContext,
    want: usize,
    limit: Option<u64>,
) -> io::Result<(ReadReport, Vec<EnrichedRow>, Summary)> {
    let mut cx = cx.clone();
    loop {
        let (file, _) = crate::intake::open_regular(path)?.map_err(io::Error::other)?;
        let file = io::Read::take(file, limit.unwrap_or(u64::MAX));
        let mut rows = Vec::with_capacity(want.min(64));
        let mut summary = Summary::default();
        let report = read_rows(io::BufReader::with_capacity(256 * 1024, file), &cx, |row| {
            summary.push(&row.reading);
            if rows.len() < want {
                rows.push(row);
            }
            true
        });
        match report.reread {
            Some(order) if cx.order.is_none() => cx.order = Some(order),
            _ => return Ok((report, rows, summary)),
        }
    }
}

/// A reading as it would be stored, beside its raw source line.
struct ShownRow {
    row: EnrichedRow,
    /// The physical line, decoded in the file's encoding, cut to [`RAW_CHARS`]
    /// characters (`None` if it could not be read again).
    raw: Option<String>,
    /// Long files: the further rows merged into this reading.
    merged: usize,
}

impl ShownRow {
    fn to_json(&self) -> serde_json::Value {
        let r = &self.row.reading;
        let extra = r
            .extra
            .as_deref()
            .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "line": r.line,
            "raw": self.raw,
            "merged_rows": self.merged,
            "sensor_id": r.sensor_id,
            "ts": r.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            "temperature": r.temperature,
            "humidity": r.humidity,
            "pressure": r.pressure,
            "temperature_k": self.row.temperature_k,
            "temperature_norm": self.row.temperature_norm,
            "humidity_norm": self.row.humidity_norm,
            "pressure_norm": self.row.pressure_norm,
            "extra": extra,
        })
    }
}

/// The rows with their raw lines, read in one bounded pass over the start of the file:
/// it stops after the last wanted line and keeps at most [`RAW_BYTES`] of each.
fn with_raw_lines(path: &Path, profile: &Profile, rows: Vec<EnrichedRow>) -> Vec<ShownRow> {
    let layout = &profile.layout;
    let mut wanted: Vec<u64> = rows.iter().map(|r| r.reading.line).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let raws = raw_lines(path, &wanted).unwrap_or_default();
    rows.into_iter()
        .map(|row| {
            let raw = wanted
                .binary_search(&row.reading.line)
                .ok()
                .and_then(|i| raws.get(i).cloned().flatten())
                .map(|bytes| shorten(&decode_line(layout, &bytes, row.reading.line)));
            let r = &row.reading;
            let values = [r.temperature, r.humidity, r.pressure]
                .iter()
                .chain(&r.further)
                .filter(|v| v.is_some())
                .count();
            let merged = if profile.is_long() {
                values.saturating_sub(1)
            } else {
                0
            };
            ShownRow { row, raw, merged }
        })
        .collect()
}

/// The bytes of each of the physical lines `wanted` (sorted, 1-based), at most
/// [`RAW_BYTES`] of each, by position in `wanted`.
fn raw_lines(path: &Path, wanted: &[u64]) -> io::Result<Vec<Option<Vec<u8>>>> {
    let mut out: Vec<Option<Vec<u8>>> = vec![None; wanted.len()];
    let Some(&last) = wanted.last() else {
        return Ok(out);
    };
    let (file, _) = crate::intake::open_regular(path)?.map_err(io::Error::other)?;
    let mut reader = io::BufReader::with_capacity(64 * 1024, file);
    let mut line: u64 = 1;
    let mut next = 0;
    let mut current: Vec<u8> = Vec::new();
    while line <= last {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (chunk, ends) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let keeping = wanted.get(next) == Some(&line);
        if keeping && current.len() < RAW_BYTES {
            let room = RAW_BYTES - current.len();
            current.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let newline = ends > chunk.len();
        reader.consume(ends);
        if newline {
            if keeping {
                out[next] = Some(std::mem::take(&mut current));
                next += 1;
            }
            line += 1;
        }
    }
    if wanted.get(next) == Some(&line) && !current.is_empty() {
        out[next] = Some(current);
    }
    Ok(out)
}

/// A raw line as text in the file's encoding (lossily), without its `\r` or BOM.
fn decode_line(layout: &TextLayout, bytes: &[u8], line: u64) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let bytes = if line == 1 {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    } else {
        bytes
    };
    match layout.decode(bytes) {
        Some(text) => text.into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// At most [`RAW_CHARS`] characters, control characters made visible, `…` when cut.
fn shorten(text: &str) -> String {
    crate::read::shorten(text, RAW_CHARS, true)
}

/// A number for people: at most six decimals, no trailing zeros; `—` for none.
fn num(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) => {
            let s = format!("{v:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "0".to_owned()
            } else {
                s.to_owned()
            }
        }
    }
}

/// The readings shown by `--show` (N > 0), one block each.
fn print_rows(rows: &[ShownRow], report: &ReadReport) {
    if rows.is_empty() {
        if report.is_valid() {
            println!("  no readings in the file");
        } else {
            println!("  no rows would load");
        }
        return;
    }
    for s in rows {
        let r = &s.row.reading;
        let raw = s
            .raw
            .as_deref()
            .map_or_else(|| "(line not read)".to_owned(), str::to_owned);
        let merged = match s.merged {
            0 => String::new(),
            1 => "  (+1 row merged)".to_owned(),
            n => format!("  (+{n} rows merged)"),
        };
        println!("  line {}  {raw}{merged}", r.line);
        let kelvin = s
            .row
            .temperature_k
            .map(|k| format!(" ({} K)", num(Some(k))))
            .unwrap_or_default();
        println!(
            "    → {}  {}  t={} °C{kelvin}  rh={} %  p={} hPa",
            r.sensor_id,
            r.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            num(r.temperature),
            num(r.humidity),
            num(r.pressure),
        );
        let extra = r.extra.as_deref().map_or_else(|| "—".to_owned(), shorten);
        println!(
            "      norm t={} rh={} p={}  extra={extra}",
            num(s.row.temperature_norm),
            num(s.row.humidity_norm),
            num(s.row.pressure_norm),
        );
    }
}

/// The loaded profiles' names, for a message.
fn profile_names(settings: &Settings) -> String {
    let mut names: Vec<&str> = settings
        .profiles
        .profiles()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    names.push(crate::profile::DEFAULT_NAME);
    names.join(", ")
}

/// One element of `check --json`'s array.
fn as_json(shown: &str, selection: &Selection, report: &ReadReport) -> serde_json::Value {
    let (reason, rule) = report.reason().unzip();
    serde_json::json!({
        "file": shown,
        "profile": selection.profile.name,
        "profile_reason": selection.to_string(),
        "valid": report.is_valid(),
        "partial": report.is_valid() && !report.skipped_lines.is_empty(),
        "rows_read": report.rows_read,
        "invalid_rows": report.invalid_rows,
        "readings": report.readings,
        "unmapped_rows": report.unmapped_rows,
        "missing_values": report.missing_values,
        "malformed_rows": report.malformed_rows,
        "skipped_blank_rows": report.blank_rows,
        "errors_total": report.problems_total(),
        "reason": reason,
        "rule": rule,
        "errors": report.reported_errors(),
    })
}

/// `ok` with the row count, or `INVALID` with the reason and every listed problem.
fn print_text(shown: &str, selection: &Selection, report: &ReadReport) {
    let profile = format!("read with {selection}");
    if report.is_valid() && report.skipped_lines.is_empty() {
        let long = if selection.profile.is_long() {
            format!(
                " → {} readings ({} rows of unmapped metrics or entities skipped, {} without a value)",
                report.readings, report.unmapped_rows, report.missing_values
            )
        } else {
            String::new()
        };
        println!(
            "ok       {shown}: {} rows{long}; {profile}",
            report.rows_read
        );
        return;
    }
    if report.is_valid() {
        println!(
            "PARTIAL  {shown}: {} of {} rows load, {} bad rows would go to the rejects file; {profile}",
            report.rows_read - report.invalid_rows - report.blank_rows,
            report.rows_read,
            report.skipped_lines.len()
        );
    } else {
        let (reason, _) = report.reason().unzip();
        println!(
            "INVALID  {shown}: {}; {profile}",
            reason.unwrap_or_default()
        );
    }
    for e in report
        .file_errors
        .iter()
        .skip(usize::from(!report.is_valid()))
    {
        let line = report
            .line_of(e)
            .map_or_else(|| "-".to_owned(), |l| l.to_string());
        println!(
            "  line {line:>6}  {:<12} {:<24} {}: {e}",
            "-",
            "",
            e.rule().name()
        );
    }
    for e in &report.errors {
        let column = if e.column.is_empty() { "-" } else { &e.column };
        println!(
            "  line {:>6}  {column:<12} {:<24} {}: {}",
            e.line,
            format!("{:?}", e.value),
            e.rule.name(),
            e.message
        );
    }
    if report.errors_total > report.errors.len() as u64 {
        println!(
            "  … {} more problems not listed",
            report.errors_total - report.errors.len() as u64
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lines_are_read_by_number_cut_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let long = "x".repeat(100_000);
        std::fs::write(&path, format!("\u{feff}h\r\na,1\r\n{long}\r\nlast")).unwrap();
        let raws = raw_lines(&path, &[1, 3, 4, 9]).unwrap();
        assert_eq!(raws.len(), 4);
        assert_eq!(
            raws[1].as_ref().unwrap().len(),
            RAW_BYTES,
            "a long line is cut"
        );
        assert_eq!(
            raws[2].as_deref(),
            Some(&b"last"[..]),
            "the last line without \\n"
        );
        assert_eq!(raws[3], None, "past the end");
        let layout = TextLayout::default();
        assert_eq!(decode_line(&layout, raws[0].as_ref().unwrap(), 1), "h");
        let shown = shorten(&decode_line(&layout, raws[1].as_ref().unwrap(), 3));
        assert_eq!(shown.chars().count(), RAW_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(shorten("a\tb"), "a\\tb");
        assert_eq!(
            raw_lines(&path, &[]).unwrap(),
            Vec::<Option<Vec<u8>>>::new()
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(Some(4.999_999_999_9)), "5");
        assert_eq!(num(Some(-0.000_000_1)), "0");
        assert_eq!(num(Some(1019.98)), "1019.98");
        assert_eq!(num(None), "—");
    }
}
