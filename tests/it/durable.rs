//! Durable state (issue 10, items 4 and 7): one writer of sessions.json, a failing disk seen
//! by clients, a corrupt file moved aside, the flock singleton, lost sessions and
//! `telepty resurrect` after a simulated reboot.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const SESSIONS: &str = ".config/aigentry-telepty/sessions.json";

fn sessions_file(d: &Daemon) -> PathBuf {
    d.home_path().join(SESSIONS)
}

/// The file as JSON; panics (with the text) if it is not a JSON object.
fn read_doc(path: &Path) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m,
        other => panic!(
            "{} is not a JSON object ({other:?}):\n{text}",
            path.display()
        ),
    }
}

fn out_of(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A process is gone once it no longer exists or is a zombie.
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// What a reboot does to a session: kill -9 every process of it.
fn kill9_all(pids: &[u32]) {
    for &pid in pids {
        // SAFETY: plain kill(2) of a pid this test spawned through the daemon.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    wait_until(T, "session processes gone", || {
        pids.iter().all(|&p| dead(p))
    });
}

fn pids_of(d: &Daemon) -> Vec<u32> {
    d.list()
        .iter()
        .filter_map(|s| s["pid"].as_u64().map(|p| p as u32))
        .collect()
}

/// An HTTP call that never panics (the daemon may be killed under it): `None` on a transport
/// error.
fn try_call(agent: &ureq::Agent, method: &str, url: &str, body: Value) -> Option<(u16, Value)> {
    let r = match method {
        "POST" => agent.post(url).send_json(&body),
        "PATCH" => agent.patch(url).send_json(&body),
        _ => unreachable!(),
    };
    let mut r = r.ok()?;
    let status = r.status().as_u16();
    let v = r.body_mut().read_json().unwrap_or(Value::Null);
    Some((status, v))
}

#[test]
fn sigkill_in_a_burst_of_spawns_and_renames_loses_nothing_acknowledged() {
    let mut d = Daemon::start();
    for trial in 0..5u32 {
        let port = d.port;
        // (ids expected, renamed-away ids, a rename in flight when the daemon died: either
        // name may be saved).
        type Acked = (BTreeSet<String>, BTreeSet<String>, Option<(String, String)>);
        let acked: Arc<Mutex<Acked>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(20)))
                    .build()
                    .into();
                let base = format!("http://127.0.0.1:{port}");
                let mut last: Option<String> = None;
                for i in 0..400u32 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    if i % 3 == 2 {
                        if let Some(old) = last.take() {
                            let new = format!("{old}-r");
                            acked.lock().unwrap().2 = Some((old.clone(), new.clone()));
                            let Some((st, _)) = try_call(
                                &agent,
                                "PATCH",
                                &format!("{base}/api/sessions/{old}"),
                                json!({"new_id": new}),
                            ) else {
                                break;
                            };
                            let mut a = acked.lock().unwrap();
                            a.2 = None;
                            if st == 200 {
                                a.0.remove(&old);
                                a.1.insert(old);
                                a.0.insert(new);
                            }
                            continue;
                        }
                    }
                    let id = format!("t{trial}-s{i}");
                    let Some((st, _)) = try_call(
                        &agent,
                        "POST",
                        &format!("{base}/api/sessions/spawn"),
                        json!({"session_id": id, "command": "cat", "cols": 40, "rows": 10}),
                    ) else {
                        break;
                    };
                    if st == 201 {
                        acked.lock().unwrap().0.insert(id.clone());
                        last = Some(id);
                    }
                }
            })
        };
        // Kill at a different point of the burst each trial.
        let at = 4 + trial as usize * 3;
        wait_until(T, "some acknowledged changes", || {
            acked.lock().unwrap().0.len() >= at
        });
        let pids = pids_of(&d);
        d.kill9();
        stop.store(true, Ordering::Release);
        worker.join().unwrap();
        kill9_all(&pids);

        let (expected, gone, in_flight) = acked.lock().unwrap().clone();
        let doc = read_doc(&sessions_file(&d));
        // The name an acknowledged session is saved under (a rename in flight may or may not
        // have been saved).
        let saved_as = |id: &String| -> String {
            match &in_flight {
                Some((old, new)) if old == id && !doc.contains_key(id) => new.clone(),
                _ => id.clone(),
            }
        };
        for id in &expected {
            let e = doc
                .get(&saved_as(id))
                .unwrap_or_else(|| panic!("trial {trial}: acknowledged {id} is not saved"));
            assert_eq!(e["type"], json!("spawned"), "{e}");
            assert_eq!(e["command"], json!("cat"), "{e}");
        }
        for id in &gone {
            assert!(
                !doc.contains_key(id),
                "trial {trial}: {id} was renamed (acknowledged) but is still saved"
            );
        }

        // After the restart every acknowledged session is there: live (adopted) or lost.
        d.restart();
        let live: BTreeSet<String> = d.list_ids().into_iter().collect();
        let lost = d.get("/api/sessions/lost");
        assert_eq!(lost.0, 200, "{}", lost.1);
        let lost: BTreeSet<String> = lost
            .1
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        for id in expected.iter().map(saved_as) {
            assert!(
                live.contains(&id) || lost.contains(&id),
                "trial {trial}: {id} neither live nor lost after the restart"
            );
        }
        // No temp file of a killed writer is left behind. The new daemon may be writing right
        // now (the exits of the killed sessions reach it asynchronously after adoption): its
        // own in-flight temp is not a leftover.
        let dir = sessions_file(&d).parent().unwrap().to_path_buf();
        let own = format!(".tmp.{}.", d.pid());
        let temps: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp.") && !n.contains(&own))
            .collect();
        assert!(temps.is_empty(), "left-over temp files: {temps:?}");
        // Start the next trial from an empty store.
        for id in lost {
            let r = d.post(
                "/api/sessions/resurrect",
                json!({"ids": [id], "forget": true}),
            );
            assert_eq!(r.0, 200, "{}", r.1);
        }
        for id in live {
            d.delete(&format!("/api/sessions/{id}"));
        }
    }
}

#[test]
fn a_failing_disk_answers_507_and_shows_in_health_and_status_until_it_recovers() {
    let d = Daemon::start();
    d.spawn("before", "cat", &[]);
    let h = d.get("/api/health").1;
    assert_eq!(h["status"], json!("ok"), "{h}");
    assert_eq!(h["persistence"]["ok"], json!(true), "{h}");

    // Root ignores permissions: break the directory instead (a file where it should be).
    let file = sessions_file(&d);
    let dir = file.parent().unwrap().to_path_buf();
    let aside = dir.with_extension("moved");
    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, "not a directory").unwrap();

    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "during", "command": "cat"}),
    );
    assert_error(&r, 507, "PERSIST_FAILED", None);
    assert_eq!(r.1["applied"], json!(true), "{}", r.1);
    let msg = r.1["error"].as_str().unwrap();
    assert!(
        msg.starts_with("The change was applied but not saved: could not save session state to "),
        "{msg}"
    );
    // The change is live, only not saved.
    assert_eq!(d.session("during")["type"], json!("spawned"));
    let r = d.patch("/api/sessions/during", json!({"new_id": "during2"}));
    assert_error(&r, 507, "PERSIST_FAILED", None);

    let h = d.get("/api/health").1;
    let p = &h["persistence"];
    assert_eq!(h["status"], json!("ok"), "{h}");
    assert_eq!(p["ok"], json!(false), "{h}");
    assert!(p["error"].as_str().is_some_and(|e| !e.is_empty()), "{h}");
    assert!(p["since"].is_string(), "{h}");
    let o = d.cli(&["status"]);
    let out = out_of(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("Saved state: NOT SAVED since "), "{out}");
    let o = d.cli(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["persistence"]["ok"], json!(false), "{v}");

    // The disk comes back: the writer retries by itself, and everything is saved.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    wait_until(T, "persistence ok again", || {
        d.get("/api/health").1["persistence"]["ok"] == json!(true)
    });
    let h = d.get("/api/health").1;
    assert_eq!(h["persistence"]["error"], json!(null), "{h}");
    let doc = read_doc(&file);
    assert!(
        doc.contains_key("before") && doc.contains_key("during2"),
        "{doc:?}"
    );
    assert!(!doc.contains_key("during"), "{doc:?}");
    let out = out_of(&d.cli(&["status"]));
    assert!(out.contains("Saved state: ok"), "{out}");
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "after", "command": "cat"}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
}

#[test]
fn a_corrupt_state_file_is_moved_aside_with_a_message() {
    let garbage = "{\"w1\": {\"id\": \"w1\", \"type\": \"wrap";
    let d = Daemon::start_full(&[], None, &[(SESSIONS, garbage)]);
    let h = d.get("/api/health").1;
    let warning = h["persistence"]["warning"]
        .as_str()
        .unwrap_or_else(|| panic!("{h}"));
    assert!(warning.contains("could not be loaded"), "{warning}");
    assert!(warning.contains("moved aside to "), "{warning}");
    let dir = sessions_file(&d).parent().unwrap().to_path_buf();
    let moved: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sessions.json.corrupt-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(std::fs::read_to_string(&moved[0]).unwrap(), garbage);
    assert!(
        warning.contains(&moved[0].display().to_string()),
        "{warning}"
    );
    assert!(d.log().contains("moved aside to"), "{}", d.log());
    let out = out_of(&d.cli(&["status"]));
    assert!(
        out.contains("Warning:   ") && out.contains("could not be loaded"),
        "{out}"
    );
    // The daemon works and writes a fresh, valid file.
    d.spawn("fresh", "cat", &[]);
    assert!(read_doc(&sessions_file(&d)).contains_key("fresh"));
}

#[test]
fn the_lock_keeps_a_second_daemon_out_and_never_touches_its_files() {
    let mut d = Daemon::start();
    let state_path = d.home_path().join(".telepty/daemon-state.json");
    let state = std::fs::read_to_string(&state_path).unwrap();
    let lock = std::fs::read_to_string(d.home_path().join(".telepty/daemon.lock")).unwrap();
    assert_eq!(lock.trim(), d.pid().to_string());

    // Same HOME, another host and port (one local, one that cannot be bound): both exit
    // cleanly, naming the running daemon, and leave its state file alone.
    let other_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    for host in ["127.0.0.2", "192.0.2.1"] {
        let o = d.cli(&["daemon", "--host", host, "--port", &other_port]);
        let out = out_of(&o);
        assert_eq!(o.status.code(), Some(0), "{host}: {out}");
        assert!(
            out.contains(&format!(
                "telepty daemon already running (pid {}, port {}). Exiting.",
                d.pid(),
                d.port
            )),
            "{host}: {out}"
        );
        assert_eq!(std::fs::read_to_string(&state_path).unwrap(), state);
    }
    assert_eq!(d.get("/api/health").0, 200);

    // A dashboard in the same HOME mirrors the daemon and, quitting, leaves its files too.
    // (Covered by the same start path: it never takes the lock.)

    // SIGKILL: the state file is stale but the lock is free, so a restart just works.
    d.kill9();
    assert!(state_path.exists());
    d.restart();
    let state2: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state2["pid"], json!(d.pid()), "{state2}");
    // A graceful stop removes the state file (it is ours) and releases the lock.
    d.stop();
    assert!(!state_path.exists());
}

#[test]
fn a_lock_holder_that_does_not_answer_is_named_and_the_start_fails() {
    use std::os::fd::AsRawFd;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".telepty")).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(home.path().join(".telepty/daemon.lock"))
        .unwrap();
    // SAFETY: flock on a file this test owns.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    std::fs::write(
        home.path().join(".telepty/daemon.lock"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["daemon", "--port", &port.to_string()])
        .env("HOME", home.path())
        .env_remove("TELEPTY_PORT")
        .env_remove("PORT")
        .env_remove("HOST")
        .stdin(Stdio::null());
    let started = Instant::now();
    let o = run_capped(cmd, "telepty daemon with the lock held");
    let out = out_of(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "Another telepty (pid {}) holds {}",
            std::process::id(),
            home.path().join(".telepty/daemon.lock").display()
        )) && out.contains("but does not answer"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(!home.path().join(".telepty/daemon-state.json").exists());
    drop(f);
}

/// A fake agent CLI: prints its argv, cwd and LANG, then waits on the terminal.
fn fake_cli(dir: &Path, name: &str) {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"{name} ARGV: $*\"\necho \"CWD: $(pwd)\"\necho \"LANG=$LANG\"\nexec cat\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// kill -9 the daemon and every session process: what a reboot leaves.
/// What a reboot does to telepty: every process gone — the daemon, the programs and their
/// holders.
fn reboot(d: &mut Daemon) {
    let mut pids = pids_of(d);
    pids.extend(d.holder_pids());
    d.kill9();
    kill9_all(&pids);
    d.restart();
}

fn lost_ids(d: &Daemon) -> Vec<String> {
    let r = d.get("/api/sessions/lost");
    assert_eq!(r.0, 200, "{}", r.1);
    r.1.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn after_a_reboot_lost_sessions_are_listed_and_resurrect_with_resume_args() {
    let bin_dir = tempfile::tempdir().unwrap();
    fake_cli(bin_dir.path(), "claude");
    fake_cli(bin_dir.path(), "codex");
    let work = tempfile::tempdir().unwrap();
    let work_dir = std::fs::canonicalize(work.path()).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut d = Daemon::start_with(
        &[
            ("PATH", path.as_str()),
            ("LANG", "C.UTF-8"),
            ("MY_API_TOKEN", "s3cret-value"),
        ],
        None,
    );
    let r = d.post(
        "/api/sessions/spawn",
        json!({"session_id": "agent", "command": "claude", "args": ["--model", "x"],
               "cwd": work_dir, "cols": 90, "rows": 20}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    d.spawn("cx", "codex", &["-m", "o3"]);
    d.wait_screen("agent", "claude started", |s| {
        s.contains("claude ARGV: --model x")
    });
    d.wait_screen("cx", "codex started", |s| s.contains("codex ARGV: -m o3"));

    // Saved: what a resurrection needs, the allowlisted env, no secrets.
    let text = std::fs::read_to_string(sessions_file(&d)).unwrap();
    assert!(!text.contains("s3cret-value"), "{text}");
    let doc = read_doc(&sessions_file(&d));
    let e = &doc["agent"];
    assert_eq!(e["args"], json!(["--model", "x"]), "{e}");
    assert_eq!(
        (e["cols"].clone(), e["rows"].clone()),
        (json!(90), json!(20))
    );
    assert_eq!(e["env"]["LANG"], json!("C.UTF-8"), "{e}");

    reboot(&mut d);
    assert!(d.list_ids().is_empty(), "{:?}", d.list_ids());
    assert_eq!(lost_ids(&d), vec!["agent".to_string(), "cx".to_string()]);
    let lost = d.get("/api/sessions/lost").1;
    let a = &lost[0];
    assert_eq!(a["command"], json!("claude"), "{a}");
    assert_eq!(a["cwd"], json!(work_dir), "{a}");
    assert_eq!(a["resumeArgs"], json!(["--continue"]), "{a}");
    assert_eq!(
        a["resurrectArgs"],
        json!(["--continue", "--model", "x"]),
        "{a}"
    );
    let h = d.get("/api/health").1;
    assert_eq!(h["persistence"]["lostSessions"], json!(2), "{h}");
    let out = out_of(&d.cli(&["status"]));
    assert!(out.contains("Lost:      2 sessions (a reboot?)"), "{out}");
    let o = d.cli(&["resurrect", "--list"]);
    let out = out_of(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("2 lost sessions"), "{out}");
    assert!(
        out.contains("agent  claude --continue --model x  in "),
        "{out}"
    );
    assert!(out.contains("cx  codex resume --last -m o3"), "{out}");
    // Lost sessions stay saved across another restart that does nothing with them.
    d.stop();
    d.restart();
    assert_eq!(lost_ids(&d).len(), 2);

    // Resurrect all: same id, cwd and size; the resume arguments right after the command.
    let o = d.cli(&["resurrect"]);
    let out = out_of(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("Resurrected agent: claude --continue --model x in "),
        "{out}"
    );
    assert!(
        out.contains("Resurrected cx: codex resume --last -m o3"),
        "{out}"
    );
    let s = d.session("agent");
    assert_eq!(s["type"], json!("spawned"), "{s}");
    assert_eq!(s["cwd"], json!(work_dir), "{s}");
    let screen = d.wait_screen("agent", "claude resumed", |s| {
        s.contains("claude ARGV: --continue --model x")
    });
    assert!(
        screen.contains(&format!("CWD: {}", work_dir.display())),
        "{screen}"
    );
    assert!(screen.contains("LANG=C.UTF-8"), "{screen}");
    let j = d.screen_json("agent");
    assert_eq!(
        (j["cols"].clone(), j["row_count"].clone()),
        (json!(90), json!(20)),
        "{j}"
    );
    d.wait_screen("cx", "codex resumed", |s| {
        s.contains("codex ARGV: resume --last -m o3")
    });
    assert!(lost_ids(&d).is_empty());
    let out = out_of(&d.cli(&["resurrect"]));
    assert!(out.contains("No lost sessions."), "{out}");

    // Injects reach the resurrected session.
    d.inject("agent", "hello-again");
    d.wait_screen("agent", "inject echoed", |s| s.contains("hello-again"));

    // A second reboot: the resume arguments are not doubled; unknown ids fail clearly;
    // --forget drops one for good.
    reboot(&mut d);
    let r = d.post(
        "/api/sessions/resurrect",
        json!({"ids": ["agent", "ghost"]}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["success"], json!(false), "{}", r.1);
    assert_eq!(r.1["results"][0]["status"], json!("started"), "{}", r.1);
    assert_eq!(
        r.1["results"][0]["args"],
        json!(["--continue", "--model", "x"]),
        "{}",
        r.1
    );
    assert_eq!(
        r.1["results"][1]["code"],
        json!("SESSION_NOT_FOUND"),
        "{}",
        r.1
    );
    assert_eq!(
        r.1["results"][1]["error"],
        json!("No lost session 'ghost'"),
        "{}",
        r.1
    );
    let o = d.cli(&["resurrect", "--forget", "cx"]);
    assert_eq!(o.status.code(), Some(0), "{}", out_of(&o));
    assert!(out_of(&o).contains("Forgot cx"));
    let o = d.cli(&["resurrect", "--forget", "cx"]);
    assert_eq!(o.status.code(), Some(1), "{}", out_of(&o));
    assert!(
        out_of(&o).contains("No lost session 'cx'"),
        "{}",
        out_of(&o)
    );
    assert!(!read_doc(&sessions_file(&d)).contains_key("cx"));
    // A graceful stop: `agent` comes back live (its holder kept it) or lost (it died with
    // the daemon); the forgotten one never comes back.
    d.stop();
    d.restart();
    let lost = lost_ids(&d);
    let live = d.list_ids();
    assert!(
        lost == ["agent"] || live == ["agent"],
        "lost {lost:?}, live {live:?}"
    );
    assert!(!lost.contains(&"cx".to_string()) && !live.contains(&"cx".to_string()));
}

#[test]
fn sessions_named_like_the_new_routes_stay_reachable() {
    let d = Daemon::start();
    d.spawn_bash("lost");
    d.inject("lost", "echo in-lost");
    d.wait_line("lost", "in-lost");
    let r = d.patch("/api/sessions/lost", json!({"new_id": "found"}));
    assert_eq!(r.0, 200, "{}", r.1);
    d.spawn("resurrect", "cat", &[]);
    let r = d.delete("/api/sessions/resurrect");
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(d.list_ids(), vec!["found".to_string()]);
}
