//! A site build, read from its archive (zip or gzipped tar) as a stream and checked before
//! anything is uploaded.
//!
//! An archive is untrusted input: the build pipeline that produced it may be compromised or
//! simply wrong. Reading it checks every entry name ([`names`]), refuses symlinks, hard links
//! and device entries, duplicate keys (after normalisation), more than
//! [`ArchiveLimits::max_entries`] entries and more than [`ArchiveLimits::max_total_bytes`]
//! bytes of content. The size bound counts the bytes actually decompressed and stops
//! decompressing one byte past it: sizes in headers are never trusted (a zip bomb lies in
//! them). Each refusal is a [`BuildError`] naming the entry and the rule; the whole build is
//! refused, so the live site is never half-updated from a bad archive.
//!
//! Memory does not grow with content: each entry is streamed through a SHA-256 hasher into a
//! [`ContentSink`], and only the per-entry result (key, size, hash) is kept — about 150 bytes
//! an entry. The intended use is two passes: observe reads the archive with [`Discard`] (hash
//! and validate; nothing is stored), the plan decides which keys need uploading, and act reads
//! the archive again into a [`SpillDir`] restricted to those keys, then uploads each file from
//! disk. A resync with an unchanged archive reads it not at all (the build is cached by the
//! archive's version).
//!
//! Zip archives are read with the `zip` crate's streaming reader, which compares every local
//! header with the central directory at the end of the stream (a "cloaked" archive that shows
//! different names to different readers is refused) and learns there which entries are
//! symlinks. Its one limit: entries written with a trailing data descriptor (the sizes after the
//! data, as streaming zip writers do) cannot be read from a stream; such archives are refused
//! as unreadable with the zip crate's reason — `zip -r` and `.tar.gz` builds are fine.

mod names;
mod sink;
mod tar_gz;
mod zip_stream;

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;

use crate::aws::s3::Sha256Digest;
use crate::base::{Classify, ErrorClass};

pub use self::names::{EntryName, MAX_KEY_BYTES, NameRule, RESERVED_PREFIX, normalise};
pub use self::sink::{ContentSink, Discard, SpillDir};

/// Bounds on what one archive may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Entries of any kind (directories too: a million empty directories is a bomb as well).
    pub max_entries: u64,
    /// Bytes of file content, decompressed.
    pub max_total_bytes: u64,
}

impl ArchiveLimits {
    /// A large single-page app has a few thousand files; 100,000 leaves room for documentation
    /// sites while bounding the manifest (≈ 200 bytes an entry) and the work of one deploy.
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
    /// 2 GiB of content: far above any site, small enough that a spill directory fits on a
    /// node's ephemeral storage.
    pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 2 << 30;
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_total_bytes: Self::DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

/// The archive formats `source.archive` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    Zip,
    /// `.tar.gz` or `.tgz`.
    TarGz,
}

impl ArchiveFormat {
    /// From the archive's key, as the CRD allows it (`.zip`, `.tar.gz`, `.tgz`).
    #[expect(
        clippy::case_sensitive_file_extension_comparisons,
        reason = "the CRD's CEL rule admits exactly these lower-case suffixes"
    )]
    pub fn of_key(key: &str) -> Option<Self> {
        if key.ends_with(".zip") {
            Some(Self::Zip)
        } else if key.ends_with(".tar.gz") || key.ends_with(".tgz") {
            Some(Self::TarGz)
        } else {
            None
        }
    }
}

/// One file of a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildEntry {
    /// The object key (normalised entry name).
    pub key: String,
    /// Bytes of content, as decompressed.
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// A checked build: its files sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Build {
    pub entries: Vec<BuildEntry>,
    /// The sum of the entries' sizes.
    pub total_bytes: u64,
}

/// Why an archive was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("archive entry {entry:?} refused: {rule}")]
    UnsafeName { entry: String, rule: NameRule },
    #[error("archive entry {entry:?} refused: symbolic links are not allowed")]
    Symlink { entry: String },
    #[error(
        "archive entry {entry:?} refused: only regular files and directories are allowed, this is a {kind}"
    )]
    NotAFile { entry: String, kind: &'static str },
    #[error(
        "archive entry {entry:?} refused: it is the same object key {key:?} as entry {first:?}"
    )]
    Duplicate {
        entry: String,
        first: String,
        key: String,
    },
    #[error("archive refused at entry {entry:?}: more than {limit} entries")]
    TooManyEntries { entry: String, limit: u64 },
    #[error("archive refused at entry {entry:?}: more than {limit} bytes of content decompressed")]
    TooLarge { entry: String, limit: u64 },
    #[error("archive entry {entry:?} refused: encrypted entries are not allowed")]
    Encrypted { entry: String },
    /// Not a valid archive of its format (truncated, corrupt, cloaked, unsupported).
    #[error("archive unreadable: {message}")]
    Unreadable { message: String },
    /// Reading the source stream failed (the download broke off): worth another try.
    #[error("reading the archive: {0}")]
    Source(#[source] io::Error),
    /// The sink could not take an entry (disk full): worth another try.
    #[error("storing archive entry {entry:?}: {source}")]
    Sink {
        entry: String,
        #[source]
        source: io::Error,
    },
}

impl Classify for BuildError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Source(_) | Self::Sink { .. } => ErrorClass::Recoverable,
            _ => ErrorClass::Stalled,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::UnsafeName { .. } => "UnsafeEntryName",
            Self::Symlink { .. } => "SymlinkEntry",
            Self::NotAFile { .. } => "UnsupportedEntryType",
            Self::Duplicate { .. } => "DuplicateEntry",
            Self::TooManyEntries { .. } => "TooManyEntries",
            Self::TooLarge { .. } => "ArchiveTooLarge",
            Self::Encrypted { .. } => "EncryptedEntry",
            Self::Unreadable { .. } => "ArchiveUnreadable",
            Self::Source(_) => "SourceReadFailed",
            Self::Sink { .. } => "SpillFailed",
        }
    }
}

/// Reads and checks a whole archive from `reader`, streaming each file into `sink`.
pub fn read_archive<R: Read>(
    reader: R,
    format: ArchiveFormat,
    limits: ArchiveLimits,
    sink: &mut dyn ContentSink,
) -> Result<Build, BuildError> {
    let source_failed = Arc::new(AtomicBool::new(false));
    let reader = SourceReader {
        inner: reader,
        failed: Arc::clone(&source_failed),
    };
    let mut checker = Checker::new(limits, sink);
    let result = match format {
        ArchiveFormat::Zip => zip_stream::read(reader, &mut checker),
        ArchiveFormat::TarGz => tar_gz::read(reader, &mut checker),
    };
    match result {
        Ok(()) => Ok(checker.finish()),
        // A broken download surfaces as whatever the decoder made of it: the source's own
        // failure is what to report (and retry), not a corrupt archive.
        Err(BuildError::Unreadable { message }) if source_failed.load(Ordering::Relaxed) => Err(
            BuildError::Source(io::Error::other(format!("the stream failed: {message}"))),
        ),
        Err(e) => Err(e),
    }
}

/// [`read_archive`] from an async stream (an S3 `GetObject` body): the decoders are
/// synchronous, so they run on a blocking thread reading the stream through a bridge.
pub async fn read_archive_async<R, S>(
    reader: R,
    format: ArchiveFormat,
    limits: ArchiveLimits,
    mut sink: S,
) -> Result<(Build, S), BuildError>
where
    R: AsyncRead + Unpin + Send + 'static,
    S: ContentSink + Send + 'static,
{
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || {
        read_archive(bridge, format, limits, &mut sink).map(|build| (build, sink))
    })
    .await
    .map_err(|e| BuildError::Source(io::Error::other(e)))?
}

/// The archive's bytes, remembering whether reading them failed.
struct SourceReader<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })
    }
}

/// What both formats share: the rules applied to every entry, the running totals, and the
/// sink. A format reader calls [`Checker::entry`] once per entry of any kind and
/// [`Checker::file`] for the regular files among them.
struct Checker<'s> {
    limits: ArchiveLimits,
    sink: &'s mut dyn ContentSink,
    entries: Vec<BuildEntry>,
    /// Key → the raw name that first produced it.
    seen: HashMap<String, String>,
    count: u64,
    total_bytes: u64,
}

impl<'s> Checker<'s> {
    fn new(limits: ArchiveLimits, sink: &'s mut dyn ContentSink) -> Self {
        Self {
            limits,
            sink,
            entries: Vec::new(),
            seen: HashMap::new(),
            count: 0,
            total_bytes: 0,
        }
    }

    /// Counts one entry of any kind against the limit and checks its name.
    fn entry(&mut self, raw: &[u8]) -> Result<EntryName, BuildError> {
        let shown = String::from_utf8_lossy(raw).into_owned();
        self.count += 1;
        if self.count > self.limits.max_entries {
            return Err(BuildError::TooManyEntries {
                entry: shown,
                limit: self.limits.max_entries,
            });
        }
        normalise(raw).map_err(|rule| BuildError::UnsafeName { entry: shown, rule })
    }

    /// Streams a regular file's content into the sink through the hasher, decompressing at
    /// most one byte more than the bytes left under the limit.
    fn file(&mut self, raw: &[u8], key: String, content: &mut dyn Read) -> Result<(), BuildError> {
        let shown = String::from_utf8_lossy(raw).into_owned();
        if let Some(first) = self.seen.get(&key) {
            return Err(BuildError::Duplicate {
                entry: shown,
                first: first.clone(),
                key,
            });
        }
        let remaining = self.limits.max_total_bytes - self.total_bytes;
        let mut hashing = HashingReader {
            inner: content.take(remaining.saturating_add(1)),
            hasher: Sha256::new(),
            count: 0,
            read_failed: false,
        };
        let stored = self
            .sink
            .accept(&key, &mut hashing)
            .and_then(|()| io::copy(&mut hashing, &mut io::sink()).map(drop));
        if let Err(error) = stored {
            return Err(if hashing.read_failed {
                BuildError::Unreadable {
                    message: format!("entry {shown:?}: {error}"),
                }
            } else {
                BuildError::Sink {
                    entry: shown,
                    source: error,
                }
            });
        }
        if hashing.count > remaining {
            return Err(BuildError::TooLarge {
                entry: shown,
                limit: self.limits.max_total_bytes,
            });
        }
        self.total_bytes += hashing.count;
        self.seen.insert(key.clone(), shown);
        self.entries.push(BuildEntry {
            key,
            size: hashing.count,
            sha256: digest(hashing.hasher),
        });
        Ok(())
    }

    fn finish(mut self) -> Build {
        self.entries.sort_by(|a, b| a.key.cmp(&b.key));
        Build {
            entries: self.entries,
            total_bytes: self.total_bytes,
        }
    }
}

/// The finished hash as the adapters' digest type. `Sha256Digest` is built from text only
/// (its bytes are private to `aws::s3`), hence the round trip through hex.
pub(crate) fn digest(hasher: Sha256) -> Sha256Digest {
    use std::fmt::Write as _;
    let hex = hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
    Sha256Digest::from_hex(&hex).unwrap_or_else(|| unreachable!("64 hex digits"))
}

/// Hashes and counts what passes through, and remembers whether the decoder below failed (a
/// corrupt entry) as opposed to the sink above (a full disk).
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    read_failed: bool,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .inspect_err(|_| self.read_failed = true)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
