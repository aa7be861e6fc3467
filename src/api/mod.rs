//! HTTP + WebSocket server over the engine (the contract is ../shared/API.md).
//!
//! The router is shared by `telepty daemon` and the dashboard's embedded server.

pub mod auth;
mod body;
mod daemon;
mod error;
mod guard;
pub mod limits;
mod openapi;
mod pair;
pub mod peer_uid;
mod relay;
mod routes;
mod server;
mod sock_diag;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use daemon::{
    DaemonOptions, RunFlags, RunningServer, Startup, resolve_bind, resolve_bind_with, run_daemon,
    start_server,
};
pub use relay::Relay;

use crate::config::{Paths, TrustConfig};
use crate::engine::Engine;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a request handler needs.
pub struct ApiState {
    pub engine: Engine,
    pub trust: auth::TrustConfig,
    pub paths: Paths,
    pub bind_host: String,
    pub port: u16,
    /// `cmux`, `kitty` or `headless`, detected at startup.
    pub terminal: String,
    pub relay: Relay,
    pub pairing: pair::Pairing,
}

impl ApiState {
    /// `trust` is the configuration's (the same struct `telepty config show` prints).
    pub fn new(
        engine: Engine,
        paths: Paths,
        token: String,
        (bind_host, port): (&str, u16),
        ts: &TrustConfig,
    ) -> Self {
        let peer_allowlist = ts
            .peer_allowlist
            .iter()
            .filter_map(|e| match e.parse::<auth::IpNet>() {
                Ok(n) => Some(n),
                Err(err) => {
                    tracing::warn!("ignoring peer_allowlist entry {e:?}: {err}");
                    None
                }
            })
            .collect();
        let trust = auth::TrustConfig {
            allowed_origins: ts.allowed_origins.clone(),
            allowed_hosts: ts.allowed_hosts.clone(),
            peer_allowlist,
            trust_tailscale: ts.trust_tailscale,
            token: token.clone(),
            jwt_secret: std::env::var("TELEPTY_JWT_SECRET")
                .ok()
                .filter(|s| !s.is_empty()),
            machine_id: engine.machine_id().to_string(),
            hostname: crate::util::hostname(),
            bind_host: bind_host.to_string(),
        };
        let relay = Relay::from_env(engine.machine_id().to_string(), token, port);
        ApiState {
            engine,
            trust,
            paths,
            bind_host: bind_host.to_string(),
            port,
            terminal: detect_terminal(),
            relay,
            pairing: Default::default(),
        }
    }

    pub fn version(&self) -> String {
        std::env::var("TELEPTY_COMPAT_VERSION")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| VERSION.to_string())
    }
}

fn detect_terminal() -> String {
    if std::env::var_os("CMUX_WORKSPACE_ID").is_some_and(|v| !v.is_empty()) {
        return "cmux".into();
    }
    if std::env::var_os("KITTY_LISTEN_ON").is_some_and(|v| !v.is_empty()) {
        return "kitty".into();
    }
    let kitty_sock = std::fs::read_dir("/tmp")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("kitty-sock"))
        })
        .unwrap_or(false);
    if kitty_sock {
        "kitty".into()
    } else {
        "headless".into()
    }
}

pub fn router(state: Arc<ApiState>) -> Router {
    use axum::routing::delete;
    Router::new()
        .route("/api/health", get(routes::health))
        .route("/api/meta", get(routes::meta))
        .route("/api/peers", get(routes::peers))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/pair", post(pair::start).get(pair::status))
        .route("/api/pair/claim", post(pair::claim))
        .route("/api/sessions", get(routes::list))
        .route("/api/sessions/spawn", post(routes::spawn))
        .route("/api/sessions/register", post(routes::register))
        .route("/api/sessions/submit-all", post(routes::submit_all))
        .route("/api/sessions/multicast/inject", post(routes::multicast))
        .route("/api/sessions/broadcast/inject", post(routes::broadcast))
        // Extensions. A session may be named `lost` or `resurrect`: PATCH and DELETE of these
        // paths still reach it (GET does not, as for a session named `spawn`).
        .route(
            "/api/sessions/lost",
            get(routes::lost)
                .patch(|st, b| routes::rename_named(st, "lost", b))
                .delete(|st| routes::delete_named(st, "lost")),
        )
        .route(
            "/api/sessions/resurrect",
            post(routes::resurrect)
                .patch(|st, b| routes::rename_named(st, "resurrect", b))
                .delete(|st| routes::delete_named(st, "resurrect")),
        )
        .route(
            "/api/sessions/{id}",
            get(ws::session_get)
                .patch(routes::rename)
                .delete(routes::delete_session),
        )
        .route(
            "/api/sessions/{id}/state",
            get(routes::get_state).post(routes::post_state),
        )
        .route("/api/sessions/{id}/inject", post(routes::inject))
        .route("/api/sessions/{id}/submit", post(routes::submit))
        .route("/api/sessions/{id}/screen", get(routes::screen))
        .route("/api/sessions/{id}/wait", post(routes::wait))
        .route("/api/sessions/{id}/keys", post(routes::keys))
        .route("/api/sessions/{id}/resize", post(routes::resize))
        .route("/api/sessions/{id}/recording", get(routes::recording))
        .route(
            "/api/sessions/{id}/mailbox",
            get(routes::mailbox).delete(routes::mailbox_clear),
        )
        .route("/api/sessions/{id}/mailbox/ack", post(routes::mailbox_ack))
        .route(
            "/api/sessions/{id}/mailbox/dead-letter",
            delete(routes::mailbox_dead_clear),
        )
        .route("/api/bus", get(ws::bus))
        .route("/api/bus/publish", post(routes::publish))
        .route(
            "/api/handoff",
            post(routes::handoff_create).get(routes::handoff_list),
        )
        .route(
            "/api/handoff/{id}",
            get(routes::handoff_get).patch(routes::handoff_patch),
        )
        .route("/api/handoff/{id}/claim", post(routes::handoff_claim))
        .route(
            "/api/threads",
            post(routes::thread_create).get(routes::thread_list),
        )
        .route(
            "/api/threads/{id}",
            get(routes::thread_get).patch(routes::thread_patch),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown` resolves, with the limits of [`limits`]: the
/// file limit is raised first and bounds the connection cap (`TELEPTY_MAX_CONNECTIONS` lowers
/// or raises the cap).
pub async fn serve(
    listener: tokio::net::TcpListener,
    local: Option<tokio::net::UnixListener>,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = limits::max_connections(limits::raise_nofile());
    let cap = crate::config::env_u64("TELEPTY_MAX_CONNECTIONS", cap as u64, 1);
    let limiter = limits::ConnLimiter::new(
        usize::try_from(cap).unwrap_or(usize::MAX),
        limits::MAX_PER_ADDRESS,
    );
    server::serve(listener, local, router(state), limiter, shutdown).await
}
