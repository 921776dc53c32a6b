//! Rounds against a model of the bucket: plan, act (cut short by a crash after any number of
//! steps), plan again — until nothing is left to do. Whatever the crash point, the site ends on
//! the revision, no content is uploaded twice, and no key of the revision is ever deleted nor
//! any key deleted before the revision's manifest is stored.

use std::collections::{BTreeMap, HashMap};

use super::fixtures::*;
use crate::static_site::manifest::{Manifest, manifest_key};
use crate::static_site::observed::{LiveObject, ObjectFacts, ObservedBucket, ServedRevision};
use crate::static_site::plan::{Action, Copy};

/// The model: the site's observed state, changed by actions as AWS would.
struct World {
    site: Site,
    /// Every version written: key → (version id).
    next_version: u64,
    uploads: BTreeMap<String, usize>,
    invalidations: usize,
}

impl World {
    fn version(&mut self) -> String {
        self.next_version += 1;
        format!("w{}", self.next_version)
    }

    fn put(
        &mut self,
        key: &str,
        size: u64,
        facts: ObjectFacts,
        written: &mut HashMap<String, String>,
    ) {
        let version_id = self.version();
        written.insert(key.to_owned(), version_id.clone());
        self.site.observed.live.insert(
            key.to_owned(),
            LiveObject {
                version_id,
                size,
                facts: Some(facts),
            },
        );
    }

    fn copy(&mut self, copy: &Copy, written: &mut HashMap<String, String>) {
        let facts = ObjectFacts {
            sha256: Some(copy.sha256),
            metadata: copy.metadata.clone(),
        };
        self.put(&copy.key, copy.size, facts, written);
    }

    /// Runs one round's actions, stopping after `budget` steps (each object moved is a step,
    /// each other action one). Returns whether the round finished.
    fn act(&mut self, actions: Vec<Action>, mut budget: usize) -> bool {
        let mut written = HashMap::new();
        let mut manifest_version = None;
        for action in actions {
            match action {
                Action::UploadObjects { objects } => {
                    for object in objects {
                        if budget == 0 {
                            return false;
                        }
                        budget -= 1;
                        *self.uploads.entry(object.key.clone()).or_default() += 1;
                        let facts = ObjectFacts {
                            sha256: Some(object.sha256),
                            metadata: object.metadata.clone(),
                        };
                        self.put(&object.key, object.size, facts, &mut written);
                    }
                    continue;
                }
                Action::UpdateMetadata { objects } | Action::RestoreVersions { objects } => {
                    for object in objects {
                        if budget == 0 {
                            return false;
                        }
                        budget -= 1;
                        self.copy(&object, &mut written);
                    }
                    continue;
                }
                _ if budget == 0 => return false,
                _ => budget -= 1,
            }
            match action {
                Action::WriteManifest { manifest } => {
                    let manifest = manifest.resolve(&written).unwrap();
                    let version_id = self.version();
                    manifest_version = Some(version_id.clone());
                    self.site
                        .observed
                        .manifests
                        .retain(|m| m.manifest.revision != manifest.revision);
                    self.site.observed.manifests.push(
                        crate::static_site::observed::StoredManifest {
                            manifest: manifest.into(),
                            version_id,
                        },
                    );
                }
                Action::DeleteObjects { keys } => self.delete(&keys),
                Action::Invalidate { .. } => self.invalidations += 1,
                Action::RecordServed { served } => {
                    let record = served.resolve(manifest_version.as_deref()).unwrap();
                    let manifest = self.manifest_at(&record.revision, &record.manifest_version_id);
                    self.site.observed.served = Some(ServedRevision {
                        record,
                        manifest: manifest.into(),
                    });
                }
                other => panic!("not expected in these scenarios: {other}"),
            }
        }
        true
    }

    /// Deletion is only ever of keys outside the stored manifest of the revision being served.
    fn delete(&mut self, keys: &[String]) {
        let revision = self
            .site
            .spec
            .rollback_to
            .clone()
            .or(self.site.spec.revision.clone())
            .unwrap();
        let kept: Vec<String> = self
            .site
            .observed
            .manifest(&revision)
            .unwrap_or_else(|| panic!("deleting {keys:?} before {revision}'s manifest is stored"))
            .manifest
            .objects
            .keys()
            .cloned()
            .collect();
        for key in keys {
            assert!(!kept.contains(key), "deleting {key}, part of {revision}");
            self.site.observed.live.remove(key);
        }
    }

    fn manifest_at(&self, revision: &str, version_id: &str) -> Manifest {
        let stored = self.site.observed.manifest(revision).unwrap();
        assert_eq!(stored.version_id, version_id, "{}", manifest_key(revision));
        (*stored.manifest).clone()
    }

    /// Rounds until a plan has nothing to do; the first round crashes after `budget` steps.
    fn converge(&mut self, budget: usize) -> usize {
        let mut budget = Some(budget);
        for round in 1..=6 {
            let plan = self.site.plan();
            assert!(plan.stalled.is_none(), "{:?}", plan.stalled);
            if plan.actions.is_empty() {
                return round;
            }
            self.act(plan.actions, budget.take().unwrap_or(usize::MAX));
        }
        panic!("no convergence in 6 rounds");
    }
}

fn world(site: Site) -> World {
    World {
        site,
        next_version: 0,
        uploads: BTreeMap::new(),
        invalidations: 0,
    }
}

const BUILD_2: &[(&str, &str)] = &[
    ("index.html", "<html>v2</html>"),
    ("assets/app.2222.js", "app v2"),
    ("assets/app.css", "body{}"),
    ("docs/index.html", "<html>docs</html>"),
    ("new.txt", "new"),
];

/// Every key's live content is the wanted one, and the served record names `revision`.
fn assert_serves(world: &World, revision: &str, files: &[(&str, &str)]) {
    let observed = &world.site.observed;
    let live: Vec<&str> = observed.live.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = files.iter().map(|(k, _)| *k).collect();
    expected.sort_unstable();
    assert_eq!(live, expected);
    let served = observed.served.as_ref().unwrap();
    assert_eq!(served.record.revision, revision);
    for (key, content) in files {
        let object = &served.manifest.objects[*key];
        assert_eq!(object.sha256, sha(content).to_hex(), "{key}");
        assert_eq!(object.version_id, observed.live[*key].version_id, "{key}");
    }
}

#[test]
fn a_deploy_converges_from_a_crash_at_any_step_uploading_nothing_twice() {
    let steps = 10;
    for budget in 0..=steps {
        let mut w = world(Site::converged().build("r2", BUILD_2));
        let rounds = w.converge(budget);
        assert!(rounds <= 3, "budget {budget}: {rounds} rounds");
        assert_serves(&w, "r2", BUILD_2);
        let uploaded: Vec<(&str, usize)> =
            w.uploads.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            uploaded,
            [("assets/app.2222.js", 1), ("index.html", 1), ("new.txt", 1)],
            "budget {budget}"
        );
    }
}

#[test]
fn a_first_deploy_reaches_a_created_distribution_and_converges() {
    let mut w = world(Site::new());
    // Round 1 creates the bucket and OAC and uploads; the model gives them their AWS shape.
    let plan = w.site.plan();
    w.act(
        plan.actions
            .into_iter()
            .filter(Action::is_content)
            .collect(),
        usize::MAX,
    );
    let converged = Site::converged();
    w.site.observed.bucket = converged
        .observed
        .bucket
        .clone()
        .map(|b| ObservedBucket { policy: None, ..b });
    w.site.observed.origin_access_control = converged.observed.origin_access_control.clone();
    let plan = w.site.plan();
    assert_eq!(kinds(&plan), ["CreateDistribution"]);
    w.site.observed.distribution = converged.observed.distribution.clone();
    let plan = w.site.plan();
    assert_eq!(kinds(&plan), ["PutBucketPolicy"]);
    w.site.observed.bucket = converged.observed.bucket.clone();
    assert!(w.site.plan().actions.is_empty());
    assert_serves(&w, "r1", BUILD_1);
    assert_eq!(w.invalidations, 0, "nothing was cached before");
}

#[test]
fn a_rollback_converges_from_a_crash_at_any_step_and_holds() {
    for budget in 0..=8 {
        let mut w = world(Site::converged().build("r2", BUILD_2));
        w.converge(usize::MAX);
        let uploads_before = w.uploads.values().sum::<usize>();
        w.site = std::mem::replace(&mut w.site, Site::new()).rollback_to("r1");
        w.converge(budget);
        assert_serves(&w, "r1", BUILD_1);
        assert_eq!(
            w.site
                .observed
                .served
                .as_ref()
                .unwrap()
                .record
                .rolled_back_from
                .as_deref(),
            Some("r2")
        );
        assert_eq!(
            w.uploads.values().sum::<usize>(),
            uploads_before,
            "a rollback uploads nothing"
        );
    }
}
