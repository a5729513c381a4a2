//! The shared HTTPS router (issue 28): one nginx container of devenv's own
//! (labelled `devenv.router`, no project's) that serves every project's
//! `hostname`s as `https://NAME.localhost` and `http://NAME.localhost`.
//!
//! # How it works
//!
//! There is no daemon and no state of devenv's: the engine's labels are
//! the truth. Every `up` and `down` calls [`sync`], which, under a lock in
//! devenv's private folder (two projects' commands never interleave their
//! writes), lists the containers that carry a route label, computes the
//! configuration from them ([`config`], pure), and makes the router match:
//! started by the first `up` that needs it (on `127.0.0.1:80/443`, or
//! other ports when those are taken), attached to each routed project's
//! network, its configuration and per-project certificates (issued by
//! [`crate::ca`]) copied in and nginx reloaded when they changed, and
//! removed, with its network, when no route is left. A devenv killed
//! mid-way leaves labels the next sync reads again, so the router always
//! ends up as the labels say. `down` detaches the router from the
//! project's network before removing it ([`detach`]), as the engine
//! refuses to remove a network a container is still attached to.

pub mod config;

use std::collections::BTreeMap;

use crate::ca::{Ca, CaError};
use crate::config::model::{Build, Port, Protocol, Restart};
use crate::engine::{Engine, EngineError, RouterContainer};
use crate::image_ref::ImageRef;
use crate::images::{ImageError, Images};
use crate::names::{network_name, LABEL_ROUTER, ROUTER_CONTAINER, ROUTER_NETWORK};
use crate::plan::spec::{ContainerSpec, NetworkSpec};
use crate::report::Reporter;
use config::Routes;

/// The official image the router runs when a registry answers; offline,
/// its stand-in is built from `docker/router` (Debian's nginx).
pub const IMAGE: &str = "nginx:1.27-alpine";
/// The reporter's key for the router's lines.
const KEY: &str = "router";
/// Host ports tried when 80 or 443 is taken, in order.
const HTTP_PORTS: [u16; 4] = [80, 8880, 10080, 18080];
const HTTPS_PORTS: [u16; 4] = [443, 8443, 10443, 18443];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RouterError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Ca(#[from] CaError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),

    #[error(
        "a container named `{ROUTER_CONTAINER}` is on the engine and it is not devenv's router"
    )]
    #[diagnostic(
        code(devenv::router::foreign),
        help("devenv never touches a container it did not make; rename or remove that one to get HTTPS names")
    )]
    Foreign,

    #[error("the router refused its configuration: {output}")]
    #[diagnostic(
        code(devenv::router::reload),
        help("the configuration is generated from the containers' labels; `docker logs {ROUTER_CONTAINER}` has nginx's own words")
    )]
    Reload { output: String },

    #[error("no free host port for the router (tried {tried})")]
    #[diagnostic(
        code(devenv::router::ports),
        help("free port 80 and 443 on 127.0.0.1, or one of the others tried")
    )]
    NoPorts { tried: String },

    #[error("waiting for the router lock failed: {0}")]
    #[diagnostic(code(devenv::router::lock))]
    Lock(String),
}

/// Where the router listens on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub http: u16,
    pub https: u16,
}

impl Listening {
    /// `https://shop.localhost`, with the port when it is not 443.
    pub fn https_url(&self, host: &str) -> String {
        match self.https {
            443 => format!("https://{host}"),
            p => format!("https://{host}:{p}"),
        }
    }

    pub fn http_url(&self, host: &str) -> String {
        match self.http {
            80 => format!("http://{host}"),
            p => format!("http://{host}:{p}"),
        }
    }

    /// For tools that do not resolve `*.localhost` themselves.
    pub fn resolve_hint(&self, host: &str) -> String {
        format!("--resolve {host}:{}:127.0.0.1", self.https)
    }
}

/// Where the router listens, when it runs (`ps`, `describe`, `open`).
pub async fn listening(engine: &Engine) -> Option<Listening> {
    match engine.router_container().await {
        Ok((
            Some(RouterContainer {
                running: true,
                http: Some(http),
                https: Some(https),
                ..
            }),
            _,
        )) => Some(Listening { http, https }),
        _ => None,
    }
}

/// Holds the router lock while it lives (a file lock in devenv's private
/// folder: released by the kernel when a killed devenv's process ends).
struct Lock {
    _file: std::fs::File,
}

async fn lock() -> Result<Lock, RouterError> {
    tokio::task::spawn_blocking(|| {
        let dir = crate::scratch::private_dir().map_err(|e| RouterError::Lock(e.to_string()))?;
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("router.lock"))
            .map_err(|e| RouterError::Lock(e.to_string()))?;
        file.lock().map_err(|e| RouterError::Lock(e.to_string()))?;
        Ok(Lock { _file: file })
    })
    .await
    .map_err(|e| RouterError::Lock(e.to_string()))?
}

/// Makes the router match the engine's route labels (see the module docs);
/// where it listens, or `None` when nothing is routed (and no router runs).
pub async fn sync(
    engine: &Engine,
    reporter: &dyn Reporter,
) -> Result<Option<Listening>, RouterError> {
    let _lock = lock().await?;
    let routes = Routes::from_routed(&engine.routed_containers().await?);
    for (host, project) in &routes.clashes {
        reporter.notice(&format!(
            "`{host}` is served to project `{}`; project `{project}` asks for it too (give it another `hostname`)",
            routes.hosts[host].0
        ));
    }
    let (router, foreign) = engine.router_container().await?;
    if foreign {
        return Err(RouterError::Foreign);
    }
    if routes.hosts.is_empty() {
        if let Some(router) = router {
            remove(engine, &router).await?;
            reporter.done(KEY, "removed (no project is served)", true);
        }
        return Ok(None);
    }
    engine
        .ensure_network(&NetworkSpec {
            name: ROUTER_NETWORK.into(),
            labels: BTreeMap::from([(LABEL_ROUTER.into(), "true".into())]),
        })
        .await?;
    let stamp = config::stamp(&routes);
    let router = match router {
        Some(r) => r,
        None => create(engine, reporter).await?,
    };
    attach_networks(engine, &router, &routes).await?;
    let fresh = loaded(engine, &router.id, &stamp).await?;
    if !fresh {
        let ca = crate::ca::load_or_create()?;
        let tar = bundle(&ca, &routes, &stamp)?;
        engine.upload_archive(&router.id, "/", tar).await?;
    }
    if !router.running {
        engine.start_container(&router.id).await?;
        listening_soon(engine, &router.id).await;
    } else if !fresh {
        reload(engine, &router.id).await?;
    }
    if !fresh {
        engine
            .upload_archive(&router.id, "/", marker(&stamp).map_err(pack_error)?)
            .await?;
    }
    let listening = listening_now(engine).await?;
    if !fresh {
        reporter.done(
            KEY,
            &format!(
                "serving {} name{} on 127.0.0.1:{} (HTTPS) and :{} (HTTP)",
                routes.hosts.len(),
                if routes.hosts.len() == 1 { "" } else { "s" },
                listening.https,
                listening.http
            ),
            true,
        );
    }
    Ok(Some(listening))
}

/// Attaches the router to each routed project's network and detaches it
/// from the networks no route needs any more (never from its own).
async fn attach_networks(
    engine: &Engine,
    router: &RouterContainer,
    routes: &Routes,
) -> Result<(), EngineError> {
    let wanted = routes.networks();
    for net in &wanted {
        if !router.networks.contains(net) {
            engine.connect_network(net, &router.id).await?;
        }
    }
    for net in &router.networks {
        if net != ROUTER_NETWORK && !wanted.contains(net) {
            engine.disconnect_network(net, &router.id).await?;
        }
    }
    Ok(())
}

/// Whether nginx in the router runs the configuration stamped `stamp`.
/// Only when the file on disk and the one nginx last loaded (the marker
/// written after a reload or start succeeded) both carry this stamp: a
/// devenv killed between the copy and the reload left a file nginx never
/// read, and the next sync must not take it for loaded.
async fn loaded(engine: &Engine, id: &str, stamp: &str) -> Result<bool, EngineError> {
    let first_line = |b: Vec<u8>| {
        String::from_utf8_lossy(&b)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    let on_disk = engine
        .download_file(id, &format!("{}/{}", config::CONF_DIR, config::CONF_FILE))
        .await?
        .map(first_line);
    let loaded = engine
        .download_file(id, config::LOADED_FILE)
        .await?
        .map(first_line);
    Ok(
        on_disk.as_deref() == Some(&format!("{}{stamp}", config::STAMP))
            && loaded.as_deref() == Some(stamp),
    )
}

/// Where the router listens now, read back from the engine after a sync;
/// an error with nginx's last lines when it is not running on its ports.
async fn listening_now(engine: &Engine) -> Result<Listening, RouterError> {
    let (Some(now), _) = engine.router_container().await? else {
        return Err(RouterError::Reload {
            output: "the router container went away".into(),
        });
    };
    match (now.running, now.http, now.https) {
        (true, Some(http), Some(https)) => Ok(Listening { http, https }),
        _ => {
            let logs = engine.tail_logs(&now.id, 5).await.unwrap_or_default();
            Err(RouterError::Reload {
                output: logs.join("\n"),
            })
        }
    }
}

/// Waits (5 s at most) for a started nginx to hold its ports: it writes
/// its pid file after opening them, and a request before that would meet
/// a closed port (the engine's proxy answers, then hangs up).
async fn listening_soon(engine: &Engine, id: &str) {
    let check = "test -s /run/nginx.pid || test -s /var/run/nginx.pid";
    for _ in 0..50 {
        let cmd = vec!["sh".into(), "-c".into(), check.into()];
        match engine.exec(id, cmd, Vec::new(), None, |_| {}).await {
            Ok(0) => return,
            // Not running (any more): the caller's inspect says why.
            Err(_) => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Detaches the router from `project`'s network, so that `down` can
/// remove the network; nothing when no router runs.
pub async fn detach(engine: &Engine, project: &str) -> Result<(), EngineError> {
    if let (Some(router), _) = engine.router_container().await? {
        let net = network_name(project);
        if router.networks.contains(&net) {
            engine.disconnect_network(&net, &router.id).await?;
        }
    }
    Ok(())
}

/// Removes the router container (by the id checked to carry the router
/// label) and devenv's router network, nothing else.
async fn remove(engine: &Engine, router: &RouterContainer) -> Result<(), EngineError> {
    engine.remove_container(&router.id).await?;
    engine
        .remove_labelled_network(ROUTER_NETWORK, LABEL_ROUTER)
        .await?;
    Ok(())
}

fn pack_error(e: std::io::Error) -> RouterError {
    RouterError::Reload {
        output: format!("packing the configuration: {e}"),
    }
}

/// The marker saying nginx has loaded the configuration stamped `stamp`.
fn marker(stamp: &str) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(stamp.len() as u64 + 1);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        config::LOADED_FILE.trim_start_matches('/'),
        format!("{stamp}\n").as_bytes(),
    )?;
    tar.into_inner()
}

/// The router's configuration and certificates, as a tar to unpack at `/`.
fn bundle(ca: &Ca, routes: &Routes, stamp: &str) -> Result<Vec<u8>, RouterError> {
    let mut tar = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| RouterError::Reload {
        output: format!("packing the configuration: {e}"),
    };
    // The folder itself, closed to all but nginx's master (root): the
    // official image has no such folder for the files to land in.
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o700);
    dir.set_cksum();
    tar.append_data(
        &mut dir,
        config::CERT_DIR.trim_start_matches('/'),
        std::io::empty(),
    )
    .map_err(io)?;
    let mut add = |path: &str, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, path.trim_start_matches('/'), data)
    };
    for (project, names) in routes.by_project() {
        let leaf = ca.issue(&names)?;
        let (cert, key) = config::cert_files(&project);
        add(&cert, 0o644, leaf.chain_pem.as_bytes()).map_err(io)?;
        add(&key, 0o600, leaf.key_pem.as_bytes()).map_err(io)?;
    }
    let conf = config::nginx_conf(routes, stamp);
    add(
        &format!("{}/{}", config::CONF_DIR, config::CONF_FILE),
        0o644,
        conf.as_bytes(),
    )
    .map_err(io)?;
    tar.into_inner().map_err(io)
}

/// Checks the file first (`-s reload` only signals: a master that rejects
/// it keeps the old one without a word to us), then waits (5 s at most)
/// until the workers that served the old configuration stopped taking
/// connections, so that a request right after `up` meets the new one.
const RELOAD: &str = r#"
workers() {
  for p in /proc/[0-9]*; do
    case "$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)" in
      "nginx: worker process is shutting down"*) ;;
      "nginx: worker process"*) echo "${p#/proc/}" ;;
    esac
  done
}
old=$(workers)
nginx -t -q && nginx -s reload || exit 1
i=0
while [ $i -lt 50 ]; do
  left=
  for p in $(workers); do
    for o in $old; do [ "$p" = "$o" ] && left=1; done
  done
  [ -z "$left" ] && exit 0
  sleep 0.1
  i=$((i + 1))
done
"#;

async fn reload(engine: &Engine, id: &str) -> Result<(), RouterError> {
    let mut output = String::new();
    let code = engine
        .exec(
            id,
            vec!["sh".into(), "-c".into(), RELOAD.into()],
            Vec::new(),
            None,
            |s| output.push_str(s),
        )
        .await?;
    if code != 0 {
        return Err(RouterError::Reload {
            output: output.trim().to_string(),
        });
    }
    Ok(())
}

/// Host ports for the router: 80 and 443 unless taken, else the next pair
/// free on this machine and on the engine.
async fn choose_ports(engine: &Engine) -> Result<Listening, RouterError> {
    let published = engine.published_host_ports().await.unwrap_or_default();
    let local = engine.endpoint.is_local();
    let free = |p: u16| {
        !published.contains_key(&p)
            && (!local
                || !matches!(
                    std::net::TcpListener::bind(("127.0.0.1", p)),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
                ))
    };
    let http = HTTP_PORTS.into_iter().find(|p| free(*p));
    let https = HTTPS_PORTS.into_iter().find(|p| free(*p));
    match (http, https) {
        (Some(http), Some(https)) => Ok(Listening { http, https }),
        _ => Err(RouterError::NoPorts {
            tried: HTTP_PORTS
                .iter()
                .chain(&HTTPS_PORTS)
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn loopback(host: u16, container: u16) -> Port {
    Port {
        host_ip: Some("127.0.0.1".into()),
        host: Some(host),
        container,
        protocol: Protocol::Tcp,
        fixed: true,
        host_last: None,
        loopback_v6: false,
    }
}

/// The router container, created (not started: its configuration goes in
/// first) on the ports [`choose_ports`] finds.
async fn create(engine: &Engine, reporter: &dyn Reporter) -> Result<RouterContainer, RouterError> {
    let image = ImageRef::parse(IMAGE).expect("the constant parses");
    let fallback = Build {
        context: crate::assets::dir().join("docker/router"),
        dockerfile: "Dockerfile".into(),
        target: None,
        args: BTreeMap::new(),
        prepare: None,
    };
    let image = Images::default()
        .pull_or_standin(engine, KEY, &image, &fallback, reporter)
        .await?;
    let ports = choose_ports(engine).await?;
    if (ports.http, ports.https) != (80, 443) {
        reporter.notice(&format!(
            "ports 80/443 are taken: the router listens on 127.0.0.1:{} (HTTP) and :{} (HTTPS)",
            ports.http, ports.https
        ));
    }
    let spec = ContainerSpec {
        name: ROUTER_CONTAINER.into(),
        service: KEY.into(),
        image,
        command: None,
        entrypoint: None,
        env: Default::default(),
        user: None,
        working_dir: None,
        hostname: None,
        labels: BTreeMap::from([(LABEL_ROUTER.into(), "true".into())]),
        ports: vec![loopback(ports.http, 80), loopback(ports.https, 443)],
        mounts: Vec::new(),
        volumes: Vec::new(),
        restart: Restart::UnlessStopped,
        network: ROUTER_NETWORK.into(),
        aliases: Vec::new(),
        extra_hosts: Vec::new(),
        tty: false,
        stdin: false,
        hash: String::new(),
    };
    let id = match engine.create_container(&spec).await {
        Ok(id) => id,
        // Another devenv (another user's, without our lock) made it first.
        Err(e) if e.is_conflict() => match engine.router_container().await? {
            (Some(r), _) => return Ok(r),
            _ => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    Ok(RouterContainer {
        id,
        running: false,
        networks: vec![ROUTER_NETWORK.into()],
        http: Some(ports.http),
        https: Some(ports.https),
    })
}
