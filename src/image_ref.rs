//! Image references, parsed in one place: `[registry[:port]/]path[:tag][@digest]`
//! with the grammar of Docker's reference library (the one `oci-spec`'s
//! `Reference` follows). Config validates every `image` through it; images,
//! export and import read its parts instead of splitting strings themselves,
//! so a registry port is never taken for a tag and
//! `registry.local:5000/library/postgres:16` is the same PostgreSQL as
//! `postgres:16`.

use std::fmt;

/// Where an image without a registry comes from.
pub const DOCKER_HUB: &str = "docker.io";

/// The longest repository name (registry and path) Docker accepts.
const MAX_NAME: usize = 255;

/// A parsed image reference. It prints (and serialises) as written, so a
/// container's config hash and the engine's lookups see the user's text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    text: String,
    registry: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{text}`: {reason}")]
pub struct ImageRefError {
    pub text: String,
    pub reason: String,
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, ImageRefError> {
        let bad = |reason: &str| ImageRefError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|why| bad(&why))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/`; one before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                check_tag(tag).map_err(|why| bad(&why))?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("it has no repository name"));
        }
        if name.len() > MAX_NAME {
            return Err(bad(&format!(
                "the repository name is longer than {MAX_NAME} characters"
            )));
        }
        // As Docker decides: the first component is a registry when it has a
        // `.` or `:`, is `localhost`, or has capitals (a path never may).
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_registry(first).map_err(|why| bad(&why))?;
                (Some(first.to_string()), path)
            }
            _ => (None, name),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("the repository name must be lowercase"));
        }
        for component in path.split('/') {
            check_component(component).map_err(|why| bad(&why))?;
        }
        Ok(ImageRef {
            text: text.to_string(),
            registry,
            path: path.to_string(),
            tag,
            digest,
        })
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The registry host (with its port) as written, `None` for Docker Hub's default.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The registry the engine pulls from: Docker Hub unless one is named.
    pub fn domain(&self) -> &str {
        match self.registry.as_deref() {
            None | Some("index.docker.io" | "registry-1.docker.io") => DOCKER_HUB,
            Some(registry) => registry,
        }
    }

    /// The path as written (`postgres`, `library/postgres`, `minio/minio`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What the image is, whatever registry serves it: the path without
    /// Docker Hub's `library/` namespace (which mirrors keep), so
    /// `registry.local:5000/library/postgres:16` and `postgres:16` are both
    /// `postgres`, and `quay.io/minio/minio` is `minio/minio`.
    pub fn repository(&self) -> &str {
        self.path.strip_prefix("library/").unwrap_or(&self.path)
    }

    /// The last path component: `bitnami/redis` → `redis`.
    pub fn base(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The tag as written, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag, or `latest` when none is written and there is no digest.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `algorithm:hex` after the `@`, if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Registry and path as written, without tag or digest: what a pull's
    /// `fromImage` takes.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// What a pull asks the registry for: the digest when pinned, else the tag.
    pub fn pull_tag(&self) -> &str {
        self.digest
            .as_deref()
            .unwrap_or_else(|| self.tag_or_latest())
    }

    /// The fully qualified form: `docker.io/library/postgres:16`.
    pub fn canonical(&self) -> String {
        let domain = self.domain();
        let path = if domain == DOCKER_HUB && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        };
        let mut out = format!("{domain}/{path}");
        if self.tag.is_some() || self.digest.is_none() {
            out.push(':');
            out.push_str(self.tag_or_latest());
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// Whether both name the same image: same repository, tag and digest,
    /// wherever it is served from.
    pub fn same_image(&self, other: &ImageRef) -> bool {
        self.repository() == other.repository()
            && self.tag_or_latest() == other.tag_or_latest()
            && self.digest == other.digest
    }
}

/// `host[:port]`: DNS labels (letters, digits, `-`) joined by `.`, an IPv4
/// address, or an IPv6 address in brackets; the port is a number.
fn check_registry(registry: &str) -> Result<(), String> {
    let bad = || format!("`{registry}` is not a registry host (`host[:port]`)");
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            p => (None, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok(())
}

/// A path component: lowercase letters and digits, joined by one `.`, one
/// or two `_`, or any number of `-`.
fn check_component(component: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("path component `{component}` {why}"));
    if component.is_empty() {
        return Err("a path component is empty (`//` or a trailing `/`)".into());
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let chars: Vec<char> = component.chars().collect();
    if !alnum(chars[0]) || !alnum(chars[chars.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    let mut i = 0;
    while i < chars.len() {
        if alnum(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !alnum(chars[i]) {
            i += 1;
        }
        let sep: String = chars[start..i].iter().collect();
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return bad(&format!(
                "has `{sep}`; only lowercase letters, digits and single separators (`.`, `_`, `__`, `-`) are allowed"
            ));
        }
    }
    Ok(())
}

/// A tag: a word character, then up to 127 of word characters, `.` and `-`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = tag.chars().next().is_some_and(word)
        && tag.len() <= 128
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else if tag.is_empty() {
        Err("the tag after `:` is empty".into())
    } else {
        Err(format!(
            "tag `{tag}` is not letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`)"
        ))
    }
}

/// `algorithm:hex`, e.g. `sha256:` and 64 hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    let bad = || format!("digest `{digest}` is not `algorithm:hex` (e.g. `sha256:…`)");
    let (algorithm, hex) = digest.split_once(':').ok_or_else(bad)?;
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|c| {
        c.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && c.chars().all(|c| c.is_ascii_alphanumeric())
    });
    let hex_digits = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    if algorithm == "sha256" && hex_digits && hex.len() != 64 {
        return Err(format!(
            "a `sha256` digest has 64 hex digits, `{digest}` does not"
        ));
    }
    if !algorithm_ok || !hex_digits || hex.len() < 32 {
        return Err(bad());
    }
    Ok(())
}

impl std::str::FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl std::ops::Deref for ImageRef {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for ImageRef {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({:?})", self.text)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl PartialEq<str> for ImageRef {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for ImageRef {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (Option<String>, String, Option<String>, Option<String>) {
        let r = ImageRef::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.to_string(), text, "prints as written");
        (
            r.registry().map(String::from),
            r.path().to_string(),
            r.tag().map(String::from),
            r.digest().map(String::from),
        )
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn real_shapes_parse_into_their_parts() {
        assert_eq!(parts("postgres"), (None, "postgres".into(), None, None));
        assert_eq!(
            parts("postgres:16-alpine"),
            (None, "postgres".into(), s("16-alpine"), None)
        );
        assert_eq!(
            parts("library/redis:7"),
            (None, "library/redis".into(), s("7"), None)
        );
        assert_eq!(
            parts("minio/minio:RELEASE.2024-01-01T00-00-00Z"),
            (
                None,
                "minio/minio".into(),
                s("RELEASE.2024-01-01T00-00-00Z"),
                None
            )
        );
        assert_eq!(
            parts("registry.local:5000/library/postgres:16"),
            (
                s("registry.local:5000"),
                "library/postgres".into(),
                s("16"),
                None
            )
        );
        assert_eq!(
            parts("localhost:5000/app"),
            (s("localhost:5000"), "app".into(), None, None)
        );
        assert_eq!(
            parts("localhost/app:v2"),
            (s("localhost"), "app".into(), s("v2"), None)
        );
        assert_eq!(
            parts("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/app:0123abcd"),
            (
                s("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
                "shop/app".into(),
                s("0123abcd"),
                None
            )
        );
        assert_eq!(
            parts("ghcr.io/owner/team/tool:1.2.3"),
            (s("ghcr.io"), "owner/team/tool".into(), s("1.2.3"), None)
        );
        assert_eq!(
            parts("quay.io/minio/minio"),
            (s("quay.io"), "minio/minio".into(), None, None)
        );
        assert_eq!(
            parts(&format!("postgres@{DIGEST}")),
            (None, "postgres".into(), None, s(DIGEST))
        );
        assert_eq!(
            parts(&format!("postgres:16@{DIGEST}")),
            (None, "postgres".into(), s("16"), s(DIGEST))
        );
        assert_eq!(
            parts("10.0.0.5:5000/a_b__c/d-e---f.g:latest"),
            (
                s("10.0.0.5:5000"),
                "a_b__c/d-e---f.g".into(),
                s("latest"),
                None
            )
        );
        assert_eq!(
            parts("[::1]:5000/app:1"),
            (s("[::1]:5000"), "app".into(), s("1"), None)
        );
        assert_eq!(
            parts("Registry.Local/app"),
            (s("Registry.Local"), "app".into(), None, None)
        );
        assert_eq!(
            parts("devenv-local/postgres:16-alpine"),
            (None, "devenv-local/postgres".into(), s("16-alpine"), None)
        );
        assert_eq!(
            parts("shop-app:latest"),
            (None, "shop-app".into(), s("latest"), None)
        );
    }

    #[test]
    fn bad_references_say_why() {
        let why = |text: &str| ImageRef::parse(text).unwrap_err().to_string();
        assert!(why("").contains("empty"), "{}", why(""));
        assert!(why("Postgres:16").contains("must be lowercase"));
        assert!(why("registry.local:5000/Shop/app").contains("must be lowercase"));
        assert!(why("postgres:").contains("tag after `:` is empty"));
        assert!(why("postgres:-x").contains("tag `-x`"));
        assert!(why(&format!("postgres:{}", "a".repeat(129))).contains("tag"));
        assert!(why("shop//app").contains("empty"));
        assert!(why("shop/app/").contains("empty"));
        assert!(why("-app").contains("start and end"));
        assert!(why("a___b").contains("`___`"));
        assert!(why("a..b").contains("`..`"));
        assert!(why("my app").contains("`my app`") || why("my app").contains("` `"));
        assert!(why("postgres@sha256:abc").contains("64 hex digits"));
        assert!(why("postgres@md5").contains("not `algorithm:hex`"));
        assert!(why("registry.local:port/app").contains("not a registry host"));
        assert!(why("-bad.host/app").contains("not a registry host"));
        assert!(why(":16").contains("no repository name"));
        assert!(why(&"a".repeat(300)).contains("longer than 255"));
        assert!(
            why("postgres:16 ").contains("tag `16 `"),
            "{}",
            why("postgres:16 ")
        );
        let e = ImageRef::parse("Postgres").unwrap_err();
        assert_eq!(e.text, "Postgres");
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(
            (r.name().as_str(), r.pull_tag()),
            ("localhost:5000/app", "latest")
        );
        let r = ImageRef::parse("registry.local:5000/library/postgres:16").unwrap();
        assert_eq!(
            (r.name().as_str(), r.pull_tag()),
            ("registry.local:5000/library/postgres", "16")
        );
        let r = ImageRef::parse(&format!("postgres:16@{DIGEST}")).unwrap();
        assert_eq!((r.name().as_str(), r.pull_tag()), ("postgres", DIGEST));
    }

    #[test]
    fn a_mirrored_official_image_is_the_same_image() {
        let mirrored = ImageRef::parse("registry.local:5000/library/postgres:16").unwrap();
        let hub = ImageRef::parse("postgres:16").unwrap();
        assert_eq!(mirrored.repository(), "postgres");
        assert_eq!(hub.repository(), "postgres");
        assert_eq!(mirrored.base(), "postgres");
        assert!(mirrored.same_image(&hub));
        assert!(!hub.same_image(&ImageRef::parse("postgres:15").unwrap()));
        assert_eq!(hub.domain(), DOCKER_HUB);
        assert_eq!(mirrored.domain(), "registry.local:5000");
        assert_eq!(
            ImageRef::parse("quay.io/minio/minio").unwrap().repository(),
            "minio/minio"
        );
        assert_eq!(
            ImageRef::parse("docker.io/library/redis")
                .unwrap()
                .repository(),
            "redis"
        );
    }

    #[test]
    fn canonical_forms_follow_docker() {
        let c = |t: &str| ImageRef::parse(t).unwrap().canonical();
        assert_eq!(c("postgres"), "docker.io/library/postgres:latest");
        assert_eq!(c("minio/minio:1"), "docker.io/minio/minio:1");
        assert_eq!(c("index.docker.io/redis:7"), "docker.io/library/redis:7");
        assert_eq!(c("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            c(&format!("postgres@{DIGEST}")),
            format!("docker.io/library/postgres@{DIGEST}")
        );
    }

    #[test]
    fn it_prints_and_serialises_as_written() {
        let r = ImageRef::parse("registry.local:5000/library/postgres:16").unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"registry.local:5000/library/postgres:16\""
        );
        assert_eq!(&*r, "registry.local:5000/library/postgres:16");
        assert_eq!(
            format!("{r:?}"),
            "ImageRef(\"registry.local:5000/library/postgres:16\")"
        );
    }
}
