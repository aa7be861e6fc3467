//! The session object of `GET /api/sessions[/:id]` and its blocks (API.md §2, §17).
//!
//! Field names are exact; every field is always present (null when unset).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `transport` block (API.md §2), also in every bus envelope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Transport {
    pub health_status: String,
    pub health_reason: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub backend: String,
    pub terminal: Option<String>,
    pub active_clients: usize,
    pub ready: bool,
    pub idle_seconds: Option<u64>,
    pub disconnected_seconds: Option<u64>,
    pub last_activity_at: Option<String>,
    pub last_connected_at: Option<String>,
    pub last_disconnected_at: Option<String>,
    pub last_inject_from: Option<String>,
    pub last_reply_to: Option<String>,
    pub last_thread_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Locator {
    pub machine_id: String,
    pub session_id: String,
    /// The last path segment of `cwd`.
    pub project_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MailboxCounts {
    pub pending: usize,
    pub dead_letter: usize,
}

/// `sizing` of a spawned session: own size, policy and the viewers' sizes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Sizing {
    pub window_size: String,
    /// The per-session policy, null for the configured default.
    #[serde(rename = "override")]
    pub policy_override: Option<String>,
    pub cols: u16,
    pub rows: u16,
    pub viewers: Vec<ViewerSize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ViewerSize {
    pub cols: u16,
    pub rows: u16,
}

/// The fields only `GET /api/sessions/:id` has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Detail {
    /// The requested id when it differs from `id`.
    pub alias: Option<String>,
    pub last_inject_from: Option<String>,
    pub last_inject_reply_to: Option<String>,
}

/// The session object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    pub locator: Locator,
    #[serde(rename = "type")]
    pub kind: String,
    pub command: String,
    pub cwd: String,
    pub backend: String,
    pub terminal: Option<String>,
    pub term_program: Option<String>,
    pub term: Option<String>,
    pub cmux_workspace_id: Option<String>,
    pub cmux_surface_id: Option<String>,
    pub created_at: Option<String>,
    pub last_activity_at: Option<String>,
    pub last_connected_at: Option<String>,
    pub last_disconnected_at: Option<String>,
    pub last_state_report_at: Option<String>,
    pub idle_seconds: Option<u64>,
    #[serde(rename = "active_clients")]
    pub active_clients: usize,
    pub ready: bool,
    pub delivery: Option<Value>,
    pub delivery_endpoint: Option<String>,
    pub health_status: String,
    pub health_reason: String,
    pub disconnected_seconds: Option<u64>,
    pub transport: Transport,
    pub semantic: Option<Value>,
    /// `{state, since, confidence}` of the classifier.
    pub auto_state: Option<Value>,
    pub mailbox: MailboxCounts,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    pub exited_at: Option<String>,
    pub last_output_at: Option<String>,
    pub pid: Option<u32>,
    pub cols: u16,
    pub rows: u16,
    pub args: Vec<String>,
    pub aliases: Vec<String>,
    /// Spawned sessions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing: Option<Sizing>,
    /// The detail route only.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

/// A self-report as the daemon keeps it (`semantic`, API.md §5), and the body `telepty report`
/// sends (without `seq`: the daemon then counts on from the previous one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Semantic {
    pub phase: String,
    pub current_task: Option<String>,
    pub blocker: Option<String>,
    pub needs_input: bool,
    pub thread_id: Option<String>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The classifier's view: `auto` of `GET /api/sessions/:id/state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AutoView {
    pub state: String,
    pub since: String,
    pub since_ms: u64,
    pub duration_ms: u64,
    pub confidence: f64,
    pub last_output_at: Option<String>,
    pub last_output_preview: String,
    pub detail: String,
}

/// `autoState` of the session object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AutoBrief {
    pub state: String,
    pub since: String,
    pub confidence: f64,
}
