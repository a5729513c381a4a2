//! The start scheduler: runs one job per service, each as soon as its own
//! dependencies reach what it waits for (`started`: the dependency's job
//! said it runs; `ready`/`completed`: its job finished), not level by
//! level. After a job fails, no job that has not begun begins (those under
//! way finish), and the dependents of the failed one are skipped. Generic
//! over the job, so it is unit-tested with timed fakes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::config::model::Condition;
use crate::plan::Dependency;

/// How far a service has come, for the services waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Waiting,
    /// Its container runs (and holds the working tree, in sync mode).
    Started,
    /// Ready by its probe (or run to completion) and its hooks done.
    Done,
    Failed,
}

/// Given to a job: tells the services waiting for `started` that it runs.
pub struct Started(Arc<Vec<watch::Sender<Stage>>>, usize);

impl Started {
    pub fn now(&self) {
        self.0[self.1].send_if_modified(|s| {
            let earlier = *s < Stage::Started;
            if earlier {
                *s = Stage::Started;
            }
            earlier
        });
    }
}

/// Runs `job(i, started)` for each `(service, dependencies)` of `steps`;
/// returns each job's result in the same order, `None` for one skipped.
pub async fn run<T, E, F, Fut>(
    steps: &[(String, Vec<Dependency>)],
    job: F,
) -> Vec<Option<Result<T, E>>>
where
    F: Fn(usize, Started) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let senders: Arc<Vec<watch::Sender<Stage>>> = Arc::new(
        steps
            .iter()
            .map(|_| watch::channel(Stage::Waiting).0)
            .collect(),
    );
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.as_str(), i))
        .collect();
    let (senders, index) = (&senders, &index);
    let failed = &AtomicBool::new(false);
    let job = &job;
    join_all(steps.iter().enumerate().map(|(i, (_, after))| async move {
        let me = &senders[i];
        for dep in after {
            let Some(theirs) = index.get(dep.service.as_str()).map(|&j| &senders[j]) else {
                continue;
            };
            let need = match dep.condition {
                Condition::Started => Stage::Started,
                Condition::Ready | Condition::Completed => Stage::Done,
            };
            let reached = theirs
                .subscribe()
                .wait_for(|s| *s >= need)
                .await
                .map(|s| *s);
            if !matches!(reached, Ok(s) if s != Stage::Failed) {
                me.send_replace(Stage::Failed);
                return None;
            }
        }
        if failed.load(Ordering::SeqCst) {
            me.send_replace(Stage::Failed);
            return None;
        }
        let result = job(i, Started(senders.clone(), i)).await;
        if result.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        me.send_replace(if result.is_ok() {
            Stage::Done
        } else {
            Stage::Failed
        });
        Some(result)
    }))
    .await
}

/// The stop order, the mirror of the start order: `items` (containers,
/// told apart by `service`) in groups, each group's services depending on
/// none of a later group's, so dependents stop before what they need (the
/// app before its database, as Compose stops them) and one group stops at
/// once. What the stack does not name (orphans, one-offs' leftovers) goes
/// in the first group: nothing of the stack depends on it.
pub(crate) fn stop_groups<T>(
    stack: &crate::config::model::Stack,
    items: Vec<T>,
    service: impl Fn(&T) -> &str,
) -> Vec<Vec<T>> {
    let deps: indexmap::IndexMap<String, Vec<String>> = stack
        .services
        .iter()
        .map(|(name, svc)| (name.clone(), svc.depends_on.keys().cloned().collect()))
        .collect();
    // Config rejected cycles; were there one, every service stops at once.
    let levels = crate::graph::levels(&deps).unwrap_or_default();
    let rank = |name: &str| {
        levels
            .iter()
            .rev()
            .position(|l| l.iter().any(|n| n == name))
            .map_or(0, |r| r + 1)
    };
    let mut groups: Vec<Vec<T>> = (0..=levels.len()).map(|_| Vec::new()).collect();
    for item in items {
        let r = rank(service(&item));
        groups[r].push(item);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn dependents_stop_before_what_they_need_and_strangers_first() {
        let stack = crate::config::load_toml(
            "[services.db]\nimage = \"postgres\"\n[services.cache]\nimage = \"redis\"\n\
             [services.app]\nimage = \"app\"\ndepends_on = [\"db\", \"cache\"]\n\
             [services.worker]\nimage = \"app\"\ndepends_on = [\"app\"]\n",
        );
        let items = vec!["db", "cache", "app", "worker", "gone"];
        let groups = stop_groups(&stack, items, |s| s);
        assert_eq!(
            groups,
            vec![
                vec!["gone"],
                vec!["worker"],
                vec!["app"],
                vec!["db", "cache"]
            ]
        );
    }

    fn step(service: &str, after: &[(&str, Condition)]) -> (String, Vec<Dependency>) {
        (
            service.to_string(),
            after
                .iter()
                .map(|(s, c)| Dependency {
                    service: s.to_string(),
                    condition: *c,
                })
                .collect(),
        )
    }

    /// Each job: started after `start_ms`, done after `done_ms` more; fails if asked.
    async fn timed(
        plan: &[(u64, u64, bool)],
        steps: &[(String, Vec<Dependency>)],
    ) -> (Vec<Option<Result<(), ()>>>, Vec<Option<Duration>>, Duration) {
        let t0 = Instant::now();
        let begun = std::sync::Mutex::new(vec![None; steps.len()]);
        let results = run(steps, |i, started| {
            let begun = &begun;
            async move {
                begun.lock().unwrap()[i] = Some(t0.elapsed());
                let (start_ms, done_ms, fail) = plan[i];
                tokio::time::sleep(Duration::from_millis(start_ms)).await;
                started.now();
                tokio::time::sleep(Duration::from_millis(done_ms)).await;
                if fail {
                    Err(())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        let begun = begun.into_inner().unwrap();
        (results, begun, t0.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_service_does_not_hold_back_an_unrelated_chain() {
        use Condition::*;
        let steps = [
            step("slow", &[]),
            step("c1", &[]),
            step("c2", &[("c1", Ready)]),
            step("c3", &[("c2", Ready)]),
        ];
        let (results, begun, total) = timed(
            &[
                (0, 3000, false),
                (0, 100, false),
                (0, 100, false),
                (0, 100, false),
            ],
            &steps,
        )
        .await;
        assert!(results.iter().all(|r| matches!(r, Some(Ok(())))));
        // Level by level, c2 would wait for `slow` (3 s); here it follows c1.
        assert_eq!(begun[2], Some(Duration::from_millis(100)));
        assert_eq!(begun[3], Some(Duration::from_millis(200)));
        assert_eq!(total, Duration::from_millis(3000));
    }

    #[tokio::test(start_paused = true)]
    async fn started_waits_for_the_start_and_ready_for_the_end() {
        use Condition::*;
        let steps = [
            step("db", &[]),
            step("worker", &[("db", Started)]),
            step("app", &[("db", Ready)]),
        ];
        let (_, begun, _) = timed(&[(50, 500, false), (0, 0, false), (0, 0, false)], &steps).await;
        assert_eq!(begun[1], Some(Duration::from_millis(50)));
        assert_eq!(begun[2], Some(Duration::from_millis(550)));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failure_its_dependents_and_jobs_not_begun_are_skipped() {
        use Condition::*;
        let steps = [
            step("db", &[]),
            step("app", &[("db", Ready)]),
            step("slow", &[]),
            step("late", &[("slow", Ready)]),
        ];
        let (results, _, _) = timed(
            &[
                (0, 100, true),
                (0, 0, false),
                (0, 300, false),
                (0, 0, false),
            ],
            &steps,
        )
        .await;
        assert!(matches!(results[0], Some(Err(()))));
        // Its dependent never begins; the job under way finishes; none begins after.
        assert!(results[1].is_none());
        assert!(matches!(results[2], Some(Ok(()))));
        assert!(results[3].is_none());
    }
}
