//! `telepty config`, `completions`, `man` and `service`, run as the real binary against a
//! temporary HOME.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_telepty")
}

/// The binary with a clean environment: only HOME and PATH (plus `extra`).
fn run(home: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().expect("run telepty")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show_line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}

#[test]
fn config_path_follows_xdg_and_telepty_config() {
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), &["config", "path"], &[]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        home.path()
            .join(".config/telepty/config.toml")
            .to_str()
            .unwrap()
    );
    let o = run(
        home.path(),
        &["config", "path"],
        &[("XDG_CONFIG_HOME", "/x/cfg")],
    );
    assert_eq!(stdout(&o).trim(), "/x/cfg/telepty/config.toml");
    let o = run(
        home.path(),
        &["config", "path"],
        &[("TELEPTY_CONFIG", "/y/t.toml")],
    );
    assert_eq!(stdout(&o).trim(), "/y/t.toml");
}

#[test]
fn init_writes_the_commented_default_and_refuses_to_overwrite() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/telepty/config.toml");
    let o = run(home.path(), &["config", "init"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, include_str!("../../assets/config.toml"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Every non-blank line of the default file is a comment or a section header.
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('#') || line.starts_with('['),
            "uncommented: {line}"
        );
    }

    std::fs::write(&path, "theme = \"mine\"\n").unwrap();
    let o = run(home.path(), &["config", "init"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already exists (use --force to overwrite)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "theme = \"mine\"\n"
    );

    let o = run(home.path(), &["config", "init", "--force"], &[]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        include_str!("../../assets/config.toml")
    );

    // The commented default file means the defaults.
    let o = run(home.path(), &["config", "show"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines().skip(1).all(|l| l.ends_with("# default")),
        "{out}"
    );
}

#[test]
fn show_reports_values_and_their_source() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("c.toml");
    std::fs::write(
        &path,
        "trust_tailscale = true\ntheme = \"light\"\n\n[daemon]\nport = 4000\n\n[engine]\nscrollback_lines = 200\n\n[spawn]\nshell = \"/bin/zsh\"\n\n[[peers]]\nname = \"box\"\nurl = \"http://box:3848\"\n",
    )
    .unwrap();
    let o = run(
        home.path(),
        &["config", "show"],
        &[
            ("TELEPTY_CONFIG", path.to_str().unwrap()),
            ("TELEPTY_SCROLLBACK_LINES", "5000"),
            ("TELEPTY_SUBMIT_MAX_MS", "900"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with(&format!("# {}\n", path.display())), "{out}");
    assert!(show_line(&out, "daemon.port").ends_with("= 4000  # file"));
    assert!(show_line(&out, "daemon.host").ends_with("= \"127.0.0.1\"  # default"));
    assert!(show_line(&out, "trust_tailscale").ends_with("= true  # file"));
    assert!(show_line(&out, "engine.scrollback_lines").ends_with("= 5000  # env"));
    assert!(show_line(&out, "inject.submit_max_ms").ends_with("= 900  # env"));
    assert!(show_line(&out, "spawn.shell").ends_with("= \"/bin/zsh\"  # file"));
    assert!(show_line(&out, "theme").ends_with("= \"light\"  # file"));
    assert!(show_line(&out, "peers").ends_with("= 1 configured  # file"));
}

#[test]
fn an_invalid_file_is_an_error_naming_line_and_key() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/telepty/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "# mine\n[daemon]\nhost = \"0.0.0.0\"\nport = \"high\"\n",
    )
    .unwrap();
    let o = run(home.path(), &["config", "show"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("telepty: invalid configuration: config.toml:4: "),
        "{err}"
    );
    assert!(err.trim_end().ends_with("(key daemon.port)"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    std::fs::write(&path, "[engine\nscrollback_lines = 1\n").unwrap();
    let o = run(home.path(), &["config", "show"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.toml:1: "), "{}", stderr(&o));
}

#[test]
fn peers_add_and_remove_keep_the_comments_of_config_init() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".config/telepty/config.toml");
    assert!(run(home.path(), &["config", "init"], &[]).status.success());
    let default = include_str!("../../assets/config.toml");
    let add = |name: &str| {
        let o = run(
            home.path(),
            &["peers", "add", name, "10.0.0.2:3900", "--token", "t"],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    };
    add("lab");
    add("box");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(default), "comments lost:\n{text}");
    assert_eq!(
        &text[default.len()..],
        "\n[[peers]]\nname = \"lab\"\nurl = \"http://10.0.0.2:3900\"\ntoken = \"t\"\n\n\
         [[peers]]\nname = \"box\"\nurl = \"http://10.0.0.2:3900\"\ntoken = \"t\"\n"
    );
    let o = run(home.path(), &["config", "show"], &[]);
    assert!(show_line(&stdout(&o), "peers").ends_with("= 2 configured  # file"));
    for name in ["lab", "box"] {
        let o = run(home.path(), &["peers", "remove", name], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), default);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn show_prints_the_trust_the_daemon_uses() {
    let home = tempfile::tempdir().unwrap();
    // `on` was true here and false for the daemon's guard (two parsers); now one.
    let o = run(
        home.path(),
        &["config", "show"],
        &[("TELEPTY_TRUST_TAILSCALE", "on")],
    );
    assert!(show_line(&stdout(&o), "trust_tailscale").ends_with("= true  # env"));
    // config.json's trust keys (API.md §16), which the daemon always read, show too.
    std::fs::create_dir_all(home.path().join(".telepty")).unwrap();
    std::fs::write(
        home.path().join(".telepty/config.json"),
        r#"{"authToken":"x","allowed_origins":["http://a.example"]}"#,
    )
    .unwrap();
    let o = run(home.path(), &["config", "show"], &[]);
    let out = stdout(&o);
    assert!(
        show_line(&out, "allowed_origins").ends_with("= [\"http://a.example\"]  # file"),
        "{out}"
    );
}

#[test]
fn bash_completion_loads() {
    let home = tempfile::tempdir().unwrap();
    let script = format!(
        "source <('{}' completions bash) && complete -p telepty",
        bin()
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .env("HOME", home.path())
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("complete ") && out.trim_end().ends_with(" telepty"),
        "{out}"
    );
}

#[test]
fn zsh_and_fish_completions_generate() {
    let home = tempfile::tempdir().unwrap();
    for (shell, marker) in [("zsh", "#compdef telepty"), ("fish", "complete -c telepty")] {
        let o = run(home.path(), &["completions", shell], &[]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        assert!(stdout(&o).contains(marker), "{shell}");
        // Syntax-check with the shell itself when it is installed.
        let has = Command::new(shell)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if has {
            let f = home.path().join(format!("telepty.{shell}"));
            std::fs::write(&f, &o.stdout).unwrap();
            let check = Command::new(shell).arg("-n").arg(&f).output().unwrap();
            assert!(check.status.success(), "{shell} -n: {}", stderr(&check));
        }
    }
    let o = run(home.path(), &["completions", "powershell"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_prints_roff() {
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), &["man"], &[]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains(".TH telepty 1"),
        "{}",
        &out[..200.min(out.len())]
    );
    assert!(out.contains("spawn"));
}

#[test]
fn service_dry_run_prints_the_unit_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), &["service", "install", "--dry-run"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let unit = home.path().join(".config/systemd/user/telepty.service");
    assert!(
        out.starts_with(&format!("# would write {}\n", unit.display())),
        "{out}"
    );
    let exe = std::fs::canonicalize(bin()).unwrap();
    assert!(
        out.contains(&format!("ExecStart=\"{}\" daemon\n", exe.display())),
        "{out}"
    );
    assert!(out.contains("Restart=on-failure\n"));
    assert!(out.contains("[Install]\nWantedBy=default.target\n"));
    assert!(out.trim_end().ends_with("# then run: systemctl --user daemon-reload && systemctl --user enable --now telepty.service"), "{out}");
    assert!(
        !home.path().join(".config").exists(),
        "dry run wrote something"
    );

    let o = run(home.path(), &["service", "uninstall", "--dry-run"], &[]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("# would run: systemctl --user disable --now telepty.service"));
}

#[test]
fn service_install_status_uninstall_without_a_user_bus() {
    let home = tempfile::tempdir().unwrap();
    // No DBUS_SESSION_BUS_ADDRESS and a runtime dir without a bus: nothing is run.
    let rt = home.path().join("run");
    std::fs::create_dir_all(&rt).unwrap();
    let env = [("XDG_RUNTIME_DIR", rt.to_str().unwrap())];
    let unit = home.path().join(".config/systemd/user/telepty.service");

    let o = run(home.path(), &["service", "status"], &env);
    assert!(o.status.success());
    assert!(stdout(&o).contains("not installed"));

    let o = run(home.path(), &["service", "install"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("wrote {}", unit.display())), "{out}");
    assert!(out.contains("to enable and start it, run: systemctl --user daemon-reload && systemctl --user enable --now telepty.service"), "{out}");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains(" daemon\nRestart=on-failure\n"), "{text}");
    assert!(!text.contains("{{"));

    let o = run(home.path(), &["service", "status"], &env);
    assert!(stdout(&o).contains(": installed"), "{}", stdout(&o));

    let o = run(home.path(), &["service", "uninstall"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("removed {}", unit.display())));
    assert!(!unit.exists());
}

#[test]
fn daemon_logs_to_the_state_dir_and_stderr() {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TELEPTY_LOG", "info")
        .args(["daemon", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = home.path().join(".local/state/telepty/telepty.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("serving on") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        text.contains(&format!("serving on 127.0.0.1:{port}")),
        "log: {text:?}"
    );
    assert!(!text.contains('\u{1b}'), "colour in the log file");
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("serving on"),
        "no stderr log"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(home: &Path, text: &str) -> std::path::PathBuf {
    let path = home.join(".config/telepty/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Stops the daemon recorded in `<home>/.telepty/daemon-state.json` (one the CLI started
/// detached) on drop, by its pid: SIGTERM, then SIGKILL if it lingers.
struct StateDaemon<'a> {
    home: &'a Path,
}

impl StateDaemon<'_> {
    fn state(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.home.join(".telepty/daemon-state.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl Drop for StateDaemon<'_> {
    fn drop(&mut self) {
        let Some(pid) = self
            .state()
            .and_then(|s| s["pid"].as_i64())
            .filter(|&p| p > 1)
        else {
            return;
        };
        let pid = pid as i32;
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if pid_alive(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Wait for `child` at most `secs` seconds; kill it and panic if it is still running.
fn wait_with_timeout(mut child: std::process::Child, secs: u64, what: &str) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{what} still running after {secs} s; stderr: {}",
                stderr(&o)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn cli_starts_and_reaches_the_daemon_on_the_config_file_port() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    // The file found through XDG_CONFIG_HOME, as the daemon started for the CLI finds it too.
    let xdg = home.path().join("xdg");
    let path = xdg.join("telepty/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("[daemon]\nport = {port}\n")).unwrap();
    let daemon = StateDaemon { home: home.path() };
    // No TELEPTY_PORT / TELEPTY_HOST: `run` starts from an empty environment.
    let o = run(
        home.path(),
        &["list", "--json"],
        &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())],
    );
    assert!(o.status.success(), "list failed: {}", stderr(&o));
    let state = daemon
        .state()
        .expect("no daemon-state.json: no daemon started");
    assert_eq!(state["port"].as_u64(), Some(u64::from(port)), "{state}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "nothing listens on the file's port {port}"
    );
    // The next command talks to that daemon (no second start).
    let pid = state["pid"].as_i64().unwrap();
    let o = run(
        home.path(),
        &["status"],
        &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(" (pid {pid}) at 127.0.0.1:{port}\n")),
        "{out}"
    );
}

#[test]
fn daemon_and_cli_use_the_config_file_address() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    // An unspecified bind address: the daemon binds it, the CLI connects to loopback.
    write_config(
        home.path(),
        &format!("[daemon]\nhost = \"0.0.0.0\"\nport = {port}\n"),
    );
    let child = Command::new(bin())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("daemon")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let _child = Kill(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "`telepty daemon` does not listen on the file's port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join(".telepty/daemon-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["host"], "0.0.0.0", "{state}");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(pid)), "{state}");

    // The CLI reaches this daemon on loopback (rather than starting one on 3848).
    let o = run(home.path(), &["status"], &[]);
    assert!(o.status.success(), "status failed: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(" (pid {pid}) at 127.0.0.1:{port}\n")),
        "{out}"
    );
}

#[test]
fn an_invalid_file_stops_client_commands_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let _daemon = StateDaemon { home: home.path() };
    write_config(home.path(), "# mine\n[daemon]\nport = \"high\"\n");
    let o = run(home.path(), &["list"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("telepty: invalid configuration: config.toml:3: "),
        "{err}"
    );
    assert!(err.trim_end().ends_with("(key daemon.port)"), "{err}");
    // Even with the whole address in the environment, and for any invalid key.
    write_config(home.path(), "[engine]\nmemory_budget_mb = 1\n");
    let o = run(
        home.path(),
        &["list"],
        &[("TELEPTY_HOST", "127.0.0.1"), ("TELEPTY_PORT", "1")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        "telepty: invalid configuration: config.toml:2: must be at least 16 (key engine.memory_budget_mb)"
    );
    // Commands that take a session argument fail the same way (not as a usage error).
    for args in [
        &["inject", "w1", "hi"][..],
        &["read-screen", "w1"],
        &["multicast", "a,b", "x"],
    ] {
        let o = run(home.path(), args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim_end(),
            "telepty: invalid configuration: config.toml:2: must be at least 16 (key engine.memory_budget_mb)",
            "{args:?}"
        );
    }
    assert!(
        !home.path().join(".telepty/daemon-state.json").exists(),
        "a daemon was started despite the invalid file"
    );
}

#[test]
fn show_flags_beat_env_beat_file() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        "theme = \"light\"\n[daemon]\nhost = \"0.0.0.0\"\nport = 4000\n",
    );
    let show = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["config", "show"];
        all.extend_from_slice(args);
        let o = run(home.path(), &all, env);
        assert!(o.status.success(), "{all:?}: {}", stderr(&o));
        stdout(&o)
    };
    let out = show(&[], &[]);
    assert!(
        show_line(&out, "daemon.port").ends_with("= 4000  # file"),
        "{out}"
    );
    assert!(show_line(&out, "daemon.host").ends_with("= \"0.0.0.0\"  # file"));
    assert!(show_line(&out, "theme").ends_with("= \"light\"  # file"));

    let env = [("PORT", "5000"), ("HOST", "127.0.0.2")];
    let out = show(&[], &env);
    assert!(
        show_line(&out, "daemon.port").ends_with("= 5000  # env"),
        "{out}"
    );
    assert!(show_line(&out, "daemon.host").ends_with("= \"127.0.0.2\"  # env"));

    let out = show(&["--port", "6000"], &env);
    assert!(
        show_line(&out, "daemon.port").ends_with("= 6000  # flag"),
        "{out}"
    );
    assert!(show_line(&out, "daemon.host").ends_with("= \"127.0.0.2\"  # env"));

    let out = show(
        &[
            "--host",
            "::1",
            "--port",
            "6000",
            "--theme",
            "high-contrast",
        ],
        &env,
    );
    assert!(
        show_line(&out, "daemon.host").ends_with("= \"::1\"  # flag"),
        "{out}"
    );
    assert!(show_line(&out, "theme").ends_with("= \"high-contrast\"  # flag"));
    // Everything else is untouched by the flags.
    assert!(show_line(&out, "engine.scrollback_lines").ends_with("# default"));

    // The same validation as `telepty daemon --port`.
    let o = run(home.path(), &["config", "show", "--port", "0"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn tui_refuses_an_invalid_file_before_touching_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        "theme = \"dark\"\n\n[engine]\nscrollback_lines = \"lots\"\n",
    );
    // No terminal at all: the check must come first.
    let child = Command::new(bin())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("tui")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_with_timeout(child, 20, "telepty tui");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "wrote to the terminal: {:?}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("telepty: invalid configuration: config.toml:4: "),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with("(key engine.scrollback_lines)"),
        "{err}"
    );
    assert!(
        !home.path().join(".telepty/daemon-state.json").exists(),
        "the dashboard started a server"
    );
}
