//! Background work of the engine, one task per concern: reaping children, the health sweep,
//! the state classifier tick; and the start of the sessions.json writer (`persist.rs`).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use super::classifier::{EscapeStripper, ProcessSignal};
use super::session::{ExitInfo, Kind, Session};
use super::{Engine, Shared, Source, aterm};
use crate::util::{now_iso, secs_since, signal_name};
use crate::wire::{Event, event as ev};

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Monotonic milliseconds for the classifier.
pub(crate) fn mono_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

pub(crate) fn socket_exists(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

pub(crate) fn start(shared: Arc<Shared>) {
    LazyLock::force(&EPOCH);
    shared.spawn_task(reaper(shared.clone()));
    shared.spawn_task(health_sweep(shared.clone()));
    shared.spawn_task(classifier_tick(shared.clone()));
    // The one writer of sessions.json: a thread, since every write ends in fsyncs.
    shared.store.start(Arc::downgrade(&shared));
}

/// Exits reported by the holders (which reap the children): mark the session, let the output
/// drain, tell everyone. A holder that vanished without reporting (killed) leaves a child
/// nobody can reap: the session ends when its output does, with an unknown status.
async fn reaper(shared: Arc<Shared>) {
    let Some(mut rx) = shared.exits_rx.lock().take() else {
        return;
    };
    while let Some((pid, status)) = rx.recv().await {
        match spawned_by(&shared, pid) {
            Some(s) => on_exit(&shared, s, pid, status),
            // A command that ends at once can be reaped before its session is in the
            // registry: wait (a while, on its own) for the registry to change.
            None => shared.spawn_task({
                let shared = shared.clone();
                async move {
                    let mut changes = shared.changes.subscribe();
                    let found = tokio::time::timeout(Duration::from_secs(5), async {
                        loop {
                            if let Some(s) = spawned_by(&shared, pid) {
                                return Some(s);
                            }
                            changes.changed().await.ok()?;
                        }
                    });
                    if let Ok(Some(s)) = found.await {
                        on_exit(&shared, s, pid, status);
                    }
                }
            }),
        }
    }
}

fn spawned_by(shared: &Shared, pid: u32) -> Option<Arc<Session>> {
    shared
        .registry()
        .sessions
        .values()
        .find(|s| s.kind == Kind::Spawned && s.pty.as_ref().is_some_and(|p| p.pid == pid))
        .cloned()
}

fn on_exit(
    shared: &Arc<Shared>,
    s: Arc<Session>,
    pid: u32,
    status: Option<crate::holder::ExitStatus>,
) {
    match status {
        Some(st) => {
            let mut m = s.meta();
            // Adopted sessions that ended while detached were marked already.
            if m.exit.is_none() || m.ready {
                m.exit = Some(ExitInfo {
                    code: st.code,
                    signal: st.signal.map(signal_name),
                    at: SystemTime::now(),
                });
                drop(m);
                shared.spawn_task(finish_exit(shared.clone(), s));
            }
        }
        None => {
            if s.exited() {
                return;
            }
            tracing::warn!(
                "the holder of session {} (pid {pid}) went away; its exit status will be unknown",
                s.id()
            );
            let sh = shared.clone();
            shared.spawn_task(async move {
                let shared = sh;
                s.reader_eof().await;
                if s.meta().exit.is_none() {
                    s.meta().exit = Some(ExitInfo {
                        code: None,
                        signal: None,
                        at: SystemTime::now(),
                    });
                    finish_exit(shared, s).await;
                }
            });
        }
    }
}

/// Let the reader drain the last output (bounded, since a background job may keep the tty
/// open), then tell everyone the session exited.
async fn finish_exit(shared: Arc<Shared>, s: Arc<Session>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), s.reader_eof()).await;
    let (code, signal) = {
        let mut m = s.meta();
        m.ready = false;
        match m.exit.as_mut() {
            Some(e) => {
                e.at = SystemTime::now();
                (e.code, e.signal.clone())
            }
            None => (None, None),
        }
    };
    s.close_all(1000, "Session exited");
    if let Some(r) = s.term.recorder() {
        let _ = r.finish();
    }
    shared.emit_envelope(
        Some(&s),
        ev::SessionExit {
            exit_code: code.map(i64::from),
            signal,
        },
    );
    shared.request_persist();
}

async fn health_sweep(shared: Arc<Shared>) {
    let engine = Engine {
        shared: shared.clone(),
    };
    let mut tick = tokio::time::interval(shared.settings.health_poll);
    tick.tick().await;
    loop {
        tick.tick().await;
        sweep_once(&engine);
    }
}

fn sweep_once(engine: &Engine) {
    let shared = &engine.shared;
    let st = &shared.settings;
    let mut removed = Vec::new();
    for s in shared.registry().ordered() {
        if s.kind == Kind::Aterm {
            let ep = s.meta().delivery_endpoint.clone();
            if let Some(p) = ep.filter(|p| p.starts_with('/')) {
                let ok = socket_exists(&p);
                let mut m = s.meta();
                if m.endpoint_ok != ok {
                    m.endpoint_ok = ok;
                    if ok {
                        m.last_connected_at = Some(SystemTime::now());
                    } else {
                        m.last_disconnected_at = Some(SystemTime::now());
                    }
                }
            }
        }
        let h = s.health(st.stale_secs);
        let last_activity = s.last_activity();
        let idle = last_activity.map(secs_since);
        let pid = s.pty.as_ref().map(|p| p.pid);
        let disc = s.meta().last_disconnected_at.map(secs_since);
        let alive = match s.kind {
            Kind::Spawned => !s.exited(),
            _ => h.status == "CONNECTED",
        };
        shared.emit_envelope(
            Some(&s),
            ev::SessionHealth {
                payload: ev::HealthPayload {
                    alive,
                    pid,
                    kind: s.kind.as_str().into(),
                    clients: s.client_count(),
                    idle_seconds: idle,
                    health: h.fields(),
                    disconnected_seconds: disc.filter(|_| h.status != "CONNECTED"),
                },
            },
        );
        if let Some(idle) = idle {
            let mut m = s.meta();
            if idle >= 60 && !m.idle_announced {
                m.idle_announced = true;
                drop(m);
                shared.emit(Event::SessionIdle(ev::SessionIdle {
                    session_id: s.id(),
                    idle_seconds: idle,
                    last_activity_at: last_activity.map(crate::util::iso),
                    timestamp: now_iso(),
                }));
            } else if idle < 60 {
                m.idle_announced = false;
            }
        }
        if s.kind != Kind::Wrapped && idle.is_some_and(|i| i >= st.auto_report_idle_secs) {
            fire_auto_report(engine, &s);
        }
        if h.status == "STALE" {
            let first = {
                let mut m = s.meta();
                !std::mem::replace(&mut m.stale_announced, true)
            };
            if first {
                shared.emit_envelope(
                    Some(&s),
                    ev::SessionStale {
                        health: h.fields(),
                        disconnected_seconds: disc,
                    },
                );
            }
        }
        if s.kind != Kind::Spawned
            && h.status != "CONNECTED"
            && s.client_count() == 0
            && disc.is_some_and(|d| d >= st.cleanup_secs)
        {
            removed.push((s, h.fields(), disc));
        }
    }
    for (s, health, disc) in removed {
        let id = s.id();
        {
            let mut reg = shared.registry_mut();
            reg.sessions.remove(&id);
            reg.aliases.retain(|_, t| t != &id);
        }
        s.queue.close();
        shared.emit_envelope(
            Some(&s),
            ev::SessionCleanup {
                health,
                reason: "STALE_DISCONNECTED".into(),
                disconnected_seconds: disc,
            },
        );
        shared.request_persist();
    }
}

/// Deliver the pending `TASK_COMPLETE` report of a target to whoever injected into it.
pub(crate) fn fire_auto_report(engine: &Engine, target: &Arc<Session>) {
    let Some(report) = target.meta().pending_report.take() else {
        return;
    };
    let Some(source) = engine.shared.registry().resolve(&report.source) else {
        return;
    };
    let secs = SystemTime::now()
        .duration_since(report.injected_at)
        .unwrap_or_default()
        .as_secs_f64();
    let text = format!(
        "TASK_COMPLETE: {} is now idle after processing inject ({secs:.1}s)",
        target.id()
    );
    let _ = engine.deliver(&source, &text, true, Source::AutoReport);
}

/// A session with new output is classified within this (a question on screen shows as
/// `waiting` in the dashboard a fraction of a second later, issue 12)...
const CLASSIFY_NEW_OUTPUT: Duration = Duration::from_millis(200);
/// ...and a quiet one once a second, for the changes time alone makes (silence, a long turn)
/// and the shell's foreground, at the cost the 1 s tick always had; except in the first
/// second after its output stopped, when a prompt settling is worth seeing at once.
const CLASSIFY_QUIET_MS: u64 = 1000;

/// Feed each session's new output to its classifier and publish transitions.
async fn classifier_tick(shared: Arc<Shared>) {
    // Per session: the generation already classified, a stripper that carries escape
    // sequences split between ticks, when it was last classified, and when its output last
    // changed.
    let mut seen: std::collections::HashMap<usize, (u64, EscapeStripper, u64, u64)> =
        std::collections::HashMap::new();
    let mut tick = tokio::time::interval(CLASSIFY_NEW_OUTPUT);
    loop {
        tick.tick().await;
        let sessions = shared.registry().ordered();
        let mut live = HashSet::new();
        for s in sessions {
            let key = Arc::as_ptr(&s) as usize;
            live.insert(key);
            let generation = s.term.generation();
            let entry = seen
                .entry(key)
                .or_insert_with(|| (0, EscapeStripper::new(), 0, 0));
            let now_ms = mono_ms();
            let settling = now_ms.saturating_sub(entry.3) < CLASSIFY_QUIET_MS;
            if generation == entry.0
                && !settling
                && now_ms.saturating_sub(entry.2) < CLASSIFY_QUIET_MS
            {
                continue;
            }
            entry.2 = now_ms;
            let wall = SystemTime::now();
            if generation > entry.0 {
                let raw = s.term.raw_since(entry.0);
                let text = entry.1.push(&String::from_utf8_lossy(&raw));
                s.classifier.lock().observe_output(&text, now_ms, wall);
                entry.0 = generation;
                entry.3 = now_ms;
            }
            // One read of the screen serves the classifier's tail and the profile's reading.
            let view = s.term.view();
            let mut tail: Vec<String> = view
                .rows
                .iter()
                .map(|r| r.trim_end())
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            tail.drain(..tail.len().saturating_sub(5));
            let agent = s
                .profile
                .is_agent()
                .then(|| super::classifier::AgentSignal {
                    profile: s.profile.name.clone(),
                    busy: view.busy(&s.profile),
                    ready: view.ready(&s.profile),
                });
            let shell = (s.profile.name == "shell"
                && super::classifier::interactive_shell(&s.meta().args))
            .then(|| s.pty.as_ref().and_then(|p| p.child_in_foreground()))
            .flatten()
            .map(|at_prompt| super::classifier::ShellSignal { at_prompt });
            // A program without a profile: what its foreground process is doing, once it has
            // been quiet for a moment (a chatty one is working whatever the kernel says).
            let quiet = now_ms.saturating_sub(entry.3) >= 300;
            let process = (agent.is_none() && shell.is_none() && quiet)
                .then(|| s.pty.as_ref().and_then(|p| p.foreground_pgrp()))
                .flatten()
                .map_or(ProcessSignal::Unknown, ProcessSignal::of_pid);
            let mut classifier = s.classifier.lock();
            classifier.note_process(process);
            let transition = classifier.tick_full(&tail, agent, shell, now_ms, wall);
            drop(classifier);
            if let Some(t) = transition {
                shared.emit_envelope(
                    Some(&s),
                    ev::SessionAutoState {
                        auto_state: t.to.as_str().into(),
                        auto_state_from: t.from.as_str().into(),
                        auto_detail: t.detail,
                    },
                );
                shared.bump();
            }
        }
        seen.retain(|k, _| live.contains(k));
    }
}

/// Coalesce MailboxWake nudges per session over 25 ms.
pub(crate) fn schedule_wake(s: &Arc<Session>) {
    static PENDING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
    let Some(path) = s
        .meta()
        .delivery_endpoint
        .clone()
        .filter(|p| p.starts_with('/'))
    else {
        return;
    };
    let id = s.id();
    if !PENDING.lock().insert(id.clone()) {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(25)).await;
        PENDING.lock().remove(&id);
        aterm::wake(&path, &id).await;
    });
}
