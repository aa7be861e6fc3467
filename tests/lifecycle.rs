//! Lifecycle and timers (API.md §13), auto-report (§6.6), register replacement (§4), state
//! reports (§5) and the daemon singleton (§14).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;

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

    let r = d.post(
        "/api/sessions/sr/state",
        json!({"phase": "testing", "current_task": "t1", "needs_input": false, "thread_id": "th-1", "seq": 4}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["success"], json!(true), "{}", r.1);
    assert_eq!(r.1["semantic"]["seq"], json!(4), "{}", r.1);
    assert_eq!(r.1["semantic"]["source"], json!("self_report"), "{}", r.1);
    let ev = bus.recv_until(T, "session_state_report", |v| {
        v["type"] == "session_state_report"
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
