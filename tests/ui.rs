//! End-to-end: `devenv ui` (issue 27) on the example stack, driven in a
//! real headless Chromium through Debian's `chromedriver` — the services
//! appear with their states, a restart clicked on the page restarts the
//! container and the page shows it, a line a service prints shows within
//! 1 s, the timeline of the last `up` draws a bar per service, a database
//! snapshot taken from the page shows in its restore menu — and
//! requests without the token, or with a foreign `Host`/`Origin`, get 403.
//! The run saves a screenshot of the page to `target/tmp/ui-screenshot.png`
//! (`docs/ui.png` is a copy checked in by hand).

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use support::webdriver::Browser;
use support::{free_port, repo, Project, APP_IMAGE};

/// The example stack, every web page and the database published on free
/// ports (the page shows their links and connection details).
fn stack() -> String {
    format!(
        r#"[services.db]
use = "postgres"
ports = ["{db}:5432"]

[services.cache]
use = "redis"
ports = []

[services.mail]
use = "mailhog"
ports = ["{mail}:8025"]

[services.s3]
use = "minio"
env = {{ MINIO_DEFAULT_BUCKETS = "app" }}
ports = ["{s3}:9000", "{console}:9001"]

[services.app]
use = "laravel"
build = {{ context = "{repo}", dockerfile = "docker/app/Dockerfile", target = "dev" }}
image = "{APP_IMAGE}"
ports = ["{app_port}:8080"]
"#,
        repo = repo().display(),
        db = free_port(),
        mail = free_port(),
        s3 = free_port(),
        console = free_port(),
        app_port = free_port(),
    )
}

/// A running `devenv ui`, stopped with SIGTERM (as Ctrl-C) however the test
/// ends, so it removes its note in devenv's private folder.
struct Server {
    child: std::process::Child,
    url: String,
    port: u16,
    token: String,
}

impl Server {
    fn start(p: &Project) -> Server {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
            .args(["ui"])
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let port: u16 = url["http://127.0.0.1:".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let token = url.split("token=").nth(1).unwrap().to_string();
        assert_eq!(token.len(), 64, "{url}");
        Server {
            child,
            url,
            port,
            token,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 request to the page's server: its status.
fn status(port: u16, head: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{head}Content-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn started_at(container: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.StartedAt}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const SERVICES: [&str; 5] = ["db", "cache", "mail", "s3", "app"];

/// SIGTERM (an IDE's stop button) ends `devenv ui` with 143 and without
/// the "press Ctrl-C again to force" line: it has nothing to stop.
#[test]
fn sigterm_ends_the_page_quietly() {
    let p = Project::new("uiterm", "[services.web]\nimage = \"busybox\"\n");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
        .args(["ui"])
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open: a closed stdout would end devenv quietly with 0.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("http://127.0.0.1:"), "{first:?}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("Ctrl-C stops it"), "{err}");
    assert!(!err.contains("again to force"), "{err}");
    drop(stdout);
}

#[test]
fn the_page_shows_the_stack_live_and_acts_on_it() {
    support::warm_app_image();
    let mut p = Project::new("ui", &stack());
    support::with_image_lock(|| {
        p.ok(&["--progress", "plain", "up", "-d"]);
    });
    let server = Server::start(&p);
    let browser = Browser::start();
    browser.goto(&server.url);

    // The services appear, each with its state.
    let all_ready = browser.wait_for(
        30,
        "const rows = [...document.querySelectorAll('.svc')];
         return rows.length === arguments[0].length
             && arguments[0].every(s => rows.some(r => r.dataset.service === s
                 && r.dataset.state === 'running' && r.dataset.ready === 'true'));",
        json!([SERVICES]),
    );
    assert!(
        all_ready.is_some(),
        "the page did not show every service running and ready: {}",
        browser.eval(
            "return document.querySelector('#services').innerText",
            json!([])
        )
    );
    // The token left the address bar: the cookie carries it now.
    let address = browser.eval("return location.href", json!([]));
    assert!(!address.as_str().unwrap().contains("token"), "{address}");

    // The timeline of the `up` above: one bar per service.
    let bars = browser.wait_for(
        10,
        "return arguments[0].every(s =>
             document.querySelector(`.tl-bar[data-service=\"${s}\"]`)?.getBoundingClientRect().width > 0);",
        json!([SERVICES]),
    );
    assert!(
        bars.is_some(),
        "no bar per service: {}",
        browser.eval(
            "return document.querySelector('#timeline').innerHTML",
            json!([])
        )
    );

    // A line a service prints shows within a second.
    let mark = format!("ui-mark-{}", std::process::id());
    p.ok(&[
        "exec",
        "-T",
        "cache",
        "--",
        "sh",
        "-c",
        &format!("echo {mark} > /proc/1/fd/1"),
    ]);
    let printed = Instant::now();
    let shown = browser.wait_for(
        5,
        "return [...document.querySelectorAll('#logs .line[data-service=\"cache\"]')]
             .some(l => l.textContent.includes(arguments[0]));",
        json!([mark]),
    );
    let took = printed.elapsed();
    assert!(shown.is_some(), "the line never showed");
    assert!(
        took < Duration::from_secs(1),
        "the line took {took:?} to show"
    );
    eprintln!("a printed line showed on the page after {took:?}");

    // A restart clicked on the page restarts the container, and the page shows it.
    let container = format!("{}-cache-1", p.name);
    let before = started_at(&container);
    browser.click(".svc[data-service=\"cache\"] [data-action=\"restart\"]");
    let restarted = support::eventually(30, || {
        let now = started_at(&container);
        !now.is_empty() && now != before
    });
    assert!(
        restarted,
        "the container did not restart (started {before})"
    );
    let shown = browser.wait_for(
        30,
        "const r = document.querySelector('.svc[data-service=\"cache\"]');
         return r && r.querySelector('.restarts').textContent === '1'
             && r.dataset.state === 'running' && r.dataset.ready === 'true'
             && [...document.querySelectorAll('#logs .line.event')].some(l => l.textContent.includes('restarted'))
             && [...document.querySelectorAll('#activity li')].some(l => l.textContent.includes('restart: cache'));",
        json!([]),
    );
    assert!(
        shown.is_some(),
        "the page did not show the restart: {}",
        browser.eval("return document.querySelector('.svc[data-service=\"cache\"]').innerText + '\\n' + document.querySelector('#activity').innerText", json!([]))
    );

    // A database snapshot from the header's button, through the same
    // library steps as `devenv db snapshot`: the restore menu then offers it.
    browser.click("[data-global=\"snapshot\"]");
    let snapshot = browser.wait_for(
        60,
        "return [...document.querySelectorAll('#activity li')].some(l => /snapshot `ui-[0-9-]+` of `[^`]+` taken/.test(l.textContent))
             && document.querySelectorAll('#restore option').length === 2;",
        json!([]),
    );
    assert!(
        snapshot.is_some(),
        "no snapshot: {}",
        browser.eval(
            "return document.querySelector('#activity').innerText",
            json!([])
        )
    );

    let shot = browser.screenshot();
    assert!(shot.starts_with(b"\x89PNG"), "not a PNG");
    // Cargo's scratch folder for integration tests, inside whichever target
    // folder this build uses (CARGO_TARGET_DIR may put it outside the repo).
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshot.png");
    std::fs::write(&path, shot).unwrap();
    eprintln!("screenshot: {}", path.display());

    // Refused: no token, a foreign Host (DNS rebinding), a foreign Origin
    // (CSRF), an action by GET; allowed with the cookie and a loopback Host.
    let port = server.port;
    let token = &server.token;
    let cookie = format!("Cookie: devenv_ui_{port}={token}\r\n");
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    assert_eq!(
        status(port, &format!("GET /api/state HTTP/1.1\r\n{host}")),
        403
    );
    assert_eq!(
        status(
            port,
            &format!("GET /api/state HTTP/1.1\r\nHost: rebound.example:{port}\r\n{cookie}")
        ),
        403
    );
    assert_eq!(
        status(port, &format!("POST /api/do/restart HTTP/1.1\r\n{host}Origin: http://evil.example\r\nx-devenv-token: {token}\r\n")),
        403
    );
    assert_eq!(
        status(
            port,
            &format!("POST /api/do/restart HTTP/1.1\r\n{host}{cookie}")
        ),
        403
    );
    assert_eq!(
        status(
            port,
            &format!("GET /api/do/restart?token={token} HTTP/1.1\r\n{host}{cookie}")
        ),
        403
    );
    assert_eq!(
        status(port, &format!("GET /api/state HTTP/1.1\r\n{host}{cookie}")),
        200
    );
    drop(browser);
    drop(server);
}
