//! `telepty tui`: a full-screen dashboard of live, VT-emulated panes.
//!
//! Process model: the dashboard embeds the engine and serves the HTTP/WS API on the configured
//! address (`api::start_server`), so scripts and other machines reach the same sessions. If a
//! telepty daemon already answers there, it runs in client mode instead and mirrors that
//! daemon's sessions (see `remote.rs`).
//!
//! | module | job |
//! |---|---|
//! | `app` | state and update: keys, mouse, paste → effects; modes, overlays, focus, marks |
//! | `ui` | drawing (pure; snapshot-tested) |
//! | `source` | [`source::PaneSource`]: a pane's screen — embedded session, remote mirror, plain parser |
//! | `remote` | client mode: WS mirrors, the session poller, the bus follower |
//! | `backend` | actions (inject, broadcast, …) against the engine or over HTTP |
//! | `layout` | grid / tall / stack / zoom, paging, geometric focus movement |
//! | `palette`, `fuzzy` | the command palette and its matcher |
//! | `keymap` | key events → bytes for the program; the prefix key |
//! | `eventlog` | bus events as readable lines |
//! | `theme` | themes (`themes/*.toml`, user files), NO_COLOR |
//! | `term` | raw mode / alternate screen setup and restore, panic hook |
//!
//! The event loop sleeps until something happens: a key, a bus event, a session change, or a
//! visible pane's output (each pane's generation watch wakes it, coalesced to ≤ 60 redraws per
//! second). An idle dashboard does no work beyond a once-a-second session refresh.

mod app;
mod backend;
mod eventlog;
mod fuzzy;
mod info;
mod keymap;
mod kitty_ops;
mod layout;
mod palette;
mod remote;
mod source;
mod term;
mod theme;
mod ui;

#[cfg(test)]
mod render_tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};

use crate::api::{DaemonOptions, Startup};
use crate::client::{Client, DaemonAddr};
use crate::config::Paths;
use crate::engine::{Engine, Session};
use app::{App, Effect};
use backend::Backend;
use info::SessionInfo;
use keymap::KeySpec;
use source::{EmbeddedPane, PaneSource};

/// Options of `telepty tui`.
#[derive(Clone, Debug, Default)]
pub struct TuiOptions {
    /// Address to serve on (flag, then `HOST`, `[daemon] host`, 127.0.0.1), and of a daemon to
    /// mirror.
    pub host: Option<String>,
    /// Port (flag, then `PORT`, `TELEPTY_PORT`, `[daemon] port`, 3848).
    pub port: Option<u16>,
    /// Theme name (built-in or `~/.config/telepty/themes/<name>.toml`).
    pub theme: Option<String>,
}

/// Messages from background tasks to the UI loop.
pub(crate) enum AppMsg {
    Sessions(Vec<SessionInfo>),
    SessionsFailed(String),
    Bus(Value),
    Refresh,
    Outcome(backend::Outcome),
}

/// Events that change the session list or a title.
pub(crate) fn is_session_event(v: &Value) -> bool {
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    ty.starts_with("session") && ty != "session_health" && ty != "session.idle"
}

/// Shortest time between two draws (~60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// Shortest time between two embedded session-list refreshes.
const REFRESH_MIN: Duration = Duration::from_millis(50);

fn init_logging(paths: &Paths) {
    let dir = paths.log_dir();
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tui.log"))
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TELEPTY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Run the dashboard; returns the process exit code. Errors print one line on stderr.
pub fn run(opts: TuiOptions) -> i32 {
    use std::io::IsTerminal;
    let paths = Paths::from_env();
    // Flags > env > file > defaults. An invalid config file stops the dashboard the way it
    // stops `telepty daemon`, before the terminal is touched.
    let mut settings = match crate::config::Config::load(&paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("telepty: invalid configuration: {e}");
            return 1;
        }
    };
    settings.apply_flags(&crate::config::Flags {
        host: opts.host.clone(),
        port: opts.port,
        theme: opts.theme.clone(),
    });
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("telepty tui: needs an interactive terminal (stdin and stdout must be a TTY)");
        return 1;
    }
    init_logging(&paths);
    let mut warning = None;
    let theme = match settings.tui.theme.as_deref() {
        None => theme::Theme::base(),
        Some(name) if settings.source("theme") == crate::config::Source::Flag => {
            match theme::load(name) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("telepty tui: {e}");
                    return 1;
                }
            }
        }
        // A theme named in the file that cannot be loaded is not fatal.
        Some(name) => match theme::load(name) {
            Ok(t) => t,
            Err(e) => {
                warning = Some(format!("config.toml: {e}; using the default theme"));
                theme::Theme::base()
            }
        },
    };
    let prefix = match settings.tui.prefix.as_deref() {
        None => KeySpec::default(),
        Some(p) => match KeySpec::parse(p) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("telepty tui: prefix key: {e}");
                return 1;
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("telepty-tui")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("telepty tui: cannot start the async runtime: {e}");
            return 1;
        }
    };
    // The address as resolved above (flags, env, file): served on, or mirrored.
    let opts = TuiOptions {
        host: Some(settings.daemon.host.clone()),
        port: Some(settings.daemon.port),
        ..opts
    };
    let code = rt.block_on(main_async(opts, theme, prefix, warning));
    rt.shutdown_timeout(Duration::from_secs(2));
    code
}

fn is_loopback_or_any(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "[::]") || crate::client::addr::is_local_host(host)
}

async fn main_async(
    opts: TuiOptions,
    theme: theme::Theme,
    prefix: KeySpec,
    warning: Option<String>,
) -> i32 {
    let startup = match crate::api::start_server(&DaemonOptions {
        host: opts.host.clone(),
        port: opts.port,
    })
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("telepty tui: {e:#}");
            return 1;
        }
    };
    let (backend, server, label, daemon_at) = match startup {
        Startup::Started(server) => {
            let label = if crate::client::addr::is_local_host(&server.host) {
                format!("embedded :{}", server.port)
            } else {
                format!("embedded {}:{}", server.host, server.port)
            };
            // What a `telepty attach` window connects to.
            let at = (crate::client::addr::connect_host(&server.host), server.port);
            (
                Backend::Embedded(server.engine.clone()),
                Some(server),
                label,
                at,
            )
        }
        Startup::AlreadyRunning { port, .. } => {
            let host = opts.host.clone().unwrap_or_else(|| "127.0.0.1".into());
            let host = if is_loopback_or_any(&host) && !crate::client::addr::is_local_host(&host) {
                "127.0.0.1".to_string()
            } else {
                host
            };
            let token = env_nonempty("TELEPTY_TOKEN")
                .or_else(|| crate::config::read_token(&Paths::from_env()));
            let addr = DaemonAddr { host, port, token };
            let client = Client::new(addr.clone());
            if let Err(e) = client.list_sessions().await {
                eprintln!(
                    "telepty tui: a telepty daemon runs on port {port}, but listing its sessions failed: {e}"
                );
                return 1;
            }
            (
                Backend::Remote(client),
                None,
                format!("client → {}", addr.authority()),
                (addr.host.clone(), addr.port),
            )
        }
        Startup::PortBusy { message } => {
            eprintln!("telepty tui: {message}");
            return 1;
        }
    };
    let attach_env = crate::kitty::attach_env(&daemon_at.0, daemon_at.1);
    let result = run_ui(backend, label, theme, prefix, warning, attach_env).await;
    if let Some(server) = server {
        // Detach by default: the sessions live on in their holders. Stop them only when the
        // user chose "stop all" on quit.
        let stop = matches!(result, Ok(true));
        if let Err(e) = server.shutdown(stop).await {
            tracing::warn!("server shutdown: {e:#}");
        }
    }
    match result {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("telepty tui: {e:#}");
            1
        }
    }
}

fn spawn_input_thread(
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("telepty-tui-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match event::poll(Duration::from_millis(250)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.blocking_send(ev).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::error!("reading terminal input: {e}");
                            return;
                        }
                    },
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!("polling terminal input: {e}");
                        return;
                    }
                }
            }
        })
}

async fn embedded_bus(engine: Engine, tx: mpsc::UnboundedSender<AppMsg>) {
    let mut rx = engine.bus().subscribe();
    loop {
        match rx.recv().await {
            Ok(ev) => {
                let v: &Value = &ev.value;
                if v.get("type").and_then(Value::as_str) == Some("session_health") {
                    continue;
                }
                let refresh = is_session_event(v);
                if tx.send(AppMsg::Bus(v.clone())).is_err()
                    || (refresh && tx.send(AppMsg::Refresh).is_err())
                {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn embedded_changes(engine: Engine, tx: mpsc::UnboundedSender<AppMsg>) {
    let mut changes = engine.changes();
    while changes.changed().await.is_ok() {
        if tx.send(AppMsg::Refresh).is_err() {
            return;
        }
    }
}

async fn watch_pane(mut rx: watch::Receiver<u64>, redraw: Arc<Notify>) {
    while rx.changed().await.is_ok() {
        redraw.notify_one();
        // Coalesce: a flooding pane wakes the UI at most once per frame.
        tokio::time::sleep(FRAME).await;
    }
}

fn sync_embedded(app: &mut App, engine: &Engine) {
    let pairs: Vec<(SessionInfo, Arc<Session>)> = engine
        .sessions()
        .into_iter()
        .filter_map(|s| SessionInfo::from_json(&engine.view(&s, None)).map(|i| (i, s)))
        .collect();
    let infos = pairs.iter().map(|(i, _)| i.clone()).collect();
    app.sync(infos, &mut |info| {
        let session = pairs
            .iter()
            .find(|(i, _)| i.id == info.id)
            .map(|(_, s)| s.clone());
        match session {
            Some(session) => {
                Arc::new(EmbeddedPane::new(engine.clone(), session)) as Arc<dyn PaneSource>
            }
            None => Arc::new(source::ParserPane::new(1, 1, b"")),
        }
    });
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

async fn run_ui(
    backend: Backend,
    label: String,
    theme: theme::Theme,
    prefix: KeySpec,
    warning: Option<String>,
    attach_env: Vec<(String, String)>,
) -> anyhow::Result<bool> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let (mut terminal, _guard) = term::setup()?;
    let mut app = App::new(label, backend.is_embedded(), theme, no_color(), prefix);
    app.themes = theme::available();
    app.attach_env = attach_env;
    // A config problem and sessions lost in a reboot both need the user's eye at start.
    let lost = match &backend {
        Backend::Embedded(engine) => backend::lost_notice(engine.lost_sessions().len()),
        Backend::Remote(_) => None,
    };
    if let Some(text) = &lost {
        app.log.push(
            &serde_json::json!({"type": "telepty_notice", "message": text,
                                         "timestamp": crate::util::now_iso()}),
        );
    }
    let notice: Vec<String> = warning.into_iter().chain(lost).collect();
    if !notice.is_empty() {
        app.set_status(notice.join("; "), false);
    }
    let rt = tokio::runtime::Handle::current();
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<AppMsg>();
    let redraw = Arc::new(Notify::new());
    let poke = Arc::new(Notify::new());
    let (input_tx, mut input_rx) = mpsc::channel::<Event>(1024);
    let stop_input = Arc::new(AtomicBool::new(false));
    spawn_input_thread(input_tx, stop_input.clone())?;

    let mut tasks = Vec::new();
    match &backend {
        Backend::Embedded(engine) => {
            tasks.push(tokio::spawn(embedded_bus(engine.clone(), msg_tx.clone())));
            tasks.push(tokio::spawn(embedded_changes(
                engine.clone(),
                msg_tx.clone(),
            )));
            sync_embedded(&mut app, engine);
        }
        Backend::Remote(client) => {
            tasks.push(tokio::spawn(remote::poll_sessions(
                backend.clone(),
                msg_tx.clone(),
                poke.clone(),
            )));
            tasks.push(tokio::spawn(remote::follow_bus(
                client.addr().clone(),
                msg_tx.clone(),
                poke.clone(),
            )));
        }
    }
    let mut watchers: HashMap<u64, tokio::task::AbortHandle> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_draw = Instant::now()
        .checked_sub(FRAME)
        .unwrap_or_else(Instant::now);
    let mut last_refresh = Instant::now();
    let mut refresh_due = false;
    let mut output_pending = false;
    let mut last_error: Option<String> = None;

    let result: anyhow::Result<bool> = loop {
        // Embedded session list (throttled).
        if let Backend::Embedded(engine) = &backend {
            if refresh_due && last_refresh.elapsed() >= REFRESH_MIN {
                sync_embedded(&mut app, engine);
                refresh_due = false;
                last_refresh = Instant::now();
            }
        }
        // One redraw watcher per pane.
        watchers.retain(|uid, h| {
            let keep = app.panes.iter().any(|p| p.uid == *uid);
            if !keep {
                h.abort();
            }
            keep
        });
        for p in &app.panes {
            if let std::collections::hash_map::Entry::Vacant(slot) = watchers.entry(p.uid) {
                if let Some(rx) = p.source.watch() {
                    slot.insert(rt.spawn(watch_pane(rx, redraw.clone())).abort_handle());
                }
            }
        }
        if app.should_quit {
            break Ok(app.stop_sessions_on_quit);
        }
        let mut deadline: Option<Instant> = None;
        let wants = app.dirty || (output_pending && app.needs_draw());
        if !wants {
            output_pending = false;
        } else if last_draw.elapsed() >= FRAME {
            if let Err(e) = terminal.draw(|f| ui::draw(f, &mut app)) {
                break Err(e.into());
            }
            last_draw = Instant::now();
            output_pending = false;
        } else {
            deadline = Some(last_draw + FRAME);
        }
        if refresh_due {
            let at = last_refresh + REFRESH_MIN;
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
        let sleep_until = deadline.unwrap_or_else(Instant::now);
        tokio::select! {
            ev = input_rx.recv() => {
                let Some(ev) = ev else { break Err(anyhow::anyhow!("terminal input closed")) };
                let mut effects = app.on_event(ev);
                // Take everything already typed or pasted before drawing again.
                while let Ok(ev) = input_rx.try_recv() {
                    effects.extend(app.on_event(ev));
                }
                for fx in effects {
                    match fx {
                        Effect::Run(op) => {
                            let (b, tx, poke) = (backend.clone(), msg_tx.clone(), poke.clone());
                            rt.spawn(async move {
                                let out = b.run(op).await;
                                let _ = tx.send(AppMsg::Outcome(out));
                                poke.notify_one();
                            });
                        }
                        Effect::Kitty { action, known, env } => {
                            let (tx, poke) = (msg_tx.clone(), poke.clone());
                            rt.spawn(async move {
                                let out = kitty_ops::run(action, known, env).await;
                                let _ = tx.send(AppMsg::Outcome(out));
                                poke.notify_one();
                            });
                        }
                        Effect::SetTheme(name) => match theme::load(&name) {
                            Ok(t) => {
                                app.set_theme(t);
                                app.set_status(format!("theme {name}"), true);
                            }
                            Err(e) => app.set_status(e, false),
                        },
                    }
                }
            }
            _ = redraw.notified() => output_pending = true,
            msg = msg_rx.recv() => match msg {
                None => break Ok(false),
                Some(AppMsg::Bus(v)) => app.on_bus(&v),
                Some(AppMsg::Refresh) => refresh_due = true,
                Some(AppMsg::Outcome(out)) => {
                    app.on_outcome(out);
                    refresh_due = true;
                }
                Some(AppMsg::Sessions(list)) => {
                    if last_error.take().is_some() {
                        app.set_status("daemon reachable again", true);
                    }
                    if let Backend::Remote(client) = &backend {
                        let (client, rt2) = (client.clone(), rt.clone());
                        app.sync(list, &mut |info| Arc::new(remote::RemotePane::new(client.clone(), rt2.clone(), info)));
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
    stop_input.store(true, Ordering::Release);
    for t in tasks {
        t.abort();
    }
    for (_, h) in watchers {
        h.abort();
    }
    // Sessions (kept running or not) go back to their own size when their viewers leave.
    app.release_all();
    drop(app);
    term::restore();
    result
}

/// Benchmark hook (not API): draw a grid of `panes` panes on a `cols`×`rows` test backend
/// `frames` times, feeding `chunk` to every pane before each frame, and return how long each
/// draw took. Used by `benches/tui_cpu.rs` for the frame-time figure.
#[doc(hidden)]
pub fn bench_frame_times(
    panes: usize,
    chunk: &[u8],
    cols: u16,
    rows: u16,
    frames: usize,
) -> Vec<Duration> {
    use ratatui::backend::TestBackend;
    let mut app = app::App::new(
        "bench".into(),
        true,
        theme::Theme::base(),
        false,
        keymap::KeySpec::default(),
    );
    let infos: Vec<info::SessionInfo> = (0..panes)
        .map(|i| info::SessionInfo {
            id: format!("w{i}"),
            kind: "spawned".into(),
            command: "bench".into(),
            host: "bench".into(),
            health: "CONNECTED".into(),
            created_at: format!("2026-01-01T00:00:{:02}.000Z", i % 60),
            ..Default::default()
        })
        .collect();
    let mut sources = Vec::new();
    app.sync(infos, &mut |_| {
        let p = Arc::new(source::ParserPane::new(rows, cols, b""));
        sources.push(p.clone());
        p as Arc<dyn source::PaneSource>
    });
    let mut term = match ratatui::Terminal::new(TestBackend::new(cols, rows)) {
        Ok(t) => t,
        Err(never) => match never {},
    };
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        for p in &sources {
            p.feed(chunk);
        }
        let t = Instant::now();
        let _ = term.draw(|f| ui::draw(f, &mut app));
        times.push(t.elapsed());
    }
    times
}
