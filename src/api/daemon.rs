//! `telepty daemon`: the singleton lock, the token and state files, binding, signals.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use super::ApiState;
use crate::config::{EngineSettings, Paths, load_or_create_token};
use crate::engine::Engine;
use crate::httpc::HttpClient;
use crate::util::{now_iso, write_atomic};

pub struct DaemonOptions {
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// How `telepty daemon` runs beyond the address.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunFlags {
    /// On SIGTERM/SIGINT, end every session too (the default leaves them in their holders).
    pub stop_sessions: bool,
    /// Take over from a daemon already running for this HOME: it detaches from its sessions
    /// and exits, this one adopts them (an in-place upgrade).
    pub replace: bool,
}

/// Bind address: flag, then `HOST`, then `[daemon] host` of config.toml, then 127.0.0.1; never
/// `TELEPTY_HOST`, which is a client setting (API.md §1.1). Port: flag, `PORT`, `TELEPTY_PORT`,
/// `[daemon] port`, 3848. An invalid config file is an error (`invalid configuration: …`).
pub fn resolve_bind(opts: &DaemonOptions) -> anyhow::Result<(String, u16)> {
    resolve_bind_with(opts, &Paths::from_env().config_toml(), |k| {
        std::env::var(k).ok()
    })
    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// [`resolve_bind`] with the config file and the environment passed in (empty values count as
/// unset). The same layering as `telepty config show` (`settings::load_with` plus the flags).
pub fn resolve_bind_with(
    opts: &DaemonOptions,
    config: &std::path::Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, u16), crate::settings::SettingsError> {
    let mut s = crate::settings::load_with(config, env)?;
    s.apply_flags(&crate::settings::Flags {
        host: opts.host.clone(),
        port: opts.port,
        theme: None,
    });
    Ok((s.host, s.port))
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0 && unsafe { libc::kill(pid as i32, 0) } == 0
}

async fn health_version(port: u16) -> Option<String> {
    let r = HttpClient::new()
        .request(
            "GET",
            &format!("http://127.0.0.1:{port}/api/health"),
            &[],
            None,
            Duration::from_secs(2),
        )
        .await
        .ok()?;
    let v = r.json()?;
    (v.get("status")? == "ok").then(|| {
        v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    })
}

fn remove_state_if_ours(paths: &Paths) {
    let path = paths.daemon_state();
    let ours = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("pid").and_then(Value::as_u64))
        == Some(std::process::id() as u64);
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    tokio::select! {
        _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// A running engine + API server (the daemon, or the dashboard's embedded one).
pub struct RunningServer {
    pub engine: Engine,
    pub state: Arc<ApiState>,
    pub host: String,
    pub port: u16,
    paths: Paths,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stop serving, persist metadata and release the singleton lock. The sessions stay
    /// alive in their holders unless `stop_sessions`.
    pub async fn shutdown(mut self, stop_sessions: bool) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = (&mut self.task).await;
        let engine = self.engine.clone();
        if stop_sessions {
            engine.kill_all(2000);
            // The holders do the killing; give them the grace period to report the exits.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < deadline
                && engine
                    .sessions()
                    .iter()
                    .any(|s| s.pty.is_some() && !s.exited())
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            let e = engine.clone();
            let _ = tokio::task::spawn_blocking(move || e.detach_all()).await;
        }
        self.engine.persist_now();
        remove_state_if_ours(&self.paths);
        served
            .context("server task failed")?
            .context("server error")?;
        Ok(())
    }
}

pub enum Startup {
    Started(Box<RunningServer>),
    /// Another telepty daemon answers; the message says which.
    AlreadyRunning {
        message: String,
        port: u16,
    },
    /// The port is taken by something that is not telepty.
    PortBusy {
        message: String,
    },
}

/// Take the singleton lock, bind, build the engine and serve the API in the background.
pub async fn start_server(opts: &DaemonOptions) -> anyhow::Result<Startup> {
    let paths = Paths::from_env();
    let (host, port) = resolve_bind(opts)?;
    let token = load_or_create_token(&paths).context("cannot create ~/.telepty/config.json")?;

    // Singleton: a live daemon recorded in the state file that still answers wins.
    if let Some(state) = std::fs::read_to_string(paths.daemon_state())
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        let pid = state.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32;
        let sport = state.get("port").and_then(Value::as_u64).unwrap_or(0) as u16;
        if pid != std::process::id()
            && pid_alive(pid)
            && sport != 0
            && health_version(sport).await.is_some()
        {
            return Ok(Startup::AlreadyRunning {
                message: format!(
                    "telepty daemon already running (pid {pid}, port {sport}). Exiting."
                ),
                port: sport,
            });
        }
    }
    let state = json!({"pid": std::process::id(), "host": host, "port": port, "startedAt": now_iso(), "version": super::VERSION});
    write_atomic(
        &paths.daemon_state(),
        serde_json::to_string_pretty(&state)?.as_bytes(),
    )
    .context("cannot write ~/.telepty/daemon-state.json")?;

    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            remove_state_if_ours(&paths);
            return Ok(match health_version(port).await {
                Some(v) => Startup::AlreadyRunning {
                    message: format!(
                        "telepty daemon already running on port {port} (v{v}). Exiting."
                    ),
                    port,
                },
                None => Startup::PortBusy {
                    message: format!("Port {port} is already in use by another process."),
                },
            });
        }
        Err(e) => {
            remove_state_if_ours(&paths);
            anyhow::bail!("cannot listen on {host}:{port}: {e}");
        }
    };

    let engine = Engine::new(EngineSettings::load(&paths));
    engine.start();
    let api = Arc::new(ApiState::new(
        engine.clone(),
        paths.clone(),
        token,
        &host,
        port,
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(super::serve(listener, api.clone(), async move {
        let _ = stop_rx.await;
    }));
    tracing::info!("telepty {} serving on {host}:{port}", super::VERSION);
    Ok(Startup::Started(Box::new(RunningServer {
        engine,
        state: api,
        host,
        port,
        paths,
        stop: Some(stop_tx),
        task,
    })))
}

/// Ask the daemon running for this HOME (if any) to hand its sessions back to their holders
/// and exit, and wait until it has (up to 20 s).
async fn replace_running(paths: &Paths) -> anyhow::Result<()> {
    let Some(pid) = std::fs::read_to_string(paths.daemon_state())
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("pid").and_then(Value::as_u64))
        .map(|p| p as u32)
        .filter(|p| *p != std::process::id() && pid_alive(*p))
    else {
        return Ok(());
    };
    tracing::info!("replacing the running daemon (pid {pid})");
    // SAFETY: kill(2) only sends a signal.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while pid_alive(pid) {
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("the running daemon (pid {pid}) did not exit within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Run the daemon until SIGINT/SIGTERM. Returns the process exit code.
pub async fn run_daemon(opts: DaemonOptions, flags: RunFlags) -> anyhow::Result<i32> {
    if flags.replace {
        replace_running(&Paths::from_env()).await?;
    }
    match start_server(&opts).await? {
        Startup::AlreadyRunning { message, .. } => {
            println!("{message}");
            Ok(0)
        }
        Startup::PortBusy { message } => {
            eprintln!("{message}");
            Ok(1)
        }
        Startup::Started(server) => {
            eprintln!(
                "telepty daemon listening on http://{}:{}",
                server.host, server.port
            );
            shutdown_signal().await;
            server.shutdown(flags.stop_sessions).await?;
            Ok(0)
        }
    }
}
