//! Session recordings: a real PTY's output through `Recorder` is a valid asciicast v2 file
//! that `asciinema cat` replays; `telepty record list|path` find the files.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::Value;
use telepty::engine::recording::{self, Recorder};

const SECRET: &str = "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Run `script` in `sh` on a real PTY, feeding everything it prints to `rec`.
fn record_pty(rec: &Recorder, script: &str) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new("sh");
    cmd.args(["-c", script]);
    let mut child = pty.slave.spawn_command(cmd).expect("spawn sh");
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().expect("reader");
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => rec.output(&buf[..n]),
        }
    }
    child.wait().expect("wait");
}

fn parse_cast(path: &Path) -> (Value, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).unwrap();
    let events = lines
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (header, events)
}

#[test]
fn a_recorded_pty_session_is_asciicast_v2_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let rec_dir = dir.path().join("recordings");
    let path = recording::new_path(&rec_dir, "worker-1");
    let masks = recording::compile_masks(telepty::config::DEFAULT_MASKS).unwrap();
    let rec = Recorder::new(&path, "worker-1", 80, 24, masks).unwrap();
    assert_eq!(rec.path(), path);

    rec.input("echo hi\r", Some("orchestrator"));
    record_pty(
        &rec,
        &format!(
            "printf 'hello \\033[1mbold\\033[0m h\\303\\251llo\\n'; printf 'key={SECRET}\\n'; printf 'done\\n'"
        ),
    );
    rec.resize(100, 30);
    rec.input(&format!("use {SECRET}"), None);
    drop(rec);

    // 0600 file, 0700 directory.
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&rec_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let (header, events) = parse_cast(&path);
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 80);
    assert_eq!(header["height"], 24);
    assert_eq!(header["title"], "worker-1");
    assert!(header["timestamp"].as_u64().unwrap() > 1_600_000_000);

    let mut last = 0.0;
    for e in &events {
        let arr = e.as_array().expect("event is an array");
        assert_eq!(arr.len(), 3, "{e}");
        let t = arr[0].as_f64().unwrap();
        assert!(t >= last, "time went backwards: {e}");
        last = t;
        assert!(
            ["o", "i", "m", "r"].contains(&arr[1].as_str().unwrap()),
            "{e}"
        );
        assert!(arr[2].is_string());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e[1].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["m", "i"], "marker before the inject");
    assert_eq!(events[0][2], "inject from orchestrator");
    assert_eq!(events[1][2], "echo hi\r");
    let r = events.iter().find(|e| e[1] == "r").unwrap();
    assert_eq!(r[2], "100x30");
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert!(
        output.contains("hello \u{1b}[1mbold\u{1b}[0m héllo"),
        "{output:?}"
    );
    assert!(output.contains("key=***"), "{output:?}");
    let all = std::fs::read_to_string(&path).unwrap();
    assert!(!all.contains(SECRET), "secret leaked into the recording");
    assert_eq!(events.last().unwrap()[2], "use ***");

    // asciinema itself reproduces the output. `asciinema cat` opens /dev/tty, so it runs on a
    // PTY of its own, with stdout sent to a file (no tty translation of the replay).
    let have = Command::new("asciinema")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!(
            "SKIPPED asciinema cat: asciinema is not installed (apt-get install -y asciinema)"
        );
        return;
    }
    let replay_path = dir.path().join("replay.out");
    let script = format!(
        "asciinema cat '{}' > '{}'",
        path.display(),
        replay_path.display()
    );
    let log = Recorder::new(dir.path().join("cat.1.cast"), "cat", 80, 24, Vec::new()).unwrap();
    record_pty(&log, &script);
    drop(log);
    let replay = std::fs::read_to_string(&replay_path).unwrap_or_default();
    let cat_log: String = parse_cast(&dir.path().join("cat.1.cast"))
        .1
        .iter()
        .map(|e| e[2].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        replay, output,
        "asciinema cat differs from the o events; its terminal said: {cat_log:?}"
    );
    assert!(replay.contains("done"));
}

#[test]
fn record_list_and_path_find_the_newest_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".telepty/recordings");
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "a.1700000000000.cast",
        "a.1700000005000.cast",
        "b.c.1700000001000.cast",
        "notes.txt",
    ] {
        std::fs::write(dir.join(name), "{}\n").unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_telepty"))
            .env_clear()
            .env("HOME", home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["record", "path", "a"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        dir.join("a.1700000005000.cast").to_str().unwrap()
    );

    let o = run(&["record", "list"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let ids: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(ids, ["a", "b.c", "a"], "{out}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("\t2023-11-14T22:13:20"),
        "{out}"
    );

    let o = run(&["record", "list", "b.c", "--json"]);
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["id"], "b.c");
    assert_eq!(v["size"], 3);

    let o = run(&["record", "path", "nobody"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .starts_with("telepty: record path: no recording of nobody in ")
    );
}
