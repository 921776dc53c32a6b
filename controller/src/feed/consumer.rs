//! One message at a time: parse, decide ([`effect`] for EC2, [`change`] for S3, CloudTrail and
//! the heartbeat), find the objects concerned (instances and functions through the shared
//! inventory's owner tags, S3 objects, buckets and distributions through the watches the kinds
//! declared), drop what the inventory knew of what changed, ask the objects' controllers to
//! reconcile now. Says what became of the message: everything but a failure is deleted.

use std::time::Duration;

use super::change::{Change, change};
use super::demand::{QueueDemand, Watched};
use super::effect::{EventKind, InstanceEffect, effect};
use super::event::{Event, ParseError, parse};
use super::metrics::FeedMetrics;
use super::trigger::{Target, Triggers};
use crate::aws::AwsError;
use crate::aws::tags::OWNER_TAG;
use crate::inventory::Inventory;

/// A listing younger than this is not read again for an instance it does not show. An event
/// about an instance Stagehand launched a moment ago may arrive before a listing shows it, so an
/// unknown instance makes the feed list its region again; but most instances of an account are
/// not Stagehand's, and their state changes arrive too (EventBridge cannot filter EC2 events
/// by tag): one listing per region per ten seconds at most answers all of them.
pub const UNKNOWN_INSTANCE_REFRESH_FLOOR: Duration = Duration::from_secs(10);

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// An event about Stagehand's resources (or the heartbeat), acted on. Deleted.
    Handled,
    /// A well-formed event about nothing Stagehand owns or acts on. Deleted.
    Ignored,
    /// A well-formed event of a kind this build does not handle. Deleted, logged.
    UnknownKind,
    /// Not an event at all. Deleted, logged.
    Unparsable,
    /// Handling failed (EC2 could not be read): left on the queue to be delivered again.
    Failed,
}

impl Disposition {
    /// The `result` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Ignored => "ignored",
            Self::UnknownKind => "deleted_unknown",
            Self::Unparsable => "deleted_unparsable",
            Self::Failed => "failed",
        }
    }

    /// Whether the message is deleted: all but a failure, which a retry may fix.
    pub const fn deletes(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

/// Handles messages against the shared inventory.
#[derive(Clone, Debug)]
pub struct Consumer {
    pub inventory: Inventory,
    pub triggers: Triggers,
    pub metrics: FeedMetrics,
    /// Which objects watch what (S3 objects, buckets, distributions).
    pub demand: QueueDemand,
    /// `--event-feed-identity`: CloudTrail events of calls made as it are Stagehand's own.
    pub identity: Option<String>,
}

impl Consumer {
    /// Handles one message body; `queue` names where it came from, for the logs.
    pub async fn handle(&self, queue: &str, message_id: &str, body: &str) -> Disposition {
        let (kind, disposition) = match parse(body) {
            Err(ParseError::Unparsable(why)) => {
                tracing::warn!(queue, message_id, %why, "deleting an unparsable message");
                ("unparsable", Disposition::Unparsable)
            }
            Err(error @ ParseError::UnknownKind { .. }) => {
                tracing::warn!(queue, message_id, %error, "deleting an event of a kind Stagehand does not handle");
                ("unknown", Disposition::UnknownKind)
            }
            Ok(event) => {
                let kind = EventKind::of(&event.detail);
                let disposition = match self.act_on(&event).await {
                    Ok(0) => Disposition::Ignored,
                    Ok(_) => Disposition::Handled,
                    Err(error) => {
                        tracing::warn!(queue, message_id, event = %event.envelope.id, %error, "event handling failed; left for redelivery");
                        Disposition::Failed
                    }
                };
                tracing::debug!(queue, message_id, event = %event.envelope.id, kind = kind.as_str(), result = disposition.as_str(), "event");
                (kind.as_str(), disposition)
            }
        };
        self.metrics.message(kind, disposition);
        disposition
    }

    /// Carries out what `event` asks for; returns how many objects it concerned (each asked to
    /// reconcile now; the heartbeat counts as one).
    async fn act_on(&self, event: &Event) -> Result<usize, AwsError> {
        if let Some(effect) = effect(event) {
            let owned = self.apply(&effect).await?;
            if owned > 0 {
                self.metrics.interruption(effect.kind);
            }
            return Ok(owned);
        }
        let Some(change) = change(event, self.identity.as_deref()) else {
            return Ok(0);
        };
        let targets = self.concerned(&change).await?;
        for target in &targets {
            tracing::info!(owner = %target, ?change, "AWS change: reconciling now");
            self.triggers.send(target.clone());
        }
        Ok(if change == Change::Heartbeat {
            1
        } else {
            targets.len()
        })
    }

    /// The objects `change` concerns, after dropping what the inventory knew of what changed
    /// (only for what Stagehand owns or watches: the rest of the account is not its business).
    async fn concerned(&self, change: &Change) -> Result<Vec<Target>, AwsError> {
        Ok(match change {
            Change::Heartbeat => Vec::new(),
            Change::Object {
                region,
                bucket,
                key,
            } => {
                let watchers = self
                    .demand
                    .watchers(Some(region), |w| w.covers_object(bucket, key));
                if !watchers.is_empty() {
                    self.inventory.s3(region).object_changed(bucket, key);
                }
                watchers
            }
            Change::Function { region, function } => {
                self.function_concerned(region, function).await?
            }
            Change::Layer { region, layer } => {
                let watchers = self
                    .demand
                    .watchers(Some(region), |w| *w == Watched::Layer(layer.clone()));
                if !watchers.is_empty() {
                    self.inventory.lambda(region).layer_changed_elsewhere(layer);
                }
                watchers
            }
            Change::Mapping {
                region,
                uuid,
                function,
            } => {
                let lambda = self.inventory.lambda(region);
                let function = match function {
                    Some(function) => Some(function.clone()),
                    None => lambda.mapping_function(uuid).await?,
                };
                let Some(function) = function else {
                    return Ok(Vec::new());
                };
                let owner = self.function_owner(region, &function).await?;
                if owner.is_some() {
                    lambda.mappings_written();
                }
                owner.into_iter().collect()
            }
            Change::Watched { region, watched } => {
                self.demand.watchers(region.as_deref(), |w| w == watched)
            }
        })
    }

    /// The owner of the function `name` and the stages whose selector covers it. A covered
    /// function is read on its own first (`GetFunction`, outside the 15/s quota), which puts a
    /// new one into the shared listing and takes a deleted one out of it: a listing trusted for
    /// the feed backstop then selects what AWS has now.
    async fn function_concerned(&self, region: &str, name: &str) -> Result<Vec<Target>, AwsError> {
        let mut targets = self
            .demand
            .watchers(Some(region), |w| w.covers_function(name));
        if !targets.is_empty() {
            self.inventory
                .lambda(region)
                .function_changed_elsewhere(name);
        }
        if let Some(owner) = self.function_owner(region, name).await?
            && !targets.contains(&owner)
        {
            targets.push(owner);
        }
        Ok(targets)
    }

    /// The object owning the function `name` (its owner tag, as the inventory knows it); its
    /// configuration, tags and aliases are read afresh by that object's next round.
    async fn function_owner(&self, region: &str, name: &str) -> Result<Option<Target>, AwsError> {
        let lambda = self.inventory.lambda(region);
        lambda.ensure_listed().await?;
        let owner = lambda.function(name).await?.and_then(|known| {
            known
                .tags
                .get(OWNER_TAG)
                .and_then(|o| Target::from_owner(o))
        });
        if owner.is_some() {
            lambda.function_changed_elsewhere(name);
        } else {
            tracing::debug!(function = name, "not a function of Stagehand's");
        }
        Ok(owner)
    }

    /// Carries out `effect`; returns how many of its instances have an owner (each asked to
    /// reconcile now).
    async fn apply(&self, effect: &InstanceEffect) -> Result<usize, AwsError> {
        let ec2 = self.inventory.ec2(&effect.region);
        if effect.listing_stale {
            ec2.forget_older_than(Duration::ZERO);
        }
        let mut owned = 0;
        for id in &effect.instance_ids {
            if effect.gone {
                ec2.instance_gone(id);
            }
            let mut owner = ec2.owner_of(id).await?;
            if owner.is_none() {
                ec2.forget_older_than(UNKNOWN_INSTANCE_REFRESH_FLOOR);
                owner = ec2.owner_of(id).await?;
            }
            let Some(target) = owner.as_deref().and_then(Target::from_owner) else {
                tracing::debug!(instance = %id, "not an instance of Stagehand's");
                continue;
            };
            if let Some(notice) = effect.notice {
                ec2.notice(id, notice);
            }
            tracing::info!(instance = %id, owner = %target, kind = effect.kind.as_str(), "EC2 event: reconciling the owner now");
            self.triggers.send(target);
            owned += 1;
        }
        Ok(owned)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prometheus::{IntCounterVec, IntGaugeVec, Opts};
    use serde_json::json;

    use super::*;
    use crate::aws::ec2::InstanceInfo;
    use crate::aws::tags::OWNER_TAG;
    use crate::feed::event::tests::{ALICE, api_call, interruption_warning};
    use crate::inventory::tests::provider;

    const OURS: &str = "i-0123456789abcdef0";

    fn metrics() -> FeedMetrics {
        let counter = |labels: &[&str]| {
            IntCounterVec::new(Opts::new("c", "c"), labels).unwrap_or_else(|e| panic!("{e}"))
        };
        FeedMetrics {
            messages: counter(&["kind", "result"]),
            interruptions: counter(&["kind"]),
            poll_errors: counter(&["queue", "reason"]),
            queue_up: IntGaugeVec::new(Opts::new("g", "g"), &["queue"])
                .unwrap_or_else(|e| panic!("{e}")),
            healthy: IntGaugeVec::new(Opts::new("h", "h"), &["queue"])
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// A consumer whose region `us-east-2` lists one instance of `shop/SpotFleet/workers`: no
    /// AWS call is made (the provider points nowhere).
    fn consumer() -> Consumer {
        let inventory = Inventory::new(provider(), Duration::from_secs(30));
        inventory
            .ec2("us-east-2")
            .remember_instances(vec![InstanceInfo {
                id: OURS.into(),
                state: "running".into(),
                tags: BTreeMap::from([(OWNER_TAG.to_owned(), "shop/SpotFleet/workers".to_owned())]),
                ..InstanceInfo::default()
            }]);
        Consumer {
            inventory,
            triggers: Triggers::default(),
            metrics: metrics(),
            demand: QueueDemand::default(),
            identity: None,
        }
    }

    #[tokio::test]
    async fn a_new_layer_version_reaches_the_stages_using_the_layer() {
        let consumer = consumer();
        let mut stages = consumer.triggers.subscribe("LambdaStage");
        let stage = Target::new("LambdaStage", "shop", "api");
        consumer.demand.declare_watchers(
            "LambdaStage",
            crate::feed::Watchers::from([(
                stage.clone(),
                crate::feed::FeedInterest {
                    region: "us-east-1".into(),
                    watches: vec![Watched::Layer("deps".into())],
                },
            )]),
        );
        let lambda = consumer.inventory.lambda("us-east-1");
        let published = |layer: &str| {
            api_call(
                "aws.lambda",
                "PublishLayerVersion20181031",
                ALICE,
                &json!({"layerName": layer}),
            )
            .to_string()
        };
        lambda.remember_layer("other", None);
        assert_eq!(
            consumer.handle("q", "m", &published("other")).await,
            Disposition::Ignored,
            "no stage uses it"
        );
        assert!(lambda.cached_layer("other"), "kept: nobody's business");
        lambda.remember_layer("deps", None);
        assert_eq!(
            consumer.handle("q", "m", &published("deps")).await,
            Disposition::Handled
        );
        assert!(!lambda.cached_layer("deps"), "listed again at the next use");
        assert_eq!(stages.recv().await, Some(stage));
    }

    #[tokio::test]
    async fn messages_are_handled_ignored_or_deleted_by_what_they_are() {
        let consumer = consumer();
        let mut fleets = consumer.triggers.subscribe("SpotFleet");
        let body = |instance: &str| interruption_warning(instance).to_string();
        let mut rebalance = interruption_warning(OURS);
        rebalance["detail-type"] = json!("EC2 Instance Rebalance Recommendation");
        let mut starting = interruption_warning(OURS);
        starting["detail-type"] = json!("EC2 Instance State-change Notification");
        starting["detail"] = json!({"instance-id": OURS, "state": "running"});
        let mut unknown = interruption_warning(OURS);
        unknown["detail-type"] = json!("EC2 AMI State Change");
        let rows = [
            (body(OURS), Disposition::Handled, "interruption_warning"),
            (
                rebalance.to_string(),
                Disposition::Handled,
                "rebalance_recommendation",
            ),
            // Fresh listing, instance not in it: not Stagehand's.
            (
                body("i-0fffffffffffffff0"),
                Disposition::Ignored,
                "interruption_warning",
            ),
            (starting.to_string(), Disposition::Ignored, "state_change"),
            (unknown.to_string(), Disposition::UnknownKind, "unknown"),
            ("{".to_owned(), Disposition::Unparsable, "unparsable"),
        ];
        for (body, want, kind) in rows {
            assert_eq!(consumer.handle("q", "m", &body).await, want, "{body}");
            assert!(want.deletes());
            assert_eq!(
                consumer
                    .metrics
                    .messages
                    .with_label_values(&[kind, want.as_str()])
                    .get(),
                1,
                "{kind}"
            );
        }
        assert!(
            !Disposition::Failed.deletes(),
            "a failure is delivered again"
        );
        let notices = consumer.inventory.ec2("us-east-2").notices(OURS);
        assert!(notices.interruption && notices.rebalance);
        let workers = Target::new("SpotFleet", "shop", "workers");
        assert_eq!(fleets.recv().await, Some(workers.clone()));
        assert_eq!(fleets.recv().await, Some(workers));
        assert!(fleets.try_recv().is_err(), "told once per handled event");
    }
}
