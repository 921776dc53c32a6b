//! What `plan` and `apply` print for a StaticSite: the bucket and distribution, the revision
//! served and the one to serve, then what a reviewer of a deploy wants to read — every key that
//! would be uploaded, copied in place (metadata only), restored from a stored version or
//! deleted, and every path invalidated — then the ordered actions (bucket, OAC, distribution,
//! policy, manifest, served record, pruning), the waits, a stall and the conditions.
//!
//! Text output lists at most [`TEXT_LIST_LIMIT`] keys per list (a first deploy of a large site
//! would bury the rest); JSON lists every one.

use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::{Value, json};
use stagehand_crds::StaticSite;
use stagehand_crds::static_site::{DistributionStatus, InvalidationStatus, SyncStatus};

use super::exit;
use super::report::{
    DriftLine, ObjectReport, conditions_json, drift_json, stall_json, waits_json, write_actions,
    write_conditions, write_drift, write_header, write_waits_and_stall,
};
use crate::base::plan::{Stall, Wait};
use crate::base::{ActGate, Classify};
use crate::static_site::StaticSiteError;
use crate::static_site::plan::{Action, Copy, Drift, Transfer, reason};
use crate::static_site::round::Round;

/// Keys printed per list in text output.
pub const TEXT_LIST_LIMIT: usize = 20;

/// What a list of actions does to the site's content, key by key.
#[derive(Debug, Default)]
pub struct ContentChanges<'a> {
    pub uploads: Vec<&'a Transfer>,
    pub metadata: Vec<&'a Copy>,
    pub restores: Vec<&'a Copy>,
    pub deletes: Vec<&'a str>,
    pub invalidation_paths: Vec<&'a str>,
}

impl<'a> ContentChanges<'a> {
    pub fn of(actions: &'a [Action]) -> Self {
        let mut changes = Self::default();
        for action in actions {
            match action {
                Action::UploadObjects { objects } => changes.uploads.extend(objects),
                Action::UpdateMetadata { objects } => changes.metadata.extend(objects),
                Action::RestoreVersions { objects } => changes.restores.extend(objects),
                Action::DeleteObjects { keys } => {
                    changes.deletes.extend(keys.iter().map(String::as_str));
                }
                Action::Invalidate { paths, .. } => {
                    changes
                        .invalidation_paths
                        .extend(paths.iter().map(String::as_str));
                }
                _ => {}
            }
        }
        changes
    }

    fn is_empty(&self) -> bool {
        self.uploads.is_empty()
            && self.metadata.is_empty()
            && self.restores.is_empty()
            && self.deletes.is_empty()
            && self.invalidation_paths.is_empty()
    }

    fn to_json(&self) -> Value {
        let metadata = |c: &Copy| {
            json!({"key": c.key, "contentType": c.metadata.content_type,
                   "cacheControl": c.metadata.cache_control})
        };
        json!({
            "uploads": self.uploads.iter().map(|t| json!({
                "key": t.key, "size": t.size, "sha256": t.sha256.to_hex(),
                "contentType": t.metadata.content_type, "cacheControl": t.metadata.cache_control,
            })).collect::<Vec<_>>(),
            "metadataUpdates": self.metadata.iter().map(|c| metadata(c)).collect::<Vec<_>>(),
            "restores": self.restores.iter().map(|c| json!({
                "key": c.key, "fromVersionId": c.from_version_id, "size": c.size,
            })).collect::<Vec<_>>(),
            "deletes": self.deletes,
            "invalidationPaths": self.invalidation_paths,
        })
    }

    /// The lists, titled in the present (`plan`) or the past (`apply`).
    fn write(&self, out: &mut String, done: bool) {
        let title = |todo: &'static str, past: &'static str| if done { past } else { todo };
        let bytes: u64 = self.uploads.iter().map(|t| t.size).sum();
        write_list(
            out,
            title("Upload", "Uploaded"),
            &format!(", {bytes} bytes"),
            self.uploads.iter().map(|t| {
                let cache = t.metadata.cache_control.as_deref().unwrap_or("-");
                format!(
                    "{}  {} B  {}  {cache}",
                    t.key, t.size, t.metadata.content_type
                )
            }),
        );
        write_list(
            out,
            title("Copy in place (metadata only)", "Copied in place"),
            "",
            self.metadata.iter().map(|c| {
                let cache = c.metadata.cache_control.as_deref().unwrap_or("-");
                format!("{}  {}  {cache}", c.key, c.metadata.content_type)
            }),
        );
        write_list(
            out,
            title("Restore from a stored version", "Restored"),
            "",
            self.restores
                .iter()
                .map(|c| format!("{}  from version {}", c.key, c.from_version_id)),
        );
        write_list(
            out,
            title("Delete", "Deleted"),
            "",
            self.deletes.iter().map(|k| (*k).to_owned()),
        );
        write_list(
            out,
            title("Invalidate", "Invalidated"),
            "",
            self.invalidation_paths.iter().map(|p| (*p).to_owned()),
        );
    }
}

/// `  <title> (<count><detail>):` and the first [`TEXT_LIST_LIMIT`] lines.
fn write_list(
    out: &mut String,
    title: &str,
    detail: &str,
    lines: impl ExactSizeIterator<Item = String>,
) {
    let total = lines.len();
    if total == 0 {
        return;
    }
    let _ = writeln!(out, "  {title} ({total}{detail}):");
    for line in lines.take(TEXT_LIST_LIMIT) {
        let _ = writeln!(out, "    {line}");
    }
    if total > TEXT_LIST_LIMIT {
        let _ = writeln!(
            out,
            "    … and {} more (-o json lists every one)",
            total - TEXT_LIST_LIMIT
        );
    }
}

/// The result for one site.
#[derive(Debug)]
pub struct SiteReport {
    pub namespace: String,
    pub name: String,
    pub owner: String,
    pub region: String,
    pub gate: ActGate,
    /// `InSync`, `ChangesPending`, `Stalled`, `Ready`, `TimedOut`, `Paused`, `Error`, ...
    pub result: &'static str,
    pub exit_code: u8,
    pub bucket: String,
    /// Whether the bucket exists (`None` before any round).
    pub bucket_exists: Option<bool>,
    pub distribution: Option<DistributionStatus>,
    /// The revision `.stagehand/served.json` named when the (last) round looked.
    pub served_before: Option<String>,
    /// The revision the site is to serve (`None` until known).
    pub revision: Option<String>,
    pub rolled_back_from: Option<String>,
    pub drift: Vec<Drift>,
    /// What the (last) plan would do.
    pub actions: Vec<Action>,
    pub waits: Vec<Wait>,
    pub stalled: Option<Stall>,
    pub conditions: Vec<Condition>,
    pub message: Option<String>,
    pub last_sync: Option<SyncStatus>,
    pub last_invalidation: Option<InvalidationStatus>,
    /// `apply`: the actions that ran, in order, over every round.
    pub applied: Vec<Action>,
    /// `apply`: reconcile rounds run.
    pub rounds: u32,
    pub error: Option<String>,
}

impl SiteReport {
    pub fn new(site: &StaticSite, owner: &str) -> Self {
        Self {
            namespace: site.namespace().unwrap_or_default(),
            name: site.name_any(),
            owner: owner.to_owned(),
            region: site.spec.region.clone(),
            gate: ActGate::Act,
            result: "Error",
            exit_code: exit::ERROR,
            bucket: site.spec.bucket.name.clone(),
            bucket_exists: None,
            distribution: None,
            served_before: None,
            revision: None,
            rolled_back_from: None,
            drift: Vec::new(),
            actions: Vec::new(),
            waits: Vec::new(),
            stalled: None,
            conditions: Vec::new(),
            message: None,
            last_sync: None,
            last_invalidation: None,
            applied: Vec::new(),
            rounds: 0,
            error: None,
        }
    }

    /// `<namespace>/<name>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A round refused to run for a reason only a human can fix (a `cacheControl` glob that
    /// does not compile, a record under `.stagehand/` that cannot be trusted).
    pub fn set_stall(&mut self, error: &StaticSiteError) {
        self.settle(exit::NOT_READY, "Stalled", None);
        self.stalled = Some(Stall {
            reason: error.reason(),
            message: error.to_string(),
        });
    }

    /// Takes what a round saw and decided, and the status it would write.
    pub fn set_round(&mut self, round: &Round) {
        let plan = &round.plan;
        self.bucket_exists = Some(round.observed.bucket.is_some());
        self.served_before = round
            .observed
            .served
            .as_ref()
            .map(|s| s.record.revision.clone());
        self.revision.clone_from(&plan.revision);
        self.rolled_back_from.clone_from(&plan.rolled_back_from);
        self.distribution.clone_from(&round.status.distribution);
        self.drift.clone_from(&plan.drift);
        self.actions.clone_from(&plan.actions);
        self.waits.clone_from(&plan.waits);
        self.stalled.clone_from(&plan.stalled);
        self.conditions.clone_from(&round.status.common.conditions);
        self.message.clone_from(&round.status.common.message);
        self.last_sync.clone_from(&round.status.last_sync);
        self.last_invalidation
            .clone_from(&round.status.last_invalidation);
    }

    fn drift_lines(&self) -> impl ExactSizeIterator<Item = DriftLine<'_>> {
        self.drift
            .iter()
            .map(|d| (d.field.as_str(), d.subject.as_str(), d.detail.as_str()))
    }

    fn write_site(&self, out: &mut String) {
        if let Some(exists) = self.bucket_exists {
            let state = if exists { "exists" } else { "does not exist" };
            let _ = writeln!(out, "  Bucket: {} ({state})", self.bucket);
        }
        if let Some(d) = &self.distribution {
            let _ = writeln!(
                out,
                "  Distribution: {} {} ({})",
                d.id,
                d.domain_name.as_deref().unwrap_or("?"),
                d.status.as_deref().unwrap_or("?")
            );
        }
        let served = self.served_before.as_deref().unwrap_or("nothing");
        match (&self.revision, &self.rolled_back_from) {
            (Some(revision), Some(from)) => {
                let _ = writeln!(
                    out,
                    "  Revision: {revision} (rolled back from {from}; was serving {served})"
                );
            }
            (Some(revision), None) => {
                let _ = writeln!(out, "  Revision: {revision} (was serving {served})");
            }
            (None, _) => {
                let _ = writeln!(out, "  Revision: not known yet (serving {served})");
            }
        }
    }

    fn write_last_sync(&self, out: &mut String) {
        if let Some(sync) = &self.last_sync {
            let _ = writeln!(
                out,
                "  Last sync: {} uploaded ({} bytes), {} copied in place, {} restored, {} deleted",
                sync.uploaded,
                sync.uploaded_bytes,
                sync.metadata_updated,
                sync.restored,
                sync.deleted
            );
        }
        if let Some(invalidation) = &self.last_invalidation {
            let _ = writeln!(
                out,
                "  Last invalidation: {} ({} path(s), {})",
                invalidation.id,
                invalidation.paths,
                invalidation.status.as_deref().unwrap_or("?")
            );
        }
    }
}

impl ObjectReport for SiteReport {
    fn kind(&self) -> &'static str {
        "StaticSite"
    }

    fn id(&self) -> String {
        SiteReport::id(self)
    }

    fn exit_code(&self) -> u8 {
        self.exit_code
    }

    fn settle(&mut self, exit_code: u8, result: &'static str, error: Option<String>) {
        self.exit_code = exit_code;
        self.result = result;
        self.error = error;
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn stall(&self) -> Option<&Stall> {
        self.stalled.as_ref()
    }

    fn pending_actions(&self) -> usize {
        self.actions.len()
    }

    fn json_section(&self) -> &'static str {
        "sites"
    }

    fn to_json(&self) -> Value {
        let action = |a: &Action| json!({"kind": a.facts().kind, "description": a.to_string()});
        json!({
            "kind": "StaticSite",
            "namespace": self.namespace,
            "name": self.name,
            "owner": self.owner,
            "region": self.region,
            "gate": format!("{:?}", self.gate),
            "result": self.result,
            "exitCode": self.exit_code,
            "bucket": {"name": self.bucket, "exists": self.bucket_exists},
            "distribution": self.distribution,
            "servedRevision": self.served_before,
            "revision": self.revision,
            "rolledBackFrom": self.rolled_back_from,
            "content": ContentChanges::of(&self.actions).to_json(),
            "drift": drift_json(self.drift_lines()),
            "actions": self.actions.iter().map(action).collect::<Vec<_>>(),
            "waits": waits_json(&self.waits),
            "stalled": stall_json(self.stalled.as_ref()),
            "conditions": conditions_json(&self.conditions),
            "message": self.message,
            "lastSync": self.last_sync,
            "lastInvalidation": self.last_invalidation,
            "applied": self.applied.iter().map(action).collect::<Vec<_>>(),
            "appliedContent": ContentChanges::of(&self.applied).to_json(),
            "rounds": self.rounds,
            "error": self.error,
        })
    }

    fn to_text(&self, applying: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        write_header(
            &mut out,
            "StaticSite",
            &self.id(),
            &self.owner,
            &self.region,
            self.gate,
        );
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  Error: {error}");
        }
        self.write_site(&mut out);
        let kind = |a: &Action| a.facts().kind;
        if applying {
            ContentChanges::of(&self.applied).write(&mut out, true);
            write_actions(&mut out, "Applied, in order", &self.applied, kind, true);
            write_actions(&mut out, "Still to do", &self.actions, kind, false);
            self.write_last_sync(&mut out);
        } else {
            let changes = ContentChanges::of(&self.actions);
            changes.write(&mut out, false);
            if changes.is_empty() {
                // Drift is what the lists above already say, key by key; shown when they are
                // not there (ObserveOnly, a stall) to say what differs.
                write_drift(&mut out, self.drift_lines());
            }
            write_actions(&mut out, "Actions, in order", &self.actions, kind, true);
        }
        write_waits_and_stall(&mut out, &self.waits, self.stalled.as_ref());
        write_conditions(&mut out, &self.conditions, reason::APPLYING);
        let _ = writeln!(out, "  Result: {}", self.result);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::s3::Sha256Digest;
    use crate::static_site::metadata::ObjectMetadata;
    use crate::static_site::observed::ContentOrigin;

    fn upload(key: &str) -> Transfer {
        Transfer {
            key: key.to_owned(),
            sha256: Sha256Digest::of(key.as_bytes()),
            size: 3,
            metadata: ObjectMetadata {
                content_type: "text/html".to_owned(),
                cache_control: None,
            },
            origin: ContentOrigin::ArchiveEntry,
        }
    }

    #[test]
    fn text_lists_at_most_twenty_keys_per_list_and_json_every_one() {
        let actions = vec![
            Action::UploadObjects {
                objects: (0..25).map(|i| upload(&format!("p/{i:02}.html"))).collect(),
            },
            Action::DeleteObjects {
                keys: vec!["old.html".to_owned()],
            },
            Action::Invalidate {
                distribution_id: "E1".to_owned(),
                caller_reference: "r".to_owned(),
                paths: vec!["/p/*".to_owned(), "/old.html".to_owned()],
            },
        ];
        let changes = ContentChanges::of(&actions);
        let mut out = String::new();
        changes.write(&mut out, false);
        assert!(
            out.starts_with("  Upload (25, 75 bytes):\n    p/00.html  3 B  text/html  -\n"),
            "{out}"
        );
        assert!(
            out.contains("    p/19.html") && !out.contains("p/20.html"),
            "{out}"
        );
        assert!(
            out.ends_with(
                "    … and 5 more (-o json lists every one)\n  Delete (1):\n    old.html\n  \
                 Invalidate (2):\n    /p/*\n    /old.html\n"
            ),
            "{out}"
        );
        let mut past = String::new();
        changes.write(&mut past, true);
        assert!(past.starts_with("  Uploaded (25, 75 bytes):"), "{past}");
        let json = changes.to_json();
        assert_eq!(json["uploads"].as_array().map(Vec::len), Some(25));
        assert_eq!(json["uploads"][24]["key"], "p/24.html");
        assert_eq!(json["deletes"], json!(["old.html"]));
        assert_eq!(json["invalidationPaths"], json!(["/p/*", "/old.html"]));
        assert_eq!(json["restores"], json!([]));
    }
}
