//! `telepty tui` CPU under load, side by side with tmux (harness = false).
//!
//! * flood: 16 panes each printing ~1 MB/s (python3, 10 KB every 10 ms). The dashboard runs in
//!   an outer private tmux (240×67, status off) as `telepty tui --port <p>` with a temporary
//!   HOME; the 16 programs are spawned over its HTTP API. After a warm-up, utime+stime of the
//!   telepty process (all threads: UI loop, tokio workers, the engine's PTY readers) is
//!   sampled from /proc over the window → % of one core. Reference: an inner tmux server with
//!   one window tiled into 16 panes running the same program, shown by a `tmux attach` client
//!   in a second window of the outer tmux; CPU = inner server + that client.
//!   The bytes the 16 programs actually wrote (/proc/<pid>/io wchar) are reported too: a
//!   viewer that falls behind slows its writers down through PTY back-pressure, so CPU is only
//!   comparable at similar throughput.
//! * idle: 16 idle `bash --norc --noprofile` sessions in the dashboard → target ≤ 1 %.
//! * frame time: the drawing code (`tui::ui`, `tui::app`) is private, so it cannot be timed
//!   here; the UI thread's CPU (the main thread runs the event loop and every draw) is reported,
//!   with the mean CPU per frame under the loop's 60 fps cap (a lower bound on frame cost).
//!
//! Phases run one after the other by default (2-core machines: concurrent floods would starve
//! each other); `TELEPTY_BENCH_TUI_CONCURRENT=1` samples both viewers over the same window.
//! * moderate: the same 16 panes each printing 20 agent-like lines a second (coloured markers,
//!   ~90-character lines; issue 12: "9 % vs tmux 2 %"), telepty vs tmux the same way.
//!
//! Knobs: TELEPTY_BENCH_TUI_WARMUP (3 s), TELEPTY_BENCH_TUI_SECS (10 s), TELEPTY_BENCH_TUI_PANES (16),
//! TELEPTY_BENCH_TUI_PHASES (`idle,flood,moderate`: which phases run).
//! Tmux sockets: `$TELEPTY_BENCH_TMUX_PREFIX-outer` / `-inner` (scripts/bench-tui.sh sets the
//! prefix `tuibench`).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    Conn, Goal, Tmux, bin, descendants, env_usize, free_port, info_row, row, session_programs,
    tempdir, wait_for,
};

const W: u16 = 240;
const H: u16 = 67;
/// Moderate, agent-like output: 20 lines a second (paced by the clock, not by sleeps alone),
/// coloured markers, ~90-character lines of changing text.
const MODERATE: &str = "import sys,time\nc=['\\x1b[32m','\\x1b[33m','\\x1b[36m','\\x1b[2m']\nt=time.monotonic();i=0\nwhile 1:\n i+=1\n sys.stdout.write(c[i%4]+'\\u23fa\\x1b[0m step %d: reading src/engine/module_%d.rs, updating the plan (%d tokens)\\n'%(i,i%97,i*7%1000)); sys.stdout.flush()\n t+=0.05; time.sleep(max(0,t-time.monotonic()))";
const FLOOD: &str = "import sys,time\nl=('x'*99+'\\n')*100\nwhile 1:\n sys.stdout.write(l); sys.stdout.flush(); time.sleep(0.01)";

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// utime+stime (ticks) of a process or a task path (`/proc/<pid>` or `/proc/<pid>/task/<tid>`).
fn ticks_at(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("{path}/stat")).ok()?;
    let r = stat.rfind(')')?;
    let f: Vec<&str> = stat[r + 2..].split_whitespace().collect();
    // after "pid (comm) ": state=0 ... utime=11 stime=12
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn ticks(pid: u32) -> u64 {
    ticks_at(&format!("/proc/{pid}")).unwrap_or(0)
}

/// Per-thread (name → ticks) of a process.
fn thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let tid = e.file_name().to_string_lossy().to_string();
        let p = format!("/proc/{pid}/task/{tid}");
        let mut name = std::fs::read_to_string(format!("{p}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if tid == pid.to_string() {
            name = format!("main ({name})");
        }
        *out.entry(name).or_insert(0) += ticks_at(&p).unwrap_or(0);
    }
    out
}

fn main_thread_switches(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn wchar(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("wchar:").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// A sampling window over a set of pids: CPU of `measured`, bytes written by `writers`.
struct Sample {
    measured: Vec<u32>,
    writers: Vec<u32>,
    t0: Instant,
    cpu0: Vec<u64>,
    w0: Vec<u64>,
    threads0: Option<(u32, BTreeMap<String, u64>, u64)>,
}

struct Result {
    cpu_pct: f64,
    mb_s: f64,
    secs: f64,
    /// thread name → % of one core, main-thread voluntary switches/s (dashboard only)
    threads: Option<(BTreeMap<String, f64>, f64)>,
}

impl Sample {
    fn start(measured: Vec<u32>, writers: Vec<u32>, threads_of: Option<u32>) -> Sample {
        let threads0 = threads_of.map(|p| (p, thread_ticks(p), main_thread_switches(p)));
        Sample {
            cpu0: measured.iter().map(|p| ticks(*p)).collect(),
            w0: writers.iter().map(|p| wchar(*p)).collect(),
            measured,
            writers,
            t0: Instant::now(),
            threads0,
        }
    }

    fn finish(self) -> Result {
        let cpu1: Vec<u64> = self.measured.iter().map(|p| ticks(*p)).collect();
        let w1: Vec<u64> = self.writers.iter().map(|p| wchar(*p)).collect();
        let secs = self.t0.elapsed().as_secs_f64();
        let dt: u64 = cpu1
            .iter()
            .zip(&self.cpu0)
            .map(|(a, b)| a.saturating_sub(*b))
            .sum();
        let dw: u64 = w1
            .iter()
            .zip(&self.w0)
            .map(|(a, b)| a.saturating_sub(*b))
            .sum();
        let tck = clk_tck();
        let threads = self.threads0.map(|(pid, t0, s0)| {
            let t1 = thread_ticks(pid);
            let per: BTreeMap<String, f64> = t1
                .iter()
                .map(|(k, v)| {
                    let d = v.saturating_sub(*t0.get(k).unwrap_or(&0));
                    (k.clone(), 100.0 * d as f64 / tck / secs)
                })
                .filter(|(_, v)| *v > 0.0)
                .collect();
            let sw = main_thread_switches(pid).saturating_sub(s0) as f64 / secs;
            (per, sw)
        });
        Result {
            cpu_pct: 100.0 * dt as f64 / tck / secs,
            mb_s: dw as f64 / 1e6 / secs,
            secs,
            threads,
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `exec env -u ... HOME=<home> TELEPTY_PORT=<p> <bin> tui --port <p>` for a tmux window.
fn dashboard_cmd(home: &std::path::Path, port: u16) -> String {
    let mut unset: Vec<String> = support::SCRUBBED
        .iter()
        .chain(&["TMUX_PANE", "NO_COLOR"])
        .map(|s| s.to_string())
        .collect();
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str() {
            if k.starts_with("TELEPTY_") || k.starts_with("CLAUDECODE") {
                unset.push(k.to_string());
            }
        }
    }
    let mut s = String::from("exec env");
    for u in unset {
        s.push_str(" -u ");
        s.push_str(&u);
    }
    s.push_str(&format!(
        " HOME={} TELEPTY_PORT={port} {} tui --port {port}",
        shell_quote(&home.to_string_lossy()),
        shell_quote(bin())
    ));
    s
}

struct Dashboard {
    pid: u32,
    port: u16,
    token: String,
    _home: tempfile::TempDir,
}

impl Dashboard {
    fn start(outer: &Tmux) -> Dashboard {
        let home = tempdir("telepty-bench-tui-");
        let port = free_port();
        outer.run(&[
            "new-window",
            "-d",
            "-t",
            "bench:",
            "-n",
            "telepty",
            &dashboard_cmd(home.path(), port),
        ]);
        outer.run(&[
            "resize-window",
            "-t",
            "bench:telepty",
            "-x",
            &W.to_string(),
            "-y",
            &H.to_string(),
        ]);
        let pid: u32 = outer
            .run(&[
                "display-message",
                "-p",
                "-t",
                "bench:telepty",
                "#{pane_pid}",
            ])
            .trim()
            .parse()
            .expect("pane pid");
        wait_for(
            Duration::from_secs(20),
            Duration::from_millis(50),
            "dashboard /api/health",
            || {
                let mut c = Conn::open(port, "").ok()?;
                let (st, v) = c.get("/api/health").ok()?;
                (st == 200 && v.get("status").and_then(Value::as_str) == Some("ok")).then_some(())
            },
        );
        let token = wait_for(
            Duration::from_secs(5),
            Duration::from_millis(50),
            "authToken",
            || {
                let t = std::fs::read_to_string(home.path().join(".telepty/config.json")).ok()?;
                let v: Value = serde_json::from_str(&t).ok()?;
                v["authToken"].as_str().map(str::to_string)
            },
        );
        let comm = support::comm(pid).unwrap_or_default();
        assert!(
            comm.starts_with("telepty"),
            "pane pid {pid} is {comm:?}, not telepty"
        );
        Dashboard {
            pid,
            port,
            token,
            _home: home,
        }
    }

    fn conn(&self) -> Conn {
        Conn::open(self.port, &self.token).expect("connect to dashboard")
    }

    /// The programs of the dashboard's sessions (children of their holders).
    fn programs(&self, prefix: &str) -> Vec<u32> {
        session_programs(self._home.path(), prefix)
    }

    fn spawn(&self, id: &str, command: &str, args: &[&str]) {
        let body =
            json!({"session_id": id, "command": command, "args": args, "cols": 58, "rows": 14});
        let (st, v) = self
            .conn()
            .post("/api/sessions/spawn", &body.to_string())
            .expect("spawn request");
        assert!((200..300).contains(&st), "spawn {id}: {st} {v}");
    }

    fn delete(&self, id: &str) {
        let _ = self
            .conn()
            .raw("DELETE", &format!("/api/sessions/{id}"), None);
    }
}

/// Waits until `find` lists at least `n` programs.
fn wait_programs(find: impl Fn() -> Vec<u32>, n: usize) -> Vec<u32> {
    wait_for(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "session programs",
        || {
            let d = find();
            (d.len() >= n).then_some(d)
        },
    )
}

fn wait_writers(root: u32, prefix: &str, n: usize) -> Vec<u32> {
    wait_for(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "pane programs",
        || {
            let d = descendants(root, prefix);
            (d.len() >= n).then_some(d)
        },
    )
}

fn pct_of_core(v: f64) -> String {
    format!("{v:.1}%")
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One load phase: `program` in `n` dashboard sessions and in `n` panes of an inner tmux shown
/// by a client in the outer tmux; CPU of the dashboard vs the tmux server + client, and the bytes
/// the programs wrote. Sequential (telepty, then tmux) unless `concurrent`. Leaves nothing
/// running.
#[allow(clippy::too_many_arguments)]
fn load_phase(
    outer: &Tmux,
    inner: &Tmux,
    dash: &Dashboard,
    tag: &str,
    program: &str,
    n: usize,
    concurrent: bool,
    warm: Duration,
    secs: Duration,
) -> (Result, Result) {
    let window = format!("tmux-{tag}");
    let start_tmux = || -> (u32, u32, Vec<u32>) {
        let cmd = format!("exec python3 -c {}", shell_quote(program));
        inner.run(&[
            "new-session",
            "-d",
            "-s",
            tag,
            "-x",
            &W.to_string(),
            "-y",
            &H.to_string(),
            &cmd,
        ]);
        inner.run(&["set-option", "-g", "status", "off"]);
        for _ in 1..n {
            inner.run(&["split-window", "-t", tag, &cmd]);
            inner.run(&["select-layout", "-t", tag, "tiled"]);
        }
        let attach = format!(
            "exec env -u TMUX -u TMUX_PANE tmux -L {} -f /dev/null attach -t {tag}",
            inner.socket
        );
        outer.run(&["new-window", "-d", "-t", "bench:", "-n", &window, &attach]);
        outer.run(&[
            "resize-window",
            "-t",
            &format!("bench:{window}"),
            "-x",
            &W.to_string(),
            "-y",
            &H.to_string(),
        ]);
        let server = inner.server_pid();
        let client: u32 = wait_for(
            Duration::from_secs(10),
            Duration::from_millis(50),
            "inner client",
            || {
                inner
                    .run(&["list-clients", "-F", "#{client_pid}"])
                    .lines()
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            },
        );
        let writers = wait_writers(server, "python", n);
        (server, client, writers)
    };
    let stop_tmux = || {
        let _ = outer
            .cmd()
            .args(["kill-window", "-t", &format!("bench:{window}")])
            .status();
        inner.kill_server();
    };

    for i in 0..n {
        dash.spawn(&format!("{tag}{i}"), "python3", &["-c", program]);
    }
    let tp_writers = wait_programs(|| dash.programs("python"), n);
    let mut tm = None;
    if concurrent {
        tm = Some(start_tmux());
    }
    std::thread::sleep(warm);
    eprintln!("{tag}: sampling {secs:?} (load {})", load());
    let s_tp = Sample::start(vec![dash.pid], tp_writers, Some(dash.pid));
    let s_tm = tm
        .as_ref()
        .map(|(srv, cl, w)| Sample::start(vec![*srv, *cl], w.clone(), None));
    std::thread::sleep(secs);
    let tp = s_tp.finish();
    let mut tmux_res = s_tm.map(Sample::finish);
    for i in 0..n {
        dash.delete(&format!("{tag}{i}"));
    }
    wait_for(
        Duration::from_secs(10),
        Duration::from_millis(100),
        "load sessions gone",
        || dash.programs("python").is_empty().then_some(()),
    );
    if !concurrent {
        let (srv, cl, w) = start_tmux();
        eprintln!("tmux {tag}: server {srv} client {cl}");
        std::thread::sleep(warm);
        eprintln!("tmux {tag}: sampling {secs:?} (load {})", load());
        let s = Sample::start(vec![srv, cl], w, None);
        std::thread::sleep(secs);
        tmux_res = Some(s.finish());
    }
    stop_tmux();
    (tp, tmux_res.expect("tmux sample"))
}

fn main() {
    if !Tmux::available() {
        row(
            "tui flood CPU",
            "-".into(),
            "tmux missing".into(),
            "-".into(),
            Goal::Info,
            "-",
            0.0,
            0.0,
        );
        return;
    }
    let n = env_usize("TELEPTY_BENCH_TUI_PANES", 16);
    let warm = Duration::from_secs(env_usize("TELEPTY_BENCH_TUI_WARMUP", 3) as u64);
    let secs = Duration::from_secs(env_usize("TELEPTY_BENCH_TUI_SECS", 10) as u64);
    let concurrent = std::env::var("TELEPTY_BENCH_TUI_CONCURRENT").is_ok_and(|v| v == "1");
    let phases =
        std::env::var("TELEPTY_BENCH_TUI_PHASES").unwrap_or_else(|_| "idle,flood,moderate".into());
    let want = |p: &str| phases.split(',').any(|x| x.trim() == p);
    eprintln!(
        "tui_cpu: {n} panes, {W}x{H}, warm-up {warm:?}, window {secs:?}, {}; load average {}",
        if concurrent {
            "concurrent"
        } else {
            "sequential"
        },
        load()
    );

    // Outer tmux: a placeholder window 0 (kept so the session survives), status off.
    let outer = Tmux::new("outer");
    outer.run(&[
        "new-session",
        "-d",
        "-s",
        "bench",
        "-x",
        &W.to_string(),
        "-y",
        &H.to_string(),
        "-n",
        "hold",
        "sleep 100000",
    ]);
    outer.run(&["set-option", "-g", "status", "off"]);
    outer.run(&["set-option", "-g", "default-size", &format!("{W}x{H}")]);
    let inner = Tmux::new("inner");

    let dash = Dashboard::start(&outer);
    eprintln!("dashboard pid {} on port {}", dash.pid, dash.port);
    let size = outer.run(&[
        "display-message",
        "-p",
        "-t",
        "bench:telepty",
        "#{pane_width}x#{pane_height}",
    ]);
    eprintln!("dashboard pane {}", size.trim());

    // ---- idle ---------------------------------------------------------------------------
    let idle = want("idle").then(|| {
        for i in 0..n {
            dash.spawn(&format!("idle{i}"), "bash", &["--norc", "--noprofile"]);
        }
        wait_programs(|| dash.programs("bash"), n);
        std::thread::sleep(warm);
        eprintln!("idle: sampling {secs:?} (load {})", load());
        let s = Sample::start(vec![dash.pid], vec![], Some(dash.pid));
        std::thread::sleep(secs);
        let idle = s.finish();
        for i in 0..n {
            dash.delete(&format!("idle{i}"));
        }
        wait_for(
            Duration::from_secs(10),
            Duration::from_millis(100),
            "idle sessions gone",
            || dash.programs("bash").is_empty().then_some(()),
        );
        idle
    });

    // ---- loads: flood (~1 MB/s a pane), moderate (20 agent-like lines/s a pane) ------------
    let flood = want("flood").then(|| {
        load_phase(
            &outer, &inner, &dash, "flood", FLOOD, n, concurrent, warm, secs,
        )
    });
    let moderate = want("moderate").then(|| {
        load_phase(
            &outer, &inner, &dash, "moderate", MODERATE, n, concurrent, warm, secs,
        )
    });

    // ---- details (stderr) ---------------------------------------------------------------
    let show_threads = |label: &str, r: &Result| {
        if let Some((t, sw)) = &r.threads {
            let mut v: Vec<_> = t.iter().collect();
            v.sort_by(|a, b| b.1.partial_cmp(a.1).unwrap());
            let list: Vec<String> = v.iter().map(|(k, p)| format!("{k} {p:.1}%")).collect();
            eprintln!(
                "{label}: threads: {}; main-thread wake-ups {sw:.0}/s",
                list.join(", ")
            );
        }
    };
    if let Some(idle) = &idle {
        eprintln!("idle: telepty {:.2}% over {:.1}s", idle.cpu_pct, idle.secs);
        show_threads("idle", idle);
    }
    for (label, r) in [("flood", &flood), ("moderate", &moderate)] {
        if let Some((tp, tm)) = r {
            eprintln!(
                "{label}: telepty {:.1}% ({:.3} MB/s written by its programs), tmux {:.1}% ({:.3} MB/s)",
                tp.cpu_pct, tp.mb_s, tm.cpu_pct, tm.mb_s
            );
            show_threads(label, tp);
        }
    }

    // ---- rows ---------------------------------------------------------------------------
    let per_mb = |r: &Result| r.cpu_pct / r.mb_s.max(1e-9);
    if let Some((flood, tmux_res)) = &flood {
        let ratio = if tmux_res.cpu_pct > 0.0 {
            format!("{:.2}x", flood.cpu_pct / tmux_res.cpu_pct)
        } else {
            "-".into()
        };
        row(
            &format!("tui CPU, {n} panes x ~1 MB/s ({W}x{H}), % of 1 core"),
            pct_of_core(flood.cpu_pct),
            format!("{} (tmux server+client)", pct_of_core(tmux_res.cpu_pct)),
            ratio,
            Goal::AtMost,
            "<= 50%",
            flood.cpu_pct,
            50.0,
        );
        row(
            "tui CPU vs tmux (same load)",
            pct_of_core(flood.cpu_pct),
            pct_of_core(tmux_res.cpu_pct),
            format!("{:.2}x", flood.cpu_pct / tmux_res.cpu_pct.max(1e-9)),
            Goal::AtMost,
            "<= tmux",
            flood.cpu_pct,
            tmux_res.cpu_pct,
        );
        row(
            &format!("  throughput delivered by the {n} programs"),
            format!("{:.2} MB/s", flood.mb_s),
            format!("{:.2} MB/s", tmux_res.mb_s),
            format!("{:.2}x", flood.mb_s / tmux_res.mb_s.max(1e-9)),
            Goal::Info,
            "~equal",
            0.0,
            0.0,
        );
        row(
            "  CPU per MB/s delivered (% of 1 core)",
            format!("{:.2}%", per_mb(flood)),
            format!("{:.2}%", per_mb(tmux_res)),
            format!("{:.2}x", per_mb(flood) / per_mb(tmux_res).max(1e-9)),
            Goal::AtMost,
            "<= tmux",
            per_mb(flood),
            per_mb(tmux_res),
        );
    }
    if let Some((m, t)) = &moderate {
        row(
            &format!("tui CPU, {n} panes x 20 agent-like lines/s ({W}x{H}), % of 1 core"),
            pct_of_core(m.cpu_pct),
            format!("{} (tmux server+client)", pct_of_core(t.cpu_pct)),
            format!("{:.2}x", m.cpu_pct / t.cpu_pct.max(1e-9)),
            Goal::AtMost,
            "<= tmux",
            m.cpu_pct,
            t.cpu_pct,
        );
        row(
            &format!("  bytes written by the {n} programs (20 lines/s each)"),
            format!("{:.1} KB/s", m.mb_s * 1000.0),
            format!("{:.1} KB/s", t.mb_s * 1000.0),
            format!("{:.2}x", m.mb_s / t.mb_s.max(1e-9)),
            Goal::Info,
            "~equal",
            0.0,
            0.0,
        );
        if let Some((th, sw)) = &m.threads {
            let main: f64 = th
                .iter()
                .filter(|(k, _)| k.starts_with("main"))
                .map(|(_, v)| *v)
                .sum();
            info_row(
                "  UI thread CPU / wake-ups per s, moderate load",
                format!("{} / {sw:.0}", pct_of_core(main)),
            );
        }
    }
    if let Some(idle) = &idle {
        row(
            &format!("tui CPU, {n} idle bash panes"),
            format!("{:.2}%", idle.cpu_pct),
            "-".into(),
            "-".into(),
            Goal::AtMost,
            "<= 1%",
            idle.cpu_pct,
            1.0,
        );
    }
    // Close the dashboard while its tmux is alive to reap it (no orphaned zombie).
    let _ = outer
        .cmd()
        .args(["kill-window", "-t", "bench:telepty"])
        .status();
    let gone = Instant::now() + Duration::from_secs(5);
    while support::comm(dash.pid).is_some() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }

    if let Some((t, sw)) = flood.as_ref().and_then(|(f, _)| f.threads.as_ref()) {
        let main: f64 = t
            .iter()
            .filter(|(k, _)| k.starts_with("main"))
            .map(|(_, v)| *v)
            .sum();
        info_row(
            "  UI thread wake-ups/s under flood (frames are capped at 60/s)",
            format!("{sw:.0}"),
        );
        info_row(
            &format!("  UI thread CPU under flood ({W}x{H})"),
            pct_of_core(main),
        );
    }
    // Frame time, measured: the dashboard's own draw of 16 live panes at 240x67 (fed with
    // coloured, scrolling output between frames), on ratatui's TestBackend.
    let chunk: Vec<u8> = (0..40)
        .map(|i| {
            format!(
                "\x1b[3{}mline {i} \x1b[1m{}\x1b[0m 日本\r\n",
                i % 8,
                "x".repeat(60)
            )
        })
        .collect::<String>()
        .into_bytes();
    let mut times = telepty::tui::bench_frame_times(16, &chunk, W, H, 300);
    times.sort();
    if !times.is_empty() {
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
        info_row(
            &format!("  frame time, 16 panes at {W}x{H} (p50 / p99)"),
            format!("{:.2} / {:.2} ms", p(0.5), p(0.99)),
        );
    }
}
