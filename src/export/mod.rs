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
pub mod ci;
mod config;
mod helm;
mod inputs;
mod layout;
mod names;
mod objects;
mod policy;
mod routing;
mod settings;
mod storage;
mod workloads;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use check::{Change, Drift, INTENDED};

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
    /// The checkout's commit, the app's image tag unless one is given.
    pub commit: Option<String>,
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
    /// A Helm chart rendering the same objects, one values file per environment.
    Helm,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExportError {
    #[error("service `{service}` cannot be a Kubernetes name: it {reason}")]
    #[diagnostic(help("rename the service in dev.toml"))]
    Name {
        service: String,
        reason: &'static str,
    },
    #[error("env key `{key}` of service `{service}` cannot be a ConfigMap or Secret key")]
    EnvKey { service: String, key: String },
    #[error("the {place} of service `{service}` holds a secret value its container has no env key for: `{shown}`")]
    #[diagnostic(help("give `{service}` the value in `env` (a secret name such as `DB_PASSWORD`), so the manifest can name the key instead of the value"))]
    SecretInCommand {
        service: String,
        place: &'static str,
        /// The command with the secret masked.
        shown: String,
    },
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
    #[error("no image tag for {env}: this is not a git checkout and no tag was given")]
    #[diagnostic(help(
        "pass `--tag`, or set `tag` in `[k8s]`; `latest` is used in dev only unless given"
    ))]
    NoTag { env: Env },
    #[error("services `{first}` and `{second}` get the same Kubernetes name `{name}`")]
    #[diagnostic(help("rename one of them in dev.toml"))]
    NameClash {
        first: String,
        second: String,
        name: String,
    },
    #[error("image tag `{tag}` cannot end the name of Job `{job}`")]
    #[diagnostic(help("use a tag of lowercase letters, digits, `.` and `-` (a Job's name follows the tag it runs, 63 characters at most), e.g. `--tag 1.4.2`"))]
    JobTag { tag: String, job: String },
    #[error("cannot read `{path}`: {message}")]
    Existing { path: PathBuf, message: String },
    #[error("`--ci` writes the deploy steps of a Kustomize tree or a Helm chart, not of `--format plain`")]
    #[diagnostic(help("pass `--format kustomize` (the default) or `--format helm`: the flavour the committed manifests are in"))]
    CiFormat,
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
        Format::Helm => {
            let mut per_env = Vec::new();
            for env in Env::ALL {
                per_env.push((env, objects::build(stack, &settings, env)?));
            }
            let mut images = Vec::new();
            for service in stack.services.values().filter(|s| s.build.is_some()) {
                let image = settings.app_image(stack, service, Env::Production)?;
                // A registry's port is not a tag; a tag Docker would refuse is split as written.
                let split = match crate::image_ref::ImageRef::parse(&image) {
                    Ok(image) => Some((image.name(), image.tag_or_latest().to_string())),
                    Err(_) => image
                        .rsplit_once(':')
                        .map(|(repository, tag)| (repository.to_string(), tag.to_string())),
                };
                if let Some((repository, tag)) = split {
                    images.push((settings.name(&service.name).to_string(), repository, tag));
                }
            }
            helm::chart(&per_env, &settings, &images)
        }
    }
}

/// Pure: what staging and production need from the operator before they
/// deploy, one line per input naming the key that provides it.
pub fn inputs(stack: &Stack, opts: &ExportOptions) -> Result<Vec<String>, ExportError> {
    let settings = Settings::read(stack, opts)?;
    let envs: Vec<Env> = match (opts.env, opts.format) {
        (Some(env), _) => vec![env],
        (None, Format::Plain) => vec![Env::Dev],
        (None, _) => Env::ALL.to_vec(),
    };
    let mut lines = Vec::new();
    for env in envs {
        let objects = objects::build(stack, &settings, env)?;
        lines.extend(inputs::missing(&settings, env, &objects));
        lines.extend(inputs::left_out(stack, env));
        lines.extend(inputs::untagged(env, &objects));
    }
    Ok(lines)
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
    // A tag that only follows the checkout's commit is not configuration: a
    // tree exported at an earlier commit (every committed tree: the commit
    // that holds it comes after) is compared with the tag it holds.
    if opts.tag.is_none() && settings.stack.tag.is_none() {
        if let Some(tag) = tree_tag(stack, opts, existing)? {
            let opts = ExportOptions {
                tag: Some(tag),
                ..opts.clone()
            };
            return check(stack, &opts, existing);
        }
    }
    let ignore: Vec<String> = settings
        .stack
        .ignore_drift
        .iter()
        .map(|entry| entry.get_ref().clone())
        .collect();
    let ignore = &ignore;
    if opts.format == Format::Helm || existing.contains_key(Path::new("Chart.yaml")) {
        let opts = ExportOptions {
            format: Format::Helm,
            ..opts.clone()
        };
        return check::compare_chart(&render(stack, &opts)?, existing, ignore);
    }
    let rendered = render(stack, opts)?;
    // One environment's overlay against a full tree: the other overlays are not drift.
    let existing: BTreeMap<PathBuf, String> = match (opts.format, opts.env) {
        (Format::Kustomize, Some(env)) => existing
            .iter()
            .filter(|(path, _)| {
                let top = path
                    .components()
                    .next()
                    .map(|c| c.as_os_str().to_os_string());
                match top.as_ref().and_then(|t| t.to_str()) {
                    Some("overlays") => path.starts_with(format!("overlays/{env}")),
                    Some(dir) => rendered.keys().any(|p| p.starts_with(dir)),
                    None => true,
                }
            })
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect(),
        _ => existing.clone(),
    };
    check::compare(&rendered, &existing, ignore)
}

/// The app image's tag in a tree export wrote: a chart's `image.tag`, else
/// the tag after the first app repository named in the manifests.
fn tree_tag(
    stack: &Stack,
    opts: &ExportOptions,
    existing: &BTreeMap<PathBuf, String>,
) -> Result<Option<String>, ExportError> {
    if let Some(values) = existing.get(Path::new("values.yaml")) {
        let values: serde_json::Value = serde_saphyr::from_str(values).unwrap_or_default();
        if let Some(tag) = values["image"]["tag"].as_str() {
            return Ok(Some(tag.to_string()));
        }
    }
    let settings = Settings::read(
        stack,
        &ExportOptions {
            tag: Some("tag".into()),
            ..opts.clone()
        },
    )?;
    for service in stack.services.values().filter(|s| s.build.is_some()) {
        let image = settings.app_image(stack, service, Env::Production)?;
        let Some(repository) = image.strip_suffix(":tag") else {
            continue;
        };
        let needle = format!("image: {repository}:");
        for text in existing.values() {
            let Some(at) = text.find(&needle) else {
                continue;
            };
            let tag: String = text[at + needle.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            if !tag.is_empty() {
                return Ok(Some(tag));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod regressions;
#[cfg(test)]
mod releases;
#[cfg(test)]
pub(crate) mod tests;
