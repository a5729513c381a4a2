//! The planner over a fake [`Actual`]: each state `up` can find a project in.

use super::*;
use crate::config::model::Port;
use crate::config::model::Protocol;
use crate::names::{container_name, LABEL_HASH, LABEL_PARTS, LABEL_SERVICE};

const DIR: &str = "/home/dev/shop";

fn stack(extra: &str) -> Stack {
    let dir = std::env::temp_dir();
    let opts = crate::config::LoadOptions {
        cwd: dir.clone(),
        ..Default::default()
    };
    let text = format!(
        r#"[project]
name = "shop"

[services.db]
image = "postgres:16"
env = {{ POSTGRES_PASSWORD = "s3cret" }}
ports = ["5432:5432"]
volumes = ["pgdata:/var/lib/postgresql/data"]

[services.cache]
image = "redis:7"

[services.app]
image = "shop-app:dev"
env = {{ A = "1" }}
ports = ["8080:80"]
depends_on = {{ db = "started", cache = "started" }}

[services.worker]
image = "shop-app:dev"
depends_on = {{ app = "started" }}

[services.mail]
image = "mailhog"
profiles = ["debug"]
ports = ["8025:8025"]
{extra}"#
    );
    crate::config::parse(&text, "dev.toml", &dir.join("dev.toml"), &dir, &opts).unwrap()
}

fn image_id(image: &str) -> String {
    format!("sha256:{image}")
}

/// The engine with every image of the stack and nothing else.
fn images_only(stack: &Stack) -> Actual {
    Actual {
        dir: DIR.into(),
        existing_dirs: [DIR.to_string()].into(),
        images: stack
            .services
            .values()
            .map(|s| {
                (
                    s.image.to_string(),
                    ImageInfo {
                        id: image_id(&s.image),
                        ..ImageInfo::default()
                    },
                )
            })
            .collect(),
        ..Actual::default()
    }
}

/// The container a finished `up` of `stack` left for `service`.
fn container(stack: &Stack, service: &str, state: &str) -> Observed {
    let svc = &stack.services[service];
    let id = image_id(&svc.image);
    Observed {
        id: format!("id-{service}"),
        name: container_name("shop", service),
        state: state.into(),
        labels: [
            (LABEL_PROJECT, "shop"),
            (LABEL_SERVICE, service),
            (LABEL_DIR, DIR),
            (LABEL_HASH, &config_hash(svc, &id)),
            (LABEL_PARTS, &config_parts(svc, &id)),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        image_id: id,
        published: svc
            .ports
            .iter()
            .filter(|p| p.host.is_some())
            .map(|p| p.container)
            .zip(bindings(svc))
            .collect(),
        ..Observed::default()
    }
}

/// The engine after a complete `up` of `stack`.
fn up_done(stack: &Stack) -> Actual {
    let mut a = images_only(stack);
    a.containers = stack
        .services
        .keys()
        .map(|s| container(stack, s, "running"))
        .collect();
    a.network = Some(
        [(LABEL_PROJECT.to_string(), "shop".to_string())]
            .into_iter()
            .collect(),
    );
    a
}

/// The service's observed container, to change what the engine "has".
fn observed_mut<'a>(actual: &'a mut Actual, service: &str) -> &'a mut Observed {
    actual
        .containers
        .iter_mut()
        .find(|c| c.service() == service)
        .unwrap()
}

fn actions(plan: &Plan) -> Vec<(String, String)> {
    plan.services
        .iter()
        .map(|s| {
            let a = match &s.action {
                ContainerAction::Create => "create".to_string(),
                ContainerAction::Recreate { changes, .. } => {
                    format!("recreate: {}", changes.join(", "))
                }
                ContainerAction::Start { .. } => "start".into(),
                ContainerAction::Keep { .. } => "keep".into(),
                ContainerAction::KeepUnlessImageChanges { .. } => "keep unless image".into(),
            };
            (s.service.clone(), a)
        })
        .collect()
}

fn action_of(plan: &Plan, service: &str) -> String {
    actions(plan)
        .into_iter()
        .find(|(s, _)| s == service)
        .map(|(_, a)| a)
        .unwrap()
}

fn step<'a>(plan: &'a Plan, service: &str) -> &'a ServiceStep {
    plan.services.iter().find(|s| s.service == service).unwrap()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_fresh_stack_creates_everything_in_dependency_order() {
    let s = stack("");
    let plan = plan(&s, &images_only(&s), &PlanOptions::default()).unwrap();
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("cache", "create"),
            ("db", "create"),
            ("app", "create"),
            ("worker", "create"),
        ])
    );
    assert!(plan.removals.is_empty());
    let network = plan.network.as_ref().unwrap();
    assert!(!network.exists);
    assert_eq!(network.spec.name, "shop_default");
    assert_eq!(plan.volumes.len(), 1);
    assert_eq!(plan.volumes[0].spec.name, "shop_pgdata");
    let ports: Vec<String> = plan
        .port_checks
        .iter()
        .map(|p| format!("{} {}", p.service, p.binding))
        .collect();
    assert_eq!(ports, ["db 5432", "app 8080"]);
    // Each service waits for its own dependencies only.
    let mut after: Vec<&str> = step(&plan, "app")
        .after
        .iter()
        .map(|d| d.service.as_str())
        .collect();
    after.sort();
    assert_eq!(after, ["cache", "db"]);
    assert!(step(&plan, "db").after.is_empty());
    // The spec holds what the engine needs, the secret still masked when shown.
    let db = &step(&plan, "db").spec;
    assert_eq!(db.name, "shop-db-1");
    assert_eq!(db.image, "postgres:16");
    assert_eq!(db.labels[LABEL_HASH], db.hash);
    assert!(!db.hash.is_empty());
    assert_eq!(
        db.mounts,
        [MountSpec::Volume {
            source: "shop_pgdata".into(),
            target: "/var/lib/postgresql/data".into(),
            read_only: false
        }]
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    assert!(plan
        .images
        .iter()
        .all(|i| matches!(i.action, ImageAction::Present { .. })));
}

#[test]
fn a_finished_up_plans_nothing() {
    let s = stack("");
    let plan = plan(&s, &up_done(&s), &PlanOptions::default()).unwrap();
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("cache", "keep"),
            ("db", "keep"),
            ("app", "keep"),
            ("worker", "keep"),
        ])
    );
    assert!(plan.removals.is_empty());
    assert!(plan.network.is_none() && plan.volumes.is_empty());
    assert!(plan.port_checks.is_empty());
    assert_eq!(
        render::lines(&plan),
        ["would leave `cache`, `db`, `app`, `worker` alone (running, unchanged)"]
    );
}

#[test]
fn one_changed_service_is_recreated_alone_and_says_why() {
    let before = stack("");
    let after = stack("").tap_env("app", "A", "2");
    let plan = plan(&after, &up_done(&before), &PlanOptions::default()).unwrap();
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("cache", "keep"),
            ("db", "keep"),
            ("app", "recreate: env"),
            ("worker", "keep"),
        ])
    );
    // Its dependent comes after it and names it.
    let worker = &plan.services[3];
    assert_eq!(worker.after[0].service, "app");
    assert!(render::lines(&plan).contains(&"would recreate `app`: env changed".to_string()));
    // Only its own port is checked; it is its own container that holds it.
    assert_eq!(plan.port_checks.len(), 1);
    assert_eq!(plan.port_checks[0].own.as_deref(), Some("shop-app-1"));
    assert!(plan.network.as_ref().unwrap().exists);
}

#[test]
fn a_port_that_moved_is_checked_where_it_went() {
    // `app`'s 8080 was taken at its first `up` and went to 18080; `up`
    // keeps it there when `app` is recreated, and the dry run says so.
    let before = stack("");
    let after = stack("").tap_env("app", "A", "2");
    let mut actual = up_done(&before);
    observed_mut(&mut actual, "app").published[0].1.port = 18080;
    let plan = plan(&after, &actual, &PlanOptions::default()).unwrap();
    let check = &plan.port_checks[0];
    assert_eq!((check.binding.port, check.declared), (18080, Some(8080)));
    let lines = render::lines(&plan);
    assert!(
        lines.iter().any(|l| l
            .starts_with("host port 18080 (kept where it moved from 8080) for `app`: not checked")),
        "{lines:#?}"
    );
    // A port the person changed since is checked (and taken) as declared.
    let mut changed = stack("");
    changed.services.get_mut("app").unwrap().ports[0].host = Some(8081);
    let plan = plan_of(&changed, &actual);
    assert_eq!(
        (
            plan.port_checks[0].binding.port,
            plan.port_checks[0].declared
        ),
        (8081, None)
    );
    // A fixed port never moved: it is checked as declared.
    let mut fixed = stack("").tap_env("app", "A", "2");
    fixed.services.get_mut("app").unwrap().ports[0].fixed = true;
    let plan = plan_of(&fixed, &actual);
    assert_eq!(
        (
            plan.port_checks[0].binding.port,
            plan.port_checks[0].declared
        ),
        (8080, None)
    );
}

fn plan_of(stack: &Stack, actual: &Actual) -> Plan {
    plan(stack, actual, &PlanOptions::default()).unwrap()
}

#[test]
fn a_recreate_names_each_changed_part() {
    let before = stack("");
    let mut after = stack("");
    let app = after.services.get_mut("app").unwrap();
    app.command = Some(vec!["php".into()]);
    app.ports[0].host = Some(8081);
    let plan = plan(&after, &up_done(&before), &PlanOptions::default()).unwrap();
    assert_eq!(action_of(&plan, "app"), "recreate: command, ports");
    // A new image is a change of its own.
    let mut actual = up_done(&before);
    actual.images.get_mut("redis:7").unwrap().id = "sha256:newer".into();
    let plan = super::plan(&before, &actual, &PlanOptions::default()).unwrap();
    assert_eq!(action_of(&plan, "cache"), "recreate: image");
}

#[test]
fn a_container_without_part_labels_was_changed_in_its_config() {
    let before = stack("");
    let mut actual = up_done(&before);
    for c in actual
        .containers
        .iter_mut()
        .filter(|c| c.service() == "app")
    {
        c.labels.remove(LABEL_PARTS);
    }
    let after = stack("").tap_env("app", "A", "2");
    let plan = plan(&after, &actual, &PlanOptions::default()).unwrap();
    assert_eq!(action_of(&plan, "app"), "recreate: config");
}

#[test]
fn a_service_gone_from_the_file_is_an_orphan() {
    let s = stack("");
    let mut actual = up_done(&s);
    let mut gone = container(&s, "cache", "running");
    gone.id = "id-gone".into();
    gone.name = "shop-gone-1".into();
    gone.labels.insert(LABEL_SERVICE.into(), "gone".into());
    actual.containers.push(gone);
    let plan = plan(&s, &actual, &PlanOptions::default()).unwrap();
    assert_eq!(
        plan.removals,
        [Removal {
            service: "gone".into(),
            id: "id-gone".into(),
            name: "shop-gone-1".into(),
            why: RemoveWhy::Orphan
        }]
    );
    assert!(actions(&plan).iter().all(|(_, a)| a == "keep"));
}

#[test]
fn a_service_out_of_the_active_profiles_is_not_an_orphan() {
    let s = stack("");
    assert_eq!(s.inactive, ["mail"]);
    let mut actual = up_done(&s);
    let mut mail = container(&s, "db", "running");
    mail.id = "id-mail".into();
    mail.name = "shop-mail-1".into();
    mail.labels.insert(LABEL_SERVICE.into(), "mail".into());
    mail.published.clear();
    actual.containers.push(mail);
    let plan = plan(&s, &actual, &PlanOptions::default()).unwrap();
    assert!(plan.removals.is_empty());
    assert!(plan.services.iter().all(|st| st.service != "mail"));
}

#[test]
fn an_interrupted_up_is_finished_and_its_duplicate_removed() {
    let s = stack("");
    let mut actual = images_only(&s);
    actual.network = Some(BTreeMap::new());
    // db got its container and a second one (a killed run made it under
    // another name); app was created, never started; the rest never came.
    actual.containers.push(container(&s, "db", "running"));
    let mut dup = container(&s, "db", "created");
    dup.id = "id-db-2".into();
    dup.name = "shop-db-1-old".into();
    actual.containers.insert(0, dup);
    actual.containers.push(container(&s, "app", "created"));
    let plan = plan(&s, &actual, &PlanOptions::default()).unwrap();
    assert_eq!(
        actions(&plan),
        pairs(&[
            ("cache", "create"),
            ("db", "keep"),
            ("app", "start"),
            ("worker", "create"),
        ])
    );
    assert_eq!(plan.removals.len(), 1);
    assert_eq!(plan.removals[0].id, "id-db-2");
    assert_eq!(plan.removals[0].why, RemoveWhy::Duplicate);
}

#[test]
fn a_port_clash_across_host_ips_fails_the_plan() {
    // Within the selection: `127.0.0.1:5432` and `5432` (config refuses
    // this in one file; the planner must not rely on it).
    let mut s = stack("");
    s.services.get_mut("cache").unwrap().ports.push(Port {
        host_ip: Some("127.0.0.1".into()),
        host: Some(5432),
        container: 6379,
        protocol: Protocol::Tcp,
        fixed: true,
        host_last: None,
        loopback_v6: false,
    });
    // A port that is only a wish (`5432` on db) moves to a free one: no clash.
    assert!(plan(&s, &images_only(&s), &PlanOptions::default()).is_ok());
    s.services.get_mut("db").unwrap().ports[0].fixed = true;
    let err = plan(&s, &images_only(&s), &PlanOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "host port `5432` of service `db` clashes with `127.0.0.1:5432` of service `cache`"
    );

    // Against a running container of a service out of the active profiles.
    let mut s = stack("");
    s.services.get_mut("app").unwrap().ports[0].fixed = true;
    let mut actual = up_done(&s);
    let mut mail = container(&s, "db", "running");
    mail.id = "id-mail".into();
    mail.name = "shop-mail-1".into();
    mail.labels.insert(LABEL_SERVICE.into(), "mail".into());
    mail.published = vec![(
        8025,
        Binding {
            host_ip: Some("127.0.0.1".into()),
            port: 8080,
            protocol: Protocol::Tcp,
        },
    )];
    actual.containers.push(mail);
    actual.containers.retain(|c| c.service() != "app");
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    assert!(
        matches!(err, PlanError::PortClash { ref other, .. } if other == "mail"),
        "{err}"
    );

    // Another protocol, or two distinct addresses, is no clash.
    let a = Binding {
        host_ip: Some("127.0.0.1".into()),
        port: 53,
        protocol: Protocol::Udp,
    };
    let b = Binding {
        host_ip: Some("127.0.0.2".into()),
        port: 53,
        protocol: Protocol::Udp,
    };
    assert!(!a.overlaps(&b));
    assert!(!a.overlaps(&Binding {
        protocol: Protocol::Tcp,
        host_ip: None,
        ..a.clone()
    }));
    assert!(a.overlaps(&Binding {
        host_ip: Some("0.0.0.0".into()),
        ..a.clone()
    }));
}

#[test]
fn a_name_held_by_a_foreign_container_fails_the_plan() {
    let s = stack("");
    let mut actual = images_only(&s);
    actual.named.push(Observed {
        id: "compose".into(),
        name: "shop-cache-1".into(),
        state: "running".into(),
        labels: [(LABEL_COMPOSE_PROJECT.to_string(), "shop".to_string())].into(),
        ..Observed::default()
    });
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "container `shop-cache-1` is in the way of service `cache`, and devenv did not create it: Docker Compose made it (project `shop`)"
    );
}

#[test]
fn another_folders_project_is_refused_and_a_moved_one_adopted() {
    let s = stack("");
    let mut actual = up_done(&s);
    for c in &mut actual.containers {
        c.labels.insert(LABEL_DIR.into(), "/elsewhere/shop".into());
    }
    // The other folder is gone: the project moved here.
    assert!(plan(&s, &actual, &PlanOptions::default()).is_ok());
    actual.existing_dirs.insert("/elsewhere/shop".into());
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    assert!(matches!(err, PlanError::OtherFolder { .. }), "{err}");
}

#[test]
fn images_to_make_are_planned_and_their_services_wait_to_compare() {
    let s = stack("[services.web]\nbuild = { context = \".\" }\nimage = \"shop-web:dev\"\n");
    let mut actual = up_done(&s);
    actual.images.remove("shop-web:dev");
    actual.images.remove("redis:7");
    let plan = plan(&s, &actual, &PlanOptions::default()).unwrap();
    let made: Vec<(&str, &ImageAction)> = plan
        .images
        .iter()
        .filter(|i| !matches!(i.action, ImageAction::Present { .. }))
        .map(|i| (i.service.as_str(), &i.action))
        .collect();
    assert_eq!(
        made,
        [("cache", &ImageAction::Pull), ("web", &ImageAction::Build)]
    );
    // Their containers run the image they ran before: recreated only if the new one differs.
    assert_eq!(action_of(&plan, "cache"), "keep unless image");
    assert!(render::lines(&plan).contains(
        &"would recreate `cache` only if its new image differs from the one it runs".to_string()
    ));
    // `--build` rebuilds even a present image.
    let actual = up_done(&s);
    let plan = super::plan(
        &s,
        &actual,
        &PlanOptions {
            build: true,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert!(plan
        .images
        .iter()
        .any(|i| i.service == "web" && i.action == ImageAction::Build));
}

#[test]
fn a_missing_bind_source_fails_unless_folders_may_be_made() {
    let s = stack("[services.web]\nimage = \"x\"\nvolumes = [\"./nowhere:/data\"]\n");
    let mut actual = images_only(&s);
    actual.images.insert("x".into(), ImageInfo::default());
    let path = match &s.services["web"].volumes[0] {
        Mount::Bind { source, .. } => source.clone(),
        m => panic!("{m:?}"),
    };
    actual.missing_paths.insert(path.clone());
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    assert!(matches!(err, PlanError::MissingBindSource { .. }), "{err}");
    let opts = PlanOptions {
        create_paths: true,
        ..PlanOptions::default()
    };
    let made = plan(&s, &actual, &opts).unwrap();
    assert_eq!(made.folders, [NewPath { path, owner: None }]);
    assert!(made.files.is_empty());
}

/// The plan for one service mounting `volumes`, none of whose sources
/// exist, with `--create-paths`, run by `invoker`.
fn creating(service: &str, invoker: Invoker) -> Result<Plan, PlanError> {
    let s = stack(&format!("[services.web]\nimage = \"x\"\n{service}"));
    let mut actual = images_only(&s);
    actual.images.insert("x".into(), ImageInfo::default());
    actual.invoker = invoker;
    for m in &s.services["web"].volumes {
        if let Mount::Bind { source, .. } = m {
            actual.missing_paths.insert(source.clone());
        }
    }
    let opts = PlanOptions {
        create_paths: true,
        ..PlanOptions::default()
    };
    plan(&s, &actual, &opts)
}

#[test]
fn r22_a_missing_file_mount_is_made_a_file_and_an_unsure_one_refused() {
    let p = creating(
        "volumes = [\"./php/php.ini:/usr/local/etc/php/php.ini\", \"./conf.d:/etc/nginx/conf.d\"]\n",
        Invoker::default(),
    )
    .unwrap();
    let names = |v: &[NewPath]| -> Vec<String> {
        v.iter()
            .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&p.files), ["php.ini"]);
    assert_eq!(names(&p.folders), ["conf.d"]);
    let lines = super::render::lines(&p);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("would create empty file `") && l.ends_with("php/php.ini`")),
        "{lines:?}"
    );
    let err = creating(
        "volumes = [\"./.npmrc:/root/.npmrc\"]\n",
        Invoker::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::UnsureBindSource { .. }), "{err}");
}

#[test]
fn r31_made_paths_are_given_to_the_services_numeric_user_when_root_runs_devenv() {
    let root = Invoker {
        root: true,
        sudo: None,
    };
    let p = creating(
        "user = \"1000:1000\"\nvolumes = [\"./newdir:/data\"]\n",
        root.clone(),
    )
    .unwrap();
    let owner = Some(Owner {
        uid: 1000,
        gid: 1000,
    });
    assert_eq!(p.folders[0].owner, owner);
    let lines = super::render::lines(&p);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("newdir` owned by 1000:1000")),
        "{lines:?}"
    );
    // Not root: the invoking user makes them, and they are theirs already.
    let mine = creating(
        "user = \"1000:1000\"\nvolumes = [\"./newdir:/data\"]\n",
        Invoker::default(),
    )
    .unwrap();
    assert_eq!(mine.folders[0].owner, None);
    // A user name: no host id to give it to, and a note says so.
    let named = creating(
        "user = \"www-data\"\nvolumes = [\"./newdir:/data\"]\n",
        root,
    )
    .unwrap();
    assert_eq!(named.folders[0].owner, None);
    assert!(
        named.notices.iter().any(|n| n.contains("`www-data`")),
        "{:?}",
        named.notices
    );
}

#[test]
fn a_selection_brings_its_dependencies_only() {
    let s = stack("");
    let opts = PlanOptions {
        services: vec!["app".into()],
        ..PlanOptions::default()
    };
    let plan = plan(&s, &images_only(&s), &opts).unwrap();
    let names: Vec<&str> = plan.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["cache", "db", "app"]);
    let opts = PlanOptions {
        services: vec!["nope".into()],
        ..PlanOptions::default()
    };
    assert!(matches!(
        super::plan(&s, &images_only(&s), &opts),
        Err(PlanError::UnknownService(_))
    ));
}

#[test]
fn anonymous_volumes_are_carried_over_on_a_recreate() {
    let before = stack("");
    let mut actual = up_done(&before);
    let anon = "ab".repeat(32);
    observed_mut(&mut actual, "db")
        .volume_mounts
        .insert("/scratch".into(), anon.clone());
    actual.images.get_mut("postgres:16").unwrap().volumes = vec!["/scratch".into()];
    let after = stack("").tap_env("db", "POSTGRES_DB", "x");
    let plan = plan(&after, &actual, &PlanOptions::default()).unwrap();
    let db = &step(&plan, "db").spec;
    assert!(db.mounts.contains(&MountSpec::Volume {
        source: anon,
        target: "/scratch".into(),
        read_only: false
    }));
    assert!(db.volumes.is_empty(), "{:?}", db.volumes);
}

#[test]
fn only_what_shapes_the_container_changes_its_hash() {
    let dir = std::env::temp_dir();
    let opts = crate::config::LoadOptions {
        cwd: dir.clone(),
        ..Default::default()
    };
    let parse = |extra: &str| {
        let text = format!("[services.app]\nimage = \"x\"\nenv = {{ A = \"1\" }}\n{extra}");
        crate::config::parse(&text, "dev.toml", &dir.join("dev.toml"), &dir, &opts)
            .unwrap()
            .services["app"]
            .clone()
    };
    let base = config_hash(&parse(""), "img");
    let watched = parse("ready = { tcp = 80 }\nhooks = { after_up = [\"true\"] }\n[[services.app.watch]]\npath = \".\"\naction = \"restart\"\n");
    assert_eq!(config_hash(&watched, "img"), base);
    assert_eq!(
        config_parts(&watched, "img"),
        config_parts(&parse(""), "img")
    );
    assert_ne!(config_hash(&parse("command = \"sh\""), "img"), base);
    assert_ne!(config_hash(&parse(""), "other-image"), base);
}

#[test]
fn a_changed_secret_shows_as_changed_env() {
    let before = stack("");
    let mut after = stack("");
    let db = after.services.get_mut("db").unwrap();
    db.env.get_mut("POSTGRES_PASSWORD").unwrap().value = "other".into();
    assert!(db.env["POSTGRES_PASSWORD"].secret);
    let plan = plan(&after, &up_done(&before), &PlanOptions::default()).unwrap();
    assert_eq!(action_of(&plan, "db"), "recreate: env");
    let parts = &step(&plan, "db").spec.labels[LABEL_PARTS];
    assert!(!parts.contains("other") && !parts.contains("s3cret"));
}

#[test]
fn a_containers_maker_is_named_from_its_labels() {
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        maker(&labels(&[
            (LABEL_COMPOSE_PROJECT, "shop"),
            ("com.docker.compose.project.working_dir", "/home/a/shop"),
        ])),
        "Docker Compose made it (project `shop` in `/home/a/shop`)"
    );
    assert_eq!(
        maker(&labels(&[(LABEL_PROJECT, "shop"), (LABEL_DIR, "/b/shop")])),
        "devenv made it for project `shop` in `/b/shop`"
    );
    assert_eq!(
        maker(&labels(&[])),
        "something else made it (it has no `devenv.project` label)"
    );
}

#[test]
fn only_dockers_own_volume_names_count_as_anonymous() {
    assert!(is_anonymous(&"0123456789abcdef".repeat(4)));
    assert!(!is_anonymous("shop_pgdata"));
    assert!(!is_anonymous(&"g".repeat(64)));
}

trait TapEnv {
    fn tap_env(self, service: &str, key: &str, value: &str) -> Self;
}

impl TapEnv for Stack {
    fn tap_env(mut self, service: &str, key: &str, value: &str) -> Self {
        self.services.get_mut(service).unwrap().env.insert(
            key.into(),
            crate::config::model::EnvValue {
                value: value.into(),
                secret: false,
            },
        );
        self
    }
}

#[test]
fn only_image_volumes_no_mount_covers_become_anonymous_volumes() {
    let dir = std::env::temp_dir();
    let opts = crate::config::LoadOptions {
        cwd: dir.clone(),
        ..Default::default()
    };
    let text = "[project]\nname = \"shop\"\n[services.db]\nimage = \"x\"\nvolumes = [\"pgdata:/var/lib/postgresql/data/\", \"./logs:/logs\"]\n";
    let stack = crate::config::parse(text, "dev.toml", &dir.join("dev.toml"), &dir, &opts).unwrap();
    let svc = &stack.services["db"];
    let image = [
        "/var/lib/postgresql/data".to_string(),
        "/logs".into(),
        "/cache/".into(),
        "/cache".into(),
    ];
    assert_eq!(
        spec::anonymous_targets(svc, &image),
        [("/cache".to_string(), false)]
    );
}

#[test]
fn a_dry_run_reads_as_what_up_would_do_in_order() {
    let before = stack("[services.web]\nbuild = { context = \".\" }\nimage = \"shop-web:dev\"\n");
    let mut actual = up_done(&before);
    // cache is gone; db's container was stopped; web's image is to be built;
    // an orphan and a duplicate of worker are about.
    actual.containers.retain(|c| c.service() != "cache");
    for c in &mut actual.containers {
        if c.service() == "db" {
            c.state = "exited".into();
        }
    }
    let mut gone = container(&before, "worker", "running");
    gone.id = "id-gone".into();
    gone.name = "shop-gone-1".into();
    gone.labels.insert(LABEL_SERVICE.into(), "gone".into());
    let mut dup = container(&before, "worker", "running");
    dup.id = "id-worker-2".into();
    dup.name = "shop-worker-2".into();
    actual.containers.extend([gone, dup]);
    actual.images.remove("shop-web:dev");
    actual.network = None;
    actual.volumes.push(ObservedVolume {
        name: "shop_pgdata".into(),
        driver: "nfs".into(),
        ..ObservedVolume::default()
    });
    let after = before.tap_env("app", "A", "2");
    let mut plan = plan(&after, &actual, &PlanOptions::default()).unwrap();
    // As the lifecycle's check leaves them: one free, one taken, one its own.
    for (p, (free, holder)) in plan
        .port_checks
        .iter_mut()
        .zip([(true, None), (false, Some("shop-app-1"))])
    {
        p.free = Some(free);
        p.holder = holder.map(str::to_string);
    }
    assert_eq!(
        render::lines(&plan),
        [
            "would build image `shop-web:dev` for `web`",
            "would remove `gone` (container `shop-gone-1`): it is no longer in the stack file",
            "would remove `worker` (container `shop-worker-2`): a second container of the service, left by an interrupted run",
            "would create network `shop_default`",
            "would create and start `cache`",
            "would start `db` (its container exists, not running)",
            "would recreate `web` only if its new image differs from the one it runs",
            "would recreate `app`: env changed",
            "would leave `worker` alone (running, unchanged)",
            "host port 5432 for `db`: free",
            "host port 8080 for `app`: held by its own container",
            "volume `pgdata` was created with other driver options than `dev.toml` gives; they apply only once it is recreated: `devenv down -v` (its data is lost), then `devenv up`",
        ]
    );
}

#[test]
fn r22_a_missing_external_volume_stops_the_plan_naming_it() {
    // Issue 22: the engine would make an empty `shop_pgdata`, and
    // PostgreSQL would start on nothing.
    let s = stack("[volumes.pgdata]\nexternal = true\nname = \"shop_pgdata\"\n");
    let mut actual = images_only(&s);
    actual.missing_volumes.insert("shop_pgdata".into());
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    match &err {
        PlanError::MissingExternalVolume {
            service,
            volume,
            name,
        } => assert_eq!(
            (service.as_str(), volume.as_str(), name.as_str()),
            ("db", "pgdata", "shop_pgdata")
        ),
        other => panic!("{other}"),
    }
    assert_eq!(err.exit_code(), 1);
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("docker volume create shop_pgdata"), "{help}");
    // Services that do not mount it still plan; once it exists, all do,
    // mounting it by its own name and never making it.
    let only_cache = PlanOptions {
        services: vec!["cache".into()],
        ..PlanOptions::default()
    };
    assert!(plan(&s, &actual, &only_cache).is_ok());
    actual.missing_volumes.clear();
    let p = plan(&s, &actual, &PlanOptions::default()).unwrap();
    assert!(
        p.volumes.iter().all(|v| v.spec.name != "shop_pgdata"),
        "{:?}",
        p.volumes
    );
    let db = &step(&p, "db").spec;
    assert!(
        db.mounts.iter().any(
            |m| matches!(m, spec::MountSpec::Volume { source, .. } if source == "shop_pgdata")
        ),
        "{:?}",
        db.mounts
    );
}

#[test]
fn r22_a_volume_name_needs_external() {
    let dir = std::env::temp_dir();
    let err = crate::config::parse(
        "[services.db]\nimage = \"x\"\nvolumes = [\"v:/d\"]\n[volumes.v]\nname = \"other\"\n",
        "dev.toml",
        &dir.join("dev.toml"),
        &dir,
        &crate::config::LoadOptions {
            cwd: dir.clone(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("volume `v` has a `name` but is not `external`"),
        "{err}"
    );
}

#[test]
fn r22_the_image_decides_a_missing_sources_kind_where_it_has_the_path() {
    let s = stack(
        "[services.web]\nimage = \"x\"\nvolumes = [\"./Caddyfile:/etc/caddy/Caddyfile\", \"./.npmrc:/root/.npmrc\", \"./site.conf:/etc/nginx/site.conf\"]\n",
    );
    let mut actual = images_only(&s);
    actual.images.insert("x".into(), ImageInfo::default());
    for m in &s.services["web"].volumes {
        if let Mount::Bind { source, .. } = m {
            actual.missing_paths.insert(source.clone());
        }
    }
    let opts = PlanOptions {
        create_paths: true,
        ..PlanOptions::default()
    };
    // Without the image's word: `Caddyfile` would be a folder, `.npmrc` refused.
    let err = plan(&s, &actual, &opts).unwrap_err();
    assert!(matches!(err, PlanError::UnsureBindSource { .. }), "{err}");
    let at = |t: &str| ("web".to_string(), t.to_string());
    actual
        .in_image
        .insert(at("/etc/caddy/Caddyfile"), PathKind::File);
    actual.in_image.insert(at("/root/.npmrc"), PathKind::File);
    // An image's folder wins over a name that looks like a file.
    actual
        .in_image
        .insert(at("/etc/nginx/site.conf"), PathKind::Folder);
    let p = plan(&s, &actual, &opts).unwrap();
    let names = |v: &[NewPath]| -> Vec<String> {
        v.iter()
            .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&p.files), ["Caddyfile", ".npmrc"]);
    assert_eq!(names(&p.folders), ["site.conf"]);
}

// ---- host ports (issue 21: apply decides nothing) ---------------------------

/// `host` of `service`'s first mapping, held by a process a local socket
/// meets (the engine is on this machine).
fn held_by_process(actual: &mut Actual, stack: &Stack, service: &str, host: u16) {
    let port = Port {
        host: Some(host),
        ..stack.services[service].ports[0].clone()
    };
    actual.host_ports.local = true;
    actual.host_ports.unbindable.extend(LocalPort::of(&port));
}

fn hosts_of(plan: &Plan, service: &str) -> Vec<Option<u16>> {
    step(plan, service)
        .spec
        .ports
        .iter()
        .map(|p| p.host)
        .collect()
}

#[test]
fn a_taken_declared_port_is_published_ten_thousand_up_and_the_plan_says_so() {
    let s = stack("");
    let mut actual = images_only(&s);
    held_by_process(&mut actual, &s, "app", 8080);
    let plan = plan_of(&s, &actual);
    assert_eq!(hosts_of(&plan, "app"), [Some(18080)]);
    assert_eq!(
        step(&plan, "app").moves,
        [PortMove {
            container: 80,
            declared: 8080,
            chosen: 18080,
            taken_by: TakenBy::Process,
        }]
    );
    // The config hash stays the declared ports': the next `up` keeps it.
    let declared = config_hash(&s.services["app"], &image_id(&s.services["app"].image));
    assert_eq!(step(&plan, "app").spec.labels[LABEL_HASH], declared);
    let lines = render::lines(&plan);
    assert!(
        lines.iter().any(|l| l
            == "host port 8080 of `app` is taken by another process: would publish its port 80 on 18080 instead"),
        "{lines:#?}"
    );
    // A container publishing it is named.
    let mut actual = images_only(&s);
    actual
        .host_ports
        .published
        .insert(8080, "other-app-1".into());
    let plan = plan_of(&s, &actual);
    assert_eq!(hosts_of(&plan, "app"), [Some(18080)]);
    assert_eq!(
        step(&plan, "app").moves[0].taken_by,
        TakenBy::Container {
            name: "other-app-1".into()
        }
    );
    let json = serde_json::to_value(&plan).unwrap();
    let app = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "app")
        .unwrap();
    assert_eq!(app["moves"][0]["chosen"], 18080, "{app:#}");
    assert_eq!(app["moves"][0]["taken_by"]["by"], "container", "{app:#}");
}

#[test]
fn a_recreate_keeps_the_port_its_container_has_now() {
    let before = stack("");
    let after = stack("").tap_env("app", "A", "2");
    let mut actual = up_done(&before);
    observed_mut(&mut actual, "app").published[0].1.port = 18080;
    // Its own container holds 18080; 8080 is free again.
    held_by_process(&mut actual, &before, "app", 18080);
    let plan = plan_of(&after, &actual);
    assert_eq!(action_of(&plan, "app"), "recreate: env");
    assert_eq!(hosts_of(&plan, "app"), [Some(18080)]);
    assert!(
        step(&plan, "app").moves.is_empty(),
        "a kept port is no news"
    );
}

#[test]
fn a_taken_fixed_port_fails_the_plan_naming_service_and_port() {
    let mut s = stack("");
    s.services.get_mut("app").unwrap().ports[0].fixed = true;
    let mut actual = images_only(&s);
    held_by_process(&mut actual, &s, "app", 8080);
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    assert!(
        matches!(&err, PlanError::PortTaken { service, port: 8080, holder: None } if service == "app"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "port 8080 for service `app` is already taken"
    );
    assert_eq!(err.exit_code(), 1);
    actual
        .host_ports
        .published
        .insert(8080, "other-app-1".into());
    let err = plan(&s, &actual, &PlanOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "port 8080 for service `app` is already taken by container `other-app-1`"
    );
}

#[test]
fn a_stopped_container_whose_port_is_taken_now_is_recreated_on_a_free_one() {
    let s = stack("");
    let mut actual = up_done(&s);
    for c in &mut actual.containers {
        if c.service() == "app" {
            c.state = "exited".into();
        }
    }
    // Its port free: started as it is.
    assert_eq!(action_of(&plan_of(&s, &actual), "app"), "start");
    // Another project's container took 8080 meanwhile.
    actual
        .host_ports
        .published
        .insert(8080, "other-app-1".into());
    let plan = plan_of(&s, &actual);
    assert_eq!(action_of(&plan, "app"), "recreate: ");
    let app = step(&plan, "app");
    let by = TakenBy::Container {
        name: "other-app-1".into(),
    };
    assert_eq!(
        app.port_taken,
        Some(PortTaken {
            port: 8080,
            taken_by: by.clone()
        })
    );
    assert_eq!(hosts_of(&plan, "app"), [Some(18080)]);
    assert_eq!(app.moves[0].taken_by, by);
    let lines = render::lines(&plan);
    assert!(
        lines.iter().any(|l| l
            == "would recreate `app` on a free host port: its host port 8080 is taken by container `other-app-1`"),
        "{lines:#?}"
    );
    // A second mapping, free, keeps its port.
    let mut two = s.clone();
    let app = two.services.get_mut("app").unwrap();
    let https = Port {
        host: Some(8443),
        container: 443,
        ..app.ports[0].clone()
    };
    app.ports.push(https);
    let mut actual = up_done(&two);
    for c in &mut actual.containers {
        if c.service() == "app" {
            c.state = "exited".into();
        }
    }
    actual
        .host_ports
        .published
        .insert(8080, "other-app-1".into());
    let plan = plan_of(&two, &actual);
    assert_eq!(hosts_of(&plan, "app"), [Some(18080), Some(8443)]);
    // Half-started by an interrupted run, a port no container publishes
    // may be its own (the engine's proxy): it is started.
    let mut half = up_done(&s);
    for c in &mut half.containers {
        if c.service() == "app" {
            c.state = "created".into();
        }
    }
    held_by_process(&mut half, &s, "app", 8080);
    assert_eq!(action_of(&plan_of(&s, &half), "app"), "start");
}

#[test]
fn two_services_never_get_the_same_substitute() {
    let mut s = stack("");
    let app_port = s.services["app"].ports[0].clone();
    s.services.get_mut("cache").unwrap().ports.push(Port {
        container: 6379,
        ..app_port
    });
    let mut actual = images_only(&s);
    held_by_process(&mut actual, &s, "app", 8080);
    held_by_process(&mut actual, &s, "app", 18080);
    let plan = plan_of(&s, &actual);
    let (app, cache) = (hosts_of(&plan, "app"), hosts_of(&plan, "cache"));
    assert_ne!(app, cache);
    let mut all = [app[0], cache[0]];
    all.sort();
    assert_eq!(all, [Some(28080), Some(38080)]);
}

#[test]
fn an_ipv6_binding_is_printed_in_brackets() {
    let b = |ip: Option<&str>, protocol| Binding {
        host_ip: ip.map(str::to_string),
        port: 15432,
        protocol,
    };
    assert_eq!(b(Some("::1"), Protocol::Tcp).to_string(), "[::1]:15432");
    assert_eq!(b(Some("[::1]"), Protocol::Tcp).to_string(), "[::1]:15432");
    assert_eq!(
        b(Some("127.0.0.1"), Protocol::Udp).to_string(),
        "127.0.0.1:15432/udp"
    );
    assert_eq!(b(None, Protocol::Tcp).to_string(), "15432");
}
