//! A service's environment in the cluster: which values are secret, which
//! local values stop making sense in production (host names of services
//! that become managed ones, MinIO credentials that IRSA replaces), and the
//! ConfigMap, Secret or ExternalSecret that carries them.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::settings::{Kind, Settings};
use super::{Env, ExportError};
use crate::config::model::{Probe, Service, Stack};

/// The value production Secrets and unknown endpoints get instead of a local one.
pub(crate) const PLACEHOLDER: &str = "CHANGE_ME";
/// Annotation telling what a placeholder stands for.
pub(crate) const FILL_IN: &str = "devenv.dev/fill-in";

/// A backing service that production replaces with a managed one.
#[derive(Debug)]
pub(crate) struct Replacement {
    pub service: String,
    pub kind: Kind,
    /// `None` when `[k8s.production]` does not say: the env gets a placeholder.
    pub host: Option<String>,
    pub port: u16,
    pub bucket: Option<String>,
    pub region: Option<String>,
    /// ElastiCache in-transit encryption and AUTH (Redis only).
    pub tls: bool,
}

/// One service's env, split for a ConfigMap and a Secret.
#[derive(Debug, Default)]
pub(crate) struct SplitEnv {
    pub config: IndexMap<String, String>,
    pub secret: IndexMap<String, String>,
    /// Config keys holding [`PLACEHOLDER`] because nothing told the real value.
    pub fill_in: Vec<String>,
    /// The Secret key holding the Redis probe's password, which the probe
    /// reads as `REDISCLI_AUTH` (never from its argv).
    pub probe_auth: Option<String>,
}

/// The variable `redis-cli` reads its password from.
pub(crate) const REDISCLI_AUTH: &str = "REDISCLI_AUTH";

/// `text` (a hook or a command word) with each secret value of the
/// service's Secret replaced by a `$(KEY)` reference, which Kubernetes
/// expands from the container's env: manifests name secrets, never hold
/// them. Only where the text came from a variable (`${DB_PASSWORD}`): what
/// dev.toml spells out stays as written, so `php artisan jwt:secret` keeps
/// its word when a password happens to be `secret`. `Err` carries the text
/// masked when a variable put in a secret of the stack that the container
/// has no key for.
pub(crate) fn reference_secrets(
    text: &str,
    service: &Service,
    split: &SplitEnv,
    secrets: &[String],
) -> Result<String, String> {
    let mut held: Vec<(&str, &str)> = service
        .env
        .iter()
        .filter(|(key, v)| split.secret.contains_key(*key) && !v.value.is_empty())
        .map(|(key, v)| (key.as_str(), v.value.as_str()))
        .collect();
    // Longest first, so that a secret inside another leaves no tail.
    held.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
    let left: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .chain(service.secret_values())
        .filter(|s| !s.is_empty())
        .collect();
    // A text not read from a stack file (made in code) counts as a
    // variable's value throughout.
    let mut spans = service
        .interpolated_spans(text)
        .unwrap_or_else(|| std::iter::once(0..text.len()).collect());
    spans.sort_by_key(|r| (r.start, r.end));
    let (mut out, mut at, mut leaked) = (String::new(), 0, false);
    for r in spans.into_iter().filter(|r| r.end <= text.len()) {
        if r.start < at {
            continue;
        }
        out.push_str(&text[at..r.start]);
        let mut part = text[r.clone()].to_string();
        for (key, value) in &held {
            part = part.replace(value, &format!("$({key})"));
        }
        leaked |= crate::config::secret::mask_in(&part, left.iter().copied()) != part;
        out.push_str(&part);
        at = r.end;
    }
    out.push_str(&text[at..]);
    if leaked {
        Err(crate::config::secret::mask_in(&out, left.iter().copied()))
    } else {
        Ok(out)
    }
}

/// Whether an env key names a credential: the one rule of the stack
/// ([`crate::config::secret::is_secret_name`]), so that what `devenv config`
/// masks and what goes to a Secret agree.
pub(crate) fn is_secret_key(key: &str) -> bool {
    crate::config::secret::is_secret_name(key)
}

/// Whether a value carries a credential: a URL with user info
/// (`postgres://app:pw@db/app`, a Sentry DSN `https://key@o1.ingest…`).
pub(crate) fn is_secret_value(value: &str) -> bool {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return false;
    };
    let authority = value[start..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    authority.contains('@')
}

/// Every local value that must not reach production, stack-wide, so that
/// a value embedding one (`DATABASE_URL` with the password) is secret too.
pub(crate) fn secret_values(stack: &Stack) -> Vec<String> {
    let mut values: Vec<String> = stack
        .services
        .values()
        .flat_map(|service| &service.env)
        .filter(|(key, value)| value.secret || is_secret_key(key))
        .map(|(_, value)| value.value.clone())
        .filter(|value| !value.is_empty())
        .collect();
    values.sort();
    values.dedup();
    values
}

/// A service's env for one environment, split into its ConfigMap and its
/// Secret: values rewritten for managed services in production, Laravel's
/// defaults for the app, and placeholders for secrets outside dev.
pub(crate) fn split_env(
    service: &Service,
    settings: &Settings,
    env: Env,
    secrets: &[String],
    replacements: &[Replacement],
) -> Result<SplitEnv, ExportError> {
    let probe_password = match &service.ready {
        Some(Probe::Redis {
            password: Some(password),
            ..
        }) => Some(password.expose()),
        _ => None,
    };
    let mut split = split_own(
        service,
        settings,
        env,
        secrets,
        replacements,
        probe_password,
    )?;
    if env == Env::Production {
        managed_env(service, replacements, &mut split);
    }
    if service.build.is_some() {
        laravel_defaults(&mut split.config, env);
        if env != Env::Dev && shares_state(service, settings, env) {
            shared_sessions_and_cache(service, &mut split.config);
        }
        for (key, value) in &settings.stack.env(env).env {
            let side = if is_secret_key(key) || is_secret_value(value) {
                &mut split.secret
            } else {
                &mut split.config
            };
            side.insert(key.clone(), value.clone());
            split.fill_in.retain(|k| k != key);
        }
    }
    if let Some(password) = probe_password {
        // The env key that holds it already, else a key of its own.
        let held = service
            .env
            .iter()
            .find(|(key, v)| v.value == password && split.secret.contains_key(*key))
            .map(|(key, _)| key.clone());
        split.probe_auth = Some(held.unwrap_or_else(|| {
            split
                .secret
                .insert(REDISCLI_AUTH.into(), password.to_string());
            REDISCLI_AUTH.into()
        }));
    }
    if env != Env::Dev {
        // Secrets from the local stack never leave the laptop: only dev may
        // carry local values; staging and production get a placeholder the
        // operator replaces (or an ExternalSecret), and `inputs` lists them.
        let given = &settings.stack.env(env).env;
        for (key, value) in split.secret.iter_mut() {
            if !given.contains_key(key) {
                *value = PLACEHOLDER.to_string();
            }
        }
    }
    Ok(split)
}

/// The service's own env keys, each on its side (secret by its flag, its
/// name, its value, or as the Redis probe's password), and in production
/// rewritten for the managed services that replace local ones.
fn split_own(
    service: &Service,
    settings: &Settings,
    env: Env,
    secrets: &[String],
    replacements: &[Replacement],
    probe_password: Option<&str>,
) -> Result<SplitEnv, ExportError> {
    let mut split = SplitEnv::default();
    let mut ports = Vec::new();
    for (key, value) in &service.env {
        if !super::names::is_config_key(key) {
            return Err(ExportError::EnvKey {
                service: service.name.clone(),
                key: key.clone(),
            });
        }
        let secret = value.secret
            || is_secret_key(key)
            || is_secret_value(&value.value)
            || secrets.iter().any(|s| value.value.contains(s.as_str()))
            || probe_password == Some(value.value.as_str());
        let mut value = renamed(&value.value, settings);
        if env == Env::Production {
            match rewrite(key, &value, replacements) {
                Rewrite::Keep => {}
                Rewrite::Drop => continue,
                Rewrite::Value(new) => value = new,
                Rewrite::FillIn => {
                    value = PLACEHOLDER.to_string();
                    split.fill_in.push(key.clone());
                }
                Rewrite::Endpoint(replacement) => {
                    if let Some(stem) = key.strip_suffix("_HOST") {
                        ports.push((format!("{stem}_PORT"), replacement.port.to_string()));
                    }
                    match &replacement.host {
                        Some(host) => value = host.clone(),
                        None => {
                            value = PLACEHOLDER.to_string();
                            split.fill_in.push(key.clone());
                        }
                    }
                }
            }
        }
        if secret {
            split.secret.insert(key.clone(), value);
        } else {
            split.config.insert(key.clone(), value);
        }
    }
    for (key, port) in ports {
        if let Some(value) = split.config.get_mut(&key) {
            *value = port;
        }
    }
    Ok(split)
}

/// What production's managed services add: S3's region, ElastiCache's
/// TLS URL for a service that uses Redis, SES's SMTP credentials.
fn managed_env(service: &Service, replacements: &[Replacement], split: &mut SplitEnv) {
    if replacements
        .iter()
        .any(|r| r.kind == Kind::S3 && r.region.is_some())
    {
        let region = replacements
            .iter()
            .find_map(|r| r.region.clone())
            .unwrap_or_default();
        if !split.config.contains_key("AWS_REGION") {
            split.config.insert("AWS_DEFAULT_REGION".into(), region);
        }
    }
    if let Some(redis) = replacements.iter().find(|r| r.kind == Kind::Redis) {
        let uses = service.env.values().any(|v| {
            v.value == redis.service
                || url_host(&v.value).is_some_and(|(host, _)| host == redis.service)
        });
        if redis.tls && uses {
            elasticache_tls(redis, split);
        }
    }
    if let Some(mail) = replacements.iter().find(|r| r.kind == Kind::Mail) {
        if service.env.values().any(|v| v.value == mail.service) {
            // SES's SMTP interface takes SMTP credentials (made from an
            // IAM user), never MailHog's none.
            for key in ["MAIL_USERNAME", "MAIL_PASSWORD"] {
                split.config.shift_remove(key);
                split
                    .secret
                    .entry(key.into())
                    .or_insert_with(|| PLACEHOLDER.into());
            }
        }
    }
}

/// ElastiCache with in-transit encryption and an AUTH token, in the form
/// Laravel reads: its `redis` connections take `url` (`REDIS_URL`) over
/// `host`/`port`, and a `tls://` URL makes the connection TLS for phpredis
/// and Predis alike (no stock config reads a `REDIS_SCHEME`). The URL holds
/// no password: the token is `REDIS_PASSWORD`, from the Secret (or the
/// secret store), so a local URL with credentials is replaced whole.
fn elasticache_tls(redis: &Replacement, split: &mut SplitEnv) {
    let host = redis.host.as_deref().unwrap_or(PLACEHOLDER);
    split.secret.shift_remove("REDIS_URL");
    split.fill_in.retain(|key| key != "REDIS_URL");
    split
        .config
        .insert("REDIS_URL".into(), format!("tls://{host}:{}", redis.port));
    if redis.host.is_none() {
        split.fill_in.push("REDIS_URL".into());
    }
    split
        .secret
        .entry("REDIS_PASSWORD".into())
        .or_insert_with(|| PLACEHOLDER.into());
}

/// Whether the service runs as more than one pod in `env`.
fn shares_state(service: &Service, settings: &Settings, env: Env) -> bool {
    settings.replicas(&service.name, env) > 1
        || settings
            .autoscale(&service.name, env)
            .is_some_and(|scale| scale.max > 1)
}

/// Replicas cannot share sessions or a cache on local files: where the app
/// reaches Redis (else Memcached), `file` (or nothing) becomes `redis`
/// (`memcached`). Another driver the
/// stack chose (`database`, `cookie`, `memcached`) stays, and
/// `[k8s.<env>] env` overrides it all.
fn shared_sessions_and_cache(service: &Service, config: &mut IndexMap<String, String>) {
    let has = |key: &str| service.env.contains_key(key);
    let store = if has("REDIS_HOST") || has("REDIS_URL") {
        "redis"
    } else if has("MEMCACHED_HOST") {
        "memcached"
    } else {
        return;
    };
    let mut keys = vec!["SESSION_DRIVER", "CACHE_STORE"];
    if service.env.contains_key("CACHE_DRIVER") {
        // Laravel 10 and older read this name.
        keys.push("CACHE_DRIVER");
    }
    for key in keys {
        let local = config.get(key).map(String::as_str);
        if matches!(local, None | Some("file" | "array")) {
            config.insert(key.into(), store.into());
        }
    }
}

/// A Laravel app must not run with `APP_ENV=local` or `APP_DEBUG=true` in a
/// shared cluster; other keys stay as the stack file has them.
fn laravel_defaults(config: &mut IndexMap<String, String>, env: Env) {
    if env != Env::Dev {
        if let Some(value) = config.get_mut("APP_ENV") {
            *value = env.to_string();
        }
        // Staging faces the internet too: no stack traces with env values.
        if let Some(value) = config.get_mut("APP_DEBUG") {
            *value = "false".into();
        }
    }
}

/// A value naming a service whose Kubernetes name differs (`My.DB` ->
/// `my-db`), as a host or as the host of a URL, names the new one.
fn renamed(value: &str, settings: &Settings) -> String {
    for (service, name) in settings.names.iter().filter(|(s, n)| s != n) {
        if value == service {
            return name.clone();
        }
        if let Some((host, range)) = url_host(value) {
            if host == service {
                let port = value[range.clone()].split_once(':').map(|(_, p)| p);
                let mut new = value.to_string();
                let with_port = port.map_or(name.clone(), |p| format!("{name}:{p}"));
                new.replace_range(range, &with_port);
                return new;
            }
        }
    }
    value.to_string()
}

enum Rewrite<'a> {
    Keep,
    Drop,
    Value(String),
    /// A local value with no managed counterpart named: a placeholder.
    FillIn,
    Endpoint(&'a Replacement),
}

fn rewrite<'a>(key: &str, value: &str, replacements: &'a [Replacement]) -> Rewrite<'a> {
    if let Some(s3) = replacements.iter().find(|r| r.kind == Kind::S3) {
        match key {
            // The IRSA role gives the SDK its credentials.
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => return Rewrite::Drop,
            "AWS_USE_PATH_STYLE_ENDPOINT" => return Rewrite::Value("false".into()),
            // MinIO's bucket and region mean nothing to AWS: they are asked for.
            "AWS_DEFAULT_REGION" | "AWS_REGION" => {
                return s3.region.clone().map_or(Rewrite::FillIn, Rewrite::Value)
            }
            _ if key.ends_with("_BUCKET") => {
                return s3.bucket.clone().map_or(Rewrite::FillIn, Rewrite::Value)
            }
            // The SDK's regional endpoint replaces MinIO's.
            _ if url_host(value).is_some_and(|(host, _)| host == s3.service) => {
                return Rewrite::Drop
            }
            _ => {}
        }
    }
    // A bare service name is a host only under a host-like key: Sail's
    // `DB_CONNECTION=mysql` or `CACHE_STORE=memcached` name a driver that
    // happens to share the service's name.
    let upper = key.to_ascii_uppercase();
    let host_key = ["HOST", "SERVER", "ADDR", "ENDPOINT"]
        .iter()
        .any(|word| upper.contains(word));
    for replacement in replacements.iter().filter(|r| r.kind != Kind::S3) {
        if value == replacement.service && host_key {
            return Rewrite::Endpoint(replacement);
        }
        if let Some((host, range)) = url_host(value) {
            if host == replacement.service {
                let host = replacement.host.as_deref().unwrap_or(PLACEHOLDER);
                let mut new = value.to_string();
                new.replace_range(range, &format!("{host}:{}", replacement.port));
                return Rewrite::Value(new);
            }
        }
    }
    Rewrite::Keep
}

/// The host of a URL and the byte range of its `host[:port]`.
fn url_host(value: &str) -> Option<(&str, std::ops::Range<usize>)> {
    let start = value.find("://")? + 3;
    let end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    let start = value[start..end]
        .rfind('@')
        .map_or(start, |i| start + i + 1);
    let host = value[start..end].split(':').next()?;
    Some((host, start..end))
}

pub(crate) fn config_map(meta: ObjectMeta, split: &SplitEnv) -> ConfigMap {
    let mut meta = meta;
    if !split.fill_in.is_empty() {
        let keys = split.fill_in.join(", ");
        let note = format!("replace {PLACEHOLDER} in {keys} with the managed endpoint, or set it in [k8s.production] of dev.toml");
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(FILL_IN.into(), note);
    }
    ConfigMap {
        metadata: meta,
        data: Some(
            split
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        ..Default::default()
    }
}

pub(crate) fn secret(meta: ObjectMeta, split: &SplitEnv, env: Env) -> Secret {
    let mut meta = meta;
    if env != Env::Dev && split.secret.values().any(|v| v == PLACEHOLDER) {
        let keys: Vec<&str> = split.secret.keys().map(String::as_str).collect();
        let note = format!(
            "replace {PLACEHOLDER} in {} before applying, or set external_secrets = true in [k8s] of dev.toml",
            keys.join(", ")
        );
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(FILL_IN.into(), note);
    }
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        string_data: Some(
            split
                .secret
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// An external-secrets.io `ExternalSecret` that fills the service's Secret
/// from the cluster's secret store; k8s-openapi has no types for CRDs.
pub(crate) fn external_secret(
    meta: &ObjectMeta,
    split: &SplitEnv,
    settings: &Settings,
    service: &str,
) -> serde_json::Value {
    let remote = format!("{}/production/{service}", settings.project);
    let data: Vec<_> = split
        .secret
        .keys()
        .map(|key| json!({ "secretKey": key, "remoteRef": { "key": remote, "property": key } }))
        .collect();
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": meta,
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": { "kind": "ClusterSecretStore", "name": settings.secret_store() },
            "target": { "name": meta.name, "creationPolicy": "Owner" },
            "data": data,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r13_credentials_are_found_by_key_pattern_and_by_url() {
        for key in [
            "PGPASSWORD",
            "DB_PASS",
            "API_CREDENTIALS",
            "SENTRY_DSN",
            "APP_KEY",
            "STRIPE_SECRET",
            "GITHUB_TOKEN",
            "AWS_ACCESS_KEY_ID",
            "JWT_PRIVATE_KEY_PATH",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "DB_HOST",
            "APP_ENV",
            "MAIL_PORT",
            "PASSPORT_ROUTES",
            "KEYCLOAK_REALM",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
        assert!(is_secret_value("postgres://app:pw@db:5432/app"));
        assert!(is_secret_value("redis://:pw@cache:6379"));
        assert!(is_secret_value("https://abc123@o1.ingest.sentry.io/42"));
        assert!(!is_secret_value("http://s3:9000"));
        assert!(!is_secret_value("https://example.com/a@b"));
    }

    #[test]
    fn url_hosts() {
        let (host, range) = url_host("postgres://app:pw@db:5432/app").unwrap();
        assert_eq!(host, "db");
        assert_eq!(&"postgres://app:pw@db:5432/app"[range], "db:5432");
        assert_eq!(url_host("http://s3:9000").unwrap().0, "s3");
        assert!(url_host("db").is_none());
    }
}
