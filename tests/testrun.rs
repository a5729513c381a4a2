//! End-to-end tests of `devenv test`: the example Laravel app's suite run by
//! the real binary on the real engine, with the app image built from
//! docker/app/Dockerfile (target `dev`) on first use. Fixtures that change
//! the app (a failing test, a migration) work on a copy of it.

use crate::support;

use std::path::Path;

use support::{app_stack, repo, stderr, text, Project};

use support::APP_IMAGE;

/// The example app's image, built once (see `support::warm_app_image`).
fn warm() {
    support::warm_app_image();
}

/// A copy of the example app to change freely.
fn app_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&repo().join("examples/laravel"), dir.path());
    dir
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One psql query on the test stack's server, as the superuser, in `database`.
fn sql(p: &mut Project, database: &str, query: &str) -> String {
    let out = p.ok(&[
        "exec", "db", "--", "psql", "-U", "app", "-d", database, "-tAc", query,
    ]);
    stdout(&out).trim().to_string()
}

/// Databases devenv made on the server.
fn devenv_databases(p: &mut Project) -> Vec<String> {
    sql(
        p,
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE 'devenv\\_%' ORDER BY 1",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// The template databases on the server.
fn templates(p: &mut Project) -> Vec<String> {
    devenv_databases(p)
        .into_iter()
        .filter(|d| d.starts_with("devenv_tpl_"))
        .collect()
}

/// Nothing half-made: only the template (and the next run's spares), no
/// one-off containers.
fn assert_nothing_left(p: &mut Project) {
    let dbs = devenv_databases(p);
    assert!(
        dbs.iter()
            .all(|d| d.starts_with("devenv_tpl_") || d.starts_with("devenv_spare_")),
        "only the template and spares may stay: {dbs:?}"
    );
    assert!(templates(p).len() <= 1, "{dbs:?}");
    let services: Vec<String> = p.ps().iter().map(|s| s["service"].to_string()).collect();
    assert_eq!(services.len(), 2, "only db and cache run: {services:?}");
}

fn test_run(p: &mut Project, args: &[&str]) -> std::process::Output {
    p.uses_docker = true;
    let mut all = vec!["--progress", "plain", "test"];
    all.extend_from_slice(args);
    p.run(&all)
}

#[test]
fn the_example_suite_passes_and_the_summary_counts_what_phpunit_ran() {
    warm();
    let mut p = Project::new("trpass", &app_stack(&repo().join("examples/laravel"), ""));
    let out = test_run(&mut p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = stdout(&out);
    // PHPUnit's own result line, streamed through: `OK (11 tests, 22 assertions)`.
    let ok = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OK ("))
        .unwrap_or_else(|| panic!("PHPUnit's output is shown:\n{}", text(&out)));
    let (tests, assertions) = ok.trim_end_matches(')').split_once(", ").unwrap();
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "✔ {tests}, {assertions}: 0 failures, 0 errors, 0 skipped in "
        )),
        "{summary}"
    );
    assert_nothing_left(&mut p);
}

#[test]
fn a_failing_test_makes_the_run_fail_and_the_summary_names_it() {
    warm();
    let app = app_copy();
    std::fs::write(
        app.path().join("tests/Feature/FailingTest.php"),
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
    )
    .unwrap();
    let mut p = Project::new("trfail", &app_stack(app.path(), ""));
    let out = test_run(&mut p, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "PHPUnit's code:\n{}",
        text(&out)
    );
    let stdout = stdout(&out);
    assert!(
        stdout.contains("1 failure, 0 errors, 0 skipped"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains(r"failed: Tests\Feature\FailingTest::test_it_fails"),
        "{}",
        text(&out)
    );
    assert_nothing_left(&mut p);
}

/// The test cases of a JUnit file, read by a real XML parser (a malformed
/// file fails it): `Class::method` (PHPUnit's `class`) and whether each
/// holds a `<failure>`; and the root element's name.
fn junit_cases(xml: &str) -> (String, Vec<(String, bool)>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut root = String::new();
    let mut cases = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let qname = e.name();
                let name: &str = qname.as_ref();
                let name = name.to_string();
                if root.is_empty() {
                    root = name.clone();
                }
                let attr = |key: &str| {
                    e.try_get_attribute(key)
                        .unwrap()
                        .map(|a| a.value.to_string())
                        .unwrap_or_default()
                };
                match name.as_str() {
                    "testcase" => {
                        cases.push((format!("{}::{}", attr("class"), attr("name")), false))
                    }
                    "failure" => cases.last_mut().expect("a failure inside a testcase").1 = true,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (root, cases)
}

#[test]
fn r26_3_junit_lands_on_the_host_merged_across_workers_with_the_failure_named() {
    warm();
    let app = app_copy();
    std::fs::write(
        app.path().join("tests/Feature/FailingTest.php"),
        "<?php\n\nnamespace Tests\\Feature;\n\nuse Tests\\TestCase;\n\nclass FailingTest extends TestCase\n{\n    public function test_it_fails()\n    {\n        $this->assertSame('expected', 'actual');\n    }\n}\n",
    )
    .unwrap();
    let mut p = Project::new("trjunit", &app_stack(app.path(), ""));
    let out = test_run(&mut p, &["--parallel", "2", "--junit", "reports/junit.xml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let path = p.path().join("reports/junit.xml");
    let xml = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), text(&out)));
    let (root, cases) = junit_cases(&xml);
    assert_eq!(root, "testsuites", "{xml}");
    let failed: Vec<&str> = cases
        .iter()
        .filter(|(_, failed)| *failed)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        failed,
        [r"Tests\Feature\FailingTest::test_it_fails"],
        "{xml}"
    );
    // Both workers' cases, as many as the summary line counts.
    let summary = stdout(&out);
    assert!(
        summary.contains(&format!("✘ {} tests,", cases.len())),
        "{} cases in the file:\n{}",
        cases.len(),
        text(&out)
    );
    assert!(summary.contains("(2 workers)"), "{}", text(&out));
    assert_nothing_left(&mut p);
}

#[test]
fn a_second_run_reuses_the_template_and_a_changed_migration_rebuilds_it_once() {
    warm();
    let app = app_copy();
    let mut p = Project::new("trtemplate", &app_stack(app.path(), ""));
    let built = |out: &std::process::Output| stderr(out).contains("building template");

    let first = test_run(&mut p, &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(built(&first), "{}", text(&first));
    let template = templates(&mut p);

    let second = test_run(&mut p, &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(!built(&second), "no migrating again:\n{}", text(&second));
    assert!(stderr(&second).contains("is up to date with the migrations"));
    assert_eq!(templates(&mut p), template);
    assert!(
        stderr(&second).contains("a spare cloned from"),
        "the first run left a spare for the second:\n{}",
        text(&second)
    );

    let migration = app
        .path()
        .join("database/migrations/2024_01_01_000000_create_notes_table.php");
    let mut code = std::fs::read_to_string(&migration).unwrap();
    code.push_str("// changed\n");
    std::fs::write(&migration, code).unwrap();

    let third = test_run(&mut p, &[]);
    assert!(third.status.success(), "{}", text(&third));
    assert!(built(&third), "{}", text(&third));
    let rebuilt = templates(&mut p);
    assert_eq!(rebuilt.len(), 1, "the old template goes: {rebuilt:?}");
    assert_ne!(rebuilt, template);

    let fourth = test_run(&mut p, &[]);
    assert!(fourth.status.success(), "{}", text(&fourth));
    assert!(!built(&fourth), "rebuilt once:\n{}", text(&fourth));

    let fresh = test_run(&mut p, &["--fresh"]);
    assert!(fresh.status.success(), "{}", text(&fresh));
    assert!(built(&fresh), "--fresh rebuilds:\n{}", text(&fresh));
}

#[test]
fn parallel_workers_each_get_their_own_database() {
    warm();
    let app = app_copy();
    // Sorted first and second, so round-robin puts them on different workers.
    for name in ["DbNameATest", "DbNameBTest"] {
        std::fs::write(
            app.path().join(format!("tests/Feature/{name}.php")),
            format!(
                r#"<?php

namespace Tests\Feature;

use Illuminate\Support\Facades\DB;
use Tests\TestCase;

class {name} extends TestCase
{{
    public function test_prints_its_database()
    {{
        $db = DB::selectOne('SELECT current_database() AS name')->name;
        fwrite(STDERR, "\nconnected-db=$db redis-db=" . env('REDIS_DB') . "\n");
        $this->assertSame(env('DB_DATABASE'), $db);
    }}
}}
"#
            ),
        )
        .unwrap();
    }
    let mut p = Project::new("trparallel", &app_stack(app.path(), ""));
    let out = test_run(&mut p, &["--parallel", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = stdout(&out);
    let mut seen: Vec<(String, String, String)> = printed
        .lines()
        .filter_map(|l| {
            let (worker, rest) = l.split_once(" | ")?;
            let rest = rest.strip_prefix("connected-db=")?;
            let (db, redis) = rest.split_once(" redis-db=")?;
            Some((worker.to_string(), db.to_string(), redis.to_string()))
        })
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 2, "{}", text(&out));
    assert_eq!((seen[0].0.as_str(), seen[1].0.as_str()), ("w1", "w2"));
    assert_ne!(seen[0].1, seen[1].1, "distinct databases: {seen:?}");
    assert_ne!(seen[0].2, seen[1].2, "distinct Redis databases: {seen:?}");
    assert!(
        seen.iter().all(|s| s.1.starts_with("devenv_test_")),
        "{seen:?}"
    );
    assert!(printed.contains("(2 workers)"), "{}", text(&out));
    assert_nothing_left(&mut p);

    // Arguments that pick tests make one worker.
    let out = test_run(
        &mut p,
        &["--parallel", "2", "--", "--filter", "DbNameATest"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("✔ 1 test, 1 assertion"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_development_database_is_untouched_by_a_test_run() {
    warm();
    let mut p = Project::new("trdevdb", &app_stack(&repo().join("examples/laravel"), ""));
    p.ok(&["up", "-d", "db", "cache"]);
    sql(
        &mut p,
        "app",
        "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('kept');",
    );
    let out = test_run(&mut p, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sql(&mut p, "app", "SELECT string_agg(v, ',') FROM marker"),
        "kept"
    );
    assert_eq!(
        sql(
            &mut p,
            "app",
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "1",
        "no migrations ran in the development database"
    );
}

#[test]
fn an_image_without_the_test_command_is_named_and_nothing_is_left() {
    warm();
    let mut p = Project::new(
        "trnophpunit",
        &app_stack(
            &repo().join("examples/laravel"),
            "command = [\"phpunit-missing\"]",
        ),
    );
    let out = test_run(&mut p, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "`phpunit-missing` is not in the image `{APP_IMAGE}` of service `app`"
        )),
        "{}",
        text(&out)
    );
    assert_nothing_left(&mut p);
}

#[test]
fn a_failing_migration_names_the_cause_and_leaves_no_template() {
    warm();
    let app = app_copy();
    std::fs::write(
        app.path()
            .join("database/migrations/2024_02_01_000000_break.php"),
        r#"<?php

use Illuminate\Database\Migrations\Migration;

return new class extends Migration
{
    public function up()
    {
        throw new RuntimeException('this migration is broken');
    }
};
"#,
    )
    .unwrap();
    let mut p = Project::new("trbadmigration", &app_stack(app.path(), ""));
    let out = test_run(&mut p, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("migrations failed while building the template database"),
        "{err}"
    );
    assert!(
        err.contains("this migration is broken"),
        "the artisan output is shown:\n{err}"
    );
    assert_eq!(devenv_databases(&mut p), Vec::<String>::new());
    assert_nothing_left(&mut p);
}

#[test]
fn a_database_that_never_gets_ready_fails_the_run_naming_it() {
    warm();
    let text_stack = app_stack(&repo().join("examples/laravel"), "").replace(
        "use = \"postgres\"\nports = []",
        "use = \"postgres\"\nports = []\nready = { postgres = { port = 5999 } }\nready_timeout = \"2s\"",
    );
    let mut p = Project::new("trnotready", &text_stack);
    let out = test_run(&mut p, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("service `db` was not ready after 2s"),
        "{}",
        text(&out)
    );
    assert!(
        p.ps().iter().all(|s| s["service"] != "app"),
        "no test container is left"
    );
}

/// Issue 11, item 13: the edges of `devenv test` a PHPUnit user trips on.
#[test]
fn r11_13_no_tests_paths_colours_and_no_green_line_before_a_red_summary() {
    warm();
    let mut p = Project::new("wtsession-tredges", "");
    let app = p.path().join("app");
    support::copy_dir(&repo().join("examples/laravel"), &app);
    p.write(
        "dev.toml",
        &format!(
            "[project]\nname = \"{}\"\n\n{}",
            p.name,
            app_stack(Path::new("app"), "")
        ),
    );

    // A filter that matches nothing: said as such, and not a success.
    let out = test_run(&mut p, &["--", "--filter", "NoSuchTest"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("✘ no tests executed"),
        "{}",
        text(&out)
    );
    assert!(!stdout(&out).contains("no JUnit report"), "{}", text(&out));

    // A test path relative to the repository root, then to where the user stands.
    let out = test_run(&mut p, &["--", "app/tests/Unit/StatusCheckerTest.php"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("✔ "), "{}", text(&out));
    let out = p
        .cmd()
        .current_dir(app.join("tests"))
        .args([
            "--progress",
            "plain",
            "test",
            "--",
            "Unit/StatusCheckerTest.php",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !stdout(&out).contains("no tests executed"),
        "{}",
        text(&out)
    );

    // On a terminal, phpunit.xml's `colors="true"` is honoured.
    let cmd = format!(
        "exec {} --progress plain test -- tests/Unit/StatusCheckerTest.php",
        assert_cmd::cargo::cargo_bin("devenv").display()
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .current_dir(p.path())
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    let ok_line = screen
        .lines()
        .find(|l| l.contains("OK ("))
        .unwrap_or_default();
    assert!(
        ok_line.contains("\x1b["),
        "PHPUnit's colours are lost:\n{screen}"
    );

    // A failing run: no green line above the red summary.
    std::fs::write(
        app.join("tests/Unit/RedTest.php"),
        "<?php\n\nnamespace Tests\\Unit;\n\nuse PHPUnit\\Framework\\TestCase;\n\nclass RedTest extends TestCase\n{\n    public function test_red()\n    {\n        $this->assertTrue(false);\n    }\n}\n",
    )
    .unwrap();
    let out = test_run(&mut p, &["--", "tests/Unit/RedTest.php"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !stderr(&out).contains("✔ test PHPUnit finished"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("✘ test PHPUnit finished"),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("✘ 1 test"), "{}", text(&out));
}
