//! `devenv logs`: the services' output, prefixed and coloured per service.

use futures_util::stream::{select_all, StreamExt};

use super::{Context, Outcome};
use crate::cli::LogsArgs;
use crate::config::model::Stack;
use crate::engine::{Engine, EngineError};

pub async fn run(ctx: &Context, args: LogsArgs) -> Outcome {
    let stack = ctx.stack()?;
    super::check_services(&stack, &args.services)?;
    let engine = ctx.engine().await?;
    let services = if args.services.is_empty() {
        stack.services.keys().cloned().collect()
    } else {
        args.services
    };
    if args.follow {
        tokio::select! {
            r = follow(&engine, &stack, &services, args.tail) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
    } else {
        for c in engine.list_containers(&stack.project).await? {
            if services.contains(&c.service) && !c.oneoff {
                for line in engine
                    .tail_logs(&c.id, args.tail.unwrap_or(usize::MAX))
                    .await?
                {
                    print_line(&c.service, &line);
                }
            }
        }
    }
    Ok(0)
}

fn print_line(service: &str, line: &str) {
    println!("{}", crate::ui::prefixed(service, line));
}

/// Follows the logs of `services` until every container's stream ends.
pub async fn follow(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    tail: Option<usize>,
) -> Result<(), EngineError> {
    let containers = engine.list_containers(&stack.project).await?;
    let streams = containers
        .into_iter()
        .filter(|c| services.contains(&c.service) && !c.oneoff)
        .map(|c| {
            let service = c.service.clone();
            engine
                .follow_logs(&c.id, tail, true)
                .map(move |chunk| (service.clone(), chunk))
                .boxed()
        });
    let mut all = select_all(streams);
    while let Some((service, chunk)) = all.next().await {
        for line in chunk?.lines() {
            print_line(&service, line);
        }
    }
    Ok(())
}
