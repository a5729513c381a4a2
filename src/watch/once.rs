//! Whole-tree syncs outside a watcher: a service's running container made
//! equal to the working tree (`up`, `restart`), and a one-off container of
//! `devenv run` filled before it starts.

use super::plan::Rule;
use super::sync::{self, Mirror, Owner};
use super::{report_conflicts, report_links, rules, source, WatchError};
use crate::config::model::Stack;
use crate::engine::Engine;
use crate::report::Reporter;

/// Makes the copy of `service`'s synced folders in its container `id` equal
/// to the working tree (sync mode): what the container made is copied back
/// first, then the host's tree goes in and what it lacks goes out. `None`
/// when the service copies nothing (bind mode, no `sync` rules).
pub async fn sync_service(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    id: &str,
    reporter: &dyn Reporter,
) -> Result<Option<String>, WatchError> {
    let copies = stack.services.get(service).is_some_and(|s| {
        source::mode(s, &engine.endpoint) == crate::config::model::MountMode::Sync
            && s.watch
                .iter()
                .any(|r| r.action == crate::config::model::WatchAction::Sync)
    });
    if !copies {
        return Ok(None);
    }
    let mut prepared = stack.clone();
    prepared.services.retain(|name, _| name == service);
    for svc in prepared.services.values_mut() {
        source::prepare(svc, &engine.endpoint);
        // Only what copies; a folder not there yet has nothing to copy.
        svc.watch
            .retain(|r| r.action == crate::config::model::WatchAction::Sync && r.path.exists());
    }
    let rules = rules(&prepared, &[])?;
    let copying: Vec<&Rule> = rules.iter().filter(|r| r.copies()).collect();
    if copying.is_empty() {
        return Ok(None);
    }
    report_links(reporter, &rules, &stack.root);
    let owner = sync::owner(engine, id).await?;
    let stats = sync::full(engine, id, owner, &copying, &mut Mirror::default()).await?;
    report_conflicts(reporter, service, &stats);
    Ok(Some(stats.describe()))
}

/// Puts the working tree into a one-off container of `svc` (as it runs it)
/// that is created but not started yet, in sync mode; `devenv run` then
/// sees the checkout's code as the service does.
pub async fn sync_oneoff(
    engine: &Engine,
    stack: &Stack,
    svc: &crate::config::model::Service,
    id: &str,
) -> Result<(), WatchError> {
    let mut one = stack.clone();
    one.services.retain(|name, _| name == &svc.name);
    let mut svc = svc.clone();
    svc.watch
        .retain(|r| r.action == crate::config::model::WatchAction::Sync && r.path.exists());
    one.services.insert(svc.name.clone(), svc.clone());
    let rules = rules(&one, &[])?;
    let copying: Vec<&Rule> = rules.iter().filter(|r| r.copies()).collect();
    if copying.is_empty() {
        return Ok(());
    }
    // Not running: no `id -u` to ask; the user as configured, numerically.
    let user = match &svc.user {
        Some(u) => Some(u.clone()),
        None => engine.image_user(&svc.image).await?,
    };
    let mut ids = user.as_deref().unwrap_or("0").splitn(2, ':');
    let uid = ids.next().and_then(|u| u.parse().ok()).unwrap_or(0);
    let gid = ids.next().and_then(|g| g.parse().ok()).unwrap_or(uid);
    sync::upload(
        engine,
        id,
        Owner { uid, gid },
        &copying,
        &mut Mirror::default(),
    )
    .await?;
    Ok(())
}
