//! Lifecycle and timers (API.md §13), auto-report (§6.6), register replacement (§4), state
//! reports (§5) and the daemon singleton (§14).

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[test]
fn wrapped_sessions_go_stale_and_are_cleaned_up() {
    let d = Daemon::start_with(
        &[
            ("TELEPTY_SESSION_STALE_SECONDS", "1"),
            ("TELEPTY_SESSION_CLEANUP_SECONDS", "3"),
        ],
        None,
    );
    let mut bus = d.bus();
    d.spawn("keeper", "sleep", &["600"]);
    let r = d.post("/api/sessions/register", json!({"session_id": "st"}));
    assert_eq!(r.0, 201, "{}", r.1);

    let s = d.wait_session("st", "STALE", |s| s["healthStatus"] == "STALE");
    assert_eq!(s["healthReason"], json!("OWNER_DISCONNECTED_STALE"), "{s}");
    assert_error(
        &d.post("/api/sessions/st/inject", json!({"prompt": "x"})),
        410,
        "STALE",
        Some("Session is stale and awaiting cleanup."),
    );
    let ev = bus.recv_until(T, "session_stale", |v| {
        v["type"] == "session_stale" && v["session_id"] == "st"
    });
    assert_eq!(ev["healthStatus"], json!("STALE"), "{ev}");

    wait_until(T, "stale session removed", || {
        d.get("/api/sessions/st").0 == 404
    });
    let ev = bus.recv_until(T, "session_cleanup", |v| {
        v["type"] == "session_cleanup" && v["session_id"] == "st"
    });
    assert_eq!(ev["reason"], json!("STALE_DISCONNECTED"), "{ev}");
    // Spawned sessions are never reaped.
    assert_eq!(d.list_ids(), vec!["keeper".to_string()]);
}

#[test]
fn auto_report_reaches_the_injecting_session() {
    let d = Daemon::start_with(&[("TELEPTY_AUTO_REPORT_IDLE_SECONDS", "1")], None);
    let r = d.post("/api/sessions/register", json!({"session_id": "src"}));
    assert_eq!(r.0, 201, "{}", r.1);
    let mut src = d.ws("/api/sessions/src?owner=1");
    src.send(json!({"type": "ready"}));
    d.wait_session("src", "src ready", |s| s["ready"] == json!(true));

    let report = regex::Regex::new(
        r"^TASK_COMPLETE: (\S+) is now idle after processing inject \((\d+\.\d)s\)$",
    )
    .unwrap();

    // Spawned target: reported once it has been idle for the configured seconds.
    d.spawn_bash("tgt");
    let r = d.post(
        "/api/sessions/tgt/inject",
        json!({"prompt": "echo ar-$((9*9))", "from": "src"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    d.wait_line("tgt", "ar-81");
    let f = src.recv_until(T, "TASK_COMPLETE for tgt", |v| {
        v["type"] == "inject" && v["data"] != "\r"
    });
    let text = f["data"].as_str().unwrap();
    let caps = report
        .captures(text)
        .unwrap_or_else(|| panic!("auto-report text is wrong: {text:?}"));
    assert_eq!(&caps[1], "tgt");
    assert!(caps[2].parse::<f64>().unwrap() >= 1.0, "{text}");
    let f = src.recv_until(T, "Enter after the report", |v| v["type"] == "inject");
    assert_eq!(f["data"], json!("\r"), "{f}");

    // Wrapped target: reported on its owner's next `ready`.
    d.post("/api/sessions/register", json!({"session_id": "wt"}));
    let mut wt = d.ws("/api/sessions/wt?owner=1");
    d.wait_session("wt", "owner connected", |s| {
        s["healthStatus"] == "CONNECTED"
    });
    let r = d.post(
        "/api/sessions/wt/inject",
        json!({"prompt": "do it", "from": "src"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    wt.recv_until(T, "inject into wt", |v| {
        v["type"] == "inject" && v["data"] == "do it"
    });
    wt.send(json!({"type": "ready"}));
    let f = src.recv_until(T, "TASK_COMPLETE for wt", |v| {
        v["type"] == "inject" && v["data"] != "\r"
    });
    let text = f["data"].as_str().unwrap();
    let caps = report
        .captures(text)
        .unwrap_or_else(|| panic!("auto-report text is wrong: {text:?}"));
    assert_eq!(&caps[1], "wt");
}

#[test]
fn register_with_a_shared_base_alias_emits_replaced() {
    let d = Daemon::start();
    let mut bus = d.bus();
    assert_eq!(
        d.post("/api/sessions/register", json!({"session_id": "agent-1"}))
            .0,
        201
    );
    assert_eq!(
        d.post("/api/sessions/register", json!({"session_id": "agent-2"}))
            .0,
        201
    );
    let ev = bus.recv_until(T, "session.replaced", |v| v["type"] == "session.replaced");
    assert_eq!(ev["old_id"], json!("agent-1"), "{ev}");
    assert_eq!(ev["new_id"], json!("agent-2"), "{ev}");
    assert_eq!(ev["alias"], json!("agent"), "{ev}");
    // The alias resolves to the new session; exact ids still win.
    assert_eq!(d.session("agent")["id"], json!("agent-2"));
    assert_eq!(d.session("agent-1")["id"], json!("agent-1"));
    // Multicast takes exact ids only.
    let r = d.post(
        "/api/sessions/multicast/inject",
        json!({"session_ids": ["agent"], "prompt": "x"}),
    );
    assert_eq!(
        r.1["results"]["failed"][0]["code"],
        json!("SESSION_NOT_FOUND"),
        "{}",
        r.1
    );
}

#[test]
fn state_reports_and_classifier() {
    let d = Daemon::start();
    let mut bus = d.bus();
    d.spawn_bash("sr");
    let (st, s) = d.get("/api/sessions/sr/state");
    assert_eq!(st, 200, "{s}");
    assert_eq!(s["session_id"], json!("sr"), "{s}");
    assert_eq!(s["self_report"], json!(null), "{s}");
    let state = s["auto"]["state"]
        .as_str()
        .unwrap_or_else(|| panic!("auto.state: {s}"));
    assert!(
        ["running", "idle", "thinking", "stuck", "waiting_input"].contains(&state),
        "{s}"
    );

    // A first report without seq gets previous + 1 = 1 (API.md §5).
    let r = d.post("/api/sessions/sr/state", json!({"phase": "starting"}));
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["semantic"]["seq"], json!(1), "{}", r.1);
    let r = d.post(
        "/api/sessions/sr/state",
        json!({"phase": "testing", "current_task": "t1", "needs_input": false, "thread_id": "th-1", "seq": 4}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["success"], json!(true), "{}", r.1);
    assert_eq!(r.1["semantic"]["seq"], json!(4), "{}", r.1);
    assert_eq!(r.1["semantic"]["source"], json!("self_report"), "{}", r.1);
    let ev = bus.recv_until(T, "session_state_report (testing)", |v| {
        v["type"] == "session_state_report" && v["semantic"]["phase"] == "testing"
    });
    assert_eq!(ev["session_id"], json!("sr"), "{ev}");
    assert_eq!(ev["semantic"]["phase"], json!("testing"), "{ev}");
    let s = d.get("/api/sessions/sr/state").1;
    assert_eq!(s["self_report"]["phase"], json!("testing"), "{s}");
    assert!(s["last_state_report_at"].is_string(), "{s}");
    assert_eq!(
        d.session("sr")["transport"]["last_thread_id"],
        json!("th-1")
    );

    // Through the bus: applied, seq defaults to previous + 1.
    let r = d.publish(json!({"type": "session_state_report", "session_id": "sr", "phase": "done"}));
    assert_eq!(r["success"], json!(true), "{r}");
    assert_eq!(r["event"]["semantic"]["phase"], json!("done"), "{r}");
    assert_eq!(r["event"]["semantic"]["seq"], json!(5), "{r}");
    let r = d.post(
        "/api/bus/publish",
        json!({"type": "session_state_report", "session_id": "ghost", "phase": "x"}),
    );
    assert_error(&r, 404, "SESSION_NOT_FOUND", None);

    // The classifier sees a waiting_input prompt.
    d.inject("sr", "read -p 'Continue? [Y/n] ' ans");
    wait_until(T, "auto state waiting_input", || {
        d.get("/api/sessions/sr/state").1["auto"]["state"] == json!("waiting_input")
    });
}

#[test]
fn a_second_daemon_for_the_same_home_or_port_exits() {
    let d = Daemon::start();
    // Same HOME: the state file names a live daemon.
    let o = d.cli(&["daemon", "--port", &d.port.to_string()]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("telepty daemon already running"), "{out}");

    // Another HOME, same port: a telepty daemon answers there.
    let other = tempfile::tempdir().unwrap();
    let o = d
        .cli_command(&["daemon", "--port", &d.port.to_string()])
        .env("HOME", other.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "telepty daemon already running on port {}",
            d.port
        )),
        "{out}"
    );

    // A port held by something else: exit 1.
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = foreign.local_addr().unwrap().port();
    // Answer the health probe with garbage so it is clearly not a telepty daemon.
    std::thread::spawn(move || {
        for s in foreign.incoming().flatten() {
            use std::io::Write;
            let mut s = s;
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let other2 = tempfile::tempdir().unwrap();
    let mut cmd = d.cli_command(&["daemon", "--port", &port.to_string()]);
    cmd.env("HOME", other2.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + T;
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a daemon started on a busy port did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let o = child.wait_with_output().unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "Port {port} is already in use by another process."
        )),
        "{out}"
    );
}

#[test]
fn owner_session_died_frame_becomes_session_exit() {
    let d = Daemon::start();
    let mut bus = d.bus();
    let mut owner = d.ws("/api/sessions/bridge1");
    d.wait_session("bridge1", "auto-created", |s| {
        s["healthStatus"] == "CONNECTED"
    });
    owner.send(json!({"type": "session_restarted", "session_id": "bridge1"}));
    owner.send(json!({
        "type": "session_died", "session_id": "bridge1", "exitCode": 3, "signal": null,
        "duration": 12, "crashCount": 1, "willRestart": false, "timestamp": "2026-01-01T00:00:00.000Z"
    }));
    let ev = bus.recv_until(T, "session_exit", |v| v["type"] == "session_exit");
    assert_eq!(ev["session_id"], json!("bridge1"), "{ev}");
    assert_eq!(ev["exit_code"], json!(3), "{ev}");
    assert_eq!(ev["signal"], json!(null), "{ev}");
}

// ------------------------------------------------------------------------------------------
// Durable sessions: holders keep them alive across daemon crashes, restarts and upgrades
// ------------------------------------------------------------------------------------------

/// A static full-screen program: the alternate screen with ten fixed rows, then it waits.
const FULLSCREEN: &str = "import sys,time\n\
sys.stdout.write('\\x1b[?1049h\\x1b[2J')\n\
for i in range(10): sys.stdout.write('\\x1b[%d;3H\\x1b[1;3%dmrow %d %s\\x1b[0m' % (i+2, i%8, i, '#'*i))\n\
sys.stdout.write('\\x1b[12;1Hfullscreen-ready'); sys.stdout.flush(); time.sleep(600)\n";

/// The highest `line N` in `text`.
fn last_counter(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("line ")?.parse::<u64>().ok())
        .max()
}

#[test]
fn sessions_survive_a_daemon_sigkill_with_pid_screen_and_output() {
    let mut d = Daemon::start();
    let bashes = ["b1", "b2", "b3", "b4", "b5", "b6", "b7"];
    for id in bashes {
        d.spawn_bash(id);
        d.inject(id, &format!("echo mark-{id}-$((6*7))"));
        d.wait_line(id, &format!("mark-{id}-42"));
    }
    // Two colour loops that keep printing while no daemon runs, and count into a file so the
    // test can wait for output produced during the outage.
    let home = d.home_path().display().to_string();
    for id in ["loop1", "loop2"] {
        let script = format!(
            "i=0; while :; do printf '\\e[3%dmline %d\\e[0m\\n' $((i%8)) $i; echo $i > {home}/{id}.n; i=$((i+1)); sleep 0.02; done"
        );
        d.spawn(id, "bash", &["-c", &script]);
    }
    d.spawn("full", "python3", &["-c", FULLSCREEN]);
    d.wait_line("full", "fullscreen-ready");
    let ids: Vec<&str> = bashes
        .iter()
        .copied()
        .chain(["loop1", "loop2", "full"])
        .collect();
    let pids: Vec<Value> = ids.iter().map(|id| d.session(id)["pid"].clone()).collect();
    let screens: Vec<String> = ["b1", "full"].iter().map(|id| d.screen(id)).collect();
    let count = |id: &str| -> u64 {
        std::fs::read_to_string(format!("{home}/{id}.n"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_until(T, "loop1 printed", || count("loop1") > 5);

    d.kill9();
    // Output produced while nobody reads the PTY: at least 50 more lines.
    let at_kill = count("loop1");
    wait_until(T, "loop1 printing with no daemon", || {
        count("loop1") > at_kill + 50
    });
    d.restart();

    // Every session listed once, with the same process.
    let mut listed = d.list_ids();
    listed.sort();
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listed, want);
    for (id, pid) in ids.iter().zip(&pids) {
        let s = d.session(id);
        assert_eq!(&s["pid"], pid, "{id}: {s}");
        assert_eq!(s["healthStatus"], json!("CONNECTED"), "{id}: {s}");
    }
    // Static screens read back identical: a shell and a full-screen program.
    assert_eq!(d.screen("b1"), screens[0], "b1's screen changed");
    assert_eq!(
        d.screen("full"),
        screens[1],
        "the full-screen program's screen changed"
    );
    assert_eq!(d.screen_json("full")["alt_screen"], json!(true));
    // The output of the outage is there, without a gap.
    let raw = d.screen_q("loop1", "raw=1&lines=10000");
    let numbers: Vec<u64> = raw
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("\u{1b}[")
                .and_then(|r| r.split_once('m'))
        })
        .filter_map(|(_, rest)| {
            rest.strip_prefix("line ")?
                .split('\u{1b}')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let from = numbers
        .iter()
        .position(|n| *n == at_kill)
        .unwrap_or_else(|| {
            panic!("line {at_kill} (printed as the daemon died) is missing: {numbers:?}")
        });
    for w in numbers[from..].windows(2) {
        assert_eq!(w[1], w[0] + 1, "a gap in loop1's output: {numbers:?}");
    }
    assert!(numbers.last().copied().unwrap_or(0) > at_kill + 50);
    // Injects work at once.
    d.inject("b2", "echo after-$((40+2))");
    d.wait_line("b2", "after-42");
    // Screen follows new output after adoption.
    let before = last_counter(&d.screen("loop2")).unwrap_or(0);
    d.wait_screen("loop2", "new loop2 output", |s| {
        last_counter(s).is_some_and(|n| n > before)
    });
}

#[test]
fn a_session_that_exits_while_no_daemon_runs_reports_its_code() {
    let mut d = Daemon::start();
    d.spawn("quick", "bash", &["-c", "read -r x; echo bye-$x; exit 7"]);
    d.wait_session("quick", "running", |s| {
        s["healthStatus"] == json!("CONNECTED")
    });
    let pid = d.session("quick")["pid"].clone();
    d.stop(); // SIGTERM detaches; the session lives on in its holder
    let holders = d.holder_pids();
    assert_eq!(holders.len(), 1, "one holder: {holders:?}");
    // Make it exit with nobody attached: write to its tty through /proc (the holder's PTY).
    let fd_dir = format!("/proc/{}/fd/0", pid.as_u64().unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fd_dir)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b""))
        .ok();
    // Typing into the slave from outside is not input; use the tty's input queue instead.
    let tty = std::fs::read_link(&fd_dir).expect("the child's tty");
    type_into_tty(&tty, "now\n");
    wait_until(T, "the child exits", || {
        !std::path::Path::new(&format!("/proc/{}", pid.as_u64().unwrap())).exists()
    });
    d.restart();
    let s = d.wait_session("quick", "exitCode 7", |s| s["exitCode"] == json!(7));
    assert_eq!(s["pid"], pid, "{s}");
    assert!(
        d.screen("quick").contains("bye-now"),
        "{}",
        d.screen("quick")
    );
    // Deleting it ends its holder.
    d.delete("/api/sessions/quick");
    wait_until(T, "the holder exits", || d.holder_pids().is_empty());
}

/// Push `text` into a terminal's input queue (TIOCSTI), as if typed on it.
fn type_into_tty(tty: &std::path::Path, text: &str) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(tty)
        .unwrap_or_else(|e| panic!("open {}: {e}", tty.display()));
    for b in text.bytes() {
        // SAFETY: TIOCSTI reads one byte from a valid pointer.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                libc::TIOCSTI,
                &b as *const u8,
            )
        };
        assert_eq!(rc, 0, "TIOCSTI: {}", std::io::Error::last_os_error());
    }
}

#[test]
fn replace_hands_live_sessions_to_a_new_daemon() {
    // The "old version": a copy of the binary, run from its own directory (so its sessions'
    // holders are that copy too), deleted before the upgrade as a package manager would.
    let old = tempfile::tempdir().unwrap();
    let old_exe = old.path().join("telepty");
    std::fs::copy(bin(), &old_exe).unwrap();
    let mut d = Daemon::start();
    d.stop();
    d.set_exe(Some(old_exe.clone()));
    d.restart();
    d.spawn_bash("r1");
    d.inject("r1", "echo before-$((1+1))");
    d.wait_line("r1", "before-2");
    let pid = d.session("r1")["pid"].clone();
    let old_daemon = d.pid();
    let holders = d.holder_pids();
    assert_eq!(holders.len(), 1);
    let holder_exe = std::fs::read_link(format!("/proc/{}/exe", holders[0])).unwrap();
    assert_eq!(holder_exe, old_exe, "the old version's holder");
    std::fs::remove_file(&old_exe).unwrap();
    d.replace();
    assert_ne!(d.pid(), old_daemon);
    let s = d.session("r1");
    assert_eq!(s["pid"], pid, "{s}");
    assert!(d.screen("r1").contains("before-2"));
    d.inject("r1", "echo after-$((2+2))");
    d.wait_line("r1", "after-4");
    assert_eq!(
        d.holder_pids(),
        holders,
        "the same holder, now driven by the new daemon"
    );
}

#[test]
fn stop_sessions_ends_them_and_kill_ends_the_whole_session() {
    let mut d = Daemon::start();
    // An interactive shell whose background job sits in its own process group and ignores
    // SIGHUP: killing the session must still end it.
    d.spawn_bash("k1");
    d.inject("k1", "nohup sleep 300 > /dev/null 2>&1 & echo job-$!");
    let job_pid = |s: &str| {
        s.lines()
            .find_map(|l| l.trim().strip_prefix("job-")?.parse::<u32>().ok())
    };
    let screen = d.wait_screen("k1", "the job's pid", |s| job_pid(s).is_some());
    let job = job_pid(&screen).unwrap();
    let shell = d.session("k1")["pid"].as_u64().unwrap() as u32;
    assert_ne!(
        pgid_of(job),
        pgid_of(shell),
        "the job has its own process group"
    );
    d.delete("/api/sessions/k1");
    wait_until(T, "the shell and its nohup job end", || {
        !alive(job) && !alive(shell)
    });

    // `--stop-sessions` on SIGTERM: everything ends with the daemon.
    d.spawn_bash("k2");
    let k2 = d.session("k2")["pid"].as_u64().unwrap() as u32;
    d.stop();
    assert!(alive(k2), "a plain SIGTERM leaves sessions running");
    d.set_daemon_args(&["--stop-sessions"]);
    d.restart();
    assert_eq!(d.list_ids(), vec!["k2"]);
    d.stop();
    wait_until(T, "k2 ends with a --stop-sessions daemon", || !alive(k2));
    wait_until(T, "no holder left", || d.holder_pids().is_empty());
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| {
            !st.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn pgid_of(pid: u32) -> Option<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    st.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

#[test]
fn two_engines_racing_to_adopt_one_holder_exactly_one_wins() {
    let mut d = Daemon::start();
    d.spawn("race", "sleep", &["600"]);
    d.kill9();
    let sockets = telepty::holder::client::scan(&d.runtime_dir());
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let path = sockets[0].clone();
    // Every racer keeps what it got (an attachment holds the holder) until all have answered.
    let answered = std::sync::Barrier::new(4);
    let results: Vec<Result<u32, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (p, answered) = (path.clone(), &answered);
                s.spawn(move || {
                    let got = telepty::holder::client::adopt(&p);
                    answered.wait();
                    got.map(|a| a.child_pid).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.contains("held by another engine")),
        "{results:?}"
    );
    // The racers are gone (their sockets closed): a daemon adopts it.
    d.restart();
    assert_eq!(d.list_ids(), vec!["race"]);
}

#[test]
fn stale_foreign_and_dead_holders_are_handled_with_a_message() {
    let mut d = Daemon::start();
    d.spawn("ok1", "sleep", &["600"]);
    d.spawn("dies", "sleep", &["600"]);
    let dies_pid = d.session("dies")["pid"].as_u64().unwrap() as u32;
    d.kill9();
    let run = d.runtime_dir();
    // A stale socket (nobody listens), a foreign file, a socket with a foreign name.
    let stale = run.join("00000000deadbeef.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    std::fs::write(run.join("notes.txt"), "not ours").unwrap();
    let foreign = run.join("other.sock");
    let _keep = std::os::unix::net::UnixListener::bind(&foreign).unwrap();
    // The holder of "dies" is killed while no daemon runs: its child gets a hangup.
    let holder_of_dies = d
        .holder_pids()
        .into_iter()
        .find(|h| {
            std::fs::read_to_string(format!("/proc/{dies_pid}/stat"))
                .ok()
                .and_then(|st| {
                    st.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(*h)
        })
        .expect("the holder of `dies`");
    unsafe {
        libc::kill(holder_of_dies as i32, libc::SIGKILL);
    }
    d.restart();
    assert_eq!(d.list_ids(), vec!["ok1"]);
    assert!(!stale.exists(), "the stale socket is removed");
    assert!(
        run.join("notes.txt").exists() && foreign.exists(),
        "foreign files are left alone"
    );
    let log = d.log();
    assert!(log.contains("stale holder socket"), "{log}");
}

#[test]
fn replace_types_queued_injects_before_handing_over() {
    let mut d = Daemon::start();
    d.spawn_bash("q1");
    // Five injects queued back to back; each waits for the previous one's output to settle,
    // so most are still queued when the upgrade starts.
    for i in 1..=5 {
        d.inject("q1", &format!("echo queued-$((100+{i}))"));
    }
    d.replace();
    for i in 1..=5 {
        d.wait_line("q1", &format!("queued-{}", 100 + i));
    }
    let screen = d.screen("q1");
    for i in 1..=5 {
        assert_eq!(
            count_lines(&screen, &format!("queued-{}", 100 + i)),
            1,
            "each inject exactly once:\n{screen}"
        );
    }
}
