//! The resource types the stand-in serves: built-in kinds stored plainly, and kinds registered by
//! CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::FieldError;
use crate::schema::CelRules;

/// Group, version and plural of a resource type; the storage key of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub plural: String,
}

impl Gvr {
    pub fn new(group: &str, version: &str, plural: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
        }
    }

    /// `v1` or `stagehand.dev/v1alpha1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// Everything the server needs to know to serve one resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub gvr: Gvr,
    pub kind: String,
    pub list_kind: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// `metadata.generation` is maintained (custom resources, CRDs).
    pub uses_generation: bool,
    /// PUT without `metadata.resourceVersion` is allowed (built-ins) or rejected (custom resources).
    pub unconditional_update: bool,
    /// The `openAPIV3Schema` of a custom resource version.
    pub schema: Option<Arc<Value>>,
    /// The CEL rules of `schema`, compiled once when the CRD is registered.
    pub cel_rules: Option<Arc<CelRules>>,
    pub printer_columns: Vec<PrinterColumn>,
    /// The CRD (`plural.group`) that registered this type.
    pub crd_name: Option<String>,
}

impl ResourceType {
    /// `lambdastages.stagehand.dev` or `configmaps`.
    pub fn qualified_plural(&self) -> String {
        crate::error::qualified(&self.gvr.plural, &self.gvr.group)
    }

    pub fn api_version(&self) -> String {
        self.gvr.api_version()
    }

    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        short_names: &[&str],
    ) -> Self {
        Self {
            gvr: Gvr::new(group, version, plural),
            kind: kind.to_owned(),
            list_kind: format!("{kind}List"),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: short_names.iter().map(|s| (*s).to_owned()).collect(),
            categories: Vec::new(),
            status_subresource: false,
            uses_generation: false,
            unconditional_update: true,
            schema: None,
            cel_rules: None,
            printer_columns: Vec::new(),
            crd_name: None,
        }
    }
}

pub(crate) const CRD_GROUP: &str = "apiextensions.k8s.io";

/// The built-in kinds stored plainly.
pub fn builtin_types() -> Vec<ResourceType> {
    let mut namespaces = ResourceType::builtin("", "v1", "namespaces", "Namespace", false, &["ns"]);
    namespaces.status_subresource = true;
    let mut crds = ResourceType::builtin(
        CRD_GROUP,
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
    );
    crds.status_subresource = true;
    crds.uses_generation = true;
    crds.categories = vec!["api-extensions".to_owned()];
    vec![
        namespaces,
        ResourceType::builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
        ResourceType::builtin("", "v1", "secrets", "Secret", true, &[]),
        core_events(),
        ResourceType::builtin("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
        ResourceType::builtin("events.k8s.io", "v1", "events", "Event", true, &["ev"]),
        ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
        crds,
    ]
}

/// Core `v1` Events (served from `events.k8s.io/v1`'s storage, see [`crate::views`]) with the
/// columns `kubectl get events` shows: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
fn core_events() -> ResourceType {
    let mut events = ResourceType::builtin("", "v1", "events", "Event", true, &["ev"]);
    let column = |name: &str, type_: &str, json_path: &str, description: &str| PrinterColumn {
        name: name.to_owned(),
        type_: type_.to_owned(),
        format: String::new(),
        description: description.to_owned(),
        priority: 0,
        json_path: json_path.to_owned(),
    };
    events.printer_columns = vec![
        column(
            "Last Seen",
            "date",
            ".lastTimestamp",
            "When the event was last seen",
        ),
        column("Type", "string", ".type", "Normal or Warning"),
        column("Reason", "string", ".reason", "Why the event was emitted"),
        column(
            "Object",
            "string",
            ".involvedObject.name",
            "The object it is about",
        ),
        column("Message", "string", ".message", "What happened"),
    ];
    events
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a CRD the way the apiextensions validation does (the parts that matter here) and
/// returns the resource types of its served versions.
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = str_at(crd, "/metadata/name").unwrap_or_default();
    let group = str_at(crd, "/spec/group").unwrap_or_default();
    let plural = str_at(crd, "/spec/names/plural").unwrap_or_default();
    let kind = str_at(crd, "/spec/names/kind").unwrap_or_default();
    let scope = str_at(crd, "/spec/scope").unwrap_or_default();
    if group.is_empty() {
        errors.push(FieldError::required("spec.group", ""));
    }
    if plural.is_empty() {
        errors.push(FieldError::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        errors.push(FieldError::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            Value::String(name.to_owned()),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if scope != "Namespaced" && scope != "Cluster" {
        errors.push(FieldError::new(
            "spec.scope",
            crate::error::FieldErrorKind::NotSupported,
            Some(Value::String(scope.to_owned())),
            "supported values: \"Cluster\", \"Namespaced\"",
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errors.push(FieldError::invalid(
            "spec.versions",
            Value::Array(versions.clone()),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut types = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let vname = version
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if vname.is_empty() {
            errors.push(FieldError::required(format!("spec.versions[{i}].name"), ""));
            continue;
        }
        let schema = version
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .filter(Value::is_object);
        let cel_rules = schema.as_ref().map(CelRules::new);
        if let Some(rules) = &cel_rules {
            for e in rules.root_compilation_errors() {
                errors.push(FieldError::invalid(
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    Value::String("x-kubernetes-validations".to_owned()),
                    format!("compilation failed: {e}"),
                ));
            }
        } else {
            errors.push(FieldError::required(
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: c
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        type_: c
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("string")
                            .to_owned(),
                        format: c
                            .get("format")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        description: c
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: c
                            .get("jsonPath")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        types.push(ResourceType {
            gvr: Gvr::new(group, vname, plural),
            kind: kind.to_owned(),
            list_kind: str_at(crd, "/spec/names/listKind")
                .map_or_else(|| format!("{kind}List"), str::to_owned),
            singular: str_at(crd, "/spec/names/singular")
                .map_or_else(|| kind.to_lowercase(), str::to_owned),
            namespaced: scope == "Namespaced",
            short_names: strings_at(crd, "/spec/names/shortNames"),
            categories: strings_at(crd, "/spec/names/categories"),
            status_subresource: version.pointer("/subresources/status").is_some(),
            uses_generation: true,
            unconditional_update: false,
            schema: schema.map(Arc::new),
            cel_rules: cel_rules.map(Arc::new),
            printer_columns,
            crd_name: Some(name.to_owned()),
        });
    }
    if errors.is_empty() {
        Ok(types)
    } else {
        Err(errors)
    }
}

/// The served resource types, by group/version/plural.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    types: BTreeMap<Gvr, Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Self::default();
        for t in builtin_types() {
            r.insert(t);
        }
        r
    }

    pub fn insert(&mut self, t: ResourceType) {
        self.types.insert(t.gvr.clone(), Arc::new(t));
    }

    pub fn get(&self, gvr: &Gvr) -> Option<Arc<ResourceType>> {
        self.types.get(gvr).cloned()
    }

    /// Removes every type registered by the CRD `crd_name`; returns their keys.
    pub fn remove_crd(&mut self, crd_name: &str) -> Vec<Gvr> {
        let keys: Vec<Gvr> = self
            .types
            .values()
            .filter(|t| t.crd_name.as_deref() == Some(crd_name))
            .map(|t| t.gvr.clone())
            .collect();
        for k in &keys {
            self.types.remove(k);
        }
        keys
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Whether any type is served in this group/version.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .keys()
            .any(|g| g.group == group && g.version == version)
    }
}
