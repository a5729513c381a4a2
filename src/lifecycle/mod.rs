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
//! - `held`: what the containers hold (env, command), their secrets masked in every output
//! - [`control`][mod@control]: stop/start/restart (the commands and `devenv ui`'s buttons)
//! - `down`: containers, network and (with `-v`) volumes removed; what `-v` would remove
//! - `lock`: the per-project lock, and [`settle`] after a killed command
//! - `session`: an attached `up`'s session: the first exit, the exit code, the stop at its end

pub mod control;
mod down;
mod held;
mod hooks;
mod lock;
mod oneoff;
mod ready;
pub(crate) mod schedule;
pub(crate) mod session;
pub mod up;

use std::time::Duration;

use futures_util::future::join_all;

use crate::config::model::Stack;
use crate::engine::{project_dir, ContainerInfo, Engine, EngineError, LABEL_DIR, LABEL_PROJECT};
use crate::images::ImageError;
use crate::plan::PlanError;
use crate::probe;

pub use down::{doomed_volumes, down, DoomedVolume, Snapshots};
pub use held::held_secrets;
pub use hooks::{run_hooks, stop_hook};
pub use lock::{lock, lock_for, settle, Interrupted, ProjectLock};
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
}
