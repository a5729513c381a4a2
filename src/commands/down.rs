//! `devenv down`: remove the stack's containers and network; `-v` also its volumes.

use super::{Context, Outcome};
use crate::cli::DownArgs;
use crate::lifecycle;

pub async fn run(ctx: &Context, args: DownArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    let reporter = ctx.reporter();
    lifecycle::down(&engine, &stack, args.volumes, reporter.as_ref()).await?;
    Ok(0)
}
