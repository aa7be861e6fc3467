//! A small HTTP/1.1 client (hyper) shared by the daemon client, the relay and aterm delivery.
//! Plain `http://` only: telepty daemons speak plain HTTP and put TLS, if any, in front.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL: {0}")]
    BadUrl(String),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(3)));
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(conn),
        }
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| HttpError::BadUrl(url.to_string()))?;
        if uri.scheme_str() != Some("http") {
            return Err(HttpError::BadUrl(format!(
                "{url} (only http:// is supported)"
            )));
        }
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let has_body = body.is_some();
        if has_body {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HttpError::Other(e.to_string()))?;
        let fut = async {
            let resp = self.inner.request(req).await.map_err(|e| {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = s.to_string();
                    src = s.source();
                }
                HttpError::Connect(msg)
            })?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Other(e.to_string()))?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}
