//! A site in a known state, and builders that change it the way a scenario reads: a new
//! build, a hand edit, a crash halfway through a deploy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use stagehand_crds::StaticSiteSpec;

use crate::aws::s3::{ObjectVersion, Sha256Digest};
use crate::aws::tags::ownership_tags;
use crate::base::gates::ActGate;
use crate::base::intent;
use crate::static_site::manifest::{FORMAT, Manifest, ManifestObject, ManifestSource, Served};
use crate::static_site::metadata::{MetadataRules, ObjectMetadata};
use crate::static_site::observed::{
    ContentOrigin, DistributionConfig, LiveObject, ObjectFacts, Observed, ObservedBucket,
    ObservedDistribution, ObservedOac, ServedRevision, SourceBuild, SourceFile, SourceState,
    StoredManifest,
};
use crate::static_site::plan::{Action, PENDING_BUCKET, Plan, PlanContext, bucket_policy, plan};

pub const BUCKET: &str = "shop-web";
pub const OWNER: &str = "shop/StaticSite/web";
pub const CLUSTER: &str = "prod-1";
pub const DIST_ID: &str = "E2ABCDEFGH1";
pub const DIST_ARN: &str = "arn:aws:cloudfront::123456789012:distribution/E2ABCDEFGH1";
pub const OAC_ID: &str = "OAC123";

/// The storefront's files, first build.
pub const BUILD_1: &[(&str, &str)] = &[
    ("index.html", "<html>v1</html>"),
    ("assets/app.1111.js", "app v1"),
    ("assets/app.css", "body{}"),
    ("docs/index.html", "<html>docs</html>"),
    ("robots.txt", "User-agent: *"),
];

pub fn spec() -> StaticSiteSpec {
    serde_json::from_value(json!({
        "region": "us-east-1",
        "bucket": {"name": BUCKET, "create": true},
        "source": {"bucket": "artifacts", "archive": "builds/dist.zip"},
        "distribution": {"create": true, "spaFallback": true},
        "cacheControl": [
            {"pattern": "assets/**", "value": "public, max-age=31536000, immutable"},
            {"pattern": "**/*.html", "value": "no-cache"},
        ],
        "revision": "r1",
    }))
    .unwrap()
}

pub fn context() -> PlanContext {
    PlanContext {
        owner: OWNER.into(),
        cluster_id: CLUSTER.into(),
        uid: "0f3c-uid".into(),
        generation: 3,
        gate: ActGate::Act,
        now: "2026-12-01T02:00:00Z".into(),
    }
}

pub fn sha(content: &str) -> Sha256Digest {
    Sha256Digest::of(content.as_bytes())
}

/// The version id a key got when revision `revision` uploaded it.
pub fn version(revision: &str, key: &str) -> String {
    format!("v-{revision}-{key}")
}

pub fn source(files: &[(&str, &str)]) -> SourceState {
    SourceState::Read(SourceBuild {
        location: ManifestSource {
            bucket: "artifacts".into(),
            key: "builds/dist.zip".into(),
            version_id: None,
            sha256: None,
        },
        files: files
            .iter()
            .map(|(key, content)| SourceFile {
                key: (*key).into(),
                size: content.len() as u64,
                sha256: Some(sha(content)),
                origin: ContentOrigin::ArchiveEntry,
            })
            .collect(),
    })
}

/// The manifest `revision` would have for `files` under `spec`'s rules, its versions uploaded
/// by that revision.
pub fn manifest(spec: &StaticSiteSpec, revision: &str, files: &[(&str, &str)]) -> Manifest {
    let rules = MetadataRules::compile(&spec.cache_control).unwrap();
    Manifest {
        format: FORMAT,
        revision: revision.into(),
        created_at: format!("2026-11-{:02}T00:00:00Z", revision.len() + 10),
        source: ManifestSource::default(),
        objects: files
            .iter()
            .map(|(key, content)| {
                let metadata = rules.for_key(key);
                let object = ManifestObject {
                    version_id: version(revision, key),
                    sha256: sha(content).to_hex(),
                    size: content.len() as u64,
                    content_type: metadata.content_type,
                    cache_control: metadata.cache_control,
                };
                ((*key).to_owned(), object)
            })
            .collect(),
    }
}

pub fn desired_distribution() -> DistributionConfig {
    DistributionConfig {
        origin_domain_name: format!("{BUCKET}.s3.us-east-1.amazonaws.com"),
        origin_access_control_id: Some(OAC_ID.into()),
        default_root_object: "index.html".into(),
        redirect_to_https: true,
        compress: true,
        aliases: BTreeSet::new(),
        spa_fallback: true,
        enabled: true,
    }
}

/// A site and its spec, changed step by step.
pub struct Site {
    pub spec: StaticSiteSpec,
    pub context: PlanContext,
    pub observed: Observed,
}

impl Site {
    /// Nothing exists yet; the source holds `BUILD_1`.
    pub fn new() -> Self {
        Self {
            spec: spec(),
            context: context(),
            observed: Observed {
                source: source(BUILD_1).into(),
                ..Observed::default()
            },
        }
    }

    /// Status carries the intent record of the site's bucket (`status.pendingCreate`): what a
    /// first round of a new site writes before the bucket is created.
    pub fn recorded(mut self) -> Self {
        self.observed.pending_create = Some(intent::pending_create(PENDING_BUCKET, BUCKET));
        self
    }

    /// Revision `r1` (`BUILD_1`) deployed, served, every setting in place.
    pub fn converged() -> Self {
        let mut site = Self::new();
        let tags = ownership_tags(OWNER, CLUSTER);
        site.observed.bucket = Some(ObservedBucket {
            tags: tags.clone(),
            versioning_enabled: true,
            public_access_blocked: true,
            owner_enforced: true,
            encrypted: true,
            policy: Some(bucket_policy(None, BUCKET, DIST_ARN)),
            // Wanted only with an event feed, which the fixture has not.
            eventbridge_notifications: false,
        });
        site.observed.origin_access_control = Some(ObservedOac {
            id: OAC_ID.into(),
            name: "stagehand-shop-StaticSite-web".into(),
        });
        site.observed.distribution = Some(ObservedDistribution {
            id: DIST_ID.into(),
            arn: DIST_ARN.into(),
            domain_name: "d111.cloudfront.net".into(),
            status: "Deployed".into(),
            e_tag: "ETAG1".into(),
            tags,
            config: desired_distribution(),
        });
        site.deployed("r1", BUILD_1, 1)
    }

    /// `revision` of `files` stored, live and served (deploy number `sequence`).
    pub fn deployed(mut self, revision: &str, files: &[(&str, &str)], sequence: u64) -> Self {
        let manifest = manifest(&self.spec, revision, files);
        self.observed.live = manifest
            .objects
            .iter()
            .map(|(key, o)| {
                let live = LiveObject {
                    version_id: o.version_id.clone(),
                    size: o.size,
                    facts: None,
                };
                (key.clone(), live)
            })
            .collect();
        self.store(manifest.clone());
        self.observed.served = Some(ServedRevision {
            record: Served {
                format: FORMAT,
                revision: revision.into(),
                manifest_version_id: format!("m-{revision}"),
                sequence,
                rolled_back_from: None,
            },
            manifest: manifest.into(),
        });
        self
    }

    /// `manifest` stored (its object version `m-<revision>`), replacing an older one.
    pub fn store(&mut self, manifest: Manifest) {
        self.observed
            .manifests
            .retain(|m| m.manifest.revision != manifest.revision);
        self.observed.manifests.push(StoredManifest {
            version_id: format!("m-{}", manifest.revision),
            manifest: manifest.into(),
        });
    }

    /// The source now holds `files`, labelled `revision`.
    pub fn build(mut self, revision: &str, files: &[(&str, &str)]) -> Self {
        self.spec.revision = Some(revision.into());
        self.observed.source = source(files).into();
        self
    }

    /// Someone wrote `content` to `key` by hand, without the site's metadata (a HEAD told
    /// observe what it holds).
    pub fn hand_edit(self, key: &str, content: &str) -> Self {
        let metadata = MetadataRules::compile(&[]).unwrap().for_key(key);
        self.live_unrecorded(key, &format!("v-hand-{key}"), content, metadata)
    }

    /// `key`'s live object is a version this round's plan did not record, holding `content`
    /// with the spec's metadata: an upload done before a crash.
    pub fn uploaded_before_crash(self, key: &str, content: &str) -> Self {
        let rules = MetadataRules::compile(&self.spec.cache_control).unwrap();
        let metadata = rules.for_key(key);
        self.live_unrecorded(key, &format!("v-crashed-{key}"), content, metadata)
    }

    /// A live version no manifest records, with what observe's HEAD found in it.
    pub fn live_unrecorded(
        mut self,
        key: &str,
        version_id: &str,
        content: &str,
        metadata: ObjectMetadata,
    ) -> Self {
        self.observed.live.insert(
            key.into(),
            LiveObject {
                version_id: version_id.into(),
                size: content.len() as u64,
                facts: Some(ObjectFacts {
                    sha256: Some(sha(content)),
                    metadata,
                }),
            },
        );
        self
    }

    pub fn deleted_by_hand(mut self, key: &str) -> Self {
        self.observed.live.remove(key);
        self
    }

    pub fn rollback_to(mut self, revision: &str) -> Self {
        self.spec.rollback_to = Some(revision.into());
        self.observed.source = SourceState::NotRead.into();
        self
    }

    pub fn versions(mut self, versions: &[(&str, &str, bool)]) -> Self {
        self.observed.versions = Some(
            versions
                .iter()
                .map(|(key, version_id, is_latest)| ObjectVersion {
                    key: (*key).into(),
                    version_id: Some((*version_id).into()),
                    is_latest: *is_latest,
                    e_tag: None,
                    size: None,
                    delete_marker: false,
                    last_modified: None,
                })
                .collect(),
        );
        self
    }

    pub fn plan(&self) -> Plan {
        let rules = MetadataRules::compile(&self.spec.cache_control).unwrap();
        plan(&self.spec, &self.context, &rules, &self.observed)
    }
}

/// The kinds of a plan's actions, in order.
pub fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions.iter().map(|a| a.facts().kind).collect()
}

/// The keys an action moves, in order.
pub fn keys_of(action: &Action) -> Vec<&str> {
    match action {
        Action::UploadObjects { objects } => objects.iter().map(|o| o.key.as_str()).collect(),
        Action::UpdateMetadata { objects } | Action::RestoreVersions { objects } => {
            objects.iter().map(|o| o.key.as_str()).collect()
        }
        Action::DeleteObjects { keys } | Action::DeleteManifests { keys } => {
            keys.iter().map(String::as_str).collect()
        }
        Action::Invalidate { paths, .. } => paths.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The only action of `kind` in `plan`.
pub fn the<'p>(plan: &'p Plan, kind: &str) -> &'p Action {
    let found = plan.actions_of(kind);
    assert_eq!(found.len(), 1, "{kind} in {:#?}", plan.actions);
    found[0]
}

/// `files` with `key` changed to `content` (added if absent).
pub fn with(
    files: &[(&'static str, &'static str)],
    key: &'static str,
    content: &'static str,
) -> Vec<(&'static str, &'static str)> {
    let mut changed: BTreeMap<&str, &str> = files.iter().copied().collect();
    changed.insert(key, content);
    changed.into_iter().collect()
}
