//! `devenv ui`: serves the live page of the stack (see [`crate::webui`])
//! until Ctrl-C, printing its URL (with the token) first. `up --ui` starts
//! the same server beside an attached `up`.

use console::style;

use super::{Context, Failure, Outcome};
use crate::cli::{UiArgs, UiAt};
use crate::config::model::Stack;
use crate::engine::Engine;
use crate::webui::{self, Bound, Settings};

pub async fn run(ctx: &Context, args: UiArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    let bound = start(engine, stack, &args.at).await?;
    if args.open {
        super::open::in_browser(&bound.url);
    }
    crate::errln!("{}", style("serving the page; Ctrl-C stops it").dim());
    tokio::select! {
        r = bound.serve() => r.map_err(|e| Failure::new(e, 1))?,
        () = crate::interrupt::first() => {}
    }
    Ok(crate::interrupt::exit_code())
}

/// Binds the page's server and says where it is (and, loudly, when other
/// machines can reach it).
pub async fn start(engine: Engine, stack: Stack, at: &UiAt) -> Result<Bound, Failure> {
    let settings = Settings {
        listen: at.listen.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        port: at.port.unwrap_or(0),
    };
    let bound = webui::bind(engine, stack, settings)
        .await
        .map_err(|e| Failure::new(e, 1))?;
    crate::outln!("{} {}", style("devenv ui:").bold(), bound.url);
    if bound.exposed {
        crate::errln!(
            "{}",
            style(format!(
                "warning: the page listens on {}: other machines that can reach this address can open it with the token, and act on the stack",
                settings.listen
            ))
            .yellow()
            .bold()
        );
    }
    Ok(bound)
}
