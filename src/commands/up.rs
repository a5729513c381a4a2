//! `devenv up`: reconcile and start the stack, wait for readiness, print
//! where to reach it, then (unless `-d`) follow the logs and sync source
//! changes by the `watch` rules until Ctrl-C.

use std::time::{Duration, Instant};

use console::style;

use super::{logs, Context, Outcome};
use crate::cli::UpArgs;
use crate::config::model::{Probe, Stack};
use crate::lifecycle::{self, ServiceOutcome, UpError, UpOptions};
use crate::watch;

pub async fn run(ctx: &Context, args: UpArgs) -> Outcome {
    let start = Instant::now();
    let stack = ctx.stack()?;
    let engine = ctx.engine().await?;
    let reporter = ctx.reporter();
    let opts = UpOptions {
        services: args.services,
        build: args.build,
        no_hooks: args.no_hooks,
        no_seeds: false,
    };
    let outcomes = match lifecycle::up(&engine, &stack, &opts, reporter.clone()).await {
        Ok(o) => o,
        Err(e) => {
            if let UpError::NotReady { service, logs, .. } = &e {
                for line in logs {
                    eprintln!("{}", crate::ui::prefixed(service, line));
                }
            }
            return Err(e.into());
        }
    };
    print_summary(&stack, &outcomes, start.elapsed());
    if args.detach {
        return Ok(0);
    }
    let services: Vec<String> = outcomes.iter().map(|o| o.service.clone()).collect();
    eprintln!("{}", style("following logs; Ctrl-C stops the stack").dim());
    // Live sync alongside the logs; if it cannot start, say why and keep following.
    let watching = async {
        if watch::has_rules(&stack, &services) {
            if let Err(e) = watch::run(&engine, &stack, &services, reporter.clone()).await {
                eprintln!("{:?}", miette::Report::new(e));
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        r = logs::follow(&engine, &stack, &services, None) => r?,
        _ = watching => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("{}", style("stopping…").dim());
    let containers = engine.list_containers(&stack.project).await?;
    let stops = containers
        .iter()
        .filter(|c| services.contains(&c.service))
        .map(|c| engine.stop_container(&c.id, Duration::from_secs(10)));
    for r in futures_util::future::join_all(stops).await {
        r?;
    }
    Ok(0)
}

/// One line per service: what happened, how fast it got ready, where to reach it.
fn print_summary(stack: &Stack, outcomes: &[ServiceOutcome], elapsed: Duration) {
    let width = outcomes.iter().map(|o| o.service.len()).max().unwrap_or(0);
    let mut outcomes: Vec<&ServiceOutcome> = outcomes.iter().collect();
    outcomes.sort_by_key(|o| stack.services.get_index_of(&o.service));
    for o in outcomes {
        let svc = &stack.services[&o.service];
        let ready = o
            .ready_after
            .map(|d| format!("ready in {} ms", d.as_millis()))
            .unwrap_or_default();
        let urls: Vec<String> = svc
            .ports
            .iter()
            .filter_map(|p| {
                let host = p.host?;
                let ip = p.host_ip.as_deref().filter(|ip| *ip != "0.0.0.0").unwrap_or("localhost");
                let http = matches!(svc.ready, Some(Probe::Http { port, .. }) if port == p.container)
                    || [80, 443, 3000, 5173, 8000, 8025, 8080, 9001].contains(&p.container);
                Some(if http { format!("http://{ip}:{host}") } else { format!("{ip}:{host}") })
            })
            .collect();
        println!(
            "{} {:width$}  {:9}  {:16} {}",
            style("✔").green(),
            style(&o.service).bold(),
            o.action,
            ready,
            urls.join("  "),
        );
    }
    println!(
        "{} ready in {:.2}s",
        style(&stack.project).bold(),
        elapsed.as_secs_f64()
    );
}
