//! Images: look up, pull with progress, build from a context tar that
//! honours `.dockerignore`, and import a root filesystem tar as an image.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use futures_util::StreamExt;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{is_not_found, Engine, EngineError};
use crate::config::model::Build;
use crate::image_ref::ImageRef;
use crate::report::Reporter;

/// Why a pull did not give us the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullError {
    /// No registry could be reached at all (offline, as on an air-gapped machine).
    Unreachable(String),
    /// The registry answered: no such image, or no access.
    Refused(String),
}

impl PullError {
    fn classify(message: String) -> PullError {
        let m = message.to_lowercase();
        let offline = [
            "dial tcp",
            "no such host",
            "name resolution",
            "connection refused",
            "i/o timeout",
            "network is unreachable",
            "tls handshake",
            "timeout exceeded",
            "request canceled",
        ];
        if offline.iter().any(|s| m.contains(s)) {
            PullError::Unreachable(message)
        } else {
            PullError::Refused(message)
        }
    }

    pub fn message(&self) -> &str {
        match self {
            PullError::Unreachable(m) | PullError::Refused(m) => m,
        }
    }
}

impl Engine {
    /// The image's id, or `None` when the engine does not have it.
    pub async fn image_id(&self, name: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(name).await {
            Ok(img) => Ok(img.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting image `{name}`"))(e)),
        }
    }

    /// The user the image runs as (`USER`), or `None` for root or a missing image.
    pub async fn image_user(&self, name: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(name).await {
            Ok(img) => Ok(img.config.and_then(|c| c.user).filter(|u| !u.is_empty())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting image `{name}`"))(e)),
        }
    }

    /// Pulls `image`, reporting byte progress under the key `pull <image>`.
    pub async fn pull_image(&self, image: &str, reporter: &dyn Reporter) -> Result<(), PullError> {
        let key = format!("pull {image}");
        reporter.task(&key, "pulling");
        let (repo, tag) = split_tag(image);
        let opts = CreateImageOptions {
            from_image: Some(repo),
            tag: Some(tag),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(opts), None, None);
        let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        reporter.done(&key, "failed", false);
                        return Err(PullError::classify(msg));
                    }
                    if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                        if let (Some(cur), Some(total)) = (detail.current, detail.total) {
                            layers.insert(id, (cur.max(0) as u64, total.max(0) as u64));
                            let (c, t) =
                                layers.values().fold((0, 0), |a, l| (a.0 + l.0, a.1 + l.1));
                            reporter.progress(&key, c, t);
                        }
                    }
                }
                Err(e) => {
                    reporter.done(&key, "failed", false);
                    return Err(PullError::classify(e.to_string()));
                }
            }
        }
        reporter.done(&key, "pulled", true);
        Ok(())
    }

    /// Builds `build` into `tag`, streaming the builder's output to the reporter.
    pub async fn build_image(
        &self,
        service: &str,
        build: &Build,
        prepared: Option<&Path>,
        tag: &str,
        reporter: &dyn Reporter,
    ) -> Result<String, EngineError> {
        let context = build.context.clone();
        let dockerfile = build.dockerfile.clone();
        let prepared = prepared.map(Path::to_path_buf);
        let tar = tokio::task::spawn_blocking(move || {
            build_context_tar(&context, &dockerfile, prepared.as_deref())
        })
        .await
        .expect("the context tar task does not panic")?;
        let opts = BuildImageOptions {
            dockerfile: build.dockerfile.clone(),
            t: Some(tag.to_string()),
            target: build.target.clone().unwrap_or_default(),
            buildargs: Some(
                build
                    .args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
            ),
            // No labels: an image must come out the same whichever project
            // builds it, or projects sharing a tag would recreate each other.
            // Build steps reach package mirrors the way the host does; the default
            // bridge network may lack the host's DNS or proxy setup.
            networkmode: Some("host".into()),
            rm: true,
            ..Default::default()
        };
        let mut stream = self
            .docker
            .build_image(opts, None, Some(bollard::body_full(tar.into())));
        let mut last = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::Build {
                service: service.into(),
                message: e.to_string(),
            })?;
            if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Build {
                    service: service.into(),
                    message: msg.trim().to_string(),
                });
            }
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    reporter.output(service, line);
                    last.push(line.to_string());
                }
            }
        }
        self.image_id(tag).await?.ok_or_else(|| EngineError::Build {
            service: service.into(),
            message: format!(
                "the engine built nothing tagged `{tag}`: {}",
                last.join(" | ")
            ),
        })
    }

    /// Imports a root filesystem tar (debootstrap's) as image `repo:tag`.
    pub async fn import_rootfs(
        &self,
        tar: Vec<u8>,
        repo: &str,
        tag: &str,
    ) -> Result<(), EngineError> {
        let opts = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            changes: vec!["CMD [\"bash\"]".into()],
            ..Default::default()
        };
        let mut stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(EngineError::api(format!("importing `{repo}:{tag}`")))?;
            if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Build {
                    service: repo.to_string(),
                    message: msg,
                });
            }
        }
        Ok(())
    }
}

/// What a pull asks for: the repository and the tag (or the digest, when
/// pinned), with a registry port never mistaken for a tag. A reference that
/// does not parse goes to the engine as written, to be refused there.
fn split_tag(image: &str) -> (String, String) {
    match ImageRef::parse(image) {
        Ok(r) => (r.name(), r.pull_tag().to_string()),
        Err(_) => (image.to_string(), "latest".to_string()),
    }
}

/// `.dockerignore` patterns are anchored at the context root, unlike
/// `.gitignore`'s, so each gets a leading `/` before the gitignore matcher sees it.
fn dockerignore(context: &Path) -> Gitignore {
    let mut builder = GitignoreBuilder::new(context);
    if let Ok(text) = std::fs::read_to_string(context.join(".dockerignore")) {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (neg, pat) = match line.strip_prefix('!') {
                Some(p) => ("!", p),
                None => ("", line),
            };
            let pat = pat.trim_start_matches("./");
            let anchored = if pat.starts_with('/') || pat.starts_with("**") {
                pat.to_string()
            } else {
                format!("/{pat}")
            };
            let _ = builder.add_line(None, &format!("{neg}{anchored}"));
        }
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

/// The build context as a tar, without what `.dockerignore` excludes (the
/// Dockerfile itself always goes in, as Docker does), plus what a `prepare`
/// script left in `prepared` (kept outside the source tree), at the root.
pub fn build_context_tar(
    context: &Path,
    dockerfile: &str,
    prepared: Option<&Path>,
) -> Result<Vec<u8>, EngineError> {
    let err = |source| EngineError::Context {
        path: context.display().to_string(),
        source,
    };
    if !context.is_dir() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such folder",
        )));
    }
    let ignore = dockerignore(context);
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let walker = ignore::WalkBuilder::new(context)
        .standard_filters(false)
        .hidden(false)
        .filter_entry(move |e| {
            let rel = e.path();
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            e.depth() == 0 || !ignore.matched_path_or_any_parents(rel, is_dir).is_ignore()
        })
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| err(std::io::Error::other(e.to_string())))?;
        let rel = entry
            .path()
            .strip_prefix(context)
            .expect("walk stays inside the context");
        if rel.as_os_str().is_empty() {
            continue;
        }
        tar.append_path_with_name(entry.path(), rel).map_err(err)?;
    }
    let df = context.join(dockerfile);
    if df.is_file() {
        // Appending it again is harmless: the later entry wins when unpacked.
        tar.append_path_with_name(&df, dockerfile).map_err(err)?;
    }
    if let Some(prepared) = prepared.filter(|p| p.is_dir()) {
        for entry in ignore::WalkBuilder::new(prepared)
            .standard_filters(false)
            .hidden(false)
            .build()
        {
            let entry = entry.map_err(|e| err(std::io::Error::other(e.to_string())))?;
            let rel = entry
                .path()
                .strip_prefix(prepared)
                .expect("walk stays inside");
            if !rel.as_os_str().is_empty() {
                tar.append_path_with_name(entry.path(), rel).map_err(err)?;
            }
        }
    }
    tar.into_inner().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_without_confusing_registry_ports() {
        let split = |image: &str| {
            let (repo, tag) = split_tag(image);
            format!("{repo} {tag}")
        };
        assert_eq!(split("postgres:16-alpine"), "postgres 16-alpine");
        assert_eq!(split("redis"), "redis latest");
        assert_eq!(split("localhost:5000/app"), "localhost:5000/app latest");
        assert_eq!(split("localhost:5000/app:v2"), "localhost:5000/app v2");
        assert_eq!(
            split("registry.local:5000/library/postgres:16"),
            "registry.local:5000/library/postgres 16"
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            split(&format!("postgres:16@{digest}")),
            format!("postgres {digest}"),
            "a pinned image is pulled by its digest"
        );
    }

    #[test]
    fn offline_pulls_are_told_from_refused_ones() {
        assert!(matches!(
            PullError::classify(
                "Get \"https://registry/v2/\": dial tcp: lookup registry: no such host".into()
            ),
            PullError::Unreachable(_)
        ));
        assert!(matches!(
            PullError::classify("pull access denied for nosuch, repository does not exist".into()),
            PullError::Refused(_)
        ));
    }

    #[test]
    fn context_tar_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        std::fs::create_dir_all(root.join("app/logs")).unwrap();
        std::fs::write(root.join("target/debug/big"), "x").unwrap();
        std::fs::write(root.join("app/logs/a.log"), "x").unwrap();
        std::fs::write(root.join("app/logs/keep.txt"), "x").unwrap();
        std::fs::write(root.join("app/main.php"), "x").unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM x").unwrap();
        std::fs::write(
            root.join(".dockerignore"),
            "target\napp/logs/*\n!app/logs/keep.txt\nDockerfile\n",
        )
        .unwrap();
        let extra = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(extra.path().join("wheels")).unwrap();
        std::fs::write(extra.path().join("wheels/a.whl"), "x").unwrap();
        let tar = build_context_tar(root, "Dockerfile", Some(extra.path())).unwrap();
        let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .filter(|n| !n.ends_with('/'))
            .collect();
        names.sort();
        names.dedup();
        assert!(names.contains(&"app/main.php".to_string()));
        assert!(names.contains(&"app/logs/keep.txt".to_string()));
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(!names.iter().any(|n| n.starts_with("target")));
        assert!(!names.contains(&"app/logs/a.log".to_string()));
        assert!(names.contains(&"wheels/a.whl".to_string()), "{names:?}");
    }
}
