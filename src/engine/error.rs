//! The engine's typed errors. Each maps to one wire error of API.md §1.3; the API layer only
//! serialises them.

use serde_json::{Map, Value, json};

use crate::util::INVALID_ID_MESSAGE;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("Session not found")]
    SessionNotFound { requested: String },
    #[error("{INVALID_ID_MESSAGE}")]
    InvalidSessionId { requested: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Session ID '{0}' is already active.")]
    SessionActive(String),
    #[error("Session ID '{0}' is already in use.")]
    SessionInUse(String),
    #[error("{0}")]
    SpawnFailed(String),
    #[error("Session is stale and awaiting cleanup.")]
    Stale,
    #[error("{message}")]
    Disconnected {
        message: String,
        detail: Option<String>,
    },
    #[error("Inject queue is full.")]
    QueueFull,
    #[error("{0}")]
    Unsupported(String),
    #[error("Unknown key '{0}'")]
    UnknownKey(String),
    #[error("{0}")]
    InvalidPattern(String),
    #[error("{message}")]
    DeliveryRejected { message: String, detail: Value },
    #[error("{message}")]
    DeliveryFailed {
        message: String,
        delivery_status: Option<u16>,
    },
    #[error("{0}")]
    Timeout(String),
    /// The change took effect but could not be written to sessions.json (disk full, read-only,
    /// missing directory). The answer says so instead of pretending it is saved.
    #[error("The change was applied but not saved: {0}")]
    PersistFailed(String),
    #[error("Internal error")]
    Internal,
}

impl EngineError {
    pub fn disconnected(message: &str) -> Self {
        EngineError::Disconnected {
            message: message.to_string(),
            detail: None,
        }
    }

    pub fn not_found(requested: &str) -> Self {
        EngineError::SessionNotFound {
            requested: requested.to_string(),
        }
    }

    pub fn status(&self) -> u16 {
        use EngineError::*;
        match self {
            SessionNotFound { .. } => 404,
            InvalidSessionId { .. } | InvalidRequest(_) | UnknownKey(_) | InvalidPattern(_) => 400,
            SessionActive(_) | SessionInUse(_) | Unsupported(_) => 409,
            SpawnFailed(_) | Internal => 500,
            Stale => 410,
            Disconnected { .. } => 503,
            QueueFull => 429,
            DeliveryRejected { .. } => 502,
            DeliveryFailed {
                delivery_status, ..
            } => {
                if delivery_status.is_some() {
                    502
                } else {
                    500
                }
            }
            Timeout(_) => 504,
            PersistFailed(_) => 507,
        }
    }

    pub fn code(&self) -> &'static str {
        use EngineError::*;
        match self {
            SessionNotFound { .. } => "SESSION_NOT_FOUND",
            InvalidSessionId { .. } => "INVALID_SESSION_ID",
            InvalidRequest(_) => "INVALID_REQUEST",
            SessionActive(_) | SessionInUse(_) => "SESSION_EXISTS",
            SpawnFailed(_) => "SPAWN_FAILED",
            Stale => "STALE",
            Disconnected { .. } => "DISCONNECTED",
            QueueFull => "QUEUE_FULL",
            Unsupported(_) => "UNSUPPORTED_SESSION_TYPE",
            UnknownKey(_) => "UNKNOWN_KEY",
            InvalidPattern(_) => "INVALID_PATTERN",
            DeliveryRejected { .. } => "DELIVERY_REJECTED",
            DeliveryFailed { .. } => "DELIVERY_FAILED",
            Timeout(_) => "TIMEOUT",
            PersistFailed(_) => "PERSIST_FAILED",
            Internal => "INTERNAL",
        }
    }

    /// Extra fields some errors carry on the wire.
    pub fn extras(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match self {
            EngineError::SessionNotFound { requested }
            | EngineError::InvalidSessionId { requested } => {
                m.insert("requested".into(), json!(requested));
            }
            EngineError::UnknownKey(key) => {
                m.insert("key".into(), json!(key));
                m.insert("valid_keys".into(), json!(super::keys::valid_keys()));
            }
            EngineError::Disconnected {
                detail: Some(d), ..
            } => {
                m.insert("detail".into(), json!(d));
            }
            EngineError::DeliveryRejected { detail, .. } => {
                m.insert("detail".into(), detail.clone());
            }
            EngineError::DeliveryFailed {
                delivery_status: Some(s),
                ..
            } => {
                m.insert("deliveryStatus".into(), json!(s));
            }
            EngineError::PersistFailed(_) => {
                // The change is live in memory: clients must not retry it as if it failed.
                m.insert("applied".into(), json!(true));
            }
            _ => {}
        }
        m
    }

    /// The whole JSON error body.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("success".into(), json!(false));
        m.insert("code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m.extend(self.extras());
        Value::Object(m)
    }
}
