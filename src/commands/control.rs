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
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    super::check_services(&stack, &args.services)?;
    let reporter = ctx.reporter();
    let containers = crate::lifecycle::owned_containers(&engine, &stack).await?;
    let chosen = containers
        .iter()
        .filter(|c| !c.oneoff && (args.services.is_empty() || args.services.contains(&c.service)));
    let jobs = chosen.map(|c| {
        let (engine, reporter) = (&engine, reporter.clone());
        async move {
            let done = match action {
                Action::Stop => engine
                    .stop_container(&c.id, Duration::from_secs(10))
                    .await
                    .map(|_| "stopped"),
                Action::Start => engine.start_container(&c.id).await.map(|_| "started"),
                Action::Restart => engine.restart_container(&c.id).await.map(|_| "restarted"),
            }?;
            reporter.done(&c.service, done, true);
            Ok::<_, crate::engine::EngineError>(())
        }
    });
    for r in futures_util::future::join_all(jobs).await {
        r?;
    }
    Ok(0)
}
