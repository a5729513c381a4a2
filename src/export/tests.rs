//! Export of the example Laravel stack: snapshots of the tree, the
//! production guarantees, the check, and the errors bad input gets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use super::*;
use crate::config::model::{
    Build, Condition, EnvValue, Hooks, Mount, Port, Probe, Protocol, Restart, Service, Stack,
    Volume,
};
use crate::export::config;

pub(crate) fn env(pairs: &[(&str, &str, bool)]) -> IndexMap<String, EnvValue> {
    pairs
        .iter()
        .map(|(k, v, secret)| {
            (
                k.to_string(),
                EnvValue {
                    value: v.to_string(),
                    secret: *secret,
                },
            )
        })
        .collect()
}

pub(crate) fn port(host: u16, container: u16) -> Port {
    Port {
        host_ip: None,
        host: Some(host),
        container,
        protocol: Protocol::Tcp,
        fixed: false,
        host_last: None,
        loopback_v6: false,
    }
}

pub(crate) fn service(name: &str, image: &str) -> Service {
    Service {
        name: name.into(),
        image: image.parse().unwrap(),
        build: None,
        fallback: None,
        command: None,
        entrypoint: None,
        env: IndexMap::new(),
        ports: Vec::new(),
        volumes: Vec::new(),
        depends_on: IndexMap::new(),
        ready: None,
        ready_timeout: Duration::from_secs(60),
        restart: Restart::UnlessStopped,
        runs_once: false,
        user: None,
        working_dir: None,
        extra_hosts: Vec::new(),
        hostname: None,
        web_port: None,
        profiles: Vec::new(),
        hooks: Hooks::default(),
        watch: Vec::new(),
        mount: None,
        k8s: None,
        interpolated: Vec::new(),
    }
}

pub(crate) const DB_PASSWORD: &str = "s3cr3t-db-pass";
pub(crate) const APP_KEY: &str = "base64:ZmFrZS1hcHAta2V5LWZvci10ZXN0cw==";
const MINIO_PASSWORD: &str = "minio-s3cr3t-pw";

/// The example stack of DESIGN.md, with mail and S3, as `config::load` resolves it.
pub(crate) fn laravel_stack() -> Stack {
    let mut db = service("db", "postgres:16-alpine");
    db.env = env(&[
        ("POSTGRES_USER", "app", false),
        ("POSTGRES_PASSWORD", DB_PASSWORD, true),
        ("POSTGRES_DB", "app", false),
    ]);
    db.ports = vec![port(5432, 5432)];
    db.volumes = vec![Mount::Volume {
        name: "pgdata".into(),
        target: "/var/lib/postgresql/data".into(),
        read_only: false,
    }];
    db.ready = Some(Probe::Postgres {
        port: 5432,
        user: "app".into(),
        password: DB_PASSWORD.into(),
        database: "app".into(),
    });

    let mut cache = service("cache", "redis:7-alpine");
    cache.ready = Some(Probe::Redis {
        port: 6379,
        username: None,
        password: None,
    });

    let mut mail = service("mail", "mailhog/mailhog");
    mail.ports = vec![port(1025, 1025), port(8025, 8025)];

    let mut s3 = service("s3", "minio/minio");
    s3.command = Some(vec![
        "server".into(),
        "/data".into(),
        "--console-address".into(),
        ":9001".into(),
    ]);
    s3.env = env(&[
        ("MINIO_ROOT_USER", "minio", false),
        ("MINIO_ROOT_PASSWORD", MINIO_PASSWORD, true),
    ]);
    s3.ports = vec![port(9000, 9000), port(9001, 9001)];
    s3.volumes = vec![Mount::Volume {
        name: "s3data".into(),
        target: "/data".into(),
        read_only: false,
    }];

    let mut app = service("app", "shop-app");
    app.build = Some(Build {
        context: "/work/shop".into(),
        dockerfile: "docker/app/Dockerfile".into(),
        target: Some("dev".into()),
        args: Default::default(),
        prepare: None,
    });
    app.env = env(&[
        ("APP_ENV", "local", false),
        ("APP_DEBUG", "true", false),
        ("APP_KEY", APP_KEY, true),
        ("DB_CONNECTION", "pgsql", false),
        ("DB_HOST", "db", false),
        ("DB_PORT", "5432", false),
        ("DB_DATABASE", "app", false),
        ("DB_USERNAME", "app", false),
        ("DB_PASSWORD", DB_PASSWORD, true),
        ("REDIS_HOST", "cache", false),
        ("MAIL_HOST", "mail", false),
        ("MAIL_PORT", "1025", false),
        ("AWS_ACCESS_KEY_ID", "minio", false),
        ("AWS_SECRET_ACCESS_KEY", MINIO_PASSWORD, false),
        ("AWS_DEFAULT_REGION", "us-east-1", false),
        ("AWS_BUCKET", "app", false),
        ("AWS_ENDPOINT", "http://s3:9000", false),
        ("AWS_USE_PATH_STYLE_ENDPOINT", "true", false),
    ]);
    app.ports = vec![port(8080, 8080)];
    app.volumes = vec![Mount::Bind {
        source: "/work/shop".into(),
        target: "/var/www/html".into(),
        read_only: false,
    }];
    app.depends_on = [
        ("db", Condition::Ready),
        ("cache", Condition::Ready),
        ("mail", Condition::Started),
        ("s3", Condition::Started),
    ]
    .into_iter()
    .map(|(k, c)| (k.to_string(), c))
    .collect();
    app.ready = Some(Probe::Http {
        port: 8080,
        path: "/health".into(),
        status: (200, 399),
    });
    app.hooks = Hooks {
        after_up: vec![
            "php artisan migrate --force".into(),
            "php artisan db:seed --force".into(),
        ],
        ..Hooks::default()
    };

    Stack {
        project: "shop".into(),
        file: "/work/shop/dev.toml".into(),
        root: "/work/shop".into(),
        services: [db, cache, mail, s3, app]
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect(),
        inactive: Vec::new(),
        volumes: [("pgdata", Volume::default()), ("s3data", Volume::default())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        k8s: None,
        test: None,
        commands: Default::default(),
        masker: Default::default(),
        bind_all_interfaces: false,
        db_per_branch: false,
    }
}

/// Options as the command passes them in a git checkout.
pub(crate) fn opts() -> ExportOptions {
    ExportOptions {
        commit: Some("0123abcd".into()),
        ..Default::default()
    }
}

pub(crate) fn with_k8s(mut stack: Stack, text: &str) -> Stack {
    stack.k8s = Some(toml::from_str(text).unwrap());
    stack
}

pub(crate) const PRODUCTION_K8S: &str = r#"
namespace = "shop"
image_registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
tag = "1.4.2"
storage_class = "gp3"
storage_size = "10Gi"

[dev]
host = "shop.dev.example.com"

[production]
namespace = "shop"
host = "shop.example.com"
certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
role_arn = "arn:aws:iam::123456789012:role/shop-app"
database = { host = "shop.abc.eu-west-1.rds.amazonaws.com" }
redis = { host = "shop.abc.cache.amazonaws.com" }
s3 = { bucket = "shop-uploads", region = "eu-west-1" }
"#;

pub(crate) fn tree(files: &BTreeMap<PathBuf, String>) -> String {
    files
        .iter()
        .map(|(path, text)| format!("=== {}\n{text}", path.display()))
        .collect()
}

#[test]
fn kustomize_tree_without_k8s_settings() {
    let files = render(&laravel_stack(), &opts()).unwrap();
    insta::assert_snapshot!(tree(&files));
}

#[test]
fn kustomize_tree_with_k8s_settings() {
    let stack = with_k8s(laravel_stack(), PRODUCTION_K8S);
    let files = render(&stack, &opts()).unwrap();
    insta::assert_snapshot!(tree(&files));
}

#[test]
fn plain_production_with_external_secrets_and_istio() {
    let stack = with_k8s(
        laravel_stack(),
        &format!("external_secrets = true\n{PRODUCTION_K8S}"),
    );
    let opts = ExportOptions {
        env: Some(Env::Production),
        format: Format::Plain,
        istio: true,
        ..opts()
    };
    let files = render(&stack, &opts).unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [Path::new("production.yaml")]
    );
    insta::assert_snapshot!(tree(&files));
}

#[test]
fn one_overlay_writes_only_what_it_builds_from() {
    let opts = ExportOptions {
        env: Some(Env::Production),
        ..opts()
    };
    let files = render(&laravel_stack(), &opts).unwrap();
    assert!(files
        .keys()
        .all(|path| path.starts_with("base") || path.starts_with("overlays/production")));
    assert!(files.contains_key(Path::new("overlays/production/kustomization.yaml")));
}

/// Everything the production overlay builds from: `base/` and `overlays/production/`.
fn production_text(stack: &Stack, opts: &ExportOptions) -> String {
    let files = render(stack, opts).unwrap();
    files
        .iter()
        .filter(|(path, _)| {
            path.starts_with("base")
                || path.starts_with("overlays/production")
                || path.as_path() == Path::new("production.yaml")
        })
        .map(|(_, text)| text.as_str())
        .collect()
}

#[test]
fn production_output_holds_no_local_secret() {
    let stacks = [laravel_stack(), with_k8s(laravel_stack(), PRODUCTION_K8S)];
    for stack in &stacks {
        for opts in [
            opts(),
            ExportOptions {
                env: Some(Env::Production),
                format: Format::Plain,
                ..opts()
            },
        ] {
            let text = production_text(stack, &opts);
            for secret in [DB_PASSWORD, APP_KEY, MINIO_PASSWORD] {
                assert!(
                    !text.contains(secret),
                    "`{secret}` found in production output"
                );
            }
            assert!(text.contains("CHANGE_ME"));
        }
    }
}

#[test]
fn production_has_no_in_cluster_backing_services() {
    let stack = with_k8s(laravel_stack(), PRODUCTION_K8S);
    let opts = ExportOptions {
        env: Some(Env::Production),
        format: Format::Plain,
        ..opts()
    };
    let text = render(&stack, &opts)
        .unwrap()
        .into_values()
        .collect::<String>();
    for image in ["postgres", "redis", "mailhog", "minio"] {
        assert!(
            !text.contains(&format!("image: {image}")),
            "`{image}` in production"
        );
    }
    assert!(!text.contains("kind: StatefulSet"));
    assert!(text.contains("DB_HOST: shop.abc.eu-west-1.rds.amazonaws.com"));
    assert!(text.contains("AWS_BUCKET: shop-uploads"));
    assert!(!text.contains("AWS_ENDPOINT"));
    assert!(!text.contains("AWS_ACCESS_KEY_ID"));
    assert!(text.contains("eks.amazonaws.com/role-arn"));
    assert!(text.contains("alb.ingress.kubernetes.io/certificate-arn"));
}

#[test]
fn env_values_that_yaml_1_1_reads_as_other_types_stay_strings() {
    let mut stack = laravel_stack();
    let app = stack.services.get_mut("app").unwrap();
    for (key, value) in [
        ("FLAG_YES", "yes"),
        ("FLAG_ON", "on"),
        ("ZIP", "0123"),
        ("VERSION", "1.0"),
        ("NOTHING", "null"),
    ] {
        app.env.insert(
            key.into(),
            EnvValue {
                value: value.into(),
                secret: false,
            },
        );
    }
    let opts = ExportOptions {
        format: Format::Plain,
        ..opts()
    };
    let text = render(&stack, &opts)
        .unwrap()
        .into_values()
        .collect::<String>();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "app-env")
        .unwrap();
    for (key, value) in [
        ("FLAG_YES", "yes"),
        ("FLAG_ON", "on"),
        ("ZIP", "0123"),
        ("VERSION", "1.0"),
        ("NOTHING", "null"),
    ] {
        assert_eq!(
            config["data"][key],
            serde_json::Value::String(value.into()),
            "{key}"
        );
        // Quoted in the text itself, so YAML 1.1 readers (kubectl's) agree.
        assert!(
            text.contains(&format!("{key}: '{value}'"))
                || text.contains(&format!("{key}: \"{value}\"")),
            "{key}"
        );
    }
}

fn existing(stack: &Stack) -> BTreeMap<PathBuf, String> {
    render(stack, &opts()).unwrap()
}

#[test]
fn check_agrees_right_after_an_export() {
    let stack = with_k8s(laravel_stack(), PRODUCTION_K8S);
    assert_eq!(
        check(&stack, &opts(), &existing(&stack)).unwrap(),
        Vec::new()
    );
}

#[test]
fn check_names_an_added_env_key() {
    let before = laravel_stack();
    let mut after = before.clone();
    let app = after.services.get_mut("app").unwrap();
    app.env.insert(
        "QUEUE_CONNECTION".into(),
        EnvValue {
            value: "redis".into(),
            secret: false,
        },
    );
    let drifts = check(&after, &opts(), &existing(&before)).unwrap();
    let fields: Vec<String> = drifts
        .iter()
        .map(|d| format!("{} {} {}", d.file.display(), d.object, d.field))
        .collect();
    assert!(
        fields.contains(&"base/app.yaml ConfigMap/app-env data.QUEUE_CONNECTION".to_string()),
        "{fields:#?}"
    );
    assert!(
        drifts
            .iter()
            .all(|d| d.field.contains("QUEUE_CONNECTION") || d.field.ends_with("config-hash")),
        "{fields:#?}"
    );
}

#[test]
fn check_skips_intentional_differences() {
    let before = laravel_stack();
    let mut after = with_k8s(
        before.clone(),
        r#"ignore_drift = ["ConfigMap/app-env:data.QUEUE_CONNECTION", "Deployment/app:spec.template.metadata.annotations"]"#,
    );
    let app = after.services.get_mut("app").unwrap();
    app.env.insert(
        "QUEUE_CONNECTION".into(),
        EnvValue {
            value: "redis".into(),
            secret: false,
        },
    );
    assert_eq!(
        check(&after, &opts(), &existing(&before)).unwrap(),
        Vec::new()
    );
}

#[test]
fn check_reports_a_hand_edited_image_and_a_removed_object() {
    let stack = laravel_stack();
    let mut tree = existing(&stack);
    let app = tree.get_mut(Path::new("base/app.yaml")).unwrap();
    *app = app.replace("image: shop-app:0123abcd", "image: shop-app:hotfix");
    tree.remove(Path::new("base/network-policies.yaml"));
    let drifts = check(&stack, &opts(), &tree).unwrap();
    let text: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|t| t.contains("`Deployment/app` `spec.template.spec.containers[app].image` differs: stack has `shop-app:0123abcd`, tree has `shop-app:hotfix`")),
        "{text:#?}"
    );
    assert!(text.iter().any(|t| t.contains("`NetworkPolicy/default-deny` is in the stack but not in the tree")), "{text:#?}");
}

fn error(stack: &Stack) -> ExportError {
    render(stack, &opts()).unwrap_err()
}

#[test]
fn a_dependency_without_a_port_cannot_map() {
    let mut stack = laravel_stack();
    let mut search = service("search", "getmeili/meilisearch:v1.8");
    search.ready = Some(Probe::Exec {
        command: vec!["true".into()],
    });
    stack.services.insert("search".into(), search);
    let app = stack.services.get_mut("app").unwrap();
    app.depends_on.insert("search".into(), Condition::Started);
    let err = error(&stack);
    assert_eq!(err.exit_code(), 2);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn a_known_backing_service_without_ports_gets_its_usual_one() {
    let mut stack = laravel_stack();
    stack.services.get_mut("cache").unwrap().ready = None;
    let opts = ExportOptions {
        format: Format::Plain,
        ..opts()
    };
    let text = render(&stack, &opts)
        .unwrap()
        .into_values()
        .collect::<String>();
    assert!(text.contains("containerPort: 6379"));
}

#[test]
fn a_udp_only_app_cannot_get_the_ingress() {
    let mut stack = laravel_stack();
    let app = stack.services.get_mut("app").unwrap();
    app.ports = vec![Port {
        host_ip: None,
        host: Some(5353),
        container: 5353,
        protocol: Protocol::Udp,
        fixed: false,
        host_last: None,
        loopback_v6: false,
    }];
    app.ready = None;
    app.k8s = Some(toml::from_str("ingress = true").unwrap());
    let err = error(&stack);
    assert_eq!(err.exit_code(), 2);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn names_kubernetes_rejects_are_bad_config() {
    // Names are mapped (`queue_worker` -> `queue-worker`); two that map alike are refused.
    let mut stack = laravel_stack();
    for name in ["queue_worker", "Queue.Worker"] {
        let mut worker = service(name, "shop-app");
        worker.build = stack.services["app"].build.clone();
        stack.services.insert(name.into(), worker);
    }
    insta::assert_snapshot!(error(&stack).to_string());
}

#[test]
fn a_named_volume_on_the_app_is_bad_config_unless_scratch() {
    let mut stack = laravel_stack();
    let app = stack.services.get_mut("app").unwrap();
    app.volumes.push(Mount::Volume {
        name: "uploads".into(),
        target: "/var/www/html/storage".into(),
        read_only: false,
    });
    insta::assert_snapshot!(error(&stack).to_string());
    let app = stack.services.get_mut("app").unwrap();
    app.k8s = Some(toml::from_str(r#"writable = ["/tmp", "/var/www/html/storage"]"#).unwrap());
    assert!(render(&stack, &opts()).is_ok());
}

/// The example of DESIGN.md, with MailHog and MinIO from the presets, as a user writes it.
pub(crate) const EXAMPLE_DEV_TOML: &str = r#"
[project]
name = "shop"

[env]
APP_ENV = "local"

[services.db]
use = "postgres"

[services.cache]
image = "redis:7-alpine"
ready = { redis = {} }

[services.mail]
use = "mailhog"

[services.s3]
use = "minio"

[services.app]
build = { context = ".", dockerfile = "docker/app/Dockerfile", target = "dev" }
env = { DB_HOST = "db", DB_PASSWORD = "${DB_PASSWORD:-secret}", APP_KEY = "base64:bG9jYWwtYXBwLWtleS1ub3QtZm9yLXByb2Q=", REDIS_HOST = "cache", MAIL_HOST = "mail", AWS_ENDPOINT = "http://s3:9000", AWS_BUCKET = "app", AWS_SECRET_ACCESS_KEY = "password" }
ports = ["8080:8080"]
depends_on = { db = "ready", cache = "ready", mail = "started", s3 = "started" }
ready = { http = { port = 8080, path = "/health" } }
hooks = { after_up = ["php artisan migrate --force", "php artisan db:seed --force"] }
"#;

pub(crate) fn parse_example(text: &str) -> Stack {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("dev.toml");
    let opts = crate::config::LoadOptions {
        cwd: root.path().to_path_buf(),
        ..Default::default()
    };
    crate::config::parse(text, "dev.toml", &file, root.path(), &opts).unwrap()
}

/// No local secret in any value; long ones not even inside other text.
pub(crate) fn assert_no_secret(text: &str, stack: &Stack) {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).unwrap();
    fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut values = Vec::new();
    docs.iter().for_each(|doc| strings(doc, &mut values));
    for secret in config::secret_values(stack) {
        assert!(
            !values.contains(&secret.as_str()),
            "`{secret}` is a value in production"
        );
        if secret.len() >= 8 {
            assert!(
                !text.contains(&secret),
                "`{secret}` found in production output"
            );
        }
    }
}

#[test]
fn the_example_stack_file_exports_and_keeps_its_secrets() {
    let stack = parse_example(EXAMPLE_DEV_TOML);
    let files = render(&stack, &opts()).unwrap();
    insta::assert_snapshot!(tree(&files));
    let opts = ExportOptions {
        env: Some(Env::Production),
        format: Format::Plain,
        ..opts()
    };
    let production = render(&stack, &opts)
        .unwrap()
        .into_values()
        .collect::<String>();
    assert_no_secret(&production, &stack);
    assert!(!production.contains("mailhog") && !production.contains("minio"));
}

#[test]
fn check_names_a_key_added_to_the_stack_file() {
    let before = parse_example(EXAMPLE_DEV_TOML);
    let tree = render(&before, &opts()).unwrap();
    assert!(check(&before, &opts(), &tree).unwrap().is_empty());
    let after = parse_example(&EXAMPLE_DEV_TOML.replace(
        "REDIS_HOST = \"cache\"",
        "REDIS_HOST = \"cache\", CACHE_STORE = \"redis\"",
    ));
    let drifts = check(&after, &opts(), &tree).unwrap();
    let report: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    assert!(
        report.contains(&"base/app.yaml: `ConfigMap/app-env` `data.CACHE_STORE` is in the stack but not in the tree (`redis`)".to_string()),
        "{report:#?}"
    );
}

#[test]
fn r14_a_mirrored_postgres_image_is_postgres_in_production_too() {
    let production = |image: &str| {
        let mut stack = laravel_stack();
        let db = stack.services.get_mut("db").unwrap();
        db.image = image.parse().unwrap();
        // No probe: only the image says what the service is.
        db.ready = None;
        let settings = Settings::read(&stack, &opts()).unwrap();
        let kind = settings.kind(&stack.services["db"]);
        let opts = ExportOptions {
            env: Some(Env::Production),
            format: Format::Plain,
            ..opts()
        };
        (kind, tree(&render(&stack, &opts).unwrap()))
    };
    let (hub_kind, hub) = production("postgres:16");
    let (mirror_kind, mirror) = production("registry.local:5000/library/postgres:16");
    assert_eq!(hub_kind, settings::Kind::Postgres);
    assert_eq!(mirror_kind, settings::Kind::Postgres);
    assert!(
        !mirror.contains("registry.local:5000/library/postgres"),
        "production runs PostgreSQL as a managed database, not in-cluster:\n{mirror}"
    );
    assert_eq!(mirror, hub);
    // Whereas an image that is not PostgreSQL is a workload of its own.
    let (other_kind, other) = production("registry.local:5000/library/pgbouncer:1");
    assert_eq!(other_kind, settings::Kind::Generic);
    assert!(other.contains("registry.local:5000/library/pgbouncer:1"));
}

#[test]
fn a_secret_is_referenced_where_a_variable_put_it_and_written_words_stay() {
    // The example's default password is `secret`, a word Laravel commands
    // use too: only the interpolated one is the password.
    let stack = parse_example(
        r#"[project]
name = "shop"

[services.db]
use = "postgres"

[services.app]
image = "shop-app:dev"
env = { DB_PASSWORD = "${DB_PASSWORD:-secret}" }
command = ["php", "artisan", "serve", "--secret-word=secret"]
hooks = { after_up = ["php artisan jwt:secret --force", "php artisan tenants:migrate --password=${DB_PASSWORD:-secret}"] }
"#,
    );
    let text = tree(&render(&stack, &opts()).unwrap());
    assert!(text.contains("php artisan jwt:secret --force"), "{text}");
    assert!(text.contains("--secret-word=secret"), "{text}");
    assert!(!text.contains(":$(DB_PASSWORD)"), "{text}");
    assert!(
        text.contains("php artisan tenants:migrate --password=$(DB_PASSWORD)"),
        "{text}"
    );
}

#[test]
fn r14_manifests_name_secrets_in_commands_and_probes_never_hold_them() {
    const REDIS_PW: &str = "r3dis-Sntnl-pw";
    let mut stack = laravel_stack();
    let cache = stack.services.get_mut("cache").unwrap();
    cache.env = env(&[("REDIS_PASSWORD", REDIS_PW, true)]);
    cache.command = Some(vec![
        "redis-server".into(),
        "--requirepass".into(),
        REDIS_PW.into(),
    ]);
    cache.ready = Some(Probe::Redis {
        port: 6379,
        username: None,
        password: Some(REDIS_PW.into()),
    });
    // A password interpolated into a hook, as `${DB_PASSWORD}` would be.
    let app = stack.services.get_mut("app").unwrap();
    app.env.insert(
        "DB_PASSWORD".into(),
        EnvValue {
            value: DB_PASSWORD.into(),
            secret: true,
        },
    );
    app.hooks.after_up.push(format!(
        "php artisan tenants:migrate --password={DB_PASSWORD}"
    ));
    let files = render(&stack, &opts()).unwrap();
    let text = tree(&files);
    for secret in [REDIS_PW, DB_PASSWORD] {
        // Dev's own Secret carries the local values; nothing else may.
        let outside_secrets: String = text
            .split("=== ")
            .flat_map(|file| file.split("\n---\n"))
            .filter(|doc| !doc.contains("\nkind: Secret\n"))
            .collect();
        assert!(text.contains(secret), "dev's Secret has it");
        assert!(
            !outside_secrets.contains(secret),
            "`{secret}` in a manifest:\n{text}"
        );
    }
    assert!(
        text.contains("php artisan tenants:migrate --password=$(DB_PASSWORD)"),
        "the migration Job names the key:\n{text}"
    );
    assert!(text.contains("$(REDIS_PASSWORD)"), "{text}");
    assert!(text.contains("REDISCLI_AUTH"), "{text}");
    assert!(text.contains("key: REDIS_PASSWORD"), "{text}");
    assert!(
        text.contains("- --no-auth-warning\n"),
        "the probe authenticates from the env:\n{text}"
    );

    // A secret the container has no key for cannot be named: an error, masked.
    let app = stack.services.get_mut("app").unwrap();
    app.hooks.after_up.push(format!("echo {REDIS_PW}"));
    let err = render(&stack, &opts()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let message = err.to_string();
    assert!(!message.contains(REDIS_PW), "{message}");
    assert!(message.contains("echo ********"), "{message}");
}

#[test]
fn r14_a_redis_probe_password_without_an_env_key_gets_one_in_the_secret() {
    const PW: &str = "only-in-the-probe-pw";
    let mut stack = laravel_stack();
    stack.services.get_mut("cache").unwrap().ready = Some(Probe::Redis {
        port: 6379,
        username: None,
        password: Some(PW.into()),
    });
    let text = tree(&render(&stack, &opts()).unwrap());
    let secret_docs: Vec<&str> = text
        .split("=== ")
        .flat_map(|file| file.split("\n---\n"))
        .filter(|doc| doc.contains("\nkind: Secret\n") && doc.contains("REDISCLI_AUTH"))
        .collect();
    assert_eq!(secret_docs.len(), 1, "{text}");
    assert!(
        secret_docs[0].contains(PW),
        "dev's Secret carries the local value"
    );
    assert_eq!(
        text.matches(PW).count(),
        1,
        "and nothing else does:\n{text}"
    );
    // Staging gets a placeholder the operator fills, like every secret.
    let staging = ExportOptions {
        env: Some(Env::Staging),
        format: Format::Plain,
        ..opts()
    };
    let text = tree(&render(&stack, &staging).unwrap());
    assert!(!text.contains(PW), "{text}");
    assert!(text.contains("REDISCLI_AUTH"), "{text}");
}
