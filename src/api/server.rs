//! The accept loop: one hyper HTTP/1 connection per TCP or unix-socket connection, with a
//! header-read timeout, a cap on open connections (total, and per remote address) and the
//! peer's identity ([`PeerInfo`]) in every request. The unix socket admits the daemon's own
//! uid only (`SO_PEERCRED`); its file mode is the first gate, this the second (root passes
//! file modes, and is not special here).
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
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::limits::{self, ConnLimiter, Refused, Slot};
use super::peer_uid::PeerInfo;
use crate::httpc::Stream;

/// Refused connections waiting for their 503 to be read (beyond this they are just closed).
const MAX_LINGERING: usize = 64;
const LINGER: Duration = Duration::from_secs(1);

/// Serve `app` on `listener` (and the owner's unix socket `local`, if any) until `shutdown`
/// resolves, then let the open requests finish.
pub async fn serve(
    listener: TcpListener,
    local: Option<UnixListener>,
    app: Router,
    limiter: ConnLimiter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stop = CancellationToken::new();
    let conns = TaskTracker::new();
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    let me = nix::unistd::geteuid().as_raw();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r.and_then(|(stream, peer)| {
                let info = PeerInfo::new(peer, stream.local_addr()?);
                Ok((Stream::Tcp(stream), info))
            }),
            r = accept_local(local.as_ref()) => r.map(|(stream, uid)| {
                (Stream::Unix(stream), PeerInfo::local_socket(uid == Some(me)))
            }),
            () = &mut shutdown => break,
        };
        let (stream, info) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of files (or a connection reset before accept): wait a moment
                // instead of spinning; the cap normally keeps this from happening.
                tracing::debug!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if matches!(stream, Stream::Unix(_)) && !info.is_owner() {
            tracing::debug!("refused a unix-socket connection from another user");
            refuse(stream, Refusal::NotOwner, &lingering);
            continue;
        }
        let slot = match limiter.try_acquire(info.peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!("refused a connection from {}: {why:?}", info.peer);
                refuse(stream, Refusal::Busy(why), &lingering);
                continue;
            }
        };
        conns.spawn(connection(stream, slot, info, app.clone(), stop.clone()));
    }
    drop(listener);
    stop.cancel();
    conns.close();
    conns.wait().await;
    Ok(())
}

/// The next connection on the unix socket and its peer's uid; never ready without a socket.
async fn accept_local(
    local: Option<&UnixListener>,
) -> io::Result<(tokio::net::UnixStream, Option<u32>)> {
    let Some(listener) = local else {
        return std::future::pending().await;
    };
    let (stream, _) = listener.accept().await?;
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    Ok((stream, uid))
}

async fn connection(
    stream: Stream,
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

/// Why a connection is answered and closed before any request is read.
enum Refusal {
    Busy(Refused),
    NotOwner,
}

/// A 503 or 401 (the §1.3 JSON), then the socket is closed. Refusals in flight are bounded
/// too: beyond [`MAX_LINGERING`] the answer is one non-blocking write at best.
fn refuse(stream: Stream, why: Refusal, lingering: &Arc<Semaphore>) {
    let (status, code, error) = match why {
        Refusal::Busy(Refused::Full) => (503, "SERVER_BUSY", "Too many open connections."),
        Refusal::Busy(Refused::PerAddress) => (
            503,
            "SERVER_BUSY",
            "Too many open connections from this address.",
        ),
        Refusal::NotOwner => (
            401,
            "PERMISSION_DENIED",
            "This daemon's socket is for its owner's uid only.",
        ),
    };
    let body = super::error::ApiError::new(status, code, error)
        .body
        .to_string();
    let (reason, retry) = match status {
        401 => ("Unauthorized", ""),
        _ => ("Service Unavailable", "retry-after: 1\r\n"),
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n{retry}\r\n{body}",
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

/// The stream and its connection slot, freed when the stream is dropped, including by the
/// WebSocket that took it over.
struct Held {
    stream: Stream,
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
