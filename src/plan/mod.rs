//! The planner: a pure function from the resolved model, what the engine
//! has (an [`Actual`], read by the lifecycle's observe step) and the options
//! to a [`Plan`] — what `up` will do, as data. No I/O: `up --dry-run`
//! prints the plan, `up` carries it out, and unit tests feed it a fake
//! `Actual`.
//!
//! # How it works
//!
//! 1. The selection: the services asked for plus their dependencies, in
//!    start order (the [`crate::graph`] levels, flattened); each keeps its
//!    own `depends_on`, so `up` starts it as soon as those are met, not when
//!    a whole level is.
//! 2. Images: present (its id is known), or to be built or pulled (a
//!    stand-in built when no registry answers).
//! 3. Containers: desired state is a hash per service of its resolved
//!    config plus the id of the image it runs; the container carries that
//!    hash as a label, and beside it one short hash per part of the config
//!    (image, command, env, ports, volumes, …), so a recreate can say which
//!    part changed. Diffing hashes (not fields) makes a no-op `up` cheap and
//!    exact: same hash, same container; any change, recreate that service
//!    alone. A service whose image is still to be made keeps its container
//!    unless the new image differs (the lifecycle plans again once it exists).
//! 4. Removals: containers of services no longer in the file (orphans; a
//!    service merely out of the active profiles is not one), and duplicates
//!    an interrupted run left.
//! 5. Preconditions, checked before anything changes: the project is this
//!    folder's, no foreign container holds a name devenv needs, bind sources
//!    exist, and no two bindings want the same host port; host ports still
//!    free are checked by the lifecycle (that needs sockets).

mod hash;
pub mod paths;
pub mod render;
pub mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::model::{Condition, Mount, Protocol, Service, Stack};
use crate::image_ref::ImageRef;
use crate::names::{
    container_name, volume_name, LABEL_COMPOSE_PROJECT, LABEL_DIR, LABEL_HASH, LABEL_ONEOFF,
    LABEL_PARTS, LABEL_PROJECT, LABEL_SERVICE,
};

pub use hash::{changed_parts, config_hash, config_parts, PORTS_PART};
pub use paths::{Invoker, Kind as PathKind, NewPath, Owner};
pub use spec::{ContainerSpec, MountSpec, NetworkSpec, OneOff, VolumeSpec};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    #[error("unknown service `{0}`")]
    #[diagnostic(code(devenv::up::unknown), help("`devenv config` lists the services"))]
    UnknownService(String),

    #[error("project `{project}` belongs to the folder `{theirs}`")]
    #[diagnostic(
        code(devenv::project::other_folder),
        help("this stack file is in `{ours}`, and devenv never touches another folder's containers, networks or volumes; give one of the two another name: `devenv -p NAME …` or `[project] name = \"NAME\"` in its dev.toml")
    )]
    OtherFolder {
        project: String,
        theirs: String,
        ours: String,
    },

    #[error("container `{container}` is in the way of service `{service}`, and devenv did not create it: {maker}")]
    #[diagnostic(
        code(devenv::up::not_ours),
        help("devenv never removes or replaces a container it did not create; remove it yourself when you are done with it (for Compose, `docker compose down` in its folder), or give this project another name: `devenv -p NAME …` or `[project] name = \"NAME\"`")
    )]
    NotOurs {
        container: String,
        service: String,
        maker: String,
    },

    #[error("service `{service}` mounts `{}`, which does not exist", path.display())]
    #[diagnostic(
        code(devenv::up::bind_source),
        help("fix the path in `volumes` (relative paths start at the stack file's folder), create it, or pass `--create-paths` to have devenv create it (an empty file where its name has an extension, else a folder)")
    )]
    MissingBindSource { service: String, path: PathBuf },

    #[error("service `{service}` mounts `{}`, which does not exist, and its name does not say whether it is a file or a folder", path.display())]
    #[diagnostic(
        code(devenv::up::bind_source_kind),
        help("make it yourself, then run `up` again: `mkdir -p {}` for a folder, `touch {}` for a file", path.display(), path.display())
    )]
    UnsureBindSource { service: String, path: PathBuf },

    #[error("service `{service}` mounts the external volume `{name}`, which does not exist")]
    #[diagnostic(
        code(devenv::up::external_volume),
        help("an `external = true` volume is made outside devenv, and devenv will not start on an empty stand-in; create it (`docker volume create {name}`) or restore it, or drop `external = true` to have devenv make and own `{volume}`")
    )]
    MissingExternalVolume {
        service: String,
        volume: String,
        name: String,
    },

    #[error(
        "host port `{wanted}` of service `{service}` clashes with `{held}` of service `{other}`"
    )]
    #[diagnostic(
        code(devenv::up::port_clash),
        help("a port on every address (`{port}`, `0.0.0.0:{port}`) and the same port on one address cannot both be published; give one of them another host port in `ports`, or stop `{other}`'s container first")
    )]
    PortClash {
        service: String,
        wanted: String,
        other: String,
        held: String,
        port: u16,
    },
}

impl PlanError {
    /// Usage errors are 2; a port clash is the stack's state, not bad input (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            PlanError::PortClash { .. }
            | PlanError::MissingBindSource { .. }
            | PlanError::UnsureBindSource { .. }
            | PlanError::MissingExternalVolume { .. } => 1,
            _ => 2,
        }
    }
}

// ---- what the engine has ---------------------------------------------------

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
}

/// The external volumes (their engine names) that `services` mount.
pub fn external_volumes<'a>(
    stack: &'a Stack,
    services: impl IntoIterator<Item = &'a Service>,
) -> BTreeSet<&'a str> {
    services
        .into_iter()
        .flat_map(|s| &s.volumes)
        .filter_map(|m| match m {
            Mount::Volume { name, .. } => stack.volumes.get(name)?.external_name(name),
            _ => None,
        })
        .collect()
}

/// Refuses a service that mounts an external volume the engine lacks: the
/// engine would make an empty one, and PostgreSQL would start on nothing.
pub fn check_external_volumes<'a>(
    stack: &Stack,
    services: impl IntoIterator<Item = &'a Service>,
    missing: &BTreeSet<String>,
) -> Result<(), PlanError> {
    for svc in services {
        for m in &svc.volumes {
            let Mount::Volume { name, .. } = m else {
                continue;
            };
            let Some(external) = stack.volumes.get(name).and_then(|v| v.external_name(name)) else {
                continue;
            };
            if missing.contains(external) {
                return Err(PlanError::MissingExternalVolume {
                    service: svc.name.clone(),
                    volume: name.clone(),
                    name: external.to_string(),
                });
            }
        }
    }
    Ok(())
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
        if let Some(ip) = self.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            write!(f, "{ip}:")?;
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

// ---- what to do ---------------------------------------------------------------

/// What `up` asks for.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Services to bring up (with their dependencies); empty means all.
    pub services: Vec<String>,
    /// Rebuild images of services with `build`.
    pub build: bool,
    /// Create missing bind-mount sources (files or folders) instead of refusing.
    pub create_paths: bool,
    /// Publish no host ports on the containers this plan makes (`devenv
    /// test` reaches its services on the project network); a container
    /// made with its ports is as good and is kept.
    pub no_ports: bool,
}

/// What `up` will do, in the order it does it: images, folders, removals,
/// the network and volumes, then every container created (or recreated) up
/// front and each started as soon as its own dependencies are met. Its JSON
/// form (`up --dry-run --json`) is documented in the README.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub project: String,
    pub images: Vec<ImageStep>,
    /// Missing bind sources to create as folders (`--create-paths`).
    pub folders: Vec<NewPath>,
    /// Missing bind sources to create as empty files: their names say they
    /// are files (see [`paths`]).
    pub files: Vec<NewPath>,
    pub removals: Vec<Removal>,
    /// The project network, when a container is to be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<ObjectStep<NetworkSpec>>,
    /// The stack's named volumes, when a container is to be made.
    pub volumes: Vec<ObjectStep<VolumeSpec>>,
    /// One per selected service, in start order.
    pub services: Vec<ServiceStep>,
    /// Host ports to check before anything changes.
    pub port_checks: Vec<PortCheck>,
    /// Things to tell the user (volume options that no longer apply).
    pub notices: Vec<String>,
}

/// How a service gets its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageStep {
    pub service: String,
    /// The reference the container will run.
    pub image: ImageRef,
    #[serde(flatten)]
    pub action: ImageAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ImageAction {
    /// The engine has it.
    Present { id: String },
    /// Built from the service's `build`.
    Build,
    /// Pulled from its registry.
    Pull,
    /// Pulled, or, when no registry answers, the local stand-in built and run instead.
    PullOrStandin { standin: ImageRef },
}

/// An object to make unless it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectStep<T> {
    pub exists: bool,
    #[serde(flatten)]
    pub spec: T,
}

/// A container to remove before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub service: String,
    pub id: String,
    pub name: String,
    pub why: RemoveWhy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveWhy {
    /// Its service is no longer in the stack file.
    Orphan,
    /// A second container of one service (an interrupted run left it).
    Duplicate,
}

/// One selected service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStep {
    pub service: String,
    /// Its container's name.
    pub container: String,
    #[serde(flatten)]
    pub action: ContainerAction,
    /// What it waits for before it starts.
    pub after: Vec<Dependency>,
    /// The container as it is wanted (what a create or recreate makes).
    pub spec: ContainerSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ContainerAction {
    /// No container yet.
    Create,
    /// A container with another config: removed (its volumes kept), made anew.
    Recreate {
        id: String,
        /// The parts of the config that changed (`env`, `image`, `ports`, …;
        /// `config` when the container predates per-part labels).
        changes: Vec<String>,
    },
    /// The right container, not running (stopped, or created by an interrupted run).
    Start { id: String },
    /// The right container, running: left alone.
    Keep { id: String },
    /// Its image is still to be built or pulled, and the rest of its config
    /// is unchanged: recreated only if the new image differs from the one it runs.
    KeepUnlessImageChanges { id: String, running: bool },
}

impl ContainerAction {
    /// The existing container this acts on, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            ContainerAction::Create => None,
            ContainerAction::Recreate { id, .. }
            | ContainerAction::Start { id }
            | ContainerAction::Keep { id }
            | ContainerAction::KeepUnlessImageChanges { id, .. } => Some(id),
        }
    }

    /// A new container is (or may be) made.
    pub fn makes_container(&self) -> bool {
        matches!(
            self,
            ContainerAction::Create
                | ContainerAction::Recreate { .. }
                | ContainerAction::KeepUnlessImageChanges { .. }
        )
    }
}

/// A host port the lifecycle checks is free before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortCheck {
    pub service: String,
    #[serde(flatten)]
    pub binding: Binding,
    /// `{ port = "…", fixed = true }`: this port or none (else `up`
    /// publishes on a free one).
    pub fixed: bool,
    /// The port dev.toml declares, where this one differs: it had to move
    /// once, and stays on the port it moved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<u16>,
    /// The service's own container, about to be replaced or started: if it
    /// holds the port, that is no conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own: Option<String>,
    /// Filled in by the check (a dry run shows it): free, or who holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

// ---- the planner -----------------------------------------------------------------

/// The services asked for plus everything they depend on, in file order.
pub fn select(stack: &Stack, wanted: &[String]) -> Result<Vec<String>, PlanError> {
    if wanted.is_empty() {
        return Ok(stack.services.keys().cloned().collect());
    }
    let mut keep = HashSet::new();
    let mut todo: Vec<String> = wanted.to_vec();
    while let Some(name) = todo.pop() {
        let svc = stack
            .services
            .get(&name)
            .ok_or_else(|| PlanError::UnknownService(name.clone()))?;
        if keep.insert(name.clone()) {
            todo.extend(svc.depends_on.keys().cloned());
        }
    }
    Ok(stack
        .services
        .keys()
        .filter(|k| keep.contains(*k))
        .cloned()
        .collect())
}

/// Who made a container, from its labels, for [`PlanError::NotOurs`].
pub fn maker(labels: &BTreeMap<String, String>) -> String {
    let folder = |key: &str| {
        labels
            .get(key)
            .map(|d| format!(" in `{d}`"))
            .unwrap_or_default()
    };
    if let Some(p) = labels.get(LABEL_COMPOSE_PROJECT) {
        format!(
            "Docker Compose made it (project `{p}`{})",
            folder("com.docker.compose.project.working_dir")
        )
    } else if let Some(p) = labels.get(LABEL_PROJECT) {
        format!("devenv made it for project `{p}`{}", folder(LABEL_DIR))
    } else {
        "something else made it (it has no `devenv.project` label)".into()
    }
}

/// Docker names an anonymous volume by 64 hex digits.
pub fn is_anonymous(volume: &str) -> bool {
    volume.len() == 64 && volume.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether objects labelled with `dir` are this folder's: the same folder,
/// none recorded (made before devenv recorded folders), or one that no
/// longer exists (the project was moved, and its data follows it).
fn ours(actual: &Actual, dir: Option<&String>) -> bool {
    is_ours(&actual.dir, dir.map(String::as_str), |d| {
        actual.existing_dirs.contains(d)
    })
}

/// The rule behind [`PlanError::OtherFolder`], for callers that read the
/// labels themselves: an object labelled with folder `dir` is this folder's
/// (`ours`) unless it names another folder that `exists`.
pub fn is_ours(ours: &str, dir: Option<&str>, exists: impl Fn(&str) -> bool) -> bool {
    dir.is_none_or(|d| d == ours || !exists(d))
}

/// Refuses a project another folder's objects carry the name of.
fn check_folder(stack: &Stack, actual: &Actual) -> Result<(), PlanError> {
    let network_dir = actual
        .network
        .as_ref()
        .filter(|l| l.get(LABEL_PROJECT) == Some(&stack.project))
        .and_then(|l| l.get(LABEL_DIR));
    let dirs = actual
        .containers
        .iter()
        .filter_map(|c| c.labels.get(LABEL_DIR))
        .chain(network_dir)
        .chain(
            actual
                .volumes
                .iter()
                .filter_map(|v| v.labels.get(LABEL_DIR)),
        );
    for dir in dirs {
        if !ours(actual, Some(dir)) {
            return Err(PlanError::OtherFolder {
                project: stack.project.clone(),
                theirs: dir.clone(),
                ours: actual.dir.clone(),
            });
        }
    }
    Ok(())
}

/// How the service gets its image, and the image's details when present.
fn resolve_image<'a>(
    svc: &Service,
    actual: &'a Actual,
    rebuild: bool,
) -> (ImageStep, Option<&'a ImageInfo>) {
    let step = |image: &ImageRef, action| ImageStep {
        service: svc.name.clone(),
        image: image.clone(),
        action,
    };
    let present = |image: &ImageRef| {
        actual.images.get(image.as_ref()).map(|i| {
            (
                step(image, ImageAction::Present { id: i.id.clone() }),
                Some(i),
            )
        })
    };
    if svc.build.is_some() {
        if rebuild {
            return (step(&svc.image, ImageAction::Build), None);
        }
        return present(&svc.image).unwrap_or_else(|| (step(&svc.image, ImageAction::Build), None));
    }
    if let Some(found) = present(&svc.image) {
        return found;
    }
    if svc.fallback.is_some() {
        let standin = crate::names::standin_tag(&svc.image);
        // Built on an earlier offline run: used rather than retrying the registry.
        if let Some(found) = present(&standin) {
            return found;
        }
        return (
            step(&svc.image, ImageAction::PullOrStandin { standin }),
            None,
        );
    }
    (step(&svc.image, ImageAction::Pull), None)
}

/// The start order: the dependency levels, flattened (file order within one).
fn start_order(stack: &Stack, selected: &[String]) -> Vec<String> {
    let deps: IndexMap<String, Vec<String>> = selected
        .iter()
        .map(|n| {
            (
                n.clone(),
                stack.services[n].depends_on.keys().cloned().collect(),
            )
        })
        .collect();
    crate::graph::levels(&deps)
        .expect("config rejected cycles")
        .into_iter()
        .flatten()
        .collect()
}

/// The host binding each published mapping makes (one per mapping: a
/// `loopback_v6` mapping's `[::1]` twin is checked where ports are).
fn bindings(svc: &Service) -> impl Iterator<Item = Binding> + '_ {
    svc.ports.iter().filter_map(|p| {
        Some(Binding {
            host_ip: p.host_ip.clone(),
            port: p.host?,
            protocol: p.protocol,
        })
    })
}

/// What `up` must do to bring the selected services of `stack` (its
/// services as they will run: sync folders resolved for the engine) from
/// `actual` to running. Pure.
pub fn plan(stack: &Stack, actual: &Actual, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let selected = select(stack, &opts.services)?;
    check_folder(stack, actual)?;
    check_external_volumes(
        stack,
        selected.iter().map(|s| &stack.services[s.as_str()]),
        &actual.missing_volumes,
    )?;
    let mut plan = Plan {
        project: stack.project.clone(),
        ..Plan::default()
    };
    let ours: Vec<&Observed> = actual.containers.iter().filter(|c| !c.oneoff()).collect();
    plan.removals = orphans(stack, &ours);
    for name in start_order(stack, &selected) {
        plan_service(stack, actual, opts, &ours, &mut plan, name)?;
    }
    check_port_clashes(stack, &plan, &ours)?;
    plan_volumes_and_network(stack, actual, &mut plan);
    Ok(plan)
}

/// The project's containers whose service is no longer in the file (one
/// merely out of the active profiles is still the stack's).
fn orphans(stack: &Stack, ours: &[&Observed]) -> Vec<Removal> {
    let known = |s: &str| stack.services.contains_key(s) || stack.inactive.iter().any(|i| i == s);
    ours.iter()
        .filter(|c| !known(c.service()))
        .map(|c| Removal {
            service: c.service().to_string(),
            id: c.id.clone(),
            name: c.name.clone(),
            why: RemoveWhy::Orphan,
        })
        .collect()
}

/// One selected service's steps: its image, the removal of duplicates,
/// what happens to its container and why, the preconditions of making
/// one, the host ports to check, and the container as wanted.
fn plan_service(
    stack: &Stack,
    actual: &Actual,
    opts: &PlanOptions,
    ours: &[&Observed],
    plan: &mut Plan,
    name: String,
) -> Result<(), PlanError> {
    let project = &stack.project;
    let svc = &stack.services[&name];
    let (image_step, info) = resolve_image(svc, actual, opts.build);
    let mut run = svc.clone();
    run.image = image_step.image.clone();
    let container = container_name(project, &name);
    let current = current(ours, &name, &container, &mut plan.removals);
    let (hash, parts) = desired_hash(&mut run, info, current, opts.no_ports);
    let action = container_action(&run, current, info, &hash, &parts);

    if action.makes_container() {
        check_name(actual, project, &container, &name)?;
        plan_bind_sources(actual, opts, &run, &name, plan)?;
    }
    if !matches!(action, ContainerAction::Keep { .. }) {
        plan.port_checks
            .extend(port_checks(&run, &name, current, &action));
    }

    // Docker's own anonymous volumes (containers made before devenv
    // labelled them) go over to the new container, as Compose does
    // (also for a container started, should its port have to move).
    let carried: BTreeMap<String, String> = match current {
        Some(c) => c
            .volume_mounts
            .iter()
            .filter(|(_, v)| is_anonymous(v))
            .map(|(t, v)| (t.clone(), v.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let image_volumes = info.map(|i| i.volumes.as_slice()).unwrap_or_default();
    let spec = spec::service(
        stack,
        &run,
        &actual.dir,
        image_volumes,
        &carried,
        &hash,
        &parts,
    );
    let after = svc
        .depends_on
        .iter()
        .map(|(s, c)| Dependency {
            service: s.clone(),
            condition: *c,
        })
        .collect();
    plan.images.push(image_step);
    plan.services.push(ServiceStep {
        service: name,
        container: spec.name.clone(),
        action,
        after,
        spec,
    });
    Ok(())
}

/// The service's container: the one named as devenv names it comes
/// first; any other (an interrupted run's) is to be removed.
fn current<'o>(
    ours: &[&'o Observed],
    name: &str,
    container: &str,
    removals: &mut Vec<Removal>,
) -> Option<&'o Observed> {
    let mut mine: Vec<&Observed> = ours
        .iter()
        .copied()
        .filter(|c| c.service() == name)
        .collect();
    mine.sort_by_key(|c| c.name != container);
    for extra in mine.iter().skip(1) {
        removals.push(Removal {
            service: name.to_string(),
            id: extra.id.clone(),
            name: extra.name.clone(),
            why: RemoveWhy::Duplicate,
        });
    }
    mine.first().copied()
}

/// The config hash and per-part hashes of the container as wanted (empty
/// while its image is still to be made); with `no_ports`, a container to
/// be made publishes none.
fn desired_hash(
    run: &mut Service,
    info: Option<&ImageInfo>,
    current: Option<&Observed>,
    no_ports: bool,
) -> (String, String) {
    let (mut hash, mut parts) = match info {
        Some(i) => (config_hash(run, &i.id), config_parts(run, &i.id)),
        None => (String::new(), String::new()),
    };
    if let (true, Some(i)) = (no_ports, info) {
        if current.is_none_or(|c| c.hash() != hash) {
            run.ports.clear();
            hash = config_hash(run, &i.id);
            parts = config_parts(run, &i.id);
        }
    }
    (hash, parts)
}

/// Create, keep, start or recreate (and which parts changed), by the
/// container's config hash against the wanted one.
fn container_action(
    run: &Service,
    current: Option<&Observed>,
    info: Option<&ImageInfo>,
    hash: &str,
    parts: &str,
) -> ContainerAction {
    match (current, info) {
        (None, _) => ContainerAction::Create,
        (Some(c), Some(_)) if c.hash() == hash => {
            if c.running() {
                ContainerAction::Keep { id: c.id.clone() }
            } else {
                ContainerAction::Start { id: c.id.clone() }
            }
        }
        (Some(c), Some(_)) => ContainerAction::Recreate {
            id: c.id.clone(),
            changes: changed_parts(c.labels.get(LABEL_PARTS).map(String::as_str), parts),
        },
        // The image is still to be made: compare the rest of the config
        // with what the container runs, its own image included.
        (Some(c), None) if config_hash(run, &c.image_id) == c.hash() => {
            ContainerAction::KeepUnlessImageChanges {
                id: c.id.clone(),
                running: c.running(),
            }
        }
        (Some(c), None) => ContainerAction::Recreate {
            id: c.id.clone(),
            changes: changed_parts(
                c.labels.get(LABEL_PARTS).map(String::as_str),
                &config_parts(run, &c.image_id),
            ),
        },
    }
}

/// A name held by someone else's container stops the whole `up`.
fn check_name(
    actual: &Actual,
    project: &String,
    container: &str,
    name: &str,
) -> Result<(), PlanError> {
    if let Some(holder) = actual.named.iter().find(|c| c.name == container) {
        let theirs = holder.labels.get(LABEL_PROJECT) != Some(project) || !ours_dir(actual, holder);
        if theirs {
            return Err(PlanError::NotOurs {
                container: container.to_string(),
                service: name.to_string(),
                maker: maker(&holder.labels),
            });
        }
    }
    Ok(())
}

/// Missing bind sources: refused, or (`--create-paths`) made as a file or
/// a folder, whose owner the service's user decides; the engine would make
/// a missing one a root-owned folder.
fn plan_bind_sources(
    actual: &Actual,
    opts: &PlanOptions,
    run: &Service,
    name: &str,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    for m in &run.volumes {
        let Mount::Bind { source, target, .. } = m else {
            continue;
        };
        if !actual.missing_paths.contains(source) {
            continue;
        }
        if !opts.create_paths {
            return Err(PlanError::MissingBindSource {
                service: name.to_string(),
                path: source.clone(),
            });
        }
        if plan
            .folders
            .iter()
            .chain(&plan.files)
            .any(|p| &p.path == source)
        {
            continue;
        }
        let owner = paths::owner(&actual.invoker, run.user.as_deref()).unwrap_or_else(|user| {
            plan.notices.push(format!(
                "`{}` stays root's: service `{name}` runs as `{user}`, a name no host id stands for; `user = \"UID:GID\"` has it made theirs",
                source.display()
            ));
            None
        });
        let new = NewPath {
            path: source.clone(),
            owner,
        };
        let in_image = actual.in_image.get(&(name.to_string(), target.clone()));
        match paths::decide(paths::kind(source, target), in_image.copied()) {
            paths::Kind::File => plan.files.push(new),
            paths::Kind::Folder => plan.folders.push(new),
            paths::Kind::Unsure => {
                return Err(PlanError::UnsureBindSource {
                    service: name.to_string(),
                    path: source.clone(),
                })
            }
        }
    }
    Ok(())
}

/// The host ports a container to make or start will publish, each to be
/// checked free: a port that had to move stays where it went, and
/// `localhost` is two addresses.
fn port_checks(
    run: &Service,
    name: &str,
    current: Option<&Observed>,
    action: &ContainerAction,
) -> Vec<PortCheck> {
    let mut checks = Vec::new();
    let own = current.map(|c| c.name.clone());
    let published = run.ports.iter().filter(|p| p.host.is_some());
    for (mut binding, port) in bindings(run).zip(published) {
        // A port that had to move stays where it went (as
        // `crate::ports` keeps it) when its container is replaced.
        let ports_changed = matches!(action, ContainerAction::Recreate { changes, .. }
            if changes.iter().any(|c| c == PORTS_PART));
        let kept = current
            .filter(|_| !port.fixed && !ports_changed)
            .and_then(|c| c.published.iter().find(|(to, _)| *to == port.container))
            .map(|(_, b)| b.port)
            .filter(|h| *h != binding.port);
        let declared = kept.map(|h| std::mem::replace(&mut binding.port, h));
        // `localhost` is two addresses: the IPv6 loopback must be free too.
        let v6 = port.loopback_v6.then(|| Binding {
            host_ip: Some(crate::config::model::LOOPBACK_V6.to_string()),
            ..binding.clone()
        });
        for binding in std::iter::once(binding).chain(v6) {
            checks.push(PortCheck {
                service: name.to_string(),
                binding,
                fixed: port.fixed,
                declared,
                own: own.clone(),
                free: None,
                holder: None,
            });
        }
    }
    checks
}

/// The network and volumes are made when a container is; an existing
/// volume made with other options keeps them, which is worth saying.
fn plan_volumes_and_network(stack: &Stack, actual: &Actual, plan: &mut Plan) {
    let project = &stack.project;
    let makes = plan.services.iter().any(|s| s.action.makes_container());
    for (name, vol) in stack.volumes.iter().filter(|(_, v)| !v.external) {
        let vname = volume_name(project, name);
        let found = actual.volumes.iter().find(|v| v.name == vname);
        if let Some(v) = found {
            let wanted = vol.driver.as_deref().unwrap_or("local");
            if v.driver != wanted || v.options != vol.driver_opts {
                plan.notices.push(format!(
                    "volume `{name}` was created with other driver options than `dev.toml` gives; they apply only once it is recreated: `devenv down -v` (its data is lost), then `devenv up`"
                ));
            }
        }
        if makes {
            plan.volumes.push(ObjectStep {
                exists: found.is_some(),
                spec: spec::volume(project, &actual.dir, name, vol),
            });
        }
    }
    if makes {
        plan.network = Some(ObjectStep {
            exists: actual.network.is_some(),
            spec: spec::network(project, &actual.dir),
        });
    }
}

fn ours_dir(actual: &Actual, c: &Observed) -> bool {
    ours(actual, c.labels.get(LABEL_DIR))
}

/// Two bindings that cannot both hold — among the selected services, or
/// against a container of the project that stays running (a service not
/// selected, or out of the active profiles) — fail the plan before anything
/// is created, rather than half-way through `up`.
fn check_port_clashes(stack: &Stack, plan: &Plan, ours: &[&Observed]) -> Result<(), PlanError> {
    let removed: BTreeSet<&str> = plan.removals.iter().map(|r| r.id.as_str()).collect();
    let planned: BTreeSet<&str> = plan.services.iter().map(|s| s.service.as_str()).collect();
    let mut held: Vec<(String, Binding)> = ours
        .iter()
        .filter(|c| c.running() && !removed.contains(c.id.as_str()))
        .filter(|c| !planned.contains(c.service()))
        .flat_map(|c| {
            c.published
                .iter()
                .map(|(_, b)| (c.service().to_string(), b.clone()))
        })
        .collect();
    for step in &plan.services {
        let svc = &stack.services[&step.service];
        // A port that is only a wish moves to a free one (`crate::ports`);
        // a fixed one cannot.
        let fixed = svc
            .ports
            .iter()
            .filter(|p| p.host.is_some())
            .map(|p| p.fixed);
        for (wanted, fixed) in bindings(svc).zip(fixed) {
            if !fixed {
                continue;
            }
            if let Some((other, b)) = held
                .iter()
                .find(|(other, b)| *other != step.service && b.overlaps(&wanted))
            {
                return Err(PlanError::PortClash {
                    service: step.service.clone(),
                    wanted: wanted.to_string(),
                    other: other.clone(),
                    held: b.to_string(),
                    port: wanted.port,
                });
            }
            held.push((step.service.clone(), wanted));
        }
    }
    Ok(())
}
