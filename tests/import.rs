//! `devenv import` against the Compose fixtures in `tests/fixtures/compose`:
//! each case's `dev.toml` and warnings are an insta snapshot, and every
//! produced file must at least be valid TOML.

use std::fs;
use std::path::{Path, PathBuf};

use devenv::import::{import_compose, ImportError, Imported};

fn read(case: &str, files: &[&str]) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compose")
        .join(case);
    files
        .iter()
        .map(|file| {
            let text = fs::read_to_string(dir.join(file)).expect("fixture exists");
            // A relative name keeps the snapshots free of this machine's paths.
            (Path::new(case).join(file), text)
        })
        .collect()
}

fn import(case: &str, files: &[&str]) -> Imported {
    let imported = import_compose(&read(case, files)).expect("fixture imports");
    if let Err(err) = toml::from_str::<toml::Table>(&imported.toml) {
        panic!("`{case}` produced invalid TOML: {err}\n{}", imported.toml);
    }
    imported
}

fn snapshot(case: &str, files: &[&str]) -> Imported {
    let imported = import(case, files);
    let mut report = String::new();
    for warning in &imported.warnings {
        report.push_str(&format!("warning: {warning}\n"));
    }
    report.push_str("---- dev.toml ----\n");
    report.push_str(&imported.toml);
    insta::with_settings!({
        snapshot_path => "fixtures/compose/snapshots",
        prepend_module_to_snapshot => false,
        description => files.join(" + "),
    }, {
        insta::assert_snapshot!(case, report);
    });
    imported
}

fn error(case: &str, files: &[&str]) -> ImportError {
    let err = import_compose(&read(case, files)).expect_err("fixture is rejected");
    let mut rendered = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut rendered, &err)
        .unwrap();
    insta::with_settings!({
        snapshot_path => "fixtures/compose/snapshots",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(case, rendered);
    });
    err
}

#[test]
fn ports_short_and_long_syntax() {
    snapshot("ports", &["compose.yaml"]);
}

#[test]
fn volumes_short_long_and_top_level() {
    snapshot("volumes", &["compose.yaml"]);
}

#[test]
fn environment_list_map_and_env_files() {
    snapshot("environment", &["compose.yaml"]);
}

#[test]
fn depends_on_short_and_long() {
    snapshot("depends-on", &["compose.yaml"]);
}

#[test]
fn healthchecks_become_ready_probes() {
    snapshot("healthchecks", &["compose.yaml"]);
}

#[test]
fn develop_watch_becomes_watch_rules() {
    snapshot("watch", &["compose.yaml"]);
}

#[test]
fn command_entrypoint_and_build_forms() {
    snapshot("command-build", &["compose.yaml"]);
}

#[test]
fn several_files_merge_in_order() {
    snapshot("merge", &["compose.yaml", "compose.override.yaml"]);
}

#[test]
fn profiles_are_kept() {
    snapshot("profiles", &["compose.yaml"]);
}

#[test]
fn unsupported_keys_are_listed_not_lost() {
    let imported = snapshot("unsupported", &["compose.yaml"]);
    let app: Vec<&str> = imported
        .warnings
        .iter()
        .filter(|w| w.service.as_deref() == Some("app"))
        .map(|w| w.key.as_str())
        .collect();
    for key in [
        "container_name",
        "labels",
        "extra_hosts",
        "cap_add",
        "ulimits",
        "logging",
        "deploy",
        "secrets",
        "configs",
        "networks",
    ] {
        assert!(app.contains(&key), "no warning for `{key}` in {app:?}");
    }
}

#[test]
fn extensions_are_ignored_quietly() {
    let imported = snapshot("extensions", &["compose.yaml"]);
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
}

#[test]
fn sail_stack_uses_presets() {
    let imported = snapshot("sail", &["docker-compose.yml"]);
    // One network shared by every service is what devenv does anyway.
    assert!(
        imported.warnings.iter().all(|w| w.key != "networks"),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn project_name_and_quoted_service_names() {
    snapshot("name", &["compose.yaml"]);
}

#[test]
fn version_1_is_refused() {
    let err = error("version-1", &["compose.yaml"]);
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn version_1_layout_is_refused() {
    let err = error("version-1-layout", &["docker-compose.yml"]);
    assert!(matches!(err, ImportError::UnsupportedVersion { .. }));
}

#[test]
fn version_2_and_3_are_read_as_the_compose_specification() {
    import("legacy-version", &["compose.yaml"]);
}

#[test]
fn malformed_yaml_points_at_the_line() {
    let err = error("malformed", &["compose.yaml"]);
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .starts_with("cannot read `malformed/compose.yaml`"),
        "{err}"
    );
}

#[test]
fn a_type_error_points_at_the_value() {
    let files = vec![(
        PathBuf::from("compose.yaml"),
        "services:\n  web:\n    image: nginx\n    ports: 80\n".to_owned(),
    )];
    let err = import_compose(&files).unwrap_err();
    let ImportError::Yaml { span, .. } = &err else {
        panic!("expected a YAML error, got {err:?}");
    };
    assert_eq!(span.offset(), files[0].1.find("80").unwrap(), "{err:?}");
}

#[test]
fn a_file_without_services_is_refused() {
    let files = vec![(
        PathBuf::from("compose.yaml"),
        "volumes:\n  data:\n".to_owned(),
    )];
    let err = import_compose(&files).unwrap_err();
    assert!(matches!(err, ImportError::NoServices { .. }), "{err:?}");
    assert_eq!(err.to_string(), "no services in `compose.yaml`");
}
