//! Finding and reaching the Docker engine, as the docker CLI does:
//! `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`), then
//! `DOCKER_CONTEXT`, then the Docker config's `currentContext` (a context's
//! host and its TLS folder), then the default socket. The released bollard
//! reads none of the context files, so this does; the transports are
//! bollard's own (a Unix socket, plain HTTP, TLS through rustls, ssh).
//!
//! What goes wrong here is named before bollard is asked: a certificate
//! file that is missing or holds no PEM block is reported with its path and
//! the variable to set, because bollard's client-certificate hook drops its
//! own errors and the engine then only says "bad certificate". Failures on
//! the wire (refused, TLS handshake, ssh login) are sorted by their cause
//! into a message naming the endpoint and a help line saying what to set.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use sha2::{Digest, Sha256};

mod ssh;

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
        #[source]
        source: bollard::errors::Error,
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

/// The process environment and the Docker config folder, read once.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub tls_verify: Option<String>,
    /// `DOCKER_TLS`: TLS without checking the engine's certificate.
    pub tls_unverified: Option<String>,
    pub cert_path: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
}

impl Inputs {
    pub fn from_env() -> Inputs {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let config_dir = env("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".docker")));
        Inputs {
            docker_host: env("DOCKER_HOST"),
            docker_context: env("DOCKER_CONTEXT"),
            tls_verify: env("DOCKER_TLS_VERIFY"),
            tls_unverified: env("DOCKER_TLS"),
            cert_path: env("DOCKER_CERT_PATH").map(PathBuf::from),
            config_dir,
        }
    }
}

/// Resolves the endpoint from the process environment and the Docker config folder.
pub fn resolve() -> Result<Endpoint, ConnectError> {
    resolve_with(&Inputs::from_env())
}

pub fn resolve_with(inputs: &Inputs) -> Result<Endpoint, ConnectError> {
    let endpoint = pick(inputs)?;
    check_host(&endpoint)?;
    Ok(endpoint)
}

fn pick(inputs: &Inputs) -> Result<Endpoint, ConnectError> {
    if let Some(host) = &inputs.docker_host {
        let mut endpoint = Endpoint::new(host, "DOCKER_HOST");
        // The docker CLI: any non-empty DOCKER_TLS_VERIFY means verify.
        if inputs.tls_verify.is_some() && is_tcp(host) {
            endpoint.tls = Some(match (&inputs.cert_path, &inputs.config_dir) {
                (Some(dir), _) => TlsFiles {
                    dir: dir.clone(),
                    source: "DOCKER_CERT_PATH".into(),
                },
                (None, Some(dir)) => TlsFiles {
                    dir: dir.clone(),
                    source: "the Docker config folder (DOCKER_CERT_PATH is not set)".into(),
                },
                (None, None) => {
                    return Err(ConnectError::Unsupported {
                        host: host.clone(),
                        from: "DOCKER_HOST".into(),
                        reason: "DOCKER_TLS_VERIFY is set but there is no folder to read the certificates from".into(),
                        help: "set DOCKER_CERT_PATH to the folder holding ca.pem, cert.pem and key.pem".into(),
                    })
                }
            });
        } else if inputs.tls_unverified.is_some() && is_tcp(host) {
            return Err(ConnectError::Unsupported {
                host: host.clone(),
                from: "DOCKER_HOST".into(),
                reason: "DOCKER_TLS asks for TLS without checking the engine's certificate".into(),
                help: "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder holding the engine's CA (ca.pem) and a client certificate (cert.pem, key.pem)".into(),
            });
        }
        return Ok(endpoint);
    }
    let config_dir = inputs.config_dir.as_deref();
    let (context, source) = match &inputs.docker_context {
        Some(c) => (Some(c.clone()), "DOCKER_CONTEXT"),
        None => (
            config_dir.and_then(current_context),
            "the Docker config's currentContext",
        ),
    };
    if let Some(name) = context.filter(|n| n != "default") {
        return match config_dir.and_then(|dir| context_endpoint(dir, &name, source)) {
            Some(endpoint) => Ok(endpoint),
            None => Err(MissingContext {
                name,
                from: source.into(),
            }
            .into()),
        };
    }
    Ok(Endpoint::new(DEFAULT_SOCKET, "the default socket"))
}

fn is_tcp(host: &str) -> bool {
    host.starts_with("tcp://") || host.starts_with("https://")
}

/// Refuses a host that cannot be connected to as written, before anything is sent.
fn check_host(endpoint: &Endpoint) -> Result<(), ConnectError> {
    if !endpoint.host.starts_with("ssh://") {
        return Ok(());
    }
    ssh::parse(&endpoint.host)
        .map(drop)
        .map_err(|reason| ConnectError::Unsupported {
            host: endpoint.host.clone(),
            from: endpoint.source.clone(),
            reason,
            help: "write it as `ssh://user@host` or `ssh://user@host:port`".into(),
        })
}

fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("currentContext")?.as_str().map(str::to_string)
}

/// Contexts live in `contexts/meta/<sha256 of name>/meta.json`; a context
/// with TLS keeps its certificates in `contexts/tls/<same>/docker/`.
fn context_endpoint(config_dir: &Path, name: &str, from: &str) -> Option<Endpoint> {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let contexts = config_dir.join("contexts");
    let meta = contexts.join("meta").join(&hex).join("meta.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).ok()?).ok()?;
    let host = json.pointer("/Endpoints/docker/Host")?.as_str()?;
    let mut endpoint = Endpoint::new(host, format!("context `{name}` ({from})"));
    let tls = contexts.join("tls").join(&hex).join("docker");
    if tls.is_dir() && is_tcp(host) {
        endpoint.tls = Some(TlsFiles {
            dir: tls,
            source: format!("context `{name}`'s TLS folder"),
        });
    }
    Some(endpoint)
}

/// Checks the TLS files as far as can be done without the engine: there,
/// readable, and holding what their names promise.
fn check_tls_files(endpoint: &Endpoint, tls: &TlsFiles) -> Result<(), ConnectError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let setting = if tls.source == "DOCKER_CERT_PATH" {
        "DOCKER_CERT_PATH".to_string()
    } else if tls.source.starts_with("context") {
        format!(
            "{}: `docker context update --docker ca=…,cert=…,key=…`",
            tls.source
        )
    } else {
        "DOCKER_CERT_PATH".to_string()
    };
    for (file, what) in [
        ("ca.pem", "the CA that signed the engine's certificate"),
        ("cert.pem", "devenv's client certificate"),
        ("key.pem", "the client certificate's private key"),
    ] {
        let path = tls.dir.join(file);
        let fail = |problem: String| {
            ConnectError::CertFile {
            endpoint: endpoint.clone(),
            path: path.clone(),
            problem,
            help: format!(
                "`{file}` is {what}; the folder `{}` comes from {} — point {setting} at the folder holding ca.pem, cert.pem and key.pem",
                tls.dir.display(),
                tls.source,
            ),
        }
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
    let help = if reason.contains("dial-stdio")
        || reason.contains("docker: ")
        || reason.contains("docker:")
    {
        "`ssh` logged in, but `docker system dial-stdio` failed there: install the docker CLI on that host, on the PATH of non-interactive logins".into()
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
        source,
        help: help_unreachable(endpoint),
    }
}

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

    fn resolve_from(
        docker_host: Option<String>,
        docker_context: Option<String>,
        config_dir: Option<&Path>,
    ) -> Result<Endpoint, ConnectError> {
        resolve_with(&Inputs {
            docker_host,
            docker_context,
            config_dir: config_dir.map(Path::to_path_buf),
            ..Inputs::default()
        })
    }

    fn meta(dir: &Path, name: &str, host: &str) -> String {
        let hex: String = Sha256::digest(name.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let meta = dir.join("contexts/meta").join(&hex);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(r#"{{"Name":"{name}","Endpoints":{{"docker":{{"Host":"{host}"}}}}}}"#),
        )
        .unwrap();
        hex
    }

    #[test]
    fn docker_host_wins() {
        let e = resolve_from(Some("tcp://1.2.3.4:2375".into()), Some("ctx".into()), None).unwrap();
        assert_eq!(e.host, "tcp://1.2.3.4:2375");
        assert_eq!(e.source, "DOCKER_HOST");
        assert_eq!(e.tls, None);
    }

    #[test]
    fn default_socket_without_anything() {
        assert_eq!(resolve_from(None, None, None).unwrap().host, DEFAULT_SOCKET);
        let e = resolve_from(None, Some("default".into()), None).unwrap();
        assert_eq!(e.host, DEFAULT_SOCKET);
    }

    #[test]
    fn contexts_are_read_from_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        meta(dir.path(), "colima", "unix:///tmp/colima.sock");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"colima"}"#,
        )
        .unwrap();
        let e = resolve_from(None, None, Some(dir.path())).unwrap();
        assert_eq!(e.host, "unix:///tmp/colima.sock");
        assert!(e.source.contains("currentContext"));
        let e = resolve_from(None, Some("colima".into()), Some(dir.path())).unwrap();
        assert!(e.source.contains("DOCKER_CONTEXT"));
    }

    #[test]
    fn r14_a_missing_context_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_from(None, Some("missing".into()), Some(dir.path())).unwrap_err();
        let ConnectError::MissingContext(m) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(m.name, "missing");
        assert!(
            e.to_string().contains("`missing` (from DOCKER_CONTEXT)"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"gone"}"#,
        )
        .unwrap();
        let e = resolve_from(None, None, Some(dir.path())).unwrap_err();
        assert!(matches!(&e, ConnectError::MissingContext(m) if m.name == "gone"));
        assert!(resolve_from(None, Some("x".into()), None).is_err());
    }

    #[test]
    fn r14_tls_comes_from_docker_tls_verify_and_docker_cert_path() {
        let inputs = Inputs {
            docker_host: Some("tcp://engine.example:2376".into()),
            tls_verify: Some("1".into()),
            cert_path: Some("/certs".into()),
            config_dir: Some("/home/u/.docker".into()),
            ..Inputs::default()
        };
        let e = resolve_with(&inputs).unwrap();
        let tls = e.tls.unwrap();
        assert_eq!(tls.dir, PathBuf::from("/certs"));
        assert_eq!(tls.source, "DOCKER_CERT_PATH");
        // As the docker CLI: without DOCKER_CERT_PATH, the Docker config folder.
        let e = resolve_with(&Inputs {
            cert_path: None,
            ..inputs.clone()
        })
        .unwrap();
        assert_eq!(e.tls.unwrap().dir, PathBuf::from("/home/u/.docker"));
        // Without DOCKER_TLS_VERIFY, plain HTTP, whatever the port.
        let e = resolve_with(&Inputs {
            tls_verify: None,
            ..inputs.clone()
        })
        .unwrap();
        assert_eq!(e.tls, None);
        // TLS without verifying is refused, not quietly downgraded.
        let e = resolve_with(&Inputs {
            tls_verify: None,
            tls_unverified: Some("1".into()),
            ..inputs
        })
        .unwrap_err();
        assert!(e.to_string().contains("DOCKER_TLS"), "{e}");
    }

    #[test]
    fn r14_a_context_with_a_tls_folder_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let hex = meta(dir.path(), "remote", "tcp://10.0.0.5:2376");
        let tls = dir.path().join("contexts/tls").join(&hex).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        let e = resolve_from(None, Some("remote".into()), Some(dir.path())).unwrap();
        let files = e.tls.unwrap();
        assert_eq!(files.dir, tls);
        assert_eq!(files.source, "context `remote`'s TLS folder");
        meta(dir.path(), "plain", "tcp://10.0.0.6:2375");
        let e = resolve_from(None, Some("plain".into()), Some(dir.path())).unwrap();
        assert_eq!(e.tls, None);
    }

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
    fn r14_ssh_hosts_are_checked_before_connecting() {
        let ok = |h: &str| resolve_from(Some(h.into()), None, None);
        assert!(ok("ssh://me@build-box").is_ok());
        assert!(ok("ssh://build-box").is_ok());
        assert!(ok("ssh://me@build-box:2222").is_ok());
        let e = ok("ssh://me@build-box:ssh").unwrap_err();
        assert!(e.to_string().contains("`ssh` is not a port"), "{e}");
        assert!(ok("ssh://").is_err());
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
