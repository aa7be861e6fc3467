//! End-to-end tests of `telepty tui`: the real binary in a private tmux server (200×50),
//! sessions spawned over the dashboard's own HTTP API, keys sent with `send-keys`, the screen
//! read with `capture-pane`. Each wait polls every 100 ms for at most 20 s.

mod tui_support;

use serde_json::json;
use tui_support::*;

fn start_embedded() -> (Home, Tui, String) {
    let home = Home::new();
    let port = free_port();
    let tui = Tui::start(&home, port, &[]);
    tui.wait_text(&format!("embedded :{port}"));
    let base = tui.url("");
    (home, tui, base)
}

fn wait_prompts(tui: &Tui, ids: &[&str]) {
    for id in ids {
        tui.wait_pane(id, &format!("[AGENT: {id}]"));
    }
}

#[test]
fn embedded_panes_inject_broadcast_multicast_and_api_inject() {
    let (home, tui, base) = start_embedded();
    for id in ["w1", "w2", "w3"] {
        spawn_bash(&base, id, home.path());
    }
    // Three live panes, each showing its own program.
    wait_prompts(&tui, &["w1", "w2", "w3"]);
    tui.wait_text("3 sessions");

    // Palette inject goes to the focused pane (the first one).
    tui.palette("inject echo $((6*7))-w1", 0);
    tui.wait_pane("w1", "42-w1");
    tui.wait_text("inject → w1: delivered");
    assert!(!api_screen(&base, "w2").contains("42-w1"));

    // Broadcast reaches all three.
    tui.palette("broadcast echo bc-$((40+2))", 0);
    for id in ["w1", "w2", "w3"] {
        tui.wait_pane(id, "bc-42");
    }
    tui.wait_text("broadcast: 3 ok");

    // Multicast reaches only the marked panes: mark w1, move right twice, mark w3.
    tui.keys(&["Space", "l", "l", "Space"]);
    tui.wait_text("2 marked");
    tui.palette("multicast echo mc-$((40+3))", 1);
    tui.wait_text("multicast: 2 ok");
    tui.wait_pane("w1", "mc-43");
    tui.wait_pane("w3", "mc-43");
    assert!(
        !api_screen(&base, "w2").contains("mc-43"),
        "w2 was not marked"
    );
    assert!(!pane_text(&tui.capture(), "w2").unwrap().contains("mc-43"));

    // An inject over the dashboard's API (curl) shows up in the pane.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            &format!("{base}/api/sessions/w2/inject"),
            "-d",
            r#"{"prompt":"echo curl-$((50+5))"}"#,
        ])
        .output()
        .expect("run curl");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"success\":true"),
        "{out:?}"
    );
    tui.wait_pane("w2", "curl-55");

    // The event log shows what happened, one line each.
    tui.keys(&["e"]);
    tui.wait_text("spawn w3 (bash)");
    tui.wait_text("inject → w2: echo curl-$((50+5))");
}

#[test]
fn embedded_typing_rename_spawn_kill_and_quit() {
    let (home, tui, base) = start_embedded();
    spawn_bash(&base, "w1", home.path());
    spawn_bash(&base, "w2", home.path());
    wait_prompts(&tui, &["w1", "w2"]);

    // Typing mode: keys go to the focused program until the prefix key.
    tui.keys(&["Enter"]);
    tui.wait_text("TYPING w1");
    tui.type_text("echo typed-$((3+4))");
    tui.keys(&["Enter"]);
    tui.wait_pane("w1", "typed-7");
    tui.keys(&["C-a"]);
    tui.wait_text(" NAV ");

    // Rename the focused session: the pane title follows.
    tui.palette("rename", 0);
    tui.wait_text("new id ›");
    tui.keys(&["C-u"]);
    tui.type_text("renamed-1");
    tui.keys(&["Enter"]);
    tui.wait_text("rename w1 → renamed-1: ok");
    let screen = tui.wait_screen("title renamed", |s| {
        pane_text(s, "renamed-1").is_some() && pane_text(s, "w1").is_none()
    });
    assert!(
        pane_text(&screen, "renamed-1").unwrap().contains("typed-7"),
        "same pane, same screen:\n{screen}"
    );

    // Spawn from the palette: the id prompt suggests one; the new pane gets the focus.
    tui.palette("spawn bash --norc --noprofile", 1);
    tui.wait_pane("bash-1", "[AGENT: bash-1]");
    tui.wait_text("3 sessions");
    tui.wait_text("spawn bash-1: started");

    // Kill asks first; "n" keeps the session, "y" removes it.
    tui.palette("kill renamed-1", 0);
    tui.wait_text("Kill session renamed-1? [y/N]");
    tui.keys(&["n"]);
    tui.wait_text("cancelled");
    assert!(session_ids(&base).contains(&"renamed-1".to_string()));
    tui.palette("kill renamed-1", 0);
    tui.wait_text("Kill session renamed-1? [y/N]");
    tui.keys(&["y"]);
    tui.wait_screen("pane removed", |s| {
        pane_text(s, "renamed-1").is_none() && s.contains("2 sessions")
    });
    assert_eq!(session_ids(&base), vec!["w2", "bash-1"]);

    // Quitting with live sessions asks: detach (the default) leaves them running.
    let pids: Vec<u64> = ["w2", "bash-1"]
        .iter()
        .map(|id| {
            get(&format!("{base}/api/sessions/{id}")).1["pid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    tui.keys(&["q"]);
    tui.wait_text("2 running sessions keep running");
    tui.keys(&["Enter"]);
    tui.wait_text("[tui exited 0]");
    let refused = agent().get(&format!("{base}/api/health")).call();
    assert!(
        refused.is_err(),
        "the embedded server stops with the dashboard"
    );
    for pid in &pids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "session process {pid} must outlive a detaching dashboard"
        );
    }
    drop(tui);

    // The next dashboard shows the same sessions, live: same processes, typing works.
    let port = base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let tui = Tui::start(&home, port, &[]);
    tui.wait_text(&format!("embedded :{port}"));
    tui.wait_text("2 sessions");
    assert_eq!(session_ids(&base), vec!["w2", "bash-1"]);
    for (id, pid) in ["w2", "bash-1"].iter().zip(&pids) {
        assert_eq!(
            get(&format!("{base}/api/sessions/{id}")).1["pid"].as_u64(),
            Some(*pid)
        );
    }
    tui.palette("inject echo back-$((40+4))", 0);
    tui.wait_pane("w2", "back-44");

    // "stop all" on quit ends them.
    tui.keys(&["q"]);
    tui.wait_text("[s]top all");
    tui.keys(&["s"]);
    tui.wait_text("[tui exited 0]");
    wait_for(
        T,
        "the sessions' processes to end",
        || {
            pids.iter()
                .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
                .then_some(())
        },
        String::new,
    );
}

#[test]
fn client_mode_mirrors_a_running_daemon() {
    let home = Home::new();
    let port = free_port();
    let daemon = Daemon::start(&home, port);
    let base = daemon.base();
    spawn_bash(&base, "c1", home.path());
    spawn_bash(&base, "c2", home.path());
    // Output from before the dashboard starts arrives with the attach snapshot.
    post(
        &format!("{base}/api/sessions/c2/inject"),
        json!({"prompt": "echo before-$((2*5))"}),
    );

    let tui = Tui::start(&home, port, &[]);
    tui.wait_text(&format!("client → 127.0.0.1:{port}"));
    wait_prompts(&tui, &["c1", "c2"]);
    tui.wait_pane("c2", "before-10");

    // Actions go over HTTP; output comes back over the mirrors.
    tui.palette("inject echo $((6*7))-c1", 0);
    tui.wait_pane("c1", "42-c1");
    tui.wait_text("inject → c1: delivered");

    // Typing goes over the WebSocket.
    tui.keys(&["l", "Enter"]);
    tui.wait_text("TYPING c2");
    tui.type_text("echo ty-$((1+2))");
    tui.keys(&["Enter", "C-a"]);
    tui.wait_pane("c2", "ty-3");
    assert!(api_screen(&base, "c2").contains("ty-3"));

    // Sessions started elsewhere appear; the daemon keeps running when the dashboard quits.
    spawn_bash(&base, "c3", home.path());
    tui.wait_pane("c3", "[AGENT: c3]");
    tui.keys(&["q"]);
    tui.wait_text("[tui exited 0]");
    assert_eq!(session_ids(&base), vec!["c1", "c2", "c3"]);
}

#[test]
fn bad_theme_fails_with_one_line() {
    let home = Home::new();
    let port = free_port();
    let tui = Tui::start(&home, port, &["--theme", "no-such-theme"]);
    let screen = tui.wait_text("[tui exited 1]");
    assert!(screen.contains("unknown theme 'no-such-theme'"), "{screen}");
}

#[test]
fn sigterm_restores_the_terminal() {
    let (_home, tui, _base) = start_embedded();
    // While running: alternate screen and mouse reporting are on.
    assert_eq!(tui.display("#{alternate_on} #{mouse_any_flag}"), "1 1");
    let shell = tui.display("#{pane_pid}");
    let out = std::process::Command::new("pkill")
        .args(["-TERM", "-P", &shell])
        .output()
        .expect("pkill");
    assert!(out.status.success(), "no child of the pane shell to signal");
    tui.wait_text("[tui exited 0]");
    assert_eq!(tui.display("#{alternate_on} #{mouse_any_flag}"), "0 0");
    assert!(
        !tui.capture().contains("embedded :"),
        "the dashboard's screen is gone"
    );
}
