//! `.env` and `env_file` files read the way Docker Compose reads them, so a
//! project's `.env` means the same to `devenv` as to `docker compose`:
//! unquoted values run to the end of the line (spaces included, a ` #`
//! starts a comment), `${X:-default}` and friends expand from the
//! environment and the lines above, a reference to an unset variable is
//! empty, single quotes are literal, double quotes take `\n`-style escapes,
//! `export ` is ignored and a bare `KEY` line takes `KEY` from the
//! environment when it is set there. An `.env` line usually holds a secret,
//! so an error says `line:column` and why, and never shows the line.

use std::path::Path;

use indexmap::IndexMap;

use super::interp::interpolate_lenient;

/// Where an `.env` file stops making sense; 1-based like an editor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl DotenvError {
    /// The config error for this problem in the file at `path`.
    pub fn at(self, path: &Path) -> super::ConfigError {
        super::ConfigError::DotEnv {
            file: path.display().to_string(),
            line: self.line,
            column: self.column,
            reason: self.reason,
        }
    }
}

/// Reads `path`; a syntax error is `Err(Ok(..))`, an I/O error `Err(Err(..))`.
#[allow(clippy::type_complexity)]
pub fn read(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, Result<DotenvError, std::io::Error>> {
    let bytes = std::fs::read(path).map_err(Err)?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(&String::from_utf8_lossy(bytes), e.valid_up_to());
        Ok(DotenvError {
            line,
            column,
            reason: "the file is not valid UTF-8".into(),
        })
    })?;
    parse(text, lookup).map_err(Ok)
}

/// 1-based line and column (in characters) of byte `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Parses `src`; `lookup` is the environment, which wins over earlier lines.
pub fn parse(
    src: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    // Positions for errors: byte offset of `rest` in `src`.
    let at = |rest: &str, reason: String| {
        let (line, column) = line_col(src, src.len() - rest.len());
        DotenvError {
            line,
            column,
            reason,
        }
    };
    let mut out: IndexMap<String, String> = IndexMap::new();
    let mut rest = src;
    loop {
        // Skip blank space and comment lines.
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace());
        rest = trimmed;
        if rest.is_empty() {
            break;
        }
        if rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
            continue;
        }
        if let Some(after) = rest.strip_prefix("export") {
            if after.starts_with([' ', '\t']) {
                rest = after.trim_start_matches([' ', '\t']);
            }
        }
        let end = rest.find(['=', ':', '\n']).unwrap_or(rest.len());
        let key = rest[..end].trim_end();
        let name_char = |c: char| c.is_alphanumeric() || "_.-[]".contains(c);
        let bad = key.find(|c: char| !name_char(c));
        if key.is_empty() || bad.is_some() {
            // Point at the first character that cannot be in a name.
            return Err(at(
                &rest[bad.unwrap_or(0)..],
                "this line is not `NAME=value` (a name is letters, digits and `_`)".into(),
            ));
        }
        let key = key.to_owned();
        let sep = rest[end..].chars().next();
        if matches!(sep, None | Some('\n')) {
            // A bare `KEY`: inherited when set, else left out.
            if let Some(value) = lookup(&key) {
                out.insert(key, value);
            }
            rest = &rest[end..];
            continue;
        }
        rest = rest[end + 1..].trim_start_matches([' ', '\t']);
        let scope = |name: &str| lookup(name).or_else(|| out.get(name).cloned());
        let value_at = rest;
        // The interpolation's message names variables, never the value.
        let expand =
            |text: &str| interpolate_lenient(text, &scope).map_err(|e| at(value_at, e.message));
        let value = match rest.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let body = &rest[1..];
                let close = closing_quote(body, quote)
                    .ok_or_else(|| at(rest, "this quote is never closed".into()))?;
                let raw = &body[..close];
                rest = &body[close + 1..];
                // Whatever follows the closing quote on that line is ignored.
                rest = rest.find('\n').map_or("", |i| &rest[i..]);
                if quote == '\'' {
                    unescape_quote(raw, '\'')
                } else {
                    expand(&unescape(raw))?
                }
            }
            _ => {
                let end = rest.find('\n').unwrap_or(rest.len());
                let mut value = &rest[..end];
                rest = &rest[end..];
                if let Some(comment) = value.find(" #") {
                    value = &value[..comment];
                }
                expand(value.trim_end())?
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return Some(i),
            _ => {}
        }
    }
    None
}

/// Single quotes keep everything but an escaped quote.
fn unescape_quote(raw: &str, quote: char) -> String {
    raw.replace(&format!("\\{quote}"), &quote.to_string())
}

/// Double quotes: `\n`, `\t`, `\"`, `\\`; `\$` stays a literal dollar.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('$') => out.push_str("$$"),
            Some(other @ ('"' | '\\')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOME_DIR").then(|| "/home/me".to_owned())
    }

    fn read(src: &str) -> Vec<(String, String)> {
        parse(src, &env).unwrap().into_iter().collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unquoted_values_keep_their_spaces_and_drop_comments() {
        assert_eq!(
            read("APP_NAME=My Shop\n# note\nURL=http://x/#top # the url\n  export  A = b  \n"),
            pairs(&[
                ("APP_NAME", "My Shop"),
                ("URL", "http://x/#top"),
                ("A", "b")
            ])
        );
    }

    #[test]
    fn references_expand_like_compose() {
        assert_eq!(
            read(
                "DB=${DB_NAME:-shop}\nURL=pg://$DB/${MISSING}x\nH=${HOME_DIR}\nREQ=${DB:?set it}\n"
            ),
            pairs(&[
                ("DB", "shop"),
                ("URL", "pg://shop/x"),
                ("H", "/home/me"),
                ("REQ", "shop")
            ])
        );
        let e = parse("A=1\nX=${NOPE:?needed}\n", &env).unwrap_err();
        assert!(e.reason.contains("NOPE"), "{e:?}");
        assert_eq!((e.line, e.column), (2, 3));
    }

    #[test]
    fn quotes_single_literal_double_escaped() {
        assert_eq!(
            read("A='$HOME_DIR x'\nB=\"line\\nnext $HOME_DIR\"\nC=\"multi\nline\"\nD=\"cost \\$5\"\n"),
            pairs(&[
                ("A", "$HOME_DIR x"),
                ("B", "line\nnext /home/me"),
                ("C", "multi\nline"),
                ("D", "cost $5")
            ])
        );
    }

    #[test]
    fn bare_keys_are_inherited_when_set() {
        assert_eq!(
            read("HOME_DIR\nNOT_SET\nE=\n"),
            pairs(&[("HOME_DIR", "/home/me"), ("E", "")])
        );
    }

    #[test]
    fn r14_errors_point_at_line_and_column_and_never_echo_the_line() {
        let e = parse("A=1\nB C=2\n", &env).unwrap_err();
        assert_eq!((e.line, e.column), (2, 2));
        let e = parse("A=1\nB=\"open secret\nC=3\n", &env).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.reason.as_str()),
            (2, 3, "this quote is never closed")
        );
        assert!(!e.reason.contains("secret"));
        let e = parse("A=1\n  !B=x\n", &env).unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
    }

    #[test]
    fn bad_utf8_has_a_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, b"A=1\nB=\xff\n").unwrap();
        let e = super::read(&path, &env).unwrap_err().unwrap();
        assert_eq!((e.line, e.column), (2, 3));
    }
}
