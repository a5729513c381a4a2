//! `devenv stop|start|restart [SERVICE…]`: change running state without
//! recreating anything; `start` and `restart` return once the services are
//! ready, as `up` does.

use std::time::Duration;

use super::{Context, Outcome};
use crate::cli::ServicesArgs;
use crate::lifecycle::{self, UpError};

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
    let chosen = containers
        .iter()
        .filter(|c| !c.oneoff && (args.services.is_empty() || args.services.contains(&c.service)));
    let jobs = chosen.map(|c| {
        let (engine, reporter, stack) = (&engine, reporter.clone(), &stack);
        async move {
            let done = match action {
                Action::Stop => engine
                    .stop_container(&c.id, Duration::from_secs(10))
                    .await
                    .map(|_| "stopped"),
                Action::Start => engine.start_container(&c.id).await.map(|_| "started"),
                Action::Restart => engine.restart_container(&c.id).await.map(|_| "restarted"),
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
    });
    for r in futures_util::future::join_all(jobs).await {
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
