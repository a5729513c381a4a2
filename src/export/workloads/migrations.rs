//! When app pods wait for the release's migrations (their own hooks run
//! them, or a one-off they wait on does, or they run beside them), and the
//! init container that holds them until the database has none pending.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::Workload;
use crate::config::model::{Condition, Service, Stack};
use crate::export::objects::{Placed, Role};
use crate::export::settings::{Kind, Settings};

/// Whether an app service's new pods wait for the release's migrations.
pub(super) fn gated(work: &Workload<'_>) -> bool {
    waits_for_migrations(work.stack, work.placed.service)
        || runs_beside_migrations(work.stack, work.placed, work.settings)
}

/// Whether the hooks migrate a Laravel database (what the app pods wait for).
fn migrates(service: &Service) -> bool {
    service
        .hooks
        .after_up
        .iter()
        .any(|hook| hook.contains("artisan migrate"))
}

/// Whether a service's pods must wait for migrations: its own hooks run
/// them, or it waits (`completed`) on a one-off that runs them.
fn waits_for_migrations(stack: &Stack, service: &Service) -> bool {
    let runs_migrations = |one_off: &Service| {
        one_off
            .command
            .as_ref()
            .is_some_and(|command| command.join(" ").contains("artisan migrate"))
            || migrates(one_off)
    };
    migrates(service)
        || service
            .depends_on
            .iter()
            .filter(|(_, condition)| **condition == Condition::Completed)
            .filter_map(|(name, _)| stack.services.get(name))
            .any(runs_migrations)
}

/// Whether a queue worker or a scheduler runs the new code against the
/// stack's migrated database: it talks to a database (so its gate can
/// ask it) and some app service migrates. It waits like the web pods.
fn runs_beside_migrations(stack: &Stack, placed: &Placed<'_>, settings: &Settings) -> bool {
    let reaches_database = placed
        .service
        .depends_on
        .iter()
        .filter(|(_, condition)| **condition != Condition::Completed)
        .filter_map(|(name, _)| stack.services.get(name))
        .any(|dependency| matches!(settings.kind(dependency), Kind::Postgres | Kind::Mysql));
    placed.role != Role::Server
        && reaches_database
        && stack
            .services
            .values()
            .any(|other| other.build.is_some() && waits_for_migrations(stack, other))
}

/// An init container holding a new app pod until the database has no
/// pending migration: Laravel's `migrate --pretend` says "Nothing to
/// migrate" then. It asks the database, not the Kubernetes API, so it needs
/// no RBAC and works whichever tool applied the release.
///
/// Under Istio it runs as uid 1337, the proxy's, whose traffic the
/// redirection leaves alone: the sidecar starts after the init containers,
/// so redirected traffic would go nowhere and the gate would never open.
pub(super) fn wait_for_migrations(app: &Container, istio: bool) -> Container {
    let mut security = app.security_context.clone();
    if istio {
        if let Some(context) = security.as_mut() {
            context.run_as_user = Some(ISTIO_PROXY_UID);
            context.run_as_group = Some(ISTIO_PROXY_UID);
        }
    }
    let script = "until php artisan migrate --pretend --force 2>/dev/null | grep -q 'Nothing to migrate'; do echo 'waiting for the migration Job'; sleep 5; done";
    Container {
        name: "wait-for-migrations".into(),
        args: Some(vec!["sh".into(), "-c".into(), script.into()]),
        command: None,
        ports: None,
        lifecycle: None,
        readiness_probe: None,
        liveness_probe: None,
        startup_probe: None,
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".into())),
                ("memory".to_string(), Quantity("64Mi".into())),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("250m".into())),
                ("memory".to_string(), Quantity("256Mi".into())),
            ])),
            ..Default::default()
        }),
        security_context: security,
        ..app.clone()
    }
}

/// The uid Istio's traffic redirection exempts (the proxy's own).
const ISTIO_PROXY_UID: i64 = 1337;
