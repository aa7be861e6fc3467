//! kitty's `ls` listing (tolerant of fields old and new kitty versions add or lack) and which
//! windows hold telepty sessions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KittyError;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct OsWindow {
    pub id: u64,
    #[serde(default)]
    pub is_focused: bool,
    #[serde(default)]
    pub tabs: Vec<Tab>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Tab {
    pub id: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub layout: String,
    #[serde(default)]
    pub enabled_layouts: Vec<String>,
    #[serde(default)]
    pub is_focused: bool,
    /// The active tab of its OS window (newer kitty).
    #[serde(default)]
    pub is_active: bool,
    /// The same, as kitty 0.26 names it.
    #[serde(default)]
    pub is_active_tab: bool,
    #[serde(default)]
    pub windows: Vec<Window>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Window {
    pub id: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub pid: Option<u64>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub cmdline: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub foreground_processes: Vec<Process>,
    #[serde(default)]
    pub is_focused: bool,
    /// The active window of its tab (newer kitty).
    #[serde(default)]
    pub is_active: bool,
    /// The same, as kitty 0.26 names it.
    #[serde(default)]
    pub is_active_window: bool,
    #[serde(default)]
    pub is_self: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Process {
    pub pid: Option<u64>,
    pub cmdline: Vec<String>,
    pub cwd: Option<String>,
}

impl Tab {
    /// The active tab of its OS window.
    pub fn active(&self) -> bool {
        self.is_active || self.is_active_tab
    }
}

impl Window {
    /// The active window of its tab.
    pub fn active(&self) -> bool {
        self.is_active || self.is_active_window
    }
}

/// Parse the `data` of an `ls` answer: a JSON string holding the listing (or, leniently, the
/// listing itself).
pub fn parse_ls(data: &Value) -> Result<Vec<OsWindow>, KittyError> {
    let listing = match data {
        Value::String(s) => serde_json::from_str::<Value>(s)
            .map_err(|e| KittyError::Protocol(format!("`ls` data is not JSON ({e})")))?,
        other => other.clone(),
    };
    serde_json::from_value(listing)
        .map_err(|e| KittyError::Protocol(format!("unexpected `ls` listing ({e})")))
}

/// The session id named by a `telepty` command line: `telepty allow --id ID …`,
/// `telepty attach [flags] ID`, `telepty spawn --id ID …` (which attaches).
pub fn session_in_cmdline(argv: &[String]) -> Option<String> {
    // The program may be run through an interpreter or wrapper: find `telepty` in the first
    // few words.
    let at = argv.iter().take(3).position(|a| {
        let base = a.rsplit('/').next().unwrap_or(a);
        base == "telepty"
    })?;
    let rest = &argv[at + 1..];
    let (sub, args) = rest.split_first()?;
    match sub.as_str() {
        "allow" | "spawn" => flag_value(args, "--id"),
        "attach" => {
            let mut it = args.iter();
            while let Some(a) = it.next() {
                if a == "--" {
                    return it.next().cloned().filter(|s| !s.is_empty());
                }
                if a == "--detach-key" {
                    it.next();
                    continue;
                }
                if a.starts_with('-') {
                    continue;
                }
                return Some(a.clone());
            }
            None
        }
        _ => None,
    }
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            return None;
        }
        if a == flag {
            return it.next().cloned().filter(|s| !s.is_empty());
        }
        if let Some(v) = a.strip_prefix(&prefix) {
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    None
}

/// The telepty session a kitty window holds, if any: a `telepty allow/attach/spawn` running in
/// it (foreground processes first, then the window's own command line), its environment
/// (`TELEPTY_SESSION_ID`), or a title equal to one of `known` session ids.
pub fn window_session(w: &Window, known: &[String]) -> Option<String> {
    for p in &w.foreground_processes {
        if let Some(id) = session_in_cmdline(&p.cmdline) {
            return Some(id);
        }
    }
    if let Some(id) = session_in_cmdline(&w.cmdline) {
        return Some(id);
    }
    if let Some(id) = w.env.get("TELEPTY_SESSION_ID").filter(|s| !s.is_empty()) {
        return Some(id.clone());
    }
    let title = w.title.trim();
    known.iter().find(|k| k.as_str() == title).cloned()
}

/// A window holding a session, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionWindow {
    pub session: String,
    pub window_id: u64,
    pub tab_id: u64,
    pub os_window_id: u64,
    pub title: String,
}

/// Every window holding a session, in listing order.
pub fn session_windows(list: &[OsWindow], known: &[String]) -> Vec<SessionWindow> {
    let mut out = Vec::new();
    for osw in list {
        for tab in &osw.tabs {
            for w in &tab.windows {
                if let Some(session) = window_session(w, known) {
                    out.push(SessionWindow {
                        session,
                        window_id: w.id,
                        tab_id: tab.id,
                        os_window_id: osw.id,
                        title: w.title.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Every tab, with its OS window id.
pub fn tabs(list: &[OsWindow]) -> impl Iterator<Item = (u64, &Tab)> {
    list.iter()
        .flat_map(|o| o.tabs.iter().map(move |t| (o.id, t)))
}

/// The tab with this id.
pub fn find_tab(list: &[OsWindow], id: u64) -> Option<&Tab> {
    tabs(list).map(|(_, t)| t).find(|t| t.id == id)
}

/// The tab holding window `id`.
pub fn tab_of_window(list: &[OsWindow], id: u64) -> Option<&Tab> {
    tabs(list)
        .map(|(_, t)| t)
        .find(|t| t.windows.iter().any(|w| w.id == id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn telepty_command_lines_name_sessions() {
        let cases = [
            (
                "/usr/local/bin/telepty allow --id claude-main claude",
                Some("claude-main"),
            ),
            ("telepty allow --id=codex codex --full-auto", Some("codex")),
            ("telepty attach w1", Some("w1")),
            ("telepty attach --observe w1@box", Some("w1@box")),
            ("telepty attach --detach-key ctrl+q w2", Some("w2")),
            ("telepty spawn --id w3 -- bash", Some("w3")),
            ("node /opt/bin/telepty allow --id n1 claude", Some("n1")),
            ("telepty list", None),
            ("telepty attach", None),
            ("telepty allow claude", None),
            ("bash -l", None),
            ("vim telepty", None),
        ];
        for (line, want) in cases {
            assert_eq!(session_in_cmdline(&argv(line)).as_deref(), want, "{line}");
        }
    }

    #[test]
    fn ls_listing_from_kitty_0_26() {
        // Trimmed from a real kitty 0.26.5 answer: the listing is a JSON string.
        let listing = json!([{
            "id": 1, "is_focused": true, "platform_window_id": 2097164,
            "tabs": [{
                "active_window_history": [1], "enabled_layouts": ["fat", "grid", "stack"],
                "id": 1, "is_active_tab": true, "is_focused": true, "layout": "fat",
                "layout_opts": {"bias": 50, "full_size": 1, "mirrored": false},
                "layout_state": {"biased_map": {}, "main_bias": [0.5, 0.5]},
                "title": "agents",
                "windows": [
                    {"cmdline": ["/bin/bash", "--posix"], "columns": 71, "cwd": "/tmp",
                     "env": {"KITTY_WINDOW_ID": "1"}, "foreground_processes": [
                        {"cmdline": ["telepty", "allow", "--id", "a1", "claude"], "cwd": "/tmp", "pid": 9}],
                     "id": 1, "is_focused": true, "is_self": false, "lines": 20, "pid": 8,
                     "title": "✳ Claude Code"},
                    {"cmdline": ["/bin/bash"], "env": {"TELEPTY_SESSION_ID": "b2"}, "id": 2, "title": "x"},
                    {"cmdline": ["/bin/bash"], "env": {}, "id": 3, "title": "c3"},
                    {"cmdline": ["/bin/bash"], "env": {}, "id": 4, "title": "plain"}
                ]
            }]
        }]);
        let data = Value::String(listing.to_string());
        let list = parse_ls(&data).unwrap();
        assert_eq!(list[0].tabs[0].layout, "fat");
        assert_eq!(list[0].tabs[0].title, "agents");
        let found = session_windows(&list, &["c3".to_string()]);
        let ids: Vec<_> = found
            .iter()
            .map(|s| (s.session.as_str(), s.window_id))
            .collect();
        assert_eq!(ids, vec![("a1", 1), ("b2", 2), ("c3", 3)]);
        assert_eq!(tab_of_window(&list, 3).unwrap().id, 1);
        assert!(parse_ls(&json!("not json")).is_err());
        assert!(parse_ls(&json!({"id": 1})).is_err());
    }
}
