//! Live updates: one hub per server, fed by the state poller, the log
//! followers and running actions, read by each page over server-sent
//! events. The browser never polls; the server looks at the engine once a
//! second for all pages together.
//!
//! Log lines are kept in a ring (the last [`KEEP`]) for pages that open
//! later, and go out in batches (at most every [`BATCH`]), so a service
//! that prints a storm costs a page a few messages a second, and the
//! server's memory stays bounded however fast anything prints.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

/// Log lines kept for a page that opens later (and for a search).
pub const KEEP: usize = 5000;
/// How long lines gather before they go out together.
pub const BATCH: Duration = Duration::from_millis(100);
/// A line longer than this is cut (a service printing a megabyte of JSON).
const LINE_MAX: usize = 8 * 1024;
/// The most lines one batch carries: in a storm only the newest go to the
/// pages (which show 2,000), with a line saying how many were left out, so
/// neither the server's memory nor a page's falls behind. `devenv logs`
/// has them all.
const BATCH_MAX: usize = 2000;
/// Batches held for a page that reads slowly; past that it is sent the
/// kept lines again.
const QUEUE: usize = 32;

/// One line of a service's log, or a line about the service itself.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Arrival order: a page that hears a line twice keeps it once.
    pub seq: u64,
    /// The engine's timestamp, in Unix microseconds (lines of all services
    /// are shown in this order).
    pub t: i64,
    pub service: String,
    /// Masked as `devenv logs` masks it; terminal colours left in.
    pub text: String,
    /// A line about the service (restarted, exited), not its output.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub event: bool,
}

/// What goes to the pages.
#[derive(Debug, Clone)]
pub enum Event {
    /// The services, as JSON.
    State(Arc<str>),
    /// New log lines, as JSON.
    Logs(Arc<str>),
    /// An action's progress (a task changed, a line of its output), as JSON.
    Activity(Arc<str>),
    /// A new timeline of the last `up`, as JSON.
    Timeline(Arc<str>),
}

impl Event {
    fn sse(&self) -> SseEvent {
        let (name, data) = match self {
            Event::State(d) => ("state", d),
            Event::Logs(d) => ("logs", d),
            Event::Activity(d) => ("activity", d),
            Event::Timeline(d) => ("timeline", d),
        };
        SseEvent::default().event(name).data(&**data)
    }
}

/// Lines gathered for the next batch, per service, and how many a storm
/// pushed out: one service's storm never pushes out another's lines.
#[derive(Default)]
struct Pending {
    by_service: std::collections::HashMap<String, (VecDeque<Line>, u64)>,
}

pub struct Hub {
    tx: broadcast::Sender<Event>,
    seq: AtomicU64,
    ring: Mutex<VecDeque<Line>>,
    pending: Mutex<Pending>,
    state: Mutex<Arc<str>>,
    timeline: Mutex<Arc<str>>,
    /// Asks the state poller to look now (after an action).
    pub poke: Notify,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(QUEUE).0,
            seq: AtomicU64::new(0),
            ring: Mutex::new(VecDeque::with_capacity(KEEP)),
            pending: Mutex::new(Pending::default()),
            state: Mutex::new("[]".into()),
            timeline: Mutex::new("null".into()),
            poke: Notify::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Adds a line; it goes out with the next batch.
    pub fn line(&self, service: &str, t: i64, text: &str, event: bool) {
        self.lines(service, vec![(t, text.to_string())], event);
    }

    /// Adds a chunk's lines (time, text) under one lock; in a storm only
    /// the newest [`BATCH_MAX`] are kept, the others only counted.
    pub fn lines(&self, service: &str, lines: Vec<(i64, String)>, event: bool) {
        let mut pending = lock(&self.pending);
        let (queue, skipped) = pending.by_service.entry(service.to_string()).or_default();
        let over = lines.len().saturating_sub(BATCH_MAX);
        *skipped += over as u64;
        for (t, mut text) in lines.into_iter().skip(over) {
            if text.len() > LINE_MAX {
                let mut cut = LINE_MAX;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push_str(" …");
            }
            if queue.len() == BATCH_MAX {
                queue.pop_front();
                *skipped += 1;
            }
            queue.push_back(Line {
                seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
                t,
                service: service.to_string(),
                text,
                event,
            });
        }
    }

    /// Sends what gathered since the last batch (the batcher calls it).
    pub fn flush(&self) {
        let mut groups: Vec<(VecDeque<Line>, u64)> =
            std::mem::take(&mut lock(&self.pending).by_service)
                .into_values()
                .collect();
        // A fair share of the batch each, the quiet services first: they
        // keep every line, the storming ones share what is left.
        groups.sort_by_key(|(q, _)| q.len());
        let mut left = BATCH_MAX;
        let count = groups.len();
        let mut batch: Vec<Line> = Vec::new();
        for (i, (mut queue, mut skipped)) in groups.into_iter().enumerate() {
            let share = left / (count - i);
            let drop = queue.len().saturating_sub(share);
            queue.drain(..drop);
            skipped += drop as u64;
            left -= queue.len();
            if skipped > 0 {
                if let Some(first) = queue.front() {
                    // Just before the first line kept: where the gap is.
                    batch.push(Line {
                        seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
                        t: first.t - 1,
                        service: first.service.clone(),
                        text: format!(
                            "── {skipped} lines left out here (a log storm: the page keeps up with the newest; `devenv logs` has every line)"
                        ),
                        event: true,
                    });
                }
            }
            batch.extend(queue);
        }
        if batch.is_empty() {
            return;
        }
        batch.sort_by_key(|l| (l.t, l.seq));
        {
            let mut ring = lock(&self.ring);
            for l in &batch {
                if ring.len() == KEEP {
                    ring.pop_front();
                }
                ring.push_back(l.clone());
            }
        }
        let json = serde_json::to_string(&batch).expect("lines serialise");
        let _ = self.tx.send(Event::Logs(json.into()));
    }

    /// The lines kept, oldest first.
    pub fn backlog(&self) -> Vec<Line> {
        lock(&self.ring).iter().cloned().collect()
    }

    /// The services changed: every page hears it.
    pub fn set_state(&self, json: String) {
        let json: Arc<str> = json.into();
        *lock(&self.state) = json.clone();
        let _ = self.tx.send(Event::State(json));
    }

    pub fn state(&self) -> Arc<str> {
        lock(&self.state).clone()
    }

    pub fn set_timeline(&self, json: String) {
        let json: Arc<str> = json.into();
        let mut held = lock(&self.timeline);
        if **held != *json {
            *held = json.clone();
            let _ = self.tx.send(Event::Timeline(json));
        }
    }

    pub fn timeline(&self) -> Arc<str> {
        lock(&self.timeline).clone()
    }

    pub fn activity(&self, value: &impl Serialize) {
        let json = serde_json::to_string(value).expect("activity serialises");
        let _ = self.tx.send(Event::Activity(json.into()));
    }

    /// One page's stream: what is known now (services, timeline, the kept
    /// lines), then every change. A page too slow to keep up is sent the
    /// kept lines again rather than a gap.
    pub fn stream(self: &Arc<Self>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
        let rx = self.tx.subscribe();
        let backlog = serde_json::to_string(&self.backlog()).expect("lines serialise");
        let first = vec![
            Event::State(self.state()),
            Event::Timeline(self.timeline()),
            Event::Logs(backlog.into()),
        ];
        let hub = self.clone();
        let stream = futures_util::stream::unfold(
            (first.into_iter(), rx, hub),
            |(mut first, mut rx, hub)| async move {
                if let Some(e) = first.next() {
                    return Some((Ok(e.sse()), (first, rx, hub)));
                }
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let json = serde_json::to_string(&hub.backlog()).expect("lines serialise");
                        Event::Logs(json.into())
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                Some((Ok(event.sse()), (first, rx, hub)))
            },
        );
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }
}

/// A [`Reporter`](crate::report::Reporter) for actions run from the page:
/// their progress goes to every page (and never to the terminal).
pub struct PageReporter(pub Arc<Hub>);

#[derive(Serialize)]
struct Activity<'a> {
    key: &'a str,
    status: &'a str,
    /// `running`, `ok`, `failed`, `notice`, `output`.
    kind: &'a str,
}

impl crate::report::Reporter for PageReporter {
    fn task(&self, key: &str, status: &str) {
        self.0.activity(&Activity {
            key,
            status: &crate::config::secret::scrub(status),
            kind: "running",
        });
    }
    fn done(&self, key: &str, status: &str, ok: bool) {
        let kind = if ok { "ok" } else { "failed" };
        self.0.activity(&Activity {
            key,
            status: &crate::config::secret::scrub(status),
            kind,
        });
    }
    fn notice(&self, message: &str) {
        self.0.activity(&Activity {
            key: "",
            status: &crate::config::secret::scrub(message),
            kind: "notice",
        });
    }
    fn output(&self, source: &str, line: &str) {
        self.0.activity(&Activity {
            key: source,
            status: &crate::config::secret::scrub(line),
            kind: "output",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_keeps_the_newest_lines_says_how_many_went_and_the_ring_stays_bounded() {
        let hub = Hub::default();
        let mut rx = hub.tx.subscribe();
        for i in 0..(BATCH_MAX + 10) {
            hub.line("s", i as i64 + 1, &format!("line {i}"), false);
        }
        hub.flush();
        let Ok(Event::Logs(json)) = rx.try_recv() else {
            panic!("no batch")
        };
        let batch: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(batch.len(), BATCH_MAX + 1);
        assert!(batch[0]["text"]
            .as_str()
            .unwrap()
            .contains("10 lines left out"));
        assert_eq!(batch[1]["text"], "line 10");
        assert_eq!(batch[BATCH_MAX]["text"], format!("line {}", BATCH_MAX + 9));
        // A storm in one service does not push out a quiet one's line.
        for i in 0..(3 * BATCH_MAX) {
            hub.line("loud", i as i64, "storm", false);
        }
        hub.line("quiet", 1, "the one line", false);
        hub.flush();
        let Ok(Event::Logs(json)) = rx.try_recv() else {
            panic!("no batch")
        };
        let batch: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert!(batch.len() <= BATCH_MAX + 1, "{}", batch.len());
        assert!(batch.iter().any(|l| l["text"] == "the one line"));
        for _ in 0..3 {
            for i in 0..BATCH_MAX {
                hub.line("s", i as i64, "more", false);
            }
            hub.flush();
        }
        assert_eq!(hub.backlog().len(), KEEP);
    }

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary() {
        let hub = Hub::default();
        hub.line("s", 1, &"é".repeat(LINE_MAX), false);
        hub.flush();
        let kept = &hub.backlog()[0].text;
        assert!(kept.len() <= LINE_MAX + " …".len() && kept.ends_with(" …"));
    }
}
