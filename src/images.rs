//! Making sure every service has its image: present, pulled, built, or —
//! when no registry answers — built from a local stand-in, bootstrapping a
//! Debian base image with debootstrap if even that is missing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::path::Path;
use tokio::sync::OnceCell;

use crate::config::model::{Build, Service};
use crate::engine::{Engine, EngineError, PullError};
use crate::image_ref::ImageRef;
pub use crate::names::standin_tag;
use crate::report::Reporter;

/// The base image devenv can make itself from the Debian mirror.
const BOOTSTRAPPABLE: &str = "debian:bookworm-slim";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImageError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error("running `{script}` failed: {message}")]
    #[diagnostic(
        code(devenv::images::script),
        help("the script's output is above; it needs root for debootstrap and the Debian mirror apt is configured with")
    )]
    Script { script: String, message: String },
}

/// Tracks what one `up` does, so that services can get their images
/// concurrently while each image is still pulled or built once (a cell per
/// tag: the first caller builds, the others wait for it) and the offline
/// notice is said once.
#[derive(Default)]
pub struct Images {
    said_offline: AtomicBool,
    once: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
}

impl Images {
    fn cell(&self, key: &str) -> Arc<OnceCell<()>> {
        let mut cells = self.once.lock().expect("no panics while holding the lock");
        cells.entry(key.to_string()).or_default().clone()
    }

    /// Returns the image the service's container should run, making it exist.
    pub async fn ensure(
        &self,
        engine: &Engine,
        svc: &Service,
        rebuild: bool,
        reporter: &dyn Reporter,
    ) -> Result<ImageRef, ImageError> {
        if let Some(build) = &svc.build {
            if rebuild || engine.image_id(&svc.image).await?.is_none() {
                self.build(engine, &svc.name, build, &svc.image, reporter)
                    .await?;
            }
            return Ok(svc.image.clone());
        }
        if engine.image_id(&svc.image).await?.is_some() {
            return Ok(svc.image.clone());
        }
        if let Some(fallback) = &svc.fallback {
            self.pull_or_standin(engine, &svc.name, &svc.image, fallback, reporter)
                .await
        } else {
            engine
                .pull_image(&svc.image, reporter)
                .await
                .map_err(|e| unavailable(&svc.name, &svc.image, e))?;
            Ok(svc.image.clone())
        }
    }

    /// `image` (present or pulled), else its stand-in built from `fallback`
    /// when no registry answers: for a service, and for devenv's own router.
    pub async fn pull_or_standin(
        &self,
        engine: &Engine,
        name: &str,
        image: &ImageRef,
        fallback: &Build,
        reporter: &dyn Reporter,
    ) -> Result<ImageRef, ImageError> {
        if engine.image_id(image).await?.is_some() {
            return Ok(image.clone());
        }
        let standin = standin_tag(image);
        // Built on an earlier offline run: use it rather than retrying the registry.
        if engine.image_id(&standin).await?.is_some() {
            return Ok(standin);
        }
        match engine.pull_image(image, reporter).await {
            Ok(()) => Ok(image.clone()),
            Err(PullError::Unreachable(reason)) => {
                if !self.said_offline.swap(true, Ordering::Relaxed) {
                    reporter.notice(&format!(
                        "no registry reachable ({}); building local stand-ins instead",
                        first_line(&reason)
                    ));
                }
                self.build(engine, name, fallback, standin.as_str(), reporter)
                    .await?;
                Ok(standin)
            }
            Err(e) => Err(unavailable(name, image, e).into()),
        }
    }

    async fn build(
        &self,
        engine: &Engine,
        service: &str,
        build: &Build,
        tag: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), ImageError> {
        let cell = self.cell(tag);
        cell.get_or_try_init(|| self.build_once(engine, service, build, tag, reporter))
            .await
            .map(drop)
    }

    async fn build_once(
        &self,
        engine: &Engine,
        service: &str,
        build: &Build,
        tag: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), ImageError> {
        if !build.context.exists() && build.context.starts_with(crate::assets::dir()) {
            crate::assets::ensure().map_err(|e| ImageError::Script {
                script: "unpacking devenv's stand-in build files".into(),
                message: e.to_string(),
            })?;
        }
        let prepared = match &build.prepare {
            Some(prepare) => {
                let dir = crate::assets::prepared_dir(&build.context);
                std::fs::create_dir_all(&dir).map_err(|e| ImageError::Script {
                    script: prepare.display().to_string(),
                    message: format!("cannot make `{}`: {e}", dir.display()),
                })?;
                reporter.task(service, &format!("preparing ({})", prepare.display()));
                let env = [("DEVENV_PREPARED", dir.as_os_str())];
                run_script(prepare, &[], &env, reporter, service).await?;
                Some(dir)
            }
            None => None,
        };
        for base in base_images(&build.context.join(&build.dockerfile)) {
            self.ensure_base(engine, &base, reporter).await?;
        }
        reporter.task(service, "building");
        engine
            .build_image(service, build, prepared.as_deref(), tag, reporter)
            .await?;
        reporter.done(service, "built", true);
        Ok(())
    }

    /// A `FROM` image that is missing: pull it, or bootstrap Debian offline.
    async fn ensure_base(
        &self,
        engine: &Engine,
        image: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), ImageError> {
        let cell = self.cell(image);
        cell.get_or_try_init(|| self.ensure_base_once(engine, image, reporter))
            .await
            .map(drop)
    }

    async fn ensure_base_once(
        &self,
        engine: &Engine,
        image: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), ImageError> {
        if engine.image_id(image).await?.is_some() {
            return Ok(());
        }
        match engine.pull_image(image, reporter).await {
            Ok(()) => Ok(()),
            Err(PullError::Unreachable(_)) if bootstrappable(image) => {
                let assets = crate::assets::ensure().map_err(|e| ImageError::Script {
                    script: "unpacking devenv's stand-in build files".into(),
                    message: e.to_string(),
                })?;
                let script = assets.join("docker/base/bootstrap.sh");
                // In a fresh private folder, removed with it (see `crate::scratch`).
                let run_dir =
                    crate::scratch::run_dir("rootfs").map_err(|e| ImageError::Script {
                        script: script.display().to_string(),
                        message: format!("cannot make a private folder for its output: {e}"),
                    })?;
                let out = run_dir.path().join("rootfs.tar");
                reporter.task(
                    "base image",
                    &format!("bootstrapping {image} from the Debian mirror"),
                );
                run_script(&script, &[out.as_os_str()], &[], reporter, "bootstrap").await?;
                let tar = tokio::fs::read(&out)
                    .await
                    .map_err(|e| ImageError::Script {
                        script: script.display().to_string(),
                        message: format!("it wrote no `{}`: {e}", out.display()),
                    })?;
                let _ = tokio::fs::remove_file(&out).await;
                let image_ref = ImageRef::parse(image).expect("a bootstrappable image parses");
                engine
                    .import_rootfs(tar, &image_ref.name(), image_ref.tag_or_latest())
                    .await?;
                reporter.done("base image", &format!("{image} imported"), true);
                Ok(())
            }
            Err(e) => Err(EngineError::ImageUnavailable {
                service: "base image".into(),
                image: image.to_string(),
                reason: e.message().to_string(),
            }
            .into()),
        }
    }
}

/// Whether `image` is the Debian base devenv can bootstrap, as Docker Hub
/// or a mirror of it names it.
fn bootstrappable(image: &str) -> bool {
    let base = ImageRef::parse(BOOTSTRAPPABLE).expect("the constant parses");
    ImageRef::parse(image).is_ok_and(|r| r.same_image(&base))
}

fn unavailable(name: &str, image: &ImageRef, e: PullError) -> EngineError {
    EngineError::ImageUnavailable {
        service: name.to_string(),
        image: image.to_string(),
        reason: first_line(e.message()).to_string(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// Runs a host script, streaming its output as the task's output.
async fn run_script(
    script: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
    reporter: &dyn Reporter,
    source: &str,
) -> Result<(), ImageError> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let fail = |message: String| ImageError::Script {
        script: script.display().to_string(),
        message,
    };
    // One stream in the order the script wrote it: stderr joins stdout.
    let mut child = tokio::process::Command::new("bash")
        .arg("-c")
        .arg("exec bash \"$0\" \"$@\" 2>&1")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut tail = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        reporter.output(source, &line);
        tail.push(line);
        if tail.len() > 5 {
            tail.remove(0);
        }
    }
    let status = child.wait().await.map_err(|e| fail(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("{status}: {}", tail.join(" | "))))
    }
}

/// `FROM` images of a Dockerfile that are not its own earlier stages.
pub fn base_images(dockerfile: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dockerfile) else {
        return Vec::new();
    };
    let mut stages = Vec::new();
    let mut bases = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        let Some(image) = rest.first() else { continue };
        if !stages
            .iter()
            .any(|s: &String| s.eq_ignore_ascii_case(image))
            && !image.contains('$')
            && *image != "scratch"
        {
            bases.push(image.to_string());
        }
        if let (Some(kw), Some(alias)) = (rest.get(1), rest.get(2)) {
            if kw.eq_ignore_ascii_case("AS") {
                stages.push(alias.to_string());
            }
        }
    }
    bases.dedup();
    bases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standin_tags_keep_name_and_tag() {
        let standin = |image: &str| standin_tag(&ImageRef::parse(image).unwrap()).to_string();
        assert_eq!(
            standin("postgres:16-alpine"),
            "devenv-local/postgres:16-alpine"
        );
        assert_eq!(standin("mailhog/mailhog"), "devenv-local/mailhog:latest");
        assert_eq!(standin("localhost:5000/cache"), "devenv-local/cache:latest");
    }

    #[test]
    fn r14_a_mirrored_image_is_the_image_it_mirrors() {
        let mirrored = ImageRef::parse("registry.local:5000/library/postgres:16").unwrap();
        let hub = ImageRef::parse("postgres:16").unwrap();
        assert_eq!(standin_tag(&mirrored), standin_tag(&hub));
        assert_eq!(
            standin_tag(&mirrored).to_string(),
            "devenv-local/postgres:16"
        );
        assert!(bootstrappable("debian:bookworm-slim"));
        assert!(bootstrappable(
            "registry.local:5000/library/debian:bookworm-slim"
        ));
        assert!(bootstrappable("docker.io/library/debian:bookworm-slim"));
        assert!(!bootstrappable("debian:bookworm"));
    }

    #[test]
    fn base_images_skip_earlier_stages() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("Dockerfile");
        std::fs::write(
            &df,
            "FROM debian:bookworm-slim AS deps\nRUN x\nFROM deps AS prod\nFROM --platform=linux/amd64 prod AS dev\nFROM scratch\n",
        )
        .unwrap();
        assert_eq!(base_images(&df), vec!["debian:bookworm-slim"]);
    }
}
