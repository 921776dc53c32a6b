//! What each client asked of the API, in RBAC's terms: (API group, resource[/subresource], verb,
//! namespace), recorded for every request that comes in through a named door
//! ([`crate::TestApiServer::client_door`]). The stand-in authorises nothing, so a test compares
//! these records with the Roles a chart grants instead: a request RBAC would refuse, or a grant
//! nobody used, shows up there.

use std::collections::BTreeSet;

use axum::http::Method;

/// The name of the client behind a door; requests through the server's own port have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(pub String);

/// One request as an authorizer sees it (Kubernetes' `authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub client: String,
    pub verb: String,
    /// `""` for the core group.
    pub group: String,
    /// `lambdastages`, or `lambdastages/status` for a subresource; the path for non-resource
    /// requests (`/version`, `/apis`).
    pub resource: String,
    /// `None` for cluster-scoped requests (cluster-scoped kinds, or every namespace at once).
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// A non-resource URL (discovery, `/version`): authorised by `nonResourceURLs` rules.
    pub non_resource: bool,
}

impl Access {
    /// The RBAC verb of a resource request, as the apiserver derives it from the method.
    pub fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
        match *method {
            Method::GET | Method::HEAD if watch => "watch",
            Method::GET | Method::HEAD if named => "get",
            Method::GET | Method::HEAD => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if named => "delete",
            Method::DELETE => "deletecollection",
            _ => "unknown",
        }
    }

    /// `(group, resource, verb, namespaced)`: what RBAC rules are written in.
    pub fn grant(&self) -> (String, String, String, bool) {
        (
            self.group.clone(),
            self.resource.clone(),
            self.verb.clone(),
            self.namespace.is_some(),
        )
    }
}

/// The distinct grants a client's requests needed.
pub fn grants(accesses: &[Access]) -> BTreeSet<(String, String, String, bool)> {
    accesses.iter().map(Access::grant).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_the_apiserver() {
        assert_eq!(Access::verb(&Method::GET, false, true), "watch");
        assert_eq!(Access::verb(&Method::GET, true, false), "get");
        assert_eq!(Access::verb(&Method::GET, false, false), "list");
        assert_eq!(Access::verb(&Method::POST, false, false), "create");
        assert_eq!(Access::verb(&Method::PUT, true, false), "update");
        assert_eq!(Access::verb(&Method::PATCH, true, false), "patch");
        assert_eq!(Access::verb(&Method::DELETE, true, false), "delete");
        assert_eq!(
            Access::verb(&Method::DELETE, false, false),
            "deletecollection"
        );
    }

    #[tokio::test]
    async fn a_named_door_records_what_its_client_asked_for() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::api::{Api, ListParams, Patch, PatchParams};

        let server = crate::TestApiServer::start().await.unwrap();
        let door = server.client_door("robot").await.unwrap();
        let mut config = kube::Config::new(door.url().parse().unwrap());
        "default".clone_into(&mut config.default_namespace);
        let client = kube::Client::try_from(config).unwrap();
        // The server's own port is not recorded.
        server.create_namespace("team-a").await.unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
        let cm =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        cms.patch("x", &PatchParams::apply("robot"), &Patch::Apply(&cm))
            .await
            .unwrap();
        Api::<ConfigMap>::all(client)
            .list(&ListParams::default())
            .await
            .unwrap();
        let seen: Vec<(String, String, String, Option<String>)> = server
            .accesses()
            .into_iter()
            .map(|a| (a.client, a.verb, a.resource, a.namespace))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "robot".into(),
                    "patch".into(),
                    "configmaps".into(),
                    Some("team-a".into())
                ),
                ("robot".into(), "list".into(), "configmaps".into(), None),
            ]
        );
    }
}
