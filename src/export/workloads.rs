//! One service's workload objects in one environment: its configuration,
//! the Deployment or StatefulSet (or Job, for a one-off), service account,
//! autoscaler, disruption budget, and the migration Job of its hooks.

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
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe as K8sProbe, ResourceRequirements, SeccompProfile,
    SecretEnvSource, SecretKeySelector, SecurityContext, ServiceAccount, SleepAction,
    TCPSocketAction, TopologySpreadConstraint,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::config::{self, SplitEnv};
use super::settings::{Kind, Resources, Settings};
use super::{Env, ExportError};
use crate::config::model::{Condition, Probe, Protocol, Service, Stack};

use super::objects::{labels, meta, selector, Object, Placed, Role};
use super::routing::{cluster_service, ingress};
use super::storage::Storage;

pub(crate) fn service_objects(
    stack: &Stack,
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
    // Secrets the operator provides: outside dev, export writes no Secret
    // holding placeholders (applying it would overwrite the real one); the
    // pods wait for the Secret, and the workload names the keys it needs.
    let mut provide = None;
    if !split.secret.is_empty() {
        let placeholders = split.secret.values().any(|v| v == config::PLACEHOLDER);
        if env == Env::Production && settings.stack.external_secrets {
            objects.push(Object::new(
                name,
                &config::external_secret(&meta(&env_name, &labels), &split, settings, name),
            )?);
        } else if env != Env::Dev && placeholders {
            let keys: Vec<&str> = split.secret.keys().map(String::as_str).collect();
            provide = Some(keys.join(","));
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

    // Commands name the Secret's keys, never the values in them.
    let secrets = config::secret_values(stack);
    let reference = |place: &'static str, text: &str| {
        config::reference_secrets(text, service, &split, &secrets).map_err(|shown| {
            ExportError::SecretInCommand {
                service: service.name.clone(),
                place,
                shown,
            }
        })
    };
    let words = |place: &'static str, words: &Option<Vec<String>>| {
        words
            .as_ref()
            .map(|words| words.iter().map(|w| reference(place, w)).collect())
            .transpose()
    };
    // The Redis probe reads its password from the env, under the name
    // `redis-cli` looks for, from the Secret key that holds it.
    let probe_env = split
        .probe_auth
        .as_ref()
        .filter(|key| key.as_str() != config::REDISCLI_AUTH)
        .map(|key| {
            vec![EnvVar {
                name: config::REDISCLI_AUTH.into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: env_name.clone(),
                        key: key.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });

    let uid = settings.run_as_user(service);
    let container = Container {
        name: name.to_string(),
        image: Some(if placed.app {
            settings.app_image(stack, service, env)?
        } else {
            service.image.to_string()
        }),
        image_pull_policy: Some("Always".into()),
        command: words("entrypoint", &service.entrypoint)?,
        args: words("command", &service.command)?,
        working_dir: service.working_dir.clone(),
        env: probe_env,
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
        resources: Some(requirements(&settings.resources(
            &service.name,
            env,
            placed.app,
        ))),
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
    if placed.one_off {
        // A task others wait on: it runs once per release and is reached by nobody.
        let mut job = one_off_job(placed, pod, &labels, settings, !split.secret.is_empty());
        note_secret(&mut job.metadata, &env_name, provide.as_deref());
        objects.push(job_object(placed, &job)?);
        return Ok(objects);
    }
    let mut probed = pod.clone();
    if placed.app && waits_for_migrations(stack, service) {
        // Under any tool (kubectl apply, Argo CD, Flux, Helm) the new pods
        // start only once the release's migration Job has run.
        probed.init_containers = Some(vec![wait_for_migrations(&container, settings.istio)]);
    }
    if placed.app && placed.role != Role::Scheduler && env != Env::Dev {
        probed.topology_spread_constraints = Some(spread(settings, name, placed.component()));
    }
    if placed.ingress {
        // Finish requests in flight while the load balancer deregisters the pod.
        probed.containers[0].lifecycle = Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: 15 }),
                ..Default::default()
            }),
            ..Default::default()
        });
        probed.termination_grace_period_seconds = Some(45);
    }
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
    // Servers autoscale; a queue worker only where its own `hpa` says
    // (queue length, not CPU, is its load); a scheduler never.
    let autoscale = match placed.role {
        _ if !placed.app => None,
        Role::Server => settings.autoscale(&service.name, env),
        Role::Worker if settings.service(&service.name).hpa.is_some() => {
            settings.autoscale(&service.name, env)
        }
        Role::Worker | Role::Scheduler => None,
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
        note_secret(&mut set_meta, &env_name, provide.as_deref());
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
        let replicas = match placed.role {
            _ if !placed.app => 1,
            Role::Server => settings.replicas(&service.name, env),
            Role::Worker => settings.worker_replicas(&service.name, env),
            // Two schedulers would run every task twice.
            Role::Scheduler => 1,
        };
        let mut deployment_meta = meta(name, &labels);
        deployment_meta.annotations = Some(checkov_skips(placed, !split.secret.is_empty()));
        note_secret(&mut deployment_meta, &env_name, provide.as_deref());
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
                    strategy: placed.app.then(|| match placed.role {
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
                    }),
                    template,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?);
        let min = autoscale.map_or(replicas, |a| a.min);
        if placed.app && placed.role != Role::Scheduler && min >= 2 {
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
    let hooks = placed
        .service
        .hooks
        .after_up
        .iter()
        .filter(|hook| settings.seed(env) || !is_seed(hook))
        .map(|hook| reference("`after_up` hook", hook))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(job) = migration_job(placed, pod, settings, &hooks, !split.secret.is_empty())? {
        objects.push(job_object(placed, &job)?);
    }
    Ok(objects)
}

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
    if !placed.one_off && probe_handler(placed).is_none() {
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

/// Whether the hooks migrate a Laravel database (what the app pods wait for).
fn migrates(service: &Service) -> bool {
    service
        .hooks
        .after_up
        .iter()
        .any(|hook| hook.contains("artisan migrate"))
}

/// Whether a service's pods must wait for migrations: its own hooks run
/// them, or it waits (`completed`) on a one-off that runs them.
fn waits_for_migrations(stack: &Stack, service: &Service) -> bool {
    let runs_migrations = |one_off: &Service| {
        one_off
            .command
            .as_ref()
            .is_some_and(|command| command.join(" ").contains("artisan migrate"))
            || migrates(one_off)
    };
    migrates(service)
        || service
            .depends_on
            .iter()
            .filter(|(_, condition)| **condition == Condition::Completed)
            .filter_map(|(name, _)| stack.services.get(name))
            .any(runs_migrations)
}

fn is_seed(hook: &str) -> bool {
    hook.contains("db:seed")
}

/// An init container holding a new app pod until the database has no
/// pending migration: Laravel's `migrate --pretend` says "Nothing to
/// migrate" then. It asks the database, not the Kubernetes API, so it needs
/// no RBAC and works whichever tool applied the release.
///
/// Under Istio it runs as uid 1337, the proxy's, whose traffic the
/// redirection leaves alone: the sidecar starts after the init containers,
/// so redirected traffic would go nowhere and the gate would never open.
fn wait_for_migrations(app: &Container, istio: bool) -> Container {
    let mut security = app.security_context.clone();
    if istio {
        if let Some(context) = security.as_mut() {
            context.run_as_user = Some(ISTIO_PROXY_UID);
            context.run_as_group = Some(ISTIO_PROXY_UID);
        }
    }
    let script = "until php artisan migrate --pretend --force 2>/dev/null | grep -q 'Nothing to migrate'; do echo 'waiting for the migration Job'; sleep 5; done";
    Container {
        name: "wait-for-migrations".into(),
        args: Some(vec!["sh".into(), "-c".into(), script.into()]),
        command: None,
        ports: None,
        lifecycle: None,
        readiness_probe: None,
        liveness_probe: None,
        startup_probe: None,
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".into())),
                ("memory".to_string(), Quantity("64Mi".into())),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("250m".into())),
                ("memory".to_string(), Quantity("256Mi".into())),
            ])),
            ..Default::default()
        }),
        security_context: security,
        ..app.clone()
    }
}

/// The uid Istio's traffic redirection exempts (the proxy's own).
const ISTIO_PROXY_UID: i64 = 1337;

/// Replicas spread over zones and nodes, preferred rather than required so
/// that a small cluster still schedules them.
fn spread(settings: &Settings, name: &str, component: &str) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector_with(settings, name, component)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// A Job's name: the service's, then a short hash of what it runs, so that
/// a changed Job is a new object (a Job's template cannot be changed) and
/// an unchanged one is left alone by every apply. A Job running the app's
/// image ends in the image's tag instead of hashing it, so that the usual
/// CI bump (`kustomize edit set image`, `--set image.tag`) names a new Job
/// too: the overlays carry a replacement that appends the rendered tag.
fn job_name(prefix: &str, pod: &PodSpec, tag: Option<&str>) -> String {
    let mut hashed = pod.clone();
    if tag.is_some() {
        for container in &mut hashed.containers {
            container.image = None;
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_string(&hashed).unwrap_or_default());
    let digest: String = hasher
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    // The `job-name` label of its pods holds the name: 63 characters at most.
    let suffix = tag.map_or(String::new(), |tag| format!("-{tag}"));
    let mut prefix = prefix.to_string();
    prefix.truncate(63usize.saturating_sub(9 + suffix.len()).max(1));
    format!("{}-{digest}{suffix}", prefix.trim_end_matches('-'))
}

/// The tag of the app image a Job runs, which ends its name (see [`job_name`]).
fn app_tag(placed: &Placed<'_>, pod: &PodSpec) -> Option<String> {
    let image = pod.containers.first()?.image.as_deref()?;
    placed
        .app
        .then(|| {
            crate::image_ref::ImageRef::parse(image)
                .ok()?
                .tag()
                .map(String::from)
        })
        .flatten()
}

/// A Job as an object, with the tag its name ends in, if any.
fn job_object(placed: &Placed<'_>, job: &Job) -> Result<Object, ExportError> {
    let pod = job
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref());
    let mut object = Object::new(placed.name(), job)?;
    object.name_tag = pod.and_then(|pod| app_tag(placed, pod));
    Ok(object)
}

/// Finished Jobs go after a week: long enough to read their logs, short
/// enough that releases do not pile them up. An apply of the same release
/// after that creates the Job again, which finds nothing to migrate.
const JOB_TTL_SECONDS: i32 = 7 * 24 * 3600;

fn job(
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    pod: PodSpec,
    settings: &Settings,
) -> Job {
    let mut pod = pod;
    pod.restart_policy = Some("Never".into());
    let mut pod_annotations = BTreeMap::new();
    if settings.istio {
        // A sidecar never exits, so the Job would never complete.
        pod_annotations.insert("sidecar.istio.io/inject".to_string(), "false".to_string());
    }
    let mut metadata = meta(&name, &labels);
    metadata.annotations = Some(annotations);
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            active_deadline_seconds: Some(900),
            ttl_seconds_after_finished: Some(JOB_TTL_SECONDS),
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

/// A service that runs to completion (others wait on it with `completed`,
/// or `[services.<name>.k8s] job = true`) as a Job, once per release.
fn one_off_job(
    placed: &Placed<'_>,
    pod: PodSpec,
    labels: &BTreeMap<String, String>,
    settings: &Settings,
    secrets: bool,
) -> Job {
    let name = job_name(placed.name(), &pod, app_tag(placed, &pod).as_deref());
    job(
        name,
        labels.clone(),
        checkov_skips(placed, secrets),
        pod,
        settings,
    )
}

/// The `after_up` hooks as a Job named after what it runs, so that each
/// release runs them once. It needs no hook annotations: the app pods wait
/// for its migrations (see [`wait_for_migrations`]), and nothing else waits
/// for it, so it is ordered the same under `kubectl apply -k`, Argo CD,
/// Flux and Helm, and is created with the ConfigMap and Secret it reads.
/// Seeders run in dev and staging only, unless `[k8s.<env>] seed` says.
fn migration_job(
    placed: &Placed<'_>,
    pod: PodSpec,
    settings: &Settings,
    hooks: &[String],
    secrets: bool,
) -> Result<Option<Job>, ExportError> {
    if hooks.is_empty() {
        return Ok(None);
    }
    let name = placed.name();
    let labels = labels(settings, name, "migration");
    let mut pod = pod;
    let container = &mut pod.containers[0];
    container.name = "migrate".into();
    // Through the image's entrypoint, as `devenv up` runs them (it prepares storage/).
    container.args = Some(vec!["sh".into(), "-c".into(), hooks.join(" && ")]);
    container.ports = None;
    let tag = app_tag(placed, &pod);
    let job_name = job_name(&format!("{name}-migrate"), &pod, tag.as_deref());
    Ok(Some(job(
        job_name,
        labels,
        checkov_skips(placed, secrets),
        pod,
        settings,
    )))
}
