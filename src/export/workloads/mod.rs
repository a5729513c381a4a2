//! One service's workload objects in one environment: its configuration,
//! the Deployment or StatefulSet (or Job, for a one-off), service account,
//! autoscaler, disruption budget, and the migration Job of its hooks.
//! `env` makes its ConfigMap and Secret, `pod` its container and pod,
//! `controllers` the long-running workload around the pod, `jobs` its
//! one-off and migration Jobs, `migrations` when app pods wait for them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::config::SplitEnv;
use super::settings::Settings;
use super::storage::Storage;
use super::{Env, ExportError};
use crate::config::model::{Protocol, Stack};

use super::objects::{labels, selector, Object, Placed};
use super::routing::ingress;

mod controllers;
mod env;
mod jobs;
mod migrations;
mod pod;

/// What every part of one service's workload reads: the service as
/// placed, the settings and environment, its labels, storage and env.
struct Workload<'a> {
    stack: &'a Stack,
    placed: &'a Placed<'a>,
    settings: &'a Settings,
    env: Env,
    name: &'a str,
    labels: BTreeMap<String, String>,
    /// The name of its ConfigMap and of its Secret.
    env_name: String,
    split: SplitEnv,
    storage: Storage,
}

impl Workload<'_> {
    /// Whether its env has secret values (a Secret its pods read).
    fn has_secrets(&self) -> bool {
        !self.split.secret.is_empty()
    }
}

/// One service's objects in one environment: its env, its workload (or
/// one-off Job), routing and migration Job.
pub(crate) fn service_objects(
    stack: &Stack,
    placed: &Placed<'_>,
    split: SplitEnv,
    settings: &Settings,
    env: Env,
) -> Result<Vec<Object>, ExportError> {
    let name = placed.name();
    let storage = Storage::of(placed, settings)?;
    let work = Workload {
        stack,
        placed,
        settings,
        env,
        name,
        labels: labels(settings, name, placed.component()),
        env_name: format!("{name}-env"),
        split: env::with_pgdata(placed, split, &storage),
        storage,
    };
    let sources = env::sources(&work)?;
    let mut objects = sources.objects;
    let commands = env::Commands::of(&work);
    let container = pod::container(&work, sources.env_from, &commands)?;
    let pod = pod::pod(&work, &container);
    let provide = sources.provide.as_deref();
    if placed.one_off {
        // A task others wait on: it runs once per release and is reached by nobody.
        objects.push(jobs::one_off(&work, pod, provide)?);
    } else {
        let template = pod::template(&work, pod::served(&work, pod.clone(), &container));
        objects.extend(controllers::objects(&work, template, provide)?);
        if placed.ingress {
            objects.push(Object::new(
                name,
                &ingress(placed, &work.labels, settings, env),
            )?);
        }
        if let Some(job) = jobs::migration(&work, pod, &commands)? {
            objects.push(job);
        }
    }
    if placed.app {
        objects.iter_mut().for_each(versioned);
    }
    Ok(objects)
}

/// The recommended `app.kubernetes.io/version` label, the app image's tag,
/// on the workloads that run it and their pods (never in a selector); the
/// overlays copy the rendered tag into it (see `layout`).
fn versioned(object: &mut Object) {
    if !matches!(object.kind(), "Deployment" | "Job") {
        return;
    }
    let image = object.value["spec"]["template"]["spec"]["containers"][0]["image"].as_str();
    let Some(tag) = image
        .and_then(|image| crate::image_ref::ImageRef::parse(image).ok())
        .and_then(|image| image.tag().map(String::from))
    else {
        return;
    };
    for path in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(labels) = object
            .value
            .pointer_mut(path)
            .and_then(|l| l.as_object_mut())
        {
            labels.insert(VERSION.into(), tag.clone().into());
        }
    }
    object.app_tag = Some(tag);
}

/// The label naming the app's version.
pub(crate) const VERSION: &str = "app.kubernetes.io/version";

/// Names the Secret and the keys the operator must provide (`devenv.dev/provide-secret`).
fn note_secret(meta: &mut ObjectMeta, secret: &str, keys: Option<&str>) {
    if let Some(keys) = keys {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(PROVIDE_SECRET.into(), format!("{secret}:{keys}"));
    }
}

/// Annotation on a workload whose Secret the operator creates: `name:KEY1,KEY2`.
pub(crate) const PROVIDE_SECRET: &str = "devenv.dev/provide-secret";

/// Checkov findings a workload accepts on purpose, each with its reason
/// (checkov reads these annotations and lists the checks as skipped).
fn checkov_skips(placed: &Placed<'_>, secrets: bool) -> BTreeMap<String, String> {
    let mut skips = vec![
        "CKV_K8S_43=images are referenced by tag, as built and pushed by CI; a digest is known only after the push",
    ];
    if secrets {
        skips.push(
            "CKV_K8S_35=Laravel reads its configuration from environment variables, not files",
        );
    }
    if !placed.one_off && pod::probe_handler(placed).is_none() {
        // A queue worker or a scheduler: no port to ask and no `ready` probe.
        skips.push("CKV_K8S_8=it serves no port and has no `ready` probe; Kubernetes restarts it when its process exits");
        skips.push(
            "CKV_K8S_9=it serves no port, so no Service routes to it and readiness gates nothing",
        );
    }
    let tag = placed.service.image.tag();
    if !placed.app && matches!(tag, None | Some("latest")) {
        skips.push("CKV_K8S_14=a local stand-in runs the image as the stack file names it; pin a tag there");
    }
    skips
        .into_iter()
        .enumerate()
        .map(|(i, skip)| (format!("checkov.io/skip{}", i + 1), skip.to_string()))
        .collect()
}

pub(crate) fn selector_with(
    settings: &Settings,
    name: &str,
    component: &str,
) -> BTreeMap<String, String> {
    let mut labels = selector(settings, name);
    labels.insert("app.kubernetes.io/component".into(), component.into());
    labels
}

pub(crate) fn protocol(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}
