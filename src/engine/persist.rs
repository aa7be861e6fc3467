//! The one owner of `sessions.json`: a thread that serialises every write and acknowledges
//! each flush.
//!
//! A mutation asks for a flush (`request`, which returns a ticket) and may wait for it
//! (`wait_flushed`). The owner coalesces: it takes the newest ticket, snapshots the registry
//! (so the snapshot holds every change up to that ticket), writes the file durably
//! (`util::write_atomic`: own temp file, fsync, rename, fsync of the directory) and publishes
//! the result. A request whose flush failed learns it and can answer with an error; the
//! failure stays visible in `/api/health` until a later write succeeds. While failing, the
//! owner retries on its own every [`RETRY`], so a disk that comes back clears the error even if
//! nothing else changes.

use std::path::PathBuf;

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::{Condvar, Mutex, MutexGuard};
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::{Shared, store};
use crate::util::iso;
use crate::wire::response::Persistence;

/// How often a failing write is retried without new changes.
pub const RETRY: Duration = Duration::from_millis(1000);
/// How long a request waits for its flush before giving up.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a change could not be saved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PersistError {
    #[error("could not save session state to {path}: {error}")]
    Failed { path: String, error: String },
    #[error("saving session state to {path} did not finish within {secs} s")]
    Timeout { path: String, secs: u64 },
}

/// The owner's last word, published after every write attempt.
#[derive(Clone, Debug, Default)]
pub struct PersistStatus {
    /// Every ticket up to this one was covered by the last finished write attempt.
    pub flushed: u64,
    /// The error of the last attempt (`None`: it succeeded).
    pub error: Option<String>,
    /// When the current run of failures began.
    pub since: Option<SystemTime>,
    pub last_ok: Option<SystemTime>,
    /// Something found at start-up that the user should know (a corrupt file moved aside).
    pub warning: Option<String>,
}

#[derive(Default)]
struct State {
    requested: u64,
    running: bool,
    stop: bool,
}

struct Inner {
    path: Option<PathBuf>,
    state: Mutex<State>,
    /// Wakes the owner (new ticket, stop) and blocking waiters (flush finished).
    cv: Condvar,
    status: watch::Sender<PersistStatus>,
    /// Held while the file is written, so even an inline write (before the owner started)
    /// never overlaps another.
    write_lock: Mutex<()>,
}

pub(crate) struct Store {
    inner: Arc<Inner>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.inner.lock_state().stop = true;
        self.inner.cv.notify_all();
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn write(&self, shared: &Shared) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let doc = snapshot_doc(shared);
        let _w = self.write_lock.lock();
        store::save(path, &doc)
    }

    fn finish(&self, target: u64, result: std::io::Result<()>) {
        let now = SystemTime::now();
        let path = self.path_text();
        self.status.send_modify(|s| {
            s.flushed = s.flushed.max(target);
            match &result {
                Ok(()) => {
                    if let Some(e) = s.error.take() {
                        tracing::info!("{path} is saved again (it failed with: {e})");
                    }
                    s.since = None;
                    s.last_ok = Some(now);
                }
                Err(e) => {
                    if s.error.is_none() {
                        s.since = Some(now);
                        tracing::error!("could not save session state to {path}: {e}");
                    }
                    s.error = Some(e.to_string());
                }
            }
        });
        // Take the lock before notifying, so a waiter that checked under it cannot miss this.
        drop(self.lock_state());
        self.cv.notify_all();
    }

    fn result_for(&self, seq: u64) -> Option<Result<(), PersistError>> {
        let s = self.status.borrow();
        (s.flushed >= seq).then(|| match &s.error {
            None => Ok(()),
            Some(e) => Err(PersistError::Failed {
                path: self.path_text(),
                error: e.clone(),
            }),
        })
    }
}

impl Store {
    pub fn new(path: Option<PathBuf>) -> Store {
        Store {
            inner: Arc::new(Inner {
                path,
                state: Mutex::new(State::default()),
                cv: Condvar::new(),
                status: watch::channel(PersistStatus::default()).0,
                write_lock: Mutex::new(()),
            }),
        }
    }

    /// Start the owner thread (once). Without a path nothing is ever written.
    pub fn start(&self, shared: Weak<Shared>) {
        if self.inner.path.is_none() {
            return;
        }
        {
            let mut st = self.inner.lock_state();
            if st.running {
                return;
            }
            st.running = true;
        }
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("telepty-store".into())
            .spawn(move || owner(inner, shared));
        if let Err(e) = spawned {
            tracing::error!("cannot start the sessions.json writer: {e}");
            self.inner.lock_state().running = false;
        }
    }

    /// Ask for a flush; the ticket is covered once a write that started after this call ends.
    pub fn request(&self) -> u64 {
        let seq = {
            let mut st = self.inner.lock_state();
            st.requested += 1;
            st.requested
        };
        self.inner.cv.notify_all();
        seq
    }

    pub fn running(&self) -> bool {
        self.inner.lock_state().running
    }

    pub fn status(&self) -> PersistStatus {
        self.inner.status.borrow().clone()
    }

    pub fn set_warning(&self, warning: String) {
        self.inner.status.send_modify(|s| s.warning = Some(warning));
    }

    /// Wait (async) until the flush of ticket `seq` is done; its result.
    pub async fn wait_flushed(&self, seq: u64, timeout: Duration) -> Result<(), PersistError> {
        let mut rx = self.inner.status.subscribe();
        let done = tokio::time::timeout(timeout, rx.wait_for(|s| s.flushed >= seq)).await;
        match done {
            Ok(Ok(_)) => self.inner.result_for(seq).unwrap_or(Ok(())),
            Ok(Err(_)) => Err(PersistError::Failed {
                path: self.inner.path_text(),
                error: "the writer stopped".into(),
            }),
            Err(_) => Err(PersistError::Timeout {
                path: self.inner.path_text(),
                secs: timeout.as_secs(),
            }),
        }
    }

    /// Flush now and wait (blocking): through the owner when it runs, else in this thread.
    pub fn flush_blocking(&self, shared: &Shared, timeout: Duration) -> Result<(), PersistError> {
        if self.inner.path.is_none() {
            return Ok(());
        }
        let seq = self.request();
        if !self.running() {
            let target = self.inner.lock_state().requested;
            let r = self.inner.write(shared);
            self.inner.finish(target, r);
            return self.inner.result_for(seq).unwrap_or(Ok(()));
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.inner.lock_state();
        loop {
            if let Some(r) = self.inner.result_for(seq) {
                return r;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || !st.running {
                return Err(PersistError::Timeout {
                    path: self.inner.path_text(),
                    secs: timeout.as_secs(),
                });
            }
            self.inner.cv.wait_for(&mut st, left);
        }
    }

    /// The `persistence` block of `/api/health` (the engine adds `lostSessions`).
    pub fn health(&self) -> Persistence {
        let s = self.status();
        Persistence {
            ok: s.error.is_none(),
            error: s.error,
            since: s.since.map(iso),
            last_saved_at: s.last_ok.map(iso),
            path: self.inner.path.as_ref().map(|p| p.display().to_string()),
            warning: s.warning,
            lost_sessions: 0,
        }
    }
}

fn owner(inner: Arc<Inner>, shared: Weak<Shared>) {
    loop {
        let target = {
            let mut st = inner.lock_state();
            loop {
                if st.stop {
                    st.running = false;
                    drop(st);
                    inner.cv.notify_all();
                    return;
                }
                let (flushed, failing) = {
                    let s = inner.status.borrow();
                    (s.flushed, s.error.is_some())
                };
                if st.requested > flushed {
                    break st.requested;
                }
                if failing {
                    let to = inner.cv.wait_for(&mut st, RETRY);
                    if to.timed_out() && !st.stop {
                        break st.requested;
                    }
                } else {
                    inner.cv.wait(&mut st);
                }
            }
        };
        let Some(shared) = shared.upgrade() else {
            inner.lock_state().running = false;
            inner.cv.notify_all();
            return;
        };
        let result = inner.write(&shared);
        drop(shared);
        inner.finish(target, result);
    }
}

/// The file's content: every session in the registry, plus the lost sessions (kept until
/// resurrected or forgotten). A lost id that a live session took since is dropped for good.
pub(crate) fn snapshot_doc(shared: &Shared) -> Map<String, Value> {
    let reg = shared.registry();
    let mut doc = Map::new();
    {
        let mut lost = shared.lost();
        lost.retain(|id, _| !reg.sessions.contains_key(id));
        for (id, e) in lost.iter() {
            doc.insert(id.clone(), e.raw.clone());
        }
    }
    for s in reg.ordered() {
        let id = s.id();
        doc.insert(id.clone(), store::entry(&s, reg.aliases_of(&id)));
    }
    doc
}
