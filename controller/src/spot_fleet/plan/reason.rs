//! Condition, wait and stall reasons: CamelCase, a fixed set (they are metric labels too).

pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
pub const ADOPTION_REQUIRED: &str = "AdoptionRequired";
pub use crate::base::plan::APPLYING;
/// `CapacityReady=True`.
pub const CAPACITY_MET: &str = "CapacityMet";
/// `CapacityReady=False` while replacements or launches are under way.
pub const CAPACITY_SHORTFALL: &str = "CapacityShortfall";
/// `CapacityReady=False` and the last launch returned errors.
pub const LAUNCH_ERRORS: &str = "LaunchErrors";
/// EC2 refused something the spec names (an image, subnet, security group, key pair or
/// instance profile that does not exist): a stall until the spec changes or the recheck.
pub const LAUNCH_SPEC_REFUSED: &str = "LaunchSpecRefused";
pub const WAITING_FOR_HEALTH: &str = "WaitingForHealth";
pub const WAITING_FOR_TERMINATION: &str = "WaitingForTermination";
pub const WAITING_FOR_CAPACITY: &str = "WaitingForCapacity";
/// A launch is held back after recent failures.
pub const LAUNCH_BACKOFF: &str = "LaunchBackoff";
/// Surge with `maxSurge: 0` and `maxUnavailable: 0`: nothing can be replaced.
pub const NO_ROOM_TO_REPLACE: &str = "NoRoomToReplace";
