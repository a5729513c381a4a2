//! `devenv ps`: one line (or JSON object) per service container.

use console::style;

use super::{Context, Outcome};
use crate::cli::PsArgs;
use crate::lifecycle;

pub async fn run(ctx: &Context, args: PsArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    let rows = lifecycle::status(&engine, &stack).await?;
    if args.json {
        let value = serde_json::to_value(&rows).expect("status rows serialise");
        crate::ui::print_data(value, |v| {
            serde_json::to_string_pretty(v).expect("JSON values serialise")
        });
        return Ok(0);
    }
    let w = rows
        .iter()
        .map(|r| r.service.len())
        .max()
        .unwrap_or(7)
        .max(7);
    // Every binding of a port is listed (IPv4 and IPv6, several host
    // addresses), so the column is as wide as its longest entry.
    let pw = rows
        .iter()
        .map(|r| r.ports.join(", ").len())
        .max()
        .unwrap_or(0)
        .max(5);
    crate::outln!(
        "{:w$}  {:14}  {:9}  {:5}  {:pw$}  URLS",
        "SERVICE",
        "CONTAINER",
        "STATE",
        "READY",
        "PORTS"
    );
    let any = !rows.is_empty();
    for r in rows {
        let ready = if r.ready {
            style("yes").green()
        } else {
            style("no").red()
        };
        let urls: Vec<String> = r
            .urls
            .iter()
            .map(|u| format!("{} {}", u.label, u.url))
            .collect();
        crate::outln!(
            "{:w$}  {:14}  {:9}  {:5}  {:pw$}  {}",
            r.service,
            &r.container[..12.min(r.container.len())],
            r.state,
            ready,
            r.ports.join(", "),
            urls.join("  ")
        );
    }
    if any {
        crate::errln!(
            "{}",
            style("connection details (user, password, URL): devenv describe").dim()
        );
    }
    Ok(0)
}
