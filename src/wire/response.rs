//! Response bodies of the session routes (API.md §4–§7, §17). The engine returns these (or
//! the data they are made of); the API only picks the status.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/sessions/spawn` (201).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Spawned {
    pub session_id: String,
    pub command: String,
    pub cwd: String,
}

/// `POST /api/sessions/register`: 201 when created, 200 with `reregistered: true` when the id
/// was already live.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    pub session_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub command: String,
    pub cwd: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reregistered: bool,
}

/// `PATCH /api/sessions/:id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Renamed {
    pub success: bool,
    pub old_id: String,
    pub new_id: String,
}

/// One target that took the message (multicast, broadcast, submit-all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct TargetOk {
    pub id: String,
    pub strategy: String,
}

/// One target that did not (`strategy` only in submit-all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetFailed {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    pub code: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetResults {
    pub successful: Vec<TargetOk>,
    pub failed: Vec<TargetFailed>,
}

/// Multicast, broadcast and submit-all: always 200.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FanOut {
    pub success: bool,
    pub results: TargetResults,
}

/// `POST /api/sessions/:id/inject`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Injected {
    pub success: bool,
    pub inject_id: String,
    pub strategy: String,
    /// `deferred`, `skipped`, or with `?wait=delivered` `sent`.
    pub submit: String,
    /// With `?wait=delivered` only.
    pub delivered: Option<bool>,
    /// Extension: `queued` (answered once queued), or with `?wait=delivered` `submitted` when
    /// the screen confirms the prompt was submitted, `typed` when the text was written but that
    /// is not confirmed (see `reason`) or no Enter was asked for.
    pub outcome: Option<String>,
    /// Why a `typed` outcome is not confirmed.
    pub reason: Option<String>,
    /// The `inject_id` was seen before: this answers the first request, nothing was typed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// `POST /api/sessions/:id/wait`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Waited {
    pub matched: bool,
    #[serde(rename = "match")]
    pub matched_text: Option<String>,
    pub timed_out: bool,
    pub exited: bool,
    pub settled: bool,
    pub generation: u64,
    /// The state reached, for a wait on a state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<super::request::AgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
}

/// `POST /api/sessions/:id/state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateReported {
    pub success: bool,
    pub session_id: String,
    pub transport: super::session::Transport,
    pub semantic: Option<Value>,
}

/// `GET /api/sessions/:id/state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateView {
    pub session_id: String,
    /// The classifier's full view.
    pub auto: Value,
    pub self_report: Option<Value>,
    pub last_state_report_at: Option<String>,
}

/// `GET /api/health`: `status` stays `"ok"` while the API serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub persistence: Persistence,
}

/// The `persistence` block of `GET /api/health`: whether session state reaches the disk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct Persistence {
    pub ok: bool,
    pub error: Option<String>,
    pub since: Option<String>,
    pub last_saved_at: Option<String>,
    pub path: Option<String>,
    pub warning: Option<String>,
    pub lost_sessions: usize,
}

/// `GET /api/meta`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Meta {
    pub name: String,
    pub implementation: String,
    pub version: String,
    pub pid: u32,
    pub host: String,
    pub port: u16,
    pub machine_id: String,
    pub terminal: String,
    pub capabilities: Vec<String>,
}

/// `GET /api/peers`: `known` is the `peers` object of peers.json.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Peers {
    pub active: Vec<Value>,
    pub known: serde_json::Map<String, Value>,
}

/// `DELETE /api/sessions/:id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    pub success: bool,
    pub status: String,
}

/// `POST /api/sessions/:id/submit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submitted {
    pub success: bool,
    pub strategy: String,
    pub attempts: u32,
}

/// `GET /api/sessions/:id/screen` as text (`format: "ansi"` with ANSI rows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Screen {
    pub session_id: String,
    pub screen: String,
    pub lines: usize,
    pub total_lines: usize,
    pub raw: bool,
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `GET /api/sessions/:id/screen`: lines of text (or ANSI), or with `format=json` the grid.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ScreenReply {
    Text(Screen),
    Grid(ScreenGrid),
}

/// `GET /api/sessions/:id/screen?format=json`: the grid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenGrid {
    /// `"json"`
    pub format: String,
    pub rows: Vec<String>,
    pub cols: u16,
    pub row_count: u16,
    pub cursor: Cursor,
    pub alt_screen: bool,
    pub title: Option<String>,
    pub generation: u64,
    pub session_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cursor {
    pub row: u16,
    pub col: u16,
    pub visible: bool,
}

/// `success` and the session: mailbox clear, dead-letter clear.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionOk {
    pub success: bool,
    pub session_id: String,
}

/// `POST /api/sessions/:id/keys`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeysSent {
    pub success: bool,
    pub session_id: String,
    pub count: usize,
}

/// `POST /api/sessions/:id/resize` with `window_size` alone (null: the configured default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicySet {
    pub success: bool,
    pub session_id: String,
    pub window_size: Option<String>,
}

/// `POST /api/sessions/:id/resize` with a size.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resized {
    pub success: bool,
    pub session_id: String,
    pub cols: u16,
    pub rows: u16,
}

/// `GET /api/sessions/:id/mailbox` (API.md §8).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mailbox {
    pub session_id: String,
    pub pending: Vec<MailboxEntry>,
    pub dead_letter: Vec<DeadLetter>,
}

/// A queued (or recently finished) message of a mailbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MailboxEntry {
    pub msg_id: String,
    pub from: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub attempt: u32,
    pub state: String,
}

/// A message given up on; `payload` keeps the start of its text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub msg_id: String,
    pub from: Option<String>,
    pub to: String,
    pub payload: Option<String>,
    pub reason: Option<String>,
    pub failed_at: Option<u64>,
    pub attempts: u32,
}

/// `POST /api/sessions/:id/mailbox/ack`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acked {
    pub success: bool,
    pub msg_id: String,
}

/// `POST /api/bus/publish`; `event` is the normalised state report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Published {
    pub success: bool,
    pub delivered: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
}

/// `POST /api/sessions/resurrect`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resurrection {
    pub success: bool,
    pub results: Vec<Resurrected>,
}

/// One id of a resurrection: `started` (with what runs), `forgotten`, or failed.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resurrected {
    pub id: String,
    pub success: bool,
    pub status: Option<String>,
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

/// One item of `GET /api/sessions/lost`: a spawned session of the store that was not running
/// at start, with the arguments a resurrection would use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct LostSession {
    pub id: String,
    /// `"spawned"`
    #[serde(rename = "type")]
    pub kind: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub cols: u16,
    pub rows: u16,
    /// The allowlisted environment it ran with.
    pub env: serde_json::Map<String, Value>,
    pub created_at: Option<String>,
    pub last_activity_at: Option<String>,
    pub resume_args: Vec<String>,
    pub resurrect_args: Vec<String>,
}

/// `POST /api/pair`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairStarted {
    pub code: String,
    pub expires_in_s: u64,
}

/// `GET /api/pair`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairStatus {
    /// A code is open.
    pub pending: bool,
    /// The machine that claimed the last code.
    pub paired: Option<String>,
}

/// `POST /api/pair/claim`: this machine's name and token, for the claimer's peer entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairClaimed {
    pub name: String,
    pub token: String,
}
