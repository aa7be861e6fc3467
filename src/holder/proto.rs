//! The control protocol between an engine and a holder: one JSON message per `SOCK_SEQPACKET`
//! datagram, with file descriptors (the PTY master, the ring) riding along as `SCM_RIGHTS`.
//!
//! Messages are rare (hello, rename, exit, kill), so JSON costs nothing that matters; output
//! never crosses this socket — the engine reads the PTY itself through the passed descriptor.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped when a message changes incompatibly; a holder refuses an engine of another version.
pub const VERSION: u32 = 1;
/// Largest message either side sends (metadata is small; this bounds a hostile peer).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// How the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ToHolder {
    /// Adopt the session: answered with `Welcome` (+ master and ring fds) or `Busy`.
    Hello { version: u32, engine_pid: u32 },
    /// Replace the engine's metadata blob (the session was renamed, …).
    SetMeta { meta: Value },
    /// End the session: SIGHUP to every process of the child's session, SIGKILL to what is
    /// left after `grace_ms`, then the holder exits.
    Kill { grace_ms: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum FromHolder {
    Welcome {
        version: u32,
        holder_pid: u32,
        child_pid: u32,
        meta: Value,
        exit: Option<ExitStatus>,
    },
    /// Another engine holds this session.
    Busy {
        engine_pid: u32,
    },
    /// The versions differ.
    Refused {
        reason: String,
    },
    Exited(ExitStatus),
}

/// Bound how long a `recv` on `sock` waits (0: no bound), so a peer that connects and says
/// nothing, or one that is stopped, cannot stall the other side. Best effort.
pub fn set_recv_timeout(sock: &OwnedFd, secs: i64) {
    let timeout = nix::sys::time::TimeVal::new(secs, 0);
    let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimeout, &timeout);
}

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("holder socket: {0}")]
    Io(#[from] nix::Error),
    #[error("holder closed the connection")]
    Closed,
    #[error("bad holder message: {0}")]
    Bad(String),
}

/// Send one message with `fds` attached.
pub fn send<T: Serialize>(sock: RawFd, msg: &T, fds: &[RawFd]) -> Result<(), ProtoError> {
    let bytes = serde_json::to_vec(msg).map_err(|e| ProtoError::Bad(e.to_string()))?;
    let iov = [IoSlice::new(&bytes)];
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    loop {
        match sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EPIPE | nix::Error::ECONNRESET) => return Err(ProtoError::Closed),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receive one message and the descriptors that came with it. Blocks unless the socket is
/// non-blocking (then `EAGAIN` comes back as `Io`).
pub fn recv<T: for<'de> Deserialize<'de>>(sock: RawFd) -> Result<(T, Vec<OwnedFd>), ProtoError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (n, fds, truncated) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let mut fds = Vec::new();
                for c in m.cmsgs().map_err(ProtoError::Io)? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel just installed these descriptors in our table.
                        fds.extend(raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                    }
                }
                let truncated = m.flags.contains(MsgFlags::MSG_TRUNC);
                break (m.bytes, fds, truncated);
            }
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::ECONNRESET) => return Err(ProtoError::Closed),
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Err(ProtoError::Closed);
    }
    if truncated {
        return Err(ProtoError::Bad(format!("message over {MAX_MESSAGE} bytes")));
    }
    let msg = serde_json::from_slice(&buf[..n]).map_err(|e| ProtoError::Bad(e.to_string()))?;
    Ok((msg, fds))
}

/// A connected pair of seqpacket sockets (for tests).
#[cfg(test)]
pub fn pair() -> (OwnedFd, OwnedFd) {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn messages_and_descriptors_cross_together() {
        let (a, b) = pair();
        let (r, w) = nix::unistd::pipe().unwrap();
        send(
            a.as_raw_fd(),
            &FromHolder::Welcome {
                version: VERSION,
                holder_pid: 1,
                child_pid: 2,
                meta: serde_json::json!({"id": "w1"}),
                exit: None,
            },
            &[w.as_raw_fd()],
        )
        .unwrap();
        drop(w);
        let (msg, fds): (FromHolder, _) = recv(b.as_raw_fd()).unwrap();
        assert!(matches!(msg, FromHolder::Welcome { child_pid: 2, .. }));
        assert_eq!(fds.len(), 1);
        nix::unistd::write(&fds[0], b"x").unwrap();
        let mut got = [0u8; 1];
        nix::unistd::read(&r, &mut got).unwrap();
        assert_eq!(&got, b"x");
    }

    #[test]
    fn a_closed_peer_and_garbage_are_errors_not_panics() {
        let (a, b) = pair();
        nix::unistd::write(&a, b"{not json").unwrap();
        assert!(matches!(
            recv::<ToHolder>(b.as_raw_fd()),
            Err(ProtoError::Bad(_))
        ));
        drop(a);
        assert!(matches!(
            recv::<ToHolder>(b.as_raw_fd()),
            Err(ProtoError::Closed)
        ));
    }
}
