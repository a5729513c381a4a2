//! `devenv export --k8s`: writes the manifests export renders, or with
//! `--check DIR` reads a tree written earlier and reports the drift;
//! `devenv export --ci github` writes the CI workflows, with the same rules
//! (a file without devenv's header is never overwritten unless `--force`).

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
    /// Overwrite files devenv did not write (a symlink is refused still).
    pub force: bool,
    /// `--ci`: write the CI workflows instead of the manifests.
    pub ci: Option<export::ci::CiOptions>,
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
    #[error("export would overwrite {} that devenv did not write: {}", if paths.len() == 1 { "a file" } else { "files" }, list(paths))]
    #[diagnostic(help(
        "move them away or export elsewhere with `-o DIR`; `--force` overwrites them"
    ))]
    NotOurs { paths: Vec<PathBuf> },
    #[error("export does not write through a symlink: `{}` is one", path.display())]
    #[diagnostic(help(
        "replace the link with a real folder or file, or export elsewhere with `-o DIR`"
    ))]
    Symlink { path: PathBuf },
    #[error("cannot write `{}`: it is a folder", path.display())]
    #[diagnostic(help("move the folder away or export elsewhere with `-o DIR`"))]
    NotAFile { path: PathBuf },
}

/// Paths in backticks, comma-separated.
fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ExportCommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportCommandError::Export(err) => err.exit_code(),
            ExportCommandError::Read { .. } | ExportCommandError::NotOurs { .. } => 2,
            ExportCommandError::Write { .. }
            | ExportCommandError::Report { .. }
            | ExportCommandError::Symlink { .. }
            | ExportCommandError::NotAFile { .. } => 1,
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
    if let Some(ci) = &settings.ci {
        let files = export::ci::render(&settings.stack, &settings.opts, ci)?;
        write_files(settings, &files, out)?;
        let needed = export::ci::inputs(&settings.stack, &settings.opts, ci)?;
        if !needed.is_empty() {
            writeln!(out, "before the workflows deploy, provide:").map_err(report)?;
            for line in &needed {
                writeln!(out, "  {line}").map_err(report)?;
            }
        }
        writeln!(out, "and once, outside the repository:").map_err(report)?;
        for line in export::ci::github_settings() {
            writeln!(out, "  {line}").map_err(report)?;
        }
        return Ok(0);
    }
    let files = export::render(&settings.stack, &settings.opts)?;
    write_files(settings, &files, out)?;
    let needed = export::inputs(&settings.stack, &settings.opts)?;
    if !needed.is_empty() {
        writeln!(out, "before deploying, provide:").map_err(report)?;
        for line in &needed {
            writeln!(out, "  {line}").map_err(report)?;
        }
    }
    Ok(0)
}

/// Writes the rendered files, all checked first, and notes the files of an
/// earlier export that this one no longer writes.
fn write_files(
    settings: &ExportSettings,
    files: &BTreeMap<PathBuf, String>,
    out: &mut dyn Write,
) -> Result<(), ExportCommandError> {
    let report = |source| ExportCommandError::Report { source };
    // Every file is checked before any is written: a refusal changes nothing.
    preflight(&settings.out_dir, files.keys(), settings.force)?;
    // The folders above the output (`.github` of `.github/workflows`) are
    // the user's path to it: made when missing, as `-o` names them.
    if let Some(parent) = settings.out_dir.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            fs::create_dir_all(parent).map_err(|source| ExportCommandError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
    }
    for (relative, text) in files {
        write_file(&settings.out_dir, relative, text)?;
    }
    // Files of an earlier export that this one no longer writes would still be
    // read by `--check`; removing them is the user's call, not ours.
    if settings.out_dir.is_dir() {
        // The workflows' folder holds the user's own workflows: only ours are noted.
        for stale in read_tree(&settings.out_dir)?
            .iter()
            .filter(|(path, text)| {
                !files.contains_key(*path) && (settings.ci.is_none() || text.starts_with(OURS))
            })
            .map(|(path, _)| path)
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
    Ok(())
}

/// What every file export writes starts with (`# generated by `devenv
/// export --k8s`…`): a file without it is the user's.
const OURS: &str = "# generated by `devenv export";

/// Refuses, before anything is written, a symlink at the output folder, at a
/// folder under it or at a file export would write, a folder where a file
/// goes, and (unless `force`) a file devenv did not write.
fn preflight<'a>(
    out_dir: &Path,
    files: impl Iterator<Item = &'a PathBuf>,
    force: bool,
) -> Result<(), ExportCommandError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportCommandError::Read { path, source }
    };
    let mut not_ours = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for relative in files {
        // The output folder itself, each folder under it, then the file.
        let mut at = out_dir.to_path_buf();
        let mut steps = vec![at.clone()];
        for part in relative.components() {
            at.push(part);
            steps.push(at.clone());
        }
        let last = steps.len() - 1;
        for (i, path) in steps.into_iter().enumerate() {
            if !seen.insert(path.clone()) {
                continue;
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(read_err(&path)(e)),
            };
            if meta.file_type().is_symlink() {
                return Err(ExportCommandError::Symlink { path });
            }
            if i < last {
                continue;
            }
            if meta.is_dir() {
                return Err(ExportCommandError::NotAFile { path });
            }
            let mut head = [0u8; OURS.len()];
            let n = read_prefix(&path, &mut head).map_err(read_err(&path))?;
            if !force && &head[..n] != OURS.as_bytes() {
                not_ours.push(path);
            }
        }
    }
    if not_ours.is_empty() {
        Ok(())
    } else {
        Err(ExportCommandError::NotOurs { paths: not_ours })
    }
}

/// Reads up to `buf.len()` bytes from the start of a file.
fn read_prefix(path: &Path, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            read => n += read,
        }
    }
    Ok(n)
}

/// Writes one file under `out_dir` without following a symlink: folders are
/// made one at a time and must be real folders, and the text goes to a new
/// file beside the target (made with `create_new`, which never follows a
/// link) that is then renamed over it (a rename replaces a link planted
/// since the check, never what it points to).
fn write_file(out_dir: &Path, relative: &Path, text: &str) -> Result<(), ExportCommandError> {
    let path = out_dir.join(relative);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportCommandError::Write { path, source }
    };
    let mut dir = out_dir.to_path_buf();
    let parents: Vec<_> = relative
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .collect();
    for part in std::iter::once(None).chain(parents.into_iter().map(Some)) {
        if let Some(part) = part {
            dir.push(part);
        }
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ExportCommandError::Symlink { path: dir });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(write_err(&dir))?;
            }
            Err(e) => return Err(write_err(&dir)(e)),
        }
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.devenv-{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(write_err(&temp))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| fs::rename(&temp, &path));
    if let Err(e) = written {
        // Only the file made just above (`create_new`): ours to remove.
        let _ = fs::remove_file(&temp);
        return Err(write_err(&path)(e));
    }
    Ok(())
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
            force: false,
            ci: None,
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

    fn settings_in(dir: &Path, force: bool) -> ExportSettings {
        ExportSettings {
            stack: laravel_stack(),
            opts: ExportOptions {
                commit: Some("0123abcd".into()),
                ..Default::default()
            },
            out_dir: dir.join("k8s"),
            check: None,
            force,
            ci: None,
        }
    }

    /// Every file under `dir` with its content, to prove nothing changed.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        walkdir(dir)
            .into_iter()
            .map(|p| {
                let bytes = fs::read(&p).unwrap_or_default();
                (p, bytes)
            })
            .collect()
    }

    fn walkdir(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    pending.push(path.clone());
                }
                out.push(path);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn r22_a_file_devenv_did_not_write_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        assert_eq!(run(&settings_in(dir.path(), false), &mut out).unwrap(), 0);
        let ours = dir.path().join("k8s/base/app.yaml");
        assert!(
            ours.is_file(),
            "the example exports `base/app.yaml`: {:?}",
            walkdir(dir.path())
        );
        // Export again over its own files: fine.
        assert_eq!(run(&settings_in(dir.path(), false), &mut out).unwrap(), 0);

        fs::write(&ours, "# my own app.yaml\nkind: ConfigMap\n").unwrap();
        let before = snapshot(dir.path());
        let err = run(&settings_in(dir.path(), false), &mut out).unwrap_err();
        assert!(
            matches!(&err, ExportCommandError::NotOurs { paths } if paths == std::slice::from_ref(&ours)),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("base/app.yaml"), "{err}");
        assert_eq!(snapshot(dir.path()), before, "a refusal changes nothing");

        assert_eq!(run(&settings_in(dir.path(), true), &mut out).unwrap(), 0);
        assert!(fs::read_to_string(&ours).unwrap().starts_with(OURS));
    }

    #[test]
    fn r22_export_never_writes_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("bashrc");
        fs::write(&victim, "keep me\n").unwrap();
        let mut out = Vec::new();
        // A link at a file export writes, at a folder under the output and
        // at the output folder itself: each refused, even with `--force`,
        // and nothing outside is touched.
        for (link, target) in [
            ("k8s/base/app.yaml", victim.clone()),
            ("k8s/base", outside.path().to_path_buf()),
            ("k8s", outside.path().to_path_buf()),
        ] {
            let _ = fs::remove_dir_all(dir.path().join("k8s"));
            let at = dir.path().join(link);
            fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&target, &at).unwrap();
            let before = snapshot(dir.path());
            for force in [false, true] {
                let err = run(&settings_in(dir.path(), force), &mut out).unwrap_err();
                assert!(
                    matches!(&err, ExportCommandError::Symlink { path } if path == &at),
                    "{link}: {err:?}"
                );
                assert_eq!(err.exit_code(), 1);
            }
            assert_eq!(snapshot(dir.path()), before, "{link}: nothing written");
            assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
            assert_eq!(walkdir(outside.path()), vec![victim.clone()], "{link}");
        }
        // A link planted after the check is replaced, not followed.
        let _ = fs::remove_file(dir.path().join("k8s"));
        fs::create_dir_all(dir.path().join("k8s/base")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("k8s/base/app.yaml")).unwrap();
        write_file(&dir.path().join("k8s"), Path::new("base/app.yaml"), "x").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("k8s/base/app.yaml")).unwrap(),
            "x"
        );
    }
}
