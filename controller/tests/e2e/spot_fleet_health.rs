//! SpotFleet's TCP health check (`healthCheck.tcpPort`) on loopback only. The proxy's
//! `loopback_addresses` rule puts every instance `DescribeInstances` lists on a 127.0.0.x of its
//! own; the tests listen there for the instances they want healthy, as the service cloud-init
//! starts would. The prober runs loopback-only (as every test, the demo and CI must), and each
//! test asserts from its record that it dialled nothing else.
//!
//! - The production controllers: a fleet is Ready only once every port accepts; its metrics
//!   (instances by state, desired/ready capacity, launch errors by code, replacements by
//!   reason) follow it and its gauges go with it; without the rewrite, the fleet is Stalled
//!   (`ProbeNotAllowed`) and no 10.x address is ever dialled.
//! - Rounds with an injected clock (the CRD's shortest grace period is 30 s): a port that stays
//!   closed is "not yet" within the grace period, and past it its instance is replaced under
//!   Surge while the healthy instance keeps serving.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use stagehand::aws::ec2::Ec2;
use stagehand::base::conditions::find_condition;
use stagehand::probe::{Dial, ProbeOutcome, is_loopback};
use stagehand::spot_fleet::plan::{Action, ReplacementReason, TerminateReason};
use stagehand_crds::{OWNER_TAG, REFRESH_ANNOTATION, SpotFleet};
use stagehand_testenv::aws::{FaultAction, FaultRule};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::spot_fleet::{fleet, wait_gone, wait_ready};
use crate::spot_fleet_round::{Fleet, World, fleet_spec, live_of, network};
use crate::support::{Env, NAMESPACE, REGION, TIMEOUT};

/// The instances' service: listens on `port` at the addresses it is told to serve. The port is
/// reserved on 127.0.0.1 for the test's life, so that no concurrent test picks the same one.
pub struct Service {
    pub port: u16,
    _reservation: TcpListener,
    listeners: Vec<JoinHandle<()>>,
}

impl Service {
    pub async fn reserve() -> Self {
        let reservation = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self {
            port: reservation.local_addr().unwrap().port(),
            _reservation: reservation,
            listeners: Vec::new(),
        }
    }

    /// Accepts (and closes) every connection to `address:port` from now on.
    pub async fn serve(&mut self, address: Ipv4Addr) {
        let listener = TcpListener::bind((address, self.port)).await.unwrap();
        self.listeners.push(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

/// `owner`'s instances as `DescribeInstances` shows them through the proxy: id → (state,
/// private address).
async fn addresses(ec2: &Ec2, owner: &str) -> BTreeMap<String, (String, Option<IpAddr>)> {
    ec2.describe_instances_by_tag(OWNER_TAG, owner)
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            let ip = i.private_ip.as_deref().map(|ip| ip.parse().unwrap());
            (i.id, (i.state, ip))
        })
        .collect()
}

fn v4(ip: Option<IpAddr>) -> Ipv4Addr {
    match ip {
        Some(IpAddr::V4(v4)) => v4,
        other => panic!("not an IPv4 address: {other:?}"),
    }
}

/// Every address the prober connected to is on loopback; returns them.
fn assert_loopback_only(dials: &[Dial]) -> BTreeSet<IpAddr> {
    let dialled: BTreeSet<IpAddr> = dials
        .iter()
        .filter(|d| d.dialled())
        .map(|d| d.address.ip())
        .collect();
    let outside: Vec<&IpAddr> = dialled.iter().filter(|ip| !is_loopback(**ip)).collect();
    assert!(
        outside.is_empty(),
        "dialled outside 127.0.0.0/8: {outside:?}"
    );
    dialled
}

/// The value of the `/metrics` series `series` (exact text before the value), if exported.
fn metric(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_is_ready_once_every_port_accepts_and_its_metrics_follow_it() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.aws
        .floor
        .add_fault(&FaultRule::new(FaultAction::loopback_addresses()))
        .await
        .unwrap();
    // The first launch meets one refused pool: counted by its AWS code.
    env.aws
        .floor
        .add_fault(
            &FaultRule::new(FaultAction::fleet_error(
                "InsufficientInstanceCapacity",
                "t3a.small",
                &network.subnets[1],
            ))
            .times(1),
        )
        .await
        .unwrap();
    env.start_controllers().await;
    let mut service = Service::reserve().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let spec = fleet_spec(
        &network,
        2,
        &json!({
            "deletionPolicy": "Delete",
            "healthCheck": {"tcpPort": service.port, "gracePeriodSeconds": 300},
        }),
    );
    fleets
        .create(&PostParams::default(), &fleet("web", &spec))
        .await
        .unwrap();
    let owner = "shop/SpotFleet/web";
    let ec2 = env.ctx.aws.ec2(REGION);

    // Launched, running, EC2 checks ok, probed: closed, nothing listens yet. Not Ready, and
    // status says so (read once it reports the round that probed them).
    let first = env
        .wait_aws(
            "both instances probed closed and status waiting for health",
            || async {
                let found = addresses(&ec2, owner).await;
                let closed: BTreeSet<IpAddr> = env
                    .ctx
                    .prober
                    .recent()
                    .iter()
                    .filter(|d| d.outcome == ProbeOutcome::Closed)
                    .map(|d| d.address.ip())
                    .collect();
                let probed = found.len() == 2
                    && found
                        .values()
                        .all(|(_, ip)| ip.is_some_and(|ip| closed.contains(&ip)));
                let status = fleets.get("web").await.unwrap().status?;
                let waiting = status.phase.as_deref() == Some("WaitingForHealth")
                    && status.instances.len() == 2
                    && status.instances.iter().all(|i| !i.healthy)
                    && status.ready_capacity == 0;
                (probed && waiting).then_some(found)
            },
        )
        .await;
    let first_ips: BTreeSet<Ipv4Addr> = first.values().map(|(_, ip)| v4(*ip)).collect();
    assert_eq!(first_ips.len(), 2, "distinct addresses: {first:?}");
    assert!(
        first_ips
            .iter()
            .all(|ip| ip.is_loopback() && *ip != Ipv4Addr::LOCALHOST)
    );

    // The service comes up on them (and on the next addresses the proxy will hand out, for
    // the replacements below). A refresh asks for a round now instead of after the wait.
    for last in 2..=7 {
        service.serve(Ipv4Addr::new(127, 0, 0, last)).await;
    }
    let refresh = |value: &str| {
        Patch::Merge(json!({"metadata": {"annotations": {REFRESH_ANNOTATION: value}}}))
    };
    fleets
        .patch("web", &PatchParams::default(), &refresh("1"))
        .await
        .unwrap();
    let ready = wait_ready(&fleets, "web").await.status.unwrap();
    assert_eq!(ready.ready_capacity, 2);
    assert!(ready.instances.iter().all(|i| i.healthy), "{ready:?}");
    let ids: BTreeSet<String> = first.keys().cloned().collect();
    assert_eq!(live_of(&env.aws, owner).await, ids);

    let text = env.ctx.metrics.render().unwrap();
    for (series, value) in [
        (
            r#"stagehand_fleet_instances{fleet="shop/web",state="running"}"#,
            "2",
        ),
        (
            r#"stagehand_fleet_instances{fleet="shop/web",state="pending"}"#,
            "0",
        ),
        (r#"stagehand_fleet_desired_capacity{fleet="shop/web"}"#, "2"),
        (r#"stagehand_fleet_ready_capacity{fleet="shop/web"}"#, "2"),
        (
            r#"stagehand_fleet_launch_errors_total{code="InsufficientInstanceCapacity",fleet="shop/web"}"#,
            "1",
        ),
    ] {
        assert_eq!(
            metric(&text, series).as_deref(),
            Some(value),
            "{series}\n{text}"
        );
    }

    // A spec change replaces both (Surge): the new instances' ports accept at once.
    fleets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"userData": "#cloud-config\nruncmd:\n  - echo v2\n"}})),
        )
        .await
        .unwrap();
    let replaced = wait_ready(&fleets, "web").await.status.unwrap();
    let new: BTreeSet<String> = replaced
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(new.len(), 2);
    assert!(new.is_disjoint(&ids), "{replaced:?}");
    let text = env.ctx.metrics.render().unwrap();
    assert_eq!(
        metric(
            &text,
            r#"stagehand_fleet_replacements_total{fleet="shop/web",reason="spec_hash"}"#
        )
        .as_deref(),
        Some("2"),
        "{text}"
    );

    // Deleted: its gauges go with it.
    fleets
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&fleets, "web").await;
    let text = env.ctx.metrics.render().unwrap();
    let left: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#"fleet="shop/web""#) && !l.contains("_total"))
        .collect();
    assert_eq!(left, Vec::<&str>::new());

    let dialled = assert_loopback_only(&env.ctx.prober.recent());
    for ip in &first_ips {
        assert!(dialled.contains(&IpAddr::V4(*ip)), "{ip} never probed");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_address_rewrite_the_fleet_stalls_and_nothing_outside_loopback_is_dialled() {
    let mut env = Env::start().await;
    let network = network(&env.aws).await;
    env.start_controllers().await;
    let fleets: Api<SpotFleet> = Api::namespaced(env.ctx.client.clone(), NAMESPACE);
    let spec = fleet_spec(&network, 1, &json!({"healthCheck": {"tcpPort": 8080}}));
    fleets
        .create(&PostParams::default(), &fleet("web", &spec))
        .await
        .unwrap();
    let stalled = tokio::time::timeout(TIMEOUT, async {
        loop {
            let fleet = fleets.get("web").await.unwrap();
            if let Some(condition) = fleet
                .status
                .as_ref()
                .and_then(|s| find_condition(&s.common.conditions, "Stalled"))
                .filter(|c| c.status == "True")
            {
                return condition.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the fleet never stalled");
    assert_eq!(stalled.reason, "ProbeNotAllowed", "{stalled:?}");
    let instance = live_of(&env.aws, "shop/SpotFleet/web").await;
    assert_eq!(instance.len(), 1);
    let address = addresses(&env.ctx.aws.ec2(REGION), "shop/SpotFleet/web")
        .await
        .into_values()
        .next()
        .and_then(|(_, ip)| ip)
        .unwrap();
    assert!(!is_loopback(address), "moto's own address: {address}");
    assert!(
        stalled.message.contains(&address.to_string()),
        "{stalled:?}"
    );
    let dials = env.ctx.prober.recent();
    assert!(
        dials
            .iter()
            .any(|d| d.address.ip() == address && d.outcome == ProbeOutcome::NotAllowed),
        "{dials:?}"
    );
    assert_loopback_only(&dials);
    // Nothing is replaced on the strength of a check that could not run.
    assert_eq!(env.calls().await.count("ec2", "CreateFleet"), 1);
    assert_eq!(env.calls().await.count("ec2", "TerminateInstances"), 0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_closed_past_the_grace_period_is_replaced_while_the_healthy_instance_serves() {
    let world = World::start().await;
    world
        .aws
        .floor
        .add_fault(&FaultRule::new(FaultAction::loopback_addresses()))
        .await
        .unwrap();
    let mut service = Service::reserve().await;
    let grace = 30;
    let surge = json!({
        "replacement": {"strategy": "Surge", "maxSurge": 1, "maxUnavailable": 0},
        "healthCheck": {"tcpPort": service.port, "gracePeriodSeconds": grace},
    });
    let mut fleet = Fleet::new("web", &world.spec(2, &surge));
    let owner = fleet.owner();
    let ec2 = world.inventory.aws().ec2(REGION);
    let plan = world.round_checked_at(&mut fleet, Timestamp::now()).await;
    assert!(
        matches!(plan.actions.as_slice(), [Action::Launch { count: 2, .. }]),
        "{plan:?}"
    );
    world.inventory.forget(REGION);

    // The service runs on one instance only.
    let launched = addresses(&ec2, &owner).await;
    let (healthy_id, (_, healthy_ip)) = launched.first_key_value().unwrap();
    let (broken_id, (_, broken_ip)) = launched.last_key_value().unwrap();
    service.serve(v4(*healthy_ip)).await;

    // Within the grace period the closed port is "not yet": nothing is replaced.
    let healthy_ids = |plan: &stagehand::spot_fleet::plan::Plan| -> BTreeSet<String> {
        plan.instances
            .iter()
            .filter(|v| v.healthy)
            .map(|v| v.id.clone())
            .collect()
    };
    let within = world.round_checked_at(&mut fleet, Timestamp::now()).await;
    assert!(within.actions.is_empty(), "{within:?}");
    assert_eq!(healthy_ids(&within), BTreeSet::from([healthy_id.clone()]));
    assert!(
        within.instances.iter().all(|v| v.replacement.is_none()),
        "{within:?}"
    );

    // Past it: the broken one is terminated and replaced; the healthy one stays.
    let later = Timestamp::now() + SignedDuration::from_secs(i64::from(grace) + 30);
    let past = world.round_checked_at(&mut fleet, later).await;
    assert!(
        past.actions.iter().any(|a| matches!(
            a,
            Action::Terminate {
                ids,
                reason: TerminateReason::Replaced(ReplacementReason::UnhealthyPastGrace),
            } if *ids == [broken_id.clone()]
        )),
        "{past:?}"
    );
    assert!(
        past.actions
            .iter()
            .any(|a| matches!(a, Action::Launch { count: 1, .. })),
        "{past:?}"
    );
    assert!(
        !past
            .actions
            .iter()
            .any(|a| matches!(a, Action::Terminate { ids, .. } if ids.contains(healthy_id))),
        "the healthy instance keeps serving: {past:?}"
    );
    assert_eq!(healthy_ids(&past), BTreeSet::from([healthy_id.clone()]));
    let live = live_of(&world.aws, &owner).await;
    assert!(live.contains(healthy_id) && live.len() <= 3, "{live:?}");
    world.inventory.forget(REGION);

    // The replacement's service comes up; it proves healthy within its own grace period.
    let now = addresses(&ec2, &owner).await;
    let (replacement_id, (_, replacement_ip)) = now
        .iter()
        .find(|(id, (state, _))| *id != healthy_id && *id != broken_id && state == "running")
        .unwrap();
    assert!(!launched.contains_key(replacement_id));
    service.serve(v4(*replacement_ip)).await;
    let settled = world.round_checked_at(&mut fleet, Timestamp::now()).await;
    assert!(
        settled.actions.is_empty() && settled.waits.is_empty(),
        "{settled:?}"
    );
    assert_eq!(
        healthy_ids(&settled),
        BTreeSet::from([healthy_id.clone(), replacement_id.clone()])
    );
    assert_eq!(settled.ready_capacity, 2);
    assert_eq!(
        live_of(&world.aws, &owner).await,
        BTreeSet::from([healthy_id.clone(), replacement_id.clone()])
    );

    let dialled = assert_loopback_only(&world.prober.recent());
    assert!(dialled.contains(broken_ip.as_ref().unwrap()), "{dialled:?}");
    // The healthy instance was probed once: afterwards its verdict stands.
    let healthy_probes = world
        .prober
        .recent()
        .iter()
        .filter(|d| Some(d.address.ip()) == *healthy_ip)
        .count();
    assert_eq!(healthy_probes, 1);
}

/// An instance that proved healthy and later has its EC2 status check impaired (a host gone
/// bad) is replaced once past its grace period, surge-first; the region's impaired listing is
/// what shows it, not a status read of every instance every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_instance_whose_status_check_goes_impaired_is_replaced() {
    let world = World::start().await;
    let grace = 30;
    let spec = json!({
        "replacement": {"strategy": "Surge", "maxSurge": 1, "maxUnavailable": 0},
        "healthCheck": {"gracePeriodSeconds": grace},
    });
    let mut fleet = Fleet::new("batch", &world.spec(2, &spec));
    let owner = fleet.owner();
    world.converge(&mut fleet).await;
    world.inventory.forget(REGION);
    let settled = world.round_checked_at(&mut fleet, Timestamp::now()).await;
    assert!(settled.actions.is_empty(), "{settled:?}");
    assert!(settled.instances.iter().all(|v| v.healthy), "{settled:?}");
    let before = live_of(&world.aws, &owner).await;
    let bad = before.iter().next().unwrap().clone();

    world
        .aws
        .floor
        .add_fault(&FaultRule::new(FaultAction::instance_impaired(&bad)))
        .await
        .unwrap();
    // Until the listings are read again, the recorded verdict stands.
    let cached = world.round_checked_at(&mut fleet, Timestamp::now()).await;
    assert!(cached.actions.is_empty(), "{cached:?}");
    world.inventory.forget(REGION);
    let later = Timestamp::now() + SignedDuration::from_secs(i64::from(grace) + 30);
    let seen = world.round_checked_at(&mut fleet, later).await;
    assert!(
        seen.actions.iter().any(|a| matches!(
            a,
            Action::Terminate {
                ids,
                reason: TerminateReason::Replaced(ReplacementReason::UnhealthyPastGrace),
            } if *ids == [bad.clone()]
        )),
        "{seen:?}"
    );
    assert!(
        !seen.instances.iter().any(|v| v.id == bad && v.healthy),
        "{seen:?}"
    );
    world.aws.floor.clear_faults().await.unwrap();
    world.converge(&mut fleet).await;
    let after = live_of(&world.aws, &owner).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        !after.contains(&bad),
        "the impaired instance was replaced: {after:?}"
    );
}
