//! `after_up` hooks: shell commands run in the service's container once it
//! is ready, each in a session of its own so a timeout or Ctrl-C stops it
//! with its children; a marker file records that all of them succeeded.

use super::UpError;
use crate::config::model::Service;
use crate::engine::Engine;
use crate::hooks::exec_shell;
use crate::report::Reporter;

/// Where a running hook leaves its process group id, so it can be stopped.
const HOOK_PID: &str = "/tmp/.devenv-hook.pid";
/// Present once every `after_up` hook of the container succeeded: hooks of
/// a container without it (a hook failed, `up` was killed) run again.
pub(super) const HOOKS_DONE: &str = "/tmp/.devenv-hooks-done";

/// `command` for `sh -c`, in a session of its own (where `setsid` can) whose
/// id is written to [`HOOK_PID`], so that [`stop_hook`] ends it and all its
/// children.
fn hook_script(command: &str) -> String {
    let quoted = format!("'{}'", command.replace('\'', "'\\''"));
    format!(
        // The id file goes when the hook ends, so a stale one never names another process.
        "if setsid -w true 2>/dev/null; then exec setsid -w sh -c 'echo $$ > {HOOK_PID}; sh -c \"$1\"; c=$?; rm -f {HOOK_PID}; exit $c' hook {quoted}; else echo $$ > {HOOK_PID}; sh -c {quoted}; c=$?; rm -f {HOOK_PID}; exit $c; fi"
    )
}

/// Stops the hook running in container `id`, if one is.
pub async fn stop_hook(engine: &Engine, id: &str) {
    let kill = format!(
        "p=$(cat {HOOK_PID} 2>/dev/null) && [ -n \"$p\" ] && {{ kill -TERM -$p 2>/dev/null || kill -TERM $p; rm -f {HOOK_PID}; }}"
    );
    let _ = engine
        .exec(
            id,
            vec!["sh".into(), "-c".into(), kill],
            Vec::new(),
            None,
            |_| {},
        )
        .await;
}

/// Whether every `after_up` hook of container `id` has succeeded.
pub(super) async fn hooks_done(engine: &Engine, id: &str) -> bool {
    // One archive request, cheaper than an exec: a no-op `up` pays it per hooked service.
    matches!(engine.download_file(id, HOOKS_DONE).await, Ok(Some(_)))
}

/// Runs hook commands in the service's container, in order; the first
/// failure stops. Each may run for `hooks.timeout`, then it is stopped.
pub async fn run_hooks(
    engine: &Engine,
    svc: &Service,
    id: &str,
    commands: &[String],
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    for command in commands {
        reporter.task(&svc.name, &format!("running `{}`", svc.mask(command)));
        let script = hook_script(command);
        let run = exec_shell(engine, svc, id, &script, reporter);
        let output = match tokio::time::timeout(svc.hooks.timeout, run).await {
            Ok(r) => r?,
            Err(_) => {
                stop_hook(engine, id).await;
                return Err(UpError::HookTimeout {
                    service: svc.name.clone(),
                    command: svc.mask(command),
                    timeout: svc.hooks.timeout,
                });
            }
        };
        if output.0 != 0 {
            return Err(UpError::Hook {
                service: svc.name.clone(),
                command: svc.mask(command),
                code: output.0,
                output: output.1,
            });
        }
    }
    Ok(())
}
