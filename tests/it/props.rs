//! Property tests: whatever bytes arrive, the reader and validator never panic, and
//! what they report is consistent (line numbers inside the file, counts that add up).

use proptest::prelude::*;
use sensor_ingest::config::{Ranges, SourceTimezone};
use std::sync::Arc;

use sensor_ingest::pipeline::{ReadContext, read_rows};
use sensor_ingest::profile::Profile;
use sensor_ingest::read::FileError;
use sensor_ingest::timestamp::parse_timestamp;

/// Reads `bytes` as a file; checks what must hold for any input.
fn read_any(bytes: &[u8], tz: SourceTimezone) {
    let mut loaded_lines = Vec::new();
    let cx = ReadContext {
        profile: Arc::new(Profile::builtin_default()),
        file_name: "any.csv".to_owned(),
        ranges: Ranges::default(),
        tz,
        order: None,
    };
    let report = read_rows(bytes, &cx, |row| {
        loaded_lines.push(row.reading.line);
        true
    });
    let physical_lines = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    assert!(report.invalid_rows <= report.rows_read);
    assert!(report.errors.len() as u64 <= report.errors_total);
    for e in &report.errors {
        assert!(e.line >= 2 && e.line <= physical_lines, "{e:?}");
    }
    assert!(
        loaded_lines.windows(2).all(|w| w[0] < w[1]),
        "{loaded_lines:?}"
    );
    assert!(loaded_lines.iter().all(|l| *l >= 2 && *l <= physical_lines));
    if let Some(FileError::Io(e)) = report.file_errors.first() {
        panic!("an in-memory read cannot fail with I/O: {e}");
    }
    if report.is_valid() {
        let (hash, size) = report
            .content
            .as_ref()
            .expect("a valid read reaches the end");
        assert_eq!(*size, bytes.len() as u64);
        assert_eq!(hash.as_str().len(), 64);
    }
}

/// A cell: mostly plausible values, sometimes hostile ones.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
        "(NaN|inf|-inf|1e309|-0|1,5|\"1,013\")",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9](:[0-6][0-9])?(Z|[+-][0-2][0-9]:?[0-5][0-9])?",
        "[0-9]{9,15}(\\.[0-9]{1,4})?",
        "[0-3]?[0-9][-./][01]?[0-9][-./][0-9]{4}( [0-2][0-9]:[0-5][0-9])?",
        "\"[^\"]{0,12}\"",
        "\\PC{0,12}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

/// A CSV-shaped file: a header of known and unknown names, rows of cells, separated by
/// commas, with LF, CRLF, blank lines and stray quotes mixed in.
fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(
        prop_oneof![
            Just("timestamp".to_owned()),
            Just("ts".to_owned()),
            Just("sensor_id".to_owned()),
            Just("id".to_owned()),
            Just("temperature".to_owned()),
            Just("humidity".to_owned()),
            Just("pressure".to_owned()),
            Just(String::new()),
            "[a-z]{1,6}",
        ],
        1..7,
    );
    let rows = prop::collection::vec(prop::collection::vec(cell(), 0..8), 0..12);
    let ends = prop::collection::vec(
        prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n"), Just("")],
        13,
    );
    (header, rows, ends, any::<bool>()).prop_map(|(header, rows, ends, bom)| {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        out.extend_from_slice(header.join(",").as_bytes());
        out.extend_from_slice(ends[0].as_bytes());
        for (i, row) in rows.iter().enumerate() {
            out.extend_from_slice(row.join(",").as_bytes());
            out.extend_from_slice(ends[i + 1].as_bytes());
        }
        out
    })
}

fn berlin() -> SourceTimezone {
    "Europe/Berlin".parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read_any(&bytes, SourceTimezone::default());
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = b"timestamp,sensor_id,temperature,humidity,pressure,note\n".to_vec();
        bytes.extend(tail);
        read_any(&bytes, berlin());
    }

    #[test]
    fn csv_shaped_text_never_panics(bytes in csv_text()) {
        read_any(&bytes, SourceTimezone::default());
        read_any(&bytes, berlin());
    }

    #[test]
    fn any_timestamp_text_never_panics(s in "\\PC{0,40}", digits in "[0-9.+:TZ -]{0,40}") {
        for tz in [SourceTimezone::default(), berlin(), "-23:59".parse().unwrap()] {
            let _ = parse_timestamp(&s, tz);
            if let Ok(t) = parse_timestamp(&digits, tz) {
                use chrono::Datelike;
                prop_assert!((1..=9999).contains(&t.year()), "{digits:?} -> {t}");
            }
        }
    }
}
