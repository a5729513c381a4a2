//! The `[test]` table: which service runs PHPUnit, which PostgreSQL and
//! Redis services the tests get databases on, and the env they run with.
//! Every key has a default taken from the stack itself (the service with a
//! `sync` watch rule, the one PostgreSQL service, …), so a Laravel stack
//! file needs little more than the test env.

use std::path::PathBuf;

use indexmap::IndexMap;

use super::error::ConfigError;
use super::model::{EnvValue, Probe, Service, TestSettings, WatchAction};
use super::raw::{RawTest, StrOrList, S};
use super::resolve::{looks_secret, normalize, split_words, Ctx};

const DEFAULT_COMMAND: &str = "phpunit";
const DEFAULT_MIGRATE: &str = "php artisan migrate --force";
const DEFAULT_TARGET: &str = "/var/www/html";
/// Laravel writes compiled views, caches and logs here.
const DEFAULT_WRITABLE: [&str; 2] = ["storage", "bootstrap/cache"];

/// Resolves `[test]`, or assumes one when the file has none; `Ok(None)` when
/// there is no table and the stack says too little to assume one.
pub fn resolve(
    ctx: &Ctx,
    raw: Option<&S<RawTest>>,
    services: &IndexMap<String, Service>,
) -> Result<Option<TestSettings>, ConfigError> {
    let src = ctx.src;
    let empty = RawTest::default();
    let (t, table_span) = match raw {
        Some(t) => (t.get_ref(), Some(t.span())),
        None => (&empty, None),
    };
    // Without a table, a default that cannot be found means "no test settings".
    let missing = |what: String, help: &str| -> Result<Option<TestSettings>, ConfigError> {
        match &table_span {
            Some(span) => Err(ConfigError::invalid(
                src,
                span.clone(),
                what,
                "this table",
                Some(help.to_string()),
            )),
            None => Ok(None),
        }
    };
    let named = |field: &S<String>, role: &str| -> Result<String, ConfigError> {
        let name = field.get_ref();
        if services.contains_key(name) {
            return Ok(name.clone());
        }
        Err(ConfigError::invalid(
            src,
            field.span(),
            format!("`[test].{role}` names unknown service `{name}`"),
            "unknown service",
            Some(format!(
                "known services: {}",
                services
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ))
    };

    let service = match &t.service {
        Some(s) => named(s, "service")?,
        None => match default_app(services) {
            Some(s) => s,
            None => {
                return missing(
                    "cannot tell which service runs the tests".into(),
                    "add `service = \"app\"` (the service whose image has PHPUnit)",
                )
            }
        },
    };
    let database = match &t.database {
        Some(d) => {
            let name = named(d, "database")?;
            if !matches!(services[&name].ready, Some(Probe::Postgres { .. })) {
                return Err(ConfigError::invalid(
                    src,
                    d.span(),
                    format!("`[test].database` service `{name}` has no PostgreSQL probe"),
                    "this service",
                    Some("give it `ready = { postgres = {} }` (or `use = \"postgres\"`): devenv reaches the server with the probe's credentials".into()),
                ));
            }
            name
        }
        None => match only(services, |p| matches!(p, Probe::Postgres { .. })) {
            Some(s) => s,
            None => {
                return missing(
                    "cannot tell which service is the test database server".into(),
                    "add `database = \"db\"` (a service with `ready = { postgres = {} }`)",
                )
            }
        },
    };
    let redis = match &t.redis {
        Some(r) => Some(named(r, "redis")?),
        None => only(services, |p| matches!(p, Probe::Redis { .. })),
    };

    let command = match &t.command {
        Some(c) => {
            let words = match c.get_ref() {
                StrOrList::Str(s) => split_words(s).ok_or_else(|| {
                    ConfigError::invalid(
                        src,
                        c.span(),
                        "unbalanced quotes",
                        "in this command",
                        None,
                    )
                })?,
                StrOrList::List(l) => l.clone(),
            };
            let words = words
                .iter()
                .map(|w| ctx.interp(src, c.span(), w))
                .collect::<Result<Vec<_>, _>>()?;
            if words.is_empty() {
                return Err(ConfigError::invalid(
                    src,
                    c.span(),
                    "`[test].command` is empty",
                    "here",
                    Some("the default is `[\"phpunit\"]`".into()),
                ));
            }
            words
        }
        None => vec![DEFAULT_COMMAND.to_string()],
    };
    let text = |f: &Option<S<String>>| -> Result<Option<String>, ConfigError> {
        f.as_ref()
            .map(|v| ctx.interp(src, v.span(), v.get_ref()))
            .transpose()
    };
    let host_path = |f: &Option<S<String>>| -> Result<Option<PathBuf>, ConfigError> {
        Ok(text(f)?.map(|p| normalize(&ctx.root.join(p))))
    };
    let migrate = text(&t.migrate)?.unwrap_or_else(|| DEFAULT_MIGRATE.into());

    // The service's sync rule already says where its source is and where it goes.
    let app = &services[&service];
    let sync = app
        .watch
        .iter()
        .find(|w| w.action == WatchAction::Sync && w.target.is_some());
    let source = match host_path(&t.source)? {
        Some(p) => Some(p),
        None => sync.map(|w| w.path.clone()),
    };
    let target = match text(&t.target)? {
        Some(t) => t,
        None if t.source.is_none() && sync.is_some() => sync
            .and_then(|w| w.target.clone())
            .expect("sync rules have a target"),
        None => app
            .working_dir
            .clone()
            .unwrap_or_else(|| DEFAULT_TARGET.into()),
    };
    if !target.starts_with('/') {
        let span = t.target.as_ref().map_or(0..0, |s| s.span());
        return Err(ConfigError::invalid(
            src,
            span,
            format!("`[test].target` `{target}` is not an absolute container path"),
            "here",
            None,
        ));
    }
    let under_source = |rel: &str| source.as_ref().map(|s| s.join(rel));
    let migrations = match host_path(&t.migrations)?.or_else(|| under_source("database/migrations")) {
        Some(p) => p,
        None => {
            return missing(
                "`[test]` needs `migrations` when it has no `source`".into(),
                "add `source = \"path/to/app\"` (mounted into the container) or `migrations = \"path/to/database/migrations\"`",
            )
        }
    };
    let tests = match host_path(&t.tests)?.or_else(|| under_source("tests")) {
        Some(p) => p,
        None => {
            return missing(
                "`[test]` needs `tests` when it has no `source`".into(),
                "add `source = \"path/to/app\"` or `tests = \"path/to/tests\"`",
            )
        }
    };
    let writable = match &t.writable {
        Some(list) => list
            .iter()
            .map(|w| ctx.interp(src, w.span(), w.get_ref()))
            .collect::<Result<Vec<_>, _>>()?,
        None => DEFAULT_WRITABLE.iter().map(|s| s.to_string()).collect(),
    };
    let writable = writable
        .into_iter()
        .map(|w| {
            if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", target.trim_end_matches('/'))
            }
        })
        .collect();

    let mut env = IndexMap::new();
    for (k, v) in t.env.iter().flatten() {
        let value = ctx.interp(src, v.span(), v.get_ref())?;
        env.insert(
            k.clone(),
            EnvValue {
                value,
                secret: looks_secret(k),
            },
        );
    }

    Ok(Some(TestSettings {
        service,
        database,
        redis,
        command,
        migrate,
        source,
        target,
        migrations,
        tests,
        writable,
        env,
    }))
}

/// The app: the service with a `sync` watch rule, else the only one with `build`.
fn default_app(services: &IndexMap<String, Service>) -> Option<String> {
    if let Some((name, _)) = services
        .iter()
        .find(|(_, s)| s.watch.iter().any(|w| w.action == WatchAction::Sync))
    {
        return Some(name.clone());
    }
    let mut built = services.iter().filter(|(_, s)| s.build.is_some());
    match (built.next(), built.next()) {
        (Some((name, _)), None) => Some(name.clone()),
        _ => None,
    }
}

/// The one service whose probe matches, if exactly one does.
fn only(services: &IndexMap<String, Service>, kind: impl Fn(&Probe) -> bool) -> Option<String> {
    let mut found = services
        .iter()
        .filter(|(_, s)| s.ready.as_ref().is_some_and(&kind));
    match (found.next(), found.next()) {
        (Some((name, _)), None) => Some(name.clone()),
        _ => None,
    }
}
