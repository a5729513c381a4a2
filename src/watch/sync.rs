//! Mirroring host files into a container: changed paths go in as one tar
//! archive ([`super::archive`]) through the Engine API (modes and mtimes
//! kept, owned by the user the container runs as), removed paths go with one
//! `rm -rf` exec ([`super::prune`]). A full sync lists the container's side
//! with `find` and removes what the host no longer has, leaving alone what
//! the rule skips (the image's `vendor/`) and whatever lies under a mount
//! inside the target (a bind mount of another host folder, a named volume):
//! those are never copied over nor removed, and a folder that holds one is
//! emptied around it, never `rm -rf`'d. Files the container made are copied
//! back first ([`super::back`]), so a re-sync never deletes them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::archive::Archive;
use super::beneath::{self, Blocked, Kind};
use super::courier::Couriers;
use super::filter::Filter;
use super::plan::{container_path, Guard, Rule, SyncPath};
use super::prune::{all_mounts, prune_at, prune_gone, remove};
use super::WatchError;
use crate::engine::Engine;

/// Entries one upload may leave out before the engine's refusal counts as
/// the upload's failure (each costs a few requests to single out).
const MAX_REFUSED: usize = 64;

/// What a sync did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub files: usize,
    pub removed: usize,
    /// Files the container made or changed, copied to the host.
    pub copied_back: usize,
    /// Host paths kept over a differing container copy, and where that copy went.
    pub conflicts: Vec<(PathBuf, PathBuf)>,
    /// What was left out, and why (a link out of the synced folder, a name
    /// the engine refuses), to report one by one.
    pub skipped: Vec<Skip>,
    pub took: Duration,
}

/// One path a sync left out, and why: relative to its rule's folder, or
/// (what the engine refused) the container path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub path: PathBuf,
    pub why: String,
}

impl Stats {
    /// `synced 3 files, removed 1 in 42 ms`
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.files > 0 || (self.removed == 0 && self.copied_back == 0) {
            let s = if self.files == 1 { "" } else { "s" };
            parts.push(format!("synced {} file{s}", self.files));
        }
        if self.removed > 0 {
            parts.push(format!("removed {}", self.removed));
        }
        if self.copied_back > 0 {
            let s = if self.copied_back == 1 { "" } else { "s" };
            parts.push(format!(
                "copied {} file{s} back from the container",
                self.copied_back
            ));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("skipped {}", self.skipped.len()));
        }
        format!("{} in {} ms", parts.join(", "), self.took.as_millis())
    }
}

/// The uid and gid files get in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

/// What devenv knows of one container's copy, kept for as long as the
/// container lives (across restarts): which container paths hold the host's
/// files, and what was last put where, so that its own uploads are never
/// mistaken for the container's changes, and a file that never reached the
/// container (an editor's temporary file) is never removed from it.
#[derive(Debug, Default)]
pub struct Mirror {
    present: BTreeSet<String>,
    /// Container path → (size, mtime in seconds) as uploaded or copied back.
    pub(super) last: HashMap<String, (u64, u64)>,
    /// Host paths copied back from the container, with the size and mtime
    /// written: the host event they cause must not upload them again.
    pub(super) echo: HashMap<PathBuf, (u64, std::time::SystemTime)>,
}

impl Mirror {
    pub(super) fn note(&mut self, container: &str, size: u64, mtime: u64) {
        self.present.insert(container.to_string());
        self.last.insert(container.to_string(), (size, mtime));
    }

    pub(super) fn note_dir(&mut self, container: &str) {
        self.present.insert(container.to_string());
    }

    /// True when `path` or anything under it is known to be in the container.
    pub(super) fn knows(&self, path: &str) -> bool {
        self.present.contains(path) || self.under(path).next().is_some()
    }

    fn under<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a String> + 'a {
        let from = format!("{}/", path.trim_end_matches('/'));
        let to = format!("{}0", path.trim_end_matches('/'));
        self.present.range(from..to)
    }

    pub(super) fn forget(&mut self, path: &str) {
        let gone: Vec<String> = self.under(path).cloned().collect();
        for p in gone.iter().map(String::as_str).chain([path]) {
            self.present.remove(p);
            self.last.remove(p);
        }
    }

    /// True (once) when the host file at `path` is one devenv just copied back.
    pub(super) fn is_echo(&mut self, path: &Path) -> bool {
        let Some(&(size, mtime)) = self.echo.get(path) else {
            return false;
        };
        self.echo.remove(path);
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.len() == size && m.modified().ok() == Some(mtime))
    }
}

/// Asks the container who it runs as (its `User`, resolved through its own
/// /etc/passwd): the archive upload would otherwise leave the host's ids.
pub async fn owner(engine: &Engine, id: &str) -> Result<Owner, WatchError> {
    let (code, out) = capture(engine, id, "id -u && id -g", &[]).await?;
    let text = String::from_utf8_lossy(&out);
    let mut ids = text.lines().filter_map(|l| l.trim().parse::<u64>().ok());
    match (code, ids.next(), ids.next()) {
        (0, Some(uid), Some(gid)) => Ok(Owner { uid, gid }),
        _ => Err(WatchError::Container {
            id: short(id),
            what: "telling its user (`id -u`)".into(),
            detail: text.trim().to_string(),
        }),
    }
}

/// One host path of a batch and the rule it falls under.
struct Work {
    host: PathBuf,
    container: String,
    filter: Arc<Filter>,
    guard: Arc<Guard>,
    target: String,
}

/// A folder of a batch uploaded whole, to list afterwards.
struct Folder {
    host: PathBuf,
    container: String,
    filter: Arc<Filter>,
    guard: Arc<Guard>,
}

/// What a batch's paths are on the host now.
struct Read {
    /// What exists, to upload.
    archive: Archive,
    /// Container paths whose host path is gone.
    gone: Vec<String>,
    folders: Vec<Folder>,
}

/// Applies changed paths: what exists on the host is uploaded (folders whole),
/// what is gone is removed in the container — if it ever got there, and
/// never when the rule's own folder is gone from the host. With a
/// `couriers`, both go through them (the engine's way when they cannot).
pub async fn apply(
    engine: &Engine,
    id: &str,
    owner: Owner,
    rules: &[&Rule],
    paths: &[SyncPath],
    mirror: &mut Mirror,
    mut couriers: Option<&mut Couriers>,
) -> Result<Stats, WatchError> {
    let start = Instant::now();
    let work: Vec<Work> = paths
        .iter()
        .map(|p| {
            let rule = &rules[p.rule];
            Work {
                host: p.host.clone(),
                container: p.container.clone(),
                filter: rule.filter.clone(),
                guard: rule.guard.clone(),
                target: rule.target.clone().unwrap_or_default(),
            }
        })
        .collect();
    let read = blocking(move || read(owner, &work)).await?;
    let (rm, around_mounts) = removals(rules, paths, read.gone, mirror);
    let mut removed = remove(engine, id, &rm, &all_mounts(rules), couriers.as_deref_mut()).await?;
    for p in &rm {
        mirror.forget(p);
    }
    // A folder new to the container (none of it ever went in) has nothing
    // there to list; listing it could only find files the container made
    // since its last look, which are the container's to keep.
    let folders: Vec<Folder> = read
        .folders
        .into_iter()
        .filter(|f| mirror.knows(&f.container))
        .collect();
    let (files, skipped) = send(engine, id, read.archive, mirror, couriers).await?;
    // A folder moved away and another moved in under its name leaves only
    // the folder's own event: what the container still has there that the
    // host lacks is found by listing that folder (only it, and only if
    // some of it had reached the container).
    for f in folders {
        removed += prune_at(
            engine,
            id,
            &f.filter,
            &f.guard,
            &f.host,
            &f.container,
            mirror,
        )
        .await?;
    }
    for (container, guard) in around_mounts {
        removed += prune_gone(engine, id, &guard, &container, mirror).await?;
    }
    Ok(Stats {
        files,
        removed,
        skipped,
        took: start.elapsed(),
        ..Stats::default()
    })
}

/// Looks at each path of a batch now: what exists goes into the archive
/// (folders whole), what is gone is named.
fn read(owner: Owner, work: &[Work]) -> Result<Read, WatchError> {
    let mut archive = Archive::new(owner);
    let mut gone = Vec::new();
    let mut folders = Vec::new();
    for w in work {
        let root = w.filter.root();
        // Looked at without following a link on the way (a folder
        // swapped for one since its event): such a path is skipped.
        match beneath::stat_path(root, &w.host) {
            Ok(Some(meta)) if meta.kind == Kind::Dir => {
                folders.push(Folder {
                    host: w.host.clone(),
                    container: w.container.clone(),
                    filter: w.filter.clone(),
                    guard: w.guard.clone(),
                });
                for e in w.filter.walk(&w.host) {
                    let at = container_path(&w.target, root, &e.path);
                    if !w.guard.in_mount(&at) {
                        archive.add(root, &e.path, &at, &mut gone)?;
                    }
                }
            }
            Ok(Some(_)) => archive.add(root, &w.host, &w.container, &mut gone)?,
            Ok(None) => gone.push(w.container.clone()),
            Err(Blocked::Link(link)) => archive.skip(root, &w.host, &Blocked::Link(link)),
            Err(Blocked::Io(source)) => {
                return Err(WatchError::Read {
                    path: w.host.clone(),
                    source,
                })
            }
        }
    }
    Ok(Read {
        archive,
        gone,
        folders,
    })
}

/// Of the container paths whose host path is `gone`, those to `rm -rf`,
/// and the folders holding a mount, to empty around it.
fn removals(
    rules: &[&Rule],
    paths: &[SyncPath],
    gone: Vec<String>,
    mirror: &Mirror,
) -> (Vec<String>, Vec<(String, Arc<Guard>)>) {
    let guard_of = |container: &str| {
        paths
            .iter()
            .find(|p| p.container == container)
            .map(|p| rules[p.rule].guard.clone())
    };
    // A rule whose own folder is gone from the host (a checkout deleted or
    // moved away under a running watcher) says nothing about what the
    // container should lack: none of its paths are removed.
    let orphaned: Vec<&str> = paths
        .iter()
        .map(|p| rules[p.rule])
        .filter(|r| std::fs::symlink_metadata(&r.path).is_err())
        .filter_map(|r| r.target.as_deref())
        .collect();
    // A path that never reached the container (an editor's temporary file
    // renamed over the real one) has nothing to remove.
    let mut rm = Vec::new();
    let mut around_mounts = Vec::new();
    for path in gone {
        if !mirror.knows(&path) || orphaned.iter().any(|t| Path::new(&path).starts_with(t)) {
            continue;
        }
        match guard_of(&path) {
            Some(g) if g.may_remove(&path) => rm.push(path),
            Some(g) if g.removes && g.holds_mount(&path) => around_mounts.push((path, g)),
            // Under a mount, or in host files a bind mount holds: never.
            Some(_) => {}
            None => rm.push(path),
        }
    }
    (rm, around_mounts)
}

/// Puts `archive` in the container through the `couriers`, else (none, or
/// they cannot) through the engine; the files that went in and what was
/// left out.
async fn send(
    engine: &Engine,
    id: &str,
    archive: Archive,
    mirror: &mut Mirror,
    couriers: Option<&mut Couriers>,
) -> Result<(usize, Vec<Skip>), WatchError> {
    let delivered = match couriers {
        Some(c) => match archive.finish(0..archive.len())? {
            Some(tar) => c.extract(&tar).await,
            None => true,
        },
        None => false,
    };
    if delivered {
        Ok(archive.noted(mirror, &[]))
    } else {
        deliver(engine, id, archive, mirror).await
    }
}

/// Uploads `archive` through the engine and notes what went in. When the
/// engine refuses it (one name too long for its file system), the entries
/// it refuses are found by halves and left out, and the rest goes in; only
/// when it refuses every entry is that an error. Returns the files that
/// went in and what was left out.
async fn deliver(
    engine: &Engine,
    id: &str,
    archive: Archive,
    mirror: &mut Mirror,
) -> Result<(usize, Vec<Skip>), WatchError> {
    let mut refused: Vec<(usize, String)> = Vec::new();
    let mut first = None;
    let mut todo = Vec::new();
    todo.push(0..archive.len());
    while let Some(range) = todo.pop() {
        let Some(tar) = archive.finish(range.clone())? else {
            continue;
        };
        let Err(e) = engine.upload_archive(id, "/", tar).await else {
            continue;
        };
        if range.len() == 1 {
            refused.push((range.start, last_cause(&e)));
            // Refusing this much is the engine or the container, not a
            // name (a container that stopped): that error, as it is.
            if refused.len() > MAX_REFUSED {
                return Err(first.unwrap_or(e).into());
            }
        } else {
            let mid = range.start + range.len() / 2;
            // The first half first: folders come before what they hold.
            todo.push(mid..range.end);
            todo.push(range.start..mid);
        }
        first.get_or_insert(e);
    }
    if let Some(e) = first.filter(|_| refused.len() == archive.len()) {
        return Err(e.into());
    }
    let why: Vec<(String, String)> = refused
        .into_iter()
        .map(|(i, why)| (archive.key(i).to_string(), why))
        .collect();
    let (files, mut skipped) = archive.noted(mirror, &why);
    skipped.extend(why.into_iter().map(|(container, why)| Skip {
        path: PathBuf::from(container),
        why: format!("skipped: the engine refused it ({why})"),
    }));
    Ok((files, skipped))
}

/// The innermost cause of an engine error, the part that names the file.
fn last_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// Makes the container's copy of every copying rule match the host: first
/// what the container made is copied back ([`super::back::collect`]), then
/// what the host lacks is removed, then the host's tree is uploaded.
pub async fn full(
    engine: &Engine,
    id: &str,
    owner: Owner,
    rules: &[&Rule],
    mirror: &mut Mirror,
) -> Result<Stats, WatchError> {
    let start = Instant::now();
    let mut stats = super::back::collect(engine, id, rules, mirror, None, None, None).await?;
    for rule in rules {
        let target = rule.target.clone().unwrap_or_default();
        if rule.guard.removes {
            stats.removed += prune_at(
                engine,
                id,
                &rule.filter,
                &rule.guard,
                &rule.path,
                &target,
                mirror,
            )
            .await?;
        }
    }
    let (files, skipped) = upload(engine, id, owner, rules, mirror).await?;
    stats.files = files;
    stats.skipped.extend(skipped);
    stats.took = start.elapsed();
    Ok(stats)
}

/// Uploads each rule's whole tree (minus skipped paths and mounts); works on
/// a container that has not started yet. Returns the number of files and
/// what was left out.
pub async fn upload(
    engine: &Engine,
    id: &str,
    owner: Owner,
    rules: &[&Rule],
    mirror: &mut Mirror,
) -> Result<(usize, Vec<Skip>), WatchError> {
    let mut files = 0;
    let mut skipped = Vec::new();
    for rule in rules {
        let target = rule.target.clone().unwrap_or_default();
        let (root, filter, guard) = (rule.path.clone(), rule.filter.clone(), rule.guard.clone());
        let archive = blocking(move || {
            let mut archive = Archive::new(owner);
            // Vanished while being read: the event it made syncs it.
            let mut gone = Vec::new();
            for e in filter.walk(&root) {
                let at = container_path(&target, &root, &e.path);
                if !guard.in_mount(&at) {
                    archive.add(&root, &e.path, &at, &mut gone)?;
                }
            }
            Ok(archive)
        })
        .await?;
        let (n, left_out) = deliver(engine, id, archive, mirror).await?;
        files += n;
        skipped.extend(left_out);
    }
    Ok((files, skipped))
}

/// `sh -c script args…`, stdout and stderr together.
pub(super) async fn capture(
    engine: &Engine,
    id: &str,
    script: &str,
    args: &[&str],
) -> Result<(i64, Vec<u8>), WatchError> {
    let mut cmd = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let mut out = Vec::new();
    let code = engine
        .exec_bytes(id, cmd, Vec::new(), None, |b| out.extend_from_slice(b))
        .await?;
    Ok((code, out))
}

pub(super) fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WatchError> + Send + 'static,
) -> Result<T, WatchError> {
    tokio::task::spawn_blocking(f)
        .await
        .expect("the sync's file reading does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r10_the_mirror_knows_what_reached_the_container() {
        let mut m = Mirror::default();
        m.note("/srv/a/b.php", 3, 1);
        m.note_dir("/srv/a");
        assert!(m.knows("/srv/a") && m.knows("/srv/a/b.php"));
        assert!(!m.knows("/srv/.b.php.swp"), "a temp file never uploaded");
        assert!(!m.knows("/srv/a/b"), "a prefix is not a parent");
        m.forget("/srv/a");
        assert!(!m.knows("/srv/a/b.php"));
    }

    #[test]
    fn stats_read_as_one_line() {
        let took = Duration::from_millis(42);
        assert_eq!(
            Stats {
                files: 3,
                removed: 0,
                took,
                ..Stats::default()
            }
            .describe(),
            "synced 3 files in 42 ms"
        );
        assert_eq!(
            Stats {
                files: 1,
                removed: 2,
                took,
                ..Stats::default()
            }
            .describe(),
            "synced 1 file, removed 2 in 42 ms"
        );
        assert_eq!(
            Stats {
                files: 0,
                removed: 2,
                took,
                ..Stats::default()
            }
            .describe(),
            "removed 2 in 42 ms"
        );
    }
}
