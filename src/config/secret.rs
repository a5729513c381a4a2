//! A value that must never be printed. Its `Display`, `Debug` and
//! `Serialize` all show a mask, so `devenv config`, error messages and debug
//! logs cannot leak it by accident; the raw value is reached only through
//! [`Secret::expose`], where it is handed to what needs it (a database
//! driver, a container's env, a build).

use std::fmt;

/// What every masked value prints as.
pub const MASK: &str = "********";

#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Replaces every occurrence of each non-empty secret in `text` with the mask,
/// longest first so that one secret inside another cannot leave a tail.
pub fn mask_in<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    let mut secrets: Vec<&str> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s, MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_form_is_masked() {
        let s = Secret::new("hunter2");
        assert_eq!(s.to_string(), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secrets_are_masked_inside_text() {
        assert_eq!(
            mask_in("psql postgres://app:hunter2@db/app", ["hunter2", ""]),
            format!("psql postgres://app:{MASK}@db/app")
        );
        assert_eq!(mask_in("ab abc", ["ab", "abc"]), format!("{MASK} {MASK}"));
    }
}
