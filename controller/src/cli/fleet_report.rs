//! What `plan` and `apply` print for a SpotFleet: the phase and capacity, one line per instance
//! (state, health, and why it would be replaced), the drift, the ordered actions (how many
//! instances would be launched and which terminated, and why), the waits, a stall, the
//! conditions, and the rendered cloud-init document the fleet's instances boot with.
//!
//! The document is what a reviewer of a fleet change wants to read before instances are
//! replaced, and noise when nothing is launched: text output shows it in full when the plan
//! launches instances or with `--show-user-data`, a one-line summary otherwise. JSON always
//! holds it.

use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::{Value, json};
use stagehand_crds::SpotFleet;

use super::exit;
use super::report::{
    DriftLine, ObjectReport, conditions_json, drift_json, stall_json, waits_json, write_actions,
    write_conditions, write_drift, write_header, write_waits_and_stall,
};
use crate::base::plan::{Stall, Wait};
use crate::base::{ActGate, Classify};
use crate::spot_fleet::SpotFleetError;
use crate::spot_fleet::cloud_init::USER_DATA_LIMIT_BYTES;
use crate::spot_fleet::plan::{Action, Drift, ReplacementReason, reason};
use crate::spot_fleet::round::Round;
use crate::spot_fleet::spec_hash::desired;

/// One instance of the fleet, as the plan judged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceLine {
    pub id: String,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub state: &'static str,
    pub healthy: bool,
    /// Why it is replaced (`spec_hash`, `unhealthy`, ...); `None` while in date.
    pub replacement: Option<&'static str>,
}

/// The result for one fleet.
#[derive(Debug)]
pub struct FleetReport {
    pub namespace: String,
    pub name: String,
    pub owner: String,
    pub region: String,
    pub gate: ActGate,
    /// `InSync`, `ChangesPending`, `Stalled`, `Ready`, `TimedOut`, `Paused`, `Error`, ...
    pub result: &'static str,
    pub exit_code: u8,
    pub phase: Option<&'static str>,
    pub desired_capacity: i32,
    pub ready_capacity: i32,
    pub spec_hash: Option<String>,
    pub instances: Vec<InstanceLine>,
    pub drift: Vec<Drift>,
    /// What the (last) plan would do.
    pub actions: Vec<Action>,
    pub waits: Vec<Wait>,
    pub stalled: Option<Stall>,
    pub conditions: Vec<Condition>,
    pub message: Option<String>,
    /// The rendered cloud-init document, or why it cannot be rendered.
    pub user_data: Result<Option<String>, String>,
    pub show_user_data: bool,
    /// `apply`: the actions that ran, in order, over every round.
    pub applied: Vec<Action>,
    /// `apply`: reconcile rounds run.
    pub rounds: u32,
    pub error: Option<String>,
}

impl FleetReport {
    pub fn new(fleet: &SpotFleet, owner: &str, show_user_data: bool) -> Self {
        let desired = desired(&fleet.spec);
        Self {
            namespace: fleet.namespace().unwrap_or_default(),
            name: fleet.name_any(),
            owner: owner.to_owned(),
            region: fleet.spec.region.clone(),
            gate: ActGate::Act,
            result: "Error",
            exit_code: exit::ERROR,
            phase: None,
            desired_capacity: fleet.spec.capacity,
            ready_capacity: 0,
            spec_hash: desired.as_ref().ok().map(|d| d.hash.clone()),
            instances: Vec::new(),
            drift: Vec::new(),
            actions: Vec::new(),
            waits: Vec::new(),
            stalled: None,
            conditions: Vec::new(),
            message: None,
            user_data: desired.map(|d| d.user_data).map_err(|e| e.to_string()),
            show_user_data,
            applied: Vec::new(),
            rounds: 0,
            error: None,
        }
    }

    /// `<namespace>/<name>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A round refused to run for a reason only a human can fix.
    pub fn set_stall(&mut self, error: &SpotFleetError) {
        self.settle(exit::NOT_READY, "Stalled", None);
        self.stalled = Some(Stall {
            reason: error.reason(),
            message: error.to_string(),
        });
    }

    /// Takes what a round saw and decided, and the status it would write.
    pub fn set_round(&mut self, round: &Round) {
        let plan = &round.plan;
        self.phase = Some(plan.phase.as_str());
        self.desired_capacity = plan.desired_capacity;
        self.ready_capacity = plan.ready_capacity;
        self.instances = plan
            .instances
            .iter()
            .filter_map(|verdict| {
                let instance = round.observed.instance(&verdict.id)?;
                Some(InstanceLine {
                    id: verdict.id.clone(),
                    instance_type: instance.instance_type.clone(),
                    zone: instance.zone.clone(),
                    state: instance.state.as_str(),
                    healthy: verdict.healthy,
                    replacement: verdict.replacement.map(ReplacementReason::as_str),
                })
            })
            .collect();
        self.drift.clone_from(&plan.drift);
        self.actions.clone_from(&plan.actions);
        self.waits.clone_from(&plan.waits);
        self.stalled.clone_from(&plan.stalled);
        self.conditions.clone_from(&round.status.common.conditions);
        self.message.clone_from(&round.status.common.message);
    }

    fn launches(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::Launch { .. }))
    }

    fn instance_json(line: &InstanceLine) -> Value {
        json!({
            "id": line.id, "instanceType": line.instance_type, "zone": line.zone,
            "state": line.state, "healthy": line.healthy, "replacement": line.replacement,
        })
    }

    fn write_instances(&self, out: &mut String) {
        if self.instances.is_empty() {
            return;
        }
        let _ = writeln!(out, "  Instances:");
        for line in &self.instances {
            let health = if line.healthy {
                "healthy"
            } else {
                "not healthy"
            };
            let _ = write!(
                out,
                "    {}  {}  {}  {}  {health}",
                line.id,
                line.instance_type.as_deref().unwrap_or("?"),
                line.zone.as_deref().unwrap_or("?"),
                line.state,
            );
            if let Some(reason) = line.replacement {
                let _ = write!(out, "  replace: {reason}");
            }
            out.push('\n');
        }
    }

    fn drift_lines(&self) -> impl ExactSizeIterator<Item = DriftLine<'_>> {
        self.drift
            .iter()
            .map(|d| (d.field.as_str(), d.subject.as_str(), d.detail.as_str()))
    }

    fn write_user_data(&self, out: &mut String) {
        match &self.user_data {
            Err(error) => {
                let _ = writeln!(out, "  User data: cannot be rendered: {error}");
            }
            Ok(None) => {
                let _ = writeln!(out, "  User data: none");
            }
            Ok(Some(document)) => {
                let size = document.len();
                if self.show_user_data || self.launches() {
                    let _ = writeln!(
                        out,
                        "  User data (cloud-init, {size} of {USER_DATA_LIMIT_BYTES} bytes):"
                    );
                    for line in document.lines() {
                        let _ = writeln!(out, "    | {line}");
                    }
                } else {
                    let _ = writeln!(
                        out,
                        "  User data: {size} of {USER_DATA_LIMIT_BYTES} bytes (--show-user-data prints it)"
                    );
                }
            }
        }
    }
}

impl ObjectReport for FleetReport {
    fn kind(&self) -> &'static str {
        "SpotFleet"
    }

    fn id(&self) -> String {
        FleetReport::id(self)
    }

    fn exit_code(&self) -> u8 {
        self.exit_code
    }

    fn settle(&mut self, exit_code: u8, result: &'static str, error: Option<String>) {
        self.exit_code = exit_code;
        self.result = result;
        self.error = error;
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn stall(&self) -> Option<&Stall> {
        self.stalled.as_ref()
    }

    fn pending_actions(&self) -> usize {
        self.actions.len()
    }

    fn json_section(&self) -> &'static str {
        "fleets"
    }

    fn to_json(&self) -> Value {
        let action = |a: &Action| json!({"kind": a.facts().kind, "description": a.to_string()});
        let (user_data, user_data_error) = match &self.user_data {
            Ok(document) => (document.clone(), None),
            Err(error) => (None, Some(error.clone())),
        };
        json!({
            "kind": "SpotFleet",
            "namespace": self.namespace,
            "name": self.name,
            "owner": self.owner,
            "region": self.region,
            "gate": format!("{:?}", self.gate),
            "result": self.result,
            "exitCode": self.exit_code,
            "phase": self.phase,
            "desiredCapacity": self.desired_capacity,
            "readyCapacity": self.ready_capacity,
            "specHash": self.spec_hash,
            "instances": self.instances.iter().map(Self::instance_json).collect::<Vec<_>>(),
            "drift": drift_json(self.drift_lines()),
            "actions": self.actions.iter().map(action).collect::<Vec<_>>(),
            "waits": waits_json(&self.waits),
            "stalled": stall_json(self.stalled.as_ref()),
            "conditions": conditions_json(&self.conditions),
            "message": self.message,
            "userData": user_data,
            "userDataError": user_data_error,
            "applied": self.applied.iter().map(action).collect::<Vec<_>>(),
            "rounds": self.rounds,
            "error": self.error,
        })
    }

    fn to_text(&self, applying: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        write_header(
            &mut out,
            "SpotFleet",
            &self.id(),
            &self.owner,
            &self.region,
            self.gate,
        );
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  Error: {error}");
        }
        if let Some(phase) = self.phase {
            let _ = writeln!(
                out,
                "  Phase: {phase}, {}/{} instances ready (spec hash {})",
                self.ready_capacity,
                self.desired_capacity,
                self.spec_hash.as_deref().unwrap_or("?")
            );
        }
        self.write_instances(&mut out);
        write_drift(&mut out, self.drift_lines());
        let kind = |a: &Action| a.facts().kind;
        if applying {
            write_actions(&mut out, "Applied, in order", &self.applied, kind, true);
            write_actions(&mut out, "Still to do", &self.actions, kind, false);
        } else {
            write_actions(&mut out, "Actions, in order", &self.actions, kind, true);
        }
        write_waits_and_stall(&mut out, &self.waits, self.stalled.as_ref());
        write_conditions(&mut out, &self.conditions, reason::APPLYING);
        self.write_user_data(&mut out);
        let _ = writeln!(out, "  Result: {}", self.result);
        out
    }
}
