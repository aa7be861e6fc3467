//! `telepty daemon`: the singleton lock, the token and state files, binding, signals.
//!
//! One daemon per HOME: whoever holds the `flock` on `~/.telepty/daemon.lock` (`crate::lock`)
//! is the daemon (or the dashboard that embeds the engine). Only the holder writes
//! `daemon-state.json` (once it listens) and `sessions.json`, and only it removes the state
//! file, so a second daemon that fails to start never touches the first one's files.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use serde_json::Value;

use super::ApiState;
use crate::config::{Config, ConfigError, DaemonState, Flags, Paths, load_or_create_token};
use crate::engine::{Engine, EngineSettings};
use crate::httpc::HttpClient;
use crate::lock::{DaemonLock, lock_owner_pid};
use crate::util::{now_iso, pid_alive, write_atomic};

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
    let c = load_config(opts, &Paths::from_env())?;
    Ok((c.daemon.host, c.daemon.port))
}

/// The configuration the daemon runs with: files, environment and `opts` as flags (what
/// `telepty config show --host H --port P` prints).
fn load_config(opts: &DaemonOptions, paths: &Paths) -> anyhow::Result<Config> {
    let mut c = Config::load(paths).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    c.apply_flags(&flags(opts));
    Ok(c)
}

fn flags(opts: &DaemonOptions) -> Flags {
    Flags {
        host: opts.host.clone(),
        port: opts.port,
        theme: None,
    }
}

/// [`resolve_bind`] with the config file and the environment passed in (empty values count as
/// unset). The same layering as `telepty config show`.
pub fn resolve_bind_with(
    opts: &DaemonOptions,
    config: &std::path::Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, u16), ConfigError> {
    let mut c = Config::load_toml_with(config, env)?;
    c.apply_flags(&flags(opts));
    Ok((c.daemon.host, c.daemon.port))
}

/// The address to probe a daemon bound to `host` at: the unspecified addresses mean loopback.
fn probe_authority(host: &str, port: u16) -> String {
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv6() => format!("[::1]:{port}"),
        Ok(ip) if ip.is_unspecified() => format!("127.0.0.1:{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{bare}:{port}"),
    }
}

async fn health_version(port: u16) -> Option<String> {
    health_version_at(&format!("127.0.0.1:{port}")).await
}

async fn health_version_at(authority: &str) -> Option<String> {
    let r = HttpClient::new()
        .request(
            "GET",
            &format!("http://{authority}/api/health"),
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

/// Only called by the lock holder; the pid check is a second guard.
fn remove_state_if_ours(paths: &Paths) {
    if let Some(state) = DaemonState::read(paths).filter(|s| s.pid == std::process::id()) {
        let _ = std::fs::remove_file(paths.daemon_state());
        let _ = std::fs::remove_file(paths.daemon_socket(state.port));
    }
}

/// The owner's unix socket beside the holders' (0600 in the 0700 runtime directory). Bound
/// after the TCP port, so a socket of that name is a dead daemon's and is replaced. Without it
/// the owner's tools use TCP loopback (same-uid checked), so a failure here is only logged.
fn bind_local_socket(paths: &Paths, port: u16) -> Option<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let dir = paths.runtime_dir();
    let path = paths.daemon_socket(port);
    let bound = crate::holder::client::ensure_runtime_dir(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let _ = std::fs::remove_file(&path);
            let l = tokio::net::UnixListener::bind(&path).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
            Ok(l)
        });
    let warn = |e: &String| {
        tracing::warn!(
            "no unix socket at {} ({e}): clients use TCP",
            path.display()
        )
    };
    bound.inspect_err(warn).ok()
}

/// SIGTERM and SIGINT, caught from the moment this is made: made before the daemon binds,
/// so a signal that comes as soon as it answers (a supervisor, a test) is an orderly stop,
/// not the default action's abrupt death.
struct ShutdownSignals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        ShutdownSignals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn recv(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.term) => {}
            _ = one(&mut self.int) => {}
        }
    }
}

/// A running engine + API server (the daemon, or the dashboard's embedded one).
pub struct RunningServer {
    pub engine: Engine,
    pub state: Arc<ApiState>,
    pub host: String,
    pub port: u16,
    paths: Paths,
    /// The singleton lock, released after the state file is removed on shutdown.
    lock: Option<DaemonLock>,
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
        // Injects already queued are typed before the sessions go back to their holders
        // (an upgrade with --replace loses nothing that was accepted).
        self.engine
            .shutdown(stop_sessions, Duration::from_secs(30))
            .await;
        remove_state_if_ours(&self.paths);
        drop(self.lock.take());
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
    /// The port is taken by something that is not telepty, or the lock's holder does not
    /// answer (exit 1).
    PortBusy {
        message: String,
    },
}

/// Take the singleton lock, bind, build the engine and serve the API in the background.
pub async fn start_server(opts: &DaemonOptions) -> anyhow::Result<Startup> {
    let paths = Paths::from_env();
    let config = load_config(opts, &paths)?;
    // Before anything is bound or written: a bad profile file stops the start.
    let profiles = Arc::new(
        crate::engine::profile::Profiles::load(&paths.profiles_dir())
            .context("invalid agent profile")?,
    );
    let (host, port) = (config.daemon.host.clone(), config.daemon.port);
    let token = load_or_create_token(&paths).context("cannot create ~/.telepty/config.json")?;

    // Singleton: the flock. A holder that answers is the running daemon.
    let lock = loop {
        if let Some(lock) =
            DaemonLock::try_acquire(&paths).context("cannot take the daemon lock")?
        {
            break lock;
        }
        if let Some(held) = held_by_other(&paths).await {
            return Ok(held);
        }
        // The holder let go meanwhile: try again.
    };

    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // Nothing of ours was written: nothing to remove.
            drop(lock);
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
        Err(e) => anyhow::bail!("cannot listen on {host}:{port}: {e}"),
    };
    let local = bind_local_socket(&paths, port);
    // Written once listening, by the lock holder only: it always names a daemon that answers
    // (or one that died, which the lock tells).
    let state = DaemonState {
        pid: std::process::id(),
        host: host.to_string(),
        port,
        started_at: now_iso(),
        version: super::VERSION.to_string(),
    };
    write_atomic(
        &paths.daemon_state(),
        serde_json::to_string_pretty(&state)?.as_bytes(),
    )
    .context("cannot write ~/.telepty/daemon-state.json")?;

    let mut settings = EngineSettings::from_config(&config, &paths);
    settings.profiles = profiles;
    let engine = Engine::new(settings);
    engine.set_http_post(aterm_http_post());
    engine.start();
    let api = Arc::new(ApiState::new(
        engine.clone(),
        paths.clone(),
        token,
        (&host, port),
        &config.trust,
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(super::serve(listener, local, api.clone(), async move {
        let _ = stop_rx.await;
    }));
    tracing::info!("telepty {} serving on {host}:{port}", super::VERSION);
    Ok(Startup::Started(Box::new(RunningServer {
        engine,
        state: api,
        host,
        port,
        paths,
        lock: Some(lock),
        stop: Some(stop_tx),
        task,
    })))
}

/// Ask the daemon running for this HOME (if any) to hand its sessions back to their holders
/// and exit, and wait until it has (up to 20 s).
async fn replace_running(paths: &Paths) -> anyhow::Result<()> {
    // The lock's owner is the daemon of this HOME; the state file is the fallback.
    let Some(pid) = lock_owner_pid(paths)
        .filter(|p| *p != 0)
        .or_else(|| DaemonState::read(paths).map(|s| s.pid))
        .filter(|p| *p != std::process::id() && pid_alive(*p))
    else {
        return Ok(());
    };
    tracing::info!("replacing the running daemon (pid {pid})");
    if let Ok(p) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
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

/// Another process holds the lock: the daemon it names, once it answers. A holder that is
/// still starting gets a few seconds to write its state file and listen. `None`: the lock
/// became free meanwhile.
async fn held_by_other(paths: &Paths) -> Option<Startup> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let owner = lock_owner_pid(paths)?;
        let state = DaemonState::read(paths).unwrap_or_default();
        let (spid, sport) = (state.pid, state.port);
        let shost = match state.host {
            h if h.is_empty() => "127.0.0.1".to_string(),
            h => h,
        };
        let current = owner == 0 || spid == owner;
        if current
            && sport != 0
            && health_version_at(&probe_authority(&shost, sport))
                .await
                .is_some()
        {
            return Some(Startup::AlreadyRunning {
                message: format!(
                    "telepty daemon already running (pid {spid}, port {sport}). Exiting."
                ),
                port: sport,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            let lock = crate::lock::lock_path(paths);
            let at = if current && sport != 0 {
                format!(" on port {sport}")
            } else {
                String::new()
            };
            return Some(Startup::PortBusy {
                message: format!(
                    "Another telepty (pid {owner}) holds {} but does not answer{at}; stop it, or wait for it to finish starting.",
                    lock.display()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Legacy aterm delivery over HTTP (API.md §6.5), through the shared HTTP client: the engine
/// asks, the API layer speaks HTTP.
fn aterm_http_post() -> crate::engine::aterm::HttpPost {
    std::sync::Arc::new(|url, body, timeout| {
        Box::pin(async move {
            use crate::engine::aterm::PostError;
            match HttpClient::new()
                .request("POST", &url, &[], Some(body), timeout)
                .await
            {
                Ok(r) => Ok(r.status),
                Err(crate::httpc::HttpError::Timeout) => Err(PostError::Timeout),
                Err(_) => Err(PostError::Unreachable),
            }
        })
    })
}

/// Run the daemon until SIGINT/SIGTERM. Returns the process exit code.
pub async fn run_daemon(opts: DaemonOptions, flags: RunFlags) -> anyhow::Result<i32> {
    let mut signals = ShutdownSignals::install();
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
            signals.recv().await;
            server.shutdown(flags.stop_sessions).await?;
            Ok(0)
        }
    }
}
