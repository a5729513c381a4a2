//! Readiness, probed natively from devenv rather than by waiting on Docker
//! healthcheck intervals. Like kube-runtime's `wait`: a condition checked in
//! one loop, [`await_ready`], with a backoff that starts in the tens of
//! milliseconds so a service is seen ready almost as soon as it is.
//!
//! Every attempt is bounded: a network probe by [`ATTEMPT_TIMEOUT`] (1 s for
//! PostgreSQL; a port that accepts but never answers during start-up must
//! not stall the loop, and each attempt that overran doubles the next's, up
//! to 2 s, so a slow but working endpoint still passes),
//! an exec probe by what is left of the deadline. An exec probe that
//! overruns is killed in the container, so no probe outlives its `up`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::model::Probe;
use crate::config::Secret;
use crate::engine::{ContainerStatus, Engine, EngineError};

/// Where a probe reaches its container.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: String,
    /// The container's address on the project network, if the host can reach it.
    pub ip: Option<String>,
    /// Container port → host port published on the loopback.
    pub published: HashMap<u16, u16>,
}

impl Target {
    pub fn from_status(container: &str, status: &ContainerStatus) -> Target {
        // Only Linux routes the host to container addresses (not Docker Desktop).
        let ip = if cfg!(target_os = "linux") {
            status.ip.clone()
        } else {
            None
        };
        Target {
            container: container.to_string(),
            ip,
            published: status.published.clone(),
        }
    }

    /// `host:port` for a container port, or `None` when only exec can reach it.
    pub fn addr(&self, port: u16) -> Option<(String, u16)> {
        match (&self.ip, self.published.get(&port)) {
            (Some(ip), _) => Some((ip.clone(), port)),
            (None, Some(host)) => Some(("127.0.0.1".to_string(), *host)),
            (None, None) => None,
        }
    }
}

/// The longest one network probe attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);
/// A PostgreSQL attempt also derives its SCRAM key in the client, which an
/// unoptimised build does slowly; it is bounded all the same.
const PG_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest wait between attempts: a service is seen ready at most this
/// late (a cold PostgreSQL becomes ready at any moment, not in steps).
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// What one check outside [`await_ready`] may take (`ps`), whatever its kind.
const CHECK_BUDGET: Duration = Duration::from_secs(2);
/// Connecting for hooks and test databases, where the server is known ready.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why one attempt did not find the service ready.
#[derive(Debug)]
enum Miss {
    /// Not ready yet; the probe's own words.
    NotYet(String),
    /// The engine failed to run the check: reported as such, not as not-ready.
    Engine(EngineError),
    /// A network attempt ran out of its time: the next one gets longer.
    NoAnswer(String),
}

impl From<String> for Miss {
    fn from(why: String) -> Self {
        Miss::NotYet(why)
    }
}

/// Checks `probe` once, within a couple of seconds; `Err` says why it is not ready.
pub async fn check(engine: &Engine, probe: &Probe, target: &Target) -> Result<(), String> {
    match bounded(engine, probe, target, CHECK_BUDGET).await {
        Ok(()) => Ok(()),
        Err(Miss::NotYet(why)) => Err(why),
        Err(Miss::Engine(e)) => Err(e.to_string()),
        Err(Miss::NoAnswer(why)) => Err(why),
    }
}

/// One attempt within `budget`. A network attempt is simply dropped when it
/// overruns; an exec attempt enforces the budget itself, so that it can
/// still kill the command it started.
async fn bounded(
    engine: &Engine,
    probe: &Probe,
    target: &Target,
    budget: Duration,
) -> Result<(), Miss> {
    if !is_network(probe) {
        return attempt(engine, probe, target, budget).await;
    }
    tokio::time::timeout(budget, attempt(engine, probe, target, budget))
        .await
        .unwrap_or_else(|_| Err(Miss::NoAnswer(format!("no answer within {}", secs(budget)))))
}

/// A duration as people read it in a message: `0.2s`, `6.0s`.
fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Whether the probe goes over the network (else it runs in or asks the engine).
fn is_network(probe: &Probe) -> bool {
    !matches!(probe, Probe::Exec { .. } | Probe::Docker)
}

/// How long one attempt of a network probe may take.
fn attempt_timeout(probe: &Probe) -> Duration {
    match probe {
        Probe::Postgres { .. } => PG_ATTEMPT_TIMEOUT,
        _ => ATTEMPT_TIMEOUT,
    }
}

/// One attempt; exec probes are stopped once `budget` passes.
async fn attempt(
    engine: &Engine,
    probe: &Probe,
    target: &Target,
    budget: Duration,
) -> Result<(), Miss> {
    let port = match probe {
        Probe::Postgres { port, .. }
        | Probe::Redis { port, .. }
        | Probe::Http { port, .. }
        | Probe::Tcp { port } => Some(*port),
        Probe::Exec { .. } | Probe::Docker => None,
    };
    let addr = port.and_then(|p| target.addr(p));
    match (probe, addr) {
        (
            Probe::Postgres {
                user,
                password,
                database,
                ..
            },
            Some((host, port)),
        ) => postgres_ready(&host, port, user, password.expose(), database).await,
        (
            Probe::Redis {
                username, password, ..
            },
            Some((host, port)),
        ) => redis_ready(&host, port, username.as_deref(), password.as_ref()).await,
        (Probe::Http { path, status, .. }, Some((host, port))) => {
            let code = http_status(&host, port, path).await?;
            if (status.0..=status.1).contains(&code) {
                Ok(())
            } else {
                Err(format!("GET {path} answered {code}").into())
            }
        }
        (Probe::Tcp { .. }, Some((host, port))) => TcpStream::connect((host.as_str(), port))
            .await
            .map(drop)
            .map_err(|e| format!("port {port}: {e}").into()),
        (Probe::Exec { command }, _) => exec_ok(engine, target, command, Vec::new(), budget).await,
        (Probe::Docker, _) => docker_healthy(engine, target, budget).await,
        // Neither the network address nor a published port reaches it (Docker
        // Desktop without `ports`): ask from inside the container instead.
        (Probe::Postgres { .. } | Probe::Redis { .. }, None) => {
            let cmd = probe
                .in_container_command()
                .expect("postgres and redis probes have one");
            // A password goes through the exec's env, never its argv.
            let env = probe
                .in_container_env()
                .into_iter()
                .map(|(name, value)| format!("{name}={}", value.expose()))
                .collect();
            exec_ok(engine, target, &cmd, env, budget).await
        }
        (Probe::Http { .. } | Probe::Tcp { .. }, None) => Err(
            "the container is not reachable from here; publish the port in `ports`"
                .to_string()
                .into(),
        ),
    }
}

/// PostgreSQL answers `SELECT 1` at `host:port`.
async fn postgres_ready(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<(), Miss> {
    let mut conn = pg_connect(host, port, user, password, database).await?;
    sqlx::query("SELECT 1")
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Redis at `host:port` answers `PING` with `PONG`, after `AUTH` when a
/// password is given.
async fn redis_ready(
    host: &str,
    port: u16,
    username: Option<&str>,
    password: Option<&Secret>,
) -> Result<(), Miss> {
    let client =
        redis::Client::open(format!("redis://{host}:{port}/")).map_err(|e| e.to_string())?;
    let ping = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        // AUTH by hand: credentials in a URL would need escaping.
        if let Some(password) = password {
            let mut auth = redis::cmd("AUTH");
            auth.arg(username).arg(password.expose());
            auth.query_async::<()>(&mut con).await?;
        }
        redis::cmd("PING").query_async::<String>(&mut con).await
    };
    let pong = ping.await.map_err(|e| e.to_string())?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(format!("PING answered `{pong}`").into())
    }
}

/// The engine says the container's own HEALTHCHECK passes, within `budget`.
async fn docker_healthy(engine: &Engine, target: &Target, budget: Duration) -> Result<(), Miss> {
    // Health is read from the engine each time; the project name is not needed for it.
    let status = tokio::time::timeout(budget, engine.inspect_container(&target.container, ""))
        .await
        .map_err(|_| Miss::NotYet(format!("no answer within {}", secs(budget))))?
        .map_err(Miss::Engine)?;
    match status.health.as_deref() {
        Some("healthy") => Ok(()),
        Some(h) => Err(format!("docker health is `{h}`").into()),
        None => Err("the image has no HEALTHCHECK; use another probe"
            .to_string()
            .into()),
    }
}

/// Connects to PostgreSQL at `host:port`, giving up after a short timeout.
pub async fn pg_connect(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<sqlx::PgConnection, String> {
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host(host)
        .port(port)
        .username(user)
        .password(password)
        .database(database);
    tokio::time::timeout(CONNECT_TIMEOUT, opts.connect())
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| e.to_string())
}

/// The line the exec wrapper prints first: the probe's pid in the container.
const PID_MARK: &str = "devenv-probe-pid ";

/// Runs `command` in the container and wants exit code 0. The command runs
/// under `sh`, which prints its pid and then becomes the command, so that a
/// command still running when `budget` passes can be killed: the Docker API
/// has no call that stops an exec. An image without `sh` runs the command
/// bare (and an overrun one then finishes on its own).
async fn exec_ok(
    engine: &Engine,
    target: &Target,
    command: &[String],
    env: Vec<String>,
    budget: Duration,
) -> Result<(), Miss> {
    let start = Instant::now();
    let mut wrapped: Vec<String> = [
        "sh",
        "-c",
        "echo \"devenv-probe-pid $$\"; exec \"$@\"",
        "sh",
    ]
    .map(String::from)
    .to_vec();
    wrapped.extend_from_slice(command);
    let mut out = String::new();
    let (code, out) = match exec_within(engine, target, wrapped, env.clone(), budget, &mut out)
        .await
    {
        Ok(code)
            if (code == 126 || code == 127)
                && out.contains("\"sh\": executable file not found") =>
        {
            let left = budget.saturating_sub(start.elapsed());
            let mut bare = String::new();
            let code = exec_within(engine, target, command.to_vec(), env, left, &mut bare).await;
            (code, bare)
        }
        code => (code, out),
    };
    let shown = command.join(" ");
    match code {
        Ok(0) => Ok(()),
        Ok(code) => Err(Miss::NotYet(format!(
            "`{shown}` exited with {code}: {}",
            without_pid(&out).trim()
        ))),
        Err(Some(e)) => Err(Miss::Engine(e)),
        Err(None) => {
            if let Some(pid) = pid_of(&out) {
                // Best effort, briefly: the container may be gone already.
                let kill = vec!["sh".into(), "-c".into(), format!("kill -KILL {pid}")];
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    engine.exec(&target.container, kill, Vec::new(), None, |_| {}),
                )
                .await;
            }
            Err(Miss::NotYet(format!(
                "`{shown}` was still running after {} and was stopped",
                secs(budget)
            )))
        }
    }
}

/// An exec's exit code; `Err(None)` when `budget` passed first.
async fn exec_within(
    engine: &Engine,
    target: &Target,
    command: Vec<String>,
    env: Vec<String>,
    budget: Duration,
    out: &mut String,
) -> Result<i64, Option<EngineError>> {
    let run = engine.exec(&target.container, command, env, None, |s| out.push_str(s));
    match tokio::time::timeout(budget, run).await {
        Ok(result) => result.map_err(Some),
        Err(_) => Err(None),
    }
}

fn pid_of(out: &str) -> Option<u32> {
    let rest = &out[out.find(PID_MARK)? + PID_MARK.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn without_pid(out: &str) -> String {
    out.lines()
        .filter(|l| !l.starts_with(PID_MARK))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `User-Agent` of devenv's readiness requests: an image can keep them
/// out of its access log by it (docker/app's Nginx does).
pub const USER_AGENT: &str = "devenv-probe";

/// A minimal HTTP/1.0 GET: devenv only needs the status code.
async fn http_status(host: &str, port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("port {port}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256];
    let mut len = 0;
    while len < 16 {
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        len += n;
    }
    parse_status(&buf[..len]).ok_or_else(|| "not an HTTP answer".to_string())
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Why a service never became ready.
#[derive(Debug)]
pub enum NotReady {
    /// The container stopped; its exit code.
    Exited(i64),
    /// The timeout passed; the probe's last complaint.
    TimedOut(String),
    /// The engine failed while devenv asked it about the container.
    Engine(EngineError),
}

/// Probes until ready, the container exits, or `timeout` passes; returns how
/// long it took. The deadline holds even in the middle of an attempt.
pub async fn await_ready(
    engine: &Engine,
    project: &str,
    container: &str,
    probe: Option<&Probe>,
    timeout: Duration,
) -> Result<Duration, NotReady> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(15);
    let mut target: Option<Target> = None;
    let mut last = Miss::NotYet("no attempt finished in time".into());
    // What the service last answered: reported rather than the time-out of
    // an attempt the deadline cut short (`WRONGPASS`, not "no answer").
    let mut answered: Option<String> = None;
    let mut limit = probe.map_or(ATTEMPT_TIMEOUT, attempt_timeout);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let status =
            match tokio::time::timeout(left, engine.inspect_container(container, project)).await {
                Ok(status) => status.map_err(NotReady::Engine)?,
                Err(_) => return Err(give_up(last, answered)),
            };
        if !status.running {
            return Err(NotReady::Exited(status.exit_code.unwrap_or(-1)));
        }
        let Some(probe) = probe else {
            return Ok(start.elapsed());
        };
        // Read again each time: a container the engine restarted runs at a
        // new address (probing the old one would time out while it answers).
        let t = &*target.insert(Target::from_status(container, &status));
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let budget = if is_network(probe) {
            limit.min(left)
        } else {
            left
        };
        last = match bounded(engine, probe, t, budget).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(miss) => miss,
        };
        if let Miss::NotYet(why) = &last {
            answered = Some(why.clone());
        }
        // A stalled connection is retried soon; an endpoint that is merely
        // slow (a cold framework's first request) gets longer each time.
        if matches!(last, Miss::NoAnswer(_)) {
            limit = (limit * 2).min(CHECK_BUDGET);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(give_up(last, answered));
        }
        tokio::time::sleep_until((tokio::time::Instant::now() + delay).min(deadline)).await;
        delay = (delay * 3 / 2).min(MAX_BACKOFF);
    }
}

/// The failure to report once the deadline passed: an engine error as such;
/// a last attempt that got no answer in time yields to what the service
/// answered before, if it ever did.
fn give_up(last: Miss, answered: Option<String>) -> NotReady {
    match last {
        Miss::NotYet(why) => NotReady::TimedOut(why),
        Miss::NoAnswer(why) => NotReady::TimedOut(answered.unwrap_or(why)),
        Miss::Engine(e) => NotReady::Engine(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_short_last_attempt_reports_what_the_service_answered_before() {
        let why = |n: NotReady| match n {
            NotReady::TimedOut(w) => w,
            other => panic!("{other:?}"),
        };
        let wrongpass = Some("WRONGPASS invalid password".to_string());
        assert_eq!(
            why(give_up(
                Miss::NoAnswer("no answer within 0.0s".into()),
                wrongpass.clone()
            )),
            "WRONGPASS invalid password"
        );
        assert_eq!(
            why(give_up(
                Miss::NoAnswer("no answer within 0.2s".into()),
                None
            )),
            "no answer within 0.2s"
        );
        assert_eq!(
            why(give_up(Miss::NotYet("refused".into()), wrongpass)),
            "refused"
        );
    }

    #[test]
    fn the_exec_wrapper_pid_is_read_and_kept_out_of_messages() {
        let out = "devenv-probe-pid 42\npg_isready: no response\n";
        assert_eq!(pid_of(out), Some(42));
        assert_eq!(without_pid(out), "pg_isready: no response");
        assert_eq!(pid_of("no wrapper here"), None);
    }

    #[test]
    fn attempts_are_bounded_per_kind() {
        let pg = Probe::Postgres {
            port: 5432,
            user: "app".into(),
            password: "pw".into(),
            database: "app".into(),
        };
        assert_eq!(attempt_timeout(&pg), PG_ATTEMPT_TIMEOUT);
        assert_eq!(attempt_timeout(&Probe::Tcp { port: 1 }), ATTEMPT_TIMEOUT);
        assert!(!is_network(&Probe::Exec {
            command: vec!["true".into()]
        }));
        assert_eq!(secs(Duration::from_millis(5_960)), "6.0s");
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn targets_prefer_the_network_address_then_the_published_port() {
        let t = Target {
            container: "c".into(),
            ip: None,
            published: HashMap::from([(5432, 15432)]),
        };
        assert_eq!(t.addr(5432), Some(("127.0.0.1".into(), 15432)));
        assert_eq!(t.addr(6379), None);
        let t = Target {
            ip: Some("172.18.0.2".into()),
            ..t
        };
        assert_eq!(t.addr(6379), Some(("172.18.0.2".into(), 6379)));
    }

    #[tokio::test]
    async fn http_status_reads_a_real_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 418 I'm a teapot\r\n\r\n")
                .await
                .unwrap();
        });
        assert_eq!(http_status("127.0.0.1", port, "/health").await, Ok(418));
    }
}
