//! Whether Stagehand may change AWS for an object: the pause annotation and the `ObserveOnly`
//! management mode. Decided once per reconcile, before observing.

use std::collections::BTreeMap;

use stagehand_crds::{Management, PAUSED_ANNOTATION};

/// What a reconcile may do with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActGate {
    /// Observe, plan and act.
    Act,
    /// Observe and plan, report drift, never act (`spec.management: ObserveOnly`).
    ObserveOnly,
    /// Do nothing but report `Paused` (annotation `stagehand.dev/paused: "true"`). Wins over
    /// everything else, including cleanup on deletion: a paused object keeps its finalizer
    /// until it is unpaused.
    Paused,
}

impl ActGate {
    /// Whether actions planned for the object may be executed.
    pub const fn may_act(self) -> bool {
        matches!(self, Self::Act)
    }

    /// Whether AWS may be read for the object.
    pub const fn may_observe(self) -> bool {
        !matches!(self, Self::Paused)
    }
}

/// Whether the pause annotation is set. Only the value `true` (any case, surrounding spaces
/// ignored) pauses, so `"false"` or an empty value can be used to unpause without removing it.
pub fn is_paused(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(PAUSED_ANNOTATION)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// The gate for an object with these annotations and this management mode.
pub fn may_act(annotations: &BTreeMap<String, String>, management: Management) -> ActGate {
    if is_paused(annotations) {
        ActGate::Paused
    } else {
        match management {
            Management::Full => ActGate::Act,
            Management::ObserveOnly => ActGate::ObserveOnly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    type Case = (&'static [(&'static str, &'static str)], Management, ActGate);

    #[test]
    fn gate_table() {
        use ActGate::{Act, ObserveOnly, Paused};
        use Management::{Full, ObserveOnly as Observe};
        let cases: &[Case] = &[
            (&[], Full, Act),
            (&[], Observe, ObserveOnly),
            (&[(PAUSED_ANNOTATION, "true")], Full, Paused),
            (&[(PAUSED_ANNOTATION, "true")], Observe, Paused),
            (&[(PAUSED_ANNOTATION, "True")], Full, Paused),
            (&[(PAUSED_ANNOTATION, " TRUE ")], Full, Paused),
            (&[(PAUSED_ANNOTATION, "false")], Full, Act),
            (&[(PAUSED_ANNOTATION, "")], Full, Act),
            (&[(PAUSED_ANNOTATION, "yes")], Full, Act),
            (&[(PAUSED_ANNOTATION, "false")], Observe, ObserveOnly),
            (&[("stagehand.dev/pause", "true")], Full, Act),
            (&[("example.com/paused", "true")], Full, Act),
        ];
        for (pairs, management, expected) in cases {
            assert_eq!(
                may_act(&annotations(pairs), *management),
                *expected,
                "{pairs:?} {management:?}"
            );
        }
    }

    #[test]
    fn only_full_unpaused_objects_are_acted_on() {
        assert!(ActGate::Act.may_act());
        assert!(!ActGate::ObserveOnly.may_act());
        assert!(!ActGate::Paused.may_act());
        assert!(ActGate::Act.may_observe());
        assert!(ActGate::ObserveOnly.may_observe());
        assert!(!ActGate::Paused.may_observe());
    }
}
