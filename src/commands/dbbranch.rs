//! `devenv db branch [on|off|prune]` and `devenv db branches`: a database
//! per git branch (see `branchdb`), and the switch every database command,
//! `up`, `test` and the watchers make when the checkout's branch changed,
//! always under the project lock.

use super::{service_container, Context, Failure, Outcome};
use crate::branchdb::{self, Switched};
use crate::cli::BranchAction;
use crate::config::model::Stack;
use crate::database::Database;
use crate::engine::Engine;
use crate::report::Reporter;

/// Makes the app's database the checkout's branch's, when the feature is
/// on; a branch seen for the first time then gets the migrate hooks.
pub async fn follow(
    engine: &Engine,
    stack: &Stack,
    db: &Database,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    let Some(branch) = branchdb::git_branch(&stack.root) else {
        return Ok(());
    };
    // The lock `db`, `test` and `down` share (a caller holding it already
    // gets it at once): a `db snapshot` in another terminal cannot
    // interleave with the switch, and the repair below sees no live command.
    let _lock = crate::lifecycle::lock_for(&stack.project, "db branch", reporter)?;
    // What a killed command (a switch, too) left is repaired first: a
    // database set aside or a half-made clone would fail the switch.
    if crate::scratch::interrupted(&stack.project).is_some() {
        crate::dbsafety::recover(engine, db, reporter).await?;
    }
    // `[db] per_branch = true` turns it on as `devenv db branch on` does.
    if stack.db_per_branch && branchdb::current(db).await?.is_none() {
        branchdb::turn_on(db, &branch).await?;
        reporter.done(
            &db.service,
            &format!(
                "a database per git branch: `{}` is branch `{branch}`'s",
                db.name
            ),
            true,
        );
        return Ok(());
    }
    let parent = branchdb::git_dir(&stack.root).and_then(|g| branchdb::created_from(&g, &branch));
    match branchdb::switch(db, &branch, parent.as_deref()).await? {
        Switched::Nothing => {}
        Switched::Swapped { from, took } => reporter.done(
            &db.service,
            &format!(
                "branch `{branch}`'s database swapped in ({} ms); `{from}`'s is kept",
                took.as_millis()
            ),
            true,
        ),
        Switched::Created { from, source, took } => {
            reporter.done(
                &db.service,
                &format!(
                    "branch `{branch}` is new: its database is a copy of `{source}`'s ({} ms); `{from}`'s is kept",
                    took.as_millis()
                ),
                true,
            );
            migrate(engine, stack, db, &branch, reporter).await?;
        }
        Switched::MigrationsDue => {
            reporter.notice(&format!(
                "branch `{branch}`'s database has not had its migrations yet (a switch was interrupted, or the app was not running): running them"
            ));
            migrate(engine, stack, db, &branch, reporter).await?;
        }
    }
    Ok(())
}

/// The migrate hooks of the services that have them and run; once every
/// one has run, `branch`'s database is marked as migrated.
async fn migrate(
    engine: &Engine,
    stack: &Stack,
    db: &Database,
    branch: &str,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    let mut all_ran = true;
    for svc in stack
        .services
        .values()
        .filter(|s| !s.hooks.migrate.is_empty())
    {
        let Ok(id) = service_container(engine, stack, &svc.name).await else {
            reporter.notice(&format!(
                "`{}` is not running: its migrations run at the next `devenv up`",
                svc.name
            ));
            all_ran = false;
            continue;
        };
        crate::lifecycle::run_hooks(engine, svc, &id, &svc.hooks.migrate, reporter).await?;
    }
    if all_ran {
        branchdb::migrated(db, branch).await?;
    }
    Ok(())
}

/// `devenv db branch [on|off|prune]`.
pub async fn run(
    engine: &Engine,
    stack: &Stack,
    db: &Database,
    action: Option<BranchAction>,
    reporter: &dyn Reporter,
) -> Outcome {
    let branch = branchdb::git_branch(&stack.root);
    match action {
        None => follow(engine, stack, db, reporter).await?,
        Some(BranchAction::On) => {
            let branch = branch.ok_or_else(|| Failure::new(NoBranch, 2))?;
            if let Some(already) = branchdb::current(db).await? {
                reporter.notice(&format!(
                    "a database per branch is on already (`{}` is branch `{already}`'s)",
                    db.name
                ));
                follow(engine, stack, db, reporter).await?;
            } else {
                branchdb::turn_on(db, &branch).await?;
                reporter.done(
                    &db.service,
                    &format!(
                        "a database per git branch: `{}` is branch `{branch}`'s",
                        db.name
                    ),
                    true,
                );
            }
        }
        Some(BranchAction::Off) => {
            branchdb::turn_off(db).await?;
            reporter.done(
                &db.service,
                &format!(
                    "one database for every branch again: `{}` keeps its content; the other branches' copies stay (`devenv db branches`)",
                    db.name
                ),
                true,
            );
        }
        Some(BranchAction::Prune) => {
            let git = branchdb::git_dir(&stack.root)
                .and_then(|g| branchdb::git_branches(&g))
                .ok_or_else(|| Failure::new(NoBranch, 2))?;
            let gone = branchdb::prune(db, &git).await?;
            if gone.is_empty() {
                reporter.notice("every branch's database belongs to a branch git has");
            }
            for b in gone {
                reporter.done(
                    &db.service,
                    &format!(
                        "dropped `{}` ({}): branch `{}` is gone from git",
                        b.database,
                        super::db::human_size(b.bytes),
                        b.branch
                    ),
                    true,
                );
            }
        }
    }
    Ok(0)
}

/// `devenv db branches`: each branch's database with its size, the app's first.
pub async fn list(db: &Database, reporter: &dyn Reporter) -> Result<(), Failure> {
    let all = branchdb::list(db).await?;
    if all.is_empty() {
        reporter.notice("no database per branch: `devenv db branch on` keeps one per git branch");
        return Ok(());
    }
    let w = all.iter().map(|b| b.branch.len()).max().unwrap_or(6).max(6);
    crate::outln!("  {:w$}  {:32}  {:>10}", "BRANCH", "DATABASE", "SIZE");
    for b in all {
        let mark = if b.current { "*" } else { " " };
        crate::outln!(
            "{mark} {:w$}  {:32}  {:>10}",
            b.branch,
            b.database,
            super::db::human_size(b.bytes)
        );
    }
    Ok(())
}

/// `up`'s and `test`'s switch: before anyone works on the database. Quiet
/// when the stack has no PostgreSQL, it is not running or the feature is off.
pub async fn follow_at_up(ctx: &Context, engine: &Engine, stack: &Stack) -> Result<(), Failure> {
    let Some(_) = branchdb::git_branch(&stack.root) else {
        return Ok(());
    };
    let Ok(db) = Database::locate(engine, stack).await else {
        return Ok(());
    };
    let reporter = ctx.reporter();
    follow(engine, stack, &db, reporter.as_ref()).await
}

/// The watcher's part: `.git/HEAD` is read every half second (a file of a
/// few bytes), and a changed branch is followed (under the project lock)
/// as `devenv db branch` would. Runs until dropped; a failure is said, and
/// the next change tries again.
pub async fn watch_head(engine: &Engine, stack: &Stack, reporter: &dyn Reporter) {
    let mut last = branchdb::git_branch(&stack.root);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = branchdb::git_branch(&stack.root);
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        let Ok(db) = Database::locate(engine, stack).await else {
            continue;
        };
        if let Err(e) = follow(engine, stack, &db, reporter).await {
            reporter.notice(&format!(
                "the branch's database was not switched: {}",
                e.report
            ));
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the checkout is on no git branch")]
#[diagnostic(
    code(devenv::no_branch),
    help("a database per branch follows `git checkout`/`git switch`: run it in a git checkout, on a branch (not a detached HEAD)")
)]
struct NoBranch;
