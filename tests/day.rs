//! End-to-end: a Laravel developer's everyday commands on the example stack
//! (issue 15) — the shortcuts (`artisan`, `composer`, `php`, `tinker`,
//! `psql`, `redis-cli`, `shell`), `exec`'s Compose flags, "did you mean",
//! and database snapshots, imports and exports — run by the real binary on
//! the real engine, and the project's own commands from `[commands.NAME]`.
//! One stack serves each test, to keep the suite's time.

use crate::support;

use std::process::Output;

use support::{free_port, http_get, repo, text, Project};

const APP_IMAGE: &str = "devenv-e2e-day:latest";

fn stack(app_port: u16) -> String {
    format!(
        r#"[services.db]
use = "postgres"
ports = []

[services.cache]
use = "redis"
ports = []

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
ports = ["{port}:8080"]
"#,
        repo = repo().display(),
        port = app_port,
    )
}

fn up(name: &str) -> Project {
    up_on(name, free_port())
}

fn up_on(name: &str, app_port: u16) -> Project {
    support::warm_images();
    let mut p = Project::new(name, &stack(app_port));
    support::with_image_lock(|| {
        p.ok(&["--progress", "plain", "up", "-d"]);
    });
    p
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs devenv with `stdin` fed to it; insists on exit 0.
fn ok_with_input(p: &mut Project, args: &[&str], stdin: &str) -> String {
    p.uses_docker = true;
    let o = p.cmd().args(args).write_stdin(stdin).output().unwrap();
    assert!(o.status.success(), "devenv {args:?} failed:\n{}", text(&o));
    out(&o)
}

#[test]
fn shortcuts_run_in_the_right_service_with_the_stack_credentials() {
    let app_port = free_port();
    let mut p = up_on("e2eday", app_port);
    let app_url = format!("http://localhost:{app_port}");

    // Where everything is: `ps` labels the URLs, `ls` lists the project
    // with its folder, `open` gives the app's page.
    let o = p.ok(&["ps"]);
    assert!(out(&o).contains(&format!("app {app_url}")), "{}", text(&o));
    let o = p.ok(&["ls", "--json"]);
    let projects: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let me = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["project"] == p.name.as_str())
        .unwrap_or_else(|| panic!("{} is listed: {projects}", p.name));
    let folder = p.path().canonicalize().unwrap();
    assert_eq!(me["folder"], folder.display().to_string());
    assert_eq!(
        (
            me["services"].as_u64(),
            me["running"].as_u64(),
            me["ready"].as_u64()
        ),
        (Some(5), Some(5), Some(5))
    );
    assert!(me["urls"].to_string().contains(&app_url), "{me}");
    let o = p.ok(&["ls"]);
    assert!(out(&o).contains("e2eday"), "{}", text(&o));
    // `open` gives the router's HTTPS name first (issue 28).
    let o = p.ok(&["open"]);
    let page = out(&o);
    assert!(
        page.starts_with(&format!("https://{}.localhost", p.name)),
        "{page}"
    );
    // With a browser (`BROWSER`), the page goes to it too.
    let opened = p.path().join("opened");
    let browser = p.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = p
        .cmd()
        .env("BROWSER", &browser)
        .arg("open")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        support::eventually(10, || std::fs::read_to_string(&opened)
            .is_ok_and(|u| u.trim() == page)),
        "the browser got {page}"
    );
    // A service with no page on the host: exit 1, saying so.
    let o = p.run(&["open", "cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("service `cache` has no web page published on the host"),
        "{}",
        text(&o)
    );

    let o = p.ok(&["artisan", "--version"]);
    assert!(out(&o).starts_with("Laravel Framework 8."), "{}", text(&o));
    let o = p.ok(&["php", "-r", "echo 6 * 7;"]);
    assert_eq!(out(&o), "42");
    let o = p.ok(&["composer", "--version", "--no-ansi"]);
    assert!(out(&o).contains("Composer"), "{}", text(&o));
    // The example app has no laravel/tinker (no Packagist here): devenv's own
    // REPL runs with the app booted instead.
    let said = ok_with_input(&mut p, &["tinker"], "config('database.default')\n6 * 7\n");
    assert!(said.contains("\"pgsql\"") && said.contains("42"), "{said}");

    // psql: the stack's own user and database; the seeds are there.
    let o = p.ok(&[
        "psql",
        "-tAc",
        "select current_user || '@' || current_database()",
    ]);
    assert_eq!(out(&o), "app@app");
    let o = p.ok(&["psql", "-tAc", "select count(*) > 0 from notes"]);
    assert_eq!(out(&o), "t", "{}", text(&o));
    let o = p.ok(&["redis-cli", "ping"]);
    assert_eq!(out(&o), "PONG");

    // A shell in the app (as its user), a root one, one in another service.
    // The image's user: this stack has no sync rule, so no bind mount and
    // no mapping to the invoking user.
    assert_eq!(ok_with_input(&mut p, &["shell"], "id -u\n"), "1000");
    assert_eq!(ok_with_input(&mut p, &["shell", "--root"], "id -u\n"), "0");
    assert_eq!(
        ok_with_input(&mut p, &["shell", "cache"], "redis-cli ping\n"),
        "PONG"
    );

    // logs: Compose's -n, -t and --since.
    let o = p.ok(&["logs", "-n", "1", "-t", "cache"]);
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "{}", text(&o));
    let year = lines[0].split(" | ").nth(1).unwrap_or_default();
    assert!(
        year.starts_with("20") && year.contains('T'),
        "a timestamp first: {}",
        lines[0]
    );
    let o = p.ok(&["logs", "--since", "2000-01-01T00:00:00Z", "cache"]);
    assert!(!out(&o).is_empty());
    let o = p.run(&["logs", "--since", "yesterday-ish", "cache"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // exec: Compose's flags, and the command without `--`.
    let o = p.ok(&[
        "exec",
        "-T",
        "-u",
        "root",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "app",
        "sh",
        "-c",
        "echo $(id -u) $GREETING $(pwd)",
    ]);
    assert_eq!(out(&o), "0 hi /tmp");
    let o = p.run(&["exec", "ap", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("did you mean `app`?"), "{}", text(&o));
    // The container command's exit code comes through.
    let o = p.run(&["php", "-r", "exit(3);"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// `SELECT` in the app's database, through the shortcut.
fn sql(p: &mut Project, query: &str) -> String {
    out(&p.ok(&["psql", "-tAc", query]))
}

/// Every database on the server, in name order.
fn databases(p: &mut Project) -> Vec<String> {
    sql(
        p,
        "select datname from pg_database where not datistemplate order by 1",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn snapshots_restore_by_rename_and_dumps_go_in_and_out() {
    let mut p = up("e2edaydb");
    sql(
        &mut p,
        "create table marks (v text); insert into marks values ('first')",
    );

    p.ok(&["db", "snapshot", "base"]);
    p.ok(&["db", "snapshot", "keep"]);
    sql(
        &mut p,
        "delete from marks; insert into marks values ('second')",
    );
    let o = p.ok(&["db", "restore", "base"]);
    assert!(
        text(&o).contains("restored from snapshot `base`"),
        "{}",
        text(&o)
    );
    assert_eq!(sql(&mut p, "select string_agg(v, ',') from marks"), "first");
    // A second restore uses the spare the first one prepared again.
    sql(&mut p, "insert into marks values ('third')");
    let o = p.ok(&["db", "restore", "base"]);
    assert!(!text(&o).contains("no copy was ready"), "{}", text(&o));
    assert_eq!(sql(&mut p, "select string_agg(v, ',') from marks"), "first");
    // The app still works on the restored database.
    let o = p.ok(&["artisan", "migrate:status"]);
    assert!(
        text(&o).contains("Ran?") || text(&o).contains("Migration"),
        "{}",
        text(&o)
    );

    // Without a name, the snapshot is named by the time.
    let o = p.ok(&["db", "snapshot"]);
    let said = text(&o);
    let named = said
        .split('`')
        .nth(1)
        .filter(|n| n.starts_with("20") && n.len() >= 15)
        .unwrap_or_else(|| panic!("a snapshot named by the time: {said}"))
        .to_string();
    let o = p.ok(&["db", "snapshots"]);
    let listed = out(&o);
    assert!(
        listed.contains("base") && listed.contains("keep") && listed.contains(&named),
        "{listed}"
    );
    p.ok(&["db", "drop-snapshot", &named]);
    let o = p.run(&["db", "restore", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("snapshots: base, keep"), "{}", text(&o));

    // drop-snapshot removes that snapshot's two databases and nothing else.
    let before = databases(&mut p);
    p.ok(&["db", "drop-snapshot", "base"]);
    let after = databases(&mut p);
    let gone: Vec<&String> = before.iter().filter(|d| !after.contains(d)).collect();
    assert_eq!(
        gone,
        ["devenv_snap_base", "devenv_snapnext_base"],
        "{after:?}"
    );
    assert!(after.contains(&"app".to_string()) && after.contains(&"devenv_snap_keep".to_string()));

    // Exports in the three formats; an existing file is never overwritten unasked.
    for (file, head) in [
        ("out.dump", &b"PGDMP"[..]),
        ("out.sql.gz", &[0x1f, 0x8b][..]),
        ("out.sql", &b"--"[..]),
    ] {
        p.ok(&["db", "export", file]);
        let bytes = std::fs::read(p.path().join(file)).unwrap();
        assert!(bytes.starts_with(head), "{file} starts with {head:?}");
    }
    std::fs::write(p.path().join("mine.sql"), "my notes").unwrap();
    let o = p.run(&["db", "export", "mine.sql"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(p.path().join("mine.sql")).unwrap(),
        "my notes"
    );

    // Imports replace the content, keeping the old content as a snapshot.
    for file in ["out.dump", "out.sql.gz", "out.sql"] {
        sql(&mut p, "insert into marks values ('after-export')");
        let o = p.ok(&["db", "import", file]);
        assert!(
            text(&o).contains("is kept as snapshot `before-import-"),
            "{}",
            text(&o)
        );
        assert_eq!(
            sql(&mut p, "select string_agg(v, ',') from marks"),
            "first",
            "after importing {file}"
        );
    }
    assert!(
        databases(&mut p)
            .iter()
            .filter(|d| d.starts_with("devenv_snap_before-import-"))
            .count()
            >= 1
    );
}

/// Waits up to `secs` for a connection on `listener`; what it sent first.
fn first_words(listener: &std::net::TcpListener, secs: u64) -> Option<String> {
    use std::io::Read;
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Ok((mut conn, _)) = listener.accept() {
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn xdebug_turns_on_and_off_without_a_recreate_and_calls_the_ide_on_the_host() {
    let app_port = free_port();
    let mut p = up_on("e2edayxdebug", app_port);
    let id_before = p.ids();
    // The IDE: listening on the host, where host.docker.internal leads.
    let ide = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let ide_port = ide.local_addr().unwrap().port().to_string();

    let o = p.ok(&["xdebug", "status"]);
    assert!(text(&o).contains("Xdebug is off"), "{}", text(&o));
    let o = p.ok(&["xdebug", "on", "--port", &ide_port]);
    assert!(
        text(&o).contains("Xdebug is on (xdebug.mode = debug)"),
        "{}",
        text(&o)
    );
    // The request waits for the debugger, so it runs beside the IDE, which
    // hangs up after the greeting (the request then goes on).
    let request = std::thread::spawn(move || http_get(app_port, "/health").0);
    let said = first_words(&ide, 20).expect("Xdebug called the IDE on the host");
    assert!(said.contains("<init"), "a DBGp init packet: {said}");
    assert_eq!(request.join().unwrap(), 200);

    let o = p.ok(&["xdebug", "off"]);
    assert!(text(&o).contains("Xdebug is off"), "{}", text(&o));
    let (code, _) = http_get(app_port, "/health");
    assert_eq!(code, 200);
    assert!(first_words(&ide, 2).is_none(), "no call once it is off");
    assert_eq!(p.ids(), id_before, "nothing was recreated");
}

/// Project commands beside the day stack: a list in the app, a shell line
/// with a user, folder and env, one in another service, a failing one.
const COMMANDS: &str = r#"
[commands.routes]
description = "The app's routes"
run = ["php", "artisan", "route:list", "--compact"]

[commands.fresh]
description = "Drop every table, migrate and seed again"
run = "php artisan migrate:fresh --seed --force"

[commands.where]
run = "printf '%s|' $$(id -u) $$(pwd) $$GREETING"
user = "root"
workdir = "/tmp"
env = { GREETING = "hello" }

[commands.keys]
description = "Redis keys (redis-cli --scan)"
service = "cache"
run = ["redis-cli", "--scan"]

[commands.fail]
run = ["sh", "-c", "exit 5"]
"#;

#[test]
fn project_commands_run_in_their_service_with_the_arguments_appended() {
    support::warm_images();
    let mut p = Project::new("day2cmds", &(stack(free_port()) + COMMANDS));
    support::with_image_lock(|| {
        p.ok(&["--progress", "plain", "up", "-d"]);
    });

    // An argv list in the app, arguments after it.
    let o = p.ok(&["routes", "--method=GET"]);
    let routes = out(&o);
    assert!(
        routes.contains("health") && routes.contains("status.json"),
        "{}",
        text(&o)
    );
    assert!(
        !routes.contains("POST"),
        "the argument reached artisan: {routes}"
    );

    // A shell line with user, folder and env; arguments reach it unsplit.
    let o = p.ok(&["where", "a", "b c"]);
    assert_eq!(out(&o), "0|/tmp|hello|a|b c|");

    // A real Laravel chore: the seeds are back after migrate:fresh.
    sql(&mut p, "delete from notes");
    assert_eq!(sql(&mut p, "select count(*) from notes"), "0");
    p.ok(&["fresh"]);
    assert_ne!(sql(&mut p, "select count(*) from notes"), "0");

    // Another service: Redis's own client.
    assert_eq!(out(&p.ok(&["redis-cli", "set", "day2:key", "1"])), "OK");
    let o = p.ok(&["keys", "--pattern", "day2:*"]);
    assert_eq!(out(&o), "day2:key");

    // The command's exit code comes through.
    let o = p.run(&["fail"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));

    // Stopped service: the usual message, exit 1.
    p.ok(&["stop", "cache"]);
    let o = p.run(&["keys"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("service `cache` is not running"),
        "{}",
        text(&o)
    );
}

/// `redis-cli` sends the server's password (`REDISCLI_AUTH` in the exec's
/// env, as `psql` gets `PGPASSWORD`): a server with `--requirepass`
/// answers `PONG`, not `NOAUTH`.
#[test]
fn r_redis_cli_authenticates_with_the_servers_password() {
    support::warm_images();
    let mut p = Project::new(
        "wtredisauth",
        r#"[services.cache]
use = "redis"
ports = []
command = ["redis-server", "--requirepass", "${WTREDISAUTH_PW:-Rd-auth-9f2e}"]
ready = { redis = { password = "${WTREDISAUTH_PW:-Rd-auth-9f2e}" } }
"#,
    );
    support::with_image_lock(|| {
        p.ok(&["--progress", "plain", "up", "-d"]);
    });
    let o = p.ok(&["redis-cli", "ping"]);
    assert_eq!(out(&o), "PONG", "{}", text(&o));
    assert_eq!(out(&p.ok(&["redis-cli", "set", "auth:key", "1"])), "OK");
}
