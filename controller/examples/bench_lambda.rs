//! LambdaStage reconcile benchmark: AWS calls, counted by the test floor's proxy, for N = 50
//! and 200 functions in stages of 10 — (a) first converge, (b) a steady-state resync with no
//! change, (c) a code change in k = 1 and k = 10 functions — side by side with the scripted
//! approach (every deploy: `UpdateFunctionCode` for every function and the shared layer
//! re-attached to every function with `UpdateFunctionConfiguration`).
//!
//! Not a test and not timed: `make bench` (or `cargo run -p stagehand --example
//! bench_lambda [-- N...]`). Results go to stdout as a Markdown table (docs/benchmarks.md).
//!
//! It drives the reconciler's own round (observe → plan → act → next status) directly, without
//! Kubernetes (the Kubernetes side makes no AWS calls; a resync is one such round per stage;
//! a converge repeats rounds until the plan has nothing left to do, as the 1 s requeue after
//! actions does in `stagehand run`). AWS is moto behind the proxy (`AwsFloor`).
//!
//! Each stage: 10 functions `bench-sNN-fnNN`, each with its own package
//! `s3://bench-artifacts/sNN/fnNN.zip` (follow mode, so a new build under one key changes
//! exactly one function), the shared layer `bench-deps` (latest), one SQS queue and one
//! mapping (to the stage's first function). Seeded as a deploy tool leaves it: every function
//! on an older build, without the layer, untagged (`adopt: true`), no mapping.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark binary: a panic with its location is the report we want"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::json;
use stagehand::aws::AwsProvider;
use stagehand::base::ActGate;
use stagehand::inventory::Inventory;
use stagehand::lambda_stage::round::{ActScope, RoundOptions, round};
use stagehand_crds::{LambdaStage, LambdaStageSpec, LambdaStageStatus};
use stagehand_testenv::aws::seed::{Seeder, deterministic_zip};
use stagehand_testenv::aws::{AwsFloor, CallsReport, REGION};

mod bench_support;

const STAGE_SIZE: usize = 10;
const BUCKET: &str = "bench-artifacts";
const LAYER: &str = "bench-deps";
const MAX_ROUNDS: usize = 10;
/// The controller's default `--inventory-max-age`.
const INVENTORY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30);

fn function_name(stage: usize, index: usize) -> String {
    format!("bench-s{stage:02}-fn{index:02}")
}

fn key(stage: usize, index: usize) -> String {
    format!("s{stage:02}/fn{index:02}.zip")
}

fn queue(stage: usize) -> String {
    format!("bench-s{stage:02}-queue")
}

fn package(stage: usize, index: usize, build: u32) -> Vec<u8> {
    let handler = format!(
        "def handler(event, context):\n    return {{\"stage\": {stage}, \"fn\": {index}, \"build\": {build}}}\n"
    );
    deterministic_zip(&[("app.py", handler.as_bytes())])
}

fn spec(stage: usize) -> LambdaStageSpec {
    let functions: Vec<_> = (0..STAGE_SIZE)
        .map(|i| {
            json!({
                "name": function_name(stage, i),
                "code": {"s3": {"bucket": BUCKET, "key": key(stage, i)}},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "region": REGION,
        "adopt": true,
        "functions": functions,
        "layers": [{"name": LAYER, "version": "latest"}],
        "eventSourceMappings": [
            {"function": function_name(stage, 0), "queue": queue(stage), "batchSize": 10},
        ],
    }))
    .unwrap()
}

/// One stage as the controller holds it: spec, last status.
struct Stage {
    name: String,
    spec: LambdaStageSpec,
    status: Option<LambdaStageStatus>,
    /// `metadata.generation`: bumped by a spec change.
    generation: i64,
}

struct Bench {
    floor: AwsFloor,
    seeder: Seeder,
    aws: AwsProvider,
    inventory: Inventory,
}

/// What one phase cost.
#[derive(Default, Clone)]
struct Cost {
    calls: u64,
    rounds: usize,
    code_updates: u64,
    by_operation: BTreeMap<String, u64>,
}

impl Cost {
    fn from_report(report: &CallsReport, rounds: usize) -> Self {
        Self {
            calls: report.total,
            rounds,
            code_updates: report.count("lambda", "UpdateFunctionCode"),
            by_operation: bench_support::by_operation(report),
        }
    }
}

impl Bench {
    async fn start() -> Self {
        let floor = AwsFloor::start().await.unwrap();
        let seeder = Seeder::new(&floor.endpoint_url(), REGION).await;
        // The call counts do not depend on the client-side rate limits: lifted.
        let aws = bench_support::unlimited_provider(&floor).await;
        Self {
            floor,
            seeder,
            inventory: Inventory::new(aws.clone(), INVENTORY_MAX_AGE),
            aws,
        }
    }

    /// A fresh account with `n` functions as a deploy tool left them; the stages declaring them.
    async fn seed(&mut self, n: usize) -> Vec<Stage> {
        self.floor.reset().await.unwrap();
        self.inventory = Inventory::new(self.aws.clone(), INVENTORY_MAX_AGE);
        let role = self.seeder.role().await.unwrap();
        self.seeder.bucket(BUCKET).await.unwrap();
        self.seeder.publish_layer(LAYER, 1).await.unwrap();
        self.seeder.publish_layer(LAYER, 2).await.unwrap();
        let mut stages = Vec::new();
        for stage in 0..n / STAGE_SIZE {
            self.seeder.queue(&queue(stage)).await.unwrap();
            for index in 0..STAGE_SIZE {
                self.seeder
                    .upload(BUCKET, &key(stage, index), package(stage, index, 1))
                    .await
                    .unwrap();
                self.seeder
                    .lambda()
                    .create_function()
                    .function_name(function_name(stage, index))
                    .runtime(Runtime::Python312)
                    .role(&role)
                    .handler("app.handler")
                    .code(
                        FunctionCode::builder()
                            .zip_file(package(stage, index, 0).into())
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            stages.push(Stage {
                name: format!("bench-s{stage:02}"),
                spec: spec(stage),
                status: None,
                generation: 1,
            });
        }
        stages
    }

    /// One reconcile round, exactly as the controller runs it (the reconciler's own
    /// `round`, which also re-reads ownership before writes); whether it changed anything (or
    /// still waits for something).
    async fn round(&self, stage: &mut Stage) -> bool {
        let mut object = LambdaStage::new(&stage.name, stage.spec.clone());
        object.metadata.namespace = Some("bench".into());
        object.metadata.generation = Some(stage.generation);
        let options = RoundOptions {
            cluster_id: "bench",
            gate: ActGate::Act,
            scope: ActScope::Gated,
            refresh: false,
        };
        let round = round(
            &self.inventory,
            &object,
            stage.status.as_ref(),
            options,
            |_| {},
        )
        .await
        .unwrap();
        assert!(
            round.plan.stalled.is_none(),
            "{}: {:?}",
            stage.name,
            round.plan.stalled
        );
        assert!(
            round.report.failure.is_none(),
            "{}: {:?}",
            stage.name,
            round.report.failure
        );
        let busy = !round.report.done.is_empty() || !round.plan.waits.is_empty();
        stage.status = Some(round.status);
        busy
    }

    /// Every stage reconciled until it has nothing left to do; the calls that took. The
    /// inventory's listings have expired when the phase starts (a resync comes minutes after
    /// the last one, the listings last `INVENTORY_MAX_AGE`); with `alone`, before every stage
    /// too (the worst case: no two stages reconcile within one max age).
    async fn converge(&self, stages: &mut [Stage], alone: bool) -> Cost {
        self.floor.reset_calls().await.unwrap();
        self.inventory.forget(REGION);
        let mut rounds = 0;
        for stage in stages.iter_mut() {
            if alone {
                self.inventory.forget(REGION);
            }
            let mut busy = true;
            let mut n = 0;
            while busy {
                assert!(n < MAX_ROUNDS, "{} did not converge", stage.name);
                busy = self.round(stage).await;
                n += 1;
            }
            rounds += n;
        }
        Cost::from_report(&self.floor.calls().await.unwrap(), rounds)
    }

    /// The scripted deploy, as the Chalice/SAM wrapper scripts do it after every deploy: find
    /// the stage's functions, resolve the layer's latest version, then for every function push
    /// its code, read its layers and re-attach the shared layer (other layers kept).
    async fn scripted_deploy(&self, n: usize) -> Cost {
        self.floor.reset_calls().await.unwrap();
        let lambda = self.seeder.lambda();
        let mut names = Vec::new();
        let mut pages = lambda.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            names.extend(
                page.unwrap()
                    .functions()
                    .iter()
                    .filter_map(|f| f.function_name())
                    .filter(|f| f.starts_with("bench-s"))
                    .map(str::to_owned),
            );
        }
        assert_eq!(names.len(), n);
        let latest = lambda
            .list_layer_versions()
            .layer_name(LAYER)
            .send()
            .await
            .unwrap()
            .layer_versions()
            .iter()
            .filter_map(|v| v.layer_version_arn().map(str::to_owned))
            .max_by_key(|arn| {
                arn.rsplit(':')
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or_default()
            })
            .unwrap();
        let layer_prefix = latest.rsplit_once(':').unwrap().0.to_owned();
        for name in &names {
            let (stage, index) = parse_name(name);
            lambda
                .update_function_code()
                .function_name(name)
                .s3_bucket(BUCKET)
                .s3_key(key(stage, index))
                .send()
                .await
                .unwrap();
            let config = lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .unwrap();
            let mut layers: Vec<String> = config
                .layers()
                .iter()
                .filter_map(|l| l.arn().map(str::to_owned))
                .filter(|arn| !arn.starts_with(&format!("{layer_prefix}:")))
                .collect();
            layers.push(latest.clone());
            lambda
                .update_function_configuration()
                .function_name(name)
                .set_layers(Some(layers))
                .send()
                .await
                .unwrap();
        }
        Cost::from_report(&self.floor.calls().await.unwrap(), 1)
    }

    /// New builds for the first `k` functions (stage order).
    async fn change_code(&self, k: usize, build: u32) {
        for i in 0..k {
            let (stage, index) = (i / STAGE_SIZE, i % STAGE_SIZE);
            self.seeder
                .upload(BUCKET, &key(stage, index), package(stage, index, build))
                .await
                .unwrap();
        }
    }
}

fn parse_name(name: &str) -> (usize, usize) {
    let stage = name[7..9].parse().unwrap();
    let index = name[12..14].parse().unwrap();
    (stage, index)
}

fn per_function(cost: &Cost, n: usize) -> String {
    format!("{:.2}", cost.calls as f64 / n as f64)
}

fn breakdown(cost: &Cost) -> String {
    bench_support::breakdown(&cost.by_operation)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("N: a multiple of 10"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![50, 200]
    } else {
        sizes
    };
    let mut bench = Bench::start().await;
    let mut table = String::from(
        "| N | phase | Stagehand calls | per function | rounds | UpdateFunctionCode | scripted calls | per function | UpdateFunctionCode |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut details = String::new();
    for n in sizes {
        assert!(
            n % STAGE_SIZE == 0 && n > 0,
            "N must be a multiple of {STAGE_SIZE}"
        );
        let mut stages = bench.seed(n).await;
        let first = bench.converge(&mut stages, false).await;
        let resync = bench.converge(&mut stages, false).await;
        assert_eq!(resync.rounds, stages.len(), "a no-change resync acted");
        let resync_alone = bench.converge(&mut stages, true).await;
        assert_eq!(
            resync_alone.rounds,
            stages.len(),
            "a no-change resync acted"
        );
        // A GitOps sync touches every stage's spec at once (nothing to change in AWS): each
        // stage's first reconcile after a spec change asks for a fresh view.
        for stage in &mut stages {
            stage.generation += 1;
        }
        let spec_burst = bench.converge(&mut stages, false).await;
        bench.change_code(1, 2).await;
        let k1 = bench.converge(&mut stages, false).await;
        bench.change_code(10, 3).await;
        let k10 = bench.converge(&mut stages, false).await;
        // The scripted approach on the same account: the same deploy every time.
        let scripted = bench.scripted_deploy(n).await;
        let rows = [
            ("(a) first converge", &first, Some(&scripted)),
            ("(b) resync, no change", &resync, None),
            (
                "(b) resync, no change, each stage alone",
                &resync_alone,
                None,
            ),
            ("(d) spec change on every stage at once", &spec_burst, None),
            ("(c) code change, k = 1", &k1, Some(&scripted)),
            ("(c) code change, k = 10", &k10, Some(&scripted)),
        ];
        for (phase, cost, script) in rows {
            let (s_calls, s_per, s_code) = script.map_or_else(
                || ("— (never runs)".to_owned(), "—".to_owned(), "—".to_owned()),
                |s| {
                    (
                        s.calls.to_string(),
                        per_function(s, n),
                        s.code_updates.to_string(),
                    )
                },
            );
            writeln!(
                table,
                "| {n} | {phase} | {} | {} | {} | {} | {s_calls} | {s_per} | {s_code} |",
                cost.calls,
                per_function(cost, n),
                cost.rounds,
                cost.code_updates,
            )
            .unwrap();
            writeln!(details, "N={n} {phase}: {}", breakdown(cost)).unwrap();
        }
        writeln!(details, "N={n} scripted deploy: {}", breakdown(&scripted)).unwrap();
    }
    println!("{table}");
    println!("{details}");
    // Peak memory of this process: the inventory (every listed function of the region), the
    // hash cache, the SDK clients and the stages' specs and statuses.
    for line in bench_support::memory_lines() {
        println!("{line}");
    }
}
