//! Env, build args and secrets: layers of env (shared, preset, `env_file`,
//! the service's own, passed-through variables), build specs, and which of
//! their names hold secrets.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use indexmap::IndexMap;

use super::super::error::{ConfigError, Src};
use super::super::model::*;
use super::super::presets::Preset;
use super::super::raw::*;
use super::syntax::normalize;
use super::Ctx;

/// Env names treated as secrets even when not listed in `secrets`: the
/// one rule, [`is_secret_name`](super::super::secret::is_secret_name).
pub fn looks_secret(name: &str) -> bool {
    super::super::secret::is_secret_name(name)
}

pub(super) fn resolve_build(
    ctx: &Ctx,
    src: &Src,
    span: Range<usize>,
    spec: &RawBuildSpec,
    base: &Path,
) -> Result<Build, ConfigError> {
    match spec {
        RawBuildSpec::Context(c) => resolve_raw_build(
            ctx,
            src,
            span,
            &RawBuild {
                context: Some(c.clone()),
                ..RawBuild::default()
            },
            base,
        ),
        RawBuildSpec::Full(b) => resolve_raw_build(ctx, src, span, b, base),
    }
}

pub(super) fn resolve_raw_build(
    ctx: &Ctx,
    src: &Src,
    span: Range<usize>,
    b: &RawBuild,
    base: &Path,
) -> Result<Build, ConfigError> {
    let context = ctx.interp(src, span.clone(), b.context.as_deref().unwrap_or("."))?;
    let args = b
        .args
        .iter()
        .map(|(k, v)| {
            let value = ctx.interp(src, span.clone(), v)?;
            // `secrets` marks more once the service's list is known.
            let secret = looks_secret(k);
            Ok((k.clone(), EnvValue { value, secret }))
        })
        .collect::<Result<BTreeMap<_, _>, ConfigError>>()?;
    Ok(Build {
        context: normalize(&base.join(context)),
        dockerfile: b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
        target: b.target.clone(),
        args,
        prepare: b.prepare.as_ref().map(|p| normalize(&base.join(p))),
    })
}

/// The names a service lists in `secrets`, its preset's first.
pub(super) fn secret_names(raw: &RawService, preset: Option<&Preset>) -> Vec<String> {
    preset
        .and_then(|p| p.service.secrets.as_ref())
        .into_iter()
        .chain(raw.secrets.as_ref())
        .flatten()
        .map(|s| s.get_ref().clone())
        .collect()
}

pub(super) fn resolve_env(
    ctx: &Ctx,
    raw: &RawService,
    shared: &IndexMap<String, EnvValue>,
    preset: Option<&Preset>,
) -> Result<IndexMap<String, EnvValue>, ConfigError> {
    let mut env = shared.clone();
    let secrets = secret_names(raw, preset);
    // Preset first, then the service: the service overrides key by key.
    let layers = preset
        .map(|p| (&p.service, &p.src))
        .into_iter()
        .chain([(raw, ctx.src)]);
    for (layer, src) in layers {
        if let Some(files) = &layer.env_file {
            for (file, required) in files.get_ref().files() {
                let path = ctx.root.join(ctx.interp(src, files.span(), file)?);
                // An optional file a colleague does not have is skipped, as Compose does.
                if !required && !path.exists() {
                    continue;
                }
                let pairs =
                    super::super::dotenv::read(&path, &|n| ctx.lookup(n)).map_err(|e| match e {
                        Ok(e) => e.at(&path),
                        Err(e) => ConfigError::invalid(
                            src,
                            files.span(),
                            format!("cannot read env file `{}`: {e}", path.display()),
                            "this env_file",
                            Some("create the file, remove it from `env_file`, or mark it optional: `env_file = [{ path = \"…\", required = false }]`".into()),
                        ),
                    })?;
                for (k, v) in pairs {
                    env.insert(
                        k,
                        EnvValue {
                            value: v,
                            secret: false,
                        },
                    );
                }
            }
        }
        if let Some(vars) = &layer.env {
            for (k, v) in vars {
                let value = ctx.interp(src, v.span(), v.get_ref())?;
                env.insert(
                    k.clone(),
                    EnvValue {
                        value,
                        secret: false,
                    },
                );
            }
        }
        // Compose's key-only `environment: [FOO]`: FOO when set, else nothing.
        for name in layer.pass_env.iter().flatten() {
            if let Some(value) = ctx.lookup(name.get_ref()) {
                env.insert(
                    name.get_ref().clone(),
                    EnvValue {
                        value,
                        secret: false,
                    },
                );
            }
        }
    }
    for (k, v) in env.iter_mut() {
        v.secret = secrets.contains(k) || looks_secret(k);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        assert!(looks_secret("DB_PASSWORD"));
        assert!(looks_secret("SMTP_PASS"));
        assert!(looks_secret("APP_KEY"));
        assert!(looks_secret("AWS_SECRET_ACCESS_KEY"));
        assert!(!looks_secret("DB_HOST"));
        // Issue 22: a build arg named `TOKEN`, `NPM_AUTH` or `PASSWORD`.
        for name in ["TOKEN", "NPM_AUTH", "PASSWORD", "AWS_ACCESS_KEY_ID"] {
            assert!(looks_secret(name), "{name}");
        }
    }
}
