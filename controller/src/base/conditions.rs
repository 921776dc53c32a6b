//! Condition bookkeeping: the kstatus trio (`Ready`, `Reconciling`, `Stalled`) derived from the
//! outcome of a reconcile, plus the generic `set_condition` every kind uses for its domain
//! conditions.
//!
//! Rules (what kstatus, Argo CD and Flux health checks read): abnormal-true polarity for
//! `Reconciling` and `Stalled`, never both true; every condition carries `observedGeneration`;
//! `lastTransitionTime` moves only when a condition's status changes, so that rewriting the same
//! status is a no-op for the API server (no watch-event loop). Nothing here reads the clock:
//! callers pass `now`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use stagehand_crds::condition::{READY, RECONCILING, STALLED};

/// Longest condition message written. The API allows 32 KiB; anything longer than this is a
/// dump, not a message, and would bloat every watch event.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Reason used when a caller passes something the API server would reject as a reason.
const FALLBACK_REASON: &str = "Unspecified";

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// The string the API uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// Sets condition `type_` in `conditions`, adding it if missing. `lastTransitionTime` becomes
/// `now` only when the condition is new or its status changes; reason, message and
/// observedGeneration are always updated. Returns whether anything changed.
///
/// Reasons must be CamelCase identifiers (the API server rejects others); an invalid reason is
/// replaced by `Unspecified` rather than making the whole status write fail. Messages are
/// trimmed to [`MAX_MESSAGE_BYTES`].
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let reason = if is_valid_reason(reason) {
        reason
    } else {
        FALLBACK_REASON
    };
    let message = truncate_message(message);
    let status = status.as_str();

    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let mut changed = false;
        if existing.status != status {
            status.clone_into(&mut existing.status);
            existing.last_transition_time = Time(now);
            changed = true;
        }
        if existing.reason != reason {
            reason.clone_into(&mut existing.reason);
            changed = true;
        }
        if existing.message != message {
            message.clone_into(&mut existing.message);
            changed = true;
        }
        if existing.observed_generation != generation {
            existing.observed_generation = generation;
            changed = true;
        }
        changed
    } else {
        conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: Time(now),
        });
        true
    }
}

/// The condition of type `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether condition `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// A valid Kubernetes condition reason: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`, at most
/// 1024 characters.
pub fn is_valid_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= 1024
        && first.is_ascii_alphabetic()
        && (last.is_ascii_alphanumeric() || *last == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] on a character boundary.
pub fn truncate_message(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// What a reconcile concluded, from which the kstatus conditions and the status message follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconcileOutcome {
    /// AWS matches the spec (and validation passed).
    Converged { message: String },
    /// A change is being applied or awaited, or a recoverable error will be retried.
    Progressing { reason: String, message: String },
    /// A human or a spec change is needed.
    Stalled { reason: String, message: String },
    /// The object carries `stagehand.dev/paused: "true"`; nothing was done.
    Paused,
    /// `management: ObserveOnly` and AWS differs from the spec in `fields`; nothing was done.
    ObserveOnlyDrift {
        fields: Vec<String>,
        message: String,
    },
}

/// One condition to write: the values of [`set_condition`]'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

/// Reasons the runtime itself uses on the kstatus conditions.
pub mod reason {
    /// Ready=True, and the other two False, after a converged reconcile.
    pub const CONVERGED: &str = "Converged";
    /// All three while the pause annotation is set.
    pub const PAUSED: &str = "Paused";
    /// Ready=False in ObserveOnly mode when AWS differs from the spec.
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    /// Reconciling/Stalled=False in ObserveOnly mode: Stagehand never acts there.
    pub const OBSERVE_ONLY: &str = "ObserveOnly";
}

/// `message` without its ` (request id …)` parts.
fn without_request_ids(message: &str) -> String {
    const MARK: &str = " (request id ";
    let mut kept = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(MARK) {
        kept.push_str(&rest[..start]);
        let after = &rest[start + MARK.len()..];
        let Some(end) = after.find(')') else {
            rest = &rest[start..];
            break;
        };
        rest = &after[end + 1..];
    }
    kept.push_str(rest);
    kept
}

impl ReconcileOutcome {
    /// The outcome that reports a failed reconcile: recoverable errors are progress that will be
    /// retried (`Reconciling=True`), stalled errors need a human (`Stalled=True`).
    ///
    /// AWS request ids are left out of the message (the log line of the failure keeps them):
    /// they differ on every attempt, and a status that changes on every failure is a watch
    /// event that starts the next reconcile at once, defeating the retry backoff (measured: a
    /// failing site retried every 0.5 s instead of 5, 10, 20 s ...).
    pub fn from_error<E>(error: &E) -> Self
    where
        E: super::Classify + std::fmt::Display + ?Sized,
    {
        let reason = error.reason().to_owned();
        let message = without_request_ids(&error.to_string());
        match error.class() {
            super::ErrorClass::Recoverable => Self::Progressing { reason, message },
            super::ErrorClass::Stalled => Self::Stalled { reason, message },
        }
    }

    /// The one-line summary for `status.message`.
    pub fn summary(&self) -> String {
        match self {
            Self::Converged { message }
            | Self::Progressing { message, .. }
            | Self::Stalled { message, .. } => message.clone(),
            Self::Paused => format!(
                "paused by annotation {}=\"true\": Stagehand does not observe or change AWS until it is removed",
                stagehand_crds::PAUSED_ANNOTATION
            ),
            Self::ObserveOnlyDrift { fields, message } => {
                if message.is_empty() {
                    format!(
                        "ObserveOnly: AWS differs from the spec in {}; not changing it",
                        fields.join(", ")
                    )
                } else {
                    message.clone()
                }
            }
        }
    }

    /// The `Ready`, `Reconciling` and `Stalled` conditions for this outcome, in that order.
    /// `Reconciling` and `Stalled` are never both `True`.
    pub fn kstatus_conditions(&self) -> [DesiredCondition; 3] {
        use ConditionStatus::{False, True, Unknown};
        let summary = self.summary();
        let cond = |type_, status, reason: &str, message: &str| DesiredCondition {
            type_,
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        match self {
            Self::Converged { .. } => [
                cond(READY, True, reason::CONVERGED, &summary),
                cond(RECONCILING, False, reason::CONVERGED, ""),
                cond(STALLED, False, reason::CONVERGED, ""),
            ],
            Self::Progressing { reason, .. } => [
                cond(READY, False, reason, &summary),
                cond(RECONCILING, True, reason, &summary),
                cond(STALLED, False, reason, ""),
            ],
            Self::Stalled { reason, .. } => [
                cond(READY, False, reason, &summary),
                cond(RECONCILING, False, reason, ""),
                cond(STALLED, True, reason, &summary),
            ],
            Self::Paused => [
                // Not observed while paused, so whether AWS matches is unknown.
                cond(READY, Unknown, reason::PAUSED, &summary),
                cond(RECONCILING, False, reason::PAUSED, ""),
                cond(STALLED, False, reason::PAUSED, ""),
            ],
            Self::ObserveOnlyDrift { .. } => [
                cond(READY, False, reason::DRIFT_DETECTED, &summary),
                cond(RECONCILING, False, reason::OBSERVE_ONLY, ""),
                cond(STALLED, False, reason::OBSERVE_ONLY, ""),
            ],
        }
    }

    /// Writes the kstatus trio for this outcome into `conditions`. Returns whether anything
    /// changed.
    pub fn apply_to(
        &self,
        conditions: &mut Vec<Condition>,
        generation: Option<i64>,
        now: Timestamp,
    ) -> bool {
        let mut changed = false;
        for desired in self.kstatus_conditions() {
            changed |= set_condition(
                conditions,
                desired.type_,
                desired.status,
                &desired.reason,
                &desired.message,
                generation,
                now,
            );
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{Classify, ErrorClass};

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn get<'a>(conds: &'a [Condition], type_: &str) -> &'a Condition {
        find_condition(conds, type_).unwrap_or_else(|| panic!("no {type_} condition"))
    }

    #[test]
    fn new_condition_gets_now_and_generation() {
        let mut conds = Vec::new();
        assert!(set_condition(
            &mut conds,
            "CodeInSync",
            ConditionStatus::True,
            "HashesMatch",
            "all 3 functions run the desired code",
            Some(4),
            t(0)
        ));
        assert_eq!(
            conds,
            vec![Condition {
                type_: "CodeInSync".into(),
                status: "True".into(),
                reason: "HashesMatch".into(),
                message: "all 3 functions run the desired code".into(),
                observed_generation: Some(4),
                last_transition_time: Time(t(0)),
            }]
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        struct Step {
            status: ConditionStatus,
            reason: &'static str,
            message: &'static str,
            generation: i64,
            at: i64,
            expect_changed: bool,
            expect_transition_at: i64,
        }
        use ConditionStatus::{False, True, Unknown};
        let steps = [
            // first write
            Step {
                status: False,
                reason: "Deploying",
                message: "m1",
                generation: 1,
                at: 0,
                expect_changed: true,
                expect_transition_at: 0,
            },
            // identical rewrite: no change at all
            Step {
                status: False,
                reason: "Deploying",
                message: "m1",
                generation: 1,
                at: 10,
                expect_changed: false,
                expect_transition_at: 0,
            },
            // new reason/message, same status: changed, time kept
            Step {
                status: False,
                reason: "Waiting",
                message: "m2",
                generation: 1,
                at: 20,
                expect_changed: true,
                expect_transition_at: 0,
            },
            // new generation only: changed, time kept
            Step {
                status: False,
                reason: "Waiting",
                message: "m2",
                generation: 2,
                at: 30,
                expect_changed: true,
                expect_transition_at: 0,
            },
            // status flips: time moves
            Step {
                status: True,
                reason: "Converged",
                message: "",
                generation: 2,
                at: 40,
                expect_changed: true,
                expect_transition_at: 40,
            },
            Step {
                status: True,
                reason: "Converged",
                message: "",
                generation: 2,
                at: 50,
                expect_changed: false,
                expect_transition_at: 40,
            },
            Step {
                status: Unknown,
                reason: "Paused",
                message: "",
                generation: 2,
                at: 60,
                expect_changed: true,
                expect_transition_at: 60,
            },
        ];
        let mut conds = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let changed = set_condition(
                &mut conds,
                READY,
                s.status,
                s.reason,
                s.message,
                Some(s.generation),
                t(s.at),
            );
            assert_eq!(changed, s.expect_changed, "step {i}");
            assert_eq!(conds.len(), 1, "step {i}: one entry per type");
            let c = &conds[0];
            assert_eq!(c.status, s.status.as_str(), "step {i}");
            assert_eq!(c.reason, s.reason, "step {i}");
            assert_eq!(c.message, s.message, "step {i}");
            assert_eq!(c.observed_generation, Some(s.generation), "step {i}");
            assert_eq!(
                c.last_transition_time,
                Time(t(s.expect_transition_at)),
                "step {i}"
            );
        }
    }

    #[test]
    fn other_conditions_are_left_alone() {
        let mut conds = Vec::new();
        set_condition(
            &mut conds,
            "CodeInSync",
            ConditionStatus::True,
            "A",
            "",
            Some(1),
            t(0),
        );
        set_condition(
            &mut conds,
            "Validated",
            ConditionStatus::False,
            "B",
            "",
            Some(1),
            t(0),
        );
        set_condition(
            &mut conds,
            "CodeInSync",
            ConditionStatus::False,
            "C",
            "",
            Some(2),
            t(5),
        );
        assert_eq!(conds.len(), 2);
        assert_eq!(conds[0].type_, "CodeInSync");
        assert_eq!(conds[0].reason, "C");
        assert_eq!(conds[1].reason, "B");
        assert_eq!(conds[1].observed_generation, Some(1));
        assert_eq!(conds[1].last_transition_time, Time(t(0)));
    }

    #[test]
    fn invalid_reasons_are_replaced_and_messages_trimmed() {
        for (reason, valid) in [
            ("Converged", true),
            ("A", true),
            ("Code_In:Sync,2", true),
            ("", false),
            ("1Bad", false),
            ("has space", false),
            ("Trailing:", false),
            ("dash-ed", false),
        ] {
            assert_eq!(is_valid_reason(reason), valid, "{reason:?}");
            let mut conds = Vec::new();
            set_condition(
                &mut conds,
                READY,
                ConditionStatus::True,
                reason,
                "",
                None,
                t(0),
            );
            let expected = if valid { reason } else { FALLBACK_REASON };
            assert_eq!(conds[0].reason, expected);
        }

        let long = "é".repeat(MAX_MESSAGE_BYTES); // 2 bytes each
        let mut conds = Vec::new();
        set_condition(
            &mut conds,
            READY,
            ConditionStatus::True,
            "R",
            &long,
            None,
            t(0),
        );
        assert!(conds[0].message.len() <= MAX_MESSAGE_BYTES);
        assert!(conds[0].message.len() >= MAX_MESSAGE_BYTES - 1);
        assert!(long.starts_with(&conds[0].message));
        assert_eq!(truncate_message("short"), "short");
    }

    /// (type, status, reason) of each kstatus condition.
    type Expected = [(&'static str, &'static str, &'static str); 3];

    fn outcome_table() -> Vec<(ReconcileOutcome, Expected)> {
        use ReconcileOutcome as O;
        vec![
            (
                O::Converged {
                    message: "3 functions in sync".into(),
                },
                [
                    ("Ready", "True", "Converged"),
                    ("Reconciling", "False", "Converged"),
                    ("Stalled", "False", "Converged"),
                ],
            ),
            (
                O::Progressing {
                    reason: "CodeUpdating".into(),
                    message: "updating 2 functions".into(),
                },
                [
                    ("Ready", "False", "CodeUpdating"),
                    ("Reconciling", "True", "CodeUpdating"),
                    ("Stalled", "False", "CodeUpdating"),
                ],
            ),
            (
                O::Stalled {
                    reason: "ArtifactMismatch".into(),
                    message: "sha256 pin differs".into(),
                },
                [
                    ("Ready", "False", "ArtifactMismatch"),
                    ("Reconciling", "False", "ArtifactMismatch"),
                    ("Stalled", "True", "ArtifactMismatch"),
                ],
            ),
            (
                O::Paused,
                [
                    ("Ready", "Unknown", "Paused"),
                    ("Reconciling", "False", "Paused"),
                    ("Stalled", "False", "Paused"),
                ],
            ),
            (
                O::ObserveOnlyDrift {
                    fields: vec!["code".into(), "layers".into()],
                    message: String::new(),
                },
                [
                    ("Ready", "False", "DriftDetected"),
                    ("Reconciling", "False", "ObserveOnly"),
                    ("Stalled", "False", "ObserveOnly"),
                ],
            ),
        ]
    }

    #[test]
    fn outcomes_map_to_the_kstatus_trio() {
        for (outcome, expected) in outcome_table() {
            let mut conds = Vec::new();
            assert!(outcome.apply_to(&mut conds, Some(7), t(0)));
            assert_eq!(conds.len(), 3, "{outcome:?}");
            for (type_, status, reason) in expected {
                let c = get(&conds, type_);
                assert_eq!(c.status, status, "{outcome:?} {type_}");
                assert_eq!(c.reason, reason, "{outcome:?} {type_}");
                assert_eq!(c.observed_generation, Some(7), "{outcome:?} {type_}");
            }
            // Abnormal-true polarity: never both.
            assert!(
                !(is_condition_true(&conds, RECONCILING) && is_condition_true(&conds, STALLED)),
                "{outcome:?}"
            );
            // The condition that explains the state carries the summary.
            let summary = outcome.summary();
            assert!(!summary.is_empty());
            assert_eq!(get(&conds, READY).message, summary, "{outcome:?}");
            // Re-applying the same outcome later changes nothing.
            assert!(!outcome.apply_to(&mut conds, Some(7), t(99)), "{outcome:?}");
        }
    }

    #[test]
    fn every_transition_between_outcomes_keeps_the_invariants() {
        let table = outcome_table();
        for (from, _) in &table {
            for (to, expected) in &table {
                let mut conds = Vec::new();
                from.apply_to(&mut conds, Some(1), t(0));
                to.apply_to(&mut conds, Some(2), t(100));
                assert_eq!(conds.len(), 3);
                assert!(
                    !(is_condition_true(&conds, RECONCILING) && is_condition_true(&conds, STALLED))
                );
                let before = from.kstatus_conditions();
                for (i, (type_, status, _)) in expected.iter().enumerate() {
                    let c = get(&conds, type_);
                    assert_eq!(c.status, *status);
                    assert_eq!(c.observed_generation, Some(2));
                    let expected_time = if before[i].status.as_str() == *status {
                        t(0)
                    } else {
                        t(100)
                    };
                    assert_eq!(
                        c.last_transition_time,
                        Time(expected_time),
                        "{from:?} -> {to:?} {type_}"
                    );
                }
            }
        }
    }

    #[test]
    fn summaries_explain_paused_and_drift() {
        assert!(
            ReconcileOutcome::Paused
                .summary()
                .contains("stagehand.dev/paused")
        );
        let drift = ReconcileOutcome::ObserveOnlyDrift {
            fields: vec!["code".into(), "layers".into()],
            message: String::new(),
        };
        assert_eq!(
            drift.summary(),
            "ObserveOnly: AWS differs from the spec in code, layers; not changing it"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct TestError(&'static str, ErrorClass);
    impl Classify for TestError {
        fn class(&self) -> ErrorClass {
            self.1
        }
        fn reason(&self) -> &'static str {
            "OwnershipConflict"
        }
    }

    #[test]
    fn a_failure_reads_the_same_on_every_attempt_whatever_the_request_id() {
        let first = TestError(
            "RestoreVersions: index.html: AWS s3 CopyObject on s3://site/index.html failed (NotFound NoSuchVersion, HTTP 404): The specified version does not exist. (request id 0ZwhxnZ4)",
            ErrorClass::Recoverable,
        );
        let second = TestError(
            "RestoreVersions: index.html: AWS s3 CopyObject on s3://site/index.html failed (NotFound NoSuchVersion, HTTP 404): The specified version does not exist. (request id EuddCiqL)",
            ErrorClass::Recoverable,
        );
        let outcome = ReconcileOutcome::from_error(&first);
        assert_eq!(outcome, ReconcileOutcome::from_error(&second));
        assert!(
            outcome.summary().ends_with("does not exist."),
            "{}",
            outcome.summary()
        );
        assert_eq!(
            without_request_ids("a (request id 1); b (request id 2)"),
            "a; b"
        );
        assert_eq!(
            without_request_ids("cut (request id 1"),
            "cut (request id 1"
        );
    }

    #[test]
    fn errors_become_progressing_or_stalled_by_class() {
        assert_eq!(
            ReconcileOutcome::from_error(&TestError("busy", ErrorClass::Recoverable)),
            ReconcileOutcome::Progressing {
                reason: "OwnershipConflict".into(),
                message: "busy".into()
            }
        );
        assert_eq!(
            ReconcileOutcome::from_error(&TestError(
                "owned by ns/LambdaStage/other",
                ErrorClass::Stalled
            )),
            ReconcileOutcome::Stalled {
                reason: "OwnershipConflict".into(),
                message: "owned by ns/LambdaStage/other".into()
            }
        );
    }
}
