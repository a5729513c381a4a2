//! Following logs (`logs -f`, attached `up`).
//!
//! It follows the service, not the container: when its container restarts
//! (the engine's restart policy, a watch rule, `devenv restart` elsewhere)
//! or is replaced by a new one, the new run's lines keep coming after one
//! line saying so, and why when devenv knows. Without services named it
//! follows the project: a service started later joins.
//!
//! No line is lost or shown twice: every stream is read with the engine's
//! timestamps, and each service keeps the time of the last line it showed
//! (its cursor). A new stream (a restart, a stream that broke off) starts at
//! that second and skips what is not after the cursor; a container can
//! print before the engine records its start, so its start time is not
//! the bound. Times are the engine's own, never the host's clock.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use console::style;
use futures_util::future::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use jiff::Timestamp;

use crate::config::model::{Restart, Stack};
use crate::engine::{ContainerInfo, Engine, EngineError, LogsFrom};
use crate::lifecycle::explain_exit;
use crate::ui::{frame_lines, take_restart_note, LogBlock, Scan, LOG_BLOCK};

/// When following a service ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When its container has stopped and stays stopped (`logs -f`).
    Stopped,
    /// Only when its container is removed (attached `up`: a stopped
    /// service may be started again from another terminal).
    Removed,
}

/// Where following starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// What `logs -n/--since` ask for, then everything new (`logs -f`).
    From(LogsFrom),
    /// Only what happens after this engine time (attached `up`: the boot
    /// lines of what it started, never a previous run's).
    After(Timestamp),
}

/// What to follow and how.
pub struct Follow<'a> {
    /// The services named; `None`: the project's, new ones joining.
    pub services: Option<&'a [String]>,
    pub start: Start,
    pub until: Until,
    /// Lines keep the engine's timestamp (`-t`).
    pub timestamps: bool,
}

/// How long a stopped or missing container may take to come back before
/// following it ends: covers `restart` (stop, then start) and recreation
/// (remove, then create).
const COME_BACK: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(200);
/// How often the project is looked at for services started after following began.
const DISCOVER: Duration = Duration::from_secs(1);

/// The engine's clock now; the host's if the engine does not say.
pub async fn engine_now(engine: &Engine) -> Result<Timestamp, EngineError> {
    let now = engine.now().await?;
    Ok(now.parse().unwrap_or_else(|_| Timestamp::now()))
}

/// Follows the logs until `follow.until` says every followed service is over.
pub async fn follow(engine: &Engine, stack: &Stack, follow: Follow<'_>) -> Result<(), EngineError> {
    let begin = match follow.start {
        Start::After(t) => t,
        Start::From(_) => engine_now(engine).await?,
    };
    let running = || async {
        let mut names: Vec<String> = engine
            .list_containers(&stack.project)
            .await?
            .into_iter()
            .filter(|c| !c.oneoff && c.state == "running")
            .map(|c| c.service)
            .collect();
        names.dedup();
        Ok::<_, EngineError>(names)
    };
    let initial: Vec<String> = match follow.services {
        Some(s) => s.to_vec(),
        None => {
            let mut names: Vec<String> = stack.services.keys().cloned().collect();
            for s in running().await? {
                if !names.contains(&s) {
                    names.push(s);
                }
            }
            names
        }
    };
    let job = |service: String, start: Start| {
        let f = Tail {
            start,
            begin,
            until: follow.until,
            timestamps: follow.timestamps,
        };
        async move {
            let r = follow_service(engine, stack, &service, f).await;
            (service, r)
        }
    };
    let mut followed: HashSet<String> = initial.iter().cloned().collect();
    let mut jobs = FuturesUnordered::new();
    for s in initial {
        jobs.push(job(s, follow.start));
    }
    let mut tick = tokio::time::interval(DISCOVER);
    loop {
        tokio::select! {
            done = jobs.next() => match done {
                None => return Ok(()),
                Some((service, r)) => {
                    r?;
                    // Started again later, it is followed again.
                    followed.remove(&service);
                }
            },
            _ = tick.tick(), if follow.services.is_none() => {
                for s in running().await? {
                    if followed.insert(s.clone()) {
                        // A service that joins shows everything since following began.
                        jobs.push(job(s, Start::After(begin)));
                    }
                }
            }
        }
    }
}

/// How one service is followed.
#[derive(Clone, Copy)]
struct Tail {
    start: Start,
    /// When following began (engine time): the cursor of a service that
    /// printed nothing yet.
    begin: Timestamp,
    until: Until,
    timestamps: bool,
}

/// One run of a container: its id and when it started.
type Instance = (String, String);

async fn follow_service(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    tail: Tail,
) -> Result<(), EngineError> {
    let mut last: Option<Instance> = None;
    let mut last_exit: Option<String> = None;
    let mut block = LogBlock::new(service);
    let mut cursor: Option<Timestamp> = match tail.start {
        Start::After(t) => Some(t),
        Start::From(_) => None,
    };
    loop {
        let Some(c) = container(engine, stack, service).await? else {
            return Ok(());
        };
        let st = engine.inspect_container(&c.id, &stack.project).await?;
        // Its secrets as it holds them (`up` may have had other variables
        // than this shell), masked before a line of it is shown.
        crate::lifecycle::held_secrets(engine, &stack.project, Some(&c.id)).await?;
        let instance = (c.id.clone(), st.started_at.clone().unwrap_or_default());
        if last.as_ref().is_some_and(|prev| *prev != instance) {
            print_event(service, &restarted_line(stack, service, last_exit.take()));
        }
        let from = match (tail.start, cursor) {
            (_, Some(at)) => LogsFrom {
                tail: None,
                since: Some(at.as_second()),
                timestamps: true,
            },
            (Start::From(f), None) => LogsFrom {
                timestamps: true,
                ..f
            },
            // `After` always has a cursor.
            (Start::After(_), None) => LogsFrom::default(),
        };
        last = Some(instance);
        let mut stream = engine.log_bytes(&c.id, &from, true).fuse();
        let mut reading = Reading {
            past: false,
            last: String::new(),
        };
        while let Some(chunk) = stream.next().await {
            show(&mut block, &chunk?, cursor, &mut reading, tail.timestamps);
            // Whatever is there already goes out in the same write.
            while block.size() < LOG_BLOCK {
                let Some(Some(chunk)) = stream.next().now_or_never() else {
                    break;
                };
                show(&mut block, &chunk?, cursor, &mut reading, tail.timestamps);
            }
            block.flush();
            cursor = moved(cursor, &reading);
        }
        // Nothing shown yet: what comes next is after following began.
        cursor.get_or_insert(tail.begin);
        // The stream ends when the container stops: see whether it comes back.
        match come_back(engine, stack, service, last.as_ref(), tail.until).await? {
            Back::Again(exit) => last_exit = exit,
            Back::Never => return Ok(()),
        }
    }
}

/// Where a stream stands against the service's cursor.
struct Reading {
    /// A line past the cursor came: the stream's later lines are too (one
    /// container's log is in time order), so they are not compared again.
    past: bool,
    /// The last shown line's timestamp, parsed into the cursor once per
    /// batch rather than once per line (a buffer reused, not a copy per line).
    last: String,
}

/// Adds the lines of a timestamped frame that come after `cursor`; the
/// timestamp stays only when asked for (`-t`).
fn show(
    block: &mut LogBlock,
    frame: &[u8],
    cursor: Option<Timestamp>,
    r: &mut Reading,
    timestamps: bool,
) {
    let scan = Scan::of(frame);
    let mut last: Option<&[u8]> = None;
    for line in frame_lines(frame) {
        let split = line.iter().position(|b| *b == b' ');
        let (ts, rest) = split.map_or((line, &[][..]), |at| (&line[..at], &line[at + 1..]));
        if !r.past {
            let at = std::str::from_utf8(ts)
                .ok()
                .and_then(|ts| ts.parse::<Timestamp>().ok());
            if at.is_some_and(|at| cursor.is_some_and(|c| at <= c)) {
                continue;
            }
            r.past = true;
        }
        last = Some(ts);
        block.line_of(if timestamps { line } else { rest }, scan);
    }
    // Only the chunk's last shown line sets where the cursor moves.
    if let Some(ts) = last {
        r.last.clear();
        r.last.push_str(&String::from_utf8_lossy(ts));
    }
}

/// The cursor after a batch: the last shown line's time, if it had one.
fn moved(cursor: Option<Timestamp>, r: &Reading) -> Option<Timestamp> {
    r.last.parse::<Timestamp>().ok().or(cursor)
}

/// The UI masks the stack's secrets in it (a service may print its password).
fn print_line(service: &str, line: &str) {
    crate::ui::print_out(&crate::ui::prefixed(service, line));
}

/// A line about the service itself (restarted, exited), set apart from its output.
fn print_event(service: &str, text: &str) {
    print_line(service, &style(format!("── {text}")).dim().to_string());
}

enum Back {
    /// It runs again (how the last run ended, if known).
    Again(Option<String>),
    Never,
}

/// Waits until the service's container runs again, or decides it will not.
async fn come_back(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    last: Option<&Instance>,
    until: Until,
) -> Result<Back, EngineError> {
    let mut exit: Option<String> = None;
    let mut said_exit = false;
    let mut quiet_since = Instant::now();
    loop {
        match container(engine, stack, service).await? {
            None if quiet_since.elapsed() >= COME_BACK => return Ok(Back::Never),
            None => {}
            Some(c) => {
                let st = engine.inspect_container(&c.id, &stack.project).await?;
                let instance = (c.id.clone(), st.started_at.clone().unwrap_or_default());
                // The engine reports a container waiting to be restarted as running.
                if st.running && !st.restarting {
                    // A new run, or the same one whose log stream broke off.
                    return Ok(Back::Again(exit.filter(|_| Some(&instance) != last)));
                }
                if st.restarting {
                    quiet_since = Instant::now();
                }
                if let Some(code) = st.exit_code.filter(|_| !st.restarting || exit.is_none()) {
                    exit = Some(explain_exit(code, st.oom_killed));
                }
                if !st.restarting && quiet_since.elapsed() >= COME_BACK {
                    match until {
                        Until::Stopped => {
                            if let Some(e) = &exit {
                                print_event(service, e);
                            }
                            return Ok(Back::Never);
                        }
                        Until::Removed if !said_exit => {
                            if let Some(e) = &exit {
                                print_event(service, &format!("{e}; still following it"));
                            }
                            said_exit = true;
                        }
                        Until::Removed => {}
                    }
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The service's own container (not a one-off), whatever its state.
async fn container(
    engine: &Engine,
    stack: &Stack,
    service: &str,
) -> Result<Option<ContainerInfo>, EngineError> {
    let mut found: Vec<ContainerInfo> = engine
        .list_containers(&stack.project)
        .await?
        .into_iter()
        .filter(|c| c.service == service && !c.oneoff)
        .collect();
    // While one replaces another, the running one is the one to follow.
    found.sort_by_key(|c| c.state != "running");
    Ok(found.into_iter().next())
}

/// `restarted (…why…)`: what devenv did, or how the last run ended and the
/// restart policy that brought it back.
fn restarted_line(stack: &Stack, service: &str, exit: Option<String>) -> String {
    if let Some(why) = take_restart_note(service) {
        return format!("restarted: {why}");
    }
    let policy = stack.services.get(service).map(|s| s.restart);
    match (exit, policy) {
        (Some(exit), Some(p)) if p != Restart::No => {
            format!("restarted: it {exit}; restart = \"{}\"", restart_word(p))
        }
        (Some(exit), _) => format!("restarted (it {exit})"),
        (None, _) => "restarted".to_string(),
    }
}

fn restart_word(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::Always => "always",
        Restart::OnFailure => "on-failure",
        Restart::UnlessStopped => "unless-stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_up_to_the_cursor_are_skipped_and_the_cursor_moves_once_per_batch() {
        let cursor = "2026-11-30T17:50:01.5Z".parse().ok();
        let mut r = Reading {
            past: false,
            last: String::new(),
        };
        let mut block = LogBlock::new("s");
        let frame =
            b"2026-11-30T17:50:01.4Z old\n2026-11-30T17:50:01.5Z same\n2026-11-30T17:50:02Z new\n";
        show(&mut block, frame, cursor, &mut r, false);
        let shown = String::from_utf8_lossy(block.pending()).into_owned();
        assert!(shown.ends_with(" new\n"), "{shown}");
        assert!(!shown.contains("old") && !shown.contains("same"), "{shown}");
        assert!(r.past);
        let moved = moved(cursor, &r).unwrap().to_string();
        assert_eq!(moved, "2026-11-30T17:50:02Z");
        // `-t` keeps the engine's timestamp.
        let mut block = LogBlock::new("s");
        show(
            &mut block,
            b"2026-11-30T17:50:03Z later\n",
            cursor,
            &mut r,
            true,
        );
        let shown = String::from_utf8_lossy(block.pending()).into_owned();
        assert!(shown.ends_with(" 2026-11-30T17:50:03Z later\n"), "{shown}");
    }
}
