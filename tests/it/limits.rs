//! Timeouts and limits (issue 14): idle and slow connections are closed, a refused client is
//! not kept alive, the connection cap answers 503 instead of starving, and `/api/health` stays
//! fast with 2,000 idle connections open.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Seconds until the daemon closes `s` (reads until EOF or a reset), at most `limit`.
fn closed_after(mut s: TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn idle_slow_and_refused_connections_are_closed() {
    let d = Daemon::start();
    let connect = || TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    // An upgraded WebSocket is long-lived by design: no timer once upgraded.
    let mut bus = d.bus();

    // A connection that never sends a request.
    let idle = connect();
    // A slowloris: a request head that never ends, one header line a second.
    let slow = connect();
    let slow_writer = {
        let mut w = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            for i in 0..30 {
                std::thread::sleep(Duration::from_secs(1));
                if w.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    // A keep-alive connection after one answered request.
    let mut kept = connect();
    kept.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(kept.read(&mut first).unwrap() > 0);

    let limit = Duration::from_secs(20);
    let threads: Vec<_> = [
        ("idle", idle),
        ("slowloris", slow.try_clone().unwrap()),
        ("keep-alive", kept),
    ]
    .into_iter()
    .map(|(what, s)| std::thread::spawn(move || (what, closed_after(s, limit))))
    .collect();
    for t in threads {
        let (what, after) = t.join().unwrap();
        let after = after.unwrap_or_else(|| panic!("{what} connection still open after {limit:?}"));
        assert!(
            after <= Duration::from_secs(13),
            "{what} connection closed only after {after:?}"
        );
    }
    let _ = slow.shutdown(std::net::Shutdown::Both);
    slow_writer.join().unwrap();

    // A refused request gets its answer and no keep-alive.
    let mut s = connect();
    s.write_all(
        b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\r\n",
    )
    .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_to_end(&mut all)
        .expect("the connection is closed after the refusal");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // The daemon still answers, and the bus socket, idle all along, is still there.
    assert_eq!(d.get("/api/health").0, 200);
    d.publish(json!({"type": "still_here"}));
    bus.recv_until(T, "an event on the bus socket", |v| {
        v["type"] == "still_here"
    });
}

#[test]
fn the_connection_cap_answers_503() {
    let d = Daemon::start_with(&[("TELEPTY_MAX_CONNECTIONS", "8")], None);
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", d.port)).unwrap())
        .collect();
    // The 9th connection is answered at once, as JSON, and closed.
    let r = wait_for(T, "a 503 once the cap is reached", || {
        let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        let r = raw_http(s, "127.0.0.1", "GET", "/api/health", &[], None);
        (r.status == 503).then_some(r)
    });
    assert_error(
        &r.pair(),
        503,
        "SERVER_BUSY",
        Some("Too many open connections."),
    );
    // An upgraded WebSocket keeps its slot too.
    drop(held);
    let sockets: Vec<_> = (0..8)
        .map(|_| {
            wait_for(T, "a bus socket once the idle ones closed", || {
                d.ws_with("/api/bus", &[]).ok()
            })
        })
        .collect();
    let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let r = raw_http(s, "127.0.0.1", "GET", "/api/health", &[], None);
    assert_eq!(r.status, 503, "{}", r.text());
    // Freeing slots lets clients back in.
    drop(sockets);
    assert_eq!(
        wait_for(T, "health after the idle ones closed", || {
            let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
            let r = raw_http(s, "127.0.0.1", "GET", "/api/health", &[], None);
            (r.status == 200).then_some(r.json()["status"].clone())
        }),
        json!("ok")
    );
}

/// Issue 14's target: `/api/health` p99 ≤ 100 ms with 2,000 idle or slow connections open
/// (the issue saw it time out with 1,142 at the usual 1024-file limit).
#[test]
fn health_stays_fast_with_2000_idle_connections() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const IDLE: usize = 2000;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 4096 {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65536), hard);
    }
    if getrlimit(Resource::RLIMIT_NOFILE).unwrap().0 < (IDLE as u64) + 512 {
        eprintln!("skipped: cannot raise this process's file limit");
        return;
    }
    let d = Daemon::start();
    // Half of them idle, half slow: a request head begun and never finished.
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("open an idle connection");
            if i % 2 == 1 {
                s.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    // A new connection per request, as curl does: accept included.
    let timed = |path: &str| {
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let start = Instant::now();
                let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
                let r = raw_http(s, "127.0.0.1", "GET", path, &[], None);
                assert_eq!(r.status, 200, "{}", r.text());
                start.elapsed()
            })
            .collect();
        times.sort();
        let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
        eprintln!("{path} with {IDLE} idle/slow connections: p50 {p50:?}, p99 {p99:?}");
        p99
    };
    let p99 = timed("/api/health");
    assert!(p99 <= Duration::from_millis(100), "health p99 {p99:?}");
    // The owner's requests also look up the peer's uid among ~4,000 sockets.
    let p99 = timed("/api/sessions");
    assert!(p99 <= Duration::from_millis(100), "sessions p99 {p99:?}");
    drop(idle);
}
