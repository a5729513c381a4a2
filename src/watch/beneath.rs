//! Host files under a sync rule's folder, reached without following a
//! symlink at any depth. The container decides which paths come back and
//! can make links in the checkout, so a path such as `esc/pwn`, written or
//! read by name, could run through a link `esc -> /home/you` and out of the
//! checkout. Here every folder from the rule's root down is opened with
//! `O_NOFOLLOW | O_DIRECTORY` relative to the one before (`openat`), and the
//! last name is read, written or renamed relative to its folder, so a link
//! swapped in between two steps stops the walk rather than redirects it.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// Why a path under the root was not reached.
#[derive(Debug)]
pub enum Blocked {
    /// This host path is a symlink (or not a folder) where a folder was
    /// needed: devenv does not go through it.
    Link(PathBuf),
    Io(io::Error),
}

impl Blocked {
    /// One line for a report.
    pub fn describe(&self, root: &Path) -> String {
        match self {
            Blocked::Link(p) => {
                let shown = p.strip_prefix(root).unwrap_or(p);
                format!(
                    "`{}` on the host is a symlink or not a folder, and devenv never goes through one",
                    shown.display()
                )
            }
            Blocked::Io(e) => e.to_string(),
        }
    }
}

impl From<io::Error> for Blocked {
    fn from(e: io::Error) -> Blocked {
        Blocked::Io(e)
    }
}

/// What devenv needs to know of one entry (never following it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub mtime: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Link,
    /// A FIFO, socket or device: never read, never synced.
    Other,
}

impl Meta {
    pub fn secs(&self) -> u64 {
        self.mtime
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The folder `rel` below `root` (`root` itself when `rel` is empty), each
/// step opened without following a link; with `create`, missing folders
/// are made on the way.
pub fn open_dir(root: &Path, rel: &Path, create: bool) -> Result<OwnedFd, Blocked> {
    let mut fd = rustix::fs::openat(CWD, root, DIR, Mode::empty())
        .map_err(|e| blocked(e, root.to_path_buf()))?;
    let mut at = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err(Blocked::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` leaves the synced folder", rel.display()),
            )));
        };
        at.push(name);
        let mut next = rustix::fs::openat(&fd, name, DIR, Mode::empty());
        if create && matches!(next, Err(Errno::NOENT)) {
            match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(Blocked::Io(e.into())),
            }
            next = rustix::fs::openat(&fd, name, DIR, Mode::empty());
        }
        fd = next.map_err(|e| blocked(e, at.clone()))?;
    }
    Ok(fd)
}

/// `O_NOFOLLOW` on a link answers `ELOOP` (`EMLINK` on FreeBSD),
/// `O_DIRECTORY` on anything else `ENOTDIR`.
fn blocked(e: Errno, at: PathBuf) -> Blocked {
    if e == Errno::LOOP || e == Errno::NOTDIR || e == Errno::MLINK {
        Blocked::Link(at)
    } else {
        Blocked::Io(e.into())
    }
}

/// `rel` split into its folder and its name; `None` for an empty path or
/// one that leaves the root.
pub fn split(rel: &Path) -> Option<(&Path, &OsStr)> {
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some((rel.parent()?, rel.file_name()?))
}

/// What is at `path` (under `root`), reached without following a link;
/// `None` when it or a folder on the way is gone.
pub fn stat_path(root: &Path, path: &Path) -> Result<Option<Meta>, Blocked> {
    let rel = path.strip_prefix(root).map_err(|_| {
        Blocked::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not under `{}`", path.display(), root.display()),
        ))
    })?;
    let opened = |rel: &Path| match open_dir(root, rel, false) {
        Ok(dir) => Ok(Some(dir)),
        Err(Blocked::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(b) => Err(b),
    };
    let Some((parent, name)) = split(rel) else {
        return match opened(rel)? {
            Some(dir) => Ok(Some(stat_dir(&dir)?)),
            None => Ok(None),
        };
    };
    match opened(parent)? {
        Some(dir) => Ok(stat(&dir, name)?),
        None => Ok(None),
    }
}

/// The entry `name` in `dir`, not followed; `None` when there is none.
pub fn stat(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<Meta>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(meta(&st))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The folder itself.
pub fn stat_dir(dir: &OwnedFd) -> io::Result<Meta> {
    Ok(meta(&rustix::fs::fstat(dir)?))
}

#[allow(clippy::unnecessary_cast)] // the field types differ between targets
fn meta(st: &rustix::fs::Stat) -> Meta {
    let kind = match FileType::from_raw_mode(st.st_mode as _) {
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        FileType::Symlink => Kind::Link,
        _ => Kind::Other,
    };
    let (secs, nanos) = (st.st_mtime as i64, st.st_mtime_nsec as u32);
    let mtime = if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    Meta {
        kind,
        size: st.st_size as u64,
        mode: st.st_mode as u32 & 0o7777,
        mtime,
    }
}

/// A regular file's content and what it was when read, not followed;
/// `None` when it is gone or not a regular file (a FIFO is never opened
/// for long: `O_NONBLOCK`).
pub fn read_file(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<(Meta, Vec<u8>)>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP | Errno::MLINK) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let m = meta(&rustix::fs::fstat(&fd)?);
    if m.kind != Kind::File {
        return Ok(None);
    }
    let mut data = Vec::with_capacity(m.size as usize);
    std::fs::File::from(fd).read_to_end(&mut data)?;
    Ok(Some((m, data)))
}

/// Where the link `name` in `dir` points; `None` when it is gone or not a link.
pub fn read_link(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<PathBuf>> {
    match rustix::fs::readlinkat(dir, name, Vec::new()) {
        Ok(to) => Ok(Some(PathBuf::from(OsStr::from_bytes(to.as_bytes())))),
        Err(Errno::NOENT | Errno::INVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What to put at a name.
pub enum Content<'a> {
    File {
        data: &'a [u8],
        mode: u32,
        mtime: u64,
    },
    Link(&'a Path),
}

/// Puts `content` at `name` in `dir` through a temporary name renamed over
/// it (an editor never sees half a file; a link or file there is replaced,
/// never written through). Returns what is there now.
pub fn put(dir: &OwnedFd, name: &OsStr, content: &Content) -> io::Result<Meta> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Short, so a name near the 255-byte limit still has a temporary one.
    let tmp = format!(
        ".devenv-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    let made = (|| -> io::Result<()> {
        match content {
            Content::Link(to) => rustix::fs::symlinkat(*to, dir, tmp.as_str())?,
            Content::File { data, mode, mtime } => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600))?;
                let mut file = std::fs::File::from(fd);
                file.write_all(data)?;
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
                // The container's mtime: the next look knows the file by it.
                let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(*mtime));
            }
        }
        rustix::fs::renameat(dir, tmp.as_str(), dir, name)?;
        Ok(())
    })();
    if let Err(e) = made {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return Err(e);
    }
    stat(dir, name)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_at_any_depth_stops_the_walk() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("a/esc")).unwrap();
        assert!(open_dir(root.path(), Path::new("a/b"), false).is_ok());
        for rel in ["a/esc", "a/esc/deeper"] {
            match open_dir(root.path(), Path::new(rel), true) {
                Err(Blocked::Link(p)) => assert_eq!(p, root.path().join("a/esc")),
                other => panic!("{rel}: {other:?}"),
            }
        }
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "nothing made outside"
        );
        assert!(matches!(
            open_dir(root.path(), Path::new("../x"), true),
            Err(Blocked::Io(_))
        ));
    }

    #[test]
    fn put_replaces_a_link_rather_than_writing_through_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "outside\n").unwrap();
        std::os::unix::fs::symlink(&secret, root.path().join("f")).unwrap();
        let dir = open_dir(root.path(), Path::new(""), false).unwrap();
        assert_eq!(read_file(&dir, OsStr::new("f")).unwrap(), None);
        let m = put(
            &dir,
            OsStr::new("f"),
            &Content::File {
                data: b"inside\n",
                mode: 0o640,
                mtime: 1_700_000_000,
            },
        )
        .unwrap();
        assert_eq!(
            (m.kind, m.mode, m.secs()),
            (Kind::File, 0o640, 1_700_000_000)
        );
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "outside\n");
        assert_eq!(
            std::fs::read_to_string(root.path().join("f")).unwrap(),
            "inside\n"
        );
        put(&dir, OsStr::new("l"), &Content::Link(Path::new("f"))).unwrap();
        assert_eq!(
            read_link(&dir, OsStr::new("l")).unwrap(),
            Some(PathBuf::from("f"))
        );
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file is left");
    }
}
