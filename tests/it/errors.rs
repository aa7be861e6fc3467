//! The JSON error contract (API.md §1.3), id validation (§1.4) and per-route validation order.

use crate::common;

use common::*;
use serde_json::json;

const INVALID_ID: &str = "Invalid session id: use 1-128 characters from A-Z a-z 0-9 . _ -";

#[test]
fn malformed_oversized_and_unknown_requests() {
    let d = Daemon::start();

    assert_error(
        &d.post_raw("/api/sessions/spawn", "{bad"),
        400,
        "INVALID_JSON",
        Some("Malformed JSON body."),
    );
    assert_error(
        &d.post_raw("/api/bus/publish", "{\"type\": "),
        400,
        "INVALID_JSON",
        Some("Malformed JSON body."),
    );
    // An empty body counts as {} (so the route's own validation answers).
    assert_error(
        &d.post_raw("/api/sessions/spawn", ""),
        400,
        "INVALID_REQUEST",
        Some("session_id is strictly required."),
    );
    // A body is JSON whatever its Content-Type.
    let r = d.raw(
        "POST",
        "/api/sessions/register",
        &[("Content-Type", "text/plain")],
        Some(br#"{"session_id":"ctype"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // > 1 MiB.
    let big = format!("{{\"prompt\":\"{}\"}}", "x".repeat(1024 * 1024 + 16));
    let r = d.raw(
        "POST",
        "/api/sessions/ctype/inject",
        &[],
        Some(big.as_bytes()),
    );
    assert_error(
        &r.pair(),
        413,
        "PAYLOAD_TOO_LARGE",
        Some("Request body exceeds 1 MiB."),
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );

    // Unknown routes and methods: JSON 404 `Cannot <METHOD> <path>`.
    assert_error(
        &d.get("/api/nope"),
        404,
        "NOT_FOUND",
        Some("Cannot GET /api/nope"),
    );
    assert_error(
        &d.post("/api/nope/deeper", json!({})),
        404,
        "NOT_FOUND",
        Some("Cannot POST /api/nope/deeper"),
    );
    assert_error(
        &d.delete("/api/health"),
        404,
        "NOT_FOUND",
        Some("Cannot DELETE /api/health"),
    );

    // Unknown session: 404 with `requested`.
    let r = d.get("/api/sessions/no-such-session");
    assert_error(&r, 404, "SESSION_NOT_FOUND", Some("Session not found"));
    assert_eq!(r.1["requested"], json!("no-such-session"), "{}", r.1);
    let r = d.post(
        "/api/sessions/no-such-session/inject",
        json!({"prompt": "x"}),
    );
    assert_error(&r, 404, "SESSION_NOT_FOUND", None);
    assert_eq!(r.1["requested"], json!("no-such-session"), "{}", r.1);
}

#[test]
fn invalid_ids_in_paths_are_400_not_404() {
    let d = Daemon::start();
    for (path, requested) in [
        ("/api/sessions/a..b/inject", "a..b"),
        ("/api/sessions/a%2Fb/inject", "a/b"),
        ("/api/sessions/a%20b/inject", "a b"),
        ("/api/sessions/x%40host/inject", "x@host"),
    ] {
        let r = d.raw("POST", path, &[], Some(br#"{"prompt":"x"}"#));
        let pair = r.pair();
        assert_error(&pair, 400, "INVALID_SESSION_ID", Some(INVALID_ID));
        assert_eq!(
            pair.1["requested"],
            json!(requested),
            "POST {path}: {}",
            pair.1
        );
    }
    let long = "a".repeat(129);
    assert_error(
        &d.get(&format!("/api/sessions/{long}")),
        400,
        "INVALID_SESSION_ID",
        Some(INVALID_ID),
    );
    let ok = "a".repeat(128);
    assert_error(
        &d.get(&format!("/api/sessions/{ok}")),
        404,
        "SESSION_NOT_FOUND",
        None,
    );
    // Invalid ids in bodies.
    assert_error(
        &d.post("/api/sessions/register", json!({"session_id": "has space"})),
        400,
        "INVALID_SESSION_ID",
        Some(INVALID_ID),
    );
    assert_error(
        &d.post("/api/sessions/register", json!({})),
        400,
        "INVALID_REQUEST",
        Some("session_id is required"),
    );
    for reserved in ["multicast", "broadcast", ".", "x..y"] {
        assert_error(
            &d.post("/api/sessions/register", json!({"session_id": reserved})),
            400,
            "INVALID_SESSION_ID",
            None,
        );
    }
}

/// Register holds the bounds spawn and resize hold, and the document states (issue 14: it
/// took `cols: 0` and stored any `delivery`); nothing is registered by a refused body.
#[test]
fn register_refuses_what_its_document_does_not_allow() {
    let d = Daemon::start();
    for (body, message) in [
        (
            json!({"session_id": "r", "cols": 0}),
            "cols must be an integer between 1 and 1000",
        ),
        (
            json!({"session_id": "r", "rows": "1001"}),
            "rows must be an integer between 1 and 1000",
        ),
        (
            json!({"session_id": "r", "delivery": "unix:/tmp/x"}),
            "delivery must be an object",
        ),
        (
            json!({"session_id": "r", "command": 7}),
            "command must be a string",
        ),
        (
            json!({"session_id": "r", "record": "yes"}),
            "record must be a boolean",
        ),
    ] {
        assert_error(
            &d.post("/api/sessions/register", body),
            400,
            "INVALID_REQUEST",
            Some(message),
        );
    }
    assert_eq!(d.get("/api/sessions").1, json!([]));
    let (st, r) = d.post(
        "/api/sessions/register",
        json!({"session_id": "r", "cols": "120", "rows": 40.0, "term": null}),
    );
    assert_eq!(st, 201, "{r}");
}

#[test]
fn spawn_validation_order() {
    let d = Daemon::start();
    let spawn = |body: serde_json::Value| d.post("/api/sessions/spawn", body);

    assert_error(
        &spawn(json!({})),
        400,
        "INVALID_REQUEST",
        Some("session_id is strictly required."),
    );
    assert_error(
        &spawn(json!({"command": "bash"})),
        400,
        "INVALID_REQUEST",
        Some("session_id is strictly required."),
    );
    // Invalid id is checked before the missing command.
    let r = spawn(json!({"session_id": "a..b"}));
    assert_error(&r, 400, "INVALID_SESSION_ID", Some(INVALID_ID));
    assert_eq!(r.1["requested"], json!("a..b"), "{}", r.1);

    d.spawn("dup", "sleep", &["600"]);
    // A live id is checked before the missing command.
    assert_error(
        &spawn(json!({"session_id": "dup"})),
        409,
        "SESSION_EXISTS",
        Some("Session ID 'dup' is already active."),
    );
    assert_error(
        &spawn(json!({"session_id": "dup", "command": "bash"})),
        409,
        "SESSION_EXISTS",
        Some("Session ID 'dup' is already active."),
    );
    assert_error(
        &spawn(json!({"session_id": "new1"})),
        400,
        "INVALID_REQUEST",
        Some("command is required"),
    );
    assert_error(
        &spawn(
            json!({"session_id": "new1", "command": "bash", "cwd": "/nonexistent/telepty-test-dir"}),
        ),
        400,
        "INVALID_REQUEST",
        None,
    );
    for (k, v) in [
        ("cols", json!(0)),
        ("cols", json!(1001)),
        ("rows", json!(0)),
        ("rows", json!("abc")),
        ("cols", json!(1.5)),
    ] {
        let mut body = json!({"session_id": "new1", "command": "bash"});
        body[k] = v.clone();
        assert_error(&spawn(body), 400, "INVALID_REQUEST", None);
    }
    // A program or directory that is not there is the caller's mistake: 400, nothing started
    // (issue 14: it was a 500, most of the fuzzer's 5xx).
    assert_error(
        &spawn(json!({"session_id": "new1", "command": "/nonexistent/telepty-no-such-binary"})),
        400,
        "SPAWN_FAILED",
        Some("Command not found: /nonexistent/telepty-no-such-binary"),
    );
    assert_error(
        &spawn(json!({"session_id": "new1", "command": "telepty-no-such-program"})),
        400,
        "SPAWN_FAILED",
        None,
    );
    assert_error(&d.get("/api/sessions/new1"), 404, "SESSION_NOT_FOUND", None);
    // Extension `env`: names a shell accepts, string values.
    for env in [json!({"1BAD": "x"}), json!({"OK": 1}), json!(["A=b"])] {
        let body = json!({"session_id": "new1", "command": "bash", "env": env});
        assert_error(&spawn(body), 400, "INVALID_REQUEST", None);
    }
    // Numeric strings are accepted for cols/rows.
    let r = spawn(
        json!({"session_id": "numstr", "command": "sleep", "args": ["600"], "cols": "91", "rows": "22"}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    let s = d.session("numstr");
    assert_eq!(
        (s["cols"].clone(), s["rows"].clone()),
        (json!(91), json!(22)),
        "{s}"
    );
    // Nothing was created by the failed attempts.
    let mut ids = d.list_ids();
    ids.sort();
    assert_eq!(ids, vec!["dup".to_string(), "numstr".to_string()]);
}

#[test]
fn route_specific_validation_errors() {
    let d = Daemon::start();
    d.spawn("v", "sleep", &["600"]);

    for body in [
        json!({}),
        json!({"prompt": 5}),
        json!({"prompt": null}),
        json!({"prompt": ["a"]}),
    ] {
        assert_error(
            &d.post("/api/sessions/v/inject", body),
            400,
            "INVALID_REQUEST",
            Some("prompt is required"),
        );
    }
    // A non-object body is treated as {}.
    assert_error(
        &d.post_raw("/api/sessions/v/inject", "[1,2]"),
        400,
        "INVALID_REQUEST",
        Some("prompt is required"),
    );

    let r = d.post(
        "/api/sessions/v/keys",
        json!({"keys": ["enter", "nosuchkey"]}),
    );
    assert_error(&r, 400, "UNKNOWN_KEY", Some("Unknown key 'nosuchkey'"));
    assert_eq!(r.1["key"], json!("nosuchkey"), "{}", r.1);
    let valid = r.1["valid_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("valid_keys: {}", r.1));
    for k in ["enter", "ctrl+c", "up", "tab", "escape", "f12", "pageup"] {
        assert!(valid.contains(&json!(k)), "valid_keys lacks {k}: {valid:?}");
    }

    let r = d.post("/api/sessions/v/wait", json!({"pattern": "(unclosed"}));
    assert_error(&r, 400, "INVALID_PATTERN", None);

    // State self-report validation.
    assert_error(
        &d.post("/api/sessions/v/state", json!({})),
        400,
        "INVALID_REQUEST",
        Some("phase is required"),
    );
    assert_error(
        &d.post("/api/sessions/v/state", json!({"phase": "x", "seq": -1})),
        400,
        "INVALID_REQUEST",
        Some("seq must be a non-negative integer"),
    );
    assert_error(
        &d.post(
            "/api/sessions/v/state",
            json!({"phase": "x", "needs_input": "yes"}),
        ),
        400,
        "INVALID_REQUEST",
        Some("needs_input must be a boolean"),
    );
    let r = d.post(
        "/api/sessions/v/state",
        json!({"phase": "  building ", "task": "t"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["semantic"]["phase"], json!("building"), "{}", r.1);
    assert_eq!(r.1["semantic"]["current_task"], json!("t"), "{}", r.1);

    // Every error so far came back as JSON; a stack trace or HTML never does.
    let r = d.raw("GET", "/api/nope", &[], None);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
}
