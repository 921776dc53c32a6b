//! moto 5.2.5 has not implemented `DeleteLaunchTemplateVersions`: it answers HTTP 500
//! (`NotImplementedError` in its log), so a controller that prunes old launch template versions
//! cannot be tested against it. The proxy answers the call itself, as EC2 does, from moto's own
//! listing of the template's versions, and from then on leaves the deleted versions out of
//! `DescribeLaunchTemplateVersions` answers — stateful, like [`super::moto_oac`]:
//!
//! - each version that exists and is not the template's default is deleted (listed in
//!   `successfullyDeletedLaunchTemplateVersionSet`);
//! - the default version is refused with `unexpectedError` ("cannot delete the default
//!   version"), a version that does not exist (or was deleted) with
//!   `launchTemplateVersionDoesNotExist`, every version of a template that does not exist with
//!   `launchTemplateIdDoesNotExist` (`launchTemplateNameDoesNotExist` by name) — per version,
//!   in `unsuccessfullyDeletedLaunchTemplateVersionSet`, as EC2 reports refusals;
//! - moto itself still holds the versions: `CreateFleet` from a deleted version still launches
//!   there (EC2 refuses it), and `DescribeLaunchTemplates` keeps the latest version number
//!   (EC2 does too when an older one goes).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::classify::CallId;
use super::moto_oac::{elements, inner};

/// A `DeleteLaunchTemplateVersions` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// `LaunchTemplateId`, else `None` and the name is set.
    template_id: Option<String>,
    template_name: Option<String>,
    versions: Vec<i64>,
}

impl Deletion {
    /// The deletion `body` asks for, when `id` is `ec2 DeleteLaunchTemplateVersions`.
    pub fn parse(id: &CallId, body: &[u8]) -> Option<Self> {
        if id.service != "ec2" || id.operation != "DeleteLaunchTemplateVersions" {
            return None;
        }
        let mut deletion = Self {
            template_id: None,
            template_name: None,
            versions: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "LaunchTemplateId" => deletion.template_id = Some(value.into_owned()),
                "LaunchTemplateName" => deletion.template_name = Some(value.into_owned()),
                k if k.starts_with("LaunchTemplateVersion.") => {
                    // A version that is not a number is one that does not exist.
                    deletion.versions.push(value.parse().unwrap_or(-1));
                }
                _ => {}
            }
        }
        Some(deletion)
    }

    /// The `DescribeLaunchTemplateVersions` request body that lists the template in moto.
    pub fn listing_request(&self) -> Vec<u8> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("Action", "DescribeLaunchTemplateVersions");
        body.append_pair("Version", "2016-11-15");
        match (&self.template_id, &self.template_name) {
            (Some(id), _) => body.append_pair("LaunchTemplateId", id),
            (None, Some(name)) => body.append_pair("LaunchTemplateName", name),
            (None, None) => &mut body,
        };
        body.finish().into_bytes()
    }
}

/// One version as moto lists it.
struct Listed {
    number: i64,
    is_default: bool,
}

/// The versions the proxy deleted, by template id.
#[derive(Debug, Default)]
pub struct LaunchTemplateVersions {
    deleted: Mutex<BTreeSet<(String, i64)>>,
}

impl LaunchTemplateVersions {
    fn deleted(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, i64)>> {
        self.deleted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// EC2's answer to `deletion`, given moto's answer to [`Deletion::listing_request`]
    /// (`None`: moto does not know the template).
    pub fn delete(&self, deletion: &Deletion, listing: Option<&[u8]>) -> Vec<u8> {
        let listing = listing.and_then(|b| std::str::from_utf8(b).ok());
        let template_id = listing
            .and_then(|l| inner(l, "launchTemplateId"))
            .unwrap_or_default()
            .to_owned();
        let template_name = listing
            .and_then(|l| inner(l, "launchTemplateName"))
            .or(deletion.template_name.as_deref())
            .unwrap_or_default()
            .to_owned();
        let listed = listing.map(listed_versions);
        let id = if listed.is_some() {
            template_id.as_str()
        } else {
            deletion.template_id.as_deref().unwrap_or_default()
        };
        let mut deleted = self.deleted();
        let (mut done, mut refused) = (String::new(), String::new());
        for &number in &deletion.versions {
            let item = format!(
                "<item><launchTemplateId>{id}</launchTemplateId><launchTemplateName>{template_name}</launchTemplateName><versionNumber>{number}</versionNumber>"
            );
            let gone = deleted.contains(&(template_id.clone(), number));
            match refusal(deletion, listed.as_deref(), number, gone) {
                None => {
                    deleted.insert((template_id.clone(), number));
                    let _ = write!(done, "{item}</item>");
                }
                Some((code, message)) => {
                    let _ = write!(
                        refused,
                        "{item}<responseError><code>{code}</code><message>{message}</message></responseError></item>"
                    );
                }
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteLaunchTemplateVersionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>stagehand-testenv</requestId><successfullyDeletedLaunchTemplateVersionSet>{done}</successfullyDeletedLaunchTemplateVersionSet><unsuccessfullyDeletedLaunchTemplateVersionSet>{refused}</unsuccessfullyDeletedLaunchTemplateVersionSet></DeleteLaunchTemplateVersionsResponse>"
        )
        .into_bytes()
    }

    /// A `DescribeLaunchTemplateVersions` answer without the versions deleted here; `None` when
    /// nothing changes.
    pub fn hide(&self, id: &CallId, response: &[u8]) -> Option<Vec<u8>> {
        if id.service != "ec2" || id.operation != "DescribeLaunchTemplateVersions" {
            return None;
        }
        let deleted = self.deleted();
        if deleted.is_empty() {
            return None;
        }
        let text = std::str::from_utf8(response).ok()?;
        let mut kept = String::with_capacity(text.len());
        let mut changed = false;
        for (at, item) in version_items(text) {
            let gone = match (inner(item, "launchTemplateId"), number_of(item)) {
                (Some(template), Some(number)) => deleted.contains(&(template.to_owned(), number)),
                _ => false,
            };
            if gone {
                changed = true;
            } else {
                kept.push_str(&text[at..at + item.len()]);
            }
        }
        if !changed {
            return None;
        }
        let (start, end) = set_bounds(text)?;
        Some(format!("{}{kept}{}", &text[..start], &text[end..]).into_bytes())
    }
}

/// Why EC2 would not delete version `number` (its code and message), given moto's versions of
/// the template (`None`: no such template) and whether the proxy deleted it already.
fn refusal(
    deletion: &Deletion,
    listed: Option<&[Listed]>,
    number: i64,
    gone: bool,
) -> Option<(&'static str, &'static str)> {
    let Some(listed) = listed else {
        return Some(if deletion.template_id.is_some() {
            (
                "launchTemplateIdDoesNotExist",
                "The launch template ID does not exist",
            )
        } else {
            (
                "launchTemplateNameDoesNotExist",
                "The launch template name does not exist",
            )
        });
    };
    match listed.iter().find(|v| v.number == number) {
        Some(v) if v.is_default => Some((
            "unexpectedError",
            "Cannot delete the default version of a launch template",
        )),
        Some(_) if !gone => None,
        _ => Some((
            "launchTemplateVersionDoesNotExist",
            "The launch template version does not exist",
        )),
    }
}

/// Where the items of `launchTemplateVersionSet` start and end in `text`.
fn set_bounds(text: &str) -> Option<(usize, usize)> {
    const OPEN: &str = "<launchTemplateVersionSet>";
    let start = text.find(OPEN)? + OPEN.len();
    let end = text.find("</launchTemplateVersionSet>")?;
    (start <= end).then_some((start, end))
}

/// Each version item of a `DescribeLaunchTemplateVersions` answer with its offset. A version's
/// item starts with its `launchTemplateId`; items nested in its data (tags, groups) do not, so
/// the set is cut at each `<item><launchTemplateId>`.
fn version_items(text: &str) -> Vec<(usize, &str)> {
    const ITEM: &str = "<item><launchTemplateId>";
    let Some((start, end)) = set_bounds(text) else {
        return Vec::new();
    };
    let set = &text[start..end];
    let starts: Vec<usize> = set.match_indices(ITEM).map(|(at, _)| at).collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &at)| {
            let until = starts.get(n + 1).copied().unwrap_or(set.len());
            (start + at, &set[at..until])
        })
        .collect()
}

fn number_of(item: &str) -> Option<i64> {
    inner(item, "versionNumber")?.trim().parse().ok()
}

/// The versions of moto's `DescribeLaunchTemplateVersions` answer.
fn listed_versions(listing: &str) -> Vec<Listed> {
    version_items(listing)
        .into_iter()
        .filter_map(|(_, item)| {
            Some(Listed {
                number: number_of(item)?,
                is_default: elements(item, "defaultVersion").first() == Some(&"true"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::classify::Protocol;

    fn id(operation: &str) -> CallId {
        CallId {
            service: "ec2".into(),
            operation: operation.into(),
            protocol: Protocol::Ec2Query,
        }
    }

    fn version(number: i64, default: bool) -> String {
        format!(
            "<item><launchTemplateId>lt-1</launchTemplateId><launchTemplateName>x</launchTemplateName><versionNumber>{number}</versionNumber><defaultVersion>{default}</defaultVersion><launchTemplateData><securityGroupIdSet><item>sg-1</item></securityGroupIdSet></launchTemplateData></item>"
        )
    }

    fn listing(numbers: &[i64]) -> String {
        let items: String = numbers.iter().map(|&n| version(n, n == 1)).collect();
        format!(
            "<DescribeLaunchTemplateVersionsResponse><launchTemplateVersionSet>{items}</launchTemplateVersionSet><requestId>r</requestId></DescribeLaunchTemplateVersionsResponse>"
        )
    }

    fn deletion(numbers: &[i64]) -> Deletion {
        let mut body = String::from("Action=DeleteLaunchTemplateVersions&LaunchTemplateId=lt-1");
        for (n, number) in numbers.iter().enumerate() {
            let _ = write!(body, "&LaunchTemplateVersion.{}={number}", n + 1);
        }
        Deletion::parse(&id("DeleteLaunchTemplateVersions"), body.as_bytes()).unwrap()
    }

    fn items(answer: &[u8], set: &str) -> Vec<String> {
        let text = std::str::from_utf8(answer).unwrap();
        let set = inner(text, set).unwrap_or_default();
        elements(set, "versionNumber")
            .into_iter()
            .zip(
                elements(set, "item")
                    .into_iter()
                    .map(|i| inner(i, "code").unwrap_or("ok").to_owned()),
            )
            .map(|(n, code)| format!("{n}:{code}"))
            .collect()
    }

    #[test]
    fn versions_are_deleted_except_the_default_and_hidden_from_then_on() {
        let versions = LaunchTemplateVersions::default();
        let moto = listing(&[1, 2, 3]);
        assert_eq!(
            versions.hide(&id("DescribeLaunchTemplateVersions"), moto.as_bytes()),
            None
        );
        let answer = versions.delete(&deletion(&[1, 2, 9]), Some(moto.as_bytes()));
        assert_eq!(
            items(&answer, "successfullyDeletedLaunchTemplateVersionSet"),
            ["2:ok"]
        );
        assert_eq!(
            items(&answer, "unsuccessfullyDeletedLaunchTemplateVersionSet"),
            ["1:unexpectedError", "9:launchTemplateVersionDoesNotExist"]
        );
        let hidden = versions
            .hide(&id("DescribeLaunchTemplateVersions"), moto.as_bytes())
            .unwrap();
        assert_eq!(String::from_utf8(hidden).unwrap(), listing(&[1, 3]));
        // Deleted twice: it no longer exists.
        let again = versions.delete(&deletion(&[2]), Some(moto.as_bytes()));
        assert_eq!(
            items(&again, "unsuccessfullyDeletedLaunchTemplateVersionSet"),
            ["2:launchTemplateVersionDoesNotExist"]
        );
        // Other operations are left alone.
        assert_eq!(
            versions.hide(&id("DescribeLaunchTemplates"), moto.as_bytes()),
            None
        );
    }

    #[test]
    fn a_missing_template_refuses_every_version() {
        let versions = LaunchTemplateVersions::default();
        let answer = versions.delete(&deletion(&[2, 3]), None);
        assert_eq!(
            items(&answer, "unsuccessfullyDeletedLaunchTemplateVersionSet"),
            [
                "2:launchTemplateIdDoesNotExist",
                "3:launchTemplateIdDoesNotExist"
            ]
        );
        assert_eq!(
            deletion(&[2]).listing_request(),
            b"Action=DescribeLaunchTemplateVersions&Version=2016-11-15&LaunchTemplateId=lt-1"
        );
        assert_eq!(
            Deletion::parse(&id("DescribeLaunchTemplateVersions"), b"x"),
            None
        );
    }
}
