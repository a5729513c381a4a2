//! Where a person reaches a service from the host: its published ports as
//! URLs, each labelled (the app, the mail UI, the S3 console), for `ps`,
//! `ls` and `open`.

use serde::Serialize;

use crate::config::model::{Probe, Service};

/// One way in, e.g. `mail UI` at `http://localhost:8025`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Url {
    pub label: String,
    pub url: String,
}

/// Container ports that speak HTTP to a browser in the usual images.
const WEB_PORTS: [u16; 10] = [80, 443, 3000, 5173, 8000, 8025, 8080, 8900, 9001, 9000];

/// The URLs of service `name` (its config, if the stack file is at hand)
/// from its published `(container, host)` ports.
pub fn service_urls(name: &str, svc: Option<&Service>, published: &[(u16, u16)]) -> Vec<Url> {
    let mut ports = published.to_vec();
    ports.sort();
    ports.dedup();
    ports
        .into_iter()
        .map(|(container, host)| {
            let probed_http = matches!(
                svc.and_then(|s| s.ready.as_ref()),
                Some(Probe::Http { port, .. }) if *port == container
            );
            let http = probed_http || WEB_PORTS.contains(&container);
            let label = match container {
                _ if probed_http => name.to_string(),
                8025 => "mail UI".into(),
                1025 => "SMTP".into(),
                9001 | 8900 => "S3 console".into(),
                9000 => "S3 API".into(),
                5432 => "PostgreSQL".into(),
                6379 => "Redis".into(),
                _ => name.to_string(),
            };
            let url = if http {
                format!("http://localhost:{host}")
            } else {
                format!("localhost:{host}")
            };
            Url { label, url }
        })
        .collect()
}

/// `urls` with the router's `https://NAME.localhost` first, when the
/// service has a name and the router runs (`https` is where it listens).
pub fn with_route(
    mut urls: Vec<Url>,
    name: &str,
    svc: Option<&Service>,
    https: Option<u16>,
) -> Vec<Url> {
    if let (Some((host, _)), Some(port)) = (svc.and_then(Service::route), https) {
        let url = match port {
            443 => format!("https://{host}"),
            p => format!("https://{host}:{p}"),
        };
        urls.insert(
            0,
            Url {
                label: name.to_string(),
                url,
            },
        );
    }
    urls
}

/// The URL `devenv open` opens: the router's HTTPS name when there is one;
/// else a page made for people (the S3 console,
/// the mail UI) rather than an API the service is probed on, else the
/// service's probed HTTP port, else its first web one.
pub fn browser_url(urls: &[Url], name: &str) -> Option<String> {
    let web = |u: &&Url| u.url.starts_with("http");
    urls.iter()
        .find(|u| u.url.starts_with("https://"))
        .or_else(|| {
            urls.iter()
                .filter(web)
                .find(|u| u.label.ends_with(" console") || u.label.ends_with(" UI"))
        })
        .or_else(|| urls.iter().filter(web).find(|u| u.label == name))
        .or_else(|| urls.iter().find(web))
        .map(|u| u.url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_become_labelled_urls() {
        let urls = service_urls("s3", None, &[(9001, 19001), (9000, 19000), (9000, 19000)]);
        assert_eq!(
            urls,
            [
                Url {
                    label: "S3 API".into(),
                    url: "http://localhost:19000".into()
                },
                Url {
                    label: "S3 console".into(),
                    url: "http://localhost:19001".into()
                }
            ]
        );
        let db = service_urls("db", None, &[(5432, 15432)]);
        assert_eq!(db[0].url, "localhost:15432");
        assert_eq!(browser_url(&db, "db"), None);
        assert_eq!(
            browser_url(&urls, "s3").as_deref(),
            Some("http://localhost:19001")
        );
    }

    /// Issue 26: `open s3` opened the API the service is probed on.
    #[test]
    fn r26_open_prefers_the_console_to_the_probed_api() {
        let urls = [
            Url {
                label: "s3".into(),
                url: "http://localhost:9000".into(),
            },
            Url {
                label: "S3 console".into(),
                url: "http://localhost:9001".into(),
            },
        ];
        assert_eq!(
            browser_url(&urls, "s3").as_deref(),
            Some("http://localhost:9001")
        );
        let app = [Url {
            label: "app".into(),
            url: "http://localhost:8080".into(),
        }];
        assert_eq!(
            browser_url(&app, "app").as_deref(),
            Some("http://localhost:8080")
        );
    }
}
