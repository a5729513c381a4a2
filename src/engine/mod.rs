//! The only part of devenv that knows bollard: containers, images, networks,
//! volumes, exec, logs and archive upload, in the vocabulary of the Docker
//! Engine API. Everything above speaks in services and the resolved model.

mod claims;
mod connect;
mod images;
mod pipe;

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, InspectContainerOptions,
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, RestartContainerOptions, StartContainerOptions,
    StopContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

pub use claims::ProjectClaim;
pub use connect::{ConnectError, Endpoint};
pub use images::PullError;
pub use pipe::{ExecPipe, Piped};

use crate::config::model::{Mount, Protocol, Restart, Service, Stack, Volume};

pub const LABEL_PROJECT: &str = "devenv.project";
pub const LABEL_SERVICE: &str = "devenv.service";
pub const LABEL_HASH: &str = "devenv.config-hash";
/// Marks containers of `devenv run`, which are not the service's container.
pub const LABEL_ONEOFF: &str = "devenv.oneoff";
/// The folder of the stack file: with the project name, a project's identity
/// (two folders with one name are two projects). On containers, networks
/// and volumes.
pub const LABEL_DIR: &str = "devenv.project-dir";
/// On a volume devenv made for an anonymous volume (an image's `VOLUME`):
/// the container path it is mounted at.
pub const LABEL_ANONYMOUS: &str = "devenv.anonymous";
/// What Docker Compose (and so Sail) labels its objects with.
pub const LABEL_COMPOSE_PROJECT: &str = "com.docker.compose.project";

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

/// A devenv volume of a project as the engine reports it.
#[derive(Debug, Clone)]
pub struct VolumeInfo {
    pub name: String,
    /// The stack folder it was made for; `None` when made before devenv labelled it.
    pub dir: Option<String>,
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
    pub started_at: Option<String>,
    /// How often the engine restarted it by its restart policy.
    pub restart_count: i64,
    /// The engine is about to start it again (restart policy).
    pub restarting: bool,
    /// The kernel killed it for want of memory.
    pub oom_killed: bool,
}

/// Which log lines to show: the last `tail`, those since a unix time, and
/// whether each carries its timestamp.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogsFrom {
    pub tail: Option<usize>,
    pub since: Option<i64>,
    pub timestamps: bool,
}

/// Copies the user's stdin into an attached container or exec as it comes;
/// at its end the container's stdin closes too (`echo x | devenv run … cat`
/// ends). Reading stdin blocks, so a plain thread reads and a task forwards.
fn forward_stdin(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if input.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = input.shutdown().await;
    })
}

/// Who and where an attached exec runs: the container's defaults when unset.
#[derive(Debug, Clone, Default)]
pub struct ExecAs {
    pub user: Option<String>,
    /// `KEY=VALUE` pairs over the container's env.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

/// A one-off container of a service (`devenv run`, `devenv test`): its own
/// name and command, and folders that get a fresh tmpfs.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    pub name: String,
    pub command: Vec<String>,
    pub tmpfs: Vec<String>,
    /// Keep stdin open for the user's input (`devenv run`).
    pub stdin: bool,
    /// Allocate a terminal (`devenv run` on one).
    pub tty: bool,
}

/// Names of the objects devenv makes for a project.
pub fn container_name(project: &str, service: &str) -> String {
    format!("{project}-{service}-1")
}
pub fn network_name(project: &str) -> String {
    format!("{project}_default")
}
pub fn volume_name(project: &str, volume: &str) -> String {
    format!("{project}_{volume}")
}

/// The volume devenv makes for an anonymous volume of a service (an image's
/// `VOLUME` path): readable, and unique per path by a short hash.
pub fn anonymous_volume_name(project: &str, service: &str, target: &str) -> String {
    use sha2::{Digest, Sha256};
    let readable: String = target
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let digest = Sha256::digest(target.as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{project}_{service}_{readable}-{short}")
}

/// The stack's folder as devenv labels objects with it: absolute, symlinks resolved.
pub fn project_dir(stack: &Stack) -> String {
    stack
        .root
        .canonicalize()
        .unwrap_or_else(|_| stack.root.clone())
        .display()
        .to_string()
}

/// The anonymous volume paths of a service, with whether each is read-only:
/// the ones the stack file declares (`volumes = ["/app/node_modules"]`) and
/// the image's `VOLUME`s that no mount covers. devenv gives each a labelled
/// volume of its own, so the data outlives the container (a recreate, a
/// plain `down`) and goes only with `down -v`.
fn anonymous_targets(svc: &Service, image_volumes: &[String]) -> Vec<(String, bool)> {
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut mounted: Vec<String> = Vec::new();
    for m in &svc.volumes {
        match m {
            Mount::Volume { target, .. } | Mount::Bind { target, .. } => mounted.push(norm(target)),
            Mount::Anonymous { target, read_only } => {
                mounted.push(norm(target));
                out.push((norm(target), *read_only));
            }
        }
    }
    out.extend(
        image_volumes
            .iter()
            .map(|v| norm(v))
            .filter(|v| !v.is_empty() && !mounted.contains(v))
            .map(|v| (v, false)),
    );
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Options for a tmpfs the container's user can write to. The engine copies
/// the mount point's owner and mode onto a new tmpfs (a root-owned folder of a
/// bind mount stays root-owned whatever `mode` says), so it is given to the
/// user by number; only a named user falls back to a world-writable mode.
fn tmpfs_options(user: Option<&str>) -> String {
    let mut ids = user.unwrap_or("0").splitn(2, ':');
    let uid = ids.next().and_then(|u| u.parse::<u32>().ok());
    let gid = ids.next().and_then(|g| g.parse::<u32>().ok());
    match (uid, gid) {
        (Some(u), Some(g)) => format!("uid={u},gid={g}"),
        (Some(u), None) => format!("uid={u}"),
        _ => "mode=1777".to_string(),
    }
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

    // ---- containers -------------------------------------------------------

    pub async fn list_containers(&self, project: &str) -> Result<Vec<ContainerInfo>, EngineError> {
        self.containers_labelled(project_filter(project, &[])).await
    }

    /// Every devenv container on the engine, of every project (`devenv ls`).
    pub async fn list_all_containers(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        self.containers_labelled(HashMap::from([(
            "label".to_string(),
            vec![LABEL_PROJECT.to_string()],
        )]))
        .await
    }

    async fn containers_labelled(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(EngineError::api("listing containers"))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.first().cloned())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                    hash: labels.get(LABEL_HASH).cloned().unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    oneoff: labels.contains_key(LABEL_ONEOFF),
                    dir: labels.get(LABEL_DIR).cloned(),
                    project: labels.get(LABEL_PROJECT).cloned().unwrap_or_default(),
                    published: c
                        .ports
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|p| Some((p.private_port, p.public_port?)))
                        .collect(),
                }
            })
            .collect())
    }

    /// Creates the container for `svc`, or a one-off container of it.
    pub async fn create_container(
        &self,
        stack: &Stack,
        svc: &Service,
        hash: &str,
        oneoff: Option<&OneOff>,
    ) -> Result<String, EngineError> {
        self.create(stack, svc, hash, oneoff, &HashMap::new()).await
    }

    /// Creates the service's own container. Its anonymous volumes are
    /// devenv's labelled volumes, except where `carried` (container path →
    /// volume, from the container it replaces) names one: that is mounted
    /// again, as Compose carries anonymous volumes over to a recreated
    /// container (it keeps the data of containers made before the labels).
    pub async fn create_service_container(
        &self,
        stack: &Stack,
        svc: &Service,
        hash: &str,
        carried: &HashMap<String, String>,
    ) -> Result<String, EngineError> {
        self.create(stack, svc, hash, None, carried).await
    }

    async fn create(
        &self,
        stack: &Stack,
        svc: &Service,
        hash: &str,
        oneoff: Option<&OneOff>,
        carried: &HashMap<String, String>,
    ) -> Result<String, EngineError> {
        let project = &stack.project;
        let dir = project_dir(stack);
        let mut labels = HashMap::from([
            (LABEL_PROJECT.to_string(), project.clone()),
            (LABEL_SERVICE.to_string(), svc.name.clone()),
            (LABEL_HASH.to_string(), hash.to_string()),
            (LABEL_DIR.to_string(), dir.clone()),
        ]);
        // One-off containers get no DNS alias: `cache` must keep meaning the service.
        let (name, cmd, aliases) = match oneoff {
            Some(o) => {
                labels.insert(LABEL_ONEOFF.to_string(), "true".into());
                (o.name.clone(), Some(o.command.clone()), None)
            }
            None => (
                container_name(project, &svc.name),
                svc.command.clone(),
                Some(vec![svc.name.clone()]),
            ),
        };

        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &svc.ports {
            let proto = match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            let key = format!("{}/{proto}", p.container);
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: Some(p.host.map(|h| h.to_string()).unwrap_or_default()),
                });
        }
        let mut binds: Vec<String> = svc
            .volumes
            .iter()
            .filter_map(|m| match m {
                Mount::Anonymous { .. } => None,
                Mount::Volume {
                    name,
                    target,
                    read_only,
                } => {
                    let external = stack.volumes.get(name).is_some_and(|v| v.external);
                    let source = if external {
                        name.clone()
                    } else {
                        volume_name(project, name)
                    };
                    Some(format!(
                        "{source}:{target}{}",
                        if *read_only { ":ro" } else { "" }
                    ))
                }
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => Some(format!(
                    "{}:{target}{}",
                    source.display(),
                    if *read_only { ":ro" } else { "" }
                )),
            })
            .collect();
        // One-off containers keep Docker's own anonymous volumes: scratch
        // space, removed with the container (declared ones come from mounts:
        // an anonymous volume cannot be a bind).
        let mut anonymous = Vec::new();
        if oneoff.is_some() {
            anonymous = svc
                .volumes
                .iter()
                .filter_map(|m| match m {
                    Mount::Anonymous { target, read_only } => Some(bollard::models::Mount {
                        target: Some(target.clone()),
                        typ: Some(bollard::models::MountType::VOLUME),
                        read_only: Some(*read_only),
                        ..Default::default()
                    }),
                    _ => None,
                })
                .collect();
        } else {
            let image_volumes = self.image_volumes(&svc.image).await?;
            for (target, read_only) in anonymous_targets(svc, &image_volumes) {
                let source = match carried.get(&target) {
                    Some(volume) => volume.clone(),
                    None => {
                        let name = anonymous_volume_name(project, &svc.name, &target);
                        let labels = HashMap::from([
                            (LABEL_PROJECT.to_string(), project.clone()),
                            (LABEL_DIR.to_string(), dir.clone()),
                            (LABEL_SERVICE.to_string(), svc.name.clone()),
                            (LABEL_ANONYMOUS.to_string(), target.clone()),
                        ]);
                        self.create_labelled_volume(&name, None, HashMap::new(), labels)
                            .await?;
                        name
                    }
                };
                binds.push(format!(
                    "{source}:{target}{}",
                    if read_only { ":ro" } else { "" }
                ));
            }
        }
        let restart = match svc.restart {
            Restart::No => RestartPolicyNameEnum::NO,
            Restart::Always => RestartPolicyNameEnum::ALWAYS,
            Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
            Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        };
        let tmpfs = match oneoff.filter(|o| !o.tmpfs.is_empty()) {
            Some(o) => {
                let user = match &svc.user {
                    Some(u) => Some(u.clone()),
                    None => self.image_user(&svc.image).await?,
                };
                let opts = tmpfs_options(user.as_deref());
                Some(o.tmpfs.iter().map(|p| (p.clone(), opts.clone())).collect())
            }
            None => None,
        };
        let network = network_name(project);
        let endpoint = EndpointSettings {
            aliases: aliases.clone(),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(svc.image.to_string()),
            cmd,
            entrypoint: svc.entrypoint.clone(),
            env: Some(
                svc.env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.value))
                    .collect(),
            ),
            user: svc.user.clone(),
            working_dir: svc.working_dir.clone(),
            labels: Some(labels),
            exposed_ports: Some(exposed),
            // The hostname would shadow the service's DNS name inside a one-off.
            hostname: aliases.as_ref().map(|_| svc.name.clone()),
            tty: oneoff.map(|o| o.tty),
            open_stdin: oneoff.map(|o| o.stdin),
            stdin_once: oneoff.map(|o| o.stdin),
            attach_stdin: oneoff.map(|o| o.stdin),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                binds: Some(binds),
                mounts: (!anonymous.is_empty()).then_some(anonymous),
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                network_mode: Some(network.clone()),
                init: Some(true),
                tmpfs,
                extra_hosts: (!svc.extra_hosts.is_empty()).then(|| svc.extra_hosts.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network, endpoint)])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(EngineError::api(format!("creating container `{name}`")))?;
        Ok(created.id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(EngineError::api(format!("starting container `{id}`")))
    }

    pub async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        let opts = StopContainerOptions {
            t: Some(timeout.as_secs() as i32),
            ..Default::default()
        };
        match self.docker.stop_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            r => r.map_err(EngineError::api(format!("stopping container `{id}`"))),
        }
    }

    pub async fn restart_container(&self, id: &str) -> Result<(), EngineError> {
        let opts = RestartContainerOptions {
            t: Some(10),
            ..Default::default()
        };
        self.docker
            .restart_container(id, Some(opts))
            .await
            .map_err(EngineError::api(format!("restarting container `{id}`")))
    }

    /// Removes a container (running or not) and its anonymous volumes.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress (another devenv, or an earlier `--rm`).
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            r => r.map_err(EngineError::api(format!("removing container `{id}`"))),
        }
    }

    /// Removes a service's container but not its anonymous volumes: they
    /// hold the service's data until `down -v`.
    pub async fn remove_container_keeping_volumes(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptions {
            force: true,
            v: false,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            r => r.map_err(EngineError::api(format!("removing container `{id}`"))),
        }
    }

    /// Removes a container by name (and its anonymous volumes) only if it
    /// carries `project`'s label: a name devenv picked may be held by a
    /// container someone else made, which is never devenv's to remove.
    pub async fn remove_project_container(
        &self,
        name: &str,
        project: &str,
    ) -> Result<(), EngineError> {
        match self.container_labels(name).await? {
            Some(labels) if labels.get(LABEL_PROJECT).map(String::as_str) == Some(project) => {
                self.remove_container(name).await
            }
            _ => Ok(()),
        }
    }

    /// The labels of a container by name or id, or `None` when there is no such container.
    pub async fn container_labels(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => Ok(Some(info.config.and_then(|c| c.labels).unwrap_or_default())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting container `{name}`"))(
                e,
            )),
        }
    }

    /// The volumes mounted in a container: container path → volume name.
    pub async fn volume_mounts(&self, id: &str) -> Result<HashMap<String, String>, EngineError> {
        let info = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(HashMap::new()),
            Err(e) => return Err(EngineError::api(format!("inspecting container `{id}`"))(e)),
        };
        Ok(info
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| Some((m.destination?, m.name?)))
            .collect())
    }

    pub async fn inspect_container(
        &self,
        id: &str,
        project: &str,
    ) -> Result<ContainerStatus, EngineError> {
        let info = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(EngineError::api(format!("inspecting container `{id}`")))?;
        let state = info.state.unwrap_or_default();
        let settings = info.network_settings.unwrap_or_default();
        let ip = settings
            .networks
            .as_ref()
            .and_then(|n| n.get(&network_name(project)))
            .and_then(|e| e.ip_address.clone())
            .filter(|ip| !ip.is_empty());
        let mut published = HashMap::new();
        for (key, binds) in settings.ports.unwrap_or_default() {
            let Some(port) = key.split('/').next().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let host = binds
                .unwrap_or_default()
                .iter()
                .find_map(|b| b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()));
            if let Some(h) = host {
                published.insert(port, h);
            }
        }
        Ok(ContainerStatus {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            health: state.health.and_then(|h| h.status).map(|s| s.to_string()),
            ip,
            published,
            started_at: state.started_at,
            restart_count: info.restart_count.unwrap_or(0),
            restarting: state.restarting.unwrap_or(false),
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    /// The last `n` lines a container printed, stdout and stderr interleaved.
    pub async fn tail_logs(&self, id: &str, n: usize) -> Result<Vec<String>, EngineError> {
        let mut lines = Vec::new();
        let mut stream = self.follow_logs(id, Some(n), false);
        while let Some(chunk) = stream.next().await {
            lines.extend(chunk?.lines().map(str::to_string));
        }
        Ok(lines)
    }

    /// Log output as it comes, in chunks of text.
    pub fn follow_logs(
        &self,
        id: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> impl Stream<Item = Result<String, EngineError>> + Send + 'static {
        let from = LogsFrom {
            tail,
            ..LogsFrom::default()
        };
        self.logs_from(id, &from, follow)
    }

    /// Log output from where `from` says (`logs -n/--since/-t`).
    pub fn logs_from(
        &self,
        id: &str,
        from: &LogsFrom,
        follow: bool,
    ) -> impl Stream<Item = Result<String, EngineError>> + Send + 'static {
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: from
                .tail
                .map_or_else(|| "all".to_string(), |n| n.to_string()),
            since: from
                .since
                .map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX)),
            timestamps: from.timestamps,
            ..Default::default()
        };
        let id = id.to_string();
        self.docker.logs(&id, Some(opts)).map(move |item| {
            item.map(|out| String::from_utf8_lossy(&out.into_bytes()).into_owned())
                .map_err(EngineError::api(format!("reading logs of `{id}`")))
        })
    }

    /// Log lines from `since` (unix seconds) on, each behind its RFC 3339
    /// timestamp, as they come: picks a restarted container up where its
    /// new run began (the caller drops the earlier lines of that second).
    pub fn follow_logs_since(
        &self,
        id: &str,
        since: i64,
    ) -> impl Stream<Item = Result<String, EngineError>> + Send + 'static {
        let from = LogsFrom {
            tail: None,
            since: Some(since),
            timestamps: true,
        };
        self.logs_from(id, &from, true)
    }

    /// Waits for a container to stop and returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64, EngineError> {
        let mut stream = self.docker.wait_container(id, None);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(EngineError::api(format!("waiting for `{id}`"))(e)),
            None => Ok(0),
        }
    }

    /// Runs a command in a running container, passing each output chunk to
    /// `on_output`, and returns its exit code.
    pub async fn exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        user: Option<String>,
        mut on_output: impl FnMut(&str) + Send,
    ) -> Result<i64, EngineError> {
        self.exec_bytes(id, cmd, env, user, |b| {
            on_output(&String::from_utf8_lossy(b))
        })
        .await
    }

    /// [`Engine::exec`] with the output as bytes, for output that is data
    /// (file names) rather than text a chunk boundary may cut in two.
    pub async fn exec_bytes(
        &self,
        id: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        user: Option<String>,
        mut on_output: impl FnMut(&[u8]) + Send,
    ) -> Result<i64, EngineError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let action = format!("running `{}` in `{id}`", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd),
            env: Some(env),
            user,
            ..Default::default()
        };
        let exec = self.create_exec(id, opts, &action).await?;
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(EngineError::api(action.clone()))?
        {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(EngineError::api(action.clone()))?;
                on_output(&chunk.into_bytes());
            }
        }
        let info = self
            .docker
            .inspect_exec(&exec)
            .await
            .map_err(EngineError::api(action))?;
        Ok(info.exit_code.unwrap_or(-1))
    }

    /// Runs a command with the user's terminal attached: stdin goes in,
    /// output comes out as it is produced, and with `tty` the container
    /// allocates a terminal of the user's size. Returns the exit code.
    pub async fn exec_attached(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: Option<(u16, u16)>,
    ) -> Result<i64, EngineError> {
        self.exec_attached_as(id, cmd, tty, &ExecAs::default())
            .await
    }

    /// [`Engine::exec_attached`] as another user, with extra env or in
    /// another folder (`exec -u/-e/-w`).
    pub async fn exec_attached_as(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: Option<(u16, u16)>,
        who: &ExecAs,
    ) -> Result<i64, EngineError> {
        use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
        let action = format!("running `{}` in `{id}`", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd),
            attach_stdin: Some(true),
            tty: Some(tty.is_some()),
            user: who.user.clone(),
            env: (!who.env.is_empty()).then(|| who.env.clone()),
            working_dir: who.working_dir.clone(),
            ..Default::default()
        };
        let exec = self.create_exec(id, opts, &action).await?;
        let started = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(EngineError::api(action.clone()))?;
        if let StartExecResults::Attached { mut output, input } = started {
            if let Some((rows, cols)) = tty {
                // Best effort: a wrong size only makes full-screen programs look odd.
                let _ = self
                    .docker
                    .resize_exec(
                        &exec,
                        ResizeExecOptions {
                            height: rows,
                            width: cols,
                        },
                    )
                    .await;
            }
            let forward = forward_stdin(input);
            let mut stdout = std::io::stdout();
            while let Some(chunk) = output.next().await {
                use std::io::Write;
                let chunk = chunk.map_err(EngineError::api(action.clone()))?;
                let _ = stdout.write_all(&chunk.into_bytes());
                let _ = stdout.flush();
            }
            forward.abort();
        }
        let info = self
            .docker
            .inspect_exec(&exec)
            .await
            .map_err(EngineError::api(action))?;
        Ok(info.exit_code.unwrap_or(-1))
    }

    /// Starts a created container (a one-off made with `stdin`) with the
    /// user's terminal attached, as [`Engine::exec_attached`] does for an
    /// exec: stdin goes in, output comes out, and with `tty` the container's
    /// terminal gets the user's size. Returns its exit code once it stops.
    pub async fn start_attached(
        &self,
        id: &str,
        tty: Option<(u16, u16)>,
    ) -> Result<i64, EngineError> {
        use bollard::query_parameters::{AttachContainerOptions, ResizeContainerTTYOptions};
        use std::io::Write;
        let action = format!("attaching to `{id}`");
        let opts = AttachContainerOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        // Attached before the start, so not a byte of output is lost.
        let bollard::container::AttachContainerResults { mut output, input } = self
            .docker
            .attach_container(id, Some(opts))
            .await
            .map_err(EngineError::api(action.clone()))?;
        self.start_container(id).await?;
        if let Some((rows, cols)) = tty {
            // Best effort: a wrong size only makes full-screen programs look odd.
            let _ = self
                .docker
                .resize_container_tty(
                    id,
                    ResizeContainerTTYOptions {
                        h: i32::from(rows),
                        w: i32::from(cols),
                    },
                )
                .await;
        }
        let forward = forward_stdin(input);
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(EngineError::api(action.clone()))?;
            if let bollard::container::LogOutput::StdErr { message } = chunk {
                let _ = std::io::stderr().write_all(&message);
            } else {
                let mut out = std::io::stdout();
                let _ = out.write_all(&chunk.into_bytes());
                let _ = out.flush();
            }
        }
        forward.abort();
        self.wait_container(id).await
    }

    /// Creates an exec whose output is attached; returns its id.
    async fn create_exec(
        &self,
        id: &str,
        opts: bollard::exec::CreateExecOptions<String>,
        action: &str,
    ) -> Result<String, EngineError> {
        let opts = bollard::exec::CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..opts
        };
        let exec = self
            .docker
            .create_exec(id, opts)
            .await
            .map_err(EngineError::api(action.to_string()))?;
        Ok(exec.id)
    }

    /// A tar archive of `path` in a container (running or stopped), or
    /// `None` when it does not exist.
    pub async fn download_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let opts = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => {
                    return Err(EngineError::api(format!("copying `{path}` out of `{id}`"))(
                        e,
                    ))
                }
            }
        }
        Ok(Some(archive))
    }

    /// The contents of one file in a container (running or stopped), or
    /// `None` when it does not exist.
    pub async fn download_file(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        use std::io::Read;
        let Some(archive) = self.download_archive(id, path).await? else {
            return Ok(None);
        };
        let unreadable = |e: std::io::Error| EngineError::Api {
            action: format!("reading `{path}` copied out of `{id}`"),
            source: bollard::errors::Error::IOError { err: e },
        };
        let mut tar = tar::Archive::new(archive.as_slice());
        let mut entries = tar.entries().map_err(unreadable)?;
        match entries.next() {
            Some(entry) => {
                let mut entry = entry.map_err(unreadable)?;
                let mut out = Vec::new();
                entry.read_to_end(&mut out).map_err(unreadable)?;
                Ok(Some(out))
            }
            None => Ok(None),
        }
    }

    /// Unpacks a tar archive at `path` inside the container.
    pub async fn upload_archive(
        &self,
        id: &str,
        path: &str,
        tar: Vec<u8>,
    ) -> Result<(), EngineError> {
        let opts = UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(EngineError::api(format!("copying files into `{id}`")))
    }

    /// Which container publishes host port `port`, if any (for port-conflict errors).
    pub async fn port_holder(&self, port: u16) -> Option<String> {
        let list = self
            .docker
            .list_containers(None::<ListContainersOptions>)
            .await
            .ok()?;
        list.into_iter().find_map(|c| {
            let holds = c
                .ports
                .unwrap_or_default()
                .iter()
                .any(|p| p.public_port == Some(port));
            holds.then(|| {
                c.names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string()
            })
        })
    }

    // ---- networks and volumes ----------------------------------------------

    /// Creates the project network unless it exists.
    pub async fn ensure_network(&self, stack: &Stack) -> Result<(), EngineError> {
        let project = &stack.project;
        let name = network_name(project);
        let filters = HashMap::from([("name".to_string(), vec![name.clone()])]);
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(EngineError::api("listing networks"))?;
        // The name filter matches substrings: compare exactly.
        if existing.iter().any(|n| n.name.as_deref() == Some(&name)) {
            return Ok(());
        }
        let req = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([
                (LABEL_PROJECT.to_string(), project.to_string()),
                (LABEL_DIR.to_string(), project_dir(stack)),
            ])),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(created) => self.settle_network_race(&name, &created.id).await,
            // Lost a race with another devenv: the network is there, which is all we want.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(EngineError::api(format!("creating network `{name}`"))(e)),
        }
    }

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

    pub async fn ensure_volume(
        &self,
        stack: &Stack,
        volume: &str,
        spec: &Volume,
    ) -> Result<(), EngineError> {
        let project = &stack.project;
        let labels = HashMap::from([
            (LABEL_PROJECT.to_string(), project.to_string()),
            (LABEL_DIR.to_string(), project_dir(stack)),
            ("devenv.volume".to_string(), volume.to_string()),
        ]);
        self.create_labelled_volume(
            &volume_name(project, volume),
            spec.driver.clone(),
            spec.driver_opts.clone().into_iter().collect(),
            labels,
        )
        .await
    }

    async fn create_labelled_volume(
        &self,
        name: &str,
        driver: Option<String>,
        driver_opts: HashMap<String, String>,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver,
            driver_opts: Some(driver_opts),
            labels: Some(labels),
            ..Default::default()
        };
        // Creating an existing volume is a no-op in the Engine API.
        self.docker
            .create_volume(req)
            .await
            .map(drop)
            .map_err(EngineError::api(format!("creating volume `{name}`")))
    }

    /// The driver and driver options an existing volume of the project was
    /// created with; `None` when it does not exist yet.
    pub async fn volume_driver(
        &self,
        project: &str,
        volume: &str,
    ) -> Result<Option<(String, std::collections::BTreeMap<String, String>)>, EngineError> {
        let name = volume_name(project, volume);
        match self.docker.inspect_volume(&name).await {
            Ok(v) => Ok(Some((v.driver, v.options.into_iter().collect()))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting volume `{name}`"))(e)),
        }
    }

    /// The volumes labelled as the project's (whichever folder made them).
    pub async fn list_volumes(&self, project: &str) -> Result<Vec<VolumeInfo>, EngineError> {
        let opts = ListVolumesOptions {
            filters: Some(project_filter(project, &[])),
        };
        let list = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(EngineError::api("listing volumes"))?;
        Ok(list
            .volumes
            .unwrap_or_default()
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

    #[test]
    fn only_image_volumes_no_mount_covers_become_anonymous_volumes() {
        let dir = std::env::temp_dir();
        let opts = crate::config::LoadOptions {
            cwd: dir.clone(),
            ..Default::default()
        };
        let text = "[project]\nname = \"shop\"\n[services.db]\nimage = \"x\"\nvolumes = [\"pgdata:/var/lib/postgresql/data/\", \"./logs:/logs\"]\n";
        let stack =
            crate::config::parse(text, "dev.toml", &dir.join("dev.toml"), &dir, &opts).unwrap();
        let svc = &stack.services["db"];
        let image = [
            "/var/lib/postgresql/data".to_string(),
            "/logs".into(),
            "/cache/".into(),
            "/cache".into(),
        ];
        assert_eq!(
            anonymous_targets(svc, &image),
            [("/cache".to_string(), false)]
        );
    }
}
