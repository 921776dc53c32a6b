//! moto 5.2.5 keeps a bucket's EventBridge notifications (`PutBucketNotificationConfiguration`
//! with `<EventBridgeConfiguration/>`) and sends the bucket's `Object Created` / `Object Deleted`
//! events to EventBridge as S3 does, but `GetBucketNotificationConfiguration` never shows the
//! setting: a controller checking it would turn it on again every round, and could never see
//! that a bucket already announces its objects. AWS answers `<EventBridgeConfiguration/>`. The
//! proxy remembers, per bucket, whether the last accepted put turned EventBridge on and puts
//! the element back into the answers that omit it — the answer AWS gives for the same state,
//! like [`super::moto_oac`].

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::classify::CallId;

const ELEMENT: &str = "EventBridgeConfiguration";

/// The buckets whose last accepted notification put had EventBridge on.
#[derive(Debug, Default)]
pub struct EventBridgeBuckets {
    on: Mutex<BTreeSet<String>>,
}

/// The bucket of a path-style S3 request (`/bucket` or `/bucket/key`).
fn bucket_of(path: &str) -> Option<&str> {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .filter(|b| !b.is_empty())
}

impl EventBridgeBuckets {
    /// Remembers what an accepted notification put (`request` its body) set for its bucket.
    pub fn remember(&self, id: &CallId, path: &str, request: &[u8]) {
        if id.service != "s3" || id.operation != "PutBucketNotificationConfiguration" {
            return;
        }
        let Some(bucket) = bucket_of(path) else {
            return;
        };
        let on = std::str::from_utf8(request).is_ok_and(|text| text.contains(ELEMENT));
        let mut buckets = self
            .on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if on {
            buckets.insert(bucket.to_owned());
        } else {
            buckets.remove(bucket);
        }
    }

    /// The notification answer for `path`'s bucket with `<EventBridgeConfiguration/>` back in
    /// it; `None` when nothing changes.
    pub fn restore(&self, id: &CallId, path: &str, response: &[u8]) -> Option<Vec<u8>> {
        if id.service != "s3" || id.operation != "GetBucketNotificationConfiguration" {
            return None;
        }
        let bucket = bucket_of(path)?;
        let on = self
            .on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(bucket);
        let text = std::str::from_utf8(response).ok()?;
        if !on || text.contains(ELEMENT) {
            return None;
        }
        let root = "NotificationConfiguration";
        let element = format!("<{ELEMENT}/>");
        let fixed = if let Some(end) = text.find(&format!("</{root}>")) {
            format!("{}{element}{}", &text[..end], &text[end..])
        } else {
            // `<NotificationConfiguration .../>`: opened and closed in one tag.
            let start = text.find(&format!("<{root}"))?;
            let close = start + text[start..].find("/>")?;
            format!(
                "{}>{element}</{root}>{}",
                &text[..close],
                &text[close + 2..]
            )
        };
        Some(fixed.into_bytes())
    }
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

    const ON: &[u8] = b"<NotificationConfiguration><EventBridgeConfiguration></EventBridgeConfiguration></NotificationConfiguration>";

    #[test]
    fn a_bucket_turned_on_reads_back_on_and_off_again_after_a_put_without_it() {
        let buckets = EventBridgeBuckets::default();
        let get = id("GetBucketNotificationConfiguration");
        let put = id("PutBucketNotificationConfiguration");
        let empty = b"<NotificationConfiguration xmlns=\"x\"/>";
        assert_eq!(buckets.restore(&get, "/site", empty), None);
        buckets.remember(&put, "/site", ON);
        assert_eq!(
            buckets.restore(&get, "/site", empty).as_deref(),
            Some(&b"<NotificationConfiguration xmlns=\"x\"><EventBridgeConfiguration/></NotificationConfiguration>"[..])
        );
        let with_queue = b"<NotificationConfiguration><QueueConfiguration><Id>q</Id></QueueConfiguration></NotificationConfiguration>";
        assert_eq!(
            buckets.restore(&get, "/site", with_queue).as_deref(),
            Some(&b"<NotificationConfiguration><QueueConfiguration><Id>q</Id></QueueConfiguration><EventBridgeConfiguration/></NotificationConfiguration>"[..])
        );
        assert_eq!(buckets.restore(&get, "/other", empty), None);
        buckets.remember(&put, "/site", b"<NotificationConfiguration/>");
        assert_eq!(buckets.restore(&get, "/site", empty), None);
    }

    #[test]
    fn other_calls_are_left_alone() {
        let buckets = EventBridgeBuckets::default();
        buckets.remember(&id("PutBucketTagging"), "/site", ON);
        assert_eq!(
            buckets.restore(
                &id("GetBucketNotificationConfiguration"),
                "/site",
                b"<NotificationConfiguration/>"
            ),
            None
        );
    }
}
