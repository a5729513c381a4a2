//! Several checkouts of one project at once (issue 15): two clones of this
//! repository are two projects with their own names and host ports, `up`
//! and `devenv test` run in both at the same time, `devenv test` publishes
//! no host port, a taken host port moves (unless fixed) and stays where it
//! moved, the engine's own refusal moves it where the engine is not local,
//! and `-p NAME` reaches a project from a folder without a stack file.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use support::{repo, stderr, text, warm_images, Project};

fn devenv_in(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("devenv")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

/// A clone of this repository in `<temp>/<folder>`; its stack (whatever
/// name it goes by) is taken down with its volumes on drop, from the clone.
struct Checkout {
    dir: tempfile::TempDir,
    folder: String,
}

impl Checkout {
    fn new(folder: &str) -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(repo())
            .arg(dir.path().join(folder))
            .status()
            .unwrap();
        assert!(status.success(), "git clone of the repository failed");
        Checkout {
            dir,
            folder: folder.to_string(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join(&self.folder)
    }

    fn devenv(&self, args: &[&str]) -> Output {
        devenv_in(&self.path(), args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.devenv(args);
        assert!(
            out.status.success(),
            "devenv {args:?} in {} failed:\n{}",
            self.folder,
            text(&out)
        );
        out
    }

    fn ps(&self) -> Vec<serde_json::Value> {
        serde_json::from_slice(&self.ok(&["ps", "--json"]).stdout).expect("ps --json is JSON")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        self.devenv(&["down", "-v"]);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The project name from `up`'s last line, `NAME ready in 1.23s`.
fn project_of_up(out: &Output) -> String {
    let text = stdout(out);
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains(" ready in "), "{}", text);
    last.split_whitespace().next().unwrap().to_string()
}

/// Every host port in `ps --json`'s `ports` (`"127.0.0.1:18080->8080/tcp"`).
fn host_ports(ps: &[serde_json::Value]) -> BTreeSet<u16> {
    ps.iter()
        .flat_map(|s| s["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| {
            p.as_str()?
                .split("->")
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The project of each container `ps --json` lists, from its name `P-svc-1`.
fn projects_of(ps: &[serde_json::Value]) -> BTreeSet<String> {
    ps.iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap();
            let service = s["service"].as_str().unwrap();
            name.strip_suffix(&format!("-{service}-1"))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}

#[test]
fn two_clones_run_up_and_test_at_once_as_two_projects_with_their_own_ports() {
    warm_images();
    let a = Checkout::new("checkouts-a");
    let b = Checkout::new("checkouts-b");

    // `devenv test` in a fresh clone brings up what the tests need and
    // publishes no host port at all.
    let first = a.ok(&["--progress", "plain", "test"]);
    assert!(
        stdout(&first).contains(" 0 failures, 0 errors"),
        "{}",
        text(&first)
    );
    let ps = a.ps();
    assert!(!ps.is_empty(), "the test's services stay up");
    assert_eq!(
        host_ports(&ps),
        BTreeSet::new(),
        "`devenv test` published host ports: {ps:#?}"
    );

    // Both `up -d` at the same moment: both ready, distinct names and ports.
    let (ua, ub) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.devenv(&["--progress", "plain", "up", "-d"]));
        let tb = s.spawn(|| b.devenv(&["--progress", "plain", "up", "-d"]));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(ua.status.success(), "up in a:\n{}", text(&ua));
    assert!(ub.status.success(), "up in b:\n{}", text(&ub));
    let (name_a, name_b) = (project_of_up(&ua), project_of_up(&ub));
    assert_ne!(name_a, name_b, "two checkouts, two projects");
    // A name other than the file's is said by the command that took it.
    let said_a = stderr(&first) + &stderr(&ua);
    for (out, said, name) in [(&ua, said_a, &name_a), (&ub, stderr(&ub), &name_b)] {
        assert!(
            stdout(out).contains("http://localhost:"),
            "each prints where its app is:\n{}",
            text(out)
        );
        let notice = format!("this one is project `{name}`");
        assert_eq!(
            said.matches(&notice).count(),
            usize::from(name != "shop"),
            "{said}"
        );
    }

    // `devenv test` in both at the same time: both pass.
    let (ta, tb) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.devenv(&["--progress", "plain", "test"]));
        let tb = s.spawn(|| b.devenv(&["--progress", "plain", "test"]));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    for (out, which) in [(&ta, "a"), (&tb, "b")] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "test in {which}:\n{}",
            text(out)
        );
        assert!(
            stdout(out).contains(" 0 failures, 0 errors"),
            "{}",
            text(out)
        );
    }

    // Each `ps` shows its own project, all running and ready, on ports of its own.
    let (psa, psb) = (a.ps(), b.ps());
    for (ps, name) in [(&psa, &name_a), (&psb, &name_b)] {
        assert_eq!(projects_of(ps), BTreeSet::from([name.clone()]), "{ps:#?}");
        assert_eq!(ps.len(), 5, "{ps:#?}");
        assert!(
            ps.iter()
                .all(|s| s["state"] == "running" && s["ready"] == true),
            "{ps:#?}"
        );
    }
    let (pa, pb) = (host_ports(&psa), host_ports(&psb));
    assert!(pa.len() >= 5 && pb.len() >= 5, "{pa:?} {pb:?}");
    assert!(pa.is_disjoint(&pb), "shared host ports: {pa:?} {pb:?}");
    // The app answers on the published port `ps` shows (after its
    // router name, issue 28).
    let app_port = |ps: &[serde_json::Value]| -> u16 {
        let app = ps.iter().find(|s| s["service"] == "app").unwrap();
        let url = app["urls"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["url"].as_str())
            .find(|u| u.starts_with("http://localhost:"))
            .unwrap();
        url.rsplit(':').next().unwrap().parse().unwrap()
    };
    for ps in [&psa, &psb] {
        assert_eq!(support::http_get(app_port(ps), "/health").0, 200);
    }

    // Every other command in a checkout finds its own project too.
    for c in [&a, &b] {
        let pong = c.ok(&["exec", "cache", "--", "redis-cli", "ping"]);
        assert_eq!(stdout(&pong).trim(), "PONG");
        let logs = c.ok(&["logs", "cache"]);
        assert!(
            stdout(&logs).contains("Ready to accept connections"),
            "{}",
            text(&logs)
        );
        c.ok(&["db", "snapshots"]);
    }

    // A no-op `up` keeps every container and port.
    let again = a.ok(&["up", "-d"]);
    assert_eq!(project_of_up(&again), name_a);
    assert_eq!(host_ports(&a.ps()), pa);

    // `down -v` in one removes only its own project.
    a.ok(&["down", "-v"]);
    assert_eq!(a.ps(), Vec::<serde_json::Value>::new());
    let still = b.ps();
    assert_eq!(still.len(), 5, "{still:#?}");
    assert!(still.iter().all(|s| s["state"] == "running"), "{still:#?}");
    assert_eq!(host_ports(&still), pb);
    b.ok(&["down", "-v"]);
    assert_eq!(b.ps(), Vec::<serde_json::Value>::new());
}

/// A Redis service publishing `port`, in a stack named `name`.
fn cache_stack(port: &str) -> String {
    format!("[services.cache]\nuse = \"redis\"\nports = [{port}]\n")
}

#[test]
fn a_taken_host_port_moves_says_where_and_stays_there_unless_fixed() {
    warm_images();
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let mut p = Project::new(
        "checkouts-moves",
        &cache_stack(&format!("\"{taken}:6379\"")),
    );
    let out = p.ok(&["--progress", "plain", "up", "-d"]);
    let ports = host_ports(&p.ps());
    assert_eq!(ports.len(), 1, "{ports:?}");
    let moved = *ports.first().unwrap();
    assert_ne!(moved, taken);
    assert!(
        stderr(&out).contains(&format!(
            "host port {taken} of `cache` is taken: publishing its port 6379 on {moved} instead"
        )),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains(&format!("localhost:{moved}")),
        "{}",
        text(&out)
    );

    // Recreated (its config changed) with the declared port free again: it keeps its port.
    drop(holder);
    p.write(
        "dev.toml",
        &format!(
            "[project]\nname = \"{}\"\n\n{}env = {{ CHANGED = \"1\" }}\n",
            p.name,
            cache_stack(&format!("\"{taken}:6379\""))
        ),
    );
    let out = p.ok(&["--progress", "plain", "up", "-d"]);
    assert!(stdout(&out).contains("recreated"), "{}", text(&out));
    assert_eq!(host_ports(&p.ps()), BTreeSet::from([moved]));
    assert!(!stderr(&out).contains("is taken"), "{}", text(&out));

    // A dry run of the next recreate says where the port stays.
    let name = p.name.clone();
    let stack_with = |port: u16, changed: &str| {
        format!(
            "[project]\nname = \"{name}\"\n\n{}env = {{ CHANGED = \"{changed}\" }}\n",
            cache_stack(&format!("\"{port}:6379\""))
        )
    };
    p.write("dev.toml", &stack_with(taken, "2"));
    let out = p.ok(&["up", "--dry-run"]);
    assert!(
        stdout(&out).contains(&format!(
            "host port 127.0.0.1:{moved} (kept where it moved from {taken}) for `cache`"
        )),
        "{}",
        text(&out)
    );
    // A port the person declares anew is the one they get.
    let wanted = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.write("dev.toml", &stack_with(wanted, "2"));
    let out = p.ok(&["--progress", "plain", "up", "-d"]);
    assert!(stdout(&out).contains("recreated"), "{}", text(&out));
    assert_eq!(host_ports(&p.ps()), BTreeSet::from([wanted]));

    // Fixed: the declared port or a refusal, and nothing created.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let mut f = Project::new(
        "checkouts-fixed",
        &cache_stack(&format!("{{ port = \"{taken}:6379\", fixed = true }}")),
    );
    f.uses_docker = true;
    let out = f.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "port {taken} for service `cache` is already taken"
        )),
        "{}",
        text(&out)
    );
    assert!(f.ps().is_empty());
}

/// Serves the engine's Unix socket on a TCP port of this machine's own
/// non-loopback address, which devenv takes for another machine: it cannot
/// learn from a local bind whether a host port is free there. Stops
/// accepting when dropped.
struct TcpEngine {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The address this machine's traffic leaves from (no packet is sent: a UDP
/// socket's connect only picks the route), else the first of `hostname -I`.
fn own_address() -> std::net::IpAddr {
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("203.0.113.1:9").and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    routed.unwrap_or_else(|| {
        let out = std::process::Command::new("hostname")
            .arg("-I")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find_map(|w| w.parse::<std::net::Ipv4Addr>().ok())
            .map(std::net::IpAddr::V4)
            .expect("this machine has a non-loopback IPv4 address")
    })
}

impl TcpEngine {
    fn start() -> TcpEngine {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind((own_address(), 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let Ok(unix) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock")
                else {
                    continue;
                };
                let (mut tcp_r, mut unix_w) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut tcp_r, &mut unix_w);
                    let _ = unix_w.shutdown(std::net::Shutdown::Write);
                });
                let (mut unix_r, mut tcp_w) = (unix, tcp);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut unix_r, &mut tcp_w);
                    let _ = tcp_w.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        TcpEngine { addr, stop }
    }
}

impl Drop for TcpEngine {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

#[test]
fn on_an_engine_elsewhere_the_engines_refusal_moves_the_port() {
    warm_images();
    let engine = TcpEngine::start();
    let host = format!("tcp://{}", engine.addr);
    // Held by a process, not a container: only the engine's refusal tells.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let mut p = Project::new(
        "checkouts-remote",
        &cache_stack(&format!("\"{taken}:6379\"")),
    );
    p.uses_docker = true;
    let out = p
        .cmd()
        .env("DOCKER_HOST", &host)
        .args(["--progress", "plain", "up", "-d"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ps: Vec<serde_json::Value> = serde_json::from_slice(
        &p.cmd()
            .env("DOCKER_HOST", &host)
            .args(["ps", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ports = host_ports(&ps);
    assert_eq!(ports.len(), 1, "{ps:#?}");
    let moved = *ports.first().unwrap();
    assert_ne!(moved, taken);
    assert!(
        stderr(&out).contains(&format!(
            "host port {taken} of `cache` is taken: publishing its port 6379 on {moved} instead"
        )),
        "{}",
        text(&out)
    );
    // Said after the container was made: the engine's refusal, not a local bind, told.
    let err = stderr(&out);
    assert!(
        err.find("cache creating") < err.find(&format!("host port {taken}")),
        "{err}"
    );
    drop(holder);
}

#[test]
fn p_name_reaches_a_project_from_a_folder_without_a_stack_file() {
    warm_images();
    let mut p = Project::new("checkouts-pflag", &cache_stack(""));
    let pflag = p.name.clone();
    p.ok(&["up", "-d"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let args = [&["-p", &pflag][..], args].concat();
        let out = devenv_in(elsewhere.path(), &args);
        assert!(out.status.success(), "{args:?}:\n{}", text(&out));
        out
    };
    let ps: Vec<serde_json::Value> =
        serde_json::from_slice(&run(&["ps", "--json"]).stdout).unwrap();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert_eq!(ps[0]["service"], "cache");
    assert_eq!(ps[0]["state"], "running");
    let logs = run(&["logs", "cache"]);
    assert!(
        stdout(&logs).contains("Ready to accept connections"),
        "{}",
        text(&logs)
    );
    run(&["stop"]);
    let ps: Vec<serde_json::Value> =
        serde_json::from_slice(&run(&["ps", "--json"]).stdout).unwrap();
    assert_eq!(ps[0]["state"], "exited", "{ps:#?}");
    run(&["down"]);
    // No container of that name is left to reach.
    let out = devenv_in(elsewhere.path(), &["-p", &pflag, "ps"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("no devenv project `{pflag}`")),
        "{}",
        text(&out)
    );
}

#[test]
fn two_projects_racing_for_one_port_both_come_up_on_distinct_ports() {
    warm_images();
    let port = support::free_port();
    let toml = cache_stack(&format!("\"{port}:6379\""));
    let mut a = Project::new("checkouts-racea", &toml);
    let mut b = Project::new("checkouts-raceb", &toml);
    a.uses_docker = true;
    b.uses_docker = true;
    let (oa, ob) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.run(&["up", "-d"]));
        let tb = s.spawn(|| b.run(&["up", "-d"]));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(oa.status.success(), "{}", text(&oa));
    assert!(ob.status.success(), "{}", text(&ob));
    let (pa, pb) = (host_ports(&a.ps()), host_ports(&b.ps()));
    assert_eq!(pa.len() + pb.len(), 2, "{pa:?} {pb:?}");
    assert!(pa.is_disjoint(&pb), "{pa:?} {pb:?}");
    assert!(pa.contains(&port) || pb.contains(&port), "{pa:?} {pb:?}");
}

#[test]
fn a_stopped_service_whose_port_was_taken_meanwhile_comes_back_on_a_free_one() {
    warm_images();
    let port = support::free_port();
    let toml = cache_stack(&format!("\"{port}:6379\""));
    let mut a = Project::new("checkouts-stoppeda", &toml);
    let mut b = Project::new("checkouts-stoppedb", &toml);
    a.ok(&["up", "-d"]);
    a.ok(&["exec", "cache", "--", "redis-cli", "set", "kept", "yes"]);
    a.ok(&["exec", "cache", "--", "redis-cli", "save"]);
    a.ok(&["stop"]);
    // While `a` is stopped, `b` takes the port.
    b.ok(&["up", "-d"]);
    assert_eq!(host_ports(&b.ps()), BTreeSet::from([port]));
    let out = a.ok(&["--progress", "plain", "up", "-d"]);
    assert!(stdout(&out).contains("recreated"), "{}", text(&out));
    let moved = host_ports(&a.ps());
    assert_eq!(moved.len(), 1);
    assert!(!moved.contains(&port), "{moved:?}");
    assert!(
        stderr(&out).contains(&format!("host port {port} of `cache` is taken")),
        "{}",
        text(&out)
    );
    // Same volume, same data.
    let got = a.ok(&["exec", "cache", "--", "redis-cli", "get", "kept"]);
    assert_eq!(stdout(&got).trim(), "yes");
}
