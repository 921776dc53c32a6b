//! moto 5.2.5 drops a CloudFront origin's `OriginAccessControlId`: a distribution created or
//! updated with one is read back without it, so a controller comparing what it asked for with
//! what CloudFront reports would see drift forever. AWS keeps it. The proxy remembers the id a
//! request sent for each origin domain and puts it back into the answers that omit it — the
//! answer AWS gives for the same state, like [`super::moto_fixes`], but stateful.

use std::collections::HashMap;
use std::sync::Mutex;

use super::classify::CallId;

/// The OAC id last sent for each origin, by the distribution's `CallerReference` (in every
/// configuration, sent and answered) and the origin's domain name.
#[derive(Debug, Default)]
pub struct OriginAccessControls {
    by_domain: Mutex<HashMap<(String, String), String>>,
}

/// The operations whose request carries a distribution configuration.
const WRITES: &[&str] = &[
    "CreateDistribution",
    "CreateDistributionWithTags",
    "UpdateDistribution",
];

/// The operations whose answer carries one.
const READS: &[&str] = &[
    "CreateDistribution",
    "CreateDistributionWithTags",
    "UpdateDistribution",
    "GetDistribution",
    "GetDistributionConfig",
];

impl OriginAccessControls {
    /// Remembers the OAC id of each origin of a distribution write.
    pub fn remember(&self, id: &CallId, request: &[u8]) {
        if id.service != "cloudfront" || !WRITES.contains(&id.operation.as_str()) {
            return;
        }
        let Ok(text) = std::str::from_utf8(request) else {
            return;
        };
        let reference = inner(text, "CallerReference")
            .unwrap_or_default()
            .to_owned();
        let mut known = self
            .by_domain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for origin in elements(text, "Origin") {
            if let (Some(domain), Some(oac)) = (
                inner(origin, "DomainName"),
                inner(origin, "OriginAccessControlId").filter(|o| !o.is_empty()),
            ) {
                known.insert((reference.clone(), domain.to_owned()), oac.to_owned());
            }
        }
    }

    /// The answer with each remembered OAC id back in origins that lack one; `None` when
    /// nothing changes.
    pub fn restore(&self, id: &CallId, response: &[u8]) -> Option<Vec<u8>> {
        if id.service != "cloudfront" || !READS.contains(&id.operation.as_str()) {
            return None;
        }
        let text = std::str::from_utf8(response).ok()?;
        let reference = inner(text, "CallerReference")
            .unwrap_or_default()
            .to_owned();
        let known = self
            .by_domain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut fixed = String::with_capacity(text.len() + 64);
        let mut rest = text;
        let mut changed = false;
        while let Some(start) = rest.find("<Origin>") {
            let Some(len) = rest[start..].find("</Origin>") else {
                break;
            };
            let origin = &rest[start..start + len];
            fixed.push_str(&rest[..start + len]);
            if inner(origin, "OriginAccessControlId").is_none()
                && let Some(oac) = inner(origin, "DomainName")
                    .and_then(|d| known.get(&(reference.clone(), d.to_owned())))
            {
                fixed.push_str("<OriginAccessControlId>");
                fixed.push_str(oac);
                fixed.push_str("</OriginAccessControlId>");
                changed = true;
            }
            rest = &rest[start + len..];
        }
        fixed.push_str(rest);
        changed.then(|| fixed.into_bytes())
    }
}

/// The bodies of every `<tag>...</tag>` element (not nested in one another).
pub(super) fn elements<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else {
            break;
        };
        found.push(&body[..end]);
        rest = &body[end..];
    }
    found
}

/// The text of the first `<tag>` child.
pub(super) fn inner<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    elements(text, tag).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::classify::Protocol;

    fn id(operation: &str) -> CallId {
        CallId {
            service: "cloudfront".into(),
            operation: operation.into(),
            protocol: Protocol::RestXml,
        }
    }

    #[test]
    fn an_oac_sent_is_read_back() {
        let oacs = OriginAccessControls::default();
        let origin = |oac: &str| {
            format!(
                "<CallerReference>r1</CallerReference><Origins><Quantity>1</Quantity><Items><Origin><Id>site</Id><DomainName>b.s3.us-east-1.amazonaws.com</DomainName>{oac}</Origin></Items></Origins>"
            )
        };
        let sent = origin("<OriginAccessControlId>E2OAC</OriginAccessControlId>");
        let moto = origin("");
        assert_eq!(oacs.restore(&id("GetDistribution"), moto.as_bytes()), None);
        oacs.remember(&id("CreateDistributionWithTags"), sent.as_bytes());
        let fixed = oacs
            .restore(&id("GetDistribution"), moto.as_bytes())
            .unwrap();
        assert_eq!(String::from_utf8(fixed).unwrap(), sent);
        // An answer that has it, or another operation, is left alone.
        assert_eq!(oacs.restore(&id("GetDistribution"), sent.as_bytes()), None);
        assert_eq!(
            oacs.restore(&id("ListDistributions"), moto.as_bytes()),
            None
        );
    }
}
