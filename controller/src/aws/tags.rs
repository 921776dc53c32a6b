//! Ownership tags: who owns an AWS resource, and whether Stagehand may touch it.
//!
//! Everything Stagehand creates carries `stagehand.dev/owner = <namespace>/<Kind>/<name>` and
//! `stagehand.dev/cluster = <cluster id>`. A resource whose owner tag names another object (or
//! another cluster) is never modified; an untagged one only when the spec says `adopt: true`.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// The tags naming the owning object and cluster (defined with the API, where users read them).
pub use stagehand_crds::{CLUSTER_TAG, OWNER_TAG};

/// The owner tag's value for an object.
pub fn owner_tag_value(namespace: &str, kind: &str, name: &str) -> String {
    format!("{namespace}/{kind}/{name}")
}

/// Who owns a resource, as seen from one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Tagged for this object in this cluster.
    Ours,
    /// No owner tag: adoptable with `adopt: true`.
    Untagged,
    /// Tagged for another object or another cluster; the value names it (`ns/Kind/name`, with
    /// ` (cluster X)` when only the cluster differs).
    OtherOwner(String),
}

/// Tags as the services return them (Lambda gives a map, EC2 and CloudFormation a list).
pub trait TagLookup {
    fn tag(&self, key: &str) -> Option<&str>;
}

impl<S: BuildHasher> TagLookup for HashMap<String, String, S> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl TagLookup for BTreeMap<String, String> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl TagLookup for [(String, String)] {
    fn tag(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl TagLookup for Vec<(String, String)> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.as_slice().tag(key)
    }
}

/// Whether `tags` say the resource belongs to `expected_owner` in cluster `cluster_id`.
///
/// A resource tagged with our owner but without a cluster tag is ours (tagged by hand, or by an
/// older version); one tagged with our owner and another cluster belongs to that cluster.
pub fn ownership<T: TagLookup + ?Sized>(
    tags: &T,
    expected_owner: &str,
    cluster_id: &str,
) -> Ownership {
    let Some(owner) = tags.tag(OWNER_TAG).filter(|o| !o.is_empty()) else {
        return Ownership::Untagged;
    };
    if owner != expected_owner {
        return Ownership::OtherOwner(owner.to_owned());
    }
    match tags.tag(CLUSTER_TAG) {
        Some(cluster) if !cluster.is_empty() && cluster != cluster_id => {
            Ownership::OtherOwner(format!("{owner} (cluster {cluster})"))
        }
        _ => Ownership::Ours,
    }
}

/// The tags Stagehand writes on what it creates or adopts.
pub fn ownership_tags(owner: &str, cluster_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OWNER_TAG.to_owned(), owner.to_owned()),
        (CLUSTER_TAG.to_owned(), cluster_id.to_owned()),
    ])
}

/// The ownership tags plus the user's own (`spec.tags`); ours win on a key clash so a spec
/// cannot hand a resource to another owner.
pub fn tags_to_write(
    owner: &str,
    cluster_id: &str,
    user_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = user_tags.clone();
    tags.extend(ownership_tags(owner, cluster_id));
    tags
}

/// The ownership tags `tags` lacks or has wrong (what to write when adopting).
pub fn missing_ownership_tags<T: TagLookup + ?Sized>(
    tags: &T,
    owner: &str,
    cluster_id: &str,
) -> BTreeMap<String, String> {
    ownership_tags(owner, cluster_id)
        .into_iter()
        .filter(|(k, v)| tags.tag(k) != Some(v.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const ME: &str = "shop/LambdaStage/dev";

    #[test]
    fn owner_value_names_namespace_kind_and_name() {
        assert_eq!(owner_tag_value("shop", "LambdaStage", "dev"), ME);
    }

    #[test]
    fn ownership_table() {
        let cases: &[(&[(&str, &str)], Ownership)] = &[
            (&[], Ownership::Untagged),
            (&[("team", "payments")], Ownership::Untagged),
            (&[(OWNER_TAG, "")], Ownership::Untagged),
            (&[(OWNER_TAG, ME)], Ownership::Ours),
            (&[(OWNER_TAG, ME), (CLUSTER_TAG, "prod-1")], Ownership::Ours),
            (
                &[(OWNER_TAG, ME), (CLUSTER_TAG, "prod-2")],
                Ownership::OtherOwner("shop/LambdaStage/dev (cluster prod-2)".into()),
            ),
            (
                &[
                    (OWNER_TAG, "shop/LambdaStage/prod"),
                    (CLUSTER_TAG, "prod-1"),
                ],
                Ownership::OtherOwner("shop/LambdaStage/prod".into()),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                ownership(&tags(pairs), ME, "prod-1"),
                *expected,
                "{pairs:?}"
            );
            let list: Vec<(String, String)> = tags(pairs).into_iter().collect();
            assert_eq!(
                ownership(&list, ME, "prod-1"),
                *expected,
                "{pairs:?} as list"
            );
        }
    }

    #[test]
    fn written_tags_are_recognised_as_ours_and_cannot_be_overridden() {
        let user = BTreeMap::from([
            ("team".to_owned(), "payments".to_owned()),
            (OWNER_TAG.to_owned(), "someone/Else/x".to_owned()),
        ]);
        let written = tags_to_write(ME, "prod-1", &user);
        assert_eq!(written["team"], "payments");
        assert_eq!(ownership(&written, ME, "prod-1"), Ownership::Ours);
    }

    #[test]
    fn missing_tags_are_only_those_absent_or_wrong() {
        let has_owner = tags(&[(OWNER_TAG, ME), ("team", "x")]);
        assert_eq!(
            missing_ownership_tags(&has_owner, ME, "prod-1"),
            BTreeMap::from([(CLUSTER_TAG.to_owned(), "prod-1".to_owned())])
        );
        let complete = ownership_tags(ME, "prod-1");
        assert!(missing_ownership_tags(&complete, ME, "prod-1").is_empty());
    }
}
