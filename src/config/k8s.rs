//! The `[k8s]` tables of the stack file, typed: what a local stack cannot
//! know about a cluster (registry, replicas, resources, host names, managed
//! endpoints, IAM role). They are read with the rest of `dev.toml`, so a
//! typo (`replica = 2`) fails `devenv config` at its line with a
//! did-you-mean; export reads them from the model and keeps the defaults.
//! Every key is optional, so a stack without any `[k8s]` table still exports.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::{ConfigError, Src};
use super::secret::MASK;

/// The top-level `[k8s]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackSettings {
    /// Namespace prefix; each environment gets `<namespace>-<env>` unless it sets its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The AWS region of the registry and the cluster, for the CI workflows
    /// (`export --ci`); an ECR registry's own region by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The EKS cluster the CI workflows deploy to (an environment may name its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_size: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub istio: bool,
    /// With Istio: mesh traffic in the namespace must be mutual TLS
    /// (`PeerAuthentication` STRICT), the Ingress port excepted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict_mtls: bool,
    /// Production secrets come from an `ExternalSecret` instead of a placeholder `Secret`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external_secrets: bool,
    /// The `ClusterSecretStore` the `ExternalSecret`s read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_store: Option<String>,
    /// The VPC's CIDR blocks: egress to the managed databases and caches
    /// (RDS, ElastiCache) goes there only, instead of anywhere on their port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpc_cidrs: Vec<Spanned<String>>,
    /// `Kind/name` or `Kind/name:field.path` entries that `--check` does not report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_drift: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "EnvSettings::is_unset")]
    pub dev: EnvSettings,
    #[serde(default, skip_serializing_if = "EnvSettings::is_unset")]
    pub staging: EnvSettings,
    #[serde(default, skip_serializing_if = "EnvSettings::is_unset")]
    pub production: EnvSettings,
}

/// `[k8s.dev]`, `[k8s.staging]`, `[k8s.production]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Ingress host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<String>,
    /// ACM certificate for the ALB's HTTPS listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// IAM role for the app's service account (IRSA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// IAM role the CI workflows assume through GitHub OIDC to push the
    /// images (staging's) and deploy to this environment (`export --ci`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_role_arn: Option<String>,
    /// The EKS cluster of this environment, instead of `[k8s] cluster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Replicas, resources and autoscaling of the app services in this environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa: Option<Spanned<HpaSetting>>,
    /// Env values the app services get in this environment instead of the
    /// local ones; a secret-looking name prints masked.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "masked_env"
    )]
    pub env: IndexMap<String, String>,
    /// Managed services that replace in-cluster ones (production only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<Spanned<Endpoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<Spanned<Endpoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcached: Option<Spanned<Endpoint>>,
    /// Run the seeders (`db:seed` hooks) in this environment too; on by default in dev and staging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<Spanned<Endpoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<Spanned<S3>>,
}

/// A managed service that replaces an in-cluster one in production.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// TLS and AUTH (ElastiCache in-transit encryption); on unless `false`, Redis only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: Amounts,
    #[serde(default)]
    pub limits: Amounts,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// `hpa = false` turns autoscaling off, `hpa = true` or a table turns it on.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum HpaSetting {
    Switch(bool),
    Scale(Hpa),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hpa {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
    /// Target average CPU utilisation, in percent of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u8>,
}

/// `[services.<name>.k8s]` (a preset's `[k8s]` under it, key by key).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpa: Option<Spanned<HpaSetting>>,
    /// Dockerfile target of the cluster image (the local one is usually `dev`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Name of the first TCP port (`http` for app services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_name: Option<Spanned<String>>,
    /// Container ports to expose beyond the published ones and the probe's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    /// Paths that stay writable under the read-only root filesystem (emptyDir).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Whether the service gets the Ingress (default: the first app service with a TCP port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<bool>,
    /// What the service is, when its image name does not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// `keep` runs a backing service in-cluster in production too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub production: Option<Placement>,
    /// Runs once per release as a Job (as does a service others wait on with `completed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<bool>,
}

/// What a backing service is; decides its production replacement and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Postgres,
    /// MySQL or MariaDB (RDS MySQL/MariaDB in production).
    Mysql,
    Redis,
    /// ElastiCache for Memcached in production.
    Memcached,
    S3,
    Mail,
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    Keep,
    External,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn masked_env<S: serde::Serializer>(
    env: &IndexMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(env.len()))?;
    for (k, v) in env {
        let shown = if secret_like(k, v) { MASK } else { v };
        map.serialize_entry(k, shown)?;
    }
    map.end()
}

/// Whether a cluster env value is shown masked: a secret name (the one
/// rule, [`super::secret::is_secret_name`], which export asks too) or a URL
/// with credentials.
fn secret_like(key: &str, value: &str) -> bool {
    let url_with_user = value.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .contains('@')
    });
    super::secret::is_secret_name(key) || url_with_user
}

impl EnvSettings {
    fn is_unset(&self) -> bool {
        *self == EnvSettings::default()
    }
}

impl ServiceSettings {
    /// A preset's table under the service's own: the service's keys win,
    /// whole values at a time (as the preset's other keys do).
    pub fn over(self, base: ServiceSettings) -> ServiceSettings {
        ServiceSettings {
            replicas: self.replicas.or(base.replicas),
            resources: self.resources.or(base.resources),
            hpa: self.hpa.or(base.hpa),
            target: self.target.or(base.target),
            port_name: self.port_name.or(base.port_name),
            ports: self.ports.or(base.ports),
            writable: self.writable.or(base.writable),
            run_as_user: self.run_as_user.or(base.run_as_user),
            ingress: self.ingress.or(base.ingress),
            kind: self.kind.or(base.kind),
            production: self.production.or(base.production),
            job: self.job.or(base.job),
        }
    }
}

/// What serde cannot say about the top-level table: managed endpoints only
/// in production, `ignore_drift` entries' shape, autoscaling bounds.
pub(super) fn check_stack(src: &Src, k8s: &StackSettings) -> Result<(), ConfigError> {
    for (env, settings) in [("dev", &k8s.dev), ("staging", &k8s.staging)] {
        let spans = [
            ("database", settings.database.as_ref().map(Spanned::span)),
            ("redis", settings.redis.as_ref().map(Spanned::span)),
            ("memcached", settings.memcached.as_ref().map(Spanned::span)),
            ("smtp", settings.smtp.as_ref().map(Spanned::span)),
            ("s3", settings.s3.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(span))) = spans.into_iter().find(|(_, s)| s.is_some()) {
            return Err(ConfigError::invalid(
                src,
                span,
                format!("`{key}` in `[k8s.{env}]`: managed endpoints replace in-cluster services in production only"),
                "here",
                Some(format!("move `{key}` to `[k8s.production]`")),
            ));
        }
    }
    for entry in &k8s.vpc_cidrs {
        let text = entry.get_ref();
        if !is_cidr(text) {
            return Err(ConfigError::invalid(
                src,
                entry.span(),
                format!("`vpc_cidrs` entry `{text}` is not a CIDR block"),
                "this entry",
                Some("e.g. `10.0.0.0/16` (the VPC's, as Terraform outputs it)".into()),
            ));
        }
    }
    for entry in &k8s.ignore_drift {
        let text = entry.get_ref();
        if !text
            .split(':')
            .next()
            .is_some_and(|object| object.contains('/'))
        {
            return Err(ConfigError::invalid(
                src,
                entry.span(),
                format!(
                    "`ignore_drift` entry `{text}` is not `Kind/name` or `Kind/name:field.path`"
                ),
                "this entry",
                Some("e.g. `ConfigMap/app-env:data.QUEUE_CONNECTION` or `Deployment/app`".into()),
            ));
        }
    }
    for (env, settings) in [
        ("dev", &k8s.dev),
        ("staging", &k8s.staging),
        ("production", &k8s.production),
    ] {
        check_hpa(src, settings.hpa.as_ref(), &format!("k8s.{env}"))?;
    }
    Ok(())
}

/// `address/prefix`, IPv4 or IPv6.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let max = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

/// What serde cannot say about a service's table: autoscaling bounds and
/// the port name's shape.
pub(super) fn check_service(
    src: &Src,
    k8s: &ServiceSettings,
    service: &str,
) -> Result<(), ConfigError> {
    let table = format!("services.{service}.k8s");
    check_hpa(src, k8s.hpa.as_ref(), &table)?;
    if let Some(name) = &k8s.port_name {
        check_port_name(name.get_ref()).map_err(|reason| {
            ConfigError::invalid(
                src,
                name.span(),
                format!("`port_name` `{}` in `[{table}]` {reason}", name.get_ref()),
                "here",
                Some("a port name is an IANA service name, e.g. `http` or `tcp-8080`".into()),
            )
        })?;
    }
    Ok(())
}

fn check_hpa(
    src: &Src,
    setting: Option<&Spanned<HpaSetting>>,
    table: &str,
) -> Result<(), ConfigError> {
    let Some(setting) = setting else {
        return Ok(());
    };
    let HpaSetting::Scale(hpa) = setting.get_ref() else {
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
    Err(ConfigError::invalid(
        src,
        setting.span(),
        format!("{problem} in `[{table}]`"),
        "here",
        Some("write e.g. `hpa = { min = 2, max = 6, cpu = 70 }`, or `hpa = false`".into()),
    ))
}

/// An IANA service name: what a port name must be.
pub fn check_port_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be 1 to 15 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err("may hold only lowercase letters, digits and single inner `-`");
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain a letter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, LoadOptions};

    fn load(text: &str) -> Result<crate::config::model::Stack, ConfigError> {
        let dir = std::env::temp_dir();
        parse(
            text,
            "dev.toml",
            &dir.join("dev.toml"),
            &dir,
            &LoadOptions {
                cwd: dir.clone(),
                ..LoadOptions::default()
            },
        )
    }

    /// The error's message, help and the 1-based line:column its span starts at.
    fn located(text: &str) -> (String, String, String) {
        let err = load(text).unwrap_err();
        let (span, help) = match &err {
            ConfigError::Syntax { span, help, .. } => (span.expect("a span"), help.clone()),
            ConfigError::Invalid { span, help, .. } => (*span, help.clone()),
            other => panic!("no location: {other:?}"),
        };
        let before = &text[..span.offset()];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (
            err.to_string(),
            help.unwrap_or_default(),
            format!("{line}:{column}"),
        )
    }

    const APP: &str = "[services.app]\nimage = \"x\"\n";

    #[test]
    fn r14_a_typo_in_an_environment_table_is_located_with_a_suggestion() {
        let text = format!("{APP}[k8s.production]\nreplica = 2\n");
        let (message, help, at) = located(&text);
        assert!(message.contains("unknown field `replica`"), "{message}");
        assert_eq!(at, "4:1");
        assert!(help.starts_with("did you mean `replicas`?"), "{help}");
    }

    #[test]
    fn r14_a_typo_in_a_service_table_is_located_with_a_suggestion() {
        let text = format!("{APP}k8s = {{ replica = 2 }}\n");
        let (message, help, at) = located(&text);
        assert!(message.contains("unknown field `replica`"), "{message}");
        assert_eq!(at, "3:9");
        assert!(help.starts_with("did you mean `replicas`?"), "{help}");
        let (message, _, at) = located(&format!("{APP}[k8s]\nimage_registy = \"r\"\n"));
        assert!(message.contains("`image_registy`"), "{message}");
        assert_eq!(at, "4:1");
        let (message, _, _) = located(&format!("{APP}[k8s.production]\nreplicas = \"two\"\n"));
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn what_serde_cannot_check_is_located_too() {
        let (message, help, at) = located(&format!(
            "{APP}[k8s.staging]\ndatabase = {{ host = \"x\" }}\n"
        ));
        assert!(
            message.contains("`database` in `[k8s.staging]`"),
            "{message}"
        );
        assert!(help.contains("`[k8s.production]`"), "{help}");
        assert_eq!(at, "4:12");
        let (message, _, at) = located(&format!("{APP}[k8s]\nignore_drift = [\"app\"]\n"));
        assert!(message.contains("`ignore_drift` entry `app`"), "{message}");
        assert_eq!(at, "4:17");
        let (message, _, at) = located(&format!("{APP}k8s = {{ hpa = {{ min = 4, max = 2 }} }}\n"));
        assert!(
            message.contains("`hpa.min` is larger than `hpa.max`"),
            "{message}"
        );
        assert!(message.contains("`[services.app.k8s]`"), "{message}");
        assert_eq!(at, "3:15");
        let (message, _, _) = located(&format!("{APP}[k8s.production]\nhpa = {{ cpu = 0 }}\n"));
        assert!(message.contains("percentage"), "{message}");
        let (message, _, at) = located(&format!("{APP}k8s = {{ port_name = \"8080\" }}\n"));
        assert!(message.contains("`port_name` `8080`"), "{message}");
        assert_eq!(at, "3:21");
    }

    #[test]
    fn the_tables_are_typed_in_the_model() {
        let stack = load(&format!(
            "{APP}k8s = {{ replicas = 2, hpa = false }}\n[k8s]\nimage_registry = \"r.example\"\n\
             [k8s.production]\ndatabase = {{ host = \"db.example\", port = 5433 }}\n\
             s3 = {{ bucket = \"b\" }}\nenv = {{ APP_KEY = \"k\", APP_NAME = \"shop\" }}\n"
        ))
        .unwrap();
        let k8s = stack.k8s.as_ref().unwrap();
        assert_eq!(k8s.image_registry.as_deref(), Some("r.example"));
        let database = k8s.production.database.as_ref().unwrap().get_ref();
        assert_eq!(
            (database.host.as_str(), database.port),
            ("db.example", Some(5433))
        );
        assert_eq!(
            k8s.production
                .s3
                .as_ref()
                .unwrap()
                .get_ref()
                .bucket
                .as_deref(),
            Some("b")
        );
        let app = stack.services["app"].k8s.as_ref().unwrap();
        assert_eq!(app.replicas, Some(2));
        assert_eq!(
            app.hpa.as_ref().map(|h| h.get_ref()),
            Some(&HpaSetting::Switch(false))
        );
        // `devenv config` prints them; a secret-looking env value is masked.
        let json = serde_json::to_string(&stack).unwrap();
        assert!(json.contains("\"APP_KEY\":\"********\""), "{json}");
        assert!(json.contains("\"APP_NAME\":\"shop\""), "{json}");
        assert!(secret_like("SENTRY_DSN", "x"));
        assert!(secret_like("CACHE_URL", "redis://:pw@cache:6379"));
        assert!(!secret_like("CACHE_URL", "redis://cache:6379"));
        assert!(
            !json.contains("\"staging\""),
            "unset tables are left out: {json}"
        );
    }

    #[test]
    fn hpa_takes_a_switch_or_a_table() {
        let on: ServiceSettings = toml::from_str("hpa = { min = 2, max = 5 }").unwrap();
        assert_eq!(
            on.hpa.map(|h| h.into_inner()),
            Some(HpaSetting::Scale(Hpa {
                min: Some(2),
                max: Some(5),
                cpu: None
            }))
        );
    }

    #[test]
    fn a_presets_table_lies_under_the_services_key_by_key() {
        let stack = load(
            "[services.app]\nuse = \"laravel\"\ndepends_on = []\nk8s = { replicas = 4, target = \"release\" }\n",
        )
        .unwrap();
        let app = stack.services["app"].k8s.as_ref().unwrap();
        assert_eq!(app.replicas, Some(4));
        assert_eq!(
            app.target.as_deref(),
            Some("release"),
            "the service's key wins"
        );
        assert_eq!(
            app.writable.as_ref().map(Vec::len),
            Some(3),
            "the preset's other keys stay"
        );
    }
}
