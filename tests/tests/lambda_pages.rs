//! `ListFunctions` through the proxy comes in Lambda's pages (moto answers one page of every
//! function; `stagehand_testenv::aws::moto_lambda_pages`), read by the SDK's own paginator.

#![allow(clippy::unwrap_used)]

use aws_config::BehaviorVersion;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use futures::{StreamExt, stream};
use stagehand_testenv::aws::AwsFloor;

/// An empty but valid zip archive (end-of-central-directory record only).
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

async fn lambda(floor: &AwsFloor) -> aws_sdk_lambda::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(floor.endpoint_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "stagehand-testenv",
        ))
        .load()
        .await;
    aws_sdk_lambda::Client::new(&config)
}

async fn create(lambda: &aws_sdk_lambda::Client, role: &str, name: String) {
    lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .handler("index.handler")
        .role(role)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The names on each page of one paginated listing, `between` run after the first page.
async fn list_in_pages(
    lambda: &aws_sdk_lambda::Client,
    between: impl AsyncFnOnce(),
) -> Vec<Vec<String>> {
    let mut pages = lambda.list_functions().into_paginator().send();
    let mut names = Vec::new();
    let mut between = Some(between);
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        names.push(
            page.functions()
                .iter()
                .map(|f| f.function_name().unwrap().to_owned())
                .collect(),
        );
        if let Some(between) = between.take() {
            between().await;
        }
    }
    names
}

#[tokio::test]
async fn functions_are_listed_in_pages_of_fifty_and_a_new_one_shows_on_the_next_first_page() {
    let floor = AwsFloor::start().await.unwrap();
    let lambda = lambda(&floor).await;
    let role = floor.moto().create_lambda_role().await.unwrap();
    stream::iter((0..120).map(|i| create(&lambda, &role, format!("paged-{i:03}"))))
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
    floor.reset_calls().await.unwrap();

    // A function created while a listing pages through is not in that listing (it reads the
    // snapshot its first page took), as a consistent read of AWS would not have it either.
    let pages = list_in_pages(&lambda, async || {
        create(&lambda, &role, "paged-new".into()).await;
    })
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [50, 50, 20],
        "the SDK's paginator follows NextMarker over Lambda's 50-function pages"
    );
    let mut listed: Vec<String> = pages.concat();
    listed.sort();
    listed.dedup();
    let expected: Vec<String> = (0..120).map(|i| format!("paged-{i:03}")).collect();
    assert_eq!(listed, expected, "every function once, none twice");
    let calls = floor.calls().await.unwrap();
    assert_eq!(calls.count("lambda", "ListFunctions"), 3, "{calls:#?}");

    // The next first page takes a new snapshot: the write went through the proxy.
    let again = list_in_pages(&lambda, async || {}).await;
    assert_eq!(again.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 21]);
    assert!(again.concat().iter().any(|name| name == "paged-new"));

    // Lambda's own parameters: a smaller page, and refusals in Lambda's error.
    let small = lambda.list_functions().max_items(7).send().await.unwrap();
    assert_eq!(small.functions().len(), 7);
    assert!(small.next_marker().is_some());
    let refused = lambda
        .list_functions()
        .marker("not-a-marker")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("InvalidParameterValueException"));
}
