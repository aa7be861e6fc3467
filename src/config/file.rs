//! The file layers: config.toml (typed, validated; an invalid file is an error naming the line
//! and the key, never silently replaced by defaults) and the trust keys of
//! `~/.telepty/config.json` (best effort, as the daemon always read them).
//!
//! Unknown keys are accepted: other tools and later versions may add some.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::env::{split_list, truthy};
use super::{Config, ConfigError, KittyConfig, Peer, Source, WindowSize};

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
            StrOrList::One(s) => Some(split_list(&s)),
            StrOrList::Many(v) => Some(v),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileConfig {
    daemon: DaemonFile,
    peer_allowlist: Option<StrOrList>,
    trust_tailscale: Option<bool>,
    allowed_origins: Option<StrOrList>,
    allowed_hosts: Option<StrOrList>,
    engine: EngineFile,
    inject: InjectFile,
    spawn: SpawnFile,
    theme: Option<String>,
    prefix: Option<String>,
    tui: TuiFile,
    recording: RecordingFile,
    sessions: SessionsFile,
    peers: Vec<toml::Table>,
    discover_tailscale: Option<bool>,
    peer_deadline_ms: Option<u64>,
    resume: BTreeMap<String, Vec<String>>,
    resurrect: ResurrectFile,
    kitty: Option<KittyConfig>,
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
    notify: Option<Vec<String>>,
    notify_command: Option<String>,
    sidebar: Option<bool>,
    output_fps: Option<u64>,
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

/// A value a file sets replaces the one below it, and `config show` names the file as its
/// source: `from_file!(config, "key": config.field => Option<value>)`.
macro_rules! from_file {
    ($c:ident, $key:literal: $field:expr => $value:expr) => {
        if let Some(v) = $value {
            $field = v;
            $c.sources.insert($key, Source::File);
        }
    };
}

/// The trust keys of `~/.telepty/config.json` (the token file; API.md §16). A missing or
/// unparsable file, or a value of the wrong type, sets nothing: the token code regenerates
/// that file, and config.toml and the environment override it anyway.
pub(super) fn apply_json_trust(c: &mut Config, path: &Path) {
    let Some(doc) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return;
    };
    let list = |k: &str| match doc.get(k)? {
        Value::String(s) => Some(split_list(s)),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    };
    from_file!(c, "peer_allowlist": c.trust.peer_allowlist => list("peer_allowlist"));
    // The same boolean reading as the environment's (`"on"` is true everywhere).
    let flag = match doc.get("trust_tailscale") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(truthy(s)),
        _ => None,
    };
    from_file!(c, "trust_tailscale": c.trust.trust_tailscale => flag);
    from_file!(c, "allowed_origins": c.trust.allowed_origins => list("allowed_origins"));
    from_file!(c, "allowed_hosts": c.trust.allowed_hosts => list("allowed_hosts"));
}

/// config.toml at `path` over `c`; a missing file sets nothing.
pub(super) fn apply_path(c: &mut Config, path: &Path) -> Result<(), ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.toml".into());
    apply_toml(c, &text, &file_name)
}

/// config.toml's text over `c`. Nothing is applied when the text is invalid.
pub(super) fn apply_toml(c: &mut Config, text: &str, file_name: &str) -> Result<(), ConfigError> {
    let f: FileConfig = toml::from_str(text).map_err(|e| {
        let line = line_of(text, e.span().map(|r| r.start).unwrap_or(0));
        ConfigError::Invalid {
            file: file_name.to_string(),
            line,
            key: key_at(text, line),
            message: e.message().trim().to_string(),
        }
    })?;
    let invalid = |section: Option<&str>, key: &str, message: String| ConfigError::Invalid {
        file: file_name.to_string(),
        line: locate(text, section, key).unwrap_or(1),
        key: Some(match section {
            Some(sec) => format!("{sec}.{key}"),
            None => key.to_string(),
        }),
        message,
    };
    // Validate everything before changing anything.
    if f.daemon.host.as_ref().is_some_and(|h| h.trim().is_empty()) {
        return Err(invalid(Some("daemon"), "host", "must not be empty".into()));
    }
    if f.daemon.port == Some(0) {
        return Err(invalid(Some("daemon"), "port", "must be 1-65535".into()));
    }
    if f.engine.memory_budget_mb.is_some_and(|v| v < 16) {
        let msg = "must be at least 16".into();
        return Err(invalid(Some("engine"), "memory_budget_mb", msg));
    }
    for p in f.recording.mask.iter().flatten() {
        if let Err(e) = regex::Regex::new(p) {
            let why = e.to_string().lines().last().unwrap_or("").to_string();
            let msg = format!("invalid pattern {p:?}: {why}");
            return Err(invalid(Some("recording"), "mask", msg));
        }
    }
    if let Some(bad) = f
        .tui
        .notify
        .iter()
        .flatten()
        .find(|s| !super::NOTIFY_STATES.contains(&s.as_str()))
    {
        let msg = format!(
            "unknown state {bad:?} (known: {})",
            super::NOTIFY_STATES.join(", ")
        );
        return Err(invalid(Some("tui"), "notify", msg));
    }
    let window_size = f
        .sessions
        .window_size
        .as_deref()
        .map(str::parse::<WindowSize>);
    let window_size = window_size
        .transpose()
        .map_err(|e| invalid(Some("sessions"), "window_size", e.to_string()))?;
    // Matched against the command's file name: a path or a space can never match.
    if let Some(cmd) = f
        .resume
        .keys()
        .find(|c| c.is_empty() || c.contains('/') || c.chars().any(char::is_whitespace))
    {
        let msg = "must be a command name (no path, no spaces)".into();
        return Err(invalid(Some("resume"), cmd, msg));
    }
    if let Some(bad) = f
        .resurrect
        .env
        .iter()
        .flatten()
        .find(|n| n.is_empty() || n.contains('=') || n.contains('\0'))
    {
        let msg = format!("not a variable name: {bad:?}");
        return Err(invalid(Some("resurrect"), "env", msg));
    }

    let host = f.daemon.host.map(|h| h.trim().to_string());
    c.daemon_file.host = host.clone().or(c.daemon_file.host.take());
    c.daemon_file.port = f.daemon.port.or(c.daemon_file.port);
    from_file!(c, "daemon.host": c.daemon.host => host);
    from_file!(c, "daemon.port": c.daemon.port => f.daemon.port);
    let list = |v: Option<StrOrList>| v.and_then(StrOrList::into_vec);
    from_file!(c, "peer_allowlist": c.trust.peer_allowlist => list(f.peer_allowlist));
    from_file!(c, "trust_tailscale": c.trust.trust_tailscale => f.trust_tailscale);
    from_file!(c, "allowed_origins": c.trust.allowed_origins => list(f.allowed_origins));
    from_file!(c, "allowed_hosts": c.trust.allowed_hosts => list(f.allowed_hosts));
    let (engine, inject) = (f.engine, f.inject);
    from_file!(c, "engine.scrollback_lines": c.engine.scrollback_lines => engine.scrollback_lines);
    from_file!(c, "engine.memory_budget_mb": c.engine.memory_budget_mb => engine.memory_budget_mb);
    from_file!(c, "inject.submit_min_ms": c.inject.submit_min_ms => inject.submit_min_ms);
    from_file!(c, "inject.submit_quiet_ms": c.inject.submit_quiet_ms => inject.submit_quiet_ms);
    from_file!(c, "inject.submit_max_ms": c.inject.submit_max_ms => inject.submit_max_ms);
    let shell = f.spawn.shell.filter(|v| !v.trim().is_empty());
    from_file!(c, "spawn.shell": c.shell => shell.map(Some));
    from_file!(c, "theme": c.tui.theme => f.tui.theme.or(f.theme).map(Some));
    from_file!(c, "tui.prefix": c.tui.prefix => f.tui.prefix.or(f.prefix).map(Some));
    from_file!(c, "tui.notify": c.tui.notify => f.tui.notify);
    let notify_command = f.tui.notify_command.filter(|v| !v.trim().is_empty());
    from_file!(c, "tui.notify_command": c.tui.notify_command => notify_command.map(Some));
    from_file!(c, "tui.sidebar": c.tui.sidebar => f.tui.sidebar);
    let fps = f.tui.output_fps.map(|v| v.clamp(1, 60));
    from_file!(c, "tui.output_fps": c.tui.output_fps => fps);
    from_file!(c, "recording.enabled": c.recording.enabled => f.recording.enabled);
    from_file!(c, "recording.mask": c.recording.masks => f.recording.mask);
    from_file!(c, "sessions.window_size": c.window_size => window_size);
    from_file!(c, "resurrect.env": c.resurrect_env => f.resurrect.env);
    if !f.peers.is_empty() {
        c.sources.insert("peers", Source::File);
    }
    c.peers = f.peers.iter().filter_map(peer_of).collect();
    if !f.resume.is_empty() {
        c.sources.insert("resume", Source::File);
    }
    c.resume.extend(f.resume);
    c.discover_tailscale = f.discover_tailscale.unwrap_or(c.discover_tailscale);
    let deadline = f.peer_deadline_ms.map(|ms| ms.clamp(100, 60_000));
    from_file!(c, "peer_deadline_ms": c.peer_deadline_ms => deadline);
    c.kitty = f.kitty.unwrap_or(std::mem::take(&mut c.kitty));
    Ok(())
}

/// One `[[peers]]` entry; `None` without a usable name or url. An empty token counts as none.
fn peer_of(t: &toml::Table) -> Option<Peer> {
    let text = |k: &str| {
        t.get(k)
            .and_then(toml::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(Peer {
        name: text("name")?,
        url: text("url")?,
        token: text("token"),
    })
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
        let inner = t.trim_start_matches("[[").trim_end_matches("]]");
        return Some(inner.trim().to_string());
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
