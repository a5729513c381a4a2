//! What the page's buttons do, through the same library functions the
//! commands call: [`control`] for restart/stop/start, the lifecycle's `up`
//! with `--build` for a rebuild, the services' migrate and seed hooks,
//! `[commands]` entries, database snapshots, and the test run (with its
//! JUnit summary). Progress goes to the pages through a
//! [`PageReporter`](super::events::PageReporter), never to the terminal.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::events::{Hub, PageReporter};
use crate::config::model::Stack;
use crate::engine::Engine;
use crate::lifecycle::control::{control, Action};
use crate::lifecycle::{self, UpError, UpOptions};
use crate::report::Reporter;

/// The request body of `POST /api/do/{action}`.
#[derive(Debug, Default, Deserialize)]
pub struct Request {
    pub service: Option<String>,
    /// A `[commands]` entry's name, or a snapshot's.
    pub name: Option<String>,
}

/// What an action answers.
#[derive(Debug, Serialize)]
pub struct Answer {
    pub ok: bool,
    pub message: String,
    /// A test run's result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<Tests>,
}

/// A test run's counts and failing tests, from its JUnit report.
#[derive(Debug, Serialize)]
pub struct Tests {
    pub code: i64,
    pub tests: u64,
    pub failures: u64,
    pub errors: u64,
    pub skipped: u64,
    pub failed: Vec<String>,
}

fn answer(ok: bool, message: impl Into<String>) -> Answer {
    Answer {
        ok,
        message: crate::config::secret::scrub(&message.into()).into_owned(),
        tests: None,
    }
}

/// Runs `action`; the error, when there is one, is the answer's message
/// (as the terminal would show it, masked).
pub async fn run(
    engine: &Engine,
    stack: &Stack,
    hub: Arc<Hub>,
    action: &str,
    req: Request,
) -> Answer {
    let reporter: Arc<dyn Reporter> = Arc::new(PageReporter(hub));
    let services: Vec<String> = req.service.iter().cloned().collect();
    if let Some(s) = services.iter().find(|s| !stack.services.contains_key(*s)) {
        return answer(false, format!("service `{s}` is not in the stack"));
    }
    let r: Result<String, String> = match action {
        "restart" | "stop" | "start" => {
            let a = match action {
                "restart" => Action::Restart,
                "stop" => Action::Stop,
                _ => Action::Start,
            };
            control(engine, stack, a, &services, reporter)
                .await
                .map(|()| done(action, &services))
                .map_err(render)
        }
        "rebuild" if !services.is_empty() => {
            let opts = UpOptions {
                services: services.clone(),
                build: true,
                ..UpOptions::default()
            };
            lifecycle::up(engine, stack, &opts, reporter)
                .await
                .map(|_| done("rebuilt", &services))
                .map_err(render)
        }
        "migrate" | "seed" => hooks(engine, stack, action, &services, reporter.as_ref()).await,
        "command" => {
            command(
                engine,
                stack,
                req.name.as_deref().unwrap_or_default(),
                reporter.as_ref(),
            )
            .await
        }
        "snapshot" | "restore" => {
            snapshot(engine, stack, action, req.name, reporter.as_ref()).await
        }
        "test" => return test(engine, stack, reporter).await,
        _ => Err(format!("`{action}` is not an action")),
    };
    match r {
        Ok(m) => answer(true, m),
        Err(m) => answer(false, m),
    }
}

fn done(what: &str, services: &[String]) -> String {
    if services.is_empty() {
        format!("{what}: every service")
    } else {
        format!("{what}: {}", services.join(", "))
    }
}

/// An error as the terminal shows it (miette's rendering, without colours).
fn render(e: impl miette::Diagnostic + Send + Sync + 'static) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    if handler.render_report(&mut out, &e).is_err() {
        return e.to_string();
    }
    out
}

/// `devenv migrate` / `devenv seed` for the page: the services' hooks in
/// their running containers, then (seed, all services) `seeds/*.sql`.
async fn hooks(
    engine: &Engine,
    stack: &Stack,
    kind: &str,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<String, String> {
    let commands = |svc: &crate::config::model::Service| match kind {
        "migrate" => svc.hooks.migrate.clone(),
        _ => svc.hooks.seed.clone(),
    };
    let containers = lifecycle::owned_containers(engine, stack)
        .await
        .map_err(render)?;
    let mut ran = Vec::new();
    for svc in stack.services.values() {
        if !(services.is_empty() || services.contains(&svc.name)) || commands(svc).is_empty() {
            continue;
        }
        let id = containers
            .iter()
            .find(|c| c.service == svc.name && !c.oneoff && c.state == "running")
            .map(|c| c.id.clone())
            .ok_or_else(|| format!("service `{}` is not running", svc.name))?;
        lifecycle::run_hooks(engine, svc, &id, &commands(svc), reporter)
            .await
            .map_err(render)?;
        reporter.done(&svc.name, "done", true);
        ran.push(svc.name.clone());
    }
    if kind == "seed" && services.is_empty() {
        crate::hooks::apply_sql_seeds(engine, stack, false, reporter)
            .await
            .map_err(|e| render(UpError::from(e)))?;
    }
    Ok(format!(
        "{kind}: {}",
        if ran.is_empty() {
            "nothing to run".into()
        } else {
            ran.join(", ")
        }
    ))
}

/// A `[commands.NAME]` entry, run as `devenv NAME` runs it but without a
/// terminal: its output goes to the pages.
async fn command(
    engine: &Engine,
    stack: &Stack,
    name: &str,
    reporter: &dyn Reporter,
) -> Result<String, String> {
    let cmd = stack
        .commands
        .get(name)
        .ok_or_else(|| format!("`{name}` is not one of the project's commands"))?;
    let containers = lifecycle::owned_containers(engine, stack)
        .await
        .map_err(render)?;
    let id = containers
        .iter()
        .find(|c| c.service == cmd.service && !c.oneoff && c.state == "running")
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("service `{}` is not running", cmd.service))?;
    let mut argv = cmd.argv(name, &[]);
    if let Some(dir) = &cmd.workdir {
        // The engine's exec here takes no working folder: the shell moves there.
        let mut wrapped = vec![
            "sh".into(),
            "-c".into(),
            "cd \"$0\" && exec \"$@\"".into(),
            dir.clone(),
        ];
        wrapped.append(&mut argv);
        argv = wrapped;
    }
    reporter.task(name, "running");
    let mut partial = String::new();
    let code = engine
        .exec(&id, argv, cmd.env_pairs(), cmd.user.clone(), |chunk| {
            partial.push_str(chunk);
            while let Some(at) = partial.find('\n') {
                let line: String = partial.drain(..=at).collect();
                reporter.output(name, line.trim_end());
            }
        })
        .await
        .map_err(render)?;
    if !partial.is_empty() {
        reporter.output(name, &partial);
    }
    reporter.done(name, &format!("exited with code {code}"), code == 0);
    if code == 0 {
        Ok(format!("`{name}` done"))
    } else {
        Err(format!("`{name}` exited with code {code}"))
    }
}

/// `devenv db snapshot` / `db restore`: the lock, the repair of a killed
/// database command, then the snapshot library's own step.
async fn snapshot(
    engine: &Engine,
    stack: &Stack,
    action: &str,
    name: Option<String>,
    reporter: &dyn Reporter,
) -> Result<String, String> {
    let db = crate::database::Database::locate(engine, stack)
        .await
        .map_err(render)?;
    let _lock = lifecycle::lock_for(&stack.project, "db", reporter).map_err(render)?;
    crate::dbsafety::recover(engine, &db, reporter)
        .await
        .map_err(render)?;
    if action == "snapshot" {
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
            let now = jiff::Zoned::now();
            now.strftime("ui-%Y%m%d-%H%M%S").to_string()
        });
        crate::snapshot::check_name(&name).map_err(render)?;
        crate::snapshot::snapshot(&db, &name)
            .await
            .map_err(render)?;
        Ok(format!("snapshot `{name}` of `{}` taken", db.name))
    } else {
        let name = name.ok_or("name the snapshot to restore")?;
        crate::snapshot::restore(&db, &name).await.map_err(render)?;
        // The next restore is a rename again, as after `devenv db restore`.
        crate::snapshot::prepare_spare(&db, &name)
            .await
            .map_err(render)?;
        Ok(format!("`{}` restored from snapshot `{name}`", db.name))
    }
}

/// The snapshots there are, for the page's restore menu.
pub async fn snapshots(engine: &Engine, stack: &Stack) -> Vec<String> {
    let Ok(db) = crate::database::Database::locate(engine, stack).await else {
        return Vec::new();
    };
    crate::snapshot::list(&db)
        .await
        .map(|all| all.into_iter().map(|s| s.name).collect())
        .unwrap_or_default()
}

struct Output(Arc<dyn Reporter>);

impl crate::testrun::TestOutput for Output {
    fn output(&self, _worker: Option<usize>, text: &str) {
        for line in text.lines() {
            self.0.output("test", &crate::config::secret::scrub(line));
        }
    }
}

/// `devenv test`: the suite, and what its JUnit report counts.
async fn test(engine: &Engine, stack: &Stack, reporter: Arc<dyn Reporter>) -> Answer {
    let opts = crate::testrun::TestOptions {
        parallel: 1,
        fresh: false,
        phpunit_args: Vec::new(),
    };
    let out = Output(reporter.clone());
    let never = std::future::pending::<()>();
    match crate::testrun::run(engine, stack, &opts, reporter, &out, never).await {
        Ok(report) => {
            let code = report.code();
            let summary = report.summary();
            let tests = summary.as_ref().map(|s| Tests {
                code,
                tests: s.tests,
                failures: s.failures,
                errors: s.errors,
                skipped: s.skipped,
                failed: s.failed.clone(),
            });
            let message = match &summary {
                Some(s) => format!(
                    "{} tests: {} passed, {} failed, {} errors, {} skipped",
                    s.tests,
                    s.tests.saturating_sub(s.failures + s.errors + s.skipped),
                    s.failures,
                    s.errors,
                    s.skipped
                ),
                None => format!("PHPUnit exited with code {code} (no JUnit report)"),
            };
            Answer {
                ok: code == 0,
                message,
                tests,
            }
        }
        Err(e) => answer(false, render(e)),
    }
}
