//! The accept loop: one hyper HTTP/1 connection per TCP connection, with a header-read
//! timeout, a cap on open connections (total, and per remote address) and the peer's identity
//! ([`PeerInfo`]) in every request.
//!
//! Hand-written instead of `axum::serve` because that offers neither timeouts nor limits.
//! WebSockets are long-lived by design: once upgraded they leave hyper's timers behind and
//! keep only their connection slot.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::limits::{self, ConnLimiter, Refused, Slot};
use super::peer_uid::PeerInfo;

/// Refused connections waiting for their 503 to be read (beyond this they are just closed).
const MAX_LINGERING: usize = 64;
const LINGER: Duration = Duration::from_secs(1);

/// Serve `app` on `listener` until `shutdown` resolves, then let the open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limiter: ConnLimiter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stop = CancellationToken::new();
    let conns = TaskTracker::new();
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of files (or a connection reset before accept): wait a moment
                    // instead of spinning; the cap normally keeps this from happening.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match limiter.try_acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!("refused a connection from {peer}: {why:?}");
                refuse(stream, why, &lingering);
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let info = PeerInfo::new(peer, local);
        conns.spawn(connection(stream, slot, info, app.clone(), stop.clone()));
    }
    drop(listener);
    stop.cancel();
    conns.close();
    conns.wait().await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    slot: Slot,
    info: PeerInfo,
    app: Router,
    stop: CancellationToken,
) {
    let io = TokioIo::new(Held {
        stream,
        _slot: slot,
    });
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(info.clone()));
        app.clone().call(req)
    });
    // The header-read timer runs whenever hyper waits for a request head, so it also ends
    // keep-alive connections that stay idle, and slowloris heads.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits::HEADER_READ_TIMEOUT)
        .serve_connection(io, svc)
        .with_upgrades();
    tokio::pin!(conn);
    let done = tokio::select! {
        r = conn.as_mut() => r,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = done {
        tracing::debug!("connection ended: {e}");
    }
}

/// A 503 (the §1.3 JSON), then the socket is closed. Refusals in flight are bounded too: beyond
/// [`MAX_LINGERING`] the answer is one non-blocking write at best.
fn refuse(stream: TcpStream, why: Refused, lingering: &Arc<Semaphore>) {
    let error = match why {
        Refused::Full => "Too many open connections.",
        Refused::PerAddress => "Too many open connections from this address.",
    };
    let body = super::error::ApiError::new(503, "SERVER_BUSY", error)
        .body
        .to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let Ok(permit) = lingering.clone().try_acquire_owned() else {
        let _ = stream.try_write(resp.as_bytes());
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        // Closing with the request still unread would reset the connection and could destroy
        // the answer before the client reads it: read (and drop) the request for a moment.
        let _ = tokio::time::timeout(LINGER, async {
            stream.write_all(resp.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
        drop(permit);
    });
}

/// The TCP stream and its connection slot, freed when the stream is dropped, including by
/// the WebSocket that took it over.
struct Held {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
