//! Compose healthchecks → `dev.toml` probes.
//!
//! A healthcheck becomes a native probe only where `devenv`'s probe checks
//! the same thing: a local `curl`/`wget` of a plain-HTTP URL, a
//! `redis-cli ping`. `pg_isready` asks whether the server accepts
//! connections, which is not a login (a password kept in a secret file
//! could never log in), so it runs as written, in the container, like any
//! other command. An escaped `$$VAR` is the container's own variable: in a
//! command the container's shell reads it, and a native probe's credential
//! is taken from the service's `environment`, never from the host.

use indexmap::IndexMap;

use super::compose::{self, Words};
use super::convert::Probe;
use super::vars::Vars;
use crate::config::interp::InterpError;

/// The probe a healthcheck becomes, and how long Compose would give it.
/// `env` is the service's `environment` as written to `dev.toml`.
pub(crate) fn healthcheck(
    check: compose::Healthcheck,
    env: &IndexMap<String, String>,
    vars: &mut Vars,
) -> Result<(Option<Probe>, Option<String>), InterpError> {
    if check.disable == Some(true) {
        return Ok((None, None));
    }
    let (args, shell) = match check.test.clone() {
        None => return Ok((None, None)),
        Some(Words::Line(line)) => (Vec::new(), Some(line)),
        Some(Words::List(list)) => match list.split_first() {
            Some((first, _)) if first == "NONE" => return Ok((None, None)),
            Some((first, rest)) if first == "CMD-SHELL" => (Vec::new(), Some(rest.join(" "))),
            Some((first, rest)) if first == "CMD" => (rest.to_vec(), None),
            _ => (list, None),
        },
    };
    // As the container would run it: interpolated, `$$` now a plain `$`.
    let expanded_args = args
        .iter()
        .map(|arg| vars.expand(arg, None))
        .collect::<Result<Vec<_>, _>>()?;
    let expanded_shell = shell.as_deref().map(|s| vars.expand(s, None)).transpose()?;
    let words: Vec<String> = match &expanded_shell {
        Some(line) => line.split_whitespace().map(str::to_owned).collect(),
        None => expanded_args.clone(),
    };
    let raw_words: Vec<String> = match &shell {
        Some(line) => line.split_whitespace().map(str::to_owned).collect(),
        None => args.clone(),
    };
    let probe = native_probe(&words, &raw_words, env).unwrap_or_else(|| match expanded_shell {
        Some(line) => Probe::Exec(vec!["sh".to_owned(), "-c".to_owned(), line]),
        None => Probe::Exec(expanded_args),
    });
    Ok((Some(probe), timeout(&check)))
}

/// The time Compose gives the checks before it calls the service unhealthy.
fn timeout(check: &compose::Healthcheck) -> Option<String> {
    let timing = [
        &check.interval,
        &check.timeout,
        &check.retries,
        &check.start_period,
    ];
    timing.iter().any(|t| t.is_some()).then(|| {
        let secs = |t: &Option<String>, default: f64| {
            t.as_deref().and_then(go_duration).unwrap_or(default)
        };
        let retries = check
            .retries
            .as_deref()
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or(3.0);
        // The checks Compose runs before it gives up, the last one to its timeout.
        let total = secs(&check.start_period, 0.0)
            + retries * secs(&check.interval, 30.0)
            + secs(&check.timeout, 30.0);
        format!("{}s", total.ceil() as u64)
    })
}

/// A probe `devenv` runs itself, where it checks what the command checks.
fn native_probe(words: &[String], raw: &[String], env: &IndexMap<String, String>) -> Option<Probe> {
    let program = words.first()?.rsplit('/').next()?;
    // Only a single, plain command: `a && b` or `|| exit 1` say more.
    let plain = !words.iter().any(|w| matches!(w.as_str(), "&&" | ";" | "|"));
    let option = |names: &[&str]| -> Option<String> {
        let at = words.iter().position(|w| names.contains(&w.as_str()))?;
        words.get(at + 1).cloned()
    };
    // As written (`dev.toml` interpolates the probe's credentials), with a
    // container variable taken from the service's env; `Err` when the
    // container has no such variable to give.
    let raw_option = |names: &[&str]| -> Result<Option<String>, ()> {
        let Some(at) = raw.iter().position(|w| names.contains(&w.as_str())) else {
            return Ok(None);
        };
        match raw.get(at + 1) {
            Some(word) if word.contains("$$") => container_value(word, env).map(Some).ok_or(()),
            word => Ok(word.cloned()),
        }
    };
    let local = |host: Option<String>| {
        host.is_none_or(|h| matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1"))
    };
    match program {
        "redis-cli"
            if plain
                && local(option(&["-h"]))
                && words.last().is_some_and(|w| w.eq_ignore_ascii_case("ping"))
                && !words.iter().any(|w| w.starts_with("-u") || w == "--tls") =>
        {
            Some(Probe::Redis {
                port: option(&["-p"]).and_then(|p| p.parse().ok()),
                username: raw_option(&["--user"]).ok()?,
                password: raw_option(&["-a", "--pass"]).ok()?,
            })
        }
        // A URL with the container's own variable is left to the container.
        "curl" | "wget"
            if (plain || words.iter().any(|w| w == "||"))
                && !raw.iter().any(|w| w.contains("$$")) =>
        {
            http_check(&words.join(" ")).map(|(port, path)| Probe::Http { port, path })
        }
        _ => None,
    }
}

/// `$${NAME}` or `$$NAME` (the container's variable `NAME`) as the value
/// the service's env gives it, written as that env writes it.
fn container_value(word: &str, env: &IndexMap<String, String>) -> Option<String> {
    let rest = word.strip_prefix("$$")?;
    let name = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(rest);
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then(|| env.get(name).cloned()).flatten()
}

/// Go's duration syntax as Compose writes it: `1m30s`, `500ms`, `10s`.
fn go_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        total += number
            * match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
        rest = tail;
    }
    Some(total)
}

/// A `curl` or `wget` of a local plain-HTTP URL: `devenv` can make that
/// request itself.
fn http_check(text: &str) -> Option<(u16, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let url = words.iter().find_map(|w| {
        w.trim_matches(|c| c == '"' || c == '\'')
            .strip_prefix("http://")
    })?;
    let (authority, path) = match url.find('/') {
        Some(slash) => (&url[..slash], &url[slash..]),
        None => (url, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
        _ => (authority, 80),
    };
    matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]").then(|| (port, path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_checks_become_http_probes() {
        assert_eq!(
            http_check("curl -fsS http://localhost:8080/health || exit 1"),
            Some((8080, "/health".to_owned()))
        );
        assert_eq!(
            http_check("wget -qO- http://127.0.0.1/"),
            Some((80, "/".to_owned()))
        );
        assert_eq!(http_check("curl -f http://example.com/health"), None);
        assert_eq!(http_check("curl -f https://localhost/health"), None);
    }

    #[test]
    fn native_probes_only_where_they_check_the_same_thing() {
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let env: IndexMap<String, String> =
            [("REDIS_PASSWORD".to_owned(), "${REDIS_PASSWORD}".to_owned())].into();
        let probe = |s: &str| native_probe(&words(s), &words(s), &env);
        // A login is not what `pg_isready` checks: it runs as written.
        assert_eq!(probe("pg_isready -U app -d shop"), None);
        assert_eq!(
            probe("redis-cli -a ${REDIS_PASSWORD} ping"),
            Some(Probe::Redis {
                port: None,
                username: None,
                password: Some("${REDIS_PASSWORD}".into())
            })
        );
        assert_eq!(probe("redis-cli -h cache ping"), None);
    }

    #[test]
    fn an_escaped_variable_is_the_containers_own() {
        let env: IndexMap<String, String> =
            [("PASS".to_owned(), "${REDIS_PASS-}".to_owned())].into();
        let raw = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let probe = native_probe(
            &raw("redis-cli -a ${PASS} ping"),
            &raw("redis-cli -a $${PASS} ping"),
            &env,
        );
        assert_eq!(
            probe,
            Some(Probe::Redis {
                port: None,
                username: None,
                password: Some("${REDIS_PASS-}".into())
            })
        );
        // Not in the service's env: the command runs in the container.
        let probe = native_probe(
            &raw("redis-cli -a $OTHER ping"),
            &raw("redis-cli -a $$OTHER ping"),
            &env,
        );
        assert_eq!(probe, None);
    }

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(go_duration("1m30s"), Some(90.0));
        assert_eq!(go_duration("500ms"), Some(0.5));
        assert_eq!(go_duration("soon"), None);
    }
}
