//! The dashboard's grid across machines: a peer's sessions next to the local ones, driven
//! like them, and a peer that stops answering marked down without holding anything up. The
//! peer is a second daemon on loopback with its own HOME (a machine of its own as far as
//! telepty is concerned); `peers::` covers the network-namespace and ssh transports.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::tui_support::*;

fn add_peer(home: &Home, name: &str, port: u16) {
    let mut cmd = Command::new(telepty_bin());
    home.apply(&mut cmd);
    let url = format!("http://127.0.0.1:{port}");
    let out = cmd.args(["peers", "add", name, &url]).output().unwrap();
    assert!(out.status.success(), "peers add: {out:?}");
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn the_grid_shows_a_peers_sessions_and_survives_it_going_down() {
    let home_b = Home::new();
    let daemon_b = Daemon::start(&home_b, free_port());
    let base_b = daemon_b.base();
    spawn_bash(&base_b, "b1", home_b.path());
    spawn_bash(&base_b, "b2", home_b.path());

    let home = Home::new();
    add_peer(&home, "hostB", daemon_b.port);
    let port = free_port();
    let tui = Tui::start(&home, port, &[]);
    tui.wait_text(&format!("embedded :{port} + 1 peer"));
    spawn_bash(&tui.url(""), "a1", home.path());
    for id in ["a1", "b1@hostB", "b2@hostB"] {
        let prompt = format!("[AGENT: {}]", id.split('@').next().unwrap());
        tui.wait_pane(id, &prompt);
    }
    tui.wait_text("3 sessions");

    // Typing into a peer's pane goes over its WebSocket to that machine's program.
    tui.palette("focus b1@hostB", 0);
    tui.keys(&["Enter"]);
    tui.wait_text("TYPING b1@hostB");
    tui.type_text("echo ty-$((1+2))");
    tui.keys(&["Enter", "C-a"]);
    tui.wait_pane("b1@hostB", "ty-3");
    assert!(api_screen(&base_b, "b1").contains("ty-3"));

    // The palette's inject goes to the focused peer pane, through the peer's API.
    tui.palette("inject echo $((6*7))-b1", 0);
    tui.wait_text("inject → b1@hostB: delivered");
    tui.wait_pane("b1@hostB", "42-b1");

    // A multicast of marked panes on two machines reaches both, and only them.
    tui.keys(&["h", "Space", "l", "l", "Space"]);
    tui.wait_text("2 marked");
    tui.palette("multicast echo mc-$((2+3))", 1);
    tui.wait_text("multicast: 2 ok");
    tui.wait_pane("a1", "mc-5");
    tui.wait_pane("b2@hostB", "mc-5");
    assert!(!api_screen(&base_b, "b1").contains("mc-5"));

    // Kill a peer's session from the dashboard.
    tui.palette("kill b2@hostB", 0);
    tui.wait_text("Kill session b2@hostB? [y/N]");
    tui.keys(&["y"]);
    tui.wait_screen("the peer's pane removed", |s| {
        pane_text(s, "b2@hostB").is_none() && s.contains("2 sessions")
    });
    assert_eq!(session_ids(&base_b), vec!["b1"]);

    // Spawn on the peer: the new id names it.
    tui.palette("spawn bash --norc --noprofile", 0);
    tui.wait_text("id ›");
    tui.type_text("n1@hostB");
    tui.keys(&["Enter"]);
    tui.wait_text("spawn n1@hostB: started");
    tui.wait_screen("the new peer pane", |s| pane_text(s, "n1@hostB").is_some());
    assert_eq!(session_ids(&base_b), vec!["b1", "n1"]);

    // The event log has the peer's events, each with its host.
    tui.keys(&["e"]);
    tui.wait_text("@hostB inject");
    tui.keys(&["e"]);

    // A hung peer (SIGSTOP: it accepts connections and never answers) is marked down within
    // its deadline and heartbeat; the local pane keeps working meanwhile.
    signal(daemon_b.child.id(), "STOP");
    let stopped = Instant::now();
    tui.wait_text("hostB down");
    let marked = stopped.elapsed();
    assert!(
        marked < Duration::from_secs(10),
        "marked down after {marked:?}"
    );
    // Its panes follow with the next session sync (throttled to 50 ms).
    tui.wait_text("[host down]");
    tui.palette("focus a1", 0);
    let sent = Instant::now();
    tui.palette("inject echo local-$((4+4))", 0);
    tui.wait_pane("a1", "local-8");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );

    signal(daemon_b.child.id(), "CONT");
    tui.wait_text("peer hostB answers again");
    tui.wait_screen("the peer's pane live again", |s| {
        !s.contains("[host down]") && pane_text(s, "b1@hostB").is_some()
    });
    tui.palette("focus b1@hostB", 0);
    tui.palette("inject echo again-$((5+5))", 0);
    tui.wait_pane("b1@hostB", "again-10");

    // Rename on the peer: the new id may repeat the peer or not; the pane keeps its screen.
    tui.palette("rename", 0);
    tui.wait_text("new id ›");
    tui.type_text("r1@hostB");
    tui.keys(&["Enter"]);
    tui.wait_text("rename b1@hostB → r1@hostB: ok");
    tui.wait_pane("r1@hostB", "again-10");
    assert_eq!(
        session_ids(&base_b),
        vec!["r1", "n1"],
        "ordered by creation"
    );
}

#[test]
fn connect_shows_one_remote_daemon_and_no_peers_leaves_peers_out() {
    let home_b = Home::new();
    let daemon_b = Daemon::start(&home_b, free_port());
    spawn_bash(&daemon_b.base(), "r1", home_b.path());
    let home = Home::new();
    add_peer(&home, "hostB", daemon_b.port);

    // --connect by peer name: that daemon alone, nothing served here.
    let port = free_port();
    let tui = Tui::start_shell(
        &home,
        port,
        &format!("{} tui --connect HOSTB", telepty_bin().display()),
        200,
        50,
    );
    tui.wait_text("client → HOSTB");
    tui.wait_pane("r1", "[AGENT: r1]");
    tui.palette("inject echo cx-$((3*3))", 0);
    tui.wait_pane("r1", "cx-9");
    tui.keys(&["q"]);
    tui.wait_text("[tui exited 0]");
    drop(tui);

    // --no-peers: the peer's sessions stay out of the grid.
    let tui = Tui::start(&home, port, &["--no-peers"]);
    tui.wait_text(&format!("embedded :{port}"));
    tui.wait_text("0 sessions");
    assert!(!tui.capture().contains("peer"), "{}", tui.capture());

    drop(tui);

    // A daemon that cannot be reached fails before the terminal is touched, in one line.
    let tui = Tui::start_shell(
        &home,
        port,
        &format!("{} tui --connect nosuch.invalid", telepty_bin().display()),
        200,
        50,
    );
    let screen = tui.wait_text("[tui exited 1]");
    assert!(
        screen.contains("telepty tui: --connect nosuch.invalid: listing its sessions failed"),
        "{screen}"
    );
}
