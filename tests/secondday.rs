//! Issue 26, a Laravel team's second day, end to end on the real engine:
//! downloads stay out of the checkout, the container user has a name and a
//! home, the example app survives artisan, second checkouts' names, and a
//! database per git branch.

use crate::support;

use support::{git, text, warm_images, Project};

/// A `prepare` script's files reach the build through devenv's cache
/// folder: nothing is written into the build context's folder (for the
/// stand-ins that is `docker/` in devenv's checkout, which `build.rs`
/// watches: the next `cargo build` would recompile devenv).
#[test]
fn r26_prepared_files_reach_the_build_from_the_cache_not_the_checkout() {
    warm_images();
    let cache = tempfile::tempdir().unwrap();
    let tag = support::suffixed("devenv-e2e-prepared");
    let mut p = Project::new(
        "prepared",
        &format!(
            "[services.w]\nbuild = {{ context = \"ctx\", prepare = \"ctx/prepare.sh\" }}\nimage = \"{tag}:latest\"\n"
        ),
    );
    p.write(
        "ctx/Dockerfile",
        "FROM debian:bookworm-slim\nCOPY wheels/ /wheels/\nCMD [\"sleep\", \"infinity\"]\n",
    );
    p.write(
        "ctx/prepare.sh",
        "set -eu\nmkdir -p \"$DEVENV_PREPARED/wheels\"\necho from-cache > \"$DEVENV_PREPARED/wheels/marker\"\n",
    );
    p.uses_docker = true;
    let out = p
        .cmd()
        .env("XDG_CACHE_HOME", cache.path())
        .args(["run", "--rm", "w", "--", "cat", "/wheels/marker"])
        .output()
        .unwrap();
    let _ = std::process::Command::new("docker")
        .args(["rmi", &format!("{tag}:latest")])
        .output();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from-cache");
    assert!(
        !p.path().join("ctx/wheels").exists(),
        "nothing is downloaded into the checkout"
    );
    let prepared = cache.path().join("devenv/prepared");
    let made: Vec<_> = std::fs::read_dir(&prepared).unwrap().flatten().collect();
    assert_eq!(made.len(), 1, "one folder per build context in the cache");
    assert!(made[0].path().join("wheels/marker").is_file());
}

/// Sail's and DDEV's words lead somewhere: aliases for those devenv has,
/// what to type instead for the others, and service-name suggestions on
/// `up` and `run` (checked before the engine is reached).
#[test]
fn r26_sail_and_ddev_words_and_mistyped_services_lead_somewhere() {
    let p = Project::new("words", "[services.app]\nimage = \"x\"\n");
    let out = p.run(&["build"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        support::stderr(&out).contains("`build` is not a devenv command; `devenv up` builds what is missing, `devenv up --build` builds again"),
        "{}",
        text(&out)
    );
    for (alias, canonical) in [
        ("status", "ps"),
        ("ssh", "shell"),
        ("bash", "shell"),
        ("launch", "open"),
    ] {
        let out = p.run(&[alias, "--help"]);
        assert!(out.status.success(), "{alias}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("Usage: devenv {canonical}")),
            "{alias}: {}",
            text(&out)
        );
    }
    for args in [&["up", "-d", "ap"][..], &["run", "ap", "--", "true"]] {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            support::stderr(&out).contains("did you mean `app`?"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// Two more checkouts of one project: one in a folder of the same name
/// takes `NAME-2`, one in a folder of its own name takes that name, as the
/// README's rule says; `ls` lists each with its folder.
#[test]
fn r26_second_checkouts_take_the_documented_names() {
    warm_images();
    let base = support::suffixed("names");
    let root = tempfile::tempdir().unwrap();
    let folders = [
        root.path().join("a").join(&base),
        root.path().join("b").join(&base),
        root.path().join("c").join(format!("{base}dev")),
    ];
    struct Down<'a>(&'a [std::path::PathBuf]);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            for f in self.0 {
                let _ = assert_cmd::Command::cargo_bin("devenv")
                    .unwrap()
                    .current_dir(f)
                    .args(["down", "-v"])
                    .output();
            }
        }
    }
    let _down = Down(&folders);
    let toml =
        format!("[project]\nname = \"{base}\"\n\n[services.cache]\nuse = \"redis\"\nports = []\n");
    for f in &folders {
        std::fs::create_dir_all(f).unwrap();
        std::fs::write(f.join("dev.toml"), &toml).unwrap();
        let out = assert_cmd::Command::cargo_bin("devenv")
            .unwrap()
            .current_dir(f)
            .env("NO_COLOR", "1")
            .args(["up", "-d"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = assert_cmd::Command::cargo_bin("devenv")
        .unwrap()
        .args(["ls", "--json"])
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let name_of = |folder: &std::path::Path| {
        rows.iter()
            .find(|r| r["folder"].as_str() == Some(folder.to_str().unwrap()))
            .and_then(|r| r["project"].as_str())
            .map(str::to_string)
    };
    assert_eq!(name_of(&folders[0]).as_deref(), Some(base.as_str()));
    assert_eq!(name_of(&folders[1]), Some(format!("{base}-2")));
    assert_eq!(name_of(&folders[2]), Some(format!("{base}dev")));
}

/// The uid a non-root developer's devenv runs as, in the tests below.
const DEV_UID: u32 = 4321;

/// The example app, bind-mounted from a copy of `examples/laravel` owned
/// by [`DEV_UID`], with PostgreSQL and Redis; its image built from this
/// repository's docker/app under a tag of this run's.
fn bind_app_stack(tag: &str, port: u16) -> String {
    format!(
        r#"[services.db]
use = "postgres"
ports = []

[services.cache]
use = "redis"
ports = []

[services.app]
build = {{ context = "{repo}", dockerfile = "docker/app/Dockerfile", target = "dev" }}
image = "{tag}"
ports = ["{port}:8080"]
mount = "bind"
env = {{ APP_KEY = "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", DB_CONNECTION = "pgsql", DB_HOST = "db", DB_DATABASE = "app", DB_USERNAME = "app", DB_PASSWORD = "secret", REDIS_HOST = "cache" }}
depends_on = {{ db = "ready", cache = "ready" }}
ready = {{ http = {{ port = 8080, path = "/health" }} }}

[[services.app.watch]]
path = "app"
action = "sync"
target = "/var/www/html"
"#,
        repo = support::repo().display(),
    )
}

/// devenv run as [`DEV_UID`] (in the engine's socket group), as a
/// developer who is not root would run it.
fn as_dev(dir: &std::path::Path, home: &std::path::Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::MetadataExt;
    let socket_gid = std::fs::metadata("/var/run/docker.sock").unwrap().gid();
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={DEV_UID}"),
            &format!("--regid={DEV_UID}"),
            &format!("--groups={socket_gid}"),
            "--",
        ])
        .arg(assert_cmd::cargo::cargo_bin("devenv"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", home)
        .env("USER", "devpat")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn chown_tree(path: &std::path::Path) {
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{DEV_UID}:{DEV_UID}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Issue 26, items 1 and 2, as a developer who is not root: the container
/// user has a name and a writable home (exec, run, the shortcuts), and
/// `make:model -m` (which runs `composer dump-autoload`) and a root
/// `composer dump-autoload` leave the example app serving its page; an app
/// that cannot boot fails its health check.
#[test]
fn r26_bind_mode_user_has_a_name_and_home_and_the_app_survives_artisan() {
    support::warm_images();
    let tag = format!("{}:dev", support::suffixed("devenv-e2e-r26-app"));
    let port = support::free_port();
    // Built as root first: the build context is this repository.
    let mut build = Project::new(
        "r26build",
        &bind_app_stack(&tag, 0).replace("ports = [\"0:8080\"]", "ports = []"),
    );
    std::fs::create_dir_all(build.path().join("app")).unwrap();
    support::with_image_lock(|| {
        build.ok(&["--progress", "plain", "run", "--rm", "app", "--", "true"]);
    });
    drop(build);
    struct Rmi(String);
    impl Drop for Rmi {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", &self.0])
                .output();
        }
    }
    let _rmi = Rmi(tag.clone());

    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let dir = root.path().join("shop");
    std::fs::create_dir_all(&home).unwrap();
    support::copy_dir(&support::repo().join("examples/laravel"), &dir.join("app"));
    let name = support::suffixed("r26bind");
    std::fs::write(
        dir.join("dev.toml"),
        format!(
            "[project]\nname = \"{name}\"\n\n{}",
            bind_app_stack(&tag, port)
        ),
    )
    .unwrap();
    chown_tree(root.path());
    struct Down<'a>(&'a std::path::Path, &'a std::path::Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = as_dev(self.0, self.1, &["down", "-v"]);
        }
    }
    let _down = Down(&dir, &home);
    let dev = |args: &[&str]| {
        let out = as_dev(&dir, &home, args);
        assert!(out.status.success(), "devenv {args:?}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };

    dev(&["--progress", "plain", "up", "-d"]);
    // The container user: named after the developer, a home it can write.
    let who = "whoami; echo $HOME; touch ~/.x && echo touched";
    assert_eq!(
        dev(&["exec", "-T", "app", "--", "sh", "-c", who]),
        "devpat\n/home/devpat\ntouched"
    );
    assert_eq!(
        dev(&["run", "--rm", "app", "--", "sh", "-c", who]),
        "devpat\n/home/devpat\ntouched"
    );
    assert_eq!(dev(&["php", "-r", "echo getenv('HOME');"]), "/home/devpat");

    // Artisan's generators as the developer, then Composer as root.
    dev(&["artisan", "migrate", "--force"]);
    dev(&["artisan", "make:model", "Foo", "-m"]);
    assert!(dir.join("app/app/Models/Foo.php").is_file());
    assert!(
        dir.join("app/vendor/autoload.php").is_file(),
        "make:model -m ran composer dump-autoload"
    );
    dev(&[
        "exec",
        "-T",
        "--user",
        "0",
        "app",
        "--",
        "composer",
        "dump-autoload",
    ]);
    let (status, body) = support::http_get(port, "/");
    assert!(body.contains("— status</title>"), "{status}: {body}");
    assert_ne!(status, 500, "{body}");
    assert_eq!(support::http_get(port, "/health").0, 200);

    // Item 7: devenv's probes are not in the app's log; the test's requests are.
    let logs = dev(&["logs", "app"]);
    assert!(
        logs.contains("\"GET / HTTP/1.0\" 200") || logs.contains("\"GET / HTTP/1.0\" 503"),
        "{logs}"
    );
    assert!(!logs.contains("/health"), "{logs}");
    assert!(!logs.contains("devenv-probe"), "{logs}");

    // An app that cannot boot (a vendor/ that claims the framework but
    // lacks it) fails the health check instead of answering 200.
    std::fs::create_dir_all(dir.join("app/vendor/laravel/framework")).unwrap();
    let (status, body) = support::http_get(port, "/health");
    assert_eq!(status, 500, "{body}");
    std::fs::remove_dir_all(dir.join("app/vendor/laravel")).unwrap();
    assert_eq!(support::http_get(port, "/health").0, 200);
}

/// The milliseconds a `db branch` switch reported (`… swapped in (12 ms)`).
fn switch_ms(out: &std::process::Output) -> u64 {
    let all = text(out);
    let at = all.find("swapped in (").expect("a swap was reported") + "swapped in (".len();
    all[at..].split(' ').next().unwrap().parse().unwrap()
}

/// A database per git branch: a row made on `main` is not on `feature`
/// (a clone of `main` from before the row), and is back on `main`; each
/// switch is a rename, well under a second; gone branches are pruned,
/// saying so.
#[test]
fn r26_each_branch_keeps_its_own_database() {
    warm_images();
    let mut p = Project::new(
        "perbranch",
        "[services.db]\nuse = \"postgres\"\nports = []\n",
    );
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "dev.toml"]);
    git(p.path(), &["commit", "-qm", "init"]);
    p.ok(&["up", "-d"]);
    let on = p.ok(&["db", "branch", "on"]);
    assert!(
        text(&on).contains("`app` is branch `main`'s"),
        "{}",
        text(&on)
    );
    assert!(p.psql("create table notes (title text)").1);

    git(p.path(), &["checkout", "-q", "-b", "feature"]);
    let new = p.ok(&["db", "branch"]);
    assert!(
        text(&new).contains("branch `feature` is new: its database is a copy of `main`'s"),
        "{}",
        text(&new)
    );
    assert_eq!(p.psql("select count(*) from notes").0, "0");

    git(p.path(), &["checkout", "-q", "main"]);
    p.ok(&["db", "branch"]);
    assert!(p.psql("insert into notes values ('made on main')").1);

    git(p.path(), &["checkout", "-q", "feature"]);
    let started = std::time::Instant::now();
    let to_feature = p.ok(&["db", "branch"]);
    let wall = started.elapsed();
    assert_eq!(
        p.psql("select count(*) from notes").0,
        "0",
        "main's row is not on feature"
    );

    git(p.path(), &["checkout", "-q", "main"]);
    // Any database command follows the branch first.
    let to_main = p.ok(&["db", "branches"]);
    assert_eq!(p.psql("select title from notes").0, "made on main");
    for out in [&to_feature, &to_main] {
        assert!(switch_ms(out) < 1000, "{}", text(out));
    }
    eprintln!(
        "switch to feature: {} ms swapped, {wall:?} for the whole command",
        switch_ms(&to_feature)
    );
    let listed = String::from_utf8_lossy(&to_main.stdout).into_owned();
    assert!(listed.lines().any(|l| l.starts_with("* main ")), "{listed}");
    assert!(listed.contains("devenv_branch_feature"), "{listed}");

    // A restore and an import swap another database in: it stays the branch's.
    p.ok(&["db", "snapshot", "s"]);
    p.ok(&["db", "restore", "s"]);
    assert_eq!(support::db_branch(&p), "main", "after a restore");
    p.ok(&["db", "export", "d.sql"]);
    p.ok(&["db", "import", "d.sql"]);
    assert_eq!(support::db_branch(&p), "main", "after an import");

    git(p.path(), &["branch", "-q", "-D", "feature"]);
    let pruned = p.ok(&["db", "branch", "prune"]);
    assert!(
        text(&pruned).contains("dropped `devenv_branch_feature`")
            && text(&pruned).contains("branch `feature` is gone from git"),
        "{}",
        text(&pruned)
    );
    assert_eq!(p.psql("select title from notes").0, "made on main");
}

/// Issue 26: `devenv test` and `devenv up` see a `git checkout` too, and
/// switch under the project lock: while another devenv holds it (a
/// `db snapshot` in another terminal would), the app's database stays the
/// old branch's; once it is free, it is the checkout's branch's.
#[test]
fn r26_test_and_up_switch_to_the_checkouts_branch_under_the_project_lock() {
    support::warm_app_image();
    let mut p = Project::new(
        "brtest",
        &support::app_stack(&support::repo().join("examples/laravel"), ""),
    );
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "dev.toml"]);
    git(p.path(), &["commit", "-qm", "init"]);
    p.ok(&["up", "-d", "db"]);
    p.ok(&["db", "branch", "on"]);
    assert!(p.psql("create table notes (title text)").1);
    assert!(p.psql("insert into notes values ('made on main')").1);

    let waiting = format!("waiting for another devenv working on project `{}`", p.name);
    for (args, from, to) in [
        (&["test"][..], "main", "other"),
        (&["up", "-d", "db"][..], "other", "main"),
    ] {
        if to == "other" {
            git(p.path(), &["checkout", "-q", "-b", "other"]);
        } else {
            git(p.path(), &["checkout", "-q", "main"]);
        }
        let lock = support::hold_project_lock(&p.name);
        let cmd = support::Background::spawn(&p, args);
        cmd.wait_for(&waiting, 120);
        assert_eq!(
            support::db_branch(&p),
            from,
            "`{args:?}` switched while another devenv held the lock:\n{}",
            cmd.stderr()
        );
        drop(lock);
        let (status, err) = cmd.finish();
        assert!(status.success(), "{args:?}: {err}");
        assert_eq!(support::db_branch(&p), to, "{args:?}: {err}");
        if to == "other" {
            assert!(
                err.contains("branch `other` is new: its database is a copy of `main`'s"),
                "{err}"
            );
            // Made on `other`, so `main`'s copy must not have it.
            assert!(p.psql("insert into notes values ('made on other')").1);
        } else {
            assert!(err.contains("branch `main`'s database swapped in"), "{err}");
        }
    }
    assert_eq!(
        p.psql("select string_agg(title, ',') from notes").0,
        "made on main"
    );

    // A `test` that has to start the database switches once it has.
    p.ok(&["down"]);
    git(p.path(), &["checkout", "-q", "-b", "third"]);
    let out = p.ok(&["test"]);
    assert!(
        text(&out).contains("branch `third` is new: its database is a copy of `main`'s"),
        "{}",
        text(&out)
    );
    assert_eq!(support::db_branch(&p), "third");
}

/// Issue 26: an attached `up` follows `git checkout` while it runs (it
/// reads `.git/HEAD`), switching the app's database and saying so.
#[test]
fn r26_attached_up_switches_the_database_when_the_branch_changes() {
    warm_images();
    let mut p = Project::new(
        "brattached",
        "[db]\nper_branch = true\n\n[services.db]\nuse = \"postgres\"\nports = []\n",
    );
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "dev.toml"]);
    git(p.path(), &["commit", "-qm", "init"]);
    let mut t = crate::session::Term::spawn(&mut p, "up");
    t.wait_for("following logs", 120);
    assert_eq!(
        support::db_branch(&p),
        "main",
        "`per_branch = true` turned it on"
    );
    assert!(p.psql("create table notes (title text)").1);
    assert!(p.psql("insert into notes values ('made on main')").1);

    git(p.path(), &["checkout", "-q", "-b", "other"]);
    t.wait_for(
        "branch `other` is new: its database is a copy of `main`'s",
        30,
    );
    assert_eq!(support::db_branch(&p), "other");
    assert!(p.psql("insert into notes values ('made on other')").1);

    git(p.path(), &["checkout", "-q", "main"]);
    t.wait_for("branch `main`'s database swapped in", 30);
    assert_eq!(support::db_branch(&p), "main");
    assert_eq!(
        p.psql("select string_agg(title, ',') from notes").0,
        "made on main"
    );
    t.ctrl_c();
    assert_eq!(t.exit_code(60), Some(130), "{}", t.screen());
}
