//! Which engine: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH`), then `DOCKER_CONTEXT`, then the Docker config's
//! `currentContext` (a context's host and its TLS folder), then the default
//! socket, as the docker CLI reads them. bollard reads none of the context
//! files, so this does.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ssh, ConnectError, Endpoint, MissingContext, TlsFiles, DEFAULT_SOCKET};

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

pub(super) fn is_tcp(host: &str) -> bool {
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
    fn r14_ssh_hosts_are_checked_before_connecting() {
        let ok = |h: &str| resolve_from(Some(h.into()), None, None);
        assert!(ok("ssh://me@build-box").is_ok());
        assert!(ok("ssh://build-box").is_ok());
        assert!(ok("ssh://me@build-box:2222").is_ok());
        let e = ok("ssh://me@build-box:ssh").unwrap_err();
        assert!(e.to_string().contains("`ssh` is not a port"), "{e}");
        assert!(ok("ssh://").is_err());
    }
}
