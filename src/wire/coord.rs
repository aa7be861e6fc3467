//! Handoffs and deliberation threads (API.md §10): the views the routes answer with, the
//! bodies `telepty handoff` / `telepty thread` send, and the bus events they cause. The
//! events stay untyped on the bus ([`super::Event::Other`]): `handoff.<status>` names its
//! type at run time.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// Where a handoff is: pending → claimed → executing → completed, or failed on the way.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum HandoffStatus {
    #[default]
    Pending,
    Claimed,
    Executing,
    Completed,
    Failed,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ThreadStatus {
    #[default]
    Active,
    Closed,
}

/// An item of `GET /api/handoff`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct HandoffSummary {
    pub id: String,
    pub status: HandoffStatus,
    pub deliberation_id: Option<String>,
    pub source_session_id: Option<String>,
    pub auto_execute: bool,
    pub claimed_by: Option<String>,
    pub task_count: usize,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /api/handoff/:id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct HandoffDetail {
    pub id: String,
    pub source_session_id: Option<String>,
    pub deliberation_id: Option<String>,
    pub synthesis: Value,
    pub status: HandoffStatus,
    pub auto_execute: bool,
    pub claimed_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub progress: Vec<Progress>,
    pub result: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Progress {
    pub message: String,
    pub timestamp: String,
}

/// Create (201, without `success`), claim and patch of a handoff.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct HandoffAck {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub success: bool,
    pub handoff_id: String,
    pub status: HandoffStatus,
}

/// An item of `GET /api/threads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThreadSummary {
    pub id: String,
    pub topic: String,
    pub status: ThreadStatus,
    pub orchestrator_session_id: Option<String>,
    pub participant_count: usize,
    /// Any JSON number a client sent.
    #[schema(value_type = f64)]
    pub message_count: Number,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /api/threads/:id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThreadDetail {
    pub id: String,
    pub topic: String,
    pub orchestrator_session_id: Option<String>,
    /// The string items of what was sent.
    pub participant_session_ids: Vec<Value>,
    pub context: Value,
    pub status: ThreadStatus,
    #[schema(value_type = f64)]
    pub message_count: Number,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

/// Create (201, without `success`) and patch of a thread.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ThreadAck {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub success: bool,
    pub thread_id: String,
    pub status: ThreadStatus,
}

// ---- request bodies (as `telepty` sends them; the engine reads them loosely)

/// `POST /api/handoff`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateHandoff {
    /// An object (`tasks`: an array counts them).
    #[schema(value_type = Object)]
    pub synthesis: Value,
    /// A string; anything else counts as absent (as in the original daemon).
    #[schema(value_type = Option<Value>)]
    pub source_session_id: Option<String>,
    /// A string; anything else counts as absent.
    #[schema(value_type = Option<Value>)]
    pub deliberation_id: Option<String>,
    /// `true`; anything else counts as false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<Value>)]
    pub auto_execute: bool,
}

/// `POST /api/handoff/:id/claim`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimHandoff {
    #[schema(pattern = r"\S")]
    pub agent_session_id: String,
}

/// `PATCH /api/handoff/:id` (status and/or a progress message) and `PATCH /api/threads/:id`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PatchStatus {
    /// The next status (a transition the current one allows, else 400 `INVALID_TRANSITION`).
    pub status: Option<String>,
    /// A progress message: a string; anything else counts as absent.
    #[schema(value_type = Option<Value>)]
    pub message: Option<String>,
    /// A handoff's result: any JSON.
    pub result: Option<Value>,
}

/// `PATCH /api/threads/:id`: what is not understood is ignored (as in the original daemon).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PatchThread {
    /// `closed` closes the thread; anything else is ignored.
    #[schema(value_type = Option<Value>)]
    pub status: Option<String>,
    /// A number sets the count; anything else is ignored.
    #[schema(value_type = Option<Value>)]
    pub message_count: Option<Number>,
}

/// `POST /api/threads`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateThread {
    #[schema(pattern = r"\S")]
    pub topic: String,
    /// Ids; what is not a string is left out.
    #[schema(value_type = Option<Value>)]
    pub participant_session_ids: Vec<String>,
    /// A string; anything else counts as absent.
    #[schema(value_type = Option<Value>)]
    pub orchestrator_session_id: Option<String>,
    /// Any JSON, kept as given.
    #[schema(value_type = Option<Value>)]
    pub context: Option<String>,
}

// ---- bus events

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandoffCreated {
    /// `handoff.created`
    #[serde(rename = "type")]
    pub kind: String,
    pub handoff_id: String,
    pub source_session_id: Option<String>,
    pub deliberation_id: Option<String>,
    pub auto_execute: bool,
    pub task_count: usize,
    pub timestamp: String,
}

/// `handoff.claimed` from the claim route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandoffClaimed {
    #[serde(rename = "type")]
    pub kind: String,
    pub handoff_id: String,
    pub agent_session_id: String,
    pub timestamp: String,
}

/// `handoff.<status>` from a PATCH.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HandoffChanged {
    #[serde(rename = "type")]
    pub kind: String,
    pub handoff_id: String,
    pub claimed_by: Option<String>,
    pub message: Option<String>,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThreadOpened {
    /// `thread.opened`
    #[serde(rename = "type")]
    pub kind: String,
    pub thread_id: String,
    pub topic: String,
    pub orchestrator_session_id: Option<String>,
    pub participant_session_ids: Vec<Value>,
    pub timestamp: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThreadClosed {
    /// `thread.closed`
    #[serde(rename = "type")]
    pub kind: String,
    pub thread_id: String,
    pub topic: String,
    #[schema(value_type = f64)]
    pub message_count: Number,
    pub timestamp: String,
}
