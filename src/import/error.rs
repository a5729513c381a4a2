//! What can go wrong in `devenv import`, as diagnostics that point into the
//! Compose file where they can.

use std::io;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_saphyr::{Location, MessageFormatter as _};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ImportError {
    #[error("cannot read `{}`: {message}", src.name())]
    #[diagnostic(code(devenv::import::yaml))]
    Yaml {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{message}")]
        span: SourceSpan,
    },

    #[error("`{}` uses compose file format `{version}`, which devenv cannot import", src.name())]
    #[diagnostic(
        code(devenv::import::version),
        help(
            "devenv imports the Compose specification: services under a top-level `services:` key"
        )
    )]
    UnsupportedVersion {
        version: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("unsupported version")]
        span: SourceSpan,
    },

    #[error("`{}` is not a valid Compose file: {}{reason}", src.name(), if location.is_empty() { String::new() } else { format!("{location} ") })]
    #[diagnostic(
        code(devenv::import::schema),
        help("`docker compose` refuses it too; fix the file and import again")
    )]
    Schema {
        /// Where, as Compose says it: `services.web.ports.0`.
        location: String,
        /// Why, in Compose's words: `must be a string`.
        reason: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("`{file}`: {message}")]
    #[diagnostic(code(devenv::import::variable), help("{help}"))]
    Variable {
        file: String,
        message: String,
        help: String,
    },

    #[error("`{}` includes or extends itself", path.display())]
    #[diagnostic(code(devenv::import::cycle))]
    Cycle { path: PathBuf },

    #[error("service `{service}` extends `{parent}`, which does not exist")]
    #[diagnostic(code(devenv::import::extends))]
    Extends { service: String, parent: String },

    #[error("the merged compose files are not valid: {message}")]
    #[diagnostic(code(devenv::import::invalid))]
    Invalid { message: String },

    #[error("no compose file in `{}`", dir.display())]
    #[diagnostic(
        code(devenv::import::not_found),
        help(
            "looked for `compose.yaml`, `compose.yml`, `docker-compose.yml` and \
             `docker-compose.yaml`; name the file: `devenv import path/to/compose.yaml`"
        )
    )]
    NoComposeFile { dir: PathBuf },

    #[error("cannot read `{}`", path.display())]
    #[diagnostic(code(devenv::import::read))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("`{}` already exists", path.display())]
    #[diagnostic(code(devenv::import::exists), help("pass --force to overwrite it"))]
    OutputExists { path: PathBuf },

    #[error("cannot write `{}`", path.display())]
    #[diagnostic(code(devenv::import::write))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot print the import report")]
    #[diagnostic(code(devenv::import::report))]
    Report {
        #[source]
        source: io::Error,
    },
}

impl ImportError {
    /// 2 for bad input or usage, 1 when writing the result failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportError::Write { .. } | ImportError::Report { .. } => 1,
            _ => 2,
        }
    }

    pub(super) fn yaml(path: &Path, text: &str, err: &serde_saphyr::Error) -> ImportError {
        // The span already shows where; the message should not say it twice.
        let message = serde_saphyr::UserMessageFormatter.format_message(err.without_snippet());
        ImportError::Yaml {
            message: message.into_owned(),
            src: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: span(text, err.location()),
        }
    }

    pub(super) fn schema(
        path: &Path,
        text: &str,
        location: String,
        reason: String,
        span: (usize, usize),
    ) -> ImportError {
        ImportError::Schema {
            location,
            reason,
            src: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: SourceSpan::from(span),
        }
    }

    pub(super) fn variable(path: &Path, err: crate::config::interp::InterpError) -> ImportError {
        ImportError::Variable {
            file: path.display().to_string(),
            message: err.message,
            help: err.help,
        }
    }

    pub(super) fn unsupported_version(
        path: &Path,
        text: &str,
        version: &str,
        at: Option<(usize, usize)>,
    ) -> ImportError {
        ImportError::UnsupportedVersion {
            version: version.to_owned(),
            src: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: SourceSpan::from(at.unwrap_or((0, 0))),
        }
    }
}

/// serde-saphyr counts in bytes when it can and in characters otherwise;
/// miette wants bytes.
fn span(text: &str, location: Option<Location>) -> SourceSpan {
    let Some(location) = location else {
        return SourceSpan::from((0, 0));
    };
    let span = location.span();
    let offset = match span.byte_offset() {
        Some(offset) => offset as usize,
        None => text
            .char_indices()
            .nth(span.offset() as usize)
            .map_or(text.len(), |(i, _)| i),
    };
    let len = span.byte_len().unwrap_or(span.len()) as usize;
    SourceSpan::from((
        offset.min(text.len()),
        len.min(text.len() - offset.min(text.len())),
    ))
}
