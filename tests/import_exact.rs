//! Issue 24: the last real-file shapes `devenv import` changed silently.
//!
//! Each fixture (`tests/fixtures/compose/r24-*`) is written in the shape of
//! a real file (Laradock, Coolify, Pterodactyl, a Go backend with a secret
//! password, Compose's own command and port tests). Each runs as a corpus
//! case (Compose v2 accepts it, `devenv config` loads the import, ports and
//! variables agree), and then [`agrees`] holds the rest of Compose's
//! resolved model against `devenv config --json`: image, build, command,
//! entrypoint, volumes, depends_on, probes, restart, user, working_dir,
//! profiles and extra_hosts. What differs must be named in a warning.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use devenv::import::{import_compose, ImportError};
use serde_json::Value;

use crate::import::{agrees_masked, compose_bin, corpus, fixed_env, fixtures, run, Case};

/// `$$` is how `config` writes a literal `$`.
fn literal(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("$$", "$")),
        Value::Array(items) => Value::Array(items.iter().map(literal).collect()),
        other => other.clone(),
    }
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The probe Compose's healthcheck runs, as devenv's exec probe writes it.
fn compose_probe(health: &Value) -> Option<Vec<String>> {
    let test = list(&literal(&health["test"]));
    match test.split_first()? {
        (first, rest) if first == "CMD-SHELL" => {
            Some(vec!["sh".into(), "-c".into(), rest.join(" ")])
        }
        (first, rest) if first == "CMD" => Some(rest.to_vec()),
        _ => None,
    }
}

/// Compose's resolved model and devenv's agree on every key the issue
/// names, but for what a warning of the report names (`key`, `service`).
fn agrees(case: &Case, warned: &[(&str, &str)]) {
    let said = |key: &str, service: &str| {
        warned.contains(&(key, service))
            && case.report.contains(&format!(
                "`{key}` not carried over from service `{service}`"
            ))
    };
    for (name, c) in case.compose["services"].as_object().unwrap() {
        let d = &case.devenv["services"][name];
        let ctx = format!("service `{name}`\n{}", case.toml);
        if let Some(image) = c["image"].as_str() {
            assert_eq!(d["image"].as_str(), Some(image), "image of {ctx}");
        }
        if c["build"].is_object() {
            assert_eq!(
                d["build"]["context"], c["build"]["context"],
                "build of {ctx}"
            );
            assert_eq!(
                d["build"]["target"], c["build"]["target"],
                "target of {ctx}"
            );
        }
        for key in ["command", "entrypoint"] {
            let want = literal(&c[key]);
            // `config` masks what a secret filled in (`--requirepass ********`).
            let same = match (d[key].as_array(), want.as_array()) {
                (Some(got), Some(want)) => {
                    got.len() == want.len()
                        && got
                            .iter()
                            .zip(want)
                            .all(|(g, w)| agrees_masked(g.as_str().unwrap(), w.as_str().unwrap()))
                }
                _ => d[key] == want,
            };
            assert!(same, "{key} of {ctx}: {} vs {want}", d[key]);
        }
        for key in ["user", "working_dir"] {
            assert_eq!(d[key], c[key], "{key} of {ctx}");
        }
        let restart = c["restart"].as_str().unwrap_or("no");
        assert_eq!(
            d["restart"].as_str().unwrap_or("no"),
            restart,
            "restart of {ctx}"
        );
        assert_eq!(
            list(&d["profiles"]),
            list(&c["profiles"]),
            "profiles of {ctx}"
        );
        let hosts: Vec<String> = list(&c["extra_hosts"])
            .iter()
            .map(|h| h.replacen('=', ":", 1))
            .collect();
        assert_eq!(list(&d["extra_hosts"]), hosts, "extra_hosts of {ctx}");
        let conditions: BTreeMap<String, String> = c["depends_on"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(dep, v)| {
                let condition = match v["condition"].as_str() {
                    Some("service_healthy") => "ready",
                    Some("service_completed_successfully") => "completed",
                    _ => "started",
                };
                (dep.clone(), condition.to_owned())
            })
            .collect();
        let got: BTreeMap<String, String> = d["depends_on"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(dep, v)| (dep.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(got, conditions, "depends_on of {ctx}");
        let targets = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|m| m["target"].as_str().unwrap().to_owned())
                .collect()
        };
        let (want, got) = (targets(&c["volumes"]), targets(&d["volumes"]));
        if want != got {
            assert!(
                said("volumes", name),
                "volumes of {ctx}: {want:?} vs {got:?}"
            );
        }
        match (compose_probe(&c["healthcheck"]), d["ready"].get("exec")) {
            (Some(want), Some(exec)) => {
                assert_eq!(list(&exec["command"]), want, "probe of {ctx}")
            }
            (None, Some(_)) => panic!("a probe Compose does not run: {ctx}"),
            // Native probes are checked by each test.
            _ => {}
        }
    }
}

#[test]
fn r24_a_relative_anonymous_volume_is_said_and_not_written() {
    let case = corpus(
        "r24_laradock_workspace",
        "r24-laradock",
        &["docker-compose.yml"],
        "dev.toml",
    );
    assert!(
        case.report
            .contains("`workspace`: the container path `workspace` is not absolute"),
        "{}",
        case.report
    );
    agrees(&case, &[("volumes", "workspace")]);
}

#[test]
fn r24_an_empty_host_port_is_an_ephemeral_one_and_ipv6_loads() {
    // Compose's `config` shows no published port for `${WEB_PORT}:8080`
    // (unset) and `:8081`; the corpus compares every mapping.
    let case = corpus("r24_ports", "r24-ports", &["compose.yaml"], "dev.toml");
    let ports = case.devenv["services"]["web"]["ports"].as_array().unwrap();
    assert!(ports[0].get("host").is_none(), "{ports:?}");
    assert_eq!(ports[3]["host_ip"], "::1", "{ports:?}");
    agrees(&case, &[]);
}

#[test]
fn r24_a_host_range_is_any_free_port_of_it() {
    let case = corpus("r24_ports", "r24-ports", &["compose.yaml"], "dev.toml");
    let range = &case.devenv["services"]["web"]["ports"][2];
    assert_eq!(
        (range["host"].as_u64(), range["host_last"].as_u64()),
        (Some(6005), Some(6015))
    );
    assert_eq!(
        case.compose["services"]["web"]["ports"][2]["published"],
        "6005-6015"
    );
}

#[test]
fn r24_escaped_variables_in_probes_are_the_containers() {
    // No `POSTGRES_USER` or `REDIS_PASSWORD` on the host: the probes read
    // the container's, and `devenv config` still loads the file.
    let case = corpus(
        "r24_container_env",
        "r24-container-env",
        &["compose.yaml"],
        "dev.toml",
    );
    let services = &case.devenv["services"];
    assert_eq!(
        list(&services["postgres"]["ready"]["exec"]["command"]),
        [
            "sh",
            "-c",
            "pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}"
        ]
    );
    // The redis probe's password is the service's own `REDIS_PASSWORD`.
    assert!(
        case.toml
            .contains("ready = { redis = { password = \"${REDIS_PASSWORD:-changeme}\" } }"),
        "{}",
        case.toml
    );
    // A URL with the container's variable is fetched in the container.
    assert_eq!(
        list(&services["soketi"]["ready"]["exec"]["command"])[2],
        "wget -qO- http://127.0.0.1:6001/ready?app=${SOKETI_DEFAULT_APP_ID} || exit 1"
    );
    agrees(&case, &[]);
}

#[test]
fn r24_pg_isready_checks_that_the_server_accepts_connections() {
    // The password is in a secret file: a login could never succeed, and
    // `pg_isready` does not log in. It runs as written.
    let case = corpus(
        "r24_pg_secret",
        "r24-pg-secret",
        &["compose.yaml"],
        "dev.toml",
    );
    assert_eq!(
        list(&case.devenv["services"]["db"]["ready"]["exec"]["command"]),
        ["pg_isready"]
    );
    assert_eq!(
        case.devenv["services"]["backend"]["depends_on"]["db"],
        "ready"
    );
    agrees(&case, &[]);
}

#[test]
fn r24_a_command_is_interpolated_then_split() {
    // `.env` has `COMMAND="echo hello"`: two words, as Compose runs them;
    // an unset command is no word at all; `$$` stays the container's.
    let case = corpus("r24_command", "r24-command", &["compose.yaml"], "dev.toml");
    let services = &case.devenv["services"];
    assert_eq!(list(&services["runner"]["command"]), ["echo", "hello"]);
    assert_eq!(
        list(&services["worker"]["command"]),
        ["sh", "-c", "sleep 1"]
    );
    assert_eq!(services["quiet"]["command"], serde_json::json!([]));
    agrees(&case, &[]);
}

#[test]
fn r24_a_file_without_services_is_imported() {
    let case = corpus(
        "r24_no_services",
        "r24-no-services",
        &["compose.yaml"],
        "dev.toml",
    );
    assert!(case.devenv["services"].as_object().unwrap().is_empty());
}

#[test]
fn r24_links_hosts_optional_env_files_and_external_names_carry_over() {
    let case = corpus(
        "r24_panel",
        "r24-panel",
        &["docker-compose.yml"],
        "dev.toml",
    );
    let panel = &case.devenv["services"]["panel"];
    // `links` orders the start, as Compose's `depends_on` shows.
    assert_eq!(panel["depends_on"]["database"], "started");
    assert_eq!(panel["depends_on"]["cache"], "started");
    // What has no `dev.toml` spelling is named with its service.
    for line in [
        "`links` not carried over from service `panel`: alias `redis` of `cache`",
        "`hostname` not carried over from service `panel`",
        "`networks.aliases` not carried over from service `panel`: on network `default`",
    ] {
        assert!(case.report.contains(line), "{line}\n{}", case.report);
    }
    assert!(
        case.toml.contains("name = \"pterodactyl_logs\""),
        "{}",
        case.toml
    );
    assert!(
        case.toml
            .contains("env_file = [{ path = \"./panel.env\", required = false }]"),
        "{}",
        case.toml
    );
    agrees(&case, &[]);

    // With the optional file present, the import is the same file.
    let dir = fixtures().join("r24-panel");
    let mut text = vec![(
        dir.join("docker-compose.yml"),
        fs::read_to_string(dir.join("docker-compose.yml")).unwrap(),
    )];
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("panel.env"), "APP_ENV=local\n").unwrap();
    text[0].0 = tmp.path().join("docker-compose.yml");
    let present = import_compose(&text, tmp.path(), &fixed_env).unwrap();
    let empty = tempfile::tempdir().unwrap();
    text[0].0 = empty.path().join("docker-compose.yml");
    let absent = import_compose(&text, empty.path(), &fixed_env).unwrap();
    assert_eq!(present.toml, absent.toml);
}

/// Snippets Compose refuses, in the shapes of compose-go's loader tests,
/// each with the words `docker compose config` refuses it with.
const REFUSED: &[(&str, &str)] = &[
    (
        "services:\n  web:\n    image: nginx\n    foo: bar\n",
        "services.web additional properties 'foo' not allowed",
    ),
    (
        "services:\n  web:\n    image: nginx\n    ports: 80\n",
        "services.web.ports must be a array",
    ),
    (
        "services:\n  web:\n    image: [nginx]\n",
        "services.web.image must be a string",
    ),
    (
        "services:\n  web:\n    build:\n      context: .\n      bogus: 1\n",
        "services.web.build additional properties 'bogus' not allowed",
    ),
    (
        "services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        condition: whenever\n  db:\n    image: postgres\n",
        "services.web.depends_on.db.condition value must be one of 'service_started', 'service_healthy', 'service_completed_successfully'",
    ),
    (
        "services:\n  web:\n    image: nginx\n    environment: 3\n",
        "services.web.environment must be a mapping",
    ),
    (
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: volume\n        target: /data\n        bogus: 1\n",
        "services.web.volumes.0 additional properties 'bogus' not allowed",
    ),
    (
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        published: [1]\n",
        "services.web.ports.0.published must be a integer or string",
    ),
    ("networks: 5\n", "networks must be a mapping"),
    (
        "services:\n  web:\n    image: nginx\n    environment:\n      A: [1]\n",
        "services.web.environment.A must be a boolean, null, number or string",
    ),
];

#[test]
fn r24_what_compose_refuses_is_refused_with_its_reason_and_place() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, reason) in REFUSED {
        let path = tmp.path().join("compose.yaml");
        fs::write(&path, text).unwrap();
        let compose = run(
            Command::new(compose_bin()).args(["config", "-q"]),
            tmp.path(),
        );
        let said = String::from_utf8_lossy(&compose.stderr);
        assert!(!compose.status.success(), "Compose accepts:\n{text}");
        assert!(said.contains(reason), "Compose says {said}");

        let files = vec![(PathBuf::from("compose.yaml"), text.to_string())];
        let err = import_compose(&files, tmp.path(), &fixed_env).unwrap_err();
        let ImportError::Schema {
            location,
            reason: why,
            span,
            ..
        } = &err
        else {
            panic!("expected a schema refusal for\n{text}\ngot {err:?}");
        };
        assert_eq!(&format!("{location} {why}"), reason, "{text}");
        assert_eq!(err.exit_code(), 2);
        // The label points at the key named last in the location.
        let key = location.rsplit('.').find(|p| p.parse::<usize>().is_err());
        if let Some(key) = key {
            let at = &text[span.offset()..span.offset() + span.len()];
            assert!(
                at == key || reason.contains(&format!("'{at}'")),
                "{at} in\n{text}"
            );
        }
    }
}
