//! Regression tests for issue 13 (an EKS platform engineer's review), one
//! per defect, named `r13_<n>_…`, and the Helm chart against the overlays.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::tests::*;
use super::*;
use crate::config::model::{Build, Condition, Hooks};

/// The objects of one environment, as its overlay builds them.
pub(super) fn objects_of(stack: &Stack, env: Env) -> Vec<Value> {
    let opts = ExportOptions {
        env: Some(env),
        format: Format::Plain,
        ..opts()
    };
    let text: String = render(stack, &opts).unwrap().into_values().collect();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

pub(super) fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn kinds_named(objects: &[Value], name: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["metadata"]["name"] == name)
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect()
}

pub(super) fn jobs(objects: &[Value]) -> Vec<&Value> {
    objects.iter().filter(|o| o["kind"] == "Job").collect()
}

fn text_of(stack: &Stack, env: Env) -> String {
    objects_of(stack, env)
        .iter()
        .map(|o| o.to_string())
        .collect()
}

/// The example stack with a `migrate` one-off the app waits on.
pub(super) fn with_one_off() -> Stack {
    let mut stack = laravel_stack();
    let mut migrate = service("migrate", "shop-app");
    migrate.build = stack.services["app"].build.clone();
    migrate.command = Some(vec!["php".into(), "artisan".into(), "migrate".into()]);
    migrate.depends_on = [("db".to_string(), Condition::Ready)].into_iter().collect();
    stack
        .services
        .get_mut("app")
        .unwrap()
        .depends_on
        .insert("migrate".into(), Condition::Completed);
    stack.services.insert("migrate".into(), migrate);
    stack
}

#[test]
fn r13_1_a_one_off_service_is_a_job_not_a_scaled_deployment() {
    let stack = with_one_off();
    for env in Env::ALL {
        let objects = objects_of(&stack, env);
        let kinds: Vec<String> = objects
            .iter()
            .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/name"] == "migrate")
            .map(|o| o["kind"].as_str().unwrap().to_string())
            .collect();
        assert!(kinds.contains(&"Job".to_string()), "{env}: {kinds:?}");
        for kind in [
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Service",
        ] {
            assert!(
                !kinds.contains(&kind.to_string()),
                "{env}: {kind} for a one-off"
            );
        }
        let job = jobs(&objects)
            .into_iter()
            .find(|j| j["metadata"]["labels"]["app.kubernetes.io/name"] == "migrate")
            .unwrap();
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }
    // The app waits for the one-off's migrations, without its own hooks too.
    let mut stack = with_one_off();
    stack.services.get_mut("app").unwrap().hooks = Hooks::default();
    let objects = objects_of(&stack, Env::Production);
    let app = find(&objects, "Deployment", "app").unwrap();
    assert_eq!(
        app["spec"]["template"]["spec"]["initContainers"][0]["name"],
        "wait-for-migrations"
    );
}

#[test]
fn r13_2_migrations_are_ordered_without_argo_and_seed_only_outside_production() {
    let stack = laravel_stack();
    for env in Env::ALL {
        let objects = objects_of(&stack, env);
        let job = jobs(&objects)
            .into_iter()
            .find(|j| j["metadata"]["labels"]["app.kubernetes.io/component"] == "migration")
            .unwrap();
        let annotations = job["metadata"]["annotations"].to_string();
        assert!(!annotations.contains("argocd"), "{annotations}");
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        // Through the image's entrypoint.
        assert!(container["command"].is_null(), "{container}");
        let script = container["args"][2].as_str().unwrap();
        assert!(script.contains("migrate --force"));
        assert_eq!(script.contains("db:seed"), env != Env::Production, "{env}");
        // The app's new pods wait for the migrations, whichever tool applies them.
        let app = find(&objects, "Deployment", "app").unwrap();
        let init = &app["spec"]["template"]["spec"]["initContainers"][0];
        assert_eq!(init["name"], "wait-for-migrations");
        assert!(init["args"][2]
            .as_str()
            .unwrap()
            .contains("Nothing to migrate"));
    }
    let seeded = with_k8s(laravel_stack(), "[production]\nseed = true");
    let objects = objects_of(&seeded, Env::Production);
    assert!(
        jobs(&objects)[0]["spec"]["template"]["spec"]["containers"][0]["args"][2]
            .as_str()
            .unwrap()
            .contains("db:seed")
    );
    // In the chart too the app pods wait for the Job, which is no hook
    // (issue 25: hooks ran before the namespace existed on a fresh cluster).
    let chart = render(
        &laravel_stack(),
        &ExportOptions {
            format: Format::Helm,
            ..opts()
        },
    )
    .unwrap();
    let app = &chart[Path::new("templates/app.yaml")];
    assert!(!app.contains("helm.sh/hook"), "{app}");
}

#[test]
fn r13_3_external_secrets_use_the_served_v1_api() {
    let stack = with_k8s(laravel_stack(), "external_secrets = true");
    let objects = objects_of(&stack, Env::Production);
    let external = find(&objects, "ExternalSecret", "app-env").unwrap();
    assert_eq!(external["apiVersion"], "external-secrets.io/v1");
}

#[test]
fn r13_4_istio_keeps_the_restricted_pod_security_level() {
    let stack = laravel_stack();
    let opts = ExportOptions {
        env: Some(Env::Production),
        format: Format::Plain,
        istio: true,
        ..opts()
    };
    let text: String = render(&stack, &opts).unwrap().into_values().collect();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let namespace = docs.iter().find(|d| d["kind"] == "Namespace").unwrap();
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(labels["istio-injection"], "enabled");
}

#[test]
fn r13_5_staging_carries_no_debug_and_no_local_secret() {
    let stack = laravel_stack();
    let objects = objects_of(&stack, Env::Staging);
    let config = find(&objects, "ConfigMap", "app-env").unwrap();
    assert_eq!(config["data"]["APP_DEBUG"], "false");
    assert_eq!(config["data"]["APP_ENV"], "staging");
    let text = text_of(&stack, Env::Staging);
    for secret in [DB_PASSWORD, APP_KEY] {
        assert!(!text.contains(secret), "`{secret}` in staging");
    }
    // Dev keeps the local values: that is where they belong.
    assert!(text_of(&stack, Env::Dev).contains(DB_PASSWORD));
}

#[test]
fn r13_6_names_are_mapped_to_dns_labels() {
    let mut stack = laravel_stack();
    stack.project = "my_shop".into();
    let mut worker = service("Queue.Worker", "shop-app");
    worker.build = stack.services["app"].build.clone();
    worker.depends_on = [("db".to_string(), Condition::Ready)].into_iter().collect();
    stack.services.insert("Queue.Worker".into(), worker);
    let objects = objects_of(&stack, Env::Production);
    assert!(find(&objects, "Namespace", "my-shop-production").is_some());
    assert!(find(&objects, "Deployment", "queue-worker").is_some());
    for object in &objects {
        let name = object["metadata"]["name"].as_str().unwrap();
        assert!(names::check_label(name).is_ok(), "{name}");
    }
}

#[test]
fn r13_7_the_laravel_preset_makes_storage_and_bootstrap_cache_writable() {
    let stack = parse_example(
        "[project]\nname = \"shop\"\n[services.db]\nuse = \"postgres\"\n[services.cache]\nuse = \"redis\"\n[services.mail]\nuse = \"mailhog\"\n[services.s3]\nuse = \"minio\"\n[services.app]\nuse = \"laravel\"\n",
    );
    let objects = objects_of(&stack, Env::Production);
    let app = find(&objects, "Deployment", "app").unwrap();
    let mounts: Vec<&str> = app["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for path in [
        "/tmp",
        "/var/www/html/storage",
        "/var/www/html/bootstrap/cache",
    ] {
        assert!(mounts.contains(&path), "{mounts:?}");
    }
    assert_eq!(
        app["metadata"]["annotations"]["devenv.dev/build-target"],
        "prod"
    );
}

#[test]
fn r13_8_credentials_found_by_pattern_never_reach_staging_or_production() {
    let mut stack = laravel_stack();
    let local = [
        ("PGPASSWORD", "pg-local-pw-123"),
        ("DB_PASS", "db-local-pass-456"),
        ("API_CREDENTIALS", "user:api-cred-789"),
        ("DATABASE_URL", "postgres://app:url-pw-abc@db:5432/app"),
        ("REDIS_URL", "redis://:redis-pw-def@cache:6379"),
        ("SENTRY_DSN", "https://dsnkey0123@o1.ingest.example.io/42"),
    ];
    let app = stack.services.get_mut("app").unwrap();
    for (key, value) in local {
        app.env.insert(
            key.into(),
            crate::config::model::EnvValue {
                value: value.into(),
                secret: false,
            },
        );
    }
    for env in [Env::Staging, Env::Production] {
        let objects = objects_of(&stack, env);
        let text: String = objects.iter().map(|o| o.to_string()).collect();
        // No Secret of placeholders either: the operator's Secret must not be overwritten.
        assert!(find(&objects, "Secret", "app-env").is_none(), "{env}");
        let app = find(&objects, "Deployment", "app").unwrap();
        let provide = app["metadata"]["annotations"]["devenv.dev/provide-secret"]
            .as_str()
            .unwrap();
        let config = find(&objects, "ConfigMap", "app-env").unwrap();
        for (key, value) in local {
            assert!(!text.contains(value), "{env}: local `{key}` leaked");
            if env == Env::Production && key == "REDIS_URL" {
                // ElastiCache's TLS URL, without the password (issue 25).
                assert_eq!(config["data"][key], "tls://CHANGE_ME:6379");
                assert!(provide.contains("REDIS_PASSWORD"), "{provide}");
                continue;
            }
            assert!(
                provide.contains(key),
                "{env}: `{key}` not a secret: {provide}"
            );
        }
        assert!(config["data"]["DATABASE_URL"].is_null());
    }
    let needed = inputs(&stack, &opts()).unwrap();
    for key in ["PGPASSWORD", "DB_PASS", "SENTRY_DSN", "DATABASE_URL"] {
        assert!(
            needed
                .iter()
                .any(|l| l.starts_with("production:") && l.contains(&format!("`{key}`"))),
            "{needed:#?}"
        );
    }
}

#[test]
fn r13_9_the_tag_is_the_commit_and_latest_stays_out_of_staging_and_production() {
    let stack = laravel_stack();
    let objects = objects_of(&stack, Env::Production);
    let app = find(&objects, "Deployment", "app").unwrap();
    assert_eq!(
        app["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop-app:0123abcd"
    );
    let no_commit = ExportOptions::default();
    let err = render(&stack, &no_commit).unwrap_err();
    assert!(
        matches!(err, ExportError::NoTag { env: Env::Staging }),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
    // Dev alone may run `latest`; a tag given on purpose goes anywhere.
    let dev = ExportOptions {
        env: Some(Env::Dev),
        format: Format::Plain,
        ..Default::default()
    };
    assert!(render(&stack, &dev).unwrap()[Path::new("dev.yaml")].contains("shop-app:latest"));
    let forced = ExportOptions {
        tag: Some("latest".into()),
        ..Default::default()
    };
    assert!(render(&stack, &forced).is_ok());
}

#[test]
fn r13_10_incomplete_production_says_what_is_missing() {
    let needed = inputs(&laravel_stack(), &opts()).unwrap();
    let production: Vec<&String> = needed
        .iter()
        .filter(|l| l.starts_with("production:"))
        .collect();
    for key in [
        "`image_registry` in `[k8s]`",
        "`host` in `[k8s.production]`",
        "`certificate_arn`",
        "`role_arn` in `[k8s.production]`",
        "`DB_HOST` of `app-env`",
        "secret `APP_KEY`",
    ] {
        assert!(
            production.iter().any(|l| l.contains(key)),
            "{key}: {production:#?}"
        );
    }
    let full = inputs(&with_k8s(laravel_stack(), PRODUCTION_K8S), &opts()).unwrap();
    let production: Vec<&String> = full
        .iter()
        .filter(|l| l.starts_with("production:"))
        .collect();
    assert!(
        production
            .iter()
            .all(|l| l.contains("secret `") || l.contains("`MAIL_HOST`")),
        "{production:#?}"
    );
}

#[test]
fn r13_11_check_shows_list_elements_and_accepts_standard_edits() {
    let stack = with_k8s(laravel_stack(), PRODUCTION_K8S);
    let tree = render(&stack, &opts()).unwrap();

    // A list without names: the element that differs, not the cut list.
    let mut edited = tree.clone();
    let policies = edited
        .get_mut(Path::new("base/network-policies.yaml"))
        .unwrap();
    *policies = policies.replacen("k8s-app: kube-dns", "k8s-app: coredns", 1);
    let drifts = check(&stack, &opts(), &edited).unwrap();
    let report: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    assert!(
        report
            .iter()
            .any(|l| l.contains("`spec.egress[0].to[0].podSelector.matchLabels.k8s-app` differs: stack has `kube-dns`, tree has `coredns`")),
        "{report:#?}"
    );

    // One environment against the whole tree: the others are not drift.
    let production = ExportOptions {
        env: Some(Env::Production),
        ..opts()
    };
    assert_eq!(check(&stack, &production, &tree).unwrap(), Vec::new());

    // `kustomize edit set image` (the CI tag bump) is not drift.
    let mut bumped = tree.clone();
    let kustomization = bumped
        .get_mut(Path::new("overlays/production/kustomization.yaml"))
        .unwrap();
    kustomization.push_str(
        "images:\n- name: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-app\n  newTag: 1.4.3\n",
    );
    assert_eq!(check(&stack, &opts(), &bumped).unwrap(), Vec::new());

    // A resource added by hand and marked as intended is not drift.
    let mut added = tree.clone();
    added.insert(
        PathBuf::from("overlays/production/extra.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  annotations:\n    {INTENDED}: \"true\"\n"),
    );
    let kustomization = added
        .get_mut(Path::new("overlays/production/kustomization.yaml"))
        .unwrap();
    *kustomization = kustomization.replace("resources:\n", "resources:\n- extra.yaml\n");
    assert_eq!(check(&stack, &opts(), &added).unwrap(), Vec::new());
}

#[test]
fn r13_12_rollouts_spread_share_images_and_budget_the_namespace() {
    let mut stack = with_k8s(laravel_stack(), PRODUCTION_K8S);
    let mut worker = service("worker", "shop-worker");
    worker.build = Some(Build {
        context: "/work/shop".into(),
        dockerfile: "docker/app/Dockerfile".into(),
        target: Some("dev".into()),
        args: Default::default(),
        prepare: None,
    });
    worker.command = Some(vec!["php".into(), "artisan".into(), "queue:work".into()]);
    worker.depends_on = [("db".to_string(), Condition::Ready)].into_iter().collect();
    worker.hooks = Hooks::default();
    stack.services.insert("worker".into(), worker);
    let objects = objects_of(&stack, Env::Production);
    let image = |name: &str| {
        find(&objects, "Deployment", name).unwrap()["spec"]["template"]["spec"]["containers"][0]
            ["image"]
            .clone()
    };
    assert_eq!(image("worker"), image("app"));
    let app = &find(&objects, "Deployment", "app").unwrap()["spec"]["template"]["spec"];
    assert_eq!(
        app["topologySpreadConstraints"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        app["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        15
    );
    let namespace = find(&objects, "Namespace", "shop").unwrap();
    assert_eq!(
        namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"],
        "enabled"
    );
    assert!(find(&objects, "ResourceQuota", "budget").is_some());
    assert!(find(&objects, "LimitRange", "defaults").is_some());
    // ElastiCache: TLS and an AUTH token.
    let config = find(&objects, "ConfigMap", "app-env").unwrap();
    assert_eq!(
        config["data"]["REDIS_URL"],
        "tls://shop.abc.cache.amazonaws.com:6379"
    );
    let app = find(&objects, "Deployment", "app").unwrap();
    let provide = app["metadata"]["annotations"]["devenv.dev/provide-secret"]
        .as_str()
        .unwrap();
    assert!(provide.contains("REDIS_PASSWORD"), "{provide}");
    // Staging's volume claims: the storage class from `[k8s]`.
    let staging = objects_of(&stack, Env::Staging);
    let db = find(&staging, "StatefulSet", "db").unwrap();
    assert_eq!(
        db["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
        "gp3"
    );
    assert!(kinds_named(&objects, "worker").contains(&"Deployment".to_string()));
}

/// `helm`, from `DEVENV_HELM` or PATH, if present (`.ci/run` installs it).
pub(super) fn helm() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DEVENV_HELM") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("helm"))
        .find(|path| path.is_file())
}

pub(super) fn by_id(docs: Vec<Value>) -> BTreeMap<String, Value> {
    docs.into_iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            (
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                ),
                d,
            )
        })
        .collect()
}

#[test]
fn the_chart_renders_the_objects_of_each_overlay() {
    let Some(helm) = helm() else {
        eprintln!("helm not found: the chart is checked by `.ci/run`");
        return;
    };
    for stack in [
        laravel_stack(),
        with_k8s(laravel_stack(), PRODUCTION_K8S),
        with_one_off(),
        super::releases::blog(),
        with_k8s(laravel_stack(), "strict_mtls = true"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let chart = render(
            &stack,
            &ExportOptions {
                format: Format::Helm,
                istio: true,
                ..opts()
            },
        )
        .unwrap();
        for (path, text) in &chart {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let lint = std::process::Command::new(&helm)
            .args(["lint", "--strict"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            lint.status.success(),
            "{}",
            String::from_utf8_lossy(&lint.stdout)
        );
        for env in Env::ALL {
            let mut overlay = by_id(
                serde_saphyr::from_multiple(
                    &render(
                        &stack,
                        &ExportOptions {
                            env: Some(env),
                            format: Format::Plain,
                            istio: true,
                            ..opts()
                        },
                    )
                    .unwrap()
                    .into_values()
                    .collect::<String>(),
                )
                .unwrap(),
            );
            // And the overlay itself, as kustomize builds it, when kubectl is here.
            if let Some(built) = kustomize(&stack, env) {
                assert_eq!(by_id(built), overlay, "{env}: kustomize build");
            }
            let namespace = overlay
                .keys()
                .find_map(|id| id.strip_prefix("Namespace/"))
                .unwrap()
                .to_string();
            let output = std::process::Command::new(&helm)
                .args(["template", "release", "-n", &namespace])
                .arg(dir.path())
                .arg("-f")
                .arg(dir.path().join(format!("values-{env}.yaml")))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let rendered = by_id(
                serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap(),
            );
            // Helm makes the namespace (`--create-namespace`); the chart has none.
            overlay.retain(|id, _| !id.starts_with("Namespace/"));
            assert_eq!(
                rendered.keys().collect::<Vec<_>>(),
                overlay.keys().collect::<Vec<_>>(),
                "{env}"
            );
            for (id, object) in &overlay {
                assert_eq!(&rendered[id], object, "{env}: {id}");
            }
        }
    }
}

/// `kubectl kustomize overlays/<env>` of the tree export writes, if kubectl is on PATH.
fn kustomize(stack: &Stack, env: Env) -> Option<Vec<Value>> {
    let kubectl = std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file())?;
    let dir = tempfile::tempdir().unwrap();
    let tree = render(
        stack,
        &ExportOptions {
            istio: true,
            ..opts()
        },
    )
    .unwrap();
    for (path, text) in &tree {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let output = std::process::Command::new(kubectl)
        .arg("kustomize")
        .arg(dir.path().join(format!("overlays/{env}")))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap())
}

#[test]
fn check_works_against_a_chart() {
    let stack = laravel_stack();
    let helm = ExportOptions {
        format: Format::Helm,
        ..opts()
    };
    let chart = render(&stack, &helm).unwrap();
    // Recognised by its Chart.yaml, whatever the format asked.
    assert_eq!(check(&stack, &opts(), &chart).unwrap(), Vec::new());
    let mut edited = chart.clone();
    let values = edited.get_mut(Path::new("values-production.yaml")).unwrap();
    *values = values.replace("spec.maxReplicas: 9", "spec.maxReplicas: 12");
    let template = edited.get_mut(Path::new("templates/app.yaml")).unwrap();
    *template = template.replace("maxSurge: 1", "maxSurge: 2");
    let report: Vec<String> = check(&stack, &helm, &edited)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        report.iter().any(|l| l.contains("values-production.yaml")
            && l.contains("spec.maxReplicas")
            && l.contains("stack has `9`, tree has `12`")),
        "{report:#?}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("templates/app.yaml: `template` `line ")
                && l.contains("`maxSurge: 1`")),
        "{report:#?}"
    );
}
