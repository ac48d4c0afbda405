//! The desk: `GET /`, a live web page of the wire (its HTML, CSS and JavaScript
//! under `src/http/desk/`, embedded in the binary), and the JSON endpoints it reads,
//! which scripts may read too: `GET /api/stats` (the counters, queue depths and
//! health, [`stats`]) and `GET /api/story/<article_id>` (every version of one
//! story from the daemon's own output, [`story`]) and `GET /api/rejects` (the
//! latest lines of the rejects file, [`rejects`]). The wire itself and the rejects
//! that follow come from `/events` (server-sent events), whose filters the page
//! uses: the page filters nothing itself.

use std::ops::ControlFlow;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::AppState;
use crate::error::RejectKind;
use crate::metrics::KindLabel;

const INDEX: &str = include_str!("desk/index.html");
const CSS: &str = include_str!("desk/desk.css");
const JS: &str = include_str!("desk/desk.js");

/// Rejects `/api/rejects` gives without `last=`, and the most it gives.
const REJECTS_DEFAULT: usize = 20;
const REJECTS_MAX: usize = 1000;

/// The longest `article_id` `/api/story` looks up (ids are 16 hex digits).
const MAX_ID: usize = 64;

fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page.
pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /desk.css`.
pub(super) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /desk.js`.
pub(super) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// `GET /api/stats`: the daemon's counters (since it started), the files waiting
/// in each stage, the last commit (Unix seconds, 0 before the first) and the
/// health `/health` reports, as one JSON object.
pub(super) async fn stats(State(st): State<AppState>) -> Response {
    let m = &st.shared.metrics;
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let last = m.last_commit.get();
    let (status, reasons) = match st.shared.health.check(last, now, super::STALL_SECS) {
        Ok(()) => ("ok", Vec::new()),
        Err(r) => ("unhealthy", r),
    };
    let mut rejected = Map::new();
    for k in RejectKind::ALL {
        let n = m
            .rejected
            .get_or_create(&KindLabel {
                kind: k.as_str().to_owned(),
            })
            .get();
        rejected.insert(k.as_str().to_owned(), n.into());
    }
    let d = &m.depths;
    axum::Json(json!({
        "now": now,
        "status": status,
        "reasons": reasons,
        "files_seen": m.files_seen.get(),
        "emitted": m.emitted.get(),
        "updates": m.updates.get(),
        "duplicates": m.duplicates.get(),
        "stale": m.stale.get(),
        "unchanged": m.unchanged.get(),
        "rejected": m.rejected_total(),
        "rejected_by_kind": rejected,
        "queue_depth": {
            "scan": d.scan.get(), "settle": d.settle.get(), "watch": d.watch.get(),
            "read": d.read.get(), "commit": d.commit.get(),
        },
        "commits": m.commits.get(),
        "last_commit": last,
        "output_bytes": m.output_bytes.get(),
        "events_subscribers": m.events_subscribers.get(),
    }))
    .into_response()
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// True for what an `article_id` can be: 1 to [`MAX_ID`] ASCII letters and digits.
fn plausible_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `GET /api/story/<article_id>`: `{"article_id", "versions": [{"id", "record"}]}`,
/// every version of the story in the daemon's records output (and its rotated
/// copies), oldest first, `id` being the version's `/events` id. 404 when the
/// output holds none.
pub(super) async fn story(State(st): State<AppState>, Path(article_id): Path<String>) -> Response {
    if !plausible_id(&article_id) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{article_id:?} is not an article_id: give the `article_id` of a record (16 hex digits)"),
        );
    }
    let Some(path) = st.shared.feed.path.clone() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "stories are read from the records output file, and this daemon writes its records to stdout or to NATS".into(),
        );
    };
    let Some(upto) = st.shared.subscribe().1 else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is starting and its output position is not known yet; try again in a moment".into(),
        );
    };
    let id = article_id.clone();
    let read = tokio::task::spawn_blocking(move || super::replay::story(&path, upto, &id)).await;
    let versions: Vec<Value> = match read {
        Ok(Ok(v)) => v
            .into_iter()
            .map(|(pos, record)| json!({"id": pos.to_string(), "record": record}))
            .collect(),
        Ok(Err(e)) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the records output ({e}): check its permissions and the disk"),
            )
        }
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: reading the output failed: {e}"),
            )
        }
    };
    if versions.is_empty() {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no record of article {article_id} in the records output (rotated away and deleted, or never emitted)"),
        );
    }
    axum::Json(json!({"article_id": article_id, "versions": Value::Array(versions)}))
        .into_response()
}

/// `GET /api/rejects[?last=N]`: `{"rejects": [...]}`, the last N lines of the rejects
/// file (`output.rejects`; 20 by default, at most 1000), newest first, each as the
/// file holds it (`docs/schema/reject.schema.json`). Read from the end of the file.
pub(super) async fn rejects(
    State(st): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut n = REJECTS_DEFAULT;
    for (k, v) in pairs {
        match (k.as_str(), v.parse::<usize>()) {
            ("last", Ok(v)) if (1..=REJECTS_MAX).contains(&v) => n = v,
            ("last", _) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                    "last={v:?}: give how many of the latest rejects to read, 1 to {REJECTS_MAX}"
                ),
                )
            }
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {k:?}: /api/rejects takes only last=N"),
                )
            }
        }
    }
    let path = st.shared.feed.rejects.clone();
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Value>> {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let mut out = Vec::new();
        let _stopped = super::backward::lines_back(&file, 0, len, |_, line| {
            if let Ok(v) = serde_json::from_slice::<Value>(line) {
                out.push(v);
            }
            if out.len() >= n {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(out)
    })
    .await;
    match read {
        Ok(Ok(list)) => axum::Json(json!({ "rejects": list })).into_response(),
        Ok(Err(e)) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the rejects file ({e}): check its permissions and the disk"),
        ),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: reading the rejects file failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_ids_are_looked_up() {
        assert!(plausible_id("1839577d31e01d1b"));
        for bad in ["", "../etc", "a b", "x\"y", &"a".repeat(65)] {
            assert!(!plausible_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_page_uses_no_other_host() {
        for (name, text) in [("index.html", INDEX), ("desk.css", CSS), ("desk.js", JS)] {
            assert!(!text.contains("http://"), "{name} names a host");
            assert!(!text.contains("https://"), "{name} names a host");
            assert!(!text.contains("//cdn"), "{name} names a host");
        }
        assert!(INDEX.contains("desk.js") && INDEX.contains("desk.css"));
    }
}
