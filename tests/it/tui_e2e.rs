//! End-to-end tests of `telepty tui`: the real binary in a private tmux server (200×50),
//! sessions spawned over the dashboard's own HTTP API, keys sent with `send-keys`, the screen
//! read with `capture-pane`. Each wait polls every 100 ms for at most 20 s.

use crate::tui_support;

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

/// Embedded panes are viewers too: a pane zoomed away stops counting, so its session is back
/// at its own size until the pane is shown again.
#[test]
fn embedded_hidden_panes_give_the_size_back() {
    let (home, tui, base) = start_embedded();
    spawn_bash_sized(&base, "e1", home.path(), 120, 40);
    spawn_bash_sized(&base, "e2", home.path(), 120, 40);
    wait_prompts(&tui, &["e1", "e2"]);
    let grid = wait_api_size(&base, "e2", "e2 at its pane's size", |s| s != (120, 40));
    wait_api_size(&base, "e1", "e1 at its pane's size", |s| s != (120, 40));

    tui.keys(&["z"]);
    wait_api_size(&base, "e2", "e2 hidden: its own size", |s| s == (120, 40));
    let zoomed = wait_api_size(&base, "e1", "e1 zoomed: the whole area", |(c, _)| {
        c > grid.0 + 50
    });
    assert!(zoomed.0 > 120, "{zoomed:?}");

    tui.keys(&["z"]);
    wait_api_size(&base, "e2", "e2 shown again", |s| s == grid);
}

/// Issue 10 item 5: a client-mode dashboard registers its panes' sizes as a viewer, so the
/// session follows the pane while it is shown and is back at its own size after `q`.
#[test]
fn client_mode_quit_restores_the_session_size() {
    let home = Home::new();
    let port = free_port();
    let daemon = Daemon::start(&home, port);
    let base = daemon.base();
    spawn_bash_sized(&base, "big", home.path(), 120, 40);

    let tui = Tui::start_sized(&home, port, &[], 100, 30);
    tui.wait_text(&format!("client → 127.0.0.1:{port}"));
    tui.wait_pane("big", "[AGENT: big]");
    // The only viewer is the pane (smaller than 120x40 in a 100x30 window).
    let pane = wait_api_size(&base, "big", "the pane's size", |(c, r)| c < 100 && r < 30);
    post(
        &format!("{base}/api/sessions/big/inject"),
        json!({"prompt": "echo \"tty $(stty size)\""}),
    );
    tui.wait_pane("big", &format!("tty {} {}", pane.1, pane.0));

    tui.keys(&["q"]);
    tui.wait_text("[tui exited 0]");
    wait_api_size(&base, "big", "the spawn size back", |s| s == (120, 40));
    post(
        &format!("{base}/api/sessions/big/inject"),
        json!({"prompt": "echo \"after $(stty size)\""}),
    );
    wait_for(
        T,
        "stty inside the session says 40 120",
        || {
            api_screen(&base, "big")
                .contains("after 40 120")
                .then_some(())
        },
        || api_screen(&base, "big"),
    );
}

/// `telepty attach` (and so each kitty window, which runs it) is a viewer: its terminal's size
/// counts while attached, and detaching gives the session its own size back.
#[test]
fn attach_is_a_viewer_and_detach_restores_the_size() {
    let home = Home::new();
    let port = free_port();
    let daemon = Daemon::start(&home, port);
    let base = daemon.base();
    spawn_bash_sized(&base, "att", home.path(), 120, 40);
    let cmd = format!("TELEPTY_PORT={port} {} attach att", telepty_bin().display());
    let term = Tui::start_shell(&home, port, &cmd, 90, 20);
    term.wait_text("[AGENT: att]");
    wait_api_size(&base, "att", "the attached terminal's size", |s| {
        s == (90, 20)
    });
    term.type_text("echo \"tty $(stty size)\"");
    term.keys(&["Enter"]);
    term.wait_text("tty 20 90");
    term.keys(&["C-]"]);
    term.wait_text("[tui exited 0]");
    wait_api_size(&base, "att", "the spawn size back", |s| s == (120, 40));
}

/// Two dashboards of different sizes on one daemon: the session gets the smaller pane's size,
/// so a line longer than the small pane wraps in the program and both show all of it (the big
/// one top-left with a blank margin). Before, the last resize won and the other was clipped.
#[test]
fn two_dashboards_of_different_sizes_both_show_whole_lines() {
    let home = Home::new();
    let port = free_port();
    let daemon = Daemon::start(&home, port);
    let base = daemon.base();
    spawn_bash_sized(&base, "two", home.path(), 120, 40);

    let big = Tui::start_sized(&home, port, &[], 200, 50);
    big.wait_pane("two", "[AGENT: two]");
    let alone = wait_api_size(&base, "two", "the big pane's size", |(c, _)| c > 150);
    let small = Tui::start_sized(&home, port, &[], 100, 30);
    small.wait_pane("two", "[AGENT: two]");
    let (cols, rows) = wait_api_size(&base, "two", "the small pane's size", |(c, r)| {
        c < 100 && r < 30
    });
    assert!(cols < alone.0 && rows < alone.1);
    // The big dashboard's window changes size, so its pane registers a new size: that must
    // not take the session back from the small one (the fight the issue describes).
    big.resize_window(190, 48);
    let moved = wait_api_size(&base, "two", "the big pane's new size registered", |_| {
        let (_, v) = get(&format!("{base}/api/sessions/two"));
        v["sizing"]["viewers"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["cols"].as_u64() < Some(alone.0) && x["cols"].as_u64() > Some(150))
        })
    });
    assert_eq!(moved, (cols, rows), "the small dashboard's size stays");
    let alone = (alone.0 - 10, alone.1 - 2);

    // 15 x 9 = 135 characters: wider than the small pane, narrower than the big one.
    post(
        &format!("{base}/api/sessions/two/inject"),
        json!({"prompt": "for i in $(seq 10 24); do printf '%s-------' $i; done; echo"}),
    );
    let line: String = (10..=24).map(|i| format!("{i}-------")).collect();
    for (name, tui) in [("big", &big), ("small", &small)] {
        wait_for(
            T,
            &format!("the whole line in the {name} dashboard"),
            || {
                let pane = pane_text(&tui.capture(), "two")?;
                // The program wrapped it at the session's width: rejoin the rows.
                let joined: String = pane.lines().collect();
                joined.contains(&line).then_some(())
            },
            || tui.capture(),
        );
    }
    // In the big dashboard the program's rows are `cols` wide: nothing right of them.
    let pane = pane_text(&big.capture(), "two").unwrap();
    assert!(
        pane.lines().all(|l| l.chars().count() <= cols as usize),
        "content beyond the session's {cols} columns:\n{pane}"
    );

    // The small dashboard quits: the big one's size applies again.
    small.keys(&["q"]);
    small.wait_text("[tui exited 0]");
    wait_api_size(&base, "two", "the big pane's size again", |s| s == alone);
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

#[test]
fn a_closed_terminal_detaches_and_the_next_dashboard_has_the_sessions() {
    let (home, tui, base) = start_embedded();
    spawn_bash(&base, "hup1", home.path());
    wait_prompts(&tui, &["hup1"]);
    let pid = get(&format!("{base}/api/sessions/hup1")).1["pid"]
        .as_u64()
        .unwrap();
    // The terminal goes away: tmux hangs up the pane (SIGHUP to the dashboard).
    tui.kill_server();
    wait_for(
        T,
        "the embedded server to stop",
        || {
            agent()
                .get(&format!("{base}/api/health"))
                .call()
                .is_err()
                .then_some(())
        },
        String::new,
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the session outlives a closed terminal"
    );
    let port = base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let tui = Tui::start(&home, port, &[]);
    tui.wait_text("1 session");
    tui.wait_pane("hup1", "[AGENT: hup1]");
    assert_eq!(
        get(&format!("{base}/api/sessions/hup1")).1["pid"].as_u64(),
        Some(pid)
    );
}

/// Issue 12: the attention strip counts every session's state and names the waiting ones, and
/// entering a state listed in `[tui] notify` runs `notify_command` with the session in its
/// environment (once per transition).
#[test]
fn waiting_sessions_are_counted_named_and_notified() {
    let home = Home::new();
    let log = home.path().join("notified");
    let config = home.path().join(".config/telepty/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[tui]\nnotify = [\"waiting\", \"exited\"]\nnotify_command = 'echo \"$TELEPTY_SESSION $TELEPTY_STATE\" >> {}'\n",
            log.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let tui = Tui::start(&home, port, &[]);
    tui.wait_text(&format!("embedded :{port}"));
    let base = tui.url("");
    spawn_bash(&base, "calm", home.path());
    let (st, v) = post(
        &format!("{base}/api/sessions/spawn"),
        json!({
            "session_id": "ask",
            "command": "bash",
            "args": ["-c", "sleep 1; read -p 'Proceed? [y/N] ' x; echo answered-$x"],
            "cwd": home.path(),
        }),
    );
    assert_eq!(st, 201, "{v}");
    tui.wait_screen("the strip names the waiting session", |s| {
        s.contains("1 waiting: ask")
    });
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let secs = std::time::Duration::from_secs(20);
    wait_for(
        secs,
        "the hook ran for ask",
        || read_log().contains("ask waiting").then_some(()),
        || tui.capture(),
    );
    inject(&base, "ask", "y");
    wait_for(
        secs,
        "the hook ran for the exit",
        || read_log().contains("ask exited").then_some(()),
        || format!("{}\n{}", read_log(), tui.capture()),
    );
    tui.wait_screen("the strip counts the exit", |s| s.contains("1 exited"));
    let lines = read_log();
    assert_eq!(lines.lines().count(), 2, "one line per transition: {lines}");
}

/// Issue 12: `R` on an exited session starts it again: same id, same command and directory.
#[test]
fn r_restarts_an_exited_session() {
    let (home, tui, base) = start_embedded();
    let marker = home.path().join("runs");
    let (st, v) = post(
        &format!("{base}/api/sessions/spawn"),
        json!({
            "session_id": "once",
            "command": "bash",
            "args": ["-c", format!("echo run >> {}; pwd >> {}; exit 3", marker.display(), marker.display())],
            "cwd": home.path(),
        }),
    );
    assert_eq!(st, 201, "{v}");
    tui.wait_text("exited 3");
    let first_pid = get(&format!("{base}/api/sessions/once")).1["pid"].clone();
    tui.keys(&["R"]);
    let secs = std::time::Duration::from_secs(20);
    let runs = || std::fs::read_to_string(&marker).unwrap_or_default();
    wait_for(
        secs,
        "a second run",
        || (runs().matches("run").count() == 2).then_some(()),
        || format!("{}\n{}", runs(), tui.capture()),
    );
    let here = home.path().canonicalize().unwrap();
    assert_eq!(
        runs(),
        format!("run\n{}\nrun\n{}\n", here.display(), here.display()),
        "same command, same directory"
    );
    let s = get(&format!("{base}/api/sessions/once")).1;
    assert_ne!(s["pid"], first_pid, "{s}");
}

/// Issue 12: `y` puts the focused pane's screen on the clipboard with OSC 52 (tmux, with
/// `set-clipboard on`, keeps it as its paste buffer); `M` hands the mouse to the terminal.
#[test]
fn y_copies_the_focused_screen_and_m_releases_the_mouse() {
    let (home, tui, base) = start_embedded();
    tui.clipboard_on();
    spawn_bash(&base, "c1", home.path());
    wait_prompts(&tui, &["c1"]);
    inject(&base, "c1", "echo copy-me-$((40+2))");
    tui.wait_pane("c1", "copy-me-42");
    tui.keys(&["y"]);
    tui.wait_text("copied");
    tui.wait_buffer("the copied screen in tmux's buffer", |b| {
        b.lines().any(|l| l == "copy-me-42")
    });
    tui.keys(&["M"]);
    tui.wait_text("mouse: the terminal's");
    tui.keys(&["M"]);
    tui.wait_text("mouse: the dashboard's");
}

/// Issue 12: copy mode from the keyboard: `?` finds a word printed hundreds of lines before
/// (in the scrollback), the view goes there and stays while the program prints on, `V` `y`
/// copy its line with OSC 52 (tmux's buffer, with `set-clipboard on`), and the pane is live
/// again after.
#[test]
fn copy_mode_searches_the_scrollback_and_copies_a_line() {
    let (home, tui, base) = start_embedded();
    tui.clipboard_on();
    spawn_bash(&base, "c1", home.path());
    wait_prompts(&tui, &["c1"]);
    inject(
        &base,
        "c1",
        "echo find-me-$((70+7)); seq 1 300 | sed s/^/n-/",
    );
    let screen = tui.wait_pane("c1", "n-300");
    assert!(!screen.contains("find-me-77"), "scrolled off:\n{screen}");

    tui.keys(&["c"]);
    tui.wait_text("COPY c1");
    tui.type_text("?find-me-77");
    tui.wait_text("search up: find-me-77");
    tui.keys(&["Enter"]);
    tui.wait_text("\"find-me-77\": match 1 of 1");
    tui.wait_pane("c1", "find-me-77");

    // The program prints on; the copy-mode view does not move.
    inject(&base, "c1", "echo after-$((1+1))");
    wait_api_screen(&base, "c1", "after-2");
    let screen = tui.capture();
    let pane = pane_text(&screen, "c1").unwrap();
    assert!(
        pane.contains("find-me-77") && !pane.contains("after-2"),
        "{screen}"
    );
    // `r` takes the pane's screen again: the view and the cursor stay on the same text.
    tui.keys(&["r"]);
    tui.wait_text("refreshed from c1; the view stays on the same text");
    assert!(
        pane_text(&tui.capture(), "c1")
            .unwrap()
            .contains("find-me-77")
    );

    tui.keys(&["V"]);
    tui.wait_text("COPY c1 · selecting lines");
    tui.keys(&["y"]);
    tui.wait_text("copied 1 line of c1");
    tui.wait_buffer("the copied line in tmux's buffer", |b| b == "find-me-77");
    tui.wait_pane("c1", "after-2");
    tui.wait_text(" NAV ");

    // After `r`, what the program printed meanwhile is in the copy (G: the bottom).
    tui.keys(&["c"]);
    tui.wait_text("COPY c1");
    inject(&base, "c1", "echo later-$((2+3))");
    wait_api_screen(&base, "c1", "later-5");
    assert!(!pane_text(&tui.capture(), "c1").unwrap().contains("later-5"));
    tui.keys(&["r"]);
    tui.wait_text("refreshed from c1");
    tui.keys(&["G"]);
    tui.wait_pane("c1", "later-5");
    tui.keys(&["q"]);
    tui.wait_text("left copy mode");

    // A search for what is not there says so; q leaves.
    tui.keys(&["c"]);
    tui.type_text("/not-printed-anywhere");
    tui.keys(&["Enter"]);
    tui.wait_text("no match for \"not-printed-anywhere\"");
    tui.keys(&["q"]);
    tui.wait_text("left copy mode");
}

/// Issue 12: `[tui] sidebar = true` lists every session with its state beside the grid; `f`
/// shows only the waiting one (the bar says so); in the sidebar (`b`) the arrows move the
/// focus.
#[test]
fn sidebar_lists_sessions_and_f_filters_the_grid_by_state() {
    let home = Home::new();
    let config = home.path().join(".config/telepty/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[tui]\nsidebar = true\nnotify = []\n").unwrap();
    let port = free_port();
    let tui = Tui::start(&home, port, &[]);
    tui.wait_text(&format!("embedded :{port}"));
    let base = tui.url("");
    spawn_bash(&base, "calm", home.path());
    let (st, v) = post(
        &format!("{base}/api/sessions/spawn"),
        json!({
            "session_id": "ask",
            "command": "bash",
            "args": ["-c", "sleep 1; read -p 'Proceed? [y/N] ' x; echo answered-$x; sleep 600"],
            "cwd": home.path(),
        }),
    );
    assert_eq!(st, 201, "{v}");
    tui.wait_text("1 waiting: ask");
    let screen = tui.wait_text(" sessions 2 ");
    let row = |s: &str, id: &str| {
        s.lines()
            .find(|l| l.contains(&format!(" {id} @")) && l.starts_with(['│', '┃']))
            .map(str::to_string)
    };
    assert!(
        row(&screen, "ask").is_some_and(|l| l.contains("WAIT ask")),
        "{screen}"
    );
    assert!(pane_text(&screen, "calm").is_some(), "{screen}");

    tui.keys(&["f"]);
    let screen = tui.wait_text("filter: waiting (1 shown)");
    assert!(
        pane_text(&screen, "ask").unwrap().contains("Proceed?"),
        "{screen}"
    );
    assert!(pane_text(&screen, "calm").is_none(), "{screen}");
    assert!(
        row(&screen, "calm").is_some(),
        "the sidebar keeps every session:\n{screen}"
    );
    tui.palette("filter all", 0);
    tui.wait_text("showing every session");
    tui.wait_screen("both panes", |s| {
        pane_text(s, "calm").is_some() && pane_text(s, "ask").is_some()
    });

    // The keys in the sidebar: the focus marker follows the arrows.
    tui.keys(&["b"]);
    tui.wait_text("↑↓ choose");
    tui.keys(&["Down"]);
    tui.wait_screen("the marker on ask", |s| {
        row(s, "ask").is_some_and(|l| l.contains('▶'))
    });
    tui.keys(&["Up"]);
    tui.wait_screen("the marker on calm", |s| {
        row(s, "calm").is_some_and(|l| l.contains('▶'))
    });
    tui.keys(&["b"]);
    tui.wait_screen("the sidebar hidden", |s| !s.contains(" sessions 2 "));
}

/// Three pasted lines into `:inject ID ` reach that program as one paste with its lines (bash
/// runs three commands), not glued into one line; an argument typed after a command is
/// checked like the prompt's (no y/N for a session that does not exist).
#[test]
fn a_pasted_multi_line_inject_arrives_intact_and_inline_arguments_are_checked() {
    let (home, tui, base) = start_embedded();
    spawn_bash(&base, "w1", home.path());
    spawn_bash(&base, "w2", home.path());
    wait_prompts(&tui, &["w1", "w2"]);

    tui.type_text(":");
    tui.wait_text("command palette");
    tui.type_text("inject w2 ");
    let lines = "echo one-$((1))\necho two-$((2))\necho three-$((3))";
    assert!(tui.tmux(&["set-buffer", "-b", "p", lines]).status.success());
    assert!(
        tui.tmux(&["paste-buffer", "-p", "-b", "p", "-t", "t"])
            .status
            .success()
    );
    tui.wait_text("inject w2 echo one-$((1))⏎echo two-$((2))⏎echo three-$((3))");
    tui.keys(&["Enter"]);
    tui.wait_text("inject → w2: delivered");
    let pane = tui.wait_pane("w2", "three-3");
    for out in ["one-1", "two-2"] {
        assert!(
            pane.lines().any(|l| l.trim_end() == out),
            "{out} on a line of its own:\n{pane}"
        );
    }
    assert!(!pane.contains("$((1))echo"), "lines glued:\n{pane}");
    assert!(
        !api_screen(&base, "w1").contains("one-1"),
        "w1 was not named"
    );

    tui.palette("kill nosuch", 0);
    let screen = tui.wait_text("no session \"nosuch\"");
    assert!(!screen.contains("[y/N]"), "{screen}");
    tui.keys(&["Escape"]);
}

/// In navigation mode ctrl and alt chords are not actions (ctrl+j does not move, ctrl+x does
/// not ask to kill, ctrl+a does not attach); leaving typing mode removes its message.
#[test]
fn chorded_keys_do_nothing_in_navigation() {
    let (home, tui, base) = start_embedded();
    for id in ["w1", "w2", "w3", "w4"] {
        spawn_bash(&base, id, home.path());
    }
    wait_prompts(&tui, &["w1", "w2", "w3", "w4"]);
    tui.wait_text("┏ w1 ");
    // A plain `l` after the chords: once it has moved the focus, the chords were handled.
    tui.keys(&["C-j", "C-x", "C-a", "M-x", "M-a", "C-l", "l"]);
    let screen = tui.wait_text("┏ w2 ");
    assert!(!screen.contains("Kill session"), "{screen}");
    assert!(!screen.contains("ATTACHED"), "{screen}");
    assert!(screen.contains(" NAV "), "{screen}");

    tui.keys(&["i"]);
    tui.wait_text("typing into w2");
    tui.keys(&["C-a"]);
    let screen = tui.wait_text(" NAV ");
    assert!(!screen.contains("typing into"), "{screen}");
}

/// `:up FILE` starts a project file's agents in their directories, as `telepty up` does, and
/// leaves them alone the second time; `:spawn --cwd DIR` starts a command in DIR.
#[test]
fn palette_up_and_spawn_with_a_directory() {
    let (home, tui, base) = start_embedded();
    let proj = home.path().join("proj");
    std::fs::create_dir_all(proj.join("sub")).unwrap();
    let file = proj.join("telepty.toml");
    std::fs::write(
        &file,
        "[[agent]]\nid = \"u1\"\ncommand = \"bash --norc --noprofile\"\ncwd = \"sub\"\n\n\
         [[agent]]\nid = \"u2\"\ncommand = \"bash --norc --noprofile\"\n",
    )
    .unwrap();
    tui.palette(&format!("up {}", file.display()), 0);
    tui.wait_text("up: 2 started (u1, u2), 0 already running");
    wait_prompts(&tui, &["u1", "u2"]);
    let cwd = |id: &str| {
        let (_, v) = get(&format!("{base}/api/sessions/{id}"));
        v["cwd"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(cwd("u1"), proj.join("sub").display().to_string());
    tui.palette(&format!("up {}", file.display()), 0);
    tui.wait_text("up: 0 started, 2 already running");

    tui.palette(
        &format!("spawn --cwd {} bash --norc --noprofile", proj.display()),
        1,
    );
    tui.wait_text("spawn bash-1: started");
    assert_eq!(cwd("bash-1"), proj.display().to_string());
}
