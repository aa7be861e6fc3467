//! One FIFO input queue per session (the mailbox, API.md §6.2 and §8): messages, their
//! byte-bounded queue, the book of pending, finished and dead-lettered entries. The task that
//! delivers them is `input.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};

use super::error::EngineError;
use crate::util::unix_secs;
use crate::wire::response::{DeadLetter, Mailbox, MailboxEntry};

pub const MAX_QUEUED: usize = 1024;
/// Text waiting in one session's queue, in bytes: a program that stops reading cannot make the
/// daemon hold more than this for it.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// Text waiting in all queues together.
pub const MAX_QUEUED_BYTES_TOTAL: usize = 32 * 1024 * 1024;
/// A dead letter keeps at most this much of its text (the mailbox shows it; it is not retried).
const DEAD_PAYLOAD_BYTES: usize = 64 * 1024;
/// Dead letters kept per session (oldest dropped first).
const MAX_DEAD: usize = 100;

/// Bytes queued in every session of this process (one engine per daemon).
static QUEUED_BYTES_TOTAL: AtomicUsize = AtomicUsize::new(0);
const RETAINED_TERMINAL: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    Inject,
    Multicast,
    Broadcast,
    BusAutoRoute,
    AutoReport,
    Submit,
    Keys,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

/// What happened to a message, for `?wait=delivered` and `/submit` (the default: typed, no
/// Enter).
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    /// The Enter was sent.
    pub submitted: bool,
    /// When the Enter write started (output after it belongs to the submitted line).
    pub submitted_at: Option<Instant>,
    /// Why the screen does not confirm the message was taken as one submitted prompt; `None`
    /// when it does (or when no Enter was asked for).
    pub unconfirmed: Option<String>,
}

impl Delivered {
    /// `submitted` (the screen confirms it), `typed` (text written, submission not confirmed
    /// or not asked for).
    pub fn outcome(&self) -> &'static str {
        if self.submitted && self.unconfirmed.is_none() {
            "submitted"
        } else {
            "typed"
        }
    }
}

pub struct Message {
    pub msg_id: String,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub inject_id: Option<String>,
    pub text: String,
    pub enter: bool,
    /// Keys and viewer-style input: written verbatim, never paste-wrapped.
    pub raw: bool,
    pub source: Source,
    pub created_at: SystemTime,
    pub done: Option<oneshot::Sender<Result<Delivered, EngineError>>>,
}

impl Message {
    pub fn new(text: String, enter: bool, source: Source, from: Option<String>) -> Self {
        let sender = match (&from, source) {
            (Some(f), Source::Inject) => f.clone(),
            (None, Source::Inject) => "inject".to_string(),
            _ => "daemon".to_string(),
        };
        let created_at = SystemTime::now();
        let msg_id = format!(
            "{sender}:{}:{}",
            crate::util::unix_ms(created_at),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Message {
            msg_id,
            from,
            reply_to: None,
            inject_id: None,
            text,
            enter,
            raw: false,
            source,
            created_at,
            done: None,
        }
    }
}

#[derive(Clone)]
struct Entry {
    msg_id: String,
    from: Option<String>,
    to: String,
    /// Only a dead letter keeps (the start of) its text: the message itself carries it while
    /// it is queued, so live entries never hold a second copy.
    payload: Option<String>,
    created_at: SystemTime,
    attempt: u32,
    state: &'static str,
    failed_at: Option<SystemTime>,
    reason: Option<String>,
}

#[derive(Default)]
struct Book {
    entries: VecDeque<Entry>,
    dead: Vec<Entry>,
}

pub struct Queue {
    tx: Mutex<Option<mpsc::UnboundedSender<Message>>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Message>>>,
    queued: AtomicUsize,
    /// Bytes of text queued and not yet finished (delivered, failed or dropped).
    bytes: AtomicUsize,
    book: Mutex<Book>,
}

/// Queued or being delivered (the other states are final).
fn is_live(state: &str) -> bool {
    matches!(state, "pending" | "in_flight")
}

impl Default for Queue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Queue {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            queued: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            book: Mutex::new(Book::default()),
        }
    }
}

impl Queue {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock()
    }

    pub(crate) fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Message>> {
        self.rx.lock().take()
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Enqueue; fails with QUEUE_FULL past 1024 waiting messages, or when the text would
    /// exceed the session's or the daemon's byte budget.
    pub fn push(&self, to: &str, msg: Message) -> Result<(), EngineError> {
        if self.queued() >= MAX_QUEUED {
            return Err(EngineError::QueueFull);
        }
        let n = msg.text.len();
        let mine = self.bytes.load(Ordering::Acquire);
        let all = QUEUED_BYTES_TOTAL.load(Ordering::Acquire);
        let budgets = [
            (mine, MAX_QUEUED_BYTES, "session"),
            (all, MAX_QUEUED_BYTES_TOTAL, "daemon"),
        ];
        for (queued, limit, scope) in budgets {
            if queued + n > limit && queued > 0 {
                return Err(EngineError::QueueBytesFull {
                    queued,
                    limit,
                    scope,
                });
            }
        }
        let entry = Entry {
            msg_id: msg.msg_id.clone(),
            from: msg.from.clone(),
            to: to.to_string(),
            payload: None,
            created_at: msg.created_at,
            attempt: 0,
            state: "pending",
            failed_at: None,
            reason: None,
        };
        let guard = self.tx.lock();
        let tx = guard
            .as_ref()
            .ok_or_else(|| EngineError::disconnected("Session is closing."))?;
        self.book().entries.push_back(entry);
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(n, Ordering::AcqRel);
        QUEUED_BYTES_TOTAL.fetch_add(n, Ordering::AcqRel);
        if tx.send(msg).is_err() {
            self.finished(n);
            return Err(EngineError::disconnected("Session is closing."));
        }
        Ok(())
    }

    /// A message of `n` bytes left the queue (typed, failed or dropped).
    pub(super) fn finished(&self, n: usize) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        QUEUED_BYTES_TOTAL.fetch_sub(n, Ordering::AcqRel);
    }

    /// Stop accepting messages; the delivery task drains and ends.
    pub fn close(&self) {
        self.tx.lock().take();
        let mut book = self.book();
        book.entries.clear();
        book.dead.clear();
    }

    /// (pending + in_flight, dead_letter)
    pub fn counts(&self) -> (usize, usize) {
        let book = self.book();
        let pending = book.entries.iter().filter(|e| is_live(e.state)).count();
        (pending, book.dead.len())
    }

    /// A message became a dead letter: it keeps the start of its text for the mailbox view.
    pub(super) fn dead_letter(&self, msg_id: &str, attempt: u32, reason: String, text: &str) {
        self.set_state(msg_id, "dead_letter", attempt, Some(reason));
        let mut book = self.book();
        let mut cut = text.len().min(DEAD_PAYLOAD_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(d) = book.dead.iter_mut().rev().find(|d| d.msg_id == msg_id) {
            d.payload = Some(text[..cut].to_string());
        }
        let excess = book.dead.len().saturating_sub(MAX_DEAD);
        book.dead.drain(..excess);
    }

    pub(super) fn set_state(
        &self,
        msg_id: &str,
        state: &'static str,
        attempt: u32,
        reason: Option<String>,
    ) {
        let mut book = self.book();
        let Book { entries, dead } = &mut *book;
        if let Some(e) = entries.iter_mut().find(|e| e.msg_id == msg_id) {
            e.state = state;
            e.attempt = attempt;
            if !is_live(state) {
                e.failed_at = Some(SystemTime::now());
                e.reason = reason;
            }
            if state == "dead_letter" {
                dead.push(e.clone());
            }
        }
        // Keep every live entry and only the most recent terminal ones.
        let terminal_count = book.entries.iter().filter(|e| !is_live(e.state)).count();
        let mut excess = terminal_count.saturating_sub(RETAINED_TERMINAL);
        book.entries.retain(|e| {
            if excess > 0 && !is_live(e.state) {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    /// `GET /api/sessions/:id/mailbox`
    pub fn view(&self, session_id: &str) -> Mailbox {
        let book = self.book();
        Mailbox {
            session_id: session_id.to_string(),
            pending: book
                .entries
                .iter()
                .map(|e| MailboxEntry {
                    msg_id: e.msg_id.clone(),
                    from: e.from.clone(),
                    created_at: unix_secs(e.created_at),
                    attempt: e.attempt,
                    state: e.state.into(),
                })
                .collect(),
            dead_letter: book
                .dead
                .iter()
                .map(|e| DeadLetter {
                    msg_id: e.msg_id.clone(),
                    from: e.from.clone(),
                    to: e.to.clone(),
                    payload: e.payload.clone(),
                    reason: e.reason.clone(),
                    failed_at: e.failed_at.map(unix_secs),
                    attempts: e.attempt,
                })
                .collect(),
        }
    }

    pub fn ack(&self, msg_id: &str) {
        let mut book = self.book();
        let finished = |e: &&mut Entry| e.msg_id == msg_id && !is_live(e.state);
        if let Some(e) = book.entries.iter_mut().find(finished) {
            e.state = "acked";
        }
    }

    /// Drop retained (terminal) entries; queued messages still drain but are no longer listed.
    pub fn clear(&self) {
        self.book().entries.clear();
    }

    pub fn clear_dead(&self) {
        self.book().dead.clear();
    }
}
