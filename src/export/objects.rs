//! The stack as typed Kubernetes objects for one environment.
//!
//! Services that devenv builds are the app: Deployment, Service, Ingress,
//! autoscaler, disruption budget, service account, and a Job for the
//! `after_up` hooks. Services run from an image are backing services:
//! StatefulSets with headless Services when they keep data, Deployments
//! otherwise; in production the known ones (PostgreSQL, Redis, MinIO,
//! MailHog) give way to managed endpoints.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, ExecAction, HTTPGetAction, Namespace, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe as K8sProbe,
    ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext, Service as K8sService,
    ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::config::{self, Replacement, SplitEnv};
use super::names;
use super::settings::{Kind, Placement, Resources, Settings};
use super::{Env, ExportError};
use crate::config::model::{Condition, Mount, Probe, Protocol, Service, Stack};

/// One object, already in its JSON shape, and the file it belongs in.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// File stem: the service's name, `namespace` or `network-policies`.
    pub group: String,
    pub value: serde_json::Value,
}

impl Object {
    pub fn new<T: Serialize>(group: &str, object: &T) -> Result<Self, ExportError> {
        let value = serde_json::to_value(object).map_err(|err| ExportError::Yaml {
            object: group.to_string(),
            message: err.to_string(),
        })?;
        Ok(Self {
            group: group.to_string(),
            value,
        })
    }

    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// A container port with the name the Service and the probes refer to.
#[derive(Debug, Clone)]
pub(crate) struct PortSpec {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A service as it runs in one environment.
pub(crate) struct Placed<'a> {
    pub service: &'a Service,
    /// Built by devenv: the app (or a worker next to it).
    pub app: bool,
    pub kind: Kind,
    pub ports: Vec<PortSpec>,
    pub ingress: bool,
}

impl Placed<'_> {
    pub fn name(&self) -> &str {
        &self.service.name
    }

    pub fn component(&self) -> &'static str {
        match (self.app, self.kind) {
            (true, _) if self.ports.is_empty() => "worker",
            (true, _) => "server",
            (false, Kind::Postgres) => "database",
            (false, Kind::Redis) => "cache",
            (false, Kind::S3) => "storage",
            (false, Kind::Mail) => "mail",
            (false, Kind::Generic) => "backend",
        }
    }

    pub fn tcp_ports(&self) -> impl Iterator<Item = &PortSpec> {
        self.ports.iter().filter(|p| p.protocol == Protocol::Tcp)
    }
}

pub(crate) fn labels(
    settings: &Settings,
    service: &str,
    component: &str,
) -> BTreeMap<String, String> {
    let mut labels = selector(settings, service);
    labels.insert("app.kubernetes.io/component".into(), component.into());
    labels.insert("app.kubernetes.io/part-of".into(), settings.project.clone());
    labels.insert("app.kubernetes.io/managed-by".into(), "devenv".into());
    labels
}

/// What selects a service's pods; the migration Job's pods share it so that
/// network policies let them reach the database, but not the Service's selector.
pub(crate) fn selector(settings: &Settings, service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), service.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            settings.project.clone(),
        ),
    ])
}

fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

pub(crate) fn build(
    stack: &Stack,
    settings: &Settings,
    env: Env,
) -> Result<Vec<Object>, ExportError> {
    for name in stack.services.keys() {
        names::check_label(name).map_err(|reason| ExportError::Name {
            service: name.clone(),
            reason,
        })?;
    }
    let (placed, replacements) = place(stack, settings, env)?;
    let secrets = config::secret_values(stack);
    let mut objects = vec![Object::new("namespace", &namespace(settings, env))?];
    for service in &placed {
        let split = config::split_env(service.service, settings, env, &secrets, &replacements)?;
        objects.extend(service_objects(service, split, settings, env)?);
    }
    objects.extend(super::policy::build(&placed, &replacements, settings, env)?);
    Ok(objects)
}

/// Which services run in this environment, and what replaces the others.
fn place<'a>(
    stack: &'a Stack,
    settings: &Settings,
    env: Env,
) -> Result<(Vec<Placed<'a>>, Vec<Replacement>), ExportError> {
    let mut placed = Vec::new();
    let mut replacements = Vec::new();
    for service in stack.services.values() {
        let app = service.build.is_some();
        let kind = settings.kind(service);
        let ports = ports(service, settings, kind, app);
        let placement = settings.service(&service.name).production;
        let external = match kind {
            Kind::Generic => placement == Some(Placement::External),
            _ => placement != Some(Placement::Keep),
        };
        if env == Env::Production && !app && external {
            replacements.push(replacement(service, kind, &ports, settings));
            continue;
        }
        placed.push(Placed {
            service,
            app,
            kind,
            ports,
            ingress: false,
        });
    }
    let explicit: Vec<usize> = (0..placed.len())
        .filter(|&i| settings.service(placed[i].name()).ingress == Some(true))
        .collect();
    let chosen = if explicit.is_empty() {
        let default = placed.iter().position(|p| {
            p.app
                && p.tcp_ports().next().is_some()
                && settings.service(p.name()).ingress != Some(false)
        });
        default.into_iter().collect()
    } else {
        explicit
    };
    for i in chosen {
        if placed[i].tcp_ports().next().is_none() {
            return Err(ExportError::NoIngressPort {
                service: placed[i].name().to_string(),
            });
        }
        placed[i].ingress = true;
    }
    for dependent in &placed {
        for (dependency, condition) in &dependent.service.depends_on {
            // A dependency that runs to completion is a one-off task, reached by nobody.
            if *condition == Condition::Completed {
                continue;
            }
            if let Some(target) = placed.iter().find(|p| p.name() == dependency) {
                if target.tcp_ports().next().is_none() {
                    return Err(ExportError::NoPort {
                        service: dependency.clone(),
                        needed_by: dependent.name().to_string(),
                    });
                }
            }
        }
    }
    Ok((placed, replacements))
}

fn replacement(
    service: &Service,
    kind: Kind,
    ports: &[PortSpec],
    settings: &Settings,
) -> Replacement {
    let production = settings.stack.env(Env::Production);
    let (endpoint, default_port) = match kind {
        Kind::Postgres => (production.database.as_ref(), 5432),
        Kind::Redis => (production.redis.as_ref(), 6379),
        Kind::Mail => (production.smtp.as_ref(), 587),
        Kind::S3 | Kind::Generic => (None, ports.first().map_or(443, |p| p.port)),
    };
    let s3 = production.s3.clone().unwrap_or_default();
    let host = match kind {
        Kind::S3 => Some(match &s3.region {
            Some(region) => format!("s3.{region}.amazonaws.com"),
            None => "s3.amazonaws.com".to_string(),
        }),
        _ => endpoint.map(|e| e.host.clone()),
    };
    Replacement {
        service: service.name.clone(),
        kind,
        host,
        port: match kind {
            Kind::S3 => 443,
            _ => endpoint.and_then(|e| e.port).unwrap_or(default_port),
        },
        bucket: s3.bucket,
        region: s3.region,
    }
}

fn ports(service: &Service, settings: &Settings, kind: Kind, app: bool) -> Vec<PortSpec> {
    let probe_port = match &service.ready {
        Some(
            Probe::Http { port, .. }
            | Probe::Tcp { port }
            | Probe::Postgres { port, .. }
            | Probe::Redis { port, .. },
        ) => Some(*port),
        _ => None,
    };
    // An image's usual port, for a backing service that neither publishes nor probes one.
    let well_known = match kind {
        _ if app
            || probe_port.is_some()
            || service.ports.iter().any(|p| p.protocol == Protocol::Tcp) =>
        {
            None
        }
        Kind::Postgres => Some(5432),
        Kind::Redis => Some(6379),
        Kind::S3 => Some(9000),
        Kind::Mail => Some(1025),
        Kind::Generic => None,
    };
    let mut list: Vec<(u16, Protocol)> = Vec::new();
    let declared = service.ports.iter().map(|p| (p.container, p.protocol));
    let extra = probe_port
        .into_iter()
        .chain(well_known)
        .chain(settings.service(&service.name).ports.iter().copied());
    for port in declared.chain(extra.map(|p| (p, Protocol::Tcp))) {
        if !list.contains(&port) {
            list.push(port);
        }
    }
    let first_name = settings
        .service(&service.name)
        .port_name
        .clone()
        .or_else(|| {
            let name = match (app, kind) {
                (true, _) => "http",
                (false, Kind::Postgres) => "postgres",
                (false, Kind::Redis) => "redis",
                (false, Kind::S3) => "s3",
                (false, Kind::Mail) => "smtp",
                (false, Kind::Generic) => return None,
            };
            Some(name.to_string())
        });
    let mut first_name = first_name;
    list.into_iter()
        .map(|(port, protocol)| {
            let name = match protocol {
                Protocol::Tcp => first_name.take().unwrap_or_else(|| format!("tcp-{port}")),
                Protocol::Udp => format!("udp-{port}"),
                Protocol::Sctp => format!("sctp-{port}"),
            };
            PortSpec {
                name,
                port,
                protocol,
            }
        })
        .collect()
}

fn namespace(settings: &Settings, env: Env) -> Namespace {
    let mut labels = BTreeMap::from([(
        "app.kubernetes.io/part-of".to_string(),
        settings.project.clone(),
    )]);
    // Istio's init container needs NET_ADMIN, which the restricted level forbids.
    let level = if settings.istio {
        "baseline"
    } else {
        "restricted"
    };
    labels.insert("pod-security.kubernetes.io/enforce".into(), level.into());
    labels.insert(
        "pod-security.kubernetes.io/warn".into(),
        "restricted".into(),
    );
    if settings.istio {
        labels.insert("istio-injection".into(), "enabled".into());
    }
    Namespace {
        metadata: meta(&settings.namespace(env), &labels),
        ..Default::default()
    }
}

fn service_objects(
    placed: &Placed<'_>,
    split: SplitEnv,
    settings: &Settings,
    env: Env,
) -> Result<Vec<Object>, ExportError> {
    let service = placed.service;
    let name = placed.name();
    let labels = labels(settings, name, placed.component());
    let mut objects = Vec::new();
    let mut split = split;
    let storage = Storage::of(placed, settings)?;
    if placed.kind == Kind::Postgres && !split.config.contains_key("PGDATA") {
        // A fresh volume's `lost+found` makes initdb refuse the mount point itself.
        if let Some(claim) = storage.claims.first() {
            split
                .config
                .insert("PGDATA".into(), format!("{}/pgdata", claim.1));
        }
    }
    let env_name = format!("{name}-env");
    let mut env_from = Vec::new();
    if !split.config.is_empty() {
        objects.push(Object::new(
            name,
            &config::config_map(meta(&env_name, &labels), &split),
        )?);
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: env_name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }
    if !split.secret.is_empty() {
        if env == Env::Production && settings.stack.external_secrets {
            objects.push(Object::new(
                name,
                &config::external_secret(&meta(&env_name, &labels), &split, settings, name),
            )?);
        } else {
            objects.push(Object::new(
                name,
                &config::secret(meta(&env_name, &labels), &split, env),
            )?);
        }
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: env_name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }

    let uid = settings.run_as_user(service);
    let container = Container {
        name: name.to_string(),
        image: Some(if placed.app {
            settings.app_image(service)
        } else {
            service.image.clone()
        }),
        image_pull_policy: Some("Always".into()),
        command: service.entrypoint.clone(),
        args: service.command.clone(),
        working_dir: service.working_dir.clone(),
        env_from: Some(env_from).filter(|e| !e.is_empty()),
        ports: Some(
            placed
                .ports
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.clone()),
                    container_port: i32::from(p.port),
                    protocol: Some(protocol(p.protocol).into()),
                    ..Default::default()
                })
                .collect(),
        )
        .filter(|p: &Vec<_>| !p.is_empty()),
        resources: Some(requirements(&settings.resources(name, env, placed.app))),
        security_context: Some(container_security(uid)),
        volume_mounts: Some(storage.mounts()).filter(|m| !m.is_empty()),
        ..Default::default()
    };
    let mut template_annotations =
        BTreeMap::from([("devenv.dev/config-hash".to_string(), config_hash(&split))]);
    if settings.istio {
        template_annotations.insert("sidecar.istio.io/inject".into(), "true".into());
    }
    let pod = PodSpec {
        containers: vec![Container {
            ..container.clone()
        }],
        service_account_name: placed.app.then(|| name.to_string()),
        automount_service_account_token: Some(false),
        // Service links would put `DB_PORT=tcp://…` into a Laravel app's env.
        enable_service_links: Some(false),
        security_context: Some(pod_security(uid)),
        volumes: Some(storage.volumes()).filter(|v| !v.is_empty()),
        ..Default::default()
    };
    let mut probed = pod.clone();
    if let Some(handler) = probe_handler(placed) {
        let probes = &mut probed.containers[0];
        probes.readiness_probe = Some(K8sProbe {
            period_seconds: Some(5),
            timeout_seconds: Some(3),
            failure_threshold: Some(3),
            ..handler.clone()
        });
        probes.liveness_probe = Some(K8sProbe {
            period_seconds: Some(10),
            timeout_seconds: Some(3),
            failure_threshold: Some(6),
            ..handler.clone()
        });
        let budget = i32::try_from(service.ready_timeout.as_secs().div_ceil(5))
            .unwrap_or(i32::MAX)
            .max(6);
        probes.startup_probe = Some(K8sProbe {
            period_seconds: Some(5),
            timeout_seconds: Some(3),
            failure_threshold: Some(budget),
            ..handler
        });
    }
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            annotations: Some(template_annotations),
            ..Default::default()
        }),
        spec: Some(probed),
    };
    let pod_selector = LabelSelector {
        match_labels: Some(selector_with(settings, name, placed.component())),
        ..Default::default()
    };
    let autoscale = if placed.app {
        settings.autoscale(name, env)
    } else {
        None
    };

    if placed.app {
        let mut account_meta = meta(name, &labels);
        if let Some(role) = &settings.stack.env(env).role_arn {
            account_meta.annotations = Some(BTreeMap::from([(
                "eks.amazonaws.com/role-arn".to_string(),
                role.clone(),
            )]));
        }
        objects.push(Object::new(
            name,
            &ServiceAccount {
                metadata: account_meta,
                automount_service_account_token: Some(false),
                ..Default::default()
            },
        )?);
    }
    if !placed.ports.is_empty() {
        objects.push(Object::new(
            name,
            &cluster_service(placed, &labels, settings, storage.stateful),
        )?);
    }
    if storage.stateful {
        let mut set_meta = meta(name, &labels);
        set_meta.annotations = Some(checkov_skips(placed, !split.secret.is_empty()));
        objects.push(Object::new(
            name,
            &StatefulSet {
                metadata: set_meta,
                spec: Some(StatefulSetSpec {
                    replicas: Some(1),
                    service_name: Some(name.to_string()),
                    selector: pod_selector,
                    template,
                    volume_claim_templates: Some(storage.claim_templates(settings, &labels)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?);
    } else {
        let replicas = if placed.app {
            settings.replicas(name, env)
        } else {
            1
        };
        let mut deployment_meta = meta(name, &labels);
        deployment_meta.annotations = Some(checkov_skips(placed, !split.secret.is_empty()));
        if let Some(build) = &service.build {
            // Tells CI which image to build and push for this Deployment.
            let notes = deployment_meta
                .annotations
                .get_or_insert_with(BTreeMap::new);
            notes.insert(
                "devenv.dev/dockerfile".to_string(),
                build.dockerfile.clone(),
            );
            if let Some(target) = settings.build_target(service) {
                notes.insert("devenv.dev/build-target".into(), target);
            }
        }
        objects.push(Object::new(
            name,
            &Deployment {
                metadata: deployment_meta,
                spec: Some(DeploymentSpec {
                    replicas: if autoscale.is_some() {
                        None
                    } else {
                        Some(replicas)
                    },
                    selector: pod_selector.clone(),
                    // Never drop below the wanted capacity while rolling out.
                    strategy: placed.app.then(|| DeploymentStrategy {
                        type_: Some("RollingUpdate".into()),
                        rolling_update: Some(RollingUpdateDeployment {
                            max_surge: Some(IntOrString::Int(1)),
                            max_unavailable: Some(IntOrString::Int(0)),
                        }),
                    }),
                    template,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?);
        let min = autoscale.map_or(replicas, |a| a.min);
        if placed.app && min >= 2 {
            objects.push(Object::new(
                name,
                &PodDisruptionBudget {
                    metadata: meta(name, &labels),
                    spec: Some(PodDisruptionBudgetSpec {
                        max_unavailable: Some(IntOrString::Int(1)),
                        selector: Some(pod_selector),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )?);
        }
    }
    if let Some(scale) = autoscale {
        objects.push(Object::new(
            name,
            &HorizontalPodAutoscaler {
                metadata: meta(name, &labels),
                spec: Some(HorizontalPodAutoscalerSpec {
                    scale_target_ref: CrossVersionObjectReference {
                        api_version: Some("apps/v1".into()),
                        kind: "Deployment".into(),
                        name: name.to_string(),
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
            },
        )?);
    }
    if placed.ingress {
        objects.push(Object::new(name, &ingress(placed, &labels, settings, env))?);
    }
    if !service.hooks.after_up.is_empty() {
        objects.push(Object::new(
            name,
            &migration_job(placed, pod, settings, !split.secret.is_empty()),
        )?);
    }
    Ok(objects)
}

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
    let tag = placed
        .service
        .image
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .filter(|tag| !tag.contains('/'));
    if !placed.app && matches!(tag, None | Some("latest")) {
        skips.push("CKV_K8S_14=a local stand-in runs the image as the stack file names it; pin a tag there");
    }
    skips
        .into_iter()
        .enumerate()
        .map(|(i, skip)| (format!("checkov.io/skip{}", i + 1), skip.to_string()))
        .collect()
}

fn selector_with(settings: &Settings, name: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector(settings, name);
    labels.insert("app.kubernetes.io/component".into(), component.into());
    labels
}

fn protocol(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

/// Hashes what the pods read from their ConfigMap and Secret, so that a
/// change rolls them; secret values stay out, a hash of a weak password is
/// a password.
fn config_hash(split: &SplitEnv) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in &split.config {
        hasher.update(format!("{key}={value}\n"));
    }
    for key in split.secret.keys() {
        hasher.update(format!("{key}\n"));
    }
    let digest = hasher.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn requirements(resources: &Resources) -> ResourceRequirements {
    let amounts = |a: &super::settings::Amounts| {
        let mut map = BTreeMap::new();
        if let Some(cpu) = &a.cpu {
            map.insert("cpu".to_string(), Quantity(cpu.clone()));
        }
        if let Some(memory) = &a.memory {
            map.insert("memory".to_string(), Quantity(memory.clone()));
        }
        map
    };
    ResourceRequirements {
        requests: Some(amounts(&resources.requests)),
        limits: Some(amounts(&resources.limits)),
        ..Default::default()
    }
}

fn pod_security(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_security(uid: i64) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `ready` probe as a Kubernetes probe handler; without one, a TCP
/// connect to the first port is the closest to "it is serving".
fn probe_handler(placed: &Placed<'_>) -> Option<K8sProbe> {
    let port_ref = |port: u16| {
        placed
            .ports
            .iter()
            .find(|p| p.port == port && p.protocol == Protocol::Tcp)
            .map_or(IntOrString::Int(i32::from(port)), |p| {
                IntOrString::String(p.name.clone())
            })
    };
    let exec = |command: Vec<String>| K8sProbe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        ..Default::default()
    };
    let tcp = |port: u16| K8sProbe {
        tcp_socket: Some(TCPSocketAction {
            port: port_ref(port),
            ..Default::default()
        }),
        ..Default::default()
    };
    Some(match &placed.service.ready {
        Some(Probe::Http { port, path, .. }) => K8sProbe {
            http_get: Some(HTTPGetAction {
                path: Some(path.clone()),
                port: port_ref(*port),
                ..Default::default()
            }),
            ..Default::default()
        },
        Some(Probe::Tcp { port }) => tcp(*port),
        Some(p @ (Probe::Postgres { .. } | Probe::Redis { .. } | Probe::Exec { .. })) => {
            exec(p.in_container_command().expect("these probes have one"))
        }
        Some(Probe::Docker) | None => tcp(placed.tcp_ports().next()?.port),
    })
}

/// Where a service may write: scratch emptyDirs under the read-only root,
/// and claims for the named volumes of services that keep data.
struct Storage {
    stateful: bool,
    scratch: Vec<String>,
    /// Claim name, mount path.
    claims: Vec<(String, String)>,
}

impl Storage {
    fn of(placed: &Placed<'_>, settings: &Settings) -> Result<Self, ExportError> {
        let service = placed.service;
        let mut scratch = settings
            .service(&service.name)
            .writable
            .clone()
            .unwrap_or_else(|| {
                let mut paths = vec!["/tmp".to_string()];
                if placed.kind == Kind::Postgres && !placed.app {
                    paths.push("/var/run/postgresql".into());
                }
                paths
            });
        let mut claims = Vec::new();
        for mount in &service.volumes {
            // Bind mounts carry source code and local config, which the cluster image has built in.
            let Mount::Volume { name, target, .. } = mount else {
                continue;
            };
            if scratch.contains(target) {
                continue;
            }
            if placed.app {
                return Err(ExportError::AppVolume {
                    service: service.name.clone(),
                    volume: name.clone(),
                    target: target.clone(),
                });
            }
            claims.push((names::to_label(name), target.clone()));
        }
        let data_path = match placed.kind {
            Kind::Postgres => Some("/var/lib/postgresql/data"),
            Kind::Redis | Kind::S3 => Some("/data"),
            Kind::Mail | Kind::Generic => None,
        };
        if let Some(path) = data_path.filter(|_| !placed.app && claims.is_empty()) {
            claims.push(("data".into(), path.into()));
        }
        scratch.dedup();
        Ok(Self {
            stateful: !claims.is_empty(),
            scratch,
            claims,
        })
    }

    fn scratch_name(path: &str) -> String {
        let name = names::to_label(path);
        if name.is_empty() {
            "root".into()
        } else {
            name
        }
    }

    fn mounts(&self) -> Vec<VolumeMount> {
        let scratch = self
            .scratch
            .iter()
            .map(|path| (Self::scratch_name(path), path.clone()));
        scratch
            .chain(self.claims.iter().cloned())
            .map(|(name, mount_path)| VolumeMount {
                name,
                mount_path,
                ..Default::default()
            })
            .collect()
    }

    fn volumes(&self) -> Vec<Volume> {
        self.scratch
            .iter()
            .map(|path| Volume {
                name: Self::scratch_name(path),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            })
            .collect()
    }

    fn claim_templates(
        &self,
        settings: &Settings,
        labels: &BTreeMap<String, String>,
    ) -> Vec<PersistentVolumeClaim> {
        self.claims
            .iter()
            .map(|(name, _)| PersistentVolumeClaim {
                metadata: meta(name, labels),
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: settings.stack.storage_class.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(settings.storage_size().into()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    }
}

fn cluster_service(
    placed: &Placed<'_>,
    labels: &BTreeMap<String, String>,
    settings: &Settings,
    headless: bool,
) -> K8sService {
    K8sService {
        metadata: meta(placed.name(), labels),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            // A StatefulSet's pods get stable DNS names through a headless Service.
            cluster_ip: headless.then(|| "None".into()),
            selector: Some(selector_with(settings, placed.name(), placed.component())),
            ports: Some(
                placed
                    .ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.clone()),
                        port: i32::from(p.port),
                        target_port: Some(IntOrString::String(p.name.clone())),
                        protocol: Some(protocol(p.protocol).into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ingress(
    placed: &Placed<'_>,
    labels: &BTreeMap<String, String>,
    settings: &Settings,
    env: Env,
) -> Ingress {
    let env_settings = settings.stack.env(env);
    let class = env_settings
        .ingress_class
        .clone()
        .unwrap_or_else(|| match env {
            Env::Dev => "nginx".into(),
            Env::Staging | Env::Production => "alb".into(),
        });
    let port = placed.tcp_ports().next().map(|p| p.name.clone());
    let mut annotations = BTreeMap::new();
    if class == "alb" {
        // AWS Load Balancer Controller: route straight to pod IPs, TLS at the ALB.
        let alb = |key: &str| format!("alb.ingress.kubernetes.io/{key}");
        annotations.insert(alb("scheme"), "internet-facing".to_string());
        annotations.insert(alb("target-type"), "ip".to_string());
        if let Some(Probe::Http { path, .. }) = &placed.service.ready {
            annotations.insert(alb("healthcheck-path"), path.clone());
        }
        match &env_settings.certificate_arn {
            Some(arn) => {
                annotations.insert(alb("certificate-arn"), arn.clone());
                annotations.insert(
                    alb("listen-ports"),
                    r#"[{"HTTP": 80}, {"HTTPS": 443}]"#.to_string(),
                );
                annotations.insert(alb("ssl-redirect"), "443".to_string());
            }
            None => {
                annotations.insert(alb("listen-ports"), r#"[{"HTTP": 80}]"#.to_string());
            }
        }
    }
    let mut metadata = meta(placed.name(), labels);
    metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(class),
            rules: Some(vec![IngressRule {
                host: env_settings.host.clone(),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: placed.name().to_string(),
                                port: Some(ServiceBackendPort {
                                    name: port,
                                    number: None,
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `after_up` hooks as a Job named after the image tag, so that each
/// release runs them once; the Argo CD hook annotations run it before the
/// new pods roll out (with plain kubectl: apply it and `kubectl wait` first).
fn migration_job(placed: &Placed<'_>, pod: PodSpec, settings: &Settings, secrets: bool) -> Job {
    let name = placed.name();
    let labels = labels(settings, name, "migration");
    let suffix = names::to_label(settings.tag());
    let mut job_name = format!("{name}-migrate-{suffix}");
    job_name.truncate(63);
    let job_name = job_name.trim_end_matches('-').to_string();
    let script = placed.service.hooks.after_up.join(" && ");
    let mut pod = pod;
    let container = &mut pod.containers[0];
    container.name = "migrate".into();
    container.command = Some(vec!["sh".into(), "-c".into(), script]);
    container.args = None;
    container.ports = None;
    pod.restart_policy = Some("Never".into());
    let mut pod_annotations = BTreeMap::new();
    if settings.istio {
        // A sidecar never exits, so the Job would never complete.
        pod_annotations.insert("sidecar.istio.io/inject".to_string(), "false".to_string());
    }
    let mut metadata = meta(&job_name, &labels);
    let mut annotations = checkov_skips(placed, secrets);
    annotations.insert("argocd.argoproj.io/hook".to_string(), "PreSync".to_string());
    annotations.insert(
        "argocd.argoproj.io/hook-delete-policy".to_string(),
        "BeforeHookCreation".to_string(),
    );
    metadata.annotations = Some(annotations);
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(1),
            active_deadline_seconds: Some(900),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(pod_annotations).filter(|a| !a.is_empty()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
