//! `rollbackTo`: exactly the manifest's versions come back; and `keepRevisions`: what is let go.

use super::fixtures::*;
use crate::static_site::metadata::MetadataRules;
use crate::static_site::observed::LiveObject;
use crate::static_site::plan::{Action, PRUNE_BATCH, VersionRef};

const BUILD_2: &[(&str, &str)] = &[
    ("index.html", "<html>v2</html>"),
    ("assets/app.2222.js", "app v2"),
    ("assets/app.css", "body{}"),
    ("docs/index.html", "<html>docs</html>"),
    ("robots.txt", "User-agent: *"),
];

/// r1 then r2 deployed; r2 served.
fn two_revisions() -> Site {
    let mut site = Site::converged();
    let r1 = manifest(&site.spec, "r1", BUILD_1);
    site = site.deployed("r2", BUILD_2, 2).build("r2", BUILD_2);
    site.store(r1);
    site
}

#[test]
fn a_rollback_restores_exactly_the_manifest_versions_and_deletes_the_rest() {
    let site = two_revisions().rollback_to("r1");
    let plan = site.plan();
    assert_eq!(
        kinds(&plan),
        [
            "RestoreVersions",
            "WriteManifest",
            "DeleteObjects",
            "Invalidate",
            "RecordServed"
        ]
    );
    let Action::RestoreVersions { objects } = the(&plan, "RestoreVersions") else {
        unreachable!()
    };
    // Every key whose live object differs from r1's, from exactly r1's version of it.
    for copy in objects {
        assert_eq!(
            copy.from_version_id,
            version("r1", &copy.key),
            "{}",
            copy.key
        );
    }
    let restored: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(restored, ["assets/app.1111.js", "index.html"]);
    assert_eq!(keys_of(the(&plan, "DeleteObjects")), ["assets/app.2222.js"]);
    let Action::RecordServed { served } = the(&plan, "RecordServed") else {
        unreachable!()
    };
    assert_eq!(served.revision, "r1");
    assert_eq!(served.rolled_back_from.as_deref(), Some("r2"));
    assert_eq!(plan.rolled_back_from.as_deref(), Some("r2"));
    assert_eq!(
        keys_of(the(&plan, "Invalidate")),
        ["/", "/assets/app.2222.js", "/index.html"],
        "what r2 changed or added; app.1111.js was not served by r2"
    );
}

#[test]
fn a_completed_rollback_holds_still() {
    let mut site = two_revisions().rollback_to("r1");
    // What the rollback round left: copies of r1's versions live, r1's manifest rewritten
    // with them, r1 served over r2.
    let mut r1 = manifest(&site.spec, "r1", BUILD_1);
    site.observed.live.remove("assets/app.2222.js");
    for (key, object) in &mut r1.objects {
        object.version_id = format!("v-copy-{key}");
        site.observed.live.insert(
            key.clone(),
            LiveObject {
                version_id: object.version_id.clone(),
                size: object.size,
                facts: None,
            },
        );
    }
    site.store(r1.clone());
    let served = site.observed.served.as_mut().unwrap();
    served.record.revision = "r1".into();
    served.record.manifest_version_id = "m-r1".into();
    served.record.rolled_back_from = Some("r2".into());
    served.record.sequence = 3;
    served.manifest = r1.into();
    let plan = site.plan();
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert_eq!(plan.rolled_back_from.as_deref(), Some("r2"));

    // Removing rollbackTo deploys the source (r2) again — from r2's stored versions, so
    // nothing is uploaded.
    site.spec.rollback_to = None;
    site.observed.source = source(BUILD_2).into();
    let plan = site.plan();
    assert_eq!(plan.sync.uploaded, 0);
    let Action::RestoreVersions { objects } = the(&plan, "RestoreVersions") else {
        unreachable!()
    };
    assert!(
        objects
            .iter()
            .all(|o| o.from_version_id == version("r2", &o.key))
    );
    let Action::RecordServed { served } = the(&plan, "RecordServed") else {
        unreachable!()
    };
    assert_eq!(
        (served.revision.as_str(), served.rolled_back_from.as_ref()),
        ("r2", None)
    );
}

#[test]
fn a_rollback_to_a_revision_not_kept_stalls() {
    let plan = two_revisions().rollback_to("r0").plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.stalled.unwrap().reason, "RevisionNotFound");
}

#[test]
fn pruning_drops_old_manifests_and_only_unreferenced_old_versions() {
    let mut site = two_revisions();
    site.spec.keep_revisions = 1;
    let r0 = manifest(&site.spec, "r0", &[("index.html", "<html>v0</html>")]);
    site.store(r0);
    let site = site.versions(&[
        // Current: never pruned.
        ("index.html", &version("r2", "index.html"), true),
        // r1's: not kept (keepRevisions 1, r2 is newer and served) → pruned.
        ("index.html", &version("r1", "index.html"), false),
        // Unknown to every manifest: pruned.
        ("index.html", "v-stray", false),
        // An old version of the served manifest object: pruned; the served one is current.
        (".stagehand/revisions/r2.json", "m-r2-old", false),
        (".stagehand/revisions/r2.json", "m-r2", true),
    ]);
    let plan = site.plan();
    assert_eq!(kinds(&plan), ["DeleteManifests", "PruneVersions"]);
    assert_eq!(
        keys_of(the(&plan, "DeleteManifests")),
        [
            ".stagehand/revisions/r0.json",
            ".stagehand/revisions/r1.json"
        ]
    );
    let Action::PruneVersions { versions } = the(&plan, "PruneVersions") else {
        unreachable!()
    };
    let pruned: Vec<&str> = versions.iter().map(|(_, v)| v.as_str()).collect();
    let r1_index = version("r1", "index.html");
    assert_eq!(pruned, [r1_index.as_str(), "v-stray", "m-r2-old"]);
}

#[test]
fn a_kept_manifest_s_versions_are_never_pruned() {
    let mut site = two_revisions();
    site.spec.keep_revisions = 2;
    let referenced: Vec<(String, String)> = site
        .observed
        .manifests
        .iter()
        .flat_map(|m| {
            m.manifest
                .objects
                .iter()
                .map(|(k, o)| (k.clone(), o.version_id.clone()))
        })
        .collect();
    let listed: Vec<(&str, &str, bool)> = referenced
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str(), false))
        .collect();
    let plan = site.versions(&listed).plan();
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

#[test]
fn pruning_is_batched_and_waits_for_a_round_with_nothing_else_to_do() {
    let stray: Vec<String> = (0..2_500).map(|i| format!("v-stray-{i}")).collect();
    let listed: Vec<(&str, &str, bool)> = stray
        .iter()
        .map(|v| ("old.txt", v.as_str(), false))
        .collect();
    let site = Site::converged().versions(&listed);
    let plan = site.plan();
    let sizes: Vec<usize> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::PruneVersions { versions } => versions.len(),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(sizes, [PRUNE_BATCH, PRUNE_BATCH, 500]);

    let busy = site.build("r2", &with(BUILD_1, "robots.txt", "changed"));
    assert!(busy.plan().actions_of("PruneVersions").is_empty());
}

#[test]
fn a_live_version_unknown_to_every_manifest_is_compared_by_its_facts() {
    // The object was rewritten with the same bytes and metadata (a no-op copy by a tool):
    // nothing to do but record the new version.
    let site = Site::converged();
    let rules = MetadataRules::compile(&site.spec.cache_control).unwrap();
    let metadata = rules.for_key("robots.txt");
    let site = site.live_unrecorded("robots.txt", "v-rewritten", "User-agent: *", metadata);
    let plan = site.plan();
    assert_eq!(
        plan.sync.uploaded + plan.sync.restored + plan.sync.metadata_updated,
        0
    );
    let Action::WriteManifest { manifest } = the(&plan, "WriteManifest") else {
        unreachable!()
    };
    assert_eq!(
        manifest.objects["robots.txt"].version,
        VersionRef::Known("v-rewritten".into())
    );
}
