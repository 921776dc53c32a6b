//! A minimal OpenAPI v3 surface: the `/openapi/v3` index and one document per group/version with
//! the resource paths (so kubectl sees that PATCH supports `fieldValidation` and leaves
//! validation to the server) and, for custom resources, their schemas under
//! `components.schemas`.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a of the document, as the `hash` query parameter clients cache by.
fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = registry
        .all()
        .map(|t| (t.gvr.group.clone(), t.gvr.version.clone()))
        .collect();
    gvs.dedup();
    for (g, v) in gvs {
        let Some(doc) = group_version(registry, &g, &v) else {
            continue;
        };
        let path = gv_path(&g, &v);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc.to_string()))}),
        );
    }
    json!({"paths": paths})
}

/// `io.k8s.api.core.v1.ConfigMap`, `dev.stagehand.v1alpha1.LambdaStage`.
fn schema_name(t: &ResourceType) -> String {
    let group = if t.gvr.group.is_empty() {
        "io.k8s.api.core".to_owned()
    } else {
        t.gvr.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{group}.{}.{}", t.gvr.version, t.kind)
}

fn operation(t: &ResourceType, action: &str, params: &[&str], with_body: bool) -> Value {
    let gvk = json!({"group": t.gvr.group, "version": t.gvr.version, "kind": t.kind});
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    let mut op = json!({
        "operationId": format!("{action}{}", t.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
    });
    if with_body && let Some(o) = op.as_object_mut() {
        // JSON merge and apply patches only: clients fall back to merge patches for these kinds.
        o.insert(
            "requestBody".to_owned(),
            json!({"content": {
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}},
                "application/json-patch+json": {"schema": {"type": "object"}}
            }}),
        );
    }
    op
}

/// The document of one group/version.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.has_group_version(group, version) {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    for t in registry
        .all()
        .filter(|t| t.gvr.group == group && t.gvr.version == version)
    {
        let base = format!("/{}", gv_path(group, version));
        let collection = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.gvr.plural)
        } else {
            format!("{base}/{}", t.gvr.plural)
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(t, "list", &["labelSelector", "fieldSelector", "limit", "continue", "watch", "resourceVersion"], false),
                "post": operation(t, "post", &write, false),
            }),
        );
        let mut patch_params = write.to_vec();
        patch_params.push("force");
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(t, "get", &[], false),
                "put": operation(t, "put", &write, false),
                "patch": operation(t, "patch", &patch_params, true),
                "delete": operation(t, "delete", &["dryRun"], false),
            }),
        );
        if t.status_subresource {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({
                    "get": operation(t, "get", &[], false),
                    "put": operation(t, "put", &write, false),
                    "patch": operation(t, "patch", &patch_params, true),
                }),
            );
        }
        if let Some(schema) = &t.schema {
            let mut s = (**schema).clone();
            if let Some(o) = s.as_object_mut() {
                o.insert(
                    "x-kubernetes-group-version-kind".to_owned(),
                    json!([{"group": t.gvr.group, "version": t.gvr.version, "kind": t.kind}]),
                );
            }
            schemas.insert(schema_name(t), s);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
