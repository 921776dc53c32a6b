//! The `loopback_addresses` rewrite: EC2 `DescribeInstances` answers with every instance's
//! addresses replaced by a loopback address of its own, so that a health probe of an
//! instance dials `127.0.0.x`, where a test can listen for the instances it wants healthy.
//!
//! moto gives instances private VPC addresses (10.x) and public ones (54.x): real-looking
//! addresses of hosts that do not exist here, which tests, the demo and CI must never dial. The
//! rewrite is what makes an instance's network reachable on this machine:
//! - each instance gets the next free address from 127.0.0.2 on (127.0.0.1 is where the floor
//!   and the stand-in listen), remembered by instance id for the life of the rule: stable
//!   across calls, distinct between instances;
//! - within the instance's item, every `privateIpAddress`, `ipAddress` and `publicIp` element
//!   (the instance's own and its network interfaces') becomes that address. DNS names
//!   (`ip-10-…ec2.internal`) are left as they are: they resolve nowhere anyway.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

/// The first address handed out (127.0.0.1 is the floor's own).
pub const FIRST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The elements holding an instance's IPv4 addresses in EC2's wire format.
const ADDRESS_ELEMENTS: &[&str] = &["privateIpAddress", "ipAddress", "publicIp"];

/// Which loopback address each instance got.
#[derive(Debug, Default)]
pub struct AddressBook {
    assigned: BTreeMap<String, Ipv4Addr>,
}

impl AddressBook {
    /// The address of `instance_id`: the one it got before, else the next free one. `None`
    /// once 127.0.0.0/8 is used up (16 million instances).
    pub fn address_of(&mut self, instance_id: &str) -> Option<Ipv4Addr> {
        if let Some(address) = self.assigned.get(instance_id) {
            return Some(*address);
        }
        let offset = u32::try_from(self.assigned.len()).ok()?;
        let next = u32::from(FIRST_ADDRESS).checked_add(offset)?;
        let address = Ipv4Addr::from(next);
        if !address.is_loopback() || address == Ipv4Addr::new(127, 255, 255, 255) {
            return None;
        }
        self.assigned.insert(instance_id.to_owned(), address);
        Some(address)
    }

    /// Instance id → address, for the admin listing.
    pub fn assigned(&self) -> &BTreeMap<String, Ipv4Addr> {
        &self.assigned
    }
}

/// An [`AddressBook`] shared by a rule and the rewrites it fires. Two handles are equal when
/// they are the same book.
#[derive(Clone, Debug, Default)]
pub struct SharedBook(Arc<Mutex<AddressBook>>);

impl PartialEq for SharedBook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SharedBook {
    /// Instance id → address so far.
    pub fn assigned(&self) -> BTreeMap<String, Ipv4Addr> {
        self.lock().assigned().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AddressBook> {
        // One insert per update: consistent even after a panic elsewhere.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `body` (a `DescribeInstances` response) with every instance's addresses on loopback; `None`
/// when it lists no instance.
pub fn rewrite_describe_instances(book: &SharedBook, body: &str) -> Option<String> {
    let items = instance_items(body);
    if items.is_empty() {
        return None;
    }
    let mut book = book.lock();
    let mut out = String::with_capacity(body.len());
    let mut copied = 0;
    for item in items {
        let text = &body[item.clone()];
        let Some(address) = element_text(text, "instanceId").and_then(|id| book.address_of(id))
        else {
            continue;
        };
        out.push_str(&body[copied..item.start]);
        let mut rewritten = text.to_owned();
        for element in ADDRESS_ELEMENTS {
            rewritten = replace_contents(&rewritten, element, &address.to_string());
        }
        out.push_str(&rewritten);
        copied = item.end;
    }
    out.push_str(&body[copied..]);
    Some(out)
}

/// The byte ranges of the `<item>`s directly inside each `<instancesSet>` (one per instance;
/// the items nested in them — volumes, interfaces, tags — are part of their instance's).
fn instance_items(body: &str) -> Vec<Range<usize>> {
    const SET: &str = "<instancesSet>";
    const OPEN: &str = "<item>";
    const CLOSE: &str = "</item>";
    let mut items = Vec::new();
    let mut from = 0;
    while let Some(found) = body[from..].find(SET) {
        let mut at = from + found + SET.len();
        let mut depth = 0_usize;
        let mut start = at;
        loop {
            let rest = &body[at..];
            let open = rest.find(OPEN);
            let close = rest.find(CLOSE);
            match (open, close) {
                (Some(o), Some(c)) if o < c => {
                    if depth == 0 {
                        start = at + o;
                    }
                    depth += 1;
                    at += o + OPEN.len();
                }
                (_, Some(c)) if depth > 0 => {
                    depth -= 1;
                    at += c + CLOSE.len();
                    if depth == 0 {
                        items.push(start..at);
                    }
                }
                // No more items in this set.
                _ => break,
            }
        }
        from = at;
    }
    items
}

/// The text of the first `<name>…</name>` in `text`.
fn element_text<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(&text[start..end])
}

/// `text` with the contents of every non-empty `<name>…</name>` set to `value`.
fn replace_contents(text: &str, name: &str, value: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&open) {
        let start = at + open.len();
        let Some(len) = rest[start..].find(&close) else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(value);
        out.push_str(&close);
        rest = &rest[start + len + close.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One instance as moto 5.2.5 describes it (trimmed), with its interface before its id.
    fn instance(id: &str, private: &str, public: &str) -> String {
        format!(
            "<item><blockDeviceMapping><item><deviceName>/dev/sda1</deviceName></item></blockDeviceMapping>\
             <networkInterfaceSet><item><association><publicIp>{public}</publicIp></association>\
             <privateDnsName>ip-{dns}.ec2.internal</privateDnsName><privateIpAddress>{private}</privateIpAddress>\
             <privateIpAddressesSet><item><primary>true</primary><privateIpAddress>{private}</privateIpAddress></item></privateIpAddressesSet>\
             </item></networkInterfaceSet><groupSet/><instanceId>{id}</instanceId>\
             <privateDnsName>ip-{dns}.ec2.internal</privateDnsName><privateIpAddress>{private}</privateIpAddress>\
             <ipAddress>{public}</ipAddress><tagSet><item><key>k</key><value>v</value></item></tagSet></item>",
            dns = private.replace('.', "-"),
        )
    }

    fn response(instances: &[String]) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<DescribeInstancesResponse><reservationSet>\
             <item><reservationId>r-1</reservationId><groupSet/><instancesSet>{}</instancesSet></item>\
             </reservationSet><requestId>x</requestId></DescribeInstancesResponse>",
            instances.concat()
        )
    }

    #[test]
    fn every_instance_gets_its_own_stable_loopback_address() {
        let book = SharedBook::default();
        let body = response(&[
            instance("i-a", "10.0.1.5", "54.1.2.3"),
            instance("i-b", "10.0.1.6", "54.1.2.4"),
        ]);
        let out = rewrite_describe_instances(&book, &body).unwrap();
        assert!(!out.contains("10.0.1."), "{out}");
        assert!(!out.contains("54.1.2."), "{out}");
        let a = instance("i-a", "127.0.0.2", "127.0.0.2");
        let b = instance("i-b", "127.0.0.3", "127.0.0.3");
        // Only the addresses changed: DNS names, tags and the rest are moto's.
        let expected = response(&[a.clone(), b.clone()])
            .replace("ip-127-0-0-2.", "ip-10-0-1-5.")
            .replace("ip-127-0-0-3.", "ip-10-0-1-6.");
        assert_eq!(out, expected);
        // Stable: the same instance later, listed after a new one, keeps its address.
        let later = response(&[
            instance("i-c", "10.0.2.9", "54.9.9.9"),
            instance("i-a", "10.0.1.5", "54.1.2.3"),
        ]);
        let out = rewrite_describe_instances(&book, &later).unwrap();
        assert!(out.contains("<instanceId>i-c</instanceId><privateDnsName>ip-10-0-2-9.ec2.internal</privateDnsName><privateIpAddress>127.0.0.4</privateIpAddress>"), "{out}");
        assert!(out.contains("<instanceId>i-a</instanceId><privateDnsName>ip-10-0-1-5.ec2.internal</privateDnsName><privateIpAddress>127.0.0.2</privateIpAddress>"), "{out}");
        assert_eq!(
            book.assigned(),
            BTreeMap::from([
                ("i-a".to_owned(), Ipv4Addr::new(127, 0, 0, 2)),
                ("i-b".to_owned(), Ipv4Addr::new(127, 0, 0, 3)),
                ("i-c".to_owned(), Ipv4Addr::new(127, 0, 0, 4)),
            ])
        );
    }

    #[test]
    fn nothing_to_rewrite_without_instances() {
        let book = SharedBook::default();
        let empty = "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>";
        assert_eq!(rewrite_describe_instances(&book, empty), None);
        // An instance without a public address keeps none.
        let body =
            response(&[instance("i-a", "10.0.1.5", "x")]).replace("<ipAddress>x</ipAddress>", "");
        let out = rewrite_describe_instances(&book, &body).unwrap();
        assert!(!out.contains("<ipAddress>"), "{out}");
    }

    #[test]
    fn addresses_stay_in_127_0_0_0_slash_8() {
        let mut book = AddressBook::default();
        for n in 0..300 {
            let address = book.address_of(&format!("i-{n}")).unwrap();
            assert!(address.is_loopback());
            assert_ne!(address, Ipv4Addr::LOCALHOST);
        }
        assert_eq!(book.address_of("i-299"), Some(Ipv4Addr::new(127, 0, 1, 45)));
    }
}
