//! The named predicates, each on its own.

use super::fixtures::*;
use crate::aws::s3::Sha256Digest;
use crate::lambda_stage::plan::{
    StackPhase, backlog_exceeded, code_drifted, environment_drifted, image_drifted, pin_mismatched,
    stack_phase,
};

#[test]
fn predicates() {
    assert!(!code_drifted(Some(&b64("a")), sha("a")));
    assert!(code_drifted(Some(&b64("a")), sha("b")));
    assert!(code_drifted(None, sha("a")));
    assert!(code_drifted(Some("not a hash"), sha("a")));
    assert!(!pin_mismatched(
        Sha256Digest::parse(&sha("a").to_hex()).expect("hex"),
        Sha256Digest::parse(&b64("a")).expect("base64")
    ));
    assert!(!image_drifted(Some("sha256:ABC"), "sha256:abc"));
    assert!(image_drifted(None, "sha256:abc"));
    assert!(!backlog_exceeded(10, 5, 10, 5));
    assert!(backlog_exceeded(11, 0, 10, 5));
    assert!(backlog_exceeded(0, 6, 10, 5));
    assert_eq!(
        environment_drifted(
            &env(&[("A", "1"), ("B", "2")]),
            &env(&[("A", "1"), ("C", "3")])
        ),
        ["C"]
    );
    assert_eq!(
        stack_phase("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        StackPhase::InProgress
    );
    assert_eq!(stack_phase("IMPORT_ROLLBACK_COMPLETE"), StackPhase::Stable);
    assert_eq!(stack_phase("DELETE_FAILED"), StackPhase::Failed);
    assert_eq!(stack_phase("UPDATE_ROLLBACK_COMPLETE"), StackPhase::Stable);
    // A status CloudFormation added after this SDK is not "settled".
    assert_eq!(stack_phase("FUTURE_COMPLETE"), StackPhase::Unrecognised);
    assert_eq!(stack_phase(""), StackPhase::Unrecognised);
    assert_eq!(
        stack_phase("REVIEW_IN_PROGRESS"),
        StackPhase::AwaitingCreateChangeSet
    );
}
