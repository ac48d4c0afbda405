//! The HTTP listener (off unless `[http] listen` is set): `GET /metrics`
//! (Prometheus), `GET /health`, and `GET /events`, the live stream of emitted
//! records as NDJSON (or server-sent events with `Accept: text/event-stream`).
//!
//! `/events` takes optional filters, all of which must match: `person`, `place`,
//! `org` (case- and accent-insensitive substrings of a name, as `wirewatch tail`),
//! `dateline` (same, on the dateline) and `q` (words that must all appear in the
//! title, lede or paragraphs). Subscribers read from a broadcast channel: the
//! pipeline never waits for them, and a client that falls more than 1,024 records
//! behind is disconnected.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::pipeline::{Event, Shared};
use crate::tail::{fold, Filter};

/// Seconds without a commit while work waits before `/health` says 503.
pub const STALL_SECS: f64 = 30.0;

#[derive(Clone)]
struct AppState {
    shared: Shared,
    registry: Arc<Registry>,
}

/// Query parameters of `/events`.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    /// Substring of a person's name or alias.
    pub person: Option<String>,
    /// Substring of a place's name.
    pub place: Option<String>,
    /// Substring of an organization's name or acronym.
    pub org: Option<String>,
    /// Substring of the dateline.
    pub dateline: Option<String>,
    /// Words that must all appear in the text.
    pub q: Option<String>,
}

/// The `/events` filter.
#[derive(Debug, Clone)]
pub struct EventFilter {
    names: Filter,
    dateline: Option<String>,
    words: Vec<String>,
}

impl EventFilter {
    /// Builds the filter from query parameters.
    pub fn new(q: &EventQuery) -> EventFilter {
        let one = |v: &Option<String>| {
            v.iter()
                .filter(|s| !s.trim().is_empty())
                .cloned()
                .collect::<Vec<_>>()
        };
        EventFilter {
            names: Filter::new(None, &one(&q.person), &one(&q.place), &one(&q.org)),
            dateline: q.dateline.as_deref().map(fold).filter(|s| !s.is_empty()),
            words: q
                .q
                .as_deref()
                .map(fold)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// True when the record passes.
    pub fn matches(&self, r: &Value) -> bool {
        if !self.names.matches(r) {
            return false;
        }
        if let Some(d) = &self.dateline {
            if !r["dateline"]
                .as_str()
                .is_some_and(|x| fold(x).contains(d.as_str()))
            {
                return false;
            }
        }
        if !self.words.is_empty() {
            let mut text = String::new();
            for key in ["title", "lede", "dateline"] {
                text.push_str(r[key].as_str().unwrap_or(""));
                text.push(' ');
            }
            for s in r["sections"].as_array().into_iter().flatten() {
                text.push_str(s["heading"].as_str().unwrap_or(""));
                text.push(' ');
                for p in s["paragraphs"].as_array().into_iter().flatten() {
                    text.push_str(p.as_str().unwrap_or(""));
                    text.push(' ');
                }
            }
            let text = fold(&text);
            if !self.words.iter().all(|w| text.contains(w.as_str())) {
                return false;
            }
        }
        true
    }
}

/// The router (exposed for tests).
pub fn router(shared: Shared) -> Router {
    let registry = Arc::new(shared.metrics.registry());
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/events", get(events))
        .with_state(AppState { shared, registry })
}

/// Binds `addr` and serves until `stop` turns true.
pub async fn serve(
    addr: SocketAddr,
    shared: Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "HTTP listener up: /metrics /health /events");
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

async fn metrics(State(st): State<AppState>) -> Response {
    let body = crate::metrics::Metrics::encode(&st.registry);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
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

async fn events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventQuery>,
) -> Response {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let filter = EventFilter::new(&q);
    let mut rx = st.shared.events.subscribe();
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        loop {
            let ev: Arc<Event> = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "an /events client fell behind; disconnecting it"
                    );
                    break;
                }
                Err(RecvError::Closed) => break,
            };
            if !filter.matches(&ev.value) {
                continue;
            }
            let chunk = if sse {
                format!("event: record\ndata: {}\n\n", ev.line)
            } else {
                format!("{}\n", ev.line)
            };
            // A client that does not read is dropped rather than buffered for.
            if tx.try_send(Ok(Bytes::from(chunk))).is_err() {
                break;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
    let ctype = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
