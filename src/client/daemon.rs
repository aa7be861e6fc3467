//! Starting a local daemon on demand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Client, ClientError};
use crate::config::{self, Paths};

/// How long a started daemon gets to answer `/api/health`.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_EVERY: Duration = Duration::from_millis(25);

/// The daemon's log when the CLI starts it: `~/.telepty/logs/daemon.log`.
fn daemon_log_path(paths: &Paths) -> PathBuf {
    paths.telepty_dir().join("logs").join("daemon.log")
}

/// Make sure a daemon answers at the client's (local) address. If nothing is listening there,
/// start `telepty daemon` detached (own session, stdio to the log file) and wait up to 5 s for
/// `/api/health`. Remote addresses are left alone, and no process is ever killed.
///
/// When a daemon was started and the client had no token (first run: the daemon creates the
/// token file), the token is read again.
pub async fn ensure_daemon(client: &mut Client) -> Result<(), ClientError> {
    if !client.addr().is_local() {
        return Ok(());
    }
    match client.health(PROBE_TIMEOUT).await {
        Err(e) if e.is_connect() => {}
        // Something answered (maybe not happily); the real request will report it.
        _ => return Ok(()),
    }
    let paths = Paths::from_env();
    let log = daemon_log_path(&paths);
    // The daemon binds `HOST`, else `[daemon] host` of config.toml, else 127.0.0.1.
    let bind_configured = std::env::var_os("HOST").is_some_and(|h| !h.is_empty())
        || crate::config::daemon_section(&paths.config_toml()).is_ok_and(|d| d.host.is_some());
    let host = host_flag(&client.addr().host, bind_configured);
    let mut child = spawn_daemon(host.as_deref(), client.addr().port, &log)
        .map_err(|e| ClientError::DaemonStart(format!("cannot run the telepty executable: {e}")))?;

    let mut deadline = Instant::now() + START_TIMEOUT;
    let mut exited = false;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        if client.health(Duration::from_millis(500)).await.is_ok() {
            break;
        }
        if !exited && let Ok(Some(status)) = child.try_wait() {
            exited = true;
            if !status.success() {
                let why = last_log_line(&log).unwrap_or_else(|| format!("it exited with {status}"));
                return Err(ClientError::DaemonStart(format!(
                    "{why} (log: {})",
                    log.display()
                )));
            }
            // Exit 0: either another daemon won a start race (it answers soon) or one already
            // runs elsewhere, e.g. on another port (it never will). Give it one more second.
            deadline = deadline.min(Instant::now() + Duration::from_secs(1));
        }
        if Instant::now() >= deadline {
            let authority = client.addr().authority();
            let why = match last_log_line(&log).filter(|_| exited) {
                Some(line) => format!(
                    "{line} (nothing answers on {authority}; log: {})",
                    log.display()
                ),
                None => format!(
                    "it did not answer on {authority} within {} s (log: {})",
                    START_TIMEOUT.as_secs(),
                    log.display()
                ),
            };
            return Err(ClientError::DaemonStart(why));
        }
    }
    if client.addr().token.is_none()
        && std::env::var_os("TELEPTY_TOKEN").is_none_or(|v| v.is_empty())
    {
        client.set_token(config::read_token(&paths));
    }
    Ok(())
}

/// The `--host` for a daemon started for a client of `client_host`. The daemon binds `HOST`,
/// else `[daemon] host`, else 127.0.0.1 (`bind_configured`: one of the first two is set). Only
/// an IPv6 loopback client address needs it to bind elsewhere; a configured bind address
/// (e.g. 0.0.0.0 or ::) is the user's choice and stays.
fn host_flag(client_host: &str, bind_configured: bool) -> Option<String> {
    let bare = client_host.trim_start_matches('[').trim_end_matches(']');
    (bare.contains(':') && !bind_configured).then(|| bare.to_string())
}

fn spawn_daemon(host: Option<&str>, port: u16, log: &Path) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;

    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("daemon").arg("--port").arg(port.to_string());
    if let Some(host) = host {
        cmd.arg("--host").arg(host);
    }
    // The daemon is nobody's session child.
    cmd.env_remove("TELEPTY_SESSION_ID");
    cmd.stdin(Stdio::null());
    match open_log(log).ok() {
        Some(f) => {
            let f2 = f.try_clone()?;
            cmd.stdout(Stdio::from(f)).stderr(Stdio::from(f2));
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// A log file to append to (mode 0600), its directory created first.
pub(crate) fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The last non-empty line of the log (what a failing daemon printed last), if short enough.
fn last_log_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(super::error::one_line(line, 200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_of_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs/daemon.log");
        assert_eq!(last_log_line(&p), None);
        let f = open_log(&p).unwrap();
        drop(f);
        std::fs::write(
            &p,
            "first\nPort 3848 is already in use by another process.\n\n",
        )
        .unwrap();
        assert_eq!(
            last_log_line(&p).as_deref(),
            Some("Port 3848 is already in use by another process.")
        );
    }

    #[test]
    fn host_flag_only_for_unconfigured_ipv6() {
        assert_eq!(host_flag("127.0.0.1", false), None);
        assert_eq!(host_flag("localhost", false), None);
        assert_eq!(host_flag("::1", false).as_deref(), Some("::1"));
        assert_eq!(host_flag("[::1]", false).as_deref(), Some("::1"));
        // HOST or `[daemon] host` decides (e.g. `::` also serves ::1).
        assert_eq!(host_flag("::1", true), None);
        assert_eq!(host_flag("127.0.0.1", true), None);
    }

    #[tokio::test]
    async fn remote_addresses_are_left_alone() {
        let mut c = Client::new(crate::client::DaemonAddr {
            host: "192.0.2.1".into(),
            port: 3848,
            token: None,
            tunnel: None,
        });
        assert!(ensure_daemon(&mut c).await.is_ok());
    }
}
