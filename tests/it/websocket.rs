//! Session WebSockets (API.md §11.2, §17 attach-snapshot): wrapped owner/viewer flows and
//! viewers of spawned sessions.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn assert_inject(frame: &Value, data: &str, raw: bool) {
    assert_eq!(
        frame["type"],
        json!("inject"),
        "expected an inject frame, got {frame}"
    );
    assert_eq!(frame["data"], json!(data), "{frame}");
    if raw {
        assert_eq!(frame["raw"], json!(true), "{frame}");
    } else {
        assert!(
            frame.get("raw").is_none_or(|r| r == &json!(false)),
            "unexpected raw flag: {frame}"
        );
    }
}

#[test]
fn wrapped_owner_and_viewer_flows() {
    let d = Daemon::start();
    let mut bus = d.bus();
    let r = d.post("/api/sessions/register", json!({"session_id": "w"}));
    assert_eq!(r.0, 201, "{}", r.1);

    let mut owner = d.ws("/api/sessions/w?owner=1");
    let s = d.wait_session("w", "owner connected", |s| s["healthStatus"] == "CONNECTED");
    assert_eq!(s["healthReason"], json!("OWNER_CONNECTED_NOT_READY"), "{s}");
    assert_eq!(s["ready"], json!(false), "{s}");
    assert_eq!(s["active_clients"], json!(1), "{s}");

    owner.send(json!({"type": "ready"}));
    let s = d.wait_session("w", "ready", |s| s["ready"] == json!(true));
    assert_eq!(s["healthReason"], json!("OWNER_CONNECTED"), "{s}");
    let ev = bus.recv_until(T, "session_ready", |v| {
        v["type"] == "session_ready" && v["session_id"] == "w"
    });
    assert!(ev["timestamp"].is_string(), "{ev}");

    owner.send(json!({"type": "output", "data": "hello from owner\r\n"}));
    // GET screen of a wrapped session renders the owner's output.
    d.wait_line("w", "hello from owner");

    let mut viewer = d.ws("/api/sessions/w?snapshot=1");
    let snap = viewer.next_frame(T, "snapshot frame");
    assert_eq!(
        snap["type"],
        json!("snapshot"),
        "first frame must be the snapshot: {snap}"
    );
    assert!(
        snap["data"]
            .as_str()
            .is_some_and(|s| s.contains("hello from owner")),
        "{snap}"
    );
    assert!(
        snap["cols"].is_u64() && snap["rows"].is_u64() && snap["generation"].is_u64(),
        "{snap}"
    );
    d.wait_clients("w", 2);

    owner.send(json!({"type": "output", "data": "live-1\r\n"}));
    let (text, _) = viewer.read_output_until(T, "live-1");
    assert!(
        !text.contains("hello from owner"),
        "output already in the snapshot was repeated: {text:?}"
    );

    // HTTP inject: text and Enter are separate frames to the owner; viewers are notified.
    let r = d.inject("w", "hi");
    let inject_id = r["inject_id"].clone();
    assert_inject(&owner.next_frame(T, "inject text"), "hi", false);
    assert_inject(&owner.next_frame(T, "inject enter"), "\r", false);
    let note = viewer.recv_until(T, "inject_notification", |v| {
        v["type"] == "inject_notification"
    });
    assert_eq!(note["inject_id"], inject_id, "{note}");
    assert_eq!(note["session_id"], json!("w"), "{note}");
    assert_eq!(note["content"], json!("hi"), "{note}");

    // no_enter: text only.
    let r = d.post(
        "/api/sessions/w/inject",
        json!({"prompt": "solo", "no_enter": true}),
    );
    assert_eq!(r.1["submit"], json!("skipped"), "{}", r.1);
    assert_inject(&owner.next_frame(T, "no_enter text"), "solo", false);

    // A viewer's resize request is forwarded to the owner unchanged.
    viewer.send(json!({"type": "resize", "cols": 77, "rows": 22}));
    let f = owner.next_frame(T, "viewer resize");
    assert_eq!(f, json!({"type": "resize", "cols": 77, "rows": 22}));

    // Viewer keystrokes go to the owner raw, at once.
    viewer.send(json!({"type": "input", "data": "x"}));
    assert_inject(&owner.next_frame(T, "viewer input"), "x", true);

    // Keys and resize are forwarded to the owner.
    let r = d.post("/api/sessions/w/keys", json!({"keys": ["ctrl+c"]}));
    assert_eq!(r.0, 200, "{}", r.1);
    assert_inject(&owner.next_frame(T, "keys"), "\u{3}", true);
    let r = d.post("/api/sessions/w/resize", json!({"cols": 91, "rows": 21}));
    assert_eq!(r.0, 200, "{}", r.1);
    let f = owner.next_frame(T, "resize request");
    assert_eq!(
        (f["type"].clone(), f["cols"].clone(), f["rows"].clone()),
        (json!("resize"), json!(91), json!(21)),
        "{f}"
    );
    // The owner's size report resizes the emulator.
    owner.send(json!({"type": "resize", "cols": 91, "rows": 21}));
    wait_until(T, "emulator follows the owner's size", || {
        d.screen_json("w")["cols"] == json!(91)
    });

    // A second owner=1 socket replaces the first.
    let mut owner2 = d.ws("/api/sessions/w?owner=1");
    let ((code, reason), _) = owner.expect_close(T);
    assert_eq!((code, reason.as_str()), (4001, "Owner replaced"));
    d.inject("w", "to-new-owner");
    assert_inject(
        &owner2.next_frame(T, "inject to the new owner"),
        "to-new-owner",
        false,
    );
    assert_inject(&owner2.next_frame(T, "enter to the new owner"), "\r", false);

    // Owner disconnect: DISCONNECTED, inject refused with 503.
    owner2.close();
    let s = d.wait_session("w", "owner disconnected", |s| {
        s["healthStatus"] == "DISCONNECTED"
    });
    assert_eq!(s["healthReason"], json!("OWNER_DISCONNECTED"), "{s}");
    assert_eq!(s["ready"], json!(false), "{s}");
    assert!(s["lastDisconnectedAt"].is_string(), "{s}");
    let ev = bus.recv_until(T, "session_disconnect", |v| {
        v["type"] == "session_disconnect" && v["session_id"] == "w"
    });
    assert_eq!(ev["healthStatus"], json!("DISCONNECTED"), "{ev}");
    assert_error(
        &d.post("/api/sessions/w/inject", json!({"prompt": "x"})),
        503,
        "DISCONNECTED",
        Some("Session owner is disconnected."),
    );

    // Owner back: reconnect event; rename is announced to the owner.
    let mut owner3 = d.ws("/api/sessions/w?owner=1");
    bus.recv_until(T, "session_reconnect", |v| {
        v["type"] == "session_reconnect" && v["session_id"] == "w"
    });
    let r = d.patch("/api/sessions/w", json!({"new_id": "wr"}));
    assert_eq!(r.0, 200, "{}", r.1);
    let f = owner3.next_frame(T, "rename frame");
    assert_eq!(f, json!({"type": "rename", "old_id": "w", "new_id": "wr"}));

    // Delete closes every socket with 1000 `Session destroyed`.
    let r = d.delete("/api/sessions/wr");
    assert_eq!(r, (200, json!({"success": true, "status": "closing"})));
    for (name, ws) in [("owner", &mut owner3), ("viewer", &mut viewer)] {
        let ((code, reason), _) = ws.expect_close(T);
        assert_eq!(
            (code, reason.as_str()),
            (1000, "Session destroyed"),
            "{name}"
        );
    }
    assert_error(&d.get("/api/sessions/wr"), 404, "SESSION_NOT_FOUND", None);
}

#[test]
fn unknown_session_socket_auto_creates_a_wrapped_session() {
    let d = Daemon::start();
    let _ws = d.ws("/api/sessions/auto1");
    let s = d.wait_session("auto1", "auto-created and owned", |s| {
        s["healthStatus"] == "CONNECTED"
    });
    assert_eq!(s["type"], json!("wrapped"), "{s}");
    assert_eq!(s["command"], json!("wrapped"), "{s}");
    assert_eq!(s["active_clients"], json!(1), "{s}");
    // No output yet: the empty screen object.
    assert_eq!(
        d.get("/api/sessions/auto1/screen"),
        (
            200,
            json!({"session_id": "auto1", "screen": "", "lines": 0, "total_lines": 0, "raw": false, "generation": 0})
        )
    );

    // Bad paths are refused before anything is created.
    match d.ws_with("/api/sessions/a..b", &[]) {
        Ok(_) => panic!("invalid id accepted"),
        Err((st, body)) => {
            assert_eq!(st, 400, "{body}");
            assert_eq!(body["code"], json!("INVALID_SESSION_ID"), "{body}");
        }
    }
    for p in ["/api/nope", "/api/sessions/auto1/extra"] {
        match d.ws_with(p, &[]) {
            Ok(_) => panic!("upgrade on {p} accepted"),
            Err((st, body)) => assert_eq!(st, 404, "{p}: {body}"),
        }
    }
    let mut ids = d.list_ids();
    ids.sort();
    assert_eq!(ids, vec!["auto1".to_string()]);
}

#[test]
fn spawned_session_viewer_snapshot_input_resize_and_exit() {
    let d = Daemon::start();
    d.spawn_bash("sx");
    d.inject("sx", "echo snap-marker");
    d.wait_line("sx", "snap-marker");
    let generation = d.screen_json("sx")["generation"].as_u64().unwrap();

    let mut viewer = d.ws("/api/sessions/sx?snapshot=1");
    let snap = viewer.next_frame(T, "snapshot");
    assert_eq!(snap["type"], json!("snapshot"), "{snap}");
    assert!(
        snap["data"]
            .as_str()
            .is_some_and(|s| s.contains("snap-marker")),
        "{snap}"
    );
    assert_eq!(
        (snap["cols"].clone(), snap["rows"].clone()),
        (json!(100), json!(30)),
        "{snap}"
    );
    assert!(
        snap["generation"].as_u64().is_some_and(|g| g >= generation),
        "{snap}"
    );
    d.wait_clients("sx", 1);

    viewer.send(json!({"type": "input", "data": "echo ws$((2+3))in\r"}));
    viewer.read_output_until(T, "ws5in");
    d.wait_line("sx", "ws5in");

    viewer.send(json!({"type": "resize", "cols": 90, "rows": 25}));
    d.wait_session("sx", "resized to 90x25", |s| {
        s["cols"] == json!(90) && s["rows"] == json!(25)
    });
    d.inject("sx", r#"echo "tty=$(tput cols)x$(tput lines)""#);
    d.wait_line("sx", "tty=90x25");

    viewer.send(json!({"type": "input", "data": "exit\r"}));
    let ((code, reason), _) = viewer.expect_close(T);
    assert_eq!((code, reason.as_str()), (1000, "Session exited"));
    let s = d.wait_session("sx", "exit recorded", |s| s["exitCode"] == json!(0));
    assert_eq!(s["healthReason"], json!("PTY_EXITED"), "{s}");

    // Attaching to an exited session: snapshot, then closed with `Session exited`.
    let mut late = d.ws("/api/sessions/sx?snapshot=1");
    let ((code, reason), frames) = late.expect_close(T);
    assert_eq!((code, reason.as_str()), (1000, "Session exited"));
    assert!(
        frames.iter().any(|f| f["type"] == "snapshot"),
        "no snapshot before close: {frames:?}"
    );
}

/// The snapshot plus the output frames that follow it must rebuild exactly the daemon's screen,
/// even when the viewer attaches in the middle of a burst (§17: nothing lost, nothing repeated).
#[test]
fn snapshot_plus_live_output_mirrors_the_screen() {
    let d = Daemon::start();
    d.spawn_bash("mir");
    d.inject("mir", r#"for i in $(seq 1 300); do echo "row $i $((i*i))"; sleep 0.01; done; printf '\e[1;33mdone\e[0m\n'"#);
    d.wait_screen("mir", "the burst is under way", |s| {
        s.lines().any(|l| l.starts_with("row 40 "))
    });

    let mut viewer = d.ws("/api/sessions/mir?snapshot=1");
    let snap = viewer.next_frame(T, "snapshot");
    assert_eq!(snap["type"], json!("snapshot"), "{snap}");
    let (rows, cols) = (
        snap["rows"].as_u64().unwrap() as u16,
        snap["cols"].as_u64().unwrap() as u16,
    );
    let mut mirror = vt100::Parser::new(rows, cols, 0);
    mirror.process(snap["data"].as_str().unwrap().as_bytes());
    let mirror_text = |m: &vt100::Parser| -> Vec<String> {
        m.screen()
            .rows(0, cols)
            .map(|r| r.trim_end().to_string())
            .collect()
    };
    assert!(
        !mirror_text(&mirror)
            .iter()
            .any(|l| l.starts_with("row 300 ")),
        "attached too late to test anything: the burst was already over"
    );

    let (mut text, _) = viewer.read_output_until(Duration::from_secs(60), "done");
    // Let the prompt arrive, then take whatever output is still in flight.
    let (st, _) = d.post(
        "/api/sessions/mir/wait",
        json!({"settle_ms": 500, "timeout_ms": 20000, "include_screen": false}),
    );
    assert_eq!(st, 200);
    for f in viewer.drain(Duration::from_millis(700)) {
        if f["type"] == "output" {
            text.push_str(f["data"].as_str().unwrap());
        }
    }
    mirror.process(text.as_bytes());
    let daemon_rows: Vec<String> = d.screen_json("mir")["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        mirror_text(&mirror),
        daemon_rows,
        "snapshot + output frames do not reproduce the screen"
    );
    let cur = d.screen_json("mir")["cursor"].clone();
    let (mr, mc) = mirror.screen().cursor_position();
    assert_eq!(
        (json!(mr), json!(mc)),
        (cur["row"].clone(), cur["col"].clone()),
        "cursor differs"
    );
}

#[test]
fn output_frames_never_split_utf8_characters() {
    let d = Daemon::start();
    d.spawn_bash("u8");
    let mut viewer = d.ws("/api/sessions/u8");
    d.wait_clients("u8", 1);
    d.inject("u8", r"printf 'é€😀%.0s' {1..3000}; printf '\nEND\xffX\n'");
    let (text, _) = viewer.read_output_until(T, "X\r\n");
    // The typed command shows the glyphs once; the burst repeats them back to back.
    let start = text.find("é€😀é€😀").expect("the burst is in the output");
    let burst = &text[start..text.find("\r\nEND").expect("END marker")];
    assert!(
        !burst.contains('\u{FFFD}'),
        "a character was split across frames"
    );
    assert_eq!(
        burst.matches("é€😀").count(),
        3000,
        "characters lost or duplicated"
    );
    assert!(
        text.contains("END\u{FFFD}X"),
        "an invalid byte must become U+FFFD"
    );
}

/// §6.2 Enter gate, observed by a wrapped owner: the CR waits for the text's echo (but at least
/// the minimum), and without any echo it is sent at the maximum.
#[test]
fn enter_gate_waits_for_echo_or_the_maximum() {
    let d = Daemon::start_with(
        &[
            ("TELEPTY_SUBMIT_MIN_MS", "200"),
            ("TELEPTY_SUBMIT_QUIET_MS", "50"),
            ("TELEPTY_SUBMIT_MAX_MS_WRAPPED", "3000"),
        ],
        None,
    );
    d.post("/api/sessions/register", json!({"session_id": "gate"}));
    let mut owner = d.ws("/api/sessions/gate?owner=1");
    owner.send(json!({"type": "ready"}));
    d.wait_session("gate", "ready", |s| s["ready"] == json!(true));

    // No echo: the CR comes at the maximum.
    d.inject("gate", "silent");
    assert_inject(&owner.next_frame(T, "text"), "silent", false);
    let t0 = std::time::Instant::now();
    assert_inject(&owner.next_frame(T, "enter"), "\r", false);
    let gap = t0.elapsed();
    assert!(
        gap >= Duration::from_millis(2700),
        "CR sent {gap:?} after the text without any echo"
    );

    // (Output after the submit lets the daemon move on to the next message sooner.)
    owner.send(json!({"type": "output", "data": "\r\n"}));

    // Echo right away: the CR follows the quiet gap, not before the minimum.
    d.inject("gate", "echoed");
    assert_inject(&owner.next_frame(T, "text"), "echoed", false);
    let t0 = std::time::Instant::now();
    owner.send(json!({"type": "output", "data": "echoed"}));
    assert_inject(&owner.next_frame(T, "enter"), "\r", false);
    let gap = t0.elapsed();
    assert!(
        gap >= Duration::from_millis(150),
        "CR sent only {gap:?} after the text"
    );
    assert!(
        gap < Duration::from_millis(2000),
        "CR waited {gap:?} although the text was echoed"
    );
}

/// Extension: `create=0` makes the session socket refuse an unknown id (404) instead of
/// auto-creating a wrapped session, so viewers can never conjure phantom sessions.
#[test]
fn create_0_refuses_unknown_ids() {
    let d = Daemon::start();
    let url = format!(
        "ws://127.0.0.1:{}/api/sessions/ghost?snapshot=1&create=0",
        d.port
    );
    let err =
        tokio_tungstenite::tungstenite::connect(url.as_str()).expect_err("upgrade must be refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status().as_u16(), 404)
        }
        other => panic!("expected an HTTP 404, got {other:?}"),
    }
    assert!(
        d.list_ids().is_empty(),
        "a session was created: {:?}",
        d.list_ids()
    );
}
