//! The only part of devenv that knows bollard: containers, images, networks,
//! volumes, exec, logs and archive upload, in the vocabulary of the Docker
//! Engine API. Everything above speaks in services and the resolved model.

mod connect;
mod images;

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

pub use connect::Endpoint;
pub use images::PullError;

use crate::config::model::{Mount, Protocol, Restart, Service, Stack, Volume};

pub const LABEL_PROJECT: &str = "devenv.project";
pub const LABEL_SERVICE: &str = "devenv.service";
pub const LABEL_HASH: &str = "devenv.config-hash";
/// Marks containers of `devenv run`, which are not the service's container.
pub const LABEL_ONEOFF: &str = "devenv.oneoff";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at `{}` (from {})", endpoint.host, endpoint.source)]
    #[diagnostic(
        code(devenv::engine::unreachable),
        help("start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST or DOCKER_CONTEXT at a running engine; if it runs, check that you may use its socket")
    )]
    Unreachable {
        endpoint: Endpoint,
        #[source]
        source: bollard::errors::Error,
    },

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
}

/// A one-off container of a service (`devenv run`, `devenv test`): its own
/// name and command, and folders that get a fresh tmpfs.
#[derive(Debug, Clone, Default)]
pub struct OneOff {
    pub name: String,
    pub command: Vec<String>,
    pub tmpfs: Vec<String>,
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
        Self::connect_to(connect::resolve()).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Engine, EngineError> {
        let unreachable = |source| EngineError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let host = endpoint.host.as_str();
        let docker = if host.starts_with("unix://") || host.starts_with('/') {
            Docker::connect_with_unix(host, 120, bollard::API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_local(host, 120, bollard::API_DEFAULT_VERSION)
        }
        .map_err(unreachable)?;
        // Old engines (API 1.41 here) refuse newer paths: ask the engine which it speaks.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(Engine { docker, endpoint })
    }

    // ---- containers -------------------------------------------------------

    pub async fn list_containers(&self, project: &str) -> Result<Vec<ContainerInfo>, EngineError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(project_filter(project, &[])),
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
        let project = &stack.project;
        let mut labels = HashMap::from([
            (LABEL_PROJECT.to_string(), project.clone()),
            (LABEL_SERVICE.to_string(), svc.name.clone()),
            (LABEL_HASH.to_string(), hash.to_string()),
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
        let binds: Vec<String> = svc
            .volumes
            .iter()
            .map(|m| match m {
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
                    format!("{source}:{target}{}", if *read_only { ":ro" } else { "" })
                }
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => {
                    format!(
                        "{}:{target}{}",
                        source.display(),
                        if *read_only { ":ro" } else { "" }
                    )
                }
            })
            .collect();
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
            image: Some(svc.image.clone()),
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
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                binds: Some(binds),
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                network_mode: Some(network.clone()),
                init: Some(true),
                tmpfs,
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
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        let id = id.to_string();
        self.docker.logs(&id, Some(opts)).map(move |item| {
            item.map(|out| String::from_utf8_lossy(&out.into_bytes()).into_owned())
                .map_err(EngineError::api(format!("reading logs of `{id}`")))
        })
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
        use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
        use tokio::io::AsyncWriteExt;
        let action = format!("running `{}` in `{id}`", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd),
            attach_stdin: Some(true),
            tty: Some(tty.is_some()),
            ..Default::default()
        };
        let exec = self.create_exec(id, opts, &action).await?;
        let started = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(EngineError::api(action.clone()))?;
        if let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        {
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
            // Reading stdin blocks, so a plain thread reads it and a task forwards it.
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
            let forward = tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    if input.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                let _ = input.shutdown().await;
            });
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
    pub async fn ensure_network(&self, project: &str) -> Result<(), EngineError> {
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
            labels: Some(HashMap::from([(
                LABEL_PROJECT.to_string(),
                project.to_string(),
            )])),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(()),
            // Lost a race with another devenv: the network is there, which is all we want.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(EngineError::api(format!("creating network `{name}`"))(e)),
        }
    }

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
        project: &str,
        volume: &str,
        spec: &Volume,
    ) -> Result<(), EngineError> {
        let name = volume_name(project, volume);
        let req = VolumeCreateRequest {
            name: Some(name.clone()),
            driver: spec.driver.clone(),
            driver_opts: Some(spec.driver_opts.clone().into_iter().collect()),
            labels: Some(HashMap::from([
                (LABEL_PROJECT.to_string(), project.to_string()),
                ("devenv.volume".to_string(), volume.to_string()),
            ])),
            ..Default::default()
        };
        // Creating an existing volume is a no-op in the Engine API.
        self.docker
            .create_volume(req)
            .await
            .map(drop)
            .map_err(EngineError::api(format!("creating volume `{name}`")))
    }

    pub async fn list_volumes(&self, project: &str) -> Result<Vec<String>, EngineError> {
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
            .map(|v| v.name)
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
