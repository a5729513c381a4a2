//! `devenv stop|start|restart [SERVICE…]`: change running state without
//! recreating anything; `start` and `restart` return once the services are
//! ready, as `up` does.

use std::time::Duration;

use super::{Context, Outcome};
use crate::cli::ServicesArgs;
use crate::config::model::Stack;
use crate::engine::ContainerInfo;
use crate::lifecycle::schedule::{self, Started};
use crate::lifecycle::{self, UpError};
use crate::plan::Dependency;

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Stop,
    Start,
    Restart,
}

pub async fn run(ctx: &Context, action: Action, args: ServicesArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    super::check_services(&stack, &args.services)?;
    let reporter = ctx.reporter();
    let word = match action {
        Action::Stop => "stop",
        Action::Start => "start",
        Action::Restart => "restart",
    };
    let lock = lifecycle::lock_for(&stack.project, word, reporter.as_ref())?;
    lifecycle::settle(&engine, &stack.project, &lock, reporter.as_ref()).await?;
    let containers = crate::lifecycle::owned_containers(&engine, &stack).await?;
    let chosen: Vec<&ContainerInfo> = containers
        .iter()
        .filter(|c| !c.oneoff && (args.services.is_empty() || args.services.contains(&c.service)))
        .collect();
    if let Action::Restart = action {
        // All down first: a dependent must not keep running while what it
        // needs restarts (and perhaps fails), nor start before it is back.
        let stops = chosen
            .iter()
            .map(|c| engine.stop_container(&c.id, Duration::from_secs(10)));
        for r in futures_util::future::join_all(stops).await {
            r?;
        }
    }
    // Each one starts once what it depends on (among those chosen) meets its
    // condition, as in `up`: a failed `completed` dependency starts nothing after it.
    let steps: Vec<(String, Vec<Dependency>)> = chosen
        .iter()
        .map(|c| {
            // Stopping waits for nobody.
            let deps = match action {
                Action::Stop => Vec::new(),
                _ => dependencies(&stack, &c.service, &chosen),
            };
            (c.service.clone(), deps)
        })
        .collect();
    let job = |i: usize, _started: Started| {
        let c = chosen[i];
        let (engine, reporter, stack) = (&engine, reporter.clone(), &stack);
        async move {
            let done = match action {
                Action::Stop => engine
                    .stop_container(&c.id, Duration::from_secs(10))
                    .await
                    .map(|_| "stopped"),
                Action::Start => engine.start_container(&c.id).await.map(|_| "started"),
                Action::Restart => engine.start_container(&c.id).await.map(|_| "restarted"),
            }
            .map_err(UpError::from)?;
            // Sync mode: a (re)started container holds the working tree again.
            if !matches!(action, Action::Stop) {
                crate::watch::sync_service(engine, stack, &c.service, &c.id, reporter.as_ref())
                    .await
                    .map_err(UpError::from)?;
            }
            // Started means ready, as after `up`: wait for the probe.
            let svc = stack.services.get(&c.service);
            let ready = match (action, svc) {
                (Action::Start | Action::Restart, Some(svc)) => {
                    lifecycle::wait_ready(engine, stack, svc, &c.id, reporter.as_ref()).await?
                }
                _ => None,
            };
            let status = match ready {
                Some(d) => format!("{done}, ready in {} ms", d.as_millis()),
                None => done.to_string(),
            };
            reporter.done(&c.service, &status, true);
            Ok::<_, UpError>(())
        }
    };
    // One skipped (None) follows a failure, which is what is reported.
    for r in schedule::run(&steps, job).await.into_iter().flatten() {
        if let Err(e) = r {
            reporter.clear();
            if let UpError::NotReady { service, logs, .. } = &e {
                for line in logs {
                    crate::ui::print_err(&crate::ui::prefixed(service, line));
                }
            }
            return Err(e.into());
        }
    }
    Ok(0)
}

/// What `service` depends on among the containers acted on.
fn dependencies(stack: &Stack, service: &str, chosen: &[&ContainerInfo]) -> Vec<Dependency> {
    let Some(svc) = stack.services.get(service) else {
        return Vec::new();
    };
    svc.depends_on
        .iter()
        .filter(|(dep, _)| chosen.iter().any(|c| &c.service == *dep))
        .map(|(dep, condition)| Dependency {
            service: dep.clone(),
            condition: *condition,
        })
        .collect()
}
