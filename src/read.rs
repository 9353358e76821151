//! Read stage: one streaming pass over a CSV file.
//!
//! [`CsvSource`] maps the header to the canonical columns (case-insensitive, trimmed,
//! with common aliases), hands out one record at a time from a reused buffer, checks
//! that every record has the header's field count, and hashes the bytes as they go by
//! so the content hash describes exactly the bytes that were read. Whole-file problems
//! are [`FileError`]s; per-row problems belong to [`crate::validate`].

use std::io::{self, Read};

use csv::ByteRecord;
use serde::Serialize;

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
    #[error("line {line} is a record of {size} bytes, more than the {limit} allowed")]
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
    /// The short machine-readable rule name used in quarantine reports.
    pub fn rule(&self) -> &'static str {
        match self {
            FileError::Empty => "empty_file",
            FileError::HeaderOnly => "header_only",
            FileError::HeaderNotUtf8 => "invalid_utf8",
            FileError::DuplicateHeader { .. } => "duplicate_header",
            FileError::AmbiguousColumn { .. } => "ambiguous_column",
            FileError::MissingColumn { .. } => "missing_column",
            FileError::NoMeasurementColumn { .. } => "no_measurement_column",
            FileError::FieldCount { .. } => "field_count",
            FileError::RecordTooLarge { .. } => "record_too_large",
            FileError::Io(_) => "io",
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

/// Streams the records of one CSV file, hashing its bytes on the way.
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
            .buffer_capacity(256 * 1024)
            .from_reader(HashingReader::new(inner));
        let mut header = ByteRecord::new();
        if !reader.read_byte_record(&mut header)? {
            return Err(FileError::Empty);
        }
        let layout = Layout::from_header(&header)?;
        Ok(Self {
            reader,
            layout,
            record: header,
            rows: 0,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The next data record and its physical line number (header = line 1), or `None` at
    /// the end. A file without data rows ends with [`FileError::HeaderOnly`].
    pub fn next_record(&mut self) -> Result<Option<(u64, &ByteRecord)>, FileError> {
        loop {
            if !self.reader.read_byte_record(&mut self.record)? {
                return if self.rows == 0 {
                    Err(FileError::HeaderOnly)
                } else {
                    Ok(None)
                };
            }
            // A blank CRLF line reads as one field holding `\r`.
            let blank = self.record.len() == 1 && self.record[0].trim_ascii().is_empty();
            if !blank {
                break;
            }
        }
        self.rows += 1;
        let line = self.record.position().map_or(0, |p| p.line());
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
        io::copy(&mut inner, &mut io::sink()).map_err(FileError::Io)?;
        Ok((ContentHash::from_hasher(&inner.hasher), inner.bytes))
    }
}

/// A reader that feeds every byte it yields to a BLAKE3 hasher.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
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
    fn hash_covers_every_byte() {
        let text = b"ts,id,t\n1,a,1\n";
        let mut src = source(text).unwrap();
        while src.next_record().unwrap().is_some() {}
        let (hash, size) = src.finish().unwrap();
        assert_eq!(size, text.len() as u64);
        assert_eq!(hash, ContentHash::of_reader(&text[..]).unwrap().0);
    }
}
