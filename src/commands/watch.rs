//! `devenv watch [SERVICE…]`: live sync for a stack started with `up -d`,
//! until Ctrl-C (exit 130; attached `devenv up` watches by itself).

use super::{Context, Outcome};
use crate::cli::ServicesArgs;
use crate::lifecycle::UpError;

pub async fn run(ctx: &Context, args: ServicesArgs) -> Outcome {
    let stack = ctx.stack()?;
    if let Some(s) = args
        .services
        .iter()
        .find(|s| !stack.services.contains_key(*s))
    {
        return Err(UpError::UnknownService(s.clone()).into());
    }
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    let rebuild = crate::lifecycle::up::Rebuilder {
        engine: &engine,
        stack: &stack,
        reporter: ctx.reporter(),
    };
    let reporter = ctx.reporter();
    tokio::select! {
        r = crate::watch::run(&engine, &stack, &args.services, &rebuild, ctx.reporter()) => r?,
        // A database per branch follows `git checkout` while watching.
        () = super::dbbranch::watch_head(&engine, &stack, reporter.as_ref()) => {}
        () = crate::interrupt::first() => return Ok(crate::interrupt::exit_code()),
    }
    Ok(0)
}
