//! `--check`: what export would write now against a tree written earlier
//! (and maybe edited by hand), object by object and field by field.
//!
//! Objects are matched by directory, kind and name, not by file, so moving
//! an object between files is not drift. Comments and key order are not
//! compared; values of Secrets are never shown.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::ExportError;

/// One difference between the stack and the compared tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The file export writes the object to (or where the tree has it).
    pub file: PathBuf,
    /// `Kind/name`.
    pub object: String,
    /// Field path inside the object, like `data.DB_HOST`; empty for the whole object.
    pub field: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// In the stack, not in the tree; the value, unless secret.
    Added(Option<String>),
    /// In the tree, not in the stack.
    Missing(Option<String>),
    /// Both have it, with different values.
    Changed {
        stack: Option<String>,
        tree: Option<String>,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.field.is_empty() {
            String::new()
        } else {
            format!(" `{}`", self.field)
        };
        write!(f, "{}: `{}`{at}", self.file.display(), self.object)?;
        let shown =
            |value: &Option<String>| value.as_ref().map_or(String::new(), |v| format!(" ({v})"));
        match &self.change {
            Change::Added(value) => {
                write!(f, " is in the stack but not in the tree{}", shown(value))
            }
            Change::Missing(value) => {
                write!(f, " is in the tree but not in the stack{}", shown(value))
            }
            Change::Changed {
                stack: Some(stack),
                tree: Some(tree),
            } => {
                write!(f, " differs: stack has {stack}, tree has {tree}")
            }
            Change::Changed { .. } => write!(f, " differs (secret value, not shown)"),
        }
    }
}

type Objects = IndexMap<(PathBuf, String), (PathBuf, Value)>;

/// Marks an object added to a generated tree by hand as intended: `--check`
/// neither reports it nor its file in the kustomization's `resources`.
pub const INTENDED: &str = "devenv.dev/intended";

pub(crate) fn compare(
    rendered: &BTreeMap<PathBuf, String>,
    existing: &BTreeMap<PathBuf, String>,
    ignore: &[String],
) -> Result<Vec<Drift>, ExportError> {
    let ours = objects(rendered)?;
    let mut theirs = objects(existing)?;
    accept_standard_edits(&ours, &mut theirs);
    let mut drifts = Vec::new();
    for (key, (file, value)) in &ours {
        let object = key.1.clone();
        let secret = object.starts_with("Secret/");
        match theirs.get(key) {
            None => drifts.push(Drift {
                file: file.clone(),
                object,
                field: String::new(),
                change: Change::Added(None),
            }),
            Some((_, old)) => {
                let mut changes = Vec::new();
                diff(String::new(), value, old, secret, &mut changes);
                drifts.extend(changes.into_iter().map(|(field, change)| Drift {
                    file: file.clone(),
                    object: object.clone(),
                    field,
                    change,
                }));
            }
        }
    }
    for (key, (file, _)) in theirs.iter().filter(|(key, _)| !ours.contains_key(*key)) {
        drifts.push(Drift {
            file: file.clone(),
            object: key.1.clone(),
            field: String::new(),
            change: Change::Missing(None),
        });
    }
    drifts.retain(|drift| !ignore.iter().any(|entry| ignored(entry, drift)));
    Ok(drifts)
}

/// `Kind/name` ignores the whole object, `Kind/name:path` that field and what is under it.
fn ignored(entry: &str, drift: &Drift) -> bool {
    let (object, field) = entry.split_once(':').unwrap_or((entry, ""));
    if object != drift.object {
        return false;
    }
    field.is_empty()
        || drift.field == field
        || drift
            .field
            .strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// Leaves out what people and tools add to a generated tree on purpose:
/// objects marked [`INTENDED`] (and their files in `resources`), and the
/// `images` entries of `kustomize edit set image` for images export writes
/// (the usual CI bump of the tag).
fn accept_standard_edits(ours: &Objects, theirs: &mut Objects) {
    let mut intended: Vec<(PathBuf, PathBuf)> = Vec::new();
    theirs.retain(|(dir, _), (file, value)| {
        let marked = !value["metadata"]["annotations"][INTENDED].is_null();
        if marked {
            let name = file.file_name().map(PathBuf::from).unwrap_or_default();
            intended.push((dir.clone(), name));
        }
        !marked
    });
    let mut repositories = Vec::new();
    for (_, value) in ours.values() {
        images(value, &mut repositories);
    }
    for ((dir, id), (_, value)) in theirs.iter_mut() {
        if id != "Kustomization" {
            continue;
        }
        let Value::Object(map) = value else { continue };
        if let Some(Value::Array(resources)) = map.get_mut("resources") {
            resources.retain(|r| {
                !intended
                    .iter()
                    .any(|(d, f)| d == dir && r.as_str() == f.to_str())
            });
        }
        if let Some(Value::Array(entries)) = map.get_mut("images") {
            entries.retain(|entry| {
                !entry["name"]
                    .as_str()
                    .is_some_and(|name| repositories.iter().any(|r| r == name))
            });
            if entries.is_empty() {
                map.remove("images");
            }
        }
    }
}

/// The repositories (image without tag) of every container in `value`.
fn images(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(image)) = map.get("image") {
                // A registry's port is not a tag; an unparsable image is compared whole.
                let repository = crate::image_ref::ImageRef::parse(image)
                    .map_or_else(|_| image.clone(), |r| r.name());
                out.push(repository);
            }
            map.values().for_each(|v| images(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| images(v, out)),
        _ => {}
    }
}

/// A chart: its templates compared as text (line by line), its
/// `Chart.yaml` and values files as data.
pub(crate) fn compare_chart(
    rendered: &BTreeMap<PathBuf, String>,
    existing: &BTreeMap<PathBuf, String>,
    ignore: &[String],
) -> Result<Vec<Drift>, ExportError> {
    let is_template = |path: &PathBuf| path.starts_with("templates");
    let data = |files: &BTreeMap<PathBuf, String>| {
        files
            .iter()
            .filter(|(path, _)| !is_template(path))
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut drifts = compare(&data(rendered), &data(existing), ignore)?;
    for (path, text) in rendered.iter().filter(|(path, _)| is_template(path)) {
        let object = "template".to_string();
        let Some(theirs) = existing.get(path) else {
            drifts.push(Drift {
                file: path.clone(),
                object,
                field: String::new(),
                change: Change::Added(None),
            });
            continue;
        };
        let (a, b): (Vec<&str>, Vec<&str>) = (text.lines().collect(), theirs.lines().collect());
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            let line = |l: Option<&&str>| l.map(|l| format!("`{}`", l.trim()));
            drifts.push(Drift {
                file: path.clone(),
                object,
                field: format!("line {}", i + 1),
                change: Change::Changed {
                    stack: line(a.get(i)).or(Some("no line".into())),
                    tree: line(b.get(i)).or(Some("no line".into())),
                },
            });
        }
    }
    for path in existing
        .keys()
        .filter(|path| is_template(path) && !rendered.contains_key(*path))
    {
        drifts.push(Drift {
            file: path.clone(),
            object: "template".into(),
            field: String::new(),
            change: Change::Missing(None),
        });
    }
    Ok(drifts)
}

fn objects(files: &BTreeMap<PathBuf, String>) -> Result<Objects, ExportError> {
    let mut objects = IndexMap::new();
    for (path, text) in files {
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(text).map_err(|err| ExportError::Existing {
                path: path.clone(),
                message: err.to_string(),
            })?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        for doc in docs.into_iter().filter(|doc| !doc.is_null()) {
            // A values file is no object; its file name tells which it is.
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            let kind = doc["kind"].as_str().unwrap_or(file_name);
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            // A kustomization names no object; its directory tells which one it is.
            let id = if name.is_empty() || doc["kind"].is_null() {
                kind.to_string()
            } else {
                format!("{kind}/{name}")
            };
            objects.insert((dir.clone(), id), (path.clone(), doc));
        }
    }
    Ok(objects)
}

/// What lists are matched on, so that an inserted env entry is one change, not many.
fn item_key(items: &[Value]) -> Option<&'static str> {
    ["name", "mountPath", "containerPort", "port"]
        .into_iter()
        .find(|key| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|item| item.get(*key).is_some_and(|v| !v.is_object()))
        })
}

fn diff(path: String, ours: &Value, theirs: &Value, secret: bool, out: &mut Vec<(String, Change)>) {
    if ours == theirs {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    // Under a secret name (`data.DB_PASSWORD`, `env[STRIPE_SECRET]`) a value
    // is not shown either, whatever object holds it; a URL's password never.
    let hide = |name: &str| secret || crate::config::secret::is_secret_name(name);
    let shown = |value: &Value, hidden: bool| {
        (!hidden).then(|| {
            crate::config::secret::Masker::default()
                .mask(&short(value))
                .into_owned()
        })
    };
    let show = |value: &Value| shown(value, secret);
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => diff(join(key), value, other, hide(key), out),
                    None => out.push((join(key), Change::Added(shown(value, hide(key))))),
                }
            }
            for (key, value) in b.iter().filter(|(key, _)| !a.contains_key(*key)) {
                out.push((join(key), Change::Missing(shown(value, hide(key)))));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let all: Vec<Value> = a.iter().chain(b).cloned().collect();
            let Some(key) = item_key(&all) else {
                // Items without a name (`patches`, `egress` rules): by position,
                // so that the report shows the element that differs.
                for i in 0..a.len().max(b.len()) {
                    let at = format!("{path}[{i}]");
                    match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => diff(at, x, y, secret, out),
                        (Some(x), None) => out.push((at, Change::Added(show(x)))),
                        (None, Some(y)) => out.push((at, Change::Missing(show(y)))),
                        (None, None) => {}
                    }
                }
                return;
            };
            let id = |item: &Value| {
                item[key]
                    .as_str()
                    .map_or_else(|| item[key].to_string(), String::from)
            };
            for item in a {
                let at = format!("{path}[{}]", id(item));
                let hidden = hide(&id(item));
                match b.iter().find(|other| other[key] == item[key]) {
                    Some(other) => diff(at, item, other, hidden, out),
                    None => out.push((at, Change::Added(shown(item, hidden)))),
                }
            }
            for item in b
                .iter()
                .filter(|other| !a.iter().any(|item| item[key] == other[key]))
            {
                let hidden = hide(&id(item));
                out.push((
                    format!("{path}[{}]", id(item)),
                    Change::Missing(shown(item, hidden)),
                ));
            }
        }
        _ => out.push((
            path,
            Change::Changed {
                stack: show(ours),
                tree: show(theirs),
            },
        )),
    }
}

/// A value on one line: scalars as YAML would show them, collections as JSON, cut short.
fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(76).collect();
        format!("{cut}…`")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> BTreeMap<PathBuf, String> {
        BTreeMap::from([(PathBuf::from(path), text.to_string())])
    }

    #[test]
    fn env_entries_are_matched_by_name() {
        let ours = file(
            "a.yaml",
            "kind: ConfigMap\nmetadata:\n  name: app-env\ndata:\n  A: '1'\n  NEW: x\n",
        );
        let theirs = file(
            "a.yaml",
            "kind: ConfigMap\nmetadata:\n  name: app-env\ndata:\n  A: '2'\n",
        );
        let drifts = compare(&ours, &theirs, &[]).unwrap();
        assert_eq!(drifts.len(), 2);
        assert_eq!(drifts[0].field, "data.A");
        assert_eq!(
            drifts[1].to_string(),
            "a.yaml: `ConfigMap/app-env` `data.NEW` is in the stack but not in the tree (`x`)"
        );
        assert!(compare(&ours, &theirs, &["ConfigMap/app-env:data".into()])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn secret_values_are_not_shown() {
        let ours = file(
            "s.yaml",
            "kind: Secret\nmetadata:\n  name: app-env\nstringData:\n  P: one\n",
        );
        let theirs = file(
            "s.yaml",
            "kind: Secret\nmetadata:\n  name: app-env\nstringData:\n  P: two\n",
        );
        let drifts = compare(&ours, &theirs, &[]).unwrap();
        let text = drifts[0].to_string();
        assert!(!text.contains("one") && !text.contains("two"), "{text}");
    }

    #[test]
    fn r25_values_of_secret_named_keys_are_not_shown_anywhere() {
        // A production password pasted into a Deployment's env, a ConfigMap
        // key named like a secret, a URL with a password: none is printed.
        let deployment = |pw: &str, url: &str| {
            format!(
                "kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        env:\n        - name: DB_PASSWORD\n          value: {pw}\n        - name: CACHE_URL\n          value: {url}\n---\nkind: ConfigMap\nmetadata:\n  name: app-env\ndata:\n  STRIPE_KEY: {pw}-k\n"
            )
        };
        let ours = file(
            "w.yaml",
            &deployment("local-pw-1", "redis://u:local-url-pw@c"),
        );
        let theirs = file(
            "w.yaml",
            &deployment("prod-pw-1", "redis://u:prod-url-pw@c"),
        );
        let text: Vec<String> = compare(&ours, &theirs, &[])
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(text.len(), 3, "{text:?}");
        for secret in ["local-pw-1", "prod-pw-1", "local-url-pw", "prod-url-pw"] {
            assert!(
                !text.iter().any(|t| t.contains(secret)),
                "{secret}: {text:?}"
            );
        }
        // Only an added item under a secret name: still not shown.
        let added = file(
            "w.yaml",
            &deployment("prod-pw-1", "x").replace("DB_PASSWORD", "NEW_TOKEN"),
        );
        let text: Vec<String> = compare(&added, &theirs, &[])
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(!text.iter().any(|t| t.contains("prod-pw-1")), "{text:?}");
    }

    #[test]
    fn prefixes_match_at_field_boundaries() {
        let drift = Drift {
            file: PathBuf::new(),
            object: "ConfigMap/app-env".into(),
            field: "data.APP_KEYS".into(),
            change: Change::Added(None),
        };
        assert!(!ignored("ConfigMap/app-env:data.APP_KEY", &drift));
        assert!(ignored("ConfigMap/app-env:data.APP_KEYS", &drift));
        assert!(ignored("ConfigMap/app-env", &drift));
    }
}
