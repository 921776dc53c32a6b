//! Stagehand's end-to-end suites, one module per thing they test, in one test binary (the AWS
//! SDK, kube and the test environment are linked once, not once per suite). `support` holds what
//! they share: the Kubernetes API stand-in, moto behind the counting/fault proxy, the production
//! controllers, the seeded account and bounded waits.
//!
//! Run one suite with its module path, e.g. `cargo test -p stagehand --test e2e lambda_stage_stack`.

mod support;

mod aws_adapters;
mod cli;
mod cli_plan_apply;
mod cli_site;
mod crash_between_create_and_tag;
mod credentials;
mod event_queue_template;
mod feed;
mod feed_backstop;
mod lambda_inventory;
mod lambda_stage_alias;
mod lambda_stage_deploy;
mod lambda_stage_feed;
mod lambda_stage_restart;
mod lambda_stage_stack;
mod leader_election;
mod leader_failover;
mod leader_fence;
mod prometheus;
mod rbac;
mod rbac_scenario;
mod restart;
mod runtime;
mod soak;
mod spot_fleet;
mod spot_fleet_adopt;
mod spot_fleet_health;
mod spot_fleet_interruption;
mod spot_fleet_round;
mod spot_fleet_template;
mod static_site;
mod static_site_feed;
mod static_site_lifecycle;
mod static_site_prefix;
mod static_site_round;

// Issue 14, bad input and security: unreadable answers, missing resources, namespaces.
mod bad_answers;
mod cross_namespace;
mod static_site_missing;
