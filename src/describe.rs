//! `devenv describe`'s content (pure): per service the image, state,
//! readiness, URLs and host ports, and the connection details a GUI client
//! or an `.env` needs — host, port, database, user, password and a
//! ready-to-paste URL (`postgres://…`, `mysql://…`, `redis://…`, an S3
//! endpoint with its bucket and keys, SMTP with its mail UI). Secrets are
//! masked by the stack's [`Masker`](crate::config::Masker) unless revealed.
//!
//! The details come from what the service's container holds (its env and
//! command) when it exists: that is what a client must use, whatever the
//! stack file resolves to in this shell. A URL's user and password are
//! percent-encoded, so a password with `@`, `:` or `/` still pastes.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::model::{Service, Stack};
use crate::config::secret::{redis_password, MASK};
use crate::engine::{ContainerEnv, HostBinding};
use crate::lifecycle::ServiceStatus;
use crate::urls::Url;

/// One service as `describe` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub service: String,
    pub image: String,
    /// The container's state (`running`, `exited`), or `not created`.
    pub state: String,
    pub ready: bool,
    pub urls: Vec<Url>,
    pub ports: Vec<String>,
    /// What to connect with, in the order a client asks for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connection: Vec<Detail>,
}

/// One connection detail (`host`, `password`, `url`…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub key: &'static str,
    pub value: String,
    /// A password or key: masked whole unless revealed, whatever its value
    /// (the masker spares well-known defaults in other text, not here).
    #[serde(skip)]
    pub secret: bool,
}

/// What the engine reports of a project: each service's status, and what
/// each service's container holds (by service; see
/// [`crate::lifecycle::held_secrets`]).
pub struct Observed<'a> {
    pub status: &'a [ServiceStatus],
    pub held: &'a HashMap<String, ContainerEnv>,
}

impl<'a> Observed<'a> {
    /// The status alone, the details read from the stack file: enough
    /// where they are shown masked (the page's rows, polled, spare one
    /// more look per service; its reveal reads what the containers hold).
    pub fn status_only(status: &'a [ServiceStatus]) -> Observed<'a> {
        static NONE: std::sync::LazyLock<HashMap<String, ContainerEnv>> =
            std::sync::LazyLock::new(HashMap::new);
        Observed {
            status,
            held: &NONE,
        }
    }
}

/// Every service of `stack` in file order (then any the file no longer
/// names), with what the engine reports.
pub fn describe(stack: &Stack, seen: Observed<'_>, reveal: bool) -> Vec<Description> {
    let mut out: Vec<Description> = Vec::new();
    for (name, svc) in &stack.services {
        let st = seen.status.iter().find(|s| &s.service == name);
        out.push(one(stack, name, Some(svc), st, seen.held.get(name), reveal));
    }
    for st in seen.status {
        if !stack.services.contains_key(&st.service) {
            out.push(one(stack, &st.service, None, Some(st), None, reveal));
        }
    }
    out
}

fn one(
    stack: &Stack,
    name: &str,
    svc: Option<&Service>,
    st: Option<&ServiceStatus>,
    held: Option<&ContainerEnv>,
    reveal: bool,
) -> Description {
    let bindings = st.map(|s| s.bindings.as_slice()).unwrap_or_default();
    let mut connection = svc
        .map(|s| details(s, &Words::of(s, held), bindings))
        .unwrap_or_default();
    if !reveal {
        for d in &mut connection {
            d.value = if d.secret {
                MASK.to_string()
            } else {
                stack.masker.mask(&d.value).into_owned()
            };
        }
    }
    Description {
        service: name.to_string(),
        image: svc.map(|s| s.image.to_string()).unwrap_or_default(),
        state: st.map_or_else(|| "not created".to_string(), |s| s.state.clone()),
        ready: st.is_some_and(|s| s.ready),
        urls: st.map(|s| s.urls.clone()).unwrap_or_default(),
        ports: st.map(|s| s.ports.clone()).unwrap_or_default(),
        connection,
    }
}

/// The host and port a published container port is reached at from here:
/// the IPv4 binding first, a named address as it is, all addresses as
/// `127.0.0.1`.
fn reach(bindings: &[HostBinding], container: u16) -> Option<(String, u16)> {
    let mut found: Vec<&HostBinding> = bindings
        .iter()
        .filter(|b| b.container == container)
        .collect();
    found.sort_by_key(|b| b.host_ip.contains(':'));
    let b = found.first()?;
    let host = match b.host_ip.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
        ip if ip.contains(':') => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    Some((host, b.host))
}

/// A service's env and command as the details read them: its container's
/// when there is one, else the stack file's.
pub struct Words<'a> {
    env: HashMap<&'a str, &'a str>,
    command: &'a [String],
}

impl<'a> Words<'a> {
    pub fn of(svc: &'a Service, held: Option<&'a ContainerEnv>) -> Words<'a> {
        match held {
            Some(h) => Words {
                env: h
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                command: &h.command,
            },
            None => Words {
                env: svc
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.value.as_str()))
                    .collect(),
                command: svc.command.as_deref().unwrap_or_default(),
            },
        }
    }

    fn env(&self, key: &str) -> Option<&'a str> {
        self.env.get(key).copied().filter(|v| !v.is_empty())
    }
}

/// `text` percent-encoded for a URL's user info (RFC 3986): every byte
/// but the unreserved characters, so `@`, `:`, `/` and `#` in a password
/// cannot end the user info, the authority or the URL early.
fn userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn detail(key: &'static str, value: impl Into<String>) -> Detail {
    Detail {
        key,
        value: value.into(),
        secret: false,
    }
}

/// A password or key, masked whole unless revealed.
fn secret(key: &'static str, value: impl Into<String>) -> Detail {
    Detail {
        secret: true,
        ..detail(key, value)
    }
}

/// The service's kind, told by its image name, else by its container ports.
fn kind(svc: &Service) -> Option<&'static str> {
    let image = svc.image.to_string();
    let has = |port: u16| svc.ports.iter().any(|p| p.container == port);
    let kinds = [
        ("postgres", 5432),
        ("mysql", 3306),
        ("mariadb", 3306),
        ("redis", 6379),
        ("minio", 9000),
        ("mailhog", 1025),
        ("mailpit", 1025),
    ];
    kinds
        .iter()
        .find(|(word, _)| image.contains(word))
        .or_else(|| kinds.iter().find(|(_, port)| has(*port)))
        .map(|(word, _)| *word)
}

/// Connection details by kind (told by the stack file), read from `words`;
/// none for a service devenv does not know.
pub fn details(svc: &Service, words: &Words<'_>, bindings: &[HostBinding]) -> Vec<Detail> {
    match kind(svc) {
        Some("postgres") => database(words, bindings, 5432, "postgres", "POSTGRES"),
        Some("mysql" | "mariadb") => database(words, bindings, 3306, "mysql", "MYSQL"),
        Some("redis") => redis(words, bindings),
        Some("minio") => s3(words, bindings),
        Some(_) => smtp(bindings),
        None => Vec::new(),
    }
}

fn database(
    svc: &Words<'_>,
    bindings: &[HostBinding],
    port: u16,
    scheme: &str,
    prefix: &str,
) -> Vec<Detail> {
    let Some((host, port)) = reach(bindings, port) else {
        return Vec::new();
    };
    let root = if prefix == "MYSQL" {
        "root"
    } else {
        "postgres"
    };
    let user = svc.env(&format!("{prefix}_USER")).unwrap_or(root);
    let password = svc
        .env(&format!("{prefix}_PASSWORD"))
        .or_else(|| svc.env(&format!("{prefix}_ROOT_PASSWORD")))
        .unwrap_or_default();
    let db = svc
        .env(&format!("{prefix}_DB"))
        .or_else(|| svc.env(&format!("{prefix}_DATABASE")))
        .unwrap_or(user);
    vec![
        detail("host", &host),
        detail("port", port.to_string()),
        detail("database", db),
        detail("user", user),
        secret("password", password),
        detail(
            "url",
            format!(
                "{scheme}://{}:{}@{host}:{port}/{db}",
                userinfo(user),
                userinfo(password)
            ),
        ),
    ]
}

fn redis(svc: &Words<'_>, bindings: &[HostBinding]) -> Vec<Detail> {
    let Some((host, port)) = reach(bindings, 6379) else {
        return Vec::new();
    };
    let password = redis_password(svc.command, |k| svc.env(k)).unwrap_or_default();
    let url = if password.is_empty() {
        format!("redis://{host}:{port}")
    } else {
        format!("redis://:{}@{host}:{port}", userinfo(password))
    };
    let mut out = vec![detail("host", &host), detail("port", port.to_string())];
    if !password.is_empty() {
        out.push(secret("password", password));
    }
    out.push(detail("url", url));
    out
}

fn s3(svc: &Words<'_>, bindings: &[HostBinding]) -> Vec<Detail> {
    let Some((host, port)) = reach(bindings, 9000) else {
        return Vec::new();
    };
    let mut out = vec![detail("endpoint", format!("http://{host}:{port}"))];
    if let Some(bucket) = svc
        .env("MINIO_DEFAULT_BUCKETS")
        .and_then(|b| b.split(',').next())
    {
        out.push(detail("bucket", bucket.split(':').next().unwrap_or(bucket)));
    }
    if let Some(user) = svc.env("MINIO_ROOT_USER") {
        out.push(detail("access key", user));
    }
    if let Some(password) = svc.env("MINIO_ROOT_PASSWORD") {
        out.push(secret("secret key", password));
    }
    if let Some((host, port)) = reach(bindings, 9001) {
        out.push(detail("console", format!("http://{host}:{port}")));
    }
    out
}

fn smtp(bindings: &[HostBinding]) -> Vec<Detail> {
    let Some((host, port)) = reach(bindings, 1025) else {
        return Vec::new();
    };
    let mut out = vec![
        detail("smtp host", &host),
        detail("smtp port", port.to_string()),
    ];
    if let Some((host, port)) = reach(bindings, 8025) {
        out.push(detail("mail UI", format!("http://{host}:{port}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(container: u16, ip: &str, host: u16) -> HostBinding {
        HostBinding {
            container,
            protocol: "tcp".into(),
            host_ip: ip.into(),
            host,
        }
    }

    #[test]
    fn the_ipv4_binding_is_the_one_to_reach_and_all_addresses_mean_loopback() {
        let b = [bind(5432, "::1", 15433), bind(5432, "127.0.0.1", 15432)];
        assert_eq!(reach(&b, 5432), Some(("127.0.0.1".into(), 15432)));
        assert_eq!(
            reach(&[bind(80, "0.0.0.0", 8080)], 80),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            reach(&[bind(80, "::1", 8080)], 80),
            Some(("[::1]".into(), 8080))
        );
        assert_eq!(reach(&b, 80), None);
    }

    /// The example's presets, whose passwords are the well-known defaults
    /// (`secret`, `password`, `minio`).
    const PRESETS: &str = "[project]\nname = \"shop\"\n\
        [services.db]\nuse = \"postgres\"\n[services.cache]\nuse = \"redis\"\n\
        [services.mail]\nuse = \"mailhog\"\n[services.s3]\nuse = \"minio\"\n\
        [services.app]\nuse = \"laravel\"\n";

    fn running(service: &str, bindings: Vec<HostBinding>) -> ServiceStatus {
        ServiceStatus {
            service: service.into(),
            container: "c".into(),
            name: format!("shop-{service}-1"),
            state: "running".into(),
            ready: true,
            ports: Vec::new(),
            urls: Vec::new(),
            bindings,
        }
    }

    /// `status` with no container's env: the details come from the file.
    fn seen(status: &[ServiceStatus]) -> Observed<'_> {
        Observed::status_only(status)
    }

    fn shown<'a>(all: &'a [Description], service: &str) -> Vec<(&'a str, &'a str)> {
        let d = all.iter().find(|d| d.service == service).unwrap();
        d.connection
            .iter()
            .map(|c| (c.key, c.value.as_str()))
            .collect()
    }

    #[test]
    fn passwords_are_masked_in_their_rows_and_well_known_ones_spare_the_labels() {
        let stack = crate::config::load_toml(PRESETS);
        let status = [
            running("db", vec![bind(5432, "127.0.0.1", 15432)]),
            running("s3", vec![bind(9000, "0.0.0.0", 19000)]),
        ];
        let all = describe(&stack, seen(&status), false);
        let db = shown(&all, "db");
        assert!(db.contains(&("password", MASK)), "{db:?}");
        assert!(
            db.contains(&("url", "postgres://app:********@127.0.0.1:15432/app")),
            "{db:?}"
        );
        let s3 = shown(&all, "s3");
        assert!(s3.contains(&("secret key", MASK)), "{s3:?}");
        // `minio` is the laravel preset's AWS_ACCESS_KEY_ID, a well-known
        // default: the image and the (non-secret) root user keep it.
        assert!(s3.contains(&("access key", "minio")), "{s3:?}");
        let image = &all.iter().find(|d| d.service == "s3").unwrap().image;
        assert!(image.starts_with("minio/minio"), "{image}");
        // The whole printed text keeps its labels and paths: nothing the
        // masker would hunt is a word of them.
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(stack.masker.mask(&json), json);
        assert_eq!(
            stack.masker.mask("GET /minio/health/live, secret key"),
            "GET /minio/health/live, secret key"
        );

        let revealed = describe(&stack, seen(&status), true);
        assert!(shown(&revealed, "db").contains(&("password", "secret")));
        assert!(shown(&revealed, "s3").contains(&("secret key", "password")));
    }

    #[test]
    fn any_other_password_is_still_hunted_everywhere() {
        let stack = crate::config::load_toml(&format!(
            "{PRESETS}[services.db.env]\nPOSTGRES_PASSWORD = \"Pg-9f2e-longer\"\n"
        ));
        let status = [running("db", vec![bind(5432, "127.0.0.1", 15432)])];
        let all = describe(&stack, seen(&status), false);
        let db = shown(&all, "db");
        assert!(db.contains(&("password", MASK)), "{db:?}");
        assert_eq!(
            stack.masker.mask("auth with Pg-9f2e-longer failed"),
            format!("auth with {MASK} failed")
        );
    }

    #[test]
    fn r_url_user_info_is_percent_encoded_and_still_masked() {
        assert_eq!(userinfo("p@ss:w/rd#1"), "p%40ss%3Aw%2Frd%231");
        assert_eq!(userinfo("A-z.0_9~"), "A-z.0_9~");
        assert_eq!(userinfo("é %?[]"), "%C3%A9%20%25%3F%5B%5D");
        let stack = crate::config::load_toml(
            r##"[project]
name = "shop"
[services.db]
use = "postgres"
env = { POSTGRES_USER = "a@b", POSTGRES_PASSWORD = "p@ss:w/rd#1", POSTGRES_DB = "app" }
[services.cache]
use = "redis"
command = ["redis-server", "--requirepass", "r:d/s@1#x"]
"##,
        );
        let status = [
            running("db", vec![bind(5432, "127.0.0.1", 15432)]),
            running("cache", vec![bind(6379, "127.0.0.1", 16379)]),
        ];
        let revealed = describe(&stack, seen(&status), true);
        assert!(shown(&revealed, "db").contains(&(
            "url",
            "postgres://a%40b:p%40ss%3Aw%2Frd%231@127.0.0.1:15432/app"
        )));
        assert!(shown(&revealed, "db").contains(&("password", "p@ss:w/rd#1")));
        assert!(shown(&revealed, "cache")
            .contains(&("url", "redis://:r%3Ad%2Fs%401%23x@127.0.0.1:16379")));
        let masked = describe(&stack, seen(&status), false);
        assert!(shown(&masked, "db")
            .contains(&("url", "postgres://a%40b:********@127.0.0.1:15432/app")));
        assert!(shown(&masked, "cache").contains(&("url", "redis://:********@127.0.0.1:16379")));
    }

    #[test]
    fn a_running_containers_env_and_command_win_over_the_file() {
        let stack = crate::config::load_toml(PRESETS);
        let status = [
            running("db", vec![bind(5432, "127.0.0.1", 15432)]),
            running("cache", vec![bind(6379, "127.0.0.1", 16379)]),
        ];
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let held = HashMap::from([
            (
                "db".to_string(),
                ContainerEnv {
                    env: vec![
                        pair("PATH", "/usr/bin"),
                        pair("POSTGRES_USER", "app"),
                        pair("POSTGRES_PASSWORD", "Trial42LongPass"),
                        pair("POSTGRES_DB", "app"),
                    ],
                    command: Vec::new(),
                },
            ),
            (
                "cache".to_string(),
                ContainerEnv {
                    env: vec![pair("REDIS_PASSWORD", "Rd-held-pw")],
                    command: vec!["redis-server".into()],
                },
            ),
        ]);
        let seen = Observed {
            status: &status,
            held: &held,
        };
        let revealed = describe(&stack, seen, true);
        let db = shown(&revealed, "db");
        assert!(db.contains(&("password", "Trial42LongPass")), "{db:?}");
        assert!(
            db.contains(&("url", "postgres://app:Trial42LongPass@127.0.0.1:15432/app")),
            "{db:?}"
        );
        let cache = shown(&revealed, "cache");
        assert!(cache.contains(&("password", "Rd-held-pw")), "{cache:?}");
        // Masked unless revealed, whatever they are.
        let seen = Observed {
            status: &status,
            held: &held,
        };
        let masked = describe(&stack, seen, false);
        assert!(shown(&masked, "db").contains(&("password", MASK)));
        assert!(
            shown(&masked, "db").contains(&("url", "postgres://app:********@127.0.0.1:15432/app"))
        );
    }
}
