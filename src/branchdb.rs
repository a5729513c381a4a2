//! A database per git branch (`devenv db branch on`): when the checkout's
//! branch changes, the app's database is kept under the old branch's name
//! and the new branch's copy takes its place, by renames.
//!
//! # How it works
//!
//! Which branch the app's database belongs to is written on the server, as
//! the database's comment (`devenv branch: NAME`); a comment follows its
//! database through renames, so the label and the content never part.
//! Turning the feature on labels the app's database with the current
//! branch. On a branch change, in one transaction (the app's name always
//! names a database): the app's database is renamed to
//! `devenv_branch_<old>`, and `devenv_branch_<new>` is renamed to the app's
//! name. A branch seen for the first time first gets a clone (`CREATE
//! DATABASE … TEMPLATE`) of the branch it was created from (git's reflog
//! says which; else the database of the branch just left) under a
//! temporary name, which the swap renames into place; the caller then runs
//! the migrate hooks. Until they have run, the label says the migrations
//! are due ([`migrated`] clears it), so that a switch killed between the
//! swap and the end of the migrations has them run by the next one.
//!
//! # Crash safety
//!
//! A switch runs under the project lock (the one `db`, `test` and `down`
//! take) and notes itself in the private folder's journal while it runs, as
//! the other database commands do. The clone is made under a temporary name
//! and the swap is one transaction, so a killed switch leaves the old state
//! or the new one, plus at most the temporary clone, which the next command
//! drops (see [`crate::dbsafety::recover`]) before it switches again.
//!
//! Nothing is dropped without the caller saying so: `prune` drops only the
//! copies of branches git no longer has, and returns their names.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::{PgConnection, Row};

use crate::database::Database;
use crate::snapshot::{self, alone, clone_strategy, exec, exists, ident, SnapshotError};

/// Prefix of the databases kept for branches other than the current one.
pub const BRANCH_PREFIX: &str = "devenv_branch_";
/// A new branch's clone before it is swapped in.
pub const CLONING: &str = "devenv_branchtmp";
/// What a branch's database comment starts with.
const LABEL: &str = "devenv branch: ";
/// Ends the label of a new branch's database until its migrate hooks have
/// run: a switch killed before they finished leaves it, so the next one
/// runs them. Git allows no space in a branch name: it cannot be one's end.
const MIGRATIONS_DUE: &str = " (migrations due)";

/// What a database's label says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Label {
    branch: String,
    migrations_due: bool,
}

fn parse_label(comment: &str) -> Option<Label> {
    let rest = comment.strip_prefix(LABEL)?;
    Some(match rest.strip_suffix(MIGRATIONS_DUE) {
        Some(branch) => Label {
            branch: branch.to_string(),
            migrations_due: true,
        },
        None => Label {
            branch: rest.to_string(),
            migrations_due: false,
        },
    })
}

/// The git branch checked out in the repository holding `dir`; `None`
/// outside git or on a detached HEAD (the database then stays as it is).
pub fn git_branch(dir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git_dir(dir)?.join("HEAD")).ok()?;
    head.trim()
        .strip_prefix("ref: refs/heads/")
        .map(str::to_string)
}

/// The `.git` folder of the repository holding `dir` (a worktree's own).
pub fn git_dir(dir: &Path) -> Option<PathBuf> {
    let mut here = Some(dir);
    while let Some(d) = here {
        let dot = d.join(".git");
        if dot.is_dir() {
            return Some(dot);
        }
        if let Ok(text) = std::fs::read_to_string(&dot) {
            let linked = text.trim().strip_prefix("gitdir:")?.trim().to_string();
            return Some(d.join(linked));
        }
        here = d.parent();
    }
    None
}

/// The branch `branch` was created from, as git's reflog recorded it
/// (`branch: Created from main`); `None` when it says `HEAD` or nothing.
pub fn created_from(git_dir: &Path, branch: &str) -> Option<String> {
    let log = std::fs::read_to_string(git_dir.join("logs/refs/heads").join(branch)).ok()?;
    let first = log.lines().next()?;
    let message = first.split_once('\t')?.1;
    let from = message.strip_prefix("branch: Created from ")?.trim();
    let from = from.strip_prefix("refs/heads/").unwrap_or(from);
    (from != "HEAD").then(|| from.to_string())
}

/// The repository's local branches (loose and packed refs); `None` when
/// they cannot be read, so that nothing is pruned on a guess.
pub fn git_branches(git_dir: &Path) -> Option<Vec<String>> {
    // A worktree's refs live in the main repository.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.to_path_buf());
    let heads = common.join("refs/heads");
    let mut out = Vec::new();
    let mut todo = vec![heads.clone()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(rel) = path.strip_prefix(&heads) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    if let Ok(packed) = std::fs::read_to_string(common.join("packed-refs")) {
        out.extend(packed.lines().filter_map(|l| {
            l.split_once(' ')?
                .1
                .strip_prefix("refs/heads/")
                .map(str::to_string)
        }));
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// The database a branch's copy is kept in while another branch is checked
/// out: its name made safe, with a hash when that changed or shortened it.
pub fn database_for(branch: &str) -> String {
    let safe: String = branch
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if safe == branch && safe.len() <= 40 {
        return format!("{BRANCH_PREFIX}{safe}");
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(branch.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let short: String = safe.chars().take(32).collect();
    format!("{BRANCH_PREFIX}{short}_{hash}")
}

/// The branch the app's database belongs to; `None` when the feature is off.
pub async fn current(db: &Database) -> Result<Option<String>, SnapshotError> {
    let mut conn = snapshot::maintenance(db).await?;
    Ok(label_of(&mut conn, &db.name).await?.map(|l| l.branch))
}

async fn label_of(conn: &mut PgConnection, database: &str) -> Result<Option<Label>, SnapshotError> {
    let comment: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| sql("reading the database's branch", e))?
    .flatten();
    Ok(comment.as_deref().and_then(parse_label))
}

fn sql(action: &str, e: sqlx::Error) -> SnapshotError {
    SnapshotError::Sql {
        action: action.to_string(),
        message: e.to_string(),
    }
}

fn label_sql(database: &str, branch: &str, migrations_due: bool) -> String {
    format!(
        "COMMENT ON DATABASE {} IS '{LABEL}{}{}'",
        ident(database),
        branch.replace('\'', "''"),
        if migrations_due { MIGRATIONS_DUE } else { "" }
    )
}

/// Turns the feature on: the app's database belongs to `branch` from now.
pub async fn turn_on(db: &Database, branch: &str) -> Result<(), SnapshotError> {
    let mut conn = snapshot::maintenance(db).await?;
    exec(
        &mut conn,
        "labelling the database",
        &label_sql(&db.name, branch, false),
    )
    .await
}

/// Records that the migrate hooks of `branch` (the app's database's now)
/// have run: the mark a new branch's database carries until then goes.
pub async fn migrated(db: &Database, branch: &str) -> Result<(), SnapshotError> {
    let mut conn = snapshot::maintenance(db).await?;
    exec(
        &mut conn,
        "labelling the database as migrated",
        &label_sql(&db.name, branch, false),
    )
    .await
}

/// Turns the feature off: the app's database keeps its content and loses
/// its label; the other branches' copies stay (listed, pruned on request).
pub async fn turn_off(db: &Database) -> Result<(), SnapshotError> {
    let mut conn = snapshot::maintenance(db).await?;
    exec(
        &mut conn,
        "unlabelling the database",
        &format!("COMMENT ON DATABASE {} IS NULL", ident(&db.name)),
    )
    .await
}

/// What [`switch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switched {
    /// The feature is off, or the database already is the branch's.
    Nothing,
    /// The app's database was `from`'s and now is the branch's own copy.
    Swapped { from: String, took: Duration },
    /// A first visit: cloned from `source`'s database; migrations are due.
    Created {
        from: String,
        source: String,
        took: Duration,
    },
    /// The database is the branch's already, but its migrations are due:
    /// a switch was killed before they finished.
    MigrationsDue,
}

/// Makes the app's database `branch`'s (see the module docs); `parent` is
/// the branch a new one was created from, if git knows.
pub async fn switch(
    db: &Database,
    branch: &str,
    parent: Option<&str>,
) -> Result<Switched, SnapshotError> {
    let mut conn = snapshot::maintenance(db).await?;
    let Some(old) = label_of(&mut conn, &db.name).await? else {
        return Ok(Switched::Nothing);
    };
    if old.branch == branch {
        return Ok(if old.migrations_due {
            Switched::MigrationsDue
        } else {
            Switched::Nothing
        });
    }
    let old = old.branch;
    // Noted in the private folder until it returns: a killed switch is
    // looked after by the next command (see `crate::dbsafety::recover`).
    let _journal = snapshot::journal(db, "db branch")?;
    let started = Instant::now();
    let (kept, wanted) = (database_for(&old), database_for(branch));
    if exists(&mut conn, &kept).await? {
        return Err(SnapshotError::Sql {
            action: format!("keeping branch `{old}`'s database"),
            message: format!("`{kept}` exists already; `devenv db branches` lists the copies"),
        });
    }
    // A kept copy keeps its own mark (migrations due, or not); a first
    // visit's clone has its migrations due.
    let (incoming, source, migrations_due) = if exists(&mut conn, &wanted).await? {
        let due = label_of(&mut conn, &wanted)
            .await?
            .is_some_and(|l| l.migrations_due);
        (wanted, None, due)
    } else {
        let (clone, source) = clone_for_new_branch(db, &mut conn, &old, parent).await?;
        (clone, Some(source), true)
    };
    swap_in(db, &mut conn, &kept, &incoming, branch, migrations_due).await?;
    let took = started.elapsed();
    Ok(match source {
        Some(source) => Switched::Created {
            from: old,
            source,
            took,
        },
        None => Switched::Swapped { from: old, took },
    })
}

/// A first visit's database: a clone, under [`CLONING`], of the parent
/// branch's kept copy, else of the database of the branch just left
/// (`old`, the app's database). Returns the clone's name and the branch it
/// was cloned from.
async fn clone_for_new_branch(
    db: &Database,
    conn: &mut PgConnection,
    old: &str,
    parent: Option<&str>,
) -> Result<(String, String), SnapshotError> {
    let parent_db = parent.filter(|p| *p != old).map(database_for);
    let parent_kept = match &parent_db {
        Some(d) => exists(conn, d).await?,
        None => false,
    };
    let (template, source) = match parent_db.filter(|_| parent_kept).zip(parent) {
        Some((d, parent)) => (d, parent.to_string()),
        None => (db.name.clone(), old.to_string()),
    };
    // One name: callers hold the project lock, and a clone a killed
    // switch left under it is dropped here (if the repair has not).
    let tmp = CLONING.to_string();
    exec(
        conn,
        "dropping an unfinished clone",
        &format!("DROP DATABASE IF EXISTS {}", ident(&tmp)),
    )
    .await?;
    let strategy = clone_strategy(conn).await?;
    let create = format!(
        "CREATE DATABASE {} TEMPLATE {}{strategy}",
        ident(&tmp),
        ident(&template)
    );
    if template == db.name {
        alone(db, conn, async |c: &mut PgConnection| {
            exec(c, "cloning the database", &create).await
        })
        .await?;
    } else {
        exec(conn, "cloning the branch's database", &create).await?;
    }
    Ok((tmp, source))
}

/// The swap, in one transaction: the app's database is kept as `kept`,
/// `incoming` takes the app's name, labelled with `branch`.
async fn swap_in(
    db: &Database,
    conn: &mut PgConnection,
    kept: &str,
    incoming: &str,
    branch: &str,
    migrations_due: bool,
) -> Result<(), SnapshotError> {
    alone(db, conn, async |c: &mut PgConnection| {
        snapshot::transaction(
            c,
            "swapping the branch's database in",
            &[
                format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    ident(&db.name),
                    ident(kept)
                ),
                format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    ident(incoming),
                    ident(&db.name)
                ),
                label_sql(&db.name, branch, migrations_due),
            ],
        )
        .await
    })
    .await
}

/// One branch's database, for `devenv db branches`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchDb {
    pub branch: String,
    pub database: String,
    pub bytes: i64,
    /// The app's database now.
    pub current: bool,
}

/// Every branch's database on the server: the app's first.
pub async fn list(db: &Database) -> Result<Vec<BranchDb>, SnapshotError> {
    let mut conn = snapshot::maintenance(db).await?;
    let rows = sqlx::query(
        "SELECT datname::text AS datname, shobj_description(oid, 'pg_database') AS label, pg_database_size(oid) AS bytes \
         FROM pg_database WHERE datname = $1 OR starts_with(datname, $2) ORDER BY datname",
    )
    .bind(&db.name)
    .bind(BRANCH_PREFIX)
    .fetch_all(&mut conn)
    .await
    .map_err(|e| sql("listing the branches' databases", e))?;
    let mut out: Vec<BranchDb> = rows
        .iter()
        .filter_map(|r| {
            let label: Option<String> = r.get("label");
            let database: String = r.get("datname");
            Some(BranchDb {
                branch: parse_label(&label?)?.branch,
                current: database == db.name,
                database,
                bytes: r.get("bytes"),
            })
        })
        .collect();
    out.sort_by_key(|b| !b.current);
    Ok(out)
}

/// Drops the kept copies of branches not in `branches` (git's); never the
/// app's database. Returns the branches whose copy went.
pub async fn prune(db: &Database, branches: &[String]) -> Result<Vec<BranchDb>, SnapshotError> {
    let gone: Vec<BranchDb> = list(db)
        .await?
        .into_iter()
        .filter(|b| !b.current && !branches.contains(&b.branch))
        .collect();
    let mut conn = snapshot::maintenance(db).await?;
    for b in &gone {
        exec(
            &mut conn,
            "dropping a gone branch's database",
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(&b.database)
            ),
        )
        .await?;
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_databases_have_safe_names_and_odd_ones_a_hash() {
        assert_eq!(database_for("main"), "devenv_branch_main");
        assert_eq!(database_for("fix-42"), "devenv_branch_fix-42");
        let odd = database_for("feature/Login");
        assert!(odd.starts_with("devenv_branch_feature_login_"), "{odd}");
        assert_ne!(odd, database_for("feature/login"));
        assert!(database_for(&"x".repeat(200)).len() <= 63);
    }

    #[test]
    fn labels_carry_the_branch_and_whether_its_migrations_are_due() {
        let plain = label_sql("app", "feature/x", false);
        assert!(plain.ends_with("IS 'devenv branch: feature/x'"), "{plain}");
        let due = label_sql("app", "it's", true);
        assert!(
            due.ends_with("IS 'devenv branch: it''s (migrations due)'"),
            "{due}"
        );
        let label = |branch: &str, migrations_due| {
            Some(Label {
                branch: branch.into(),
                migrations_due,
            })
        };
        assert_eq!(parse_label("devenv branch: main"), label("main", false));
        assert_eq!(
            parse_label("devenv branch: main (migrations due)"),
            label("main", true)
        );
        assert_eq!(parse_label("devenv snapshot of app taken 2026"), None);
    }

    #[test]
    fn git_heads_worktrees_and_the_reflog_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads/feature")).unwrap();
        std::fs::create_dir_all(git.join("logs/refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/b\n").unwrap();
        std::fs::write(git.join("refs/heads/b"), "x").unwrap();
        std::fs::write(git.join("refs/heads/feature/x"), "x").unwrap();
        std::fs::write(
            git.join("packed-refs"),
            "# pack\nabc refs/heads/main\nabc refs/tags/v1\n",
        )
        .unwrap();
        std::fs::write(
            git.join("logs/refs/heads/b"),
            "000 abc A <a@b> 1 +0000\tbranch: Created from main\n",
        )
        .unwrap();
        let sub = dir.path().join("app/src");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(git_branch(&sub).as_deref(), Some("b"));
        assert_eq!(created_from(&git, "b").as_deref(), Some("main"));
        assert_eq!(git_branches(&git).unwrap(), ["b", "feature/x", "main"]);
        std::fs::write(git.join("HEAD"), "abcdef\n").unwrap();
        assert_eq!(git_branch(&sub), None, "a detached HEAD switches nothing");
    }
}
