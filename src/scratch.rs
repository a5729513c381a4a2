//! devenv's own files on the host (project locks, a test run's PHPUnit
//! configurations, the base image's root filesystem): they live in one
//! private folder per user, never at a predictable path in a shared `/tmp`
//! that another user could create first or plant a symlink in.
//!
//! The folder is `$XDG_RUNTIME_DIR/devenv` when the session has one (systemd
//! makes that per-user and 0700), else `<temp>/devenv-<uid>`. It is made
//! with mode 0700 and, when it already exists, used only if it is a real
//! folder (not a symlink) owned by this user and closed to everyone else.
//!
//! A database command notes itself in `<project>.db-journal` while it runs
//! (see [`journal`]): a killed one leaves the note, which tells the next
//! command to look for what it left on the server.
//!
//! A run's files go in a fresh folder inside it that holds a lock file for
//! as long as the run lives. A killed run cannot remove its folder, so every
//! new run first removes the folders whose lock nobody holds any more.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Names of run folders start with this; nothing else in the folder is swept.
const RUN_PREFIX: &str = "run-";
const RUN_LOCK: &str = ".lock";
/// A run folder without its lock file is being made right now, unless it is older.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

/// The private folder, made if needed and checked.
pub fn private_dir() -> io::Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("devenv"),
        None => std::env::temp_dir().join(format!("devenv-{}", rustix::process::getuid().as_raw())),
    };
    ensure_private(&dir)?;
    Ok(dir)
}

/// devenv's lasting private folder (`$XDG_DATA_HOME/devenv`, else
/// `~/.local/share/devenv`), made 0700 and checked like [`private_dir`]:
/// for what must outlive a reboot, which the runtime folder does not (the
/// local CA of [`crate::ca`], which browsers are told to trust).
pub fn data_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let dir = base.join("devenv");
    ensure_private(&dir)?;
    Ok(dir)
}

/// Makes `dir` with mode 0700, or accepts an existing one only if it is a
/// folder of ours that nobody else may enter.
pub fn ensure_private(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // lstat: a symlink planted at the path is refused, not followed.
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("`{}` {why}; remove it and run again", dir.display()),
        ))
    };
    if !meta.file_type().is_dir() {
        return refuse("is not a folder (a symlink or a file is in its place)".into());
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        return refuse(format!(
            "belongs to uid {}, not to this user (uid {uid})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return refuse(format!(
            "is open to other users (mode {:o}, devenv needs 700)",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// A fresh private folder for one run's files; removed when dropped, and by
/// a later run if this one is killed first.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Held for the run's life: a free lock tells later runs the folder is stale.
    _lock: File,
}

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Makes a fresh run folder (`kind` names what it is for) in the private
/// folder, after removing what killed runs left there.
pub fn run_dir(kind: &str) -> io::Result<RunDir> {
    run_dir_in(&private_dir()?, kind)
}

fn run_dir_in(base: &Path, kind: &str) -> io::Result<RunDir> {
    sweep(base);
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let path = base.join(format!("{RUN_PREFIX}{kind}-{}-{stamp}", std::process::id()));
    // `create` (not `create_all`) fails if anything is already there.
    DirBuilder::new().mode(0o700).create(&path)?;
    let lock = File::options()
        .write(true)
        .create_new(true)
        .open(path.join(RUN_LOCK))?;
    lock.try_lock().map_err(io::Error::from)?;
    Ok(RunDir { path, _lock: lock })
}

/// Removes the run folders whose run is gone (nobody holds their lock).
/// Best effort: a folder it cannot judge or remove is left for the next run.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(RUN_PREFIX) {
            continue;
        }
        let path = entry.path();
        let stale = match File::options().write(true).open(path.join(RUN_LOCK)) {
            Ok(lock) => lock.try_lock().is_ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UNLOCKED_GRACE),
            Err(_) => false,
        };
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A database command's note that it is under way; removed when dropped.
/// A killed command cannot remove it, which is the point.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn journal_path(base: &Path, project: &str) -> PathBuf {
    base.join(format!("{project}.db-journal"))
}

/// Notes that database command `what` runs on `project`'s database.
pub fn journal(project: &str, what: &str) -> io::Result<Journal> {
    journal_in(&private_dir()?, project, what)
}

fn journal_in(base: &Path, project: &str, what: &str) -> io::Result<Journal> {
    let path = journal_path(base, project);
    // A file of ours in a folder only we may enter: no symlink can be planted here.
    std::fs::write(&path, format!("{what}\n"))?;
    Ok(Journal { path })
}

/// The database command a killed devenv left noted for `project`, if any.
pub fn interrupted(project: &str) -> Option<String> {
    interrupted_in(&private_dir().ok()?, project)
}

fn interrupted_in(base: &Path, project: &str) -> Option<String> {
    std::fs::read_to_string(journal_path(base, project))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Removes `project`'s note once what it names has been repaired.
pub fn clear_journal(project: &str) {
    if let Ok(base) = private_dir() {
        let _ = std::fs::remove_file(journal_path(&base, project));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn base() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("devenv-test-base");
        ensure_private(&base).unwrap();
        (tmp, base)
    }

    #[test]
    fn the_private_folder_is_made_closed_to_others() {
        let (_tmp, base) = base();
        let meta = std::fs::symlink_metadata(&base).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        // Made once, accepted again.
        ensure_private(&base).unwrap();
    }

    #[test]
    fn a_planted_symlink_an_open_folder_or_another_users_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let link = tmp.path().join("planted");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_private(&link).unwrap_err().to_string();
        assert!(err.contains("is not a folder"), "{err}");

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private(&open).unwrap_err().to_string();
        assert!(err.contains("is open to other users (mode 777"), "{err}");

        // Only root can hand a folder to another user; CI runs as root.
        if rustix::process::getuid().is_root() {
            let theirs = tmp.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let err = ensure_private(&theirs).unwrap_err().to_string();
            assert!(err.contains("belongs to uid 65534"), "{err}");
        }
    }

    #[test]
    fn a_run_folder_is_fresh_private_and_removed_when_dropped() {
        let (_tmp, base) = base();
        let one = run_dir_in(&base, "test").unwrap();
        let two = run_dir_in(&base, "test").unwrap();
        assert_ne!(one.path(), two.path());
        let meta = std::fs::symlink_metadata(one.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        let path = one.path().to_path_buf();
        std::fs::write(path.join("phpunit-1.xml"), "<phpunit/>").unwrap();
        drop(one);
        assert!(!path.exists());
        assert!(two.path().exists(), "a live run's folder stays");
    }

    #[test]
    fn the_next_run_removes_what_a_killed_run_left_and_nothing_else() {
        let (_tmp, base) = base();
        // A killed run: its folder and lock file remain, nobody holds the lock.
        let killed = base.join(format!("{RUN_PREFIX}test-1-1"));
        std::fs::create_dir(&killed).unwrap();
        std::fs::write(killed.join(RUN_LOCK), "").unwrap();
        std::fs::write(killed.join("phpunit-1.xml"), "x").unwrap();
        // A run being made this instant: no lock file yet, young.
        let young = base.join(format!("{RUN_PREFIX}test-2-2"));
        std::fs::create_dir(&young).unwrap();
        // Other files of devenv's (project locks) are not run folders.
        std::fs::write(base.join("shop.lock"), "").unwrap();
        let live = run_dir_in(&base, "test").unwrap();

        let next = run_dir_in(&base, "test").unwrap();
        assert!(!killed.exists(), "the killed run's folder is removed");
        assert!(young.exists(), "a folder being made is left alone");
        assert!(live.path().exists(), "a live run's folder is left alone");
        assert!(base.join("shop.lock").exists());
        drop(next);
    }

    #[test]
    fn a_database_commands_note_stays_only_when_it_is_not_dropped() {
        let (_tmp, base) = base();
        let done = journal_in(&base, "shop", "db restore base").unwrap();
        assert_eq!(
            interrupted_in(&base, "shop").as_deref(),
            Some("db restore base")
        );
        drop(done);
        assert_eq!(interrupted_in(&base, "shop"), None);
        // A killed command never drops its note: the next one finds it.
        std::mem::forget(journal_in(&base, "shop", "db import x.sql").unwrap());
        assert_eq!(
            interrupted_in(&base, "shop").as_deref(),
            Some("db import x.sql")
        );
        assert_eq!(interrupted_in(&base, "other"), None);
    }
}
