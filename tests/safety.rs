//! Regression tests for issue 10's data-loss cases, on the real engine:
//! nothing of the user's (an image's anonymous volume, another folder's
//! project, a container devenv did not create) is ever removed, and
//! `down -v` removes exactly this project's volumes.

use crate::support;

use std::process::Command;

use support::{stderr, text, warm_images, Project};

/// The docker CLI, for what a test must set up or observe outside devenv
/// (a Compose-made container, the engine's volumes).
fn docker(args: &[&str]) -> (String, bool) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("these tests need the docker CLI on PATH");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.success(),
    )
}

/// Names of the volumes labelled as `project`'s, sorted.
fn project_volumes(project: &str) -> Vec<String> {
    let (out, ok) = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=devenv.project={project}"),
    ]);
    assert!(ok);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).1
}

fn psql_ok(p: &mut Project, sql: &str) {
    p.ok(&[
        "exec", "db", "--", "psql", "-U", "app", "-d", "app", "-c", sql,
    ]);
}

/// PostgreSQL with no `volumes`: its data lives in the image's `VOLUME`.
const ANON_DB: &str = "[services.db]\nuse = \"postgres\"\nports = []\nvolumes = []\n";

#[test]
fn r10_an_images_anonymous_volume_survives_recreate_and_down_and_goes_only_with_down_v() {
    warm_images();
    let name = "wtsafety-anon";
    let mut p = Project::new(name, ANON_DB);
    // Volumes that are not this project's, by name only or by Compose's label.
    let bystanders = [format!("{name}_bystander"), format!("{name}_composed")];
    docker(&["volume", "create", &bystanders[0]]);
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("com.docker.compose.project={name}"),
        &bystanders[1],
    ]);

    p.ok(&["up", "-d"]);
    psql_ok(
        &mut p,
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);",
    );
    let volumes = project_volumes(name);
    assert_eq!(
        volumes.len(),
        1,
        "one labelled volume for PGDATA: {volumes:?}"
    );
    let (target, _) = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{ index .Labels \"devenv.anonymous\" }}",
        &volumes[0],
    ]);
    assert_eq!(target, "/var/lib/postgresql/data");

    // An env change recreates the container; the data stays.
    let before = p.ids();
    p.write(
        "dev.toml",
        &format!("[project]\nname = \"{name}\"\n\n{ANON_DB}env = {{ POSTGRES_USER = \"app\", POSTGRES_PASSWORD = \"secret\", POSTGRES_DB = \"app\", CHANGED = \"1\" }}\n"),
    );
    p.ok(&["up", "-d"]);
    assert_ne!(p.ids(), before, "the env change must recreate `db`");
    assert_eq!(
        p.psql("SELECT v FROM kept").0,
        "42",
        "kept across a recreate"
    );

    // A plain `down` keeps it; the next `up` finds it again.
    p.ok(&["down"]);
    assert_eq!(project_volumes(name), volumes);
    p.ok(&["up", "-d"]);
    assert_eq!(
        p.psql("SELECT v FROM kept").0,
        "42",
        "kept across down + up"
    );

    // Dropped from the file, `db` goes as an orphan; its volume waits for its return.
    let changed = std::fs::read_to_string(p.path().join("dev.toml")).unwrap();
    p.write(
        "dev.toml",
        &format!("[project]\nname = \"{name}\"\n\n[services.cache]\nuse = \"redis\"\nports = []\n"),
    );
    let out = p.ok(&["up", "-d"]);
    assert!(stderr(&out).contains("removing `db`"), "{}", text(&out));
    assert!(project_volumes(name).contains(&volumes[0]));
    p.write("dev.toml", &changed);
    p.ok(&["up", "-d"]);
    assert_eq!(
        p.psql("SELECT v FROM kept").0,
        "42",
        "kept across an orphan removal"
    );

    // `down -v` removes exactly this project's volumes.
    let out = p.ok(&["down", "-v"]);
    assert!(
        stderr(&out).contains(&format!("removed volume `{}`", volumes[0])),
        "{}",
        text(&out)
    );
    assert_eq!(project_volumes(name), Vec::<String>::new());
    for b in &bystanders {
        assert!(exists("volume", b), "`down -v` removed `{b}`");
    }
    p.ok(&["up", "-d"]);
    let (out, ok) = p.psql("SELECT v FROM kept");
    assert!(!ok, "the table must be gone with the volume:\n{out}");
    for b in &bystanders {
        docker(&["volume", "rm", b]);
    }
}

#[test]
fn r10_a_same_named_project_in_another_folder_is_refused_under_p_and_left_whole() {
    warm_images();
    let name = "wtsafety-twin";
    let mut a = Project::new(
        name,
        "[services.db]\nuse = \"postgres\"\nports = []\n\n[services.cache]\nuse = \"redis\"\nports = []\n",
    );
    a.ok(&["up", "-d"]);
    psql_ok(
        &mut a,
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);",
    );
    let ids = a.ids();
    let volumes = project_volumes(name);
    assert_eq!(volumes.len(), 2, "{volumes:?}");

    // Folder B: same name, and without `cache` (an orphan to `up`).
    let mut b = Project::new(name, "[services.db]\nuse = \"postgres\"\nports = []\n");
    let a_dir = a.path().canonicalize().unwrap().display().to_string();
    let b_dir = b.path().canonicalize().unwrap().display().to_string();
    let refusals: [&[&str]; 10] = [
        &["up", "-d"],
        &["down"],
        &["down", "-v"],
        &["stop"],
        &["restart"],
        &["start"],
        &["exec", "db", "--", "true"],
        &["run", "--rm", "db", "--", "true"],
        &["migrate"],
        &["seed"],
    ];
    // Without `-p`, B is a project of its own (tests/checkouts.rs); `-p`
    // naming A's project from B's folder is refused.
    for args in refusals {
        let args = [&["-p", name][..], args].concat();
        let out = b.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("project `{name}` belongs to the folder `{a_dir}`")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("this stack file is in `{b_dir}`")),
            "{err}"
        );
        assert!(err.contains("`devenv -p NAME …`"), "{err}");
        assert!(err.contains("`[project] name = \"NAME\"`"), "{err}");
    }

    // A is untouched: same containers, running, its data and volumes there.
    let ps = a.ps();
    assert!(ps.iter().all(|s| s["state"] == "running"), "{ps:?}");
    assert_eq!(a.ids(), ids);
    assert_eq!(a.psql("SELECT v FROM kept").0, "7");
    assert_eq!(project_volumes(name), volumes);

    // B under a distinct name is a project of its own; its `down -v` leaves A alone.
    let other = "wtsafety-twin2";
    b.ok(&["-p", other, "up", "-d"]);
    assert_eq!(project_volumes(other).len(), 1);
    b.ok(&["-p", other, "down", "-v"]);
    assert_eq!(project_volumes(other), Vec::<String>::new());
    assert_eq!(a.ids(), ids);
    assert_eq!(project_volumes(name), volumes);

    // A's own `down -v` still removes all of A's volumes.
    a.ok(&["down", "-v"]);
    assert_eq!(project_volumes(name), Vec::<String>::new());
}

#[test]
fn r10_a_compose_container_with_a_services_name_is_never_removed() {
    warm_images();
    let name = "wtsafety-foreign";
    let container = format!("{name}-cache-1");
    let network = format!("{name}_default");
    let compose_label = format!("com.docker.compose.project={name}");
    // What Compose v2 / Sail leaves: a container named `<project>-<service>-1`
    // with an anonymous volume, the project network, a project volume.
    // What an earlier, failed run of this test may have left.
    docker(&["rm", "-f", "-v", &container]);
    docker(&["network", "rm", &network]);
    docker(&["volume", "rm", &format!("{name}_composedata")]);
    let (_, ok) = docker(&["network", "create", "--label", &compose_label, &network]);
    assert!(ok);
    let (_, ok) = docker(&[
        "volume",
        "create",
        "--label",
        &compose_label,
        &format!("{name}_composedata"),
    ]);
    assert!(ok);
    let (id, ok) = docker(&[
        "run",
        "-d",
        "--name",
        &container,
        "--label",
        &compose_label,
        "--label",
        "com.docker.compose.service=cache",
        "-v",
        "/data",
        "devenv-e2e-web:latest",
    ]);
    assert!(ok, "{id}");
    let (anon, _) = docker(&["inspect", "-f", "{{ (index .Mounts 0).Name }}", &id]);

    let mut p = Project::new(
        name,
        "[services.db]\nuse = \"postgres\"\nports = []\n\n[services.cache]\nuse = \"redis\"\nports = []\n",
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("container `{container}` is in the way of service `cache`, and devenv did not create it: Docker Compose made it (project `{name}`)")),
        "{err}"
    );
    assert!(
        err.contains("devenv never removes or replaces a container it did not create"),
        "{err}"
    );
    let (running, _) = docker(&[
        "inspect",
        "-f",
        "{{ .Id }} {{ .State.Running }}",
        &container,
    ]);
    assert_eq!(
        running,
        format!("{id} true"),
        "the container must stay, running"
    );
    let (ours, _) = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=devenv.project={name}"),
    ]);
    assert_eq!(ours, "", "a refused `up` creates nothing");

    // The rest of the stack can come up, and `down -v` removes only it.
    p.ok(&["up", "-d", "db"]);
    // `up` makes every volume of the stack, `cache`'s too.
    let mine = project_volumes(name);
    assert_eq!(
        mine,
        [format!("{name}_pgdata"), format!("{name}_redisdata")],
        "{mine:?}"
    );
    let out = p.ok(&["down", "-v"]);
    assert!(
        stderr(&out).contains(&format!(
            "left network `{network}` alone: devenv did not create it"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(project_volumes(name), Vec::<String>::new());
    let (running, _) = docker(&[
        "inspect",
        "-f",
        "{{ .Id }} {{ .State.Running }}",
        &container,
    ]);
    assert_eq!(running, format!("{id} true"));
    assert!(
        exists("volume", &anon),
        "its anonymous volume `{anon}` must stay"
    );
    assert!(exists("volume", &format!("{name}_composedata")));
    assert!(exists("network", &network));

    docker(&["rm", "-f", "-v", &container]);
    docker(&["network", "rm", &network]);
    docker(&["volume", "rm", &format!("{name}_composedata")]);
}

#[test]
fn r10_a_container_without_any_label_is_named_as_not_devenvs() {
    warm_images();
    let name = "wtsafety-bare";
    let container = format!("{name}-web-1");
    docker(&["rm", "-f", &container]);
    let (id, ok) = docker(&["create", "--name", &container, "devenv-e2e-web:latest"]);
    assert!(ok, "{id}");
    let mut p = Project::new(
        name,
        "[services.web]\nimage = \"devenv-e2e-web:latest\"\nports = []\n",
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("something else made it (it has no `devenv.project` label)"),
        "{}",
        text(&out)
    );
    let (same, _) = docker(&["inspect", "-f", "{{ .Id }}", &container]);
    assert_eq!(same, id);
    docker(&["rm", "-f", &container]);
}

#[test]
fn r10_a_watch_target_with_dot_dot_is_a_config_error_at_its_line() {
    let p = Project::new(
        "wtsafety-dotdot",
        "[services.app]\nimage = \"x\"\n\n[[services.app.watch]]\npath = \".\"\naction = \"sync\"\ntarget = \"/srv/app/../../etc\"\n",
    );
    let out = p.run(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("watch target `/srv/app/../../etc` contains `..`"),
        "{err}"
    );
    assert!(err.contains("dev.toml:7:1"), "points at the rule:\n{err}");
}

#[test]
fn r10_devenvs_own_files_never_go_through_a_planted_symlink() {
    support::require_docker();
    let runtime = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // Someone made devenv's folder first, as a symlink to a folder of theirs.
    std::os::unix::fs::symlink(elsewhere.path(), runtime.path().join("devenv")).unwrap();
    let p = Project::new("wtsafety-planted", "[services.web]\nimage = \"x\"\n");
    let out = p
        .cmd()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["down"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot take the project lock"), "{err}");
    assert!(
        err.contains("is not a folder (a symlink or a file is in its place)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing may be written through the symlink"
    );

    // A folder of its own it makes private, and uses.
    let runtime = tempfile::tempdir().unwrap();
    let out = p
        .cmd()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["down"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    let dir = runtime.path().join("devenv");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(dir.join("wtsafety-planted.lock").is_file());
}
