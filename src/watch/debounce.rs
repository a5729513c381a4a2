//! A trailing debounce over changed paths: a batch is due once no event came
//! for `quiet`, or once the oldest pending event waited `max_delay` (a file
//! written non-stop must still sync). Paths are de-duplicated and keep the
//! order they were first seen in. Time is passed in, so tests use a fake clock.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use indexmap::IndexSet;

/// What changed since the last batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub paths: Vec<PathBuf>,
    /// The kernel dropped events: everything must be looked at again.
    pub rescan: bool,
}

pub struct Debouncer {
    quiet: Duration,
    max_delay: Duration,
    pending: IndexSet<PathBuf>,
    rescan: bool,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debouncer {
    pub fn new(quiet: Duration, max_delay: Duration) -> Debouncer {
        Debouncer {
            quiet,
            max_delay,
            pending: IndexSet::new(),
            rescan: false,
            first: None,
            last: None,
        }
    }

    pub fn push(&mut self, path: PathBuf, now: Instant) {
        self.pending.insert(path);
        self.touch(now);
    }

    pub fn push_rescan(&mut self, now: Instant) {
        self.rescan = true;
        self.touch(now);
    }

    fn touch(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the pending batch is due; `None` when nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        Some((self.last? + self.quiet).min(self.first? + self.max_delay))
    }

    /// The pending batch, if it is due at `now`.
    pub fn take(&mut self, now: Instant) -> Option<Batch> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last = None;
        Some(Batch {
            paths: std::mem::take(&mut self.pending).into_iter().collect(),
            rescan: std::mem::take(&mut self.rescan),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(25);
    const MAX: Duration = Duration::from_millis(500);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn a_burst_becomes_one_batch_once_quiet() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX);
        for i in 0..1000u64 {
            d.push(
                PathBuf::from(format!("f{i}")),
                t0 + Duration::from_micros(i * 50),
            );
        }
        let last = t0 + Duration::from_micros(999 * 50);
        assert_eq!(d.take(last + ms(24)), None, "still inside the quiet period");
        let batch = d.take(last + QUIET).expect("due after the quiet period");
        assert_eq!(batch.paths.len(), 1000);
        assert_eq!(d.take(last + ms(1000)), None, "nothing left");
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn every_event_restarts_the_quiet_period() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX);
        d.push("a".into(), t0);
        d.push("b".into(), t0 + ms(20));
        assert_eq!(d.deadline(), Some(t0 + ms(45)));
        assert_eq!(d.take(t0 + ms(30)), None);
        assert_eq!(d.take(t0 + ms(45)).unwrap().paths, paths(&["a", "b"]));
    }

    #[test]
    fn a_never_ending_stream_is_cut_at_the_max_delay() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX);
        let mut now = t0;
        while now < t0 + ms(600) {
            d.push("log".into(), now);
            now += ms(10);
        }
        assert_eq!(d.deadline(), Some(t0 + MAX));
        assert!(d.take(t0 + MAX).is_some());
    }

    #[test]
    fn duplicates_merge_and_first_seen_order_is_kept() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX);
        for (i, p) in ["b", "a", "b", "c", "a"].iter().enumerate() {
            d.push(p.into(), t0 + ms(i as u64));
        }
        assert_eq!(d.take(t0 + ms(100)).unwrap().paths, paths(&["b", "a", "c"]));
    }

    #[test]
    fn batches_come_out_in_order() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX);
        d.push("first".into(), t0);
        let one = d.take(t0 + QUIET).unwrap();
        d.push("second".into(), t0 + ms(30));
        let two = d.take(t0 + ms(30) + QUIET).unwrap();
        assert_eq!(
            (one.paths, two.paths),
            (paths(&["first"]), paths(&["second"]))
        );
    }

    #[test]
    fn a_rescan_is_a_batch_of_its_own_kind() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX);
        d.push_rescan(t0);
        let b = d.take(t0 + QUIET).unwrap();
        assert!(b.rescan && b.paths.is_empty());
        d.push("x".into(), t0 + ms(100));
        assert!(!d.take(t0 + ms(200)).unwrap().rescan);
    }
}
