//! Benchmarks 2 and 3: inject latency through the real HTTP API of a release `telepty daemon`
//! (own temporary HOME and port), over one keep-alive loopback connection, then the same over
//! the daemon's unix socket (what the owner's own tools use, issue 14).
//!
//! 2. `POST /api/sessions/<id>/inject?wait=delivered` with `{"prompt":"x","no_enter":true}`
//!    into `bash -c 'stty raw -echo; cat > /dev/null'`: the response comes once the text was
//!    written to the PTY. `TELEPTY_BENCH_INJECTS` (3000) timed requests after 300 warm-ups;
//!    `GET /api/health` on the same connection is the HTTP floor for reference.
//! 3. Inject -> output on screen for a readline shell (`bash --norc --noprofile`, PS1 `$ `):
//!    `TELEPTY_BENCH_ECHOES` (50) iterations of inject `echo mark-<n>` (with Enter) then
//!    `POST /wait` for `(?m)^mark-<n>$` with `since_generation` from before the inject.
//!    (a) back to back, exactly that loop; (b) after 300 ms of idle, with `?wait=delivered` so
//!    the time splits into "Enter written" and "output on screen".

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn inject_delivered(d: &Daemon, c: &mut Conn) {
    let id = "sink";
    d.spawn(
        c,
        id,
        "bash",
        &["-c", "stty raw -echo; cat > /dev/null"],
        80,
        24,
    );
    // Wait until `stty` is done and `cat` runs (exec'd by bash, or its child).
    let (_, v) = c.get(&format!("/api/sessions/{id}")).unwrap();
    let pid = v["pid"].as_u64().expect("session pid") as u32;
    wait_for(
        Duration::from_secs(10),
        Duration::from_millis(10),
        "cat drains the sink",
        || {
            self_and_children(pid)
                .iter()
                .any(|(_, c)| c == "cat")
                .then_some(())
        },
    );

    let n = env_usize("TELEPTY_BENCH_INJECTS", 3000);
    let path = format!("/api/sessions/{id}/inject?wait=delivered");
    let body = r#"{"prompt":"x","no_enter":true}"#;
    let tcp = measure(c, &path, body, n);
    let unix = measure(&mut d.conn_unix(), &path, body, n);
    eprintln!("[inject] inject?wait=delivered: {}", summary(&tcp.0, "us"));
    eprintln!(
        "[inject] GET /api/health (floor): {}",
        summary(&tcp.1, "us")
    );
    eprintln!(
        "[inject] over the unix socket: inject {}; health {}",
        summary(&unix.0, "us"),
        summary(&unix.1, "us")
    );
    let hop = writer_thread_roundtrip(n);
    eprintln!(
        "[inject] writer-thread round trip alone (what a direct PTY write saves; to /dev/null): {}",
        summary(&hop, "us")
    );
    let (s, f) = (sorted(tcp.0), sorted(tcp.1));
    let u = sorted(unix.0);
    let (p50, p99) = (pct(&s, 50.0), pct(&s, 99.0));
    let (f50, f99) = (pct(&f, 50.0), pct(&f, 99.0));
    let (u50, u99) = (pct(&u, 50.0), pct(&u, 99.0));
    row(
        &format!("2a HTTP inject -> PTY write, p50 (us, n={n})"),
        format!("{p50:.0}"),
        format!("GET /health {f50:.0}"),
        format!("{:.2}x", p50 / f50),
        Goal::Info,
        "-",
        p50,
        0.0,
    );
    row(
        &format!("2b HTTP inject -> PTY write, p99 (us, n={n})"),
        format!("{p99:.0}"),
        format!("GET /health {f99:.0}"),
        format!("{:.2}x", p99 / f99),
        Goal::AtMost,
        "<= 200 us",
        p99,
        200.0,
    );
    row(
        &format!("2c same over the unix socket, p50 (us, n={n})"),
        format!("{u50:.0}"),
        format!("TCP {p50:.0}"),
        format!("{:.2}x", u50 / p50),
        Goal::Info,
        "-",
        u50,
        0.0,
    );
    row(
        &format!("2d same over the unix socket, p99 (us, n={n})"),
        format!("{u99:.0}"),
        format!("TCP {p99:.0}"),
        format!("{:.2}x", u99 / p99),
        Goal::AtMost,
        "<= 200 us",
        u99,
        200.0,
    );
    let _ = c.json("DELETE", &format!("/api/sessions/{id}"), None);
}

/// `n` timed injects after 300 warm-ups, then `n` health requests (the HTTP floor), on `c`.
fn measure(c: &mut Conn, path: &str, body: &str, n: usize) -> (Vec<f64>, Vec<f64>) {
    let one = |c: &mut Conn| -> Duration {
        let t0 = Instant::now();
        let (st, b) = c.raw("POST", path, Some(body)).expect("inject");
        let dt = t0.elapsed();
        assert!(
            st == 200 && b.windows(16).any(|w| w == b"\"delivered\":true"),
            "inject failed: {st} {}",
            String::from_utf8_lossy(&b)
        );
        dt
    };
    for _ in 0..300 {
        one(c);
    }
    let lat = (0..n).map(|_| us(one(c))).collect();
    let mut floor = Vec::with_capacity(n);
    for i in 0..(n + 300) {
        let t0 = Instant::now();
        let (st, _) = c.raw("GET", "/api/health", None).expect("health");
        let dt = t0.elapsed();
        assert_eq!(st, 200);
        if i >= 300 {
            floor.push(us(dt));
        }
    }
    (lat, floor)
}

fn echo_roundtrip(d: &Daemon, c: &mut Conn) {
    let id = "sh";
    // `env` as the command keeps telepty's coloured PS1 out: the prompt is a plain "$ ".
    d.spawn(
        c,
        id,
        "env",
        &["PS1=$ ", "bash", "--norc", "--noprofile"],
        120,
        40,
    );
    let (st, v) = c
        .post(
            &format!("/api/sessions/{id}/wait"),
            &json!({"pattern": r"(?m)^\$$", "timeout_ms": 10000, "include_screen": false})
                .to_string(),
        )
        .unwrap();
    assert!(st == 200 && v["matched"] == true, "no prompt: {v}");
    std::thread::sleep(Duration::from_millis(300));

    let n = env_usize("TELEPTY_BENCH_ECHOES", 50);
    let mut round = |i: usize, wait_delivered: bool| -> (Duration, Option<Duration>) {
        let g = c.generation(id);
        let mark = format!("mark-{i}");
        let q = if wait_delivered {
            "?wait=delivered"
        } else {
            ""
        };
        let t0 = Instant::now();
        let (st, v) = c
            .post(
                &format!("/api/sessions/{id}/inject{q}"),
                &json!({"prompt": format!("echo {mark}")}).to_string(),
            )
            .unwrap();
        let t_inject = t0.elapsed();
        assert_eq!(st, 200, "inject: {v}");
        let (st, v) = c
            .post(
                &format!("/api/sessions/{id}/wait"),
                &json!({"pattern": format!("(?m)^{mark}$"), "since_generation": g, "timeout_ms": 10000, "include_screen": false})
                    .to_string(),
            )
            .unwrap();
        let total = t0.elapsed();
        assert!(st == 200 && v["matched"] == true, "mark {i} not seen: {v}");
        (total, wait_delivered.then_some(t_inject))
    };

    // (a) back to back, as an orchestrator hammering one shell would.
    let a: Vec<f64> = (0..n).map(|i| ms(round(i, false).0)).collect();
    // (b) after idle: the usual case of an agent being handed work; split with wait=delivered.
    let nb = (n * 3 / 5).max(10);
    let mut b = Vec::new();
    let mut b_deliv = Vec::new();
    for i in 0..nb {
        std::thread::sleep(Duration::from_millis(300));
        let (total, deliv) = round(n + i, true);
        b.push(ms(total));
        b_deliv.push(ms(deliv.unwrap()));
    }
    let b_after: Vec<f64> = b.iter().zip(&b_deliv).map(|(t, d)| t - d).collect();
    eprintln!(
        "[echo] back-to-back inject -> mark on screen: {}",
        summary(&a, "ms")
    );
    eprintln!(
        "[echo] after 300 ms idle, inject -> mark on screen: {}",
        summary(&b, "ms")
    );
    eprintln!(
        "[echo]   of which inject?wait=delivered (text, Enter gate, \\r written): {}",
        summary(&b_deliv, "ms")
    );
    eprintln!(
        "[echo]   of which Enter written -> mark matched by /wait: {}",
        summary(&b_after, "ms")
    );
    let (sa, sb) = (sorted(a), sorted(b));
    row(
        &format!("3a inject -> output on screen, back-to-back p50 (ms, n={n})"),
        format!("{:.1}", pct(&sa, 50.0)),
        "-".into(),
        "-".into(),
        Goal::AtMost,
        "<= 200 ms",
        pct(&sa, 50.0),
        200.0,
    );
    row(
        &format!("3b inject -> output on screen, back-to-back p99 (ms, n={n})"),
        format!("{:.1}", pct(&sa, 99.0)),
        "-".into(),
        "-".into(),
        Goal::AtMost,
        "<= 200 ms",
        pct(&sa, 99.0),
        200.0,
    );
    row(
        &format!("3c inject -> output on screen, after idle p50 (ms, n={nb})"),
        format!("{:.1}", pct(&sb, 50.0)),
        format!("Enter at {:.1}", median(&b_deliv)),
        "-".into(),
        Goal::AtMost,
        "<= 200 ms",
        pct(&sb, 50.0),
        200.0,
    );
    row(
        &format!("3d inject -> output on screen, after idle p99 (ms, n={nb})"),
        format!("{:.1}", pct(&sb, 99.0)),
        "-".into(),
        "-".into(),
        Goal::AtMost,
        "<= 200 ms",
        pct(&sb, 99.0),
        200.0,
    );
    let _ = c.json("DELETE", &format!("/api/sessions/{id}"), None);
}

/// The hop `Pty::write` avoids when the PTY has room (std mpsc to a writer thread, a `write(2)`,
/// a tokio oneshot back to the awaiting task), alone: what it costs on this machine.
fn writer_thread_roundtrip(n: usize) -> Vec<f64> {
    use std::io::Write;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Vec<u8>, tokio::sync::oneshot::Sender<()>)>();
    let th = std::thread::spawn(move || {
        let mut null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        while let Ok((b, ack)) = rx.recv() {
            let _ = null.write_all(&b);
            let _ = ack.send(());
        }
    });
    let out = rt.block_on(async move {
        let mut v = Vec::with_capacity(n);
        for i in 0..(n + 300) {
            let t0 = Instant::now();
            let (atx, arx) = tokio::sync::oneshot::channel();
            tx.send((b"x".to_vec(), atx)).unwrap();
            arx.await.unwrap();
            if i >= 300 {
                v.push(us(t0.elapsed()));
            }
        }
        v
    });
    th.join().unwrap();
    out
}

fn main() {
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "inject" || a == "echo");
    let d = Daemon::start();
    eprintln!("[inject] daemon pid {} on port {}", d.pid(), d.port);
    let mut c = d.conn();
    if only.as_deref() != Some("echo") {
        inject_delivered(&d, &mut c);
    }
    if only.as_deref() != Some("inject") {
        echo_roundtrip(&d, &mut c);
    }
}
