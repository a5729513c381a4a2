//! Containers in the Engine API's terms: what the planner's specs become
//! (`create_container`), and the one-pass listings the lifecycle's observe
//! step reads a project from.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, EndpointSettings, HostConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
};

use super::{is_not_found, project_filter, Engine, EngineError, LABEL_ONEOFF};
use crate::config::model::{Protocol, Restart};
use crate::plan::{
    Binding, ContainerSpec, ImageInfo, MountSpec, NetworkSpec, Observed, ObservedVolume, VolumeSpec,
};

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
                Some(Binding {
                    host_ip: p.ip.filter(|ip| !ip.is_empty()),
                    port: p.public_port?,
                    protocol,
                })
            })
            .collect(),
    }
}

impl Engine {
    async fn observe(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<Observed>, EngineError> {
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
        Ok(list.into_iter().map(observed).collect())
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
        // The engine's name filter matches parts of names: compare exactly.
        let filters = HashMap::from([("name".to_string(), names.to_vec())]);
        let mut found = self.observe(filters).await?;
        found.retain(|c| names.contains(&c.name));
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
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: Some(p.host.map(|h| h.to_string()).unwrap_or_default()),
                });
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
            image: Some(spec.image.clone()),
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
}
