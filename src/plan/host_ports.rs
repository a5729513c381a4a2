//! Host ports in the plan: which host port each published mapping of a
//! container about to be made gets, decided from what observe found holding
//! ports ([`super::HostPorts`]), and said as data on the step.
//!
//! # How it works
//!
//! A host port in `ports` is a wish, not a demand: several checkouts of one
//! project (and anything else on the machine) want the same 5432 and 8080,
//! and a taken port must not stop the stack. So for each mapping of a
//! service about to be created, [`Assigner::choose`] takes, in this order,
//! the first host port that nothing else holds:
//!
//! 1. the one its container publishes now (a recreate keeps its port: the
//!    bookmark and the `.env` a person wrote yesterday still work);
//! 2. the declared one;
//! 3. the declared one plus 10000, 20000, … (8080 → 18080: easy to tell
//!    apart), then the ports above it, then those below.
//!
//! A mapping written `{ port = "5432:5432", fixed = true }` gets its
//! declared port or the plan fails. What counts as taken depends on where
//! the engine is: on this machine a port is taken when a socket could not
//! bind it or a container publishes it; on another machine only the ports
//! the engine's containers publish count (its refusal at start is
//! `crate::ports`' bounded retry, a changed world rather than a decision).
//! A stopped container whose host port is held by something else now is
//! recreated on a free one rather than started.
//!
//! The config hash of a container is taken from the declared ports, never
//! the chosen ones: a container is not recreated because it got another
//! host port, and the next `up` leaves it (and its port) alone.

use std::collections::HashSet;

use serde::Serialize;

use super::{Actual, ContainerAction, Observed, Plan, PlanError, PORTS_PART};
use crate::config::model::{Port, Protocol, Service, Stack};

/// How many of a mapping's [`candidates`] observe tries to bind: a port
/// beyond them counts as free, and the engine's refusal at start is the
/// last word there.
pub const CANDIDATES_CHECKED: usize = 16;

/// A port the caller could not get and may not replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub port: u16,
}

/// One mapping whose host port is not the declared one, for the notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub container: u16,
    pub declared: u16,
    pub chosen: u16,
}

/// Host ports to try for a mapping that declared `declared`, after the
/// current and declared ones: +10000 steps, then upwards, then downwards
/// (never the privileged ports below 1024 a user cannot bind).
pub fn candidates(declared: u16) -> impl Iterator<Item = u16> {
    let d = u32::from(declared);
    let steps = (1..=6u32)
        .map(move |k| d + k * 10_000)
        .take_while(|p| *p <= 65_535);
    let above = (d + 1)..=65_535;
    let below = (1024..d).rev();
    steps
        .chain(above)
        .chain(below)
        .filter_map(|p| u16::try_from(p).ok())
}

/// Host ports chosen so far in one `up`: no two mappings get the same one,
/// and no substitute takes a port another mapping of the stack declared.
#[derive(Debug, Default)]
pub struct Assigner {
    chosen: HashSet<(u16, Protocol)>,
    declared: HashSet<(u16, Protocol)>,
}

impl Assigner {
    /// Starts with the host ports every service of the stack declares.
    pub fn new<'a>(services: impl IntoIterator<Item = &'a Service>) -> Assigner {
        let declared = services
            .into_iter()
            .flat_map(|s| &s.ports)
            .filter_map(|p| Some((p.host?, p.protocol)))
            .collect();
        Assigner {
            chosen: HashSet::new(),
            declared,
        }
    }

    /// Counts `host` as had: a container kept or started publishes it.
    pub fn hold(&mut self, host: u16, protocol: Protocol) {
        self.chosen.insert((host, protocol));
    }

    /// The host port of each of `declared` (a service's mappings): see the
    /// module docs for the order. `current` is what the service's own
    /// container publishes now (container port, host port): those
    /// count as free, since that container is about to be replaced, and
    /// are kept unless `declared` itself changed (`keep: false`: the
    /// person asked for other ports).
    /// `taken` says whether anything else holds a mapping's host port.
    /// Mappings without a host port are left for the engine to pick.
    pub fn choose(
        &mut self,
        declared: &[Port],
        current: &[(u16, u16)],
        keep: bool,
        taken: &dyn Fn(&Port) -> bool,
    ) -> Result<(Vec<Port>, Vec<Moved>), Blocked> {
        let mut out = Vec::new();
        let mut moved = Vec::new();
        for p in declared {
            let Some(want) = p.host else {
                out.push(p.clone());
                continue;
            };
            let own = |h: u16| current.iter().any(|c| c.1 == h);
            let free = |this: &Assigner, h: u16, is_declared: bool| {
                !this.chosen.contains(&(h, p.protocol))
                    && (is_declared || !this.declared.contains(&(h, p.protocol)))
                    && (own(h)
                        || !taken(&Port {
                            host: Some(h),
                            ..p.clone()
                        }))
            };
            let host = if let Some(last) = p.host_last {
                // A range is any free port of it, and only of it (fixed or not).
                let now = current
                    .iter()
                    .find(|c| keep && c.0 == p.container && (want..=last).contains(&c.1))
                    .map(|c| c.1);
                now.into_iter()
                    .chain(want..=last)
                    .find(|h| free(self, *h, true))
                    .ok_or(Blocked { port: want })?
            } else if p.fixed {
                if !free(self, want, true) {
                    return Err(Blocked { port: want });
                }
                want
            } else {
                let now = current
                    .iter()
                    .find(|c| keep && c.0 == p.container)
                    .map(|c| c.1);
                let pick = now
                    .into_iter()
                    .map(|h| (h, h == want))
                    .chain(std::iter::once((want, true)))
                    .chain(candidates(want).map(|h| (h, false)))
                    .find(|(h, is_declared)| free(self, *h, *is_declared))
                    .map(|(h, _)| h);
                let host = pick.ok_or(Blocked { port: want })?;
                if host != want && Some(host) != now {
                    moved.push(Moved {
                        container: p.container,
                        declared: want,
                        chosen: host,
                    });
                }
                host
            };
            self.chosen.insert((host, p.protocol));
            out.push(Port {
                host: Some(host),
                ..p.clone()
            });
        }
        Ok((out, moved))
    }
}

/// What holds a host port: a container on the engine (by name), another
/// process of the engine's machine, or another service of this plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum TakenBy {
    Container { name: String },
    Process,
    Service,
}

impl std::fmt::Display for TakenBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TakenBy::Container { name } => write!(f, "container `{name}`"),
            TakenBy::Process => f.write_str("another process"),
            TakenBy::Service => f.write_str("another service of the stack"),
        }
    }
}

/// A mapping published on another host port than the declared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMove {
    pub container: u16,
    pub declared: u16,
    pub chosen: u16,
    pub taken_by: TakenBy,
}

/// Why a stopped container is recreated rather than started: a host port
/// it was made with is held by something else now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortTaken {
    pub port: u16,
    pub taken_by: TakenBy,
}

/// The host ports observe tries to bind for one mapping (its host port
/// set to each): the declared one, the one its container has now
/// (`current`), a range's own ports and the first [`CANDIDATES_CHECKED`]
/// candidates.
pub fn to_check(port: &Port, current: Option<u16>) -> Vec<Port> {
    let Some(want) = port.host else {
        return Vec::new();
    };
    let hosts: Vec<u16> = match port.host_last {
        Some(last) => (want..=last).collect(),
        None => std::iter::once(want)
            .chain(candidates(want).take(CANDIDATES_CHECKED))
            .collect(),
    };
    let mut hosts: Vec<u16> = current.into_iter().chain(hosts).collect();
    hosts.dedup();
    hosts
        .into_iter()
        .map(|h| Port {
            host: Some(h),
            ..port.clone()
        })
        .collect()
}

/// What its container publishes now, as (container port, host port).
fn published(c: Option<&Observed>) -> Vec<(u16, u16)> {
    c.map(|c| c.published.iter().map(|(to, b)| (*to, b.port)).collect())
        .unwrap_or_default()
}

/// Chooses the host ports of every container the plan makes and writes
/// them into its spec, with each move and its cause on the step; a stopped
/// container whose port is taken now becomes a recreate. Fails when a
/// fixed port (or a whole range) is taken.
pub(super) fn assign(
    stack: &Stack,
    actual: &Actual,
    ours: &[&Observed],
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let facts = &actual.host_ports;
    let mut assigner = Assigner::new(stack.services.values());
    // What stays (kept or started) holds its ports before anything moves.
    for step in &plan.services {
        if let ContainerAction::Keep { id } | ContainerAction::Start { id } = &step.action {
            let c = ours.iter().find(|c| &c.id == id);
            for (_, b) in c.iter().flat_map(|c| &c.published) {
                assigner.hold(b.port, b.protocol);
            }
        }
    }
    for step in &mut plan.services {
        if !step.spec.ports.iter().any(|p| p.host.is_some()) {
            continue;
        }
        let container = step
            .action
            .id()
            .and_then(|id| ours.iter().find(|c| c.id == id));
        let current = published(container.copied());
        let (current, keep) = match &step.action {
            ContainerAction::Create => (current, true),
            ContainerAction::Recreate { changes, .. } => {
                (current, !changes.iter().any(|c| c == PORTS_PART))
            }
            ContainerAction::Start { id } => {
                // Half-started by an interrupted run, it may hold its ports
                // through the engine's proxy itself: only a container
                // publishing one counts against it then.
                let half = container.is_some_and(|c| c.state == "created");
                let taken = |to: u16, h: u16| {
                    let port = step.spec.ports.iter().find(|p| p.container == to);
                    let port = Port {
                        host: Some(h),
                        ..port.cloned().unwrap_or_else(|| any_port(h))
                    };
                    let by = facts.holder(&port)?;
                    (!half || matches!(by, TakenBy::Container { .. })).then_some(by)
                };
                let Some((port, taken_by)) = current
                    .iter()
                    .find_map(|(to, h)| Some((*h, taken(*to, *h)?)))
                else {
                    continue;
                };
                step.port_taken = Some(PortTaken { port, taken_by });
                step.action = ContainerAction::Recreate {
                    id: id.clone(),
                    changes: Vec::new(),
                };
                let free = current.iter().filter(|(to, h)| taken(*to, *h).is_none());
                (free.copied().collect(), true)
            }
            _ => continue,
        };
        let (ports, moved) = assigner
            .choose(&step.spec.ports, &current, keep, &|p| facts.taken(p))
            .map_err(|Blocked { port }| PlanError::PortTaken {
                service: step.service.clone(),
                port,
                holder: facts.published.get(&port).cloned(),
            })?;
        step.spec.ports = ports;
        step.moves = moved
            .into_iter()
            .map(|m| {
                let declared = step.spec.ports.iter().find(|p| p.container == m.container);
                let port = Port {
                    host: Some(m.declared),
                    ..declared.cloned().unwrap_or_else(|| any_port(m.declared))
                };
                PortMove {
                    container: m.container,
                    declared: m.declared,
                    chosen: m.chosen,
                    taken_by: facts.holder(&port).unwrap_or(TakenBy::Service),
                }
            })
            .collect();
    }
    Ok(())
}

/// A TCP mapping of `host` on every address, for a port no mapping names.
fn any_port(host: u16) -> Port {
    Port {
        host_ip: None,
        host: Some(host),
        container: 0,
        protocol: Protocol::Tcp,
        fixed: false,
        host_last: None,
        loopback_v6: false,
    }
}
