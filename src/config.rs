//! Paths, the token file, and settings read from the environment and config files.
//!
//! Precedence everywhere: flags > environment > files > defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::util;

/// Where telepty keeps its files. Everything hangs off `$HOME` so tests can isolate a run.
#[derive(Clone, Debug)]
pub struct Paths {
    pub home: PathBuf,
}

impl Paths {
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        Paths { home }
    }
    pub fn telepty_dir(&self) -> PathBuf {
        self.home.join(".telepty")
    }
    pub fn config_json(&self) -> PathBuf {
        self.telepty_dir().join("config.json")
    }
    pub fn daemon_state(&self) -> PathBuf {
        self.telepty_dir().join("daemon-state.json")
    }
    pub fn shared_dir(&self) -> PathBuf {
        self.telepty_dir().join("shared")
    }
    /// Where session holders put their sockets (`TELEPTY_RUNTIME_DIR`, else `~/.telepty/run`):
    /// per HOME, like everything else here, so one user's daemons never adopt another HOME's
    /// sessions.
    pub fn runtime_dir(&self) -> PathBuf {
        match std::env::var_os("TELEPTY_RUNTIME_DIR").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => self.telepty_dir().join("run"),
        }
    }
    pub fn sessions_json(&self) -> PathBuf {
        self.home.join(".config/aigentry-telepty/sessions.json")
    }
    pub fn config_toml(&self) -> PathBuf {
        if let Some(p) = std::env::var_os("TELEPTY_CONFIG").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.home.join(".config"));
        base.join("telepty/config.toml")
    }
    pub fn log_dir(&self) -> PathBuf {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.home.join(".local/state"));
        base.join("telepty")
    }
}

/// Ensure `~/.telepty` (0700) exists and return the token from `config.json`, creating the
/// file (0600) when it is missing or unparsable. Unknown keys are preserved.
pub fn load_or_create_token(paths: &Paths) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = paths.telepty_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok();
    let path = paths.config_json();
    let mut doc = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(tok) = doc
        .get("authToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(tok.to_string());
    }
    let token = uuid::Uuid::new_v4().to_string();
    doc["authToken"] = Value::String(token.clone());
    if doc.get("createdAt").is_none() {
        doc["createdAt"] = Value::String(util::now_iso());
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    util::write_atomic(&path, text.as_bytes())?;
    Ok(token)
}

/// Read the token without creating anything (clients only need to read it).
pub fn read_token(paths: &Paths) -> Option<String> {
    let text = std::fs::read_to_string(paths.config_json()).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    doc.get("authToken")?.as_str().map(str::to_string)
}

/// Daemon trust settings that may come from `config.json` or `config.toml`.
#[derive(Clone, Debug, Default)]
pub struct TrustSettings {
    pub peer_allowlist: Vec<String>,
    pub trust_tailscale: bool,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
}

fn list_from(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(split_list(s)),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl TrustSettings {
    /// Files first (toml over json), then the environment on top.
    pub fn load(paths: &Paths) -> Self {
        let mut s = TrustSettings::default();
        let mut apply = |doc: &Value| {
            if let Some(v) = list_from(doc.get("peer_allowlist")) {
                s.peer_allowlist = v;
            }
            if let Some(v) = doc.get("trust_tailscale").and_then(Value::as_bool) {
                s.trust_tailscale = v;
            }
            if let Some(v) = list_from(doc.get("allowed_origins")) {
                s.allowed_origins = v;
            }
            if let Some(v) = list_from(doc.get("allowed_hosts")) {
                s.allowed_hosts = v;
            }
        };
        if let Some(doc) = std::fs::read_to_string(paths.config_json())
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            apply(&doc);
        }
        if let Some(doc) = std::fs::read_to_string(paths.config_toml())
            .ok()
            .and_then(|t| toml::from_str::<toml::Value>(&t).ok())
            .and_then(|t| serde_json::to_value(t).ok())
        {
            apply(&doc);
        }
        if let Some(v) = env_nonempty("TELEPTY_PEER_ALLOWLIST") {
            s.peer_allowlist = split_list(&v);
        }
        if let Ok(v) = std::env::var("TELEPTY_TRUST_TAILSCALE") {
            s.trust_tailscale = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = env_nonempty("TELEPTY_ALLOWED_ORIGINS") {
            s.allowed_origins = split_list(&v);
        }
        if let Some(v) = env_nonempty("TELEPTY_ALLOWED_HOSTS") {
            s.allowed_hosts = split_list(&v);
        }
        s
    }
}

/// An integer env knob with a default and a floor (API.md §13).
/// The holder program: `TELEPTY_HOLDER_EXE`, else `telepty-hold` beside this executable (a
/// small binary: less memory per session), else this executable itself (`telepty __hold`).
fn holder_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("TELEPTY_HOLDER_EXE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("telepty"));
    let small = exe.with_file_name("telepty-hold");
    if small.is_file() { small } else { exe }
}

pub fn env_u64(name: &str, default: u64, floor: u64) -> u64 {
    match std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(v) => v.max(floor),
        None => default,
    }
}

pub fn machine_id() -> String {
    env_nonempty("TELEPTY_MACHINE_ID").unwrap_or_else(util::hostname)
}

/// Everything the engine needs to know, resolved once at startup.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub machine_id: String,
    pub health_poll: Duration,
    pub stale_secs: u64,
    pub cleanup_secs: u64,
    pub auto_report_idle_secs: u64,
    pub delivery_timeout: Duration,
    pub submit_min: Duration,
    pub submit_quiet: Duration,
    pub submit_max: Duration,
    pub submit_max_wrapped: Duration,
    pub classifier: crate::engine::classifier::ClassifierConfig,
    pub scrollback_lines: usize,
    /// Upper bound for all emulator scrollback together; new sessions get less when it is tight.
    pub memory_budget_bytes: usize,
    /// Where session metadata is persisted; `None` keeps it in memory only.
    pub sessions_path: Option<PathBuf>,
    /// Record every session (`TELEPTY_RECORD_SESSIONS=1` or `[recording] enabled`).
    pub record_all: bool,
    /// Patterns masked in recordings.
    pub record_masks: Vec<regex::Regex>,
    pub recordings_dir: PathBuf,
    pub daemon_cwd: PathBuf,
    /// The session holders' private directory (see `crate::holder`).
    pub runtime_dir: PathBuf,
    /// The program started as `EXE __hold` for each session: this telepty binary
    /// (`TELEPTY_HOLDER_EXE` overrides, for benchmarks and tests that embed the engine).
    pub holder_exe: PathBuf,
    /// How viewers' sizes pick a session's size (`[sessions] window_size`,
    /// `TELEPTY_WINDOW_SIZE`).
    pub window_size: crate::engine::WindowSize,
    /// `[resume]`: arguments added when a lost session is resurrected.
    pub resume: crate::engine::ResumeConfig,
    /// `[resurrect] env`: the variables a spawned session's entry keeps for a resurrection.
    pub env_allowlist: Vec<String>,
}

impl EngineSettings {
    /// Environment and `config.toml` (env over file over defaults). An unreadable or invalid
    /// file leaves the environment/defaults in place; `telepty daemon` refuses to start on one
    /// before it gets here.
    pub fn load(paths: &Paths) -> Self {
        let mut e = Self::from_env(paths);
        if let Ok(s) = crate::settings::load(paths) {
            let d = s.apply_env_defaults();
            e.scrollback_lines = d.scrollback_lines as usize;
            e.memory_budget_bytes = d.memory_budget_mb as usize * 1024 * 1024;
            e.submit_min = Duration::from_millis(d.submit_min_ms);
            e.submit_quiet = Duration::from_millis(d.submit_quiet_ms);
            e.submit_max = Duration::from_millis(d.submit_max_ms);
            e.record_all = s.record_sessions;
            e.record_masks = s.masks();
            e.window_size = s.window_size;
            e.resume.by_command = s.resume.clone();
            e.env_allowlist = s.resurrect_env.clone();
        }
        e
    }

    pub fn from_env(paths: &Paths) -> Self {
        let stale_secs = env_u64("TELEPTY_SESSION_STALE_SECONDS", 60, 1);
        let auto_report = match std::env::var("TELEPTY_AUTO_REPORT_IDLE_SECONDS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(0) | None => 10,
            Some(v) => v,
        };
        EngineSettings {
            machine_id: machine_id(),
            health_poll: Duration::from_millis(env_u64("TELEPTY_HEALTH_POLL_MS", 10_000, 100)),
            stale_secs,
            cleanup_secs: env_u64("TELEPTY_SESSION_CLEANUP_SECONDS", 300, 1).max(stale_secs),
            auto_report_idle_secs: auto_report,
            delivery_timeout: Duration::from_millis(env_u64(
                "TELEPTY_DELIVERY_TIMEOUT_MS",
                5000,
                100,
            )),
            submit_min: Duration::from_millis(env_u64("TELEPTY_SUBMIT_MIN_MS", 150, 0)),
            submit_quiet: Duration::from_millis(env_u64("TELEPTY_SUBMIT_QUIET_MS", 50, 0)),
            submit_max: Duration::from_millis(env_u64("TELEPTY_SUBMIT_MAX_MS", 500, 0)),
            submit_max_wrapped: Duration::from_millis(env_u64(
                "TELEPTY_SUBMIT_MAX_MS_WRAPPED",
                500,
                0,
            )),
            classifier: crate::engine::classifier::ClassifierConfig {
                idle_timeout_ms: env_u64("TELEPTY_STATE_IDLE_TIMEOUT_MS", 5000, 100),
                stuck_repeat_count: env_u64("TELEPTY_STATE_STUCK_REPEAT_COUNT", 3, 1) as u32,
                stuck_window_ms: env_u64("TELEPTY_STATE_STUCK_WINDOW_MS", 180_000, 1000),
                thinking_timeout_ms: env_u64("TELEPTY_STATE_THINKING_TIMEOUT_MS", 300_000, 1000),
            },
            scrollback_lines: env_u64("TELEPTY_SCROLLBACK_LINES", 1000, 0) as usize,
            memory_budget_bytes: env_u64("TELEPTY_MEMORY_BUDGET_MB", 512, 16) as usize
                * 1024
                * 1024,
            sessions_path: Some(paths.sessions_json()),
            record_all: matches!(
                std::env::var("TELEPTY_RECORD_SESSIONS")
                    .as_deref()
                    .map(str::trim),
                Ok("1" | "true")
            ),
            record_masks: crate::engine::recording::compile_masks(crate::settings::DEFAULT_MASKS)
                .unwrap_or_default(),
            recordings_dir: paths.telepty_dir().join(crate::engine::recording::DIR_NAME),
            daemon_cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            runtime_dir: paths.runtime_dir(),
            holder_exe: holder_exe(),
            // Unparsable values are ignored here like the other knobs; `telepty daemon`
            // refuses to start on one (settings::load).
            window_size: std::env::var("TELEPTY_WINDOW_SIZE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            resume: crate::engine::ResumeConfig {
                by_command: crate::settings::default_resume(),
            },
            env_allowlist: crate::settings::DEFAULT_RESURRECT_ENV
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}
