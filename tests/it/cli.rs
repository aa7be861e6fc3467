//! The CLI against a test daemon (selected through HOME and TELEPTY_PORT, API.md §15).

use crate::common;

use std::io::BufRead;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(o.status.success(), "CLI failed: {}", show(&o));
    o
}

#[test]
fn cli_list_inject_read_screen_and_errors() {
    let d = Daemon::start();
    let o = ok(d.cli(&["list", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("list --json is not JSON ({e}): {}", show(&o)));
    assert_eq!(v, json!([]), "no sessions yet");

    d.spawn_bash("c1");
    let o = ok(d.cli(&["list", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("list --json ({e}): {}", show(&o)));
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("list --json must print the sessions array: {v}"));
    assert_eq!(arr.len(), 1, "{v}");
    assert_eq!(arr[0]["id"], json!("c1"), "{v}");

    ok(d.cli(&["inject", "c1", "echo cli-$((1+1))ok"]));
    d.wait_line("c1", "cli-2ok");
    let o = ok(d.cli(&["read-screen", "c1"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        has_line(&out, "cli-2ok"),
        "read-screen output lacks the line: {}",
        show(&o)
    );

    let o = d.cli(&["inject", "no-such", "x"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one stderr line: {}",
        show(&o)
    );
    assert!(!err.trim().is_empty());

    let o = d.cli(&["bogus-subcommand"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn cli_rename_kill_multicast_broadcast() {
    let d = Daemon::start();
    d.spawn_bash("ca");
    d.spawn_bash("cb");

    ok(d.cli(&["multicast", "ca,cb", "echo mc-$((2+2))"]));
    d.wait_line("ca", "mc-4");
    d.wait_line("cb", "mc-4");

    ok(d.cli(&["broadcast", "echo bc-$((3+3))"]));
    d.wait_line("ca", "bc-6");
    d.wait_line("cb", "bc-6");

    ok(d.cli(&["rename", "ca", "ca2"]));
    assert_eq!(d.session("ca2")["id"], json!("ca2"));
    assert_eq!(
        d.session("ca")["id"],
        json!("ca2"),
        "old name must stay an alias"
    );

    ok(d.cli(&["kill", "cb"]));
    assert_error(&d.get("/api/sessions/cb"), 404, "SESSION_NOT_FOUND", None);
    assert_eq!(d.list_ids(), vec!["ca2".to_string()]);
}

#[test]
fn cli_listen_prints_json_lines_and_wait_times_out() {
    let d = Daemon::start();
    d.spawn_bash("cw");

    let mut child = d
        .cli_command(&["listen"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn telepty listen");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    // `listen` connects asynchronously: publish until our event shows up (20 s cap).
    let deadline = Instant::now() + T;
    let mut lines = Vec::new();
    let found = 'outer: loop {
        d.publish(json!({"type": "cli_listen_probe", "n": 1}));
        let until = Instant::now() + Duration::from_millis(300);
        while let Ok(l) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            let v: Value = serde_json::from_str(&l)
                .unwrap_or_else(|e| panic!("listen printed a non-JSON line ({e}): {l:?}"));
            if v["type"] == "cli_listen_probe" {
                break 'outer Some(v);
            }
            lines.push(l);
        }
        if Instant::now() >= deadline {
            break None;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let v = found
        .unwrap_or_else(|| panic!("`telepty listen` never printed the event; lines: {lines:?}"));
    assert_eq!(v, json!({"type": "cli_listen_probe", "n": 1}));

    let t0 = Instant::now();
    let o = d.cli(&[
        "wait",
        "cw",
        "--pattern",
        "never-appears-xyz",
        "--timeout-ms",
        "500",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "wait timeout must exit 1: {}",
        show(&o)
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );

    d.inject("cw", "echo wait-$((5*5))");
    ok(d.cli(&[
        "wait",
        "cw",
        "--pattern",
        "wait-25",
        "--timeout-ms",
        "20000",
    ]));
}

#[test]
fn cli_spawn_enter_keys_and_id_at_host() {
    let d = Daemon::start();
    ok(d.cli(&[
        "spawn",
        "--id",
        "cs",
        "--detach",
        "--cols",
        "100",
        "--rows",
        "30",
        "--",
        "bash",
        "--norc",
        "--noprofile",
    ]));
    let s = d.session("cs");
    assert_eq!(s["type"], json!("spawned"), "{s}");
    assert_eq!(s["cols"], json!(100), "{s}");
    d.wait_screen("cs", "prompt", |s| {
        s.lines().last().is_some_and(|l| is_prompt(l, "cs"))
    });

    ok(d.cli(&["inject", "--no-enter", "cs", "echo typed-$((1+2))"]));
    d.wait_screen("cs", "typed text", |s| {
        s.lines()
            .last()
            .is_some_and(|l| l.ends_with("echo typed-$((1+2))"))
    });
    ok(d.cli(&["enter", "cs"]));
    d.wait_line("cs", "typed-3");

    let o = ok(d.cli(&["inject", "--json", "cs", "echo", "joined", "words"]));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("inject --json ({e}): {}", show(&o)));
    assert_uuid_v4(&v["inject_id"]);
    d.wait_line("cs", "joined words");

    // id@host:port goes over HTTP to that daemon.
    let target = format!("cs@127.0.0.1:{}", d.port);
    ok(d.cli(&["inject", &target, "echo at-host-$((2*4))"]));
    d.wait_line("cs", "at-host-8");
    let o = ok(d.cli(&["read-screen", &target, "--lines", "3"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.trim_end().lines().count() <= 3,
        "--lines 3 printed more: {out}"
    );

    d.inject("cs", "cat");
    ok(d.cli(&["keys", "cs", "ctrl+c"]));
    d.wait_screen("cs", "prompt after ctrl+c", |s| {
        s.lines().rev().nth(1).is_some_and(|l| l.contains("cat"))
            || s.lines().last().is_some_and(|l| is_prompt(l, "cs"))
    });
    let o = d.cli(&["keys", "cs", "no-such-key"]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "an unknown key must fail: {}",
        show(&o)
    );

    ok(d.cli(&["version"]));
}

/// Issue 12: `wait --state` (API `state`) returns once the session is in that state, `list`
/// shows the state, and a wait on a state that never comes times out like a pattern wait.
#[test]
fn wait_for_a_state_and_list_shows_it() {
    let d = Daemon::start();
    d.spawn(
        "ask",
        "bash",
        &[
            "-c",
            "sleep 1; read -p 'Proceed? [y/N] ' x; while :; do echo busy-$x; sleep 0.3; done",
        ],
    );
    let o = ok(d.cli(&["wait", "ask", "--state", "waiting", "--timeout-ms", "20000"]));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    let o = ok(d.cli(&["list"]));
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("ask "))
        .unwrap_or_default();
    assert!(row.contains(" waiting "), "{table}");

    // Not idle while waiting: a short wait for idle times out, exit 1 with one line.
    let o = d.cli(&["wait", "ask", "--state", "idle", "--timeout-ms", "300"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("did not become idle"), "{err}");

    d.inject("ask", "y");
    let r = d.post(
        "/api/sessions/ask/wait",
        json!({"state": "working", "timeout_ms": 20000, "include_screen": false}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(
        (&r.1["matched"], &r.1["state"]),
        (&json!(true), &json!("working")),
        "{}",
        r.1
    );

    // Bad input: an unknown state, or a state with a pattern.
    let r = d.post("/api/sessions/ask/wait", json!({"state": "sleepy"}));
    assert_error(&r, 400, "INVALID_REQUEST", None);
    let r = d.post(
        "/api/sessions/ask/wait",
        json!({"state": "idle", "pattern": "x"}),
    );
    assert_error(&r, 400, "INVALID_REQUEST", None);
    let o = d.cli(&["wait", "ask", "--state", "sleepy"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));

    let r = d.delete("/api/sessions/ask");
    assert_eq!(r.0, 200, "{}", r.1);
}

/// Issue 12: a wait for `exited` returns when the program ends.
#[test]
fn wait_for_exit() {
    let d = Daemon::start();
    d.spawn("brief", "bash", &["-c", "sleep 1"]);
    let o = ok(d.cli(&[
        "wait",
        "brief",
        "--state",
        "exited",
        "--timeout-ms",
        "20000",
    ]));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    let o = ok(d.cli(&["list"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("exited(0)"));
}

/// Issue 12: `telepty up` starts what telepty.toml lists (command, directory relative to the
/// file, environment), and again leaves running ones alone and restarts exited ones; a bad
/// file is one line naming its line.
#[test]
fn up_starts_the_project_files_agents_idempotently() {
    let d = Daemon::start();
    let home = d.home_path();
    std::fs::create_dir_all(home.join("proj/sub")).unwrap();
    std::fs::write(
        home.join("proj/telepty.toml"),
        "[[agent]]\nid = \"u1\"\ncommand = \"bash --norc --noprofile\"\ncwd = \"sub\"\nenv = { UP_VAR = \"from-up\" }\n\n\
         [[agent]]\nid = \"u2\"\ncommand = [\"sh\", \"-c\", \"echo once >> ../ran\"]\n",
    )
    .unwrap();
    let file = home.join("proj/telepty.toml");
    let file = file.to_str().unwrap();
    let o = ok(d.cli(&["up", file]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("started   u1") && out.contains("started   u2"),
        "{out}"
    );
    d.inject("u1", "echo \"$UP_VAR:$PWD\"");
    let want = format!(
        "from-up:{}",
        home.join("proj/sub").canonicalize().unwrap().display()
    );
    d.wait_line("u1", &want);
    wait_until(Duration::from_secs(20), "u2 ran and exited", || {
        d.session("u2")["exitedAt"].is_string()
    });

    let o = ok(d.cli(&["up", file]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("running   u1") && out.contains("restarted u2"),
        "{out}"
    );
    wait_until(Duration::from_secs(20), "u2 ran twice", || {
        std::fs::read_to_string(home.join("ran")).unwrap_or_default() == "once\nonce\n"
    });

    std::fs::write(
        home.join("bad.toml"),
        "[[agent]]\nid = \"x\"\ncomand = \"y\"\n",
    )
    .unwrap();
    let o = d.cli(&["up", home.join("bad.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml:3:"), "{err}");
}

/// Issue 13 (item 6): with no address given anywhere, the CLI finds this HOME's daemon where
/// it really listens (its state file: here all addresses and a port of its own), instead of
/// failing to start a second one on 127.0.0.1:3848.
#[test]
fn the_cli_finds_its_daemon_where_it_listens() {
    let d = Daemon::start_with(&[], Some("0.0.0.0"));
    let run = |args: &[&str]| {
        let mut cmd = d.cli_command(args);
        cmd.env_remove("TELEPTY_PORT");
        run_capped(cmd, "telepty without TELEPTY_PORT")
    };
    ok(run(&[
        "spawn", "-d", "--id", "found", "--", "bash", "--norc",
    ]));
    let o = ok(run(&["list"]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("found"),
        "{}",
        show(&o)
    );
    assert_eq!(d.session("found")["id"], json!("found"));
    let o = ok(run(&["status"]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&d.port.to_string()),
        "{}",
        show(&o)
    );
}
