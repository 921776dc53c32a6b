//! What the Lambda adapter returns and takes: plain data, no SDK types, so that the pure plans
//! can read it. Plus the pure rules of Lambda's data (layer ARNs, merged environments).

use std::collections::BTreeMap;

/// A function as listed: everything Stagehand compares, without a per-function call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FunctionInfo {
    pub name: String,
    pub arn: String,
    /// base64 SHA-256 of the deployment package (zip functions), as Lambda reports it.
    pub code_sha256: Option<String>,
    /// `Successful`, `Failed` or `InProgress`.
    pub last_update_status: Option<String>,
    pub last_update_status_reason: Option<String>,
    /// `Pending`, `Active`, `Inactive`, `Failed`.
    pub state: Option<String>,
    /// `Zip` or `Image`.
    pub package_type: Option<String>,
    /// Layer version ARNs, in the order Lambda applies them.
    pub layers: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub revision_id: Option<String>,
    /// `$LATEST` for listed functions, the number for versions.
    pub version: Option<String>,
    pub description: Option<String>,
}

impl FunctionInfo {
    /// Lambda rejects another update while one is in progress: wait before the next. A
    /// `LastUpdateStatus` or `State` this code does not know (a value Lambda added after this
    /// SDK, which the SDK parses into its `Unknown` variant) counts as in progress too: not
    /// settled, read again later, never taken for done.
    pub fn update_in_progress(&self) -> bool {
        let update_settled = matches!(
            self.last_update_status.as_deref(),
            None | Some("Successful" | "Failed")
        );
        let state_settled = matches!(
            self.state.as_deref(),
            None | Some(
                "Active"
                    | "ActiveNonInvocable"
                    | "Inactive"
                    | "Failed"
                    | "Deactivating"
                    | "Deactivated"
                    | "Deleting"
            )
        );
        !(update_settled && state_settled)
    }

    pub fn is_image(&self) -> bool {
        self.package_type.as_deref() == Some("Image")
    }
}

/// One function with what only `GetFunction` tells: image URIs and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionDetails {
    pub function: FunctionInfo,
    /// The image URI as configured (image functions).
    pub image_uri: Option<String>,
    /// The image URI with the digest Lambda resolved it to (`repo@sha256:...`).
    pub resolved_image_uri: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl FunctionDetails {
    /// The deployed image's digest (`sha256:...`), from the resolved URI.
    pub fn image_digest(&self) -> Option<&str> {
        self.resolved_image_uri
            .as_deref()
            .or(self.image_uri.as_deref())
            .and_then(image_digest)
    }
}

/// The digest part of `repo@sha256:...`.
pub fn image_digest(uri: &str) -> Option<&str> {
    uri.split_once('@').map(|(_, digest)| digest)
}

/// Where new code comes from. The zip itself never passes through Stagehand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeSource {
    S3 {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    Image {
        uri: String,
    },
}

/// Configuration fields to change; `None` leaves a field as deployed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    /// The complete list, in order (Lambda replaces the list).
    pub layers: Option<Vec<String>>,
    /// The complete map (Lambda replaces the map): see [`merged_environment`].
    pub environment: Option<BTreeMap<String, String>>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_seconds: Option<i32>,
    /// Fails with a conflict when the function changed since it was read.
    pub revision_id: Option<String>,
}

impl ConfigUpdate {
    pub fn is_empty(&self) -> bool {
        self.layers.is_none()
            && self.environment.is_none()
            && self.runtime.is_none()
            && self.handler.is_none()
            && self.memory_mb.is_none()
            && self.timeout_seconds.is_none()
    }
}

/// A published layer version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerVersion {
    pub arn: String,
    pub version: i64,
}

/// An event-source mapping (SQS → function).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventSourceMapping {
    pub uuid: String,
    pub event_source_arn: Option<String>,
    pub function_arn: Option<String>,
    pub batch_size: Option<i32>,
    pub batching_window_seconds: Option<i32>,
    /// `Creating`, `Enabling`, `Enabled`, `Disabling`, `Disabled`, `Updating`, `Deleting`.
    pub state: Option<String>,
    pub max_concurrency: Option<i32>,
}

impl EventSourceMapping {
    /// Whether the mapping is (becoming) enabled; `None` while its state is in between.
    pub fn enabled(&self) -> Option<bool> {
        match self.state.as_deref() {
            Some("Enabled" | "Enabling") => Some(true),
            Some("Disabled" | "Disabling") => Some(false),
            _ => None,
        }
    }
}

/// Mapping settings to create with or change; `None` leaves a setting as is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappingSettings {
    pub batch_size: Option<i32>,
    pub batching_window_seconds: Option<i32>,
    pub enabled: Option<bool>,
    pub max_concurrency: Option<i32>,
}

/// The description Stagehand gives every version it publishes: how it recognises its own
/// versions (the only ones it ever deletes), even when its status was lost.
pub const VERSION_DESCRIPTION: &str = "published by Stagehand";

/// A published version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedVersion {
    pub version: String,
    pub arn: String,
    pub code_sha256: Option<String>,
    pub description: Option<String>,
}

impl PublishedVersion {
    /// Stagehand published it (its description says so).
    pub fn published_by_stagehand(&self) -> bool {
        self.description.as_deref() == Some(VERSION_DESCRIPTION)
    }
}

/// An alias and its routing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alias {
    pub name: String,
    pub arn: String,
    pub function_version: String,
    /// Additional version → weight (0.0..=1.0) of a weighted canary.
    pub routing_weights: BTreeMap<String, f64>,
    pub revision_id: Option<String>,
}

/// What an alias should point at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AliasTarget {
    pub function_version: String,
    /// Empty: all traffic to `function_version` (an existing canary is removed).
    pub routing_weights: BTreeMap<String, f64>,
}

/// The layer ARN without its version (`arn:aws:lambda:r:acct:layer:name`).
pub fn layer_arn_without_version(layer_version_arn: &str) -> &str {
    match layer_version_arn.rsplit_once(':') {
        Some((base, version)) if version.chars().all(|c| c.is_ascii_digit()) => base,
        _ => layer_version_arn,
    }
}

/// `current` with `layer_version_arn` attached: replaces another version of the same layer in
/// place (order kept), else appends. Other layers are untouched.
pub fn with_layer(current: &[String], layer_version_arn: &str) -> Vec<String> {
    let layer = layer_arn_without_version(layer_version_arn);
    let mut replaced = false;
    let mut layers: Vec<String> = Vec::with_capacity(current.len() + 1);
    for arn in current {
        if layer_arn_without_version(arn) == layer {
            if !replaced {
                layers.push(layer_version_arn.to_owned());
                replaced = true;
            }
        } else {
            layers.push(arn.clone());
        }
    }
    if !replaced {
        layers.push(layer_version_arn.to_owned());
    }
    layers
}

/// The environment to write: the deployed one with the declared keys enforced (others kept).
pub fn merged_environment(
    deployed: &BTreeMap<String, String>,
    declared: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = deployed.clone();
    merged.extend(declared.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

/// The function name in a function ARN (`arn:aws:lambda:<region>:<account>:function:<name>`),
/// with the qualifier, if any, kept (`name:alias`).
pub fn function_name_of_arn(arn: &str) -> &str {
    arn.split_once(":function:").map_or(arn, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name_of_arn("arn:aws:lambda:eu-west-1:123456789012:function:shop-api"),
            "shop-api"
        );
        assert_eq!(
            function_name_of_arn("arn:aws:lambda:eu-west-1:123456789012:function:shop-api:live"),
            "shop-api:live"
        );
    }

    const A1: &str = "arn:aws:lambda:eu-west-1:123456789012:layer:shared:1";
    const A3: &str = "arn:aws:lambda:eu-west-1:123456789012:layer:shared:3";
    const OTHER: &str = "arn:aws:lambda:eu-west-1:123456789012:layer:datadog:42";
    const LAST: &str = "arn:aws:lambda:eu-west-1:123456789012:layer:zlast:7";

    fn v(arns: &[&str]) -> Vec<String> {
        arns.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn layer_versions_are_replaced_in_place_and_others_kept() {
        assert_eq!(
            layer_arn_without_version(A3),
            "arn:aws:lambda:eu-west-1:123456789012:layer:shared"
        );
        assert_eq!(
            with_layer(&v(&[OTHER, A1, LAST]), A3),
            v(&[OTHER, A3, LAST])
        );
        assert_eq!(with_layer(&v(&[OTHER]), A3), v(&[OTHER, A3]));
        assert_eq!(with_layer(&v(&[]), A3), v(&[A3]));
        assert_eq!(with_layer(&v(&[A3, OTHER]), A3), v(&[A3, OTHER]));
        // Two versions of the same layer (not allowed by Lambda, but harmless): one remains.
        assert_eq!(with_layer(&v(&[A1, OTHER, A1]), A3), v(&[A3, OTHER]));
    }

    #[test]
    fn environment_merge_enforces_declared_keys_and_keeps_others() {
        let deployed = BTreeMap::from([
            ("LOG_LEVEL".to_owned(), "debug".to_owned()),
            ("DD_API_KEY".to_owned(), "set-by-ops".to_owned()),
        ]);
        let declared = BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]);
        let merged = merged_environment(&deployed, &declared);
        assert_eq!(merged["LOG_LEVEL"], "info");
        assert_eq!(merged["DD_API_KEY"], "set-by-ops");
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn image_digest_comes_from_the_resolved_uri() {
        let details = FunctionDetails {
            image_uri: Some("1.dkr.ecr/x:latest".into()),
            resolved_image_uri: Some("1.dkr.ecr/x@sha256:abc".into()),
            ..FunctionDetails::default()
        };
        assert_eq!(details.image_digest(), Some("sha256:abc"));
        assert_eq!(image_digest("1.dkr.ecr/x:latest"), None);
    }

    #[test]
    fn update_in_progress_and_mapping_state() {
        let busy = FunctionInfo {
            last_update_status: Some("InProgress".into()),
            ..FunctionInfo::default()
        };
        assert!(busy.update_in_progress());
        assert!(!FunctionInfo::default().update_in_progress());
        let with = |last_update_status: &str, state: &str| FunctionInfo {
            last_update_status: Some(last_update_status.into()),
            state: Some(state.into()),
            ..FunctionInfo::default()
        };
        assert!(!with("Successful", "Active").update_in_progress());
        assert!(!with("Failed", "Inactive").update_in_progress());
        assert!(with("Successful", "Pending").update_in_progress());
        // Values the SDK does not know: wait and read again, never "done".
        assert!(with("FutureState", "Active").update_in_progress());
        assert!(with("Successful", "FutureState").update_in_progress());
        let mapping = |state: &str| EventSourceMapping {
            state: Some(state.into()),
            ..EventSourceMapping::default()
        };
        assert_eq!(mapping("Enabled").enabled(), Some(true));
        assert_eq!(mapping("Disabling").enabled(), Some(false));
        assert_eq!(mapping("Updating").enabled(), None);
    }
}
