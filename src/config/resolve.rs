//! Turns the raw file (plus its presets) into the resolved model: merges
//! presets key by key, interpolates, parses ports, mounts, probes and
//! durations, and checks every reference — each error points at its span.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use super::error::{ConfigError, Src};
use super::interp::interpolate;
use super::model::*;
use super::presets::Preset;
use super::raw::*;
use super::Secret;

/// Where values come from while resolving one file.
pub struct Ctx<'a> {
    pub src: &'a Src,
    pub root: &'a Path,
    pub project: &'a str,
    /// `.env` beside the stack file; the process environment wins over it.
    pub dotenv: &'a HashMap<String, String>,
}

impl Ctx<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Interpolates a value found at `span` in `src`.
    pub fn interp(&self, src: &Src, span: Range<usize>, text: &str) -> Result<String, ConfigError> {
        interpolate(text, &|n| self.lookup(n))
            .map_err(|e| ConfigError::invalid(src, span, e.message, "in this value", Some(e.help)))
    }
}

/// A field picked from the service or, failing that, its preset, with the source it came from.
struct Pick<'a, T> {
    value: &'a T,
    src: &'a Src,
}

fn pick<'a, T>(
    user: &'a Option<T>,
    user_src: &'a Src,
    preset: Option<&'a Preset>,
    field: impl Fn(&'a RawService) -> &'a Option<T>,
) -> Option<Pick<'a, T>> {
    if let Some(value) = user {
        return Some(Pick {
            value,
            src: user_src,
        });
    }
    let p = preset?;
    field(&p.service)
        .as_ref()
        .map(|value| Pick { value, src: &p.src })
}

/// Env names treated as secrets even when not listed in `secrets`.
pub fn looks_secret(name: &str) -> bool {
    const SUFFIXES: [&str; 6] = [
        "_PASSWORD",
        "_PASS",
        "_SECRET",
        "_KEY",
        "_TOKEN",
        "_SECRET_ACCESS_KEY",
    ];
    name == "APP_KEY" || SUFFIXES.iter().any(|s| name.ends_with(s))
}

pub fn resolve_service(
    ctx: &Ctx,
    name: &str,
    raw: &RawService,
    shared_env: &IndexMap<String, EnvValue>,
    preset: Option<&Preset>,
) -> Result<Service, ConfigError> {
    let src = ctx.src;
    let p = preset;

    let mut build = match pick(&raw.build, src, p, |r| &r.build) {
        Some(b) => Some(resolve_build(
            ctx,
            b.src,
            b.value.span(),
            b.value.get_ref(),
            ctx.root,
        )?),
        None => None,
    };
    let mut fallback = match pick(&raw.fallback, src, p, |r| &r.fallback) {
        Some(b) => {
            // A preset's fallback context is relative to where the preset lives.
            let base = p
                .filter(|_| raw.fallback.is_none())
                .map_or(ctx.root, |p| p.base.as_path());
            Some(resolve_raw_build(
                ctx,
                b.src,
                b.value.span(),
                b.value.get_ref(),
                base,
            )?)
        }
        None => None,
    };
    let image = match pick(&raw.image, src, p, |r| &r.image) {
        Some(i) => ctx.interp(i.src, i.value.span(), i.value.get_ref())?,
        None if build.is_some() => format!("{}-{}:latest", ctx.project, name),
        None => {
            return Err(ConfigError::invalid(
                src,
                0..0,
                format!("service `{name}` has neither `image` nor `build`"),
                "",
                Some("add `image = \"…\"`, `build = \".\"`, or `use = \"<preset>\"`".into()),
            ))
        }
    };

    let words = |field: Option<Pick<S<StrOrList>>>| -> Result<Option<Vec<String>>, ConfigError> {
        let Some(f) = field else { return Ok(None) };
        let items = match f.value.get_ref() {
            StrOrList::Str(s) => split_words(s).ok_or_else(|| {
                ConfigError::invalid(
                    f.src,
                    f.value.span(),
                    "unbalanced quotes",
                    "in this command",
                    None,
                )
            })?,
            StrOrList::List(v) => v.clone(),
        };
        items
            .iter()
            .map(|w| ctx.interp(f.src, f.value.span(), w))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    let command = words(pick(&raw.command, src, p, |r| &r.command))?;
    let entrypoint = words(pick(&raw.entrypoint, src, p, |r| &r.entrypoint))?;

    let env = resolve_env(ctx, raw, shared_env, p)?;
    let ports = resolve_ports(ctx, pick(&raw.ports, src, p, |r| &r.ports))?;
    let volumes = resolve_list(ctx, pick(&raw.volumes, src, p, |r| &r.volumes), |s| {
        parse_mount(s, ctx.root)
    })?;

    let mut depends_on = IndexMap::new();
    if let Some(Pick { value: d, src }) = pick(&raw.depends_on, src, p, |r| &r.depends_on) {
        let entries: Vec<(String, String)> = match d.get_ref() {
            RawDepends::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            RawDepends::List(l) => l.iter().map(|k| (k.clone(), "started".into())).collect(),
        };
        for (dep, cond) in entries {
            let cond = match cond.as_str() {
                "started" => Condition::Started,
                "ready" | "healthy" => Condition::Ready,
                "completed" => Condition::Completed,
                other => {
                    return Err(ConfigError::invalid(
                        src,
                        d.span(),
                        format!("service `{name}` waits for `{dep}` to be `{other}`, which is not a condition"),
                        "unknown condition",
                        Some("use `started`, `ready` or `completed`".into()),
                    ))
                }
            };
            depends_on.insert(dep, cond);
        }
    }

    let ready = match pick(&raw.ready, src, p, |r| &r.ready) {
        Some(r) => {
            let interp = |text: &str| ctx.interp(r.src, r.value.span(), text);
            resolve_probe(r.value.get_ref(), &env, &interp)?.map_err(|msg| {
                ConfigError::invalid(r.src, r.value.span(), msg, "this probe", None)
            })?
        }
        None => None,
    };
    let ready_timeout = match pick(&raw.ready_timeout, src, p, |r| &r.ready_timeout) {
        Some(t) => parse_duration(t.value.get_ref()).map_err(|why| {
            ConfigError::invalid(
                t.src,
                t.value.span(),
                format!("invalid `ready_timeout`: {why}"),
                "here",
                Some(format!(
                    "write seconds (`90`) or a duration (`90s`, `2m`, `500ms`, `1m 30s`) of at most {}",
                    humantime::format_duration(MAX_DURATION)
                )),
            )
        })?,
        None => Duration::from_secs(60),
    };
    let restart = match pick(&raw.restart, src, p, |r| &r.restart) {
        Some(r) => match r.value.get_ref().as_str() {
            "no" => Restart::No,
            "always" => Restart::Always,
            "on-failure" => Restart::OnFailure,
            "unless-stopped" => Restart::UnlessStopped,
            other => {
                return Err(ConfigError::invalid(
                    r.src,
                    r.value.span(),
                    format!("unknown restart policy `{other}`"),
                    "here",
                    Some("use `no`, `always`, `on-failure` or `unless-stopped`".into()),
                ))
            }
        },
        None => Restart::No,
    };
    let text = |f: Option<Pick<S<String>>>| -> Result<Option<String>, ConfigError> {
        f.map(|f| ctx.interp(f.src, f.value.span(), f.value.get_ref()))
            .transpose()
    };
    let user = text(pick(&raw.user, src, p, |r| &r.user))?;
    let working_dir = text(pick(&raw.working_dir, src, p, |r| &r.working_dir))?;
    let extra_hosts = match pick(&raw.extra_hosts, src, p, |r| &r.extra_hosts) {
        Some(f) => f
            .value
            .iter()
            .map(|h| {
                let text = ctx.interp(f.src, h.span(), h.get_ref())?;
                extra_host(&text).ok_or_else(|| {
                    ConfigError::invalid(
                        f.src,
                        h.span(),
                        format!("`{text}` is not a host entry"),
                        "here",
                        Some(
                            "write `NAME:ADDRESS`, e.g. `host.docker.internal:host-gateway`".into(),
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let profiles = pick(&raw.profiles, src, p, |r| &r.profiles)
        .map(|f| f.value.iter().map(|s| s.get_ref().clone()).collect())
        .unwrap_or_default();
    let hooks = match pick(&raw.hooks, src, p, |r| &r.hooks) {
        Some(h) => {
            let list = |cmds: &[S<String>]| -> Result<Vec<String>, ConfigError> {
                cmds.iter()
                    .map(|c| ctx.interp(h.src, c.span(), c.get_ref()))
                    .collect()
            };
            let after_up = list(&h.value.after_up)?;
            // Without explicit lists, `devenv migrate`/`seed` pick their after_up commands.
            let pick_up = |word: &str| {
                after_up
                    .iter()
                    .filter(|c| c.contains(word))
                    .cloned()
                    .collect()
            };
            let timeout = match &h.value.timeout {
                Some(t) => parse_duration(t.get_ref()).map_err(|why| {
                    ConfigError::invalid(
                        h.src,
                        t.span(),
                        format!("invalid `hooks.timeout`: {why}"),
                        "here",
                        Some("write seconds (`90`) or a duration (`90s`, `2m`, `500ms`)".into()),
                    )
                })?,
                None => Hooks::default().timeout,
            };
            Hooks {
                timeout,
                migrate: h
                    .value
                    .migrate
                    .as_deref()
                    .map(list)
                    .transpose()?
                    .unwrap_or_else(|| pick_up("migrate")),
                seed: h
                    .value
                    .seed
                    .as_deref()
                    .map(list)
                    .transpose()?
                    .unwrap_or_else(|| pick_up("seed")),
                after_up,
            }
        }
        None => Hooks::default(),
    };
    let watch = match &raw.watch {
        Some(rules) => rules
            .iter()
            .map(|r| {
                resolve_watch(ctx.root, r.get_ref()).map_err(|(msg, help)| {
                    ConfigError::invalid(src, r.span(), msg, "this rule", Some(help))
                })
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let mount = match pick(&raw.mount, src, p, |r| &r.mount) {
        Some(m) => Some(match m.value.get_ref().as_str() {
            "bind" => MountMode::Bind,
            "sync" => MountMode::Sync,
            other => {
                return Err(ConfigError::invalid(
                    m.src,
                    m.value.span(),
                    format!("unknown mount mode `{other}`"),
                    "here",
                    Some("use `bind` (share the folder) or `sync` (copy it); leave it out to pick by engine".into()),
                ))
            }
        }),
        None => None,
    };
    let k8s = merge_tables(p.and_then(|p| p.service.k8s.as_ref()), raw.k8s.as_ref());

    // `secrets` covers build args as well as env.
    let secrets = secret_names(raw, p);
    for b in build.iter_mut().chain(fallback.iter_mut()) {
        for (k, v) in b.args.iter_mut() {
            v.secret |= secrets.contains(k);
        }
    }

    Ok(Service {
        name: name.to_string(),
        image,
        build,
        fallback,
        command,
        entrypoint,
        env,
        ports,
        volumes,
        depends_on,
        ready,
        ready_timeout,
        restart,
        user,
        working_dir,
        extra_hosts,
        profiles,
        hooks,
        watch,
        mount,
        k8s,
    })
}

fn merge_tables(base: Option<&toml::Table>, over: Option<&toml::Table>) -> Option<toml::Table> {
    match (base, over) {
        (None, None) => None,
        (b, o) => {
            let mut out = b.cloned().unwrap_or_default();
            out.extend(o.cloned().unwrap_or_default());
            Some(out)
        }
    }
}

fn resolve_list<T>(
    ctx: &Ctx,
    field: Option<Pick<Vec<S<String>>>>,
    parse: impl Fn(&str) -> Result<T, (String, String)>,
) -> Result<Vec<T>, ConfigError> {
    let Some(f) = field else {
        return Ok(Vec::new());
    };
    f.value
        .iter()
        .map(|item| {
            let text = ctx.interp(f.src, item.span(), item.get_ref())?;
            parse(&text).map_err(|(msg, help)| {
                ConfigError::invalid(f.src, item.span(), msg, "this entry", Some(help))
            })
        })
        .collect()
}

/// `ports`: each entry short (`"8080:8080"`) or long (`{ port = "8080:8080", fixed = true }`).
fn resolve_ports(
    ctx: &Ctx,
    field: Option<Pick<Vec<S<RawPort>>>>,
) -> Result<Vec<Port>, ConfigError> {
    let Some(f) = field else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in f.value {
        let (text, fixed) = match item.get_ref() {
            RawPort::Short(s) => (s, false),
            RawPort::Long(l) => (&l.port, l.fixed),
        };
        let text = ctx.interp(f.src, item.span(), text)?;
        let invalid = |msg: String, help: String| {
            ConfigError::invalid(f.src, item.span(), msg, "this entry", Some(help))
        };
        let mut ports = parse_port(&text).map_err(|(msg, help)| invalid(msg, help))?;
        if fixed && ports.iter().any(|p| p.host.is_none()) {
            return Err(invalid(
                format!("port mapping `{text}` is `fixed` but names no host port"),
                "write the host port to keep, as in `{ port = \"5432:5432\", fixed = true }`"
                    .into(),
            ));
        }
        for p in &mut ports {
            p.fixed = fixed;
        }
        out.extend(ports);
    }
    Ok(out)
}

fn resolve_build(
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

fn resolve_raw_build(
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
fn secret_names(raw: &RawService, preset: Option<&Preset>) -> Vec<String> {
    preset
        .and_then(|p| p.service.secrets.as_ref())
        .into_iter()
        .chain(raw.secrets.as_ref())
        .flatten()
        .map(|s| s.get_ref().clone())
        .collect()
}

fn resolve_env(
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
            for file in files.get_ref().clone().into_vec() {
                let path = ctx.root.join(ctx.interp(src, files.span(), &file)?);
                let pairs =
                    super::dotenv::read(&path, &|n| ctx.lookup(n)).map_err(|e| match e {
                        Ok(e) => e.at(&path),
                        Err(e) => ConfigError::invalid(
                            src,
                            files.span(),
                            format!("cannot read env file `{}`: {e}", path.display()),
                            "this env_file",
                            Some("create the file or remove it from `env_file`".into()),
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

/// The probe a `ready` value asks for (`None` for `ready = "none"`); the
/// outer error is an interpolation failure, the inner one a bad probe.
#[allow(clippy::type_complexity)]
fn resolve_probe(
    raw: &RawProbe,
    env: &IndexMap<String, EnvValue>,
    interp: &dyn Fn(&str) -> Result<String, ConfigError>,
) -> Result<Result<Option<Probe>, String>, ConfigError> {
    let get = |k: &str| env.get(k).map(|v| v.value.clone());
    let text = |v: &Option<String>| v.as_deref().map(interp).transpose();
    Ok(Ok(Some(match raw {
        RawProbe::None => return Ok(Ok(None)),
        RawProbe::Postgres(p) => {
            let user = p
                .user
                .clone()
                .or_else(|| get("POSTGRES_USER"))
                .unwrap_or_else(|| "postgres".into());
            Probe::Postgres {
                port: p.port.unwrap_or(5432),
                password: p
                    .password
                    .clone()
                    .or_else(|| get("POSTGRES_PASSWORD"))
                    .unwrap_or_default()
                    .into(),
                database: p
                    .database
                    .clone()
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

fn resolve_watch(root: &Path, w: &RawWatch) -> Result<WatchRule, (String, String)> {
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

/// `[ip:]host:container[/proto]`, `container`, and ranges `9000-9001:9000-9001`.
pub fn parse_port(text: &str) -> Result<Vec<Port>, (String, String)> {
    let bad = |why: &str| {
        (
            format!("invalid port mapping `{text}`: {why}"),
            "write `HOST:CONTAINER`, `IP:HOST:CONTAINER` or `CONTAINER`, optionally with `/udp`"
                .to_string(),
        )
    };
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, "tcp")) => (s, Protocol::Tcp),
        Some((s, "udp")) => (s, Protocol::Udp),
        Some((s, "sctp")) => (s, Protocol::Sctp),
        Some(_) => return Err(bad("the protocol must be `tcp`, `udp` or `sctp`")),
        None => (text, Protocol::Tcp),
    };
    // An IPv6 host address is written in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r.split_once("]:").ok_or_else(|| bad("unclosed `[`"))?;
        (Some(ip.to_string()), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => (Some(parts[0].to_string()), &spec[parts[0].len() + 1..]),
            _ => return Err(bad("too many `:`")),
        }
    };
    let range = |s: &str| -> Result<(u16, u16), (String, String)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a
            .parse()
            .map_err(|_| bad("a port is a number from 1 to 65535"))?;
        let b: u16 = b
            .parse()
            .map_err(|_| bad("a port is a number from 1 to 65535"))?;
        if a == 0 || b < a {
            return Err(bad(
                "a port is a number from 1 to 65535 and ranges go upwards",
            ));
        }
        Ok((a, b))
    };
    let (host, container) = match rest.split_once(':') {
        // `127.0.0.1::80`: any free host port on that address.
        Some(("", c)) if host_ip.as_deref().is_some_and(|ip| !ip.is_empty()) => (None, range(c)?),
        Some((h, c)) => (Some(range(h)?), range(c)?),
        None => (None, range(rest)?),
    };
    let count = container.1 - container.0;
    let host = match host {
        // One container port behind a host range: take the range's first port.
        Some(h) if count == 0 => Some((h.0, h.0)),
        Some(h) if h.1 - h.0 != count => {
            return Err(bad("host and container ranges differ in length"))
        }
        h => h,
    };
    Ok((0..=count)
        .map(|i| Port {
            host_ip: host_ip.clone(),
            host: host.map(|h| h.0 + i),
            container: container.0 + i,
            protocol,
            fixed: false,
        })
        .collect())
}

/// `name:/path[:ro]` (named volume) or `./src:/app[:ro]` (bind, relative to `root`).
pub fn parse_mount(text: &str, root: &Path) -> Result<Mount, (String, String)> {
    let bad = |why: &str| {
        (
            format!("invalid volume `{text}`: {why}"),
            "write `NAME:/container/path` or `./host/path:/container/path`, optionally with `:ro`"
                .to_string(),
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    // A container path alone is an anonymous volume, as in Compose.
    match parts.as_slice() {
        [target] | [target, "rw"] if target.starts_with('/') => {
            return Ok(Mount::Anonymous {
                target: target.to_string(),
                read_only: false,
            })
        }
        [target, "ro"] if target.starts_with('/') => {
            return Ok(Mount::Anonymous {
                target: target.to_string(),
                read_only: true,
            })
        }
        _ => {}
    }
    let (source, target, read_only) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        [_, _, m] => return Err(bad(&format!("unknown mode `{m}`"))),
        _ => return Err(bad("expected `SOURCE:TARGET`")),
    };
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let target = target.to_string();
    if source.starts_with('.') || source.starts_with('/') || source.starts_with('~') {
        let path = match source.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| bad("`~` needs HOME to be set"))?
                .join(rest),
            None => root.join(source),
        };
        return Ok(Mount::Bind {
            source: normalize(&path),
            target,
            read_only,
        });
    }
    let valid = source
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(bad("a volume name is letters, digits, `_`, `.` and `-`; a host path starts with `./` or `/`"));
    }
    Ok(Mount::Volume {
        name: source.to_string(),
        target,
        read_only,
    })
}

/// The longest wait a stack file may ask for: longer is a typo, and far
/// longer would overflow the clock arithmetic of every deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Seconds or a humantime duration (`500ms`, `1m 30s`), at most [`MAX_DURATION`].
pub fn parse_duration(raw: &RawDuration) -> Result<Duration, String> {
    let d = match raw {
        RawDuration::Secs(s) => Duration::from_secs(*s),
        RawDuration::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => "the duration is too long".to_string(),
            other => other.to_string(),
        })?,
    };
    if d > MAX_DURATION {
        return Err(format!(
            "the duration is longer than {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// Splits a command line into words the way a shell would, without expansion.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Removes `.` and `..` components without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// An `extra_hosts` entry as the engine takes it (`name:address`); Compose
/// also writes `name=address`. The address may be `host-gateway`.
fn extra_host(entry: &str) -> Option<String> {
    let (name, addr) = entry.split_once('=').or_else(|| entry.split_once(':'))?;
    let (name, addr) = (name.trim(), addr.trim());
    let plain_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    (plain_name && !addr.is_empty()).then(|| format!("{name}:{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hosts_take_both_compose_forms() {
        assert_eq!(
            extra_host("host.docker.internal:host-gateway").as_deref(),
            Some("host.docker.internal:host-gateway")
        );
        assert_eq!(extra_host("db=10.0.0.5").as_deref(), Some("db:10.0.0.5"));
        assert_eq!(extra_host("v6:::1").as_deref(), Some("v6:::1"));
        assert_eq!(extra_host("nohost"), None);
        assert_eq!(extra_host("bad name:1.2.3.4"), None);
    }

    #[test]
    fn ports_parse_in_every_short_form() {
        let p = parse_port("127.0.0.1:5432:5432").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!((p[0].host, p[0].container), (Some(5432), 5432));
        let p = parse_port("80").unwrap();
        assert_eq!((p[0].host, p[0].container), (None, 80));
        let p = parse_port("53:53/udp").unwrap();
        assert_eq!(p[0].protocol, Protocol::Udp);
        let p = parse_port("9000-9001:9000-9001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].host, p[1].container), (Some(9001), 9001));
        let p = parse_port("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("::1"));
    }

    #[test]
    fn bad_ports_say_why() {
        assert!(parse_port("80:http")
            .unwrap_err()
            .0
            .contains("a port is a number"));
        assert!(parse_port("1:2:3:4").unwrap_err().0.contains("too many"));
        assert!(parse_port("9000-9002:9000-9001")
            .unwrap_err()
            .0
            .contains("differ in length"));
        assert_eq!(parse_port("9000-9001:9000").unwrap()[0].host, Some(9000));
        assert!(parse_port("0:80").is_err());
        assert!(parse_port("80/quic").is_err());
    }

    #[test]
    fn sctp_ports_and_ephemeral_host_ports_parse() {
        let sctp = &parse_port("3868:3868/sctp").unwrap()[0];
        assert_eq!((sctp.host, sctp.protocol), (Some(3868), Protocol::Sctp));
        let any = &parse_port("127.0.0.1::80").unwrap()[0];
        assert_eq!(any.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!((any.host, any.container), (None, 80));
        assert!(parse_port("::80").is_err());
    }

    #[test]
    fn a_container_path_alone_is_an_anonymous_volume() {
        let root = Path::new("/proj");
        assert_eq!(
            parse_mount("/app/node_modules", root).unwrap(),
            Mount::Anonymous {
                target: "/app/node_modules".into(),
                read_only: false
            }
        );
        assert_eq!(
            parse_mount("/cache:ro", root).unwrap(),
            Mount::Anonymous {
                target: "/cache".into(),
                read_only: true
            }
        );
        assert!(matches!(
            parse_mount("/srv:/app", root).unwrap(),
            Mount::Bind { .. }
        ));
    }

    #[test]
    fn mounts_tell_volumes_from_binds() {
        let root = Path::new("/proj");
        assert_eq!(
            parse_mount("pgdata:/var/lib/postgresql/data", root).unwrap(),
            Mount::Volume {
                name: "pgdata".into(),
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            }
        );
        assert_eq!(
            parse_mount("./src/../app:/app:ro", root).unwrap(),
            Mount::Bind {
                source: "/proj/app".into(),
                target: "/app".into(),
                read_only: true
            }
        );
        assert!(parse_mount("data:relative", root).is_err());
        assert!(parse_mount("da ta:/x", root).is_err());
    }

    #[test]
    fn durations_accept_units_and_seconds() {
        let ok = |t: &str| parse_duration(&RawDuration::Text(t.into())).unwrap();
        assert_eq!(
            parse_duration(&RawDuration::Secs(5)),
            Ok(Duration::from_secs(5))
        );
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert!(parse_duration(&RawDuration::Text("soon".into())).is_err());
    }

    #[test]
    fn r14_huge_durations_are_errors_not_panics() {
        for t in [
            "99999999999999999999h",
            "25h",
            "18446744073709551615s",
            "1e400s",
        ] {
            assert!(parse_duration(&RawDuration::Text(t.into())).is_err(), "{t}");
        }
        assert!(parse_duration(&RawDuration::Secs(u64::MAX)).is_err());
        assert_eq!(
            parse_duration(&RawDuration::Text("24h".into())),
            Ok(MAX_DURATION)
        );
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"sh -c 'echo "hi there"' a\ b"#).unwrap(),
            vec!["sh", "-c", "echo \"hi there\"", "a b"]
        );
        assert_eq!(split_words("unbalanced 'quote"), None);
    }

    #[test]
    fn secret_names_are_recognised() {
        assert!(looks_secret("DB_PASSWORD"));
        assert!(looks_secret("SMTP_PASS"));
        assert!(looks_secret("APP_KEY"));
        assert!(looks_secret("AWS_SECRET_ACCESS_KEY"));
        assert!(!looks_secret("DB_HOST"));
        assert!(!looks_secret("AWS_ACCESS_KEY_ID"));
    }
}
