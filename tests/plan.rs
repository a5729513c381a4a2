//! End-to-end: `up --dry-run` (and `--json`) on the example stack in each
//! state `up` can find it in — fresh, up, one env var changed, an orphan, a
//! service out of the active profiles, an interrupted `up`, a port clash —
//! run by the real binary on the real engine. Each checks that the dry run
//! changed nothing on the engine; the taken host port's also that `up`
//! then publishes exactly where the dry run said.

use crate::support;

use std::process::{Command, Output};

use serde_json::Value;
use support::{free_port, repo, text, Project};

const APP_IMAGE: &str = "devenv-e2e-day:latest";

/// The example stack (the repository's dev.toml, as `tests/day.rs` runs
/// it), with `extra` appended to each service table where given.
fn stack(app_port: u16, cache_extra: &str, tail: &str) -> String {
    let cache_extra = if cache_extra.contains("ports") {
        cache_extra.to_string()
    } else {
        format!("ports = []\n{cache_extra}")
    };
    format!(
        r#"[services.db]
use = "postgres"
ports = []

[services.cache]
use = "redis"
{cache_extra}

[services.mail]
use = "mailhog"
ports = []

[services.s3]
use = "minio"
env = {{ MINIO_DEFAULT_BUCKETS = "app" }}
ports = []

[services.app]
use = "laravel"
build = {{ context = "{repo}", dockerfile = "docker/app/Dockerfile", target = "dev" }}
image = "{APP_IMAGE}"
ports = ["{app_port}:8080"]
{tail}"#,
        repo = repo().display(),
    )
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("these tests need the docker CLI on PATH");
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Everything the engine has for the project: containers (id, name, state,
/// labels), networks and volumes.
fn engine_state(project: &str) -> String {
    let filter = format!("label=devenv.project={project}");
    let mut containers: Vec<String> = docker(&[
        "ps",
        "-a",
        "--filter",
        &filter,
        "--format",
        "{{.ID}} {{.Names}} {{.State}} {{.Labels}}",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    containers.sort();
    let networks = docker(&["network", "ls", "-q", "--filter", &filter]);
    let mut volumes: Vec<String> = docker(&["volume", "ls", "-q", "--filter", &filter])
        .lines()
        .map(str::to_string)
        .collect();
    volumes.sort();
    format!(
        "containers:\n{}\nnetworks: {networks}\nvolumes: {}",
        containers.join("\n"),
        volumes.join(" ")
    )
}

/// `up --dry-run` in words and as JSON, asserting that neither changed the
/// engine; returns the lines and the parsed plan.
fn dry_run(p: &mut Project, extra: &[&str]) -> (Vec<String>, Value) {
    let before = engine_state(&p.name);
    let mut args = vec!["up", "--dry-run"];
    args.extend(extra);
    let out = p.ok(&args);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dry run: nothing was changed"),
        "{}",
        text(&out)
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    args.push("--json");
    let out = p.ok(&args);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(
        engine_state(&p.name),
        before,
        "a dry run changed the engine"
    );
    (lines, plan)
}

/// One service's step in the JSON plan.
fn step<'a>(plan: &'a Value, service: &str) -> &'a Value {
    plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == service)
        .unwrap()
}

/// service → action, from the JSON plan.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

fn all(action: &str) -> Vec<(String, String)> {
    sorted(
        ["app", "cache", "db", "mail", "s3"]
            .iter()
            .map(|s| (s.to_string(), action.to_string()))
            .collect(),
    )
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

fn up(p: &mut Project, args: &[&str]) -> Output {
    let mut all = vec!["--progress", "plain", "up", "-d"];
    all.extend(args);
    let mut out = None;
    support::with_image_lock(|| out = Some(p.ok(&all)));
    out.unwrap()
}

#[test]
fn dry_run_shows_what_up_would_do_in_each_state_and_changes_nothing() {
    support::warm_images();
    let app_port = free_port();
    let mut p = Project::new("planstates", &stack(app_port, "", ""));
    let name = p.name.clone();

    // Fresh: everything created; the network, volumes and port named.
    let (lines, plan) = dry_run(&mut p, &[]);
    assert_eq!(sorted(actions(&plan)), all("create"), "{lines:#?}");
    assert!(
        has(&lines, &format!("would create network `{name}_default`")),
        "{lines:#?}"
    );
    assert!(has(&lines, "would create and start `db`"), "{lines:#?}");
    assert!(
        has(
            &lines,
            &format!("host port 127.0.0.1:{app_port} for `app`: free")
        ),
        "{lines:#?}"
    );
    assert!(engine_state(&name).ends_with("networks: \nvolumes: "));
    // Each service waits for its own dependencies only.
    let app = step(&plan, "app");
    let mut after: Vec<&str> = app["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["service"].as_str().unwrap())
        .collect();
    after.sort();
    assert_eq!(after, ["cache", "db", "mail", "s3"], "{app:#}");
    // The secret stays masked in the JSON spec.
    let db = step(&plan, "db");
    let env = &db["spec"]["env"];
    assert_eq!(env["POSTGRES_PASSWORD"]["value"], "********", "{env}");
    assert_eq!(env["POSTGRES_PASSWORD"]["secret"], true, "{env}");

    // After `up`: nothing to do.
    up(&mut p, &[]);
    let (lines, plan) = dry_run(&mut p, &[]);
    assert_eq!(sorted(actions(&plan)), all("keep"), "{lines:#?}");
    assert_eq!(
        lines,
        ["would leave `cache`, `db`, `mail`, `s3`, `app` alone (running, unchanged)"]
    );
    assert_eq!(plan["port_checks"], Value::Array(vec![]));

    // `--build`: the image would be built, and `app` recreated only if it changes.
    let (lines, _) = dry_run(&mut p, &["--build"]);
    assert!(
        has(
            &lines,
            &format!("would build image `{APP_IMAGE}` for `app`")
        ),
        "{lines:#?}"
    );
    assert!(
        has(
            &lines,
            "would recreate `app` only if its new image differs from the one it runs"
        ),
        "{lines:#?}"
    );

    // One env var changed: that service alone, and why.
    p.write(
        "dev.toml",
        &format!(
            "[project]\nname = \"{name}\"\n\n{}",
            stack(app_port, "env = { PLAN_MARK = \"1\" }", "")
        ),
    );
    let (lines, plan) = dry_run(&mut p, &[]);
    assert!(
        has(&lines, "would recreate `cache`: env changed"),
        "{lines:#?}"
    );
    let cache = step(&plan, "cache");
    assert_eq!(cache["action"], "recreate");
    assert_eq!(cache["changes"], serde_json::json!(["env"]));
    assert_eq!(
        actions(&plan).iter().filter(|(_, a)| a == "keep").count(),
        4
    );
    up(&mut p, &[]);

    // An orphan: a service that left the file.
    let extra = "[services.extra]\nuse = \"redis\"\nports = []\n";
    let with_extra = |tail: &str| {
        format!(
            "[project]\nname = \"{name}\"\n\n{}",
            stack(app_port, "env = { PLAN_MARK = \"1\" }", tail)
        )
    };
    p.write("dev.toml", &with_extra(extra));
    up(&mut p, &["extra"]);
    p.write("dev.toml", &with_extra(""));
    let (lines, plan) = dry_run(&mut p, &[]);
    assert!(
        has(
            &lines,
            &format!(
                "would remove `extra` (container `{name}-extra-1`): it is no longer in the stack file"
            )
        ),
        "{lines:#?}"
    );
    assert_eq!(plan["removals"][0]["why"], "orphan");

    // Out of the active profiles: still the stack's, not an orphan.
    p.write(
        "dev.toml",
        &with_extra("[services.extra]\nuse = \"redis\"\nports = []\nprofiles = [\"debug\"]\n"),
    );
    let (lines, plan) = dry_run(&mut p, &[]);
    assert_eq!(plan["removals"], Value::Array(vec![]), "{lines:#?}");
    assert!(actions(&plan)
        .iter()
        .all(|(s, a)| s != "extra" && a == "keep"));

    // An interrupted `up`: `mail`'s container created, never started.
    let container = format!("{name}-mail-1");
    let labels: serde_json::Map<String, Value> = serde_json::from_str(&docker(&[
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        &container,
    ]))
    .unwrap();
    let image = docker(&["inspect", "-f", "{{.Config.Image}}", &container]);
    docker(&["rm", "-f", &container]);
    let mut create = vec!["create".to_string(), "--name".into(), container.clone()];
    for (k, v) in &labels {
        create.push("--label".into());
        create.push(format!("{k}={}", v.as_str().unwrap()));
    }
    create.push(image);
    docker(&create.iter().map(String::as_str).collect::<Vec<_>>());
    let (lines, plan) = dry_run(&mut p, &[]);
    assert!(
        has(
            &lines,
            "would start `mail` (its container exists, not running)"
        ),
        "{lines:#?}"
    );
    let mail = step(&plan, "mail");
    assert_eq!(mail["action"], "start");
}

#[test]
fn a_port_clash_across_host_ips_is_caught_before_anything_is_created() {
    support::warm_images();
    let app_port = free_port();
    let port = free_port();
    let mut p = Project::new("planclash", &stack(app_port, "", ""));
    let name = p.name.clone();
    let write = |p: &Project, cache_extra: &str, tail: &str| {
        p.write(
            "dev.toml",
            &format!(
                "[project]\nname = \"{name}\"\n\n{}",
                stack(app_port, cache_extra, tail)
            ),
        )
    };
    // `extra` publishes the port on every address, then leaves the active
    // profiles (its container keeps running); `cache` wants it on 127.0.0.1,
    // fixed (a port that is only a wish would move to a free one).
    write(
        &p,
        "",
        &format!("[services.extra]\nuse = \"redis\"\nports = [\"{port}:6379\"]\n"),
    );
    up(&mut p, &["extra"]);
    write(
        &p,
        &format!("ports = [{{ port = \"127.0.0.1:{port}:6379\", fixed = true }}]"),
        &format!(
            "[services.extra]\nuse = \"redis\"\nports = [\"{port}:6379\"]\nprofiles = [\"debug\"]\n"
        ),
    );
    let before = engine_state(&name);
    for args in [
        &["up", "--dry-run"][..],
        &["up", "--dry-run", "--json"],
        &["--progress", "plain", "up", "-d"],
    ] {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "host port `127.0.0.1:{port}` of service `cache` clashes with"
            )) && err.contains("of service `extra`"),
            "{args:?}: {}",
            text(&out)
        );
        assert_eq!(engine_state(&name), before, "{args:?} changed the engine");
    }
}

#[test]
fn a_host_port_another_process_holds_is_named_by_the_dry_run() {
    support::warm_images();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut p = Project::new("planport", &stack(port, "", ""));
    let before = engine_state(&p.name);
    let (lines, plan) = dry_run(&mut p, &[]);
    // Not fixed: `up` would publish the app on a free port instead.
    assert!(
        has(
            &lines,
            &format!(
                "host port 127.0.0.1:{port} for `app`: taken: would publish on a free port instead"
            )
        ),
        "{lines:#?}"
    );
    let check = &plan["port_checks"].as_array().unwrap()[0];
    assert_eq!(check["free"], false, "{check:#}");
    assert_eq!(check["fixed"], false, "{check:#}");
    assert_eq!(engine_state(&p.name), before);

    // The plan names the port `up` will publish on, and why (issue 21).
    let app = step(&plan, "app");
    let moved = &app["moves"][0];
    assert_eq!(moved["declared"], port, "{app:#}");
    assert_eq!(moved["taken_by"]["by"], "process", "{app:#}");
    let chosen = u16::try_from(moved["chosen"].as_u64().unwrap()).unwrap();
    assert_ne!(chosen, port);
    assert_eq!(app["spec"]["ports"][0]["host"], chosen, "{app:#}");
    let said = format!(
        "host port {port} of `app` is taken by another process: would publish its port 8080 on {chosen} instead"
    );
    assert!(has(&lines, &said), "{lines:#?}");

    // `up` does exactly that: dry run and `up` agree.
    let out = up(&mut p, &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "host port {port} of `app` is taken: publishing its port 8080 on {chosen} instead"
        )),
        "{}",
        text(&out)
    );
    let published = docker(&["port", &format!("{}-app-1", p.name), "8080/tcp"]);
    let hosts: std::collections::BTreeSet<u16> = published
        .lines()
        .filter_map(|l| l.rsplit(':').next()?.parse().ok())
        .collect();
    assert_eq!(hosts, [chosen].into(), "{published}");
    drop(listener);
}

#[test]
fn r31_ten_thousand_services_are_planned() {
    support::require_docker();
    // The listing of the containers holding the services' names once had
    // one filter value per name: "uri too long" at this size.
    let services: String = (0..10_000)
        .map(|i| format!("[services.s{i}]\nimage = \"devenv-e2e-web:latest\"\n"))
        .collect();
    let mut p = Project::new("plan-huge", &services);
    let (lines, plan) = dry_run(&mut p, &[]);
    assert_eq!(plan["services"].as_array().unwrap().len(), 10_000);
    assert!(
        has(&lines, "would create and start `s9999`"),
        "{:?}",
        &lines[..5]
    );
}
