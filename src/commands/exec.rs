//! `devenv exec [-u USER] [-T] [-e K=V] [-w DIR] SERVICE [--] CMD…`: run a
//! command in the running container with the terminal attached (a TTY when
//! devenv runs on one), and exit with its exit code.

use super::terminal::{pump, RawMode};
use super::{service_container, Context, Outcome};
use crate::cli::ExecArgs;
use crate::config::model::Stack;
use crate::engine::ExecAs;

pub async fn run(ctx: &Context, args: ExecArgs) -> Outcome {
    let stack = ctx.stack()?;
    let who = ExecAs {
        user: args.user,
        env: args.env,
        working_dir: args.workdir,
    };
    attached(ctx, &stack, &args.service, args.command, &who, !args.no_tty).await
}

/// Runs `command` in the running container of `service` with the user's
/// terminal attached (a TTY when both ends are terminals and `tty` allows
/// it); the container command's exit code is the outcome. The shortcuts
/// (`artisan`, `psql`, `shell`, …) come through here too.
pub async fn attached(
    ctx: &Context,
    stack: &Stack,
    service: &str,
    command: Vec<String>,
    who: &ExecAs,
    tty: bool,
) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = &ctx.named(&engine, stack.clone(), false).await?;
    let id = service_container(&engine, stack, service).await?;
    let term = console::Term::stdout();
    let tty = (tty && term.is_term() && console::user_attended_stderr()).then(|| term.size());
    let attached = engine.exec_attached(&id, command, tty, who).await?;
    // The terminal goes raw for the container's TTY and comes back after.
    let _raw = tty.and_then(|_| RawMode::enter());
    if tty.is_some() {
        // Ctrl-C is a byte the container's terminal turns into its signal.
        return Ok(exit_code(pump(&engine, attached).await?));
    }
    // Without a TTY, Ctrl-C (or SIGTERM, SIGHUP) reaches devenv: it is passed
    // on to the command, which then ends as it sees fit; a second forces.
    let target = attached.exec_target();
    let signals = async {
        crate::interrupt::first().await;
        let name = match crate::interrupt::exit_code() {
            129 => "HUP",
            143 => "TERM",
            _ => "INT",
        };
        if let Some(t) = &target {
            engine.signal_exec(t, name).await;
        }
        // It gets a moment to end by itself (its output keeps coming); one
        // that ignores the signal does not hold devenv longer.
        tokio::select! {
            () = tokio::time::sleep(FORWARD_GRACE) => {}
            () = crate::interrupt::second() => {}
        }
    };
    tokio::select! {
        r = pump(&engine, attached) => Ok(exit_code(r?)),
        () = signals => Ok(crate::interrupt::exit_code()),
    }
}

/// How long a command that was passed a signal may take to end.
const FORWARD_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// A container's exit code as a process exit code (255 for out-of-range ones).
pub fn exit_code(code: i64) -> u8 {
    u8::try_from(code).unwrap_or(255)
}
