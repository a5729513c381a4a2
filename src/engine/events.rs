//! Settling after an interrupted command: the engine finishes requests a
//! killed devenv had already sent (a stop, a removal), so the next command
//! waits for those to land before it observes the project. What is under
//! way is read from the engine's own event log, not guessed from a sleep.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::{Engine, EngineError, LABEL_PROJECT};

/// One container event, as far as settling cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    id: String,
    action: String,
    /// The signal of a `kill` event.
    signal: Option<String>,
}

/// The containers with a stop under way after `events` (in the engine's
/// order): a `kill` with SIGTERM or SIGKILL (what a stop or a forced
/// removal sends) not yet followed by the container's `die` or `destroy`.
fn pending(events: &[Event], into: &mut BTreeSet<String>) {
    for e in events {
        match e.action.as_str() {
            "kill" if matches!(e.signal.as_deref(), Some("15" | "9")) => {
                into.insert(e.id.clone());
            }
            "die" | "destroy" => {
                into.remove(&e.id);
            }
            _ => {}
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// The project's container events from `since` (unix seconds) on,
    /// oldest first; with `until`, the stream ends then.
    fn container_events(
        &self,
        project: &str,
        since: u64,
        until: u64,
    ) -> impl futures_util::Stream<Item = Result<Event, EngineError>> + '_ {
        let opts = EventsOptions {
            since: Some(since.to_string()),
            until: Some(until.to_string()),
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                (
                    "label".to_string(),
                    vec![format!("{LABEL_PROJECT}={project}")],
                ),
            ])),
        };
        self.docker
            .events(Some(opts))
            .filter_map(|message| async move {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => return Some(Err(EngineError::api("reading the engine's events")(e))),
                };
                let actor = message.actor?;
                let attributes = actor.attributes.unwrap_or_default();
                Some(Ok(Event {
                    id: actor.id.unwrap_or_default(),
                    action: message.action.unwrap_or_default(),
                    signal: attributes.get("signal").cloned(),
                }))
            })
    }

    /// Waits, at most `timeout`, until no stop or removal of the project's
    /// containers that began at or after `since` (unix seconds) is still
    /// under way. Returns how many containers it waited for (0: the engine
    /// was settled already, seen from one events query and one listing).
    pub async fn settle(
        &self,
        project: &str,
        since: u64,
        timeout: Duration,
    ) -> Result<usize, EngineError> {
        let now = unix_now();
        let past: Vec<Event> = self
            .container_events(project, since, now)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut busy = BTreeSet::new();
        pending(&past, &mut busy);
        // A removal in progress shows in the listing; it ends in `destroy`.
        for c in self.observe_containers(project).await? {
            if c.state == "removing" {
                busy.insert(c.id);
            }
        }
        let waited = busy.len();
        if busy.is_empty() {
            return Ok(0);
        }
        // From the second the first look ended (its events come again,
        // harmlessly), until the deadline or until nothing is under way.
        let until = now + timeout.as_secs().max(1);
        let live = self.container_events(project, now, until);
        futures_util::pin_mut!(live);
        while let Some(event) = live.next().await {
            pending(&[event?], &mut busy);
            if busy.is_empty() {
                break;
            }
        }
        Ok(waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, action: &str, signal: Option<&str>) -> Event {
        Event {
            id: id.into(),
            action: action.into(),
            signal: signal.map(Into::into),
        }
    }

    #[test]
    fn a_stop_is_under_way_from_its_kill_until_the_container_dies() {
        let mut busy = BTreeSet::new();
        pending(&[ev("a", "kill", Some("15"))], &mut busy);
        assert_eq!(busy, BTreeSet::from(["a".to_string()]));
        pending(&[ev("a", "die", None)], &mut busy);
        assert!(busy.is_empty());
    }

    #[test]
    fn other_signals_and_finished_stops_leave_nothing_pending() {
        let mut busy = BTreeSet::new();
        pending(
            &[
                ev("a", "kill", Some("1")),
                ev("b", "kill", Some("15")),
                ev("b", "kill", Some("9")),
                ev("b", "die", None),
                ev("b", "stop", None),
                ev("c", "kill", Some("9")),
                ev("c", "destroy", None),
                ev("d", "start", None),
            ],
            &mut busy,
        );
        assert!(busy.is_empty(), "{busy:?}");
    }
}
