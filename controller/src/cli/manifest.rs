//! Reads the LambdaStage documents of a manifest file (`kubectl apply -f` style: YAML, one or
//! more documents separated by `---`).

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use kube::CustomResourceExt;
use stagehand_crds::LambdaStage;
use stagehand_crds::validation::{self, CelRules};

/// Namespace of a manifest without `metadata.namespace` (as kubectl's default context).
pub const DEFAULT_NAMESPACE: &str = "default";

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
    #[error("{path} has no LambdaStage document")]
    Empty { path: String },
}

/// The LambdaStages of the file at `path` (`-`: stdin), in file order, each with a namespace
/// (`default` when the document has none). Other Stagehand kinds are refused as not supported
/// yet, anything else as not a Stagehand kind.
pub fn read_stages(path: &Path) -> Result<Vec<LambdaStage>, ManifestError> {
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
    parse_stages(&shown, &text)
}

/// [`read_stages`] on text already read.
pub fn parse_stages(path: &str, text: &str) -> Result<Vec<LambdaStage>, ManifestError> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let mut stages = Vec::new();
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
        match kind.as_str() {
            "LambdaStage" if stagehand_api => {}
            "SpotFleet" | "StaticSite" if stagehand_api => {
                return Err(refuse(format!(
                    "kind {kind} is not supported by plan/apply yet (only LambdaStage is); \
                     apply it to a cluster running `stagehand run`"
                )));
            }
            "" => return Err(refuse("no kind: expected kind: LambdaStage".to_owned())),
            _ => {
                return Err(refuse(format!(
                    "{kind} ({api_version}) is not a Stagehand kind: expected \
                     apiVersion: stagehand.dev/v1alpha1, kind: LambdaStage"
                )));
            }
        }
        let name = document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err(refuse("LambdaStage without metadata.name".to_owned()));
        }
        // Refused here exactly as the API server would refuse it (schema and CEL rules), and
        // read with the defaults it would apply.
        let document = admit(&name, &document).map_err(refuse)?;
        let mut stage: LambdaStage =
            serde_json::from_value(document).map_err(|e| refuse(format!("LambdaStage: {e}")))?;
        stage
            .metadata
            .namespace
            .get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned());
        stages.push(stage);
    }
    if stages.is_empty() {
        return Err(ManifestError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(stages)
}

/// `document` as the API server would store it, or its field errors as `kubectl apply` prints
/// them (`The LambdaStage "x" is invalid: ...`).
fn admit(name: &str, document: &serde_json::Value) -> Result<serde_json::Value, String> {
    // The schema and its CEL rules, compiled once for every document of the run.
    static RULES: OnceLock<Option<CelRules>> = OnceLock::new();
    let Some(rules) =
        RULES.get_or_init(|| validation::schema_of(&LambdaStage::crd()).map(|s| CelRules::new(&s)))
    else {
        return Ok(document.clone());
    };
    let root = kube::core::cel::RootContext {
        api_version: "stagehand.dev/v1alpha1".to_owned(),
        api_group: "stagehand.dev".to_owned(),
        kind: "LambdaStage".to_owned(),
    };
    let (admitted, mut errors) = rules.check_object(document, None, &root);
    validation::validate_name(name, false, "metadata.name", &mut errors);
    match errors.as_slice() {
        [] => Ok(admitted),
        [one] => Err(format!("The LambdaStage {name:?} is invalid: {one}")),
        many => Err(format!(
            "The LambdaStage {name:?} is invalid:\n{}",
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

    #[test]
    fn other_kinds_are_refused_clearly() {
        let spot =
            "apiVersion: stagehand.dev/v1alpha1\nkind: SpotFleet\nmetadata: {name: x}\nspec: {}\n";
        let error = parse_stages("s.yaml", &format!("{STAGE}---\n{spot}"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with(
                "s.yaml, document 2: kind SpotFleet is not supported by plan/apply yet"
            ),
            "{error}"
        );
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
        assert_eq!(error, "s.yaml has no LambdaStage document");
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

    /// Every invalid LambdaStage of the repository's corpus (`examples/invalid/ls-*.yaml`) is
    /// refused offline with the message the API server gives (its `# expect:` line).
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
                        .is_some_and(|n| n.starts_with("ls-"))
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
            let error = parse_stages("m.yaml", &text).err().map_or_else(
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
        assert!(checked >= 28, "{checked} invalid LambdaStages checked");
    }
}
