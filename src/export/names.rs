//! Kubernetes naming rules, checked up front so that a stack whose names a
//! cluster would reject fails at export time with the service named, not at
//! `kubectl apply` time.

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

/// An IANA service name: what a port name must be.
pub(crate) fn check_port_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be 1 to 15 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err("may hold only lowercase letters, digits and single inner `-`");
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain a letter");
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
        assert!(check_port_name("http").is_ok());
        assert!(check_port_name("tcp-8080").is_ok());
        assert!(check_port_name("8080").is_err());
        assert!(check_port_name("much-too-long-port-name").is_err());
    }

    #[test]
    fn tags_become_labels() {
        assert_eq!(to_label("v1.4.2_RC"), "v1-4-2-rc");
    }
}
