//! The stack file as written: serde structs that mirror `dev.toml` key for
//! key, with spans kept so that later checks can point at the line.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub project: RawProject,
    #[serde(default)]
    pub env: IndexMap<String, S<String>>,
    #[serde(default)]
    pub services: IndexMap<S<String>, S<RawService>>,
    #[serde(default)]
    pub volumes: IndexMap<String, RawVolume>,
    pub k8s: Option<super::k8s::StackSettings>,
    pub test: Option<S<RawTest>>,
    /// `[commands.NAME]`: project-defined commands.
    #[serde(default)]
    pub commands: IndexMap<S<String>, S<super::commands::RawCommand>>,
    #[serde(default)]
    pub db: RawDb,
}

/// The `[db]` table: how devenv treats the stack's PostgreSQL database.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDb {
    /// A database per git branch (as `devenv db branch on` turns it on).
    #[serde(default)]
    pub per_branch: bool,
}

/// The `[test]` table: how `devenv test` runs the suite.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub service: Option<S<String>>,
    pub database: Option<S<String>>,
    pub redis: Option<S<String>>,
    pub command: Option<S<StrOrList>>,
    pub migrate: Option<S<String>>,
    pub source: Option<S<String>>,
    pub target: Option<S<String>>,
    pub migrations: Option<S<String>>,
    pub tests: Option<S<String>>,
    pub writable: Option<Vec<S<String>>>,
    pub env: Option<IndexMap<String, S<String>>>,
    /// `env` names whose values are secrets (besides secret-looking names).
    pub secrets: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    pub name: Option<S<String>>,
    /// Publish ports on every interface, not only the loopback one.
    #[serde(default)]
    pub bind_all_interfaces: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawVolume {
    #[serde(default)]
    pub external: bool,
    /// The engine's name of an `external` volume, when not the key's.
    pub name: Option<S<String>>,
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: std::collections::BTreeMap<String, String>,
}

/// A string or a list of strings (`command = "php -v"` or `["php", "-v"]`).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum StrOrList {
    Str(String),
    List(Vec<String>),
}

impl StrOrList {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StrOrList::Str(s) => vec![s],
            StrOrList::List(v) => v,
        }
    }
}

/// `env_file = ".env.web"`, or a list whose items are a path or
/// `{ path = ".env.local", required = false }` (Compose's long form: an
/// optional file may be missing).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawEnvFiles {
    One(RawEnvFile),
    List(Vec<RawEnvFile>),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawEnvFile {
    Path(String),
    Table(RawEnvFileTable),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawEnvFileTable {
    pub path: String,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl RawEnvFiles {
    /// Each file with whether it must exist.
    pub fn files(&self) -> Vec<(&str, bool)> {
        let items = match self {
            RawEnvFiles::One(f) => std::slice::from_ref(f),
            RawEnvFiles::List(v) => v.as_slice(),
        };
        items
            .iter()
            .map(|f| match f {
                RawEnvFile::Path(p) => (p.as_str(), true),
                RawEnvFile::Table(t) => (t.path.as_str(), t.required),
            })
            .collect()
    }
}

/// One service table, or a preset file (which has the same keys plus `fallback`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    #[serde(rename = "use")]
    pub preset: Option<S<String>>,
    pub image: Option<S<String>>,
    pub build: Option<S<RawBuildSpec>>,
    pub fallback: Option<S<RawBuild>>,
    pub command: Option<S<StrOrList>>,
    pub entrypoint: Option<S<StrOrList>>,
    pub env: Option<IndexMap<String, S<String>>>,
    pub env_file: Option<S<RawEnvFiles>>,
    /// Variables passed on from the environment (or `.env`) when set there,
    /// left out otherwise: Compose's key-only `environment: [FOO]`.
    pub pass_env: Option<Vec<S<String>>>,
    pub secrets: Option<Vec<S<String>>>,
    pub ports: Option<Vec<S<RawPort>>>,
    pub volumes: Option<Vec<S<String>>>,
    pub depends_on: Option<S<RawDepends>>,
    pub ready: Option<S<RawProbe>>,
    pub ready_timeout: Option<S<RawDuration>>,
    pub restart: Option<S<String>>,
    pub user: Option<S<String>>,
    pub working_dir: Option<S<String>>,
    pub extra_hosts: Option<Vec<S<String>>>,
    /// The name the router serves the service at: `shop` is
    /// `https://shop.localhost` (issue 28).
    pub hostname: Option<S<String>>,
    /// The container port the router sends `hostname`'s requests to.
    pub web_port: Option<S<u16>>,
    pub profiles: Option<Vec<S<String>>>,
    pub hooks: Option<RawHooks>,
    pub watch: Option<Vec<S<RawWatch>>>,
    /// How the `sync` rules' folders reach the container: `bind` or `sync`.
    pub mount: Option<S<String>>,
    pub k8s: Option<super::k8s::ServiceSettings>,
}

/// A port mapping: the short `"8080:8080"`, or the long form
/// `{ port = "5432:5432", fixed = true }` for a host port devenv must never
/// swap for a free one when it is taken.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawPort {
    Short(String),
    Long(RawPortLong),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortLong {
    pub port: String,
    #[serde(default)]
    pub fixed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBuildSpec {
    Context(String),
    Full(RawBuild),
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    #[serde(default)]
    pub args: IndexMap<String, String>,
    pub prepare: Option<String>,
}

/// `depends_on = { db = "ready" }` or the short `depends_on = ["db"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDepends {
    Map(IndexMap<String, String>),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum RawProbe {
    Postgres(RawPostgresProbe),
    Redis(RawRedisProbe),
    Http(RawHttpProbe),
    Tcp(u16),
    Exec(StrOrList),
    Docker(String),
    /// `ready = "none"`: no probe, not even a preset's.
    None,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPostgresProbe {
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRedisProbe {
    pub port: Option<u16>,
    /// ACL user for `AUTH`; interpolated like `env`.
    pub username: Option<String>,
    /// Password for `AUTH`; interpolated like `env`, so it can stay `${VAR}`.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpProbe {
    pub port: u16,
    pub path: Option<String>,
    /// One status (`200`) or an inclusive range (`[200, 399]`).
    pub status: Option<RawStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    One(u16),
    Range([u16; 2]),
}

/// `"90s"`, `"2m"`, `"500ms"` or a number of seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    Secs(u64),
    Text(String),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    #[serde(default)]
    pub after_up: Vec<S<String>>,
    /// What `devenv migrate` runs (default: the `after_up` commands that migrate).
    pub migrate: Option<Vec<S<String>>>,
    /// What `devenv seed` runs (default: the `after_up` commands that seed).
    pub seed: Option<Vec<S<String>>>,
    /// How long one hook command may run (default 10 minutes).
    pub timeout: Option<S<RawDuration>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    pub path: String,
    pub action: String,
    pub target: Option<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
    pub run: Option<String>,
}
