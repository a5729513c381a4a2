//! The `[k8s]` tables of the stack file as export reads them: the typed
//! tables from the model (`config::k8s`, checked with the rest of
//! `dev.toml`) with the command-line options folded in. Every key is
//! optional; the defaults live here and nowhere else.

use indexmap::IndexMap;

use super::{Env, ExportError, ExportOptions};
pub(crate) use crate::config::k8s::{
    Amounts, EnvSettings, Hpa, HpaSetting, Kind, Placement, Resources, ServiceSettings,
    StackSettings,
};
use crate::config::model::{Probe, Service, Stack};

/// The effective autoscaling of one app service in one environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Autoscale {
    pub min: i32,
    pub max: i32,
    pub cpu: i32,
}

/// Everything export reads besides the model: the `[k8s]` tables, parsed,
/// with the command-line options folded in.
#[derive(Debug)]
pub(crate) struct Settings {
    pub stack: StackSettings,
    pub services: IndexMap<String, ServiceSettings>,
    /// The project's name as a DNS-1123 label.
    pub project: String,
    pub istio: bool,
    /// The image tag and whether the user chose it (`--tag`, `[k8s] tag`).
    tag: Option<(String, bool)>,
    /// Kubernetes name of each service, by its stack name.
    pub names: IndexMap<String, String>,
}

const DEFAULT_STORAGE_SIZE: &str = "1Gi";
const DEFAULT_SECRET_STORE: &str = "aws-secrets-manager";
const DEFAULT_UID: i64 = 10001;

impl Settings {
    pub fn read(stack: &Stack, opts: &ExportOptions) -> Result<Self, ExportError> {
        let mut top: StackSettings = stack.k8s.clone().unwrap_or_default();
        if let Some(registry) = &opts.image_registry {
            top.image_registry = Some(registry.clone());
        }
        if let Some(tag) = &opts.tag {
            top.tag = Some(tag.clone());
        }
        let tag = match (&top.tag, &opts.commit) {
            (Some(tag), _) => Some((tag.clone(), true)),
            (None, Some(commit)) => Some((commit.clone(), false)),
            (None, None) => None,
        };
        let services = stack
            .services
            .iter()
            .map(|(name, service)| (name.clone(), service.k8s.clone().unwrap_or_default()))
            .collect();
        let names = super::names::service_names(stack.services.keys())?;
        Ok(Self {
            istio: opts.istio || top.istio,
            stack: top,
            services,
            project: super::names::to_dns_label(&stack.project),
            tag,
            names,
        })
    }

    pub fn service(&self, name: &str) -> &ServiceSettings {
        // Every service of the stack was read in `read`.
        &self.services[name]
    }

    pub fn namespace(&self, env: Env) -> String {
        match &self.stack.env(env).namespace {
            Some(namespace) => namespace.clone(),
            None => format!(
                "{}-{env}",
                self.stack.namespace.as_deref().unwrap_or(&self.project)
            ),
        }
    }

    /// The app's image tag in `env`: the one given, else the checkout's
    /// commit; `latest` only in dev, or when given.
    pub fn tag(&self, env: Env) -> Result<&str, ExportError> {
        match &self.tag {
            Some((tag, forced)) if tag != "latest" || *forced || env == Env::Dev => Ok(tag),
            Some(_) | None if env == Env::Dev => Ok("latest"),
            _ => Err(ExportError::NoTag { env }),
        }
    }

    /// The Kubernetes name of a service.
    pub fn name<'a>(&'a self, service: &'a str) -> &'a str {
        self.names.get(service).map_or(service, String::as_str)
    }

    /// The Ingress class: nginx in dev, the AWS Load Balancer Controller's ALB elsewhere.
    pub fn ingress_class(&self, env: Env) -> String {
        self.stack
            .env(env)
            .ingress_class
            .clone()
            .unwrap_or_else(|| match env {
                Env::Dev => "nginx".into(),
                Env::Staging | Env::Production => "alb".into(),
            })
    }

    /// Whether the `db:seed` hooks run in `env`: dev and staging unless told.
    pub fn seed(&self, env: Env) -> bool {
        self.stack.env(env).seed.unwrap_or(env != Env::Production)
    }

    pub fn storage_size(&self) -> &str {
        self.stack
            .storage_size
            .as_deref()
            .unwrap_or(DEFAULT_STORAGE_SIZE)
    }

    pub fn secret_store(&self) -> &str {
        self.stack
            .secret_store
            .as_deref()
            .unwrap_or(DEFAULT_SECRET_STORE)
    }

    /// The image the cluster runs for a service built locally; a worker
    /// built like the app (same context, Dockerfile and target) runs the
    /// app's image rather than a copy of it.
    pub fn app_image(
        &self,
        stack: &Stack,
        service: &Service,
        env: Env,
    ) -> Result<String, ExportError> {
        let same_build =
            stack
                .services
                .values()
                .find(|other| match (&other.build, &service.build) {
                    (Some(a), Some(b)) => {
                        a.context == b.context
                            && a.dockerfile == b.dockerfile
                            && self.build_target(other) == self.build_target(service)
                    }
                    _ => false,
                });
        let service = same_build.unwrap_or(service);
        let tag = self.tag(env)?;
        let repository = service.image.base();
        Ok(match &self.stack.image_registry {
            Some(registry) => format!("{}/{repository}:{tag}", registry.trim_end_matches('/')),
            None => format!("{repository}:{tag}"),
        })
    }

    pub fn build_target(&self, service: &Service) -> Option<String> {
        let local = service.build.as_ref()?.target.as_ref();
        self.service(&service.name)
            .target
            .clone()
            .or_else(|| local.map(|_| "prod".to_string()))
    }

    /// Replicas of an app service (ignored when it autoscales).
    pub fn replicas(&self, service: &str, env: Env) -> i32 {
        let default = match env {
            Env::Dev => 1,
            Env::Staging => 2,
            Env::Production => 3,
        };
        i32::from(
            self.stack
                .env(env)
                .replicas
                .or(self.service(service).replicas)
                .unwrap_or(default),
        )
    }

    /// Replicas of a queue worker: its own `replicas`, else one in dev and
    /// two elsewhere; the environment's `replicas` sizes the servers.
    pub fn worker_replicas(&self, service: &str, env: Env) -> i32 {
        let default = if env == Env::Dev { 1 } else { 2 };
        self.service(service).replicas.map_or(default, i32::from)
    }

    pub fn autoscale(&self, service: &str, env: Env) -> Option<Autoscale> {
        let setting = self
            .stack
            .env(env)
            .hpa
            .as_ref()
            .or(self.service(service).hpa.as_ref())
            .map(|hpa| hpa.get_ref());
        let scale = match setting {
            Some(HpaSetting::Switch(false)) => return None,
            Some(HpaSetting::Switch(true)) => Hpa::default(),
            Some(HpaSetting::Scale(scale)) => *scale,
            None if env == Env::Dev => return None,
            None => Hpa::default(),
        };
        let min = scale
            .min
            .map_or_else(|| self.replicas(service, env), i32::from);
        Some(Autoscale {
            min,
            max: scale.max.map_or(min.max(1) * 3, i32::from),
            cpu: scale.cpu.map_or(70, i32::from),
        })
    }

    pub fn resources(&self, service: &str, env: Env, app: bool) -> Resources {
        let (requests, limits) = match (app, env) {
            (true, Env::Production) => (("250m", "256Mi"), ("1", "1Gi")),
            _ => (("100m", "128Mi"), ("500m", "512Mi")),
        };
        let env_level = if app {
            self.stack.env(env).resources.as_ref()
        } else {
            None
        };
        let layers = [env_level, self.service(service).resources.as_ref()];
        let pick = |get: fn(&Resources) -> &Option<String>, default: &str| {
            layers
                .iter()
                .flatten()
                .find_map(|r| get(r).clone())
                .unwrap_or_else(|| default.to_string())
        };
        Resources {
            requests: Amounts {
                cpu: Some(pick(|r| &r.requests.cpu, requests.0)),
                memory: Some(pick(|r| &r.requests.memory, requests.1)),
            },
            limits: Amounts {
                cpu: Some(pick(|r| &r.limits.cpu, limits.0)),
                memory: Some(pick(|r| &r.limits.memory, limits.1)),
            },
        }
    }

    pub fn run_as_user(&self, service: &Service) -> i64 {
        let numeric = service
            .user
            .as_deref()
            .and_then(|user| user.split(':').next()?.parse().ok());
        self.service(&service.name)
            .run_as_user
            .or(numeric.filter(|uid| *uid != 0))
            .unwrap_or(DEFAULT_UID)
    }

    pub fn kind(&self, service: &Service) -> Kind {
        if let Some(kind) = self.service(&service.name).kind {
            return kind;
        }
        match service.ready {
            Some(Probe::Postgres { .. }) => return Kind::Postgres,
            Some(Probe::Redis { .. }) => return Kind::Redis,
            _ => {}
        }
        // What the image is, from any registry: a mirror's
        // `registry.local:5000/library/postgres:16` is PostgreSQL too.
        match service.image.base() {
            "postgres" | "postgis" => Kind::Postgres,
            "mysql" | "mariadb" | "percona" => Kind::Mysql,
            "redis" | "valkey" | "keydb" => Kind::Redis,
            "memcached" => Kind::Memcached,
            "minio" => Kind::S3,
            "mailhog" | "mailpit" | "maildump" => Kind::Mail,
            _ => Kind::Generic,
        }
    }
}

impl StackSettings {
    pub fn env(&self, env: Env) -> &EnvSettings {
        match env {
            Env::Dev => &self.dev,
            Env::Staging => &self.staging,
            Env::Production => &self.production,
        }
    }
}
