//! The identity of a stack's desired template: observe compares it with the stack's tag, act
//! names the change set after it and writes the tag.

use stagehand_crds::lambda_stage::Infrastructure;

use crate::aws::s3::Sha256Digest;

/// Tag on the stack (written through the change set) naming the template + parameters
/// fingerprint it was last updated from.
pub const TEMPLATE_FINGERPRINT_TAG: &str = "stagehand.dev/template-fingerprint";

/// The fingerprint of the desired template and parameters: the change set is named after it
/// and the stack is tagged with it, so a change set for an older template is never executed.
pub fn template_fingerprint(infrastructure: &Infrastructure) -> String {
    let template = &infrastructure.template;
    let mut input: Vec<u8> = Vec::new();
    let mut field = |text: &str| {
        input.extend(text.as_bytes());
        input.push(0);
    };
    field(&template.bucket);
    field(&template.key);
    field(template.version_id.as_deref().unwrap_or(""));
    for (key, value) in &infrastructure.parameters {
        field(key);
        field(value);
    }
    let mut capabilities: Vec<String> = infrastructure
        .capabilities
        .iter()
        .map(|c| format!("{c:?}"))
        .collect();
    capabilities.sort();
    field(&capabilities.join(","));
    let mut hex = Sha256Digest::of(&input).to_hex();
    hex.truncate(16);
    hex
}

/// The change set name for a fingerprint.
pub fn change_set_name(fingerprint: &str) -> String {
    format!("stagehand-{fingerprint}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stagehand_crds::S3ObjectRef;

    use super::*;

    #[test]
    fn fingerprint_changes_with_parameters_and_is_stable() {
        let mut infrastructure = Infrastructure {
            stack_name: "shop-dev".into(),
            template: S3ObjectRef {
                bucket: "templates".into(),
                key: "shop.yaml".into(),
                version_id: None,
            },
            parameters: BTreeMap::from([("Stage".into(), "dev".into())]),
            capabilities: Vec::new(),
            on_rollback_complete: stagehand_crds::lambda_stage::RollbackCompletePolicy::Stall,
        };
        let first = template_fingerprint(&infrastructure);
        assert_eq!(first, template_fingerprint(&infrastructure));
        assert_eq!(first.len(), 16);
        infrastructure
            .parameters
            .insert("Stage".into(), "prod".into());
        assert_ne!(first, template_fingerprint(&infrastructure));
        assert!(change_set_name(&first).starts_with("stagehand-"));
    }
}
