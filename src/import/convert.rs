//! Compose service definitions → the `dev.toml` shape.
//!
//! Each file is converted on its own and the results are merged in order,
//! following the Compose specification's merge rules: scalars and
//! `command`/`entrypoint` are replaced, `environment`, `build.args` and
//! `depends_on` merge by key, `ports`, `env_file` and `profiles` are appended
//! without duplicates, and `volumes` merge by their container path.

use indexmap::IndexMap;

use super::compose::{self, DependsOn, KeyValues, ShortOr, Words};
use super::Warning;

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
    pub env_file: Vec<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<Mount>,
    pub depends_on: IndexMap<String, &'static str>,
    pub ready: Ready,
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

/// A mount in `dev.toml`'s short form, with the container path it merges by.
#[derive(Debug)]
pub(crate) struct Mount {
    pub spec: String,
    pub target: String,
}

/// What a file says about readiness: a later file may leave it alone,
/// disable the healthcheck, or replace it.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Ready {
    #[default]
    Unset,
    Disabled,
    Probe(Probe),
}

#[derive(Debug, PartialEq)]
pub(crate) enum Probe {
    Postgres,
    Redis,
    Http { port: u16, path: String },
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
}

impl Stack {
    pub(crate) fn from_compose(file: compose::ComposeFile, warnings: &mut Vec<Warning>) -> Stack {
        let services = file.services.unwrap_or_default().into_iter();
        let volumes = file.volumes.unwrap_or_default().into_iter();
        Stack {
            name: file.name,
            services: services
                .map(|(name, service)| {
                    let service =
                        Service::from_compose(&name, service.unwrap_or_default(), warnings);
                    (name, service)
                })
                .collect(),
            volumes: volumes
                .map(|(name, volume)| (name, Volume::from_compose(volume.unwrap_or_default())))
                .collect(),
        }
    }

    pub(crate) fn merge(&mut self, later: Stack) {
        if later.name.is_some() {
            self.name = later.name;
        }
        for (name, service) in later.services {
            match self.services.get_mut(&name) {
                Some(existing) => existing.merge(service),
                None => {
                    self.services.insert(name, service);
                }
            }
        }
        for (name, volume) in later.volumes {
            match self.volumes.get_mut(&name) {
                Some(existing) => existing.merge(volume),
                None => {
                    self.volumes.insert(name, volume);
                }
            }
        }
    }
}

impl Service {
    fn from_compose(name: &str, s: compose::Service, warnings: &mut Vec<Warning>) -> Service {
        let mut warn = |key: &str, detail: String| {
            warnings.push(Warning::new(Some(name), key).with_detail(detail));
        };
        Service {
            image: s.image,
            build: s.build.map(Build::from_compose),
            command: s.command,
            entrypoint: s.entrypoint,
            env: s.environment.map(from_host).unwrap_or_default(),
            env_file: s
                .env_file
                .map(|files| {
                    let paths = files.0.into_iter();
                    paths
                        .map(|file| match file {
                            ShortOr::Short(path) => path,
                            ShortOr::Long(file) => file.path,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ports: s.ports.unwrap_or_default().into_iter().map(port).collect(),
            volumes: s
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|volume| mount(volume, &mut warn))
                .collect(),
            depends_on: s
                .depends_on
                .map(|d| depends_on(d, &mut warn))
                .unwrap_or_default(),
            ready: s.healthcheck.map(ready).unwrap_or_default(),
            restart: s.restart.and_then(|policy| restart(policy, &mut warn)),
            user: s.user,
            working_dir: s.working_dir,
            profiles: s.profiles.unwrap_or_default(),
            watch: s
                .develop
                .and_then(|develop| develop.watch)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|rule| watch(rule, &mut warn))
                .collect(),
        }
    }

    fn merge(&mut self, later: Service) {
        replace(&mut self.image, later.image);
        replace(&mut self.command, later.command);
        replace(&mut self.entrypoint, later.entrypoint);
        replace(&mut self.restart, later.restart);
        replace(&mut self.user, later.user);
        replace(&mut self.working_dir, later.working_dir);
        match (&mut self.build, later.build) {
            (Some(base), Some(over)) => base.merge(over),
            (base, over @ Some(_)) => *base = over,
            (_, None) => {}
        }
        self.env.extend(later.env);
        self.depends_on.extend(later.depends_on);
        append_new(&mut self.env_file, later.env_file);
        append_new(&mut self.ports, later.ports);
        append_new(&mut self.profiles, later.profiles);
        for mount in later.volumes {
            match self.volumes.iter_mut().find(|m| m.target == mount.target) {
                Some(existing) => *existing = mount,
                None => self.volumes.push(mount),
            }
        }
        if later.ready != Ready::Unset {
            self.ready = later.ready;
        }
        self.watch.extend(later.watch);
    }
}

impl Build {
    fn from_compose(build: ShortOr<compose::Build>) -> Build {
        match build {
            ShortOr::Short(context) => Build {
                context: Some(context),
                ..Build::default()
            },
            ShortOr::Long(b) => Build {
                context: b.context,
                dockerfile: b.dockerfile,
                target: b.target,
                args: b.args.map(from_host).unwrap_or_default(),
            },
        }
    }

    fn merge(&mut self, later: Build) {
        replace(&mut self.context, later.context);
        replace(&mut self.dockerfile, later.dockerfile);
        replace(&mut self.target, later.target);
        self.args.extend(later.args);
    }
}

impl Volume {
    fn from_compose(volume: compose::TopVolume) -> Volume {
        Volume {
            // `local` is what Docker uses anyway; saying so adds nothing.
            driver: volume.driver.filter(|driver| driver != "local"),
            driver_opts: volume.driver_opts.unwrap_or_default(),
            external: match volume.external {
                Some(ShortOr::Short(flag)) => flag == "true",
                Some(ShortOr::Long(_)) => true,
                None => false,
            },
        }
    }

    fn merge(&mut self, later: Volume) {
        replace(&mut self.driver, later.driver);
        self.driver_opts.extend(later.driver_opts);
        self.external |= later.external;
    }
}

fn replace<T>(base: &mut Option<T>, later: Option<T>) {
    if later.is_some() {
        *base = later;
    }
}

fn append_new(base: &mut Vec<String>, later: Vec<String>) {
    for item in later {
        if !base.contains(&item) {
            base.push(item);
        }
    }
}

/// A variable without a value is taken from the host by Compose; a `${VAR}`
/// reference asks `devenv` for the same thing.
fn from_host(pairs: KeyValues) -> IndexMap<String, String> {
    let pairs = pairs.0.into_iter();
    pairs
        .map(|(key, value)| {
            let value = value.unwrap_or_else(|| format!("${{{key}}}"));
            (key, value)
        })
        .collect()
}

fn port(port: ShortOr<compose::Port>) -> String {
    let p = match port {
        ShortOr::Short(spec) => return spec,
        ShortOr::Long(p) => p,
    };
    let mut spec = String::new();
    if let Some(ip) = &p.host_ip {
        if ip.contains(':') && !ip.starts_with('[') {
            spec.push_str(&format!("[{ip}]:"));
        } else {
            spec.push_str(&format!("{ip}:"));
        }
    }
    match &p.published {
        Some(published) => spec.push_str(&format!("{published}:")),
        // `127.0.0.1::80` is how the short syntax says "any host port".
        None if p.host_ip.is_some() => spec.push(':'),
        None => {}
    }
    spec.push_str(&p.target);
    if let Some(protocol) = p.protocol.filter(|protocol| protocol != "tcp") {
        spec.push_str(&format!("/{protocol}"));
    }
    spec
}

fn mount(volume: ShortOr<compose::Mount>, warn: &mut impl FnMut(&str, String)) -> Option<Mount> {
    let m = match volume {
        ShortOr::Short(spec) => return Some(short_mount(&spec, warn)),
        ShortOr::Long(m) => m,
    };
    match m.kind.as_str() {
        "volume" | "bind" => {
            let mut spec = match &m.source {
                Some(source) => format!("{source}:{}", m.target),
                None => m.target.clone(),
            };
            if m.read_only == Some(true) {
                spec.push_str(":ro");
            }
            Some(Mount {
                spec,
                target: m.target,
            })
        }
        kind => {
            warn("volumes", format!("{kind} mount at `{}`", m.target));
            None
        }
    }
}

/// Keeps `ro`; `rw` is the default. SELinux relabelling (`z`, `Z`) and the
/// macOS consistency hints have no `dev.toml` spelling.
fn short_mount(spec: &str, warn: &mut impl FnMut(&str, String)) -> Mount {
    let parts: Vec<&str> = spec.splitn(3, ':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => unreachable!("splitn yields one to three parts"),
    };
    let mut read_only = false;
    for flag in mode.into_iter().flat_map(|mode| mode.split(',')) {
        match flag {
            "ro" => read_only = true,
            "rw" => {}
            other => warn("volumes", format!("mode `{other}` of `{spec}`")),
        }
    }
    let mut out = match source {
        Some(source) => format!("{source}:{target}"),
        None => target.to_owned(),
    };
    if read_only {
        out.push_str(":ro");
    }
    Mount {
        spec: out,
        target: target.to_owned(),
    }
}

fn depends_on(
    depends_on: DependsOn,
    warn: &mut impl FnMut(&str, String),
) -> IndexMap<String, &'static str> {
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

fn restart(policy: String, warn: &mut impl FnMut(&str, String)) -> Option<String> {
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

fn ready(check: compose::Healthcheck) -> Ready {
    if check.disable == Some(true) {
        return Ready::Disabled;
    }
    let (args, shell) = match check.test {
        None => return Ready::Unset,
        Some(Words::Line(line)) => (Vec::new(), Some(line)),
        Some(Words::List(list)) => match list.split_first() {
            Some((first, _)) if first == "NONE" => return Ready::Disabled,
            Some((first, rest)) if first == "CMD-SHELL" => (Vec::new(), Some(rest.join(" "))),
            Some((first, rest)) if first == "CMD" => (rest.to_vec(), None),
            _ => (list, None),
        },
    };
    let text = shell.clone().unwrap_or_else(|| args.join(" "));
    Ready::Probe(if text.contains("pg_isready") {
        Probe::Postgres
    } else if text.contains("redis-cli") && text.to_lowercase().contains("ping") {
        Probe::Redis
    } else if let Some((port, path)) = http_check(&text) {
        Probe::Http { port, path }
    } else {
        match shell {
            Some(line) => Probe::Exec(vec!["sh".to_owned(), "-c".to_owned(), line]),
            None => Probe::Exec(args),
        }
    })
}

/// A `curl` or `wget` of a local plain-HTTP URL: `devenv` can make that
/// request itself.
fn http_check(text: &str) -> Option<(u16, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words
        .iter()
        .any(|w| matches!(*w, "curl" | "wget") || w.ends_with("/curl") || w.ends_with("/wget"))
    {
        return None;
    }
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

fn watch(rule: compose::WatchRule, warn: &mut impl FnMut(&str, String)) -> Option<Watch> {
    let action = match rule.action.as_str() {
        "sync" => "sync",
        "rebuild" => "rebuild",
        "restart" | "sync+restart" => "restart",
        "sync+exec" => "exec",
        other => {
            warn(
                "develop.watch",
                format!("action `{other}` for `{}`", rule.path),
            );
            return None;
        }
    };
    let run = rule.exec.map(|exec| match exec.command {
        Words::Line(line) => line,
        Words::List(args) => args
            .iter()
            .map(|arg| shell_quote(arg))
            .collect::<Vec<_>>()
            .join(" "),
    });
    Some(Watch {
        path: rule.path,
        action,
        target: rule.target,
        ignore: rule.ignore.unwrap_or_default(),
        run,
    })
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
        assert_eq!(
            http_check("curl -f 'http://localhost:3000'"),
            Some((3000, "/".to_owned()))
        );
        assert_eq!(http_check("curl -f http://example.com/health"), None);
        assert_eq!(http_check("curl -f https://localhost/health"), None);
        assert_eq!(http_check("nc -z localhost 80"), None);
    }

    #[test]
    fn exec_lists_join_into_one_command_line() {
        assert_eq!(shell_quote("artisan"), "artisan");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
