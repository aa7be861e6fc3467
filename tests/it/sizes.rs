//! Size negotiation (issue 10 item 5): a spawned session keeps its own size, viewers register
//! theirs over the session WebSocket, `[sessions] window_size` picks the PTY's size, and the
//! session's own size comes back when the last viewer leaves. Sizes are checked both in the
//! API and inside the session (`stty size` in bash), since the PTY is what programs see.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn size_of(s: &Value) -> (u64, u64) {
    (
        s["cols"].as_u64().unwrap_or(0),
        s["rows"].as_u64().unwrap_or(0),
    )
}

/// Waits until the session's size (API) is `cols`x`rows`, then checks the PTY from inside.
fn expect_size(d: &Daemon, id: &str, cols: u64, rows: u64) {
    d.wait_session(id, &format!("size {cols}x{rows}"), |s| {
        size_of(s) == (cols, rows)
    });
    let marker = format!("tty {rows} {cols}");
    d.inject(id, r#"echo "tty $(stty size)""#);
    d.wait_line(id, &marker);
}

/// A viewer that has received its snapshot (so it is attached) and registered a size.
fn viewer(d: &Daemon, id: &str, cols: u16, rows: u16) -> Ws {
    let mut ws = d.ws(&format!("/api/sessions/{id}?snapshot=1&create=0"));
    let snap = ws.next_frame(T, "snapshot");
    assert_eq!(snap["type"], json!("snapshot"), "{snap}");
    ws.send(json!({"type": "resize", "cols": cols, "rows": rows}));
    // Registered before the caller goes on, so `latest` knows which viewer came last.
    d.wait_session(id, &format!("viewer {cols}x{rows} registered"), |s| {
        s["sizing"]["viewers"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| size_of(v) == (cols as u64, rows as u64)))
    });
    ws
}

fn wait_resize_frame(ws: &mut Ws, cols: u64, rows: u64) {
    ws.recv_until(T, &format!("resize frame {cols}x{rows}"), |v| {
        v["type"] == "resize" && size_of(v) == (cols, rows)
    });
}

#[test]
fn two_viewers_get_the_smallest_and_the_spawn_size_comes_back() {
    let d = Daemon::start();
    d.spawn_sized("sz", "bash", &["--norc", "--noprofile"], 120, 40);
    d.wait_screen("sz", "prompt", |s| {
        s.lines().last().is_some_and(|l| is_prompt(l, "sz"))
    });
    let s = d.session("sz");
    assert_eq!(s["sizing"]["window_size"], json!("smallest"), "{s}");
    assert_eq!(
        (s["sizing"]["cols"].clone(), s["sizing"]["rows"].clone()),
        (json!(120), json!(40))
    );

    let mut a = viewer(&d, "sz", 100, 30);
    expect_size(&d, "sz", 100, 30);
    wait_resize_frame(&mut a, 100, 30);
    let mut b = viewer(&d, "sz", 70, 45);
    // Widths and heights are the smallest of each: 70 from b, 30 from a.
    expect_size(&d, "sz", 70, 30);
    // Both viewers are told, in the output stream, so their mirrors can follow.
    wait_resize_frame(&mut a, 70, 30);
    wait_resize_frame(&mut b, 70, 30);
    let s = d.session("sz");
    assert_eq!(
        s["sizing"]["viewers"],
        json!([{"cols": 100, "rows": 30}, {"cols": 70, "rows": 45}]),
        "{s}"
    );
    // The session's own size is untouched by viewers.
    assert_eq!(size_of(&s["sizing"]), (120, 40));

    // An explicit resize while viewers look sets the own size; the viewers keep deciding.
    let r = d.post("/api/sessions/sz/resize", json!({"cols": 110, "rows": 35}));
    assert_eq!(r.0, 200, "{}", r.1);
    let s = d.session("sz");
    assert_eq!((size_of(&s), size_of(&s["sizing"])), ((70, 30), (110, 35)));

    // A viewer resizing its terminal updates its entry.
    b.send(json!({"type": "resize", "cols": 90, "rows": 45}));
    expect_size(&d, "sz", 90, 30);

    // Closing one (a clean close) leaves the other's size; dropping the last (no close frame,
    // like a killed client) brings back the own size.
    b.close();
    d.wait_clients("sz", 1);
    expect_size(&d, "sz", 100, 30);
    drop(a);
    d.wait_clients("sz", 0);
    expect_size(&d, "sz", 110, 35);
}

#[test]
fn a_released_viewer_stops_counting_until_it_resizes_again() {
    let d = Daemon::start();
    d.spawn_sized("rel", "bash", &["--norc", "--noprofile"], 120, 40);
    let mut a = viewer(&d, "rel", 60, 20);
    expect_size(&d, "rel", 60, 20);
    // A hidden dashboard pane sends `release_size`: the session is back at its own size while
    // the socket (and its output mirror) stays open.
    a.send(json!({"type": "release_size"}));
    expect_size(&d, "rel", 120, 40);
    wait_resize_frame(&mut a, 120, 40);
    assert_eq!(d.session("rel")["active_clients"], json!(1));
    a.send(json!({"type": "resize", "cols": 61, "rows": 21}));
    expect_size(&d, "rel", 61, 21);
    // A socket that never sends a size (a script reading output) does not count.
    let mut reader = d.ws("/api/sessions/rel?create=0");
    d.wait_clients("rel", 2);
    drop(a);
    d.wait_clients("rel", 1);
    expect_size(&d, "rel", 120, 40);
    wait_resize_frame(&mut reader, 120, 40);
}

#[test]
fn window_size_policies_from_config_env_and_per_session() {
    // The config file sets largest; the environment is not set.
    let d = Daemon::start_full(
        &[],
        None,
        &[(
            ".config/telepty/config.toml",
            "[sessions]\nwindow_size = \"largest\"\n",
        )],
    );
    d.spawn_sized("big", "bash", &["--norc", "--noprofile"], 80, 24);
    assert_eq!(d.session("big")["sizing"]["window_size"], json!("largest"));
    let _a = viewer(&d, "big", 100, 20);
    let _b = viewer(&d, "big", 70, 45);
    expect_size(&d, "big", 100, 45);

    // Per-session override at runtime: latest = the viewer that resized last.
    let r = d.post("/api/sessions/big/resize", json!({"window_size": "latest"}));
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "session_id": "big", "window_size": "latest"})
        )
    );
    expect_size(&d, "big", 70, 45);
    // manual: viewers never change the size.
    d.post("/api/sessions/big/resize", json!({"window_size": "manual"}));
    expect_size(&d, "big", 80, 24);
    let s = d.session("big");
    assert_eq!(s["sizing"]["override"], json!("manual"), "{s}");
    // null: back to the configured default.
    d.post("/api/sessions/big/resize", json!({"window_size": null}));
    expect_size(&d, "big", 100, 45);

    // At spawn time.
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "man", "command": "bash", "args": ["--norc", "--noprofile"],
               "cols": 120, "rows": 40, "window_size": "manual"}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    let _c = viewer(&d, "man", 50, 10);
    d.wait_clients("man", 1);
    expect_size(&d, "man", 120, 40);

    // The environment beats the file.
    let e = Daemon::start_full(
        &[("TELEPTY_WINDOW_SIZE", "smallest")],
        None,
        &[(
            ".config/telepty/config.toml",
            "[sessions]\nwindow_size = \"largest\"\n",
        )],
    );
    e.spawn_sized("s", "bash", &["--norc", "--noprofile"], 80, 24);
    assert_eq!(e.session("s")["sizing"]["window_size"], json!("smallest"));
}

#[test]
fn bad_window_size_input_is_refused() {
    let d = Daemon::start();
    let bad = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "b1", "command": "bash", "window_size": "huge"}),
    );
    assert_error(
        &bad,
        400,
        "INVALID_REQUEST",
        Some("window_size must be one of smallest, largest, latest or manual, not \"huge\""),
    );
    assert_eq!(d.get("/api/sessions/b1").0, 404, "nothing was spawned");
    d.spawn("b2", "bash", &["--norc", "--noprofile"]);
    assert_error(
        &d.post("/api/sessions/b2/resize", json!({"window_size": 3})),
        400,
        "INVALID_REQUEST",
        None,
    );
    // Sizes outside 1-1000 in a viewer frame are ignored, never applied.
    let mut v = d.ws("/api/sessions/b2?create=0");
    v.send(json!({"type": "resize", "cols": 0, "rows": 5000}));
    v.send(json!({"type": "resize", "cols": "x", "rows": 5}));
    v.send(json!({"type": "resize", "cols": 50}));
    v.send(json!({"type": "resize", "cols": 50, "rows": 10}));
    let s = d.wait_session("b2", "the valid size", |s| size_of(s) == (50, 10));
    assert_eq!(
        s["sizing"]["viewers"],
        json!([{"cols": 50, "rows": 10}]),
        "{s}"
    );
    // Wrapped sessions have no size of their own here: their owner decides.
    d.post(
        "/api/sessions/register",
        json!({"session_id": "wr", "command": "x"}),
    );
    assert_error(
        &d.post("/api/sessions/wr/resize", json!({"window_size": "manual"})),
        409,
        "UNSUPPORTED_SESSION_TYPE",
        None,
    );
    // A config file with a bad value stops the daemon with the line and key.
    let out = d.cli_env(&["config", "show"], &[("TELEPTY_WINDOW_SIZE", "wide")]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TELEPTY_WINDOW_SIZE: window_size must be"),
        "{}",
        show(&out)
    );
}
