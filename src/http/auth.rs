//! The access token of the listener (`[http] token` or `token_file`): when one is
//! configured, [`require`] lets a request through only if it carries it, as
//! `Authorization: Bearer <token>`, as the cookie [`COOKIE`] (what a page's
//! `EventSource` sends by itself) or as the query parameter `token`; otherwise it
//! answers 401 with `WWW-Authenticate: Bearer`. The comparison takes the same time
//! whatever the token sent (SHA-256 of both, compared in constant time).

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::security::Secret;

/// The cookie that may carry the token.
pub const COOKIE: &str = "wirewatch_token";

/// The query parameter that may carry the token.
pub const PARAMETER: &str = "token";

/// Who may use the listener.
#[derive(Clone)]
pub struct Auth {
    /// SHA-256 of the token; `None`: no token configured, every request passes.
    digest: Option<[u8; 32]>,
    /// `/health` passes without the token.
    public_health: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.digest.map(|_| "<redacted>"))
            .field("public_health", &self.public_health)
            .finish()
    }
}

impl Auth {
    /// Requires `token` when given (`/health` excepted with `public_health`).
    pub fn new(token: Option<&Secret>, public_health: bool) -> Auth {
        Auth {
            digest: token.map(|t| Sha256::digest(t.expose().as_bytes()).into()),
            public_health,
        }
    }

    /// True when a token is required.
    pub fn required(&self) -> bool {
        self.digest.is_some()
    }

    /// True when `offered` is the token.
    fn accepts(&self, offered: &str) -> bool {
        let Some(digest) = &self.digest else {
            return true;
        };
        let theirs: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        theirs.ct_eq(digest).into()
    }

    /// What a request says about the token: `None` when it carries none.
    fn judge(&self, headers: &HeaderMap, uri: &axum::http::Uri) -> Option<bool> {
        let offered = offered(headers, uri);
        if offered.is_empty() {
            return None;
        }
        Some(offered.iter().any(|t| self.accepts(t)))
    }
}

/// The tokens a request offers: from `Authorization: Bearer`, the cookie and the
/// query, in that order.
fn offered(headers: &HeaderMap, uri: &axum::http::Uri) -> Vec<String> {
    let mut out = Vec::new();
    for v in headers.get_all(header::AUTHORIZATION) {
        let Ok(v) = v.to_str() else { continue };
        if let Some((scheme, token)) = v.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                out.push(token.trim().to_owned());
            }
        }
    }
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name.trim() == COOKIE {
                    out.push(value.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri) {
        out.extend(
            pairs
                .into_iter()
                .filter(|(k, _)| k == PARAMETER)
                .map(|(_, v)| v),
        );
    }
    out
}

/// The middleware: passes the request on, or answers 401.
pub async fn require(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // The desk's page and its script hold no data: a browser loads them, then asks
    // the editor for the token (kept in a session cookie) before any data request.
    let page = matches!(path, "/" | "/desk.css" | "/desk.js");
    if auth.digest.is_none() || page || (auth.public_health && path == "/health") {
        return next.run(req).await;
    }
    let (challenge, message) = match auth.judge(req.headers(), req.uri()) {
        Some(true) => return next.run(req).await,
        None => (
            "Bearer realm=\"wirewatch\"",
            "this listener needs its access token ([http] token): send `Authorization: Bearer <token>`, the `wirewatch_token` cookie or the `token` query parameter",
        ),
        Some(false) => (
            "Bearer realm=\"wirewatch\", error=\"invalid_token\"",
            "wrong access token: send the one of [http] token or token_file",
        ),
    };
    tracing::debug!(path = req.uri().path(), "HTTP request refused: {message}");
    (
        StatusCode::UNAUTHORIZED,
        [
            (
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        format!("401 {message}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(auth: &Auth, headers: &[(&str, &str)], uri: &str) -> Option<bool> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        auth.judge(&h, &uri.parse().unwrap())
    }

    #[test]
    fn the_token_is_taken_from_header_cookie_or_query() {
        let auth = Auth::new(Some(&Secret::new("s3cret-s3cret-s3cret")), false);
        assert_eq!(judge(&auth, &[], "/metrics"), None);
        for (headers, uri) in [
            (
                vec![("authorization", "Bearer s3cret-s3cret-s3cret")],
                "/metrics",
            ),
            (
                vec![("authorization", "bearer  s3cret-s3cret-s3cret ")],
                "/metrics",
            ),
            (
                vec![("cookie", "a=b; wirewatch_token=s3cret-s3cret-s3cret")],
                "/events",
            ),
            (vec![], "/events?place=x&token=s3cret-s3cret-s3cret"),
        ] {
            assert_eq!(judge(&auth, &headers, uri), Some(true), "{headers:?} {uri}");
        }
        for (headers, uri) in [
            (vec![("authorization", "Bearer s3cret-s3cret-s3cre")], "/"),
            (vec![("authorization", "Bearer s3cret-s3cret-s3cretX")], "/"),
            (vec![("cookie", "wirewatch_token=nope")], "/"),
            (vec![], "/events?token="),
        ] {
            assert_eq!(
                judge(&auth, &headers, uri),
                Some(false),
                "{headers:?} {uri}"
            );
        }
        // A Basic header or another cookie is no token at all.
        assert_eq!(
            judge(
                &auth,
                &[("authorization", "Basic dTpw"), ("cookie", "other=1")],
                "/"
            ),
            None
        );
        assert!(Auth::new(None, false).accepts("anything"));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
