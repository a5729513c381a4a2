//! `devenv export --k8s`: writes the manifests export renders, or with
//! `--check DIR` reads a tree written earlier and reports the drift.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config::model::Stack;
use crate::export::{self, ExportError, ExportOptions};

pub struct ExportSettings {
    pub stack: Stack,
    pub opts: ExportOptions,
    /// Where the files go (`k8s/` by default).
    pub out_dir: PathBuf,
    /// Compare with this tree instead of writing.
    pub check: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExportCommandError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Export(#[from] ExportError),
    #[error("cannot write `{path}`")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read `{path}`")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the report")]
    Report { source: io::Error },
}

impl ExportCommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportCommandError::Export(err) => err.exit_code(),
            ExportCommandError::Read { .. } => 2,
            ExportCommandError::Write { .. } | ExportCommandError::Report { .. } => 1,
        }
    }
}

/// Writes the files (exit 0), or checks a tree: 0 when it agrees with the stack, 1 when it drifted.
pub fn run(settings: &ExportSettings, out: &mut dyn Write) -> Result<u8, ExportCommandError> {
    let report = |source| ExportCommandError::Report { source };
    if let Some(dir) = &settings.check {
        let existing = read_tree(dir)?;
        let drifts = export::check(&settings.stack, &settings.opts, &existing)?;
        if drifts.is_empty() {
            writeln!(out, "`{}` agrees with the stack", dir.display()).map_err(report)?;
            return Ok(0);
        }
        for drift in &drifts {
            writeln!(out, "{drift}").map_err(report)?;
        }
        let noun = if drifts.len() == 1 {
            "difference"
        } else {
            "differences"
        };
        writeln!(
            out,
            "{} {noun} between the stack and `{}`; export again, or list intentional ones in `[k8s] ignore_drift`",
            drifts.len(),
            dir.display()
        )
        .map_err(report)?;
        return Ok(1);
    }
    let files = export::render(&settings.stack, &settings.opts)?;
    for (relative, text) in &files {
        let path = settings.out_dir.join(relative);
        let write_err = |source| ExportCommandError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(write_err)?;
        }
        fs::write(&path, text).map_err(write_err)?;
    }
    // Files of an earlier export that this one no longer writes would still be
    // read by `--check`; removing them is the user's call, not ours.
    if settings.out_dir.is_dir() {
        for stale in read_tree(&settings.out_dir)?
            .keys()
            .filter(|path| !files.contains_key(*path))
        {
            writeln!(
                out,
                "note: `{}` is not written by this export any more",
                settings.out_dir.join(stale).display()
            )
            .map_err(report)?;
        }
    }
    let n = files.len();
    writeln!(
        out,
        "wrote {n} file{} to `{}`",
        if n == 1 { "" } else { "s" },
        settings.out_dir.display()
    )
    .map_err(report)?;
    let needed = export::inputs(&settings.stack, &settings.opts)?;
    if !needed.is_empty() {
        writeln!(out, "before deploying, provide:").map_err(report)?;
        for line in &needed {
            writeln!(out, "  {line}").map_err(report)?;
        }
    }
    Ok(0)
}

/// The checkout's commit (short), the default image tag, as Skaffold's git
/// tagger does; `None` outside a git checkout or without git.
pub fn checkout_commit(dir: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

/// The YAML files under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> Result<BTreeMap<PathBuf, String>, ExportCommandError> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let read_err = |source| ExportCommandError::Read {
            path: current.clone(),
            source,
        };
        for entry in fs::read_dir(&current).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                let text =
                    fs::read_to_string(&path).map_err(|source| ExportCommandError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                files.insert(relative, text);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::laravel_stack;

    #[test]
    fn export_then_check_agrees_and_an_edit_drifts() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = ExportSettings {
            stack: laravel_stack(),
            opts: ExportOptions {
                commit: Some("0123abcd".into()),
                ..Default::default()
            },
            out_dir: dir.path().join("k8s"),
            check: None,
        };
        let mut out = Vec::new();
        assert_eq!(run(&settings, &mut out).unwrap(), 0);
        settings.check = Some(settings.out_dir.clone());
        assert_eq!(run(&settings, &mut out).unwrap(), 0);

        let app = settings.stack.services.get_mut("app").unwrap();
        app.env.insert(
            "FEATURE_X".into(),
            crate::config::model::EnvValue {
                value: "on".into(),
                secret: false,
            },
        );
        let mut report = Vec::new();
        assert_eq!(run(&settings, &mut report).unwrap(), 1);
        let report = String::from_utf8(report).unwrap();
        assert!(
            report.contains("`ConfigMap/app-env` `data.FEATURE_X` is in the stack"),
            "{report}"
        );
    }
}
