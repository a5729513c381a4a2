//! End-to-end: the example Laravel stack (app + PostgreSQL + Redis + mail
//! catcher + S3) from presets, on the real engine: all four backing services
//! OK from the app, a mail reaches the catcher, a stored file is listable in
//! S3, a second `up` changes nothing, a broken migration fails `up`.

mod support;

use support::{copy_dir, eventually, free_port, http_get, repo, stderr, text, Project};

/// The example stack with free host ports; the app image is shared by the tests.
fn laravel_stack(app: u16, mail_ui: u16, s3: u16, extra_app: &str) -> String {
    format!(
        r#"[services.db]
use = "postgres"
ports = []

[services.cache]
use = "redis"
ports = []

[services.mail]
use = "mailhog"
ports = ["{mail_ui}:8025"]

[services.s3]
use = "minio"
env = {{ MINIO_DEFAULT_BUCKETS = "app" }}
ports = ["{s3}:9000"]

[services.app]
use = "laravel"
build = {{ context = "{repo}", dockerfile = "docker/app/Dockerfile", target = "dev" }}
image = "devenv-e2e-laravel:latest"
ports = ["{app}:8080"]
{extra_app}
"#,
        repo = repo().display()
    )
}

fn project(name: &str, extra_app: &str) -> (Project, u16, u16, u16) {
    let (app, mail_ui, s3) = (free_port(), free_port(), free_port());
    let p = Project::new(name, &laravel_stack(app, mail_ui, s3, extra_app));
    std::fs::create_dir_all(p.path().join("seeds")).unwrap();
    std::fs::copy(
        repo().join("seeds/001_welcome_note.sql"),
        p.path().join("seeds/001_welcome_note.sql"),
    )
    .unwrap();
    (p, app, mail_ui, s3)
}

/// Builds the stack's images once per test binary (and one binary at a time).
fn warm() {
    static WARM: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    WARM.get_or_init(|| {
        support::with_image_lock(|| {
            let (mut p, ..) = project("e2elaravelwarm", "");
            p.ok(&["--progress", "plain", "up", "-d", "--no-hooks"]);
        })
    });
}

#[test]
fn the_laravel_stack_comes_up_migrated_with_mail_and_s3_working() {
    warm();
    let (mut p, app, mail_ui, s3) = project("e2elaravel", "");
    let out = p.ok(&["up", "-d"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!("http://localhost:{app}")),
        "URLs are printed:\n{stdout}"
    );
    assert!(
        stderr(&out).contains("Migrated:"),
        "the migration output is shown:\n{}",
        text(&out)
    );

    let (code, body) = http_get(app, "/status.json");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    for part in ["database", "cache", "mail", "storage"] {
        assert_eq!(status[part], "OK", "{part}: {body}");
    }

    let (code, body) = http_get(app, "/send-mail?to=e2e@example.com");
    assert_eq!(code, 200, "{body}");
    let (_, inbox) = http_get(mail_ui, "/messages/");
    assert!(
        inbox.contains("e2e@example.com"),
        "the mail reached the catcher:\n{inbox}"
    );

    let (code, body) = http_get(app, "/store-file?name=e2e.txt");
    assert_eq!(code, 201, "{body}");
    let (_, listing) = http_get(s3, "/app?list-type=2");
    assert!(
        listing.contains("e2e.txt"),
        "the file is listable in S3:\n{listing}"
    );

    // Migrations, the seeder and the SQL seed all ran.
    let (titles, _) = p.psql("SELECT title FROM notes ORDER BY title");
    assert!(
        titles.contains("From seeds/"),
        "seeds/001 applied:\n{titles}"
    );
    assert!(
        titles.lines().count() >= 4,
        "the seeder's notes too:\n{titles}"
    );

    let before = p.ids();
    let out = p.ok(&["up", "-d"]);
    assert!(
        !stderr(&out).contains("building"),
        "a second up builds nothing:\n{}",
        text(&out)
    );
    assert_eq!(p.ids(), before, "a second up recreates nothing");
}

#[test]
fn a_broken_migration_fails_up_with_the_artisan_output() {
    warm();
    let (mut p, ..) = project(
        "e2ebrokenmig",
        r#"volumes = ["./broken.php:/var/www/html/database/migrations/2099_01_01_000000_broken.php:ro"]"#,
    );
    p.write(
        "broken.php",
        "<?php\nuse Illuminate\\Database\\Migrations\\Migration;\nuse Illuminate\\Support\\Facades\\DB;\n\
         return new class extends Migration {\n    public function up() { DB::statement('CREATE TABLE broken (x no_such_type)'); }\n    public function down() {}\n};\n",
    );
    p.uses_docker = true;
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("hook `php artisan migrate --force` of service `app` failed"),
        "{err}"
    );
    assert!(
        err.contains("no_such_type"),
        "artisan's own output is shown:\n{err}"
    );
    let app = p.ps().into_iter().find(|s| s["service"] == "app").unwrap();
    assert_eq!(
        app["state"], "running",
        "containers are left running for inspection"
    );
}

#[test]
fn live_sync_shows_an_edited_view_runs_a_new_migration_and_rebuilds_on_composer_lock() {
    warm();
    let rules = r#"
[[services.app.watch]]
path = "app"
action = "sync"
target = "/var/www/html"
ignore = ["vendor/", "storage/"]

[[services.app.watch]]
path = "app/database/migrations"
action = "exec"
run = "php artisan migrate --force"

[[services.app.watch]]
path = "app/composer.lock"
action = "rebuild"
"#;
    let (mut p, app, ..) = project("e2elive", rules);
    // Its own tag: the rebuild below must not touch the image other tests run.
    let stack = std::fs::read_to_string(p.path().join("dev.toml")).unwrap();
    p.write(
        "dev.toml",
        &stack.replace(
            "devenv-e2e-laravel:latest",
            "devenv-e2e-laravel-live:latest",
        ),
    );
    copy_dir(&repo().join("examples/laravel"), &p.path().join("app"));
    p.ok(&["up", "-d"]);
    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
        .args(["--progress", "plain", "watch"])
        .current_dir(p.path())
        .stderr(std::fs::File::create(p.path().join("watch.log")).unwrap())
        .spawn()
        .unwrap();

    let view = p.path().join("app/resources/views/status.blade.php");
    let text = std::fs::read_to_string(&view)
        .unwrap()
        .replace("<h1>{{ $app }}</h1>", "<h1>{{ $app }} edited-live</h1>");
    std::fs::write(&view, text).unwrap();
    let shown = eventually(20, || http_get(app, "/").1.contains("edited-live"));

    p.write(
        "app/database/migrations/2099_01_01_000000_create_live_probe.php",
        "<?php\nuse Illuminate\\Database\\Migrations\\Migration;\nuse Illuminate\\Support\\Facades\\DB;\n\
         return new class extends Migration {\n    public function up() { DB::statement('CREATE TABLE live_probe (x int)'); }\n    public function down() {}\n};\n",
    );
    let migrated = eventually(30, || {
        p.psql("SELECT to_regclass('live_probe') IS NOT NULL").0 == "t"
    });

    // The image builds from the repository (unchanged), so the rebuild is
    // all cache hits and keeps the container: the log says it happened.
    p.write("app/composer.lock", "{\"packages\": []}\n");
    let log_path = p.path().join("watch.log");
    let rebuilt = eventually(240, || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("app rebuilt in")
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let log = std::fs::read_to_string(p.path().join("watch.log")).unwrap_or_default();
    assert!(
        shown,
        "the edited view is served on the next request:\n{log}"
    );
    assert!(migrated, "the new migration ran:\n{log}");
    assert!(rebuilt, "a changed composer.lock rebuilt the app:\n{log}");
}
