//! What operators install and watch: the alert rules (run by a real `promtool`), the Grafana
//! dashboard, the Helm chart and the IAM policy, each checked against what the controller
//! really exports and calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod chart;
mod dashboard;

mod exported;
