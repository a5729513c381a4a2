//! Missing bind sources that `up --create-paths` makes: whether each is a
//! file or a folder, and whom it belongs to. Pure; the lifecycle makes them.
//!
//! The engine itself would make a missing source a root-owned folder, even
//! where the container expects a file (`./php.ini:/usr/local/etc/php/php.ini`
//! then fails with "Is a directory"). So the names decide: a name with an
//! extension (`php.ini`, `.env.local`) is a file, made empty; a plain name
//! (`data`, `conf.d`, `php8.2`) a folder; a dot-name without one (`.npmrc`,
//! `.cache`) could be either, and is refused with how to make it. Where the
//! image has the container path, the image decides (`Caddyfile` is a file
//! there, whatever its name says).

use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// A missing bind source to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewPath {
    pub path: PathBuf,
    /// Whom it is given to; none: it stays the invoking user's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// A numeric host owner, shown and serialised as `uid:gid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

impl Serialize for Owner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Who runs devenv, as observed: what it makes belongs to them, unless
/// they are root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invoker {
    /// Running as root (effective uid 0).
    pub root: bool,
    /// The user behind `sudo` (`SUDO_UID`/`SUDO_GID`), when root through it.
    pub sudo: Option<Owner>,
}

/// What a missing source is, by its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
    /// A dot-name without an extension (`.npmrc` or `.cache`?).
    Unsure,
}

/// The kind the host path's name and the container path's name say
/// together: a file if either says so, a folder if both do.
pub fn kind(source: &Path, target: &str) -> Kind {
    let names = [source.file_name(), Path::new(target).file_name()];
    let kinds: Vec<Kind> = names
        .into_iter()
        .flatten()
        .map(|n| name_kind(&n.to_string_lossy()))
        .collect();
    if kinds.contains(&Kind::File) {
        Kind::File
    } else if kinds.contains(&Kind::Unsure) {
        Kind::Unsure
    } else {
        Kind::Folder
    }
}

/// What is made for a missing source: what the image has at the container
/// path when it has it (a mount over it must be of the same kind), else what
/// the names say.
pub fn decide(names: Kind, in_image: Option<Kind>) -> Kind {
    in_image.unwrap_or(names)
}

fn name_kind(name: &str) -> Kind {
    let ext = Path::new(name).extension().map(|e| e.to_string_lossy());
    match ext {
        // `conf.d` and `php8.2` are folders by custom.
        Some(e) if e != "d" && e.chars().any(|c| c.is_ascii_alphabetic()) => Kind::File,
        None if name.starts_with('.') && name.len() > 1 => Kind::Unsure,
        _ => Kind::Folder,
    }
}

/// Whom a path made for a service with `user` belongs to: the invoking
/// user's own (nothing to do) unless devenv runs as root; then the user
/// behind `sudo`, else the service's numeric `user` (`1000` or
/// `1000:1000`; a lone uid is its own group, as in the usual images).
/// `Err` carries a user name that no host id stands for.
pub fn owner(invoker: &Invoker, user: Option<&str>) -> Result<Option<Owner>, String> {
    if !invoker.root {
        return Ok(None);
    }
    if let Some(sudo) = invoker.sudo {
        return Ok(Some(sudo));
    }
    let Some(user) = user else { return Ok(None) };
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    match (uid.parse(), gid.parse()) {
        (Ok(0), _) => Ok(None),
        (Ok(uid), Ok(gid)) => Ok(Some(Owner { uid, gid })),
        _ => Err(user.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r22_the_names_tell_a_file_from_a_folder() {
        let k = |s: &str, t: &str| kind(Path::new(s), t);
        assert_eq!(k("/p/php.ini", "/usr/local/etc/php/php.ini"), Kind::File);
        assert_eq!(k("/p/custom", "/etc/nginx/nginx.conf"), Kind::File);
        assert_eq!(k("/p/.env.local", "/app/.env.local"), Kind::File);
        assert_eq!(k("/p/data", "/data"), Kind::Folder);
        assert_eq!(k("/p/conf.d", "/etc/nginx/conf.d"), Kind::Folder);
        assert_eq!(k("/p/php8.2", "/etc/php/8.2"), Kind::Folder);
        assert_eq!(k("/p/.npmrc", "/root/.npmrc"), Kind::Unsure);
        assert_eq!(k("/p/cache", "/root/.cache"), Kind::Unsure);
    }

    #[test]
    fn r31_made_paths_go_to_the_user_behind_sudo_or_the_services_user() {
        let me = Invoker::default();
        assert_eq!(owner(&me, Some("1000:1000")), Ok(None), "mine already");
        let root = Invoker {
            root: true,
            sudo: None,
        };
        let o = |uid, gid| Ok(Some(Owner { uid, gid }));
        assert_eq!(owner(&root, Some("1000:1000")), o(1000, 1000));
        assert_eq!(owner(&root, Some("33")), o(33, 33));
        assert_eq!(owner(&root, Some("0:0")), Ok(None));
        assert_eq!(owner(&root, None), Ok(None));
        assert_eq!(owner(&root, Some("www-data")), Err("www-data".into()));
        let sudo = Invoker {
            root: true,
            sudo: Some(Owner {
                uid: 1001,
                gid: 1001,
            }),
        };
        assert_eq!(owner(&sudo, Some("1000:1000")), o(1001, 1001));
    }
}
