//! What each function runs and how it is configured: code (a zip by its SHA-256, an image by its
//! digest), layers, environment, runtime, handler, memory and timeout. One Lambda write per
//! function per round: code first, configuration on a later round, then the alias.

use std::collections::BTreeMap;

use stagehand_crds::lambda_stage::{CodeSource, FunctionSpec};
use stagehand_crds::{LambdaStageSpec, S3ObjectRef};

use super::action::Action;
use super::{DriftField, FunctionSummary, Planner, Stall, reason, requeue};
use crate::aws::lambda::{self, CodeSource as CodeLocation, ConfigUpdate};
use crate::aws::s3::Sha256Digest;
use crate::lambda_stage::observed::{
    DeclaredAs, DeployedFunction, ObservedArtifact, ObservedFunction,
};

/// Lambda attaches at most this many layers to a function.
pub const MAX_LAYERS: usize = 5;

/// The layers the spec declares, resolved, plus the previously declared ones to detach.
#[derive(Debug, Default)]
pub(super) struct ResolvedLayers {
    /// Layer version ARNs to attach, in spec order.
    attach: Vec<String>,
    /// Layers (ARN without version, or name) declared before and no longer: detach them.
    detach: Vec<String>,
}

/// The code a function should run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DesiredCode {
    /// The spec declares no code for the function: code is not managed.
    Unmanaged,
    /// A zip with a known hash, deployed from exactly the object version that was checked.
    Zip {
        source: CodeLocation,
        sha256: Sha256Digest,
    },
    /// A container image pinned by digest.
    Image { uri: String, digest: String },
    /// The artifact's hash is unknown until it is streamed once.
    NeedsHash {
        artifact: S3ObjectRef,
        e_tag: Option<String>,
    },
}

impl Planner<'_> {
    /// The declared layers' versions (a layer without one stalls), and the layers declared on
    /// an earlier round and dropped from the spec since.
    pub(super) fn resolve_layers(&mut self) -> ResolvedLayers {
        let mut resolved = ResolvedLayers::default();
        for layer in &self.spec.layers {
            match self.observed.layer_versions.get(&layer.name) {
                Some(arn) => resolved.attach.push(arn.clone()),
                None => self.stall(
                    reason::LAYER_NOT_FOUND,
                    format!("layer {} has no version {}", layer.name, layer.version),
                ),
            }
        }
        let still_declared: Vec<&str> = resolved
            .attach
            .iter()
            .map(|arn| lambda::layer_arn_without_version(arn))
            .collect();
        resolved.detach = self
            .observed
            .previous
            .declared_layers
            .iter()
            .filter(|previous| !still_declared.iter().any(|arn| same_layer(arn, previous)))
            .cloned()
            .collect();
        resolved
    }

    /// The code the spec gives the function (its own, else the stage's); one that cannot be
    /// honoured stalls.
    fn desired_code(&mut self, function: &ObservedFunction) -> DesiredCode {
        let entry = spec_entry(self.spec, function);
        let Some(source) = entry
            .and_then(|e| e.code.as_ref())
            .or(self.spec.code.as_ref())
        else {
            return DesiredCode::Unmanaged;
        };
        match desired_code_of(source, &self.observed.artifacts) {
            Ok(code) => code,
            Err(stall) => {
                self.stall(stall.reason, stall.message);
                DesiredCode::Unmanaged
            }
        }
    }

    /// Drift is reported for every function; a change is planned only once the stack is
    /// settled and the function is not being updated, and one Lambda update at most: code,
    /// else configuration, else the alias (ownership tags first do not count as one).
    pub(super) fn plan_function(
        &mut self,
        function: &ObservedFunction,
        layers: &ResolvedLayers,
        stack_settled: bool,
        validation_passed: bool,
    ) {
        let Some(deployed) = &function.deployed else {
            // While the stack is being created or updated, its functions may not exist yet.
            if stack_settled {
                self.stall(
                    reason::FUNCTION_NOT_FOUND,
                    format!("function {} does not exist", function.name),
                );
            }
            return;
        };
        let name = function.name.as_str();
        let code = self.desired_code(function);
        let code_drift = self.report_code(function, deployed, &code);
        let change = self.configuration_change(function, deployed, layers);
        if !stack_settled {
            return;
        }
        if deployed.info.update_in_progress() {
            self.wait(
                reason::FUNCTION_UPDATE_IN_PROGRESS,
                format!("function {name}"),
                requeue::FUNCTION_UPDATE_SECONDS,
            );
            return;
        }
        self.tag_if_untagged(function, deployed);
        if self.plan_code(name, code, code_drift) {
            return;
        }
        if !change.is_empty() {
            self.act(Action::UpdateFunctionConfiguration {
                function: name.to_owned(),
                change,
            });
            return;
        }
        if let Some(alias) = &self.spec.alias {
            self.plan_alias(function, deployed, alias, validation_passed);
        }
    }

    /// Hashes the artifact whose hash is unknown, or updates code that drifted. Returns whether
    /// the code was planned: then nothing else is planned for the function this round.
    fn plan_code(&mut self, function: &str, code: DesiredCode, drifted: bool) -> bool {
        match code {
            DesiredCode::NeedsHash { artifact, e_tag } => {
                // Functions sharing an artifact wait for one hash.
                let key = (
                    artifact.bucket.clone(),
                    artifact.key.clone(),
                    artifact.version_id.clone(),
                );
                if self.artifacts_to_hash.insert(key) {
                    self.act(Action::HashArtifact { artifact, e_tag });
                }
                true
            }
            DesiredCode::Zip { source, sha256 } if drifted => {
                self.act(Action::UpdateFunctionCode {
                    function: function.to_owned(),
                    source,
                    expected_code_sha256: Some(sha256.to_base64()),
                });
                true
            }
            DesiredCode::Image { uri, .. } if drifted => {
                self.act(Action::UpdateFunctionCode {
                    function: function.to_owned(),
                    source: CodeLocation::Image { uri },
                    expected_code_sha256: None,
                });
                true
            }
            _ => false,
        }
    }

    /// Records code drift and the function's summary; returns whether the code must change.
    fn report_code(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
        code: &DesiredCode,
    ) -> bool {
        let name = function.name.as_str();
        let (deployed_hash, desired_hash, drifted) = match code {
            DesiredCode::Unmanaged => (deployed.info.code_sha256.clone(), None, false),
            DesiredCode::NeedsHash { .. } => {
                self.code_hash_pending = true;
                (deployed.info.code_sha256.clone(), None, false)
            }
            DesiredCode::Zip { sha256, .. } => {
                if deployed.info.is_image() {
                    self.stall(
                        reason::PACKAGE_TYPE_MISMATCH,
                        format!(
                            "function {name} is an image function but the spec gives a zip in S3"
                        ),
                    );
                }
                let drifted = code_drifted(deployed.info.code_sha256.as_deref(), *sha256);
                (
                    deployed.info.code_sha256.clone(),
                    Some(sha256.to_base64()),
                    drifted,
                )
            }
            DesiredCode::Image { digest, .. } => {
                if !deployed.info.is_image() {
                    self.stall(
                        reason::PACKAGE_TYPE_MISMATCH,
                        format!("function {name} is a zip function but the spec gives an image"),
                    );
                }
                let drifted = image_drifted(deployed.image_digest.as_deref(), digest);
                (deployed.image_digest.clone(), Some(digest.clone()), drifted)
            }
        };
        if drifted {
            self.drift(
                DriftField::Code,
                name,
                format!(
                    "deployed {}, desired {}",
                    deployed_hash.as_deref().unwrap_or("nothing"),
                    desired_hash.as_deref().unwrap_or("unknown")
                ),
            );
        }
        self.plan.functions.push(FunctionSummary {
            name: name.to_owned(),
            deployed_code_sha256: deployed_hash,
            code_in_sync: desired_hash.is_some() && !drifted,
            desired_code_sha256: desired_hash,
        });
        drifted
    }

    /// The configuration fields that differ (layers, environment, runtime, handler, memory,
    /// timeout), with drift recorded for each.
    fn configuration_change(
        &mut self,
        function: &ObservedFunction,
        deployed: &DeployedFunction,
        layers: &ResolvedLayers,
    ) -> ConfigUpdate {
        let name = function.name.as_str();
        let info = &deployed.info;
        let entry = spec_entry(self.spec, function);
        let mut change = ConfigUpdate::default();

        // Lambda has no layers for image functions.
        if !info.is_image() {
            let wanted = desired_layers(&info.layers, &layers.attach, &layers.detach);
            if wanted.len() > MAX_LAYERS {
                self.stall(
                    reason::TOO_MANY_LAYERS,
                    format!(
                        "function {name} would have {} layers (Lambda allows {MAX_LAYERS})",
                        wanted.len()
                    ),
                );
            }
            if layers_drifted(&info.layers, &wanted) {
                self.drift(
                    DriftField::Layers,
                    name,
                    format!("{} → {}", layer_names(&info.layers), layer_names(&wanted)),
                );
                self.layers_drifted.push(name.to_owned());
                change.layers = Some(wanted);
            }
        }

        let declared = declared_environment(self.spec, entry);
        let drifted_keys = environment_drifted(&info.environment, &declared);
        if !drifted_keys.is_empty() {
            self.drift(
                DriftField::Environment,
                name,
                format!("{} differ", drifted_keys.join(", ")),
            );
            change.environment = Some(lambda::merged_environment(&info.environment, &declared));
        }

        if let Some(entry) = entry {
            if !info.is_image() {
                change.runtime = differing(entry.runtime.as_ref(), info.runtime.as_ref());
                change.handler = differing(entry.handler.as_ref(), info.handler.as_ref());
            }
            change.memory_mb = differing(entry.memory_mb.as_ref(), info.memory_mb.as_ref());
            change.timeout_seconds = differing(
                entry.timeout_seconds.as_ref(),
                info.timeout_seconds.as_ref(),
            );
            let fields: Vec<&str> = [
                ("runtime", change.runtime.is_some()),
                ("handler", change.handler.is_some()),
                ("memory", change.memory_mb.is_some()),
                ("timeout", change.timeout_seconds.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, changed)| changed.then_some(field))
            .collect();
            if !fields.is_empty() {
                self.drift(
                    DriftField::Configuration,
                    name,
                    format!("{} differ", fields.join(", ")),
                );
            }
        }
        change
    }
}

/// The deployed zip's `CodeSha256` (base64) is not the desired hash. A missing or unreadable
/// deployed hash counts as drift: deploying the known artifact is always safe.
pub fn code_drifted(deployed_code_sha256: Option<&str>, desired: Sha256Digest) -> bool {
    deployed_code_sha256.and_then(Sha256Digest::parse) != Some(desired)
}

/// The deployed image digest is not the one in the spec's `uri@sha256:...`.
pub fn image_drifted(deployed_digest: Option<&str>, desired_digest: &str) -> bool {
    !deployed_digest.is_some_and(|d| d.eq_ignore_ascii_case(desired_digest))
}

/// A pinned hash (hex or base64) denotes different bytes than the artifact's checksum.
pub fn pin_mismatched(pin: Sha256Digest, artifact_sha256: Sha256Digest) -> bool {
    pin != artifact_sha256
}

/// The attached layers are not the desired list (order matters: Lambda applies them in order).
pub fn layers_drifted(deployed: &[String], desired: &[String]) -> bool {
    deployed != desired
}

/// The declared environment keys whose deployed value differs (or that are missing). Keys the
/// spec does not declare are none of Stagehand's business.
pub fn environment_drifted(
    deployed: &BTreeMap<String, String>,
    declared: &BTreeMap<String, String>,
) -> Vec<String> {
    declared
        .iter()
        .filter(|(key, value)| deployed.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The desired code of a code source, or why nothing may be deployed.
fn desired_code_of(
    source: &CodeSource,
    artifacts: &[ObservedArtifact],
) -> Result<DesiredCode, Stall> {
    if let Some(uri) = &source.image {
        let digest = lambda::image_digest(uri).unwrap_or_default().to_owned();
        return Ok(DesiredCode::Image {
            uri: uri.clone(),
            digest,
        });
    }
    let Some(s3) = &source.s3 else {
        return Ok(DesiredCode::Unmanaged);
    };
    let location = format!("s3://{}/{}", s3.bucket, s3.key);
    let pin = match source.sha256.as_deref() {
        None => None,
        Some(text) => Some(Sha256Digest::parse(text).ok_or_else(|| Stall {
            reason: reason::INVALID_PIN,
            message: format!(
                "code.sha256 {text:?} for {location} is neither 64 hex nor 44 base64 characters"
            ),
        })?),
    };
    let observed = artifacts.iter().find(|a| a.source == *s3);
    if observed.is_some_and(|a| a.bucket_missing) {
        return Err(Stall {
            reason: reason::ARTIFACT_NOT_FOUND,
            message: format!(
                "artifact {location}: bucket {:?} does not exist (check code.s3.bucket and the region)",
                s3.bucket
            ),
        });
    }
    let head = observed.and_then(|a| a.head.as_ref().map(|head| (a, head)));
    let Some((artifact, head)) = head else {
        return Err(Stall {
            reason: reason::ARTIFACT_NOT_FOUND,
            message: format!("artifact {location} does not exist"),
        });
    };
    // Deploy exactly the object version whose hash was checked, not whatever is current when
    // Lambda fetches it.
    let version_id = s3.version_id.clone().or_else(|| head.version_id.clone());
    let Some(artifact_sha256) = artifact.sha256() else {
        return Ok(DesiredCode::NeedsHash {
            artifact: S3ObjectRef {
                version_id,
                ..s3.clone()
            },
            e_tag: head.e_tag.clone(),
        });
    };
    if let Some(pin) = pin
        && pin_mismatched(pin, artifact_sha256)
    {
        return Err(Stall {
            reason: reason::ARTIFACT_MISMATCH,
            message: format!(
                "artifact {location} has sha256 {artifact_sha256} but code.sha256 pins {pin}: nothing deployed (upload the pinned build or change the pin)"
            ),
        });
    }
    Ok(DesiredCode::Zip {
        source: CodeLocation::S3 {
            bucket: s3.bucket.clone(),
            key: s3.key.clone(),
            version_id,
        },
        sha256: artifact_sha256,
    })
}

/// The `spec.functions` entry that declares `function`, if any.
pub(super) fn spec_entry<'s>(
    spec: &'s LambdaStageSpec,
    function: &ObservedFunction,
) -> Option<&'s FunctionSpec> {
    let declared_as = function.declared_as.as_ref()?;
    spec.functions.iter().find(|entry| match declared_as {
        DeclaredAs::Name(name) => entry.name.as_ref() == Some(name),
        DeclaredAs::FromStack(id) => entry.from_stack.as_ref() == Some(id),
    })
}

/// The stage's environment with the function's own declarations over it.
pub(super) fn declared_environment(
    spec: &LambdaStageSpec,
    entry: Option<&FunctionSpec>,
) -> BTreeMap<String, String> {
    let mut declared = spec.environment.clone();
    if let Some(entry) = entry {
        declared.extend(
            entry
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    declared
}

/// The layers a function should have: the deployed list without layers the spec dropped, with
/// each declared layer version in place of an older version of it (or appended). Layers the spec
/// never declared keep their place.
pub fn desired_layers(deployed: &[String], attach: &[String], detach: &[String]) -> Vec<String> {
    let mut layers: Vec<String> = deployed
        .iter()
        .filter(|arn| {
            !detach
                .iter()
                .any(|dropped| same_layer(lambda::layer_arn_without_version(arn), dropped))
        })
        .cloned()
        .collect();
    for arn in attach {
        layers = lambda::with_layer(&layers, arn);
    }
    layers
}

/// Whether a layer ARN without version is `layer` (given as such an ARN or as a bare name).
fn same_layer(layer_arn: &str, layer: &str) -> bool {
    layer_arn == layer
        || layer_arn
            .rsplit_once(":layer:")
            .is_some_and(|(_, name)| name == layer)
}

/// `Some(declared)` when declared and different from deployed.
pub(super) fn differing<T: Clone + PartialEq>(
    declared: Option<&T>,
    deployed: Option<&T>,
) -> Option<T> {
    declared.filter(|d| Some(*d) != deployed).cloned()
}

/// `name:version` of each layer ARN, for messages.
fn layer_names(layers: &[String]) -> String {
    let names: Vec<&str> = layers
        .iter()
        .map(|arn| {
            arn.rsplit_once(":layer:")
                .map_or(arn.as_str(), |(_, rest)| rest)
        })
        .collect();
    format!("[{}]", names.join(", "))
}
