//! Engine-wide views for several checkouts side by side: which host ports
//! the running containers publish, and which folder each devenv project on
//! the engine belongs to (from the labels on its containers, networks and
//! volumes).

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, ListVolumesOptions};

use super::{Engine, EngineError, LABEL_DIR, LABEL_PROJECT};

/// One devenv object's project and folder (`None`: made before devenv
/// recorded folders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectClaim {
    pub project: String,
    pub dir: Option<String>,
}

impl Engine {
    /// The host ports published by every running container on the engine,
    /// devenv's or not, each with the name of a container publishing it.
    pub async fn published_host_ports(&self) -> Result<BTreeMap<u16, String>, EngineError> {
        let list = self
            .docker
            .list_containers(None::<ListContainersOptions>)
            .await
            .map_err(EngineError::api("listing containers"))?;
        let mut out = BTreeMap::new();
        for c in &list {
            let name = c
                .names
                .iter()
                .flatten()
                .next()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            for p in c.ports.iter().flatten() {
                if let Some(port) = p.public_port {
                    out.entry(port).or_insert_with(|| name.clone());
                }
            }
        }
        Ok(out)
    }

    /// The project and folder of every devenv container, network and volume.
    pub async fn project_claims(&self) -> Result<Vec<ProjectClaim>, EngineError> {
        let labelled = || HashMap::from([("label".to_string(), vec![LABEL_PROJECT.to_string()])]);
        let claim = |labels: &HashMap<String, String>| {
            Some(ProjectClaim {
                project: labels.get(LABEL_PROJECT)?.clone(),
                dir: labels.get(LABEL_DIR).cloned(),
            })
        };
        let containers = self.docker.list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(labelled()),
            ..Default::default()
        }));
        let networks = self.docker.list_networks(Some(ListNetworksOptions {
            filters: Some(labelled()),
        }));
        let volumes = self.docker.list_volumes(Some(ListVolumesOptions {
            filters: Some(labelled()),
        }));
        let (containers, networks, volumes) = tokio::join!(containers, networks, volumes);
        let mut out: Vec<ProjectClaim> = Vec::new();
        for c in containers.map_err(EngineError::api("listing containers"))? {
            out.extend(c.labels.as_ref().and_then(claim));
        }
        for n in networks.map_err(EngineError::api("listing networks"))? {
            out.extend(n.labels.as_ref().and_then(claim));
        }
        for v in volumes
            .map_err(EngineError::api("listing volumes"))?
            .volumes
            .unwrap_or_default()
        {
            out.extend(claim(&v.labels));
        }
        out.sort_by(|a, b| (&a.project, &a.dir).cmp(&(&b.project, &b.dir)));
        out.dedup();
        Ok(out)
    }
}
