//! The reader under the CSV parser: hashes every byte, tracks physical lines, and
//! bounds the memory a single record can take.

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::ByteRecord;

use super::{FileError, MAX_RECORD_BYTES, READ_BUFFER};

/// Reads one record into `record`; returns its physical line, or `None` at the end.
pub(super) fn read_record<R: Read>(
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
pub(super) struct HashingReader<R> {
    inner: R,
    pub(super) hasher: blake3::Hasher,
    pub(super) bytes: u64,
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
    pub(super) fn new(inner: R) -> Self {
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

    pub(super) fn stop_tracking(&mut self) {
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
