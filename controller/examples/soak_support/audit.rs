//! What the soak asserts once everything converged, and after everything was deleted. Every
//! check reads moto directly (not through the proxy: no faults, not counted) or the proxy's
//! whole call log, and returns the violations it found as sentences; the figures it measured
//! go to [`Audit::figures`].

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_ec2::types::Filter;
use kube::api::ListParams;
use stagehand_crds::OWNER_TAG;
use stagehand_testenv::aws::CallRecord;

use super::chaos::live_instances;
use super::world::{FLEET_CAPACITY, FLEET_MAX_SURGE, Kind, Object, World, s3, site_files};

/// Violations found and figures measured.
#[derive(Default)]
pub struct Audit {
    pub violations: Vec<String>,
    pub figures: BTreeMap<&'static str, u64>,
}

impl Audit {
    fn check(&mut self, holds: bool, violation: impl FnOnce() -> String) {
        if !holds {
            self.violations.push(violation());
        }
    }

    fn add(&mut self, figure: &'static str, n: u64) {
        *self.figures.entry(figure).or_default() += n;
    }
}

/// The objects not Ready at their generation: `kind/name: message`.
pub async fn not_ready(world: &World) -> Vec<String> {
    let mut waiting = Vec::new();
    for kind in Kind::ALL {
        let listed = kind
            .api(world.server.client())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        for object in listed {
            let status = &object.data["status"];
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let current = status["observedGeneration"].as_i64() == object.metadata.generation;
            if !(ready && current) {
                let name = object.metadata.name.unwrap_or_default();
                waiting.push(format!("{}/{name}: {}", kind.name(), status["message"]));
            }
        }
    }
    waiting
}

/// Successful calls of `operation` in the log, by the path segment after `segment`
/// (e.g. the function of `/functions/<name>/versions`).
fn successes_by(log: &[CallRecord], operation: &str, segment: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for record in log
        .iter()
        .filter(|r| r.operation == operation && (200..300).contains(&r.status))
    {
        let target = record
            .path
            .split('/')
            .skip_while(|p| *p != segment)
            .nth(1)
            .unwrap_or("")
            .to_owned();
        *counts.entry(target).or_default() += 1;
    }
    counts
}

/// After convergence: no duplicates, fleets within bounds, every site file right.
pub async fn converged(world: &World, peaks: &BTreeMap<String, usize>) -> Audit {
    let log = &world.log.records;
    let mut audit = Audit::default();
    lambda(world, log, &mut audit).await;
    fleets(world, peaks, &mut audit).await;
    sites(world, log, &mut audit).await;
    audit
}

async fn lambda(world: &World, log: &[CallRecord], audit: &mut Audit) {
    let lambda = aws_sdk_lambda::Client::new(&world.direct);
    let stages: Vec<&Object> = of_kind(world, Kind::LambdaStage);
    let mappings = lambda.list_event_source_mappings().send().await.unwrap();
    let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for mapping in mappings.event_source_mappings() {
        let pair = (
            mapping.function_arn().unwrap_or("").to_owned(),
            mapping.event_source_arn().unwrap_or("").to_owned(),
        );
        *pairs.entry(pair).or_default() += 1;
    }
    for ((function, queue), n) in &pairs {
        audit.check(*n == 1, || format!("{n} mappings {function} → {queue}"));
    }
    audit.check(pairs.len() == stages.len(), || {
        format!("{} mappings for {} stages", pairs.len(), stages.len())
    });
    let created: u64 = successes_by(log, "CreateEventSourceMapping", "")
        .values()
        .sum();
    audit.add("mappings created", created);
    audit.check(created <= stages.len() as u64, || {
        format!("{created} mappings created for {} stages", stages.len())
    });
    let published = successes_by(log, "PublishVersion", "functions");
    for stage in stages {
        let function = stage.function();
        let Ok(versions) = lambda
            .list_versions_by_function()
            .function_name(&function)
            .send()
            .await
        else {
            audit
                .violations
                .push(format!("{function}: no such function"));
            continue;
        };
        let mut by_build: BTreeMap<String, u64> = BTreeMap::new();
        for version in versions
            .versions()
            .iter()
            .filter(|v| v.version() != Some("$LATEST"))
        {
            *by_build
                .entry(version.code_sha256().unwrap_or("").to_owned())
                .or_default() += 1;
        }
        for (sha, n) in &by_build {
            audit.check(*n == 1, || {
                format!("{function}: {n} versions of build {sha}")
            });
        }
        audit.add("versions published", by_build.values().sum());
        let calls = published.get(&function).copied().unwrap_or(0);
        audit.add("PublishVersion calls", calls);
        // Builds 1..=version were ever asked for; each is published at most once.
        audit.check(calls <= u64::from(stage.version), || {
            format!(
                "{function}: {calls} versions published for {} builds",
                stage.version
            )
        });
    }
}

async fn fleets(world: &World, peaks: &BTreeMap<String, usize>, audit: &mut Audit) {
    let bound = usize::try_from(FLEET_CAPACITY + FLEET_MAX_SURGE).unwrap_or(usize::MAX);
    for (owner, peak) in peaks {
        audit.check(*peak <= bound, || {
            format!("{owner}: {peak} live instances seen (capacity + maxSurge = {bound})")
        });
    }
    audit.add(
        "most instances seen in a fleet",
        peaks.values().copied().max().unwrap_or(0) as u64,
    );
    let ec2 = aws_sdk_ec2::Client::new(&world.direct);
    let live = live_instances(&ec2).await.unwrap_or_default();
    for fleet in of_kind(world, Kind::SpotFleet) {
        let n = live.values().filter(|o| **o == fleet.owner()).count();
        audit.check(n == FLEET_CAPACITY as usize, || {
            format!(
                "{}: {n} live instances after converging (capacity {FLEET_CAPACITY})",
                fleet.owner()
            )
        });
    }
}

async fn sites(world: &World, log: &[CallRecord], audit: &mut Audit) {
    let cloudfront = aws_sdk_cloudfront::Client::new(&world.direct);
    let sites = of_kind(world, Kind::StaticSite);
    let distributions = distributions_by_bucket(&cloudfront).await;
    let created: u64 = ["CreateDistribution", "CreateDistributionWithTags"]
        .iter()
        .map(|op| successes_by(log, op, "").values().sum::<u64>())
        .sum();
    audit.add("distributions created", created);
    audit.check(created <= sites.len() as u64, || {
        format!("{created} distributions created for {} sites", sites.len())
    });
    let invalidations = successes_by(log, "CreateInvalidation", "distribution");
    for site in sites {
        let bucket = site.site_bucket();
        let ids: Vec<&String> = distributions
            .iter()
            .filter(|(_, origin)| origin.starts_with(&format!("{bucket}.")))
            .map(|(id, _)| id)
            .collect();
        audit.check(ids.len() == 1, || {
            format!("{bucket}: {} distributions", ids.len())
        });
        for id in ids {
            let references = invalidation_references(&cloudfront, id).await;
            audit.add(
                "invalidations (distinct CallerReference)",
                references.len() as u64,
            );
            audit.add(
                "CreateInvalidation calls",
                invalidations.get(id.as_str()).copied().unwrap_or(0),
            );
            audit.check(references.len() <= site.revision_changes as usize, || {
                format!(
                    "{bucket}: {} invalidations for {} revision changes",
                    references.len(),
                    site.revision_changes
                )
            });
        }
        site_content(world, site, audit).await;
    }
}

/// Every live key of the site's bucket is a file of the revision it must serve, with that
/// file's content, and every file of the revision is there.
async fn site_content(world: &World, site: &Object, audit: &mut Audit) {
    let s3 = s3(&world.direct);
    let bucket = site.site_bucket();
    let expected = site_files(site.index, site.served_revision());
    let Ok(listed) = s3.list_objects_v2().bucket(&bucket).send().await else {
        audit.violations.push(format!("{bucket}: no such bucket"));
        return;
    };
    let keys: BTreeSet<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| !k.starts_with(".stagehand/"))
        .map(str::to_owned)
        .collect();
    let wanted: BTreeSet<String> = expected.keys().cloned().collect();
    audit.check(keys == wanted, || {
        format!("{bucket}: keys {keys:?}, revision has {wanted:?}")
    });
    for (key, content) in &expected {
        let Ok(object) = s3.get_object().bucket(&bucket).key(key).send().await else {
            continue;
        };
        let body = object.body.collect().await.unwrap().into_bytes();
        audit.add("site files checked", 1);
        audit.check(body.as_ref() == content.as_slice(), || {
            format!(
                "{bucket}/{key}: content is not revision r{}'s",
                site.served_revision()
            )
        });
    }
}

/// Distribution id → its first origin's domain name (`<bucket>.s3...`).
async fn distributions_by_bucket(cloudfront: &aws_sdk_cloudfront::Client) -> Vec<(String, String)> {
    let listed = cloudfront.list_distributions().send().await.unwrap();
    listed
        .distribution_list()
        .map(aws_sdk_cloudfront::types::DistributionList::items)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let origin = d
                .origins()
                .and_then(|o| o.items().first())
                .map_or("", |o| o.domain_name());
            (d.id().to_owned(), origin.to_owned())
        })
        .collect()
}

/// The distinct `CallerReference`s of a distribution's invalidations: one per invalidation
/// Stagehand asked for (a retry of the same request reuses its reference, which AWS answers
/// with the invalidation it already made; moto does not check it).
async fn invalidation_references(
    cloudfront: &aws_sdk_cloudfront::Client,
    id: &str,
) -> BTreeSet<String> {
    let listed = cloudfront
        .list_invalidations()
        .distribution_id(id)
        .send()
        .await
        .unwrap();
    let mut references = BTreeSet::new();
    for summary in listed
        .invalidation_list()
        .map(aws_sdk_cloudfront::types::InvalidationList::items)
        .unwrap_or_default()
    {
        let invalidation = cloudfront
            .get_invalidation()
            .distribution_id(id)
            .id(summary.id())
            .send()
            .await
            .unwrap();
        if let Some(batch) = invalidation
            .invalidation()
            .and_then(|i| i.invalidation_batch())
        {
            references.insert(batch.caller_reference().to_owned());
        }
    }
    references
}

/// After every object was deleted: nothing Stagehand owned is left.
pub async fn orphans(direct: &SdkConfig) -> Audit {
    let mut audit = Audit::default();
    let lambda = aws_sdk_lambda::Client::new(direct);
    let functions = lambda.list_functions().send().await.unwrap();
    for function in functions.functions() {
        let arn = function.function_arn().unwrap_or("");
        let tags = lambda.list_tags().resource(arn).send().await.unwrap();
        audit.check(
            !tags.tags().is_some_and(|t| t.contains_key(OWNER_TAG)),
            || format!("function {arn} left with an owner tag"),
        );
    }
    let mappings = lambda.list_event_source_mappings().send().await.unwrap();
    for mapping in mappings.event_source_mappings() {
        audit
            .violations
            .push(format!("mapping {:?} left", mapping.uuid()));
    }
    let stacks = aws_sdk_cloudformation::Client::new(direct)
        .describe_stacks()
        .send()
        .await;
    for stack in stacks.iter().flat_map(DescribeStacksOutput::stacks) {
        audit
            .violations
            .push(format!("stack {:?} left", stack.stack_name()));
    }
    let ec2 = aws_sdk_ec2::Client::new(direct);
    for (id, owner) in live_instances(&ec2).await.unwrap_or_default() {
        audit
            .violations
            .push(format!("instance {id} of {owner} left running"));
    }
    let templates = ec2
        .describe_launch_templates()
        .filters(Filter::builder().name("tag-key").values(OWNER_TAG).build())
        .send()
        .await
        .unwrap();
    for template in templates.launch_templates() {
        audit.violations.push(format!(
            "launch template {:?} left",
            template.launch_template_name()
        ));
    }
    for bucket in s3(direct).list_buckets().send().await.unwrap().buckets() {
        let name = bucket.name().unwrap_or("");
        audit.check(!name.starts_with("soak-site-"), || {
            format!("bucket {name} left")
        });
    }
    let cloudfront = aws_sdk_cloudfront::Client::new(direct);
    for (id, origin) in distributions_by_bucket(&cloudfront).await {
        audit
            .violations
            .push(format!("distribution {id} ({origin}) left"));
    }
    audit
}

fn of_kind(world: &World, kind: Kind) -> Vec<&Object> {
    world.objects.iter().filter(|o| o.kind == kind).collect()
}
