//! What the bucket remembers about its own revisions, in two kinds of small JSON objects under
//! `.stagehand/` (which no build may write to):
//!
//! - `.stagehand/revisions/<revision>.json` — a [`Manifest`]: for every key of the revision, the
//!   object version that holds it, its SHA-256, size, content type and cache control. A rollback
//!   restores exactly these; pruning never deletes a version a kept manifest references.
//!   A manifest is rewritten (a new version of the same key) only when the versions holding
//!   the revision's content change — a rollback or a hand-edit repair copies a version, and the
//!   copy is then what holds the content.
//! - `.stagehand/served.json` — a [`Served`] record: the revision the site serves and the
//!   version of its manifest that was live when it was recorded, plus a sequence number that
//!   grows with every deploy (the invalidation's `CallerReference` derives from it).
//!
//! Both carry `format: 1` and are parsed strictly (unknown fields and other formats are
//! refused): a manifest decides what is deleted, so a record this build does not fully
//! understand is never acted on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::s3::Sha256Digest;
use crate::base::{Classify, ErrorClass};

/// The one format this build writes and reads.
pub const FORMAT: u32 = 1;

/// Where manifests live.
pub const REVISIONS_PREFIX: &str = ".stagehand/revisions/";

/// The served-revision record.
pub const SERVED_KEY: &str = ".stagehand/served.json";

/// The manifest key of `revision`.
pub fn manifest_key(revision: &str) -> String {
    format!("{REVISIONS_PREFIX}{revision}.json")
}

/// The revision a manifest key names, if it is one.
pub fn revision_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(REVISIONS_PREFIX)?
        .strip_suffix(".json")
        .filter(|r| !r.is_empty() && !r.contains('/'))
}

/// Where a revision's content came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestSource {
    pub bucket: String,
    /// The archive key, or the prefix.
    pub key: String,
    /// The archive's object version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The archive's SHA-256 (hex), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One key of a revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestObject {
    /// The object version holding this key's content.
    pub version_id: String,
    /// Hex.
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
}

impl ManifestObject {
    /// The content hash; `None` if the manifest holds something that is not one.
    pub fn digest(&self) -> Option<Sha256Digest> {
        Sha256Digest::from_hex(&self.sha256)
    }
}

/// A revision's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub revision: String,
    /// RFC 3339, when the revision was first deployed.
    pub created_at: String,
    pub source: ManifestSource,
    /// Key → object.
    pub objects: BTreeMap<String, ManifestObject>,
}

impl Manifest {
    /// Total bytes of the revision's objects.
    pub fn total_bytes(&self) -> u64 {
        self.objects.values().map(|o| o.size).sum()
    }

    /// The JSON written to the bucket (keys sorted, so equal manifests are equal bytes).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses a stored manifest strictly.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Self = parse_versioned(key, bytes)?;
        for (object_key, object) in &manifest.objects {
            if object.digest().is_none() {
                return Err(ManifestError::Invalid {
                    key: key.to_owned(),
                    message: format!("object {object_key:?} has no valid sha256"),
                });
            }
        }
        if revision_of_key(key).is_some_and(|r| r != manifest.revision) {
            return Err(ManifestError::Invalid {
                key: key.to_owned(),
                message: format!("it records revision {:?}", manifest.revision),
            });
        }
        Ok(manifest)
    }
}

/// The served-revision record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Served {
    pub format: u32,
    pub revision: String,
    /// The version of the revision's manifest object that was live when this was recorded.
    pub manifest_version_id: String,
    /// 1 for the first deploy, one more for each deploy after it.
    pub sequence: u64,
    /// Set when this revision was restored by `rollbackTo` over the one named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
}

impl Served {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        parse_versioned(SERVED_KEY, bytes)
    }
}

/// A stored record Stagehand will not act on.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{key} has format {found}; this Stagehand reads format {FORMAT} only")]
    UnsupportedFormat { key: String, found: u64 },
    #[error("{key} is not a valid Stagehand record: {message}")]
    Invalid { key: String, message: String },
}

impl Classify for ManifestError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Stalled
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::UnsupportedFormat { .. } => "UnsupportedManifestFormat",
            Self::Invalid { .. } => "InvalidManifest",
        }
    }
}

/// Checks `format` first, so a newer format is reported as such rather than as whichever of
/// its fields this build does not know.
fn parse_versioned<T: serde::de::DeserializeOwned>(
    key: &str,
    bytes: &[u8],
) -> Result<T, ManifestError> {
    #[derive(Deserialize)]
    struct Format {
        format: Option<u64>,
    }
    let invalid = |e: serde_json::Error| ManifestError::Invalid {
        key: key.to_owned(),
        message: e.to_string(),
    };
    let format: Format = serde_json::from_slice(bytes).map_err(invalid)?;
    match format.format {
        Some(found) if found == u64::from(FORMAT) => serde_json::from_slice(bytes).map_err(invalid),
        Some(found) => Err(ManifestError::UnsupportedFormat {
            key: key.to_owned(),
            found,
        }),
        None => Err(ManifestError::Invalid {
            key: key.to_owned(),
            message: "no format field".to_owned(),
        }),
    }
}

/// The label of a revision built from this content when `spec.revision` is unset:
/// `sha-` and the first 12 hex digits of the SHA-256 over one line per key, sorted by key:
/// `key \t sha256-hex \t content-type \t cache-control \n`. It depends on content and
/// metadata only — not on archive timestamps, entry order or compression — so a rebuild of
/// identical files is the same revision, and a new `Cache-Control` rule is a new one.
pub fn content_revision<'a>(
    objects: impl IntoIterator<Item = (&'a str, &'a Sha256Digest, &'a str, Option<&'a str>)>,
) -> String {
    let mut lines: Vec<String> = objects
        .into_iter()
        .map(|(key, sha, content_type, cache_control)| {
            format!(
                "{key}\t{}\t{content_type}\t{}\n",
                sha.to_hex(),
                cache_control.unwrap_or("")
            )
        })
        .collect();
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    let mut label = String::from("sha-");
    for byte in &hasher.finalize()[..6] {
        let _ = write!(label, "{byte:02x}");
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            revision: "3f9c2ab".into(),
            created_at: "2026-11-30T10:00:00Z".into(),
            source: ManifestSource {
                bucket: "artifacts".into(),
                key: "builds/3f9c2ab/dist.zip".into(),
                version_id: Some("v1".into()),
                sha256: None,
            },
            objects: BTreeMap::from([(
                "index.html".into(),
                ManifestObject {
                    version_id: "ver-1".into(),
                    sha256: Sha256Digest::of(b"<html>").to_hex(),
                    size: 6,
                    content_type: "text/html; charset=utf-8".into(),
                    cache_control: Some("no-cache".into()),
                },
            )]),
        }
    }

    #[test]
    fn a_manifest_round_trips_through_its_json() {
        let m = manifest();
        let key = manifest_key("3f9c2ab");
        assert_eq!(key, ".stagehand/revisions/3f9c2ab.json");
        assert_eq!(revision_of_key(&key), Some("3f9c2ab"));
        assert_eq!(Manifest::parse(&key, &m.to_json()).unwrap(), m);
        let text = String::from_utf8(m.to_json()).unwrap();
        assert!(
            text.contains("\"versionId\": \"ver-1\"") && text.contains("\"createdAt\""),
            "{text}"
        );
    }

    #[test]
    fn parsing_is_strict_and_says_why() {
        let key = manifest_key("3f9c2ab");
        let mut json: serde_json::Value = serde_json::from_slice(&manifest().to_json()).unwrap();
        json["format"] = 2.into();
        let error = Manifest::parse(&key, json.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(error, ManifestError::UnsupportedFormat { found: 2, .. }),
            "{error}"
        );

        json["format"] = 1.into();
        json["extra"] = true.into();
        let error = Manifest::parse(&key, json.to_string().as_bytes()).unwrap_err();
        assert!(error.to_string().contains("extra"), "{error}");

        let mut bad_hash = manifest();
        bad_hash.objects.get_mut("index.html").unwrap().sha256 = "xyz".into();
        let error = Manifest::parse(&key, &bad_hash.to_json()).unwrap_err();
        assert!(error.to_string().contains("index.html"), "{error}");

        let error = Manifest::parse(&manifest_key("other"), &manifest().to_json()).unwrap_err();
        assert!(error.to_string().contains("3f9c2ab"), "{error}");
        assert!(Manifest::parse(&key, b"{}").is_err());
        assert!(Served::parse(b"not json").is_err());
    }

    #[test]
    fn the_content_revision_depends_on_content_and_metadata_only() {
        let a = Sha256Digest::of(b"a");
        let b = Sha256Digest::of(b"b");
        let base = content_revision([
            ("index.html", &a, "text/html", Some("no-cache")),
            ("app.js", &b, "text/javascript", None),
        ]);
        assert!(base.starts_with("sha-") && base.len() == 16, "{base}");
        let reordered = content_revision([
            ("app.js", &b, "text/javascript", None),
            ("index.html", &a, "text/html", Some("no-cache")),
        ]);
        assert_eq!(base, reordered);
        let new_rule = content_revision([
            ("index.html", &a, "text/html", Some("no-store")),
            ("app.js", &b, "text/javascript", None),
        ]);
        assert_ne!(base, new_rule);
        let new_content = content_revision([
            ("index.html", &b, "text/html", Some("no-cache")),
            ("app.js", &b, "text/javascript", None),
        ]);
        assert_ne!(base, new_content);
    }
}
