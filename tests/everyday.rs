//! End-to-end: the everyday loop (issue 23) on the real engine — signals
//! to an attached `up`, `logs -f` across restarts and new services, what
//! attached `up` shows, dependencies held by `restart`, `ps`'s ports and
//! `describe`. Attached commands run in a pseudo-terminal (see `session`).

use crate::session::{shell_service, states, Term};
use crate::support;

use std::time::Duration;

use support::{eventually, Project};

/// A project on the base image, which is built (offline: debootstrap) on
/// first use; when it is there already, the shared image lock (held for
/// minutes by another binary building the app image) is not waited for.
fn project(name: &str, toml: &str) -> Project {
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", "debian:bookworm-slim"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        support::warm_images();
    }
    Project::new(name, toml)
}

/// A shell script as `dev.toml` takes it literally (`$$`: no interpolation).
fn literal(script: &str) -> String {
    script.replace('$', "$$")
}

/// The devenv process `script` runs in the terminal (its shell `exec`s it).
fn devenv_pid(t: &Term) -> i32 {
    let script = t.child.id();
    let mut pid = None;
    assert!(
        eventually(10, || {
            let children =
                std::fs::read_to_string(format!("/proc/{script}/task/{script}/children"))
                    .unwrap_or_default();
            pid = children.split_whitespace().find_map(|c| {
                let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).ok()?;
                (comm.trim() == "devenv").then(|| c.parse().ok()).flatten()
            });
            pid.is_some()
        }),
        "no devenv process under `script`"
    );
    pid.unwrap()
}

fn signal(pid: i32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// SIGTERM and SIGHUP stop an attached `up`'s stack as Ctrl-C does, and
/// the exit code says which signal (128 + its number).
fn signal_stops_the_stack(sig: &str, code: i32) {
    let mut p = project(
        &format!("wtloop-{}", sig.to_lowercase()),
        &shell_service("app", "echo started; exec sleep 1000", ""),
    );
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("following logs", 120);
    signal(devenv_pid(&t), sig);
    assert_eq!(t.exit_code(30), Some(code), "{}", t.screen());
    assert_eq!(
        states(&mut p),
        vec![("app".into(), "exited".into())],
        "{}",
        t.screen()
    );
}

#[test]
fn r23_3_sigterm_to_attached_up_stops_the_stack_and_exits_143() {
    signal_stops_the_stack("TERM", 143);
}

#[test]
fn r23_3_sighup_to_attached_up_stops_the_stack_and_exits_129() {
    signal_stops_the_stack("HUP", 129);
}

#[test]
fn r23_4_logs_f_shows_a_service_started_after_it_began() {
    let mut p = project(
        "wtloop-join",
        &format!(
            "{}{}",
            shell_service("first", "echo first-up; exec sleep 1000", ""),
            shell_service("later", "echo later-up; exec sleep 1000", "")
        ),
    );
    p.ok(&["up", "-d", "first"]);
    let mut logs = Term::spawn(&mut p, "logs -f");
    logs.wait_for("first | first-up", 30);
    let mut named = Term::spawn(&mut p, "logs -f first");
    named.wait_for("first | first-up", 30);
    p.ok(&["up", "-d", "later"]);
    logs.wait_for("later | later-up", 30);
    // Services named: only those.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!named.screen().contains("later"), "{}", named.screen());
    logs.ctrl_c();
    assert_eq!(logs.exit_code(20), Some(130), "{}", logs.screen());
    named.ctrl_c();
    assert_eq!(named.exit_code(20), Some(130), "{}", named.screen());
}

/// Each run numbers itself (a counter in the container's own /tmp) and
/// prints seven lines at once, then crashes after a while.
const BOOT: &str = "n=$(($(cat /tmp/n 2>/dev/null || echo 0) + 1)); echo $n > /tmp/n; \
    for i in 1 2 3 4 5 6 7; do echo run$n-line$i; done; sleep 3; exit 3";

#[test]
fn r23_1_attached_up_shows_every_line_of_a_restarted_run_once() {
    let mut p = project(
        "wtloop-lost",
        &shell_service("boot", &literal(BOOT), "restart = \"on-failure\""),
    );
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("boot | run4-line7", 120);
    let screen = t.screen();
    for run in 1..=3 {
        for i in 1..=7 {
            let line = format!("boot | run{run}-line{i}");
            let count = screen.lines().filter(|l| l.trim_end() == line).count();
            assert_eq!(count, 1, "{line:?} once:\n{screen}");
        }
    }
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
}

#[test]
fn r23_5_logs_f_t_keeps_timestamps_after_a_restart() {
    let mut p = project(
        "wtloop-stamps",
        &shell_service(
            "app",
            &literal("n=$(($(cat /tmp/n 2>/dev/null || echo 0) + 1)); echo $n > /tmp/n; echo run$n; exec sleep 1000"),
            "",
        ),
    );
    p.ok(&["up", "-d"]);
    let mut logs = Term::spawn(&mut p, "logs -f -t");
    logs.wait_for("run1", 30);
    p.ok(&["restart", "app"]);
    logs.wait_for("run2", 30);
    let screen = logs.screen();
    for run in ["run1", "run2"] {
        let line = screen.lines().find(|l| l.ends_with(run)).unwrap();
        // `app | 2026-12-07T05:14:20.123456789Z run2`
        let stamp = line.trim_start_matches("app | ").split(' ').next().unwrap();
        assert!(
            stamp.len() > 20 && stamp.ends_with('Z') && stamp.contains('T'),
            "{run} has no timestamp: {line:?}\n{screen}"
        );
    }
    logs.ctrl_c();
    assert_eq!(logs.exit_code(20), Some(130), "{}", logs.screen());
}

#[test]
fn r23_2_attached_up_does_not_replay_previous_runs() {
    let mut p = project(
        "wtloop-replay",
        &shell_service(
            "app",
            &literal("n=$(($(cat /tmp/n 2>/dev/null || echo 0) + 1)); echo $n > /tmp/n; echo run$n; exec sleep 1000"),
            "",
        ),
    );
    p.ok(&["up", "-d"]);
    p.ok(&["stop", "app"]);
    p.ok(&["start", "app"]);
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("following logs", 120);
    // What happens from now on does show.
    p.ok(&["restart", "app"]);
    t.wait_for("app | run3", 30);
    let screen = t.screen();
    assert!(
        !screen.contains("run1") && !screen.contains("run2"),
        "{screen}"
    );
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
}

/// A TCP listener on port 80 from the base image's own Perl.
const LISTEN: &str = "exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 80, Listen => 5, ReuseAddr => 1) or die; while ($c = $s->accept) { close $c }'";

#[test]
fn r23_7_a_service_that_crashes_once_then_comes_up_does_not_fail_up() {
    let mut p = project(
        "wtloop-once",
        &shell_service(
            "flaky",
            &literal(&format!("if [ ! -f /tmp/crashed ]; then touch /tmp/crashed; echo crash-once; sleep 1; exit 1; fi; echo listening; {LISTEN}")),
            "restart = \"on-failure\"\nready = { tcp = 80 }\nready_timeout = \"60s\"",
        ),
    );
    let started = std::time::Instant::now();
    p.ok(&["up", "-d"]);
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(states(&mut p), vec![("flaky".into(), "running".into())]);
}

#[test]
fn r23_8_restart_does_not_start_a_service_whose_completed_dependency_failed() {
    let mut p = project(
        "wtloop-deps",
        &format!(
            "{}{}",
            // Succeeds on its first run only (its counter lives in the container).
            shell_service(
                "migrate",
                &literal("n=$(($(cat /tmp/n 2>/dev/null || echo 0) + 1)); echo $n > /tmp/n; echo migrate-$n; [ $n -eq 1 ]"),
                "restart = \"no\""
            ),
            shell_service(
                "app",
                "echo app-up; exec sleep 1000",
                "depends_on = { migrate = \"completed\" }"
            )
        ),
    );
    p.ok(&["up", "-d"]);
    assert!(states(&mut p).contains(&("app".into(), "running".into())));
    let out = p.run(&["restart"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out));
    assert!(
        support::stderr(&out).contains("migrate"),
        "{}",
        support::text(&out)
    );
    // The app does not run against what the failed dependency left.
    assert!(
        states(&mut p).contains(&("app".into(), "exited".into())),
        "{:?}\n{}",
        states(&mut p),
        support::text(&out)
    );
    // `start` holds the condition too.
    let out = p.run(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out));
    assert!(states(&mut p).contains(&("app".into(), "exited".into())));
}

#[test]
fn r23_6_ps_shows_every_host_binding_of_a_port() {
    let (one, two) = (support::free_port(), support::free_port());
    let mut p = project(
        "wtloop-binds",
        &shell_service(
            "web",
            "exec sleep 1000",
            &format!("ports = [\"127.0.0.1:{one}:80\", \"127.0.0.2:{two}:80\"]"),
        ),
    );
    p.ok(&["up", "-d"]);
    let rows = p.ps();
    let ports: Vec<String> = rows[0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ports,
        vec![
            format!("127.0.0.1:{one}->80/tcp"),
            format!("127.0.0.2:{two}->80/tcp")
        ]
    );
    let out = p.ok(&["ps"]);
    let text = support::text(&out);
    assert!(text.contains(&format!("127.0.0.2:{two}->80/tcp")), "{text}");
    assert!(text.contains("devenv describe"), "{text}");
}

const DESCRIBED: &str = r#"
[services.db]
image = "debian:bookworm-slim"
command = ["sh", "-c", "exec sleep 1000"]
env = { POSTGRES_USER = "shop", POSTGRES_PASSWORD = "s3cr3t-Describe-pw", POSTGRES_DB = "shopdb" }
ports = ["5432"]

[services.cache]
image = "debian:bookworm-slim"
command = ["sh", "-c", "exec sleep 1000"]
ports = ["6379"]
"#;

#[test]
fn r23_describe_shows_connection_details_with_secrets_masked_unless_revealed() {
    let mut p = project("wtloop-describe", DESCRIBED);
    p.ok(&["up", "-d"]);
    let host_port = |rows: &serde_json::Value, svc: &str| -> String {
        let d = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["service"] == svc)
            .unwrap();
        d["connection"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == "port")
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let json: serde_json::Value =
        serde_json::from_slice(&p.ok(&["describe", "--json"]).stdout).unwrap();
    let pg = host_port(&json, "db");
    let text = json.to_string();
    assert!(!text.contains("s3cr3t-Describe-pw"), "{text}");
    assert!(
        text.contains(&format!("postgres://shop:********@127.0.0.1:{pg}/shopdb")),
        "{text}"
    );
    let redis = host_port(&json, "cache");
    assert!(
        text.contains(&format!("redis://127.0.0.1:{redis}")),
        "{text}"
    );
    // Revealed, the URL is ready to paste.
    let out = p.ok(&["describe", "db", "--reveal"]);
    let shown = support::text(&out);
    assert!(
        shown.contains(&format!(
            "postgres://shop:s3cr3t-Describe-pw@127.0.0.1:{pg}/shopdb"
        )),
        "{shown}"
    );
    assert!(!shown.contains("cache"), "{shown}");
    // Without `--reveal`, the text form masks it.
    let out = p.ok(&["describe"]);
    let shown = support::text(&out);
    assert!(!shown.contains("s3cr3t-Describe-pw"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.trim_start().starts_with("database") && l.ends_with(" shopdb")),
        "{shown}"
    );
}

#[test]
fn r23_up_exit_code_from_stops_the_stack_and_returns_that_services_code() {
    let mut p = project(
        "wtloop-exitfrom",
        &format!(
            "{}{}",
            shell_service("tests", "echo testing; sleep 2; exit 7", "restart = \"no\""),
            shell_service("db", "echo db-up; exec sleep 1000", "")
        ),
    );
    let mut t = Term::spawn(&mut p, "up --exit-code-from tests");
    assert_eq!(t.exit_code(120), Some(7), "{}", t.screen());
    assert!(t.screen().contains("tests | testing"), "{}", t.screen());
    let st = states(&mut p);
    assert!(st.contains(&("db".into(), "exited".into())), "{st:?}");

    let mut t = Term::spawn(&mut p, "up --abort-on-container-exit");
    assert_eq!(t.exit_code(120), Some(7), "{}", t.screen());
}

#[test]
fn r23_9_ctrl_c_on_exec_t_reaches_the_command_in_the_container() {
    let mut p = project("wtloop-exec", &shell_service("app", "exec sleep 1000", ""));
    p.ok(&["up", "-d"]);
    let mut t = Term::spawn(
        &mut p,
        "exec -T app -- sh -c 'trap \"echo got-int > /tmp/got-int; exit 5\" INT; echo waiting; while :; do sleep 0.1; done'",
    );
    t.wait_for("waiting", 30);
    t.ctrl_c();
    assert!(t.exit_code(20).is_some(), "{}", t.screen());
    let out = p.ok(&["exec", "-T", "app", "--", "cat", "/tmp/got-int"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "got-int",
        "{}",
        t.screen()
    );
}

#[test]
fn r23_1_logs_f_shows_every_boot_line_of_each_restart_once() {
    let mut p = project(
        "wtloop-boot",
        &shell_service(
            "app",
            &literal(
                "n=$(($(cat /tmp/n 2>/dev/null || echo 0) + 1)); echo $n > /tmp/n; \
                 for i in 1 2 3 4 5 6 7; do echo run$n-line$i; done; exec sleep 1000",
            ),
            "",
        ),
    );
    p.ok(&["up", "-d"]);
    let mut logs = Term::spawn(&mut p, "logs -f");
    logs.wait_for("app | run1-line7", 30);
    for run in 2..=3 {
        p.ok(&["restart", "app"]);
        logs.wait_for(&format!("app | run{run}-line7"), 30);
    }
    let screen = logs.screen();
    for run in 1..=3 {
        for i in 1..=7 {
            let line = format!("app | run{run}-line{i}");
            let count = screen.lines().filter(|l| l.trim_end() == line).count();
            assert_eq!(count, 1, "{line:?} once:\n{screen}");
        }
    }
    logs.ctrl_c();
    assert_eq!(logs.exit_code(20), Some(130), "{}", logs.screen());
}

/// A stack whose passwords come from the shell, with a default: `up` ran
/// with one, the later commands run without it.
const HELD: &str = r#"
[services.db]
image = "debian:bookworm-slim"
command = ["sh", "-c", "echo db password is $$POSTGRES_PASSWORD; exec sleep 1000"]
env = { POSTGRES_USER = "app", POSTGRES_PASSWORD = "${WTHELD_PW:-secret}", POSTGRES_DB = "app" }
ports = ["5432"]

[services.app]
image = "debian:bookworm-slim"
command = ["sh", "-c", "echo app password is $$DB_PASSWORD; exec sleep 1000"]
env = { DB_PASSWORD = "${WTHELD_PW:-secret}" }
"#;

const HELD_PW: &str = "Trial42LongPass";

#[test]
fn r_secrets_the_containers_hold_stay_masked_when_the_shell_has_other_variables() {
    let mut p = project("wtheld", HELD);
    p.uses_docker = true;
    let up = p
        .cmd()
        .env("WTHELD_PW", HELD_PW)
        .args(["up", "-d"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", support::text(&up));
    // This shell has no `WTHELD_PW`: the stack file resolves to `secret`.
    let logs = |p: &mut Project, args: &[&str]| support::text(&p.ok(args));
    assert!(
        eventually(30, || logs(&mut p, &["logs"]).contains("app password is")),
        "{}",
        logs(&mut p, &["logs"])
    );
    for args in [&["logs"][..], &["logs", "app"], &["logs", "db"]] {
        let shown = logs(&mut p, args);
        assert!(!shown.contains(HELD_PW), "`{args:?}` shows it:\n{shown}");
    }
    let shown = logs(&mut p, &["logs"]);
    assert!(shown.contains("app | app password is ********"), "{shown}");
    assert!(shown.contains("db | db password is ********"), "{shown}");
    let mut follow = Term::spawn(&mut p, "logs -f app");
    follow.wait_for("app | app password is ********", 30);
    assert!(!follow.screen().contains(HELD_PW), "{}", follow.screen());
    follow.ctrl_c();
    assert_eq!(follow.exit_code(20), Some(130), "{}", follow.screen());

    // `describe` shows what the running server takes, when asked.
    let revealed = logs(&mut p, &["describe", "db", "--reveal"]);
    let url = format!("postgres://app:{HELD_PW}@127.0.0.1:");
    assert!(revealed.contains(&url), "{revealed}");
    assert!(
        revealed
            .lines()
            .any(|l| l.trim_start().starts_with("password") && l.ends_with(HELD_PW)),
        "{revealed}"
    );
    for args in [&["describe"][..], &["describe", "--json"]] {
        let shown = logs(&mut p, args);
        assert!(!shown.contains(HELD_PW), "`{args:?}` shows it:\n{shown}");
        assert!(
            shown.contains("postgres://app:********@127.0.0.1:"),
            "{shown}"
        );
    }
}

/// Seconds since midnight of an engine timestamp (`…T19:20:01.123456789Z`).
fn clock(stamp: &str) -> f64 {
    let time = stamp.split('T').nth(1).unwrap().trim_end_matches('Z');
    time.split(':')
        .map(|p| p.parse::<f64>().unwrap())
        .fold(0.0, |acc, p| acc * 60.0 + p)
}

/// `stop` stops dependents before what they need, as Compose does: the app
/// (a second to stop) has finished before its database is asked to stop.
#[test]
fn stop_stops_the_app_before_its_database() {
    let script = "trap 'sleep 1; exit 0' TERM; echo up; while true; do sleep 0.1; done";
    let toml = format!(
        "{}{}",
        shell_service("db", script, ""),
        shell_service("app", script, "depends_on = [\"db\"]"),
    );
    let mut p = project("wtloop-stoporder", &toml);
    p.ok(&["up", "-d"]);
    let ids: Vec<(String, String)> = p
        .ps()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["container"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    p.ok(&["stop"]);
    let finished = |service: &str| {
        let id = &ids.iter().find(|(s, _)| s == service).unwrap().1;
        let out = std::process::Command::new("docker")
            .args(["inspect", "-f", "{{.State.FinishedAt}}", id])
            .output()
            .unwrap();
        clock(String::from_utf8_lossy(&out.stdout).trim())
    };
    let (app, db) = (finished("app"), finished("db"));
    assert!(
        db - app > 0.5,
        "app stopped at {app}, db at {db}: db first or at once"
    );
}
