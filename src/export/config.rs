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
use crate::config::looks_secret;
use crate::config::model::{Service, Stack};

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
}

/// One service's env, split for a ConfigMap and a Secret.
#[derive(Debug, Default)]
pub(crate) struct SplitEnv {
    pub config: IndexMap<String, String>,
    pub secret: IndexMap<String, String>,
    /// Config keys holding [`PLACEHOLDER`] because nothing told the real value.
    pub fill_in: Vec<String>,
}

/// Every local value that must not reach production, stack-wide, so that
/// a value embedding one (`DATABASE_URL` with the password) is secret too.
pub(crate) fn secret_values(stack: &Stack) -> Vec<String> {
    let mut values: Vec<String> = stack
        .services
        .values()
        .flat_map(|service| &service.env)
        .filter(|(key, value)| value.secret || looks_secret(key))
        .map(|(_, value)| value.value.clone())
        .filter(|value| !value.is_empty())
        .collect();
    values.sort();
    values.dedup();
    values
}

pub(crate) fn split_env(
    service: &Service,
    settings: &Settings,
    env: Env,
    secrets: &[String],
    replacements: &[Replacement],
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
            || looks_secret(key)
            || secrets.iter().any(|s| value.value.contains(s.as_str()));
        let mut value = value.value.clone();
        if env == Env::Production {
            match rewrite(key, &value, replacements) {
                Rewrite::Keep => {}
                Rewrite::Drop => continue,
                Rewrite::Value(new) => value = new,
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
    if env == Env::Production
        && replacements
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
    if service.build.is_some() {
        laravel_defaults(&mut split.config, env);
        for (key, value) in &settings.stack.env(env).env {
            let side = if looks_secret(key) {
                &mut split.secret
            } else {
                &mut split.config
            };
            side.insert(key.clone(), value.clone());
            split.fill_in.retain(|k| k != key);
        }
    }
    if env == Env::Production {
        // Secrets from the local stack never leave the laptop.
        for value in split.secret.values_mut() {
            *value = PLACEHOLDER.to_string();
        }
    }
    Ok(split)
}

/// A Laravel app must not run with `APP_ENV=local` or `APP_DEBUG=true` in a
/// shared cluster; other keys stay as the stack file has them.
fn laravel_defaults(config: &mut IndexMap<String, String>, env: Env) {
    if env != Env::Dev {
        if let Some(value) = config.get_mut("APP_ENV") {
            *value = env.to_string();
        }
    }
    if env == Env::Production {
        if let Some(value) = config.get_mut("APP_DEBUG") {
            *value = "false".into();
        }
    }
}

enum Rewrite<'a> {
    Keep,
    Drop,
    Value(String),
    Endpoint(&'a Replacement),
}

fn rewrite<'a>(key: &str, value: &str, replacements: &'a [Replacement]) -> Rewrite<'a> {
    if let Some(s3) = replacements.iter().find(|r| r.kind == Kind::S3) {
        match key {
            // The IRSA role gives the SDK its credentials.
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => return Rewrite::Drop,
            "AWS_USE_PATH_STYLE_ENDPOINT" => return Rewrite::Value("false".into()),
            "AWS_DEFAULT_REGION" | "AWS_REGION" if s3.region.is_some() => {
                return Rewrite::Value(s3.region.clone().unwrap_or_default())
            }
            _ if key.ends_with("_BUCKET") && s3.bucket.is_some() => {
                return Rewrite::Value(s3.bucket.clone().unwrap_or_default())
            }
            // The SDK's regional endpoint replaces MinIO's.
            _ if url_host(value).is_some_and(|(host, _)| host == s3.service) => {
                return Rewrite::Drop
            }
            _ => {}
        }
    }
    for replacement in replacements.iter().filter(|r| r.kind != Kind::S3) {
        if value == replacement.service {
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
    if env == Env::Production {
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
        "apiVersion": "external-secrets.io/v1beta1",
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
    fn url_hosts() {
        let (host, range) = url_host("postgres://app:pw@db:5432/app").unwrap();
        assert_eq!(host, "db");
        assert_eq!(&"postgres://app:pw@db:5432/app"[range], "db:5432");
        assert_eq!(url_host("http://s3:9000").unwrap().0, "s3");
        assert!(url_host("db").is_none());
    }
}
