//! WebSocket helpers (API.md §11): the event bus `/api/bus` and raw connections.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::{TcpStream, UnixStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

use super::error::tidy_reason;
use super::{ClientError, DaemonAddr};
use crate::httpc::Stream;

pub type WsStream = WebSocketStream<Stream>;

/// Time allowed for TCP connect + upgrade.
pub const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Open `ws://host:port<path>` (with `?token=` when the address has a token): over an ssh
/// peer's tunnel (started when it is not up), or the local daemon's unix socket when there is
/// one, else TCP. A refused upgrade becomes [`ClientError::Http`] with the daemon's JSON error.
pub async fn connect_ws(addr: &DaemonAddr, path: &str) -> Result<WsStream, ClientError> {
    let url = addr.ws_url(path);
    let fut = async {
        let stream = match (connect_stream(addr).await, &addr.tunnel) {
            (Err(_), Some(t)) => {
                t.ensure(WS_CONNECT_TIMEOUT).await?;
                connect_stream(addr).await
            }
            (connected, _) => connected,
        };
        let stream = stream.map_err(|e| ClientError::Connect {
            addr: addr.authority(),
            reason: tidy_reason(&e.to_string()),
        })?;
        tokio_tungstenite::client_async(url, stream)
            .await
            .map(|(ws, _resp)| ws)
            .map_err(|e| ws_error(addr, e))
    };
    tokio::time::timeout(WS_CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| ClientError::Timeout {
            addr: addr.authority(),
            after: WS_CONNECT_TIMEOUT,
        })?
}

async fn connect_stream(addr: &DaemonAddr) -> std::io::Result<Stream> {
    if let Some(t) = &addr.tunnel {
        // An ssh peer has only its tunnel (TCP would reach this machine's daemon).
        return Ok(Stream::Unix(UnixStream::connect(&t.socket).await?));
    }
    if let Some(socket) = addr.local_socket() {
        match UnixStream::connect(&socket).await {
            Ok(s) => return Ok(Stream::Unix(s)),
            Err(e) => tracing::trace!("{}: {e}; using TCP", socket.display()),
        }
    }
    let tcp = TcpStream::connect((addr.host.as_str(), addr.port)).await?;
    tcp.set_nodelay(true)?;
    Ok(Stream::Tcp(tcp))
}

fn ws_error(addr: &DaemonAddr, e: tungstenite::Error) -> ClientError {
    use tungstenite::Error as E;
    match e {
        E::Http(resp) => {
            let status = resp.status().as_u16();
            ClientError::from_response(status, resp.body().as_deref().unwrap_or_default())
        }
        E::Io(io) => ClientError::Connect {
            addr: addr.authority(),
            reason: tidy_reason(&io.to_string()),
        },
        E::Url(u) => ClientError::BadAddress(format!("invalid WebSocket URL: {u}")),
        other => ClientError::BadResponse {
            addr: addr.authority(),
            reason: tidy_reason(&other.to_string()),
        },
    }
}

/// A connection to the event bus. Every event arrives as one JSON object.
pub struct Bus {
    ws: WsStream,
    addr: String,
}

impl Bus {
    pub async fn connect(addr: &DaemonAddr) -> Result<Bus, ClientError> {
        Bus::connect_skipping(addr, "").await
    }

    /// [`Bus::connect`] without the event types in `skip` (comma-separated; a daemon that
    /// does not know the parameter sends them anyway).
    pub async fn connect_skipping(addr: &DaemonAddr, skip: &str) -> Result<Bus, ClientError> {
        let path = match skip {
            "" => "/api/bus".to_string(),
            skip => format!("/api/bus?skip={}", super::addr::encode_component(skip)),
        };
        Ok(Bus {
            ws: connect_ws(addr, &path).await?,
            addr: addr.authority(),
        })
    }

    /// The next event. `Ok(None)` when the daemon closed the bus; unparsable frames are
    /// skipped; pings are answered by the library.
    pub async fn next_event(&mut self) -> Result<Option<Value>, ClientError> {
        loop {
            let parsed = match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(e)) => return Err(self.stream_error(e)),
                Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(t.as_str()).ok(),
                Some(Ok(Message::Binary(b))) => serde_json::from_slice::<Value>(&b).ok(),
                Some(Ok(_)) => None,
            };
            if let Some(v) = parsed {
                return Ok(Some(v));
            }
        }
    }

    fn stream_error(&self, e: tungstenite::Error) -> ClientError {
        use tungstenite::Error as E;
        match e {
            E::ConnectionClosed | E::AlreadyClosed | E::Io(_) | E::Protocol(_) => {
                ClientError::Disconnected {
                    addr: self.addr.clone(),
                }
            }
            other => ClientError::BadResponse {
                addr: self.addr.clone(),
                reason: tidy_reason(&other.to_string()),
            },
        }
    }

    /// Close politely (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}
