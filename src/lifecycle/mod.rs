//! The stack's lifecycle on the engine: `up` (observe, plan, apply: each
//! service started as soon as its own dependencies are met, then readiness
//! and hooks), `down`, status, stop/start/restart. Truth lives in the
//! engine's labels, so any of these repairs what an interrupted earlier run
//! left behind.
//!
//! - [`up`](mod@up): observe → [`crate::plan`] → apply, and `up --dry-run`
//! - `schedule`: each service started once its own dependencies are met
//! - `ready`: waiting until a service meets its condition, failing fast
//! - `oneoff`: one-off containers of a service (`run`, `test`)
//! - `hooks`: `after_up` hooks in the service's container
//! - [`control`][mod@control]: stop/start/restart (the commands and `devenv ui`'s buttons)

pub mod control;
mod hooks;
mod oneoff;
mod ready;
pub(crate) mod schedule;
pub mod up;

use std::fs::File;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::join_all;

use crate::config::model::Stack;
use crate::engine::{
    network_name, project_dir, ContainerInfo, Engine, EngineError, LABEL_DIR, LABEL_PROJECT,
};
use crate::images::ImageError;
use crate::plan::PlanError;
use crate::probe;
use crate::report::Reporter;

pub use hooks::{run_hooks, stop_hook};
pub use oneoff::{create_oneoff, prepare_oneoff, run_oneoff};
pub use ready::wait_ready;
pub use up::{dry_run, up};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UpError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanError),

    #[error("cannot create `{}` for service `{service}`: {source}", path.display())]
    #[diagnostic(
        code(devenv::up::create_path),
        help("make it yourself (with the owner the service's `user` needs), then run `up` again")
    )]
    CreatePath {
        service: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Port(#[from] crate::ports::PortError),

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
    /// Why the plan this error stopped was stale, when it was (see
    /// [`EngineError::changed_under_us`]).
    pub fn changed_under_us(&self) -> Option<String> {
        match self {
            UpError::Engine(e) => e.changed_under_us(),
            _ => None,
        }
    }

    /// Usage errors are 2, everything else a failed job (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            UpError::UnknownService(_) | UpError::OtherFolder { .. } => 2,
            UpError::Plan(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Holds the per-project lock for as long as it lives (and any copy of it).
/// While held, the lock file names the command and when it began; the last
/// copy's end empties it, so a file found full was left by a command that
/// was killed.
#[derive(Clone)]
pub struct ProjectLock(Arc<Held>);

struct Held {
    file: File,
    interrupted: Option<Interrupted>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Emptied: this command ended as it should.
        let _ = self.file.set_len(0);
    }
}

/// What a killed command left in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// Its words, as `up` or `down`.
    pub command: String,
    pub pid: u32,
    /// When it began, in unix seconds.
    pub since: u64,
}

impl Interrupted {
    fn parse(text: &str) -> Option<Interrupted> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let since = words.next()?.parse().ok()?;
        let command = words.collect::<Vec<_>>().join(" ");
        Some(Interrupted {
            command,
            pid,
            since,
        })
    }
}

impl ProjectLock {
    /// The command before this one that was killed while it held the lock
    /// (the same for a lock taken again within this process, so a nested
    /// `up` still waits for what that command left under way).
    pub fn interrupted(&self) -> Option<&Interrupted> {
        self.0.interrupted.as_ref()
    }
}

/// The project locks this process holds: a command that holds its
/// project's lock for its whole run (`test`, `db`) calls code that takes it
/// again (`up`), and a second `flock` on a new descriptor would wait for
/// the first forever.
static HELD: Mutex<Vec<(String, Weak<Held>)>> = Mutex::new(Vec::new());

/// Takes the per-project lock so two devenv commands on one project do not
/// interleave; waits (saying so) when another holds it. Taking it again in
/// the process that holds it returns at once.
///
/// The lock file lives in devenv's private folder (see [`crate::scratch`]),
/// never at a predictable path in a shared `/tmp`.
pub fn lock(project: &str, reporter: &dyn Reporter) -> Result<ProjectLock, UpError> {
    lock_for(project, "devenv", reporter)
}

/// [`lock`], recording `command` (`up`, `down`) so that the next command
/// can tell which one was interrupted.
pub fn lock_for(
    project: &str,
    command: &str,
    reporter: &dyn Reporter,
) -> Result<ProjectLock, UpError> {
    use std::io::{Read, Seek, Write};
    let mut held = HELD.lock().expect("no panics while holding the list");
    held.retain(|(_, h)| h.strong_count() > 0);
    if let Some(h) = held
        .iter()
        .find(|(p, _)| p == project)
        .and_then(|(_, h)| h.upgrade())
    {
        return Ok(ProjectLock(h));
    }
    let dir = crate::scratch::private_dir().map_err(|source| UpError::Lock {
        path: "devenv's private folder".into(),
        source,
    })?;
    let path = dir.join(format!("{project}.lock"));
    let err = |source| UpError::Lock {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(err)?;
    if file.try_lock().is_err() {
        reporter.notice(&format!(
            "waiting for another devenv working on project `{project}`"
        ));
        file.lock().map_err(err)?;
    }
    let mut left = String::new();
    file.read_to_string(&mut left).map_err(err)?;
    let interrupted = Interrupted::parse(&left);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    write!(file, "{} {since} {command}", std::process::id()).map_err(err)?;
    let h = Arc::new(Held { file, interrupted });
    held.push((project.to_string(), Arc::downgrade(&h)));
    Ok(ProjectLock(h))
}

/// After a killed command, waits until the stops and removals it had sent
/// have landed in the engine (they finish without it), so that what is
/// observed next stays true. Says so only when there was something to wait for.
pub async fn settle(
    engine: &Engine,
    project: &str,
    lock: &ProjectLock,
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let Some(killed) = lock.interrupted() else {
        return Ok(());
    };
    // A request the killed process wrote just before it died may still be
    // on its way into the engine.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A stop gives a container 10 s before SIGKILL; a little more for the kill.
    let waited = engine
        .settle(project, killed.since, Duration::from_secs(15))
        .await?;
    if waited > 0 {
        reporter.notice(&format!(
            "an interrupted `{}` (pid {}) had {waited} container{} of `{project}` stopping: waited for the engine to finish",
            killed.command,
            killed.pid,
            if waited == 1 { "" } else { "s" }
        ));
    }
    Ok(())
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
        if !crate::plan::is_ours(&ours, Some(&dir), |d| std::path::Path::new(d).exists()) {
            return Err(UpError::OtherFolder {
                project: stack.project.clone(),
                theirs: dir,
                ours,
            });
        }
    }
    Ok(containers)
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
    /// Create missing bind-mount sources (files or folders) instead of refusing.
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
    crate::plan::select(stack, wanted).map_err(|e| match e {
        PlanError::UnknownService(s) => UpError::UnknownService(s),
        e => e.into(),
    })
}

/// Refuses, before the project's name is claimed or anything else is made,
/// `wanted` (and what they depend on; all services when empty) mounting an
/// external volume the engine does not have. The plan checks the same; this
/// runs first, since claiming a name creates the project's network.
pub async fn check_external_volumes(
    engine: &Engine,
    stack: &Stack,
    wanted: &[String],
) -> Result<(), UpError> {
    let selected = select(stack, wanted)?;
    let services: Vec<&crate::config::model::Service> =
        selected.iter().map(|s| &stack.services[s]).collect();
    let missing = up::missing_external_volumes(engine, stack, &services).await?;
    crate::plan::check_external_volumes(stack, services, &missing)?;
    Ok(())
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
    let lock = lock_for(project, "down", reporter)?;
    settle(engine, project, &lock, reporter).await?;
    let containers = owned_containers(engine, stack).await?;
    let jobs = containers.iter().map(|c| async move {
        // A leftover `run` container carries its service's label: it gets
        // its own line, so the service's stop is not told twice.
        let key = if c.oneoff {
            format!("{} (one-off `{}`)", c.service, c.name)
        } else {
            c.service.clone()
        };
        reporter.task(&key, "stopping");
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
        reporter.done(&key, "removed", true);
        Ok::<_, EngineError>(())
    });
    for r in join_all(jobs).await {
        r?;
    }
    // The router lets go of the project's network (which the engine will
    // not remove while it is attached) and serves what is left; the last
    // project's `down` removes it (issue 28). It is an extra: when it
    // fails, `down` still goes on.
    if let Err(e) = crate::router::sync(engine, reporter).await {
        reporter.notice(&format!("the HTTPS router was not updated: {e}"));
        crate::router::detach(engine, project).await?;
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

/// A volume `down -v` would remove, and what in it a user would miss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoomedVolume {
    pub name: String,
    /// The services that mount it.
    pub services: Vec<String>,
    /// When it holds the stack's database: its name, and how many snapshots
    /// live beside it (`None` when the server is not running to count them).
    pub database: Option<(String, Option<usize>)>,
}

impl DoomedVolume {
    /// One line of `down -v`'s list.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if !self.services.is_empty() {
            let names: Vec<String> = self.services.iter().map(|s| format!("`{s}`")).collect();
            what.push(format!(
                "{} {}",
                if names.len() == 1 {
                    "service"
                } else {
                    "services"
                },
                names.join(", ")
            ));
        }
        if let Some((database, snapshots)) = &self.database {
            what.push(match snapshots {
                Some(0) => format!("database `{database}`, no snapshots"),
                Some(1) => format!("database `{database}` and 1 snapshot"),
                Some(n) => format!("database `{database}` and {n} snapshots"),
                None => format!(
                    "database `{database}` and its snapshots (not counted: the server is not running)"
                ),
            });
        }
        if what.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, what.join(": "))
        }
    }
}

/// The project's volumes that `down -v` would remove, with the services
/// that mount them and, for the database's, how many snapshots live in it.
pub async fn doomed_volumes(engine: &Engine, stack: &Stack) -> Result<Vec<DoomedVolume>, UpError> {
    let project = &stack.project;
    let mut doomed: Vec<DoomedVolume> = engine
        .list_volumes(project)
        .await?
        .into_iter()
        .map(|v| DoomedVolume {
            services: stack
                .services
                .values()
                .filter(|s| mounts_volume(project, s, &v.name))
                .map(|s| s.name.clone())
                .collect(),
            name: v.name,
            database: None,
        })
        .collect();
    doomed.sort_by(|a, b| a.name.cmp(&b.name));
    let pg = stack.services.values().find_map(|s| match &s.ready {
        Some(crate::config::model::Probe::Postgres { database, .. }) => Some((s, database.clone())),
        _ => None,
    });
    if let Some((service, database)) = pg {
        let theirs: Vec<usize> = (0..doomed.len())
            .filter(|i| doomed[*i].services.contains(&service.name))
            .collect();
        // The data folder's volume: the one under PostgreSQL's folder, else the only one.
        let data = theirs
            .iter()
            .copied()
            .find(|i| {
                service.volumes.iter().any(|m| match m {
                    crate::config::model::Mount::Volume { name, target, .. } => {
                        crate::engine::volume_name(project, name) == doomed[*i].name
                            && target.contains("postgres")
                    }
                    _ => false,
                }) || doomed[*i].name.contains("postgresql")
            })
            .or_else(|| (theirs.len() == 1).then(|| theirs[0]));
        if let Some(i) = data {
            let snapshots = match crate::database::Database::locate(engine, stack).await {
                Ok(db) => crate::snapshot::list(&db).await.ok().map(|l| l.len()),
                Err(_) => None,
            };
            doomed[i].database = Some((database, snapshots));
        }
    }
    Ok(doomed)
}

/// Whether `service` mounts the engine volume `name`: a named volume of its
/// config, or one devenv made for an anonymous volume of its.
fn mounts_volume(project: &str, service: &crate::config::model::Service, name: &str) -> bool {
    let anonymous = format!("{project}_{}_", service.name);
    name.starts_with(&anonymous)
        || service.volumes.iter().any(|m| match m {
            crate::config::model::Mount::Volume { name: v, .. } => {
                crate::engine::volume_name(project, v) == name
            }
            _ => false,
        })
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
    /// Every host binding (`describe` reads the address to connect to).
    #[serde(skip)]
    pub bindings: Vec<crate::engine::HostBinding>,
}

/// The state of every service container, with readiness probed once, in parallel.
pub async fn status(engine: &Engine, stack: &Stack) -> Result<Vec<ServiceStatus>, EngineError> {
    let containers = engine.list_containers(&stack.project).await?;
    // The router's port, asked once and only when a service has a name.
    let https = match stack.services.values().any(|s| s.route().is_some()) {
        true => crate::router::listening(engine).await.map(|l| l.https),
        false => None,
    };
    let jobs = containers
        .into_iter()
        .filter(|c| !c.oneoff)
        .map(|c| async move {
            let svc = stack.services.get(&c.service);
            let mut ready = false;
            let mut ports = Vec::new();
            let mut urls = Vec::new();
            let mut bindings = Vec::new();
            if c.state == "running" {
                let st = engine.inspect_container(&c.id, &stack.project).await?;
                let mut published: Vec<_> = st.published.iter().collect();
                published.sort();
                // Every binding, as `up`'s summary and Compose show them.
                ports = st.bindings.iter().map(ToString::to_string).collect();
                bindings.clone_from(&st.bindings);
                let pairs: Vec<(u16, u16)> = published.iter().map(|(c, h)| (**c, **h)).collect();
                urls = crate::urls::with_route(
                    crate::urls::service_urls(&c.service, svc, &pairs),
                    &c.service,
                    svc,
                    https,
                );
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
                bindings,
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
    fn exit_codes_name_what_went_wrong() {
        assert_eq!(explain_exit(1, false), "exited with code 1");
        assert_eq!(
            explain_exit(137, true),
            "exited with code 137 (killed: out of memory)"
        );
        assert_eq!(UpError::UnknownService("x".into()).exit_code(), 2);
    }

    #[test]
    fn down_v_names_each_volume_its_services_and_the_snapshots_in_it() {
        let v = |name: &str, services: &[&str], database| DoomedVolume {
            name: name.into(),
            services: services.iter().map(|s| s.to_string()).collect(),
            database,
        };
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), Some(3)))).describe(),
            "shop_pgdata (service `db`: database `app` and 3 snapshots)"
        );
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), Some(1)))).describe(),
            "shop_pgdata (service `db`: database `app` and 1 snapshot)"
        );
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), Some(0)))).describe(),
            "shop_pgdata (service `db`: database `app`, no snapshots)"
        );
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), None))).describe(),
            "shop_pgdata (service `db`: database `app` and its snapshots (not counted: the server is not running))"
        );
        assert_eq!(
            v("shop_shared", &["app", "worker"], None).describe(),
            "shop_shared (services `app`, `worker`)"
        );
        assert_eq!(v("shop_old", &[], None).describe(), "shop_old");
    }

    #[test]
    fn a_process_takes_its_own_project_lock_again_without_waiting() {
        let project = format!("lock-reentry-{}", std::process::id());
        let outer = lock(&project, &crate::report::Silent).unwrap();
        // Would wait forever if the second `flock` were on a new descriptor.
        let inner = lock(&project, &crate::report::Silent).unwrap();
        drop(outer);
        drop(inner);
        let again = lock(&project, &crate::report::Silent).unwrap();
        drop(again);
        let _ = std::fs::remove_file(
            crate::scratch::private_dir()
                .unwrap()
                .join(format!("{project}.lock")),
        );
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn a_lock_file_left_full_names_the_interrupted_command_and_a_normal_end_empties_it() {
        let project = format!("devenv-unit-lock-{}", std::process::id());
        let path = crate::scratch::private_dir()
            .unwrap()
            .join(format!("{project}.lock"));
        // What a killed `down` leaves behind.
        std::fs::write(&path, "4242 1796604376 down").unwrap();
        let reporter = crate::report::Silent;
        let lock = lock_for(&project, "up", &reporter).unwrap();
        assert_eq!(
            lock.interrupted(),
            Some(&Interrupted {
                command: "down".into(),
                pid: 4242,
                since: 1796604376,
            })
        );
        let held = std::fs::read_to_string(&path).unwrap();
        assert!(held.ends_with(" up"), "{held:?}");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let again = lock_for(&project, "up", &reporter).unwrap();
        assert_eq!(again.interrupted(), None);
        drop(again);
        std::fs::remove_file(&path).unwrap();
    }
}
