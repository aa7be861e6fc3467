//! `telepty allow` in a real terminal (a tmux pane) against a real daemon: transparency, injects,
//! the daemon's screen, surviving a SIGKILLed daemon, exit codes; plus `reply` and `--ref`.
//!
//! Self-contained (no `mod common`): the daemon here must be SIGKILLed and restarted on the
//! same HOME and port, which the shared harness does not offer. Every wait polls a condition
//! with a deadline; nothing sleeps blindly.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// Default deadline: two slow, loaded cores.
const T: Duration = Duration::from_secs(20);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_telepty")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn wait_for<R>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<R>) -> R {
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

fn lines_with(screen: &str, needle: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| l.contains(needle))
        .collect()
}

fn count_lines(screen: &str, line: &str) -> usize {
    screen.lines().filter(|l| l.trim_end() == line).count()
}

fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .map(str::trim_end)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

fn show(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run a command with a 60 s cap.
fn run_capped(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("command did not finish within 60 s: {cmd:?}");
        }
    }
}

// ------------------------------------------------------------------------------- daemon

/// A daemon on a private HOME and port that can be SIGKILLed and started again.
struct TestDaemon {
    home: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    agent: ureq::Agent,
}

fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("TELEPTY_")
            || k.starts_with("XDG_")
            || k.starts_with("CLAUDECODE")
            || matches!(
                k.as_str(),
                "HOST" | "PORT" | "CMUX_WORKSPACE_ID" | "KITTY_LISTEN_ON"
            )
        {
            cmd.env_remove(&k);
        }
    }
}

impl TestDaemon {
    fn start() -> TestDaemon {
        let home = tempfile::Builder::new()
            .prefix("telepty-allow-")
            .tempdir()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut d = TestDaemon {
            home,
            port: 0,
            child: None,
            agent,
        };
        let mut last = String::new();
        for _ in 0..4 {
            d.port = free_port();
            match d.launch() {
                Ok(()) => return d,
                Err(e) => last = e,
            }
        }
        panic!("daemon did not start: {last}\n{}", d.log());
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home().join("daemon.log")).unwrap_or_default()
    }

    fn env(&self, cmd: &mut Command) {
        scrub(cmd);
        cmd.env("HOME", self.home())
            .env("TELEPTY_PORT", self.port.to_string())
            .env("TELEPTY_HEALTH_POLL_MS", "200")
            .env("NO_COLOR", "1");
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home().join("daemon.log"))
            .unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["daemon", "--port", &self.port.to_string()]);
        self.env(&mut cmd);
        cmd.current_dir(self.home())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().map_err(|e| e.to_string())?);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("daemon exited during start-up: {st}"));
            }
            if self.get("/api/health").0 == 200 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("no /api/health within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        assert!(self.child.is_none());
        let mut last = String::new();
        for _ in 0..20 {
            match self.launch() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("daemon restart failed: {last}\n{}", self.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        match r {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        Self::finish(self.agent.get(self.url(path)).call())
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.agent.post(self.url(path)).send_json(&body))
    }

    fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.agent.patch(self.url(path)).send_json(&body))
    }

    fn delete(&self, path: &str) -> (u16, Value) {
        Self::finish(self.agent.delete(self.url(path)).call())
    }

    fn inject(&self, id: &str, body: Value) {
        let r = self.post(&format!("/api/sessions/{id}/inject"), body);
        assert_eq!(r.0, 200, "inject into {id}: {}", r.1);
    }

    fn type_line(&self, id: &str, text: &str) {
        self.inject(id, json!({ "prompt": text }));
    }

    fn health(&self, id: &str) -> Option<String> {
        let (st, v) = self.get(&format!("/api/sessions/{id}"));
        (st == 200).then(|| v["healthStatus"].as_str().unwrap_or("").to_string())
    }

    fn wait_connected(&self, id: &str) {
        wait_for(T, &format!("session {id} CONNECTED"), || {
            (self.health(id).as_deref() == Some("CONNECTED")).then_some(())
        });
    }

    fn ids(&self) -> Vec<String> {
        let (st, v) = self.get("/api/sessions");
        assert_eq!(st, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn screen(&self, id: &str) -> String {
        let (st, v) = self.get(&format!("/api/sessions/{id}/screen"));
        assert_eq!(st, 200, "screen {id}: {v}");
        v["screen"].as_str().unwrap_or("").to_string()
    }

    fn wait_screen(&self, id: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let s = self.screen(id);
            if pred(&s) {
                return s;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what} on {id}\n--- screen ---\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&self, id: &str, command: &str, args: &[&str], cols: u16) {
        let r = self.post(
            "/api/sessions/spawn",
            json!({"session_id": id, "command": command, "args": args, "cols": cols, "rows": 30}),
        );
        assert_eq!(r.0, 201, "spawn {id}: {}", r.1);
    }

    fn spawn_bash(&self, id: &str) {
        self.spawn(id, "bash", &["--norc", "--noprofile"], 100);
        self.wait_screen(id, "a bash prompt", |s| {
            last_line(s).starts_with(&format!("[AGENT: {id}]"))
        });
    }

    /// The CLI against this daemon, with extra environment.
    fn cli(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args);
        self.env(&mut cmd);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.current_dir(self.home());
        run_capped(cmd)
    }

    /// `env -i` assignments for a tmux pane talking to this daemon.
    fn pane_env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            ("HOME".into(), self.home().display().to_string()),
            ("TELEPTY_PORT".into(), self.port.to_string()),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        for (k, val) in extra {
            v.push((k.to_string(), val.to_string()));
        }
        v
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- daemon log (tail) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.kill9();
    }
}

// --------------------------------------------------------------------------------- tmux

/// A private tmux server with one pane running `allow-pane.sh ARGV…` under `env -i`.
struct Tmux {
    socket: String,
}

fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Tmux {
    fn start(cols: u16, rows: u16, env: &[(String, String)], cwd: &Path, argv: &[&str]) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "tpa{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut line = String::from("env -i");
        for (k, v) in env {
            line.push(' ');
            line.push_str(&sq(&format!("{k}={v}")));
        }
        line.push_str(" sh ");
        line.push_str(&sq(&fixture("allow-pane.sh").display().to_string()));
        for a in argv {
            line.push(' ');
            line.push_str(&sq(a));
        }
        let out = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
            ])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .arg("-c")
            .arg(cwd)
            .arg(&line)
            .env_remove("TMUX")
            .output()
            .expect("this test needs tmux");
        assert!(out.status.success(), "tmux new-session: {}", show(&out));
        Tmux { socket }
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let p = self.capture();
            if pred(&p) {
                return p;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what} in the tmux pane\n--- pane ---\n{p}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send_keys(&self, keys: &[&str]) {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "send-keys: {}", show(&out));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- tmux pane ---\n{}", self.capture());
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

// -------------------------------------------------------------------------------- tests

#[test]
fn allow_bridges_injects_and_survives_a_killed_daemon() {
    let mut d = TestDaemon::start();
    let work = tempfile::tempdir().unwrap();
    let tm = Tmux::start(
        120,
        30,
        &d.pane_env(&[("PS1", "W$ ")]),
        work.path(),
        &[bin(), "allow", "--id", "w", "bash", "--norc", "--noprofile"],
    );
    tm.wait("Inject allowed.", |p| p.contains("Inject allowed."));
    d.wait_connected("w");
    tm.wait("the W$ prompt", |p| last_line(p) == "W$");

    d.type_line("w", "echo one-$((40+2))");
    let pane = tm.wait("one-42 and the next prompt", |p| {
        count_lines(p, "one-42") >= 1 && last_line(p) == "W$"
    });
    assert_eq!(count_lines(&pane, "one-42"), 1, "typed once:\n{pane}");
    let want = lines_with(&pane, "one-");
    assert_eq!(
        want,
        vec!["W$ echo one-$((40+2))".to_string(), "one-42".to_string()],
        "{pane}"
    );
    d.wait_screen("w", "the same lines as the pane", |s| {
        lines_with(s, "one-") == want
    });

    // The daemon dies hard and comes back on the same HOME and port.
    d.kill9();
    d.restart();
    let t = Instant::now();
    d.wait_connected("w");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the bridge took {took:?} to reconnect (backoff starts at 1 s)"
    );
    assert_eq!(d.ids(), vec!["w".to_string()], "exactly one session w");
    // The new daemon's screen was rebuilt from the bridge's emulator.
    d.wait_screen("w", "the screen restored after the restart", |s| {
        lines_with(s, "one-") == want
    });

    d.type_line("w", "echo two-$((1+1))");
    let pane = tm.wait("two-2 and the next prompt", |p| {
        count_lines(p, "two-2") >= 1 && last_line(p) == "W$"
    });
    assert_eq!(count_lines(&pane, "two-2"), 1, "{pane}");
    assert_eq!(
        count_lines(&pane, "one-42"),
        1,
        "nothing typed twice:\n{pane}"
    );
    let want2 = lines_with(&pane, "two-");
    d.wait_screen("w", "two-2 on the daemon's screen", |s| {
        lines_with(s, "two-") == want2
    });

    d.type_line("w", "exit 3");
    tm.wait("EXIT=3 after allow", |p| count_lines(p, "EXIT=3") == 1);
    wait_for(T, "session w removed", || d.ids().is_empty().then_some(()));
    let deaths =
        std::fs::read_to_string(d.home().join(".telepty/logs/session-deaths.log")).unwrap();
    assert!(deaths.contains(" session=w exit=3 "), "{deaths}");
}

#[test]
fn allow_default_id_env_keyboard_paste_and_delete() {
    let mut d = TestDaemon::start();
    let work = tempfile::tempdir().unwrap();
    let proj = work.path().join("my proj");
    std::fs::create_dir(&proj).unwrap();
    let tm = Tmux::start(
        100,
        30,
        &d.pane_env(&[("PS1", "P$ "), ("TELEPTY_SESSION_ID", "outer")]),
        &proj,
        &[bin(), "wrap", "bash", "--norc", "--noprofile"],
    );
    let id = "my-proj-bash";
    tm.wait("Inject allowed.", |p| p.contains("Inject allowed."));
    let pane = tm.wait("the prompt", |p| last_line(p) == "P$");
    assert!(
        pane.contains("TELEPTY_SESSION_ID=outer"),
        "warns about the override:\n{pane}"
    );
    d.wait_connected(id);

    // Keys typed in the terminal reach the child, and the daemon sees the result.
    tm.send_keys(&["echo typed-$((3*3))", "Enter"]);
    tm.wait("typed-9", |p| count_lines(p, "typed-9") == 1);
    d.wait_screen(id, "typed-9", |s| count_lines(s, "typed-9") == 1);

    d.type_line(id, "echo ID=$TELEPTY_SESSION_ID");
    tm.wait("the child's TELEPTY_SESSION_ID", |p| {
        count_lines(p, &format!("ID={id}")) == 1
    });

    // Multi-line text (bash enables bracketed paste): each line runs once.
    d.type_line(id, "echo pa-$((0+1))\necho pa-$((0+2))");
    let pane = tm.wait("both pasted lines ran", |p| {
        count_lines(p, "pa-1") >= 1 && count_lines(p, "pa-2") >= 1 && last_line(p) == "P$"
    });
    assert_eq!(
        (count_lines(&pane, "pa-1"), count_lines(&pane, "pa-2")),
        (1, 1),
        "{pane}"
    );

    // Renamed: after a daemon restart the bridge re-registers under the new id.
    let r = d.patch(&format!("/api/sessions/{id}"), json!({"new_id": "renamed"}));
    assert_eq!(r.0, 200, "{}", r.1);
    // The daemon persists asynchronously; crash it only once the rename is on disk.
    let store = d.home().join(".config/aigentry-telepty/sessions.json");
    wait_for(T, "the rename persisted", || {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&store).ok()?).ok()?;
        (doc.get("renamed").is_some() && doc.get(id).is_none()).then_some(())
    });
    d.kill9();
    d.restart();
    d.wait_connected("renamed");
    assert_eq!(d.ids(), vec!["renamed".to_string()]);
    d.type_line("renamed", "echo after-$((4+4))");
    tm.wait("after-8", |p| count_lines(p, "after-8") == 1);
    let id = "renamed";

    // Deleted from outside: the bridge stops registering; the shell keeps running.
    let r = d.delete(&format!("/api/sessions/{id}"));
    assert_eq!(r.0, 200, "{}", r.1);
    tm.wait("the removal notice", |p| {
        p.contains("was removed from the daemon")
    });
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        assert!(
            d.ids().is_empty(),
            "the bridge re-registered: {:?}",
            d.ids()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tm.send_keys(&["echo still-$((2*2))", "Enter"]);
    tm.wait("the shell still runs", |p| count_lines(p, "still-4") == 1);
    tm.send_keys(&["exit 5", "Enter"]);
    tm.wait("EXIT=5", |p| count_lines(p, "EXIT=5") == 1);
    assert!(d.ids().is_empty());
}

#[test]
fn allow_auto_restart_and_exit_status() {
    let d = TestDaemon::start();
    let work = tempfile::tempdir().unwrap();
    let tm = Tmux::start(
        100,
        30,
        &d.pane_env(&[]),
        work.path(),
        &[
            bin(),
            "enable",
            "--id",
            "ar",
            "--auto-restart",
            "--",
            "sh",
            "-c",
            "echo run-$((20+1)); exit 4",
        ],
    );
    // 1 run + 5 restarts, then the failure is final and becomes allow's exit code.
    let pane = tm.wait("EXIT=4", |p| count_lines(p, "EXIT=4") == 1);
    assert_eq!(count_lines(&pane, "run-21"), 6, "{pane}");
    assert!(pane.contains("restarting in 1 s"), "{pane}");
    wait_for(T, "session ar removed", || d.ids().is_empty().then_some(()));
    let deaths =
        std::fs::read_to_string(d.home().join(".telepty/logs/session-deaths.log")).unwrap();
    let lines: Vec<&str> = deaths
        .lines()
        .filter(|l| l.contains("session=ar"))
        .collect();
    assert_eq!(lines.len(), 6, "{deaths}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("restart=yes")).count(),
        5
    );
}

// ----------------------------------------------------------------------- reply and --ref

#[test]
fn reply_answers_the_last_injector() {
    let d = TestDaemon::start();
    d.spawn_bash("orch");
    d.spawn_bash("worker");
    // The worker runs `telepty reply` itself (TELEPTY_SESSION_ID=worker is set by the daemon).
    let cmd = format!("{} reply echo replied-$((2+3))", sq(bin()));
    d.inject("worker", json!({"prompt": cmd, "from": "orch"}));
    d.wait_screen("orch", "the reply ran in orch", |s| {
        count_lines(s, "replied-5") == 1
    });
    let (_, orch) = d.get("/api/sessions/orch");
    assert_eq!(orch["lastInjectFrom"], json!("worker"), "{orch}");

    // Nobody injected into `lonely` yet.
    d.spawn_bash("lonely");
    let o = d.cli(&["reply", "hi"], &[("TELEPTY_SESSION_ID", "lonely")]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nobody has injected into lonely"),
        "{}",
        show(&o)
    );
    // Outside a session.
    let o = d.cli(&["reply", "hi"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("TELEPTY_SESSION_ID"),
        "{}",
        show(&o)
    );
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pointer(sha: &str) -> String {
    format!(
        "[context-ref] Read ~/.telepty/shared/{sha}.md and use it as the source of truth for this task."
    )
}

fn age(path: &Path, days: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn inject_ref_stores_shared_files_and_injects_the_pointer() {
    let d = TestDaemon::start();
    // `cat` on a wide terminal shows each injected line verbatim (echo + output).
    d.spawn("c1", "cat", &[], 250);
    let shared = d.home().join(".telepty/shared");
    std::fs::create_dir_all(&shared).unwrap();
    let old = shared.join("old.md");
    let fresh = shared.join("fresh.md");
    let keep_txt = shared.join("notes.txt");
    for p in [&old, &fresh, &keep_txt] {
        std::fs::write(p, "x").unwrap();
    }
    age(&old, 8);
    age(&keep_txt, 30);

    // File mode: the file's contents are shared, the message follows on the next line.
    let payload = "# Task context\nuse the v2 API\n";
    let file = d.home().join("ctx.md");
    std::fs::write(&file, payload).unwrap();
    let o = d.cli(
        &[
            "inject",
            "--ref",
            file.to_str().unwrap(),
            "c1",
            "  do it now  ",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", show(&o));
    let sha = sha256_hex(payload);
    let stored = shared.join(format!("{sha}.md"));
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), payload);
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!old.exists(), "expired .md pruned");
    assert!(fresh.exists() && keep_txt.exists(), "others kept");
    d.wait_screen("c1", "the pointer and the message", |s| {
        count_lines(s, &pointer(&sha)) >= 1 && count_lines(s, "do it now") >= 1
    });

    // Inline mode: the text is the payload; only the pointer is typed.
    let o = d.cli(
        &["inject", "--ref", "c1", "inline", "payload", "words"],
        &[],
    );
    assert!(o.status.success(), "{}", show(&o));
    let isha = sha256_hex("inline payload words");
    let istored = shared.join(format!("{isha}.md"));
    assert_eq!(
        std::fs::read_to_string(&istored).unwrap(),
        "inline payload words"
    );
    d.wait_screen("c1", "the inline pointer", |s| {
        count_lines(s, &pointer(&isha)) >= 1
    });

    // Never rewritten: the same payload leaves the existing file alone.
    age(&istored, 1);
    let before = mtime(&istored);
    let o = d.cli(
        &["inject", "--ref", "c1", "inline", "payload", "words"],
        &[],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(mtime(&istored), before);

    // TTL: 0 disables pruning; an invalid value means 7 days.
    let old2 = shared.join("old2.md");
    std::fs::write(&old2, "y").unwrap();
    age(&old2, 30);
    let o = d.cli(
        &["inject", "--ref", "c1", "ttl", "zero"],
        &[("TELEPTY_SHARED_REF_TTL_DAYS", "0")],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(old2.exists());
    let o = d.cli(
        &["inject", "--ref", "c1", "ttl", "junk"],
        &[("TELEPTY_SHARED_REF_TTL_DAYS", "soon")],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(!old2.exists());
    assert!(istored.exists(), "1 day old < 7 days");

    // Empty payload.
    let empty = d.home().join("empty.md");
    std::fs::write(&empty, "  \n").unwrap();
    let o = d.cli(&["inject", "--ref", empty.to_str().unwrap(), "c1"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Shared reference content cannot be empty."),
        "{}",
        show(&o)
    );

    // Another machine cannot read our shared directory: refused before anything is sent.
    let t = Instant::now();
    let o = d.cli(&["inject", "--ref", "c1@192.0.2.1", "remote", "text"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--ref cannot be used with c1@192.0.2.1"),
        "{}",
        show(&o)
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // ... while this machine addressed as id@127.0.0.1:port is fine.
    let local = format!("c1@127.0.0.1:{}", d.port);
    let o = d.cli(&["inject", "--ref", &local, "loopback", "ok"], &[]);
    assert!(o.status.success(), "{}", show(&o));

    // broadcast --ref FILE message
    let o = d.cli(
        &[
            "broadcast",
            "--ref",
            file.to_str().unwrap(),
            "broadcast",
            "msg",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", show(&o));
    d.wait_screen("c1", "the broadcast message", |s| {
        count_lines(s, "broadcast msg") >= 1
    });
}
