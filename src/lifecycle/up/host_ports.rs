//! Host ports on the way to applying a plan: free ones for the containers
//! about to be made where the declared ones are taken (see
//! [`crate::ports`]), and for `up --dry-run` each needed port checked, with
//! the first one `up` would stop at.

use crate::config::model::{Port, Stack};
use crate::engine::{Engine, EngineError};
use crate::lifecycle::UpError;
use crate::plan::{Actual, ContainerAction, Plan, PortCheck, PORTS_PART};
use crate::ports::Creating;
use crate::report::Reporter;

/// Host ports for the containers about to be made: free ones where the
/// declared ones are taken; the config hashes stay the declared ports'.
pub(super) async fn assign(
    engine: &Engine,
    run: &Stack,
    actual: &Actual,
    plan: &mut Plan,
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let creating = creating(actual, plan);
    if creating.is_empty() {
        return Ok(());
    }
    let mut ported = run.clone();
    for step in &plan.services {
        if let Some(svc) = ported.services.get_mut(&step.service) {
            svc.ports = step.spec.ports.clone();
        }
    }
    crate::ports::assign(engine, &mut ported, &creating, reporter).await?;
    for step in &mut plan.services {
        if creating.iter().any(|c| c.service == step.service) {
            step.spec.ports = ported.services[&step.service].ports.clone();
        }
    }
    Ok(())
}

/// The containers the plan creates or recreates, with the host ports each
/// one it replaces publishes now.
fn creating(actual: &Actual, plan: &Plan) -> Vec<Creating> {
    plan.services
        .iter()
        .filter_map(|s| {
            let (replaces, ports_changed) = match &s.action {
                ContainerAction::Create => (None, false),
                ContainerAction::Recreate { id, changes } => {
                    (Some(id.clone()), changes.iter().any(|c| c == PORTS_PART))
                }
                _ => return None,
            };
            // What observe listed: no second listing of the project.
            let current = actual
                .containers
                .iter()
                .find(|c| Some(&c.id) == replaces.as_ref())
                .map(|c| c.published.iter().map(|(to, b)| (*to, b.port)).collect())
                .unwrap_or_default();
            Some(Creating {
                service: s.service.clone(),
                replaces,
                current,
                ports_changed,
            })
        })
        .collect()
}

/// Checks each host port the plan needs, as `up` would (see
/// [`crate::ports::InUse`]: a port a container publishes, or on a local
/// engine one a socket cannot bind, is taken): free, or who holds it.
pub async fn probe_ports(engine: &Engine, checks: &mut [PortCheck]) -> Result<(), EngineError> {
    if checks.is_empty() {
        return Ok(());
    }
    let in_use = crate::ports::InUse::observe(engine).await?;
    for p in checks {
        let port = Port {
            host_ip: p.binding.host_ip.clone(),
            host: Some(p.binding.port),
            container: 0,
            protocol: p.binding.protocol,
            fixed: p.fixed,
            host_last: None,
            loopback_v6: false,
        };
        let free = !in_use.taken(&port);
        p.free = Some(free);
        if !free {
            p.holder = engine.port_holder(p.binding.port).await;
        }
    }
    Ok(())
}

/// The first checked port another process holds. The service's own
/// container holding it (running, or half-started by an interrupted run,
/// when the engine's proxy has the port but lists no running holder) is
/// about to be replaced or started: no conflict.
pub fn port_refusal(checks: &[PortCheck]) -> Result<(), UpError> {
    for p in checks {
        if p.free != Some(false) {
            continue;
        }
        if p.own.is_some() && (p.holder.is_none() || p.holder == p.own) {
            continue;
        }
        // Only a fixed port stops `up`; another moves to a free one.
        if !p.fixed {
            continue;
        }
        return Err(crate::ports::PortError::Taken {
            service: p.service.clone(),
            port: p.binding.port,
            holder: p.holder.clone(),
        }
        .into());
    }
    Ok(())
}
