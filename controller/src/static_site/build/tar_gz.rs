//! Gzipped tar archives, read as a stream. The `tar` crate folds GNU long names and pax
//! headers into the entries it yields; the headers themselves are bounded by capping the
//! whole decompressed stream, not only the file contents the checker counts.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use tar::{Archive, EntryType};

use super::{BuildError, Checker, EntryName};

/// Header bytes allowed per entry on top of the content limit: a 512-byte header plus a long
/// name or pax record of a few KiB. A stream that decompresses to more is a bomb made of
/// headers.
const HEADER_ALLOWANCE_PER_ENTRY: u64 = 8 * 1024;

/// Reads every entry of the `.tar.gz` stream `reader` into `checker`.
pub(super) fn read<R: Read>(reader: R, checker: &mut Checker<'_>) -> Result<(), BuildError> {
    let limits = checker.limits;
    let cap = limits.max_total_bytes.saturating_add(
        limits
            .max_entries
            .saturating_add(1)
            .saturating_mul(HEADER_ALLOWANCE_PER_ENTRY),
    );
    let mut capped = Capped {
        inner: MultiGzDecoder::new(reader),
        remaining: cap,
        exceeded: false,
    };
    let mut last_entry = String::from("(first entry)");
    let outcome = read_entries(&mut capped, checker, &mut last_entry);
    if capped.exceeded {
        return Err(BuildError::TooLarge {
            entry: last_entry,
            limit: limits.max_total_bytes,
        });
    }
    outcome
}

fn read_entries<R: Read>(
    reader: R,
    checker: &mut Checker<'_>,
    last_entry: &mut String,
) -> Result<(), BuildError> {
    let mut archive = Archive::new(reader);
    for entry in archive.entries().map_err(|e| unreadable(&e))? {
        let mut entry = entry.map_err(|e| unreadable(&e))?;
        let raw = entry.path_bytes().into_owned();
        *last_entry = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            // Archive-wide pax metadata, not a file.
            continue;
        }
        let name = checker.entry(&raw)?;
        refuse_special(kind, last_entry)?;
        match name {
            EntryName::File(key) if kind.is_file() => checker.file(&raw, key, &mut entry)?,
            EntryName::File(_) if kind.is_dir() => {}
            EntryName::Directory if kind.is_dir() || kind.is_file() => {}
            _ => {
                return Err(BuildError::NotAFile {
                    entry: last_entry.clone(),
                    kind: "name ending in / that is not a directory",
                });
            }
        }
    }
    Ok(())
}

/// Links and devices are refused whatever their name.
fn refuse_special(kind: EntryType, entry: &str) -> Result<(), BuildError> {
    if kind.is_symlink() {
        return Err(BuildError::Symlink {
            entry: entry.to_owned(),
        });
    }
    let described = if kind.is_hard_link() {
        "hard link"
    } else if kind.is_character_special() || kind.is_block_special() {
        "device"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_file() || kind.is_dir() {
        return Ok(());
    } else {
        "special entry"
    };
    Err(BuildError::NotAFile {
        entry: entry.to_owned(),
        kind: described,
    })
}

fn unreadable(error: &io::Error) -> BuildError {
    BuildError::Unreadable {
        message: error.to_string(),
    }
}

/// The decompressed stream, failing once more than `remaining` bytes came out of it.
struct Capped<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = n as u64;
        if n64 > self.remaining {
            self.exceeded = true;
            return Err(io::Error::other("decompressed archive exceeds its limit"));
        }
        self.remaining -= n64;
        Ok(n)
    }
}
