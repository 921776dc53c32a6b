//! Reads the LambdaStage, SpotFleet and StaticSite documents of a manifest file (`kubectl
//! apply -f` style: YAML, one or more documents separated by `---`), each admitted as the API
//! server would admit it (schema, CEL rules, defaults).

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use stagehand_crds::validation::{self, CelRules};
use stagehand_crds::{LambdaStage, SpotFleet, StaticSite};

/// Namespace of a manifest without `metadata.namespace` (as kubectl's default context).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The kinds `plan` and `apply` read, as error messages name them.
const KINDS: &str = "LambdaStage, SpotFleet or StaticSite";

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("{path}, document {index}: {message}")]
    Document {
        path: String,
        index: usize,
        message: String,
    },
    #[error("{path} has no LambdaStage, SpotFleet or StaticSite document")]
    Empty { path: String },
}

/// The schema and CEL rules of each kind, compiled once for every document of the run.
static STAGE_RULES: OnceLock<Option<CelRules>> = OnceLock::new();
static FLEET_RULES: OnceLock<Option<CelRules>> = OnceLock::new();
static SITE_RULES: OnceLock<Option<CelRules>> = OnceLock::new();

/// One object of the manifest, of a kind `plan` and `apply` handle.
#[derive(Clone, Debug)]
pub enum Document {
    LambdaStage(Box<LambdaStage>),
    SpotFleet(Box<SpotFleet>),
    StaticSite(Box<StaticSite>),
}

/// The LambdaStages, SpotFleets and StaticSites of the file at `path` (`-`: stdin), in file
/// order, each with a namespace (`default` when the document has none). Anything else is
/// refused as not a Stagehand kind.
pub fn read_documents(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let shown = path.display().to_string();
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|source| ManifestError::Read {
                path: "stdin".to_owned(),
                source,
            })?
    } else {
        std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: shown.clone(),
            source,
        })?
    };
    parse_documents(&shown, &text)
}

/// [`read_documents`] on text already read.
pub fn parse_documents(path: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let index = index + 1;
        let refuse = |message: String| ManifestError::Document {
            path: path.to_owned(),
            index,
            message,
        };
        if document.is_null() {
            continue;
        }
        let kind = document["kind"].as_str().unwrap_or_default().to_owned();
        let api_version = document["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stagehand_api = api_version.starts_with("stagehand.dev/");
        let object = match kind.as_str() {
            "LambdaStage" if stagehand_api => Document::LambdaStage(Box::new(
                admit_as::<LambdaStage>(&STAGE_RULES, &kind, &document).map_err(refuse)?,
            )),
            "SpotFleet" if stagehand_api => Document::SpotFleet(Box::new(
                admit_as::<SpotFleet>(&FLEET_RULES, &kind, &document).map_err(refuse)?,
            )),
            "StaticSite" if stagehand_api => Document::StaticSite(Box::new(
                admit_as::<StaticSite>(&SITE_RULES, &kind, &document).map_err(refuse)?,
            )),
            "" => {
                return Err(refuse(format!("no kind: expected kind: {KINDS}")));
            }
            _ => {
                return Err(refuse(format!(
                    "{kind} ({api_version}) is not a Stagehand kind: expected \
                     apiVersion: stagehand.dev/v1alpha1, kind: {KINDS}"
                )));
            }
        };
        objects.push(object);
    }
    if objects.is_empty() {
        return Err(ManifestError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(objects)
}

/// A document of kind `K` as the API server would store and serve it, in namespace `default`
/// when it names none: refused here exactly as the API server would refuse it (schema and CEL
/// rules, `rules` compiled once per run), read with the defaults it would apply.
fn admit_as<K>(
    rules: &OnceLock<Option<CelRules>>,
    kind: &str,
    document: &serde_json::Value,
) -> Result<K, String>
where
    K: CustomResourceExt + DeserializeOwned + kube::ResourceExt,
{
    let name = document["metadata"]["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Err(format!("{kind} without metadata.name"));
    }
    let rules = rules.get_or_init(|| validation::schema_of(&K::crd()).map(|s| CelRules::new(&s)));
    let admitted = admit(rules.as_ref(), kind, name, document)?;
    let mut object: K = serde_json::from_value(admitted).map_err(|e| format!("{kind}: {e}"))?;
    object
        .meta_mut()
        .namespace
        .get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned());
    Ok(object)
}

/// `document` as the API server would store it, or its field errors as `kubectl apply` prints
/// them (`The LambdaStage "x" is invalid: ...`).
fn admit(
    rules: Option<&CelRules>,
    kind: &str,
    name: &str,
    document: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let Some(rules) = rules else {
        return Ok(document.clone());
    };
    let root = kube::core::cel::RootContext {
        api_version: "stagehand.dev/v1alpha1".to_owned(),
        api_group: "stagehand.dev".to_owned(),
        kind: kind.to_owned(),
    };
    let (admitted, mut errors) = rules.check_object(document, None, &root);
    validation::validate_name(name, false, "metadata.name", &mut errors);
    match errors.as_slice() {
        [] => Ok(admitted),
        [one] => Err(format!("The {kind} {name:?} is invalid: {one}")),
        many => Err(format!(
            "The {kind} {name:?} is invalid:\n{}",
            many.iter()
                .map(|e| format!("* {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGE: &str = "apiVersion: stagehand.dev/v1alpha1
kind: LambdaStage
metadata:
  name: shop
spec:
  region: us-east-1
  functions:
    - name: shop-api
";

    fn stages(documents: Vec<Document>) -> Vec<LambdaStage> {
        documents
            .into_iter()
            .filter_map(|d| match d {
                Document::LambdaStage(stage) => Some(*stage),
                Document::SpotFleet(_) | Document::StaticSite(_) => None,
            })
            .collect()
    }

    fn parse_stages(path: &str, text: &str) -> Result<Vec<LambdaStage>, ManifestError> {
        parse_documents(path, text).map(stages)
    }

    const FLEET: &str = "apiVersion: stagehand.dev/v1alpha1
kind: SpotFleet
metadata:
  name: workers
  namespace: ml
spec:
  region: us-east-1
  capacity: 2
  instanceTypes: [t3.small]
  imageId: ami-12345678
  subnetIds: [subnet-0000000a]
";

    #[test]
    fn fleets_and_stages_in_file_order_with_the_api_servers_defaults() {
        let documents = parse_documents("m.yaml", &format!("{STAGE}---\n{FLEET}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(documents[0], Document::LambdaStage(_)));
        let Document::SpotFleet(fleet) = &documents[1] else {
            panic!("{documents:?}")
        };
        assert_eq!(fleet.metadata.namespace.as_deref(), Some("ml"));
        assert_eq!(fleet.spec.replacement.max_surge, 1);
        assert_eq!(fleet.spec.health_check.grace_period_seconds, 300);
        let error = parse_documents("m.yaml", &FLEET.replace("capacity: 2", "capacity: -1"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with(
                "m.yaml, document 1: The SpotFleet \"workers\" is invalid: spec.capacity"
            ),
            "{error}"
        );
    }

    #[test]
    fn several_documents_with_the_default_namespace() {
        let text = format!(
            "{STAGE}---\n{}",
            STAGE.replace("name: shop\n", "name: other\n  namespace: ops\n")
        );
        let stages = parse_stages("s.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<(Option<&str>, Option<&str>)> = stages
            .iter()
            .map(|s| (s.metadata.namespace.as_deref(), s.metadata.name.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                (Some("default"), Some("shop")),
                (Some("ops"), Some("other"))
            ]
        );
    }

    const SITE: &str = "apiVersion: stagehand.dev/v1alpha1
kind: StaticSite
metadata:
  name: docs
spec:
  region: us-east-1
  bucket: {name: docs-site, create: true}
  source: {bucket: builds, archive: docs/dist.zip}
  distribution: {create: true}
";

    #[test]
    fn sites_are_read_with_the_api_servers_defaults_and_refused_with_its_messages() {
        let documents = parse_documents("m.yaml", &format!("{STAGE}---\n{SITE}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let Document::StaticSite(site) = &documents[1] else {
            panic!("{documents:?}")
        };
        assert_eq!(site.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(site.spec.distribution.default_root_object, "index.html");
        assert_eq!(site.spec.keep_revisions, 10);
        let error = parse_documents("m.yaml", &SITE.replace("docs/dist.zip", "docs/dist.rar"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("m.yaml, document 1: The StaticSite \"docs\" is invalid: spec")
                && error.contains("source.archive must be a .zip, .tar.gz or .tgz file"),
            "{error}"
        );
    }

    #[test]
    fn other_kinds_are_refused_clearly() {
        let error = parse_stages("s.yaml", "apiVersion: v1\nkind: ConfigMap\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("ConfigMap (v1) is not a Stagehand kind"),
            "{error}"
        );
        let error = parse_stages("s.yaml", "")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            "s.yaml has no LambdaStage, SpotFleet or StaticSite document"
        );
        let error = parse_stages("s.yaml", &STAGE.replace("region", "regoin"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            "s.yaml, document 1: The LambdaStage \"shop\" is invalid:\n\
             * spec.regoin: Invalid value: unknown field\n\
             * spec.region: Required value",
        );
    }

    #[test]
    fn defaults_are_applied_as_the_api_server_would() {
        let stages = parse_stages("s.yaml", STAGE).unwrap_or_else(|e| panic!("{e}"));
        let stage = &stages[0];
        assert_eq!(stage.spec.lifecycle.deletion_policy, None);
        assert_eq!(
            serde_json::to_value(&stage.spec.functions[0]).unwrap_or_default()["name"],
            "shop-api"
        );
    }

    /// Every invalid LambdaStage, SpotFleet and StaticSite of the repository's corpus
    /// (`examples/invalid/{ls,sf,ss}-*.yaml`) is refused offline with the message the API
    /// server gives (its `# expect:` line).
    #[test]
    fn the_invalid_corpus_is_refused_with_the_api_servers_messages() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/invalid");
        let mut checked = 0;
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "yaml")
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| ["ls-", "sf-", "ss-"].iter().any(|p| n.starts_with(p)))
            })
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect:"))
                .map_or_else(
                    || panic!("{}: no # expect: line", path.display()),
                    str::trim,
                );
            let error = parse_documents("m.yaml", &text).err().map_or_else(
                || panic!("{} was accepted", path.display()),
                |e| e.to_string(),
            );
            // Expectations written for the crds crate's JSON-schema checker use its wording
            // (`/spec/region: ...`): the refusal must then name the same field.
            let wanted = match expect.strip_prefix('/') {
                Some(pointer) => pointer
                    .split_once(':')
                    .map_or(pointer, |(field, _)| field)
                    .split('/')
                    .map(|segment| {
                        if segment.bytes().all(|b| b.is_ascii_digit()) {
                            format!("[{segment}]")
                        } else {
                            format!(".{segment}")
                        }
                    })
                    .collect::<String>()
                    .trim_start_matches('.')
                    .to_owned(),
                None if expect.starts_with(['"', '\'']) || expect.contains(" property") => {
                    String::new()
                }
                None if expect.contains("has more than") => "Too many".to_owned(),
                None => expect.to_owned(),
            };
            assert!(
                error.contains("is invalid") && error.contains(&wanted),
                "{}: expected {wanted:?} in {error:?}",
                path.display()
            );
            checked += 1;
        }
        assert!(
            checked >= 46,
            "{checked} invalid LambdaStages, SpotFleets and StaticSites checked"
        );
    }
}
