//! The engine's side of a holder: start one, find the live ones, adopt one.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};

use super::proto::{self, ExitStatus, FromHolder, ProtoError, ToHolder};
use super::ring::{Ring, RingError};
use super::spawn::Spec;

/// Longest socket path a `sockaddr_un` takes (108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("runtime directory {dir}: {why}")]
    RuntimeDir { dir: PathBuf, why: String },
    #[error("cannot start the session holder ({exe}): {why}")]
    Exec { exe: PathBuf, why: String },
    /// The holder started but the command could not (no such program, bad cwd, …).
    #[error("{0}")]
    Spawn(String),
    #[error("{0}")]
    Proto(#[from] ProtoError),
    #[error("{0}")]
    Ring(#[from] RingError),
    #[error("held by another engine (pid {0})")]
    Busy(u32),
    #[error("holder refused: {0}")]
    Refused(String),
    #[error("no holder listens on {0} (stale socket)")]
    Stale(PathBuf),
}

/// A holder this engine is attached to: the descriptors it handed over and what it knows.
pub struct Attached {
    pub socket: PathBuf,
    pub holder_pid: u32,
    pub child_pid: u32,
    pub meta: serde_json::Value,
    pub exit: Option<ExitStatus>,
    pub master: OwnedFd,
    pub ring: Ring,
    pub control: OwnedFd,
}

/// The private runtime directory: created 0700 if missing, refused if someone else owns it
/// or others can enter it (the holders' sockets live there).
pub fn ensure_runtime_dir(dir: &Path) -> Result<(), HolderError> {
    let err = |why: String| HolderError::RuntimeDir {
        dir: dir.to_path_buf(),
        why,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let meta = std::fs::metadata(dir).map_err(|e| err(e.to_string()))?;
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid {
        return Err(err(format!(
            "owned by uid {}, not by this user (uid {uid})",
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| err(format!("cannot make it private (0700): {e}")))?;
    }
    let probe = dir.join("0123456789abcdef.sock");
    if probe.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(err(format!(
            "too long for unix sockets ({} bytes); set TELEPTY_RUNTIME_DIR to a shorter path",
            dir.as_os_str().len()
        )));
    }
    Ok(())
}

/// Start a holder for `spec` with `exe __hold DIR` and attach to it.
pub fn spawn(exe: &Path, dir: &Path, spec: &Spec) -> Result<Attached, HolderError> {
    ensure_runtime_dir(dir)?;
    let exec_err = |why: String| HolderError::Exec {
        exe: exe.to_path_buf(),
        why,
    };
    let mut child = Command::new(exe)
        .arg("__hold")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| exec_err(e.to_string()))?;
    let body = serde_json::to_vec(spec).map_err(|e| exec_err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&body)
            .map_err(|e| exec_err(format!("writing the spec: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| exec_err(e.to_string()))?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if let Some(rest) = line.strip_prefix("ok ") {
        let hid = rest.split_whitespace().next().unwrap_or_default();
        if hid.is_empty() || !hid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(exec_err(format!("unexpected answer {line:?}")));
        }
        return adopt(&dir.join(format!("{hid}.sock")));
    }
    match line.strip_prefix("err ") {
        Some(msg) => Err(HolderError::Spawn(msg.to_string())),
        None => Err(exec_err(format!("exit {} without an answer", out.status))),
    }
}

/// Holder sockets in `dir` (`<16 hex>.sock`), oldest first; anything else is left alone.
pub fn scan(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_suffix(".sock")
                .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            use std::os::unix::fs::FileTypeExt;
            m.file_type()
                .is_socket()
                .then(|| (m.modified().unwrap_or(std::time::UNIX_EPOCH), e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// Connect to a holder and ask to drive its session.
pub fn adopt(path: &Path) -> Result<Attached, HolderError> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(ProtoError::Io)?;
    let addr = UnixAddr::new(path).map_err(ProtoError::Io)?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| match e {
        nix::Error::ECONNREFUSED | nix::Error::ENOENT => HolderError::Stale(path.to_path_buf()),
        e => ProtoError::Io(e).into(),
    })?;
    // A holder that hangs (stopped) must not hang the engine's start.
    proto::set_recv_timeout(&sock, 3);
    proto::send(
        sock.as_raw_fd(),
        &ToHolder::Hello {
            version: proto::VERSION,
            engine_pid: std::process::id(),
        },
        &[],
    )?;
    let (msg, fds) = proto::recv::<FromHolder>(sock.as_raw_fd())?;
    match msg {
        FromHolder::Welcome {
            holder_pid,
            child_pid,
            meta,
            exit,
            ..
        } => {
            let [master, ring] = <[OwnedFd; 2]>::try_from(fds).map_err(|fds| {
                ProtoError::Bad(format!(
                    "welcome with {} descriptors instead of 2",
                    fds.len()
                ))
            })?;
            let ring = Ring::open(ring)?;
            proto::set_recv_timeout(&sock, 0);
            Ok(Attached {
                socket: path.to_path_buf(),
                holder_pid,
                child_pid,
                meta,
                exit,
                master,
                ring,
                control: sock,
            })
        }
        FromHolder::Busy { engine_pid } => Err(HolderError::Busy(engine_pid)),
        FromHolder::Refused { reason } => Err(HolderError::Refused(reason)),
        FromHolder::Exited(_) => Err(ProtoError::Bad("exit before welcome".into()).into()),
    }
}

/// The holder processes serving `dir` (`… __hold DIR`, whichever binary runs them), read from
/// /proc: what is running, as opposed to the sockets in `dir` (for tests, benchmarks and
/// diagnostics).
pub fn holder_pids(dir: &Path) -> Vec<u32> {
    let dir = dir.as_os_str().as_encoded_bytes();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let mut args = c.split(|b| *b == 0).skip(1);
                args.next() == Some(b"__hold") && args.next() == Some(dir)
            })
        })
        .collect()
}
