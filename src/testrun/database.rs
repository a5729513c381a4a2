//! The test databases: the PostgreSQL server as reached from the host, the
//! template built from the migrations, each worker's clone (or renamed
//! spare) and Redis database, and what killed runs left behind. The naming
//! scheme below is what tells devenv's databases from everybody else's.

use std::time::{Duration, Instant};

use super::workers::missing_command;
use super::{Made, Run, TestError, WorkerReport, REDIS_TOP_DB};
use crate::config::model::{Probe, Stack, TestSettings};
use crate::engine::{Engine, OneOff};
use crate::lifecycle::{self, ServiceOutcome};
use crate::probe::{self, Target};

pub(super) const TEMPLATE_PREFIX: &str = "devenv_tpl_";
const BUILD_PREFIX: &str = "devenv_tplbuild_";
const CLONE_PREFIX: &str = "devenv_test_";
const SPARE_PREFIX: &str = "devenv_spare_";

/// The PostgreSQL server the test databases live on, as reached from the host.
pub(super) struct Server {
    service: String,
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl Server {
    pub(super) async fn connect(&self) -> Result<sqlx::PgConnection, TestError> {
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

    pub(super) async fn execute(
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
    pub(super) async fn ours(
        &self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<String>, TestError> {
        sqlx::query_scalar::<_, String>(
            "SELECT datname FROM pg_database WHERE datname LIKE 'devenv\\_%' ORDER BY datname",
        )
        .fetch_all(conn)
        .await
        .map_err(|e| self.error("listing databases", e.to_string()))
    }

    /// Drops a database, closing whatever connections it still has.
    pub(super) async fn drop(
        &self,
        conn: &mut sqlx::PgConnection,
        name: &str,
    ) -> Result<(), TestError> {
        self.execute(
            conn,
            &format!("dropping `{name}`"),
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await
    }

    /// `CREATE DATABASE … TEMPLATE` and `RENAME` need a database nobody is connected to.
    pub(super) async fn disconnect(
        &self,
        conn: &mut sqlx::PgConnection,
        name: &str,
    ) -> Result<(), TestError> {
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

/// The database service's address from the host, with its probe's credentials.
pub(super) async fn server(
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

pub(super) async fn redis_addr(
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

impl Run<'_> {
    /// The database worker `number` of the next run starts from.
    fn spare(&self, number: usize) -> String {
        format!("{SPARE_PREFIX}{}_{number}", self.hash)
    }

    /// The template of this migration set: kept when it is there (unless
    /// `fresh`), built otherwise; returns how long building took.
    pub(super) async fn ensure_template(
        &self,
        conn: &mut sqlx::PgConnection,
        template: &str,
        fresh: bool,
        made: &mut Made,
    ) -> Result<Option<Duration>, TestError> {
        let exists = self.server.ours(conn).await?.iter().any(|d| d == template);
        let built_in = if exists && !fresh {
            self.reporter.done(
                "test db",
                &format!("template `{template}` is up to date with the migrations"),
                true,
            );
            None
        } else {
            if exists {
                self.server.drop(conn, template).await?;
            }
            Some(self.build_template(conn, template, made).await?)
        };

        if built_in.is_some() {
            // Spares of an earlier template by the same name (`--fresh`) are not to be trusted.
            for db in self.server.ours(conn).await? {
                if db.starts_with(SPARE_PREFIX) {
                    self.server.drop(conn, &db).await?;
                }
            }
        }
        Ok(built_in)
    }

    /// Each worker's database (a spare renamed, or a fresh clone of the
    /// template) and its flushed Redis database.
    pub(super) async fn worker_databases(
        &self,
        conn: &mut sqlx::PgConnection,
        template: &str,
        shares: &[Option<Vec<String>>],
        redis: Option<&(String, (String, u16))>,
        made: &mut Made,
    ) -> Result<Vec<WorkerReport>, TestError> {
        let ours = self.server.ours(conn).await?;
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
                        conn,
                        &format!("renaming `{spare}`"),
                        &format!("ALTER DATABASE \"{spare}\" RENAME TO \"{database}\""),
                    )
                    .await?;
            } else {
                self.server.disconnect(conn, template).await?;
                self.server
                    .execute(
                        conn,
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
                junit: None,
            });
        }
        Ok(workers)
    }

    /// Clones the next run's `count` databases from the template.
    pub(super) async fn prepare_spares(
        &self,
        conn: &mut sqlx::PgConnection,
        template: &str,
        count: usize,
    ) -> Result<(), TestError> {
        for number in 1..=count {
            let spare = self.spare(number);
            self.server
                .execute(
                    conn,
                    &format!("preparing `{spare}`"),
                    &format!("CREATE DATABASE \"{spare}\" TEMPLATE \"{template}\""),
                )
                .await?;
        }
        Ok(())
    }

    /// Drops what killed runs left (clones, half-built templates, their
    /// containers) and templates of other migration sets.
    pub(super) async fn remove_stale(
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
}

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
