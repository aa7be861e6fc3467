//! `telepty tui`: a full-screen dashboard of live, VT-emulated panes.
//!
//! Process model: the dashboard embeds the engine and serves the HTTP/WS API on the configured
//! address (`api::start_server`), so scripts and other machines reach the same sessions. If a
//! telepty daemon already answers there, it runs in client mode instead and mirrors that
//! daemon's sessions (see `remote.rs`).
//!
//! | module | job |
//! |---|---|
//! | `runner` | the event loop: input, messages and signals → `App` updates; effects executed |
//! | `app` | state and update: events → state and effects; modes, overlays, focus, marks, layout |
//! | `ui` | drawing (reads the app only; snapshot-tested) |
//! | `copymode` | copy mode: a cursor, search and selection over a copy of a pane's screen and scrollback |
//! | `source` | [`source::PaneSource`]: a pane's screen — embedded session, remote mirror, plain parser |
//! | `remote` | client mode: WS mirrors, the session poller, the bus follower |
//! | `fleet` | the peers' sessions in the grid: pollers, host-down state, actions routed by `@peer` |
//! | `backend` | actions (inject, broadcast, …) against the engine or over HTTP |
//! | `layout` | grid / tall / stack / zoom, paging, geometric focus movement |
//! | `palette`, `fuzzy` | the command palette and its matcher |
//! | `keymap` | key events → bytes for the program; the prefix key |
//! | `eventlog` | bus events as readable lines |
//! | `theme` | themes (`themes/*.toml`, user files), NO_COLOR |
//! | `term` | raw mode / alternate screen setup and restore, panic hook |

mod app;
mod backend;
mod copymode;
mod eventlog;
mod fleet;
mod fuzzy;
mod info;
mod keymap;
mod kitty_ops;
mod layout;
mod msg;
mod notify;
mod palette;
mod remote;
mod runner;
mod source;
mod term;
mod theme;
mod ui;

#[cfg(test)]
mod render_tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{DaemonOptions, Startup};
use crate::client::{Client, DaemonAddr};
use crate::config::Paths;
use crate::util::env_nonempty;
use backend::Backend;
use keymap::KeySpec;

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
    /// `--connect`: that daemon alone (a peer's name or `host[:port]`), nothing served here.
    pub connect: Option<String>,
    /// `--no-peers`: this machine's sessions only.
    pub no_peers: bool,
}

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

/// Run the dashboard; returns the process exit code. Errors print one line on stderr.
pub fn run(opts: TuiOptions) -> i32 {
    run_checked(opts).unwrap_or_else(|line| {
        eprintln!("{line}");
        1
    })
}

/// [`run`], with a failure before the dashboard starts as its line for stderr.
fn run_checked(opts: TuiOptions) -> Result<i32, String> {
    use std::io::IsTerminal;
    let paths = Paths::from_env();
    // Flags > env > file > defaults. An invalid config file stops the dashboard the way it
    // stops `telepty daemon`, before the terminal is touched.
    let mut settings = crate::config::Config::load(&paths)
        .map_err(|e| format!("telepty: invalid configuration: {e}"))?;
    settings.apply_flags(&crate::config::Flags {
        host: opts.host.clone(),
        port: opts.port,
        theme: opts.theme.clone(),
    });
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        let why = "needs an interactive terminal (stdin and stdout must be a TTY)";
        return Err(format!("telepty tui: {why}"));
    }
    init_logging(&paths);
    let mut warning = None;
    let theme = match settings.tui.theme.as_deref() {
        None => theme::Theme::base(),
        Some(name) if settings.source("theme") == crate::config::Source::Flag => {
            theme::load(name).map_err(|e| format!("telepty tui: {e}"))?
        }
        // A theme named in the file that cannot be loaded is not fatal.
        Some(name) => theme::load(name).unwrap_or_else(|e| {
            warning = Some(format!("config.toml: {e}; using the default theme"));
            theme::Theme::base()
        }),
    };
    let prefix = settings.tui.prefix.as_deref();
    let prefix = prefix.map_or(Ok(KeySpec::default()), KeySpec::parse);
    let prefix = prefix.map_err(|e| format!("telepty tui: prefix key: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("telepty-tui")
        .build()
        .map_err(|e| format!("telepty tui: cannot start the async runtime: {e}"))?;
    // The address as resolved above (flags, env, file): served on, or mirrored.
    let opts = TuiOptions {
        host: Some(settings.daemon.host.clone()),
        port: Some(settings.daemon.port),
        ..opts
    };
    let code = rt.block_on(main_async(
        opts,
        theme,
        prefix,
        warning,
        settings.tui.clone(),
    ));
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(code)
}

fn is_loopback_or_any(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "[::]") || crate::client::addr::is_local_host(host)
}

async fn main_async(
    opts: TuiOptions,
    theme: theme::Theme,
    prefix: KeySpec,
    warning: Option<String>,
    tui: crate::config::TuiConfig,
) -> i32 {
    if let Some(spec) = &opts.connect {
        let (client, label) = match connect_to(spec).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("telepty tui: --connect {spec}: {e}");
                return 1;
            }
        };
        let attach_env = crate::kitty::attach_env(&client.addr().host, client.addr().port);
        let fleet = fleet::Fleet::alone(Backend::Remote(client));
        let result = runner::run_ui(fleet, label, theme, prefix, warning, attach_env, &tui).await;
        return exit_code(result);
    }
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
            let addr = DaemonAddr {
                host,
                port,
                token,
                tunnel: None,
            };
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
    let (fleet, problems) = match opts.no_peers {
        true => (fleet::Fleet::alone(backend), Vec::new()),
        false => fleet::Fleet::with_peers(backend).await,
    };
    let warning = match (warning, problems.is_empty()) {
        (w, true) => w,
        (w, false) => Some(w.into_iter().chain(problems).collect::<Vec<_>>().join("; ")),
    };
    let result = runner::run_ui(fleet, label, theme, prefix, warning, attach_env, &tui).await;
    if let Some(server) = server {
        // Detach by default: the sessions live on in their holders. Stop them only when the
        // user chose "stop all" on quit.
        let stop = matches!(result, Ok(true));
        if let Err(e) = server.shutdown(stop).await {
            tracing::warn!("server shutdown: {e:#}");
        }
    }
    exit_code(result)
}

fn exit_code(result: anyhow::Result<bool>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("telepty tui: {e:#}");
            1
        }
    }
}

/// The daemon `--connect` names, as `id@HOST` would reach it (a peer's address and token,
/// or `host[:port]` with `TELEPTY_TOKEN`), checked by listing its sessions.
async fn connect_to(spec: &str) -> Result<(Client, String), String> {
    let env = crate::client::ClientEnv::from_env();
    let peers = crate::client::peers::load(&env).await;
    let addr = crate::client::resolve_host(spec, &env, &peers).map_err(|e| e.to_string())?;
    let client = Client::new(addr);
    if let Err(e) = client.list_sessions().await {
        return Err(format!("listing its sessions failed: {e}"));
    }
    let label = format!("client → {spec}");
    Ok((client, label))
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
        Some(p as Arc<dyn source::PaneSource>)
    });
    let effects = app.on_event(ratatui::crossterm::event::Event::Resize(cols, rows));
    runner::run_pane_effects(&mut app, effects);
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
        app.on_frame();
        let _ = term.draw(|f| ui::draw(f, &app));
        times.push(t.elapsed());
    }
    times
}
