//! A checked build as the plan reads it ([`SourceBuild`]), from either kind of source: an
//! archive's entries, or the listing of a prefix. A prefix's keys are untrusted names too (any
//! tool may have written there): each key, relative to the prefix, passes the same name rules
//! as an archive entry, and the same limits apply (sizes come from S3's listing).

use std::collections::HashMap;

use super::{ArchiveLimits, Build, BuildError, EntryName, normalise};
use crate::aws::s3::Sha256Digest;
use crate::static_site::manifest::ManifestSource;
use crate::static_site::observed::{ContentOrigin, SourceBuild, SourceFile};

/// One object under a source prefix, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixObject {
    /// The full key (`builds/1234/dist/index.html`).
    pub key: String,
    pub size: u64,
    pub e_tag: Option<String>,
    /// S3's whole-object SHA-256, when the object has one (or a hash cached by ETag).
    pub sha256: Option<Sha256Digest>,
}

impl Build {
    /// The build of an archive: every entry is uploaded from the archive.
    pub fn into_source(self, location: ManifestSource) -> SourceBuild {
        SourceBuild {
            location,
            files: self
                .entries
                .into_iter()
                .map(|e| SourceFile {
                    key: e.key,
                    size: e.size,
                    sha256: Some(e.sha256),
                    origin: ContentOrigin::ArchiveEntry,
                })
                .collect(),
        }
    }
}

/// The build a prefix holds. Folder markers (keys ending in `/`) are skipped.
pub fn prefix_build(
    bucket: &str,
    prefix: &str,
    objects: &[PrefixObject],
    limits: ArchiveLimits,
) -> Result<SourceBuild, BuildError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for (count, object) in objects.iter().enumerate() {
        let relative = object.key.strip_prefix(prefix).unwrap_or(&object.key);
        if count as u64 >= limits.max_entries {
            return Err(BuildError::TooManyEntries {
                entry: object.key.clone(),
                limit: limits.max_entries,
            });
        }
        let key = match normalise(relative.as_bytes()) {
            Ok(EntryName::File(key)) => key,
            Ok(EntryName::Directory) => continue,
            Err(rule) => {
                return Err(BuildError::UnsafeName {
                    entry: object.key.clone(),
                    rule,
                });
            }
        };
        total = total.saturating_add(object.size);
        if total > limits.max_total_bytes {
            return Err(BuildError::TooLarge {
                entry: object.key.clone(),
                limit: limits.max_total_bytes,
            });
        }
        if let Some(first) = seen.insert(key.clone(), &object.key) {
            return Err(BuildError::Duplicate {
                entry: object.key.clone(),
                first: first.to_owned(),
                key,
            });
        }
        files.push(SourceFile {
            key,
            size: object.size,
            sha256: object.sha256,
            origin: ContentOrigin::SourceObject {
                bucket: bucket.to_owned(),
                key: object.key.clone(),
                e_tag: object.e_tag.clone(),
            },
        });
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(SourceBuild {
        location: ManifestSource {
            bucket: bucket.to_owned(),
            key: prefix.to_owned(),
            version_id: None,
            sha256: None,
        },
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_site::build::NameRule;

    fn object(key: &str, size: u64) -> PrefixObject {
        PrefixObject {
            key: key.to_owned(),
            size,
            e_tag: Some(format!("\"{key}\"")),
            sha256: None,
        }
    }

    const PREFIX: &str = "builds/7/dist/";

    #[test]
    fn a_prefix_lists_its_files_by_relative_key_copied_from_the_source() {
        let listing = [
            object("builds/7/dist/index.html", 10),
            object("builds/7/dist/assets/", 0),
            object("builds/7/dist/assets/app.js", 20),
        ];
        let build = prefix_build("artifacts", PREFIX, &listing, ArchiveLimits::default()).unwrap();
        let keys: Vec<&str> = build.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["assets/app.js", "index.html"]);
        assert_eq!(
            build.files[0].origin,
            ContentOrigin::SourceObject {
                bucket: "artifacts".into(),
                key: "builds/7/dist/assets/app.js".into(),
                e_tag: Some("\"builds/7/dist/assets/app.js\"".into()),
            }
        );
        assert_eq!(build.location.key, PREFIX);
    }

    #[test]
    fn prefix_keys_obey_the_archive_rules() {
        let bad = [object("builds/7/dist/../../secrets", 1)];
        let error = prefix_build("a", PREFIX, &bad, ArchiveLimits::default()).unwrap_err();
        assert!(matches!(
            error,
            BuildError::UnsafeName {
                rule: NameRule::ParentSegment,
                ..
            }
        ));
        let twins = [
            object("builds/7/dist/a//b.js", 1),
            object("builds/7/dist/a/b.js", 1),
        ];
        let error = prefix_build("a", PREFIX, &twins, ArchiveLimits::default()).unwrap_err();
        assert!(matches!(error, BuildError::Duplicate { .. }), "{error:?}");
        let limits = ArchiveLimits {
            max_entries: 10,
            max_total_bytes: 15,
        };
        let big = [object("builds/7/dist/a", 10), object("builds/7/dist/b", 10)];
        let error = prefix_build("a", PREFIX, &big, limits).unwrap_err();
        assert!(matches!(error, BuildError::TooLarge { .. }), "{error:?}");
    }
}
