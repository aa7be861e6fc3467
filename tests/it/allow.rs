//! `telepty allow` in a real terminal (a tmux pane) against a real daemon: transparency, injects,
//! the daemon's screen, surviving a SIGKILLed daemon, exit codes; plus `reply` and `--ref`.
//!
//! The daemon comes from the shared harness (`common::Daemon`, which can `kill9()` and
//! `restart()` on the same HOME and port). Every wait polls a condition with a deadline;
//! nothing sleeps blindly.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{Daemon, T, bin, count_lines, show, wait_for, wait_until};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn lines_with(screen: &str, needle: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| l.contains(needle))
        .collect()
}

fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .map(str::trim_end)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

fn wait_connected(d: &Daemon, id: &str) {
    d.wait_session(id, "CONNECTED", |s| s["healthStatus"] == "CONNECTED");
}

/// `env -i` assignments for a tmux pane talking to `d`.
fn pane_env(d: &Daemon, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        ),
        ("HOME".into(), d.home_path().display().to_string()),
        ("TELEPTY_PORT".into(), d.port.to_string()),
        ("TERM".into(), "xterm-256color".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    for (k, val) in extra {
        v.push((k.to_string(), val.to_string()));
    }
    v
}

// --------------------------------------------------------------------------------- tmux

/// A private tmux server with one pane running `allow-pane.sh ARGV…` under `env -i`.
struct Tmux {
    socket: String,
}

fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Tmux {
    fn start(cols: u16, rows: u16, env: &[(String, String)], cwd: &Path, argv: &[&str]) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "tpa{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut line = String::from("env -i");
        for (k, v) in env {
            line.push(' ');
            line.push_str(&sq(&format!("{k}={v}")));
        }
        line.push_str(" sh ");
        line.push_str(&sq(&fixture("allow-pane.sh").display().to_string()));
        for a in argv {
            line.push(' ');
            line.push_str(&sq(a));
        }
        let out = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
            ])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .arg("-c")
            .arg(cwd)
            .arg(&line)
            .env_remove("TMUX")
            .output()
            .expect("this test needs tmux");
        assert!(out.status.success(), "tmux new-session: {}", show(&out));
        Tmux { socket }
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let p = self.capture();
            if pred(&p) {
                return p;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what} in the tmux pane\n--- pane ---\n{p}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send_keys(&self, keys: &[&str]) {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "send-keys: {}", show(&out));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- tmux pane ---\n{}", self.capture());
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// `telepty allow --id w bash` in a tmux pane (prompt `W$ `), registered and at its prompt.
fn allow_bash(d: &Daemon) -> (tempfile::TempDir, Tmux) {
    let work = tempfile::tempdir().unwrap();
    let tm = Tmux::start(
        120,
        30,
        &pane_env(d, &[("PS1", "W$ ")]),
        work.path(),
        &[bin(), "allow", "--id", "w", "bash", "--norc", "--noprofile"],
    );
    tm.wait("Inject allowed.", |p| p.contains("Inject allowed."));
    wait_connected(d, "w");
    tm.wait("the W$ prompt", |p| last_line(p) == "W$");
    (work, tm)
}

// -------------------------------------------------------------------------------- tests

#[test]
fn allow_bridges_injects_and_survives_a_killed_daemon() {
    let mut d = Daemon::start();
    let (_work, tm) = allow_bash(&d);

    d.inject("w", "echo one-$((40+2))");
    let pane = tm.wait("one-42 and the next prompt", |p| {
        count_lines(p, "one-42") >= 1 && last_line(p) == "W$"
    });
    assert_eq!(count_lines(&pane, "one-42"), 1, "typed once:\n{pane}");
    let want = lines_with(&pane, "one-");
    assert_eq!(
        want,
        vec!["W$ echo one-$((40+2))".to_string(), "one-42".to_string()],
        "{pane}"
    );
    d.wait_screen("w", "the same lines as the pane", |s| {
        lines_with(s, "one-") == want
    });

    // The daemon dies hard and comes back on the same HOME and port.
    d.kill9();
    d.restart();
    let t = Instant::now();
    wait_connected(&d, "w");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the bridge took {took:?} to reconnect (backoff starts at 1 s)"
    );
    assert_eq!(d.list_ids(), vec!["w".to_string()], "exactly one session w");
    // The new daemon's screen was rebuilt from the bridge's emulator.
    d.wait_screen("w", "the screen restored after the restart", |s| {
        lines_with(s, "one-") == want
    });

    d.inject("w", "echo two-$((1+1))");
    let pane = tm.wait("two-2 and the next prompt", |p| {
        count_lines(p, "two-2") >= 1 && last_line(p) == "W$"
    });
    assert_eq!(count_lines(&pane, "two-2"), 1, "{pane}");
    assert_eq!(
        count_lines(&pane, "one-42"),
        1,
        "nothing typed twice:\n{pane}"
    );
    let want2 = lines_with(&pane, "two-");
    d.wait_screen("w", "two-2 on the daemon's screen", |s| {
        lines_with(s, "two-") == want2
    });

    d.inject("w", "exit 3");
    tm.wait("EXIT=3 after allow", |p| count_lines(p, "EXIT=3") == 1);
    wait_until(T, "session w removed", || d.list_ids().is_empty());
    let deaths =
        std::fs::read_to_string(d.home_path().join(".telepty/logs/session-deaths.log")).unwrap();
    assert!(deaths.contains(" session=w exit=3 "), "{deaths}");
}

#[test]
fn allow_default_id_env_keyboard_paste_and_delete() {
    let mut d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let proj = work.path().join("my proj");
    std::fs::create_dir(&proj).unwrap();
    let tm = Tmux::start(
        100,
        30,
        &pane_env(&d, &[("PS1", "P$ "), ("TELEPTY_SESSION_ID", "outer")]),
        &proj,
        &[bin(), "wrap", "bash", "--norc", "--noprofile"],
    );
    let id = "my-proj-bash";
    tm.wait("Inject allowed.", |p| p.contains("Inject allowed."));
    let pane = tm.wait("the prompt", |p| last_line(p) == "P$");
    assert!(
        pane.contains("TELEPTY_SESSION_ID=outer"),
        "warns about the override:\n{pane}"
    );
    wait_connected(&d, id);

    // Keys typed in the terminal reach the child, and the daemon sees the result.
    tm.send_keys(&["echo typed-$((3*3))", "Enter"]);
    tm.wait("typed-9", |p| count_lines(p, "typed-9") == 1);
    d.wait_screen(id, "typed-9", |s| count_lines(s, "typed-9") == 1);

    d.inject(id, "echo ID=$TELEPTY_SESSION_ID");
    tm.wait("the child's TELEPTY_SESSION_ID", |p| {
        count_lines(p, &format!("ID={id}")) == 1
    });

    // Multi-line text (bash enables bracketed paste): each line runs once.
    d.inject(id, "echo pa-$((0+1))\necho pa-$((0+2))");
    let pane = tm.wait("both pasted lines ran", |p| {
        count_lines(p, "pa-1") >= 1 && count_lines(p, "pa-2") >= 1 && last_line(p) == "P$"
    });
    assert_eq!(
        (count_lines(&pane, "pa-1"), count_lines(&pane, "pa-2")),
        (1, 1),
        "{pane}"
    );

    // Renamed: after a daemon restart the bridge re-registers under the new id.
    let r = d.patch(&format!("/api/sessions/{id}"), json!({"new_id": "renamed"}));
    assert_eq!(r.0, 200, "{}", r.1);
    // The daemon persists asynchronously; crash it only once the rename is on disk.
    let store = d.home_path().join(".config/aigentry-telepty/sessions.json");
    wait_for(T, "the rename persisted", || {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&store).ok()?).ok()?;
        (doc.get("renamed").is_some() && doc.get(id).is_none()).then_some(())
    });
    d.kill9();
    d.restart();
    wait_connected(&d, "renamed");
    assert_eq!(d.list_ids(), vec!["renamed".to_string()]);
    d.inject("renamed", "echo after-$((4+4))");
    tm.wait("after-8", |p| count_lines(p, "after-8") == 1);
    let id = "renamed";

    // Deleted from outside: the bridge stops registering; the shell keeps running.
    let r = d.delete(&format!("/api/sessions/{id}"));
    assert_eq!(r.0, 200, "{}", r.1);
    tm.wait("the removal notice", |p| {
        p.contains("was removed from the daemon")
    });
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        assert!(
            d.list_ids().is_empty(),
            "the bridge re-registered: {:?}",
            d.list_ids()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tm.send_keys(&["echo still-$((2*2))", "Enter"]);
    tm.wait("the shell still runs", |p| count_lines(p, "still-4") == 1);
    tm.send_keys(&["exit 5", "Enter"]);
    tm.wait("EXIT=5", |p| count_lines(p, "EXIT=5") == 1);
    assert!(d.list_ids().is_empty());
}

#[test]
fn allow_auto_restart_and_exit_status() {
    let d = Daemon::start();
    let work = tempfile::tempdir().unwrap();
    let tm = Tmux::start(
        100,
        30,
        &pane_env(&d, &[]),
        work.path(),
        &[
            bin(),
            "enable",
            "--id",
            "ar",
            "--auto-restart",
            "--",
            "sh",
            "-c",
            "echo run-$((20+1)); exit 4",
        ],
    );
    // 1 run + 5 restarts, then the failure is final and becomes allow's exit code.
    let pane = tm.wait("EXIT=4", |p| count_lines(p, "EXIT=4") == 1);
    assert_eq!(count_lines(&pane, "run-21"), 6, "{pane}");
    assert!(pane.contains("restarting in 1 s"), "{pane}");
    wait_until(T, "session ar removed", || d.list_ids().is_empty());
    let deaths =
        std::fs::read_to_string(d.home_path().join(".telepty/logs/session-deaths.log")).unwrap();
    let lines: Vec<&str> = deaths
        .lines()
        .filter(|l| l.contains("session=ar"))
        .collect();
    assert_eq!(lines.len(), 6, "{deaths}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("restart=yes")).count(),
        5
    );
}

// ----------------------------------------------------------------------- reply and --ref

#[test]
fn reply_answers_the_last_injector() {
    let d = Daemon::start();
    d.spawn_bash("orch");
    d.spawn_bash("worker");
    // The worker runs `telepty reply` itself (TELEPTY_SESSION_ID=worker is set by the daemon).
    let cmd = format!("{} reply echo replied-$((2+3))", sq(bin()));
    d.inject_json("worker", json!({"prompt": cmd, "from": "orch"}));
    d.wait_screen("orch", "the reply ran in orch", |s| {
        count_lines(s, "replied-5") == 1
    });
    let (_, orch) = d.get("/api/sessions/orch");
    assert_eq!(orch["lastInjectFrom"], json!("worker"), "{orch}");

    // Nobody injected into `lonely` yet.
    d.spawn_bash("lonely");
    let o = d.cli_env(&["reply", "hi"], &[("TELEPTY_SESSION_ID", "lonely")]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nobody has injected into lonely"),
        "{}",
        show(&o)
    );
    // Outside a session.
    let o = d.cli(&["reply", "hi"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("TELEPTY_SESSION_ID"),
        "{}",
        show(&o)
    );
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pointer(sha: &str) -> String {
    format!(
        "[context-ref] Read ~/.telepty/shared/{sha}.md and use it as the source of truth for this task."
    )
}

fn age(path: &Path, days: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn inject_ref_stores_shared_files_and_injects_the_pointer() {
    let d = Daemon::start();
    // `cat` on a wide terminal shows each injected line verbatim (echo + output).
    d.spawn_sized("c1", "cat", &[], 250, 30);
    let shared = d.home_path().join(".telepty/shared");
    std::fs::create_dir_all(&shared).unwrap();
    let old = shared.join("old.md");
    let fresh = shared.join("fresh.md");
    let keep_txt = shared.join("notes.txt");
    for p in [&old, &fresh, &keep_txt] {
        std::fs::write(p, "x").unwrap();
    }
    age(&old, 8);
    age(&keep_txt, 30);

    // File mode: the file's contents are shared, the message follows on the next line.
    let payload = "# Task context\nuse the v2 API\n";
    let file = d.home_path().join("ctx.md");
    std::fs::write(&file, payload).unwrap();
    let o = d.cli(&[
        "inject",
        "--ref",
        file.to_str().unwrap(),
        "c1",
        "  do it now  ",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let sha = sha256_hex(payload);
    let stored = shared.join(format!("{sha}.md"));
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), payload);
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!old.exists(), "expired .md pruned");
    assert!(fresh.exists() && keep_txt.exists(), "others kept");
    d.wait_screen("c1", "the pointer and the message", |s| {
        count_lines(s, &pointer(&sha)) >= 1 && count_lines(s, "do it now") >= 1
    });

    // Inline mode: the text is the payload; only the pointer is typed.
    let o = d.cli(&["inject", "--ref", "c1", "inline", "payload", "words"]);
    assert!(o.status.success(), "{}", show(&o));
    let isha = sha256_hex("inline payload words");
    let istored = shared.join(format!("{isha}.md"));
    assert_eq!(
        std::fs::read_to_string(&istored).unwrap(),
        "inline payload words"
    );
    d.wait_screen("c1", "the inline pointer", |s| {
        count_lines(s, &pointer(&isha)) >= 1
    });

    // Never rewritten: the same payload leaves the existing file alone.
    age(&istored, 1);
    let before = mtime(&istored);
    let o = d.cli(&["inject", "--ref", "c1", "inline", "payload", "words"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(mtime(&istored), before);

    // TTL: 0 disables pruning; an invalid value means 7 days.
    let old2 = shared.join("old2.md");
    std::fs::write(&old2, "y").unwrap();
    age(&old2, 30);
    let o = d.cli_env(
        &["inject", "--ref", "c1", "ttl", "zero"],
        &[("TELEPTY_SHARED_REF_TTL_DAYS", "0")],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(old2.exists());
    let o = d.cli_env(
        &["inject", "--ref", "c1", "ttl", "junk"],
        &[("TELEPTY_SHARED_REF_TTL_DAYS", "soon")],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(!old2.exists());
    assert!(istored.exists(), "1 day old < 7 days");

    // Empty payload.
    let empty = d.home_path().join("empty.md");
    std::fs::write(&empty, "  \n").unwrap();
    let o = d.cli(&["inject", "--ref", empty.to_str().unwrap(), "c1"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Shared reference content cannot be empty."),
        "{}",
        show(&o)
    );

    // Another machine cannot read our shared directory: refused before anything is sent.
    let t = Instant::now();
    let o = d.cli(&["inject", "--ref", "c1@192.0.2.1", "remote", "text"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--ref cannot be used with c1@192.0.2.1"),
        "{}",
        show(&o)
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // ... while this machine addressed as id@127.0.0.1:port is fine.
    let local = format!("c1@127.0.0.1:{}", d.port);
    let o = d.cli(&["inject", "--ref", &local, "loopback", "ok"]);
    assert!(o.status.success(), "{}", show(&o));

    // broadcast --ref FILE message
    let o = d.cli(&[
        "broadcast",
        "--ref",
        file.to_str().unwrap(),
        "broadcast",
        "msg",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    d.wait_screen("c1", "the broadcast message", |s| {
        count_lines(s, "broadcast msg") >= 1
    });
}

#[test]
fn an_inject_cut_off_by_a_daemon_crash_is_submitted_once_never_glued() {
    // The daemon holds each Enter 4 s after the text, so it can be killed in between.
    let mut d = Daemon::start_with(
        &[
            ("TELEPTY_SUBMIT_MIN_MS", "4000"),
            ("TELEPTY_SUBMIT_MAX_MS_WRAPPED", "6000"),
        ],
        None,
    );
    let (work, tm) = allow_bash(&d);
    let out = work.path().join("w.txt");

    d.inject("w", "echo PRE1 >> w.txt");
    tm.wait("the text typed, its Enter still held", |p| {
        last_line(p) == "W$ echo PRE1 >> w.txt"
    });
    d.kill9();
    // The bridge lost the daemon between the text and its Enter: it presses the Enter itself.
    wait_until(T, "PRE1 written", || {
        std::fs::read_to_string(&out).unwrap_or_default() == "PRE1\n"
    });
    tm.wait("the next prompt", |p| last_line(p) == "W$");

    // Right after the restart the bridge is still reconnecting: the inject waits for it.
    d.restart();
    let r = d.post(
        "/api/sessions/w/inject",
        serde_json::json!({"prompt": "echo POST1 >> w.txt"}),
    );
    assert_eq!(r.0, 200, "an inject while the owner reconnects: {}", r.1);
    wait_until(T, "POST1 written after PRE1", || {
        std::fs::read_to_string(&out).unwrap_or_default() == "PRE1\nPOST1\n"
    });
    let pane = tm.wait("the prompt after POST1", |p| last_line(p) == "W$");
    assert!(!pane.contains("w.txtecho"), "two commands glued:\n{pane}");
}
