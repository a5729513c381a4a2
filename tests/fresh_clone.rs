//! Regression tests for issue 16: a fresh clone of this repository, whose
//! stack never ran, runs `devenv test` exactly as a warm checkout does. The
//! suite's other tests reuse warm stacks, which is how `seeds/*.sql` being
//! applied before any migration went unnoticed.
//!
//! Both cases run in one test, one after the other: the clone's `dev.toml`
//! publishes the example's fixed host ports, which two stacks cannot share.

use crate::support;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use support::{repo, text, warm_images};

/// A clone of this repository in a temp folder, its stack (`-p name`) taken
/// down with its volumes on drop, from the clone itself.
struct Clone {
    dir: tempfile::TempDir,
    name: String,
}

impl Clone {
    fn new(name: &str) -> Clone {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(repo())
            .arg(dir.path().join("shop"))
            .status()
            .unwrap();
        assert!(status.success(), "git clone of the repository failed");
        let clone = Clone {
            dir,
            name: name.to_string(),
        };
        // "No stack of that name on the engine", whatever an earlier run left.
        clone.devenv(&["down", "-v"]);
        assert_eq!(
            clone.devenv(&["ps", "--json"]).stdout,
            b"[]\n",
            "project `{name}` must start with nothing on the engine"
        );
        clone
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("shop")
    }

    fn devenv(&self, args: &[&str]) -> Output {
        Command::cargo_bin("devenv")
            .unwrap()
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .arg("-p")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap()
    }

    /// `psql -tAc QUERY` in the development database of the clone's stack.
    fn dev_sql(&self, query: &str) -> String {
        let out = self.devenv(&[
            "exec", "db", "--", "psql", "-U", "app", "-d", "app", "-tAc", query,
        ]);
        assert!(out.status.success(), "psql failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

impl Drop for Clone {
    fn drop(&mut self) {
        self.devenv(&["down", "-v"]);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The development database holds neither the seeds' table nor devenv's
/// seed ledger: nothing was seeded (nor migrated) there.
fn assert_dev_database_unseeded(clone: &Clone) {
    assert_eq!(
        clone
            .dev_sql("SELECT to_regclass('notes') IS NULL AND to_regclass('devenv_seeds') IS NULL"),
        "t",
        "`devenv test` must not seed (or migrate) the development database"
    );
}

#[test]
fn r16_devenv_test_in_a_fresh_clone_runs_phpunit_and_never_seeds() {
    warm_images();
    assert!(Path::new(&repo().join("seeds")).is_dir());

    // A fresh clone, its stack never started: the suite passes.
    {
        let clone = Clone::new("r16clone");
        let out = clone.devenv(&["--progress", "plain", "test"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            stdout(&out).contains(" 0 failures, 0 errors"),
            "PHPUnit ran and its summary was printed:\n{}",
            text(&out)
        );
        assert!(
            !text(&out).contains("seeds/"),
            "no seed file is mentioned, let alone applied:\n{}",
            text(&out)
        );
        assert_dev_database_unseeded(&clone);
    }

    // The same with a failing test added: PHPUnit's exit code, the test named.
    let clone = Clone::new("r16fail");
    clone.write(
        "examples/laravel/tests/Feature/FailingTest.php",
        r#"<?php

namespace Tests\Feature;

use Tests\TestCase;

class FailingTest extends TestCase
{
    public function test_it_fails()
    {
        $this->assertSame('expected', 'actual');
    }
}
"#,
    );
    let out = clone.devenv(&["--progress", "plain", "test"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains(r"failed: Tests\Feature\FailingTest::test_it_fails"),
        "{}",
        text(&out)
    );
    assert_dev_database_unseeded(&clone);
}
