//! `devenv completions SHELL`: shell completion scripts.

use clap::CommandFactory;

use super::Outcome;
use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> Outcome {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "devenv",
        &mut std::io::stdout(),
    );
    Ok(0)
}
