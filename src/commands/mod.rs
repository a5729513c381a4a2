//! One file per command: each wires config, engine, domain code and UI
//! together and holds no domain logic of its own.

pub mod completions;
pub mod config;
pub mod control;
pub mod custom;
pub mod db;
pub mod dbbranch;
pub mod describe;
pub mod down;
pub mod exec;
pub mod export;
mod follow;
pub mod import;
pub mod logs;
pub mod ls;
pub mod migrate;
pub mod open;
pub mod ps;
pub mod run;
pub mod shortcuts;
mod terminal;
pub mod test;
pub mod trust;
pub mod ui;
pub mod up;
pub mod watch;
pub mod xdebug;

use std::sync::Arc;

use crate::cli::{Cli, Command, Progress};
use crate::config::model::Stack;
use crate::config::{ConfigError, LoadOptions};
use crate::engine::{Engine, EngineError};
use crate::lifecycle::UpError;
use crate::report::Reporter;
use crate::ui::TerminalReporter;
use shortcuts::Shortcut;

/// A failed command: what to show and the exit code (STYLE.md: 1 the job
/// failed, 2 bad usage or config).
pub struct Failure {
    pub report: miette::Report,
    pub code: u8,
}

impl Failure {
    pub fn new(err: impl miette::Diagnostic + Send + Sync + 'static, code: u8) -> Self {
        Failure {
            report: miette::Report::new(err),
            code,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        let code = if matches!(e, ConfigError::Read { .. }) {
            1
        } else {
            2
        };
        Failure::new(e, code)
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::new(e, 1)
    }
}

impl From<UpError> for Failure {
    fn from(e: UpError) -> Self {
        let code = e.exit_code();
        Failure::new(e, code)
    }
}

impl From<crate::watch::WatchError> for Failure {
    fn from(e: crate::watch::WatchError) -> Self {
        let code = e.exit_code();
        Failure::new(e, code)
    }
}

pub type Outcome = Result<u8, Failure>;

/// Settings every command shares, from the global flags.
pub struct Context {
    pub load: LoadOptions,
    pub progress: Progress,
}

impl Context {
    pub fn stack(&self) -> Result<Stack, Failure> {
        Ok(crate::config::load(&self.load)?)
    }

    /// The stack; or, with `-p NAME` and no stack file here, project NAME's
    /// stack read from the folder its containers name (or only its name,
    /// when that folder has none left), so that `ps`, `logs`, `stop` and
    /// `down` work from anywhere.
    pub async fn stack_or_project(&self, engine: &Engine) -> Result<Stack, Failure> {
        let project = match (crate::config::load(&self.load), &self.load.project) {
            (Err(ConfigError::NotFound { .. }), Some(project)) => project.clone(),
            (loaded, _) => return self.named(engine, loaded?, false).await,
        };
        let folder = engine
            .list_containers(&project)
            .await?
            .into_iter()
            .find_map(|c| c.dir)
            .ok_or_else(|| {
                Failure::new(
                    NoSuchProject {
                        project: project.clone(),
                    },
                    1,
                )
            })?;
        let there = LoadOptions {
            cwd: folder.clone().into(),
            file: None,
            ..self.load.clone()
        };
        Ok(crate::config::load(&there).unwrap_or_else(|_| Stack::bare(&project, folder.into())))
    }

    /// The stack, named as its folder's project goes by on the engine (see
    /// [`crate::identity`]): a second checkout of a project is a project of
    /// its own. `claim` for commands that create containers or networks.
    pub async fn named(
        &self,
        engine: &Engine,
        mut stack: Stack,
        claim: bool,
    ) -> Result<Stack, Failure> {
        let explicit = self.load.project.is_some();
        let reporter = self.reporter();
        crate::identity::resolve(engine, &mut stack, explicit, claim, reporter.as_ref()).await?;
        Ok(stack)
    }

    pub async fn engine(&self) -> Result<Engine, Failure> {
        Ok(Engine::connect().await?)
    }

    pub fn reporter(&self) -> Arc<dyn Reporter> {
        Arc::new(TerminalReporter::new(self.progress))
    }
}

pub async fn dispatch(cli: Cli) -> Outcome {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let ctx = Context {
        load: LoadOptions {
            file: cli.file,
            project: cli.project,
            profiles: cli.profiles,
            cwd,
        },
        progress: cli.progress,
    };
    // Commands with something to clean up wait for Ctrl-C themselves; the
    // others just end at the first one. Those that stop containers or a run
    // on the way out say so (and how to force it); the others end without
    // a word.
    let (cleans_up, says_stopping) = match cli.command {
        Command::Up(_)
        | Command::Down(_)
        // Passes Ctrl-C on to the command it runs (see `exec`).
        | Command::Exec(_)
        | Command::Test(_)
        | Command::Run(_)
        // A database command is never dropped halfway: its steps are short
        // and whole, and an import stops itself (see `db`).
        | Command::Db(_) => (true, true),
        // Stop following, watching (a batch under way finishes) or serving
        // (the server's note in the private folder goes): nothing to wait for.
        Command::Logs(_) | Command::Watch(_) | Command::Ui(_) => (true, false),
        _ => (false, false),
    };
    crate::interrupt::says_stopping(says_stopping);
    crate::interrupt::install();
    let outcome = tokio::select! {
        r = command(&ctx, cli.command) => r,
        () = crate::interrupt::first(), if !cleans_up => Ok(crate::interrupt::exit_code()),
    };
    crate::ui::clear_progress();
    // An interrupted command exits 130, whatever it was doing when it stopped.
    match outcome {
        _ if !crate::interrupt::happened() => outcome,
        Ok(_) => Ok(crate::interrupt::exit_code()),
        Err(f) => Err(Failure {
            code: crate::interrupt::exit_code(),
            ..f
        }),
    }
}

async fn command(ctx: &Context, command: Command) -> Outcome {
    match command {
        Command::Up(a) => up::run(ctx, a).await,
        Command::Down(a) => down::run(ctx, a).await,
        Command::Ps(a) => ps::run(ctx, a).await,
        Command::Describe(a) => describe::run(ctx, a).await,
        Command::Logs(a) => logs::run(ctx, a).await,
        Command::Exec(a) => exec::run(ctx, a).await,
        Command::Run(a) => run::run(ctx, a).await,
        Command::Test(a) => test::run(ctx, a).await,
        Command::Stop(a) => control::run(ctx, crate::lifecycle::control::Action::Stop, a).await,
        Command::Start(a) => control::run(ctx, crate::lifecycle::control::Action::Start, a).await,
        Command::Restart(a) => {
            control::run(ctx, crate::lifecycle::control::Action::Restart, a).await
        }
        Command::Watch(a) => watch::run(ctx, a).await,
        Command::Migrate(a) => migrate::run(ctx, migrate::Kind::Migrate, a).await,
        Command::Seed(a) => migrate::run(ctx, migrate::Kind::Seed, a).await,
        Command::Config(a) => config::run(ctx, a),
        Command::Import(a) => {
            let settings = import::ImportSettings {
                files: a.files,
                output: a.output,
                force: a.force,
            };
            match import::run(&settings, &mut crate::ui::Stream::Err) {
                Ok(()) => Ok(0),
                Err(e) => {
                    let code = e.exit_code();
                    Err(Failure::new(e, code))
                }
            }
        }
        Command::Export(a) => export_cmd(ctx, a),
        Command::Completions(a) => completions::run(a),
        Command::Artisan(a) => shortcuts::run(ctx, Shortcut::Artisan, a).await,
        Command::Composer(a) => shortcuts::run(ctx, Shortcut::Composer, a).await,
        Command::Php(a) => shortcuts::run(ctx, Shortcut::Php, a).await,
        Command::Tinker => {
            let none = crate::cli::PassArgs { args: Vec::new() };
            shortcuts::run(ctx, Shortcut::Tinker, none).await
        }
        Command::Psql(a) => shortcuts::run(ctx, Shortcut::Psql, a).await,
        Command::RedisCli(a) => shortcuts::run(ctx, Shortcut::RedisCli, a).await,
        Command::Shell(a) => shortcuts::shell(ctx, a).await,
        Command::Db(c) => db::run(ctx, c).await,
        Command::Xdebug(a) => xdebug::run(ctx, a).await,
        Command::Ls(a) => ls::run(ctx, a).await,
        Command::Open(a) => open::run(ctx, a).await,
        Command::Ui(a) => ui::run(ctx, a).await,
        Command::Trust(a) => trust::run(ctx, a).await,
        Command::Custom(words) => custom::run(ctx, words).await,
    }
}

/// A usage error for the first name that is not a service of the stack.
pub fn check_services(stack: &Stack, names: &[String]) -> Result<(), Failure> {
    match names.iter().find(|n| !stack.services.contains_key(*n)) {
        Some(n) => Err(unknown_service(stack, n)),
        None => Ok(()),
    }
}

/// `service `apq` is not in the stack`, with the nearest name if one is close.
fn unknown_service(stack: &Stack, name: &str) -> Failure {
    let close = stack
        .services
        .keys()
        .find(|k| crate::config::similar(k, name))
        .cloned();
    let known: Vec<&str> = stack.services.keys().map(String::as_str).collect();
    let help = match close {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("the stack's services: {}", known.join(", ")),
    };
    Failure::new(
        UnknownService {
            name: name.to_string(),
            help,
        },
        2,
    )
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no devenv project `{project}` is on the engine, and there is no stack file here")]
#[diagnostic(
    code(devenv::no_project),
    help("`devenv ls` lists the projects on the engine; or run devenv in the project's folder")
)]
pub struct NoSuchProject {
    pub project: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("service `{name}` is not in the stack")]
#[diagnostic(code(devenv::unknown_service), help("{help}"))]
pub struct UnknownService {
    pub name: String,
    pub help: String,
}

/// The container of `service`, or a usage error naming what exists.
pub async fn service_container(
    engine: &Engine,
    stack: &Stack,
    service: &str,
) -> Result<String, Failure> {
    if !stack.services.contains_key(service) {
        return Err(unknown_service(stack, service));
    }
    let containers = crate::lifecycle::owned_containers(engine, stack).await?;
    containers
        .into_iter()
        .find(|c| c.service == service && !c.oneoff && c.state == "running")
        .map(|c| c.id)
        .ok_or_else(|| {
            Failure::new(
                NotRunning {
                    service: service.to_string(),
                },
                1,
            )
        })
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("service `{service}` is not running")]
#[diagnostic(
    code(devenv::not_running),
    help("start it with `devenv up -d {service}`")
)]
pub struct NotRunning {
    pub service: String,
}

/// `devenv export`: flags to settings, then the export command.
fn export_cmd(ctx: &Context, a: crate::cli::ExportArgs) -> Outcome {
    use crate::cli::{EnvArg, FormatArg};
    use crate::export::{Env, ExportOptions, Format};
    let opts = ExportOptions {
        env: a.env.map(|e| match e {
            EnvArg::Dev => Env::Dev,
            EnvArg::Staging => Env::Staging,
            EnvArg::Production => Env::Production,
        }),
        format: match a.format {
            FormatArg::Kustomize => Format::Kustomize,
            FormatArg::Plain => Format::Plain,
            FormatArg::Helm => Format::Helm,
        },
        image_registry: a.image_registry,
        tag: a.tag,
        istio: a.istio,
        commit: None,
    };
    let stack = ctx.stack()?;
    let opts = ExportOptions {
        commit: export::checkout_commit(&stack.root),
        ..opts
    };
    let ci =
        a.ci.map(|crate::cli::CiArg::Github| crate::export::ci::CiOptions {
            ci: crate::export::ci::Ci::Github,
            manifests: a.manifests.unwrap_or_else(|| "k8s".into()),
        });
    let default_out = if ci.is_some() {
        ".github/workflows"
    } else {
        "k8s"
    };
    let settings = export::ExportSettings {
        stack,
        opts,
        out_dir: a.output.unwrap_or_else(|| default_out.into()),
        check: a.check,
        force: a.force,
        ci,
    };
    export::run(&settings, &mut crate::ui::Stream::Out).map_err(|e| {
        let code = e.exit_code();
        Failure::new(e, code)
    })
}
