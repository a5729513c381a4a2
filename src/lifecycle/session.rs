//! An attached `up`'s session on the engine: the first of its services to
//! exit noticed (`--abort-on-container-exit`), a service's exit code read
//! (`--exit-code-from`), and its services stopped when it ends (killed once
//! the caller's second signal comes). The command owns the terminal and
//! Ctrl-C; these only act and report.

use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;

use super::stop_hook;
use crate::config::model::{Condition, Stack};
use crate::engine::{Engine, EngineError};
use crate::report::Reporter;

/// Resolves when the first of `services`' containers has exited (and the
/// engine is not restarting it): its service and exit code. A task others
/// wait on to complete (a migration) is meant to exit: it does not count.
pub async fn first_exit(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
) -> Result<(String, i64), EngineError> {
    let awaited = |service: &str| {
        stack
            .services
            .values()
            .any(|s| s.depends_on.get(service) == Some(&Condition::Completed))
    };
    loop {
        for c in engine.list_containers(&stack.project).await? {
            if c.oneoff
                || c.state != "exited"
                || !services.contains(&c.service)
                || awaited(&c.service)
            {
                continue;
            }
            let st = engine.inspect_container(&c.id, &stack.project).await?;
            if !st.running && !st.restarting {
                return Ok((c.service, st.exit_code.unwrap_or(0)));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The exit code of `service`'s container (`--exit-code-from`).
pub async fn exit_code_of(
    engine: &Engine,
    stack: &Stack,
    service: &str,
) -> Result<i64, EngineError> {
    for c in engine.list_containers(&stack.project).await? {
        if c.service == service && !c.oneoff {
            let st = engine.inspect_container(&c.id, &stack.project).await?;
            return Ok(st.exit_code.unwrap_or(0));
        }
    }
    Ok(0)
}

/// Stops the containers of `services` gracefully, or kills them once
/// `force()` resolves meanwhile (the caller's second Ctrl-C).
pub async fn stop<F: Future<Output = ()>>(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    reporter: &dyn Reporter,
    force: impl Fn() -> F,
) -> Result<(), EngineError> {
    // Twice: a container whose start was under way when `up` was
    // interrupted shows up running only after the first pass.
    for _ in 0..2 {
        let containers: Vec<_> = engine
            .list_containers(&stack.project)
            .await?
            .into_iter()
            .filter(|c| services.contains(&c.service) && !c.oneoff && c.state != "exited")
            .collect();
        if containers.is_empty() {
            break;
        }
        // Dependents first (the app before its database), one group at once.
        let stop_all = |timeout: Duration| {
            let groups = super::schedule::stop_groups(stack, containers.iter().collect(), |c| {
                c.service.as_str()
            });
            async move {
                let mut results = Vec::new();
                for group in groups {
                    results.extend(
                        join_all(group.into_iter().map(move |c| async move {
                            reporter.task(&c.service, "stopping");
                            engine.stop_container(&c.id, timeout).await?;
                            reporter.done(&c.service, "stopped", true);
                            Ok::<_, EngineError>(())
                        }))
                        .await,
                    );
                }
                results
            }
        };
        let results = tokio::select! {
            r = stop_all(STOP_TIMEOUT) => r,
            () = force() => stop_all(Duration::ZERO).await,
        };
        for r in results {
            r?;
        }
    }
    Ok(())
}

/// How long a container gets to stop after SIGTERM before the engine kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Ends the `after_up` hooks still running in `services`' containers: a
/// detached `up` interrupted before the stack was ready leaves the stack
/// to the next `up`, but a hook left running would go on in the container.
pub async fn stop_hooks(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
) -> Result<(), EngineError> {
    for c in engine.list_containers(&stack.project).await? {
        if services.contains(&c.service) && !c.oneoff && c.state == "running" {
            stop_hook(engine, &c.id).await;
        }
    }
    Ok(())
}
