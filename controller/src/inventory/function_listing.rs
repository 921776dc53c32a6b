//! The region's functions as one `ListFunctions` listed them, with what was read on its own
//! since: the shape the Lambda inventory shares between every stage of the region.
//!
//! At 18,000 functions this is the largest thing the controller keeps besides its objects, and
//! it is replaced at every listing age, so its shape is chosen for memory:
//! - the listing is one `Vec` sorted by name, shrunk to its length: no key copied beside each
//!   function, no tree nodes, and no second copy built from the first (a `BTreeMap` collected
//!   from the listing held the listing, a sorted copy of it and the tree at once: about 22 MB
//!   for a moment at every listing, docs/benchmarks.md "10,000 objects");
//! - a function read on its own after the listing (created, changed, gone) goes into a small
//!   map of changes beside it rather than into the sorted `Vec`, which would move every
//!   function after it and, at its exact capacity, reallocate the whole listing.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::aws::lambda::FunctionInfo;

/// The functions of a region by name.
#[derive(Clone, Debug, Default)]
pub struct FunctionListing {
    /// As listed, sorted by name, one per name.
    listed: Vec<FunctionInfo>,
    /// Read on its own since: the function as read, or `None` where it no longer exists.
    changed: BTreeMap<String, Option<FunctionInfo>>,
}

impl FunctionListing {
    /// The listing of `functions` (in any order).
    pub fn new(mut functions: Vec<FunctionInfo>) -> Self {
        functions.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        functions.dedup_by(|later, earlier| later.name == earlier.name);
        functions.shrink_to_fit();
        Self {
            listed: functions,
            changed: BTreeMap::new(),
        }
    }

    fn listed(&self, name: &str) -> Option<&FunctionInfo> {
        self.listed
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.listed.get(i))
    }

    /// The function `name`, as last read.
    pub fn get(&self, name: &str) -> Option<&FunctionInfo> {
        match self.changed.get(name) {
            Some(changed) => changed.as_ref(),
            None => self.listed(name),
        }
    }

    /// `info` was read on its own after the listing. As listed, it is not kept twice: every
    /// function is read on its own once per identity recheck, and most are as listed.
    pub fn insert(&mut self, info: FunctionInfo) {
        if self.listed(&info.name) == Some(&info) {
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
        let start = self.listed.partition_point(|f| f.name.as_str() < prefix);
        let listed = self.listed[start..]
            .iter()
            .map(|f| f.name.as_str())
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
            .filter(|f| !self.changed.contains_key(&f.name))
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
        listing.get(name).and_then(|f| f.revision_id.clone())
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
}
