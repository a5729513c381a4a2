//! End-to-end: the example Laravel stack (app + PostgreSQL + Redis + mail
//! catcher + S3) from presets, on the real engine: all four backing services
//! OK from the app, a mail reaches the catcher, a stored file is listable in
//! S3, a second `up` changes nothing, a broken migration fails `up`; the
//! container runs the checkout's code after `up -d`, restarts and recreates,
//! and what it makes lands in the checkout, in bind and in sync mode.

use crate::support;

use support::{copy_dir, eventually, http_get, repo, stderr, text, Project};

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
image = "devenv-e2e-laravel-mount:latest"
ports = ["{app}:8080"]
{extra_app}
"#,
        repo = repo().display()
    )
}

fn project(name: &str, extra_app: &str) -> (Project, u16, u16, u16) {
    let [app, mail_ui, s3]: [u16; 3] = support::free_ports(3).try_into().unwrap();
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
            "devenv-e2e-laravel-mount:latest",
            "devenv-e2e-laravel-mount-live:latest",
        ),
    );
    copy_dir(&repo().join("examples/laravel"), &p.path().join("app"));
    p.ok(&["up", "-d"]);
    let mut watch = support::KillOnDrop(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
            .args(["--progress", "plain", "watch"])
            .current_dir(p.path())
            .stderr(std::fs::File::create(p.path().join("watch.log")).unwrap())
            .spawn()
            .unwrap(),
    );

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
    watch.stop();
    let log = std::fs::read_to_string(p.path().join("watch.log")).unwrap_or_default();
    assert!(
        shown,
        "the edited view is served on the next request:\n{log}"
    );
    assert!(migrated, "the new migration ran:\n{log}");
    assert!(rebuilt, "a changed composer.lock rebuilt the app:\n{log}");
}

/// The example app copied into `app/` of the project, shared with the app
/// container by one `sync` rule (bind or sync by `mount`), with no watcher
/// unless the test starts one.
fn checkout_project(name: &str, mount: &str) -> (Project, u16) {
    let rules = format!(
        r#"{mount}
[[services.app.watch]]
path = "app"
action = "sync"
target = "/var/www/html"
ignore = ["vendor/", "storage/"]

[test]
source = "app"
"#
    );
    let (p, app, ..) = project(name, &rules);
    copy_dir(&repo().join("examples/laravel"), &p.path().join("app"));
    (p, app)
}

fn owner_of(path: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid())
}

fn me() -> (u32, u32) {
    (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    )
}

const PROBE_ROUTE: &str =
    "\nRoute::get('/checkout-probe', fn () => 'served-from-the-checkout')->withoutMiddleware('web');\n";

const PROBE_MIGRATION: &str = "<?php\nuse Illuminate\\Database\\Migrations\\Migration;\nuse Illuminate\\Support\\Facades\\DB;\n\
     return new class extends Migration {\n    public function up() { DB::statement('CREATE TABLE checkout_probe (x int)'); }\n    public function down() {}\n};\n";

/// The three checks of issue 10 on a running stack: a new route answers, a
/// new migration runs with `devenv migrate`, `make:controller` lands in the
/// checkout owned by the invoking user and survives `restart` and
/// `down` + `up -d`. `settle` waits for whatever must happen between a
/// host or container change and its effect (nothing in bind mode).
fn the_container_runs_the_checkout(p: &mut Project, app: u16, settle: &dyn Fn(&Project, &str)) {
    let (code, body) = http_get(app, "/status.json");
    assert_eq!(code, 200, "the status page passes:\n{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    for part in ["database", "cache", "mail", "storage"] {
        assert_eq!(status[part], "OK", "{part}: {body}");
    }
    // The status page renders a Blade view: compiled into the checkout's storage.
    assert_eq!(http_get(app, "/").0, 200);

    let routes = p.path().join("app/routes/web.php");
    let mut web = std::fs::read_to_string(&routes).unwrap();
    web.push_str(PROBE_ROUTE);
    std::fs::write(&routes, web).unwrap();
    settle(p, "routes/web.php");
    let (code, body) = http_get(app, "/checkout-probe");
    assert_eq!(
        (code, body.trim()),
        (200, "served-from-the-checkout"),
        "a route added on the host answers"
    );

    p.write(
        "app/database/migrations/2099_01_01_000000_create_checkout_probe.php",
        PROBE_MIGRATION,
    );
    settle(
        p,
        "database/migrations/2099_01_01_000000_create_checkout_probe.php",
    );
    let out = p.ok(&["migrate"]);
    assert!(
        text(&out).contains("2099_01_01_000000_create_checkout_probe"),
        "devenv migrate runs the new migration:\n{}",
        text(&out)
    );
    assert_eq!(
        p.psql("SELECT to_regclass('checkout_probe') IS NOT NULL").0,
        "t"
    );

    p.ok(&[
        "exec",
        "app",
        "--",
        "php",
        "artisan",
        "make:controller",
        "CheckoutProbeController",
    ]);
    let made = p
        .path()
        .join("app/app/Http/Controllers/CheckoutProbeController.php");
    settle(p, "app/Http/Controllers/CheckoutProbeController.php");
    assert!(made.is_file(), "make:controller's file is in the checkout");
    assert_eq!(owner_of(&made), me(), "owned by the invoking user");

    p.ok(&["restart", "app"]);
    settle(p, "");
    assert!(made.is_file(), "the controller survives `restart`");
    p.ok(&["down"]);
    p.ok(&["up", "-d"]);
    settle(p, "");
    assert!(made.is_file(), "the controller survives `down` + `up -d`");
    let out = p.ok(&[
        "exec",
        "app",
        "--",
        "cat",
        "/var/www/html/app/Http/Controllers/CheckoutProbeController.php",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("class CheckoutProbeController"));
    let (code, body) = http_get(app, "/checkout-probe");
    assert_eq!(
        (code, body.trim()),
        (200, "served-from-the-checkout"),
        "the recreated container serves the checkout"
    );
}

#[test]
fn r10_bind_mode_runs_the_checkout_after_up_d_restart_and_recreate() {
    warm();
    let (mut p, app) = checkout_project("wtmountbind", "");
    let out = p.ok(&["up", "-d"]);
    assert!(
        !stderr(&out).contains("synced"),
        "a local engine binds, it does not copy:\n{}",
        text(&out)
    );
    the_container_runs_the_checkout(&mut p, app, &|_, _| {});

    // The app writes its storage and bootstrap cache in the checkout, as the user.
    let views = p.path().join("app/storage/framework/views");
    let compiled: Vec<_> = std::fs::read_dir(&views)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".gitignore")
        .collect();
    assert!(
        !compiled.is_empty(),
        "Blade compiled its views into the checkout's storage"
    );
    assert_eq!(owner_of(&compiled[0].path()), me());

    // `run` sees the working tree too.
    let out = p.ok(&["run", "--rm", "app", "--", "php", "artisan", "route:list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checkout-probe"),
        "{}",
        text(&out)
    );

    // `devenv test` still mounts the tree read-only.
    p.write(
        "app/tests/Feature/ReadOnlyTreeTest.php",
        "<?php\nnamespace Tests\\Feature;\nuse Tests\\TestCase;\nclass ReadOnlyTreeTest extends TestCase {\n    public function test_the_tree_is_read_only(): void {\n        $this->assertFalse(is_writable(base_path('routes/web.php')));\n        $this->assertTrue(is_writable(storage_path('framework')));\n    }\n}\n",
    );
    let out = p.ok(&["test", "--", "--filter", "ReadOnlyTreeTest"]);
    assert!(
        text(&out).contains("1 test, 2 assertions: 0 failures"),
        "{}",
        text(&out)
    );
}

#[test]
fn r10_sync_mode_runs_the_checkout_with_devenv_watch_running() {
    warm();
    let (mut p, app) = checkout_project("wtmountsync", "mount = \"sync\"");
    let out = p.ok(&["up", "-d"]);
    assert!(
        stderr(&out).contains("synced"),
        "forced sync mode copies the tree before the app is ready:\n{}",
        text(&out)
    );
    let mut watch = support::KillOnDrop(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
            .args(["--progress", "plain", "watch"])
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(p.path().join("watch.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log_path = p.path().join("watch.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(eventually(30, || log().contains("watching")), "{}", log());
    // A host file is in the container, or a container file on the host, with the same bytes.
    let settle = |p: &Project, rel: &str| {
        if rel.is_empty() {
            return;
        }
        let host = p.path().join("app").join(rel);
        let same = || {
            let out = p.run(&["exec", "app", "--", "cat", &format!("/var/www/html/{rel}")]);
            out.status.success() && std::fs::read(&host).ok() == Some(out.stdout)
        };
        let started = std::time::Instant::now();
        assert!(
            eventually(10, same),
            "`{rel}` never matched on both sides:\n{}",
            log()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "`{rel}` took {:?}:\n{}",
            started.elapsed(),
            log()
        );
    };
    the_container_runs_the_checkout(&mut p, app, &settle);
    // `run` gets the working tree too, not the image's copy.
    let out = p.ok(&["run", "--rm", "app", "--", "php", "artisan", "route:list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checkout-probe"),
        "{}",
        text(&out)
    );
    watch.stop();
    assert!(
        log().contains("copied 1 file back from the container"),
        "{}",
        log()
    );
}

/// `devenv` as uid 1000 (a developer's usual uid) when the tests run as
/// root: `setpriv` with the Docker socket's group; otherwise as ourselves.
fn as_developer(p: &Project, args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::MetadataExt;
    let bin = assert_cmd::cargo::cargo_bin("devenv");
    let mut cmd = if me().0 == 0 {
        let docker = std::fs::metadata("/var/run/docker.sock").unwrap().gid();
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=1000".to_string(),
            "--regid=1000".to_string(),
            format!("--groups={docker}"),
        ])
        .arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    let out = cmd
        .args(args)
        .current_dir(p.path())
        .env("HOME", p.path())
        .env("NO_COLOR", "1")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "devenv {args:?} as the developer failed:\n{}",
        text(&out)
    );
    out
}

fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

#[test]
fn r10_bind_mode_as_uid_1000_writes_storage_and_owns_what_the_container_makes() {
    warm();
    let (mut p, app) = checkout_project("wtmountuid", "");
    let developer = if me().0 == 0 { (1000, 1000) } else { me() };
    chown_tree(p.path(), developer.0, developer.1);
    p.uses_docker = true;
    as_developer(&p, &["up", "-d"]);
    let (code, body) = http_get(app, "/status.json");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["database"], "OK", "{body}");
    assert_eq!(http_get(app, "/").0, 200, "the status page renders");
    let views = p.path().join("app/storage/framework/views");
    let compiled: Vec<_> = std::fs::read_dir(&views)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".gitignore")
        .collect();
    assert!(
        !compiled.is_empty(),
        "Blade wrote its compiled views into the checkout"
    );
    assert_eq!(owner_of(&compiled[0].path()), developer);

    as_developer(
        &p,
        &[
            "exec",
            "app",
            "--",
            "php",
            "artisan",
            "make:controller",
            "DeveloperController",
        ],
    );
    let made = p
        .path()
        .join("app/app/Http/Controllers/DeveloperController.php");
    assert_eq!(
        owner_of(&made),
        developer,
        "owned by the developer, not root"
    );
    as_developer(&p, &["down"]);
}
