//! Host ports for `up`: which host port each published mapping gets.
//!
//! # How it works
//!
//! A host port in `ports` is a wish, not a demand: several checkouts of one
//! project (and anything else on the machine) want the same 5432 and 8080,
//! and a taken port must not stop the stack. So for each mapping of a
//! service about to be created, [`Assigner::choose`] takes, in this order, the first
//! host port that nothing else holds:
//!
//! 1. the one its container publishes now (a recreate keeps its port: the
//!    bookmark and the `.env` a person wrote yesterday still work);
//! 2. the declared one;
//! 3. the declared one plus 10000, 20000, … (8080 → 18080: easy to tell
//!    apart), then the ports above it, then those below.
//!
//! A mapping written `{ port = "5432:5432", fixed = true }` gets its
//! declared port or `up` fails, as before. What counts as taken depends on
//! where the engine is: on this machine a port is taken when a socket
//! cannot bind it or a container publishes it; on another machine
//! (`DOCKER_HOST=tcp://…`, `ssh://…`) binding a local socket says nothing,
//! so only the ports the engine's containers publish count, and the
//! engine's own refusal at start (another process holds the port there)
//! makes `up` try the next candidate ([`next_after_clash`]).
//!
//! The config hash of a container is taken from the declared ports, never
//! the chosen ones: a container is not recreated because it got another
//! host port, and the next `up` leaves it (and its port) alone.

use std::collections::HashSet;

use crate::config::model::{Port, Protocol, Service, Stack};
use crate::engine::{Engine, EngineError};
use crate::plan::ContainerSpec;
use crate::report::Reporter;

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
            published: engine.published_host_ports().await?,
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
fn bindable(port: &Port) -> bool {
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

/// A service about to get a new container.
#[derive(Debug, Clone)]
pub struct Creating {
    pub service: String,
    /// The container it replaces, if any.
    pub replaces: Option<String>,
    /// What that container publishes now (container port, host port).
    pub current: Vec<(u16, u16)>,
    /// Its declared ports changed since that container was made: it gets
    /// the new ones, not the ones the old container kept.
    pub ports_changed: bool,
}

/// Chooses the host ports of the services about to get a new container,
/// writes them into `stack` (the run's copy: the config hashes are taken
/// already) and says which moved. Fails, before anything is created, when
/// a fixed port is taken or no port is free.
pub async fn assign(
    engine: &Engine,
    stack: &mut Stack,
    creating: &[Creating],
    reporter: &dyn Reporter,
) -> Result<(), PortError> {
    let publishes = |name: &String| stack.services[name].ports.iter().any(|p| p.host.is_some());
    if !creating.iter().any(|c| publishes(&c.service)) {
        // A no-op `up` asks the engine nothing more.
        return Ok(());
    }
    let in_use = InUse::observe(engine).await?;
    let mut assigner = Assigner::new(stack.services.values());
    for Creating {
        service: name,
        replaces: replacing,
        current,
        ports_changed,
    } in creating
    {
        let mut current = current.clone();
        let svc = stack
            .services
            .get_mut(name)
            .expect("planned services exist");
        if replacing.is_some() && current.is_empty() {
            // Left half-started by an interrupted `up`, the container may
            // hold its ports through the engine's proxy without the engine
            // listing them: they count as its own (a wrong guess is caught
            // by the engine's refusal, and the port moves then).
            current = svc
                .ports
                .iter()
                .filter_map(|p| Some((p.container, p.host?)))
                .filter(|(_, h)| !in_use.published.contains(h))
                .collect();
        }
        let (ports, moved) =
            match assigner.choose(&svc.ports, &current, !ports_changed, &|p| in_use.taken(p)) {
                Ok(chosen) => chosen,
                Err(Blocked { port }) => {
                    return Err(PortError::Taken {
                        service: name.clone(),
                        port,
                        holder: engine.port_holder(port).await,
                    })
                }
            };
        svc.ports = ports;
        for m in moved {
            say_moved(reporter, name, m);
        }
    }
    Ok(())
}

fn say_moved(reporter: &dyn Reporter, service: &str, m: Moved) {
    reporter.notice(&format!(
        "host port {} of `{service}` is taken: publishing its port {} on {} instead",
        m.declared, m.container, m.chosen
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
                say_moved(reporter, &spec.service, moved);
                spec.to_mut().ports = ports;
            }
            Err(_) => return Err(with_holder(engine, taken).await),
        }
        id = engine.create_container(&spec).await?;
    }
    unreachable!("the loop returns")
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

    fn port(host: Option<u16>, container: u16, fixed: bool) -> Port {
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

    fn hosts(ports: &[Port]) -> Vec<Option<u16>> {
        ports.iter().map(|p| p.host).collect()
    }

    fn taken_set(set: &[u16]) -> impl Fn(&Port) -> bool + '_ {
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
