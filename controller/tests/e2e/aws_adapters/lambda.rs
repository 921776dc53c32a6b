use std::collections::BTreeMap;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, LayerVersionContentInput, Runtime};
use stagehand::aws::lambda::{
    AliasTarget, CodeSource, ConfigUpdate, MappingSettings, merged_environment, with_layer,
};
use stagehand::aws::s3::Sha256Digest;
use stagehand::aws::tags::{OWNER_TAG, ownership_tags};
use stagehand::aws::{Ownership, ownership};

use super::{Env, REGION, create_role, deterministic_zip};

const BUCKET: &str = "artifacts";
const ME: &str = "shop/LambdaStage/dev";
const CLUSTER: &str = "test-cluster";

fn zip(version: &str) -> Vec<u8> {
    deterministic_zip(&[(
        "index.py",
        format!("def handler(event, context):\n    return {version:?}\n").as_bytes(),
    )])
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A bucket with `v1.zip` and `v2.zip`, a role, and `names` created from `v1.zip`.
pub(crate) async fn seed_functions(env: &Env, names: &[&str], tags: &BTreeMap<String, String>) {
    let role = create_role(env, "lambda-role").await;
    env.s3_client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let s3 = env.aws.s3(REGION);
    for version in ["v1", "v2"] {
        s3.put_bytes(
            BUCKET,
            &format!("{version}.zip"),
            zip(version),
            stagehand::aws::s3::ObjectMetadata::default(),
        )
        .await
        .unwrap();
    }
    for name in names {
        env.lambda_client()
            .create_function()
            .function_name(*name)
            .runtime(Runtime::Python312)
            .role(&role)
            .handler("index.handler")
            .code(
                FunctionCode::builder()
                    .s3_bucket(BUCKET)
                    .s3_key("v1.zip")
                    .build(),
            )
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .unwrap();
    }
}

async fn publish_layer(env: &Env, name: &str) -> String {
    env.lambda_client()
        .publish_layer_version()
        .layer_name(name)
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(deterministic_zip(&[(
                    "python/x.py",
                    name.as_bytes(),
                )])))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .layer_version_arn()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn functions_are_listed_with_code_hash_and_code_updates_change_only_that_function() {
    let env = Env::start().await;
    seed_functions(
        &env,
        &["shop-dev-api", "shop-dev-worker", "shop-dev-cron"],
        &BTreeMap::new(),
    )
    .await;
    let lambda = env.aws.lambda(REGION);

    let listed = lambda.list_functions().await.unwrap();
    let v1 = Sha256Digest::of(&zip("v1")).to_base64();
    let mut names: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["shop-dev-api", "shop-dev-cron", "shop-dev-worker"]);
    for function in &listed {
        assert_eq!(
            function.code_sha256.as_deref(),
            Some(v1.as_str()),
            "{}",
            function.name
        );
        assert_eq!(function.runtime.as_deref(), Some("python3.12"));
        assert_eq!(function.handler.as_deref(), Some("index.handler"));
        assert_eq!(function.package_type.as_deref(), Some("Zip"));
        assert!(
            function
                .arn
                .ends_with(&format!(":function:{}", function.name))
        );
        assert!(!function.update_in_progress());
    }
    assert_eq!(env.calls("lambda", "ListFunctions", "success"), 1);

    let updated = lambda
        .update_function_code(
            "shop-dev-api",
            &CodeSource::S3 {
                bucket: BUCKET.into(),
                key: "v2.zip".into(),
                version_id: None,
            },
            None,
        )
        .await
        .unwrap();
    let v2 = Sha256Digest::of(&zip("v2")).to_base64();
    assert_eq!(updated.code_sha256.as_deref(), Some(v2.as_str()));

    let after: BTreeMap<String, Option<String>> = lambda
        .list_functions()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.code_sha256))
        .collect();
    assert_eq!(after["shop-dev-api"].as_deref(), Some(v2.as_str()));
    assert_eq!(after["shop-dev-worker"].as_deref(), Some(v1.as_str()));
    assert_eq!(after["shop-dev-cron"].as_deref(), Some(v1.as_str()));
    assert_eq!(env.calls("lambda", "UpdateFunctionCode", "success"), 1);
    env.report("lambda code");
}

#[tokio::test]
async fn layers_keep_their_order_and_environment_and_config_change_only_given_fields() {
    let env = Env::start().await;
    seed_functions(&env, &["shop-dev-api"], &BTreeMap::new()).await;
    let lambda = env.aws.lambda(REGION);
    let shared_v1 = publish_layer(&env, "shared").await;
    let other = publish_layer(&env, "datadog").await;
    let shared_v2 = publish_layer(&env, "shared").await;

    let latest = lambda
        .latest_layer_version("shared")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.arn, shared_v2);
    assert_eq!(latest.version, 2);
    assert_eq!(
        lambda.latest_layer_version("no-such-layer").await.unwrap(),
        None
    );

    // Someone attached [datadog, shared:1]; a deploy tool set the environment.
    lambda
        .update_function_configuration(
            "shop-dev-api",
            &ConfigUpdate {
                layers: Some(vec![other.clone(), shared_v1.clone()]),
                environment: Some(map(&[("LOG_LEVEL", "debug"), ("DD_API_KEY", "ops")])),
                ..ConfigUpdate::default()
            },
        )
        .await
        .unwrap();

    let deployed = lambda
        .get_function("shop-dev-api")
        .await
        .unwrap()
        .unwrap()
        .function;
    assert_eq!(deployed.layers, [other.clone(), shared_v1.clone()]);
    let layers = with_layer(&deployed.layers, &latest.arn);
    let environment = merged_environment(
        &deployed.environment,
        &map(&[("LOG_LEVEL", "info"), ("STAGE", "dev")]),
    );
    lambda
        .update_function_configuration(
            "shop-dev-api",
            &ConfigUpdate {
                layers: Some(layers),
                environment: Some(environment),
                ..ConfigUpdate::default()
            },
        )
        .await
        .unwrap();

    // Only the memory: layers, environment, handler stay as they are.
    lambda
        .update_function_configuration(
            "shop-dev-api",
            &ConfigUpdate {
                memory_mb: Some(512),
                ..ConfigUpdate::default()
            },
        )
        .await
        .unwrap();

    let listed = lambda.list_functions().await.unwrap();
    let function = listed.iter().find(|f| f.name == "shop-dev-api").unwrap();
    assert_eq!(
        function.layers,
        [other, shared_v2],
        "shared replaced in place, datadog kept first"
    );
    assert_eq!(
        function.environment,
        map(&[
            ("DD_API_KEY", "ops"),
            ("LOG_LEVEL", "info"),
            ("STAGE", "dev")
        ])
    );
    assert_eq!(function.memory_mb, Some(512));
    assert_eq!(function.handler.as_deref(), Some("index.handler"));
    env.report("lambda layers/env");
}

#[tokio::test]
async fn tags_decide_ownership() {
    let env = Env::start().await;
    seed_functions(&env, &["untagged"], &BTreeMap::new()).await;
    let role = create_role(&env, "other-role").await;
    for (name, owner) in [("ours", ME), ("theirs", "shop/LambdaStage/prod")] {
        env.lambda_client()
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(&role)
            .handler("index.handler")
            .code(
                FunctionCode::builder()
                    .s3_bucket(BUCKET)
                    .s3_key("v1.zip")
                    .build(),
            )
            .tags(OWNER_TAG, owner)
            .send()
            .await
            .unwrap();
    }
    let lambda = env.aws.lambda(REGION);

    let owner_of = |name: &'static str| {
        let lambda = lambda.clone();
        async move {
            let details = lambda.get_function(name).await.unwrap().unwrap();
            ownership(&details.tags, ME, CLUSTER)
        }
    };
    assert_eq!(owner_of("ours").await, Ownership::Ours);
    assert_eq!(owner_of("untagged").await, Ownership::Untagged);
    assert_eq!(
        owner_of("theirs").await,
        Ownership::OtherOwner("shop/LambdaStage/prod".into())
    );

    // Adopting: tag it, and it is ours.
    let arn = lambda
        .get_function("untagged")
        .await
        .unwrap()
        .unwrap()
        .function
        .arn;
    lambda
        .tag_resource(&arn, &ownership_tags(ME, CLUSTER))
        .await
        .unwrap();
    let tags = lambda.list_tags(&arn).await.unwrap();
    assert_eq!(ownership(&tags, ME, CLUSTER), Ownership::Ours);
    assert_eq!(
        tags.get("stagehand.dev/cluster").map(String::as_str),
        Some(CLUSTER)
    );

    assert_eq!(lambda.get_function("no-such-function").await.unwrap(), None);
    env.report("lambda tags");
}

#[tokio::test]
async fn mappings_are_found_by_function_and_source_and_updated_in_place() {
    let env = Env::start().await;
    seed_functions(&env, &["shop-dev-worker", "shop-dev-api"], &BTreeMap::new()).await;
    let sqs_client = aws_sdk_sqs::Client::new(&env.sdk);
    let mut queue_arns = Vec::new();
    for name in ["orders", "refunds"] {
        let url = sqs_client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let queue = env
            .aws
            .sqs(REGION)
            .queue_attributes(&url)
            .await
            .unwrap()
            .unwrap();
        queue_arns.push(queue.arn);
    }
    let (orders, refunds) = (&queue_arns[0], &queue_arns[1]);
    let lambda = env.aws.lambda(REGION);

    assert_eq!(
        lambda
            .find_event_source_mapping("shop-dev-worker", orders)
            .await
            .unwrap(),
        None
    );
    let created = lambda
        .create_event_source_mapping(
            "shop-dev-worker",
            orders,
            &MappingSettings {
                batch_size: Some(10),
                enabled: Some(true),
                ..MappingSettings::default()
            },
            &ownership_tags("shop/LambdaStage/dev", "c1"),
        )
        .await
        .unwrap();
    // Tags given at creation are on the mapping (its ARN, as Lambda builds it).
    let mapping_arn = format!(
        "arn:aws:lambda:{REGION}:123456789012:event-source-mapping:{}",
        created.uuid
    );
    assert_eq!(
        lambda.list_tags(&mapping_arn).await.unwrap(),
        ownership_tags("shop/LambdaStage/dev", "c1")
    );
    let untagged = lambda
        .create_event_source_mapping(
            "shop-dev-worker",
            refunds,
            &MappingSettings::default(),
            &BTreeMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        lambda
            .list_tags(&format!(
                "arn:aws:lambda:{REGION}:123456789012:event-source-mapping:{}",
                untagged.uuid
            ))
            .await
            .unwrap(),
        BTreeMap::new()
    );
    lambda
        .create_event_source_mapping(
            "shop-dev-api",
            orders,
            &MappingSettings::default(),
            &BTreeMap::new(),
        )
        .await
        .unwrap();

    let found = lambda
        .find_event_source_mapping("shop-dev-worker", orders)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.uuid, created.uuid);
    assert_eq!(found.event_source_arn.as_deref(), Some(orders.as_str()));
    assert_eq!(found.batch_size, Some(10));
    assert_eq!(found.enabled(), Some(true));
    assert_eq!(
        lambda
            .list_event_source_mappings("shop-dev-worker", None)
            .await
            .unwrap()
            .len(),
        2
    );

    let updated = lambda
        .update_event_source_mapping(
            &found.uuid,
            &MappingSettings {
                batch_size: Some(5),
                enabled: Some(false),
                ..MappingSettings::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.uuid, created.uuid);
    let again = lambda
        .find_event_source_mapping("shop-dev-worker", orders)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.uuid.as_str(), again.batch_size, again.enabled()),
        (created.uuid.as_str(), Some(5), Some(false))
    );

    lambda
        .delete_event_source_mapping(&created.uuid)
        .await
        .unwrap();
    assert_eq!(
        lambda
            .find_event_source_mapping("shop-dev-worker", orders)
            .await
            .unwrap(),
        None
    );
    // Deleting twice is not an error.
    lambda
        .delete_event_source_mapping(&created.uuid)
        .await
        .unwrap();
    env.report("lambda mappings");
}

#[tokio::test]
async fn versions_are_published_and_aliases_carry_weights() {
    let env = Env::start().await;
    seed_functions(&env, &["shop-dev-api"], &BTreeMap::new()).await;
    let lambda = env.aws.lambda(REGION);
    let v1_hash = Sha256Digest::of(&zip("v1")).to_base64();

    let first = lambda
        .publish_version("shop-dev-api", Some(&v1_hash), Some("build 1"))
        .await
        .unwrap();
    assert_eq!(first.version, "1");
    assert_eq!(first.code_sha256.as_deref(), Some(v1_hash.as_str()));
    lambda
        .update_function_code(
            "shop-dev-api",
            &CodeSource::S3 {
                bucket: BUCKET.into(),
                key: "v2.zip".into(),
                version_id: None,
            },
            None,
        )
        .await
        .unwrap();
    let v2_hash = Sha256Digest::of(&zip("v2")).to_base64();
    let second = lambda
        .publish_version("shop-dev-api", Some(&v2_hash), None)
        .await
        .unwrap();
    assert_eq!(second.version, "2");

    let versions: BTreeMap<String, Option<String>> = lambda
        .list_versions("shop-dev-api")
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version.unwrap_or_default(), v.code_sha256))
        .collect();
    assert_eq!(versions["1"].as_deref(), Some(v1_hash.as_str()));
    assert_eq!(versions["2"].as_deref(), Some(v2_hash.as_str()));

    assert_eq!(
        lambda.get_alias("shop-dev-api", "live").await.unwrap(),
        None
    );
    let created = lambda
        .create_alias(
            "shop-dev-api",
            "live",
            &AliasTarget {
                function_version: "1".into(),
                routing_weights: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(created.function_version, "1");
    // Canary: 10% to version 2.
    lambda
        .update_alias(
            "shop-dev-api",
            "live",
            &AliasTarget {
                function_version: "1".into(),
                routing_weights: BTreeMap::from([("2".to_owned(), 0.1)]),
            },
            None,
        )
        .await
        .unwrap();
    let canary = lambda
        .get_alias("shop-dev-api", "live")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(canary.function_version, "1");
    assert_eq!(
        canary.routing_weights,
        BTreeMap::from([("2".to_owned(), 0.1)])
    );
    // Promotion: all traffic to 2, canary removed.
    lambda
        .update_alias(
            "shop-dev-api",
            "live",
            &AliasTarget {
                function_version: "2".into(),
                routing_weights: BTreeMap::new(),
            },
            None,
        )
        .await
        .unwrap();
    let promoted = lambda
        .get_alias("shop-dev-api", "live")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(promoted.function_version, "2");
    assert!(promoted.routing_weights.is_empty(), "{promoted:?}");
    env.report("lambda versions/aliases");
}

#[tokio::test]
async fn owner_tags_are_accepted_by_lambda_as_written() {
    let env = Env::start().await;
    seed_functions(
        &env,
        &["f"],
        &map(&[(OWNER_TAG, ME), ("stagehand.dev/cluster", CLUSTER)]),
    )
    .await;
    let details = env
        .aws
        .lambda(REGION)
        .get_function("f")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ownership(&details.tags, ME, CLUSTER), Ownership::Ours);
    assert_eq!(
        ownership(&details.tags, ME, "another-cluster"),
        Ownership::OtherOwner(format!("{ME} (cluster {CLUSTER})"))
    );
}
