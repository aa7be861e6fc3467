//! Origin, Host, trust and token checks (API.md §1.2) for every request and upgrade, plus
//! CORS for allowed origins.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::auth::{self, RequestFacts};
use super::error::ApiError;
use super::peer_uid::PeerInfo;

fn query_token(query: Option<&str>) -> Option<String> {
    let q = query?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| percent_decode(v))
    })
}

/// A query value as a form encodes it: `+` is a space, `%XX` a byte; a malformed escape stays
/// as written and invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn cors_headers(resp: &mut Response, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

pub async fn guard(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(conn): ConnectInfo<PeerInfo>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let headers = req.headers();
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let origin = text("origin");
    let host = text("host");
    let token_header = text("x-telepty-token");
    let authorization = text("authorization");
    let qtoken = query_token(req.uri().query());
    // Health, and the pairing claim whose one-time code is its credential (api::pair).
    let skip_token = (req.method() == Method::GET && req.uri().path() == "/api/health")
        || (req.method() == Method::POST && req.uri().path() == "/api/pair/claim");
    let peer = conn.peer;
    // The uid lookup reads procfs: only for loopback requests whose answer depends on it.
    let same_user = !skip_token && auth::is_loopback(peer.ip()) && conn.is_owner();
    let facts = RequestFacts {
        peer: peer.ip(),
        same_user,
        origin: origin.as_deref(),
        host: host.as_deref(),
        token_header: token_header.as_deref(),
        query_token: qtoken.as_deref(),
        authorization: authorization.as_deref(),
        skip_token,
    };
    if let Err(f) = auth::check(&state.trust, &facts) {
        tracing::debug!(
            "refused {} {} from {}: {:?}",
            req.method(),
            req.uri().path(),
            peer,
            f
        );
        // A refused client gets no keep-alive to try again on at leisure.
        let mut resp = ApiError::from(f).into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    let allowed_origin = origin.filter(|o| auth::origin_allowed(&state.trust, o));
    if req.method() == Method::OPTIONS {
        if let Some(o) = &allowed_origin {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            cors_headers(&mut resp, o);
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Content-Type, X-Telepty-Token, Authorization"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            return resp;
        }
    }
    let mut resp = next.run(req).await;
    if let Some(o) = &allowed_origin {
        cors_headers(&mut resp, o);
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(super::percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(
            super::query_token(Some("x=1&token=ab%2Dc")).as_deref(),
            Some("ab-c")
        );
        assert_eq!(super::query_token(Some("x=1")), None);
    }
}
