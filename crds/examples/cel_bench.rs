//! Time of the CEL step of LambdaStage validation (`x-kubernetes-validations`, 19 rules), per
//! object, on the LambdaStage manifests in `examples/`: as a create (no old object) and as an
//! update of the same object (transition rules evaluated too).
//!
//! `cargo run --release -p stagehand-crds --example cel_bench [-- ITERATIONS]`

use std::path::Path;
use std::time::{Duration, Instant};

use kube::CustomResourceExt;
use kube::core::cel::RootContext;
use serde_json::Value;
use stagehand_crds::LambdaStage;
use stagehand_crds::validation::{self, CelRules, FieldError, FieldErrorKind};

type Step<'a> = &'a dyn Fn(&Value, Option<&Value>, &mut Vec<FieldError>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse::<u32>()?.clamp(1, 1_000_000),
        None => 1000,
    };
    let schema = validation::schema_of(&LambdaStage::crd()).ok_or("LambdaStage has no schema")?;
    let root = RootContext {
        api_version: "stagehand.dev/v1alpha1".to_owned(),
        api_group: "stagehand.dev".to_owned(),
        kind: "LambdaStage".to_owned(),
    };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut objects = Vec::new();
    for name in ["lambda-stage-chalice.yaml", "lambda-stage-sam.yaml"] {
        let text = std::fs::read_to_string(examples.join(name))?;
        let object: Value = serde_saphyr::from_str(&text)?;
        // What the API server validates: the object with defaults applied, unknown fields pruned.
        objects.push(validation::normalize(&schema, &object));
    }

    // What `validate_cel` did before `CelRules`: a new kube validator compiling every rule.
    let per_call = |object: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>| {
        let validator = kube::core::cel::Validator::new();
        if let Err(failures) = validator.validate_with_context(&schema, object, old, Some(&root)) {
            errors.extend(
                failures.into_iter().map(|f| {
                    FieldError::new(f.field_path, FieldErrorKind::Invalid, None, f.message)
                }),
            );
        }
    };
    // The rules compiled on first use, found again by comparing schemas.
    let validate_cel = |object: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>| {
        validation::validate_cel(&schema, object, old, &root, errors);
    };
    // The rules compiled once and kept by the caller (the test API server keeps one per CRD).
    let compiled_at = Instant::now();
    let rules = CelRules::new(&schema);
    let compile_time = compiled_at.elapsed();
    let kept = |object: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>| {
        rules.validate(object, old, &root, errors);
    };
    let per_object = |step: Step<'_>, update: bool| -> Result<Duration, String> {
        let run = |rounds: u32| -> Result<Duration, String> {
            let start = Instant::now();
            for _ in 0..rounds {
                for object in &objects {
                    let mut errors = Vec::new();
                    step(object, update.then_some(object), &mut errors);
                    if !errors.is_empty() {
                        return Err(format!("an example is invalid: {errors:?}"));
                    }
                }
            }
            Ok(start.elapsed())
        };
        run(iterations / 10 + 1)?; // warm-up
        let objects_validated = iterations * u32::try_from(objects.len()).unwrap_or(u32::MAX);
        Ok(run(iterations)? / objects_validated)
    };

    println!(
        "CEL validation of {} LambdaStage examples, {iterations} iterations each (release build)",
        objects.len()
    );
    println!(
        "  {:<46} {:8.1} µs",
        "CelRules::new (compiling the rules once):",
        compile_time.as_secs_f64() * 1e6
    );
    let steps: [(&str, Step<'_>); 3] = [
        ("rules compiled on every call (before)", &per_call),
        ("validation::validate_cel", &validate_cel),
        ("CelRules::validate", &kept),
    ];
    for (what, step) in steps {
        for (mode, update) in [("create", false), ("update", true)] {
            let t = per_object(step, update)?;
            println!(
                "  {:<46} {:8.1} µs per object",
                format!("{what}, {mode}:"),
                t.as_secs_f64() * 1e6
            );
        }
    }
    Ok(())
}
