//! `devenv import`: turns Compose files into a `dev.toml`.
//!
//! How it works: each file is read twice with serde-saphyr — once into the
//! typed subset of the Compose specification that has a `dev.toml`
//! equivalent ([`compose`]), once as a plain tree ([`keys`]) so that every
//! key left behind can be named in a [`Warning`] — plus a glance at its
//! `version`. The typed files are
//! converted and merged in order ([`convert`]) and laid out as TOML by hand
//! ([`render`]). Variable references such as `${DB_PASSWORD:-secret}` are
//! kept as written: `devenv` interpolates them itself, from the same `.env`.

mod compose;
mod convert;
mod error;
mod keys;
mod render;

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

pub use error::ImportError;

/// The result of an import: the `dev.toml` text and what it left out.
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    pub warnings: Vec<Warning>,
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
/// like `docker compose -f a.yml -f b.yml`, into `dev.toml` text. The paths
/// only name the files in errors.
pub fn import_compose(files: &[(PathBuf, String)]) -> Result<Imported, ImportError> {
    let mut stack = convert::Stack::default();
    let mut tree: Option<keys::Node> = None;
    let mut warnings = Vec::new();
    for (path, text) in files {
        let node: keys::Node = parse(path, text)?;
        check_version(path, text, &node)?;
        let file: compose::ComposeFile = parse(path, text)?;
        stack.merge(convert::Stack::from_compose(file, &mut warnings));
        match &mut tree {
            Some(tree) => tree.merge(node),
            None => tree = Some(node),
        }
    }
    if stack.services.is_empty() {
        let names: Vec<String> = files
            .iter()
            .map(|(path, _)| format!("`{}`", path.display()))
            .collect();
        return Err(ImportError::NoServices {
            files: names.join(", "),
        });
    }
    if let Some(tree) = &tree {
        keys::unsupported(tree, &mut warnings);
    }
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
    Ok(Imported {
        toml: render::render(&stack, &warnings),
        warnings,
    })
}

fn parse<T: for<'de> Deserialize<'de>>(
    path: &std::path::Path,
    text: &str,
) -> Result<T, ImportError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| ImportError::yaml(path, text, &err))
}

#[derive(Deserialize)]
struct VersionKey {
    version: Option<serde_saphyr::Spanned<String>>,
}

/// Compose file format 1 put services at the top level; later formats are
/// all read as the Compose specification, whatever `version` says.
fn check_version(path: &std::path::Path, text: &str, node: &keys::Node) -> Result<(), ImportError> {
    let VersionKey { version } = parse(path, text)?;
    match version {
        Some(version) => {
            let major = version
                .value
                .split('.')
                .next()
                .and_then(|m| m.trim().parse::<u32>().ok());
            if major.is_some_and(|major| major >= 2) {
                return Ok(());
            }
            Err(ImportError::unsupported_version(
                path,
                text,
                &version.value,
                Some(version.referenced),
            ))
        }
        None if node.get("services").is_none() && has_unknown_top_level_keys(node) => {
            Err(ImportError::unsupported_version(path, text, "1", None))
        }
        None => Ok(()),
    }
}

fn has_unknown_top_level_keys(node: &keys::Node) -> bool {
    let keys::Node::Map(entries) = node else {
        return false;
    };
    entries.keys().any(|key| {
        !key.starts_with("x-")
            && !["name", "volumes", "networks", "secrets", "configs"].contains(&key.as_str())
    })
}
