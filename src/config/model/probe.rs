//! Readiness probes in the model: what `ready = …` resolves to, and the
//! same check as a command inside the container, which the probe falls back
//! to when the host cannot reach a container and which export writes as a
//! Kubernetes exec probe.

use serde::Serialize;

use crate::config::Secret;

/// A readiness probe, run by devenv itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// Connect and `SELECT 1`; credentials default to the `POSTGRES_*` env.
    Postgres {
        port: u16,
        user: String,
        password: Secret,
        database: String,
    },
    /// `PING`, after `AUTH` when a password is given.
    Redis {
        port: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
    },
    /// An HTTP GET answering with a status in `status` (inclusive range).
    Http {
        port: u16,
        path: String,
        status: (u16, u16),
    },
    Tcp {
        port: u16,
    },
    /// A command in the container that exits 0.
    Exec {
        command: Vec<String>,
    },
    /// The image's own HEALTHCHECK reports healthy.
    Docker,
}

/// The variable `redis-cli` reads its password from: a password in argv
/// would show in `ps` inside the container, in error messages and in
/// exported manifests.
pub const REDISCLI_AUTH: &str = "REDISCLI_AUTH";

impl Probe {
    /// The same check as a command inside the container, where one can do it:
    /// the fallback when the host cannot reach the container, and the form
    /// Kubernetes exec probes take. It holds no secret: a password comes
    /// through [`Probe::in_container_env`].
    pub fn in_container_command(&self) -> Option<Vec<String>> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        match self {
            Probe::Postgres {
                port,
                user,
                database,
                ..
            } => Some(words(&[
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                user,
                "-d",
                database,
            ])),
            Probe::Redis {
                port,
                username,
                password,
            } => {
                // `redis-cli` exits 0 on any answer, `NOAUTH`, `WRONGPASS` and
                // `LOADING` included: only a `PONG` means ready.
                let mut command = words(&[
                    "sh",
                    "-c",
                    "redis-cli \"$@\" ping | grep -qx PONG",
                    "redis-probe",
                    "-p",
                    &port.to_string(),
                ]);
                if let Some(user) = username {
                    command.extend(words(&["--user", user]));
                }
                if password.is_some() {
                    // The password itself is in `REDISCLI_AUTH`.
                    command.push("--no-auth-warning".into());
                }
                Some(command)
            }
            Probe::Exec { command } => Some(command.clone()),
            Probe::Http { .. } | Probe::Tcp { .. } | Probe::Docker => None,
        }
    }
}

impl Probe {
    /// The env [`Probe::in_container_command`] needs: the Redis password.
    pub fn in_container_env(&self) -> Vec<(&'static str, &Secret)> {
        match self {
            Probe::Redis {
                password: Some(password),
                ..
            } => vec![(REDISCLI_AUTH, password)],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_probe_with_credentials_authenticates_in_the_container_too() {
        let probe = Probe::Redis {
            port: 6380,
            username: Some("app".into()),
            password: Some("s3cret".into()),
        };
        assert_eq!(
            probe.in_container_command().unwrap().join(" "),
            "sh -c redis-cli \"$@\" ping | grep -qx PONG redis-probe -p 6380 --user app --no-auth-warning",
            "no password in argv"
        );
        let env = probe.in_container_env();
        assert_eq!(env.len(), 1);
        assert_eq!((env[0].0, env[0].1.expose()), ("REDISCLI_AUTH", "s3cret"));
        let dir = std::env::temp_dir();
        let stack = crate::config::parse(
            "[services.cache]\nimage = \"redis\"\nready = { redis = { password = \"s3cret\" } }\n",
            "dev.toml",
            &dir.join("dev.toml"),
            &dir,
            &crate::config::LoadOptions {
                cwd: dir.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(stack.services["cache"]
            .secret_values()
            .any(|s| s == "s3cret"));
        assert_eq!(stack.mask("AUTH s3cret"), "AUTH ********");
    }
}
