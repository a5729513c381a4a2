//! The command line: clap structs only. `-f`, `-p` and `--profile` go
//! before the command, as with compose (`logs -f` means follow). Commands turn these into settings
//! before any domain code sees them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "devenv",
    version,
    about = "Daemonless local development environments for Laravel teams",
    propagate_version = true
)]
pub struct Cli {
    /// Stack file (default: `dev.toml` here or in a folder above)
    #[arg(short = 'f', long = "file", env = "DEVENV_FILE")]
    pub file: Option<PathBuf>,
    /// Project name (default: `[project].name`, else the folder's name)
    #[arg(short = 'p', long = "project-name", env = "DEVENV_PROJECT")]
    pub project: Option<String>,
    /// Enable services of this profile (repeatable)
    #[arg(long = "profile", env = "DEVENV_PROFILES", value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// How to show progress
    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Bars on a terminal, plain lines otherwise
    Auto,
    /// Plain lines
    Plain,
    /// Nothing but errors and results
    Quiet,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start the stack, wait until it is ready, then follow its logs
    Up(UpArgs),
    /// Stop and remove containers and the network (named volumes stay unless -v)
    Down(DownArgs),
    /// List the stack's containers
    Ps(PsArgs),
    /// Show service logs
    Logs(LogsArgs),
    /// Run a command in a running service container
    Exec(ExecArgs),
    /// Run a one-off command in a new container of a service
    Run(RunArgs),
    /// Run the PHPUnit suite in containers, against a database cloned from a migrated template
    Test(TestArgs),
    /// Stop services without removing them
    Stop(ServicesArgs),
    /// Start stopped services
    Start(ServicesArgs),
    /// Restart services
    Restart(ServicesArgs),
    /// Sync source changes into running services by their `watch` rules, until Ctrl-C
    Watch(ServicesArgs),
    /// Run the services' migrations (their `migrate` hooks) now
    Migrate(HookArgs),
    /// Run the services' seeders and apply `seeds/*.sql` now
    Seed(HookArgs),
    /// Print the fully resolved stack (secrets masked)
    Config(ConfigArgs),
    /// Bring an existing docker-compose stack over into dev.toml
    Import(ImportArgs),
    /// Write Kubernetes manifests for the stack, or check them for drift
    Export(ExportArgs),
    /// Print shell completions
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to start (with their dependencies); all when none are given
    pub services: Vec<String>,
    /// Return once every service is ready instead of following logs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Rebuild images of services with `build`
    #[arg(long)]
    pub build: bool,
    /// Do not run `after_up` hooks
    #[arg(long)]
    pub no_hooks: bool,
    /// Create missing bind-mount sources as folders instead of refusing
    #[arg(long)]
    pub create_paths: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes too (their data is lost)
    #[arg(short = 'v', long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print a JSON array
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following new output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines from the end of each log
    #[arg(long)]
    pub tail: Option<usize>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub service: String,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when the command ends
    #[arg(long)]
    pub rm: bool,
    pub service: String,
    /// The command and its arguments (after `--`); default: the service's command
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Workers side by side, each with its own database; the test files are split between them
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Rebuild the template database even when the migrations did not change
    #[arg(long)]
    pub fresh: bool,
    /// Arguments for PHPUnit, unchanged (after `--`), e.g. `-- --filter test_login`
    #[arg(last = true, value_name = "PHPUNIT_ARGS")]
    pub phpunit_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Services; all when none are given
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// Services; all that have such hooks when none are given
    pub services: Vec<String>,
    /// Re-apply SQL seed files that changed since they were applied (`seed`)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Compose files, merged in order (default: compose.yaml / docker-compose.yml here)
    pub files: Vec<PathBuf>,
    /// Where to write the stack file
    #[arg(short = 'o', long, default_value = "dev.toml")]
    pub output: PathBuf,
    /// Overwrite an existing output file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Kubernetes manifests (the only target so far)
    #[arg(long, required = true)]
    pub k8s: bool,
    /// One environment (default: all three overlays, or dev for --format plain)
    #[arg(long, value_enum)]
    pub env: Option<EnvArg>,
    /// Output folder
    #[arg(short = 'o', long, default_value = "k8s")]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value_t = FormatArg::Kustomize)]
    pub format: FormatArg,
    /// Registry the app image is pushed to (e.g. an ECR repository)
    #[arg(long)]
    pub image_registry: Option<String>,
    /// Image tag of the app
    #[arg(long)]
    pub tag: Option<String>,
    /// Add Istio sidecar-injection labels
    #[arg(long)]
    pub istio: bool,
    /// Compare with an earlier export in DIR instead of writing; exit 1 on drift
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvArg {
    Dev,
    Staging,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Kustomize,
    Plain,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}
