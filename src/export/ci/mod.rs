//! `devenv export --ci github`: the stack in, GitHub Actions workflows out,
//! the pipeline of the Kubernetes export (pull request checks, a security
//! scan, images pushed to ECR, staging, then production after an approval).
//!
//! How it works: what the workflows need is read from the same model and
//! `[k8s]` tables as the manifests ([`Pipeline::read`]): the images to build
//! (one per distinct build of the services devenv builds, named as the
//! export names them), the Deployments to wait for and the namespace of
//! each environment, the AWS inputs. [`workflows`] writes the three files
//! as text with every value from the stack in an `env:` entry (quoted, never
//! spliced into a script), every job's `permissions` spelled out, and every
//! action pinned to a full commit. Pure, like the rest of export.

mod workflows;

pub use workflows::{DEPLOY, PULL_REQUEST, SCAN};

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::settings::Settings;
use super::{Env, ExportError, ExportOptions, Format};
use crate::config::model::Stack;

/// The command the pull-request workflow runs the tests with: the README's
/// (its CI section shows it; a test holds the two together).
pub const TEST_COMMAND: &str = "devenv test --junit reports/junit.xml";

/// Where [`TEST_COMMAND`] leaves the JUnit report, for the upload.
pub const JUNIT_PATH: &str = "reports/junit.xml";

/// The CI systems export writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    Github,
}

/// What `--ci` needs besides [`ExportOptions`].
#[derive(Debug, Clone)]
pub struct CiOptions {
    pub ci: Ci,
    /// Where the manifests are committed, relative to the stack file's
    /// folder (`k8s`, the Kubernetes export's default output).
    pub manifests: String,
}

/// One image the main workflow builds and pushes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Image {
    /// The repository the cluster pulls from (registry included), without a tag.
    pub repository: String,
    /// Build context and Dockerfile, relative to the stack file's folder.
    pub context: String,
    pub dockerfile: String,
    /// The multi-stage target the cluster runs (`prod` by default).
    pub target: Option<String>,
}

/// An environment the main workflow deploys to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub env: Env,
    pub namespace: String,
    /// The Deployments whose rollout is waited for (and undone on failure).
    pub deployments: Vec<String>,
    /// The labels the overlay's Namespace carries (the chart holds none).
    pub namespace_labels: Vec<(String, String)>,
    pub cluster: Option<String>,
    pub role_arn: Option<String>,
}

/// Everything the workflows are written from.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub flavour: Format,
    pub manifests: String,
    /// The Helm release (the project's name as a DNS label).
    pub release: String,
    pub images: Vec<Image>,
    /// `[k8s] tag` when set: every build is tagged with it (the export's rule);
    /// otherwise the commit, as `git rev-parse --short=12 HEAD` prints it.
    pub fixed_tag: Option<String>,
    pub region: Option<String>,
    pub staging: Target,
    pub production: Target,
}

impl Pipeline {
    pub fn read(stack: &Stack, opts: &ExportOptions, ci: &CiOptions) -> Result<Self, ExportError> {
        if opts.format == Format::Plain {
            return Err(ExportError::CiFormat);
        }
        // The repository names do not depend on the tag; any tag reads them.
        let settings = Settings::read(
            stack,
            &ExportOptions {
                tag: Some("ci".into()),
                ..opts.clone()
            },
        )?;
        let mut images: Vec<Image> = Vec::new();
        for service in stack.services.values() {
            let Some(build) = &service.build else {
                continue;
            };
            let image = settings.app_image(stack, service, Env::Production)?;
            let repository = crate::image_ref::ImageRef::parse(&image)
                .map_or_else(|_| image.trim_end_matches(":ci").to_string(), |r| r.name());
            if images.iter().any(|i| i.repository == repository) {
                continue;
            }
            let context = relative(&stack.root, &build.context);
            images.push(Image {
                repository,
                context: if context.is_empty() {
                    ".".into()
                } else {
                    context
                },
                dockerfile: build.dockerfile.clone(),
                target: settings.build_target(service),
            });
        }
        let region = settings.stack.region.clone().or_else(|| {
            let registry = settings.stack.image_registry.as_deref()?;
            ecr_region(registry).map(String::from)
        });
        Ok(Self {
            flavour: opts.format,
            manifests: ci.manifests.trim_end_matches('/').to_string(),
            release: settings.project.clone(),
            images,
            fixed_tag: opts
                .tag
                .clone()
                .or_else(|| stack.k8s.as_ref().and_then(|k| k.tag.clone())),
            region,
            staging: target(stack, &settings, Env::Staging)?,
            production: target(stack, &settings, Env::Production)?,
        })
    }

    /// What the workflows need and `[k8s]` does not say, one line each with
    /// the key that provides it.
    pub fn missing(&self, settings_registry: bool) -> Vec<String> {
        let mut lines = Vec::new();
        if !settings_registry {
            lines.push("ci: the images have no registry to be pushed to: set `image_registry` in `[k8s]` (the ECR repositories' prefix, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop`)".to_string());
        }
        if self.region.is_none() {
            lines.push(
                "ci: no AWS region for ECR and EKS: set `region` in `[k8s]` (an ECR `image_registry` gives its own)"
                    .to_string(),
            );
        }
        for target in [&self.staging, &self.production] {
            let env = target.env;
            if target.cluster.is_none() {
                lines.push(format!(
                    "ci: {env}: no EKS cluster to deploy to: set `cluster` in `[k8s]` or `[k8s.{env}]`"
                ));
            }
            if target.role_arn.is_none() {
                let what = if env == Env::Staging {
                    "push the images and deploy to staging"
                } else {
                    "deploy to production"
                };
                lines.push(format!(
                    "ci: {env}: no IAM role for GitHub OIDC to {what}: set `deploy_role_arn` in `[k8s.{env}]`"
                ));
            }
        }
        lines
    }
}

/// `to` from `root`, with `..` where it lies outside: the workflows run in
/// the checkout, where no absolute host path means anything.
fn relative(root: &std::path::Path, to: &std::path::Path) -> String {
    let root: Vec<_> = root.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = root.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); root.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// An ECR registry's region: `<account>.dkr.ecr.<region>.amazonaws.com[/…]`.
fn ecr_region(registry: &str) -> Option<&str> {
    let host = registry.split('/').next()?;
    let rest = host.split_once(".dkr.ecr.")?.1;
    let region = rest.split_once('.')?.0;
    (!region.is_empty()).then_some(region)
}

fn target(stack: &Stack, settings: &Settings, env: Env) -> Result<Target, ExportError> {
    let objects = super::objects::build(stack, settings, env)?;
    let deployments = objects
        .iter()
        .filter(|o| o.kind() == "Deployment")
        .map(|o| o.name().to_string())
        .collect();
    let namespace_labels = objects
        .iter()
        .find(|o| o.kind() == "Namespace")
        .and_then(|o| o.value["metadata"]["labels"].as_object())
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let own = settings.stack.env(env);
    Ok(Target {
        env,
        namespace: settings.namespace(env),
        deployments,
        namespace_labels,
        cluster: own.cluster.clone().or(settings.stack.cluster.clone()),
        role_arn: own.deploy_role_arn.clone(),
    })
}

/// Pure: the workflow files, path relative to the output folder -> text.
pub fn render(
    stack: &Stack,
    opts: &ExportOptions,
    ci: &CiOptions,
) -> Result<BTreeMap<PathBuf, String>, ExportError> {
    let pipeline = Pipeline::read(stack, opts, ci)?;
    Ok(match ci.ci {
        Ci::Github => workflows::github(&pipeline),
    })
}

/// Pure: what the workflows need from `[k8s]` that it does not say.
pub fn inputs(
    stack: &Stack,
    opts: &ExportOptions,
    ci: &CiOptions,
) -> Result<Vec<String>, ExportError> {
    let pipeline = Pipeline::read(stack, opts, ci)?;
    Ok(pipeline.missing(registry_of(stack, opts).is_some()))
}

/// What is set outside the repository, on GitHub, once: always listed.
pub fn github_settings() -> Vec<String> {
    vec![
        "GitHub: the repository variable `DEVENV_GIT`: the git URL devenv is installed from (the workflows pin its version)".into(),
        "GitHub: environments `staging` and `production`, with required reviewers on `production` (the manual approval)".into(),
        "AWS: each `deploy_role_arn` trusts the GitHub OIDC provider for this repository (`token.actions.githubusercontent.com`, `sub` = `repo:OWNER/REPO:environment:<env>`)".into(),
    ]
}

fn registry_of(stack: &Stack, opts: &ExportOptions) -> Option<String> {
    opts.image_registry
        .clone()
        .or_else(|| stack.k8s.as_ref().and_then(|k| k.image_registry.clone()))
}

#[cfg(test)]
mod tests;
