//! Containers in the Engine API's terms once they exist: the one-pass
//! listings the lifecycle's observe step reads a project from, start, stop,
//! restart, remove, inspect and wait. Making them from the planner's specs
//! is `create`'s; their logs are `logs`'.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, ListVolumesOptions, RemoveContainerOptions,
    RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;

use super::{
    is_not_found, network_name, project_filter, ContainerEnv, ContainerInfo, ContainerStatus,
    Engine, EngineError, HostBinding, Named, LABEL_DIR, LABEL_HASH, LABEL_ONEOFF, LABEL_PROJECT,
    LABEL_SERVICE,
};
use crate::config::model::Protocol;
use crate::plan::{Binding, ImageInfo, Observed, ObservedVolume};

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

    /// The env and command container `id` was created with; `None` when
    /// it is gone (removed between a listing and this look).
    pub async fn container_env(&self, id: &str) -> Result<Option<ContainerEnv>, EngineError> {
        let info = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(EngineError::api(format!("inspecting container `{id}`"))(e)),
        };
        let config = info.config.unwrap_or_default();
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect();
        Ok(Some(ContainerEnv {
            env,
            command: config.cmd.unwrap_or_default(),
        }))
    }

    /// The host bindings a container was made with (container port,
    /// binding): what a stopped one publishes once started, which the
    /// listing does not show.
    pub async fn configured_ports(&self, id: &str) -> Result<Vec<(u16, Binding)>, EngineError> {
        let info = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::api(format!("inspecting container `{id}`"))(e)),
        };
        let bindings = info
            .host_config
            .and_then(|h| h.port_bindings)
            .unwrap_or_default();
        let mut out = Vec::new();
        for (key, binds) in bindings {
            let (port, protocol) = key.split_once('/').unwrap_or((&key, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let protocol = match protocol {
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            for b in binds.unwrap_or_default() {
                let Some(host) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
                    continue;
                };
                let binding = Binding {
                    host_ip: b.host_ip.filter(|ip| !ip.is_empty()),
                    port: host,
                    protocol,
                };
                out.push((port, binding));
            }
        }
        out.sort_by_key(|(to, b)| (*to, b.port));
        Ok(out)
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
