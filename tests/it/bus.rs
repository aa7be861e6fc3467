//! Event bus (API.md §9, §11.3, §12) and the handoff / thread stores (§10).

use crate::common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn publish_delivers_to_bus_clients_without_echo() {
    let d = Daemon::start();
    for bad in ["[1,2]", "\"text\"", "42", "null"] {
        assert_error(
            &d.post_raw("/api/bus/publish", bad),
            400,
            "INVALID_REQUEST",
            Some("Payload must be a JSON object"),
        );
    }
    // No clients: delivered 0.
    assert_eq!(
        d.publish(json!({"type": "x"})),
        json!({"success": true, "delivered": 0})
    );

    let mut a = d.bus();
    let r = d.publish(json!({"type": "x", "n": 1, "nested": {"k": [1, 2]}}));
    assert_eq!(r, json!({"success": true, "delivered": 1}));
    let got = a.recv_until(T, "published x", |v| v["type"] == "x");
    assert_eq!(
        got,
        json!({"type": "x", "n": 1, "nested": {"k": [1, 2]}}),
        "must arrive verbatim"
    );

    // Bus WS messages go to every other client, never back to the sender.
    let mut b = d.bus();
    a.send(json!({"type": "from-a", "n": 7}));
    let got = b.recv_until(T, "from-a at b", |v| v["type"] == "from-a");
    assert_eq!(got, json!({"type": "from-a", "n": 7}));
    let r = d.publish(json!({"type": "marker"}));
    assert_eq!(r["delivered"], json!(2), "{r}");
    let mut echoed = false;
    loop {
        let v = a.recv_until(T, "marker at a", |_| true);
        if v["type"] == "from-a" {
            echoed = true;
        }
        if v["type"] == "marker" {
            break;
        }
    }
    assert!(!echoed, "the sender received its own bus message");
}

#[test]
fn turn_requests_are_auto_routed_into_sessions() {
    let d = Daemon::start();
    d.spawn_bash("rt");
    let mut bus = d.bus();

    let r = d.publish(json!({
        "type": "turn_request",
        "target": "rt@somehost",
        "message_id": "m-1",
        "payload": {"prompt": "echo routed-$((20+1))", "turn_id": "t-1"},
    }));
    assert_eq!(r["success"], json!(true), "{r}");
    d.wait_line("rt", "routed-21");
    let ev = bus.recv_until(T, "inject_written from the route", |v| {
        v["type"] == "inject_written" && v["source_type"] == "bus_auto_route"
    });
    assert_eq!(ev["target_agent"], json!("rt"), "{ev}");
    assert_eq!(ev["delivered"], json!(true), "{ev}");
    assert_eq!(ev["turn_id"], json!("t-1"), "{ev}");
    assert_eq!(ev["original_message_id"], json!("m-1"), "{ev}");
    assert_eq!(ev["sender"], json!("daemon"), "{ev}");

    // The same over the bus WebSocket, with `kind` / `target_session_id` / `content`.
    bus.send(json!({"kind": "deliberation_route_turn", "target_session_id": "rt", "content": "echo ws-routed-$((1+1))"}));
    d.wait_line("rt", "ws-routed-2");

    // Unknown target: inject_failed only.
    d.publish(json!({"type": "turn_request", "target": "ghost@elsewhere", "prompt": "x"}));
    let ev = bus.recv_until(T, "inject_failed for ghost", |v| {
        v["type"] == "inject_failed"
    });
    assert_eq!(ev["session_id"], json!("ghost"), "{ev}");
    assert_eq!(ev["code"], json!("SESSION_NOT_FOUND"), "{ev}");
    assert_eq!(ev["error"], json!("Target session was not found."), "{ev}");
}

#[test]
fn inject_emits_bus_events() {
    let d = Daemon::start();
    d.spawn_bash("ev");
    let mut bus = d.bus();
    let r = d.post(
        "/api/sessions/ev/inject",
        json!({"prompt": "echo ev-1", "from": "someone", "thread_id": "th"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let id = r.1["inject_id"].clone();
    // The order of these events is not specified.
    let evs = bus.recv_each(
        T,
        &[
            ("inject_written", &|v| v["type"] == "inject_written"),
            ("message_routed", &|v| v["type"] == "message_routed"),
            ("mailbox_delivered", &|v| v["type"] == "mailbox_delivered"),
        ],
    );
    let ev = &evs[0];
    assert_eq!(ev["inject_id"], id, "{ev}");
    assert_eq!(ev["target_agent"], json!("ev"), "{ev}");
    assert_eq!(ev["content"], json!("echo ev-1"), "{ev}");
    assert_eq!(ev["from"], json!("someone"), "{ev}");
    assert_eq!(ev["reply_to"], json!("someone"), "{ev}");
    assert_eq!(ev["thread_id"], json!("th"), "{ev}");
    assert_eq!(ev["event_type"], json!("inject_written"), "{ev}");
    assert!(
        ev.get("transport").is_some(),
        "envelope lacks transport: {ev}"
    );
    let ev = &evs[1];
    assert_eq!(ev["inject_id"], id, "{ev}");
    assert_eq!(ev["message_id"], id, "{ev}");
    assert_eq!(ev["from"], json!("someone"), "{ev}");
    assert_eq!(ev["to"], json!("ev"), "{ev}");
    let ev = &evs[2];
    assert!(
        ev["msg_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("someone:")),
        "{ev}"
    );
    let s = d.session("ev");
    assert_eq!(s["lastInjectFrom"], json!("someone"), "{s}");
    assert_eq!(s["transport"]["last_thread_id"], json!("th"), "{s}");

    // Pre-flight failure emits inject_failed.
    d.post("/api/sessions/register", json!({"session_id": "off"}));
    let r = d.post(
        "/api/sessions/off/inject",
        json!({"prompt": "x", "from": "me"}),
    );
    assert_error(&r, 503, "DISCONNECTED", None);
    let ev = bus.recv_until(T, "inject_failed", |v| {
        v["type"] == "inject_failed" && v["target_agent"] == "off"
    });
    assert_eq!(ev["code"], json!("DISCONNECTED"), "{ev}");
    assert_eq!(ev["from"], json!("me"), "{ev}");
}

#[test]
fn handoffs_and_threads_round_trip() {
    let d = Daemon::start();
    let mut bus = d.bus();

    assert_error(
        &d.post("/api/handoff", json!({})),
        400,
        "INVALID_REQUEST",
        Some("synthesis is required"),
    );
    let r = d.post(
        "/api/handoff",
        json!({"synthesis": {"tasks": [{"a": 1}, {"b": 2}]}, "source_session_id": "src", "deliberation_id": "delib"}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["status"], json!("pending"), "{}", r.1);
    assert_uuid_v4(&r.1["handoff_id"]);
    let hid = r.1["handoff_id"].as_str().unwrap().to_string();
    let ev = bus.recv_until(T, "handoff.created", |v| v["type"] == "handoff.created");
    assert_eq!(ev["task_count"], json!(2), "{ev}");

    let (st, list) = d.get("/api/handoff");
    assert_eq!(st, 200);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == json!(hid))
        .expect("handoff listed")
        .clone();
    assert_eq!(entry["status"], json!("pending"), "{entry}");
    assert_eq!(entry["task_count"], json!(2), "{entry}");
    assert_eq!(entry["source_session_id"], json!("src"), "{entry}");
    assert_eq!(d.get("/api/handoff?status=claimed").1, json!([]));

    assert_error(
        &d.post(&format!("/api/handoff/{hid}/claim"), json!({})),
        400,
        "INVALID_REQUEST",
        Some("agent_session_id is required"),
    );
    let r = d.post(
        &format!("/api/handoff/{hid}/claim"),
        json!({"agent_session_id": "agent-1"}),
    );
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "handoff_id": hid, "status": "claimed"})
        )
    );
    let r = d.post(
        &format!("/api/handoff/{hid}/claim"),
        json!({"agent_session_id": "agent-2"}),
    );
    assert_error(&r, 409, "HANDOFF_CONFLICT", Some("Handoff already claimed"));
    assert_eq!(r.1["claimed_by"], json!("agent-1"), "{}", r.1);
    // The conflict is checked before the body.
    assert_error(
        &d.post(&format!("/api/handoff/{hid}/claim"), json!({})),
        409,
        "HANDOFF_CONFLICT",
        None,
    );

    let r = d.patch(
        &format!("/api/handoff/{hid}"),
        json!({"status": "completed"}),
    );
    assert_error(
        &r,
        400,
        "INVALID_TRANSITION",
        Some("Invalid transition: claimed -> completed"),
    );
    let r = d.patch(
        &format!("/api/handoff/{hid}"),
        json!({"status": "executing", "message": "working"}),
    );
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "handoff_id": hid, "status": "executing"})
        )
    );
    bus.recv_until(T, "handoff.executing", |v| {
        v["type"] == "handoff.executing" && v["message"] == "working"
    });
    let r = d.patch(
        &format!("/api/handoff/{hid}"),
        json!({"status": "completed", "result": {"ok": true}}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let (st, h) = d.get(&format!("/api/handoff/{hid}"));
    assert_eq!(st, 200);
    assert_eq!(h["status"], json!("completed"), "{h}");
    assert_eq!(h["claimed_by"], json!("agent-1"), "{h}");
    assert_eq!(h["result"], json!({"ok": true}), "{h}");
    assert_eq!(
        h["synthesis"],
        json!({"tasks": [{"a": 1}, {"b": 2}]}),
        "{h}"
    );
    assert_eq!(h["progress"].as_array().map(|p| p.len()), Some(1), "{h}");
    assert_eq!(h["progress"][0]["message"], json!("working"), "{h}");
    let r = d.patch(&format!("/api/handoff/{hid}"), json!({"status": "pending"}));
    assert_error(
        &r,
        400,
        "INVALID_TRANSITION",
        Some("Invalid transition: completed -> pending"),
    );
    let missing = "00000000-0000-4000-8000-000000000000";
    assert_error(
        &d.get(&format!("/api/handoff/{missing}")),
        404,
        "HANDOFF_NOT_FOUND",
        Some("Handoff not found"),
    );
    assert_error(
        &d.post(
            &format!("/api/handoff/{missing}/claim"),
            json!({"agent_session_id": "a"}),
        ),
        404,
        "HANDOFF_NOT_FOUND",
        None,
    );

    // Threads.
    assert_error(
        &d.post("/api/threads", json!({})),
        400,
        "INVALID_REQUEST",
        Some("topic is required"),
    );
    let r = d.post("/api/threads", json!({"topic": "design", "orchestrator_session_id": "orc", "participant_session_ids": ["a", "b"]}));
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["status"], json!("active"), "{}", r.1);
    let tid = r.1["thread_id"].as_str().expect("thread_id").to_string();
    let ev = bus.recv_until(T, "thread.opened", |v| v["type"] == "thread.opened");
    assert_eq!(ev["thread_id"], json!(tid), "{ev}");
    let list = d.get("/api/threads").1;
    let t = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(tid))
        .expect("thread listed")
        .clone();
    assert_eq!(t["participant_count"], json!(2), "{t}");
    assert_eq!(t["message_count"], json!(0), "{t}");
    let r = d.patch(&format!("/api/threads/{tid}"), json!({"message_count": 5}));
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(
        d.get(&format!("/api/threads/{tid}")).1["message_count"],
        json!(5)
    );
    let r = d.patch(&format!("/api/threads/{tid}"), json!({"status": "closed"}));
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "thread_id": tid, "status": "closed"})
        )
    );
    let ev = bus.recv_until(T, "thread.closed", |v| v["type"] == "thread.closed");
    assert_eq!(ev["message_count"], json!(5), "{ev}");
    let t = d.get(&format!("/api/threads/{tid}")).1;
    assert_eq!(t["status"], json!("closed"), "{t}");
    assert!(t["closed_at"].is_string(), "{t}");
    assert_eq!(t["participant_session_ids"], json!(["a", "b"]), "{t}");
    assert_eq!(d.get("/api/threads?status=active").1, json!([]));
    assert_error(
        &d.get(&format!("/api/threads/{missing}")),
        404,
        "THREAD_NOT_FOUND",
        Some("Thread not found"),
    );
}

#[test]
fn bus_socket_frame_handling() {
    use tokio_tungstenite::tungstenite::Message;
    let d = Daemon::start();
    let mut a = d.bus();
    let mut b = d.bus();
    // Unparsable frames are dropped; the socket stays usable.
    a.send_raw(Message::text("this is not json")).unwrap();
    // Binary frames holding UTF-8 JSON are accepted.
    a.send_raw(Message::binary(br#"{"type":"bin-frame","k":1}"#.to_vec()))
        .unwrap();
    let got = b.recv_until(T, "binary frame relayed", |v| v["type"] == "bin-frame");
    assert_eq!(got, json!({"type": "bin-frame", "k": 1}));

    // A message over 16 MiB closes the socket with 1009.
    let big = format!(
        "{{\"type\":\"big\",\"data\":\"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    let _ = a.send_raw(Message::text(big));
    let ((code, _), _) = a.expect_close(T);
    assert_eq!(code, 1009);
    // The other client is unaffected, and the closed one leaves the client set.
    wait_until(T, "only one bus client left", || {
        d.publish(json!({"type": "after"}))["delivered"] == json!(1)
    });
    b.recv_until(T, "after", |v| v["type"] == "after");
}

#[test]
fn relay_forwards_client_messages_to_peers() {
    let b = Daemon::start_with(&[("TELEPTY_MACHINE_ID", "mach-b")], None);
    let peer = format!("127.0.0.1:{}", b.port);
    let a = Daemon::start_with(
        &[
            ("TELEPTY_MACHINE_ID", "mach-a"),
            ("TELEPTY_RELAY_PEERS", &peer),
        ],
        None,
    );
    let mut bus_b = b.bus();

    a.publish(json!({"type": "not-relayed", "_relayed_from": "elsewhere"}));
    a.publish(json!({"type": "relay-me", "n": 1}));
    let mut skipped_seen = false;
    let got = loop {
        let v = bus_b.recv_until(T, "relayed message at the peer", |v| {
            v["type"] == "relay-me" || v["type"] == "not-relayed"
        });
        if v["type"] == "not-relayed" {
            skipped_seen = true;
            continue;
        }
        break v;
    };
    assert!(
        !skipped_seen,
        "a message carrying _relayed_from was relayed again"
    );
    assert_eq!(got["n"], json!(1), "{got}");
    assert_eq!(got["_relayed_from"], json!("mach-a"), "{got}");
    assert_eq!(got["source_host"], json!("mach-a"), "{got}");
    assert_uuid_v4(&got["message_id"]);
    // Daemon-generated events are not relayed.
    a.spawn("only-on-a", "sleep", &["600"]);
    let mut bus_a = a.bus();
    bus_a.recv_until(T, "a's own health event", |v| v["type"] == "session_health");
    let marker = a.publish(json!({"type": "relay-marker"}));
    assert_eq!(marker["success"], json!(true));
    loop {
        let v = bus_b.recv_until(T, "relay-marker", |_| true);
        assert_ne!(
            v["session_id"],
            json!("only-on-a"),
            "a daemon event was relayed: {v}"
        );
        assert_ne!(
            v["type"],
            json!("not-relayed"),
            "a message carrying _relayed_from was relayed again"
        );
        if v["type"] == "relay-marker" {
            break;
        }
    }
}

/// Issue 14: a bus client that does not read while 20,000 events are published is told how
/// many it missed (`bus_gap`), in the stream where they are missing; none is lost silently.
#[test]
fn a_slow_bus_client_is_told_what_it_missed() {
    const EVENTS: u64 = 20_000;
    let d = Daemon::start();
    let mut slow = d.bus();
    let mut publisher = d.bus();
    // 2 KB each: 40 MB, far beyond what the kernel buffers for the socket that does not read.
    let pad = "x".repeat(2048);
    for n in 0..EVENTS {
        publisher.send(json!({"type": "flood", "n": n, "pad": pad}));
    }
    // Through the same socket, so it follows the flood.
    publisher.send(json!({"type": "flood_end"}));

    let (mut received, mut dropped, mut gaps, mut last) = (0u64, 0u64, 0u64, None);
    loop {
        let v = slow.recv_until(
            Duration::from_secs(60),
            "the flood at the slow client",
            |_| true,
        );
        match v["type"].as_str() {
            Some("flood") => {
                let n = v["n"].as_u64().unwrap();
                assert!(
                    last.is_none_or(|l| n > l),
                    "out of order: {n} after {last:?}"
                );
                last = Some(n);
                received += 1;
            }
            Some("bus_gap") => {
                assert_eq!(v["sender"], json!("daemon"), "{v}");
                assert!(v["timestamp"].is_string(), "{v}");
                let n = v["dropped"].as_u64().expect("dropped count");
                assert!(n > 0, "{v}");
                dropped += n;
                gaps += 1;
            }
            Some("flood_end") => break,
            _ => {}
        }
    }
    eprintln!("slow bus client: {received} received, {dropped} announced dropped in {gaps} gaps");
    assert!(
        gaps > 0,
        "the slow client never fell behind: raise the flood"
    );
    assert_eq!(
        received + dropped,
        EVENTS,
        "every event is received or announced"
    );
}

/// `telepty monitor` and `telepty listen` say when they fell behind: a reader that stops
/// reading their output blocks them, the daemon drops events for them and they print the gap.
#[test]
fn monitor_and_listen_print_the_gap() {
    use std::io::{BufRead, Read};
    use std::process::Stdio;
    use std::time::Instant;

    let d = Daemon::start();
    for (cmd, wanted) in [("monitor", "bus_gap"), ("listen", "\"type\":\"bus_gap\"")] {
        let mut child = d
            .cli_command(&[cmd])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn telepty {cmd}: {e}"));
        let stdout = child.stdout.take().unwrap();
        // A rendezvous channel: while the test does not take lines, the pipe fills and the
        // CLI stops reading its bus socket.
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(0);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + T;
        'connected: loop {
            d.publish(json!({"type": "gap_probe"}));
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
                if l.contains("gap_probe") {
                    break 'connected;
                }
            }
            assert!(
                Instant::now() < deadline,
                "telepty {cmd} never showed the probe"
            );
        }
        let mut publisher = d.bus();
        let pad = "x".repeat(2048);
        for n in 0..20_000 {
            publisher.send(json!({"type": "flood", "n": n, "pad": pad}));
        }
        publisher.send(json!({"type": "flood_end"}));
        let deadline = Instant::now() + Duration::from_secs(90);
        let gap = loop {
            let l = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("telepty {cmd} printed no gap"));
            if l.contains(wanted) {
                break l;
            }
            assert!(
                !l.contains("flood_end"),
                "telepty {cmd} reached the end without a gap"
            );
        };
        eprintln!("telepty {cmd}: {gap}");
        let _ = child.kill();
        let _ = child.wait();
        drop(rx);
        if cmd == "listen" {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(err.contains("bus events were dropped"), "{err}");
        }
    }
}

/// `GET /api/bus?skip=…` (extension): those event types are not sent to that client; the
/// others still are, and other clients get everything.
#[test]
fn a_bus_client_can_skip_event_types() {
    let d = Daemon::start_with(&[("TELEPTY_HEALTH_POLL_MS", "200")], None);
    d.spawn("sk", "sleep", &["600"]);
    let mut skipping = d.ws("/api/bus?skip=session_health,nosuch");
    let mut plain = d.bus();
    for _ in 0..3 {
        plain.recv_until(T, "a health event", |v| v["type"] == "session_health");
    }
    d.publish(json!({"type": "skip-marker"}));
    loop {
        let v = skipping.recv_until(T, "the marker", |_| true);
        assert_ne!(v["type"], json!("session_health"), "{v}");
        if v["type"] == "skip-marker" {
            break;
        }
    }
}
