//! The `[test]` table: which service runs PHPUnit, which PostgreSQL and
//! Redis services the tests get databases on, and the env they run with.
//! Every key has a default taken from the stack itself (the service with a
//! `sync` watch rule, the one PostgreSQL service, …), so a Laravel stack
//! file needs little more than the test env.

use std::ops::Range;
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
    let empty = RawTest::default();
    let table = match raw {
        Some(t) => Table {
            ctx,
            t: t.get_ref(),
            span: Some(t.span()),
            services,
        },
        None => Table {
            ctx,
            t: &empty,
            span: None,
            services,
        },
    };
    let t = table.t;
    let Some(service) = table.service()? else {
        return Ok(None);
    };
    let Some(database) = table.database()? else {
        return Ok(None);
    };
    let redis = match &t.redis {
        Some(r) => Some(table.named(r, "redis")?),
        None => only(services, |p| matches!(p, Probe::Redis { .. })),
    };
    let command = table.command()?;
    let migrate = table
        .text(&t.migrate)?
        .unwrap_or_else(|| DEFAULT_MIGRATE.into());
    let (source, target) = table.places(&services[&service])?;
    let under_source = |rel: &str| source.as_ref().map(|s| s.join(rel));
    let migrations = table.host_path(&t.migrations)?;
    let Some(migrations) = migrations.or_else(|| under_source("database/migrations")) else {
        return table.missing(
            "`[test]` needs `migrations` when it has no `source`".into(),
            "add `source = \"path/to/app\"` (mounted into the container) or `migrations = \"path/to/database/migrations\"`",
        );
    };
    let Some(tests) = table.host_path(&t.tests)?.or_else(|| under_source("tests")) else {
        return table.missing(
            "`[test]` needs `tests` when it has no `source`".into(),
            "add `source = \"path/to/app\"` or `tests = \"path/to/tests\"`",
        );
    };
    let writable = table.writable(&target)?;
    let env = table.env(&service)?;
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

/// The `[test]` table being resolved (an empty one when the file has
/// none) and what its names refer to.
struct Table<'a> {
    ctx: &'a Ctx<'a>,
    t: &'a RawTest,
    /// The table's span; `None` when the file has no table.
    span: Option<Range<usize>>,
    services: &'a IndexMap<String, Service>,
}

impl Table<'_> {
    /// Without a table, a default that cannot be found means "no test
    /// settings"; with one, it is an error at the table.
    fn missing<T>(&self, what: String, help: &str) -> Result<Option<T>, ConfigError> {
        match &self.span {
            Some(span) => Err(ConfigError::invalid(
                self.ctx.src,
                span.clone(),
                what,
                "this table",
                Some(help.to_string()),
            )),
            None => Ok(None),
        }
    }

    /// A service the table names in `role`, which must be one of the stack's.
    fn named(&self, field: &S<String>, role: &str) -> Result<String, ConfigError> {
        let name = field.get_ref();
        if self.services.contains_key(name) {
            return Ok(name.clone());
        }
        Err(ConfigError::invalid(
            self.ctx.src,
            field.span(),
            format!("`[test].{role}` names unknown service `{name}`"),
            "unknown service",
            Some(format!(
                "known services: {}",
                self.services
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ))
    }

    /// `service`: the one named, or the app by default.
    fn service(&self) -> Result<Option<String>, ConfigError> {
        match &self.t.service {
            Some(s) => self.named(s, "service").map(Some),
            None => match default_app(self.services) {
                Some(s) => Ok(Some(s)),
                None => self.missing(
                    "cannot tell which service runs the tests".into(),
                    "add `service = \"app\"` (the service whose image has PHPUnit)",
                ),
            },
        }
    }

    /// `database`: the one named, which must have a PostgreSQL probe, or
    /// by default the only service that has one.
    fn database(&self) -> Result<Option<String>, ConfigError> {
        match &self.t.database {
            Some(d) => {
                let name = self.named(d, "database")?;
                if !matches!(self.services[&name].ready, Some(Probe::Postgres { .. })) {
                    return Err(ConfigError::invalid(
                        self.ctx.src,
                        d.span(),
                        format!("`[test].database` service `{name}` has no PostgreSQL probe"),
                        "this service",
                        Some("give it `ready = { postgres = {} }` (or `use = \"postgres\"`): devenv reaches the server with the probe's credentials".into()),
                    ));
                }
                Ok(Some(name))
            }
            None => match only(self.services, |p| matches!(p, Probe::Postgres { .. })) {
                Some(s) => Ok(Some(s)),
                None => self.missing(
                    "cannot tell which service is the test database server".into(),
                    "add `database = \"db\"` (a service with `ready = { postgres = {} }`)",
                ),
            },
        }
    }

    /// `command`: words, interpolated, never empty; `phpunit` by default.
    fn command(&self) -> Result<Vec<String>, ConfigError> {
        let (ctx, src) = (self.ctx, self.ctx.src);
        let Some(c) = &self.t.command else {
            return Ok(vec![DEFAULT_COMMAND.to_string()]);
        };
        let words = match c.get_ref() {
            StrOrList::Str(s) => split_words(s).ok_or_else(|| {
                ConfigError::invalid(src, c.span(), "unbalanced quotes", "in this command", None)
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
        Ok(words)
    }

    /// A text key, interpolated.
    fn text(&self, f: &Option<S<String>>) -> Result<Option<String>, ConfigError> {
        f.as_ref()
            .map(|v| self.ctx.interp(self.ctx.src, v.span(), v.get_ref()))
            .transpose()
    }

    /// A host path key, interpolated, relative to the stack file's folder.
    fn host_path(&self, f: &Option<S<String>>) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.text(f)?.map(|p| normalize(&self.ctx.root.join(p))))
    }

    /// `source` and `target`: the table's, else what the app's sync rule
    /// already says (where its source is and where it goes); the target
    /// must be an absolute container path.
    fn places(&self, app: &Service) -> Result<(Option<PathBuf>, String), ConfigError> {
        let t = self.t;
        let sync = app
            .watch
            .iter()
            .find(|w| w.action == WatchAction::Sync && w.target.is_some());
        let source = match self.host_path(&t.source)? {
            Some(p) => Some(p),
            None => sync.map(|w| w.path.clone()),
        };
        let target = match self.text(&t.target)? {
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
                self.ctx.src,
                span,
                format!("`[test].target` `{target}` is not an absolute container path"),
                "here",
                None,
            ));
        }
        Ok((source, target))
    }

    /// `writable`: each path, relative ones under the target.
    fn writable(&self, target: &str) -> Result<Vec<String>, ConfigError> {
        let writable = match &self.t.writable {
            Some(list) => list
                .iter()
                .map(|w| self.ctx.interp(self.ctx.src, w.span(), w.get_ref()))
                .collect::<Result<Vec<_>, _>>()?,
            None => DEFAULT_WRITABLE.iter().map(|s| s.to_string()).collect(),
        };
        Ok(writable
            .into_iter()
            .map(|w| {
                if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", target.trim_end_matches('/'))
                }
            })
            .collect())
    }

    /// `env`, interpolated; a value is secret when named so, listed in
    /// `[test].secrets`, or secret in the test service's own env.
    fn env(&self, service: &str) -> Result<IndexMap<String, EnvValue>, ConfigError> {
        let t = self.t;
        let listed = |k: &str| t.secrets.iter().flatten().any(|s| s.get_ref() == k);
        let secret_in_service = |k: &str| {
            listed(k)
                || self
                    .services
                    .get(service)
                    .and_then(|s| s.env.get(k))
                    .is_some_and(|v| v.secret)
        };
        let mut env = IndexMap::new();
        for (k, v) in t.env.iter().flatten() {
            let value = self.ctx.interp(self.ctx.src, v.span(), v.get_ref())?;
            env.insert(
                k.clone(),
                EnvValue {
                    value,
                    secret: looks_secret(k) || secret_in_service(k),
                },
            );
        }
        Ok(env)
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, ConfigError, LoadOptions};

    fn load(text: &str) -> Result<crate::config::model::Stack, ConfigError> {
        let root = Path::new("/proj");
        let opts = LoadOptions {
            cwd: root.to_path_buf(),
            ..Default::default()
        };
        parse(text, "dev.toml", &root.join("dev.toml"), root, &opts)
    }

    const SERVICES: &str = r#"
[services.db]
image = "postgres:16"
env = { POSTGRES_USER = "app", POSTGRES_PASSWORD = "secret" }
ready = { postgres = {} }

[services.cache]
image = "redis:7"
ready = { redis = {} }

[services.app]
build = "."
working_dir = "/srv"
"#;

    #[test]
    fn the_example_stack_file_needs_only_the_test_env() {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dev.toml"))
            .unwrap();
        let t = load(&text).unwrap().test.unwrap();
        assert_eq!(
            (t.service.as_str(), t.database.as_str(), t.redis.as_deref()),
            ("app", "db", Some("cache"))
        );
        assert_eq!(t.command, ["phpunit"]);
        assert_eq!(t.migrate, "php artisan migrate --force");
        assert_eq!(
            t.source.as_deref(),
            Some(Path::new("/proj/examples/laravel"))
        );
        assert_eq!(t.target, "/var/www/html");
        assert_eq!(
            t.migrations,
            Path::new("/proj/examples/laravel/database/migrations")
        );
        assert_eq!(t.tests, Path::new("/proj/examples/laravel/tests"));
        assert_eq!(
            t.writable,
            ["/var/www/html/storage", "/var/www/html/bootstrap/cache"]
        );
        assert_eq!(t.env["APP_ENV"].value, "testing");
        assert_eq!(t.env["CACHE_DRIVER"].value, "array");
    }

    #[test]
    fn every_key_can_be_given() {
        let text = format!(
            "{SERVICES}\n[test]\nservice = \"app\"\ndatabase = \"db\"\nredis = \"cache\"\ncommand = \"vendor/bin/phpunit --colors=never\"\nmigrate = \"php artisan migrate --seed --force\"\nsource = \"./src\"\ntarget = \"/app\"\nmigrations = \"src/db/migrations\"\ntests = \"src/spec\"\nwritable = [\"var\", \"/tmp/x\"]\nenv = {{ APP_ENV = \"ci\", TEST_TOKEN = \"t\" }}\n"
        );
        let t = load(&text).unwrap().test.unwrap();
        assert_eq!(t.command, ["vendor/bin/phpunit", "--colors=never"]);
        assert_eq!(t.migrate, "php artisan migrate --seed --force");
        assert_eq!(t.source.as_deref(), Some(Path::new("/proj/src")));
        assert_eq!(t.target, "/app");
        assert_eq!(t.migrations, Path::new("/proj/src/db/migrations"));
        assert_eq!(t.tests, Path::new("/proj/src/spec"));
        assert_eq!(t.writable, ["/app/var", "/tmp/x"]);
        assert!(t.env["TEST_TOKEN"].secret);
        assert!(!t.env["APP_ENV"].secret);
    }

    #[test]
    fn without_a_table_settings_are_assumed_or_absent() {
        // The only built service is the app; no sync rule means no source to mount.
        let t = load(&format!("{SERVICES}\n[test]\nsource = \"app\"\n"))
            .unwrap()
            .test
            .unwrap();
        assert_eq!(t.target, "/srv", "the service's working_dir");
        assert!(
            load(SERVICES).unwrap().test.is_none(),
            "nothing to mount or hash"
        );
        let no_db = "[services.app]\nbuild = \".\"\n";
        assert!(load(no_db).unwrap().test.is_none());
    }

    #[test]
    fn bad_settings_point_at_the_line() {
        let err = |extra: &str| {
            load(&format!("{SERVICES}\n[test]\nsource = \"app\"\n{extra}")).unwrap_err()
        };
        let e = err("database = \"dbx\"\n");
        assert_eq!(
            e.to_string(),
            "`[test].database` names unknown service `dbx`"
        );
        let ConfigError::Invalid { span, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(span.offset() > SERVICES.len(), "points into [test]");
        assert_eq!(
            err("database = \"cache\"\n").to_string(),
            "`[test].database` service `cache` has no PostgreSQL probe"
        );
        assert_eq!(
            err("command = []\n").to_string(),
            "`[test].command` is empty"
        );
        assert_eq!(
            err("command = \"phpunit 'x\"\n").to_string(),
            "unbalanced quotes"
        );
        assert_eq!(
            err("target = \"html\"\n").to_string(),
            "`[test].target` `html` is not an absolute container path"
        );
        assert!(err("paralel = 2\n")
            .to_string()
            .starts_with("unknown field `paralel`"));

        let no_db = "[services.app]\nbuild = \".\"\n\n[test]\nsource = \"app\"\n";
        assert_eq!(
            load(no_db).unwrap_err().to_string(),
            "cannot tell which service is the test database server"
        );
    }
}
