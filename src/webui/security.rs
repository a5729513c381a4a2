//! Who may use the page: pure checks on each request, before any route.
//!
//! - The `Host` header must name this server by loopback name or address
//!   (or, with `--listen`, by an IP address): a DNS rebinding page that
//!   points its own name at 127.0.0.1 sends its own name, and is refused.
//! - An `Origin`, when the browser sends one, must be this server's own:
//!   another site's script is refused (no CSRF, no reading the API).
//! - The token: in the printed URL the first time (`?token=`, which then
//!   sets a cookie named after the port, as cookies do not tell ports
//!   apart), in the cookie afterwards; every action is a POST carrying it
//!   in a header, which no cross-site form or image can set.
//!
//! Anything else is a 403.

use std::net::IpAddr;

/// The cookie and header that carry the token.
pub const HEADER: &str = "x-devenv-token";

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host`, or one that is not this server's.
    Host,
    /// An `Origin` that is not this server's.
    Origin,
    /// No token, or a wrong one.
    Token,
    /// An action not sent as a POST, or a POST to a page.
    Method,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Host => "refused: the Host header does not name this server",
            Refusal::Origin => "refused: the request comes from another site",
            Refusal::Token => "refused: open the URL `devenv ui` printed (it carries the token)",
            Refusal::Method => "refused: actions are POST requests with the token header",
        }
    }
}

/// What a request shows of itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    /// The whole `Cookie` header.
    pub cookie: Option<&'a str>,
    /// The token header.
    pub header_token: Option<&'a str>,
    /// The `token` query parameter.
    pub query_token: Option<&'a str>,
}

/// What a request let through may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The token came in the URL: the response sets the cookie.
    pub set_cookie: bool,
}

/// The checks of one server.
#[derive(Debug, Clone)]
pub struct Guard {
    token: String,
    port: u16,
    /// Listening on an address other machines reach: any IP address is a
    /// valid `Host` (a rebinding attack needs a name, never an address).
    any_address: bool,
}

impl Guard {
    pub fn new(token: &str, port: u16, listen: IpAddr) -> Guard {
        Guard {
            token: token.to_string(),
            port,
            any_address: !listen.is_loopback(),
        }
    }

    pub fn cookie_name(&self) -> String {
        format!("devenv_ui_{}", self.port)
    }

    /// `Set-Cookie` for a browser that came with the token in the URL.
    pub fn set_cookie(&self) -> String {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie_name(),
            self.token
        )
    }

    pub fn check(&self, r: &Request) -> Result<Access, Refusal> {
        let host = r.host.ok_or(Refusal::Host)?;
        if !self.host_allowed(host) {
            return Err(Refusal::Host);
        }
        if let Some(origin) = r.origin {
            // The origin of a page of this server is `http://` and its Host.
            let own = origin
                .strip_prefix("http://")
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !own {
                return Err(Refusal::Origin);
            }
        }
        let action = r.path.starts_with("/api/do/");
        match r.method {
            "POST" if action => {
                let ok = r.header_token.is_some_and(|t| same(t, &self.token));
                return if ok {
                    Ok(Access { set_cookie: false })
                } else {
                    Err(Refusal::Token)
                };
            }
            "GET" | "HEAD" if !action => {}
            _ => return Err(Refusal::Method),
        }
        if r.query_token.is_some_and(|t| same(t, &self.token)) {
            return Ok(Access { set_cookie: true });
        }
        let name = self.cookie_name();
        let from_cookie = r.cookie.into_iter().flat_map(|c| c.split(';')).any(|kv| {
            kv.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k == name && same(v, &self.token))
        });
        if from_cookie {
            Ok(Access { set_cookie: false })
        } else {
            Err(Refusal::Token)
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = host.rsplit_once(':') else {
            return false;
        };
        if port.parse::<u16>().ok() != Some(self.port) {
            return false;
        }
        let name = name.to_ascii_lowercase();
        if name == "localhost" {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || self.any_address,
            Err(_) => false,
        }
    }
}

/// Compares without stopping at the first difference, so the time a
/// refusal takes tells nothing about how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A fresh random token: 32 bytes from the kernel, as hex.
pub fn token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef";

    fn guard() -> Guard {
        Guard::new(T, 4000, "127.0.0.1".parse().unwrap())
    }

    fn get<'a>(path: &'a str, host: &'a str) -> Request<'a> {
        Request {
            method: "GET",
            path,
            host: Some(host),
            ..Request::default()
        }
    }

    #[test]
    fn the_token_comes_in_the_url_once_then_in_the_cookie() {
        let g = guard();
        let first = Request {
            query_token: Some(T),
            ..get("/", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&first), Ok(Access { set_cookie: true }));
        let cookie = format!("other=1; devenv_ui_4000={T}");
        let later = Request {
            cookie: Some(&cookie),
            ..get("/api/state", "localhost:4000")
        };
        assert_eq!(g.check(&later), Ok(Access { set_cookie: false }));
        assert!(g.set_cookie().starts_with(&format!("devenv_ui_4000={T};")));
        assert!(g.set_cookie().contains("SameSite=Strict"));
    }

    #[test]
    fn no_token_or_a_wrong_one_or_another_ports_cookie_is_refused() {
        let g = guard();
        assert_eq!(g.check(&get("/", "127.0.0.1:4000")), Err(Refusal::Token));
        let wrong = Request {
            query_token: Some("0123456789abcdeF"),
            ..get("/", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&wrong), Err(Refusal::Token));
        let short = Request {
            query_token: Some("0123"),
            ..get("/", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&short), Err(Refusal::Token));
        let cookie = format!("devenv_ui_4001={T}");
        let other = Request {
            cookie: Some(&cookie),
            ..get("/", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&other), Err(Refusal::Token));
    }

    #[test]
    fn a_foreign_host_is_refused_even_with_the_token() {
        let g = guard();
        for host in [
            "evil.example:4000",
            "127.0.0.1.nip.io:4000",
            "127.0.0.1:4001",
            "127.0.0.1",
            "192.168.1.5:4000",
        ] {
            let r = Request {
                query_token: Some(T),
                ..get("/", host)
            };
            assert_eq!(g.check(&r), Err(Refusal::Host), "{host}");
        }
        let none = Request {
            host: None,
            query_token: Some(T),
            ..get("/", "")
        };
        assert_eq!(g.check(&none), Err(Refusal::Host));
        for host in ["127.0.0.1:4000", "LOCALHOST:4000", "[::1]:4000"] {
            let r = Request {
                query_token: Some(T),
                ..get("/", host)
            };
            assert!(g.check(&r).is_ok(), "{host}");
        }
    }

    #[test]
    fn listening_elsewhere_takes_addresses_but_never_names() {
        let g = Guard::new(T, 4000, "0.0.0.0".parse().unwrap());
        let lan = Request {
            query_token: Some(T),
            ..get("/", "192.168.1.5:4000")
        };
        assert!(g.check(&lan).is_ok());
        let name = Request {
            query_token: Some(T),
            ..get("/", "attacker.example:4000")
        };
        assert_eq!(g.check(&name), Err(Refusal::Host));
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let g = guard();
        let cookie = format!("devenv_ui_4000={T}");
        for origin in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:4000",
            "http://127.0.0.1:4001",
            "http://localhost:4000",
        ] {
            let r = Request {
                method: "POST",
                path: "/api/do/restart",
                host: Some("127.0.0.1:4000"),
                origin: Some(origin),
                cookie: Some(&cookie),
                header_token: Some(T),
                query_token: None,
            };
            assert_eq!(g.check(&r), Err(Refusal::Origin), "{origin}");
        }
        let own = Request {
            method: "POST",
            path: "/api/do/restart",
            host: Some("127.0.0.1:4000"),
            origin: Some("http://127.0.0.1:4000"),
            cookie: None,
            header_token: Some(T),
            query_token: None,
        };
        assert!(g.check(&own).is_ok());
    }

    #[test]
    fn actions_are_posts_with_the_token_header_and_pages_are_not_posted() {
        let g = guard();
        let cookie = format!("devenv_ui_4000={T}");
        // The cookie alone does not make an action: a cross-site form would send it.
        let form = Request {
            method: "POST",
            path: "/api/do/restart",
            host: Some("127.0.0.1:4000"),
            cookie: Some(&cookie),
            ..Request::default()
        };
        assert_eq!(g.check(&form), Err(Refusal::Token));
        let by_get = Request {
            query_token: Some(T),
            cookie: Some(&cookie),
            ..get("/api/do/restart", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&by_get), Err(Refusal::Method));
        let posted_page = Request {
            method: "POST",
            header_token: Some(T),
            ..get("/api/state", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&posted_page), Err(Refusal::Method));
        let put = Request {
            method: "PUT",
            header_token: Some(T),
            ..get("/api/do/restart", "127.0.0.1:4000")
        };
        assert_eq!(g.check(&put), Err(Refusal::Method));
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
