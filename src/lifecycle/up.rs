//! `up` in three steps: **observe** what the engine has for the project
//! (one listing each of containers, networks and volumes, one inspect per
//! image, what holds host ports), **plan** ([`crate::plan::plan`], pure:
//! host ports chosen too), **apply**. `up --dry-run` stops after the plan
//! and the host-port checks.
//!
//! Applying: images first (pulls and builds overlap; a failed one leaves
//! nothing half-made), then orphans and duplicates go, the network and
//! volumes are made, every container to make is created at once, and each
//! service starts as soon as its own container is made and its own
//! dependencies meet their condition
//! (`started`: running; `ready`: probed ready and hooked; `completed`: ran
//! to exit 0) — not level by level, so one slow service beside an unrelated
//! chain does not hold the chain back. After a failure nothing more starts;
//! what is under way finishes, and the first failure is reported.
//!
//! The steps live beside this file: `on_engine` (the stack as it runs on
//! this engine), `observe`, `host_ports` (the dry run's port checks),
//! `apply` (the plan carried out) and `service` (one
//! service started, ready and hooked).

mod apply;
mod host_ports;
mod observe;
mod on_engine;
mod service;

use std::sync::Arc;

use futures_util::future::join_all;

use super::{lock_for, settle, ServiceOutcome, UpError, UpOptions};
use crate::config::model::Stack;
use crate::engine::{Engine, EngineError};
use crate::images::Images;
use crate::plan::{self, Actual, ImageAction, Plan, PlanOptions};
use crate::report::Reporter;
use on_engine::as_run;

pub use host_ports::{port_refusal, probe_ports};
pub(crate) use observe::missing_external_volumes;
pub use observe::observe;
pub use on_engine::LOOPBACK;

fn plan_options(opts: &UpOptions) -> PlanOptions {
    PlanOptions {
        services: opts.services.clone(),
        build: opts.build,
        create_paths: opts.create_paths,
        no_ports: opts.no_ports,
    }
}

/// What `up` would do, with the host ports checked; changes nothing.
/// Images are not built or pulled: their services say so.
pub async fn dry_run(engine: &Engine, stack: &Stack, opts: &UpOptions) -> Result<Plan, UpError> {
    let selected = super::select(stack, &opts.services)?;
    let run = as_run(engine, stack);
    let actual = observe(engine, &run, &selected).await?;
    let mut plan = plan::plan(&run, &actual, &plan_options(opts))?;
    probe_ports(engine, &mut plan.port_checks).await?;
    Ok(plan)
}

/// Brings the selected services up and ready; returns what it did.
pub async fn up(
    engine: &Engine,
    stack: &Stack,
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    let lock = lock_for(&stack.project, "up", reporter.as_ref())?;
    settle(engine, &stack.project, &lock, reporter.as_ref()).await?;
    if !engine.endpoint.is_local()
        && !stack.bind_all_interfaces
        && stack
            .services
            .values()
            .flat_map(|s| &s.ports)
            .any(|p| p.host_ip.is_none())
    {
        reporter.notice(
            "the engine is on another machine: ports are published on all of its interfaces (its loopback would reach no one here)",
        );
    }
    let selected = super::select(stack, &opts.services)?;
    let mut round = 1;
    loop {
        match up_once(engine, stack, &selected, opts, reporter.clone()).await {
            // What the plan acted on changed under it (an interrupted run's
            // late request, another client): look again and plan anew.
            Err(e) if round < ROUNDS && e.changed_under_us().is_some() => {
                round += 1;
                reporter.notice(&format!(
                    "{}: the engine changed under this run, looking again ({round} of {ROUNDS})",
                    e.changed_under_us().unwrap_or_default()
                ));
            }
            r => return r,
        }
    }
}

/// How often `up` observes and plans before an engine that keeps changing
/// under it is reported as an error.
const ROUNDS: u32 = 3;
/// One observe → plan → apply round of [`up`], under its lock.
async fn up_once(
    engine: &Engine,
    stack: &Stack,
    selected: &[String],
    opts: &UpOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<ServiceOutcome>, UpError> {
    let mut run = as_run(engine, stack);
    let mut actual = observe(engine, &run, selected).await?;
    let mut plan = plan::plan(&run, &actual, &plan_options(opts))?;
    if plan
        .images
        .iter()
        .any(|i| !matches!(i.action, ImageAction::Present { .. }))
    {
        plan = make_images(engine, &run, &mut actual, &plan, opts, reporter.as_ref()).await?;
    }
    for step in &plan.services {
        if let Some(svc) = run.services.get_mut(&step.service) {
            svc.image = step.spec.image.clone();
        }
    }
    apply::apply(engine, stack, &run, &plan, opts, reporter).await
}

/// Makes the images `plan` lacks, all services at once (pulls and builds
/// overlap), before any container: a failed one must leave nothing
/// half-created. Then plans again with their ids.
async fn make_images(
    engine: &Engine,
    run: &Stack,
    actual: &mut Actual,
    plan: &Plan,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<Plan, UpError> {
    let pending: Vec<&str> = plan
        .images
        .iter()
        .filter(|i| !matches!(i.action, ImageAction::Present { .. }))
        .map(|i| i.service.as_str())
        .collect();
    let images = Images::default();
    let made = join_all(pending.iter().map(|name| {
        let (images, svc) = (&images, &run.services[*name]);
        async move {
            let image = images.ensure(engine, svc, opts.build, reporter).await?;
            let info = engine.image_info(&image).await?;
            Ok::<_, UpError>((image, info))
        }
    }))
    .await;
    for result in made {
        if let (image, Some(info)) = result? {
            actual.images.insert(image.to_string(), info);
        }
    }
    let popts = PlanOptions {
        build: false,
        ..plan_options(opts)
    };
    let plan = plan::plan(run, actual, &popts)?;
    if let Some(i) = plan
        .images
        .iter()
        .find(|i| !matches!(i.action, ImageAction::Present { .. }))
    {
        return Err(EngineError::ImageUnavailable {
            service: i.service.clone(),
            image: i.image.to_string(),
            reason: "the engine does not list it after it was made".into(),
        }
        .into());
    }
    Ok(plan)
}

/// `devenv up --build SERVICE`, as the watcher's `rebuild` rules need it.
pub struct Rebuilder<'a> {
    pub engine: &'a Engine,
    pub stack: &'a Stack,
    pub reporter: Arc<dyn Reporter>,
}

impl crate::watch::Rebuild for Rebuilder<'_> {
    fn rebuild<'a>(
        &'a self,
        service: &'a str,
    ) -> futures_util::future::LocalBoxFuture<
        'a,
        Result<(), Box<dyn std::error::Error + Send + Sync>>,
    > {
        Box::pin(async move {
            let opts = UpOptions {
                services: vec![service.to_string()],
                build: true,
                no_hooks: false,
                ..UpOptions::default()
            };
            up(self.engine, self.stack, &opts, self.reporter.clone())
                .await
                .map(|_| ())
                .map_err(Into::into)
        })
    }
}
