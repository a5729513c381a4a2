//! `devenv exec SERVICE -- CMD…`: run a command in the running container,
//! stream its output, and exit with its exit code.

use std::io::Write;

use super::{service_container, Context, Outcome};
use crate::cli::ExecArgs;

pub async fn run(ctx: &Context, args: ExecArgs) -> Outcome {
    let stack = ctx.stack()?;
    let engine = ctx.engine().await?;
    let id = service_container(&engine, &stack, &args.service).await?;
    let mut out = std::io::stdout();
    let code = engine
        .exec(&id, args.command, Vec::new(), None, |chunk| {
            let _ = out.write_all(chunk.as_bytes());
            let _ = out.flush();
        })
        .await?;
    Ok(exit_code(code))
}

/// A container's exit code as a process exit code (255 for out-of-range ones).
pub fn exit_code(code: i64) -> u8 {
    u8::try_from(code).unwrap_or(255)
}
