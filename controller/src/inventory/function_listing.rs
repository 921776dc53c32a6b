//! The region's functions as one `ListFunctions` listed them, with what was read on its own
//! since: the shape the Lambda inventory shares between every stage of the region.
//!
//! At 18,000 functions this is the largest thing the controller keeps besides its objects, and
//! it is replaced at every listing age (the old one held while the new one is read), so its
//! shape is chosen for memory:
//! - the listing is one `Vec` sorted by name, shrunk to its length: no key copied beside each
//!   function, no tree nodes, and no second copy built from the first (a `BTreeMap` collected
//!   from the listing held the listing, a sorted copy of it and the tree at once: about 22 MB
//!   for a moment at every listing, docs/benchmarks.md "10,000 objects");
//! - each listed function keeps inline only what is its own (name, code hash, revision), and
//!   shares the rest (statuses, package type, runtime, handler, sizes, layers, environment,
//!   the ARN up to its name) with every function of the listing configured alike: the
//!   functions of one stage, or of one service across stages, differ in little else. A
//!   `FunctionInfo` per function was ≈ 1 KiB with its dozen strings; a listed one is ≈ 0.2 KiB
//!   (docs/benchmarks.md, "10,000 objects converged");
//! - pages are added as they arrive ([`FunctionListingBuilder`]), so the listing is never also
//!   held whole as `FunctionInfo`s;
//! - a function read on its own after the listing (created, changed, gone) goes into a small
//!   map of changes beside it rather than into the sorted `Vec`, which would move every
//!   function after it and, at its exact capacity, reallocate the whole listing.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use crate::aws::lambda::FunctionInfo;

/// What a listed function shares with every function of the listing configured alike: its
/// `FunctionInfo` without name, code hash and revision, and with the ARN cut before the name
/// when it ends with it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Alike {
    /// `config.arn` is the ARN without the function's name at its end.
    arn_before_name: bool,
    config: FunctionInfo,
}

/// A listed function: its own fields inline, the rest shared.
#[derive(Clone, Debug)]
struct Listed {
    name: Box<str>,
    code_sha256: Option<Box<str>>,
    revision_id: Option<Box<str>>,
    alike: Arc<Alike>,
}

impl Listed {
    /// The function as it was listed.
    fn info(&self) -> FunctionInfo {
        let mut info = self.alike.config.clone();
        if self.alike.arn_before_name {
            info.arn.push_str(&self.name);
        }
        info.name = self.name.clone().into();
        info.code_sha256 = self.code_sha256.clone().map(Into::into);
        info.revision_id = self.revision_id.clone().map(Into::into);
        info
    }
}

/// A listing being read, page by page.
#[derive(Debug, Default)]
pub struct FunctionListingBuilder {
    listed: Vec<Listed>,
    /// Every distinct shared part seen so far: dropped with the builder, so nothing is kept
    /// beyond what the listing's functions refer to.
    alike: HashSet<Arc<Alike>>,
}

impl Extend<FunctionInfo> for FunctionListingBuilder {
    fn extend<I: IntoIterator<Item = FunctionInfo>>(&mut self, functions: I) {
        for mut config in functions {
            let name = std::mem::take(&mut config.name);
            let code_sha256 = config.code_sha256.take().map(String::into_boxed_str);
            let revision_id = config.revision_id.take().map(String::into_boxed_str);
            let arn_before_name = config.arn.len() > name.len() && config.arn.ends_with(&name);
            if arn_before_name {
                config.arn.truncate(config.arn.len() - name.len());
            }
            let candidate = Alike {
                arn_before_name,
                config,
            };
            let alike = if let Some(alike) = self.alike.get(&candidate) {
                Arc::clone(alike)
            } else {
                let alike = Arc::new(candidate);
                self.alike.insert(Arc::clone(&alike));
                alike
            };
            self.listed.push(Listed {
                name: name.into_boxed_str(),
                code_sha256,
                revision_id,
                alike,
            });
        }
    }
}

impl FunctionListingBuilder {
    /// The listing of what was added (in any order; one per name).
    pub fn build(self) -> FunctionListing {
        let mut listed = self.listed;
        listed.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        listed.dedup_by(|later, earlier| later.name == earlier.name);
        listed.shrink_to_fit();
        FunctionListing {
            listed,
            changed: BTreeMap::new(),
        }
    }
}

/// The functions of a region by name.
#[derive(Clone, Debug, Default)]
pub struct FunctionListing {
    /// As listed, sorted by name, one per name.
    listed: Vec<Listed>,
    /// Read on its own since: the function as read, or `None` where it no longer exists.
    changed: BTreeMap<String, Option<FunctionInfo>>,
}

impl FunctionListing {
    /// The listing of `functions` (in any order).
    pub fn new(functions: Vec<FunctionInfo>) -> Self {
        let mut builder = FunctionListingBuilder::default();
        builder.extend(functions);
        builder.build()
    }

    fn listed(&self, name: &str) -> Option<&Listed> {
        self.listed
            .binary_search_by(|f| (*f.name).cmp(name))
            .ok()
            .and_then(|i| self.listed.get(i))
    }

    /// The function `name`, as last read.
    pub fn get(&self, name: &str) -> Option<FunctionInfo> {
        match self.changed.get(name) {
            Some(changed) => changed.clone(),
            None => self.listed(name).map(Listed::info),
        }
    }

    /// `info` was read on its own after the listing. As listed, it is not kept twice: every
    /// function is read on its own once per identity recheck, and most are as listed.
    pub fn insert(&mut self, info: FunctionInfo) {
        if self.listed(&info.name).map(Listed::info).as_ref() == Some(&info) {
            self.changed.remove(&info.name);
        } else {
            self.changed.insert(info.name.clone(), Some(info));
        }
    }

    /// The function `name` was found gone after the listing.
    pub fn remove(&mut self, name: &str) {
        self.changed.insert(name.to_owned(), None);
    }

    /// The names that start with `prefix`, in name order: a range of the sorted listing and of
    /// the changes, nothing else visited.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let start = self.listed.partition_point(|f| &*f.name < prefix);
        let listed = self.listed[start..]
            .iter()
            .map(|f| &*f.name)
            .take_while(|name| name.starts_with(prefix))
            .filter(|name| !self.changed.contains_key(*name));
        let changed = self
            .changed
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .filter(|(_, info)| info.is_some())
            .map(|(name, _)| name.as_str());
        let mut names: Vec<String> = listed.chain(changed).map(str::to_owned).collect();
        names.sort_unstable();
        names
    }

    /// How many functions it holds.
    pub fn len(&self) -> usize {
        let listed_unchanged = self
            .listed
            .iter()
            .filter(|f| !self.changed.contains_key(&*f.name))
            .count();
        listed_unchanged + self.changed.values().filter(|f| f.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, revision: &str) -> FunctionInfo {
        FunctionInfo {
            name: name.to_owned(),
            revision_id: Some(revision.to_owned()),
            ..FunctionInfo::default()
        }
    }

    fn revision(listing: &FunctionListing, name: &str) -> Option<String> {
        listing.get(name).and_then(|f| f.revision_id)
    }

    #[test]
    fn a_listing_is_found_by_name_and_by_prefix_in_name_order() {
        let listing = FunctionListing::new(vec![
            function("shop-web", "1"),
            function("shop-api-prod", "1"),
            function("shop", "1"),
            function("shop-api-dev-chat", "1"),
            function("shop-api-dev", "1"),
            function("shop-api-dev", "2"),
        ]);
        assert_eq!(listing.len(), 5, "one per name");
        assert_eq!(
            listing.names_with_prefix("shop-api-"),
            ["shop-api-dev", "shop-api-dev-chat", "shop-api-prod"]
        );
        assert_eq!(listing.names_with_prefix("shop").len(), 5);
        assert!(listing.names_with_prefix("web").is_empty());
        assert!(listing.names_with_prefix("shop-z").is_empty());
        assert!(revision(&listing, "shop-web").is_some());
        assert_eq!(revision(&listing, "shop-api"), None);
        assert_eq!(listing.listed.capacity(), listing.listed.len());
    }

    #[test]
    fn what_was_read_since_the_listing_wins_over_it() {
        let mut listing = FunctionListing::new(vec![
            function("shop-api-dev", "1"),
            function("shop-api-prod", "1"),
        ]);
        listing.insert(function("shop-api-dev", "2"));
        listing.insert(function("shop-api-canary", "1"));
        listing.remove("shop-api-prod");
        listing.remove("shop-api-never-listed");
        assert_eq!(revision(&listing, "shop-api-dev").as_deref(), Some("2"));
        assert_eq!(revision(&listing, "shop-api-canary").as_deref(), Some("1"));
        assert!(listing.get("shop-api-prod").is_none());
        assert_eq!(
            listing.names_with_prefix("shop-api-"),
            ["shop-api-canary", "shop-api-dev"]
        );
        assert_eq!(listing.len(), 2);
        listing.insert(function("shop-api-prod", "3"));
        assert_eq!(listing.names_with_prefix("shop-api-p"), ["shop-api-prod"]);
        assert_eq!(revision(&listing, "shop-api-prod").as_deref(), Some("3"));
    }

    #[test]
    fn a_function_read_as_listed_is_not_kept_twice() {
        let mut listing = FunctionListing::new(vec![function("shop-api-dev", "1")]);
        listing.insert(function("shop-api-dev", "1"));
        assert!(listing.changed.is_empty(), "{:?}", listing.changed);
        listing.insert(function("shop-api-dev", "2"));
        assert_eq!(revision(&listing, "shop-api-dev").as_deref(), Some("2"));
        // Read back as listed again (a change reverted): the listing serves it once more.
        listing.insert(function("shop-api-dev", "1"));
        assert!(listing.changed.is_empty(), "{:?}", listing.changed);
        assert_eq!(revision(&listing, "shop-api-dev").as_deref(), Some("1"));
    }

    fn configured(name: &str, arn: &str, sha: &str, memory_mb: i32) -> FunctionInfo {
        FunctionInfo {
            name: name.to_owned(),
            arn: arn.to_owned(),
            code_sha256: Some(sha.to_owned()),
            last_update_status: Some("Successful".to_owned()),
            state: Some("Active".to_owned()),
            package_type: Some("Zip".to_owned()),
            layers: vec!["arn:aws:lambda:eu-west-1:123456789012:layer:shared:3".to_owned()],
            environment: [("STAGE".to_owned(), "prod".to_owned())].into(),
            runtime: Some("python3.12".to_owned()),
            handler: Some("app.handler".to_owned()),
            memory_mb: Some(memory_mb),
            timeout_seconds: Some(30),
            revision_id: Some(format!("{name}-rev")),
            version: Some("$LATEST".to_owned()),
            ..FunctionInfo::default()
        }
    }

    #[test]
    fn functions_configured_alike_share_what_they_share_and_read_back_as_listed() {
        let arn = |name: &str| format!("arn:aws:lambda:eu-west-1:123456789012:function:{name}");
        let functions = vec![
            configured("shop-api", &arn("shop-api"), "aaa=", 256),
            configured("shop-worker", &arn("shop-worker"), "bbb=", 256),
            configured("shop-big", &arn("shop-big"), "ccc=", 1024),
            // An ARN that does not end with the name is kept whole.
            configured(
                "odd",
                "arn:aws:lambda:eu-west-1:123456789012:function:other",
                "d=",
                256,
            ),
        ];
        let listing = FunctionListing::new(functions.clone());
        for function in &functions {
            assert_eq!(listing.get(&function.name).as_ref(), Some(function));
        }
        let shared = |name: &str| &listing.listed(name).unwrap().alike;
        assert!(Arc::ptr_eq(shared("shop-api"), shared("shop-worker")));
        assert!(
            !Arc::ptr_eq(shared("shop-api"), shared("shop-big")),
            "memory differs"
        );
        assert!(
            !Arc::ptr_eq(shared("shop-api"), shared("odd")),
            "its ARN is its own"
        );
        assert_eq!(
            shared("shop-api").config.arn,
            "arn:aws:lambda:eu-west-1:123456789012:function:"
        );
        assert!(shared("shop-api").config.name.is_empty());
        // Read on its own exactly as listed: nothing kept beside the listing.
        let mut listing = listing;
        listing.insert(functions[0].clone());
        assert!(listing.changed.is_empty());
    }
}
