//! What says "this container runs exactly this config": one hash of the
//! parts of a service that shape its container plus its image id (the
//! `devenv.config-hash` label), and one short hash per part
//! (`devenv.config-parts`), so a recreate can name what changed.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::config::model::Service;

/// Only what shapes the container counts: a new watch rule, hook, probe or
/// k8s setting must not recreate it.
pub(super) fn shape(service: &Service) -> Service {
    let mut shape = service.clone();
    shape.watch.clear();
    shape.hooks = Default::default();
    shape.ready = None;
    shape.ready_timeout = Default::default();
    shape.depends_on.clear();
    shape.k8s = None;
    shape
}

/// The label value that says "this container runs exactly this config".
pub fn config_hash(service: &Service, image_id: &str) -> String {
    // Only what shapes the container counts: a new watch rule, hook, probe or
    // k8s setting must not recreate it.
    let shape = shape(service);
    let mut h = Sha256::new();
    // The model's JSON form is stable (IndexMap keeps file order, BTreeMap sorts).
    h.update(serde_json::to_vec(&shape).expect("the model serialises"));
    // Secrets serialise as a mask; a changed password must still recreate.
    for secret in shape.secret_values() {
        h.update((secret.len() as u64).to_le_bytes());
        h.update(secret.as_bytes());
    }
    h.update(image_id.as_bytes());
    let digest = h.finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The part a recreate names when the declared ports changed.
pub const PORTS_PART: &str = "ports";

/// Which part of the config a field of the model belongs to, as a recreate names it.
fn part_of(field: &str) -> &'static str {
    match field {
        "image" => "image",
        "command" | "entrypoint" => "command",
        "env" => "env",
        "ports" => PORTS_PART,
        "volumes" | "mount" => "volumes",
        "build" | "fallback" => "build",
        "user" | "working_dir" => "user",
        "restart" => "restart",
        "extra_hosts" => "extra_hosts",
        _ => "settings",
    }
}

/// A short hash per part of the config (`command=…,env=…,image=…`), the
/// label that lets the next plan say which part changed.
pub fn config_parts(service: &Service, image_id: &str) -> String {
    let shape = shape(service);
    let mut parts: BTreeMap<&str, Sha256> = BTreeMap::new();
    let value = serde_json::to_value(&shape).expect("the model serialises");
    for (field, v) in value.as_object().expect("a service is a table") {
        let h = parts.entry(part_of(field)).or_default();
        h.update(field.as_bytes());
        h.update(serde_json::to_vec(v).expect("JSON values serialise"));
    }
    // Secrets serialise as a mask; a changed password must still show.
    let secret = |h: &mut Sha256, s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    for v in shape.env.values().filter(|v| v.secret) {
        secret(parts.entry("env").or_default(), &v.value);
    }
    let args = shape
        .build
        .iter()
        .chain(&shape.fallback)
        .flat_map(|b| b.args.values());
    for v in args.filter(|v| v.secret) {
        secret(parts.entry("build").or_default(), &v.value);
    }
    parts
        .entry("image")
        .or_default()
        .update(image_id.as_bytes());
    parts
        .into_iter()
        .map(|(k, h)| {
            let d = h.finalize();
            let short: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("{k}={short}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The parts that differ between a container's parts label and the wanted
/// one; `config` when the container has no such label (made by an older
/// devenv) or no part tells.
pub fn changed_parts(old: Option<&str>, new: &str) -> Vec<String> {
    let parse = |s: &str| -> BTreeMap<String, String> {
        s.split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let Some(old) = old.filter(|o| !o.is_empty()) else {
        return vec!["config".into()];
    };
    let (old, new) = (parse(old), parse(new));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    if changed.is_empty() {
        vec!["config".into()]
    } else {
        changed
    }
}
