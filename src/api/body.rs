//! JSON request bodies the way the original daemon read them: any content type, an empty body
//! is `{}`, a non-object counts as `{}` for object routes, 1 MiB at most.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use serde_json::{Map, Value};

use super::error::ApiError;

pub const BODY_LIMIT: usize = 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(413, "PAYLOAD_TOO_LARGE", "Request body exceeds 1 MiB.")
}

async fn read_value(req: Request<Body>) -> Result<Value, ApiError> {
    if let Some(len) = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > BODY_LIMIT {
            return Err(too_large());
        }
    }
    // A body trickled in byte by byte would hold its connection forever.
    let bytes = tokio::time::timeout(
        super::limits::BODY_READ_TIMEOUT,
        axum::body::to_bytes(req.into_body(), BODY_LIMIT),
    )
    .await
    .map_err(|_| ApiError::new(408, "REQUEST_TIMEOUT", "Request body not received in time."))?
    .map_err(|_| too_large())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::new(400, "INVALID_JSON", "Malformed JSON body."))
}

/// A body for routes that expect an object.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request<Body>, _: &S) -> Result<Self, ApiError> {
        let v = read_value(req).await?;
        Ok(JsonBody(if v.is_object() {
            v
        } else {
            Value::Object(Map::new())
        }))
    }
}

/// A body taken as is (bus publish distinguishes non-objects).
pub struct AnyJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for AnyJson {
    type Rejection = ApiError;
    async fn from_request(req: Request<Body>, _: &S) -> Result<Self, ApiError> {
        Ok(AnyJson(read_value(req).await?))
    }
}

pub use crate::wire::request::Fields;
