//! What `up` reads from the engine before it plans: one listing each of the
//! project's containers, networks and volumes, one inspect per image (and
//! per stand-in where the image is missing), the external volumes the engine
//! lacks and what the images hold at missing bind sources' paths.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::join_all;

use crate::config::model::{Mount, Service, Stack};
use crate::engine::{
    container_name, project_dir, Engine, EngineError, LABEL_DIR, LABEL_ONEOFF, LABEL_PROJECT,
};
use crate::lifecycle::UpError;
use crate::plan::{self, Actual};

/// Reads what the engine has for the project and the selected services.
pub async fn observe(
    engine: &Engine,
    stack: &Stack,
    selected: &[String],
) -> Result<Actual, UpError> {
    let names: Vec<String> = selected
        .iter()
        .map(|s| container_name(&stack.project, s))
        .collect();
    let (mut containers, named, network, volumes) = futures_util::try_join!(
        engine.observe_containers(&stack.project),
        engine.observe_named(&names),
        engine.network_labels(&stack.project),
        engine.observe_volumes(&stack.project),
    )?;
    let services: Vec<&Service> = selected.iter().map(|s| &stack.services[s]).collect();
    let mut images = BTreeMap::new();
    let mut refs: Vec<String> = services.iter().map(|s| s.image.to_string()).collect();
    refs.sort();
    refs.dedup();
    inspect_images(engine, &refs, &mut images).await?;
    // A stand-in is looked for only where the image itself is missing.
    let mut standins: Vec<String> = services
        .iter()
        .filter(|s| s.fallback.is_some() && !images.contains_key(s.image.as_ref()))
        .map(|s| crate::images::standin_tag(&s.image).to_string())
        .collect();
    standins.sort();
    standins.dedup();
    inspect_images(engine, &standins, &mut images).await?;

    let network: Option<BTreeMap<String, String>> = network.map(|l| l.into_iter().collect());
    let existing_dirs = containers
        .iter()
        .chain(&named)
        .filter_map(|c| c.labels.get(LABEL_DIR))
        .chain(network.iter().filter_map(|l| l.get(LABEL_DIR)))
        .chain(volumes.iter().filter_map(|v| v.labels.get(LABEL_DIR)))
        .filter(|d| std::path::Path::new(d).exists())
        .cloned()
        .collect();
    let missing_paths = services
        .iter()
        .flat_map(|s| &s.volumes)
        .filter_map(|m| match m {
            Mount::Bind { source, .. } if !source.exists() => Some(source.clone()),
            _ => None,
        })
        .collect();
    let missing_volumes = missing_external_volumes(engine, stack, &services).await?;
    let in_image = in_image(engine, stack, &services, &images).await?;
    let host_ports = host_ports(engine, &services, &mut containers).await?;
    Ok(Actual {
        dir: project_dir(stack),
        existing_dirs,
        containers,
        named,
        network,
        volumes,
        images,
        missing_paths,
        missing_volumes,
        invoker: invoker(),
        in_image,
        host_ports,
    })
}

/// What holds host ports, for the planner's choice: the ports the engine's
/// containers publish and, on an engine of this machine, which of the
/// ports the selected services could be published on a local socket
/// cannot bind (see [`plan::host_ports::to_check`]). A stopped container
/// of theirs gets the bindings it was made with, which it takes back when
/// started. Asks nothing when no selected service publishes a host port.
async fn host_ports(
    engine: &Engine,
    services: &[&Service],
    containers: &mut [plan::Observed],
) -> Result<plan::HostPorts, EngineError> {
    let publishing: Vec<&Service> = services
        .iter()
        .copied()
        .filter(|s| s.ports.iter().any(|p| p.host.is_some()))
        .collect();
    if publishing.is_empty() {
        return Ok(plan::HostPorts::default());
    }
    for c in containers.iter_mut() {
        let theirs = publishing.iter().any(|s| s.name == c.service());
        if theirs && !c.oneoff() && !c.running() && c.published.is_empty() {
            c.published = engine.configured_ports(&c.id).await?;
        }
    }
    let local = engine.endpoint.is_local();
    let mut unbindable = BTreeSet::new();
    if local {
        for s in &publishing {
            let current = containers
                .iter()
                .filter(|c| c.service() == s.name && !c.oneoff());
            let current: Vec<&plan::Observed> = current.collect();
            for p in &s.ports {
                let now = current
                    .iter()
                    .flat_map(|c| &c.published)
                    .find(|(to, _)| *to == p.container)
                    .map(|(_, b)| b.port);
                for port in plan::host_ports::to_check(p, now) {
                    if !crate::ports::bindable(&port) {
                        unbindable.extend(plan::LocalPort::of(&port));
                    }
                }
            }
        }
    }
    Ok(plan::HostPorts {
        published: engine.published_host_ports().await?,
        local,
        unbindable,
    })
}

/// What the images have at the container paths of missing bind sources
/// (what `--create-paths` would make of them), for the images the engine
/// has: the one the plan uses, else its stand-in.
async fn in_image(
    engine: &Engine,
    stack: &Stack,
    services: &[&Service],
    images: &BTreeMap<String, plan::ImageInfo>,
) -> Result<BTreeMap<(String, String), plan::PathKind>, EngineError> {
    let mut found = BTreeMap::new();
    // One at a time: missing sources are few, and each ask makes a container.
    for s in services {
        let standin = crate::images::standin_tag(&s.image);
        let Some(image) = [s.image.to_string(), standin.to_string()]
            .into_iter()
            .find(|r| images.contains_key(r))
        else {
            continue;
        };
        for m in &s.volumes {
            if let Mount::Bind { source, target, .. } = m {
                if !source.exists() {
                    let labels = HashMap::from([
                        (LABEL_PROJECT.to_string(), stack.project.clone()),
                        (LABEL_DIR.to_string(), project_dir(stack)),
                        (LABEL_ONEOFF.to_string(), "true".to_string()),
                    ]);
                    if let Some(kind) = engine.path_in_image(&image, target, labels).await? {
                        found.insert((s.name.clone(), target.clone()), kind);
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Who runs devenv: root, and the user behind `sudo` when through it.
fn invoker() -> plan::Invoker {
    let root = rustix::process::geteuid().is_root();
    let id = |name: &str| std::env::var(name).ok()?.parse::<u32>().ok();
    let sudo = match (id("SUDO_UID"), id("SUDO_GID")) {
        (Some(uid), Some(gid)) if root && uid != 0 => Some(plan::Owner { uid, gid }),
        _ => None,
    };
    plan::Invoker { root, sudo }
}

/// The external volumes `services` mount that the engine does not have.
pub(crate) async fn missing_external_volumes(
    engine: &Engine,
    stack: &Stack,
    services: &[&Service],
) -> Result<BTreeSet<String>, EngineError> {
    let names: Vec<&str> = plan::external_volumes(stack, services.iter().copied())
        .into_iter()
        .collect();
    let found = join_all(names.iter().map(|n| engine.volume_exists(n))).await;
    let mut missing = BTreeSet::new();
    for (name, exists) in names.into_iter().zip(found) {
        if !exists? {
            missing.insert(name.to_string());
        }
    }
    Ok(missing)
}

async fn inspect_images(
    engine: &Engine,
    refs: &[String],
    into: &mut BTreeMap<String, plan::ImageInfo>,
) -> Result<(), EngineError> {
    let found = join_all(refs.iter().map(|r| engine.image_info(r))).await;
    for (r, info) in refs.iter().zip(found) {
        if let Some(info) = info? {
            into.insert(r.clone(), info);
        }
    }
    Ok(())
}
