//! Removing from a container what the host no longer has: a folder's
//! listing (`find`) against the host's tree, minus what the rule skips and
//! whatever lies at, under or around a mount inside the target; then one
//! `rm -rf` per chunk of topmost paths (or through the couriers).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexSet;

use super::beneath;
use super::courier::Couriers;
use super::filter::Filter;
use super::names;
use super::plan::{container_path, Guard, Rule};
use super::sync::{blocking, capture, short, Mirror};
use super::WatchError;
use crate::engine::Engine;

/// Arguments per `rm` exec, well under any ARG_MAX.
const RM_CHUNK_BYTES: usize = 64 * 1024;

/// Every mount point inside a copying rule's target: the last guard of `remove`.
pub(super) fn all_mounts(rules: &[&Rule]) -> Vec<String> {
    rules.iter().flat_map(|r| r.guard.mounts.clone()).collect()
}

/// Removes what the container has under `container` (the host's `host`)
/// that the host lacks and the rule does not skip.
pub(super) async fn prune_at(
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
pub(super) async fn prune_gone(
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
pub(super) async fn remove(
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
}
