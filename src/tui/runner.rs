//! The event loop: terminal input (crossterm's `EventStream`), background messages, pane
//! output and signals are fed to the [`App`]'s update functions; the [`Effect`]s they return
//! are executed here; a frame is drawn when something changed (≤ 60 per second).
//!
//! The loop sleeps until something happens: a key, a bus event, a session change, or a
//! pane's output (the loop polls every pane's generation watch itself while it waits for
//! output, and not at all while a frame is pending: one wake per frame at most, on the loop's
//! own thread). An idle embedded dashboard does no work beyond a once-a-second session refresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crossterm::event::EventStream;
use futures_util::StreamExt;
use ratatui::crossterm::event::Event;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};

use super::app::{App, Effect};
use super::backend::{self, Backend};
use super::fleet::{self, Fleet, PeerBoard};
use super::info::SessionInfo;
use super::keymap::KeySpec;
use super::msg::{AppMsg, is_session_event};
use super::notify::Notifier;
use super::source::{EmbeddedPane, PaneSource};
use super::{kitty_ops, remote, term, theme, ui};
use crate::config::TuiConfig;
use crate::engine::{Engine, Session};

/// Room for messages between the background tasks and the loop: a bus flood waits for the
/// dashboard (the bus subscription lags and skips) instead of queueing without bound.
const MSG_QUEUE: usize = 256;
/// Shortest time between two draws (~60 fps): what a key, a paste or a resize gets.
const FRAME: Duration = Duration::from_millis(16);
/// Frames that only show programs' output are drawn at most `[tui] output_fps` times a second
/// (default 10), unless a key went out within [`TYPING`] (its echo is then drawn at [`FRAME`]).
/// Sixteen busy panes change on almost every frame, and a frame redraws them all: agents'
/// output at 10 fps reads the same, for less CPU than tmux's (docs/PERFORMANCE.md, session 7).
const TYPING: Duration = Duration::from_secs(1);
/// Shortest time between two embedded session-list refreshes.
const REFRESH_MIN: Duration = Duration::from_millis(50);

async fn embedded_bus(engine: Engine, tx: mpsc::Sender<AppMsg>) {
    let mut rx = engine.bus().subscribe();
    loop {
        match rx.recv().await {
            Ok(ev) => {
                let v: &Value = &ev.value;
                if v.get("type").and_then(Value::as_str) == Some("session_health") {
                    continue;
                }
                let refresh = is_session_event(v);
                let msg = AppMsg::Bus {
                    peer: None,
                    event: v.clone(),
                };
                if tx.send(msg).await.is_err()
                    || (refresh && tx.send(AppMsg::Refresh).await.is_err())
                {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn embedded_changes(engine: Engine, tx: mpsc::Sender<AppMsg>) {
    let mut changes = engine.changes();
    while changes.changed().await.is_ok() {
        if tx.send(AppMsg::Refresh).await.is_err() {
            return;
        }
    }
}

/// Resolves when any pane's screen changed since it was last looked at. Polled by the loop
/// itself, so a change wakes only the loop's own thread, and only while it waits for output:
/// once a frame is pending the branch is off and further changes wake nothing.
async fn any_pane_changed(panes: &mut HashMap<u64, watch::Receiver<u64>>) {
    if panes.is_empty() {
        return std::future::pending().await;
    }
    let changes = panes.values_mut().map(|rx| Box::pin(rx.changed()));
    let (result, ..) = futures_util::future::select_all(changes).await;
    if result.is_err() {
        // A pane's emulator is gone; the next session sync removes it.
        std::future::pending::<()>().await;
    }
}

/// Put the grid's sessions in the app: this daemon's (`local`; `make_local` makes a new
/// one's pane), then every peer's, mirrored over that peer's WebSocket.
fn sync_fleet(
    app: &mut App,
    local: Vec<SessionInfo>,
    make_local: &mut dyn FnMut(&SessionInfo) -> Option<Arc<dyn PaneSource>>,
    board: &PeerBoard,
    fleet: &Fleet,
) -> Vec<Effect> {
    let rt = tokio::runtime::Handle::current();
    let infos = local.into_iter().chain(board.sessions()).collect();
    app.sync(infos, &mut |info| match &info.peer {
        None => make_local(info),
        Some(name) => {
            let client = fleet.peer(name)?.host.client.clone();
            Some(Arc::new(remote::RemotePane::new(client, rt.clone(), info)))
        }
    })
}

fn sync_embedded(app: &mut App, engine: &Engine, board: &PeerBoard, fleet: &Fleet) -> Vec<Effect> {
    let pairs: Vec<(SessionInfo, Arc<Session>)> = engine
        .sessions()
        .into_iter()
        .map(|s| (SessionInfo::from_view(&engine.view(&s, None)), s))
        .collect();
    let infos = pairs.iter().map(|(i, _)| i.clone()).collect();
    let mut make = |info: &SessionInfo| -> Option<Arc<dyn PaneSource>> {
        let (_, session) = pairs.iter().find(|(i, _)| i.id == info.id)?;
        Some(Arc::new(EmbeddedPane::new(engine.clone(), session.clone())))
    };
    sync_fleet(app, infos, &mut make, board, fleet)
}

/// Client mode: `local` is the mirrored daemon's list.
fn sync_remote(
    app: &mut App,
    client: &crate::client::Client,
    local: Vec<SessionInfo>,
    board: &PeerBoard,
    fleet: &Fleet,
) -> Vec<Effect> {
    let rt = tokio::runtime::Handle::current();
    let mut make = |info: &SessionInfo| -> Option<Arc<dyn PaneSource>> {
        Some(Arc::new(remote::RemotePane::new(
            client.clone(),
            rt.clone(),
            info,
        )))
    };
    sync_fleet(app, local, &mut make, board, fleet)
}

/// Execute an effect on a pane's own source: a write to its program or a viewer-size
/// registration, both immediate and non-blocking (a PTY write or ioctl, or a frame queued for
/// a mirror's socket). Any other effect is handed back.
pub(super) fn pane_effect(app: &mut App, fx: Effect) -> Option<Effect> {
    let source = |uid: u64| {
        app.panes
            .iter()
            .find(|p| p.uid == uid)
            .map(|p| p.source.clone())
    };
    match fx {
        Effect::Input { uid, data } => {
            if source(uid).is_some_and(|s| !s.send_input(&data)) {
                app.input_dropped(uid);
            }
            None
        }
        Effect::ViewerSize { uid, size } => {
            match (source(uid), size) {
                (Some(s), Some((cols, rows))) => s.resize(cols, rows),
                (Some(s), None) => s.release(),
                (None, _) => {}
            }
            None
        }
        fx => Some(fx),
    }
}

/// Executes effects: pane effects at once, the rest as background tasks that report back.
struct Effects {
    backend: Fleet,
    notifier: Notifier,
    tx: mpsc::Sender<AppMsg>,
    /// Wakes the remote session poller after an action, so its result shows at once.
    poke: Arc<Notify>,
}

impl Effects {
    fn run(&self, app: &mut App, effects: Vec<Effect>) {
        for fx in effects {
            let Some(fx) = pane_effect(app, fx) else {
                continue;
            };
            let (tx, poke) = (self.tx.clone(), self.poke.clone());
            match fx {
                Effect::Run(op) => {
                    let b = self.backend.clone();
                    tokio::spawn(async move {
                        let out = b.run(op).await;
                        let _ = tx.send(AppMsg::Outcome(out)).await;
                        poke.notify_one();
                    });
                }
                Effect::Kitty { action, known, env } => {
                    tokio::spawn(async move {
                        let out = kitty_ops::run(action, known, env).await;
                        let _ = tx.send(AppMsg::Outcome(out)).await;
                        poke.notify_one();
                    });
                }
                // A file read: off the async workers.
                Effect::SetTheme(name) => {
                    tokio::spawn(async move {
                        let n = name.clone();
                        let loaded =
                            tokio::task::spawn_blocking(move || theme::load(&n).map(Box::new))
                                .await
                                .unwrap_or_else(|e| Err(e.to_string()));
                        let _ = tx.send(AppMsg::Theme(name, loaded)).await;
                    });
                }
                Effect::Notify { id, state, text } => self.notifier.notify(&id, state, &text),
                Effect::Clipboard(text) => super::notify::clipboard(&text),
                Effect::MouseCapture(on) => term::mouse_capture(on),
                Effect::Input { .. } | Effect::ViewerSize { .. } => {}
            }
        }
    }
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Run the dashboard until the user quits (`Ok(true)`: stop every session too) or a signal or
/// a closed terminal detaches (`Ok(false)`).
pub(super) async fn run_ui(
    fleet: Fleet,
    label: String,
    theme: theme::Theme,
    prefix: KeySpec,
    warning: Option<String>,
    attach_env: Vec<(String, String)>,
    tui: &TuiConfig,
) -> anyhow::Result<bool> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let backend = fleet.local.clone();
    let mut board = PeerBoard::new(&fleet);
    let (mut terminal, _guard) = term::setup()?;
    let mut app = App::new(label, backend.is_embedded(), theme, no_color(), prefix);
    app.themes = theme::available();
    app.attach_env = attach_env;
    app.notify_on = tui.notify.clone();
    app.sidebar = tui.sidebar;
    app.hosts = board.hosts();
    // A config problem and sessions lost in a reboot both need the user's eye at start.
    let lost = match &backend {
        Backend::Embedded(engine) => backend::lost_notice(engine.lost_sessions().len()),
        Backend::Remote(_) => None,
    };
    if let Some(text) = &lost {
        app.log.push(&super::eventlog::notice(text));
    }
    let notice: Vec<String> = warning.into_iter().chain(lost).collect();
    if !notice.is_empty() {
        app.set_status(notice.join("; "), false);
    }
    let (msg_tx, mut msg_rx) = mpsc::channel::<AppMsg>(MSG_QUEUE);
    let fx = Effects {
        backend: fleet.clone(),
        notifier: Notifier::from_config(tui),
        tx: msg_tx.clone(),
        poke: Arc::new(Notify::new()),
    };
    let mut events = EventStream::new();
    let size = terminal.size()?;
    let effects = app.on_event(Event::Resize(size.width, size.height));
    fx.run(&mut app, effects);

    let mut tasks = Vec::new();
    match &backend {
        Backend::Embedded(engine) => {
            tasks.push(tokio::spawn(embedded_bus(engine.clone(), msg_tx.clone())));
            tasks.push(tokio::spawn(embedded_changes(
                engine.clone(),
                msg_tx.clone(),
            )));
            let effects = sync_embedded(&mut app, engine, &board, &fleet);
            fx.run(&mut app, effects);
        }
        Backend::Remote(client) => {
            tasks.push(tokio::spawn(remote::poll_sessions(
                backend.clone(),
                msg_tx.clone(),
                fx.poke.clone(),
            )));
            tasks.push(tokio::spawn(remote::follow_bus(
                client.addr().clone(),
                None,
                msg_tx.clone(),
                fx.poke.clone(),
            )));
        }
    }
    for (i, link) in fleet.peers.iter().enumerate() {
        let poll = fleet::poll_peer(fleet.clone(), i, msg_tx.clone());
        tasks.push(tokio::spawn(poll));
        let (addr, name) = (link.host.client.addr().clone(), link.name().to_string());
        let bus = remote::follow_bus(addr, Some(name), msg_tx.clone(), link.poke.clone());
        tasks.push(tokio::spawn(bus));
    }
    // Client mode: the mirrored daemon's last list, for a sync a peer's change starts.
    let mut last_local: Vec<SessionInfo> = Vec::new();
    drop(msg_tx);
    let mut watchers: HashMap<u64, watch::Receiver<u64>> = HashMap::new();
    let output_frame = Duration::from_millis(1000 / tui.output_fps.clamp(1, 60));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_draw = Instant::now()
        .checked_sub(FRAME)
        .unwrap_or_else(Instant::now);
    let mut last_refresh = Instant::now();
    let mut refresh_due = false;
    let mut output_pending = false;
    let mut last_input = Instant::now();
    let mut last_error: Option<String> = None;

    let result: anyhow::Result<bool> = loop {
        // Embedded session list (throttled).
        if let Backend::Embedded(engine) = &backend {
            if refresh_due && last_refresh.elapsed() >= REFRESH_MIN {
                let effects = sync_embedded(&mut app, engine, &board, &fleet);
                fx.run(&mut app, effects);
                refresh_due = false;
                last_refresh = Instant::now();
            }
        }
        // One screen watch per pane.
        watchers.retain(|uid, _| app.panes.iter().any(|p| p.uid == *uid));
        for p in &app.panes {
            if let std::collections::hash_map::Entry::Vacant(slot) = watchers.entry(p.uid) {
                if let Some(rx) = p.source.watch() {
                    slot.insert(rx);
                }
            }
        }
        if app.should_quit {
            break Ok(app.stop_sessions_on_quit);
        }
        let mut deadline: Option<Instant> = None;
        let wants = app.dirty || (output_pending && app.needs_draw());
        let frame = match app.dirty || last_input.elapsed() < TYPING {
            true => FRAME,
            false => output_frame,
        };
        if !wants {
            output_pending = false;
        } else if last_draw.elapsed() >= frame {
            // A resize the input stream has not reported yet: lay out for the size drawn on.
            match terminal.size() {
                Ok(s) if app.screen.width != s.width || app.screen.height != s.height => {
                    let effects = app.on_event(Event::Resize(s.width, s.height));
                    fx.run(&mut app, effects);
                }
                Ok(_) => {}
                Err(e) => break Err(e.into()),
            }
            // What this frame shows needs no wake-up: marked seen before the screens are read,
            // so a change from now on is drawn now or wakes the loop again.
            for rx in watchers.values_mut() {
                rx.borrow_and_update();
            }
            app.on_frame();
            if let Err(e) = terminal.draw(|f| ui::draw(f, &app)) {
                break Err(e.into());
            }
            last_draw = Instant::now();
            output_pending = false;
        } else {
            deadline = Some(last_draw + frame);
        }
        if refresh_due {
            let at = last_refresh + REFRESH_MIN;
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
        let sleep_until = deadline.unwrap_or_else(Instant::now);
        tokio::select! {
            ev = events.next() => {
                let ev = match ev {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => break Err(anyhow::anyhow!("reading terminal input: {e}")),
                    None => break Err(anyhow::anyhow!("terminal input closed")),
                };
                last_input = Instant::now();
                let effects = app.on_event(ev);
                fx.run(&mut app, effects);
                // Take everything already typed or pasted before drawing again. Polled with
                // this task's waker: the stream's wake-up thread keeps the waker it was given.
                loop {
                    let next = std::future::poll_fn(|cx| Poll::Ready(events.poll_next_unpin(cx)));
                    let Poll::Ready(Some(Ok(ev))) = next.await else { break };
                    let effects = app.on_event(ev);
                    fx.run(&mut app, effects);
                }
            }
            // Once output is pending, more of it changes nothing until the frame is drawn:
            // the loop is not woken for each pane's every change.
            _ = any_pane_changed(&mut watchers), if !output_pending => output_pending = true,
            msg = msg_rx.recv() => match msg {
                None => break Ok(false),
                Some(AppMsg::Bus { peer, event }) => app.on_bus(peer.as_deref(), &event),
                Some(AppMsg::Peer { name, result }) => {
                    let listed = matches!(result, Ok(Some(_)));
                    let change = board.update(&name, result);
                    if let Some((line, ok)) = &change {
                        app.log.push(&super::eventlog::notice(line));
                        app.set_status(line.clone(), *ok);
                        app.hosts = board.hosts();
                    }
                    if listed || change.is_some() {
                        match &backend {
                            Backend::Embedded(_) => refresh_due = true,
                            Backend::Remote(client) => {
                                let local = last_local.clone();
                                let effects = sync_remote(&mut app, client, local, &board, &fleet);
                                fx.run(&mut app, effects);
                            }
                        }
                    }
                }
                Some(AppMsg::Refresh) => refresh_due = true,
                Some(AppMsg::Outcome(out)) => {
                    let effects = app.on_outcome(out);
                    fx.run(&mut app, effects);
                    refresh_due = true;
                }
                Some(AppMsg::Theme(name, loaded)) => app.on_theme(&name, loaded.map(|t| *t)),
                Some(AppMsg::Sessions(list)) => {
                    if last_error.take().is_some() {
                        app.set_status("daemon reachable again", true);
                    }
                    if let Backend::Remote(client) = &backend {
                        last_local = list.clone();
                        let effects = sync_remote(&mut app, client, list, &board, &fleet);
                        fx.run(&mut app, effects);
                    }
                }
                Some(AppMsg::SessionsFailed(e)) => {
                    if last_error.as_ref() != Some(&e) {
                        app.set_status(format!("daemon unreachable: {e}"), false);
                        last_error = Some(e);
                    }
                }
            },
            _ = tick.tick() => {
                if backend.is_embedded() {
                    refresh_due = true;
                }
            }
            _ = tokio::time::sleep_until(sleep_until.into()), if deadline.is_some() => {}
            // A closed terminal or a signal detaches: the sessions keep running in their
            // holders, and the next dashboard or daemon adopts them.
            _ = sigterm.recv() => break Ok(false),
            _ = sighup.recv() => break Ok(false),
            _ = sigint.recv() => break Ok(false),
        }
    };
    drop(events);
    for t in tasks {
        t.abort();
    }
    // Sessions (kept running or not) go back to their own size when their viewers leave.
    let effects = app.release_all();
    fx.run(&mut app, effects);
    drop(app);
    term::restore();
    result
}

/// Tests and the benchmark: run `effects`' pane effects, hand back the others.
pub(super) fn run_pane_effects(app: &mut App, effects: Vec<Effect>) -> Vec<Effect> {
    effects
        .into_iter()
        .filter_map(|fx| pane_effect(app, fx))
        .collect()
}
