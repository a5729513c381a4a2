//! `devenv ls [--json]`: every devenv project on the engine, read from the
//! labels on its containers (no daemon, no registry of projects): its name,
//! its folder, how many services run and are ready, and its URLs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Context, Failure, Outcome};
use crate::cli::PsArgs;
use crate::config::LoadOptions;
use crate::engine::{ContainerInfo, Engine};
use crate::urls::{self, Url};

/// One project as `ls` shows it.
#[derive(Debug, Serialize)]
pub struct ProjectRow {
    pub project: String,
    /// The folder of its stack file, as its containers' labels say.
    pub folder: Option<String>,
    pub services: usize,
    pub running: usize,
    /// Ready per its probes; `None` when its stack file cannot be read here.
    pub ready: Option<usize>,
    pub urls: Vec<Url>,
}

pub async fn run(ctx: &Context, args: PsArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let mut projects: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
    for c in engine.list_all_containers().await? {
        if !c.oneoff {
            projects.entry(c.project.clone()).or_default().push(c);
        }
    }
    let mut rows = Vec::new();
    for (project, containers) in projects {
        rows.push(project_row(&engine, project, &containers).await?);
    }
    if args.json {
        // Every project's stack read above registered its secrets.
        let value = serde_json::to_value(&rows).expect("project rows serialise");
        crate::ui::print_data(value, |v| {
            serde_json::to_string_pretty(v).expect("JSON values serialise")
        });
        return Ok(0);
    }
    print_table(rows);
    Ok(0)
}

/// One project's row, from its containers and, where its folder still has
/// it, its stack file.
async fn project_row(
    engine: &Engine,
    project: String,
    containers: &[ContainerInfo],
) -> Result<ProjectRow, Failure> {
    let folder = containers.iter().find_map(|c| c.dir.clone());
    // The stack file in the project's folder, when it is still there and
    // still names this project, tells readiness and which port is the app.
    let stack = folder.as_ref().and_then(|dir| {
        crate::config::load(&LoadOptions {
            cwd: dir.into(),
            project: Some(project.clone()),
            ..LoadOptions::default()
        })
        .ok()
    });
    let ready = match &stack {
        Some(stack) => Some(
            crate::lifecycle::status(engine, stack)
                .await?
                .iter()
                .filter(|s| s.ready)
                .count(),
        ),
        None => None,
    };
    // In the stack file's order where there is one, else by name: the
    // engine lists containers in no stable order.
    let rank = |service: &str| {
        stack
            .as_ref()
            .and_then(|s| s.services.get_index_of(service))
            .unwrap_or(usize::MAX)
    };
    let mut running: Vec<_> = containers.iter().filter(|c| c.state == "running").collect();
    running.sort_by(|a, b| (rank(&a.service), &a.service).cmp(&(rank(&b.service), &b.service)));
    let urls = running
        .into_iter()
        .flat_map(|c| {
            let svc = stack.as_ref().and_then(|s| s.services.get(&c.service));
            urls::service_urls(&c.service, svc, &c.published)
        })
        .collect();
    Ok(ProjectRow {
        project,
        folder,
        services: containers.len(),
        running: containers.iter().filter(|c| c.state == "running").count(),
        ready,
        urls,
    })
}

/// The rows as a table, each column as wide as its longest entry.
fn print_table(rows: Vec<ProjectRow>) {
    let w = rows
        .iter()
        .map(|r| r.project.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let f = rows
        .iter()
        .map(|r| r.folder.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(6)
        .max(6);
    crate::outln!(
        "{:w$}  {:f$}  {:9}  {:6}  URLS",
        "PROJECT",
        "FOLDER",
        "RUNNING",
        "READY"
    );
    for r in rows {
        let urls: Vec<String> = r
            .urls
            .iter()
            .map(|u| format!("{} {}", u.label, u.url))
            .collect();
        crate::outln!(
            "{:w$}  {:f$}  {:9}  {:6}  {}",
            r.project,
            r.folder.as_deref().unwrap_or("-"),
            format!("{}/{}", r.running, r.services),
            r.ready.map_or("?".to_string(), |n| n.to_string()),
            urls.join("  ")
        );
    }
}
