//! `.env` files (beside the stack file, and `env_file`s), read with dotenvy.
//! dotenvy reports a bad line by echoing it with an index into some part of
//! it; an `.env` line usually holds a secret, so here the error is turned
//! into a `line:column` and the line itself is never shown.

use std::path::Path;

/// Where an `.env` file stops making sense; 1-based like an editor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub column: usize,
    pub reason: &'static str,
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
pub fn read(path: &Path) -> Result<Vec<(String, String)>, Result<DotenvError, std::io::Error>> {
    let bytes = std::fs::read(path).map_err(Err)?;
    parse(&bytes).map_err(Ok)
}

/// Parses `.env` text into its pairs, in file order.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>, DotenvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(&String::from_utf8_lossy(bytes), e.valid_up_to());
        DotenvError {
            line,
            column,
            reason: "the file is not valid UTF-8",
        }
    })?;
    let mut pairs = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(_) => return Err(locate(text)),
        }
    }
    Ok(pairs)
}

/// Finds the first bad logical line by parsing one at a time (values may
/// span lines inside quotes), then the column dotenvy complained about.
fn locate(text: &str) -> DotenvError {
    let mut start = 0;
    let mut end = 0;
    while end < text.len() {
        end = text[end..].find('\n').map_or(text.len(), |p| end + p + 1);
        let chunk = &text[start..end];
        match dotenvy::from_read_iter(chunk.as_bytes()).find_map(Result::err) {
            None => start = end,
            // An open quote ran to the end of the chunk: the value goes on.
            Some(dotenvy::Error::LineParse(s, i)) if s.len() == chunk.len() && i == s.len() => {}
            Some(dotenvy::Error::LineParse(s, i)) => {
                let line = chunk.trim_end_matches(['\n', '\r']);
                // dotenvy reports a byte index into the whole line for a bad
                // key, and a character index into the value for a bad value.
                let at = if line.starts_with(s.as_str()) {
                    i
                } else {
                    let value_start = line.trim_end().len().saturating_sub(s.len());
                    value_start + s.char_indices().nth(i).map_or(s.len(), |(b, _)| b)
                };
                let (l, c) = line_col(text, start + at.min(line.len()));
                return DotenvError {
                    line: l,
                    column: c,
                    reason: "this line is not `NAME=value`",
                };
            }
            Some(_) => break,
        }
    }
    // Only an unclosed quote reaches the end: point at where it opens.
    let chunk = &text[start..];
    let at = chunk
        .find('=')
        .and_then(|eq| chunk[eq..].find(['"', '\'']).map(|q| eq + q))
        .unwrap_or(0);
    let (line, column) = line_col(text, start + at);
    DotenvError {
        line,
        column,
        reason: "this quote is never closed",
    }
}

/// 1-based line and column (in characters) of byte `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, usize, &'static str) {
        let e = parse(text.as_bytes()).unwrap_err();
        (e.line, e.column, e.reason)
    }

    #[test]
    fn pairs_come_in_file_order_with_quotes_and_comments() {
        let pairs = parse(b"# c\nA=1\nexport B=\"two words\"\nC='x\ny'\n\nD=$A\n").unwrap();
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
        assert_eq!(pairs[1].1, "two words");
        assert_eq!(pairs[2].1, "x\ny");
        assert_eq!(pairs[3].1, "1");
    }

    #[test]
    fn r14_errors_point_at_line_and_column() {
        assert_eq!(err("A=1\nB C=2\n").0, 2);
        assert_eq!(err("A=1\nB C=2\n").1, 3);
        assert_eq!(
            err("A=1\n  B=x y\n"),
            (2, 7, "this line is not `NAME=value`")
        );
        assert_eq!(
            err("A=1\nB=\"open\nC=3\n"),
            (2, 3, "this quote is never closed")
        );
        assert_eq!(err("A=1\n1B=2\n").0, 2);
        assert_eq!(err("A=1\nB=é x\n"), (2, 5, "this line is not `NAME=value`"));
    }

    #[test]
    fn bad_utf8_has_a_location() {
        let e = parse(b"A=1\nB=\xff\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
    }
}
