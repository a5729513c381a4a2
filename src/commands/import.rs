//! `devenv import`: reads Compose files, writes `dev.toml`, and lists what
//! could not be carried over.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::import::{grouped, import_compose, ImportError};

/// The files Compose itself reads when none is named, in its order.
const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

pub struct ImportSettings {
    /// Compose files, merged in order; empty means "find one here".
    pub files: Vec<PathBuf>,
    pub output: PathBuf,
    pub force: bool,
}

/// Runs the import; warnings and a summary line go to `out`.
pub fn run(settings: &ImportSettings, out: &mut dyn Write) -> Result<(), ImportError> {
    // Refuse before doing any work, so the user is not shown warnings for
    // an import that then goes nowhere.
    if !settings.force && settings.output.exists() {
        return Err(ImportError::OutputExists {
            path: settings.output.clone(),
        });
    }
    let files = match settings.files.as_slice() {
        [] => default_files(Path::new("."))?,
        files => files.to_vec(),
    };
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let text = fs::read_to_string(&path).map_err(|source| ImportError::Read {
            path: path.clone(),
            source,
        })?;
        sources.push((path, text));
    }
    let dotenv = project_env(&sources[0].0)?;
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| dotenv.get(name).cloned())
    };
    let out_dir = match settings.output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let imported = import_compose(&sources, &out_dir, &lookup)?;
    write_output(settings, &imported.toml)?;

    let report = |err| ImportError::Report { source: err };
    for note in &imported.notes {
        writeln!(out, "warning: {note}").map_err(report)?;
    }
    for line in grouped(&imported.warnings) {
        writeln!(out, "warning: {line}").map_err(report)?;
    }
    let names: Vec<String> = sources
        .iter()
        .map(|(path, _)| format!("`{}`", path.display()))
        .collect();
    let warned = match grouped(&imported.warnings).len() {
        0 => String::new(),
        1 => ", 1 key not carried over".to_owned(),
        n => format!(", {n} keys not carried over"),
    };
    writeln!(
        out,
        "wrote `{}` from {}{warned}",
        settings.output.display(),
        names.join(", ")
    )
    .map_err(report)
}

/// The project's `.env`, beside the first Compose file, read as Compose
/// reads it: variables come from the environment first, then from it.
fn project_env(first: &Path) -> Result<std::collections::HashMap<String, String>, ImportError> {
    let path = first.parent().unwrap_or(Path::new("")).join(".env");
    if !path.is_file() {
        return Ok(Default::default());
    }
    let text = fs::read_to_string(&path).map_err(|source| ImportError::Read {
        path: path.clone(),
        source,
    })?;
    crate::config::dotenv::parse(&text, &|name| std::env::var(name).ok())
        .map(|vars| vars.into_iter().collect())
        .map_err(|message| ImportError::Read {
            path,
            source: io::Error::other(format!(
                "line {}, column {}: {}",
                message.line, message.column, message.reason
            )),
        })
}

/// `compose.yaml` and the like, plus its `.override` file when there is one,
/// as `docker compose` does without `-f`.
fn default_files(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let Some(base) = DEFAULT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
    else {
        return Err(ImportError::NoComposeFile {
            dir: dir.to_owned(),
        });
    };
    let mut files = vec![base.clone()];
    if let (Some(stem), Some(ext)) = (base.file_stem(), base.extension()) {
        let name = format!(
            "{}.override.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        );
        let path = dir.join(name);
        if path.is_file() {
            files.push(path);
        }
    }
    Ok(files)
}

fn write_output(settings: &ImportSettings, toml: &str) -> Result<(), ImportError> {
    let path = &settings.output;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| ImportError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if settings.force {
        options.create(true).truncate(true);
    } else {
        // Still no clobbering if the file appeared while we were converting.
        options.create_new(true);
    }
    let file = options.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => ImportError::OutputExists { path: path.clone() },
        _ => ImportError::Write {
            path: path.clone(),
            source,
        },
    });
    file?
        .write_all(toml.as_bytes())
        .map_err(|source| ImportError::Write {
            path: path.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPOSE: &str =
        "services:\n  db:\n    image: postgres:16\n    logging:\n      driver: none\n";

    fn settings(dir: &Path, force: bool) -> ImportSettings {
        ImportSettings {
            files: vec![dir.join("docker-compose.yml")],
            output: dir.join("dev.toml"),
            force,
        }
    }

    #[test]
    fn writes_dev_toml_and_reports_warnings() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("docker-compose.yml"), COMPOSE).unwrap();
        let mut out = Vec::new();
        run(&settings(dir.path(), false), &mut out).unwrap();
        let written = fs::read_to_string(dir.path().join("dev.toml")).unwrap();
        assert!(
            written.contains("[services.db]\nimage = \"postgres:16\""),
            "{written}"
        );
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("warning: `logging` not carried over from service `db`\n"),
            "{out}"
        );
        assert!(out.contains("1 key not carried over"), "{out}");
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("docker-compose.yml"), COMPOSE).unwrap();
        fs::write(dir.path().join("dev.toml"), "# mine\n").unwrap();
        let err = run(&settings(dir.path(), false), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ImportError::OutputExists { .. }));
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            fs::read_to_string(dir.path().join("dev.toml")).unwrap(),
            "# mine\n"
        );

        run(&settings(dir.path(), true), &mut Vec::new()).unwrap();
        assert!(fs::read_to_string(dir.path().join("dev.toml"))
            .unwrap()
            .contains("[services.db]"));
    }

    #[test]
    fn finds_the_default_file_and_its_override() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            default_files(dir.path()),
            Err(ImportError::NoComposeFile { .. })
        ));
        fs::write(dir.path().join("docker-compose.yml"), COMPOSE).unwrap();
        fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
        fs::write(dir.path().join("compose.override.yaml"), COMPOSE).unwrap();
        let files = default_files(dir.path()).unwrap();
        assert_eq!(
            files,
            [
                dir.path().join("compose.yaml"),
                dir.path().join("compose.override.yaml")
            ]
        );
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&settings(dir.path(), false), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ImportError::Read { .. }));
        assert_eq!(err.exit_code(), 2);
    }
}
