//! `devenv down`: remove the stack's containers and network; `-v` also its volumes.
//!
//! `-v` first lists the volumes it will remove (and how many database
//! snapshots live in them), then asks on a terminal (`-y` skips the
//! question); not on a terminal it goes ahead after the list, as Compose does.
//!
//! Ctrl-C never leaves containers half-stopped for the next `up` to trip
//! on: the first lets `down` finish (saying a second one forces), the
//! second kills and removes what is left; either way it exits 130.

use std::io::{BufRead, IsTerminal, Write};

use super::{Context, Outcome};
use crate::cli::DownArgs;
use crate::interrupt;
use crate::lifecycle;

pub async fn run(ctx: &Context, args: DownArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    let reporter = ctx.reporter();
    if args.volumes {
        let doomed = lifecycle::doomed_volumes(&engine, &stack).await?;
        if !doomed.is_empty() {
            crate::ui::print_err("down -v removes these volumes and everything in them:");
            for v in &doomed {
                crate::ui::print_err(&format!("  {}", v.describe()));
            }
            if !args.yes && std::io::stdin().is_terminal() && !confirm("remove them?") {
                crate::ui::print_err("nothing was removed");
                return Ok(1);
            }
        }
    }
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

/// Asks a yes/no question on the terminal; anything but yes is no.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
