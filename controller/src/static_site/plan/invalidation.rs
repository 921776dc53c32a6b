//! Which paths a deploy invalidates, as pure functions.
//!
//! With `mode: Changed` the paths are exactly the keys whose content or metadata changed
//! (their version differs from the served manifest's) and the keys removed; a key that is new
//! was never cached and is not invalidated. A key named like the root object also invalidates
//! its directory (`docs/index.html` → `/docs/`, `index.html` → `/`): those URLs serve it.
//!
//! Many paths are collapsed into wildcards, an idea taken from `s3deploy` (the code is our
//! own): while there are more than `allThreshold` paths, the deepest directory covering two or
//! more of them replaces them by `/dir/*`. A rebuild that renames 50 hashed
//! assets under `assets/` and changes `index.html` becomes `/`, `/assets/*`, `/index.html`. If
//! no collapse gets under the threshold, or more than [`MAX_WILDCARD_PATHS`] wildcards would be
//! needed (CloudFront's limit on wildcard paths in progress), it is `/*`. `mode: All` is always
//! `/*`.
//!
//! The `CallerReference` derives from the revision, the deploy's sequence number and the
//! paths: a retried deploy sends the same one (CloudFront answers with the invalidation it
//! already made), a later deploy of the same revision a new one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sha2::{Digest, Sha256};
use stagehand_crds::static_site::InvalidationMode;

use super::Planner;
use super::action::{Action, PlannedObject, PlannedServed, VersionRef};

/// Everything.
pub const ALL: &str = "/*";

/// CloudFront allows 15 wildcard paths in progress per distribution.
pub const MAX_WILDCARD_PATHS: usize = 15;

/// Characters CloudFront wants URL-encoded in a path (RFC 1738's unsafe ones), plus `*`, which
/// would otherwise read as a wildcard.
const PATH_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']')
    .add(b'*');

/// The paths that serve `key`: itself, and its directory when it is the root object.
pub fn key_paths(key: &str, root_object: &str) -> Vec<String> {
    let path = format!("/{}", utf8_percent_encode(key, PATH_ENCODE));
    let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
    if file != root_object {
        return vec![path];
    }
    let dir_path = if dir.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}/", utf8_percent_encode(dir, PATH_ENCODE))
    };
    vec![dir_path, path]
}

/// The paths to invalidate for these changed keys.
pub fn invalidation_paths<'a>(
    changed_keys: impl IntoIterator<Item = &'a str>,
    mode: InvalidationMode,
    root_object: &str,
    all_threshold: usize,
) -> Vec<String> {
    let exact: BTreeSet<String> = changed_keys
        .into_iter()
        .flat_map(|key| key_paths(key, root_object))
        .collect();
    if exact.is_empty() {
        return Vec::new();
    }
    if mode == InvalidationMode::All {
        return vec![ALL.to_owned()];
    }
    collapse(exact, all_threshold)
}

/// `paths`, collapsed into directory wildcards until at most `limit` remain; `/*` if that
/// cannot be done within CloudFront's wildcard limit.
pub fn collapse(mut paths: BTreeSet<String>, limit: usize) -> Vec<String> {
    while paths.len() > limit {
        let Some(dir) = best_directory(&paths) else {
            return vec![ALL.to_owned()];
        };
        paths.retain(|p| !p.starts_with(&dir));
        paths.insert(format!("{dir}*"));
        if paths.iter().filter(|p| p.ends_with('*')).count() > MAX_WILDCARD_PATHS {
            return vec![ALL.to_owned()];
        }
    }
    paths.into_iter().collect()
}

/// The deepest directory (`/a/b/`, never `/`) covering at least two paths; the one covering
/// the most on a tie, then the first by name. Deepest first keeps the wildcards narrow: a
/// parent is collapsed only when its children's wildcards are still too many.
fn best_directory(paths: &BTreeSet<String>) -> Option<String> {
    let mut covered: BTreeMap<&str, usize> = BTreeMap::new();
    for path in paths {
        // `/a/b/c.js` is under `/a/` and `/a/b/`; `/a/b/*` and `/a/b/` under `/a/` and `/a/b/`
        // too (the wildcard covers its directory).
        let inner = path.trim_end_matches('*');
        for (at, _) in inner.match_indices('/').skip(1) {
            *covered.entry(&inner[..=at]).or_default() += 1;
        }
    }
    covered
        .into_iter()
        .filter(|(_, count)| *count >= 2)
        .max_by(|(a, ca), (b, cb)| {
            a.matches('/')
                .count()
                .cmp(&b.matches('/').count())
                .then(ca.cmp(cb))
                .then(b.cmp(a))
        })
        .map(|(dir, _)| dir.to_owned())
}

/// The invalidation's `CallerReference`: `stagehand-<revision>-<sequence>-<12 hex of the
/// paths' SHA-256>`.
pub fn caller_reference(revision: &str, sequence: u64, paths: &[String]) -> String {
    let mut hasher = Sha256::new();
    for path in paths {
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
    }
    let mut reference = format!("stagehand-{revision}-{sequence}-");
    for byte in &hasher.finalize()[..6] {
        let _ = write!(reference, "{byte:02x}");
    }
    reference
}

impl Planner<'_> {
    /// Invalidates what changed since the served record: keys whose version differs from the
    /// served manifest's, keys the served manifest has and the revision does not (deleted now
    /// or in a round cut short before its invalidation), and `removed`. The first deploy to a
    /// distribution that existed before invalidates everything (what it cached is unknown); a
    /// distribution created this round has nothing cached.
    pub(super) fn plan_invalidation(
        &mut self,
        served: &PlannedServed,
        planned: &BTreeMap<String, PlannedObject>,
        removed: &[String],
    ) {
        if self.distribution_created_now {
            return;
        }
        let Some(distribution) = &self.observed.distribution else {
            return;
        };
        let paths = match &self.observed.served {
            None => vec![ALL.to_owned()],
            Some(previous) => {
                let old = &previous.manifest.objects;
                let changed = planned.iter().filter_map(|(key, p)| {
                    let old = old.get(key)?;
                    (p.version != VersionRef::Known(old.version_id.clone())).then_some(key)
                });
                let gone = old.keys().filter(|key| !planned.contains_key(*key));
                let keys: BTreeSet<&str> = changed
                    .chain(gone)
                    .chain(removed)
                    .map(String::as_str)
                    .collect();
                invalidation_paths(
                    keys,
                    self.spec.invalidation.mode,
                    &self.spec.distribution.default_root_object,
                    usize::try_from(self.spec.invalidation.all_threshold).unwrap_or(1),
                )
            }
        };
        if paths.is_empty() {
            return;
        }
        self.plan.sync.invalidation_paths.clone_from(&paths);
        self.act(Action::Invalidate {
            distribution_id: distribution.id.clone(),
            caller_reference: caller_reference(&served.revision, served.sequence, &paths),
            paths,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(keys: &[&str], threshold: usize) -> Vec<String> {
        invalidation_paths(
            keys.iter().copied(),
            InvalidationMode::Changed,
            "index.html",
            threshold,
        )
    }

    #[test]
    fn exact_paths_for_few_changes_with_the_root_object_s_directories() {
        assert_eq!(changed(&["assets/app.js"], 15), ["/assets/app.js"]);
        assert_eq!(changed(&["index.html"], 15), ["/", "/index.html"]);
        assert_eq!(
            changed(&["docs/index.html", "docs/intro.html"], 15),
            ["/docs/", "/docs/index.html", "/docs/intro.html"]
        );
        assert_eq!(
            changed(&["my file*.html", "café.css"], 15),
            ["/caf%C3%A9.css", "/my%20file%2A.html"]
        );
        assert!(changed(&[], 15).is_empty());
        assert_eq!(
            invalidation_paths(["a.js"], InvalidationMode::All, "index.html", 15),
            [ALL]
        );
    }

    #[test]
    fn many_paths_collapse_into_the_directories_that_cover_them() {
        let assets: Vec<String> = (0..50).map(|i| format!("assets/chunk-{i:02}.js")).collect();
        let mut keys: Vec<&str> = assets.iter().map(String::as_str).collect();
        keys.push("index.html");
        assert_eq!(changed(&keys, 15), ["/", "/assets/*", "/index.html"]);

        // The deepest directory goes first; its parent only if that is still too many.
        let nested: Vec<String> = (0..6)
            .flat_map(|i| [format!("a/b/{i}.js"), format!("a/c{i}.js")])
            .collect();
        let keys: Vec<&str> = nested.iter().map(String::as_str).collect();
        assert_eq!(
            changed(&keys, 7),
            [
                "/a/b/*", "/a/c0.js", "/a/c1.js", "/a/c2.js", "/a/c3.js", "/a/c4.js", "/a/c5.js"
            ]
        );
        assert_eq!(changed(&keys, 6), ["/a/*"]);
    }

    #[test]
    fn everything_when_no_collapse_fits_the_threshold() {
        let spread: Vec<String> = (0..20).map(|i| format!("file-{i}.js")).collect();
        let keys: Vec<&str> = spread.iter().map(String::as_str).collect();
        assert_eq!(changed(&keys, 15), [ALL], "top-level files cannot collapse");
        let dirs: Vec<String> = (0..20)
            .flat_map(|i| [format!("d{i}/a.js"), format!("d{i}/b.js")])
            .collect();
        let keys: Vec<&str> = dirs.iter().map(String::as_str).collect();
        assert_eq!(
            changed(&keys, 19),
            [ALL],
            "more wildcards than CloudFront allows"
        );
    }

    #[test]
    fn the_caller_reference_is_stable_for_a_retry_and_new_for_the_next_deploy() {
        let paths = vec!["/index.html".to_owned()];
        let first = caller_reference("3f9c2ab", 4, &paths);
        assert_eq!(first, caller_reference("3f9c2ab", 4, &paths));
        assert!(first.starts_with("stagehand-3f9c2ab-4-"), "{first}");
        assert_ne!(first, caller_reference("3f9c2ab", 5, &paths));
        assert_ne!(first, caller_reference("3f9c2ab", 4, &[ALL.to_owned()]));
    }
}
