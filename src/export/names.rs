//! Kubernetes naming rules. Every generated name is a DNS-1123 label:
//! the project's and the services' names are mapped onto one (lowercased,
//! anything else becomes `-`, cut to 63 characters), so `my_shop` gets the
//! namespace `my-shop-production` and a service `Api.v2` the name `api-v2`.
//! Only a name with nothing left to map, or two services that map to the
//! same name, are refused.

use indexmap::IndexMap;

use super::ExportError;

/// Maps free text onto a DNS-1035 label (what a Service name must be, and
/// so every name derived from a service): lowercase letters, digits and
/// inner `-`, starting with a letter, at most 63 characters.
pub(crate) fn to_dns_label(text: &str) -> String {
    let mut label = to_label(text);
    // Collapse runs of `-` that mapping left behind, for readable names.
    while label.contains("--") {
        label = label.replace("--", "-");
    }
    if label.starts_with(|c: char| c.is_ascii_digit()) {
        label.insert_str(0, "x-");
    }
    label.truncate(63);
    label.trim_end_matches('-').to_string()
}

/// The Kubernetes name of each service; refuses names that map to nothing or to the same name.
pub(crate) fn service_names<'a>(
    services: impl Iterator<Item = &'a String>,
) -> Result<IndexMap<String, String>, ExportError> {
    let mut names: IndexMap<String, String> = IndexMap::new();
    for service in services {
        let name = to_dns_label(service);
        check_label(&name).map_err(|reason| ExportError::Name {
            service: service.clone(),
            reason,
        })?;
        if let Some((first, _)) = names.iter().find(|(_, taken)| **taken == name) {
            return Err(ExportError::NameClash {
                first: first.clone(),
                second: service.clone(),
                name,
            });
        }
        names.insert(service.clone(), name);
    }
    Ok(names)
}

/// A DNS-1035 label: what a Service name must be (and so every name derived from a service).
pub(crate) fn check_label(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.ends_with('-')
    {
        return Err("may hold only lowercase letters, digits and inner `-`");
    }
    Ok(())
}

/// A ConfigMap or Secret key.
pub(crate) fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Lowercases and replaces what a label may not hold, for names built from free text (tags).
pub(crate) fn to_label(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(check_label("db").is_ok());
        assert!(check_label("my_app").is_err());
        assert!(check_label("App").is_err());
        assert!(check_label("1app").is_err());
    }

    #[test]
    fn port_names() {
        assert!(crate::config::k8s::check_port_name("http").is_ok());
        assert!(crate::config::k8s::check_port_name("tcp-8080").is_ok());
        assert!(crate::config::k8s::check_port_name("8080").is_err());
        assert!(crate::config::k8s::check_port_name("much-too-long-port-name").is_err());
    }

    #[test]
    fn r13_names_map_to_dns_labels() {
        assert_eq!(to_dns_label("my_shop"), "my-shop");
        assert_eq!(to_dns_label("Api.V2"), "api-v2");
        assert_eq!(to_dns_label("2fa__svc"), "x-2fa-svc");
        assert_eq!(to_dns_label(&"a".repeat(80)).len(), 63);
        let services = ["db".to_string(), "My.Worker".to_string()];
        let names = service_names(services.iter()).unwrap();
        assert_eq!(names["My.Worker"], "my-worker");
        let clash = ["my_app".to_string(), "my.app".to_string()];
        assert!(matches!(
            service_names(clash.iter()),
            Err(ExportError::NameClash { .. })
        ));
        assert!(service_names(["__".to_string()].iter()).is_err());
    }

    #[test]
    fn tags_become_labels() {
        assert_eq!(to_label("v1.4.2_RC"), "v1-4-2-rc");
    }
}
