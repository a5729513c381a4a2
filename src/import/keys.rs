//! Which keys of the Compose files have no `dev.toml` equivalent.
//!
//! The typed reading in [`super::compose`] skips what it does not know, so
//! this module reads the same files a second time as a plain tree, merges the
//! trees in file order, and walks the result against the list of keys that
//! import carries over. Everything else becomes a [`Warning`], so that nothing
//! is lost without the user hearing of it. `x-` extensions are skipped
//! quietly, as Compose itself does. Healthcheck timing (`interval`,
//! `retries`, …) becomes the probe's `ready_timeout`; `devenv` probes with
//! its own fast backoff, which is the point of the `ready` key.

use std::collections::BTreeSet;

use super::yaml::Node;
use super::Warning;

const TOP_LEVEL: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "include",
];

const SERVICE: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "depends_on",
    "healthcheck",
    "restart",
    "user",
    "working_dir",
    "profiles",
    "develop",
    "networks",
    "extends",
    "links",
    "extra_hosts",
];

/// Sub-keys carried over, for the service keys that hold mappings.
const NESTED: &[(&str, &[&str])] = &[
    ("build", &["context", "dockerfile", "target", "args"]),
    ("ports", &["target", "published", "host_ip", "protocol"]),
    // A tmpfs mount is reported whole, its settings with it.
    (
        "volumes",
        &["type", "source", "target", "read_only", "tmpfs"],
    ),
    ("env_file", &["path", "required"]),
    (
        "healthcheck",
        &[
            "test",
            "disable",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
        ],
    ),
    ("develop", &["watch"]),
];

const WATCH: &[&str] = &["path", "action", "target", "ignore", "exec"];

const VOLUME: &[&str] = &["driver", "driver_opts", "external", "name"];

/// Lists what the merged document sets that `dev.toml` cannot express.
pub(crate) fn unsupported(doc: &Node, warnings: &mut Vec<Warning>) {
    for (key, _) in doc.entries() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            warnings.push(Warning::new(None, key));
        }
    }
    if let Some(volumes) = doc.get("volumes") {
        for (name, volume) in volumes.entries() {
            for (key, _) in volume.entries() {
                // `name` is kept for an external volume (the one `up`
                // mounts); devenv names the volumes it makes itself.
                let external = volume
                    .get("external")
                    .is_some_and(|e| e.scalar().is_none_or(|flag| flag == "true"));
                if !VOLUME.contains(&key.as_str()) || (key == "name" && !external) {
                    warnings.push(Warning::new(None, format!("volumes.{name}.{key}")));
                }
            }
        }
    }
    let Some(services) = doc.get("services") else {
        return;
    };
    for (name, service) in services.entries() {
        for (key, value) in service.entries() {
            if !SERVICE.contains(&key.as_str()) {
                warnings.push(Warning::new(Some(name.as_str()), key));
                continue;
            }
            let mut nested = BTreeSet::new();
            if let Some((_, allowed)) = NESTED.iter().find(|(parent, _)| parent == key) {
                let maps = match value {
                    Node::Seq(items) => items.iter().collect(),
                    map => vec![map],
                };
                for map in maps {
                    for (sub, _) in map.entries() {
                        if !allowed.contains(&sub.as_str()) {
                            nested.insert(format!("{key}.{sub}"));
                        }
                    }
                }
            }
            match key.as_str() {
                "depends_on" => depends_on(value, &mut nested),
                "develop" => watch(value, &mut nested),
                _ => {}
            }
            warnings.extend(
                nested
                    .into_iter()
                    .map(|key| Warning::new(Some(name.as_str()), key)),
            );
        }
    }
    networks(doc, services, warnings);
}

fn depends_on(value: &Node, nested: &mut BTreeSet<String>) {
    for (_, condition) in value.entries() {
        for (key, setting) in condition.entries() {
            let default = match key.as_str() {
                "condition" => continue,
                "restart" => "false",
                "required" => "true",
                _ => "",
            };
            if setting.scalar() != Some(default) {
                nested.insert(format!("depends_on.{key}"));
            }
        }
    }
}

fn watch(develop: &Node, nested: &mut BTreeSet<String>) {
    for rule in develop.get("watch").map(Node::items).unwrap_or_default() {
        for (key, value) in rule.entries() {
            if !WATCH.contains(&key.as_str()) {
                nested.insert(format!("develop.watch.{key}"));
            } else if key == "exec" {
                for (sub, _) in value.entries().filter(|(sub, _)| *sub != "command") {
                    nested.insert(format!("develop.watch.exec.{sub}"));
                }
            }
        }
    }
}

/// `devenv` puts a project on one network. Compose stacks that declare a
/// single plain network for every service (as Sail does with `sail`) mean
/// the same and import quietly; anything finer is reported.
fn networks(doc: &Node, services: &Node, warnings: &mut Vec<Warning>) {
    let mut used = BTreeSet::new();
    for (name, service) in services.entries() {
        match service.get("networks") {
            None => {
                used.insert("default".to_owned());
            }
            Some(Node::Map(attached)) => {
                used.extend(attached.keys().cloned());
                // `aliases`, `ipv4_address`, …: each said, with its network.
                for (network, settings) in attached {
                    for (key, _) in settings.entries() {
                        warnings.push(
                            Warning::new(Some(name.as_str()), format!("networks.{key}"))
                                .with_detail(format!("on network `{network}`")),
                        );
                    }
                }
            }
            Some(list) => {
                used.extend(
                    list.items()
                        .iter()
                        .filter_map(Node::scalar)
                        .map(str::to_owned),
                );
            }
        }
    }
    if used.len() > 1 {
        for (name, service) in services.entries() {
            let warned = warnings.iter().any(|w| {
                w.service.as_deref() == Some(name.as_str()) && w.key.starts_with("networks")
            });
            if service.get("networks").is_some() && !warned {
                warnings.push(Warning::new(Some(name.as_str()), "networks"));
            }
        }
    }
    for (name, network) in doc.get("networks").map(Node::entries).into_iter().flatten() {
        let plain = network
            .entries()
            .all(|(key, value)| key == "driver" && value.scalar() == Some("bridge"));
        if !plain {
            warnings.push(Warning::new(None, format!("networks.{name}")));
        }
    }
}
