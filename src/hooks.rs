//! Migrations and seeds: `devenv migrate`/`seed` run a service's hook
//! commands in its container; SQL files in `seeds/` are applied with sqlx in
//! name order and recorded with their checksum in a ledger table, so an
//! unchanged file is never applied twice.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use crate::config::model::{Probe, Service, Stack};
use crate::database::{Database, DatabaseError};
use crate::engine::{Engine, EngineError};
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

    #[error(transparent)]
    #[diagnostic(transparent)]
    Database(#[from] DatabaseError),

    #[error("seed file `{file}` failed: {message}")]
    #[diagnostic(
        code(devenv::seeds::migrations_missing),
        help("the seeds need the app's tables, so migrations must run first: `devenv migrate` (or `devenv up`), then `devenv seed`")
    )]
    MissingTable { file: String, message: String },

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

/// Whether `up` may apply `seeds/*.sql` after bringing up `selected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedsReady {
    /// The database and every service that migrates it came up in this run.
    Yes,
    /// The named service migrates the database but was not brought up, so
    /// the tables the seeds fill may not exist yet.
    MigrationsNotRun(String),
    /// No seed files, or their database is not part of this run.
    Nothing,
}

/// Seeds fill tables the app's migrations make, so they go in only when the
/// services whose hooks migrate (an `after_up` or `migrate` hook) were part
/// of the same `up` as the database.
pub fn seeds_ready(stack: &Stack, selected: &[String]) -> SeedsReady {
    if seed_files(&stack.root).is_empty() {
        return SeedsReady::Nothing;
    }
    let database = stack
        .services
        .values()
        .find(|s| matches!(s.ready, Some(Probe::Postgres { .. })));
    if !database.is_some_and(|db| selected.contains(&db.name)) {
        return SeedsReady::Nothing;
    }
    let migrating = stack
        .services
        .values()
        .filter(|s| !s.hooks.after_up.is_empty() || !s.hooks.migrate.is_empty())
        .find(|s| !selected.contains(&s.name));
    match migrating {
        Some(s) => SeedsReady::MigrationsNotRun(s.name.clone()),
        None => SeedsReady::Yes,
    }
}

/// PostgreSQL's `undefined_table`: the seed ran before the migration that makes its table.
const UNDEFINED_TABLE: &str = "42P01";

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
    let db = Database::locate(engine, stack).await?;
    let service = db.service.clone();
    let mut conn = db.connect(&db.name).await?;
    let connect_err = |e: sqlx::Error| SeedError::from(db.connect_error(e));
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
            let failed = |e: sqlx::Error| {
                let missing_table = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == UNDEFINED_TABLE);
                let (file, message) = (name.clone(), e.to_string());
                if missing_table {
                    SeedError::MissingTable { file, message }
                } else {
                    SeedError::Failed { file, message }
                }
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

/// `sh -c command` in the container, streaming lines to the reporter.
pub async fn exec_shell(
    engine: &Engine,
    svc: &Service,
    id: &str,
    command: &str,
    reporter: &dyn Reporter,
) -> Result<(i64, Vec<String>), EngineError> {
    let mut lines = Vec::new();
    let mut partial = String::new();
    let code = engine
        .exec(
            id,
            vec!["sh".into(), "-c".into(), command.to_string()],
            Vec::new(),
            None,
            |chunk| {
                partial.push_str(chunk);
                while let Some(pos) = partial.find('\n') {
                    let line: String = partial.drain(..=pos).collect();
                    // A hook that echoes a secret must not print it.
                    let line = svc.mask(line.trim_end());
                    reporter.output(&svc.name, &line);
                    lines.push(line);
                }
            },
        )
        .await?;
    if !partial.trim().is_empty() {
        let line = svc.mask(partial.trim_end());
        reporter.output(&svc.name, &line);
        lines.push(line);
    }
    Ok((code, lines))
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

    /// A stack with a database, an app that migrates it, and a seed file.
    fn seeded_stack() -> (tempfile::TempDir, Stack) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("seeds")).unwrap();
        std::fs::write(dir.path().join("seeds/001.sql"), "select 1;").unwrap();
        std::fs::write(
            dir.path().join("dev.toml"),
            "[services.db]\nuse = \"postgres\"\n[services.cache]\nuse = \"redis\"\n\
             [services.app]\nimage = \"app\"\ndepends_on = { db = \"ready\" }\n\
             hooks = { after_up = [\"php artisan migrate --force\"] }\n",
        )
        .unwrap();
        let stack = crate::config::load(&crate::config::LoadOptions {
            cwd: dir.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        (dir, stack)
    }

    #[test]
    fn r16_seeds_wait_for_the_services_that_migrate() {
        let (_dir, stack) = seeded_stack();
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            seeds_ready(&stack, &names(&["db", "cache", "app"])),
            SeedsReady::Yes
        );
        // `devenv test` and `up db`: the app's migrations did not run.
        assert_eq!(
            seeds_ready(&stack, &names(&["db", "cache"])),
            SeedsReady::MigrationsNotRun("app".into())
        );
        assert_eq!(seeds_ready(&stack, &names(&["cache"])), SeedsReady::Nothing);
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
