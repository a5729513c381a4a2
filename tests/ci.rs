//! `devenv export --ci github` through the real binary (issue 29): the pull
//! request runs the README's test command, its `--check` step's own command
//! fails on a drifted manifest, missing inputs are listed, and a second
//! export rewrites only its own files, byte for byte.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{text, Project};

const STACK: &str = "[services.db]\nuse = \"postgres\"\n\n[services.app]\nbuild = { context = \".\", dockerfile = \"Dockerfile\", target = \"dev\" }\nports = [\"8080:8080\"]\nenv = { DB_HOST = \"db\" }\ndepends_on = { db = \"ready\" }\n";

const INPUTS: &str = "\n[k8s]\nimage_registry = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop\"\ncluster = \"shop-eks\"\n\n[k8s.staging]\ndeploy_role_arn = \"arn:aws:iam::123456789012:role/shop-ci-staging\"\n\n[k8s.production]\ndeploy_role_arn = \"arn:aws:iam::123456789012:role/shop-ci-production\"\n";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn workflow(p: &Project, name: &str) -> Value {
    let path = p.path().join(".github/workflows").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The `run` of the step named `name` in job `job`.
fn step_run(workflow: &Value, job: &str, name: &str) -> String {
    let steps = workflow["jobs"][job]["steps"].as_array().unwrap();
    let step = steps
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step `{name}` in job `{job}`: {steps:?}"));
    step["run"].as_str().unwrap().to_string()
}

/// `sh -c COMMAND` in the project, with this build of devenv first on PATH.
fn shell(p: &Project, command: &str) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("devenv");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", command])
        .current_dir(p.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn r29_the_pull_request_runs_the_readmes_test_command() {
    let p = Project::new("ciwfreadme", &format!("{STACK}{INPUTS}"));
    p.write("Dockerfile", "FROM scratch\n");
    let out = p.run(&["export", "--ci", "github", "--tag", "1.0.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("CI"))
        .expect("the README has a `## CI` section");
    let documented = section
        .lines()
        .find_map(|l| l.strip_prefix("$ devenv test"))
        .map(|rest| format!("devenv test{rest}"))
        .expect("the CI section shows its `devenv test` command");
    let pr = workflow(&p, "devenv-pull-request.yml");
    assert_eq!(step_run(&pr, "test", "Tests"), documented);
    assert!(documented.contains("--junit"), "{documented}");
}

#[test]
fn r29_a_drifted_manifest_fails_the_check_step() {
    let p = Project::new("ciwfdrift", STACK);
    p.write("Dockerfile", "FROM scratch\n");
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "."]);
    git(p.path(), &["commit", "-q", "-m", "stack"]);
    // The manifests as a user commits them: exported at the commit before.
    let out = p.run(&["export", "--k8s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = p.run(&["export", "--ci", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    git(p.path(), &["add", "."]);
    git(p.path(), &["commit", "-q", "-m", "manifests and workflows"]);

    let check = step_run(
        &workflow(&p, "devenv-pull-request.yml"),
        "manifests",
        "The committed manifests agree with dev.toml",
    );
    assert_eq!(check, "devenv export --k8s --check k8s");
    let out = shell(&p, &check);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // dev.toml changes, the manifests do not: the step fails.
    let stack = std::fs::read_to_string(p.path().join("dev.toml")).unwrap();
    p.write(
        "dev.toml",
        &stack.replace("DB_HOST = \"db\"", "DB_HOST = \"db\", FEATURE_X = \"on\""),
    );
    let out = shell(&p, &check);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FEATURE_X"), "{}", text(&out));
}

#[test]
fn r29_missing_inputs_are_listed_and_set_ones_reach_the_workflow() {
    let p = Project::new("ciwfinputs", STACK);
    p.write("Dockerfile", "FROM scratch\n");
    let out = p.run(&["export", "--ci", "github", "--tag", "1.0.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "  ci: no AWS region for ECR and EKS: set `region` in `[k8s]` (an ECR `image_registry` gives its own)",
        "  ci: staging: no EKS cluster to deploy to: set `cluster` in `[k8s]` or `[k8s.staging]`",
        "  ci: production: no IAM role for GitHub OIDC to deploy to production: set `deploy_role_arn` in `[k8s.production]`",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }

    let p = Project::new("ciwfinputs2", &format!("{STACK}{INPUTS}"));
    p.write("Dockerfile", "FROM scratch\n");
    let out = p.run(&["export", "--ci", "github", "--tag", "1.0.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("ci: "), "{stdout}");
    let deploy = workflow(&p, "devenv-deploy.yml");
    assert_eq!(deploy["env"]["AWS_REGION"], "eu-west-1");
    let staging = deploy["jobs"]["staging"]["steps"].as_array().unwrap();
    let aws = staging
        .iter()
        .find(|s| s["name"] == "AWS credentials (GitHub OIDC)")
        .unwrap();
    assert_eq!(
        aws["with"]["role-to-assume"],
        "arn:aws:iam::123456789012:role/shop-ci-staging"
    );
    let build = staging
        .iter()
        .find(|s| s["env"]["IMAGE"].is_string())
        .unwrap();
    let image = build["env"]["IMAGE"].as_str().unwrap();
    assert!(
        image.starts_with("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/"),
        "{image}"
    );
    assert_eq!(build["env"]["TARGET"], "prod");
}

#[test]
fn r29_re_export_is_byte_identical_and_a_foreign_workflow_is_kept() {
    let p = Project::new("ciwfagain", &format!("{STACK}{INPUTS}"));
    p.write("Dockerfile", "FROM scratch\n");
    let mine = "name: mine\non: push\njobs: {}\n";
    p.write(".github/workflows/mine.yml", mine);
    let out = p.run(&[
        "export", "--ci", "github", "--format", "helm", "--tag", "1.0.0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = p.path().join(".github/workflows");
    let read = || {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let first = read();
    assert_eq!(first.len(), 4, "three workflows beside the user's own");
    let out = p.run(&[
        "export", "--ci", "github", "--format", "helm", "--tag", "1.0.0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("mine.yml"), "{}", text(&out));
    assert_eq!(read(), first, "a second export changes no byte");

    // A workflow of the user's where devenv would write one: refused, kept.
    p.write(".github/workflows/devenv-deploy.yml", mine);
    let before = read();
    let out = p.run(&[
        "export", "--ci", "github", "--format", "helm", "--tag", "1.0.0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("export would overwrite a file that devenv did not write"),
        "{}",
        text(&out)
    );
    assert_eq!(read(), before, "a refusal changes nothing");
}
