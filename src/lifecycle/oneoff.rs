//! One-off containers of a service (`devenv run`, `devenv test`): what
//! they need brought up first, and the container itself.

use std::sync::Arc;

use futures_util::StreamExt;

use super::{owned_containers, up, ServiceOutcome, UpError, UpOptions};
use crate::config::model::{Service, Stack};
use crate::engine::{project_dir, Engine, EngineError, OneOff};
use crate::images::Images;
use crate::plan::spec;
use crate::report::Reporter;

/// Brings up what one-off containers of `service` need, exactly as `up`
/// would (its dependencies, plus the services in `also`), and returns the
/// service as a one-off runs it — image present, network and volumes made,
/// no published ports (its own container may hold them) — with what `up` did.
pub async fn prepare_oneoff(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    also: &[String],
    reporter: Arc<dyn Reporter>,
) -> Result<(Service, Vec<ServiceOutcome>), UpError> {
    let Some(svc) = stack.services.get(service) else {
        return Err(UpError::UnknownService(service.to_string()));
    };
    owned_containers(engine, stack).await?;
    // Before anything is made: the one-off's own external volumes exist
    // (the services it needs are checked by their `up`).
    let missing = super::up::missing_external_volumes(engine, stack, &[svc]).await?;
    crate::plan::check_external_volumes(stack, [svc], &missing)?;
    let mut needs: Vec<String> = svc.depends_on.keys().cloned().collect();
    needs.extend(
        also.iter()
            .filter(|s| !needs.contains(s))
            .cloned()
            .collect::<Vec<_>>(),
    );
    // An empty selection would mean the whole stack.
    let outcomes = if needs.is_empty() {
        Vec::new()
    } else {
        let opts = UpOptions {
            services: needs,
            no_seeds: true,
            no_ports: true,
            ..UpOptions::default()
        };
        up(engine, stack, &opts, reporter.clone()).await?
    };
    let dir = project_dir(stack);
    engine
        .ensure_network(&spec::network(&stack.project, &dir))
        .await?;
    for (name, vol) in stack.volumes.iter().filter(|(_, v)| !v.external) {
        engine
            .ensure_volume(&spec::volume(&stack.project, &dir, name, vol))
            .await?;
    }
    let mut svc = svc.clone();
    svc.image = Images::default()
        .ensure(engine, &svc, false, reporter.as_ref())
        .await?;
    svc.ports.clear();
    crate::watch::source::prepare(&mut svc, &engine.endpoint);
    Ok((svc, outcomes))
}

/// Creates and starts a one-off container of `svc` (as [`prepare_oneoff`]
/// returned it), passes its output to `on_output` as it comes, and returns
/// the container's id and exit code once it stops. The caller removes it.
pub async fn run_oneoff(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    oneoff: &OneOff,
    mut on_output: impl FnMut(&str),
) -> Result<(String, i64), EngineError> {
    let id = create_oneoff(engine, stack, svc, oneoff).await?;
    // Sync mode: the checkout's code, not the image's.
    if let Err(e) = crate::watch::sync_oneoff(engine, stack, svc, &id).await {
        let _ = engine.remove_container(&id).await;
        return Err(match e {
            crate::watch::WatchError::Engine(e) => e,
            e => EngineError::Copy {
                container: oneoff.name.clone(),
                detail: e.to_string(),
            },
        });
    }
    // Attached before the start, so not a line of a short-lived command is lost.
    let mut logs = engine.follow_logs(&id, None, true);
    engine.start_container(&id).await?;
    while let Some(chunk) = logs.next().await {
        on_output(&chunk?);
    }
    let code = engine.wait_container(&id).await?;
    Ok((id, code))
}

/// Creates (does not start) a one-off container of `svc` (as
/// [`prepare_oneoff`] returned it); returns its id.
pub async fn create_oneoff(
    engine: &Engine,
    stack: &Stack,
    svc: &Service,
    oneoff: &OneOff,
) -> Result<String, EngineError> {
    // Its writable folders go to the user it runs as: the service's, else the image's.
    let user = match (&svc.user, oneoff.tmpfs.is_empty()) {
        (_, true) => None,
        (Some(u), false) => Some(u.clone()),
        (None, false) => engine.image_user(&svc.image).await?,
    };
    let spec = spec::oneoff(stack, svc, &project_dir(stack), oneoff, user.as_deref());
    engine.create_container(&spec).await
}
