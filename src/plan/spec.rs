//! Engine-neutral descriptions of the objects `up` makes: a container, the
//! project network, a volume. The planner fills them from the resolved
//! model; only the engine turns them into Docker API types, so what a dry
//! run prints is exactly what `up` would ask the engine for.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::model::{EnvValue, Mount, Port, Restart, Service, Stack};
use crate::image_ref::ImageRef;
use crate::names::{
    anonymous_volume_name, container_name, network_name, volume_name, LABEL_ANONYMOUS, LABEL_DIR,
    LABEL_HASH, LABEL_ONEOFF, LABEL_PARTS, LABEL_PROJECT, LABEL_ROUTE_HOST, LABEL_ROUTE_PORT,
    LABEL_SERVICE,
};

/// One container as devenv wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub service: String,
    /// The image reference it runs (a stand-in tag when the registry was out of reach).
    pub image: ImageRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// In order; a secret value stays an [`EnvValue`] (masked when printed)
    /// until the engine hands it to Docker.
    pub env: IndexMap<String, EnvValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `None` for a one-off: a hostname would shadow the service's DNS name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    pub mounts: Vec<MountSpec>,
    /// Labelled volumes made before the container (its anonymous volumes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    pub restart: Restart,
    pub network: String,
    /// DNS names on the project network; none for a one-off, so that
    /// `cache` keeps meaning the service.
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    pub tty: bool,
    /// Keep stdin open for the user's input (`devenv run`).
    pub stdin: bool,
    /// The config hash label (empty while the image is still to be made).
    pub hash: String,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountSpec {
    /// A host path.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named volume (devenv's, or an external one).
    Volume {
        source: String,
        target: String,
        read_only: bool,
    },
    /// A volume Docker names itself, removed with the container (one-offs' scratch space).
    Anonymous { target: String, read_only: bool },
    /// A fresh tmpfs with mount options.
    Tmpfs { target: String, options: String },
}

/// A volume devenv makes and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The project network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
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

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn network(project: &str, dir: &str) -> NetworkSpec {
    NetworkSpec {
        name: network_name(project),
        labels: labels(&[(LABEL_PROJECT, project), (LABEL_DIR, dir)]),
    }
}

pub fn volume(
    project: &str,
    dir: &str,
    name: &str,
    vol: &crate::config::model::Volume,
) -> VolumeSpec {
    VolumeSpec {
        name: volume_name(project, name),
        driver: vol.driver.clone(),
        driver_opts: vol.driver_opts.clone(),
        labels: labels(&[
            (LABEL_PROJECT, project),
            (LABEL_DIR, dir),
            ("devenv.volume", name),
        ]),
    }
}

/// The anonymous volume paths of a service, with whether each is read-only:
/// the ones the stack file declares (`volumes = ["/app/node_modules"]`) and
/// the image's `VOLUME`s that no mount covers. devenv gives each a labelled
/// volume of its own, so the data outlives the container (a recreate, a
/// plain `down`) and goes only with `down -v`.
pub fn anonymous_targets(svc: &Service, image_volumes: &[String]) -> Vec<(String, bool)> {
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
pub fn tmpfs_options(user: Option<&str>) -> String {
    let mut ids = user.unwrap_or("0").splitn(2, ':');
    let uid = ids.next().and_then(|u| u.parse::<u32>().ok());
    let gid = ids.next().and_then(|g| g.parse::<u32>().ok());
    match (uid, gid) {
        (Some(u), Some(g)) => format!("uid={u},gid={g}"),
        (Some(u), None) => format!("uid={u}"),
        _ => "mode=1777".to_string(),
    }
}

/// The named and bind mounts of a service (not its anonymous volumes).
fn declared_mounts(stack: &Stack, svc: &Service) -> Vec<MountSpec> {
    svc.volumes
        .iter()
        .filter_map(|m| match m {
            Mount::Anonymous { .. } => None,
            Mount::Volume {
                name,
                target,
                read_only,
            } => {
                let external = stack.volumes.get(name).and_then(|v| v.external_name(name));
                Some(MountSpec::Volume {
                    source: match external {
                        Some(external) => external.to_string(),
                        None => volume_name(&stack.project, name),
                    },
                    target: target.clone(),
                    read_only: *read_only,
                })
            }
            Mount::Bind {
                source,
                target,
                read_only,
            } => Some(MountSpec::Bind {
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
            }),
        })
        .collect()
}

fn base(stack: &Stack, svc: &Service, name: String, dir: &str) -> ContainerSpec {
    ContainerSpec {
        name,
        service: svc.name.clone(),
        image: svc.image.clone(),
        command: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        env: svc.env.clone(),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        hostname: Some(svc.name.clone()),
        labels: labels(&[
            (LABEL_PROJECT, &stack.project),
            (LABEL_SERVICE, &svc.name),
            (LABEL_DIR, dir),
        ]),
        ports: svc.ports.clone(),
        mounts: declared_mounts(stack, svc),
        volumes: Vec::new(),
        restart: svc.restart,
        network: network_name(&stack.project),
        aliases: vec![svc.name.clone()],
        extra_hosts: svc.extra_hosts.clone(),
        tty: false,
        stdin: false,
        hash: String::new(),
    }
}

/// The service's own container. `svc.image` is the reference it runs;
/// `image_volumes` the image's `VOLUME`s. Each anonymous volume is a
/// labelled volume of devenv's, except where `carried` (container path →
/// volume, from the container it replaces) names one of Docker's own: that
/// is mounted again, as Compose carries anonymous volumes over to a
/// recreated container (it keeps the data of containers made before the
/// labels).
pub fn service(
    stack: &Stack,
    svc: &Service,
    dir: &str,
    image_volumes: &[String],
    carried: &BTreeMap<String, String>,
    hash: &str,
    parts: &str,
) -> ContainerSpec {
    let project = &stack.project;
    let mut spec = base(stack, svc, container_name(project, &svc.name), dir);
    spec.hash = hash.to_string();
    spec.labels.insert(LABEL_HASH.into(), hash.to_string());
    if !parts.is_empty() {
        spec.labels.insert(LABEL_PARTS.into(), parts.to_string());
    }
    // What the shared router reads to serve the service by name (issue 28):
    // the engine's labels are its only source, so a killed devenv leaves
    // nothing for it to disagree with.
    if let Some((host, port)) = svc.route() {
        spec.labels.insert(LABEL_ROUTE_HOST.into(), host);
        spec.labels
            .insert(LABEL_ROUTE_PORT.into(), port.to_string());
    }
    for (target, read_only) in anonymous_targets(svc, image_volumes) {
        let source = match carried.get(&target) {
            Some(volume) => volume.clone(),
            None => {
                let name = anonymous_volume_name(project, &svc.name, &target);
                spec.volumes.push(VolumeSpec {
                    name: name.clone(),
                    driver: None,
                    driver_opts: BTreeMap::new(),
                    labels: labels(&[
                        (LABEL_PROJECT, project),
                        (LABEL_DIR, dir),
                        (LABEL_SERVICE, &svc.name),
                        (LABEL_ANONYMOUS, &target),
                    ]),
                });
                name
            }
        };
        spec.mounts.push(MountSpec::Volume {
            source,
            target,
            read_only,
        });
    }
    spec
}

/// A one-off container of `svc` (as `prepare_oneoff` returned it); `user`
/// is the user its writable folders are given to (the service's, else the
/// image's).
pub fn oneoff(
    stack: &Stack,
    svc: &Service,
    dir: &str,
    oneoff: &OneOff,
    user: Option<&str>,
) -> ContainerSpec {
    let mut spec = base(stack, svc, oneoff.name.clone(), dir);
    spec.hash = "oneoff".into();
    spec.labels.insert(LABEL_HASH.into(), "oneoff".into());
    spec.labels.insert(LABEL_ONEOFF.into(), "true".into());
    spec.command = Some(oneoff.command.clone());
    spec.hostname = None;
    spec.aliases.clear();
    spec.tty = oneoff.tty;
    spec.stdin = oneoff.stdin;
    // Docker's own anonymous volumes: scratch space, removed with the
    // container (declared ones come from mounts: an anonymous volume
    // cannot be a bind).
    for m in &svc.volumes {
        if let Mount::Anonymous { target, read_only } = m {
            spec.mounts.push(MountSpec::Anonymous {
                target: target.clone(),
                read_only: *read_only,
            });
        }
    }
    let options = tmpfs_options(user);
    for target in &oneoff.tmpfs {
        spec.mounts.push(MountSpec::Tmpfs {
            target: target.clone(),
            options: options.clone(),
        });
    }
    spec
}
