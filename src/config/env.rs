//! The environment layer, and the one way telepty reads a boolean, a list or a number from a
//! variable. An empty (or blank) variable counts as unset everywhere.

use super::{Config, ConfigError, Source};

/// The one boolean reading of environment values and string-valued settings: `1`, `true`,
/// `yes`, `on` (any case) are true, anything else false.
pub fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// A comma-separated list, trimmed, without empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// An integer variable with a default and a floor (API.md §13); unparsable means the default.
pub fn env_u64(name: &str, default: u64, floor: u64) -> u64 {
    u64_of(&|k| std::env::var(k).ok(), name, floor).unwrap_or(default)
}

fn u64_of(env: &dyn Fn(&str) -> Option<String>, name: &str, floor: u64) -> Option<u64> {
    env(name)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v.max(floor))
}

/// This machine's name in `id@machine` (`TELEPTY_MACHINE_ID`, else the host name).
pub fn machine_id() -> String {
    std::env::var("TELEPTY_MACHINE_ID")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(crate::util::hostname)
}

/// The environment over `c`. Unparsable numbers are ignored (the value below stays); a bad
/// port or window size is an error naming the variable.
pub(super) fn apply(
    c: &mut Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let env = move |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let set = |c: &mut Config, k: &'static str| c.set_source(k, Source::Env);
    // A variable that is set replaces the value below it and becomes its source.
    macro_rules! from_env {
        ($key:literal: $field:expr => $value:expr) => {
            if let Some(v) = $value {
                $field = v;
                set(c, $key);
            }
        };
    }
    let list = |var: &str| env(var).map(|v| split_list(&v));
    let flag = |var: &str| env(var).map(|v| truthy(&v));
    from_env!("daemon.host": c.daemon.host => env("HOST"));
    if let Some((var, v)) = env("PORT")
        .map(|v| ("PORT", v))
        .or_else(|| env("TELEPTY_PORT").map(|v| ("TELEPTY_PORT", v)))
    {
        c.daemon.port =
            v.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| ConfigError::Env {
                    var: var.into(),
                    message: format!("not a valid port: {v:?}"),
                })?;
        set(c, "daemon.port");
    }
    from_env!("peer_allowlist": c.trust.peer_allowlist => list("TELEPTY_PEER_ALLOWLIST"));
    from_env!("allowed_origins": c.trust.allowed_origins => list("TELEPTY_ALLOWED_ORIGINS"));
    from_env!("allowed_hosts": c.trust.allowed_hosts => list("TELEPTY_ALLOWED_HOSTS"));
    from_env!("trust_tailscale": c.trust.trust_tailscale => flag("TELEPTY_TRUST_TAILSCALE"));
    // Numbers: a floor each; unparsable values leave the value below in place.
    let num = |field: &mut u64, var: &str, floor: u64| match u64_of(&env, var, floor) {
        Some(v) => {
            *field = v;
            true
        }
        None => false,
    };
    let (e, i) = (&mut c.engine, &mut c.inject);
    let shown = [
        num(&mut e.scrollback_lines, "TELEPTY_SCROLLBACK_LINES", 0),
        num(&mut e.memory_budget_mb, "TELEPTY_MEMORY_BUDGET_MB", 16),
        num(&mut i.submit_min_ms, "TELEPTY_SUBMIT_MIN_MS", 0),
        num(&mut i.submit_quiet_ms, "TELEPTY_SUBMIT_QUIET_MS", 0),
        num(&mut i.submit_max_ms, "TELEPTY_SUBMIT_MAX_MS", 0),
    ];
    num(
        &mut i.submit_max_wrapped_ms,
        "TELEPTY_SUBMIT_MAX_MS_WRAPPED",
        0,
    );
    num(&mut e.health_poll_ms, "TELEPTY_HEALTH_POLL_MS", 100);
    num(&mut e.stale_secs, "TELEPTY_SESSION_STALE_SECONDS", 1);
    num(&mut e.cleanup_secs, "TELEPTY_SESSION_CLEANUP_SECONDS", 1);
    num(
        &mut e.delivery_timeout_ms,
        "TELEPTY_DELIVERY_TIMEOUT_MS",
        100,
    );
    num(
        &mut e.state_idle_timeout_ms,
        "TELEPTY_STATE_IDLE_TIMEOUT_MS",
        100,
    );
    num(
        &mut e.state_stuck_repeat_count,
        "TELEPTY_STATE_STUCK_REPEAT_COUNT",
        1,
    );
    num(
        &mut e.state_stuck_window_ms,
        "TELEPTY_STATE_STUCK_WINDOW_MS",
        1000,
    );
    num(
        &mut e.state_thinking_timeout_ms,
        "TELEPTY_STATE_THINKING_TIMEOUT_MS",
        1000,
    );
    let keys = [
        "engine.scrollback_lines",
        "engine.memory_budget_mb",
        "inject.submit_min_ms",
        "inject.submit_quiet_ms",
        "inject.submit_max_ms",
    ];
    for (key, from_env) in keys.into_iter().zip(shown) {
        if from_env {
            set(c, key);
        }
    }
    if let Some(v) = u64_of(&env, "TELEPTY_PEER_DEADLINE_MS", 100) {
        c.peer_deadline_ms = v.min(60_000);
        set(c, "peer_deadline_ms");
    }
    // The cleanup never comes before a session counts as stale.
    c.engine.cleanup_secs = c.engine.cleanup_secs.max(c.engine.stale_secs);
    // 0 (or nothing usable) keeps the default: auto-reports cannot be turned off this way.
    if let Some(v) = u64_of(&env, "TELEPTY_AUTO_REPORT_IDLE_SECONDS", 0).filter(|&v| v > 0) {
        c.engine.auto_report_idle_secs = v;
    }
    from_env!("spawn.shell": c.shell => env("TELEPTY_SHELL").map(Some));
    from_env!("tui.prefix": c.tui.prefix => env("TELEPTY_TUI_PREFIX").map(Some));
    from_env!("recording.enabled": c.recording.enabled => flag("TELEPTY_RECORD_SESSIONS"));
    if let Some(v) = env("TELEPTY_WINDOW_SIZE") {
        c.window_size = v
            .parse()
            .map_err(|e: super::BadWindowSize| ConfigError::Env {
                var: "TELEPTY_WINDOW_SIZE".into(),
                message: e.to_string(),
            })?;
        set(c, "sessions.window_size");
    }
    Ok(())
}
