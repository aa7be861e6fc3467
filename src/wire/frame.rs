//! WebSocket frames of a session socket (API.md §11.2), both ways: what clients send
//! (`input`, `resize`, `release_size`; a wrapped owner's `output`) and what the daemon sends
//! (`output`, `resize`, `snapshot`; to a wrapped owner `inject`, `resize`, `rename`; to
//! viewers `inject_notification`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Input {
        data: String,
    },
    Output {
        data: String,
    },
    Resize {
        cols: u16,
        rows: u16,
    },
    ReleaseSize,
    Snapshot {
        data: String,
        cols: u16,
        rows: u16,
        generation: u64,
    },
    /// To a wrapped owner: type this (`raw`: as is, no Enter handling). Extension `enter`: an
    /// Enter follows this text (a bridge that loses the daemon before it presses it itself).
    Inject {
        data: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        raw: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        enter: bool,
    },
    /// From a wrapped owner: the child looks ready for input.
    Ready,
    /// From a wrapped owner: the child died (and whether the bridge restarts it). A missing
    /// `Option` field reads as `None`.
    SessionDied {
        session_id: String,
        #[serde(rename = "exitCode")]
        exit_code: Option<i32>,
        signal: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
        #[serde(rename = "crashCount", skip_serializing_if = "Option::is_none")]
        crash_count: Option<usize>,
        #[serde(rename = "willRestart", skip_serializing_if = "Option::is_none")]
        will_restart: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamp: Option<String>,
    },
    /// From a wrapped owner: the child was restarted after a crash.
    SessionRestarted {
        session_id: String,
        #[serde(rename = "crashCount")]
        crash_count: usize,
        timestamp: String,
    },
    Rename {
        old_id: String,
        new_id: String,
    },
    InjectNotification {
        inject_id: String,
        session_id: String,
        from: Option<String>,
        content: String,
        timestamp: String,
    },
}

impl Frame {
    /// The frame's text on the socket.
    pub fn text(&self) -> String {
        // Serialising these cannot fail: string keys, no floats.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl From<Frame> for Value {
    fn from(f: Frame) -> Value {
        serde_json::to_value(f).unwrap_or(Value::Null)
    }
}
