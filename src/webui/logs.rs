//! The page's logs: every service followed for as long as the server runs,
//! across restarts and recreations, each line masked exactly as `devenv
//! logs` masks it (the loaded stacks' secrets and URL passwords, through
//! [`scrub`]), with what each container holds under secret names
//! registered first.
//!
//! As `logs -f` does, it follows the service, not the container: streams
//! are read with the engine's timestamps, and the time of the last line
//! kept (the cursor) is where the next stream (a new run, a new container,
//! a stream that broke off) starts; what is not after it is skipped, so no
//! line is lost or shown twice.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::StreamExt;
use jiff::Timestamp;

use super::events::Hub;
use crate::config::secret::{leaves_alone, scrub};
use crate::engine::{Engine, LogsFrom};
use crate::ui::frame_lines;

/// The lines of its history a service shows when the server starts.
const HISTORY: usize = 300;
/// How often a stopped or missing service is looked for again.
const AGAIN: Duration = Duration::from_millis(300);

/// Follows `service` of `project` into `hub`, until the server stops.
pub async fn follow(engine: Engine, project: String, service: String, hub: Arc<Hub>) {
    let mut cursor: Option<Timestamp> = None;
    let mut last_run: Option<(String, String)> = None;
    loop {
        let Ok(Some((id, started))) = running(&engine, &project, &service).await else {
            tokio::time::sleep(AGAIN).await;
            continue;
        };
        // Its secrets as it holds them, masked before a line is shown.
        if crate::lifecycle::held_secrets(&engine, &project, Some(&id))
            .await
            .is_err()
        {
            tokio::time::sleep(AGAIN).await;
            continue;
        }
        let run = (id.clone(), started);
        if last_run.as_ref().is_some_and(|r| *r != run) {
            let now = Timestamp::now().as_microsecond();
            let what = if last_run.as_ref().is_some_and(|r| r.0 == id) {
                "── restarted"
            } else {
                "── restarted (a new container)"
            };
            // Right after the last line of the run before, so the page
            // shows it between the two runs whatever the clocks say.
            hub.line(
                &service,
                cursor.map_or(now, |c| c.as_microsecond() + 1),
                what,
                true,
            );
        }
        last_run = Some(run);
        let from = match cursor {
            Some(at) => LogsFrom {
                tail: None,
                since: Some(at.as_second()),
                timestamps: true,
            },
            None => LogsFrom {
                tail: Some(HISTORY),
                since: None,
                timestamps: true,
            },
        };
        let mut stream = engine.log_bytes(&id, &from, true);
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { break };
            // One look at the whole chunk, as `devenv logs` does: a chunk
            // with nothing to mask anywhere needs no masking line by line.
            let clean = std::str::from_utf8(&chunk).is_ok_and(leaves_alone);
            let mut batch = Vec::new();
            for line in frame_lines(&chunk) {
                let split = line.iter().position(|b| *b == b' ');
                let (ts, rest) = split.map_or((line, &[][..]), |at| (&line[..at], &line[at + 1..]));
                let at = std::str::from_utf8(ts)
                    .ok()
                    .and_then(|t| t.parse::<Timestamp>().ok());
                if let (Some(at), Some(c)) = (at, cursor) {
                    if at <= c {
                        continue;
                    }
                }
                if let Some(at) = at {
                    cursor = Some(at);
                }
                let t = at.unwrap_or_else(Timestamp::now).as_microsecond();
                let text = String::from_utf8_lossy(rest);
                let text = if clean {
                    text
                } else {
                    scrub(&text).into_owned().into()
                };
                batch.push((t, text.into_owned()));
            }
            hub.lines(&service, batch, false);
        }
        // Nothing read yet: what comes next is after now.
        cursor.get_or_insert_with(Timestamp::now);
        tokio::time::sleep(AGAIN).await;
    }
}

/// The service's running container and when it started, if one runs.
async fn running(
    engine: &Engine,
    project: &str,
    service: &str,
) -> Result<Option<(String, String)>, crate::engine::EngineError> {
    let found = engine
        .list_containers(project)
        .await?
        .into_iter()
        .find(|c| c.service == service && !c.oneoff && c.state == "running");
    let Some(c) = found else { return Ok(None) };
    let st = engine.inspect_container(&c.id, project).await?;
    Ok(Some((c.id, st.started_at.unwrap_or_default())))
}
