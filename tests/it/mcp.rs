//! `telepty mcp` driven by a real MCP client (the official `rmcp` SDK) over the server's
//! stdin/stdout, against a real daemon running real bash sessions.

use crate::common;

use std::time::{Duration, Instant};

use common::mcp::{connect, runtime, text, tool_ok as ok};
use common::{Daemon, bin, has_line, wait_for};
use serde_json::{Value, json};

#[test]
fn round_trip_spawn_inject_wait_read_and_the_other_tools() {
    let d = Daemon::start();
    runtime().block_on(async {
        let s = connect(d.cli_command(&["mcp"])).await;

        // initialize
        let info = s.client.peer_info().expect("server info after initialize");
        assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("telepty"));
        assert!(info.capabilities.tools.is_some(), "tools capability");
        assert!(info.instructions.as_deref().unwrap_or("").contains("session_inject"));

        // tools/list
        let tools = s.client.list_all_tools().await.expect("tools/list");
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "session_broadcast",
                "session_inject",
                "session_keys",
                "session_kill",
                "session_list",
                "session_multicast",
                "session_read",
                "session_rename",
                "session_spawn",
                "session_wait",
            ]
        );
        let inject = tools.iter().find(|t| t.name == "session_inject").unwrap();
        let required = inject.input_schema["required"].as_array().unwrap();
        assert!(required.contains(&json!("id")) && required.contains(&json!("text")));
        let read = tools.iter().find(|t| t.name == "session_read").unwrap();
        assert_eq!(
            read.annotations.as_ref().and_then(|a| a.read_only_hint),
            Some(true)
        );

        // spawn → a real bash on the daemon
        let r = s
            .call(
                "session_spawn",
                json!({"id": "mcp-1", "command": "bash", "args": ["--norc", "--noprofile"], "cols": 100, "rows": 30}),
            )
            .await;
        assert_eq!(ok(&r)["session_id"], "mcp-1");
        assert_eq!(text(&r), "spawned mcp-1");
        assert!(d.list_ids().contains(&"mcp-1".to_string()));
        let r = s
            .call("session_wait", json!({"id": "mcp-1", "pattern": "AGENT: mcp-1", "timeout_ms": 20000}))
            .await;
        assert_eq!(ok(&r)["matched"], true, "prompt: {}", text(&r));

        // inject with wait_for: returns on the command's output, not on the stale screen
        let r = s
            .call(
                "session_inject",
                json!({"id": "mcp-1", "text": "echo $((6*7))", "wait_for": "(?m)^42$", "timeout_ms": 20000}),
            )
            .await;
        let v = ok(&r);
        assert_eq!(v["delivered"]["success"], true, "{v}");
        assert_eq!(v["wait"]["matched"], true, "{v}");
        assert!(text(&r).starts_with("matched \"42\" in mcp-1"), "{}", text(&r));

        // read: the rendered screen, with cursor and generation
        let r = s.call("session_read", json!({"id": "mcp-1"})).await;
        let v = ok(&r).clone();
        let screen = text(&r);
        assert!(has_line(&screen, "42"), "screen:\n{screen}");
        assert_eq!(v["screen"].as_str(), Some(screen.as_str()));
        assert_eq!(v["cols"], 100);
        assert_eq!(v["rows"], 30);
        assert_eq!(v["alt_screen"], false);
        assert!(v["cursor"]["row"].is_u64(), "{v}");
        let generation = v["generation"].as_u64().expect("generation");
        assert!(generation > 0);
        // The same rows as the daemon's own screen.
        assert!(has_line(&d.screen("mcp-1"), "42"));

        // A pattern wait never returns on silence: the session is quiet, the wait runs out.
        let t0 = Instant::now();
        let r = s
            .call(
                "session_wait",
                json!({"id": "mcp-1", "pattern": "never-printed", "timeout_ms": 1500, "include_screen": false}),
            )
            .await;
        let v = ok(&r);
        assert_eq!(v["timed_out"], true, "{v}");
        assert_eq!(v["matched"], false, "{v}");
        assert!(t0.elapsed() >= Duration::from_millis(1400), "returned after {:?}", t0.elapsed());
        assert!(v.get("screen").is_none(), "include_screen=false: {v}");
        // Without a pattern: returns once output settles.
        let r = s
            .call("session_wait", json!({"id": "mcp-1", "settle_ms": 200, "timeout_ms": 10000}))
            .await;
        assert_eq!(ok(&r)["settled"], true, "{}", text(&r));

        // since_generation: what is already on screen does not count.
        let r = s
            .call(
                "session_wait",
                json!({"id": "mcp-1", "pattern": "(?m)^42$", "since_generation": generation, "timeout_ms": 1000}),
            )
            .await;
        assert_eq!(ok(&r)["matched"], false, "stale screen matched: {}", text(&r));

        // keys: a half-typed line, then ctrl+c, leaves nothing behind
        let r = s
            .call("session_inject", json!({"id": "mcp-1", "text": "sleep 30", "submit": true}))
            .await;
        ok(&r);
        let r = s.call("session_keys", json!({"id": "mcp-1", "keys": ["ctrl+c"]})).await;
        assert_eq!(ok(&r)["count"], 1);
        let r = s
            .call(
                "session_inject",
                json!({"id": "mcp-1", "text": "echo after-$((1+1))", "wait_for": "(?m)^after-2$", "timeout_ms": 20000}),
            )
            .await;
        assert_eq!(ok(&r)["wait"]["matched"], true, "ctrl+c did not stop sleep: {}", text(&r));

        // rename, then the new id works
        let r = s
            .call("session_rename", json!({"id": "mcp-1", "new_id": "mcp-main"}))
            .await;
        ok(&r);
        assert!(d.list_ids().contains(&"mcp-main".to_string()));

        // multicast to one real and one missing session: a partial failure, reported per id
        d.spawn_bash("mcp-2");
        let r = s
            .call(
                "session_multicast",
                json!({"ids": ["mcp-main", "no-such"], "text": "echo multi-$((2+3))"}),
            )
            .await;
        let v = ok(&r);
        assert_eq!(v["results"]["successful"][0]["id"], "mcp-main", "{v}");
        assert_eq!(v["results"]["successful"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["results"]["failed"][0]["id"], "no-such", "{v}");
        assert_eq!(text(&r).split(" (").next(), Some("multicast: 1 delivered, 1 failed"));
        d.wait_line("mcp-main", "multi-5");

        // broadcast reaches both sessions
        let r = s.call("session_broadcast", json!({"text": "echo all-$((3+4))"})).await;
        let v = ok(&r);
        assert_eq!(v["results"]["successful"].as_array().map(Vec::len), Some(2), "{v}");
        d.wait_line("mcp-main", "all-7");
        d.wait_line("mcp-2", "all-7");

        // list
        let r = s.call("session_list", json!({})).await;
        let v = ok(&r);
        let ids: Vec<&str> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["id"].as_str())
            .collect();
        assert!(ids.contains(&"mcp-main") && ids.contains(&"mcp-2"), "{v}");
        assert!(text(&r).starts_with("2 sessions\n"), "{}", text(&r));

        // kill
        let r = s.call("session_kill", json!({"id": "mcp-main"})).await;
        ok(&r);
        wait_for(Duration::from_secs(10), "mcp-main removed", || {
            (!d.list_ids().contains(&"mcp-main".to_string())).then_some(())
        });

        // Tool errors reach the model as isError with the daemon's code …
        let r = s.call("session_read", json!({"id": "mcp-main"})).await;
        assert_eq!(r.is_error, Some(true));
        let v = r.structured_content.as_ref().unwrap();
        assert_eq!(v["code"], "SESSION_NOT_FOUND", "{v}");
        assert!(text(&r).starts_with("session_read failed: "), "{}", text(&r));
        let r = s
            .call("session_keys", json!({"id": "mcp-2", "keys": ["ctrl+shift+nope"]}))
            .await;
        assert_eq!(r.is_error, Some(true));
        assert_eq!(r.structured_content.as_ref().unwrap()["code"], "UNKNOWN_KEY");
        let r = s
            .call("session_wait", json!({"id": "mcp-2", "pattern": "(unclosed"}))
            .await;
        assert_eq!(r.structured_content.as_ref().unwrap()["code"], "INVALID_PATTERN");
        let r = s
            .call("session_spawn", json!({"id": "rel", "command": "bash", "cwd": "relative/dir"}))
            .await;
        assert_eq!(r.is_error, Some(true));
        assert!(text(&r).contains("absolute"), "{}", text(&r));
        // … so do arguments that do not fit the schema (the model can correct itself) …
        let r = s.call("session_inject", json!({"id": "mcp-2"})).await;
        assert_eq!(r.is_error, Some(true), "missing `text` was accepted");
        assert!(text(&r).contains("missing field `text`"), "{}", text(&r));
        // … while an unknown tool is a protocol error.
        let e = s.try_call("session_teleport", json!({})).await;
        assert!(e.is_err(), "unknown tool answered: {e:?}");

        // The server is still fine after all that, and exits cleanly when stdin closes.
        let r = s.call("session_list", json!({})).await;
        ok(&r);
        let status = s.close().await;
        assert!(status.success(), "telepty mcp exited with {status}");
    });
}

/// "as a client of the daemon (starting it if needed)": no daemon runs; the first tool call
/// starts one on the configured port.
#[test]
fn starts_the_daemon_on_first_use() {
    let home = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("mcp").current_dir(home.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("TELEPTY_") || k.starts_with("XDG_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.path())
        .env("TELEPTY_PORT", port.to_string());
    let meta = runtime().block_on(async {
        let s = connect(cmd).await;
        // Nothing listens yet: initialize did not need the daemon.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        let r = s.call("session_list", json!({})).await;
        let v = ok(&r);
        assert_eq!(v["sessions"], json!([]), "{v}");
        assert_eq!(text(&r), "0 sessions");
        let meta: Value = ureq::get(&format!("http://127.0.0.1:{port}/api/meta"))
            .call()
            .expect("the started daemon answers")
            .body_mut()
            .read_json()
            .unwrap();
        let status = s.close().await;
        assert!(status.success());
        meta
    });
    let pid = meta["pid"].as_u64().expect("daemon pid");
    assert_eq!(meta["port"], port);
    // The daemon outlives the MCP server (it is shared); stop it here.
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    wait_for(Duration::from_secs(10), "started daemon stops", || {
        // Gone, or a zombie waiting for a reaper that is not ours.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        matches!(state, None | Some("Z")).then_some(())
    });
    // The server logged to its own file, never to stdout.
    let log = home.path().join(".local/state/telepty/mcp.log");
    let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(log.contains("mcp server starting on stdio"), "{log}");
}

/// `telepty mcp install`: the snippets, merging into the clients' files, and a server started
/// from exactly what was written.
#[test]
fn install_prints_and_merges_client_configuration() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let run_sub = |sub: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("mcp")
            .arg(sub)
            .args(args)
            .current_dir(project.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("TELEPTY_") || k.starts_with("XDG_") || k == "CODEX_HOME" {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", home.path()).envs(env.iter().copied());
        let out = cmd.output().expect("run telepty mcp install");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let run = |args: &[&str], env: &[(&str, &str)]| run_sub("install", args, env);
    let exe = std::fs::canonicalize(bin()).unwrap();
    let exe = exe.to_str().unwrap();

    // Printed: the JSON alone on stdout, where it goes on stderr.
    let (code, out, err) = run(&["--client", "claude"], &[("TELEPTY_PORT", "4999")]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("stdout is the JSON snippet");
    assert_eq!(
        v["mcpServers"]["telepty"],
        json!({"type": "stdio", "command": exe, "args": ["mcp"], "env": {"TELEPTY_PORT": "4999"}})
    );
    let claude_json = home.path().join(".claude.json");
    assert!(
        err.contains(&format!("merge into {}", claude_json.display())),
        "{err}"
    );
    assert!(
        err.contains("claude mcp add --scope user telepty -- "),
        "{err}"
    );
    assert!(!claude_json.exists(), "printing wrote a file");

    // Codex: merged into an existing config.toml, comments kept, idempotent, backed up.
    let codex = home.path().join(".codex/config.toml");
    std::fs::create_dir_all(codex.parent().unwrap()).unwrap();
    let before = "# my settings\nmodel = \"o3\"\n";
    std::fs::write(&codex, before).unwrap();
    let (code, out, err) = run(&["--client", "codex", "--write"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("added MCP server telepty in {}", codex.display())
    );
    let written = std::fs::read_to_string(&codex).unwrap();
    assert!(written.starts_with(before), "{written}");
    let t: toml::Table = written.parse().expect("config.toml still parses");
    assert_eq!(t["model"].as_str(), Some("o3"));
    assert_eq!(t["mcp_servers"]["telepty"]["command"].as_str(), Some(exe));
    assert_eq!(
        std::fs::read_to_string(home.path().join(".codex/config.toml.telepty-backup")).unwrap(),
        before
    );
    let (code, out, _) = run(&["--client", "codex", "--write"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("already configured"), "{out}");
    assert_eq!(std::fs::read_to_string(&codex).unwrap(), written);

    // A different entry under the name is kept unless --force.
    let (code, _, err) = run(
        &["--client", "codex", "--write"],
        &[("TELEPTY_PORT", "5001")],
    );
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&codex).unwrap(), written);
    let (code, out, err) = run(
        &["--client", "codex", "--write", "--force"],
        &[("TELEPTY_PORT", "5001")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("replaced MCP server telepty"), "{out}");
    let t: toml::Table = std::fs::read_to_string(&codex).unwrap().parse().unwrap();
    assert_eq!(
        t["mcp_servers"]["telepty"]["env"]["TELEPTY_PORT"].as_str(),
        Some("5001")
    );

    // Gemini, project scope: a new .gemini/settings.json in the current directory.
    let (code, _, err) = run(&["--client", "gemini", "--project", "--write"], &[]);
    assert_eq!(code, 0, "{err}");
    let g: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join(".gemini/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        g["mcpServers"]["telepty"],
        json!({"command": exe, "args": ["mcp"]})
    );

    // Claude: the user's big ~/.claude.json keeps every other key, in order.
    std::fs::write(
        &claude_json,
        r#"{"numStartups": 3, "projects": {"/x": {}}, "theme": "dark"}"#,
    )
    .unwrap();
    let (code, _, err) = run(&["--client", "claude", "--write"], &[]);
    assert_eq!(code, 0, "{err}");
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&claude_json).unwrap()).unwrap();
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["numStartups", "projects", "theme", "mcpServers"]);

    // uninstall takes our entry out again, and only it.
    let (code, out, err) = run_sub("uninstall", &["--client", "claude"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("removed MCP server telepty from {}", claude_json.display())
    );
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&claude_json).unwrap()).unwrap();
    assert_eq!(c["mcpServers"], json!({}));
    assert_eq!(c["numStartups"], 3);
    let (code, out, _) = run_sub("uninstall", &["--client", "claude"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("no MCP server telepty in "), "{out}");
    let (code, out, err) = run_sub("uninstall", &["--client", "codex"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("removed MCP server telepty"), "{out}");
    let t: toml::Table = std::fs::read_to_string(&codex).unwrap().parse().unwrap();
    assert!(
        t.get("mcp_servers")
            .and_then(|m| m.get("telepty"))
            .is_none(),
        "{t}"
    );
    assert_eq!(t["model"].as_str(), Some("o3"));

    // Usage errors: exit 2, one line.
    for args in [
        &["--client", "codex", "--project"][..],
        &["--client", "claude", "--name", "bad name"],
    ] {
        let (code, _, err) = run(args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A file we cannot edit safely: exit 1, untouched.
    std::fs::write(&claude_json, "{ not json").unwrap();
    let (code, _, err) = run(&["--client", "claude", "--write"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not valid JSON"), "{err}");
    assert_eq!(std::fs::read_to_string(&claude_json).unwrap(), "{ not json");

    // What was written for Gemini starts a working server: initialize and tools/list.
    let entry = &g["mcpServers"]["telepty"];
    let mut cmd = std::process::Command::new(entry["command"].as_str().unwrap());
    cmd.args(
        entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap()),
    )
    .env("HOME", home.path())
    .current_dir(project.path());
    runtime().block_on(async {
        let s = connect(cmd).await;
        let tools = s.client.list_all_tools().await.expect("tools/list");
        assert_eq!(tools.len(), 10);
        assert!(s.close().await.success());
    });
}
