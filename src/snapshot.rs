//! Database snapshots on the stack's PostgreSQL, made the way `devenv test`
//! makes its databases: a snapshot is a database cloned from the app's
//! (`CREATE DATABASE … TEMPLATE`), never a dump.
//!
//! # How it works
//!
//! `snapshot NAME` clones the app's database into `devenv_snaptmp_NAME`,
//! closes that to connections (so nothing changes it) and renames it to
//! `devenv_snap_NAME` in one transaction, then clones it once more into
//! `devenv_snapnext_NAME`, a spare. `restore NAME` then only renames: in one
//! transaction the app's database is set aside as `devenv_replaced_<pid>`
//! and the spare takes its name; the old one is dropped after the commit —
//! milliseconds, whatever the size, where reloading a dump takes seconds to
//! minutes. A new spare is cloned after the restore has been reported.
//!
//! # Crash safety
//!
//! The app's database is never dropped, never closed to connections and
//! never missing: a clone or a swap ends the sessions on it (PostgreSQL
//! needs it alone), and while the clone or the rename holds it, new
//! connections wait instead of being refused. Every step is one statement or
//! one transaction, so a killed devenv leaves either the old state or the
//! new one, plus at most a database with a temporary name that the next
//! command removes or finishes (see [`crate::dbsafety`]).

use std::time::{Duration, Instant};

use sqlx::{Executor, PgConnection, Row};

use crate::database::{Database, DatabaseError, APPLICATION_NAME};
use crate::scratch;

/// Prefix of snapshot databases.
pub const SNAPSHOT_PREFIX: &str = "devenv_snap_";
/// Prefix of each snapshot's spare copy, renamed into place by a restore.
pub const SPARE_PREFIX: &str = "devenv_snapnext_";
/// Prefix of a snapshot being cloned: it gets its name only once complete.
pub const TAKING_PREFIX: &str = "devenv_snaptmp_";
/// Prefix of the app's database set aside by a restore, until it is dropped.
pub const REPLACED_PREFIX: &str = "devenv_replaced_";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SnapshotError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Database(#[from] DatabaseError),

    #[error("`{name}` is not a snapshot name")]
    #[diagnostic(
        code(devenv::db::bad_name),
        help("use letters, digits, `_` and `-`, at most 40 of them")
    )]
    BadName { name: String },

    #[error("there is no snapshot `{name}`")]
    #[diagnostic(code(devenv::db::no_snapshot), help("{known}"))]
    NoSnapshot { name: String, known: String },

    #[error("a snapshot `{name}` exists already")]
    #[diagnostic(
        code(devenv::db::exists),
        help("pick another name, or drop it first: `devenv db drop-snapshot {name}`")
    )]
    Exists { name: String },

    #[error("{action} failed: {message}")]
    #[diagnostic(code(devenv::db::sql))]
    Sql { action: String, message: String },

    #[error("cannot record the database command in devenv's private folder")]
    #[diagnostic(
        code(devenv::db::journal),
        help("devenv notes a database command there while it runs, so that the next command can finish or undo it if this one is killed; the cause is below")
    )]
    Journal {
        #[source]
        source: std::io::Error,
    },
}

/// One snapshot as `devenv db snapshots` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub bytes: i64,
    /// When it was taken, as the server's clock said.
    pub taken: String,
    /// Whether a spare is ready, so that a restore is a rename.
    pub spare: bool,
}

/// A snapshot name as the user gives it, checked.
pub fn check_name(name: &str) -> Result<(), SnapshotError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::BadName {
            name: name.to_string(),
        })
    }
}

/// A PostgreSQL identifier, quoted.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A connection to the server's maintenance database, from which the app's
/// database can be cloned, renamed and dropped.
pub async fn maintenance(db: &Database) -> Result<PgConnection, SnapshotError> {
    Ok(db.connect_as("postgres", APPLICATION_NAME).await?)
}

pub(crate) async fn exec(
    conn: &mut PgConnection,
    action: &str,
    sql: &str,
) -> Result<(), SnapshotError> {
    conn.execute(sql)
        .await
        .map(|_| ())
        .map_err(|e| SnapshotError::Sql {
            action: action.to_string(),
            message: e.to_string(),
        })
}

pub(crate) async fn exists(conn: &mut PgConnection, database: &str) -> Result<bool, SnapshotError> {
    sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.is_some())
        .map_err(|e| SnapshotError::Sql {
            action: "looking up databases".into(),
            message: e.to_string(),
        })
}

/// `STRATEGY = FILE_COPY` (PostgreSQL 15+) copies the files at once instead
/// of writing every page to the WAL: much faster for a large database.
pub(crate) async fn clone_strategy(conn: &mut PgConnection) -> Result<&'static str, SnapshotError> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| SnapshotError::Sql {
            action: "reading the server version".into(),
            message: e.to_string(),
        })?;
    Ok(if version >= 150000 {
        " STRATEGY = FILE_COPY"
    } else {
        ""
    })
}

/// Runs `work` on `conn` while ending, again and again until it is done,
/// every other session on the app's database. `CREATE DATABASE … TEMPLATE`
/// and `ALTER DATABASE … RENAME` need a database nobody is connected to;
/// once they hold it, new connections wait for them instead of failing. The
/// app's database is never closed to connections for this: a closed
/// database would stay closed if devenv were killed.
pub(crate) async fn alone<T>(
    db: &Database,
    conn: &mut PgConnection,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, SnapshotError>,
) -> Result<T, SnapshotError> {
    let mut ender = maintenance(db).await?;
    let name = db.name.clone();
    let ending = async move {
        loop {
            // A failure here shows up as the work's own "being accessed" error.
            let _ = sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&name)
            .execute(&mut ender)
            .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        r = work(conn) => r,
        () = ending => unreachable!("the ending loop never ends"),
    }
}

/// The statement that gives the database about to take the app's name the
/// app's database's comment, if it has one: a restore or an import swaps
/// in a clone or a load, which no comment follows, and a database per
/// branch keeps the branch's name there (see `crate::branchdb`).
pub(crate) async fn keep_comment(
    conn: &mut PgConnection,
    db: &Database,
) -> Result<Option<String>, SnapshotError> {
    let comment: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(&db.name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| SnapshotError::Sql {
        action: "reading the database's comment".into(),
        message: e.to_string(),
    })?
    .flatten();
    Ok(comment.map(|c| {
        format!(
            "COMMENT ON DATABASE {} IS '{}'",
            ident(&db.name),
            c.replace('\'', "''")
        )
    }))
}

/// Runs `statements` as one transaction: all of them or none. A failed one
/// leaves the session's transaction aborted, so it is rolled back here.
pub(crate) async fn transaction(
    conn: &mut PgConnection,
    action: &str,
    statements: &[String],
) -> Result<(), SnapshotError> {
    let sql = format!("BEGIN; {}; COMMIT", statements.join("; "));
    let result = exec(conn, action, &sql).await;
    if result.is_err() {
        let _ = conn.execute("ROLLBACK").await;
    }
    result
}

/// Clones the app's database into snapshot `name` and its spare; returns
/// how long the app's database was held (new connections waited).
pub async fn snapshot(db: &Database, name: &str) -> Result<Duration, SnapshotError> {
    check_name(name)?;
    let _journal = journal(db, &format!("db snapshot {name}"))?;
    let mut conn = maintenance(db).await?;
    let (snap, spare, taking) = (
        format!("{SNAPSHOT_PREFIX}{name}"),
        format!("{SPARE_PREFIX}{name}"),
        format!("{TAKING_PREFIX}{name}"),
    );
    if exists(&mut conn, &snap).await? {
        return Err(SnapshotError::Exists {
            name: name.to_string(),
        });
    }
    let strategy = clone_strategy(&mut conn).await?;
    let held_for = alone(db, &mut conn, async |conn: &mut PgConnection| {
        let started = Instant::now();
        exec(
            conn,
            "cloning the database",
            &format!(
                "CREATE DATABASE {} TEMPLATE {}{strategy}",
                ident(&taking),
                ident(&db.name)
            ),
        )
        .await
        .map(|()| started.elapsed())
    })
    .await?;
    let taken: String = sqlx::query_scalar("SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS')")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| SnapshotError::Sql {
            action: "reading the time".into(),
            message: e.to_string(),
        })?;
    // The snapshot never takes connections, so nothing can change it; it
    // gets its name only together with that, complete.
    transaction(
        &mut conn,
        "protecting the snapshot",
        &[
            format!(
                "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
                ident(&taking)
            ),
            format!(
                "COMMENT ON DATABASE {} IS 'devenv snapshot of {} taken {taken}'",
                ident(&taking),
                db.name.replace('\'', "''")
            ),
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&taking),
                ident(&snap)
            ),
        ],
    )
    .await?;
    exec(
        &mut conn,
        "preparing the snapshot's spare",
        &format!(
            "CREATE DATABASE {} TEMPLATE {}{strategy}",
            ident(&spare),
            ident(&snap)
        ),
    )
    .await?;
    Ok(held_for)
}

/// Marks a database command as under way in devenv's private folder until
/// the mark is dropped, so that the next command knows to look for what a
/// killed one left (see [`crate::dbsafety::recover`]).
pub(crate) fn journal(db: &Database, what: &str) -> Result<scratch::Journal, SnapshotError> {
    scratch::journal(&db.project, what).map_err(|source| SnapshotError::Journal { source })
}

/// What a restore did.
#[derive(Debug, Clone, Copy)]
pub struct Restored {
    /// How long the app's database was held for the swap (new connections waited).
    pub swap: Duration,
    /// Whether a spare was ready (a rename) or the snapshot was cloned.
    pub from_spare: bool,
}

/// Replaces the app's database with snapshot `name`. The spare is used up;
/// call [`prepare_spare`] afterwards for the next restore.
pub async fn restore(db: &Database, name: &str) -> Result<Restored, SnapshotError> {
    check_name(name)?;
    let _journal = journal(db, &format!("db restore {name}"))?;
    let mut conn = maintenance(db).await?;
    let (snap, spare) = (
        format!("{SNAPSHOT_PREFIX}{name}"),
        format!("{SPARE_PREFIX}{name}"),
    );
    if !exists(&mut conn, &snap).await? {
        let known = list(db).await?;
        return Err(SnapshotError::NoSnapshot {
            name: name.to_string(),
            known: if known.is_empty() {
                "there are no snapshots yet: `devenv db snapshot NAME` takes one".into()
            } else {
                format!(
                    "snapshots: {}",
                    known
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        });
    }
    let from_spare = exists(&mut conn, &spare).await?;
    let strategy = clone_strategy(&mut conn).await?;
    if !from_spare {
        exec(
            &mut conn,
            "cloning the snapshot",
            &format!(
                "CREATE DATABASE {} TEMPLATE {}{strategy}",
                ident(&spare),
                ident(&snap)
            ),
        )
        .await?;
    }
    let old = format!("{REPLACED_PREFIX}{}", std::process::id());
    let label = keep_comment(&mut conn, db).await?;
    // Both renames in one transaction: the app's name always names a database.
    let swap = alone(db, &mut conn, async |conn: &mut PgConnection| {
        let started = Instant::now();
        let statements: Vec<String> = [
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&db.name),
                ident(&old)
            ),
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&spare),
                ident(&db.name)
            ),
        ]
        .into_iter()
        .chain(label.clone())
        .collect();
        transaction(conn, "renaming the snapshot's copy into place", &statements)
            .await
            .map(|()| started.elapsed())
    })
    .await?;
    // Only the database just set aside goes; it was the app's, replaced at
    // the user's request.
    exec(
        &mut conn,
        "dropping the replaced database",
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&old)),
    )
    .await?;
    Ok(Restored { swap, from_spare })
}

/// Clones snapshot `name` into its spare, unless one is ready.
pub async fn prepare_spare(db: &Database, name: &str) -> Result<(), SnapshotError> {
    let mut conn = maintenance(db).await?;
    let (snap, spare) = (
        format!("{SNAPSHOT_PREFIX}{name}"),
        format!("{SPARE_PREFIX}{name}"),
    );
    if exists(&mut conn, &spare).await? {
        return Ok(());
    }
    let strategy = clone_strategy(&mut conn).await?;
    exec(
        &mut conn,
        "preparing the snapshot's spare",
        &format!(
            "CREATE DATABASE {} TEMPLATE {}{strategy}",
            ident(&spare),
            ident(&snap)
        ),
    )
    .await
}

/// The snapshots on the server, by name.
pub async fn list(db: &Database) -> Result<Vec<SnapshotInfo>, SnapshotError> {
    let mut conn = maintenance(db).await?;
    let rows = sqlx::query(
        "SELECT substr(d.datname, length($1) + 1), pg_database_size(d.oid), \
                coalesce(shobj_description(d.oid, 'pg_database'), ''), \
                EXISTS (SELECT 1 FROM pg_database s WHERE s.datname = $2 || substr(d.datname, length($1) + 1)) \
         FROM pg_database d WHERE starts_with(d.datname, $1) ORDER BY 1",
    )
    .bind(SNAPSHOT_PREFIX)
    .bind(SPARE_PREFIX)
    .fetch_all(&mut conn)
    .await
    .map_err(|e| SnapshotError::Sql {
        action: "listing snapshots".into(),
        message: e.to_string(),
    })?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let comment: String = r.get(2);
            SnapshotInfo {
                name: r.get(0),
                bytes: r.get(1),
                taken: comment
                    .rsplit_once(" taken ")
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default(),
                spare: r.get(3),
            }
        })
        .collect())
}

/// Drops snapshot `name` and its spare: those two databases and nothing else.
pub async fn drop_snapshot(db: &Database, name: &str) -> Result<(), SnapshotError> {
    check_name(name)?;
    let mut conn = maintenance(db).await?;
    let snap = format!("{SNAPSHOT_PREFIX}{name}");
    if !exists(&mut conn, &snap).await? {
        return Err(SnapshotError::NoSnapshot {
            name: name.to_string(),
            known: "`devenv db snapshots` lists them".into(),
        });
    }
    for database in [format!("{SPARE_PREFIX}{name}"), snap] {
        exec(
            &mut conn,
            "dropping the snapshot",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&database)),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_plain_words() {
        for ok in ["before-refactor", "2026_11_30", "a"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "with space", "x\"y", "ü", &"a".repeat(41), "a;drop"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("app"), "\"app\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
