use super::*;
use std::path::Path;

impl Config {
    /// `text` as config.toml over the defaults (no other file, no environment).
    pub(crate) fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        file::apply_toml(&mut c, text, file_name)?;
        Ok(c)
    }
}

fn parse_str(text: &str, name: &str) -> Result<Config, ConfigError> {
    Config::parse_str(text, name)
}

fn load_with(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    Config::load_toml_with(path, env)
}

#[test]
fn the_shipped_default_file_parses_to_the_defaults() {
    let s = parse_str(DEFAULT_CONFIG_TOML, "config.toml").unwrap();
    let d = Config::default();
    assert_eq!(s.daemon.port, d.daemon.port);
    assert_eq!(s.engine.scrollback_lines, d.engine.scrollback_lines);
    assert_eq!(s.recording.masks, d.recording.masks);
    for k in KEYS {
        assert_eq!(
            s.source(k),
            Source::Default,
            "{k} is set in the default file"
        );
    }
}

#[test]
fn type_errors_name_line_and_key() {
    let text = "theme = \"dark\"\n\n[engine]\nscrollback_lines = \"lots\"\n";
    let e = parse_str(text, "config.toml").unwrap_err().to_string();
    assert!(e.starts_with("config.toml:4: "), "{e}");
    assert!(e.ends_with("(key engine.scrollback_lines)"), "{e}");
}

#[test]
fn window_size_from_file_and_env() {
    let s = parse_str("[sessions]\nwindow_size = \"latest\"\n", "config.toml").unwrap();
    assert_eq!(s.window_size, WindowSize::Latest);
    assert_eq!(s.source("sessions.window_size"), Source::File);
    assert_eq!(s.value("sessions.window_size"), "\"latest\"");
    assert_eq!(Config::default().window_size, WindowSize::Smallest);
    let e = parse_str("[sessions]\nwindow_size = \"big\"\n", "config.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config.toml:2: window_size must be one of smallest, largest, latest or manual, \
         not \"big\" (key sessions.window_size)"
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    let env = |v: &'static str| move |k: &str| (k == "TELEPTY_WINDOW_SIZE").then(|| v.into());
    let s = load_with(&missing, env("manual")).unwrap();
    assert_eq!(s.window_size, WindowSize::Manual);
    let e = load_with(&missing, env("x")).unwrap_err().to_string();
    assert!(
        e.starts_with("TELEPTY_WINDOW_SIZE: window_size must be"),
        "{e}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let e = parse_str("[daemon]\nport = = 3\n", "config.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config.toml:2: "), "{e}");
}

#[test]
fn semantic_errors_name_line_and_key() {
    let e = parse_str("[daemon]\nhost = \"x\"\nport = 0\n", "config.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "config.toml:3: must be 1-65535 (key daemon.port)");
    let e = parse_str("[recording]\nmask = [\"(\"]\n", "config.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config.toml:2: invalid pattern"), "{e}");
    assert!(e.ends_with("(key recording.mask)"), "{e}");
    let e = parse_str("[engine]\nmemory_budget_mb = 1\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "c.toml:2: must be at least 16 (key engine.memory_budget_mb)"
    );
}

#[test]
fn trust_lists_accept_strings_and_arrays() {
    let s = parse_str("peer_allowlist = \"a, b\"\nallowed_hosts = [\"h\"]\n", "c").unwrap();
    assert_eq!(s.trust.peer_allowlist, ["a", "b"]);
    assert_eq!(s.trust.allowed_hosts, ["h"]);
    assert_eq!(s.source("peer_allowlist"), Source::File);
}

#[test]
fn env_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[engine]\nscrollback_lines = 200\nmemory_budget_mb = 64\n[inject]\nsubmit_min_ms = 10\n",
    )
    .unwrap();
    let s = load_with(&path, |k| {
        (k == "TELEPTY_SCROLLBACK_LINES").then(|| "300".into())
    })
    .unwrap();
    assert_eq!(s.engine.scrollback_lines, 300);
    assert_eq!(s.source("engine.scrollback_lines"), Source::Env);
    assert_eq!(s.engine.memory_budget_mb, 64);
    assert_eq!(s.source("engine.memory_budget_mb"), Source::File);
    assert_eq!(s.inject.submit_max_ms, 500);
    assert_eq!(s.source("inject.submit_max_ms"), Source::Default);
    assert_eq!(s.inject.submit_min_ms, 10);
    // A missing file is the defaults.
    let s = load_with(&dir.path().join("nope.toml"), |_| None).unwrap();
    assert_eq!(s, Config::default());
    // An invalid env port is an error naming the variable.
    let e = load_with(&path, |k| (k == "TELEPTY_PORT").then(|| "x".into())).unwrap_err();
    assert_eq!(e.to_string(), "TELEPTY_PORT: not a valid port: \"x\"");
}

#[test]
fn flags_beat_env_beat_file_beat_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "theme = \"light\"\n[daemon]\nhost = \"0.0.0.0\"\nport = 4000\n",
    )
    .unwrap();
    let env_of = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let shown = |s: &Config, k: &str| (s.value(k), s.source(k));

    // Default (no file).
    let mut s = load_with(&dir.path().join("none.toml"), env_of(&[])).unwrap();
    assert_eq!(shown(&s, "daemon.port"), ("3848".into(), Source::Default));
    assert_eq!(
        shown(&s, "daemon.host"),
        ("\"127.0.0.1\"".into(), Source::Default)
    );
    // Flags on top of the defaults.
    s.apply_flags(&Flags {
        host: Some("::1".into()),
        port: Some(4200),
        theme: Some("dark".into()),
    });
    assert_eq!(shown(&s, "daemon.port"), ("4200".into(), Source::Flag));
    assert_eq!(shown(&s, "daemon.host"), ("\"::1\"".into(), Source::Flag));
    assert_eq!(shown(&s, "theme"), ("\"dark\"".into(), Source::Flag));

    // File over defaults.
    let s = load_with(&path, env_of(&[])).unwrap();
    assert_eq!(shown(&s, "daemon.port"), ("4000".into(), Source::File));
    assert_eq!(
        shown(&s, "daemon.host"),
        ("\"0.0.0.0\"".into(), Source::File)
    );
    assert_eq!(shown(&s, "theme"), ("\"light\"".into(), Source::File));

    // Env over file: PORT before TELEPTY_PORT, HOST (never TELEPTY_HOST).
    let mut s = load_with(
        &path,
        env_of(&[
            ("PORT", "5000"),
            ("TELEPTY_PORT", "5001"),
            ("HOST", "127.0.0.2"),
            ("TELEPTY_HOST", "box"),
        ]),
    )
    .unwrap();
    assert_eq!(shown(&s, "daemon.port"), ("5000".into(), Source::Env));
    assert_eq!(
        shown(&s, "daemon.host"),
        ("\"127.0.0.2\"".into(), Source::Env)
    );
    let t = load_with(&path, env_of(&[("TELEPTY_PORT", "5001")])).unwrap();
    assert_eq!(shown(&t, "daemon.port"), ("5001".into(), Source::Env));

    // Flags over env; absent flags change nothing.
    s.apply_flags(&Flags::default());
    assert_eq!(shown(&s, "daemon.port"), ("5000".into(), Source::Env));
    s.apply_flags(&Flags {
        port: Some(6000),
        ..Flags::default()
    });
    assert_eq!(shown(&s, "daemon.port"), ("6000".into(), Source::Flag));
    assert_eq!(
        shown(&s, "daemon.host"),
        ("\"127.0.0.2\"".into(), Source::Env)
    );
    assert_eq!(shown(&s, "theme"), ("\"light\"".into(), Source::File));
}

#[test]
fn daemon_section_is_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    // Missing file: nothing set.
    assert_eq!(daemon_section(&path).unwrap(), DaemonSection::default());
    std::fs::write(&path, "[daemon]\nport = 4000\n").unwrap();
    assert_eq!(
        daemon_section(&path).unwrap(),
        DaemonSection {
            host: None,
            port: Some(4000)
        }
    );
    std::fs::write(&path, "[daemon]\nhost = \" :: \"\n").unwrap();
    assert_eq!(
        daemon_section(&path).unwrap(),
        DaemonSection {
            host: Some("::".into()),
            port: None
        }
    );
    // An invalid file anywhere is an error, naming line and key.
    std::fs::write(
        &path,
        "[daemon]\nport = 4000\n[engine]\nscrollback_lines = \"x\"\n",
    )
    .unwrap();
    let e = daemon_section(&path).unwrap_err().to_string();
    assert!(e.starts_with("config.toml:4: "), "{e}");
    assert!(e.ends_with("(key engine.scrollback_lines)"), "{e}");
}

#[test]
fn tui_keys_top_level_or_section() {
    let s = parse_str("theme = \"light\"\nprefix = \"ctrl+b\"\n", "c").unwrap();
    assert_eq!(s.tui.theme.as_deref(), Some("light"));
    assert_eq!(s.tui.prefix.as_deref(), Some("ctrl+b"));
    let s = parse_str("[tui]\ntheme = \"x\"\nprefix = \"ctrl+a\"\n", "c").unwrap();
    assert_eq!(s.tui.theme.as_deref(), Some("x"));
    assert_eq!(s.tui.output_fps, 10, "the default");
    let s = parse_str("[tui]\noutput_fps = 30\n", "c").unwrap();
    assert_eq!(s.tui.output_fps, 30);
    let s = parse_str("[tui]\noutput_fps = 500\n", "c").unwrap();
    assert_eq!(s.tui.output_fps, 60, "clamped to 1-60");
}

#[test]
fn resume_merges_over_the_defaults_and_resurrect_env_replaces() {
    let s = parse_str(
        "[resume]\nclaude = [\"--resume\"]\naider = [\"--restore-chat-history\"]\ngemini = []\n[resurrect]\nenv = [\"LANG\"]\n",
        "c",
    )
    .unwrap();
    assert_eq!(s.resume["claude"], ["--resume"]);
    assert_eq!(s.resume["codex"], ["resume", "--last"]);
    assert!(s.resume["gemini"].is_empty());
    assert_eq!(s.resume["aider"], ["--restore-chat-history"]);
    assert_eq!(s.resurrect_env, ["LANG"]);
    assert_eq!(s.source("resume"), Source::File);
    assert_eq!(s.source("resurrect.env"), Source::File);
    assert_eq!(
        Config::default().value("resume"),
        "{ claude = [\"--continue\"], codex = [\"resume\", \"--last\"], gemini = [\"--resume\", \"latest\"] }"
    );
    let e = parse_str("[resume]\n\"/bin/claude\" = []\n", "c")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "c:2: must be a command name (no path, no spaces) (key resume./bin/claude)"
    );
    let e = parse_str("[resume]\nclaude = \"--continue\"\n", "c")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("c:2: "), "{e}");
    let e = parse_str("[resurrect]\nenv = [\"A=B\"]\n", "c")
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("(key resurrect.env)"), "{e}");
}

#[test]
fn peers_are_counted_and_unknown_keys_accepted() {
    let s = parse_str(
        "discover_tailscale = true\n[[peers]]\nname = \"box\"\nurl = \"http://box:3848\"\n",
        "c",
    )
    .unwrap();
    assert_eq!(s.peers.len(), 1);
}

/// The bug this module exists to prevent: `TELEPTY_TRUST_TAILSCALE=on` was true in
/// `config show` and false in the daemon's guard, which read the variable with its own parser.
/// Both now read `Config::trust`, filled by the one boolean parser.
#[test]
fn every_spelling_of_true_reaches_the_trust_settings_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    for (v, want) in [
        ("1", true),
        ("true", true),
        ("yes", true),
        ("on", true),
        ("ON", true),
        (" True ", true),
        ("0", false),
        ("off", false),
        ("no", false),
    ] {
        let c = load_with(&missing, |k| {
            (k == "TELEPTY_TRUST_TAILSCALE").then(|| v.to_string())
        })
        .unwrap();
        assert_eq!(c.trust.trust_tailscale, want, "{v:?}");
        assert_eq!(c.value("trust_tailscale"), want.to_string(), "{v:?}");
        assert_eq!(c.source("trust_tailscale"), Source::Env);
        // The recording switch reads booleans the same way.
        let c = load_with(&missing, |k| {
            (k == "TELEPTY_RECORD_SESSIONS").then(|| v.to_string())
        })
        .unwrap();
        assert_eq!(c.recording.enabled, want, "{v:?}");
    }
    // An empty variable is unset: the file's value stays.
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "trust_tailscale = true\n").unwrap();
    let c = load_with(&path, |k| {
        (k == "TELEPTY_TRUST_TAILSCALE").then(String::new)
    })
    .unwrap();
    assert!(c.trust.trust_tailscale);
    assert_eq!(c.source("trust_tailscale"), Source::File);
}

#[test]
fn config_json_trust_keys_are_read_under_config_toml() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths {
        home: home.path().to_path_buf(),
    };
    std::fs::create_dir_all(paths.telepty_dir()).unwrap();
    std::fs::write(
        paths.config_json(),
        r#"{"authToken":"t","trust_tailscale":"on","allowed_origins":["http://a"],"peer_allowlist":"10.0.0.0/8, 10.1.0.0/16"}"#,
    )
    .unwrap();
    let c = Config::load_with(&paths, |_| None).unwrap();
    assert!(c.trust.trust_tailscale);
    assert_eq!(c.trust.allowed_origins, ["http://a"]);
    assert_eq!(c.trust.peer_allowlist, ["10.0.0.0/8", "10.1.0.0/16"]);
    assert_eq!(c.source("allowed_origins"), Source::File);
    // config.toml over config.json, the environment over both.
    if paths.config_toml() == home.path().join(".config/telepty/config.toml") {
        std::fs::create_dir_all(home.path().join(".config/telepty")).unwrap();
        std::fs::write(paths.config_toml(), "allowed_origins = [\"http://b\"]\n").unwrap();
        let c = Config::load_with(&paths, |k| {
            (k == "TELEPTY_TRUST_TAILSCALE").then(|| "0".into())
        })
        .unwrap();
        assert_eq!(c.trust.allowed_origins, ["http://b"]);
        assert!(!c.trust.trust_tailscale);
    }
}

#[test]
fn engine_knobs_have_one_default_and_their_floors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    let c = load_with(&missing, |_| None).unwrap();
    assert_eq!(c.engine, Config::default().engine);
    assert_eq!(c.engine.cleanup_secs, 300);
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = load_with(
        &missing,
        env(&[
            ("TELEPTY_HEALTH_POLL_MS", "5"),
            ("TELEPTY_SESSION_STALE_SECONDS", "900"),
            ("TELEPTY_AUTO_REPORT_IDLE_SECONDS", "0"),
            ("TELEPTY_MEMORY_BUDGET_MB", "1"),
            ("TELEPTY_DELIVERY_TIMEOUT_MS", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.engine.health_poll_ms, 100);
    assert_eq!(c.engine.stale_secs, 900);
    assert_eq!(c.engine.cleanup_secs, 900, "never before stale");
    assert_eq!(c.engine.auto_report_idle_secs, 10);
    assert_eq!(c.engine.memory_budget_mb, 16);
    assert_eq!(c.engine.delivery_timeout_ms, 5000);
}

#[test]
fn kitty_and_discovery_come_from_the_same_file() {
    let c = parse_str(
        "discover_tailscale = true\n[kitty]\npassword = \"pw\"\nlayout = \"tall\"\nto = \"unix:/k\"\n",
        "c",
    )
    .unwrap();
    assert!(c.discover_tailscale);
    assert_eq!(c.kitty.password.as_deref(), Some("pw"));
    assert_eq!(c.kitty.layout.as_deref(), Some("tall"));
    assert_eq!(c.kitty.to.as_deref(), Some("unix:/k"));
    let e = parse_str("[kitty]\nto = 5\n", "c").unwrap_err().to_string();
    assert!(e.starts_with("c:2: "), "{e}");
}

#[test]
fn peers_entries_without_name_or_url_are_skipped() {
    let c = parse_str(
        "[[peers]]\nname = \"lab\"\nurl = \"http://10.1.2.3:3900\"\ntoken = \"tok\"\n\
         [[peers]]\nname = \"notoken\"\nurl = \"http://10.1.2.4:3848\"\ntoken = \"\"\n\
         [[peers]]\nname = \"nourl\"\n",
        "c",
    )
    .unwrap();
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.peers[0].token.as_deref(), Some("tok"));
    assert_eq!(c.peers[1].token, None);
    assert!(!c.discover_tailscale);
}

mod edits {
    use super::*;

    fn peer(name: &str, token: Option<&str>) -> Peer {
        Peer {
            name: name.into(),
            url: "http://10.1.2.3:3900".into(),
            token: token.map(str::to_string),
        }
    }

    #[test]
    fn the_commented_default_file_survives_add_and_remove() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, DEFAULT_CONFIG_TOML).unwrap();
        assert!(!add_peer(&path, &peer("lab", Some("secret"))).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(DEFAULT_CONFIG_TOML), "{text}");
        assert_eq!(
            &text[DEFAULT_CONFIG_TOML.len()..],
            "\n[[peers]]\nname = \"lab\"\nurl = \"http://10.1.2.3:3900\"\ntoken = \"secret\"\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = Config::parse_str(&text, "c").unwrap();
        assert_eq!(c.peers, [peer("lab", Some("secret"))]);

        assert!(!add_peer(&path, &peer("box", None)).unwrap());
        assert!(
            add_peer(&path, &peer("lab", None)).unwrap(),
            "same name replaces"
        );
        let c = Config::parse_str(&std::fs::read_to_string(&path).unwrap(), "c").unwrap();
        assert_eq!(c.peers, [peer("lab", None), peer("box", None)]);

        assert!(remove_peer(&path, "lab").unwrap());
        assert!(!remove_peer(&path, "lab").unwrap());
        assert!(remove_peer(&path, "box").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), DEFAULT_CONFIG_TOML);
    }

    #[test]
    fn a_replaced_entry_keeps_its_comments_and_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = "# top\ntheme = \"light\" # mine\n\n# the lab box\n[[peers]]\nname = \"lab\"\nurl = \"http://old:1\"   # moved\nnote = \"x\"\ntoken = \"t\"\n\n# after\n[tui]\nprefix = \"ctrl+b\"\n";
        std::fs::write(&path, text).unwrap();
        assert!(add_peer(&path, &peer("lab", None)).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text.replace("http://old:1", "http://10.1.2.3:3900")
                .replace("token = \"t\"\n", "")
        );
        // Removing it keeps the comment that preceded it, in front of what follows.
        assert!(remove_peer(&path, "lab").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# top\ntheme = \"light\" # mine\n\n# the lab box\n\n# after\n[tui]\nprefix = \"ctrl+b\"\n"
        );
    }

    #[test]
    fn inline_peer_arrays_and_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "peers = [{ name = \"a\", url = \"http://a:1\" }]\n").unwrap();
        assert!(!add_peer(&path, &peer("b", None)).unwrap());
        let c = Config::parse_str(&std::fs::read_to_string(&path).unwrap(), "c").unwrap();
        assert_eq!(c.peers.len(), 2);
        assert!(remove_peer(&path, "a").unwrap());
        assert!(remove_peer(&path, "b").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "");

        std::fs::write(&path, "peers = 3\n").unwrap();
        let e = add_peer(&path, &peer("b", None)).unwrap_err().to_string();
        assert!(e.contains("not an array of tables"), "{e}");
        std::fs::write(&path, "this is = = not toml").unwrap();
        let e = add_peer(&path, &peer("b", None)).unwrap_err().to_string();
        assert!(e.starts_with("cannot parse "), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "this is = = not toml"
        );
        // A missing file is created.
        let fresh = dir.path().join("sub/new.toml");
        assert!(!add_peer(&fresh, &peer("a", None)).unwrap());
        assert_eq!(
            std::fs::read_to_string(&fresh).unwrap(),
            "[[peers]]\nname = \"a\"\nurl = \"http://10.1.2.3:3900\"\n"
        );
    }
}
