//! Waiting until a service meets the condition its dependents need —
//! running, ready by its probe, or run to completion — and failing fast,
//! with its last log lines, when it never can.

use std::time::Duration;

use super::{explain_exit, UpError};
use crate::config::model::{Condition, Service, Stack};
use crate::engine::Engine;
use crate::probe::{self, NotReady};
use crate::report::Reporter;

/// Waits until the service meets the strongest condition anyone needs of it:
/// ready (with a probe), or completed for one-off jobs dependents wait on.
/// Fails fast, with the service's last log lines, when it cannot get there:
/// it exits, keeps being restarted by its restart policy (a crash loop), or
/// its probe can never pass (an exec probe's missing binary, no HEALTHCHECK).
pub async fn wait_ready(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    id: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Duration>, UpError> {
    let awaited_completion = stack
        .services
        .values()
        .any(|s| s.depends_on.get(&svc.name) == Some(&Condition::Completed));
    if awaited_completion {
        reporter.task(&svc.name, "running to completion");
        let code = engine.wait_container(id).await?;
        if code != 0 {
            return Err(not_ready(
                engine,
                svc,
                id,
                explain_exit(code, false),
                "its log is above".into(),
            )
            .await);
        }
        return Ok(None);
    }
    if svc.ready.is_some() {
        reporter.task(&svc.name, "waiting until ready");
    }
    let probing = probe::await_ready(
        engine,
        &stack.project,
        id,
        svc.ready.as_ref(),
        svc.ready_timeout,
    );
    let result = tokio::select! {
        r = probing => r,
        failure = doomed(engine, &stack.project, svc, id) => return Err(failure_of(engine, svc, id, failure).await),
    };
    match result {
        Ok(d) => Ok(svc.ready.as_ref().map(|_| d)),
        Err(NotReady::Engine(e)) => Err(e.into()),
        // A one-shot job with nothing to probe did its work: that is not a failure.
        Err(NotReady::Exited(0)) if svc.ready.is_none() => Ok(None),
        Err(NotReady::Exited(code)) => {
            let oom = engine
                .inspect_container(id, &stack.project)
                .await
                .is_ok_and(|st| st.oom_killed);
            Err(not_ready(
                engine,
                svc,
                id,
                format!("{} before it was ready", explain_exit(code, oom)),
                "its last log lines are above; fix the cause and run `devenv up` again".into(),
            )
            .await)
        }
        Err(NotReady::TimedOut(last)) => Err(not_ready(
            engine,
            svc,
            id,
            format!("was not ready after {:?}: {last}", svc.ready_timeout),
            "check the `ready` probe (port, path, credentials) or raise `ready_timeout`".into(),
        )
        .await),
    }
}

/// Why waiting for a service is pointless.
enum Doomed {
    /// The engine restarted it (restart policy); how its last run ended.
    CrashLoop { restarts: i64, exit: Option<String> },
    /// The probe can never pass.
    Probe(String),
}

/// Restarts within [`CRASH_WINDOW`] that make a crash loop: one restart is
/// a service that crashed once (its database was not up yet) and may well
/// come up now, as Compose's `--wait` lets it; crashing again after that is
/// a loop (each restart can take seconds on a busy engine: more would not
/// fail fast).
const CRASH_LOOP: usize = 2;
const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// Resolves only when the service cannot become ready: the engine keeps
/// restarting it (a crash loop), or its probe fails in a way no retry will fix.
async fn doomed(engine: &Engine, project: &str, svc: &Service, id: &str) -> Doomed {
    let mut seen: Option<i64> = None;
    let mut restarts: std::collections::VecDeque<std::time::Instant> = Default::default();
    let mut total = 0;
    let mut probed_once = false;
    let mut last_exit = None;
    loop {
        if let Ok(st) = engine.inspect_container(id, project).await {
            // A running container's exit code is 0: only a stopped one tells.
            if !st.running || st.restarting {
                last_exit = st.exit_code.map(|c| explain_exit(c, st.oom_killed));
            }
            let before = *seen.get_or_insert(st.restart_count);
            if st.restart_count > before {
                seen = Some(st.restart_count);
                total += st.restart_count - before;
                // A new run: its probe may be hopeless or not, as the last.
                probed_once = false;
                for _ in before..st.restart_count {
                    restarts.push_back(std::time::Instant::now());
                }
                while restarts.front().is_some_and(|t| t.elapsed() > CRASH_WINDOW) {
                    restarts.pop_front();
                }
                if restarts.len() >= CRASH_LOOP {
                    return Doomed::CrashLoop {
                        restarts: total,
                        exit: last_exit,
                    };
                }
            }
            if st.running && !st.restarting && !probed_once {
                probed_once = true;
                if let Some(why) = hopeless_probe(engine, svc, id, &st).await {
                    return Doomed::Probe(why);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A probe failure no retry fixes: the exec probe's program is not in the
/// image, or the image has no HEALTHCHECK for a `docker` probe.
async fn hopeless_probe(
    engine: &Engine,
    svc: &Service,
    id: &str,
    st: &crate::engine::ContainerStatus,
) -> Option<String> {
    use crate::config::model::Probe;
    match svc.ready.as_ref()? {
        Probe::Docker if st.health.is_none() => {
            Some("has a `docker` probe but its image has no HEALTHCHECK".to_string())
        }
        p @ Probe::Exec { command } => {
            let err = probe::check(engine, p, &probe::Target::from_status(id, st))
                .await
                .err()?;
            let err = err.to_lowercase();
            let missing = err.contains("executable file not found")
                || (err.contains("oci runtime") && err.contains("no such file"))
                || err.contains("exited with 127:");
            missing.then(|| {
                format!(
                    "has an exec probe whose program `{}` is not in its image",
                    command.first().map(String::as_str).unwrap_or_default()
                )
            })
        }
        _ => None,
    }
}

async fn failure_of(engine: &Engine, svc: &Service, id: &str, doomed: Doomed) -> UpError {
    match doomed {
        Doomed::CrashLoop { restarts, exit } => {
            not_ready(
                engine,
                svc,
                id,
                format!(
                    "keeps crashing: {}restarted {restarts} time{} while devenv waited",
                    exit.map(|e| format!("it {e} and was "))
                        .unwrap_or_else(|| "it was ".into()),
                    if restarts == 1 { "" } else { "s" }
                ),
                "its last log lines are above; fix the cause and run `devenv up` again".into(),
            )
            .await
        }
        Doomed::Probe(why) => {
            not_ready(
                engine,
                svc,
                id,
                why,
                "use a probe the image can answer (`devenv config` shows the resolved one)".into(),
            )
            .await
        }
    }
}

pub(super) async fn not_ready(
    engine: &Engine,
    svc: &Service,
    id: &str,
    reason: String,
    hint: String,
) -> UpError {
    let logs = engine.tail_logs(id, 15).await.unwrap_or_default();
    UpError::NotReady {
        service: svc.name.clone(),
        reason,
        logs,
        hint,
    }
}
