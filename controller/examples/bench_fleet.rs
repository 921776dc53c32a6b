//! SpotFleet reconcile benchmark: AWS calls, counted by the test floor's proxy, for F fleets of
//! 4 instances (default F = 100) — (a) first converge, (b) a resync with no change, (c) a spec
//! change on k = 1 and k = 10 fleets (Surge, `maxSurge: 1`), (d) one instance terminated by
//! someone else, (e) one spot interruption warning (recorded in the inventory as the event feed
//! does when the queue delivers it; the feed's own `ReceiveMessage` and `DeleteMessageBatch` are
//! not counted), (f) an untagged instance named for one fleet adopted once that fleet gets
//! `adopt: true` (tagged, then terminated: the fleet's four in-date instances already meet its
//! capacity) — side by side with the team's script, which on every change destroys every
//! instance of a fleet, lists until none is left, creates all of them again and checks them.
//!
//! Not a test and not timed: `make bench` (or `cargo run -p stagehand --example bench_fleet
//! [-- F...]`). Results go to stdout as a Markdown table (docs/benchmarks.md).
//!
//! Like `bench_lambda`, it drives the reconciler's own round (`spot_fleet::round::round`)
//! directly, without Kubernetes; a converge repeats rounds per fleet until the plan has
//! nothing left to do or wait for. moto is never asynchronous: instances are `running` with
//! their status checks `ok` when `CreateFleet` returns, so a Surge step takes two rounds
//! (launch; then, once the replacement is healthy, terminate) — on AWS, more rounds of reads
//! while instances boot.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark binary: a panic with its location is the report we want"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, InstanceMarketOptionsRequest, InstanceType, MarketType, ResourceType, Tag,
    TagSpecification,
};
use serde_json::json;
use stagehand::aws::AwsProvider;
use stagehand::base::ActGate;
use stagehand::inventory::Inventory;
use stagehand::inventory::ec2::Notice;
use stagehand::probe::{ProbeSettings, TcpProber};
use stagehand::spot_fleet::plan::Action;
use stagehand::spot_fleet::round::{RoundOptions, round};
use stagehand_crds::{OWNER_TAG, SpotFleet, SpotFleetSpec, SpotFleetStatus};
use stagehand_testenv::aws::{AwsFloor, CallsReport, REGION};

mod bench_support;

const CAPACITY: i32 = 4;
const MAX_ROUNDS: usize = 30;
/// moto's default AMI.
const IMAGE: &str = "ami-12c6146b";
/// The controller's default `--inventory-max-age`.
const INVENTORY_MAX_AGE: Duration = Duration::from_secs(30);

/// One fleet as the controller holds it: object (spec, generation), last status.
struct Fleet {
    object: SpotFleet,
    status: Option<SpotFleetStatus>,
}

impl Fleet {
    fn owner(&self) -> String {
        format!(
            "bench/SpotFleet/{}",
            self.object.metadata.name.as_deref().unwrap()
        )
    }
}

/// What one phase cost.
#[derive(Default)]
struct Cost {
    calls: u64,
    rounds: usize,
    launched: u64,
    terminated: u64,
    by_operation: BTreeMap<String, u64>,
}

impl Cost {
    fn new(report: &CallsReport, rounds: usize, launched: u64, terminated: u64) -> Self {
        Self {
            calls: report.total,
            rounds,
            launched,
            terminated,
            by_operation: bench_support::by_operation(report),
        }
    }
}

struct Bench {
    floor: AwsFloor,
    ec2: aws_sdk_ec2::Client,
    aws: AwsProvider,
    inventory: Inventory,
    subnets: Vec<String>,
    security_group: String,
    /// Never used (the fleets have no `tcpPort`), and never dials outside loopback.
    prober: TcpProber,
}

impl Bench {
    async fn start() -> Self {
        let floor = AwsFloor::start().await.unwrap();
        let aws = bench_support::unlimited_provider(&floor).await;
        let ec2 = aws_sdk_ec2::Client::new(aws.sdk_config());
        Self {
            inventory: Inventory::new(aws.clone(), INVENTORY_MAX_AGE),
            floor,
            ec2,
            aws,
            subnets: Vec::new(),
            security_group: String::new(),
            prober: TcpProber::new(ProbeSettings {
                loopback_only: true,
                ..ProbeSettings::default()
            }),
        }
    }

    /// A fresh account: two subnets of the default VPC and a security group; `f` fleets.
    async fn seed(&mut self, f: usize) -> Vec<Fleet> {
        self.floor.reset().await.unwrap();
        self.inventory = Inventory::new(self.aws.clone(), INVENTORY_MAX_AGE);
        let subnets = self.ec2.describe_subnets().send().await.unwrap();
        let mut subnets: Vec<(String, String)> = subnets
            .subnets()
            .iter()
            .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
            .collect();
        subnets.sort();
        self.subnets = subnets.into_iter().take(2).map(|(_, id)| id).collect();
        let vpcs = self.ec2.describe_vpcs().send().await.unwrap();
        let group = self
            .ec2
            .create_security_group()
            .group_name("bench-fleet")
            .description("benchmark fleets")
            .vpc_id(vpcs.vpcs()[0].vpc_id().unwrap())
            .send()
            .await
            .unwrap();
        group
            .group_id()
            .unwrap()
            .clone_into(&mut self.security_group);
        (0..f)
            .map(|i| {
                let mut object = SpotFleet::new(&format!("fleet-{i:03}"), self.spec(i, 1));
                object.metadata.namespace = Some("bench".into());
                object.metadata.generation = Some(1);
                Fleet {
                    object,
                    status: None,
                }
            })
            .collect()
    }

    /// Fleet `i`'s spec at build `build` of its service (a new build changes the spec hash).
    fn spec(&self, i: usize, build: u32) -> SpotFleetSpec {
        serde_json::from_value(json!({
            "region": REGION,
            "capacity": CAPACITY,
            "instanceTypes": ["t3.small", "t3a.small"],
            "imageId": IMAGE,
            "subnetIds": self.subnets,
            "securityGroupIds": [self.security_group],
            "files": [{"path": "/etc/worker/env", "content": format!("FLEET={i}\nBUILD={build}\n")}],
            "services": [{
                "name": "worker.service",
                "unit": "[Service]\nEnvironmentFile=/etc/worker/env\nExecStart=/usr/local/bin/worker\n",
            }],
            "tags": {"team": "bench"},
        }))
        .unwrap()
    }

    /// One reconcile round, exactly as the controller runs it: (launched, terminated, busy).
    async fn round(&self, fleet: &mut Fleet) -> (u64, u64, bool) {
        let options = RoundOptions {
            cluster_id: "bench",
            gate: ActGate::Act,
            refresh: false,
            prober: &self.prober,
            now: jiff::Timestamp::now(),
            dry_run: false,
        };
        let round = round(
            &self.inventory,
            &fleet.object,
            fleet.status.as_ref(),
            options,
            |_| {},
        )
        .await
        .unwrap();
        let name = fleet.owner();
        assert!(
            round.plan.stalled.is_none(),
            "{name}: {:?}",
            round.plan.stalled
        );
        assert!(
            round.report.failure.is_none(),
            "{name}: {:?}",
            round.report.failure
        );
        let terminated = round
            .report
            .done
            .iter()
            .map(|a| match a {
                Action::Terminate { ids, .. } => ids.len() as u64,
                _ => 0,
            })
            .sum();
        let busy = !round.report.done.is_empty() || !round.plan.waits.is_empty();
        fleet.status = Some(round.status);
        (round.report.launched.len() as u64, terminated, busy)
    }

    /// Every fleet reconciled until it has nothing left to do; the calls that took. The
    /// region's listing has expired when the phase starts (a resync comes minutes after the
    /// last one).
    async fn converge(&self, fleets: &mut [Fleet]) -> Cost {
        self.floor.reset_calls().await.unwrap();
        self.inventory.forget(REGION);
        let (mut rounds, mut launched, mut terminated) = (0, 0, 0);
        for fleet in fleets.iter_mut() {
            let mut busy = true;
            let mut n = 0;
            while busy {
                assert!(n < MAX_ROUNDS, "{} did not converge", fleet.owner());
                let (l, t, b) = self.round(fleet).await;
                (launched, terminated, busy) = (launched + l, terminated + t, b);
                n += 1;
            }
            rounds += n;
        }
        let report = self.floor.calls().await.unwrap();
        Cost::new(&report, rounds, launched, terminated)
    }

    /// The first `k` fleets get a new build.
    fn change(&self, fleets: &mut [Fleet], k: usize, build: u32) {
        for (i, fleet) in fleets.iter_mut().enumerate().take(k) {
            fleet.object.spec = self.spec(i, build);
            let generation = fleet.object.metadata.generation.unwrap_or(1);
            fleet.object.metadata.generation = Some(generation + 1);
        }
    }

    /// Someone terminates one instance of the first fleet by hand.
    async fn terminate_one_by_hand(&self, fleet: &Fleet) {
        let status = fleet.status.as_ref().unwrap();
        let id = status.instances[0].instance_id.clone();
        self.ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
    }

    /// The event feed heard a spot interruption warning for one instance of the first fleet.
    fn interruption_warning(&self, fleet: &Fleet) {
        let status = fleet.status.as_ref().unwrap();
        let id = &status.instances[0].instance_id;
        self.inventory.ec2(REGION).notice(id, Notice::Interruption);
    }

    /// Someone launched an instance by hand, without owner tags, named `<namespace>/<name>` of
    /// `fleet` (as the team's script named them), and the fleet gets `adopt: true` (a new
    /// generation; the spec hash is unchanged, so only that instance is out of date).
    async fn adoptable_instance(&self, fleet: &mut Fleet) {
        let name = format!("bench/{}", fleet.object.metadata.name.as_deref().unwrap());
        self.run_by_hand(&fleet.object.spec, 1, ("Name", &name))
            .send()
            .await
            .unwrap();
        fleet.object.spec.lifecycle.adopt = true;
        let generation = fleet.object.metadata.generation.unwrap_or(1);
        fleet.object.metadata.generation = Some(generation + 1);
    }

    /// The team's script for the first `k` fleets: destroy every instance, list until none is
    /// left, create all of them again, then the debug script's status check.
    async fn scripted(&self, fleets: &[Fleet], k: usize) -> Cost {
        self.floor.reset_calls().await.unwrap();
        let (mut launched, mut terminated) = (0, 0);
        for fleet in fleets.iter().take(k) {
            let owner = fleet.owner();
            let live = self.live_instances(&owner).await;
            if !live.is_empty() {
                terminated += live.len() as u64;
                self.ec2
                    .terminate_instances()
                    .set_instance_ids(Some(live))
                    .send()
                    .await
                    .unwrap();
            }
            while !self.live_instances(&owner).await.is_empty() {}
            let created = self.run_instances(&fleet.object.spec, &owner).await;
            launched += created.len() as u64;
            self.ec2
                .describe_instance_status()
                .set_instance_ids(Some(created))
                .send()
                .await
                .unwrap();
        }
        let report = self.floor.calls().await.unwrap();
        Cost::new(&report, 0, launched, terminated)
    }

    async fn live_instances(&self, owner: &str) -> Vec<String> {
        let described = self
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{OWNER_TAG}"))
                    .values(owner)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .values("stopping")
                    .values("stopped")
                    .values("shutting-down")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        described
            .reservations()
            .iter()
            .flat_map(aws_sdk_ec2::types::Reservation::instances)
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect()
    }

    /// `count` instances of `spec`'s image, first type and subnet, and the security group,
    /// tagged `tag` only: what a script launches.
    fn run_by_hand(
        &self,
        spec: &SpotFleetSpec,
        count: i32,
        (key, value): (&str, &str),
    ) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
        self.ec2
            .run_instances()
            .image_id(&spec.image_id)
            .instance_type(InstanceType::from(spec.instance_types[0].as_str()))
            .subnet_id(&spec.subnet_ids[0])
            .security_group_ids(&self.security_group)
            .min_count(count)
            .max_count(count)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key(key).value(value).build())
                    .build(),
            )
    }

    /// `aws ec2 run-instances --count 4 --instance-market-options spot` with the script's
    /// user data and tags.
    async fn run_instances(&self, spec: &SpotFleetSpec, owner: &str) -> Vec<String> {
        let ran = self
            .run_by_hand(spec, CAPACITY, (OWNER_TAG, owner))
            .instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ran.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect()
    }
}

fn row(table: &mut String, f: usize, phase: &str, cost: &Cost, script: Option<&Cost>) {
    let instances = (f * CAPACITY as usize) as f64;
    let script = script.map_or_else(
        || "— | — | —".to_owned(),
        |s| format!("{} | {} | {}", s.calls, s.launched, s.terminated),
    );
    writeln!(
        table,
        "| {f} | {phase} | {} | {:.2} | {} | {} | {} | {script} |",
        cost.calls,
        cost.calls as f64 / instances,
        cost.rounds,
        cost.launched,
        cost.terminated,
    )
    .unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("F: a number of fleets, at least 10"))
        .collect();
    let sizes = if sizes.is_empty() { vec![100] } else { sizes };
    let mut bench = Bench::start().await;
    let mut table = String::from(
        "| fleets | phase | Stagehand calls | per instance | rounds | launched | terminated | script calls | script launched | script terminated |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut details = String::new();
    for f in sizes {
        assert!(f >= 10, "F must be at least 10");
        let mut fleets = bench.seed(f).await;
        let first = bench.converge(&mut fleets).await;
        let resync = bench.converge(&mut fleets).await;
        assert_eq!(resync.rounds, f, "a no-change resync acted");
        bench.change(&mut fleets, 1, 2);
        let k1 = bench.converge(&mut fleets).await;
        bench.change(&mut fleets, 10, 3);
        let k10 = bench.converge(&mut fleets).await;
        bench.terminate_one_by_hand(&fleets[0]).await;
        let lost = bench.converge(&mut fleets).await;
        bench.interruption_warning(&fleets[0]);
        let interrupted = bench.converge(&mut fleets).await;
        bench.adoptable_instance(&mut fleets[1]).await;
        let adoption = bench.converge(&mut fleets).await;
        // Adopted beyond capacity: tagged, then terminated, nothing launched.
        assert_eq!((adoption.launched, adoption.terminated), (0, 1));
        let script_all = bench.scripted(&fleets, f).await;
        let script_k1 = bench.scripted(&fleets, 1).await;
        let script_k10 = bench.scripted(&fleets, 10).await;
        let rows = [
            ("(a) first converge", &first, Some(&script_all)),
            ("(b) resync, no change", &resync, None),
            ("(c) spec change, k = 1", &k1, Some(&script_k1)),
            ("(c) spec change, k = 10", &k10, Some(&script_k10)),
            ("(d) one instance terminated by hand", &lost, None),
            ("(e) one spot interruption warning", &interrupted, None),
            ("(f) one instance adopted, beyond capacity", &adoption, None),
        ];
        for (phase, cost, script) in rows {
            row(&mut table, f, phase, cost, script);
            writeln!(
                details,
                "F={f} {phase}: {}",
                bench_support::breakdown(&cost.by_operation)
            )
            .unwrap();
        }
        for (phase, cost) in [
            ("all", &script_all),
            ("k = 1", &script_k1),
            ("k = 10", &script_k10),
        ] {
            writeln!(
                details,
                "F={f} script, {phase}: {}",
                bench_support::breakdown(&cost.by_operation)
            )
            .unwrap();
        }
    }
    println!("{table}");
    println!("{details}");
    // Peak memory of this process: the inventory (every listed instance of the region), the
    // SDK clients and the fleets' specs and statuses.
    for line in bench_support::memory_lines() {
        println!("{line}");
    }
}
