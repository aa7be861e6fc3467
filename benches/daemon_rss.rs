//! Benchmark 5: daemon memory, and the cost of durable sessions: each session's holder
//! process (PSS, so the binary's shared pages are split fairly) and how long a daemon restart
//! takes until every session is listed and injectable again.
//!
//! Daemon memory. A release `telepty daemon` (temporary HOME, own port): VmRSS
//! when idle, then after `TELEPTY_BENCH_SESSIONS` (100) idle interactive shells
//! (`bash --norc --noprofile`, 80x30, the spawn default) are running and their output has
//! settled. Only the daemon process is counted (not the shells). For comparison a tmux server
//! (on a private socket) with one window of the same shell, then 100: the server's VmRSS.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// VmRSS once it stopped moving (two reads 500 ms apart within 64 KiB), at most ~5 s.
fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kb(pid);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        let now = rss_kb(pid);
        if now.abs_diff(last) <= 64 {
            return now;
        }
        last = now;
    }
    last
}

fn detail(pid: u32) -> String {
    let f = |k: &str| {
        status_kb(pid, k)
            .map(|v| format!("{k} {:.1} MB", mb(v)))
            .unwrap_or_default()
    };
    format!(
        "{}, {}, {}, {}, threads {}",
        f("VmRSS"),
        f("RssAnon"),
        f("RssFile"),
        f("VmHWM"),
        threads(pid)
    )
}

fn main() {
    let n = env_usize("TELEPTY_BENCH_SESSIONS", 100).max(1);
    let mut d = Daemon::start();
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(500));
    let idle = settled_rss(pid);
    let idle_anon = status_kb(pid, "RssAnon").unwrap_or(0);
    eprintln!("[rss] telepty idle: {}", detail(pid));

    let mut c = d.conn();
    let t0 = Instant::now();
    for i in 0..n {
        d.spawn(
            &mut c,
            &format!("idle-{i}"),
            "bash",
            &["--norc", "--noprofile"],
            80,
            30,
        );
    }
    let spawn_s = t0.elapsed().as_secs_f64();
    for i in 0..n {
        let id = format!("idle-{i}");
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(20),
            "prompt",
            || (c.generation(&id) > 0).then_some(()),
        );
    }
    let (st, v) = c.get("/api/sessions").unwrap();
    assert_eq!(st, 200);
    let running = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["exitCode"].is_null() && s["pid"].is_u64())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(running, n, "not all sessions are running");
    std::thread::sleep(Duration::from_secs(1));
    let full = settled_rss(pid);
    eprintln!(
        "[rss] telepty with {n} sessions (spawned in {spawn_s:.1}s): {}",
        detail(pid)
    );
    let per = mb(full.saturating_sub(idle)) / n as f64;
    // The holders: one small process per session. PSS shares the binary's pages fairly.
    let holders = d.holder_pids();
    assert_eq!(holders.len(), n, "one holder per session");
    let holder_pss: u64 = holders.iter().filter_map(|p| smaps_kb(*p, "Pss")).sum();
    let holder_private: u64 = holders
        .iter()
        .map(|p| {
            smaps_kb(*p, "Private_Dirty").unwrap_or(0) + smaps_kb(*p, "Private_Clean").unwrap_or(0)
        })
        .sum();
    let holder_per = mb(holder_pss) / n as f64;
    eprintln!(
        "[rss] {n} holders: PSS {:.1} MB in all ({holder_per:.3} MB each), private {:.3} MB each",
        mb(holder_pss),
        mb(holder_private) / n as f64
    );

    // A crash and a restart: every session listed and injectable again.
    let first_pid_before = {
        let (_, v) = c.get("/api/sessions/idle-0").unwrap();
        v["pid"].clone()
    };
    drop(c);
    d.kill9();
    let t0 = Instant::now();
    d.restart();
    let mut c = d.conn();
    wait_for(
        Duration::from_secs(30),
        Duration::from_millis(5),
        "every session listed again",
        || {
            let (st, v) = c.get("/api/sessions").ok()?;
            let live = v.as_array()?.iter().filter(|s| s["pid"].is_u64()).count();
            (st == 200 && live == n).then_some(())
        },
    );
    let last = format!("idle-{}", n - 1);
    let (st, body) = c
        .post(
            &format!("/api/sessions/{last}/inject"),
            r#"{"prompt":"echo restarted","submit":true}"#,
        )
        .unwrap();
    let restart_s = t0.elapsed().as_secs_f64();
    assert_eq!(st, 200, "inject after restart: {body}");
    let (_, v) = c.get("/api/sessions/idle-0").unwrap();
    assert_eq!(v["pid"], first_pid_before, "same process after the restart");
    eprintln!(
        "[restart] {n} sessions listed and injectable {restart_s:.3}s after the restart began"
    );

    let mut tmux_anon = None;
    let tmux = if Tmux::available() {
        let t = Tmux::new("rss");
        t.run(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "30",
            "bash --norc --noprofile",
        ]);
        let tpid = t.server_pid();
        std::thread::sleep(Duration::from_millis(500));
        let one = settled_rss(tpid);
        tmux_anon = status_kb(tpid, "RssAnon");
        eprintln!("[rss] tmux server, 1 window: {}", detail(tpid));
        for _ in 1..n {
            t.run(&["new-window", "-d", "bash --norc --noprofile"]);
        }
        std::thread::sleep(Duration::from_secs(1));
        let all = settled_rss(tpid);
        eprintln!("[rss] tmux server, {n} windows: {}", detail(tpid));
        Some((
            one,
            all,
            mb(all.saturating_sub(one)) / (n - 1).max(1) as f64,
        ))
    } else {
        None
    };

    let (ref_idle, ref_per, r_idle, r_per) = match tmux {
        Some((one, _, p)) => (
            format!("tmux 1 window {:.1}", mb(one)),
            format!("tmux {p:.3}"),
            format!("{:.2}x", mb(idle) / mb(one)),
            format!("{:.2}x", per / p),
        ),
        None => (
            "tmux missing".into(),
            "tmux missing".into(),
            "-".into(),
            "-".into(),
        ),
    };
    row(
        "5a daemon RSS idle (MB)",
        format!("{:.1}", mb(idle)),
        ref_idle,
        r_idle,
        Goal::AtMost,
        "<= 8 MB",
        mb(idle),
        8.0,
    );
    // Most of the idle RSS is clean, shared, file-backed binary text (fault-around maps code
    // pages in 64 KiB runs); the private, anonymous part is what the daemon itself allocates.
    row(
        "5a' of which private anonymous memory (RssAnon, MB)",
        format!("{:.1}", mb(idle_anon)),
        tmux_anon
            .map(|a| format!("tmux {:.1}", mb(a)))
            .unwrap_or_else(|| "-".into()),
        "-".into(),
        Goal::Info,
        "-",
        0.0,
        0.0,
    );
    row(
        &format!("5b daemon RSS per idle bash session (MB, n={n})"),
        format!("{per:.3}"),
        ref_per,
        r_per,
        Goal::AtMost,
        "<= 0.5 MB",
        per,
        0.5,
    );
    row(
        &format!("5d daemon + holder per idle session (MB, PSS, n={n})"),
        format!("{:.3}", per + holder_per),
        "-".into(),
        "-".into(),
        Goal::AtMost,
        "<= 1 MB",
        per + holder_per,
        1.0,
    );
    row(
        &format!("5e daemon restart (kill -9) until {n} sessions listed + injectable (s)"),
        format!("{restart_s:.3}"),
        "tmux: sessions lost on a server crash".into(),
        "-".into(),
        Goal::AtMost,
        "<= 1 s",
        restart_s,
        1.0,
    );
    let total_ref = tmux
        .map(|(_, all, _)| format!("tmux {:.1}", mb(all)))
        .unwrap_or_else(|| "-".into());
    row(
        &format!("5c daemon RSS with {n} sessions (MB)"),
        format!("{:.1}", mb(full)),
        total_ref,
        "-".into(),
        Goal::Info,
        "-",
        0.0,
        0.0,
    );
    drop(c);
    drop(d);
    queued_injects();
}

/// Issue 11's flood: 300 injects of ~1 MiB into a session whose program never reads its
/// terminal (`sleep`, as the issue measured it), then the same spread over 10 such sessions
/// (the daemon-wide cap). Byte-bounded queues refuse what does not fit (429). The daemon's
/// memory above idle at the peak (VmHWM) and once the sessions are deleted. What the tty
/// echoes of the typed text fills each session's emulator up to its scrollback bound too.
fn queued_injects() {
    for sessions in [1usize, 10] {
        flood(sessions);
    }
}

fn flood(sessions: usize) {
    let d = Daemon::start();
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(500));
    let idle = settled_rss(pid);
    let mut c = d.conn();
    for i in 0..sessions {
        d.spawn(&mut c, &format!("stall-{i}"), "sleep", &["100000"], 80, 30);
    }
    let threads_before = threads(pid);
    // Just under the API's 1 MiB body limit once wrapped in JSON.
    let prompt = "x".repeat(1024 * 1024 - 64);
    let body = format!(r#"{{"prompt":"{prompt}"}}"#);
    let (mut accepted, mut refused) = (0, 0);
    for n in 0..300 {
        let id = format!("stall-{}", n % sessions);
        let (st, v) = c
            .post(&format!("/api/sessions/{id}/inject"), &body)
            .unwrap();
        match st {
            200 => accepted += 1,
            429 => refused += 1,
            other => panic!("inject {n}: {other} {v}"),
        }
    }
    let peak = status_kb(pid, "VmHWM").unwrap_or(0);
    let full = settled_rss(pid);
    eprintln!(
        "[queue] 300 x 1 MiB into {sessions} session(s): {accepted} accepted, {refused} refused (429); daemon {}",
        detail(pid)
    );
    for i in 0..sessions {
        let (st, v) = c
            .json("DELETE", &format!("/api/sessions/stall-{i}"), None)
            .unwrap();
        assert_eq!(st, 200, "delete: {v}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = settled_rss(pid);
    let threads_after = threads(pid);
    eprintln!(
        "[queue] after deleting them: {} (threads {threads_before} with the sessions, {threads_after} after)",
        detail(pid)
    );
    let above_peak = mb(peak.saturating_sub(idle));
    let (goal, target_text, target) = if sessions == 1 {
        (Goal::AtMost, "<= 64 MB", 64.0)
    } else {
        (Goal::Info, "-", 0.0)
    };
    row(
        &format!(
            "11a daemon memory above idle, 300 x 1 MiB injects into {sessions} non-reading session(s) (MB, VmHWM)"
        ),
        format!("{above_peak:.1} ({accepted} queued, {refused} refused 429)"),
        "-".into(),
        "-".into(),
        goal,
        target_text,
        above_peak,
        target,
    );
    let above_after = mb(after.saturating_sub(idle));
    row(
        &format!("11b daemon memory above idle after deleting those {sessions} session(s) (MB)"),
        format!(
            "{above_after:.1} (with them {:.1})",
            mb(full.saturating_sub(idle))
        ),
        "-".into(),
        "-".into(),
        Goal::AtMost,
        "<= 8 MB",
        above_after,
        8.0,
    );
}

fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
