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

use super::{
    Actual, ContainerAction, HostPorts, Observed, Plan, PlanError, ServiceStep, PORTS_PART,
};
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
    let container = |step: &ServiceStep| {
        let id = step.action.id()?;
        ours.iter().copied().find(|c| c.id == id)
    };
    // A stopped container whose port something else holds now is made
    // again, rather than started to be refused.
    for step in &mut plan.services {
        if let ContainerAction::Start { id } = &step.action {
            let c = container(step);
            let taken = published(c)
                .into_iter()
                .find_map(|(to, h)| Some((h, held_since(step, c, facts, to, h)?)));
            if let Some((port, taken_by)) = taken {
                step.port_taken = Some(PortTaken { port, taken_by });
                step.action = ContainerAction::Recreate {
                    id: id.clone(),
                    changes: Vec::new(),
                };
            }
        }
    }
    let mut assigner = Assigner::new(stack.services.values());
    // What stays (kept or started) holds its ports before anything moves.
    for step in &plan.services {
        if let ContainerAction::Keep { .. } | ContainerAction::Start { .. } = &step.action {
            for (_, b) in container(step).iter().flat_map(|c| &c.published) {
                assigner.hold(b.port, b.protocol);
            }
        }
    }
    for step in &mut plan.services {
        if !step.spec.ports.iter().any(|p| p.host.is_some()) {
            continue;
        }
        let c = container(step);
        let (current, keep) = match &step.action {
            ContainerAction::Create => (Vec::new(), true),
            // Its ports that are still free count as its own.
            ContainerAction::Recreate { .. } if step.port_taken.is_some() => {
                let mut current = published(c);
                current.retain(|(to, h)| held_since(step, c, facts, *to, *h).is_none());
                (current, true)
            }
            ContainerAction::Recreate { changes, .. } => {
                (published(c), !changes.iter().any(|c| c == PORTS_PART))
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
            .map(|m| PortMove {
                container: m.container,
                declared: m.declared,
                chosen: m.chosen,
                taken_by: holder(step, facts, m.container, m.declared).unwrap_or(TakenBy::Service),
            })
            .collect();
    }
    Ok(())
}

/// What holds host port `host` of `step`'s mapping of container port `to`.
fn holder(step: &ServiceStep, facts: &HostPorts, to: u16, host: u16) -> Option<TakenBy> {
    let mapping = step.spec.ports.iter().find(|p| p.container == to);
    facts.holder(&Port {
        host: Some(host),
        ..mapping.cloned().unwrap_or_else(|| any_port(host))
    })
}

/// What holds the host port `host` that the stopped container `c` of
/// `step` publishes its port `to` on, other than that container itself.
/// Half-started by an interrupted run, it may hold its ports through the
/// engine's proxy: only a container publishing one counts against it then.
fn held_since(
    step: &ServiceStep,
    c: Option<&Observed>,
    facts: &HostPorts,
    to: u16,
    host: u16,
) -> Option<TakenBy> {
    let half = c.is_some_and(|c| c.state == "created");
    let by = holder(step, facts, to, host)?;
    (!half || matches!(by, TakenBy::Container { .. })).then_some(by)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn port(host: Option<u16>, container: u16, fixed: bool) -> Port {
        Port {
            host_ip: None,
            host,
            container,
            protocol: Protocol::Tcp,
            fixed,
            host_last: None,
            loopback_v6: false,
        }
    }

    pub(crate) fn hosts(ports: &[Port]) -> Vec<Option<u16>> {
        ports.iter().map(|p| p.host).collect()
    }

    pub(crate) fn taken_set(set: &[u16]) -> impl Fn(&Port) -> bool + '_ {
        move |p: &Port| p.host.is_some_and(|h| set.contains(&h))
    }

    #[test]
    fn a_free_declared_port_is_kept() {
        let mut a = Assigner::default();
        let (ports, moved) = a
            .choose(&[port(Some(8080), 8080, false)], &[], true, &taken_set(&[]))
            .unwrap();
        assert_eq!(hosts(&ports), [Some(8080)]);
        assert!(moved.is_empty());
    }

    #[test]
    fn a_taken_port_moves_ten_thousand_up_and_says_so() {
        let mut a = Assigner::default();
        let (ports, moved) = a
            .choose(
                &[port(Some(8080), 8080, false), port(Some(5432), 5432, false)],
                &[],
                true,
                &taken_set(&[8080, 18080, 5432]),
            )
            .unwrap();
        assert_eq!(hosts(&ports), [Some(28080), Some(15432)]);
        assert_eq!(
            moved,
            [
                Moved {
                    container: 8080,
                    declared: 8080,
                    chosen: 28080
                },
                Moved {
                    container: 5432,
                    declared: 5432,
                    chosen: 15432
                }
            ]
        );
    }

    #[test]
    fn a_fixed_port_is_that_port_or_blocked() {
        let mut a = Assigner::default();
        let fixed = [port(Some(5432), 5432, true)];
        assert_eq!(
            a.choose(&fixed, &[], true, &taken_set(&[5432]))
                .unwrap_err(),
            Blocked { port: 5432 }
        );
        let (ports, _) = a.choose(&fixed, &[], true, &taken_set(&[])).unwrap();
        assert_eq!(hosts(&ports), [Some(5432)]);
    }

    #[test]
    fn the_containers_current_port_wins_even_over_a_free_declared_one() {
        // It holds 18080 itself: that counts as free for it.
        let choose = |declared: u16, keep: bool| {
            Assigner::default()
                .choose(
                    &[port(Some(declared), 8080, false)],
                    &[(8080, 18080)],
                    keep,
                    &taken_set(&[18080]),
                )
                .unwrap()
        };
        let (ports, moved) = choose(8080, true);
        assert_eq!(hosts(&ports), [Some(18080)]);
        assert!(moved.is_empty(), "a kept port is no news");
        // Unless the person declared another port since: they get that one.
        let (ports, _) = choose(8081, false);
        assert_eq!(hosts(&ports), [Some(8081)]);
    }

    #[test]
    fn no_two_mappings_get_one_port_and_substitutes_avoid_declared_ones() {
        let services = [crate::config::model::Service {
            ports: vec![port(Some(18080), 80, false)],
            ..test_service("web")
        }];
        let mut a = Assigner::new(&services);
        let (first, _) = a
            .choose(
                &[port(Some(8080), 8080, false)],
                &[],
                true,
                &taken_set(&[8080]),
            )
            .unwrap();
        // 18080 is web's own declared port: the substitute skips it.
        assert_eq!(hosts(&first), [Some(28080)]);
        let (second, _) = a
            .choose(
                &[port(Some(8080), 8081, false)],
                &[],
                true,
                &taken_set(&[8080]),
            )
            .unwrap();
        assert_eq!(hosts(&second), [Some(38080)], "28080 went to the first");
        let (web, _) = a
            .choose(&services[0].ports, &[], true, &taken_set(&[]))
            .unwrap();
        assert_eq!(hosts(&web), [Some(18080)]);
    }

    #[test]
    fn mappings_without_a_host_port_are_left_to_the_engine() {
        let mut a = Assigner::default();
        let (ports, _) = a
            .choose(&[port(None, 80, false)], &[], true, &taken_set(&[]))
            .unwrap();
        assert_eq!(hosts(&ports), [None]);
    }

    #[test]
    fn candidates_step_by_ten_thousand_then_walk() {
        let c: Vec<u16> = candidates(8080).take(7).collect();
        assert_eq!(c, [18080, 28080, 38080, 48080, 58080, 8081, 8082]);
        let high: Vec<u16> = candidates(65534).take(3).collect();
        assert_eq!(high, [65535, 65533, 65532]);
        assert!(candidates(1024).all(|p| p > 1024));
    }

    fn test_service(name: &str) -> crate::config::model::Service {
        let dir = std::env::temp_dir();
        let opts = crate::config::LoadOptions {
            cwd: dir.clone(),
            ..Default::default()
        };
        let text = format!("[services.{name}]\nimage = \"x\"\n");
        let stack =
            crate::config::parse(&text, "dev.toml", &dir.join("dev.toml"), &dir, &opts).unwrap();
        stack.services[name].clone()
    }
}
