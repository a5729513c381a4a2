//! The merged Compose model → the `dev.toml` shape.
//!
//! Files are merged before this ([`super::yaml::merge`]); here each service
//! is converted once, with Compose's meaning: duplicate ports and mounts of
//! one container path collapse as they do in Compose, key-only variables
//! pass through when set, healthchecks become native probes only where the
//! probe checks the same thing (else the command itself runs), with their
//! timing, and `sync+restart` / `sync+exec` watch rules become two rules.

use std::path::Path;

use indexmap::IndexMap;

use super::compose::{self, DependsOn, KeyValues, ShortOr, Words};
use super::vars::{escape, Vars};
use super::{ImportError, Warning};
use crate::config::interp::InterpError;

/// A whole stack in `dev.toml` terms.
#[derive(Debug, Default)]
pub(crate) struct Stack {
    pub name: Option<String>,
    pub services: IndexMap<String, Service>,
    pub volumes: IndexMap<String, Volume>,
}

#[derive(Debug, Default)]
pub(crate) struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Words>,
    pub entrypoint: Option<Words>,
    pub env: IndexMap<String, String>,
    /// Key-only variables: passed on when set.
    pub pass_env: Vec<String>,
    /// Each env file and whether it must exist (`required: false`: optional).
    pub env_file: Vec<(String, bool)>,
    pub ports: Vec<String>,
    pub volumes: Vec<Mount>,
    pub depends_on: IndexMap<String, &'static str>,
    pub ready: Option<Probe>,
    /// How long Compose would wait before calling it unhealthy.
    pub ready_timeout: Option<String>,
    pub restart: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub profiles: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub watch: Vec<Watch>,
}

#[derive(Debug, Default)]
pub(crate) struct Build {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    pub args: IndexMap<String, String>,
}

/// A mount in `dev.toml`'s short form, with the container path it is known by.
#[derive(Debug)]
pub(crate) struct Mount {
    pub spec: String,
    pub target: String,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Probe {
    Redis {
        port: Option<u16>,
        username: Option<String>,
        password: Option<String>,
    },
    Http {
        port: u16,
        path: String,
    },
    Exec(Vec<String>),
}

#[derive(Debug)]
pub(crate) struct Watch {
    pub path: String,
    pub action: &'static str,
    pub target: Option<String>,
    pub ignore: Vec<String>,
    pub run: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Volume {
    pub driver: Option<String>,
    pub driver_opts: IndexMap<String, String>,
    pub external: bool,
    /// The engine's name of an external volume, when not its key.
    pub name: Option<String>,
}

type Warn<'w> = dyn FnMut(&str, String) + 'w;

impl Stack {
    pub(crate) fn from_compose(
        file: compose::ComposeFile,
        vars: &mut Vars,
        warnings: &mut Vec<Warning>,
    ) -> Result<Stack, ImportError> {
        let mut services = IndexMap::new();
        for (name, service) in file.services.unwrap_or_default() {
            let mut found = Vec::new();
            let mut warn = |key: &str, detail: String| {
                found.push(Warning::new(Some(&name), key).with_detail(detail));
            };
            let service = Service::from_compose(service.unwrap_or_default(), vars, &mut warn)
                .map_err(|e| ImportError::variable(Path::new(&name), e))?;
            warnings.extend(found);
            services.insert(name, service);
        }
        // `service_healthy` on a service without a healthcheck: Compose
        // refuses to start that (and devenv's config refuses `ready` without
        // a probe), so the dependent waits for it to be started, said once.
        let unprobed: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.ready.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        for (name, service) in services.iter_mut() {
            for (dep, condition) in service.depends_on.iter_mut() {
                if *condition == "ready" && unprobed.contains(dep) {
                    *condition = "started";
                    warnings.push(
                        Warning::new(Some(name), "depends_on").with_detail(format!(
                            "`service_healthy` on `{dep}`, which has no healthcheck (written as `started`)"
                        )),
                    );
                }
            }
        }
        let volumes = file.volumes.unwrap_or_default().into_iter();
        Ok(Stack {
            name: file.name,
            services,
            volumes: volumes
                .map(|(name, volume)| (name, Volume::from_compose(volume.unwrap_or_default())))
                .collect(),
        })
    }
}

impl Service {
    fn from_compose(
        s: compose::Service,
        vars: &mut Vars,
        warn: &mut Warn,
    ) -> Result<Service, InterpError> {
        let (env, pass_env) = environment(s.environment.unwrap_or_default());
        let mut ports: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for port in s.ports.unwrap_or_default() {
            let (spec, literal) = port_spec(port, vars)?;
            // What `devenv` could not read is said, never written.
            if let Err((why, _)) = crate::config::parse_port(&literal) {
                warn("ports", why);
                continue;
            }
            // Compose drops a port mapping given twice.
            if !seen.contains(&literal) {
                seen.push(literal);
                ports.push(spec);
            }
        }
        let mut volumes: Vec<Mount> = Vec::new();
        for volume in s.volumes.unwrap_or_default() {
            if let Some(mount) = mount(volume, warn).filter(|m| runnable(m, warn)) {
                // One mount per container path, the later one winning.
                match volumes.iter_mut().find(|m| m.target == mount.target) {
                    Some(existing) => *existing = mount,
                    None => volumes.push(mount),
                }
            }
        }
        let (ready, ready_timeout) = match s.healthcheck {
            Some(check) => super::probe::healthcheck(check, &env, vars)?,
            None => (None, None),
        };
        let env_file = s
            .env_file
            .map(|files| files.0)
            .unwrap_or_default()
            .into_iter()
            .map(|file| match file {
                ShortOr::Short(path) => (escape(&path), true),
                ShortOr::Long(file) => (escape(&file.path), file.required != Some(false)),
            })
            .collect();
        let mut depends_on = s
            .depends_on
            .map(|d| depends_on(d, warn))
            .unwrap_or_default();
        links(s.links.unwrap_or_default(), &mut depends_on, warn);
        Ok(Service {
            image: s.image,
            build: s.build.map(|b| Build::from_compose(b, vars)),
            command: s.command.map(|c| split_after(c, vars)).transpose()?,
            entrypoint: s.entrypoint.map(|c| split_after(c, vars)).transpose()?,
            env,
            pass_env,
            env_file,
            ports,
            volumes,
            depends_on,
            ready,
            ready_timeout,
            restart: s.restart.and_then(|policy| restart(policy, warn)),
            user: s.user,
            working_dir: s.working_dir,
            // `profiles: ["${X:-}"]` names no profile: the service always runs.
            profiles: s
                .profiles
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect(),
            extra_hosts: s
                .extra_hosts
                .map(|h| h.0)
                .unwrap_or_default()
                .iter()
                .map(|h| escape(h))
                .collect(),
            watch: s
                .develop
                .and_then(|develop| develop.watch)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|rule| watch(rule, warn))
                .collect(),
        })
    }
}

impl Build {
    fn from_compose(build: ShortOr<compose::Build>, vars: &Vars) -> Build {
        match build {
            ShortOr::Short(context) => Build {
                context: Some(escape(&context)),
                ..Build::default()
            },
            ShortOr::Long(b) => Build {
                context: b.context.map(|c| escape(&c)),
                dockerfile: b.dockerfile,
                target: b.target,
                args: b
                    .args
                    .unwrap_or_default()
                    .0
                    .into_iter()
                    .filter_map(|(key, value)| match value {
                        Some(value) => Some((key, value)),
                        // A key-only build arg is passed when set, like Compose.
                        None => vars.get(&key).is_some().then(|| {
                            let value = format!("${{{key}}}");
                            (key, value)
                        }),
                    })
                    .collect(),
            },
        }
    }
}

impl Volume {
    fn from_compose(volume: compose::TopVolume) -> Volume {
        let (external, legacy_name) = match volume.external {
            Some(ShortOr::Short(flag)) => (flag == "true", None),
            Some(ShortOr::Long(long)) => (true, long.name),
            None => (false, None),
        };
        Volume {
            // `local` is what Docker uses anyway; saying so adds nothing.
            driver: volume.driver.filter(|driver| driver != "local"),
            driver_opts: volume.driver_opts.unwrap_or_default(),
            external,
            // The volume `up` mounts: an external one's own name (a
            // non-external one's is reported by `keys` as not carried over).
            name: external.then(|| volume.name.or(legacy_name)).flatten(),
        }
    }
}

/// `KEY=value` pairs, and the names given without a value.
fn environment(pairs: KeyValues) -> (IndexMap<String, String>, Vec<String>) {
    let mut env = IndexMap::new();
    let mut pass = Vec::new();
    for (key, value) in pairs.0 {
        match value {
            Some(value) => {
                env.insert(key, value);
            }
            None => pass.push(key),
        }
    }
    (env, pass)
}

/// The port as `dev.toml` writes it and its meaning, to spot duplicates.
fn port_spec(
    port: ShortOr<compose::Port>,
    vars: &mut Vars,
) -> Result<(String, String), InterpError> {
    let spec = match port {
        ShortOr::Short(spec) => spec,
        ShortOr::Long(p) => {
            let mut spec = String::new();
            if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
                if ip.contains(':') && !ip.starts_with('[') {
                    spec.push_str(&format!("[{ip}]:"));
                } else {
                    spec.push_str(&format!("{ip}:"));
                }
            }
            match p.published.as_deref().filter(|p| !p.is_empty()) {
                Some(published) => spec.push_str(&format!("{published}:")),
                // `127.0.0.1::80` is how the short syntax says "any host port".
                None if !spec.is_empty() => spec.push(':'),
                None => {}
            }
            spec.push_str(&p.target);
            if let Some(protocol) = p.protocol.filter(|protocol| protocol != "tcp") {
                spec.push_str(&format!("/{protocol}"));
            }
            spec
        }
    };
    // `devenv` interpolates a port before it reads it, as Compose does, so
    // the references stay; the value is what tells duplicates apart.
    let literal = vars.expand(&spec, None)?;
    let literal = literal.strip_suffix("/tcp").unwrap_or(&literal).to_owned();
    Ok((spec, literal))
}

fn mount(volume: ShortOr<compose::Mount>, warn: &mut Warn) -> Option<Mount> {
    let m = match volume {
        ShortOr::Short(spec) => return Some(short_mount(&spec, warn)),
        ShortOr::Long(m) => m,
    };
    let read_only = m.read_only == Some(true);
    let suffix = if read_only { ":ro" } else { "" };
    match (m.kind.as_str(), &m.source) {
        ("volume", None) => Some(Mount {
            spec: format!("{}{suffix}", escape(&m.target)),
            target: m.target,
        }),
        ("volume" | "bind", Some(source)) => Some(Mount {
            spec: format!("{}:{}{suffix}", escape(source), escape(&m.target)),
            target: m.target,
        }),
        (kind, _) => {
            warn("volumes", format!("{kind} mount at `{}`", m.target));
            None
        }
    }
}

/// Keeps `ro`; `rw` is the default. SELinux relabelling (`z`, `Z`), `nocopy`
/// and the macOS consistency hints have no `dev.toml` spelling.
fn short_mount(spec: &str, warn: &mut Warn) -> Mount {
    let parts: Vec<&str> = spec.splitn(3, ':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        // `/cache:ro` is an anonymous volume with a mode.
        [target, mode] if !mode.starts_with('/') => (None, *target, Some(*mode)),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => unreachable!("splitn yields one to three parts"),
    };
    let mut read_only = false;
    for flag in mode.into_iter().flat_map(|mode| mode.split(',')) {
        match flag {
            "ro" => read_only = true,
            "rw" | "" => {}
            other => warn("volumes.mode", format!("`{other}` on `{target}`")),
        }
    }
    let mut out = match source {
        Some(source) => format!("{}:{}", escape(source), escape(target)),
        None => escape(target),
    };
    if read_only {
        out.push_str(":ro");
    }
    Mount {
        spec: out,
        target: target.to_owned(),
    }
}

/// Whether the engine can make the mount: Compose accepts `volumes:
/// [workspace]` (an anonymous volume at a relative path), the engine does
/// not, and neither does `dev.toml`; such a mount is said, not written.
fn runnable(mount: &Mount, warn: &mut Warn) -> bool {
    let spec = mount.spec.replace("$$", "$");
    if !mount.target.starts_with('/') {
        warn(
            "volumes",
            format!(
                "`{spec}`: the container path `{}` is not absolute, which the engine refuses",
                mount.target
            ),
        );
        return false;
    }
    match crate::config::parse_mount(&spec, Path::new("/")) {
        Ok(_) => true,
        Err((why, _)) => {
            warn("volumes", why);
            false
        }
    }
}

/// Compose interpolates a command line, then splits it into words: a
/// `"${COMMAND}"` of `echo hello` is two words, an unset one none. `devenv`
/// splits first, then interpolates each word; where the two differ, the
/// words Compose runs are written as a list (literal: their variables are
/// resolved now), else the line keeps its references.
fn split_after(words: Words, vars: &mut Vars) -> Result<Words, InterpError> {
    let Words::Line(line) = &words else {
        return Ok(words);
    };
    let expanded = vars.expand(line, None)?;
    let Some(compose) = crate::config::split_words(&expanded) else {
        return Ok(words);
    };
    let devenv = crate::config::split_words(line)
        .map(|raw| {
            raw.iter()
                .map(|w| vars.expand(w, None))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if devenv.as_ref() == Some(&compose) {
        return Ok(words);
    }
    Ok(Words::List(compose.iter().map(|w| escape(w)).collect()))
}

/// `links: [db, "cache:redis"]` starts after `db` and `cache`, as Compose
/// orders it; an alias other than the name has no `dev.toml` spelling.
fn links(links: Vec<String>, depends_on: &mut IndexMap<String, &'static str>, warn: &mut Warn) {
    for link in links {
        let (name, alias) = link.split_once(':').unwrap_or((&link, &link));
        if alias != name {
            warn("links", format!("alias `{alias}` of `{name}`"));
        }
        depends_on.entry(name.to_owned()).or_insert("started");
    }
}

fn depends_on(depends_on: DependsOn, warn: &mut Warn) -> IndexMap<String, &'static str> {
    match depends_on {
        DependsOn::Names(names) => names.into_iter().map(|name| (name, "started")).collect(),
        DependsOn::Conditions(conditions) => conditions
            .into_iter()
            .map(|(name, c)| {
                let condition = match c.condition.as_deref() {
                    None | Some("service_started") => "started",
                    Some("service_healthy") => "ready",
                    Some("service_completed_successfully") => "completed",
                    Some(other) => {
                        warn("depends_on", format!("condition `{other}` on `{name}`"));
                        "started"
                    }
                };
                (name, condition)
            })
            .collect(),
    }
}

fn restart(policy: String, warn: &mut Warn) -> Option<String> {
    match policy.as_str() {
        "no" | "always" | "on-failure" | "unless-stopped" => Some(policy),
        _ if policy.starts_with("on-failure:") => {
            warn("restart", format!("retry limit of `{policy}`"));
            Some("on-failure".to_owned())
        }
        _ => {
            warn("restart", format!("policy `{policy}`"));
            None
        }
    }
}

/// `sync+restart` and `sync+exec` are two `dev.toml` rules: sync, then act.
fn watch(rule: compose::WatchRule, warn: &mut Warn) -> Vec<Watch> {
    let run = rule.exec.map(|exec| match exec.command {
        Words::Line(line) => line,
        Words::List(args) => args
            .iter()
            .map(|arg| shell_quote(arg))
            .collect::<Vec<_>>()
            .join(" "),
    });
    let sync = || Watch {
        path: rule.path.clone(),
        action: "sync",
        target: rule.target.clone(),
        ignore: rule.ignore.clone().unwrap_or_default(),
        run: None,
    };
    let then = |action: &'static str, run: Option<String>| Watch {
        path: rule.path.clone(),
        action,
        target: None,
        ignore: rule.ignore.clone().unwrap_or_default(),
        run,
    };
    match rule.action.as_str() {
        "sync" => vec![sync()],
        "rebuild" => vec![then("rebuild", None)],
        "restart" => vec![then("restart", None)],
        "sync+restart" => vec![sync(), then("restart", None)],
        "sync+exec" => vec![sync(), then("exec", run)],
        other => {
            warn(
                "develop.watch",
                format!("action `{other}` for `{}`", rule.path),
            );
            Vec::new()
        }
    }
}

/// `run` is one command line, so an exec-form list is joined back into one.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_keep_their_references() {
        let env = |name: &str| (name == "P").then(|| "81".to_owned());
        let mut vars = Vars::new(&env);
        let short = |s: &str| ShortOr::Short(s.to_owned());
        let (spec, literal) = port_spec(short("${P:-80}:80"), &mut vars).unwrap();
        assert_eq!((spec.as_str(), literal.as_str()), ("${P:-80}:80", "81:80"));
        let (spec, literal) = port_spec(short("${C:-80}:${C:-80}/tcp"), &mut vars).unwrap();
        assert_eq!(
            (spec.as_str(), literal.as_str()),
            ("${C:-80}:${C:-80}/tcp", "80:80")
        );
    }
}
