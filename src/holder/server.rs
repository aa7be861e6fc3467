//! The holder process (`telepty __hold DIR`, spec as JSON on stdin): owns one session's PTY and
//! child for as long as the child lives, whatever happens to the engines that drive it.
//!
//! It forks once and the parent exits as soon as the holder is ready, so the holder is nobody's
//! child but init's and sits in its own session: a daemon crash, a closed terminal or a
//! dashboard quitting never reaches it. While an engine is attached the holder only waits —
//! the engine reads and writes the PTY through the descriptor it was given; while none is, the
//! holder drains the PTY into the shared ring so the child never blocks and nothing is lost.
//! It reaps the child and keeps its exit status for the next engine.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, listen, socket, sockopt,
};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid, fork, setsid};
use serde_json::Value;

use super::proto::{self, ExitStatus, FromHolder, ToHolder};
use super::ring::{DEFAULT_CAPACITY, Ring};
use super::spawn::{self, Spec, Started};

/// The write end of the SIGCHLD self-pipe (the handler may only do async-signal-safe work).
static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the wake-up byte,
        // which is fine because one pending byte is enough.
        unsafe {
            libc::write(fd, b"c".as_ptr().cast(), 1);
        }
    }
}

/// Entry point of `telepty __hold DIR`. Exit code 0 once the holder is ready (its line on
/// stdout: `ok HID CHILD_PID`), 1 with `err MESSAGE` otherwise.
pub fn main(args: &[String]) -> i32 {
    let Some(dir) = args.first().map(PathBuf::from) else {
        println!("err usage: telepty __hold DIR < spec.json");
        return 2;
    };
    let (spec, (ready_r, ready_w)) = match read_spec() {
        Ok(v) => v,
        Err(e) => {
            println!("err {e}");
            return 1;
        }
    };
    // SAFETY: nothing has started a thread yet in this process (main dispatches here first),
    // so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => {
            println!("err fork: {e}");
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(ready_w);
            // The holder writes one line, then closes its end (or dies: EOF, no line).
            let mut line = String::new();
            let _ = std::fs::File::from(ready_r).read_to_string(&mut line);
            let line = line.trim();
            if line.is_empty() {
                println!("err the holder died during start-up");
                return 1;
            }
            println!("{line}");
            if line.starts_with("ok ") { 0 } else { 1 }
        }
        Ok(ForkResult::Child) => {
            drop(ready_r);
            let code = match start(&dir, spec, ready_w) {
                Ok(holder) => holder.run(),
                Err(_) => 1,
            };
            std::process::exit(code)
        }
    }
}

/// The spec on stdin, and the pipe the holder reports its start-up on.
fn read_spec() -> Result<(Spec, (OwnedFd, OwnedFd)), String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the spec: {e}"))?;
    let spec = serde_json::from_str(&input).map_err(|e| format!("bad spec: {e}"))?;
    let pipe =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    Ok((spec, pipe))
}

/// Tell the waiting parent how start-up went.
fn report(ready: &mut Option<OwnedFd>, line: &str) {
    if let Some(fd) = ready.take() {
        let _ = std::fs::File::from(fd).write_all(format!("{line}\n").as_bytes());
    }
}

struct Holder {
    dir: PathBuf,
    sock_path: PathBuf,
    sock_ino: u64,
    listener: OwnedFd,
    conn: Option<(OwnedFd, u32)>,
    /// Until the spawning engine has attached, the holder leaves the PTY alone: the program's
    /// first output (terminal queries that some agent CLIs wait on) is for the engine, which
    /// answers them. If it never comes, the holder starts draining at this deadline.
    first_engine_by: Option<Instant>,
    /// Kept open for the session's life: the engines' descriptors are copies of it.
    _master: OwnedFd,
    master_fd: RawFd,
    master_eof: bool,
    ring: Ring,
    child: Pid,
    exit: Option<ExitStatus>,
    meta: Value,
    sigchld: OwnedFd,
    inotify: Option<nix::sys::inotify::Inotify>,
    uid: u32,
}

fn start(dir: &Path, spec: Spec, ready_w: OwnedFd) -> Result<Holder, ()> {
    let mut ready = Some(ready_w);
    let fail = |ready: &mut Option<OwnedFd>, msg: String| {
        report(ready, &format!("err {}", msg.replace('\n', " ")));
    };
    // Out of the engine's session and process group: its terminal's hangup is not ours.
    setsid().map_err(|e| fail(&mut ready, format!("setsid: {e}")))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // The engine waits for our parent's stdout to close; we must not keep its pipes. Errors
    // after start-up go to a log in the runtime dir.
    redirect_stdio(&dir.join("holders.log"));
    let _ = std::env::set_current_dir("/");

    let hid = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let sock_path = dir.join(format!("{hid}.sock"));
    let Started { master, pid } =
        spawn::spawn(&spec).map_err(|e| fail(&mut ready, e.to_string()))?;
    let master_fd = master.as_raw_fd();
    set_nonblocking(master_fd).map_err(|e| {
        fail(&mut ready, format!("cannot make the PTY non-blocking: {e}"));
    })?;
    let ring = Ring::create(DEFAULT_CAPACITY).map_err(|e| fail(&mut ready, e.to_string()))?;
    let listener = bind_socket(&sock_path).map_err(|e| {
        fail(&mut ready, e);
        kill_session(pid, libc::SIGKILL);
    })?;
    let sock_ino = std::fs::metadata(&sock_path).map(|m| m.ino()).unwrap_or(0);
    let sigchld = install_signals().map_err(|e| {
        fail(&mut ready, format!("signals: {e}"));
        kill_session(pid, libc::SIGKILL);
        let _ = std::fs::remove_file(&sock_path);
    })?;
    let inotify = watch_dir(dir);
    report(&mut ready, &format!("ok {hid} {pid}"));
    Ok(Holder {
        dir: dir.to_path_buf(),
        sock_path,
        sock_ino,
        listener,
        conn: None,
        first_engine_by: Some(Instant::now() + Duration::from_secs(10)),
        _master: master,
        master_fd,
        master_eof: false,
        ring,
        child: Pid::from_raw(pid as i32),
        exit: None,
        meta: spec.meta,
        sigchld,
        inotify,
        uid: nix::unistd::getuid().as_raw(),
    })
}

fn redirect_stdio(log: &Path) {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null");
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log);
    // SAFETY: dup2 onto the standard descriptors; the sources are open files we own.
    unsafe {
        if let Ok(n) = &null {
            libc::dup2(n.as_raw_fd(), 0);
            libc::dup2(n.as_raw_fd(), 1);
        }
        match (&err, &null) {
            (Ok(e), _) => libc::dup2(e.as_raw_fd(), 2),
            (Err(_), Ok(n)) => libc::dup2(n.as_raw_fd(), 2),
            _ => 0,
        };
    }
}

/// Make `fd` non-blocking (shared with the engine's end of the PTY).
pub fn set_nonblocking(fd: RawFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    // SAFETY: `fd` is open for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn bind_socket(path: &Path) -> Result<OwnedFd, String> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    let addr = UnixAddr::new(path).map_err(|e| format!("socket path {}: {e}", path.display()))?;
    bind(sock.as_raw_fd(), &addr).map_err(|e| format!("bind {}: {e}", path.display()))?;
    listen(&sock, Backlog::new(8).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| format!("listen: {e}"))?;
    Ok(sock)
}

fn install_signals() -> nix::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    SIGCHLD_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    // The write end lives as long as the process.
    std::mem::forget(w);
    let act = SigAction::new(
        SigHandler::Handler(on_sigchld),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only writes to a pipe; ignoring HUP/PIPE/INT is always sound.
    unsafe {
        sigaction(Signal::SIGCHLD, &act)?;
        sigaction(Signal::SIGHUP, &ignore)?;
        sigaction(Signal::SIGPIPE, &ignore)?;
        sigaction(Signal::SIGINT, &ignore)?;
    }
    Ok(r)
}

/// Watch the runtime dir: a holder whose socket is removed (the dir wiped, `rm`) ends its
/// session instead of running on unreachable.
fn watch_dir(dir: &Path) -> Option<nix::sys::inotify::Inotify> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    ino.add_watch(
        dir,
        AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVE_SELF,
    )
    .ok()?;
    Some(ino)
}

/// Every process whose session is `sid` (the child is a session leader, so this is the child
/// and everything it started that did not leave with setsid — background jobs in their own
/// process groups included).
pub fn session_members(sid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp session ...
        let Some(r) = stat.rfind(')') else { continue };
        let fields: Vec<&str> = stat[r + 1..].split_whitespace().collect();
        if fields.get(3).and_then(|s| s.parse::<u32>().ok()) == Some(sid) {
            out.push(pid);
        }
    }
    out
}

/// Signal every process of the child's session (and its group, in case /proc is unreadable).
pub fn kill_session(sid: u32, sig: i32) {
    // SAFETY: kill(2) only sends signals.
    unsafe {
        libc::kill(-(sid as i32), sig);
        for pid in session_members(sid) {
            if sig == libc::SIGHUP {
                // A stopped process would not act on the hangup until continued.
                libc::kill(pid, libc::SIGCONT);
            }
            libc::kill(pid, sig);
        }
    }
}

impl Holder {
    fn run(mut self) -> i32 {
        // Allocated on the first drain: a holder whose engine stays attached never needs it.
        let mut buf = Vec::new();
        self.reap();
        loop {
            if self
                .first_engine_by
                .is_some_and(|t| self.conn.is_some() || Instant::now() >= t)
            {
                self.first_engine_by = None;
            }
            let reading = self.conn.is_none() && !self.master_eof && self.first_engine_by.is_none();
            // SAFETY (all borrow_raw below): the descriptors are owned by `self` and stay
            // open for the duration of the poll call.
            let mut fds = vec![
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(ino) = &self.inotify {
                fds.push(PollFd::new(ino.as_fd(), PollFlags::POLLIN));
            }
            let conn_idx = self.conn.as_ref().map(|(c, _)| {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let master_idx = reading.then(|| {
                let m = unsafe { BorrowedFd::borrow_raw(self.master_fd) };
                fds.push(PollFd::new(m, PollFlags::POLLIN));
                fds.len() - 1
            });
            let timeout = match self.first_engine_by {
                Some(t) => PollTimeout::try_from(t.saturating_duration_since(Instant::now()))
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    eprintln!("telepty holder {}: poll: {e}", self.sock_path.display());
                    return 1;
                }
            }
            let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
            let (listen_ready, chld_ready) = (ready(0), ready(1));
            let ino_ready = self.inotify.is_some() && ready(2);
            let conn_ready = conn_idx.is_some_and(ready);
            let master_ready = master_idx.is_some_and(ready);
            drop(fds);
            if chld_ready {
                let mut b = [0u8; 64];
                while nix::unistd::read(&self.sigchld, &mut b).is_ok_and(|n| n > 0) {}
                self.reap();
            }
            if master_ready {
                self.drain_master(&mut buf);
            }
            if conn_ready {
                if let Some(code) = self.on_conn() {
                    return code;
                }
            }
            if listen_ready {
                self.accept();
            }
            if ino_ready && self.socket_gone() {
                eprintln!(
                    "telepty holder {}: socket removed; ending the session",
                    self.sock_path.display()
                );
                self.end(Duration::from_millis(500));
                return 0;
            }
        }
    }

    fn reap(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let Some(st) = spawn::status_of(waitpid(self.child, Some(WaitPidFlag::WNOHANG))) else {
            return;
        };
        self.exit = Some(st);
        if let Some((c, _)) = &self.conn {
            if proto::send(c.as_raw_fd(), &FromHolder::Exited(st), &[]).is_err() {
                self.conn = None;
            }
        }
    }

    fn drain_master(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            buf.resize(32 * 1024, 0);
        }
        loop {
            match nix::unistd::read(unsafe { BorrowedFd::borrow_raw(self.master_fd) }, buf) {
                Ok(n) if n > 0 => self.ring.append(&buf[..n]),
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EAGAIN) => return,
                // End of file, or EIO: every slave descriptor is closed (the child and its jobs
                // are gone).
                _ => {
                    self.master_eof = true;
                    return;
                }
            }
        }
    }

    /// A message from the attached engine. `Some(code)` ends the holder.
    fn on_conn(&mut self) -> Option<i32> {
        let Some((c, _)) = &self.conn else {
            return None;
        };
        match proto::recv::<ToHolder>(c.as_raw_fd()) {
            Ok((ToHolder::SetMeta { meta }, _)) => {
                self.meta = meta;
                None
            }
            Ok((ToHolder::Kill { grace_ms }, _)) => {
                self.end(Duration::from_millis(grace_ms.min(30_000)));
                Some(0)
            }
            Ok((ToHolder::Hello { .. }, _)) | Err(proto::ProtoError::Io(nix::Error::EAGAIN)) => {
                None
            }
            // Closed, or garbage: the engine is gone (crashed or detached). From now on the
            // holder drains the PTY itself.
            Err(_) => {
                self.conn = None;
                None
            }
        }
    }

    fn accept(&mut self) {
        let Ok(raw) = accept4(self.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) else {
            return;
        };
        // SAFETY: accept4 returned a new descriptor that nobody else owns.
        let conn = unsafe { OwnedFd::from_raw_fd(raw) };
        // Only the owner may drive the session (the dir is 0700 too; this is belt and braces).
        let cred = nix::sys::socket::getsockopt(&conn, sockopt::PeerCredentials);
        if !cred.is_ok_and(|c| c.uid() == self.uid) {
            return;
        }
        // A client that connects and says nothing must not stall the holder.
        proto::set_recv_timeout(&conn, 2);
        let Ok((
            ToHolder::Hello {
                version,
                engine_pid,
            },
            _,
        )) = proto::recv::<ToHolder>(conn.as_raw_fd())
        else {
            return;
        };
        if version != proto::VERSION {
            let _ = proto::send(
                conn.as_raw_fd(),
                &FromHolder::Refused {
                    reason: format!(
                        "holder speaks protocol {}, engine {version}",
                        proto::VERSION
                    ),
                },
                &[],
            );
            return;
        }
        if let Some((_, pid)) = &self.conn {
            let _ = proto::send(
                conn.as_raw_fd(),
                &FromHolder::Busy { engine_pid: *pid },
                &[],
            );
            return;
        }
        // Whatever the PTY holds now is read by the new engine; nothing in between is lost.
        self.reap();
        let welcome = FromHolder::Welcome {
            version: proto::VERSION,
            holder_pid: std::process::id(),
            child_pid: self.child.as_raw() as u32,
            meta: self.meta.clone(),
            exit: self.exit,
        };
        let fds = [self.master_fd, self.ring.fd().as_raw_fd()];
        if proto::send(conn.as_raw_fd(), &welcome, &fds).is_ok() {
            proto::set_recv_timeout(&conn, 0);
            let _ = set_nonblocking(conn.as_raw_fd());
            self.conn = Some((conn, engine_pid));
        }
    }

    fn socket_gone(&mut self) -> bool {
        if let Some(ino) = &self.inotify {
            while ino.read_events().is_ok_and(|e| !e.is_empty()) {}
        }
        match std::fs::symlink_metadata(&self.sock_path) {
            Ok(m) => m.ino() != self.sock_ino,
            Err(_) => !self.dir.exists() || !self.sock_path.exists(),
        }
    }

    /// Hang up the child's whole session, give it `grace` to go, then SIGKILL what is left.
    fn end(&mut self, grace: Duration) {
        let sid = self.child.as_raw() as u32;
        kill_session(sid, libc::SIGHUP);
        let deadline = Instant::now() + grace;
        loop {
            self.reap();
            if self.exit.is_some() && session_members(sid).is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                kill_session(sid, libc::SIGKILL);
                let hard = Instant::now() + Duration::from_secs(2);
                while self.exit.is_none() && Instant::now() < hard {
                    std::thread::sleep(Duration::from_millis(10));
                    self.reap();
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::fs::symlink_metadata(&self.sock_path).is_ok_and(|m| m.ino() == self.sock_ino) {
            let _ = std::fs::remove_file(&self.sock_path);
        }
    }
}
