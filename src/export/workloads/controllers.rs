//! The long-running workload around a pod: the app's service account, the
//! cluster Service, a StatefulSet for a service with claims or else a
//! Deployment (its replicas, rollout, disruption budget), the autoscaler.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ServiceAccount};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{checkov_skips, note_secret, selector_with, Workload};
use crate::export::objects::{meta, Object, Role};
use crate::export::routing::cluster_service;
use crate::export::settings::Autoscale;
use crate::export::ExportError;

/// The objects that run and reach a long-running service's pods, with the
/// Secret keys to provide noted on its workload.
pub(super) fn objects(
    work: &Workload<'_>,
    template: PodTemplateSpec,
    provide: Option<&str>,
) -> Result<Vec<Object>, ExportError> {
    let (placed, name) = (work.placed, work.name);
    let pod_selector = LabelSelector {
        match_labels: Some(selector_with(work.settings, name, placed.component())),
        ..Default::default()
    };
    let autoscale = autoscale(work);
    let mut objects = Vec::new();
    if placed.app {
        objects.push(Object::new(name, &service_account(work))?);
    }
    if !placed.ports.is_empty() {
        objects.push(Object::new(
            name,
            &cluster_service(placed, &work.labels, work.settings, work.storage.stateful),
        )?);
    }
    let mut workload_meta = meta(name, &work.labels);
    workload_meta.annotations = Some(checkov_skips(placed, work.has_secrets()));
    note_secret(&mut workload_meta, &work.env_name, provide);
    if work.storage.stateful {
        objects.push(Object::new(
            name,
            &stateful_set(work, workload_meta, pod_selector, template),
        )?);
    } else {
        let replicas = replicas(work);
        objects.push(Object::new(
            name,
            &deployment(
                work,
                workload_meta,
                pod_selector.clone(),
                template,
                autoscale.is_none().then_some(replicas),
            ),
        )?);
        let min = autoscale.map_or(replicas, |a| a.min);
        if placed.app && placed.role != Role::Scheduler && min >= 2 {
            objects.push(Object::new(name, &disruption_budget(work, pod_selector))?);
        }
    }
    if let Some(scale) = autoscale {
        objects.push(Object::new(name, &autoscaler(work, scale))?);
    }
    Ok(objects)
}

/// Servers autoscale; a queue worker only where its own `hpa` says
/// (queue length, not CPU, is its load); a scheduler never.
fn autoscale(work: &Workload<'_>) -> Option<Autoscale> {
    let (placed, settings) = (work.placed, work.settings);
    let service = &placed.service.name;
    match placed.role {
        _ if !placed.app => None,
        Role::Server => settings.autoscale(service, work.env),
        Role::Worker if settings.service(service).hpa.is_some() => {
            settings.autoscale(service, work.env)
        }
        Role::Worker | Role::Scheduler => None,
    }
}

/// The app's own service account, with the cloud role it assumes, if any.
fn service_account(work: &Workload<'_>) -> ServiceAccount {
    let mut account_meta = meta(work.name, &work.labels);
    if let Some(role) = &work.settings.stack.env(work.env).role_arn {
        account_meta.annotations = Some(BTreeMap::from([(
            "eks.amazonaws.com/role-arn".to_string(),
            role.clone(),
        )]));
    }
    ServiceAccount {
        metadata: account_meta,
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// One pod with its own claims, reached under the service's name.
fn stateful_set(
    work: &Workload<'_>,
    metadata: ObjectMeta,
    selector: LabelSelector,
    template: PodTemplateSpec,
) -> StatefulSet {
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(work.name.to_string()),
            selector,
            template,
            volume_claim_templates: Some(work.storage.claim_templates(work.settings, &work.labels)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How many pods a Deployment runs when nothing autoscales it.
fn replicas(work: &Workload<'_>) -> i32 {
    let (placed, settings) = (work.placed, work.settings);
    match placed.role {
        _ if !placed.app => 1,
        Role::Server => settings.replicas(&placed.service.name, work.env),
        Role::Worker => settings.worker_replicas(&placed.service.name, work.env),
        // Two schedulers would run every task twice.
        Role::Scheduler => 1,
    }
}

/// The Deployment, noting for CI the image it builds; `replicas` is left
/// out where an autoscaler owns the count.
fn deployment(
    work: &Workload<'_>,
    metadata: ObjectMeta,
    selector: LabelSelector,
    template: PodTemplateSpec,
    replicas: Option<i32>,
) -> Deployment {
    let placed = work.placed;
    let mut metadata = metadata;
    if let Some(build) = &placed.service.build {
        // Tells CI which image to build and push for this Deployment.
        let notes = metadata.annotations.get_or_insert_with(BTreeMap::new);
        notes.insert(
            "devenv.dev/dockerfile".to_string(),
            build.dockerfile.clone(),
        );
        if let Some(target) = work.settings.build_target(placed.service) {
            notes.insert("devenv.dev/build-target".into(), target);
        }
    }
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas,
            selector,
            strategy: placed.app.then(|| strategy(placed.role)),
            template,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How an app Deployment rolls out.
fn strategy(role: Role) -> DeploymentStrategy {
    match role {
        // The old scheduler stops before the new one starts.
        Role::Scheduler => DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        },
        // Never drop below the wanted capacity while rolling out.
        Role::Server | Role::Worker => DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        },
    }
}

/// At most one pod down at a time for voluntary disruptions.
fn disruption_budget(work: &Workload<'_>, selector: LabelSelector) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(work.name, &work.labels),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Deployment scaled on its pods' CPU use.
fn autoscaler(work: &Workload<'_>, scale: Autoscale) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: meta(work.name, &work.labels),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: work.name.to_string(),
            },
            min_replicas: Some(scale.min),
            max_replicas: scale.max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(scale.cpu),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
