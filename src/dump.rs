//! Database dumps in and out of the stack's PostgreSQL, with the server's
//! own `psql`, `pg_restore` and `pg_dump` run inside its container (so the
//! client always matches the server): plain SQL, gzipped SQL or the custom
//! format of `pg_dump -Fc`, told apart by their first bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::database::Database;
use crate::engine::{Engine, EngineError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DumpError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error("cannot read `{}`", path.display())]
    #[diagnostic(code(devenv::db::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write `{}`", path.display())]
    #[diagnostic(code(devenv::db::write))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{}` exists already", path.display())]
    #[diagnostic(
        code(devenv::db::file_exists),
        help("pass `--force` to overwrite it, or give another file name")
    )]
    Exists { path: PathBuf },

    #[error("`{program}` failed with exit code {code}")]
    #[diagnostic(code(devenv::db::client_failed), help("{help}"))]
    Client {
        program: &'static str,
        code: i64,
        help: String,
    },
}

/// The formats devenv reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sql,
    GzipSql,
    /// `pg_dump -Fc`.
    Custom,
}

impl Format {
    /// A file's format from its first bytes.
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(b"PGDMP") {
            Format::Custom
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Format::GzipSql
        } else {
            Format::Sql
        }
    }

    /// The format a file name asks for: `.sql`, `.sql.gz`/`.gz`, else custom.
    pub fn for_name(path: &Path) -> Format {
        let name = path.to_string_lossy();
        if name.ends_with(".gz") {
            Format::GzipSql
        } else if name.ends_with(".sql") {
            Format::Sql
        } else {
            Format::Custom
        }
    }
}

/// Where an import's file is copied in the database's container while it
/// loads (the pid makes it this run's).
pub fn import_path(pid: u32) -> String {
    format!("{IMPORT_FILE_PREFIX}{pid}")
}

/// What every import's file in the container's `/tmp` is named from.
pub const IMPORT_FILE_PREFIX: &str = "/tmp/devenv-import-";

/// Loads `file` into the empty database `into` on the server; returns the
/// `ERROR:` lines the client printed, which a dump from another server may
/// have (roles that do not exist here), so the caller can show them.
pub async fn load(
    engine: &Engine,
    db: &Database,
    into: &str,
    file: &Path,
    mut on_output: impl FnMut(&str) + Send,
) -> Result<Vec<String>, DumpError> {
    let inside = import_path(std::process::id());
    let format = copy_in(engine, db, file, &inside).await?;
    let (program, command) = load_command(format, &db.user, into, &inside);
    let mut errors = Vec::new();
    let mut pending = String::new();
    let code = engine
        .exec(&db.container, command, db.client_env(), None, |chunk| {
            pending.push_str(chunk);
            while let Some(at) = pending.find('\n') {
                let line: String = pending.drain(..=at).collect();
                let line = line.trim_end();
                if line.contains("ERROR:") {
                    errors.push(line.to_string());
                }
                on_output(line);
            }
        })
        .await;
    // The copy in the container's /tmp goes whatever happened (only that path).
    let _ = engine
        .exec(
            &db.container,
            words(&["rm", "-f", &inside]),
            vec![],
            None,
            |_| {},
        )
        .await;
    let code = code?;
    // pg_restore exits 1 when it skipped statements; the lines say which.
    let skipped_some = program == "pg_restore" && !errors.is_empty();
    if code != 0 && !skipped_some {
        return Err(DumpError::Client {
            program,
            code,
            help: format!(
                "its output is above; `{}` is untouched: the dump was loading into a database of its own",
                db.name
            ),
        });
    }
    Ok(errors)
}

/// Copies `file` into the database's container at `inside` (a path under
/// `/tmp`); returns its format, told from its first bytes.
async fn copy_in(
    engine: &Engine,
    db: &Database,
    file: &Path,
    inside: &str,
) -> Result<Format, DumpError> {
    let read = |source| DumpError::Read {
        path: file.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(file).map_err(read)?;
    let format = Format::sniff(&bytes[..bytes.len().min(8)]);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        inside.trim_start_matches("/tmp/"),
        bytes.as_slice(),
    )
    .map_err(read)?;
    let archive = tar.into_inner().map_err(read)?;
    drop(bytes);
    engine
        .upload_archive(&db.container, "/tmp", archive)
        .await?;
    Ok(format)
}

/// The client that loads a file of `format` at `inside` into database
/// `name` as `user`, and its command line: `psql` for SQL (gunzipped on
/// the way for gzipped SQL), `pg_restore` for the custom format.
fn load_command(
    format: Format,
    user: &str,
    name: &str,
    inside: &str,
) -> (&'static str, Vec<String>) {
    match format {
        Format::Sql => (
            "psql",
            words(&[
                "psql",
                "-q",
                "-o",
                "/dev/null",
                "-U",
                user,
                "-d",
                name,
                "-f",
                inside,
            ]),
        ),
        Format::GzipSql => (
            "psql",
            words(&[
                "sh",
                "-c",
                // A pipeline's status is psql's: a truncated file would load
                // half and look fine, so the whole file is checked first.
                "gunzip -t \"$1\" && gunzip -c \"$1\" | psql -q -o /dev/null -U \"$2\" -d \"$3\"",
                "sh",
                inside,
                user,
                name,
            ]),
        ),
        Format::Custom => (
            "pg_restore",
            words(&[
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "-U",
                user,
                "-d",
                name,
                inside,
            ]),
        ),
    }
}

/// Writes the app database to `file` in the format its name asks for. The
/// dump goes to a partial file beside it, renamed into place only once
/// complete, so a failed export leaves no half file and replaces nothing.
pub async fn save(
    engine: &Engine,
    db: &Database,
    file: &Path,
    force: bool,
) -> Result<u64, DumpError> {
    if file.exists() && !force {
        return Err(DumpError::Exists {
            path: file.to_path_buf(),
        });
    }
    let partial = file.with_file_name(format!(
        ".{}.devenv-partial",
        file.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let write = |source| DumpError::Write {
        path: file.to_path_buf(),
        source,
    };
    let mut out = std::fs::File::create(&partial).map_err(write)?;
    let errors = format!("/tmp/devenv-export-{}.err", std::process::id());
    let pipe = match Format::for_name(file) {
        Format::Sql => "",
        Format::GzipSql => " | gzip -c",
        Format::Custom => "",
    };
    let flags = if Format::for_name(file) == Format::Custom {
        "-Fc"
    } else {
        "--no-owner"
    };
    // Only stdout is the dump: the client's messages go to a file read on failure.
    let script = format!("pg_dump {flags} -U \"$1\" -d \"$2\" 2>\"$3\"{pipe}");
    let mut written = 0u64;
    let mut failed = None;
    let code = engine
        .exec_bytes(
            &db.container,
            words(&["sh", "-c", &script, "sh", &db.user, &db.name, &errors]),
            db.client_env(),
            None,
            |chunk| {
                if failed.is_none() {
                    match out.write_all(chunk) {
                        Ok(()) => written += chunk.len() as u64,
                        Err(e) => failed = Some(e),
                    }
                }
            },
        )
        .await;
    let message = engine
        .download_file(&db.container, &errors)
        .await
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let _ = engine
        .exec(
            &db.container,
            words(&["rm", "-f", &errors]),
            vec![],
            None,
            |_| {},
        )
        .await;
    let result = match (code, failed) {
        (Err(e), _) => Err(e.into()),
        (Ok(_), Some(e)) => Err(write(e)),
        (Ok(0), None) if message.is_empty() => out
            .sync_all()
            .and_then(|()| std::fs::rename(&partial, file))
            .map(|()| written)
            .map_err(write),
        (Ok(code), None) => Err(DumpError::Client {
            program: "pg_dump",
            code: if code == 0 { 1 } else { code },
            help: message,
        }),
    };
    if result.is_err() {
        // Only the partial file this run made.
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes_and_names() {
        assert_eq!(Format::sniff(b"PGDMP\x01\x0e"), Format::Custom);
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8, 0]), Format::GzipSql);
        assert_eq!(Format::sniff(b"--\n-- PostgreSQL"), Format::Sql);
        assert_eq!(Format::for_name(Path::new("a.sql")), Format::Sql);
        assert_eq!(Format::for_name(Path::new("a.sql.gz")), Format::GzipSql);
        assert_eq!(Format::for_name(Path::new("a.dump")), Format::Custom);
    }
}
