//! Delivery to external terminal apps ("aterm" sessions): one UDS connection per message, or
//! a legacy HTTP POST (API.md §6.5). The engine speaks no HTTP itself: the POST goes through
//! an [`HttpPost`] the layer above hands it ([`crate::engine::Engine::set_http_post`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::EngineError;

/// Why a POST got no status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    Timeout,
    Unreachable,
}

/// `POST url body` with a deadline → the HTTP status.
pub type HttpPost = Arc<
    dyn Fn(
            String,
            Vec<u8>,
            Duration,
        ) -> Pin<Box<dyn Future<Output = Result<u16, PostError>> + Send>>
        + Send
        + Sync,
>;

fn line(action: &str, workspace: &str, text: Option<&str>) -> String {
    // Built by hand because the receiving apps expect exactly this key order.
    let ws = serde_json::to_string(workspace).unwrap_or_default();
    match text {
        Some(t) => format!(
            "{{\"action\":\"{action}\",\"workspace\":{ws},\"text\":{}}}\n",
            serde_json::to_string(t).unwrap_or_default()
        ),
        None => format!("{{\"action\":\"{action}\",\"workspace\":{ws}}}\n"),
    }
}

pub async fn deliver(
    endpoint: Option<&str>,
    uds: bool,
    workspace: &str,
    text: &str,
    timeout: Duration,
    post: Option<&HttpPost>,
) -> Result<(), EngineError> {
    match endpoint {
        Some(ep) if uds || ep.starts_with('/') => deliver_uds(ep, workspace, text, timeout).await,
        Some(ep) => match post {
            Some(post) => deliver_http(post, ep, workspace, text, timeout).await,
            None => Err(EngineError::disconnected(
                "Delivery endpoint is unreachable.",
            )),
        },
        None => Err(EngineError::disconnected("Delivery endpoint is missing.")),
    }
}

async fn deliver_uds(
    path: &str,
    workspace: &str,
    text: &str,
    timeout: Duration,
) -> Result<(), EngineError> {
    let unreachable = |e: std::io::Error| EngineError::Disconnected {
        message: "UDS endpoint is unreachable.".into(),
        detail: Some(e.to_string()),
    };
    let exchange = async {
        let mut sock = tokio::net::UnixStream::connect(path)
            .await
            .map_err(unreachable)?;
        sock.write_all(line("Inject", workspace, Some(text)).as_bytes())
            .await
            .map_err(unreachable)?;
        let _ = sock.shutdown().await;
        let mut reply = Vec::new();
        let _ = sock.read_to_end(&mut reply).await;
        Ok::<_, EngineError>(reply)
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| EngineError::Timeout("UDS delivery timed out.".into()))??;
    let Ok(v) = serde_json::from_slice::<Value>(&reply) else {
        return Ok(());
    };
    let rejected = v.get("status").and_then(Value::as_str) == Some("Error")
        || v.get("success") == Some(&Value::Bool(false));
    if rejected {
        let message = v
            .get("error")
            .and_then(Value::as_str)
            .or_else(|| v.get("message").and_then(Value::as_str))
            .unwrap_or("Target rejected the payload.")
            .to_string();
        return Err(EngineError::DeliveryRejected { message, detail: v });
    }
    Ok(())
}

async fn deliver_http(
    post: &HttpPost,
    url: &str,
    workspace: &str,
    text: &str,
    timeout: Duration,
) -> Result<(), EngineError> {
    /// What an aterm HTTP endpoint takes.
    #[derive(serde::Serialize)]
    struct Post<'a> {
        text: &'a str,
        session_id: &'a str,
    }
    let body = serde_json::to_vec(&Post {
        text,
        session_id: workspace,
    })
    .unwrap_or_default();
    match post(url.to_string(), body, timeout).await {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(EngineError::DeliveryFailed {
            message: format!("Delivery endpoint returned {status}."),
            delivery_status: Some(status),
        }),
        Err(PostError::Timeout) => Err(EngineError::Timeout("Delivery endpoint timed out.".into())),
        Err(PostError::Unreachable) => Err(EngineError::disconnected(
            "Delivery endpoint is unreachable.",
        )),
    }
}

/// Fire-and-forget nudge after an enqueue (coalesced by the caller).
pub async fn wake(path: &str, workspace: &str) {
    let fut = async {
        if let Ok(mut s) = tokio::net::UnixStream::connect(path).await {
            let _ = s
                .write_all(line("MailboxWake", workspace, None).as_bytes())
                .await;
            let _ = s.shutdown().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), fut).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_keeps_key_order() {
        assert_eq!(
            super::line("Inject", "w1", Some("hi \"x\"")),
            "{\"action\":\"Inject\",\"workspace\":\"w1\",\"text\":\"hi \\\"x\\\"\"}\n"
        );
        assert_eq!(
            super::line("MailboxWake", "w1", None),
            "{\"action\":\"MailboxWake\",\"workspace\":\"w1\"}\n"
        );
    }
}
