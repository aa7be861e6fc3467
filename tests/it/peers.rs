//! Peers across machines: two daemons in two network namespaces joined by a veth pair, each
//! bound to 0.0.0.0. The CLI runs inside namespace A with `[[peers]]` naming B: `list` merges
//! both, `inject`/`read-screen`/`broadcast --all-hosts` reach B with B's token and fail clearly
//! without it, a bare id this machine holds is its own, a hung or stopped peer fails fast.
//!
//! Needs root and iproute2 (like tests/security.rs). Every wait polls with a deadline.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Daemon, T, ip, mcp, show};
use serde_json::{Value, json};

/// Both daemons use the default port, each in its own namespace.
const PORT: u16 = 3848;

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

/// Two namespaces A and B joined by one veth pair (A = .1, B = .2 of a /30). Removed on drop.
struct NsPair {
    a: String,
    b: String,
    ip_a: String,
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
        // 198.18.0.0/15 only: the range set aside for benchmarks, never a real network here.
        let (x, y) = (18 + (seed >> 24) % 2, (seed >> 8) % 256);
        let net = NsPair {
            a: format!("tppa{tag}"),
            b: format!("tppb{tag}"),
            ip_a: format!("198.{x}.{y}.{}", 1 + 4 * ((seed >> 16) % 64)),
            ip_b: format!("198.{x}.{y}.{}", 2 + 4 * ((seed >> 16) % 64)),
        };
        let ip_a = net.ip_a.clone();
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

fn spawn_bash(d: &Daemon, id: &str) {
    ok(d.cli(&[
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

/// Polls `read-screen <spec>` (run by `d`'s CLI) until it shows `line`.
fn wait_screen_line(d: &Daemon, spec: &str, line: &str) {
    let deadline = Instant::now() + T;
    loop {
        let o = d.cli(&["read-screen", spec]);
        if o.status.success() && has_line(&stdout(&o), line) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{spec} never showed {line:?}: {}", show(&o));
        }
        std::thread::sleep(Duration::from_millis(100));
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
                match s["error"].as_str() {
                    Some(_) => "<unreachable>".to_string(),
                    None => s["id"].as_str().unwrap_or("?").to_string(),
                },
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
    let a = Daemon::start_in_netns(&net.a, PORT, "0.0.0.0");
    let mut b = Daemon::start_in_netns(&net.b, PORT, "0.0.0.0");
    spawn_bash(&a, "s");
    spawn_bash(&a, "aonly");
    spawn_bash(&b, "s");
    spawn_bash(&b, "bonly");

    // `peers add` keeps the rest of config.toml and writes it 0600.
    let cfg = a.home_path().join(".config/telepty/config.toml");
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
    wait_screen_line(&a, "s@b", "hello-42");
    let o = ok(a.cli(&["read-screen", &format!("s@127.0.0.1:{PORT}")]));
    assert!(!has_line(&stdout(&o), "hello-42"), "local s untouched");

    // A bare id this machine holds is this machine's (no peer is waited on; the peer's is
    // `s@b`); one only on the peer goes there.
    ok(a.cli(&["inject", "s", "echo which-$((2+2))"]));
    wait_screen_line(&a, &format!("s@127.0.0.1:{PORT}"), "which-4");
    let o = ok(a.cli(&["read-screen", "s@b"]));
    assert!(!has_line(&stdout(&o), "which-4"), "the peer's s untouched");
    ok(a.cli(&["inject", "bonly", "echo routed-$((5+5))"]));
    wait_screen_line(&a, "bonly@b", "routed-10");

    // The MCP server on A sees the same hosts, with the same rules.
    mcp::runtime().block_on(async {
        let s = mcp::connect(a.cli_command(&["mcp"])).await;
        let r = s.call("session_list", json!({})).await;
        let v = mcp::tool_ok(&r);
        let mut got: Vec<(String, String)> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["host"].as_str().unwrap_or("?").into(), x["id"].as_str().unwrap_or("?").into()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            pairs(&[("b", "bonly"), ("b", "s"), ("local", "aonly"), ("local", "s")])
        );
        assert!(mcp::text(&r).contains("\nbonly@b  ["), "{}", mcp::text(&r));
        // A bare id only B holds is found there; one both hold is the local one.
        let r = s.call("session_read", json!({"id": "bonly"})).await;
        assert!(has_line(&mcp::text(&r), "routed-10"), "{}", mcp::text(&r));
        let r = s.call("session_read", json!({"id": "s"})).await;
        assert!(has_line(&mcp::text(&r), "which-4"), "{}", mcp::text(&r));
        // id@peer: inject and wait through B, with B's token.
        let r = s
            .call(
                "session_inject",
                json!({"id": "s@b", "text": "echo mcp-$((8*8))", "wait_for": "(?m)^mcp-64$", "timeout_ms": 20000}),
            )
            .await;
        assert_eq!(mcp::tool_ok(&r)["wait"]["matched"], true, "{}", mcp::text(&r));
        assert!(s.close().await.success());
    });

    // Replies cross machines: A injects as `me`, which B's side sees as `me@alpha` (A's
    // TELEPTY_MACHINE_ID); B knows A as peer `alpha`, so `telepty reply` in B's session finds
    // its way back to A's `me`.
    spawn_bash(&a, "me");
    ok(a.cli_env(
        &["inject", "--from", "me", "s@b", "echo asked-from-a"],
        &[("TELEPTY_MACHINE_ID", "alpha")],
    ));
    wait_screen_line(&a, "s@b", "asked-from-a");
    let url_a = format!("http://{}:{PORT}", net.ip_a);
    ok(b.cli(&["peers", "add", "alpha", &url_a, "--token", &a.token]));
    let o = ok(b.cli_env(
        &["reply", "echo pong-$((2*21))"],
        &[("TELEPTY_SESSION_ID", "s")],
    ));
    assert_eq!(stdout(&o).trim(), "Replied to me@alpha", "{}", show(&o));
    wait_screen_line(&a, "me", "pong-42");
    ok(b.cli(&["peers", "remove", "alpha"]));
    ok(a.cli(&["kill", "me"]));

    // broadcast --all-hosts reaches every session of both daemons.
    let o = ok(a.cli(&["broadcast", "--all-hosts", "echo all-$((1+1))"]));
    let out = stdout(&o);
    for l in ["ok   s", "ok   aonly", "ok   s@b", "ok   bonly@b"] {
        assert!(has_line(&out, l), "{l:?} missing: {}", show(&o));
    }
    for spec in ["aonly", "s@b", "bonly@b"] {
        wait_screen_line(&a, spec, "all-2");
    }
    wait_screen_line(&a, &format!("s@127.0.0.1:{PORT}"), "all-2");

    // Without B's token (this machine's own token is sent instead), B refuses: clear errors.
    ok(a.cli(&["peers", "add", "b", &url_b]));
    let denied = "Unauthorized: Invalid or missing token.";
    fails(&a.cli(&["inject", "s@b", "echo nope"]), denied);
    fails(&a.cli(&["read-screen", "s@b"]), denied);
    let o = ok(a.cli(&["list", "--json"]));
    assert_eq!(
        json_hosts(&o),
        pairs(&[("b", "<unreachable>"), ("local", "aonly"), ("local", "s")]),
        "a host that refused is listed as {{host, error}}"
    );
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

    // A hung peer (SIGSTOP: the kernel still accepts its connections, nothing answers):
    // local commands never wait on it, a list waits at most the peer deadline (3 s).
    ok(a.cli(&["peers", "add", "b", &url_b, "--token", &b.token]));
    let hung = nix::unistd::Pid::from_raw(b.pid() as i32);
    nix::sys::signal::kill(hung, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let t0 = Instant::now();
    ok(a.cli(&["read-screen", "aonly"]));
    ok(a.cli(&["inject", "s", "echo not-waiting"]));
    let local = t0.elapsed();
    let t0 = Instant::now();
    let o = ok(a.cli(&["list"]));
    let listed = t0.elapsed();
    // The deadline is a setting (peer_deadline_ms / TELEPTY_PEER_DEADLINE_MS).
    let t0 = Instant::now();
    let quick = ok(a.cli_env(&["list"], &[("TELEPTY_PEER_DEADLINE_MS", "400")]));
    let listed_quick = t0.elapsed();
    // The next commands remember it as down for a while: a short deadline, not the whole one.
    let t0 = Instant::now();
    ok(a.cli(&["list"]));
    let remembered = t0.elapsed();
    nix::sys::signal::kill(hung, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(
        remembered < Duration::from_millis(1500),
        "a list with b remembered down took {remembered:?}"
    );
    // Back: a list has its sessions again (still asked, only with a shorter deadline).
    let listed_b = |o: &Output| {
        json_hosts(o)
            .iter()
            .any(|(h, id)| h == "b" && id != "<unreachable>")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let back = ok(a.cli(&["list", "--json"]));
        if listed_b(&back) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never listed again: {}",
            show(&back)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        listed_quick < Duration::from_millis(1800) && listed_quick >= Duration::from_millis(400),
        "list with a 400 ms deadline took {listed_quick:?}: {}",
        show(&quick)
    );
    assert!(
        local < Duration::from_millis(1500),
        "local commands took {local:?}"
    );
    assert!(listed < Duration::from_millis(4500), "list took {listed:?}");
    assert!(stdout(&o).contains("aonly"), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("peer b"),
        "{}",
        show(&o)
    );

    // A stopped peer: clear and fast errors, the rest still works.
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
    // With the peer down the bare id is still the local one.
    ok(a.cli(&["inject", "s", "echo local-$((3+4))"]));
    wait_screen_line(&a, &format!("s@127.0.0.1:{PORT}"), "local-7");

    // Removing the peer restores the single-host list.
    ok(a.cli(&["peers", "remove", "b"]));
    let t: toml::Table = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
    assert!(t.get("peers").is_none(), "{t}");
    assert_eq!(t["tui"]["theme"].as_str(), Some("light"));
    let o = ok(a.cli(&["list"]));
    assert!(stdout(&o).starts_with("ID "), "{}", show(&o));
    fails(&a.cli(&["peers", "remove", "b"]), "no peer named");
}

#[test]
fn peers_add_refuses_a_bare_unknown_name_and_names_are_case_insensitive() {
    let d = Daemon::start();
    let out = d.cli(&["peers", "add", "x", "notaurl", "--token", "t"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("not a URL and no such host"), "{err}");
    // A resolvable bare name and explicit URLs are fine.
    ok(d.cli(&["peers", "add", "lh", "localhost", "--token", "t"]));
    ok(d.cli(&[
        "peers",
        "add",
        "Lab",
        "http://198.18.0.1:3848",
        "--token",
        "t",
    ]));
    let out = d.cli(&[
        "peers",
        "add",
        "lab",
        "http://198.18.0.2:3848",
        "--token",
        "t",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Updated peer lab"),
        "{}",
        show(&out)
    );
    ok(d.cli(&["peers", "remove", "LH"]));
    let list = String::from_utf8_lossy(&d.cli(&["peers", "list"]).stdout).into_owned();
    assert!(
        list.contains("198.18.0.2") && !list.contains("198.18.0.1"),
        "{list}"
    );
    assert!(!list.contains("localhost"), "{list}");
}

/// A real `sshd` (openssh-server) in namespace B, key authentication only, with its own
/// throwaway keys; killed on drop.
struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    ssh_port: u16,
}

impl Sshd {
    fn start(ns: &str, ip: &str) -> Sshd {
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("this test needs openssh-server (sshd); `bash .ci/run` installs it");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host", "user"] {
            let path = d.join(key);
            let st = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&path)
                .status()
                .unwrap();
            assert!(st.success(), "ssh-keygen");
        }
        std::fs::copy(d.join("user.pub"), d.join("authorized_keys")).unwrap();
        let ssh_port = 2222;
        let config = format!(
            "Port {ssh_port}\nListenAddress {ip}\nHostKey {0}/host\nAuthorizedKeysFile {0}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             StrictModes no\nUsePAM no\nPidFile {0}/sshd.pid\nAllowTcpForwarding yes\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // The privilege separation directory sshd insists on.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, sshd, "-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + T;
        while !std::fs::read_to_string(d.join("sshd.log"))
            .unwrap_or_default()
            .contains("Server listening")
        {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sshd {
            child,
            dir,
            ssh_port,
        }
    }

    /// What the CLI runs as `ssh`: this test's key, no host-key prompt.
    fn ssh_command(&self) -> String {
        format!(
            "ssh -i {}/user -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.dir.path().display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ends every ssh master a test's CLI left (by the HOME its sockets live in), even when the
/// test fails before `peers remove`.
struct SshMasters(String);

impl Drop for SshMasters {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-f", &self.0])
            .status();
    }
}

/// An `ssh://` peer: B's daemon listens on its loopback address only, no port is open to A,
/// and A reaches it through the user's own ssh with no telepty token at all: check, list,
/// inject, read-screen, keys and the bus (`monitor --all-hosts`) all go through one tunnel,
/// which `peers remove` ends.
#[test]
fn an_ssh_peer_reaches_a_loopback_daemon_without_a_token() {
    let net = NsPair::create();
    let a = Daemon::start_in_netns(&net.a, PORT, "127.0.0.1");
    let b = Daemon::start_in_netns(&net.b, PORT, "127.0.0.1");
    spawn_bash(&b, "far");
    let sshd = Sshd::start(&net.b, &net.ip_b);
    let _masters = SshMasters(format!("{}/.telepty/run/ssh-", a.home_path().display()));
    let ssh = sshd.ssh_command();
    let env = [("TELEPTY_SSH_COMMAND", ssh.as_str())];
    let url = format!("ssh://root@{}:{}?port={PORT}", net.ip_b, sshd.ssh_port);

    ok(a.cli_env(&["peers", "add", "box", &url], &env));
    let o = ok(a.cli_env(&["peers", "check"], &env));
    assert!(stdout(&o).starts_with("ok   box"), "{}", show(&o));
    // The tunnel: one private socket in A's runtime directory.
    let run = a.home_path().join(".telepty/run");
    let socket = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().ends_with(".sock") && n.to_string_lossy().starts_with("ssh-")
            })
        })
        .expect("the tunnel's socket");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", socket.display());

    let o = ok(a.cli_env(&["list", "--json"], &env));
    assert!(
        json_hosts(&o).contains(&("box".to_string(), "far".to_string())),
        "{}",
        show(&o)
    );
    ok(a.cli_env(&["inject", "far@box", "echo over-ssh-$((6*7))"], &env));
    let deadline = Instant::now() + T;
    loop {
        let o = a.cli_env(&["read-screen", "far@box"], &env);
        if o.status.success() && has_line(&stdout(&o), "over-ssh-42") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no output over ssh: {}",
            show(&o)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(a.cli_env(&["keys", "far@box", "ctrl+l"], &env));

    // `monitor --all-hosts`: this machine's bus and box's (a WebSocket through the tunnel),
    // merged, each line with its host.
    let mut monitor = a.cli_command(&["monitor", "--all-hosts"]);
    monitor
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut monitor = monitor.spawn().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        use std::io::BufRead;
        let out = std::io::BufReader::new(monitor.stdout.take().unwrap());
        let lines = lines.clone();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let mut all = lines.lock().unwrap();
                all.push_str(&l);
                all.push('\n');
            }
        })
    };
    let seen = |host: &str, id: &str| {
        let all = lines.lock().unwrap().clone();
        all.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(1) == Some(&host) && w.get(2) == Some(&"session_spawn") && w.get(3) == Some(&id)
        })
    };
    let deadline = Instant::now() + T;
    let mut n = 0;
    while !(seen("box", &format!("late{n}")) && seen("local", &format!("here{n}"))) {
        // Spawned until both buses are seen to be followed (the monitor connects meanwhile).
        n += 1;
        spawn_bash(&b, &format!("late{n}"));
        spawn_bash(&a, &format!("here{n}"));
        assert!(
            Instant::now() < deadline,
            "monitor --all-hosts: {}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    let _ = reader.join();

    ok(a.cli_env(&["peers", "remove", "box"], &env));
    let deadline = Instant::now() + T;
    while socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the tunnel outlived `peers remove`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `telepty pair` (issue 13): a one-time code shown on A and claimed from B makes each the
/// other's peer with its token, in one step; a wrong code is refused, and a code dies after
/// five wrong guesses.
#[test]
fn pairing_makes_two_machines_peers_both_ways() {
    let net = NsPair::create();
    let a = Daemon::start_in_netns(&net.a, PORT, "0.0.0.0");
    let b = Daemon::start_in_netns(&net.b, PORT, "0.0.0.0");
    spawn_bash(&a, "on-a");
    spawn_bash(&b, "on-b");
    let b_env = [("TELEPTY_MACHINE_ID", "boxb")];
    let offer = |a: &Daemon| {
        use std::io::BufRead;
        let mut cmd = a.cli_command(&["pair"]);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let code = first
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no code in {first:?}"))
            .to_string();
        (child, out, code)
    };

    let (mut child, mut out, code) = offer(&a);
    let at = |code: &str| format!("{code}@{}", net.ip_a);
    fails(
        &b.cli_env(&["pair", &at("WRONGCODE")], &b_env),
        "PAIR_REFUSED",
    );
    let o = ok(b.cli_env(&["pair", &at(&code.to_lowercase())], &b_env));
    assert!(stdout(&o).starts_with("Paired with "), "{}", show(&o));
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("Paired with boxb"), "{rest}");

    // Both ways: each lists the other's session under the other's name.
    let o = ok(a.cli(&["list", "--json"]));
    assert!(
        json_hosts(&o).contains(&("boxb".into(), "on-b".into())),
        "{}",
        show(&o)
    );
    let o = ok(b.cli_env(&["list", "--json"], &b_env));
    let a_name = json_hosts(&o)
        .into_iter()
        .find(|(h, id)| id == "on-a" && h != "local")
        .map(|(h, _)| h)
        .unwrap_or_else(|| panic!("A's session is not listed on B: {}", show(&o)));
    ok(b.cli_env(
        &["inject", &format!("on-a@{a_name}"), "echo paired-$((40+2))"],
        &b_env,
    ));
    wait_screen_line(&a, "on-a", "paired-42");

    // Five wrong guesses end a code: the right one is refused after them, and the waiting
    // `telepty pair` says so.
    let (mut child, _out, code) = offer(&a);
    for _ in 0..5 {
        fails(
            &b.cli_env(&["pair", &at("AAAAAAAAAA")], &b_env),
            "PAIR_REFUSED",
        );
    }
    fails(&b.cli_env(&["pair", &at(&code)], &b_env), "PAIR_REFUSED");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

/// Tailscale discovery with tokens (issue 13): a machine `tailscale status` reports is a peer
/// (its name lower-cased); without a token it refuses, and `list --json` says so for that
/// host; pairing writes its token under the same name, which then wins over discovery, so its
/// sessions are listed and injectable. `tailscale` here is a script printing a real
/// `status --json` shape, with B's namespace address as its Tailscale IP.
#[test]
fn tailscale_discovered_peers_get_their_token_by_pairing() {
    let net = NsPair::create();
    let a = Daemon::start_in_netns(&net.a, PORT, "0.0.0.0");
    let b = Daemon::start_in_netns(&net.b, PORT, "0.0.0.0");
    spawn_bash(&b, "on-b");
    let bin_dir = a.home_path().join("fakebin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let status = json!({
        "Self": {"HostName": "boxa", "TailscaleIPs": [net.ip_a], "Online": true},
        "Peer": {"nodekey:b": {"HostName": "BoxB", "DNSName": "boxb.tail1234.ts.net.",
                               "TailscaleIPs": [net.ip_b, "fd7a:115c:a1e0::2"], "Online": true},
                 "nodekey:c": {"HostName": "offline-c", "TailscaleIPs": ["198.18.0.9"], "Online": false}}
    });
    let script = bin_dir.join("tailscale");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat <<'JSON'\n{status}\nJSON\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = a.home_path().join(".config/telepty/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "discover_tailscale = true\n").unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let env = [("PATH", path.as_str())];

    let o = ok(a.cli_env(&["peers", "list"], &env));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("boxb"))
        .map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("boxb not discovered: {}", show(&o)));
    assert!(
        line.contains(&format!("http://{}:{PORT}", net.ip_b)) && line.ends_with("tailscale"),
        "{line}"
    );
    assert!(
        !stdout(&o).contains("offline-c"),
        "offline machines are left out"
    );
    // No token yet: B refuses, and the list says so for that host instead of omitting it.
    let o = ok(a.cli_env(&["list", "--json"], &env));
    assert!(
        json_hosts(&o).contains(&("boxb".into(), "<unreachable>".into())),
        "{}",
        show(&o)
    );

    // Pairing (B claims A's code) writes B under the name it gives, with its token.
    let mut offer = a.cli_command(&["pair"]);
    offer
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = offer.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    let code = first
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no code in {first:?}"));
    let claim = format!("{code}@{}", net.ip_a);
    ok(b.cli_env(&["pair", &claim], &[("TELEPTY_MACHINE_ID", "BoxB")]));
    assert!(child.wait().unwrap().success());

    let o = ok(a.cli_env(&["peers", "list"], &env));
    let listed = stdout(&o);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case("boxb"))
            .count(),
        1,
        "{}",
        show(&o)
    );
    let o = ok(a.cli_env(&["list", "--json"], &env));
    let hosts = json_hosts(&o);
    assert!(
        hosts
            .iter()
            .any(|(h, id)| h.eq_ignore_ascii_case("boxb") && id == "on-b"),
        "{}",
        show(&o)
    );
    ok(a.cli_env(&["inject", "on-b@boxb", "echo ts-$((40+2))"], &env));
    wait_screen_line(&b, "on-b", "ts-42");
}
