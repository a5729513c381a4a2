//! Mirroring host files into a container: changed paths go in as one tar
//! archive through the Engine API (modes and mtimes kept, owned by the user
//! the container runs as), removed paths go with one `rm -rf` exec. A full
//! sync lists the container's side with `find` and removes what the host no
//! longer has, leaving alone what the rule skips (the image's `vendor/`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indexmap::{IndexMap, IndexSet};

use super::filter::Filter;
use super::plan::{container_path, Rule, SyncPath};
use super::WatchError;
use crate::engine::Engine;

/// Arguments per `rm` exec, well under any ARG_MAX.
const RM_CHUNK_BYTES: usize = 64 * 1024;

/// What a sync did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub files: usize,
    pub removed: usize,
    pub took: Duration,
}

impl Stats {
    /// `synced 3 files, removed 1 in 42 ms`
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.files > 0 || self.removed == 0 {
            let s = if self.files == 1 { "" } else { "s" };
            parts.push(format!("synced {} file{s}", self.files));
        }
        if self.removed > 0 {
            parts.push(format!("removed {}", self.removed));
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

/// Asks the container who it runs as (its `User`, resolved through its own
/// /etc/passwd): the archive upload would otherwise leave the host's ids.
pub async fn owner(engine: &Engine, id: &str) -> Result<Owner, WatchError> {
    let (code, out) = capture(engine, id, "id -u && id -g", None).await?;
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

/// Applies changed paths: what exists on the host is uploaded (folders whole),
/// what is gone is removed in the container.
pub async fn apply(
    engine: &Engine,
    id: &str,
    owner: Owner,
    rules: &[Rule],
    paths: &[SyncPath],
) -> Result<Stats, WatchError> {
    let start = Instant::now();
    // (host path, container path, the rule's filter, root and target)
    let work: Vec<_> = paths
        .iter()
        .map(|p| {
            let rule = &rules[p.rule];
            let target = rule.target.clone().unwrap_or_default();
            (
                p.host.clone(),
                p.container.clone(),
                rule.filter.clone(),
                target,
            )
        })
        .collect();
    let (tar, files, gone, folders) = blocking(move || {
        let mut archive = Archive::new(owner);
        let mut gone = Vec::new();
        let mut folders = false;
        for (host, container, filter, target) in &work {
            match std::fs::symlink_metadata(host) {
                Ok(meta) if meta.is_dir() => {
                    folders = true;
                    for e in filter.walk(host) {
                        archive.add(
                            &e.path,
                            &container_path(target, filter.root(), &e.path),
                            &mut gone,
                        )?;
                    }
                }
                Ok(_) => archive.add(host, container, &mut gone)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(container.clone()),
                Err(source) => {
                    return Err(WatchError::Read {
                        path: host.clone(),
                        source,
                    })
                }
            }
        }
        let files = archive.files;
        Ok((archive.finish()?, files, gone, folders))
    })
    .await?;
    let mut removed = remove(engine, id, &gone).await?;
    if let Some(tar) = tar {
        engine.upload_archive(id, "/", tar).await?;
    }
    // A folder moved away and another moved in under its name leaves only
    // the folder's own event: the old contents are found by listing.
    if !gone.is_empty() || folders {
        let mut touched: Vec<&Rule> = Vec::new();
        for p in paths {
            if !touched.iter().any(|r| std::ptr::eq(*r, &rules[p.rule])) {
                touched.push(&rules[p.rule]);
            }
        }
        removed += prune(engine, id, &touched).await?;
    }
    Ok(Stats {
        files,
        removed,
        took: start.elapsed(),
    })
}

/// Makes the container's copy of every copying rule match the host.
pub async fn full(
    engine: &Engine,
    id: &str,
    owner: Owner,
    rules: &[&Rule],
) -> Result<Stats, WatchError> {
    let start = Instant::now();
    let mut stats = Stats {
        removed: prune(engine, id, rules).await?,
        ..Stats::default()
    };
    for rule in rules {
        let target = rule.target.clone().unwrap_or_default();
        let (root, filter) = (rule.path.clone(), rule.filter.clone());
        let (tar, files, gone) = blocking(move || {
            let mut archive = Archive::new(owner);
            let mut gone = Vec::new();
            for e in filter.walk(&root) {
                let at = container_path(&target, &root, &e.path);
                archive.add(&e.path, &at, &mut gone)?;
            }
            let files = archive.files;
            Ok((archive.finish()?, files, gone))
        })
        .await?;
        stats.removed += remove(engine, id, &gone).await?;
        if let Some(tar) = tar {
            engine.upload_archive(id, "/", tar).await?;
        }
        stats.files += files;
    }
    stats.took = start.elapsed();
    Ok(stats)
}

/// Removes from the container what the host no longer has under each rule.
async fn prune(engine: &Engine, id: &str, rules: &[&Rule]) -> Result<usize, WatchError> {
    let mut removed = 0;
    for rule in rules {
        let target = rule.target.clone().unwrap_or_default();
        let listing = list(engine, id, &target).await?;
        let (root, filter) = (rule.path.clone(), rule.filter.clone());
        let gone = blocking(move || Ok(extras(&filter, &root, &target, &listing))).await?;
        removed += remove(engine, id, &gone).await?;
    }
    Ok(removed)
}

/// Container paths (relative to `target`, with whether each is a folder)
/// that the host lacks and the rule does not skip; only the topmost of each
/// subtree, since `rm -rf` takes the rest with it.
fn extras(filter: &Filter, root: &Path, target: &str, listing: &[(PathBuf, bool)]) -> Vec<String> {
    let mut out: Vec<PathBuf> = Vec::new();
    for (rel, is_dir) in listing {
        if out.iter().any(|o| rel.starts_with(o)) {
            continue;
        }
        let host = root.join(rel);
        if std::fs::symlink_metadata(&host).is_err() && !filter.is_ignored(&host, *is_dir) {
            out.push(rel.clone());
        }
    }
    out.iter()
        .map(|rel| container_path(target, root, &root.join(rel)))
        .collect()
}

/// Everything under `target` in the container, folders first in `find`'s order.
async fn list(engine: &Engine, id: &str, target: &str) -> Result<Vec<(PathBuf, bool)>, WatchError> {
    // `/` cannot be a file name, so it separates the folders from the rest.
    let script = "cd \"$1\" 2>/dev/null || exit 0; find . -mindepth 1 -type d -print0; printf '/\\0'; find . -mindepth 1 ! -type d -print0";
    let (code, out) = capture(engine, id, script, Some(target)).await?;
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

/// `rm -rf` in the container, as root like the upload, in as few execs as fit.
async fn remove(engine: &Engine, id: &str, paths: &[String]) -> Result<usize, WatchError> {
    // A folder's `rm -rf` takes what is under it: name only the topmost paths.
    let unique: IndexSet<&String> = paths
        .iter()
        .filter(|p| {
            !paths
                .iter()
                .any(|q| q != *p && Path::new(p.as_str()).starts_with(q))
        })
        .collect();
    let mut chunk: Vec<String> = Vec::new();
    let mut size = 0;
    let mut items = unique.iter().peekable();
    while let Some(p) = items.next() {
        size += p.len() + 1;
        chunk.push((*p).clone());
        if size > RM_CHUNK_BYTES || items.peek().is_none() {
            let mut cmd = vec!["rm".to_string(), "-rf".into(), "--".into()];
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

/// `sh -c script [arg]`, stdout and stderr together.
async fn capture(
    engine: &Engine,
    id: &str,
    script: &str,
    arg: Option<&str>,
) -> Result<(i64, Vec<u8>), WatchError> {
    let mut cmd = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    cmd.extend(arg.map(str::to_string));
    let mut out = Vec::new();
    let code = engine
        .exec_bytes(id, cmd, Vec::new(), None, |b| out.extend_from_slice(b))
        .await?;
    Ok((code, out))
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

async fn blocking<T: Send + 'static>(
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
}

enum Item {
    Dir(std::fs::Metadata),
    File(std::fs::Metadata, Vec<u8>),
    Link(std::fs::Metadata, PathBuf),
}

impl Archive {
    fn new(owner: Owner) -> Archive {
        Archive {
            owner,
            entries: IndexMap::new(),
            files: 0,
        }
    }

    /// Reads `host` now; a path that vanished meanwhile is noted as gone.
    fn add(
        &mut self,
        host: &Path,
        container: &str,
        gone: &mut Vec<String>,
    ) -> Result<(), WatchError> {
        let read = |source| WatchError::Read {
            path: host.to_path_buf(),
            source,
        };
        let item = std::fs::symlink_metadata(host).and_then(|meta| {
            Ok(if meta.is_dir() {
                Item::Dir(meta)
            } else if meta.file_type().is_symlink() {
                Item::Link(meta, std::fs::read_link(host)?)
            } else {
                // Whole file in memory: a file still being written must not
                // disagree with the size in its header.
                Item::File(meta, std::fs::read(host)?)
            })
        });
        match item {
            Ok(item) => {
                if !matches!(item, Item::Dir(_)) && !self.entries.contains_key(container) {
                    self.files += 1;
                }
                self.entries.insert(container.to_string(), item);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                gone.push(container.to_string());
                Ok(())
            }
            Err(e) => Err(read(e)),
        }
    }

    /// The archive, or `None` when there is nothing to upload.
    fn finish(self) -> Result<Option<Vec<u8>>, WatchError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let io = |source| WatchError::Archive { source };
        let mut b = tar::Builder::new(Vec::new());
        for (path, item) in &self.entries {
            let name = path.trim_start_matches('/');
            let name = if name.is_empty() { "." } else { name };
            let mut h = tar::Header::new_gnu();
            let meta = match item {
                Item::Dir(m) | Item::File(m, _) | Item::Link(m, _) => m,
            };
            h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
            h.set_uid(self.owner.uid);
            h.set_gid(self.owner.gid);
            match item {
                Item::Dir(_) => {
                    h.set_size(0);
                    b.append_data(&mut h, name, std::io::empty()).map_err(io)?;
                }
                Item::File(_, data) => {
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, name, data.as_slice()).map_err(io)?;
                }
                Item::Link(_, to) => {
                    h.set_size(0);
                    b.append_link(&mut h, name, to).map_err(io)?;
                }
            }
        }
        b.into_inner().map(Some).map_err(io)
    }
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
            extras(&filter, dir.path(), "/srv", &listing),
            ["/srv/gone", "/srv/kept/old.php"]
        );
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
        a.add(dir.path(), "/srv", &mut gone).unwrap();
        a.add(&script, "/srv/run.sh", &mut gone).unwrap();
        a.add(&script, "/srv/run.sh", &mut gone).unwrap();
        a.add(&dir.path().join("link"), "/srv/link", &mut gone)
            .unwrap();
        a.add(&dir.path().join("missing"), "/srv/missing", &mut gone)
            .unwrap();
        assert_eq!(gone, ["/srv/missing"]);
        assert_eq!(a.files, 2, "the same path counts once");
        let tar = a.finish().unwrap().unwrap();
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
                took
            }
            .describe(),
            "synced 3 files in 42 ms"
        );
        assert_eq!(
            Stats {
                files: 1,
                removed: 2,
                took
            }
            .describe(),
            "synced 1 file, removed 2 in 42 ms"
        );
        assert_eq!(
            Stats {
                files: 0,
                removed: 2,
                took
            }
            .describe(),
            "removed 2 in 42 ms"
        );
    }
}
