//! One FIFO input queue per session and the task that delivers it (API.md §6.2).
//!
//! Each message is delivered completely before the next starts: the text as one write, then,
//! after the Enter gate, a lone `\r` as a separate write. Concurrent injects therefore never
//! merge, interleave or reorder. A failed text write is retried (1 s, 2 s) ahead of later
//! messages and dead-lettered after three attempts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::error::EngineError;
use super::gate::{Baseline, View};
use super::profile::{Paste, Profile};
use super::session::{Kind, Session};
use super::terminal::Terminal;
use super::{Shared, aterm};
use crate::util::unix_secs;
use crate::wire::event as ev;
use crate::wire::frame::Frame;
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
const MAX_ATTEMPTS: u32 = 3;
const RETAINED_TERMINAL: usize = 100;
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(30);
/// Quiet that ends the previous submit's output before the next text: shorter than the Enter
/// gate's, since a command's output arrives in one burst (the whole gate stays bounded by max).
const SETTLE_QUIET: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        match self {
            Source::Inject => "inject",
            Source::Multicast => "multicast",
            Source::Broadcast => "broadcast",
            Source::BusAutoRoute => "bus_auto_route",
            Source::AutoReport => "auto_report",
            Source::Submit => "submit",
            Source::Keys => "keys",
        }
    }
}

/// What happened to a message, for `?wait=delivered` and `/submit`.
#[derive(Debug, Clone)]
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
    fn typed() -> Self {
        Delivered {
            submitted: false,
            submitted_at: None,
            unconfirmed: None,
        }
    }

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

impl Queue {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Queue {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            queued: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            book: Mutex::new(Book::default()),
        }
    }

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
        if mine + n > MAX_QUEUED_BYTES && mine > 0 {
            return Err(EngineError::QueueBytesFull {
                queued: mine,
                limit: MAX_QUEUED_BYTES,
                scope: "session",
            });
        }
        let all = QUEUED_BYTES_TOTAL.load(Ordering::Acquire);
        if all + n > MAX_QUEUED_BYTES_TOTAL && all > 0 {
            return Err(EngineError::QueueBytesFull {
                queued: all,
                limit: MAX_QUEUED_BYTES_TOTAL,
                scope: "daemon",
            });
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
    fn finished(&self, n: usize) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        QUEUED_BYTES_TOTAL.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes of text waiting in this queue.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
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
        let pending = book
            .entries
            .iter()
            .filter(|e| e.state == "pending" || e.state == "in_flight")
            .count();
        (pending, book.dead.len())
    }

    /// A message became a dead letter: it keeps the start of its text for the mailbox view.
    fn dead_letter(&self, msg_id: &str, attempt: u32, reason: String, text: &str) {
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

    fn set_state(&self, msg_id: &str, state: &'static str, attempt: u32, reason: Option<String>) {
        let mut book = self.book();
        let terminal = !matches!(state, "pending" | "in_flight");
        let mut dead = None;
        if let Some(e) = book.entries.iter_mut().find(|e| e.msg_id == msg_id) {
            e.state = state;
            e.attempt = attempt;
            if terminal {
                e.failed_at = Some(SystemTime::now());
                e.reason = reason;
            }
            if state == "dead_letter" {
                dead = Some(e.clone());
            }
        }
        if let Some(d) = dead {
            book.dead.push(d);
        }
        // Keep every live entry and only the most recent terminal ones.
        let terminal_count = book
            .entries
            .iter()
            .filter(|e| !matches!(e.state, "pending" | "in_flight"))
            .count();
        let mut excess = terminal_count.saturating_sub(RETAINED_TERMINAL);
        book.entries.retain(|e| {
            if excess > 0 && !matches!(e.state, "pending" | "in_flight") {
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
        if let Some(e) = book.entries.iter_mut().find(|e| e.msg_id == msg_id) {
            if !matches!(e.state, "pending" | "in_flight") {
                e.state = "acked";
            }
        }
    }

    /// Drop retained (terminal) entries; queued messages still drain but are no longer listed.
    pub fn clear(&self) {
        let mut book = self.book();
        book.entries.clear();
    }

    pub fn clear_dead(&self) {
        self.book().dead.clear();
    }
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

/// The last submitted message, as the next one needs it.
struct LastSubmit {
    at: Instant,
    /// The input area before it was typed (to see whether it is still there, unsubmitted).
    baseline: Option<Baseline>,
    confirmed: bool,
}

/// The per-session delivery task.
pub(crate) async fn run(
    session: Arc<Session>,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    let mut last: Option<LastSubmit> = None;
    let cancel = shared.cancel.clone();
    loop {
        // Shutdown is honoured between messages only: one that has started is typed and
        // submitted whole, never left half-typed for the next engine.
        let mut msg = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            m = rx.recv() => match m {
                Some(m) => m,
                None => {
                    // The session was deleted: whatever its queue held is freed now; hand the
                    // memory back rather than keep it in the allocator's arenas.
                    drop(session);
                    tokio::task::spawn_blocking(crate::util::release_free_memory);
                    return;
                }
            },
        };
        let profile = session.profile.clone();
        let typing = !msg.text.is_empty() && !msg.raw;
        if typing && profile.is_agent() && session.kind != Kind::Aterm {
            // An agent takes the next prompt only once its turn is over: text typed while it is
            // busy is queued into its own input and merged with the next.
            if let Err(why) = wait_ready(&session, &profile).await {
                tracing::info!(session = %session.id(), "typing anyway: {why}");
            }
            if let Some(prev) = last.as_ref().filter(|l| !l.confirmed) {
                clear_leftover(&session, &profile, prev).await;
            }
        } else if let (Some(prev), false) = (&last, msg.text.is_empty()) {
            // Let the previous submit's output settle before typing again, so the tty's echo
            // of the next text never lands in the middle of the previous command's output.
            let st = &shared.settings;
            let max = if session.kind == Kind::Wrapped {
                st.submit_max_wrapped
            } else {
                st.submit_max
            };
            settle_gate(
                &session.term,
                prev.at,
                st.submit_min,
                st.submit_quiet.min(SETTLE_QUIET),
                max,
            )
            .await;
        }
        let baseline = typing.then(|| Baseline::take(&session.term.view(), &profile, &msg.text));
        let result = deliver(&session, &shared, &msg, baseline.as_ref()).await;
        // A message that was submitted, or typed with its Enter withheld (the text never
        // showed), is what the next one must not be glued to.
        last = match &result {
            Ok(d) if d.submitted || d.unconfirmed.is_some() => Some(LastSubmit {
                at: d.submitted_at.unwrap_or_else(Instant::now),
                baseline,
                confirmed: d.unconfirmed.is_none(),
            }),
            _ => None,
        };
        session.queue.finished(msg.text.len());
        if let Some(done) = msg.done.take() {
            let _ = done.send(result);
        }
    }
}

/// How long an agent that shows no busy marker may take to show its input area (it is starting
/// up, or its profile does not match this version): then the text is typed anyway.
const NOT_READY_LIMIT: Duration = Duration::from_secs(15);
/// How often conditions the screen cannot announce (the program exited) are looked at.
const RECHECK: Duration = Duration::from_millis(250);

/// Wait until the agent is ready for a prompt: its input area is on the screen, no busy marker,
/// and the screen has been quiet for the profile's `ready_quiet` (spinners animate).
async fn wait_ready(session: &Session, p: &Profile) -> Result<(), String> {
    let term = &session.term;
    let mut changes = term.watch_generation();
    let start = Instant::now();
    loop {
        changes.borrow_and_update();
        let view = term.view();
        let busy = view.busy(p);
        let now = Instant::now();
        let quiet_at = term
            .last_output()
            .map_or(now, |l| (l + p.ready_quiet).max(now));
        if !busy && view.ready(p) && quiet_at <= now {
            return Ok(());
        }
        if session.exited() {
            return Err("the program exited".into());
        }
        let limit = if busy {
            p.ready_timeout
        } else {
            p.ready_timeout.min(NOT_READY_LIMIT)
        };
        if now >= start + limit {
            return Err(format!(
                "{} not ready after {} s",
                p.name,
                limit.as_secs_f32().round()
            ));
        }
        let wake = (now + RECHECK).min(start + limit);
        let wake = if quiet_at > now {
            wake.min(quiet_at)
        } else {
            wake
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = changes.changed() => {}
        }
    }
}

/// Wait until `pred` holds on the screen, at most until `deadline`; when it held.
async fn wait_screen(
    session: &Session,
    deadline: Instant,
    mut pred: impl FnMut(&View) -> bool,
) -> Option<Instant> {
    let term = &session.term;
    let mut changes = term.watch_generation();
    loop {
        changes.borrow_and_update();
        if pred(&term.view()) {
            return Some(Instant::now());
        }
        let now = Instant::now();
        if now >= deadline || session.exited() {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.min(now + RECHECK).into()) => {}
            _ = changes.changed() => {}
        }
    }
}

/// The previous message's text is still in the input area, unsubmitted: clear it, so the next
/// one is not glued to it.
async fn clear_leftover(session: &Arc<Session>, p: &Profile, prev: &LastSubmit) {
    let (Some(base), Some(clear)) = (&prev.baseline, &p.clear) else {
        return;
    };
    if !base.still_typed(&session.term.view(), p) {
        return;
    }
    tracing::info!(session = %session.id(), "clearing an unsubmitted prompt before the next");
    if write_keys(session, clear).await.is_ok() {
        wait_screen(session, Instant::now() + Duration::from_secs(1), |v| {
            !base.still_typed(v, p)
        })
        .await;
    }
}

async fn deliver(
    session: &Arc<Session>,
    shared: &Arc<Shared>,
    msg: &Message,
    baseline: Option<&Baseline>,
) -> Result<Delivered, EngineError> {
    let settings = &shared.settings;
    let id = session.id();
    let profile = session.profile.clone();
    let mut attempt = 0;
    let mut t0 = Instant::now();
    // The owner connection the text went to (wrapped sessions).
    let mut owner = None;
    if !msg.text.is_empty() {
        loop {
            // T0 is taken before the write: a fast echo can beat the write's acknowledgement.
            t0 = Instant::now();
            attempt += 1;
            session
                .queue
                .set_state(&msg.msg_id, "in_flight", attempt, None);
            let res = match tokio::time::timeout(IN_FLIGHT_LIMIT, write_text(session, shared, msg))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(EngineError::Timeout(
                    "Delivery exceeded the in-flight limit.".into(),
                )),
            };
            match res {
                Ok(()) => {
                    owner = session.owner_conn();
                    break;
                }
                Err(e) => {
                    shared.emit_envelope(
                        Some(session),
                        ev::MailboxDeliveryFailed {
                            msg_id: msg.msg_id.clone(),
                            error: e.to_string(),
                        },
                    );
                    if attempt >= MAX_ATTEMPTS || session.meta().closing {
                        session.queue.dead_letter(
                            &msg.msg_id,
                            attempt,
                            "max_retries exhausted".into(),
                            &msg.text,
                        );
                        shared.emit_inject_failed(session, &id, msg, &e, "text");
                        return Err(e);
                    }
                    session
                        .queue
                        .set_state(&msg.msg_id, "nacked", attempt, Some(e.to_string()));
                    session
                        .queue
                        .set_state(&msg.msg_id, "pending", attempt, None);
                    tokio::time::sleep(Duration::from_secs(attempt as u64)).await;
                }
            }
        }
        session.meta().last_activity_at = Some(SystemTime::now());
        shared.emit_envelope(
            Some(session),
            ev::MailboxDelivered {
                msg_id: msg.msg_id.clone(),
            },
        );
    }
    session.queue.set_state(&msg.msg_id, "acked", attempt, None);
    if !msg.enter || session.kind == Kind::Aterm {
        return Ok(Delivered::typed());
    }
    // Whether the text showed in the input area before the Enter (`None`: not looked for).
    let mut seen = None;
    if let Some(base) = baseline.filter(|b| !b.tail.is_empty() || profile.pasted.is_some()) {
        if let Some(limit) = profile.consume_timeout {
            // The screen gate: the Enter goes only once the program has shown the text, so it
            // is read on its own and not as part of a paste.
            let Some(at) = wait_screen(session, t0 + limit, |v| base.consumed(v, &profile)).await
            else {
                return Ok(Delivered {
                    unconfirmed: Some(format!(
                        "the text did not show in the input area within {} s; Enter not sent",
                        limit.as_secs()
                    )),
                    ..Delivered::typed()
                });
            };
            enter_gap(&session.term, t0, at, &profile, settings).await;
            seen = Some(true);
        }
    }
    if seen.is_none() && !msg.text.is_empty() {
        let max = if session.kind == Kind::Wrapped {
            settings.submit_max_wrapped
        } else {
            settings.submit_max
        };
        enter_gate(
            &session.term,
            t0,
            settings.submit_min,
            settings.submit_quiet,
            max,
        )
        .await;
        seen = baseline.map(|b| b.consumed(&session.term.view(), &profile));
    }
    if session.kind == Kind::Wrapped && !msg.text.is_empty() {
        if let Some(why) = owner_took_the_enter(session, owner).await {
            return Ok(Delivered {
                unconfirmed: Some(why),
                ..Delivered::typed()
            });
        }
    }
    let at = Instant::now();
    if let Err(e) = write_keys(session, &profile.submit).await {
        shared.emit_inject_failed(session, &id, msg, &e, "submit");
        return Err(e);
    }
    let unconfirmed = match (baseline, seen) {
        (Some(base), Some(true)) => confirm(session, &profile, base).await,
        (Some(_), Some(false)) => Some("the text did not show on the screen".into()),
        _ => None,
    };
    Ok(Delivered {
        submitted: true,
        submitted_at: Some(at),
        unconfirmed,
    })
}

/// A wrapped session's text went to owner connection `owner`. If the owner is not that
/// connection any more, its bridge lost us after the text and pressed the Enter itself: say so
/// instead of sending a second one. With no owner, wait for it to come back (bounded).
async fn owner_took_the_enter(session: &Session, owner: Option<u64>) -> Option<String> {
    let now = match session.owner_conn() {
        Some(c) => Some(c),
        None => {
            session
                .owner_within(super::session::OWNER_RECONNECT_WAIT)
                .await
        }
    };
    match now {
        Some(c) if Some(c) != owner => {
            Some("the owner reconnected after the text; its bridge pressed the Enter".into())
        }
        _ => None,
    }
}

/// After the text showed at `seen`: the profile's gap, no earlier than the `[inject]` minimum
/// after the write, then a quiet moment (the echo finished), bounded.
async fn enter_gap(
    term: &Terminal,
    t0: Instant,
    seen: Instant,
    p: &Profile,
    settings: &super::EngineSettings,
) {
    let not_before = (seen + p.enter_gap).max(t0 + settings.submit_min);
    let hard = not_before + Duration::from_secs(1);
    let mut changes = term.watch_generation();
    loop {
        changes.borrow_and_update();
        let now = Instant::now();
        let quiet_at = term
            .last_output()
            .map_or(now, |l| l + settings.submit_quiet);
        let ready_at = not_before.max(quiet_at).min(hard);
        if now >= ready_at {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(ready_at.into()) => {}
            _ = changes.changed() => {}
        }
    }
}

/// Wait for the screen to confirm the submit (the text left the input area, or the agent turned
/// busy); while the text is still there, press Enter again, up to the profile's retries (an
/// Enter read together with the text was taken as a line break). `None` when confirmed.
async fn confirm(session: &Arc<Session>, p: &Profile, base: &Baseline) -> Option<String> {
    for retry in 0..=p.submit_retries {
        let deadline = Instant::now() + p.confirm_timeout;
        if wait_screen(session, deadline, |v| base.submitted(v, p))
            .await
            .is_some()
        {
            return None;
        }
        if retry == p.submit_retries || !base.still_typed(&session.term.view(), p) {
            break;
        }
        tracing::info!(session = %session.id(), "the text is still in the input area: Enter again");
        if write_keys(session, &p.submit).await.is_err() {
            break;
        }
    }
    Some(format!(
        "the input area did not clear within {} s of the Enter",
        p.confirm_timeout.as_secs_f32()
    ))
}

/// Wait until the text has visibly landed: output after `t0` followed by `quiet` of silence,
/// no earlier than `min`, and in any case no later than `max`.
pub async fn enter_gate(
    term: &Terminal,
    t0: Instant,
    min: Duration,
    quiet: Duration,
    max: Duration,
) {
    let mut changes = term.watch_generation();
    let hard = t0 + max;
    loop {
        let now = Instant::now();
        if now >= hard {
            return;
        }
        let ready_at = match term.last_output().filter(|l| *l >= t0) {
            Some(last) => (t0 + min).max(last + quiet),
            None => hard,
        };
        if now >= ready_at {
            return;
        }
        let wake = ready_at.min(hard);
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            r = changes.changed() => if r.is_err() { tokio::time::sleep_until(wake.into()).await; }
        }
    }
}

/// After a submit: wait for its output to go quiet, bounded by `max`; a program that prints
/// nothing within `min` of the Enter is not waited for.
pub async fn settle_gate(
    term: &Terminal,
    t: Instant,
    min: Duration,
    quiet: Duration,
    max: Duration,
) {
    let mut changes = term.watch_generation();
    let hard = t + max;
    loop {
        let now = Instant::now();
        let ready_at = match term.last_output().filter(|l| *l >= t) {
            Some(last) => (last + quiet).min(hard),
            None => (t + min).min(hard),
        };
        if now >= ready_at {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(ready_at.into()) => {}
            r = changes.changed() => if r.is_err() { tokio::time::sleep_until(ready_at.into()).await; }
        }
    }
}

/// Text as it is typed: wrapped in bracketed paste when the program enabled DECSET 2004 and the
/// text has a line break (any `ESC[201~` inside removed first), raw otherwise.
pub fn paste_wrap(text: &str, bracketed: bool) -> Vec<u8> {
    if bracketed && (text.contains('\n') || text.contains('\r')) {
        let inner = text.replace("\x1b[201~", "");
        format!("\x1b[200~{inner}\x1b[201~").into_bytes()
    } else {
        text.as_bytes().to_vec()
    }
}

/// Text as the profile types it: multi-line text as a bracketed paste when the program enabled
/// it (and the profile pastes), else with each line break typed as the profile's newline keys
/// (a program without paste mode would submit every line), else raw.
pub fn encode_text(text: &str, p: &Profile, bracketed: bool) -> Vec<u8> {
    let bracketed = bracketed && p.paste == Paste::Bracketed;
    if bracketed
        && p.paste_over_chars
            .is_some_and(|n| text.chars().count() >= n)
    {
        let inner = text.replace("\x1b[201~", "");
        return format!("\x1b[200~{inner}\x1b[201~").into_bytes();
    }
    let multi_line = text.contains('\n') || text.contains('\r');
    match &p.newline {
        Some(nl) if multi_line && !bracketed => text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\n', nl)
            .into_bytes(),
        _ => paste_wrap(text, bracketed),
    }
}

async fn write_text(
    session: &Arc<Session>,
    shared: &Arc<Shared>,
    msg: &Message,
) -> Result<(), EngineError> {
    if let Some(r) = session.term.recorder() {
        // Who typed it: the sender of an inject, else the path it came by; keys carry no marker.
        let who = match msg.source {
            Source::Inject => Some(msg.from.as_deref().unwrap_or("api")),
            Source::Keys | Source::Submit => None,
            other => Some(other.as_str()),
        };
        r.input(&msg.text, who);
    }
    match session.kind {
        Kind::Spawned => {
            let pty = session
                .pty
                .as_ref()
                .ok_or_else(|| EngineError::disconnected("PTY process is not connected."))?;
            if session.exited() {
                return Err(EngineError::disconnected("PTY process is not connected."));
            }
            let bytes = if msg.raw {
                msg.text.as_bytes().to_vec()
            } else {
                encode_text(&msg.text, &session.profile, session.term.bracketed_paste())
            };
            pty.write(bytes)
                .await
                .map_err(|_| EngineError::disconnected("PTY process is not connected."))
        }
        Kind::Wrapped => {
            let frame = Frame::Inject {
                data: msg.text.clone(),
                raw: msg.raw,
                // Extension: an Enter follows. A bridge that loses the daemon before it comes
                // presses it itself, so the text is never glued to the next one.
                enter: msg.enter && !msg.raw,
            };
            if session.send_to_owner(frame) {
                Ok(())
            } else {
                Err(EngineError::disconnected("Session owner is disconnected."))
            }
        }
        Kind::Aterm => {
            let (endpoint, transport_uds) = {
                let m = session.meta();
                let uds = m
                    .delivery
                    .as_ref()
                    .and_then(|d| d.get("transport"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "unix_socket");
                (m.delivery_endpoint.clone(), uds)
            };
            let res = aterm::deliver(
                endpoint.as_deref(),
                transport_uds,
                &session.id(),
                &msg.text,
                shared.settings.delivery_timeout,
                shared.http_post.get(),
            )
            .await;
            if let Err(EngineError::Disconnected { .. }) = &res {
                let mut m = session.meta();
                if m.endpoint_ok {
                    m.endpoint_ok = false;
                    m.last_disconnected_at = Some(SystemTime::now());
                }
            }
            res
        }
    }
}

/// Keys written as they are (the submit or clear keys), on the session's own path.
async fn write_keys(session: &Arc<Session>, keys: &str) -> Result<(), EngineError> {
    if let Some(r) = session.term.recorder() {
        r.input(keys, None);
    }
    match session.kind {
        Kind::Spawned => {
            let pty = session
                .pty
                .as_ref()
                .ok_or_else(|| EngineError::disconnected("PTY process is not connected."))?;
            if session.exited() {
                return Err(EngineError::disconnected("PTY process is not connected."));
            }
            pty.write(keys.as_bytes().to_vec())
                .await
                .map_err(|_| EngineError::disconnected("PTY process is not connected."))
        }
        Kind::Wrapped => {
            let frame = Frame::Inject {
                data: keys.to_string(),
                raw: false,
                enter: false,
            };
            if session.send_to_owner(frame) {
                Ok(())
            } else {
                Err(EngineError::disconnected("Session owner is disconnected."))
            }
        }
        Kind::Aterm => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{encode_text, paste_wrap};

    #[test]
    fn profiles_type_line_breaks_their_way() {
        let p = crate::engine::profile::Profiles::builtin();
        let claude = p.get("claude").unwrap();
        let shell = p.get("shell").unwrap();
        assert_eq!(
            encode_text("a\nb", &claude, true),
            b"\x1b[200~a\nb\x1b[201~"
        );
        assert_eq!(encode_text("a\r\nb", &claude, false), b"a\\\rb");
        assert_eq!(encode_text("a\nb", &shell, false), b"a\nb");
        assert_eq!(encode_text("ab", &claude, false), b"ab");
        let long = "x".repeat(600);
        assert_eq!(
            encode_text(&long, &claude, true),
            format!("\x1b[200~{long}\x1b[201~").into_bytes()
        );
        assert_eq!(encode_text(&long, &shell, true), long.as_bytes());
    }

    #[test]
    fn paste_wrapping() {
        assert_eq!(paste_wrap("ls", true), b"ls");
        assert_eq!(paste_wrap("a\nb", false), b"a\nb");
        assert_eq!(paste_wrap("a\nb", true), b"\x1b[200~a\nb\x1b[201~");
        assert_eq!(paste_wrap("a\x1b[201~\nb", true), b"\x1b[200~a\nb\x1b[201~");
    }
}
