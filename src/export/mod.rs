//! `devenv export --k8s`: the resolved stack model in, Kubernetes manifests
//! out, for three environments.
//!
//! How it works: for each environment, [`objects`] turns the stack into typed
//! k8s-openapi objects (the app, its backing services or their managed
//! replacements, configuration, network policies). [`layout`] then either
//! writes one environment as one multi-document file, or splits the three
//! renderings into a Kustomize tree: objects alike in every environment go
//! to `base/`, the in-cluster backing services to `backing/`, and each
//! overlay carries the patches that turn the base into its environment.
//! [`check`] compares such a tree, object by object, with what export would
//! write now. Everything here is pure: no file, no network, no clock.

mod check;
mod config;
mod layout;
mod names;
mod objects;
mod policy;
mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use check::{Change, Drift};

use crate::config::model::Stack;
use settings::Settings;

/// What to export, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// One environment only; `None` writes all three overlays.
    pub env: Option<Env>,
    pub format: Format,
    /// Overrides `[k8s] image_registry`.
    pub image_registry: Option<String>,
    /// Overrides `[k8s] tag`.
    pub tag: Option<String>,
    /// Istio sidecar injection, also turned on by `[k8s] istio = true`.
    pub istio: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Env {
    Dev,
    Staging,
    Production,
}

impl Env {
    pub const ALL: [Env; 3] = [Env::Dev, Env::Staging, Env::Production];

    pub fn as_str(self) -> &'static str {
        match self {
            Env::Dev => "dev",
            Env::Staging => "staging",
            Env::Production => "production",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `base/`, `backing/` and `overlays/<env>/`.
    #[default]
    Kustomize,
    /// One multi-document file for one environment (dev unless `--env`).
    Plain,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExportError {
    #[error("invalid `[{table}]` table: {message}")]
    Settings { table: String, message: String },
    #[error("`[{table}]` sets `{key}`, which applies to production only")]
    #[diagnostic(help("managed endpoints replace in-cluster services in production; move `{key}` to `[k8s.production]`"))]
    ProductionOnly { table: String, key: &'static str },
    #[error("service `{service}` cannot be a Kubernetes name: it {reason}")]
    #[diagnostic(help("rename the service in dev.toml"))]
    Name {
        service: String,
        reason: &'static str,
    },
    #[error("env key `{key}` of service `{service}` cannot be a ConfigMap or Secret key")]
    EnvKey { service: String, key: String },
    #[error("service `{service}` is needed by `{needed_by}` but has no TCP container port to reach it on")]
    #[diagnostic(help("publish the port in `ports`, give the service a `ready` probe on it, or list it in `[services.{service}.k8s] ports`"))]
    NoPort { service: String, needed_by: String },
    #[error("service `{service}` gets the Ingress but has no TCP container port")]
    #[diagnostic(help("publish a TCP port, or set `[services.{service}.k8s] ingress = false`"))]
    NoIngressPort { service: String },
    #[error(
        "service `{service}` mounts volume `{volume}`, which replicas of a Deployment cannot share"
    )]
    #[diagnostic(help("keep state in a backing service, or list `{target}` in `[services.{service}.k8s] writable` to get a scratch emptyDir"))]
    AppVolume {
        service: String,
        volume: String,
        target: String,
    },
    #[error("cannot read `{path}`: {message}")]
    Existing { path: PathBuf, message: String },
    #[error("cannot serialise `{object}` to YAML: {message}")]
    Yaml { object: String, message: String },
}

impl ExportError {
    /// 2 for bad input (the stack, its `[k8s]` tables, the compared tree), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportError::Yaml { .. } => 1,
            _ => 2,
        }
    }
}

/// Pure: the files to write, path relative to the output dir -> YAML text.
pub fn render(
    stack: &Stack,
    opts: &ExportOptions,
) -> Result<BTreeMap<PathBuf, String>, ExportError> {
    let settings = Settings::read(stack, opts)?;
    match opts.format {
        Format::Plain => {
            let env = opts.env.unwrap_or(Env::Dev);
            let objects = objects::build(stack, &settings, env)?;
            layout::plain(&objects, &settings, env)
        }
        Format::Kustomize => {
            let mut per_env = Vec::new();
            for env in Env::ALL {
                per_env.push((env, objects::build(stack, &settings, env)?));
            }
            layout::kustomize(&per_env, &settings, opts.env)
        }
    }
}

/// Pure: compares what [`render`] would write with the files read from a
/// directory (path relative to it -> text); each drift names the object and
/// what differs. Differences listed in `[k8s] ignore_drift` are left out.
pub fn check(
    stack: &Stack,
    opts: &ExportOptions,
    existing: &BTreeMap<PathBuf, String>,
) -> Result<Vec<Drift>, ExportError> {
    let settings = Settings::read(stack, opts)?;
    let rendered = render(stack, opts)?;
    check::compare(&rendered, existing, &settings.stack.ignore_drift)
}

#[cfg(test)]
pub(crate) mod tests;
