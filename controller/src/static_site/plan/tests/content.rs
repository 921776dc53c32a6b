//! Syncing by content: what is uploaded, copied, restored and deleted, in which order, and
//! how a deploy cut short resumes.

use super::fixtures::*;
use crate::base::conditions::ReconcileOutcome;
use crate::static_site::plan::{Action, VersionRef};
use stagehand_crds::condition::CONTENT_IN_SYNC;

/// Index of the first action of `kind`.
fn at(plan: &crate::static_site::plan::Plan, kind: &str) -> Option<usize> {
    plan.actions.iter().position(|a| a.facts().kind == kind)
}

/// The rules every content plan keeps, whatever the scenario: nothing is deleted before the
/// revision's manifest is written (this round, or already stored), no key of the revision is
/// deleted, and the served record comes last.
fn assert_safe_order(site: &Site) {
    let plan = site.plan();
    if let Some(delete) = at(&plan, "DeleteObjects") {
        let revision = plan.revision.clone().unwrap();
        let written_before = at(&plan, "WriteManifest").is_some_and(|w| w < delete);
        assert!(
            written_before || site.observed.manifest(&revision).is_some(),
            "{:?}",
            kinds(&plan)
        );
        let manifest_keys: Vec<String> = match plan.actions_of("WriteManifest").first() {
            Some(Action::WriteManifest { manifest }) => manifest.objects.keys().cloned().collect(),
            _ => site
                .observed
                .manifest(&revision)
                .unwrap()
                .manifest
                .objects
                .keys()
                .cloned()
                .collect(),
        };
        for key in keys_of(&plan.actions[delete]) {
            assert!(
                !manifest_keys.iter().any(|k| k == key),
                "deletes live key {key}"
            );
        }
        for transfer in ["UploadObjects", "UpdateMetadata", "RestoreVersions"] {
            assert!(
                at(&plan, transfer).is_none_or(|t| t < delete),
                "{transfer} after delete"
            );
        }
    }
    if let Some(record) = at(&plan, "RecordServed") {
        assert_eq!(record, plan.actions.len() - 1, "{:?}", kinds(&plan));
    }
}

#[test]
fn a_first_deploy_creates_the_bucket_and_uploads_every_file_with_its_metadata() {
    let plan = Site::new().plan();
    assert_eq!(
        kinds(&plan),
        [
            "CreateBucket",
            "CreateOriginAccessControl",
            "UploadObjects",
            "WriteManifest",
            "RecordServed"
        ]
    );
    let Action::UploadObjects { objects } = the(&plan, "UploadObjects") else {
        unreachable!()
    };
    assert_eq!(objects.len(), BUILD_1.len());
    let app = objects
        .iter()
        .find(|o| o.key == "assets/app.1111.js")
        .unwrap();
    assert_eq!(app.sha256, sha("app v1"));
    assert_eq!(app.metadata.content_type, "text/javascript; charset=utf-8");
    assert_eq!(
        app.metadata.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    let Action::RecordServed { served } = the(&plan, "RecordServed") else {
        unreachable!()
    };
    assert_eq!((served.revision.as_str(), served.sequence), ("r1", 1));
    assert_eq!(served.manifest_version, VersionRef::WrittenThisRound);
    assert_eq!(plan.sync.uploaded, 5);
}

#[test]
fn a_converged_site_plans_nothing() {
    let plan = Site::converged().plan();
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert!(plan.waits.is_empty() && plan.drift.is_empty());
    assert_eq!(
        plan.condition(CONTENT_IN_SYNC).unwrap().reason,
        "ContentMatches"
    );
    assert_eq!(
        plan.outcome(),
        ReconcileOutcome::Converged {
            message: "serving revision r1".into()
        }
    );
}

#[test]
fn one_changed_file_is_one_upload_and_one_invalidation_path() {
    let build = with(BUILD_1, "assets/app.css", "body{color:red}");
    let site = Site::converged().build("r2", &build);
    let plan = site.plan();
    assert_eq!(
        kinds(&plan),
        [
            "UploadObjects",
            "WriteManifest",
            "Invalidate",
            "RecordServed"
        ]
    );
    assert_eq!(keys_of(the(&plan, "UploadObjects")), ["assets/app.css"]);
    assert_eq!(keys_of(the(&plan, "Invalidate")), ["/assets/app.css"]);
    let Action::WriteManifest { manifest } = the(&plan, "WriteManifest") else {
        unreachable!()
    };
    assert_eq!(
        manifest.objects["assets/app.css"].version,
        VersionRef::WrittenThisRound
    );
    assert_eq!(
        manifest.objects["index.html"].version,
        VersionRef::Known(version("r1", "index.html")),
        "unchanged keys keep their version"
    );
    let Action::Invalidate {
        caller_reference, ..
    } = the(&plan, "Invalidate")
    else {
        unreachable!()
    };
    assert!(
        caller_reference.starts_with("stagehand-r2-2-"),
        "{caller_reference}"
    );
    assert_safe_order(&site);
}

#[test]
fn a_changed_root_object_invalidates_its_directory_too() {
    let site = Site::converged().build("r2", &with(BUILD_1, "index.html", "<html>v2</html>"));
    assert_eq!(
        keys_of(the(&site.plan(), "Invalidate")),
        ["/", "/index.html"]
    );
    let docs = Site::converged().build("r2", &with(BUILD_1, "docs/index.html", "new"));
    assert_eq!(
        keys_of(the(&docs.plan(), "Invalidate")),
        ["/docs/", "/docs/index.html"]
    );
}

#[test]
fn the_same_content_rebuilt_is_the_same_derived_revision_and_changes_nothing() {
    let mut first = Site::new();
    first.spec.revision = None;
    let label = first.plan().revision.unwrap();
    assert!(label.starts_with("sha-"), "{label}");
    let mut site = Site::converged().deployed(&label, BUILD_1, 2);
    site.spec.revision = None;
    let plan = site.plan();
    assert_eq!(plan.revision.as_deref(), Some(label.as_str()));
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

#[test]
fn a_metadata_only_change_is_copied_in_place_with_zero_uploads() {
    let mut site = Site::converged().build("r2", BUILD_1);
    site.spec.cache_control[0].value = "public, max-age=600".into();
    let plan = site.plan();
    assert_eq!(
        kinds(&plan),
        [
            "UpdateMetadata",
            "WriteManifest",
            "Invalidate",
            "RecordServed"
        ]
    );
    let Action::UpdateMetadata { objects } = the(&plan, "UpdateMetadata") else {
        unreachable!()
    };
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["assets/app.1111.js", "assets/app.css"]);
    assert_eq!(
        objects[0].from_version_id,
        version("r1", "assets/app.1111.js")
    );
    assert_eq!(
        objects[0].metadata.cache_control.as_deref(),
        Some("public, max-age=600")
    );
    assert_eq!((plan.sync.uploaded, plan.sync.metadata_updated), (0, 2));
    assert_eq!(
        keys_of(the(&plan, "Invalidate")),
        ["/assets/app.1111.js", "/assets/app.css"]
    );
}

#[test]
fn a_removed_file_is_deleted_only_after_the_new_manifest() {
    let build: Vec<_> = BUILD_1
        .iter()
        .copied()
        .filter(|(k, _)| *k != "robots.txt")
        .collect();
    let site = Site::converged().build("r2", &build);
    let plan = site.plan();
    assert_eq!(
        kinds(&plan),
        [
            "WriteManifest",
            "DeleteObjects",
            "Invalidate",
            "RecordServed"
        ]
    );
    assert_eq!(keys_of(the(&plan, "DeleteObjects")), ["robots.txt"]);
    assert_eq!(keys_of(the(&plan, "Invalidate")), ["/robots.txt"]);
    assert_safe_order(&site);
}

fn as_refs<'a>(files: &'a [(String, String)], index: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, c)| (k.as_str(), c.as_str()))
        .collect();
    refs.push(("index.html", index));
    refs
}

#[test]
fn fifty_renamed_assets_and_the_index_collapse_to_three_paths() {
    let old: Vec<(String, String)> = (0..50)
        .map(|i| (format!("assets/chunk-{i:02}.aaaa.js"), format!("chunk {i}")))
        .collect();
    let new: Vec<(String, String)> = (0..50)
        .map(|i| {
            (
                format!("assets/chunk-{i:02}.bbbb.js"),
                format!("chunk {i} v2"),
            )
        })
        .collect();
    let site = Site::converged()
        .deployed("r1", &as_refs(&old, "<html>v1</html>"), 1)
        .build("r2", &as_refs(&new, "<html>v2</html>"));
    let plan = site.plan();
    assert_eq!(plan.sync.uploaded, 51);
    assert_eq!(plan.sync.deleted, 50);
    assert_eq!(
        keys_of(the(&plan, "Invalidate")),
        ["/", "/assets/*", "/index.html"]
    );
    assert_safe_order(&site);
}

#[test]
fn a_deploy_cut_short_resumes_without_uploading_again() {
    let build = with(
        with(BUILD_1, "assets/app.css", "v2").as_slice(),
        "new.txt",
        "new",
    );
    // Crashed after uploading app.css, before new.txt and the manifest.
    let site = Site::converged()
        .build("r2", &build)
        .uploaded_before_crash("assets/app.css", "v2");
    let plan = site.plan();
    assert_eq!(keys_of(the(&plan, "UploadObjects")), ["new.txt"]);
    let Action::WriteManifest { manifest } = the(&plan, "WriteManifest") else {
        unreachable!()
    };
    assert_eq!(
        manifest.objects["assets/app.css"].version,
        VersionRef::Known("v-crashed-assets/app.css".into())
    );
    assert_eq!(keys_of(the(&plan, "Invalidate")), ["/assets/app.css"]);
    assert_safe_order(&site);
}

#[test]
fn a_deploy_cut_short_after_its_deletions_still_invalidates_them() {
    let build: Vec<_> = BUILD_1
        .iter()
        .copied()
        .filter(|(k, _)| *k != "robots.txt")
        .collect();
    let mut site = Site::converged().build("r2", &build);
    // r2's manifest written and robots.txt deleted; the invalidation never happened.
    site.store(manifest(&site.spec, "r2", &build));
    for (key, _) in &build {
        site.observed.live.get_mut(*key).unwrap().version_id = version("r2", key);
    }
    site.observed.live.remove("robots.txt");
    let plan = site.plan();
    assert_eq!(kinds(&plan), ["Invalidate", "RecordServed"]);
    assert!(keys_of(the(&plan, "Invalidate")).contains(&"/robots.txt"));
}

#[test]
fn a_file_whose_version_was_deleted_for_good_is_uploaded_again_not_copied() {
    // robots.txt's only version deleted by hand: the listing has every other key's version.
    let converged = Site::converged();
    let listed: Vec<(String, String)> = converged
        .observed
        .live
        .iter()
        .filter(|(key, _)| key.as_str() != "robots.txt")
        .map(|(key, live)| (key.clone(), live.version_id.clone()))
        .collect();
    let listed: Vec<(&str, &str, bool)> = listed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str(), true))
        .collect();
    let site = converged.deleted_by_hand("robots.txt").versions(&listed);
    let plan = site.plan();
    assert!(
        !kinds(&plan).contains(&"RestoreVersions"),
        "{:?}",
        kinds(&plan)
    );
    let Action::UploadObjects { objects } = the(&plan, "UploadObjects") else {
        unreachable!()
    };
    let uploaded: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(uploaded, ["robots.txt"]);
}

#[test]
fn hand_edits_and_deletions_are_restored_from_the_served_revision() {
    let site = Site::converged()
        .hand_edit("index.html", "<html>defaced</html>")
        .deleted_by_hand("robots.txt");
    let plan = site.plan();
    assert_eq!(
        kinds(&plan),
        [
            "RestoreVersions",
            "WriteManifest",
            "Invalidate",
            "RecordServed"
        ]
    );
    let Action::RestoreVersions { objects } = the(&plan, "RestoreVersions") else {
        unreachable!()
    };
    let restored: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| (o.key.as_str(), o.from_version_id.as_str()))
        .collect();
    let index_version = version("r1", "index.html");
    let robots_version = version("r1", "robots.txt");
    assert_eq!(
        restored,
        [
            ("index.html", index_version.as_str()),
            ("robots.txt", robots_version.as_str())
        ]
    );
    assert_eq!(plan.sync.uploaded, 0);
    assert_eq!(
        keys_of(the(&plan, "Invalidate")),
        ["/", "/index.html", "/robots.txt"]
    );
    assert_safe_order(&site);
}

#[test]
fn a_revision_label_reused_for_other_content_stalls() {
    let site = Site::converged().build("r1", &with(BUILD_1, "index.html", "other"));
    let plan = site.plan();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.stalled.unwrap().reason, "RevisionReused");
}

#[test]
fn a_refused_archive_stalls_with_its_message_and_leaves_the_site_alone() {
    let mut site = Site::converged();
    site.observed.source = crate::static_site::observed::SourceState::Refused {
        reason: "UnsafeEntryName",
        message: "archive entry \"../evil\" refused: `..` path segments are not allowed".into(),
    }
    .into();
    site.observed.bucket.as_mut().unwrap().encrypted = false;
    let plan = site.plan();
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    let stall = plan.stalled.clone().unwrap();
    assert_eq!(stall.reason, "UnsafeEntryName");
    assert!(stall.message.contains("../evil"));
    assert!(matches!(plan.outcome(), ReconcileOutcome::Stalled { .. }));
}

#[test]
fn unhashed_prefix_objects_are_hashed_before_anything_else_of_the_content() {
    let mut site = Site::converged().build("r2", &with(BUILD_1, "robots.txt", "new"));
    if let crate::static_site::observed::SourceState::Read(build) =
        std::sync::Arc::make_mut(&mut site.observed.source)
    {
        build.files[4].sha256 = None;
    }
    let plan = site.plan();
    assert_eq!(kinds(&plan), ["HashSourceObjects"]);
    assert_eq!(
        plan.condition(CONTENT_IN_SYNC).unwrap().reason,
        "SourceHashPending"
    );
}

/// `BUILD_1` zipped with every entry stamped `year`, read back through the archive reader.
fn zipped_build_1(year: u16) -> crate::static_site::observed::SourceState {
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    let options = SimpleFileOptions::default()
        .last_modified_time(zip::DateTime::from_date_and_time(year, 6, 1, 12, 0, 0).unwrap());
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (key, content) in BUILD_1 {
        writer.start_file(*key, options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    let bytes = writer.finish().unwrap().into_inner();
    let build = crate::static_site::build::read_archive(
        bytes.as_slice(),
        crate::static_site::build::ArchiveFormat::Zip,
        crate::static_site::build::ArchiveLimits::default(),
        &mut crate::static_site::build::Discard,
    )
    .unwrap();
    crate::static_site::observed::SourceState::Read(
        build.into_source(crate::static_site::manifest::ManifestSource::default()),
    )
}

#[test]
fn a_rebuilt_archive_with_new_timestamps_is_the_same_revision_and_uploads_nothing() {
    let mut first = Site::new();
    first.spec.revision = None;
    first.observed.source = zipped_build_1(2025).into();
    let label = first.plan().revision.unwrap();

    let mut rebuilt = Site::converged().deployed(&label, BUILD_1, 2);
    rebuilt.spec.revision = None;
    rebuilt.observed.source = zipped_build_1(2026).into();
    let plan = rebuilt.plan();
    assert_eq!(plan.revision, Some(label));
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}
