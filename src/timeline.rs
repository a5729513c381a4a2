//! The timeline of the last `up`: when each service was built, created,
//! started, became ready and ran its hooks, kept in devenv's private folder
//! (`<project>.timeline.json`) so that `devenv ui` can draw it after the
//! fact, from another process.
//!
//! It is recorded by a [`Reporter`] in front of the one `up` reports to:
//! every task a service goes through is one mark (its status and the time
//! since `up` began), so nothing in the lifecycle knows about timelines.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::report::Reporter;

/// One status change of one task (a service, `base image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub key: String,
    /// Milliseconds since `up` began.
    pub at: u64,
    /// What the task is doing from here on (see [`phase`]).
    pub phase: String,
    /// The status as `up` showed it (masked).
    pub status: String,
}

/// A recorded `up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub project: String,
    /// When `up` began, in Unix milliseconds.
    pub started: u64,
    /// How long it took, in milliseconds.
    pub took: u64,
    pub ok: bool,
    pub marks: Vec<Mark>,
}

/// The phase a status starts: `build`, `create`, `start`, `wait` (for
/// readiness or completion), `hooks`, `sync`, or `done` when the task ended
/// (`deps`, waiting for dependencies, comes from [`Reporter::step`]).
pub fn phase(status: &str) -> &'static str {
    match status {
        s if s.starts_with("building") || s.starts_with("preparing") || s.starts_with("pull") => {
            "build"
        }
        s if s.starts_with("creating") || s.starts_with("recreating") => "create",
        s if s.starts_with("starting") => "start",
        "waiting until ready" | "running to completion" => "wait",
        s if s.starts_with("running `") || s.starts_with("applying seeds") => "hooks",
        _ => "sync",
    }
}

/// A reporter that passes everything on and keeps a [`Mark`] per task change.
pub struct Recorder {
    inner: Arc<dyn Reporter>,
    project: String,
    began: Instant,
    started: SystemTime,
    marks: Mutex<Vec<Mark>>,
}

impl Recorder {
    pub fn new(project: &str, inner: Arc<dyn Reporter>) -> Recorder {
        Recorder {
            inner,
            project: project.to_string(),
            began: Instant::now(),
            started: SystemTime::now(),
            marks: Mutex::new(Vec::new()),
        }
    }

    fn mark(&self, key: &str, phase: &str, status: &str) {
        let at = u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mark = Mark {
            key: key.to_string(),
            at,
            phase: phase.to_string(),
            // A hook's command may quote a secret: the file is masked as a line on the terminal is.
            status: crate::config::secret::scrub(status).into_owned(),
        };
        self.marks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(mark);
    }

    /// What was recorded so far.
    pub fn timeline(&self, ok: bool) -> Timeline {
        Timeline {
            project: self.project.clone(),
            started: unix_ms(self.started),
            took: u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX),
            ok,
            marks: self.marks.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Writes the timeline for `devenv ui` (replacing the last one whole).
    pub fn save(&self, ok: bool) -> std::io::Result<()> {
        let path = path(&self.project)?;
        let part = path.with_extension("json.part");
        let text = serde_json::to_vec(&self.timeline(ok)).map_err(std::io::Error::other)?;
        std::fs::write(&part, text)?;
        std::fs::rename(&part, &path)
    }
}

impl Reporter for Recorder {
    fn task(&self, key: &str, status: &str) {
        self.mark(key, phase(status), status);
        self.inner.task(key, status);
    }
    fn progress(&self, key: &str, current: u64, total: u64) {
        self.inner.progress(key, current, total);
    }
    fn done(&self, key: &str, status: &str, ok: bool) {
        self.mark(key, if ok { "done" } else { "failed" }, status);
        self.inner.done(key, status, ok);
    }
    fn notice(&self, message: &str) {
        self.inner.notice(message);
    }
    fn output(&self, source: &str, line: &str) {
        self.inner.output(source, line);
    }
    fn clear(&self) {
        self.inner.clear();
    }
    fn restarting(&self, service: &str, why: &str) {
        self.inner.restarting(service, why);
    }
    fn step(&self, key: &str, step: &str) {
        match step {
            "created" => self.mark(key, "deps", "waiting for its dependencies"),
            "starting" => self.mark(key, "start", "starting"),
            _ => {}
        }
        self.inner.step(key, step);
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn path(project: &str) -> std::io::Result<std::path::PathBuf> {
    Ok(crate::scratch::private_dir()?.join(format!("{project}.timeline.json")))
}

/// The last recorded `up` of `project`, if any.
pub fn load(project: &str) -> Option<Timeline> {
    let text = std::fs::read(path(project).ok()?).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_name_their_phase_and_marks_pass_through() {
        assert_eq!(phase("creating"), "create");
        assert_eq!(phase("recreating (env changed)"), "create");
        assert_eq!(phase("starting"), "start");
        assert_eq!(phase("waiting until ready"), "wait");
        assert_eq!(phase("running `php artisan migrate`"), "hooks");
        assert_eq!(phase("building"), "build");
        let r = Recorder::new("p", Arc::new(crate::report::Silent));
        r.task("db", "creating");
        r.step("db", "created");
        r.step("db", "starting");
        r.task("db", "waiting until ready");
        r.done("db", "ready", true);
        let t = r.timeline(true);
        let phases: Vec<&str> = t.marks.iter().map(|m| m.phase.as_str()).collect();
        assert_eq!(phases, ["create", "deps", "start", "wait", "done"]);
        assert!(t.marks.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
