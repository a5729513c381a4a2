//! `devenv run SERVICE -- CMD…`: a one-off container of a service on the
//! project network (its dependencies started first), with the terminal
//! attached as `exec` has it (stdin passed in, a TTY on a terminal), exit
//! code passed through.

use std::time::Duration;

use super::exec::exit_code;
use super::terminal::{pump, RawMode};
use super::{Context, Outcome};
use crate::cli::RunArgs;
use crate::engine::OneOff;
use crate::interrupt;
use crate::lifecycle;

pub async fn run(ctx: &Context, args: RunArgs) -> Outcome {
    let stack = ctx.stack()?;
    super::check_services(&stack, std::slice::from_ref(&args.service))?;
    let engine = ctx.engine().await?;
    lifecycle::check_external_volumes(&engine, &stack, std::slice::from_ref(&args.service)).await?;
    let stack = ctx.named(&engine, stack, true).await?;
    let (svc, _) =
        lifecycle::prepare_oneoff(&engine, &stack, &args.service, &[], ctx.reporter()).await?;
    let command = if args.command.is_empty() {
        svc.command.clone().unwrap_or_default()
    } else {
        args.command
    };
    // Like `exec`: stdin is passed in, and a TTY given when devenv runs on one.
    let term = console::Term::stdout();
    let tty = (term.is_term() && console::user_attended_stderr()).then(|| term.size());
    let oneoff = OneOff {
        name: format!("{}-{}-run-{}", stack.project, svc.name, std::process::id()),
        command,
        stdin: true,
        tty: tty.is_some(),
        ..OneOff::default()
    };
    ctx.reporter().clear();
    let id = lifecycle::create_oneoff(&engine, &stack, &svc, &oneoff).await?;
    // Sync mode: the one-off runs the checkout's code, not the image's copy.
    if let Err(e) = crate::watch::sync_oneoff(&engine, &stack, &svc, &id).await {
        let _ = engine.remove_container(&id).await;
        return Err(e.into());
    }
    // The terminal goes raw for the container's TTY and comes back after.
    let raw = tty.and_then(|_| RawMode::enter());
    let attached = async {
        let attached = engine.start_attached(&id, tty).await?;
        pump(&engine, attached).await
    };
    let result = tokio::select! {
        r = attached => r.map(exit_code),
        // Without a TTY, Ctrl-C reaches devenv rather than the command: stop it.
        () = interrupt::first() => {
            let stopped = tokio::select! {
                r = engine.stop_container(&id, Duration::from_secs(10)) => r,
                () = interrupt::second() => engine.stop_container(&id, Duration::ZERO).await,
            };
            stopped.map(|()| interrupt::exit_code())
        }
    };
    drop(raw);
    if args.rm {
        engine.remove_container(&id).await?;
    }
    Ok(result?)
}
