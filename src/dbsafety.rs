//! Crash safety of the database commands: `db import` into a database of
//! its own that takes the app's name only when it has loaded without errors
//! (or with errors the user accepted; otherwise it is dropped), and the
//! repair of whatever a killed command left, run by the next one.
//!
//! # How it works
//!
//! Every command that changes the app's database (`db snapshot`,
//! `db restore`, `db import`, the switch of a database per branch) does it
//! in steps that are each one statement or one transaction, so that at
//! every instant the app's name names a complete database that accepts
//! connections: the old one until the swap commits, the new one after.
//! What a killed command can leave is a database with a temporary name, a
//! session still running on the server, and its note in devenv's private
//! folder ([`crate::scratch::journal`]). [`recover`] ends the sessions, then
//! drops what was not finished (a half-loaded import, a half-taken
//! snapshot, a branch's half-made clone) and finishes what was (drops the
//! database a committed restore replaced). Every `db` command and `test`
//! run it first; `up`, `psql` and a branch switch when a note says a
//! command was killed.
//! Commands hold the project lock, so the repair never sees a live one.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, Row};

use crate::config::model::Stack;
use crate::database::{Database, DatabaseError, APPLICATION_NAME};
use crate::dump::{self, DumpError};
use crate::engine::Engine;
use crate::report::Reporter;
use crate::scratch;
use crate::snapshot::{
    self, alone, exec, ident, maintenance, transaction, SnapshotError, REPLACED_PREFIX,
    SNAPSHOT_PREFIX, TAKING_PREFIX,
};

/// Prefix of the database an import loads into before it takes the app's name.
pub const IMPORT_PREFIX: &str = "devenv_import_";

/// How long the repair waits for a killed command's sessions to end.
const SESSIONS_GONE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Snapshot(#[from] SnapshotError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Dump(#[from] DumpError),

    #[error("import interrupted")]
    #[diagnostic(
        code(devenv::db::import_interrupted),
        help("`{database}` was not changed: it holds what it held before the import")
    )]
    Interrupted { database: String },

    /// The client reported errors and `--allow-errors` was not given: what
    /// loaded was dropped, and the app's database was never touched.
    #[error("import failed with {count} error(s), shown above")]
    #[diagnostic(
        code(devenv::db::import_failed),
        help(
            "`{database}` is untouched: it holds what it held before the import. Fix the dump and import it again, or pass `--allow-errors` to take what loaded despite the errors"
        )
    )]
    Failed { database: String, count: usize },
}

/// Whether an import whose client reported errors still takes the app's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrors {
    /// Drop what loaded; the app's database stays as it was (the default:
    /// a failed load is usually a half-made schema).
    Refuse,
    /// Swap it in anyway, as `pg_restore` without `--exit-on-error` would
    /// leave it (a dump from another server often fails only on its roles).
    Accept,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The `ERROR:` lines of the client (statements it skipped).
    pub errors: Vec<String>,
}

/// Loads `file` into a new database and swaps it in for the app's, which
/// becomes snapshot `before`. Until the swap commits, the app's database is
/// untouched; `cancel` resolving (Ctrl-C) stops the load and drops what it
/// loaded, and so does a load with errors unless `on_errors` accepts them.
pub async fn import(
    engine: &Engine,
    db: &Database,
    file: &Path,
    before: &str,
    on_errors: OnErrors,
    reporter: &dyn Reporter,
    cancel: impl Future<Output = ()>,
) -> Result<Imported, ImportError> {
    snapshot::check_name(before)?;
    let _journal = snapshot::journal(db, &format!("db import {}", file.display()))?;
    let mut conn = maintenance(db).await?;
    let staging = format!("{IMPORT_PREFIX}{}", std::process::id());
    exec(
        &mut conn,
        "creating the database to import into",
        &format!("CREATE DATABASE {}", ident(&staging)),
    )
    .await?;
    reporter.task(&db.service, &format!("importing {}", file.display()));
    let loaded = tokio::select! {
        r = dump::load(engine, db, &staging, file, |line| reporter.output(&db.service, line)) => {
            r.map_err(ImportError::from)
        }
        () = cancel => Err(ImportError::Interrupted { database: db.name.clone() }),
    };
    let errors = match loaded {
        Ok(errors) => errors,
        Err(e) => {
            // FORCE ends the client still loading in the container, too.
            let _ = drop_database(&mut conn, &staging).await;
            if matches!(e, ImportError::Interrupted { .. }) {
                remove_import_files(engine, db).await;
            }
            return Err(e);
        }
    };
    if !errors.is_empty() && on_errors == OnErrors::Refuse {
        // Only devenv's own database, made above for this load. Should the
        // drop fail, the next command's repair drops it by its prefix.
        drop_database(&mut conn, &staging).await?;
        return Err(ImportError::Failed {
            database: db.name.clone(),
            count: errors.len(),
        });
    }
    swap_in(&mut conn, db, &staging, before).await?;
    Ok(Imported { errors })
}

/// Swaps the loaded database `staging` in for the app's, which becomes
/// snapshot `before`; drops `staging` if the swap fails.
async fn swap_in(
    conn: &mut PgConnection,
    db: &Database,
    staging: &str,
    before: &str,
) -> Result<(), ImportError> {
    let kept = format!("{SNAPSHOT_PREFIX}{before}");
    let taken: String = sqlx::query_scalar("SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS')")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| SnapshotError::Sql {
            action: "reading the time".into(),
            message: e.to_string(),
        })?;
    let label = snapshot::keep_comment(conn, db).await?;
    // One transaction: the old database becomes the snapshot (a rename,
    // no copy) as the imported one takes its name.
    let swapped = alone(db, conn, async |conn: &mut PgConnection| {
        let statements: Vec<String> = [
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&db.name),
                ident(&kept)
            ),
            format!(
                "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
                ident(&kept)
            ),
            format!(
                "COMMENT ON DATABASE {} IS 'devenv snapshot of {} taken {taken}'",
                ident(&kept),
                db.name.replace('\'', "''")
            ),
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(staging),
                ident(&db.name)
            ),
        ]
        .into_iter()
        .chain(label.clone())
        .collect();
        transaction(conn, "swapping the imported database in", &statements).await
    })
    .await;
    if let Err(e) = swapped {
        let _ = drop_database(conn, staging).await;
        return Err(e.into());
    }
    Ok(())
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), SnapshotError> {
    exec(
        conn,
        &format!("dropping `{name}`"),
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(name)),
    )
    .await
}

/// Removes imports' copies of dump files from the container's `/tmp`
/// (only those names); best effort, the container's `/tmp` is scratch.
async fn remove_import_files(engine: &Engine, db: &Database) {
    let script = format!("rm -f {}*", dump::IMPORT_FILE_PREFIX);
    let _ = engine
        .exec(
            &db.container,
            vec!["sh".into(), "-c".into(), script],
            vec![],
            None,
            |_| {},
        )
        .await;
}

/// Finishes or rolls back what an interrupted database command left, and
/// says what it did. Call it holding the project lock.
pub async fn recover(
    engine: &Engine,
    db: &Database,
    reporter: &dyn Reporter,
) -> Result<(), SnapshotError> {
    let noted = scratch::interrupted(&db.project);
    let mut conn = maintenance(db).await?;
    let mut repaired = Vec::new();
    repaired.extend(end_sessions(&mut conn).await?);
    let (app, names) = repair_databases(&mut conn, db, &mut repaired).await?;
    match app {
        Some(false) => {
            exec(
                &mut conn,
                "opening the database to connections",
                &format!(
                    "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
                    ident(&db.name)
                ),
            )
            .await?;
            repaired.push(format!(
                "opened `{}` to connections again: an interrupted command had closed it",
                db.name
            ));
        }
        Some(true) => {}
        None => reporter.notice(&missing_database(db, &names)),
    }
    if let Some(what) = &noted {
        if what.starts_with("db import") {
            remove_import_files(engine, db).await;
        }
        if repaired.is_empty() {
            repaired.push(format!(
                "checked after the interrupted `devenv {what}`: nothing to repair"
            ));
        }
    }
    for line in &repaired {
        reporter.done(&db.service, line, true);
    }
    scratch::clear_journal(&db.project);
    Ok(())
}

/// A failed statement of the repair, saying what it was doing.
fn sql(action: &'static str) -> impl Fn(sqlx::Error) -> SnapshotError {
    move |e: sqlx::Error| SnapshotError::Sql {
        action: action.into(),
        message: e.to_string(),
    }
}

/// Statements a killed devenv sent go on without it (a clone, a load):
/// ends them first, so that what is left holds still, and says so if any.
async fn end_sessions(conn: &mut PgConnection) -> Result<Option<String>, SnapshotError> {
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(APPLICATION_NAME)
    .fetch_one(&mut *conn)
    .await
    .map_err(sql("ending an interrupted command's sessions"))?;
    if ended == 0 {
        return Ok(None);
    }
    let deadline = Instant::now() + SESSIONS_GONE;
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(APPLICATION_NAME)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql("waiting for sessions to end"))?;
        if left == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Some(format!(
        "ended {ended} session(s) an interrupted devenv command left running"
    )))
}

/// Drops the half-made databases an interrupted command left and puts a
/// set-aside app database back (or drops the copy a restore replaced);
/// returns whether the app database exists and takes connections, and
/// the names of the databases found.
async fn repair_databases(
    conn: &mut PgConnection,
    db: &Database,
    repaired: &mut Vec<String>,
) -> Result<(Option<bool>, Vec<String>), SnapshotError> {
    let rows = sqlx::query(
        "SELECT datname, datallowconn FROM pg_database \
         WHERE datname = $1 OR datname LIKE 'devenv\\_%' ORDER BY datname",
    )
    .bind(&db.name)
    .fetch_all(&mut *conn)
    .await
    .map_err(sql("listing databases"))?;
    let allows = |name: &str| {
        rows.iter()
            .find(|r| r.get::<String, _>(0) == name)
            .map(|r| r.get::<bool, _>(1))
    };
    let mut app = allows(&db.name);
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for name in &names {
        if name.starts_with(IMPORT_PREFIX) {
            drop_database(conn, name).await?;
            repaired.push(format!(
                "rolled back an interrupted import: `{}` keeps the data it had",
                db.name
            ));
        } else if let Some(snap) = name.strip_prefix(TAKING_PREFIX) {
            drop_database(conn, name).await?;
            repaired.push(format!(
                "rolled back the interrupted snapshot `{snap}`: `devenv db snapshot {snap}` takes it again"
            ));
        } else if name == crate::branchdb::CLONING {
            // Not swapped in yet: a copy, never the only one of anything.
            drop_database(conn, name).await?;
            repaired.push(format!(
                "rolled back an interrupted switch of the branch's database: `{}` keeps the branch it had",
                db.name
            ));
        } else if name.starts_with(REPLACED_PREFIX) {
            if app.is_none() {
                exec(
                    conn,
                    "putting the database back",
                    &format!(
                        "ALTER DATABASE {} RENAME TO {}",
                        ident(name),
                        ident(&db.name)
                    ),
                )
                .await?;
                app = allows(name);
                repaired.push(format!(
                    "put `{}` back: an interrupted command had set it aside as `{name}`",
                    db.name
                ));
            } else {
                drop_database(conn, name).await?;
                repaired.push(format!(
                    "finished an interrupted restore: removed the copy of `{}` it replaced",
                    db.name
                ));
            }
        }
    }
    Ok((app, names))
}

/// What to say when the app database is gone: the snapshot that can take
/// its place, or the import that can.
fn missing_database(db: &Database, names: &[String]) -> String {
    let known: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_prefix(SNAPSHOT_PREFIX))
        .map(|n| format!("`{n}`"))
        .collect();
    format!(
        "the database `{}` does not exist; {}",
        db.name,
        if known.is_empty() {
            "there is no snapshot to put in its place: `devenv db import FILE` loads a dump"
                .to_string()
        } else {
            format!(
                "`devenv db restore NAME` puts a snapshot in its place ({})",
                known.join(", ")
            )
        }
    )
}

/// [`recover`], for commands that do not otherwise touch the database (`up`,
/// `psql`): only when a database command was noted as interrupted and the
/// database is running (otherwise the note stays for the next command). It
/// never fails the command that calls it: what it cannot do, it says, and
/// the note stays for the next command.
pub async fn recover_if_noted(engine: &Engine, stack: &Stack, reporter: &dyn Reporter) {
    let Some(what) = scratch::interrupted(&stack.project) else {
        return;
    };
    let db = match Database::locate(engine, stack).await {
        Ok(db) => db,
        Err(DatabaseError::NotRunning { .. } | DatabaseError::NoDatabase) => return,
        Err(e) => return cannot(reporter, &what, &e.to_string()),
    };
    let repaired = match crate::lifecycle::lock_for(&stack.project, "db repair", reporter) {
        Ok(_lock) => recover(engine, &db, reporter).await,
        Err(e) => return cannot(reporter, &what, &e.to_string()),
    };
    if let Err(e) = repaired {
        cannot(reporter, &what, &e.to_string());
    }
}

fn cannot(reporter: &dyn Reporter, what: &str, why: &str) {
    reporter.notice(&format!(
        "cannot yet repair what the interrupted `devenv {what}` left ({why}); the next database command tries again"
    ));
}
