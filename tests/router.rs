//! HTTPS names through the shared router on the real engine (issue 28): two
//! checkouts of one project answer at once on their own
//! `https://NAME.localhost` with a certificate that verifies against
//! devenv's CA, plain HTTP answers too, a WebSocket upgrade passes, `down`
//! takes a project's names (and, for the last one, the router) away and
//! nothing else, and a devenv killed mid-`up` leaves a router the next
//! `up` makes consistent. The CA key never shows in any output.
//!
//! The backend is the e2e web image (busybox httpd) with a CGI script
//! mounted in: it says which checkout answered, the `Host` and
//! `X-Forwarded-Proto` it got and its `APP_URL`, and answers a request
//! carrying `Upgrade: websocket` with `101 Switching Protocols`, which only
//! reaches it when the router passes the upgrade headers on.
//!
//! The router is shared by design: other tests' projects may be routed by
//! it at the same time, so these tests check their own names and the
//! router's own health, and check the router is gone only when no
//! container on the engine asks for a name any more.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use support::{suffixed, text, warm_images};

const CGI: &str = r#"#!/bin/sh
if [ "$HTTP_UPGRADE" = "websocket" ]; then
  printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
  exit 0
fi
printf 'Content-Type: text/plain\r\n\r\n%s %s %s %s\n' "$WHO" "$HTTP_HOST" "$HTTP_X_FORWARDED_PROTO" "$APP_URL"
"#;

/// A stack whose `web` answers on `https://PROJECT.localhost`.
fn stack(project: &str, who: &str) -> String {
    format!(
        r#"[project]
name = "{project}"

[services.web]
image = "devenv-e2e-web:latest"
env = {{ WHO = "{who}", APP_URL = "${{DEVENV_URL}}" }}
volumes = ["./srv:/srv"]
ports = []
hostname = "${{DEVENV_PROJECT}}"
web_port = 8080
ready = {{ http = {{ port = 8080, path = "/index.html" }} }}
"#
    )
}

/// A checkout in `<temp>/<folder>`, taken down on drop.
struct Checkout {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Checkout {
    fn new(folder: &str, project: &str, who: &str) -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(folder);
        std::fs::create_dir_all(path.join("srv/cgi-bin")).unwrap();
        std::fs::write(path.join("dev.toml"), stack(project, who)).unwrap();
        std::fs::write(path.join("srv/index.html"), "ok\n").unwrap();
        let cgi = path.join("srv/cgi-bin/who");
        std::fs::write(&cgi, CGI).unwrap();
        std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The container's busybox runs as root; the folders must be readable.
        for d in [path.join("srv"), path.join("srv/cgi-bin")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Checkout { _dir: dir, path }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::cargo_bin("devenv")
            .unwrap()
            .current_dir(&self.path)
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "devenv {args:?} failed:\n{}",
            text(&out)
        );
        out
    }

    /// The `https://…` URL `ps` gives `web`: host and port.
    fn https(&self) -> (String, u16) {
        let rows: serde_json::Value =
            serde_json::from_slice(&self.ok(&["ps", "--json"]).stdout).unwrap();
        let url = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["service"] == "web")
            .flat_map(|r| r["urls"].as_array().cloned().unwrap_or_default())
            .filter_map(|u| u["url"].as_str().map(str::to_string))
            .find(|u| u.starts_with("https://"))
            .unwrap_or_else(|| panic!("no https URL in `ps --json`: {rows}"));
        let rest = url.trim_start_matches("https://");
        match rest.split_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().unwrap()),
            None => (rest.to_string(), 443),
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        self.run(&["down"]);
    }
}

fn ca_path() -> String {
    let out = Command::cargo_bin("devenv")
        .unwrap()
        .args(["trust", "--path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `curl` through the router to `host` on `port` (HTTPS unless `http`),
/// checking the certificate against devenv's CA: status line and body.
fn curl(scheme: &str, host: &str, port: u16, extra: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert", &ca_path()])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("{scheme}://{host}:{port}/cgi-bin/who"))
        .output()
        .expect("curl is installed (scripts/test-deps.sh)");
    let body = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let status = body.lines().next().unwrap_or_default().to_string();
    let payload = body.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
    (
        format!("{status}{}", String::from_utf8_lossy(&out.stderr)),
        payload.trim().to_string(),
    )
}

fn docker(args: &[&str]) -> Output {
    std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap()
}

/// The router's host port for 80/tcp (HTTP).
fn router_http_port() -> u16 {
    let out = docker(&["port", "devenv-router", "80/tcp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no HTTP port on the router: {text}"))
}

fn router_conf() -> String {
    let out = docker(&[
        "exec",
        "devenv-router",
        "cat",
        "/etc/nginx/conf.d/default.conf",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn routed_anywhere() -> bool {
    let out = docker(&["ps", "-aq", "--filter", "label=devenv.route.host"]);
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn router_exists() -> bool {
    let out = docker(&["ps", "-aq", "--filter", "name=^devenv-router$"]);
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn ca_key_line() -> String {
    let key = Path::new(&ca_path()).with_file_name("rootCA-key.pem");
    std::fs::read_to_string(key)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn r28_two_checkouts_answer_on_their_own_https_names() {
    warm_images();
    // One project name in two folders: the second checkout goes by its
    // folder's name (the checkout naming rule), and so does its host name.
    let project = suffixed("rtshop");
    let feature = suffixed("rtfeat");
    let main = Checkout::new(&project, &project, "main");
    let second = Checkout::new(&feature, &project, "feature");
    let mut outputs = vec![main.ok(&["up", "-d"]), second.ok(&["up", "-d"])];

    let (host_a, port_a) = main.https();
    let (host_b, port_b) = second.https();
    assert_eq!(host_a, format!("{project}.localhost"));
    assert_eq!(
        host_b,
        format!("{feature}.localhost"),
        "the second checkout's own name"
    );
    assert_eq!(port_a, port_b, "one router");

    let (status, body) = curl("https", &host_a, port_a, &[]);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, format!("main {host_a} https https://{host_a}"));
    let (status, body) = curl("https", &host_b, port_b, &[]);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, format!("feature {host_b} https https://{host_b}"));

    // Plain HTTP answers as well (configured to serve, not to redirect).
    let http = router_http_port();
    let (status, body) = curl("http", &host_a, http, &[]);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(body.starts_with(&format!("main {host_a} http ")), "{body}");

    // A WebSocket handshake reaches the backend and its 101 comes back.
    let (status, _) = curl(
        "https",
        &host_b,
        port_b,
        &[
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ],
    );
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");

    // A name nobody serves gets no certificate.
    let (status, _) = curl("https", &suffixed("nobody"), port_a, &[]);
    assert!(!status.starts_with("HTTP/"), "{status}");

    outputs.push(main.ok(&["ps"]));
    outputs.push(main.ok(&["config"]));
    outputs.push(main.ok(&["describe"]));
    outputs.push(second.ok(&["logs", "--tail", "50"]));

    // `down` of one checkout takes its name away, and only its.
    outputs.push(main.ok(&["down"]));
    assert!(!router_conf().contains(&format!("server_name {host_a};")));
    let (status, body) = curl("https", &host_b, port_b, &[]);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(body.starts_with("feature "), "{body}");
    let rows: serde_json::Value =
        serde_json::from_slice(&second.ok(&["ps", "--json"]).stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "the other checkout is untouched: {rows}"
    );

    outputs.push(second.ok(&["down"]));
    // Another test's project may be served, or its `down` under way (its
    // containers gone, its sync still waiting for the router lock): wait
    // for the router to go, or for someone else to be served.
    assert!(
        support::eventually(30, || !router_exists() || routed_anywhere()),
        "the last `down` removes the router"
    );
    if router_exists() {
        let conf = router_conf();
        assert!(!conf.contains(&host_b), "{conf}");
    } else {
        let gone = || {
            let net = docker(&["network", "ls", "-q", "--filter", "name=^devenv-router$"]);
            String::from_utf8_lossy(&net.stdout).trim().is_empty() || routed_anywhere()
        };
        assert!(
            support::eventually(30, gone),
            "the router's network goes with it"
        );
    }

    let key = ca_key_line();
    for out in &outputs {
        assert!(
            !text(out).contains(&key),
            "the CA key was printed:\n{}",
            text(out)
        );
        assert!(!text(out).contains("PRIVATE KEY"), "{}", text(out));
    }
}

#[test]
fn r28_a_killed_up_leaves_a_router_the_next_up_makes_consistent() {
    warm_images();
    let project = suffixed("rtkill");
    let c = Checkout::new(&project, &project, "kill");
    for delay in support::random_delays(3, 1500) {
        support::kill_after(&c.path, &["up", "-d"], delay);
        c.ok(&["up", "-d"]);
        let (host, port) = c.https();
        let (status, body) = curl("https", &host, port, &[]);
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "after a kill at {delay:?}: {status}"
        );
        assert!(body.starts_with("kill "), "{body}");
        // The router is shared: another test's `up` may be writing its own
        // certificate into it at this moment (under the router lock, which
        // this check does not take), so its configuration is checked until
        // that write lands.
        let mut check = docker(&["exec", "devenv-router", "nginx", "-t"]);
        support::eventually(10, || {
            check = docker(&["exec", "devenv-router", "nginx", "-t"]);
            check.status.success()
        });
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let conf = router_conf();
        assert_eq!(
            conf.matches(&format!("server_name {host};")).count(),
            1,
            "{conf}"
        );
        c.ok(&["down"]);
        assert!(!router_conf().contains(&host), "down takes the name away");
    }
}
