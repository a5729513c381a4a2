//! `up` in three steps: **observe** what the engine has for the project
//! (one listing each of containers, networks and volumes, one inspect per
//! image), **plan** ([`crate::plan::plan`], pure), **apply**. `up --dry-run`
//! stops after the plan and the host-port checks.
//!
//! Applying: images first (pulls and builds overlap; a failed one leaves
//! nothing half-made), then orphans and duplicates go, the network and
//! volumes are made, every container to make is created at once, and each
//! service starts as soon as its own container is made and its own
//! dependencies meet their condition
//! (`started`: running; `ready`: probed ready and hooked; `completed`: ran
//! to exit 0) — not level by level, so one slow service beside an unrelated
//! chain does not hold the chain back. After a failure nothing more starts;
//! what is under way finishes, and the first failure is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::FutureExt;
use tokio::sync::oneshot;

use super::hooks::{hooks_done, run_hooks, HOOKS_DONE};
use super::ready::wait_ready;
use super::schedule::{self, Started};
use super::{lock_for, settle, ServiceOutcome, UpError, UpOptions};
use crate::config::model::{Mount, Port, Service, Stack};
use crate::engine::{
    container_name, project_dir, Engine, EngineError, LABEL_DIR, LABEL_ONEOFF, LABEL_PROJECT,
};
use crate::images::Images;
use crate::plan::PORTS_PART;
use crate::plan::{
    self, Actual, ContainerAction, ImageAction, Plan, PlanOptions, PortCheck, RemoveWhy,
    ServiceStep,
};
use crate::ports::Creating;
use crate::report::Reporter;

fn plan_options(opts: &UpOptions) -> PlanOptions {
    PlanOptions {
        services: opts.services.clone(),
        build: opts.build,
        create_paths: opts.create_paths,
        no_ports: opts.no_ports,
    }
}

/// The stack as its containers run on this engine: `sync` folders become
/// bind mounts where the engine can see the host's files, and on an engine
/// of this machine a port whose mapping names no host address is published
/// on the loopback address only (a database with the preset's password is
/// not for the café's network); `[project] bind_all_interfaces` or an
/// address in the mapping says otherwise. A remote engine's ports stay on
/// all its interfaces: loopback there would reach no one here.
fn as_run(engine: &Engine, stack: &Stack) -> Stack {
    let mut run = stack.clone();
    for svc in run.services.values_mut() {
        crate::watch::source::prepare(svc, &engine.endpoint);
    }
    let local = engine.endpoint.is_local();
    publish_on_loopback(&mut run, local, local && has_ipv6_loopback());
    run
}

/// Gives every mapping without a host address the loopback ones, on an
/// engine of this machine and unless the stack asks for all interfaces:
/// `127.0.0.1`, and `[::1]` at the same port where this machine has an
/// IPv6 loopback (`localhost` is both; a port the engine picks has no
/// same port to share, so it stays on IPv4).
fn publish_on_loopback(stack: &mut Stack, local_engine: bool, ipv6_loopback: bool) {
    if !local_engine || stack.bind_all_interfaces {
        return;
    }
    for port in stack.services.values_mut().flat_map(|s| &mut s.ports) {
        if port.host_ip.is_none() {
            port.host_ip = Some(LOOPBACK.to_string());
            port.loopback_v6 = ipv6_loopback && port.host.is_some();
        }
    }
}

/// Whether this machine has an IPv6 loopback to publish on (a host or
/// container without IPv6 has none, and the engine would refuse `[::1]`).
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Where a port without a host address is published on a local engine.
pub const LOOPBACK: &str = "127.0.0.1";

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
    let (containers, named, network, volumes) = futures_util::try_join!(
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

/// What `up` would do, with the host ports checked; changes nothing.
/// Images are not built or pulled: their services say so.
pub async fn dry_run(engine: &Engine, stack: &Stack, opts: &UpOptions) -> Result<Plan, UpError> {
    let selected = super::select(stack, &opts.services)?;
    let run = as_run(engine, stack);
    let actual = observe(engine, &run, &selected).await?;
    let mut plan = plan::plan(&run, &actual, &plan_options(opts))?;
    probe_ports(engine, &mut plan.port_checks).await?;
    Ok(plan)
}

/// Brings the selected services up and ready; returns what it did.
pub async fn up(
    engine: &Engine,
    stack: &Stack,
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    let lock = lock_for(&stack.project, "up", reporter.as_ref())?;
    settle(engine, &stack.project, &lock, reporter.as_ref()).await?;
    if !engine.endpoint.is_local()
        && !stack.bind_all_interfaces
        && stack
            .services
            .values()
            .flat_map(|s| &s.ports)
            .any(|p| p.host_ip.is_none())
    {
        reporter.notice(
            "the engine is on another machine: ports are published on all of its interfaces (its loopback would reach no one here)",
        );
    }
    let selected = super::select(stack, &opts.services)?;
    let mut round = 1;
    loop {
        match up_once(engine, stack, &selected, opts, reporter.clone()).await {
            // What the plan acted on changed under it (an interrupted run's
            // late request, another client): look again and plan anew.
            Err(e) if round < ROUNDS && e.changed_under_us().is_some() => {
                round += 1;
                reporter.notice(&format!(
                    "{}: the engine changed under this run, looking again ({round} of {ROUNDS})",
                    e.changed_under_us().unwrap_or_default()
                ));
            }
            r => return r,
        }
    }
}

/// How often `up` observes and plans before an engine that keeps changing
/// under it is reported as an error.
const ROUNDS: u32 = 3;

/// One observe → plan → apply round of [`up`], under its lock.
async fn up_once(
    engine: &Engine,
    stack: &Stack,
    selected: &[String],
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    let mut run = as_run(engine, stack);
    let mut actual = observe(engine, &run, selected).await?;
    let mut popts = plan_options(opts);
    let mut plan = plan::plan(&run, &actual, &popts)?;

    // Images first, all services at once (pulls and builds overlap): a failed
    // one must leave nothing half-created. Then plan again with their ids.
    let pending: Vec<&str> = plan
        .images
        .iter()
        .filter(|i| !matches!(i.action, ImageAction::Present { .. }))
        .map(|i| i.service.as_str())
        .collect();
    if !pending.is_empty() {
        let images = Images::default();
        let made = join_all(pending.iter().map(|name| {
            let (images, reporter, svc) = (&images, reporter.clone(), &run.services[*name]);
            async move {
                let image = images
                    .ensure(engine, svc, opts.build, reporter.as_ref())
                    .await?;
                let info = engine.image_info(&image).await?;
                Ok::<_, UpError>((image, info))
            }
        }))
        .await;
        for result in made {
            if let (image, Some(info)) = result? {
                actual.images.insert(image.to_string(), info);
            }
        }
        popts.build = false;
        plan = plan::plan(&run, &actual, &popts)?;
        if let Some(i) = plan
            .images
            .iter()
            .find(|i| !matches!(i.action, ImageAction::Present { .. }))
        {
            return Err(EngineError::ImageUnavailable {
                service: i.service.clone(),
                image: i.image.to_string(),
                reason: "the engine does not list it after it was made".into(),
            }
            .into());
        }
    }

    // Host ports for the containers about to be made: free ones where the
    // declared ones are taken (see `crate::ports`); the config hashes stay
    // the declared ports'.
    let creating: Vec<Creating> = plan
        .services
        .iter()
        .filter_map(|s| {
            let (replaces, ports_changed) = match &s.action {
                ContainerAction::Create => (None, false),
                ContainerAction::Recreate { id, changes } => {
                    (Some(id.clone()), changes.iter().any(|c| c == PORTS_PART))
                }
                _ => return None,
            };
            // What observe listed: no second listing of the project.
            let current = actual
                .containers
                .iter()
                .find(|c| Some(&c.id) == replaces.as_ref())
                .map(|c| c.published.iter().map(|(to, b)| (*to, b.port)).collect())
                .unwrap_or_default();
            Some(Creating {
                service: s.service.clone(),
                replaces,
                current,
                ports_changed,
            })
        })
        .collect();
    if !creating.is_empty() {
        let mut ported = run.clone();
        for step in &plan.services {
            if let Some(svc) = ported.services.get_mut(&step.service) {
                svc.ports = step.spec.ports.clone();
            }
        }
        crate::ports::assign(engine, &mut ported, &creating, reporter.as_ref()).await?;
        for step in &mut plan.services {
            if creating.iter().any(|c| c.service == step.service) {
                step.spec.ports = ported.services[&step.service].ports.clone();
            }
        }
    }
    for step in &plan.services {
        if let Some(svc) = run.services.get_mut(&step.service) {
            svc.image = step.spec.image.clone();
        }
    }
    apply(engine, stack, &run, &plan, opts, reporter).await
}

/// Checks each host port the plan needs, as `up` would (see
/// [`crate::ports::InUse`]: a port a container publishes, or on a local
/// engine one a socket cannot bind, is taken): free, or who holds it.
pub async fn probe_ports(engine: &Engine, checks: &mut [PortCheck]) -> Result<(), EngineError> {
    if checks.is_empty() {
        return Ok(());
    }
    let in_use = crate::ports::InUse::observe(engine).await?;
    for p in checks {
        let port = Port {
            host_ip: p.binding.host_ip.clone(),
            host: Some(p.binding.port),
            container: 0,
            protocol: p.binding.protocol,
            fixed: p.fixed,
            host_last: None,
            loopback_v6: false,
        };
        let free = !in_use.taken(&port);
        p.free = Some(free);
        if !free {
            p.holder = engine.port_holder(p.binding.port).await;
        }
    }
    Ok(())
}

/// The first checked port another process holds. The service's own
/// container holding it (running, or half-started by an interrupted run,
/// when the engine's proxy has the port but lists no running holder) is
/// about to be replaced or started: no conflict.
pub fn port_refusal(checks: &[PortCheck]) -> Result<(), UpError> {
    for p in checks {
        if p.free != Some(false) {
            continue;
        }
        if p.own.is_some() && (p.holder.is_none() || p.holder == p.own) {
            continue;
        }
        // Only a fixed port stops `up`; another moves to a free one.
        if !p.fixed {
            continue;
        }
        return Err(crate::ports::PortError::Taken {
            service: p.service.clone(),
            port: p.binding.port,
            holder: p.holder.clone(),
        }
        .into());
    }
    Ok(())
}

/// Makes a missing bind source (`--create-paths`): a folder, or an empty
/// file; each folder made on the way and the path itself go to `owner`.
/// What exists already is neither replaced nor given away.
fn make_path(
    path: &std::path::Path,
    file: bool,
    owner: Option<plan::Owner>,
) -> std::io::Result<()> {
    let made: Vec<&std::path::Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    if file {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => {}
            // Made meanwhile (another `up`): it is there, which is all we want.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    } else {
        std::fs::create_dir_all(path)?;
    }
    if let Some(o) = owner {
        for p in made {
            std::os::unix::fs::lchown(p, Some(o.uid), Some(o.gid))?;
        }
    }
    Ok(())
}

/// The service that mounts `path`, for an error about it.
fn mounting(plan: &Plan, path: &std::path::Path) -> String {
    plan.services
        .iter()
        .find(|s| {
            s.spec
                .mounts
                .iter()
                .any(|m| matches!(m, plan::MountSpec::Bind { source, .. } if source == path))
        })
        .map(|s| s.service.clone())
        .unwrap_or_default()
}

/// Carries out a plan whose images are all present.
async fn apply(
    engine: &Engine,
    stack: &Stack,
    run: &Stack,
    plan: &Plan,
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    let folders = plan.folders.iter().map(|p| (p, false));
    for (new, file) in folders.chain(plan.files.iter().map(|p| (p, true))) {
        make_path(&new.path, file, new.owner).map_err(|source| UpError::CreatePath {
            service: mounting(plan, &new.path),
            path: new.path.clone(),
            source,
        })?;
    }
    for r in &plan.removals {
        if r.why == RemoveWhy::Orphan {
            reporter.notice(&format!(
                "removing `{}`: it is no longer in the stack file",
                r.service
            ));
        }
        // Its anonymous volumes stay until `down -v`, as named ones do.
        engine.remove_container_keeping_volumes(&r.id).await?;
    }
    for notice in &plan.notices {
        reporter.notice(notice);
    }
    if let Some(network) = &plan.network {
        engine.ensure_network(&network.spec).await?;
    }
    for volume in &plan.volumes {
        engine.ensure_volume(&volume.spec).await?;
    }

    // Every container is created at once, up front, and each service's job
    // waits only for its own container (and its dependencies): a service
    // with none starts while the others are still being created.
    let mut made: HashMap<&str, std::sync::Mutex<Option<Created>>> = HashMap::new();
    let mut creates = Vec::new();
    for s in &plan.services {
        if matches!(
            s.action,
            ContainerAction::Create | ContainerAction::Recreate { .. }
        ) {
            let (tx, rx) = oneshot::channel();
            made.insert(s.service.as_str(), std::sync::Mutex::new(Some(rx)));
            let reporter = reporter.clone();
            creates.push(async move {
                // The receiver is gone only when its job was skipped.
                let made = create(engine, s, reporter.as_ref()).await;
                if made.is_ok() {
                    reporter.step(&s.service, "created");
                }
                let _ = tx.send(made);
            });
        }
    }

    let steps: Vec<(String, Vec<plan::Dependency>)> = plan
        .services
        .iter()
        .map(|s| (s.service.clone(), s.after.clone()))
        .collect();
    let made = &made;
    let scheduled = schedule::run(&steps, |i, started| {
        let step = &plan.services[i];
        let own = made
            .get(step.service.as_str())
            .and_then(|rx| rx.lock().expect("not poisoned").take());
        let reporter = reporter.clone();
        async move {
            let id = match own {
                Some(rx) => Some(rx.await.expect("every create reports")?),
                None => None,
            };
            bring_up(engine, run, step, id, opts, reporter.as_ref(), started).await
        }
    });
    let ((), results) = tokio::join!(join_all(creates).map(|_| ()), scheduled);
    let mut outcomes = Vec::new();
    let mut first_error = None;
    for result in results.into_iter().flatten() {
        match result {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let created_any = outcomes
        .iter()
        .any(|o| o.action != "running" || o.hooks_ran);
    // SQL seeds go in once every service (and so every migration) is up; the
    // ledger makes re-running cheap, but a no-op `up` skips even that.
    if created_any && !opts.no_hooks && !opts.no_seeds {
        let selected: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
        match crate::hooks::seeds_ready(stack, &selected) {
            crate::hooks::SeedsReady::Yes => {
                crate::hooks::apply_sql_seeds(engine, run, false, reporter.as_ref()).await?;
            }
            crate::hooks::SeedsReady::MigrationsNotRun(service) => {
                reporter.notice(&format!(
                    "seeds/ not applied: the migrations of `{service}` have not run (`devenv up` runs them, then the seeds)"
                ));
            }
            crate::hooks::SeedsReady::Nothing => {}
        }
    }
    Ok(outcomes)
}

/// The id of a service's container once it is made (or why it was not).
type Created = oneshot::Receiver<Result<String, UpError>>;

/// Makes the container of a created or recreated service (not started).
async fn create(
    engine: &Engine,
    step: &ServiceStep,
    reporter: &dyn Reporter,
) -> Result<String, UpError> {
    let name = &step.service;
    if let ContainerAction::Recreate { id, changes } = &step.action {
        reporter.task(
            name,
            &format!("recreating ({} changed)", changes.join(", ")),
        );
        engine.stop_container(id, Duration::from_secs(10)).await?;
        engine.remove_container_keeping_volumes(id).await?;
    } else {
        reporter.task(name, "creating");
    }
    // Containers are only ever removed by id: a removal by name sent by a
    // killed run can land late and would take this run's new container.
    let mut attempt = 0;
    loop {
        match engine.create_container(&step.spec).await {
            // A killed run's create can land after this run looked: a
            // container of this project and folder by that name goes, and
            // we try again.
            Err(e) if e.is_conflict() && attempt < 5 => {
                if let Some(holder) = engine.named_container(&step.container).await? {
                    let same = |key: &str| holder.labels.get(key) == step.spec.labels.get(key);
                    if !(same(LABEL_PROJECT) && same(LABEL_DIR)) {
                        return Err(e.into());
                    }
                    engine.remove_container_keeping_volumes(&holder.id).await?;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                attempt += 1;
            }
            r => return Ok(r?),
        }
    }
}

/// Starts one service (its container made already, if it is new), waits
/// until it is ready and runs its hooks. `started` is called once it runs.
async fn bring_up(
    engine: &Engine,
    stack: &Stack,
    step: &ServiceStep,
    created: Option<String>,
    opts: &UpOptions,
    reporter: &dyn Reporter,
    started: Started,
) -> Result<ServiceOutcome, UpError> {
    let name = &step.service;
    let svc = &stack.services[name];
    let (id, action) = match (&step.action, created) {
        (ContainerAction::Create | ContainerAction::Recreate { .. }, Some(id)) => {
            reporter.step(name, "starting");
            let id = crate::ports::start_created(engine, id, &step.spec, reporter).await?;
            let recreated = matches!(step.action, ContainerAction::Recreate { .. });
            (id, if recreated { "recreated" } else { "created" })
        }
        (ContainerAction::Keep { id }, _)
        | (ContainerAction::KeepUnlessImageChanges { id, running: true }, _) => {
            (id.clone(), "running")
        }
        (action, _) => {
            let id = action
                .id()
                .expect("a container to start exists")
                .to_string();
            reporter.task(name, "starting");
            match engine.start_container(&id).await {
                // Its host port went to another project while it was stopped.
                Err(e) if crate::ports::clashed_port(&e, &svc.ports).is_some() => {
                    reporter.task(name, "recreating on a free host port");
                    engine.remove_container_keeping_volumes(&id).await?;
                    let mut fresh = stack.clone();
                    if let Some(s) = fresh.services.get_mut(name) {
                        s.ports = step.spec.ports.clone();
                    }
                    let one = [Creating {
                        service: name.clone(),
                        replaces: None,
                        current: Vec::new(),
                        ports_changed: false,
                    }];
                    crate::ports::assign(engine, &mut fresh, &one, reporter).await?;
                    let mut spec = step.spec.clone();
                    spec.ports = fresh.services[name].ports.clone();
                    let id = engine.create_container(&spec).await?;
                    let id = crate::ports::start_created(engine, id, &spec, reporter).await?;
                    (id, "recreated")
                }
                r => {
                    r?;
                    (id, "started")
                }
            }
        }
    };
    // Sync mode: the container holds the working tree before it counts as ready.
    if let Some(done) = crate::watch::sync_service(engine, stack, name, &id, reporter).await? {
        reporter.task(name, &done);
    }
    started.now();
    let ready_after = match wait_ready(engine, stack, svc, &id, reporter).await {
        // A container that was already there may have been stopped under us
        // (a `down` interrupted a moment ago finishes its stop in the
        // engine): start it once more rather than fail.
        Err(UpError::NotReady { .. })
            if matches!(action, "running" | "started")
                && engine
                    .inspect_container(&id, &stack.project)
                    .await
                    .is_ok_and(|st| {
                        !st.running && st.exit_code.is_some_and(|c| c == 0 || c == 143)
                    }) =>
        {
            engine.start_container(&id).await?;
            wait_ready(engine, stack, svc, &id, reporter).await?
        }
        r => r?,
    };
    let hooks = &svc.hooks.after_up;
    // Hooks run on a new or started container, and again on a running one
    // whose hooks never all finished (one failed, `up` was interrupted).
    let hooks_ran = !opts.no_hooks
        && !hooks.is_empty()
        && (action != "running" || !hooks_done(engine, &id).await);
    if hooks_ran {
        run_hooks(engine, svc, &id, hooks, reporter).await?;
        let mark = vec!["touch".into(), HOOKS_DONE.into()];
        engine.exec(&id, mark, Vec::new(), None, |_| {}).await?;
    }
    reporter.done(
        name,
        if svc.ready.is_some() {
            "ready"
        } else {
            "started"
        },
        true,
    );
    Ok(ServiceOutcome {
        service: name.clone(),
        container: id,
        action,
        ready_after,
        hooks_ran,
    })
}

/// `devenv up --build SERVICE`, as the watcher's `rebuild` rules need it.
pub struct Rebuilder<'a> {
    pub engine: &'a Engine,
    pub stack: &'a Stack,
    pub reporter: Arc<dyn Reporter>,
}

impl crate::watch::Rebuild for Rebuilder<'_> {
    fn rebuild<'a>(
        &'a self,
        service: &'a str,
    ) -> futures_util::future::LocalBoxFuture<
        'a,
        Result<(), Box<dyn std::error::Error + Send + Sync>>,
    > {
        Box::pin(async move {
            let opts = UpOptions {
                services: vec![service.to_string()],
                build: true,
                no_hooks: false,
                ..UpOptions::default()
            };
            up(self.engine, self.stack, &opts, self.reporter.clone())
                .await
                .map(|_| ())
                .map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(extra: &str) -> Stack {
        crate::config::load_toml(&format!(
            "{extra}[services.db]\nimage = \"postgres:16\"\nports = [\"5432:5432\", \"0.0.0.0:8080:80\", \"9000\"]\n"
        ))
    }

    fn addresses(stack: &Stack) -> Vec<Option<String>> {
        stack.services["db"]
            .ports
            .iter()
            .map(|p| p.host_ip.clone())
            .collect()
    }

    #[test]
    fn a_local_engine_publishes_on_loopback_unless_the_mapping_or_the_project_says_otherwise() {
        let mut s = stack("");
        publish_on_loopback(&mut s, true, true);
        let lo = Some(LOOPBACK.to_string());
        assert_eq!(
            addresses(&s),
            vec![lo.clone(), Some("0.0.0.0".into()), lo.clone()]
        );
        // `[::1]` too, where the port is devenv's to choose and only there.
        assert_eq!(v6(&s), [true, false, false]);

        let mut no_v6 = stack("");
        publish_on_loopback(&mut no_v6, true, false);
        assert_eq!(addresses(&no_v6), addresses(&s));
        assert_eq!(v6(&no_v6), [false, false, false]);

        let mut remote = stack("");
        publish_on_loopback(&mut remote, false, true);
        assert_eq!(addresses(&remote), vec![None, Some("0.0.0.0".into()), None]);
        assert_eq!(v6(&remote), [false, false, false]);

        let mut all = stack("[project]\nbind_all_interfaces = true\n\n");
        publish_on_loopback(&mut all, true, true);
        assert_eq!(addresses(&all), vec![None, Some("0.0.0.0".into()), None]);
        assert_eq!(v6(&all), [false, false, false]);
    }

    fn v6(stack: &Stack) -> Vec<bool> {
        stack.services["db"]
            .ports
            .iter()
            .map(|p| p.loopback_v6)
            .collect()
    }
}
