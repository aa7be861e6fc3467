//! `telepty allow` (aliases `wrap`, `enable`): run a command in a local PTY inside the user's
//! terminal, fully transparent, and register it with the daemon as a *wrapped* session so that
//! other programs can inject into it (API.md §2, §11.2 owner obligations).
//!
//! ```text
//!  keyboard ─► stdin thread ──┐                   ┌─► stdout (the user's terminal, raw bytes)
//!                             ├─► PtyChild ─► PTY ─► reader ─┤
//!  daemon ─► owner WS ─► FIFO (delivery task) ─┘             └─► parser ─► own Terminal emulator
//!                                                                           │ (snapshots, gates)
//!  daemon ◄─ owner WS ◄─ output / resize / ready / session_died ◄───────────┘
//! ```
//!
//! * The child runs on the engine's own PTY child type (`engine::child::PtyChild`): started and
//!   reaped like a holder's child, written and read by the engine's PTY I/O, with the reader
//!   tee-ing every byte to the user's terminal before the emulator parses it.
//! * Every `inject` frame goes into one FIFO that outlives connections, so each frame is
//!   written exactly once and in order, whatever happens to the socket. Text is paste-wrapped
//!   when the child enabled bracketed paste and the text has a newline; a lone `"\r"` passes
//!   the same Enter gate as spawned sessions (`engine::input::enter_gate`) measured on the
//!   bridge's own emulator; `raw` frames are written verbatim. The queue sleeps until a frame
//!   arrives or (between auto-restarts) a child is there again; `ready` waits with the
//!   engine's `settle_gate`, woken by the screen's generations — nothing polls.
//! * The bridge's emulator mirrors what the user sees. On every (re)connect the daemon gets the
//!   size and a snapshot of that screen, then the live output, so `read-screen` is right even
//!   after a daemon restart. Terminal queries are answered by the user's real terminal (the
//!   bytes pass through), never by the emulator.
//! * A text frame marked `enter: true` announces its Enter. When the connection is lost
//!   before that Enter arrives (the daemon crashed or restarted mid-message), the bridge puts
//!   an Enter behind the text itself: the text is submitted once, never glued to the next
//!   command. The daemon, seeing a new owner connection, does not send a second one.
//! * Connection loss: re-register and reconnect with backoff 1 s → 30 s. `Session destroyed`
//!   (1000) and `Owner replaced` (4001) end the reconnecting; the command keeps running.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use parking_lot::Mutex;
use ratatui::crossterm::terminal;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use super::output::{Failure, s};
use crate::client::addr::encode_component;
use crate::client::{self, Client, ClientEnv, ClientError};
use crate::config::{self, Paths};
use crate::engine::child::PtyChild;
use crate::engine::input::{enter_gate, paste_wrap, settle_gate};
use crate::engine::terminal::Terminal;
use crate::holder::{ExitStatus, Spec};
use crate::util;
use crate::wire::frame::Frame;
use crate::wire::request::RegisterBody;

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty allow claude\n\
     More:    telepty allow --id reviewer -- codex --model o3\n         telepty allow --auto-restart -- bash -l\n\nInside, $TELEPTY_SESSION_ID names the session; others reach it with\n  \
     telepty inject <id> 'text'")]
pub struct AllowArgs {
    /// Session id [default: <current directory name>-<command name>]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Start the command again when it fails (not after a clean exit with code 0)
    #[arg(long)]
    pub auto_restart: bool,
    /// Record the session as asciicast v2 (in the daemon's ~/.telepty/recordings)
    #[arg(long)]
    pub record: bool,
    /// The command and its arguments (after `--` when they start with a dash)
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// No frame (not even a ping) from the daemon for this long: the connection is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(75);
/// How long `allow` waits for the first registration before starting the command anyway.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(8);
/// After the child exits, how long its remaining output may take to drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Time allowed for the goodbye (session_died frame + DELETE).
const GOODBYE_LIMIT: Duration = Duration::from_secs(3);
/// Auto-restart gives up after this many restarts within [`RESTART_WINDOW`].
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Set while the terminal is in raw mode (notices then need `\r\n`).
static RAW: AtomicBool = AtomicBool::new(false);

/// A one-line notice on stderr that works in raw mode too.
fn notice(msg: &str) {
    let mut err = std::io::stderr().lock();
    if RAW.load(Ordering::Acquire) {
        let _ = write!(err, "\r\n[telepty] {msg}\r\n");
    } else {
        let _ = writeln!(err, "telepty: {msg}");
    }
    let _ = err.flush();
}

// ------------------------------------------------------------------------------ ids, codes

/// `<basename of cwd>-<basename of cmd>`, made a valid session id.
pub(crate) fn default_id(cwd: &std::path::Path, command: &str) -> String {
    let base = |s: &str| {
        std::path::Path::new(s)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let dir = base(&cwd.to_string_lossy());
    let cmd = base(command);
    let parts: Vec<String> = [dir, cmd].into_iter().filter(|p| !p.is_empty()).collect();
    sanitize_id(&parts.join("-"))
}

/// Map a string into the session-id charset: other characters become `-` (runs collapsed),
/// `..` becomes `.`, at most 128 bytes; `session` when nothing usable is left.
pub(crate) fn sanitize_id(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if matches!(c, '-' | '.') && out.ends_with(c) {
            continue;
        }
        out.push(c);
    }
    let mut out = out.trim_matches('-').to_string();
    out.truncate(128);
    while out.ends_with("..") {
        out.pop();
    }
    if util::valid_session_id(&out) {
        out
    } else if util::valid_session_id(&format!("{out}-session")) && !out.is_empty() {
        format!("{out}-session")
    } else {
        "session".to_string()
    }
}

/// `id-<n>` (cut so it stays within 128 bytes).
fn suffixed(id: &str, n: usize) -> String {
    let tail = format!("-{n}");
    let mut base = id.to_string();
    base.truncate(128 - tail.len());
    format!("{}{tail}", base.trim_end_matches('-'))
}

/// The exit code `telepty allow` itself returns: the child's, or 128 + signal.
pub(crate) fn process_code(st: &ExitStatus) -> i32 {
    match (st.code, st.signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

/// What a close frame from the daemon means for the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SocketEnd {
    /// The session was deleted (1000 `Session destroyed`): stop reconnecting.
    Destroyed,
    /// Another owner took over (4001): stop reconnecting.
    Replaced,
    /// Anything else: reconnect.
    Lost,
    /// The bridge itself is finishing.
    Finished,
}

pub(crate) fn classify_close(code: Option<u16>, reason: &str) -> SocketEnd {
    match code {
        Some(4001) => SocketEnd::Replaced,
        Some(1000) if reason == "Session destroyed" => SocketEnd::Destroyed,
        _ => SocketEnd::Lost,
    }
}

// ---------------------------------------------------------------------------- shared state

struct GateSettings {
    min: Duration,
    quiet: Duration,
    max: Duration,
    ready_quiet: Duration,
}

impl GateSettings {
    fn from_env() -> GateSettings {
        let ms = |name: &str, default: u64, floor: u64| {
            Duration::from_millis(config::env_u64(name, default, floor))
        };
        GateSettings {
            min: ms("TELEPTY_SUBMIT_MIN_MS", 150, 0),
            quiet: ms("TELEPTY_SUBMIT_QUIET_MS", 50, 0),
            max: ms("TELEPTY_SUBMIT_MAX_MS_WRAPPED", 500, 0),
            ready_quiet: ms("TELEPTY_BRIDGE_READY_QUIET_MS", 1000, 50),
        }
    }
}

struct Bridge {
    id: Mutex<String>,
    command_line: String,
    /// Ask the daemon to record the session.
    record: bool,
    cwd: String,
    term: Arc<Terminal>,
    /// The running child; `None` between auto-restarts and after the end.
    child: watch::Sender<Option<PtyChild>>,
    settings: GateSettings,
    /// Pass child output through to stdout (cleared at exit).
    passthrough: AtomicBool,
    /// Set after `Session destroyed` / `Owner replaced`.
    stopped: AtomicBool,
    /// "Inject allowed." has been printed.
    announced: AtomicBool,
    /// The child looks idle (a `ready` was due); re-sent on reconnect.
    idle: AtomicBool,
    /// The daemon sent a text that an Enter follows (`enter: true`) and the Enter has not come
    /// yet. If the connection is lost now, the bridge presses it itself: the text is submitted
    /// once and never glued to the next command.
    expect_enter: AtomicBool,
    /// When set, a `ready` is sent once output after this instant has gone quiet. `idle`
    /// changes under its lock, so a re-arm and a `ready` never cross.
    armed: watch::Sender<Option<Instant>>,
}

impl Bridge {
    fn id(&self) -> String {
        self.id.lock().clone()
    }

    /// Write bytes for the child; dropped when no child is running right now.
    fn write(&self, bytes: Vec<u8>) {
        if let Some(c) = self.child.borrow().as_ref() {
            c.write_now(bytes);
        }
    }

    fn arm_ready(&self) {
        self.armed.send_modify(|a| {
            *a = Some(Instant::now());
            self.idle.store(false, Ordering::Release);
        });
    }

    /// Resize the PTY and the emulator.
    fn resize(&self, cols: u16, rows: u16) {
        if let Some(c) = self.child.borrow().as_ref() {
            let _ = c.resize(rows, cols);
        }
        self.term.resize(rows, cols);
    }

    /// The register body (API.md §4).
    fn register_body(&self) -> RegisterBody {
        let (rows, cols) = self.term.size();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        RegisterBody {
            session_id: self.id(),
            command: self.command_line.clone(),
            cwd: self.cwd.clone(),
            backend: "pty".into(),
            cols,
            rows,
            record: self.record,
            term_program: env("TERM_PROGRAM"),
            term: env("TERM"),
            cmux_workspace_id: env("CMUX_WORKSPACE_ID"),
            cmux_surface_id: env("CMUX_SURFACE_ID"),
            ..Default::default()
        }
    }
}

/// One frame for the child, as the daemon sent it.
struct InjectFrame {
    data: String,
    raw: bool,
}

/// Messages to the connection task.
enum Ctl {
    /// The terminal was resized: report it.
    Resize,
    /// The child looks ready.
    Ready,
    /// Any frame for the daemon (e.g. `session_died` before a restart).
    Frame(Frame),
    /// Send this frame, close the socket, stop, and acknowledge.
    Finish(Frame, oneshot::Sender<()>),
}

// ------------------------------------------------------------------------------ terminal

/// The size of the user's terminal as (cols, rows).
pub(crate) fn terminal_size() -> Option<(u16, u16)> {
    match terminal::size() {
        Ok((c, r)) if c > 0 && r > 0 => Some((c.min(1000), r.min(1000))),
        _ => None,
    }
}

/// Raw mode while the command runs; on drop, raw mode off and every mode the child left on
/// (as its emulator saw it) switched off again.
struct RawGuard {
    term: Arc<Terminal>,
    raw: bool,
}

impl RawGuard {
    fn enable(term: Arc<Terminal>) -> RawGuard {
        let raw = std::io::stdin().is_terminal() && terminal::enable_raw_mode().is_ok();
        RAW.store(raw, Ordering::Release);
        RawGuard { term, raw }
    }
}

/// The sequences that undo what the child left switched on.
pub(crate) fn mode_resets(screen: &vt100::Screen) -> Vec<u8> {
    let when = |on: bool, seq: &'static [u8]| if on { seq } else { &[] };
    let mouse = screen.mouse_protocol_mode() != vt100::MouseProtocolMode::None;
    [
        when(screen.alternate_screen(), b"\x1b[?1049l"),
        when(screen.hide_cursor(), b"\x1b[?25h"),
        when(screen.bracketed_paste(), b"\x1b[?2004l"),
        when(screen.application_cursor(), b"\x1b[?1l"),
        when(screen.application_keypad(), b"\x1b>"),
        when(mouse, b"\x1b[?1000l\x1b[?1002l\x1b[?1003l"),
        when(mouse, b"\x1b[?1006l\x1b[?1015l\x1b[?1005l"),
        b"\x1b[0m",
    ]
    .concat()
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        if self.raw {
            let _ = terminal::disable_raw_mode();
        }
        RAW.store(false, Ordering::Release);
        if !std::io::stdout().is_terminal() {
            return;
        }
        let resets = mode_resets(self.term.lock().screen());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&resets);
        let _ = out.flush();
    }
}

// ---------------------------------------------------------------------------------- child

enum ChildEvent {
    /// The output ended and all of it is on the emulator's screen.
    Eof(u64),
    /// The process was reaped.
    Exited(u64, ExitStatus),
}

/// Start the child (`spec` at the emulator's size) and make it the bridge's. Output goes to
/// stdout (while `passthrough`) and to the emulator; `events` learns about EOF and the exit
/// (tagged with `generation`, so events of an earlier child of an auto-restart are told apart).
fn start_child(
    spec: &mut Spec,
    bridge: &Arc<Bridge>,
    events: &mpsc::UnboundedSender<ChildEvent>,
    generation: u64,
) -> Result<(), String> {
    (spec.rows, spec.cols) = bridge.term.size();
    let b = bridge.clone();
    let tee = Box::new(move |bytes: &[u8]| {
        if b.passthrough.load(Ordering::Acquire) {
            let mut so = std::io::stdout().lock();
            let _ = so.write_all(bytes);
            let _ = so.flush();
        }
    });
    let (eof, exit) = (events.clone(), events.clone());
    let child = PtyChild::spawn(
        spec,
        bridge.term.clone(),
        tee,
        Box::new(move || {
            let _ = eof.send(ChildEvent::Eof(generation));
        }),
        Box::new(move |st| {
            let _ = exit.send(ChildEvent::Exited(generation, st));
        }),
    )
    .map_err(|e| format!("cannot start {}: {e}", spec.command))?;
    bridge.child.send_replace(Some(child));
    bridge.arm_ready();
    Ok(())
}

/// Keyboard → child, on its own thread (blocking reads). Input typed while no child runs
/// (between auto-restarts) is dropped.
fn start_stdin_thread(bridge: Arc<Bridge>) {
    let _ = std::thread::Builder::new()
        .name("allow-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut lock = stdin.lock();
            let mut buf = vec![0u8; 8192];
            loop {
                match lock.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => bridge.write(buf[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
}

// ------------------------------------------------------------------------------- delivery

/// The FIFO: each frame written once, in order. Text is paste-wrapped as the child wants it;
/// a lone `"\r"` waits for the Enter gate measured from the preceding text write.
async fn delivery_task(bridge: Arc<Bridge>, mut rx: mpsc::UnboundedReceiver<InjectFrame>) {
    let mut child = bridge.child.subscribe();
    let mut last_text: Option<Instant> = None;
    while let Some(f) = rx.recv().await {
        // Between auto-restarts there is no child: hold the queue until there is one again.
        if child.wait_for(Option::is_some).await.is_err() {
            return;
        }
        if f.raw {
            bridge.write(f.data.into_bytes());
            continue;
        }
        if f.data == "\r" {
            if let Some(t0) = last_text.take() {
                let st = &bridge.settings;
                enter_gate(&bridge.term, t0, st.min, st.quiet, st.max).await;
            }
            bridge.write(b"\r".to_vec());
            bridge.arm_ready();
            continue;
        }
        if f.data.is_empty() {
            continue;
        }
        let bytes = paste_wrap(&f.data, bridge.term.bracketed_paste());
        last_text = Some(Instant::now());
        bridge.write(bytes);
    }
}

/// Sends `ready` once the child has been quiet for `ready_quiet` since the arming instant (the
/// start, or an Enter): its prompt is up, or it prints nothing at all. That is the engine's
/// settle gate with `min` = `quiet`; it wakes on the screen's generations, and a re-arm starts
/// it over.
async fn ready_task(bridge: Arc<Bridge>, ctl: mpsc::UnboundedSender<Ctl>) {
    /// Quiet is all that counts: no cap worth the name.
    const NO_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);
    let mut armed = bridge.armed.subscribe();
    let quiet = bridge.settings.ready_quiet;
    loop {
        let Some(at) = *armed.borrow_and_update() else {
            if armed.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            _ = settle_gate(&bridge.term, at, quiet, quiet, NO_LIMIT) => {
                let fired = bridge.armed.send_if_modified(|a| {
                    let due = *a == Some(at);
                    if due {
                        *a = None;
                        bridge.idle.store(true, Ordering::Release);
                    }
                    due
                });
                if fired {
                    let _ = ctl.send(Ctl::Ready);
                }
            }
            r = armed.changed() => if r.is_err() { return },
        }
    }
}

// ----------------------------------------------------------------------------- connection

/// Outcome of the first registration attempt, for the start-up message.
type FirstResult = Result<(), String>;

fn local_client() -> Result<Client, ClientError> {
    // Read the environment and token again each time: a restarted daemon may have written a
    // new token file.
    Ok(Client::new(ClientEnv::from_env().local_addr()?))
}

/// Register the session and open the owner socket.
async fn connect_once(bridge: &Bridge) -> Result<client::ws::WsStream, ClientError> {
    let c = local_client()?;
    let resp = c.register(&bridge.register_body()).await?;
    let kind = resp["type"].as_str().unwrap_or("wrapped");
    if kind != "wrapped" {
        return Err(ClientError::BadAddress(format!(
            "session {} is a {kind} session, not a wrapped one",
            bridge.id()
        )));
    }
    let path = format!("/api/sessions/{}?owner=1", encode_component(&bridge.id()));
    client::connect_ws(c.addr(), &path).await
}

/// Errors after which retrying cannot help.
fn is_fatal(e: &ClientError) -> bool {
    match e {
        ClientError::BadAddress(_) | ClientError::Config(_) => true,
        ClientError::Http { status, code, .. } => {
            (400..500).contains(status) && code != "PERMISSION_DENIED" && *status != 404
        }
        _ => false,
    }
}

async fn connection_task(
    bridge: Arc<Bridge>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    inject: mpsc::UnboundedSender<InjectFrame>,
    mut first: Option<oneshot::Sender<FirstResult>>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        let Some(result) = unless_finished(connect_once(&bridge), &mut ctl).await else {
            return;
        };
        match result {
            Ok(ws) => {
                backoff = BACKOFF_START;
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                } else if !bridge.announced.swap(true, Ordering::AcqRel) {
                    notice(&format!(
                        "session {} is registered. Inject allowed.",
                        bridge.id()
                    ));
                }
                match run_socket(&bridge, ws, &mut ctl, &inject).await {
                    SocketEnd::Finished => return,
                    end @ (SocketEnd::Destroyed | SocketEnd::Replaced) => {
                        bridge.stopped.store(true, Ordering::Release);
                        let id = bridge.id();
                        let why = if end == SocketEnd::Destroyed {
                            format!("session {id} was removed from the daemon; injects are off")
                        } else {
                            format!("another bridge took over session {id}; injects are off here")
                        };
                        notice(&format!("{why} (the command keeps running)"));
                        return idle_until_finish(ctl).await;
                    }
                    SocketEnd::Lost => {
                        if bridge.expect_enter.swap(false, Ordering::AcqRel) {
                            // Behind the text in the FIFO, through the same Enter gate.
                            let _ = inject.send(InjectFrame {
                                data: "\r".into(),
                                raw: false,
                            });
                        }
                    }
                }
            }
            Err(e) => {
                let fatal = is_fatal(&e);
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e.to_string()));
                } else if fatal {
                    notice(&format!(
                        "cannot register session {}: {e}; injects are off",
                        bridge.id()
                    ));
                }
                if fatal {
                    bridge.stopped.store(true, Ordering::Release);
                    return idle_until_finish(ctl).await;
                }
            }
        }
        // Back off, still answering a Finish at once.
        if unless_finished(tokio::time::sleep(backoff), &mut ctl)
            .await
            .is_none()
        {
            return;
        }
        backoff = (backoff.mul_f64(1.5)).min(BACKOFF_MAX);
    }
}

/// Run `fut` while not connected: control messages are stale then (the next connection sends
/// fresh state), except a Finish, which is acknowledged at once. `None` once finished.
async fn unless_finished<T>(
    fut: impl std::future::Future<Output = T>,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> Option<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            r = &mut fut => return Some(r),
            m = ctl.recv() => match m {
                Some(Ctl::Finish(_, ack)) => { let _ = ack.send(()); return None }
                None => return None,
                Some(_) => {}
            }
        }
    }
}

/// After the session is gone for good: acknowledge the final Finish, drop everything else.
async fn idle_until_finish(mut ctl: mpsc::UnboundedReceiver<Ctl>) {
    unless_finished(std::future::pending::<()>(), &mut ctl).await;
}

fn text_frame(f: &Frame) -> Message {
    Message::Text(f.text().into())
}

fn size_frame(bridge: &Bridge) -> Frame {
    let (rows, cols) = bridge.term.size();
    Frame::Resize { cols, rows }
}

/// A frame from the daemon: injects go to the FIFO, renames change the id used from now on.
/// Returns a frame to answer with, if any.
fn handle_frame(
    bridge: &Bridge,
    frame: Frame,
    inject: &mpsc::UnboundedSender<InjectFrame>,
) -> Option<Frame> {
    match frame {
        Frame::Inject { data, raw, enter } => {
            if !raw && data == "\r" {
                bridge.expect_enter.store(false, Ordering::Release);
            } else if !raw && !data.is_empty() {
                bridge.expect_enter.store(enter, Ordering::Release);
            }
            let _ = inject.send(InjectFrame { data, raw });
            None
        }
        // The child follows the user's terminal; tell the daemon its real size.
        Frame::Resize { .. } => Some(size_frame(bridge)),
        Frame::Rename { new_id, .. } if util::valid_session_id(&new_id) => {
            *bridge.id.lock() = new_id;
            None
        }
        _ => None,
    }
}

/// Serve one owner connection until it ends.
async fn run_socket(
    bridge: &Bridge,
    ws: client::ws::WsStream,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    inject: &mpsc::UnboundedSender<InjectFrame>,
) -> SocketEnd {
    let (mut sink, mut stream) = ws.split();
    // Fresh state first: size, the current screen, readiness. Queued control messages are
    // stale by now, except a Finish.
    let mut pending_finish = None;
    while let Ok(m) = ctl.try_recv() {
        if let Ctl::Finish(v, ack) = m {
            pending_finish = Some((v, ack));
        }
    }
    let (snap, mut output) = bridge.term.snapshot_and_subscribe();
    let mut hello = vec![size_frame(bridge)];
    if snap.generation > 0 {
        hello.push(Frame::Output { data: snap.data });
    }
    if bridge.idle.load(Ordering::Acquire) {
        hello.push(Frame::Ready);
    }
    for v in &hello {
        if sink.send(text_frame(v)).await.is_err() {
            return SocketEnd::Lost;
        }
    }
    if let Some((v, ack)) = pending_finish {
        let _ = sink.send(text_frame(&v)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        let _ = ack.send(());
        return SocketEnd::Finished;
    }
    let mut last_rx = Instant::now();
    let mut watchdog = tokio::time::interval(Duration::from_secs(15));
    watchdog.tick().await;
    loop {
        tokio::select! {
            chunk = output.recv() => {
                use tokio::sync::broadcast::error::RecvError;
                let frame = match chunk {
                    Ok(c) => {
                        let mut data = c.text.to_string();
                        while data.len() < 256 * 1024 {
                            match output.try_recv() { Ok(more) => data.push_str(&more.text), Err(_) => break }
                        }
                        Frame::Output { data }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind a flood: start the daemon over from the current screen.
                        let (snap, rx) = bridge.term.snapshot_and_subscribe();
                        output = rx;
                        Frame::Output { data: snap.data }
                    }
                    Err(RecvError::Closed) => continue,
                };
                if sink.send(text_frame(&frame)).await.is_err() { return SocketEnd::Lost }
            }
            m = ctl.recv() => {
                let frame = match m {
                    Some(Ctl::Resize) => size_frame(bridge),
                    Some(Ctl::Ready) => Frame::Ready,
                    Some(Ctl::Frame(v)) => v,
                    Some(Ctl::Finish(v, ack)) => {
                        // Output that is already queued goes first.
                        let mut data = String::new();
                        while let Ok(c) = output.try_recv() { data.push_str(&c.text); }
                        if !data.is_empty() {
                            let _ = sink.send(text_frame(&Frame::Output { data })).await;
                        }
                        let _ = sink.send(text_frame(&v)).await;
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                        let _ = ack.send(());
                        return SocketEnd::Finished;
                    }
                    None => return SocketEnd::Finished,
                };
                if sink.send(text_frame(&frame)).await.is_err() { return SocketEnd::Lost }
            }
            msg = stream.next() => {
                last_rx = Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) { Ok(t) => t, Err(_) => continue },
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = match &frame {
                            Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                            None => (None, String::new()),
                        };
                        return classify_close(code, &reason);
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return SocketEnd::Lost,
                };
                let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
                if let Some(reply) = handle_frame(bridge, frame, inject)
                    && sink.send(text_frame(&reply)).await.is_err()
                {
                    return SocketEnd::Lost;
                }
            }
            _ = watchdog.tick() => {
                if last_rx.elapsed() > SILENCE_LIMIT { return SocketEnd::Lost }
            }
        }
    }
}

// ----------------------------------------------------------------------------------- main

/// Run the bridge; returns the exit code (the child's).
pub fn run(a: AllowArgs) -> i32 {
    let rt = match super::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(bridge_main(a)).unwrap_or_else(|f| {
        eprintln!("{}", f.line);
        f.code
    })
}

/// Is the wanted id usable? Free, an alias of another session, or a wrapped session without
/// an owner (left by an earlier bridge or restored by the daemon) are; a live one is not.
async fn id_taken(c: &Client, id: &str) -> Option<String> {
    let v = c.session(id).await.ok()?;
    let kind = s(&v, "type");
    if s(&v, "id") != id || (kind == "wrapped" && s(&v, "healthStatus") != "CONNECTED") {
        return None;
    }
    Some(if kind == "wrapped" {
        "owned by another running bridge".to_string()
    } else {
        format!("a {kind} session")
    })
}

async fn choose_id(c: &Client, wanted: &str, explicit: bool) -> Result<String, String> {
    match id_taken(c, wanted).await {
        None => return Ok(wanted.to_string()),
        Some(why) if explicit => {
            return Err(format!(
                "session {wanted} already exists ({why}); pick another --id or remove it with: telepty kill {wanted}"
            ));
        }
        Some(_) => {}
    }
    for n in 2..=99 {
        let id = suffixed(wanted, n);
        if id_taken(c, &id).await.is_none() {
            return Ok(id);
        }
    }
    Err(format!("no free session id like {wanted}-<n>; pass --id"))
}

fn death_log_line(
    id: &str,
    info: &ExitStatus,
    duration: Duration,
    restart: bool,
    cmd: &str,
) -> String {
    format!(
        "{} session={id} exit={} signal={} duration={:.1}s restart={} command={cmd}\n",
        util::now_iso(),
        info.code.map_or("-".to_string(), |c| c.to_string()),
        info.signal.map_or("-".to_string(), util::signal_name),
        duration.as_secs_f64(),
        if restart { "yes" } else { "no" },
    )
}

fn log_death(line: &str) {
    let path = Paths::from_env()
        .telepty_dir()
        .join("logs/session-deaths.log");
    if let Ok(mut f) = client::open_log(&path) {
        let _ = f.write_all(line.as_bytes());
    }
}

fn died_frame(
    id: &str,
    info: &ExitStatus,
    duration: Duration,
    crashes: usize,
    restart: bool,
) -> Frame {
    Frame::SessionDied {
        session_id: id.to_string(),
        exit_code: info.code,
        signal: info.signal.map(util::signal_name),
        duration: Some((duration.as_millis() as f64) / 1000.0),
        crash_count: Some(crashes),
        will_restart: Some(restart),
        timestamp: Some(util::now_iso()),
    }
}

/// Run the bridge; the child's exit code, or why it could not start.
async fn bridge_main(a: AllowArgs) -> Result<i32, Failure> {
    let argv = a.command.clone();
    if argv.first().is_none_or(|c| c.is_empty()) {
        return Err(Failure::usage("allow needs a command to run"));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new("allow failed", format!("no current directory: {e}")))?;
    let explicit = a.id.is_some();
    let wanted = match &a.id {
        Some(id) if util::valid_session_id(id) => id.clone(),
        Some(id) => {
            let why = format!("invalid --id {id:?}: {}", util::INVALID_ID_MESSAGE);
            return Err(Failure::usage(why));
        }
        None => default_id(&cwd, &argv[0]),
    };

    // The daemon: started if it is local and not running; unreachable is not fatal.
    let mut c = local_client().map_err(|e| match e {
        // An invalid config.toml is a failure like the daemon's; a bad address is usage.
        ClientError::Config(_) => Failure::plain(e),
        e => Failure::usage(e),
    })?;
    let daemon_up = client::ensure_daemon(&mut c)
        .await
        .inspect_err(|e| eprintln!("telepty: {e}"))
        .is_ok();
    let id = if daemon_up {
        choose_id(&c, &wanted, explicit)
            .await
            .map_err(|why| Failure::new("allow failed", why))?
    } else {
        wanted
    };

    let (cols, rows) = terminal_size().unwrap_or((80, 24));
    let term = Arc::new(Terminal::new(rows, cols, 0));
    // Query replies are the real terminal's job (the bytes pass through): the emulator's
    // would answer twice.
    term.set_answer_queries(false);
    let command_line = argv.join(" ");
    let bridge = Arc::new(Bridge {
        id: Mutex::new(id.clone()),
        command_line: command_line.clone(),
        record: a.record,
        cwd: cwd.to_string_lossy().into_owned(),
        term: term.clone(),
        child: watch::Sender::new(None),
        settings: GateSettings::from_env(),
        passthrough: AtomicBool::new(true),
        stopped: AtomicBool::new(false),
        announced: AtomicBool::new(false),
        idle: AtomicBool::new(false),
        expect_enter: AtomicBool::new(false),
        armed: watch::Sender::new(None),
    });

    // Register and connect before the command starts, so its first output reaches the daemon.
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel::<Ctl>();
    let (inject_tx, inject_rx) = mpsc::unbounded_channel::<InjectFrame>();
    let (first_tx, first_rx) = oneshot::channel::<FirstResult>();
    let conn = tokio::spawn(connection_task(
        bridge.clone(),
        ctl_rx,
        inject_tx,
        Some(first_tx),
    ));
    match tokio::time::timeout(FIRST_CONNECT_WAIT, first_rx).await {
        Ok(Ok(Ok(()))) => {
            bridge.announced.store(true, Ordering::Release);
            eprintln!("telepty: session {id} is registered. Inject allowed.");
        }
        Ok(Ok(Err(e))) => eprintln!(
            "telepty: cannot register session {id} yet ({e}); running {} anyway and retrying in the background",
            argv[0]
        ),
        _ => eprintln!(
            "telepty: the daemon has not answered yet; running {} anyway and retrying in the background",
            argv[0]
        ),
    }
    // Inside kitty, the window title names the session (blocks up to ~1 s, so off the runtime).
    let title_id = id.clone();
    let titled =
        tokio::task::spawn_blocking(move || crate::kitty::set_window_title_if_kitty(&title_id))
            .await
            .unwrap_or_default();
    if let Ok(prev) = std::env::var("TELEPTY_SESSION_ID")
        && !prev.is_empty()
        && prev != id
    {
        eprintln!(
            "telepty: warning: overriding the inherited TELEPTY_SESSION_ID={prev} with {id} for {}",
            argv[0]
        );
    }

    let mut env = vec![("TELEPTY_SESSION_ID".to_string(), id.clone())];
    if std::env::var_os("TERM").is_none_or(|t| t.is_empty()) {
        env.push(("TERM".into(), "xterm-256color".into()));
    }
    let mut spec = Spec {
        command: argv[0].clone(),
        args: argv[1..].to_vec(),
        cwd: cwd.clone(),
        cols,
        rows,
        env,
        env_remove: crate::engine::strip_env_for_child(),
        meta: Value::Null,
    };

    let guard = RawGuard::enable(term.clone());
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<ChildEvent>();
    let mut generation = 0u64;
    let mut started = Instant::now();
    if let Err(e) = start_child(&mut spec, &bridge, &ev_tx, generation) {
        drop(guard);
        eprintln!("telepty: allow failed: {e}");
        goodbye(&bridge, &ctl_tx, None, conn).await;
        return Ok(127);
    }
    start_stdin_thread(bridge.clone());
    tokio::spawn(delivery_task(bridge.clone(), inject_rx));
    tokio::spawn(ready_task(bridge.clone(), ctl_tx.clone()));

    use tokio::signal::unix::{SignalKind, signal};
    let mut winch = signal(SignalKind::window_change()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let mut sighup = signal(SignalKind::hangup()).ok();
    let mut sigint = signal(SignalKind::interrupt()).ok();
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        match s.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }

    let mut crashes = 0usize;
    let mut restarts: Vec<Instant> = Vec::new();
    let mut terminating = 0u32;
    let final_info = loop {
        // Wait for this child to exit (and its output to drain).
        let mut exited: Option<ExitStatus> = None;
        let mut eof = false;
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        while !(exited.is_some() && eof) {
            tokio::select! {
                ev = ev_rx.recv() => match ev {
                    Some(ChildEvent::Eof(g)) if g == generation => eof = true,
                    Some(ChildEvent::Exited(g, info)) if g == generation => {
                        exited = Some(info);
                        drain_deadline = Some(tokio::time::Instant::now() + DRAIN_LIMIT);
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = async { match drain_deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
                _ = next(&mut winch) => {
                    if let Some((c, r)) = terminal_size() {
                        bridge.resize(c, r);
                        let _ = ctl_tx.send(Ctl::Resize);
                    }
                }
                _ = next(&mut sigterm) => forward(&bridge, Signal::SIGTERM, &mut terminating),
                _ = next(&mut sighup) => forward(&bridge, Signal::SIGHUP, &mut terminating),
                _ = next(&mut sigint) => forward(&bridge, Signal::SIGINT, &mut terminating),
            }
        }
        let info = exited.unwrap_or(ExitStatus {
            code: None,
            signal: None,
        });
        bridge.child.send_replace(None);
        let duration = started.elapsed();
        restarts.retain(|t| t.elapsed() < RESTART_WINDOW);
        let restart = a.auto_restart
            && terminating == 0
            && info.code != Some(0)
            && restarts.len() < MAX_RESTARTS;
        if info.code != Some(0) {
            crashes += 1;
        }
        let cur = bridge.id();
        log_death(&death_log_line(
            &cur,
            &info,
            duration,
            restart,
            &command_line,
        ));
        if !restart {
            break (info, duration, crashes);
        }
        let _ = ctl_tx.send(Ctl::Frame(died_frame(&cur, &info, duration, crashes, true)));
        notice(&format!(
            "{} exited ({}); restarting in 1 s",
            argv[0],
            describe_exit(&info)
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        restarts.push(Instant::now());
        generation += 1;
        started = Instant::now();
        if let Err(e) = start_child(&mut spec, &bridge, &ev_tx, generation) {
            notice(&format!("cannot restart: {e}"));
            break (info, duration, crashes);
        }
        let _ = ctl_tx.send(Ctl::Frame(Frame::SessionRestarted {
            session_id: bridge.id(),
            crash_count: crashes,
            timestamp: util::now_iso(),
        }));
    };

    let (info, duration, crashes) = final_info;
    bridge.passthrough.store(false, Ordering::Release);
    let died = died_frame(&bridge.id(), &info, duration, crashes, false);
    drop(guard);
    goodbye(&bridge, &ctl_tx, Some(died), conn).await;
    if titled.remote {
        let _ = tokio::task::spawn_blocking(crate::kitty::restore_window_title_if_kitty).await;
    }
    Ok(process_code(&info))
}

fn describe_exit(info: &ExitStatus) -> String {
    match (info.code, info.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => util::signal_name(s),
        _ => "unknown status".into(),
    }
}

/// Pass a termination signal on to the child; a second one kills it.
fn forward(bridge: &Bridge, sig: Signal, count: &mut u32) {
    *count += 1;
    if let Some(c) = bridge.child.borrow().as_ref() {
        c.signal(if *count > 1 && sig != Signal::SIGINT {
            Signal::SIGKILL
        } else {
            sig
        });
    }
}

/// Tell the daemon the child died, close the owner socket and remove the session (unless it
/// was deleted or taken over already). Bounded in time.
async fn goodbye(
    bridge: &Arc<Bridge>,
    ctl: &mpsc::UnboundedSender<Ctl>,
    died: Option<Frame>,
    conn: tokio::task::JoinHandle<()>,
) {
    let (ack_tx, ack_rx) = oneshot::channel();
    let frame = died.unwrap_or_else(|| Frame::SessionDied {
        session_id: bridge.id(),
        exit_code: None,
        signal: None,
        duration: None,
        crash_count: None,
        will_restart: None,
        timestamp: None,
    });
    if ctl.send(Ctl::Finish(frame, ack_tx)).is_ok() {
        let _ = tokio::time::timeout(GOODBYE_LIMIT, ack_rx).await;
    }
    conn.abort();
    if bridge.stopped.load(Ordering::Acquire) {
        return;
    }
    if let Ok(c) = local_client() {
        let _ = tokio::time::timeout(GOODBYE_LIMIT, c.delete_session(&bridge.id())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ids() {
        let p = std::path::Path::new;
        assert_eq!(
            default_id(p("/home/u/my app"), "/usr/bin/claude"),
            "my-app-claude"
        );
        assert_eq!(default_id(p("/"), "bash"), "bash");
        assert_eq!(default_id(p("/src/proj"), "./run.sh"), "proj-run.sh");
        assert_eq!(default_id(p("/src/ünï"), "x"), "n-x");
        assert_eq!(sanitize_id("a..b"), "a.b");
        assert_eq!(sanitize_id("@@@"), "session");
        assert_eq!(sanitize_id("multicast"), "multicast-session");
        assert_eq!(sanitize_id("."), ".-session");
        let long = "x".repeat(300);
        assert_eq!(sanitize_id(&long).len(), 128);
        for id in [
            "my-app-claude",
            "bash",
            "a.b",
            "session",
            "multicast-session",
        ] {
            assert!(util::valid_session_id(id), "{id}");
        }
        assert_eq!(suffixed("w", 2), "w-2");
        assert_eq!(suffixed(&"y".repeat(128), 12).len(), 128);
    }

    #[test]
    fn exit_codes() {
        let e = |code, signal| process_code(&ExitStatus { code, signal });
        assert_eq!(e(Some(3), None), 3);
        assert_eq!(e(None, Some(9)), 137);
        assert_eq!(e(None, None), 1);
    }

    #[test]
    fn close_codes() {
        assert_eq!(
            classify_close(Some(1000), "Session destroyed"),
            SocketEnd::Destroyed
        );
        assert_eq!(
            classify_close(Some(4001), "Owner replaced"),
            SocketEnd::Replaced
        );
        assert_eq!(
            classify_close(Some(1000), "Session exited"),
            SocketEnd::Lost
        );
        assert_eq!(classify_close(Some(1006), ""), SocketEnd::Lost);
        assert_eq!(classify_close(None, ""), SocketEnd::Lost);
    }

    #[test]
    fn resets_follow_the_child_modes() {
        let mut p = vt100::Parser::new(5, 20, 0);
        assert_eq!(mode_resets(p.screen()), b"\x1b[0m");
        p.process(b"\x1b[?1049h\x1b[?25l\x1b[?2004h\x1b[?1h\x1b[?1000h");
        let r = String::from_utf8(mode_resets(p.screen())).unwrap();
        for seq in [
            "\x1b[?1049l",
            "\x1b[?25h",
            "\x1b[?2004l",
            "\x1b[?1l",
            "\x1b[?1000l",
            "\x1b[0m",
        ] {
            assert!(r.contains(seq), "{r:?} lacks {seq:?}");
        }
    }

    #[test]
    fn fatal_errors() {
        let e = ClientError::from_response(400, br#"{"code":"INVALID_SESSION_ID","error":"x"}"#);
        assert!(is_fatal(&e));
        let e = ClientError::from_response(401, br#"{"code":"PERMISSION_DENIED","error":"x"}"#);
        assert!(!is_fatal(&e));
        let e = ClientError::Connect {
            addr: "a".into(),
            reason: "refused".into(),
        };
        assert!(!is_fatal(&e));
    }

    #[test]
    fn death_lines_and_frames() {
        let info = ExitStatus {
            code: None,
            signal: Some(libc::SIGTERM),
        };
        let l = death_log_line("w", &info, Duration::from_millis(1500), false, "bash");
        assert!(
            l.ends_with(" session=w exit=- signal=SIGTERM duration=1.5s restart=no command=bash\n"),
            "{l}"
        );
        let f = Value::from(died_frame(
            "w",
            &info,
            Duration::from_millis(1500),
            1,
            false,
        ));
        assert_eq!(f["type"], "session_died");
        assert_eq!(f["exitCode"], Value::Null);
        assert_eq!(f["signal"], "SIGTERM");
        assert_eq!(f["duration"], 1.5);
        assert_eq!(f["willRestart"], false);
    }
}
