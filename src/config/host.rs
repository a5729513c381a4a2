//! Host names the router serves (issue 28): `hostname = "shop"` is
//! `https://shop.localhost`; the rules for writing one, and a project's URL.

/// The top-level domain every router name ends in: browsers resolve
/// `*.localhost` to the loopback address with no DNS set up.
pub const HOST_DOMAIN: &str = "localhost";

/// A project or service name as a DNS label: `_` (allowed in project
/// names, not in host names) becomes `-`.
pub fn host_label(name: &str) -> String {
    name.replace('_', "-")
}

/// A `hostname` as written (`shop`, `mail.shop`, `shop.localhost`), checked
/// and without the `.localhost` devenv adds; `None` when it is no host name.
pub fn host_name(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let text = text
        .strip_suffix(&format!(".{HOST_DOMAIN}"))
        .unwrap_or(&text)
        .replace('_', "-");
    let ok = !text.is_empty()
        && text.len() <= 200
        && text.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then_some(text)
}

/// The router URL of a project's main name: `https://shop.localhost`.
pub fn project_url(project: &str) -> String {
    format!("https://{}.{HOST_DOMAIN}", host_label(project))
}
