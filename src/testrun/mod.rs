//! `devenv test`: PHPUnit in one-off containers of the app's image, each
//! worker against its own database cloned from a migrated template.
//!
//! # How it works
//!
//! 1. The services the tests need (the app's dependencies, the database and
//!    Redis) come up exactly as `up` brings them up.
//! 2. The migration files are hashed. The template `devenv_tpl_<hash>` is
//!    built when missing (or with `--fresh`): an empty `devenv_tplbuild_<hash>`
//!    is created, the migrate command runs into it in a one-off container,
//!    and only when that succeeds is it renamed to the template and closed to
//!    connections — a killed build never leaves a template that looks done.
//! 3. Each worker gets `devenv_test_<run>_<n>`, cloned with `CREATE DATABASE
//!    … TEMPLATE …` (a file copy, no migrating), and its own logical Redis
//!    database, flushed. While the tests run, `devenv_spare_<hash>_<n>` are
//!    cloned for the next run, which then only renames them: the copy costs
//!    a few hundred milliseconds of fsync on slow disks, a rename next to
//!    nothing. Nobody connects to a spare, so it is as clean as the template.
//! 4. PHPUnit runs in one one-off container per worker, the source mounted
//!    read-only (the app's writable folders on tmpfs), with the test env,
//!    `DB_DATABASE` and `REDIS_DB` set; the JUnit report each writes inside
//!    its container is copied out for the summary. Several workers split the
//!    test files round-robin, each through a copy of the app's `phpunit.xml`
//!    listing its share.
//! 5. Containers, clones and temporary files go whatever happened, Ctrl-C
//!    included; the next run removes what a killed one left behind, and
//!    templates of other migration sets.
//!
//! devenv works from the server's `postgres` database: the development
//! database is never connected to. One test run at a time per project, and
//! nothing else that changes the stack meanwhile (the project lock), so
//! everything named `devenv_test_*` at the start is stale.

mod database;
pub mod files;
pub mod junit;
mod workers;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::config::model::{Service, Stack, TestSettings};
use crate::engine::{Engine, EngineError};
use crate::lifecycle::{self, UpError};
use crate::report::Reporter;
use database::{redis_addr, server, Server, TEMPLATE_PREFIX};
use junit::Summary;

/// Workers get Redis databases from the top down, away from the 0 and 1 an
/// app uses by default (`REDIS_DB`, `REDIS_CACHE_DB`).
const REDIS_TOP_DB: u8 = 15;
const REDIS_WORKERS: usize = 14;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TestError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Up(#[from] UpError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Recover(#[from] crate::snapshot::SnapshotError),

    #[error("the stack file does not say how to run the tests")]
    #[diagnostic(
        code(devenv::test::settings),
        help("add a `[test]` table naming the app and its PostgreSQL service, e.g. `service = \"app\"` and `database = \"db\"`; the README lists its keys")
    )]
    NoSettings,

    #[error("cannot read `{}`", path.display())]
    #[diagnostic(code(devenv::test::read), help("{help}"))]
    Read {
        path: PathBuf,
        help: String,
        #[source]
        source: io::Error,
    },

    #[error("`{command}` is not in the image `{image}` of service `{service}`")]
    #[diagnostic(code(devenv::test::missing), help("{help}"))]
    MissingCommand {
        service: String,
        image: String,
        command: String,
        help: String,
    },

    #[error("cannot reach PostgreSQL of service `{service}` from here")]
    #[diagnostic(
        code(devenv::test::unreachable),
        help("publish its port (`ports = [\"5432\"]` lets Docker pick a free host port) so devenv can connect from the host")
    )]
    DatabaseUnreachable { service: String },

    #[error("{action} on PostgreSQL of service `{service}` failed: {reason}")]
    #[diagnostic(
        code(devenv::test::database),
        help("devenv connects with the credentials of the service's `ready = {{ postgres = … }}` probe; the user needs CREATEDB")
    )]
    Database {
        service: String,
        action: String,
        reason: String,
    },

    #[error("migrations failed while building the template database: `{command}` exited with code {code}")]
    #[diagnostic(
        code(devenv::test::migrate),
        help("its output is above; fix the migration and run `devenv test` again (the half-built template was dropped)")
    )]
    Migrate {
        command: String,
        code: i64,
        output: Vec<String>,
    },

    #[error("flushing Redis database {db} of service `{service}` failed: {reason}")]
    #[diagnostic(
        code(devenv::test::redis),
        help("tests get logical databases {REDIS_TOP_DB} downwards; the server needs `databases` of at least 16")
    )]
    Redis {
        service: String,
        db: u8,
        reason: String,
    },

    #[error("`--parallel {asked}` needs more Redis databases than tests get")]
    #[diagnostic(
        code(devenv::test::parallel),
        help("each worker gets its own logical Redis database; use at most `--parallel {REDIS_WORKERS}`")
    )]
    TooManyWorkers { asked: usize },

    #[error("cannot write the JUnit report to `{}`", path.display())]
    #[diagnostic(
        code(devenv::test::junit),
        help("`--junit` takes a file path whose folder devenv may create")
    )]
    Junit {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("interrupted")]
    #[diagnostic(
        code(devenv::test::interrupted),
        help("the test databases and containers of this run were removed")
    )]
    Interrupted,
}

impl TestError {
    /// Bad usage or settings are 2, an interrupt 130; tests that could not
    /// run (no database, a failed migration, no PHPUnit) are 3, apart from
    /// PHPUnit's own 1 for failing tests, so CI tells a red suite from a
    /// broken run.
    pub fn exit_code(&self) -> u8 {
        match self {
            TestError::Up(e) => match e.exit_code() {
                code @ (2 | 130) => code,
                _ => ERRORED,
            },
            TestError::NoSettings | TestError::TooManyWorkers { .. } => 2,
            TestError::Interrupted => 130,
            _ => ERRORED,
        }
    }
}

/// The exit code of a run whose tests could not run or report (a test
/// *error*, as against PHPUnit's 1 for failing tests and 2 for bad config).
pub const ERRORED: u8 = 3;

/// Writes the run's JUnit report (the workers' merged) to `path`, making
/// its folder; `false` when no worker wrote a report.
pub fn write_junit(report: &TestReport, path: &Path) -> Result<bool, TestError> {
    let Some(xml) = report.junit() else {
        return Ok(false);
    };
    let err = |source| TestError::Junit {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, xml).map_err(err)?;
    Ok(true)
}

/// What `devenv test` was asked for.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Workers side by side, each with its own database (at least 1).
    pub parallel: usize,
    /// Rebuild the template even when the migrations did not change.
    pub fresh: bool,
    /// Passed to PHPUnit unchanged.
    pub phpunit_args: Vec<String>,
}

/// Where PHPUnit's own output goes, as it comes.
pub trait TestOutput: Send + Sync {
    /// Raw chunks from a lone worker (`worker` is `None`); whole lines,
    /// tagged with the worker's number, when several run side by side.
    fn output(&self, worker: Option<usize>, text: &str);
}

/// One worker's run.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// Numbered from 1.
    pub number: usize,
    pub database: String,
    pub redis_db: Option<u8>,
    /// How long getting its database ready took.
    pub ready_in: Duration,
    /// Whether that was a spare cloned during the previous run (a rename).
    pub from_spare: bool,
    /// Test files it was given; `None` for the whole suite.
    pub files: Option<usize>,
    /// PHPUnit's exit code.
    pub code: i64,
    /// From its JUnit report; `None` when PHPUnit wrote none.
    pub summary: Option<Summary>,
    /// The JUnit report itself, as PHPUnit wrote it.
    pub junit: Option<String>,
}

/// What a test run did and found.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub template: String,
    /// How long building the template took, when it was built this run.
    pub built_in: Option<Duration>,
    pub workers: Vec<WorkerReport>,
}

impl TestReport {
    /// PHPUnit's exit code, or the first failing worker's.
    pub fn code(&self) -> i64 {
        self.workers
            .iter()
            .map(|w| w.code)
            .find(|c| *c != 0)
            .unwrap_or(0)
    }

    /// One JUnit report of every worker's suites (`--junit`); `None` when
    /// no worker wrote one.
    pub fn junit(&self) -> Option<String> {
        let reports: Vec<&str> = self
            .workers
            .iter()
            .filter_map(|w| w.junit.as_deref())
            .collect();
        (!reports.is_empty()).then(|| junit::merge(&reports))
    }

    /// The workers' reports added up; `None` when none wrote one.
    pub fn summary(&self) -> Option<Summary> {
        self.workers
            .iter()
            .filter_map(|w| w.summary.clone())
            .reduce(|mut a, b| {
                a += b;
                a
            })
    }
}

/// Everything a run creates, so that it can all be removed again.
#[derive(Default)]
struct Made {
    containers: Vec<String>,
    databases: Vec<String>,
    temp_dir: Option<crate::scratch::RunDir>,
}

/// Runs the test suite; `cancel` resolving (Ctrl-C) stops it and cleans up.
pub async fn run(
    engine: &Engine,
    stack: &Stack,
    opts: &TestOptions,
    reporter: Arc<dyn Reporter>,
    out: &dyn TestOutput,
    cancel: impl Future<Output = ()>,
) -> Result<TestReport, TestError> {
    let settings = stack.test.as_ref().ok_or(TestError::NoSettings)?;
    if settings.redis.is_some() && opts.parallel > REDIS_WORKERS {
        return Err(TestError::TooManyWorkers {
            asked: opts.parallel,
        });
    }
    // The project's own lock, for the whole run: a `down -v` or a database
    // command in another terminal waits for the tests instead of pulling
    // their database away (the `up` below takes it again, which is allowed).
    let _lock = lifecycle::lock_for(&stack.project, "test", reporter.as_ref())?;
    let shares = shares(settings, opts, reporter.as_ref())?;
    let hash =
        files::migrations_hash(&settings.migrations, &settings.migrate).map_err(|source| {
            TestError::Read {
                path: settings.migrations.clone(),
                help: "set `[test].migrations` to the app's migrations folder".into(),
                source,
            }
        })?;

    let (svc, outcomes) = lifecycle::prepare_oneoff(
        engine,
        stack,
        &settings.service,
        &[settings.database.clone()]
            .into_iter()
            .chain(settings.redis.clone())
            .collect::<Vec<_>>(),
        reporter.clone(),
    )
    .await?;
    let server = server(engine, stack, settings, &outcomes).await?;
    // What a killed database command left is repaired before the template
    // is cloned (a database set aside or closed would fail the run).
    let db = crate::database::Database::locate(engine, stack)
        .await
        .map_err(crate::snapshot::SnapshotError::from)?;
    crate::dbsafety::recover(engine, &db, reporter.as_ref()).await?;
    let redis = match &settings.redis {
        Some(name) => Some((
            name.clone(),
            redis_addr(engine, stack, name, &outcomes).await?,
        )),
        None => None,
    };

    let mut made = Made::default();
    let run = Run {
        engine,
        stack,
        settings,
        svc,
        server: &server,
        reporter: reporter.as_ref(),
        out,
        id: std::process::id(),
        hash,
    };
    let result = {
        let work = run.go(opts, shares, redis.as_ref(), &mut made);
        tokio::select! {
            r = work => r,
            () = cancel => Err(TestError::Interrupted),
        }
    };
    run.clean_up(&made).await;
    result
}

/// The test files of each worker (container paths, relative to the app
/// folder), or one `None` worker running the suite as configured.
fn shares(
    settings: &TestSettings,
    opts: &TestOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Option<Vec<String>>>, TestError> {
    if opts.parallel <= 1 {
        return Ok(vec![None]);
    }
    if files::selects_tests(&opts.phpunit_args) {
        reporter.notice("the PHPUnit arguments pick the tests: running them in one worker");
        return Ok(vec![None]);
    }
    let Some(source) = &settings.source else {
        reporter.notice("`[test]` has no `source` to split the tests from: running one worker");
        return Ok(vec![None]);
    };
    let read = |path: &Path, help: &str, source: io::Error| TestError::Read {
        path: path.to_path_buf(),
        help: help.to_string(),
        source,
    };
    let found = files::test_files(&settings.tests).map_err(|e| {
        read(
            &settings.tests,
            "set `[test].tests` to the app's tests folder",
            e,
        )
    })?;
    let rel: Vec<String> = found
        .iter()
        .filter_map(|f| {
            let full = settings.tests.join(f);
            full.strip_prefix(source)
                .ok()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    if rel.len() < 2 {
        return Ok(vec![None]);
    }
    Ok(files::split(&rel, opts.parallel)
        .into_iter()
        .map(Some)
        .collect())
}

/// One test run's fixed parts.
struct Run<'a> {
    engine: &'a Engine,
    stack: &'a Stack,
    settings: &'a TestSettings,
    /// The app service as one-off containers run it.
    svc: Service,
    server: &'a Server,
    reporter: &'a dyn Reporter,
    out: &'a dyn TestOutput,
    id: u32,
    hash: String,
}

impl Run<'_> {
    fn container(&self, suffix: &str) -> String {
        format!("{}{}-{suffix}", self.container_prefix(), self.id)
    }

    fn container_prefix(&self) -> String {
        format!("{}-{}-test-", self.stack.project, self.settings.service)
    }

    async fn go(
        &self,
        opts: &TestOptions,
        shares: Vec<Option<Vec<String>>>,
        redis: Option<&(String, (String, u16))>,
        made: &mut Made,
    ) -> Result<TestReport, TestError> {
        let template = format!("{TEMPLATE_PREFIX}{}", self.hash);
        let mut conn = self.server.connect().await?;
        self.remove_stale(&mut conn, &template).await?;
        let built_in = self
            .ensure_template(&mut conn, &template, opts.fresh, made)
            .await?;
        let mut workers = self
            .worker_databases(&mut conn, &template, &shares, redis, made)
            .await?;

        let configs = self.worker_configs(&shares, made)?;
        for w in &workers {
            made.containers.push(self.container(&w.number.to_string()));
        }
        let several = workers.len() > 1;
        self.reporter.task(
            "test",
            &if several {
                format!("running PHPUnit in {} workers", workers.len())
            } else {
                "running PHPUnit".into()
            },
        );
        let jobs = workers
            .iter()
            .zip(configs)
            .map(|(w, config)| self.run_worker(w, config, opts, several));
        // The next run's databases are cloned while this one's tests run, so
        // that it starts with a rename instead of a copy.
        let spares = self.prepare_spares(&mut conn, &template, workers.len());
        let (results, spared) = tokio::join!(join_all(jobs), spares);
        if let Err(e) = spared {
            self.reporter
                .notice(&format!("no spare test database for the next run: {e}"));
        }
        for (w, r) in workers.iter_mut().zip(results) {
            let (code, report) = r?;
            w.code = code;
            (w.summary, w.junit) = report.unzip();
        }
        // Green only when PHPUnit says so: never a green line above a red summary.
        let passed = workers.iter().all(|w| w.code == 0);
        self.reporter.done("test", "PHPUnit finished", passed);
        Ok(TestReport {
            template,
            built_in,
            workers,
        })
    }

    /// Removes the run's containers, databases and files; whatever cannot be
    /// removed now is stale to the next run, so failures are only reported.
    async fn clean_up(&self, made: &Made) {
        for name in &made.containers {
            if let Err(e) = self
                .engine
                .remove_project_container(name, &self.stack.project)
                .await
            {
                self.reporter
                    .notice(&format!("cannot remove container `{name}`: {e}"));
            }
        }
        if !made.databases.is_empty() {
            // A fresh connection: the run's own may have been cut mid-query.
            match self.server.connect().await {
                Ok(mut conn) => {
                    for db in &made.databases {
                        if let Err(e) = self.server.drop(&mut conn, db).await {
                            self.reporter.notice(&e.to_string());
                        }
                    }
                }
                Err(e) => self.reporter.notice(&e.to_string()),
            }
        }
        if let Some(dir) = &made.temp_dir {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_combined_code_is_the_first_failing_workers() {
        let worker = |number, code| WorkerReport {
            number,
            database: String::new(),
            redis_db: None,
            ready_in: Duration::ZERO,
            from_spare: false,
            files: None,
            code,
            summary: None,
            junit: None,
        };
        let report = |codes: &[i64]| TestReport {
            template: String::new(),
            built_in: None,
            workers: codes
                .iter()
                .enumerate()
                .map(|(i, c)| worker(i + 1, *c))
                .collect(),
        };
        assert_eq!(report(&[0, 0]).code(), 0);
        assert_eq!(report(&[0, 2, 1]).code(), 2);
        assert_eq!(report(&[0]).summary(), None);
    }
}
