//! Host ports on the engine's side of `up`: what holds them now
//! ([`InUse`]: the ports the engine's containers publish, and on an engine
//! of this machine whatever a local socket cannot bind), and a container's
//! start that the engine refuses because its host port was taken after
//! all ([`start_created`]).
//!
//! The choice itself is the planner's (`crate::plan::host_ports`), made
//! from facts observe gathers with [`bindable`]. The engine's refusal at
//! start (a race after observing, or a process on a remote engine's
//! machine, where a local bind says nothing) is not a decision the plan
//! could have made: it is a changed world, and `up` tries the next
//! candidate a few times ([`next_after_clash`]).

use std::collections::HashSet;

use crate::config::model::{Port, Protocol};
use crate::engine::{Engine, EngineError};
use crate::plan::host_ports::{candidates, Blocked, Moved};
use crate::plan::ContainerSpec;
use crate::report::Reporter;

/// Why host ports could not be had.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PortError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error("port {port} for service `{service}` is already taken{}", holder.as_ref().map(|h| format!(" by container `{h}`")).unwrap_or_default())]
    #[diagnostic(
        code(devenv::up::port),
        help("stop whatever holds it{}, or change the host side of the mapping in `ports`", holder.as_ref().map(|h| format!(" (`{h}`)")).unwrap_or_default())
    )]
    Taken {
        service: String,
        port: u16,
        holder: Option<String>,
    },
}

/// After the engine refused to start a container because host port
/// `clashed` was taken after all (a race, or a process on a remote engine's
/// machine): the service's mappings with the next free candidate for the
/// mapping that had it, or `Blocked` when that mapping is fixed or no
/// candidate is left. `tried` collects the ports that clashed so far.
pub fn next_after_clash(
    ports: &[Port],
    clashed: u16,
    tried: &mut HashSet<u16>,
    taken: &dyn Fn(&Port) -> bool,
) -> Result<(Vec<Port>, Moved), Blocked> {
    tried.insert(clashed);
    let blocked = Blocked { port: clashed };
    let Some(i) = ports.iter().position(|p| p.host == Some(clashed)) else {
        return Err(blocked);
    };
    if ports[i].fixed && ports[i].host_last.is_none() {
        return Err(blocked);
    }
    let used: HashSet<u16> = ports.iter().filter_map(|p| p.host).collect();
    // A range's mapping tries the rest of its range, and only that.
    let within: Box<dyn Iterator<Item = u16>> = match ports[i].host_last {
        Some(last) => Box::new(clashed.saturating_add(1)..=last),
        None => Box::new(candidates(clashed)),
    };
    let host = within
        .into_iter()
        .find(|h| {
            !tried.contains(h)
                && !used.contains(h)
                && !taken(&Port {
                    host: Some(*h),
                    ..ports[i].clone()
                })
        })
        .ok_or(blocked)?;
    let mut out = ports.to_vec();
    out[i].host = Some(host);
    Ok((
        out,
        Moved {
            container: ports[i].container,
            declared: clashed,
            chosen: host,
        },
    ))
}

/// What holds host ports right now: the ports every running container on
/// the engine publishes, and (engine on this machine) whatever a local
/// socket cannot bind.
#[derive(Debug, Clone)]
pub struct InUse {
    published: HashSet<u16>,
    local: bool,
}

impl InUse {
    pub async fn observe(engine: &Engine) -> Result<InUse, EngineError> {
        Ok(InUse {
            published: engine.published_host_ports().await?.into_keys().collect(),
            local: engine.endpoint.is_local(),
        })
    }

    /// Whether `port`'s host port is held by anything.
    pub fn taken(&self, port: &Port) -> bool {
        let Some(host) = port.host else { return false };
        self.published.contains(&host) || (self.local && !bindable(port))
    }
}

/// Whether a socket on this machine can bind the mapping's host address
/// and port (and `[::1]` at that port, where the mapping is published there
/// too: a dev server listening on the IPv6 loopback only holds it).
pub fn bindable(port: &Port) -> bool {
    let Some(host) = port.host else { return true };
    let ip = port
        .host_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .unwrap_or("0.0.0.0")
        .trim_start_matches('[')
        .trim_end_matches(']');
    bindable_at(ip, host, port.protocol)
        && (!port.loopback_v6
            || bindable_at(crate::config::model::LOOPBACK_V6, host, port.protocol))
}

fn bindable_at(ip: &str, host: u16, protocol: Protocol) -> bool {
    match protocol {
        Protocol::Tcp => std::net::TcpListener::bind((ip, host)).is_ok(),
        Protocol::Udp => std::net::UdpSocket::bind((ip, host)).is_ok(),
        // std has no SCTP socket: let the engine say if it is taken.
        Protocol::Sctp => true,
    }
}

/// The notice `up` gives for a mapping published on another host port
/// than `declared` (the plan's choice, or after the engine's refusal).
pub fn say_moved(
    reporter: &dyn Reporter,
    service: &str,
    container: u16,
    declared: u16,
    chosen: u16,
) {
    reporter.notice(&format!(
        "host port {} of `{service}` is taken: publishing its port {} on {} instead",
        declared, container, chosen
    ));
}

/// How often `up` tries another host port after the engine refused one.
const CLASH_RETRIES: usize = 5;

/// Starts a container made from `spec` (its id `id`). When the engine
/// refuses a host port (another project or process took it since the
/// check, or holds it on a remote engine's machine), the container goes and
/// a new one tries the mapping's next candidate; a fixed mapping fails as
/// before. Returns the id of the container that started.
pub async fn start_created(
    engine: &Engine,
    id: String,
    spec: &ContainerSpec,
    reporter: &dyn Reporter,
) -> Result<String, PortError> {
    let mut spec = std::borrow::Cow::Borrowed(spec);
    let mut id = id;
    let mut tried = HashSet::new();
    for attempt in 0.. {
        let Err(e) = engine.start_container(&id).await else {
            return Ok(id);
        };
        let Some(port) = clashed_port(&e, &spec.ports) else {
            return Err(e.into());
        };
        // Leave nothing behind, whatever comes next.
        engine.remove_container_keeping_volumes(&id).await?;
        let taken = PortError::Taken {
            service: spec.service.clone(),
            port,
            holder: None,
        };
        if attempt >= CLASH_RETRIES {
            return Err(with_holder(engine, taken).await);
        }
        let in_use = InUse::observe(engine).await?;
        match next_after_clash(&spec.ports, port, &mut tried, &|p| in_use.taken(p)) {
            Ok((ports, moved)) => {
                say_moved(
                    reporter,
                    &spec.service,
                    moved.container,
                    moved.declared,
                    moved.chosen,
                );
                spec.to_mut().ports = ports;
            }
            Err(_) => return Err(with_holder(engine, taken).await),
        }
        id = engine.create_container(&spec).await?;
    }
    unreachable!("the loop returns")
}

/// Starts the existing, stopped container `id` of `spec`'s service. The
/// plan recreates one whose host port it saw taken; when the engine still
/// refuses the port (taken since observe looked, or held by a process on a
/// remote engine's machine), the container goes and one made from `spec`
/// starts through [`start_created`]. Returns the id that runs and whether
/// it is a new container.
pub async fn start_existing(
    engine: &Engine,
    id: String,
    spec: &ContainerSpec,
    reporter: &dyn Reporter,
) -> Result<(String, bool), PortError> {
    match engine.start_container(&id).await {
        Err(e) if clashed_port(&e, &spec.ports).is_some() => {
            engine.remove_container_keeping_volumes(&id).await?;
            let made = engine.create_container(spec).await?;
            Ok((start_created(engine, made, spec, reporter).await?, true))
        }
        r => r.map(|()| (id, false)).map_err(Into::into),
    }
}

async fn with_holder(engine: &Engine, e: PortError) -> PortError {
    match e {
        PortError::Taken { service, port, .. } => PortError::Taken {
            holder: engine.port_holder(port).await,
            service,
            port,
        },
        e => e,
    }
}

/// The host port of the engine's refusal to start a container because it
/// is already allocated, when that is what `e` is.
pub fn clashed_port(e: &EngineError, ports: &[Port]) -> Option<u16> {
    let text = e.port_refusal()?;
    let hosts = ports.iter().filter_map(|p| p.host);
    hosts
        .clone()
        .find(|h| text.contains(&format!(":{h} ")) || text.contains(&format!(":{h}:")))
        .or_else(|| hosts.clone().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::host_ports::tests::{hosts, port, taken_set};
    use crate::plan::host_ports::Assigner;

    #[test]
    fn a_host_range_takes_any_free_port_of_it_and_none_outside() {
        // `6005-6007:80`, as Compose publishes it.
        let range = Port {
            host_last: Some(6007),
            loopback_v6: false,
            ..port(Some(6005), 80, false)
        };
        let choose = |taken: &[u16]| {
            Assigner::default()
                .choose(std::slice::from_ref(&range), &[], true, &taken_set(taken))
                .map(|(ports, moved)| (hosts(&ports), moved))
        };
        assert_eq!(choose(&[]).unwrap(), (vec![Some(6005)], vec![]));
        assert_eq!(choose(&[6005, 6006]).unwrap(), (vec![Some(6007)], vec![]));
        assert_eq!(
            choose(&[6005, 6006, 6007]).unwrap_err(),
            Blocked { port: 6005 }
        );
        let mut tried = HashSet::new();
        let chosen = Port {
            host: Some(6006),
            ..range.clone()
        };
        let (ports, _) = next_after_clash(&[chosen], 6006, &mut tried, &taken_set(&[])).unwrap();
        assert_eq!(hosts(&ports), [Some(6007)]);
        let last = Port {
            host: Some(6007),
            ..range
        };
        assert!(next_after_clash(&[last], 6007, &mut tried, &taken_set(&[])).is_err());
    }

    #[test]
    fn an_engine_refusal_moves_only_the_clashing_non_fixed_mapping() {
        let declared = [port(Some(9000), 9000, false), port(Some(9001), 9001, true)];
        let mut tried = HashSet::new();
        let (ports, moved) =
            next_after_clash(&declared, 9000, &mut tried, &taken_set(&[])).unwrap();
        assert_eq!(hosts(&ports), [Some(19000), Some(9001)]);
        assert_eq!((moved.declared, moved.chosen), (9000, 19000));
        // The substitute clashes too: the next candidate that is not taken.
        let (ports, _) = next_after_clash(&ports, 19000, &mut tried, &taken_set(&[29000])).unwrap();
        assert_eq!(hosts(&ports), [Some(39000), Some(9001)]);
        // A fixed mapping is never moved.
        assert_eq!(
            next_after_clash(&ports, 9001, &mut tried, &taken_set(&[])).unwrap_err(),
            Blocked { port: 9001 }
        );
    }

    #[test]
    fn in_use_counts_published_ports_and_on_a_remote_engine_only_those() {
        let remote = InUse {
            published: HashSet::from([5432]),
            local: false,
        };
        assert!(remote.taken(&port(Some(5432), 5432, false)));
        // Something on this machine holds it, but the engine is elsewhere.
        let here = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let held = here.local_addr().unwrap().port();
        assert!(!remote.taken(&port(Some(held), 80, false)));
        let local = InUse {
            published: HashSet::new(),
            local: true,
        };
        assert!(local.taken(&port(Some(held), 80, false)));
    }
}
