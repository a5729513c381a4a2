//! `devenv import`: turns Compose files into a `dev.toml`.
//!
//! How it works: each file is checked against the Compose specification's
//! JSON schema, so that what Compose refuses is refused with its reason
//! ([`schema`]), then read as a plain YAML tree ([`yaml`]), every
//! document of it, with its variables given Compose's meaning ([`vars`]),
//! its relative paths rebased and its `include:` and `extends:` resolved
//! ([`load`]); the trees are merged in order by Compose's rules, read into
//! the typed subset of the Compose specification that has a `dev.toml`
//! equivalent ([`compose`]), converted ([`convert`], healthchecks in
//! [`probe`]) and laid out as TOML
//! by hand ([`render`]). Every key left behind is named in a [`Warning`]
//! ([`keys`]). Variable references such as `${DB_PASSWORD:-secret}` are
//! kept where `devenv` interpolates them itself, from the same `.env`.

mod compose;
mod convert;
mod error;
mod keys;
mod load;
mod probe;
mod render;
mod schema;
mod vars;
mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use vars::Vars;
use yaml::Node;

pub use error::ImportError;

/// The result of an import: the `dev.toml` text and what it left out.
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    pub warnings: Vec<Warning>,
    /// What else the user should know: unset variables, a `.env` left behind.
    pub notes: Vec<String>,
}

/// A Compose key that `dev.toml` cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The service that sets the key; `None` for a top-level key.
    pub service: Option<String>,
    /// The key, with its parents for nested keys: `deploy`, `build.ssh`.
    pub key: String,
    /// Which value was left out, when the key alone does not say.
    pub detail: Option<String>,
}

impl Warning {
    fn new(service: Option<&str>, key: impl Into<String>) -> Warning {
        Warning {
            service: service.map(str::to_owned),
            key: key.into(),
            detail: None,
        }
    }

    fn with_detail(self, detail: String) -> Warning {
        Warning {
            detail: Some(detail),
            ..self
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            Some(service) => write!(f, "service `{service}`: `{}` not carried over", self.key)?,
            None => write!(f, "`{}` not carried over", self.key)?,
        }
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// Converts Compose files, given as `(path, contents)` and merged in order
/// like `docker compose -f a.yml -f b.yml`, into `dev.toml` text for the
/// folder `out_dir`. `lookup` is the environment Compose would interpolate
/// from: the process's, then the project's `.env`.
pub fn import_compose(
    files: &[(PathBuf, String)],
    out_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Imported, ImportError> {
    let project = files
        .first()
        .map(|(path, _)| load::absolute(path.parent().unwrap_or(Path::new(""))))
        .unwrap_or_default();
    let mut vars = Vars::new(lookup);
    let out_dir = load::absolute(out_dir);
    let mut tree = Node::Map(Default::default());
    let mut warnings = Vec::new();
    {
        let mut loader = load::Loader::new(&mut vars, out_dir.clone());
        for (path, text) in files {
            let node = loader.file(path, text, &project)?;
            yaml::merge(&mut tree, node, &[]);
        }
        warnings.append(&mut loader.warnings);
    }
    tree.strip_tags();
    let file = compose::ComposeFile::deserialize(yaml::NodeDeserializer(&tree)).map_err(|err| {
        ImportError::Invalid {
            message: err.to_string(),
        }
    })?;
    let stack = convert::Stack::from_compose(file, &mut vars, &mut warnings)?;
    keys::unsupported(&tree, &mut warnings);
    let mut seen = Vec::new();
    warnings.retain(|w| {
        let new = !seen.contains(w);
        seen.push(w.clone());
        new
    });
    // Report in the order of the output: top-level keys, then by service.
    warnings.sort_by_key(|w| {
        w.service.as_ref().map(|name| {
            stack
                .services
                .get_index_of(name)
                .map_or(usize::MAX, |i| i + 1)
        })
    });
    let mut notes: Vec<String> = vars
        .unset
        .iter()
        .map(|(name, services)| {
            let by = match services.len() {
                0 => String::new(),
                _ => format!(" (in {})", names(services.iter())),
            };
            format!(
                "variable `{name}` is not set{by}: Compose reads it as an empty string, and so does `dev.toml`, where it is `${{{name}-}}`"
            )
        })
        .collect();
    if out_dir != project && project.join(".env").is_file() {
        notes.push(format!(
            "`{}` is read by devenv from beside `dev.toml`: copy it to `{}`",
            project.join(".env").display(),
            out_dir.display()
        ));
    }
    Ok(Imported {
        toml: render::render(&stack, &warnings),
        warnings,
        notes,
    })
}

/// `a`, `b` and `c`, each in backticks.
fn names<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let items: Vec<String> = items.map(|item| format!("`{item}`")).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// One line per key not carried over, naming every service that set it.
pub fn grouped(warnings: &[Warning]) -> Vec<String> {
    let mut keys: IndexMap<(Option<bool>, &str), Vec<&Warning>> = IndexMap::new();
    for warning in warnings {
        keys.entry((warning.service.as_ref().map(|_| true), warning.key.as_str()))
            .or_default()
            .push(warning);
    }
    keys.into_iter()
        .map(|((_, key), list)| {
            let mut services: Vec<String> = Vec::new();
            let mut details: Vec<String> = Vec::new();
            for w in &list {
                if let Some(service) = &w.service {
                    if !services.contains(service) {
                        services.push(service.clone());
                    }
                }
                if let Some(detail) = &w.detail {
                    if !details.contains(detail) {
                        details.push(detail.clone());
                    }
                }
            }
            let mut line = format!("`{key}` not carried over");
            if !services.is_empty() {
                let word = if services.len() == 1 {
                    "service"
                } else {
                    "services"
                };
                line.push_str(&format!(" from {word} {}", names(services.iter())));
            }
            if !details.is_empty() {
                line.push_str(&format!(": {}", details.join("; ")));
            }
            line
        })
        .collect()
}

fn parse<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ImportError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| ImportError::yaml(path, text, &err))
}

/// Compose file format 1 put services at the top level; later formats are
/// all read as the Compose specification, whatever `version` says.
fn check_version(path: &Path, text: &str, node: &Node) -> Result<(), ImportError> {
    match node.get("version") {
        Some(Node::Scalar(version)) => {
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.trim().parse::<u32>().ok());
            if major.is_some_and(|major| major >= 2) {
                return Ok(());
            }
            let at = text.find("version").and_then(|key| {
                let offset = key + text[key..].find(version.as_str())?;
                Some((offset, version.len()))
            });
            Err(ImportError::unsupported_version(path, text, version, at))
        }
        Some(_) => Ok(()),
        None if node.get("services").is_none() && has_unknown_top_level_keys(node) => {
            Err(ImportError::unsupported_version(path, text, "1", None))
        }
        None => Ok(()),
    }
}

fn has_unknown_top_level_keys(node: &Node) -> bool {
    let Node::Map(entries) = node else {
        return false;
    };
    entries.keys().any(|key| {
        !key.starts_with("x-")
            && ![
                "name", "volumes", "networks", "secrets", "configs", "include", "models",
            ]
            .contains(&key.as_str())
    })
}
