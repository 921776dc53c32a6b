//! S3 objects and versions through `stagehand::aws::s3` against moto.

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use stagehand::aws::ErrorKind;
use stagehand::aws::s3::{
    ObjectCopy, ObjectMetadata, ObjectRef, ObjectUpload, Sha256Digest, UploadBody, VersionMarker,
};
use stagehand::base::{Classify, ErrorClass};
use tokio::io::AsyncReadExt as _;

use super::{Env, REGION, assert_proxy_names_every_call};

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

fn metadata(content_type: &str, cache_control: &str) -> ObjectMetadata {
    ObjectMetadata {
        content_type: Some(content_type.to_owned()),
        cache_control: Some(cache_control.to_owned()),
    }
}

/// 3 MiB: several body chunks, so hashing and reading really happen while streaming.
fn big_body() -> Vec<u8> {
    (0..3 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn head_reports_the_sha256_and_the_streamed_hash_equals_it() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let body = big_body();
    let expected = Sha256Digest::of(&body);

    let put = s3
        .put_bytes(
            BUCKET,
            "build/app.zip",
            body,
            metadata("application/zip", "no-cache"),
        )
        .await
        .unwrap();
    assert_eq!(put.sha256(), Some(expected));

    let head = s3
        .head_object(BUCKET, "build/app.zip", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.sha256(), Some(expected));
    assert_eq!(head.size, Some(3 * 1024 * 1024));
    assert_eq!(head.version_id, put.version_id);
    assert_eq!(head.content_type.as_deref(), Some("application/zip"));
    assert_eq!(head.cache_control.as_deref(), Some("no-cache"));
    assert!(head.e_tag.is_some() && head.last_modified.is_some());

    let streamed = s3
        .sha256_of_object(BUCKET, "build/app.zip", None)
        .await
        .unwrap();
    assert_eq!(streamed, expected);

    assert_eq!(
        s3.head_object(BUCKET, "missing.zip", None).await.unwrap(),
        None
    );
    env.report("s3 checksum");
}

#[tokio::test]
async fn a_file_is_uploaded_streaming_with_its_sha256_and_metadata() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let body = big_body();
    let path = std::env::temp_dir().join(format!("stagehand-s3-upload-{}.js", std::process::id()));
    std::fs::write(&path, &body).unwrap();
    let upload = ObjectUpload {
        key: "assets/app.3f9a.js".into(),
        sha256: Sha256Digest::of(&body),
        metadata: metadata("text/javascript", "public, max-age=31536000, immutable"),
        body: UploadBody::File(path.clone()),
    };

    let written = s3.put_object(BUCKET, &upload).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(written.version_id.is_some(), "{written:?}");
    assert_eq!(written.sha256(), Some(upload.sha256));

    let head = s3
        .head_object(BUCKET, &upload.key, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.sha256(), Some(upload.sha256));
    assert_eq!(head.version_id, written.version_id);
    assert_eq!(head.content_type, upload.metadata.content_type);
    assert_eq!(head.cache_control, upload.metadata.cache_control);
    let calls = env.floor.calls().await.unwrap();
    let put = calls.get("s3", "PutObject").unwrap();
    assert!(put.request_bytes >= body.len() as u64, "{put:?}");

    // A file that cannot be read is bad input, and nothing is sent.
    let missing = ObjectUpload {
        body: UploadBody::File(path),
        ..upload
    };
    let err = s3.put_object(BUCKET, &missing).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Validation, "{err}");
    assert_eq!(env.floor.calls().await.unwrap().count("s3", "PutObject"), 1);
}

#[tokio::test]
async fn a_metadata_change_is_a_copy_in_place_that_keeps_the_checksum() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let body = big_body();
    let first = s3
        .put_bytes(
            BUCKET,
            "index.html",
            body.clone(),
            metadata("text/html", "no-cache"),
        )
        .await
        .unwrap();

    let copied = s3
        .copy_object(
            BUCKET,
            &ObjectCopy {
                key: "index.html".into(),
                source: ObjectRef::latest("index.html"),
                metadata: Some(metadata("text/html; charset=utf-8", "max-age=60")),
            },
        )
        .await
        .unwrap();

    assert!(copied.version_id.is_some());
    assert_ne!(
        copied.version_id, first.version_id,
        "a copy is a new version"
    );
    assert_eq!(copied.sha256(), Some(Sha256Digest::of(&body)));
    let head = s3
        .head_object(BUCKET, "index.html", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.version_id, copied.version_id);
    assert_eq!(head.sha256(), Some(Sha256Digest::of(&body)));
    assert_eq!(head.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    // The content did not travel again: the copy request is headers only.
    let calls = env.floor.calls().await.unwrap();
    let copy = calls.get("s3", "CopyObject").unwrap();
    assert_eq!(copy.count, 1);
    assert!(copy.request_bytes < 4096, "{copy:?}");
    eprintln!(
        "[s3 copy in place] PutObject sent {} bytes, CopyObject {}",
        calls.get("s3", "PutObject").unwrap().request_bytes,
        copy.request_bytes
    );
    assert_proxy_names_every_call(&env, "s3").await;
}

#[tokio::test]
async fn objects_and_versions_are_listed_restored_and_deleted() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let first = s3
        .put_bytes(
            BUCKET,
            "index.html",
            "<h1>one</h1>",
            metadata("text/html", "no-cache"),
        )
        .await
        .unwrap();
    s3.put_bytes(
        BUCKET,
        "index.html",
        "<h1>two</h1>",
        metadata("text/plain", "max-age=5"),
    )
    .await
    .unwrap();
    s3.put_bytes(
        BUCKET,
        "assets/a b.css",
        "body{}",
        metadata("text/css", "max-age=60"),
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
    assert_eq!(versions.iter().filter(|v| v.is_current()).count(), 1);

    // Rollback: the first version becomes the latest again, content and metadata.
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
    assert_eq!(head.version_id, restored);
    assert_eq!(head.sha256(), Some(Sha256Digest::of(b"<h1>one</h1>")));
    assert_eq!(head.content_type.as_deref(), Some("text/html"));
    assert_eq!(head.cache_control.as_deref(), Some("no-cache"));

    // A version that does not exist cannot be restored: not found, retried later.
    let err = s3
        .restore_version(BUCKET, "index.html", "no-such-version")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.code.as_deref(), Some("NoSuchVersion"));

    let failures = s3
        .delete_objects(BUCKET, &[ObjectRef::latest("assets/a b.css")])
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
    // On a versioned bucket the delete left a marker, the latest "version" of the key.
    let css = s3
        .list_object_versions(BUCKET, Some("assets/"))
        .await
        .unwrap();
    assert_eq!(css.len(), 2, "{css:?}");
    assert!(css.iter().any(|v| v.delete_marker && v.is_latest));
    assert!(css.iter().all(|v| !v.is_current()));
    env.report("s3 objects");
}

#[tokio::test]
async fn listings_come_in_pages_with_what_a_sync_needs() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    for name in ["a", "b", "c", "d", "e"] {
        s3.put_bytes(
            BUCKET,
            &format!("site/{name}.html"),
            name.to_owned(),
            ObjectMetadata::default(),
        )
        .await
        .unwrap();
    }
    let mut keys = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_from(BUCKET, Some("site/"), token, 2)
            .await
            .unwrap();
        pages += 1;
        assert!(page.objects.len() <= 2);
        for object in &page.objects {
            assert!(
                object.e_tag.is_some() && object.size == Some(1),
                "{object:?}"
            );
            assert_eq!(object.checksum_algorithms, ["SHA256"], "{object:?}");
        }
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(keys.len(), 5);
    let (first, more) = s3.list_objects_page(BUCKET, "site/", 4).await.unwrap();
    assert_eq!((first.len(), more), (4, true));

    // Version ids come from the version listing, one page at a time too.
    let mut marker = VersionMarker::default();
    let mut versions = Vec::new();
    loop {
        let page = s3
            .list_object_versions_from(BUCKET, Some("site/"), marker, 2)
            .await
            .unwrap();
        versions.extend(page.versions);
        match page.next {
            Some(next) => marker = next,
            None => break,
        }
    }
    assert_eq!(versions.len(), 5);
    assert!(
        versions
            .iter()
            .all(|v| v.is_current() && v.version_id.is_some())
    );
    assert_eq!(
        env.floor
            .calls()
            .await
            .unwrap()
            .count("s3", "ListObjectVersions"),
        3
    );
}

#[tokio::test]
async fn downloads_stream_and_small_objects_are_bounded() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let body = big_body();
    let put = s3
        .put_bytes(
            BUCKET,
            "builds/site.zip",
            body.clone(),
            metadata("application/zip", "no-cache"),
        )
        .await
        .unwrap();

    let mut stream = s3
        .get_object_stream(BUCKET, "builds/site.zip", put.version_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.head.sha256(), Some(Sha256Digest::of(&body)));
    assert_eq!(stream.head.version_id, put.version_id);
    let mut read = Vec::new();
    stream.body.read_to_end(&mut read).await.unwrap();
    assert_eq!(Sha256Digest::of(&read), Sha256Digest::of(&body));

    let manifest = br#"{"index.html": "v1"}"#;
    s3.put_bytes(
        BUCKET,
        ".stagehand/revisions/r1.json",
        &manifest[..],
        ObjectMetadata::default(),
    )
    .await
    .unwrap();
    let small = s3
        .get_small_object(BUCKET, ".stagehand/revisions/r1.json", None, 1024)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&small.body[..], manifest);

    let err = s3
        .get_small_object(BUCKET, "builds/site.zip", None, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Validation, "{err}");
    assert!(err.message.contains("65536"), "{err}");

    assert!(
        s3.get_object_stream(BUCKET, "nope.zip", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s3.get_small_object("no-such-bucket", "m.json", None, 10)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn deletes_go_in_batches_of_a_thousand() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    let kept = s3
        .put_bytes(BUCKET, "keep.html", "keep", ObjectMetadata::default())
        .await
        .unwrap();
    let old = s3
        .put_bytes(BUCKET, "old.html", "old", ObjectMetadata::default())
        .await
        .unwrap();
    // 1,001 references: the real version among keys that never existed (S3 reports those
    // deleted too).
    let mut refs: Vec<ObjectRef> = (0..1000)
        .map(|i| ObjectRef::latest(format!("gone/{i}.js")))
        .collect();
    refs.push(ObjectRef::version(
        "old.html",
        old.version_id.clone().unwrap(),
    ));

    let failures = s3.delete_objects(BUCKET, &refs).await.unwrap();

    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        env.floor
            .calls()
            .await
            .unwrap()
            .count("s3", "DeleteObjects"),
        2
    );
    let versions = s3.list_object_versions(BUCKET, None).await.unwrap();
    assert!(versions.iter().all(|v| v.key != "old.html"), "{versions:?}");
    assert!(versions.iter().any(|v| v.version_id == kept.version_id));
}

#[tokio::test]
async fn an_emptied_bucket_is_deleted() {
    let env = Env::start().await;
    versioned_bucket(&env).await;
    let s3 = env.aws.s3(REGION);
    for round in 0..3 {
        s3.put_bytes(
            BUCKET,
            "index.html",
            format!("v{round}"),
            ObjectMetadata::default(),
        )
        .await
        .unwrap();
    }
    s3.put_bytes(BUCKET, "gone.css", "x", ObjectMetadata::default())
        .await
        .unwrap();
    s3.delete_objects(BUCKET, &[ObjectRef::latest("gone.css")])
        .await
        .unwrap();

    let err = s3.delete_bucket(BUCKET).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref()),
        (ErrorKind::Conflict, Some("BucketNotEmpty")),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Recoverable);

    let emptied = s3.empty_bucket(BUCKET).await.unwrap();
    // Three versions of index.html, gone.css and its delete marker.
    assert_eq!(emptied.deleted, 5, "{emptied:?}");
    assert!(emptied.failures.is_empty());
    assert!(
        s3.list_object_versions(BUCKET, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s3.delete_bucket(BUCKET).await.unwrap());
    assert_eq!(s3.head_bucket(BUCKET).await.unwrap(), None);
    assert!(!s3.delete_bucket(BUCKET).await.unwrap());
    assert_proxy_names_every_call(&env, "s3").await;
    env.report("s3 empty + delete bucket");
}
