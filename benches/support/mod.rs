//! Shared helpers for the telepty benchmarks (`harness = false` programs).
//!
//! * [`Daemon`]: a release `telepty daemon` child with a private temporary HOME and its own
//!   port; killed on drop. Its pid is also appended to `$TELEPTY_BENCH_RUN_DIR/pids` so that
//!   `scripts/bench.sh` can clean up after a bench that was killed.
//! * [`Conn`]: a minimal keep-alive HTTP/1.1 client over one `TcpStream` (no extra
//!   dependencies, nothing between the timer and the socket but a `write` and a `read`).
//! * [`Tmux`]: a tmux server on a private socket (`tmux -L <prefix>-<tag> -f /dev/null`),
//!   killed on drop. The prefix comes from `$TELEPTY_BENCH_TMUX_PREFIX` so the script can find
//!   (only) its own servers.
//! * [`row`]: one line of the summary table, `ROW\t...` on stdout; everything else goes to stderr.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_telepty")
}

/// A numeric knob from the environment (used to shorten runs while developing).
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A temporary directory; inside `$TELEPTY_BENCH_RUN_DIR` when the script set it, so that an
/// interrupted bench leaves nothing behind (the script removes that directory on exit).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    let b = tempfile::Builder::new().prefix(prefix).tempdir_in(
        std::env::var_os("TELEPTY_BENCH_RUN_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir),
    );
    b.expect("create temp dir")
}

/// Record a pid we started, for the script's trap.
fn record_pid(pid: u32) {
    if let Some(dir) = std::env::var_os("TELEPTY_BENCH_RUN_DIR") {
        let path = PathBuf::from(dir).join("pids");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{pid}");
        }
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Poll `f` every `every` until it yields `Some`, or panic after `timeout`.
pub fn wait_for<R>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<R>,
) -> R {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return r;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(every);
    }
}

// ------------------------------------------------------------------------------------------
// statistics and output
// ------------------------------------------------------------------------------------------

/// Percentile by nearest rank of a sorted slice (`p` in 0..=100).
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty());
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

pub fn median(v: &[f64]) -> f64 {
    let s = sorted(v.to_vec());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `p50 / p90 / p99 / max / mean` of a sample, in the sample's unit.
pub fn summary(v: &[f64], unit: &str) -> String {
    let s = sorted(v.to_vec());
    format!(
        "n={} p50={:.1}{unit} p90={:.1}{unit} p99={:.1}{unit} max={:.1}{unit} mean={:.1}{unit}",
        s.len(),
        pct(&s, 50.0),
        pct(&s, 90.0),
        pct(&s, 99.0),
        s[s.len() - 1],
        mean(&s)
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// value must be at least the target
    AtLeast,
    /// value must be at most the target
    AtMost,
    /// informational row, no verdict
    Info,
}

/// One row of the summary table (stdout, tab separated, parsed by scripts/bench.sh):
/// `ROW  metric  telepty  reference  ratio  target  verdict`.
/// A row that only informs: no reference, no ratio, no target.
pub fn info_row(metric: &str, telepty: String) {
    row(
        metric,
        telepty,
        "-".into(),
        "-".into(),
        Goal::Info,
        "-",
        0.0,
        0.0,
    );
}

#[allow(clippy::too_many_arguments)] // one argument per table column
pub fn row(
    metric: &str,
    telepty: String,
    reference: String,
    ratio: String,
    goal: Goal,
    target_text: &str,
    value: f64,
    target: f64,
) {
    let verdict = match goal {
        Goal::AtLeast => {
            if value >= target {
                "PASS"
            } else {
                "MISS"
            }
        }
        Goal::AtMost => {
            if value <= target {
                "PASS"
            } else {
                "MISS"
            }
        }
        Goal::Info => "-",
    };
    println!("ROW\t{metric}\t{telepty}\t{reference}\t{ratio}\t{target_text}\t{verdict}");
}

// ------------------------------------------------------------------------------------------
// /proc
// ------------------------------------------------------------------------------------------

/// A `kB` field of /proc/<pid>/status (VmRSS, RssAnon, RssFile, VmHWM, Threads is not kB).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS").unwrap_or_else(|| panic!("no VmRSS for pid {pid}"))
}

pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every process as (pid, ppid, comm), read from /proc/<pid>/stat.
pub fn processes() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[r + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0);
        out.push((p, ppid, stat[l + 1..r].to_string()));
    }
    out
}

/// `pid` itself and its direct children, as (pid, comm).
pub fn self_and_children(pid: u32) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = comm(pid).map(|c| (pid, c)).into_iter().collect();
    out.extend(
        processes()
            .into_iter()
            .filter(|(_, pp, _)| *pp == pid)
            .map(|(p, _, c)| (p, c)),
    );
    out
}

/// The programs of the sessions of the telepty whose HOME is `home`: descendants of its session
/// holders (`… __hold HOME/.telepty/run`), whose comm starts with `prefix`. Sessions live in
/// holders, not under the daemon or dashboard process.
pub fn session_programs(home: &Path, prefix: &str) -> Vec<u32> {
    telepty::holder::client::holder_pids(&home.join(".telepty/run"))
        .into_iter()
        .flat_map(|holder| descendants(holder, prefix))
        .collect()
}

/// All descendants of `pid` (not `pid` itself) whose comm starts with `prefix`.
pub fn descendants(pid: u32, prefix: &str) -> Vec<u32> {
    let table = processes();
    let mut set = vec![pid];
    let mut i = 0;
    while i < set.len() {
        let cur = set[i];
        for (p, pp, _) in &table {
            if *pp == cur && !set.contains(p) {
                set.push(*p);
            }
        }
        i += 1;
    }
    table
        .iter()
        .filter(|(p, _, c)| *p != pid && set.contains(p) && c.starts_with(prefix))
        .map(|(p, _, _)| *p)
        .collect()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

// ------------------------------------------------------------------------------------------
// Daemon
// ------------------------------------------------------------------------------------------

/// Environment the outer shell must not leak into the daemon or the CLI.
pub const SCRUBBED: &[&str] = &[
    "HOST",
    "PORT",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "CMUX_WORKSPACE_ID",
    "KITTY_LISTEN_ON",
    "CLAUDECODE",
    "RUST_LOG",
    "TMUX",
];

pub struct Daemon {
    pub home: tempfile::TempDir,
    pub port: u16,
    pub token: String,
    child: Option<Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        let home = tempdir("telepty-bench-home-");
        let mut last = String::new();
        for _ in 0..4 {
            let port = free_port();
            match Daemon::launch(&home, port) {
                Ok((child, token)) => {
                    return Daemon {
                        home,
                        port,
                        token,
                        child: Some(child),
                    };
                }
                Err(e) => last = e,
            }
        }
        panic!("daemon did not start: {last}");
    }

    fn launch(home: &tempfile::TempDir, port: u16) -> Result<(Child, String), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.path().join("daemon.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin());
        cmd.arg("daemon").arg("--port").arg(port.to_string());
        apply_env(&mut cmd, home.path(), port);
        cmd.current_dir(home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", bin()))?;
        record_pid(child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!("daemon exited during start-up with {st}"));
            }
            if let Ok(mut c) = Conn::open(port, "") {
                if let Ok((200, body)) = c.get("/api/health") {
                    if body.get("status").and_then(Value::as_str) == Some("ok") {
                        break;
                    }
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("GET /api/health did not answer within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let cfg = std::fs::read_to_string(home.path().join(".telepty/config.json"))
            .map_err(|e| e.to_string())?;
        let cfg: Value = serde_json::from_str(&cfg).map_err(|e| e.to_string())?;
        let token = cfg["authToken"].as_str().ok_or("no authToken")?.to_string();
        Ok((child, token))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    pub fn conn(&self) -> Conn {
        Conn::open(self.port, &self.token).expect("connect to daemon")
    }

    /// A connection on the daemon's unix socket.
    pub fn conn_unix(&self) -> Conn {
        let path = self
            .home
            .path()
            .join(format!(".telepty/run/daemon-{}.sock", self.port));
        Conn::open_unix(&path, self.port).expect("connect to the daemon's unix socket")
    }

    /// Environment for the CLI talking to this daemon.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(bin());
        apply_env(&mut cmd, self.home.path(), self.port);
        cmd.current_dir(self.home.path());
        cmd
    }

    /// Spawn a session; panics on failure.
    pub fn spawn(
        &self,
        c: &mut Conn,
        id: &str,
        command: &str,
        args: &[&str],
        cols: u16,
        rows: u16,
    ) {
        let body = serde_json::json!({"session_id": id, "command": command, "args": args, "cols": cols, "rows": rows});
        let (st, v) = c
            .post("/api/sessions/spawn", &body.to_string())
            .expect("spawn request");
        assert!((200..300).contains(&st), "spawn {id} failed: {st} {v}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL the daemon (its sessions live on in their holders).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start a daemon again on the same HOME and port; returns once /api/health answers.
    pub fn restart(&mut self) {
        let mut last = String::new();
        for _ in 0..20 {
            match Daemon::launch(&self.home, self.port) {
                Ok((child, token)) => {
                    self.child = Some(child);
                    self.token = token;
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("daemon restart failed: {last}");
    }

    /// The session holders (`telepty __hold`) of this HOME.
    pub fn holder_pids(&self) -> Vec<u32> {
        telepty::holder::client::holder_pids(&self.home.path().join(".telepty/run"))
    }
}

/// A field of /proc/PID/smaps_rollup in KiB (`Pss`, `Private_Dirty`, …).
pub fn smaps_kb(pid: u32, field: &str) -> Option<u64> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    t.lines()
        .find(|l| l.starts_with(&format!("{field}:")))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn apply_env(cmd: &mut Command, home: &Path, port: u16) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if (k.starts_with("TELEPTY_") && !k.starts_with("TELEPTY_BENCH_"))
            || SCRUBBED.contains(&k)
            || k.starts_with("CLAUDECODE")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home)
        .env("TELEPTY_PORT", port.to_string())
        .env("NO_COLOR", "1");
    // Experiments: `TELEPTY_BENCH_DAEMON_ENV="TELEPTY_SUBMIT_QUIET_MS=25 K=V"` reaches the
    // daemon and the CLI (everything else named TELEPTY_* is scrubbed).
    if let Ok(extra) = std::env::var("TELEPTY_BENCH_DAEMON_ENV") {
        for kv in extra.split_whitespace() {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ------------------------------------------------------------------------------------------
// HTTP/1.1 keep-alive connection
// ------------------------------------------------------------------------------------------

/// A TCP connection or one on the daemon's unix socket: the same HTTP either way.
pub enum Sock {
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Conn {
    r: BufReader<Sock>,
    host: String,
    token: String,
    line: String,
}

impl Conn {
    pub fn open(port: u16, token: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, Sock::Tcp(s)),
            host: format!("127.0.0.1:{port}"),
            token: token.to_string(),
            line: String::new(),
        })
    }

    /// A connection on the daemon's unix socket `path` (the owner's: no token needed).
    pub fn open_unix(path: &Path, port: u16) -> std::io::Result<Conn> {
        let s = std::os::unix::net::UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, Sock::Unix(s)),
            host: format!("127.0.0.1:{port}"),
            token: String::new(),
            line: String::new(),
        })
    }

    /// Send one request and read the whole response: (status, body bytes).
    pub fn raw(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let b = body.unwrap_or("");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !self.token.is_empty() {
            req.push_str("X-Telepty-Token: ");
            req.push_str(&self.token);
            req.push_str("\r\n");
        }
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
        req.push_str(b);
        // One write per request: nothing for Nagle or delayed ACKs to hold back.
        self.r.get_mut().write_all(req.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        self.line.clear();
        if self.r.read_line(&mut self.line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut len: Option<usize> = None;
        let mut chunked = false;
        loop {
            self.line.clear();
            self.r.read_line(&mut self.line)?;
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                self.line.clear();
                self.r.read_line(&mut self.line)?;
                let n = usize::from_str_radix(self.line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                if n == 0 {
                    self.line.clear();
                    self.r.read_line(&mut self.line)?;
                    break;
                }
                let start = body.len();
                body.resize(start + n, 0);
                self.r.read_exact(&mut body[start..])?;
                let mut crlf = [0u8; 2];
                self.r.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = len {
            body.resize(n, 0);
            self.r.read_exact(&mut body)?;
        }
        Ok((status, body))
    }

    pub fn json(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Value)> {
        let (st, b) = self.raw(method, path, body)?;
        Ok((st, serde_json::from_slice(&b).unwrap_or(Value::Null)))
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, Value)> {
        self.json("GET", path, None)
    }

    pub fn post(&mut self, path: &str, body: &str) -> std::io::Result<(u16, Value)> {
        self.json("POST", path, Some(body))
    }

    /// The session's generation counter (GET /screen?format=json).
    pub fn generation(&mut self, id: &str) -> u64 {
        let (st, v) = self
            .get(&format!("/api/sessions/{id}/screen?format=json"))
            .expect("screen");
        assert_eq!(st, 200, "screen {id}: {v}");
        v["generation"].as_u64().unwrap_or(0)
    }
}

// ------------------------------------------------------------------------------------------
// tmux on a private socket
// ------------------------------------------------------------------------------------------

pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn new(tag: &str) -> Tmux {
        let prefix = std::env::var("TELEPTY_BENCH_TMUX_PREFIX")
            .unwrap_or_else(|_| format!("tpbench{}", std::process::id()));
        let t = Tmux {
            socket: format!("{prefix}-{tag}"),
        };
        // A stale server of the same name can only be ours from an earlier run of this pid.
        t.kill_server();
        t
    }

    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.env_remove("TMUX")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null");
        c.stdin(Stdio::null());
        c
    }

    /// Run a tmux command, panicking on failure; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn server_pid(&self) -> u32 {
        self.run(&["display-message", "-p", "#{pid}"])
            .trim()
            .parse()
            .expect("tmux server pid")
    }

    pub fn kill_server(&self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // tmux leaves the socket file behind.
        let dir = std::env::var_os("TMUX_TMPDIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let _ = std::fs::remove_file(dir.join(format!("tmux-{uid}")).join(&self.socket));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill_server();
    }
}
