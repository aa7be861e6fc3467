//! Benchmark 4: `telepty list` wall time (process start to exit) against a running release
//! daemon with 10 sessions; `tmux list-sessions` against a tmux server with 10 sessions for
//! comparison. `TELEPTY_BENCH_LIST_RUNS` (200) timed runs each after 10 warm-ups; medians.
//! `telepty --version` (no daemon contact) is timed too, to separate process start-up from
//! the request. If `hyperfine` is on PATH it is run as a cross-check (not required).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn time_runs(n: usize, mut make: impl FnMut() -> Command) -> Vec<f64> {
    let mut once = || {
        let mut c = make();
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = Instant::now();
        let st = c.status().expect("run");
        let dt = t0.elapsed();
        assert!(st.success(), "{c:?} failed: {st}");
        dt.as_secs_f64() * 1e3
    };
    for _ in 0..10 {
        once();
    }
    (0..n).map(|_| once()).collect()
}

fn main() {
    let n = env_usize("TELEPTY_BENCH_LIST_RUNS", 200);
    let d = Daemon::start();
    let mut c = d.conn();
    for i in 0..10 {
        d.spawn(
            &mut c,
            &format!("agent-{i}"),
            "bash",
            &["--norc", "--noprofile"],
            120,
            40,
        );
    }
    for i in 0..10 {
        wait_for(
            Duration::from_secs(10),
            Duration::from_millis(20),
            "prompt",
            || (c.generation(&format!("agent-{i}")) > 0).then_some(()),
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = d.cli().arg("list").output().expect("telepty list");
    assert!(
        out.status.success(),
        "telepty list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("agent-9"),
        "telepty list does not show the sessions:\n{text}"
    );
    eprintln!(
        "[list] `telepty list` output has {} lines",
        text.lines().count()
    );

    let tl = time_runs(n, || {
        let mut c = d.cli();
        c.arg("list");
        c
    });
    let tv = time_runs(n, || {
        let mut c = d.cli();
        c.arg("--version");
        c
    });
    eprintln!("[list] telepty list:      {}", summary(&tl, "ms"));
    eprintln!("[list] telepty --version: {}", summary(&tv, "ms"));

    let tmux_med = if Tmux::available() {
        let t = Tmux::new("list");
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "s0",
            "-x",
            "120",
            "-y",
            "40",
            "bash --norc --noprofile",
        ]);
        for i in 1..10 {
            t.run(&[
                "new-session",
                "-d",
                "-s",
                &format!("s{i}"),
                "-x",
                "120",
                "-y",
                "40",
                "bash --norc --noprofile",
            ]);
        }
        let tt = time_runs(n, || {
            let mut c = t.cmd();
            c.arg("list-sessions");
            c
        });
        eprintln!("[list] tmux list-sessions: {}", summary(&tt, "ms"));
        Some(median(&tt))
    } else {
        None
    };

    if let Ok(st) = Command::new("hyperfine")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        if st.success() {
            eprintln!("[list] hyperfine cross-check:");
            let mut h = Command::new("hyperfine");
            h.args([
                "-N",
                "--warmup",
                "10",
                "--runs",
                &n.to_string(),
                "--style",
                "basic",
            ]);
            h.arg(format!("{} list", bin()));
            apply_env(&mut h, d.home.path(), d.port);
            // hyperfine prints to stdout; keep our stdout for table rows only.
            let out = h.output().expect("hyperfine");
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }

    let m = median(&tl);
    let (reference, ratio) = match tmux_med {
        Some(t) => (format!("tmux ls {t:.2}"), format!("{:.2}x", m / t)),
        None => ("tmux missing".into(), "-".into()),
    };
    row(
        &format!("4 `telepty list`, 10 sessions, median (ms, n={n})"),
        format!("{m:.2}"),
        reference,
        ratio,
        Goal::AtMost,
        "<= 5 ms",
        m,
        5.0,
    );
    info_row(
        "4' `telepty --version` (process start-up only), median (ms)",
        format!("{:.2}", median(&tv)),
    );
}
