//! devenv's own presets and stand-in build contexts, embedded at build time
//! and unpacked on demand to a cache folder named by their hash.

use std::io;
use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// An embedded file's content, by path (`stacks/postgres.toml`).
pub fn get(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c)
}

/// Where the embedded files are (or will be) unpacked; no I/O.
pub fn dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("devenv").join(format!("assets-{HASH}"))
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
