//! `${VAR}` interpolation, as compose does it: `${VAR}`, `$VAR`,
//! `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
//! `${VAR:?message}` (required) and `$$` for a literal dollar.

use std::ops::Range;

/// Why a value could not be interpolated; the caller adds where.
#[derive(Debug, PartialEq, Eq)]
pub struct InterpError {
    pub message: String,
    pub help: String,
}

/// How deep defaults may nest (`${A:-${B:-x}}` is two); deeper is a typo or
/// an attack, and unbounded nesting would overflow the stack.
pub const MAX_NESTING: usize = 10;

/// Replaces every reference in `text` with its value from `lookup`.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    interpolate_with(text, lookup, false, 0, None)
}

/// As [`interpolate`], and where in the result each reference's value went
/// (byte ranges): what came from a variable, as against what was written.
pub fn interpolate_spans(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Range<usize>>), InterpError> {
    let (out, spans) = interpolate_named(text, lookup)?;
    Ok((out, spans.into_iter().map(|(range, _)| range).collect()))
}

/// Ranges of an interpolated text, each with the variable that produced it.
pub type NamedSpans = Vec<(Range<usize>, String)>;

/// As [`interpolate_spans`], each range with the name of the variable whose
/// reference produced it (`DB_PASSWORD` for `${DB_PASSWORD:-secret}`, its
/// default included): what tells a secret's span from a host name's.
pub fn interpolate_named(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, NamedSpans), InterpError> {
    let mut spans = Vec::new();
    let out = interpolate_with(text, lookup, false, 0, Some(&mut spans))?;
    Ok((out, spans))
}

/// The variable a reference's expression names (`A` of `A:-x`).
fn name_of(expr: &str) -> String {
    let len = expr
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expr.len());
    expr[..len].to_string()
}

/// As [`interpolate`], but an unset variable without a default is empty, as
/// Compose has it (in `.env` files, and in imported Compose files).
pub fn interpolate_lenient(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    interpolate_with(text, lookup, true, 0, None)
}

fn interpolate_with(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
    depth: usize,
    mut spans: Option<&mut Vec<(Range<usize>, String)>>,
) -> Result<String, InterpError> {
    if depth > MAX_NESTING {
        return Err(InterpError {
            message: format!("variable references nest deeper than {MAX_NESTING} levels"),
            help: "nest fewer `${VAR:-…}` defaults inside each other".into(),
        });
    }
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = rest.strip_prefix('{') {
            let end = closing_brace(inner).ok_or_else(|| InterpError {
                message: "unterminated `${`".into(),
                help: "close the reference with `}`, or write `$$` for a literal dollar".into(),
            })?;
            let start = out.len();
            out.push_str(&expand(&inner[..end], lookup, lenient, depth)?);
            if let Some(spans) = spans.as_deref_mut() {
                spans.push((start..out.len(), name_of(&inner[..end])));
            }
            rest = &inner[end + 1..];
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if len == 0 {
                out.push('$');
            } else {
                let start = out.len();
                out.push_str(&expand(&rest[..len], lookup, lenient, depth)?);
                if let Some(spans) = spans.as_deref_mut() {
                    spans.push((start..out.len(), rest[..len].to_string()));
                }
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds the `}` that closes a reference, allowing nested references in defaults.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn expand(
    expr: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
    depth: usize,
) -> Result<String, InterpError> {
    let name_len = expr
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expr.len());
    let (name, op) = expr.split_at(name_len);
    if name.is_empty() {
        return Err(InterpError {
            message: format!("invalid variable reference `${{{}}}`", clip(expr)),
            help: "a variable name is letters, digits and `_`".into(),
        });
    }
    let value = lookup(name);
    let (op, arg) = if let Some(arg) = op.strip_prefix(":-") {
        (":-", arg)
    } else if let Some(arg) = op.strip_prefix(":?") {
        (":?", arg)
    } else if let Some(arg) = op.strip_prefix('-') {
        ("-", arg)
    } else if let Some(arg) = op.strip_prefix('?') {
        ("?", arg)
    } else if op.is_empty() {
        ("", "")
    } else {
        return Err(InterpError {
            message: format!("invalid variable reference `${{{}}}`", clip(expr)),
            help: "use `${VAR}`, `${VAR:-default}` or `${VAR:?message}`".into(),
        });
    };
    match (op, value) {
        (":-", Some(v)) if !v.is_empty() => Ok(v),
        (":-", _) | ("-", None) => interpolate_with(arg, lookup, lenient, depth + 1, None),
        (":?", Some(v)) if !v.is_empty() => Ok(v),
        ("?", Some(v)) | ("-", Some(v)) | ("", Some(v)) => Ok(v),
        (":?" | "?", _) => Err(InterpError {
            message: format!("variable `{name}` is required: {arg}"),
            help: format!("set `{name}` in the environment or in `.env` beside the stack file"),
        }),
        _ if lenient => Ok(String::new()),
        _ => Err(InterpError {
            message: format!("variable `{name}` is not set and has no default"),
            help: format!(
                "set `{name}` in the environment or in `.env`, or give a default: `${{{name}:-value}}`"
            ),
        }),
    }
}

/// Errors quote what was written, but not a whole file's worth of it.
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "USER" => Some("app".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, InterpError> {
        interpolate(text, &vars)
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(run("postgres:16").unwrap(), "postgres:16");
    }

    #[test]
    fn braces_and_bare_names_expand() {
        assert_eq!(run("u=${USER} $USER!").unwrap(), "u=app app!");
    }

    #[test]
    fn defaults_follow_compose_rules() {
        assert_eq!(run("${MISSING:-secret}").unwrap(), "secret");
        assert_eq!(run("${EMPTY:-x}").unwrap(), "x");
        assert_eq!(run("${EMPTY-x}").unwrap(), "");
        assert_eq!(run("${MISSING-x}").unwrap(), "x");
        assert_eq!(run("${USER:-x}").unwrap(), "app");
    }

    #[test]
    fn nested_default_expands() {
        assert_eq!(run("${MISSING:-${USER}-db}").unwrap(), "app-db");
    }

    #[test]
    fn spans_say_what_came_from_a_variable() {
        let (out, spans) =
            interpolate_spans("app:app --user=${USER} $USER/${NONE:-x}$$", &vars).unwrap();
        assert_eq!(out, "app:app --user=app app/x$");
        let at: Vec<(usize, &str)> = spans.iter().map(|r| (r.start, &out[r.clone()])).collect();
        assert_eq!(at, [(15, "app"), (19, "app"), (23, "x")]);
    }

    #[test]
    fn double_dollar_is_literal() {
        assert_eq!(run("cost $$5 and $$USER").unwrap(), "cost $5 and $USER");
    }

    #[test]
    fn undefined_without_default_names_the_variable() {
        let err = run("${DB_PASSWORD}").unwrap_err();
        assert_eq!(
            err.message,
            "variable `DB_PASSWORD` is not set and has no default"
        );
    }

    #[test]
    fn required_variable_carries_its_message() {
        let err = run("${KEY:?run php artisan key:generate}").unwrap_err();
        assert_eq!(
            err.message,
            "variable `KEY` is required: run php artisan key:generate"
        );
    }

    #[test]
    fn unterminated_reference_is_an_error() {
        assert!(run("${USER").unwrap_err().message.contains("unterminated"));
    }

    #[test]
    fn r14_deep_nesting_is_an_error_not_a_stack_overflow() {
        let n = 20_000;
        let text = format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
        let err = run(&text).unwrap_err();
        assert!(err.message.contains("nest deeper"), "{}", err.message);
        let ok = format!(
            "{}x{}",
            "${A:-".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert_eq!(run(&ok).unwrap(), "x");
    }

    #[test]
    fn errors_do_not_echo_the_value() {
        let err = run("hunter2${USER").unwrap_err();
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }
}
