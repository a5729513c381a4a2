//! devenv's own presets and stand-in build contexts, embedded at build time
//! and unpacked on demand to a cache folder named by their hash.

use std::io;
use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// An embedded file's content, by path (`stacks/postgres.toml`).
pub fn get(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

/// devenv's cache folder (`$XDG_CACHE_HOME/devenv`, else `~/.cache/devenv`):
/// where downloads and unpacked files go, never inside a checkout; no I/O.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("devenv")
}

/// Where the embedded files are (or will be) unpacked; no I/O.
pub fn dir() -> PathBuf {
    cache_dir().join(format!("assets-{HASH}"))
}

/// The folder a build's `prepare` script fills (as `$DEVENV_PREPARED`) and
/// devenv adds to its build context: in the cache folder, named by the
/// context folder's name and a hash of its path, so downloads (the
/// stand-ins' wheels) never land in the source tree, where `build.rs`
/// watches `docker/` and would rebuild devenv after every first `up`.
pub fn prepared_dir(context: &std::path::Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    context.hash(&mut hasher);
    let name = context
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "context".into());
    cache_dir()
        .join("prepared")
        .join(format!("{name}-{:016x}", hasher.finish()))
}

/// Unpacks the embedded files unless a previous run already did.
pub fn ensure() -> io::Result<PathBuf> {
    let dir = dir();
    if dir.is_dir() {
        return Ok(dir);
    }
    // Unpack beside the final folder and rename, so a half-written tree is never used.
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    for (path, content) in FILES {
        let dest = tmp.join(path);
        std::fs::create_dir_all(dest.parent().expect("embedded paths have a parent"))?;
        std::fs::write(&dest, content)?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another devenv unpacked the same files first: theirs is as good.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 26: the first `up` downloaded wheels into `docker/*/wheels`
    /// of the checkout, which `build.rs` watches.
    #[test]
    fn r26_prepared_files_land_outside_the_checkout() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let minio = repo.join("docker/minio");
        let dir = prepared_dir(&minio);
        assert!(dir.starts_with(cache_dir()), "{}", dir.display());
        assert!(!dir.starts_with(repo), "{}", dir.display());
        assert_ne!(dir, prepared_dir(&repo.join("docker/mailhog")));
        assert_eq!(
            dir,
            prepared_dir(&minio),
            "the same context, the same folder"
        );
        // The stand-ins' scripts write where devenv tells them.
        for script in ["docker/minio/prepare.sh", "docker/mailhog/prepare.sh"] {
            let text = String::from_utf8_lossy(get(script).unwrap());
            assert!(text.contains("${DEVENV_PREPARED"), "{script}");
        }
    }
}
