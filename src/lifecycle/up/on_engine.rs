//! The stack as its containers run on this engine, before `up` plans it:
//! `sync` folders become bind mounts where the engine sees the host's
//! files, and ports without a host address go on the loopback address of
//! a local engine.

use crate::config::model::Stack;
use crate::engine::Engine;

/// The stack as its containers run on this engine: `sync` folders become
/// bind mounts where the engine can see the host's files, and on an engine
/// of this machine a port whose mapping names no host address is published
/// on the loopback address only (a database with the preset's password is
/// not for the café's network); `[project] bind_all_interfaces` or an
/// address in the mapping says otherwise. A remote engine's ports stay on
/// all its interfaces: loopback there would reach no one here.
pub(super) fn as_run(engine: &Engine, stack: &Stack) -> Stack {
    let mut run = stack.clone();
    for svc in run.services.values_mut() {
        crate::watch::source::prepare(svc, &engine.endpoint);
    }
    let local = engine.endpoint.is_local();
    publish_on_loopback(&mut run, local, local && has_ipv6_loopback());
    run
}

/// Gives every mapping without a host address the loopback ones, on an
/// engine of this machine and unless the stack asks for all interfaces:
/// `127.0.0.1`, and `[::1]` at the same port where this machine has an
/// IPv6 loopback (`localhost` is both; a port the engine picks has no
/// same port to share, so it stays on IPv4).
fn publish_on_loopback(stack: &mut Stack, local_engine: bool, ipv6_loopback: bool) {
    if !local_engine || stack.bind_all_interfaces {
        return;
    }
    for port in stack.services.values_mut().flat_map(|s| &mut s.ports) {
        if port.host_ip.is_none() {
            port.host_ip = Some(LOOPBACK.to_string());
            port.loopback_v6 = ipv6_loopback && port.host.is_some();
        }
    }
}

/// Whether this machine has an IPv6 loopback to publish on (a host or
/// container without IPv6 has none, and the engine would refuse `[::1]`).
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Where a port without a host address is published on a local engine.
pub const LOOPBACK: &str = "127.0.0.1";

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(extra: &str) -> Stack {
        crate::config::load_toml(&format!(
            "{extra}[services.db]\nimage = \"postgres:16\"\nports = [\"5432:5432\", \"0.0.0.0:8080:80\", \"9000\"]\n"
        ))
    }

    fn addresses(stack: &Stack) -> Vec<Option<String>> {
        stack.services["db"]
            .ports
            .iter()
            .map(|p| p.host_ip.clone())
            .collect()
    }

    #[test]
    fn a_local_engine_publishes_on_loopback_unless_the_mapping_or_the_project_says_otherwise() {
        let mut s = stack("");
        publish_on_loopback(&mut s, true, true);
        let lo = Some(LOOPBACK.to_string());
        assert_eq!(
            addresses(&s),
            vec![lo.clone(), Some("0.0.0.0".into()), lo.clone()]
        );
        // `[::1]` too, where the port is devenv's to choose and only there.
        assert_eq!(v6(&s), [true, false, false]);

        let mut no_v6 = stack("");
        publish_on_loopback(&mut no_v6, true, false);
        assert_eq!(addresses(&no_v6), addresses(&s));
        assert_eq!(v6(&no_v6), [false, false, false]);

        let mut remote = stack("");
        publish_on_loopback(&mut remote, false, true);
        assert_eq!(addresses(&remote), vec![None, Some("0.0.0.0".into()), None]);
        assert_eq!(v6(&remote), [false, false, false]);

        let mut all = stack("[project]\nbind_all_interfaces = true\n\n");
        publish_on_loopback(&mut all, true, true);
        assert_eq!(addresses(&all), vec![None, Some("0.0.0.0".into()), None]);
        assert_eq!(v6(&all), [false, false, false]);
    }

    fn v6(stack: &Stack) -> Vec<bool> {
        stack.services["db"]
            .ports
            .iter()
            .map(|p| p.loopback_v6)
            .collect()
    }
}
