//! The per-project lock two devenv commands on one project take in turn,
//! and what it tells the next command: the lock file names the command
//! holding it, so one found full was left by a command that was killed, and
//! [`settle`] waits until the stops and removals that one had sent land.

use std::fs::File;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::UpError;
use crate::engine::Engine;
use crate::report::Reporter;

/// Holds the per-project lock for as long as it lives (and any copy of it).
/// While held, the lock file names the command and when it began; the last
/// copy's end empties it, so a file found full was left by a command that
/// was killed.
#[derive(Clone)]
pub struct ProjectLock(Arc<Held>);

struct Held {
    file: File,
    interrupted: Option<Interrupted>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Emptied: this command ended as it should.
        let _ = self.file.set_len(0);
    }
}

/// What a killed command left in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// Its words, as `up` or `down`.
    pub command: String,
    pub pid: u32,
    /// When it began, in unix seconds.
    pub since: u64,
}

impl Interrupted {
    fn parse(text: &str) -> Option<Interrupted> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let since = words.next()?.parse().ok()?;
        let command = words.collect::<Vec<_>>().join(" ");
        Some(Interrupted {
            command,
            pid,
            since,
        })
    }
}

impl ProjectLock {
    /// The command before this one that was killed while it held the lock
    /// (the same for a lock taken again within this process, so a nested
    /// `up` still waits for what that command left under way).
    pub fn interrupted(&self) -> Option<&Interrupted> {
        self.0.interrupted.as_ref()
    }
}

/// The project locks this process holds: a command that holds its
/// project's lock for its whole run (`test`, `db`) calls code that takes it
/// again (`up`), and a second `flock` on a new descriptor would wait for
/// the first forever.
static HELD: Mutex<Vec<(String, Weak<Held>)>> = Mutex::new(Vec::new());

/// Takes the per-project lock so two devenv commands on one project do not
/// interleave; waits (saying so) when another holds it. Taking it again in
/// the process that holds it returns at once.
///
/// The lock file lives in devenv's private folder (see [`crate::scratch`]),
/// never at a predictable path in a shared `/tmp`.
pub fn lock(project: &str, reporter: &dyn Reporter) -> Result<ProjectLock, UpError> {
    lock_for(project, "devenv", reporter)
}

/// [`lock`], recording `command` (`up`, `down`) so that the next command
/// can tell which one was interrupted.
pub fn lock_for(
    project: &str,
    command: &str,
    reporter: &dyn Reporter,
) -> Result<ProjectLock, UpError> {
    use std::io::{Read, Seek, Write};
    let mut held = HELD.lock().expect("no panics while holding the list");
    held.retain(|(_, h)| h.strong_count() > 0);
    if let Some(h) = held
        .iter()
        .find(|(p, _)| p == project)
        .and_then(|(_, h)| h.upgrade())
    {
        return Ok(ProjectLock(h));
    }
    let dir = crate::scratch::private_dir().map_err(|source| UpError::Lock {
        path: "devenv's private folder".into(),
        source,
    })?;
    let path = dir.join(format!("{project}.lock"));
    let err = |source| UpError::Lock {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(err)?;
    if file.try_lock().is_err() {
        reporter.notice(&format!(
            "waiting for another devenv working on project `{project}`"
        ));
        file.lock().map_err(err)?;
    }
    let mut left = String::new();
    file.read_to_string(&mut left).map_err(err)?;
    let interrupted = Interrupted::parse(&left);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    write!(file, "{} {since} {command}", std::process::id()).map_err(err)?;
    let h = Arc::new(Held { file, interrupted });
    held.push((project.to_string(), Arc::downgrade(&h)));
    Ok(ProjectLock(h))
}

/// After a killed command, waits until the stops and removals it had sent
/// have landed in the engine (they finish without it), so that what is
/// observed next stays true. Says so only when there was something to wait for.
pub async fn settle(
    engine: &Engine,
    project: &str,
    lock: &ProjectLock,
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let Some(killed) = lock.interrupted() else {
        return Ok(());
    };
    // A request the killed process wrote just before it died may still be
    // on its way into the engine.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A stop gives a container 10 s before SIGKILL; a little more for the kill.
    let waited = engine
        .settle(project, killed.since, Duration::from_secs(15))
        .await?;
    if waited > 0 {
        reporter.notice(&format!(
            "an interrupted `{}` (pid {}) had {waited} container{} of `{project}` stopping: waited for the engine to finish",
            killed.command,
            killed.pid,
            if waited == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_takes_its_own_project_lock_again_without_waiting() {
        let project = format!("lock-reentry-{}", std::process::id());
        let outer = lock(&project, &crate::report::Silent).unwrap();
        // Would wait forever if the second `flock` were on a new descriptor.
        let inner = lock(&project, &crate::report::Silent).unwrap();
        drop(outer);
        drop(inner);
        let again = lock(&project, &crate::report::Silent).unwrap();
        drop(again);
        let _ = std::fs::remove_file(
            crate::scratch::private_dir()
                .unwrap()
                .join(format!("{project}.lock")),
        );
    }

    #[test]
    fn a_lock_file_left_full_names_the_interrupted_command_and_a_normal_end_empties_it() {
        let project = format!("devenv-unit-lock-{}", std::process::id());
        let path = crate::scratch::private_dir()
            .unwrap()
            .join(format!("{project}.lock"));
        // What a killed `down` leaves behind.
        std::fs::write(&path, "4242 1796604376 down").unwrap();
        let reporter = crate::report::Silent;
        let lock = lock_for(&project, "up", &reporter).unwrap();
        assert_eq!(
            lock.interrupted(),
            Some(&Interrupted {
                command: "down".into(),
                pid: 4242,
                since: 1796604376,
            })
        );
        let held = std::fs::read_to_string(&path).unwrap();
        assert!(held.ends_with(" up"), "{held:?}");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let again = lock_for(&project, "up", &reporter).unwrap();
        assert_eq!(again.interrupted(), None);
        drop(again);
        std::fs::remove_file(&path).unwrap();
    }
}
