//! Reading `dev.toml`: parse, apply presets and `.env`, interpolate, resolve
//! profiles and validate, producing one [`model::Stack`]. Nothing here talks
//! to Docker; every error points at the line it is about.

mod checks;
pub mod commands;
pub mod dotenv;
pub mod error;
pub mod host;
pub mod interp;
pub mod k8s;
pub mod model;
mod presets;
mod raw;
mod resolve;
pub mod secret;
mod testrun;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

pub use error::ConfigError;
use error::Src;
use model::{EnvValue, Mount, Stack, Volume};
use raw::RawFile;
pub use resolve::looks_secret;
// `devenv import` checks what it writes with the same readers.
pub use resolve::{parse_mount, parse_port, split_words};
pub use secret::{Masker, Secret};

/// The stack file names looked for, in order, from the current folder upwards.
pub const FILE_NAMES: [&str; 1] = ["dev.toml"];

/// What to load: the settings the CLI turned its flags into.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f FILE`; otherwise `dev.toml` is searched from `cwd` upwards.
    pub file: Option<PathBuf>,
    /// `-p NAME`, overriding `[project].name`.
    pub project: Option<String>,
    /// Active profiles (`--profile`).
    pub profiles: Vec<String>,
    pub cwd: PathBuf,
}

/// Finds the stack file without reading it.
pub fn locate(opts: &LoadOptions) -> Result<PathBuf, ConfigError> {
    if let Some(file) = &opts.file {
        return Ok(opts.cwd.join(file));
    }
    for dir in opts.cwd.ancestors() {
        for name in FILE_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(ConfigError::NotFound {
        dir: opts.cwd.clone(),
    })
}

/// For unit tests: the stack of `toml` written as a `dev.toml` in a
/// folder of its own (project `t`).
#[cfg(test)]
pub(crate) fn load_toml(toml: &str) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.toml"), toml).unwrap();
    load(&LoadOptions {
        file: Some(dir.path().join("dev.toml")),
        project: Some("t".into()),
        profiles: Vec::new(),
        cwd: dir.path().into(),
    })
    .unwrap()
}

/// Reads, resolves and validates the stack.
pub fn load(opts: &LoadOptions) -> Result<Stack, ConfigError> {
    let file = locate(opts)?;
    let bytes = std::fs::read(&file).map_err(|source| ConfigError::Read {
        path: file.clone(),
        source,
    })?;
    let root = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let display = file
        .strip_prefix(&opts.cwd)
        .unwrap_or(&file)
        .display()
        .to_string();
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        ConfigError::Syntax {
            message: "the stack file is not valid UTF-8".into(),
            src: Src {
                name: display.clone(),
                text: Arc::from(text),
            }
            .named(),
            // The lossy text has U+FFFD (3 bytes) where the bad bytes were.
            span: Some((at, 3).into()),
            help: Some("save the file as UTF-8".into()),
        }
    })?;
    parse(&text, &display, &file, &root, opts)
}

/// Resolves stack text as if read from `file`; `display` names it in errors.
pub fn parse(
    text: &str,
    display: &str,
    file: &Path,
    root: &Path,
    opts: &LoadOptions,
) -> Result<Stack, ConfigError> {
    let src = Src {
        name: display.to_string(),
        text: Arc::from(text),
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::from_toml(&src, &e))?;
    if let Some(k8s) = &raw.k8s {
        k8s::check_stack(&src, k8s)?;
    }
    let dotenv = read_dotenv(root)?;
    // An error may quote an interpolated value: never one that is a secret.
    let stack = resolve_stack(&src, raw, file, root, opts, &dotenv).map_err(|e| {
        let secrets = dotenv
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(std::env::vars())
            .filter(|(name, value)| looks_secret(name) && !value.is_empty())
            .map(|(_, value)| value);
        e.masked(&secrets.collect::<Vec<_>>())
    })?;
    // Whatever the process prints from now on hides this stack's secrets.
    secret::register(&stack.masker);
    Ok(stack)
}

/// Resolves the parsed file: services, profiles, dependencies, volumes, tests.
fn resolve_stack(
    src: &Src,
    raw: RawFile,
    file: &Path,
    root: &Path,
    opts: &LoadOptions,
    dotenv: &HashMap<String, String>,
) -> Result<Stack, ConfigError> {
    // Owned, as `parse` had them (both are small: the text is shared).
    let (src, dotenv) = (src.clone(), dotenv.clone());
    let project = project_name(&src, &raw, opts, root, &dotenv)?;
    let ctx = resolve::Ctx {
        src: &src,
        root,
        project: &project,
        dotenv: &dotenv,
        secrets: Default::default(),
    };

    let shared_env = resolve_shared_env(&ctx, &raw.env)?;
    let all = resolve_services(&ctx, &raw, &shared_env)?;
    let active = |profiles: &[String]| is_active(profiles, &opts.profiles);
    checks::dependencies(&src, &all, &opts.profiles)?;

    let mut services: IndexMap<_, _> = all
        .iter()
        .filter(|(_, (s, _, _))| active(&s.profiles))
        .map(|(k, (s, _, _))| (k.clone(), s.clone()))
        .collect();

    checks::host_ports(&src, &all, &services)?;
    checks::cycles(&src, &all, &services)?;
    let volumes = resolve_volumes(&ctx, &raw.volumes, &services)?;

    let test = testrun::resolve(&ctx, raw.test.as_ref(), &services)?;
    let declared: Vec<&str> = all.keys().map(String::as_str).collect();
    let commands = commands::resolve(&ctx, &raw.commands, &declared, &services, test.as_ref())?;
    let masker = build_masker(
        ctx.secrets.take(),
        all.values().map(|(s, _, _)| s),
        test.as_ref(),
        &commands,
        &project,
    );
    for svc in services.values_mut() {
        svc.hooks.masker = masker.clone();
    }

    let inactive = all
        .iter()
        .filter(|(_, (s, _, _))| !active(&s.profiles))
        .map(|(k, _)| k.clone())
        .collect();

    Ok(Stack {
        project,
        file: file.to_path_buf(),
        root: root.to_path_buf(),
        services,
        inactive,
        volumes,
        k8s: raw.k8s,
        test,
        commands,
        masker,
        bind_all_interfaces: raw.project.bind_all_interfaces,
        db_per_branch: raw.db.per_branch,
    })
}

/// Every declared service, resolved (active or not), with the span of its
/// name and its raw table.
type Resolved<'r> = IndexMap<String, (model::Service, Range<usize>, &'r raw::RawService)>;

/// Profiles: a service with none is always on; otherwise one must be active.
fn is_active(profiles: &[String], active: &[String]) -> bool {
    profiles.is_empty() || profiles.iter().any(|p| active.contains(p))
}

/// The top-level `[env]` every service shares, interpolated.
fn resolve_shared_env(
    ctx: &resolve::Ctx,
    env: &IndexMap<String, raw::S<String>>,
) -> Result<IndexMap<String, EnvValue>, ConfigError> {
    let mut shared_env = IndexMap::new();
    for (k, v) in env {
        let value = ctx.interp(ctx.src, v.span(), v.get_ref())?;
        shared_env.insert(
            k.clone(),
            EnvValue {
                value,
                secret: looks_secret(k),
            },
        );
    }
    Ok(shared_env)
}

/// Each service over the preset it `use`s, its errors pointed at its name.
fn resolve_services<'r>(
    ctx: &resolve::Ctx,
    raw: &'r RawFile,
    shared_env: &IndexMap<String, EnvValue>,
) -> Result<Resolved<'r>, ConfigError> {
    let src = ctx.src;
    let mut all = IndexMap::new();
    for (name, service) in &raw.services {
        check_service_name(src, name)?;
        let preset = match &service.get_ref().preset {
            Some(p) => Some(presets::find(ctx.root, p.get_ref())?.ok_or_else(|| {
                ConfigError::invalid(
                    src,
                    p.span(),
                    format!(
                        "service `{}` uses unknown preset `{}`",
                        name.get_ref(),
                        p.get_ref()
                    ),
                    "no such preset",
                    Some(format!(
                        "presets are files in `stacks/`; devenv carries {}",
                        presets::embedded_names().join(", ")
                    )),
                )
            })?),
            None => None,
        };
        let mut svc = resolve::resolve_service(
            ctx,
            name.get_ref(),
            service.get_ref(),
            shared_env,
            preset.as_ref(),
        )
        .map_err(|e| point_at_service(e, src, name.span()))?;
        svc.name = name.get_ref().clone();
        all.insert(
            name.get_ref().clone(),
            (svc, name.span(), service.get_ref()),
        );
    }
    Ok(all)
}

/// The declared volumes (only an `external` one may have a `name`), and
/// the named volumes the services mount without declaring.
fn resolve_volumes(
    ctx: &resolve::Ctx,
    raw: &IndexMap<String, raw::RawVolume>,
    services: &IndexMap<String, model::Service>,
) -> Result<IndexMap<String, Volume>, ConfigError> {
    let src = ctx.src;
    let mut volumes: IndexMap<String, Volume> = IndexMap::new();
    for (k, v) in raw {
        let name = match &v.name {
            Some(name) if !v.external => {
                return Err(ConfigError::invalid(
                    src,
                    name.span(),
                    format!("volume `{k}` has a `name` but is not `external`"),
                    "only for external volumes",
                    Some("devenv names the volumes it makes after the project; `name` says which existing volume an `external = true` one is".into()),
                ));
            }
            Some(name) => Some(ctx.interp(src, name.span(), name.get_ref())?),
            None => None,
        };
        volumes.insert(
            k.clone(),
            Volume {
                external: v.external,
                name,
                driver: v.driver.clone(),
                driver_opts: v.driver_opts.clone(),
            },
        );
    }
    for svc in services.values() {
        for m in &svc.volumes {
            if let Mount::Volume { name, .. } = m {
                volumes.entry(name.clone()).or_default();
            }
        }
    }
    Ok(volumes)
}

/// The stack's one masker: the spans secret variables filled (noted while
/// interpolating), and every secret value of every service (active or not:
/// a hook may quote an inactive one's), of the test env and of project
/// commands. Shared by each service, so a hook quoting another service's
/// password (`psql --password ${DB_PASSWORD}`) is masked too.
fn build_masker<'a>(
    mut masker: Masker,
    services: impl Iterator<Item = &'a model::Service>,
    test: Option<&model::TestSettings>,
    commands: &IndexMap<String, commands::ProjectCommand>,
    project: &str,
) -> std::sync::Arc<Masker> {
    let mut names = vec![project];
    for svc in services {
        names.push(&svc.name);
        for value in svc.secret_values() {
            masker.add_value(value);
        }
    }
    let test_env = test.iter().flat_map(|t| t.env.values());
    let command_env = commands.values().flat_map(|c| c.env.values());
    for value in test_env.chain(command_env).filter(|v| v.secret) {
        masker.add_value(&value.value);
    }
    // Names the stack prints anyway (and, by `spare`, the defaults every
    // preset prints).
    masker.spare(names);
    std::sync::Arc::new(masker)
}

fn read_dotenv(root: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let path = root.join(".env");
    if !path.is_file() {
        return Ok(HashMap::new());
    }
    // Unreadable is exit 1 (`Read`); unparsable is bad config with a location.
    dotenv::read(&path, &|name| std::env::var(name).ok())
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| match e {
            Ok(e) => e.at(&path),
            Err(source) => ConfigError::Read {
                path: path.clone(),
                source,
            },
        })
}

fn project_name(
    src: &Src,
    raw: &RawFile,
    opts: &LoadOptions,
    root: &Path,
    dotenv: &HashMap<String, String>,
) -> Result<String, ConfigError> {
    if let Some(p) = &opts.project {
        return normalize_project(p).ok_or_else(|| ConfigError::Syntax {
            message: format!("invalid project name `{p}`"),
            src: src.named(),
            span: None,
            help: Some("a project name is lowercase letters, digits, `-` and `_`".into()),
        });
    }
    if let Some(name) = &raw.project.name {
        let ctx = resolve::Ctx {
            src,
            root,
            project: "",
            dotenv,
            secrets: Default::default(),
        };
        let value = ctx.interp(src, name.span(), name.get_ref())?;
        return normalize_project(&value).ok_or_else(|| {
            ConfigError::invalid(
                src,
                name.span(),
                format!("invalid project name `{value}`"),
                "here",
                Some("a project name is lowercase letters, digits, `-` and `_`, starting with a letter or digit".into()),
            )
        });
    }
    let folder = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let cleaned: String = folder
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Ok(
        normalize_project(cleaned.trim_start_matches(['-', '_']))
            .unwrap_or_else(|| "devenv".into()),
    )
}

fn normalize_project(name: &str) -> Option<String> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    ok.then(|| name.to_string())
}

fn check_service_name(src: &Src, name: &toml::Spanned<String>) -> Result<(), ConfigError> {
    let n = name.get_ref();
    let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        return Ok(());
    }
    Err(ConfigError::invalid(
        src,
        name.span(),
        format!("invalid service name `{n}`"),
        "here",
        Some("a service name is letters, digits, `_`, `.` and `-` (it becomes a DNS name)".into()),
    ))
}

/// Errors without a better place point at the service's table header.
fn point_at_service(err: ConfigError, src: &Src, span: std::ops::Range<usize>) -> ConfigError {
    match err {
        ConfigError::Invalid {
            message,
            span: s,
            help,
            ..
        } if s.is_empty() && s.offset() == 0 => {
            ConfigError::invalid(src, span, message, "this service", help)
        }
        other => other,
    }
}

/// Edit distance of at most one, or two neighbours swapped (`cahce`,
/// `nmae`: the commonest typo), for "did you mean" hints.
pub fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let swapped =
        a_mid.len() == 2 && b_mid.len() == 2 && a_mid[0] == b_mid[1] && a_mid[1] == b_mid[0];
    a.len().max(b.len()) - prefix - suffix <= 1 || swapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_probe_logs_in_with_the_servers_own_password() {
        let stack = load_toml(
            "[services.cache]\nuse = \"redis\"\nports = []\n\
             command = [\"redis-server\", \"--requirepass\", \"${REDIS_PW:-hunter22}\"]\n\
             [services.other]\nuse = \"redis\"\nports = []\nenv = { REDIS_PASSWORD = \"from-env\" }\n\
             [services.own]\nuse = \"redis\"\nports = []\nenv = { REDIS_PASSWORD = \"from-env\" }\n\
             ready = { redis = { password = \"its-own\" } }\n",
        );
        let password = |name: &str| match &stack.services[name].ready {
            Some(model::Probe::Redis { password, .. }) => {
                password.as_ref().map(|p| p.expose().to_string())
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(password("cache").as_deref(), Some("hunter22"));
        // The official image ignores REDIS_PASSWORD: no AUTH to a server
        // that may have no password.
        assert_eq!(password("other"), None);
        assert_eq!(password("own").as_deref(), Some("its-own"));
    }

    #[test]
    fn a_name_one_edit_or_one_swap_away_is_similar() {
        for (a, b) in [("cache", "cach"), ("cache", "cachx"), ("cache", "caches")] {
            assert!(similar(a, b), "{a} ~ {b}");
        }
        for (a, b) in [("cache", "cahce"), ("name", "nmae"), ("ports", "prots")] {
            assert!(similar(a, b), "{a} ~ {b} (swapped)");
        }
        for (a, b) in [
            ("cache", "db"),
            ("cache", "ahcce"),
            ("mail", "liam"),
            ("app", "s3"),
        ] {
            assert!(!similar(a, b), "{a} !~ {b}");
        }
    }

    /// `text` parsed as a `dev.toml` in the temporary folder (shared by
    /// config's submodules' tests).
    pub(super) fn parse_str(text: &str) -> Result<Stack, ConfigError> {
        let dir = std::env::temp_dir();
        parse(
            text,
            "dev.toml",
            &dir.join("dev.toml"),
            &dir,
            &LoadOptions {
                cwd: dir.clone(),
                ..LoadOptions::default()
            },
        )
    }

    #[test]
    fn presets_are_overridden_key_by_key_and_lend_their_dependencies() {
        let stack = parse_str(
            "[project]\nname = \"t\"\n[services.db]\nuse = \"postgres\"\nports = []\n\
             [services.cache]\nuse = \"redis\"\n[services.mail]\nuse = \"mailhog\"\n[services.s3]\nuse = \"minio\"\n\
             [services.app]\nuse = \"laravel\"\nenv = { DB_PASSWORD = \"other\" }\n",
        )
        .unwrap();
        let app = &stack.services["app"];
        assert_eq!(
            app.depends_on.get("db"),
            Some(&model::Condition::Ready),
            "from the preset"
        );
        assert_eq!(
            app.env["DB_PASSWORD"].value, "other",
            "the service's value wins"
        );
        assert!(app.env["DB_PASSWORD"].secret);
        assert_eq!(
            app.env["DB_HOST"].value, "db",
            "the preset's other keys stay"
        );
        assert!(
            stack.services["db"].ports.is_empty(),
            "an empty list overrides the preset's"
        );
        assert!(stack.services["db"].fallback.is_some());
        assert_eq!(app.hooks.migrate, ["php artisan migrate --force"]);
        assert_eq!(app.hooks.seed, ["php artisan db:seed --force"]);
    }

    #[test]
    fn r31_an_optional_env_file_may_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env.web"), "A=from-file\nB=from-file\n").unwrap();
        let load = |toml: &str| {
            parse(
                toml,
                "dev.toml",
                &dir.path().join("dev.toml"),
                dir.path(),
                &LoadOptions {
                    cwd: dir.path().to_owned(),
                    ..LoadOptions::default()
                },
            )
        };
        let toml = "[services.web]\nimage = \"x\"\nenv_file = [\".env.web\", { path = \".env.local\", required = false }]\n";
        let stack = load(toml).unwrap();
        assert_eq!(stack.services["web"].env["A"].value, "from-file");
        // Once a colleague has it, it is read, after the ones before it.
        std::fs::write(dir.path().join(".env.local"), "B=local\n").unwrap();
        let env = &load(toml).unwrap().services["web"].env;
        assert_eq!(
            (env["A"].value.as_str(), env["B"].value.as_str()),
            ("from-file", "local")
        );
        // A required file (the short form, or `required = true`) must be there.
        for missing in [
            "\".env.gone\"",
            "[{ path = \".env.gone\" }]",
            "[{ path = \".env.gone\", required = true }]",
        ] {
            let err = load(&format!(
                "[services.web]\nimage = \"x\"\nenv_file = {missing}\n"
            ))
            .unwrap_err();
            assert!(
                err.to_string().contains("cannot read env file"),
                "{missing}: {err}"
            );
        }
    }

    #[test]
    fn a_port_is_fixed_only_in_the_long_form() {
        let stack = parse_str(
            "[services.db]\nimage = \"x\"\nports = [\"8080:80\", { port = \"127.0.0.1:${PG:-5432}:5432\", fixed = true }, { port = \"9000-9001:9000-9001\" }]\n",
        )
        .unwrap();
        let ports = &stack.services["db"].ports;
        let seen: Vec<(Option<&str>, Option<u16>, u16, bool)> = ports
            .iter()
            .map(|p| (p.host_ip.as_deref(), p.host, p.container, p.fixed))
            .collect();
        assert_eq!(
            seen,
            [
                (None, Some(8080), 80, false),
                (Some("127.0.0.1"), Some(5432), 5432, true),
                (None, Some(9000), 9000, false),
                (None, Some(9001), 9001, false),
            ]
        );
        // `devenv config` says `fixed` only where it is set.
        let json = serde_json::to_value(ports).unwrap();
        assert_eq!(json[1]["fixed"], true);
        assert!(json[0].get("fixed").is_none(), "{json}");
    }

    #[test]
    fn one_host_port_twice_in_a_service_is_an_error_at_its_line() {
        let err = parse_str(
            "[services.cache]\nimage = \"x\"\nports = [\n  \"6379:6379\",\n  { port = \"6379:6380\", fixed = true },\n]\n",
        )
        .unwrap_err();
        let text = format!("{:?}", miette::Report::new(err));
        assert!(
            text.contains("host port 6379 is published twice in this service"),
            "{text}"
        );
        assert!(text.contains("dev.toml:5:"), "points at the second: {text}");
        // Other protocols, other addresses of one family, or the two
        // families' wildcards are no clash.
        for ok in [
            r#"["53:53/udp", "53:53/tcp"]"#,
            r#"["127.0.0.1:8080:80", "127.0.0.2:8080:81"]"#,
            r#"["0.0.0.0:8080:80", "[::]:8080:80"]"#,
        ] {
            parse_str(&format!("[services.web]\nimage = \"x\"\nports = {ok}\n")).unwrap();
        }
        for clash in [
            r#"["8080:80", "127.0.0.1:8080:81"]"#,
            r#"["0.0.0.0:8080:80", "127.0.0.1:8080:81"]"#,
            r#"["8000-8001:8000-8001", "8001:9000"]"#,
        ] {
            let err = parse_str(&format!("[services.web]\nimage = \"x\"\nports = {clash}\n"));
            assert!(err.is_err(), "{clash}");
        }
    }

    #[test]
    fn a_fixed_port_needs_a_host_port_and_the_long_form_its_keys() {
        let err = parse_str(
            "[services.db]\nimage = \"x\"\nports = [{ port = \"5432\", fixed = true }]\n",
        )
        .unwrap_err();
        let text = format!("{:?}", miette::Report::new(err));
        assert!(
            text.contains("port mapping `5432` is `fixed` but names no host port"),
            "{text}"
        );
        assert!(parse_str(
            "[services.db]\nimage = \"x\"\nports = [{ port = \"5432:5432\", fixd = true }]\n",
        )
        .is_err());
        assert!(parse_str(
            "[services.db]\nimage = \"x\"\nports = [{ port = \"5432:x\", fixed = true }]\n",
        )
        .is_err());
    }

    #[test]
    fn profiles_leave_services_out_unless_enabled() {
        let text = "[services.a]\nimage = \"x\"\n[services.debug]\nimage = \"y\"\nprofiles = [\"debug\"]\n";
        assert_eq!(parse_str(text).unwrap().services.len(), 1);
        let dir = std::env::temp_dir();
        let opts = LoadOptions {
            cwd: dir.clone(),
            profiles: vec!["debug".into()],
            ..LoadOptions::default()
        };
        assert_eq!(
            parse(text, "dev.toml", &dir.join("dev.toml"), &dir, &opts)
                .unwrap()
                .services
                .len(),
            2
        );
    }

    #[test]
    fn two_services_on_one_host_port_is_a_config_error() {
        let err = parse_str("[services.a]\nimage = \"x\"\nports = [\"80:80\"]\n[services.b]\nimage = \"y\"\nports = [\"80:81\"]\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("both publish host port 80"),
            "{err}"
        );
    }

    #[test]
    fn r14_a_mirrored_postgres_is_postgres() {
        let db = |image: &str| {
            let stack = parse_str(&format!(
                "[services.db]\nuse = \"postgres\"\nimage = \"{image}\"\nports = []\n"
            ))
            .unwrap();
            stack.services["db"].clone()
        };
        let hub = db("postgres:16");
        let mirror = db("registry.local:5000/library/postgres:16");
        assert_eq!(mirror.image.repository(), "postgres");
        assert_eq!(mirror.image.tag(), Some("16"));
        assert_eq!(mirror.image.registry(), Some("registry.local:5000"));
        assert!(mirror.image.same_image(&hub.image));
        let mut as_hub = mirror.clone();
        as_hub.image = hub.image.clone();
        assert_eq!(
            serde_json::to_value(&as_hub).unwrap(),
            serde_json::to_value(&hub).unwrap(),
            "the same service but for where its image comes from"
        );
    }

    #[test]
    fn r14_a_bad_image_reference_is_located() {
        let err = parse_str("[services.a]\nimage = \"Postgres:16\"\n").unwrap_err();
        let ConfigError::Invalid {
            message,
            span,
            help,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            message,
            "invalid image reference `Postgres:16`: the repository name must be lowercase"
        );
        assert_eq!(span.offset(), 21);
        assert!(help.as_deref().unwrap().contains("lowercase"));
        // A built service's default tag is lowercase whatever its name.
        let stack =
            parse_str("[project]\nname = \"shop\"\n[services.App]\nbuild = \".\"\n").unwrap();
        assert_eq!(stack.services["App"].image.as_str(), "shop-app:latest");
    }

    #[test]
    fn r14_an_error_quoting_an_interpolated_secret_masks_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "DB_PASSWORD=hunter22\n").unwrap();
        let err = parse(
            "[services.a]\nimage = \"x\"\nports = [\"${DB_PASSWORD}\"]\n",
            "dev.toml",
            &dir.path().join("dev.toml"),
            dir.path(),
            &LoadOptions {
                cwd: dir.path().to_path_buf(),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        let message = err.to_string();
        assert_eq!(
            message,
            "invalid port mapping `********`: a port is a number from 1 to 65535"
        );
    }

    #[test]
    fn r14_a_hook_quoting_another_services_secret_masks_it() {
        let stack = parse_str(
            "[services.db]\nimage = \"x\"\nenv = { POSTGRES_PASSWORD = \"pw-of-db\" }\n\
             [services.app]\nimage = \"y\"\nhooks = { after_up = [\"psql --password pw-of-db\"] }\n",
        )
        .unwrap();
        let app = &stack.services["app"];
        assert_eq!(app.mask(&app.hooks.after_up[0]), "psql --password ********");
        let json = serde_json::to_string(app).unwrap();
        assert!(!json.contains("masker"), "{json}");
    }

    #[test]
    fn r22_a_secret_variable_inside_another_value_is_masked() {
        // Issue 22: `DATABASE_URL` is no secret by name; the password a
        // secret variable put in it is, however short; and a one-letter
        // password garbles nothing else.
        let stack = parse_str(
            "[services.app]\nimage = \"y\"\n\
             env = { DATABASE_URL = \"pgsql://app:${R22_DB_PASSWORD:-q}@db/app\", GREETING = \"x${R22_DB_PASSWORD:-q}x\" }\n\
             command = [\"redis-server\", \"--requirepass\", \"${R22_DB_PASSWORD:-q}\", \"--quiet\"]\n\
             build = { context = \".\", args = { TOKEN = \"tok-1\", NPM_AUTH = \"npm-2\", PASSWORD = \"pw-3\" } }\n",
        )
        .unwrap();
        let app = &stack.services["app"];
        let json = serde_json::to_string(&stack).unwrap();
        let mut value = serde_json::to_value(&stack).unwrap();
        stack.masker.mask_json(&mut value);
        let masked = value.to_string();
        assert!(masked.contains("pgsql://app:********@db/app"), "{masked}");
        assert!(masked.contains("\"x********x\""), "{masked}");
        assert!(
            masked.contains("\"--requirepass\",\"********\",\"--quiet\""),
            "{masked}"
        );
        for arg in ["tok-1", "npm-2", "pw-3"] {
            assert!(!json.contains(arg), "build arg shown: {json}");
        }
        assert_eq!(app.mask("a quiet app"), "a quiet app");
    }
}
