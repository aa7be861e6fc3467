//! The task that delivers one session's mailbox (`mailbox.rs`, API.md §6.2).
//!
//! Each message is delivered completely before the next starts: the text as one write, then
//! the submit key as a separate write, timed by the session's profile (the screen gate for
//! agents, the quiet-window Enter gate otherwise). Concurrent injects therefore never merge,
//! interleave or reorder. A failed text write is retried (1 s, 2 s) ahead of later
//! messages and dead-lettered after three attempts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::mpsc;

use super::error::EngineError;
use super::gate::{Baseline, View};
use super::mailbox::{Delivered, Message, Source};
use super::profile::{Paste, Profile};
use super::session::{Kind, Session};
use super::terminal::Terminal;
use super::{Shared, aterm};
use crate::wire::event as ev;
use crate::wire::frame::Frame;

const MAX_ATTEMPTS: u32 = 3;
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(30);
/// Quiet that ends the previous submit's output before the next text: shorter than the Enter
/// gate's, since a command's output arrives in one burst (the whole gate stays bounded by max).
const SETTLE_QUIET: Duration = Duration::from_millis(20);

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
    // Messages that arrived while the one at the head waited for a busy agent, in order.
    let mut backlog: VecDeque<Message> = VecDeque::new();
    let cancel = shared.cancel.clone();
    loop {
        // Shutdown is honoured between messages only: one that has started is typed and
        // submitted whole, never left half-typed for the next engine.
        let next = match backlog.pop_front() {
            Some(m) => Some(m),
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                m = rx.recv() => m,
            },
        };
        let Some(msg) = next else {
            // The session was deleted: whatever its queue held is freed now; hand the memory
            // back rather than keep it in the allocator's arenas.
            drop(session);
            tokio::task::spawn_blocking(crate::util::release_free_memory);
            return;
        };
        let profile = session.profile.clone();
        let typing = !msg.text.is_empty() && !msg.raw;
        if typing && profile.is_agent() && session.kind != Kind::Aterm {
            // An agent takes the next prompt only once its turn is over: text typed while it is
            // busy is queued into its own input and merged with the next.
            // Shutdown does not wait for a busy agent: the message is not started, like any
            // other still queued.
            // Keys go on meanwhile (ctrl+c must reach an agent whose turn the text waits
            // for); anything else keeps its place behind the text.
            let wait = wait_ready(&session, &profile);
            tokio::pin!(wait);
            let ready = loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    r = &mut wait => break r,
                    Some(m) = rx.recv() => {
                        if m.raw {
                            let res = deliver(&session, &shared, &m, None).await;
                            complete(&session, m, res);
                        } else {
                            backlog.push_back(m);
                        }
                    }
                }
            };
            if let Err(why) = ready {
                tracing::info!(session = %session.id(), "typing anyway: {why}");
            }
            if let Some(prev) = last.as_ref().filter(|l| !l.confirmed) {
                clear_leftover(&session, &profile, prev).await;
            }
        } else if let (Some(prev), false) = (&last, msg.text.is_empty()) {
            // Let the previous submit's output settle before typing again, so the tty's echo
            // of the next text never lands in the middle of the previous command's output.
            let st = &shared.settings;
            let quiet = st.submit_quiet.min(SETTLE_QUIET);
            let max = submit_max(session.kind, st);
            settle_gate(&session.term, prev.at, st.submit_min, quiet, max).await;
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
        complete(&session, msg, result);
    }
}

/// The Enter gate's bound (`[inject] submit_max_ms`; wrapped sessions have their own).
fn submit_max(kind: Kind, settings: &super::EngineSettings) -> Duration {
    if kind == Kind::Wrapped {
        settings.submit_max_wrapped
    } else {
        settings.submit_max
    }
}

/// A message is done with: it leaves the queue's byte count and its sender hears how it went.
fn complete(session: &Session, mut msg: Message, result: Result<Delivered, EngineError>) {
    session.queue.finished(msg.text.len());
    if let Some(done) = msg.done.take() {
        let _ = done.send(result);
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
            let res = tokio::time::timeout(IN_FLIGHT_LIMIT, write_text(session, shared, msg))
                .await
                .unwrap_or_else(|_| {
                    let why = "Delivery exceeded the in-flight limit.";
                    Err(EngineError::Timeout(why.into()))
                });
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
        return Ok(Delivered::default());
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
                    ..Delivered::default()
                });
            };
            enter_gap(&session.term, t0, at, &profile, settings).await;
            seen = Some(true);
        }
    }
    if seen.is_none() && !msg.text.is_empty() {
        let (min, quiet) = (settings.submit_min, settings.submit_quiet);
        let max = submit_max(session.kind, settings);
        enter_gate(&session.term, t0, min, quiet, max).await;
        seen = baseline.map(|b| b.consumed(&session.term.view(), &profile));
    }
    if session.kind == Kind::Wrapped && !msg.text.is_empty() {
        if let Some(why) = owner_took_the_enter(session, owner).await {
            return Ok(Delivered {
                unconfirmed: Some(why),
                ..Delivered::default()
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
    // At once when an owner is connected.
    let now = session.owner_within(super::session::OWNER_RECONNECT_WAIT);
    let other = now.await.filter(|c| Some(*c) != owner);
    other.map(|_| "the owner reconnected after the text; its bridge pressed the Enter".into())
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
    quiet_until(term, |last| {
        let quiet_at = last.map_or(not_before, |l| l + settings.submit_quiet);
        not_before.max(quiet_at).min(hard)
    })
    .await
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
    let hard = t0 + max;
    quiet_until(term, |last| match last.filter(|l| *l >= t0) {
        Some(last) => (t0 + min).max(last + quiet).min(hard),
        None => hard,
    })
    .await
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
    let hard = t + max;
    quiet_until(term, |last| match last.filter(|l| *l >= t) {
        Some(last) => (last + quiet).min(hard),
        None => (t + min).min(hard),
    })
    .await
}

/// Wait until the time `ready_at` makes of the terminal's last output, asked again whenever
/// output arrives.
async fn quiet_until(term: &Terminal, ready_at: impl Fn(Option<Instant>) -> Instant) {
    let mut changes = term.watch_generation();
    loop {
        let at = ready_at(term.last_output());
        if Instant::now() >= at {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            r = changes.changed() => if r.is_err() { tokio::time::sleep_until(at.into()).await; }
        }
    }
}

/// Text as it is typed: wrapped in bracketed paste when the program enabled DECSET 2004 and the
/// text has a line break (any `ESC[201~` inside removed first), raw otherwise.
pub fn paste_wrap(text: &str, bracketed: bool) -> Vec<u8> {
    if bracketed && (text.contains('\n') || text.contains('\r')) {
        paste(text)
    } else {
        text.as_bytes().to_vec()
    }
}

/// `text` as one bracketed paste.
fn paste(text: &str) -> Vec<u8> {
    let inner = text.replace("\x1b[201~", "");
    format!("\x1b[200~{inner}\x1b[201~").into_bytes()
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
        return paste(text);
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
            let bytes = if msg.raw {
                msg.text.as_bytes().to_vec()
            } else {
                encode_text(&msg.text, &session.profile, session.term.bracketed_paste())
            };
            write_pty(session, bytes).await
        }
        Kind::Wrapped => send_owner(
            session,
            Frame::Inject {
                data: msg.text.clone(),
                raw: msg.raw,
                // Extension: an Enter follows. A bridge that loses the daemon before it comes
                // presses it itself, so the text is never glued to the next one.
                enter: msg.enter && !msg.raw,
            },
        ),
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

/// Bytes for a spawned session's program.
async fn write_pty(session: &Session, bytes: Vec<u8>) -> Result<(), EngineError> {
    let gone = || EngineError::disconnected("PTY process is not connected.");
    let pty = session.pty.as_ref().filter(|_| !session.exited());
    pty.ok_or_else(gone)?.write(bytes).await.map_err(|_| gone())
}

/// An inject frame for a wrapped session's owner.
fn send_owner(session: &Session, frame: Frame) -> Result<(), EngineError> {
    let sent = session.send_to_owner(frame).then_some(());
    sent.ok_or_else(|| EngineError::disconnected("Session owner is disconnected."))
}

/// Keys written as they are (the submit or clear keys), on the session's own path.
async fn write_keys(session: &Arc<Session>, keys: &str) -> Result<(), EngineError> {
    if let Some(r) = session.term.recorder() {
        r.input(keys, None);
    }
    match session.kind {
        Kind::Spawned => write_pty(session, keys.as_bytes().to_vec()).await,
        Kind::Wrapped => send_owner(
            session,
            Frame::Inject {
                data: keys.to_string(),
                raw: false,
                enter: false,
            },
        ),
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
