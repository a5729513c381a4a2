//! One selected service's steps in the plan: its image, duplicates to
//! remove, what happens to its container and why (by config hash), the
//! preconditions of making one (its name, its bind sources) and the host
//! ports to check.

use std::collections::BTreeMap;

use super::{
    bindings, changed_parts, config_hash, config_parts, is_anonymous, maker, ours_dir, paths,
    resolve_image, spec, Actual, Binding, ContainerAction, Dependency, ImageInfo, NewPath,
    Observed, Plan, PlanError, PlanOptions, PortCheck, Removal, RemoveWhy, ServiceStep, PORTS_PART,
};
use crate::config::model::{Mount, Service, Stack};
use crate::names::{container_name, LABEL_PARTS, LABEL_PROJECT};

/// One selected service's steps: its image, the removal of duplicates,
/// what happens to its container and why, the preconditions of making
/// one, the host ports to check, and the container as wanted.
pub(super) fn plan_service(
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
        moves: Vec::new(),
        port_taken: None,
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
