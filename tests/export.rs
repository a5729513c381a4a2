//! `devenv export --k8s` through the real binary: the default tag comes from
//! the checkout, what staging and production still need is listed, and a
//! chart written by `--format helm` checks clean.

use crate::support;

use std::process::Command;

use support::{stderr, text, Project};

const STACK: &str = "[services.db]\nuse = \"postgres\"\n\n[services.app]\nbuild = { context = \".\", dockerfile = \"Dockerfile\" }\nports = [\"8080:8080\"]\nenv = { DB_HOST = \"db\", DB_PASSWORD = \"local-only-pw\" }\ndepends_on = { db = \"ready\" }\n";

fn git(p: &Project, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn r13_9_outside_a_checkout_without_a_tag_export_refuses_and_writes_nothing() {
    let p = Project::new("exportnotag", STACK);
    p.write("Dockerfile", "FROM scratch\n");
    let out = p.run(&["export", "--k8s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("no image tag for staging: this is not a git checkout and no tag was given"),
        "{}",
        text(&out)
    );
    assert!(!p.path().join("k8s").exists());
}

#[test]
fn r13_10_in_a_checkout_the_commit_is_the_tag_and_missing_inputs_are_listed() {
    let p = Project::new("exportgit", STACK);
    p.write("Dockerfile", "FROM scratch\n");
    git(&p, &["init", "-q"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-q", "-m", "init"]);
    let commit = git(&p, &["rev-parse", "--short=12", "HEAD"]);
    let out = p.run(&["export", "--k8s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("before deploying, provide:"), "{stdout}");
    for line in [
        "  production: the app image has no registry: set `image_registry` in `[k8s]` (or pass `--image-registry`)",
        "  production: secret `DB_PASSWORD` of `app-env`: create Secret `app-env` in the namespace with it, or set `external_secrets = true` in `[k8s]`",
        "  production: `DB_HOST` of `app-env` names no managed endpoint: set `database`, `redis` or `smtp` = { host = \"…\" } in `[k8s.production]`, or `DB_HOST` in `[k8s.production] env`",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }
    assert!(!stdout.contains("local-only-pw"));
    let base = std::fs::read_to_string(p.path().join("k8s/base/app.yaml")).unwrap();
    let images: Vec<&str> = base
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .collect();
    assert!(!images.is_empty(), "{base}");
    assert!(
        images.iter().all(|i| i.ends_with(&format!(":{commit}"))),
        "{images:?}"
    );
    assert!(!base.contains(":latest"));
}

#[test]
fn a_chart_checks_clean_and_reports_an_edit() {
    let p = Project::new("exportchart", STACK);
    p.write("Dockerfile", "FROM scratch\n");
    let out = p.run(&[
        "export", "--k8s", "--format", "helm", "--tag", "1.0.0", "-o", "chart",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for file in [
        "Chart.yaml",
        "values.yaml",
        "values-dev.yaml",
        "values-staging.yaml",
        "values-production.yaml",
        "templates/app.yaml",
    ] {
        assert!(p.path().join("chart").join(file).is_file(), "{file}");
    }
    let out = p.run(&["export", "--k8s", "--tag", "1.0.0", "--check", "chart"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = p.run(&["export", "--k8s", "--tag", "1.0.1", "--check", "chart"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("`image.tag` differs: stack has `1.0.1`, tree has `1.0.0`"),
        "{}",
        text(&out)
    );
}
