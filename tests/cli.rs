//! CLI tests that need no engine: bad config and an unreachable engine each
//! give one clear screen and the documented exit code, touching nothing.

mod support;

use support::{stderr, text, Project};

#[test]
fn unknown_key_is_exit_2_with_file_line_and_column() {
    let p = Project::new(
        "clibad",
        "[services.db]\nimage = \"postgres\"\nimagee = \"typo\"\n",
    );
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("unknown field `imagee`"), "{err}");
    assert!(err.contains("dev.toml:6:1"), "points at the line:\n{err}");
}

#[test]
fn unknown_dependency_names_both_services_and_suggests() {
    let p = Project::new(
        "clidep",
        "[services.db]\nimage = \"postgres\"\n\n[services.app]\nimage = \"app\"\ndepends_on = { dbb = \"ready\" }\n",
    );
    let out = p.run(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("service `app` depends on unknown service `dbb`"),
        "{err}"
    );
    assert!(err.contains("did you mean `db`?"), "{err}");
}

#[test]
fn a_dependency_cycle_is_printed_whole() {
    let p = Project::new(
        "clicycle",
        "[services.a]\nimage = \"x\"\ndepends_on = [\"b\"]\n\n[services.b]\nimage = \"x\"\ndepends_on = [\"c\"]\n\n[services.c]\nimage = \"x\"\ndepends_on = [\"a\"]\n",
    );
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("dependency cycle: `a` → `b` → `c` → `a`"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_undefined_variable_without_default_is_exit_2() {
    let p = Project::new(
        "clivar",
        "[services.db]\nimage = \"postgres:${PG_TAG_UNSET_FOR_TEST}\"\n",
    );
    let out = p.run(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("variable `PG_TAG_UNSET_FOR_TEST` is not set and has no default"),
        "{}",
        text(&out)
    );
}

#[test]
fn dotenv_and_defaults_are_interpolated_and_secrets_masked() {
    let p = Project::new(
        "clienv",
        "[services.db]\nimage = \"postgres:${PG_TAG}\"\nenv = { DB_PASSWORD = \"${PW:-hunter2}\", PLAIN = \"${PLAIN:-visible}\" }\n",
    );
    p.write(".env", "PG_TAG=16-alpine\n");
    let out = p.run(&["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["services"]["db"]["image"], "postgres:16-alpine");
    assert_eq!(json["services"]["db"]["env"]["PLAIN"]["value"], "visible");
    assert_eq!(
        json["services"]["db"]["env"]["DB_PASSWORD"]["value"],
        "********"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}

#[test]
fn an_unreachable_engine_is_exit_1_naming_what_was_tried() {
    let p = Project::new("cliengine", "[services.db]\nimage = \"postgres\"\n");
    let out = p
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .args(["up", "-d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "cannot reach the Docker engine at `unix:///nonexistent.sock` (from DOCKER_HOST)"
        ),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn usage_errors_are_exit_2() {
    let p = Project::new("cliusage", "[services.db]\nimage = \"postgres\"\n");
    assert_eq!(p.run(&["up", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(p.run(&["logs", "nosuch"]).status.code(), Some(2));
}
