//! The commands people type a hundred times a day, as Sail and DDEV have
//! them: `artisan`, `composer`, `php`, `tinker` in the app container,
//! `psql` and `redis-cli` on the stack's servers with its credentials, and
//! `shell` in any service. Each is an attached `exec` with the right words.

use super::exec::attached;
use super::{Context, Failure, Outcome};
use crate::cli::{PassArgs, ShellArgs};
use crate::config::model::{Probe, Service, Stack, REDISCLI_AUTH};
use crate::config::secret::redis_password;
use crate::engine::ExecAs;

/// What a shortcut runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    Artisan,
    Composer,
    Php,
    Tinker,
    Psql,
    RedisCli,
}

/// Where `tinker` puts devenv's REPL in the app container, for apps
/// without laravel/tinker.
const TINKER_PATH: &str = "/tmp/devenv-tinker.php";

pub async fn run(ctx: &Context, shortcut: Shortcut, args: PassArgs) -> Outcome {
    let stack = ctx.stack()?;
    let (service, command, who) = words(&stack, shortcut, args.args)?;
    if shortcut == Shortcut::Psql {
        // A killed database command is repaired before the session opens on it.
        let engine = ctx.engine().await?;
        let named = ctx.named(&engine, stack.clone(), false).await?;
        let reporter = ctx.reporter();
        crate::dbsafety::recover_if_noted(&engine, &named, reporter.as_ref()).await;
        reporter.clear();
    }
    if shortcut == Shortcut::Tinker {
        let engine = ctx.engine().await?;
        let named = ctx.named(&engine, stack.clone(), false).await?;
        let id = super::service_container(&engine, &named, &service).await?;
        engine.upload_archive(&id, "/tmp", tinker_archive()).await?;
    }
    attached(ctx, &stack, &service, command, &who, true).await
}

/// devenv's REPL as a one-file archive for the container's `/tmp`.
fn tinker_archive() -> Vec<u8> {
    let script = include_bytes!("tinker.php");
    let mut header = tar::Header::new_gnu();
    header.set_size(script.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_data(
        &mut header,
        TINKER_PATH.trim_start_matches("/tmp/"),
        &script[..],
    )
    .and_then(|()| tar.into_inner())
    .expect("an in-memory archive can be written")
}

/// The service, command line and env a shortcut runs.
fn words(
    stack: &Stack,
    shortcut: Shortcut,
    args: Vec<String>,
) -> Result<(String, Vec<String>, ExecAs), Failure> {
    let with = |head: &[&str]| -> Vec<String> {
        head.iter()
            .map(|s| s.to_string())
            .chain(args.iter().cloned())
            .collect()
    };
    Ok(match shortcut {
        Shortcut::Artisan => (
            app_service(stack)?,
            with(&["php", "artisan"]),
            ExecAs::default(),
        ),
        Shortcut::Composer => (app_service(stack)?, with(&["composer"]), ExecAs::default()),
        Shortcut::Php => (app_service(stack)?, with(&["php"]), ExecAs::default()),
        Shortcut::Tinker => (
            app_service(stack)?,
            with(&[
                "sh",
                "-c",
                "if php artisan list --raw 2>/dev/null | grep -q '^tinker '; then exec php artisan tinker \"$@\"; else exec php \"$0\"; fi",
                TINKER_PATH,
            ]),
            ExecAs::default(),
        ),
        Shortcut::Psql => {
            let (service, user, password, database) = stack
                .services
                .values()
                .find_map(|s| match &s.ready {
                    Some(Probe::Postgres {
                        user,
                        password,
                        database,
                        ..
                    }) => Some((s.name.clone(), user, password, database)),
                    _ => None,
                })
                .ok_or_else(|| missing("PostgreSQL", "postgres"))?;
            // The password travels in the exec's env, never on a command line.
            let who = ExecAs {
                env: vec![format!("PGPASSWORD={}", password.expose())],
                ..ExecAs::default()
            };
            (service, with(&["psql", "-U", user, "-d", database]), who)
        }
        Shortcut::RedisCli => {
            let svc = stack
                .services
                .values()
                .find(|s| matches!(s.ready, Some(Probe::Redis { .. })))
                .ok_or_else(|| missing("Redis", "redis"))?;
            // As `psql` gets `PGPASSWORD`: the server's own password, in
            // the exec's env, never on a command line.
            let who = ExecAs {
                env: redis_auth(svc).map(|p| format!("{REDISCLI_AUTH}={p}")).into_iter().collect(),
                ..ExecAs::default()
            };
            (svc.name.clone(), with(&["redis-cli"]), who)
        }
    })
}

/// The password `redis-cli` must send: the server's (`--requirepass`, else
/// `REDIS_PASSWORD`; the rule `describe` reads too), else its probe's.
fn redis_auth(svc: &Service) -> Option<&str> {
    let env = |name: &str| svc.env.get(name).map(|v| v.value.as_str());
    let command = svc.command.as_deref().unwrap_or_default();
    redis_password(command, env).or_else(|| match &svc.ready {
        Some(Probe::Redis {
            password: Some(p), ..
        }) => Some(p.expose()).filter(|p| !p.is_empty()),
        _ => None,
    })
}

pub async fn shell(ctx: &Context, args: ShellArgs) -> Outcome {
    let stack = ctx.stack()?;
    let service = match args.service {
        Some(s) => s,
        None => app_service(&stack)?,
    };
    // bash where the image has it (the app), sh everywhere else (alpine, busybox).
    let command = [
        "sh",
        "-c",
        "command -v bash >/dev/null 2>&1 && exec bash || exec sh",
    ]
    .map(String::from)
    .to_vec();
    let who = ExecAs {
        user: args.root.then(|| "root".to_string()),
        ..ExecAs::default()
    };
    attached(ctx, &stack, &service, command, &who, true).await
}

/// The Laravel app: `[test].service` (a service with a sync rule or the
/// only one with `build`), else a service named `app`.
pub fn app_service(stack: &Stack) -> Result<String, Failure> {
    crate::config::commands::app_service(&stack.services, stack.test.as_ref())
        .ok_or_else(|| Failure::new(NoApp, 2))
}

fn missing(what: &'static str, probe: &'static str) -> Failure {
    Failure::new(NoServer { what, probe }, 2)
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no service is the app: no `[test]` service, none named `app`, and not exactly one with `build`")]
#[diagnostic(
    code(devenv::shortcuts::no_app),
    help("name the app service `app`, or set `[test] service = \"…\"`")
)]
struct NoApp;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no service of the stack is its {what} server (none has `ready = {{ {probe} = {{}} }}`)")]
#[diagnostic(
    code(devenv::shortcuts::no_server),
    help("give that service the `{probe}` readiness probe, or use `devenv exec SERVICE …`")
)]
struct NoServer {
    what: &'static str,
    probe: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    type Words = (String, Vec<String>, ExecAs);

    fn ok(r: Result<Words, Failure>) -> Words {
        r.unwrap_or_else(|f| panic!("{:?}", f.report))
    }

    fn stack(toml: &str) -> (tempfile::TempDir, Stack) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dev.toml"), toml).unwrap();
        let stack = crate::config::load(&crate::config::LoadOptions {
            cwd: dir.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        (dir, stack)
    }

    #[test]
    fn shortcuts_pick_the_service_and_the_words() {
        let (_d, s) = stack(
            "[services.pg]\nuse = \"postgres\"\nenv = { POSTGRES_USER = \"u\", POSTGRES_DB = \"d\", POSTGRES_PASSWORD = \"pw\" }\n\
             [services.kv]\nuse = \"redis\"\n[services.web]\nimage = \"x\"\nbuild = \".\"\n",
        );
        let (svc, cmd, who) = ok(words(&s, Shortcut::Artisan, vec!["route:list".into()]));
        assert_eq!(
            (svc.as_str(), cmd),
            (
                "web",
                vec!["php".to_string(), "artisan".into(), "route:list".into()]
            )
        );
        assert!(who.env.is_empty());
        let (svc, cmd, who) = ok(words(
            &s,
            Shortcut::Psql,
            vec!["-c".into(), "select 1".into()],
        ));
        assert_eq!(svc, "pg");
        assert_eq!(cmd, ["psql", "-U", "u", "-d", "d", "-c", "select 1"]);
        assert_eq!(who.env, ["PGPASSWORD=pw"]);
        assert!(
            !cmd.iter().any(|w| w.contains("pw")),
            "no password on the command line"
        );
        let (svc, cmd, who) = ok(words(&s, Shortcut::RedisCli, vec![]));
        assert_eq!((svc.as_str(), cmd), ("kv", vec!["redis-cli".to_string()]));
        assert!(who.env.is_empty(), "no password, none sent");
    }

    #[test]
    fn redis_cli_sends_the_servers_password_in_its_env() {
        let kv = |extra: &str| {
            let (_d, s) = stack(&format!("[services.kv]\nuse = \"redis\"\n{extra}"));
            let (_, cmd, who) = ok(words(&s, Shortcut::RedisCli, vec!["ping".into()]));
            assert_eq!(
                cmd,
                ["redis-cli", "ping"],
                "no password on the command line"
            );
            who.env
        };
        let requirepass = "command = [\"redis-server\", \"--requirepass\", \"from-cmd\"]\n";
        assert_eq!(kv(requirepass), ["REDISCLI_AUTH=from-cmd"]);
        assert_eq!(
            kv("env = { REDIS_PASSWORD = \"from-env\" }\n"),
            ["REDISCLI_AUTH=from-env"]
        );
        assert_eq!(
            kv("ready = { redis = { password = \"from-probe\" } }\n"),
            ["REDISCLI_AUTH=from-probe"]
        );
        // The server's own word first: it is what it requires.
        assert_eq!(
            kv(&format!(
                "{requirepass}ready = {{ redis = {{ password = \"p\" }} }}\n"
            )),
            ["REDISCLI_AUTH=from-cmd"]
        );
    }

    #[test]
    fn without_an_app_or_a_server_the_shortcut_says_what_is_missing() {
        let (_d, s) = stack("[services.a]\nimage = \"x\"\n[services.b]\nimage = \"y\"\n");
        let err = words(&s, Shortcut::Composer, vec![]).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.report.to_string().contains("no service is the app"));
        let err = words(&s, Shortcut::Psql, vec![]).unwrap_err();
        assert!(
            err.report.to_string().contains("PostgreSQL server"),
            "{}",
            err.report
        );
    }
}
