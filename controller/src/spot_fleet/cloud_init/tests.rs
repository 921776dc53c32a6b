//! Rendering tables: which document each combination of `userData`, `files` and `services`
//! gives, parsed back as YAML to prove it is valid and says what was meant.

use serde_json::{Value, json};
use stagehand_crds::spot_fleet::{FileSpec, ServiceSpec};

use super::*;

fn file(path: &str, content: &str) -> FileSpec {
    FileSpec {
        path: path.to_owned(),
        content: content.to_owned(),
        permissions: "0644".to_owned(),
        owner: "root:root".to_owned(),
    }
}

fn service(name: &str, unit: Option<&str>, enabled: bool) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        unit: unit.map(str::to_owned),
        enabled,
    }
}

fn yaml(document: &str) -> Value {
    assert!(document.starts_with("#cloud-config\n"), "{document}");
    serde_saphyr::from_str(document).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{document}"))
}

fn decoded(entry: &Value) -> String {
    let b64 = entry["content"].as_str().unwrap();
    String::from_utf8(aws_smithy_types::base64::decode(b64).unwrap()).unwrap()
}

/// (path, decoded content, permissions, owner) of every `write_files` entry.
fn written(config: &Value) -> Vec<(String, String, String, String)> {
    config["write_files"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    assert_eq!(e["encoding"], "b64");
                    (
                        e["path"].as_str().unwrap().to_owned(),
                        decoded(e),
                        e["permissions"].as_str().unwrap().to_owned(),
                        e["owner"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn row(
    path: &str,
    content: &str,
    permissions: &str,
    owner: &str,
) -> (String, String, String, String) {
    (
        path.into(),
        content.into(),
        permissions.into(),
        owner.into(),
    )
}

#[test]
fn nothing_declared_renders_nothing() {
    assert_eq!(render(None, &[], &[]), Ok(None));
}

#[test]
fn user_data_alone_is_kept_byte_for_byte() {
    for raw in [
        "#!/bin/sh\necho hi\n",
        "#cloud-config\npackages: [nginx]",
        "no newline",
    ] {
        assert_eq!(render(Some(raw), &[], &[]), Ok(Some(raw.to_owned())));
    }
}

#[test]
fn files_and_services_table() {
    type Case = (&'static str, Vec<FileSpec>, Vec<ServiceSpec>, Value, Value);
    let tricky = FileSpec {
        permissions: "0600".into(),
        owner: "app:app".into(),
        ..file(
            "/etc/app/\"odd\": #name.yaml",
            "key: 'value'\n# not a comment\n---\n\u{e9}\n",
        )
    };
    let cases: Vec<Case> = vec![
        (
            "one file, no runcmd",
            vec![file("/etc/motd", "hello\n")],
            vec![],
            json!([["/etc/motd", "hello\n", "0644", "root:root"]]),
            Value::Null,
        ),
        (
            "content and path that would break unquoted YAML",
            vec![tricky],
            vec![],
            json!([[
                "/etc/app/\"odd\": #name.yaml",
                "key: 'value'\n# not a comment\n---\n\u{e9}\n",
                "0600",
                "app:app"
            ]]),
            Value::Null,
        ),
        (
            "units written after files, enabled ones started in spec order",
            vec![file("/etc/worker.env", "A=1\n")],
            vec![
                service(
                    "worker.service",
                    Some("[Service]\nExecStart=/bin/worker\n"),
                    true,
                ),
                service("cleanup.timer", Some("[Timer]\nOnCalendar=daily\n"), false),
                service("sshd.service", None, true),
            ],
            json!([
                ["/etc/worker.env", "A=1\n", "0644", "root:root"],
                [
                    "/etc/systemd/system/worker.service",
                    "[Service]\nExecStart=/bin/worker\n",
                    "0644",
                    "root:root"
                ],
                [
                    "/etc/systemd/system/cleanup.timer",
                    "[Timer]\nOnCalendar=daily\n",
                    "0644",
                    "root:root"
                ],
            ]),
            json!([
                ["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", "worker.service"],
                ["systemctl", "enable", "--now", "sshd.service"],
            ]),
        ),
        (
            "a unit already in the image: only enabled",
            vec![],
            vec![service("nginx.service", None, true)],
            Value::Null,
            json!([
                ["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", "nginx.service"]
            ]),
        ),
    ];
    for (name, files, services, want_files, want_runcmd) in cases {
        let document = render(None, &files, &services).unwrap().unwrap();
        let config = yaml(&document);
        let got: Vec<Value> = written(&config)
            .into_iter()
            .map(|(p, c, m, o)| json!([p, c, m, o]))
            .collect();
        let want: Vec<Value> = want_files.as_array().cloned().unwrap_or_default();
        assert_eq!(got, want, "{name}: write_files\n{document}");
        assert_eq!(config["runcmd"], want_runcmd, "{name}: runcmd\n{document}");
    }
}

#[test]
fn both_combine_into_a_multipart_document() {
    let files = [file("/etc/motd", "hi\n")];
    for (raw, part_type) in [
        ("#!/bin/bash\necho started\n", "text/x-shellscript"),
        ("#cloud-config\npackages: [htop]\n", "text/cloud-config"),
    ] {
        let document = render(Some(raw), &files, &[]).unwrap().unwrap();
        assert!(document.starts_with(&format!(
            "Content-Type: multipart/mixed; boundary=\"{MIME_BOUNDARY}\"\n"
        )));
        let delimiter = format!("--{MIME_BOUNDARY}");
        let parts: Vec<&str> = document.split(&delimiter).collect();
        // preamble, the two parts, and the closing `--`.
        assert_eq!(parts.len(), 4, "{document}");
        assert_eq!(parts[3], "--\n");
        let (headers, body) = parts[1].split_once("\n\n").unwrap();
        assert!(
            headers.contains("Content-Type: text/cloud-config"),
            "{headers}"
        );
        let config = yaml(body);
        assert_eq!(
            written(&config),
            vec![row("/etc/motd", "hi\n", "0644", "root:root")]
        );
        let (headers, body) = parts[2].split_once("\n\n").unwrap();
        assert!(
            headers.contains(&format!("Content-Type: {part_type}")),
            "{headers}"
        );
        // A user's cloud-config appends to the generated lists instead of replacing them.
        assert_eq!(
            headers.contains(&format!("Merge-Type: {USER_PART_MERGE_TYPE}")),
            part_type == "text/cloud-config",
            "{headers}"
        );
        assert_eq!(body, raw);
        // The same spec renders the same bytes: the spec hash depends on it.
        assert_eq!(render(Some(raw), &files, &[]).unwrap().unwrap(), document);
    }
}

#[test]
fn user_data_holding_the_boundary_is_refused() {
    let raw = format!("#!/bin/sh\n--{MIME_BOUNDARY}\n");
    assert_eq!(
        render(Some(&raw), &[file("/a", "b")], &[]),
        Err(CloudInitError::BoundaryInUserData)
    );
    // Alone, it is not combined with anything: nothing to confuse.
    assert!(render(Some(&raw), &[], &[]).is_ok());
}

#[test]
fn over_sixteen_kilobytes_is_refused_naming_size_limit_and_remedy() {
    let at_limit = "x".repeat(USER_DATA_LIMIT_BYTES);
    assert!(render(Some(&at_limit), &[], &[]).is_ok());
    let over = "x".repeat(USER_DATA_LIMIT_BYTES + 1);
    let error = render(Some(&over), &[], &[]).unwrap_err();
    assert_eq!(
        error,
        CloudInitError::TooLarge {
            size: USER_DATA_LIMIT_BYTES + 1,
            limit: USER_DATA_LIMIT_BYTES
        }
    );
    let message = error.to_string();
    for needle in [
        "16385 bytes",
        "16384 bytes",
        "shrink files, service units or userData",
    ] {
        assert!(message.contains(needle), "{message}");
    }
    // base64 makes files a third bigger: 13 KB of file content is over the limit.
    let big = [file("/big", &"y".repeat(13 * 1024))];
    assert!(matches!(
        render(None, &big, &[]),
        Err(CloudInitError::TooLarge { .. })
    ));
}

#[test]
fn base64_matches_rfc_4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
    }
}
