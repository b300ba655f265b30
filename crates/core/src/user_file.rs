//! Parse → check → execute: reading a file a user names (a manifest, a JSONL dataset, a
//! word list, a tokenizer, a checkpoint) without trusting it. Only regular files are
//! opened — a FIFO would block, `/dev/zero` never ends — the type is checked before the
//! open and again on the open handle, and every read stops at a byte limit however large
//! the file says it is (`take(limit + 1)`: `/proc` files report 0 bytes, and files grow).

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{BufRead, Read};
use std::path::Path;

/// Why a named file cannot be read.
#[derive(Debug)]
pub enum UserFileError {
    /// The path does not exist (or cannot be looked up).
    Missing(std::io::Error),
    /// The path is a directory, a FIFO, a device or a socket.
    NotRegular(&'static str),
    /// The file holds more than the limit.
    TooLarge { limit: u64 },
    /// The file could not be opened or read.
    Io(std::io::Error),
}

impl fmt::Display for UserFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(error) => write!(f, "{error}"),
            Self::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            Self::TooLarge { limit } => {
                write!(f, "it is larger than {}", human_bytes(*limit))
            }
            Self::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for UserFileError {}

impl UserFileError {
    /// Whether the path does not exist at all.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing(_))
    }
}

/// `bytes` as people write limits: `4 MiB`, `1 GiB`, or a byte count.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// `bytes` in binary units, to one decimal: `1.8 GiB`, `25.0 TiB`; under 1 KiB the count
/// itself, followed by `byte_unit` (`bytes`, or `B` in a table).
pub fn binary_size(bytes: u128, byte_unit: &str) -> String {
    let units = [byte_unit, "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = bytes as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < units.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} {byte_unit}")
    } else {
        format!("{x:.1} {}", units[unit])
    }
}

/// What a non-regular file is, for messages; `None` for a regular file.
fn irregular(metadata: &Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a file")
}

/// Checks that `path` is a regular file (following links) without opening it.
pub fn check_regular(path: &Path) -> Result<Metadata, UserFileError> {
    let metadata = std::fs::metadata(path).map_err(UserFileError::Missing)?;
    match irregular(&metadata) {
        Some(what) => Err(UserFileError::NotRegular(what)),
        None => Ok(metadata),
    }
}

/// Opens `path` for reading if it is a regular file. The open does not block even if the
/// path turned into a FIFO since it was checked, and the open handle is checked again.
pub fn open(path: &Path) -> Result<File, UserFileError> {
    check_regular(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking only matters for FIFOs, which are refused below; reads of a regular
        // file ignore it.
        options.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    }
    let file = options.open(path).map_err(UserFileError::Io)?;
    let metadata = file.metadata().map_err(UserFileError::Io)?;
    match irregular(&metadata) {
        Some(what) => Err(UserFileError::NotRegular(what)),
        None => Ok(file),
    }
}

/// The bytes of the regular file `path`, at most `limit` of them.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, UserFileError> {
    let file = open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(UserFileError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(UserFileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Where bytes stop being UTF-8: 1-based line and column (in characters).
pub fn utf8_error_position(bytes: &[u8], error: &std::str::Utf8Error) -> (usize, usize) {
    let valid = &bytes[..error.valid_up_to()];
    let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
    // The valid prefix is UTF-8, so this never falls back.
    let col = std::str::from_utf8(&valid[line_start..])
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// One line of a line-oriented file, read with a bound on its length.
#[derive(Debug)]
pub enum Line {
    /// The line's text, without its line break.
    Text(String),
    /// The line is longer than the limit; its `bytes` were skipped, not kept.
    TooLong { bytes: u64 },
    /// The line is not UTF-8 at this column (1-based, in characters).
    NotUtf8 { col: usize },
}

/// Reads `reader` line by line, never holding more than `max_line` bytes of one line:
/// a longer line is skipped to its end and reported as `Line::TooLong`. Yields
/// `(line number, line)`; stops at the end or at the first read error.
pub struct BoundedLines<R> {
    reader: R,
    max_line: usize,
    number: usize,
    done: bool,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(reader: R, max_line: usize) -> Self {
        Self {
            reader,
            max_line,
            number: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = Result<(usize, Line), std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut line = Vec::new();
        let mut skipped: u64 = 0;
        let mut ended = false;
        loop {
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if buffer.is_empty() {
                self.done = true;
                break;
            }
            let (chunk, used, newline) = match buffer.iter().position(|b| *b == b'\n') {
                Some(at) => (&buffer[..at], at + 1, true),
                None => (buffer, buffer.len(), false),
            };
            if skipped == 0 && line.len() + chunk.len() <= self.max_line {
                line.extend_from_slice(chunk);
            } else {
                skipped += (line.len() + chunk.len()) as u64;
                line.clear();
            }
            self.reader.consume(used);
            if newline {
                ended = true;
                break;
            }
        }
        if !ended && line.is_empty() && skipped == 0 {
            return None;
        }
        self.number += 1;
        if skipped > 0 {
            return Some(Ok((self.number, Line::TooLong { bytes: skipped })));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        // A UTF-8 byte-order mark (what Windows editors and some exporters write first) is
        // not part of the first record.
        if self.number == 1 && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        Some(Ok((
            self.number,
            match String::from_utf8(line) {
                Ok(text) => Line::Text(text),
                Err(e) => {
                    let bytes = e.as_bytes();
                    let (_, col) = utf8_error_position(bytes, &e.utf8_error());
                    Line::NotUtf8 { col }
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_line() {
        let text = "\u{feff}{\"prompt\": \"a\"}\n\u{feff}second\n";
        let lines: Vec<String> = BoundedLines::new(text.as_bytes(), 1024)
            .map(|l| match l {
                Ok((_, Line::Text(t))) => t,
                other => panic!("{other:?}"),
            })
            .collect();
        // Only a mark that starts the file is dropped.
        assert_eq!(lines, ["{\"prompt\": \"a\"}", "\u{feff}second"]);
    }

    #[test]
    fn long_lines_are_skipped_not_kept() {
        let text = format!("short\n{}\nafter\nlast", "x".repeat(100));
        let lines: Vec<_> =
            BoundedLines::new(std::io::BufReader::with_capacity(7, text.as_bytes()), 10)
                .map(|l| match l.expect("read") {
                    (n, Line::Text(t)) => format!("{n}:{t}"),
                    (n, Line::TooLong { bytes }) => format!("{n}:long {bytes}"),
                    (n, Line::NotUtf8 { col }) => format!("{n}:utf8 {col}"),
                })
                .collect();
        assert_eq!(lines, ["1:short", "2:long 100", "3:after", "4:last"]);
    }

    #[test]
    fn reads_stop_at_the_limit_and_refuse_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "12345").expect("write");
        assert_eq!(read(&path, 5).expect("fits"), b"12345");
        assert!(matches!(
            read(&path, 4),
            Err(UserFileError::TooLarge { limit: 4 })
        ));
        assert!(matches!(
            read(dir.path(), 4),
            Err(UserFileError::NotRegular(_))
        ));
        #[cfg(unix)]
        assert!(matches!(
            read(Path::new("/dev/zero"), 4),
            Err(UserFileError::NotRegular("a character device"))
        ));
        assert!(read(&dir.path().join("missing"), 4).is_err_and(|e| e.is_missing()));
    }

    #[test]
    fn utf8_errors_have_a_line_and_column() {
        let bytes: Vec<u8> = [b"ab\ncd\xc3\xa9f".as_slice(), &[0xff]].concat();
        let error = std::str::from_utf8(&bytes).expect_err("not UTF-8");
        assert_eq!(utf8_error_position(&bytes, &error), (2, 5));
    }
}
