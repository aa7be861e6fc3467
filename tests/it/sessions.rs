//! Session management (API.md §2, §4), exit tracking, persistence across restarts (§14) and the
//! daemon info routes (§3, §17 OpenAPI).

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

#[test]
fn session_object_has_the_documented_fields() {
    let d = Daemon::start();
    d.spawn_bash("shape");
    let list = d.list();
    assert_eq!(list.len(), 1, "{list:?}");
    let s = &list[0];
    for f in [
        "id",
        "locator",
        "type",
        "command",
        "cwd",
        "backend",
        "terminal",
        "termProgram",
        "term",
        "createdAt",
        "lastActivityAt",
        "idleSeconds",
        "active_clients",
        "ready",
        "healthStatus",
        "healthReason",
        "disconnectedSeconds",
        "transport",
        "semantic",
        "autoState",
        "mailbox",
        "exitCode",
        "exitSignal",
        "exitedAt",
        "lastOutputAt",
        "pid",
        "cols",
        "rows",
        "aliases",
    ] {
        assert!(s.get(f).is_some(), "session object lacks `{f}`: {s}");
    }
    assert_eq!(s["id"], json!("shape"));
    assert_eq!(s["type"], json!("spawned"));
    assert_eq!(s["backend"], json!("pty"));
    assert_eq!(s["terminal"], json!("daemon-pty"));
    assert_eq!(s["healthStatus"], json!("CONNECTED"));
    assert_eq!(s["healthReason"], json!("PTY_RUNNING"));
    assert_eq!(s["ready"], json!(true));
    assert_eq!(s["exitCode"], json!(null));
    assert_eq!(s["cols"], json!(100));
    assert_eq!(s["rows"], json!(30));
    assert_eq!(s["aliases"], json!([]));
    assert_eq!(s["locator"]["session_id"], json!("shape"), "{s}");
    let iso = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    assert!(
        iso.is_match(s["createdAt"].as_str().unwrap_or("")),
        "createdAt not ISO ms UTC: {s}"
    );
    assert!(s["pid"].as_u64().is_some_and(|p| p > 1), "{s}");
    assert!(
        s.get("alias").is_none() || s["alias"].is_null(),
        "`alias` is detail-only: {s}"
    );

    let detail = d.session("shape");
    assert_eq!(detail["alias"], json!(null), "{detail}");
    assert!(detail.get("lastInjectFrom").is_some(), "{detail}");

    assert_error(
        &d.get("/api/sessions?idle_gt=abc"),
        400,
        "INVALID_REQUEST",
        Some("idle_gt must be a number"),
    );
    let (st, v) = d.get("/api/sessions?idle_gt=100000");
    assert_eq!((st, v), (200, json!([])));
}

#[test]
fn rename_moves_the_session_and_keeps_an_alias() {
    let d = Daemon::start();
    let mut bus = d.bus();
    d.spawn_bash("orig");
    let r = d.post("/api/sessions/register", json!({"session_id": "other"}));
    assert_eq!(r.0, 201, "{}", r.1);

    assert_error(
        &d.patch("/api/sessions/orig", json!({})),
        400,
        "INVALID_REQUEST",
        Some("new_id is required"),
    );
    assert_error(
        &d.patch("/api/sessions/orig", json!({"new_id": "bad id"})),
        400,
        "INVALID_SESSION_ID",
        None,
    );
    assert_error(
        &d.patch("/api/sessions/orig", json!({"new_id": "other"})),
        409,
        "SESSION_EXISTS",
        Some("Session ID 'other' is already in use."),
    );

    let r = d.patch("/api/sessions/orig", json!({"new_id": "renamed"}));
    assert_eq!(
        r,
        (
            200,
            json!({"success": true, "old_id": "orig", "new_id": "renamed"})
        )
    );
    let ev = bus.recv_until(T, "session_rename event", |v| v["type"] == "session_rename");
    assert_eq!(ev["old_id"], json!("orig"), "{ev}");
    assert_eq!(ev["new_id"], json!("renamed"), "{ev}");
    assert_eq!(ev["sender"], json!("daemon"), "{ev}");

    let ids = d.list_ids();
    assert!(
        ids.contains(&"renamed".to_string()) && !ids.contains(&"orig".to_string()),
        "{ids:?}"
    );

    d.inject("renamed", "echo via-new");
    d.wait_line("renamed", "via-new");
    d.inject("orig", "echo via-old");
    d.wait_line("renamed", "via-old");

    let by_old = d.session("orig");
    assert_eq!(by_old["id"], json!("renamed"), "{by_old}");
    assert_eq!(by_old["alias"], json!("orig"), "{by_old}");
    assert_eq!(by_old["aliases"], json!(["orig"]), "{by_old}");
    assert_eq!(d.session("renamed")["alias"], json!(null));

    // Aliases follow their target through further renames; the mailbox moves with it.
    let r = d.patch("/api/sessions/renamed", json!({"new_id": "final"}));
    assert_eq!(r.0, 200, "{}", r.1);
    let by_first = d.session("orig");
    assert_eq!(by_first["id"], json!("final"), "{by_first}");
    let mut aliases: Vec<String> = serde_json::from_value(by_first["aliases"].clone()).unwrap();
    aliases.sort();
    assert_eq!(
        aliases,
        vec!["orig".to_string(), "renamed".to_string()],
        "{by_first}"
    );
    let m = d.get("/api/sessions/final/mailbox").1;
    assert_eq!(m["session_id"], json!("final"), "{m}");
    assert_eq!(
        m["pending"].as_array().map(|p| p.len()),
        Some(2),
        "the mailbox must move with the session: {m}"
    );
    let r = d.patch("/api/sessions/final", json!({"new_id": "renamed"}));
    assert_eq!(r.0, 200, "renaming back onto one's own alias: {}", r.1);

    // A rename to a taken id is refused after the move too, and via the alias.
    assert_error(
        &d.patch("/api/sessions/orig", json!({"new_id": "other"})),
        409,
        "SESSION_EXISTS",
        None,
    );

    // Delete drops the aliases with the session.
    let del = d.delete("/api/sessions/orig");
    assert_eq!(del, (200, json!({"success": true, "status": "closing"})));
    assert_error(
        &d.get("/api/sessions/renamed"),
        404,
        "SESSION_NOT_FOUND",
        None,
    );
    assert_error(&d.get("/api/sessions/orig"), 404, "SESSION_NOT_FOUND", None);
}

#[test]
fn exited_children_keep_their_exit_status() {
    let d = Daemon::start();
    let mut bus = d.bus();

    d.spawn("e7", "bash", &["-c", "exit 7"]);
    let s = d.wait_session("e7", "exitCode 7", |s| s["exitCode"] == json!(7));
    assert_eq!(s["healthStatus"], json!("DISCONNECTED"), "{s}");
    assert_eq!(s["healthReason"], json!("PTY_EXITED"), "{s}");
    assert_eq!(s["exitSignal"], json!(null), "{s}");
    assert_eq!(s["ready"], json!(false), "{s}");
    assert!(s["exitedAt"].is_string(), "{s}");
    let listed = d
        .list()
        .into_iter()
        .find(|x| x["id"] == "e7")
        .expect("exited session stays listed");
    assert_eq!(listed["exitCode"], json!(7), "{listed}");

    let ev = bus.recv_until(T, "session_exit for e7", |v| {
        v["type"] == "session_exit" && v["session_id"] == "e7"
    });
    assert_eq!(ev["exit_code"], json!(7), "{ev}");
    assert_eq!(ev["signal"], json!(null), "{ev}");
    assert_eq!(ev["event_type"], json!("session_exit"), "{ev}");
    assert_eq!(ev["sender"], json!("daemon"), "{ev}");

    // Inject into an exited session: pre-flight 503.
    assert_error(
        &d.post("/api/sessions/e7/inject", json!({"prompt": "x"})),
        503,
        "DISCONNECTED",
        Some("PTY process is not connected."),
    );

    d.spawn("sig", "bash", &["-c", "kill -TERM $$"]);
    let s = d.wait_session("sig", "exitSignal SIGTERM", |s| {
        s["exitSignal"] == json!("SIGTERM")
    });
    assert_eq!(s["healthReason"], json!("PTY_EXITED"), "{s}");
    let ev = bus.recv_until(T, "session_exit for sig", |v| {
        v["type"] == "session_exit" && v["session_id"] == "sig"
    });
    assert_eq!(ev["signal"], json!("SIGTERM"), "{ev}");

    // An exited session does not hold its id: spawn replaces it.
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "e7", "command": "bash", "args": ["-c", "exit 0"]}),
    );
    assert_eq!(r.0, 201, "respawn over an exited id: {}", r.1);
    d.wait_session("e7", "replacement exits 0", |s| s["exitCode"] == json!(0));
}

#[test]
fn wrapped_session_and_rename_survive_a_restart() {
    let mut d = Daemon::start();
    let r = d.post("/api/sessions/register", json!({"session_id": "w1"}));
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["type"], json!("wrapped"), "{}", r.1);
    assert_eq!(r.1["command"], json!("wrapped"), "{}", r.1);
    let r = d.post("/api/sessions/register", json!({"session_id": "w1"}));
    assert_eq!(r.0, 200, "re-register: {}", r.1);
    assert_eq!(r.1["reregistered"], json!(true), "{}", r.1);
    let s = d.session("w1");
    assert_eq!(s["healthStatus"], json!("DISCONNECTED"), "{s}");
    assert_eq!(s["healthReason"], json!("OWNER_DISCONNECTED"), "{s}");

    let r = d.patch("/api/sessions/w1", json!({"new_id": "w2"}));
    assert_eq!(r.0, 200, "{}", r.1);
    d.spawn("sp", "sleep", &["600"]);
    let sp_pid = d.session("sp")["pid"].clone();
    assert!(sp_pid.is_u64(), "{sp_pid}");

    let st = d.stop();
    assert_eq!(st.code(), Some(0), "SIGTERM must exit 0 (§14.5)");
    assert!(
        !d.home_path().join(".telepty/daemon-state.json").exists(),
        "daemon-state.json must be removed on SIGTERM"
    );
    let file = d.home_path().join(".config/aigentry-telepty/sessions.json");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("sessions.json written"))
            .unwrap();
    assert!(
        saved.get("w2").is_some() && saved.get("w1").is_none(),
        "{saved}"
    );

    d.restart();
    let s = d.session("w2");
    assert_eq!(s["id"], json!("w2"), "{s}");
    assert_eq!(s["type"], json!("wrapped"), "{s}");
    assert_eq!(s["healthStatus"], json!("DISCONNECTED"), "{s}");
    assert!(
        s["aliases"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("w1"))),
        "{s}"
    );
    let via_alias = d.session("w1");
    assert_eq!(via_alias["id"], json!("w2"), "{via_alias}");
    assert_eq!(via_alias["alias"], json!("w1"), "{via_alias}");
    // A spawned session is not restored from the file: it never stopped. Its holder kept it
    // running across the restart, and the new daemon adopted it with the same process.
    let sp = d.session("sp");
    assert_eq!(sp["type"], json!("spawned"), "{sp}");
    assert_eq!(sp["pid"], sp_pid, "{sp}");
    assert_eq!(sp["healthStatus"], json!("CONNECTED"), "{sp}");
}

#[test]
fn health_meta_and_peers() {
    let d = Daemon::start_with(
        &[
            ("TELEPTY_MACHINE_ID", "mach-test"),
            ("TELEPTY_COMPAT_VERSION", "0.1.96"),
        ],
        None,
    );
    let (st, h) = d.get("/api/health");
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["status"], json!("ok"), "{h}");
    assert_eq!(h["version"], json!("0.1.96"), "{h}");
    // Additive: whether session state reaches the disk (tests/durable.rs).
    assert_eq!(h["persistence"]["ok"], json!(true), "{h}");

    let (st, m) = d.get("/api/meta");
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["name"], json!("telepty"), "{m}");
    assert_eq!(m["implementation"], json!("telepty-rs"), "{m}");
    assert_eq!(m["version"], json!("0.1.96"), "{m}");
    assert_eq!(m["port"], json!(d.port), "{m}");
    assert_eq!(m["host"], json!("127.0.0.1"), "{m}");
    assert_eq!(m["pid"], json!(d.pid()), "{m}");
    assert_eq!(m["machine_id"], json!("mach-test"), "{m}");
    assert_eq!(m["terminal"], json!("headless"), "{m}");
    let caps: BTreeSet<&str> = m["capabilities"]
        .as_array()
        .unwrap_or_else(|| panic!("capabilities: {m}"))
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "sessions",
        "wrapped-sessions",
        "singleton-daemon",
        "handoff-inbox",
        "deliberation-threads",
        "cross-machine",
        "mailbox",
        "vt-screen",
        "wait",
        "keys",
        "resize",
        "attach-snapshot",
        "inject-wait-delivered",
        "session-exit",
        "openapi",
        "durable-state",
        "resurrect",
    ] {
        assert!(caps.contains(c), "capability `{c}` missing: {caps:?}");
    }
    // Recording is optional, but the capability must tell the truth about it.
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "rec", "command": "bash", "args": ["-c", "echo recorded-line; sleep 600"], "record": true}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    d.wait_line("rec", "recorded-line");
    if caps.contains("recording") {
        let resp = d.raw("GET", "/api/sessions/rec/recording", &[], None);
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(
            resp.header("content-type")
                .is_some_and(|c| c.starts_with("application/x-asciicast")),
            "{:?}",
            resp.headers
        );
        let text = resp.text();
        let header: Value =
            serde_json::from_str(text.lines().next().unwrap_or("")).expect("asciicast header line");
        assert_eq!(header["version"], json!(2), "{header}");
        assert_eq!(header["title"], json!("rec"), "{header}");
        assert!(
            text.contains("recorded-line"),
            "output events missing: {text}"
        );
    } else {
        assert_error(
            &d.get("/api/sessions/rec/recording"),
            404,
            "RECORDING_NOT_AVAILABLE",
            Some("Recording is not enabled for this session."),
        );
    }

    let (st, p) = d.get("/api/peers");
    assert_eq!((st, p), (200, json!({"active": [], "known": {}})));

    // Plain daemon: the real version, non-empty.
    let d2 = Daemon::start();
    let v = d2.get("/api/health").1;
    assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert_ne!(v["version"], json!("0.1.96"));
}

#[test]
fn openapi_document_covers_every_route() {
    let d = Daemon::start();
    let (st, doc) = d.get("/api/openapi.json");
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], json!("3.1.0"), "openapi version");
    let paths = doc["paths"].as_object().expect("paths object");
    let param = regex::Regex::new(r"\{[^}]+\}").unwrap();
    let norm = |p: &str| param.replace_all(p, "{}").into_owned();
    let have: std::collections::BTreeMap<String, &Value> =
        paths.iter().map(|(k, v)| (norm(k), v)).collect();
    let expected: &[(&str, &[&str])] = &[
        ("/api/health", &["get"]),
        ("/api/meta", &["get"]),
        ("/api/peers", &["get"]),
        ("/api/openapi.json", &["get"]),
        ("/api/sessions", &["get"]),
        ("/api/sessions/spawn", &["post"]),
        ("/api/sessions/register", &["post"]),
        ("/api/sessions/{}", &["get", "patch", "delete"]),
        ("/api/sessions/{}/state", &["get", "post"]),
        ("/api/sessions/{}/inject", &["post"]),
        ("/api/sessions/multicast/inject", &["post"]),
        ("/api/sessions/broadcast/inject", &["post"]),
        ("/api/sessions/{}/submit", &["post"]),
        ("/api/sessions/submit-all", &["post"]),
        ("/api/sessions/{}/screen", &["get"]),
        ("/api/sessions/{}/mailbox", &["get", "delete"]),
        ("/api/sessions/{}/mailbox/ack", &["post"]),
        ("/api/sessions/{}/mailbox/dead-letter", &["delete"]),
        ("/api/sessions/{}/wait", &["post"]),
        ("/api/sessions/{}/keys", &["post"]),
        ("/api/sessions/{}/resize", &["post"]),
        ("/api/sessions/{}/recording", &["get"]),
        ("/api/bus/publish", &["post"]),
        ("/api/bus", &["get"]),
        ("/api/handoff", &["get", "post"]),
        ("/api/handoff/{}", &["get", "patch"]),
        ("/api/handoff/{}/claim", &["post"]),
        ("/api/threads", &["get", "post"]),
        ("/api/threads/{}", &["get", "patch"]),
        ("/api/sessions/lost", &["get"]),
        ("/api/sessions/resurrect", &["post"]),
    ];
    let mut missing = Vec::new();
    for (path, methods) in expected {
        match have.get(*path) {
            None => missing.push(format!("{path} (path)")),
            Some(item) => {
                for m in *methods {
                    if item.get(*m).is_none() {
                        missing.push(format!("{} {path}", m.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "OpenAPI document lacks: {missing:?}\nhas: {:?}",
        have.keys()
    );
}

#[test]
fn spawned_environment_prompt_and_locator() {
    let d = Daemon::start_with(
        &[
            ("CLAUDECODE", "1"),
            ("CLAUDECODE_ENTRYPOINT", "cli"),
            ("CODEX_CI", "1"),
            ("CODEX_THREAD_ID", "t"),
            ("CODEX_HOME", "/codex-home"),
            ("TERM", "dumb"),
        ],
        None,
    );
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "envs", "command": "bash", "args": ["--norc", "--noprofile"], "type": "USER"}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    let home = d.home_path().to_string_lossy().into_owned();
    assert_eq!(
        r.1["cwd"],
        json!(home),
        "the default cwd is the daemon's cwd: {}",
        r.1
    );
    d.wait_screen("envs", "USER prompt", |s| {
        s.lines()
            .last()
            .is_some_and(|l| l.starts_with("[USER: envs] ~ "))
    });
    let ansi = d.get("/api/sessions/envs/screen?format=ansi").1;
    let green = regex::Regex::new(r"\x1b\[(?:[0-9;]*;)?32m\[USER: envs\]").unwrap();
    assert!(
        green.is_match(ansi["screen"].as_str().unwrap()),
        "USER prompts are green: {ansi}"
    );

    d.inject(
        "envs",
        r#"echo "E:$TELEPTY_SESSION_ID:$TERM:${CLAUDECODE-no}:${CLAUDECODE_ENTRYPOINT-no}:${CODEX_CI-no}:${CODEX_THREAD_ID-no}:${CODEX_HOME-no}""#,
    );
    d.wait_line("envs", "E:envs:xterm-256color:no:no:no:no:/codex-home");

    let s = d.session("envs");
    let project = d
        .home_path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(s["locator"]["project_id"], json!(project), "{s}");
    assert!(s["locator"]["machine_id"].is_string(), "{s}");
}

#[test]
fn delete_kills_a_hangup_ignoring_child_and_closes_viewers() {
    let d = Daemon::start();
    d.spawn(
        "stubborn",
        "bash",
        &["-c", "trap '' HUP; echo trapped; while :; do sleep 1; done"],
    );
    d.wait_line("stubborn", "trapped");
    let pid = d.session("stubborn")["pid"].as_u64().unwrap();
    // This child ignores SIGHUP: make sure it cannot outlive a failed test.
    struct KillOnDrop(u64);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            unsafe {
                libc::kill(self.0 as libc::pid_t, libc::SIGKILL);
            }
        }
    }
    let _guard = KillOnDrop(pid);
    let mut viewer = d.ws("/api/sessions/stubborn");
    d.wait_clients("stubborn", 1);

    let r = d.delete("/api/sessions/stubborn");
    assert_eq!(r, (200, json!({"success": true, "status": "closing"})));
    assert_error(
        &d.get("/api/sessions/stubborn"),
        404,
        "SESSION_NOT_FOUND",
        None,
    );
    assert!(!d.list_ids().contains(&"stubborn".to_string()));
    let ((code, reason), _) = viewer.expect_close(T);
    assert_eq!((code, reason.as_str()), (1000, "Session exited"));
    // SIGHUP is ignored, so SIGKILL follows after about 2 s.
    wait_until(T, "the child is gone", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    });
    // The id is free again.
    d.spawn("stubborn", "sleep", &["600"]);
}

#[test]
fn reregister_updates_metadata_but_never_the_type() {
    let d = Daemon::start();
    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "meta", "term_program": "WezTerm", "term": "xterm-kitty", "cwd": "/tmp", "backend": "cmux"}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    let s = d.session("meta");
    assert_eq!(s["termProgram"], json!("WezTerm"), "{s}");
    assert_eq!(
        s["terminal"],
        json!("WezTerm"),
        "termProgram wins the terminal label: {s}"
    );
    assert_eq!(s["backend"], json!("cmux"), "{s}");
    assert_eq!(s["cwd"], json!("/tmp"), "{s}");
    assert_eq!(s["locator"]["project_id"], json!("tmp"), "{s}");

    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "meta", "term_program": null}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let s = d.session("meta");
    assert_eq!(
        s["termProgram"],
        json!(null),
        "null clears term_program: {s}"
    );
    assert_eq!(s["term"], json!("xterm-kitty"), "absent keys are kept: {s}");
    assert_eq!(s["terminal"], json!("kitty"), "{s}");

    d.spawn("sp", "sleep", &["600"]);
    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "sp", "term_program": "X"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["type"], json!("spawned"), "{}", r.1);
    assert_eq!(r.1["reregistered"], json!(true), "{}", r.1);
    let s = d.session("sp");
    assert_eq!(s["type"], json!("spawned"), "{s}");
    assert_eq!(s["termProgram"], json!("X"), "{s}");
    assert_eq!(s["healthStatus"], json!("CONNECTED"), "{s}");
}

#[test]
fn daemon_files_and_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = d.home_path().join(".telepty");
    assert_eq!(mode(&dir), 0o700, ".telepty must be 0700");
    assert_eq!(
        mode(&dir.join("config.json")),
        0o600,
        "config.json must be 0600"
    );
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_uuid_v4(&cfg["authToken"]);
    assert!(cfg["createdAt"].is_string(), "{cfg}");

    let state_path = dir.join("daemon-state.json");
    assert_eq!(mode(&state_path), 0o600, "daemon-state.json must be 0600");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state["pid"], json!(d.pid()), "{state}");
    assert_eq!(state["port"], json!(d.port), "{state}");
    assert_eq!(state["host"], json!("127.0.0.1"), "{state}");
    assert!(
        state["startedAt"].is_string() && state["version"].is_string(),
        "{state}"
    );

    d.post("/api/sessions/register", json!({"session_id": "persisted"}));
    let sessions = d.home_path().join(".config/aigentry-telepty/sessions.json");
    wait_until(T, "sessions.json written", || sessions.exists());
    assert_eq!(mode(&sessions), 0o600, "sessions.json must be 0600");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&sessions).unwrap()).unwrap();
    assert_eq!(saved["persisted"]["id"], json!("persisted"), "{saved}");
    assert_eq!(saved["persisted"]["type"], json!("wrapped"), "{saved}");
}

#[test]
fn config_files_are_honoured_and_preserved() {
    let d = Daemon::start_full(
        &[],
        None,
        &[
            (
                ".telepty/config.json",
                r#"{"authToken":"0b7f2c1e-1111-4222-8333-444455556666","createdAt":"2026-01-01T00:00:00.000Z","allowed_origins":["http://json.example"],"customKey":5}"#,
            ),
            (
                ".config/telepty/config.toml",
                "allowed_hosts = [\"toml.example\"]\n",
            ),
        ],
    );
    assert_eq!(
        d.token, "0b7f2c1e-1111-4222-8333-444455556666",
        "an existing token is kept"
    );
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(d.home_path().join(".telepty/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        cfg["customKey"],
        json!(5),
        "unknown keys are preserved: {cfg}"
    );
    let r = d.raw(
        "GET",
        "/api/sessions",
        &[("Origin", "http://json.example")],
        None,
    );
    assert_eq!(
        r.status,
        200,
        "allowed_origins from config.json: {}",
        r.text()
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://json.example")
    );
    let r = d.raw("GET", "/api/sessions", &[("Host", "toml.example:1")], None);
    assert_eq!(
        r.status,
        200,
        "allowed_hosts from config.toml: {}",
        r.text()
    );

    // An unparsable config.json is regenerated.
    let d2 = Daemon::start_full(&[], None, &[(".telepty/config.json", "{not json")]);
    assert_uuid_v4(&json!(d2.token));
}

/// API.md §16(o): a spawned session's own output counts as activity, so a chatty program is
/// never "idle" while a silent one is.
#[test]
fn output_counts_as_activity_for_idle_seconds() {
    let d = Daemon::start();
    d.spawn(
        "chatty",
        "bash",
        &["-c", "while :; do echo tick; sleep 0.2; done"],
    );
    d.spawn("silent", "sleep", &["1000"]);
    // Both sessions become older than 2 s (the silent one's idleSeconds says so).
    d.wait_session("silent", "idle for 2 s", |s| {
        s["idleSeconds"].as_u64().is_some_and(|i| i >= 2)
    });
    let chatty = d.session("chatty");
    assert!(
        chatty["idleSeconds"].as_u64().is_some_and(|i| i <= 1),
        "chatty counted idle: {chatty}"
    );
    assert!(chatty["lastOutputAt"].is_string(), "{chatty}");
    let (status, idle) = d.get("/api/sessions?idle_gt=1");
    assert_eq!(status, 200);
    let ids: Vec<&str> = idle
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["silent"], "{idle}");
}

/// Issue 12: a shell's state is the kernel's foreground: idle at its prompt from the first
/// tick, working while a quiet job runs (past the idle timeout), idle again after ctrl+c; a
/// resize that redraws the prompt is no activity.
#[test]
fn a_shells_state_follows_its_foreground_job() {
    let d = Daemon::start_with(&[("TELEPTY_STATE_IDLE_TIMEOUT_MS", "1000")], None);
    d.spawn_bash("sh1");
    let state = |d: &Daemon| d.session("sh1")["autoState"]["state"].clone();
    wait_until(Duration::from_secs(5), "idle at the prompt", || {
        state(&d) == json!("idle")
    });
    let mut bus = d.ws("/api/bus");
    let r = d.post("/api/sessions/sh1/resize", json!({"cols": 90, "rows": 25}));
    assert_eq!(r.0, 200, "{}", r.1);
    let r = d.post("/api/sessions/sh1/resize", json!({"cols": 100, "rows": 30}));
    assert_eq!(r.0, 200, "{}", r.1);
    let until = Instant::now() + Duration::from_millis(2500);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some(WsEvent::Json(v)) = bus.recv(left) {
            assert_ne!(
                v["type"],
                json!("session_auto_state"),
                "a resize changed state: {v}"
            );
        }
    }
    assert_eq!(state(&d), json!("idle"));

    d.inject("sh1", "sleep 100");
    wait_until(Duration::from_secs(5), "working in sleep", || {
        state(&d) == json!("running")
    });
    // Working through three idle timeouts of silence, sampled all along.
    let until = Instant::now() + Duration::from_millis(3000);
    while Instant::now() < until {
        assert_eq!(state(&d), json!("running"), "{}", d.session("sh1"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = d.post("/api/sessions/sh1/keys", json!({"keys": ["ctrl+c"]}));
    assert_eq!(r.0, 200, "{}", r.1);
    wait_until(Duration::from_secs(5), "idle after ctrl+c", || {
        state(&d) == json!("idle")
    });
}

/// Issue 12: a program without a profile is read from the kernel too: blocked reading its
/// terminal it is idle, however blank its screen; sleeping without output it stays working
/// past the idle timeout (it used to read idle after 5 s of silence either way).
#[test]
fn a_program_without_a_profile_is_read_from_the_kernel() {
    let d = Daemon::start_with(&[("TELEPTY_STATE_IDLE_TIMEOUT_MS", "1000")], None);
    d.spawn("reader", "cat", &[]);
    d.spawn("sleeper", "sleep", &["600"]);
    let state = |id: &str| d.session(id)["autoState"]["state"].clone();
    wait_until(Duration::from_secs(5), "cat idle on its input", || {
        state("reader") == json!("idle")
    });
    // Three idle timeouts of silence: the sleeper is busy all along, the reader idle.
    let until = Instant::now() + Duration::from_millis(3000);
    while Instant::now() < until {
        assert_eq!(
            state("sleeper"),
            json!("running"),
            "{}",
            d.session("sleeper")
        );
        assert_eq!(state("reader"), json!("idle"), "{}", d.session("reader"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, reading) = d.get("/api/sessions/reader/state");
    assert_eq!(status, 200);
    assert_eq!(
        reading["auto"]["detail"],
        json!("reading its terminal, quiet"),
        "{reading}"
    );
    let (_, sleeping) = d.get("/api/sessions/sleeper/state");
    assert_eq!(
        sleeping["auto"]["detail"],
        json!("no output, but busy (kernel)"),
        "{sleeping}"
    );
}
