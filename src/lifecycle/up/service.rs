//! One service brought up by `apply`: its container started, synced in
//! sync mode, waited on until ready and its `after_up` hooks run.

use std::time::Duration;

use crate::config::model::{Service, Stack};
use crate::engine::Engine;
use crate::lifecycle::hooks::{hooks_done, run_hooks, HOOKS_DONE};
use crate::lifecycle::ready::wait_ready;
use crate::lifecycle::schedule::Started;
use crate::lifecycle::{ServiceOutcome, UpError, UpOptions};
use crate::plan::{ContainerAction, ServiceStep};
use crate::report::Reporter;

/// Starts one service (its container made already, if it is new), waits
/// until it is ready and runs its hooks. `started` is called once it runs.
pub(super) async fn bring_up(
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
    let (id, action) = start(engine, step, created, reporter).await?;
    // Sync mode: the container holds the working tree before it counts as ready.
    if let Some(done) = crate::watch::sync_service(engine, stack, name, &id, reporter).await? {
        reporter.task(name, &done);
    }
    started.now();
    let ready_after = await_ready(engine, stack, svc, &id, action, reporter).await?;
    let hooks_ran = hook(engine, svc, &id, action, opts, reporter).await?;
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

/// Gets the service's container running: the one just made, one left
/// running, or a stopped one started. Returns its id and what was done
/// (`created`, `recreated`, `running` or `started`).
async fn start(
    engine: &Engine,
    step: &ServiceStep,
    created: Option<String>,
    reporter: &dyn Reporter,
) -> Result<(String, &'static str), UpError> {
    let name = &step.service;
    Ok(match (&step.action, created) {
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
            let (id, new) = crate::ports::start_existing(engine, id, &step.spec, reporter).await?;
            (id, if new { "recreated" } else { "started" })
        }
    })
}

/// Waits until the service meets its readiness condition; how long it took.
async fn await_ready(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    id: &str,
    action: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Duration>, UpError> {
    match wait_ready(engine, stack, svc, id, reporter).await {
        // A container that was already there may have been stopped under us
        // (a `down` interrupted a moment ago finishes its stop in the
        // engine): start it once more rather than fail.
        Err(UpError::NotReady { .. })
            if matches!(action, "running" | "started")
                && engine
                    .inspect_container(id, &stack.project)
                    .await
                    .is_ok_and(|st| {
                        !st.running && st.exit_code.is_some_and(|c| c == 0 || c == 143)
                    }) =>
        {
            engine.start_container(id).await?;
            wait_ready(engine, stack, svc, id, reporter).await
        }
        r => r,
    }
}

/// Runs the service's `after_up` hooks and marks them done in the
/// container; whether they ran. Hooks run on a new or started container,
/// and again on a running one whose hooks never all finished (one failed,
/// `up` was interrupted).
async fn hook(
    engine: &Engine,
    svc: &Service,
    id: &str,
    action: &str,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<bool, UpError> {
    let hooks = &svc.hooks.after_up;
    let hooks_ran = !opts.no_hooks
        && !hooks.is_empty()
        && (action != "running" || !hooks_done(engine, id).await);
    if hooks_ran {
        run_hooks(engine, svc, id, hooks, reporter).await?;
        let mark = vec!["touch".into(), HOOKS_DONE.into()];
        engine.exec(id, mark, Vec::new(), None, |_| {}).await?;
    }
    Ok(hooks_ran)
}
