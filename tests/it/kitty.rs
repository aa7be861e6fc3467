#![cfg(target_os = "linux")]
//! telepty against a real kitty (Debian's 0.26.5 here) under Xvfb: `telepty layout`,
//! `telepty kitty open|focus|list`, discovery, passwords and the documented errors.
//!
//! Needs the Debian packages `kitty` and `xvfb`. Without them the tests are skipped, except
//! under CI (`CI` set), where they fail. Every test starts its own Xvfb and kitty in a private
//! temporary directory and kills them on drop. kitty is checked with an independent, hand-written
//! remote-control client (`Rc`), not with telepty's own.

use crate::common;
use crate::tui_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, T, bin, run_capped, show, wait_for, wait_until};
use serde_json::{Value, json};

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// kitty and Xvfb are installed; otherwise skip (or fail under CI).
fn available() -> bool {
    if on_path("kitty") && on_path("Xvfb") {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "kitty and Xvfb are required under CI: apt-get install kitty xvfb"
    );
    eprintln!("skipping: kitty or Xvfb is not installed (apt-get install kitty xvfb)");
    false
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn kill_child(child: &mut Child) {
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct Xvfb {
    child: Child,
    display: u32,
}

impl Xvfb {
    fn start(log: &Path) -> Xvfb {
        let mut last = String::new();
        for attempt in 0..40u32 {
            let n = 300
                + (std::process::id() % 500) * 13
                + SEQ.fetch_add(1, Ordering::SeqCst)
                + attempt;
            let n = 300 + n % 20_000;
            if Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                continue;
            }
            let out = std::fs::File::create(log).unwrap();
            let mut child = Command::new("Xvfb")
                .arg(format!(":{n}"))
                .args(["-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn Xvfb");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                    return Xvfb { child, display: n };
                }
                if let Ok(Some(st)) = child.try_wait() {
                    last = format!(
                        "Xvfb :{n} exited with {st}: {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() >= deadline {
                    kill_child(&mut child);
                    last = format!("Xvfb :{n} did not create its socket within 15 s");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start Xvfb: {last}");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.display));
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A hand-written kitty remote-control client (protocol version 0.14.2, one connection per
/// request), independent of telepty's.
#[derive(Clone, Debug)]
struct Rc {
    addr: String,
}

impl Rc {
    fn connect(&self) -> std::io::Result<Box<dyn ReadWrite>> {
        if let Some(hp) = self.addr.strip_prefix("tcp:") {
            let s = std::net::TcpStream::connect(hp)?;
            s.set_read_timeout(Some(Duration::from_secs(15)))?;
            Ok(Box::new(s))
        } else if let Some(name) = self.addr.strip_prefix("unix:@") {
            use std::os::linux::net::SocketAddrExt;
            let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            let s = UnixStream::connect_addr(&sa)?;
            s.set_read_timeout(Some(Duration::from_secs(15)))?;
            Ok(Box::new(s))
        } else {
            let s = UnixStream::connect(self.addr.strip_prefix("unix:").unwrap())?;
            s.set_read_timeout(Some(Duration::from_secs(15)))?;
            Ok(Box::new(s))
        }
    }

    /// `Ok(data)` or `Err(kitty's error or an I/O error)`.
    fn call(&self, cmd: &str, payload: Value) -> Result<Value, String> {
        let mut s = self
            .connect()
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        let mut req = json!({"cmd": cmd, "version": [0, 14, 2], "no_response": false});
        if !payload.is_null() {
            req["payload"] = payload;
        }
        let mut bytes = b"\x1bP@kitty-cmd".to_vec();
        bytes.extend_from_slice(req.to_string().as_bytes());
        bytes.extend_from_slice(b"\x1b\\");
        s.write_all(&bytes).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while !got.ends_with(b"\x1b\\") {
            let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err(format!("kitty closed without answering {cmd}"));
            }
            got.extend_from_slice(&buf[..n]);
        }
        let body = got
            .strip_prefix(b"\x1bP@kitty-cmd")
            .and_then(|b| b.strip_suffix(b"\x1b\\"))
            .ok_or_else(|| format!("bad frame {:?}", String::from_utf8_lossy(&got)))?;
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if v["ok"] == json!(true) {
            Ok(v.get("data").cloned().unwrap_or(Value::Null))
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_string())
        }
    }

    /// The `ls` listing (OS windows).
    fn ls(&self) -> Vec<Value> {
        let data = self.call("ls", Value::Null).expect("ls");
        let s = data.as_str().expect("ls data is a JSON string");
        serde_json::from_str(s).expect("ls listing")
    }

    fn tabs(&self) -> Vec<Value> {
        self.ls()
            .iter()
            .flat_map(|o| o["tabs"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn tab(&self, id: u64) -> Value {
        self.tabs()
            .into_iter()
            .find(|t| t["id"] == json!(id))
            .unwrap_or_else(|| panic!("no tab {id}"))
    }

    fn tab_titled(&self, title: &str) -> Option<Value> {
        self.tabs().into_iter().find(|t| t["title"] == json!(title))
    }

    fn layout(&self, tab: u64) -> String {
        self.tab(tab)["layout"].as_str().unwrap().to_string()
    }

    /// `launch`; the new window's id.
    fn launch(&self, payload: Value) -> u64 {
        let d = self.call("launch", payload).expect("launch");
        d.as_str().and_then(|s| s.parse().ok()).expect("window id")
    }

    fn tab_of_window(&self, wid: u64) -> u64 {
        self.tabs()
            .into_iter()
            .find(|t| {
                t["windows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w["id"] == json!(wid))
            })
            .map(|t| t["id"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("no tab holds window {wid}"))
    }
}

enum Listen {
    /// A socket file of this name in the test's directory.
    Path(&'static str),
    /// An abstract socket (Linux).
    Abstract,
    /// No socket: remote control only through the windows' terminals.
    None,
    /// TCP on loopback, this port.
    Tcp(u16),
}

/// Xvfb + kitty with remote control, in a private temporary directory.
struct Kitty {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    rc: Rc,
    // Dropped after kitty.
    _xvfb: Xvfb,
}

impl Kitty {
    fn start() -> Kitty {
        Kitty::start_with(
            &["-o", "allow_remote_control=yes"],
            Listen::Path("rc.sock"),
            &[],
            true,
        )
    }

    /// `opts` are kitty options; `program` the first window's command; `wait_rc`: wait until
    /// `ls` answers (false when kitty is expected to refuse or not listen).
    fn start_with(opts: &[&str], listen: Listen, program: &[&str], wait_rc: bool) -> Kitty {
        let dir = tempfile::Builder::new()
            .prefix("tpk-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path();
        for sub in ["home/.config", "home/.cache", "home/.local/share", "run"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let xvfb = Xvfb::start(&d.join("xvfb.log"));
        let addr = match listen {
            Listen::Path(name) => format!("unix:{}", d.join(name).display()),
            Listen::Abstract => format!("unix:@telepty-it-kitty-{}", unique()),
            Listen::None => String::new(),
            Listen::Tcp(port) => format!("tcp:127.0.0.1:{port}"),
        };
        let log = std::fs::File::create(d.join("kitty.log")).unwrap();
        let mut cmd = Command::new("kitty");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("DISPLAY", format!(":{}", xvfb.display))
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("home/.config"))
            .env("XDG_CACHE_HOME", d.join("home/.cache"))
            .env("XDG_DATA_HOME", d.join("home/.local/share"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .args(["--config", "NONE", "-o", "linux_display_server=x11"])
            .args(opts)
            .args(if addr.is_empty() {
                vec![]
            } else {
                vec!["--listen-on", addr.as_str()]
            })
            .args(program)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("spawn kitty");
        let rc = Rc { addr: addr.clone() };
        let mut k = Kitty {
            child,
            dir,
            addr,
            rc,
            _xvfb: xvfb,
        };
        if wait_rc {
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                if let Ok(Some(st)) = k.child.try_wait() {
                    panic!("kitty exited with {st}:\n{}", k.log());
                }
                match k.rc.call("ls", Value::Null) {
                    Ok(_) => break,
                    // Refusals (password mode) also prove kitty is listening.
                    Err(e) if !e.starts_with("connect") && !e.starts_with("read") => break,
                    Err(_) => {}
                }
                assert!(
                    Instant::now() < deadline,
                    "kitty did not answer on {} within 40 s:\n{}",
                    k.addr,
                    k.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        k
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("kitty.log")).unwrap_or_default()
    }

    /// A window running `cat` (waits forever) in tab `tab` or in a new tab titled `new_tab`.
    fn window(&self, tab: Option<u64>, new_tab: Option<&str>, env: &[&str], title: &str) -> u64 {
        let mut p = json!({"args": ["cat"], "window_title": title, "env": env});
        match (tab, new_tab) {
            (Some(t), _) => {
                p["type"] = json!("window");
                p["match"] = json!(format!("id:{t}"));
            }
            (None, Some(title)) => {
                p["type"] = json!("tab");
                p["tab_title"] = json!(title);
            }
            (None, None) => p["type"] = json!("window"),
        }
        self.rc.launch(p)
    }
}

impl Drop for Kitty {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// Run a command with a 60 s cap.
fn run(cmd: Command) -> Output {
    run_capped(cmd, "telepty")
}

/// The environment a telepty command gets: nothing from the outer kitty or daemon, discovery
/// limited to `socket_dirs` (an empty directory by default), no daemon (port 1 refuses).
fn telepty_cmd(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("TELEPTY_") || k.starts_with("KITTY_") || k.starts_with("XDG_") {
            cmd.env_remove(&k);
        }
    }
    let empty = home.join("no-sockets");
    std::fs::create_dir_all(&empty).unwrap();
    cmd.env("HOME", home)
        .env("TELEPTY_PORT", "1")
        .env("TELEPTY_KITTY_SOCKET_DIRS", &empty)
        .env("NO_COLOR", "1")
        .args(args)
        .current_dir(home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.status.success(), "telepty failed: {}", show(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Exit 1 with exactly one `telepty: …` line on stderr; returns it.
#[track_caller]
fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1: {}", show(&o));
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one stderr line: {}",
        show(&o)
    );
    assert!(err.starts_with("telepty: "), "{}", show(&o));
    err.trim_end().to_string()
}

const ENABLE_HINT: &str = "turn kitty's remote control on: add `allow_remote_control yes` and \
     `listen_on unix:/tmp/kitty-sock` to kitty.conf and restart kitty, or start it with \
     `kitty -o allow_remote_control=yes --listen-on unix:/tmp/kitty-sock`";

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

#[test]
fn layout_applies_verifies_and_reports() {
    if !available() {
        return;
    }
    let k = Kitty::start();
    let home = tempfile::tempdir().unwrap();
    let first_tab = k.rc.tabs()[0]["id"].as_u64().unwrap();
    let first_layout = k.rc.layout(first_tab);
    // Two session windows (named by their environment) in a tab titled "agents", where only
    // tall and stack are enabled: grid has to be enabled before kitty accepts it.
    let w1 = k.window(None, Some("agents"), &["TELEPTY_SESSION_ID=a1"], "one");
    let tab = k.rc.tab_of_window(w1);
    let w2 = k.window(Some(tab), None, &["TELEPTY_SESSION_ID=a2"], "two");
    assert_eq!(k.rc.tab_of_window(w2), tab);
    k.rc.call(
        "set-enabled-layouts",
        json!({"layouts": ["tall", "stack"], "match": format!("id:{tab}")}),
    )
    .unwrap();
    assert_eq!(k.rc.layout(tab), "tall");

    let to = ["--to", k.addr.as_str()];
    let layout = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["layout"];
        all.extend_from_slice(args);
        all.extend_from_slice(&to);
        run(telepty_cmd(home.path(), &all, &[]))
    };

    let out = ok(layout(&["grid"]));
    assert_eq!(
        out,
        format!("tab {tab} \"agents\": tall → grid (enabled grid in the tab)\n")
    );
    let t = k.rc.tab(tab);
    assert_eq!(t["layout"], json!("grid"));
    let enabled = t["enabled_layouts"].as_array().unwrap();
    assert!(
        enabled.contains(&json!("grid")) && enabled.contains(&json!("tall")),
        "{t}"
    );
    assert_eq!(
        k.rc.layout(first_tab),
        first_layout,
        "other tabs are left alone"
    );

    let out = ok(layout(&["tall"]));
    assert_eq!(out, format!("tab {tab} \"agents\": grid → tall\n"));
    assert_eq!(k.rc.layout(tab), "tall");
    let out = ok(layout(&["stack"]));
    assert_eq!(out, format!("tab {tab} \"agents\": tall → stack\n"));
    assert_eq!(k.rc.layout(tab), "stack");
    let out = ok(layout(&["stack"]));
    assert_eq!(out, format!("tab {tab} \"agents\": stack (unchanged)\n"));

    // No argument: the current layout of each session tab.
    let out = ok(layout(&[]));
    assert_eq!(out, format!("tab {tab} \"agents\": stack (a1, a2)\n"));
    let v: Value = serde_json::from_str(&ok(layout(&["--json"]))).unwrap();
    assert_eq!(v[0]["tab_id"], json!(tab));
    assert_eq!(v[0]["layout"], json!("stack"));
    assert_eq!(v[0]["sessions"], json!(["a1", "a2"]));

    // --match goes to kitty; only the matched tab changes.
    let m = format!("id:{first_tab}");
    let out = ok(layout(&["horizontal", "--match", &m]));
    assert!(
        out.starts_with(&format!("tab {first_tab} ")) && out.trim_end().ends_with("→ horizontal"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(k.rc.layout(first_tab), "horizontal");
    assert_eq!(k.rc.layout(tab), "stack");
    let out = ok(layout(&["--match", "title:^agents$"]));
    assert_eq!(out, format!("tab {tab} \"agents\": stack (a1, a2)\n"));

    // --all-tabs.
    let out = ok(layout(&["vertical", "--all-tabs"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(k.rc.layout(first_tab), "vertical");
    assert_eq!(k.rc.layout(tab), "vertical");

    // kitty's own refusal comes back as one line.
    let err = fails(layout(&["grid", "--match", "id:9999"]));
    assert!(err.contains("9999"), "{err}");

    // Window titles pinned by remote control (what `telepty allow` does inside kitty).
    let rc = telepty::kitty::SocketRemote::new(
        k.addr.parse().unwrap(),
        telepty::kitty::Protection::Plain,
    );
    telepty::kitty::pin_window_title(&rc, w2, "sess-2").unwrap();
    let title = |w: u64| {
        k.rc.tab(tab)["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == json!(w))
            .map(|x| x["title"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(title(w2), "sess-2");
}

#[test]
fn kitty_open_focus_and_list_with_a_daemon() {
    if !available() {
        return;
    }
    let d = Daemon::start();
    d.spawn_bash("k1");
    d.spawn_bash("k2");
    let k = Kitty::start_with(
        &["-o", "allow_remote_control=yes"],
        Listen::Abstract,
        &[],
        true,
    );
    let sockets = d.home_path().join("no-sockets");
    std::fs::create_dir_all(&sockets).unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = d.cli_command(args);
        cmd.args(["--to", k.addr.as_str()])
            .env("TELEPTY_KITTY_SOCKET_DIRS", &sockets)
            .env_remove("KITTY_WINDOW_ID")
            .env_remove("KITTY_PUBLIC_KEY")
            .env_remove("KITTY_RC_PASSWORD");
        run(cmd)
    };

    let out = ok(cli(&["kitty", "open", "--all"]));
    let tab =
        k.rc.tab_titled("telepty")
            .unwrap_or_else(|| panic!("no tab titled telepty: {out}"));
    let tab_id = tab["id"].as_u64().unwrap();
    let wins = tab["windows"].as_array().unwrap().clone();
    assert_eq!(wins.len(), 2, "{tab}");
    let mut titles: Vec<&str> = wins.iter().map(|w| w["title"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(titles, ["k1", "k2"], "{tab}");
    for w in &wins {
        let id = w["title"].as_str().unwrap();
        assert_eq!(w["cmdline"], json!([bin(), "attach", id]), "{w}");
        assert!(
            out.contains(&format!(
                "opened window {} for {id} in tab {tab_id} \"telepty\"",
                w["id"]
            )),
            "{out}"
        );
    }
    assert_eq!(tab["layout"], json!("grid"), "{tab}");
    assert!(
        out.trim_end().ends_with("grid") || out.contains("→ grid"),
        "{out}"
    );
    // The windows really attached to the daemon's sessions.
    for id in ["k1", "k2"] {
        wait_until(T, &format!("a kitty window attached to {id}"), || {
            d.session(id)["active_clients"].as_u64().unwrap_or(0) >= 1
        });
    }

    // Opening again leaves existing windows alone.
    let out = ok(cli(&["kitty", "open", "k1"]));
    assert!(out.starts_with("k1 already has window "), "{out}");
    assert_eq!(k.rc.tab(tab_id)["windows"].as_array().unwrap().len(), 2);

    // Focus.
    let w2 = wins.iter().find(|w| w["title"] == json!("k2")).unwrap()["id"]
        .as_u64()
        .unwrap();
    let w1 = wins.iter().find(|w| w["title"] == json!("k1")).unwrap()["id"]
        .as_u64()
        .unwrap();
    for (id, w) in [("k2", w2), ("k1", w1)] {
        let out = ok(cli(&["kitty", "focus", id]));
        assert_eq!(
            out,
            format!("focused window {w} of session {id} (tab {tab_id})\n")
        );
        let t = k.rc.tab(tab_id);
        let active: Vec<u64> = t["windows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["is_active_window"] == json!(true) || x["is_active"] == json!(true))
            .map(|x| x["id"].as_u64().unwrap())
            .collect();
        assert_eq!(active, vec![w], "{t}");
    }
    let err = fails(cli(&["kitty", "focus", "nope"]));
    assert!(
        err.contains("no kitty window") && err.contains("nope"),
        "{err}"
    );

    // List.
    let out = ok(cli(&["kitty", "list"]));
    assert!(
        out.contains(&format!(
            "k1  window {w1}  tab {tab_id} \"telepty\"  layout grid"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("k2  window {w2}  tab {tab_id}")),
        "{out}"
    );

    // Layout over the sessions' tab, found from the windows' command lines.
    let out = ok(cli(&["layout", "stack"]));
    assert_eq!(out, format!("tab {tab_id} \"telepty\": grid → stack\n"));
    assert_eq!(k.rc.layout(tab_id), "stack");

    // Unknown session.
    let o = cli(&["kitty", "open", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
}

#[test]
fn missing_kitty_and_remote_control_off_say_how_to_turn_it_on() {
    if !available() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    // An explicit address where nothing listens.
    let none = h.join("none");
    let to = format!("unix:{}", none.display());
    let err = fails(run(telepty_cmd(h, &["layout", "grid", "--to", &to], &[])));
    assert_eq!(
        err,
        format!("telepty: cannot reach kitty at {to}: no such socket; {ENABLE_HINT}")
    );
    // The same through $KITTY_LISTEN_ON.
    let err = fails(run(telepty_cmd(
        h,
        &["kitty", "list"],
        &[("KITTY_LISTEN_ON", &to)],
    )));
    assert!(err.ends_with(ENABLE_HINT), "{err}");

    // Nothing to discover.
    let err = fails(run(telepty_cmd(h, &["layout", "grid"], &[])));
    assert_eq!(
        err,
        format!(
            "telepty: no kitty with remote control found ($KITTY_LISTEN_ON is not set, and no \
             kitty socket in /tmp); {ENABLE_HINT}"
        )
    );

    // A stale socket left by a kitty that is gone.
    let dir = h.join("socks");
    std::fs::create_dir_all(&dir).unwrap();
    drop(std::os::unix::net::UnixListener::bind(dir.join("kitty-sock-4242")).unwrap());
    let err = fails(run(telepty_cmd(
        h,
        &["layout", "grid"],
        &[("TELEPTY_KITTY_SOCKET_DIRS", dir.to_str().unwrap())],
    )));
    assert!(
        err.contains("kitty-sock-4242 (connection refused") && err.ends_with(ENABLE_HINT),
        "{err}"
    );

    // A kitty with remote control off does not listen at all.
    let k = Kitty::start_with(
        &["-o", "allow_remote_control=no"],
        Listen::Path("kitty-sock"),
        &[],
        false,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(k.child_alive(), "kitty died:\n{}", k.log());
    let err = fails(run(telepty_cmd(
        h,
        &["layout", "grid", "--to", &k.addr],
        &[],
    )));
    assert_eq!(
        err,
        format!(
            "telepty: cannot reach kitty at {}: no such socket; {ENABLE_HINT}",
            k.addr
        )
    );

    // An invalid address is named as such.
    let err = fails(run(telepty_cmd(h, &["layout", "--to", "bogus"], &[])));
    assert!(err.contains("invalid kitty address \"bogus\""), "{err}");
}

impl Kitty {
    fn child_alive(&self) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(self.child.id() as libc::pid_t, 0) == 0 }
    }
}

#[test]
fn discovery_finds_the_socket_kitty_created() {
    if !available() {
        return;
    }
    let k = Kitty::start_with(
        &["-o", "allow_remote_control=yes"],
        Listen::Path("kitty-sock-12345"),
        &[],
        true,
    );
    let w = k.window(None, None, &["TELEPTY_SESSION_ID=d1"], "d1");
    let tab = k.rc.tab_of_window(w);
    let home = tempfile::tempdir().unwrap();
    let dirs = k.path().to_str().unwrap().to_string();
    // Discovered in the socket directory, no --to.
    let out = ok(run(telepty_cmd(
        home.path(),
        &["layout", "tall"],
        &[("TELEPTY_KITTY_SOCKET_DIRS", &dirs)],
    )));
    assert!(
        out.starts_with(&format!("tab {tab} ")) && out.contains("→ tall"),
        "{out}"
    );
    assert_eq!(k.rc.layout(tab), "tall");
    // A stale socket next to it does not get in the way.
    drop(std::os::unix::net::UnixListener::bind(k.path().join("kitty-sock-1")).unwrap());
    let out = ok(run(telepty_cmd(
        home.path(),
        &["layout", "grid"],
        &[("TELEPTY_KITTY_SOCKET_DIRS", &dirs)],
    )));
    assert!(out.contains("tall → grid"), "{out}");
    // $KITTY_LISTEN_ON wins over discovery.
    let out = ok(run(telepty_cmd(
        home.path(),
        &["layout"],
        &[("KITTY_LISTEN_ON", &k.addr)],
    )));
    assert_eq!(out, format!("tab {tab} \"d1\": grid (d1)\n"));
    // So does `to` under [kitty] in the config file.
    std::fs::create_dir_all(home.path().join(".config/telepty")).unwrap();
    std::fs::write(
        home.path().join(".config/telepty/config.toml"),
        format!("[kitty]\nto = \"{}\"\n", k.addr),
    )
    .unwrap();
    let out = ok(run(telepty_cmd(home.path(), &["layout"], &[])));
    assert_eq!(out, format!("tab {tab} \"d1\": grid (d1)\n"));
}

#[test]
fn password_protected_remote_control() {
    if !available() {
        return;
    }
    // kitty's first window writes kitty's public key (KITTY_PUBLIC_KEY) where we can read it.
    let probe = tempfile::tempdir().unwrap();
    let key_file = probe.path().join("key");
    let script = format!(
        "printf %s \"$KITTY_PUBLIC_KEY\" > {}; exec cat",
        key_file.display()
    );
    let k = Kitty::start_with(
        &[
            "-o",
            "allow_remote_control=password",
            "-o",
            "remote_control_password=\"s3cret\"",
            "-o",
            "env=TELEPTY_SESSION_ID=p1",
        ],
        Listen::Path("rc.sock"),
        &["sh", "-c", &script],
        true,
    );
    let key = wait_for(T, "kitty's public key", || {
        std::fs::read_to_string(&key_file)
            .ok()
            .filter(|k| k.starts_with("1:"))
    });
    // Our plain client is refused.
    let e = k.rc.call("ls", Value::Null).unwrap_err();
    assert!(e.contains("Remote control is disabled"), "{e}");

    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let to = ["--to", k.addr.as_str()];
    let with = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&to);
        run(telepty_cmd(h, &all, env))
    };

    // No password: kitty's refusal, and how to give one.
    let err = fails(with(&["layout", "grid"], &[]));
    assert!(
        err.contains("Remote control is disabled") && err.contains("--password"),
        "{err}"
    );
    // A password but no public key.
    let err = fails(with(&["layout", "grid", "--password", "s3cret"], &[]));
    assert!(err.contains("KITTY_PUBLIC_KEY"), "{err}");
    // --password + KITTY_PUBLIC_KEY.
    let out = ok(with(
        &["layout", "grid", "--password", "s3cret"],
        &[("KITTY_PUBLIC_KEY", &key)],
    ));
    assert!(out.contains("→ grid"), "{out}");
    // $KITTY_RC_PASSWORD.
    let out = ok(with(
        &["layout", "tall"],
        &[("KITTY_PUBLIC_KEY", &key), ("KITTY_RC_PASSWORD", "s3cret")],
    ));
    assert!(out.contains("grid → tall"), "{out}");
    // `password` under [kitty] in the config file.
    std::fs::create_dir_all(h.join(".config/telepty")).unwrap();
    std::fs::write(
        h.join(".config/telepty/config.toml"),
        "[kitty]\npassword = \"s3cret\"\n",
    )
    .unwrap();
    let out = ok(with(&["layout", "stack"], &[("KITTY_PUBLIC_KEY", &key)]));
    assert!(out.contains("tall → stack"), "{out}");
    let out = ok(with(&["layout"], &[("KITTY_PUBLIC_KEY", &key)]));
    assert!(out.contains(": stack (p1)"), "{out}");
}

#[test]
fn inside_kitty_without_a_socket_the_terminal_carries_the_requests() {
    if !available() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("no-sockets");
    std::fs::create_dir_all(&empty).unwrap();
    let env_dirs = format!("env=TELEPTY_KITTY_SOCKET_DIRS={}", empty.display());
    // telepty runs as the first window's program and writes what it printed to a file.
    let run_inside = |allow: &str, name: &str| {
        let out = scratch.path().join(name);
        let script = format!(
            "{b} layout grid --all-tabs > {o} 2>&1; {b} layout --all-tabs >> {o} 2>&1; \
             echo done >> {o}; exec cat",
            b = bin(),
            o = out.display()
        );
        let k = Kitty::start_with(
            &[
                "-o",
                &format!("allow_remote_control={allow}"),
                "-o",
                "env=TELEPTY_PORT=1",
                "-o",
                &env_dirs,
            ],
            Listen::None,
            &["sh", "-c", &script],
            false,
        );
        let text = wait_for(
            Duration::from_secs(60),
            "telepty's output inside kitty",
            || {
                std::fs::read_to_string(&out)
                    .ok()
                    .filter(|t| t.ends_with("done\n"))
            },
        );
        drop(k);
        text
    };

    let text = run_inside("yes", "on");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("tab 1 ") && lines[0].ends_with("→ grid"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("tab 1 ") && lines[1].ends_with(": grid"),
        "{text}"
    );

    // Remote control off: kitty says so through the terminal, and we say how to turn it on.
    let text = run_inside("no", "off");
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("telepty: layout failed: kitty refused `ls`: Remote control is disabled")
            && first.ends_with(ENABLE_HINT),
        "{text}"
    );
}

#[test]
fn tcp_addresses_work() {
    if !available() {
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let k = Kitty::start_with(
        &["-o", "allow_remote_control=yes"],
        Listen::Tcp(port),
        &[],
        true,
    );
    let home = tempfile::tempdir().unwrap();
    let tab = k.rc.tabs()[0]["id"].as_u64().unwrap();
    let out = ok(run(telepty_cmd(
        home.path(),
        &["layout", "splits", "--all-tabs", "--to", &k.addr],
        &[],
    )));
    assert!(
        out.starts_with(&format!("tab {tab} ")) && out.contains("→ splits"),
        "{out}"
    );
    assert_eq!(k.rc.layout(tab), "splits");
}

/// The dashboard's palette drives kitty too: `kitty open all` opens an attached window per
/// session, `layout kitty stack` arranges them, `kitty focus` focuses one.
#[test]
fn dashboard_palette_opens_arranges_and_focuses_kitty_windows() {
    if !available() {
        return;
    }
    let k = Kitty::start_with(
        &["-o", "allow_remote_control=yes"],
        Listen::Abstract,
        &[],
        true,
    );
    let home = tui_support::Home::new();
    let cfg = home.path().join(".config/telepty");
    std::fs::create_dir_all(&cfg).unwrap();
    // The dashboard finds kitty through the config file (its environment is scrubbed).
    std::fs::write(
        cfg.join("config.toml"),
        format!("[kitty]\nto = \"{}\"\n", k.addr),
    )
    .unwrap();
    let port = tui_support::free_port();
    let tui = tui_support::Tui::start(&home, port, &[]);
    tui.wait_text("embedded");
    let base = format!("http://127.0.0.1:{port}");
    for id in ["k1", "k2"] {
        tui_support::spawn_bash(&base, id, home.path());
        tui.wait_pane(id, &format!("[AGENT: {id}]"));
    }

    tui.palette("kitty open all", 0);
    let tab = wait_for(T, "kitty tab \"telepty\" with two windows", || {
        k.rc.tab_titled("telepty")
            .filter(|t| t["windows"].as_array().is_some_and(|w| w.len() == 2))
    });
    let tab_id = tab["id"].as_u64().unwrap();
    let wins = tab["windows"].as_array().unwrap().clone();
    let mut titles: Vec<&str> = wins.iter().map(|w| w["title"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(titles, ["k1", "k2"], "{tab}");
    for w in &wins {
        let id = w["title"].as_str().unwrap();
        assert_eq!(w["cmdline"], json!([bin(), "attach", id]), "{w}");
    }
    tui.wait_text("kitty open: 2 windows (k1, k2) in tab \"telepty\"");
    // The windows attached to the dashboard's own sessions.
    for id in ["k1", "k2"] {
        wait_until(T, &format!("a kitty window attached to {id}"), || {
            let (_, v) = tui_support::get(&format!("{base}/api/sessions/{id}"));
            v["active_clients"].as_u64().unwrap_or(0) >= 1
        });
    }
    assert_eq!(k.rc.layout(tab_id), "grid");

    tui.palette("layout kitty stack", 0);
    wait_until(T, "the sessions' tab in the stack layout", || {
        k.rc.layout(tab_id) == "stack"
    });
    tui.wait_text(&format!(
        "kitty layout: tab {tab_id} \"telepty\": grid → stack"
    ));
    // The dashboard's own panes kept their layout.
    assert!(tui_support::pane_text(&tui.capture(), "k1").is_some());

    // Focus each in turn: at least one of the two moves kitty's focus.
    let active = || -> Vec<u64> {
        k.rc.tab(tab_id)["windows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["is_active_window"] == json!(true) || x["is_active"] == json!(true))
            .filter_map(|x| x["id"].as_u64())
            .collect()
    };
    for id in ["k2", "k1"] {
        let w = wins.iter().find(|w| w["title"] == json!(id)).unwrap()["id"]
            .as_u64()
            .unwrap();
        tui.palette(&format!("kitty focus {id}"), 0);
        wait_until(T, &format!("{id}'s window active"), || active() == [w]);
        tui.wait_text(&format!("kitty focus: window {w} of {id} (tab {tab_id})"));
    }

    // A session that does not exist is refused in the palette, before kitty is asked.
    tui.palette("kitty open nope", 0);
    tui.wait_text("no session \"nope\"");
    tui.keys(&["Escape"]);
    assert_eq!(k.rc.tab(tab_id)["windows"].as_array().unwrap().len(), 2);
}
