//! What the project's containers hold, and its secrets hidden from every
//! output. A container keeps the env it was created with, which may differ
//! from the stack file as it resolves now: the shell that ran `up` had
//! `DB_PASSWORD` set, the one running `logs` has not, and the stack's own
//! masker hides only the default. So the commands that show a container's
//! output or details (`logs`, attached `up`, `describe`, the page's log
//! followers) register what the containers hold under secret names into
//! the process-wide masker before they show anything, and `describe` reads
//! the connection details a client must use from here.

use std::collections::HashMap;

use futures_util::future::join_all;

use crate::config::secret::{register, Masker};
use crate::engine::{ContainerEnv, Engine, EngineError};

/// Registers the secrets the project's containers hold (every container,
/// one-offs and stopped ones too: their logs are shown as well; with `only`,
/// that container alone) and returns each service's own container's env
/// and command (the running one while one replaces another).
pub async fn held_secrets(
    engine: &Engine,
    project: &str,
    only: Option<&str>,
) -> Result<HashMap<String, ContainerEnv>, EngineError> {
    let mut containers = engine.list_containers(project).await?;
    // Names the project prints anyway stay readable, as the stack's own
    // masker keeps them (a password that is also a service's name).
    let mut names: Vec<String> = vec![project.to_string()];
    names.extend(containers.iter().map(|c| c.service.clone()));
    containers.retain(|c| only.is_none_or(|id| c.id == id));
    containers.sort_by_key(|c| c.state != "running");
    let looks = containers.iter().map(|c| engine.container_env(&c.id));
    let mut masker = Masker::default();
    let mut own = HashMap::new();
    for (c, held) in containers.iter().zip(join_all(looks).await) {
        // Gone since the listing: it holds nothing any more.
        let Some(held) = held? else { continue };
        masker.extend(&Masker::of_held(&held.env, &held.command));
        if !c.oneoff {
            own.entry(c.service.clone()).or_insert(held);
        }
    }
    masker.spare(names.iter().map(String::as_str));
    register(&masker);
    Ok(own)
}
