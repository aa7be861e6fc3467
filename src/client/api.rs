//! Typed calls to the daemon's HTTP routes (API.md §3–§9, §17).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::addr::encode_component;
use super::error::tidy_reason;
use super::{ClientError, DaemonAddr};
use crate::httpc::{HttpClient, HttpError};

/// Timeout of an ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `?wait=delivered` holds the answer for up to 30 s (§17); leave room for the answer.
pub const INJECT_WAIT_TIMEOUT: Duration = Duration::from_secs(35);
/// Extra time given to `wait` beyond its own timeout.
pub const WAIT_GRACE: Duration = Duration::from_secs(5);
/// Default and maximum `timeout_ms` of `/wait` (§17).
pub const WAIT_DEFAULT_MS: u64 = 10_000;
pub const WAIT_MAX_MS: u64 = 300_000;

use crate::wire::request::{BroadcastRequest, KeysRequest, MulticastRequest, RenameRequest};
pub use crate::wire::request::{InjectRequest, SpawnRequest, WaitRequest};

/// Query of `GET /api/sessions/:id/screen`.
#[derive(Clone, Debug, Default)]
pub struct ScreenQuery {
    pub lines: Option<u32>,
    pub raw: bool,
    /// `text`, `ansi` or `json`
    pub format: Option<String>,
}

/// A client of one daemon. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    http: HttpClient,
    addr: DaemonAddr,
}

/// `{}`: the body of submit and submit-all.
#[derive(Serialize)]
struct Empty {}

/// `POST /api/sessions/resurrect`.
#[derive(Serialize)]
struct ResurrectRequest {
    ids: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    forget: bool,
}

fn session_path(id: &str, rest: &str) -> String {
    format!("/api/sessions/{}{}", encode_component(id), rest)
}

impl Client {
    pub fn new(addr: DaemonAddr) -> Client {
        Client {
            http: HttpClient::new(),
            addr,
        }
    }

    /// A client of another daemon that shares this one's connection pool.
    pub fn with_addr(&self, addr: DaemonAddr) -> Client {
        Client {
            http: self.http.clone(),
            addr,
        }
    }

    pub fn addr(&self) -> &DaemonAddr {
        &self.addr
    }

    pub(crate) fn set_token(&mut self, token: Option<String>) {
        self.addr.token = token;
    }

    /// One request. `path` starts with `/` and may carry a query. 2xx answers must be JSON
    /// (an empty body counts as `null`); anything else becomes [`ClientError::Http`].
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{}", self.addr.base_url(), path);
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(2);
        if let Some(tok) = &self.addr.token {
            headers.push(("x-telepty-token", tok));
        }
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        // The owner's unix socket first; a missing or dead one (nothing sent) falls back to TCP.
        // An ssh peer has only its tunnel: a missing or dead one is started, never TCP (which
        // would reach this machine's daemon).
        let socket = match &self.addr.tunnel {
            Some(t) => Some(t.socket.clone()),
            None => self.addr.local_socket(),
        };
        let via = socket.as_deref();
        let mut resp = self
            .http
            .request_on(via, method, &url, &headers, body.clone(), timeout)
            .await;
        if let (Some(socket), Err(HttpError::NoSocket(why))) = (via, &resp) {
            tracing::trace!("{}: {why}; reconnecting", socket.display());
            let retry_on = match &self.addr.tunnel {
                Some(t) => t.ensure(timeout).await.map(|()| via)?,
                None => None,
            };
            resp = self
                .http
                .request_on(retry_on, method, &url, &headers, body, timeout)
                .await;
        }
        let resp = resp.map_err(|e| {
            let addr = self.addr.authority();
            match e {
                HttpError::Connect(reason) | HttpError::NoSocket(reason) => ClientError::Connect {
                    addr,
                    reason: tidy_reason(&reason),
                },
                HttpError::Timeout => ClientError::Timeout {
                    addr,
                    after: timeout,
                },
                HttpError::BadUrl(u) => ClientError::BadAddress(format!("invalid daemon URL {u}")),
                HttpError::Other(reason) => ClientError::BadResponse {
                    addr,
                    reason: tidy_reason(&reason),
                },
            }
        })?;
        if !(200..300).contains(&resp.status) {
            return Err(ClientError::from_response(resp.status, &resp.body));
        }
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| ClientError::BadResponse {
            addr: self.addr.authority(),
            reason: format!("invalid JSON ({e})"),
        })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request("GET", path, None, REQUEST_TIMEOUT).await
    }

    /// A request with a typed body (serialising these types cannot fail).
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let body = serde_json::to_value(body).unwrap_or(Value::Null);
        self.request(method, path, Some(&body), timeout).await
    }

    async fn post(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        self.send("POST", path, body, REQUEST_TIMEOUT).await
    }

    // ---- daemon info (§3)

    /// `GET /api/health` → `{status:"ok", version, persistence}`, within `timeout` (probes are
    /// quicker than ordinary requests).
    pub async fn health(&self, timeout: Duration) -> Result<Value, ClientError> {
        self.request("GET", "/api/health", None, timeout).await
    }

    /// `GET /api/meta`.
    pub async fn meta(&self) -> Result<Value, ClientError> {
        self.get("/api/meta").await
    }

    // ---- sessions (§4, §5)

    /// `GET /api/sessions` → array of session objects.
    pub async fn list_sessions(&self) -> Result<Value, ClientError> {
        self.get("/api/sessions").await
    }

    /// `GET /api/sessions/:id`.
    pub async fn session(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&session_path(id, "")).await
    }

    /// `GET /api/sessions/:id/state`.
    pub async fn session_state(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&session_path(id, "/state")).await
    }

    /// `POST /api/sessions/spawn` → `{session_id, command, cwd}`.
    pub async fn spawn(&self, req: &SpawnRequest) -> Result<Value, ClientError> {
        self.post("/api/sessions/spawn", req).await
    }

    /// `POST /api/sessions/register` (body as in §4).
    pub async fn register(&self, body: &impl Serialize) -> Result<Value, ClientError> {
        self.post("/api/sessions/register", body).await
    }

    /// `PATCH /api/sessions/:id` → `{success, old_id, new_id}`.
    pub async fn rename(&self, id: &str, new_id: &str) -> Result<Value, ClientError> {
        let body = RenameRequest {
            new_id: new_id.into(),
        };
        self.send("PATCH", &session_path(id, ""), &body, REQUEST_TIMEOUT)
            .await
    }

    /// `GET /api/sessions/lost` (extension) → array of lost sessions.
    pub async fn lost_sessions(&self) -> Result<Value, ClientError> {
        self.get("/api/sessions/lost").await
    }

    /// `POST /api/sessions/resurrect` (extension) → `{success, results:[…]}`. Empty `ids`:
    /// every lost session. Each is a spawn, so this may take longer than one request.
    pub async fn resurrect(&self, ids: &[String], forget: bool) -> Result<Value, ClientError> {
        let body = ResurrectRequest {
            ids: ids.to_vec(),
            forget,
        };
        self.send(
            "POST",
            "/api/sessions/resurrect",
            &body,
            REQUEST_TIMEOUT * 6,
        )
        .await
    }

    /// `DELETE /api/sessions/:id` → `{success, status}`.
    pub async fn delete_session(&self, id: &str) -> Result<Value, ClientError> {
        self.request("DELETE", &session_path(id, ""), None, REQUEST_TIMEOUT)
            .await
    }

    // ---- input (§6, §17)

    /// `POST /api/sessions/:id/inject[?wait=delivered]`.
    pub async fn inject(
        &self,
        id: &str,
        req: &InjectRequest,
        wait_delivered: bool,
    ) -> Result<Value, ClientError> {
        if wait_delivered {
            let path = session_path(id, "/inject?wait=delivered");
            self.send("POST", &path, req, INJECT_WAIT_TIMEOUT).await
        } else {
            self.post(&session_path(id, "/inject"), req).await
        }
    }

    /// `POST /api/sessions/:id/submit` (one Enter, no retries).
    pub async fn submit(&self, id: &str) -> Result<Value, ClientError> {
        self.post(&session_path(id, "/submit"), &Empty {}).await
    }

    /// `POST /api/sessions/submit-all`.
    pub async fn submit_all(&self) -> Result<Value, ClientError> {
        self.post("/api/sessions/submit-all", &Empty {}).await
    }

    /// `POST /api/sessions/:id/keys`.
    pub async fn keys(&self, id: &str, keys: &[String]) -> Result<Value, ClientError> {
        let body = KeysRequest {
            keys: keys.to_vec(),
        };
        self.post(&session_path(id, "/keys"), &body).await
    }

    /// `POST /api/sessions/multicast/inject` → `{success, results:{successful, failed}}`.
    pub async fn multicast(&self, ids: &[String], prompt: &str) -> Result<Value, ClientError> {
        self.post(
            "/api/sessions/multicast/inject",
            &MulticastRequest {
                session_ids: ids.to_vec(),
                prompt: prompt.into(),
            },
        )
        .await
    }

    /// `POST /api/sessions/broadcast/inject` → `{success, results:{successful, failed}}`.
    pub async fn broadcast(&self, prompt: &str) -> Result<Value, ClientError> {
        self.post(
            "/api/sessions/broadcast/inject",
            &BroadcastRequest {
                prompt: prompt.into(),
            },
        )
        .await
    }

    // ---- output (§7, §17)

    /// `GET /api/sessions/:id/screen`.
    pub async fn screen(&self, id: &str, q: &ScreenQuery) -> Result<Value, ClientError> {
        let mut query = Vec::new();
        if let Some(n) = q.lines {
            query.push(format!("lines={n}"));
        }
        if q.raw {
            query.push("raw=1".to_string());
        }
        if let Some(f) = &q.format {
            query.push(format!("format={}", encode_component(f)));
        }
        let mut path = session_path(id, "/screen");
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        self.get(&path).await
    }

    /// `POST /api/sessions/:id/wait`; the request timeout is the wait's own timeout + 5 s.
    pub async fn wait(&self, id: &str, req: &WaitRequest) -> Result<Value, ClientError> {
        let ms = req.timeout_ms.unwrap_or(WAIT_DEFAULT_MS).min(WAIT_MAX_MS);
        let timeout = Duration::from_millis(ms) + WAIT_GRACE;
        self.send("POST", &session_path(id, "/wait"), req, timeout)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_bodies_skip_unset_fields() {
        let s = SpawnRequest {
            session_id: "w".into(),
            command: "bash".into(),
            kind: Some("USER".into()),
            ..Default::default()
        };
        assert_eq!(
            json!(s),
            json!({"session_id":"w","command":"bash","args":[],"type":"USER"})
        );
        let i = InjectRequest {
            prompt: "hi".into(),
            from: Some("o".into()),
            ..Default::default()
        };
        assert_eq!(json!(i), json!({"prompt":"hi","from":"o"}));
        let w = WaitRequest {
            pattern: Some("x".into()),
            scope: Some("stream".into()),
            ..Default::default()
        };
        assert_eq!(json!(w), json!({"pattern":"x","scope":"stream"}));
    }

    #[test]
    fn ids_are_encoded_in_paths() {
        assert_eq!(session_path("a b", "/inject"), "/api/sessions/a%20b/inject");
        assert_eq!(session_path("w-1.x_y", ""), "/api/sessions/w-1.x_y");
    }

    #[tokio::test]
    async fn connect_error_is_reported_as_such() {
        // Bind then drop a listener to get a port that (very likely) refuses connections.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = Client::new(DaemonAddr {
            host: "127.0.0.1".into(),
            port,
            token: None,
            tunnel: None,
        });
        let err = c.health(REQUEST_TIMEOUT).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(err.to_string().starts_with(&format!(
            "cannot reach the telepty daemon at 127.0.0.1:{port}: "
        )));
    }
}
