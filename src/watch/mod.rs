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
//! Failures (a stopped container, a read-only target) are reported on the
//! service's line and watching goes on; the next whole-tree sync repairs
//! whatever a failed batch missed.

mod back;
mod beneath;
mod courier;
mod debounce;
mod filter;
mod names;
mod plan;
pub mod source;
mod sync;
mod tree;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::{Courier, Couriers};
use debounce::{Batch, Debouncer};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use plan::{Rule, ServicePlan};
use sync::{Mirror, Owner, Stats};
use tree::{Signal, Tree};

use crate::config::model::Stack;
use crate::engine::{Engine, EngineError};
use crate::report::Reporter;

/// Quiet time that ends a batch: long enough to merge the writes, renames
/// and chmods of one editor save, far below compose's 500 ms.
const QUIET: Duration = Duration::from_millis(20);
/// A path changing without pause still syncs this often.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// How often containers are checked for a restart or replacement.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WatchError {
    #[error("no service to watch has `watch` rules")]
    #[diagnostic(
        code(devenv::watch::no_rules),
        help("add `[[services.NAME.watch]]` rules to dev.toml, e.g. `path = \"src\"`, `action = \"sync\"`, `target = \"/app\"`")
    )]
    NoRules,

    #[error("invalid ignore pattern `{pattern}` in a watch rule of service `{service}`")]
    #[diagnostic(
        code(devenv::watch::pattern),
        help("`ignore` takes .gitignore patterns, e.g. `vendor/` or `*.log`")
    )]
    Pattern {
        service: String,
        pattern: String,
        #[source]
        source: ignore::Error,
    },

    #[error("watch path `{}` of service `{service}` does not exist", path.display())]
    #[diagnostic(
        code(devenv::watch::missing),
        help("create it, or fix `path` in the rule (it is relative to dev.toml)")
    )]
    MissingPath { service: String, path: PathBuf },

    #[error("the inotify watch limit is reached (at `{}`)", path.display())]
    #[diagnostic(
        code(devenv::watch::limit),
        help("raise it with `sudo sysctl fs.inotify.max_user_watches=524288` (and a line in /etc/sysctl.d/ to keep it), or skip big folders with `ignore`")
    )]
    Limit { path: PathBuf },

    #[error("cannot watch `{}`", path.display())]
    #[diagnostic(code(devenv::watch::notify))]
    Notify {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },

    #[error("service `{service}` is not running")]
    #[diagnostic(
        code(devenv::watch::not_running),
        help("start it with `devenv up -d {service}`; it is synced as soon as it runs")
    )]
    NotRunning { service: String },

    #[error("{what} in container `{id}` failed: {detail}")]
    #[diagnostic(code(devenv::watch::container))]
    Container {
        id: String,
        what: String,
        detail: String,
    },

    #[error("cannot read `{}`", path.display())]
    #[diagnostic(code(devenv::watch::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot build the archive to upload")]
    #[diagnostic(code(devenv::watch::archive))]
    Archive {
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),
}

impl WatchError {
    fn from_notify(source: notify::Error, path: &Path) -> WatchError {
        match source.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::Limit {
                path: path.to_path_buf(),
            },
            _ => WatchError::Notify {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// Usage errors are 2, everything else a failed job (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            WatchError::NoRules | WatchError::Pattern { .. } | WatchError::MissingPath { .. } => 2,
            _ => 1,
        }
    }
}

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

impl Watcher<'_> {
    /// The service's running container, if any.
    async fn instance(&self, service: &str) -> Result<Option<Instance>, EngineError> {
        let containers = self.engine.list_containers(&self.stack.project).await?;
        let Some(c) = containers
            .into_iter()
            .find(|c| c.service == service && !c.oneoff && c.state == "running")
        else {
            return Ok(None);
        };
        let status = self
            .engine
            .inspect_container(&c.id, &self.stack.project)
            .await?;
        Ok(status.running.then_some(Instance {
            id: c.id,
            started_at: status.started_at,
        }))
    }

    /// Syncs the whole tree when the service's container is new or
    /// restarted; true when it runs and is the one last synced.
    async fn check(&mut self, service: &str) -> bool {
        // An engine error or a stopped container: the next poll looks again.
        let Ok(Some(current)) = self.instance(service).await else {
            // Paused, stopping: a frame sent now could hang, so none is
            // until a batch finds it running again.
            if let Some(Some(k)) = self.known.get_mut(service) {
                k.couriers.hold();
            }
            return false;
        };
        let known = self.known.get(service).and_then(Option::as_ref);
        // A whole-tree sync that failed is retried by the next batch, not every second.
        if known.is_some_and(|k| k.instance == current) {
            return true;
        }
        let reason = reason(known, &current);
        self.sync_whole(service, current, reason).await
    }

    async fn sync_whole(&mut self, service: &str, current: Instance, reason: &str) -> bool {
        self.settle(service).await;
        let copying: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.service == service && r.copies())
            .collect();
        // The same container (restarted) keeps what is known of its files.
        let mut mirror = match self.known.get_mut(service).and_then(Option::take) {
            Some(k) if k.instance.id == current.id => k.mirror,
            _ => Mirror::default(),
        };
        let result = if copying.is_empty() {
            Ok(None)
        } else {
            async {
                let owner = sync::owner(self.engine, &current.id).await?;
                let stats =
                    sync::full(self.engine, &current.id, owner, &copying, &mut mirror).await?;
                Ok::<_, WatchError>(Some((owner, stats)))
            }
            .await
        };
        let (owner, synced) = match result {
            Ok(None) => (None, true),
            Ok(Some((owner, stats))) => {
                self.reporter
                    .done(service, &format!("{} ({reason})", stats.describe()), true);
                report_conflicts(self.reporter.as_ref(), service, &stats);
                (Some(owner), true)
            }
            Err(e) => {
                self.fail(service, "sync", &e);
                (None, false)
            }
        };
        let mut known = Known {
            instance: current,
            owner,
            synced,
            mirror,
            couriers: Couriers::default(),
        };
        // Started now, so that the next save does not wait for them.
        if synced && owner.is_some() {
            let targets = targets(&self.rules, service);
            (known.couriers)
                .ensure(self.engine, &known.instance.id, &targets)
                .await;
            if let Some(news) = known.couriers.news() {
                self.reporter.notice(&format!("{service}: {news}"));
            }
        }
        self.known.insert(service.to_string(), Some(known));
        synced
    }

    /// Starts a look for what the service's container changed: on its
    /// listing helper while saves go on, else (no helper) here and now.
    async fn look(&mut self, service: &str) {
        let Some(Some(k)) = self.known.get_mut(service) else {
            return;
        };
        if k.couriers.lent() {
            return; // the last one is still out
        }
        match k.couriers.lend() {
            Some(c) => {
                let name = service.to_string();
                self.looks.push(Box::pin(async move {
                    let (c, answer) = courier::look(c).await;
                    (name, c, answer)
                }));
            }
            None => self.collect(service, None).await,
        }
    }

    /// Takes a look's answer in: what the container changed goes to the host.
    async fn looked(&mut self, service: &str, c: Courier, answer: Option<(i64, Vec<u8>)>) {
        if let Some(Some(k)) = self.known.get_mut(service) {
            k.couriers.give_back(c);
        }
        if let Some(listed) = answer {
            self.collect(service, Some(listed)).await;
        }
    }

    /// Waits for the service's look, if one is out, and takes it in: the
    /// look moved the container's mark, so what it saw must reach the host
    /// before a whole-tree sync prunes or the helpers are replaced.
    async fn settle(&mut self, service: &str) {
        let out = |w: &Self| {
            w.known
                .get(service)
                .and_then(Option::as_ref)
                .is_some_and(|k| k.couriers.lent())
        };
        while out(self) {
            let Some((name, c, answer)) = self.looks.next().await else {
                return;
            };
            self.looked(&name, c, answer).await;
        }
    }

    /// Copies to the host what the service's container changed under its
    /// synced paths since the last look (sync mode; once a second); `listed`
    /// is the look's answer when it already ran.
    async fn collect(&mut self, service: &str, listed: Option<(i64, Vec<u8>)>) {
        let copying: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.service == service && r.copies())
            .collect();
        let Some(Some(k)) = self.known.get_mut(service) else {
            return;
        };
        // A look's answer is taken in even while a whole-tree sync is due:
        // it is all that tells of the changes it saw.
        let synced = k.synced || listed.is_some();
        let (Some(owner), true, false) = (k.owner, synced, copying.is_empty()) else {
            return;
        };
        let started = Instant::now();
        match back::collect(
            self.engine,
            &k.instance.id,
            &copying,
            &mut k.mirror,
            Some(owner),
            Some(&mut k.couriers),
            listed,
        )
        .await
        {
            Ok(mut stats) => {
                if stats.copied_back > 0 || !stats.conflicts.is_empty() {
                    stats.took = started.elapsed();
                    self.reporter.done(service, &stats.describe(), true);
                }
                report_conflicts(self.reporter.as_ref(), service, &stats);
            }
            Err(e) => {
                // Stopped or replaced meanwhile: the next poll syncs it whole.
                let current = self.instance(service).await.ok().flatten();
                let same = self
                    .known
                    .get(service)
                    .and_then(Option::as_ref)
                    .map(|k| &k.instance);
                if current.is_some() && current.as_ref() == same {
                    self.fail(service, "copying back", &e);
                }
            }
        }
    }

    fn fail(&self, service: &str, what: &str, e: &dyn std::error::Error) {
        self.reporter
            .done(service, &format!("{what} failed: {}", describe(e)), false);
    }

    async fn apply(&mut self, batch: Batch, tree: &mut Tree) {
        let plans = {
            let is_dir = |p: &Path| p.is_dir() || tree.is_watched(p);
            plan::plan(&self.rules, &batch.paths, &is_dir)
        };
        let refreshed = if batch.rescan {
            tree.add_rules(&self.rules)
        } else {
            tree.refresh(&batch.paths, &self.rules)
        };
        if let Err(e) = refreshed {
            self.reporter.notice(&describe(&e));
        }
        if batch.rescan {
            // Events were lost: nothing short of whole-tree syncs is safe.
            for k in self.known.values_mut().flatten() {
                k.synced = false;
            }
        }
        for plan in plans {
            self.apply_plan(plan).await;
        }
        if batch.rescan {
            let names: Vec<String> = self.known.keys().cloned().collect();
            for name in names {
                if let Ok(Some(current)) = self.instance(&name).await {
                    self.sync_whole(&name, current, "events were lost").await;
                }
            }
        }
    }

    async fn apply_plan(&mut self, plan: ServicePlan) {
        let service = plan.service.as_str();
        // A live helper is a process of the container last synced, which
        // therefore still runs and was not restarted (either ends it): the
        // engine need not be asked.
        let live = self
            .known
            .get_mut(service)
            .and_then(Option::as_mut)
            .filter(|k| k.synced && !plan.rebuild)
            .and_then(|k| k.couriers.alive().then(|| k.instance.clone()));
        let looked_up = match live {
            Some(known) => Ok(Some(known)),
            None => self.instance(service).await,
        };
        let current = match looked_up {
            Ok(Some(c)) => c,
            Ok(None) => {
                let e = WatchError::NotRunning {
                    service: service.to_string(),
                };
                let what = if plan.sync.is_empty() {
                    "watch"
                } else {
                    "sync"
                };
                return self.fail(service, what, &e);
            }
            Err(e) => return self.fail(service, "sync", &e),
        };
        let mut id = current.id.clone();
        if plan.rebuild {
            self.rebuild(service).await;
            let Ok(Some(now)) = self.instance(service).await else {
                return;
            };
            id = now.id.clone();
            self.sync_whole(service, now, "rebuilt").await;
        } else {
            let known = self.known.get(service).and_then(Option::as_ref);
            let fresh = known.is_some_and(|k| k.instance == current && k.synced);
            let why = reason(known, &current);
            let (engine, rules, reporter) = (self.engine, &self.rules, self.reporter.clone());
            match self
                .known
                .get_mut(service)
                .and_then(Option::as_mut)
                .filter(|_| fresh)
            {
                Some(k) => {
                    // Files devenv itself just copied back from the container stay put.
                    let paths: Vec<_> = plan
                        .sync
                        .iter()
                        .filter(|p| !k.mirror.is_echo(&p.host))
                        .cloned()
                        .collect();
                    if let (Some(owner), false) = (k.owner, paths.is_empty()) {
                        // Lost (a restart by a `restart` rule, a pause): new ones.
                        if !k.couriers.alive() {
                            let targets = targets(rules, service);
                            k.couriers.ensure(engine, &id, &targets).await;
                        }
                        let rules: Vec<&Rule> = rules.iter().collect();
                        let couriers = Some(&mut k.couriers);
                        match sync::apply(
                            engine,
                            &id,
                            owner,
                            &rules,
                            &paths,
                            &mut k.mirror,
                            couriers,
                        )
                        .await
                        {
                            Ok(stats) => {
                                reporter.done(service, &stats.describe(), true);
                                report_conflicts(reporter.as_ref(), service, &stats);
                            }
                            Err(e) => reporter.done(
                                service,
                                &format!("sync failed: {}", describe(&e)),
                                false,
                            ),
                        }
                        if let Some(news) = k.couriers.news() {
                            reporter.notice(&format!("{service}: {news}"));
                        }
                    }
                }
                // The container is not the one last synced: the whole tree covers this batch.
                None => {
                    self.sync_whole(service, current, why).await;
                }
            }
            if plan.restart {
                self.restart(service, &id).await;
            }
        }
        let Some(svc) = self.stack.services.get(service) else {
            return;
        };
        for command in &plan.exec {
            let started = Instant::now();
            match crate::hooks::exec_shell(self.engine, svc, &id, command, self.reporter.as_ref())
                .await
            {
                Ok((0, _)) => self.reporter.done(
                    service,
                    &format!("ran {command} in {} ms", started.elapsed().as_millis()),
                    true,
                ),
                Ok((code, _)) => self.reporter.done(
                    service,
                    &format!("{command} failed with exit code {code}"),
                    false,
                ),
                Err(e) => self.fail(service, command, &e),
            }
        }
    }

    async fn restart(&mut self, service: &str, id: &str) {
        let started = Instant::now();
        self.reporter
            .restarting(service, "a `restart` watch rule fired");
        if let Err(e) = self.engine.restart_container(id).await {
            return self.fail(service, "restart", &e);
        }
        self.reporter.done(
            service,
            &format!("restarted in {} ms", started.elapsed().as_millis()),
            true,
        );
        // Files survive a restart: note the new start time so the poll does
        // not take it for a restart from outside and sync the whole tree.
        self.settle(service).await;
        let targets = targets(&self.rules, service);
        if let (Ok(Some(now)), Some(Some(k))) =
            (self.instance(service).await, self.known.get_mut(service))
        {
            k.instance = now;
            // The restart ended the helpers: start new ones for the next save.
            k.couriers = Couriers::default();
            if k.owner.is_some() {
                k.couriers
                    .ensure(self.engine, &k.instance.id, &targets)
                    .await;
            }
        }
    }

    async fn rebuild(&mut self, service: &str) {
        let started = Instant::now();
        self.reporter.task(service, "rebuilding");
        self.reporter
            .restarting(service, "a `rebuild` watch rule rebuilt it");
        match self.rebuild.rebuild(service).await {
            Ok(_) => self.reporter.done(
                service,
                &format!("rebuilt in {:.1} s", started.elapsed().as_secs_f64()),
                true,
            ),
            Err(e) => self.fail(service, "rebuild", e.as_ref()),
        }
    }
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
