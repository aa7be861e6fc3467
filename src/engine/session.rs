//! One session: metadata, its terminal, its backend (PTY, owner socket or external endpoint),
//! its attached clients and its input queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::{Mutex, MutexGuard, RwLock};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use super::classifier::Classifier;
use super::mailbox::Queue;
use super::pty::Pty;
use super::sizing::Sizing;
use super::terminal::Terminal;
use crate::util::{iso, secs_since};
use crate::wire::session::{Detail, Locator, MailboxCounts, SessionView, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Kind {
    Spawned,
    Wrapped,
    Aterm,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

#[derive(Clone, Debug)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub at: SystemTime,
}

#[derive(Clone, Debug)]
pub struct PendingReport {
    pub source: String,
    pub injected_at: SystemTime,
    pub inject_id: String,
}

/// Frames the engine sends to an attached client; the API turns them into WebSocket frames.
/// (The output stream does not go through here: it is the terminal's bounded broadcast, whose
/// laggards get a fresh snapshot.)
#[derive(Debug)]
pub enum ClientFrame {
    Json(Value),
    Close(u16, String),
}

/// How many frames may wait for one socket. They are control frames (to a wrapped session's
/// owner: injects, keys, resizes, renames; to viewers: inject notifications), so only a socket
/// that stopped reading fills this.
const CLIENT_QUEUE: usize = 1024;

/// The receiving end of a client's frames (the API's socket task).
pub type ClientRx = mpsc::Receiver<ClientFrame>;

/// A client's bounded queue. Never blocks the engine: when it is full a viewer's notification
/// is dropped (its screen resyncs through the output stream's snapshot) and an owner's frame is
/// refused, so an inject reports the owner as disconnected and is retried or dead-lettered
/// like any failed delivery. The last slot is kept for the one `Close` a client ever gets, so
/// "Session exited" / "Owner replaced" always arrive.
pub fn client_channel() -> (mpsc::Sender<ClientFrame>, ClientRx) {
    mpsc::channel(CLIENT_QUEUE)
}

/// How long an inject waits for a wrapped session's owner to come back.
pub const OWNER_RECONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Client {
    pub conn_id: u64,
    pub owner: bool,
    pub tx: mpsc::Sender<ClientFrame>,
}

impl Client {
    /// Queue a JSON frame unless only the slot kept for `Close` is left; false when refused.
    fn send_json(&self, frame: Value) -> bool {
        if self.tx.capacity() <= 1 {
            tracing::debug!(conn = self.conn_id, "client queue full: frame dropped");
            return false;
        }
        self.tx.try_send(ClientFrame::Json(frame)).is_ok()
    }

    /// The last frame this client gets (it has been removed from the session, so nothing else
    /// is queued after it).
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self
            .tx
            .try_send(ClientFrame::Close(code, reason.to_string()));
    }
}

#[derive(Clone, Debug, Default)]
pub struct Meta {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    /// Spawned: the allowlisted environment (`[resurrect] env`) it was started with, persisted
    /// so a resurrection after a reboot gets the same values.
    pub env: Vec<(String, String)>,
    /// The agent profile named at spawn; `None`: chosen by the command.
    pub profile: Option<String>,
    pub backend: String,
    pub term_program: Option<String>,
    pub term: Option<String>,
    pub cmux_workspace_id: Option<String>,
    pub cmux_surface_id: Option<String>,
    pub delivery: Option<Value>,
    pub delivery_endpoint: Option<String>,
    pub created_at: Option<SystemTime>,
    pub last_activity_at: Option<SystemTime>,
    pub last_connected_at: Option<SystemTime>,
    pub last_disconnected_at: Option<SystemTime>,
    pub last_state_report_at: Option<SystemTime>,
    pub ready: bool,
    pub semantic: Option<Value>,
    pub last_inject_from: Option<String>,
    pub last_inject_reply_to: Option<String>,
    pub last_thread_id: Option<String>,
    pub exit: Option<ExitInfo>,
    pub pending_report: Option<PendingReport>,
    /// aterm: whether the socket endpoint was there at the last check.
    pub endpoint_ok: bool,
    pub stale_announced: bool,
    pub idle_announced: bool,
    pub closing: bool,
}

pub struct Session {
    pub kind: Kind,
    id: RwLock<String>,
    meta: Mutex<Meta>,
    pub term: Arc<Terminal>,
    pub pty: Option<Pty>,
    clients: Mutex<Vec<Client>>,
    pub queue: Queue,
    pub classifier: Mutex<Classifier>,
    /// How this program reads its input and shows its state (`profile.rs`).
    pub profile: Arc<super::profile::Profile>,
    /// Woken when an owner connects (`owner_within`).
    owner_joined: Notify,
    /// Set by the PTY reader thread at EOF, so exit handling can wait for the last output.
    pub reader_done: Arc<(AtomicBool, Notify)>,
    /// Own size, viewers' sizes and the size applied (spawned sessions; see `sizing.rs`).
    sizing: Mutex<Sizing>,
}

/// Health as computed on every read (API.md §2).
pub struct Health {
    pub status: &'static str,
    pub reason: &'static str,
}

impl Health {
    /// `healthStatus` / `healthReason` of the lifecycle events.
    pub fn fields(&self) -> crate::wire::event::HealthFields {
        crate::wire::event::HealthFields {
            health_status: self.status.into(),
            health_reason: self.reason.into(),
        }
    }
}

impl Session {
    // Every part is already built by the caller (spawn, adoption, register); a builder would
    // only restate them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: Kind,
        id: String,
        meta: Meta,
        term: Arc<Terminal>,
        pty: Option<Pty>,
        classifier: Classifier,
        reader_done: Arc<(AtomicBool, Notify)>,
        profile: Arc<super::profile::Profile>,
    ) -> Self {
        let (rows, cols) = term.size();
        Session {
            sizing: Mutex::new(Sizing::new((cols, rows))),
            kind,
            id: RwLock::new(id),
            meta: Mutex::new(meta),
            term,
            pty,
            clients: Mutex::new(Vec::new()),
            queue: Queue::default(),
            classifier: Mutex::new(classifier),
            profile,
            owner_joined: Notify::new(),
            reader_done,
        }
    }

    pub fn id(&self) -> String {
        self.id.read().clone()
    }

    pub(crate) fn set_id(&self, new: &str) {
        *self.id.write() = new.to_string();
    }

    pub fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock()
    }

    /// The size state. Lock order: sizing before the emulator (the size is applied under it).
    pub fn sizing(&self) -> MutexGuard<'_, Sizing> {
        self.sizing.lock()
    }

    pub fn clients(&self) -> MutexGuard<'_, Vec<Client>> {
        self.clients.lock()
    }

    pub fn client_count(&self) -> usize {
        self.clients().len()
    }

    pub fn has_owner(&self) -> bool {
        self.clients().iter().any(|c| c.owner)
    }

    /// The owner's connection, if one is connected.
    pub fn owner_conn(&self) -> Option<u64> {
        self.clients().iter().find(|c| c.owner).map(|c| c.conn_id)
    }

    /// Wait until an owner is connected, at most `limit` (a wrapped session's bridge
    /// reconnecting after a network blip or a daemon restart). Its connection, if one came.
    pub async fn owner_within(&self, limit: std::time::Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.owner_joined.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(c) = self.owner_conn() {
                return Some(c);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.owner_conn();
            }
        }
    }

    pub fn exited(&self) -> bool {
        self.meta().exit.is_some()
    }

    pub fn reader_finished(&self) -> bool {
        self.reader_done.0.load(Ordering::Acquire)
    }

    /// Wait until the reader thread has read the PTY's last output (EOF).
    pub async fn reader_eof(&self) {
        while !self.reader_finished() {
            let notified = self.reader_done.1.notified();
            if self.reader_finished() {
                break;
            }
            notified.await;
        }
    }

    /// Send a frame to the owner socket; false when there is no owner.
    pub fn send_to_owner(&self, frame: impl Into<Value>) -> bool {
        let frame = frame.into();
        let clients = self.clients();
        match clients.iter().find(|c| c.owner) {
            Some(c) => c.send_json(frame),
            None => false,
        }
    }

    pub fn send_to_viewers(&self, frame: impl Into<Value>) {
        let frame = frame.into();
        for c in self.clients().iter().filter(|c| !c.owner) {
            c.send_json(frame.clone());
        }
    }

    pub fn close_all(&self, code: u16, reason: &str) {
        for c in self.clients().drain(..) {
            c.close(code, reason);
        }
        self.term.set_answer_queries(true);
    }

    pub(crate) fn add_client(&self, client: Client) {
        let mut clients = self.clients();
        if client.owner {
            self.owner_joined.notify_waiters();
        }
        clients.push(client);
        if self.kind == Kind::Spawned {
            // Attached terminals answer queries themselves (API.md §11.2).
            self.term.set_answer_queries(false);
        }
    }

    /// Remove a client; returns whether it was the owner.
    pub(crate) fn remove_client(&self, conn_id: u64) -> Option<bool> {
        let mut clients = self.clients();
        let pos = clients.iter().position(|c| c.conn_id == conn_id)?;
        let c = clients.remove(pos);
        if clients.is_empty() {
            self.term.set_answer_queries(true);
        }
        Some(c.owner)
    }

    /// Demote the current owner (closed with 4001) so a new one can take over.
    pub(crate) fn take_owner(&self) -> Option<Client> {
        let mut clients = self.clients();
        let pos = clients.iter().position(|c| c.owner)?;
        Some(clients.remove(pos))
    }

    pub fn health(&self, stale_secs: u64) -> Health {
        let m = self.meta();
        let stale = |since: Option<SystemTime>| since.is_some_and(|t| secs_since(t) >= stale_secs);
        let (status, reason) = match self.kind {
            Kind::Spawned if m.exit.is_none() => ("CONNECTED", "PTY_RUNNING"),
            Kind::Spawned => ("DISCONNECTED", "PTY_EXITED"),
            Kind::Wrapped => {
                drop(m);
                let owner = self.has_owner();
                let m = self.meta();
                if owner && m.ready {
                    ("CONNECTED", "OWNER_CONNECTED")
                } else if owner {
                    ("CONNECTED", "OWNER_CONNECTED_NOT_READY")
                } else if stale(m.last_disconnected_at) {
                    ("STALE", "OWNER_DISCONNECTED_STALE")
                } else {
                    ("DISCONNECTED", "OWNER_DISCONNECTED")
                }
            }
            Kind::Aterm => match m.delivery_endpoint.as_deref() {
                Some(ep) if ep.starts_with('/') && !m.endpoint_ok => {
                    ("DISCONNECTED", "DELIVERY_ENDPOINT_MISSING")
                }
                Some(_) => ("CONNECTED", "DELIVERY_ENDPOINT_AVAILABLE"),
                None if stale(m.last_disconnected_at.or(m.created_at)) => {
                    ("STALE", "DELIVERY_ENDPOINT_STALE")
                }
                None => ("DISCONNECTED", "DELIVERY_ENDPOINT_MISSING"),
            },
        };
        Health { status, reason }
    }

    /// Latest activity: a delivery, an owner frame, or output (API.md §16(o): output counts).
    pub fn last_activity(&self) -> Option<SystemTime> {
        let output = self.term.last_output_at();
        let recorded = self.meta().last_activity_at;
        output.max(recorded)
    }

    pub fn idle_seconds(&self) -> Option<u64> {
        self.last_activity().map(secs_since)
    }

    /// The first that says: `TERM_PROGRAM`, a terminal `TERM` names, aterm, the cmux or kitty
    /// backend, the daemon's own PTY.
    fn terminal_label(&self, m: &Meta) -> Option<String> {
        let term = m.term.as_deref().unwrap_or("").to_ascii_lowercase();
        let backend = Some(m.backend.as_str()).filter(|b| matches!(*b, "cmux" | "kitty"));
        let label = m.term_program.as_deref().filter(|s| !s.is_empty());
        let label = label
            .or_else(|| {
                ["kitty", "ghostty", "tmux"]
                    .into_iter()
                    .find(|w| term.contains(w))
            })
            .or((self.kind == Kind::Aterm).then_some("aterm"))
            .or(backend)
            .or((self.kind == Kind::Spawned).then_some("daemon-pty"));
        label.map(str::to_string)
    }

    /// The `transport` block (API.md §2), also used in bus envelopes.
    pub fn transport(&self, stale_secs: u64) -> Transport {
        let health = self.health(stale_secs);
        let clients = self.client_count();
        let activity = self.last_activity();
        let m = self.meta();
        Transport {
            health_status: health.status.into(),
            health_reason: health.reason.into(),
            kind: self.kind.as_str().into(),
            backend: m.backend.clone(),
            terminal: self.terminal_label(&m),
            active_clients: clients,
            ready: self.ready_flag(&m),
            idle_seconds: activity.map(secs_since),
            disconnected_seconds: m.last_disconnected_at.map(secs_since),
            last_activity_at: activity.map(iso),
            last_connected_at: m.last_connected_at.map(iso),
            last_disconnected_at: m.last_disconnected_at.map(iso),
            last_inject_from: m.last_inject_from.clone(),
            last_reply_to: m.last_inject_reply_to.clone(),
            last_thread_id: m.last_thread_id.clone(),
        }
    }

    pub fn semantic(&self) -> Option<Value> {
        self.meta().semantic.clone()
    }

    fn ready_flag(&self, m: &Meta) -> bool {
        match self.kind {
            Kind::Spawned => m.exit.is_none(),
            Kind::Wrapped => m.ready,
            Kind::Aterm => true,
        }
    }

    /// The session object of `GET /api/sessions[/:id]` (`sizing` is the engine's to add).
    pub fn view(
        &self,
        machine_id: &str,
        stale_secs: u64,
        aliases: Vec<String>,
        detail: Option<&str>,
    ) -> SessionView {
        let id = self.id();
        let health = self.health(stale_secs);
        let clients = self.client_count();
        let transport = self.transport(stale_secs);
        let auto = self.classifier.lock().brief();
        let (pending, dead) = self.queue.counts();
        let (rows, cols) = self.term.size();
        let last_output = self.term.last_output_at();
        let activity = self.last_activity();
        let m = self.meta();
        let project = std::path::Path::new(&m.cwd)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        SessionView {
            locator: Locator {
                machine_id: machine_id.into(),
                session_id: id.clone(),
                project_id: project,
            },
            kind: self.kind.as_str().into(),
            command: m.command.clone(),
            cwd: m.cwd.clone(),
            backend: m.backend.clone(),
            terminal: self.terminal_label(&m),
            term_program: m.term_program.clone(),
            term: m.term.clone(),
            cmux_workspace_id: m.cmux_workspace_id.clone(),
            cmux_surface_id: m.cmux_surface_id.clone(),
            created_at: m.created_at.map(iso),
            last_activity_at: activity.map(iso),
            last_connected_at: m.last_connected_at.map(iso),
            last_disconnected_at: m.last_disconnected_at.map(iso),
            last_state_report_at: m.last_state_report_at.map(iso),
            idle_seconds: activity.map(secs_since),
            active_clients: clients,
            ready: self.ready_flag(&m),
            delivery: m.delivery.clone(),
            delivery_endpoint: m.delivery_endpoint.clone(),
            health_status: health.status.into(),
            health_reason: health.reason.into(),
            disconnected_seconds: m.last_disconnected_at.map(secs_since),
            transport,
            semantic: m.semantic.clone(),
            auto_state: Some(auto),
            mailbox: MailboxCounts {
                pending,
                dead_letter: dead,
            },
            exit_code: m.exit.as_ref().and_then(|e| e.code),
            exit_signal: m.exit.as_ref().and_then(|e| e.signal.clone()),
            exited_at: m.exit.as_ref().map(|e| iso(e.at)),
            last_output_at: last_output.map(iso),
            pid: self.pty.as_ref().map(|p| p.pid),
            cols,
            rows,
            args: m.args.clone(),
            aliases,
            sizing: None,
            detail: detail.map(|requested| Detail {
                alias: (requested != id).then(|| requested.to_string()),
                last_inject_from: m.last_inject_from.clone(),
                last_inject_reply_to: m.last_inject_reply_to.clone(),
            }),
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_client_queue_refuses_frames_but_still_takes_the_close() {
        let (tx, mut rx) = client_channel();
        let c = Client {
            conn_id: 1,
            owner: false,
            tx,
        };
        for i in 0..CLIENT_QUEUE - 1 {
            assert!(c.send_json(json!(i)), "frame {i}");
        }
        assert!(!c.send_json(json!("one too many")));
        c.close(1000, "Session exited");
        let mut n = 0;
        let last = loop {
            match rx.try_recv() {
                Ok(ClientFrame::Json(_)) => n += 1,
                Ok(ClientFrame::Close(code, reason)) => break (code, reason),
                Err(e) => panic!("no close after {n} frames: {e}"),
            }
        };
        assert_eq!(
            (n, last),
            (CLIENT_QUEUE - 1, (1000, "Session exited".into()))
        );
    }
}
