//! HTTP route handlers: parse and validate the wire request, call the engine, shape the reply.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use serde_json::Value;

use super::ApiState;
use super::body::{AnyJson, Fields, JsonBody};
use super::error::{ApiError, ApiResult, ErrorBody, created, ok};
use crate::engine::handoff::Reply;
use crate::engine::{
    EngineError, Kind, RegisterOutcome, RegisterRequest, SpawnSpec, TargetResult, WaitParams,
    WaitScope, WindowSize,
};
use crate::wire::{
    self,
    request::InjectRequest,
    response::{
        self as r, FanOut, Injected, Renamed, StateReported, TargetFailed, TargetOk, Waited,
    },
};

type St = State<Arc<ApiState>>;
type Q = Query<HashMap<String, String>>;
/// The `{id}` of a handoff or thread route (any text: an unknown one is 404).
type Key = Path<String>;

/// A session id from the path, percent-decoded once by the router, then validated.
fn session_id(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    // A path that cannot be read is reported as the empty (invalid) id.
    let id = p.map(|Path(id)| id).unwrap_or_default();
    EngineError::check_id(&id)?;
    Ok(id)
}

/// The `{id}` of a session route as [`session_id`] reads it. The handler applies it
/// (`let id = id?;`) after the body was read, so a bad body is still reported first.
pub(super) struct Sid(pub Result<String, ApiError>);

impl<S: Send + Sync> FromRequestParts<S> for Sid {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Sid(session_id(
            Path::<String>::from_request_parts(parts, state).await,
        )))
    }
}

fn truthy(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "1" || v == "true")
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        404,
        "NOT_FOUND",
        format!("Cannot {} {}", method, uri.path()),
    )
}

/// `status` stays `"ok"` while the API serves (clients restart daemons that say otherwise);
/// `persistence` (additive) tells whether session state reaches the disk.
#[utoipa::path(
    get, path = "/api/health", operation_id = "getHealth", tag = "daemon",
    summary = "Liveness (no token needed)",
    responses((status = 200, body = r::Health)),
)]
pub async fn health(State(st): St) -> ApiResult {
    ok(r::Health {
        status: "ok".into(),
        version: st.version(),
        persistence: st.engine.persistence_health(),
    })
}

#[utoipa::path(
    get, path = "/api/meta", operation_id = "getMeta", tag = "daemon",
    summary = "Daemon metadata",
    responses((status = 200, body = r::Meta)),
)]
pub async fn meta(State(st): St) -> ApiResult {
    // The repeated names are what clients have always been sent.
    const CAPABILITIES: &[&str] = &[
        "sessions",
        "wrapped-sessions",
        "singleton-daemon",
        "handoff-inbox",
        "deliberation-threads",
        "cross-machine",
        "mailbox",
        "vt-screen",
        "wait",
        "keys",
        "resize",
        "attach-snapshot",
        "inject-wait-delivered",
        "session-exit",
        "openapi",
        "recording",
        "window-size",
        "inject-wait-delivered",
        "session-exit",
        "openapi",
        "recording",
        "durable-state",
        "resurrect",
    ];
    ok(r::Meta {
        name: "telepty".into(),
        implementation: "telepty-rs".into(),
        version: st.version(),
        pid: std::process::id(),
        host: st.bind_host.clone(),
        port: st.port,
        machine_id: st.engine.machine_id().to_string(),
        terminal: st.terminal.clone(),
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
    })
}

#[utoipa::path(
    get, path = "/api/peers", operation_id = "getPeers", tag = "daemon",
    summary = "Known peers",
    responses((status = 200, body = r::Peers)),
)]
pub async fn peers(State(st): St) -> ApiResult {
    let path = st.paths.telepty_dir().join("peers.json");
    let known = tokio::fs::read_to_string(path)
        .await
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|mut v| match v.get_mut("peers").map(Value::take) {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    ok(r::Peers {
        active: Vec::new(),
        known,
    })
}

#[utoipa::path(
    get, path = "/api/sessions", operation_id = "listSessions", tag = "sessions",
    summary = "List sessions (by createdAt ascending)",
    params(
        ("idle_gt" = Option<f64>, Query, description = "Only sessions idle for more than N seconds"),
    ),
    responses(
        (status = 200, body = Vec<wire::session::SessionView>),
        (status = 400, description = "`idle_gt must be a number`", body = ErrorBody),
    ),
)]
pub async fn list(State(st): St, Query(q): Q) -> ApiResult {
    let mut sessions = st.engine.list();
    if let Some(raw) = q.get("idle_gt") {
        let n: f64 = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("idle_gt must be a number"))?;
        sessions.retain(|s| s.idle_seconds.is_some_and(|i| i as f64 > n));
    }
    ok(sessions)
}

/// Wait until the change is on disk before answering, so what was acknowledged survives even a
/// daemon killed right after the reply (a wrapped owner re-registers under what the reply
/// said). A change that could not be saved is answered 507 `PERSIST_FAILED` (`applied:true`).
async fn persist_durably(st: &ApiState) -> Result<(), ApiError> {
    st.engine.sync_store().await.map_err(ApiError::from)
}

/// The optional `window_size` field (spawn, resize): `Some(None)` for an explicit null
/// (back to the configured default).
fn window_size_field(body: &Value) -> Result<Option<Option<WindowSize>>, ApiError> {
    match body.get("window_size") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(v)) => v
            .parse()
            .map(|p| Some(Some(p)))
            .map_err(|e: crate::engine::sizing::BadWindowSize| ApiError::invalid(e.to_string())),
        Some(_) => Err(ApiError::invalid(format!(
            "window_size must be one of {}",
            WindowSize::NAMES
        ))),
    }
}

#[utoipa::path(
    post, path = "/api/sessions/spawn", operation_id = "spawnSession", tag = "sessions",
    summary = "Start a daemon-owned PTY session",
    request_body = wire::request::SpawnRequest,
    responses(
        (status = 201, body = r::Spawned),
        (status = 409, description = "`SESSION_EXISTS`", body = ErrorBody),
        (status = 507, description = "`PERSIST_FAILED`: started, but not saved", body = ErrorBody),
    ),
)]
pub async fn spawn(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    st.engine
        .check_spawn_id(&wire::request::SpawnRequest::session_id(&b)?)?;
    let r = wire::request::SpawnRequest::parse(&b)?;
    if let Some(c) = &r.cwd {
        let meta = tokio::fs::metadata(c).await;
        if !std::path::Path::new(c).is_absolute() || !meta.map(|m| m.is_dir()).unwrap_or(false) {
            return Err(ApiError::invalid(format!(
                "cwd does not exist or is not a directory: {c}"
            )));
        }
    }
    let window_size = window_size_field(&b)?.flatten();
    let engine = st.engine.clone();
    let req = SpawnSpec {
        id: r.session_id,
        command: r.command,
        args: r.args,
        cwd: r.cwd,
        cols: r.cols.unwrap_or(80),
        rows: r.rows.unwrap_or(30),
        prompt_type: r.kind.unwrap_or_else(|| "AGENT".into()),
        record: r.record,
        env: r.env.into_iter().collect(),
        profile: r.profile,
    };
    // fork/exec and PTY setup are blocking syscalls.
    let res = tokio::task::spawn_blocking(move || engine.spawn(req))
        .await
        .map_err(|_| EngineError::Internal)??;
    if let Some(policy) = window_size {
        // No viewer can be attached yet, so setting it after the spawn changes no size.
        if let Some(s) = st.engine.get_exact(&res.session_id) {
            st.engine.set_window_size(&s, Some(policy))?;
        }
    }
    persist_durably(&st).await?;
    created(res)
}

#[utoipa::path(
    post, path = "/api/sessions/register", operation_id = "registerSession", tag = "sessions",
    summary = "Declare a wrapped or aterm session",
    request_body = wire::request::RegisterBody,
    responses(
        (status = 201, body = r::Registration),
        (status = 200, description = "Re-registered (`reregistered: true`)", body = r::Registration),
        (status = 507, description = "`PERSIST_FAILED`", body = ErrorBody),
    ),
)]
pub async fn register(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    let id = b.text_field("session_id");
    let id = id.ok_or_else(|| ApiError::invalid("session_id is required"))?;
    EngineError::check_id(&id)?;
    let delivery = match b.get("delivery") {
        None | Some(Value::Null) => None,
        Some(d @ Value::Object(_)) => Some(d.clone()),
        Some(_) => return Err(ApiError::invalid("delivery must be an object")),
    };
    let endpoint = b.opt_str("delivery_endpoint")?.or_else(|| {
        delivery
            .as_ref()
            .and_then(|d| d.get("address"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let nullable = |k: &str| b.opt_str(k).map(|v| b.get(k).map(|_| v));
    let req = RegisterRequest {
        id,
        command: b.opt_str("command")?,
        cwd: b.opt_str("cwd")?,
        backend: b.opt_str("backend")?,
        cmux_workspace_id: b.opt_str("cmux_workspace_id")?,
        cmux_surface_id: b.opt_str("cmux_surface_id")?,
        term_program: nullable("term_program")?,
        term: nullable("term")?,
        aterm: b.opt_str("delivery_type")?.as_deref() == Some("aterm"),
        delivery_endpoint: endpoint,
        delivery,
        cols: wire::request::dimension(&b, "cols")?,
        rows: wire::request::dimension(&b, "rows")?,
        record: b.flag("record")?,
    };
    // A recorded session creates its file and writer thread: blocking work, off the runtime.
    let engine = st.engine.clone();
    let outcome = tokio::task::spawn_blocking(move || engine.register(req))
        .await
        .map_err(|_| EngineError::Internal)??;
    persist_durably(&st).await?;
    match outcome {
        RegisterOutcome::Created(r) => created(r),
        RegisterOutcome::Reregistered(r) => ok(r),
    }
}

#[utoipa::path(
    patch, path = "/api/sessions/{id}", operation_id = "renameSession", tag = "sessions",
    summary = "Rename a session",
    request_body = wire::request::RenameRequest,
    responses(
        (status = 200, body = Renamed),
        (status = 409, description = "`SESSION_EXISTS`", body = ErrorBody),
        (status = 507, description = "`PERSIST_FAILED`", body = ErrorBody),
    ),
)]
pub async fn rename(State(st): St, Sid(id): Sid, JsonBody(b): JsonBody) -> ApiResult {
    let id = id?;
    let new_id = wire::request::RenameRequest::parse(&b)?.new_id;
    st.engine.resolve(&id)?;
    EngineError::check_id(&new_id)?;
    let (old_id, new_id) = st.engine.rename(&id, &new_id)?;
    persist_durably(&st).await?;
    ok(Renamed {
        success: true,
        old_id,
        new_id,
    })
}

#[utoipa::path(
    delete, path = "/api/sessions/{id}", operation_id = "deleteSession", tag = "sessions",
    summary = "Delete a session",
    responses(
        (status = 200, body = r::Deleted),
        (status = 507, description = "`PERSIST_FAILED`", body = ErrorBody),
    ),
)]
pub async fn delete_session(State(st): St, Sid(id): Sid) -> ApiResult {
    let id = id?;
    let status = st.engine.delete(&id)?;
    persist_durably(&st).await?;
    ok(r::Deleted {
        success: true,
        status: status.to_string(),
    })
}

#[utoipa::path(
    get, path = "/api/sessions/{id}/state", operation_id = "getSessionState", tag = "sessions",
    summary = "Classifier state and self-report",
    responses((status = 200, body = r::StateView)),
)]
pub async fn get_state(State(st): St, Sid(id): Sid) -> ApiResult {
    ok(st.engine.state(&id?)?)
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/state", operation_id = "reportSessionState", tag = "sessions",
    summary = "Self-report state",
    request_body = wire::request::StateReport,
    responses((status = 200, body = StateReported)),
)]
pub async fn post_state(State(st): St, Sid(id): Sid, AnyJson(b): AnyJson) -> ApiResult {
    let (s, ev) = st.engine.self_report(&id?, &b)?;
    st.engine.emit(ev);
    let stale = st.engine.settings().stale_secs;
    ok(StateReported {
        success: true,
        session_id: s.id(),
        transport: s.transport(stale),
        semantic: s.semantic(),
    })
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/inject", operation_id = "injectSession", tag = "inject",
    summary = "Type a prompt into a session",
    request_body = InjectRequest,
    params(
        ("wait" = Option<String>, Query, description = "`delivered`: answer once the message was written and its submit confirmed"),
    ),
    responses(
        (status = 200, body = Injected),
        (status = 409, description = "`UNSUPPORTED_SESSION_TYPE`", body = ErrorBody),
        (status = 410, description = "`STALE`", body = ErrorBody),
        (status = 429, description = "`QUEUE_FULL`", body = ErrorBody),
        (status = 502, description = "`DELIVERY_FAILED` / `DELIVERY_REJECTED`: a wrapped session's endpoint refused", body = ErrorBody),
        (status = 504, description = "`TIMEOUT`: `?wait=delivered` did not complete within 30 s (`queued: true`)", body = ErrorBody),
    ),
)]
pub async fn inject(State(st): St, Sid(id): Sid, Query(q): Q, JsonBody(b): JsonBody) -> ApiResult {
    let id = id?;
    st.engine.resolve(&id)?;
    let req = InjectRequest::parse(&b)?;
    st.engine.await_owner(&id).await;
    let out = st.engine.inject(&id, req)?;
    let mut reply = Injected {
        success: true,
        inject_id: out.inject_id.clone(),
        strategy: "mailbox".into(),
        submit: out.submit.into(),
        delivered: None,
        // Without `?wait=delivered` the answer comes once the message is queued.
        outcome: Some("queued".into()),
        reason: None,
        duplicate: out.duplicate,
    };
    if q.get("wait").map(String::as_str) != Some("delivered") {
        return ok(reply);
    }
    match tokio::time::timeout(Duration::from_secs(30), out.done).await {
        Ok(Ok(Ok(d))) => {
            reply.submit = if d.submitted { "sent" } else { "skipped" }.into();
            reply.delivered = Some(true);
            reply.outcome = Some(d.outcome().into());
            reply.reason = d.unconfirmed;
            ok(reply)
        }
        Ok(Ok(Err(e))) => Err(ApiError::from(e).with("inject_id", out.inject_id)),
        Ok(Err(_)) => Err(
            ApiError::from(EngineError::disconnected("Session is closing."))
                .with("inject_id", out.inject_id),
        ),
        Err(_) => Err(
            ApiError::new(504, "TIMEOUT", "Delivery did not complete within 30 s.")
                .with("inject_id", out.inject_id)
                .with("queued", true),
        ),
    }
}

fn fan_out(results: Vec<TargetResult>, strategy: &str, submit_all: bool) -> FanOut {
    let mut out = FanOut {
        success: true,
        ..Default::default()
    };
    for r in results {
        match r {
            TargetResult::Ok(id) => out.results.successful.push(TargetOk {
                id,
                strategy: strategy.into(),
            }),
            TargetResult::Failed { id, code, error } => out.results.failed.push(TargetFailed {
                id,
                strategy: submit_all.then(|| strategy.to_string()),
                code: code.into(),
                error,
            }),
        }
    }
    out
}

#[utoipa::path(
    post, path = "/api/sessions/multicast/inject", operation_id = "multicastInject", tag = "inject",
    summary = "Inject into several sessions (exact ids)",
    request_body = wire::request::MulticastRequest,
    responses((status = 200, body = FanOut)),
)]
pub async fn multicast(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    let r = wire::request::MulticastRequest::parse(&b)?;
    let results = st.engine.multicast(&r.session_ids, &r.prompt);
    ok(fan_out(results, "mailbox", false))
}

#[utoipa::path(
    post, path = "/api/sessions/broadcast/inject", operation_id = "broadcastInject", tag = "inject",
    summary = "Inject into every session",
    request_body = wire::request::BroadcastRequest,
    responses((status = 200, body = FanOut)),
)]
pub async fn broadcast(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    let r = wire::request::BroadcastRequest::parse(&b)?;
    ok(fan_out(st.engine.broadcast(&r.prompt), "mailbox", false))
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/submit", operation_id = "submitSession", tag = "inject",
    summary = "Send Enter (CR) through the queue",
    request_body = wire::request::SubmitRequest,
    responses(
        (status = 200, body = r::Submitted),
        (status = 409, description = "`UNSUPPORTED_SESSION_TYPE`", body = ErrorBody),
    ),
)]
pub async fn submit(State(st): St, Sid(id): Sid, JsonBody(b): JsonBody) -> ApiResult {
    let id = id?;
    let (retries, delay, pre) = wire::request::SubmitRequest::parse(&b);
    match st.engine.submit(&id, retries, delay, pre).await {
        Ok(attempts) => ok(r::Submitted {
            success: true,
            strategy: "pty_cr".into(),
            attempts,
        }),
        Err((
            e @ (EngineError::SessionNotFound { .. }
            | EngineError::InvalidSessionId { .. }
            | EngineError::Unsupported(_)),
            _,
        )) => Err(e.into()),
        Err((_, attempts)) => Err(
            ApiError::new(503, "DISCONNECTED", "Submit failed via pty_cr")
                .with("strategy", "pty_cr")
                .with("attempts", attempts),
        ),
    }
}

#[utoipa::path(
    post, path = "/api/sessions/submit-all", operation_id = "submitAll", tag = "inject",
    summary = "Send one CR to every session",
    responses((status = 200, body = FanOut)),
)]
pub async fn submit_all(State(st): St) -> ApiResult {
    ok(fan_out(st.engine.submit_all(), "pty_cr", true))
}

#[utoipa::path(
    get, path = "/api/sessions/{id}/screen", operation_id = "getScreen", tag = "screen",
    summary = "Rendered terminal screen",
    params(
        ("lines" = Option<String>, Query, description = "Rows to return, 1–10000 (default 50; anything else means 50)"),
        ("raw" = Option<String>, Query, description = "`1` or `true`: the last lines of the raw output instead"),
        ("format" = Option<String>, Query, description = "`text` (default), `ansi` (with SGR sequences) or `json` (the grid)"),
    ),
    responses(
        (status = 200, body = r::ScreenReply),
        (status = 400, description = "`format must be text, ansi or json`", body = ErrorBody),
    ),
)]
pub async fn screen(State(st): St, Sid(id): Sid, Query(q): Q) -> ApiResult {
    let id = id?;
    let s = st.engine.resolve(&id)?;
    let sid = s.id();
    let lines = q
        .get("lines")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| (1..=10_000).contains(l))
        .unwrap_or(50);
    let generation = s.term.generation();
    let json = || {
        let mut v = s.term.json_view();
        v.session_id = sid.clone();
        ok(r::ScreenReply::Grid(v))
    };
    let text = |screen: String, lines: usize, total_lines: usize, raw: bool| r::Screen {
        session_id: sid.clone(),
        screen,
        lines,
        total_lines,
        raw,
        generation,
        format: None,
    };
    if s.kind == Kind::Aterm || generation == 0 {
        if q.get("format").map(String::as_str) == Some("json") {
            return json();
        }
        return ok(r::ScreenReply::Text(text(String::new(), 0, 0, false)));
    }
    if truthy(&q, "raw") {
        let (out, n) = s.term.raw_tail(lines);
        return ok(r::ScreenReply::Text(text(
            out,
            n,
            s.term.raw_total_lines(),
            true,
        )));
    }
    match q.get("format").map(String::as_str).unwrap_or("text") {
        "json" => json(),
        fmt @ ("text" | "ansi") => {
            let rows = if fmt == "ansi" {
                s.term.ansi_rows()
            } else {
                s.term.text_rows()
            };
            let total = rows.len();
            let start = total.saturating_sub(lines);
            ok(r::ScreenReply::Text(r::Screen {
                format: (fmt == "ansi").then(|| "ansi".into()),
                ..text(rows[start..].join("\n"), total - start, total, false)
            }))
        }
        other => Err(ApiError::invalid(format!(
            "format must be text, ansi or json (got {other})"
        ))),
    }
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/wait", operation_id = "waitSession", tag = "screen",
    summary = "Wait for output pattern or settle",
    request_body = wire::request::WaitRequest,
    responses(
        (status = 200, body = Waited),
        (status = 409, description = "`UNSUPPORTED_SESSION_TYPE`", body = ErrorBody),
    ),
)]
pub async fn wait(State(st): St, Sid(id): Sid, JsonBody(b): JsonBody) -> ApiResult {
    let id = id?;
    let s = st.engine.resolve(&id)?;
    if s.kind == Kind::Aterm {
        return Err(
            EngineError::Unsupported("aterm sessions have no screen to wait on.".into()).into(),
        );
    }
    let w = wire::request::WaitRequest::parse(&b)?;
    let pattern = w.pattern.as_deref().map(regex::Regex::new).transpose();
    let pattern =
        pattern.map_err(|e| EngineError::InvalidPattern(format!("Invalid pattern: {e}")))?;
    let scope = match w.scope.as_deref() {
        Some("stream") => WaitScope::Stream,
        _ => WaitScope::Screen,
    };
    let r = st
        .engine
        .wait(
            &s,
            WaitParams {
                pattern,
                settle_ms: w.settle_ms.unwrap_or(300),
                timeout_ms: w.timeout_ms.unwrap_or(10_000).min(300_000),
                since_generation: w.since_generation,
                scope,
                state: w.state,
            },
        )
        .await;
    ok(Waited {
        matched: r.matched,
        matched_text: r.matched_text,
        timed_out: r.timed_out,
        exited: r.exited,
        settled: r.settled,
        generation: r.generation,
        state: r.state,
        screen: (w.include_screen != Some(false)).then(|| s.term.text_rows().join("\n")),
    })
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/keys", operation_id = "sendKeys", tag = "inject",
    summary = "Send named keys as one raw message",
    request_body = wire::request::KeysRequest,
    responses(
        (status = 200, body = r::KeysSent),
        (status = 409, description = "`UNSUPPORTED_SESSION_TYPE`", body = ErrorBody),
    ),
)]
pub async fn keys(State(st): St, Sid(id): Sid, JsonBody(b): JsonBody) -> ApiResult {
    let id = id?;
    st.engine.resolve(&id)?;
    let names = wire::request::KeysRequest::parse(&b)?.keys;
    let (sid, count) = st.engine.keys(&id, &names)?;
    ok(r::KeysSent {
        success: true,
        session_id: sid,
        count,
    })
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/resize", operation_id = "resizeSession", tag = "sessions",
    summary = "Set the session's own terminal size",
    request_body = wire::request::ResizeRequest,
    responses(
        (status = 200, body = r::Resized),
        (status = 409, description = "`UNSUPPORTED_SESSION_TYPE`", body = ErrorBody),
    ),
)]
pub async fn resize(State(st): St, Sid(id): Sid, JsonBody(b): JsonBody) -> ApiResult {
    let id = id?;
    let s = st.engine.resolve(&id)?;
    // Extension: `window_size` alone changes the session's policy; with cols/rows, both.
    let policy = window_size_field(&b)?;
    let sizes_given = b.get("cols").is_some() || b.get("rows").is_some();
    if let (Some(policy), false) = (policy, sizes_given) {
        st.engine.set_window_size(&s, policy)?;
        return ok(r::PolicySet {
            success: true,
            session_id: s.id(),
            window_size: policy.map(|p| p.as_str().to_string()),
        });
    }
    let Some((cols, rows)) = wire::request::ResizeRequest::parse(&b)? else {
        return Err(ApiError::invalid(
            "cols and rows must be integers between 1 and 1000",
        ));
    };
    if let Some(policy) = policy {
        st.engine.set_window_size(&s, policy)?;
    }
    let sid = st.engine.resize(&id, cols, rows)?;
    ok(r::Resized {
        success: true,
        session_id: sid,
        cols,
        rows,
    })
}

#[utoipa::path(
    get, path = "/api/sessions/{id}/recording", operation_id = "getRecording", tag = "sessions",
    summary = "asciicast v2 recording",
    responses(
        (status = 200, description = "The asciicast v2 file", content_type = "application/x-asciicast", body = String),
        (status = 404, description = "`RECORDING_NOT_AVAILABLE`", body = ErrorBody),
    ),
)]
pub async fn recording(State(st): St, Sid(id): Sid) -> ApiResult {
    let id = id?;
    let s = st.engine.resolve(&id)?;
    let not_available = || {
        ApiError::new(
            404,
            "RECORDING_NOT_AVAILABLE",
            "Recording is not enabled for this session.",
        )
    };
    let Some(path) = s.term.recorder().map(|r| r.path().to_path_buf()) else {
        return Err(not_available());
    };
    let data = tokio::fs::read(&path).await.map_err(|e| {
        tracing::warn!("reading recording {}: {e}", path.display());
        not_available()
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-asciicast")],
        data,
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/api/sessions/{id}/mailbox", operation_id = "getMailbox", tag = "mailbox",
    summary = "Inspect the inject queue",
    responses((status = 200, body = r::Mailbox)),
)]
pub async fn mailbox(State(st): St, Sid(id): Sid) -> ApiResult {
    let s = st.engine.resolve(&id?)?;
    ok(s.queue.view(&s.id()))
}

#[utoipa::path(
    post, path = "/api/sessions/{id}/mailbox/ack", operation_id = "ackMailbox", tag = "mailbox",
    summary = "Acknowledge a message (idempotent)",
    request_body = wire::request::AckRequest,
    responses((status = 200, body = r::Acked)),
)]
pub async fn mailbox_ack(State(st): St, Sid(id): Sid, JsonBody(b): JsonBody) -> ApiResult {
    let s = st.engine.resolve(&id?)?;
    let msg_id = wire::request::AckRequest::parse(&b)?.msg_id;
    s.queue.ack(&msg_id);
    ok(r::Acked {
        success: true,
        msg_id,
    })
}

#[utoipa::path(
    delete, path = "/api/sessions/{id}/mailbox", operation_id = "clearMailbox", tag = "mailbox",
    summary = "Drop queued and retained messages",
    responses((status = 200, body = r::SessionOk)),
)]
pub async fn mailbox_clear(State(st): St, Sid(id): Sid) -> ApiResult {
    let s = st.engine.resolve(&id?)?;
    s.queue.clear();
    ok(r::SessionOk {
        success: true,
        session_id: s.id(),
    })
}

#[utoipa::path(
    delete, path = "/api/sessions/{id}/mailbox/dead-letter", operation_id = "clearDeadLetter", tag = "mailbox",
    summary = "Drop dead letters",
    responses((status = 200, body = r::SessionOk)),
)]
pub async fn mailbox_dead_clear(State(st): St, Sid(id): Sid) -> ApiResult {
    let s = st.engine.resolve(&id?)?;
    s.queue.clear_dead();
    ok(r::SessionOk {
        success: true,
        session_id: s.id(),
    })
}

#[utoipa::path(
    post, path = "/api/bus/publish", operation_id = "publishBus", tag = "bus",
    summary = "Publish an event to all bus clients",
    request_body = Object,
    responses(
        (status = 200, body = r::Published),
        (status = 404, description = "`SESSION_NOT_FOUND`: a state report for an unknown session", body = ErrorBody),
    ),
)]
pub async fn publish(State(st): St, AnyJson(b): AnyJson) -> ApiResult {
    if !b.is_object() {
        return Err(ApiError::invalid("Payload must be a JSON object"));
    }
    let requested = b
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let delivered = st.engine.bus().client_count();
    // A state report comes back as the normalised event, which goes out (and is relayed) in
    // place of what the client sent; anything else is relayed as sent.
    let event = match st.engine.publish(None, b.clone()) {
        Ok(ev) => ev.map(|ev| ev.to_value()),
        Err(EngineError::SessionNotFound { .. }) => {
            return Err(ApiError::new(404, "SESSION_NOT_FOUND", "Session not found")
                .with("requested", requested));
        }
        Err(e) => return Err(e.into()),
    };
    st.relay.relay(event.clone().unwrap_or(b));
    ok(r::Published {
        success: true,
        delivered,
        event,
    })
}

/// A handoff/thread answer: its bus events go out, then the body with the status it names.
fn coord_reply<B: serde::Serialize>(st: &ApiState, r: Reply<B>) -> ApiResult {
    for e in r.events {
        st.engine.emit(crate::wire::Event::Other(e));
    }
    if r.status == 201 {
        created(r.body)
    } else {
        ok(r.body)
    }
}

#[utoipa::path(
    post, path = "/api/handoff", operation_id = "createHandoff", tag = "handoff",
    summary = "Create a handoff",
    request_body = wire::coord::CreateHandoff,
    responses((status = 201, body = wire::coord::HandoffAck)),
)]
pub async fn handoff_create(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    let r = st.engine.coordination().create_handoff(&b)?;
    coord_reply(&st, r)
}

#[utoipa::path(
    get, path = "/api/handoff", operation_id = "listHandoffs", tag = "handoff",
    summary = "List handoffs",
    params(
        ("status" = Option<String>, Query, description = "Only handoffs with this status"),
    ),
    responses((status = 200, body = Vec<wire::coord::HandoffSummary>)),
)]
pub async fn handoff_list(State(st): St, Query(q): Q) -> ApiResult {
    let status = q.get("status").map(String::as_str);
    ok(st.engine.coordination().list_handoffs(status))
}

#[utoipa::path(
    get, path = "/api/handoff/{id}", operation_id = "getHandoff", tag = "handoff",
    summary = "Handoff detail",
    responses(
        (status = 200, body = wire::coord::HandoffDetail),
        (status = 404, description = "`HANDOFF_NOT_FOUND`", body = ErrorBody),
    ),
)]
pub async fn handoff_get(State(st): St, Path(id): Key) -> ApiResult {
    ok(st.engine.coordination().get_handoff(&id)?)
}

#[utoipa::path(
    post, path = "/api/handoff/{id}/claim", operation_id = "claimHandoff", tag = "handoff",
    summary = "Claim a pending handoff",
    request_body = wire::coord::ClaimHandoff,
    responses(
        (status = 200, body = wire::coord::HandoffAck),
        (status = 404, description = "`HANDOFF_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`HANDOFF_CONFLICT` (`claimed_by`)", body = ErrorBody),
    ),
)]
pub async fn handoff_claim(State(st): St, Path(id): Key, JsonBody(b): JsonBody) -> ApiResult {
    let r = st.engine.coordination().claim_handoff(&id, &b)?;
    coord_reply(&st, r)
}

#[utoipa::path(
    patch, path = "/api/handoff/{id}", operation_id = "updateHandoff", tag = "handoff",
    summary = "Transition status / append progress / set result",
    request_body = wire::coord::PatchStatus,
    responses(
        (status = 200, body = wire::coord::HandoffAck),
        (status = 404, description = "`HANDOFF_NOT_FOUND`", body = ErrorBody),
    ),
)]
pub async fn handoff_patch(State(st): St, Path(id): Key, JsonBody(b): JsonBody) -> ApiResult {
    let r = st.engine.coordination().patch_handoff(&id, &b)?;
    coord_reply(&st, r)
}

#[utoipa::path(
    post, path = "/api/threads", operation_id = "createThread", tag = "threads",
    summary = "Open a deliberation thread",
    request_body = wire::coord::CreateThread,
    responses((status = 201, body = wire::coord::ThreadAck)),
)]
pub async fn thread_create(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    let r = st.engine.coordination().create_thread(&b)?;
    coord_reply(&st, r)
}

#[utoipa::path(
    get, path = "/api/threads", operation_id = "listThreads", tag = "threads",
    summary = "List threads",
    params(("status" = Option<String>, Query, description = "Only threads with this status")),
    responses((status = 200, body = Vec<wire::coord::ThreadSummary>)),
)]
pub async fn thread_list(State(st): St, Query(q): Q) -> ApiResult {
    let status = q.get("status").map(String::as_str);
    ok(st.engine.coordination().list_threads(status))
}

#[utoipa::path(
    get, path = "/api/threads/{id}", operation_id = "getThread", tag = "threads",
    summary = "Thread detail",
    responses(
        (status = 200, body = wire::coord::ThreadDetail),
        (status = 404, description = "`THREAD_NOT_FOUND`", body = ErrorBody),
    ),
)]
pub async fn thread_get(State(st): St, Path(id): Key) -> ApiResult {
    ok(st.engine.coordination().get_thread(&id)?)
}

#[utoipa::path(
    patch, path = "/api/threads/{id}", operation_id = "updateThread", tag = "threads",
    summary = "Close a thread / set message_count",
    request_body = wire::coord::PatchThread,
    responses(
        (status = 200, body = wire::coord::ThreadAck),
        (status = 404, description = "`THREAD_NOT_FOUND`", body = ErrorBody),
    ),
)]
pub async fn thread_patch(State(st): St, Path(id): Key, JsonBody(b): JsonBody) -> ApiResult {
    let r = st.engine.coordination().patch_thread(&id, &b)?;
    coord_reply(&st, r)
}

/// `GET /api/sessions/lost` (extension): spawned sessions of the store that were not running
/// when this engine started (a reboot), with the arguments a resurrection would use.
#[utoipa::path(
    get, path = "/api/sessions/lost", operation_id = "listLostSessions", tag = "sessions",
    summary = "Spawned sessions lost in a reboot (extension)",
    responses((status = 200, body = Vec<r::LostSession>)),
)]
pub async fn lost(State(st): St) -> ApiResult {
    ok(st.engine.lost_views())
}

/// `POST /api/sessions/resurrect` (extension): `{ids?: [..], forget?: bool}`. Restarts the
/// given lost sessions (all of them without `ids`) through the spawn path, or with
/// `forget:true` drops them from the store. Always 200 with one result per id, unless the
/// outcome could not be saved (507 `PERSIST_FAILED`).
#[utoipa::path(
    post, path = "/api/sessions/resurrect", operation_id = "resurrectSessions", tag = "sessions",
    summary = "Restart (or forget) lost sessions (extension)",
    request_body = wire::request::ResurrectRequest,
    responses(
        (status = 200, body = r::Resurrection),
        (status = 507, description = "`PERSIST_FAILED`", body = ErrorBody),
    ),
)]
pub async fn resurrect(State(st): St, JsonBody(b): JsonBody) -> ApiResult {
    let (ids, forget) = wire::request::ResurrectRequest::parse(&b)?;
    let engine = st.engine.clone();
    let outcomes = if forget {
        ids.iter()
            .map(|id| match engine.forget_lost(id) {
                Ok(()) => crate::engine::ResurrectOutcome::Forgotten { id: id.clone() },
                // A SESSION_NOT_FOUND gets its wording with the other results below.
                Err(e) => crate::engine::ResurrectOutcome::failed(id, e),
            })
            .collect()
    } else {
        // Each one is a spawn: fork/exec off the async workers.
        tokio::task::spawn_blocking(move || engine.resurrect(&ids))
            .await
            .map_err(|_| EngineError::Internal)?
    };
    let results: Vec<r::Resurrected> = outcomes
        .iter()
        .map(|o| {
            let mut v = o.to_wire();
            if v.code.as_deref() == Some("SESSION_NOT_FOUND") {
                v.error = Some(format!("No lost session '{}'", o.id()));
            }
            v
        })
        .collect();
    if outcomes.iter().any(|o| o.is_ok()) {
        persist_durably(&st).await?;
    }
    ok(r::Resurrection {
        success: outcomes.iter().all(|o| o.is_ok()),
        results,
    })
}

/// PATCH / DELETE on `/api/sessions/lost` and `/api/sessions/resurrect`: those static routes
/// shadow `/api/sessions/{id}`, so a session with one of these ids is renamed or deleted here.
pub async fn rename_named(st: St, name: &'static str, body: JsonBody) -> ApiResult {
    rename(st, Sid(session_id(Ok(Path(name.to_string())))), body).await
}

pub async fn delete_named(st: St, name: &'static str) -> ApiResult {
    delete_session(st, Sid(session_id(Ok(Path(name.to_string()))))).await
}
