//! The configuration: one reader, one set of defaults, one typed result.
//!
//! [`Config`] is read from `~/.config/telepty/config.toml` (plus the trust keys of
//! `~/.telepty/config.json`, API.md §16), the environment and the flags, in that order of
//! precedence from low to high, over [`Config::default`]. Every consumer gets this struct:
//! the engine (`engine::EngineSettings::from_config`), the API guard ([`Config::trust`]), the
//! client ([`Config::daemon_file`], [`Config::peers`]), kitty ([`Config::kitty`]) and the
//! dashboard ([`Config::tui`]); `telepty config show` prints it (`show.rs`), so it shows what
//! the daemon uses. Writes to config.toml go through `edit.rs` (toml_edit), which keeps the
//! user's comments and key order.
//!
//! Config is data: it depends on nothing of ours but `util`.

mod edit;
mod env;
mod file;
mod paths;
pub mod project;
mod show;
mod window_size;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use edit::{EditError, add_peer, give_back_prefix, remove_peer};
pub use env::{env_u64, machine_id, split_list, truthy};
pub use paths::{DaemonState, Paths, load_or_create_token, read_token};
pub use show::KEYS;
pub use window_size::{BadWindowSize, WindowSize};

/// The commented default file written by `telepty config init`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../assets/config.toml");

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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

/// `[daemon]`: where the daemon listens (env `HOST`, `PORT`/`TELEPTY_PORT`; flags `--host`,
/// `--port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    pub host: String,
    pub port: u16,
}

/// `[daemon] host` and `port` as config.toml sets them (no environment, no defaults): what
/// clients layer their own `TELEPTY_HOST`/`TELEPTY_PORT` over (API.md §15).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonSection {
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// Who may talk to the daemon without a token, and from where (API.md §1.2): top-level keys of
/// config.toml or `~/.telepty/config.json`; env `TELEPTY_PEER_ALLOWLIST`,
/// `TELEPTY_TRUST_TAILSCALE`, `TELEPTY_ALLOWED_ORIGINS`, `TELEPTY_ALLOWED_HOSTS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustConfig {
    pub peer_allowlist: Vec<String>,
    pub trust_tailscale: bool,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
}

/// `[engine]` (file and env) and the engine knobs that only the environment sets (API.md §13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// `scrollback_lines` (env `TELEPTY_SCROLLBACK_LINES`)
    pub scrollback_lines: u64,
    /// `memory_budget_mb` (env `TELEPTY_MEMORY_BUDGET_MB`, at least 16)
    pub memory_budget_mb: u64,
    /// env `TELEPTY_HEALTH_POLL_MS` (at least 100)
    pub health_poll_ms: u64,
    /// env `TELEPTY_SESSION_STALE_SECONDS` (at least 1)
    pub stale_secs: u64,
    /// env `TELEPTY_SESSION_CLEANUP_SECONDS` (at least 1, never below `stale_secs`)
    pub cleanup_secs: u64,
    /// env `TELEPTY_AUTO_REPORT_IDLE_SECONDS` (0 means the default)
    pub auto_report_idle_secs: u64,
    /// env `TELEPTY_DELIVERY_TIMEOUT_MS` (at least 100)
    pub delivery_timeout_ms: u64,
    /// env `TELEPTY_STATE_IDLE_TIMEOUT_MS` (at least 100)
    pub state_idle_timeout_ms: u64,
    /// env `TELEPTY_STATE_STUCK_REPEAT_COUNT` (at least 1)
    pub state_stuck_repeat_count: u64,
    /// env `TELEPTY_STATE_STUCK_WINDOW_MS` (at least 1000)
    pub state_stuck_window_ms: u64,
    /// env `TELEPTY_STATE_THINKING_TIMEOUT_MS` (at least 1000)
    pub state_thinking_timeout_ms: u64,
}

/// `[inject]`: the Enter gate (API.md §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectConfig {
    /// `submit_min_ms` (env `TELEPTY_SUBMIT_MIN_MS`)
    pub submit_min_ms: u64,
    /// `submit_quiet_ms` (env `TELEPTY_SUBMIT_QUIET_MS`)
    pub submit_quiet_ms: u64,
    /// `submit_max_ms` (env `TELEPTY_SUBMIT_MAX_MS`)
    pub submit_max_ms: u64,
    /// env `TELEPTY_SUBMIT_MAX_MS_WRAPPED` only
    pub submit_max_wrapped_ms: u64,
}

/// Session states the dashboard can notify about on entering them.
pub const NOTIFY_STATES: [&str; 5] = ["waiting", "idle", "stuck", "exited", "working"];

/// `[tui]` (or the same keys at the top level).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TuiConfig {
    /// `theme` (the `tui --theme` flag overrides it)
    pub theme: Option<String>,
    /// `prefix` (env `TELEPTY_TUI_PREFIX`)
    pub prefix: Option<String>,
    /// `notify`: the states whose entry rings the bell, shows a desktop notification through
    /// the terminal and runs `notify_command` (default: waiting; `[]` turns it off)
    pub notify: Vec<String>,
    /// `notify_command`: run by `sh -c` with `TELEPTY_SESSION`, `TELEPTY_STATE` set
    pub notify_command: Option<String>,
    /// `sidebar`: the dashboard starts with the session list shown (`b` toggles it)
    pub sidebar: bool,
    /// `output_fps` (1–60, default 10): how often frames that only show programs' output are
    /// drawn; a key's echo is always drawn at once (docs/PERFORMANCE.md, session 7)
    pub output_fps: u64,
}

impl Default for TuiConfig {
    fn default() -> Self {
        TuiConfig {
            theme: None,
            prefix: None,
            notify: vec!["waiting".to_string()],
            notify_command: None,
            sidebar: false,
            output_fps: 10,
        }
    }
}

/// `[recording]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingConfig {
    /// `enabled` (env `TELEPTY_RECORD_SESSIONS`)
    pub enabled: bool,
    /// `mask`: regexes masked in recordings (validated when loaded)
    pub masks: Vec<String>,
}

/// A configured remote daemon (`[[peers]]`: name, url, token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    /// `http://host[:port]`
    pub url: String,
    pub token: Option<String>,
}

/// `[kitty]`: how to reach kitty's remote control.
///
/// ```toml
/// [kitty]
/// to = "unix:/tmp/kitty-sock"   # where kitty listens (else $KITTY_LISTEN_ON, else discovery)
/// password = "…"                # kitty's remote_control_password
/// public_key = "1:…"            # kitty's KITTY_PUBLIC_KEY, when telepty runs outside kitty
/// layout = "grid"               # layout applied by `telepty kitty open`
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct KittyConfig {
    pub to: Option<String>,
    pub password: Option<String>,
    pub public_key: Option<String>,
    pub layout: Option<String>,
}

/// The effective configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub daemon: DaemonConfig,
    /// `[daemon]` as the file alone sets it.
    pub daemon_file: DaemonSection,
    pub trust: TrustConfig,
    pub engine: EngineConfig,
    pub inject: InjectConfig,
    /// `[spawn] shell` (env `TELEPTY_SHELL`); `None`: `$SHELL`, else `/bin/sh`
    pub shell: Option<String>,
    pub tui: TuiConfig,
    pub recording: RecordingConfig,
    /// `[sessions] window_size` (env `TELEPTY_WINDOW_SIZE`)
    pub window_size: WindowSize,
    /// `[[peers]]`; entries without a usable name or url are skipped.
    pub peers: Vec<Peer>,
    /// `discover_tailscale`: add the tailnet's online machines to the peers.
    pub discover_tailscale: bool,
    /// `peer_deadline_ms` (`TELEPTY_PEER_DEADLINE_MS`; 100–60000, default 2500): what one
    /// peer may take in all for a list, a lookup or a bus connection before it is skipped.
    pub peer_deadline_ms: u64,
    /// `[resume]`: command name → arguments added when a lost session is resurrected, merged
    /// over [`default_resume`]; an empty list turns one off.
    pub resume: BTreeMap<String, Vec<String>>,
    /// `[resurrect] env`: the variables kept for a resurrection.
    pub resurrect_env: Vec<String>,
    pub kitty: KittyConfig,
    sources: BTreeMap<&'static str, Source>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            daemon: DaemonConfig {
                host: "127.0.0.1".into(),
                port: 3848,
            },
            daemon_file: DaemonSection::default(),
            trust: TrustConfig::default(),
            engine: EngineConfig {
                scrollback_lines: 1000,
                memory_budget_mb: 512,
                health_poll_ms: 10_000,
                stale_secs: 60,
                cleanup_secs: 300,
                auto_report_idle_secs: 10,
                delivery_timeout_ms: 5000,
                state_idle_timeout_ms: 5000,
                state_stuck_repeat_count: 3,
                state_stuck_window_ms: 180_000,
                state_thinking_timeout_ms: 300_000,
            },
            inject: InjectConfig {
                submit_min_ms: 150,
                submit_quiet_ms: 50,
                submit_max_ms: 500,
                submit_max_wrapped_ms: 500,
            },
            shell: None,
            tui: TuiConfig::default(),
            recording: RecordingConfig {
                enabled: false,
                masks: DEFAULT_MASKS.iter().map(|s| s.to_string()).collect(),
            },
            window_size: WindowSize::default(),
            peers: Vec::new(),
            discover_tailscale: false,
            peer_deadline_ms: 2500,
            resume: default_resume(),
            resurrect_env: DEFAULT_RESURRECT_ENV
                .iter()
                .map(|s| s.to_string())
                .collect(),
            kitty: KittyConfig::default(),
            sources: BTreeMap::new(),
        }
    }
}

/// The command-line flags that override settings: `daemon` / `tui` `--host`, `--port`, and
/// `tui --theme`. `None` leaves the value from the environment, file or defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub theme: Option<String>,
}

impl Config {
    /// Defaults, the files, then the process environment (flags: [`Config::apply_flags`]).
    pub fn load(paths: &Paths) -> Result<Config, ConfigError> {
        Self::load_with(paths, |k| std::env::var(k).ok())
    }

    /// [`Config::load`] with the environment passed in (tests, snapshots of the environment).
    pub fn load_with(
        paths: &Paths,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut c = Self::load_files(paths)?;
        env::apply(&mut c, env)?;
        Ok(c)
    }

    /// Defaults, the config.toml at `path` alone (no config.json) and `env`.
    pub fn load_toml_with(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        file::apply_path(&mut c, path)?;
        env::apply(&mut c, env)?;
        Ok(c)
    }

    /// Defaults and the files, without the environment: what clients use, whose environment
    /// (`TELEPTY_HOST`, `TELEPTY_PORT`, `TELEPTY_TOKEN`) is their own and whose commands must
    /// not fail on a daemon variable such as `PORT`.
    pub fn load_files(paths: &Paths) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        file::apply_json_trust(&mut c, &paths.config_json());
        file::apply_path(&mut c, &paths.config_toml())?;
        Ok(c)
    }

    /// Apply command-line flags, the top layer (their source becomes [`Source::Flag`]).
    pub fn apply_flags(&mut self, flags: &Flags) {
        if let Some(h) = &flags.host {
            self.daemon.host = h.clone();
            self.set_source("daemon.host", Source::Flag);
        }
        if let Some(p) = flags.port {
            self.daemon.port = p;
            self.set_source("daemon.port", Source::Flag);
        }
        if let Some(t) = &flags.theme {
            self.tui.theme = Some(t.clone());
            self.set_source("theme", Source::Flag);
        }
    }

    /// Where the value of `key` (one of [`KEYS`]) came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    fn set_source(&mut self, key: &'static str, source: Source) {
        self.sources.insert(key, source);
    }

    /// The shell a new session runs when no command is given.
    pub fn default_shell(&self) -> String {
        self.shell
            .clone()
            .or_else(|| std::env::var("SHELL").ok().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| "/bin/sh".into())
    }

    /// The compiled recording masks (validated at load time, so none is skipped for a loaded
    /// configuration).
    pub fn masks(&self) -> Vec<regex::Regex> {
        self.recording
            .masks
            .iter()
            .filter_map(|p| regex::Regex::new(p).ok())
            .collect()
    }
}

/// The `[daemon]` section of the file at `path` alone. The whole file is validated: an invalid
/// one is the same error [`Config::load`] gives. A missing file sets nothing.
pub fn daemon_section(path: &Path) -> Result<DaemonSection, ConfigError> {
    let mut c = Config::default();
    file::apply_path(&mut c, path)?;
    Ok(c.daemon_file)
}

#[cfg(test)]
mod tests;
