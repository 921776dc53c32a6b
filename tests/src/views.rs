//! One storage served through two APIs, as the apiserver serves Events: core `v1` Events and
//! `events.k8s.io/v1` Events are the same objects. Stagehand (kube-runtime's recorder) writes
//! `events.k8s.io/v1`; `kubectl get events` and `kubectl describe` read core `v1`. The stand-in
//! stores them once, under `events.k8s.io/v1`, and converts core requests and answers field by
//! field with the apiserver's own mapping (`involvedObject` ⇄ `regarding`, `message` ⇄ `note`,
//! `source` ⇄ `deprecatedSource`, `firstTimestamp`/`lastTimestamp`/`count` ⇄ their
//! `deprecated*` forms, `reportingComponent` ⇄ `reportingController`; the rest is shared).
//! Every other type is served from its own storage unchanged.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::registry::{Gvr, Registry, ResourceType};

/// Core `v1` field ⇄ `events.k8s.io/v1` field, for the fields whose names differ.
const EVENT_FIELDS: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// How a request's resource type is served.
#[derive(Debug, Clone)]
pub struct View {
    /// The type the client asked for: its kind, list kind and printer columns.
    pub served: Arc<ResourceType>,
    /// The type whose storage holds the objects.
    pub storage: Arc<ResourceType>,
}

impl View {
    /// The view of `rt`: core `v1` Events over `events.k8s.io/v1`'s storage, anything else over
    /// its own.
    pub fn of(registry: &Registry, rt: Arc<ResourceType>) -> Self {
        let storage = is_core_events(&rt.gvr)
            .then(|| registry.get(&Gvr::new("events.k8s.io", "v1", "events")))
            .flatten()
            .unwrap_or_else(|| rt.clone());
        Self {
            served: rt,
            storage,
        }
    }

    /// Whether objects are converted between the two shapes.
    pub fn converts(&self) -> bool {
        self.served.gvr != self.storage.gvr
    }

    /// A stored object as the client's API shows it.
    pub fn to_served(&self, object: Value) -> Value {
        if self.converts() {
            convert(&object, &self.served, |(core, new)| (new, core))
        } else {
            object
        }
    }

    /// A client's object in the storage's shape.
    pub fn to_storage(&self, object: Value) -> Value {
        if self.converts() {
            convert(&object, &self.storage, |pair| pair)
        } else {
            object
        }
    }

    /// A served object with what the Table's columns show filled in: core Events written
    /// through `events.k8s.io/v1` have no `lastTimestamp`, and kubectl's printer shows their
    /// series' last time or `eventTime` as LAST SEEN instead, like the apiserver's printer.
    pub fn printable(&self, object: &Value) -> Value {
        let mut object = object.clone();
        if is_core_events(&self.served.gvr)
            && object.get("lastTimestamp").is_none_or(Value::is_null)
        {
            let seen = object
                .pointer("/series/lastObservedTime")
                .or_else(|| object.get("eventTime"))
                .cloned();
            if let (Some(seen), Some(map)) = (seen, object.as_object_mut()) {
                map.insert("lastTimestamp".to_owned(), seen);
            }
        }
        object
    }
}

fn is_core_events(gvr: &Gvr) -> bool {
    gvr.group.is_empty() && gvr.version == "v1" && gvr.plural == "events"
}

/// Renames the fields of `object` from (`from`, `to`) pairs picked out of [`EVENT_FIELDS`] by
/// `direction`, and sets `to`'s apiVersion and kind.
fn convert(
    object: &Value,
    to: &ResourceType,
    direction: impl Fn((&'static str, &'static str)) -> (&'static str, &'static str),
) -> Value {
    let Some(fields) = object.as_object() else {
        return object.clone();
    };
    let renames: Vec<(&str, &str)> = EVENT_FIELDS.iter().map(|pair| direction(*pair)).collect();
    let mut out = Map::new();
    for (key, value) in fields {
        let key = renames
            .iter()
            .find(|(from, _)| from == key)
            .map_or(key.as_str(), |(_, to)| to);
        out.insert(key.to_owned(), value.clone());
    }
    out.insert("apiVersion".to_owned(), Value::String(to.api_version()));
    out.insert("kind".to_owned(), Value::String(to.kind.clone()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn core_events() -> View {
        let registry = Registry::with_builtins();
        View::of(
            &registry,
            registry.get(&Gvr::new("", "v1", "events")).unwrap(),
        )
    }

    #[test]
    fn core_events_are_served_from_events_k8s_io_storage_both_ways() {
        let view = core_events();
        assert!(view.converts());
        assert_eq!(view.storage.api_version(), "events.k8s.io/v1");
        let stored = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "shop.1", "namespace": "shop"},
            "regarding": {"kind": "LambdaStage", "name": "shop"},
            "note": "code updated", "reason": "Deployed", "type": "Normal",
            "reportingController": "stagehand", "reportingInstance": "pod-a",
            "series": {"count": 2, "lastObservedTime": "2026-12-01T07:00:00.000000Z"},
            "eventTime": "2026-12-01T06:59:00.000000Z", "action": "UpdateFunctionCode"
        });
        let core = view.to_served(stored.clone());
        assert_eq!(
            core,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "shop.1", "namespace": "shop"},
                "involvedObject": {"kind": "LambdaStage", "name": "shop"},
                "message": "code updated", "reason": "Deployed", "type": "Normal",
                "reportingComponent": "stagehand", "reportingInstance": "pod-a",
                "series": {"count": 2, "lastObservedTime": "2026-12-01T07:00:00.000000Z"},
                "eventTime": "2026-12-01T06:59:00.000000Z", "action": "UpdateFunctionCode"
            })
        );
        assert_eq!(
            view.to_storage(core.clone()),
            stored,
            "a round trip changes nothing"
        );
        assert_eq!(
            view.printable(&core)["lastTimestamp"],
            "2026-12-01T07:00:00.000000Z"
        );
    }

    #[test]
    fn other_types_are_served_as_stored() {
        let registry = Registry::with_builtins();
        let rt = registry
            .get(&Gvr::new("events.k8s.io", "v1", "events"))
            .unwrap();
        let view = View::of(&registry, rt);
        assert!(!view.converts());
        let event = json!({"note": "x", "lastTimestamp": null});
        assert_eq!(view.to_served(event.clone()), event);
        assert_eq!(view.printable(&event), event);
    }
}
