//! `devenv stop|start|restart [SERVICE…]`: change running state without
//! recreating anything.

use std::time::Duration;

use super::{Context, Outcome};
use crate::cli::ServicesArgs;

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Stop,
    Start,
    Restart,
}

pub async fn run(ctx: &Context, action: Action, args: ServicesArgs) -> Outcome {
    let stack = ctx.stack()?;
    super::check_services(&stack, &args.services)?;
    let engine = ctx.engine().await?;
    let reporter = ctx.reporter();
    let containers = engine.list_containers(&stack.project).await?;
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
            }?;
            // Sync mode: a (re)started container holds the working tree again.
            if !matches!(action, Action::Stop) {
                crate::watch::sync_service(engine, stack, &c.service, &c.id, reporter.as_ref())
                    .await?;
            }
            reporter.done(&c.service, done, true);
            Ok::<_, super::Failure>(())
        }
    });
    for r in futures_util::future::join_all(jobs).await {
        r?;
    }
    Ok(0)
}
