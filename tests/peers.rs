//! Peers across machines: two daemons in two network namespaces joined by a veth pair, each
//! bound to 0.0.0.0. The CLI runs inside namespace A with `[[peers]]` naming B: `list` merges
//! both, `inject`/`read-screen`/`broadcast --all-hosts` reach B with B's token and fail clearly
//! without it, a bare id present on both hosts is ambiguous, a stopped peer fails fast.
//!
//! Needs root and iproute2 (like tests/security.rs). Every wait polls with a deadline.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const T: Duration = Duration::from_secs(20);
/// Both daemons use the default port, each in its own namespace.
const PORT: u16 = 3848;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_telepty")
}

fn show(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(o.status.success(), "command failed: {}", show(&o));
    o
}

#[track_caller]
fn fails(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "expected exit 1: {}", show(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr lacks {needle:?}: {}", show(o));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Run with a 60 s cap.
fn run_capped(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("command did not finish within 60 s: {cmd:?}");
        }
    }
}

/// Two namespaces A and B joined by one veth pair (A = .1, B = .2 of a /30). Removed on drop.
struct NsPair {
    a: String,
    b: String,
    ip_b: String,
}

impl NsPair {
    fn create() -> NsPair {
        let seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64)
            ^ ((std::process::id() as u64) << 20);
        let tag = format!("{:06x}", seed & 0xff_ffff);
        let (x, y) = (250 + (seed >> 24) % 5, ((seed >> 8) % 64) * 4);
        let net = NsPair {
            a: format!("tppa{tag}"),
            b: format!("tppb{tag}"),
            ip_b: format!("10.{x}.{y}.2"),
        };
        let ip_a = format!("10.{x}.{y}.1");
        let (if_a, if_b) = (format!("tpva{tag}"), format!("tpvb{tag}"));
        if let Err(e) = ip(&["netns", "add", &net.a]) {
            panic!("this test needs root and iproute2 to create network namespaces: {e}");
        }
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &net.b])?;
            ip(&["link", "add", &if_a, "type", "veth", "peer", "name", &if_b])?;
            ip(&["link", "set", &if_a, "netns", &net.a])?;
            ip(&["link", "set", &if_b, "netns", &net.b])?;
            for (ns, ifc, addr) in [(&net.a, &if_a, &ip_a), (&net.b, &if_b, &net.ip_b)] {
                let cidr = format!("{addr}/30");
                ip(&["netns", "exec", ns, "ip", "addr", "add", &cidr, "dev", ifc])?;
                ip(&["netns", "exec", ns, "ip", "link", "set", ifc, "up"])?;
                ip(&["netns", "exec", ns, "ip", "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        if let Err(e) = setup() {
            drop(net);
            panic!("network namespace setup failed: {e}");
        }
        net
    }
}

impl Drop for NsPair {
    fn drop(&mut self) {
        // Deleting a namespace destroys its end of the veth pair, and with it the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// A daemon inside a namespace (`HOST=0.0.0.0`, port 3848) with a private HOME.
struct NsDaemon {
    ns: String,
    home: tempfile::TempDir,
    child: Option<Child>,
    token: String,
}

impl NsDaemon {
    fn start(ns: &str) -> NsDaemon {
        let home = tempfile::Builder::new()
            .prefix("telepty-peers-")
            .tempdir()
            .unwrap();
        let mut d = NsDaemon {
            ns: ns.to_string(),
            home,
            child: None,
            token: String::new(),
        };
        let log = std::fs::File::create(d.home.path().join("daemon.log")).unwrap();
        let mut cmd = d.command(&[("HOST", "0.0.0.0")]);
        cmd.args([bin(), "daemon", "--port", &PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        d.child = Some(cmd.spawn().expect("start the daemon in the namespace"));
        let deadline = Instant::now() + T;
        loop {
            let o = d.run(&[
                "curl",
                "-s",
                "-m",
                "2",
                &format!("http://127.0.0.1:{PORT}/api/health"),
            ]);
            if stdout(&o).contains("\"ok\"") {
                break;
            }
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon in {ns} exited: {st}\n{}", d.log());
            }
            if Instant::now() >= deadline {
                panic!("daemon in {ns} did not answer\n{}", d.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let cfg: Value = serde_json::from_str(
            &std::fs::read_to_string(d.home.path().join(".telepty/config.json")).unwrap(),
        )
        .unwrap();
        d.token = cfg["authToken"].as_str().unwrap().to_string();
        d
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home().join("daemon.log")).unwrap_or_default()
    }

    /// `ip netns exec <ns> env -i PATH=… HOME=… TELEPTY_PORT=3848 [extra]` (program follows).
    fn command(&self, extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "env", "-i"])
            .arg(format!(
                "PATH={}",
                std::env::var("PATH").unwrap_or_default()
            ))
            .arg(format!("HOME={}", self.home().display()))
            .arg(format!("TELEPTY_PORT={PORT}"))
            .arg("TELEPTY_HEALTH_POLL_MS=200")
            .arg("NO_COLOR=1");
        for (k, v) in extra {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.current_dir(self.home());
        cmd
    }

    fn run(&self, argv: &[&str]) -> Output {
        let mut cmd = self.command(&[]);
        cmd.args(argv);
        run_capped(cmd)
    }

    /// The telepty CLI inside this namespace, against its own daemon by default.
    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(&[]);
        cmd.arg(bin()).args(args);
        run_capped(cmd)
    }

    fn spawn_bash(&self, id: &str) {
        ok(self.cli(&[
            "spawn",
            "--id",
            id,
            "-d",
            "--",
            "bash",
            "--norc",
            "--noprofile",
        ]));
    }

    /// Polls `read-screen <spec>` until it shows `line`.
    fn wait_screen_line(&self, spec: &str, line: &str) {
        let deadline = Instant::now() + T;
        loop {
            let o = self.cli(&["read-screen", spec]);
            if o.status.success() && has_line(&stdout(&o), line) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("{spec} never showed {line:?}: {}", show(&o));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- daemon log ({}) ---\n{}", self.ns, self.log());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (host, id) pairs of `list --json`, sorted.
fn json_hosts(o: &Output) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("list --json is not JSON ({e}): {}", show(o)));
    let mut pairs: Vec<(String, String)> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            (
                s["host"].as_str().unwrap_or("?").to_string(),
                s["id"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(h, i)| (h.to_string(), i.to_string()))
        .collect()
}

#[test]
fn peers_across_two_network_namespaces() {
    let net = NsPair::create();
    let a = NsDaemon::start(&net.a);
    let mut b = NsDaemon::start(&net.b);
    a.spawn_bash("s");
    a.spawn_bash("aonly");
    b.spawn_bash("s");
    b.spawn_bash("bonly");

    // `peers add` keeps the rest of config.toml and writes it 0600.
    let cfg = a.home().join(".config/telepty/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        "discover_tailscale = false\n\n[tui]\ntheme = \"light\"\n",
    )
    .unwrap();
    let url_b = format!("http://{}:{PORT}", net.ip_b);
    ok(a.cli(&["peers", "add", "b", &url_b, "--token", &b.token]));
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let t: toml::Table = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
    assert_eq!(t["tui"]["theme"].as_str(), Some("light"), "{t}");
    assert_eq!(t["discover_tailscale"].as_bool(), Some(false));
    assert_eq!(t["peers"][0]["name"].as_str(), Some("b"));
    assert_eq!(t["peers"][0]["url"].as_str(), Some(url_b.as_str()));
    assert_eq!(t["peers"][0]["token"].as_str(), Some(b.token.as_str()));
    let o = ok(a.cli(&["peers"]));
    assert!(stdout(&o).contains(&url_b), "{}", show(&o));
    assert!(!stdout(&o).contains(&b.token), "tokens are never printed");
    let o = ok(a.cli(&["peers", "check"]));
    assert!(stdout(&o).starts_with("ok   b"), "{}", show(&o));

    // list: both hosts, with a HOST column / host field.
    let o = ok(a.cli(&["list"]));
    let out = stdout(&o);
    assert!(out.starts_with("HOST"), "{}", show(&o));
    let rows: Vec<(String, String)> = out
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    for want in [
        ("local", "s"),
        ("local", "aonly"),
        ("b", "s"),
        ("b", "bonly"),
    ] {
        assert!(
            rows.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} missing: {}",
            show(&o)
        );
    }
    let o = ok(a.cli(&["list", "--json"]));
    assert_eq!(
        json_hosts(&o),
        pairs(&[
            ("b", "bonly"),
            ("b", "s"),
            ("local", "aonly"),
            ("local", "s")
        ])
    );

    // id@peer: inject and read-screen with the peer's token.
    ok(a.cli(&["inject", "s@b", "echo hello-$((6*7))"]));
    a.wait_screen_line("s@b", "hello-42");
    let o = ok(a.cli(&["read-screen", &format!("s@127.0.0.1:{PORT}")]));
    assert!(!has_line(&stdout(&o), "hello-42"), "local s untouched");

    // A bare id on both hosts is ambiguous; one only on the peer goes there.
    let o = a.cli(&["inject", "s", "echo which"]);
    fails(&o, "exists on several hosts (local, b)");
    fails(
        &a.cli(&["read-screen", "s"]),
        "exists on several hosts (local, b)",
    );
    ok(a.cli(&["inject", "bonly", "echo routed-$((5+5))"]));
    a.wait_screen_line("bonly@b", "routed-10");

    // broadcast --all-hosts reaches every session of both daemons.
    let o = ok(a.cli(&["broadcast", "--all-hosts", "echo all-$((1+1))"]));
    let out = stdout(&o);
    for l in ["ok   s", "ok   aonly", "ok   s@b", "ok   bonly@b"] {
        assert!(has_line(&out, l), "{l:?} missing: {}", show(&o));
    }
    for spec in ["aonly", "s@b", "bonly@b"] {
        a.wait_screen_line(spec, "all-2");
    }
    a.wait_screen_line(&format!("s@127.0.0.1:{PORT}"), "all-2");

    // Without B's token (this machine's own token is sent instead), B refuses: clear errors.
    ok(a.cli(&["peers", "add", "b", &url_b]));
    let denied = "Unauthorized: Invalid or missing token.";
    fails(&a.cli(&["inject", "s@b", "echo nope"]), denied);
    fails(&a.cli(&["read-screen", "s@b"]), denied);
    let o = ok(a.cli(&["list", "--json"]));
    assert_eq!(json_hosts(&o), pairs(&[("local", "aonly"), ("local", "s")]));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("peer b"),
        "{}",
        show(&o)
    );
    let o = a.cli(&["broadcast", "--all-hosts", "echo z"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stdout(&o).contains("FAIL @b: PERMISSION_DENIED"),
        "{}",
        show(&o)
    );
    fails(&a.cli(&["peers", "check"]), "peers check failed");

    // A stopped peer: clear and fast errors, the rest still works.
    ok(a.cli(&["peers", "add", "b", &url_b, "--token", &b.token]));
    b.stop();
    let t0 = Instant::now();
    let o = a.cli(&["inject", "s@b", "echo gone"]);
    let took = t0.elapsed();
    fails(&o, "cannot reach the telepty daemon");
    assert!(took < Duration::from_secs(3), "inject took {took:?}");
    let t0 = Instant::now();
    let o = a.cli(&["read-screen", "s@b"]);
    assert!(t0.elapsed() < Duration::from_secs(3));
    fails(&o, "cannot reach the telepty daemon");
    let t0 = Instant::now();
    let o = ok(a.cli(&["list"]));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("peer b"),
        "{}",
        show(&o)
    );
    let t0 = Instant::now();
    let o = a.cli(&["broadcast", "--all-hosts", "echo still"]);
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(has_line(&stdout(&o), "ok   aonly"), "{}", show(&o));
    assert!(stdout(&o).contains("FAIL @b"), "{}", show(&o));
    // With the peer down the bare id is no longer ambiguous.
    ok(a.cli(&["inject", "s", "echo local-$((3+4))"]));
    a.wait_screen_line(&format!("s@127.0.0.1:{PORT}"), "local-7");

    // Removing the peer restores the single-host list.
    ok(a.cli(&["peers", "remove", "b"]));
    let t: toml::Table = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
    assert!(t.get("peers").is_none(), "{t}");
    assert_eq!(t["tui"]["theme"].as_str(), Some("light"));
    let o = ok(a.cli(&["list"]));
    assert!(stdout(&o).starts_with("ID "), "{}", show(&o));
    fails(&a.cli(&["peers", "remove", "b"]), "no peer named");
}
