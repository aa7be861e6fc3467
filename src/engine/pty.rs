//! Daemon-owned PTYs: spawning, one reader thread and one writer thread per session.
//!
//! Reads and writes block, so they never run on the async runtime: a flooding or stuck child
//! only ever occupies its own threads.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::mpsc;

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::oneshot;

use super::terminal::Terminal;

const READ_BUF: usize = 64 * 1024;
/// Chunks in flight between the reader and the parser thread.
const PIPELINE_CHUNKS: usize = 64;

pub struct SpawnSpec {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: std::path::PathBuf,
    pub cols: u16,
    pub rows: u16,
    pub env: Vec<(String, String)>,
    pub env_remove: Vec<String>,
}

type Ack = oneshot::Sender<std::io::Result<()>>;

enum WriteCmd {
    Bytes(Vec<u8>, Option<Ack>),
}

/// Handle to a running PTY. Dropping it closes the writer thread; the reader thread ends on EOF.
pub struct Pty {
    pub pid: u32,
    master: std::sync::Mutex<Box<dyn MasterPty + Send>>,
    writer: mpsc::Sender<WriteCmd>,
}

impl Pty {
    /// Queue bytes for the child and wait until they were written (or failed).
    pub async fn write(&self, bytes: Vec<u8>) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(WriteCmd::Bytes(bytes, Some(tx)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "PTY writer closed")
            })?;
        rx.await.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "PTY writer closed",
            ))
        })
    }

    /// Fire-and-forget write, in order with every other write (viewer typing, query replies).
    pub fn write_now(&self, bytes: Vec<u8>) {
        let _ = self.writer.send(WriteCmd::Bytes(bytes, None));
    }

    pub fn resize(&self, rows: u16, cols: u16) -> anyhow::Result<()> {
        let master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        master.resize(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
    }

    /// Signal the child's whole process group (it is a session leader, so pgid == pid).
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) with a negative pid only sends a signal; no memory is involved.
        unsafe {
            libc::kill(-(self.pid as i32), sig);
        }
    }
}

/// Start `spec` on a new PTY whose output feeds `terminal`. `on_eof` runs on the reader thread
/// once the PTY reports end of output (the child and everything holding the tty are gone).
pub fn spawn(
    spec: SpawnSpec,
    terminal: Arc<Terminal>,
    on_eof: impl FnOnce() + Send + 'static,
) -> Result<Pty, String> {
    let system = native_pty_system();
    let pair = system
        .openpty(PtySize {
            rows: spec.rows,
            cols: spec.cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| format!("openpty failed: {e}"))?;
    let mut cmd = CommandBuilder::new(&spec.command);
    cmd.args(&spec.args);
    cmd.cwd(&spec.cwd);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let child = pair.slave.spawn_command(cmd).map_err(|e| e.to_string())?;
    // Only the child may hold the slave, otherwise the reader never sees EOF.
    drop(pair.slave);
    let pid = child
        .process_id()
        .ok_or_else(|| "spawned child has no pid".to_string())?;
    // We reap by pid ourselves (to learn the signal number), so the Child handle is not needed.
    drop(child);

    let mut reader = pair.master.try_clone_reader().map_err(|e| e.to_string())?;
    let mut out = pair.master.take_writer().map_err(|e| e.to_string())?;
    let (wtx, wrx) = mpsc::channel::<WriteCmd>();

    std::thread::Builder::new()
        .name(format!("pty-writer-{pid}"))
        .stack_size(128 * 1024)
        .spawn(move || {
            while let Ok(WriteCmd::Bytes(bytes, ack)) = wrx.recv() {
                let res = out.write_all(&bytes).and_then(|_| out.flush());
                if let Some(ack) = ack {
                    let _ = ack.send(res);
                }
            }
        })
        .map_err(|e| e.to_string())?;

    // Reading and parsing run on two threads, so the kernel's PTY buffer is drained while the
    // emulator parses the previous chunk (measured: 44 -> ~61 MB/s on 2 cores). The bounded
    // channel keeps memory flat and pushes back on a child that outruns the parser.
    let (ctx, crx) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_CHUNKS);
    std::thread::Builder::new()
        .name(format!("pty-reader-{pid}"))
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        // An exact-size copy: chunks in flight cost what they hold.
                        if ctx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // EIO is how Linux reports that the slave side is gone.
                    Err(_) => break,
                }
            }
        })
        .map_err(|e| e.to_string())?;

    let replies = wtx.clone();
    std::thread::Builder::new()
        .name(format!("pty-parser-{pid}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut batch = Vec::with_capacity(READ_BUF);
            while let Ok(first) = crx.recv() {
                // Coalesce what is already queued into one feed: one lock, one generation.
                batch.clear();
                batch.extend_from_slice(&first);
                while batch.len() < READ_BUF {
                    match crx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                let answer = terminal.feed(&batch);
                if !answer.is_empty() {
                    let _ = replies.send(WriteCmd::Bytes(answer, None));
                }
            }
            // The reader is done and everything it read is on the screen.
            drop(replies);
            on_eof();
        })
        .map_err(|e| e.to_string())?;

    Ok(Pty {
        pid,
        master: std::sync::Mutex::new(pair.master),
        writer: wtx,
    })
}

/// Non-blocking reap of one child. `Some((code, signal))` once it has exited.
pub fn try_reap(pid: u32) -> Option<(Option<i32>, Option<i32>)> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid with WNOHANG on a specific pid; status is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
    if rc == pid as libc::pid_t {
        if libc::WIFEXITED(status) {
            return Some((Some(libc::WEXITSTATUS(status)), None));
        }
        if libc::WIFSIGNALED(status) {
            return Some((None, Some(libc::WTERMSIG(status))));
        }
        None
    } else if rc < 0 {
        // ECHILD: somebody else reaped it, or it never was ours; treat as gone.
        Some((None, None))
    } else {
        None
    }
}
