//! The shared router's engine side (issue 28): the containers that carry a
//! route label, and the router's attachments to project networks. What
//! the router serves is decided in `crate::router`; this only reads and
//! connects.

use std::collections::HashMap;

use bollard::models::NetworkConnectRequest;
use bollard::query_parameters::InspectContainerOptions;

use super::{is_not_found, Engine, EngineError, LABEL_DIR, LABEL_ONEOFF, LABEL_PROJECT};
use crate::names::{LABEL_ROUTER, LABEL_ROUTE_HOST, LABEL_ROUTE_PORT, ROUTER_CONTAINER};

/// A service container that asks to be served by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub project: String,
    pub container: String,
    pub host: String,
    pub port: u16,
    /// The stack folder it was made for.
    pub dir: Option<String>,
}

/// The router container as the engine has it.
#[derive(Debug, Clone)]
pub struct RouterContainer {
    pub id: String,
    pub running: bool,
    /// The networks it is attached to, by name.
    pub networks: Vec<String>,
    /// Host ports its 80 and 443 are published on.
    pub http: Option<u16>,
    pub https: Option<u16>,
}

impl Engine {
    /// Every container of every project that carries a route label (one-offs
    /// never do; they are left out all the same).
    pub async fn routed_containers(&self) -> Result<Vec<Routed>, EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![LABEL_ROUTE_HOST.to_string()])]);
        Ok(self
            .list_matching(filters)
            .await?
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                if labels.contains_key(LABEL_ONEOFF) {
                    return None;
                }
                Some(Routed {
                    project: labels.get(LABEL_PROJECT)?.clone(),
                    container: c.names?.first()?.trim_start_matches('/').to_string(),
                    host: labels.get(LABEL_ROUTE_HOST)?.clone(),
                    port: labels.get(LABEL_ROUTE_PORT)?.parse().ok()?,
                    dir: labels.get(LABEL_DIR).cloned(),
                })
            })
            .collect())
    }

    /// The router container, when one labelled as devenv's router holds its
    /// name; `(None, true)` when a container of someone else's does, which
    /// the caller refuses to touch.
    pub async fn router_container(&self) -> Result<(Option<RouterContainer>, bool), EngineError> {
        let info = match self
            .docker
            .inspect_container(ROUTER_CONTAINER, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok((None, false)),
            Err(e) => {
                return Err(EngineError::api(format!(
                    "inspecting container `{ROUTER_CONTAINER}`"
                ))(e))
            }
        };
        let labels = info
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if !labels.contains_key(LABEL_ROUTER) {
            return Ok((None, true));
        }
        let settings = info.network_settings.unwrap_or_default();
        let mut networks: Vec<String> = settings.networks.unwrap_or_default().into_keys().collect();
        networks.sort();
        let host_port = |port: &str| {
            settings
                .ports
                .as_ref()?
                .get(port)?
                .as_ref()?
                .iter()
                .find_map(|b| b.host_port.as_deref()?.parse().ok())
        };
        Ok((
            Some(RouterContainer {
                id: info.id.unwrap_or_default(),
                running: info.state.and_then(|s| s.running).unwrap_or(false),
                http: host_port("80/tcp"),
                https: host_port("443/tcp"),
                networks,
            }),
            false,
        ))
    }

    /// Attaches a container to a network; already attached is fine.
    pub async fn connect_network(&self, network: &str, id: &str) -> Result<(), EngineError> {
        let req = NetworkConnectRequest {
            container: id.to_string(),
            ..Default::default()
        };
        match self.docker.connect_network(network, req).await {
            Ok(()) => Ok(()),
            // 403 with "already exists in network": what we want is there.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 403,
                message,
            }) if message.contains("already") => Ok(()),
            Err(e) => Err(EngineError::api(format!(
                "connecting `{id}` to network `{network}`"
            ))(e)),
        }
    }

    /// Detaches a container from a network; not attached (or either gone) is fine.
    pub async fn disconnect_network(&self, network: &str, id: &str) -> Result<(), EngineError> {
        let req = bollard::models::NetworkDisconnectRequest {
            container: id.to_string(),
            force: Some(true),
        };
        match self.docker.disconnect_network(network, req).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 403 | 500,
                message,
            }) if message.contains("not connected") => Ok(()),
            Err(e) => Err(EngineError::api(format!(
                "disconnecting `{id}` from network `{network}`"
            ))(e)),
        }
    }

    /// Removes a network by name, only when it carries `label` (devenv's
    /// router network, never a network of someone else's by that name).
    pub async fn remove_labelled_network(
        &self,
        name: &str,
        label: &str,
    ) -> Result<bool, EngineError> {
        let labels = match self
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(n) => n.labels.unwrap_or_default(),
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(EngineError::api(format!("inspecting network `{name}`"))(e)),
        };
        if !labels.contains_key(label) {
            return Ok(false);
        }
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(EngineError::api(format!("removing network `{name}`"))(e)),
        }
    }
}
