//! Shared harness for the daemon integration tests.
//!
//! Every test starts its own daemon (`telepty daemon --port <free port>`) with a private
//! temporary HOME, talks to it over real HTTP / WebSocket, and kills it on drop. Nothing here
//! sleeps blindly: every wait polls a condition with a generous deadline, because CI runs on two
//! slow, loaded cores.
#![allow(dead_code)]

pub mod mcp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, http};

/// Default deadline for anything we wait for.
pub const T: Duration = Duration::from_secs(20);

/// Environment variables the outer environment must not leak into the daemon or the CLI.
const SCRUBBED: &[&str] = &[
    "HOST",
    "PORT",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "AIGENTRY_MAILBOX_DIR",
    "CMUX_WORKSPACE_ID",
    "KITTY_LISTEN_ON",
    "CLAUDECODE",
];

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_telepty")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Poll `f` every 50 ms until it yields `Some`, or panic after `timeout` naming `what`.
pub fn wait_for<R>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return r;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(timeout, what, || f().then_some(()))
}

/// Asserts the §1.3 error shape: status, `success:false`, `code`, string `error` (exact if given).
#[track_caller]
pub fn assert_error(resp: &(u16, Value), status: u16, code: &str, error: Option<&str>) {
    let (st, body) = resp;
    assert_eq!(
        *st, status,
        "expected HTTP {status} {code}, got {st}: {body}"
    );
    assert_eq!(
        body["success"],
        json!(false),
        "error body needs success:false: {body}"
    );
    assert_eq!(body["code"], json!(code), "wrong error code: {body}");
    assert!(
        body["error"].is_string(),
        "error body needs a string `error`: {body}"
    );
    if let Some(e) = error {
        assert_eq!(body["error"], json!(e), "wrong error text: {body}");
    }
}

/// A bare bash prompt of session `id` (`[AGENT: <id>] <cwd> $` or `#` as root), nothing typed.
pub fn is_prompt(line: &str, id: &str) -> bool {
    let l = line.trim_end();
    l.starts_with(&format!("[AGENT: {id}]")) && (l.ends_with('$') || l.ends_with('#'))
}

/// Lines of a rendered screen that are exactly `line`.
pub fn count_lines(screen: &str, line: &str) -> usize {
    screen.lines().filter(|l| *l == line).count()
}

pub fn has_line(screen: &str, line: &str) -> bool {
    count_lines(screen, line) > 0
}

/// A command's exit status and output, for failure messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `cmd` (stdin null) with a 60 s cap and returns its output; `what` names it on timeout.
pub fn run_capped(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    // Read the pipes on helper threads so a hung command cannot hang the test.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let h_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let h_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(st) => st.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
        Err(_) => {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("{what} did not finish within 60 s");
        }
    };
    Output {
        status,
        stdout: h_out.join().unwrap(),
        stderr: h_err.join().unwrap(),
    }
}

fn is_uuid_v4(s: &str) -> bool {
    let re =
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            .unwrap();
    re.is_match(s)
}

#[track_caller]
pub fn assert_uuid_v4(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a uuid string, got {v}"));
    assert!(is_uuid_v4(s), "not a lowercase UUID v4: {s}");
}

/// Runs `ip ARGS…` (iproute2); the error names the command and its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Child processes of `pid` as `(pid, comm)`, read from /proc.
pub fn children_of(pid: u32) -> Vec<(u32, String)> {
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
        // pid (comm) state ppid ...
        let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[l + 1..r].to_string();
        let ppid = stat[r + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push((p, comm));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Daemon
// ------------------------------------------------------------------------------------------

/// A named predicate over a JSON frame.
pub type Expect<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);

pub struct Daemon {
    pub home: tempfile::TempDir,
    pub port: u16,
    pub token: String,
    /// Extra environment given by the test (besides HOME / TELEPTY_PORT / fast knobs).
    env: Vec<(String, String)>,
    host: Option<String>,
    child: Option<Child>,
    agent: ureq::Agent,
    starts: u32,
    /// Network namespace the daemon and the CLI run in (`ip netns exec`), if any.
    netns: Option<String>,
    /// Extra `telepty daemon` flags for the next launches.
    daemon_args: Vec<String>,
    /// The binary the next launches run (default: the one cargo built).
    exe: Option<PathBuf>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[], None)
    }

    /// Starts a daemon with extra environment (`env`) and optionally `HOST=<host>`.
    pub fn start_with(env: &[(&str, &str)], host: Option<&str>) -> Daemon {
        Daemon::start_full(env, host, &[])
    }

    /// Like [`Daemon::start_with`], with `files` (paths relative to HOME) written beforehand.
    pub fn start_full(env: &[(&str, &str)], host: Option<&str>, files: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::new(env, host, files, None);
        // A port picked by bind(0) can be taken by a parallel test before the daemon binds it:
        // retry a few times with a new port if the daemon dies during start-up.
        let mut last_err = String::new();
        for _ in 0..4 {
            d.port = free_port();
            match d.launch() {
                Ok(()) => return d,
                Err(e) => last_err = e,
            }
        }
        panic!(
            "daemon did not start: {last_err}\n--- daemon log ---\n{}",
            d.log()
        );
    }

    /// A daemon inside network namespace `ns` (`ip netns exec`, needs root) on `port` with
    /// `HOST=<host>`. The CLI ([`Daemon::cli`]) runs in the namespace too; the HTTP and
    /// WebSocket helpers are refused, since they would reach the test's own namespace.
    pub fn start_in_netns(ns: &str, port: u16, host: &str) -> Daemon {
        let mut d = Daemon::new(&[], Some(host), &[], Some(ns));
        d.port = port;
        if let Err(e) = d.launch() {
            panic!(
                "daemon in {ns} did not start: {e}\n--- daemon log ---\n{}",
                d.log()
            );
        }
        d
    }

    fn new(
        env: &[(&str, &str)],
        host: Option<&str>,
        files: &[(&str, &str)],
        netns: Option<&str>,
    ) -> Daemon {
        let home = tempfile::Builder::new()
            .prefix("telepty-it-")
            .tempdir()
            .expect("create temp HOME");
        for (rel, content) in files {
            let p = home.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(90)))
            .build()
            .into();
        Daemon {
            home,
            port: 0,
            token: String::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host: host.map(str::to_string),
            child: None,
            agent,
            starts: 0,
            netns: netns.map(str::to_string),
            daemon_args: Vec::new(),
            exe: None,
        }
    }

    pub fn home_path(&self) -> &Path {
        self.home.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.home.path().join("daemon.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The environment shared by the daemon and the CLI. In a network namespace (another
    /// machine, in effect) nothing of the test's environment but PATH is kept.
    fn apply_env(&self, cmd: &mut Command) {
        if self.netns.is_some() {
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default());
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("TELEPTY_")
                || SCRUBBED.contains(&k.as_str())
                || k.starts_with("CLAUDECODE")
            {
                cmd.env_remove(&k);
            }
        }
        cmd.env("HOME", self.home.path())
            .env("TELEPTY_PORT", self.port.to_string())
            .env("TELEPTY_HEALTH_POLL_MS", "200")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// `program`, run inside the daemon's network namespace if it has one.
    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, program]);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// Panics for a daemon in a network namespace: 127.0.0.1 here is not its loopback.
    fn assert_reachable(&self) {
        if let Some(ns) = &self.netns {
            panic!("the daemon runs in network namespace {ns}: drive it with cli()");
        }
    }

    /// Whether GET /api/health answers `{status:"ok"}`.
    fn healthy(&self) -> bool {
        if self.netns.is_some() {
            let mut cmd = self.command("curl");
            self.apply_env(&mut cmd);
            cmd.args([
                "-s",
                "-m",
                "2",
                &format!("http://127.0.0.1:{}/api/health", self.port),
            ]);
            let o = run_capped(cmd, "curl /api/health");
            let body: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            return body["status"] == "ok";
        }
        if let Ok(mut r) = self
            .agent
            .get(self.url("/api/health"))
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .call()
        {
            if r.status().as_u16() == 200 {
                let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
                return body["status"] == "ok";
            }
        }
        false
    }

    /// `telepty daemon --port P [extra] [daemon_args]` with the daemon's environment, HOME as
    /// its cwd and its output appended to the daemon log.
    fn daemon_command(&self, extra: &[&str]) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open daemon log");
        let exe = self
            .exe
            .as_ref()
            .map_or_else(|| bin().to_string(), |p| p.display().to_string());
        let mut cmd = self.command(&exe);
        cmd.arg("daemon").arg("--port").arg(self.port.to_string());
        cmd.args(extra).args(&self.daemon_args);
        self.apply_env(&mut cmd);
        if let Some(h) = &self.host {
            cmd.env("HOST", h);
        }
        cmd.current_dir(self.home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        cmd
    }

    fn launch(&mut self) -> Result<(), String> {
        self.starts += 1;
        let child = self
            .daemon_command(&[])
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("daemon exited during start-up with {st}"));
            }
            if self.healthy() {
                break;
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err("GET /api/health did not answer {status:\"ok\"} within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let cfg_path = self.home.path().join(".telepty/config.json");
        let cfg: Value = serde_json::from_str(
            &std::fs::read_to_string(&cfg_path)
                .map_err(|e| format!("read {}: {e}", cfg_path.display()))?,
        )
        .map_err(|e| format!("parse {}: {e}", cfg_path.display()))?;
        self.token = cfg["authToken"]
            .as_str()
            .ok_or_else(|| format!("no authToken in {cfg}"))?
            .to_string();
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon not running").id()
    }

    /// SIGTERM, wait for the exit (SIGKILL after `grace`), return the exit status.
    fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        self.terminate(Duration::from_secs(2));
    }

    /// Graceful stop (SIGTERM, up to 10 s). Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        let st = self
            .terminate(Duration::from_secs(10))
            .expect("daemon was running");
        assert!(
            st.code().is_some(),
            "daemon pid {pid} did not exit on SIGTERM within 10 s (killed: {st})\n{}",
            self.log()
        );
        st
    }

    /// SIGKILL the daemon and reap it. HOME (config, sessions, logs) and the port stay, so
    /// [`Daemon::restart`] can start it again.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon not running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Run another telepty binary from the next [`Daemon::restart`] on (`None`: cargo's).
    pub fn set_exe(&mut self, exe: Option<PathBuf>) {
        self.exe = exe;
    }

    /// Extra `telepty daemon` flags for the next [`Daemon::restart`].
    pub fn set_daemon_args(&mut self, args: &[&str]) {
        self.daemon_args = args.iter().map(|a| a.to_string()).collect();
    }

    /// The session holders' runtime directory of this HOME.
    pub fn runtime_dir(&self) -> PathBuf {
        self.home.path().join(".telepty/run")
    }

    /// Holder processes (`telepty __hold`) whose runtime dir is this HOME's.
    pub fn holder_pids(&self) -> Vec<u32> {
        telepty::holder::client::holder_pids(&self.runtime_dir())
    }

    /// Start `telepty daemon --replace` on the same HOME and port: it takes the sessions over
    /// from the running daemon, which must exit 0.
    pub fn replace(&mut self) {
        let mut old = self.child.take().expect("daemon not running");
        // The new version is cargo's binary, whatever the old one ran.
        self.exe = None;
        self.child = Some(
            self.daemon_command(&["--replace"])
                .spawn()
                .expect("spawn daemon --replace"),
        );
        let deadline = Instant::now() + T;
        let st = loop {
            if let Some(st) = old.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "the replaced daemon did not exit\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            st.code(),
            Some(0),
            "the replaced daemon exits 0\n{}",
            self.log()
        );
        wait_until(T, "the new daemon answers /api/health", || {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon --replace exited with {st}\n{}", self.log());
            }
            self.healthy()
        });
    }

    /// Start a new daemon on the same HOME and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop() or kill9() the daemon first");
        // The old listening socket may linger briefly; retry the same port for a while.
        let mut last = String::new();
        for _ in 0..10 {
            match self.launch() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("daemon restart failed: {last}\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        self.assert_reachable();
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    // --------------------------------------------------------------------------- HTTP

    fn finish(
        &self,
        what: &str,
        r: Result<http::Response<ureq::Body>, ureq::Error>,
    ) -> (u16, Value) {
        match r {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024 * 1024)
                    .read_to_string()
                    .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}"));
                let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
                (status, v)
            }
            Err(e) => panic!(
                "{what}: request failed: {e}\n--- daemon log ---\n{}",
                self.log()
            ),
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.finish(
            &format!("GET {path}"),
            self.agent.get(self.url(path)).call(),
        )
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.finish(
            &format!("POST {path}"),
            self.agent.post(self.url(path)).send_json(&body),
        )
    }

    /// POST with a verbatim body (for malformed JSON and the like).
    pub fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        self.finish(
            &format!("POST {path}"),
            self.agent
                .post(self.url(path))
                .header("content-type", "application/json")
                .send(body),
        )
    }

    pub fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.finish(
            &format!("PATCH {path}"),
            self.agent.patch(self.url(path)).send_json(&body),
        )
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.finish(
            &format!("DELETE {path}"),
            self.agent.delete(self.url(path)).call(),
        )
    }

    /// A hand-written HTTP/1.1 request on loopback (exact path bytes, arbitrary headers).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> RawResponse {
        self.assert_reachable();
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to daemon");
        raw_http(
            stream,
            &format!("127.0.0.1:{}", self.port),
            method,
            path,
            headers,
            body,
        )
    }

    // --------------------------------------------------------------------------- sessions

    /// POST /api/sessions/spawn (100x30), asserting 201.
    pub fn spawn(&self, id: &str, command: &str, args: &[&str]) -> Value {
        self.spawn_sized(id, command, args, 100, 30)
    }

    /// POST /api/sessions/spawn with a terminal size, asserting 201.
    pub fn spawn_sized(
        &self,
        id: &str,
        command: &str,
        args: &[&str],
        cols: u16,
        rows: u16,
    ) -> Value {
        let r = self.post(
            "/api/sessions/spawn",
            json!({"session_id": id, "command": command, "args": args, "cols": cols, "rows": rows}),
        );
        assert_eq!(r.0, 201, "spawn {id} ({command} {args:?}) failed: {}", r.1);
        r.1
    }

    /// Spawns `bash --norc --noprofile` (100x30) and waits for its prompt.
    pub fn spawn_bash(&self, id: &str) -> Value {
        let v = self.spawn(id, "bash", &["--norc", "--noprofile"]);
        let prompt = format!("[AGENT: {id}]");
        self.wait_screen(id, &format!("bash prompt `{prompt}`"), |s| {
            s.lines().last().is_some_and(|l| is_prompt(l, id))
        });
        v
    }

    /// POST inject, asserting 200 + success.
    pub fn inject(&self, id: &str, prompt: &str) -> Value {
        self.inject_json(id, json!({"prompt": prompt}))
    }

    /// POST inject with a whole body (`from`, `submit`, …), asserting 200 + success.
    pub fn inject_json(&self, id: &str, body: Value) -> Value {
        let r = self.post(&format!("/api/sessions/{id}/inject"), body);
        assert_eq!(r.0, 200, "inject into {id} failed: {}", r.1);
        assert_eq!(r.1["success"], json!(true), "{}", r.1);
        r.1
    }

    /// GET /api/sessions/:id, asserting 200.
    pub fn session(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/sessions/{id}"));
        assert_eq!(r.0, 200, "GET session {id}: {}", r.1);
        r.1
    }

    pub fn list(&self) -> Vec<Value> {
        let r = self.get("/api/sessions");
        assert_eq!(r.0, 200, "GET /api/sessions: {}", r.1);
        r.1.as_array()
            .unwrap_or_else(|| panic!("list is not an array: {}", r.1))
            .clone()
    }

    pub fn list_ids(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The rendered text screen (default 50 lines).
    pub fn screen(&self, id: &str) -> String {
        self.screen_q(id, "")
    }

    pub fn screen_q(&self, id: &str, query: &str) -> String {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let r = self.get(&format!("/api/sessions/{id}/screen{q}"));
        assert_eq!(r.0, 200, "GET screen {id}: {}", r.1);
        r.1["screen"]
            .as_str()
            .unwrap_or_else(|| panic!("screen is not a string: {}", r.1))
            .to_string()
    }

    pub fn screen_json(&self, id: &str) -> Value {
        let r = self.get(&format!("/api/sessions/{id}/screen?format=json"));
        assert_eq!(r.0, 200, "GET screen?format=json {id}: {}", r.1);
        r.1
    }

    /// Polls the text screen (with `query`) until `pred` holds; panics showing the last screen.
    pub fn wait_screen_q(
        &self,
        id: &str,
        query: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            last = self.screen_q(id, query);
            if pred(&last) {
                return last;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what} on session {id}\n--- last screen ---\n{last}\n-------------------"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_screen(&self, id: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_screen_q(id, "", what, T, pred)
    }

    /// Waits until the rendered screen has a line that is exactly `line`.
    pub fn wait_line(&self, id: &str, line: &str) -> String {
        self.wait_screen(id, &format!("a line exactly `{line}`"), |s| {
            has_line(s, line)
        })
    }

    /// Polls GET /api/sessions/:id until `pred` holds; panics showing the last object.
    pub fn wait_session(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + T;
        loop {
            let r = self.get(&format!("/api/sessions/{id}"));
            if r.0 == 200 && pred(&r.1) {
                return r.1;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for session {id}: {what}\nlast: {} {}",
                    r.0, r.1
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `active_clients` of the session is `n`.
    pub fn wait_clients(&self, id: &str, n: u64) -> Value {
        self.wait_session(id, &format!("active_clients == {n}"), |s| {
            s["active_clients"].as_u64() == Some(n)
        })
    }

    // --------------------------------------------------------------------------- CLI

    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(bin());
        cmd.args(args);
        self.apply_env(&mut cmd);
        cmd.current_dir(self.home.path()).stdin(Stdio::null());
        cmd
    }

    /// Runs the CLI against this daemon (60 s cap) and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// Like [`Daemon::cli`], with extra environment for the CLI.
    pub fn cli_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cli_command(args);
        cmd.envs(extra_env.iter().copied());
        run_capped(cmd, &format!("`telepty {}`", args.join(" ")))
    }

    // --------------------------------------------------------------------------- WebSocket

    /// Connects a WebSocket to `path` (e.g. `/api/bus`), panicking on refusal.
    pub fn ws(&self, path: &str) -> Ws {
        self.ws_with(path, &[])
            .unwrap_or_else(|(st, body)| panic!("WS upgrade {path} refused: {st} {body}"))
    }

    /// Connects a WebSocket with extra headers; a refused upgrade gives `(status, body)`.
    pub fn ws_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Ws, (u16, Value)> {
        self.assert_reachable();
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to daemon");
        ws_connect(stream, &format!("127.0.0.1:{}", self.port), path, headers)
    }

    /// A bus WebSocket that is known to be registered with the daemon (probed via HTTP publish).
    pub fn bus(&self) -> Ws {
        let mut ws = self.ws("/api/bus");
        let nonce = format!("probe-{}", std::process::id() as u128 * 1000 + now_ms());
        let deadline = Instant::now() + T;
        loop {
            let r = self.post(
                "/api/bus/publish",
                json!({"type": "telepty_test_probe", "nonce": nonce}),
            );
            assert_eq!(r.0, 200, "bus publish probe: {}", r.1);
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until {
                if let Some(WsEvent::Json(v)) = ws.recv(Duration::from_millis(100)) {
                    if v["nonce"] == json!(nonce) {
                        return ws;
                    }
                }
            }
            if Instant::now() >= deadline {
                panic!("bus WebSocket never received a published probe");
            }
        }
    }

    /// Publishes on the bus over HTTP, asserting 200.
    pub fn publish(&self, msg: Value) -> Value {
        let r = self.post("/api/bus/publish", msg);
        assert_eq!(r.0, 200, "bus publish: {}", r.1);
        r.1
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- daemon log (port {}, HOME {}) ---\n{}\n--- end of daemon log ---",
                self.port,
                self.home.path().display(),
                tail.join("\n")
            );
        }
    }
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

// ------------------------------------------------------------------------------------------
// Raw HTTP
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// `(status, json)` for [`assert_error`].
    pub fn pair(&self) -> (u16, Value) {
        (self.status, self.json())
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the answer. A `Host` header
/// in `headers` replaces the default one. The body is written on a separate thread so a server
/// that answers before reading everything (413) cannot deadlock us.
pub fn raw_http(
    stream: TcpStream,
    default_host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> RawResponse {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {default_host}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: application/json\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut w = stream.try_clone().unwrap();
    let mut payload = head.into_bytes();
    if let Some(b) = body {
        payload.extend_from_slice(b);
    }
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&payload);
        let _ = w.flush();
    });
    let resp = read_response(stream);
    let _ = writer.join();
    resp
}

fn read_response(stream: TcpStream) -> RawResponse {
    let mut r = BufReader::new(stream);
    let mut status_line = String::new();
    r.read_line(&mut status_line).expect("read status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut resp = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if status == 101 || status == 204 || status == 304 {
        return resp;
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            if r.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut buf = vec![0; n];
            if r.read_exact(&mut buf).is_err() {
                break;
            }
            resp.body.extend_from_slice(&buf);
            let mut crlf = String::new();
            let _ = r.read_line(&mut crlf);
        }
    } else if let Some(n) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut buf = vec![0; n];
        let mut got = 0;
        while got < n {
            match r.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        buf.truncate(got);
        resp.body = buf;
    } else {
        let _ = r.read_to_end(&mut resp.body);
    }
    resp
}

// ------------------------------------------------------------------------------------------
// WebSocket client
// ------------------------------------------------------------------------------------------

pub enum WsEvent {
    Json(Value),
    /// The server closed the socket: `Some((code, reason))` when a close frame arrived.
    Closed(Option<(u16, String)>),
}

pub struct Ws {
    inner: WebSocket<TcpStream>,
    /// Recent frames, for failure messages.
    seen: Vec<String>,
    closed: bool,
}

/// WebSocket handshake on an already connected stream.
pub fn ws_connect(
    stream: TcpStream,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Value)> {
    let mut req = format!("ws://{host}{path}")
        .into_client_request()
        .expect("ws request");
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    match tungstenite::client(req, stream) {
        Ok((inner, _resp)) => Ok(Ws {
            inner,
            seen: Vec::new(),
            closed: false,
        }),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let body = resp.body().clone().unwrap_or_default();
            let v = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            Err((status, v))
        }
        Err(e) => panic!("WS handshake to {path} failed: {e}"),
    }
}

impl Ws {
    pub fn send(&mut self, v: Value) {
        self.inner
            .send(Message::text(v.to_string()))
            .unwrap_or_else(|e| panic!("WS send {v}: {e}"));
    }

    /// Sends an arbitrary frame (binary, malformed, oversized). The result is returned because
    /// a server may legitimately close the connection while an oversized frame is still being
    /// written.
    pub fn send_raw(&mut self, m: Message) -> Result<(), tungstenite::Error> {
        let _ = self
            .inner
            .get_mut()
            .set_write_timeout(Some(Duration::from_secs(30)));
        self.inner.send(m)
    }

    fn note(&mut self, s: String) {
        let s = if s.chars().count() > 300 {
            format!("{}…", s.chars().take(300).collect::<String>())
        } else {
            s
        };
        self.seen.push(s);
        if self.seen.len() > 40 {
            self.seen.remove(0);
        }
    }

    pub fn seen(&self) -> String {
        self.seen.join("\n")
    }

    /// The next JSON frame or close within `timeout` (None on timeout). Pings are skipped.
    pub fn recv(&mut self, timeout: Duration) -> Option<WsEvent> {
        if self.closed {
            return Some(WsEvent::Closed(None));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self.inner.get_mut().set_read_timeout(Some(
                left.min(Duration::from_millis(100))
                    .max(Duration::from_millis(1)),
            ));
            match self.inner.read() {
                Ok(Message::Text(t)) => {
                    let t = t.as_str().to_string();
                    match serde_json::from_str(&t) {
                        Ok(v) => {
                            if !is_noise(&v) {
                                self.note(t);
                            }
                            return Some(WsEvent::Json(v));
                        }
                        Err(_) => panic!("daemon sent a non-JSON text frame: {t:?}"),
                    }
                }
                Ok(Message::Binary(b)) => {
                    self.note(format!("<binary {} bytes>", b.len()));
                    if let Ok(v) = serde_json::from_slice(&b) {
                        return Some(WsEvent::Json(v));
                    }
                }
                Ok(Message::Close(f)) => {
                    self.closed = true;
                    let f = f.map(|f| (u16::from(f.code), f.reason.as_str().to_string()));
                    self.note(format!("<close {f:?}>"));
                    return Some(WsEvent::Closed(f));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    self.closed = true;
                    self.note(format!("<error {e}>"));
                    return Some(WsEvent::Closed(None));
                }
            }
        }
    }

    /// Reads frames until one satisfies `pred`; panics on timeout or close.
    pub fn recv_until(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(WsEvent::Json(v)) if pred(&v) => return v,
                Some(WsEvent::Json(_)) => {}
                Some(WsEvent::Closed(f)) => {
                    panic!(
                        "socket closed ({f:?}) while waiting for {what}\nframes seen:\n{}",
                        self.seen()
                    )
                }
                None => panic!(
                    "timed out after {timeout:?} waiting for {what}\nframes seen:\n{}",
                    self.seen()
                ),
            }
        }
    }

    /// Reads frames until every predicate has matched some frame (in any order); returns the
    /// first match of each, in the order of `wanted`.
    pub fn recv_each(&mut self, timeout: Duration, wanted: &[Expect<'_>]) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut found: Vec<Option<Value>> = vec![None; wanted.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(WsEvent::Json(v)) => {
                    for (i, (_, pred)) in wanted.iter().enumerate() {
                        if found[i].is_none() && pred(&v) {
                            found[i] = Some(v.clone());
                        }
                    }
                }
                other => {
                    let missing: Vec<&str> = wanted
                        .iter()
                        .zip(&found)
                        .filter(|(_, f)| f.is_none())
                        .map(|((w, _), _)| *w)
                        .collect();
                    let why = if other.is_none() {
                        "timed out"
                    } else {
                        "socket closed"
                    };
                    panic!(
                        "{why} waiting for {missing:?}\nframes seen:\n{}",
                        self.seen()
                    );
                }
            }
        }
        found.into_iter().map(Option::unwrap).collect()
    }

    /// The next frame whose `type` is not a periodic daemon event (health, auto-state, probe).
    pub fn next_frame(&mut self, timeout: Duration, what: &str) -> Value {
        self.recv_until(timeout, what, |v| !is_noise(v))
    }

    /// Reads frames until the concatenated `data` of `output` frames contains `needle`.
    /// Returns that output text and every frame read.
    pub fn read_output_until(&mut self, timeout: Duration, needle: &str) -> (String, Vec<Value>) {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        let mut text = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(WsEvent::Json(v)) => {
                    if v["type"] == "output" {
                        text.push_str(
                            v["data"]
                                .as_str()
                                .unwrap_or_else(|| panic!("output.data must be a string: {v}")),
                        );
                    }
                    frames.push(v);
                    if text.contains(needle) {
                        return (text, frames);
                    }
                }
                Some(WsEvent::Closed(f)) => panic!(
                    "socket closed ({f:?}) before output contained {needle:?}\noutput so far: {text:?}"
                ),
                None => panic!(
                    "timed out after {timeout:?}: output never contained {needle:?}\noutput so far: {text:?}"
                ),
            }
        }
    }

    /// Reads (and returns) frames until the socket is closed; returns the close code and reason.
    pub fn expect_close(&mut self, timeout: Duration) -> ((u16, String), Vec<Value>) {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(WsEvent::Json(v)) => frames.push(v),
                Some(WsEvent::Closed(Some(f))) => return (f, frames),
                Some(WsEvent::Closed(None)) => {
                    panic!(
                        "socket dropped without a close frame\nframes seen:\n{}",
                        self.seen()
                    )
                }
                None => panic!(
                    "socket not closed within {timeout:?}\nframes seen:\n{}",
                    self.seen()
                ),
            }
        }
    }

    /// Collects frames for `dur` (used to prove something did *not* arrive).
    pub fn drain(&mut self, dur: Duration) -> Vec<Value> {
        let deadline = Instant::now() + dur;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(WsEvent::Json(v)) => out.push(v),
                _ => return out,
            }
        }
    }

    pub fn close(mut self) {
        let _ = self.inner.close(None);
        let _ = self.inner.flush();
        // Read until the server acknowledges, briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let _ = self
                .inner
                .get_mut()
                .set_read_timeout(Some(Duration::from_millis(100)));
            match self.inner.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    }
}

/// Periodic daemon events that tests waiting for something specific skip.
pub fn is_noise(v: &Value) -> bool {
    matches!(
        v["type"].as_str(),
        Some("session_health" | "session_auto_state" | "telepty_test_probe" | "session.idle")
    )
}

/// Concatenated `data` of the `output` frames in `frames`.
pub fn output_text(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "output")
        .filter_map(|f| f["data"].as_str())
        .collect()
}
