//! The tar archive a sync uploads: host paths read now, never through a
//! link ([`super::beneath`]), keyed by container path, owned by the user the
//! container runs as, with their modes and mtimes.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::beneath::{self, Blocked, Kind, Meta};
use super::names;
use super::sync::{Mirror, Owner, Skip};
use super::WatchError;

/// A tar archive under construction, entries keyed by container path so a
/// path reached twice (two rules, a file inside a new folder) goes in once.
pub(super) struct Archive {
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
    pub(super) fn new(owner: Owner) -> Archive {
        Archive {
            owner,
            entries: IndexMap::new(),
            files: 0,
            skipped: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn key(&self, i: usize) -> &str {
        self.entries.get_index(i).map_or("", |(k, _)| k.as_str())
    }

    /// Reads `host` (under the rule's folder `root`) now, never through a
    /// link ([`beneath`]); a path that vanished meanwhile is noted as gone,
    /// one whose folder became a link is left out and said so, a FIFO or
    /// device is left out.
    pub(super) fn add(
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
    pub(super) fn skip(&mut self, root: &Path, host: &Path, why: &Blocked) {
        self.skipped.push(Skip {
            path: host.strip_prefix(root).unwrap_or(host).to_path_buf(),
            why: format!("not synced: {}", why.describe(root)),
        });
    }

    /// Notes in `mirror` what went in (all but `refused`, by container
    /// path); the files that did and what was left out.
    pub(super) fn noted(
        self,
        mirror: &mut Mirror,
        refused: &[(String, String)],
    ) -> (usize, Vec<Skip>) {
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
    pub(super) fn finish(
        &self,
        range: std::ops::Range<usize>,
    ) -> Result<Option<Vec<u8>>, WatchError> {
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
    use crate::watch::plan::container_path;

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
}
