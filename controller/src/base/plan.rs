//! What every kind's pure plan shares: a wait on AWS, a stall that needs a human, and the
//! kstatus outcome a plan implies before any action ran.

use std::fmt::Display;

use super::conditions::ReconcileOutcome;
use super::gates::ActGate;

/// The reason of `Reconciling` while a plan's actions run.
pub const APPLYING: &str = "Applying";

/// Something AWS is still doing; look again after `requeue_after_seconds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub reason: &'static str,
    pub subject: String,
    pub requeue_after_seconds: u64,
}

/// Why nothing is done until a human or a spec change intervenes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    pub reason: &'static str,
    pub message: String,
}

/// How soon to look again while waiting on AWS; `None` when nothing is awaited.
pub fn requeue_after_seconds(waits: &[Wait]) -> Option<u64> {
    waits.iter().map(|w| w.requeue_after_seconds).min()
}

/// What a plan says about the object, in the order kstatus reads it: paused; under
/// ObserveOnly, the drift it may not repair (`drift_fields`: the drift metric labels); a stall;
/// actions to run; a wait; else converged with `converged_message`.
pub fn outcome<'a, A: Display>(
    gate: ActGate,
    stalled: Option<&Stall>,
    drift_fields: impl IntoIterator<Item = &'a str>,
    actions: &[A],
    waits: &[Wait],
    converged_message: impl FnOnce() -> String,
) -> ReconcileOutcome {
    match gate {
        ActGate::Paused => return ReconcileOutcome::Paused,
        ActGate::ObserveOnly => {
            let mut fields: Vec<&str> = drift_fields.into_iter().collect();
            fields.sort_unstable();
            fields.dedup();
            if stalled.is_some() || !fields.is_empty() {
                return ReconcileOutcome::ObserveOnlyDrift {
                    fields: fields.into_iter().map(str::to_owned).collect(),
                    message: stalled
                        .map(|s| format!("ObserveOnly: {}", s.message))
                        .unwrap_or_default(),
                };
            }
        }
        ActGate::Act => {}
    }
    if let Some(stall) = stalled {
        return ReconcileOutcome::Stalled {
            reason: stall.reason.to_owned(),
            message: stall.message.clone(),
        };
    }
    if !actions.is_empty() {
        let described: Vec<String> = actions.iter().map(ToString::to_string).collect();
        return ReconcileOutcome::Progressing {
            reason: APPLYING.to_owned(),
            message: described.join("; "),
        };
    }
    if let Some(wait) = waits.first() {
        return ReconcileOutcome::Progressing {
            reason: wait.reason.to_owned(),
            message: format!("waiting: {} ({})", wait.subject, wait.reason),
        };
    }
    ReconcileOutcome::Converged {
        message: converged_message(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall() -> Stall {
        Stall {
            reason: "ArtifactMismatch",
            message: "the build differs from the pin".into(),
        }
    }

    fn wait(seconds: u64) -> Wait {
        Wait {
            reason: "FunctionUpdateInProgress",
            subject: "shop-api".into(),
            requeue_after_seconds: seconds,
        }
    }

    fn of(
        gate: ActGate,
        stalled: Option<&Stall>,
        drift: &[&'static str],
        actions: &[&str],
        waits: &[Wait],
    ) -> ReconcileOutcome {
        outcome(gate, stalled, drift.iter().copied(), actions, waits, || {
            "2 functions in sync".into()
        })
    }

    #[test]
    fn the_outcome_follows_kstatus_order() {
        let s = stall();
        assert_eq!(
            of(ActGate::Paused, Some(&s), &["code"], &["x"], &[]),
            ReconcileOutcome::Paused
        );
        assert_eq!(
            of(
                ActGate::ObserveOnly,
                None,
                &["layers", "code", "code"],
                &["x"],
                &[]
            ),
            ReconcileOutcome::ObserveOnlyDrift {
                fields: vec!["code".into(), "layers".into()],
                message: String::new(),
            }
        );
        assert_eq!(
            of(ActGate::ObserveOnly, Some(&s), &[], &[], &[]),
            ReconcileOutcome::ObserveOnlyDrift {
                fields: vec![],
                message: "ObserveOnly: the build differs from the pin".into(),
            }
        );
        assert!(matches!(
            of(ActGate::Act, Some(&s), &[], &["x"], &[wait(5)]),
            ReconcileOutcome::Stalled { reason, .. } if reason == "ArtifactMismatch"
        ));
        assert_eq!(
            of(
                ActGate::Act,
                None,
                &[],
                &["update a", "update b"],
                &[wait(5)]
            ),
            ReconcileOutcome::Progressing {
                reason: APPLYING.into(),
                message: "update a; update b".into(),
            }
        );
        assert_eq!(
            of(ActGate::Act, None, &[], &[], &[wait(5)]),
            ReconcileOutcome::Progressing {
                reason: "FunctionUpdateInProgress".into(),
                message: "waiting: shop-api (FunctionUpdateInProgress)".into(),
            }
        );
        assert_eq!(
            of(ActGate::ObserveOnly, None, &[], &[], &[]),
            ReconcileOutcome::Converged {
                message: "2 functions in sync".into()
            }
        );
    }

    #[test]
    fn the_soonest_wait_decides_the_requeue() {
        assert_eq!(requeue_after_seconds(&[]), None);
        assert_eq!(requeue_after_seconds(&[wait(30), wait(5)]), Some(5));
    }
}
