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
use crate::engine::{container_name, ContainerInfo, Engine, EngineError, OneOff};
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

    #[error(transparent)]
    #[diagnostic(transparent)]
    Seed(#[from] crate::hooks::SeedError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Sync(#[from] crate::watch::WatchError),

    #[error("unknown service `{0}`")]
    #[diagnostic(code(devenv::up::unknown), help("`devenv config` lists the services"))]
    UnknownService(String),

    #[error("cannot take the project lock `{path}`")]
    #[diagnostic(code(devenv::up::lock))]
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
            UpError::UnknownService(_) => 2,
            _ => 1,
        }
    }
}

/// Holds the per-project lock for as long as it lives.
pub struct ProjectLock(#[allow(dead_code)] File);

/// Takes the per-project lock so two devenv commands on one project do not
/// interleave; waits (saying so) when another holds it.
pub fn lock(project: &str, reporter: &dyn Reporter) -> Result<ProjectLock, UpError> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("devenv-{project}.lock"));
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

/// What `up` asks for.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services to bring up (with their dependencies); empty means all.
    pub services: Vec<String>,
    /// Rebuild images of services with `build`.
    pub build: bool,
    /// Skip `after_up` hooks.
    pub no_hooks: bool,
}

/// What `up` did, per service.
#[derive(Debug, Clone)]
pub struct ServiceOutcome {
    pub service: String,
    pub container: String,
    /// `created`, `recreated`, `started` or `running` (untouched).
    pub action: &'static str,
    pub ready_after: Option<Duration>,
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
    let mut run_stack = stack.clone();
    for (name, result) in selected.iter().zip(resolved) {
        let (image, id) = result?;
        let run_svc = run_stack
            .services
            .get_mut(name)
            .expect("selected services exist");
        run_svc.image = image;
        crate::watch::source::prepare(run_svc, &engine.endpoint);
        desired.insert(name.clone(), plan::config_hash(run_svc, &id));
    }

    let containers: Vec<ContainerInfo> = engine
        .list_containers(&stack.project)
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
    let known: Vec<String> = stack.services.keys().cloned().collect();
    let steps = plan::diff(&desired, &known, &actual);

    check_ports(engine, &run_stack, &steps, &containers).await?;

    for step in &steps {
        if let Step::Remove { service, id } = step {
            if !stack.services.contains_key(service) {
                reporter.notice(&format!(
                    "removing `{service}`: it is no longer in the stack file"
                ));
            }
            engine.remove_container(id).await?;
        }
    }
    let needs_objects = steps
        .iter()
        .any(|s| matches!(s, Step::Create { .. } | Step::Recreate { .. }));
    if needs_objects {
        engine.ensure_network(&stack.project).await?;
        for (name, vol) in &stack.volumes {
            if !vol.external {
                engine.ensure_volume(&stack.project, name, vol).await?;
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
            created_any |= outcome.action != "running";
            outcomes.push(outcome);
        }
    }
    // SQL seeds go in once every service (and so every migration) is up; the
    // ledger makes re-running cheap, but a no-op `up` skips even that.
    let seeds_db = stack
        .services
        .values()
        .find(|s| matches!(s.ready, Some(crate::config::model::Probe::Postgres { .. })));
    if created_any && !opts.no_hooks && seeds_db.is_some_and(|s| selected.contains(&s.name)) {
        crate::hooks::apply_sql_seeds(engine, &run_stack, false, reporter.as_ref()).await?;
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

/// Refuses before creating anything when a host port another process holds is needed.
async fn check_ports(
    engine: &Engine,
    stack: &Stack,
    steps: &[Step],
    ours: &[ContainerInfo],
) -> Result<(), UpError> {
    for step in steps {
        let (service, replacing) = match step {
            Step::Create { service } => (service, None),
            Step::Recreate { service, id } | Step::Start { service, id } => (service, Some(id)),
            _ => continue,
        };
        for port in &stack.services[service].ports {
            let Some(host) = port.host else { continue };
            let ip = port.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            let free = match port.protocol {
                crate::config::model::Protocol::Tcp => {
                    std::net::TcpListener::bind((ip.as_str(), host)).is_ok()
                }
                crate::config::model::Protocol::Udp => {
                    std::net::UdpSocket::bind((ip.as_str(), host)).is_ok()
                }
            };
            if free {
                continue;
            }
            let holder = engine.port_holder(host).await;
            // Our own container for this very service holds it (running, or
            // half-started by an interrupted run, when the engine's proxy has
            // the port but lists no running holder): it is about to be replaced.
            let own = replacing
                .and_then(|id| ours.iter().find(|c| &c.id == id))
                .map(|c| c.name.clone());
            if own.is_some() && (holder.is_none() || holder == own) {
                continue;
            }
            return Err(UpError::PortTaken {
                service: service.clone(),
                port: host,
                holder,
            });
        }
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
            engine.start_container(&id).await?;
            (id, "started")
        }
        Step::Create { .. } | Step::Recreate { .. } => {
            let recreate = matches!(step, Step::Recreate { .. });
            if let Step::Recreate { id, .. } = &step {
                reporter.task(name, "recreating");
                engine.stop_container(id, Duration::from_secs(10)).await?;
                engine.remove_container(id).await?;
            } else {
                reporter.task(name, "creating");
            }
            // A leftover container by the same name (from a killed run) is in the way.
            engine
                .remove_container(&container_name(&stack.project, name))
                .await?;
            let id = engine.create_container(stack, svc, hash, None).await?;
            engine.start_container(&id).await?;
            (id, if recreate { "recreated" } else { "created" })
        }
        Step::Remove { .. } => unreachable!("removals are done before starting"),
    };
    // Sync mode: the container holds the working tree before it counts as ready.
    if let Some(done) = crate::watch::sync_service(engine, stack, name, &id, reporter).await? {
        reporter.task(name, &done);
    }
    let ready_after = wait_ready(engine, stack, svc, &id, reporter).await?;
    if action != "running" && !opts.no_hooks {
        run_hooks(engine, svc, &id, &svc.hooks.after_up, reporter).await?;
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
    })
}

/// Waits until the service meets the strongest condition anyone needs of it:
/// ready (with a probe), or completed for one-off jobs dependents wait on.
async fn wait_ready(
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
                format!("exited with code {code}"),
                "its log is above".into(),
            )
            .await);
        }
        return Ok(None);
    }
    if svc.ready.is_some() {
        reporter.task(&svc.name, "waiting until ready");
    }
    match probe::await_ready(
        engine,
        &stack.project,
        id,
        svc.ready.as_ref(),
        svc.ready_timeout,
    )
    .await
    {
        Ok(d) => Ok(svc.ready.as_ref().map(|_| d)),
        Err(NotReady::Exited(code)) => Err(not_ready(
            engine,
            svc,
            id,
            format!("exited with code {code} before it was ready"),
            "its last log lines are above; fix the cause and run `devenv up` again".into(),
        )
        .await),
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
            ..UpOptions::default()
        };
        up(engine, stack, &opts, reporter.clone()).await?
    };
    engine.ensure_network(&stack.project).await?;
    for (name, vol) in &stack.volumes {
        if !vol.external {
            engine.ensure_volume(&stack.project, name, vol).await?;
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

/// Runs hook commands in the service's container, in order; the first failure stops.
pub async fn run_hooks(
    engine: &Engine,
    svc: &Service,
    id: &str,
    commands: &[String],
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    for command in commands {
        reporter.task(&svc.name, &format!("running `{command}`"));
        let output = exec_shell(engine, svc, id, command, reporter).await?;
        if output.0 != 0 {
            return Err(UpError::Hook {
                service: svc.name.clone(),
                command: command.clone(),
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
                    let line = line.trim_end().to_string();
                    reporter.output(&svc.name, &line);
                    lines.push(line);
                }
            },
        )
        .await?;
    if !partial.trim().is_empty() {
        reporter.output(&svc.name, partial.trim_end());
        lines.push(partial.trim_end().to_string());
    }
    Ok((code, lines))
}

/// Stops and removes the project's containers and network; volumes too with `volumes`.
pub async fn down(
    engine: &Engine,
    project: &str,
    volumes: bool,
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let _lock = lock(project, reporter)?;
    let containers = engine.list_containers(project).await?;
    let jobs = containers.iter().map(|c| async move {
        reporter.task(&c.service, "stopping");
        engine
            .stop_container(&c.id, Duration::from_secs(10))
            .await?;
        engine.remove_container(&c.id).await?;
        reporter.done(&c.service, "removed", true);
        Ok::<_, EngineError>(())
    });
    for r in join_all(jobs).await {
        r?;
    }
    if engine.remove_network(project).await? {
        reporter.notice(&format!(
            "removed network `{}`",
            crate::engine::network_name(project)
        ));
    }
    if volumes {
        for v in engine.list_volumes(project).await? {
            engine.remove_volume(&v).await?;
            reporter.notice(&format!("removed volume `{v}`"));
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
            if c.state == "running" {
                let st = engine.inspect_container(&c.id, &stack.project).await?;
                let mut published: Vec<_> = st.published.iter().collect();
                published.sort();
                ports = published.iter().map(|(c, h)| format!("{h}->{c}")).collect();
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
