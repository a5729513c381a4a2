//! What the page shows of each service, read from the engine and the
//! labels (never from a daemon): state, readiness and since when, restarts
//! and why, image, health, host ports, labelled URLs and `describe`'s
//! connection details, masked.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::model::Stack;
use crate::describe::Detail;
use crate::engine::{Engine, EngineError};
use crate::lifecycle::{explain_exit, ServiceStatus};
use crate::probe;
use crate::urls::Url;

/// One service on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub service: String,
    /// The colour its log prefix has on the terminal (an index).
    pub colour: usize,
    pub image: String,
    /// `running`, `exited`, `restarting`…, or `not created`.
    pub state: String,
    pub ready: bool,
    /// Since when it is ready (RFC 3339, as far as devenv saw it).
    pub ready_since: Option<String>,
    /// When its container last started (RFC 3339).
    pub started: Option<String>,
    pub health: Option<String>,
    /// How often it restarted: by the engine's restart policy, and as seen here.
    pub restarts: i64,
    /// How its last run ended (exit code, out of memory), when known.
    pub last_exit: Option<String>,
    pub oom_killed: bool,
    pub ports: Vec<String>,
    pub urls: Vec<Url>,
    pub connection: Vec<Detail>,
    /// Its migrate and seed hooks exist.
    pub migrate: bool,
    pub seed: bool,
    pub rebuild: bool,
}

/// What the page remembers between two looks: when a service became
/// ready, and the runs it saw (to count restarts the engine did not).
#[derive(Debug, Default)]
pub struct Memory {
    ready_since: HashMap<String, (String, Option<String>)>,
    runs: HashMap<String, (String, i64)>,
    exits: HashMap<String, String>,
}

/// Every service of the stack (and any container the file no longer
/// names), in file order.
pub async fn rows(
    engine: &Engine,
    stack: &Stack,
    memory: &mut Memory,
) -> Result<Vec<Row>, EngineError> {
    let containers: Vec<_> = engine
        .list_containers(&stack.project)
        .await?
        .into_iter()
        .filter(|c| !c.oneoff)
        .collect();
    let looks = containers.iter().map(|c| async move {
        let st = engine.inspect_container(&c.id, &stack.project).await?;
        let svc = stack.services.get(&c.service);
        let ready = st.running
            && !st.restarting
            && match svc.and_then(|s| s.ready.as_ref()) {
                Some(p) => probe::check(engine, p, &probe::Target::from_status(&c.id, &st))
                    .await
                    .is_ok(),
                None => true,
            };
        Ok::<_, EngineError>((c, st, ready))
    });
    let looked = futures_util::future::join_all(looks).await;
    let mut statuses = Vec::new();
    let mut extra = HashMap::new();
    for r in looked {
        let (c, st, ready) = r?;
        let mut published: Vec<(u16, u16)> = st.published.iter().map(|(c, h)| (*c, *h)).collect();
        published.sort();
        let svc = stack.services.get(&c.service);
        statuses.push(ServiceStatus {
            service: c.service.clone(),
            container: c.id.clone(),
            name: c.name.clone(),
            state: if st.restarting {
                "restarting".into()
            } else {
                c.state.clone()
            },
            ready,
            ports: st.bindings.iter().map(ToString::to_string).collect(),
            urls: crate::urls::service_urls(&c.service, svc, &published),
            bindings: st.bindings.clone(),
        });
        extra.insert(c.service.clone(), (c.id.clone(), st));
    }
    let seen = crate::describe::Observed::status_only(&statuses);
    let described = crate::describe::describe(stack, seen, false);
    let mut out = Vec::new();
    for d in described {
        let svc = stack.services.get(&d.service);
        let mut row = Row {
            colour: crate::ui::colour_index(&d.service),
            image: d.image.clone(),
            state: statuses
                .iter()
                .find(|s| s.service == d.service)
                .map_or(d.state.clone(), |s| s.state.clone()),
            ready: d.ready,
            ready_since: None,
            started: None,
            health: None,
            restarts: 0,
            last_exit: None,
            oom_killed: false,
            ports: d.ports.clone(),
            urls: d.urls.clone(),
            connection: d.connection.clone(),
            migrate: svc.is_some_and(|s| !s.hooks.migrate.is_empty()),
            seed: svc.is_some_and(|s| !s.hooks.seed.is_empty()),
            rebuild: svc.is_some_and(|s| s.build.is_some()),
            service: d.service,
        };
        if let Some((id, st)) = extra.get(&row.service) {
            row.started = st.started_at.clone();
            row.health = st.health.clone();
            row.oom_killed = st.oom_killed;
            if !st.running || st.restarting {
                row.last_exit = st.exit_code.map(|code| explain_exit(code, st.oom_killed));
            }
            let (restarts, since) =
                memory.note(&row.service, id, st.started_at.as_deref(), row.ready);
            row.ready_since = since;
            row.restarts = restarts;
            // The engine counts its policy's restarts, this page every new run it saw.
            row.restarts = row.restarts.max(st.restart_count);
            match &row.last_exit {
                Some(e) => {
                    memory.exits.insert(row.service.clone(), e.clone());
                }
                // Running again: why the last run ended stays on show.
                None => row.last_exit = memory.exits.get(&row.service).cloned(),
            }
        }
        out.push(row);
    }
    Ok(out)
}

impl Memory {
    /// How often it restarted and since when it is ready: a restart counted each time a new run of
    /// the service's container (or a new container) is seen.
    fn note(
        &mut self,
        service: &str,
        id: &str,
        started: Option<&str>,
        ready: bool,
    ) -> (i64, Option<String>) {
        let run = format!("{id}@{}", started.unwrap_or_default());
        let now = jiff::Timestamp::now().to_string();
        match self.runs.get_mut(service) {
            Some((last, count)) if *last != run => {
                *last = run.clone();
                *count += 1;
            }
            Some(_) => {}
            None => {
                self.runs.insert(service.to_string(), (run.clone(), 0));
            }
        }
        let restarts = self.runs.get(service).map_or(0, |(_, n)| *n);
        let since = match self.ready_since.get(service) {
            _ if !ready => None,
            Some((r, Some(s))) if *r == run => Some(s.clone()),
            // Seen not ready, or another run: ready from now on.
            Some(_) => Some(now),
            // Ready when first seen: as far as anyone can tell, since it started.
            None => Some(started.map_or(now, str::to_string)),
        };
        self.ready_since
            .insert(service.to_string(), (run, since.clone()));
        (restarts, since)
    }
}
