//! Response bodies of the session routes (API.md §4–§7, §17). The engine returns these (or
//! the data they are made of); the API only picks the status.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/sessions/spawn` (201).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spawned {
    pub session_id: String,
    pub command: String,
    pub cwd: String,
}

/// `POST /api/sessions/register`: 201 when created, 200 with `reregistered: true` when the id
/// was already live.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Renamed {
    pub success: bool,
    pub old_id: String,
    pub new_id: String,
}

/// One target that took the message (multicast, broadcast, submit-all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetOk {
    pub id: String,
    pub strategy: String,
}

/// One target that did not (`strategy` only in submit-all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetFailed {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    pub code: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetResults {
    pub successful: Vec<TargetOk>,
    pub failed: Vec<TargetFailed>,
}

/// Multicast, broadcast and submit-all: always 200.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    pub success: bool,
    pub results: TargetResults,
}

/// `POST /api/sessions/:id/inject`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    pub success: bool,
    pub inject_id: String,
    pub strategy: String,
    /// `deferred`, `skipped`, or with `?wait=delivered` `sent`.
    pub submit: String,
    /// With `?wait=delivered` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<bool>,
    /// With `?wait=delivered`: `submitted` when the screen confirms the prompt was submitted,
    /// `typed` when the text was written but that is not confirmed (see `reason`) or no Enter
    /// was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why a `typed` outcome is not confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `inject_id` was seen before: this answers the first request, nothing was typed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// `POST /api/sessions/:id/wait`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Waited {
    pub matched: bool,
    #[serde(rename = "match")]
    pub matched_text: Option<String>,
    pub timed_out: bool,
    pub exited: bool,
    pub settled: bool,
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
}

/// `POST /api/sessions/:id/state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateReported {
    pub success: bool,
    pub session_id: String,
    pub transport: super::session::Transport,
    pub semantic: Option<Value>,
}

/// `GET /api/sessions/:id/state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    pub session_id: String,
    /// The classifier's full view.
    pub auto: Value,
    pub self_report: Option<Value>,
    pub last_state_report_at: Option<String>,
}
