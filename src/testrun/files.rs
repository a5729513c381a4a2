//! What `devenv test` reads on the host: the migration files (whose hash
//! names the template database) and the test files it splits between
//! workers, with the PHPUnit configuration each worker gets.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Every file under `dir`, recursively, as paths relative to it, sorted.
fn walk(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A short hash of the migration files (names and contents) and of the
/// command that runs them: any change to either means another template.
pub fn migrations_hash(dir: &Path, migrate: &str) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(migrate.as_bytes());
    for rel in walk(dir)? {
        let bytes = std::fs::read(dir.join(&rel))?;
        // Lengths keep ("a", "bc") and ("ab", "c") apart.
        let name = rel.to_string_lossy();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let digest = hasher.finalize();
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// The `*Test.php` files under `dir` (PHPUnit's default suffix), sorted.
pub fn test_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(walk(dir)?
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("Test.php"))
        .collect())
}

/// Deals `files` out round-robin to at most `workers` workers; none empty.
pub fn split<T: Clone>(files: &[T], workers: usize) -> Vec<Vec<T>> {
    let n = workers.clamp(1, files.len().max(1));
    let mut out = vec![Vec::new(); n];
    for (i, f) in files.iter().enumerate() {
        out[i % n].push(f.clone());
    }
    out
}

/// True when PHPUnit arguments pick the tests themselves (a path, a
/// filter, a suite or group): such a run is not split between workers.
pub fn selects_tests(args: &[String]) -> bool {
    const SELECTING: [&str; 5] = [
        "--filter",
        "--testsuite",
        "--group",
        "--exclude-group",
        "--test-suffix",
    ];
    args.iter().any(|a| {
        !a.starts_with('-')
            || SELECTING
                .iter()
                .any(|s| a == s || a.starts_with(&format!("{s}=")))
    })
}

/// The app's PHPUnit configuration file (`phpunit.xml`, else `phpunit.xml.dist`).
pub fn phpunit_config(source: &Path) -> Option<PathBuf> {
    ["phpunit.xml", "phpunit.xml.dist"]
        .iter()
        .map(|n| source.join(n))
        .find(|p| p.is_file())
}

/// Whether the app's PHPUnit configuration asks for colours
/// (`<phpunit colors="true">`); PHPUnit itself only honours it on a
/// terminal, which a container's piped output is not.
pub fn wants_colors(config: &str) -> bool {
    let Some(start) = config.find("<phpunit") else {
        return false;
    };
    let head = &config[start..];
    let head = &head[..head.find('>').unwrap_or(head.len())];
    head.contains("colors=\"true\"") || head.contains("colors='true'")
}

/// The PHPUnit arguments as the container needs them: a test path the
/// user gave relative to where they stand, or to the repository root,
/// becomes relative to the app folder (PHPUnit's working folder there).
/// Anything else is passed as it is.
pub fn container_args(args: &[String], cwd: &Path, root: &Path, source: &Path) -> Vec<String> {
    let source = source
        .canonicalize()
        .unwrap_or_else(|_| source.to_path_buf());
    args.iter()
        .map(|arg| {
            if arg.starts_with('-') || Path::new(arg).is_absolute() {
                return arg.clone();
            }
            [cwd, root]
                .iter()
                .filter_map(|base| base.join(arg).canonicalize().ok())
                .find_map(|full| {
                    full.strip_prefix(&source)
                        .ok()
                        .map(|rel| rel.to_string_lossy().into_owned())
                })
                .map(|rel| if rel.is_empty() { ".".to_string() } else { rel })
                .unwrap_or_else(|| arg.clone())
        })
        .collect()
}

/// The app's configuration with its test suites replaced by one suite of
/// `files` (relative to the configuration's folder), so a worker runs just
/// its share with the app's bootstrap, env and settings unchanged.
pub fn worker_config(config: &str, files: &[String]) -> String {
    let mut suite = String::from("<testsuites>\n        <testsuite name=\"devenv\">\n");
    for f in files {
        suite.push_str(&format!(
            "            <file>{}</file>\n",
            f.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    suite.push_str("        </testsuite>\n    </testsuites>");
    let start = config.find("<testsuites");
    let end = config
        .find("</testsuites>")
        .map(|i| i + "</testsuites>".len());
    match (start, end) {
        (Some(s), Some(e)) if s < e => format!("{}{suite}{}", &config[..s], &config[e..]),
        _ => match config.rfind("</phpunit>") {
            Some(i) => format!("{}    {suite}\n{}", &config[..i], &config[i..]),
            None => config.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths_from_the_users_folder_or_the_repo_root_become_app_relative() {
        let repo = tempfile::tempdir().unwrap();
        let app = repo.path().join("examples/app");
        std::fs::create_dir_all(app.join("tests/Unit")).unwrap();
        std::fs::write(app.join("tests/Unit/ATest.php"), "").unwrap();
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let from_root = container_args(
            &args(&["examples/app/tests/Unit/ATest.php", "--filter", "x"]),
            repo.path(),
            repo.path(),
            &app,
        );
        assert_eq!(from_root, args(&["tests/Unit/ATest.php", "--filter", "x"]));
        let from_tests = container_args(&args(&["Unit"]), &app.join("tests"), repo.path(), &app);
        assert_eq!(from_tests, args(&["tests/Unit"]));
        let unknown = container_args(&args(&["NoSuchPath"]), &app, repo.path(), &app);
        assert_eq!(unknown, args(&["NoSuchPath"]));
    }

    #[test]
    fn colours_are_read_from_the_phpunit_element() {
        assert!(wants_colors(
            "<?xml?>\n<phpunit bootstrap=\"a\"\n colors=\"true\">"
        ));
        assert!(!wants_colors(
            "<phpunit colors=\"false\"><php colors=\"true\"/>"
        ));
        assert!(!wants_colors("<other/>"));
    }

    #[test]
    fn the_hash_follows_names_contents_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        std::fs::write(m.join("2024_01_01_create_a.php"), "a").unwrap();
        std::fs::create_dir(m.join("sub")).unwrap();
        std::fs::write(m.join("sub/2024_01_02_create_b.php"), "b").unwrap();
        let base = migrations_hash(m, "migrate").unwrap();
        assert_eq!(base.len(), 16);
        assert_eq!(migrations_hash(m, "migrate").unwrap(), base, "stable");
        assert_ne!(migrations_hash(m, "migrate --seed").unwrap(), base);
        std::fs::write(m.join("sub/2024_01_02_create_b.php"), "b2").unwrap();
        let changed = migrations_hash(m, "migrate").unwrap();
        assert_ne!(changed, base);
        std::fs::rename(
            m.join("2024_01_01_create_a.php"),
            m.join("2024_01_01_create_c.php"),
        )
        .unwrap();
        assert_ne!(migrations_hash(m, "migrate").unwrap(), changed);
        assert!(migrations_hash(&m.join("missing"), "migrate").is_err());
    }

    #[test]
    fn test_files_are_found_recursively_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        for f in [
            "Unit/BTest.php",
            "Feature/ATest.php",
            "Feature/Helper.php",
            "TestCase.php",
        ] {
            std::fs::create_dir_all(t.join(f).parent().unwrap()).unwrap();
            std::fs::write(t.join(f), "<?php").unwrap();
        }
        assert_eq!(
            test_files(t).unwrap(),
            [
                PathBuf::from("Feature/ATest.php"),
                PathBuf::from("Unit/BTest.php")
            ]
        );
    }

    #[test]
    fn files_are_dealt_round_robin_without_empty_workers() {
        let files = ["a", "b", "c", "d", "e"];
        assert_eq!(split(&files, 2), vec![vec!["a", "c", "e"], vec!["b", "d"]]);
        assert_eq!(split(&files[..1], 4), vec![vec!["a"]]);
        assert_eq!(split::<&str>(&[], 3), vec![Vec::<&str>::new()]);
        assert_eq!(split(&files, 1), vec![files.to_vec()]);
    }

    #[test]
    fn a_path_or_a_filter_selects_tests_but_other_flags_do_not() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selects_tests(&args(&["tests/Unit"])));
        assert!(selects_tests(&args(&["--filter", "test_x"])));
        assert!(selects_tests(&args(&["--filter=test_x"])));
        assert!(selects_tests(&args(&["--testsuite=Unit"])));
        assert!(!selects_tests(&args(&[
            "--stop-on-failure",
            "--colors=never"
        ])));
        assert!(!selects_tests(&[]));
    }

    #[test]
    fn a_worker_config_keeps_everything_but_the_suites() {
        let config = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/laravel/phpunit.xml"),
        )
        .unwrap();
        let out = worker_config(
            &config,
            &["tests/Unit/ATest.php".into(), "tests/B&Test.php".into()],
        );
        assert!(out.contains("bootstrap=\"bootstrap/autoload.php\""));
        assert!(out.contains("<server name=\"APP_ENV\" value=\"testing\" force=\"true\"/>"));
        assert!(out.contains("<file>tests/Unit/ATest.php</file>"));
        assert!(out.contains("<file>tests/B&amp;Test.php</file>"));
        assert!(!out.contains("<directory suffix=\"Test.php\">"));
        assert_eq!(out.matches("<testsuites>").count(), 1);

        let bare = "<phpunit bootstrap=\"x.php\">\n</phpunit>\n";
        let out = worker_config(bare, &["tests/ATest.php".into()]);
        assert!(out.contains("<file>tests/ATest.php</file>"), "{out}");
        assert!(out.ends_with("</phpunit>\n"), "{out}");
    }
}
