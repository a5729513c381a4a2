//! `devenv db snapshot|restore|snapshots|drop-snapshot|import|export`: the
//! stack's PostgreSQL database saved and put back by cloning (see
//! `snapshot`), and dumps in and out (see `dump`). Each holds the project
//! lock and first repairs what a killed database command left (see
//! `dbsafety`).

use std::path::PathBuf;

use super::{Context, Failure, Outcome};
use crate::cli::DbCommand;
use crate::database::Database;
use crate::dbsafety::{self, ImportError};
use crate::dump;
use crate::interrupt;
use crate::lifecycle;
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
    match command {
        DbCommand::Branch { action } => {
            return super::dbbranch::run(&engine, &stack, &db, action, reporter.as_ref()).await;
        }
        DbCommand::Branches => super::dbbranch::list(&db, reporter.as_ref()).await?,
        DbCommand::Snapshot { name } => {
            let name = match name {
                Some(n) => n,
                None => time_name(&db).await?,
            };
            let held = snapshot::snapshot(&db, &name).await?;
            reporter.done(
                &db.service,
                &format!(
                    "snapshot `{name}` of `{}` taken (new connections waited {} ms)",
                    db.name,
                    held.as_millis()
                ),
                true,
            );
        }
        DbCommand::Restore { name } => {
            let restored = snapshot::restore(&db, &name).await?;
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
            snapshot::prepare_spare(&db, &name).await?;
            reporter.done(
                &db.service,
                &format!("next restore of `{name}` prepared"),
                true,
            );
        }
        DbCommand::Snapshots => {
            let all = snapshot::list(&db).await?;
            if all.is_empty() {
                reporter.notice("no snapshots yet: `devenv db snapshot NAME` takes one");
            } else {
                let w = all.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
                crate::outln!("{:w$}  {:19}  {:>10}", "NAME", "TAKEN", "SIZE");
                for s in all {
                    crate::outln!("{:w$}  {:19}  {:>10}", s.name, s.taken, human_size(s.bytes));
                }
            }
        }
        DbCommand::DropSnapshot { name } => {
            snapshot::drop_snapshot(&db, &name).await?;
            reporter.done(&db.service, &format!("snapshot `{name}` dropped"), true);
        }
        DbCommand::Import { file } => {
            let file = ctx.load.cwd.join(file);
            if !file.is_file() {
                return Err(dump::DumpError::Read {
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                    path: file,
                }
                .into());
            }
            // What the database held stays as a snapshot: an import never loses it.
            let before = format!("before-import-{}", time_name(&db).await?);
            let imported = dbsafety::import(
                &engine,
                &db,
                &file,
                &before,
                reporter.as_ref(),
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
                reporter.done(
                    &db.service,
                    &format!(
                        "imported into `{}` with {} error(s), shown above",
                        db.name,
                        errors.len()
                    ),
                    false,
                );
            }
            // The kept snapshot's spare, so that restoring it is a rename.
            if let Err(e) = snapshot::prepare_spare(&db, &before).await {
                reporter.notice(&format!("no quick restore of `{before}` prepared: {e}"));
            }
            if !errors.is_empty() {
                return Ok(1);
            }
        }
        DbCommand::Export { file, force } => {
            let file =
                ctx.load.cwd.join(file.unwrap_or_else(|| {
                    PathBuf::from(format!("{}-{}.dump", stack.project, db.name))
                }));
            let bytes = tokio::select! {
                r = dump::save(&engine, &db, &file, force) => r?,
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
        }
    }
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
