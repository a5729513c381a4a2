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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r28_host_names_are_dns_labels_without_localhost() {
        assert_eq!(host_name("shop").as_deref(), Some("shop"));
        assert_eq!(
            host_name("Mail.Shop.localhost.").as_deref(),
            Some("mail.shop")
        );
        assert_eq!(host_name("my_shop").as_deref(), Some("my-shop"));
        for bad in ["", "-shop", "shop-", "a..b", "sh op", "shop/x", "ümlaut"] {
            assert_eq!(host_name(bad), None, "{bad:?}");
        }
        assert_eq!(project_url("my_shop"), "https://my-shop.localhost");
    }

    #[test]
    fn r28_presets_name_services_after_the_project_and_a_checkout_renames_them() {
        let mut stack = crate::config::tests::parse_str(
            "[project]\nname = \"shop\"\n\
             [services.app]\nimage = \"nginx\"\nports = [\"8080:80\"]\n\
             hostname = \"${DEVENV_PROJECT}\"\n\
             env = { APP_URL = \"${DEVENV_URL}\", OTHER = \"https://shop.example\" }\n\
             [services.mail]\nuse = \"mailhog\"\n",
        )
        .unwrap();
        assert_eq!(
            stack.services["app"].route(),
            Some(("shop.localhost".into(), 80))
        );
        assert_eq!(
            stack.services["mail"].route(),
            Some(("mail.shop.localhost".into(), 8025))
        );
        assert_eq!(
            stack.services["app"].env["APP_URL"].value,
            "https://shop.localhost"
        );
        stack.rename("shop-feature");
        assert_eq!(stack.project, "shop-feature");
        assert_eq!(
            stack.services["app"].route(),
            Some(("shop-feature.localhost".into(), 80))
        );
        assert_eq!(
            stack.services["mail"].route(),
            Some(("mail.shop-feature.localhost".into(), 8025))
        );
        assert_eq!(
            stack.services["app"].env["APP_URL"].value,
            "https://shop-feature.localhost"
        );
        assert_eq!(
            stack.services["app"].env["OTHER"].value,
            "https://shop.example"
        );
    }

    #[test]
    fn r28_a_bad_hostname_is_a_config_error() {
        let err = crate::config::tests::parse_str(
            "[project]\nname = \"shop\"\n[services.app]\nimage = \"nginx\"\nhostname = \"no way\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not a host name"), "{err}");
    }
}
