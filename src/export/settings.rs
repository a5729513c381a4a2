//! The `[k8s]` tables of the stack file: what a local stack cannot know
//! about a cluster (registry, replicas, resources, host names, managed
//! endpoints, IAM role). Every key is optional, so a stack without any
//! `[k8s]` table still exports; the defaults live here and nowhere else.

use indexmap::IndexMap;
use serde::Deserialize;

use super::{Env, ExportError, ExportOptions};
use crate::config::model::{Probe, Service, Stack};

/// The top-level `[k8s]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StackSettings {
    /// Namespace prefix; each environment gets `<namespace>-<env>` unless it sets its own.
    pub namespace: Option<String>,
    pub image_registry: Option<String>,
    pub tag: Option<String>,
    pub storage_class: Option<String>,
    pub storage_size: Option<String>,
    #[serde(default)]
    pub istio: bool,
    /// Production secrets come from an `ExternalSecret` instead of a placeholder `Secret`.
    #[serde(default)]
    pub external_secrets: bool,
    /// The `ClusterSecretStore` the `ExternalSecret`s read from.
    pub secret_store: Option<String>,
    /// `Kind/name` or `Kind/name:field.path` entries that `--check` does not report.
    #[serde(default)]
    pub ignore_drift: Vec<String>,
    #[serde(default)]
    pub dev: EnvSettings,
    #[serde(default)]
    pub staging: EnvSettings,
    #[serde(default)]
    pub production: EnvSettings,
}

/// `[k8s.dev]`, `[k8s.staging]`, `[k8s.production]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvSettings {
    pub namespace: Option<String>,
    /// Ingress host name.
    pub host: Option<String>,
    pub ingress_class: Option<String>,
    /// ACM certificate for the ALB's HTTPS listener.
    pub certificate_arn: Option<String>,
    /// IAM role for the app's service account (IRSA).
    pub role_arn: Option<String>,
    /// Replicas, resources and autoscaling of the app services in this environment.
    pub replicas: Option<u16>,
    pub resources: Option<Resources>,
    pub hpa: Option<HpaSetting>,
    /// Env values the app services get in this environment instead of the local ones.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    pub database: Option<Endpoint>,
    pub redis: Option<Endpoint>,
    /// Run the seeders (`db:seed` hooks) in this environment too; on by default in dev and staging.
    pub seed: Option<bool>,
    pub smtp: Option<Endpoint>,
    pub s3: Option<S3>,
}

/// A managed service that replaces an in-cluster one in production.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: Option<u16>,
    /// TLS and AUTH (ElastiCache in-transit encryption); on unless `false`, Redis only.
    pub tls: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct S3 {
    pub bucket: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resources {
    #[serde(default)]
    pub requests: Amounts,
    #[serde(default)]
    pub limits: Amounts,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Amounts {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// `hpa = false` turns autoscaling off, `hpa = true` or a table turns it on.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum HpaSetting {
    Switch(bool),
    Scale(Hpa),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hpa {
    pub min: Option<u16>,
    pub max: Option<u16>,
    /// Target average CPU utilisation, in percent of the request.
    pub cpu: Option<u8>,
}

/// `[services.<name>.k8s]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceSettings {
    pub replicas: Option<u16>,
    pub resources: Option<Resources>,
    pub hpa: Option<HpaSetting>,
    /// Dockerfile target of the cluster image (the local one is usually `dev`).
    pub target: Option<String>,
    /// Name of the first TCP port (`http` for app services).
    pub port_name: Option<String>,
    /// Container ports to expose beyond the published ones and the probe's.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Paths that stay writable under the read-only root filesystem (emptyDir).
    pub writable: Option<Vec<String>>,
    pub run_as_user: Option<i64>,
    /// Whether the service gets the Ingress (default: the first app service with a TCP port).
    pub ingress: Option<bool>,
    /// What the service is, when its image name does not tell.
    pub kind: Option<Kind>,
    /// `keep` runs a backing service in-cluster in production too.
    pub production: Option<Placement>,
    /// Runs once per release as a Job (as does a service others wait on with `completed`).
    #[serde(default)]
    pub job: bool,
}

/// What a backing service is; decides its production replacement and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Postgres,
    Redis,
    S3,
    Mail,
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Placement {
    Keep,
    External,
}

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
        let mut top: StackSettings = parse(stack.k8s.as_ref(), "k8s")?;
        for (env, settings) in [(Env::Dev, &top.dev), (Env::Staging, &top.staging)] {
            let production_only = [
                ("database", settings.database.is_some()),
                ("redis", settings.redis.is_some()),
                ("smtp", settings.smtp.is_some()),
                ("s3", settings.s3.is_some()),
            ];
            if let Some((key, _)) = production_only.iter().find(|(_, set)| *set) {
                return Err(ExportError::ProductionOnly {
                    table: format!("k8s.{env}"),
                    key,
                });
            }
        }
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
        for entry in &top.ignore_drift {
            if !entry
                .split(':')
                .next()
                .is_some_and(|object| object.contains('/'))
            {
                return Err(ExportError::Settings {
                    table: "k8s".into(),
                    message: format!("`ignore_drift` entry `{entry}` is not `Kind/name` or `Kind/name:field.path`"),
                });
            }
        }
        let mut services = IndexMap::new();
        for (name, service) in &stack.services {
            let table = format!("services.{name}.k8s");
            let settings: ServiceSettings = parse(service.k8s.as_ref(), &table)?;
            check_hpa(settings.hpa.as_ref(), &table)?;
            if let Some(port_name) = &settings.port_name {
                super::names::check_port_name(port_name).map_err(|reason| {
                    ExportError::Settings {
                        table: table.clone(),
                        message: format!("`port_name` `{port_name}` {reason}"),
                    }
                })?;
            }
            services.insert(name.clone(), settings);
        }
        for env in Env::ALL {
            check_hpa(top.env(env).hpa.as_ref(), &format!("k8s.{env}"))?;
        }
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
        let without_tag = service
            .image
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'));
        let repository = without_tag.map_or(service.image.as_str(), |(repository, _)| repository);
        let repository = repository.rsplit('/').next().unwrap_or(repository);
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

    pub fn autoscale(&self, service: &str, env: Env) -> Option<Autoscale> {
        let setting = self
            .stack
            .env(env)
            .hpa
            .as_ref()
            .or(self.service(service).hpa.as_ref());
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
        let repository = service.image.split(':').next().unwrap_or_default();
        let base = repository.rsplit('/').next().unwrap_or_default();
        match base {
            "postgres" | "postgis" => Kind::Postgres,
            "redis" | "valkey" | "keydb" => Kind::Redis,
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

fn parse<T: Default + for<'de> Deserialize<'de>>(
    table: Option<&toml::Table>,
    name: &str,
) -> Result<T, ExportError> {
    let Some(table) = table else {
        return Ok(T::default());
    };
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|err: toml::de::Error| ExportError::Settings {
            table: name.to_string(),
            message: err.message().trim().to_string(),
        })
}

fn check_hpa(setting: Option<&HpaSetting>, table: &str) -> Result<(), ExportError> {
    let Some(HpaSetting::Scale(hpa)) = setting else {
        return Ok(());
    };
    let problem = match (hpa.min, hpa.max, hpa.cpu) {
        (Some(0), _, _) => "`hpa.min` must be at least 1",
        (Some(min), Some(max), _) if min > max => "`hpa.min` is larger than `hpa.max`",
        (_, _, Some(cpu)) if !(1..=100).contains(&cpu) => {
            "`hpa.cpu` is a percentage between 1 and 100"
        }
        _ => return Ok(()),
    };
    Err(ExportError::Settings {
        table: table.to_string(),
        message: problem.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn a_wrong_key_names_the_table_and_the_key() {
        let err =
            parse::<ServiceSettings>(Some(&table("replica = 2")), "services.app.k8s").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("`[services.app.k8s]`"), "{message}");
        assert!(message.contains("`replica`"), "{message}");
    }

    #[test]
    fn hpa_takes_a_switch_or_a_table() {
        let off: ServiceSettings = parse(Some(&table("hpa = false")), "t").unwrap();
        assert!(matches!(off.hpa, Some(HpaSetting::Switch(false))));
        let on: ServiceSettings = parse(Some(&table("hpa = { min = 2, max = 5 }")), "t").unwrap();
        assert!(matches!(
            on.hpa,
            Some(HpaSetting::Scale(Hpa {
                min: Some(2),
                max: Some(5),
                cpu: None
            }))
        ));
        let bad = table("hpa = { min = 4, max = 2 }");
        let bad: ServiceSettings = parse(Some(&bad), "t").unwrap();
        assert!(check_hpa(bad.hpa.as_ref(), "t").is_err());
    }

    #[test]
    fn environments_parse_endpoints() {
        let top: StackSettings = parse(
            Some(&table(
                "[production]\ndatabase = { host = \"db.example\", port = 5433 }\ns3 = { bucket = \"b\" }",
            )),
            "k8s",
        )
        .unwrap();
        assert_eq!(top.production.database.unwrap().port, Some(5433));
        assert_eq!(top.production.s3.unwrap().bucket.as_deref(), Some("b"));
    }
}
