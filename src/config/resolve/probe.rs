//! Readiness probes and watch rules: the two small languages of a service
//! table that are checked here rather than by serde alone.

use std::path::Path;

use indexmap::IndexMap;

use super::super::error::ConfigError;
use super::super::model::*;
use super::super::raw::*;
use super::super::Secret;
use super::syntax::normalize;

/// The probe a `ready` value asks for (`None` for `ready = "none"`); the
/// outer error is an interpolation failure, the inner one a bad probe.
#[allow(clippy::type_complexity)]
pub(super) fn resolve_probe(
    raw: &RawProbe,
    env: &IndexMap<String, EnvValue>,
    interp: &dyn Fn(&str) -> Result<String, ConfigError>,
) -> Result<Result<Option<Probe>, String>, ConfigError> {
    let get = |k: &str| env.get(k).map(|v| v.value.clone());
    let text = |v: &Option<String>| v.as_deref().map(interp).transpose();
    Ok(Ok(Some(match raw {
        RawProbe::None => return Ok(Ok(None)),
        // Interpolated like `env`, so a password can stay `${VAR}`.
        RawProbe::Postgres(p) => {
            let user = text(&p.user)?
                .or_else(|| get("POSTGRES_USER"))
                .unwrap_or_else(|| "postgres".into());
            Probe::Postgres {
                port: p.port.unwrap_or(5432),
                password: text(&p.password)?
                    .or_else(|| get("POSTGRES_PASSWORD"))
                    .unwrap_or_default()
                    .into(),
                database: text(&p.database)?
                    .or_else(|| get("POSTGRES_DB"))
                    .unwrap_or_else(|| user.clone()),
                user,
            }
        }
        RawProbe::Redis(p) => Probe::Redis {
            port: p.port.unwrap_or(6379),
            username: text(&p.username)?,
            password: text(&p.password)?.map(Secret::from),
        },
        RawProbe::Http(h) => {
            let status = match h.status {
                None => (200, 399),
                Some(RawStatus::One(s)) => (s, s),
                Some(RawStatus::Range([a, b])) if a <= b => (a, b),
                Some(RawStatus::Range(_)) => return Ok(Err("the status range is reversed".into())),
            };
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                return Ok(Err(format!("http probe path `{path}` must start with `/`")));
            }
            Probe::Http {
                port: h.port,
                path,
                status,
            }
        }
        RawProbe::Tcp(port) => Probe::Tcp { port: *port },
        RawProbe::Exec(cmd) => {
            let command = match cmd {
                StrOrList::Str(s) => vec!["sh".into(), "-c".into(), s.clone()],
                StrOrList::List(l) if !l.is_empty() => l.clone(),
                StrOrList::List(_) => return Ok(Err("an exec probe needs a command".into())),
            };
            Probe::Exec { command }
        }
        RawProbe::Docker(s) if s == "healthy" => Probe::Docker,
        RawProbe::Docker(s) => {
            return Ok(Err(format!(
                "docker probe expects `\"healthy\"`, got `{s}`"
            )))
        }
    })))
}

pub(super) fn resolve_watch(root: &Path, w: &RawWatch) -> Result<WatchRule, (String, String)> {
    let action = match w.action.as_str() {
        "sync" => WatchAction::Sync,
        "restart" => WatchAction::Restart,
        "rebuild" => WatchAction::Rebuild,
        "exec" => WatchAction::Exec,
        other => {
            return Err((
                format!("unknown watch action `{other}`"),
                "use `sync`, `restart`, `rebuild` or `exec`".into(),
            ))
        }
    };
    if action == WatchAction::Sync && w.target.is_none() {
        return Err((
            "a `sync` rule needs a `target`".into(),
            "add `target = \"/container/path\"`".into(),
        ));
    }
    // A sync deletes under its target what the watched folder lacks: `..`
    // would aim that at folders outside the one the rule names.
    if let Some(target) = w
        .target
        .as_deref()
        .filter(|t| t.split('/').any(|c| c == ".."))
    {
        return Err((
            format!("watch target `{target}` contains `..`"),
            "write the container folder without `..` (e.g. `/var/www/html`)".into(),
        ));
    }
    if action == WatchAction::Exec && w.run.is_none() {
        return Err((
            "an `exec` rule needs `run`".into(),
            "add `run = \"command\"`".into(),
        ));
    }
    Ok(WatchRule {
        path: normalize(&root.join(&w.path)),
        action,
        target: w.target.clone(),
        ignore: w.ignore.clone(),
        run: w.run.clone(),
    })
}
