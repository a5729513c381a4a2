//! Project-defined commands: `[commands.NAME]` tables in `dev.toml`, like
//! DDEV's custom commands or Lando's tooling. Each runs a command line (or
//! an argv list) in a running service, the app by default, and becomes
//! `devenv NAME args…`. A name devenv already uses, an unknown service or an
//! empty `run` is refused here, with the line.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::model::{EnvValue, Service, TestSettings};
use super::raw::{StrOrList, S};
use super::resolve::{looks_secret, Ctx};

/// One `[commands.NAME]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    /// One line for `devenv --help`.
    pub description: Option<String>,
    /// Where it runs (default: the app service).
    pub service: Option<S<String>>,
    /// A shell line, or an argv list run as is.
    pub run: S<StrOrList>,
    pub user: Option<S<String>>,
    pub workdir: Option<S<String>>,
    pub env: Option<IndexMap<String, S<String>>>,
}

/// A project command, resolved: its service exists and it has something to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectCommand {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub service: String,
    pub run: Run,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, EnvValue>,
}

/// What a project command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Run {
    /// `run = "…"`: a line for `sh -c`, so pipes and `&&` work.
    Line(String),
    /// `run = ["…", …]`: words run as they are, no shell.
    Argv(Vec<String>),
}

impl ProjectCommand {
    /// The words to exec for `devenv NAME args…`. Arguments go after a list,
    /// or to the line's `sh` as `"$@"`, so they reach its last command
    /// unsplit and unexpanded.
    pub fn argv(&self, name: &str, args: &[String]) -> Vec<String> {
        let mut words = match &self.run {
            Run::Argv(words) => words.clone(),
            Run::Line(line) => vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("{line} \"$@\""),
                name.to_string(),
            ],
        };
        words.extend(args.iter().cloned());
        words
    }

    /// `KEY=VALUE` pairs for the exec.
    pub fn env_pairs(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.value))
            .collect()
    }
}

/// The Laravel app: `[test].service` (a service with a sync rule or the only
/// one with `build`), else a service named `app`, else the only service with
/// `build`. The shortcuts (`artisan`, `tinker`, …) pick it the same way.
pub fn app_service(
    services: &IndexMap<String, Service>,
    test: Option<&TestSettings>,
) -> Option<String> {
    if let Some(test) = test {
        return Some(test.service.clone());
    }
    if services.contains_key("app") {
        return Some("app".to_string());
    }
    let mut built = services.values().filter(|s| s.build.is_some());
    match (built.next(), built.next()) {
        (Some(one), None) => Some(one.name.clone()),
        _ => None,
    }
}

/// Resolves every `[commands.NAME]`. `declared` is every service of the
/// file (a command may run in a service of an inactive profile; running it
/// says so); `services` the active ones, where the app default is found.
pub fn resolve(
    ctx: &Ctx,
    raw: &IndexMap<S<String>, S<RawCommand>>,
    declared: &[&str],
    services: &IndexMap<String, Service>,
    test: Option<&TestSettings>,
) -> Result<IndexMap<String, ProjectCommand>, ConfigError> {
    let src = ctx.src;
    let mut out = IndexMap::new();
    if raw.is_empty() {
        return Ok(out);
    }
    for (name, table) in raw {
        let n = name.get_ref();
        check_name(ctx, name)?;
        let c = table.get_ref();
        let service = match &c.service {
            Some(s) if declared.contains(&s.get_ref().as_str()) => s.get_ref().clone(),
            Some(s) => {
                let close = declared
                    .iter()
                    .find(|d| super::similar(d, s.get_ref()))
                    .map(|d| format!("did you mean `{d}`? "))
                    .unwrap_or_default();
                let known: Vec<String> = declared.iter().map(|d| format!("`{d}`")).collect();
                return Err(ConfigError::invalid(
                    src,
                    s.span(),
                    format!("command `{n}` runs in unknown service `{}`", s.get_ref()),
                    "unknown service",
                    Some(format!("{close}known services: {}", known.join(", "))),
                ));
            }
            None => app_service(services, test).ok_or_else(|| {
                ConfigError::invalid(
                    src,
                    table.span(),
                    format!("command `{n}` names no `service`, and no service is the app"),
                    "this command",
                    Some("add `service = \"…\"` (the default is the service named `app`, or the only one with `build`)".into()),
                )
            })?,
        };
        let interp = |v: &S<String>| ctx.interp(src, v.span(), v.get_ref());
        let run = match c.run.get_ref() {
            StrOrList::Str(line) => Run::Line(ctx.interp(src, c.run.span(), line)?),
            StrOrList::List(words) => Run::Argv(
                words
                    .iter()
                    .map(|w| ctx.interp(src, c.run.span(), w))
                    .collect::<Result<_, _>>()?,
            ),
        };
        let empty = match &run {
            Run::Line(line) => line.trim().is_empty(),
            Run::Argv(words) => words.first().is_none_or(|w| w.is_empty()),
        };
        if empty {
            return Err(ConfigError::invalid(
                src,
                c.run.span(),
                format!("command `{n}` has nothing to run"),
                "empty",
                Some("give `run` a command line (`run = \"php artisan migrate:fresh --seed\"`) or a list of words".into()),
            ));
        }
        let mut env = IndexMap::new();
        for (k, v) in c.env.iter().flatten() {
            let value = interp(v)?;
            env.insert(
                k.clone(),
                EnvValue {
                    value,
                    secret: looks_secret(k),
                },
            );
        }
        out.insert(
            n.clone(),
            ProjectCommand {
                description: c.description.clone(),
                service,
                run,
                user: c.user.as_ref().map(interp).transpose()?,
                workdir: c.workdir.as_ref().map(interp).transpose()?,
                env,
            },
        );
    }
    Ok(out)
}

/// devenv's own command names (and aliases): a project command named so
/// could never run, as the built-in is found first. Kept here rather than
/// asked of the command line's parser, so the config depends on no CLI
/// type; a test in `crate::cli` holds the two lists equal.
pub const BUILTIN_NAMES: &[&str] = &[
    "help",
    "up",
    "down",
    "ps",
    "logs",
    "exec",
    "run",
    "test",
    "stop",
    "start",
    "restart",
    "watch",
    "migrate",
    "seed",
    "config",
    "import",
    "export",
    "completions",
    "artisan",
    "composer",
    "php",
    "tinker",
    "psql",
    "redis-cli",
    "shell",
    "db",
    "xdebug",
    "ls",
    "open",
    "trust",
    "ui",
    "describe",
    // Aliases, the words Sail and DDEV users type.
    "status",
    "ssh",
    "bash",
    "launch",
];

fn check_name(ctx: &Ctx, name: &S<String>) -> Result<(), ConfigError> {
    let n = name.get_ref();
    // Letters first, so it cannot look like an option; no `:` or `.`, which
    // shells' completion treats as separators.
    let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(ConfigError::invalid(
            ctx.src,
            name.span(),
            format!("invalid command name `{n}`"),
            "here",
            Some("a command name is letters, digits, `-` and `_`, starting with a letter".into()),
        ));
    }
    if BUILTIN_NAMES.contains(&n.as_str()) {
        return Err(ConfigError::invalid(
            ctx.src,
            name.span(),
            format!("command `{n}` has the name of a built-in devenv command"),
            "built-in name",
            Some(format!(
                "`devenv {n}` is devenv's own command, so this one could never run; give it another name (e.g. `my-{n}`)"
            )),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse_str as load;

    const SERVICES: &str =
        "[services.db]\nimage = \"postgres\"\n[services.web]\nimage = \"x\"\nbuild = \".\"\n";

    #[test]
    fn a_command_runs_in_the_app_unless_it_names_a_service() {
        let stack = load(&format!(
            "{SERVICES}[commands.fresh]\ndescription = \"Start over\"\nrun = \"php artisan migrate:fresh --seed\"\n\
             [commands.size]\nservice = \"db\"\nrun = [\"du\", \"-sh\"]\nuser = \"root\"\nworkdir = \"/var\"\nenv = {{ A = \"1\", API_TOKEN = \"t\" }}\n"
        ))
        .unwrap();
        let fresh = &stack.commands["fresh"];
        assert_eq!(fresh.service, "web", "the only service with `build`");
        assert_eq!(fresh.description.as_deref(), Some("Start over"));
        assert_eq!(
            fresh.argv("fresh", &["--force".into(), "a b".into()]),
            [
                "sh",
                "-c",
                "php artisan migrate:fresh --seed \"$@\"",
                "fresh",
                "--force",
                "a b"
            ]
        );
        let size = &stack.commands["size"];
        assert_eq!(size.service, "db");
        assert_eq!(size.argv("size", &["/x".into()]), ["du", "-sh", "/x"]);
        assert_eq!(
            (size.user.as_deref(), size.workdir.as_deref()),
            (Some("root"), Some("/var"))
        );
        assert_eq!(size.env_pairs(), ["A=1", "API_TOKEN=t"]);
        assert!(size.env["API_TOKEN"].secret);
        let json = serde_json::to_string(&stack.commands).unwrap();
        assert!(!json.contains("\"t\""), "secrets are masked: {json}");
    }

    #[test]
    fn bad_commands_are_refused_with_the_line() {
        let cases = [
            (
                "[commands.up]\nrun = \"x\"\n",
                "command `up` has the name of a built-in devenv command",
            ),
            (
                "[commands.redis-cli]\nrun = \"x\"\n",
                "command `redis-cli` has the name of a built-in",
            ),
            (
                "[commands.go]\nservice = \"wen\"\nrun = \"x\"\n",
                "command `go` runs in unknown service `wen`",
            ),
            (
                "[commands.go]\nrun = \"  \"\n",
                "command `go` has nothing to run",
            ),
            (
                "[commands.go]\nrun = []\n",
                "command `go` has nothing to run",
            ),
            (
                "[commands.\"-x\"]\nrun = \"x\"\n",
                "invalid command name `-x`",
            ),
        ];
        for (text, want) in cases {
            let err = load(&format!("{SERVICES}{text}")).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
        let err = load(&format!(
            "{SERVICES}[commands.go]\nservice = \"wen\"\nrun = \"x\"\n"
        ))
        .unwrap_err();
        let ConfigError::Invalid { help, .. } = err else {
            panic!("{err:?}")
        };
        assert!(help.unwrap().starts_with("did you mean `web`?"));
        let err = load("[services.a]\nimage = \"x\"\n[services.b]\nimage = \"y\"\n[commands.go]\nrun = \"x\"\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("command `go` names no `service`, and no service is the app"),
            "{err}"
        );
        let err = load(&format!("{SERVICES}[commands.go]\nrn = \"x\"\n")).unwrap_err();
        assert!(err.to_string().contains("unknown field `rn`"), "{err}");
    }
}
