//! Checks across the resolved services: each dependency declared, active
//! and (when waited on to be ready) probed; no dependency cycle; no host
//! port published twice.

use indexmap::IndexMap;

use super::error::{ConfigError, Src};
use super::model;
use super::{is_active, similar, Resolved};

/// Each active service's dependencies are declared, active, and (when
/// waited on to be ready) have a probe.
pub(super) fn dependencies(
    src: &Src,
    all: &Resolved<'_>,
    on: &[String],
) -> Result<(), ConfigError> {
    let active = |profiles: &[String]| is_active(profiles, on);
    for (name, (svc, _, raw_svc)) in all {
        if !active(&svc.profiles) {
            continue;
        }
        for dep in svc.depends_on.keys() {
            let span = raw_svc.depends_on.as_ref().map_or(0..0, |d| d.span());
            match all.get(dep) {
                None => {
                    let mut help = format!(
                        "known services: {}",
                        all.keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    if let Some(close) = all.keys().find(|k| similar(k, dep)) {
                        help = format!("did you mean `{close}`? {help}");
                    }
                    return Err(ConfigError::invalid(
                        src,
                        span,
                        format!("service `{name}` depends on unknown service `{dep}`"),
                        "unknown service",
                        Some(help),
                    ));
                }
                Some((d, _, _)) if !active(&d.profiles) => {
                    return Err(ConfigError::invalid(
                        src,
                        span,
                        format!(
                            "service `{name}` depends on `{dep}`, which is only in profile(s) {}",
                            d.profiles.join(", ")
                        ),
                        "not enabled",
                        Some(format!("pass `--profile {}`", d.profiles[0])),
                    ));
                }
                // Compose refuses this too: with nothing to probe, "ready"
                // would silently mean "started".
                Some((d, _, _))
                    if svc.depends_on[dep] == model::Condition::Ready && d.ready.is_none() =>
                {
                    let example = d
                        .ports
                        .first()
                        .map(|p| format!("ready = {{ tcp = {} }}", p.container))
                        .unwrap_or_else(|| "ready = { exec = [\"…\"] }".to_string());
                    return Err(ConfigError::invalid(
                        src,
                        span,
                        format!(
                            "service `{name}` waits for `{dep}` to be ready, but `{dep}` has no `ready` probe"
                        ),
                        "nothing to wait on",
                        Some(format!(
                            "add a probe to `{dep}` (e.g. `{example}`), or wait for `started`"
                        )),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The active services' dependencies have no cycle (reported whole, at
/// its first service's name).
pub(super) fn cycles(
    src: &Src,
    all: &Resolved<'_>,
    services: &IndexMap<String, model::Service>,
) -> Result<(), ConfigError> {
    let deps: IndexMap<String, Vec<String>> = services
        .iter()
        .map(|(k, s)| (k.clone(), s.depends_on.keys().cloned().collect()))
        .collect();
    if let Err(cycle) = crate::graph::levels(&deps) {
        let span = all[&cycle[0]].1.clone();
        return Err(ConfigError::Cycle {
            cycle: cycle
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" → "),
            src: src.named(),
            span: span.into(),
        });
    }
    Ok(())
}

/// Two services publishing one host port would fail at start; say so now.
pub(super) fn host_ports(
    src: &Src,
    all: &Resolved<'_>,
    services: &IndexMap<String, model::Service>,
) -> Result<(), ConfigError> {
    // A port on every address (no IP, `0.0.0.0`, `::`) clashes with the same
    // port on any one address: the engine would fail half-way through `up`.
    let wildcard = |ip: &Option<String>| {
        ip.as_deref()
            .is_none_or(|ip| ip == "0.0.0.0" || ip == "::" || ip == "[::]")
    };
    let mut seen: Vec<(Option<String>, u16, model::Protocol, &str)> = Vec::new();
    for (name, svc) in services {
        for p in &svc.ports {
            let Some(host) = p.host else { continue };
            let clash = seen.iter().find(|(ip, port, proto, _)| {
                *port == host
                    && *proto == p.protocol
                    && (ip == &p.host_ip || wildcard(ip) || wildcard(&p.host_ip))
            });
            let clash = clash.map(|(_, _, _, other)| *other);
            seen.push((p.host_ip.clone(), host, p.protocol, name));
            if let Some(other) = clash {
                if other != name {
                    return Err(ConfigError::invalid(
                        src,
                        all[name].1.clone(),
                        format!("services `{other}` and `{name}` both publish host port {host}"),
                        "this service",
                        Some(
                            "give one of them another host port in `ports` (or `ports = []`)"
                                .into(),
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
