//! Intent records (`status.pendingCreate`): how a resource that AWS cannot tag in the call that
//! creates it is still found again after a crash.
//!
//! Why: S3 `CreateBucket` takes no tags; `PutBucketTagging` follows it. A process killed (or a
//! tagging refused) between the two leaves a bucket without the owner tag, which the next round
//! cannot tell from a stranger's: it would ask for `adopt`, and deletion would leave it. So the
//! create is split over two rounds:
//! 1. a round that finds the resource missing only records the intent in the object's status
//!    (the status write is the record: server-side apply, accepted by the API server before the
//!    next round can read it back) and asks for the next round at once;
//! 2. a round whose status carries the record sends the create and the tagging;
//! 3. a round that finds the resource untagged, named by the record, and holding nothing (a
//!    resource Stagehand created is written to only after it is tagged) knows it as the
//!    object's own creation: it tags it and carries on, no `adopt` needed — deletion too.
//!
//! The record goes once the resource carries the owner tag, or turns out to be another's. Two
//! replicas cannot both create: AWS writes pass the leader's write fence only, and a record
//! written by a deposed replica names what this object itself wants, so it claims nothing that
//! is not the object's. Pure: the kinds' plans decide with it.

use stagehand_crds::PendingCreate;

/// The record of creating `kind` `name`.
pub fn pending_create(kind: &str, name: &str) -> PendingCreate {
    PendingCreate {
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

/// Whether `record` names exactly `kind` `name`.
pub fn records(record: Option<&PendingCreate>, kind: &str, name: &str) -> bool {
    record.is_some_and(|r| r.kind == kind && r.name == name)
}

/// The next step for a resource that does not exist and is to be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateStep {
    /// No record yet: write it (this round's status), create on the next round.
    Record,
    /// The status carries the record: create now.
    Create,
}

/// What to do about a missing `kind` `name` given the status's `record`.
pub fn create_step(record: Option<&PendingCreate>, kind: &str, name: &str) -> CreateStep {
    if records(record, kind, name) {
        CreateStep::Create
    } else {
        CreateStep::Record
    }
}

/// Whether an untagged resource is the object's own creation, tagging unfinished: the record
/// names it and it is `empty`. One that holds anything was not written by Stagehand (which
/// writes only to what it tagged): someone else's, to adopt only with `adopt: true`.
pub fn is_own_creation(
    record: Option<&PendingCreate>,
    kind: &str,
    name: &str,
    empty: bool,
) -> bool {
    empty && records(record, kind, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_waits_for_its_record() {
        let record = pending_create("Bucket", "shop-site");
        assert_eq!(create_step(None, "Bucket", "shop-site"), CreateStep::Record);
        assert_eq!(
            create_step(Some(&record), "Bucket", "shop-site"),
            CreateStep::Create
        );
        assert_eq!(
            create_step(Some(&record), "Bucket", "other-site"),
            CreateStep::Record,
            "a record names exactly one resource"
        );
        assert_eq!(
            create_step(Some(&record), "Distribution", "shop-site"),
            CreateStep::Record
        );
    }

    #[test]
    fn only_an_empty_resource_the_record_names_is_the_objects_own() {
        let record = pending_create("Bucket", "shop-site");
        assert!(is_own_creation(Some(&record), "Bucket", "shop-site", true));
        assert!(
            !is_own_creation(Some(&record), "Bucket", "shop-site", false),
            "holding objects: someone else's"
        );
        assert!(!is_own_creation(None, "Bucket", "shop-site", true));
        assert!(!is_own_creation(Some(&record), "Bucket", "other", true));
    }
}
