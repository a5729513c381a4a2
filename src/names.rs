//! What devenv names and labels on the engine: container, network and
//! volume names derived from the project, and the labels that carry a
//! project's identity. The planner writes them into specs and the engine
//! filters by them; neither owns them, so both read them here.

use crate::config::model::Stack;
use crate::image_ref::ImageRef;

pub const LABEL_PROJECT: &str = "devenv.project";
pub const LABEL_SERVICE: &str = "devenv.service";
pub const LABEL_HASH: &str = "devenv.config-hash";
/// Marks containers of `devenv run`, which are not the service's container.
pub const LABEL_ONEOFF: &str = "devenv.oneoff";
/// The folder of the stack file: with the project name, a project's identity
/// (two folders with one name are two projects). On containers, networks
/// and volumes.
pub const LABEL_DIR: &str = "devenv.project-dir";
/// On a volume devenv made for an anonymous volume (an image's `VOLUME`):
/// the container path it is mounted at.
pub const LABEL_ANONYMOUS: &str = "devenv.anonymous";
/// Short hashes of each part of the config (`command=…,env=…`), so the next
/// plan can say which part changed.
pub const LABEL_PARTS: &str = "devenv.config-parts";
/// What Docker Compose (and so Sail) labels its objects with.
pub const LABEL_COMPOSE_PROJECT: &str = "com.docker.compose.project";

/// On a service's container the router serves: the host name it answers
/// to (`shop.localhost`) and the container port it forwards to (issue 28).
pub const LABEL_ROUTE_HOST: &str = "devenv.route.host";
pub const LABEL_ROUTE_PORT: &str = "devenv.route.port";
/// On the router, its network and its image: devenv's own, no project's.
pub const LABEL_ROUTER: &str = "devenv.router";
/// The shared router container and the network it reaches nothing but
/// its own ports on (it joins each routed project's network as well).
pub const ROUTER_CONTAINER: &str = "devenv-router";
pub const ROUTER_NETWORK: &str = "devenv-router";
// Host names live with the config that resolves them (config must not
// depend on this module, which reads the config's `Stack`).
pub use crate::config::host::{host_label, host_name, project_url, HOST_DOMAIN};

/// Names of the objects devenv makes for a project.
pub fn container_name(project: &str, service: &str) -> String {
    format!("{project}-{service}-1")
}
pub fn network_name(project: &str) -> String {
    format!("{project}_default")
}
pub fn volume_name(project: &str, volume: &str) -> String {
    format!("{project}_{volume}")
}

/// The volume devenv makes for an anonymous volume of a service (an image's
/// `VOLUME` path): readable, and unique per path by a short hash.
pub fn anonymous_volume_name(project: &str, service: &str, target: &str) -> String {
    use sha2::{Digest, Sha256};
    let readable: String = target
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let digest = Sha256::digest(target.as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{project}_{service}_{readable}-{short}")
}

/// The stack's folder as devenv labels objects with it: absolute, symlinks resolved.
pub fn project_dir(stack: &Stack) -> String {
    stack
        .root
        .canonicalize()
        .unwrap_or_else(|_| stack.root.clone())
        .display()
        .to_string()
}

/// The tag a stand-in build gets: `postgres:16-alpine` →
/// `devenv-local/postgres:16-alpine`, from any registry (a mirror's
/// `registry.local:5000/library/postgres:16` gets PostgreSQL's stand-in too).
pub fn standin_tag(image: &ImageRef) -> ImageRef {
    let tag = format!("devenv-local/{}:{}", image.base(), image.tag_or_latest());
    ImageRef::parse(&tag).expect("a valid reference's last component and tag make one")
}
