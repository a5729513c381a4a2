//! Reading Compose files the way `docker compose` does before converting:
//! every YAML document of every file, variables interpolated ([`super::vars`]),
//! relative paths rebased, `include:` and `extends:` resolved, and the files
//! merged in order ([`super::yaml::merge`]).
//!
//! Relative paths are rebased onto the folder the `dev.toml` is written to,
//! so `devenv import docker/compose.yml -o out/dev.toml` still points at the
//! same folders: paths in the `-f` files are relative to the first file's
//! folder (the project folder), in an `extends`'d or included file to that
//! file's own folder.

use std::path::{Component, Path, PathBuf};

use super::compose;
use super::error::ImportError;
use super::vars::Vars;
use super::yaml::{merge, Node};
use super::{check_version, parse};

pub(crate) struct Loader<'v, 'a> {
    pub vars: &'v mut Vars<'a>,
    /// Absolute folder of the `dev.toml` being written.
    pub out_dir: PathBuf,
    /// Files being read, to stop `extends`/`include` cycles.
    stack: Vec<PathBuf>,
    /// `include` settings left behind.
    pub warnings: Vec<super::Warning>,
}

impl<'v, 'a> Loader<'v, 'a> {
    pub(crate) fn new(vars: &'v mut Vars<'a>, out_dir: PathBuf) -> Self {
        Loader {
            vars,
            out_dir,
            stack: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// One file given as `(name, text)`, paths relative to `base`.
    pub(crate) fn file(
        &mut self,
        name: &Path,
        text: &str,
        base: &Path,
    ) -> Result<Node, ImportError> {
        let parse_error = |err: &serde_saphyr::Error| ImportError::yaml(name, text, err);
        // Compose's YAML reader takes `0755` as octal, as YAML 1.1 did.
        let options = serde_saphyr::options! { with_snippet: false, legacy_octal_numbers: true };
        let docs: Vec<Node> =
            serde_saphyr::from_multiple_with_options(text, options).map_err(|e| parse_error(&e))?;
        let mut node = Node::Map(Default::default());
        for doc in docs {
            check_version(name, text, &doc)?;
            merge(&mut node, doc, &[]);
        }
        // What Compose refuses, refused with its reason.
        super::schema::check(name, text)?;
        // The typed reading, for its errors, which point at the value.
        if docs_are_one(text) {
            let _: compose::ComposeFile = parse(name, text)?;
        }
        self.vars
            .tree(&mut node)
            .map_err(|e| ImportError::variable(name, e))?;
        self.rebase(&mut node, base);
        self.include(&mut node, base)?;
        self.extends(&mut node, name)?;
        Ok(node)
    }

    fn read(&mut self, path: &Path) -> Result<Node, ImportError> {
        let path = absolute(path);
        if self.stack.contains(&path) {
            return Err(ImportError::Cycle { path });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Read {
            path: path.clone(),
            source,
        })?;
        self.stack.push(path.clone());
        let base = path.parent().unwrap_or(Path::new("/")).to_owned();
        let node = self.file(&path, &text, &base);
        self.stack.pop();
        node
    }

    /// `include:` files are read as projects of their own and their
    /// services and volumes put under this file's.
    fn include(&mut self, node: &mut Node, base: &Path) -> Result<(), ImportError> {
        let Node::Map(entries) = node else {
            return Ok(());
        };
        let Some(list) = entries.shift_remove("include") else {
            return Ok(());
        };
        let mut merged = Node::Map(Default::default());
        for item in list.items() {
            let paths: Vec<&str> = match item {
                Node::Scalar(path) => vec![path],
                map => match map.get("path") {
                    _ if map.entries().any(|(key, _)| key != "path") => {
                        for (key, _) in map.entries().filter(|(key, _)| *key != "path") {
                            let key = format!("include.{key}");
                            self.warnings.push(super::Warning::new(None, key));
                        }
                        match map.get("path") {
                            Some(Node::Scalar(path)) => vec![path],
                            Some(Node::Seq(paths)) => {
                                paths.iter().filter_map(Node::scalar).collect()
                            }
                            _ => Vec::new(),
                        }
                    }
                    Some(Node::Scalar(path)) => vec![path],
                    Some(Node::Seq(paths)) => paths.iter().filter_map(Node::scalar).collect(),
                    _ => Vec::new(),
                },
            };
            let mut included = Node::Map(Default::default());
            for path in paths {
                merge(&mut included, self.read(&base.join(path))?, &[]);
            }
            merge(&mut merged, included, &[]);
        }
        merge(&mut merged, std::mem::replace(node, Node::Null), &[]);
        *node = merged;
        Ok(())
    }

    /// `extends:` copies another service (of this file or another) under
    /// the service's own keys.
    fn extends(&mut self, node: &mut Node, name: &Path) -> Result<(), ImportError> {
        let names: Vec<String> = match node.get("services") {
            Some(Node::Map(services)) => services.keys().cloned().collect(),
            _ => return Ok(()),
        };
        for service in names {
            self.extend_one(node, &service, name, &mut Vec::new())?;
        }
        Ok(())
    }

    fn extend_one(
        &mut self,
        node: &mut Node,
        service: &str,
        name: &Path,
        seen: &mut Vec<String>,
    ) -> Result<(), ImportError> {
        let Some(Node::Map(entries)) = node
            .get_mut("services")
            .and_then(|services| services.get_mut(service))
        else {
            return Ok(());
        };
        let Some(extends) = entries.shift_remove("extends") else {
            return Ok(());
        };
        let (parent, file) = match &extends {
            Node::Scalar(parent) => (parent.clone(), None),
            map => (
                map.get("service")
                    .and_then(Node::scalar)
                    .unwrap_or_default()
                    .to_owned(),
                map.get("file").and_then(Node::scalar).map(str::to_owned),
            ),
        };
        let mut parent_node = match file {
            // Rebased already: the path is relative to the output folder.
            Some(file) => {
                let other = self.read(&self.out_dir.join(file))?;
                other
                    .get("services")
                    .and_then(|s| s.get(&parent))
                    .cloned()
                    .ok_or_else(|| ImportError::Extends {
                        service: service.to_owned(),
                        parent: parent.clone(),
                    })?
            }
            None => {
                if seen.contains(&parent) || parent == service {
                    return Err(ImportError::Cycle {
                        path: name.to_owned(),
                    });
                }
                seen.push(service.to_owned());
                self.extend_one(node, &parent, name, seen)?;
                node.get("services")
                    .and_then(|s| s.get(&parent))
                    .cloned()
                    .ok_or_else(|| ImportError::Extends {
                        service: service.to_owned(),
                        parent: parent.clone(),
                    })?
            }
        };
        let own = node
            .get_mut("services")
            .and_then(|services| services.get_mut(service))
            .map(|own| std::mem::replace(own, Node::Null))
            .unwrap_or(Node::Null);
        merge(&mut parent_node, own, &["services", service]);
        if let Some(slot) = node
            .get_mut("services")
            .and_then(|services| services.get_mut(service))
        {
            *slot = parent_node;
        }
        Ok(())
    }

    /// Rewrites relative paths, relative to `base`, as relative to the
    /// output folder.
    fn rebase(&self, node: &mut Node, base: &Path) {
        let out = self.out_dir.clone();
        let fix = |text: &mut String| *text = rebase_path(text, base, &out);
        if let Some(Node::Map(services)) = node.get_mut("services") {
            for service in services.values_mut() {
                match service.get_mut("build") {
                    Some(Node::Scalar(context)) => fix(context),
                    Some(build) => {
                        if let Some(Node::Scalar(context)) = build.get_mut("context") {
                            fix(context);
                        }
                    }
                    None => {}
                }
                match service.get_mut("env_file") {
                    Some(Node::Scalar(file)) => fix(file),
                    Some(Node::Seq(files)) => {
                        for file in files {
                            match file {
                                Node::Scalar(file) => fix(file),
                                map => {
                                    if let Some(Node::Scalar(path)) = map.get_mut("path") {
                                        fix(path);
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(Node::Seq(volumes)) = service.get_mut("volumes") {
                    for volume in volumes {
                        match volume {
                            Node::Scalar(spec) => {
                                if let Some((source, rest)) = spec.split_once(':') {
                                    if is_path(source) {
                                        let mut source = source.to_owned();
                                        fix(&mut source);
                                        *spec = format!("{source}:{rest}");
                                    }
                                }
                            }
                            map => {
                                let bind = map.get("type").and_then(Node::scalar) == Some("bind");
                                if let Some(Node::Scalar(source)) = map.get_mut("source") {
                                    if bind || is_path(source) {
                                        fix(source);
                                    }
                                }
                            }
                        }
                    }
                }
                if let Some(Node::Seq(rules)) =
                    service.get_mut("develop").and_then(|d| d.get_mut("watch"))
                {
                    for rule in rules {
                        if let Some(Node::Scalar(path)) = rule.get_mut("path") {
                            fix(path);
                        }
                    }
                }
                if let Some(extends) = service.get_mut("extends") {
                    if let Some(Node::Scalar(file)) = extends.get_mut("file") {
                        fix(file);
                    }
                }
            }
        }
    }
}

/// A YAML stream of one document can also be read into typed structs.
fn docs_are_one(text: &str) -> bool {
    !text.lines().skip(1).any(|line| line.trim_end() == "---")
}

fn is_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// `text` (a path relative to `base`, or absolute, or a URL) relative to
/// `out`; the result starts with `.` so `devenv` reads it as a path.
fn rebase_path(text: &str, base: &Path, out: &Path) -> String {
    if text.contains("://")
        || text.starts_with('/')
        || text.starts_with('~')
        || text.starts_with("git@")
    {
        return text.to_owned();
    }
    let target = normalize(&base.join(text));
    let relative = relative_to(&target, out);
    let text = relative.to_string_lossy().into_owned();
    if text.is_empty() {
        ".".to_owned()
    } else if text.starts_with("..") {
        text
    } else {
        format!("./{text}")
    }
}

pub(crate) fn absolute(path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    normalize(&path)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn relative_to(target: &Path, dir: &Path) -> PathBuf {
    let t: Vec<Component> = target.components().collect();
    let d: Vec<Component> = dir.components().collect();
    let common = t.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..d.len() {
        out.push("..");
    }
    for part in &t[common..] {
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rebased_onto_the_output_folder() {
        let base = Path::new("/p/docker");
        assert_eq!(rebase_path("../src", base, Path::new("/p")), "./src");
        assert_eq!(rebase_path(".", base, Path::new("/p/out")), "../docker");
        assert_eq!(rebase_path("./app", base, base), "./app");
        assert_eq!(rebase_path(".", base, base), ".");
        assert_eq!(rebase_path("/dev/shm", base, Path::new("/p")), "/dev/shm");
    }
}
