//! The user data of a fleet's instances: `files`, `services` and raw `userData` rendered into one
//! cloud-init document. The bytes must be deterministic: they go into the spec hash, so the same
//! spec must always render the same document or every round would replace the whole fleet.

use std::fmt::Write as _;

use stagehand_crds::spot_fleet::{FileSpec, ServiceSpec};

/// EC2 refuses user data over 16 KB, counted before base64.
pub const USER_DATA_LIMIT_BYTES: usize = 16384;

/// The MIME boundary when `files`/`services` and `userData` are combined. Fixed rather than
/// random so the rendered bytes, and with them the spec hash, stay the same from round to round.
pub const MIME_BOUNDARY: &str = "==STAGEHAND-CLOUD-INIT-BOUNDARY==";

/// Where cloud-init writes unit files so systemd finds them.
const UNIT_DIRECTORY: &str = "/etc/systemd/system";

/// Why the user data cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudInitError {
    #[error(
        "rendered user data is {size} bytes, over EC2's limit of {limit} bytes (counted before base64): shrink files, service units or userData, or have the instance fetch large content at boot"
    )]
    TooLarge { size: usize, limit: usize },
    #[error(
        "userData contains the line `--{MIME_BOUNDARY}`, which Stagehand uses to combine it with files and services; remove that line"
    )]
    BoundaryInUserData,
}

/// The instance's user data, or `None` when the spec declares none.
///
/// - only `userData`: it, byte for byte;
/// - only `files`/`services`: a `#cloud-config` document;
/// - both: a MIME multipart document, the generated cloud-config first, then the user's part
///   (`text/x-shellscript` when it starts with `#!`, `text/cloud-config` otherwise).
pub fn render(
    user_data: Option<&str>,
    files: &[FileSpec],
    services: &[ServiceSpec],
) -> Result<Option<String>, CloudInitError> {
    let generated =
        (!files.is_empty() || !services.is_empty()).then(|| cloud_config(files, services));
    let rendered = match (generated, user_data) {
        (None, None) => return Ok(None),
        (None, Some(raw)) => raw.to_owned(),
        (Some(config), None) => config,
        (Some(config), Some(raw)) => multipart(&config, raw)?,
    };
    check_size(&rendered)?;
    Ok(Some(rendered))
}

/// Errors when `user_data` is over EC2's limit.
pub fn check_size(user_data: &str) -> Result<(), CloudInitError> {
    if user_data.len() > USER_DATA_LIMIT_BYTES {
        return Err(CloudInitError::TooLarge {
            size: user_data.len(),
            limit: USER_DATA_LIMIT_BYTES,
        });
    }
    Ok(())
}

/// `write_files` for the files then the unit files, `runcmd` to load and start the units.
/// Contents are base64 so that no content can break the YAML; every other string is a
/// double-quoted scalar.
fn cloud_config(files: &[FileSpec], services: &[ServiceSpec]) -> String {
    let mut out = String::from("#cloud-config\n");
    let units: Vec<(String, &str)> = services
        .iter()
        .filter_map(|s| {
            let unit = s.unit.as_deref()?;
            Some((format!("{UNIT_DIRECTORY}/{}", s.name), unit))
        })
        .collect();
    if !files.is_empty() || !units.is_empty() {
        out.push_str("write_files:\n");
        for file in files {
            write_file(
                &mut out,
                &file.path,
                &file.content,
                &file.permissions,
                &file.owner,
            );
        }
        for (path, unit) in &units {
            write_file(&mut out, path, unit, "0644", "root:root");
        }
    }
    if !services.is_empty() {
        out.push_str("runcmd:\n");
        // Units written above are unknown to systemd until it reloads.
        let _ = writeln!(out, "  - {}", command(&["systemctl", "daemon-reload"]));
        for service in services.iter().filter(|s| s.enabled) {
            let _ = writeln!(
                out,
                "  - {}",
                command(&["systemctl", "enable", "--now", &service.name])
            );
        }
    }
    out
}

fn write_file(out: &mut String, path: &str, content: &str, permissions: &str, owner: &str) {
    let _ = writeln!(out, "  - path: {}", quoted(path));
    out.push_str("    encoding: b64\n");
    let _ = writeln!(out, "    content: {}", quoted(&base64(content.as_bytes())));
    let _ = writeln!(out, "    permissions: {}", quoted(permissions));
    let _ = writeln!(out, "    owner: {}", quoted(owner));
}

/// A command as a YAML flow list: cloud-init runs a list without a shell, so a unit name is
/// never interpreted.
fn command(argv: &[&str]) -> String {
    let quoted: Vec<String> = argv.iter().map(|a| quoted(a)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A YAML double-quoted scalar. JSON's string escapes are a subset of YAML's double-quoted
/// ones, so a JSON string literal is a valid YAML scalar with the same value.
fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("\"\""))
}

/// How the user's cloud-config part merges onto the generated one. cloud-init's default
/// (`dict(replace)+list()+str()`) would let a user's `write_files` or `runcmd` replace the
/// generated lists; appending keeps both.
pub const USER_PART_MERGE_TYPE: &str = "list(append)+dict(recurse_array)+str()";

fn multipart(config: &str, raw: &str) -> Result<String, CloudInitError> {
    let delimiter = format!("--{MIME_BOUNDARY}");
    if raw
        .lines()
        .any(|line| line.trim_end().starts_with(&delimiter))
    {
        return Err(CloudInitError::BoundaryInUserData);
    }
    let (user_type, user_merge) = if raw.starts_with("#!") {
        ("text/x-shellscript", None)
    } else {
        ("text/cloud-config", Some(USER_PART_MERGE_TYPE))
    };
    let mut out = format!(
        "Content-Type: multipart/mixed; boundary=\"{MIME_BOUNDARY}\"\nMIME-Version: 1.0\n\n"
    );
    for (content_type, merge_type, filename, body) in [
        ("text/cloud-config", None, "stagehand.cfg", config),
        (user_type, user_merge, "user-data", raw),
    ] {
        let _ = writeln!(
            out,
            "{delimiter}\nContent-Type: {content_type}; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 8bit"
        );
        if let Some(merge_type) = merge_type {
            let _ = writeln!(out, "Merge-Type: {merge_type}");
        }
        let _ = write!(
            out,
            "Content-Disposition: attachment; filename=\"{filename}\"\n\n{body}"
        );
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    let _ = writeln!(out, "{delimiter}--");
    Ok(out)
}

/// Standard base64 with padding (RFC 4648), as cloud-init's `encoding: b64` reads it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
