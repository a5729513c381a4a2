//! A workload's container and pod: image, command, env, ports, resources
//! and security; what a long-running pod adds (the migration gate, the
//! spread over zones, draining, probes); the template around it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, ExecAction, HTTPGetAction, Lifecycle,
    LifecycleHandler, PodSecurityContext, PodSpec, PodTemplateSpec, Probe as K8sProbe,
    ResourceRequirements, SeccompProfile, SecurityContext, SleepAction, TCPSocketAction,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::{self, Commands};
use super::{migrations, protocol, selector_with, Workload};
use crate::config::model::{Probe, Protocol};
use crate::export::objects::{Placed, Role};
use crate::export::settings::{Amounts, Resources, Settings};
use crate::export::{Env, ExportError};

/// The service's one container, as every pod of it runs it.
pub(super) fn container(
    work: &Workload<'_>,
    env_from: Vec<EnvFromSource>,
    commands: &Commands<'_>,
) -> Result<Container, ExportError> {
    let (placed, settings, env) = (work.placed, work.settings, work.env);
    let service = placed.service;
    Ok(Container {
        name: work.name.to_string(),
        image: Some(if placed.app {
            settings.app_image(work.stack, service, env)?
        } else {
            service.image.to_string()
        }),
        image_pull_policy: Some("Always".into()),
        command: commands.words("entrypoint", service.entrypoint.as_deref())?,
        args: commands.words("command", service.command.as_deref())?,
        working_dir: service.working_dir.clone(),
        env: env::probe_env(work),
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
        security_context: Some(container_security(settings.run_as_user(service))),
        volume_mounts: Some(work.storage.mounts()).filter(|m| !m.is_empty()),
        ..Default::default()
    })
}

/// The pod around the container, as a Job runs it.
pub(super) fn pod(work: &Workload<'_>, container: &Container) -> PodSpec {
    let placed = work.placed;
    PodSpec {
        containers: vec![container.clone()],
        service_account_name: placed.app.then(|| work.name.to_string()),
        automount_service_account_token: Some(false),
        // Service links would put `DB_PORT=tcp://…` into a Laravel app's env.
        enable_service_links: Some(false),
        security_context: Some(pod_security(work.settings.run_as_user(placed.service))),
        volumes: Some(work.storage.volumes()).filter(|v| !v.is_empty()),
        ..Default::default()
    }
}

/// What a long-running pod adds to the Job's: the gate on migrations,
/// the spread over zones, draining behind a load balancer, the probes.
pub(super) fn served(work: &Workload<'_>, pod: PodSpec, container: &Container) -> PodSpec {
    let placed = work.placed;
    let mut probed = pod;
    if placed.app && migrations::gated(work) {
        // Under any tool (kubectl apply, Argo CD, Flux, Helm) the new pods
        // start only once the release's migration Job has run.
        probed.init_containers = Some(vec![migrations::wait_for_migrations(
            container,
            work.settings.istio,
        )]);
    }
    if placed.app && placed.role != Role::Scheduler && work.env != Env::Dev {
        probed.topology_spread_constraints =
            Some(spread(work.settings, work.name, placed.component()));
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
        set_probes(&mut probed.containers[0], handler, placed);
    }
    probed
}

/// Readiness, liveness and a startup probe as long as the `ready` timeout,
/// all asking the same handler.
fn set_probes(probes: &mut Container, handler: K8sProbe, placed: &Placed<'_>) {
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
    let budget = i32::try_from(placed.service.ready_timeout.as_secs().div_ceil(5))
        .unwrap_or(i32::MAX)
        .max(6);
    probes.startup_probe = Some(K8sProbe {
        period_seconds: Some(5),
        timeout_seconds: Some(3),
        failure_threshold: Some(budget),
        ..handler
    });
}

/// The pod template: its labels, and the config hash that rolls the pods
/// (and Istio's sidecar, where the stack asks for it).
pub(super) fn template(work: &Workload<'_>, spec: PodSpec) -> PodTemplateSpec {
    let mut annotations = BTreeMap::from([(
        "devenv.dev/config-hash".to_string(),
        env::config_hash(&work.split),
    )]);
    if work.settings.istio {
        annotations.insert("sidecar.istio.io/inject".into(), "true".into());
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(work.labels.clone()),
            annotations: Some(annotations),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

/// Requests and limits as Kubernetes quantities.
fn requirements(resources: &Resources) -> ResourceRequirements {
    let amounts = |a: &Amounts| {
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

/// The pod runs as the service's user, never root, under the default seccomp profile.
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

/// The container gets no privilege, no capability and a read-only root.
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
pub(super) fn probe_handler(placed: &Placed<'_>) -> Option<K8sProbe> {
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
