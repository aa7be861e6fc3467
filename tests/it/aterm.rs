//! aterm sessions (API.md §2, §6.5): delivery over a Unix socket or the legacy HTTP endpoint,
//! with fake endpoints played by the test.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A fake aterm app: every connection's bytes (up to EOF) are reported, then `reply` is written.
struct UdsEndpoint {
    path: PathBuf,
    rx: Receiver<String>,
    _dir: tempfile::TempDir,
}

fn uds_endpoint(reply: &'static str) -> UdsEndpoint {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aterm.sock");
    let listener = UnixListener::bind(&path).expect("bind fake aterm socket");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut buf = Vec::new();
                let _ = conn.read_to_end(&mut buf);
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
                let _ = conn.write_all(reply.as_bytes());
            });
        }
    });
    UdsEndpoint {
        path,
        rx,
        _dir: dir,
    }
}

impl UdsEndpoint {
    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Waits for a connection whose content is exactly `want`; returns everything received.
    fn expect(&self, want: &str) -> Vec<String> {
        let deadline = Instant::now() + T;
        let mut got = Vec::new();
        loop {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(s) => {
                    let hit = s == want;
                    got.push(s);
                    if hit {
                        return got;
                    }
                }
                Err(_) => panic!("the fake aterm endpoint never received {want:?}; got {got:?}"),
            }
        }
    }
}

/// A fake HTTP delivery endpoint answering every POST with `status`; reports `(request line, body)`.
fn http_endpoint(status: u16) -> (String, Receiver<(String, String)>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/deliver",
        l.local_addr().unwrap().port()
    );
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.trim().eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let _ = tx.send((
                    first.trim_end().to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
            });
        }
    });
    (url, rx)
}

#[test]
fn aterm_over_unix_socket() {
    let d = Daemon::start();
    let ep = uds_endpoint("");
    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "at1", "delivery_type": "aterm", "delivery_endpoint": ep.path()}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(
        r.1["type"],
        json!("wrapped"),
        "register answers the literal `wrapped`: {}",
        r.1
    );
    let s = d.session("at1");
    assert_eq!(s["type"], json!("aterm"), "{s}");
    assert_eq!(s["backend"], json!("aterm"), "{s}");
    assert_eq!(s["terminal"], json!("aterm"), "{s}");
    assert_eq!(s["ready"], json!(true), "{s}");
    assert_eq!(s["deliveryEndpoint"], json!(ep.path()), "{s}");
    assert_eq!(s["healthStatus"], json!("CONNECTED"), "{s}");
    assert_eq!(
        s["healthReason"],
        json!("DELIVERY_ENDPOINT_AVAILABLE"),
        "{s}"
    );

    let r = d.post(
        "/api/sessions/at1/inject?wait=delivered",
        json!({"prompt": "hello \"aterm\""}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["delivered"], json!(true), "{}", r.1);
    assert_eq!(r.1["strategy"], json!("mailbox"), "{}", r.1);
    let got = ep
        .expect("{\"action\":\"Inject\",\"workspace\":\"at1\",\"text\":\"hello \\\"aterm\\\"\"}\n");
    let mut all = got.clone();
    if !all.iter().any(|s| s.contains("MailboxWake")) {
        all.extend(ep.expect("{\"action\":\"MailboxWake\",\"workspace\":\"at1\"}\n"));
    }
    // aterm apps submit by themselves: no Enter is ever delivered.
    let deadline = Instant::now() + Duration::from_millis(1200);
    while let Ok(s) = ep
        .rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        all.push(s);
    }
    for s in &all {
        let v: Value = serde_json::from_str(s.trim_end())
            .unwrap_or_else(|e| panic!("not one JSON line ({e}): {s:?}"));
        assert!(
            v["action"] == "MailboxWake" || v["text"] == "hello \"aterm\"",
            "unexpected delivery: {s:?}"
        );
    }

    // The screen stays empty; terminal-only operations are refused.
    let (st, scr) = d.get("/api/sessions/at1/screen");
    assert_eq!(
        (st, scr),
        (
            200,
            json!({"session_id": "at1", "screen": "", "lines": 0, "total_lines": 0, "raw": false, "generation": 0})
        )
    );
    for (path, body) in [
        ("/api/sessions/at1/submit", json!({})),
        ("/api/sessions/at1/keys", json!({"keys": ["enter"]})),
        ("/api/sessions/at1/resize", json!({"cols": 80, "rows": 24})),
        ("/api/sessions/at1/wait", json!({"pattern": "x"})),
    ] {
        assert_error(&d.post(path, body), 409, "UNSUPPORTED_SESSION_TYPE", None);
    }
    let r = d.post("/api/sessions/submit-all", json!({}));
    assert_eq!(r.0, 200, "{}", r.1);
    let failed = r.1["results"]["failed"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.1))
        .clone();
    assert!(
        failed.iter().any(|f| f["id"] == "at1"
            && f["code"] == "UNSUPPORTED_SESSION_TYPE"
            && f["strategy"] == "pty_cr"),
        "{}",
        r.1
    );
}

#[test]
fn aterm_rejection_is_reported_after_retries() {
    let d = Daemon::start();
    let ep = uds_endpoint(r#"{"status":"Error","error":"nope"}"#);
    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "at2", "delivery_type": "aterm", "delivery": {"transport": "unix_socket", "address": ep.path()}}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(d.session("at2")["deliveryEndpoint"], json!(ep.path()));

    let r = d.post(
        "/api/sessions/at2/inject?wait=delivered",
        json!({"prompt": "refused"}),
    );
    assert_error(&r, 502, "DELIVERY_REJECTED", Some("nope"));
    assert_eq!(
        r.1["detail"],
        json!({"status": "Error", "error": "nope"}),
        "{}",
        r.1
    );
    assert_uuid_v4(&r.1["inject_id"]);
    let m = d.get("/api/sessions/at2/mailbox").1;
    let dead = m["dead_letter"].as_array().unwrap_or_else(|| panic!("{m}"));
    assert_eq!(dead.len(), 1, "{m}");
    assert_eq!(dead[0]["attempts"], json!(3), "{m}");
    assert_eq!(dead[0]["payload"], json!("refused"), "{m}");
    let del = d.delete("/api/sessions/at2/mailbox/dead-letter");
    assert_eq!(del.0, 200, "{}", del.1);
    assert_eq!(
        d.get("/api/sessions/at2/mailbox").1["dead_letter"],
        json!([])
    );
}

#[test]
fn aterm_socket_appearing_later_connects_the_session() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.sock");
    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "at3", "delivery_type": "aterm", "delivery_endpoint": path.to_str().unwrap()}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    let s = d.session("at3");
    assert_eq!(s["healthStatus"], json!("DISCONNECTED"), "{s}");
    assert_error(
        &d.post("/api/sessions/at3/inject", json!({"prompt": "x"})),
        503,
        "DISCONNECTED",
        None,
    );

    let _listener = UnixListener::bind(&path).unwrap();
    let s = d.wait_session("at3", "CONNECTED once the socket exists", |s| {
        s["healthStatus"] == "CONNECTED"
    });
    assert_eq!(
        s["healthReason"],
        json!("DELIVERY_ENDPOINT_AVAILABLE"),
        "{s}"
    );
}

#[test]
fn aterm_over_legacy_http_endpoint() {
    let d = Daemon::start();
    let (url, rx) = http_endpoint(200);
    let r = d.post(
        "/api/sessions/register",
        json!({"session_id": "at4", "delivery_type": "aterm", "delivery_endpoint": url}),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(d.session("at4")["healthStatus"], json!("CONNECTED"));
    let r = d.post(
        "/api/sessions/at4/inject?wait=delivered",
        json!({"prompt": "via http"}),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let (line, body) = rx.recv_timeout(T).expect("the endpoint got no POST");
    assert!(line.starts_with("POST /deliver HTTP/1."), "{line}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("body not JSON ({e}): {body}"));
    assert_eq!(v, json!({"text": "via http", "session_id": "at4"}));

    let (bad_url, _rx) = http_endpoint(500);
    d.post(
        "/api/sessions/register",
        json!({"session_id": "at5", "delivery_type": "aterm", "delivery_endpoint": bad_url}),
    );
    let r = d.post(
        "/api/sessions/at5/inject?wait=delivered",
        json!({"prompt": "x"}),
    );
    assert_error(
        &r,
        502,
        "DELIVERY_FAILED",
        Some("Delivery endpoint returned 500."),
    );
    assert_eq!(r.1["deliveryStatus"], json!(500), "{}", r.1);
}
