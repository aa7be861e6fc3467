//! What the engine runs with: built once from the [`Config`] (the one reader of files and
//! environment) plus the facts of this process (paths, the holder program, the cwd).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, Paths};

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
    pub classifier: super::classifier::ClassifierConfig,
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
    pub window_size: super::WindowSize,
    /// `[resume]`: arguments added when a lost session is resurrected.
    pub resume: super::ResumeConfig,
    /// `[resurrect] env`: the variables a spawned session's entry keeps for a resurrection.
    pub env_allowlist: Vec<String>,
    /// Agent profiles: the built-in ones, replaced by the daemon with the user's set
    /// (`Profiles::load`, which can fail on a bad file).
    pub profiles: std::sync::Arc<super::profile::Profiles>,
}

impl EngineSettings {
    /// The engine's view of `config`, with files under `paths`.
    pub fn from_config(config: &Config, paths: &Paths) -> Self {
        let e = &config.engine;
        let i = &config.inject;
        let ms = Duration::from_millis;
        EngineSettings {
            machine_id: crate::config::machine_id(),
            health_poll: ms(e.health_poll_ms),
            stale_secs: e.stale_secs,
            cleanup_secs: e.cleanup_secs,
            auto_report_idle_secs: e.auto_report_idle_secs,
            delivery_timeout: ms(e.delivery_timeout_ms),
            submit_min: ms(i.submit_min_ms),
            submit_quiet: ms(i.submit_quiet_ms),
            submit_max: ms(i.submit_max_ms),
            submit_max_wrapped: ms(i.submit_max_wrapped_ms),
            classifier: super::classifier::ClassifierConfig {
                idle_timeout_ms: e.state_idle_timeout_ms,
                stuck_repeat_count: u32::try_from(e.state_stuck_repeat_count).unwrap_or(u32::MAX),
                stuck_window_ms: e.state_stuck_window_ms,
                thinking_timeout_ms: e.state_thinking_timeout_ms,
            },
            scrollback_lines: e.scrollback_lines as usize,
            memory_budget_bytes: e.memory_budget_mb as usize * 1024 * 1024,
            sessions_path: Some(paths.sessions_json()),
            record_all: config.recording.enabled,
            record_masks: config.masks(),
            recordings_dir: paths.telepty_dir().join(super::recording::DIR_NAME),
            daemon_cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            runtime_dir: paths.runtime_dir(),
            holder_exe: holder_exe(),
            window_size: config.window_size,
            resume: super::ResumeConfig {
                by_command: config.resume.clone(),
            },
            env_allowlist: config.resurrect_env.clone(),
            profiles: std::sync::Arc::new(super::profile::Profiles::builtin()),
        }
    }
}

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
