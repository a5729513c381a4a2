//! A workload's env: the ConfigMap and Secret its pods read (or the keys
//! the operator provides), the Redis probe's password, the hash that rolls
//! the pods when either changes, and commands that name secrets by key.

use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, EnvFromSource, EnvVar, EnvVarSource, SecretEnvSource, SecretKeySelector,
};
use sha2::{Digest, Sha256};

use super::Workload;
use crate::config::model::Service;
use crate::export::config::{self, SplitEnv};
use crate::export::objects::{meta, Object, Placed};
use crate::export::settings::Kind;
use crate::export::storage::Storage;
use crate::export::{Env, ExportError};

/// Puts PostgreSQL's data under its first claim unless `PGDATA` is set.
pub(super) fn with_pgdata(placed: &Placed<'_>, split: SplitEnv, storage: &Storage) -> SplitEnv {
    let mut split = split;
    if placed.kind == Kind::Postgres && !split.config.contains_key("PGDATA") {
        // A fresh volume's `lost+found` makes initdb refuse the mount point itself.
        if let Some(claim) = storage.claims.first() {
            split
                .config
                .insert("PGDATA".into(), format!("{}/pgdata", claim.1));
        }
    }
    split
}

/// Where a workload's env comes from: the objects holding it, the
/// references the container reads them by, and the keys the operator
/// must provide in a Secret of their own (`name:KEY1,KEY2` then).
pub(super) struct Sources {
    pub objects: Vec<Object>,
    pub env_from: Vec<EnvFromSource>,
    pub provide: Option<String>,
}

/// Decides the env's objects: a ConfigMap for plain values; for secret
/// values a Secret, an ExternalSecret, or nothing but the keys to provide.
pub(super) fn sources(work: &Workload<'_>) -> Result<Sources, ExportError> {
    let (name, split, env) = (work.name, &work.split, work.env);
    let mut objects = Vec::new();
    let mut env_from = Vec::new();
    if !split.config.is_empty() {
        objects.push(Object::new(
            name,
            &config::config_map(meta(&work.env_name, &work.labels), split),
        )?);
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: work.env_name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }
    // Secrets the operator provides: outside dev, export writes no Secret
    // holding placeholders (applying it would overwrite the real one); the
    // pods wait for the Secret, and the workload names the keys it needs.
    let mut provide = None;
    if work.has_secrets() {
        let placeholders = split.secret.values().any(|v| v == config::PLACEHOLDER);
        let settings = work.settings;
        if env == Env::Production && settings.stack.external_secrets {
            objects.push(Object::new(
                name,
                &config::external_secret(
                    &meta(&work.env_name, &work.labels),
                    split,
                    settings,
                    name,
                ),
            )?);
        } else if env != Env::Dev && placeholders {
            let keys: Vec<&str> = split.secret.keys().map(String::as_str).collect();
            provide = Some(keys.join(","));
        } else {
            objects.push(Object::new(
                name,
                &config::secret(meta(&work.env_name, &work.labels), split, env),
            )?);
        }
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: work.env_name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }
    Ok(Sources {
        objects,
        env_from,
        provide,
    })
}

/// The Redis probe's password in the env, under the name `redis-cli`
/// looks for, from the Secret key that holds it.
pub(super) fn probe_env(work: &Workload<'_>) -> Option<Vec<EnvVar>> {
    work.split
        .probe_auth
        .as_ref()
        .filter(|key| key.as_str() != config::REDISCLI_AUTH)
        .map(|key| {
            vec![EnvVar {
                name: config::REDISCLI_AUTH.into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: work.env_name.clone(),
                        key: key.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        })
}

/// Hashes what the pods read from their ConfigMap and Secret, so that a
/// change rolls them; secret values stay out, a hash of a weak password is
/// a password.
pub(super) fn config_hash(split: &SplitEnv) -> String {
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

/// Commands name the Secret's keys, never the values in them.
pub(super) struct Commands<'a> {
    service: &'a Service,
    split: &'a SplitEnv,
    secrets: Vec<String>,
}

impl<'a> Commands<'a> {
    /// The stack's secret values, to find in a workload's commands.
    pub(super) fn of(work: &'a Workload<'a>) -> Self {
        Commands {
            service: work.placed.service,
            split: &work.split,
            secrets: config::secret_values(work.stack),
        }
    }

    /// The text with each secret value it holds named by its key, or the
    /// error naming where one shows.
    pub(super) fn reference(&self, place: &'static str, text: &str) -> Result<String, ExportError> {
        config::reference_secrets(text, self.service, self.split, &self.secrets).map_err(|shown| {
            ExportError::SecretInCommand {
                service: self.service.name.clone(),
                place,
                shown,
            }
        })
    }

    /// [`Self::reference`] over each word of an entrypoint or command.
    pub(super) fn words(
        &self,
        place: &'static str,
        words: Option<&[String]>,
    ) -> Result<Option<Vec<String>>, ExportError> {
        words
            .map(|words| words.iter().map(|w| self.reference(place, w)).collect())
            .transpose()
    }
}
