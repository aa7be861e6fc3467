//! The typed model of `~/.config/telepty/config.toml` and the effective settings.
//!
//! Precedence: flags > environment > file > defaults. [`load`] resolves file and environment
//! (flags are applied by each command on top, [`Settings::apply_flags`]) and remembers where
//! every value came from, for `telepty config show`. An invalid file is an error naming the line and the key; it is never
//! silently replaced by defaults.
//!
//! Unknown keys are accepted (other tools and later versions may add some); `[[peers]]` keeps
//! the format read and written by `src/client/peers.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Paths;
use crate::engine::WindowSize;

/// The commented default file written by `telepty config init`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../assets/config.toml");

/// Secret patterns masked in recordings when `[recording] mask` is not set.
pub const DEFAULT_MASKS: &[&str] = &[
    r"sk-[A-Za-z0-9_-]{20,}",
    r"ghp_[A-Za-z0-9]{36}",
    r"github_pat_[A-Za-z0-9_]{22,}",
    r"AKIA[0-9A-Z]{16}",
    r"xox[baprs]-[A-Za-z0-9-]{10,}",
];

/// Resume arguments per command, used only when `telepty resurrect` restarts a lost session
/// (each verified against the CLI's own `--help`: Claude Code 2.1 `--continue`, "continue the
/// most recent conversation in the current directory"; Codex 0.171 `resume --last`; Gemini CLI
/// 0.61 `--resume latest`).
pub fn default_resume() -> BTreeMap<String, Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    BTreeMap::from([
        ("claude".to_string(), v(&["--continue"])),
        ("codex".to_string(), v(&["resume", "--last"])),
        ("gemini".to_string(), v(&["--resume", "latest"])),
    ])
}

/// Environment variables a spawned session's entry in sessions.json keeps for a resurrection.
/// Never secrets by default: only what locates programs and sets the locale.
pub const DEFAULT_RESURRECT_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        })
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `config.toml:LINE: <message> (key <k>)`
    #[error("{file}:{line}: {message}{}", key.as_ref().map(|k| format!(" (key {k})")).unwrap_or_default())]
    Invalid {
        file: String,
        line: usize,
        key: Option<String>,
        message: String,
    },
    /// An environment variable with a value that cannot be used.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
}

/// The effective settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `[daemon] host` (env `HOST`)
    pub host: String,
    /// `[daemon] port` (env `PORT`, then `TELEPTY_PORT`)
    pub port: u16,
    pub peer_allowlist: Vec<String>,
    pub trust_tailscale: bool,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    /// `[engine] scrollback_lines` (env `TELEPTY_SCROLLBACK_LINES`)
    pub scrollback_lines: u64,
    /// `[engine] memory_budget_mb` (env `TELEPTY_MEMORY_BUDGET_MB`, at least 16)
    pub memory_budget_mb: u64,
    /// `[inject] submit_min_ms` (env `TELEPTY_SUBMIT_MIN_MS`)
    pub submit_min_ms: u64,
    /// `[inject] submit_quiet_ms` (env `TELEPTY_SUBMIT_QUIET_MS`)
    pub submit_quiet_ms: u64,
    /// `[inject] submit_max_ms` (env `TELEPTY_SUBMIT_MAX_MS`)
    pub submit_max_ms: u64,
    /// `[spawn] shell` (env `TELEPTY_SHELL`); `None`: `$SHELL`, else `/bin/sh`
    pub shell: Option<String>,
    /// `theme` (top level, or `[tui] theme`; the `tui --theme` flag overrides it)
    pub theme: Option<String>,
    /// `[tui] prefix` (or top-level `prefix`; env `TELEPTY_TUI_PREFIX`)
    pub tui_prefix: Option<String>,
    /// `[recording] enabled` (env `TELEPTY_RECORD_SESSIONS`)
    pub record_sessions: bool,
    /// `[recording] mask`: regexes masked in recordings
    pub record_masks: Vec<String>,
    /// `[sessions] window_size` (env `TELEPTY_WINDOW_SIZE`): how viewers' sizes pick a
    /// session's size
    pub window_size: WindowSize,
    /// Number of `[[peers]]` entries (the entries themselves are read by `client::peers`).
    pub peers: usize,
    /// `[resume]`: command name → arguments added when a lost session is resurrected. The
    /// file's entries are merged over [`default_resume`]; an empty list turns one off.
    pub resume: BTreeMap<String, Vec<String>>,
    /// `[resurrect] env`: the variables kept for a resurrection.
    pub resurrect_env: Vec<String>,
    sources: BTreeMap<&'static str, Source>,
}

/// The values the engine's env knobs should default to (file over built-in defaults), for
/// `EngineSettings::from_env`: `env_u64("TELEPTY_SCROLLBACK_LINES", d.scrollback_lines, 0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineDefaults {
    pub scrollback_lines: u64,
    pub memory_budget_mb: u64,
    pub submit_min_ms: u64,
    pub submit_quiet_ms: u64,
    pub submit_max_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: "127.0.0.1".into(),
            port: 3848,
            peer_allowlist: Vec::new(),
            trust_tailscale: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            scrollback_lines: 1000,
            memory_budget_mb: 512,
            submit_min_ms: 150,
            submit_quiet_ms: 50,
            submit_max_ms: 500,
            shell: None,
            theme: None,
            tui_prefix: None,
            record_sessions: false,
            record_masks: DEFAULT_MASKS.iter().map(|s| s.to_string()).collect(),
            window_size: WindowSize::default(),
            peers: 0,
            resume: default_resume(),
            resurrect_env: DEFAULT_RESURRECT_ENV
                .iter()
                .map(|s| s.to_string())
                .collect(),
            sources: BTreeMap::new(),
        }
    }
}

/// Every key `config show` prints, in order.
pub const KEYS: &[&str] = &[
    "daemon.host",
    "daemon.port",
    "peer_allowlist",
    "trust_tailscale",
    "allowed_origins",
    "allowed_hosts",
    "engine.scrollback_lines",
    "engine.memory_budget_mb",
    "inject.submit_min_ms",
    "inject.submit_quiet_ms",
    "inject.submit_max_ms",
    "spawn.shell",
    "theme",
    "tui.prefix",
    "recording.enabled",
    "recording.mask",
    "sessions.window_size",
    "peers",
    "resume",
    "resurrect.env",
];

/// The command-line flags that override settings: `daemon` / `tui` `--host`, `--port`, and
/// `tui --theme`. `None` leaves the value from the environment, file or defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub theme: Option<String>,
}

/// `[daemon] host` and `port` as config.toml sets them (validated; no environment, no
/// defaults), for clients that layer their own environment on top.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonSection {
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl Settings {
    /// Apply command-line flags, the top layer (their source becomes [`Source::Flag`]).
    pub fn apply_flags(&mut self, flags: &Flags) {
        if let Some(h) = &flags.host {
            self.host = h.clone();
            self.sources.insert("daemon.host", Source::Flag);
        }
        if let Some(p) = flags.port {
            self.port = p;
            self.sources.insert("daemon.port", Source::Flag);
        }
        if let Some(t) = &flags.theme {
            self.theme = Some(t.clone());
            self.sources.insert("theme", Source::Flag);
        }
    }

    /// Where the value of `key` (one of [`KEYS`]) came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    /// The effective value of `key` (one of [`KEYS`]) as TOML-ish text.
    pub fn value(&self, key: &str) -> String {
        fn list(v: &[String]) -> String {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        }
        fn opt(v: &Option<String>, none: &str) -> String {
            v.as_ref()
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| none.to_string())
        }
        match key {
            "daemon.host" => format!("{:?}", self.host),
            "daemon.port" => self.port.to_string(),
            "peer_allowlist" => list(&self.peer_allowlist),
            "trust_tailscale" => self.trust_tailscale.to_string(),
            "allowed_origins" => list(&self.allowed_origins),
            "allowed_hosts" => list(&self.allowed_hosts),
            "engine.scrollback_lines" => self.scrollback_lines.to_string(),
            "engine.memory_budget_mb" => self.memory_budget_mb.to_string(),
            "inject.submit_min_ms" => self.submit_min_ms.to_string(),
            "inject.submit_quiet_ms" => self.submit_quiet_ms.to_string(),
            "inject.submit_max_ms" => self.submit_max_ms.to_string(),
            "spawn.shell" => opt(&self.shell, "(unset: $SHELL, else /bin/sh)"),
            "theme" => opt(&self.theme, "(unset: built-in)"),
            "tui.prefix" => opt(&self.tui_prefix, "(unset: built-in)"),
            "recording.enabled" => self.record_sessions.to_string(),
            "recording.mask" => list(&self.record_masks),
            "sessions.window_size" => format!("{:?}", self.window_size.as_str()),
            "peers" => format!("{} configured", self.peers),
            "resume" => {
                let items: Vec<String> = self
                    .resume
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", list(v)))
                    .collect();
                format!("{{ {} }}", items.join(", "))
            }
            "resurrect.env" => list(&self.resurrect_env),
            _ => String::new(),
        }
    }

    /// The defaults the engine's env knobs should use (file values over built-in defaults).
    pub fn apply_env_defaults(&self) -> EngineDefaults {
        EngineDefaults {
            scrollback_lines: self.scrollback_lines,
            memory_budget_mb: self.memory_budget_mb,
            submit_min_ms: self.submit_min_ms,
            submit_quiet_ms: self.submit_quiet_ms,
            submit_max_ms: self.submit_max_ms,
        }
    }

    /// The shell a new session runs when no command is given.
    pub fn default_shell(&self) -> String {
        self.shell
            .clone()
            .or_else(|| std::env::var("SHELL").ok().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| "/bin/sh".into())
    }

    /// The compiled recording masks (validated at load time, so this never fails for loaded
    /// settings; invalid patterns are skipped).
    pub fn masks(&self) -> Vec<regex::Regex> {
        self.record_masks
            .iter()
            .filter_map(|p| regex::Regex::new(p).ok())
            .collect()
    }
}

// ---- the file ----

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum StrOrList {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl StrOrList {
    fn into_vec(self) -> Option<Vec<String>> {
        match self {
            StrOrList::None => None,
            StrOrList::One(s) => Some(crate::config::split_list(&s)),
            StrOrList::Many(v) => Some(v),
        }
    }
}

#[derive(Deserialize, Default)]
struct FileConfig {
    #[serde(default)]
    daemon: DaemonFile,
    #[serde(default)]
    peer_allowlist: Option<StrOrList>,
    trust_tailscale: Option<bool>,
    #[serde(default)]
    allowed_origins: Option<StrOrList>,
    #[serde(default)]
    allowed_hosts: Option<StrOrList>,
    #[serde(default)]
    engine: EngineFile,
    #[serde(default)]
    inject: InjectFile,
    #[serde(default)]
    spawn: SpawnFile,
    theme: Option<String>,
    prefix: Option<String>,
    #[serde(default)]
    tui: TuiFile,
    #[serde(default)]
    recording: RecordingFile,
    #[serde(default)]
    sessions: SessionsFile,
    #[serde(default)]
    peers: Vec<toml::Table>,
    #[serde(default)]
    resume: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    resurrect: ResurrectFile,
}

#[derive(Deserialize, Default)]
struct ResurrectFile {
    env: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct DaemonFile {
    host: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize, Default)]
struct EngineFile {
    scrollback_lines: Option<u64>,
    memory_budget_mb: Option<u64>,
}

#[derive(Deserialize, Default)]
struct InjectFile {
    submit_min_ms: Option<u64>,
    submit_quiet_ms: Option<u64>,
    submit_max_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
struct SpawnFile {
    shell: Option<String>,
}

#[derive(Deserialize, Default)]
struct TuiFile {
    theme: Option<String>,
    prefix: Option<String>,
}

#[derive(Deserialize, Default)]
struct SessionsFile {
    window_size: Option<String>,
}

#[derive(Deserialize, Default)]
struct RecordingFile {
    enabled: Option<bool>,
    mask: Option<Vec<String>>,
}

/// Load the effective settings: defaults, then `config.toml` (if it exists), then the process
/// environment.
pub fn load(paths: &Paths) -> Result<Settings, SettingsError> {
    load_with(&paths.config_toml(), |k| std::env::var(k).ok())
}

/// [`load`] with an explicit file and environment (for tests and for callers that already
/// hold a snapshot of the environment). A missing file is not an error.
pub fn load_with(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(SettingsError::Read {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.toml".into());
    let mut s = Settings::default();
    if let Some(text) = text {
        apply_file(&mut s, &text, &file_name)?;
    }
    apply_env(&mut s, env)?;
    Ok(s)
}

/// The `[daemon]` values of the file at `path` alone (no environment). The whole file is
/// validated: an invalid one is the same error [`load`] gives. A missing file sets nothing.
pub fn daemon_section(path: &Path) -> Result<DaemonSection, SettingsError> {
    let s = load_with(path, |_| None)?;
    Ok(DaemonSection {
        host: (s.source("daemon.host") == Source::File).then(|| s.host.clone()),
        port: (s.source("daemon.port") == Source::File).then_some(s.port),
    })
}

/// Parse `text` as config.toml on top of the defaults (no environment).
pub fn parse_str(text: &str, file_name: &str) -> Result<Settings, SettingsError> {
    let mut s = Settings::default();
    apply_file(&mut s, text, file_name)?;
    Ok(s)
}

fn apply_file(s: &mut Settings, text: &str, file_name: &str) -> Result<(), SettingsError> {
    let f: FileConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|r| r.start).unwrap_or(0);
        let line = line_of(text, offset);
        SettingsError::Invalid {
            file: file_name.to_string(),
            line,
            key: key_at(text, line),
            message: e.message().trim().to_string(),
        }
    })?;
    let invalid = |section: Option<&str>, key: &str, message: String| {
        let line = locate(text, section, key).unwrap_or(1);
        SettingsError::Invalid {
            file: file_name.to_string(),
            line,
            key: Some(match section {
                Some(sec) => format!("{sec}.{key}"),
                None => key.to_string(),
            }),
            message,
        }
    };
    let src = &mut s.sources;
    let mut set = |k: &'static str| {
        src.insert(k, Source::File);
    };
    if let Some(h) = f.daemon.host {
        if h.trim().is_empty() {
            return Err(invalid(Some("daemon"), "host", "must not be empty".into()));
        }
        s.host = h.trim().to_string();
        set("daemon.host");
    }
    if let Some(p) = f.daemon.port {
        if p == 0 {
            return Err(invalid(Some("daemon"), "port", "must be 1-65535".into()));
        }
        s.port = p;
        set("daemon.port");
    }
    if let Some(v) = f.peer_allowlist.and_then(StrOrList::into_vec) {
        s.peer_allowlist = v;
        set("peer_allowlist");
    }
    if let Some(v) = f.trust_tailscale {
        s.trust_tailscale = v;
        set("trust_tailscale");
    }
    if let Some(v) = f.allowed_origins.and_then(StrOrList::into_vec) {
        s.allowed_origins = v;
        set("allowed_origins");
    }
    if let Some(v) = f.allowed_hosts.and_then(StrOrList::into_vec) {
        s.allowed_hosts = v;
        set("allowed_hosts");
    }
    if let Some(v) = f.engine.scrollback_lines {
        s.scrollback_lines = v;
        set("engine.scrollback_lines");
    }
    if let Some(v) = f.engine.memory_budget_mb {
        if v < 16 {
            return Err(invalid(
                Some("engine"),
                "memory_budget_mb",
                "must be at least 16".into(),
            ));
        }
        s.memory_budget_mb = v;
        set("engine.memory_budget_mb");
    }
    if let Some(v) = f.inject.submit_min_ms {
        s.submit_min_ms = v;
        set("inject.submit_min_ms");
    }
    if let Some(v) = f.inject.submit_quiet_ms {
        s.submit_quiet_ms = v;
        set("inject.submit_quiet_ms");
    }
    if let Some(v) = f.inject.submit_max_ms {
        s.submit_max_ms = v;
        set("inject.submit_max_ms");
    }
    if let Some(v) = f.spawn.shell.filter(|v| !v.trim().is_empty()) {
        s.shell = Some(v);
        set("spawn.shell");
    }
    if let Some(v) = f.tui.theme.or(f.theme) {
        s.theme = Some(v);
        set("theme");
    }
    if let Some(v) = f.tui.prefix.or(f.prefix) {
        s.tui_prefix = Some(v);
        set("tui.prefix");
    }
    if let Some(v) = f.recording.enabled {
        s.record_sessions = v;
        set("recording.enabled");
    }
    if let Some(v) = f.recording.mask {
        for p in &v {
            if let Err(e) = regex::Regex::new(p) {
                let msg = format!(
                    "invalid pattern {p:?}: {}",
                    e.to_string().lines().last().unwrap_or("")
                );
                return Err(invalid(Some("recording"), "mask", msg));
            }
        }
        s.record_masks = v;
        set("recording.mask");
    }
    if let Some(v) = f.sessions.window_size {
        s.window_size = v
            .parse()
            .map_err(|e: crate::engine::sizing::BadWindowSize| {
                invalid(Some("sessions"), "window_size", e.to_string())
            })?;
        set("sessions.window_size");
    }
    if !f.resume.is_empty() {
        for (cmd, args) in f.resume {
            // Matched against the command's file name: a path or a space can never match.
            if cmd.is_empty() || cmd.contains('/') || cmd.chars().any(char::is_whitespace) {
                return Err(invalid(
                    Some("resume"),
                    &cmd,
                    "must be a command name (no path, no spaces)".into(),
                ));
            }
            s.resume.insert(cmd, args);
        }
        set("resume");
    }
    if let Some(v) = f.resurrect.env {
        if let Some(bad) = v
            .iter()
            .find(|n| n.is_empty() || n.contains('=') || n.contains('\0'))
        {
            return Err(invalid(
                Some("resurrect"),
                "env",
                format!("not a variable name: {bad:?}"),
            ));
        }
        s.resurrect_env = v;
        set("resurrect.env");
    }
    if !f.peers.is_empty() {
        let mut t = toml::Table::new();
        let list = f.peers.into_iter().map(toml::Value::Table).collect();
        t.insert("peers".into(), toml::Value::Array(list));
        s.peers = crate::client::peers::peers_of(&t).len();
        set("peers");
    }
    Ok(())
}

fn apply_env(s: &mut Settings, env: impl Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
    let env = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let u64_of = |var: &str, floor: u64| -> Option<u64> {
        env(var)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v.max(floor))
    };
    let src = &mut s.sources;
    let mut set = |k: &'static str| {
        src.insert(k, Source::Env);
    };
    if let Some(h) = env("HOST") {
        s.host = h;
        set("daemon.host");
    }
    if let Some((var, v)) = env("PORT")
        .map(|v| ("PORT", v))
        .or_else(|| env("TELEPTY_PORT").map(|v| ("TELEPTY_PORT", v)))
    {
        s.port = v
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| SettingsError::Env {
                var: var.into(),
                message: format!("not a valid port: {v:?}"),
            })?;
        set("daemon.port");
    }
    if let Some(v) = env("TELEPTY_PEER_ALLOWLIST") {
        s.peer_allowlist = crate::config::split_list(&v);
        set("peer_allowlist");
    }
    if let Some(v) = env("TELEPTY_TRUST_TAILSCALE") {
        s.trust_tailscale = truthy(&v);
        set("trust_tailscale");
    }
    if let Some(v) = env("TELEPTY_ALLOWED_ORIGINS") {
        s.allowed_origins = crate::config::split_list(&v);
        set("allowed_origins");
    }
    if let Some(v) = env("TELEPTY_ALLOWED_HOSTS") {
        s.allowed_hosts = crate::config::split_list(&v);
        set("allowed_hosts");
    }
    // The numeric knobs behave like `config::env_u64`: unparsable values are ignored.
    if let Some(v) = u64_of("TELEPTY_SCROLLBACK_LINES", 0) {
        s.scrollback_lines = v;
        set("engine.scrollback_lines");
    }
    if let Some(v) = u64_of("TELEPTY_MEMORY_BUDGET_MB", 16) {
        s.memory_budget_mb = v;
        set("engine.memory_budget_mb");
    }
    if let Some(v) = u64_of("TELEPTY_SUBMIT_MIN_MS", 0) {
        s.submit_min_ms = v;
        set("inject.submit_min_ms");
    }
    if let Some(v) = u64_of("TELEPTY_SUBMIT_QUIET_MS", 0) {
        s.submit_quiet_ms = v;
        set("inject.submit_quiet_ms");
    }
    if let Some(v) = u64_of("TELEPTY_SUBMIT_MAX_MS", 0) {
        s.submit_max_ms = v;
        set("inject.submit_max_ms");
    }
    if let Some(v) = env("TELEPTY_SHELL") {
        s.shell = Some(v);
        set("spawn.shell");
    }
    if let Some(v) = env("TELEPTY_TUI_PREFIX") {
        s.tui_prefix = Some(v);
        set("tui.prefix");
    }
    if let Some(v) = env("TELEPTY_RECORD_SESSIONS") {
        s.record_sessions = truthy(&v);
        set("recording.enabled");
    }
    if let Some(v) = env("TELEPTY_WINDOW_SIZE") {
        s.window_size =
            v.parse().map_err(
                |e: crate::engine::sizing::BadWindowSize| SettingsError::Env {
                    var: "TELEPTY_WINDOW_SIZE".into(),
                    message: e.to_string(),
                },
            )?;
        set("sessions.window_size");
    }
    Ok(())
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key assigned on `line` (1-based), with its `[section]`, if that line is a
/// `key = value` line.
fn key_at(text: &str, line: usize) -> Option<String> {
    let mut section: Option<String> = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(h) = header(t) {
            section = Some(h);
        }
        if i + 1 == line {
            let (k, _) = t.split_once('=')?;
            let k = k.trim().trim_matches('"');
            if k.is_empty() || k.starts_with('#') || k.starts_with('[') {
                return None;
            }
            return Some(match section {
                Some(sec) => format!("{sec}.{k}"),
                None => k.to_string(),
            });
        }
    }
    None
}

fn header(t: &str) -> Option<String> {
    let t = t.split('#').next()?.trim();
    if t.starts_with("[[") {
        return Some(
            t.trim_start_matches("[[")
                .trim_end_matches("]]")
                .trim()
                .to_string(),
        );
    }
    if t.starts_with('[') && t.ends_with(']') {
        return Some(t[1..t.len() - 1].trim().to_string());
    }
    None
}

/// The 1-based line where `key` is assigned inside `section` (`None`: top level).
fn locate(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(h) = header(t) {
            current = Some(h);
            continue;
        }
        if current.as_deref() != section {
            continue;
        }
        if let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_file_parses_to_the_defaults() {
        let s = parse_str(DEFAULT_CONFIG_TOML, "config.toml").unwrap();
        let d = Settings::default();
        assert_eq!(s.port, d.port);
        assert_eq!(s.scrollback_lines, d.scrollback_lines);
        assert_eq!(s.record_masks, d.record_masks);
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
        assert_eq!(Settings::default().window_size, WindowSize::Smallest);
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
        assert_eq!(s.peer_allowlist, ["a", "b"]);
        assert_eq!(s.allowed_hosts, ["h"]);
        assert_eq!(s.source("peer_allowlist"), Source::File);
    }

    #[test]
    fn env_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[engine]\nscrollback_lines = 200\nmemory_budget_mb = 64\n[inject]\nsubmit_min_ms = 10\n").unwrap();
        let s = load_with(&path, |k| {
            (k == "TELEPTY_SCROLLBACK_LINES").then(|| "300".into())
        })
        .unwrap();
        assert_eq!(s.scrollback_lines, 300);
        assert_eq!(s.source("engine.scrollback_lines"), Source::Env);
        assert_eq!(s.memory_budget_mb, 64);
        assert_eq!(s.source("engine.memory_budget_mb"), Source::File);
        assert_eq!(s.submit_max_ms, 500);
        assert_eq!(s.source("inject.submit_max_ms"), Source::Default);
        let d = s.apply_env_defaults();
        assert_eq!(
            (d.scrollback_lines, d.memory_budget_mb, d.submit_min_ms),
            (300, 64, 10)
        );
        // A missing file is the defaults.
        let s = load_with(&dir.path().join("nope.toml"), |_| None).unwrap();
        assert_eq!(s, Settings::default());
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
        let shown = |s: &Settings, k: &str| (s.value(k), s.source(k));

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
        assert_eq!(s.theme.as_deref(), Some("light"));
        assert_eq!(s.tui_prefix.as_deref(), Some("ctrl+b"));
        let s = parse_str("[tui]\ntheme = \"x\"\nprefix = \"ctrl+a\"\n", "c").unwrap();
        assert_eq!(s.theme.as_deref(), Some("x"));
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
            Settings::default().value("resume"),
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
        assert_eq!(s.peers, 1);
    }
}
