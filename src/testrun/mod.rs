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
//! database is never connected to. One test run at a time per project (a
//! lock), so everything named `devenv_test_*` at the start is stale.

pub mod files;
pub mod junit;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::config::model::{EnvValue, Mount, Probe, Service, Stack, TestSettings};
use crate::engine::{Engine, EngineError, OneOff};
use crate::lifecycle::{self, ServiceOutcome, UpError};
use crate::probe::{self, Target};
use crate::report::Reporter;
use junit::Summary;

/// Where each container writes its JUnit report (inside it, never on the host).
const JUNIT: &str = "/tmp/devenv-junit.xml";
/// Workers get Redis databases from the top down, away from the 0 and 1 an
/// app uses by default (`REDIS_DB`, `REDIS_CACHE_DB`).
const REDIS_TOP_DB: u8 = 15;
const REDIS_WORKERS: usize = 14;
const TEMPLATE_PREFIX: &str = "devenv_tpl_";
const BUILD_PREFIX: &str = "devenv_tplbuild_";
const CLONE_PREFIX: &str = "devenv_test_";
const SPARE_PREFIX: &str = "devenv_spare_";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TestError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Up(#[from] UpError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

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

    #[error("interrupted")]
    #[diagnostic(
        code(devenv::test::interrupted),
        help("the test databases and containers of this run were removed")
    )]
    Interrupted,
}

impl TestError {
    /// Bad usage or settings are 2, an interrupt 130, a failed job 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            TestError::Up(e) => e.exit_code(),
            TestError::NoSettings | TestError::TooManyWorkers { .. } => 2,
            TestError::Interrupted => 130,
            _ => 1,
        }
    }
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

/// The PostgreSQL server the test databases live on, as reached from the host.
struct Server {
    service: String,
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl Server {
    async fn connect(&self) -> Result<sqlx::PgConnection, TestError> {
        probe::pg_connect(
            &self.host,
            self.port,
            &self.user,
            &self.password,
            "postgres",
        )
        .await
        .map_err(|reason| self.error("connecting", reason))
    }

    async fn execute(
        &self,
        conn: &mut sqlx::PgConnection,
        action: &str,
        sql: &str,
    ) -> Result<(), TestError> {
        sqlx::raw_sql(sql)
            .execute(conn)
            .await
            .map(drop)
            .map_err(|e| self.error(action, e.to_string()))
    }

    /// Names of the databases devenv made on this server.
    async fn ours(&self, conn: &mut sqlx::PgConnection) -> Result<Vec<String>, TestError> {
        sqlx::query_scalar::<_, String>(
            "SELECT datname FROM pg_database WHERE datname LIKE 'devenv\\_%' ORDER BY datname",
        )
        .fetch_all(conn)
        .await
        .map_err(|e| self.error("listing databases", e.to_string()))
    }

    /// Drops a database, closing whatever connections it still has.
    async fn drop(&self, conn: &mut sqlx::PgConnection, name: &str) -> Result<(), TestError> {
        self.execute(
            conn,
            &format!("dropping `{name}`"),
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await
    }

    /// `CREATE DATABASE … TEMPLATE` and `RENAME` need a database nobody is connected to.
    async fn disconnect(&self, conn: &mut sqlx::PgConnection, name: &str) -> Result<(), TestError> {
        self.execute(
            conn,
            &format!("closing connections to `{name}`"),
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
        )
        .await
    }

    fn error(&self, action: &str, reason: String) -> TestError {
        TestError::Database {
            service: self.service.clone(),
            action: action.to_string(),
            reason,
        }
    }
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
    let _lock = lifecycle::lock(&format!("{}-test", stack.project), reporter.as_ref())?;
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

/// The database service's address from the host, with its probe's credentials.
async fn server(
    engine: &Engine,
    stack: &Stack,
    settings: &TestSettings,
    outcomes: &[ServiceOutcome],
) -> Result<Server, TestError> {
    let name = &settings.database;
    let Some(Probe::Postgres {
        port,
        user,
        password,
        ..
    }) = &stack.services[name].ready
    else {
        unreachable!("config checks that the test database has a postgres probe")
    };
    let target = target(engine, stack, name, outcomes).await?;
    let (host, port) = target
        .addr(*port)
        .ok_or_else(|| TestError::DatabaseUnreachable {
            service: name.clone(),
        })?;
    Ok(Server {
        service: name.clone(),
        host,
        port,
        user: user.clone(),
        password: password.expose().to_string(),
    })
}

async fn redis_addr(
    engine: &Engine,
    stack: &Stack,
    name: &str,
    outcomes: &[ServiceOutcome],
) -> Result<(String, u16), TestError> {
    let port = match stack.services[name].ready {
        Some(Probe::Redis { port, .. }) => port,
        _ => 6379,
    };
    target(engine, stack, name, outcomes)
        .await?
        .addr(port)
        .ok_or_else(|| TestError::Redis {
            service: name.to_string(),
            db: REDIS_TOP_DB,
            reason: "it cannot be reached from here; publish its port in `ports`".into(),
        })
}

async fn target(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    outcomes: &[ServiceOutcome],
) -> Result<Target, TestError> {
    let id = &outcomes
        .iter()
        .find(|o| o.service == service)
        .expect("the test's services were brought up")
        .container;
    let status = engine.inspect_container(id, &stack.project).await?;
    Ok(Target::from_status(id, &status))
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

    /// The database worker `number` of the next run starts from.
    fn spare(&self, number: usize) -> String {
        format!("{SPARE_PREFIX}{}_{number}", self.hash)
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

        let exists = self.server.ours(&mut conn).await?.contains(&template);
        let built_in = if exists && !opts.fresh {
            self.reporter.done(
                "test db",
                &format!("template `{template}` is up to date with the migrations"),
                true,
            );
            None
        } else {
            if exists {
                self.server.drop(&mut conn, &template).await?;
            }
            Some(self.build_template(&mut conn, &template, made).await?)
        };

        if built_in.is_some() {
            // Spares of an earlier template by the same name (`--fresh`) are not to be trusted.
            for db in self.server.ours(&mut conn).await? {
                if db.starts_with(SPARE_PREFIX) {
                    self.server.drop(&mut conn, &db).await?;
                }
            }
        }
        let ours = self.server.ours(&mut conn).await?;
        let mut workers = Vec::new();
        for (i, files) in shares.iter().enumerate() {
            let number = i + 1;
            let database = format!("{CLONE_PREFIX}{}_{number}", self.id);
            made.databases.push(database.clone());
            let spare = self.spare(number);
            let from_spare = ours.contains(&spare);
            let start = Instant::now();
            if from_spare {
                self.server
                    .execute(
                        &mut conn,
                        &format!("renaming `{spare}`"),
                        &format!("ALTER DATABASE \"{spare}\" RENAME TO \"{database}\""),
                    )
                    .await?;
            } else {
                self.server.disconnect(&mut conn, &template).await?;
                self.server
                    .execute(
                        &mut conn,
                        &format!("cloning `{template}`"),
                        &format!("CREATE DATABASE \"{database}\" TEMPLATE \"{template}\""),
                    )
                    .await?;
            }
            let ready_in = start.elapsed();
            self.reporter.done(
                "test db",
                &format!(
                    "`{database}` ready in {:.1} ms ({})",
                    ready_in.as_secs_f64() * 1000.0,
                    if from_spare {
                        format!("a spare cloned from `{template}` during the last run")
                    } else {
                        format!("cloned from `{template}`")
                    }
                ),
                true,
            );
            let redis_db = match redis {
                Some((name, addr)) => {
                    let db = REDIS_TOP_DB - i as u8;
                    flush_redis(name, addr, db).await?;
                    Some(db)
                }
                None => None,
            };
            workers.push(WorkerReport {
                number,
                database,
                redis_db,
                ready_in,
                from_spare,
                files: files.as_ref().map(Vec::len),
                code: 0,
                summary: None,
            });
        }

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
        let spares = async {
            for number in 1..=workers.len() {
                let spare = self.spare(number);
                self.server
                    .execute(
                        &mut conn,
                        &format!("preparing `{spare}`"),
                        &format!("CREATE DATABASE \"{spare}\" TEMPLATE \"{template}\""),
                    )
                    .await?;
            }
            Ok::<_, TestError>(())
        };
        let (results, spared) = tokio::join!(join_all(jobs), spares);
        if let Err(e) = spared {
            self.reporter
                .notice(&format!("no spare test database for the next run: {e}"));
        }
        for (w, r) in workers.iter_mut().zip(results) {
            let (code, summary) = r?;
            w.code = code;
            w.summary = summary;
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

    /// Drops what killed runs left (clones, half-built templates, their
    /// containers) and templates of other migration sets.
    async fn remove_stale(
        &self,
        conn: &mut sqlx::PgConnection,
        template: &str,
    ) -> Result<(), TestError> {
        for c in self.engine.list_containers(&self.stack.project).await? {
            if c.oneoff && c.name.starts_with(&self.container_prefix()) {
                self.engine.remove_container(&c.id).await?;
            }
        }
        for db in self.server.ours(conn).await? {
            let stale = db.starts_with(CLONE_PREFIX)
                || db.starts_with(BUILD_PREFIX)
                || (db.starts_with(TEMPLATE_PREFIX) && db != template)
                || (db.starts_with(SPARE_PREFIX)
                    && !db.starts_with(&format!("{SPARE_PREFIX}{}_", self.hash)));
            if stale {
                self.server.drop(conn, &db).await?;
                self.reporter
                    .done("test db", &format!("removed stale `{db}`"), true);
            }
        }
        Ok(())
    }

    /// Migrates a fresh database and makes it the template; returns how long it took.
    async fn build_template(
        &self,
        conn: &mut sqlx::PgConnection,
        template: &str,
        made: &mut Made,
    ) -> Result<Duration, TestError> {
        let start = Instant::now();
        let build = format!("{BUILD_PREFIX}{}", self.hash);
        self.reporter.task(
            "test db",
            &format!(
                "building template `{template}`: `{}`",
                self.settings.migrate
            ),
        );
        made.databases.push(build.clone());
        self.server
            .execute(
                conn,
                &format!("creating `{build}`"),
                &format!("CREATE DATABASE \"{build}\""),
            )
            .await?;

        let name = self.container("migrate");
        made.containers.push(name.clone());
        let oneoff = OneOff {
            name: name.clone(),
            command: vec!["sh".into(), "-c".into(), self.settings.migrate.clone()],
            tmpfs: self.tmpfs(),
            ..OneOff::default()
        };
        let svc = self.service(&build, None, None);
        let mut output = String::new();
        let result = lifecycle::run_oneoff(self.engine, self.stack, &svc, &oneoff, |chunk| {
            output.push_str(chunk)
        })
        .await;
        // By name: only if it is this project's (the name may be someone else's).
        self.engine
            .remove_project_container(&name, &self.stack.project)
            .await?;
        let lines: Vec<String> = output.lines().map(str::to_string).collect();
        let code = match result {
            Ok((_, code)) => code,
            Err(e) if e.is_missing_executable() => {
                return Err(self.missing("sh", "the image needs a shell to run `[test].migrate`"))
            }
            Err(e) => return Err(e.into()),
        };
        if code != 0 {
            if let Some(command) = missing_command(&lines).filter(|_| code == 127 || code == 1) {
                return Err(self.missing(
                    &command,
                    "build the app image with it (the `dev` target of docker/app/Dockerfile has PHP and artisan), or change `[test].migrate` and `[test].target`",
                ));
            }
            return Err(TestError::Migrate {
                command: self.settings.migrate.clone(),
                code,
                output: lines,
            });
        }

        self.server.disconnect(conn, &build).await?;
        self.server
            .execute(
                conn,
                &format!("renaming `{build}`"),
                &format!("ALTER DATABASE \"{build}\" RENAME TO \"{template}\""),
            )
            .await?;
        made.databases.retain(|d| *d != build);
        // Nobody may connect to a template: a connection would block every clone.
        self.server
            .execute(
                conn,
                &format!("closing `{template}`"),
                &format!("ALTER DATABASE \"{template}\" WITH ALLOW_CONNECTIONS false"),
            )
            .await?;
        let took = start.elapsed();
        self.reporter.done(
            "test db",
            &format!("template `{template}` built in {:.2}s", took.as_secs_f64()),
            true,
        );
        Ok(took)
    }

    /// Writes each worker's PHPUnit configuration (when the suite is split).
    fn worker_configs(
        &self,
        shares: &[Option<Vec<String>>],
        made: &mut Made,
    ) -> Result<Vec<Option<(PathBuf, String)>>, TestError> {
        let (Some(source), true) = (&self.settings.source, shares.iter().any(Option::is_some))
        else {
            return Ok(shares.iter().map(|_| None).collect());
        };
        let Some(config) = files::phpunit_config(source) else {
            return Ok(shares.iter().map(|_| None).collect());
        };
        let io_error = |path: &Path, source: io::Error| TestError::Read {
            path: path.to_path_buf(),
            help: "check that the folder is readable and writable".into(),
            source,
        };
        let text = std::fs::read_to_string(&config).map_err(|e| io_error(&config, e))?;
        // A fresh private folder (see `crate::scratch`); a killed run's is swept by the next.
        let run_dir =
            crate::scratch::run_dir("test").map_err(|e| io_error(&std::env::temp_dir(), e))?;
        let dir = run_dir.path().to_path_buf();
        made.temp_dir = Some(run_dir);
        let in_container = format!(
            "{}/{}",
            self.settings.target.trim_end_matches('/'),
            config
                .file_name()
                .expect("a config file has a name")
                .to_string_lossy()
        );
        shares
            .iter()
            .enumerate()
            .map(|(i, files)| {
                let Some(files) = files else { return Ok(None) };
                let path = dir.join(format!("phpunit-{}.xml", i + 1));
                std::fs::write(&path, files::worker_config(&text, files))
                    .map_err(|e| io_error(&path, e))?;
                Ok(Some((path, in_container.clone())))
            })
            .collect()
    }

    /// Runs PHPUnit in one worker's container; returns its exit code and report.
    async fn run_worker(
        &self,
        worker: &WorkerReport,
        config: Option<(PathBuf, String)>,
        opts: &TestOptions,
        several: bool,
    ) -> Result<(i64, Option<Summary>), TestError> {
        let name = self.container(&worker.number.to_string());
        let mut command = self.settings.command.clone();
        command.extend(
            ["--do-not-cache-result", "--log-junit", JUNIT]
                .iter()
                .map(|s| s.to_string()),
        );
        command.extend(opts.phpunit_args.iter().cloned());
        let oneoff = OneOff {
            name: name.clone(),
            command,
            tmpfs: self.tmpfs(),
            ..OneOff::default()
        };
        let svc = self.service(&worker.database, worker.redis_db, config);
        let number = worker.number;
        let mut partial = String::new();
        let result = lifecycle::run_oneoff(self.engine, self.stack, &svc, &oneoff, |chunk| {
            if !several {
                return self.out.output(None, chunk);
            }
            partial.push_str(chunk);
            while let Some(end) = partial.find('\n') {
                let line: String = partial.drain(..=end).collect();
                self.out.output(Some(number), &line);
            }
        })
        .await;
        if several && !partial.is_empty() {
            self.out.output(Some(number), &format!("{partial}\n"));
        }
        let code = match result {
            Ok((_, 127)) => {
                return Err(self.missing(&self.settings.command[0], PHPUNIT_HELP));
            }
            Ok((_, code)) => code,
            Err(e) if e.is_missing_executable() => {
                return Err(self.missing(&self.settings.command[0], PHPUNIT_HELP))
            }
            Err(e) => return Err(e.into()),
        };
        let summary = self
            .engine
            .download_file(&name, JUNIT)
            .await?
            .and_then(|xml| junit::parse(&String::from_utf8_lossy(&xml)));
        self.engine
            .remove_project_container(&name, &self.stack.project)
            .await?;
        Ok((code, summary))
    }

    /// The app service as a test container runs it: test env, its own
    /// databases, the source mounted read-only over the image's copy.
    fn service(
        &self,
        database: &str,
        redis_db: Option<u8>,
        config: Option<(PathBuf, String)>,
    ) -> Service {
        let s = self.settings;
        let mut svc = self.svc.clone();
        let plain = |value: String| EnvValue {
            value,
            secret: false,
        };
        svc.env
            .extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        svc.env
            .insert("DB_DATABASE".into(), plain(database.to_string()));
        if let Some(db) = redis_db {
            svc.env.insert("REDIS_DB".into(), plain(db.to_string()));
            svc.env
                .insert("REDIS_CACHE_DB".into(), plain(db.to_string()));
        }
        svc.working_dir = Some(s.target.clone());
        if let Some(source) = &s.source {
            svc.volumes.retain(|m| match m {
                Mount::Volume { target, .. }
                | Mount::Bind { target, .. }
                | Mount::Anonymous { target, .. } => target != &s.target,
            });
            svc.volumes.push(Mount::Bind {
                source: source.clone(),
                target: s.target.clone(),
                read_only: true,
            });
        }
        if let Some((file, target)) = config {
            svc.volumes.push(Mount::Bind {
                source: file,
                target,
                read_only: true,
            });
        }
        svc
    }

    /// The writable folders; over a mounted source only those that exist
    /// there (the engine cannot make a mount point in a read-only mount).
    fn tmpfs(&self) -> Vec<String> {
        let s = self.settings;
        s.writable
            .iter()
            .filter(|w| match &s.source {
                None => true,
                Some(source) => w
                    .strip_prefix(&s.target)
                    .map(|rel| source.join(rel.trim_start_matches('/')).is_dir())
                    .unwrap_or(true),
            })
            .cloned()
            .collect()
    }

    fn missing(&self, command: &str, help: &str) -> TestError {
        TestError::MissingCommand {
            service: self.settings.service.clone(),
            image: self.svc.image.to_string(),
            command: command.to_string(),
            help: help.to_string(),
        }
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

const PHPUNIT_HELP: &str = "build the app image with PHPUnit (the `dev` target of docker/app/Dockerfile has it), or set `[test].command`";

/// Flushes one logical Redis database, so tests start from nothing.
async fn flush_redis(service: &str, addr: &(String, u16), db: u8) -> Result<(), TestError> {
    let err = |reason: String| TestError::Redis {
        service: service.to_string(),
        db,
        reason,
    };
    let client = redis::Client::open(format!("redis://{}:{}/{db}", addr.0, addr.1))
        .map_err(|e| err(e.to_string()))?;
    let flush = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("FLUSHDB").query_async::<()>(&mut con).await
    };
    tokio::time::timeout(Duration::from_secs(5), flush)
        .await
        .map_err(|_| err("timed out".into()))?
        .map_err(|e| err(e.to_string()))
}

/// The command a shell or PHP said it could not find, from its output
/// (`sh: 1: php: not found`, `Could not open input file: artisan`).
fn missing_command(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        if let Some(file) = l.trim().strip_prefix("Could not open input file: ") {
            return Some(file.trim().to_string());
        }
        let head = l.trim().strip_suffix(": not found")?;
        head.rsplit(": ").next().map(|c| c.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_are_read_from_shell_and_php_output() {
        let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            missing_command(&lines("sh: 1: php: not found")),
            Some("php".into())
        );
        assert_eq!(
            missing_command(&lines("Could not open input file: artisan")),
            Some("artisan".into())
        );
        assert_eq!(
            missing_command(&lines(
                "/usr/local/bin/app-entrypoint: 10: exec: phpunit: not found"
            )),
            Some("phpunit".into())
        );
        assert_eq!(
            missing_command(&lines("SQLSTATE[42P07]: relation \"notes\" already exists")),
            None
        );
    }

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
