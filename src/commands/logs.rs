//! `devenv logs`: the services' output, prefixed and coloured per service.
//!
//! Following (`-f`, and attached `up`) follows the service, not the
//! container: when its container restarts (the engine's restart policy, a
//! watch rule, `devenv restart` elsewhere) or is replaced by a new one,
//! the new run's lines keep coming after one line saying so, and why when
//! devenv knows.

use std::time::{Duration, Instant};

use console::style;
use futures_util::future::join_all;
use futures_util::stream::StreamExt;

use super::{Context, Outcome};
use crate::cli::LogsArgs;
use crate::config::model::{Restart, Stack};
use crate::engine::{ContainerInfo, Engine, EngineError, LogsFrom};
use crate::interrupt;
use crate::lifecycle::explain_exit;
use crate::ui::take_restart_note;

pub async fn run(ctx: &Context, args: LogsArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    // A project known only from its labels (`-p NAME`, its stack file gone)
    // has the services its containers name.
    let known: Vec<String> = if stack.services.is_empty() {
        let mut names: Vec<String> = crate::lifecycle::owned_containers(&engine, &stack)
            .await?
            .into_iter()
            .filter(|c| !c.oneoff)
            .map(|c| c.service)
            .collect();
        names.dedup();
        names
    } else {
        super::check_services(&stack, &args.services)?;
        stack.services.keys().cloned().collect()
    };
    let services = if args.services.is_empty() {
        known
    } else {
        args.services
    };
    let from = LogsFrom {
        tail: args.tail,
        since: args.since.as_deref().map(since).transpose()?,
        timestamps: args.timestamps,
    };
    if args.follow {
        tokio::select! {
            r = follow(&engine, &stack, &services, from, Until::Stopped) => r?,
            () = interrupt::first() => return Ok(interrupt::EXIT_CODE),
        }
    } else {
        for c in engine.list_containers(&stack.project).await? {
            if services.contains(&c.service) && !c.oneoff {
                let mut stream = engine.logs_from(&c.id, &from, false).boxed();
                while let Some(chunk) = stream.next().await {
                    for line in chunk?.lines() {
                        // A service that prints its own secret does not show it.
                        print_line(&c.service, line);
                    }
                }
            }
        }
    }
    Ok(0)
}

/// `--since`: what `docker logs --since` accepts (see [`crate::since`]), as unix seconds.
fn since(when: &str) -> Result<i64, super::Failure> {
    let now = std::time::SystemTime::now();
    crate::since::parse(when, now, &jiff::tz::TimeZone::system()).ok_or_else(|| {
        super::Failure::new(
            BadSince {
                when: when.to_string(),
            },
            2,
        )
    })
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`--since {when}` is neither a duration nor a time")]
#[diagnostic(
    code(devenv::logs::since),
    help("write a duration back from now (`10m`, `1h30m`), a time (`2026-11-30T09:00:00Z`, or `2026-11-30T09:00` in local time), a date (`2026-11-30`) or Unix seconds (`1796604376`)")
)]
struct BadSince {
    when: String,
}

/// The UI masks the stack's secrets in it (a service may print its password).
fn print_line(service: &str, line: &str) {
    crate::ui::print_out(&crate::ui::prefixed(service, line));
}

/// A line about the service itself (restarted, exited), set apart from its output.
fn print_event(service: &str, text: &str) {
    print_line(service, &style(format!("── {text}")).dim().to_string());
}

/// When following a service ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When its container has stopped and stays stopped (`logs -f`).
    Stopped,
    /// Only when its container is removed (attached `up`: a stopped
    /// service may be started again from another terminal).
    Removed,
}

/// How long a stopped or missing container may take to come back before
/// following it ends: covers `restart` (stop, then start) and recreation
/// (remove, then create).
const COME_BACK: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(200);

/// Follows the logs of `services` across restarts, until `until` says every
/// one of them is over.
pub async fn follow(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    from: LogsFrom,
    until: Until,
) -> Result<(), EngineError> {
    let jobs = services
        .iter()
        .map(|s| follow_service(engine, stack, s, from, until));
    join_all(jobs).await.into_iter().collect()
}

/// One run of a container: its id and when it started.
type Instance = (String, String);

async fn follow_service(
    engine: &Engine,
    stack: &Stack,
    service: &str,
    from: LogsFrom,
    until: Until,
) -> Result<(), EngineError> {
    let mut last: Option<Instance> = None;
    let mut last_exit: Option<String> = None;
    loop {
        let Some(c) = container(engine, stack, service).await? else {
            return Ok(());
        };
        let st = engine.inspect_container(&c.id, &stack.project).await?;
        let started = st.started_at.clone().unwrap_or_default();
        let instance = (c.id.clone(), started.clone());
        let mut stream = match &last {
            None => engine.logs_from(&c.id, &from, true).boxed(),
            Some(prev) => {
                if *prev != instance {
                    print_event(service, &restarted_line(stack, service, last_exit.take()));
                }
                let since = unix_seconds(&started).unwrap_or(0);
                let from = timestamp_key(&started);
                engine
                    .follow_logs_since(&c.id, since)
                    .map(move |chunk| chunk.map(|text| drop_before(&text, from.as_ref())))
                    .boxed()
            }
        };
        last = Some(instance);
        while let Some(chunk) = stream.next().await {
            for line in chunk?.lines() {
                print_line(service, line);
            }
        }
        // The stream ends when the container stops: see whether it comes back.
        match come_back(engine, stack, service, last.as_ref(), until).await? {
            Back::Again(exit) => last_exit = exit,
            Back::Never => return Ok(()),
        }
    }
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

/// An RFC 3339 UTC time as a sortable key: (date and time to the second, nanoseconds).
fn timestamp_key(ts: &str) -> Option<(String, u32)> {
    let ts = ts.strip_suffix('Z')?;
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let digits: String = frac.chars().take(9).collect();
    let nanos = format!("{digits:0<9}").parse().ok()?;
    (secs.len() == 19).then(|| (secs.to_string(), nanos))
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-11-30T17:50:01.5Z`).
fn unix_seconds(ts: &str) -> Option<i64> {
    let (secs, _) = timestamp_key(ts)?;
    let num = |r: std::ops::Range<usize>| secs.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The lines of a timestamped chunk from `from` on, timestamps removed:
/// the `since` filter is whole seconds, so the previous run's last lines of
/// that second come too and are dropped here.
fn drop_before(chunk: &str, from: Option<&(String, u32)>) -> String {
    let mut out = String::new();
    for line in chunk.split_inclusive('\n') {
        let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
        let keep = match (from, timestamp_key(ts)) {
            (Some(from), Some(at)) => at >= *from,
            _ => true,
        };
        if keep {
            out.push_str(rest);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2026-11-30T17:50:01.123456789Z"),
            Some(1_796_061_001)
        );
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(unix_seconds("not a time"), None);
    }

    #[test]
    fn lines_of_the_previous_run_in_the_same_second_are_dropped() {
        let from = timestamp_key("2026-11-30T17:50:01.5Z");
        let chunk = "2026-11-30T17:50:01.4Z old line\n2026-11-30T17:50:01.50001Z new line\n2026-11-30T17:50:02Z later\n";
        assert_eq!(drop_before(chunk, from.as_ref()), "new line\nlater\n");
    }
}
