//! The bounded sample: what `profile suggest` reads of a file, whatever its size.

use std::io::{Read, Seek, SeekFrom};

use super::SuggestError;

/// The most bytes of a file [`Sample::read`] reads.
pub const MAX_SAMPLE_BYTES: usize = 64 * 1024;
/// The most lines [`Sample::read`] keeps.
pub const MAX_LINES: usize = 2_000;
/// The longest line [`Sample::read`] accepts.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// The most bytes [`Sample::read_file`] reads from the end of a longer file.
pub const MAX_TAIL_BYTES: usize = 16 * 1024;
/// How many places between the head and the tail of a longer file
/// [`Sample::read_file`] reads, evenly spaced, and how many bytes at each: a year of
/// hourly readings shows its summer as well as its January, whatever the file's size.
pub const SPREAD_PLACES: u64 = 7;
pub const SPREAD_BYTES: usize = 8 * 1024;

/// The first lines of a file, bounded: at most [`MAX_SAMPLE_BYTES`] bytes and
/// [`MAX_LINES`] lines, each without its line ending.
#[derive(Debug, Clone)]
pub struct Sample {
    pub(super) lines: Vec<Vec<u8>>,
    /// The whole lines of the file's last [`MAX_TAIL_BYTES`] when the head did not reach
    /// them (a footer after the data); empty otherwise.
    pub(super) tail: Vec<Vec<u8>>,
    /// Whole lines read at [`SPREAD_PLACES`] places evenly spaced between the head and
    /// the tail of a longer file; empty otherwise. Only the values' ranges use them.
    pub(super) spread: Vec<Vec<u8>>,
}

impl Sample {
    /// Reads the sample from `r`, reading no more than [`MAX_SAMPLE_BYTES`] bytes. A
    /// last line cut by the byte limit is dropped. Refuses an empty file, a NUL or other
    /// binary control byte, and a line longer than [`MAX_LINE_BYTES`].
    pub fn read(r: impl Read) -> Result<Self, SuggestError> {
        let mut buf = Vec::with_capacity(8 * 1024);
        r.take(MAX_SAMPLE_BYTES as u64)
            .read_to_end(&mut buf)
            .map_err(|e| SuggestError::Read(e.to_string()))?;
        let full = buf.len() >= MAX_SAMPLE_BYTES;
        Self::from_bytes(&buf, full)
    }

    /// The sample of `buf` (at most its first [`MAX_SAMPLE_BYTES`]); `cut` says the
    /// file goes on after `buf`, so an unterminated last line is incomplete.
    pub fn from_bytes(buf: &[u8], cut: bool) -> Result<Self, SuggestError> {
        let buf = &buf[..buf.len().min(MAX_SAMPLE_BYTES)];
        let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
        // A NUL, or control bytes in more than one byte in a hundred: not text. A stray
        // control character in a cell is the loader's to refuse, row by row.
        let control = |b: &u8| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') || *b == 0x7F;
        let many = buf.iter().filter(|b| control(b)).count() * 100 > buf.len();
        if let Some(i) = buf.iter().position(|b| *b == 0 || many && control(b)) {
            let line = buf[..i].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(SuggestError::Binary { byte: buf[i], line });
        }
        let mut lines = Vec::new();
        let mut rest = buf;
        while !rest.is_empty() && lines.len() < MAX_LINES {
            let (line, next, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            let n = lines.len() + 1;
            if line.len() > MAX_LINE_BYTES {
                return Err(SuggestError::LineTooLong { line: n });
            }
            if !ended && cut {
                if lines.is_empty() {
                    return Err(SuggestError::LineTooLong { line: 1 });
                }
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            lines.push(line.to_vec());
            rest = next;
        }
        if lines.iter().all(|l| l.iter().all(u8::is_ascii_whitespace)) {
            return Err(SuggestError::Empty);
        }
        Ok(Self {
            lines,
            tail: Vec::new(),
            spread: Vec::new(),
        })
    }

    /// [`Sample::read`], and the last lines of a file longer than the sample (at most
    /// [`MAX_TAIL_BYTES`]; the first, cut line dropped, and lines over
    /// [`MAX_LINE_BYTES`] left out), so a footer after the data is seen.
    pub fn read_file(mut f: impl Read + Seek) -> Result<Self, SuggestError> {
        let read = |e: std::io::Error| SuggestError::Read(e.to_string());
        let mut sample = Self::read(&mut f)?;
        let len = f.seek(SeekFrom::End(0)).map_err(read)?;
        let head = MAX_SAMPLE_BYTES as u64;
        if len <= head {
            return Ok(sample);
        }
        let start = len.saturating_sub(MAX_TAIL_BYTES as u64).max(head);
        sample.tail = whole_lines(&mut f, start, MAX_TAIL_BYTES, false).map_err(read)?;
        // Between the head and the tail, a few places evenly spaced.
        let between = start.saturating_sub(head);
        if between > SPREAD_BYTES as u64 * SPREAD_PLACES {
            for k in 1..=SPREAD_PLACES {
                let at = head + between * k / (SPREAD_PLACES + 1);
                let lines = whole_lines(&mut f, at, SPREAD_BYTES, true).map_err(read)?;
                sample.spread.extend(lines);
            }
        }
        Ok(sample)
    }

    /// The number of lines kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line was kept (never true for a sample [`Sample::read`] returns).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// The whole lines of the `max` bytes of `f` from `start`: the first (cut) line dropped,
/// the last one too when `cut_end` (more of the file follows), and lines over
/// [`MAX_LINE_BYTES`] or holding a NUL left out.
fn whole_lines(
    f: &mut (impl Read + Seek),
    start: u64,
    max: usize,
    cut_end: bool,
) -> std::io::Result<Vec<Vec<u8>>> {
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(max);
    f.take(max as u64).read_to_end(&mut buf)?;
    let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
    lines.remove(0);
    if cut_end {
        lines.pop();
    }
    Ok(lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| l.len() <= MAX_LINE_BYTES && !l.contains(&0))
        .map(<[u8]>::to_vec)
        .collect())
}
