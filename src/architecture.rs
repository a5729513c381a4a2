//! The code's shape, checked as tests: no import cycle between top-level
//! modules, bollard named only under `src/engine`, and only the commands
//! and the UI writing to the terminal. Read from the sources themselves, so
//! a change that breaks a rule fails `cargo test` naming the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every production source file under `src/`, with its text; inline
/// `#[cfg(test)] mod … { … }` blocks (at the end of a file, by habit) and
/// test-only files are cut off.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let test_only = test_only_files(&root);
    files
        .into_iter()
        .filter(|f| !test_only.contains(f))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let production = text
                .match_indices("#[cfg(test)]\nmod ")
                .find(|(i, _)| {
                    text[*i..]
                        .lines()
                        .nth(1)
                        .is_some_and(|l| l.trim_end().ends_with('{'))
                })
                .map_or(text.as_str(), |(i, _)| &text[..i])
                .to_string();
            (f.strip_prefix(&root).unwrap().to_path_buf(), production)
        })
        .collect()
}

/// Files pulled in only by `#[cfg(test)] mod name;`.
fn test_only_files(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let here = if path
                .file_name()
                .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
            {
                dir.clone()
            } else {
                path.with_extension("")
            };
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines.windows(2) {
                let item = pair[1].trim();
                let item = item.strip_prefix("pub(crate) ").unwrap_or(item);
                let Some(name) = item.strip_prefix("mod ").and_then(|m| m.strip_suffix(';')) else {
                    continue;
                };
                if pair[0].trim() == "#[cfg(test)]" {
                    out.insert(here.join(format!("{name}.rs")));
                }
            }
        }
    }
    out
}

/// Code without comments (doc links name modules too, harmlessly).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or_default()))
}

/// The top-level module a file belongs to: `plan/spec.rs` → `plan`.
fn module_of(file: &Path) -> String {
    let first = file
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    // module → module it names → where
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (file, text) in sources() {
        let from = module_of(&file);
        for (line, code) in code_lines(&text) {
            for part in code.split("crate::").skip(1) {
                let to: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{}:{line}", file.display()));
                }
            }
        }
    }
    let reaches = |start: &str, goal: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.to_string()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flat_map(|e| e.keys()) {
                if next == goal {
                    return true;
                }
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        false
    };
    let mut cycles = Vec::new();
    for (from, tos) in &edges {
        for (to, at) in tos {
            if reaches(to, from) {
                cycles.push(format!("`{from}` → `{to}` ({at}) and back"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn only_the_engine_names_bollard() {
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|(file, _)| module_of(file) != "engine")
        .flat_map(|(file, text)| {
            code_lines(&text)
                .filter(|(_, code)| code.contains("bollard"))
                .map(|(line, _)| format!("{}:{line}", file.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        outside.is_empty(),
        "bollard outside src/engine: {outside:?}"
    );
}

#[test]
fn only_the_commands_and_the_ui_write_to_the_terminal() {
    let writes = [
        "print!(",
        "println!(",
        "eprint!(",
        "eprintln!(",
        "io::stdout()",
        "io::stderr()",
    ];
    let allowed = |file: &Path| {
        let m = module_of(file);
        m == "commands" || m == "ui" || m == "main"
    };
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|(file, _)| !allowed(file))
        .flat_map(|(file, text)| {
            code_lines(&text)
                .filter(|(_, code)| writes.iter().any(|w| code.contains(w)))
                .map(|(line, _)| format!("{}:{line}", file.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        outside.is_empty(),
        "terminal writes outside src/commands and src/ui.rs: {outside:?}"
    );
}
