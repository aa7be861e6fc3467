//! A program on a PTY of this process's own: `telepty allow`'s command, which runs inside the
//! user's terminal instead of a holder. It is started and reaped the way a holder does it
//! (`holder::spawn`) and driven by the engine's PTY I/O (`pty::PtyIo`): the same direct writes
//! with the writer thread behind, the same reader → parser pipeline into a [`Terminal`], the
//! same resize.

use std::sync::Arc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::pty::{PtyIo, Tee, start_io};
use super::terminal::Terminal;
use crate::holder::spawn::{self, SpawnError, Started};
use crate::holder::{ExitStatus, Spec};

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("{0}")]
    Io(String),
}

/// A running child on its own PTY. Dropping it stops reading the PTY (the child runs on).
pub struct PtyChild {
    pub pid: u32,
    io: PtyIo,
}

/// Writes, resizes and the size are the shared [`PtyIo`]'s.
impl std::ops::Deref for PtyChild {
    type Target = PtyIo;
    fn deref(&self) -> &PtyIo {
        &self.io
    }
}

impl PtyChild {
    /// Start `spec` (its `meta` is unused) on a new PTY. What the child prints goes to `tee`
    /// (first, on the reader thread) and to `terminal`. Each on a thread of its own, `on_eof`
    /// runs once the output ended and all of it is on the screen, `on_exit` once the child
    /// was reaped.
    pub fn spawn(
        spec: &Spec,
        terminal: Arc<Terminal>,
        tee: Tee,
        on_eof: Box<dyn FnOnce() + Send>,
        on_exit: Box<dyn FnOnce(ExitStatus) + Send>,
    ) -> Result<PtyChild, ChildError> {
        let Started { master, pid } = spawn::spawn(spec)?;
        let started = start_io(master, terminal, pid, tee, None, on_eof).and_then(|io| {
            std::thread::Builder::new()
                .name(format!("pty-reaper-{pid}"))
                .stack_size(128 * 1024)
                .spawn(move || on_exit(spawn::wait_exit(pid)))
                .map(|_| io)
                .map_err(|e| e.to_string())
        });
        match started {
            Ok(io) => Ok(PtyChild { pid, io }),
            Err(e) => {
                // Nobody would read or reap it: end it now.
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                std::thread::spawn(move || spawn::wait_exit(pid));
                Err(ChildError::Io(e))
            }
        }
    }

    /// Signal the child's process group, and the child itself (it leads its own session, so
    /// the group is its foreground job unless it started others).
    pub fn signal(&self, sig: Signal) {
        let pid = self.pid as i32;
        let _ = kill(Pid::from_raw(-pid), sig);
        let _ = kill(Pid::from_raw(pid), sig);
    }
}
