//! Zip archives, read as a stream. Entries arrive through local headers; the central directory
//! at the end is compared with them (the zip crate's header-consistency check) and says which
//! entries are symlinks, which local headers cannot. A symlink is therefore refused only when
//! the stream ends, still before anything is uploaded.

use std::io::{self, Read};

use zip::read::{ZipFile, ZipFileEntry};
use zip::result::{ZipError, ZipResult};
use zip::unstable::stream::{ZipStreamReader, ZipStreamVisitor};

use super::{BuildError, Checker, EntryName};

/// Reads every entry of the zip stream `reader` into `checker`.
pub(super) fn read<R: Read>(reader: R, checker: &mut Checker<'_>) -> Result<(), BuildError> {
    let mut visitor = Visitor {
        checker,
        refused: None,
        first_symlink: None,
    };
    let visited = ZipStreamReader::new(reader)
        .enforce_header_consistency(true)
        .visit(&mut visitor);
    // Our own refusal travels through the zip crate as an error; it is the one to report.
    if let Some(refused) = visitor.refused {
        return Err(refused);
    }
    visited.map_err(unreadable)?;
    match visitor.first_symlink {
        Some(entry) => Err(BuildError::Symlink { entry }),
        None => Ok(()),
    }
}

fn unreadable(error: ZipError) -> BuildError {
    BuildError::Unreadable {
        message: match error {
            ZipError::UnsupportedArchive(what) => format!(
                "{what} (entries written with a trailing data descriptor by a streaming zip writer cannot be read streaming; build the archive with `zip -r` or as .tar.gz)"
            ),
            other => other.to_string(),
        },
    }
}

struct Visitor<'c, 's> {
    checker: &'c mut Checker<'s>,
    refused: Option<BuildError>,
    first_symlink: Option<String>,
}

impl Visitor<'_, '_> {
    fn refuse(&mut self, error: BuildError) -> ZipError {
        self.refused = Some(error);
        ZipError::Io(io::Error::other("refused by Stagehand"))
    }
}

impl ZipStreamVisitor for Visitor<'_, '_> {
    fn visit_file<R: Read>(&mut self, file: &mut ZipFile<'_, R>) -> ZipResult<()> {
        let raw = file.name_raw().to_vec();
        let name = match self.checker.entry(&raw) {
            Ok(name) => name,
            Err(e) => return Err(self.refuse(e)),
        };
        let EntryName::File(key) = name else {
            return Ok(());
        };
        if file.encrypted() {
            let entry = String::from_utf8_lossy(&raw).into_owned();
            return Err(self.refuse(BuildError::Encrypted { entry }));
        }
        match self.checker.file(&raw, key, file) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.refuse(e)),
        }
    }

    fn visit_additional_metadata(&mut self, metadata: &ZipFileEntry<'_>) -> ZipResult<()> {
        if self.first_symlink.is_none() && metadata.is_symlink() {
            self.first_symlink = Some(String::from_utf8_lossy(metadata.name_raw()).into_owned());
        }
        Ok(())
    }
}
