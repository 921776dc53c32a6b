//! moto's answers that break the wire protocol itself, corrected on every call (no rule needed):
//! the SDKs must read what AWS sends, or nothing built on those calls can be tested.
//!
//! This is not a fault or a state rewrite: the correction is the response AWS gives for the
//! same state. Each entry names the moto version it was measured on.

use super::classify::CallId;

/// The corrected body of a successful response, or `None` when it is fine as it is.
pub fn correct(id: &CallId, body: &[u8]) -> Option<Vec<u8>> {
    match (id.service.as_str(), id.operation.as_str()) {
        // moto 5.2.5 answers `<GetBucketVersioningResponse>`; S3 (and the Rust SDK's parser)
        // use `<VersioningConfiguration>`, with the same children.
        ("s3", "GetBucketVersioning") => rename_root(
            body,
            "GetBucketVersioningResponse",
            "VersioningConfiguration",
        ),
        // moto 5.2.5 answers a bucket without notifications with an empty
        // `<GetBucketNotificationResponse/>`; S3 with an empty `<NotificationConfiguration/>`.
        ("s3", "GetBucketNotificationConfiguration") => rename_root(
            body,
            "GetBucketNotificationResponse",
            "NotificationConfiguration",
        ),
        _ => None,
    }
}

/// Renames the root element `from` (opening and closing tag, or a self-closing one) to `to`.
fn rename_root(body: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{from}");
    let start = text.find(&open)?;
    let after = &text[start + open.len()..];
    // The tag name must end here (not a longer name with the same prefix).
    if !after.starts_with([' ', '>', '/']) {
        return None;
    }
    let mut fixed = String::with_capacity(text.len());
    fixed.push_str(&text[..start]);
    fixed.push('<');
    fixed.push_str(to);
    fixed.push_str(&after.replacen(&format!("</{from}>"), &format!("</{to}>"), 1));
    Some(fixed.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::classify::Protocol;

    fn id(operation: &str) -> CallId {
        CallId {
            service: "s3".into(),
            operation: operation.into(),
            protocol: Protocol::S3,
        }
    }

    #[test]
    fn versioning_answers_get_the_root_s3_sends() {
        let ns = r#" xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;
        let enabled = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<GetBucketVersioningResponse{ns}><Status>Enabled</Status></GetBucketVersioningResponse>"
        );
        assert_eq!(
            String::from_utf8(correct(&id("GetBucketVersioning"), enabled.as_bytes()).unwrap())
                .unwrap(),
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<VersioningConfiguration{ns}><Status>Enabled</Status></VersioningConfiguration>"
            )
        );
        let never = format!("<GetBucketVersioningResponse{ns}/>");
        assert_eq!(
            String::from_utf8(correct(&id("GetBucketVersioning"), never.as_bytes()).unwrap())
                .unwrap(),
            format!("<VersioningConfiguration{ns}/>")
        );
    }

    #[test]
    fn an_empty_notification_answer_gets_the_root_s3_sends() {
        let fixed = correct(
            &id("GetBucketNotificationConfiguration"),
            b"<GetBucketNotificationResponse xmlns=\"x\"/>",
        );
        assert_eq!(
            fixed.as_deref(),
            Some(&b"<NotificationConfiguration xmlns=\"x\"/>"[..])
        );
    }

    #[test]
    fn other_answers_are_left_alone() {
        let already =
            b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        assert_eq!(correct(&id("GetBucketVersioning"), already), None);
        assert_eq!(
            correct(&id("GetBucketTagging"), b"<GetBucketVersioningResponse/>"),
            None
        );
        assert_eq!(
            rename_root(
                b"<GetBucketVersioningResponseX/>",
                "GetBucketVersioningResponse",
                "V"
            ),
            None
        );
    }
}
