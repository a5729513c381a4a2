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

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use super::beneath::{self, Blocked, Content, Kind};
use super::courier::Couriers;
use super::names;
use super::plan::{Rule, SyncPath};
use super::sync::{self, Mirror, Owner, Skip, Stats};
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

/// One listed path (its bytes kept, [`super::names`]), with its size and
/// whole-second mtime when known.
fn parse_item(item: &[u8]) -> Option<(String, Option<(u64, u64)>)> {
    if let Some(path) = item.strip_prefix(b"p ") {
        return Some((names::text(path).into_owned(), None));
    }
    let mut parts = item.strip_prefix(b"s ")?.splitn(3, |b| *b == b' ');
    let size = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let mtime = std::str::from_utf8(parts.next()?).ok()?;
    let mtime = mtime.split('.').next()?.parse().ok()?;
    Some((names::text(parts.next()?).into_owned(), Some((size, mtime))))
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
///
/// Nothing is written or read on the host through a symlink
/// ([`super::beneath`]): a path whose folder on the host is a link is
/// reported and skipped, and a link the container made comes back only
/// when it points inside the synced folder.
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
    let out = changed(engine, id, &targets, listed, couriers.as_deref_mut()).await?;
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
        match copy_back(engine, id, rules, mirror, &container).await? {
            Taken::Nothing => {}
            Taken::Copied => stats.copied_back += 1,
            Taken::Skipped(skip) => stats.skipped.push(skip),
            Taken::Conflict { host, saved } => {
                stats.conflicts.push((host, saved));
                push_back.push(container);
            }
        }
    }
    if let (Some(owner), false) = (owner, push_back.is_empty()) {
        let skipped = push(engine, id, owner, rules, &push_back, mirror, couriers).await?;
        stats.skipped.extend(skipped);
    }
    Ok(stats)
}

/// The look's answer, NUL-separated ([`SCRIPT`]): `listed` when it already
/// ran, else from the `couriers`, else (none, or they cannot) by an exec.
async fn changed(
    engine: &Engine,
    id: &str,
    targets: &[&str],
    listed: Option<(i64, Vec<u8>)>,
    couriers: Option<&mut Couriers>,
) -> Result<Vec<u8>, WatchError> {
    let looked = match (listed, couriers) {
        (Some(answer), _) => Some(answer),
        (None, Some(c)) => c.changed().await,
        (None, None) => None,
    };
    let (code, out) = match looked {
        Some(answer) => answer,
        None => {
            let mut args = vec![MARK];
            args.extend(targets);
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
    Ok(out)
}

/// What [`copy_back`] did with one path the container changed.
enum Taken {
    /// Nothing: a path the rule skips, under a mount, gone, devenv's own
    /// upload, or what the host already has.
    Nothing,
    Copied,
    /// Left out, and why (a link out of the synced folder, a host link).
    Skipped(Skip),
    /// The host changed it too: its copy stayed, the container's was saved.
    Conflict {
        host: PathBuf,
        saved: PathBuf,
    },
}

/// Brings the container's `container` to the host, unless it is devenv's
/// own upload or what the host already has; notes in `mirror` what it wrote.
async fn copy_back(
    engine: &Engine,
    id: &str,
    rules: &[&Rule],
    mirror: &mut Mirror,
    container: &str,
) -> Result<Taken, WatchError> {
    let Some((rule, rel)) = host_path(rules, container) else {
        return Ok(Taken::Nothing);
    };
    let host = rule.path.join(&rel);
    if rule.guard.in_mount(container) || rule.filter.is_ignored(&host, false) {
        return Ok(Taken::Nothing);
    }
    let Some(found) = download(engine, id, container).await? else {
        return Ok(Taken::Nothing);
    };
    let size = found.data.len() as u64;
    // devenv's own upload: the container did not change it.
    if mirror.last.get(container) == Some(&(size, found.mtime)) {
        return Ok(Taken::Nothing);
    }
    let target = rule.target.as_deref().unwrap_or_default();
    let link = match &found.link {
        Some(to) => match link_inside(target, container, to) {
            Some(to) => Some(to),
            None => {
                return Ok(Taken::Skipped(Skip {
                    path: rel,
                    why: format!(
                        "not copied back: a symlink to `{}`, outside the synced folder",
                        to.display()
                    ),
                }))
            }
        },
        None => None,
    };
    let (root, last, mtime) = (
        rule.path.clone(),
        mirror.last.get(container).copied(),
        found.mtime,
    );
    let (rel2, root2) = (rel.clone(), root.clone());
    let placed =
        sync::blocking(move || Ok(place(&root2, &rel2, &found, link.as_deref(), last))).await?;
    let (written, meta, conflict) = match placed {
        Ok(Placed::Same) => {
            mirror.note(container, size, mtime);
            return Ok(Taken::Nothing);
        }
        Ok(Placed::Written { at, meta, conflict }) => (at, meta, conflict),
        Err(blocked) => {
            return Ok(Taken::Skipped(Skip {
                path: rel,
                why: format!("not copied back: {}", blocked.describe(&root)),
            }))
        }
    };
    mirror.echo.insert(written.clone(), (meta.size, meta.mtime));
    if conflict {
        return Ok(Taken::Conflict {
            host,
            saved: written,
        });
    }
    mirror.note(container, size, mtime);
    Ok(Taken::Copied)
}

/// Uploads the host's side of each conflict (by container path) again at
/// once, so the container ends up with the copy the host kept; what that
/// left out.
async fn push(
    engine: &Engine,
    id: &str,
    owner: Owner,
    rules: &[&Rule],
    containers: &[String],
    mirror: &mut Mirror,
    couriers: Option<&mut Couriers>,
) -> Result<Vec<Skip>, WatchError> {
    let paths: Vec<SyncPath> = containers
        .iter()
        .filter_map(|c| {
            let (rule, rel) = host_path(rules, c)?;
            let index = rules.iter().position(|r| std::ptr::eq(*r, rule))?;
            Some(SyncPath {
                rule: index,
                host: rule.path.join(rel),
                container: c.clone(),
            })
        })
        .collect();
    let pushed = sync::apply(engine, id, owner, rules, &paths, mirror, couriers).await?;
    Ok(pushed.skipped)
}

/// The rule whose target holds `container` (the deepest) and the path
/// below the rule's folder (its bytes kept); never one that leaves it.
fn host_path<'a>(rules: &[&'a Rule], container: &str) -> Option<(&'a Rule, PathBuf)> {
    let (rule, rel) = rules
        .iter()
        .filter_map(|r| {
            let rel = Path::new(container)
                .strip_prefix(r.target.as_deref()?)
                .ok()?;
            Some((*r, rel.to_str()?.to_string()))
        })
        .max_by_key(|(r, _)| r.target.as_deref().map_or(0, str::len))?;
    let rel = names::host_path(&rel);
    // Never outside the rule's folder, never the folder itself.
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some((rule, rel))
}

/// Where a link the container made at `container` (under the rule's
/// `target`) may point on the host: its own target when that stays inside
/// the synced folder (an absolute one under `target`, such as Laravel's
/// `storage:link`, made relative), `None` when it leads out. Judged by the
/// name alone: `..` may never climb above the folder at any step.
fn link_inside(target: &str, container: &str, to: &Path) -> Option<PathBuf> {
    let rel = Path::new(container).strip_prefix(target).ok()?;
    let depth = rel.parent()?.components().count();
    // Where the link's own folder is, and what its target adds to that.
    let (start, rest) = match to.strip_prefix(target) {
        Ok(rest) => (0, rest),
        Err(_) if to.is_absolute() => return None,
        Err(_) => (depth, to),
    };
    let mut at = start;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rest.components() {
        match c {
            Component::Normal(n) => {
                at += 1;
                parts.push(n);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                at = at.checked_sub(1)?;
                parts.pop();
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if !to.is_absolute() {
        return Some(to.to_path_buf());
    }
    let mut out = PathBuf::new();
    for _ in 0..depth {
        out.push("..");
    }
    out.extend(parts);
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}

/// What [`place`] did.
enum Placed {
    /// The host already has it.
    Same,
    /// Written at `at`: over the host's copy, or beside it on a conflict.
    Written {
        at: PathBuf,
        meta: beneath::Meta,
        conflict: bool,
    },
}

/// Puts the container's `found` at `rel` under `root` on the host, never
/// through a link ([`beneath`]): over the host's copy when that is as
/// devenv last left it (`last`: size and mtime), else beside it as
/// `NAME.from-container`. `link` is where a link points on the host.
fn place(
    root: &Path,
    rel: &Path,
    found: &Found,
    link: Option<&Path>,
    last: Option<(u64, u64)>,
) -> Result<Placed, Blocked> {
    let (parent, name) = beneath::split(rel)
        .ok_or_else(|| Blocked::Io(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    // A folder the host does not have yet holds nothing to compare with.
    let dir = match beneath::open_dir(root, parent, false) {
        Ok(dir) => Some(dir),
        Err(Blocked::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(b) => return Err(b),
    };
    let host = match &dir {
        Some(d) => beneath::stat(d, name)?,
        None => None,
    };
    let same = match (&dir, host) {
        (Some(d), Some(m)) => match link {
            Some(to) => m.kind == Kind::Link && beneath::read_link(d, name)?.as_deref() == Some(to),
            None => {
                m.kind == Kind::File
                    && beneath::read_file(d, name)?.is_some_and(|(_, data)| data == found.data)
            }
        },
        _ => false,
    };
    if same {
        return Ok(Placed::Same);
    }
    // The host's copy is as devenv last put it there: the container's change wins.
    let unchanged = match (host, last) {
        (None, None) => true,
        (Some(m), Some((s, t))) => m.size == s && m.secs() == t,
        _ => false,
    };
    let dir = match dir {
        Some(d) => d,
        None => beneath::open_dir(root, parent, true)?,
    };
    let at = if unchanged {
        name.to_os_string()
    } else {
        beside(&dir, name)?
    };
    let content = match link {
        Some(to) => Content::Link(to),
        None => Content::File {
            data: &found.data,
            mode: found.mode,
            mtime: found.mtime,
        },
    };
    let meta = beneath::put(&dir, &at, &content)?;
    Ok(Placed::Written {
        at: root.join(parent).join(at),
        meta,
        conflict: !unchanged,
    })
}

/// `NAME.from-container`, or `NAME.from-container-2`… when taken, in `dir`.
fn beside(dir: &OwnedFd, name: &OsStr) -> std::io::Result<OsString> {
    for n in 1.. {
        let mut free = name.to_os_string();
        free.push(".from-container");
        if n > 1 {
            free.push(format!("-{n}"));
        }
        if beneath::stat(dir, &free)?.is_none() {
            return Ok(free);
        }
    }
    unreachable!("some name is free")
}

/// The file at `path` in the container, or `None` when it is gone or not a
/// file or link.
async fn download(engine: &Engine, id: &str, path: &str) -> Result<Option<Found>, WatchError> {
    let tar = if names::is_raw(path) {
        // The archive API takes a path as UTF-8 text: the container's own
        // `tar` names the file by its bytes (spelled for `printf`).
        let script = r#"p=$(printf "$1"; printf x); p=${p%x}; cd "${p%/*}/" 2>/dev/null && exec tar -cf - -- "${p##*/}" 2>/dev/null"#;
        let cmd = ["sh", "-c", script, "sh", &names::printf_format(path)];
        let mut out = Vec::new();
        let code = engine
            .exec_bytes(
                id,
                cmd.iter().map(|a| a.to_string()).collect(),
                Vec::new(),
                Some("0".into()),
                |b| out.extend_from_slice(b),
            )
            .await?;
        if code != 0 {
            return Ok(None);
        }
        out
    } else {
        match engine.download_archive(id, path).await? {
            Some(tar) => tar,
            None => return Ok(None),
        }
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
    fn listed_names_that_are_not_utf8_keep_their_bytes() {
        let (path, stat) = parse_item(b"s 4 1700000000.5 /srv/caf\xe9.txt").unwrap();
        assert_eq!(stat, Some((4, 1_700_000_000)));
        assert_eq!(&*names::bytes(&path), b"/srv/caf\xe9.txt");
    }

    #[test]
    fn a_link_comes_back_only_when_it_stays_inside_the_synced_folder() {
        let inside = |c: &str, to: &str| link_inside("/srv", c, Path::new(to));
        assert_eq!(inside("/srv/a/l", "b/c"), Some(PathBuf::from("b/c")));
        assert_eq!(inside("/srv/a/l", "../x"), Some(PathBuf::from("../x")));
        assert_eq!(inside("/srv/a/l", "../.."), None);
        assert_eq!(inside("/srv/l", "../srv/x"), None, "climbs out on the way");
        assert_eq!(inside("/srv/l", "/etc/passwd"), None);
        assert_eq!(inside("/srv/l", "/srv2/x"), None);
        assert_eq!(inside("/srv/l", "/home/me"), None);
        // Laravel's `storage:link` makes an absolute link inside the app.
        assert_eq!(
            inside("/srv/public/storage", "/srv/storage/app/public"),
            Some(PathBuf::from("../storage/app/public"))
        );
        assert_eq!(inside("/srv/l", "/srv"), Some(PathBuf::from(".")));
        assert_eq!(inside("/srv/l", "/srv/../etc"), None);
    }

    fn file(data: &[u8]) -> Found {
        Found {
            data: data.to_vec(),
            link: None,
            mode: 0o644,
            mtime: 1_700_000_000,
        }
    }

    /// A checkout whose `esc` is a link to a folder outside it.
    fn planted() -> (tempfile::TempDir, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "host secret\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("esc")).unwrap();
        (root, outside)
    }

    #[test]
    fn r22_copy_back_never_writes_through_a_host_link() {
        let (root, outside) = planted();
        for rel in ["esc/pwn.txt", "esc/deeper/pwn.txt"] {
            let placed = place(root.path(), Path::new(rel), &file(b"pwn\n"), None, None);
            assert!(
                matches!(&placed, Err(Blocked::Link(p)) if p == &root.path().join("esc")),
                "{rel}"
            );
        }
        let names: Vec<_> = std::fs::read_dir(outside.path())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "nothing written outside");
    }

    #[test]
    fn r22_a_file_named_like_one_outside_is_no_conflict() {
        let (root, outside) = planted();
        let placed = place(
            root.path(),
            Path::new("esc/secret.txt"),
            &file(b"container\n"),
            None,
            None,
        );
        assert!(matches!(placed, Err(Blocked::Link(_))));
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
            "host secret\n"
        );
        assert!(!outside.path().join("secret.txt.from-container").exists());
    }

    #[test]
    fn conflict_copies_get_a_free_name_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.php"), "host").unwrap();
        let placed = place(
            dir.path(),
            Path::new("web.php"),
            &file(b"c1"),
            None,
            Some((1, 1)),
        );
        assert!(matches!(placed, Ok(Placed::Written { conflict: true, .. })));
        let placed = place(
            dir.path(),
            Path::new("web.php"),
            &file(b"c2"),
            None,
            Some((1, 1)),
        );
        match placed {
            Ok(Placed::Written { at, conflict, .. }) => {
                assert!(conflict);
                assert_eq!(at, dir.path().join("web.php.from-container-2"));
            }
            _ => panic!("written beside"),
        }
        assert_eq!(std::fs::read(dir.path().join("web.php")).unwrap(), b"host");
        assert_eq!(
            std::fs::read(dir.path().join("web.php.from-container")).unwrap(),
            b"c1"
        );
    }

    #[test]
    fn written_files_keep_the_containers_mode_and_mtime_in_new_folders() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut found = file(b"<?php\n");
        found.mode = 0o640;
        let placed = place(dir.path(), Path::new("app/Http/X.php"), &found, None, None);
        assert!(matches!(
            placed,
            Ok(Placed::Written {
                conflict: false,
                ..
            })
        ));
        let path = dir.path().join("app/Http/X.php");
        assert_eq!(std::fs::read(&path).unwrap(), b"<?php\n");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(
            meta.modified().unwrap(),
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
        // The same again: nothing to do.
        let again = place(dir.path(), Path::new("app/Http/X.php"), &found, None, None);
        assert!(matches!(again, Ok(Placed::Same)));
    }
}
