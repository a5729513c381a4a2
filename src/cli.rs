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
    /// Project name (default: `[project].name`, else the folder's name; a
    /// second checkout of a project takes a name of its own)
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
    #[command(visible_alias = "status")]
    Ps(PsArgs),
    /// Each service's image, state, URLs and connection details (host, port, user, password, URL)
    Describe(DescribeArgs),
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
    /// `php artisan …` in the app container
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Artisan(PassArgs),
    /// `composer …` in the app container
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Composer(PassArgs),
    /// `php …` in the app container
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Php(PassArgs),
    /// `php artisan tinker` in the app container
    Tinker,
    /// `psql` on the stack's database, with its credentials
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Psql(PassArgs),
    /// `redis-cli` on the stack's Redis
    #[command(
        name = "redis-cli",
        disable_help_flag = true,
        disable_version_flag = true
    )]
    RedisCli(PassArgs),
    /// A shell in a service's container (the app's by default)
    #[command(visible_aliases = ["ssh", "bash"])]
    Shell(ShellArgs),
    /// Database snapshots, imports and exports on the stack's PostgreSQL
    #[command(subcommand)]
    Db(DbCommand),
    /// Turn Xdebug on or off in the running app, without a rebuild
    Xdebug(XdebugArgs),
    /// List every devenv project on the engine, from any folder
    Ls(PsArgs),
    /// Open a service's URL in the browser (print it where there is none);
    /// `open ui`: a running `devenv ui`'s page
    #[command(visible_alias = "launch")]
    Open(OpenArgs),
    /// A live page of the stack in the browser: services, the last `up`'s
    /// timeline, logs and actions, until Ctrl-C
    Ui(UiArgs),
    /// Trust devenv's local CA, which signs the `https://NAME.localhost` certificates
    Trust(TrustArgs),
    /// A project-defined command from `[commands.NAME]` in dev.toml (or
    /// `__complete`, which the completion scripts call)
    #[command(external_subcommand)]
    Custom(Vec<String>),
}

#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub at: UiAt,
    /// Open the page in the browser
    #[arg(long)]
    pub open: bool,
}

/// Where `devenv ui` (and `up --ui`) listens.
#[derive(Debug, Args)]
pub struct UiAt {
    /// The port (default: a free one)
    #[arg(long)]
    pub port: Option<u16>,
    /// Listen on this address instead of 127.0.0.1: other machines can
    /// reach the page (still with its token)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::IpAddr>,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Remove devenv's CA from the trust stores instead
    #[arg(long, conflicts_with = "path")]
    pub uninstall: bool,
    /// Print where the CA certificate (PEM) is, for `--cacert` and the like
    #[arg(long)]
    pub path: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Service (default: the app)
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct XdebugArgs {
    #[arg(value_enum, default_value_t = XdebugAction::Status)]
    pub action: XdebugAction,
    /// Service (default: the app)
    pub service: Option<String>,
    /// The port the IDE listens on (`on`)
    #[arg(long, default_value_t = 9003)]
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdebugAction {
    On,
    Off,
    Status,
}

#[derive(Debug, Args)]
pub struct PassArgs {
    /// Arguments passed on unchanged
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Service (default: the app)
    pub service: Option<String>,
    /// A root shell
    #[arg(long)]
    pub root: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Save the database as a snapshot (default name: the time)
    Snapshot { name: Option<String> },
    /// Put the database back as it was in a snapshot (the current content is replaced)
    Restore { name: String },
    /// List the snapshots
    Snapshots,
    /// Delete a snapshot
    DropSnapshot { name: String },
    /// Replace the database with a dump: plain SQL, gzipped SQL or `pg_dump -Fc`
    /// (a snapshot of the current content is taken first); a dump that
    /// loads with errors leaves the database as it was
    Import {
        file: PathBuf,
        /// Replace the database even if the dump loaded with errors (what
        /// loaded, without the statements that failed)
        #[arg(long)]
        allow_errors: bool,
    },
    /// Write the database to FILE: `.sql` plain, `.sql.gz` gzipped, else `pg_dump -Fc`
    Export {
        file: Option<PathBuf>,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// A database per git branch: `on`, `off`, `prune` (drop the copies of
    /// branches git no longer has); alone, switch to the checkout's branch now
    Branch {
        #[arg(value_enum)]
        action: Option<BranchAction>,
    },
    /// List the branches' databases, with their sizes
    Branches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BranchAction {
    On,
    Off,
    Prune,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to start (with their dependencies); all when none are given
    pub services: Vec<String>,
    /// Return once every service is ready instead of following logs (`--wait` as in Compose)
    #[arg(short = 'd', long, visible_alias = "wait")]
    pub detach: bool,
    /// Rebuild images of services with `build`
    #[arg(long)]
    pub build: bool,
    /// Do not run `after_up` hooks
    #[arg(long)]
    pub no_hooks: bool,
    /// Create missing bind-mount sources instead of refusing: an empty file
    /// where the name has an extension (`php.ini`), else a folder
    #[arg(long)]
    pub create_paths: bool,
    /// Print what `up` would do (create, recreate and why, start, keep, remove; images; ports) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Stop the stack when any service's container exits, and exit with its code (as in Compose)
    #[arg(long, conflicts_with = "detach")]
    pub abort_on_container_exit: bool,
    /// Exit with this service's exit code; stops the stack when any container exits (implies --abort-on-container-exit)
    #[arg(long, value_name = "SERVICE", conflicts_with = "detach")]
    pub exit_code_from: Option<String>,
    /// Serve the live page (`devenv ui`) while attached
    #[arg(long, conflicts_with_all = ["detach", "dry_run"])]
    pub ui: bool,
    #[command(flatten)]
    pub ui_at: UiAt,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes too (their data is lost); lists them and asks first on a terminal
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Do not ask before removing volumes
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print a JSON array
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Only this service
    pub service: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Show passwords and keys instead of masking them
    #[arg(long)]
    pub reveal: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following new output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines from the end of each log
    #[arg(short = 'n', long)]
    pub tail: Option<usize>,
    /// Each line behind the time the container printed it
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only lines since then: a duration back (`10m`, `1h30m`), a time
    /// (`2026-11-30T09:00:00Z`; local without a zone), a date
    /// (`2026-11-30`) or Unix seconds
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run as this user (`name`, `uid` or `uid:gid`)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Do not allocate a TTY, even on a terminal
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Set an environment variable (`KEY=VALUE`, repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    pub service: String,
    /// The command and its arguments (`--` before it is optional)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
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
    /// Write the JUnit report (every worker's, merged) to this file on the host
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
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
#[command(group(clap::ArgGroup::new("target").required(true).args(["k8s", "ci"])))]
pub struct ExportArgs {
    /// Kubernetes manifests
    #[arg(long)]
    pub k8s: bool,
    /// CI workflows that test, check, scan, build and deploy the exported manifests
    #[arg(long, value_enum, value_name = "SYSTEM", conflicts_with_all = ["k8s", "check", "env"])]
    pub ci: Option<CiArg>,
    /// One environment (default: all three overlays, or dev for --format plain)
    #[arg(long, value_enum)]
    pub env: Option<EnvArg>,
    /// Output folder (default: `k8s`, or `.github/workflows` with `--ci github`)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// With `--ci`: where the manifests are committed, relative to dev.toml's folder (default: `k8s`)
    #[arg(long, value_name = "DIR", conflicts_with = "k8s")]
    pub manifests: Option<String>,
    /// The manifests' flavour (with `--ci`: how the workflows deploy)
    #[arg(long, value_enum, default_value_t = FormatArg::Kustomize)]
    pub format: FormatArg,
    /// Registry the app image is pushed to (e.g. an ECR repository)
    #[arg(long)]
    pub image_registry: Option<String>,
    /// Image tag of the app (default: the checkout's git commit; `latest`
    /// reaches staging and production only when given here)
    #[arg(long)]
    pub tag: Option<String>,
    /// Add Istio sidecar-injection labels
    #[arg(long)]
    pub istio: bool,
    /// Compare with an earlier export in DIR (a Kustomize tree or a chart) instead of writing; exit 1 on drift
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
    /// Overwrite files devenv did not write (no `# generated by devenv` header)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvArg {
    Dev,
    Staging,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiArg {
    /// GitHub Actions workflows
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Kustomize,
    Plain,
    /// A Helm chart with one values file per environment
    Helm,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The config refuses project commands named like a built-in from its
    /// own list (it knows no CLI type): the list must be the parser's.
    #[test]
    fn the_configs_reserved_names_are_exactly_the_commands() {
        let cli = super::Cli::command();
        let mut names = vec!["help".to_string()];
        for sub in cli.get_subcommands() {
            names.push(sub.get_name().to_string());
            names.extend(sub.get_all_aliases().map(String::from));
        }
        names.sort();
        let mut reserved: Vec<String> = crate::config::commands::BUILTIN_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect();
        reserved.sort();
        assert_eq!(reserved, names);
    }
}
