//! End-to-end: the real binary against the real Docker engine, with images
//! the suite builds for itself (official images where a registry answers,
//! devenv's Debian stand-ins where none does).

use crate::support;

use std::net::TcpListener;

use support::{stderr, text, three_services, warm_images, Project};

/// Two distinct free host ports (see `support::free_ports`).
fn two_ports() -> (u16, u16) {
    let p = support::free_ports(2);
    (p[0], p[1])
}

#[test]
fn up_detached_brings_a_ready_chain_up_and_a_second_up_changes_nothing() {
    warm_images();
    let mut p = Project::new("e2elife", &{
        let (a, b) = two_ports();
        three_services(a, b)
    });
    let out = p.ok(&["up", "-d"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} ready in", p.name)),
        "{}",
        text(&out)
    );

    let ps = p.ps();
    assert_eq!(ps.len(), 3, "{ps:?}");
    for s in &ps {
        assert_eq!(s["state"], "running", "{s}");
        assert_eq!(s["ready"], true, "{s}");
    }
    let before = p.ids();
    let out = p.ok(&["up", "-d"]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .matches("running")
            .count()
            == 3,
        "{}",
        text(&out)
    );
    assert_eq!(p.ids(), before, "a no-op up must keep every container");
}

#[test]
fn named_volume_data_survives_down_and_goes_with_down_v() {
    warm_images();
    let mut p = Project::new("e2evol", "[services.db]\nuse = \"postgres\"\nports = []\n");
    p.ok(&["up", "-d"]);
    p.ok(&[
        "exec",
        "db",
        "--",
        "psql",
        "-U",
        "app",
        "-d",
        "app",
        "-c",
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);",
    ]);
    p.ok(&["down"]);
    p.ok(&["up", "-d"]);
    assert_eq!(p.psql("SELECT v FROM kept").0, "42");
    p.ok(&["down", "-v"]);
    p.ok(&["up", "-d"]);
    let (out, ok) = p.psql("SELECT v FROM kept");
    assert!(!ok, "the table must be gone with the volume:\n{out}");
}

#[test]
fn a_changed_service_is_recreated_alone_and_a_removed_one_goes() {
    warm_images();
    let base = "[services.cache]\nuse = \"redis\"\nports = []\n\n[services.other]\nuse = \"redis\"\nports = []\n";
    let mut p = Project::new("e2echange", base);
    p.ok(&["up", "-d"]);
    let before = p.ids();
    p.write(
        "dev.toml",
        &format!("[project]\nname = \"{}\"\n\n[services.cache]\nuse = \"redis\"\nports = []\nenv = {{ CHANGED = \"1\" }}\n\n[services.other]\nuse = \"redis\"\nports = []\n", p.name),
    );
    p.ok(&["up", "-d"]);
    let after = p.ids();
    let id =
        |ids: &[(String, String)], s: &str| ids.iter().find(|(n, _)| n == s).unwrap().1.clone();
    assert_ne!(
        id(&before, "cache"),
        id(&after, "cache"),
        "changed env must recreate"
    );
    assert_eq!(
        id(&before, "other"),
        id(&after, "other"),
        "unchanged service must stay"
    );

    p.write(
        "dev.toml",
        &format!("[project]\nname = \"{}\"\n\n[services.cache]\nuse = \"redis\"\nports = []\nenv = {{ CHANGED = \"1\" }}\n", p.name),
    );
    let out = p.ok(&["up", "-d"]);
    assert!(stderr(&out).contains("removing `other`"), "{}", text(&out));
    let ps = p.ps();
    assert_eq!(ps.len(), 1, "{ps:?}");
}

#[test]
fn a_service_that_never_gets_ready_fails_up_with_its_logs_and_the_probe_error() {
    warm_images();
    let mut p = Project::new(
        "e2enotready",
        "[services.cache]\nuse = \"redis\"\nports = []\nready = { tcp = 6390 }\nready_timeout = \"3s\"\n",
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("service `cache` was not ready after 3s"),
        "{err}"
    );
    assert!(
        err.contains("port 6390"),
        "the probe's last error is shown:\n{err}"
    );
    assert!(
        err.contains("cache |"),
        "the service's last log lines are shown:\n{err}"
    );
}

#[test]
fn a_service_that_exits_fails_up_naming_its_exit_code() {
    warm_images();
    let mut p = Project::new(
        "e2eexit",
        "[services.cache]\nuse = \"redis\"\nports = []\ncommand = [\"sh\", \"-c\", \"echo boom; exit 3\"]\nentrypoint = []\n",
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("service `cache` exited with code 3"), "{err}");
    assert!(err.contains("boom"), "{err}");
}

#[test]
fn a_taken_fixed_port_is_refused_before_anything_is_created() {
    warm_images();
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut p = Project::new(
        "e2eport",
        &format!("[services.cache]\nuse = \"redis\"\nports = [{{ port = \"{port}:6379\", fixed = true }}]\n"),
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("port {port} for service `cache` is already taken")),
        "{err}"
    );
    assert!(p.ps().is_empty(), "nothing may be created");
}

#[test]
fn an_interrupted_up_is_completed_by_the_next() {
    warm_images();
    let mut p = Project::new("e2ekill", &{
        let (a, b) = two_ports();
        three_services(a, b)
    });
    p.uses_docker = true;
    // Killed at random moments (creating, starting, waiting for readiness,
    // running hooks), from three starting points: nothing at all, containers
    // gone but the volume kept, containers stopped.
    let delays = support::random_delays(20, 1500);
    let began = std::time::Instant::now();
    for (trial, delay) in delays.into_iter().enumerate() {
        let from = ["down -v", "down", "stop"][trial % 3];
        p.ok(&from.split(' ').collect::<Vec<_>>());
        support::kill_after(p.path(), &["--progress", "quiet", "up", "-d"], delay);
        let out = p.run(&["--progress", "plain", "up", "-d"]);
        let what = format!("trial {trial} (from `{from}`, killed after {delay:?})");
        assert!(out.status.success(), "{what}:\n{}", text(&out));
        let ps = p.ps();
        assert_eq!(ps.len(), 3, "{what}: {ps:?}");
        assert!(ps.iter().all(|s| s["ready"] == true), "{what}: {ps:?}");
        assert!(
            began.elapsed() < std::time::Duration::from_secs(600),
            "20 trials are bounded to 10 minutes"
        );
    }
}

#[test]
fn an_interrupted_down_does_not_stop_what_the_next_up_started() {
    warm_images();
    let mut p = Project::new("e2ekilldown", &{
        let (a, b) = two_ports();
        three_services(a, b)
    });
    p.ok(&["up", "-d"]);
    let delays = support::random_delays(10, 400);
    for (trial, delay) in delays.into_iter().enumerate() {
        support::kill_after(p.path(), &["--progress", "quiet", "down"], delay);
        let out = p.run(&["--progress", "plain", "up", "-d"]);
        let what = format!("trial {trial} (down killed after {delay:?})");
        assert!(out.status.success(), "{what}:\n{}", text(&out));
        // A stop the killed `down` had sent lands within its 10 s grace,
        // mostly within a second: for 3 s every service must stay up.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < until {
            let ps = p.ps();
            assert_eq!(ps.len(), 3, "{what}: {ps:?}");
            assert!(
                ps.iter().all(|s| s["state"] == "running"),
                "{what}: a service stopped after `up` said ready: {ps:?}\n{}",
                text(&out)
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

#[test]
fn exec_passes_the_exit_code_through_and_run_makes_a_one_off_container() {
    warm_images();
    let mut p = Project::new("e2eexec", "[services.cache]\nuse = \"redis\"\nports = []\n");
    p.ok(&["up", "-d"]);
    let out = p.run(&["exec", "cache", "--", "sh", "-c", "echo hi; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    let out = p.ok(&[
        "run",
        "--rm",
        "cache",
        "--",
        "redis-cli",
        "-h",
        "cache",
        "ping",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
    assert_eq!(
        p.ps().len(),
        1,
        "the one-off container is gone and not listed"
    );
}

#[test]
fn r31_down_tells_a_leftover_one_off_apart_from_its_service() {
    warm_images();
    let mut p = Project::new(
        "e2edownoneoff",
        "[services.cache]\nuse = \"redis\"\nports = []\n",
    );
    p.ok(&["up", "-d"]);
    // `run` without `--rm` leaves its container, labelled `cache` too.
    p.ok(&["run", "cache", "--", "true"]);
    let out = p.ok(&["down"]);
    let err = stderr(&out);
    let stopping: Vec<&str> = err.lines().filter(|l| l.contains("stopping")).collect();
    assert_eq!(stopping.len(), 2, "{err}");
    assert_eq!(
        stopping.iter().filter(|l| **l == "cache stopping").count(),
        1,
        "the service's own stop, once: {err}"
    );
    let oneoff = format!("cache (one-off `{}-cache-run-", p.name);
    assert!(
        stopping.iter().any(|l| l.starts_with(&oneoff)),
        "the one-off says it is one: {err}"
    );
    assert_eq!(p.ps().len(), 0, "both are gone");
}

#[test]
fn a_sail_style_compose_file_imports_and_comes_up_ready() {
    warm_images();
    let fixtures = support::repo().join("tests/fixtures");
    let mut p = Project::new("e2esail", "");
    let sail = p.name.clone();
    std::fs::create_dir_all(p.path().join("web")).unwrap();
    for f in ["Dockerfile", "srv/health", "srv/index.html"] {
        let dest = p.path().join("web").join(f);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(fixtures.join("web").join(f), dest).unwrap();
    }
    let compose = std::fs::read_to_string(fixtures.join("compose-e2e/docker-compose.yml"))
        .unwrap()
        .replace("context: ../web", "context: ./web");
    p.write("docker-compose.yml", &compose);
    std::fs::remove_file(p.path().join("dev.toml")).unwrap();

    let out = p.run(&["import"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("wrote `dev.toml`"), "{}", text(&out));

    let [app, db, redis, smtp, ui]: [u16; 5] = support::free_ports(5).try_into().unwrap();
    let up = p
        .cmd()
        .args(["-p", &sail, "up", "-d"])
        .env("APP_PORT", app.to_string())
        .env("FORWARD_DB_PORT", db.to_string())
        .env("FORWARD_REDIS_PORT", redis.to_string())
        .env("FORWARD_MAILPIT_PORT", smtp.to_string())
        .env("FORWARD_MAILPIT_DASHBOARD_PORT", ui.to_string())
        .output()
        .unwrap();
    p.uses_docker = true;
    assert!(up.status.success(), "{}", text(&up));

    // What runs is what the Compose file says: services, readiness, ports, env, mounts.
    let env = [
        ("APP_PORT", app),
        ("FORWARD_DB_PORT", db),
        ("FORWARD_REDIS_PORT", redis),
        ("FORWARD_MAILPIT_PORT", smtp),
        ("FORWARD_MAILPIT_DASHBOARD_PORT", ui),
    ];
    let mut ps = p.cmd();
    ps.args(["-p", &sail, "ps", "--json"]);
    for (k, v) in env {
        ps.env(k, v.to_string());
    }
    let out = ps.output().unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = rows
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["laravel.test", "mailpit", "pgsql", "redis"]);
    assert!(
        rows.iter()
            .all(|r| r["ready"] == true && r["state"] == "running"),
        "{rows:?}"
    );
    let ports = |svc: &str| rows.iter().find(|r| r["service"] == svc).unwrap()["ports"].to_string();
    assert!(
        ports("laravel.test").contains(&format!("{app}->8080")),
        "{rows:?}"
    );
    assert!(ports("pgsql").contains(&format!("{db}->5432")), "{rows:?}");

    let exec = |args: &[&str]| {
        let mut c = p.cmd();
        c.args(["-p", &sail, "exec"]).args(args);
        for (k, v) in env {
            c.env(k, v.to_string());
        }
        c.output().unwrap()
    };
    let out = exec(&["laravel.test", "--", "env"]);
    let app_env = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        app_env.contains("DB_HOST=pgsql") && app_env.contains("REDIS_HOST=redis"),
        "{app_env}"
    );
    let out = exec(&[
        "pgsql",
        "--",
        "psql",
        "-U",
        "sail",
        "-d",
        "laravel",
        "-tAc",
        "SELECT current_user",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sail",
        "{}",
        text(&out)
    );
    let out = exec(&[
        "pgsql",
        "--",
        "sh",
        "-c",
        "test -f /var/lib/postgresql/data/PG_VERSION && echo mounted",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mounted",
        "{}",
        text(&out)
    );
}

#[test]
fn ports_are_published_on_loopback_unless_the_project_binds_all_interfaces() {
    warm_images();
    let port = support::free_port();
    let services = format!("[services.cache]\nuse = \"redis\"\nports = [\"{port}:6379\"]\n");
    let mut p = Project::new("e2eloopback", &services);
    let container = format!("{}-cache-1", p.name);
    let host_ip = || {
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{range (index .NetworkSettings.Ports \"6379/tcp\")}}{{.HostIp}} {{end}}",
                &container,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let mut ips: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        ips.sort();
        ips.join(" ")
    };
    p.ok(&["up", "-d"]);
    // Both loopback addresses `localhost` means, at one port (this machine
    // has an IPv6 loopback; one without gets `127.0.0.1` alone).
    let v6 = std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok();
    assert!(v6, "this test expects a machine with an IPv6 loopback");
    assert_eq!(host_ip(), "127.0.0.1 ::1");
    // Reachable where the summary says: localhost, over IPv4 and IPv6.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(std::net::TcpStream::connect((std::net::Ipv6Addr::LOCALHOST, port)).is_ok());
    // `ps` lists both bindings.
    let ps = p.ok(&["ps", "--json"]);
    let ports = stdout_of(&ps);
    assert!(
        ports.contains(&format!("127.0.0.1:{port}->6379/tcp")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("[::1]:{port}->6379/tcp")),
        "{ports}"
    );

    p.write(
        "dev.toml",
        &format!(
            "[project]\nname = \"{}\"\nbind_all_interfaces = true\n\n{services}",
            p.name
        ),
    );
    let out = p.ok(&["--progress", "plain", "up", "-d"]);
    assert!(stdout_of(&out).contains("recreated"), "{}", text(&out));
    // Every interface, IPv6 too where the engine has it.
    assert!(host_ip().starts_with("0.0.0.0"), "{}", host_ip());
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// PostgreSQL's first start runs a temporary server for the init scripts.
/// A healthcheck that asks the usual socket (Sail's `pg_isready`, as
/// imported) must not find it there: it would call the stack ready, and the
/// next command would meet "the database system is starting up" when the
/// real server replaces it.
#[test]
fn postgres_answers_no_one_on_its_socket_while_its_init_scripts_run() {
    warm_images();
    let mut p = Project::new(
        "e2epginit",
        "[services.db]\nuse = \"postgres\"\nports = []\nvolumes = [\"./initdb:/docker-entrypoint-initdb.d:ro\"]\n",
    );
    p.write(
        "initdb/10-slow.sh",
        "touch /tmp/init-running\nsleep 5\nrm /tmp/init-running\n",
    );
    p.uses_docker = true;
    let container = format!("{}-db-1", p.name);
    let in_db = |args: &[&str]| {
        std::process::Command::new("docker")
            .args(["exec", &container])
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    let up = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
        .args(["--progress", "plain", "up", "-d"])
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let up = std::thread::spawn(move || up.wait_with_output().unwrap());
    assert!(
        support::eventually(120, || in_db(&["test", "-e", "/tmp/init-running"])),
        "the init script never ran"
    );
    // The init script is still running: nothing on the usual socket.
    assert!(
        !in_db(&["pg_isready", "-q"]),
        "pg_isready answered during init"
    );
    let out = up.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(in_db(&["pg_isready", "-q"]));
    let (rows, ok) = p.psql("SELECT 1");
    assert!(ok && rows.trim() == "1", "{rows}");
}
