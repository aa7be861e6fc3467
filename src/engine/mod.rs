//! The session engine: PTYs, emulators, input queues, the event bus. No HTTP, no UI.
//!
//! `Engine` is a cheap handle (an `Arc`) that the API server, the dashboard and tests share.
//! Every mutation goes through it; it publishes what happened on the bus and asks the
//! persister to write session metadata.

pub mod aterm;
pub mod child;
pub mod classifier;
pub mod error;
pub mod gate;
pub mod handoff;
mod holders;
mod idempotency;
pub mod input;
pub mod keys;
pub mod mailbox;
mod ops;
mod persist;
pub mod profile;
pub mod pty;
pub mod recording;
mod resurrect;
pub mod session;
mod settings;
pub mod sizing;
pub mod store;
mod tasks;
pub mod terminal;
mod wait;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde_json::Value;
use tokio::sync::{Notify, broadcast};

pub use error::EngineError;
pub use mailbox::Source;
pub(crate) use ops::strip_env_for_child;
pub use ops::{InjectOutcome, RegisterOutcome, RegisterRequest, SpawnSpec, TargetResult};
pub use persist::{PersistError, PersistStatus};
pub use resurrect::{ResumeConfig, ResurrectOutcome};
pub use session::{ClientFrame, ClientRx, Kind, Session};
pub use settings::EngineSettings;
pub use sizing::WindowSize;
pub use wait::{WaitParams, WaitResult, WaitScope};

use crate::util::{now_iso, pid_alive};
use crate::wire::{
    self, Event,
    event::{Envelope, FailedOrigin, InjectFailed, Payload},
    session::SessionView,
};
use classifier::Classifier;
use handoff::Coordination;

/// A message on the bus: daemon events (origin `None`) and client-published messages.
#[derive(Clone, Debug)]
pub struct BusEvent {
    /// The bus connection that published it, so it is not echoed back.
    pub origin: Option<u64>,
    pub value: Arc<Value>,
}

pub struct Bus {
    tx: broadcast::Sender<BusEvent>,
    clients: AtomicUsize,
}

impl Bus {
    fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Bus {
            tx,
            clients: AtomicUsize::new(0),
        }
    }
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
    pub fn send(&self, origin: Option<u64>, value: Value) {
        let _ = self.tx.send(BusEvent {
            origin,
            value: Arc::new(value),
        });
    }
    /// Bus WebSocket clients currently connected (the `delivered` count of publish).
    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }
    pub fn client_joined(&self) {
        self.clients.fetch_add(1, Ordering::AcqRel);
    }
    pub fn client_left(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    pub sessions: HashMap<String, Arc<Session>>,
    /// alias -> current id (rename and replace create them; API.md §1.4)
    pub aliases: HashMap<String, String>,
    /// Recently deleted ids still being torn down: a repeated DELETE answers "closing".
    pub closing: HashMap<String, Instant>,
}

impl Registry {
    pub fn resolve(&self, id: &str) -> Option<Arc<Session>> {
        let aliased = || self.aliases.get(id).and_then(|t| self.sessions.get(t));
        self.sessions.get(id).or_else(aliased).cloned()
    }

    pub fn aliases_of(&self, id: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .aliases
            .iter()
            .filter(|(_, t)| *t == id)
            .map(|(a, _)| a.clone())
            .collect();
        v.sort();
        v
    }

    pub fn ordered(&self) -> Vec<Arc<Session>> {
        let mut v: Vec<Arc<Session>> = self.sessions.values().cloned().collect();
        v.sort_by_key(|s| s.meta().created_at);
        v
    }
}

/// A child's exit as its holder reported it: (child pid, status; `None`: the holder vanished).
type ExitReport = (u32, Option<crate::holder::ExitStatus>);

pub struct Shared {
    pub settings: EngineSettings,
    pub bus: Bus,
    registry: RwLock<Registry>,
    /// The one writer of sessions.json.
    store: persist::Store,
    /// Spawned sessions of the store that were not live at start (a reboot): kept in the file
    /// until resurrected or forgotten. Lock order: registry first, then this.
    lost: Mutex<BTreeMap<String, store::SpawnedEntry>>,
    next_conn: AtomicU64,
    pub coordination: Mutex<Coordination>,
    /// Child exits reported by holders (child pid, status; `None`: the holder vanished), for
    /// the reaper task.
    exits: tokio::sync::mpsc::UnboundedSender<ExitReport>,
    /// Every task the engine starts (background loops, delivery), so `shutdown` can wait.
    tasks: tokio_util::task::TaskTracker,
    /// Cancelled by `shutdown`: the loops and delivery tasks end at their next await.
    cancel: tokio_util::sync::CancellationToken,
    /// Client-chosen inject ids seen lately (a retry never types twice).
    recent_injects: idempotency::RecentInjects,
    /// HTTP POST for legacy aterm endpoints, supplied by the API layer (the engine speaks no
    /// HTTP).
    http_post: std::sync::OnceLock<aterm::HttpPost>,
    exits_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ExitReport>>>,
    /// Bumped whenever sessions are added, removed, renamed or change state (dashboard).
    /// A counter in a watch channel, so no change is ever missed between two waits.
    changes: tokio::sync::watch::Sender<u64>,
    started: AtomicBool,
}

impl Shared {
    pub(crate) fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read()
    }
    pub(crate) fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write()
    }

    /// Ask the store's owner to write; the ticket can be waited for ([`Engine::sync_store`]).
    pub(crate) fn request_persist(&self) -> u64 {
        let seq = self.store.request();
        self.bump();
        seq
    }

    pub(crate) fn lost(&self) -> MutexGuard<'_, BTreeMap<String, store::SpawnedEntry>> {
        self.lost.lock()
    }

    /// Tell watchers (the dashboard) that something about the sessions changed.
    pub(crate) fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn emit(&self, event: Event) {
        self.bus.send(None, event.to_value());
    }

    /// The envelope of API.md §12 for `session` (or an unknown session's `id`): `transport`
    /// and `semantic` are null when the session is unknown.
    pub(crate) fn envelope(&self, session: Option<&Session>, id: Option<&str>) -> Envelope {
        Envelope {
            event_type: String::new(),
            sender: wire::event::DAEMON.into(),
            session_id: session.map(|s| s.id()).or_else(|| id.map(str::to_string)),
            timestamp: now_iso(),
            transport: session.map(|s| s.transport(self.settings.stale_secs)),
            semantic: session.and_then(|s| s.meta().semantic.clone()),
        }
    }

    pub(crate) fn emit_envelope<P: Payload>(&self, session: Option<&Session>, payload: P) {
        self.emit(Event::envelope(self.envelope(session, None), payload));
    }

    pub(crate) fn emit_inject_failed(
        &self,
        session: &Session,
        target: &str,
        msg: &mailbox::Message,
        err: &EngineError,
        phase: &str,
    ) {
        self.emit_envelope(
            Some(session),
            InjectFailed {
                target_agent: target.to_string(),
                code: err.code().into(),
                error: err.to_string(),
                phase: Some(phase.into()),
                source: msg.source.as_str().into(),
                inject_id: msg.inject_id.clone(),
                origin: FailedOrigin::Sender {
                    from: msg.from.clone(),
                    reply_to: msg.reply_to.clone(),
                },
            },
        );
    }

    /// Run `fut` as one of the engine's tasks: tracked, and cancelled by `Engine::shutdown`.
    pub(crate) fn spawn_task(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The agent profile of a session with this metadata.
    fn profile_for(&self, meta: &session::Meta) -> Arc<profile::Profile> {
        self.settings
            .profiles
            .resolve(meta.profile.as_deref(), &meta.command, &meta.args)
    }

    fn new_classifier(&self) -> Classifier {
        Classifier::new(
            self.settings.classifier.clone(),
            tasks::mono_ms(),
            SystemTime::now(),
        )
    }
}

#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl Engine {
    /// Build the engine: adopt the sessions that live in holders, then restore persisted
    /// wrapped sessions. Background tasks start with
    /// [`Engine::start`], inside a tokio runtime.
    pub fn new(settings: EngineSettings) -> Self {
        let (exits, exits_rx) = tokio::sync::mpsc::unbounded_channel();
        let store = persist::Store::new(settings.sessions_path.clone());
        let shared = Arc::new(Shared {
            settings,
            bus: Bus::new(),
            registry: RwLock::new(Registry::default()),
            store,
            lost: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(0),
            coordination: Mutex::new(Coordination::default()),
            exits,
            exits_rx: Mutex::new(Some(exits_rx)),
            tasks: tokio_util::task::TaskTracker::new(),
            cancel: tokio_util::sync::CancellationToken::new(),
            http_post: std::sync::OnceLock::new(),
            recent_injects: idempotency::RecentInjects::default(),
            changes: tokio::sync::watch::channel(0).0,
            started: AtomicBool::new(false),
        });
        let engine = Engine { shared };
        // Live sessions first: whatever survived in holders is the truth, the file only fills
        // in what is not running.
        engine.adopt_holders();
        engine.restore();
        engine
    }

    /// How legacy aterm endpoints (`deliveryEndpoint` an `http://` URL) are reached; without
    /// one, such deliveries fail as unreachable.
    pub fn set_http_post(&self, post: aterm::HttpPost) {
        let _ = self.shared.http_post.set(post);
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.shared.settings
    }

    pub fn bus(&self) -> &Bus {
        &self.shared.bus
    }

    pub fn machine_id(&self) -> &str {
        &self.shared.settings.machine_id
    }

    /// Resolve an id as the HTTP routes do: exact id, then an explicit alias.
    pub fn resolve(&self, id: &str) -> Result<Arc<Session>, EngineError> {
        EngineError::check_id(id)?;
        self.shared
            .registry()
            .resolve(id)
            .ok_or_else(|| EngineError::not_found(id))
    }

    /// Exact id only (multicast targets, WebSocket attach).
    pub fn get_exact(&self, id: &str) -> Option<Arc<Session>> {
        self.shared.registry().sessions.get(id).cloned()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.shared.registry().ordered()
    }

    pub fn aliases_of(&self, id: &str) -> Vec<String> {
        self.shared.registry().aliases_of(id)
    }

    pub fn view(&self, s: &Session, detail: Option<&str>) -> SessionView {
        let aliases = self.aliases_of(&s.id());
        let mut v = s.view(
            &self.shared.settings.machine_id,
            self.shared.settings.stale_secs,
            aliases,
            detail,
        );
        if s.kind == Kind::Spawned {
            v.sizing = Some(self.sizing_view(s));
        }
        v
    }

    pub fn list(&self) -> Vec<SessionView> {
        self.sessions().iter().map(|s| self.view(s, None)).collect()
    }

    /// A receiver that wakes when sessions are added, removed, renamed or change state.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    pub fn coordination(&self) -> MutexGuard<'_, Coordination> {
        self.shared.coordination.lock()
    }

    pub fn emit(&self, event: Event) {
        self.shared.emit(event);
    }

    /// A fresh id for a bus or session connection.
    pub fn next_conn_id(&self) -> u64 {
        self.shared.next_conn_id()
    }

    /// Write session metadata now and wait for it (shutdown path; blocking).
    pub fn persist_now(&self) -> Result<(), PersistError> {
        self.shared
            .store
            .flush_blocking(&self.shared, persist::FLUSH_TIMEOUT)
    }

    /// Wait until everything changed before this call is on disk. A mutation that must be
    /// durable (spawn, register, rename, delete, resurrect) awaits this before answering; an
    /// error means the change took effect in memory but is not saved (507 `PERSIST_FAILED`).
    pub async fn sync_store(&self) -> Result<(), EngineError> {
        let store = &self.shared.store;
        let res = if store.running() {
            let seq = self.shared.request_persist();
            store.wait_flushed(seq, persist::FLUSH_TIMEOUT).await
        } else {
            let engine = self.clone();
            tokio::task::spawn_blocking(move || engine.persist_now())
                .await
                .map_err(|_| EngineError::Internal)?
        };
        res.map_err(|e| EngineError::PersistFailed(e.to_string()))
    }

    /// The `persistence` block of `GET /api/health`.
    pub fn persistence_health(&self) -> crate::wire::response::Persistence {
        crate::wire::response::Persistence {
            lost_sessions: self.lost_sessions().len(),
            ..self.shared.store.health()
        }
    }

    /// Read the store: wrapped sessions come back disconnected (API.md §14); spawned entries
    /// whose id is not live are *lost* sessions (`telepty resurrect`). A session that is live
    /// here (adopted before this runs) is not lost. A file that cannot be loaded is moved
    /// aside and reported in `/api/health`.
    fn restore(&self) {
        let Some(path) = self.shared.settings.sessions_path.clone() else {
            return;
        };
        // Leftovers of a writer killed mid-write; this process is the only writer now.
        crate::util::remove_stale_temps(&path);
        let loaded = store::load(&path);
        if let Some(c) = &loaded.corrupt {
            self.shared.store.set_warning(c.message(&path));
        }
        let now = SystemTime::now();
        for r in loaded.wrapped {
            if self.shared.registry().sessions.contains_key(&r.id) {
                continue;
            }
            let mut meta = r.meta;
            if meta.cwd.is_empty() {
                meta.cwd = self.shared.settings.daemon_cwd.display().to_string();
            }
            meta.created_at = meta.created_at.or(Some(now));
            // The owner gets a fresh window to come back after a daemon restart.
            meta.last_disconnected_at = Some(now);
            let s = self.new_session(Kind::Wrapped, r.id.clone(), meta, 80, 30);
            let mut reg = self.shared.registry_mut();
            for a in r.aliases {
                if !reg.sessions.contains_key(&a) {
                    reg.aliases.insert(a, r.id.clone());
                }
            }
            reg.sessions.insert(r.id, s);
        }
        self.mark_lost(loaded.spawned);
    }

    /// Start background work: delivery tasks of restored sessions, the reaper, the health
    /// sweep, the classifier tick and the persister.
    pub fn start(&self) {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        for s in self.sessions() {
            self.start_delivery(&s);
        }
        tasks::start(self.shared.clone());
    }

    /// Stop the engine in order: let queued injects reach their programs (up to `drain`),
    /// end every task, then hand the sessions back to their holders — or, with
    /// `stop_sessions`, end and delete them — and save the state one last time.
    pub async fn shutdown(&self, stop_sessions: bool, drain: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + drain;
        while !stop_sessions
            && tokio::time::Instant::now() < deadline
            && self
                .sessions()
                .iter()
                .any(|s| s.kind == Kind::Spawned && !s.exited() && s.queue.counts().0 > 0)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        // A message already being typed finishes (its gates are bounded: well under 30 s).
        if tokio::time::timeout(std::time::Duration::from_secs(30), self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("engine tasks did not end within 30 s of the shutdown");
        }
        if stop_sessions {
            let pids = self.kill_all(2000);
            // The holders do the killing; give them the grace period to finish.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
            while tokio::time::Instant::now() < deadline && pids.iter().any(|p| pid_alive(*p)) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        } else {
            let e = self.clone();
            let _ = tokio::task::spawn_blocking(move || e.detach_all()).await;
        }
        let e = self.clone();
        match tokio::task::spawn_blocking(move || e.persist_now()).await {
            Ok(Err(e)) => tracing::error!("session state not saved at shutdown: {e}"),
            Err(e) => tracing::error!("session state not saved at shutdown: {e}"),
            Ok(Ok(())) => {}
        }
    }

    pub(crate) fn start_delivery(&self, s: &Arc<Session>) {
        if !self.shared.started.load(Ordering::Acquire) {
            return;
        }
        if let Some(rx) = s.queue.take_receiver() {
            // Tracked but not wrapped in the cancellation: the task checks it between
            // messages itself.
            self.shared
                .tasks
                .spawn(input::run(s.clone(), self.shared.clone(), rx));
        }
    }

    /// A session without a PTY (wrapped or aterm).
    pub(crate) fn new_session(
        &self,
        kind: Kind,
        id: String,
        meta: session::Meta,
        cols: u16,
        rows: u16,
    ) -> Arc<Session> {
        let term = Arc::new(terminal::Terminal::new(
            rows,
            cols,
            self.shared.settings.scrollback_lines,
        ));
        let done = Arc::new((AtomicBool::new(true), Notify::new()));
        let profile = self.shared.profile_for(&meta);
        Arc::new(Session::new(
            kind,
            id,
            meta,
            term,
            None,
            self.shared.new_classifier(),
            done,
            profile,
        ))
    }
}
