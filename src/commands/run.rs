//! `devenv run SERVICE -- CMD…`: a one-off container of a service on the
//! project network (its dependencies started first), output streamed, exit
//! code passed through.

use std::io::Write;

use super::exec::exit_code;
use super::{Context, Outcome};
use crate::cli::RunArgs;
use crate::engine::OneOff;
use crate::lifecycle::{self, UpError};

pub async fn run(ctx: &Context, args: RunArgs) -> Outcome {
    let stack = ctx.stack()?;
    if !stack.services.contains_key(&args.service) {
        return Err(UpError::UnknownService(args.service).into());
    }
    let engine = ctx.engine().await?;
    let (svc, _) =
        lifecycle::prepare_oneoff(&engine, &stack, &args.service, &[], ctx.reporter()).await?;
    let command = if args.command.is_empty() {
        svc.command.clone().unwrap_or_default()
    } else {
        args.command
    };
    let oneoff = OneOff {
        name: format!("{}-{}-run-{}", stack.project, svc.name, std::process::id()),
        command,
        tmpfs: Vec::new(),
    };
    let mut out = std::io::stdout();
    let (id, code) = lifecycle::run_oneoff(&engine, &stack, &svc, &oneoff, |chunk| {
        let _ = out.write_all(chunk.as_bytes());
        let _ = out.flush();
    })
    .await?;
    if args.rm {
        engine.remove_container(&id).await?;
    }
    Ok(exit_code(code))
}
