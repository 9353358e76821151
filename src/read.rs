//! Read stage: one streaming pass over a CSV file.
//!
//! [`CsvSource`] maps the header to the canonical columns (case-insensitive, trimmed,
//! with common aliases), hands out one record at a time from a reused buffer, checks
//! that every record has the header's field count, and hashes the bytes as they go by
//! so the content hash describes exactly the bytes that were read. Whole-file problems
//! are [`FileError`]s; per-row problems belong to [`crate::validate`].

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::ByteRecord;
use serde::Serialize;

use crate::rule::Rule;

/// Hex BLAKE3 digest of a file's bytes: the identity used for exactly-once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn from_hasher(hasher: &blake3::Hasher) -> Self {
        Self(hasher.finalize().to_hex().to_string())
    }

    /// Hashes everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Self, u64)> {
        let mut hasher = blake3::Hasher::new();
        let size = io::copy(&mut reader, &mut hasher)?;
        Ok((Self::from_hasher(&hasher), size))
    }

    /// A stand-in for a file that was deliberately not read (larger than
    /// `MAX_FILE_BYTES`): `unread-` and 57 hex digits derived from `key`. It has the
    /// length of a digest but can never equal one, so it never matches loaded content.
    pub fn unread(key: &str) -> Self {
        let digest = blake3::hash(key.as_bytes()).to_hex();
        Self(format!("unread-{}", &digest[..57]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first characters, enough to tell files apart in names and logs.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The canonical columns every file is mapped onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Canonical {
    Timestamp,
    SensorId,
    Temperature,
    Humidity,
    Pressure,
}

impl Canonical {
    pub fn name(self) -> &'static str {
        match self {
            Canonical::Timestamp => "timestamp",
            Canonical::SensorId => "sensor_id",
            Canonical::Temperature => "temperature",
            Canonical::Humidity => "humidity",
            Canonical::Pressure => "pressure",
        }
    }

    /// The canonical column a header name stands for, if any.
    pub fn from_header(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Some(match name.as_str() {
            "timestamp" | "ts" | "time" | "datetime" | "date" | "date_time" | "noted_date" => {
                Canonical::Timestamp
            }
            "sensor_id" | "sensor" | "device" | "device_id" | "id" | "station" => {
                Canonical::SensorId
            }
            "temperature" | "temp" | "t" => Canonical::Temperature,
            "humidity" | "rh" | "hum" => Canonical::Humidity,
            "pressure" | "p" | "press" => Canonical::Pressure,
            _ => return None,
        })
    }
}

/// A column that is not canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub index: usize,
    /// The header name, or `column_N` (1-based) for a column without one.
    pub name: String,
    /// The header had no name: empty cells are left out of `extra`.
    pub unnamed: bool,
}

/// Where each column of a file sits, decided once from its header.
#[derive(Debug, Clone)]
pub struct Layout {
    pub timestamp: usize,
    pub sensor_id: usize,
    pub temperature: Option<usize>,
    pub humidity: Option<usize>,
    pub pressure: Option<usize>,
    /// Non-canonical columns, kept per row as JSON.
    pub extras: Vec<Extra>,
    /// The header as written, trimmed.
    pub headers: Vec<String>,
}

impl Layout {
    /// Maps a header record. Fails when a required column is missing, when two headers
    /// name the same canonical column, or when a header name repeats.
    pub fn from_header(record: &ByteRecord) -> Result<Self, FileError> {
        let mut headers = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            let name = std::str::from_utf8(field).map_err(|_| FileError::HeaderNotUtf8)?;
            headers.push(name.trim().to_owned());
        }
        // Spreadsheet exports often end every line with a comma: a column without a
        // name is kept as `column_N`, and only where a row has a value.
        let unnamed: Vec<bool> = headers.iter().map(String::is_empty).collect();
        for (i, h) in headers.iter_mut().enumerate() {
            if h.is_empty() {
                *h = format!("column_{}", i + 1);
            }
        }
        let mut slots: [Option<usize>; 5] = [None; 5];
        let mut extras = Vec::new();
        for (i, name) in headers.iter().enumerate() {
            if let Some(j) = headers[..i]
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
            {
                return Err(FileError::DuplicateHeader {
                    name: name.clone(),
                    first: j + 1,
                    second: i + 1,
                });
            }
            match Canonical::from_header(name) {
                Some(c) => {
                    let slot = &mut slots[c as usize];
                    if let Some(j) = *slot {
                        return Err(FileError::AmbiguousColumn {
                            canonical: c.name(),
                            first: headers[j].clone(),
                            second: name.clone(),
                        });
                    }
                    *slot = Some(i);
                }
                None => extras.push(Extra {
                    index: i,
                    name: name.clone(),
                    unnamed: unnamed[i],
                }),
            }
        }
        let required = |c: Canonical| {
            slots[c as usize].ok_or_else(|| FileError::MissingColumn {
                column: c.name(),
                found: headers.clone(),
            })
        };
        let layout = Layout {
            timestamp: required(Canonical::Timestamp)?,
            sensor_id: required(Canonical::SensorId)?,
            temperature: slots[Canonical::Temperature as usize],
            humidity: slots[Canonical::Humidity as usize],
            pressure: slots[Canonical::Pressure as usize],
            extras,
            headers,
        };
        if layout.temperature.is_none() && layout.humidity.is_none() && layout.pressure.is_none() {
            return Err(FileError::NoMeasurementColumn {
                found: layout.headers.clone(),
            });
        }
        Ok(layout)
    }

    pub fn header(&self, index: usize) -> &str {
        &self.headers[index]
    }
}

/// A problem that concerns the whole file: nothing from it can be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has a header but no data rows")]
    HeaderOnly,
    #[error("the header is not valid UTF-8")]
    HeaderNotUtf8,
    #[error("header name {name:?} appears twice (columns {first} and {second})")]
    DuplicateHeader {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("columns {first:?} and {second:?} both mean {canonical}")]
    AmbiguousColumn {
        canonical: &'static str,
        first: String,
        second: String,
    },
    #[error("no {column} column; the header has {found:?}")]
    MissingColumn {
        column: &'static str,
        found: Vec<String>,
    },
    #[error("no measurement column (temperature, humidity or pressure); the header has {found:?}")]
    NoMeasurementColumn { found: Vec<String> },
    #[error("line {line} has {found} fields, the header has {expected}")]
    FieldCount {
        line: u64,
        expected: usize,
        found: usize,
    },
    /// `size` is a lower bound when the record was cut off while being read.
    #[error("line {line} is a record of at least {size} bytes, more than the {limit} allowed")]
    RecordTooLarge {
        line: u64,
        size: usize,
        limit: usize,
    },
    /// The file could not be read; its content is not at fault.
    #[error("reading failed: {0}")]
    Io(#[source] io::Error),
}

impl FileError {
    /// The rule this problem breaks.
    pub fn rule(&self) -> Rule {
        match self {
            FileError::Empty => Rule::EmptyFile,
            FileError::HeaderOnly => Rule::HeaderOnly,
            FileError::HeaderNotUtf8 => Rule::InvalidUtf8,
            FileError::DuplicateHeader { .. } => Rule::DuplicateHeader,
            FileError::AmbiguousColumn { .. } => Rule::AmbiguousColumn,
            FileError::MissingColumn { .. } => Rule::MissingColumn,
            FileError::NoMeasurementColumn { .. } => Rule::NoMeasurementColumn,
            FileError::FieldCount { .. } => Rule::FieldCount,
            FileError::RecordTooLarge { .. } => Rule::RecordTooLarge,
            FileError::Io(_) => Rule::Io,
        }
    }

    /// The physical line the problem is on, when it is on one.
    pub fn line(&self) -> Option<u64> {
        match self {
            FileError::FieldCount { line, .. } | FileError::RecordTooLarge { line, .. } => {
                Some(*line)
            }
            FileError::Empty | FileError::Io(_) => None,
            _ => Some(1),
        }
    }
}

impl From<csv::Error> for FileError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(e) => FileError::Io(e),
            other => FileError::Io(io::Error::other(format!("{other:?}"))),
        }
    }
}

/// A single record larger than this makes the file invalid: no sensor row needs it, and
/// it bounds the memory one record can take.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Bytes the CSV parser reads ahead of the record it is building.
const READ_BUFFER: usize = 256 * 1024;

/// Streams the records of one CSV file, hashing its bytes on the way.
///
/// Memory is bounded whatever the input: the reader under the parser refuses to hand
/// out more than [`MAX_RECORD_BYTES`] plus one buffer past the start of the record being
/// parsed, so a 10 MB field costs about 1.3 MB, not 10 MB.
pub struct CsvSource<R: Read> {
    reader: csv::Reader<HashingReader<R>>,
    layout: Layout,
    record: ByteRecord,
    rows: u64,
}

impl<R: Read> CsvSource<R> {
    /// Reads the header. An empty file or an unusable header is a [`FileError`].
    pub fn new(inner: R) -> Result<Self, FileError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            // Records end at `\n` only: with csv's default CRLF handling the `\n` of a
            // `\r\n` counts towards the next record and every line number is one short.
            // The `\r` left at the end of the last field is trimmed like other whitespace.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(READ_BUFFER)
            .from_reader(HashingReader::new(inner));
        let mut record = ByteRecord::new();
        if read_record(&mut reader, &mut record)?.is_none() {
            return Err(FileError::Empty);
        }
        let layout = Layout::from_header(&record)?;
        Ok(Self {
            reader,
            layout,
            record,
            rows: 0,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The next data record and its physical line number (header = line 1), or `None` at
    /// the end. A file without data rows ends with [`FileError::HeaderOnly`].
    pub fn next_record(&mut self) -> Result<Option<(u64, &ByteRecord)>, FileError> {
        let line = loop {
            let Some(line) = read_record(&mut self.reader, &mut self.record)? else {
                return if self.rows == 0 {
                    Err(FileError::HeaderOnly)
                } else {
                    Ok(None)
                };
            };
            // A blank CRLF line reads as one field holding `\r`.
            let blank = self.record.len() == 1 && self.record[0].trim_ascii().is_empty();
            if !blank {
                break line;
            }
        };
        self.rows += 1;
        if self.record.len() != self.layout.headers.len() {
            return Err(FileError::FieldCount {
                line,
                expected: self.layout.headers.len(),
                found: self.record.len(),
            });
        }
        let size = self.record.as_slice().len();
        if size > MAX_RECORD_BYTES {
            return Err(FileError::RecordTooLarge {
                line,
                size,
                limit: MAX_RECORD_BYTES,
            });
        }
        Ok(Some((line, &self.record)))
    }

    /// Reads whatever is left (so the hash covers the whole file) and returns the
    /// content hash and byte count.
    pub fn finish(self) -> Result<(ContentHash, u64), FileError> {
        let mut inner = self.reader.into_inner();
        inner.stop_tracking();
        io::copy(&mut inner, &mut io::sink()).map_err(FileError::Io)?;
        Ok((ContentHash::from_hasher(&inner.hasher), inner.bytes))
    }
}

/// Reads one record into `record`; returns its physical line, or `None` at the end.
fn read_record<R: Read>(
    reader: &mut csv::Reader<HashingReader<R>>,
    record: &mut ByteRecord,
) -> Result<Option<u64>, FileError> {
    let start = reader.position().byte();
    reader.get_mut().record_start = start;
    match reader.read_byte_record(record) {
        Ok(true) => Ok(Some(reader.get_mut().line_at(start))),
        Ok(false) => Ok(None),
        Err(_) if reader.get_ref().cut_off => Err(FileError::RecordTooLarge {
            line: reader.get_mut().line_at(start),
            size: MAX_RECORD_BYTES + 1,
            limit: MAX_RECORD_BYTES,
        }),
        Err(e) => Err(e.into()),
    }
}

/// The reader under the CSV parser: feeds every byte it yields to a BLAKE3 hasher,
/// remembers where the newlines are so records get their true physical line (csv's own
/// count goes wrong after blank lines, which it skips silently), and stops handing out
/// bytes once the record being parsed has outgrown [`MAX_RECORD_BYTES`].
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
    /// Offset where the record being parsed starts (blank lines before it included).
    record_start: u64,
    /// Set when a read was refused because the current record is too large.
    cut_off: bool,
    /// Newlines not yet behind a record start, as runs `(first offset, length)`: a
    /// flood of blank lines is one entry.
    newline_runs: VecDeque<(u64, u64)>,
    /// Newlines already behind a record start.
    newlines_passed: u64,
    tracking: bool,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            record_start: 0,
            cut_off: false,
            newline_runs: VecDeque::new(),
            newlines_passed: 0,
            tracking: true,
        }
    }

    /// The physical line (1-based) of the first byte after `start` that is not a
    /// newline: where a record that csv began reading at `start` really starts, blank
    /// lines skipped. Calls must come with non-decreasing `start`.
    fn line_at(&mut self, start: u64) -> u64 {
        while let Some(&(first, len)) = self.newline_runs.front() {
            if first + len <= start {
                self.newlines_passed += len;
                self.newline_runs.pop_front();
            } else if first <= start {
                // The run holds the previous record's terminator and the blank lines
                // after it; the record starts after the whole run.
                self.newlines_passed += len;
                self.newline_runs.pop_front();
                break;
            } else {
                break;
            }
        }
        self.newlines_passed + 1
    }

    /// Where the current record's own bytes begin: after any blank lines at its start.
    fn content_start(&self) -> u64 {
        let start = self.record_start;
        self.newline_runs
            .iter()
            .take_while(|(first, _)| *first <= start)
            .find(|(first, len)| start < first + len)
            .map_or(start, |(first, len)| first + len)
    }

    fn stop_tracking(&mut self) {
        self.tracking = false;
        self.newline_runs.clear();
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tracking {
            // What the parser has consumed of this record is at least what was read
            // minus one buffer: past the limit, the record is too large for sure.
            let limit = (MAX_RECORD_BYTES + READ_BUFFER) as u64;
            if self.bytes.saturating_sub(self.content_start()) > limit {
                self.cut_off = true;
                return Err(io::Error::other("record too large"));
            }
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if self.tracking {
            for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
                let at = self.bytes + i as u64;
                match self.newline_runs.back_mut() {
                    Some((first, len)) if *first + *len == at => *len += 1,
                    _ => self.newline_runs.push_back((at, 1)),
                }
            }
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &[u8]) -> Result<CsvSource<&[u8]>, FileError> {
        CsvSource::new(text)
    }

    fn lines(text: &[u8]) -> Result<Vec<(u64, Vec<String>)>, FileError> {
        let mut src = source(text)?;
        let mut out = Vec::new();
        while let Some((line, rec)) = src.next_record()? {
            out.push((
                line,
                rec.iter()
                    .map(|f| String::from_utf8_lossy(f).trim().to_owned())
                    .collect(),
            ));
        }
        Ok(out)
    }

    #[test]
    fn aliases_map_case_insensitively() {
        let src = source(b" Noted_Date ,DEVICE,Temp,RH,press,room\n").unwrap();
        let l = src.layout();
        assert_eq!(
            (
                l.timestamp,
                l.sensor_id,
                l.temperature,
                l.humidity,
                l.pressure
            ),
            (0, 1, Some(2), Some(3), Some(4))
        );
        assert_eq!(
            l.extras,
            vec![Extra {
                index: 5,
                name: "room".to_owned(),
                unnamed: false
            }]
        );
    }

    #[test]
    fn bom_crlf_quotes_and_missing_final_newline() {
        let text = b"\xEF\xBB\xBFtimestamp,sensor_id,temperature\r\n\
            2024-01-01T00:00:00Z,\"s,1\",20\r\n\r\n2024-01-01T00:01:00Z,s2,21";
        let rows = lines(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            (
                2,
                vec!["2024-01-01T00:00:00Z".into(), "s,1".into(), "20".into()]
            )
        );
        assert_eq!(rows[1].0, 4, "blank line 3 is skipped but still counted");
    }

    #[test]
    fn line_numbers_count_physical_lines_inside_quotes() {
        let text = b"ts,id,t,note\n1,a,1,\"two\nlines\"\n2,b,2,x\n";
        let rows = lines(text).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4]);
    }

    #[test]
    fn unnamed_columns_become_column_n() {
        let src = source(b"ts,id,t,,\n").unwrap();
        let names: Vec<_> = src
            .layout()
            .extras
            .iter()
            .map(|e| (e.name.as_str(), e.unnamed))
            .collect();
        assert_eq!(names, vec![("column_4", true), ("column_5", true)]);
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(source(b""), Err(FileError::Empty)));
        assert!(matches!(lines(b"ts,id,t\n"), Err(FileError::HeaderOnly)));
        assert!(matches!(
            source(b"ts,id,humidity,rh\n"),
            Err(FileError::AmbiguousColumn {
                canonical: "humidity",
                ..
            })
        ));
        assert!(matches!(
            source(b"ts,id,t,x,X\n"),
            Err(FileError::DuplicateHeader {
                first: 4,
                second: 5,
                ..
            })
        ));
        assert!(matches!(
            source(b"id,t\n"),
            Err(FileError::MissingColumn {
                column: "timestamp",
                ..
            })
        ));
        assert!(matches!(
            source(b"ts,id,room\n"),
            Err(FileError::NoMeasurementColumn { .. })
        ));
        assert!(matches!(
            lines(b"ts,id,t\n1,a,1\n2,b\n"),
            Err(FileError::FieldCount {
                line: 3,
                expected: 3,
                found: 2
            })
        ));
    }

    #[test]
    fn blank_lines_keep_line_numbers_physical() {
        let numbers = |text: &[u8]| -> Vec<u64> {
            lines(text).unwrap().into_iter().map(|(l, _)| l).collect()
        };
        assert_eq!(numbers(b"ts,id,t\n1,a,1\n\n2,b,2\n"), vec![2, 4]);
        assert_eq!(numbers(b"ts,id,t\n\n1,a,1\n2,b,2\n"), vec![3, 4]);
        assert_eq!(
            numbers(b"ts,id,t\n1,a,1\n\n\n\n2,b,2\n3,c,3\n\n"),
            vec![2, 6, 7]
        );
        assert_eq!(numbers(b"\n\nts,id,t\n1,a,\"x\n\ny\"\n\n2,b,2"), vec![4, 8]);
        // Megabytes of blank lines are not one huge record.
        let mut flood = b"ts,id,t\n".to_vec();
        flood.extend(std::iter::repeat_n(b'\n', 3 << 20));
        flood.extend_from_slice(b"1,a,1\n");
        assert_eq!(numbers(&flood), vec![(3 << 20) + 2]);
    }

    /// Serves `head` and then `x` up to 32 MiB, counting what it served.
    struct Endless {
        served: std::rc::Rc<std::cell::Cell<u64>>,
        head: &'static [u8],
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = if self.served.get() >= 32 << 20 {
                0
            } else if self.head.is_empty() {
                buf.fill(b'x');
                buf.len()
            } else {
                let n = self.head.len().min(buf.len());
                buf[..n].copy_from_slice(&self.head[..n]);
                self.head = &self.head[n..];
                n
            };
            self.served.set(self.served.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn an_endless_record_stops_after_the_limit_not_at_the_end_of_memory() {
        for head in [&b"ts,id,t\n1,a,\""[..], b"ts,id,t\n1,a,", b"ts,id,"] {
            let served = std::rc::Rc::new(std::cell::Cell::new(0));
            let endless = Endless {
                served: served.clone(),
                head,
            };
            let result = CsvSource::new(endless).and_then(|mut src| {
                while src.next_record()?.is_some() {}
                Ok(())
            });
            let line = if head.ends_with(b"\n") || head.len() > 8 {
                2
            } else {
                1
            };
            assert!(
                matches!(result, Err(FileError::RecordTooLarge { line: l, .. }) if l == line),
                "{result:?}"
            );
            assert!(
                served.get() < 2 * MAX_RECORD_BYTES as u64,
                "read {} bytes for one record",
                served.get()
            );
        }
    }

    #[test]
    fn a_record_just_over_the_limit_is_too_large_and_one_under_is_fine() {
        let file = |field: usize| {
            let mut text = b"ts,id,t,note\n1,a,1,".to_vec();
            text.extend(std::iter::repeat_n(b'n', field));
            text.extend_from_slice(b"\n2,b,2,x\n");
            text
        };
        let ok = lines(&file(MAX_RECORD_BYTES - 10)).unwrap();
        assert_eq!(ok.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3]);
        assert!(matches!(
            lines(&file(MAX_RECORD_BYTES + 1)),
            Err(FileError::RecordTooLarge { line: 2, .. })
        ));
        assert!(matches!(
            lines(&file(10 * MAX_RECORD_BYTES)),
            Err(FileError::RecordTooLarge { line: 2, .. })
        ));
    }

    #[test]
    fn hash_covers_every_byte() {
        let text = b"ts,id,t\n1,a,1\n";
        let mut src = source(text).unwrap();
        while src.next_record().unwrap().is_some() {}
        let (hash, size) = src.finish().unwrap();
        assert_eq!(size, text.len() as u64);
        assert_eq!(hash, ContentHash::of_reader(&text[..]).unwrap().0);
    }
}
