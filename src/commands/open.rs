//! `devenv open [SERVICE]`: the service's URL (the app's by default) in the
//! browser; where there is none (no display, CI, ssh) the URL is printed.

use super::shortcuts::app_service;
use super::{Context, Failure, Outcome};
use crate::cli::OpenArgs;
use crate::urls;

pub async fn run(ctx: &Context, args: OpenArgs) -> Outcome {
    let stack = ctx.stack()?;
    let service = match args.service {
        Some(s) => s,
        None => app_service(&stack)?,
    };
    if service == "ui" && !stack.services.contains_key("ui") {
        return open_ui(ctx, stack).await;
    }
    super::check_services(&stack, std::slice::from_ref(&service))?;
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    let rows = crate::lifecycle::status(&engine, &stack).await?;
    let url = rows
        .iter()
        .find(|r| r.service == service)
        .and_then(|r| urls::browser_url(&r.urls, &service))
        .ok_or_else(|| {
            Failure::new(
                NoUrl {
                    service: service.clone(),
                },
                1,
            )
        })?;
    launch(&url);
    Ok(0)
}

/// `devenv open ui`: the page of the newest `devenv ui` running for this project.
async fn open_ui(ctx: &Context, stack: crate::config::model::Stack) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    let url = crate::webui::running(&stack.project).pop().ok_or_else(|| {
        Failure::new(
            NoUi {
                project: stack.project.clone(),
            },
            1,
        )
    })?;
    launch(&url);
    Ok(0)
}

/// Prints `url` and opens it where a person can see a browser.
fn launch(url: &str) {
    crate::outln!("{url}");
    in_browser(url);
}

/// Opens `url` where a person can see a browser; nothing elsewhere.
pub(super) fn in_browser(url: &str) {
    if let Some(opener) = opener() {
        // The browser's own chatter is not ours to show.
        let _ = std::process::Command::new(opener)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no `devenv ui` is running for project `{project}`")]
#[diagnostic(
    code(devenv::open::no_ui),
    help("start one with `devenv ui` (or `devenv up --ui`)")
)]
struct NoUi {
    project: String,
}

/// The program that opens a URL here, if a person can see the result.
fn opener() -> Option<String> {
    if let Ok(browser) = std::env::var("BROWSER") {
        return Some(browser);
    }
    if cfg!(target_os = "macos") {
        return Some("open".into());
    }
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("xdg-open").is_file()));
    (display && found).then(|| "xdg-open".into())
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("service `{service}` has no web page published on the host")]
#[diagnostic(
    code(devenv::open::no_url),
    help("start it (`devenv up -d`) and publish its HTTP port in `ports`; `devenv ps` lists what is published")
)]
struct NoUrl {
    service: String,
}
