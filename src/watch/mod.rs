//! Live sync: while the stack runs, source changes on the host reach the
//! containers through each service's `watch` rules (`sync`, `restart`,
//! `rebuild`, `exec`), without a rebuild and in well under a second.
//!
//! # How it works
//!
//! 1. **Watches.** Every folder some rule covers gets its own non-recursive
//!    inotify watch ([`tree`]); folders a rule skips ([`filter`]: defaults
//!    such as `vendor/`, the rule's `ignore`, `.gitignore`, `.dockerignore`)
//!    get none, so a big `vendor/` cannot exhaust the kernel's limit. New
//!    folders are watched as they appear.
//! 2. **Batches.** Changed paths that a rule wants go into a trailing
//!    debounce ([`debounce`]): a batch is cut after 20 ms without events
//!    (compose waits 500 ms), de-duplicated, and batches are applied one at a
//!    time, in order.
//! 3. **Plans.** A batch becomes, per service, the paths to mirror and the
//!    actions to fire ([`plan`]): sync first, then rebuild or restart, then
//!    `exec` commands, so a migration runs against the file just synced.
//! 4. **Sync by state, not by event.** Each changed path is looked at when
//!    its batch is applied: what exists goes into one tar archive (folders
//!    whole), what is gone is removed with one `rm -rf` ([`sync`]) — if it
//!    ever reached the container, and never when the rule's folder itself is
//!    gone. Any change after that look makes a new event and a later batch,
//!    so the container always ends up like the host, whatever order events
//!    came in. Both travel over a helper shell that runs in the container for
//!    as long as it does ([`courier`]), not a request to the engine each.
//! 5. **Whole-tree syncs.** At start, and whenever the service's container
//!    is new or restarted (seen by its id and start time, checked every
//!    second and before each batch), the whole tree is uploaded and what the
//!    host no longer has is removed from the container.
//!
//! 6. **Copy-back.** Once a second the container is asked what it changed
//!    ([`back`]), on a second helper while saves go on.
//!
//! [`run`] drives the loop; [`watcher`] follows each service's container
//! (whole-tree syncs, looks), [`batch`] applies batches, and [`once`] holds
//! the whole-tree syncs `up` and `run` ask for outside a watcher.
//!
//! Failures (a stopped container, a read-only target) are reported on the
//! service's line and watching goes on; the next whole-tree sync repairs
//! whatever a failed batch missed.

mod archive;
mod back;
mod batch;
mod beneath;
mod courier;
mod debounce;
mod error;
mod filter;
mod names;
mod once;
mod plan;
mod prune;
pub mod source;
mod sync;
mod tree;
mod watcher;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::{Courier, Couriers};
use debounce::Debouncer;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use plan::Rule;
use sync::{Mirror, Owner, Stats};
use tree::{Signal, Tree};

use crate::config::model::Stack;
use crate::engine::Engine;
use crate::report::Reporter;

pub use error::WatchError;
pub use once::{sync_oneoff, sync_service};

/// Quiet time that ends a batch: long enough to merge the writes, renames
/// and chmods of one editor save, far below compose's 500 ms.
const QUIET: Duration = Duration::from_millis(20);
/// A path changing without pause still syncs this often.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// How often containers are checked for a restart or replacement.
const POLL: Duration = Duration::from_secs(1);

/// True when any of `services` (all when empty) has watch rules.
pub fn has_rules(stack: &Stack, services: &[String]) -> bool {
    stack
        .services
        .values()
        .any(|s| (services.is_empty() || services.contains(&s.name)) && !s.watch.is_empty())
}

/// What a `rebuild` rule needs of the rest of devenv: the service's image
/// built again and its container brought up ready on it (as `devenv up
/// --build SERVICE`). The command gives it, so the watcher stays below the
/// lifecycle instead of calling back into it.
pub trait Rebuild: Send + Sync {
    fn rebuild<'a>(
        &'a self,
        service: &'a str,
    ) -> futures_util::future::LocalBoxFuture<
        'a,
        Result<(), Box<dyn std::error::Error + Send + Sync>>,
    >;
}

/// Watches the rules of `services` (all when empty) until the future is
/// dropped; returns only when watching cannot start.
pub async fn run(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    rebuild: &dyn Rebuild,
    reporter: Arc<dyn Reporter>,
) -> Result<(), WatchError> {
    // The rules as the containers were made: in bind mode their folders are mounted.
    let mut prepared = stack.clone();
    for svc in prepared.services.values_mut() {
        source::prepare(svc, &engine.endpoint);
    }
    let rules = rules(&prepared, services)?;
    if rules.is_empty() {
        return Err(WatchError::NoRules);
    }
    report_links(reporter.as_ref(), &rules, &stack.root);
    for r in rules.iter().filter(|r| r.mounted) {
        reporter.notice(&format!(
            "{}: `{}` is bind-mounted at `{}`; nothing to copy",
            r.service,
            r.path.display(),
            r.target.as_deref().unwrap_or_default()
        ));
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tree = Tree::new(tx)?;
    tree.add_rules(&rules)?;

    let mut names: Vec<String> = rules.iter().map(|r| r.service.clone()).collect();
    names.dedup();
    let mut w = Watcher {
        engine,
        stack,
        rebuild,
        known: names.iter().map(|n| (n.clone(), None)).collect(),
        rules,
        reporter,
        looks: FuturesUnordered::new(),
    };
    for name in &names {
        w.check(name).await;
    }
    let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    w.reporter.notice(&format!(
        "watching {} folder{} for {}",
        tree.len(),
        if tree.len() == 1 { "" } else { "s" },
        list.join(", ")
    ));

    let mut debouncer = Debouncer::new(QUIET, MAX_DELAY);
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let due = debouncer
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            signal = rx.recv() => match signal {
                Some(Signal::Changed(paths)) => {
                    for path in paths {
                        if path.file_name().is_some_and(|n| n == ".gitignore") {
                            w.rules.iter().for_each(|r| r.filter.reload(&path));
                        }
                        let is_dir = path.is_dir() || tree.is_watched(&path);
                        if w.rules.iter().any(|r| r.matches(&path, is_dir)) {
                            debouncer.push(path, Instant::now());
                        }
                    }
                }
                Some(Signal::Rescan) => debouncer.push_rescan(Instant::now()),
                Some(Signal::Failed(e)) => {
                    w.reporter.notice(&describe(&WatchError::from_notify(e, Path::new("/"))));
                }
                // The sender lives in the watcher, which lives as long as `tree`.
                None => return Ok(()),
            },
            _ = tokio::time::sleep_until(due) => {
                if let Some(batch) = debouncer.take(Instant::now()) {
                    w.apply(batch, &mut tree).await;
                }
            }
            _ = poll.tick() => {
                for name in &names {
                    if w.check(name).await {
                        w.look(name).await;
                    }
                }
            }
            Some((name, c, answer)) = w.looks.next(), if !w.looks.is_empty() => {
                w.looked(&name, c, answer).await;
            }
        }
    }
}

/// The rules of the services asked for, each with its ignore filter.
fn rules(stack: &Stack, services: &[String]) -> Result<Vec<Rule>, WatchError> {
    let mut out = Vec::new();
    for svc in stack.services.values() {
        if !services.is_empty() && !services.contains(&svc.name) {
            continue;
        }
        let mut dockerignores = vec![stack.root.join(".dockerignore")];
        if let Some(b) = &svc.build {
            dockerignores.push(b.context.join(".dockerignore"));
            dockerignores.dedup();
        }
        for rule in &svc.watch {
            if !rule.path.exists() && !rule.path.parent().is_some_and(Path::is_dir) {
                return Err(WatchError::MissingPath {
                    service: svc.name.clone(),
                    path: rule.path.clone(),
                });
            }
            // A rule whose folder is a symlink (`path = "linked"` -> `real`)
            // syncs the folder it points to, resolved once here: copied as
            // a link it would dangle in the container.
            let linked = rule.action == crate::config::model::WatchAction::Sync
                && std::fs::symlink_metadata(&rule.path).is_ok_and(|m| m.file_type().is_symlink());
            let resolved = linked
                .then(|| std::fs::canonicalize(&rule.path).ok())
                .flatten();
            let (path, root) = match &resolved {
                // The stack folder resolved alike, so that `.gitignore`
                // files above a folder inside it still count.
                Some(real) => (
                    real.clone(),
                    std::fs::canonicalize(&stack.root).unwrap_or_else(|_| stack.root.clone()),
                ),
                None => (rule.path.clone(), stack.root.clone()),
            };
            let filter =
                filter::Filter::new(&path, &root, &dockerignores, &rule.ignore).map_err(|e| {
                    WatchError::Pattern {
                        service: svc.name.clone(),
                        pattern: e.pattern,
                        source: e.source,
                    }
                })?;
            let mut r = Rule::new(svc, rule, filter);
            if let Some(real) = resolved {
                r.path = real;
                r.linked = Some(rule.path.clone());
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// A look for container changes on a lent helper ([`courier::look`]): the
/// service, the helper back and its answer.
type Look = Pin<Box<dyn Future<Output = (String, Courier, Option<(i64, Vec<u8>)>)> + Send>>;

/// A service's container as last synced.
#[derive(Clone, PartialEq, Eq)]
struct Instance {
    id: String,
    started_at: Option<String>,
}

struct Known {
    instance: Instance,
    owner: Option<Owner>,
    /// The last whole-tree sync worked; until one does, batches do whole-tree syncs.
    synced: bool,
    /// What devenv put in this container (kept across its restarts).
    mirror: Mirror,
    /// The helpers that carry batches in and changes out ([`courier`]).
    couriers: Couriers,
}

struct Watcher<'a> {
    engine: &'a Engine,
    stack: &'a Stack,
    rebuild: &'a dyn Rebuild,
    rules: Vec<Rule>,
    reporter: Arc<dyn Reporter>,
    known: HashMap<String, Option<Known>>,
    /// Looks running while saves go on; each is taken in ([`Watcher::settle`])
    /// before anything may prune, so no change they saw is lost.
    looks: FuturesUnordered<Look>,
}

/// The container paths `service`'s copying rules sync into.
fn targets<'r>(rules: &'r [Rule], service: &str) -> Vec<&'r str> {
    rules
        .iter()
        .filter(|r| r.service == service && r.copies())
        .filter_map(|r| r.target.as_deref())
        .collect()
}

/// One line per conflict: which copy stayed and where the other went; and
/// one per path left out, with why.
fn report_conflicts(reporter: &dyn Reporter, service: &str, stats: &Stats) {
    for (kept, saved) in &stats.conflicts {
        reporter.notice(&format!(
            "{service}: `{}` changed on both sides: kept the host's, saved the container's as `{}`",
            kept.display(),
            saved.display()
        ));
    }
    for skip in &stats.skipped {
        reporter.notice(&format!(
            "{service}: `{}` {}",
            skip.path.display(),
            skip.why
        ));
    }
}

/// Says which rules' folders are symlinks, and what is synced instead.
fn report_links(reporter: &dyn Reporter, rules: &[Rule], root: &Path) {
    for r in rules.iter().filter(|r| r.copies()) {
        if let Some(linked) = &r.linked {
            let to = std::fs::read_link(linked).unwrap_or_else(|_| r.path.clone());
            reporter.notice(&format!(
                "{}: watch path `{}` is a symlink to `{}`: syncing `{}`",
                r.service,
                linked.strip_prefix(root).unwrap_or(linked).display(),
                to.display(),
                r.path.display()
            ));
        }
    }
}

/// Why a whole-tree sync of `current` is due, given the container last synced.
fn reason(known: Option<&Known>, current: &Instance) -> &'static str {
    match known {
        None => "initial sync",
        Some(k) if k.instance == *current => "retry",
        Some(k) if k.instance.id == current.id => "container restarted",
        Some(_) => "new container",
    }
}

/// An error and its causes on one line, for a service's status line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
