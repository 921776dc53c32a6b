//! The reads of one SpotFleet round, through the shared EC2 inventory: the fleet's instances
//! (one region-wide `DescribeInstances` serves every fleet), the unowned instances named for
//! it that `adopt` would take over (a filtered `DescribeInstances` of the fleet's own, only
//! when it can matter: see [`crate::inventory::ec2::Ec2Inventory::unowned_named`]), their
//! status checks and TCP port while they are still proving health, the offerings a recent launch found without capacity,
//! the errors of this fleet's last launch (for `CapacityReady`) and, only when the plan needs
//! them, the zones of the spec's subnets. The clock is read here, never in
//! the plan: whether an instance is past its grace period is decided now and stored as a fact.
//! The fleet's launch template versions come from the launch cache (what the last launch read
//! or wrote), never from a call of observe's own.
//! What the event feed heard (interruption warnings, rebalance recommendations for the fleet's
//! live instances) and how its poll of the fleet's queue stands come from the inventory too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use stagehand_crds::{SpotFleet, SpotFleetSpec, SpotFleetStatus};

use super::observed::{
    Ec2Checks, InstanceState, LaunchError, Observed, ObservedInstance, Offering, QueueFeedState,
    TcpCheck, TemplateVersions,
};
use super::plan::is_healthy;
use crate::aws::AwsError;
use crate::inventory::Inventory;
use crate::inventory::sqs::QueueFeed;
use crate::probe::{ProbeOutcome, TcpProber};

/// What a round observes with besides the spec: the shared inventory and prober, and the
/// previous round's verdicts.
#[derive(Clone, Copy, Debug)]
pub struct Observer<'a> {
    pub inventory: &'a Inventory,
    pub prober: &'a TcpProber,
    /// What the previous round wrote: an instance it recorded healthy and that is still running
    /// is not asked about again.
    pub status: Option<&'a SpotFleetStatus>,
    /// The generation being reconciled: a previous TCP verdict counts only for the same one
    /// (the port may just have been declared or changed).
    pub generation: Option<i64>,
    /// The `Name` tag that marks an untagged instance as this fleet's ([`adoption_name`]).
    pub name: &'a str,
}

/// The `Name` tag an instance without an owner tag must carry to be this fleet's to adopt (or,
/// without `adopt`, to stall it): `<namespace>/<name>`. A `Name` is what the team's scripts and
/// the EC2 console already give instances, and the only hint an untagged instance can carry;
/// requiring the exact namespaced name keeps a fleet from taking instances it was never meant
/// to have. The launch template id EC2 stamps (`aws:ec2launchtemplate:id`) is not used: it
/// would only add instances someone launched by hand from the fleet's own template, which a
/// migration from a script never did (and moto does not stamp it, so it could not be tested).
pub fn adoption_name(fleet: &SpotFleet) -> String {
    format!(
        "{}/{}",
        fleet.namespace().unwrap_or_default(),
        fleet.name_any()
    )
}

/// Observes the fleet owned by `owner` at `now`.
pub async fn observe(
    observer: Observer<'_>,
    spec: &SpotFleetSpec,
    owner: &str,
    now: Timestamp,
) -> Result<Observed, AwsError> {
    let inventory = observer.inventory;
    let ec2 = inventory.ec2(&spec.region);
    // Instances tagged for this owner (in another cluster too: the plan stalls on those), and
    // live ones nobody owns named for the fleet (the plan adopts them or stalls). An instance
    // another object owns is in neither, whatever its name.
    let mut listed = ec2.instances_of(owner).await?;
    listed.extend(ec2.unowned_named(observer.name).await?);
    let grace = SignedDuration::from_secs(i64::from(spec.health_check.grace_period_seconds));
    let mut instances: Vec<ObservedInstance> = listed
        .iter()
        .map(|info| {
            // Security groups and the instance profile are compared with the spec: an instance
            // edited by hand is replaced. (moto does not apply a fleet template's groups or
            // profile; the test proxy does it for moto, as EC2 would, docs/testing.md.)
            let mut instance = ObservedInstance::from_info(info);
            instance.past_grace = is_past_grace(instance.launched_at, grace, now);
            instance
        })
        .collect();
    check_health(observer, spec, &mut instances).await?;
    let unavailable_offerings: BTreeSet<Offering> = ec2
        .unavailable_offerings()
        .into_keys()
        .map(|o| Offering {
            instance_type: o.instance_type,
            zone: o.availability_zone,
        })
        .collect();
    // The zones matter only to tell that every offering is out of capacity: not read otherwise.
    let subnet_zones = if unavailable_offerings.is_empty() {
        BTreeMap::new()
    } else {
        ec2.launch().subnet_zones(&spec.subnet_ids).await?
    };
    let launch_errors = ec2
        .last_launch_errors(owner)
        .into_iter()
        .map(|e| LaunchError {
            offering: e.offering().map(|(instance_type, zone)| Offering {
                instance_type,
                zone,
            }),
            code: e.code,
            message: e.message,
        })
        .collect();
    let launch_backoff_seconds = launch_backoff(inventory, spec, owner, &instances, now);
    let mut observed = Observed {
        instances,
        unavailable_offerings,
        subnet_zones,
        launch_errors,
        launch_backoff_seconds,
        spec_refusal: ec2.launch().spec_refusal(owner),
        template: ec2.launch().template(owner).map(|t| TemplateVersions {
            template_id: t.template.id,
            default_version: t.template.default_version,
            versions: t.versions,
        }),
        ..Observed::default()
    };
    fill_notices(inventory, spec, &mut observed);
    Ok(observed)
}

/// Seconds the next launch of the fleet waits after launches that failed in a row, if any. A
/// healthy instance launched after the last failure shows launching works again: the record
/// goes.
fn launch_backoff(
    inventory: &Inventory,
    spec: &SpotFleetSpec,
    owner: &str,
    instances: &[ObservedInstance],
    now: Timestamp,
) -> Option<u64> {
    let ec2 = inventory.ec2(&spec.region);
    let launches = ec2.launch();
    launches.launch_failures(owner)?;
    for instance in instances {
        if let Some(launched_at) = instance.launched_at
            && is_healthy(&spec.health_check, instance)
        {
            launches.launch_proved(owner, launched_at);
        }
    }
    launches.launch_failures(owner)?.remaining_at(now)
}

/// The notices the event feed recorded for the fleet's live instances (a terminated one has
/// nothing left to replace), and how the feed's poll of the fleet's queue stands.
fn fill_notices(inventory: &Inventory, spec: &SpotFleetSpec, observed: &mut Observed) {
    let ec2 = inventory.ec2(&spec.region);
    for instance in observed.instances.iter().filter(|i| i.state.is_live()) {
        let notices = ec2.notices(&instance.id);
        if notices.interruption {
            observed.interruption_notices.insert(instance.id.clone());
        }
        if notices.rebalance {
            observed
                .rebalance_recommendations
                .insert(instance.id.clone());
        }
    }
    observed.interruption_queue = spec.interruption_queue.as_deref().map(|queue| {
        match inventory.sqs(&spec.region).feed(queue) {
            None => QueueFeedState::Starting,
            Some(QueueFeed::Polling) => QueueFeedState::Polling,
            Some(QueueFeed::Failing { reason, message }) => {
                QueueFeedState::Failing { reason, message }
            }
        }
    });
}

/// Launched `grace` or longer before `now`. An instance without a launch time (launched this
/// round, not listed yet) is within its grace.
fn is_past_grace(launched_at: Option<Timestamp>, grace: SignedDuration, now: Timestamp) -> bool {
    launched_at.is_some_and(|launched| now.duration_since(launched) >= grace)
}

/// The health of the running instances still proving it: EC2 status checks in one
/// `DescribeInstanceStatus`, then the TCP port of those whose checks passed (or are not asked
/// for). An instance the previous status recorded healthy and that is still running keeps that
/// verdict unless the region's listing of impaired instances (shared by every fleet, as old as
/// the instance listing) names it: health is read while an instance comes up, not per instance
/// every round for the life of the fleet.
async fn check_health(
    observer: Observer<'_>,
    spec: &SpotFleetSpec,
    instances: &mut [ObservedInstance],
) -> Result<(), AwsError> {
    let status = observer.status;
    let healthy_before: BTreeSet<&str> = status
        .map(|s| {
            s.instances
                .iter()
                .filter(|i| i.healthy && i.state.as_deref() == Some("running"))
                .map(|i| i.instance_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let same_generation =
        status.is_some_and(|s| s.common.observed_generation == observer.generation);
    let tcp_port = spec.health_check.tcp_port;
    let ec2 = observer.inventory.ec2(&spec.region);
    // A healthy instance can go bad (a host failure): the region's impaired instances, one
    // shared listing, say which.
    let keeps_verdict = instances
        .iter()
        .any(|i| i.state == InstanceState::Running && healthy_before.contains(i.id.as_str()));
    let impaired = if keeps_verdict && spec.health_check.ec2_status_checks {
        ec2.impaired_instances().await?
    } else {
        std::sync::Arc::default()
    };
    let mut ask = Vec::new();
    for instance in instances.iter_mut() {
        if instance.state != InstanceState::Running {
            continue;
        }
        if let Some(bad) = impaired.iter().find(|h| h.id == instance.id) {
            instance.ec2_checks = Ec2Checks::from_health(bad);
        } else if healthy_before.contains(instance.id.as_str()) {
            instance.ec2_checks = Ec2Checks::Ok;
            if tcp_port.is_some() && same_generation {
                instance.tcp = TcpCheck::Open;
            }
        } else if spec.health_check.ec2_status_checks {
            ask.push(instance.id.clone());
        }
    }
    if !ask.is_empty() {
        let health = observer
            .inventory
            .aws()
            .ec2(&spec.region)
            .instance_status(&ask)
            .await?;
        for checked in &health {
            if let Some(instance) = instances.iter_mut().find(|i| i.id == checked.id) {
                instance.ec2_checks = Ec2Checks::from_health(checked);
            }
        }
    }
    if let Some(port) = tcp_port.and_then(|p| u16::try_from(p).ok()) {
        let ec2_checks_pass = |i: &ObservedInstance| {
            !spec.health_check.ec2_status_checks || i.ec2_checks == Ec2Checks::Ok
        };
        probe_ports(observer.prober, port, instances, ec2_checks_pass).await;
    }
    Ok(())
}

/// Dials `port` on every running instance whose verdict is still open and whose EC2 checks
/// pass, concurrently (bounded by the prober). An instance without a readable private address
/// stays [`TcpCheck::NotChecked`]: not yet.
async fn probe_ports(
    prober: &TcpProber,
    port: u16,
    instances: &mut [ObservedInstance],
    ec2_checks_pass: impl Fn(&ObservedInstance) -> bool,
) {
    let due: Vec<(usize, SocketAddr)> = instances
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            i.state == InstanceState::Running && i.tcp == TcpCheck::NotChecked && ec2_checks_pass(i)
        })
        .filter_map(|(at, i)| {
            let ip: IpAddr = i.private_ip.as_deref()?.parse().ok()?;
            Some((at, SocketAddr::new(ip, port)))
        })
        .collect();
    if due.is_empty() {
        return;
    }
    let targets: Vec<SocketAddr> = due.iter().map(|(_, target)| *target).collect();
    let outcomes = prober.probe(&targets).await;
    for ((at, _), outcome) in due.iter().zip(outcomes) {
        instances[*at].tcp = match outcome {
            ProbeOutcome::Open => TcpCheck::Open,
            ProbeOutcome::Closed => TcpCheck::Closed,
            ProbeOutcome::NotAllowed => TcpCheck::NotAllowed,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_measured_from_the_launch_time() {
        let launched = Timestamp::UNIX_EPOCH;
        let grace = SignedDuration::from_secs(300);
        let at = |secs: i64| launched + SignedDuration::from_secs(secs);
        assert!(!is_past_grace(Some(launched), grace, at(299)));
        assert!(is_past_grace(Some(launched), grace, at(300)));
        assert!(!is_past_grace(None, grace, at(10_000)), "not listed yet");
    }

    #[tokio::test]
    async fn ports_are_probed_only_on_running_instances_whose_ec2_checks_passed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let instance = |id: &str, ip: Option<&str>, state, checks| ObservedInstance {
            id: id.into(),
            state,
            private_ip: ip.map(str::to_owned),
            ec2_checks: checks,
            ..ObservedInstance::default()
        };
        let mut instances = [
            instance(
                "open",
                Some("127.0.0.1"),
                InstanceState::Running,
                Ec2Checks::Ok,
            ),
            // Nobody listens on 127.0.0.2 at that port: refused.
            instance(
                "closed",
                Some("127.0.0.2"),
                InstanceState::Running,
                Ec2Checks::Ok,
            ),
            instance(
                "booting",
                Some("127.0.0.1"),
                InstanceState::Running,
                Ec2Checks::Initializing,
            ),
            instance(
                "pending",
                Some("127.0.0.1"),
                InstanceState::Pending,
                Ec2Checks::Ok,
            ),
            instance("no-address", None, InstanceState::Running, Ec2Checks::Ok),
            instance(
                "vpc",
                Some("10.0.0.5"),
                InstanceState::Running,
                Ec2Checks::Ok,
            ),
        ];
        let prober = TcpProber::new(crate::probe::ProbeSettings {
            loopback_only: true,
            ..crate::probe::ProbeSettings::default()
        });
        probe_ports(&prober, port, &mut instances, |i| {
            i.ec2_checks == Ec2Checks::Ok
        })
        .await;
        let verdicts: Vec<(&str, TcpCheck)> =
            instances.iter().map(|i| (i.id.as_str(), i.tcp)).collect();
        assert_eq!(
            verdicts,
            [
                ("open", TcpCheck::Open),
                ("closed", TcpCheck::Closed),
                ("booting", TcpCheck::NotChecked),
                ("pending", TcpCheck::NotChecked),
                ("no-address", TcpCheck::NotChecked),
                ("vpc", TcpCheck::NotAllowed),
            ]
        );
        // Three probes, and the one outside loopback was not dialled.
        let dialled: Vec<String> = prober
            .recent()
            .iter()
            .filter(|d| d.dialled())
            .map(|d| d.address.ip().to_string())
            .collect();
        assert_eq!(dialled, ["127.0.0.1", "127.0.0.2"]);
    }
}
