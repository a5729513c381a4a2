//! Where a service may write in the cluster: scratch emptyDirs under the
//! read-only root filesystem, and volume claims for the services that keep data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::names;
use super::settings::{Kind, Settings};
use super::ExportError;
use crate::config::model::Mount;

use super::objects::{meta, Placed};

/// Where a service may write: scratch emptyDirs under the read-only root,
/// and claims for the named volumes of services that keep data.
pub(crate) struct Storage {
    pub stateful: bool,
    pub scratch: Vec<String>,
    /// Claim name, mount path.
    pub claims: Vec<(String, String)>,
}

impl Storage {
    pub(crate) fn of(placed: &Placed<'_>, settings: &Settings) -> Result<Self, ExportError> {
        let service = placed.service;
        let mut scratch = settings
            .service(&service.name)
            .writable
            .clone()
            .unwrap_or_else(|| {
                let mut paths = vec!["/tmp".to_string()];
                if placed.kind == Kind::Postgres && !placed.app {
                    paths.push("/var/run/postgresql".into());
                }
                if placed.kind == Kind::Mysql && !placed.app {
                    // The server's socket and pid file.
                    paths.push("/var/run/mysqld".into());
                }
                paths
            });
        let mut claims = Vec::new();
        for mount in &service.volumes {
            // Bind mounts carry source code and local config, which the cluster image has built in.
            let Mount::Volume { name, target, .. } = mount else {
                continue;
            };
            if scratch.contains(target) {
                continue;
            }
            if placed.app {
                return Err(ExportError::AppVolume {
                    service: service.name.clone(),
                    volume: name.clone(),
                    target: target.clone(),
                });
            }
            claims.push((names::to_label(name), target.clone()));
        }
        let data_path = match placed.kind {
            Kind::Postgres => Some("/var/lib/postgresql/data"),
            Kind::Mysql => Some("/var/lib/mysql"),
            Kind::Redis | Kind::S3 => Some("/data"),
            Kind::Memcached | Kind::Mail | Kind::Generic => None,
        };
        if let Some(path) = data_path.filter(|_| !placed.app && claims.is_empty()) {
            claims.push(("data".into(), path.into()));
        }
        scratch.dedup();
        Ok(Self {
            stateful: !claims.is_empty(),
            scratch,
            claims,
        })
    }

    pub(crate) fn scratch_name(path: &str) -> String {
        let name = names::to_label(path);
        if name.is_empty() {
            "root".into()
        } else {
            name
        }
    }

    pub(crate) fn mounts(&self) -> Vec<VolumeMount> {
        let scratch = self
            .scratch
            .iter()
            .map(|path| (Self::scratch_name(path), path.clone()));
        scratch
            .chain(self.claims.iter().cloned())
            .map(|(name, mount_path)| VolumeMount {
                name,
                mount_path,
                ..Default::default()
            })
            .collect()
    }

    pub(crate) fn volumes(&self) -> Vec<Volume> {
        self.scratch
            .iter()
            .map(|path| Volume {
                name: Self::scratch_name(path),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            })
            .collect()
    }

    pub(crate) fn claim_templates(
        &self,
        settings: &Settings,
        labels: &BTreeMap<String, String>,
    ) -> Vec<PersistentVolumeClaim> {
        self.claims
            .iter()
            .map(|(name, _)| PersistentVolumeClaim {
                metadata: meta(name, labels),
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: settings.stack.storage_class.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(settings.storage_size().into()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    }
}
