//! The spec hash: what an instance was launched from, in one string, written on the instance as
//! `stagehand.dev/spec-hash` at launch. An instance whose hash differs from the desired one, under
//! the same hash version, is replaced.
//!
//! In the hash — each field changes what a launched instance *is*, and none can be changed on a
//! running instance without patching it, which the fleet never does:
//! - `imageId`: the root volume's content;
//! - `instanceTypes`, `subnetIds`, `securityGroupIds` (as sets: the order of the spec's lists
//!   does not change any instance, and the API marks them `list-type: set`): where and on what
//!   an instance may run, and what may reach it. An instance of type `t3.small` launched from
//!   `[t3.small, t3a.small]` is in date for that list only: changing the list is a new fleet;
//! - `iamInstanceProfile`: the credentials on the instance;
//! - `keyName`: the authorized key installed at first boot;
//! - the rendered user data (not its inputs): cloud-init runs once, at first boot, so the
//!   document an instance booted with is what it runs; hashing the rendered bytes also catches
//!   a change of the renderer;
//! - `tags`: written at launch on instances and volumes; replacing is how they change;
//! - `maxPrice`: a spot request's price cap is fixed at launch.
//!
//! Out of the hash — each is about how many instances or how they are managed, and changing it
//! must not replace a single instance: `capacity` (scaling), `replacement` (how to replace, not
//! what), `healthCheck` (when an instance counts as healthy), `interruptionQueue` (where warnings
//! come from), `region` (immutable), and the lifecycle fields (`adopt`, `deletionPolicy`,
//! `management`, `resyncInterval`).
//!
//! The version: any change to what is hashed or how (a field added, a different framing) changes
//! every hash at once. Bumping [`SPEC_HASH_VERSION`] with such a change tells the plan that a
//! differing hash under a different version is the scheme's doing, not the spec's: it re-stamps
//! those instances and replaces none.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use stagehand_crds::{SPEC_HASH_TAG, SPEC_HASH_VERSION_TAG, SpotFleetSpec};

use super::cloud_init::{self, CloudInitError};

/// What every instance of a spec is launched with and tagged as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The rendered cloud-init document, if any.
    pub user_data: Option<String>,
    /// [`spec_hash`] over the spec and that document.
    pub hash: String,
}

/// Renders the spec's user data and hashes the spec over it: the one way to the desired hash,
/// so observe, the plan and a launch never disagree on it.
pub fn desired(spec: &SpotFleetSpec) -> Result<Desired, CloudInitError> {
    let user_data = cloud_init::render(spec.user_data.as_deref(), &spec.files, &spec.services)?;
    let hash = spec_hash(spec, user_data.as_deref());
    Ok(Desired { user_data, hash })
}

/// The hashing scheme in force. Bump it with any change to [`spec_hash`]'s output for an
/// unchanged spec.
pub const SPEC_HASH_VERSION: &str = "1";

/// The hash of what defines an instance of `spec`, whose rendered cloud-init document is
/// `user_data`: lowercase hex SHA-256.
pub fn spec_hash(spec: &SpotFleetSpec, user_data: Option<&str>) -> String {
    let mut frame = Framed::default();
    frame.field("imageId", [spec.image_id.as_str()]);
    frame.field("instanceTypes", as_set(&spec.instance_types));
    frame.field("subnetIds", as_set(&spec.subnet_ids));
    frame.field("securityGroupIds", as_set(&spec.security_group_ids));
    frame.field("iamInstanceProfile", spec.iam_instance_profile.as_deref());
    frame.field("keyName", spec.key_name.as_deref());
    frame.field("userData", user_data);
    frame.field(
        "tags",
        spec.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
    );
    frame.field("maxPrice", spec.max_price.as_deref());
    frame.finish()
}

/// `text` has the shape of a [`spec_hash`] (64 lowercase hex digits): how a launch template
/// version Stagehand wrote (its description is the hash) is told from one added by hand.
pub fn is_spec_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The spec-hash tags an instance launched (or re-stamped) now carries.
pub fn spec_hash_tags(hash: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (SPEC_HASH_TAG.to_owned(), hash.to_owned()),
        (
            SPEC_HASH_VERSION_TAG.to_owned(),
            SPEC_HASH_VERSION.to_owned(),
        ),
    ])
}

fn as_set(values: &[String]) -> BTreeSet<&str> {
    values.iter().map(String::as_str).collect()
}

/// SHA-256 over length-prefixed fields: each field is its name, its number of values, then each
/// value with its length, so no two different specs frame to the same bytes (`["ab"]` and
/// `["a", "b"]`, `None` and `Some("")`, a value moving from one field to the next).
#[derive(Default)]
struct Framed {
    hasher: Sha256,
}

impl Framed {
    fn field<'a>(&mut self, name: &str, values: impl IntoIterator<Item = &'a str>) {
        self.bytes(name.as_bytes());
        let values: Vec<&str> = values.into_iter().collect();
        self.hasher.update((values.len() as u64).to_be_bytes());
        for value in values {
            self.bytes(value.as_bytes());
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.hasher.update((bytes.len() as u64).to_be_bytes());
        self.hasher.update(bytes);
    }

    fn finish(self) -> String {
        let mut hex = String::with_capacity(64);
        for byte in self.hasher.finalize() {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

#[cfg(test)]
mod tests;
