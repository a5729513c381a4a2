//! `devenv db snapshot|restore|snapshots|drop-snapshot|import|export`: the
//! stack's PostgreSQL database saved and put back by cloning (see
//! `snapshot`), and dumps in and out (see `dump`). Each holds the project
//! lock and first repairs what a killed database command left (see
//! `dbsafety`).

use std::path::{Path, PathBuf};

use super::{Context, Failure, Outcome};
use crate::cli::DbCommand;
use crate::database::Database;
use crate::dbsafety::{self, ImportError, OnErrors};
use crate::dump;
use crate::engine::Engine;
use crate::interrupt;
use crate::lifecycle;
use crate::report::Reporter;
use crate::snapshot::{self, SnapshotError};

impl From<SnapshotError> for Failure {
    fn from(e: SnapshotError) -> Self {
        let code = match e {
            SnapshotError::BadName { .. } => 2,
            _ => 1,
        };
        Failure::new(e, code)
    }
}

impl From<dump::DumpError> for Failure {
    fn from(e: dump::DumpError) -> Self {
        Failure::new(e, 1)
    }
}

impl From<ImportError> for Failure {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Snapshot(e) => e.into(),
            ImportError::Dump(e) => e.into(),
            e @ ImportError::Interrupted { .. } => Failure::new(e, interrupt::exit_code()),
            e @ ImportError::Failed { .. } => Failure::new(e, 1),
        }
    }
}

impl From<crate::database::DatabaseError> for Failure {
    fn from(e: crate::database::DatabaseError) -> Self {
        Failure::new(e, 1)
    }
}

pub async fn run(ctx: &Context, command: DbCommand) -> Outcome {
    let stack = ctx.stack()?;
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    let reporter = ctx.reporter();
    let db = Database::locate(&engine, &stack).await?;
    // One database command at a time per project (and none beside `down`
    // or `test`), so the repair below never mistakes a live one for a killed one.
    let _lock = lifecycle::lock_for(&stack.project, "db", reporter.as_ref())?;
    dbsafety::recover(&engine, &db, reporter.as_ref()).await?;
    // Every database command sees the branch's own database (when on).
    if !matches!(command, DbCommand::Branch { .. }) {
        super::dbbranch::follow(&engine, &stack, &db, reporter.as_ref()).await?;
    }
    let reporter = reporter.as_ref();
    match command {
        DbCommand::Branch { action } => {
            super::dbbranch::run(&engine, &stack, &db, action, reporter).await
        }
        DbCommand::Branches => {
            super::dbbranch::list(&db, reporter).await?;
            Ok(0)
        }
        DbCommand::Snapshot { name } => take_snapshot(&db, name, reporter).await,
        DbCommand::Restore { name } => restore(&db, &name, reporter).await,
        DbCommand::Snapshots => list_snapshots(&db, reporter).await,
        DbCommand::DropSnapshot { name } => {
            snapshot::drop_snapshot(&db, &name).await?;
            reporter.done(&db.service, &format!("snapshot `{name}` dropped"), true);
            Ok(0)
        }
        DbCommand::Import { file, allow_errors } => {
            let on_errors = if allow_errors {
                OnErrors::Accept
            } else {
                OnErrors::Refuse
            };
            import(&engine, &db, &ctx.load.cwd.join(file), on_errors, reporter).await
        }
        DbCommand::Export { file, force } => {
            let file =
                ctx.load.cwd.join(file.unwrap_or_else(|| {
                    PathBuf::from(format!("{}-{}.dump", stack.project, db.name))
                }));
            export(&engine, &db, &file, force, reporter).await
        }
    }
}

/// `db snapshot [NAME]`: the database cloned as a snapshot (named by the
/// server's clock when no name is given).
async fn take_snapshot(db: &Database, name: Option<String>, reporter: &dyn Reporter) -> Outcome {
    let name = match name {
        Some(n) => n,
        None => time_name(db).await?,
    };
    let held = snapshot::snapshot(db, &name).await?;
    reporter.done(
        &db.service,
        &format!(
            "snapshot `{name}` of `{}` taken (new connections waited {} ms)",
            db.name,
            held.as_millis()
        ),
        true,
    );
    Ok(0)
}

/// `db restore NAME`: the database swapped for the snapshot's copy, then
/// the next copy prepared so the next restore is a rename too.
async fn restore(db: &Database, name: &str, reporter: &dyn Reporter) -> Outcome {
    let restored = snapshot::restore(db, name).await?;
    reporter.done(
        &db.service,
        &format!(
            "`{}` restored from snapshot `{name}` in {} ms{}",
            db.name,
            restored.swap.as_millis(),
            if restored.from_spare {
                ""
            } else {
                " (after cloning it: no copy was ready)"
            }
        ),
        true,
    );
    reporter.task(
        &db.service,
        &format!("preparing the next restore of `{name}`"),
    );
    snapshot::prepare_spare(db, name).await?;
    reporter.done(
        &db.service,
        &format!("next restore of `{name}` prepared"),
        true,
    );
    Ok(0)
}

/// `db snapshots`: a table of the snapshots, or how to take the first.
async fn list_snapshots(db: &Database, reporter: &dyn Reporter) -> Outcome {
    let all = snapshot::list(db).await?;
    if all.is_empty() {
        reporter.notice("no snapshots yet: `devenv db snapshot NAME` takes one");
    } else {
        let w = all.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
        crate::outln!("{:w$}  {:19}  {:>10}", "NAME", "TAKEN", "SIZE");
        for s in all {
            crate::outln!("{:w$}  {:19}  {:>10}", s.name, s.taken, human_size(s.bytes));
        }
    }
    Ok(0)
}

/// `db import FILE`: the dump loaded in place of the database, whose
/// previous content stays as a snapshot. A dump with errors fails (exit 1)
/// and changes nothing, unless `on_errors` accepts them (`--allow-errors`:
/// the user said those errors are expected, so it exits 0).
async fn import(
    engine: &Engine,
    db: &Database,
    file: &Path,
    on_errors: OnErrors,
    reporter: &dyn Reporter,
) -> Outcome {
    if !file.is_file() {
        return Err(dump::DumpError::Read {
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
            path: file.to_path_buf(),
        }
        .into());
    }
    // What the database held stays as a snapshot: an import never loses it.
    let before = format!("before-import-{}", time_name(db).await?);
    let imported = dbsafety::import(
        engine,
        db,
        file,
        &before,
        on_errors,
        reporter,
        interrupt::first(),
    )
    .await?;
    reporter.notice(&format!(
        "the previous content of `{}` is kept as snapshot `{before}` (`devenv db restore {before}` puts it back)",
        db.name
    ));
    let errors = imported.errors;
    if errors.is_empty() {
        reporter.done(&db.service, &format!("imported into `{}`", db.name), true);
    } else {
        // Only `--allow-errors` gets here: the errors were accepted.
        reporter.done(
            &db.service,
            &format!(
                "imported into `{}` without the {} statement(s) that failed, shown above (`--allow-errors`)",
                db.name,
                errors.len()
            ),
            true,
        );
    }
    // The kept snapshot's spare, so that restoring it is a rename.
    if let Err(e) = snapshot::prepare_spare(db, &before).await {
        reporter.notice(&format!("no quick restore of `{before}` prepared: {e}"));
    }
    Ok(0)
}

/// `db export [FILE]`: the database written to `file`; Ctrl-C stops it.
async fn export(
    engine: &Engine,
    db: &Database,
    file: &Path,
    force: bool,
    reporter: &dyn Reporter,
) -> Outcome {
    let bytes = tokio::select! {
        r = dump::save(engine, db, file, force) => r?,
        () = interrupt::first() => return Ok(interrupt::exit_code()),
    };
    reporter.done(
        &db.service,
        &format!(
            "`{}` written to {} ({})",
            db.name,
            file.display(),
            human_size(bytes as i64)
        ),
        true,
    );
    Ok(0)
}

/// A snapshot name from the server's clock: `20261130-184501-042`.
async fn time_name(db: &Database) -> Result<String, Failure> {
    let mut conn = snapshot::maintenance(db).await?;
    sqlx::query_scalar("SELECT to_char(clock_timestamp(), 'YYYYMMDD-HH24MISS-MS')")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| {
            SnapshotError::Sql {
                action: "reading the time".into(),
                message: e.to_string(),
            }
            .into()
        })
}

pub(super) fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}
