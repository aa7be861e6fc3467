//! Starting a program on a new PTY and learning how it ended: shared by the holder (spawned
//! sessions) and the engine's `PtyChild` (`telepty allow`), so both start and reap a child the
//! same way.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::proto::ExitStatus;

/// What to run, as the engine sends it on the holder's stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub cols: u16,
    pub rows: u16,
    pub env: Vec<(String, String)>,
    pub env_remove: Vec<String>,
    /// The engine's metadata, handed back to whichever engine adopts the session.
    pub meta: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("openpty failed: {0}")]
    OpenPty(String),
    /// The program could not be started (not found, not executable, …).
    #[error("{0}")]
    Start(String),
    #[error("spawned child has no pid")]
    NoPid,
    #[error("the PTY master has no file descriptor")]
    NoMaster,
    #[error("cannot duplicate the PTY master: {0}")]
    Dup(std::io::Error),
}

/// A program running on a new PTY: the master (blocking, close-on-exec) and the child's pid.
/// The child leads its own session with the PTY as its controlling terminal.
pub struct Started {
    pub master: OwnedFd,
    pub pid: u32,
}

/// Start `spec`'s program on a new PTY of `spec`'s size. The caller reaps it by pid
/// ([`status_of`], [`wait_exit`]), which is how the signal number is learned.
pub fn spawn(spec: &Spec) -> Result<Started, SpawnError> {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: spec.rows,
            cols: spec.cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| SpawnError::OpenPty(e.to_string()))?;
    let mut cmd = CommandBuilder::new(&spec.command);
    cmd.args(&spec.args);
    cmd.cwd(&spec.cwd);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let child = pty
        .slave
        .spawn_command(cmd)
        .map_err(|e| SpawnError::Start(e.to_string()))?;
    drop(pty.slave);
    let pid = child.process_id().ok_or(SpawnError::NoPid)?;
    // Reaped by pid, not through this handle (which only knows a signal's name).
    drop(child);
    let fd = pty.master.as_raw_fd().ok_or(SpawnError::NoMaster)?;
    // Our own descriptor for the master, so portable-pty's wrapper can go.
    // SAFETY: `fd` belongs to `pty.master`, which is alive for this call.
    let master = unsafe { BorrowedFd::borrow_raw(fd) }
        .try_clone_to_owned()
        .map_err(SpawnError::Dup)?;
    Ok(Started { master, pid })
}

/// The exit status in a `waitpid` result; `None` while the child runs (or the call was
/// interrupted). A child that is not ours any more (reaped elsewhere) has a lost status.
pub fn status_of(r: nix::Result<WaitStatus>) -> Option<ExitStatus> {
    let (code, signal) = match r {
        Ok(WaitStatus::Exited(_, code)) => (Some(code), None),
        Ok(WaitStatus::Signaled(_, sig, _)) => (None, Some(sig as i32)),
        Ok(_) | Err(nix::Error::EINTR) => return None,
        Err(_) => (None, None),
    };
    Some(ExitStatus { code, signal })
}

/// Block until the child `pid` exits, and reap it.
pub fn wait_exit(pid: u32) -> ExitStatus {
    loop {
        if let Some(st) = status_of(waitpid(Pid::from_raw(pid as i32), None)) {
            return st;
        }
    }
}
