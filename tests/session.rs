//! End-to-end: the attached session and the stack's lifecycle under
//! restarts, crashes and Ctrl-C (issue 11), on the real engine. Attached
//! commands run in a pseudo-terminal (util-linux `script`), Ctrl-C is the
//! byte a keyboard sends into it, and what is asserted is the screen a
//! terminal shows after the bytes devenv wrote (rendered by `vt100`).

use crate::support;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{eventually, text, Project};

/// The pseudo-terminal's size; tall enough that nothing scrolls away, so
/// the screen holds the whole session.
const ROWS: u16 = 3000;
const COLS: u16 = 160;

/// A devenv command running in a pseudo-terminal.
pub(crate) struct Term {
    pub(crate) child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Term {
    pub(crate) fn spawn(p: &mut Project, args: &str) -> Term {
        p.uses_docker = true;
        let bin = assert_cmd::cargo::cargo_bin("devenv");
        let cmd = format!(
            "stty rows {ROWS} cols {COLS}; exec {} {args}",
            bin.display()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux `script` runs");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Term { child, stdin, out }
    }

    /// What a terminal shows now.
    pub(crate) fn screen(&self) -> String {
        let mut parser = vt100::Parser::new(ROWS, COLS, 0);
        parser.process(&self.out.lock().unwrap());
        parser.screen().contents()
    }

    /// Waits until the screen shows `text`; fails with the screen otherwise.
    pub(crate) fn wait_for(&self, text: &str, secs: u64) {
        assert!(
            eventually(secs, || self.screen().contains(text)),
            "the screen never showed {text:?}:\n{}",
            self.screen()
        );
    }

    pub(crate) fn ctrl_c(&mut self) {
        self.stdin.write_all(b"\x03").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The exit code, once it ends within `secs`; `None` (and killed) if it does not.
    pub(crate) fn exit_code(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service of the base image running `script` under `sh`.
pub(crate) fn shell_service(name: &str, script: &str, extra: &str) -> String {
    format!(
        "[services.{name}]\nimage = \"debian:bookworm-slim\"\ncommand = [\"sh\", \"-c\", {script:?}]\n{extra}\n"
    )
}

/// `ps --json`'s state per service.
pub(crate) fn states(p: &mut Project) -> Vec<(String, String)> {
    p.ps()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn r11_1_attached_up_follows_a_service_the_engine_restarts_after_a_crash() {
    let mut p = Project::new(
        "wtsession-crash",
        &shell_service(
            "crash",
            "echo run-$(date +%s%N); sleep 2; echo crashing; exit 3",
            "restart = \"on-failure\"",
        ),
    );
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("following logs", 120);
    t.wait_for(
        "crash | ── restarted: it exited with code 3; restart = \"on-failure\"",
        30,
    );
    // The new run's lines come after the restart line, and the session is still on.
    assert!(
        eventually(20, || t.screen().matches("crash | run-").count() >= 2),
        "{}",
        t.screen()
    );
    assert!(!t.screen().contains("stopping"), "{}", t.screen());
    assert_eq!(t.child.try_wait().unwrap(), None, "{}", t.screen());
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
}

#[test]
fn r11_1_attached_up_and_logs_f_follow_a_restart_from_another_terminal_and_a_watch_rule() {
    let mut p = Project::new(
        "wtsession-restart",
        &format!(
            "{}\n[[services.app.watch]]\npath = \"conf\"\naction = \"restart\"\n",
            shell_service("app", "echo run-$(date +%s%N); exec sleep 1000", "")
        ),
    );
    p.write("conf/app.conf", "one\n");
    let mut up = Term::spawn(&mut p, "up");
    up.wait_for("watching 1 folder", 120);
    let mut logs = Term::spawn(&mut p, "logs -f");
    logs.wait_for("app | run-", 20);

    p.ok(&["restart", "app"]);
    for t in [&up, &logs] {
        t.wait_for("app | ── restarted", 30);
        assert!(
            eventually(20, || t.screen().matches("app | run-").count() >= 2),
            "{}",
            t.screen()
        );
    }
    assert_eq!(logs.child.try_wait().unwrap(), None, "{}", logs.screen());

    // A watch rule restarting it says so, on the attached session.
    p.write("conf/app.conf", "two\n");
    up.wait_for("app | ── restarted: a `restart` watch rule fired", 30);
    assert!(
        eventually(20, || up.screen().matches("app | run-").count() >= 3),
        "{}",
        up.screen()
    );
    assert!(!up.screen().contains("stopping"), "{}", up.screen());

    logs.ctrl_c();
    assert_eq!(logs.exit_code(20), Some(130), "{}", logs.screen());
    up.ctrl_c();
    assert_eq!(up.exit_code(30), Some(130), "{}", up.screen());
}

#[test]
fn r11_3_ctrl_c_before_everything_is_ready_stops_the_stack_and_exits_130() {
    let mut p = Project::new(
        "wtsession-early",
        &shell_service(
            "slow",
            "echo started; exec sleep 1000",
            // Nothing listens there: it is never ready.
            "ready = { tcp = 6399 }\nready_timeout = \"120s\"",
        ),
    );
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("waiting until ready", 120);
    t.ctrl_c();
    t.wait_for("press Ctrl-C again to force", 10);
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
    let st = states(&mut p);
    assert_eq!(st, vec![("slow".into(), "exited".into())], "{}", t.screen());
}

#[test]
fn r11_3_a_second_ctrl_c_kills_instead_of_waiting_for_the_stop_timeout() {
    let mut p = Project::new(
        "wtsession-force",
        // Ignores SIGTERM: a graceful stop takes the whole 10 s timeout.
        &shell_service(
            "stubborn",
            "trap '' TERM; echo up; while :; do sleep 0.2; done",
            "",
        ),
    );
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("stubborn | up", 120);
    t.ctrl_c();
    t.wait_for("press Ctrl-C again to force", 10);
    std::thread::sleep(Duration::from_millis(500));
    let pressed = Instant::now();
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
    assert!(
        pressed.elapsed() < Duration::from_secs(5),
        "the second Ctrl-C must not wait for the stop timeout: {:?}\n{}",
        pressed.elapsed(),
        t.screen()
    );
    assert_eq!(
        states(&mut p),
        vec![("stubborn".into(), "exited".into())],
        "{}",
        t.screen()
    );
}

#[test]
fn r11_3_logs_f_and_watch_exit_130_on_ctrl_c() {
    let mut p = Project::new(
        "wtsession-codes",
        &format!(
            "{}\n[[services.app.watch]]\npath = \"conf\"\naction = \"restart\"\n",
            shell_service("app", "echo hello; exec sleep 1000", "")
        ),
    );
    p.write("conf/a", "a");
    p.ok(&["up", "-d"]);
    for args in ["logs -f", "watch"] {
        let mut t = Term::spawn(&mut p, args);
        t.wait_for(
            if args == "watch" {
                "watching"
            } else {
                "app | hello"
            },
            30,
        );
        t.ctrl_c();
        assert_eq!(t.exit_code(20), Some(130), "{args}:\n{}", t.screen());
    }
    // A command with nothing to clean up ends at once, with the same code.
    let mut t = Term::spawn(&mut p, "exec app -- sleep 30");
    std::thread::sleep(Duration::from_secs(2));
    t.ctrl_c();
    let code = t.exit_code(20);
    assert!(
        code == Some(130),
        "exec: {code:?}\n{}\n{}",
        t.screen(),
        text(&p.run(&["ps"]))
    );
}

#[test]
fn r11_2_progress_never_erases_log_lines_and_every_spinner_ends() {
    let mut p = Project::new(
        "wtsession-screen",
        &format!(
            "{}\n[[services.app.watch]]\npath = \"src\"\naction = \"sync\"\ntarget = \"/srv\"\n",
            shell_service(
                "app",
                "i=0; while [ $$i -lt 400 ]; do i=$$((i+1)); echo tick-$$i; sleep 0.05; done; exec sleep 1000",
                // Copies, so syncs draw and finish spinners (bind mode has none).
                "mount = \"sync\""
            )
        ),
    );
    p.write("src/a.txt", "0");
    let mut t = Term::spawn(&mut p, "up");
    t.wait_for("watching 1 folder", 120);
    // Syncs draw and finish spinners while the logs stream.
    for i in 0..6 {
        p.write("src/a.txt", &i.to_string());
        std::thread::sleep(Duration::from_millis(700));
    }
    t.wait_for("app | tick-400", 60);
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
    let screen = t.screen();
    // Every log line is on the screen, once, in order.
    let ticks: Vec<u32> = screen
        .lines()
        .filter_map(|l| l.trim().strip_prefix("app | tick-"))
        .map(|n| n.trim().parse().unwrap())
        .collect();
    assert_eq!(ticks, (1..=400).collect::<Vec<_>>(), "{screen}");
    assert!(screen.contains("✔ app synced"), "{screen}");
    // No spinner is left turning or half-drawn.
    let spinners = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    assert!(!screen.contains(&spinners[..]), "{screen}");
}

/// `ps --json`'s services.
fn services(p: &mut Project) -> Vec<String> {
    states(p).into_iter().map(|(s, _)| s).collect()
}

#[test]
fn r11_5_depends_on_ready_without_a_probe_is_refused_before_anything_is_created() {
    let mut p = Project::new(
        "wtsession-noprobe",
        &format!(
            "{}\n{}",
            shell_service("db", "exec sleep 1000", "ports = [\"5432\"]"),
            shell_service("app", "exec sleep 1000", "depends_on = { db = \"ready\" }")
        ),
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = support::stderr(&out);
    assert!(
        err.contains("service `app` waits for `db` to be ready, but `db` has no `ready` probe"),
        "{err}"
    );
    assert!(err.contains("dev.toml:"), "points at the file: {err}");
    assert!(
        err.contains("add a probe to `db` (e.g. `ready = { tcp = 5432 }`)"),
        "{err}"
    );
    // A valid file for the same project, to ask the engine what exists.
    p.write("dev.toml", &format!("[project]\nname = \"{}\"\n", p.name));
    assert!(services(&mut p).is_empty(), "nothing may be created");
}

#[test]
fn r11_10_a_service_of_an_inactive_profile_is_not_an_orphan() {
    let mut p = Project::new(
        "wtsession-profile",
        &format!(
            "{}\n{}",
            shell_service("app", "exec sleep 1000", ""),
            shell_service("debug", "exec sleep 1000", "profiles = [\"debug\"]")
        ),
    );
    p.ok(&["--profile", "debug", "up", "-d"]);
    let out = p.ok(&["up", "-d"]);
    assert!(
        !support::stderr(&out).contains("removing"),
        "{}",
        text(&out)
    );
    let mut st = states(&mut p);
    st.sort();
    assert_eq!(
        st,
        vec![
            ("app".into(), "running".into()),
            ("debug".into(), "running".into())
        ]
    );
}

#[test]
fn r11_11_one_port_on_two_host_addresses_is_refused_before_anything_is_created() {
    let port = support::free_port();
    let mut p = Project::new(
        "wtsession-ports",
        &format!(
            "{}\n{}",
            shell_service(
                "a",
                "exec sleep 1000",
                &format!("ports = [\"127.0.0.1:{port}:80\"]")
            ),
            shell_service("b", "exec sleep 1000", &format!("ports = [\"{port}:81\"]"))
        ),
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        support::stderr(&out).contains(&format!(
            "services `a` and `b` both publish host port {port}"
        )),
        "{}",
        text(&out)
    );
    // A valid file for the same project, to ask the engine what exists.
    p.write("dev.toml", &format!("[project]\nname = \"{}\"\n", p.name));
    assert!(services(&mut p).is_empty(), "nothing may be created");
}

#[test]
fn r11_8_start_and_restart_return_once_the_service_is_ready() {
    let mut p = Project::new(
        "wtsession-startready",
        &shell_service(
            "app",
            "rm -f /tmp/ready; sleep 2; touch /tmp/ready; exec sleep 1000",
            "ready = { exec = [\"test\", \"-e\", \"/tmp/ready\"] }",
        ),
    );
    p.ok(&["up", "-d"]);
    let ready = |p: &mut Project| p.run(&["exec", "app", "--", "test", "-e", "/tmp/ready"]);
    p.ok(&["restart", "app"]);
    let out = ready(&mut p);
    assert!(out.status.success(), "not ready after `restart` returned");
    p.ok(&["stop", "app"]);
    let out = p.ok(&["start", "app"]);
    assert!(support::stderr(&out).contains("ready in"), "{}", text(&out));
    assert!(
        ready(&mut p).status.success(),
        "not ready after `start` returned"
    );
}

#[test]
fn r11_4_a_one_shot_service_without_a_probe_does_not_fail_up() {
    // Several jobs that exit at once: one of them is gone before it is first
    // looked at (the race that made `up -d` fail intermittently).
    let jobs: String = (1..=6)
        .map(|i| {
            format!("[services.job{i}]\nimage = \"debian:bookworm-slim\"\ncommand = [\"true\"]\n\n")
        })
        .collect();
    let mut p = Project::new(
        "wtsession-oneshot",
        &format!("{jobs}{}", shell_service("app", "exec sleep 1000", "")),
    );
    for _ in 0..3 {
        p.ok(&["up", "-d"]);
    }
}

/// `up -d` of `toml`: it must fail, fast, saying `reason`, with the service's log.
fn fails_fast(name: &str, toml: &str, reason: &str, log_line: &str) {
    let mut p = Project::new(name, toml);
    p.uses_docker = true;
    let started = Instant::now();
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited {:?}, not failing fast:\n{}",
        started.elapsed(),
        text(&out)
    );
    let err = support::stderr(&out);
    assert!(err.contains(reason), "{err}");
    assert!(err.contains(log_line), "{err}");
}

#[test]
fn r11_6_a_crash_loop_fails_fast_with_the_services_log() {
    fails_fast(
        "wtsession-loop",
        &shell_service(
            "app",
            "echo boom; exit 1",
            "restart = \"always\"\nready = { tcp = 6399 }\nready_timeout = \"120s\"",
        ),
        "service `app` keeps crashing: it ",
        "app | boom",
    );
}

#[test]
fn r11_6_exit_137_is_explained() {
    fails_fast(
        "wtsession-137",
        &shell_service(
            "app",
            "echo about-to-die; sleep 1; kill -9 $$$$",
            "ready = { tcp = 6399 }\nready_timeout = \"120s\"",
        ),
        "exited with code 137 (killed: out of memory or by a signal) before it was ready",
        "app | about-to-die",
    );
}

#[test]
fn r11_6_a_probe_that_can_never_pass_fails_at_once() {
    fails_fast(
        "wtsession-noexec",
        &shell_service(
            "app",
            "echo up; exec sleep 1000",
            "ready = { exec = [\"no-such-probe\"] }\nready_timeout = \"120s\"",
        ),
        "has an exec probe whose program `no-such-probe` is not in its image",
        "app | up",
    );
    fails_fast(
        "wtsession-nohealth",
        &shell_service(
            "app",
            "echo up; exec sleep 1000",
            "ready = { docker = \"healthy\" }\nready_timeout = \"120s\"",
        ),
        "has a `docker` probe but its image has no HEALTHCHECK",
        "",
    );
}

#[test]
fn r11_9_run_passes_stdin_and_gives_a_tty_like_exec() {
    let mut p = Project::new(
        "wtsession-run",
        &shell_service("app", "exec sleep 1000", ""),
    );
    p.uses_docker = true;
    let out = p
        .cmd()
        .args(["run", "--rm", "app", "--", "cat"])
        .write_stdin("piped-in\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped-in\n");

    // On a terminal: an interactive shell that stays until told to exit.
    let mut t = Term::spawn(&mut p, "run --rm app -- bash");
    t.wait_for("root@", 60);
    t.stdin.write_all(b"echo in-bash-$((6*7)); tty\r").unwrap();
    t.wait_for("in-bash-42", 20);
    t.wait_for("/dev/pts/", 20);
    t.stdin.write_all(b"exit 3\r").unwrap();
    assert_eq!(t.exit_code(20), Some(3), "{}", t.screen());
}

/// The command lines of every process in the service's container.
fn processes(p: &mut Project, service: &str) -> String {
    let out = p.ok(&[
        "exec",
        service,
        "--",
        "sh",
        "-c",
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn r11_7_hooks_that_did_not_finish_run_again_and_finished_ones_do_not() {
    let mut p = Project::new(
        "wtsession-hooks",
        &shell_service(
            "app",
            "exec sleep 1000",
            "hooks = { after_up = [\"echo first >> /tmp/log\", \"test -e /tmp/allow\", \"echo second >> /tmp/log\"] }",
        ),
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        support::stderr(&out).contains("hook `test -e /tmp/allow` of service `app` failed"),
        "{}",
        text(&out)
    );
    p.ok(&["exec", "app", "--", "touch", "/tmp/allow"]);
    p.ok(&["up", "-d"]);
    let log = |p: &mut Project| {
        String::from_utf8_lossy(&p.ok(&["exec", "app", "--", "cat", "/tmp/log"]).stdout)
            .into_owned()
    };
    assert_eq!(log(&mut p), "first\nfirst\nsecond\n");
    // All done: a no-op `up` leaves them alone.
    p.ok(&["up", "-d"]);
    assert_eq!(log(&mut p), "first\nfirst\nsecond\n");
}

#[test]
fn r11_7_a_hanging_hook_times_out_and_is_stopped() {
    let mut p = Project::new(
        "wtsession-hooktime",
        &shell_service(
            "app",
            "exec sleep 1000",
            "hooks = { after_up = [\"echo hanging; sleep 600\"], timeout = \"2s\" }",
        ),
    );
    p.uses_docker = true;
    let started = Instant::now();
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{}",
        text(&out)
    );
    assert!(
        support::stderr(&out)
            .contains("hook `echo hanging; sleep 600` of service `app` did not finish within 2s"),
        "{}",
        text(&out)
    );
    let procs = processes(&mut p, "app");
    assert!(
        !procs.contains("600"),
        "the hook is still running:\n{procs}"
    );
}

#[test]
fn r11_7_ctrl_c_stops_a_running_hook() {
    let mut p = Project::new(
        "wtsession-hookint",
        &shell_service(
            "app",
            "exec sleep 1000",
            "hooks = { after_up = [\"echo hook-started; sleep 601\"] }",
        ),
    );
    let mut t = Term::spawn(&mut p, "up -d");
    t.wait_for("app | hook-started", 60);
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
    let procs = processes(&mut p, "app");
    assert!(
        !procs.contains("601"),
        "the hook is still running:\n{procs}"
    );
}

#[test]
fn r11_11_a_missing_bind_source_is_refused_unless_asked_to_create_it() {
    let mut p = Project::new(
        "wtsession-bind",
        &shell_service(
            "app",
            "exec sleep 1000",
            "volumes = [\"./confg/app.conf:/etc/app.conf\"]",
        ),
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        support::stderr(&out).contains("confg/app.conf`, which does not exist"),
        "{}",
        text(&out)
    );
    assert!(
        !p.path().join("confg").exists(),
        "nothing may be made on the host"
    );
    assert!(services(&mut p).is_empty(), "nothing may be created");

    p.ok(&["up", "-d", "--create-paths"]);
    // A name with an extension is a file: an empty one, not a folder the
    // app then fails on with "Is a directory" (issue 22).
    let made = p.path().join("confg/app.conf");
    assert!(made.is_file(), "{}", made.display());
    assert_eq!(std::fs::read(&made).unwrap(), b"");
    let out = p.run(&["exec", "app", "--", "test", "-f", "/etc/app.conf"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn r22_the_image_tells_whether_a_missing_source_is_a_file() {
    // `debian_version` has no extension (the name alone says "folder") and
    // `.inputrc` could be either; the image has both as files, and its word
    // wins. Its `apt` folder stays a folder. (The image must be on the
    // engine to be asked; without it, the names decide.)
    support::warm_images();
    let mut p = Project::new(
        "wtsession-inimage",
        &shell_service(
            "app",
            "exec sleep 1000",
            "volumes = [\"./etc/debian_version:/etc/debian_version\", \"./.profile:/etc/profile\", \"./apt:/etc/apt\"]",
        ),
    );
    let out = p.ok(&["up", "--dry-run", "--create-paths"]);
    let dry = text(&out);
    assert!(dry.contains("debian_version"), "{dry}");
    p.ok(&["up", "-d", "--create-paths"]);
    for file in ["etc/debian_version", ".profile"] {
        let made = p.path().join(file);
        assert!(made.is_file(), "{} should be an empty file", made.display());
        assert_eq!(std::fs::read(&made).unwrap(), b"");
    }
    assert!(p.path().join("apt").is_dir());
    let out = p.run(&[
        "exec",
        "app",
        "--",
        "sh",
        "-c",
        "test -f /etc/debian_version && test -f /etc/profile && test -d /etc/apt",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The containers made to ask the image are gone again: the project has
    // its one service container and nothing else.
    let all = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=devenv.project={}", p.name))
        .output()
        .unwrap();
    let ids = String::from_utf8_lossy(&all.stdout);
    assert_eq!(ids.lines().count(), 1, "{ids}");
}

#[test]
fn r31_folders_made_by_create_paths_are_writable_by_the_services_user() {
    use std::os::unix::fs::MetadataExt;
    // Root's folders go to the service's numeric user; anyone else's stay
    // theirs, so the service runs as them here.
    let me = std::fs::metadata(std::env::temp_dir()).unwrap();
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let (uid, gid) = if root {
        (1000, 1000)
    } else {
        (me.uid(), me.gid())
    };
    let mut p = Project::new(
        "wtsession-owner",
        &shell_service(
            "app",
            "exec sleep 1000",
            &format!("user = \"{uid}:{gid}\"\nvolumes = [\"./newdir/sub:/data\", \"./conf/php.ini:/etc/php.ini\"]"),
        ),
    );
    p.ok(&["up", "-d", "--create-paths"]);
    let out = p.run(&[
        "exec",
        "app",
        "--",
        "sh",
        "-c",
        "touch /data/x && echo ok >> /etc/php.ini",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for made in [
        "newdir",
        "newdir/sub",
        "newdir/sub/x",
        "conf",
        "conf/php.ini",
    ] {
        let meta = std::fs::metadata(p.path().join(made)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{made}");
    }
    assert_eq!(
        std::fs::read_to_string(p.path().join("conf/php.ini")).unwrap(),
        "ok\n"
    );
}

#[test]
fn r11_11_two_projects_racing_for_a_fixed_port_give_the_loser_a_friendly_error_and_no_leftovers() {
    let port = support::free_port();
    let toml = shell_service(
        "web",
        "exec sleep 1000",
        &format!("ports = [{{ port = \"{port}:80\", fixed = true }}]"),
    );
    let mut a = Project::new("wtsession-racea", &toml);
    let mut b = Project::new("wtsession-raceb", &toml);
    a.uses_docker = true;
    b.uses_docker = true;
    let (oa, ob) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.run(&["up", "-d"]));
        let tb = s.spawn(|| b.run(&["up", "-d"]));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let (winner, loser, out) = match (oa.status.success(), ob.status.success()) {
        (true, false) => (&mut a, &mut b, ob),
        (false, true) => (&mut b, &mut a, oa),
        _ => panic!("exactly one may win:\n{}\n{}", text(&oa), text(&ob)),
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        support::stderr(&out).contains(&format!("port {port} for service `web` is already taken")),
        "{}",
        text(&out)
    );
    assert!(services(loser).is_empty(), "the loser keeps no container");
    assert_eq!(services(winner), vec!["web".to_string()]);
}

#[test]
fn r11_11_changed_volume_driver_options_say_the_volume_must_be_recreated() {
    let file = |size: &str| {
        format!(
            "{}\n[volumes.data]\ndriver_opts = {{ type = \"tmpfs\", device = \"tmpfs\", o = \"size={size}\" }}\n",
            shell_service("app", "exec sleep 1000", "volumes = [\"data:/data\"]")
        )
    };
    let mut p = Project::new("wtsession-volopts", &file("10m"));
    let out = p.ok(&["up", "-d"]);
    assert!(
        !support::stderr(&out).contains("other driver options"),
        "{}",
        text(&out)
    );
    p.write(
        "dev.toml",
        &format!("[project]\nname = \"{}\"\n\n{}", p.name, file("20m")),
    );
    let out = p.ok(&["up", "-d"]);
    assert!(
        support::stderr(&out)
            .contains("volume `data` was created with other driver options than `dev.toml` gives"),
        "{}",
        text(&out)
    );
}

#[test]
fn r11_6_up_d_right_after_an_interrupted_down_brings_the_stack_up() {
    let mut p = Project::new(
        "wtsession-downint",
        // Takes a second to stop, so Ctrl-C lands while `down` waits for it.
        &shell_service(
            "app",
            "trap 'sleep 1; exit 0' TERM; echo up; while :; do sleep 0.1; done",
            "",
        ),
    );
    p.ok(&["up", "-d"]);
    let mut t = Term::spawn(&mut p, "down");
    t.wait_for("stopping", 20);
    t.ctrl_c();
    assert_eq!(t.exit_code(30), Some(130), "{}", t.screen());
    p.ok(&["up", "-d"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        states(&mut p),
        vec![("app".into(), "running".into())],
        "{}",
        t.screen()
    );
}

#[test]
fn r11_2_up_d_on_a_fresh_database_leaves_no_seed_spinner_behind() {
    let mut p = Project::new(
        "wtsession-seeds",
        "[services.db]\nuse = \"postgres\"\nports = []\n",
    );
    p.write(
        "seeds/001_note.sql",
        "CREATE TABLE note (t text); INSERT INTO note VALUES ('seeded');",
    );
    let mut t = Term::spawn(&mut p, "up -d");
    assert_eq!(t.exit_code(180), Some(0), "{}", t.screen());
    let screen = t.screen();
    assert!(
        screen.contains("✔ db applied seeds/001_note.sql"),
        "{screen}"
    );
    assert!(screen.contains(&format!("{} ready in", p.name)), "{screen}");
    let spinners = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    assert!(
        !screen.contains(&spinners[..]),
        "a spinner was left:\n{screen}"
    );
    assert_eq!(p.psql("SELECT t FROM note").0, "seeded");
}
