//! Mirroring host files into a container: changed paths go in as one tar
//! archive through the Engine API (modes and mtimes kept, owned by the user
//! the container runs as), removed paths go with one `rm -rf` exec. A full
//! sync lists the container's side with `find` and removes what the host no
//! longer has, leaving alone what the rule skips (the image's `vendor/`) and
//! whatever lies under a mount inside the target (a bind mount of another
//! host folder, a named volume): those are never copied over nor removed,
//! and a folder that holds one is emptied around it, never `rm -rf`'d.
//! Files the container made are copied back first ([`super::back`]), so a
//! re-sync never deletes them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::{IndexMap, IndexSet};

use super::beneath::{self, Blocked, Kind, Meta};
use super::courier::Couriers;
use super::filter::Filter;
use super::names;
use super::plan::{container_path, Guard, Rule, SyncPath};
use super::WatchError;
use crate::engine::Engine;

/// Entries one upload may leave out before the engine's refusal counts as
/// the upload's failure (each costs a few requests to single out).
const MAX_REFUSED: usize = 64;

/// Arguments per `rm` exec, well under any ARG_MAX.
const RM_CHUNK_BYTES: usize = 64 * 1024;

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

    fn note_dir(&mut self, container: &str) {
        self.present.insert(container.to_string());
    }

    /// True when `path` or anything under it is known to be in the container.
    fn knows(&self, path: &str) -> bool {
        self.present.contains(path) || self.under(path).next().is_some()
    }

    fn under<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a String> + 'a {
        let from = format!("{}/", path.trim_end_matches('/'));
        let to = format!("{}0", path.trim_end_matches('/'));
        self.present.range(from..to)
    }

    fn forget(&mut self, path: &str) {
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
    let (archive, gone, folders) = blocking(move || {
        let mut archive = Archive::new(owner);
        let mut gone = Vec::new();
        // Folders uploaded whole, to list afterwards.
        let mut folders = Vec::new();
        for w in &work {
            let root = w.filter.root();
            // Looked at without following a link on the way (a folder
            // swapped for one since its event): such a path is skipped.
            match beneath::stat_path(root, &w.host) {
                Ok(Some(meta)) if meta.kind == Kind::Dir => {
                    folders.push((
                        w.host.clone(),
                        w.container.clone(),
                        w.filter.clone(),
                        w.guard.clone(),
                    ));
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
        Ok((archive, gone, folders))
    })
    .await?;
    let guards: Vec<Arc<Guard>> = paths.iter().map(|p| rules[p.rule].guard.clone()).collect();
    let guard_of = |container: &str| {
        paths
            .iter()
            .position(|p| p.container == container)
            .map(|i| guards[i].clone())
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
    let mut removed = remove(engine, id, &rm, &all_mounts(rules), couriers.as_deref_mut()).await?;
    for p in &rm {
        mirror.forget(p);
    }
    // A folder new to the container (none of it ever went in) has nothing
    // there to list; listing it could only find files the container made
    // since its last look, which are the container's to keep.
    let folders: Vec<_> = folders
        .into_iter()
        .filter(|(_, container, _, _)| mirror.knows(container))
        .collect();
    let delivered = match couriers {
        Some(c) => match archive.finish(0..archive.len())? {
            Some(tar) => c.extract(&tar).await,
            None => true,
        },
        None => false,
    };
    let (files, skipped) = if delivered {
        archive.noted(mirror, &[])
    } else {
        deliver(engine, id, archive, mirror).await?
    };
    // A folder moved away and another moved in under its name leaves only
    // the folder's own event: what the container still has there that the
    // host lacks is found by listing that folder (only it, and only if
    // some of it had reached the container).
    for (host, container, filter, guard) in folders {
        removed += prune_at(engine, id, &filter, &guard, &host, &container, mirror).await?;
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

/// Every mount point inside a copying rule's target: the last guard of `remove`.
fn all_mounts(rules: &[&Rule]) -> Vec<String> {
    rules.iter().flat_map(|r| r.guard.mounts.clone()).collect()
}

/// Removes what the container has under `container` (the host's `host`)
/// that the host lacks and the rule does not skip.
async fn prune_at(
    engine: &Engine,
    id: &str,
    filter: &Arc<Filter>,
    guard: &Arc<Guard>,
    host: &Path,
    container: &str,
    mirror: &mut Mirror,
) -> Result<usize, WatchError> {
    // A host folder that is gone (a deleted checkout, a watcher left running
    // after its folder went) says nothing about what the container should
    // lack: it never empties the container.
    if !guard.removes || !host.is_dir() {
        return Ok(0);
    }
    let listing = list(engine, id, container).await?;
    let (filter, guard2, host2, container2) = (
        filter.clone(),
        guard.clone(),
        host.to_path_buf(),
        container.to_string(),
    );
    let gone =
        blocking(move || Ok(extras(&filter, &guard2, &host2, &container2, &listing))).await?;
    let removed = remove(engine, id, &gone, &guard.mounts, None).await?;
    for p in &gone {
        mirror.forget(p);
    }
    Ok(removed)
}

/// A folder gone from the host that holds a mount in the container: what is
/// around the mount goes, the mount and the folders leading to it stay.
async fn prune_gone(
    engine: &Engine,
    id: &str,
    guard: &Arc<Guard>,
    container: &str,
    mirror: &mut Mirror,
) -> Result<usize, WatchError> {
    let listing = list(engine, id, container).await?;
    let mut gone: Vec<String> = Vec::new();
    for (rel, _) in &listing {
        let at = format!(
            "{}/{}",
            container.trim_end_matches('/'),
            names::text(rel.as_os_str().as_encoded_bytes())
        );
        if gone.iter().any(|g| Path::new(&at).starts_with(g)) || !guard.may_remove(&at) {
            continue;
        }
        gone.push(at);
    }
    let removed = remove(engine, id, &gone, &guard.mounts, None).await?;
    for p in &gone {
        mirror.forget(p);
    }
    Ok(removed)
}

/// Container paths under `container` (listed relative to it, with whether
/// each is a folder) that the host lacks under `host` and the rule does not
/// skip; only the topmost of each subtree, since `rm -rf` takes the rest
/// with it — except a folder that holds a mount, whose other entries are
/// named one by one. What lies under a mount is never named.
fn extras(
    filter: &Filter,
    guard: &Guard,
    host: &Path,
    container: &str,
    listing: &[(PathBuf, bool)],
) -> Vec<String> {
    let mut out: Vec<PathBuf> = Vec::new();
    for (rel, is_dir) in listing {
        if out.iter().any(|o| rel.starts_with(o)) {
            continue;
        }
        let at = container_path(container, host, &host.join(rel));
        if guard.in_mount(&at) || guard.holds_mount(&at) {
            continue;
        }
        let path = host.join(rel);
        // Looked up without following a link: a container path under a
        // host link (`esc/x` where the host's `esc` is one) is not in the
        // checkout, whatever lies where the link points.
        let there = beneath::stat_path(filter.root(), &path).is_ok_and(|m| m.is_some());
        if !there && !filter.is_ignored(&path, *is_dir) {
            out.push(rel.clone());
        }
    }
    out.iter()
        .map(|rel| container_path(container, host, &host.join(rel)))
        .collect()
}

/// Everything under `target` in the container, folders first in `find`'s order.
async fn list(engine: &Engine, id: &str, target: &str) -> Result<Vec<(PathBuf, bool)>, WatchError> {
    // `/` cannot be a file name, so it separates the folders from the rest.
    let script = "cd \"$1\" 2>/dev/null || exit 0; find . -mindepth 1 -type d -print0; printf '/\\0'; find . -mindepth 1 ! -type d -print0";
    let (code, out) = capture(engine, id, script, &[target]).await?;
    if code != 0 {
        return Err(WatchError::Container {
            id: short(id),
            what: format!("listing `{target}`"),
            detail: String::from_utf8_lossy(&out).trim().to_string(),
        });
    }
    Ok(parse_listing(&out))
}

fn parse_listing(out: &[u8]) -> Vec<(PathBuf, bool)> {
    let mut dirs = true;
    let mut entries = Vec::new();
    for item in out.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        if item == b"/" {
            dirs = false;
            continue;
        }
        let rel = item.strip_prefix(b"./").unwrap_or(item);
        entries.push((bytes_to_path(rel), dirs));
    }
    // Parents sort before their children, which `extras` relies on.
    entries.sort();
    entries
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

/// `rm -rf` in the container, as root like the upload, in as few execs as
/// fit (or through the `couriers`). The last guard: nothing at, under or
/// holding one of `mounts` goes.
async fn remove(
    engine: &Engine,
    id: &str,
    paths: &[String],
    mounts: &[String],
    mut couriers: Option<&mut Couriers>,
) -> Result<usize, WatchError> {
    let paths: Vec<&String> = paths
        .iter()
        .filter(|p| {
            !mounts
                .iter()
                .any(|m| Path::new(p.as_str()).starts_with(m) || Path::new(m).starts_with(p))
        })
        .collect();
    // A folder's `rm -rf` takes what is under it: name only the topmost paths.
    let unique: IndexSet<&String> = paths
        .iter()
        .filter(|p| {
            !paths
                .iter()
                .any(|q| q != *p && Path::new(p.as_str()).starts_with(q))
        })
        .copied()
        .collect();
    let mut chunk: Vec<String> = Vec::new();
    let mut size = 0;
    let mut items = unique.iter().peekable();
    while let Some(p) = items.next() {
        size += p.len() + 1;
        chunk.push((*p).clone());
        if size > RM_CHUNK_BYTES || items.peek().is_none() {
            if let Some(c) = couriers.as_deref_mut() {
                if c.remove(&chunk).await {
                    chunk.clear();
                    size = 0;
                    continue;
                }
            }
            // A name that is not UTF-8 reaches the shell spelled for `printf`
            // (the exec API takes UTF-8 arguments).
            let mut cmd = if chunk.iter().any(|p| names::is_raw(p)) {
                let script =
                    r#"for a; do p=$(printf "$a"; printf x); rm -rf -- "${p%x}" || exit 1; done"#;
                let mut cmd = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
                cmd.extend(chunk.drain(..).map(|p| names::printf_format(&p)));
                cmd
            } else {
                vec!["rm".to_string(), "-rf".into(), "--".into()]
            };
            cmd.append(&mut chunk);
            let mut out = Vec::new();
            let code = engine
                .exec_bytes(id, cmd, Vec::new(), Some("0".into()), |b| {
                    out.extend_from_slice(b)
                })
                .await?;
            if code != 0 {
                return Err(WatchError::Container {
                    id: short(id),
                    what: "removing files".into(),
                    detail: String::from_utf8_lossy(&out).trim().to_string(),
                });
            }
            size = 0;
        }
    }
    Ok(unique.len())
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

/// A tar archive under construction, entries keyed by container path so a
/// path reached twice (two rules, a file inside a new folder) goes in once.
struct Archive {
    owner: Owner,
    entries: IndexMap<String, Item>,
    files: usize,
    /// Paths left out while reading, and why.
    skipped: Vec<Skip>,
}

enum Item {
    Dir(Meta),
    File(Meta, Vec<u8>),
    Link(Meta, PathBuf),
}

impl Item {
    fn meta(&self) -> &Meta {
        match self {
            Item::Dir(m) | Item::File(m, _) | Item::Link(m, _) => m,
        }
    }
}

impl Archive {
    fn new(owner: Owner) -> Archive {
        Archive {
            owner,
            entries: IndexMap::new(),
            files: 0,
            skipped: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn key(&self, i: usize) -> &str {
        self.entries.get_index(i).map_or("", |(k, _)| k.as_str())
    }

    /// Reads `host` (under the rule's folder `root`) now, never through a
    /// link ([`beneath`]); a path that vanished meanwhile is noted as gone,
    /// one whose folder became a link is left out and said so, a FIFO or
    /// device is left out.
    fn add(
        &mut self,
        root: &Path,
        host: &Path,
        container: &str,
        gone: &mut Vec<String>,
    ) -> Result<(), WatchError> {
        let read = |source| WatchError::Read {
            path: host.to_path_buf(),
            source,
        };
        let item = match read_item(root, host) {
            Ok(Some(Some(item))) => item,
            Ok(Some(None)) => return Ok(()),
            Ok(None) => {
                gone.push(container.to_string());
                return Ok(());
            }
            Err(Blocked::Io(e)) => return Err(read(e)),
            Err(b) => {
                self.skip(root, host, &b);
                return Ok(());
            }
        };
        if !matches!(item, Item::Dir(_)) && !self.entries.contains_key(container) {
            self.files += 1;
        }
        self.entries.insert(container.to_string(), item);
        Ok(())
    }

    /// Notes `host` as left out.
    fn skip(&mut self, root: &Path, host: &Path, why: &Blocked) {
        self.skipped.push(Skip {
            path: host.strip_prefix(root).unwrap_or(host).to_path_buf(),
            why: format!("not synced: {}", why.describe(root)),
        });
    }

    /// Notes in `mirror` what went in (all but `refused`, by container
    /// path); the files that did and what was left out.
    fn noted(self, mirror: &mut Mirror, refused: &[(String, String)]) -> (usize, Vec<Skip>) {
        let mut files = self.files;
        for (path, item) in &self.entries {
            if refused.iter().any(|(r, _)| r == path) {
                files -= usize::from(!matches!(item, Item::Dir(_)));
                continue;
            }
            let m = item.meta();
            match item {
                Item::Dir(_) => mirror.note_dir(path),
                Item::File(_, data) => mirror.note(path, data.len() as u64, m.secs()),
                Item::Link(..) => mirror.note(path, 0, m.secs()),
            }
        }
        (files, self.skipped)
    }

    /// The archive of the entries in `range`, or `None` when there is
    /// nothing to upload. Names are the container paths' bytes.
    fn finish(&self, range: std::ops::Range<usize>) -> Result<Option<Vec<u8>>, WatchError> {
        let Some(entries) = self.entries.get_range(range).filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let io = |source| WatchError::Archive { source };
        let mut b = tar::Builder::new(Vec::new());
        for (path, item) in entries {
            let name = names::host_path(path.trim_start_matches('/'));
            let name = if name.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                name
            };
            let meta = item.meta();
            let mut h = tar::Header::new_gnu();
            h.set_mode(meta.mode);
            h.set_mtime(meta.secs());
            h.set_uid(self.owner.uid);
            h.set_gid(self.owner.gid);
            match item {
                Item::Dir(_) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, &name, std::io::empty()).map_err(io)?;
                }
                Item::File(_, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, &name, data.as_slice()).map_err(io)?;
                }
                Item::Link(_, to) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, &name, to).map_err(io)?;
                }
            }
        }
        b.into_inner().map(Some).map_err(io)
    }
}

/// What is at `host` under `root`, read without following a link: `None`
/// when it is gone, `Some(None)` when it is nothing to sync (a FIFO, a
/// socket, a device).
fn read_item(root: &Path, host: &Path) -> Result<Option<Option<Item>>, Blocked> {
    let rel = host.strip_prefix(root).map_err(|_| {
        Blocked::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{}` is not under `{}`", host.display(), root.display()),
        ))
    })?;
    if rel.as_os_str().is_empty() {
        let dir = beneath::open_dir(root, rel, false);
        return match dir {
            Ok(dir) => Ok(Some(Some(Item::Dir(beneath::stat_dir(&dir)?)))),
            Err(Blocked::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(b) => Err(b),
        };
    }
    let Some((parent, name)) = beneath::split(rel) else {
        return Ok(None);
    };
    let dir = match beneath::open_dir(root, parent, false) {
        Ok(dir) => dir,
        Err(Blocked::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(b) => return Err(b),
    };
    let Some(meta) = beneath::stat(&dir, name)? else {
        return Ok(None);
    };
    Ok(Some(match meta.kind {
        Kind::Dir => Some(Item::Dir(meta)),
        // Whole file in memory: a file still being written must not
        // disagree with the size in its header.
        Kind::File => match beneath::read_file(&dir, name)? {
            Some((meta, data)) => Some(Item::File(meta, data)),
            None => return Ok(None),
        },
        Kind::Link => match beneath::read_link(&dir, name)? {
            Some(to) => Some(Item::Link(meta, to)),
            None => return Ok(None),
        },
        Kind::Other => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_split_folders_from_files_and_keep_odd_names() {
        let out = b"./a\0./a/b\0/\0./a/b/x y.txt\0./top\0";
        assert_eq!(
            parse_listing(out),
            [
                (PathBuf::from("a"), true),
                (PathBuf::from("a/b"), true),
                (PathBuf::from("a/b/x y.txt"), false),
                (PathBuf::from("top"), false),
            ]
        );
    }

    #[test]
    fn extras_are_what_the_host_lacks_minus_skipped_paths_topmost_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        let filter = Filter::new(dir.path(), dir.path(), &[], &[]).unwrap();
        let listing = parse_listing(b"./gone\0./gone/sub\0./kept\0./vendor\0/\0./gone/sub/f\0./kept/old.php\0./vendor/x.php\0");
        assert_eq!(
            extras(&filter, &Guard::default(), dir.path(), "/srv", &listing),
            ["/srv/gone", "/srv/kept/old.php"]
        );
    }

    #[test]
    fn r10_extras_never_name_a_mount_what_is_under_it_or_a_folder_holding_one() {
        let dir = tempfile::tempdir().unwrap();
        let filter = Filter::new(dir.path(), dir.path(), &[], &[]).unwrap();
        let guard = Guard {
            mounts: vec![
                "/srv/uploads".into(),
                "/srv/data".into(),
                "/srv/deep/vol".into(),
            ],
            removes: true,
        };
        let listing = parse_listing(
            b"./data\0./deep\0./deep/vol\0./uploads\0/\0./data/db.sqlite\0./deep/other.txt\0./deep/vol/keep\0./stale.php\0./uploads/photo.jpg\0",
        );
        assert_eq!(
            extras(&filter, &guard, dir.path(), "/srv", &listing),
            ["/srv/deep/other.txt", "/srv/stale.php"]
        );
    }

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
    fn archives_carry_the_container_owner_modes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "echo hi\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).unwrap();
            std::os::unix::fs::symlink("run.sh", dir.path().join("link")).unwrap();
        }
        let mut a = Archive::new(Owner {
            uid: 1000,
            gid: 1000,
        });
        let mut gone = Vec::new();
        let root = dir.path();
        a.add(root, root, "/srv", &mut gone).unwrap();
        a.add(root, &script, "/srv/run.sh", &mut gone).unwrap();
        a.add(root, &script, "/srv/run.sh", &mut gone).unwrap();
        a.add(root, &root.join("link"), "/srv/link", &mut gone)
            .unwrap();
        a.add(root, &root.join("missing"), "/srv/missing", &mut gone)
            .unwrap();
        // A name that is not UTF-8 goes in under its own bytes.
        use std::os::unix::ffi::OsStrExt;
        let raw = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        std::fs::write(&raw, "x").unwrap();
        let at = container_path("/srv", root, &raw);
        a.add(root, &raw, &at, &mut gone).unwrap();
        assert_eq!(gone, ["/srv/missing"]);
        assert_eq!(a.files, 3, "the same path counts once");
        let tar = a.finish(0..a.len()).unwrap().unwrap();
        let names: Vec<Vec<u8>> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().into_owned())
            .collect();
        assert_eq!(names[3], b"srv/caf\xe9");
        let mut read = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, u64, u64)> = read
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap() & 0o7777,
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries[1], ("srv/run.sh".into(), 0o750, 1000, 1000));
        assert_eq!(entries[0].0, "srv");
        assert_eq!(entries[2].0, "srv/link");
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
