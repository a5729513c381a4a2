//! Applying a plan whose images are all present: missing bind sources
//! made (`--create-paths`), orphans and duplicates removed, the network and
//! volumes made, every container to make created at once while each
//! service is brought up as soon as its own container and dependencies
//! allow (see `schedule`), then the SQL seeds once everything is up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::FutureExt;
use tokio::sync::oneshot;

use super::service::bring_up;
use crate::config::model::Stack;
use crate::engine::{Engine, LABEL_DIR, LABEL_PROJECT};
use crate::lifecycle::schedule;
use crate::lifecycle::{ServiceOutcome, UpError, UpOptions};
use crate::plan::{self, ContainerAction, Plan, RemoveWhy, ServiceStep};
use crate::report::Reporter;

/// Carries out a plan whose images are all present.
pub(super) async fn apply(
    engine: &Engine,
    stack: &Stack,
    run: &Stack,
    plan: &Plan,
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    make_paths(plan)?;
    make_room(engine, plan, reporter.as_ref()).await?;
    let outcomes = bring_up_all(engine, run, plan, opts, reporter.clone()).await?;
    seed(engine, stack, run, plan, opts, &outcomes, reporter.as_ref()).await?;
    Ok(outcomes)
}

/// Makes the bind sources the plan found missing (`--create-paths`).
fn make_paths(plan: &Plan) -> Result<(), UpError> {
    let folders = plan.folders.iter().map(|p| (p, false));
    for (new, file) in folders.chain(plan.files.iter().map(|p| (p, true))) {
        make_path(&new.path, file, new.owner).map_err(|source| UpError::CreatePath {
            service: mounting(plan, &new.path),
            path: new.path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// What the services share, before any of them is made: orphans and
/// duplicates removed, the plan's notices said, the network and volumes made.
async fn make_room(engine: &Engine, plan: &Plan, reporter: &dyn Reporter) -> Result<(), UpError> {
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
    for s in &plan.services {
        for m in &s.moves {
            crate::ports::say_moved(reporter, &s.service, m.container, m.declared, m.chosen);
        }
    }
    if let Some(network) = &plan.network {
        engine.ensure_network(&network.spec).await?;
    }
    for volume in &plan.volumes {
        engine.ensure_volume(&volume.spec).await?;
    }
    Ok(())
}

/// Creates every container to make at once, up front, and brings each
/// service up once its own container is made and its dependencies meet
/// their condition: a service with none starts while the others are still
/// being created. After a failure nothing more starts; the first is returned.
async fn bring_up_all(
    engine: &Engine,
    run: &Stack,
    plan: &Plan,
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
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
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// SQL seeds go in once every service (and so every migration) is up; the
/// ledger makes re-running cheap, but a no-op `up` skips even that.
async fn seed(
    engine: &Engine,
    stack: &Stack,
    run: &Stack,
    plan: &Plan,
    opts: &UpOptions,
    outcomes: &[ServiceOutcome],
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let created_any = outcomes
        .iter()
        .any(|o| o.action != "running" || o.hooks_ran);
    if !created_any || opts.no_hooks || opts.no_seeds {
        return Ok(());
    }
    let selected: Vec<String> = plan.services.iter().map(|s| s.service.clone()).collect();
    match crate::hooks::seeds_ready(stack, &selected) {
        crate::hooks::SeedsReady::Yes => {
            crate::hooks::apply_sql_seeds(engine, run, false, reporter).await?;
        }
        crate::hooks::SeedsReady::MigrationsNotRun(service) => {
            reporter.notice(&format!(
                "seeds/ not applied: the migrations of `{service}` have not run (`devenv up` runs them, then the seeds)"
            ));
        }
        crate::hooks::SeedsReady::Nothing => {}
    }
    Ok(())
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
        if let Some(t) = &step.port_taken {
            let why = format!("recreating on a free host port ({} is taken)", t.port);
            reporter.task(name, &why);
        } else {
            let why = format!("recreating ({} changed)", changes.join(", "));
            reporter.task(name, &why);
        }
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
