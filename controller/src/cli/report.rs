//! What `plan` and `apply` print: per object the drift, the ordered actions, the waits, the
//! stall and the conditions; as text for humans or as one JSON document for machines. Each kind
//! writes its own report ([`StageReport`] here, `FleetReport` in `fleet_report`, `SiteReport`
//! in `site_report`) from the shared pieces below; the [`Printer`] orders them, picks the exit
//! code and writes the summary.

use std::fmt::{Display, Write as _};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::{Value, json};
use stagehand_crds::lambda_stage::ValidationStatus;
use stagehand_crds::{LambdaStage, LambdaStageStatus};

use super::{OutputFormat, exit};
use crate::base::gates::ActGate;
use crate::base::plan::Stall;
use crate::lambda_stage::plan::{Action, Drift, Plan, Wait};

/// What the [`Printer`] needs of one object's report, whatever its kind.
pub trait ObjectReport: std::fmt::Debug {
    /// `LambdaStage`, `SpotFleet`.
    fn kind(&self) -> &'static str;
    /// `<namespace>/<name>`.
    fn id(&self) -> String;
    /// This object's exit code (see [`exit`]).
    fn exit_code(&self) -> u8;
    /// Records the verdict: exit code, result, and the error behind it if any.
    fn settle(&mut self, exit_code: u8, result: &'static str, error: Option<String>);
    fn error(&self) -> Option<&str>;
    fn stall(&self) -> Option<&Stall>;
    /// Actions the plan would still take.
    fn pending_actions(&self) -> usize;
    /// The key of the JSON document's list this report goes in (one of [`JSON_SECTIONS`]).
    fn json_section(&self) -> &'static str;
    fn to_json(&self) -> Value;
    fn to_text(&self, applying: bool) -> String;
}

/// The lists of the JSON document, one per kind; every one is present (possibly empty), so
/// consumers need no existence checks.
pub const JSON_SECTIONS: [&str; 3] = ["stages", "fleets", "sites"];

/// One line of drift, whatever the kind's drift type: `(field, subject, detail)`.
pub type DriftLine<'a> = (&'a str, &'a str, &'a str);

/// The `  Drift:` lines.
pub fn write_drift<'a>(out: &mut String, drift: impl ExactSizeIterator<Item = DriftLine<'a>>) {
    if drift.len() == 0 {
        return;
    }
    let _ = writeln!(out, "  Drift:");
    for (field, subject, detail) in drift {
        let _ = writeln!(out, "    {field} {subject}: {detail}");
    }
}

/// The JSON form of drift.
pub fn drift_json<'a>(drift: impl Iterator<Item = DriftLine<'a>>) -> Vec<Value> {
    drift
        .map(|(field, subject, detail)| json!({"field": field, "subject": subject, "detail": detail}))
        .collect()
}

/// `  <title>:` and one line per action, `N. <kind>: <description>` when `numbered`.
pub fn write_actions<A: Display>(
    out: &mut String,
    title: &str,
    actions: &[A],
    kind: impl Fn(&A) -> &'static str,
    numbered: bool,
) {
    if actions.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for (i, action) in actions.iter().enumerate() {
        if numbered {
            let _ = writeln!(out, "    {}. {}: {action}", i + 1, kind(action));
        } else {
            let _ = writeln!(out, "    {}: {action}", kind(action));
        }
    }
}

/// The header line of an object's report and, when Stagehand may not act, why.
pub fn write_header(
    out: &mut String,
    kind: &str,
    id: &str,
    owner: &str,
    region: &str,
    gate: ActGate,
) {
    let _ = writeln!(out, "{kind} {id} (owner {owner}, region {region})");
    if gate != ActGate::Act {
        let _ = writeln!(out, "  Management: {gate:?} — Stagehand changes nothing");
    }
}

/// Writes what `apply` (or `plan`) concluded into `report`: an exit code and result, or the
/// error it gave up on.
pub fn conclude(report: &mut impl ObjectReport, outcome: Result<(u8, &'static str), String>) {
    match outcome {
        Ok((exit_code, result)) => report.settle(exit_code, result, None),
        Err(error) => report.settle(exit::ERROR, "Error", Some(error)),
    }
}

/// `  Waiting for AWS:` and `  Stalled:` lines, as every kind prints them.
pub fn write_waits_and_stall(
    out: &mut String,
    waits: &[crate::base::plan::Wait],
    stall: Option<&Stall>,
) {
    if !waits.is_empty() {
        let _ = writeln!(out, "  Waiting for AWS:");
        for w in waits {
            let _ = writeln!(
                out,
                "    {} {} (look again in {}s)",
                w.reason, w.subject, w.requeue_after_seconds
            );
        }
    }
    if let Some(stall) = stall {
        let _ = writeln!(out, "  Stalled: {}: {}", stall.reason, stall.message);
    }
}

/// The `  Conditions:` lines; a condition whose reason is `quiet_reason` is printed without its
/// message (while applying, that message repeats the actions listed above).
pub fn write_conditions(out: &mut String, conditions: &[Condition], quiet_reason: &str) {
    if conditions.is_empty() {
        return;
    }
    let _ = writeln!(out, "  Conditions:");
    for c in conditions {
        let _ = write!(out, "    {}={} ({})", c.type_, c.status, c.reason);
        if !c.message.is_empty() && c.reason != quiet_reason {
            let _ = write!(out, ": {}", c.message);
        }
        out.push('\n');
    }
}

/// The JSON form of conditions, waits and a stall, as every kind reports them.
pub fn conditions_json(conditions: &[Condition]) -> Vec<Value> {
    conditions
        .iter()
        .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message}))
        .collect()
}

pub fn waits_json(waits: &[crate::base::plan::Wait]) -> Vec<Value> {
    waits
        .iter()
        .map(|w| json!({"reason": w.reason, "subject": w.subject, "requeueAfterSeconds": w.requeue_after_seconds}))
        .collect()
}

pub fn stall_json(stall: Option<&Stall>) -> Value {
    stall.map_or(
        Value::Null,
        |s| json!({"reason": s.reason, "message": s.message}),
    )
}

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
        conclude(&mut self, Err(error));
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
            "drift": drift_json(self.drift_lines()),
            "actions": self.actions.iter().map(action).collect::<Vec<_>>(),
            "waits": waits_json(&self.waits),
            "stalled": stall_json(self.stalled.as_ref()),
            "conditions": conditions_json(&self.conditions),
            "message": self.message,
            "validation": self.validation,
            "applied": self.applied.iter().map(action).collect::<Vec<_>>(),
            "rounds": self.rounds,
            "error": self.error,
        })
    }

    fn drift_lines(&self) -> impl ExactSizeIterator<Item = DriftLine<'_>> {
        self.drift
            .iter()
            .map(|d| (d.field.as_str(), d.subject.as_str(), d.detail.as_str()))
    }

    fn to_text(&self, applying: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        write_header(
            &mut out,
            "LambdaStage",
            &self.id(),
            &self.owner,
            &self.region,
            self.gate,
        );
        if let Some(error) = &self.error {
            let _ = writeln!(out, "  Error: {error}");
        }
        write_drift(&mut out, self.drift_lines());
        if applying {
            write_actions(
                &mut out,
                "Applied, in order",
                &self.applied,
                Action::kind,
                true,
            );
            write_actions(&mut out, "Still to do", &self.actions, Action::kind, false);
        } else {
            write_actions(
                &mut out,
                "Actions, in order",
                &self.actions,
                Action::kind,
                true,
            );
        }
        write_waits_and_stall(&mut out, &self.waits, self.stalled.as_ref());
        write_conditions(
            &mut out,
            &self.conditions,
            crate::lambda_stage::plan::reason::APPLYING,
        );
        let _ = writeln!(out, "  Result: {}", self.result);
        out
    }
}

impl ObjectReport for StageReport {
    fn kind(&self) -> &'static str {
        "LambdaStage"
    }

    fn id(&self) -> String {
        StageReport::id(self)
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
        "stages"
    }

    fn to_json(&self) -> Value {
        StageReport::to_json(self)
    }

    fn to_text(&self, applying: bool) -> String {
        StageReport::to_text(self, applying)
    }
}

/// The JSON document with every list empty.
fn empty_document(exit_code: u8) -> Value {
    let mut document = json!({"exitCode": exit_code});
    for section in JSON_SECTIONS {
        document[section] = json!([]);
    }
    document
}

/// Prints the reports at the end, as text or as one JSON document.
#[derive(Debug)]
pub struct Printer {
    format: OutputFormat,
    reports: Vec<Box<dyn ObjectReport>>,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            reports: Vec::new(),
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
            let mut document = empty_document(exit::ERROR);
            document["error"] = json!(message);
            println!("{document}");
        }
        exit::ERROR
    }

    /// Adds one object's report, printed in the order added.
    pub fn report(&mut self, report: impl ObjectReport + 'static) {
        self.reports.push(Box::new(report));
    }

    fn exit_code(&self) -> u8 {
        self.reports
            .iter()
            .map(|r| r.exit_code())
            .max_by_key(|c| exit::severity(*c))
            .unwrap_or(exit::IN_SYNC)
    }

    fn finish(&self, applying: bool, summary: &str) -> u8 {
        let code = self.exit_code();
        match self.format {
            OutputFormat::Json => {
                let mut document = empty_document(code);
                for report in &self.reports {
                    if let Some(list) = document[report.json_section()].as_array_mut() {
                        list.push(report.to_json());
                    }
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&document).unwrap_or_default()
                );
            }
            OutputFormat::Text => {
                for report in &self.reports {
                    println!("{}", report.to_text(applying));
                }
                println!("{summary}");
            }
        }
        for report in &self.reports {
            if let Some(error) = report.error() {
                eprintln!("error: {} {}: {error}", report.kind(), report.id());
            }
            if let Some(stall) = report.stall() {
                eprintln!(
                    "{} {} stalled: {}: {}",
                    report.kind(),
                    report.id(),
                    stall.reason,
                    stall.message
                );
            }
        }
        code
    }

    /// Prints the plan; returns the exit code.
    pub fn finish_plan(&self) -> u8 {
        let pending: usize = self.reports.iter().map(|r| r.pending_actions()).sum();
        let summary = match self.exit_code() {
            exit::IN_SYNC => "No changes: AWS matches every object.".to_owned(),
            exit::CHANGES_PENDING => format!(
                "Changes pending: {pending} action(s) in {} object(s).",
                self.reports
                    .iter()
                    .filter(|r| r.exit_code() == exit::CHANGES_PENDING)
                    .count()
            ),
            exit::NOT_READY => {
                "Stalled: at least one object cannot converge as declared.".to_owned()
            }
            _ => "Error: at least one object could not be planned.".to_owned(),
        };
        self.finish(false, &summary)
    }

    /// Prints the outcome of `apply`; returns the exit code.
    pub fn finish_apply(&self) -> u8 {
        let summary = match self.exit_code() {
            exit::IN_SYNC => format!("Applied: {} object(s) Ready.", self.reports.len()),
            exit::NOT_READY => {
                "Not Ready: at least one object is stalled or failed validation.".to_owned()
            }
            exit::TIMED_OUT => {
                "Timed out: at least one object did not settle within --timeout.".to_owned()
            }
            _ => "Error: at least one object could not be applied.".to_owned(),
        };
        self.finish(true, &summary)
    }
}
