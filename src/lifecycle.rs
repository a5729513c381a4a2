//! The stack's lifecycle on the engine: `up` (reconcile, start level by
//! level, wait for readiness, run hooks), `down`, status, stop/start/restart.
//! Truth lives in the engine's labels, so any of these repairs what an
//! interrupted earlier run left behind.

use std::collections::HashSet;
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::StreamExt;
use indexmap::IndexMap;

use crate::config::model::{Condition, Service, Stack};
use crate::engine::{
    container_name, network_name, project_dir, ContainerInfo, Engine, EngineError, OneOff,
    LABEL_COMPOSE_PROJECT, LABEL_DIR, LABEL_PROJECT,
};
use crate::images::{ImageError, Images};
use crate::plan::{self, Actual, Step};
use crate::probe::{self, NotReady};
use crate::report::Reporter;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UpError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),

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

    #[error("service `{service}` mounts `{}`, which does not exist", path.display())]
    #[diagnostic(
        code(devenv::up::bind_source),
        help("fix the path in `volumes` (relative paths start at the stack file's folder), create it, or pass `--create-paths` to have devenv create the missing folders")
    )]
    MissingBindSource {
        service: String,
        path: std::path::PathBuf,
    },

    #[error("service `{service}` {reason}")]
    #[diagnostic(code(devenv::up::not_ready), help("{hint}"))]
    NotReady {
        service: String,
        reason: String,
        logs: Vec<String>,
        hint: String,
    },

    #[error("hook `{command}` of service `{service}` failed with exit code {code}")]
    #[diagnostic(
        code(devenv::up::hook),
        help("its output is above; the containers are left running so you can look (`devenv exec {service} -- sh`)")
    )]
    Hook {
        service: String,
        command: String,
        code: i64,
        output: Vec<String>,
    },

    #[error("hook `{command}` of service `{service}` did not finish within {timeout:?}: stopped")]
    #[diagnostic(
        code(devenv::up::hook_timeout),
        help("its output is above; raise `hooks.timeout` if it needs longer, and the next `devenv up` runs the hooks again")
    )]
    HookTimeout {
        service: String,
        command: String,
        timeout: Duration,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Seed(#[from] crate::hooks::SeedError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Sync(#[from] crate::watch::WatchError),

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

    #[error("cannot take the project lock `{path}`")]
    #[diagnostic(
        code(devenv::up::lock),
        help("devenv keeps its locks in a folder only the invoking user may enter (mode 700); the cause is below")
    )]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl UpError {
    /// Usage errors are 2, everything else a failed job (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            UpError::UnknownService(_) | UpError::OtherFolder { .. } | UpError::NotOurs { .. } => 2,
            _ => 1,
        }
    }
}

/// Holds the per-project lock for as long as it lives.
pub struct ProjectLock(#[allow(dead_code)] File);

/// Takes the per-project lock so two devenv commands on one project do not
/// interleave; waits (saying so) when another holds it.
///
/// The lock file lives in devenv's private folder (see [`crate::scratch`]),
/// never at a predictable path in a shared `/tmp`.
pub fn lock(project: &str, reporter: &dyn Reporter) -> Result<ProjectLock, UpError> {
    let dir = crate::scratch::private_dir().map_err(|source| UpError::Lock {
        path: "devenv's private folder".into(),
        source,
    })?;
    let path = dir.join(format!("{project}.lock"));
    let err = |source| UpError::Lock {
        path: path.display().to_string(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(err)?;
    if file.try_lock().is_err() {
        reporter.notice(&format!(
            "waiting for another devenv working on project `{project}`"
        ));
        file.lock().map_err(err)?;
    }
    Ok(ProjectLock(file))
}

/// The project's containers, after checking that the project is this
/// folder's: a same-named project of another folder is refused, never touched.
///
/// What counts as another folder's: an object (container, network, volume)
/// labelled with a folder that still exists and is not this one. Objects
/// with no folder label are adopted: devenv made them before it recorded
/// folders, and refusing would strand every existing stack. Objects whose
/// folder is gone are adopted too: the project was moved or renamed, and its
/// data should follow it.
pub async fn owned_containers(
    engine: &Engine,
    stack: &Stack,
) -> Result<Vec<ContainerInfo>, UpError> {
    let containers = engine.list_containers(&stack.project).await?;
    let network = engine.network_labels(&stack.project).await?;
    let volumes = engine.list_volumes(&stack.project).await?;
    let network_dir = network
        .as_ref()
        .filter(|l| l.get(LABEL_PROJECT) == Some(&stack.project))
        .and_then(|l| l.get(LABEL_DIR).cloned());
    let dirs = containers
        .iter()
        .filter_map(|c| c.dir.clone())
        .chain(network_dir)
        .chain(volumes.into_iter().filter_map(|v| v.dir));
    let ours = project_dir(stack);
    for dir in dirs {
        if dir != ours && std::path::Path::new(&dir).exists() {
            return Err(UpError::OtherFolder {
                project: stack.project.clone(),
                theirs: dir,
                ours,
            });
        }
    }
    Ok(containers)
}

/// Who made a container, from its labels, for [`UpError::NotOurs`].
fn maker(labels: &std::collections::HashMap<String, String>) -> String {
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

/// Refuses when the name the service's container needs is held by a
/// container that is not this project's (Compose, Sail, another tool):
/// devenv would have to remove it.
async fn check_name_free(engine: &Engine, stack: &Stack, service: &str) -> Result<(), UpError> {
    let name = container_name(&stack.project, service);
    let Some(labels) = engine.container_labels(&name).await? else {
        return Ok(());
    };
    let dir = labels.get(LABEL_DIR);
    let ours = labels.get(LABEL_PROJECT) == Some(&stack.project)
        && dir.is_none_or(|d| *d == project_dir(stack) || !std::path::Path::new(d).exists());
    if ours {
        return Ok(());
    }
    Err(UpError::NotOurs {
        container: name,
        service: service.to_string(),
        maker: maker(&labels),
    })
}

/// Docker names an anonymous volume by 64 hex digits.
fn is_anonymous(volume: &str) -> bool {
    volume.len() == 64 && volume.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What `up` asks for.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services to bring up (with their dependencies); empty means all.
    pub services: Vec<String>,
    /// Rebuild images of services with `build`.
    pub build: bool,
    /// Skip `after_up` hooks.
    pub no_hooks: bool,
    /// Leave `seeds/*.sql` alone: the caller (a one-off, `devenv test`) is
    /// not bringing up the development stack, whose migrations the seeds need.
    pub no_seeds: bool,
    /// Create missing bind-mount sources as folders instead of refusing.
    pub create_paths: bool,
    /// Publish no host ports on the containers this `up` creates (`devenv
    /// test` reaches its services on the project network); containers that
    /// `up` made with their ports are left as they are.
    pub no_ports: bool,
}

/// What `up` did, per service.
#[derive(Debug, Clone)]
pub struct ServiceOutcome {
    pub service: String,
    pub container: String,
    /// `created`, `recreated`, `started` or `running` (untouched).
    pub action: &'static str,
    pub ready_after: Option<Duration>,
    /// Its `after_up` hooks ran this time.
    pub hooks_ran: bool,
}

/// The services asked for plus everything they depend on, in file order.
pub fn select(stack: &Stack, wanted: &[String]) -> Result<Vec<String>, UpError> {
    if wanted.is_empty() {
        return Ok(stack.services.keys().cloned().collect());
    }
    let mut keep = HashSet::new();
    let mut todo: Vec<String> = wanted.to_vec();
    while let Some(name) = todo.pop() {
        let svc = stack
            .services
            .get(&name)
            .ok_or_else(|| UpError::UnknownService(name.clone()))?;
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

/// Brings the selected services up and ready; returns what it did.
pub async fn up(
    engine: &Engine,
    stack: &Stack,
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    let _lock = lock(&stack.project, reporter.as_ref())?;
    let selected = select(stack, &opts.services)?;

    // Images first, all services at once (pulls and builds overlap): a failed
    // one must leave nothing half-created.
    let images = Images::default();
    let resolved = join_all(selected.iter().map(|name| {
        let (images, reporter) = (&images, reporter.clone());
        async move {
            let image = images
                .ensure(engine, &stack.services[name], opts.build, reporter.as_ref())
                .await?;
            let id = engine.image_id(&image).await?.unwrap_or_default();
            Ok::<_, UpError>((image, id))
        }
    }))
    .await;
    let mut desired = IndexMap::new();
    let mut image_ids = IndexMap::new();
    let mut run_stack = stack.clone();
    for (name, result) in selected.iter().zip(resolved) {
        let (image, id) = result?;
        image_ids.insert(name.clone(), id.clone());
        let run_svc = run_stack
            .services
            .get_mut(name)
            .expect("selected services exist");
        run_svc.image = image;
        crate::watch::source::prepare(run_svc, &engine.endpoint);
        desired.insert(name.clone(), plan::config_hash(run_svc, &id));
    }

    let containers: Vec<ContainerInfo> = owned_containers(engine, stack)
        .await?
        .into_iter()
        .filter(|c| !c.oneoff)
        .collect();
    let actual: Vec<Actual> = containers
        .iter()
        .map(|c| Actual {
            service: c.service.clone(),
            id: c.id.clone(),
            hash: c.hash.clone(),
            running: c.state == "running",
        })
        .collect();
    // Services out of the active profiles are still the stack's, not orphans.
    let known: Vec<String> = stack
        .services
        .keys()
        .chain(&stack.inactive)
        .cloned()
        .collect();
    if opts.no_ports {
        for (name, hash) in desired.iter_mut() {
            // A container `up` made with its ports is as good as one without.
            if !containers
                .iter()
                .any(|c| &c.service == name && &c.hash == hash)
            {
                let svc = run_stack.services.get_mut(name).expect("selected");
                svc.ports.clear();
                *hash = plan::config_hash(svc, &image_ids[name]);
            }
        }
    }
    let steps = plan::diff(&desired, &known, &actual);

    // Host ports for the containers about to be made: free ones where the
    // declared ones are taken (see `crate::ports`).
    let creating: Vec<(String, Option<String>)> = steps
        .iter()
        .filter_map(|step| match step {
            Step::Create { service } => Some((service.clone(), None)),
            Step::Recreate { service, id } => Some((service.clone(), Some(id.clone()))),
            _ => None,
        })
        .collect();
    crate::ports::assign(
        engine,
        &mut run_stack,
        &creating,
        &containers,
        reporter.as_ref(),
    )
    .await?;
    // Before anything changes: a name held by someone else's container stops the whole `up`.
    for step in &steps {
        if let Step::Create { service } | Step::Recreate { service, .. } = step {
            check_name_free(engine, stack, service).await?;
        }
    }
    check_bind_sources(&run_stack, &steps, opts.create_paths)?;

    for step in &steps {
        if let Step::Remove { service, id } = step {
            if !stack.services.contains_key(service) {
                reporter.notice(&format!(
                    "removing `{service}`: it is no longer in the stack file"
                ));
            }
            // Its anonymous volumes stay until `down -v`, as named ones do.
            engine.remove_container_keeping_volumes(id).await?;
        }
    }
    // Also when nothing is recreated: the options are not in the services' hashes.
    for (name, vol) in stack.volumes.iter().filter(|(_, v)| !v.external) {
        warn_changed_volume(engine, &stack.project, name, vol, reporter.as_ref()).await?;
    }
    let needs_objects = steps
        .iter()
        .any(|s| matches!(s, Step::Create { .. } | Step::Recreate { .. }));
    if needs_objects {
        engine.ensure_network(stack).await?;
        for (name, vol) in &stack.volumes {
            if !vol.external {
                engine.ensure_volume(stack, name, vol).await?;
            }
        }
    }

    let deps: IndexMap<String, Vec<String>> = selected
        .iter()
        .map(|n| {
            (
                n.clone(),
                stack.services[n].depends_on.keys().cloned().collect(),
            )
        })
        .collect();
    let levels = plan::levels(&deps).expect("config rejected cycles");
    let step_of = |name: &str| steps.iter().find(|s| step_service(s) == name).cloned();

    let mut outcomes = Vec::new();
    let mut created_any = false;
    for level in levels {
        let jobs = level.iter().map(|name| {
            let svc = &run_stack.services[name];
            let step = step_of(name).expect("every selected service has a step");
            let hash = &desired[name];
            let reporter = reporter.clone();
            let stack = &run_stack;
            async move { bring_up(engine, stack, svc, step, hash, opts, reporter.as_ref()).await }
        });
        for result in join_all(jobs).await {
            let outcome = result?;
            created_any |= outcome.action != "running" || outcome.hooks_ran;
            outcomes.push(outcome);
        }
    }
    // SQL seeds go in once every service (and so every migration) is up; the
    // ledger makes re-running cheap, but a no-op `up` skips even that.
    if created_any && !opts.no_hooks && !opts.no_seeds {
        match crate::hooks::seeds_ready(stack, &selected) {
            crate::hooks::SeedsReady::Yes => {
                crate::hooks::apply_sql_seeds(engine, &run_stack, false, reporter.as_ref()).await?;
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

fn step_service(step: &Step) -> &str {
    match step {
        Step::Create { service }
        | Step::Recreate { service, .. }
        | Step::Start { service, .. }
        | Step::Keep { service, .. }
        | Step::Remove { service, .. } => service,
    }
}

/// Refuses before creating anything when a bind mount's host path is
/// missing (the engine would make it a root-owned folder), or creates the
/// folders when asked to.
fn check_bind_sources(stack: &Stack, steps: &[Step], create: bool) -> Result<(), UpError> {
    for step in steps {
        let (Step::Create { service } | Step::Recreate { service, .. }) = step else {
            continue;
        };
        for m in &stack.services[service].volumes {
            let crate::config::model::Mount::Bind { source, .. } = m else {
                continue;
            };
            if source.exists() {
                continue;
            }
            let missing = || UpError::MissingBindSource {
                service: service.clone(),
                path: source.clone(),
            };
            if !create {
                return Err(missing());
            }
            std::fs::create_dir_all(source).map_err(|_| missing())?;
        }
    }
    Ok(())
}

/// Says so when an existing volume was made with other driver options than
/// the file now asks for: the engine keeps the old ones until it is recreated.
async fn warn_changed_volume(
    engine: &Engine,
    project: &str,
    name: &str,
    vol: &crate::config::model::Volume,
    reporter: &dyn Reporter,
) -> Result<(), EngineError> {
    let Some((driver, options)) = engine.volume_driver(project, name).await? else {
        return Ok(());
    };
    let wanted = vol.driver.as_deref().unwrap_or("local");
    if driver != wanted || options != vol.driver_opts {
        reporter.notice(&format!(
            "volume `{name}` was created with other driver options than `dev.toml` gives; they apply only once it is recreated: `devenv down -v` (its data is lost), then `devenv up`"
        ));
    }
    Ok(())
}

async fn bring_up(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    step: Step,
    hash: &str,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<ServiceOutcome, UpError> {
    let name = &svc.name;
    let (id, action) = match step {
        Step::Keep { id, .. } => (id, "running"),
        Step::Start { id, .. } => {
            reporter.task(name, "starting");
            match engine.start_container(&id).await {
                // Its host port went to another project while it was stopped.
                Err(e) if crate::ports::clashed_port(&e, svc).is_some() => {
                    reporter.task(name, "recreating on a free host port");
                    let mut carried = engine.volume_mounts(&id).await?;
                    carried.retain(|_, volume| is_anonymous(volume));
                    engine.remove_container_keeping_volumes(&id).await?;
                    let mut fresh = stack.clone();
                    let one = [(name.clone(), None)];
                    crate::ports::assign(engine, &mut fresh, &one, &[], reporter).await?;
                    let svc = &fresh.services[name];
                    let id = crate::ports::create_and_start(
                        engine, stack, svc, hash, &carried, reporter,
                    )
                    .await?;
                    (id, "recreated")
                }
                r => {
                    r?;
                    (id, "started")
                }
            }
        }
        Step::Create { .. } | Step::Recreate { .. } => {
            let recreate = matches!(step, Step::Recreate { .. });
            let mut carried = std::collections::HashMap::new();
            if let Step::Recreate { id, .. } = &step {
                reporter.task(name, "recreating");
                // Docker's own anonymous volumes (containers made before devenv
                // labelled them) go over to the new container, as Compose does.
                carried = engine.volume_mounts(id).await?;
                carried.retain(|_, volume| is_anonymous(volume));
                engine.stop_container(id, Duration::from_secs(10)).await?;
                engine.remove_container_keeping_volumes(id).await?;
            } else {
                reporter.task(name, "creating");
            }
            // A leftover container by the same name (from a killed run) is in
            // the way; `up` checked that it is this project's before it began.
            engine
                .remove_container_keeping_volumes(&container_name(&stack.project, name))
                .await?;
            let id = crate::ports::create_and_start(engine, stack, svc, hash, &carried, reporter)
                .await?;
            (id, if recreate { "recreated" } else { "created" })
        }
        Step::Remove { .. } => unreachable!("removals are done before starting"),
    };
    // Sync mode: the container holds the working tree before it counts as ready.
    if let Some(done) = crate::watch::sync_service(engine, stack, name, &id, reporter).await? {
        reporter.task(name, &done);
    }
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

/// Waits until the service meets the strongest condition anyone needs of it:
/// ready (with a probe), or completed for one-off jobs dependents wait on.
/// Fails fast, with the service's last log lines, when it cannot get there:
/// it exits, keeps being restarted by its restart policy (a crash loop), or
/// its probe can never pass (an exec probe's missing binary, no HEALTHCHECK).
pub async fn wait_ready(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    id: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Duration>, UpError> {
    let awaited_completion = stack
        .services
        .values()
        .any(|s| s.depends_on.get(&svc.name) == Some(&Condition::Completed));
    if awaited_completion {
        reporter.task(&svc.name, "running to completion");
        let code = engine.wait_container(id).await?;
        if code != 0 {
            return Err(not_ready(
                engine,
                svc,
                id,
                explain_exit(code, false),
                "its log is above".into(),
            )
            .await);
        }
        return Ok(None);
    }
    if svc.ready.is_some() {
        reporter.task(&svc.name, "waiting until ready");
    }
    let probing = probe::await_ready(
        engine,
        &stack.project,
        id,
        svc.ready.as_ref(),
        svc.ready_timeout,
    );
    let result = tokio::select! {
        r = probing => r,
        failure = doomed(engine, &stack.project, svc, id) => return Err(failure_of(engine, svc, id, failure).await),
    };
    match result {
        Ok(d) => Ok(svc.ready.as_ref().map(|_| d)),
        Err(NotReady::Engine(e)) => Err(e.into()),
        // A one-shot job with nothing to probe did its work: that is not a failure.
        Err(NotReady::Exited(0)) if svc.ready.is_none() => Ok(None),
        Err(NotReady::Exited(code)) => {
            let oom = engine
                .inspect_container(id, &stack.project)
                .await
                .is_ok_and(|st| st.oom_killed);
            Err(not_ready(
                engine,
                svc,
                id,
                format!("{} before it was ready", explain_exit(code, oom)),
                "its last log lines are above; fix the cause and run `devenv up` again".into(),
            )
            .await)
        }
        Err(NotReady::TimedOut(last)) => Err(not_ready(
            engine,
            svc,
            id,
            format!("was not ready after {:?}: {last}", svc.ready_timeout),
            "check the `ready` probe (port, path, credentials) or raise `ready_timeout`".into(),
        )
        .await),
    }
}

/// Why waiting for a service is pointless.
enum Doomed {
    /// The engine restarted it (restart policy); how its last run ended.
    CrashLoop { restarts: i64, exit: Option<String> },
    /// The probe can never pass.
    Probe(String),
}

/// Resolves only when the service cannot become ready: its restart count
/// grows while we wait, or its probe fails in a way no retry will fix.
async fn doomed(engine: &Engine, project: &str, svc: &Service, id: &str) -> Doomed {
    let mut first: Option<i64> = None;
    let mut probed_once = false;
    let mut last_exit = None;
    loop {
        if let Ok(st) = engine.inspect_container(id, project).await {
            // A running container's exit code is 0: only a stopped one tells.
            if !st.running || st.restarting {
                last_exit = st.exit_code.map(|c| explain_exit(c, st.oom_killed));
            }
            let base = *first.get_or_insert(st.restart_count);
            if st.restart_count > base {
                return Doomed::CrashLoop {
                    restarts: st.restart_count - base,
                    exit: last_exit,
                };
            }
            if st.running && !st.restarting && !probed_once {
                probed_once = true;
                if let Some(why) = hopeless_probe(engine, svc, id, &st).await {
                    return Doomed::Probe(why);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A probe failure no retry fixes: the exec probe's program is not in the
/// image, or the image has no HEALTHCHECK for a `docker` probe.
async fn hopeless_probe(
    engine: &Engine,
    svc: &Service,
    id: &str,
    st: &crate::engine::ContainerStatus,
) -> Option<String> {
    use crate::config::model::Probe;
    match svc.ready.as_ref()? {
        Probe::Docker if st.health.is_none() => {
            Some("has a `docker` probe but its image has no HEALTHCHECK".to_string())
        }
        p @ Probe::Exec { command } => {
            let err = probe::check(engine, p, &probe::Target::from_status(id, st))
                .await
                .err()?;
            let err = err.to_lowercase();
            let missing = err.contains("executable file not found")
                || (err.contains("oci runtime") && err.contains("no such file"))
                || err.contains("exited with 127:");
            missing.then(|| {
                format!(
                    "has an exec probe whose program `{}` is not in its image",
                    command.first().map(String::as_str).unwrap_or_default()
                )
            })
        }
        _ => None,
    }
}

async fn failure_of(engine: &Engine, svc: &Service, id: &str, doomed: Doomed) -> UpError {
    match doomed {
        Doomed::CrashLoop { restarts, exit } => {
            not_ready(
                engine,
                svc,
                id,
                format!(
                    "keeps crashing: {}restarted {restarts} time{} while devenv waited",
                    exit.map(|e| format!("it {e} and was "))
                        .unwrap_or_else(|| "it was ".into()),
                    if restarts == 1 { "" } else { "s" }
                ),
                "its last log lines are above; fix the cause and run `devenv up` again".into(),
            )
            .await
        }
        Doomed::Probe(why) => {
            not_ready(
                engine,
                svc,
                id,
                why,
                "use a probe the image can answer (`devenv config` shows the resolved one)".into(),
            )
            .await
        }
    }
}

async fn not_ready(
    engine: &Engine,
    svc: &Service,
    id: &str,
    reason: String,
    hint: String,
) -> UpError {
    let logs = engine.tail_logs(id, 15).await.unwrap_or_default();
    UpError::NotReady {
        service: svc.name.clone(),
        reason,
        logs,
        hint,
    }
}

/// Brings up what one-off containers of `service` need, exactly as `up`
/// would (its dependencies, plus the services in `also`), and returns the
/// service as a one-off runs it — image present, network and volumes made,
/// no published ports (its own container may hold them) — with what `up` did.
pub async fn prepare_oneoff(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    also: &[String],
    reporter: Arc<dyn Reporter>,
) -> Result<(Service, Vec<ServiceOutcome>), UpError> {
    let Some(svc) = stack.services.get(service) else {
        return Err(UpError::UnknownService(service.to_string()));
    };
    owned_containers(engine, stack).await?;
    let mut needs: Vec<String> = svc.depends_on.keys().cloned().collect();
    needs.extend(
        also.iter()
            .filter(|s| !needs.contains(s))
            .cloned()
            .collect::<Vec<_>>(),
    );
    // An empty selection would mean the whole stack.
    let outcomes = if needs.is_empty() {
        Vec::new()
    } else {
        let opts = UpOptions {
            services: needs,
            no_seeds: true,
            no_ports: true,
            ..UpOptions::default()
        };
        up(engine, stack, &opts, reporter.clone()).await?
    };
    engine.ensure_network(stack).await?;
    for (name, vol) in &stack.volumes {
        if !vol.external {
            engine.ensure_volume(stack, name, vol).await?;
        }
    }
    let mut svc = svc.clone();
    svc.image = Images::default()
        .ensure(engine, &svc, false, reporter.as_ref())
        .await?;
    svc.ports.clear();
    crate::watch::source::prepare(&mut svc, &engine.endpoint);
    Ok((svc, outcomes))
}

/// Creates and starts a one-off container of `svc` (as [`prepare_oneoff`]
/// returned it), passes its output to `on_output` as it comes, and returns
/// the container's id and exit code once it stops. The caller removes it.
pub async fn run_oneoff(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    oneoff: &OneOff,
    mut on_output: impl FnMut(&str),
) -> Result<(String, i64), EngineError> {
    let id = engine
        .create_container(stack, svc, "oneoff", Some(oneoff))
        .await?;
    // Sync mode: the checkout's code, not the image's.
    if let Err(e) = crate::watch::sync_oneoff(engine, stack, svc, &id).await {
        let _ = engine.remove_container(&id).await;
        return Err(match e {
            crate::watch::WatchError::Engine(e) => e,
            e => EngineError::Copy {
                container: oneoff.name.clone(),
                detail: e.to_string(),
            },
        });
    }
    // Attached before the start, so not a line of a short-lived command is lost.
    let mut logs = engine.follow_logs(&id, None, true);
    engine.start_container(&id).await?;
    while let Some(chunk) = logs.next().await {
        on_output(&chunk?);
    }
    let code = engine.wait_container(&id).await?;
    Ok((id, code))
}

/// Where a running hook leaves its process group id, so it can be stopped.
const HOOK_PID: &str = "/tmp/.devenv-hook.pid";
/// Present once every `after_up` hook of the container succeeded: hooks of
/// a container without it (a hook failed, `up` was killed) run again.
const HOOKS_DONE: &str = "/tmp/.devenv-hooks-done";

/// `command` for `sh -c`, in a session of its own (where `setsid` can) whose
/// id is written to [`HOOK_PID`], so that [`stop_hook`] ends it and all its
/// children.
fn hook_script(command: &str) -> String {
    let quoted = format!("'{}'", command.replace('\'', "'\\''"));
    format!(
        // The id file goes when the hook ends, so a stale one never names another process.
        "if setsid -w true 2>/dev/null; then exec setsid -w sh -c 'echo $$ > {HOOK_PID}; sh -c \"$1\"; c=$?; rm -f {HOOK_PID}; exit $c' hook {quoted}; else echo $$ > {HOOK_PID}; sh -c {quoted}; c=$?; rm -f {HOOK_PID}; exit $c; fi"
    )
}

/// Stops the hook running in container `id`, if one is.
pub async fn stop_hook(engine: &Engine, id: &str) {
    let kill = format!(
        "p=$(cat {HOOK_PID} 2>/dev/null) && [ -n \"$p\" ] && {{ kill -TERM -$p 2>/dev/null || kill -TERM $p; rm -f {HOOK_PID}; }}"
    );
    let _ = engine
        .exec(
            id,
            vec!["sh".into(), "-c".into(), kill],
            Vec::new(),
            None,
            |_| {},
        )
        .await;
}

/// Whether every `after_up` hook of container `id` has succeeded.
async fn hooks_done(engine: &Engine, id: &str) -> bool {
    // One archive request, cheaper than an exec: a no-op `up` pays it per hooked service.
    matches!(engine.download_file(id, HOOKS_DONE).await, Ok(Some(_)))
}

/// Runs hook commands in the service's container, in order; the first
/// failure stops. Each may run for `hooks.timeout`, then it is stopped.
pub async fn run_hooks(
    engine: &Engine,
    svc: &Service,
    id: &str,
    commands: &[String],
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    for command in commands {
        reporter.task(&svc.name, &format!("running `{}`", svc.mask(command)));
        let script = hook_script(command);
        let run = exec_shell(engine, svc, id, &script, reporter);
        let output = match tokio::time::timeout(svc.hooks.timeout, run).await {
            Ok(r) => r?,
            Err(_) => {
                stop_hook(engine, id).await;
                return Err(UpError::HookTimeout {
                    service: svc.name.clone(),
                    command: svc.mask(command),
                    timeout: svc.hooks.timeout,
                });
            }
        };
        if output.0 != 0 {
            return Err(UpError::Hook {
                service: svc.name.clone(),
                command: svc.mask(command),
                code: output.0,
                output: output.1,
            });
        }
    }
    Ok(())
}

/// `sh -c command` in the container, streaming lines to the reporter.
pub async fn exec_shell(
    engine: &Engine,
    svc: &Service,
    id: &str,
    command: &str,
    reporter: &dyn Reporter,
) -> Result<(i64, Vec<String>), EngineError> {
    let mut lines = Vec::new();
    let mut partial = String::new();
    let code = engine
        .exec(
            id,
            vec!["sh".into(), "-c".into(), command.to_string()],
            Vec::new(),
            None,
            |chunk| {
                partial.push_str(chunk);
                while let Some(pos) = partial.find('\n') {
                    let line: String = partial.drain(..=pos).collect();
                    // A hook that echoes a secret must not print it.
                    let line = svc.mask(line.trim_end());
                    reporter.output(&svc.name, &line);
                    lines.push(line);
                }
            },
        )
        .await?;
    if !partial.trim().is_empty() {
        let line = svc.mask(partial.trim_end());
        reporter.output(&svc.name, &line);
        lines.push(line);
    }
    Ok((code, lines))
}

/// Stops and removes the project's containers and network; volumes too with
/// `volumes`. Only what carries this project's labels (and is this folder's)
/// is touched: a same-named Compose stack's containers, network and volumes
/// are left alone.
pub async fn down(
    engine: &Engine,
    stack: &Stack,
    volumes: bool,
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let project = &stack.project;
    let _lock = lock(project, reporter)?;
    let containers = owned_containers(engine, stack).await?;
    let jobs = containers.iter().map(|c| async move {
        reporter.task(&c.service, "stopping");
        engine
            .stop_container(&c.id, Duration::from_secs(10))
            .await?;
        // A one-off's anonymous volumes are scratch; a service's hold its
        // data (containers made before devenv labelled them) until `-v`.
        if volumes || c.oneoff {
            engine.remove_container(&c.id).await?;
        } else {
            engine.remove_container_keeping_volumes(&c.id).await?;
        }
        reporter.done(&c.service, "removed", true);
        Ok::<_, EngineError>(())
    });
    for r in join_all(jobs).await {
        r?;
    }
    let network = network_name(project);
    let labels = engine.network_labels(project).await?;
    if labels
        .as_ref()
        .is_some_and(|l| l.get(LABEL_PROJECT) != Some(project))
    {
        reporter.notice(&format!(
            "left network `{network}` alone: devenv did not create it"
        ));
    } else if labels.is_some() && engine.remove_network(project).await? {
        reporter.notice(&format!("removed network `{network}`"));
    }
    if volumes {
        for v in engine.list_volumes(project).await? {
            engine.remove_volume(&v.name).await?;
            reporter.notice(&format!("removed volume `{}`", v.name));
        }
    }
    Ok(())
}

/// One service as `ps` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub container: String,
    pub name: String,
    pub state: String,
    pub ready: bool,
    pub ports: Vec<String>,
    /// Where to reach it from the host, labelled (app, mail UI, S3 console).
    pub urls: Vec<crate::urls::Url>,
}

/// The state of every service container, with readiness probed once, in parallel.
pub async fn status(engine: &Engine, stack: &Stack) -> Result<Vec<ServiceStatus>, EngineError> {
    let containers = engine.list_containers(&stack.project).await?;
    let jobs = containers
        .into_iter()
        .filter(|c| !c.oneoff)
        .map(|c| async move {
            let svc = stack.services.get(&c.service);
            let mut ready = false;
            let mut ports = Vec::new();
            let mut urls = Vec::new();
            if c.state == "running" {
                let st = engine.inspect_container(&c.id, &stack.project).await?;
                let mut published: Vec<_> = st.published.iter().collect();
                published.sort();
                ports = published.iter().map(|(c, h)| format!("{h}->{c}")).collect();
                let pairs: Vec<(u16, u16)> = published.iter().map(|(c, h)| (**c, **h)).collect();
                urls = crate::urls::service_urls(&c.service, svc, &pairs);
                ready = match svc.and_then(|s| s.ready.as_ref()) {
                    Some(p) => probe::check(engine, p, &probe::Target::from_status(&c.id, &st))
                        .await
                        .is_ok(),
                    None => true,
                };
            }
            Ok::<_, EngineError>(ServiceStatus {
                service: c.service,
                container: c.id,
                name: c.name,
                state: c.state,
                ready,
                ports,
                urls,
            })
        });
    let mut out = join_all(jobs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    // File order, then anything no longer in the file.
    let order = |s: &ServiceStatus| {
        stack
            .services
            .get_index_of(&s.service)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(|s| (order(s), s.service.clone()));
    Ok(out)
}

/// Why devenv itself restarted a service, kept until the log follower of
/// the same process says so on the service's restart line.
static RESTART_NOTES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Records that devenv is about to restart (or recreate) `service`, and why.
pub fn note_restart(service: &str, why: &str) {
    let mut notes = RESTART_NOTES
        .lock()
        .expect("no panics while holding the lock");
    notes.retain(|(s, _)| s != service);
    notes.push((service.to_string(), why.to_string()));
}

/// The reason recorded by [`note_restart`] for `service`, once.
pub fn take_restart_note(service: &str) -> Option<String> {
    let mut notes = RESTART_NOTES
        .lock()
        .expect("no panics while holding the lock");
    let pos = notes.iter().position(|(s, _)| s == service)?;
    Some(notes.remove(pos).1)
}

/// A container's exit code in words, where it means more than a number:
/// 137 and 143 are signals, and 137 is what an out-of-memory kill looks like.
pub fn explain_exit(code: i64, oom_killed: bool) -> String {
    match code {
        _ if oom_killed => format!("exited with code {code} (killed: out of memory)"),
        137 => format!("exited with code {code} (killed: out of memory or by a signal)"),
        143 => format!("exited with code {code} (stopped by SIGTERM)"),
        _ => format!("exited with code {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_containers_maker_is_named_from_its_labels() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        assert_eq!(
            maker(&labels(&[
                (LABEL_COMPOSE_PROJECT, "shop"),
                ("com.docker.compose.project.working_dir", "/home/a/shop"),
            ])),
            "Docker Compose made it (project `shop` in `/home/a/shop`)"
        );
        assert_eq!(
            maker(&labels(&[(LABEL_PROJECT, "shop"), (LABEL_DIR, "/b/shop")])),
            "devenv made it for project `shop` in `/b/shop`"
        );
        assert_eq!(
            maker(&labels(&[])),
            "something else made it (it has no `devenv.project` label)"
        );
    }

    #[test]
    fn only_dockers_own_volume_names_count_as_anonymous() {
        assert!(is_anonymous(&"0123456789abcdef".repeat(4)));
        assert!(!is_anonymous("shop_pgdata"));
        assert!(!is_anonymous(&"g".repeat(64)));
    }
}
