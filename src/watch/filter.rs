//! Which paths a watch rule skips. A path is skipped when any of these says
//! so: devenv's defaults plus the rule's own `ignore` patterns (one list, so a
//! rule can re-include a default with `!vendor/`), the project's `.gitignore`
//! files (above the rule's folder and, read when first needed, inside it) and
//! the `.dockerignore` of the stack folder and of the service's build context.
//! The rule's own path is never skipped: a rule naming `.env` means it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Skipped unless a rule says otherwise: dependencies the image installs,
/// logs the app writes, and editors' swap, backup and lock files.
pub const DEFAULT_IGNORES: &[&str] = &[
    ".git/",
    "vendor/",
    "node_modules/",
    "**/storage/logs/",
    "*.swp",
    "*.swx",
    "*~",
    "4913",
    ".#*",
    "#*#",
    "*___jb_tmp___",
    "*___jb_old___",
    ".DS_Store",
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid ignore pattern `{pattern}`")]
#[diagnostic(
    code(devenv::watch::pattern),
    help("`ignore` takes .gitignore patterns, e.g. `vendor/` or `*.log`")
)]
pub struct PatternError {
    pub pattern: String,
    #[source]
    pub source: ignore::Error,
}

/// One file or folder found under a rule's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub is_dir: bool,
}

pub struct Filter {
    root: PathBuf,
    rule: Gitignore,
    fixed: Vec<Gitignore>,
    /// `.gitignore` per folder inside the tree; `None` where a folder has none.
    nested: Mutex<HashMap<PathBuf, Option<Gitignore>>>,
}

impl Filter {
    /// The filter of a rule on `root`, inside the stack folder `stack_root`.
    pub fn new(
        root: &Path,
        stack_root: &Path,
        dockerignores: &[PathBuf],
        patterns: &[String],
    ) -> Result<Filter, PatternError> {
        let mut rule = GitignoreBuilder::new(root);
        for line in DEFAULT_IGNORES
            .iter()
            .copied()
            .chain(patterns.iter().map(String::as_str))
        {
            rule.add_line(None, line).map_err(|source| PatternError {
                pattern: line.to_string(),
                source,
            })?;
        }
        let rule = rule.build().map_err(|source| PatternError {
            pattern: patterns.join(" "),
            source,
        })?;
        // `.gitignore` files from the stack folder down to the rule's parent.
        let mut fixed: Vec<Gitignore> = root
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(stack_root))
            .filter_map(gitignore_in)
            .collect();
        fixed.extend(dockerignores.iter().filter_map(|f| dockerignore(f)));
        Ok(Filter {
            root: root.to_path_buf(),
            rule,
            fixed,
            nested: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the rule skips `path`; paths outside the rule are skipped too.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if path == self.root {
            return false;
        }
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return true;
        };
        let ignores = |g: &Gitignore| {
            path.starts_with(g.path()) && g.matched_path_or_any_parents(path, is_dir).is_ignore()
        };
        if ignores(&self.rule) || self.fixed.iter().any(ignores) {
            return true;
        }
        let mut nested = self
            .nested
            .lock()
            .expect("no panics while holding the lock");
        let mut dir = self.root.clone();
        let mut parts = rel.components().peekable();
        loop {
            let g = nested
                .entry(dir.clone())
                .or_insert_with(|| gitignore_in(&dir));
            if g.as_ref().is_some_and(ignores) {
                return true;
            }
            match parts.next() {
                // The last component is the path itself, not a folder to read.
                Some(part) if parts.peek().is_some() => dir.push(part),
                _ => return false,
            }
        }
    }

    /// Forgets what was read of `dir/.gitignore` (it changed).
    pub fn reload(&self, gitignore: &Path) {
        if let Some(dir) = gitignore.parent() {
            self.nested
                .lock()
                .expect("no panics while holding the lock")
                .remove(dir);
        }
    }

    /// Everything under `from` (itself included) that the rule does not skip,
    /// parents before children; skipped folders are not entered. Symlinks are
    /// entries, never followed. Folders that vanish or cannot be read are left out.
    pub fn walk(&self, from: &Path) -> Vec<Entry> {
        let mut out = Vec::new();
        let Ok(meta) = std::fs::symlink_metadata(from) else {
            return out;
        };
        if self.is_ignored(from, meta.is_dir()) {
            return out;
        }
        out.push(Entry {
            path: from.to_path_buf(),
            is_dir: meta.is_dir(),
        });
        let mut todo = if meta.is_dir() {
            vec![from.to_path_buf()]
        } else {
            Vec::new()
        };
        while let Some(dir) = todo.pop() {
            let Ok(read) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut children: Vec<Entry> = read
                .flatten()
                .filter_map(|e| {
                    let is_dir = e.file_type().ok()?.is_dir();
                    let path = e.path();
                    (!self.is_ignored(&path, is_dir)).then_some(Entry { path, is_dir })
                })
                .collect();
            children.sort_by(|a, b| a.path.cmp(&b.path));
            todo.extend(children.iter().filter(|e| e.is_dir).map(|e| e.path.clone()));
            out.extend(children);
        }
        out
    }
}

fn gitignore_in(dir: &Path) -> Option<Gitignore> {
    let file = dir.join(".gitignore");
    if !file.is_file() {
        return None;
    }
    let mut b = GitignoreBuilder::new(dir);
    // Like git, a bad line is skipped rather than failing the whole file.
    let _ = b.add(&file);
    b.build().ok().filter(|g| !g.is_empty())
}

/// A `.dockerignore` as gitignore patterns: Docker anchors every pattern at
/// the context folder, where a bare gitignore `foo` would match at any depth.
fn dockerignore(file: &Path) -> Option<Gitignore> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut b = GitignoreBuilder::new(file.parent()?);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (bang, pattern) = match line.strip_prefix('!') {
            Some(p) => ("!", p),
            None => ("", line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        let _ = b.add_line(None, &format!("{bang}/{pattern}"));
    }
    b.build().ok().filter(|g| !g.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn rel(filter: &Filter, root: &Path) -> Vec<String> {
        filter
            .walk(root)
            .iter()
            .map(|e| {
                let r = e.path.strip_prefix(root).unwrap().display().to_string();
                if e.is_dir {
                    format!("{r}/")
                } else {
                    r
                }
            })
            .collect()
    }

    #[test]
    fn defaults_skip_dependencies_logs_and_editor_files() {
        let root = Path::new("/p/app");
        let f = Filter::new(root, Path::new("/p"), &[], &[]).unwrap();
        for (path, is_dir) in [
            ("vendor", true),
            ("vendor/laravel/x.php", false),
            ("resources/js/node_modules", true),
            ("storage/logs/laravel.log", false),
            ("app/.Foo.php.swp", false),
            ("app/Foo.php~", false),
            ("app/4913", false),
            ("app/.#Foo.php", false),
            (".git/HEAD", false),
        ] {
            assert!(f.is_ignored(&root.join(path), is_dir), "{path}");
        }
        for path in [
            "app/Foo.php",
            "storage/app/x",
            "vendor.php",
            "routes/web.php",
        ] {
            assert!(!f.is_ignored(&root.join(path), false), "{path}");
        }
    }

    #[test]
    fn rule_patterns_add_to_and_override_the_defaults() {
        let root = Path::new("/p");
        let f = Filter::new(
            root,
            root,
            &[],
            &["storage/".into(), "*.log".into(), "!vendor/".into()],
        )
        .unwrap();
        assert!(f.is_ignored(&root.join("storage/app/a"), false));
        assert!(f.is_ignored(&root.join("public/x.log"), false));
        assert!(!f.is_ignored(&root.join("vendor/a.php"), false));
    }

    #[test]
    fn the_rule_path_itself_is_never_skipped_and_outside_paths_always_are() {
        let root = Path::new("/p/.env");
        let f = Filter::new(root, Path::new("/p"), &[], &[".env".into()]).unwrap();
        assert!(!f.is_ignored(root, false));
        assert!(f.is_ignored(Path::new("/p/other"), false));
    }

    #[test]
    fn gitignores_above_and_inside_the_tree_apply() {
        let dir = tree(&[
            (".gitignore", "/target\n*.cache\n"),
            ("app/.gitignore", "/public/hot\n"),
            ("app/storage/framework/.gitignore", "*\n!.gitignore\n"),
            ("app/storage/framework/views/v.php", ""),
            ("app/public/hot", ""),
            ("app/public/index.php", ""),
            ("app/x.cache", ""),
        ]);
        let root = dir.path().join("app");
        let f = Filter::new(&root, dir.path(), &[], &[]).unwrap();
        assert_eq!(
            rel(&f, &root),
            [
                "/",
                ".gitignore",
                "public/",
                "storage/",
                "storage/framework/",
                "storage/framework/.gitignore",
                "public/index.php"
            ]
        );
    }

    #[test]
    fn dockerignore_patterns_are_anchored_at_their_folder() {
        let dir = tree(&[
            (
                ".dockerignore",
                "# build context\napp/storage/app/*\n**/*.tmp\n",
            ),
            ("app/storage/app/a", ""),
            ("app/storage/app/keep/storage/app/b", ""),
        ]);
        let root = dir.path().join("app");
        let f = Filter::new(&root, dir.path(), &[dir.path().join(".dockerignore")], &[]).unwrap();
        assert!(f.is_ignored(&root.join("storage/app/a"), false));
        assert!(f.is_ignored(&root.join("deep/x.tmp"), false));
        assert!(!f.is_ignored(&root.join("sub/app/storage/app/a"), false));
    }

    #[test]
    fn ignored_folders_are_not_entered() {
        let dir = tree(&[("vendor/a/b.php", ""), ("src/a.php", "")]);
        let f = Filter::new(dir.path(), dir.path(), &[], &[]).unwrap();
        assert_eq!(rel(&f, dir.path()), ["/", "src/", "src/a.php"]);
    }

    #[test]
    fn a_changed_gitignore_is_read_again() {
        let dir = tree(&[("a.txt", "")]);
        let f = Filter::new(dir.path(), dir.path(), &[], &[]).unwrap();
        let a = dir.path().join("a.txt");
        assert!(!f.is_ignored(&a, false));
        std::fs::write(dir.path().join(".gitignore"), "a.txt\n").unwrap();
        assert!(!f.is_ignored(&a, false), "cached until told");
        f.reload(&dir.path().join(".gitignore"));
        assert!(f.is_ignored(&a, false));
    }
}
