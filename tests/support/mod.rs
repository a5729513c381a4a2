//! Shared helpers for the integration tests: a project in a temp folder,
//! the real `devenv` binary run against it, and cleanup on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub mod webdriver;

/// A throwaway project folder with a `dev.toml`; its stack is torn down (with volumes) on drop.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub uses_docker: bool,
}

impl Project {
    /// `name` must be unique per test: tests run in parallel on one engine.
    /// The project is named `name` plus this run's [`run_suffix`], so two
    /// runs of the suite on one engine never meet.
    pub fn new(name: &str, toml: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let name = suffixed(name);
        let project = Project {
            dir,
            name: name.clone(),
            uses_docker: false,
        };
        project.write(
            "dev.toml",
            &format!("[project]\nname = \"{name}\"\n\n{toml}"),
        );
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("devenv").unwrap();
        c.current_dir(self.dir.path()).env("NO_COLOR", "1");
        c
    }

    /// Runs devenv with `args`; returns the output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs devenv and insists on exit 0, showing its output otherwise.
    pub fn ok(&mut self, args: &[&str]) -> Output {
        self.uses_docker = true;
        let out = self.run(args);
        assert!(
            out.status.success(),
            "devenv {args:?} failed:\n{}",
            text(&out)
        );
        out
    }

    /// `psql -U app -d app -tAc QUERY` in the `db` service: its output, trimmed, and whether it succeeded.
    pub fn psql(&self, query: &str) -> (String, bool) {
        let out = self.run(&[
            "exec", "db", "--", "psql", "-U", "app", "-d", "app", "-tAc", query,
        ]);
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            out.status.success(),
        )
    }

    /// `ps --json`, parsed.
    pub fn ps(&mut self) -> Vec<serde_json::Value> {
        let out = self.ok(&["ps", "--json"]);
        serde_json::from_slice(&out.stdout).expect("ps --json prints JSON")
    }

    /// Container id per service.
    pub fn ids(&mut self) -> Vec<(String, String)> {
        self.ps()
            .iter()
            .map(|s| {
                (
                    s["service"].as_str().unwrap().to_string(),
                    s["container"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if self.uses_docker {
            let name = self.name.clone();
            let _ = self.run(&["-p", &name, "down", "-v"]);
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails (never skips) when no engine answers: CI must not pass without Docker.
pub fn require_docker() {
    let out = Command::cargo_bin("devenv")
        .unwrap()
        .args(["ps"])
        .current_dir(repo())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        !err.contains("cannot reach the Docker engine"),
        "these tests need a running Docker engine:\n{err}"
    );
}

/// The three-service stack of the foundation tests: PostgreSQL and Redis from
/// presets (official images, or local stand-ins offline) and a small web
/// service built from a fixture, with a `ready` chain.
pub fn three_services(pg_port: u16, web_port: u16) -> String {
    let web = repo().join("tests/fixtures/web");
    format!(
        r#"[services.db]
use = "postgres"
ports = ["{pg_port}:5432"]

[services.cache]
use = "redis"
ports = []

[services.web]
build = {{ context = "{}" }}
image = "devenv-e2e-web:latest"
ports = ["{web_port}:8080"]
depends_on = {{ db = "ready", cache = "ready" }}
ready = {{ http = {{ port = 8080, path = "/health" }} }}
"#,
        web.display()
    )
}

/// Builds the images every end-to-end test needs once, under a file lock, so
/// parallel tests do not all bootstrap and build the same images at once.
pub fn warm_images() {
    static WARM: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    WARM.get_or_init(warm_images_once);
}

/// Runs `build` holding one lock shared by every test binary, so they do
/// not build the same images at once (2 cores; each waits for the other).
pub fn with_image_lock(build: impl FnOnce()) {
    require_docker();
    let lock = std::fs::File::create(std::env::temp_dir().join("devenv-e2e-images.lock")).unwrap();
    lock.lock().unwrap();
    build();
}

fn warm_images_once() {
    sweep_leftovers();
    with_image_lock(warm_three_services);
}

/// `base` with this run's suffix (once): the name a test gives objects it
/// makes on the engine by hand, beside its project.
pub fn suffixed(base: &str) -> String {
    let suffix = run_suffix();
    if base.ends_with(&suffix) {
        base.to_string()
    } else {
        format!("{base}{suffix}")
    }
}

/// What this test process adds to every project name: `-t` and its pid.
pub fn run_suffix() -> String {
    format!("-t{}", std::process::id())
}

/// Takes down, volumes and all, what killed earlier runs of the suite left
/// on the engine: projects whose name ends in a run suffix whose process
/// is gone, made in a temp folder. Nothing else is touched: not another
/// running suite's projects, not anything named otherwise.
fn sweep_leftovers() {
    let ours = run_suffix();
    let temp = std::env::temp_dir().canonicalize().unwrap();
    let out = Command::cargo_bin("devenv")
        .unwrap()
        .args(["ls", "--json"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "devenv ls --json: {}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for row in rows {
        let project = row["project"].as_str().unwrap_or_default();
        let Some((_, pid)) = project.rsplit_once("-t") else {
            continue;
        };
        let dead = pid
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        let in_temp = row["folder"]
            .as_str()
            .is_some_and(|f| std::path::Path::new(f).starts_with(&temp));
        if dead && in_temp && !project.ends_with(&ours) {
            eprintln!("sweeping `{project}`, left by a killed run of the suite");
            let out = Command::cargo_bin("devenv")
                .unwrap()
                .args(["-p", project, "down", "-v"])
                .current_dir(&temp)
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "sweeping {project}: {}", text(&out));
        }
    }
}

fn warm_three_services() {
    let mut p = Project::new(
        "e2ewarm",
        &three_services(0, 0)
            .replace("ports = [\"0:5432\"]", "ports = []")
            .replace("ports = [\"0:8080\"]", "ports = []"),
    );
    p.ok(&["--progress", "plain", "up", "-d"]);
    p.ok(&["down", "-v"]);
}

/// The example app's image (docker/app/Dockerfile, target `dev`), as the
/// `devenv test` end-to-end tests use it.
pub const APP_IMAGE: &str = "devenv-testrun-app:dev";

/// Builds the app image once per test binary (again where docker/app
/// changed), under the file lock shared with other test binaries, after the
/// images every end-to-end test needs.
pub fn warm_app_image() {
    static WARM: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    WARM.get_or_init(|| {
        warm_images();
        with_image_lock(|| {
            let mut p = Project::new(
                "trwarm",
                &format!(
                    "[services.app]\nbuild = {{ context = \"{}\", dockerfile = \"docker/app/Dockerfile\", target = \"dev\" }}\nimage = \"{APP_IMAGE}\"\n",
                    repo().display()
                ),
            );
            // `--build`: a cached image made from an older docker/app would
            // test yesterday's image; the engine's layer cache keeps an
            // unchanged one quick.
            p.ok(&["--progress", "plain", "up", "-d", "--build", "--no-hooks"]);
            p.ok(&["down"]);
        })
    });
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` ports nothing listens on, all different: each listener is held until
/// all are picked (one `free_port` after another can get the same port back).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A plain HTTP/1.0 GET against the loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Copies a folder tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Polls `check` every 100 ms until it holds or `secs` pass; says whether it held.
pub fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A background devenv (a `watch`) that is stopped however the test ends:
/// a panicking test must not leave a watcher syncing into the next run's
/// containers of the same project.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A test's dice, no crate needed: xorshift, seeded from `var` when set
/// (to replay a failing run) or from the clock; the seed is printed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("random delays: {var}={seed} replays them");
        Rng(seed | 1)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `n` random delays below `max_ms` (`DEVENV_TEST_SEED` replays them).
pub fn random_delays(n: usize, max_ms: u64) -> Vec<std::time::Duration> {
    let mut rng = Rng::seeded("DEVENV_TEST_SEED");
    (0..n)
        .map(|_| std::time::Duration::from_millis(rng.below(max_ms)))
        .collect()
}

/// Starts devenv with `args` in `dir`, kills it (SIGKILL, by its PID)
/// after `delay`, and reaps it.
pub fn kill_after(dir: &Path, args: &[&str], delay: std::time::Duration) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

/// PostgreSQL, Redis and the app, publishing nothing (tests share one
/// engine), with `[test]` running the app at `app_dir`.
pub fn app_stack(app_dir: &Path, test_extra: &str) -> String {
    format!(
        r#"[services.db]
use = "postgres"
ports = []

[services.cache]
use = "redis"
ports = []

[services.app]
build = {{ context = "{repo}", dockerfile = "docker/app/Dockerfile", target = "dev" }}
image = "{APP_IMAGE}"
env = {{ APP_KEY = "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", DB_HOST = "db", DB_DATABASE = "app", DB_USERNAME = "app", DB_PASSWORD = "secret", REDIS_HOST = "cache" }}
depends_on = {{ db = "ready", cache = "ready" }}

[test]
source = "{app}"
env = {{ APP_ENV = "testing", CACHE_DRIVER = "array", QUEUE_CONNECTION = "sync", MAIL_MAILER = "array", SESSION_DRIVER = "array" }}
{test_extra}
"#,
        repo = repo().display(),
        app = app_dir.display(),
    )
}

/// git in `dir`, with an author and `main` as the first branch's name.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

/// The branch the app's database (`app` in the `db` service) belongs to,
/// as a database per branch labels it on the server; empty when unlabelled.
pub fn db_branch(p: &Project) -> String {
    let (label, ok) = p.psql(
        "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = 'app'",
    );
    assert!(ok, "the app's database answers");
    label
        .strip_prefix("devenv branch: ")
        .unwrap_or_default()
        .to_string()
}

/// Holds `project`'s lock (the one devenv's commands take, in its private
/// folder) until dropped, as a `db snapshot` in another terminal would.
pub fn hold_project_lock(project: &str) -> std::fs::File {
    let path = devenv::scratch::private_dir()
        .unwrap()
        .join(format!("{project}.lock"));
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    file.lock().unwrap();
    file
}

/// A devenv command in the background whose stderr the test reads while
/// it runs; killed (by its PID) if the test ends first.
pub struct Background {
    child: KillOnDrop,
    err: tempfile::NamedTempFile,
}

impl Background {
    pub fn spawn(p: &Project, args: &[&str]) -> Background {
        let err = tempfile::NamedTempFile::new().unwrap();
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
            .args(args)
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap();
        Background {
            child: KillOnDrop(child),
            err,
        }
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.err.path()).unwrap_or_default()
    }

    /// Waits until its stderr shows `text`; fails with what it shows otherwise.
    pub fn wait_for(&self, text: &str, secs: u64) {
        assert!(
            eventually(secs, || self.stderr().contains(text)),
            "stderr never showed {text:?}:\n{}",
            self.stderr()
        );
    }

    /// Its exit status once it ends, and all it wrote to stderr.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.0.wait().unwrap();
        (status, self.stderr())
    }
}
