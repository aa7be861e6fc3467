//! WebSocket endpoints: `/api/sessions/<id>` (owner and viewers) and `/api/bus` (API.md §11).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::{Request, header};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::error::{ApiError, ApiResult, ok};
use super::routes::Sid;
use crate::engine::{ClientFrame, ClientRx, Engine, Kind, Session};
use crate::util::now_iso;
use crate::wire::Frame;
use crate::wire::event::{BusGap, DAEMON, Event};

const MAX_WS_MESSAGE: usize = 16 * 1024 * 1024;
const PING_EVERY: Duration = Duration::from_secs(30);

fn is_upgrade(req: &Request<Body>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn query_flag(req: &Request<Body>, key: &str) -> bool {
    req.uri().query().is_some_and(|q| {
        q.split('&').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            k == key && (v == "1" || v == "true")
        })
    })
}

/// The session, or the WebSocket attach
///
/// **Also the WebSocket endpoint** (`Upgrade: websocket`; query `owner`, `snapshot`, `create`):
/// the frames, owner rules and close codes are API.md §11. Without an upgrade, the session
/// object with its detail fields.
#[utoipa::path(
    get, path = "/api/sessions/{id}", operation_id = "getSession", tag = "sessions",
    summary = "Session detail, or WebSocket attach",
    responses(
        (status = 200, body = crate::wire::session::SessionView),
        (status = 101, description = "Switched to the session's WebSocket"),
    ),
)]
pub async fn session_get(
    State(st): State<Arc<ApiState>>,
    Sid(id): Sid,
    req: Request<Body>,
) -> ApiResult {
    let id = id?;
    if !is_upgrade(&req) {
        let s = st.engine.resolve(&id)?;
        return ok(st.engine.view(&s, Some(&id)));
    }
    let owner = query_flag(&req, "owner");
    let snapshot = query_flag(&req, "snapshot");
    // Extension: viewers pass create=0 so an id deleted a moment ago is not auto-created.
    let no_create = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "create=0" || kv == "create=false")
    });
    if no_create && st.engine.get_exact(&id).is_none() {
        return Err(crate::engine::EngineError::not_found(&id).into());
    }
    let upgrade = upgrade(req, &st).await?;
    let (session, conn_id, is_owner, frames) = st.engine.attach(&id, owner)?;
    let engine = st.engine.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        session_socket(
            engine.clone(),
            session.clone(),
            conn_id,
            is_owner,
            snapshot,
            frames,
            socket,
        )
        .await;
        engine.detach(&session, conn_id);
    }))
}

async fn upgrade(req: Request<Body>, st: &Arc<ApiState>) -> Result<WebSocketUpgrade, ApiError> {
    let (mut parts, _) = req.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, st).await;
    let upgrade = upgrade.map_err(|e| ApiError::invalid(format!("WebSocket upgrade failed: {e}")));
    Ok(upgrade?.max_message_size(MAX_WS_MESSAGE))
}

/// A received message as JSON (`Some(None)`: nothing to act on); `None` ends the socket. A
/// pong clears `awaiting_pong`.
async fn incoming(
    socket: &mut WebSocket,
    got: Option<Result<Message, axum::Error>>,
    awaiting_pong: &mut bool,
) -> Option<Option<Value>> {
    let parsed = match got? {
        Ok(Message::Text(t)) => serde_json::from_str::<Value>(&t),
        Ok(Message::Binary(b)) => serde_json::from_slice::<Value>(&b),
        Ok(Message::Pong(_)) => {
            *awaiting_pong = false;
            return Some(None);
        }
        Ok(Message::Ping(_)) => return Some(None),
        Ok(Message::Close(_)) => return None,
        Err(e) => {
            close_on_error(socket, e).await;
            return None;
        }
    };
    Some(parsed.ok().filter(Value::is_object))
}

/// The keep-alive: false when the previous ping went unanswered or this one cannot be sent.
async fn ping(socket: &mut WebSocket, awaiting_pong: &mut bool) -> bool {
    let unanswered = std::mem::replace(awaiting_pong, true);
    !unanswered && socket.send(Message::Ping(Default::default())).await.is_ok()
}

/// A read error ends the socket; an oversized message gets the 1009 close API.md §1.1 asks for.
async fn close_on_error(socket: &mut WebSocket, e: axum::Error) {
    let too_big = e
        .into_inner()
        .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
        .is_some_and(|t| matches!(t, tokio_tungstenite::tungstenite::Error::Capacity(_)));
    if too_big {
        let _ = socket.send(close(1009, "Message too big")).await;
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn send_json(socket: &mut WebSocket, v: &Value) -> bool {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .is_ok()
}

async fn send(socket: &mut WebSocket, f: Frame) -> bool {
    socket.send(Message::Text(f.text().into())).await.is_ok()
}

fn snapshot_frame(s: crate::engine::terminal::Snapshot) -> Frame {
    Frame::Snapshot {
        data: s.data,
        cols: s.cols,
        rows: s.rows,
        generation: s.generation,
    }
}

async fn session_socket(
    engine: Engine,
    session: Arc<Session>,
    conn_id: u64,
    is_owner: bool,
    want_snapshot: bool,
    mut frames: ClientRx,
    mut socket: WebSocket,
) {
    // Owners produce the output; everyone else watches it.
    let mut output = if is_owner {
        None
    } else if want_snapshot {
        let (snap, rx) = session.term.snapshot_and_subscribe();
        let frame = snapshot_frame(snap);
        if !send(&mut socket, frame).await {
            return;
        }
        Some(rx)
    } else {
        Some(session.term.subscribe())
    };
    if session.kind == Kind::Spawned && session.exited() {
        let _ = socket.send(close(1000, "Session exited")).await;
        return;
    }
    let mut ping_every = tokio::time::interval(PING_EVERY);
    ping_every.tick().await;
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            got = socket.recv() => {
                let Some(v) = incoming(&mut socket, got, &mut awaiting_pong).await else { break };
                if let Some(v) = v && session.kind != Kind::Aterm {
                    engine.client_frame(&session, conn_id, is_owner, &v);
                }
            }
            frame = frames.recv() => {
                match frame {
                    Some(ClientFrame::Json(v)) => if !send_json(&mut socket, &v).await { break },
                    Some(ClientFrame::Close(code, reason)) => {
                        // Flush output that is already queued before closing.
                        if let Some(rx) = output.as_mut() {
                            let mut data = String::new();
                            while let Ok(c) = rx.try_recv() {
                                if c.size.is_some() { continue } // about to close: sizes no longer matter
                                data.push_str(&c.text);
                            }
                            if !data.is_empty() { let _ = send(&mut socket, Frame::Output { data }).await; }
                        }
                        let _ = socket.send(close(code, &reason)).await;
                        break;
                    }
                    None => break,
                }
            }
            chunk = async { match output.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                match chunk {
                    Ok(c) => {
                        let rx = output.as_mut().expect("output receiver");
                        // Coalesce what is already waiting into one frame, up to a resize, which
                        // goes out in its place in the stream (API.md §11.2).
                        let mut data = String::new();
                        let mut next = Some(c);
                        let mut sent = true;
                        while let Some(c) = next.take() {
                            if let Some((cols, rows)) = c.size {
                                if !data.is_empty() {
                                    sent = send(&mut socket, Frame::Output { data: std::mem::take(&mut data) }).await;
                                }
                                sent = sent && send(&mut socket, Frame::Resize { cols, rows }).await;
                                if !sent { break }
                            } else {
                                data.push_str(&c.text);
                            }
                            if data.len() < 256 * 1024 {
                                next = rx.try_recv().ok();
                            }
                        }
                        if sent && !data.is_empty() {
                            sent = send(&mut socket, Frame::Output { data }).await;
                        }
                        if !sent { break }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // This viewer fell behind: start it over from a fresh screen.
                        let (snap, rx) = session.term.snapshot_and_subscribe();
                        output = Some(rx);
                        let frame = snapshot_frame(snap);
                        if !send(&mut socket, frame).await { break }
                    }
                    Err(RecvError::Closed) => { output = None; }
                }
            }
            _ = ping_every.tick() => if !ping(&mut socket, &mut awaiting_pong).await { break },
        }
    }
}

/// The event bus (WebSocket)
///
/// A WebSocket upgrade only. Every JSON object a client sends goes to all *other* bus
/// clients; daemon events go to every client (API.md §11.3). A client that falls behind the
/// ring (4096 events) gets a `bus_gap` (schema `BusGap`) where events are missing.
#[utoipa::path(
    get, path = "/api/bus", operation_id = "busWebSocket", tag = "bus",
    summary = "Event bus WebSocket",
    params(("skip" = Option<String>, Query,
        description = "Event types this client does not want, comma-separated (extension; e.g. `session_health`, which every session sends every sweep)")),
    responses(
        (status = 101, description = "Switched to the bus WebSocket"),
        (status = 400, description = "`Expected a WebSocket upgrade.`", body = super::error::ErrorBody),
    ),
)]
pub async fn bus(State(st): State<Arc<ApiState>>, req: Request<Body>) -> ApiResult {
    if !is_upgrade(&req) {
        return Err(ApiError::invalid("Expected a WebSocket upgrade."));
    }
    let skip = skipped_types(req.uri().query());
    let upgrade = upgrade(req, &st).await?;
    Ok(upgrade.on_upgrade(move |socket| bus_socket(st, socket, skip)))
}

/// `skip=a,b`: event types a bus client does not want (at most [`MAX_SKIPPED`]). A dashboard
/// showing another machine's sessions skips `session_health`, which each session sends
/// every sweep, so an idle peer costs its wire next to nothing.
fn skipped_types(query: Option<&str>) -> Vec<String> {
    const MAX_SKIPPED: usize = 32;
    let values = query.into_iter().flat_map(|q| q.split('&'));
    let skip = values
        .filter_map(|kv| kv.strip_prefix("skip="))
        .map(super::guard::percent_decode);
    let types = skip.flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>());
    types.filter(|t| !t.is_empty()).take(MAX_SKIPPED).collect()
}

async fn bus_socket(st: Arc<ApiState>, mut socket: WebSocket, skip: Vec<String>) {
    let engine = &st.engine;
    let conn_id = engine.next_conn_id();
    let mut events = engine.bus().subscribe();
    engine.bus().client_joined();
    let mut ping_every = tokio::time::interval(PING_EVERY);
    ping_every.tick().await;
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            got = socket.recv() => {
                let Some(v) = incoming(&mut socket, got, &mut awaiting_pong).await else { break };
                let Some(v) = v else { continue };
                match engine.publish(Some(conn_id), v.clone()) {
                    Ok(Some(ev)) => st.relay.relay(ev.to_value()),
                    Ok(None) => st.relay.relay(v),
                    Err(_) => {} // invalid state reports are dropped silently
                }
            }
            ev = events.recv() => {
                match ev {
                    Ok(ev) => {
                        if ev.origin == Some(conn_id) { continue }
                        let kind = ev.value.get("type").and_then(serde_json::Value::as_str);
                        if kind.is_some_and(|k| skip.iter().any(|s| s == k)) { continue }
                        if socket.send(Message::Text(ev.value.to_string().into())).await.is_err() { break }
                    }
                    Err(RecvError::Lagged(n)) => {
                        // The bounded buffer overflowed: say so, in the stream where the gap is.
                        tracing::warn!("bus client {conn_id} lagged, {n} events dropped");
                        let gap = Event::BusGap(BusGap { sender: DAEMON.into(), dropped: n, timestamp: now_iso() });
                        if socket.send(Message::Text(gap.to_value().to_string().into())).await.is_err() { break }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
            _ = ping_every.tick() => if !ping(&mut socket, &mut awaiting_pong).await { break },
        }
    }
    engine.bus().client_left();
}
