//! Inject delivery (API.md §6), multicast/broadcast (§6.3), mailbox (§8), keys / resize / wait (§17).

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

#[test]
fn concurrent_injects_are_delivered_once_each_and_never_merged() {
    let d = Daemon::start();
    d.spawn_bash("conc");
    const N: usize = 20;
    let barrier = std::sync::Barrier::new(N);
    std::thread::scope(|s| {
        for n in 0..N {
            let d = &d;
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                // `echo;` first so the output line stands alone even when bash's tty echoes
                // type-ahead of the next command before this output.
                let r = d.post(
                    "/api/sessions/conc/inject",
                    json!({"prompt": format!("echo; echo line-{n}")}),
                );
                assert_eq!(r.0, 200, "inject {n}: {}", r.1);
            });
        }
    });
    let all_done = |s: &str| (0..N).all(|n| has_line(s, &format!("line-{n}")));
    let screen = d.wait_screen_q(
        "conc",
        "lines=500",
        "all 20 output lines",
        Duration::from_secs(60),
        all_done,
    );
    for n in 0..N {
        assert_eq!(
            count_lines(&screen, &format!("line-{n}")),
            1,
            "line-{n} not exactly once:\n{screen}"
        );
    }
    let merged = regex::Regex::new(r"line-\d+echo|echo line-\d+\S*echo line-").unwrap();
    assert!(
        !screen.lines().any(|l| merged.is_match(l)),
        "two injects were merged into one line:\n{screen}"
    );
    // Nothing produced an error from a mangled command.
    assert!(!screen.contains("command not found"), "{screen}");
}

#[test]
fn multicast_reports_per_target_results() {
    let d = Daemon::start();
    d.spawn_bash("live");

    // Validation order: prompt first, then session_ids.
    assert_error(
        &d.post(
            "/api/sessions/multicast/inject",
            json!({"session_ids": "live"}),
        ),
        400,
        "INVALID_REQUEST",
        Some("prompt is required"),
    );
    assert_error(
        &d.post(
            "/api/sessions/multicast/inject",
            json!({"prompt": "x", "session_ids": "live"}),
        ),
        400,
        "INVALID_REQUEST",
        Some("session_ids must be an array"),
    );

    let r = d.post(
        "/api/sessions/multicast/inject",
        json!({"session_ids": ["live", "missing-id", "bad/id"], "prompt": "echo mc-$((40+1))"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let b = &r.1;
    assert_eq!(b["success"], json!(true), "{b}");
    assert_eq!(
        b["results"]["successful"],
        json!([{"id": "live", "strategy": "mailbox"}]),
        "{b}"
    );
    let failed = b["results"]["failed"].as_array().expect("failed array");
    assert_eq!(failed.len(), 2, "{b}");
    assert_eq!(failed[0]["id"], json!("missing-id"), "{b}");
    assert_eq!(failed[0]["code"], json!("SESSION_NOT_FOUND"), "{b}");
    assert_eq!(failed[0]["error"], json!("Session not found"), "{b}");
    assert_eq!(failed[1]["id"], json!("bad/id"), "{b}");
    assert_eq!(failed[1]["code"], json!("INVALID_SESSION_ID"), "{b}");
    d.wait_line("live", "mc-41");
}

#[test]
fn broadcast_skips_exited_sessions_as_disconnected() {
    let d = Daemon::start();
    d.spawn_bash("bc-live");
    d.spawn("bc-gone", "bash", &["-c", "exit 3"]);
    d.wait_session("bc-gone", "exitCode 3", |s| s["exitCode"] == json!(3));

    assert_error(
        &d.post("/api/sessions/broadcast/inject", json!({"prompt": ""})),
        400,
        "INVALID_REQUEST",
        Some("prompt is required"),
    );

    let r = d.post(
        "/api/sessions/broadcast/inject",
        json!({"prompt": "echo bc-$((1+1))"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let b = &r.1;
    assert_eq!(b["success"], json!(true), "{b}");
    assert_eq!(
        b["results"]["successful"],
        json!([{"id": "bc-live", "strategy": "mailbox"}]),
        "{b}"
    );
    let failed = b["results"]["failed"].as_array().expect("failed array");
    assert_eq!(failed.len(), 1, "{b}");
    assert_eq!(failed[0]["id"], json!("bc-gone"), "{b}");
    assert_eq!(failed[0]["code"], json!("DISCONNECTED"), "{b}");
    assert!(failed[0]["error"].is_string(), "{b}");
    d.wait_line("bc-live", "bc-2");
}

#[test]
fn mailbox_lists_delivered_messages_and_can_be_cleared() {
    let d = Daemon::start();
    d.spawn_bash("mb");
    d.inject("mb", "echo mb-one");
    let r = d.post(
        "/api/sessions/mb/inject",
        json!({"prompt": "echo mb-two", "from": "tester"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    d.wait_line("mb", "mb-two");

    let mailbox = wait_for(T, "both messages acked in the mailbox", || {
        let (st, m) = d.get("/api/sessions/mb/mailbox");
        assert_eq!(st, 200, "{m}");
        let pending = m["pending"].as_array()?;
        (pending.len() == 2 && pending.iter().all(|p| p["state"] == json!("acked"))).then_some(m)
    });
    assert_eq!(mailbox["session_id"], json!("mb"), "{mailbox}");
    assert!(
        mailbox["dead_letter"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{mailbox}"
    );
    let now = (now_ms() / 1000) as i64;
    let id_re = regex::Regex::new(r"^(inject|tester):\d{13}:[0-9a-f]{8}$").unwrap();
    for p in mailbox["pending"].as_array().unwrap() {
        let id = p["msg_id"]
            .as_str()
            .unwrap_or_else(|| panic!("msg_id: {p}"));
        assert!(
            id_re.is_match(id),
            "msg_id format <from>:<ms>:<8 hex>: {id}"
        );
        let created = p["created_at"]
            .as_i64()
            .unwrap_or_else(|| panic!("created_at unix seconds: {p}"));
        assert!(
            (created - now).abs() < 600,
            "created_at is not unix seconds: {p}"
        );
        assert!(p["attempt"].is_u64(), "{p}");
    }
    let ids: Vec<&str> = mailbox["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["msg_id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().any(|i| i.starts_with("inject:")), "{ids:?}");
    assert!(ids.iter().any(|i| i.starts_with("tester:")), "{ids:?}");

    let s = d.session("mb");
    assert_eq!(s["mailbox"], json!({"pending": 0, "dead_letter": 0}), "{s}");

    assert_error(
        &d.post("/api/sessions/mb/mailbox/ack", json!({})),
        400,
        "INVALID_REQUEST",
        Some("msg_id is required"),
    );
    let ack = d.post(
        "/api/sessions/mb/mailbox/ack",
        json!({"msg_id": "no-such-msg"}),
    );
    assert_eq!(
        ack,
        (200, json!({"success": true, "msg_id": "no-such-msg"}))
    );

    let del = d.delete("/api/sessions/mb/mailbox");
    assert_eq!(del.0, 200, "{}", del.1);
    assert_eq!(del.1["success"], json!(true), "{}", del.1);
    assert_eq!(del.1["session_id"], json!("mb"), "{}", del.1);
    let after = d.get("/api/sessions/mb/mailbox").1;
    assert_eq!(after["pending"], json!([]), "{after}");

    let dl = d.delete("/api/sessions/mb/mailbox/dead-letter");
    assert_eq!(dl.0, 200, "{}", dl.1);
    assert_error(
        &d.get("/api/sessions/nope/mailbox"),
        404,
        "SESSION_NOT_FOUND",
        Some("Session not found"),
    );
}

#[test]
fn keys_send_named_key_bytes() {
    let d = Daemon::start();
    let bash_pid = {
        d.spawn_bash("keys");
        d.session("keys")["pid"]
            .as_u64()
            .expect("pid of spawned session") as u32
    };
    d.inject("keys", "cat -v");
    wait_until(T, "cat running under bash", || {
        children_of(bash_pid).iter().any(|(_, c)| c == "cat")
    });

    let r = d.post("/api/sessions/keys/keys", json!({"keys": ["up"]}));
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "session_id": "keys", "count": 1})
        )
    );
    let r = d.post("/api/sessions/keys/keys", json!({"keys": ["ENTER"]}));
    assert_eq!(r.0, 200, "{}", r.1);
    // The tty echoes ESC [ A as ^[[A, and cat -v prints it again after Enter.
    d.wait_screen("keys", "two `^[[A` lines", |s| count_lines(s, "^[[A") >= 2);

    let r = d.post("/api/sessions/keys/keys", json!({"keys": ["ctrl+c"]}));
    assert_eq!(r.0, 200, "{}", r.1);
    wait_until(T, "cat ended by ctrl+c", || {
        !children_of(bash_pid).iter().any(|(_, c)| c == "cat")
    });
    d.wait_screen("keys", "prompt after ctrl+c", |s| {
        s.lines().last().is_some_and(|l| is_prompt(l, "keys"))
    });

    let r = d.post(
        "/api/sessions/keys/keys",
        json!({"keys": ["home", "Ctrl+Left", "f5", "pagedown"]}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["count"], json!(4), "{}", r.1);
    assert_error(
        &d.post("/api/sessions/keys/keys", json!({"keys": []})),
        400,
        "INVALID_REQUEST",
        None,
    );
}

#[test]
fn resize_changes_pty_and_emulator_size() {
    let d = Daemon::start();
    d.spawn_bash("rs");
    let r = d.post("/api/sessions/rs/resize", json!({"cols": 120, "rows": 40}));
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "session_id": "rs", "cols": 120, "rows": 40})
        )
    );
    let s = d.session("rs");
    assert_eq!(
        (s["cols"].clone(), s["rows"].clone()),
        (json!(120), json!(40)),
        "{s}"
    );
    let j = d.screen_json("rs");
    assert_eq!(
        (j["cols"].clone(), j["row_count"].clone()),
        (json!(120), json!(40)),
        "{j}"
    );

    d.inject("rs", r#"echo "size=$(tput cols)x$(tput lines)""#);
    d.wait_line("rs", "size=120x40");

    for bad in [
        json!({"cols": 0, "rows": 10}),
        json!({"cols": 80, "rows": 1001}),
        json!({"cols": "x", "rows": 10}),
        json!({}),
    ] {
        assert_error(
            &d.post("/api/sessions/rs/resize", bad.clone()),
            400,
            "INVALID_REQUEST",
            None,
        );
    }
    assert_error(
        &d.post("/api/sessions/nope/resize", json!({"cols": 80, "rows": 24})),
        404,
        "SESSION_NOT_FOUND",
        None,
    );
}

/// Runs POST wait on a helper thread so the test can produce output meanwhile.
fn wait_async(
    d: &Daemon,
    id: &str,
    body: Value,
) -> std::thread::JoinHandle<((u16, Value), Duration)> {
    let url = d.url(&format!("/api/sessions/{id}/wait"));
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let t0 = Instant::now();
        let mut resp = agent.post(&url).send_json(&body).expect("POST wait");
        let st = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().expect("wait answer is JSON");
        ((st, v), t0.elapsed())
    })
}

#[test]
fn wait_matches_times_out_and_settles() {
    let d = Daemon::start();
    d.spawn_bash("wt");

    // A pattern that appears after an inject. (since_generation makes the outcome independent
    // of whether the wait reaches the daemon before or after the output.)
    let g0 = d.screen_json("wt")["generation"]
        .as_u64()
        .expect("generation");
    let h = wait_async(
        &d,
        "wt",
        json!({"pattern": r"wait-hit-\d+", "timeout_ms": 20000, "since_generation": g0}),
    );
    d.inject("wt", "echo wait-hit-$((40+2))");
    let ((st, v), _) = h.join().unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["matched"], json!(true), "{v}");
    assert_eq!(v["match"], json!("wait-hit-42"), "{v}");
    assert_eq!(v["timed_out"], json!(false), "{v}");
    assert_eq!(v["exited"], json!(false), "{v}");
    assert!(v["generation"].is_u64(), "{v}");
    assert!(
        v["screen"]
            .as_str()
            .is_some_and(|s| s.contains("wait-hit-42")),
        "{v}"
    );

    // No pattern: returns once output has been quiet for settle_ms.
    let t0 = Instant::now();
    let (st, v) = d.post(
        "/api/sessions/wt/wait",
        json!({"settle_ms": 300, "timeout_ms": 20000}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["settled"], json!(true), "{v}");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "settled too early: {:?}",
        t0.elapsed()
    );
    let generation = v["generation"].as_u64().expect("generation");

    // A pattern that never appears: timeout is a 200 with timed_out.
    let t0 = Instant::now();
    let (st, v) = d.post(
        "/api/sessions/wt/wait",
        json!({"pattern": "never-appears-xyz", "timeout_ms": 800}),
    );
    let took = t0.elapsed();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["timed_out"], json!(true), "{v}");
    assert_eq!(v["matched"], json!(false), "{v}");
    assert_eq!(v["match"], json!(null), "{v}");
    assert!(
        took >= Duration::from_millis(800),
        "returned before the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "timeout not honoured: {took:?}"
    );

    // since_generation: the text is on screen, but only states newer than the generation count.
    let (st, v) = d.post(
        "/api/sessions/wt/wait",
        json!({"pattern": "wait-hit-42", "since_generation": generation, "timeout_ms": 800}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["matched"], json!(false), "a stale screen matched: {v}");
    assert_eq!(v["timed_out"], json!(true), "{v}");
    // ... while an older generation lets the current screen match at once.
    let (st, v) = d.post(
        "/api/sessions/wt/wait",
        json!({"pattern": "wait-hit-42", "since_generation": generation - 1, "timeout_ms": 20000}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["matched"], json!(true), "{v}");

    // scope:stream matches the output that arrives after the call.
    let h = wait_async(
        &d,
        "wt",
        json!({"pattern": r"stream-\d+", "scope": "stream", "timeout_ms": 20000, "include_screen": false, "since_generation": generation}),
    );
    d.inject("wt", "echo stream-$((3+4))");
    let ((st, v), _) = h.join().unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["match"], json!("stream-7"), "{v}");
    assert!(
        v.get("screen").is_none_or(|s| s.is_null()),
        "include_screen:false still sent a screen: {v}"
    );

    assert_error(
        &d.post("/api/sessions/wt/wait", json!({"pattern": "("})),
        400,
        "INVALID_PATTERN",
        None,
    );

    // Exit ends a pattern wait.
    let h = wait_async(
        &d,
        "wt",
        json!({"pattern": "never-appears-xyz", "timeout_ms": 20000}),
    );
    d.inject("wt", "exit");
    let ((st, v), took) = h.join().unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["exited"], json!(true), "{v}");
    assert_eq!(v["timed_out"], json!(false), "{v}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn submit_and_synchronous_inject() {
    let d = Daemon::start();
    let mut bus = d.bus();
    d.spawn_bash("sb");

    let r = d.post(
        "/api/sessions/sb/inject?wait=delivered",
        json!({"prompt": "echo sub-$((1+1))", "no_enter": true}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["delivered"], json!(true), "{}", r.1);
    assert_eq!(r.1["submit"], json!("skipped"), "{}", r.1);
    d.wait_screen("sb", "typed text without Enter", |s| {
        s.lines()
            .last()
            .is_some_and(|l| l.ends_with("echo sub-$((1+1))"))
    });
    assert!(
        !has_line(&d.screen("sb"), "sub-2"),
        "no_enter text was submitted"
    );

    let r = d.post("/api/sessions/sb/submit", json!({}));
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "strategy": "pty_cr", "attempts": 1})
        )
    );
    d.wait_line("sb", "sub-2");
    let ev = bus.recv_until(T, "submit event", |v| v["type"] == "submit");
    assert_eq!(ev["session_id"], json!("sb"), "{ev}");
    assert_eq!(ev["attempts"], json!(1), "{ev}");

    let r = d.post(
        "/api/sessions/sb/submit",
        json!({"retries": 1, "retry_delay_ms": 100}),
    );
    assert_eq!(r.1["attempts"], json!(2), "{}", r.1);

    let r = d.post(
        "/api/sessions/sb/inject?wait=delivered",
        json!({"prompt": "echo sync-$((2+5))"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["success"], json!(true), "{}", r.1);
    assert_eq!(r.1["submit"], json!("sent"), "{}", r.1);
    assert_eq!(r.1["delivered"], json!(true), "{}", r.1);
    assert_uuid_v4(&r.1["inject_id"]);
    d.wait_line("sb", "sync-7");

    let r = d.post("/api/sessions/submit-all", json!({}));
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(
        r.1["results"]["successful"],
        json!([{"id": "sb", "strategy": "pty_cr"}]),
        "{}",
        r.1
    );

    d.spawn("sb-gone", "bash", &["-c", "exit 0"]);
    d.wait_session("sb-gone", "exited", |s| s["exitCode"] == json!(0));
    let r = d.post("/api/sessions/sb-gone/submit", json!({}));
    assert_error(&r, 503, "DISCONNECTED", Some("Submit failed via pty_cr"));
    assert_eq!(r.1["strategy"], json!("pty_cr"), "{}", r.1);
    assert!(r.1["attempts"].is_u64(), "{}", r.1);
}

#[test]
fn multi_line_text_uses_bracketed_paste_only_when_enabled() {
    let d = Daemon::start();
    d.spawn_bash("bp");
    let bash_pid = d.session("bp")["pid"].as_u64().unwrap() as u32;
    let cat_running = || children_of(bash_pid).iter().any(|(_, c)| c == "cat");

    // cat -v has not enabled DECSET 2004: newlines are typed raw.
    d.inject("bp", "cat -v");
    wait_until(T, "cat running", cat_running);
    d.post(
        "/api/sessions/bp/inject",
        json!({"prompt": "p1\np2", "no_enter": true}),
    );
    d.post("/api/sessions/bp/keys", json!({"keys": ["enter"]}));
    // cat prints each line as its own row once the tty hands it over.
    let s = d.wait_screen("bp", "p1 and p2 printed by cat", |s| {
        has_line(s, "p1") && has_line(s, "p2")
    });
    assert!(
        !s.contains("^[[20"),
        "paste markers sent to a program without 2004:\n{s}"
    );
    d.post("/api/sessions/bp/keys", json!({"keys": ["ctrl+c"]}));
    wait_until(T, "cat ended", || !cat_running());

    // With 2004 on, the text is wrapped, and an embedded end marker is removed.
    d.inject("bp", r"printf '\e[?2004h'; cat -v");
    wait_until(T, "cat running", cat_running);
    d.post(
        "/api/sessions/bp/inject",
        json!({"prompt": "q1\x1b[201~x\nq2", "no_enter": true}),
    );
    d.post("/api/sessions/bp/keys", json!({"keys": ["enter"]}));
    let s = d.wait_screen("bp", "pasted lines printed by cat -v", |s| {
        count_lines(s, "q2^[[201~") >= 1
    });
    assert!(
        has_line(&s, "^[[200~q1x"),
        "the paste start marker or embedded end marker is wrong:\n{s}"
    );
    d.post("/api/sessions/bp/keys", json!({"keys": ["ctrl+c"]}));
}

#[test]
fn multicast_and_broadcast_emit_injection_events() {
    let d = Daemon::start();
    d.spawn_bash("m1");
    let mut bus = d.bus();
    let r = d.post(
        "/api/sessions/multicast/inject",
        json!({"session_ids": ["m1", "nope"], "prompt": "echo ev"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let ev = bus.recv_until(T, "multicast injection", |v| v["type"] == "injection");
    assert_eq!(ev["target_agent"], json!("m1"), "{ev}");
    assert_eq!(ev["content"], json!("echo ev"), "{ev}");
    assert_eq!(ev["sender"], json!("cli"), "{ev}");
    let r = d.post(
        "/api/sessions/broadcast/inject",
        json!({"prompt": "echo all"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let ev = bus.recv_until(T, "broadcast injection", |v| {
        v["type"] == "injection" && v["target_agent"] == "all"
    });
    assert_eq!(
        ev["session_ids"],
        json!([{"id": "m1", "strategy": "mailbox"}]),
        "{ev}"
    );
}

#[test]
fn queue_over_1024_messages_is_refused() {
    let d = Daemon::start();
    // `sleep` never reads its terminal, so only the tty echo paces the Enter gate.
    d.spawn("qf", "sleep", &["600"]);
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..1400 {
        let r = d.post("/api/sessions/qf/inject", json!({"prompt": "x"}));
        match r.0 {
            200 => accepted += 1,
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let r = refused.unwrap_or_else(|| panic!("1400 injects accepted, the queue has no limit"));
    assert_error(&r, 429, "QUEUE_FULL", Some("Inject queue is full."));
    assert!(accepted >= 1024, "refused after only {accepted} messages");
    let s = d.session("qf");
    assert!(
        s["mailbox"]["pending"].as_u64().is_some_and(|p| p >= 1000),
        "{}",
        s["mailbox"]
    );
    // Deleting the session drops its queue.
    assert_eq!(d.delete("/api/sessions/qf").0, 200);
}

/// A child that stops reading: what does not fit in the PTY waits on the session's writer
/// thread, the API stays responsive, and once the child reads again everything arrives in
/// order — the queued inject first, then a viewer's keystrokes sent after it.
#[test]
fn a_child_that_stops_reading_loses_nothing_and_stalls_nothing() {
    let d = Daemon::start();
    let out = d.home_path().join("got.txt");
    let script = format!(
        "stty raw -echo; kill -STOP $$; exec cat > '{}'",
        out.display()
    );
    d.spawn("stuck", "sh", &["-c", &script]);
    let pid = d.session("stuck")["pid"].as_u64().expect("pid");
    let state = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim().chars().next()))
            .flatten()
    };
    wait_until(T, "the child stopped itself", || state() == Some('T'));

    // 240 KB, far more than the tty's input buffer.
    let big: String = (0..30_000).map(|i| format!("{i:07}|")).collect();
    let r = d.post(
        "/api/sessions/stuck/inject",
        json!({"prompt": big, "no_enter": true}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    wait_until(T, "the inject in flight", || {
        d.get("/api/sessions/stuck/mailbox").1["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|m| m["state"] == json!("in_flight")))
    });
    // Nothing waits on the stuck child: the API answers, other sessions work.
    let t0 = Instant::now();
    assert_eq!(d.get("/api/health").0, 200);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    d.spawn_bash("free");
    d.inject("free", "echo still-$((40+2))");
    d.wait_line("free", "still-42");
    let mut viewer = d.ws("/api/sessions/stuck");
    viewer.send(json!({"type": "input", "data": "TAIL"}));

    // SAFETY: kill(2) on the child we spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGCONT);
    }
    let want = format!("{big}TAIL");
    let got = wait_for(T, "every byte in the file", || {
        let got = std::fs::read_to_string(&out).unwrap_or_default();
        (got.len() >= want.len()).then_some(got)
    });
    assert!(
        got == want,
        "bytes lost, doubled or reordered: got {} bytes, want {}; tail {:?}",
        got.len(),
        want.len(),
        &got[got.len().saturating_sub(40)..]
    );
    wait_until(T, "the inject acknowledged", || {
        d.get("/api/sessions/stuck/mailbox").1["pending"]
            .as_array()
            .is_some_and(|p| p.iter().all(|m| m["state"] == json!("acked")))
    });
}

/// Threads of process `pid` whose name starts with `prefix` (as the kernel keeps it: at most 15
/// bytes).
fn threads_named(pid: u32, prefix: &str) -> usize {
    let prefix = &prefix[..prefix.len().min(15)];
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim().starts_with(prefix))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn queues_are_bounded_in_bytes_and_a_deleted_deaf_session_returns_its_threads() {
    let d = Daemon::start();
    // `sleep` never reads its terminal: after the tty's own buffer, every byte waits.
    d.spawn("deaf", "sleep", &["600"]);
    let child = d.session("deaf")["pid"].as_u64().unwrap();
    let text = "x".repeat(1024 * 1024 - 256);
    let mut accepted = 0;
    let refused = loop {
        let r = d.post("/api/sessions/deaf/inject", json!({"prompt": text}));
        if r.0 != 200 {
            break r;
        }
        accepted += 1;
        assert!(accepted <= 16, "1 MiB injects accepted without end");
    };
    assert!(accepted >= 4, "a few megabytes fit: {accepted}");
    assert_error(&refused, 429, "QUEUE_FULL", None);
    assert_eq!(refused.1["scope"], json!("session"), "{}", refused.1);
    assert!(refused.1["queuedBytes"].as_u64().unwrap() > 4 * 1024 * 1024);
    let writer = format!("pty-writer-{child}");
    assert_eq!(threads_named(d.pid(), &writer), 1);
    d.delete("/api/sessions/deaf");
    // The writer thread that waited for room ends (it used to spin on the hung-up PTY).
    wait_until(T, "the session's writer thread ends", || {
        threads_named(d.pid(), &writer) == 0
    });
}

#[test]
fn a_retry_with_the_same_inject_id_is_typed_once() {
    let d = Daemon::start();
    d.spawn_bash("idem");
    let body = json!({"prompt": "echo once-$((20+22))", "inject_id": "retry-key-1"});
    let first = d.post("/api/sessions/idem/inject?wait=delivered", body.clone());
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["inject_id"], json!("retry-key-1"), "{}", first.1);
    assert_eq!(first.1["delivered"], json!(true), "{}", first.1);
    assert!(first.1.get("duplicate").is_none(), "{}", first.1);
    // The retry (as after a timeout) answers the first request's outcome.
    let again = d.post("/api/sessions/idem/inject?wait=delivered", body.clone());
    assert_eq!(again.0, 200, "{}", again.1);
    assert_eq!(again.1["duplicate"], json!(true), "{}", again.1);
    assert_eq!(again.1["delivered"], json!(true), "{}", again.1);
    // And through the CLI.
    let out = d.cli(&[
        "inject",
        "--inject-id",
        "retry-key-1",
        "idem",
        "echo once-$((20+22))",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not typed again"),
        "{}",
        show(&out)
    );
    // A different message gets through; then the screen has the first one exactly once.
    d.inject("idem", "echo marker-$((1+1))");
    let screen = d.wait_line("idem", "marker-2");
    assert_eq!(count_lines(&screen, "once-42"), 1, "{screen}");
    // The same key for another session is refused, and a malformed key is a 400.
    d.spawn_bash("other");
    assert_error(
        &d.post("/api/sessions/other/inject", body),
        400,
        "INVALID_REQUEST",
        None,
    );
    assert_error(
        &d.post(
            "/api/sessions/idem/inject",
            json!({"prompt": "x", "inject_id": "has space"}),
        ),
        400,
        "INVALID_REQUEST",
        None,
    );
    let bad = d.cli(&["inject", "--inject-id", "has space", "idem", "x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
}

/// A TCP proxy to a daemon that, while `drop_injects` is above 0, passes an inject request on
/// and then cuts the client's connection instead of returning the answer: a daemon that got
/// the request and whose answer was lost (a slow or cut-off machine).
struct LossyProxy {
    port: u16,
    drop_injects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyProxy {
    fn start(upstream: u16) -> LossyProxy {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let drop_injects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let drops = drop_injects.clone();
        // One HTTP/1.1 message: its head, then Content-Length bytes.
        fn message(r: &mut BufReader<std::net::TcpStream>) -> Option<(String, Vec<u8>)> {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).ok()?;
            Some((head, body))
        }
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let drops = drops.clone();
                std::thread::spawn(move || {
                    let mut from_client = BufReader::new(client.try_clone().unwrap());
                    let mut to_client = client;
                    let up = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                    let mut from_up = BufReader::new(up.try_clone().unwrap());
                    let mut to_up = up;
                    while let Some((head, body)) = message(&mut from_client) {
                        to_up.write_all(head.as_bytes()).unwrap();
                        to_up.write_all(&body).unwrap();
                        let Some((rhead, rbody)) = message(&mut from_up) else {
                            return;
                        };
                        let is_inject = head.starts_with("POST ") && head.contains("/inject");
                        if is_inject
                            && drops
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                        {
                            return; // the answer is lost with the connection
                        }
                        to_client.write_all(rhead.as_bytes()).unwrap();
                        to_client.write_all(&rbody).unwrap();
                    }
                });
            }
        });
        LossyProxy { port, drop_injects }
    }

    fn lose_next_injects(&self, n: usize) {
        self.drop_injects
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Issue 13: every CLI inject carries an idempotency key. When its answer is lost, the CLI
/// asks again with the same key and the daemon answers without typing twice; when the second
/// answer is lost too, the CLI says the outcome is unknown (exit 3) and names the key, with
/// which a later retry is still typed at most once.
#[test]
fn an_inject_whose_answer_is_lost_is_typed_once() {
    let d = Daemon::start();
    d.spawn_bash("far");
    let proxy = LossyProxy::start(d.port);
    let spec = format!("far@127.0.0.1:{}", proxy.port);
    let count = |text: &str, line: &str| text.lines().filter(|l| l.trim_end() == line).count();

    proxy.lose_next_injects(1);
    let o = d.cli(&["inject", &spec, "echo once-$((2+3))"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("Injected into far@"),
        "{}",
        show(&o)
    );

    proxy.lose_next_injects(2);
    let o = d.cli(&[
        "inject",
        "--inject-id",
        "k-42",
        &spec,
        "echo twice-$((3+4))",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("outcome unknown") && err.contains("--inject-id k-42"),
        "{}",
        show(&o)
    );
    let o = d.cli(&[
        "inject",
        "--inject-id",
        "k-42",
        &spec,
        "echo twice-$((3+4))",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not typed again"),
        "{}",
        show(&o)
    );

    // A marker after both, so the screen is complete when it shows.
    d.post(
        "/api/sessions/far/inject",
        json!({"prompt": "echo done-$((1+1))"}),
    );
    let screen = d.wait_line("far", "done-2");
    assert_eq!(count(&screen, "once-5"), 1, "{screen}");
    assert_eq!(count(&screen, "twice-7"), 1, "{screen}");
}
