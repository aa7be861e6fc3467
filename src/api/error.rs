//! Every API error is `{success:false, code, error}` (+extras) with the right status. The
//! engine's errors are typed; which HTTP status and extra fields each one gets is decided
//! here, and only here (API.md §1.3).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::AuthFailure;
use crate::engine::EngineError;
use crate::engine::handoff::StoreError;
use crate::wire::request::BadRequest;

/// Every error body (API.md §1.3): never HTML, never a stack trace. Beyond `success`, `code`
/// and `error`, a field is there only for the errors that name it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// Machine-readable (`INVALID_REQUEST`, `SESSION_NOT_FOUND`, …); clients branch on it.
    pub code: String,
    /// Human-readable; the exact texts are API.md's.
    pub error: String,
    /// Session lookup failures: the id as given.
    pub requested: Option<String>,
    /// `HANDOFF_CONFLICT`: who holds the claim.
    pub claimed_by: Option<String>,
    /// A failed submit: `pty_cr`.
    pub strategy: Option<String>,
    /// A failed submit: Enters sent.
    pub attempts: Option<u32>,
    /// `DELIVERY_REJECTED`: the endpoint's reply; `DISCONNECTED`: the OS's message.
    pub detail: Option<Value>,
    /// `DELIVERY_FAILED` from an HTTP endpoint: its status.
    #[serde(rename = "deliveryStatus")]
    pub delivery_status: Option<u16>,
    /// Inject failures: the request's `inject_id`.
    pub inject_id: Option<String>,
    /// `TIMEOUT` of `?wait=delivered`: the message is still queued.
    pub queued: Option<bool>,
    /// `UNKNOWN_KEY`: the name, and the names accepted.
    pub key: Option<String>,
    pub valid_keys: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: serde_json::to_value(ErrorBody {
                code: code.into(),
                error: message.into(),
                ..Default::default()
            })
            .unwrap_or_default(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_REQUEST", message)
    }
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.body[key] = json!(value);
        self
    }
}

/// The HTTP status of an engine error.
pub fn status_of(e: &EngineError) -> u16 {
    use EngineError::*;
    match e {
        SessionNotFound { .. } => 404,
        InvalidSessionId { .. }
        | InvalidRequest(_)
        | UnknownKey(_)
        | InvalidPattern(_)
        | NotSpawnable(_) => 400,
        SessionActive(_) | SessionInUse(_) | Unsupported(_) => 409,
        SpawnFailed(_) | Internal => 500,
        Stale => 410,
        Disconnected { .. } => 503,
        QueueFull | QueueBytesFull { .. } => 429,
        DeliveryRejected { .. } => 502,
        // A status from the endpoint means it answered and refused; none, that it was not
        // reachable at all.
        DeliveryFailed {
            delivery_status: Some(_),
            ..
        } => 502,
        DeliveryFailed { .. } => 500,
        Timeout(_) => 504,
        PersistFailed(_) => 507,
    }
}

/// Extra fields some errors carry on the wire.
fn extras(e: &EngineError) -> Vec<(&'static str, Value)> {
    use EngineError::*;
    match e {
        SessionNotFound { requested } | InvalidSessionId { requested } => {
            vec![("requested", json!(requested))]
        }
        UnknownKey(key) => vec![
            ("key", json!(key)),
            ("valid_keys", json!(crate::engine::keys::valid_keys())),
        ],
        Disconnected {
            detail: Some(d), ..
        } => vec![("detail", json!(d))],
        DeliveryRejected { detail, .. } => vec![("detail", detail.clone())],
        DeliveryFailed {
            delivery_status: Some(s),
            ..
        } => vec![("deliveryStatus", json!(s))],
        QueueBytesFull {
            queued,
            limit,
            scope,
        } => vec![
            ("queuedBytes", json!(queued)),
            ("limitBytes", json!(limit)),
            ("scope", json!(scope)),
        ],
        // The change is live in memory: clients must not retry it as if it failed.
        PersistFailed(_) => vec![("applied", json!(true))],
        _ => Vec::new(),
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let err = ApiError::new(status_of(&e), e.code(), e.to_string());
        extras(&e)
            .into_iter()
            .fold(err, |err, (k, v)| err.with(k, v))
    }
}

impl From<BadRequest> for ApiError {
    fn from(e: BadRequest) -> Self {
        match e {
            BadRequest::Invalid(m) => ApiError::invalid(m),
            BadRequest::Pattern(m) => ApiError::new(400, "INVALID_PATTERN", m),
        }
    }
}

/// `{success:false, code, error}` plus the one extra field (`claimed_by` of a conflict).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let err = ApiError::new(e.status, e.code, e.message);
        match e.extra {
            Some(extra) => err.with(extra.0, extra.1),
            None => err,
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(e: AuthFailure) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.body)
    }
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        bytes,
    )
        .into_response()
}

pub type ApiResult = Result<Response, ApiError>;

pub fn ok(body: impl Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

pub fn created(body: impl Serialize) -> ApiResult {
    Ok(json_response(StatusCode::CREATED, &body))
}
