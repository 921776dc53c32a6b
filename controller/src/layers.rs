//! The layers of the crate, checked: each module imports only from the layers below it, and a
//! kind's `plan` imports nothing that does I/O. `docs/architecture.md` draws the same picture.

use std::path::{Path, PathBuf};

/// Bottom to top: a module may import from its own layer and the ones listed before it.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("aws", &["base"]),
    ("probe", &["base"]),
    ("inventory", &["base", "aws"]),
    ("settings", &["base", "aws", "probe"]),
    ("feed", &["base", "aws", "inventory"]),
    (
        "runtime",
        &[
            "base",
            "aws",
            "probe",
            "inventory",
            "settings",
            "telemetry",
            "feed",
        ],
    ),
];

/// The kinds: each sits on the runtime and imports no other kind, nor the CLI or the registry.
const KINDS: &[&str] = &["lambda_stage", "spot_fleet", "static_site"];

/// The crate's top-level modules a layer could import (`crate::<name>`).
const MODULES: &[&str] = &[
    "base",
    "aws",
    "probe",
    "inventory",
    "settings",
    "telemetry",
    "feed",
    "runtime",
    "lambda_stage",
    "spot_fleet",
    "static_site",
    "kinds",
    "cli",
];

/// What a `plan` must not import: the modules and crates that do I/O, and the sources of time
/// and randomness (a plan is a function of its inputs).
const NOT_IN_A_PLAN: &[&str] = &[
    "crate::runtime",
    "crate::inventory",
    "crate::probe",
    "crate::cli",
    "crate::kinds",
    "crate::lambda_stage::observe",
    "crate::lambda_stage::act",
    "crate::lambda_stage::round",
    "crate::lambda_stage::http_check",
    "crate::lambda_stage::mapping_owners",
    "super::observe",
    "super::act",
    "super::round",
    "super::http_check",
    "super::mapping_owners",
    "super::super::observe",
    "super::super::act",
    "super::super::round",
    "super::super::http_check",
    "super::super::mapping_owners",
    "crate::spot_fleet::observe",
    "crate::spot_fleet::act",
    "crate::spot_fleet::round",
    "crate::static_site::observe",
    "crate::static_site::act",
    "crate::static_site::round",
    // The archive reader streams and spills to disk: observe and act use it, a plan reads the
    // entries it produced.
    "crate::static_site::build",
    "super::build",
    "super::super::build",
    "crate::aws::AwsProvider",
    "crate::aws::call",
    "crate::aws::config",
    "crate::aws::lambda::Lambda",
    "crate::aws::s3::S3",
    "crate::aws::sqs::Sqs",
    "crate::aws::cloudformation::CloudFormation",
    "crate::aws::ec2::Ec2",
    "crate::aws::cloudfront::CloudFront",
    "tokio",
    "kube",
    "aws_sdk_",
    "aws_config",
    "aws_smithy",
    "hyper",
    "rand",
    "std::fs",
    "std::net",
    "std::process",
    "std::time::Instant",
    "std::time::SystemTime",
];

/// Code that a plan must not contain even without an import.
const NOT_IN_A_PLAN_BODY: &[&str] = &[".await", "async fn", "::now("];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, tests excluded (`tests.rs`, `tests/`: fixtures may do anything).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                found.extend(sources(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") && name != "tests.rs" {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The source without comments and without an inline `#[cfg(test)] mod tests { .. }` (always
/// the last item of a file); a `mod tests;` declaration is only cut itself.
fn code_of(text: &str) -> String {
    let production = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text)
        .replace("#[cfg(test)]\nmod tests;", "");
    production
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a `use` declaration of `code` imports, braces expanded
/// (`use a::{b, c::{d, e}};` → `a::b`, `a::c::d`, `a::c::e`).
fn imports(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let after = &rest[at..];
        let Some(end) = after.find(';') else { break };
        let declaration: String = after[..end]
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("use ")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        expand("", &declaration, &mut paths);
        rest = &after[end..];
    }
    paths
}

fn find_use(code: &str) -> Option<usize> {
    ["\nuse ", "\npub use ", "\npub(crate) use ", "\n    use "]
        .iter()
        .filter_map(|pattern| code.find(pattern).map(|at| at + 1))
        .min()
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.len().saturating_sub(1)];
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand(&head, &inner[start..], out);
    }
}

/// Imports of higher layers in the files of `module`.
fn upward_imports(module: &str, allowed: &[&str]) -> Vec<String> {
    let mut files = sources(&src().join(module));
    let single = src().join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    assert!(!files.is_empty(), "no sources for module {module}");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for path in imports(&code_of(&text)) {
            let Some(target) = path
                .strip_prefix("crate::")
                .and_then(|p| p.split("::").next())
            else {
                continue;
            };
            if target != module && MODULES.contains(&target) && !allowed.contains(&target) {
                found.push(format!("{}: {path}", file.display()));
            }
        }
    }
    found
}

/// What a plan file imports or does that a pure decision must not.
fn impurities(code: &str) -> Vec<String> {
    let mut found: Vec<String> = imports(code)
        .into_iter()
        .filter(|path| {
            NOT_IN_A_PLAN.iter().any(|banned| {
                path == banned
                    || path.starts_with(&format!("{banned}::"))
                    || (banned.ends_with('_') && path.starts_with(banned))
            })
        })
        .collect();
    found.extend(
        NOT_IN_A_PLAN_BODY
            .iter()
            .filter(|banned| code.contains(*banned))
            .map(|banned| (*banned).to_owned()),
    );
    found
}

#[test]
fn every_layer_imports_only_from_the_layers_below() {
    let mut violations = Vec::new();
    for (module, allowed) in LAYERS {
        violations.extend(upward_imports(module, allowed));
    }
    for kind in KINDS {
        violations.extend(upward_imports(
            kind,
            &[
                "base",
                "aws",
                "probe",
                "inventory",
                "settings",
                "feed",
                "runtime",
            ],
        ));
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn plans_do_no_io() {
    let mut violations = Vec::new();
    for kind in KINDS {
        violations.extend(plan_impurities(kind));
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// What the plan of `kind` (`<kind>/plan/` or `<kind>/plan.rs`) imports or does that it must not.
fn plan_impurities(kind: &str) -> Vec<String> {
    let mut plan_files = sources(&src().join(format!("{kind}/plan")));
    let single = src().join(format!("{kind}/plan.rs"));
    if single.exists() {
        plan_files.push(single);
    }
    assert!(!plan_files.is_empty(), "no plan for kind {kind}");
    let mut violations = Vec::new();
    for file in plan_files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for impurity in impurities(&code_of(&text)) {
            violations.push(format!("{}: {impurity}", file.display()));
        }
    }
    violations
}

#[test]
fn the_checks_catch_what_they_are_for() {
    let code = "\nuse std::collections::BTreeMap;\nuse crate::runtime::{Context, status::apply_status};\n\
                use crate::aws::{lambda::{FunctionInfo, Lambda}, s3::Sha256Digest};\n\
                use tokio::time::Instant;\nfn f() { let _ = jiff::Timestamp::now(); }\n";
    assert_eq!(
        imports(code),
        [
            "std::collections::BTreeMap",
            "crate::runtime::Context",
            "crate::runtime::status::apply_status",
            "crate::aws::lambda::FunctionInfo",
            "crate::aws::lambda::Lambda",
            "crate::aws::s3::Sha256Digest",
            "tokio::time::Instant",
        ]
    );
    assert_eq!(
        impurities(code),
        [
            "crate::runtime::Context",
            "crate::runtime::status::apply_status",
            "crate::aws::lambda::Lambda",
            "tokio::time::Instant",
            "::now(",
        ]
    );
    assert_eq!(code_of("use a; // use crate::runtime;\n"), "use a; ");
    assert_eq!(
        code_of("#[cfg(test)]\nmod tests;\nfn f() {}\n#[cfg(test)]\nmod tests {\n"),
        "\nfn f() {}"
    );
}
