//! Migrations and seeds: `devenv migrate`/`seed` run a service's hook
//! commands in its container; SQL files in `seeds/` are applied with sqlx in
//! name order and recorded with their checksum in a ledger table, so an
//! unchanged file is never applied twice.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::{ConnectOptions, Connection, Row};

use crate::config::model::{Probe, Stack};
use crate::engine::{Engine, EngineError};
use crate::probe::Target;
use crate::report::Reporter;

/// The ledger table devenv keeps in the database it seeds.
pub const LEDGER: &str = "devenv_seeds";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SeedError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error("cannot read seed file `{}`", path.display())]
    #[diagnostic(code(devenv::seeds::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`seeds/` has SQL files but no service has a `postgres` readiness probe to seed")]
    #[diagnostic(code(devenv::seeds::no_database), help("give the database service `ready = {{ postgres = {{}} }}` (the postgres preset has it)"))]
    NoDatabase,

    #[error("service `{service}` is not running, so `seeds/` cannot be applied")]
    #[diagnostic(code(devenv::seeds::not_running), help("run `devenv up -d` first"))]
    NotRunning { service: String },

    #[error("cannot reach the database of service `{service}`: {message}")]
    #[diagnostic(
        code(devenv::seeds::connect),
        help("publish its port in `ports` if the host cannot reach the container")
    )]
    Connect { service: String, message: String },

    #[error("seed file `{file}` failed: {message}")]
    #[diagnostic(
        code(devenv::seeds::failed),
        help("fix the SQL; nothing of this file was applied (it runs in a transaction)")
    )]
    Failed { file: String, message: String },
}

/// One seed file's fate in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    Applied(String),
    /// Already applied with this checksum.
    Unchanged(String),
    /// Applied before with another checksum; re-applied only with `force`.
    Changed {
        file: String,
        reapplied: bool,
    },
}

/// `seeds/*.sql` beside the stack file, in name order.
pub fn seed_files(root: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(root.join("seeds")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql") && p.is_file())
        .collect();
    files.sort();
    files
}

pub fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to do with a file, given the checksum the ledger holds for it.
pub fn decide(file: &str, sum: &str, recorded: Option<&str>, force: bool) -> SeedOutcome {
    match recorded {
        None => SeedOutcome::Applied(file.to_string()),
        Some(r) if r == sum => SeedOutcome::Unchanged(file.to_string()),
        Some(_) => SeedOutcome::Changed {
            file: file.to_string(),
            reapplied: force,
        },
    }
}

/// Applies `seeds/*.sql` to the stack's PostgreSQL service.
pub async fn apply_sql_seeds(
    engine: &Engine,
    stack: &Stack,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<Vec<SeedOutcome>, SeedError> {
    let files = seed_files(&stack.root);
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let (service, port, user, password, database) = stack
        .services
        .values()
        .find_map(|s| match &s.ready {
            Some(Probe::Postgres {
                port,
                user,
                password,
                database,
            }) => Some((
                s.name.clone(),
                *port,
                user.clone(),
                password.clone(),
                database.clone(),
            )),
            _ => None,
        })
        .ok_or(SeedError::NoDatabase)?;
    let container = engine
        .list_containers(&stack.project)
        .await?
        .into_iter()
        .find(|c| c.service == service && !c.oneoff && c.state == "running")
        .ok_or_else(|| SeedError::NotRunning {
            service: service.clone(),
        })?;
    let status = engine
        .inspect_container(&container.id, &stack.project)
        .await?;
    let (host, port) = Target::from_status(&container.id, &status)
        .addr(port)
        .ok_or_else(|| SeedError::Connect {
            service: service.clone(),
            message: "no address reaches it".into(),
        })?;
    let connect_err = |e: sqlx::Error| SeedError::Connect {
        service: service.clone(),
        message: e.to_string(),
    };
    let mut conn = sqlx::postgres::PgConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&user)
        .password(&password)
        .database(&database)
        .connect()
        .await
        .map_err(connect_err)?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {LEDGER} (file text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .execute(&mut conn)
    .await
    .map_err(connect_err)?;

    let mut outcomes = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .expect("seed files have names")
            .to_string_lossy()
            .into_owned();
        let sql = std::fs::read_to_string(&path).map_err(|source| SeedError::Read {
            path: path.clone(),
            source,
        })?;
        let sum = checksum(&sql);
        let recorded: Option<String> =
            sqlx::query(&format!("SELECT checksum FROM {LEDGER} WHERE file = $1"))
                .bind(&name)
                .fetch_optional(&mut conn)
                .await
                .map_err(connect_err)?
                .map(|row| row.get(0));
        let outcome = decide(&name, &sum, recorded.as_deref(), force);
        let apply = matches!(
            outcome,
            SeedOutcome::Applied(_)
                | SeedOutcome::Changed {
                    reapplied: true,
                    ..
                }
        );
        if apply {
            reporter.task(&service, &format!("applying seeds/{name}"));
            let failed = |e: sqlx::Error| SeedError::Failed {
                file: name.clone(),
                message: e.to_string(),
            };
            let mut tx = conn.begin().await.map_err(failed)?;
            sqlx::raw_sql(&sql)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query(&format!(
                "INSERT INTO {LEDGER} (file, checksum) VALUES ($1, $2) ON CONFLICT (file) DO UPDATE SET checksum = $2, applied_at = now()"
            ))
            .bind(&name)
            .bind(&sum)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
        }
        match &outcome {
            // The `applying` spinner ends with the file's own line.
            SeedOutcome::Applied(f) => reporter.done(&service, &format!("applied seeds/{f}"), true),
            SeedOutcome::Changed { file, reapplied: true } => reporter.done(&service, &format!("seeds/{file} changed; re-applied"), true),
            SeedOutcome::Changed { file, reapplied: false } => reporter.notice(&format!(
                "seeds/{file} changed since it was applied; not re-applied (pass `--force` to `devenv seed`)"
            )),
            SeedOutcome::Unchanged(_) => {}
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_decides_what_runs() {
        assert_eq!(
            decide("a.sql", "s1", None, false),
            SeedOutcome::Applied("a.sql".into())
        );
        assert_eq!(
            decide("a.sql", "s1", Some("s1"), true),
            SeedOutcome::Unchanged("a.sql".into())
        );
        assert_eq!(
            decide("a.sql", "s2", Some("s1"), false),
            SeedOutcome::Changed {
                file: "a.sql".into(),
                reapplied: false
            }
        );
        assert_eq!(
            decide("a.sql", "s2", Some("s1"), true),
            SeedOutcome::Changed {
                file: "a.sql".into(),
                reapplied: true
            }
        );
    }

    #[test]
    fn seed_files_come_in_name_order_and_only_sql() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("seeds")).unwrap();
        for f in ["002_b.sql", "001_a.sql", "notes.txt", "010_c.sql"] {
            std::fs::write(dir.path().join("seeds").join(f), "select 1;").unwrap();
        }
        let names: Vec<String> = seed_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["001_a.sql", "002_b.sql", "010_c.sql"]);
    }
}
