//! Bind or sync: how a service's source (the folders of its `sync` rules)
//! reaches its container. On a local Linux engine the folders are
//! bind-mounted at their targets and the container runs as the invoking
//! user (as Sail and DDEV do), so every container of the service — `up`,
//! `run`, `test`, recreates — sees the working tree, and files made inside
//! land in the checkout owned by the user. Where a mount is slow or cannot
//! reach the host's files (Docker Desktop, a remote engine) the folders are
//! copied instead ([`super::sync`]). `mount = "bind" | "sync"` forces one.

use crate::config::model::{Mount, MountMode, Service, WatchAction};
use crate::engine::Endpoint;

/// The mode `svc` runs in against the engine at `endpoint`.
pub fn mode(svc: &Service, endpoint: &Endpoint) -> MountMode {
    svc.mount.unwrap_or_else(|| auto(endpoint))
}

/// Bind where the engine shares the host's file system: a Unix socket on
/// Linux that is not Docker Desktop's (which runs the engine in a VM).
fn auto(endpoint: &Endpoint) -> MountMode {
    let host = endpoint.host.as_str();
    let path = host.strip_prefix("unix://").unwrap_or(host);
    let local = cfg!(target_os = "linux") && path.starts_with('/') && !path.contains("/.docker/");
    if local {
        MountMode::Bind
    } else {
        MountMode::Sync
    }
}

/// In bind mode, adds a bind mount for each `sync` rule's folder that no
/// mount already puts at its target, and (unless the service names its
/// `user`) runs the container as the invoking user. Idempotent: a service
/// prepared twice comes out the same, so its config hash does too.
pub fn prepare(svc: &mut Service, endpoint: &Endpoint) {
    if mode(svc, endpoint) != MountMode::Bind {
        return;
    }
    let mut added = false;
    for rule in svc.watch.clone() {
        let Some(target) = rule.target.as_deref() else {
            continue;
        };
        // A folder not there yet would be created by the engine, root-owned.
        if rule.action != WatchAction::Sync
            || !rule.path.exists()
            || super::plan::is_bind_mounted(svc, &rule)
        {
            continue;
        }
        svc.volumes.push(Mount::Bind {
            source: rule.path.clone(),
            target: target.to_string(),
            read_only: false,
        });
        added = true;
    }
    let has_bind = svc
        .watch
        .iter()
        .any(|r| super::plan::is_bind_mounted(svc, r));
    if (added || has_bind) && svc.user.is_none() {
        svc.user = host_user();
        // The name the image's entrypoint gives the host's uid when it has
        // no passwd entry there (docker/app adds one, with a home, as
        // Sail's `WWWUSER` does): prompts, `whoami`, Composer's cache.
        if let Some(name) = host_user_name() {
            svc.env
                .entry(HOST_USER_VAR.to_string())
                .or_insert(crate::config::model::EnvValue {
                    value: name,
                    secret: false,
                });
        }
    }
}

/// The variable that carries the invoking user's name into a bind-mode container.
pub const HOST_USER_VAR: &str = "DEVENV_HOST_USER";

/// The invoking user's login name, if it is one a passwd entry can carry.
fn host_user_name() -> Option<String> {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()?;
    let fits = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    fits.then_some(name)
}

/// `uid:gid` of the invoking user, the container's user in bind mode.
#[cfg(unix)]
fn host_user() -> Option<String> {
    let (uid, gid) = (rustix::process::getuid(), rustix::process::getgid());
    Some(format!("{}:{}", uid.as_raw(), gid.as_raw()))
}

#[cfg(not(unix))]
fn host_user() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str) -> Endpoint {
        Endpoint::new(host, "test")
    }

    fn stack(extra: &str) -> crate::config::model::Stack {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        let toml = format!(
            r#"
            [services.app]
            image = "x"
            volumes = ["./uploads:/app/uploads"]
            {extra}
            [[services.app.watch]]
            path = "src"
            action = "sync"
            target = "/app"
            [[services.app.watch]]
            path = "src/public"
            action = "sync"
            target = "/app/public"
            [[services.app.watch]]
            path = "src/database"
            action = "exec"
            run = "true"
        "#
        );
        std::fs::write(dir.path().join("dev.toml"), toml).unwrap();
        std::fs::create_dir_all(dir.path().join("src/public")).unwrap();
        let stack = crate::config::load(&crate::config::LoadOptions {
            file: Some(dir.path().join("dev.toml")),
            project: Some("t".into()),
            profiles: Vec::new(),
            cwd: dir.path().into(),
        })
        .unwrap();
        // The folders must outlive the load for `prepare` to see them.
        std::mem::forget(dir);
        stack
    }

    #[test]
    fn a_local_linux_socket_binds_everything_else_syncs() {
        let bind = if cfg!(target_os = "linux") {
            MountMode::Bind
        } else {
            MountMode::Sync
        };
        assert_eq!(auto(&endpoint("unix:///var/run/docker.sock")), bind);
        assert_eq!(auto(&endpoint("/run/user/1000/docker.sock")), bind);
        assert_eq!(auto(&endpoint("tcp://10.0.0.5:2375")), MountMode::Sync);
        assert_eq!(auto(&endpoint("ssh://me@build-box")), MountMode::Sync);
        assert_eq!(
            auto(&endpoint("unix:///home/me/.docker/desktop/docker.sock")),
            MountMode::Sync
        );
    }

    #[test]
    fn bind_mode_mounts_each_uncovered_sync_folder_once_and_maps_the_user() {
        let local = endpoint("unix:///var/run/docker.sock");
        let mut svc = stack("mount = \"bind\"").services["app"].clone();
        prepare(&mut svc, &local);
        let binds: Vec<(String, String)> = svc
            .volumes
            .iter()
            .filter_map(|m| match m {
                Mount::Bind { source, target, .. } => Some((
                    source.file_name().unwrap().to_string_lossy().into_owned(),
                    target.clone(),
                )),
                Mount::Volume { .. } | Mount::Anonymous { .. } => None,
            })
            .collect();
        // `src/public` is already inside the `src` mount: no second mount.
        assert_eq!(
            binds,
            [
                ("uploads".into(), "/app/uploads".into()),
                ("src".into(), "/app".into())
            ]
        );
        #[cfg(unix)]
        assert_eq!(
            svc.user.as_deref(),
            Some(
                format!(
                    "{}:{}",
                    rustix::process::getuid().as_raw(),
                    rustix::process::getgid().as_raw()
                )
                .as_str()
            )
        );
        // Issue 26: the entrypoint names the uid after the invoking user.
        assert_eq!(
            svc.env.get(HOST_USER_VAR).map(|v| v.value.clone()),
            host_user_name()
        );
        let once = svc.clone();
        prepare(&mut svc, &local);
        assert_eq!(
            crate::plan::config_hash(&svc, "i"),
            crate::plan::config_hash(&once, "i"),
            "preparing twice changes nothing"
        );
    }

    #[test]
    fn sync_mode_and_a_named_user_are_left_alone() {
        let local = endpoint("unix:///var/run/docker.sock");
        let mut svc = stack("mount = \"sync\"").services["app"].clone();
        let before = svc.volumes.clone();
        prepare(&mut svc, &local);
        assert_eq!(svc.volumes, before);
        assert_eq!(svc.user, None);

        let mut svc = stack("user = \"www-data\"\nmount = \"bind\"").services["app"].clone();
        prepare(&mut svc, &local);
        assert_eq!(svc.user.as_deref(), Some("www-data"));
        assert!(!svc.env.contains_key(HOST_USER_VAR));
        assert_eq!(svc.volumes.len(), 2);
    }
}
