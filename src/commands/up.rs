//! `devenv up`: reconcile and start the stack, wait for readiness, print
//! where to reach it, then (unless `-d`) follow the logs and sync source
//! changes by the `watch` rules until Ctrl-C, which stops the stack (a
//! second Ctrl-C kills it). Interrupted, it exits 130.

use std::sync::Arc;
use std::time::{Duration, Instant};

use console::style;
use jiff::Timestamp;

use super::follow::{self, Follow, Start, Until};
use super::{Context, Failure, Outcome};
use crate::cli::UpArgs;
use crate::config::model::Stack;
use crate::engine::{Engine, EngineError};
use crate::interrupt;
use crate::lifecycle::{self, session, ServiceOutcome, UpError, UpOptions};
use crate::report::Reporter;
use crate::watch;

pub async fn run(ctx: &Context, args: UpArgs) -> Outcome {
    let start = Instant::now();
    let stack = ctx.stack()?;
    super::check_services(&stack, &args.services)?;
    let engine = ctx.engine().await?;
    lifecycle::check_external_volumes(&engine, &stack, &args.services).await?;
    // A dry run changes nothing: it takes the name the next `up` would, unclaimed.
    let stack = ctx.named(&engine, stack, !args.dry_run).await?;
    // Every task's changes are kept for `devenv ui`'s timeline of the last `up`.
    let timeline = Arc::new(crate::timeline::Recorder::new(
        &stack.project,
        ctx.reporter(),
    ));
    let reporter: Arc<dyn Reporter> = timeline.clone();
    let opts = options(&args);
    if args.dry_run {
        return dry_run(&engine, &stack, &opts, args.json).await;
    }
    if let Some(s) = &args.exit_code_from {
        super::check_services(&stack, std::slice::from_ref(s))?;
    }
    // `--ui`: the page is up before the stack, so it shows the start live.
    let _page = if args.ui {
        let bound = super::ui::start(engine.clone(), stack.clone(), &args.ui_at).await?;
        Some(AbortOnDrop(tokio::spawn(bound.serve())))
    } else {
        None
    };
    let selected = lifecycle::select(&stack, &opts.services)?;
    // Attached, it shows what happens from here on (`logs` has the history):
    // the boot lines of what it starts, never a previous run's.
    let begin = follow::engine_now(&engine).await?;
    // A killed database command is repaired before the probes and hooks use
    // the database, or, when it was not running, once `up` has started it.
    crate::dbsafety::recover_if_noted(&engine, &stack, reporter.as_ref()).await;
    // A database per branch: the branch's own, before the hooks migrate it
    // (when the database runs already; else once `up` has started it, below).
    let _ = super::dbbranch::follow_at_up(ctx, &engine, &stack).await;
    let up = bring_up(&engine, &stack, &opts, &timeline, &selected, args.detach);
    let Some(outcomes) = up.await? else {
        return Ok(interrupt::exit_code());
    };
    crate::dbsafety::recover_if_noted(&engine, &stack, reporter.as_ref()).await;
    super::dbbranch::follow_at_up(ctx, &engine, &stack).await?;
    summarise(&engine, &stack, &outcomes, reporter.as_ref(), start).await?;
    if args.detach {
        return Ok(0);
    }
    let services: Vec<String> = outcomes.iter().map(|o| o.service.clone()).collect();
    attach(&engine, &stack, &services, begin, &args, reporter).await
}

/// What the command line asks of the library's `up`.
fn options(args: &UpArgs) -> UpOptions {
    UpOptions {
        services: args.services.clone(),
        build: args.build,
        no_hooks: args.no_hooks,
        no_seeds: false,
        create_paths: args.create_paths,
        no_ports: false,
    }
}

/// Brings the stack up, saving the timeline either way: what `up` did, or
/// `None` when Ctrl-C came first. Interrupted before everything was ready,
/// an attached `up` owns the stack for its session, so it stops what it
/// started; `-d` leaves it for the next `up` to finish.
async fn bring_up(
    engine: &Engine,
    stack: &Stack,
    opts: &UpOptions,
    timeline: &Arc<crate::timeline::Recorder>,
    selected: &[String],
    detach: bool,
) -> Result<Option<Vec<ServiceOutcome>>, Failure> {
    let reporter: Arc<dyn Reporter> = timeline.clone();
    tokio::select! {
        r = lifecycle::up(engine, stack, opts, reporter.clone()) => match r {
            Ok(o) => {
                // A timeline that cannot be written costs the page its chart, not the `up`.
                let _ = timeline.save(true);
                Ok(Some(o))
            }
            Err(e) => {
                let _ = timeline.save(false);
                reporter.clear();
                if let UpError::NotReady { service, logs, .. } = &e {
                    for line in logs {
                        crate::ui::print_err(&crate::ui::prefixed(service, line));
                    }
                }
                Err(e.into())
            }
        },
        () = interrupt::first() => {
            let _ = timeline.save(false);
            reporter.clear();
            if detach {
                session::stop_hooks(engine, stack, selected).await?;
            } else {
                stop(engine, stack, selected, reporter.as_ref()).await?;
            }
            Ok(None)
        }
    }
}

/// Where to reach what came up: the shared router made to serve the names
/// the engine's labels now ask for (issue 28), the ports the engine
/// published (which need not be the declared ones), one line per service.
async fn summarise(
    engine: &Engine,
    stack: &Stack,
    outcomes: &[ServiceOutcome],
    reporter: &dyn Reporter,
    start: Instant,
) -> Result<(), Failure> {
    // An extra on top of the published ports, so a router that cannot
    // start is said, not fatal.
    let router = match crate::router::sync(engine, reporter).await {
        Ok(listening) => listening,
        Err(e) => {
            reporter.notice(&format!("HTTPS names are not served: {e}"));
            None
        }
    };
    reporter.clear();
    let published: Vec<(String, Vec<(u16, u16)>)> = engine
        .list_containers(&stack.project)
        .await?
        .into_iter()
        .filter(|c| !c.oneoff)
        .map(|c| (c.service, c.published))
        .collect();
    print_summary(stack, outcomes, &published, router, start.elapsed());
    Ok(())
}

/// The attached session: follows the logs of `services` from `begin`, with
/// live sync by the `watch` rules and a database per branch following
/// `git checkout`, until Ctrl-C (or, with `--abort-on-container-exit`, a
/// service exits); then stops the stack.
async fn attach(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    begin: Timestamp,
    args: &UpArgs,
    reporter: Arc<dyn Reporter>,
) -> Outcome {
    let abort = args.abort_on_container_exit || args.exit_code_from.is_some();
    crate::errln!(
        "{}",
        style("following logs; Ctrl-C stops the stack (twice: kills it)").dim()
    );
    // Live sync alongside the logs; if it cannot start, say why and keep following.
    let sync = async {
        if watch::has_rules(stack, services) {
            let rebuild = crate::lifecycle::up::Rebuilder {
                engine,
                stack,
                reporter: reporter.clone(),
            };
            if let Err(e) = watch::run(engine, stack, services, &rebuild, reporter.clone()).await {
                crate::ui::print_err(&format!("{:?}", miette::Report::new(e)));
            }
        }
    };
    // …and a database per branch follows `git checkout` (it never ends).
    let watching = async {
        tokio::join!(
            sync,
            super::dbbranch::watch_head(engine, stack, reporter.as_ref())
        );
    };
    tokio::select! {
        r = follow::follow(engine, stack, Follow {
            services: Some(services),
            start: Start::After(begin),
            until: Until::Removed,
            timestamps: false,
        }) => {
            // Every container is gone: someone ran `devenv down` elsewhere.
            r?;
            crate::errln!("{}", style("the stack's containers were removed; nothing left to follow").dim());
            return Ok(0);
        }
        _ = watching => {}
        () = interrupt::first() => {}
        r = session::first_exit(engine, stack, services), if abort => {
            let (service, code) = r?;
            crate::errln!("{}", style(format!("`{service}` exited with code {code}: stopping the stack")).dim());
            stop(engine, stack, services, reporter.as_ref()).await?;
            let code = match &args.exit_code_from {
                Some(from) => session::exit_code_of(engine, stack, from).await?,
                None => code,
            };
            // A code past 255 or below 0 still says it failed.
            return Ok(u8::try_from(code).unwrap_or(1));
        }
    }
    stop(engine, stack, services, reporter.as_ref()).await?;
    Ok(interrupt::exit_code())
}

/// Stops the containers of `services` gracefully, or kills them when Ctrl-C
/// is pressed again meanwhile.
async fn stop(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<(), EngineError> {
    session::stop(engine, stack, services, reporter, interrupt::second).await
}

/// The page's server (`up --ui`) stops when `up` returns.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `up --dry-run`: the plan in words (or JSON), the host ports checked;
/// nothing changes. A port `up` would stop at fails it as `up` would.
async fn dry_run(engine: &Engine, stack: &Stack, opts: &UpOptions, json: bool) -> Outcome {
    let plan = lifecycle::dry_run(engine, stack, opts).await?;
    if json {
        // A command's argument (`--requirepass ${REDIS_PASSWORD}`) or an env
        // value embedding a secret is masked before JSON escapes it.
        let value = serde_json::to_value(&plan).expect("a plan serialises");
        crate::ui::print_data(value, |v| {
            serde_json::to_string_pretty(v).expect("JSON values serialise")
        });
    } else {
        for line in crate::plan::render::lines(&plan) {
            crate::outln!("{line}");
        }
        crate::errln!("{}", style("dry run: nothing was changed").dim());
    }
    lifecycle::up::port_refusal(&plan.port_checks)?;
    Ok(0)
}

/// One line per service: what happened, how fast it got ready, where to
/// reach it (`published`: each service's container and host ports).
fn print_summary(
    stack: &Stack,
    outcomes: &[ServiceOutcome],
    published: &[(String, Vec<(u16, u16)>)],
    router: Option<crate::router::Listening>,
    elapsed: Duration,
) {
    let width = outcomes.iter().map(|o| o.service.len()).max().unwrap_or(0);
    let mut outcomes: Vec<&ServiceOutcome> = outcomes.iter().collect();
    outcomes.sort_by_key(|o| stack.services.get_index_of(&o.service));
    for o in outcomes {
        let svc = &stack.services[&o.service];
        let ready = o
            .ready_after
            .map(|d| format!("ready in {} ms", d.as_millis()))
            .unwrap_or_default();
        let ports = published
            .iter()
            .find(|(s, _)| *s == o.service)
            .map(|(_, p)| p.as_slice())
            .unwrap_or_default();
        let urls = crate::urls::service_urls(&o.service, Some(svc), ports);
        let urls: Vec<String> =
            crate::urls::with_route(urls, &o.service, Some(svc), router.map(|r| r.https))
                .into_iter()
                .map(|u| u.url)
                .collect();
        crate::outln!(
            "{} {:width$}  {:9}  {:16} {}",
            style("✔").green(),
            style(&o.service).bold(),
            o.action,
            ready,
            urls.join("  "),
        );
    }
    // For tools that do not resolve `*.localhost` or trust devenv's CA yet.
    let first = stack.services.values().find_map(|s| s.route());
    if let (Some(router), Some((host, _))) = (router, first) {
        let ca = crate::ca::cert_path()
            .map(|p| format!(" --cacert {}", p.display()))
            .unwrap_or_default();
        crate::outln!(
            "{}",
            style(format!(
                "curl {}{ca} {}   (`devenv trust` makes browsers trust it)",
                router.resolve_hint(&host),
                router.https_url(&host)
            ))
            .dim()
        );
    }
    // Last, as scripts read the project's name from it.
    crate::outln!(
        "{} ready in {:.2}s",
        style(&stack.project).bold(),
        elapsed.as_secs_f64()
    );
}
