//! Every API error is `{success:false, code, error}` (+extras) with the right status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::AuthFailure;
use crate::engine::EngineError;
use crate::engine::handoff::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({"success": false, "code": code, "error": message.into()}),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_REQUEST", message)
    }
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.body[key] = value;
        self
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError {
            status: e.status(),
            body: e.body(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError {
            status: e.status,
            body: e.to_json(),
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(e: AuthFailure) -> Self {
        ApiError::new(e.status(), e.code(), e.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.body)
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
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

pub fn ok(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

pub fn created(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::CREATED, &body))
}
