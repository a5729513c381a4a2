//! The `devenv` binary: parse, build the runtime, run, map to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    // clap's parse, with the project's own commands in `--help`.
    let cli = devenv::commands::custom::parse();
    // Long messages stay on one line when piped, so logs and CI output can be searched.
    let terminal = console::Term::stderr().is_term();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(devenv::clip::ClippingHandler(
            miette::MietteHandlerOpts::new()
                .wrap_lines(terminal)
                .build(),
        ))
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    match runtime.block_on(devenv::commands::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // Through the UI: an error may quote a value holding a secret; a
            // reader that went away does not change the exit code.
            devenv::ui::try_err(&format!("{:?}", failure.report));
            ExitCode::from(failure.code)
        }
    }
}
