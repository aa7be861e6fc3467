//! Client mode: sessions of another telepty daemon, mirrored locally.
//!
//! Each remote pane is a local emulator (the engine's [`Terminal`], i.e. the same vt100 the
//! daemon runs) fed by a WebSocket attach `/api/sessions/<id>?snapshot=1` whose first frame
//! redraws the current screen (API.md §11.2, §17). Typing goes back over the same socket as
//! `input` frames. The pane's size is registered over that socket too, as a viewer's `resize`
//! (the daemon picks the session's size by its `window_size` policy, and the session gets its
//! own size back when this socket closes); the mirror follows the daemon's size, from the
//! snapshot and the `resize` frames in the output stream, never the pane's.
//!
//! Attaching only happens where it cannot change the session: spawned sessions (running or
//! exited — an exited one sends its last screen and closes) and wrapped sessions whose owner is
//! connected. A viewer socket on an owner-less wrapped session would become its owner, and one
//! on an unknown id would create a session, so neither is ever opened.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::wire::Frame;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::info::SessionInfo;
use super::msg::{AppMsg, is_session_event};
use super::source::{PaneSource, screen_modes, with_terminal};
use crate::client::{Client, DaemonAddr, addr::encode_component, connect_ws};
use crate::engine::terminal::Terminal;

const MIRROR_SCROLLBACK: usize = 1000;
const RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Link {
    id: Mutex<String>,
    tx: Mutex<Option<mpsc::UnboundedSender<String>>>,
    /// A connection is open or being opened.
    busy: AtomicBool,
    /// The daemon closed the socket on purpose (exit / delete): never reattach.
    finished: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
    note: Mutex<Option<String>>,
    /// The pane's size as a viewer (cols, rows); `None` while the pane is not shown.
    want: Mutex<Option<(u16, u16)>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

pub struct RemotePane {
    term: Arc<Terminal>,
    link: Arc<Link>,
    client: Client,
    rt: tokio::runtime::Handle,
}

impl RemotePane {
    pub fn new(client: Client, rt: tokio::runtime::Handle, info: &SessionInfo) -> RemotePane {
        let pane = RemotePane {
            term: Arc::new(Terminal::new(24, 80, MIRROR_SCROLLBACK)),
            link: Arc::new(Link::default()),
            client,
            rt,
        };
        pane.update(info);
        pane
    }

    fn attachable(info: &SessionInfo) -> bool {
        !info.host_down
            && (info.is_spawned() || (info.kind == "wrapped" && info.health == "CONNECTED"))
    }

    /// Record the pane's viewer size and tell the daemon if connected; a connection being
    /// opened registers it after its snapshot.
    fn set_want(&self, want: Option<(u16, u16)>) {
        *self.link.want.lock() = want;
        if let Some(tx) = self.link.tx.lock().as_ref() {
            let _ = tx.send(size_frame(want));
        }
    }

    fn start(&self) {
        if self.link.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.link.last_attempt.lock() = Some(Instant::now());
        let client = self.client.clone();
        let link = self.link.clone();
        let term = self.term.clone();
        let task = self.rt.spawn(async move {
            mirror(client, link.clone(), term).await;
            *link.tx.lock() = None;
            link.busy.store(false, Ordering::Release);
        });
        *self.link.task.lock() = Some(task.abort_handle());
    }
}

impl Drop for RemotePane {
    fn drop(&mut self) {
        if let Some(t) = self.link.task.lock().take() {
            t.abort();
        }
    }
}

fn feed(term: &Terminal, data: &str, tx: &mpsc::UnboundedSender<String>) {
    // The daemon stops answering terminal queries while viewers are attached (§11.2): the
    // mirror answers them, like a real terminal would.
    let replies = term.feed(data.as_bytes());
    if !replies.is_empty() {
        let _ = tx.send(
            Frame::Input {
                data: String::from_utf8_lossy(&replies).into_owned(),
            }
            .text(),
        );
    }
}

fn size_frame(want: Option<(u16, u16)>) -> String {
    match want {
        Some((cols, rows)) => Frame::Resize { cols, rows },
        None => Frame::ReleaseSize,
    }
    .text()
}

async fn mirror(client: Client, link: Arc<Link>, term: Arc<Terminal>) {
    let id = link.id.lock().clone();
    let path = format!(
        "/api/sessions/{}?snapshot=1&create=0",
        encode_component(&id)
    );
    let ws = match connect_ws(client.addr(), &path).await {
        Ok(ws) => ws,
        Err(e) => {
            *link.note.lock() = Some(format!("not attached: {e}"));
            return;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    *link.tx.lock() = Some(tx.clone());
    *link.note.lock() = None;
    let (mut sink, mut stream) = ws.split();
    let mut registered = false;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.as_str().to_string(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Close(frame))) => {
                        // 1000: the session exited or was deleted; anything else may be retried.
                        let normal = frame.as_ref().is_some_and(|f| f.code == CloseCode::Normal);
                        link.finished.store(normal, Ordering::Release);
                        tracing::debug!("mirror {id} closed: {frame:?}");
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        *link.note.lock() = Some(format!("connection lost: {e}"));
                        break;
                    }
                    None => break,
                };
                let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
                match frame {
                    Frame::Snapshot { data, cols, rows, .. } => {
                        term.resize(rows, cols);
                        feed(&term, &data, &tx);
                        // A new connection is a new viewer: register the pane's size (once; later
                        // snapshots only restart a lagging stream).
                        let want = *link.want.lock();
                        if !registered && want.is_some() {
                            let _ = tx.send(size_frame(want));
                        }
                        registered = true;
                    }
                    Frame::Output { data } => feed(&term, &data, &tx),
                    // The session's size changed (this or another viewer, or the API).
                    Frame::Resize { cols, rows } if (1..=1000).contains(&cols) && (1..=1000).contains(&rows) => {
                        term.resize(rows, cols);
                    }
                    _ => {}
                }
            }
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
        }
    }
}

impl PaneSource for RemotePane {
    fn generation(&self) -> u64 {
        self.term.generation()
    }
    fn with_screen(&self, scrollback: usize, f: &mut dyn FnMut(&vt100::Screen)) {
        with_terminal(&self.term, scrollback, f)
    }
    fn modes(&self) -> (bool, bool) {
        screen_modes(self.term.lock().screen())
    }
    fn send_input(&self, data: &str) -> bool {
        let frame = Frame::Input {
            data: data.to_string(),
        };
        let tx = self.link.tx.lock();
        tx.as_ref().is_some_and(|tx| tx.send(frame.text()).is_ok())
    }
    fn resize(&self, cols: u16, rows: u16) {
        self.set_want(Some((cols, rows)));
    }
    fn release(&self) {
        self.set_want(None);
    }
    fn watch(&self) -> Option<watch::Receiver<u64>> {
        Some(self.term.watch_generation())
    }
    fn note(&self) -> Option<String> {
        if self.term.generation() > 0 {
            return None;
        }
        self.link.note.lock().clone()
    }
    fn update(&self, info: &SessionInfo) {
        *self.link.id.lock() = info.daemon_id().to_string();
        if info.kind == "aterm" {
            *self.link.note.lock() = Some("aterm session: no terminal to show".into());
            return;
        }
        if !RemotePane::attachable(info) {
            if info.host_down {
                *self.link.note.lock() = Some("host down: not attached".into());
            } else if !self.link.busy.load(Ordering::Acquire) {
                *self.link.note.lock() = Some("owner disconnected: nothing to show".into());
            }
            return;
        }
        let link = &self.link;
        let last = *link.last_attempt.lock();
        let recent = last.is_some_and(|t| t.elapsed() < RETRY_AFTER);
        if !link.busy.load(Ordering::Acquire) && !link.finished.load(Ordering::Acquire) && !recent {
            self.start();
        }
    }
}

/// Poll `GET /api/sessions` every second, or at once when poked (bus events).
pub async fn poll_sessions(
    backend: super::backend::Backend,
    tx: mpsc::Sender<AppMsg>,
    poke: Arc<Notify>,
) {
    loop {
        let msg = match backend.list().await {
            Ok(list) => AppMsg::Sessions(list),
            Err(e) => AppMsg::SessionsFailed(e),
        };
        if tx.send(msg).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = poke.notified() => {}
        }
    }
}

/// Follow a daemon's bus (`peer`: a peer's), reconnecting with backoff; a session event
/// wakes `poke`, the poller of that daemon's sessions.
pub async fn follow_bus(
    addr: DaemonAddr,
    peer: Option<String>,
    tx: mpsc::Sender<AppMsg>,
    poke: Arc<Notify>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match crate::client::Bus::connect_skipping(&addr, "session_health").await {
            Ok(mut bus) => {
                backoff = Duration::from_millis(500);
                // Events may have been missed while it was not connected: a fresh list.
                poke.notify_one();
                while let Ok(Some(v)) = bus.next_event().await {
                    if is_session_event(&v) {
                        poke.notify_one();
                    }
                    let msg = AppMsg::Bus {
                        peer: peer.clone(),
                        event: v,
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::debug!("bus: {e}"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
