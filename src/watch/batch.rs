//! Applying a batch: per service, the changed paths synced (or the whole
//! tree, when the container is not the one last synced), then a rebuild or
//! restart, then the rule's `exec` commands.

use std::path::Path;
use std::time::Instant;

use super::courier::Couriers;
use super::debounce::Batch;
use super::plan::{self, Rule, ServicePlan, SyncPath};
use super::sync;
use super::tree::Tree;
use super::{describe, reason, report_conflicts, targets, Instance, WatchError, Watcher};

impl Watcher<'_> {
    /// Applies a batch: the watches follow its folders, then each
    /// service's plan runs; after lost events every service is synced whole.
    pub(super) async fn apply(&mut self, batch: Batch, tree: &mut Tree) {
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

    /// One service's part of a batch, in order: sync (or rebuild), restart,
    /// then `exec`.
    async fn apply_plan(&mut self, plan: ServicePlan) {
        let service = plan.service.as_str();
        let Some(current) = self.running(&plan).await else {
            return;
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
            if known.is_some_and(|k| k.instance == current && k.synced) {
                self.sync_paths(service, &plan.sync).await;
            } else {
                // The container is not the one last synced: the whole tree covers this batch.
                let why = reason(known, &current);
                self.sync_whole(service, current, why).await;
            }
            if plan.restart {
                self.restart(service, &id).await;
            }
        }
        self.exec(service, &id, &plan.exec).await;
    }

    /// The service's running container, reported as a failure when none
    /// runs. A live helper is a process of the container last synced, which
    /// therefore still runs and was not restarted (either ends it): the
    /// engine need not be asked.
    async fn running(&mut self, plan: &ServicePlan) -> Option<Instance> {
        let service = plan.service.as_str();
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
        match looked_up {
            Ok(Some(c)) => Some(c),
            Ok(None) => {
                let e = WatchError::NotRunning {
                    service: service.to_string(),
                };
                let what = if plan.sync.is_empty() {
                    "watch"
                } else {
                    "sync"
                };
                self.fail(service, what, &e);
                None
            }
            Err(e) => {
                self.fail(service, "sync", &e);
                None
            }
        }
    }

    /// Syncs a batch's `paths` into the container last synced, which is
    /// the one running.
    async fn sync_paths(&mut self, service: &str, paths: &[SyncPath]) {
        let (engine, rules, reporter) = (self.engine, &self.rules, self.reporter.clone());
        let Some(Some(k)) = self.known.get_mut(service) else {
            return;
        };
        // Files devenv itself just copied back from the container stay put.
        let paths: Vec<SyncPath> = paths
            .iter()
            .filter(|p| !k.mirror.is_echo(&p.host))
            .cloned()
            .collect();
        let (Some(owner), false) = (k.owner, paths.is_empty()) else {
            return;
        };
        let id = k.instance.id.clone();
        // Lost (a restart by a `restart` rule, a pause): new ones.
        if !k.couriers.alive() {
            let targets = targets(rules, service);
            k.couriers.ensure(engine, &id, &targets).await;
        }
        let rules: Vec<&Rule> = rules.iter().collect();
        let couriers = Some(&mut k.couriers);
        match sync::apply(engine, &id, owner, &rules, &paths, &mut k.mirror, couriers).await {
            Ok(stats) => {
                reporter.done(service, &stats.describe(), true);
                report_conflicts(reporter.as_ref(), service, &stats);
            }
            Err(e) => reporter.done(service, &format!("sync failed: {}", describe(&e)), false),
        }
        if let Some(news) = k.couriers.news() {
            reporter.notice(&format!("{service}: {news}"));
        }
    }

    /// Runs the `exec` commands a batch fired, one after the other.
    async fn exec(&self, service: &str, id: &str, commands: &[String]) {
        let Some(svc) = self.stack.services.get(service) else {
            return;
        };
        for command in commands {
            let started = Instant::now();
            match crate::hooks::exec_shell(self.engine, svc, id, command, self.reporter.as_ref())
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

    /// Restarts the container for a `restart` rule; what is known of its
    /// files stays (a restart keeps them).
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

    /// Rebuilds the service through the command's [`super::Rebuild`].
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
