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
//!    exist, and no two bindings want the same host port.
//! 6. Host ports (`host_ports`): each container made gets free ones,
//!    chosen from what observe found holding ports (the planner binds no
//!    socket); each move and its cause is on the step.

mod actual;
mod hash;
pub mod host_ports;
pub mod paths;
pub mod render;
mod service;
pub mod spec;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::config::model::{Mount, Service, Stack};
use crate::image_ref::ImageRef;
use crate::names::{volume_name, LABEL_COMPOSE_PROJECT, LABEL_DIR, LABEL_PROJECT};

pub use actual::{Actual, Binding, HostPorts, ImageInfo, LocalPort, Observed, ObservedVolume};
pub use hash::{changed_parts, config_hash, config_parts, PORTS_PART};
pub use host_ports::{PortMove, PortTaken, TakenBy};
pub use paths::{Invoker, Kind as PathKind, NewPath, Owner};
pub use spec::{ContainerSpec, MountSpec, NetworkSpec, OneOff, VolumeSpec};
pub use steps::{
    ContainerAction, Dependency, ImageAction, ImageStep, ObjectStep, Plan, PlanOptions, PortCheck,
    Removal, RemoveWhy, ServiceStep,
};

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

    #[error("port {port} for service `{service}` is already taken{}", holder.as_ref().map(|h| format!(" by container `{h}`")).unwrap_or_default())]
    #[diagnostic(
        code(devenv::up::port),
        help("stop whatever holds it{}, or change the host side of the mapping in `ports`", holder.as_ref().map(|h| format!(" (`{h}`)")).unwrap_or_default())
    )]
    PortTaken {
        service: String,
        port: u16,
        holder: Option<String>,
    },
}

impl PlanError {
    /// Usage errors are 2; a port clash is the stack's state, not bad input (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            PlanError::PortClash { .. }
            | PlanError::PortTaken { .. }
            | PlanError::MissingBindSource { .. }
            | PlanError::UnsureBindSource { .. }
            | PlanError::MissingExternalVolume { .. } => 1,
            _ => 2,
        }
    }
}

// ---- what the engine has (its types are in `actual`) -------------------------

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
        service::plan_service(stack, actual, opts, &ours, &mut plan, name)?;
    }
    check_port_clashes(stack, &plan, &ours)?;
    host_ports::assign(stack, actual, &ours, &mut plan)?;
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
