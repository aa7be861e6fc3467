//! Delivery into agents that read their terminal like the real CLIs do
//! (`tests/fixtures/fake-agent.py`): the screen gate of the agent profiles. Each check reads
//! the agent's own log of submitted prompts, the ground truth for "once, whole, never merged".

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn fake_agent() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fake-agent.py")
        .display()
        .to_string()
}

struct Agent {
    id: String,
    log: PathBuf,
    pid: i32,
}

impl Agent {
    fn spawn(d: &Daemon, id: &str, profile: &str, args: &[&str]) -> Agent {
        let log = d.home_path().join(format!("{id}-prompts.jsonl"));
        let mut argv = vec![fake_agent(), "--log".into(), log.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut body = json!({"session_id": id, "command": "python3", "args": argv,
                              "cols": 100, "rows": 30});
        if !profile.is_empty() {
            body["profile"] = json!(profile);
        }
        let r = d.post("/api/sessions/spawn", body);
        assert_eq!(r.0, 201, "spawn {id}: {}", r.1);
        d.wait_screen(id, "the agent's input box", |s| {
            s.contains("? for shortcuts")
        });
        let pid = d.session(id)["pid"].as_i64().expect("pid") as i32;
        Agent {
            id: id.into(),
            log,
            pid,
        }
    }

    fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["prompt"].as_str().map(str::to_string))
            .collect()
    }

    /// Wait until the agent has received `n` prompts (and a moment more would show a stray one).
    fn wait_prompts(&self, n: usize) -> Vec<String> {
        wait_for(Duration::from_secs(60), &format!("{n} prompts"), || {
            let p = self.prompts();
            (p.len() >= n).then_some(p)
        })
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig).expect("signal");
    }
}

fn inject_wait(d: &Daemon, id: &str, prompt: &str) -> (u16, Value) {
    d.post(
        &format!("/api/sessions/{id}/inject?wait=delivered"),
        json!({ "prompt": prompt }),
    )
}

#[test]
fn an_inject_while_the_agent_is_stopped_is_submitted_once() {
    let d = Daemon::start();
    // Gemini's reading: an Enter within 30 ms of typed text is a line break.
    let a = Agent::spawn(&d, "stopped", "gemini", &["--paste-ms", "30"]);
    a.signal(nix::sys::signal::Signal::SIGSTOP);
    let (status, reply) = std::thread::scope(|s| {
        let t = s.spawn(|| inject_wait(&d, &a.id, "STOPPED say hi"));
        // The agent does not read its terminal for a second: text and any Enter sent in that
        // time reach it in one read.
        std::thread::sleep(Duration::from_secs(1));
        a.signal(nix::sys::signal::Signal::SIGCONT);
        t.join().expect("inject thread")
    });
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "submitted", "{reply}");
    assert_eq!(reply["submit"], "sent", "{reply}");
    assert_eq!(a.wait_prompts(1), vec!["STOPPED say hi"]);
    // A second inject after it goes through as well, on its own.
    let (status, reply) = inject_wait(&d, &a.id, "AFTER say hi");
    assert_eq!((status, &reply["outcome"]), (200, &json!("submitted")));
    assert_eq!(a.wait_prompts(2), vec!["STOPPED say hi", "AFTER say hi"]);
}

#[test]
fn parallel_injects_into_an_agent_that_queues_while_busy_stay_separate() {
    let d = Daemon::start();
    // Gemini's queue: prompts submitted during a turn are joined into the next one.
    let a = Agent::spawn(&d, "queueing", "gemini", &["--queue", "--busy-ms", "700"]);
    const N: usize = 5;
    let barrier = std::sync::Barrier::new(N);
    std::thread::scope(|s| {
        for n in 0..N {
            let (d, a, barrier) = (&d, &a, &barrier);
            s.spawn(move || {
                barrier.wait();
                let r = d.post(
                    &format!("/api/sessions/{}/inject", a.id),
                    json!({ "prompt": format!("CONC{n} say hi") }),
                );
                assert_eq!(r.0, 200, "{}", r.1);
            });
        }
    });
    let got = a.wait_prompts(N);
    for n in 0..N {
        let marker = format!("CONC{n} say hi");
        assert_eq!(
            got.iter().filter(|p| **p == marker).count(),
            1,
            "{marker} not submitted exactly once, alone: {got:?}"
        );
    }
    assert_eq!(got.len(), N, "{got:?}");
}

#[test]
fn a_long_paste_shown_as_a_placeholder_is_submitted_whole() {
    let d = Daemon::start();
    let a = Agent::spawn(
        &d,
        "paste",
        "claude",
        &["--style", "claude", "--placeholder-chars", "200"],
    );
    let text: String = (0..30)
        .map(|i| format!("line {i} of a long pasted prompt"))
        .collect::<Vec<_>>()
        .join("\n");
    let (status, reply) = inject_wait(&d, &a.id, &text);
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &json!("submitted")),
        "{reply}"
    );
    assert_eq!(a.wait_prompts(1), vec![text]);
}

#[test]
fn keys_and_enter_do_not_wait_for_a_busy_agent() {
    let d = Daemon::start();
    let a = Agent::spawn(&d, "busy", "gemini", &["--busy-ms", "30000"]);
    let (status, _) = inject_wait(&d, &a.id, "LONG turn");
    assert_eq!(status, 200);
    d.wait_screen(&a.id, "the busy marker", |s| s.contains("esc to cancel"));
    // ctrl+c goes at once, not after the turn: the agent exits on it.
    let started = std::time::Instant::now();
    let r = d.post(
        &format!("/api/sessions/{}/keys", a.id),
        json!({"keys": ["ctrl+c"]}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    wait_until(Duration::from_secs(10), "the agent to exit", || {
        d.session(&a.id)["exitCode"].is_number()
    });
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_unknown_profile_is_refused_with_the_known_ones() {
    let d = Daemon::start();
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "p", "command": "bash", "profile": "nosuch"}),
    );
    assert_error(&r, 400, "INVALID_REQUEST", None);
    let msg = r.1["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("unknown profile: nosuch") && msg.contains("claude"),
        "{msg}"
    );
}

#[test]
fn a_user_profile_file_is_used_and_a_bad_one_stops_the_daemon() {
    // A profile of the user's, chosen by command: a program the built-ins do not know.
    let good = "commands = [\"fake-agent\"]\n[screen]\nprompt = '^│ > '\nbusy = 'esc to cancel'\n\
                [timing]\nconsume_timeout_ms = 10000\nready_quiet_ms = 200\n";
    let d = Daemon::start_full(&[], None, &[(".config/telepty/profiles/mine.toml", good)]);
    let a = Agent::spawn(&d, "mine", "", &["--paste-ms", "30"]);
    a.signal(nix::sys::signal::Signal::SIGSTOP);
    let (status, reply) = std::thread::scope(|s| {
        let t = s.spawn(|| inject_wait(&d, &a.id, "MINE say hi"));
        std::thread::sleep(Duration::from_millis(800));
        a.signal(nix::sys::signal::Signal::SIGCONT);
        t.join().expect("inject thread")
    });
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &json!("submitted")),
        "{reply}"
    );
    assert_eq!(a.wait_prompts(1), vec!["MINE say hi"]);
    drop(d);

    let bad = "[screen]\nbusy = '('\n";
    let home = tempfile::tempdir().expect("temp HOME");
    let file = home.path().join(".config/telepty/profiles/bad.toml");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, bad).expect("write");
    let out = std::process::Command::new(bin())
        .args(["daemon", "--port", "1"])
        .env("HOME", home.path())
        .env_remove("TELEPTY_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run daemon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("screen.busy"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn keys_reach_a_busy_agent_even_with_a_prompt_waiting_for_it() {
    let d = Daemon::start();
    let a = Agent::spawn(&d, "waiting", "gemini", &["--busy-ms", "60000"]);
    let (status, _) = inject_wait(&d, &a.id, "LONG turn");
    assert_eq!(status, 200);
    d.wait_screen(&a.id, "the busy marker", |s| s.contains("esc to cancel"));
    // This one waits for the turn to end (a minute)…
    let r = d.post(
        &format!("/api/sessions/{}/inject", a.id),
        json!({"prompt": "NEXT prompt"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    // …and ctrl+c, queued behind it, still goes at once: the agent exits on it.
    let r = d.post(
        &format!("/api/sessions/{}/keys", a.id),
        json!({"keys": ["ctrl+c"]}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    wait_until(
        Duration::from_secs(10),
        "the agent to exit on ctrl+c",
        || d.session(&a.id)["exitCode"].is_number(),
    );
    assert_eq!(a.prompts(), vec!["LONG turn"], "NEXT was never typed");
}
