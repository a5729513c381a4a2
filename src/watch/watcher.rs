//! The watcher's view of each service's container: which one runs, a
//! whole-tree sync when it is new or restarted, and the looks for what it
//! changed, taken in and copied back ([`super::back`]).

use std::time::Instant;

use futures_util::StreamExt;

use super::courier::{self, Courier, Couriers};
use super::plan::Rule;
use super::sync::{self, Mirror};
use super::{
    back, describe, reason, report_conflicts, targets, Instance, Known, WatchError, Watcher,
};
use crate::engine::EngineError;

impl Watcher<'_> {
    /// The service's running container, if any.
    pub(super) async fn instance(&self, service: &str) -> Result<Option<Instance>, EngineError> {
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
    pub(super) async fn check(&mut self, service: &str) -> bool {
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

    pub(super) async fn sync_whole(
        &mut self,
        service: &str,
        current: Instance,
        reason: &str,
    ) -> bool {
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
    pub(super) async fn look(&mut self, service: &str) {
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
    pub(super) async fn looked(
        &mut self,
        service: &str,
        c: Courier,
        answer: Option<(i64, Vec<u8>)>,
    ) {
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
    pub(super) async fn settle(&mut self, service: &str) {
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
    pub(super) async fn collect(&mut self, service: &str, listed: Option<(i64, Vec<u8>)>) {
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

    pub(super) fn fail(&self, service: &str, what: &str, e: &dyn std::error::Error) {
        self.reporter
            .done(service, &format!("{what} failed: {}", describe(e)), false);
    }
}
