//! The stack as typed Kubernetes objects for one environment.
//!
//! Services that devenv builds are the app: Deployment, Service, Ingress,
//! autoscaler, disruption budget, service account, and a Job for the
//! `after_up` hooks. Services run from an image are backing services:
//! StatefulSets with headless Services when they keep data, Deployments
//! otherwise; in production the known ones (PostgreSQL, MySQL/MariaDB,
//! Redis, Memcached, MinIO, MailHog) give way to managed endpoints.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::config::{self, Replacement};
use super::settings::{Kind, Placement, Settings};
use super::{Env, ExportError};
use crate::config::model::{Condition, Probe, Protocol, Service, Stack};

/// One object, already in its JSON shape, and the file it belongs in.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// File stem: the service's name, `namespace` or `network-policies`.
    pub group: String,
    pub value: serde_json::Value,
    /// The image tag a Job's name ends in (`-<tag>`): the Kustomize tree
    /// writes the name without it and appends the tag the overlay renders.
    pub name_tag: Option<String>,
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
            name_tag: None,
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
    /// Its DNS-1123 name, the stack's name mapped (see [`names`]).
    pub k8s_name: String,
    /// Runs to completion once per release: a Job, reached by nobody.
    pub one_off: bool,
    /// What a service built by devenv runs, which decides its workload.
    pub role: Role,
}

/// What an app service runs (from its command), which decides its workload:
/// a server gets the autoscaler and the disruption budget, a queue worker
/// is scaled on its own, and a scheduler must run exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    /// `queue:work`, `queue:listen`, `horizon`.
    Worker,
    /// `schedule:work` (or a loop of `schedule:run`).
    Scheduler,
}

impl Role {
    fn of(service: &Service) -> Role {
        let words = command_words(service);
        let runs = |what: &[&str]| words.iter().any(|w| what.contains(&w.as_str()));
        if runs(&["schedule:work", "schedule:run"]) {
            Role::Scheduler
        } else if runs(&["queue:work", "queue:listen", "horizon"]) {
            Role::Worker
        } else {
            Role::Server
        }
    }
}

/// The words a service runs, its entrypoint then its command, with
/// `sh -c` scripts split at whitespace too.
fn command_words(service: &Service) -> Vec<String> {
    service
        .entrypoint
        .iter()
        .chain(&service.command)
        .flatten()
        .flat_map(|word| word.split_whitespace().map(String::from))
        .collect()
}

/// A developer's tool rather than part of the app (Composer, a Node
/// package manager, a dev server): what it runs, or `None`. Such services
/// are left out of staging and production.
pub(crate) fn dev_tool(service: &Service) -> Option<String> {
    const TOOLS: [&str; 6] = ["composer", "npm", "npx", "yarn", "pnpm", "bun"];
    if service.image.base() == "composer" {
        return Some("composer".into());
    }
    let words = command_words(service);
    let first = words
        .iter()
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .find(|w| !matches!(*w, "sh" | "bash" | "-c" | "-lc" | "exec" | "env"))?;
    // `npm start` or `yarn serve` may be a Node server the app needs.
    let serves = words
        .iter()
        .any(|w| matches!(w.as_str(), "start" | "serve" | "preview"));
    (TOOLS.contains(&first) && (first == "composer" || !serves)).then(|| first.to_string())
}

impl Placed<'_> {
    /// The Kubernetes name; settings are looked up by `service.name`.
    pub fn name(&self) -> &str {
        &self.k8s_name
    }

    pub fn component(&self) -> &'static str {
        match (self.app, self.kind) {
            _ if self.one_off => "job",
            (true, _) if self.role == Role::Scheduler => "scheduler",
            (true, _) if self.role == Role::Worker => "worker",
            (true, _) if self.ports.is_empty() => "worker",
            (true, _) => "server",
            (false, Kind::Postgres | Kind::Mysql) => "database",
            (false, Kind::Redis | Kind::Memcached) => "cache",
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

pub(crate) fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
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
    let (placed, replacements) = place(stack, settings, env)?;
    let secrets = config::secret_values(stack);
    let mut objects = vec![Object::new("namespace", &namespace(settings, env))?];
    objects.extend(budgets(settings)?);
    for service in &placed {
        let split = config::split_env(service.service, settings, env, &secrets, &replacements)?;
        objects.extend(super::workloads::service_objects(
            stack, service, split, settings, env,
        )?);
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
        let keep = settings.service(&service.name).production == Some(Placement::Keep);
        if env != Env::Dev && !keep && dev_tool(service).is_some() {
            // A developer's tool: `inputs` says it is left out.
            continue;
        }
        let app = service.build.is_some();
        let kind = settings.kind(service);
        let ports = ports(service, settings, kind, app);
        // Something others wait on to complete is a task, not a server.
        let one_off = settings.service(&service.name).job == Some(true)
            || service.runs_once
            || stack
                .services
                .values()
                .any(|other| other.depends_on.get(&service.name) == Some(&Condition::Completed));
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
            k8s_name: settings.name(&service.name).to_string(),
            one_off,
            role: Role::of(service),
        });
    }
    let explicit: Vec<usize> = (0..placed.len())
        .filter(|&i| settings.service(&placed[i].service.name).ingress == Some(true))
        .collect();
    let chosen = if explicit.is_empty() {
        let default = placed.iter().position(|p| {
            p.app
                && !p.one_off
                && p.role == Role::Server
                && p.tcp_ports().next().is_some()
                && settings.service(&p.service.name).ingress != Some(false)
        });
        default.into_iter().collect()
    } else {
        explicit
    };
    for i in chosen {
        if placed[i].tcp_ports().next().is_none() {
            return Err(ExportError::NoIngressPort {
                service: placed[i].service.name.clone(),
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
            if let Some(target) = placed.iter().find(|p| &p.service.name == dependency) {
                if target.tcp_ports().next().is_none() && !target.one_off {
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
        Kind::Postgres => (production.database.as_ref().map(|e| e.get_ref()), 5432),
        Kind::Mysql => (production.database.as_ref().map(|e| e.get_ref()), 3306),
        Kind::Redis => (production.redis.as_ref().map(|e| e.get_ref()), 6379),
        Kind::Memcached => (production.memcached.as_ref().map(|e| e.get_ref()), 11211),
        Kind::Mail => (production.smtp.as_ref().map(|e| e.get_ref()), 587),
        Kind::S3 | Kind::Generic => (None, ports.first().map_or(443, |p| p.port)),
    };
    let s3 = production
        .s3
        .as_ref()
        .map(|s3| s3.get_ref().clone())
        .unwrap_or_default();
    let host = match kind {
        Kind::S3 => Some(match &s3.region {
            Some(region) => format!("s3.{region}.amazonaws.com"),
            None => "s3.amazonaws.com".to_string(),
        }),
        _ => endpoint.map(|e| e.host.clone()),
    };
    Replacement {
        tls: kind == Kind::Redis && endpoint.and_then(|e| e.tls) != Some(false),
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
        Kind::Mysql => Some(3306),
        Kind::Redis => Some(6379),
        Kind::Memcached => Some(11211),
        Kind::S3 => Some(9000),
        Kind::Mail => Some(1025),
        Kind::Generic => None,
    };
    let mut list: Vec<(u16, Protocol)> = Vec::new();
    let declared = service.ports.iter().map(|p| (p.container, p.protocol));
    let extra = probe_port.into_iter().chain(well_known).chain(
        settings
            .service(&service.name)
            .ports
            .iter()
            .flatten()
            .copied(),
    );
    for port in declared.chain(extra.map(|p| (p, Protocol::Tcp))) {
        if !list.contains(&port) {
            list.push(port);
        }
    }
    let first_name = settings
        .service(&service.name)
        .port_name
        .as_ref()
        .map(|name| name.get_ref().clone())
        .or_else(|| {
            let name = match (app, kind) {
                (true, _) => "http",
                (false, Kind::Postgres) => "postgres",
                (false, Kind::Mysql) => "mysql",
                (false, Kind::Redis) => "redis",
                (false, Kind::Memcached) => "memcache",
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

/// A LimitRange giving any container without resources modest defaults,
/// and a ResourceQuota capping the namespace, so that one runaway workload
/// cannot starve a shared cluster. Generous on purpose: edit them to fit.
fn budgets(settings: &Settings) -> Result<Vec<Object>, ExportError> {
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/part-of".to_string(),
            settings.project.clone(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "devenv".to_string(),
        ),
    ]);
    let amounts = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect::<BTreeMap<_, _>>()
    };
    let limits = LimitRange {
        metadata: meta("defaults", &labels),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: Some(amounts(&[("cpu", "500m"), ("memory", "512Mi")])),
                default_request: Some(amounts(&[("cpu", "100m"), ("memory", "128Mi")])),
                ..Default::default()
            }],
        }),
    };
    let quota = ResourceQuota {
        metadata: meta("budget", &labels),
        spec: Some(ResourceQuotaSpec {
            hard: Some(amounts(&[
                ("requests.cpu", "16"),
                ("requests.memory", "32Gi"),
                ("limits.cpu", "32"),
                ("limits.memory", "64Gi"),
                ("pods", "100"),
                ("persistentvolumeclaims", "20"),
                ("services.loadbalancers", "0"),
                ("services.nodeports", "0"),
            ])),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(vec![
        Object::new("namespace", &limits)?,
        Object::new("namespace", &quota)?,
    ])
}

fn namespace(settings: &Settings, env: Env) -> Namespace {
    let mut labels = BTreeMap::from([(
        "app.kubernetes.io/part-of".to_string(),
        settings.project.clone(),
    )]);
    // Sidecars stay under `restricted` with the Istio CNI node agent, which
    // sets up the traffic redirection that `istio-init` (NET_ADMIN) would.
    labels.insert(
        "pod-security.kubernetes.io/enforce".into(),
        "restricted".into(),
    );
    labels.insert(
        "pod-security.kubernetes.io/warn".into(),
        "restricted".into(),
    );
    if settings.istio {
        labels.insert("istio-injection".into(), "enabled".into());
    }
    if settings.ingress_class(env) == "alb" {
        // The AWS Load Balancer Controller holds a rollout until each new pod
        // is healthy in the ALB's target group (zero-downtime deploys).
        labels.insert(
            "elbv2.k8s.aws/pod-readiness-gate-inject".into(),
            "enabled".into(),
        );
    }
    Namespace {
        metadata: meta(&settings.namespace(env), &labels),
        ..Default::default()
    }
}
