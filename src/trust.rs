//! `devenv trust`: devenv's local CA ([`crate::ca`]) into the trust stores
//! that check `https://NAME.localhost` (issue 28), as mkcert does: the
//! system's (Debian's `/usr/local/share/ca-certificates` +
//! `update-ca-certificates`) and the browsers' NSS databases (Chrome's
//! `~/.pki/nssdb`, Firefox profiles) through `certutil`. Where devenv cannot
//! (no root, no `certutil`, another system), it says exactly what to run.
//!
//! Everything it adds carries a name made from the CA's own fingerprint,
//! and `--uninstall` removes that name only: never another certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ca::{Ca, CA_NAME};

/// Where the trust stores are; [`Stores::here`] finds this machine's.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Debian's folder of extra system CAs, when it exists.
    pub system_dir: Option<PathBuf>,
    /// `update-ca-certificates`, when on PATH.
    pub update: Option<PathBuf>,
    /// Whether this process may write the system store (root).
    pub root: bool,
    /// NSS databases (folders holding `cert9.db`).
    pub nss: Vec<PathBuf>,
    /// `certutil`, when on PATH.
    pub certutil: Option<PathBuf>,
}

/// What one step did, or what the user should do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Done(String),
    Todo(String),
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Stores {
    pub fn here() -> Stores {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut nss = Vec::new();
        if let Some(home) = &home {
            let chrome = home.join(".pki/nssdb");
            if chrome.join("cert9.db").exists() {
                nss.push(chrome);
            }
            for profiles in [
                home.join(".mozilla/firefox"),
                home.join("snap/firefox/common/.mozilla/firefox"),
            ] {
                if let Ok(entries) = std::fs::read_dir(&profiles) {
                    let mut found: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.join("cert9.db").exists())
                        .collect();
                    found.sort();
                    nss.extend(found);
                }
            }
        }
        let system = PathBuf::from("/usr/local/share/ca-certificates");
        Stores {
            system_dir: system.is_dir().then_some(system),
            update: on_path("update-ca-certificates"),
            root: rustix::process::geteuid().is_root(),
            nss,
            certutil: on_path("certutil"),
        }
    }
}

/// The CA's short fingerprint: what names it in every store.
pub fn fingerprint(ca: &Ca) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(ca.cert_pem.as_bytes());
    d[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The file name in the system store and the NSS nickname.
pub fn names(ca: &Ca) -> (String, String) {
    let f = fingerprint(ca);
    (format!("devenv-{f}.crt"), format!("{CA_NAME} {f}"))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Installs the CA where it can; says what to do elsewhere.
pub fn install(ca: &Ca, stores: &Stores) -> Vec<Step> {
    let (file, nick) = names(ca);
    let cert = ca.cert_path();
    let mut steps = Vec::new();
    match (&stores.system_dir, stores.root) {
        (Some(dir), true) => {
            let target = dir.join(&file);
            match std::fs::write(&target, &ca.cert_pem) {
                Ok(()) => steps.push(system_update(
                    stores,
                    &format!("added `{}`", target.display()),
                )),
                Err(e) => steps.push(Step::Todo(format!(
                    "could not write `{}` ({e}): sudo cp {} {}",
                    target.display(),
                    cert.display(),
                    target.display()
                ))),
            }
        }
        (Some(dir), false) => steps.push(Step::Todo(format!(
            "system store (needs root): sudo cp {} {} && sudo update-ca-certificates",
            cert.display(),
            dir.join(&file).display()
        ))),
        (None, _) => steps.push(Step::Todo(other_systems(&cert))),
    }
    nss(stores, &mut steps, |certutil, db| {
        Command::new(certutil)
            .arg("-A")
            .arg("-d")
            .arg(format!("sql:{}", db.display()))
            .args(["-t", "C,,", "-n", &nick, "-i"])
            .arg(&cert)
            .output()
    }, "trusted in", &format!(
        "install `certutil` (Debian: `apt-get install libnss3-tools`), then run `devenv trust` again; or import {} in the browser's certificate settings",
        cert.display()
    ));
    steps
}

/// Removes what [`install`] added: the one file, the one nickname.
pub fn uninstall(ca: &Ca, stores: &Stores) -> Vec<Step> {
    let (file, nick) = names(ca);
    let mut steps = Vec::new();
    if let Some(dir) = &stores.system_dir {
        let target = dir.join(&file);
        if target.exists() {
            if stores.root {
                match std::fs::remove_file(&target) {
                    Ok(()) => steps.push(system_update(
                        stores,
                        &format!("removed `{}`", target.display()),
                    )),
                    Err(e) => steps.push(Step::Todo(format!(
                        "could not remove `{}` ({e}): sudo rm {} && sudo update-ca-certificates --fresh",
                        target.display(),
                        target.display()
                    ))),
                }
            } else {
                steps.push(Step::Todo(format!(
                    "system store (needs root): sudo rm {} && sudo update-ca-certificates --fresh",
                    target.display()
                )));
            }
        }
    }
    nss(stores, &mut steps, |certutil, db| {
        Command::new(certutil)
            .arg("-D")
            .arg("-d")
            .arg(format!("sql:{}", db.display()))
            .args(["-n", &nick])
            .output()
    }, "removed from", &format!(
        "install `certutil` (Debian: `apt-get install libnss3-tools`) and run `devenv trust --uninstall` again, or delete `{nick}` in the browser's certificate settings"
    ));
    steps
}

fn system_update(stores: &Stores, what: &str) -> Step {
    match &stores.update {
        Some(update) => match run(&mut Command::new(update)) {
            Ok(()) => Step::Done(format!(
                "system store: {what}, ran `update-ca-certificates`"
            )),
            Err(e) => Step::Todo(format!(
                "system store: {what}, but `update-ca-certificates` failed ({e}): run it as root"
            )),
        },
        None => Step::Todo(format!(
            "system store: {what}; run `update-ca-certificates` as root (not found on PATH)"
        )),
    }
}

fn other_systems(cert: &Path) -> String {
    let c = cert.display();
    format!(
        "no Debian-style system store here; add {c} by hand: Fedora/RHEL `sudo cp {c} /etc/pki/ca-trust/source/anchors/ && sudo update-ca-trust`, macOS `sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {c}`"
    )
}

fn nss(
    stores: &Stores,
    steps: &mut Vec<Step>,
    act: impl Fn(&Path, &Path) -> std::io::Result<std::process::Output>,
    done: &str,
    without: &str,
) {
    if stores.nss.is_empty() {
        return;
    }
    let Some(certutil) = &stores.certutil else {
        steps.push(Step::Todo(format!(
            "browsers ({} NSS database{}): {without}",
            stores.nss.len(),
            if stores.nss.len() == 1 { "" } else { "s" }
        )));
        return;
    };
    for db in &stores.nss {
        match act(certutil, db) {
            Ok(out) if out.status.success() => {
                steps.push(Step::Done(format!("browsers: {done} `{}`", db.display())))
            }
            Ok(out) => steps.push(Step::Todo(format!(
                "browsers: `certutil` failed on `{}`: {}",
                db.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
            Err(e) => steps.push(Step::Todo(format!(
                "browsers: `certutil` failed on `{}`: {e}",
                db.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn stores(system: &Path) -> Stores {
        Stores {
            system_dir: Some(system.to_path_buf()),
            update: None,
            root: true,
            nss: Vec::new(),
            certutil: None,
        }
    }

    #[test]
    fn r28_uninstall_removes_only_devenvs_own_certificate() {
        let ca_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(ca_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ca = crate::ca::load_or_create_in(ca_dir.path()).unwrap();
        let system = tempfile::tempdir().unwrap();
        let others = ["corp-root.crt", "devenv-000000000000.crt", "devenv.crt"];
        for o in others {
            std::fs::write(system.path().join(o), "someone else's").unwrap();
        }
        let s = stores(system.path());
        let steps = install(&ca, &s);
        let (file, _) = names(&ca);
        assert_eq!(
            std::fs::read_to_string(system.path().join(&file)).unwrap(),
            ca.cert_pem
        );
        assert!(matches!(&steps[0], Step::Todo(t) if t.contains("update-ca-certificates")));
        uninstall(&ca, &s);
        assert!(!system.path().join(&file).exists());
        for o in others {
            assert_eq!(
                std::fs::read_to_string(system.path().join(o)).unwrap(),
                "someone else's",
                "{o} is not devenv's to remove"
            );
        }
        let key = std::fs::read_to_string(ca_dir.path().join(crate::ca::KEY_FILE)).unwrap();
        for step in steps {
            let (Step::Done(t) | Step::Todo(t)) = step;
            assert!(!t.contains(key.lines().nth(1).unwrap()));
        }
    }

    #[test]
    fn r28_without_root_or_certutil_it_says_what_to_run() {
        let ca_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(ca_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ca = crate::ca::load_or_create_in(ca_dir.path()).unwrap();
        let system = tempfile::tempdir().unwrap();
        let mut s = stores(system.path());
        s.root = false;
        s.nss = vec![system.path().join("nssdb")];
        let steps = install(&ca, &s);
        assert_eq!(std::fs::read_dir(system.path()).unwrap().count(), 0);
        let todo: Vec<String> = steps
            .into_iter()
            .map(|s| match s {
                Step::Todo(t) => t,
                Step::Done(t) => panic!("nothing can be done here, yet: {t}"),
            })
            .collect();
        assert!(
            todo[0].starts_with("system store (needs root): sudo cp "),
            "{todo:?}"
        );
        assert!(todo[1].contains("libnss3-tools"), "{todo:?}");
    }
}
