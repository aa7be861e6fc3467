//! The engine's typed errors. Each has the wire `code` of API.md §1.3 (bus events carry it
//! too); the HTTP status and extra fields are the API's to choose (src/api/error.rs).

use serde_json::Value;

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
    /// The caller named a program or directory that is not there: nothing was started.
    #[error("{0}")]
    NotSpawnable(String),
    #[error("Session is stale and awaiting cleanup.")]
    Stale,
    #[error("{message}")]
    Disconnected {
        message: String,
        detail: Option<String>,
    },
    #[error("Inject queue is full.")]
    QueueFull,
    /// Text waiting to be typed is bounded in bytes, per session and for the whole daemon.
    #[error("Inject queue is full: {queued} bytes already wait ({scope} limit {limit} bytes).")]
    QueueBytesFull {
        queued: usize,
        limit: usize,
        scope: &'static str,
    },
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

    /// `Ok` for a valid session id, else `INVALID_SESSION_ID` naming it.
    pub fn check_id(id: &str) -> Result<(), Self> {
        if crate::util::valid_session_id(id) {
            Ok(())
        } else {
            Err(EngineError::invalid_id(id))
        }
    }

    pub fn invalid_id(requested: &str) -> Self {
        EngineError::InvalidSessionId {
            requested: requested.to_string(),
        }
    }

    pub fn not_found(requested: &str) -> Self {
        EngineError::SessionNotFound {
            requested: requested.to_string(),
        }
    }

    pub fn code(&self) -> &'static str {
        use EngineError::*;
        match self {
            SessionNotFound { .. } => "SESSION_NOT_FOUND",
            InvalidSessionId { .. } => "INVALID_SESSION_ID",
            InvalidRequest(_) => "INVALID_REQUEST",
            SessionActive(_) | SessionInUse(_) => "SESSION_EXISTS",
            SpawnFailed(_) | NotSpawnable(_) => "SPAWN_FAILED",
            Stale => "STALE",
            Disconnected { .. } => "DISCONNECTED",
            QueueFull | QueueBytesFull { .. } => "QUEUE_FULL",
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
}
