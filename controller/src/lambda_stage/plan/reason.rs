//! Condition and stall reasons: CamelCase, a fixed set (they are metric labels too).

pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
pub const ADOPTION_REQUIRED: &str = "AdoptionRequired";
pub const ARTIFACT_MISMATCH: &str = "ArtifactMismatch";
pub const ARTIFACT_NOT_FOUND: &str = "ArtifactNotFound";
pub const INVALID_PIN: &str = "InvalidSha256Pin";
pub const PACKAGE_TYPE_MISMATCH: &str = "PackageTypeMismatch";
pub const LAYER_NOT_FOUND: &str = "LayerNotFound";
pub const TOO_MANY_LAYERS: &str = "TooManyLayers";
pub const FUNCTION_NOT_FOUND: &str = "FunctionNotFound";
pub const QUEUE_NOT_FOUND: &str = "QueueNotFound";
pub const MAPPING_FUNCTION_NOT_FOUND: &str = "MappingFunctionNotFound";
pub const STACK_ROLLBACK_COMPLETE: &str = "StackRollbackComplete";
pub const STACK_UPDATE_ROLLBACK_FAILED: &str = "StackUpdateRollbackFailed";
pub const STACK_FAILED: &str = "StackFailed";
pub const CHANGE_SET_FAILED: &str = "ChangeSetFailed";
pub const ROLLBACK_VERSION_UNKNOWN: &str = "RollbackVersionUnknown";
pub const VALIDATION_FAILED: &str = "ValidationFailed";
pub const VALIDATION_PASSED: &str = "ValidationPassed";
pub const CODE_DRIFT: &str = "CodeDrift";
pub const CODE_MATCHES: &str = "CodeMatchesArtifact";
pub const ARTIFACT_HASH_PENDING: &str = "ArtifactHashPending";
pub const NO_CODE_DECLARED: &str = "NoCodeDeclared";
pub const LAYERS_DRIFTED: &str = "LayersDrifted";
pub const LAYERS_ATTACHED: &str = "LayersAttached";
pub const NO_LAYERS_DECLARED: &str = "NoLayersDeclared";
pub const MAPPINGS_DRIFTED: &str = "MappingsDrifted";
pub const MAPPINGS_HEALTHY: &str = "MappingsHealthy";
pub const NO_MAPPINGS_DECLARED: &str = "NoMappingsDeclared";
pub use crate::base::plan::APPLYING;
pub const STACK_IN_PROGRESS: &str = "StackInProgress";
/// The stack's status is one this version does not know: waited on, never taken for settled.
pub const STACK_STATUS_UNKNOWN: &str = "StackStatusUnknown";
pub const CHANGE_SET_PENDING: &str = "ChangeSetPending";
pub const FUNCTION_UPDATE_IN_PROGRESS: &str = "FunctionUpdateInProgress";
pub const MAPPING_TRANSITIONING: &str = "MappingTransitioning";
pub const CANARY_RUNNING: &str = "CanaryRunning";
/// `alias.rollbackOnValidationFailure` moved the alias back to a good version.
pub const ROLLED_BACK: &str = "RolledBack";
