//! The HTTP listener (off unless `[http] listen` is set): `GET /metrics`
//! (Prometheus text format 0.0.4, or OpenMetrics when `Accept` asks for it),
//! `GET /health`, and `GET /events`, the stream of emitted records
//! (and, on request, of the other outcomes) as NDJSON, or as server-sent events with
//! `Accept: text/event-stream`, resumable from the output file.
//!
//! `/events` takes the parameters of [`query`] (an unknown one is a 400): filters,
//! all of which must match, repeated ones too: `person`, `place`, `org` (case- and
//! accent-insensitive substrings of a name, as `wirewatch tail`), `dateline` (same,
//! on the dateline) and `q` (words that must all appear in the title, lede or
//! paragraphs); `since` (an event id or a time), `last` (the last N matching records)
//! and `outcome`. Subscribers read from
//! a broadcast channel: the pipeline never waits for them; a client that goes away
//! is forgotten at once, and one that falls behind is disconnected ([`events`]).
//! Replays read the daemon's own output file ([`replay`]).
//!
//! With an access token configured (`[http] token` or `token_file`), every route
//! requires it ([`auth`]; `/health` may be left open with `public_health`); with
//! `tls_cert` and `tls_key`, the listener speaks HTTPS ([`tls`]).
//!
//! `GET /` is the desk, a live page of the wire, with the JSON endpoints it reads,
//! `GET /api/stats`, `GET /api/story/<article_id>` and `GET /api/rejects`
//! ([`desk`]).
//!
//! The listener is bound by [`bind`] before the pipeline starts, so that a taken
//! address stops the daemon at start; [`serve`] then serves it.

pub mod auth;
mod backward;
mod batch;
pub mod brief;
pub mod conn;
pub mod desk;
pub mod events;
pub mod query;
pub mod replay;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::pipeline::Shared;

/// Seconds without a commit while work waits before `/health` says 503.
pub const STALL_SECS: f64 = 30.0;

#[derive(Clone)]
struct AppState {
    shared: Shared,
    registry: Arc<Registry>,
}

/// The router (exposed for tests). Served without [`serve`]'s connection info, a
/// lagging `/events` client is ended by an error in its body instead of a cut.
/// `auth` guards every route (added before its layer).
pub fn router(shared: Shared, auth: auth::Auth) -> Router {
    let registry = Arc::new(shared.metrics.registry());
    Router::new()
        .route("/", get(desk::index))
        .route("/desk.css", get(desk::css))
        .route("/desk.js", get(desk::js))
        .route("/api/stats", get(desk::stats))
        .route("/api/story/{article_id}", get(desk::story))
        .route("/api/rejects", get(desk::rejects))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/events", get(events::events))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(auth),
            auth::require,
        ))
        .with_state(AppState { shared, registry })
}

/// Binds the HTTP listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// What to do about a failed [`bind`], for the message that stops the daemon.
pub fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process holds this address: stop it, or set another [http] listen"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: set another [http] listen"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this host has this address: set another [http] listen"
        }
        _ => "set another [http] listen, or leave it empty to run without HTTP",
    }
}

/// How the listener is reached: its token and TLS (from `[http]`).
#[derive(Debug, Clone)]
pub struct Access {
    /// Who may use it.
    pub auth: auth::Auth,
    /// HTTPS with this configuration; `None`: plain HTTP.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

/// Serves `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Shared,
    access: Access,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let scheme = if access.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(
            %addr,
            scheme,
            token = access.auth.required(),
            "HTTP listener up: / (the desk) /api/stats /api/story /api/rejects /metrics /health /events"
        );
    }
    let app = router(shared, access.auth).into_make_service_with_connect_info::<conn::Hangup>();
    let listener = match access.tls {
        Some(config) => conn::Listener::tls(listener, config)?,
        None => conn::Listener::new(listener),
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

/// `GET /metrics`: the text format 0.0.4, or OpenMetrics when `Accept` prefers it.
async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Format::negotiate(accept);
    let body = crate::metrics::encode(&st.registry, format);
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        body,
    )
        .into_response()
}

async fn health(State(st): State<AppState>) -> Response {
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let last = st.shared.metrics.last_commit.get();
    match st.shared.health.check(last, now, STALL_SECS) {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "last_commit": last})),
        )
            .into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unhealthy", "reasons": reasons, "last_commit": last})),
        )
            .into_response(),
    }
}
