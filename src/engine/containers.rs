//! Containers in the Engine API's terms: what the planner's specs become
//! (`create_container`), and the one-pass listings the lifecycle's observe
//! step reads a project from.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, EndpointSettings, HostConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RestartContainerOptions,
    StartContainerOptions, StopContainerOptions,
};
use futures_util::{Stream, StreamExt};

use super::{
    is_not_found, network_name, project_filter, ContainerInfo, ContainerStatus, Engine,
    EngineError, HostBinding, LogsFrom, Named, LABEL_DIR, LABEL_HASH, LABEL_ONEOFF, LABEL_PROJECT,
    LABEL_SERVICE,
};
use crate::config::model::{Protocol, Restart};
use crate::plan::{
    Binding, ContainerSpec, ImageInfo, MountSpec, NetworkSpec, Observed, ObservedVolume, VolumeSpec,
};

/// The engine's `name` filter (a regular expression) for the longest
/// prefix every one of `names` shares: `shop-` for `shop-web-1`,
/// `shop-db-1`, …; empty (every container) when they share none.
fn name_filter(names: &[String]) -> String {
    let first = names.first().map_or("", String::as_str);
    let mut len = first.len();
    for n in names {
        len = len.min(n.len());
        while !n.is_char_boundary(len) || !first.is_char_boundary(len) || n[..len] != first[..len] {
            len -= 1;
        }
    }
    first[..len]
        .chars()
        .map(|c| match c {
            '_' | '-' => c.to_string(),
            c if c.is_ascii_punctuation() => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect()
}

fn observed(c: ContainerSummary) -> Observed {
    Observed {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        labels: c.labels.unwrap_or_default().into_iter().collect(),
        image_id: c.image_id.unwrap_or_default(),
        volume_mounts: c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| Some((m.destination?, m.name?)))
            .collect(),
        published: c
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let protocol = match p.typ.map(|t| t.to_string()).as_deref() {
                    Some("udp") => Protocol::Udp,
                    Some("sctp") => Protocol::Sctp,
                    _ => Protocol::Tcp,
                };
                let binding = Binding {
                    host_ip: p.ip.filter(|ip| !ip.is_empty()),
                    port: p.public_port?,
                    protocol,
                };
                Some((p.private_port, binding))
            })
            .collect(),
    }
}

impl Engine {
    /// The containers that match `filters`, stopped ones too: the one
    /// listing call the planner's and the commands' views share.
    pub(super) async fn list_matching(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        self.docker
            .list_containers(Some(opts))
            .await
            .map_err(EngineError::api("listing containers"))
    }

    async fn observe(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<Observed>, EngineError> {
        Ok(self
            .list_matching(filters)
            .await?
            .into_iter()
            .map(observed)
            .collect())
    }

    /// The project's containers (by label), one-offs included.
    pub async fn observe_containers(&self, project: &str) -> Result<Vec<Observed>, EngineError> {
        self.observe(project_filter(project, &[])).await
    }

    /// The containers holding any of `names`, whoever made them.
    pub async fn observe_named(&self, names: &[String]) -> Result<Vec<Observed>, EngineError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // One name filter whatever the stack's size: one value per name
        // made a query string that 10,000 services pushed past what the
        // engine reads ("uri too long"). The filter is a regular expression
        // matched against parts of names; the exact match is made here.
        let filters = HashMap::from([("name".to_string(), vec![name_filter(names)])]);
        let wanted: std::collections::HashSet<&String> = names.iter().collect();
        let mut found = self.observe(filters).await?;
        found.retain(|c| wanted.contains(&c.name));
        Ok(found)
    }

    /// The project's volumes (by label), with their drivers and options.
    pub async fn observe_volumes(&self, project: &str) -> Result<Vec<ObservedVolume>, EngineError> {
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
            .map(|v| ObservedVolume {
                name: v.name,
                labels: v.labels.into_iter().collect(),
                driver: v.driver,
                options: v.options.into_iter().collect(),
            })
            .collect())
    }

    /// Id, user and `VOLUME`s of an image, from one inspect; `None` when
    /// the engine does not have it.
    pub async fn image_info(&self, name: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(name).await {
            Ok(img) => {
                let config = img.config.unwrap_or_default();
                Ok(Some(ImageInfo {
                    id: img.id.unwrap_or_default(),
                    user: config.user.filter(|u| !u.is_empty()),
                    volumes: config.volumes.unwrap_or_default().into_iter().collect(),
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting image `{name}`"))(e)),
        }
    }

    /// Creates the container a spec describes (after the labelled volumes
    /// it names); returns its id.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        for v in &spec.volumes {
            self.ensure_volume(v).await?;
        }
        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &spec.ports {
            let proto = match p.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            let key = format!("{}/{proto}", p.container);
            exposed.push(key.clone());
            let host_port = Some(p.host.map(|h| h.to_string()).unwrap_or_default());
            let list = bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new);
            list.push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: host_port.clone(),
            });
            if p.loopback_v6 && p.host.is_some() {
                list.push(PortBinding {
                    host_ip: Some(crate::config::model::LOOPBACK_V6.to_string()),
                    host_port,
                });
            }
        }
        let ro = |read_only: bool| if read_only { ":ro" } else { "" };
        let mut binds = Vec::new();
        let mut mounts = Vec::new();
        let mut tmpfs = HashMap::new();
        for m in &spec.mounts {
            match m {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => binds.push(format!("{}:{target}{}", source.display(), ro(*read_only))),
                MountSpec::Volume {
                    source,
                    target,
                    read_only,
                } => binds.push(format!("{source}:{target}{}", ro(*read_only))),
                MountSpec::Anonymous { target, read_only } => mounts.push(bollard::models::Mount {
                    target: Some(target.clone()),
                    typ: Some(bollard::models::MountType::VOLUME),
                    read_only: Some(*read_only),
                    ..Default::default()
                }),
                MountSpec::Tmpfs { target, options } => {
                    tmpfs.insert(target.clone(), options.clone());
                }
            }
        }
        let restart = match spec.restart {
            Restart::No => RestartPolicyNameEnum::NO,
            Restart::Always => RestartPolicyNameEnum::ALWAYS,
            Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
            Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        };
        let endpoint = EndpointSettings {
            aliases: (!spec.aliases.is_empty()).then(|| spec.aliases.clone()),
            ..Default::default()
        };
        // A one-off's terminal settings; a service's container leaves them to the image.
        let oneoff = spec.labels.contains_key(LABEL_ONEOFF);
        let body = ContainerCreateBody {
            image: Some(spec.image.to_string()),
            cmd: spec.command.clone(),
            entrypoint: spec.entrypoint.clone(),
            // The one place a secret's raw value leaves devenv: into the container.
            env: Some(
                spec.env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.value))
                    .collect(),
            ),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: Some(exposed),
            hostname: spec.hostname.clone(),
            tty: oneoff.then_some(spec.tty),
            open_stdin: oneoff.then_some(spec.stdin),
            stdin_once: oneoff.then_some(spec.stdin),
            attach_stdin: oneoff.then_some(spec.stdin),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                binds: Some(binds),
                mounts: (!mounts.is_empty()).then_some(mounts),
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                network_mode: Some(spec.network.clone()),
                init: Some(true),
                tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
                extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let name = &spec.name;
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

    /// Creates the project network unless it exists.
    pub async fn ensure_network(&self, spec: &NetworkSpec) -> Result<(), EngineError> {
        let name = &spec.name;
        let filters = HashMap::from([("name".to_string(), vec![name.clone()])]);
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(EngineError::api("listing networks"))?;
        // The name filter matches substrings: compare exactly.
        if existing.iter().any(|n| n.name.as_deref() == Some(name)) {
            return Ok(());
        }
        let req = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(created) => self.settle_network_race(name, &created.id).await,
            // Lost a race with another devenv: the network is there, which is all we want.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(EngineError::api(format!("creating network `{name}`"))(e)),
        }
    }

    /// Whether the engine has a volume of this name (an external one, which
    /// devenv must not create by mounting it).
    pub async fn volume_exists(&self, name: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(EngineError::api(format!("inspecting volume `{name}`"))(e)),
        }
    }

    /// Creates a labelled volume; creating an existing one is a no-op in the Engine API.
    pub async fn ensure_volume(&self, spec: &VolumeSpec) -> Result<(), EngineError> {
        let req = VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            driver_opts: Some(spec.driver_opts.clone().into_iter().collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map(drop)
            .map_err(EngineError::api(format!("creating volume `{}`", spec.name)))
    }

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
        Ok(self
            .list_matching(filters)
            .await?
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

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        match self
            .docker
            .start_container(id, None::<StartContainerOptions>)
            .await
        {
            // 304: already started (a killed run's start landed first).
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            r => r.map_err(EngineError::api(format!("starting container `{id}`"))),
        }
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
    /// container someone else made, which is never devenv's to remove. The
    /// removal goes by the id that was checked, never by the name, which
    /// could by then be another container's.
    pub async fn remove_project_container(
        &self,
        name: &str,
        project: &str,
    ) -> Result<(), EngineError> {
        match self.named_container(name).await? {
            Some(c) if c.labels.get(LABEL_PROJECT).map(String::as_str) == Some(project) => {
                self.remove_container(&c.id).await
            }
            _ => Ok(()),
        }
    }

    /// The container holding a name (or id) right now, or `None`.
    pub async fn named_container(&self, name: &str) -> Result<Option<Named>, EngineError> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => Ok(Some(Named {
                id: info.id.unwrap_or_default(),
                labels: info.config.and_then(|c| c.labels).unwrap_or_default(),
            })),
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
        let mut bindings = Vec::new();
        for (key, binds) in settings.ports.unwrap_or_default() {
            let (port, protocol) = key.split_once('/').unwrap_or((&key, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for b in binds.unwrap_or_default() {
                let Some(h) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
                    continue;
                };
                published.entry(port).or_insert(h);
                bindings.push(HostBinding {
                    container: port,
                    protocol: protocol.to_string(),
                    host_ip: b.host_ip.unwrap_or_default(),
                    host: h,
                });
            }
        }
        bindings.sort();
        bindings.dedup();
        Ok(ContainerStatus {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            health: state.health.and_then(|h| h.status).map(|s| s.to_string()),
            ip,
            published,
            bindings,
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
        self.log_bytes(id, from, follow)
            .map(|item| item.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// [`Engine::logs_from`] as the engine's frames, undecoded: `logs`
    /// decodes each line in place, without a copy per line.
    pub fn log_bytes(
        &self,
        id: &str,
        from: &LogsFrom,
        follow: bool,
    ) -> impl Stream<Item = Result<bytes::Bytes, EngineError>> + Send + 'static {
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
        let action = format!("reading logs of `{id}`");
        // A local engine is read straight off its socket (see `logread`):
        // bollard hands over one line per item.
        if let Some(socket) = self.unix_socket() {
            let target = format!(
                "/v{}/containers/{id}/logs?follow={}&stdout=true&stderr=true&since={}&timestamps={}&tail={}",
                self.docker.client_version(),
                opts.follow,
                opts.since,
                opts.timestamps,
                opts.tail,
            );
            return super::logread::read(super::logread::Request { socket, target })
                .map(move |item| item.map_err(EngineError::api(action.clone())))
                .left_stream();
        }
        self.docker
            .logs(id, Some(opts))
            .map(move |item| {
                item.map(|out| out.into_bytes())
                    .map_err(EngineError::api(action.clone()))
            })
            .right_stream()
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

    /// The engine's clock now (RFC 3339), which its log timestamps and
    /// containers' start times are read against: the host's clock may differ
    /// (a remote engine, a VM).
    pub async fn now(&self) -> Result<String, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(EngineError::api("reading the engine's clock".to_string()))?;
        Ok(info.system_time.unwrap_or_default())
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
}

#[cfg(test)]
mod tests {
    use super::name_filter;

    #[test]
    fn r31_one_short_name_filter_whatever_the_stack_size() {
        let names: Vec<String> = (0..10_000).map(|i| format!("big.shop-s{i}-1")).collect();
        assert_eq!(name_filter(&names), "big\\.shop-s");
        assert_eq!(name_filter(&names[..1]), "big\\.shop-s0-1");
        let apart = ["a-web-1".to_string(), "b-web-1".to_string()];
        assert_eq!(name_filter(&apart), "");
    }
}
