//! `ssh://[user@]host[:port]` engines, as the docker CLI reaches them: each
//! connection is the system's `ssh` running `docker system dial-stdio` on
//! the host, and HTTP goes over its stdin and stdout. bollard's own `ssh`
//! feature does the same through background `ssh -M` masters kept alive
//! forever (`ControlPersist=yes`); one whose start is abandoned when devenv
//! exits stays behind with its control folder gone, and a port in the URL
//! reaches `ssh` as part of the host name. Here each `ssh` is a plain child
//! killed with its connection, and the port is passed as `-p`.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where `ssh` logs in: `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Splits an `ssh://` URL; the error says what is wrong with it.
pub fn parse(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ssh://")
        .ok_or("it does not start with `ssh://`")?;
    let authority = rest.split('/').next().unwrap_or("");
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((user, h)) => (Some(user.to_string()).filter(|u| !u.is_empty()), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address misses its `]`")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("it names no host".into());
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{p}` is not a port"))
        })
        .transpose()?;
    Ok(Target {
        user,
        host: host.to_string(),
        port,
    })
}

impl Target {
    fn command(&self) -> Command {
        let mut ssh = Command::new("ssh");
        // Nobody can answer a prompt: devenv draws on the terminal, or has none.
        ssh.args(["-o", "BatchMode=yes"]);
        if let Some(user) = &self.user {
            ssh.arg("-l").arg(user);
        }
        if let Some(port) = self.port {
            ssh.arg("-p").arg(port.to_string());
        }
        ssh.arg("--")
            .arg(&self.host)
            .args(["docker", "system", "dial-stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        ssh
    }
}

/// What the `ssh` processes wrote to stderr, latest last: the only account
/// of a failed login, since the connection just ends.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().expect("the ssh log lock is never poisoned");
        if lines.len() == 20 {
            lines.remove(0);
        }
        lines.push(line);
    }

    /// The lines that say what went wrong (not ssh's notes on known hosts).
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("the ssh log lock is never poisoned")
            .iter()
            .filter(|l| !l.starts_with("Warning: Permanently added"))
            .cloned()
            .collect()
    }
}

#[derive(Clone)]
struct Connector {
    target: Arc<Target>,
    log: Log,
}

impl Connector {
    fn spawn(&self) -> std::io::Result<TokioIo<Stream>> {
        let mut child = self.target.command().spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.push(line);
            }
        });
        Ok(TokioIo::new(Stream {
            _child: child,
            stdin,
            stdout,
        }))
    }
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let spawned = self.spawn();
        Box::pin(async move { spawned })
    }
}

/// One connection: an `ssh` child, killed when the connection is dropped.
struct Stream {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// A bollard client whose connections are `ssh` children, and their log.
pub fn docker(target: Target, timeout: u64) -> Result<(Docker, Log), bollard::errors::Error> {
    let log = Log::default();
    let connector = Connector {
        target: Arc::new(target),
        log: log.clone(),
    };
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    let transport = move |req: BollardRequest| {
        let client = Arc::clone(&client);
        async move {
            client
                .request(req)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    // The host in request URLs is not used to connect; the connector knows where.
    let docker = Docker::connect_with_custom_transport(
        transport,
        Some("ssh://docker"),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )?;
    Ok((docker, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_split_into_what_ssh_takes() {
        let t = |user: Option<&str>, host: &str, port| Target {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        };
        assert_eq!(parse("ssh://me@box"), Ok(t(Some("me"), "box", None)));
        assert_eq!(parse("ssh://box"), Ok(t(None, "box", None)));
        assert_eq!(
            parse("ssh://me@box:2222"),
            Ok(t(Some("me"), "box", Some(2222)))
        );
        assert_eq!(
            parse("ssh://me@[::1]:22/"),
            Ok(t(Some("me"), "::1", Some(22)))
        );
        assert!(parse("ssh://").is_err());
        assert!(parse("ssh://me@box:http")
            .unwrap_err()
            .contains("`http` is not a port"));
        assert!(parse("ssh://me@box:0").is_err());
    }

    #[test]
    fn ssh_runs_dial_stdio_in_batch_mode_with_the_port_as_an_option() {
        let target = parse("ssh://me@box:2222").unwrap();
        let cmd = target.command();
        let args: Vec<_> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-o",
                "BatchMode=yes",
                "-l",
                "me",
                "-p",
                "2222",
                "--",
                "box",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
    }
}
