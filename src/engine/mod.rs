//! The only part of devenv that knows bollard: containers, images, networks,
//! volumes, exec, logs and archive upload, in the vocabulary of the Docker
//! Engine API. Everything above speaks in services, the resolved model and
//! the planner's specs.
//!
//! - `create`: the planner's specs → containers (create body, host config),
//!   the project network and volumes
//! - `containers`: the observe step's listings, start, stop, remove,
//!   inspect, wait
//! - `logs`: tail and follow logs (a local engine's off its socket, through
//!   `logread`), the engine's clock
//! - `exec`: commands in containers (attached or not), archives in and out
//! - `images`: inspect, pull with progress, build, import a root filesystem
//! - `connect`: which engine, and how to reach it
//! - `events`: waiting for what an interrupted command left under way
//! - `router`: containers with a route label, the shared router's networks

mod claims;
mod connect;
mod containers;
mod create;
mod events;
mod exec;
mod images;
mod logread;
mod logs;
mod pipe;
mod router;

use std::collections::HashMap;

use bollard::query_parameters::{ListNetworksOptions, RemoveVolumeOptions};
use bollard::Docker;

pub use crate::plan::spec::OneOff;
pub use claims::ProjectClaim;
pub use connect::{ConnectError, Endpoint};
pub use exec::{Attached, Chunk, ExecAs, ExecTarget};
pub use images::PullError;
pub use pipe::{ExecPipe, Piped};
pub use router::{Routed, RouterContainer};

pub use crate::names::{
    anonymous_volume_name, container_name, network_name, project_dir, volume_name, LABEL_ANONYMOUS,
    LABEL_COMPOSE_PROJECT, LABEL_DIR, LABEL_HASH, LABEL_ONEOFF, LABEL_PARTS, LABEL_PROJECT,
    LABEL_SERVICE,
};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Connect(#[from] connect::ConnectError),

    #[error("{action} failed")]
    #[diagnostic(code(devenv::engine::api))]
    Api {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("image `{image}` for service `{service}` is not here and cannot be pulled: {reason}")]
    #[diagnostic(
        code(devenv::engine::image),
        help("check the image name, log in to its registry, or give the service a `build` (offline, devenv's presets fall back to local builds by themselves)")
    )]
    ImageUnavailable {
        service: String,
        image: String,
        reason: String,
    },

    #[error("building `{service}` failed: {message}")]
    #[diagnostic(
        code(devenv::engine::build),
        help("the build output above shows the failing step")
    )]
    Build { service: String, message: String },

    #[error("cannot copy the working tree into `{container}`: {detail}")]
    #[diagnostic(
        code(devenv::engine::copy),
        help("check that the `sync` rules' folders are readable")
    )]
    Copy { container: String, detail: String },

    #[error("cannot read the build context `{path}`")]
    #[diagnostic(
        code(devenv::engine::context),
        help("check the service's `build.context`")
    )]
    Context {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
        let action = action.into();
        move |source| EngineError::Api { action, source }
    }
}

impl EngineError {
    /// The engine refused a name already in use (409 Conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 409,
                    ..
                },
                ..
            }
        )
    }

    /// What the engine said when an object this run planned to act on was
    /// gone (404) or in another's way (409): the plan went stale under it.
    pub fn changed_under_us(&self) -> Option<String> {
        match self {
            EngineError::Api {
                action,
                source:
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404 | 409,
                        message,
                    },
            } => Some(format!("{action}: {message}")),
            _ => None,
        }
    }

    /// The engine's whole message when it refused a host port that is
    /// already allocated (the port is in it), `None` for any other error.
    pub fn port_refusal(&self) -> Option<String> {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(&s.to_string());
            source = s.source();
        }
        (text.contains("port is already allocated") || text.contains("address already in use"))
            .then_some(text)
    }

    /// The container could not start because its command is not in the image.
    pub fn is_missing_executable(&self) -> bool {
        match self {
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError { message, .. },
                ..
            } => message.contains("executable file not found"),
            _ => false,
        }
    }
}

/// True when the engine said 404 (no such container/volume/network/image).
fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A connection to one Docker engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    pub endpoint: Endpoint,
}

/// A devenv container as the engine reports it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub service: String,
    pub hash: String,
    /// Docker's word: created, running, exited, …
    pub state: String,
    pub oneoff: bool,
    /// The stack folder it was made for; `None` when made before devenv labelled it.
    pub dir: Option<String>,
    pub project: String,
    /// Container port → host port, as published on the host.
    pub published: Vec<(u16, u16)>,
}

/// The container that holds a name, and its labels.
#[derive(Debug, Clone)]
pub struct Named {
    pub id: String,
    pub labels: HashMap<String, String>,
}

/// A devenv volume of a project as the engine reports it.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub name: String,
    /// The stack folder it was made for; `None` when made before devenv labelled it.
    pub dir: Option<String>,
}

/// One host address and port a container port is published on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostBinding {
    pub container: u16,
    /// `tcp`, `udp`, `sctp`.
    pub protocol: String,
    /// Empty when the engine names none (all addresses).
    pub host_ip: String,
    pub host: u16,
}

impl std::fmt::Display for HostBinding {
    /// As Compose's `ps` writes it: `127.0.0.1:8080->80/tcp`, `[::]:8080->80/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (host, container, protocol) = (self.host, self.container, &self.protocol);
        match self.host_ip.as_str() {
            "" => write!(f, "{host}->{container}/{protocol}"),
            ip if ip.contains(':') => write!(f, "[{ip}]:{host}->{container}/{protocol}"),
            ip => write!(f, "{ip}:{host}->{container}/{protocol}"),
        }
    }
}

/// What `inspect` tells about a container's life.
#[derive(Debug, Clone, Default)]
pub struct ContainerStatus {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// `healthy`, `unhealthy`, `starting`; `None` without a HEALTHCHECK.
    pub health: Option<String>,
    /// Address on the project network.
    pub ip: Option<String>,
    /// Container port → published host port.
    pub published: HashMap<u16, u16>,
    /// Every host binding of every container port (IPv4 and IPv6, several
    /// host addresses), sorted: what `ps` shows.
    pub bindings: Vec<HostBinding>,
    pub started_at: Option<String>,
    /// How often the engine restarted it by its restart policy.
    pub restart_count: i64,
    /// The engine is about to start it again (restart policy).
    pub restarting: bool,
    /// The kernel killed it for want of memory.
    pub oom_killed: bool,
}

/// What a container was created with that says how to reach it: its env
/// (the image's and the stack's, as the container holds them) and its
/// command. A client must use these, not the stack file as it reads now:
/// the shell that started the stack may have had other variables.
/// No `Debug`: the values are secrets in clear.
#[derive(Clone, Default)]
pub struct ContainerEnv {
    /// `NAME`, value; in the engine's order.
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
}

/// Which log lines to show: the last `tail`, those since a unix time, and
/// whether each carries its timestamp.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogsFrom {
    pub tail: Option<usize>,
    pub since: Option<i64>,
    pub timestamps: bool,
}

fn project_filter(project: &str, extra: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{LABEL_PROJECT}={project}")];
    labels.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    HashMap::from([("label".to_string(), labels)])
}

impl Engine {
    /// Connects to the resolved endpoint and agrees on an API version.
    pub async fn connect() -> Result<Engine, EngineError> {
        Self::connect_to(connect::resolve()?).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Engine, EngineError> {
        let docker = connect::docker(&endpoint).await?;
        Ok(Engine { docker, endpoint })
    }

    /// The engine's Unix socket, when it is reached through one.
    fn unix_socket(&self) -> Option<std::path::PathBuf> {
        let host = &self.endpoint.host;
        if self.endpoint.tls.is_some() {
            return None;
        }
        let path = host.strip_prefix("unix://").unwrap_or(host);
        path.starts_with('/').then(|| path.into())
    }

    // ---- networks and volumes ----------------------------------------------

    /// The engine (API 1.41) lets two devenv runs that race both create the
    /// project network, and then every use of its name is "ambiguous". Both
    /// racers agree on the oldest network; the one that made a newer one
    /// removes it (it is empty: nothing has used it yet).
    async fn settle_network_race(&self, name: &str, ours: &str) -> Result<(), EngineError> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let mut same: Vec<(String, String)> = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(EngineError::api("listing networks"))?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| {
                let created = n.created.map(|c| c.to_string()).unwrap_or_default();
                (created, n.id.unwrap_or_default())
            })
            .collect();
        same.sort();
        if same.len() > 1 && same[0].1 != ours {
            match self.docker.remove_network(ours).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(EngineError::api(format!("removing network `{name}`"))(e)),
            }
        }
        Ok(())
    }

    /// The labels of the project network, or `None` when there is none.
    pub async fn network_labels(
        &self,
        project: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        let name = network_name(project);
        match self
            .docker
            .inspect_network(
                &name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(n) => Ok(Some(n.labels.unwrap_or_default())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting network `{name}`"))(e)),
        }
    }

    /// Removes the project network by name; the caller checks it is devenv's.
    pub async fn remove_network(&self, project: &str) -> Result<bool, EngineError> {
        let name = network_name(project);
        match self.docker.remove_network(&name).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(EngineError::api(format!("removing network `{name}`"))(e)),
        }
    }

    /// The volumes labelled as the project's (whichever folder made them).
    pub async fn list_volumes(&self, project: &str) -> Result<Vec<VolumeInfo>, EngineError> {
        Ok(self
            .observe_volumes(project)
            .await?
            .into_iter()
            .map(|v| VolumeInfo {
                dir: v.labels.get(LABEL_DIR).cloned(),
                name: v.name,
            })
            .collect())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
        {
            Err(e) if is_not_found(&e) => Ok(()),
            r => r.map_err(EngineError::api(format!("removing volume `{name}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_volume_names_are_readable_and_unique_per_path() {
        let a = anonymous_volume_name("shop", "db", "/var/lib/postgresql/data");
        assert!(a.starts_with("shop_db_var-lib-postgresql-data-"), "{a}");
        assert_eq!(
            a,
            anonymous_volume_name("shop", "db", "/var/lib/postgresql/data")
        );
        // Paths that read alike still get their own volume.
        assert_ne!(
            anonymous_volume_name("shop", "db", "/a-b"),
            anonymous_volume_name("shop", "db", "/a/b")
        );
        assert_ne!(
            a,
            anonymous_volume_name("shop", "cache", "/var/lib/postgresql/data")
        );
    }
}
