//! Finding the Docker engine: `DOCKER_HOST`, then `DOCKER_CONTEXT`, then the
//! Docker config's `currentContext`, then the default socket. The released
//! bollard reads none of the context files, so this does.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where the engine is expected, and why that one was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://host:2375`, …
    pub host: String,
    /// Human words for where `host` came from, used in errors.
    pub source: String,
}

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

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

/// Resolves the endpoint from the process environment and the Docker config folder.
pub fn resolve() -> Result<Endpoint, MissingContext> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".docker")));
    resolve_from(
        env("DOCKER_HOST"),
        env("DOCKER_CONTEXT"),
        config_dir.as_deref(),
    )
}

pub fn resolve_from(
    docker_host: Option<String>,
    docker_context: Option<String>,
    config_dir: Option<&Path>,
) -> Result<Endpoint, MissingContext> {
    if let Some(host) = docker_host {
        return Ok(Endpoint {
            host,
            source: "DOCKER_HOST".into(),
        });
    }
    let (context, source) = match docker_context {
        Some(c) => (Some(c), "DOCKER_CONTEXT"),
        None => (
            config_dir.and_then(current_context),
            "the Docker config's currentContext",
        ),
    };
    if let Some(name) = context.filter(|n| n != "default") {
        return match config_dir.and_then(|dir| context_host(dir, &name)) {
            Some(host) => Ok(Endpoint {
                host,
                source: format!("context `{name}` ({source})"),
            }),
            None => Err(MissingContext {
                name,
                from: source.into(),
            }),
        };
    }
    Ok(Endpoint {
        host: DEFAULT_SOCKET.into(),
        source: "the default socket".into(),
    })
}

fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("currentContext")?.as_str().map(str::to_string)
}

/// Contexts live in `contexts/meta/<sha256 of name>/meta.json`.
fn context_host(config_dir: &Path, name: &str) -> Option<String> {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let meta = config_dir
        .join("contexts")
        .join("meta")
        .join(hex)
        .join("meta.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).ok()?).ok()?;
    json.pointer("/Endpoints/docker/Host")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_wins() {
        let e = resolve_from(Some("tcp://1.2.3.4:2375".into()), Some("ctx".into()), None).unwrap();
        assert_eq!(e.host, "tcp://1.2.3.4:2375");
        assert_eq!(e.source, "DOCKER_HOST");
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
        let hex: String = Sha256::digest(b"colima")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let meta = dir.path().join("contexts/meta").join(hex);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Endpoints":{"docker":{"Host":"unix:///tmp/colima.sock"}}}"#,
        )
        .unwrap();
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
        assert_eq!(e.name, "missing");
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
        assert_eq!(e.name, "gone");
        assert!(resolve_from(None, Some("x".into()), None).is_err());
    }
}
