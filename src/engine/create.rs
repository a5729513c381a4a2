//! The planner's specs made on the engine: a [`ContainerSpec`] becomes the
//! Engine API's create body (published ports, mounts, restart policy, the
//! project network's endpoint), after the labelled volumes it names; and
//! the project network and volumes themselves.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptions, ListNetworksOptions};

use super::{is_not_found, Engine, EngineError, LABEL_ONEOFF};
use crate::config::model::{Protocol, Restart, LOOPBACK_V6};
use crate::plan::{ContainerSpec, MountSpec, NetworkSpec, VolumeSpec};

/// The host config's port bindings, keyed like the exposed ports (`80/tcp`).
type PortBindings = HashMap<String, Option<Vec<PortBinding>>>;

impl Engine {
    /// Creates the container a spec describes (after the labelled volumes
    /// it names); returns its id.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        for v in &spec.volumes {
            self.ensure_volume(v).await?;
        }
        let name = &spec.name;
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(opts), create_body(spec))
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
}

/// The Engine API's create body for a spec.
fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let (exposed, bindings) = published_ports(spec);
    let endpoint = EndpointSettings {
        aliases: (!spec.aliases.is_empty()).then(|| spec.aliases.clone()),
        ..Default::default()
    };
    // A one-off's terminal settings; a service's container leaves them to the image.
    let oneoff = spec.labels.contains_key(LABEL_ONEOFF);
    ContainerCreateBody {
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
        host_config: Some(host_config(spec, bindings)),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
        }),
        ..Default::default()
    }
}

/// The spec's host side: port bindings, mounts, restart policy, network.
fn host_config(spec: &ContainerSpec, bindings: PortBindings) -> HostConfig {
    let Mounts {
        binds,
        mounts,
        tmpfs,
    } = Mounts::of(spec);
    HostConfig {
        port_bindings: Some(bindings),
        binds: Some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        restart_policy: Some(RestartPolicy {
            name: Some(restart_policy(spec.restart)),
            maximum_retry_count: None,
        }),
        network_mode: Some(spec.network.clone()),
        init: Some(true),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        ..Default::default()
    }
}

/// The exposed ports (`80/tcp`) and each one's host bindings: the given
/// address, plus `[::1]` at the same host port for a `loopback_v6` mapping.
fn published_ports(spec: &ContainerSpec) -> (Vec<String>, PortBindings) {
    let mut exposed = Vec::new();
    let mut bindings = PortBindings::new();
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
                host_ip: Some(LOOPBACK_V6.to_string()),
                host_port,
            });
        }
    }
    (exposed, bindings)
}

/// A spec's mounts in the three forms the host config takes them: named
/// volumes and host paths as `binds`, anonymous volumes as `mounts` (a
/// bind string cannot leave the name to the engine), tmpfs by target.
struct Mounts {
    binds: Vec<String>,
    mounts: Vec<Mount>,
    tmpfs: HashMap<String, String>,
}

impl Mounts {
    fn of(spec: &ContainerSpec) -> Mounts {
        let ro = |read_only: bool| if read_only { ":ro" } else { "" };
        let mut out = Mounts {
            binds: Vec::new(),
            mounts: Vec::new(),
            tmpfs: HashMap::new(),
        };
        for m in &spec.mounts {
            match m {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => out
                    .binds
                    .push(format!("{}:{target}{}", source.display(), ro(*read_only))),
                MountSpec::Volume {
                    source,
                    target,
                    read_only,
                } => out
                    .binds
                    .push(format!("{source}:{target}{}", ro(*read_only))),
                MountSpec::Anonymous { target, read_only } => out.mounts.push(Mount {
                    target: Some(target.clone()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(*read_only),
                    ..Default::default()
                }),
                MountSpec::Tmpfs { target, options } => {
                    out.tmpfs.insert(target.clone(), options.clone());
                }
            }
        }
        out
    }
}

fn restart_policy(restart: Restart) -> RestartPolicyNameEnum {
    match restart {
        Restart::No => RestartPolicyNameEnum::NO,
        Restart::Always => RestartPolicyNameEnum::ALWAYS,
        Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
        Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
    }
}
