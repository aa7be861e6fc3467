//! Argument parsing and formatting tests (no daemon needed).

use clap::{CommandFactory, Parser};
use serde_json::json;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("telepty").chain(args.iter().copied()))
}

#[test]
fn clap_definition_is_valid() {
    Cli::command().debug_assert();
}

#[test]
fn no_subcommand_is_a_usage_error_with_help() {
    let err = parse(&[]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.kind(),
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    assert!(err.to_string().contains("Usage"));
}

#[test]
fn unknown_subcommand_and_bad_values_exit_2() {
    assert_eq!(parse(&["frobnicate"]).unwrap_err().exit_code(), 2);
    assert_eq!(
        parse(&["spawn", "--id", "x", "--cols", "0", "bash"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(
        parse(&["spawn", "--id", "x", "--cols", "abc", "bash"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(parse(&["spawn", "--id", "x"]).unwrap_err().exit_code(), 2);
    assert_eq!(parse(&["spawn", "bash"]).unwrap_err().exit_code(), 2);
    assert_eq!(parse(&["inject", "w1"]).unwrap_err().exit_code(), 2);
    assert_eq!(
        parse(&["read-screen", "w1", "--lines", "0"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(
        parse(&["read-screen", "w1", "--format", "html"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(
        parse(&["wait", "w1", "--timeout-ms", "400000"])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!(
        parse(&["daemon", "--port", "0"]).unwrap_err().exit_code(),
        2
    );
    assert_eq!(parse(&["keys", "w1"]).unwrap_err().exit_code(), 2);
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["spawn", "--help"],
        &["inject", "--help"],
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(err.exit_code(), 0, "{args:?}");
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    let mut cmd = Cli::command();
    cmd.build();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let after = sub
            .get_after_help()
            .map(|s| s.to_string())
            .unwrap_or_default();
        assert!(
            after.starts_with("Example: telepty "),
            "{} has no example",
            sub.get_name()
        );
    }
}

#[test]
fn spawn_takes_the_command_after_dashdash() {
    let cli = parse(&[
        "spawn", "--id", "w1", "--cols", "120", "--rows", "40", "--type", "user", "--", "bash",
        "-l", "--norc",
    ])
    .unwrap();
    let Command::Spawn(a) = cli.command else {
        panic!("not spawn")
    };
    assert_eq!(a.id, "w1");
    assert_eq!((a.cols, a.rows), (Some(120), Some(40)));
    assert_eq!(a.kind, Some(sessions::SessionKind::User));
    assert_eq!(a.command, ["bash", "-l", "--norc"]);
    assert!(!a.detach);

    // Without `--` too; flags after the command belong to the command.
    let cli = parse(&["spawn", "--id", "w1", "--detach", "python3", "-i", "--json"]).unwrap();
    let Command::Spawn(a) = cli.command else {
        panic!("not spawn")
    };
    assert!(a.detach);
    assert!(!a.json);
    assert_eq!(a.command, ["python3", "-i", "--json"]);

    let cli = parse(&["spawn", "--id", "w1", "--type", "AGENT", "bash"]).unwrap();
    let Command::Spawn(a) = cli.command else {
        panic!("not spawn")
    };
    assert_eq!(a.kind, Some(sessions::SessionKind::Agent));
}

#[test]
fn inject_joins_words_and_keeps_hyphens() {
    let cli = parse(&[
        "inject",
        "--no-enter",
        "--from",
        "orc",
        "w1@box:4000",
        "run",
        "ls",
        "-la",
        "--json",
    ])
    .unwrap();
    let Command::Inject(a) = cli.command else {
        panic!("not inject")
    };
    assert!(a.no_enter);
    assert!(!a.json, "--json after the text is text");
    assert_eq!(a.from.as_deref(), Some("orc"));
    assert_eq!(a.target, "w1@box:4000");
    assert_eq!(a.text.join(" "), "run ls -la --json");

    let cli = parse(&["inject", "w1", "--no-enter", "hi"]).unwrap();
    let Command::Inject(a) = cli.command else {
        panic!("not inject")
    };
    assert!(a.no_enter);
    assert_eq!(a.text, ["hi"]);

    let cli = parse(&["inject", "w1", "--", "--no-enter"]).unwrap();
    let Command::Inject(a) = cli.command else {
        panic!("not inject")
    };
    assert!(!a.no_enter);
    assert_eq!(a.text, ["--no-enter"]);

    let cli = parse(&["inject", "--wait", "--reply-to", "r", "w1", ""]).unwrap();
    let Command::Inject(a) = cli.command else {
        panic!("not inject")
    };
    assert!(a.wait);
    assert_eq!(a.reply_to.as_deref(), Some("r"));
    assert_eq!(a.text, [""]);
}

#[test]
fn multicast_keys_wait_and_aliases() {
    let cli = parse(&["multicast", "a,b@h", "hello", "world"]).unwrap();
    let Command::Multicast(a) = cli.command else {
        panic!("not multicast")
    };
    assert_eq!(a.ids, "a,b@h");
    assert_eq!(a.text, ["hello", "world"]);

    let cli = parse(&["keys", "w1", "ctrl+c", "up", "enter"]).unwrap();
    let Command::Keys(a) = cli.command else {
        panic!("not keys")
    };
    assert_eq!(a.keys, ["ctrl+c", "up", "enter"]);

    let cli = parse(&[
        "wait",
        "w1",
        "--pattern",
        "\\$ $",
        "--timeout-ms",
        "500",
        "--stream",
        "--json",
    ])
    .unwrap();
    let Command::Wait(a) = cli.command else {
        panic!("not wait")
    };
    assert_eq!(a.pattern.as_deref(), Some("\\$ $"));
    assert_eq!(a.timeout_ms, Some(500));
    assert!(a.stream && a.json);

    assert!(matches!(
        parse(&["delete", "w1"]).unwrap().command,
        Command::Kill(_)
    ));
    assert!(matches!(
        parse(&["kill", "w1"]).unwrap().command,
        Command::Kill(_)
    ));
    assert!(matches!(parse(&["ls"]).unwrap().command, Command::List(_)));
    assert!(matches!(
        parse(&["submit-all"]).unwrap().command,
        Command::SubmitAll(_)
    ));
    assert!(matches!(
        parse(&["read-screen", "w1", "--raw", "-n", "5"])
            .unwrap()
            .command,
        Command::ReadScreen(_)
    ));
    assert!(matches!(
        parse(&["status"]).unwrap().command,
        Command::Status(_)
    ));
    assert!(matches!(
        parse(&["monitor", "--all"]).unwrap().command,
        Command::Monitor(_)
    ));
    assert!(matches!(
        parse(&["version", "--json"]).unwrap().command,
        Command::Version(_)
    ));
}

#[test]
fn daemon_bind_precedence() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("missing.toml");
    let resolve_in =
        |path: &std::path::Path, a: &daemon::DaemonArgs, e: &dyn Fn(&str) -> Option<String>| {
            crate::api::resolve_bind_with(
                &crate::api::DaemonOptions {
                    host: a.host.clone(),
                    port: a.port,
                },
                path,
                e,
            )
        };
    let resolve =
        |a: &daemon::DaemonArgs, e: &dyn Fn(&str) -> Option<String>| resolve_in(&none, a, e);
    let cli = parse(&["daemon"]).unwrap();
    let Command::Daemon(a) = cli.command else {
        panic!("not daemon")
    };
    assert_eq!(resolve(&a, &env(&[])).unwrap(), ("127.0.0.1".into(), 3848));
    assert_eq!(
        resolve(
            &a,
            &env(&[
                ("HOST", "0.0.0.0"),
                ("PORT", "4000"),
                ("TELEPTY_PORT", "5000")
            ])
        )
        .unwrap(),
        ("0.0.0.0".into(), 4000)
    );
    // TELEPTY_HOST selects a daemon for clients; it never decides where the daemon binds.
    assert_eq!(
        resolve(
            &a,
            &env(&[("TELEPTY_HOST", "box"), ("TELEPTY_PORT", "5000")])
        )
        .unwrap(),
        ("127.0.0.1".into(), 5000)
    );
    assert!(resolve(&a, &env(&[("PORT", "x")])).is_err());

    let cli = parse(&["daemon", "--host", "::1", "--port", "4100"]).unwrap();
    let Command::Daemon(a) = cli.command else {
        panic!("not daemon")
    };
    assert_eq!(
        resolve(&a, &env(&[("HOST", "0.0.0.0"), ("PORT", "1")])).unwrap(),
        ("::1".into(), 4100)
    );

    // The file sits under the environment and over the defaults.
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[daemon]\nhost = \"0.0.0.0\"\nport = 4000\n").unwrap();
    let cli = parse(&["daemon"]).unwrap();
    let Command::Daemon(plain) = cli.command else {
        panic!("not daemon")
    };
    assert_eq!(
        resolve_in(&file, &plain, &env(&[])).unwrap(),
        ("0.0.0.0".into(), 4000)
    );
    assert_eq!(
        resolve_in(&file, &plain, &env(&[("TELEPTY_PORT", "5000")])).unwrap(),
        ("0.0.0.0".into(), 5000)
    );
    assert_eq!(
        resolve_in(&file, &plain, &env(&[("HOST", "127.0.0.1")])).unwrap(),
        ("127.0.0.1".into(), 4000)
    );
    assert_eq!(
        resolve_in(&file, &a, &env(&[])).unwrap(),
        ("::1".into(), 4100)
    );
    // An invalid file is an error naming line and key, flags or not.
    std::fs::write(&file, "[daemon]\nport = 0\n").unwrap();
    let e = resolve_in(&file, &a, &env(&[])).unwrap_err().to_string();
    assert_eq!(e, "config.toml:2: must be 1-65535 (key daemon.port)");
}

#[test]
fn list_table() {
    let sessions = vec![
        json!({"id":"worker-1","type":"spawned","healthStatus":"CONNECTED","idleSeconds":5,
               "command":"bash","cwd":"/home/u/app","exitCode":null,"exitSignal":null,
               "autoState":{"state":"idle"}}),
        json!({"id":"w2","type":"spawned","healthStatus":"DISCONNECTED","idleSeconds":3700,
               "command":"python3","cwd":"/tmp","exitCode":0,"exitSignal":null}),
        json!({"id":"w3","type":"spawned","healthStatus":"DISCONNECTED","idleSeconds":null,
               "command":"sleep","cwd":"/tmp","exitCode":null,"exitSignal":"SIGTERM"}),
        json!({"id":"x","type":"wrapped","healthStatus":"STALE","command":"wrapped","cwd":"/"}),
        json!({"id":"ask","type":"spawned","healthStatus":"CONNECTED","idleSeconds":1,
               "command":"claude","cwd":"/","autoState":{"state":"waiting_input"}}),
        json!({"id":"busy","type":"spawned","healthStatus":"CONNECTED","idleSeconds":0,
               "command":"codex","cwd":"/","autoState":{"state":"thinking"}}),
        json!({"id":"self","type":"wrapped","healthStatus":"CONNECTED","idleSeconds":0,
               "command":"gemini","cwd":"/","autoState":{"state":"running"},
               "semantic":{"needs_input":true}}),
        json!({"id":"new","type":"spawned","healthStatus":"CONNECTED","command":"bash","cwd":"/"}),
    ];
    let t = sessions::session_table(&sessions, Some("/home/u"), false);
    let expected = "\
ID        TYPE     STATE            IDLE  COMMAND  CWD
worker-1  spawned  idle             5s    bash     ~/app
w2        spawned  exited(0)        1h    python3  /tmp
w3        spawned  exited(SIGTERM)  -     sleep    /tmp
x         wrapped  stale            -     wrapped  /
ask       spawned  waiting          1s    claude   /
busy      spawned  working          0s    codex    /
self      wrapped  waiting          0s    gemini   /
new       spawned  starting         -     bash     /
";
    assert_eq!(t, expected);
}

#[test]
fn cleanable_sessions() {
    assert!(sessions::is_cleanable(&json!({"exitCode":1})));
    assert!(sessions::is_cleanable(&json!({"exitSignal":"SIGKILL"})));
    assert!(sessions::is_cleanable(
        &json!({"healthReason":"PTY_EXITED"})
    ));
    assert!(sessions::is_cleanable(&json!({"healthStatus":"STALE"})));
    assert!(!sessions::is_cleanable(
        &json!({"healthStatus":"DISCONNECTED","exitCode":null})
    ));
    assert!(!sessions::is_cleanable(
        &json!({"healthStatus":"CONNECTED"})
    ));
}

#[test]
fn result_lines() {
    assert_eq!(input::result_line(&json!({"id":"a"}), true, "a"), "ok   a");
    assert_eq!(
        input::result_line(
            &json!({"id":"b","code":"SESSION_NOT_FOUND","error":"Session not found"}),
            false,
            "b@h"
        ),
        "FAIL b@h: SESSION_NOT_FOUND Session not found"
    );
}

#[test]
fn wait_outcomes() {
    let cli = parse(&["wait", "w1", "--pattern", "ready"]).unwrap();
    let Command::Wait(a) = cli.command else {
        panic!("not wait")
    };
    let ok =
        json!({"matched":true,"match":"ready","timed_out":false,"exited":false,"settled":false});
    assert_eq!(
        screen::wait_outcome(&ok, &a, "w1"),
        Ok(Some("ready".into()))
    );
    let to = json!({"matched":false,"match":null,"timed_out":true,"exited":false,"settled":false});
    assert_eq!(
        screen::wait_outcome(&to, &a, "w1"),
        Err("timed out after 10000 ms: /ready/ did not appear in w1".into())
    );
    let ex = json!({"matched":false,"match":null,"timed_out":false,"exited":true,"settled":false});
    assert_eq!(
        screen::wait_outcome(&ex, &a, "w1"),
        Err("session w1 exited before /ready/ appeared".into())
    );

    let cli = parse(&["wait", "w1"]).unwrap();
    let Command::Wait(a) = cli.command else {
        panic!("not wait")
    };
    let settled =
        json!({"matched":false,"match":null,"timed_out":false,"exited":false,"settled":true});
    assert_eq!(screen::wait_outcome(&settled, &a, "w1"), Ok(None));
}

#[test]
fn monitor_lines() {
    let f = |v: serde_json::Value| events::format_event(&v, false);
    assert_eq!(
        f(
            json!({"type":"inject_written","session_id":"worker-1","target_agent":"worker-1",
                 "from":"orchestrator","content":"echo hi"})
        ),
        Some("inject_written → worker-1 from orchestrator: \"echo hi\"".into())
    );
    assert_eq!(
        f(json!({"type":"inject_written","target_agent":"w","from":null,"content":"a\nb"})),
        Some("inject_written → w: \"a\\nb\"".into())
    );
    assert_eq!(
        f(json!({"type":"session_spawn","session_id":"worker-1","command":"bash"})),
        Some("session_spawn worker-1 (bash)".into())
    );
    assert_eq!(
        f(json!({"type":"session_exit","session_id":"worker-1","exit_code":0,"signal":null})),
        Some("session_exit worker-1 code=0".into())
    );
    assert_eq!(
        f(json!({"type":"session_exit","session_id":"w","exit_code":null,"signal":"SIGTERM"})),
        Some("session_exit w signal=SIGTERM".into())
    );
    assert_eq!(
        f(json!({"type":"session_rename","old_id":"a","new_id":"b"})),
        Some("session_rename a → b".into())
    );
    assert_eq!(f(json!({"type":"session_health","session_id":"w"})), None);
    assert_eq!(
        f(json!({"type":"bus_gap","sender":"daemon","dropped":2972,"timestamp":"t"})),
        Some("bus_gap 2972 events dropped: this client fell behind".into())
    );
    assert!(
        events::format_event(&json!({"type":"session_health","session_id":"w"}), true).is_some()
    );
    assert_eq!(
        f(json!({"type":"session_ready","session_id":"w"})),
        Some("session_ready w".into())
    );
    assert_eq!(
        f(json!({"type":"handoff.created","handoff_id":"h1"})),
        Some("handoff.created h1".into())
    );
    assert_eq!(f(json!({"hello":1})), Some("message {\"hello\":1}".into()));
}

#[test]
fn status_texts() {
    let meta = json!({"name":"telepty","implementation":"telepty-rs","version":"0.1.0","pid":42,
                      "machine_id":"box","terminal":"headless"});
    let sessions = vec![
        json!({"healthStatus":"CONNECTED"}),
        json!({"healthStatus":"DISCONNECTED","exitCode":0}),
        json!({"healthStatus":"CONNECTED"}),
    ];
    let counts = info::session_counts(&sessions);
    assert_eq!(counts.total, 3);
    assert_eq!(counts.by_health["CONNECTED"], 2);
    assert_eq!(counts.exited, 1);
    let t = info::daemon_status_text(&meta, &counts, "127.0.0.1:3848");
    assert_eq!(
        t,
        "Daemon:    telepty-rs 0.1.0 (pid 42) at 127.0.0.1:3848\n\
         Machine:   box (terminal: headless)\n\
         Sessions:  3 (2 connected, 1 disconnected), 1 exited\n"
    );

    let sess = json!({"id":"w1","alias":null,"type":"spawned","terminal":"daemon-pty","command":"bash",
        "cwd":"/home/u/x","healthStatus":"CONNECTED","healthReason":"PTY_RUNNING","pid":7,"cols":80,"rows":30,
        "active_clients":0,"idleSeconds":3,"createdAt":"2026-01-01T00:00:00.000Z","exitCode":null,
        "mailbox":{"pending":1,"dead_letter":0},"aliases":["old"],"lastInjectFrom":"orc"});
    let state = json!({"auto":{"state":"idle","confidence":0.9,"duration_ms":12000,"detail":null,
        "last_output_preview":"$ "}});
    let t = info::session_status_text(&sess, Some(&state), Some("/home/u"));
    assert!(
        t.starts_with("Session:     w1\nType:        spawned (daemon-pty)\n"),
        "{t}"
    );
    assert!(t.contains("Health:      CONNECTED (PTY_RUNNING)\n"), "{t}");
    assert!(t.contains("Cwd:         ~/x\n"), "{t}");
    assert!(
        t.contains("State:       idle (confidence 0.9, for 12s)\n"),
        "{t}"
    );
    assert!(t.contains("Mailbox:     1 pending, 0 dead-letter\n"), "{t}");
    assert!(t.contains("Aliases:     old\n"), "{t}");
    assert!(t.contains("Last inject: orc\n"), "{t}");
}

#[test]
fn value_names_are_the_wire_names() {
    use output::value_name;
    assert_eq!(value_name(&sessions::SessionKind::Agent), "AGENT");
    assert_eq!(value_name(&sessions::SessionKind::User), "USER");
    assert_eq!(value_name(&screen::ScreenFormat::Text), "text");
    assert_eq!(value_name(&screen::ScreenFormat::Ansi), "ansi");
    assert_eq!(value_name(&screen::ScreenFormat::Json), "json");
}
