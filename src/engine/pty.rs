//! The engine's end of a session's PTY: the master it received from the session's holder
//! (`crate::holder`), a reader and a parser thread, and writes that go straight to the PTY when
//! they can.
//!
//! The holder owns the child and the PTY; the engine reads and writes the master directly
//! (no copy through the holder) and appends what it reads to the holder's shared ring, so a
//! later engine can replay it. The reader thread also watches the holder's control socket for
//! the child's exit, and a stop pipe for a clean detach.
//!
//! That I/O ([`PtyIo`]) does not care who holds the child: `telepty allow` drives its own child
//! (`PtyChild`, child.rs) with it, tee-ing output to the user's terminal instead of a ring.
//!
//! The master is non-blocking. A write first tries `write(2)` from the caller (an async task,
//! the parser thread): with an empty queue and room in the PTY that is the whole story, and
//! saves the two thread hops a writer thread costs (measured ~100 µs on a 2-core VM). Whatever
//! does not fit — a child that stopped reading — goes to the session's writer thread, which
//! waits for room with poll(2); later writes queue behind it, so order is kept and no async
//! task ever blocks on a stuck child.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use parking_lot::Mutex;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::oneshot;

use super::terminal::Terminal;
use crate::holder::proto::{self, FromHolder, ToHolder};
use crate::holder::server::set_nonblocking;
use crate::holder::{Attached, ExitStatus};

const READ_BUF: usize = 64 * 1024;
/// Chunks in flight between the reader and the parser thread.
const PIPELINE_CHUNKS: usize = 64;

type Ack = oneshot::Sender<std::io::Result<()>>;

/// Bytes the writer thread still has to write, and who waits for them.
struct Queued(Vec<u8>, Option<Ack>);

/// The write side of a PTY master: direct non-blocking writes, with the writer thread behind.
#[derive(Clone)]
struct Writer {
    fd: Arc<OwnedFd>,
    /// Messages handed to the writer thread and not yet written. Direct writes happen only
    /// when it is zero, under this lock, so nothing overtakes queued bytes.
    queued: Arc<Mutex<usize>>,
    tx: mpsc::Sender<Queued>,
}

/// What a direct write left over.
enum Direct {
    Done,
    Queued(Option<oneshot::Receiver<std::io::Result<()>>>),
}

impl Writer {
    fn closed() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, "PTY writer closed")
    }

    /// Write what fits now; queue the rest for the writer thread (with an ack when `ack`).
    fn write_or_queue(&self, bytes: Vec<u8>, ack: bool) -> std::io::Result<Direct> {
        let mut queued = self.queued.lock();
        let mut off = 0;
        if *queued == 0 {
            while off < bytes.len() {
                match write_some(self.fd.as_raw_fd(), &bytes[off..]) {
                    // Nothing taken (a full or closing PTY): the writer thread waits for room.
                    Ok(0) => break,
                    Ok(n) => off += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if off == bytes.len() {
            return Ok(Direct::Done);
        }
        let rest = if off == 0 {
            bytes
        } else {
            bytes[off..].to_vec()
        };
        let (atx, arx) = ack.then(oneshot::channel).unzip();
        self.tx
            .send(Queued(rest, atx))
            .map_err(|_| Writer::closed())?;
        *queued += 1;
        Ok(Direct::Queued(arx))
    }
}

/// The writer thread: each queued message completely, waiting for room with poll(2). It ends
/// when every `Writer` (the `Pty`'s and the parser thread's) is gone; it holds no sender.
fn run_writer(fd: Arc<OwnedFd>, queued: Arc<Mutex<usize>>, rx: mpsc::Receiver<Queued>) {
    while let Ok(Queued(bytes, ack)) = rx.recv() {
        let res = write_all_blocking(fd.as_raw_fd(), &bytes);
        *queued.lock() -= 1;
        if let Some(ack) = ack {
            let _ = ack.send(res);
        }
    }
}

/// One `write(2)`.
fn write_some(fd: RawFd, bytes: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `fd` is open (owned by the caller's `Writer`).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    Ok(nix::unistd::write(fd, bytes)?)
}

/// Wait until `fd` is ready for `events` (or hung up / in error, which the next call reports).
fn wait_ready(fd: RawFd, events: libc::c_short) -> std::io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, no timeout.
        let rc = unsafe { libc::poll(&mut p, 1, -1) };
        if rc >= 0 {
            // A PTY master whose program (the slave side) is gone reports only a hangup: no
            // room will ever come, and retrying the write would spin.
            let gone = p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
                && p.revents & events == 0;
            if gone {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the program's terminal is closed",
                ));
            }
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Write everything to a non-blocking fd, waiting for room when the PTY is full.
fn write_all_blocking(fd: RawFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match write_some(fd, bytes) {
            Ok(0) => wait_ready(fd, libc::POLLOUT)?,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_ready(fd, libc::POLLOUT)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the reader thread reports about the session, on its own thread.
pub struct Hooks {
    /// The PTY reported end of output (the child and everything holding the tty are gone) and
    /// everything read is on the screen.
    pub on_eof: Box<dyn FnOnce() + Send>,
    /// The holder reaped the child.
    pub on_exit: Box<dyn Fn(ExitStatus) + Send>,
    /// The holder went away without a word (killed): nobody will report the exit any more.
    pub on_holder_lost: Box<dyn FnOnce() + Send>,
}

/// Where the reader thread puts what it read, before the parser sees it: the holder's ring
/// (the engine), the user's terminal (`telepty allow`).
pub type Tee = Box<dyn FnMut(&[u8]) + Send>;

/// The reader's line to a holder: its exit reports, and its going away.
pub(super) struct HolderLink {
    control: Arc<OwnedFd>,
    on_exit: Box<dyn Fn(ExitStatus) + Send>,
    on_holder_lost: Box<dyn FnOnce() + Send>,
}

/// The I/O on a PTY master, whoever holds the child: writes (direct, or through the writer
/// thread), resizes, and the reader → parser pipeline into a [`Terminal`]. Used by the engine
/// for held sessions ([`Pty`]) and by `PtyChild` (child.rs) for a child of its own.
/// Dropping it stops the reader (the stop pipe closes).
pub struct PtyIo {
    master: Arc<OwnedFd>,
    writer: Writer,
    stop: Mutex<Option<OwnedFd>>,
    detached: Arc<AtomicBool>,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PtyIo {
    /// Write bytes for the child, in order with every other write; returns once they were
    /// written (or failed). Usually that is right away, without leaving the calling task.
    pub async fn write(&self, bytes: Vec<u8>) -> std::io::Result<()> {
        match self.writer.write_or_queue(bytes, true)? {
            Direct::Queued(Some(rx)) => rx.await.unwrap_or_else(|_| Err(Writer::closed())),
            Direct::Queued(None) | Direct::Done => Ok(()),
        }
    }

    /// Fire-and-forget write, in order with every other write (viewer typing, query replies).
    pub fn write_now(&self, bytes: Vec<u8>) {
        let _ = self.writer.write_or_queue(bytes, false);
    }

    pub fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        set_winsize(self.master.as_raw_fd(), rows, cols)
    }

    /// The PTY's size as the kernel has it (rows, cols).
    pub fn size(&self) -> Option<(u16, u16)> {
        get_winsize(self.master.as_raw_fd())
    }

    /// Stop reading (no end-of-output report follows); returns once the reader has stopped.
    fn stop_reading(&self) {
        self.detached.store(true, Ordering::Release);
        drop(self.stop.lock().take());
        if let Some(t) = self.reader.lock().take() {
            let _ = t.join();
        }
    }
}

/// Handle to a session's PTY. `detach` hands the session back to its holder; dropping the
/// handle without detaching does the same, less politely (the holder sees the socket close).
pub struct Pty {
    pub pid: u32,
    pub holder_pid: u32,
    pub socket: std::path::PathBuf,
    io: PtyIo,
    control: Arc<OwnedFd>,
}

/// Writes, resizes and the size are the shared [`PtyIo`]'s.
impl std::ops::Deref for Pty {
    type Target = PtyIo;
    fn deref(&self) -> &PtyIo {
        &self.io
    }
}

impl Pty {
    /// Whether the program itself holds the terminal's foreground (a shell at its prompt),
    /// rather than a job it started; `None` if the kernel cannot say.
    pub fn child_in_foreground(&self) -> Option<bool> {
        // SAFETY: tcgetpgrp only reads the PTY master's foreground process group.
        let pgrp = unsafe { libc::tcgetpgrp(self.io.master.as_raw_fd()) };
        (pgrp > 0).then(|| u32::try_from(pgrp).ok() == Some(self.pid))
    }

    /// The terminal's foreground process group (its leader's pid), if the kernel says.
    pub fn foreground_pgrp(&self) -> Option<u32> {
        // SAFETY: tcgetpgrp only reads the PTY master's foreground process group.
        let pgrp = unsafe { libc::tcgetpgrp(self.io.master.as_raw_fd()) };
        u32::try_from(pgrp).ok().filter(|&p| p > 0)
    }

    /// Hand the holder the engine's metadata, for the next engine that adopts the session.
    pub fn set_meta(&self, meta: serde_json::Value) {
        if let Err(e) = proto::send(self.control.as_raw_fd(), &ToHolder::SetMeta { meta }, &[]) {
            tracing::warn!("session pid {}: cannot update its holder: {e}", self.pid);
        }
    }

    /// End the session: the holder hangs up every process of the child's session and
    /// SIGKILLs what is left after `grace_ms`. Without a holder, do it from here.
    pub fn kill(&self, grace_ms: u64) {
        let sent = proto::send(self.control.as_raw_fd(), &ToHolder::Kill { grace_ms }, &[]);
        if sent.is_err() {
            let pid = self.pid;
            crate::holder::kill_session(pid, libc::SIGHUP);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(grace_ms));
                crate::holder::kill_session(pid, libc::SIGKILL);
            });
        }
    }

    /// Stop reading and hand the session back to its holder, which drains the PTY from now on.
    /// Returns once this engine no longer touches the PTY or the ring.
    pub fn detach(&self) {
        self.io.stop_reading();
        // Closing the control socket (when the last Arc goes) is what tells the holder.
        let _ =
            nix::sys::socket::shutdown(self.control.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }
}

fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The size (rows, cols) of the PTY behind `master`.
pub fn winsize_of(master: &OwnedFd) -> Option<(u16, u16)> {
    get_winsize(master.as_raw_fd())
}

fn get_winsize(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to a valid pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Ask the foreground program of a PTY to redraw (SIGWINCH to its process group), for a
/// replayed screen whose beginning was lost.
pub fn nudge_redraw(master: RawFd) {
    // SAFETY: tcgetpgrp on an open PTY master; kill only sends a signal.
    unsafe {
        let pgrp = libc::tcgetpgrp(master);
        if pgrp > 0 {
            libc::kill(-pgrp, libc::SIGWINCH);
        }
    }
}

/// Drive the session a holder handed over: start the writer, reader and parser threads.
/// With `replay`, the ring's history is fed to `terminal` first (an adopted session).
pub fn attach(
    att: Attached,
    terminal: Arc<Terminal>,
    replay: bool,
    hooks: Hooks,
) -> Result<Pty, String> {
    let Attached {
        socket,
        holder_pid,
        child_pid: pid,
        master,
        ring,
        control,
        ..
    } = att;
    set_nonblocking(control.as_raw_fd()).map_err(|e| format!("holder socket: {e}"))?;
    if replay {
        let (bytes, wrapped) = ring.contents();
        // A wrapped ring starts mid-stream: skip to a line start so the emulator does not
        // begin inside an escape sequence.
        let start = if wrapped {
            bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
        } else {
            0
        };
        terminal.replay(&bytes[start..]);
        if wrapped {
            nudge_redraw(master.as_raw_fd());
        }
    }
    let control = Arc::new(control);
    let Hooks {
        on_eof,
        on_exit,
        on_holder_lost,
    } = hooks;
    let io = start_io(
        master,
        terminal,
        pid,
        Box::new(move |bytes| ring.append(bytes)),
        Some(HolderLink {
            control: control.clone(),
            on_exit,
            on_holder_lost,
        }),
        on_eof,
    )?;
    Ok(Pty {
        pid,
        holder_pid,
        socket,
        io,
        control,
    })
}

/// Start the writer, reader and parser threads on a master. It is made non-blocking here:
/// for a held session that is the open file description the holder shares, so for both.
/// `on_eof` runs once the output has ended and all of it is on `terminal`'s screen (not
/// after `PtyIo::stop_reading`); `holder`'s hooks run on the reader thread.
pub(super) fn start_io(
    master: OwnedFd,
    terminal: Arc<Terminal>,
    pid: u32,
    tee: Tee,
    holder: Option<HolderLink>,
    on_eof: Box<dyn FnOnce() + Send>,
) -> Result<PtyIo, String> {
    set_nonblocking(master.as_raw_fd())
        .map_err(|e| format!("cannot make the PTY non-blocking: {e}"))?;
    let master = Arc::new(master);
    let (wtx, wrx) = mpsc::channel::<Queued>();
    let writer = Writer {
        // A descriptor of its own for the same open PTY master (O_NONBLOCK shared).
        fd: Arc::new(master.try_clone().map_err(|e| e.to_string())?),
        queued: Arc::new(Mutex::new(0)),
        tx: wtx,
    };
    let (fd, queued) = (writer.fd.clone(), writer.queued.clone());
    std::thread::Builder::new()
        .name(format!("pty-writer-{pid}"))
        .stack_size(128 * 1024)
        .spawn(move || run_writer(fd, queued, wrx))
        .map_err(|e| e.to_string())?;

    let (stop_r, stop_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let detached = Arc::new(AtomicBool::new(false));
    // Reading and parsing run on two threads, so the kernel's PTY buffer is drained while
    // the emulator parses the previous chunk (measured: 44 -> ~61 MB/s on 2 cores). The
    // bounded channel keeps memory flat and pushes back on a child that outruns the parser.
    let (ctx, crx) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_CHUNKS);
    let reader = {
        let master = master.clone();
        std::thread::Builder::new()
            .name(format!("pty-reader-{pid}"))
            .stack_size(128 * 1024)
            .spawn(move || run_reader(&master, tee, holder, &stop_r, ctx))
            .map_err(|e| e.to_string())?
    };

    let replies = writer.clone();
    let parser_detached = detached.clone();
    std::thread::Builder::new()
        .name(format!("pty-parser-{pid}"))
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut batch = Vec::with_capacity(READ_BUF);
            while let Ok(first) = crx.recv() {
                // Coalesce what is already queued into one feed: one lock, one generation.
                batch.clear();
                batch.extend_from_slice(&first);
                while batch.len() < READ_BUF
                    && let Ok(more) = crx.try_recv()
                {
                    batch.extend_from_slice(&more);
                }
                let answer = terminal.feed(&batch);
                if !answer.is_empty() {
                    let _ = replies.write_or_queue(answer, false);
                }
            }
            drop(replies);
            // The reader saw the end of output and everything it read is on the screen
            // (unless it merely stopped because the engine detached).
            if !parser_detached.load(Ordering::Acquire) {
                on_eof();
            }
        })
        .map_err(|e| e.to_string())?;

    Ok(PtyIo {
        master,
        writer,
        stop: Mutex::new(Some(stop_w)),
        detached,
        reader: Mutex::new(Some(reader)),
    })
}

/// The reader thread: PTY output into the tee and the parser; the holder's messages; the stop
/// pipe. It ends on stop, or once the output has ended and the holder (if any) has nothing
/// more to say.
fn run_reader(
    master: &OwnedFd,
    mut tee: Tee,
    mut holder: Option<HolderLink>,
    stop: &OwnedFd,
    ctx: mpsc::SyncSender<Vec<u8>>,
) {
    let mut buf = vec![0u8; READ_BUF];
    let mut ctx = Some(ctx);
    // `holder` is dropped once its socket closed.
    while ctx.is_some() || holder.is_some() {
        let mut fds = vec![PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        let control_idx = holder.as_ref().map(|h| {
            fds.push(PollFd::new(h.control.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let master_idx = ctx.is_some().then(|| {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        if ready(0) {
            // Detach: the engine stops touching the PTY and the ring now.
            return;
        }
        let (control_ready, master_ready) = (
            control_idx.is_some_and(ready),
            master_idx.is_some_and(ready),
        );
        drop(fds);
        if master_ready {
            loop {
                match nix::unistd::read(master, &mut buf) {
                    Ok(n) if n > 0 => {
                        tee(&buf[..n]);
                        // An exact-size copy: chunks in flight cost what they hold.
                        let sent = ctx
                            .as_ref()
                            .is_some_and(|c| c.send(buf[..n].to_vec()).is_ok());
                        if !sent {
                            ctx = None;
                        }
                        break;
                    }
                    Err(nix::Error::EINTR) => continue,
                    Err(nix::Error::EAGAIN) => break,
                    // The end of output; EIO is how Linux reports that the slave side is gone.
                    _ => {
                        ctx = None;
                        break;
                    }
                }
            }
        }
        if let (true, Some(h)) = (control_ready, &holder) {
            match proto::recv::<FromHolder>(h.control.as_raw_fd()) {
                Ok((FromHolder::Exited(st), _)) => (h.on_exit)(st),
                Ok(_) | Err(proto::ProtoError::Io(nix::Error::EAGAIN)) => {}
                Err(_) => {
                    if let Some(h) = holder.take() {
                        (h.on_holder_lost)();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// A non-blocking pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_nonblocking(w.as_raw_fd()).unwrap();
        set_nonblocking(r.as_raw_fd()).unwrap();
        (r, w)
    }

    fn drain(r: &OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            // SAFETY: reading into a local buffer.
            let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    #[test]
    fn direct_writes_never_overtake_queued_bytes() {
        let (r, w) = pipe();
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            fd: Arc::new(w),
            queued: Arc::new(Mutex::new(0)),
            tx,
        };
        // Nothing queued, room in the pipe: written on the spot.
        assert!(matches!(
            writer.write_or_queue(b"head-".to_vec(), false),
            Ok(Direct::Done)
        ));
        // More than the pipe holds: the rest is queued (no writer thread runs yet).
        let big: Vec<u8> = (0..400_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert!(matches!(
            writer.write_or_queue(big.clone(), true),
            Ok(Direct::Queued(Some(_)))
        ));
        let mut got = drain(&r);
        assert!(got.len() < 5 + big.len());
        // Now there is room, but bytes are queued: this must queue behind them.
        assert!(matches!(
            writer.write_or_queue(b"-tail".to_vec(), false),
            Ok(Direct::Queued(None))
        ));
        assert!(drain(&r).is_empty(), "the tail overtook the queue");
        let (fd, queued) = (writer.fd.clone(), writer.queued.clone());
        drop(writer);
        let t = std::thread::spawn(move || run_writer(fd, queued, rx));
        // The writer thread ends once both queued messages are written, which needs room.
        while !t.is_finished() {
            got.extend(drain(&r));
            std::thread::yield_now();
        }
        t.join().unwrap();
        got.extend(drain(&r));
        let mut want = b"head-".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"-tail");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "reordered");
    }
}
