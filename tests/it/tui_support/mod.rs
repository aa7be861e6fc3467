//! Harness for the dashboard end-to-end tests: the real binary inside a private tmux server
//! (`tmux -L <unique>`), driven with `send-keys` and read with `capture-pane`, plus a small HTTP
//! client for the API the dashboard serves. Every wait polls every 100 ms with a deadline.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const T: Duration = Duration::from_secs(20);

pub fn telepty_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_telepty"))
}

/// How to start the dashboard.
pub fn tui_command() -> Vec<String> {
    vec![telepty_bin().display().to_string(), "tui".into()]
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for<R>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<R>,
    context: impl Fn() -> String,
) -> R {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return r;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for: {what}\n--- context ---\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private HOME and a port, shared by a dashboard and (in client mode) a daemon.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("telepty-tui-")
                .tempdir()
                .unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// A clean environment: no TELEPTY_*/HOST/PORT/XDG_* leaking in from outside.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm-256color");
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A dashboard running in its own tmux server.
pub struct Tui {
    pub socket: String,
    pub port: u16,
    pub home: PathBuf,
}

impl Tui {
    pub fn start(home: &Home, port: u16, extra_args: &[&str]) -> Tui {
        Tui::start_sized(home, port, extra_args, 200, 50)
    }

    /// [`Tui::start`] in a tmux window of `cols`x`rows`.
    pub fn start_sized(home: &Home, port: u16, extra_args: &[&str], cols: u16, rows: u16) -> Tui {
        let mut argv = tui_command();
        argv.push("--port".into());
        argv.push(port.to_string());
        argv.extend(extra_args.iter().map(|s| s.to_string()));
        Tui::start_shell(home, port, &argv.join(" "), cols, rows)
    }

    /// Any shell command line (e.g. `TELEPTY_PORT=… telepty attach x`) in a tmux window of
    /// `cols`x`rows`; `port` is only remembered for [`Tui::url`].
    pub fn start_shell(home: &Home, port: u16, command: &str, cols: u16, rows: u16) -> Tui {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let socket = format!(
            "telepty-tui-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        // Keep the pane after the dashboard exits so its exit code (and any stderr) is visible.
        let shell = format!("{command}; echo \"[tui exited $?]\"; sleep 600");
        let mut cmd = Command::new("tmux");
        home.apply(&mut cmd);
        cmd.args([
            "-u",
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &cols,
            "-y",
            &rows,
            "-s",
            "t",
            &shell,
        ]);
        let out = cmd.output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tui {
            socket,
            port,
            home: home.path().to_path_buf(),
        }
    }

    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-u", "-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("run tmux")
    }

    /// Kill this tmux server: the dashboard's terminal is gone (it gets SIGHUP).
    pub fn kill_server(&self) {
        self.tmux(&["kill-server"]);
    }

    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// A tmux format about the pane (`#{alternate_on}`, `#{pane_pid}`, …).
    pub fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["display-message", "-p", "-t", "t", format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Resize the dashboard's tmux window (the dashboard gets SIGWINCH and relayouts).
    pub fn resize_window(&self, cols: u16, rows: u16) {
        let out = self.tmux(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        assert!(
            out.status.success(),
            "resize-window failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Named keys (`Enter`, `C-a`, `Escape`, `Space`, …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(
            out.status.success(),
            "send-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Literal text.
    pub fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", "t", "-l", text]);
        assert!(
            out.status.success(),
            "send-keys -l failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Wait until the screen satisfies `pred`; returns that screen.
    pub fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_for(
            T,
            what,
            || Some(self.capture()).filter(|s| pred(s)),
            || self.capture(),
        )
    }

    pub fn wait_text(&self, text: &str) -> String {
        self.wait_screen(&format!("{text:?} on screen"), |s| s.contains(text))
    }

    /// Wait until pane `id` shows `text`.
    pub fn wait_pane(&self, id: &str, text: &str) -> String {
        wait_for(
            T,
            &format!("{text:?} in pane {id}"),
            || pane_text(&self.capture(), id).filter(|p| p.contains(text)),
            || self.capture(),
        )
    }

    /// Run a palette command line (`inject echo hi`), then press Enter `extra_enters` more times
    /// (argument prompts that keep their default).
    pub fn palette(&self, line: &str, extra_enters: usize) {
        self.type_text(":");
        self.wait_text("command palette");
        self.type_text(line);
        self.keys(&["Enter"]);
        for _ in 0..extra_enters {
            self.keys(&["Enter"]);
        }
    }

    /// OSC 52 from the dashboard becomes tmux's paste buffer.
    pub fn clipboard_on(&self) {
        let out = self.tmux(&["set", "-g", "set-clipboard", "on"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Wait until tmux's paste buffer satisfies `ok`.
    pub fn wait_buffer(&self, what: &str, ok: impl Fn(&str) -> bool) {
        let buffer = || String::from_utf8_lossy(&self.tmux(&["show-buffer"]).stdout).into_owned();
        wait_for(
            T,
            what,
            || ok(&buffer()).then_some(()),
            || format!("buffer: {:?}\n{}", buffer(), self.capture()),
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

const CORNERS_LEFT: [char; 3] = ['┌', '┏', '╔'];
const CORNERS_RIGHT: [char; 3] = ['┐', '┓', '╗'];
const CORNERS_BOTTOM: [char; 3] = ['└', '┗', '╚'];

/// The inner text of the pane titled `id` in a captured screen (ASCII content assumed), or
/// `None` if there is no such pane.
pub fn pane_text(screen: &str, id: &str) -> Option<String> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    for (y, line) in lines.iter().enumerate() {
        let s: String = line.iter().collect();
        let pats = [format!(" {id} @"), format!("◆ {id} @")];
        for (byte_pos, _) in pats.iter().flat_map(|p| s.match_indices(p.as_str())) {
            let col = s[..byte_pos].chars().count();
            // The corner left of the title; none: not a title (the sidebar's line for it).
            let Some(start) = (0..=col).rev().find(|&x| CORNERS_LEFT.contains(&line[x])) else {
                continue;
            };
            let Some(end) = (col..line.len()).find(|&x| CORNERS_RIGHT.contains(&line[x])) else {
                continue;
            };
            let mut out = String::new();
            for l in &lines[y + 1..] {
                if l.get(start).is_some_and(|c| CORNERS_BOTTOM.contains(c)) {
                    break;
                }
                let row: String = l.iter().skip(start + 1).take(end - start - 1).collect();
                out.push_str(row.trim_end());
                out.push('\n');
            }
            return Some(out);
        }
    }
    None
}

// ---- HTTP --------------------------------------------------------------------------------

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn get(url: &str) -> (u16, Value) {
    match agent().get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        ),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

pub fn post(url: &str, body: Value) -> (u16, Value) {
    match agent().post(url).send_json(&body) {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        ),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

/// Spawn a quiet bash (no rc files) with the telepty prompt.
pub fn spawn_bash(base: &str, id: &str, cwd: &Path) {
    spawn_bash_sized(base, id, cwd, 80, 24);
}

/// [`spawn_bash`] with a terminal size.
pub fn spawn_bash_sized(base: &str, id: &str, cwd: &Path, cols: u16, rows: u16) {
    let (st, body) = post(
        &format!("{base}/api/sessions/spawn"),
        json!({"session_id": id, "command": "bash", "args": ["--norc", "--noprofile"], "cwd": cwd, "cols": cols, "rows": rows}),
    );
    assert_eq!(st, 201, "spawn {id}: {body}");
}

/// The session's (cols, rows) from the API.
pub fn api_size(base: &str, id: &str) -> (u64, u64) {
    let (st, v) = get(&format!("{base}/api/sessions/{id}"));
    assert_eq!(st, 200, "session {id}: {v}");
    (
        v["cols"].as_u64().unwrap_or(0),
        v["rows"].as_u64().unwrap_or(0),
    )
}

/// Wait until the session's size (API) satisfies `pred`; returns it.
pub fn wait_api_size(
    base: &str,
    id: &str,
    what: &str,
    pred: impl Fn((u64, u64)) -> bool,
) -> (u64, u64) {
    wait_for(
        T,
        what,
        || Some(api_size(base, id)).filter(|s| pred(*s)),
        || format!("size now {:?}", api_size(base, id)),
    )
}

/// The rendered screen of a session, from the API.
pub fn api_screen(base: &str, id: &str) -> String {
    let (st, v) = get(&format!("{base}/api/sessions/{id}/screen?lines=200"));
    assert_eq!(st, 200, "screen {id}: {v}");
    v["screen"].as_str().unwrap_or("").to_string()
}

/// Wait until the daemon's screen of `id` shows `text`.
pub fn wait_api_screen(base: &str, id: &str, text: &str) {
    wait_for(
        T,
        &format!("{text:?} on {id}'s screen"),
        || api_screen(base, id).contains(text).then_some(()),
        || api_screen(base, id),
    );
}

/// `POST /api/sessions/ID/inject` of `prompt`, which must be accepted.
pub fn inject(base: &str, id: &str, prompt: &str) {
    let (st, v) = post(
        &format!("{base}/api/sessions/{id}/inject"),
        json!({"prompt": prompt}),
    );
    assert_eq!(st, 200, "inject {id}: {v}");
}

pub fn session_ids(base: &str) -> Vec<String> {
    let (_, v) = get(&format!("{base}/api/sessions"));
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A standalone daemon (client-mode tests), killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(home: &Home, port: u16) -> Daemon {
        let log = std::fs::File::create(home.path().join("daemon.log")).unwrap();
        let mut cmd = Command::new(telepty_bin());
        home.apply(&mut cmd);
        cmd.args(["daemon", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("start daemon");
        let d = Daemon { child, port };
        wait_for(
            T,
            "daemon health",
            || {
                agent()
                    .get(&format!("http://127.0.0.1:{port}/api/health"))
                    .call()
                    .ok()
                    .filter(|r| r.status() == 200)
            },
            || std::fs::read_to_string(home.path().join("daemon.log")).unwrap_or_default(),
        );
        d
    }
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::pane_text;

    #[test]
    fn pane_text_extracts_by_title() {
        let screen = "┏ w1 @box ━━━┓┌ w2 @box ───┐\n┃hello       ┃│world       │\n┗━━━━━━━━━━━━┛└────────────┘\n";
        assert_eq!(pane_text(screen, "w1").unwrap(), "hello\n");
        assert_eq!(pane_text(screen, "w2").unwrap(), "world\n");
        assert!(pane_text(screen, "w3").is_none());
    }
}
