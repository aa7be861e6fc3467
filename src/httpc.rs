//! A small HTTP/1.1 client (hyper) shared by the daemon client, the relay and aterm delivery.
//! Plain `http://` only: telepty daemons speak plain HTTP and put TLS, if any, in front.
//! Requests go over TCP (pooled) or over the local daemon's unix socket ([`Stream`]).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL: {0}")]
    BadUrl(String),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Connect(String),
    /// The unix socket is missing or nobody listens on it (a daemon that died left it):
    /// nothing was sent, so the caller may use TCP instead.
    #[error("no daemon on the unix socket: {0}")]
    NoSocket(String),
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
        self.request_on(None, method, url, headers, body, timeout)
            .await
    }

    /// [`HttpClient::request`] over TCP (`None`) or over a fresh connection to the unix socket
    /// `socket` (`url` still names the daemon: its host is the request's `Host`). No pool: a
    /// unix connect costs microseconds. [`HttpError::NoSocket`] means nothing was sent.
    pub async fn request_on(
        &self,
        socket: Option<&Path>,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let req = build(method, url, headers, body)?;
        let fut = async {
            let resp = match socket {
                None => self
                    .inner
                    .request(req)
                    .await
                    // Only a failed connect means nothing was sent; a connection lost
                    // after that may have carried the request.
                    .map_err(|e| match e.is_connect() {
                        true => HttpError::Connect(innermost(&e)),
                        false => HttpError::Other(innermost(&e)),
                    })?,
                Some(socket) => send_unix(socket, req).await?,
            };
            read_response(resp).await
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

async fn send_unix(
    socket: &Path,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, HttpError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| HttpError::NoSocket(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Other(innermost(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("unix-socket connection ended: {e}");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| HttpError::Other(innermost(&e)))
}

fn build(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Request<Full<Bytes>>, HttpError> {
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
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    req.body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| HttpError::Other(e.to_string()))
}

async fn read_response(
    resp: hyper::Response<hyper::body::Incoming>,
) -> Result<Response, HttpError> {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| HttpError::Other(e.to_string()))?
        .to_bytes();
    Ok(Response { status, body })
}

/// The innermost cause: hyper's outer messages ("client error (Connect)") say nothing useful.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

/// A connection to a daemon: TCP, or the owner's unix socket. One type for both, so the
/// server's connections and the clients' WebSockets need not care which.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// One non-blocking write (for a last answer on a connection about to be dropped).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }
}
