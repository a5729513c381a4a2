//! devenv's local certificate authority (issue 28): made once per user, as
//! mkcert does, in devenv's lasting private folder (never in a checkout),
//! and the certificates it issues for the router's names.
//!
//! The CA is `rootCA.pem` (the certificate, what `devenv trust` installs
//! and `--cacert` takes) and `rootCA-key.pem` (its key, mode 0600, read by
//! devenv alone and never printed). `DEVENV_CAROOT` names another folder,
//! as mkcert's `CAROOT` does. A leaf certificate is issued per project for
//! its names each time the router's configuration changes: it is cheap
//! (an ECDSA P-256 key) and keeps no state beside the CA.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

pub const CERT_FILE: &str = "rootCA.pem";
pub const KEY_FILE: &str = "rootCA-key.pem";
/// The CA's name as trust stores list it.
pub const CA_NAME: &str = "devenv local CA";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CaError {
    #[error("devenv's CA folder `{path}` is not usable: {source}")]
    #[diagnostic(
        code(devenv::ca::folder),
        help("devenv keeps its local CA in `$XDG_DATA_HOME/devenv/ca` (or `DEVENV_CAROOT`); it must be a folder of this user's, closed to others")
    )]
    Folder { path: String, source: io::Error },

    #[error("reading or writing `{path}` failed: {source}")]
    #[diagnostic(code(devenv::ca::io))]
    Io { path: String, source: io::Error },

    #[error("`{path}` is not a CA devenv can use: {message}")]
    #[diagnostic(
        code(devenv::ca::invalid),
        help("move the folder away (and run `devenv trust --uninstall` first if it was trusted); the next `up` makes a new CA")
    )]
    Invalid { path: String, message: String },

    #[error("making a certificate failed: {0}")]
    #[diagnostic(code(devenv::ca::issue))]
    Issue(String),
}

/// The folder the CA lives in; made (0700) if needed.
pub fn root() -> Result<PathBuf, CaError> {
    let folder_error = |path: &Path, source| CaError::Folder {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = std::env::var_os("DEVENV_CAROOT").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        crate::scratch::ensure_private(&dir).map_err(|e| folder_error(&dir, e))?;
        return Ok(dir);
    }
    let data = crate::scratch::data_dir().map_err(|e| folder_error(Path::new("devenv"), e))?;
    let dir = data.join("ca");
    crate::scratch::ensure_private(&dir).map_err(|e| folder_error(&dir, e))?;
    Ok(dir)
}

/// The CA: its certificate (public) and key (kept in memory, never shown).
pub struct Ca {
    pub dir: PathBuf,
    pub cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("key", &"<hidden>")
            .finish()
    }
}

/// A leaf certificate and its key, for the router alone.
pub struct Leaf {
    pub names: Vec<String>,
    /// The certificate followed by the CA's: the chain a server sends.
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("names", &self.names)
            .field("key_pem", &"<hidden>")
            .finish()
    }
}

/// The CA's certificate path, without making anything.
pub fn cert_path() -> Result<PathBuf, CaError> {
    Ok(root()?.join(CERT_FILE))
}

/// The user's CA, made on first use. Two devenvs making it at once agree
/// on one: the making happens under a lock in the CA's folder.
pub fn load_or_create() -> Result<Ca, CaError> {
    load_or_create_in(&root()?)
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn load_or_create_in(dir: &Path) -> Result<Ca, CaError> {
    let lock_path = dir.join(".lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    lock.lock().map_err(io_error(&lock_path))?;
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if !key_path.exists() {
        make(dir)?;
    }
    let key_pem = std::fs::read_to_string(&key_path).map_err(io_error(&key_path))?;
    let cert_pem = std::fs::read_to_string(&cert_path).map_err(io_error(&cert_path))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| CaError::Invalid {
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(Ca {
        dir: dir.to_path_buf(),
        cert_pem,
        key,
    })
}

/// The CA's parameters: the same every time, so that an issuer rebuilt from
/// them and the key names the certificate on disk (subject and key id).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "devenv");
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Dates `params` from `days_back` days ago to `days` days from today (UTC).
fn date(params: &mut CertificateParams, days_back: i64, days: i64) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let at = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(d.year().into(), d.month() as u8, d.day() as u8)
    };
    let from = today
        .checked_sub(jiff::Span::new().days(days_back))
        .unwrap_or(today);
    let to = today
        .checked_add(jiff::Span::new().days(days))
        .unwrap_or(today);
    (params.not_before, params.not_after) = (at(from), at(to));
}

fn make(dir: &Path) -> Result<(), CaError> {
    let key = KeyPair::generate().map_err(|e| CaError::Issue(e.to_string()))?;
    let mut params = ca_params();
    date(&mut params, 1, 3650);
    let cert = params
        .self_signed(&key)
        .map_err(|e| CaError::Issue(e.to_string()))?;
    // The key first, created 0600 and never replacing a file: a key readable
    // by others for even a moment would be a key anyone could sign with.
    let key_path = dir.join(KEY_FILE);
    let tmp = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    file.write_all(key.serialize_pem().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp))?;
    let cert_path = dir.join(CERT_FILE);
    std::fs::write(&cert_path, cert.pem()).map_err(io_error(&cert_path))?;
    // The key lands last: its presence is what says the CA is whole.
    std::fs::rename(&tmp, &key_path).map_err(io_error(&key_path))
}

impl Ca {
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// A certificate for `names` (DNS names; a `*.` one is a wildcard),
    /// valid from yesterday for 397 days (what browsers accept at most).
    pub fn issue(&self, names: &[String]) -> Result<Leaf, CaError> {
        let fail = |e: rcgen::Error| CaError::Issue(e.to_string());
        let key = KeyPair::generate().map_err(fail)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(fail)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "devenv");
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        date(&mut params, 1, 396);
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(fail)?;
        Ok(Leaf {
            names: names.to_vec(),
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private_temp() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn r28_the_key_is_0600_and_made_once() {
        let dir = private_temp();
        let ca = load_or_create_in(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the CA key must be readable by its owner alone"
        );
        let again = load_or_create_in(dir.path()).unwrap();
        assert_eq!(
            ca.cert_pem, again.cert_pem,
            "a second load must not make a new CA"
        );
    }

    #[test]
    fn r28_the_ca_lives_outside_any_project() {
        let home = private_temp();
        let root = {
            // Only this test reads these variables in this process's unit tests.
            let _guard = ENV.lock().unwrap();
            std::env::remove_var("DEVENV_CAROOT");
            let old = std::env::var_os("XDG_DATA_HOME");
            std::env::set_var("XDG_DATA_HOME", home.path());
            let r = root();
            match old {
                Some(v) => std::env::set_var("XDG_DATA_HOME", v),
                None => std::env::remove_var("XDG_DATA_HOME"),
            }
            r.unwrap()
        };
        assert_eq!(root, home.path().join("devenv/ca"));
        let cwd = std::env::current_dir().unwrap();
        assert!(
            !root.starts_with(&cwd),
            "the CA must never land in the checkout"
        );
    }

    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn r28_debug_never_shows_a_key() {
        let dir = private_temp();
        let ca = load_or_create_in(dir.path()).unwrap();
        let leaf = ca.issue(&["shop.localhost".into()]).unwrap();
        let key = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        for shown in [format!("{ca:?}"), format!("{leaf:?}")] {
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            assert!(!shown.contains(key.lines().nth(1).unwrap()), "{shown}");
        }
        assert!(leaf.chain_pem.ends_with(&ca.cert_pem));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
    }
}
