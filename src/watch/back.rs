//! Copying back (sync mode): files the container makes or changes under a
//! synced path (`artisan make:*`, `composer require`, `vendor:publish`) are
//! written into the checkout, owned by the user running devenv, so a re-sync
//! never deletes them and the editor sees them.
//!
//! Each collect runs one `find -newer MARK` in the container, MARK being a
//! file touched at every collect (the watcher collects every second; every
//! whole-tree sync collects first). What it names — files and links outside
//! skipped paths and mounts — is downloaded through the Engine API. devenv's
//! own uploads are known by their size and mtime and skipped. A file the host
//! changed too is a conflict: the host's copy stays (and goes back into the
//! container), the container's is saved beside it as `NAME.from-container`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::courier::Couriers;
use super::plan::Rule;
use super::sync::{self, Mirror, Owner, Stats};
use super::WatchError;
use crate::engine::Engine;

/// Where the mark lives in the container; /tmp is writable by any user.
pub(super) const MARK: &str = "/tmp/.devenv-sync-mark";

/// Lists files changed since the last collect under each target (none the
/// first time: that run only sets the mark; the next mark is named by the
/// shell's pid, as a `restart` may collect while a watcher does),
/// NUL-separated: `s SIZE MTIME PATH` where find can say so (GNU), else
/// `p PATH`. The mark is set a second back: busybox's `find -newer` compares
/// whole seconds, so a file made in the mark's own second would never be
/// listed (and a later whole-tree sync would prune it). A file listed twice
/// is known by its size and mtime (or its content) and skipped.
pub(super) const SCRIPT: &str = r#"m=$1; shift
{ s=$(date +%s) && touch -d "@$((s - 1))" "$m.$$"; } 2>/dev/null || touch "$m.$$" || exit 3
if [ -e "$m" ]; then
  for t; do
    [ -d "$t" ] || continue
    find "$t" -newer "$m" ! -type d -printf 's %s %T@ %p\0' 2>/dev/null ||
      find "$t" -newer "$m" ! -type d -exec printf 'p %s\0' {} +
  done
fi
mv -f "$m.$$" "$m""#;

/// One listed path, with its size and whole-second mtime when known.
fn parse_item(item: &[u8]) -> Option<(String, Option<(u64, u64)>)> {
    let text = String::from_utf8_lossy(item);
    if let Some(path) = text.strip_prefix("p ") {
        return Some((path.to_string(), None));
    }
    let mut parts = text.strip_prefix("s ")?.splitn(3, ' ');
    let size = parts.next()?.parse().ok()?;
    let mtime = parts.next()?.split('.').next()?.parse().ok()?;
    Some((parts.next()?.to_string(), Some((size, mtime))))
}

/// One file as the container has it.
struct Found {
    data: Vec<u8>,
    link: Option<PathBuf>,
    mode: u32,
    mtime: u64,
}

/// Copies what the container changed since the last collect to the host.
/// With `owner`, the host's side of each conflict is uploaded again at once
/// (a whole-tree sync uploads everything anyway and passes `None`). The
/// look's answer is `listed` when it already ran ([`super::courier::look`]);
/// else it goes through `couriers` (an exec when they cannot).
pub async fn collect(
    engine: &Engine,
    id: &str,
    rules: &[&Rule],
    mirror: &mut Mirror,
    owner: Option<Owner>,
    mut couriers: Option<&mut Couriers>,
    listed: Option<(i64, Vec<u8>)>,
) -> Result<Stats, WatchError> {
    let mut stats = Stats::default();
    let targets: Vec<&str> = rules.iter().filter_map(|r| r.target.as_deref()).collect();
    if targets.is_empty() {
        return Ok(stats);
    }
    let looked = match (listed, couriers.as_deref_mut()) {
        (Some(answer), _) => Some(answer),
        (None, Some(c)) => c.changed().await,
        (None, None) => None,
    };
    let (code, out) = match looked {
        Some(answer) => answer,
        None => {
            let mut args = vec![MARK];
            args.extend(&targets);
            sync::capture(engine, id, SCRIPT, &args).await?
        }
    };
    if code != 0 {
        return Err(WatchError::Container {
            id: sync::short(id),
            what: "looking for files the container changed".into(),
            detail: String::from_utf8_lossy(&out).trim().to_string(),
        });
    }
    let mut push_back = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in out.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        let Some((container, stat)) = parse_item(item) else {
            continue;
        };
        // devenv's own upload, known without downloading it.
        if !seen.insert(container.clone())
            || stat.is_some_and(|s| mirror.last.get(&container) == Some(&s))
        {
            continue;
        }
        let Some((rule, host)) = host_path(rules, &container) else {
            continue;
        };
        if rule.guard.in_mount(&container) || rule.filter.is_ignored(&host, false) {
            continue;
        }
        let Some(found) = download(engine, id, &container).await? else {
            continue;
        };
        let size = found.data.len() as u64;
        // devenv's own upload: the container did not change it.
        if mirror.last.get(&container) == Some(&(size, found.mtime)) {
            continue;
        }
        let host_meta = std::fs::symlink_metadata(&host).ok();
        let same = host_meta.is_some()
            && match &found.link {
                Some(to) => std::fs::read_link(&host).ok().as_ref() == Some(to),
                None => std::fs::read(&host).ok().as_deref() == Some(found.data.as_slice()),
            };
        if same {
            mirror.note(&container, size, found.mtime);
            continue;
        }
        // The host's copy is as devenv last put it there: the container's change wins.
        let host_unchanged = match (&host_meta, mirror.last.get(&container)) {
            (None, None) => true,
            (Some(m), Some(&(s, t))) => m.len() == s && secs(m.modified().ok()) == t,
            _ => false,
        };
        let write_to = if host_unchanged {
            host.clone()
        } else {
            beside(&host)
        };
        let mtime = found.mtime;
        let path = write_to.clone();
        let written = sync::blocking(move || write(&path, &found)).await?;
        mirror.echo.insert(
            write_to.clone(),
            (written.len(), written.modified().unwrap_or(UNIX_EPOCH)),
        );
        if host_unchanged {
            mirror.note(&container, size, mtime);
            stats.copied_back += 1;
        } else {
            stats.conflicts.push((host.clone(), write_to));
            push_back.push(container);
        }
    }
    if let (Some(owner), false) = (owner, push_back.is_empty()) {
        let paths: Vec<super::plan::SyncPath> = push_back
            .iter()
            .filter_map(|c| {
                let (rule, host) = host_path(rules, c)?;
                let index = rules.iter().position(|r| std::ptr::eq(*r, rule))?;
                Some(super::plan::SyncPath {
                    rule: index,
                    host,
                    container: c.clone(),
                })
            })
            .collect();
        sync::apply(engine, id, owner, rules, &paths, mirror, couriers).await?;
    }
    Ok(stats)
}

/// The rule whose target holds `container` (the deepest) and the host path.
fn host_path<'a>(rules: &[&'a Rule], container: &str) -> Option<(&'a Rule, PathBuf)> {
    let (rule, rel) = rules
        .iter()
        .filter_map(|r| {
            let rel = Path::new(container)
                .strip_prefix(r.target.as_deref()?)
                .ok()?;
            Some((*r, rel.to_path_buf()))
        })
        .max_by_key(|(r, _)| r.target.as_deref().map_or(0, str::len))?;
    // Never outside the rule's folder.
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some((rule, rule.path.join(rel)))
}

/// `NAME.from-container`, or `NAME.from-container-2`… when taken.
fn beside(host: &Path) -> PathBuf {
    let name = host.file_name().unwrap_or_default().to_string_lossy();
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            host.with_file_name(format!("{name}.from-container{suffix}"))
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some name is free")
}

/// Writes the container's file at `path` (through a temporary file renamed
/// over it, so an editor never sees half of it), with its mode and mtime.
fn write(path: &Path, found: &Found) -> Result<std::fs::Metadata, WatchError> {
    let io = |source| WatchError::Read {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match &found.link {
        #[cfg(unix)]
        Some(to) => {
            std::os::unix::fs::symlink(to, path).map_err(io)?;
        }
        #[cfg(not(unix))]
        Some(_) => {}
        None => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let tmp = path.with_file_name(format!(".{name}.devenv-tmp"));
            std::fs::write(&tmp, &found.data).map_err(io)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = found.mode & 0o777;
                let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode));
            }
            let file = std::fs::File::options()
                .write(true)
                .open(&tmp)
                .map_err(io)?;
            let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(found.mtime));
            drop(file);
            std::fs::rename(&tmp, path).map_err(io)?;
        }
    }
    std::fs::symlink_metadata(path).map_err(io)
}

/// The file at `path` in the container, or `None` when it is gone or not a
/// file or link.
async fn download(engine: &Engine, id: &str, path: &str) -> Result<Option<Found>, WatchError> {
    let Some(tar) = engine.download_archive(id, path).await? else {
        return Ok(None);
    };
    sync::blocking(move || {
        let unreadable = |source| WatchError::Archive { source };
        let mut archive = tar::Archive::new(tar.as_slice());
        let Some(entry) = archive.entries().map_err(unreadable)?.next() else {
            return Ok(None);
        };
        let mut entry = entry.map_err(unreadable)?;
        let header = entry.header();
        let (mode, mtime) = (
            header.mode().unwrap_or(0o644),
            header.mtime().unwrap_or_default(),
        );
        let kind = header.entry_type();
        let found = if kind.is_symlink() {
            let to = entry
                .link_name()
                .map_err(unreadable)?
                .map(|l| l.into_owned());
            Found {
                data: Vec::new(),
                link: to,
                mode,
                mtime,
            }
        } else if kind.is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(unreadable)?;
            Found {
                data,
                link: None,
                mode,
                mtime,
            }
        } else {
            return Ok(None);
        };
        Ok(Some(found))
    })
    .await
}

fn secs(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_items_carry_size_and_mtime_when_find_can_print_them() {
        assert_eq!(
            parse_item(b"s 12 1700000000.123 /srv/a b.php"),
            Some(("/srv/a b.php".into(), Some((12, 1_700_000_000))))
        );
        assert_eq!(parse_item(b"p /srv/x"), Some(("/srv/x".into(), None)));
        assert_eq!(parse_item(b"garbage"), None);
    }

    #[test]
    fn conflict_copies_get_a_free_name_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("web.php");
        std::fs::write(&f, "host").unwrap();
        assert_eq!(beside(&f), dir.path().join("web.php.from-container"));
        std::fs::write(dir.path().join("web.php.from-container"), "old").unwrap();
        assert_eq!(beside(&f), dir.path().join("web.php.from-container-2"));
    }

    #[test]
    fn written_files_keep_the_containers_mode_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app/Http/X.php");
        let meta = write(
            &path,
            &Found {
                data: b"<?php\n".to_vec(),
                link: None,
                mode: 0o640,
                mtime: 1_700_000_000,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"<?php\n");
        assert_eq!(secs(meta.modified().ok()), 1_700_000_000);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }
}
