//! Errors from reading the stack file, as miette diagnostics that point at
//! the line in `dev.toml` (or the preset) and say what to do.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One source text errors can point into: `dev.toml` or a preset file.
#[derive(Debug, Clone)]
pub struct Src {
    pub name: String,
    pub text: Arc<str>,
}

impl Src {
    pub fn named(&self) -> NamedSource<String> {
        NamedSource::new(&self.name, self.text.to_string()).with_language("toml")
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read `{}`", path.display())]
    #[diagnostic(code(devenv::config::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no `dev.toml` in `{}` or any folder above it", dir.display())]
    #[diagnostic(
        code(devenv::config::not_found),
        help("create one (see the README), pass `-f FILE`, or bring a compose file over with `devenv import`")
    )]
    NotFound { dir: PathBuf },

    #[error("{message}")]
    #[diagnostic(code(devenv::config::syntax))]
    Syntax {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: Option<SourceSpan>,
        #[help]
        help: Option<String>,
    },

    #[error("{message}")]
    #[diagnostic(code(devenv::config::invalid))]
    Invalid {
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },

    #[error("invalid env file `{file}` at line {line}, column {column}: {reason}")]
    #[diagnostic(
        code(devenv::config::dotenv),
        help("each line is `NAME=value`; quote a value with spaces or `#` in it and close every quote (the line is not shown: it may hold a secret)")
    )]
    DotEnv {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },

    #[error("dependency cycle: {cycle}")]
    #[diagnostic(
        code(devenv::config::cycle),
        help("remove one of these `depends_on` entries to break the cycle")
    )]
    Cycle {
        cycle: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("this service is part of the cycle")]
        span: SourceSpan,
    },
}

impl ConfigError {
    /// A problem with a value at `span` in `src`.
    pub fn invalid(
        src: &Src,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        ConfigError::Invalid {
            message: message.into(),
            src: src.named(),
            span: span.into(),
            label: label.into(),
            help,
        }
    }

    /// A TOML syntax or type error, with the unknown-key case made friendlier.
    pub fn from_toml(src: &Src, err: &toml::de::Error) -> Self {
        let message = name_the_forms(&hide_string_value(err.message().trim()));
        let help = if message.starts_with("unknown field") {
            Some(match did_you_mean(&message) {
                Some(close) => format!("did you mean `{close}`? (the README lists every key)"),
                None => {
                    "check the spelling; the README lists every key a service accepts".to_string()
                }
            })
        } else if message.starts_with("expected ") {
            Some("see the README for the accepted forms of this key".to_string())
        } else {
            None
        };
        ConfigError::Syntax {
            message: lowercase_first(&message),
            src: src.named(),
            span: err.span().map(Into::into),
            help,
        }
    }
}

impl ConfigError {
    /// The error with each of `secrets` masked wherever it quotes one.
    pub fn masked(self, secrets: &[String]) -> Self {
        let mask = |text: String| super::secret::mask_in(&text, secrets.iter().map(String::as_str));
        match self {
            ConfigError::Syntax {
                message,
                src,
                span,
                help,
            } => ConfigError::Syntax {
                message: mask(message),
                src,
                span,
                help: help.map(mask),
            },
            ConfigError::Invalid {
                message,
                src,
                span,
                label,
                help,
            } => ConfigError::Invalid {
                message: mask(message),
                src,
                span,
                label: mask(label),
                help: help.map(mask),
            },
            other => other,
        }
    }
}

/// serde quotes a string it rejects (`invalid type: string "hunter2",
/// expected u16`); the string may be a password written in the wrong place.
fn hide_string_value(message: &str) -> String {
    for kind in ["invalid type: string ", "invalid value: string "] {
        if let Some(rest) = message.strip_prefix(kind) {
            if let Some(end) = rest.rfind(", expected") {
                return format!("{}a string{}", &kind[..kind.len() - 7], &rest[end..]);
            }
        }
    }
    message.to_string()
}

/// serde's `data did not match any variant of untagged enum RawPort` names
/// a Rust type, not what to write: the forms each such key takes instead.
fn name_the_forms(message: &str) -> String {
    const FORMS: [(&str, &str); 10] = [
        (
            "RawPort",
            r#"a port mapping: "8080:80", "80", or { port = "8080:80", fixed = true }"#,
        ),
        (
            "RawDuration",
            r#"a duration: "90s", "2m", "500ms", or a number of seconds"#,
        ),
        ("StrOrList", "a string or a list of strings"),
        (
            "RawEnvFiles",
            r#"a path, or a list of paths or { path = "…", required = false } tables"#,
        ),
        (
            "RawEnvFile",
            r#"a path or { path = "…", required = false }"#,
        ),
        (
            "RawBuildSpec",
            r#"a build context path, or { context = "…", dockerfile = "…", target = "…", args = { … } }"#,
        ),
        (
            "RawDepends",
            r#"a list of service names, or { SERVICE = "started" | "ready" | "completed" }"#,
        ),
        (
            "RawStatus",
            "a status code (200) or an inclusive range ([200, 399])",
        ),
        (
            "Run",
            r#"a command line ("php artisan migrate") or a list of words (["php", "artisan", "migrate"])"#,
        ),
        (
            "HpaSetting",
            "true, false, or { min = …, max = …, cpu = … }",
        ),
    ];
    let Some((_, ty)) = message.split_once("did not match any variant of untagged enum ") else {
        return message.to_string();
    };
    let ty = ty.split_whitespace().next().unwrap_or_default();
    match FORMS.iter().find(|(name, _)| *name == ty) {
        Some((_, forms)) => format!("expected {forms}"),
        None => message.to_string(),
    }
}

/// The expected key closest to the unknown one in serde's `unknown field
/// `replica`, expected one of `replicas`, `resources`, …`.
fn did_you_mean(message: &str) -> Option<String> {
    let mut quoted = message.split('`').skip(1).step_by(2);
    let unknown = quoted.next()?;
    let (_, expected) = message.split_once("expected")?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|known| super::similar(known, unknown))
        .map(str::to_string)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_strings_are_not_quoted() {
        assert_eq!(
            hide_string_value("invalid type: string \"hunter2\", expected u16"),
            "invalid type: a string, expected u16"
        );
        assert_eq!(
            hide_string_value("invalid value: string \"x, expected\", expected one of `a`"),
            "invalid value: a string, expected one of `a`"
        );
        assert_eq!(hide_string_value("unknown field `x`"), "unknown field `x`");
    }

    #[test]
    fn an_untagged_mismatch_names_the_forms_not_the_rust_type() {
        assert_eq!(
            name_the_forms("data did not match any variant of untagged enum RawPort"),
            r#"expected a port mapping: "8080:80", "80", or { port = "8080:80", fixed = true }"#
        );
        assert!(
            name_the_forms("data did not match any variant of untagged enum RawDuration")
                .starts_with("expected a duration"),
        );
        assert_eq!(name_the_forms("unknown field `x`"), "unknown field `x`");
    }

    #[test]
    fn unknown_keys_get_the_closest_known_one() {
        assert_eq!(
            did_you_mean("unknown field `replica`, expected one of `replicas`, `resources`, `hpa`")
                .as_deref(),
            Some("replicas")
        );
        assert_eq!(
            did_you_mean("unknown field `imgae`, expected `image` or `build`").as_deref(),
            Some("image"),
            "two neighbouring letters swapped are the commonest typo"
        );
        assert_eq!(
            did_you_mean("unknown field `igmae`, expected `image` or `build`").as_deref(),
            None,
            "two swaps are too far"
        );
        assert_eq!(
            did_you_mean("unknown field `imag`, expected `image` or `build`").as_deref(),
            Some("image")
        );
        assert_eq!(
            did_you_mean("unknown field `zzz`, there are no fields"),
            None
        );
    }
}
