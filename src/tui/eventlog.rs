//! The event log panel: bus events (API.md §12) as one readable line each.

use std::collections::VecDeque;

use serde_json::Value;

/// Lines kept in memory.
pub const MAX_LINES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS` (UTC, from the event's timestamp).
    pub time: String,
    pub text: String,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("?")
}

fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One line for a bus event; `None` for events not worth a line (`session_health`, …).
pub fn describe(v: &Value) -> Option<String> {
    let ty = v
        .get("type")
        .and_then(Value::as_str)
        .or_else(|| v.get("kind").and_then(Value::as_str))?;
    let sid = s(v, "session_id");
    Some(match ty {
        "session_health" | "mailbox_delivered" => return None,
        "session_spawn" => format!("spawn {sid} ({})", s(v, "command")),
        // The dashboard's own notice (not a bus event): sessions lost in a reboot.
        "telepty_notice" => s(v, "message").to_string(),
        "session_register" => format!("register {sid} ({})", s(v, "command")),
        "session_rename" => format!("rename {} → {}", s(v, "old_id"), s(v, "new_id")),
        "session.replaced" => format!(
            "replaced {} → {} (alias {})",
            s(v, "old_id"),
            s(v, "new_id"),
            s(v, "alias")
        ),
        "session_exit" => {
            let how = match (
                v.get("signal").and_then(Value::as_str),
                v.get("exit_code").and_then(Value::as_i64),
            ) {
                (Some(sig), _) => format!("signal {sig}"),
                (None, Some(c)) => format!("code {c}"),
                (None, None) => "unknown status".into(),
            };
            format!("exit {sid} with {how}")
        }
        "session_auto_state" => format!(
            "state {sid}: {} → {}",
            s(v, "auto_state_from"),
            s(v, "auto_state")
        ),
        "session_state_report" => {
            let phase = v
                .pointer("/semantic/phase")
                .and_then(Value::as_str)
                .unwrap_or("?");
            format!("report {sid}: {phase}")
        }
        "session_ready" => format!("ready {sid}"),
        "session_disconnect" => format!("disconnect {sid}"),
        "session_reconnect" => format!("reconnect {sid}"),
        "session_stale" => format!("stale {sid}"),
        "session_cleanup" => format!("cleanup {sid}"),
        "session.idle" => format!(
            "idle {sid} ({}s)",
            v.get("idleSeconds").and_then(Value::as_u64).unwrap_or(0)
        ),
        "inject_written" => {
            let target = s(v, "target_agent");
            let body = v
                .get("content")
                .and_then(Value::as_str)
                .map(|c| format!(": {}", clip(c, 60)))
                .unwrap_or_default();
            match v.get("from").and_then(Value::as_str) {
                Some(from) => format!("inject {from} → {target}{body}"),
                None if v.get("source_type").is_some() => format!("route → {target}"),
                None => format!("inject → {target}{body}"),
            }
        }
        "inject_failed" => format!(
            "inject failed → {}: {} {}",
            s(v, "target_agent"),
            s(v, "code"),
            s(v, "error")
        ),
        "message_routed" => format!("message {} → {}", s(v, "from"), s(v, "to")),
        "injection" => {
            let target = s(v, "target_agent");
            let body = clip(s(v, "content"), 60);
            if target == "all" {
                let n = v
                    .get("session_ids")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                format!("broadcast → all ({n}): {body}")
            } else {
                format!("multicast → {target}: {body}")
            }
        }
        "mailbox_delivery_failed" => format!("delivery failed {sid}: {}", s(v, "error")),
        "submit" => format!("submit {sid}"),
        other => {
            let target = v
                .get("session_id")
                .and_then(Value::as_str)
                .map(|x| format!(" {x}"))
                .unwrap_or_default();
            format!("{other}{target}")
        }
    })
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
        let Some(text) = describe(v) else {
            return false;
        };
        let time = v
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.get(11..19))
            .unwrap_or("--:--:--")
            .to_string();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
