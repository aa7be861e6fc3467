//! Recording through the real daemon (API.md §17 Recording): `record:true` on spawn writes an
//! asciicast v2 file with output, input, inject markers and resizes, served by
//! `GET /api/sessions/:id/recording`; secrets are masked.

use crate::common;

use common::*;
use serde_json::{Value, json};

#[test]
fn spawn_with_record_serves_an_asciicast_of_output_input_and_resizes() {
    let d = Daemon::start();
    let (st, _) = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "rec", "command": "bash", "args": ["--norc", "--noprofile"], "record": true}),
    );
    assert_eq!(st, 201);
    d.wait_screen("rec", "prompt", |s| s.contains('#') || s.contains('$'));
    let (st, _) = d.post(
        "/api/sessions/rec/inject",
        json!({"prompt": "echo rec-$((2+3)) sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "from": "boss"}),
    );
    assert_eq!(st, 200);
    d.wait_line("rec", "rec-5 sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
    let (st, _) = d.post("/api/sessions/rec/resize", json!({"cols": 100, "rows": 20}));
    assert_eq!(st, 200);

    let (meta_st, meta) = d.get("/api/meta");
    assert_eq!(meta_st, 200);
    assert!(
        meta["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("recording")),
        "{meta}"
    );

    // The file is written by a background thread: wait until the resize event is in.
    let events = wait_for(
        std::time::Duration::from_secs(20),
        "recording with the resize",
        || {
            let r = d.raw("GET", "/api/sessions/rec/recording", &[], None);
            if r.status != 200 {
                return None;
            }
            let ct = r
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone());
            assert_eq!(ct.as_deref(), Some("application/x-asciicast"));
            let text = String::from_utf8_lossy(&r.body).into_owned();
            text.contains("\"r\"").then_some(text)
        },
    );
    let mut lines = events.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(header["title"], "rec");
    assert!(
        header["width"].is_u64() && header["height"].is_u64(),
        "{header}"
    );
    let ev: Vec<Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let of_kind = |k: &str| {
        ev.iter()
            .filter(|e| e[1] == k)
            .map(|e| e[2].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let output = of_kind("o").concat();
    assert!(output.contains("rec-5 ***"), "output: {output:?}");
    assert!(
        !events.contains("sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
        "secret leaked into the recording"
    );
    let marker = ev
        .iter()
        .position(|e| e[1] == "m" && e[2] == "inject from boss")
        .expect("inject marker");
    assert_eq!(
        ev[marker + 1][1],
        "i",
        "the marker comes just before the input: {:?}",
        &ev[marker..]
    );
    assert!(
        ev[marker + 1][2]
            .as_str()
            .unwrap()
            .starts_with("echo rec-$((2+3))")
    );
    assert!(
        of_kind("i").iter().any(|i| i == "\r"),
        "the Enter is recorded"
    );
    assert!(
        of_kind("r").iter().any(|r| r == "100x20"),
        "resize: {:?}",
        of_kind("r")
    );
    let times: Vec<f64> = ev.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timestamps go forward"
    );

    // Without record, the route says so.
    d.spawn_bash("plain");
    let r = d.get("/api/sessions/plain/recording");
    assert_error(
        &r,
        404,
        "RECORDING_NOT_AVAILABLE",
        Some("Recording is not enabled for this session."),
    );
}

/// Issue 14: a secret typed one key at a time (one `input` frame per character, echoed by the
/// shell one byte at a time, or not echoed at all under `read -s`) is masked in the recording's
/// input and output streams, however the events split it.
#[test]
fn a_secret_typed_one_key_at_a_time_is_masked_in_the_recording() {
    const SECRET: &str = "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let d = Daemon::start();
    let (st, _) = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "keys", "command": "bash", "args": ["--norc", "--noprofile"], "record": true}),
    );
    assert_eq!(st, 201);
    d.wait_screen("keys", "prompt", |s| s.contains('#') || s.contains('$'));
    let mut viewer = d.ws("/api/sessions/keys");
    let mut type_slowly = |text: &str| {
        for c in text.chars() {
            viewer.send(json!({"type": "input", "data": c.to_string()}));
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
    };
    type_slowly("read -rs X; echo got-${#X}\r");
    type_slowly(SECRET);
    type_slowly("\r");
    d.wait_line("keys", &format!("got-{}", SECRET.len()));
    type_slowly("echo ");
    type_slowly(SECRET);
    type_slowly(" done-$((1+1))\r");
    d.wait_screen("keys", "echo's output", |s| {
        s.lines()
            .any(|l| l.trim_end() == format!("{SECRET} done-2"))
    });

    let streams = |text: &str| {
        let mut out = (String::new(), String::new(), 0usize);
        for l in text.lines().skip(1) {
            let e: Value = serde_json::from_str(l).unwrap();
            let data = e[2].as_str().unwrap_or("");
            match e[1].as_str() {
                Some("o") => out.0.push_str(data),
                Some("i") => {
                    out.1.push_str(data);
                    out.2 += 1;
                }
                _ => {}
            }
        }
        out
    };
    let (output, input, input_events) = wait_for(
        std::time::Duration::from_secs(20),
        "the recording of the echo",
        || {
            let r = d.raw("GET", "/api/sessions/keys/recording", &[], None);
            let s = streams(&String::from_utf8_lossy(&r.body));
            s.0.contains("*** done-2").then_some(s)
        },
    );
    assert!(input_events > SECRET.len(), "typed one key per event");
    assert_eq!(input.matches(SECRET).count(), 0, "input: {input:?}");
    assert_eq!(output.matches(SECRET).count(), 0, "output: {output:?}");
    assert_eq!(input.matches("***").count(), 2, "input: {input:?}");
    assert!(
        input.contains("read -rs X; echo got-${#X}\r***\r"),
        "{input:?}"
    );
    assert!(
        output.contains("echo *** done-"),
        "the echo of the typing: {output:?}"
    );
}
