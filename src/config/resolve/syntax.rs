//! The short string forms of `dev.toml`, parsed: ports, mounts, durations,
//! command lines, host entries and paths. Pure functions; an error is a
//! message and a help line, placed at a span by the caller.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::model::*;
use super::super::raw::*;

/// `[ip:]host:container[/proto]`, `container`, and ranges `9000-9001:9000-9001`.
pub fn parse_port(text: &str) -> Result<Vec<Port>, (String, String)> {
    let bad = |why: &str| {
        (
            format!("invalid port mapping `{text}`: {why}"),
            "write `HOST:CONTAINER`, `IP:HOST:CONTAINER` (an IPv6 address in brackets: `[::1]:8080:80`) or `CONTAINER`, optionally with `/udp`"
                .to_string(),
        )
    };
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, "tcp")) => (s, Protocol::Tcp),
        Some((s, "udp")) => (s, Protocol::Udp),
        Some((s, "sctp")) => (s, Protocol::Sctp),
        Some(_) => return Err(bad("the protocol must be `tcp`, `udp` or `sctp`")),
        None => (text, Protocol::Tcp),
    };
    // An IPv6 host address is written in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r.split_once("]:").ok_or_else(|| bad("unclosed `[`"))?;
        (Some(ip.to_string()), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => (Some(parts[0].to_string()), &spec[parts[0].len() + 1..]),
            // Compose's unbracketed IPv6 form `::1:8080:80`: the last two
            // fields are the ports, everything before them the address,
            // taken only when it is one (`::1:80` is not).
            n => {
                let ip = parts[..n - 2].join(":");
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(bad(&format!(
                        "too many `:`; an IPv6 address goes in brackets: `[::1]:{}:{}`",
                        parts[n - 2],
                        parts[n - 1]
                    )));
                }
                (Some(ip.clone()), &spec[ip.len() + 1..])
            }
        }
    };
    // `::80` and `:80` name no address.
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    let range = |s: &str| -> Result<(u16, u16), (String, String)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a
            .parse()
            .map_err(|_| bad("a port is a number from 1 to 65535"))?;
        let b: u16 = b
            .parse()
            .map_err(|_| bad("a port is a number from 1 to 65535"))?;
        if a == 0 || b < a {
            return Err(bad(
                "a port is a number from 1 to 65535 and ranges go upwards",
            ));
        }
        Ok((a, b))
    };
    let (host, container) = match rest.split_once(':') {
        // `127.0.0.1::80`: any free host port on that address.
        // `:80` too, as Compose reads an unset `${PORT}:80`.
        Some(("", c)) => (None, range(c)?),
        Some((h, c)) => (Some(range(h)?), range(c)?),
        None => (None, range(rest)?),
    };
    let count = container.1 - container.0;
    // One container port behind a host range: any free port of the range.
    let host_last = host.filter(|h| count == 0 && h.1 > h.0).map(|h| h.1);
    let host = match host {
        Some(h) if count == 0 => Some((h.0, h.0)),
        Some(h) if h.1 - h.0 != count => {
            return Err(bad("host and container ranges differ in length"))
        }
        h => h,
    };
    Ok((0..=count)
        .map(|i| Port {
            host_ip: host_ip.clone(),
            host: host.map(|h| h.0 + i),
            container: container.0 + i,
            protocol,
            fixed: false,
            host_last,
            loopback_v6: false,
        })
        .collect())
}

/// `name:/path[:ro]` (named volume) or `./src:/app[:ro]` (bind, relative to `root`).
pub fn parse_mount(text: &str, root: &Path) -> Result<Mount, (String, String)> {
    let bad = |why: &str| {
        (
            format!("invalid volume `{text}`: {why}"),
            "write `NAME:/container/path` or `./host/path:/container/path`, optionally with `:ro`"
                .to_string(),
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    // A container path alone is an anonymous volume, as in Compose.
    match parts.as_slice() {
        [target] | [target, "rw"] if target.starts_with('/') => {
            return Ok(Mount::Anonymous {
                target: target.to_string(),
                read_only: false,
            })
        }
        [target, "ro"] if target.starts_with('/') => {
            return Ok(Mount::Anonymous {
                target: target.to_string(),
                read_only: true,
            })
        }
        _ => {}
    }
    let (source, target, read_only) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        [_, _, m] => return Err(bad(&format!("unknown mode `{m}`"))),
        _ => return Err(bad("expected `SOURCE:TARGET`")),
    };
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let target = target.to_string();
    if source.starts_with('.') || source.starts_with('/') || source.starts_with('~') {
        let path = match source.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(PathBuf::from)
                .ok_or_else(|| bad("`~` needs HOME to be set"))?
                .join(rest),
            None => root.join(source),
        };
        return Ok(Mount::Bind {
            source: normalize(&path),
            target,
            read_only,
        });
    }
    let valid = source
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(bad("a volume name is letters, digits, `_`, `.` and `-`; a host path starts with `./` or `/`"));
    }
    Ok(Mount::Volume {
        name: source.to_string(),
        target,
        read_only,
    })
}

/// The longest wait a stack file may ask for: longer is a typo, and far
/// longer would overflow the clock arithmetic of every deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Seconds or a humantime duration (`500ms`, `1m 30s`), at most [`MAX_DURATION`].
pub fn parse_duration(raw: &RawDuration) -> Result<Duration, String> {
    let d = match raw {
        RawDuration::Secs(s) => Duration::from_secs(*s),
        RawDuration::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => "the duration is too long".to_string(),
            other => other.to_string(),
        })?,
    };
    if d > MAX_DURATION {
        return Err(format!(
            "the duration is longer than {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// Splits a command line into words the way a shell would, without expansion.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Removes `.` and `..` components without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// An `extra_hosts` entry as the engine takes it (`name:address`); Compose
/// also writes `name=address`. The address may be `host-gateway`.
pub(super) fn extra_host(entry: &str) -> Option<String> {
    let (name, addr) = entry.split_once('=').or_else(|| entry.split_once(':'))?;
    let (name, addr) = (name.trim(), addr.trim());
    let plain_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    (plain_name && !addr.is_empty()).then(|| format!("{name}:{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hosts_take_both_compose_forms() {
        assert_eq!(
            extra_host("host.docker.internal:host-gateway").as_deref(),
            Some("host.docker.internal:host-gateway")
        );
        assert_eq!(extra_host("db=10.0.0.5").as_deref(), Some("db:10.0.0.5"));
        assert_eq!(extra_host("v6:::1").as_deref(), Some("v6:::1"));
        assert_eq!(extra_host("nohost"), None);
        assert_eq!(extra_host("bad name:1.2.3.4"), None);
    }

    #[test]
    fn ports_parse_in_every_short_form() {
        let p = parse_port("127.0.0.1:5432:5432").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!((p[0].host, p[0].container), (Some(5432), 5432));
        let p = parse_port("80").unwrap();
        assert_eq!((p[0].host, p[0].container), (None, 80));
        let p = parse_port("53:53/udp").unwrap();
        assert_eq!(p[0].protocol, Protocol::Udp);
        let p = parse_port("9000-9001:9000-9001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].host, p[1].container), (Some(9001), 9001));
        let p = parse_port("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("::1"));
        // Compose's forms: an empty host port (an unset `${PORT}`), a host
        // range for one container port, an unbracketed IPv6 address.
        let p = parse_port(":8080").unwrap();
        assert_eq!((p[0].host, p[0].container), (None, 8080));
        let p = parse_port("6005-6015:80").unwrap();
        assert_eq!(
            (p[0].host, p[0].host_last, p.len()),
            (Some(6005), Some(6015), 1)
        );
        assert_eq!(
            parse_port("9000-9001:9000-9001").unwrap()[0].host_last,
            None
        );
        let p = parse_port("::1:19345:80").unwrap();
        assert_eq!(
            (p[0].host_ip.as_deref(), p[0].host),
            (Some("::1"), Some(19345))
        );
    }

    #[test]
    fn bad_ports_say_why() {
        assert!(parse_port("80:http")
            .unwrap_err()
            .0
            .contains("a port is a number"));
        assert!(parse_port("1:2:3:4").unwrap_err().0.contains("too many"));
        assert!(parse_port("9000-9002:9000-9001")
            .unwrap_err()
            .0
            .contains("differ in length"));
        assert_eq!(parse_port("9000-9001:9000").unwrap()[0].host, Some(9000));
        assert!(parse_port("0:80").is_err());
        assert!(parse_port("80/quic").is_err());
    }

    #[test]
    fn sctp_ports_and_ephemeral_host_ports_parse() {
        let sctp = &parse_port("3868:3868/sctp").unwrap()[0];
        assert_eq!((sctp.host, sctp.protocol), (Some(3868), Protocol::Sctp));
        let any = &parse_port("127.0.0.1::80").unwrap()[0];
        assert_eq!(any.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!((any.host, any.container), (None, 80));
        // Compose reads `::80` as port 80 on any host port too.
        let any = &parse_port("::80").unwrap()[0];
        assert_eq!(
            (any.host_ip.as_deref(), any.host, any.container),
            (None, None, 80)
        );
    }

    #[test]
    fn r31_an_unbracketed_ipv6_address_is_read_as_compose_reads_it() {
        for (text, ip, host) in [
            ("::1:19345:80", "::1", Some(19345)),
            ("[::1]:19345:80", "::1", Some(19345)),
            ("fe80::1:2:8080:80/udp", "fe80::1:2", Some(8080)),
            ("::1::80", "::1", None),
        ] {
            let port = &parse_port(text).unwrap()[0];
            assert_eq!(port.host_ip.as_deref(), Some(ip), "{text}");
            assert_eq!((port.host, port.container), (host, 80), "{text}");
        }
        // Not an address: say how to write one.
        let (message, help) = parse_port("1:2:3:4").unwrap_err();
        assert!(message.contains("`[::1]:3:4`"), "{message}");
        assert!(help.contains("`[::1]:8080:80`"), "{help}");
    }

    #[test]
    fn a_container_path_alone_is_an_anonymous_volume() {
        let root = Path::new("/proj");
        assert_eq!(
            parse_mount("/app/node_modules", root).unwrap(),
            Mount::Anonymous {
                target: "/app/node_modules".into(),
                read_only: false
            }
        );
        assert_eq!(
            parse_mount("/cache:ro", root).unwrap(),
            Mount::Anonymous {
                target: "/cache".into(),
                read_only: true
            }
        );
        assert!(matches!(
            parse_mount("/srv:/app", root).unwrap(),
            Mount::Bind { .. }
        ));
    }

    #[test]
    fn mounts_tell_volumes_from_binds() {
        let root = Path::new("/proj");
        assert_eq!(
            parse_mount("pgdata:/var/lib/postgresql/data", root).unwrap(),
            Mount::Volume {
                name: "pgdata".into(),
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            }
        );
        assert_eq!(
            parse_mount("./src/../app:/app:ro", root).unwrap(),
            Mount::Bind {
                source: "/proj/app".into(),
                target: "/app".into(),
                read_only: true
            }
        );
        assert!(parse_mount("data:relative", root).is_err());
        assert!(parse_mount("da ta:/x", root).is_err());
    }

    #[test]
    fn durations_accept_units_and_seconds() {
        let ok = |t: &str| parse_duration(&RawDuration::Text(t.into())).unwrap();
        assert_eq!(
            parse_duration(&RawDuration::Secs(5)),
            Ok(Duration::from_secs(5))
        );
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert!(parse_duration(&RawDuration::Text("soon".into())).is_err());
    }

    #[test]
    fn r14_huge_durations_are_errors_not_panics() {
        for t in [
            "99999999999999999999h",
            "25h",
            "18446744073709551615s",
            "1e400s",
        ] {
            assert!(parse_duration(&RawDuration::Text(t.into())).is_err(), "{t}");
        }
        assert!(parse_duration(&RawDuration::Secs(u64::MAX)).is_err());
        assert_eq!(
            parse_duration(&RawDuration::Text("24h".into())),
            Ok(MAX_DURATION)
        );
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"sh -c 'echo "hi there"' a\ b"#).unwrap(),
            vec!["sh", "-c", "echo \"hi there\"", "a b"]
        );
        assert_eq!(split_words("unbalanced 'quote"), None);
    }
}
