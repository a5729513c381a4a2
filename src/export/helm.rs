//! `--format helm`: a chart that renders, for each environment, the very
//! objects its Kustomize overlay builds.
//!
//! How it works: like the Kustomize tree, the chart is derived, not written
//! by hand. Every environment is rendered in full; each object becomes a
//! template in which whatever is alike in the environments where it exists
//! is written out, and whatever differs is a "hole" filled from the values
//! of the chosen environment: `environments.<env>.<kind>/<name>` maps a
//! field path (`spec.replicas`, `data.DB_HOST`,
//! `spec.template.spec.containers[app].resources`) to its value there, and
//! a missing path leaves the field out. `environment` picks the
//! environment (`values.yaml` says `dev`; `values-<env>.yaml` sets it and
//! repeats that environment's holes, to edit there). The app's image is
//! `image.repositories.<service>` with `image.tag`, for `--set image.tag=…`.
//!
//! Helm's conventions: the chart holds no Namespace (Helm refuses one it
//! does not own, and `helm upgrade --install -n NS --create-namespace`
//! makes it first); every object is in `.Release.Namespace`. There are no
//! hooks: a Job running the app's image is named after the tag
//! (`<service>-migrate-<hash>-<tag>`), so a new `image.tag` is a new Job
//! rather than a change to an immutable one, and the app pods wait for its
//! migrations themselves, as under `kubectl apply -k`. So the objects are
//! those of the overlay, less its Namespace.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::layout::{namespaced, to_yaml};
use super::objects::Object;
use super::settings::Settings;
use super::{Env, ExportError};

/// One environment's holes: object key -> field path -> value.
type Holes = BTreeMap<String, BTreeMap<String, Value>>;

/// Each object, by kind and name: its rendering (file, value) in each environment it exists in.
type Homes = IndexMap<(String, String), Vec<(Env, String, Value)>>;

/// List items matched across environments: item id, the item in each environment.
type Items<'v> = Vec<(String, Vec<Option<&'v Value>>)>;

struct Chart<'a> {
    envs: Vec<Env>,
    holes: BTreeMap<Env, Holes>,
    /// App image `repository:tag` -> the service whose repository it is.
    images: &'a [(String, String, String)],
}

pub(crate) fn chart(
    per_env: &[(Env, Vec<Object>)],
    settings: &Settings,
    images: &[(String, String, String)],
) -> Result<BTreeMap<PathBuf, String>, ExportError> {
    let mut homes: Homes = IndexMap::new();
    for (env, objects) in per_env {
        for (group, value) in namespaced(objects, settings, *env) {
            if value["kind"] == "Namespace" {
                continue;
            }
            let key = (
                value["kind"].as_str().unwrap_or_default().to_string(),
                value["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            homes.entry(key).or_default().push((*env, group, value));
        }
    }
    let mut chart = Chart {
        envs: Vec::new(),
        holes: BTreeMap::new(),
        images,
    };
    let mut templates: IndexMap<String, Vec<String>> = IndexMap::new();
    for ((kind, name), renderings) in &homes {
        let envs: Vec<Env> = renderings.iter().map(|(env, _, _)| *env).collect();
        chart.envs.clone_from(&envs);
        let object_key = format!("{}/{name}", kind.to_ascii_lowercase());
        let values: Vec<Option<&Value>> = renderings.iter().map(|(_, _, v)| Some(v)).collect();
        let mut lines = vec![format!(
            "{{{{- $holes := index (index $.Values.environments $.Values.environment | default dict) {} | default dict }}}}",
            quote(&object_key)
        )];
        chart.map(&object_key, "", &values, 0, &mut lines);
        let body = lines.join("\n");
        let text = if envs == Env::ALL {
            body
        } else {
            let list: Vec<String> = envs.iter().map(|e| format!("{:?}", e.as_str())).collect();
            format!(
                "{{{{- if has $.Values.environment (list {}) }}}}\n{body}\n{{{{- end }}}}",
                list.join(" ")
            )
        };
        templates
            .entry(renderings[0].1.clone())
            .or_default()
            .push(text);
    }

    let mut files = BTreeMap::new();
    let project = &settings.project;
    let tag = images.first().map_or("latest", |(_, _, tag)| tag.as_str());
    files.insert(
        PathBuf::from("Chart.yaml"),
        to_yaml(&[json!({
            "apiVersion": "v2",
            "name": project,
            "description": format!("{project}, as `devenv export --k8s --format helm` derives it from dev.toml"),
            "type": "application",
            "version": "0.1.0",
            "appVersion": tag,
        })])?,
    );
    let image = json!({
        "tag": tag,
        "repositories": images.iter().map(|(service, repository, _)| (service.clone(), Value::String(repository.clone()))).collect::<Map<_, _>>(),
    });
    let holes_of = |env: Env| {
        serde_json::to_value(chart.holes.get(&env).cloned().unwrap_or_default())
            .unwrap_or(Value::Null)
    };
    let all: Map<String, Value> = Env::ALL
        .iter()
        .map(|env| (env.to_string(), holes_of(*env)))
        .collect();
    files.insert(
        PathBuf::from("values.yaml"),
        values_text(
            "Values of the dev environment; `-f values-<env>.yaml` picks another.",
            &json!({ "environment": "dev", "image": image, "environments": all }),
        )?,
    );
    for env in Env::ALL {
        files.insert(
            PathBuf::from(format!("values-{env}.yaml")),
            values_text(
                &format!("The {env} environment: `helm template -f values-{env}.yaml`. Set a field to null to leave it out of the objects."),
                &json!({ "environment": env.as_str(), "environments": { env.as_str(): holes_of(env) } }),
            )?,
        );
    }
    for (group, docs) in templates {
        files.insert(
            PathBuf::from(format!("templates/{group}.yaml")),
            format!(
                "# generated by `devenv export --k8s --format helm`\n{}\n",
                docs.join("\n---\n")
            ),
        );
    }
    Ok(files)
}

fn values_text(note: &str, value: &Value) -> Result<String, ExportError> {
    let text = to_yaml(std::slice::from_ref(value))?;
    Ok(text.replacen('\n', &format!("\n# {note}\n"), 1))
}

/// What list items are matched on across environments.
fn item_key(items: &[&Value]) -> Option<&'static str> {
    ["name", "mountPath", "containerPort", "port", "topologyKey"]
        .into_iter()
        .find(|key| {
            !items.is_empty()
                && items.iter().all(|item| {
                    item.get(*key)
                        .is_some_and(|v| v.is_string() || v.is_number())
                })
        })
}

fn id(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), String::from)
}

impl Chart<'_> {
    /// Emits the entries of a map present (as `Some`) in each environment.
    fn map(
        &mut self,
        object: &str,
        path: &str,
        values: &[Option<&Value>],
        indent: usize,
        out: &mut Vec<String>,
    ) {
        let mut keys: Vec<&String> = Vec::new();
        // The identifying keys first, as in the overlay's files.
        for value in values.iter().flatten() {
            if let Value::Object(map) = value {
                for key in ["apiVersion", "kind", "metadata"]
                    .iter()
                    .filter_map(|k| map.get_key_value(*k).map(|(k, _)| k))
                    .chain(map.keys())
                {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
        // The IAM role goes on the service account: a knob even where no role is set yet.
        let annotations = "annotations".to_string();
        if object.starts_with("serviceaccount/")
            && path == "metadata"
            && !keys.contains(&&annotations)
        {
            keys.push(&annotations);
        }
        for key in keys {
            let children: Vec<Option<&Value>> =
                values.iter().map(|v| v.and_then(|v| v.get(key))).collect();
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            self.entry(object, &child_path, &yaml_key(key), &children, indent, out);
        }
    }

    fn entry(
        &mut self,
        object: &str,
        path: &str,
        key: &str,
        values: &[Option<&Value>],
        indent: usize,
        out: &mut Vec<String>,
    ) {
        let pad = " ".repeat(indent);
        let present: Vec<&Value> = values.iter().flatten().copied().collect();
        let everywhere = present.len() == values.len();
        if path == "metadata.namespace" && everywhere {
            // The release's namespace, as `helm upgrade --install -n NS` says.
            out.push(format!(
                "{pad}{key}: {{{{ $.Release.Namespace | toJson }}}}"
            ));
            return;
        }
        if path == "metadata.name" && object.starts_with("job/") && everywhere {
            // A Job running the app's image is named after its tag (see workloads).
            let tag = self.images.first().map(|(_, _, tag)| format!("-{tag}"));
            if let Some(stem) = tag
                .as_deref()
                .and_then(|tag| present[0].as_str()?.strip_suffix(tag))
                .filter(|_| present.iter().all(|v| *v == present[0]))
            {
                out.push(format!(
                    "{pad}{key}: {{{{ printf \"%s-%s\" {} $.Values.image.tag | toJson }}}}",
                    quote(stem)
                ));
                return;
            }
        }
        let knob = is_knob(object, path);
        // Metadata is walked, for its namespace.
        if !knob
            && path != "metadata"
            && everywhere
            && present.iter().all(|v| *v == present[0])
            && !has_braces(present[0])
        {
            self.literal(&format!("{pad}{key}:"), present[0], indent, out);
            return;
        }
        if !knob && everywhere && present.iter().all(|v| v.is_object()) {
            out.push(format!("{pad}{key}:"));
            self.map(object, path, values, indent + 2, out);
            return;
        }
        if everywhere && !knob {
            if let Some(items) = self.matched_items(&present) {
                out.push(format!("{pad}{key}:"));
                for (item_id, per_env) in items {
                    let mut lines = Vec::new();
                    self.map(
                        object,
                        &format!("{path}[{item_id}]"),
                        &per_env,
                        indent + 4,
                        &mut lines,
                    );
                    out.push(format!("{pad}  -"));
                    out.extend(lines);
                }
                return;
            }
        }
        // A hole: the value of the chosen environment, or no field at all.
        for (env, value) in self.envs.iter().zip(values) {
            if let Some(value) = value {
                self.holes
                    .entry(*env)
                    .or_default()
                    .entry(object.to_string())
                    .or_default()
                    .insert(path.to_string(), (*value).clone());
            }
        }
        out.push(format!("{{{{- if hasKey $holes {} }}}}", quote(path)));
        out.push(format!(
            "{pad}{key}: {{{{ index $holes {} | toJson }}}}",
            quote(path)
        ));
        out.push("{{- end }}".to_string());
    }

    /// Items of lists alike in length and keys in every environment, matched by key.
    fn matched_items<'v>(&self, lists: &[&'v Value]) -> Option<Items<'v>> {
        let arrays: Vec<&Vec<Value>> = lists.iter().map(|v| v.as_array()).collect::<Option<_>>()?;
        let all: Vec<&Value> = arrays.iter().flat_map(|a| a.iter()).collect();
        let key = item_key(&all)?;
        let first = arrays[0];
        let same_ids = arrays
            .iter()
            .all(|a| a.len() == first.len() && a.iter().zip(first).all(|(x, y)| x[key] == y[key]));
        if !same_ids {
            return None;
        }
        Some(
            first
                .iter()
                .enumerate()
                .map(|(i, item)| (id(&item[key]), arrays.iter().map(|a| Some(&a[i])).collect()))
                .collect(),
        )
    }

    /// A value alike everywhere, written out; an app image becomes the `image` values.
    fn literal(&self, head: &str, value: &Value, indent: usize, out: &mut Vec<String>) {
        let pad = " ".repeat(indent);
        match value {
            Value::Object(map) if !map.is_empty() => {
                out.push(head.to_string());
                for (key, child) in map {
                    self.literal(
                        &format!("{pad}  {}:", yaml_key(key)),
                        child,
                        indent + 2,
                        out,
                    );
                }
            }
            Value::Array(items) if !items.is_empty() => {
                out.push(head.to_string());
                for item in items {
                    match item {
                        Value::Object(map) if !map.is_empty() => {
                            out.push(format!("{pad}  -"));
                            for (key, child) in map {
                                self.literal(
                                    &format!("{pad}    {}:", yaml_key(key)),
                                    child,
                                    indent + 4,
                                    out,
                                );
                            }
                        }
                        other => out.push(format!("{pad}  - {}", self.scalar(other))),
                    }
                }
            }
            other => out.push(format!("{head} {}", self.scalar(other))),
        }
    }

    fn scalar(&self, value: &Value) -> String {
        if let Value::String(text) = value {
            if let Some((service, _, _)) = self
                .images
                .iter()
                .find(|(_, repository, tag)| *text == format!("{repository}:{tag}"))
            {
                return format!(
                    "{{{{ printf \"%s:%s\" (index $.Values.image.repositories {}) $.Values.image.tag | toJson }}}}",
                    quote(service)
                );
            }
        }
        // JSON scalars are YAML: strings double-quoted, so `on`/`yes` stay strings.
        serde_json::to_string(value).unwrap_or_default()
    }
}

/// The usual knobs, values in every environment even where alike:
/// replicas, autoscaling bounds, resources, the Ingress rules (host) and
/// annotations (certificate), the service account's (IAM role).
fn is_knob(object: &str, path: &str) -> bool {
    let kind = object.split('/').next().unwrap_or_default();
    match kind {
        "deployment" | "statefulset" => {
            path == "spec.replicas"
                || (path.starts_with("spec.template.spec.containers[")
                    && path.ends_with("].resources"))
        }
        "horizontalpodautoscaler" => matches!(path, "spec.minReplicas" | "spec.maxReplicas"),
        "ingress" => matches!(path, "spec.rules" | "metadata.annotations"),
        "serviceaccount" => path == "metadata.annotations",
        _ => false,
    }
}

/// Whether text Helm would read as a template action sits in the value.
fn has_braces(value: &Value) -> bool {
    value.to_string().contains("{{")
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A map key, bare where YAML reads it as the same string.
fn yaml_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !key.starts_with(['-', '.'])
        && !key.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
        );
    if plain {
        key.to_string()
    } else {
        quote(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_yaml_would_read_otherwise_are_quoted() {
        assert_eq!(yaml_key("app.kubernetes.io/name"), "app.kubernetes.io/name");
        assert_eq!(yaml_key("ON"), "\"ON\"");
        assert_eq!(yaml_key("8080"), "\"8080\"");
        assert_eq!(yaml_key("$patch"), "\"$patch\"");
    }
}
