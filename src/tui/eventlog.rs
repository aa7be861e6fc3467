//! The event log panel: bus events (API.md §12) as one readable line each.

use std::collections::VecDeque;

use serde_json::Value;

use crate::wire::describe::{Style, describe};

/// Lines kept in memory.
pub const MAX_LINES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS` (UTC, from the event's timestamp).
    pub time: String,
    pub text: String,
}

/// The panel's state.
#[derive(Default)]
pub struct EventLog {
    pub lines: VecDeque<LogLine>,
    pub visible: bool,
    pub filter: String,
    pub editing: bool,
}

impl EventLog {
    pub fn push(&mut self, v: &Value) -> bool {
        self.push_from(None, v)
    }

    /// An event of a peer's bus (`Some(peer)`) starts with `@peer`.
    pub fn push_from(&mut self, peer: Option<&str>, v: &Value) -> bool {
        // `None`: not worth a line (`session_health`, …).
        let Some(mut text) = describe(v, Style::Log) else {
            return false;
        };
        if let Some(peer) = peer {
            text = format!("@{peer} {text}");
        }
        let time = v["timestamp"].as_str().and_then(|t| t.get(11..19));
        let time = time.unwrap_or("--:--:--").to_string();
        self.lines.push_back(LogLine { time, text });
        while self.lines.len() > MAX_LINES {
            self.lines.pop_front();
        }
        true
    }

    /// Lines passing the filter (case-insensitive substring), oldest first.
    pub fn filtered(&self) -> Vec<&LogLine> {
        let f = self.filter.to_lowercase();
        self.lines
            .iter()
            .filter(|l| f.is_empty() || l.text.to_lowercase().contains(&f))
            .collect()
    }
}

/// A line of the dashboard's own for its log (`telepty_notice`: never on the bus).
pub fn notice(text: &str) -> Value {
    #[derive(serde::Serialize)]
    struct Notice<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        message: &'a str,
        timestamp: String,
    }
    crate::wire::value(&Notice {
        kind: "telepty_notice",
        message: text,
        timestamp: crate::util::now_iso(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn describe(v: &Value) -> Option<String> {
        super::describe(v, Style::Log)
    }

    #[test]
    fn readable_lines() {
        assert_eq!(
            describe(&json!({"type": "session_health", "session_id": "a"})),
            None
        );
        assert_eq!(
            describe(&json!({"type": "session_spawn", "session_id": "w1", "command": "bash"}))
                .unwrap(),
            "spawn w1 (bash)"
        );
        assert_eq!(
            describe(&json!({"type": "session_rename", "old_id": "a", "new_id": "b"})).unwrap(),
            "rename a → b"
        );
        assert_eq!(
            describe(
                &json!({"type": "session_exit", "session_id": "w", "exit_code": 3, "signal": null})
            )
            .unwrap(),
            "exit w with code 3"
        );
        assert_eq!(describe(&json!({"type": "session_exit", "session_id": "w", "exit_code": null, "signal": "SIGKILL"})).unwrap(), "exit w with signal SIGKILL");
        assert_eq!(
            describe(&json!({"type": "inject_written", "target_agent": "w2", "from": "w1", "content": "hi\nthere"})).unwrap(),
            "inject w1 → w2: hi there"
        );
        assert_eq!(
            describe(&json!({"type": "inject_written", "target_agent": "w2", "content": "ls"}))
                .unwrap(),
            "inject → w2: ls"
        );
        assert_eq!(
            describe(&json!({"type": "message_routed", "from": "a", "to": "b"})).unwrap(),
            "message a → b"
        );
        assert_eq!(
            describe(&json!({"type": "session_auto_state", "session_id": "w", "auto_state": "idle", "auto_state_from": "running"})).unwrap(),
            "state w: running → idle"
        );
        assert_eq!(
            describe(&json!({"type": "injection", "target_agent": "all", "content": "x", "session_ids": [{"id": "a"}, {"id": "b"}]})).unwrap(),
            "broadcast → all (2): x"
        );
        assert_eq!(
            describe(&json!({"type": "custom.thing"})).unwrap(),
            "custom.thing"
        );
        assert_eq!(describe(&json!({"no": "type"})), None);
    }

    #[test]
    fn filter_and_cap() {
        let mut log = EventLog::default();
        for i in 0..(MAX_LINES + 5) {
            log.push(&json!({"type": "session_spawn", "session_id": format!("w{i}"), "command": "bash", "timestamp": "2026-04-08T12:34:56.789Z"}));
        }
        assert!(!log.push(&json!({"type": "session_health"})));
        assert_eq!(log.lines.len(), MAX_LINES);
        assert_eq!(log.lines.back().unwrap().time, "12:34:56");
        log.filter = "W1004".into();
        assert_eq!(log.filtered().len(), 1);
    }
}
