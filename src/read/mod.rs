//! Read stage: one streaming pass over a CSV file.
//!
//! [`CsvSource`] reads the lines before the header (keeping a metadata line's fields),
//! the header (or the names a profile gives), skips comment lines and the rows after
//! the header that are not data, hands out one record at a time from a reused buffer,
//! checks that every record has the header's field count, and hashes the bytes as they
//! go by so the content hash describes exactly the bytes that were read. What the
//! columns mean is decided from the header by [`crate::profile::plan`]. Whole-file
//! problems are [`FileError`]s; per-row problems belong to [`crate::validate`].
//!
//! A layout can also separate fields by runs of blanks ([`Delimiter::Blanks`], for
//! columns aligned with spaces): each line is split by the parser at spaces, quotes
//! not special, and the record is then re-split at tabs with empty pieces dropped, so
//! the comma path pays only one test per record.
//!
//! Text in another encoding than UTF-8 is parsed as bytes (delimiters and quotes are
//! ASCII in every encoding we accept) and each cell is decoded when it is read
//! ([`TextLayout::decode`]).

mod hashing;
mod number;
mod shown;

pub use number::parse_number;
pub use shown::shorten;

use std::borrow::Cow;
use std::io::{self, Read};

use hashing::{HashingReader, read_record};

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

    /// An identity that is not a digest of content: `KIND-` and 57 hex digits derived
    /// from `key` (an increment of a followed file is `append-…`). It can never equal a
    /// content hash, so it never matches a whole file's content.
    pub fn derived(kind: &str, key: &str) -> Self {
        let digest = blake3::hash(key.as_bytes()).to_hex();
        Self(format!("{kind}-{}", &digest[..57]))
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
    /// A column the profile names is not in the header.
    #[error(
        "profile {profile}: {key} names column {column:?}, which the header does not have; the header has {found:?}"
    )]
    ProfileColumn {
        profile: String,
        key: String,
        column: String,
        found: Vec<String>,
    },
    #[error("profile {profile}: metadata field {field:?} is missing or empty on line {line}")]
    MetadataField {
        profile: String,
        field: String,
        line: u32,
    },
    #[error("profile {profile}: time: {message}")]
    ProfileTime { profile: String, message: String },
    #[error("profile {profile}: the file name does not match sensor.file_name {pattern:?}")]
    SensorFromFileName { profile: String, pattern: String },
    #[error("column {column:?}: {message}")]
    UnitMismatch { column: String, message: String },
    #[error(
        "column {column:?} is {quantity} in {unit:?}, a unit this agent does not convert; \
         name the unit in a profile (measures.{quantity}.unit)"
    )]
    UnknownUnit {
        column: String,
        unit: String,
        quantity: &'static str,
    },
    /// Day-first and month-first readings of the dates differ and nothing says which.
    #[error(
        "dates such as {example:?} (line {line}) read differently day-first and month-first, \
         and no date in the file proves the order (a day over 12); give the order in a \
         profile (time.order = \"dmy\" or \"mdy\")"
    )]
    AmbiguousDateOrder { line: u64, example: String },
    #[error(
        "the dates prove both orders: day-first on line {day_first_line}, month-first on \
         line {month_first_line}"
    )]
    ConflictingDateOrder {
        day_first_line: u64,
        month_first_line: u64,
    },
    #[error(
        "column {column:?} has a different value on every one of the {rows} rows: it is a \
         row id, not a sensor id; name the sensor column in a profile (sensor.column) or \
         give a constant"
    )]
    SensorIsRowId { column: String, rows: u64 },
    #[error(
        "sensor id {example:?} (line {line}) reads as a {what}, and {count} of the file's \
         sensor ids do: the column taken as the sensor holds times or dates"
    )]
    SensorIsTime {
        line: u64,
        example: String,
        what: &'static str,
        count: u64,
    },
    #[error(
        "sensor {sensor:?} has two readings at {time} with different values (lines \
         {first_line} and {line}); {count} such pairs in the file"
    )]
    DuplicateTime {
        line: u64,
        first_line: u64,
        sensor: String,
        time: String,
        count: u64,
    },
    #[error(
        "sensor {sensor:?} has 3 or more readings at {time} (from line {first_line}), and \
         up to {readings} readings share one instant in the file: the time column misses a \
         part (a time of day beside the date?)"
    )]
    StackedTimes {
        line: u64,
        first_line: u64,
        sensor: String,
        time: String,
        readings: u64,
    },
    #[error("the local time {local} (line {line}) happens twice in {zone}: {why}")]
    AmbiguousLocalTime {
        line: u64,
        local: String,
        zone: String,
        why: String,
    },
    #[error(
        "every humidity of the file lies between 0 and 1 ({min} to {max}, {count} values): \
         a fraction, not %RH; declare measures.humidity.unit = \"fraction\" in a profile"
    )]
    HumidityFraction { min: f64, max: f64, count: u64 },
    #[error("{bad} of {rows} rows are bad, more than the profile allows ({limit})")]
    TooManyBadRows { bad: u64, rows: u64, limit: String },
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
            FileError::ProfileColumn { .. }
            | FileError::MetadataField { .. }
            | FileError::ProfileTime { .. }
            | FileError::SensorFromFileName { .. } => Rule::ProfileMismatch,
            FileError::UnitMismatch { .. } => Rule::UnitMismatch,
            FileError::UnknownUnit { .. } => Rule::UnknownUnit,
            FileError::AmbiguousDateOrder { .. } | FileError::ConflictingDateOrder { .. } => {
                Rule::AmbiguousDateOrder
            }
            FileError::SensorIsRowId { .. } => Rule::SensorIsRowId,
            FileError::TooManyBadRows { .. } => Rule::TooManyBadRows,
            FileError::SensorIsTime { .. } => Rule::SensorIsTime,
            FileError::DuplicateTime { .. } => Rule::DuplicateTime,
            FileError::StackedTimes { .. } => Rule::StackedTimes,
            FileError::AmbiguousLocalTime { .. } => Rule::AmbiguousLocalTime,
            FileError::HumidityFraction { .. } => Rule::HumidityFraction,
        }
    }

    /// True for a problem of the header (its line is the header's, which
    /// [`FileError::line`] gives as 1: the caller that knows the header's real line
    /// after a preamble puts that instead).
    pub fn is_header_error(&self) -> bool {
        matches!(
            self,
            FileError::HeaderNotUtf8
                | FileError::DuplicateHeader { .. }
                | FileError::AmbiguousColumn { .. }
                | FileError::MissingColumn { .. }
                | FileError::NoMeasurementColumn { .. }
                | FileError::ProfileColumn { .. }
                | FileError::ProfileTime { .. }
                | FileError::UnitMismatch { .. }
                | FileError::UnknownUnit { .. }
        )
    }

    /// The physical line the problem is on, when it is on one.
    pub fn line(&self) -> Option<u64> {
        match self {
            FileError::FieldCount { line, .. } | FileError::RecordTooLarge { line, .. } => {
                Some(*line)
            }
            FileError::Empty
            | FileError::Io(_)
            | FileError::SensorFromFileName { .. }
            | FileError::TooManyBadRows { .. }
            | FileError::SensorIsRowId { .. }
            | FileError::HumidityFraction { .. } => None,
            FileError::AmbiguousDateOrder { line, .. }
            | FileError::SensorIsTime { line, .. }
            | FileError::DuplicateTime { line, .. }
            | FileError::StackedTimes { line, .. }
            | FileError::AmbiguousLocalTime { line, .. } => Some(*line),
            FileError::ConflictingDateOrder {
                month_first_line, ..
            } => Some(*month_first_line),
            FileError::MetadataField { line, .. } => Some(u64::from(*line)),
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

/// Bytes the CSV parser reads ahead of the record it is building, at most.
const READ_BUFFER: usize = 256 * 1024;

/// The read-ahead for a file of `size` bytes: [`READ_BUFFER`], or less for a smaller
/// file. The buffer is zeroed once per file before its first read, which for a file of a
/// few kilobytes cost more than the rest of its reading; a buffer larger than the file
/// gains nothing.
pub fn read_buffer_for(size: u64) -> usize {
    const SMALLEST: usize = 8 * 1024;
    let wanted = size.saturating_add(1).min(READ_BUFFER as u64) as usize;
    wanted.next_multiple_of(SMALLEST).min(READ_BUFFER)
}

/// Text encodings a profile can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// Latin-1 files are read as Windows-1252, its superset, as browsers do.
    Windows1252,
}

/// What separates the fields of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// One byte (`,` `;` tab `|` space), with CSV quoting.
    Byte(u8),
    /// One or more spaces or tabs; blanks at the start and end of a line are ignored
    /// and quotes are ordinary characters (columns aligned with spaces, as NOAA's
    /// USCRN and SURFRAD files are).
    Blanks,
}

/// How a file's text is laid out: what a profile's `[layout]` says.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLayout {
    pub delimiter: Delimiter,
    pub decimal_comma: bool,
    pub encoding: Encoding,
    /// Lines before the header.
    pub preamble: u32,
    /// Lines after the header that are not data.
    pub skip_after_header: u32,
    /// Lines whose first field starts with this are skipped.
    pub comment: Option<String>,
    /// The physical line whose fields are the file's metadata (within the preamble).
    pub metadata_line: Option<u32>,
    /// Column names when the file has no header line.
    pub names: Option<Vec<String>>,
}

impl Default for TextLayout {
    fn default() -> Self {
        Self {
            delimiter: Delimiter::Byte(b','),
            decimal_comma: false,
            encoding: Encoding::Utf8,
            preamble: 0,
            skip_after_header: 0,
            comment: None,
            metadata_line: None,
            names: None,
        }
    }
}

impl TextLayout {
    /// A cell as text, or `None` when it is not valid in the file's encoding (only
    /// UTF-8 can be invalid: every byte is a Windows-1252 character).
    pub fn decode<'a>(&self, raw: &'a [u8]) -> Option<Cow<'a, str>> {
        match self.encoding {
            Encoding::Utf8 => std::str::from_utf8(raw).ok().map(Cow::Borrowed),
            Encoding::Windows1252 => {
                Some(encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw).0)
            }
        }
    }
}

/// What came before the data: the column names and the metadata line's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// The header as written, trimmed (a BOM removed); `column_N` for an empty name.
    pub names: Vec<String>,
    /// Which names were empty in the file.
    pub unnamed: Vec<bool>,
    /// The physical line of the header (0 without one).
    pub line: u64,
    /// The metadata line's fields, trimmed, when the layout names one.
    pub metadata: Option<Vec<String>>,
}

/// Streams the records of one CSV file, hashing its bytes on the way.
///
/// Memory is bounded whatever the input: the reader under the parser refuses to hand
/// out more than [`MAX_RECORD_BYTES`] plus one buffer past the start of the record being
/// parsed, so a 10 MB field costs about 1.3 MB, not 10 MB.
pub struct CsvSource<R: Read> {
    reader: csv::Reader<HashingReader<R>>,
    text: TextLayout,
    header: Header,
    record: ByteRecord,
    /// With [`Delimiter::Blanks`]: the line as the parser split it (at spaces).
    raw: Option<ByteRecord>,
    rows: u64,
    /// A data record read while looking for the header (files without one).
    pending: Option<u64>,
}

impl<R: Read> CsvSource<R> {
    /// Reads a comma-separated UTF-8 file whose header is its first line.
    pub fn new(inner: R) -> Result<Self, FileError> {
        Self::with_layout(inner, TextLayout::default())
    }

    /// Reads the preamble and the header. An empty file or an unusable header is a
    /// [`FileError`].
    pub fn with_layout(inner: R, text: TextLayout) -> Result<Self, FileError> {
        Self::with_buffer(inner, text, READ_BUFFER)
    }

    /// [`CsvSource::with_layout`], reading ahead `buffer` bytes (at most
    /// [`READ_BUFFER`]; [`read_buffer_for`] a file's size).
    pub fn with_buffer(inner: R, text: TextLayout, buffer: usize) -> Result<Self, FileError> {
        let raw = (text.delimiter == Delimiter::Blanks).then(ByteRecord::new);
        let mut builder = csv::ReaderBuilder::new();
        match text.delimiter {
            Delimiter::Byte(b) => builder.delimiter(b),
            // Without quoting a record is one line, whatever it holds.
            Delimiter::Blanks => builder.delimiter(b' ').quoting(false),
        };
        let reader = builder
            .has_headers(false)
            .flexible(true)
            // Records end at `\n` only: with csv's default CRLF handling the `\n` of a
            // `\r\n` counts towards the next record and every line number is one short.
            // The `\r` left at the end of the last field is trimmed like other whitespace.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(buffer.clamp(1, READ_BUFFER))
            .from_reader(HashingReader::new(inner));
        let mut source = Self {
            reader,
            text,
            header: Header::default(),
            record: ByteRecord::new(),
            raw,
            rows: 0,
            pending: None,
        };
        source.read_header()?;
        Ok(source)
    }

    fn read_header(&mut self) -> Result<(), FileError> {
        let mut seen_any = false;
        loop {
            let Some(line) = self.read()? else {
                return Err(if seen_any {
                    FileError::HeaderOnly
                } else {
                    FileError::Empty
                });
            };
            seen_any = true;
            if self.is_comment() {
                continue;
            }
            if line <= u64::from(self.text.preamble) {
                if self.text.metadata_line == Some(line as u32) {
                    let fields = self.record.iter().map(|f| self.cell_text(f)).collect();
                    self.header.metadata = Some(fields);
                }
                continue;
            }
            if let Some(names) = &self.text.names {
                self.header.names = names.iter().map(|n| n.trim().to_owned()).collect();
                self.header.unnamed = vec![false; names.len()];
                self.pending = Some(line);
                break;
            }
            let mut names = Vec::with_capacity(self.record.len());
            for (i, field) in self.record.iter().enumerate() {
                let field = if i == 0 {
                    field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
                } else {
                    field
                };
                let name = self.text.decode(field).ok_or(FileError::HeaderNotUtf8)?;
                names.push(name.trim().to_owned());
            }
            // Spreadsheet exports often end every line with a comma: a column without a
            // name is kept as `column_N`, and only where a row has a value.
            self.header.unnamed = names.iter().map(String::is_empty).collect();
            for (i, h) in names.iter_mut().enumerate() {
                if h.is_empty() {
                    *h = format!("column_{}", i + 1);
                }
            }
            self.header.names = names;
            self.header.line = line;
            break;
        }
        if self.text.metadata_line.is_some() && self.header.metadata.is_none() {
            self.header.metadata = Some(Vec::new());
        }
        for _ in 0..self.text.skip_after_header {
            if self.pending.is_some() {
                break;
            }
            if self.read()?.is_none() {
                return Err(FileError::HeaderOnly);
            }
        }
        Ok(())
    }

    /// Reads the next record into `self.record`; returns its physical line, or `None`
    /// at the end.
    fn read(&mut self) -> Result<Option<u64>, FileError> {
        let Some(raw) = &mut self.raw else {
            return read_record(&mut self.reader, &mut self.record);
        };
        let line = read_record(&mut self.reader, raw)?;
        if line.is_some() {
            split_blanks(raw, &mut self.record);
        }
        Ok(line)
    }

    fn is_comment(&self) -> bool {
        match (&self.text.comment, self.record.get(0)) {
            (Some(prefix), Some(first)) => first.trim_ascii_start().starts_with(prefix.as_bytes()),
            _ => false,
        }
    }

    fn cell_text(&self, raw: &[u8]) -> String {
        self.text
            .decode(raw)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| String::from_utf8_lossy(raw).trim().to_owned())
    }

    /// The column names and the metadata.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The text layout the file is read with.
    pub fn text(&self) -> &TextLayout {
        &self.text
    }

    /// The next data record and its physical line number (header = line 1), or `None` at
    /// the end. A file without data rows ends with [`FileError::HeaderOnly`].
    pub fn next_record(&mut self) -> Result<Option<(u64, &ByteRecord)>, FileError> {
        let line = loop {
            let line = match self.pending.take() {
                Some(line) => line,
                None => match self.read()? {
                    Some(line) => line,
                    None => {
                        return if self.rows == 0 {
                            Err(FileError::HeaderOnly)
                        } else {
                            Ok(None)
                        };
                    }
                },
            };
            // A blank CRLF line reads as one field holding `\r`.
            let blank = self.record.len() == 1 && self.record[0].trim_ascii().is_empty();
            if !blank && !self.is_comment() {
                break line;
            }
        };
        self.rows += 1;
        if self.record.len() != self.header.names.len() {
            return Err(FileError::FieldCount {
                line,
                expected: self.header.names.len(),
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

/// The fields of `raw` (a line split at single spaces) split again at tabs (and the
/// `\r` of a CRLF line), empty pieces dropped: the fields of a line whose columns are
/// separated by runs of blanks. A blank line is one empty field, as the parser gives
/// it for other delimiters.
fn split_blanks(raw: &ByteRecord, out: &mut ByteRecord) {
    out.clear();
    for field in raw {
        for piece in field.split(|b| matches!(b, b'\t' | b'\r')) {
            if !piece.is_empty() {
                out.push_field(piece);
            }
        }
    }
    if out.is_empty() {
        out.push_field(b"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &[u8]) -> Result<CsvSource<&[u8]>, FileError> {
        CsvSource::new(text)
    }

    #[test]
    fn a_small_files_read_ahead_holds_the_file_and_no_more() {
        assert_eq!(read_buffer_for(0), 8 * 1024);
        assert_eq!(read_buffer_for(5_000), 8 * 1024);
        assert_eq!(read_buffer_for(8 * 1024), 16 * 1024);
        assert_eq!(read_buffer_for(1 << 30), READ_BUFFER);
        assert_eq!(read_buffer_for(u64::MAX), READ_BUFFER);
    }

    #[test]
    fn records_longer_than_the_read_ahead_are_read_whole() {
        let long = "x".repeat(3 * 8 * 1024);
        let text = format!("ts,id,t\n1,{long},2\n3,b,4\n");
        let mut s =
            CsvSource::with_buffer(text.as_bytes(), TextLayout::default(), 8 * 1024).unwrap();
        let (line, first) = s.next_record().unwrap().unwrap();
        assert_eq!((line, first.get(1)), (2, Some(long.as_bytes())));
        let (line, second) = s.next_record().unwrap().unwrap();
        assert_eq!((line, second.get(0)), (3, Some(&b"3"[..])));
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
        let h = src.header();
        assert_eq!(h.names[3..], ["column_4".to_owned(), "column_5".to_owned()]);
        assert_eq!(h.unnamed, vec![false, false, false, true, true]);
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(source(b""), Err(FileError::Empty)));
        assert!(matches!(lines(b"ts,id,t\n"), Err(FileError::HeaderOnly)));
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
    fn preamble_metadata_comments_and_unit_rows() {
        let text = b"\"TOA5\",\"Pond\",\"CR1000X\"\n\"TIMESTAMP\",\"T\"\n\"TS\",\"Deg C\"\n\"\",\"Avg\"\n# note\n\"2024-01-01 00:00:00\",4.5\n";
        let layout = TextLayout {
            preamble: 1,
            skip_after_header: 2,
            metadata_line: Some(1),
            comment: Some("#".to_owned()),
            ..TextLayout::default()
        };
        let mut src = CsvSource::with_layout(&text[..], layout).unwrap();
        assert_eq!(src.header().names, vec!["TIMESTAMP", "T"]);
        assert_eq!(
            src.header().metadata.as_deref(),
            Some(&["TOA5".to_owned(), "Pond".to_owned(), "CR1000X".to_owned()][..])
        );
        let (line, rec) = src.next_record().unwrap().unwrap();
        assert_eq!(line, 6);
        assert_eq!(&rec[1], b"4.5");
        assert!(src.next_record().unwrap().is_none());
    }

    #[test]
    fn no_header_semicolons_and_latin1() {
        let layout = TextLayout {
            delimiter: Delimiter::Byte(b';'),
            encoding: Encoding::Windows1252,
            names: Some(vec!["ts".into(), "Temp \u{b0}C".into()]),
            ..TextLayout::default()
        };
        let mut src = CsvSource::with_layout(&b"1;21,5\n2;\xb022\n"[..], layout.clone()).unwrap();
        assert_eq!(src.header().names[1], "Temp \u{b0}C");
        let (line, rec) = src.next_record().unwrap().unwrap();
        assert_eq!((line, &rec[1]), (1, &b"21,5"[..]));
        let (_, rec) = src.next_record().unwrap().unwrap();
        assert_eq!(layout.decode(&rec[1]).unwrap(), "\u{b0}22");
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

    fn blanks(names: Option<&[&str]>) -> TextLayout {
        TextLayout {
            delimiter: Delimiter::Blanks,
            names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
            ..TextLayout::default()
        }
    }

    fn fields(rec: &ByteRecord) -> Vec<&str> {
        rec.iter()
            .map(|f| std::str::from_utf8(f).unwrap())
            .collect()
    }

    #[test]
    fn runs_of_blanks_separate_fields_and_edges_are_ignored() {
        let text = b"  ts   id\tt \r\n 1  a \t\t-9999.0\r\n   \r\n\t2 \"b 21.5   \n3 d 4";
        let mut src = CsvSource::with_layout(&text[..], blanks(None)).unwrap();
        assert_eq!(src.header().names, vec!["ts", "id", "t"]);
        let mut rows = Vec::new();
        while let Some((line, rec)) = src.next_record().unwrap() {
            rows.push((line, fields(rec).join("|")));
        }
        assert_eq!(
            rows,
            vec![
                (2, "1|a|-9999.0".to_owned()),
                // Line 3 holds only blanks; a quote is an ordinary character.
                (4, "2|\"b|21.5".to_owned()),
                (5, "3|d|4".to_owned()),
            ]
        );
        let (hash, size) = src.finish().unwrap();
        assert_eq!(size, text.len() as u64);
        assert_eq!(hash, ContentHash::of_reader(&text[..]).unwrap().0);
    }

    #[test]
    fn blank_separated_preamble_metadata_and_names() {
        // SURFRAD's daily files: station name, then latitude, longitude, elevation.
        let text = b" Alamosa\n   37.70  105.92 2317 m version 1\n 2016   1  0.000    -1.8 0\n# c\n 2016   2  0.017 -9999.9 1\n";
        let layout = TextLayout {
            preamble: 2,
            metadata_line: Some(2),
            comment: Some("#".to_owned()),
            ..blanks(Some(&["year", "jday", "dt", "dw_solar", "qc_dwsolar"]))
        };
        let mut src = CsvSource::with_layout(&text[..], layout).unwrap();
        assert_eq!(
            src.header().metadata.as_deref().unwrap(),
            ["37.70", "105.92", "2317", "m", "version", "1"]
        );
        let (line, rec) = src.next_record().unwrap().unwrap();
        assert_eq!(
            (line, fields(rec)),
            (3, vec!["2016", "1", "0.000", "-1.8", "0"])
        );
        let (line, rec) = src.next_record().unwrap().unwrap();
        assert_eq!((line, fields(rec)[3]), (5, "-9999.9"));
        assert!(src.next_record().unwrap().is_none());
    }

    #[test]
    fn a_blank_separated_row_with_a_field_missing_is_a_field_count_error() {
        let layout = blanks(Some(&["a", "b", "c"]));
        let mut src = CsvSource::with_layout(&b"1 2 3\n4    6\n"[..], layout).unwrap();
        assert!(src.next_record().unwrap().is_some());
        assert!(matches!(
            src.next_record(),
            Err(FileError::FieldCount {
                line: 2,
                expected: 3,
                found: 2
            })
        ));
    }

    #[test]
    fn an_endless_blank_separated_record_stops_after_the_limit() {
        for head in [&b"ts id t\n1 a "[..], b"ts id t\n1 \"a ", b"ts    "] {
            let served = std::rc::Rc::new(std::cell::Cell::new(0));
            let endless = Endless {
                served: served.clone(),
                head,
            };
            let result = CsvSource::with_layout(endless, blanks(None)).and_then(|mut src| {
                while src.next_record()?.is_some() {}
                Ok(())
            });
            assert!(
                matches!(result, Err(FileError::RecordTooLarge { .. })),
                "{result:?}"
            );
            assert!(served.get() < 2 * MAX_RECORD_BYTES as u64);
        }
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
