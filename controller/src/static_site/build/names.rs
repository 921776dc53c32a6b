//! Entry names → object keys. An archive entry's name is untrusted input: it becomes an S3 key
//! and a CloudFront path, so every name is checked against a fixed set of rules and normalised
//! before anything else looks at it. A name that breaks a rule refuses the whole build (the
//! live site stays as it is); the error names the entry and the rule.

use std::fmt;

/// Where Stagehand keeps its own records in the site bucket (manifests, the served revision):
/// a build may not write there.
pub const RESERVED_PREFIX: &str = ".stagehand/";

/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why an entry name was refused. `as_str` is the rule's name in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Not valid UTF-8 (S3 keys are UTF-8).
    NotUtf8,
    /// Empty, or only `.` and `/`.
    Empty,
    /// Starts with `/`.
    AbsolutePath,
    /// Contains a `..` segment (zip-slip).
    ParentSegment,
    /// Contains `\`: a Windows separator that some tools treat as `/`.
    Backslash,
    /// Starts with a drive letter (`C:`).
    DriveLetter,
    /// Contains a control character (NUL, newline, ...).
    ControlCharacter,
    /// Under [`RESERVED_PREFIX`].
    ReservedPrefix,
    /// Longer than [`MAX_KEY_BYTES`].
    TooLong,
}

impl NameRule {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotUtf8 => "names must be UTF-8",
            Self::Empty => "names must not be empty",
            Self::AbsolutePath => "absolute paths are not allowed",
            Self::ParentSegment => "`..` path segments are not allowed",
            Self::Backslash => "backslashes are not allowed",
            Self::DriveLetter => "drive letters are not allowed",
            Self::ControlCharacter => "control characters are not allowed",
            Self::ReservedPrefix => "`.stagehand/` is reserved for Stagehand's manifests",
            Self::TooLong => "S3 keys are at most 1024 bytes",
        }
    }
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entry name stands for once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryName {
    /// A file: its object key (`assets/app.js`).
    File(String),
    /// A directory entry (`assets/`, `./`): not an object.
    Directory,
}

/// The object key for an entry name, or the rule it breaks.
///
/// Normalisation: `.` segments and empty segments are dropped (`./a//b` → `a/b`), so two names
/// that differ only by them are duplicates. Nothing else changes: S3 keys are case-sensitive
/// and no Unicode normalisation is applied (two differently encoded names are two objects).
pub fn normalise(raw: &[u8]) -> Result<EntryName, NameRule> {
    let name = std::str::from_utf8(raw).map_err(|_| NameRule::NotUtf8)?;
    if name.chars().any(char::is_control) {
        return Err(NameRule::ControlCharacter);
    }
    if name.contains('\\') {
        return Err(NameRule::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameRule::AbsolutePath);
    }
    if has_drive_letter(name) {
        return Err(NameRule::DriveLetter);
    }
    let mut segments = Vec::new();
    for segment in name.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(NameRule::ParentSegment),
            other => segments.push(other),
        }
    }
    if segments.is_empty() {
        return if name.is_empty() {
            Err(NameRule::Empty)
        } else {
            Ok(EntryName::Directory)
        };
    }
    if name.ends_with('/') {
        return Ok(EntryName::Directory);
    }
    let key = segments.join("/");
    if key.len() > MAX_KEY_BYTES {
        return Err(NameRule::TooLong);
    }
    if key.starts_with(RESERVED_PREFIX) || key == RESERVED_PREFIX.trim_end_matches('/') {
        return Err(NameRule::ReservedPrefix);
    }
    Ok(EntryName::File(key))
}

/// `C:` or `c:` at the start.
fn has_drive_letter(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_or_refused_by_rule() {
        let file = |k: &str| Ok(EntryName::File(k.to_owned()));
        let cases: &[(&[u8], Result<EntryName, NameRule>)] = &[
            (b"index.html", file("index.html")),
            (b"./index.html", file("index.html")),
            (b"assets//app.js", file("assets/app.js")),
            (b"assets/./app.js", file("assets/app.js")),
            (b"a/b/C.JS", file("a/b/C.JS")),
            (b"assets/", Ok(EntryName::Directory)),
            (b"./", Ok(EntryName::Directory)),
            (b"", Err(NameRule::Empty)),
            (b"/etc/passwd", Err(NameRule::AbsolutePath)),
            (b"../evil.html", Err(NameRule::ParentSegment)),
            (b"assets/../../evil.html", Err(NameRule::ParentSegment)),
            (b"assets\\..\\evil.html", Err(NameRule::Backslash)),
            (b"C:/evil.html", Err(NameRule::DriveLetter)),
            (b"c:evil.html", Err(NameRule::DriveLetter)),
            (b"a\0b", Err(NameRule::ControlCharacter)),
            (b"a\nb", Err(NameRule::ControlCharacter)),
            (b"\xff.html", Err(NameRule::NotUtf8)),
            (
                b".stagehand/revisions/x.json",
                Err(NameRule::ReservedPrefix),
            ),
            (b"./.stagehand//served.json", Err(NameRule::ReservedPrefix)),
            (b".stagehandx/ok.txt", file(".stagehandx/ok.txt")),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                normalise(raw),
                *expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(normalise(&[b'a'; 1025]), Err(NameRule::TooLong));
    }
}
