//! AWS credentials never reach a log line, an Event or a status. The every-kind run
//! ([`crate::rbac_scenario`]) gives `stagehand run` recognisable dummy credentials
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and debug logging, takes
//! every kind through its life including an access-denied fleet and a stalled stage, and then
//! searches all it wrote — every log line on stdout and stderr, every Event, every object with
//! its status — for the three values and for the secret's first 8 characters. A second test
//! shows what the AWS SDK's `Debug` output holds: the secret and the session token redacted.

#![allow(
    clippy::unwrap_used,
    reason = "a test module: a panic with its location is the failure report we want"
)]

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::config::ProvideCredentials;

use crate::rbac_scenario::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};

/// The values no output may contain, with what each is.
fn markers() -> [(&'static str, &'static str); 4] {
    [
        ("access key id", ACCESS_KEY_ID),
        ("secret access key", SECRET_ACCESS_KEY),
        ("secret's first 8 characters", &SECRET_ACCESS_KEY[..8]),
        ("session token", SESSION_TOKEN),
    ]
}

fn leaks<'a>(what: &str, texts: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut found = Vec::new();
    for text in texts {
        for (name, marker) in markers() {
            if text.contains(marker) {
                found.push(format!("{what} shows the {name}: {text}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_logs_events_or_status() {
    let run = crate::rbac_scenario::run("debug").await;
    assert_eq!(
        run.exit_code,
        Some(0),
        "stagehand run stops cleanly on SIGTERM"
    );

    // The search covers real output: debug lines of the SDK and kube, the controller's own
    // actions and failures, and Events and statuses of every kind, failures included.
    let joined = run.logs.join("\n");
    for expected in ["DEBUG", "leading", "UnauthorizedOperation", "aws_smithy"] {
        assert!(joined.contains(expected), "the logs hold {expected:?}");
    }
    assert!(
        run.logs.len() > 500,
        "debug logging was on: {} lines",
        run.logs.len()
    );
    let events: Vec<String> = run.events.iter().map(ToString::to_string).collect();
    let events_joined = events.join("\n");
    for expected in [
        "LambdaStage",
        "SpotFleet",
        "StaticSite",
        "Lease",
        "UnauthorizedOperation",
    ] {
        assert!(events_joined.contains(expected), "Events with {expected}");
    }
    let objects: Vec<String> = run.objects.iter().map(ToString::to_string).collect();
    let objects_joined = objects.join("\n");
    for expected in ["\"Stalled\"", "LaunchBackoff", "\"Ready\""] {
        assert!(
            objects_joined.contains(expected),
            "a status with {expected}"
        );
    }

    eprintln!(
        "searched {} log lines, {} Events, {} object snapshots",
        run.logs.len(),
        events.len(),
        objects.len()
    );
    let mut found = leaks("a log line", &run.logs);
    found.extend(leaks("an Event", &events));
    found.extend(leaks("an object", &objects));
    assert!(
        found.is_empty(),
        "credentials leaked:\n{}",
        found.join("\n")
    );
    run.env.stop().await;
}

/// The SDK's `Debug` output redacts the secret and never prints the session token, before and
/// after the credentials were resolved; the access key id, an identifier AWS itself prints (in
/// CloudTrail, in error messages), is shown by `Credentials`' `Debug` only, which Stagehand
/// never logs (the test above proves it).
#[tokio::test]
async fn the_sdks_debug_output_redacts_the_secret_and_the_session_token() {
    let credentials = Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        Some(SESSION_TOKEN.to_owned()),
        None,
        "Environment",
    );
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(credentials.clone())
        .load()
        .await;
    let resolved = config
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(resolved.secret_access_key(), SECRET_ACCESS_KEY);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let outputs = [
        ("Credentials", format!("{resolved:?}")),
        ("Credentials, alternate", format!("{resolved:#?}")),
        ("SdkConfig", format!("{config:?}")),
        ("a Lambda client's config", format!("{:?}", lambda.config())),
    ];
    for (what, output) in &outputs {
        for secret in [SECRET_ACCESS_KEY, &SECRET_ACCESS_KEY[..8], SESSION_TOKEN] {
            assert!(!output.contains(secret), "{what} shows {secret}: {output}");
        }
    }
    assert!(outputs[0].1.contains("** redacted **"), "{}", outputs[0].1);
    assert!(outputs[0].1.contains(ACCESS_KEY_ID), "{}", outputs[0].1);
}
