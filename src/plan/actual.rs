//! What the engine has for a project, as the planner reads it: the
//! project's containers, network, volumes and images, and what the host
//! lacks (bind sources, external volumes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::host_ports::TakenBy;
use super::{Invoker, PathKind};
use crate::config::model::{Port, Protocol};
use crate::names::{LABEL_HASH, LABEL_ONEOFF, LABEL_SERVICE};

/// What the engine has for a project, read in one pass by the lifecycle.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// The stack's folder as devenv labels objects with it.
    pub dir: String,
    /// Of the folders labels name, those that still exist on the host (a
    /// project whose folder is gone was moved: its objects are adopted).
    pub existing_dirs: BTreeSet<String>,
    /// The project's containers (by label), one-offs included.
    pub containers: Vec<Observed>,
    /// Containers holding a name the project's services need, whoever made them.
    pub named: Vec<Observed>,
    /// The project network's labels, when it exists.
    pub network: Option<BTreeMap<String, String>>,
    /// The project's volumes (by label).
    pub volumes: Vec<ObservedVolume>,
    /// Images the engine has, by the reference asked for; a missing key is
    /// an image it does not have.
    pub images: BTreeMap<String, ImageInfo>,
    /// Bind sources of the stack that do not exist on the host.
    pub missing_paths: BTreeSet<PathBuf>,
    /// Who runs devenv: whom what `--create-paths` makes belongs to.
    pub invoker: Invoker,
    /// External volumes (by the engine's name) the engine does not have.
    pub missing_volumes: BTreeSet<String>,
    /// For a missing bind source, what its image has at the container path,
    /// by (service, container path); absent where the image lacks the path,
    /// has a link there, or was not on the engine to ask.
    pub in_image: BTreeMap<(String, String), PathKind>,
    /// What holds host ports on the engine's machine, for the planner's
    /// choice of host ports.
    pub host_ports: HostPorts,
}

/// What holds host ports, as observe found it: plain data, so that the
/// planner decides without a socket.
#[derive(Debug, Clone, Default)]
pub struct HostPorts {
    /// The host ports the engine's running containers publish (any
    /// project), each with the name of a container publishing it.
    pub published: BTreeMap<u16, String>,
    /// The engine runs on this machine: a port a local socket cannot bind
    /// is taken there too.
    pub local: bool,
    /// Of the mappings observe tried (see `host_ports::to_check`), those
    /// a local socket could not bind; one it did not try counts as free.
    pub unbindable: BTreeSet<LocalPort>,
}

/// A mapping's host side as a local socket binds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalPort {
    pub host_ip: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    /// Its `[::1]` twin is bound too.
    pub loopback_v6: bool,
}

impl LocalPort {
    pub fn of(p: &Port) -> Option<LocalPort> {
        Some(LocalPort {
            host_ip: p.host_ip.clone(),
            port: p.host?,
            protocol: p.protocol,
            loopback_v6: p.loopback_v6,
        })
    }
}

impl HostPorts {
    /// What holds `port`'s host port, if anything.
    pub fn holder(&self, port: &Port) -> Option<TakenBy> {
        let host = port.host?;
        if let Some(name) = self.published.get(&host) {
            return Some(TakenBy::Container { name: name.clone() });
        }
        let local = LocalPort::of(port)?;
        (self.local && self.unbindable.contains(&local)).then_some(TakenBy::Process)
    }

    /// Whether anything holds `port`'s host port.
    pub fn taken(&self, port: &Port) -> bool {
        self.holder(port).is_some()
    }
}

/// A container as listed by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    /// Docker's word: created, running, exited, …
    pub state: String,
    pub labels: BTreeMap<String, String>,
    /// The id of the image it runs.
    pub image_id: String,
    /// Container path → volume name, of its volume mounts.
    pub volume_mounts: BTreeMap<String, String>,
    /// What it publishes: each container port with its host binding (a
    /// port that once had to move is kept there by `up`).
    pub published: Vec<(u16, Binding)>,
}

impl Observed {
    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
    pub fn service(&self) -> &str {
        self.label(LABEL_SERVICE)
    }
    pub fn hash(&self) -> &str {
        self.label(LABEL_HASH)
    }
    pub fn oneoff(&self) -> bool {
        self.labels.contains_key(LABEL_ONEOFF)
    }
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// A host port binding: `[ip:]port/protocol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

impl Binding {
    /// Whether the two cannot both be bound on one host.
    pub fn overlaps(&self, other: &Binding) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && crate::config::model::host_addresses_overlap(
                self.host_ip.as_deref(),
                other.host_ip.as_deref(),
            )
    }
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            // `[::1]:15432`, as everywhere else: `::1:15432` reads as one address.
            Some(ip) if ip.contains(':') && !ip.starts_with('[') => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(f, "{}", self.port)?;
        match self.protocol {
            Protocol::Tcp => Ok(()),
            Protocol::Udp => f.write_str("/udp"),
            Protocol::Sctp => f.write_str("/sctp"),
        }
    }
}

/// A volume as listed by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedVolume {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// What one inspect of an image tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    /// `USER`, `None` for root.
    pub user: Option<String>,
    /// Its `VOLUME` paths.
    pub volumes: Vec<String>,
}
