//! What can go wrong while watching or syncing, and the exit code each
//! ends a command with.

use std::path::{Path, PathBuf};

use crate::engine::EngineError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WatchError {
    #[error("no service to watch has `watch` rules")]
    #[diagnostic(
        code(devenv::watch::no_rules),
        help("add `[[services.NAME.watch]]` rules to dev.toml, e.g. `path = \"src\"`, `action = \"sync\"`, `target = \"/app\"`")
    )]
    NoRules,

    #[error("invalid ignore pattern `{pattern}` in a watch rule of service `{service}`")]
    #[diagnostic(
        code(devenv::watch::pattern),
        help("`ignore` takes .gitignore patterns, e.g. `vendor/` or `*.log`")
    )]
    Pattern {
        service: String,
        pattern: String,
        #[source]
        source: ignore::Error,
    },

    #[error("watch path `{}` of service `{service}` does not exist", path.display())]
    #[diagnostic(
        code(devenv::watch::missing),
        help("create it, or fix `path` in the rule (it is relative to dev.toml)")
    )]
    MissingPath { service: String, path: PathBuf },

    #[error("the inotify watch limit is reached (at `{}`)", path.display())]
    #[diagnostic(
        code(devenv::watch::limit),
        help("raise it with `sudo sysctl fs.inotify.max_user_watches=524288` (and a line in /etc/sysctl.d/ to keep it), or skip big folders with `ignore`")
    )]
    Limit { path: PathBuf },

    #[error("cannot watch `{}`", path.display())]
    #[diagnostic(code(devenv::watch::notify))]
    Notify {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },

    #[error("service `{service}` is not running")]
    #[diagnostic(
        code(devenv::watch::not_running),
        help("start it with `devenv up -d {service}`; it is synced as soon as it runs")
    )]
    NotRunning { service: String },

    #[error("{what} in container `{id}` failed: {detail}")]
    #[diagnostic(code(devenv::watch::container))]
    Container {
        id: String,
        what: String,
        detail: String,
    },

    #[error("cannot read `{}`", path.display())]
    #[diagnostic(code(devenv::watch::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot build the archive to upload")]
    #[diagnostic(code(devenv::watch::archive))]
    Archive {
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),
}

impl WatchError {
    pub(super) fn from_notify(source: notify::Error, path: &Path) -> WatchError {
        match source.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::Limit {
                path: path.to_path_buf(),
            },
            _ => WatchError::Notify {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// Usage errors are 2, everything else a failed job (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            WatchError::NoRules | WatchError::Pattern { .. } | WatchError::MissingPath { .. } => 2,
            _ => 1,
        }
    }
}
