//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), for
//! the built-in kinds the stand-in stores.
//!
//! kubectl's typed clients (`kubectl create namespace|configmap|secret|serviceaccount`) send
//! protobuf and give up on a `415`: client-go falls back to JSON only for CBOR, never for
//! protobuf (measured with kubectl 1.33 against the stand-in: one POST, the error printed, no
//! retry). So the stand-in decodes them into the JSON objects it stores, with kube-rs's
//! generated messages (`k8s-pb`), and answers in JSON, which those clients also accept.
//!
//! The wire format is the apiserver's: the magic `k8s\0`, then a `runtime.Unknown` whose
//! `typeMeta` names the kind and whose `raw` holds the object's own message. Only the fields a
//! client sets when it creates or replaces an object are carried over (metadata without the
//! server-set timestamps and managed fields, the kind's data); responses stay JSON.

use base64::Engine;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The four bytes in front of every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = b"k8s\0";

/// Whether a `Content-Type` names Kubernetes' protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.starts_with("application/vnd.kubernetes.protobuf")
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("protobuf body without the k8s\\0 prefix"))
        .and_then(|rest| Unknown::decode(rest).map_err(|e| malformed("runtime.Unknown", &e)))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(&decode_message(&raw, &kind)?),
        ("v1", "ConfigMap") => config_map(&decode_message(&raw, &kind)?),
        ("v1", "Secret") => secret(&decode_message(&raw, &kind)?),
        ("v1", "ServiceAccount") => service_account(&decode_message(&raw, &kind)?),
        _ => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the stand-in API server decodes protobuf only for v1 Namespace, ConfigMap, Secret and ServiceAccount, not {api_version} {kind}; send JSON"
                ),
            ));
        }
    };
    let mut object = object;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn decode_message<M: Message + Default>(raw: &[u8], kind: &str) -> Result<M, ApiError> {
    M::decode(raw).map_err(|e| malformed(kind, &e))
}

fn malformed(what: &str, error: &prost::DecodeError) -> ApiError {
    ApiError::bad_request(format!("error decoding protobuf {what}: {error}"))
}

/// Inserts `value` under `key` unless it is empty (Go's `omitempty`).
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        map.insert(key.to_owned(), value);
    }
}

fn strings<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect(),
    )
}

fn bytes<'a>(map: impl IntoIterator<Item = (&'a String, &'a Vec<u8>)>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k.clone(), json!(engine.encode(v))))
            .collect(),
    )
}

/// The client-settable part of `ObjectMeta`.
fn object_meta(meta: Option<&meta::ObjectMeta>) -> Value {
    let Some(meta) = meta else {
        return json!({});
    };
    let mut out = Map::new();
    put(&mut out, "name", json!(meta.name));
    put(&mut out, "generateName", json!(meta.generate_name));
    put(&mut out, "namespace", json!(meta.namespace));
    put(&mut out, "uid", json!(meta.uid));
    put(&mut out, "resourceVersion", json!(meta.resource_version));
    put(&mut out, "labels", strings(&meta.labels));
    put(&mut out, "annotations", strings(&meta.annotations));
    put(&mut out, "finalizers", json!(meta.finalizers));
    let owners: Vec<Value> = meta
        .owner_references
        .iter()
        .map(|o| {
            let mut owner = Map::new();
            put(&mut owner, "apiVersion", json!(o.api_version));
            put(&mut owner, "kind", json!(o.kind));
            put(&mut owner, "name", json!(o.name));
            put(&mut owner, "uid", json!(o.uid));
            put(&mut owner, "controller", json!(o.controller));
            put(
                &mut owner,
                "blockOwnerDeletion",
                json!(o.block_owner_deletion),
            );
            Value::Object(owner)
        })
        .collect();
    put(&mut out, "ownerReferences", json!(owners));
    Value::Object(out)
}

fn namespace(ns: &core::Namespace) -> Value {
    let mut out = Map::new();
    out.insert("metadata".to_owned(), object_meta(ns.metadata.as_ref()));
    if let Some(spec) = ns.spec.as_ref().filter(|s| !s.finalizers.is_empty()) {
        out.insert("spec".to_owned(), json!({ "finalizers": spec.finalizers }));
    }
    Value::Object(out)
}

fn config_map(cm: &core::ConfigMap) -> Value {
    let mut out = Map::new();
    out.insert("metadata".to_owned(), object_meta(cm.metadata.as_ref()));
    put(&mut out, "data", strings(&cm.data));
    put(&mut out, "binaryData", bytes(&cm.binary_data));
    put(&mut out, "immutable", json!(cm.immutable));
    Value::Object(out)
}

fn secret(secret: &core::Secret) -> Value {
    let mut out = Map::new();
    out.insert("metadata".to_owned(), object_meta(secret.metadata.as_ref()));
    put(&mut out, "data", bytes(&secret.data));
    put(&mut out, "stringData", strings(&secret.string_data));
    put(&mut out, "type", json!(secret.r#type));
    put(&mut out, "immutable", json!(secret.immutable));
    Value::Object(out)
}

fn service_account(account: &core::ServiceAccount) -> Value {
    let mut out = Map::new();
    out.insert(
        "metadata".to_owned(),
        object_meta(account.metadata.as_ref()),
    );
    let names = |names: Vec<Option<String>>| -> Value {
        json!(
            names
                .into_iter()
                .map(|name| json!({ "name": name }))
                .collect::<Vec<_>>()
        )
    };
    put(
        &mut out,
        "secrets",
        names(account.secrets.iter().map(|s| s.name.clone()).collect()),
    );
    put(
        &mut out,
        "imagePullSecrets",
        names(
            account
                .image_pull_secrets
                .iter()
                .map(|s| s.name.clone())
                .collect(),
        ),
    );
    put(
        &mut out,
        "automountServiceAccountToken",
        json!(account.automount_service_account_token),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    /// Encodes `message` the way client-go does: magic, then `runtime.Unknown`.
    fn encode(api_version: &str, kind: &str, message: &impl Message) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.to_owned()),
                kind: Some(kind.to_owned()),
            }),
            raw: Some(message.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC, &unknown.encode_to_vec()].concat()
    }

    fn meta(name: &str) -> meta::ObjectMeta {
        meta::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("team-a".to_owned()),
            labels: [("tier".to_owned(), "test".to_owned())].into(),
            ..meta::ObjectMeta::default()
        }
    }

    #[test]
    fn config_maps_and_secrets_decode_to_their_json() {
        let cm = core::ConfigMap {
            metadata: Some(meta("settings")),
            data: [("a".to_owned(), "1".to_owned())].into(),
            binary_data: [("b".to_owned(), vec![0xff, 0])].into(),
            immutable: None,
        };
        assert_eq!(
            decode(&encode("v1", "ConfigMap", &cm)).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "namespace": "team-a", "labels": {"tier": "test"}},
                   "data": {"a": "1"}, "binaryData": {"b": "/wA="}})
        );
        let secret = core::Secret {
            metadata: Some(meta("token")),
            data: [("key".to_owned(), b"s3cr3t".to_vec())].into(),
            r#type: Some("Opaque".to_owned()),
            ..core::Secret::default()
        };
        let decoded = decode(&encode("v1", "Secret", &secret)).unwrap();
        assert_eq!(decoded["data"], json!({"key": "czNjcjN0"}));
        assert_eq!(decoded["type"], "Opaque");
    }

    #[test]
    fn namespaces_and_service_accounts_decode() {
        let ns = core::Namespace {
            metadata: Some(meta::ObjectMeta {
                name: Some("team-a".to_owned()),
                ..meta::ObjectMeta::default()
            }),
            ..core::Namespace::default()
        };
        assert_eq!(
            decode(&encode("v1", "Namespace", &ns)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        );
        let account = core::ServiceAccount {
            metadata: Some(meta("robot")),
            image_pull_secrets: vec![core::LocalObjectReference {
                name: Some("registry".to_owned()),
            }],
            ..core::ServiceAccount::default()
        };
        let decoded = decode(&encode("v1", "ServiceAccount", &account)).unwrap();
        assert_eq!(decoded["imagePullSecrets"], json!([{"name": "registry"}]));
        assert!(decoded.get("secrets").is_none());
    }

    #[test]
    fn other_kinds_and_garbage_are_refused_clearly() {
        let err = decode(&encode("rbac.authorization.k8s.io/v1", "Role", &meta("x"))).unwrap_err();
        assert_eq!(err.code, 415);
        assert!(
            err.to_string()
                .contains("rbac.authorization.k8s.io/v1 Role"),
            "{err}"
        );
        assert_eq!(decode(b"{\"kind\":\"Namespace\"}").unwrap_err().code, 400);
        assert_eq!(decode(b"k8s\0\xff\xff\xff").unwrap_err().code, 400);
    }
}
