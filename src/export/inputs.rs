//! What staging and production need from the operator before they deploy:
//! every secret export left as a placeholder (it never carries a local
//! value there), endpoints nobody named, and the `[k8s]` settings without
//! which the output is incomplete (registry, host, certificate, IAM role,
//! storage class). One line per input, with the key that sets it.

use super::config::PLACEHOLDER;
use super::objects::Object;
use super::settings::Settings;
use super::workloads::PROVIDE_SECRET;
use super::Env;
use crate::config::model::Stack;

/// The `[k8s.<env>]` setting that gives a ConfigMap key its managed value,
/// from the names Laravel reads.
fn setting_for(key: &str) -> &'static str {
    let upper = key.to_ascii_uppercase();
    if upper.ends_with("_BUCKET") {
        "`s3 = { bucket = \"…\" }`"
    } else if upper.contains("REGION") {
        "`s3 = { region = \"…\" }`"
    } else if upper.starts_with("MAIL_") || upper.starts_with("SMTP_") {
        "`smtp = { host = \"…\" }` (SES: `email-smtp.<region>.amazonaws.com`)"
    } else if upper.starts_with("REDIS_") {
        "`redis = { host = \"…\" }` (ElastiCache)"
    } else if upper.starts_with("MEMCACHED_") {
        "`memcached = { host = \"…\" }` (ElastiCache for Memcached)"
    } else if upper.starts_with("DB_") || upper.starts_with("DATABASE") {
        "`database = { host = \"…\" }` (RDS)"
    } else {
        "`database`, `redis`, `memcached` or `smtp` = { host = \"…\" }"
    }
}

/// Services export leaves out of staging and production: a developer's
/// tools (Composer, a Node package manager or dev server), one line each.
pub(crate) fn left_out(stack: &Stack, env: Env) -> Vec<String> {
    if env == Env::Dev {
        return Vec::new();
    }
    stack
        .services
        .values()
        .filter(|service| {
            let k8s = service.k8s.as_ref();
            k8s.and_then(|k| k.production) != Some(crate::config::k8s::Placement::Keep)
        })
        .filter_map(|service| {
            let tool = super::objects::dev_tool(service)?;
            Some(format!(
                "{env}: note: `{}` runs `{tool}`, a developer's tool: left out (build what it makes into the app image, or set `production = \"keep\"` in `[services.{}.k8s]`)",
                service.name, service.name
            ))
        })
        .collect()
}

/// Workloads whose image names no tag nor digest: each pull may run another
/// image (`latest` then), and a rollback has nothing to return to.
pub(crate) fn untagged(env: Env, objects: &[Object]) -> Vec<String> {
    if env == Env::Dev {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for object in objects {
        let spec = match object.kind() {
            "Deployment" | "StatefulSet" | "Job" => &object.value["spec"]["template"]["spec"],
            _ => continue,
        };
        let images = ["initContainers", "containers"]
            .into_iter()
            .flat_map(|list| spec[list].as_array().into_iter().flatten())
            .filter_map(|container| container["image"].as_str());
        for image in images {
            let unpinned = crate::image_ref::ImageRef::parse(image)
                .is_ok_and(|r| r.tag().is_none() && r.digest().is_none());
            if unpinned
                && !lines
                    .iter()
                    .any(|l: &String| l.contains(&format!("`{image}`")))
            {
                lines.push(format!(
                    "{env}: warning: `{}` runs `{image}` with no tag: every pull may run another image (`latest`); pin a tag or digest in dev.toml",
                    object.name()
                ));
            }
        }
    }
    lines
}

pub(crate) fn missing(settings: &Settings, env: Env, objects: &[Object]) -> Vec<String> {
    if env == Env::Dev {
        return Vec::new();
    }
    let table = format!("[k8s.{env}]");
    let mut lines = Vec::new();
    let has = |kind: &str| objects.iter().any(|o| o.kind() == kind);
    if settings.stack.image_registry.is_none() && has("Deployment") {
        lines.push(format!(
            "{env}: the app image has no registry: set `image_registry` in `[k8s]` (or pass `--image-registry`)"
        ));
    }
    let env_settings = settings.stack.env(env);
    if has("Ingress") {
        if env_settings.host.is_none() {
            lines.push(format!(
                "{env}: the Ingress answers any host name: set `host` in `{table}`"
            ));
        }
        if env_settings.certificate_arn.is_none() && settings.ingress_class(env) == "alb" {
            lines.push(format!(
                "{env}: the load balancer serves HTTP only: set `certificate_arn` (ACM) in `{table}`"
            ));
        }
    }
    if env == Env::Production && env_settings.role_arn.is_none() && has("ServiceAccount") {
        lines.push(format!(
            "{env}: the app has no IAM role (IRSA) for S3 and other AWS APIs: set `role_arn` in `{table}`"
        ));
    }
    if settings.stack.storage_class.is_none() && has("StatefulSet") {
        lines.push(format!(
            "{env}: volume claims use the cluster's default storage class: set `storage_class` in `[k8s]` (e.g. `gp3`)"
        ));
    }
    for object in objects {
        let name = object.name();
        if object.kind() == "StatefulSet" && env == Env::Production {
            lines.push(format!(
                "{env}: warning: `{name}` keeps its data in the cluster (a StatefulSet with a volume claim per pod): back the volume up, or set `production = \"external\"` in `[services.{name}.k8s]` and name the managed service"
            ));
        }
        match object.kind() {
            "Deployment" | "StatefulSet" | "Job" => {
                let note = object.value["metadata"]["annotations"][PROVIDE_SECRET].as_str();
                let Some((secret, keys)) = note.and_then(|n| n.split_once(':')) else {
                    continue;
                };
                for key in keys.split(',') {
                    lines.push(format!(
                        "{env}: secret `{key}` of `{secret}`: create Secret `{secret}` in the namespace with it, or set `external_secrets = true` in `[k8s]`"
                    ));
                }
            }
            "ExternalSecret" => {
                for item in object.value["spec"]["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    lines.push(format!(
                        "{env}: secret `{}`: store it as property `{}` of `{}` in the secret store `{}`",
                        item["secretKey"].as_str().unwrap_or_default(),
                        item["remoteRef"]["property"].as_str().unwrap_or_default(),
                        item["remoteRef"]["key"].as_str().unwrap_or_default(),
                        settings.secret_store(),
                    ));
                }
            }
            "ConfigMap" => {
                for (key, value) in object.value["data"].as_object().into_iter().flatten() {
                    if value.as_str().is_some_and(|v| v.contains(PLACEHOLDER)) {
                        lines.push(format!(
                            "{env}: `{key}` of `{name}` has no managed value: set {} in `{table}`, or `{key}` in `{table} env`",
                            setting_for(key)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    lines
}
