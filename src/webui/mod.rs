//! `devenv ui`: a live page of the stack in the browser, served for as long
//! as the command runs (no daemon; several can run side by side).
//!
//! How it works: axum on the runtime devenv already has. Everything is
//! read from the engine and the labels, so the server can start and stop
//! at any time: a poller looks at the services once a second (and at once
//! after an action) and sends the page what changed; a follower per
//! service feeds its log lines; the timeline of the last `up` is read from
//! devenv's private folder (see [`crate::timeline`]). Pages get all of it
//! over one server-sent-events stream ([`events`]). Buttons are POSTs that
//! run the library functions the commands run ([`actions`]).
//!
//! Security ([`security`]): loopback by default, a random token in the
//! printed URL (a cookie after the first load), `Host` and `Origin`
//! checked, actions only as POSTs with the token header; anything else is
//! a 403. The page and its script are embedded in the binary (no CDN).

pub mod actions;
pub mod events;
mod logs;
pub mod security;
pub mod state;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::config::model::Stack;
use crate::engine::Engine;
use events::Hub;
use security::Guard;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// How often the services are looked at when nothing pokes the poller.
const LOOK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UiError {
    #[error("cannot listen on {addr}")]
    #[diagnostic(
        code(devenv::ui::listen),
        help("another program may hold the port: leave `--port` out for a free one")
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the page's token")]
    #[diagnostic(code(devenv::ui::token))]
    Token(#[source] std::io::Error),
    #[error("the page's server stopped")]
    #[diagnostic(code(devenv::ui::serve))]
    Serve(#[source] std::io::Error),
}

/// Where to listen.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub listen: IpAddr,
    /// 0: a free one.
    pub port: u16,
}

/// A server bound to its port, not serving yet.
pub struct Bound {
    listener: tokio::net::TcpListener,
    app: Router,
    /// The URL to open, with its token.
    pub url: String,
    /// Reachable from other machines (`--listen` named such an address).
    pub exposed: bool,
    registration: Option<std::path::PathBuf>,
}

#[derive(Clone)]
struct App {
    engine: Engine,
    stack: Arc<Stack>,
    guard: Arc<Guard>,
    hub: Arc<Hub>,
    token: Arc<str>,
}

/// Binds the port and starts watching the stack.
pub async fn bind(engine: Engine, stack: Stack, settings: Settings) -> Result<Bound, UiError> {
    let addr = SocketAddr::new(settings.listen, settings.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Listen { addr, source })?;
    let port = listener.local_addr().map_err(UiError::Serve)?.port();
    let token = security::token().map_err(UiError::Token)?;
    let guard = Guard::new(&token, port, settings.listen);
    let host = match settings.listen {
        ip if ip.is_unspecified() || ip.is_loopback() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let url = format!("http://{host}:{port}/?token={token}");
    let app = App {
        engine,
        stack: Arc::new(stack),
        guard: Arc::new(guard),
        hub: Arc::new(Hub::default()),
        token: token.into(),
    };
    watch(&app);
    let registration = register(&app.stack.project, &url);
    let router = Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/state", get(state_json))
        .route(
            "/api/events",
            get(|State(app): State<App>| async move { app.hub.stream() }),
        )
        .route(
            "/api/logs",
            get(|State(app): State<App>| async move { Json(app.hub.backlog()) }),
        )
        .route("/api/do/reveal", post(reveal))
        .route("/api/do/{action}", post(act))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard_layer,
        ))
        .with_state(app);
    Ok(Bound {
        listener,
        app: router,
        url,
        exposed: !settings.listen.is_loopback(),
        registration,
    })
}

impl Bound {
    /// Serves until the future is dropped (Ctrl-C in the command).
    pub async fn serve(self) -> Result<(), UiError> {
        let _gone = Unregister(self.registration);
        let service = self.app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .await
            .map_err(UiError::Serve)
    }
}

/// The running servers of a project, newest last: what `devenv open ui` opens.
pub fn running(project: &str) -> Vec<String> {
    let Ok(dir) = crate::scratch::private_dir() else {
        return Vec::new();
    };
    let prefix = format!("{project}.ui-");
    let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: i32 = name.strip_prefix(&prefix)?.parse().ok()?;
            // A killed server left its file: its process is gone.
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(e.path());
                return None;
            }
            let when = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((
                when,
                std::fs::read_to_string(e.path()).ok()?.trim().to_string(),
            ))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, url)| url).collect()
}

/// Notes this server's URL (with its token) in devenv's private folder,
/// which only this user can read.
fn register(project: &str, url: &str) -> Option<std::path::PathBuf> {
    let path = crate::scratch::private_dir()
        .ok()?
        .join(format!("{project}.ui-{}", std::process::id()));
    std::fs::write(&path, url).ok()?;
    Some(path)
}

struct Unregister(Option<std::path::PathBuf>);

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts the poller, the log followers and the batcher.
fn watch(app: &App) {
    let hub = app.hub.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(events::BATCH);
        loop {
            tick.tick().await;
            hub.flush();
        }
    });
    let app = app.clone();
    tokio::spawn(async move {
        let mut memory = state::Memory::default();
        let mut followed: HashSet<String> = HashSet::new();
        loop {
            if let Ok(rows) = state::rows(&app.engine, &app.stack, &mut memory).await {
                for r in &rows {
                    if r.state != "not created" && followed.insert(r.service.clone()) {
                        tokio::spawn(logs::follow(
                            app.engine.clone(),
                            app.stack.project.clone(),
                            r.service.clone(),
                            app.hub.clone(),
                        ));
                    }
                }
                let json = serde_json::to_string(&rows).expect("rows serialise");
                if *app.hub.state() != *json {
                    app.hub.set_state(json);
                }
            }
            let timeline = crate::timeline::load(&app.stack.project);
            app.hub
                .set_timeline(serde_json::to_string(&timeline).expect("a timeline serialises"));
            tokio::select! {
                _ = tokio::time::sleep(LOOK) => {}
                () = app.hub.poke.notified() => {}
            }
        }
    });
}

/// Every request passes here first (see [`security`]).
async fn guard_layer(State(app): State<App>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let text = |h: &header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let query_token = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    let seen = security::Request {
        method: req.method().as_str(),
        path: req.uri().path(),
        host: text(&header::HOST),
        origin: text(&header::ORIGIN),
        cookie: text(&header::COOKIE),
        header_token: headers.get(security::HEADER).and_then(|v| v.to_str().ok()),
        query_token,
    };
    match app.guard.check(&seen) {
        Err(refusal) => (StatusCode::FORBIDDEN, refusal.reason()).into_response(),
        Ok(access) if access.set_cookie => {
            // The token leaves the address bar (and the history) at once.
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&app.guard.set_cookie()) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(_) => {
            let mut r = next.run(req).await;
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert("x-frame-options", HeaderValue::from_static("DENY"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"),
            );
            r
        }
    }
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn index(State(app): State<App>) -> Response {
    let page = INDEX
        .replace("{{TOKEN}}", &app.token)
        .replace("{{PROJECT}}", &html_escape(&app.stack.project));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(serde::Serialize)]
struct Overview {
    project: String,
    services: serde_json::Value,
    commands: Vec<String>,
    snapshots: Vec<String>,
    test: bool,
    timeline: serde_json::Value,
}

async fn state_json(State(app): State<App>) -> Response {
    let overview = Overview {
        project: app.stack.project.clone(),
        services: serde_json::from_str(&app.hub.state()).unwrap_or_default(),
        commands: app.stack.commands.keys().cloned().collect(),
        snapshots: actions::snapshots(&app.engine, &app.stack).await,
        test: app.stack.test.is_some(),
        timeline: serde_json::from_str(&app.hub.timeline()).unwrap_or_default(),
    };
    Json(overview).into_response()
}

async fn act(
    State(app): State<App>,
    Path(action): Path<String>,
    body: Option<Json<actions::Request>>,
) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    // The lifecycle's futures are not all `Send`: each action runs on a
    // blocking thread of its own, driven by the same runtime.
    let handle = tokio::runtime::Handle::current();
    let (engine, stack, hub) = (app.engine.clone(), app.stack.clone(), app.hub.clone());
    let answer = tokio::task::spawn_blocking(move || {
        handle.block_on(actions::run(&engine, &stack, hub, &action, req))
    })
    .await;
    app.hub.poke.notify_one();
    match answer {
        Ok(a) => Json(a).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A service's connection details unmasked: only to a browser on this
/// machine (with `--listen`, another machine gets a 403).
async fn reveal(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<actions::Request>,
) -> Response {
    if !peer.ip().is_loopback() {
        return (
            StatusCode::FORBIDDEN,
            "refused: secrets are revealed to this machine only",
        )
            .into_response();
    }
    let Ok(status) = crate::lifecycle::status(&app.engine, &app.stack).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    // What the container holds is what a client must use.
    let project = &app.stack.project;
    let Ok(held) = crate::lifecycle::held_secrets(&app.engine, project, None).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let seen = crate::describe::Observed {
        status: &status,
        held: &held,
    };
    let all = crate::describe::describe(&app.stack, seen, true);
    let one = all
        .into_iter()
        .find(|d| Some(&d.service) == req.service.as_ref());
    match one {
        Some(d) => Json(d.connection).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
