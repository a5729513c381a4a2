//! `devenv logs`: the services' output, prefixed and coloured per service;
//! `-f` follows them (see [`super::follow`]).

use futures_util::future::{join_all, FutureExt};
use futures_util::stream::StreamExt;

use super::follow::{follow, Follow, Start, Until};
use super::{Context, Outcome};
use crate::cli::LogsArgs;
use crate::engine::LogsFrom;
use crate::interrupt;
use crate::ui::{LogBlock, LOG_BLOCK};

pub async fn run(ctx: &Context, args: LogsArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    // A project known only from its labels (`-p NAME`, its stack file gone)
    // has the services its containers name.
    let known: Vec<String> = if stack.services.is_empty() {
        let mut names: Vec<String> = crate::lifecycle::owned_containers(&engine, &stack)
            .await?
            .into_iter()
            .filter(|c| !c.oneoff)
            .map(|c| c.service)
            .collect();
        names.dedup();
        names
    } else {
        super::check_services(&stack, &args.services)?;
        stack.services.keys().cloned().collect()
    };
    let named = !args.services.is_empty();
    let services = if named { args.services } else { known };
    let from = LogsFrom {
        tail: args.tail,
        since: args.since.as_deref().map(since).transpose()?,
        timestamps: args.timestamps,
    };
    if args.follow {
        tokio::select! {
            r = follow(&engine, &stack, Follow {
                // Without names, services started later join.
                services: named.then_some(services.as_slice()),
                start: Start::From(LogsFrom { timestamps: false, ..from }),
                until: Until::Stopped,
                timestamps: args.timestamps,
            }) => r?,
            () = interrupt::first() => return Ok(interrupt::exit_code()),
        }
    } else {
        // What the containers hold under secret names is masked too: the
        // stack file may resolve otherwise in this shell than in `up`'s.
        crate::lifecycle::held_secrets(&engine, &stack.project, None).await?;
        // Every service at once, each in blocks of whole lines.
        let containers = engine.list_containers(&stack.project).await?;
        let reads = containers
            .iter()
            .filter(|c| services.contains(&c.service) && !c.oneoff)
            .map(|c| {
                let mut stream = engine.log_bytes(&c.id, &from, false).fuse();
                async move {
                    let mut block = LogBlock::new(&c.service);
                    while let Some(chunk) = stream.next().await {
                        // A service that prints its own secret does not show it.
                        block.lines(&chunk?);
                        // What is there already goes out in the same write.
                        while block.size() < LOG_BLOCK {
                            let Some(Some(chunk)) = stream.next().now_or_never() else {
                                break;
                            };
                            block.lines(&chunk?);
                        }
                        block.flush();
                    }
                    Ok::<_, crate::engine::EngineError>(())
                }
            });
        for r in join_all(reads).await {
            r?;
        }
    }
    Ok(0)
}

/// `--since`: what `docker logs --since` accepts (see [`crate::since`]), as unix seconds.
fn since(when: &str) -> Result<i64, super::Failure> {
    let now = std::time::SystemTime::now();
    crate::since::parse(when, now, &jiff::tz::TimeZone::system()).ok_or_else(|| {
        super::Failure::new(
            BadSince {
                when: when.to_string(),
            },
            2,
        )
    })
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`--since {when}` is neither a duration nor a time")]
#[diagnostic(
    code(devenv::logs::since),
    help("write a duration back from now (`10m`, `1h30m`), a time (`2026-11-30T09:00:00Z`, or `2026-11-30T09:00` in local time), a date (`2026-11-30`) or Unix seconds (`1796604376`)")
)]
struct BadSince {
    when: String,
}
