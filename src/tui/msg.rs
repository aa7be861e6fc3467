//! Messages from the dashboard's background tasks (session lists, the bus, outcomes of
//! backend calls, themes) to its loop: shared by the loop and the remote-daemon mirror.

use serde_json::Value;

use super::backend;
use super::info::SessionInfo;
use super::theme;

/// Messages from background tasks to the loop.
pub(crate) enum AppMsg {
    Sessions(Vec<SessionInfo>),
    SessionsFailed(String),
    /// A bus event of this dashboard's daemon (`peer` = `None`) or of a peer's.
    Bus {
        peer: Option<String>,
        event: Value,
    },
    /// A peer's poller: its sessions, only that it answers (`None`), or why it does not.
    Peer {
        name: String,
        result: Result<Option<Vec<SessionInfo>>, String>,
    },
    Refresh,
    Outcome(backend::Outcome),
    /// Boxed: a theme is large, the other messages are not.
    Theme(String, Result<Box<theme::Theme>, String>),
}

/// Events that change the session list or a title.
pub(crate) fn is_session_event(v: &Value) -> bool {
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    ty.starts_with("session") && ty != "session_health" && ty != "session.idle"
}
