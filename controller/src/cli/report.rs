//! What `plan` and `apply` print: per stage the drift, the ordered actions, the waits, the stall
//! and the conditions; as text for humans or as one JSON document for machines.

use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::{Value, json};
use stagehand_crds::lambda_stage::ValidationStatus;
use stagehand_crds::{LambdaStage, LambdaStageStatus};

use super::{OutputFormat, exit};
use crate::base::gates::ActGate;
use crate::lambda_stage::plan::{Action, Drift, Plan, Stall, Wait};

/// The result for one stage.
#[derive(Debug)]
pub struct StageReport {
    pub namespace: String,
    pub name: String,
    pub owner: String,
    pub region: String,
    pub gate: ActGate,
    /// `InSync`, `ChangesPending`, `Stalled`, `Ready`, `TimedOut`, `Paused`, `Error`, ...
    pub result: &'static str,
    pub exit_code: u8,
    pub drift: Vec<Drift>,
    /// What the (last) plan would do.
    pub actions: Vec<Action>,
    pub waits: Vec<Wait>,
    pub stalled: Option<Stall>,
    pub conditions: Vec<Condition>,
    pub message: Option<String>,
    pub validation: Option<ValidationStatus>,
    /// `apply`: the actions that ran, in order, over every round.
    pub applied: Vec<Action>,
    /// `apply`: reconcile rounds run.
    pub rounds: u32,
    pub error: Option<String>,
}

impl StageReport {
    pub fn new(stage: &LambdaStage, owner: &str) -> Self {
        Self {
            namespace: stage.namespace().unwrap_or_default(),
            name: stage.name_any(),
            owner: owner.to_owned(),
            region: stage.spec.region.clone(),
            gate: ActGate::Act,
            result: "Error",
            exit_code: exit::ERROR,
            drift: Vec::new(),
            actions: Vec::new(),
            waits: Vec::new(),
            stalled: None,
            conditions: Vec::new(),
            message: None,
            validation: None,
            applied: Vec::new(),
            rounds: 0,
            error: None,
        }
    }

    /// `<namespace>/<name>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    #[must_use]
    pub fn failed(mut self, error: String) -> Self {
        self.exit_code = exit::ERROR;
        self.result = "Error";
        self.error = Some(error);
        self
    }

    /// Takes what a round decided, and the status it would write.
    pub fn set_plan(&mut self, plan: &Plan, status: &LambdaStageStatus) {
        self.drift.clone_from(&plan.drift);
        self.actions.clone_from(&plan.actions);
        self.waits.clone_from(&plan.waits);
        self.stalled.clone_from(&plan.stalled);
        self.conditions.clone_from(&status.common.conditions);
        self.message.clone_from(&status.common.message);
        self.validation = Some(plan.validation.clone());
    }

    fn to_json(&self) -> Value {
        let action = |a: &Action| json!({"kind": a.kind(), "function": a.function(), "description": a.to_string()});
        json!({
            "kind": "LambdaStage",
            "namespace": self.namespace,
            "name": self.name,
            "owner": self.owner,
            "region": self.region,
            "gate": format!("{:?}", self.gate),
            "result": self.result,
            "exitCode": self.exit_code,
            "drift": self.drift.iter().map(|d| json!({
                "field": d.field.as_str(), "subject": d.subject, "detail": d.detail,
            })).collect::<Vec<_>>(),
            "actions": self.actions.iter().map(action).collect::<Vec<_>>(),
            "waits": self.waits.iter().map(|w| json!({
                "reason": w.reason, "subject": w.subject,
                "requeueAfterSeconds": w.requeue_after_seconds,
            })).collect::<Vec<_>>(),
            "stalled": self.stalled.as_ref().map(|s| json!({"reason": s.reason, "message": s.message})),
            "conditions": self.conditions.iter().map(|c| json!({
                "type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
            })).collect::<Vec<_>>(),
            "message": self.message,
            "validation": self.validation,
            "applied": self.applied.iter().map(action).collect::<Vec<_>>(),
            "rounds": self.rounds,
            "error": self.error,
        })
    }

    fn to_text(&self, applying: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "LambdaStage {} (owner {}, region {})",
            self.id(),
            self.owner,
            self.region
        );
        if self.gate != ActGate::Act {
            let _ = writeln!(
                out,
                "  Management: {:?} — Stagehand changes nothing",
                self.gate
            );
        }
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  Error: {error}");
        }
        if !self.drift.is_empty() {
            let _ = writeln!(out, "  Drift:");
            for d in &self.drift {
                let _ = writeln!(out, "    {} {}: {}", d.field.as_str(), d.subject, d.detail);
            }
        }
        if applying {
            if !self.applied.is_empty() {
                let _ = writeln!(out, "  Applied, in order:");
                for (i, a) in self.applied.iter().enumerate() {
                    let _ = writeln!(out, "    {}. {}: {a}", i + 1, a.kind());
                }
            }
            if !self.actions.is_empty() {
                let _ = writeln!(out, "  Still to do:");
                for a in &self.actions {
                    let _ = writeln!(out, "    {}: {a}", a.kind());
                }
            }
        } else if !self.actions.is_empty() {
            let _ = writeln!(out, "  Actions, in order:");
            for (i, a) in self.actions.iter().enumerate() {
                let _ = writeln!(out, "    {}. {}: {a}", i + 1, a.kind());
            }
        }
        if !self.waits.is_empty() {
            let _ = writeln!(out, "  Waiting for AWS:");
            for w in &self.waits {
                let _ = writeln!(
                    out,
                    "    {} {} (look again in {}s)",
                    w.reason, w.subject, w.requeue_after_seconds
                );
            }
        }
        if let Some(stall) = &self.stalled {
            let _ = writeln!(out, "  Stalled: {}: {}", stall.reason, stall.message);
        }
        if !self.conditions.is_empty() {
            let _ = writeln!(out, "  Conditions:");
            for c in &self.conditions {
                let _ = write!(out, "    {}={} ({})", c.type_, c.status, c.reason);
                // While applying, the message repeats the actions listed above.
                if !c.message.is_empty() && c.reason != crate::lambda_stage::plan::reason::APPLYING
                {
                    let _ = write!(out, ": {}", c.message);
                }
                out.push('\n');
            }
        }
        let _ = writeln!(out, "  Result: {}", self.result);
        out
    }
}

/// Prints the reports as they come (text) or all at the end (JSON).
#[derive(Debug)]
pub struct Printer {
    format: OutputFormat,
    stages: Vec<StageReport>,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            stages: Vec::new(),
        }
    }

    /// A line of `apply`'s progress: stdout in text mode, stderr in JSON mode (stdout holds
    /// only the JSON document).
    pub fn progress(&self, line: &str) {
        match self.format {
            OutputFormat::Text => println!("{line}"),
            OutputFormat::Json => eprintln!("{line}"),
        }
    }

    /// Reports an error that stops the command before any stage ran; exit code 1.
    pub fn fatal(&self, message: &str) -> u8 {
        eprintln!("error: {message}");
        if self.format == OutputFormat::Json {
            println!(
                "{}",
                json!({"stages": [], "error": message, "exitCode": exit::ERROR})
            );
        }
        exit::ERROR
    }

    pub fn stage(&mut self, report: StageReport) {
        self.stages.push(report);
    }

    fn exit_code(&self) -> u8 {
        self.stages
            .iter()
            .map(|s| s.exit_code)
            .max_by_key(|c| exit::severity(*c))
            .unwrap_or(exit::IN_SYNC)
    }

    fn finish(&self, applying: bool, summary: &str) -> u8 {
        let code = self.exit_code();
        match self.format {
            OutputFormat::Json => {
                let stages: Vec<Value> = self.stages.iter().map(StageReport::to_json).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"stages": stages, "exitCode": code}))
                        .unwrap_or_default()
                );
            }
            OutputFormat::Text => {
                for stage in &self.stages {
                    println!("{}", stage.to_text(applying));
                }
                println!("{summary}");
            }
        }
        for stage in &self.stages {
            if let Some(error) = &stage.error {
                eprintln!("error: LambdaStage {}: {error}", stage.id());
            }
            if let Some(stall) = &stage.stalled {
                eprintln!(
                    "LambdaStage {} stalled: {}: {}",
                    stage.id(),
                    stall.reason,
                    stall.message
                );
            }
        }
        code
    }

    /// Prints the plan; returns the exit code.
    pub fn finish_plan(&self) -> u8 {
        let pending: usize = self.stages.iter().map(|s| s.actions.len()).sum();
        let summary = match self.exit_code() {
            exit::IN_SYNC => "No changes: AWS matches every stage.".to_owned(),
            exit::CHANGES_PENDING => format!(
                "Changes pending: {pending} action(s) in {} stage(s).",
                self.stages
                    .iter()
                    .filter(|s| s.exit_code == exit::CHANGES_PENDING)
                    .count()
            ),
            exit::NOT_READY => {
                "Stalled: at least one stage cannot converge as declared.".to_owned()
            }
            _ => "Error: at least one stage could not be planned.".to_owned(),
        };
        self.finish(false, &summary)
    }

    /// Prints the outcome of `apply`; returns the exit code.
    pub fn finish_apply(&self) -> u8 {
        let summary = match self.exit_code() {
            exit::IN_SYNC => format!("Applied: {} stage(s) Ready.", self.stages.len()),
            exit::NOT_READY => {
                "Not Ready: at least one stage is stalled or failed validation.".to_owned()
            }
            exit::TIMED_OUT => {
                "Timed out: at least one stage did not settle within --timeout.".to_owned()
            }
            _ => "Error: at least one stage could not be applied.".to_owned(),
        };
        self.finish(true, &summary)
    }
}
