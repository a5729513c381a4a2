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
    let name: &str = &support::suffixed("wtsafety-anon");
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
    let name: &str = &support::suffixed("wtsafety-twin");
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
    let other: &str = &support::suffixed("wtsafety-twin2");
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
    let name: &str = &support::suffixed("wtsafety-foreign");
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
    let name: &str = &support::suffixed("wtsafety-bare");
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
    assert!(dir.join(format!("{}.lock", p.name)).is_file());
}

/// Issue 22: a missing `external = true` volume is refused before anything
/// is made (the engine would create it empty, and PostgreSQL would start on
/// nothing), naming it and how to create it; once the user made it, `up`
/// mounts it by its own name and `down -v` leaves it alone.
#[test]
fn r22_a_missing_external_volume_is_refused_before_anything_is_made() {
    warm_images();
    // Unique per run: the volume is no project's, so no sweep finds it.
    let volume = format!("r22extvol-company-data-{}", std::process::id());
    let mut p = Project::new(
        "r22extvol",
        &format!(
            "[services.web]\nimage = \"devenv-e2e-web:latest\"\n\
             command = [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv\"]\n\
             volumes = [\"data:/data\"]\n\n\
             [volumes.data]\nexternal = true\nname = \"{volume}\"\n"
        ),
    );
    p.uses_docker = true;
    let nothing_made = |p: &Project| {
        assert!(
            !exists("volume", &volume),
            "the external volume was created"
        );
        assert_eq!(project_volumes(&p.name), Vec::<String>::new());
        assert!(!exists("network", &format!("{}_default", p.name)));
        let (containers, ok) = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=devenv.project={}", p.name),
        ]);
        assert!(ok && containers.is_empty(), "containers made: {containers}");
    };
    for args in [
        &["up", "-d"][..],
        &["up", "--dry-run"],
        &["run", "web", "--", "true"],
    ] {
        let out = p.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            err.contains(&format!("external volume `{volume}`, which does not exist")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("docker volume create {volume}")),
            "{args:?}: {err}"
        );
        nothing_made(&p);
    }

    // The user makes it (we remove it at the end: this test made it).
    struct RemoveVolume(String);
    impl Drop for RemoveVolume {
        fn drop(&mut self) {
            docker(&["volume", "rm", &self.0]);
        }
    }
    assert!(docker(&["volume", "create", &volume]).1);
    let _made = RemoveVolume(volume.clone());
    p.ok(&["up", "-d"]);
    let (mounts, ok) = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Name}} {{end}}",
        &format!("{}-web-1", p.name),
    ]);
    assert!(
        ok && mounts.split_whitespace().any(|m| m == volume),
        "{mounts}"
    );
    p.ok(&["down", "-v"]);
    assert!(
        exists("volume", &volume),
        "`down -v` removed an external volume"
    );
}

/// The app's rows, one word per trial: what "its last committed rows" are.
fn set_rows(p: &mut Project, word: &str) {
    psql_ok(
        p,
        &format!("DELETE FROM marks; INSERT INTO marks VALUES ('{word}');"),
    );
}

/// Every file under `dir` with its content.
fn files_of(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut all = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                todo.push(path);
            } else {
                all.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    all
}

/// devenv as a child process of the test, output discarded, to be killed.
fn spawn(p: &Project, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
        .args(args)
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The temporary databases of devenv's database commands still on the server.
fn leftovers(p: &Project) -> String {
    p.psql(
        "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database \
         WHERE datname LIKE 'devenv\\_import\\_%' OR datname LIKE 'devenv\\_snaptmp\\_%' \
         OR datname LIKE 'devenv\\_replaced\\_%' OR datname = 'devenv_branchtmp' \
         OR (datname = 'app' AND NOT datallowconn)",
    )
    .0
}

#[test]
fn r22_database_commands_down_and_test_killed_at_random_points_lose_nothing() {
    support::warm_app_image();
    let mut rng = support::Rng::seeded("DEVENV_CRASH_SEED");
    let trials: usize = std::env::var("DEVENV_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut p = Project::new(
        "wtsafety-crash",
        &support::app_stack(&support::repo().join("examples/laravel"), ""),
    );
    p.write("notes/mine.txt", "my notes\n");
    p.ok(&["up", "-d", "db"]);
    psql_ok(&mut p, "CREATE TABLE marks (v text);");
    set_rows(&mut p, "dumped");
    p.ok(&["db", "export", "dump.sql"]);
    set_rows(&mut p, "base");
    p.ok(&["db", "snapshot", "base"]);
    p.ok(&[
        "exec",
        "db",
        "--",
        "sh",
        "-c",
        "echo kept > /var/lib/postgresql/data/devenv-crash-sentinel",
    ]);
    let checkout = files_of(p.path());

    // What each command is, how long it takes here at most (the random
    // point falls within), and what the app's rows are once it committed.
    let commands: [(&str, &[&str], u64, Option<&str>); 5] = [
        ("db snapshot", &["db", "snapshot", "TRIAL"], 2000, None),
        ("db restore", &["db", "restore", "base"], 2500, Some("base")),
        (
            "db import",
            &["db", "import", "dump.sql"],
            3000,
            Some("dumped"),
        ),
        ("down", &["down"], 2500, None),
        ("test", &["test"], 15000, None),
    ];
    let mut n = 0;
    for (what, args, max_ms, committed) in commands {
        for trial in 0..trials {
            n += 1;
            let live = format!("live-{n}");
            set_rows(&mut p, &live);
            let name = format!("t{n}");
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "TRIAL" { name.as_str() } else { a })
                .collect();
            let mut child = spawn(&p, &args);
            let delay = rng.below(max_ms);
            // The random point is the test: there is no condition to await.
            std::thread::sleep(std::time::Duration::from_millis(delay));
            child.kill().unwrap(); // SIGKILL, by the child's PID
            child.wait().unwrap();

            // The next command, any of them, repairs what the killed one left.
            let next: &[&str] = match (what, trial % 3) {
                ("down", _) | (_, 0) => &["up", "-d", "db"],
                (_, 1) => &["db", "snapshots"],
                _ => &["psql", "-c", "SELECT 1"],
            };
            let at = format!("`{what}` killed after {delay} ms (trial {trial}), then `{next:?}`");
            let out = p.run(next);
            assert!(out.status.success(), "{at}:\n{}", text(&out));
            let repairs: Vec<String> = stderr(&out)
                .lines()
                .filter(|l| l.contains("interrupted"))
                .map(str::to_string)
                .collect();
            eprintln!("{at}: {repairs:?}");
            let (rows, answered) = p.psql("SELECT string_agg(v, ',') FROM marks");
            assert!(answered, "{at}: the app's database answers");
            assert!(
                rows == live || Some(rows.as_str()) == committed,
                "{at}: the app holds {rows:?}, not its last committed rows ({live:?} or {committed:?})"
            );
            assert_eq!(leftovers(&p), "", "{at}: nothing half-done is left");
            let out = p.run(&[
                "exec",
                "db",
                "--",
                "cat",
                "/var/lib/postgresql/data/devenv-crash-sentinel",
            ]);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "kept",
                "{at}: the file in the named volume"
            );
            assert!(files_of(p.path()) == checkout, "{at}: the checkout's files");
        }
    }

    // Issue 22, item 10: `down -v` in another terminal waits for a running
    // `test` (the project lock) instead of pulling its database away.
    // `--repeat` keeps PHPUnit busy long enough for `down` to meet it.
    let mut test = spawn(&p, &["test", "--", "--repeat", "40"]);
    assert!(
        support::eventually(120, || p
            .psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'devenv\\_test\\_%'")
            .0
            == "1"),
        "the test run got its database"
    );
    let down = p.run(&["down", "-v", "-y"]);
    let status = test.wait().unwrap();
    assert!(status.success(), "the test run finished: {status:?}");
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        stderr(&down).contains(&format!(
            "waiting for another devenv working on project `{}`",
            p.name
        )),
        "{}",
        text(&down)
    );
    assert!(project_volumes("wtsafety-crash").is_empty());
}

/// A database service on its own, with the postgres preset's named volume.
const DB_ONLY: &str = "[services.db]\nuse = \"postgres\"\nports = []\n";

#[test]
fn r22_the_next_command_repairs_what_a_killed_one_left_and_says_so() {
    warm_images();
    let mut p = Project::new("wtsafety-repair", DB_ONLY);
    p.ok(&["up", "-d"]);
    psql_ok(
        &mut p,
        "CREATE TABLE marks (v text); INSERT INTO marks VALUES ('mine');",
    );
    // What killed commands leave: a half-loaded import, a half-taken
    // snapshot, and (devenv before issue 22) the app's database closed.
    let on_server = |p: &mut Project, sql: &str| {
        p.ok(&[
            "exec", "db", "--", "psql", "-U", "app", "-d", "postgres", "-c", sql,
        ]);
    };
    on_server(&mut p, "CREATE DATABASE devenv_import_999");
    on_server(&mut p, "CREATE DATABASE devenv_snaptmp_mid");
    // A branch's clone a switch (issue 26) was killed before swapping in.
    on_server(&mut p, "CREATE DATABASE devenv_branchtmp");
    on_server(&mut p, "ALTER DATABASE app WITH ALLOW_CONNECTIONS false");
    let out = p.ok(&["db", "snapshots"]);
    let said = stderr(&out);
    for line in [
        "rolled back an interrupted import: `app` keeps the data it had",
        "rolled back the interrupted snapshot `mid`: `devenv db snapshot mid` takes it again",
        "opened `app` to connections again: an interrupted command had closed it",
        "rolled back an interrupted switch of the branch's database: `app` keeps the branch it had",
    ] {
        assert!(said.contains(line), "{line}\n{}", text(&out));
    }
    assert_eq!(leftovers(&p), "");
    assert_eq!(p.psql("SELECT string_agg(v, ',') FROM marks").0, "mine");

    // The database an import of devenv before issue 22 dropped and never
    // created again: a restore killed between its renames left it aside.
    on_server(&mut p, "ALTER DATABASE app RENAME TO devenv_replaced_1");
    let out = p.ok(&["db", "snapshots"]);
    assert!(
        stderr(&out).contains(
            "put `app` back: an interrupted command had set it aside as `devenv_replaced_1`"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(p.psql("SELECT string_agg(v, ',') FROM marks").0, "mine");
    // A second command finds nothing to say.
    let out = p.ok(&["db", "snapshots"]);
    assert!(!stderr(&out).contains("interrupted"), "{}", text(&out));
}

/// Issue 26: a database per branch's switch (`db branch`, or `up -d`
/// after a `git checkout`) killed at random points loses nothing: after
/// the next command (`db branches` or `up -d`), the app's database is
/// there, answers, is the checkout's branch's and holds that branch's
/// rows; every kept copy holds its own branch's; no half-made clone is left.
#[test]
fn r26_a_branch_switch_killed_at_random_points_loses_nothing() {
    warm_images();
    let mut rng = support::Rng::seeded("DEVENV_CRASH_SEED");
    let trials: usize = std::env::var("DEVENV_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let started = std::time::Instant::now();
    let mut p = Project::new("wtsafety-branch", DB_ONLY);
    support::git(p.path(), &["init", "-q"]);
    support::git(p.path(), &["add", "dev.toml"]);
    support::git(p.path(), &["commit", "-qm", "init"]);
    p.ok(&["up", "-d"]);
    p.ok(&["db", "branch", "on"]);
    psql_ok(&mut p, "CREATE TABLE marks (v text);");
    set_rows(&mut p, "main-0");
    // Each branch's last committed rows.
    let mut rows = std::collections::HashMap::from([("main".to_string(), "main-0".to_string())]);
    let mut current = "main".to_string();
    for n in 1..=trials {
        // Every other trial a new branch (a clone, then the swap), else
        // back to `main` (the swap alone).
        let target = if n % 2 == 1 {
            let b = format!("b{n}");
            support::git(p.path(), &["checkout", "-q", "-b", &b]);
            b
        } else {
            support::git(p.path(), &["checkout", "-q", "main"]);
            "main".to_string()
        };
        // A new branch starts from the one it was created from.
        let expected = rows.get(&target).unwrap_or(&rows[&current]).clone();
        // Which command switches, and how long it takes here at most (the
        // random point falls within); each meets both kinds of switch.
        let (killed, max_ms): (&[&str], u64) = if (n / 2) % 2 == 0 {
            (&["db", "branch"], 1500)
        } else {
            (&["up", "-d"], 3000)
        };
        let mut child = spawn(&p, killed);
        let delay = rng.below(max_ms);
        // The random point is the test: there is no condition to await.
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL, by the child's PID
        child.wait().unwrap();
        // Now and then the developer goes back before the switch is
        // finished: whatever the killed one left must not stay behind.
        let (target, expected) = if n % 6 == 3 {
            support::git(p.path(), &["checkout", "-q", &current]);
            (current.clone(), rows[&current].clone())
        } else {
            (target, expected)
        };

        let next: &[&str] = if n % 4 < 2 {
            &["db", "branches"]
        } else {
            &["up", "-d"]
        };
        let at = format!(
            "`{killed:?}` killed after {delay} ms (trial {n}), then `{next:?}` on `{target}`"
        );
        let out = p.run(next);
        assert!(out.status.success(), "{at}:\n{}", text(&out));
        let repairs: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| l.contains("interrupted") || l.contains("branch `"))
            .map(str::to_string)
            .collect();
        eprintln!("{at}: {repairs:?}");
        assert_eq!(
            support::db_branch(&p),
            target,
            "{at}: the checkout's branch's database"
        );
        let (got, answered) = p.psql("SELECT string_agg(v, ',') FROM marks");
        assert!(answered, "{at}: the app's database answers");
        assert_eq!(got, expected, "{at}: the branch's rows");
        assert_eq!(leftovers(&p), "", "{at}: nothing half-done is left");
        assert_eq!(
            p.psql(
                "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database \
                 WHERE datname LIKE 'devenv\\_branch\\_%' \
                 AND split_part(shobj_description(oid, 'pg_database'), ' (', 1) \
                     IS DISTINCT FROM 'devenv branch: ' || substr(datname, 15)"
            )
            .0,
            "",
            "{at}: every kept copy is labelled with its own branch"
        );
        let word = format!("{target}-{n}");
        set_rows(&mut p, &word);
        rows.insert(target.clone(), word);
        current = target;
    }
    // Back on each branch once more: every kept copy holds its rows.
    for (branch, want) in rows.clone() {
        support::git(p.path(), &["checkout", "-q", &branch]);
        p.ok(&["db", "branch"]);
        assert_eq!(
            p.psql("SELECT string_agg(v, ',') FROM marks").0,
            want,
            "{branch}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15 * 60),
        "{trials} trials took {:?}",
        started.elapsed()
    );
}

/// Issue 26: a switch to a new branch killed while the branch's
/// migrations run (after the swap committed) has them run by the next
/// command, which says so.
#[test]
fn r26_a_switch_killed_during_its_migrations_has_them_run_by_the_next_command() {
    warm_images();
    // While `/tmp/slow` exists, the migration says it started and hangs
    // (the killed switch's copy never finishes: only the next one can).
    let migrate = "if test -e /tmp/slow; then touch /tmp/started; sleep 3600; fi; \
        psql -U app -d app -c 'CREATE TABLE IF NOT EXISTS migrated (n int); INSERT INTO migrated VALUES (1)'";
    let mut p = Project::new(
        "wtsafety-brmigrate",
        &format!("{DB_ONLY}hooks = {{ migrate = [{migrate:?}] }}\n"),
    );
    support::git(p.path(), &["init", "-q"]);
    support::git(p.path(), &["add", "dev.toml"]);
    support::git(p.path(), &["commit", "-qm", "init"]);
    p.ok(&["up", "-d"]);
    p.ok(&["db", "branch", "on"]);
    p.ok(&["exec", "db", "--", "touch", "/tmp/slow"]);
    support::git(p.path(), &["checkout", "-q", "-b", "feature"]);
    let mut switch = spawn(&p, &["db", "branch"]);
    assert!(
        support::eventually(60, || p
            .run(&["exec", "db", "--", "test", "-e", "/tmp/started"])
            .status
            .success()),
        "the switch swapped `feature`'s database in and runs its migrations"
    );
    switch.kill().unwrap(); // SIGKILL, by the child's PID
    switch.wait().unwrap();
    p.ok(&["exec", "db", "--", "rm", "/tmp/slow"]);

    let out = p.ok(&["db", "branches"]);
    assert!(
        stderr(&out).contains("branch `feature`'s database has not had its migrations yet"),
        "{}",
        text(&out)
    );
    assert_eq!(support::db_branch(&p), "feature");
    let (n, migrated) = p.psql("SELECT count(*) > 0 FROM migrated");
    assert!(
        migrated && n == "t",
        "the next command ran the migrations: {n}"
    );
    assert_eq!(leftovers(&p), "");
}

#[test]
fn r22_ctrl_c_stops_a_long_import_and_leaves_the_old_data() {
    warm_images();
    let mut p = Project::new("wtsafety-ctrlc", DB_ONLY);
    p.ok(&["up", "-d"]);
    psql_ok(
        &mut p,
        "CREATE TABLE marks (v text); INSERT INTO marks VALUES ('before');",
    );
    // A dump that takes a minute to load.
    p.write(
        "slow.sql",
        "CREATE TABLE marks (v text);\nINSERT INTO marks VALUES ('imported');\nSELECT pg_sleep(60);\n",
    );
    let mut import = spawn(&p, &["db", "import", "slow.sql"]);
    assert!(
        support::eventually(30, || {
            p
            .psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
            .0
            == "1"
        }),
        "the import is loading"
    );
    let started = std::time::Instant::now();
    let (_, sent) = send_signal("INT", import.id());
    assert!(sent);
    let status = import.wait().unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(p.psql("SELECT string_agg(v, ',') FROM marks").0, "before");
    assert_eq!(leftovers(&p), "");
    assert_eq!(
        p.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()").0,
        "0",
        "the load in the container was stopped too"
    );
}

/// Sends signal `sig` to process `pid` with the system's `kill`.
fn send_signal(sig: &str, pid: u32) -> (String, bool) {
    let out = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn r22_down_v_lists_the_volumes_and_snapshots_it_removes_and_off_a_terminal_goes_ahead() {
    warm_images();
    let mut p = Project::new("wtsafety-downv", DB_ONLY);
    p.ok(&["up", "-d"]);
    p.ok(&["db", "snapshot", "one"]);
    p.ok(&["db", "snapshot", "two"]);
    let pgdata = format!("{}_pgdata", p.name);
    assert_eq!(project_volumes(&p.name), std::slice::from_ref(&pgdata));
    // Not on a terminal (stdin is not one here): the list, then no question.
    let out = p
        .cmd()
        .args(["down", "-v"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    let listed: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("down -v removes"))
        .take(2)
        .collect();
    assert_eq!(
        listed,
        [
            "down -v removes these volumes and everything in them:",
            &format!("  {pgdata} (service `db`: database `app` and 2 snapshots)"),
        ],
        "{err}"
    );
    assert!(!err.contains("[y/N]"), "no question off a terminal: {err}");
    assert!(project_volumes(&p.name).is_empty());
}

/// Words of a diagnostic as one line, whatever width it was wrapped to.
fn flat(s: &str) -> String {
    s.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` gzipped by the system's `gzip`.
fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("these tests need gzip on PATH");
    let mut stdin = child.stdin.take().unwrap();
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Every database on the server, sorted.
fn all_databases(p: &Project) -> String {
    p.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
        .0
}

#[test]
fn import_with_errors_leaves_the_app_database_as_it_was_and_drops_only_its_own() {
    warm_images();
    let mut p = Project::new("wtsafety-badimport", DB_ONLY);
    p.ok(&["up", "-d"]);
    psql_ok(
        &mut p,
        "CREATE TABLE marks (v text); INSERT INTO marks VALUES ('mine'), ('also mine');",
    );
    // Beside the app's: a snapshot and a database of the user's own, which
    // dropping the failed load's database must leave alone.
    p.ok(&["db", "snapshot", "kept"]);
    psql_ok(&mut p, "CREATE DATABASE notes");
    let before = all_databases(&p);
    assert!(
        before.contains("devenv_snap_kept") && before.contains("notes"),
        "{before}"
    );

    // Half of it loads, then a statement fails.
    p.write(
        "bad.sql",
        "CREATE TABLE imported (v int);\nINSERT INTO imported VALUES (1);\ngarbage;\n",
    );
    let out = p.run(&["db", "import", "bad.sql"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = flat(&stderr(&out));
    assert!(
        said.contains(r#"syntax error at or near "garbage""#),
        "the client's error is shown: {said}"
    );
    assert!(
        said.contains("import failed with 1 error(s), shown above")
            && said.contains("`app` is untouched: it holds what it held before the import")
            && said.contains("`--allow-errors`"),
        "{said}"
    );
    assert!(
        !said.contains("kept as snapshot"),
        "no snapshot is taken: {said}"
    );
    assert_eq!(
        p.psql("SELECT string_agg(v, ',' ORDER BY v) FROM marks").0,
        "also mine,mine",
        "the app's tables and rows are as they were"
    );
    assert_eq!(
        p.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'imported'")
            .0,
        "0",
        "nothing of the failed load reached the app's database"
    );
    // The load's own database is gone, and nothing else is.
    assert_eq!(all_databases(&p), before);
    assert_eq!(leftovers(&p), "");

    // A gzipped dump cut short by its last bytes (the length check): every
    // statement comes out whole, so psql alone would load it and exit 0,
    // but the file is damaged, so the import fails and changes nothing.
    let full = gzip("CREATE TABLE cut (v int);\nINSERT INTO cut VALUES (1);\n");
    std::fs::write(p.path().join("cut.sql.gz"), &full[..full.len() - 4]).unwrap();
    let out = p.run(&["db", "import", "cut.sql.gz"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = flat(&stderr(&out));
    assert!(
        said.contains("unexpected end of file")
            && said.contains("`app` is untouched")
            && !said.contains("kept as snapshot"),
        "{said}"
    );
    assert_eq!(
        p.psql("SELECT string_agg(v, ',' ORDER BY v) FROM marks").0,
        "also mine,mine"
    );
    assert_eq!(all_databases(&p), before);

    // Asked for, the partial load takes the app's name; the old content
    // stays as a snapshot.
    let out = p.run(&["db", "import", "bad.sql", "--allow-errors"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = flat(&stderr(&out));
    assert!(
        said.contains("imported into `app` without the 1 statement(s) that failed, shown above (`--allow-errors`)")
            && said.contains("is kept as snapshot `before-import-"),
        "{said}"
    );
    assert_eq!(
        p.psql("SELECT string_agg(v::text, ',') FROM imported").0,
        "1"
    );
    let snapshot = all_databases(&p)
        .split(',')
        .find_map(|d| {
            d.strip_prefix("devenv_snap_before-import-")
                .map(str::to_string)
        })
        .expect("the previous content is a snapshot");
    p.ok(&["db", "restore", &format!("before-import-{snapshot}")]);
    assert_eq!(
        p.psql("SELECT string_agg(v, ',' ORDER BY v) FROM marks").0,
        "also mine,mine"
    );
    assert_eq!(leftovers(&p), "");
}

/// The postgres preset with its password from the shell, as the example
/// stack's dev.toml has it.
const DB_PASSWORD_FROM_SHELL: &str = "[services.db]\nuse = \"postgres\"\nports = []\nenv = { POSTGRES_PASSWORD = \"${DB_PASSWORD:-secret}\" }\n";

#[test]
fn a_password_the_volume_was_not_made_with_is_reported_as_such() {
    warm_images();
    let mut p = Project::new("wtsafety-login", DB_PASSWORD_FROM_SHELL);
    p.ok(&["up", "-d"]);
    p.ok(&["db", "snapshot", "one"]);
    let wrong = |args: &[&str]| {
        p.cmd()
            .env("DB_PASSWORD", "wrongpass")
            .args(args)
            .write_stdin("")
            .output()
            .unwrap()
    };
    let out = wrong(&["db", "snapshots"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = flat(&stderr(&out));
    assert!(
        said.contains(
            r#"cannot log in to the database of service `db` as `app`: error returned from database: password authentication failed for user "app""#
        ) && said.contains("differs from the one the server was initialised with: a volume keeps the password it was created with"),
        "{said}"
    );
    assert!(!said.contains("publish its port"), "{said}");

    // `down -v` lists the volume: the server runs, it refused the password.
    let pgdata = format!("{}_pgdata", p.name);
    let out = wrong(&["down", "-v"]);
    assert!(out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l
            == format!("  {pgdata} (service `db`: database `app` and its snapshots (not counted: devenv could not log in to the server: its password differs))")),
        "{err}"
    );
    assert!(project_volumes(&p.name).is_empty());
}
