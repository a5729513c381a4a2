//! `devenv describe [SERVICE]`: per service its image, state, readiness,
//! URLs and host ports, and how to connect (see [`crate::describe`]);
//! secrets masked unless `--reveal`, `--json` for scripts.

use console::style;

use super::{Context, Outcome};
use crate::cli::DescribeArgs;
use crate::describe::Description;
use crate::lifecycle;

pub async fn run(ctx: &Context, args: DescribeArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    if !stack.services.is_empty() {
        super::check_services(&stack, args.service.as_slice())?;
    }
    // What the containers hold is what a client must use, and what this
    // process must not print unless revealed.
    let held = lifecycle::held_secrets(&engine, &stack.project, None).await?;
    let status = lifecycle::status(&engine, &stack).await?;
    let seen = crate::describe::Observed {
        status: &status,
        held: &held,
    };
    let mut all = crate::describe::describe(&stack, seen, args.reveal);
    if let Some(one) = &args.service {
        all.retain(|d| &d.service == one);
    }
    if args.json {
        let value = serde_json::to_value(&all).expect("descriptions serialise");
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialise");
        if args.reveal {
            crate::ui::print_revealed(&text);
        } else {
            crate::ui::print_data(value, |v| {
                serde_json::to_string_pretty(v).expect("JSON values serialise")
            });
        }
        return Ok(0);
    }
    for (i, d) in all.iter().enumerate() {
        if i > 0 {
            crate::outln!("");
        }
        print(d, args.reveal);
    }
    if !args.reveal && all.iter().any(|d| !d.connection.is_empty()) {
        crate::errln!(
            "{}",
            style("secrets are masked; `devenv describe --reveal` shows them").dim()
        );
    }
    Ok(0)
}

fn print(d: &Description, reveal: bool) {
    let ready = match (d.state.as_str(), d.ready) {
        ("running", true) => style("ready").green(),
        ("running", false) => style("not ready").red(),
        _ => style("").dim(),
    };
    crate::outln!("{}  {}  {}", style(&d.service).bold(), d.state, ready);
    let mut rows: Vec<(&str, String)> = vec![("image", d.image.clone())];
    for u in &d.urls {
        rows.push((u.label.as_str(), u.url.clone()));
    }
    if !d.ports.is_empty() {
        rows.push(("ports", d.ports.join(", ")));
    }
    for c in &d.connection {
        rows.push((c.key, c.value.clone()));
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        let line = format!("  {:w$}  {v}", style(k).dim());
        if reveal {
            crate::ui::print_revealed(&line);
        } else {
            crate::outln!("{line}");
        }
    }
}
