use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use stagehand::aws::s3::Sha256Digest;

use super::{Env, REGION};

const BUCKET: &str = "site-bucket";

async fn versioned_bucket(env: &Env) {
    let s3 = env.s3_client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn head_reports_the_sha256_and_the_streamed_hash_equals_it() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    // 3 MiB: several body chunks, so the hash really is computed while streaming.
    let body: Vec<u8> = (0..3 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
    let expected = Sha256Digest::of(&body);

    let put = s3
        .put_object(
            BUCKET,
            "build/app.zip",
            body,
            Some("application/zip"),
            Some("no-cache"),
        )
        .await
        .unwrap();
    assert_eq!(
        put.checksum_sha256.as_deref(),
        Some(expected.to_base64().as_str())
    );

    let head = s3
        .head_object(BUCKET, "build/app.zip", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.sha256(), Some(expected));
    assert_eq!(head.size, Some(3 * 1024 * 1024));
    assert_eq!(head.version_id, put.version_id);
    assert!(head.e_tag.is_some() && head.last_modified.is_some());

    let streamed = s3
        .sha256_of_object(BUCKET, "build/app.zip", None)
        .await
        .unwrap();
    assert_eq!(streamed, expected);
    assert_eq!(streamed.to_base64(), head.checksum_sha256.unwrap());

    assert_eq!(
        s3.head_object(BUCKET, "missing.zip", None).await.unwrap(),
        None
    );
    env.report("s3 checksum");
}

#[tokio::test]
async fn objects_and_versions_are_listed_restored_and_deleted() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let first = s3
        .put_object(
            BUCKET,
            "index.html",
            b"<h1>one</h1>".to_vec(),
            Some("text/html"),
            None,
        )
        .await
        .unwrap();
    s3.put_object(
        BUCKET,
        "index.html",
        b"<h1>two</h1>".to_vec(),
        Some("text/html"),
        None,
    )
    .await
    .unwrap();
    s3.put_object(
        BUCKET,
        "assets/a b.css",
        b"body{}".to_vec(),
        Some("text/css"),
        None,
    )
    .await
    .unwrap();

    let mut keys: Vec<String> = s3
        .list_objects(BUCKET, None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["assets/a b.css", "index.html"]);
    let versions = s3
        .list_object_versions(BUCKET, Some("index"))
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions.iter().filter(|v| v.is_latest).count(), 1);

    // Rollback: the first version's content becomes the latest again.
    let restored = s3
        .restore_version(BUCKET, "index.html", first.version_id.as_deref().unwrap())
        .await
        .unwrap();
    assert!(restored.is_some());
    let head = s3
        .head_object(BUCKET, "index.html", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s3.sha256_of_object(BUCKET, "index.html", None)
            .await
            .unwrap(),
        Sha256Digest::of(b"<h1>one</h1>")
    );
    assert_eq!(head.version_id, restored);

    let failures = s3
        .delete_objects(BUCKET, &[("assets/a b.css".to_owned(), None)])
        .await
        .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let keys: Vec<String> = s3
        .list_objects(BUCKET, None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["index.html"]);
    env.report("s3 objects");
}
