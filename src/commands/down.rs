//! `devenv down`: remove the stack's containers and network; `-v` also its volumes.
//!
//! Ctrl-C never leaves containers half-stopped for the next `up` to trip
//! on: the first lets `down` finish (saying a second one forces), the
//! second kills and removes what is left; either way it exits 130.

use super::{Context, Outcome};
use crate::cli::DownArgs;
use crate::interrupt;
use crate::lifecycle;

pub async fn run(ctx: &Context, args: DownArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    let reporter = ctx.reporter();
    tokio::select! {
        r = lifecycle::down(&engine, &stack, args.volumes, reporter.as_ref()) => r?,
        () = interrupt::second() => {
            for c in lifecycle::owned_containers(&engine, &stack).await? {
                engine.remove_container_keeping_volumes(&c.id).await?;
            }
        }
    }
    Ok(0)
}
