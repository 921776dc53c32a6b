//! The soak's world: the API stand-in with the CRDs, moto behind the fault proxy, the account
//! seeded for N objects (a mix of LambdaStages, SpotFleets and StaticSites), and the spec
//! changes the driver makes while the replicas reconcile. Every object's expected end state is
//! kept here, so that the audit can say what AWS must hold.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use stagehand_testenv::TestApiServer;
use stagehand_testenv::aws::AwsFloor;
use stagehand_testenv::aws::zip::deterministic_zip;

use super::chaos::CallLog;

pub const NAMESPACE: &str = "soak";
pub const REGION: &str = "us-east-1";
/// Lambda builds, stack templates and site builds.
pub const ARTIFACTS: &str = "soak-artifacts";
/// moto's default AMI.
const IMAGE: &str = "ami-12c6146b";
pub const FLEET_CAPACITY: i32 = 2;
pub const FLEET_MAX_SURGE: i32 = 1;

/// The three kinds, in the order objects are dealt out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    LambdaStage,
    SpotFleet,
    StaticSite,
}

impl Kind {
    pub const ALL: [Self; 3] = [Self::LambdaStage, Self::SpotFleet, Self::StaticSite];

    pub fn name(self) -> &'static str {
        match self {
            Self::LambdaStage => "LambdaStage",
            Self::SpotFleet => "SpotFleet",
            Self::StaticSite => "StaticSite",
        }
    }

    pub fn api(self, client: kube::Client) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("stagehand.dev", "v1alpha1", self.name());
        Api::namespaced_with(client, NAMESPACE, &ApiResource::from_gvk(&gvk))
    }
}

/// One object of the soak and what its spec asks for now.
#[derive(Clone, Debug)]
pub struct Object {
    pub kind: Kind,
    pub index: usize,
    /// Lambda build / fleet user-data version / site revision the spec names now.
    pub version: u32,
    /// StaticSite: the revision `rollbackTo` names, while set.
    pub rollback_to: Option<u32>,
    /// StaticSite: how many times the served revision was asked to change (deploys,
    /// rollbacks and their undoing, the first deploy included).
    pub revision_changes: u32,
}

impl Object {
    pub fn name(&self) -> String {
        match self.kind {
            Kind::LambdaStage => format!("stage-{}", self.index),
            Kind::SpotFleet => format!("fleet-{}", self.index),
            Kind::StaticSite => format!("site-{}", self.index),
        }
    }

    pub fn owner(&self) -> String {
        format!("{NAMESPACE}/{}/{}", self.kind.name(), self.name())
    }

    pub fn function(&self) -> String {
        format!("soak-fn-{}", self.index)
    }

    pub fn queue(&self) -> String {
        format!("soak-q-{}", self.index)
    }

    pub fn site_bucket(&self) -> String {
        format!("soak-site-{}", self.index)
    }

    /// The revision the site must serve once converged.
    pub fn served_revision(&self) -> u32 {
        self.rollback_to.unwrap_or(self.version)
    }
}

/// Where fleets launch.
pub struct Network {
    pub subnets: Vec<String>,
    pub security_group: String,
}

/// The floor (stand-in + moto behind the proxy), an SDK config straight to moto for the
/// driver and the audit (never faulted, never counted), and the objects.
pub struct World {
    pub server: TestApiServer,
    pub floor: AwsFloor,
    pub direct: SdkConfig,
    pub network: Network,
    pub objects: Vec<Object>,
    /// Every AWS call through the proxy, kept whole (see [`CallLog`]).
    pub log: CallLog,
}

impl World {
    /// Starts the floor and seeds it for `n` objects (no object created yet).
    pub async fn start(n: usize) -> Self {
        let server = TestApiServer::start().await.unwrap();
        server.install_stagehand_crds().await.unwrap();
        server.create_namespace(NAMESPACE).await.unwrap();
        let floor = AwsFloor::start().await.unwrap();
        let direct = sdk(&floor.moto().url()).await;
        let network = network(&direct).await;
        let objects = (0..n)
            .map(|index| Object {
                kind: Kind::ALL[index % Kind::ALL.len()],
                index,
                version: 1,
                rollback_to: None,
                revision_changes: 1,
            })
            .collect();
        let world = Self {
            server,
            floor,
            direct,
            network,
            objects,
            log: CallLog::default(),
        };
        world.seed().await;
        world
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3(&self.direct)
    }

    /// Reads the calls the proxy logged since the last read into [`World::log`].
    pub fn read_log(&mut self) {
        self.log.read(self.floor.proxy());
    }

    /// The artifact bucket, a queue and a stack template per LambdaStage, every first build.
    async fn seed(&self) {
        let role = self.floor.moto().create_lambda_role().await.unwrap();
        self.s3()
            .create_bucket()
            .bucket(ARTIFACTS)
            .send()
            .await
            .unwrap();
        let sqs = aws_sdk_sqs::Client::new(&self.direct);
        for object in &self.objects {
            match object.kind {
                Kind::LambdaStage => {
                    sqs.create_queue()
                        .queue_name(object.queue())
                        .send()
                        .await
                        .unwrap();
                    self.put(&template_key(object.index), template(object, &role))
                        .await;
                    self.put(&build_key(object.index, 0), lambda_build(object.index, 0))
                        .await;
                    self.upload_version(object).await;
                }
                Kind::StaticSite => self.upload_version(object).await,
                Kind::SpotFleet => {}
            }
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3()
            .put_object()
            .bucket(ARTIFACTS)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    /// Uploads the build or site archive of the object's current version.
    async fn upload_version(&self, object: &Object) {
        match object.kind {
            Kind::LambdaStage => {
                let body = lambda_build(object.index, object.version);
                self.put(&build_key(object.index, object.version), body)
                    .await;
            }
            Kind::StaticSite => {
                let files = site_files(object.index, object.version);
                self.put(&archive_key(object.index, object.version), zip_of(&files))
                    .await;
            }
            Kind::SpotFleet => {}
        }
    }

    /// Creates every object.
    pub async fn create_all(&self) {
        for object in &self.objects {
            let manifest = json!({
                "apiVersion": "stagehand.dev/v1alpha1",
                "kind": object.kind.name(),
                "metadata": {"name": object.name(), "namespace": NAMESPACE},
                "spec": self.spec(object),
            });
            let manifest: DynamicObject = serde_json::from_value(manifest).unwrap();
            object
                .kind
                .api(self.server.client())
                .create(&PostParams::default(), &manifest)
                .await
                .unwrap();
        }
    }

    fn spec(&self, object: &Object) -> Value {
        let i = object.index;
        match object.kind {
            Kind::LambdaStage => json!({
                "region": REGION,
                "code": {"s3": {"bucket": ARTIFACTS, "key": build_key(i, object.version)}},
                "infrastructure": {
                    "stackName": format!("soak-stack-{i}"),
                    "template": {"bucket": ARTIFACTS, "key": template_key(i)},
                    "onRollbackComplete": "Recreate",
                },
                "functions": [{"fromStack": "Fn"}],
                "eventSourceMappings": [
                    {"function": object.function(), "queue": object.queue(), "batchSize": 5},
                ],
                // Never prunes in the soak: moto reuses a deleted version's number.
                "alias": {"name": "live", "publishVersions": true, "keepVersions": 100},
            }),
            Kind::SpotFleet => json!({
                "region": REGION,
                "deletionPolicy": "Delete",
                "capacity": FLEET_CAPACITY,
                "instanceTypes": ["t3.small", "t3a.small"],
                "imageId": IMAGE,
                "subnetIds": self.network.subnets,
                "securityGroupIds": [self.network.security_group],
                "userData": user_data(object.version),
                "tags": {"soak": "true"},
                "replacement": {"strategy": "Surge", "maxSurge": FLEET_MAX_SURGE},
                "healthCheck": {"gracePeriodSeconds": 300},
            }),
            Kind::StaticSite => json!({
                "region": REGION,
                "deletionPolicy": "Delete",
                "bucket": {"name": object.site_bucket(), "create": true},
                "source": {"bucket": ARTIFACTS, "archive": archive_key(i, object.version)},
                "revision": revision_label(object.version),
                "distribution": {"create": true, "spaFallback": true},
                "invalidation": {"wait": true},
                "cacheControl": [{"pattern": "assets/**", "value": "public, max-age=31536000, immutable"}],
                "keepRevisions": 3,
            }),
        }
    }

    /// Changes object `at`'s spec as its users would: a new Lambda build, a fleet change that
    /// replaces every instance, a new site revision, a rollback to a kept revision or its
    /// undoing. Returns what was done.
    pub async fn change(&mut self, at: usize, rng: &mut StdRng) -> &'static str {
        let mut object = self.objects[at].clone();
        let api = object.kind.api(self.server.client());
        let (patch, what) = match object.kind {
            Kind::LambdaStage => {
                object.version += 1;
                self.upload_version(&object).await;
                let key = build_key(object.index, object.version);
                (
                    json!({"code": {"s3": {"bucket": ARTIFACTS, "key": key}}}),
                    "new build",
                )
            }
            Kind::SpotFleet => {
                object.version += 1;
                (
                    json!({"userData": user_data(object.version)}),
                    "instances replaced",
                )
            }
            Kind::StaticSite => {
                object.revision_changes += 1;
                let kept = kept_revisions(&api, &object.name()).await;
                if object.rollback_to.take().is_some() {
                    (json!({"rollbackTo": null}), "rollback undone")
                } else if let Some(target) = rollback_target(&kept, object.version, rng) {
                    object.rollback_to = Some(target);
                    (json!({"rollbackTo": revision_label(target)}), "rollback")
                } else {
                    object.version += 1;
                    self.upload_version(&object).await;
                    let archive = archive_key(object.index, object.version);
                    let source = json!({"bucket": ARTIFACTS, "archive": archive});
                    let revision = revision_label(object.version);
                    (
                        json!({"source": source, "revision": revision}),
                        "new revision",
                    )
                }
            }
        };
        api.patch(
            &object.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": patch })),
        )
        .await
        .unwrap();
        self.objects[at] = object;
        what
    }
}

/// The site's kept revisions (`status.revisions`), by version number.
async fn kept_revisions(api: &Api<DynamicObject>, name: &str) -> Vec<u32> {
    let site = api.get(name).await.unwrap();
    site.data["status"]["revisions"]
        .as_array()
        .map(|revisions| {
            revisions
                .iter()
                .filter_map(|r| r["revision"].as_str()?.strip_prefix('r')?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Now and then (one change in three) a kept revision older than the current one.
fn rollback_target(kept: &[u32], current: u32, rng: &mut StdRng) -> Option<u32> {
    let older: Vec<u32> = kept.iter().copied().filter(|r| *r < current).collect();
    (!older.is_empty() && rng.random_ratio(1, 3)).then(|| older[rng.random_range(0..older.len())])
}

/// An SDK config talking to `endpoint_url` with the floor's dummy credentials.
pub async fn sdk(endpoint_url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Two subnets of the default VPC (one per zone) and a security group.
async fn network(sdk: &SdkConfig) -> Network {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let mut subnets: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
        .collect();
    subnets.sort();
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    let group = ec2
        .create_security_group()
        .group_name("soak-fleet")
        .description("soak fleet instances")
        .vpc_id(vpcs.vpcs()[0].vpc_id().unwrap())
        .send()
        .await
        .unwrap();
    Network {
        subnets: subnets.into_iter().take(2).map(|(_, id)| id).collect(),
        security_group: group.group_id().unwrap().to_owned(),
    }
}

fn template_key(index: usize) -> String {
    format!("lambda/{index}/template.json")
}

fn build_key(index: usize, build: u32) -> String {
    format!("lambda/{index}/b{build}.zip")
}

fn archive_key(index: usize, revision: u32) -> String {
    format!("site/{index}/r{revision}.zip")
}

pub fn revision_label(revision: u32) -> String {
    format!("r{revision}")
}

fn user_data(version: u32) -> String {
    format!("#cloud-config\nruncmd:\n  - echo soak {version}\n")
}

/// A stand-in for build `build` of LambdaStage `index` (moto never runs the code).
pub fn lambda_build(index: usize, build: u32) -> Vec<u8> {
    format!("PK-stand-in: soak function {index} build {build}").into_bytes()
}

/// The stack of LambdaStage `object`: its one function, first deployed from build 0.
fn template(object: &Object, role: &str) -> Vec<u8> {
    json!({
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": object.function(),
            "Runtime": "python3.12",
            "Handler": "app.handler",
            "Role": role,
            "Code": {"S3Bucket": ARTIFACTS, "S3Key": build_key(object.index, 0)},
        }}}
    })
    .to_string()
    .into_bytes()
}

/// Revision `revision` of site `index`: shared files, changed files, and a chunk only this
/// revision has (so that every deploy also deletes a file).
pub fn site_files(index: usize, revision: u32) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (
            "index.html".to_owned(),
            format!("<!doctype html><title>site {index} r{revision}</title>").into_bytes(),
        ),
        ("about/index.html".to_owned(), b"<h1>About</h1>".to_vec()),
        (
            "assets/app.js".to_owned(),
            format!("console.log({index}, {revision})").into_bytes(),
        ),
        (
            format!("assets/chunk-{revision}.js"),
            format!("export const r = {revision};").into_bytes(),
        ),
        ("favicon.ico".to_owned(), vec![0, 0, 1, 0]),
    ])
}

/// A zip of `files` (the test floor's deterministic archive: same files, same bytes).
fn zip_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect();
    deterministic_zip(&entries)
}
