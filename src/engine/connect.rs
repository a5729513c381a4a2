//! Finding and reaching the Docker engine, as the docker CLI does: which
//! one is [`resolve`]'s job; the transports are bollard's (a Unix socket,
//! plain HTTP, TLS through rustls) and, for `ssh://`, [`ssh`]'s.
//!
//! What goes wrong here is named before bollard is asked: a certificate
//! file that is missing or holds no PEM block is reported with its path and
//! the variable to set, because bollard's client-certificate hook drops its
//! own errors and the engine then only says "bad certificate". Failures on
//! the wire (refused, TLS handshake, ssh login) are sorted by their cause
//! into a message naming the endpoint and a help line saying what to set.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;

mod resolve;
mod ssh;

use resolve::is_tcp;
pub use resolve::resolve;

/// Where the engine is expected, and why that one was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376`, `ssh://user@host`, …
    pub host: String,
    /// Human words for where `host` came from, used in errors.
    pub source: String,
    /// The client certificate and CA when the engine is reached over TLS.
    pub tls: Option<TlsFiles>,
}

/// A folder holding `ca.pem`, `cert.pem` and `key.pem`, as the docker CLI
/// names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub dir: PathBuf,
    /// Where the folder came from, and so what to change: `DOCKER_CERT_PATH`, …
    pub source: String,
}

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// How long the first contact may take (an ssh login included) before a
/// host that drops packets is reported, rather than bollard's 2 minutes.
const FIRST_CONTACT: Duration = Duration::from_secs(20);

impl Endpoint {
    /// An endpoint without TLS.
    pub fn new(host: impl Into<String>, source: impl Into<String>) -> Endpoint {
        Endpoint {
            host: host.into(),
            source: source.into(),
            tls: None,
        }
    }

    /// True when the engine runs on this machine (a Unix socket or named
    /// pipe, or a TCP or ssh host that is a loopback address), so that a port
    /// it publishes is a port of this machine. Elsewhere a port can only be
    /// checked through the engine.
    pub fn is_local(&self) -> bool {
        let host = self.host.as_str();
        let Some((scheme, rest)) = host.split_once("://") else {
            // A bare path is a socket.
            return host.starts_with('/');
        };
        match scheme {
            "unix" | "npipe" => true,
            "tcp" | "http" | "https" | "ssh" => is_loopback(&host_name(rest)),
            _ => false,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` (from {})", self.host, self.source)
    }
}

/// The host name of `user@host:port/path` (IPv6 brackets removed).
fn host_name(authority: &str) -> String {
    let authority = authority.split('/').next().unwrap_or("");
    let after_user = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(rest) = after_user.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    after_user.split(':').next().unwrap_or("").to_string()
}

fn is_loopback(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A context named by `DOCKER_CONTEXT` or `currentContext` that does not
/// exist: the docker CLI refuses it too, rather than quietly using another
/// engine than the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("Docker context `{name}` (from {from}) does not exist")]
#[diagnostic(
    code(devenv::engine::context),
    help("`docker context ls` lists the contexts; name one of them, or unset DOCKER_CONTEXT to use DOCKER_HOST or the default socket")
)]
pub struct MissingContext {
    pub name: String,
    pub from: String,
}

/// Why devenv could not talk to the engine.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConnectError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    MissingContext(#[from] MissingContext),

    #[error("cannot reach the Docker engine at {endpoint}")]
    #[diagnostic(code(devenv::engine::unreachable))]
    Unreachable {
        endpoint: Endpoint,
        /// The innermost cause only: the client's wrappers around it
        /// ("client error (Connect)" twice over) tell a person nothing.
        #[source]
        source: Cause,
        #[help]
        help: String,
    },

    #[error("the Docker engine at {endpoint} did not answer within {}s", FIRST_CONTACT.as_secs())]
    #[diagnostic(code(devenv::engine::unreachable))]
    TimedOut {
        endpoint: Endpoint,
        #[help]
        help: String,
    },

    #[error("TLS certificate file `{}` for the Docker engine at {endpoint} {problem}", path.display())]
    #[diagnostic(code(devenv::engine::tls))]
    CertFile {
        endpoint: Endpoint,
        path: PathBuf,
        problem: String,
        #[help]
        help: String,
    },

    #[error("the TLS handshake with the Docker engine at {endpoint} failed: {reason}")]
    #[diagnostic(code(devenv::engine::tls))]
    Tls {
        endpoint: Endpoint,
        reason: String,
        #[help]
        help: String,
    },

    #[error("cannot log in over ssh to the Docker engine at {endpoint}: {reason}")]
    #[diagnostic(code(devenv::engine::ssh))]
    Ssh {
        endpoint: Endpoint,
        reason: String,
        #[help]
        help: String,
    },

    #[error("the Docker host `{host}` (from {from}) is not supported: {reason}")]
    #[diagnostic(code(devenv::engine::host))]
    Unsupported {
        host: String,
        from: String,
        reason: String,
        #[help]
        help: String,
    },
}

/// Checks the TLS files as far as can be done without the engine: there,
/// readable, and holding what their names promise.
fn check_tls_files(endpoint: &Endpoint, tls: &TlsFiles) -> Result<(), ConnectError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let setting = if tls.source.starts_with("context") {
        "update the context's certificates (`docker context update --docker ca=…,cert=…,key=…`)"
    } else {
        "point DOCKER_CERT_PATH at the folder holding ca.pem, cert.pem and key.pem"
    };
    for (file, what) in [
        ("ca.pem", "the CA that signed the engine's certificate"),
        ("cert.pem", "devenv's client certificate"),
        ("key.pem", "the client certificate's private key"),
    ] {
        let path = tls.dir.join(file);
        let help = format!(
            "`{file}` is {what}; the folder `{}` comes from {}: {setting}",
            tls.dir.display(),
            tls.source,
        );
        let fail = |problem: String| ConnectError::CertFile {
            endpoint: endpoint.clone(),
            path: path.clone(),
            problem,
            help: help.clone(),
        };
        let bytes = std::fs::read(&path).map_err(|e| {
            fail(match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist".into(),
                _ => format!("cannot be read: {e}"),
            })
        })?;
        let ok = if file == "key.pem" {
            PrivateKeyDer::from_pem_slice(&bytes).map(drop)
        } else {
            CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .and_then(|certs| {
                    if certs.is_empty() {
                        Err(rustls_pki_types::pem::Error::NoItemsFound)
                    } else {
                        Ok(())
                    }
                })
        };
        ok.map_err(|e| {
            fail(match e {
                rustls_pki_types::pem::Error::NoItemsFound if file == "key.pem" => {
                    "holds no PEM private key".into()
                }
                rustls_pki_types::pem::Error::NoItemsFound => "holds no PEM certificate".into(),
                e => format!("is not valid PEM: {e}"),
            })
        })?;
    }
    Ok(())
}

/// A bollard client for `endpoint`, having agreed on an API version with
/// the engine (old engines refuse newer paths).
pub async fn docker(endpoint: &Endpoint) -> Result<Docker, ConnectError> {
    let host = endpoint.host.as_str();
    let version = bollard::API_DEFAULT_VERSION;
    let unreachable = |source| classify(endpoint, source);
    let docker = if let Some(tls) = &endpoint.tls {
        check_tls_files(endpoint, tls)?;
        Docker::connect_with_ssl(
            host,
            &tls.dir.join("key.pem"),
            &tls.dir.join("cert.pem"),
            &tls.dir.join("ca.pem"),
            120,
            version,
        )
    } else if host.starts_with("unix://") || host.starts_with('/') {
        Docker::connect_with_unix(host, 120, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, 120, version)
    } else if host.starts_with("ssh://") {
        return over_ssh(endpoint).await;
    } else {
        Docker::connect_with_local(host, 120, version)
    }
    .map_err(unreachable)?;
    match tokio::time::timeout(FIRST_CONTACT, docker.negotiate_version()).await {
        Ok(answer) => answer.map_err(unreachable),
        Err(_) => Err(ConnectError::TimedOut {
            endpoint: endpoint.clone(),
            help: help_unreachable(endpoint),
        }),
    }
}

/// [`docker`] for `ssh://` hosts. A failed login only ends the connection,
/// so what `ssh` wrote to stderr is the message.
async fn over_ssh(endpoint: &Endpoint) -> Result<Docker, ConnectError> {
    let target = ssh::parse(&endpoint.host).map_err(|reason| ConnectError::Unsupported {
        host: endpoint.host.clone(),
        from: endpoint.source.clone(),
        reason,
        help: "write it as `ssh://user@host` or `ssh://user@host:port`".into(),
    })?;
    let (docker, log) = ssh::docker(target, 120).map_err(|source| classify(endpoint, source))?;
    let answer = match tokio::time::timeout(FIRST_CONTACT, docker.negotiate_version()).await {
        Ok(answer) => answer,
        Err(_) => {
            return Err(ConnectError::TimedOut {
                endpoint: endpoint.clone(),
                help: help_unreachable(endpoint),
            })
        }
    };
    let source = match answer {
        Ok(docker) => return Ok(docker),
        Err(source) => source,
    };
    // stderr is read beside the connection: give it a moment to arrive.
    let mut said = log.lines();
    for _ in 0..20 {
        if !said.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        said = log.lines();
    }
    if said.is_empty() {
        return Err(classify(endpoint, source));
    }
    let reason = said.join("; ");
    let help = if reason.contains("docker") && reason.contains("not found") {
        "`ssh` logged in, but there is no `docker` there: install the docker CLI on that host, on the PATH of non-interactive logins (devenv runs `docker system dial-stdio` there)".into()
    } else if reason.contains("Docker daemon") {
        "`ssh` logged in, but the docker CLI there cannot reach its engine: start Docker on that host, or let the ssh user use its socket".into()
    } else {
        "devenv runs `ssh -o BatchMode=yes [-l user] [-p port] host docker system dial-stdio` (OpenSSH from PATH): `ssh` must log in without a prompt (a key in ssh-agent or ~/.ssh/config; a host key already known), and `docker` must be on the remote PATH".into()
    };
    Err(ConnectError::Ssh {
        endpoint: endpoint.clone(),
        reason,
        help,
    })
}

/// Every message in an error's chain, outermost first.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

/// Sorts a failed first contact by its cause.
fn classify(endpoint: &Endpoint, source: bollard::errors::Error) -> ConnectError {
    let messages = chain(&source);
    let all = messages.join(": ");
    let innermost = messages.last().cloned().unwrap_or_default();
    if let Some(tls) = &endpoint.tls {
        let dir = tls.dir.display();
        let help = if all.contains("UnknownIssuer") || all.contains("BadSignature") {
            Some(format!(
                "the engine's certificate is not signed by `{dir}/ca.pem` (from {}): put the CA that signed it there",
                tls.source
            ))
        } else if all.contains("NotValidForName") {
            Some(format!(
                "the engine's certificate does not name `{}`: connect by a name its subjectAltName lists, or reissue it with this one",
                host_name(endpoint.host.split_once("://").map_or("", |(_, r)| r))
            ))
        } else if all.contains("Expired") || all.contains("NotValidYet") {
            Some(
                "a certificate is outside its validity period: check the clocks, or reissue it"
                    .into(),
            )
        } else if all.contains("received fatal alert") {
            Some(format!(
                "the engine refused devenv's client certificate: `{dir}/cert.pem` and `key.pem` (from {}) must be a pair signed by a CA the engine trusts (`dockerd --tlscacert`)",
                tls.source
            ))
        } else if let bollard::errors::Error::CertPathError { path }
        | bollard::errors::Error::CertParseError { path } = &source
        {
            Some(format!(
                "check `{}`; the folder comes from {}",
                path.display(),
                tls.source
            ))
        } else {
            None
        };
        if let Some(help) = help {
            return ConnectError::Tls {
                endpoint: endpoint.clone(),
                reason: innermost,
                help,
            };
        }
    }
    ConnectError::Unreachable {
        endpoint: endpoint.clone(),
        source: Cause(innermost),
        help: help_unreachable(endpoint),
    }
}

/// Why a connection failed, in the words of its innermost error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Cause(pub String);

fn help_unreachable(endpoint: &Endpoint) -> String {
    let host = endpoint.host.as_str();
    if host.starts_with("ssh://") {
        "check that `ssh` logs in to that host without a prompt and that its Docker engine runs"
            .into()
    } else if endpoint.tls.is_some() {
        "check that the engine listens there with TLS (`dockerd --tlsverify -H tcp://0.0.0.0:2376`) and that this machine may reach it".into()
    } else if is_tcp(host) || host.starts_with("http://") {
        "check that the engine listens at that address and that this machine may reach it; an engine on TLS (port 2376) needs DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH".into()
    } else {
        "start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST or DOCKER_CONTEXT at a running engine; if it runs, check that you may use its socket".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r14_locality_of_endpoints() {
        let local = |h: &str| Endpoint::new(h, "test").is_local();
        assert!(local("unix:///var/run/docker.sock"));
        assert!(local("/var/run/docker.sock"));
        assert!(local("tcp://127.0.0.1:2376"));
        assert!(local("tcp://localhost:2375"));
        assert!(local("tcp://[::1]:2376"));
        assert!(local("ssh://me@localhost"));
        assert!(!local("tcp://10.0.0.5:2376"));
        assert!(!local("ssh://me@build-box"));
        assert!(!local("ssh://me@192.168.1.9"));
        assert!(!local("https://engine.example:2376"));
    }

    #[test]
    fn r14_missing_and_bad_certificate_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint {
            tls: Some(TlsFiles {
                dir: dir.path().to_path_buf(),
                source: "DOCKER_CERT_PATH".into(),
            }),
            ..Endpoint::new("tcp://127.0.0.1:2376", "DOCKER_HOST")
        };
        let tls = endpoint.tls.as_ref().unwrap();
        let e = check_tls_files(&endpoint, tls).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ca.pem` for the Docker engine at `tcp://127.0.0.1:2376` (from DOCKER_HOST) does not exist"), "{text}");
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let e = check_tls_files(&endpoint, tls).unwrap_err();
        assert!(e.to_string().ends_with("holds no PEM certificate"), "{e}");
        std::fs::write(
            dir.path().join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = check_tls_files(&endpoint, tls).unwrap_err();
        assert!(e.to_string().contains("is not valid PEM"), "{e}");
    }
}
