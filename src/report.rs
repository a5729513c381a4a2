//! How domain code tells the user what is happening without printing:
//! it calls a [`Reporter`], which the UI implements (progress bars on a
//! terminal, plain lines otherwise, nothing in tests).

/// Receives progress from long-running work. Keys name one task
/// (`pull postgres:16`, `db`) so a UI can keep a bar per key.
pub trait Reporter: Send + Sync {
    /// A task started or changed status.
    fn task(&self, key: &str, status: &str);
    /// Byte progress of a task (image pulls).
    fn progress(&self, _key: &str, _current: u64, _total: u64) {}
    /// A task finished, well or not.
    fn done(&self, key: &str, status: &str, ok: bool);
    /// A line for the user that belongs to no task.
    fn notice(&self, message: &str);
    /// A line of output from something devenv runs (a build, a hook).
    fn output(&self, source: &str, line: &str);
    /// Ends every task still shown as running (one that never reported
    /// `done`), before other output takes the screen.
    fn clear(&self) {}
    /// devenv itself is about to restart (or recreate) `service`, and why:
    /// a log follower of the same run says so on its restart line.
    fn restarting(&self, _service: &str, _why: &str) {}
    /// A step on a service's way up that shows no status of its own
    /// (`created`: its container is made; `starting`): what `devenv ui`'s
    /// timeline of the last `up` draws.
    fn step(&self, _key: &str, _step: &str) {}
}

/// Reports nothing: for tests and `--quiet`.
pub struct Silent;

impl Reporter for Silent {
    fn task(&self, _: &str, _: &str) {}
    fn done(&self, _: &str, _: &str, _: bool) {}
    fn notice(&self, _: &str) {}
    fn output(&self, _: &str, _: &str) {}
}
