//! The resolved stack model: what `dev.toml` means once presets, `.env`,
//! interpolation and profiles have been applied. Every other part (plan,
//! engine, export) reads only this, never the raw file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use crate::image_ref::ImageRef;

mod probe;

pub use probe::{Probe, REDISCLI_AUTH};

/// A whole stack, validated: dependencies exist and form no cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    /// Project name; prefixes every Docker object name and is their label.
    pub project: String,
    /// The stack file this was read from.
    pub file: PathBuf,
    /// The folder of the stack file; relative paths are resolved against it.
    pub root: PathBuf,
    /// Services enabled by the active profiles, in file order.
    pub services: IndexMap<String, Service>,
    /// Services of the file left out by the active profiles: still part of
    /// the stack (their containers are not orphans), just not started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inactive: Vec<String>,
    /// Named volumes used by the services (declared or implied by a mount).
    pub volumes: IndexMap<String, Volume>,
    /// The top-level `[k8s]` table, read only by export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<super::k8s::StackSettings>,
    /// How `devenv test` runs the suite; `None` when the file has no `[test]`
    /// table and no app and PostgreSQL service to assume one from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<TestSettings>,
    /// `[commands.NAME]`: project-defined commands, `devenv NAME args…`.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub commands: IndexMap<String, super::commands::ProjectCommand>,
    /// Hides the stack's secrets in any text; built once when the stack is
    /// resolved, what every output prints through.
    #[serde(skip)]
    pub masker: std::sync::Arc<super::secret::Masker>,
    /// `[project] bind_all_interfaces`: a port whose mapping names no host
    /// address is published on every interface (as Compose does), not only
    /// on the loopback one (devenv's default on a local engine).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bind_all_interfaces: bool,
    /// `[db] per_branch`: a database per git branch (see `crate::branchdb`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub db_per_branch: bool,
}

impl Stack {
    /// The stack under the name its folder goes by on the engine (a second
    /// checkout's `shop-feature`): host names and `${DEVENV_URL}` values
    /// resolved from the file's name follow it, so each checkout answers
    /// on its own name (issue 28).
    pub fn rename(&mut self, to: &str) {
        let (from, to) = (self.project.clone(), to.to_string());
        if from == to {
            return;
        }
        let (old, new) = (super::host::host_label(&from), super::host::host_label(&to));
        let (old_host, new_host) = (
            format!("{old}.{}", super::host::HOST_DOMAIN),
            format!("{new}.{}", super::host::HOST_DOMAIN),
        );
        for svc in self.services.values_mut() {
            if let Some(h) = &mut svc.hostname {
                let labels: Vec<&str> = h.split('.').collect();
                if labels.last() == Some(&old.as_str()) {
                    let mut renamed: Vec<String> = labels[..labels.len() - 1]
                        .iter()
                        .map(|l| l.to_string())
                        .collect();
                    renamed.push(new.clone());
                    *h = renamed.join(".");
                }
            }
            for v in svc.env.values_mut() {
                // Only the URL `${DEVENV_URL}` and the presets write: the
                // project's own name under `.localhost`, after `//` or `.`.
                for sep in ["//", "."] {
                    let (a, b) = (format!("{sep}{old_host}"), format!("{sep}{new_host}"));
                    if v.value.contains(&a) {
                        v.value = v.value.replace(&a, &b);
                    }
                }
            }
        }
        self.project = to;
    }

    /// A stack known only by its name and folder: what devenv can say of a
    /// project whose stack file is gone (`-p NAME ps`/`down`, from labels).
    pub fn bare(project: &str, root: PathBuf) -> Stack {
        Stack {
            project: project.to_string(),
            file: root.join("dev.toml"),
            root,
            services: IndexMap::new(),
            inactive: Vec::new(),
            volumes: IndexMap::new(),
            k8s: None,
            test: None,
            commands: IndexMap::new(),
            masker: Default::default(),
            bind_all_interfaces: false,
            db_per_branch: false,
        }
    }
}

/// The `[test]` table with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestSettings {
    /// The service whose image runs the tests (one-off containers of it).
    pub service: String,
    /// The PostgreSQL service the test databases live on.
    pub database: String,
    /// The Redis service whose logical databases the workers get, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// PHPUnit and its fixed arguments; `--` arguments are appended.
    pub command: Vec<String>,
    /// Shell command that migrates the database named by `DB_DATABASE`.
    pub migrate: String,
    /// Host folder mounted read-only at `target`; `None` runs the image's own copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// Where the app lives in the container (PHPUnit's working folder).
    pub target: String,
    /// Host folder of the migrations; its files name the template database.
    pub migrations: PathBuf,
    /// Host folder searched for `*Test.php` files to split between workers.
    pub tests: PathBuf,
    /// Container folders given a fresh tmpfs, so the app can write there.
    pub writable: Vec<String>,
    /// Extra env for the test containers, over the service's own.
    pub env: IndexMap<String, EnvValue>,
}

impl Service {
    /// What the router serves this service at: its host name under
    /// `.localhost` and the container port, when it has a `hostname` and a
    /// port to send to (`web_port`, the HTTP probe's, or the only one).
    pub fn route(&self) -> Option<(String, u16)> {
        let host = self.hostname.as_ref()?;
        let port = self.web_port.or(match &self.ready {
            Some(Probe::Http { port, .. }) => Some(*port),
            _ => None,
        });
        let only = match self.ports.as_slice() {
            [only] => Some(only.container),
            _ => None,
        };
        let port = port.or(only)?;
        Some((format!("{host}.{}", super::host::HOST_DOMAIN), port))
    }
}

/// One service, fully resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    /// Image to run; for a service with `build` this is the tag devenv gives it.
    pub image: ImageRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Local build used when `image` cannot be pulled (presets' stand-ins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Shared env, then `env_file`s, then the service's own `env`; interpolated.
    pub env: IndexMap<String, EnvValue>,
    pub ports: Vec<Port>,
    pub volumes: Vec<Mount>,
    pub depends_on: IndexMap<String, Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<Probe>,
    #[serde(with = "duration_secs")]
    pub ready_timeout: Duration,
    pub restart: Restart,
    /// `restart = "no"` is written out (not the default): a task that runs
    /// to completion, which export makes a Job.
    #[serde(skip)]
    pub runs_once: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `NAME:ADDRESS` lines for the container's /etc/hosts (`host-gateway`
    /// is the host, on Linux too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Served by the router at `https://HOSTNAME.localhost` (issue 28):
    /// DNS labels without `.localhost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The container port the router forwards to (else the HTTP probe's,
    /// else the only published one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_port: Option<u16>,
    pub profiles: Vec<String>,
    pub hooks: Hooks,
    pub watch: Vec<WatchRule>,
    /// How the `sync` rules' folders reach the container; `None` picks by
    /// engine (bind on a local Linux engine, sync elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<MountMode>,
    /// The service's `k8s` table (over its preset's), read only by export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s: Option<super::k8s::ServiceSettings>,
    /// Its hooks' and command's texts as interpolated, each with where the
    /// variables' values went: export references a secret by its key there
    /// and leaves what dev.toml spells out as written (`jwt:secret`).
    #[serde(skip)]
    pub interpolated: Vec<Interpolated>,
}

/// A text after interpolation, and the byte ranges of it that came from a
/// variable (`${DB_PASSWORD}`), as against written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    pub text: String,
    pub spans: Vec<std::ops::Range<usize>>,
}

/// An environment value and whether it is a secret (never printed, never in a
/// ConfigMap): its `Debug` and `Serialize` mask a secret's value.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvValue {
    pub value: String,
    pub secret: bool,
}

impl EnvValue {
    /// What may be shown of the value: itself, or the mask for a secret.
    pub fn shown(&self) -> &str {
        if self.secret {
            super::secret::MASK
        } else {
            &self.value
        }
    }
}

impl std::fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvValue")
            .field("value", &self.shown())
            .field("secret", &self.secret)
            .finish()
    }
}

impl Serialize for EnvValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EnvValue", 2)?;
        st.serialize_field("value", self.shown())?;
        st.serialize_field("secret", &self.secret)?;
        st.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// Absolute path of the build context.
    pub context: PathBuf,
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build args; one named like a secret or listed in `secrets` is masked.
    pub args: BTreeMap<String, EnvValue>,
    /// Host script run before building (e.g. to download wheels), absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepare: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// Whether two host addresses of a port mapping take in a common address:
/// none given is every address of both families, `0.0.0.0` every IPv4 one,
/// `::` every IPv6 one (so `0.0.0.0:80` beside `[::]:80` is fine).
pub fn host_addresses_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |ip: Option<&str>| {
        ip.map(|ip| ip.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|ip| !ip.is_empty())
    };
    let (Some(a), Some(b)) = (norm(a), norm(b)) else {
        return true;
    };
    let v6 = |ip: &str| ip.contains(':');
    let any = |ip: &str| ip == "0.0.0.0" || ip == "::";
    v6(&a) == v6(&b) && (a == b || any(&a) || any(&b))
}

/// The IPv6 loopback address, where a [`Port::loopback_v6`] mapping is
/// published beside `127.0.0.1`.
pub const LOOPBACK_V6: &str = "::1";

/// One published port: `[ip:]host:container[/proto]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `None` when only the container port was given (Docker picks one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<u16>,
    pub container: u16,
    pub protocol: Protocol,
    /// This host port or none: when it is taken, `up` fails rather than
    /// publishing the service on a free one (`{ port = "…", fixed = true }`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fixed: bool,
    /// The last port of a host range for one container port
    /// (`6005-6015:80`): any free port from `host` to this one, as Compose
    /// publishes it, and never one outside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_last: Option<u16>,
    /// Published on `[::1]` too, at the same host port: `up` sets it on an
    /// engine of this machine for a mapping that names no address, so that
    /// `localhost` reaches the service over IPv4 and IPv6 alike.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub loopback_v6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    /// A named volume managed by devenv (`pgdata:/var/lib/postgresql/data`).
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    /// A host path, absolute after resolution (`./src:/app`).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A volume Docker creates and names itself (`/app/node_modules`), as
    /// Compose's anonymous volumes: the container's own copy of a folder.
    Anonymous { target: String, read_only: bool },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Created outside devenv: never created nor removed by it, and `up`
    /// refuses to start without it (the engine would make an empty one).
    pub external: bool,
    /// The engine's name of an external volume (Compose's `name:`), when it
    /// is not the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

impl Volume {
    /// The engine's name of this volume, when external: its `name` or its key.
    pub fn external_name<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.external.then(|| self.name.as_deref().unwrap_or(key))
    }
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// The container is running.
    Started,
    /// Its readiness probe passed (config refuses it on a service without one).
    Ready,
    /// It ran to completion with exit code 0 (one-off jobs).
    Completed,
}

impl Stack {
    /// Every secret value of the stack, raw: each service's (active or
    /// not) and the test env's. What `devenv config` masks in commands.
    pub fn secret_values(&self) -> Vec<&str> {
        let test = self
            .test
            .iter()
            .flat_map(|t| t.env.values())
            .filter(|v| v.secret)
            .map(|v| v.value.as_str());
        self.services
            .values()
            .flat_map(Service::secret_values)
            .chain(test)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// `text` with every secret of the stack masked.
    pub fn mask(&self, text: &str) -> String {
        self.masker.mask(text).into_owned()
    }
}

impl Service {
    /// Where variables' values went in `text`, one of its interpolated
    /// texts; `None` for a text not read from a stack file (made in code).
    pub fn interpolated_spans(&self, text: &str) -> Option<Vec<std::ops::Range<usize>>> {
        let mut found = self
            .interpolated
            .iter()
            .filter(|i| i.text == text)
            .peekable();
        found.peek()?;
        // The same text twice (a hook and a command word alike): every
        // range either had counts.
        Some(found.flat_map(|i| i.spans.iter().cloned()).collect())
    }

    /// Every secret value this service knows (env, build args, probe
    /// password), raw: what [`Service::mask`] hides and what the config hash
    /// must still see, since their printed forms are all the same mask.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        let build_args = self
            .build
            .iter()
            .chain(&self.fallback)
            .flat_map(|b| b.args.values());
        let password = match &self.ready {
            Some(Probe::Postgres { password, .. }) => Some(password.expose()),
            Some(Probe::Redis {
                password: Some(password),
                ..
            }) => Some(password.expose()),
            _ => None,
        };
        self.env
            .values()
            .chain(build_args)
            .filter(|v| v.secret)
            .map(|v| v.value.as_str())
            .chain(password)
    }

    /// `text` (a hook command, say) with every secret of the stack masked:
    /// a hook may quote another service's password.
    pub fn mask(&self, text: &str) -> String {
        self.hooks.masker.mask(text).into_owned()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hooks {
    /// Shell commands run in the container, in order, once it is ready.
    pub after_up: Vec<String>,
    /// `devenv migrate`'s commands.
    pub migrate: Vec<String>,
    /// `devenv seed`'s commands.
    pub seed: Vec<String>,
    /// How long one command may run before it is stopped and `up` fails.
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
    /// The stack's masker (one, shared): these hooks and the service's
    /// command may quote any secret of the stack, another service's too.
    #[serde(skip)]
    pub masker: std::sync::Arc<super::secret::Masker>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            after_up: Vec::new(),
            migrate: Vec::new(),
            seed: Vec::new(),
            timeout: Duration::from_secs(600),
            masker: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchRule {
    /// Absolute host path.
    pub path: PathBuf,
    pub action: WatchAction,
    /// Container path for `sync`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub ignore: Vec<String>,
    /// Command for `exec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// How a service's source (its `sync` rules' folders) reaches the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountMode {
    /// A bind mount of each folder at its target: edits are visible at once.
    Bind,
    /// Copies both ways (up, restart, `devenv watch`), for engines whose
    /// mounts are slow or cannot reach the host's files.
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchAction {
    Sync,
    Restart,
    Rebuild,
    Exec,
}

mod duration_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
