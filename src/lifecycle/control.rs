//! `stop`, `start` and `restart` of services without recreating anything:
//! what the commands of those names and `devenv ui`'s buttons both run.
//! Starting means ready, as after `up`: each service starts once what it
//! depends on (among those acted on) meets its condition, then its probe
//! is awaited.

use std::sync::Arc;
use std::time::Duration;

use super::schedule::{self, Started};
use super::UpError;
use crate::config::model::{Condition, Stack};
use crate::engine::{ContainerInfo, Engine};
use crate::plan::Dependency;
use crate::report::Reporter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    Restart,
}

impl Action {
    /// The command's name, as the project lock records it.
    pub fn word(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Restart => "restart",
        }
    }
}

/// Stops, starts or restarts `services` (all of the stack's when empty),
/// holding the project lock.
pub async fn control(
    engine: &Engine,
    stack: &Stack,
    action: Action,
    services: &[String],
    reporter: Arc<dyn Reporter>,
) -> Result<(), UpError> {
    let lock = super::lock_for(&stack.project, action.word(), reporter.as_ref())?;
    super::settle(engine, &stack.project, &lock, reporter.as_ref()).await?;
    let containers = super::owned_containers(engine, stack).await?;
    let chosen: Vec<&ContainerInfo> = containers
        .iter()
        .filter(|c| !c.oneoff && (services.is_empty() || services.contains(&c.service)))
        .collect();
    if let Action::Restart = action {
        // All down first: a dependent must not keep running while what it
        // needs restarts (and perhaps fails), nor start before it is back.
        // Dependents stop first, as for `stop`.
        for group in schedule::stop_groups(stack, chosen.clone(), |c| c.service.as_str()) {
            let stops = group
                .iter()
                .map(|c| engine.stop_container(&c.id, Duration::from_secs(10)));
            for r in futures_util::future::join_all(stops).await {
                r?;
            }
        }
    }
    // Each one starts once what it depends on (among those chosen) meets its
    // condition, as in `up`: a failed `completed` dependency starts nothing after it.
    let steps: Vec<(String, Vec<Dependency>)> = chosen
        .iter()
        .map(|c| {
            // Stopping waits for the dependents to stop (the app before its
            // database, as Compose stops them); starting, for what it needs.
            let deps = match action {
                Action::Stop => dependents(stack, &c.service, &chosen),
                _ => dependencies(stack, &c.service, &chosen),
            };
            (c.service.clone(), deps)
        })
        .collect();
    let job = |i: usize, _started: Started| {
        let c = chosen[i];
        let reporter = reporter.clone();
        async move {
            let done = match action {
                Action::Stop => engine
                    .stop_container(&c.id, Duration::from_secs(10))
                    .await
                    .map(|_| "stopped"),
                Action::Start => engine.start_container(&c.id).await.map(|_| "started"),
                Action::Restart => engine.start_container(&c.id).await.map(|_| "restarted"),
            }
            .map_err(UpError::from)?;
            // Sync mode: a (re)started container holds the working tree again.
            if action != Action::Stop {
                crate::watch::sync_service(engine, stack, &c.service, &c.id, reporter.as_ref())
                    .await
                    .map_err(UpError::from)?;
            }
            // Started means ready, as after `up`: wait for the probe.
            let svc = stack.services.get(&c.service);
            let ready = match (action, svc) {
                (Action::Start | Action::Restart, Some(svc)) => {
                    super::wait_ready(engine, stack, svc, &c.id, reporter.as_ref()).await?
                }
                _ => None,
            };
            let status = match ready {
                Some(d) => format!("{done}, ready in {} ms", d.as_millis()),
                None => done.to_string(),
            };
            reporter.done(&c.service, &status, true);
            Ok::<_, UpError>(())
        }
    };
    // One skipped (None) follows a failure, which is what is reported.
    for r in schedule::run(&steps, job).await.into_iter().flatten() {
        r?;
    }
    Ok(())
}

/// What `service` depends on among the containers acted on.
/// For a stop: the chosen services that depend on `service`, whose stops
/// it waits for (a finished job is what `Ready` waits for).
fn dependents(stack: &Stack, service: &str, chosen: &[&ContainerInfo]) -> Vec<Dependency> {
    chosen
        .iter()
        .filter(|c| {
            stack
                .services
                .get(&c.service)
                .is_some_and(|s| s.depends_on.contains_key(service))
        })
        .map(|c| Dependency {
            service: c.service.clone(),
            condition: Condition::Ready,
        })
        .collect()
}

fn dependencies(stack: &Stack, service: &str, chosen: &[&ContainerInfo]) -> Vec<Dependency> {
    let Some(svc) = stack.services.get(service) else {
        return Vec::new();
    };
    svc.depends_on
        .iter()
        .filter(|(dep, _)| chosen.iter().any(|c| &c.service == *dep))
        .map(|(dep, condition)| Dependency {
            service: dep.clone(),
            condition: *condition,
        })
        .collect()
}
