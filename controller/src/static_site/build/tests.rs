//! Archives built here, in memory, with the `zip` and `tar` crates — good ones and hostile ones
//! — read through the real streaming readers.

use std::io::{Cursor, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::*;
use crate::base::{Classify, ErrorClass};

fn options(year: u16) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::from_date_and_time(year, 1, 2, 3, 4, 5).unwrap())
}

/// A zip of `(name, content)` files, stamped with `year`.
fn zip_of(files: &[(&str, &[u8])], year: u16) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in files {
        writer.start_file(*name, options(year)).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn zip_with_symlink() -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file("index.html", options(2024)).unwrap();
    writer.write_all(b"<html>").unwrap();
    writer
        .add_symlink("secrets.txt", "/etc/shadow", options(2024))
        .unwrap();
    writer.finish().unwrap().into_inner()
}

/// A `.tar.gz` of entries with raw names (the `tar` builder refuses `..`, an attacker's tool
/// does not).
fn tar_gz_of(entries: &[(&[u8], EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, kind, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(*kind);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        if kind.is_symlink() {
            header.set_link_name("/etc/shadow").unwrap();
        }
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

use tar::EntryType;

fn read(bytes: &[u8], format: ArchiveFormat, limits: ArchiveLimits) -> Result<Build, BuildError> {
    read_archive(Cursor::new(bytes), format, limits, &mut Discard)
}

fn read_zip(bytes: &[u8]) -> Result<Build, BuildError> {
    read(bytes, ArchiveFormat::Zip, ArchiveLimits::default())
}

fn keys(build: &Build) -> Vec<&str> {
    build.entries.iter().map(|e| e.key.as_str()).collect()
}

const SITE: &[(&str, &[u8])] = &[
    ("index.html", b"<html>home</html>"),
    ("assets/app.3f9c.js", b"console.log(1)"),
    ("./assets/app.css", b"body{}"),
];

#[test]
fn a_zip_build_lists_every_file_with_its_size_and_sha256() {
    let build = read_zip(&zip_of(SITE, 2024)).unwrap();
    assert_eq!(
        keys(&build),
        ["assets/app.3f9c.js", "assets/app.css", "index.html"]
    );
    let index = &build.entries[2];
    assert_eq!(index.size, 17);
    assert_eq!(index.sha256, Sha256Digest::of(b"<html>home</html>"));
    assert_eq!(build.total_bytes, 17 + 14 + 6);
}

#[test]
fn a_tar_gz_build_reads_like_the_zip_of_the_same_files() {
    let tar = tar_gz_of(&[
        (b"./", EntryType::Directory, b""),
        (b"./index.html", EntryType::Regular, b"<html>home</html>"),
        (b"assets/", EntryType::Directory, b""),
        (b"assets/app.3f9c.js", EntryType::Regular, b"console.log(1)"),
        (b"assets/app.css", EntryType::Regular, b"body{}"),
    ]);
    let from_tar = read(&tar, ArchiveFormat::TarGz, ArchiveLimits::default()).unwrap();
    assert_eq!(from_tar, read_zip(&zip_of(SITE, 2024)).unwrap());
}

#[test]
fn identical_content_with_new_timestamps_reads_as_the_same_build() {
    let old = zip_of(SITE, 2020);
    let rebuilt = zip_of(SITE, 2026);
    assert_ne!(old, rebuilt, "the archives differ in their timestamps");
    assert_eq!(read_zip(&old).unwrap(), read_zip(&rebuilt).unwrap());
}

#[test]
fn hostile_names_are_refused_naming_the_entry_and_the_rule() {
    let cases: &[(&str, NameRule)] = &[
        ("../../etc/cron.d/evil", NameRule::ParentSegment),
        ("assets/../../evil.html", NameRule::ParentSegment),
        ("/etc/passwd", NameRule::AbsolutePath),
        ("assets\\..\\evil.html", NameRule::Backslash),
        ("C:/evil.html", NameRule::DriveLetter),
        (".stagehand/served.json", NameRule::ReservedPrefix),
    ];
    for (name, rule) in cases {
        let archive = zip_of(&[("index.html", b"ok"), (name, b"evil")], 2024);
        let error = read_zip(&archive).unwrap_err();
        assert!(
            matches!(&error, BuildError::UnsafeName { entry, rule: r } if entry == name && r == rule),
            "{name}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("{name:?}")) && message.contains(rule.as_str()),
            "{message}"
        );
        assert_eq!(error.class(), ErrorClass::Stalled);
    }
}

#[test]
fn a_zip_slip_tar_is_refused_too() {
    let tar = tar_gz_of(&[(b"../evil.sh", EntryType::Regular, b"rm -rf /")]);
    let error = read(&tar, ArchiveFormat::TarGz, ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(&error, BuildError::UnsafeName { entry, rule: NameRule::ParentSegment } if entry == "../evil.sh"),
        "{error:?}"
    );
}

#[test]
fn symlinks_are_refused_in_both_formats() {
    let error = read_zip(&zip_with_symlink()).unwrap_err();
    assert!(
        matches!(&error, BuildError::Symlink { entry } if entry == "secrets.txt"),
        "{error:?}"
    );
    assert!(error.to_string().contains("symbolic links"), "{error}");

    let tar = tar_gz_of(&[
        (b"index.html", EntryType::Regular, b"ok"),
        (b"secrets.txt", EntryType::Symlink, b""),
    ]);
    let error = read(&tar, ArchiveFormat::TarGz, ArchiveLimits::default()).unwrap_err();
    assert!(
        matches!(&error, BuildError::Symlink { entry } if entry == "secrets.txt"),
        "{error:?}"
    );
}

#[test]
fn links_and_devices_in_a_tar_are_refused() {
    for (kind, described) in [
        (EntryType::Link, "hard link"),
        (EntryType::Char, "device"),
        (EntryType::Fifo, "FIFO"),
    ] {
        let tar = tar_gz_of(&[(b"thing", kind, b"")]);
        let error = read(&tar, ArchiveFormat::TarGz, ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(&error, BuildError::NotAFile { entry, kind } if entry == "thing" && *kind == described),
            "{error:?}"
        );
    }
}

#[test]
fn names_that_normalise_to_one_key_are_duplicates() {
    let archive = zip_of(&[("assets/app.js", b"a"), ("./assets//app.js", b"b")], 2024);
    let error = read_zip(&archive).unwrap_err();
    assert!(
        matches!(&error, BuildError::Duplicate { entry, first, key }
            if entry == "./assets//app.js" && first == "assets/app.js" && key == "assets/app.js"),
        "{error:?}"
    );
    // Tar allows the very same name twice (a later entry silently wins when extracted).
    let tar = tar_gz_of(&[
        (b"index.html", EntryType::Regular, b"one"),
        (b"index.html", EntryType::Regular, b"two"),
    ]);
    let error = read(&tar, ArchiveFormat::TarGz, ArchiveLimits::default()).unwrap_err();
    assert!(matches!(error, BuildError::Duplicate { .. }), "{error:?}");
}

/// Counts what a sink is handed, to prove decompression stops at the limit.
#[derive(Default)]
struct Counting(u64);

impl ContentSink for Counting {
    fn accept(&mut self, _key: &str, content: &mut dyn Read) -> std::io::Result<()> {
        self.0 += std::io::copy(content, &mut std::io::sink())?;
        Ok(())
    }
}

#[test]
fn a_bomb_by_ratio_stops_one_byte_past_the_limit() {
    let zeros = vec![0_u8; 4 << 20];
    let archive = zip_of(&[("small.txt", b"12345"), ("bomb.bin", &zeros)], 2024);
    assert!(
        archive.len() < 64 << 10,
        "compresses well: {}",
        archive.len()
    );
    let limits = ArchiveLimits {
        max_entries: 100,
        max_total_bytes: 1 << 20,
    };
    let mut counting = Counting::default();
    let error = read_archive(
        Cursor::new(&archive),
        ArchiveFormat::Zip,
        limits,
        &mut counting,
    )
    .unwrap_err();
    assert!(
        matches!(&error, BuildError::TooLarge { entry, limit } if entry == "bomb.bin" && *limit == 1 << 20),
        "{error:?}"
    );
    assert!(
        counting.0 <= (1 << 20) + 1,
        "decompressed {} bytes",
        counting.0
    );

    let tar = tar_gz_of(&[(b"bomb.bin", EntryType::Regular, &zeros)]);
    let error = read(&tar, ArchiveFormat::TarGz, limits).unwrap_err();
    assert!(matches!(error, BuildError::TooLarge { .. }), "{error:?}");
}

#[test]
fn a_bomb_by_count_is_refused_at_the_first_entry_over_the_limit() {
    let names: Vec<String> = (0..11).map(|i| format!("f{i:02}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let limits = ArchiveLimits {
        max_entries: 10,
        max_total_bytes: 1 << 20,
    };
    let error = read(&zip_of(&files, 2024), ArchiveFormat::Zip, limits).unwrap_err();
    assert!(
        matches!(&error, BuildError::TooManyEntries { entry, limit: 10 } if entry == "f10.txt"),
        "{error:?}"
    );
    assert_eq!(error.reason(), "TooManyEntries");
}

#[test]
fn garbage_and_truncated_archives_are_unreadable_not_panics() {
    let error = read_zip(b"this is not a zip").unwrap_err();
    assert!(matches!(error, BuildError::Unreadable { .. }), "{error:?}");
    let whole = zip_of(SITE, 2024);
    let error = read_zip(&whole[..whole.len() / 2]).unwrap_err();
    assert!(matches!(error, BuildError::Unreadable { .. }), "{error:?}");
    let error = read(
        b"\x1f\x8b garbage",
        ArchiveFormat::TarGz,
        ArchiveLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(error, BuildError::Unreadable { .. }), "{error:?}");
}

/// A stream that breaks off after `good` bytes, like a dropped download.
struct Broken<'a> {
    bytes: &'a [u8],
    good: usize,
}

impl Read for Broken<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            ));
        }
        let n = buf.len().min(self.good).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn a_broken_download_is_recoverable_not_a_bad_archive() {
    let whole = zip_of(SITE, 2024);
    let error = read_archive(
        Broken {
            bytes: &whole,
            good: 40,
        },
        ArchiveFormat::Zip,
        ArchiveLimits::default(),
        &mut Discard,
    )
    .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Recoverable, "{error:?}");
}

#[test]
fn a_spill_dir_keeps_only_the_wanted_files_byte_for_byte() {
    let parent = std::env::temp_dir();
    let spill = SpillDir::new_in(&parent)
        .unwrap()
        .only(["index.html".to_owned()]);
    let archive = zip_of(SITE, 2024);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (build, spill) = runtime
        .block_on(read_archive_async(
            Cursor::new(archive),
            ArchiveFormat::Zip,
            ArchiveLimits::default(),
            spill,
        ))
        .unwrap();
    assert_eq!(build.entries.len(), 3, "every entry is still hashed");
    assert_eq!(spill.len(), 1);
    let path = spill.path("index.html").unwrap().to_owned();
    assert_eq!(std::fs::read(&path).unwrap(), b"<html>home</html>");
    assert!(spill.path("assets/app.css").is_none());
    drop(spill);
    assert!(!path.exists(), "the spill directory goes with its owner");
}
