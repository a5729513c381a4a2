//! Readiness, probed natively from devenv rather than by waiting on Docker
//! healthcheck intervals. Like kube-runtime's `wait`: a condition checked in
//! one loop, [`await_ready`], with a backoff that starts in the tens of
//! milliseconds so a service is seen ready almost as soon as it is.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::model::Probe;
use crate::engine::{ContainerStatus, Engine};

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

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks `probe` once; `Err` says why it is not ready yet.
pub async fn check(engine: &Engine, probe: &Probe, target: &Target) -> Result<(), String> {
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
        ) => {
            let mut conn = pg_connect(&host, port, user, password, database).await?;
            sqlx::query("SELECT 1")
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        (
            Probe::Redis {
                username, password, ..
            },
            Some((host, port)),
        ) => {
            let client = redis::Client::open(format!("redis://{host}:{port}/"))
                .map_err(|e| e.to_string())?;
            let ping = async {
                let mut con = client.get_multiplexed_async_connection().await?;
                // AUTH by hand: credentials in a URL would need escaping.
                if let Some(password) = password {
                    let mut auth = redis::cmd("AUTH");
                    auth.arg(username.as_deref()).arg(password);
                    auth.query_async::<()>(&mut con).await?;
                }
                redis::cmd("PING").query_async::<String>(&mut con).await
            };
            let pong = tokio::time::timeout(ATTEMPT_TIMEOUT, ping)
                .await
                .map_err(|_| "PING timed out".to_string())?
                .map_err(|e| e.to_string())?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(format!("PING answered `{pong}`"))
            }
        }
        (Probe::Http { path, status, .. }, Some((host, port))) => {
            let code = tokio::time::timeout(ATTEMPT_TIMEOUT, http_status(&host, port, path))
                .await
                .map_err(|_| format!("GET {path} timed out"))??;
            if (status.0..=status.1).contains(&code) {
                Ok(())
            } else {
                Err(format!("GET {path} answered {code}"))
            }
        }
        (Probe::Tcp { .. }, Some((host, port))) => {
            tokio::time::timeout(ATTEMPT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
                .await
                .map_err(|_| format!("connecting to port {port} timed out"))?
                .map(drop)
                .map_err(|e| format!("port {port}: {e}"))
        }
        (Probe::Exec { command }, _) => exec_ok(engine, target, command.clone()).await,
        (Probe::Docker, _) => {
            // Health is read from the engine each time; the project name is not needed for it.
            let status = engine
                .inspect_container(&target.container, "")
                .await
                .map_err(|e| e.to_string())?;
            match status.health.as_deref() {
                Some("healthy") => Ok(()),
                Some(h) => Err(format!("docker health is `{h}`")),
                None => Err("the image has no HEALTHCHECK; use another probe".into()),
            }
        }
        // Neither the network address nor a published port reaches it (Docker
        // Desktop without `ports`): ask from inside the container instead.
        (Probe::Postgres { .. } | Probe::Redis { .. }, None) => {
            let cmd = probe
                .in_container_command()
                .expect("postgres and redis probes have one");
            exec_ok(engine, target, cmd).await
        }
        (Probe::Http { .. } | Probe::Tcp { .. }, None) => {
            Err("the container is not reachable from here; publish the port in `ports`".into())
        }
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
    tokio::time::timeout(ATTEMPT_TIMEOUT, opts.connect())
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| e.to_string())
}

async fn exec_ok(engine: &Engine, target: &Target, command: Vec<String>) -> Result<(), String> {
    let mut out = String::new();
    let code = engine
        .exec(&target.container, command.clone(), Vec::new(), None, |s| {
            out.push_str(s)
        })
        .await
        .map_err(|e| e.to_string())?;
    if code == 0 {
        Ok(())
    } else {
        Err(format!(
            "`{}` exited with {code}: {}",
            command.join(" "),
            out.trim()
        ))
    }
}

/// A minimal HTTP/1.0 GET: devenv only needs the status code.
async fn http_status(host: &str, port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("port {port}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: devenv\r\nConnection: close\r\n\r\n"
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
#[derive(Debug, Clone)]
pub enum NotReady {
    /// The container stopped; its exit code.
    Exited(i64),
    /// The timeout passed; the probe's last complaint.
    TimedOut(String),
}

/// Probes until ready, the container exits, or `timeout` passes; returns how long it took.
pub async fn await_ready(
    engine: &Engine,
    project: &str,
    container: &str,
    probe: Option<&Probe>,
    timeout: Duration,
) -> Result<Duration, NotReady> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(15);
    let mut target: Option<Target> = None;
    loop {
        let status = engine
            .inspect_container(container, project)
            .await
            .map_err(|e| NotReady::TimedOut(e.to_string()))?;
        if !status.running {
            return Err(NotReady::Exited(status.exit_code.unwrap_or(-1)));
        }
        let Some(probe) = probe else {
            return Ok(start.elapsed());
        };
        // The address is known once the container runs; it does not change after.
        let t = target.get_or_insert_with(|| Target::from_status(container, &status));
        let last = match check(engine, probe, t).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => e,
        };
        if start.elapsed() >= timeout {
            return Err(NotReady::TimedOut(last));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
