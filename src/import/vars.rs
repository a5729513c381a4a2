//! Variables in Compose files, given the meaning Compose gives them.
//!
//! Compose interpolates every value when it reads a file, an unset `${VAR}`
//! being an empty string (with a warning). `devenv` interpolates some
//! `dev.toml` values itself (env, image, command, ports, …) from the same
//! environment and `.env`, so those keep their references — a bare `${VAR}`
//! whose variable is unset becomes `${VAR-}`, which means "empty when unset"
//! to `devenv` as to Compose. Everything else (volumes, paths, profiles,
//! `depends_on`, `restart`, healthchecks) is interpolated here, because its
//! structure has to be understood to be carried over.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::interp::{interpolate, InterpError};

use super::yaml::Node;

/// The environment an import reads: the process's, then `.env`.
pub(crate) struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Unset variables referenced without a default, with the services that did.
    pub unset: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> Vars<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Vars<'a> {
        Vars {
            lookup,
            unset: BTreeMap::new(),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// `text` with each bare reference to an unset variable made `${VAR-}`;
    /// fails as Compose does on an unset `${VAR:?message}`.
    pub(crate) fn keep(
        &mut self,
        text: &str,
        service: Option<&str>,
    ) -> Result<String, InterpError> {
        let kept = self.normalize(text, service);
        interpolate(&kept, &|name| self.get(name))?;
        Ok(kept)
    }

    /// `text` interpolated now, as Compose would.
    pub(crate) fn expand(
        &mut self,
        text: &str,
        service: Option<&str>,
    ) -> Result<String, InterpError> {
        let kept = self.normalize(text, service);
        interpolate(&kept, &|name| self.get(name))
    }

    fn normalize(&mut self, text: &str, service: Option<&str>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push_str("$$");
                rest = after;
            } else if let Some(inner) = rest.strip_prefix('{') {
                let Some(end) = closing_brace(inner) else {
                    // Left for `interpolate` to report.
                    out.push_str("${");
                    rest = inner;
                    continue;
                };
                let expr = &inner[..end];
                let name_len = name_len(expr);
                let (name, op) = expr.split_at(name_len);
                if op.is_empty() {
                    out.push_str(&self.reference(name, service));
                } else {
                    let op_len = [":-", ":?", ":+", "-", "?", "+"]
                        .iter()
                        .find(|o| op.starts_with(**o))
                        .map_or(0, |o| o.len());
                    let (op, arg) = op.split_at(op_len);
                    out.push_str(&format!("${{{name}{op}{}}}", self.normalize(arg, service)));
                }
                rest = &inner[end + 1..];
            } else {
                let len = name_len(rest);
                if len == 0 {
                    out.push('$');
                } else {
                    out.push_str(&self.reference(&rest[..len], service));
                    rest = &rest[len..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn reference(&mut self, name: &str, service: Option<&str>) -> String {
        if self.get(name).is_some() {
            return format!("${{{name}}}");
        }
        let services = self.unset.entry(name.to_owned()).or_default();
        services.extend(service.map(str::to_owned));
        format!("${{{name}-}}")
    }

    /// Interpolates a file's tree in place, keeping references where
    /// `devenv` reads them itself.
    pub(crate) fn tree(&mut self, node: &mut Node) -> Result<(), InterpError> {
        self.walk(node, &mut Vec::new())
    }

    fn walk(&mut self, node: &mut Node, path: &mut Vec<String>) -> Result<(), InterpError> {
        let service = match path.as_slice() {
            [top, name, ..] if top == "services" => Some(name.clone()),
            _ => None,
        };
        match node {
            Node::Scalar(text) => {
                *text = if keeps_references(path) {
                    self.keep(text, service.as_deref())?
                } else {
                    self.expand(text, service.as_deref())?
                };
            }
            Node::Seq(items) => {
                for item in items {
                    path.push("[]".to_owned());
                    let done = self.walk(item, path);
                    path.pop();
                    done?;
                }
            }
            Node::Map(entries) => {
                // `depends_on` names may come from variables too.
                if matches!(path.as_slice(), [s, _, d] if s == "services" && d == "depends_on") {
                    let mut renamed = indexmap::IndexMap::new();
                    for (key, value) in std::mem::take(entries) {
                        renamed.insert(self.expand(&key, service.as_deref())?, value);
                    }
                    *entries = renamed;
                }
                for (key, value) in entries.iter_mut() {
                    path.push(key.clone());
                    let done = self.walk(value, path);
                    path.pop();
                    done?;
                }
            }
            Node::Override(inner) => self.walk(inner, path)?,
            Node::Null | Node::Reset => {}
        }
        Ok(())
    }
}

/// The service values `devenv` interpolates itself, with the same meaning.
fn keeps_references(path: &[String]) -> bool {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    // Build args and healthchecks are kept too: import reads them itself.
    matches!(
        path.as_slice(),
        ["services", _, "build", "args", ..] | ["services", _, "healthcheck", "test", ..]
    ) || match path.as_slice() {
        ["services", _, key, ..] => matches!(
            *key,
            "image" | "command" | "entrypoint" | "environment" | "ports" | "user" | "working_dir"
        ),
        _ => false,
    }
}

fn name_len(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

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

/// A value interpolated at import and written where `devenv` interpolates
/// again: its dollars must stay literal.
pub(crate) fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("yes".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn unset_references_become_empty_as_in_compose() {
        let mut vars = Vars::new(&env);
        assert_eq!(
            vars.keep("${SET}-$NOPE-${NOPE2}", Some("app")).unwrap(),
            "${SET}-${NOPE-}-${NOPE2-}"
        );
        assert_eq!(vars.keep("${A:-${B}}", None).unwrap(), "${A:-${B-}}");
        assert_eq!(vars.keep("$$HOME", None).unwrap(), "$$HOME");
        assert_eq!(vars.expand("x${NOPE}y$SET", None).unwrap(), "xyyes");
        assert!(vars.expand("${NOPE:?say so}", None).is_err());
        assert_eq!(
            vars.unset.keys().collect::<Vec<_>>(),
            ["B", "NOPE", "NOPE2"]
        );
        assert_eq!(vars.unset["NOPE"].iter().collect::<Vec<_>>(), ["app"]);
    }
}
