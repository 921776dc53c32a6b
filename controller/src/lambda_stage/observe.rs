//! Gathers [`Observed`] for one LambdaStage: the only place the reconciler reads AWS, through
//! the shared [`Inventory`] (see there for what is cached and for how long). What one
//! reconcile costs when the inventory is fresh and nothing changed: nothing for functions,
//! mappings, layers, mapping queues and unchanged artifacts; per reconcile always:
//!
//! - `GetQueueAttributes` per `validation.queues` entry (the backlog is what is measured);
//! - HTTP checks (`validation.http`): one GET each, concurrently, bounded by its timeout;
//! - stack: `DescribeStacks`, `DescribeChangeSet` for the desired change set, and
//!   `ListStackResources` when functions come from the stack.
//!
//! An artifact without an S3 checksum is downloaded (and hashed) only by the plan's
//! `HashArtifact` action, once per bucket/key/versionId/ETag.
//!
//! Drift-only reads — a function's alias, which only a hand change moves — cost one `GetAlias`
//! per function per `max_age`: 10,000 aliased functions at 5 minutes are 33 calls/s against
//! Lambda's 15/s account quota. While the controller-wide event feed is healthy, CloudTrail
//! announces such a change within seconds, so they are read at [`DRIFT_BACKSTOP`] cadence
//! instead ([`drift_read_age`]); without a feed, or while it is unhealthy, as before. The
//! region-wide listings this reads through (functions, mappings, layers) follow the feed on
//! their own: the inventory trusts them for `--feed-backstop-max-age` while it is healthy
//! (`inventory::ListingAge`), so nothing here chooses their age.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use stagehand_crds::lambda_stage::{Infrastructure, LambdaStageStatus};
use stagehand_crds::{LambdaStageSpec, S3ObjectIdentity, S3ObjectRef};

use super::http_check::run_http_checks;
use super::observed::{
    DeclaredAs, DeployedFunction, MappingKey, Observed, ObservedArtifact, ObservedFunction,
    ObservedStack, PreviousStatus,
};
use super::stack::{TEMPLATE_FINGERPRINT_TAG, change_set_name, template_fingerprint};
use crate::aws::AwsError;
use crate::aws::lambda::{EventSourceMapping, function_name_of_arn};
use crate::aws::s3::{ObjectHead, Sha256Digest};
use crate::aws::sqs::QueueInfo;
use crate::base::duration::parse_go_duration;
use crate::inventory::{
    ArtifactKey, EventFeed, Inventory, KnownFunction, LambdaInventory, S3Inventory,
};

/// How long a drift-only read is trusted while the event feed is healthy: an hour, stretched by
/// up to half an hour by a stable hash of the function's name, so that aliases read together
/// (at start, after a failover) do not all expire in the same minute again.
pub const DRIFT_BACKSTOP: Duration = Duration::from_secs(3600);

/// How old a drift-only read of `function` may be: [`DRIFT_BACKSTOP`] spread by name while
/// `feed` is healthy, `max_age` otherwise (today's polling, unchanged).
pub fn drift_read_age(function: &str, feed: &EventFeed, max_age: Duration) -> Duration {
    if !feed.is_healthy() {
        return max_age;
    }
    // FNV-1a: the same spread in every process and release (std's hasher promises neither).
    let hash = function
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let spread = DRIFT_BACKSTOP.as_secs() / 2;
    (DRIFT_BACKSTOP + Duration::from_secs(hash % spread)).max(max_age)
}

/// CloudFormation resource types that are Lambda functions.
const FUNCTION_RESOURCE_TYPES: [&str; 2] = ["AWS::Lambda::Function", "AWS::Serverless::Function"];

/// Reads everything the plan needs, through the shared [`Inventory`]. `now` decides whether a
/// running canary is due.
pub async fn observe(
    inventory: &Inventory,
    spec: &LambdaStageSpec,
    status: Option<&LambdaStageStatus>,
    now: Timestamp,
) -> Result<Observed, AwsError> {
    let region = spec.region.as_str();
    let lambda = inventory.lambda(region);
    let mut observed = Observed {
        previous: previous_status(status),
        canary_promotion_due: canary_promotion_due(spec, status, now),
        event_feed: inventory.event_feed(region),
        ..Observed::default()
    };

    let mut stack_functions: BTreeMap<String, String> = BTreeMap::new();
    if let Some(infrastructure) = &spec.infrastructure {
        let (stack, functions) = observe_stack(inventory, region, infrastructure).await?;
        observed.stack = Some(stack);
        stack_functions = functions;
    }

    let prefix = spec
        .function_selector
        .as_ref()
        .and_then(|selector| selector.name_prefix.as_deref());
    let prefixed = if let Some(prefix) = prefix {
        lambda.function_names_with_prefix(prefix).await?
    } else {
        lambda.ensure_listed().await?;
        Vec::new()
    };
    let selected = select_functions(spec, prefixed, &stack_functions);
    for (name, declared_as) in selected {
        let alias_age = drift_read_age(&name, &observed.event_feed, inventory.max_age());
        let deployed = match lambda.function(&name).await? {
            Some(known) => Some(deployed_function(&lambda, spec, known, alias_age).await?),
            None => None,
        };
        observed.functions.push(ObservedFunction {
            name,
            declared_as,
            deployed,
        });
    }

    observed.artifacts = observe_artifacts(inventory, spec, status, &observed.functions).await?;
    if observed.event_feed != EventFeed::NotConfigured {
        observed.buckets_without_events = buckets_without_events(inventory, spec, &observed).await;
    }

    for layer in &spec.layers {
        if let Some(arn) = resolve_layer(&lambda, &layer.name, &layer.version).await? {
            observed.layer_versions.insert(layer.name.clone(), arn);
        }
    }

    observed.queues = observe_queues(inventory, spec).await?;
    observed.mappings = observe_mappings(&lambda, spec, &observed).await?;
    if let Some(validation) = &spec.validation
        && !validation.http.is_empty()
    {
        observed.http_checks = run_http_checks(&validation.http).await;
    }
    if observed
        .stack
        .as_ref()
        .and_then(|s| s.stack.as_ref())
        .is_some_and(|s| s.status.ends_with("_IN_PROGRESS"))
    {
        // CloudFormation is changing functions and mappings: what was just listed is not what
        // the stack will leave behind.
        lambda.functions_changed();
    }
    Ok(observed)
}

/// Reads the functions `names` (of `observed.functions`) on their own again — configuration and
/// ownership tags as AWS has them now — and replaces what `observed` says of them.
pub async fn reread_functions(
    inventory: &Inventory,
    spec: &LambdaStageSpec,
    observed: &mut Observed,
    names: &BTreeSet<String>,
) -> Result<(), AwsError> {
    let lambda = inventory.lambda(&spec.region);
    for function in observed
        .functions
        .iter_mut()
        .filter(|f| names.contains(&f.name))
    {
        lambda.function_written(&function.name);
        function.deployed = match lambda.function(&function.name).await? {
            Some(known) => {
                Some(deployed_function(&lambda, spec, known, inventory.max_age()).await?)
            }
            None => None,
        };
    }
    Ok(())
}

/// `spec.functions` in spec order (a `fromStack` entry by its physical name once the stack
/// has it), then the selector's other functions in name order: `prefixed`, the listed
/// functions matching `functionSelector.namePrefix`, and the stack's with `stackResources`.
fn select_functions(
    spec: &LambdaStageSpec,
    prefixed: Vec<String>,
    stack_functions: &BTreeMap<String, String>,
) -> Vec<(String, Option<DeclaredAs>)> {
    let mut selected: Vec<(String, Option<DeclaredAs>)> = Vec::new();
    for entry in &spec.functions {
        if let Some(name) = &entry.name {
            selected.push((name.clone(), Some(DeclaredAs::Name(name.clone()))));
        } else if let Some(logical_id) = &entry.from_stack {
            let name = stack_functions
                .get(logical_id)
                .cloned()
                .unwrap_or_else(|| logical_id.clone());
            selected.push((name, Some(DeclaredAs::FromStack(logical_id.clone()))));
        }
    }
    let mut extra: BTreeSet<String> = BTreeSet::new();
    if let Some(selector) = &spec.function_selector {
        extra.extend(prefixed);
        if selector.stack_resources == Some(true) {
            extra.extend(stack_functions.values().cloned());
        }
    }
    for name in extra {
        if !selected.iter().any(|(selected, _)| *selected == name) {
            selected.push((name, None));
        }
    }
    selected
}

/// `alias_age`: how old the alias read may be (see [`drift_read_age`]).
async fn deployed_function(
    lambda: &LambdaInventory,
    spec: &LambdaStageSpec,
    known: KnownFunction,
    alias_age: Duration,
) -> Result<DeployedFunction, AwsError> {
    let (alias, published_versions) = match &spec.alias {
        Some(alias) => {
            let current = lambda
                .alias_within(&known.info.name, &alias.name, alias_age)
                .await?;
            let versions = if alias.publish_versions {
                lambda.published_versions(&known.info).await?
            } else {
                Vec::new()
            };
            (current, versions)
        }
        None => (None, Vec::new()),
    };
    Ok(DeployedFunction {
        info: known.info,
        image_digest: known.image_digest,
        tags: known.tags,
        alias,
        published_versions,
    })
}

/// HEAD of every artifact the selected functions use (each once): pinned versions once ever,
/// other objects through one listing of their common prefix per bucket.
async fn observe_artifacts(
    inventory: &Inventory,
    spec: &LambdaStageSpec,
    status: Option<&LambdaStageStatus>,
    functions: &[ObservedFunction],
) -> Result<Vec<ObservedArtifact>, AwsError> {
    let mut sources: Vec<&S3ObjectRef> = Vec::new();
    for function in functions {
        let entry = function.declared_as.as_ref().and_then(|declared| {
            spec.functions.iter().find(|e| match declared {
                DeclaredAs::Name(name) => e.name.as_ref() == Some(name),
                DeclaredAs::FromStack(id) => e.from_stack.as_ref() == Some(id),
            })
        });
        let code = entry.and_then(|e| e.code.as_ref()).or(spec.code.as_ref());
        if let Some(s3) = code.and_then(|c| c.s3.as_ref())
            && !sources.contains(&s3)
        {
            sources.push(s3);
        }
    }
    let s3 = inventory.s3(&spec.region);
    let mut unpinned: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for source in &sources {
        if source.version_id.is_none() {
            unpinned
                .entry(source.bucket.as_str())
                .or_default()
                .push(source.key.clone());
        }
    }
    let mut listed: BTreeMap<&str, BTreeMap<String, Option<ObjectHead>>> = BTreeMap::new();
    let mut missing_buckets: Vec<&str> = Vec::new();
    for (bucket, keys) in unpinned {
        match s3.object_heads(bucket, &keys).await {
            Ok(heads) => {
                listed.insert(bucket, heads);
            }
            // A bucket that does not exist is the user's to fix (a stall naming it, re-checked
            // at the resync interval), not an AWS error to retry.
            Err(error) if error.is_not_found() => missing_buckets.push(bucket),
            Err(error) => return Err(error),
        }
    }
    let mut artifacts = Vec::with_capacity(sources.len());
    for source in sources {
        let head = match &source.version_id {
            Some(version) => {
                s3.object_version_head(&source.bucket, &source.key, version)
                    .await?
            }
            None => listed
                .get(source.bucket.as_str())
                .and_then(|by_key| by_key.get(&source.key).cloned())
                .flatten(),
        };
        let mut artifact = ObservedArtifact {
            source: source.clone(),
            head,
            bucket_missing: missing_buckets.contains(&source.bucket.as_str()),
            cached_sha256: None,
        };
        if let Some(identity) = artifact.identity() {
            artifact.cached_sha256 = s3
                .known_sha256(&identity)
                .or_else(|| recorded_sha256(&s3, status, identity));
        }
        artifacts.push(artifact);
    }
    Ok(artifacts)
}

/// The hash status recorded for exactly this content (`status.artifactHashes`), handed to the
/// inventory so that every stage sharing the artifact finds it: what a restarted controller
/// knows without downloading the artifact again.
fn recorded_sha256(
    s3: &S3Inventory,
    status: Option<&LambdaStageStatus>,
    identity: ArtifactKey,
) -> Option<Sha256Digest> {
    let object = S3ObjectIdentity::from(identity.clone());
    let recorded = status?
        .artifact_hashes
        .iter()
        .find(|r| r.object == object)?;
    let sha256 = Sha256Digest::from_base64(&recorded.sha256)?;
    s3.remember_sha256(identity, sha256);
    Some(sha256)
}

/// The artifact buckets that do not send `Object Created` to EventBridge. Only a status note: a
/// bucket whose setting cannot be read (no `s3:GetBucketNotification`, another account's bucket)
/// is left out rather than failing the round.
async fn buckets_without_events(
    inventory: &Inventory,
    spec: &LambdaStageSpec,
    observed: &Observed,
) -> Vec<String> {
    let buckets: BTreeSet<&str> = observed
        .artifacts
        .iter()
        .map(|a| a.source.bucket.as_str())
        .collect();
    inventory
        .s3(&spec.region)
        .buckets_without_events(buckets)
        .await
}

/// A layer version ARN: the newest for `latest`, else version `version` (same ARN prefix as
/// the newest). `None` when the layer or that version does not exist.
async fn resolve_layer(
    lambda: &LambdaInventory,
    name: &str,
    version: &str,
) -> Result<Option<String>, AwsError> {
    let Some(latest) = lambda.latest_layer_version(name).await? else {
        return Ok(None);
    };
    if version == "latest" {
        return Ok(Some(latest.arn));
    }
    let Ok(wanted) = version.parse::<i64>() else {
        return Ok(None);
    };
    if wanted > latest.version || wanted < 1 {
        return Ok(None);
    }
    Ok(latest
        .arn
        .rsplit_once(':')
        .map(|(prefix, _)| format!("{prefix}:{wanted}")))
}

/// Queues named by mappings (identity only, cached) and by `validation.queues` (identity
/// cached, backlog read every time: it is what validation measures).
async fn observe_queues(
    inventory: &Inventory,
    spec: &LambdaStageSpec,
) -> Result<BTreeMap<String, QueueInfo>, AwsError> {
    let queues_inventory = inventory.sqs(&spec.region);
    // The backlog is read every time: it is not an identity the inventory keeps.
    let sqs = inventory.aws().sqs(&spec.region);
    let validated: BTreeSet<&str> = spec
        .validation
        .iter()
        .flat_map(|v| v.queues.iter().map(|q| q.queue.as_str()))
        .collect();
    let names: BTreeSet<&str> = spec
        .event_source_mappings
        .iter()
        .map(|m| m.queue.as_str())
        .chain(validated.iter().copied())
        .collect();
    let mut queues = BTreeMap::new();
    for name in names {
        let Some((url, arn)) = queues_inventory.queue(name).await? else {
            continue;
        };
        if validated.contains(name) {
            match sqs.queue_attributes(&url).await? {
                Some(info) => {
                    queues.insert(name.to_owned(), info);
                }
                None => queues_inventory.queue_gone(name),
            }
        } else {
            queues.insert(
                name.to_owned(),
                QueueInfo {
                    url,
                    arn,
                    visible: 0,
                    in_flight: 0,
                },
            );
        }
    }
    Ok(queues)
}

/// The mappings of every function that has declared mappings, from the region-wide listing,
/// grouped by (function, queue ARN).
async fn observe_mappings(
    lambda: &LambdaInventory,
    spec: &LambdaStageSpec,
    observed: &Observed,
) -> Result<BTreeMap<MappingKey, Vec<EventSourceMapping>>, AwsError> {
    let mut functions: BTreeSet<&str> = BTreeSet::new();
    for mapping in &spec.event_source_mappings {
        if let Some(function) = observed.functions.iter().find(|f| {
            f.deployed.is_some()
                && (f.name == mapping.function
                    || matches!(&f.declared_as, Some(DeclaredAs::Name(id) | DeclaredAs::FromStack(id)) if *id == mapping.function))
        }) {
            functions.insert(function.name.as_str());
        }
    }
    let mut grouped: BTreeMap<MappingKey, Vec<_>> = BTreeMap::new();
    if functions.is_empty() {
        return Ok(grouped);
    }
    for mapping in lambda.mappings().await?.iter() {
        let Some(function) = mapping.function_arn.as_deref().map(function_name_of_arn) else {
            continue;
        };
        if !functions.contains(function) {
            continue;
        }
        if let Some(queue_arn) = mapping.event_source_arn.clone() {
            grouped
                .entry(MappingKey::new(function, &queue_arn))
                .or_default()
                .push(mapping.clone());
        }
    }
    Ok(grouped)
}

/// The stack, the desired change set, and the stack's functions (logical id → name).
async fn observe_stack(
    inventory: &Inventory,
    region: &str,
    infrastructure: &Infrastructure,
) -> Result<(ObservedStack, BTreeMap<String, String>), AwsError> {
    // Stacks are read every reconcile: one stage owns each, and its progress is the point.
    let cloudformation = inventory.aws().cloudformation(region);
    let fingerprint = template_fingerprint(infrastructure);
    let change_set_name = change_set_name(&fingerprint);
    let stack = cloudformation
        .describe_stack(&infrastructure.stack_name)
        .await?
        .filter(|s| s.status != "DELETE_COMPLETE");
    let desired_template_applied = stack.as_ref().is_some_and(|s| {
        s.tags.get(TEMPLATE_FINGERPRINT_TAG) == Some(&fingerprint)
            && !s.status.ends_with("_IN_PROGRESS")
    });
    let change_set = match &stack {
        Some(_) if !desired_template_applied => {
            cloudformation
                .describe_change_set(&infrastructure.stack_name, &change_set_name)
                .await?
        }
        _ => None,
    };
    let mut functions = BTreeMap::new();
    if stack.is_some() {
        for resource in cloudformation
            .list_stack_resources(&infrastructure.stack_name)
            .await?
        {
            if FUNCTION_RESOURCE_TYPES.contains(&resource.resource_type.as_str())
                && let Some(physical) = resource.physical_id
            {
                functions.insert(resource.logical_id, physical);
            }
        }
    }
    Ok((
        ObservedStack {
            stack,
            change_set_name,
            change_set,
            desired_template_applied,
            function_names: functions.values().cloned().collect(),
        },
        functions,
    ))
}

/// What only the status remembers.
fn previous_status(status: Option<&LambdaStageStatus>) -> PreviousStatus {
    let Some(status) = status else {
        return PreviousStatus::default();
    };
    PreviousStatus {
        declared_layers: status.declared_layers.clone(),
        mapping_uuids: status
            .mappings
            .iter()
            .filter_map(|m| {
                m.uuid
                    .clone()
                    .map(|uuid| ((m.function.clone(), m.queue.clone()), uuid))
            })
            .collect(),
        versions: status.versions.clone(),
    }
}

/// A canary started at `alias.canaryStartedAt` has run for `canary.promoteAfter`.
fn canary_promotion_due(
    spec: &LambdaStageSpec,
    status: Option<&LambdaStageStatus>,
    now: Timestamp,
) -> bool {
    let Some(canary) = spec.alias.as_ref().and_then(|a| a.canary.as_ref()) else {
        return false;
    };
    let Some(started) = status
        .and_then(|s| s.alias.as_ref())
        .and_then(|a| a.canary_started_at.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok())
    else {
        return false;
    };
    let Ok(duration) = parse_go_duration(&canary.promote_after) else {
        return false;
    };
    let Ok(duration) = jiff::SignedDuration::try_from(duration) else {
        return false;
    };
    started.checked_add(duration).is_ok_and(|due| due <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_only_reads_slow_down_only_while_the_feed_is_healthy() {
        let max_age = Duration::from_secs(30);
        for feed in [
            EventFeed::NotConfigured,
            EventFeed::Starting,
            EventFeed::Silent,
            EventFeed::Failing {
                reason: "AccessDenied".into(),
                message: "m".into(),
            },
        ] {
            assert_eq!(
                drift_read_age("shop-api", &feed, max_age),
                max_age,
                "{feed:?}"
            );
        }
        let ages: BTreeSet<Duration> = (0..100)
            .map(|n| drift_read_age(&format!("fn-{n:03}"), &EventFeed::Healthy, max_age))
            .collect();
        assert!(
            ages.iter()
                .all(|age| *age >= DRIFT_BACKSTOP && *age < DRIFT_BACKSTOP + DRIFT_BACKSTOP / 2)
        );
        assert!(ages.len() > 90, "spread over the half hour: {}", ages.len());
        assert_eq!(
            drift_read_age("shop-api", &EventFeed::Healthy, max_age),
            drift_read_age("shop-api", &EventFeed::Healthy, max_age),
            "stable"
        );
    }

    #[test]
    fn canary_is_due_after_promote_after() {
        let spec: LambdaStageSpec = serde_json::from_value(serde_json::json!({
            "region": "us-east-1",
            "functions": [{"name": "f"}],
            "alias": {"name": "live", "canary": {"weight": 10, "promoteAfter": "10m"}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let status: LambdaStageStatus = serde_json::from_value(serde_json::json!({
            "alias": {"name": "live", "canaryStartedAt": "2024-01-01T00:00:00Z"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let at = |s: &str| s.parse::<Timestamp>().unwrap_or_else(|e| panic!("{e}"));
        assert!(!canary_promotion_due(
            &spec,
            Some(&status),
            at("2024-01-01T00:09:59Z")
        ));
        assert!(canary_promotion_due(
            &spec,
            Some(&status),
            at("2024-01-01T00:10:00Z")
        ));
        assert!(!canary_promotion_due(
            &spec,
            None,
            at("2024-01-01T01:00:00Z")
        ));
    }
}
