//! Turns the raw file (plus its presets) into the resolved model: merges
//! presets key by key, interpolates, parses ports, mounts, probes and
//! durations, and checks every reference — each error points at its span.
//!
//! This file assembles one service; its parts live beside it: `env` (env
//! layers, build args, secret names), `probe` (readiness probes, watch
//! rules), `commands` (command words and hooks, noted for export) and
//! `syntax` (the short string forms: ports, mounts, durations).

mod commands;
mod env;
mod probe;
mod syntax;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;

use super::error::{ConfigError, Src};
use super::interp::{interpolate_named, InterpError};
use super::model::*;
use super::presets::Preset;
use super::raw::*;
use crate::image_ref::ImageRef;

use commands::{resolve_hooks, resolve_words};
pub use env::looks_secret;
use env::{resolve_build, resolve_env, resolve_raw_build, secret_names};
use probe::{resolve_probe, resolve_watch};
use syntax::extra_host;
pub use syntax::{normalize, parse_duration, parse_mount, parse_port, split_words, MAX_DURATION};

/// Where values come from while resolving one file.
pub struct Ctx<'a> {
    pub src: &'a Src,
    pub root: &'a Path,
    pub project: &'a str,
    /// `.env` beside the stack file; the process environment wins over it.
    pub dotenv: &'a HashMap<String, String>,
    /// Where secret variables' values went in every interpolated text: the
    /// start of the stack's [`Masker`](super::secret::Masker).
    pub secrets: RefCell<super::secret::Masker>,
}

impl Ctx<'_> {
    pub(super) fn lookup(&self, name: &str) -> Option<String> {
        // devenv's own: the project's name and its router URL (issue 28).
        match name {
            "DEVENV_PROJECT" => return Some(self.project.to_string()),
            "DEVENV_URL" => return Some(super::host::project_url(self.project)),
            _ => {}
        }
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Interpolates a value found at `span` in `src`.
    pub fn interp(&self, src: &Src, span: Range<usize>, text: &str) -> Result<String, ConfigError> {
        self.interp_spans(src, span, text).map(|(out, _)| out)
    }

    /// As [`Ctx::interp`], with where every variable's value went; the
    /// spans a secret-named variable filled are noted for the masker.
    fn interp_spans(
        &self,
        src: &Src,
        span: Range<usize>,
        text: &str,
    ) -> Result<(String, Vec<Range<usize>>), ConfigError> {
        let (out, named) =
            interpolate_named(text, &|n| self.lookup(n)).map_err(|e| in_value(src, span, e))?;
        let secret: Vec<Range<usize>> = named
            .iter()
            .filter(|(_, name)| super::secret::is_secret_name(name))
            .map(|(range, _)| range.clone())
            .collect();
        self.secrets.borrow_mut().add_spans(&out, &secret);
        Ok((out, named.into_iter().map(|(range, _)| range).collect()))
    }

    /// As [`Ctx::interp`], noting in `record` where the variables' values went.
    fn interp_noted(
        &self,
        src: &Src,
        span: Range<usize>,
        text: &str,
        record: &RefCell<Vec<Interpolated>>,
    ) -> Result<String, ConfigError> {
        let (out, spans) = self.interp_spans(src, span, text)?;
        record.borrow_mut().push(Interpolated {
            text: out.clone(),
            spans,
        });
        Ok(out)
    }
}

/// An interpolation error, located at the value it is in.
fn in_value(src: &Src, span: Range<usize>, e: InterpError) -> ConfigError {
    ConfigError::invalid(src, span, e.message, "in this value", Some(e.help))
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

/// One service from its own table over its preset's, every field
/// interpolated, parsed and checked, in the order its errors are reported.
pub fn resolve_service(
    ctx: &Ctx,
    name: &str,
    raw: &RawService,
    shared_env: &IndexMap<String, EnvValue>,
    preset: Option<&Preset>,
) -> Result<Service, ConfigError> {
    let src = ctx.src;
    let p = preset;

    let (mut build, mut fallback) = resolve_builds(ctx, raw, p)?;
    let image = resolve_image(
        ctx,
        name,
        pick(&raw.image, src, p, |r| &r.image),
        build.is_some(),
    )?;

    // Where variables went in the texts export turns into manifests.
    let noted = RefCell::new(Vec::new());
    let command = resolve_words(ctx, pick(&raw.command, src, p, |r| &r.command), &noted)?;
    let entrypoint = resolve_words(
        ctx,
        pick(&raw.entrypoint, src, p, |r| &r.entrypoint),
        &noted,
    )?;

    let env = resolve_env(ctx, raw, shared_env, p)?;
    let ports = resolve_ports(ctx, pick(&raw.ports, src, p, |r| &r.ports))?;
    let volumes = resolve_list(ctx, pick(&raw.volumes, src, p, |r| &r.volumes), |s| {
        parse_mount(s, ctx.root)
    })?;
    let depends_on = resolve_depends(name, pick(&raw.depends_on, src, p, |r| &r.depends_on))?;
    let mut ready = resolve_ready(ctx, pick(&raw.ready, src, p, |r| &r.ready), &env)?;
    // A Redis probe without a password of its own logs in with the server's
    // `--requirepass`: without it such a server never counts as ready. Not
    // `REDIS_PASSWORD`: the official image ignores it, and an AUTH to a
    // server without a password fails.
    if let Some(Probe::Redis {
        password: password @ None,
        ..
    }) = &mut ready
    {
        let words = command.as_deref().unwrap_or_default();
        *password = super::secret::redis_password(words, |_| None).map(super::Secret::from);
    }
    let ready_timeout =
        resolve_ready_timeout(pick(&raw.ready_timeout, src, p, |r| &r.ready_timeout))?;
    let (restart, runs_once) = resolve_restart(pick(&raw.restart, src, p, |r| &r.restart))?;
    let user = resolve_text(ctx, pick(&raw.user, src, p, |r| &r.user))?;
    let working_dir = resolve_text(ctx, pick(&raw.working_dir, src, p, |r| &r.working_dir))?;
    let extra_hosts = resolve_extra_hosts(ctx, pick(&raw.extra_hosts, src, p, |r| &r.extra_hosts))?;
    let hostname = resolve_hostname(ctx, pick(&raw.hostname, src, p, |r| &r.hostname))?;
    let web_port = pick(&raw.web_port, src, p, |r| &r.web_port).map(|f| *f.value.get_ref());
    let profiles = pick(&raw.profiles, src, p, |r| &r.profiles)
        .map(|f| f.value.iter().map(|s| s.get_ref().clone()).collect())
        .unwrap_or_default();
    let hooks = match pick(&raw.hooks, src, p, |r| &r.hooks) {
        Some(h) => resolve_hooks(ctx, h, &noted)?,
        None => Hooks::default(),
    };
    let watch = resolve_watch_rules(ctx, raw.watch.as_deref())?;
    let mount = resolve_mount(pick(&raw.mount, src, p, |r| &r.mount))?;
    let k8s = resolve_k8s(src, name, raw, p)?;

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
        runs_once,
        user,
        working_dir,
        extra_hosts,
        hostname,
        web_port,
        profiles,
        hooks,
        watch,
        mount,
        k8s,
        interpolated: noted.into_inner(),
    })
}

/// `build` and `fallback`; a preset's fallback context is relative to
/// where the preset lives.
fn resolve_builds(
    ctx: &Ctx,
    raw: &RawService,
    p: Option<&Preset>,
) -> Result<(Option<Build>, Option<Build>), ConfigError> {
    let src = ctx.src;
    let build = match pick(&raw.build, src, p, |r| &r.build) {
        Some(b) => Some(resolve_build(
            ctx,
            b.src,
            b.value.span(),
            b.value.get_ref(),
            ctx.root,
        )?),
        None => None,
    };
    let fallback = match pick(&raw.fallback, src, p, |r| &r.fallback) {
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
    Ok((build, fallback))
}

/// The image named, or the tag a built service's image gets; one or the
/// other is required.
fn resolve_image(
    ctx: &Ctx,
    name: &str,
    image: Option<Pick<S<String>>>,
    built: bool,
) -> Result<ImageRef, ConfigError> {
    let src = ctx.src;
    match image {
        Some(i) => {
            let text = ctx.interp(i.src, i.value.span(), i.value.get_ref())?;
            ImageRef::parse(&text).map_err(|e| {
                ConfigError::invalid(
                    i.src,
                    i.value.span(),
                    e.to_string(),
                    "this image",
                    Some("write `[registry[:port]/]name[:tag][@digest]` in lowercase, e.g. `postgres:16` or `registry.local:5000/shop/app:1.2`".into()),
                )
            })
        }
        // Image names are lowercase; service names may not be.
        None if built => {
            let tag = format!("{}-{}:latest", ctx.project, name.to_lowercase());
            ImageRef::parse(&tag).map_err(|e| {
                ConfigError::invalid(
                    src,
                    0..0,
                    format!("service `{name}` cannot be tagged `{tag}`: {}", e.reason),
                    "",
                    Some("give the built image a name with `image = \"…\"`".into()),
                )
            })
        }
        None => Err(ConfigError::invalid(
            src,
            0..0,
            format!("service `{name}` has neither `image` nor `build`"),
            "",
            Some("add `image = \"…\"`, `build = \".\"`, or `use = \"<preset>\"`".into()),
        )),
    }
}

/// `depends_on`: each dependency with the condition it waits for
/// (`started` where a list names it).
fn resolve_depends(
    name: &str,
    field: Option<Pick<S<RawDepends>>>,
) -> Result<IndexMap<String, Condition>, ConfigError> {
    let mut depends_on = IndexMap::new();
    let Some(Pick { value: d, src }) = field else {
        return Ok(depends_on);
    };
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
                    format!(
                    "service `{name}` waits for `{dep}` to be `{other}`, which is not a condition"
                ),
                    "unknown condition",
                    Some("use `started`, `ready` or `completed`".into()),
                ))
            }
        };
        depends_on.insert(dep, cond);
    }
    Ok(depends_on)
}

/// `ready`: the probe, its values interpolated (and read from the env).
fn resolve_ready(
    ctx: &Ctx,
    field: Option<Pick<S<RawProbe>>>,
    env: &IndexMap<String, EnvValue>,
) -> Result<Option<Probe>, ConfigError> {
    let Some(r) = field else { return Ok(None) };
    let interp = |text: &str| ctx.interp(r.src, r.value.span(), text);
    resolve_probe(r.value.get_ref(), env, &interp)?
        .map_err(|msg| ConfigError::invalid(r.src, r.value.span(), msg, "this probe", None))
}

/// `watch`: each rule of the service's own table (not its preset's),
/// its paths resolved from the stack file's folder.
fn resolve_watch_rules(
    ctx: &Ctx,
    rules: Option<&[S<RawWatch>]>,
) -> Result<Vec<WatchRule>, ConfigError> {
    rules
        .unwrap_or_default()
        .iter()
        .map(|r| {
            resolve_watch(ctx.root, r.get_ref()).map_err(|(msg, help)| {
                ConfigError::invalid(ctx.src, r.span(), msg, "this rule", Some(help))
            })
        })
        .collect()
}

/// `ready_timeout`, 60 seconds unless set.
fn resolve_ready_timeout(field: Option<Pick<S<RawDuration>>>) -> Result<Duration, ConfigError> {
    let Some(t) = field else {
        return Ok(Duration::from_secs(60));
    };
    parse_duration(t.value.get_ref()).map_err(|why| {
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
    })
}

/// `restart`, and whether the service runs once (`restart = "no"` said
/// outright, not left out).
fn resolve_restart(field: Option<Pick<S<String>>>) -> Result<(Restart, bool), ConfigError> {
    let runs_once = field.as_ref().is_some_and(|r| r.value.get_ref() == "no");
    let restart = match field {
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
    Ok((restart, runs_once))
}

/// A plain text field, interpolated.
fn resolve_text(ctx: &Ctx, field: Option<Pick<S<String>>>) -> Result<Option<String>, ConfigError> {
    field
        .map(|f| ctx.interp(f.src, f.value.span(), f.value.get_ref()))
        .transpose()
}

/// `hostname`: the router name (issue 28), interpolated and checked as DNS labels.
fn resolve_hostname(
    ctx: &Ctx,
    field: Option<Pick<S<String>>>,
) -> Result<Option<String>, ConfigError> {
    let Some(f) = field else {
        return Ok(None);
    };
    let text = ctx.interp(f.src, f.value.span(), f.value.get_ref())?;
    super::host::host_name(&text).map(Some).ok_or_else(|| {
        ConfigError::invalid(
            f.src,
            f.value.span(),
            format!("`{text}` is not a host name"),
            "here",
            Some("write DNS labels of letters, digits and `-` joined by dots, e.g. `shop` or `mail.shop` (devenv adds `.localhost`)".into()),
        )
    })
}

/// `extra_hosts`: each `NAME:ADDRESS` entry, interpolated.
fn resolve_extra_hosts(
    ctx: &Ctx,
    field: Option<Pick<Vec<S<String>>>>,
) -> Result<Vec<String>, ConfigError> {
    let Some(f) = field else {
        return Ok(Vec::new());
    };
    f.value
        .iter()
        .map(|h| {
            let text = ctx.interp(f.src, h.span(), h.get_ref())?;
            extra_host(&text).ok_or_else(|| {
                ConfigError::invalid(
                    f.src,
                    h.span(),
                    format!("`{text}` is not a host entry"),
                    "here",
                    Some("write `NAME:ADDRESS`, e.g. `host.docker.internal:host-gateway`".into()),
                )
            })
        })
        .collect()
}

/// `mount`: `bind` or `sync`, or left to the engine.
fn resolve_mount(field: Option<Pick<S<String>>>) -> Result<Option<MountMode>, ConfigError> {
    let Some(m) = field else { return Ok(None) };
    Ok(Some(match m.value.get_ref().as_str() {
        "bind" => MountMode::Bind,
        "sync" => MountMode::Sync,
        other => return Err(ConfigError::invalid(
            m.src,
            m.value.span(),
            format!("unknown mount mode `{other}`"),
            "here",
            Some(
                "use `bind` (share the folder) or `sync` (copy it); leave it out to pick by engine"
                    .into(),
            ),
        )),
    }))
}

/// `[k8s]`: the service's table over its preset's, each checked against
/// its own file before the two are merged.
fn resolve_k8s(
    src: &Src,
    name: &str,
    raw: &RawService,
    p: Option<&Preset>,
) -> Result<Option<super::k8s::ServiceSettings>, ConfigError> {
    if let Some(k) = p.and_then(|p| p.service.k8s.as_ref().map(|k| (k, &p.src))) {
        super::k8s::check_service(k.1, k.0, name)?;
    }
    if let Some(k) = &raw.k8s {
        super::k8s::check_service(src, k, name)?;
    }
    Ok(
        match (p.and_then(|p| p.service.k8s.clone()), raw.k8s.clone()) {
            (None, None) => None,
            (base, over) => Some(over.unwrap_or_default().over(base.unwrap_or_default())),
        },
    )
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
        // One host port twice in a service cannot both be published (the
        // engine refuses the container at start): say so here, at the line.
        for p in &ports {
            let Some(host) = p.host else { continue };
            let twice = out
                .iter()
                .chain(ports.iter().take_while(|q| !std::ptr::eq(*q, p)));
            if let Some(q) = twice.into_iter().find(|q| {
                q.host == Some(host)
                    && q.protocol == p.protocol
                    && host_addresses_overlap(q.host_ip.as_deref(), p.host_ip.as_deref())
            }) {
                return Err(invalid(
                    format!(
                        "host port {host} is published twice in this service (for its ports {} and {})",
                        q.container, p.container
                    ),
                    "give each mapping its own host port, or leave the host port out (`\"6380\"`) for the engine to choose one".into(),
                ));
            }
        }
        out.extend(ports);
    }
    Ok(out)
}
