//! What an S3, CloudTrail or heartbeat event asks for, decided without I/O (EC2 events:
//! [`super::effect`]). The consumer carries it out: S3 listings and Lambda entries of the
//! inventory are dropped so the reconcile reads AWS afresh for exactly what changed, and the
//! objects concerned — found through their declared watches or the owner tag — reconcile now.
//!
//! Stagehand's own writes come back as CloudTrail events too; answering them would double every
//! round. A call whose `userIdentity.arn` is Stagehand's identity (`--event-feed-identity`) is
//! ignored. Roles are compared as roles: CloudTrail names an assumed role by its session
//! (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) and sessions are renamed on every
//! credential refresh (IRSA, Pod Identity).

use super::demand::Watched;
use super::event::{ApiCall, ApiResource, ApiService, Detail, Event};

/// What one event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new or deleted object: every listing covering it is stale, and the objects watching it
    /// look now.
    Object {
        region: String,
        bucket: String,
        key: String,
    },
    /// Someone else created, changed or deleted a Lambda function: it (configuration, tags,
    /// aliases) is read on its own again, and its owner and the stages whose selector covers
    /// its name reconcile now.
    Function { region: String, function: String },
    /// Someone else wrote to an event-source mapping: the mappings are listed again and the
    /// owner of its function reconciles now.
    Mapping {
        region: String,
        uuid: String,
        function: Option<String>,
    },
    /// Someone else published or deleted a version of a layer: its listing is dropped and the
    /// objects using it look now.
    Layer { region: String, layer: String },
    /// Someone else wrote to a bucket's configuration or a distribution: its watchers look now.
    /// `region` is `None` for CloudFront (global; its calls are recorded in us-east-1).
    Watched {
        region: Option<String>,
        watched: Watched,
    },
    /// Proof that events arrive; nothing to do.
    Heartbeat,
}

/// What `event` asks for; `None` for EC2 events (see [`super::effect`]), failed calls, calls
/// Stagehand made itself (`identity`), and calls that name nothing Stagehand maps.
pub fn change(event: &Event, identity: Option<&str>) -> Option<Change> {
    match &event.detail {
        Detail::ObjectCreated { bucket, key } | Detail::ObjectDeleted { bucket, key } => {
            Some(Change::Object {
                region: event.envelope.region.clone(),
                bucket: bucket.clone(),
                key: key.clone(),
            })
        }
        Detail::ApiCall(call) => api_change(call, identity),
        Detail::Heartbeat => Some(Change::Heartbeat),
        Detail::SpotInterruptionWarning { .. }
        | Detail::RebalanceRecommendation { .. }
        | Detail::StateChange { .. }
        | Detail::Health { .. } => None,
    }
}

fn api_change(call: &ApiCall, identity: Option<&str>) -> Option<Change> {
    if call.failed {
        return None;
    }
    if let (Some(caller), Some(identity)) = (&call.caller, identity)
        && same_principal(caller, identity)
    {
        return None;
    }
    let region = call.region.clone();
    Some(match (call.service, call.resource.clone()?) {
        (ApiService::Lambda, ApiResource::Function(function)) => {
            Change::Function { region, function }
        }
        (ApiService::Lambda, ApiResource::Mapping { uuid, function }) => Change::Mapping {
            region,
            uuid,
            function,
        },
        (ApiService::Lambda, ApiResource::Layer(layer)) => Change::Layer { region, layer },
        (ApiService::S3, ApiResource::Bucket(bucket)) => Change::Watched {
            region: Some(region),
            watched: Watched::Bucket(bucket),
        },
        (ApiService::CloudFront, ApiResource::Distribution(id)) => Change::Watched {
            region: None,
            watched: Watched::Distribution(id),
        },
        _ => return None,
    })
}

/// Whether two IAM ARNs name the same principal: equal, or the same role (an assumed-role
/// session of it, whatever the session's name).
pub fn same_principal(a: &str, b: &str) -> bool {
    a == b || role_of(a).is_some_and(|role| role_of(b) == Some(role))
}

/// `(account, role name)` of a role ARN (`arn:aws:iam::<account>:role/<path/><name>`) or of
/// an assumed-role session (`arn:aws:sts::<account>:assumed-role/<name>/<session>`).
fn role_of(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some(service), Some(_region), Some(account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let name = match service {
        "iam" => rest.strip_prefix("role/")?.rsplit('/').next()?,
        "sts" => rest.strip_prefix("assumed-role/")?.split('/').next()?,
        _ => return None,
    };
    Some((account, name))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::feed::event::parse;
    use crate::feed::event::tests::{ALICE, api_call, interruption_warning, object_created};

    const ROLE: &str = "arn:aws:iam::123456789012:role/controllers/stagehand";

    fn lambda_call(caller: &str, event_name: &str, request: &serde_json::Value) -> Event {
        parse(&api_call("aws.lambda", event_name, caller, request).to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn changes_table() {
        let function = |name: &str| {
            Some(Change::Function {
                region: "us-east-1".into(),
                function: name.into(),
            })
        };
        let session = "arn:aws:sts::123456789012:assumed-role/stagehand/web-identity-1700000000";
        let alias = json!({"functionName": "shop-api", "name": "live"});
        let rows: Vec<(Event, Option<&str>, Option<Change>)> = vec![
            (
                lambda_call(ALICE, "UpdateAlias20150331", &alias),
                Some(ROLE),
                function("shop-api"),
            ),
            (
                lambda_call(ALICE, "UpdateAlias20150331", &alias),
                None,
                function("shop-api"),
            ),
            // Stagehand's own write, under a session of its role: no second round.
            (
                lambda_call(session, "UpdateAlias20150331", &alias),
                Some(ROLE),
                None,
            ),
            (
                lambda_call(ALICE, "UpdateAlias20150331", &alias),
                Some(ALICE),
                None,
            ),
            (
                lambda_call(
                    ALICE,
                    "DeleteEventSourceMapping20150331",
                    &json!({"uUID": "u-1"}),
                ),
                Some(ROLE),
                Some(Change::Mapping {
                    region: "us-east-1".into(),
                    uuid: "u-1".into(),
                    function: None,
                }),
            ),
            (
                lambda_call(
                    ALICE,
                    "PublishLayerVersion20181031",
                    &json!({"layerName": "deps"}),
                ),
                Some(ROLE),
                Some(Change::Layer {
                    region: "us-east-1".into(),
                    layer: "deps".into(),
                }),
            ),
            (
                lambda_call(ALICE, "ListFunctions20150331", &serde_json::Value::Null),
                Some(ROLE),
                None,
            ),
            (
                parse(&object_created("builds", "api/app.zip").to_string())
                    .unwrap_or_else(|e| panic!("{e}")),
                Some(ROLE),
                Some(Change::Object {
                    region: "us-east-1".into(),
                    bucket: "builds".into(),
                    key: "api/app.zip".into(),
                }),
            ),
            (
                parse(&interruption_warning("i-0123456789abcdef0").to_string())
                    .unwrap_or_else(|e| panic!("{e}")),
                Some(ROLE),
                None,
            ),
        ];
        for (event, identity, want) in rows {
            assert_eq!(change(&event, identity), want, "{event:?} as {identity:?}");
        }
        let mut failed = api_call("aws.lambda", "UpdateAlias20150331", ALICE, &alias);
        failed["detail"]["errorCode"] = json!("ResourceConflictException");
        let failed = parse(&failed.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(change(&failed, None), None, "a failed call changed nothing");
        let distribution = parse(
            &api_call(
                "aws.cloudfront",
                "UpdateDistribution2020_05_31",
                ALICE,
                &json!({"id": "E1"}),
            )
            .to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            change(&distribution, None),
            Some(Change::Watched {
                region: None,
                watched: Watched::Distribution("E1".into())
            })
        );
    }

    #[test]
    fn roles_are_compared_as_roles() {
        let session = "arn:aws:sts::123456789012:assumed-role/stagehand/s-2";
        assert!(same_principal(session, ROLE));
        assert!(same_principal(
            session,
            "arn:aws:sts::123456789012:assumed-role/stagehand/s-1"
        ));
        assert!(!same_principal(
            "arn:aws:sts::123456789012:assumed-role/other/s-1",
            ROLE
        ));
        assert!(!same_principal(
            "arn:aws:sts::210987654321:assumed-role/stagehand/s-1",
            ROLE
        ));
        assert!(!same_principal(ALICE, ROLE));
        assert!(same_principal(ALICE, ALICE));
    }
}
