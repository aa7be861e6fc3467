//! `ssh://[user@]host[:port][?port=DAEMON_PORT]` peers (issue 13): the remote daemon stays on
//! its loopback address and is reached through the user's own SSH, as VS Code Remote and mosh
//! do. One `ssh -N` per peer forwards a private unix socket here (0600, in the 0700 runtime
//! directory) to the remote daemon's loopback port; the remote daemon sees a loopback
//! connection of its own uid, the owner, so no token is involved and no port is exposed.
//! SSH keys, `known_hosts` and `~/.ssh/config` (ProxyJump, aliases) all apply, because it is
//! the user's `ssh` (or `TELEPTY_SSH_COMMAND`, split as a shell would) that runs. The tunnel
//! is started on first use, kept (an ssh master with `ControlPersist`) and reused by later
//! commands; `telepty peers remove` ends it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::process::Command;

use super::ClientError;
use crate::config::Paths;

/// The remote daemon's port when the URL names none (`addr::DEFAULT_PORT`, which this module
/// cannot name: `addr` holds an [`SshPeer`]).
const DEFAULT_PORT: u16 = 3848;

/// Where an ssh peer is and the files of its tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPeer {
    /// `[user@]host`, as ssh takes it.
    pub destination: String,
    pub ssh_port: Option<u16>,
    /// The remote daemon's port on its loopback address.
    pub daemon_port: u16,
    /// The forwarded socket here.
    pub socket: PathBuf,
    control: PathBuf,
    log: PathBuf,
}

/// Is this an `ssh://` peer URL?
pub fn is_ssh_url(url: &str) -> bool {
    url.trim().starts_with("ssh://")
}

/// `ssh://[user@]host[:port][?port=N]` → (`[user@]host`, ssh port, daemon port). User and
/// host are checked so that neither can be read by ssh as an option.
pub fn parse_url(url: &str) -> Result<(String, Option<u16>, u16), String> {
    let bad =
        |why: &str| format!("{url}: {why} (use ssh://[user@]host[:ssh-port][?port=daemon-port])");
    let rest = url
        .trim()
        .strip_prefix("ssh://")
        .ok_or_else(|| bad("not ssh://"))?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = match host_port.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("invalid host"))?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let host = host.to_string();
    let ssh_port = match port {
        None => None,
        Some(p) => Some(
            p.parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("invalid port"))?,
        ),
    };
    let word = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    if !word(&host, b".-_:") {
        return Err(bad("invalid host"));
    }
    if user.is_some_and(|u| !word(u, b".-_")) {
        return Err(bad("invalid user"));
    }
    let mut daemon_port = DEFAULT_PORT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("port", p)) => {
                daemon_port = p
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("invalid daemon port"))?
            }
            _ => return Err(bad(&format!("unknown parameter {pair:?}"))),
        }
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let destination = match user {
        Some(u) => format!("{u}@{host}"),
        None => host,
    };
    Ok((destination, ssh_port, daemon_port))
}

impl SshPeer {
    /// The peer of `url`, with its tunnel's files in `paths`' runtime directory. The names
    /// hash the URL (stably: the tunnel outlives this binary): a socket path must stay under
    /// 108 bytes, and a changed URL gets a new tunnel rather than the old one.
    pub fn new(url: &str, paths: &Paths) -> Result<SshPeer, String> {
        let (destination, ssh_port, daemon_port) = parse_url(url)?;
        use sha2::Digest;
        let key = format!("{destination} {ssh_port:?} {daemon_port}");
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let stem = format!("ssh-{hex}");
        let dir = paths.runtime_dir();
        Ok(SshPeer {
            destination,
            ssh_port,
            daemon_port,
            socket: dir.join(format!("{stem}.sock")),
            control: dir.join(format!("{stem}.ctl")),
            log: dir.join(format!("{stem}.log")),
        })
    }

    /// Make sure the tunnel is up: the socket answers, or a new tunnel is started within
    /// `within`. Starting is serialised in this process so that concurrent requests to one
    /// peer share one ssh.
    pub async fn ensure(&self, within: Duration) -> Result<(), ClientError> {
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        if UnixStream::connect(&self.socket).await.is_ok() {
            return Ok(());
        }
        let _one = STARTING.lock().await;
        if UnixStream::connect(&self.socket).await.is_ok() {
            return Ok(());
        }
        tokio::time::timeout(within, self.start(within))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no tunnel within {} s (see {})",
                    within.as_secs(),
                    self.log.display()
                ))
            })
            .map_err(|reason| ClientError::Connect {
                addr: self.label(),
                reason,
            })
    }

    /// `ssh://destination` as messages show it.
    pub fn label(&self) -> String {
        format!("ssh://{}", self.destination)
    }

    async fn start(&self, within: Duration) -> Result<(), String> {
        let dir = self.socket.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // A master whose forward died (the remote rebooted) would keep the control socket.
        self.stop().await;
        let log = std::fs::File::create(&self.log).map_err(|e| e.to_string())?;
        let forward = format!("{}:127.0.0.1:{}", self.socket.display(), self.daemon_port);
        let timeout = format!("ConnectTimeout={}", within.as_secs().max(1));
        let mut cmd = ssh_command();
        cmd.args(["-f", "-N", "-M", "-S"])
            .arg(&self.control)
            .args(["-o", "ControlPersist=yes", "-o", "ExitOnForwardFailure=yes"])
            .args(["-o", "BatchMode=yes", "-o", &timeout])
            .args([
                "-o",
                "StreamLocalBindUnlink=yes",
                "-o",
                "StreamLocalBindMask=0177",
            ])
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ])
            .args(["-L", &forward]);
        if let Some(p) = self.ssh_port {
            cmd.args(["-p", &p.to_string()]);
        }
        // The master outlives this command: it must hold none of its pipes.
        cmd.arg("--")
            .arg(&self.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(false);
        let status = cmd
            .status()
            .await
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if !status.success() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let why = text
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("ssh failed");
            return Err(why.trim().to_string());
        }
        UnixStream::connect(&self.socket)
            .await
            .map(drop)
            .map_err(|e| format!("tunnel socket: {e}"))
    }

    /// End the tunnel (its ssh master), if one runs.
    pub async fn stop(&self) {
        if self.control.exists() {
            let _ = ssh_command()
                .arg("-S")
                .arg(&self.control)
                .args(["-O", "exit", "--", &self.destination])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `ssh`, or `TELEPTY_SSH_COMMAND` split as a shell would (say, `ssh -F ~/.ssh/telepty`).
fn ssh_command() -> Command {
    let words = crate::util::env_nonempty("TELEPTY_SSH_COMMAND")
        .and_then(|c| shell_words::split(&c).ok())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| vec!["ssh".to_string()]);
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("ssh://box"),
            Ok(("box".into(), None, DEFAULT_PORT))
        );
        assert_eq!(
            parse_url("ssh://me@box.lan:2222/?port=4000"),
            Ok(("me@box.lan".into(), Some(2222), 4000))
        );
        assert_eq!(
            parse_url("ssh://root@[::1]:22"),
            Ok(("root@[::1]".into(), Some(22), DEFAULT_PORT))
        );
        for bad in [
            "ssh://",
            "ssh://-oProxyCommand=x",
            "ssh://-x@box",
            "ssh://a b",
            "ssh://box?port=0",
            "ssh://box?proxy=1",
            "http://box",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tunnel_files_are_short_and_per_url() {
        let paths = Paths {
            home: PathBuf::from("/home/someone-with-a-long-name"),
        };
        let a = SshPeer::new("ssh://me@box", &paths).unwrap();
        let b = SshPeer::new("ssh://me@box?port=4000", &paths).unwrap();
        assert_ne!(a.socket, b.socket);
        assert!(a.socket.as_os_str().len() < 100, "{}", a.socket.display());
        assert!(a.socket.starts_with(paths.runtime_dir()));
    }
}
