//! Host ports for `up --dry-run`: each port the plan's checks name looked
//! at again, as `up` would (free, or who holds it), with the first one `up`
//! would stop at. Which port each mapping gets is the plan's
//! (`crate::plan::host_ports`), from the same facts observe gathers.

use crate::config::model::Port;
use crate::engine::{Engine, EngineError};
use crate::lifecycle::UpError;
use crate::plan::PortCheck;

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
