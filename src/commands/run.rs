//! `devenv run SERVICE -- CMD…`: a one-off container of a service on the
//! project network (its dependencies started first), output streamed, exit
//! code passed through.

use std::io::Write;

use futures_util::StreamExt;

use super::exec::exit_code;
use super::{Context, Outcome};
use crate::cli::RunArgs;
use crate::images::Images;
use crate::lifecycle::{self, UpError, UpOptions};

pub async fn run(ctx: &Context, args: RunArgs) -> Outcome {
    let stack = ctx.stack()?;
    let Some(svc) = stack.services.get(&args.service) else {
        return Err(UpError::UnknownService(args.service).into());
    };
    let engine = ctx.engine().await?;
    let reporter = ctx.reporter();
    let deps: Vec<String> = svc.depends_on.keys().cloned().collect();
    if !deps.is_empty() {
        let opts = UpOptions { services: deps, ..UpOptions::default() };
        lifecycle::up(&engine, &stack, &opts, reporter.clone()).await?;
    }
    engine.ensure_network(&stack.project).await?;
    for (name, vol) in &stack.volumes {
        if !vol.external {
            engine.ensure_volume(&stack.project, name, vol).await?;
        }
    }
    let mut svc = svc.clone();
    svc.image = Images::default().ensure(&engine, &stack.project, &svc, false, reporter.as_ref()).await.map_err(UpError::from)?;
    // One-off containers publish nothing: the service's own container may hold its ports.
    svc.ports.clear();
    let command = if args.command.is_empty() { svc.command.clone().unwrap_or_default() } else { args.command };
    let name = format!("{}-{}-run-{}", stack.project, svc.name, std::process::id());
    let id = engine.create_container(&stack, &svc, "oneoff", Some((&name, command))).await?;
    let mut logs = engine.follow_logs(&id, None, true);
    engine.start_container(&id).await?;
    let mut out = std::io::stdout();
    while let Some(chunk) = logs.next().await {
        let _ = out.write_all(chunk?.as_bytes());
        let _ = out.flush();
    }
    let code = engine.wait_container(&id).await?;
    if args.rm {
        engine.remove_container(&id).await?;
    }
    Ok(exit_code(code))
}
