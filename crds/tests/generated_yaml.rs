//! The generated CRD YAML is committed twice (`crds/yaml/` for `kubectl apply -f`, and the Helm
//! chart's `crds/`). This test fails when either copy is out of date with the Rust types.
//! Regenerate with `make crds` (which runs this test with `STAGEHAND_UPDATE_CRDS=1`).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ has a parent directory")
        .to_path_buf()
}

#[test]
fn committed_crd_yaml_matches_the_rust_types() {
    let update = std::env::var_os("STAGEHAND_UPDATE_CRDS").is_some();
    let root = workspace_root();
    let mut stale = Vec::new();
    for crd in stagehand_crds::crds() {
        let name = crd.metadata.name.clone().expect("generated CRDs are named");
        let yaml = stagehand_crds::crd_yaml(&crd).expect("CRD serializes to YAML");
        for dir in ["crds/yaml", "charts/stagehand/crds"] {
            let path = root.join(dir).join(format!("{name}.yaml"));
            if update {
                std::fs::create_dir_all(path.parent().expect("file has a directory"))
                    .expect("create CRD directory");
                std::fs::write(&path, &yaml).expect("write CRD file");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(committed) if committed == yaml => {}
                Ok(_) => stale.push(format!("{} is out of date", path.display())),
                Err(e) => stale.push(format!("{} cannot be read: {e}", path.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated CRDs differ from the committed files (run `make crds`):\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn every_crd_lists_in_the_stagehand_category_with_status_subresource() {
    for crd in stagehand_crds::crds() {
        let names = &crd.spec.names;
        assert_eq!(
            names.categories.as_deref(),
            Some(&["stagehand".to_owned()][..])
        );
        assert!(
            names.short_names.as_ref().is_some_and(|s| !s.is_empty()),
            "{} has no shortNames",
            names.kind
        );
        let version = &crd.spec.versions[0];
        let subresources = version.subresources.as_ref().expect("subresources");
        assert!(
            subresources.status.is_some(),
            "{} lacks the status subresource",
            names.kind
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for wanted in ["Ready", "Reason", "Age"] {
            assert!(
                columns.contains(&wanted),
                "{} lacks printer column {wanted}: {columns:?}",
                names.kind
            );
        }
    }
}
