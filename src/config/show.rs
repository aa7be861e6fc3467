//! What `telepty config show` prints: every key, its effective value (read from the same
//! [`Config`] the daemon runs with) and its source.

use super::Config;

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
    "tui.notify",
    "tui.notify_command",
    "tui.sidebar",
    "tui.output_fps",
    "recording.enabled",
    "recording.mask",
    "sessions.window_size",
    "peers",
    "peer_deadline_ms",
    "resume",
    "resurrect.env",
];

fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

fn opt(v: &Option<String>, none: &str) -> String {
    v.as_ref()
        .map(|s| format!("{s:?}"))
        .unwrap_or_else(|| none.to_string())
}

impl Config {
    /// The effective value of `key` (one of [`KEYS`]) as TOML-ish text.
    pub fn value(&self, key: &str) -> String {
        match key {
            "daemon.host" => format!("{:?}", self.daemon.host),
            "daemon.port" => self.daemon.port.to_string(),
            "peer_allowlist" => list(&self.trust.peer_allowlist),
            "trust_tailscale" => self.trust.trust_tailscale.to_string(),
            "allowed_origins" => list(&self.trust.allowed_origins),
            "allowed_hosts" => list(&self.trust.allowed_hosts),
            "engine.scrollback_lines" => self.engine.scrollback_lines.to_string(),
            "engine.memory_budget_mb" => self.engine.memory_budget_mb.to_string(),
            "inject.submit_min_ms" => self.inject.submit_min_ms.to_string(),
            "inject.submit_quiet_ms" => self.inject.submit_quiet_ms.to_string(),
            "inject.submit_max_ms" => self.inject.submit_max_ms.to_string(),
            "spawn.shell" => opt(&self.shell, "(unset: $SHELL, else /bin/sh)"),
            "theme" => opt(&self.tui.theme, "(unset: built-in)"),
            "tui.prefix" => opt(&self.tui.prefix, "(unset: built-in)"),
            "tui.notify" => list(&self.tui.notify),
            "tui.notify_command" => opt(&self.tui.notify_command, "(unset)"),
            "tui.sidebar" => self.tui.sidebar.to_string(),
            "tui.output_fps" => self.tui.output_fps.to_string(),
            "recording.enabled" => self.recording.enabled.to_string(),
            "recording.mask" => list(&self.recording.masks),
            "sessions.window_size" => format!("{:?}", self.window_size.as_str()),
            "peers" => format!("{} configured", self.peers.len()),
            "peer_deadline_ms" => self.peer_deadline_ms.to_string(),
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
}
