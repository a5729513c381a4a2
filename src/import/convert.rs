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
use crate::image_ref::ImageRef;

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
    Postgres {
        port: Option<u16>,
        user: Option<String>,
        database: Option<String>,
    },
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
    ) -> Result<Service, crate::config::interp::InterpError> {
        let (env, pass_env) = environment(s.environment.unwrap_or_default());
        let mut ports: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for port in s.ports.unwrap_or_default() {
            let (spec, literal) = port_spec(port, vars)?;
            // Compose drops a port mapping given twice.
            if !seen.contains(&literal) {
                seen.push(literal);
                ports.push(spec);
            }
        }
        let mut volumes: Vec<Mount> = Vec::new();
        for volume in s.volumes.unwrap_or_default() {
            if let Some(mount) = mount(volume, warn) {
                // One mount per container path, the later one winning.
                match volumes.iter_mut().find(|m| m.target == mount.target) {
                    Some(existing) => *existing = mount,
                    None => volumes.push(mount),
                }
            }
        }
        let (mut ready, ready_timeout) = match s.healthcheck {
            Some(check) => healthcheck(check, s.image.as_deref(), vars)?,
            None => (None, None),
        };
        // `pg_isready -U ${DB_USERNAME}` next to `POSTGRES_USER: ${DB_USERNAME}`
        // says what the probe assumes anyway: keep the file's single source.
        if let Some(Probe::Postgres { user, database, .. }) = &mut ready {
            for (value, key) in [(user, "POSTGRES_USER"), (database, "POSTGRES_DB")] {
                let same = value.as_ref().zip(env.get(key)).is_some_and(|(v, e)| {
                    let e = vars.expand(e, None).unwrap_or_default();
                    *v == e
                });
                if same {
                    *value = None;
                }
            }
        }
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
        Ok(Service {
            image: s.image,
            build: s.build.map(|b| Build::from_compose(b, vars)),
            command: s.command,
            entrypoint: s.entrypoint,
            env,
            pass_env,
            env_file,
            ports,
            volumes,
            depends_on: s
                .depends_on
                .map(|d| depends_on(d, warn))
                .unwrap_or_default(),
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
) -> Result<(String, String), crate::config::interp::InterpError> {
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

/// The probe a healthcheck becomes, and how long Compose would give it.
#[allow(clippy::type_complexity)]
fn healthcheck(
    check: compose::Healthcheck,
    image: Option<&str>,
    vars: &mut Vars,
) -> Result<(Option<Probe>, Option<String>), crate::config::interp::InterpError> {
    if check.disable == Some(true) {
        return Ok((None, None));
    }
    let (args, shell) = match check.test {
        None => return Ok((None, None)),
        Some(Words::Line(line)) => (Vec::new(), Some(line)),
        Some(Words::List(list)) => match list.split_first() {
            Some((first, _)) if first == "NONE" => return Ok((None, None)),
            Some((first, rest)) if first == "CMD-SHELL" => (Vec::new(), Some(rest.join(" "))),
            Some((first, rest)) if first == "CMD" => (rest.to_vec(), None),
            _ => (list, None),
        },
    };
    // As the container would run it: interpolated, `$$` now a plain `$`.
    let expanded_args = args
        .iter()
        .map(|arg| vars.expand(arg, None))
        .collect::<Result<Vec<_>, _>>()?;
    let expanded_shell = shell.as_deref().map(|s| vars.expand(s, None)).transpose()?;
    let words: Vec<String> = match &expanded_shell {
        Some(line) => line.split_whitespace().map(str::to_owned).collect(),
        None => expanded_args.clone(),
    };
    let raw_words: Vec<String> = match &shell {
        Some(line) => line.split_whitespace().map(str::to_owned).collect(),
        None => args.clone(),
    };
    let probe = native_probe(&words, &raw_words, image).unwrap_or_else(|| match expanded_shell {
        Some(line) => Probe::Exec(vec!["sh".to_owned(), "-c".to_owned(), line]),
        None => Probe::Exec(expanded_args),
    });
    let timing = [
        &check.interval,
        &check.timeout,
        &check.retries,
        &check.start_period,
    ];
    let timeout = timing.iter().any(|t| t.is_some()).then(|| {
        let secs = |t: &Option<String>, default: f64| {
            t.as_deref().and_then(go_duration).unwrap_or(default)
        };
        let retries = check
            .retries
            .as_deref()
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or(3.0);
        // The checks Compose runs before it gives up, the last one to its timeout.
        let total = secs(&check.start_period, 0.0)
            + retries * secs(&check.interval, 30.0)
            + secs(&check.timeout, 30.0);
        format!("{}s", total.ceil() as u64)
    });
    Ok((Some(probe), timeout))
}

/// A probe `devenv` runs itself, where it checks what the command checks.
fn native_probe(words: &[String], raw: &[String], image: Option<&str>) -> Option<Probe> {
    let program = words.first()?.rsplit('/').next()?;
    // Only a single, plain command: `a && b` or `|| exit 1` say more.
    let plain = !words.iter().any(|w| matches!(w.as_str(), "&&" | ";" | "|"));
    let option = |names: &[&str]| -> Option<String> {
        let at = words.iter().position(|w| names.contains(&w.as_str()))?;
        words.get(at + 1).cloned()
    };
    let raw_option = |names: &[&str]| -> Option<String> {
        let at = raw.iter().position(|w| names.contains(&w.as_str()))?;
        raw.get(at + 1).cloned()
    };
    let local = |host: Option<String>| {
        host.is_none_or(|h| matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1"))
    };
    match program {
        "pg_isready"
            if plain && local(option(&["-h", "--host"])) && is_image(image, "postgres") =>
        {
            Some(Probe::Postgres {
                port: option(&["-p", "--port"]).and_then(|p| p.parse().ok()),
                user: option(&["-U", "--username"]),
                database: option(&["-d", "--dbname"]),
            })
        }
        "redis-cli"
            if plain
                && local(option(&["-h"]))
                && words.last().is_some_and(|w| w.eq_ignore_ascii_case("ping"))
                && !words.iter().any(|w| w.starts_with("-u") || w == "--tls") =>
        {
            Some(Probe::Redis {
                port: option(&["-p"]).and_then(|p| p.parse().ok()),
                username: raw_option(&["--user"]),
                // As written: `dev.toml` interpolates the probe's password.
                password: raw_option(&["-a", "--pass"]),
            })
        }
        "curl" | "wget" if plain || words.iter().any(|w| w == "||") => {
            http_check(&words.join(" ")).map(|(port, path)| Probe::Http { port, path })
        }
        _ => None,
    }
}

/// The image is `name` (any registry, any namespace, any tag or digest).
fn is_image(image: Option<&str>, name: &str) -> bool {
    image
        .and_then(|image| ImageRef::parse(image).ok())
        .is_some_and(|image| image.base() == name)
}

/// Go's duration syntax as Compose writes it: `1m30s`, `500ms`, `10s`.
fn go_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        total += number
            * match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
        rest = tail;
    }
    Some(total)
}

/// A `curl` or `wget` of a local plain-HTTP URL: `devenv` can make that
/// request itself.
fn http_check(text: &str) -> Option<(u16, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let url = words.iter().find_map(|w| {
        w.trim_matches(|c| c == '"' || c == '\'')
            .strip_prefix("http://")
    })?;
    let (authority, path) = match url.find('/') {
        Some(slash) => (&url[..slash], &url[slash..]),
        None => (url, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
        _ => (authority, 80),
    };
    matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]").then(|| (port, path.to_owned()))
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
    fn http_checks_become_http_probes() {
        assert_eq!(
            http_check("curl -fsS http://localhost:8080/health || exit 1"),
            Some((8080, "/health".to_owned()))
        );
        assert_eq!(
            http_check("wget -qO- http://127.0.0.1/"),
            Some((80, "/".to_owned()))
        );
        assert_eq!(http_check("curl -f http://example.com/health"), None);
        assert_eq!(http_check("curl -f https://localhost/health"), None);
    }

    #[test]
    fn native_probes_only_where_they_check_the_same_thing() {
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let probe = |s: &str, image: &str| native_probe(&words(s), &words(s), Some(image));
        assert!(matches!(
            probe("pg_isready -U app -d shop", "postgres:16"),
            Some(Probe::Postgres { .. })
        ));
        assert_eq!(probe("pg_isready -h db", "postgres:16"), None);
        assert_eq!(probe("pg_isready", "php:8.3"), None);
        assert_eq!(probe("pg_isready", "postgrest/postgrest"), None);
        assert_eq!(
            probe("redis-cli -a ${REDIS_PASSWORD} ping", "redis"),
            Some(Probe::Redis {
                port: None,
                username: None,
                password: Some("${REDIS_PASSWORD}".into())
            })
        );
        assert_eq!(probe("redis-cli -h cache ping", "redis"), None);
    }

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(go_duration("1m30s"), Some(90.0));
        assert_eq!(go_duration("500ms"), Some(0.5));
        assert_eq!(go_duration("soon"), None);
    }

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
