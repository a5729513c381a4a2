//! The folders under watch: one non-recursive inotify watch per folder that
//! some rule does not skip, so a big `vendor/` costs nothing. New folders get
//! watches as they appear, gone or moved ones lose theirs; a folder replaced
//! under the same name is told apart by its inode.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::plan::Rule;
use super::WatchError;

/// What the watcher thread passes on.
pub enum Signal {
    Changed(Vec<PathBuf>),
    /// Events were lost (kernel queue overflow): look at everything again.
    Rescan,
    Failed(notify::Error),
}

pub struct Tree {
    watcher: RecommendedWatcher,
    /// Watched folder → its inode.
    watched: HashMap<PathBuf, u64>,
}

impl Tree {
    pub fn new(tx: UnboundedSender<Signal>) -> Result<Tree, WatchError> {
        let watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            let signal = match res {
                Ok(ev) if ev.need_rescan() => Signal::Rescan,
                Ok(ev) if is_change(&ev.kind) => Signal::Changed(ev.paths),
                Ok(_) => return,
                Err(e) => Signal::Failed(e),
            };
            // The receiver is gone only when watching stops.
            let _ = tx.send(signal);
        })
        .map_err(|source| WatchError::from_notify(source, Path::new("/")))?;
        Ok(Tree {
            watcher,
            watched: HashMap::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.watched.len()
    }

    pub fn is_watched(&self, dir: &Path) -> bool {
        self.watched.contains_key(dir)
    }

    /// Watches what every rule needs: its folder tree, or a file's parent folder.
    pub fn add_rules(&mut self, rules: &[Rule]) -> Result<(), WatchError> {
        for rule in rules {
            if rule.path.is_dir() {
                self.add_tree(&rule.path, rules)?;
            } else {
                let parent = rule.path.parent().unwrap_or(&rule.path).to_path_buf();
                if !parent.is_dir() {
                    return Err(WatchError::MissingPath {
                        service: rule.service.clone(),
                        path: rule.path.clone(),
                    });
                }
                self.watch(&parent)?;
            }
        }
        Ok(())
    }

    /// Brings the watches up to date with the paths of a batch: gone paths
    /// lose their watches first (a moved folder keeps its kernel watch, which
    /// must not be mistaken for the new name's), then new folders get theirs.
    pub fn refresh(&mut self, paths: &[PathBuf], rules: &[Rule]) -> Result<(), WatchError> {
        let mut fresh = Vec::new();
        for path in paths {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    if self.watched.get(path) != Some(&inode(&meta)) {
                        self.forget(path);
                        fresh.push(path);
                    }
                }
                Ok(_) => {}
                Err(_) => self.forget(path),
            }
        }
        for path in fresh {
            self.add_tree(path, rules)?;
        }
        Ok(())
    }

    fn forget(&mut self, path: &Path) {
        let gone: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|d| d.starts_with(path))
            .cloned()
            .collect();
        for dir in gone {
            self.watched.remove(&dir);
            // The kernel may have dropped it already: nothing to undo then.
            let _ = self.watcher.unwatch(&dir);
        }
    }

    /// Watches `dir` and every folder below it that a rule covers.
    fn add_tree(&mut self, dir: &Path, rules: &[Rule]) -> Result<(), WatchError> {
        let covered = |d: &Path| rules.iter().any(|r| r.path.is_dir() && r.matches(d, true));
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            if !covered(&d) || self.watched.contains_key(&d) {
                continue;
            }
            self.watch(&d)?;
            let Ok(read) = std::fs::read_dir(&d) else {
                continue;
            };
            todo.extend(
                read.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        Ok(())
    }

    fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            return Ok(()); // gone already; its parent's event says so
        };
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf(), inode(&meta));
                Ok(())
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => Ok(()),
            Err(e) => Err(WatchError::from_notify(e, dir)),
        }
    }
}

/// Opening or reading a file changes nothing (and devenv reads every file it syncs).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}
