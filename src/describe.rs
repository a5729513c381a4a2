//! `devenv describe`'s content (pure): per service the image, state,
//! readiness, URLs and host ports, and the connection details a GUI client
//! or an `.env` needs — host, port, database, user, password and a
//! ready-to-paste URL (`postgres://…`, `mysql://…`, `redis://…`, an S3
//! endpoint with its bucket and keys, SMTP with its mail UI). Secrets are
//! masked by the stack's [`Masker`](crate::config::Masker) unless revealed.

use serde::Serialize;

use crate::config::model::{Service, Stack};
use crate::engine::HostBinding;
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
}

/// Every service of `stack` in file order (then any the file no longer
/// names), with what the engine reports in `status`.
pub fn describe(stack: &Stack, status: &[ServiceStatus], reveal: bool) -> Vec<Description> {
    let mut out: Vec<Description> = Vec::new();
    for (name, svc) in &stack.services {
        let st = status.iter().find(|s| &s.service == name);
        out.push(one(stack, name, Some(svc), st, reveal));
    }
    for st in status {
        if !stack.services.contains_key(&st.service) {
            out.push(one(stack, &st.service, None, Some(st), reveal));
        }
    }
    out
}

fn one(
    stack: &Stack,
    name: &str,
    svc: Option<&Service>,
    st: Option<&ServiceStatus>,
    reveal: bool,
) -> Description {
    let bindings = st.map(|s| s.bindings.as_slice()).unwrap_or_default();
    let mut connection = svc.map(|s| details(s, bindings)).unwrap_or_default();
    if !reveal {
        for d in &mut connection {
            d.value = stack.masker.mask(&d.value).into_owned();
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

fn env<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.env
        .get(key)
        .map(|v| v.value.as_str())
        .filter(|v| !v.is_empty())
}

fn detail(key: &'static str, value: impl Into<String>) -> Detail {
    Detail {
        key,
        value: value.into(),
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

/// Connection details by kind; none for a service devenv does not know.
pub fn details(svc: &Service, bindings: &[HostBinding]) -> Vec<Detail> {
    match kind(svc) {
        Some("postgres") => database(svc, bindings, 5432, "postgres", "POSTGRES"),
        Some("mysql" | "mariadb") => database(svc, bindings, 3306, "mysql", "MYSQL"),
        Some("redis") => redis(svc, bindings),
        Some("minio") => s3(svc, bindings),
        Some(_) => smtp(bindings),
        None => Vec::new(),
    }
}

fn database(
    svc: &Service,
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
    let user = env(svc, &format!("{prefix}_USER")).unwrap_or(root);
    let password = env(svc, &format!("{prefix}_PASSWORD"))
        .or_else(|| env(svc, &format!("{prefix}_ROOT_PASSWORD")))
        .unwrap_or_default();
    let db = env(svc, &format!("{prefix}_DB"))
        .or_else(|| env(svc, &format!("{prefix}_DATABASE")))
        .unwrap_or(user);
    vec![
        detail("host", &host),
        detail("port", port.to_string()),
        detail("database", db),
        detail("user", user),
        detail("password", password),
        detail(
            "url",
            format!("{scheme}://{user}:{password}@{host}:{port}/{db}"),
        ),
    ]
}

fn redis(svc: &Service, bindings: &[HostBinding]) -> Vec<Detail> {
    let Some((host, port)) = reach(bindings, 6379) else {
        return Vec::new();
    };
    // `--requirepass X` in the command, else the usual env names.
    let from_command = svc.command.as_ref().and_then(|c| {
        let i = c.iter().position(|a| a == "--requirepass")?;
        c.get(i + 1).map(String::as_str)
    });
    let password = from_command
        .or_else(|| env(svc, "REDIS_PASSWORD"))
        .unwrap_or_default();
    let url = if password.is_empty() {
        format!("redis://{host}:{port}")
    } else {
        format!("redis://:{password}@{host}:{port}")
    };
    let mut out = vec![detail("host", &host), detail("port", port.to_string())];
    if !password.is_empty() {
        out.push(detail("password", password));
    }
    out.push(detail("url", url));
    out
}

fn s3(svc: &Service, bindings: &[HostBinding]) -> Vec<Detail> {
    let Some((host, port)) = reach(bindings, 9000) else {
        return Vec::new();
    };
    let mut out = vec![detail("endpoint", format!("http://{host}:{port}"))];
    if let Some(bucket) = env(svc, "MINIO_DEFAULT_BUCKETS").and_then(|b| b.split(',').next()) {
        out.push(detail("bucket", bucket.split(':').next().unwrap_or(bucket)));
    }
    if let Some(user) = env(svc, "MINIO_ROOT_USER") {
        out.push(detail("access key", user));
    }
    if let Some(password) = env(svc, "MINIO_ROOT_PASSWORD") {
        out.push(detail("secret key", password));
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
}
