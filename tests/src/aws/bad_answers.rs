//! Answers the SDK cannot use, made from moto's successful ones: a body that is neither XML nor
//! JSON (`garbage`), a document cut off in the middle (`truncate`), and a field set to a value
//! the SDK's enums do not know (`field_value`, e.g. a Lambda `State` of `FutureState`).
//!
//! AWS sends these rarely but really: a proxy or load balancer answering in HTML, a connection
//! cut mid-body behind a TLS terminator, a service that adds an enum value before the SDK knows
//! it. The first two reach the controller as an SDK error on a call that may well have taken
//! effect (the request was forwarded to moto; only the answer is spoiled), which is what the
//! "never half-applied" tests need. Pure: the proxy applies them to moto's response body.

use super::faults::xml_set_all;

/// What `garbage` answers when the rule gives no body: not XML, not JSON, like the HTML or
/// plain text page of something in front of AWS.
pub const DEFAULT_GARBAGE: &str =
    "\u{1f4a5} stagehand-testenv: this answer is neither XML nor JSON";

/// `body` cut after `bytes` bytes (default: half of it), at least one byte short of the whole,
/// so the document always ends in the middle. `None` for an empty body.
pub fn truncate(body: &[u8], bytes: Option<usize>) -> Option<Vec<u8>> {
    if body.is_empty() {
        return None;
    }
    let keep = bytes.unwrap_or(body.len() / 2).min(body.len() - 1);
    Some(body[..keep].to_vec())
}

/// Every `field` of the answer set to `value`: XML elements named `field`, or JSON keys named
/// `field` at any depth. `parent.field` limits the edit to fields directly inside a `parent`
/// element or object (EC2's `instanceState.name`, which a bare `name` would not single out).
/// `None` when the answer has no such field.
pub fn set_field(body: &[u8], field: &str, value: &str) -> Option<Vec<u8>> {
    let (parent, name) = match field.rsplit_once('.') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, field),
    };
    if let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) {
        return set_json(&mut doc, parent, name, value, false)
            .then(|| serde_json::to_vec(&doc).ok())
            .flatten();
    }
    let text = std::str::from_utf8(body).ok()?;
    match parent {
        None => xml_set_all(text, name, value).map(String::into_bytes),
        Some(parent) => set_xml_within(text, parent, name, value).map(String::into_bytes),
    }
}

/// Sets `name` in `doc`'s objects (only those under a key `parent`, when given); `inside` says
/// whether `doc` is such an object. Returns whether anything was set.
fn set_json(
    doc: &mut serde_json::Value,
    parent: Option<&str>,
    name: &str,
    value: &str,
    inside: bool,
) -> bool {
    let mut changed = false;
    match doc {
        serde_json::Value::Object(map) => {
            if (parent.is_none() || inside) && map.contains_key(name) {
                map.insert(name.to_owned(), value.into());
                changed = true;
            }
            for (key, child) in map.iter_mut() {
                let child_inside = parent.is_some_and(|p| p == key);
                changed |= set_json(child, parent, name, value, child_inside);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                changed |= set_json(item, parent, name, value, inside);
            }
        }
        _ => {}
    }
    changed
}

/// Sets every `<name>` found inside a `<parent>…</parent>` element.
fn set_xml_within(text: &str, parent: &str, name: &str, value: &str) -> Option<String> {
    let (open, close) = (format!("<{parent}>"), format!("</{parent}>"));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut found = false;
    while let Some(start) = rest.find(&open) {
        let inner = start + open.len();
        let end = inner + rest[inner..].find(&close)?;
        out.push_str(&rest[..inner]);
        match xml_set_all(&rest[inner..end], name, value) {
            Some(edited) => {
                out.push_str(&edited);
                found = true;
            }
            None => out.push_str(&rest[inner..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_always_ends_mid_document() {
        let body = br#"{"Version":"2","FunctionArn":"arn"}"#;
        let cut = truncate(body, None).unwrap();
        assert_eq!(cut.len(), body.len() / 2);
        assert!(serde_json::from_slice::<serde_json::Value>(&cut).is_err());
        // Asking for more than there is still drops the last byte.
        assert_eq!(truncate(body, Some(10_000)).unwrap().len(), body.len() - 1);
        assert_eq!(truncate(body, Some(3)).unwrap(), b"{\"V");
        assert!(truncate(b"", None).is_none());
    }

    #[test]
    fn a_json_field_is_set_at_any_depth_or_only_under_its_parent() {
        let listing = br#"{"Functions":[{"FunctionName":"a","State":"Active"},{"FunctionName":"b","State":"Active"}],"Configuration":{"State":"Active"}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&set_field(listing, "State", "FutureState").unwrap()).unwrap();
        assert_eq!(out["Functions"][0]["State"], "FutureState");
        assert_eq!(out["Functions"][1]["State"], "FutureState");
        assert_eq!(out["Configuration"]["State"], "FutureState");
        let out: serde_json::Value = serde_json::from_slice(
            &set_field(listing, "Configuration.State", "FutureState").unwrap(),
        )
        .unwrap();
        assert_eq!(out["Functions"][0]["State"], "Active");
        assert_eq!(out["Configuration"]["State"], "FutureState");
        assert!(set_field(listing, "LastUpdateStatus", "x").is_none());
    }

    #[test]
    fn an_xml_element_is_set_everywhere_or_only_inside_its_parent() {
        let describe = "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>\
            <instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState>\
            <tagSet><item><key>Name</key><value>w</value></item></tagSet>\
            </item></instancesSet></item></reservationSet></DescribeInstancesResponse>";
        let out = String::from_utf8(
            set_field(
                describe.as_bytes(),
                "instanceState.name",
                "hibernating-soon",
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            out.contains(
                "<instanceState><code>16</code><name>hibernating-soon</name></instanceState>"
            ),
            "{out}"
        );
        assert!(out.contains("<key>Name</key><value>w</value>"), "{out}");
        let stacks = "<DescribeStacksResult><Stacks><member><StackStatus>CREATE_COMPLETE</StackStatus></member></Stacks></DescribeStacksResult>";
        let out = String::from_utf8(
            set_field(stacks.as_bytes(), "StackStatus", "FUTURE_COMPLETE").unwrap(),
        )
        .unwrap();
        assert!(
            out.contains("<StackStatus>FUTURE_COMPLETE</StackStatus>"),
            "{out}"
        );
        assert!(set_field(stacks.as_bytes(), "instanceState.name", "x").is_none());
    }
}
