//! The owner of one TCP socket, asked of the kernel by its exact address pair over netlink
//! `sock_diag` (what `ss -e` uses). One hash lookup in the kernel, where `/proc/net/tcp` prints
//! every socket of the namespace: ~8 ms with a few thousand connections open, on every new
//! connection's first request. `peer_uid` falls back to procfs when this fails.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then the 48-byte sockid.
const REQ_LEN: usize = 8 + 48;
const TCP_TIME_WAIT: u8 = 6;

/// The uid owning the TCP socket whose local address is `local` and remote is `remote`.
/// `None` when the kernel does not say (no such socket, orphaned, TIME_WAIT, no netlink).
pub fn socket_uid(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .ok()?;
    let req = request(local, remote)?;
    sendto(
        fd.as_raw_fd(),
        &req,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .ok()?;
    // The kernel answers an exact lookup while handling the send: the reply is already queued.
    let mut buf = [0u8; 1024];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).ok()?;
    parse_reply(&buf[..n])
}

/// A `SOCK_DIAG_BY_FAMILY` request for one TCP socket (no dump: the kernel looks it up).
fn request(local: SocketAddr, remote: SocketAddr) -> Option<Vec<u8>> {
    let (local, remote) = (canonical(local), canonical(remote));
    let family: u8 = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET as u8,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6 as u8,
        _ => return None,
    };
    let len = NLMSG_HDR + REQ_LEN;
    let mut m = Vec::with_capacity(len);
    // nlmsghdr: len, type, flags, seq, pid (host byte order).
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // inet_diag_req_v2: family, IPPROTO_TCP, no extensions, pad, every state.
    m.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    // inet_diag_sockid: ports and addresses in network order, any interface, no cookie.
    m.extend_from_slice(&local.port().to_be_bytes());
    m.extend_from_slice(&remote.port().to_be_bytes());
    m.extend_from_slice(&addr16(local.ip()));
    m.extend_from_slice(&addr16(remote.ip()));
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    debug_assert_eq!(m.len(), len);
    Some(m)
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// `__be32[4]`: an IPv4 address in the first word.
fn addr16(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

/// The uid of an `inet_diag_msg` reply, unless the socket has no owner to speak of.
fn parse_reply(buf: &[u8]) -> Option<u32> {
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(buf.get(off..off + 4)?.try_into().ok()?))
    };
    let kind = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    // NLMSG_ERROR (no such socket) or anything else unexpected.
    if kind != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    // inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue,
    // uid, inode.
    let msg = NLMSG_HDR;
    let state = *buf.get(msg + 1)?;
    let uid = u32_at(msg + 64)?;
    let inode = u32_at(msg + 68)?;
    // An orphaned socket (inode 0) was closed by its process; its uid proves nothing.
    (state != TCP_TIME_WAIT && inode != 0).then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_both_ends_of_a_real_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server_addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server_addr).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let Some(uid) = socket_uid(peer, server_addr) else {
            eprintln!("skipped: no netlink sock_diag here");
            return;
        };
        assert_eq!(uid, me);
        assert_eq!(socket_uid(server_addr, peer), Some(me));
        // Mapped addresses name the same IPv4 socket.
        let mapped = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
            IpAddr::V6(_) => a,
        };
        assert_eq!(socket_uid(mapped(peer), mapped(server_addr)), Some(me));
        // No such socket.
        let gone = SocketAddr::new(peer.ip(), peer.port().wrapping_add(1).max(1));
        assert_eq!(socket_uid(gone, server_addr), None);
        drop(client);
    }

    #[test]
    fn request_layout() {
        let r = request(
            "127.0.0.1:41394".parse().unwrap(),
            "127.0.0.1:3848".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(r.len(), 72);
        assert_eq!(r[16], libc::AF_INET as u8);
        assert_eq!(&r[24..26], &41394u16.to_be_bytes());
        assert_eq!(&r[26..28], &3848u16.to_be_bytes());
        assert_eq!(&r[28..32], &[127, 0, 0, 1]);
        assert!(request("127.0.0.1:1".parse().unwrap(), "[::2]:1".parse().unwrap()).is_none());
    }

    const NLMSG_ERROR: u16 = 2;

    #[test]
    fn short_or_error_replies_say_nothing() {
        assert_eq!(parse_reply(&[]), None);
        let mut err = vec![0u8; 100];
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(parse_reply(&err), None);
    }
}
