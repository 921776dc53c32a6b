//! Where an entry's content goes while the archive is read: nowhere ([`Discard`], the checking
//! pass), or into files of a temporary directory ([`SpillDir`], the upload pass), from which
//! uploads stream it with bounded concurrency without holding it in memory.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Receives each checked file of an archive.
pub trait ContentSink {
    /// Takes one file's content. It may read all of `content` or none of it: the reader
    /// drains what is left (every byte must be hashed and counted either way).
    fn accept(&mut self, key: &str, content: &mut dyn Read) -> io::Result<()>;
}

/// Keeps nothing: the checking pass only needs the hashes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl ContentSink for Discard {
    fn accept(&mut self, _key: &str, _content: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }
}

/// Writes files into a temporary directory, removed when this is dropped. Files are named by
/// a counter, never by their key: a key is only a lookup into [`SpillDir::path`].
#[derive(Debug)]
pub struct SpillDir {
    dir: tempfile::TempDir,
    /// Only these keys are written; `None`: every key.
    wanted: Option<BTreeSet<String>>,
    files: HashMap<String, PathBuf>,
}

impl SpillDir {
    /// A new directory under `parent` (the controller's scratch volume), for every key.
    pub fn new_in(parent: &Path) -> io::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("stagehand-build-")
                .tempdir_in(parent)?,
            wanted: None,
            files: HashMap::new(),
        })
    }

    /// Only `keys` are written (the ones a plan uploads); the rest pass through unstored.
    #[must_use]
    pub fn only(mut self, keys: impl IntoIterator<Item = String>) -> Self {
        self.wanted = Some(keys.into_iter().collect());
        self
    }

    /// Where `key`'s content was written.
    pub fn path(&self, key: &str) -> Option<&Path> {
        self.files.get(key).map(PathBuf::as_path)
    }

    /// How many files were written.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl ContentSink for SpillDir {
    fn accept(&mut self, key: &str, content: &mut dyn Read) -> io::Result<()> {
        if self.wanted.as_ref().is_some_and(|w| !w.contains(key)) {
            return Ok(());
        }
        let path = self.dir.path().join(self.files.len().to_string());
        let mut file = BufWriter::new(File::create(&path)?);
        io::copy(content, &mut file)?;
        file.flush()?;
        self.files.insert(key.to_owned(), path);
        Ok(())
    }
}
