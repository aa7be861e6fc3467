//! Who is on the other end of a loopback TCP connection: the uid that owns the peer's socket,
//! asked of the kernel by address pair (`sock_diag`), or read from `/proc/net/tcp{,6}` as identd
//! does (the row whose local address is the peer's and whose remote address is ours).
//!
//! On a shared machine loopback is every local user, so the guard trusts a loopback peer without
//! a token only when its socket belongs to the daemon's own uid (issue 14). Anything that cannot
//! be known (no procfs, another network namespace, an orphaned socket) is `None`, and the caller
//! then asks for the token.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

/// The TCP connection a request arrived on, put into every request as axum's `ConnectInfo`.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Whether the peer's socket is the daemon's own uid; looked up once per connection, and
    /// only when a request needs it (idle connections and `/api/health` cost nothing).
    owner: Arc<OnceLock<bool>>,
}

impl PeerInfo {
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        PeerInfo {
            peer,
            local,
            owner: Arc::new(OnceLock::new()),
        }
    }

    /// A connection on the daemon's unix socket, whose peer uid the kernel gave at accept
    /// (`SO_PEERCRED`). It is local by construction, so it reads as loopback.
    pub fn local_socket(owner: bool) -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        PeerInfo {
            peer: loopback,
            local: loopback,
            owner: Arc::new(OnceLock::from(owner)),
        }
    }

    /// The peer's socket belongs to this process's effective uid (root is not special).
    pub fn is_owner(&self) -> bool {
        *self.owner.get_or_init(|| {
            let me = nix::unistd::geteuid().as_raw();
            let found = socket_uid(self.peer, self.local);
            if found.is_none() {
                tracing::debug!("uid of peer {} unknown: the token is required", self.peer);
            }
            found == Some(me)
        })
    }
}

/// The uid owning the socket bound to `peer` and connected to `local`: asked of the kernel
/// (netlink `sock_diag`, one lookup), else read from procfs.
pub fn socket_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    super::sock_diag::socket_uid(peer, local).or_else(|| proc_socket_uid(peer, local))
}

/// [`socket_uid`] from `/proc/net/tcp{,6}`, which lists every TCP socket of the namespace.
fn proc_socket_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (peer, local) = (canonical(peer), canonical(local));
    // An IPv4 peer may also sit on an IPv6 socket (`::ffff:a.b.c.d`): tcp6 lists it as mapped.
    let files: &[&str] = match peer.ip() {
        IpAddr::V4(_) => &["/proc/net/tcp", "/proc/net/tcp6"],
        IpAddr::V6(_) => &["/proc/net/tcp6"],
    };
    files.iter().find_map(|path| {
        let file = std::fs::File::open(path).ok()?;
        BufReader::new(file)
            .lines()
            .skip(1)
            .map_while(Result::ok)
            .find_map(|line| match_row(&line, peer, local))
    })
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The uid of one `/proc/net/tcp{,6}` row if it is the socket `local == peer, remote == ours`.
/// Rows of orphaned sockets (inode 0: closed by their process, and shown as root's on older
/// kernels) and of TIME_WAIT (state 06, no owner at all) never match.
fn match_row(line: &str, peer: SocketAddr, ours: SocketAddr) -> Option<u32> {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    let f: Vec<&str> = line.split_whitespace().take(10).collect();
    let [_, local, rem, st, _, _, _, uid, _, inode] = f.as_slice() else {
        return None;
    };
    if *st == "06" || *inode == "0" {
        return None;
    }
    (parse_addr(local)? == peer && parse_addr(rem)? == ours).then(|| uid.parse().ok())?
}

/// `0100007F:0CF0` (IPv4) or 32 hex digits `:PORT` (IPv6): the address as the kernel's 32-bit
/// words printed in host byte order, the port as a plain hex number.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    // Rows as a little-endian kernel prints them.
    const V4: &str = "   3: 0100007F:A1B2 0100007F:0F08 01 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 20 4 30 10 -1";
    const V6_MAPPED: &str = "   0: 0000000000000000FFFF00000100007F:A1B2 0000000000000000FFFF00000100007F:0F08 01 00000000:00000000 00:00000000 00000000 65534        0 777 1 0000000000000000 20 4 30 10 -1";
    const V6: &str = "   1: 00000000000000000000000001000000:A1B2 00000000000000000000000001000000:0F08 01 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 20 4 30 10 -1";

    #[test]
    fn parses_addresses() {
        if cfg!(target_endian = "little") {
            assert_eq!(parse_addr("0100007F:0F08"), Some(sa("127.0.0.1:3848")));
            assert_eq!(
                parse_addr("0000000000000000FFFF00000100007F:0F08"),
                Some(sa("127.0.0.1:3848"))
            );
            assert_eq!(
                parse_addr("00000000000000000000000001000000:0F08"),
                Some(sa("[::1]:3848"))
            );
        }
        assert_eq!(parse_addr("0100007F"), None);
        assert_eq!(parse_addr("0100007:0F08"), None);
        assert_eq!(parse_addr("zz00007F:0F08"), None);
    }

    #[test]
    fn matches_the_peer_row_only() {
        if !cfg!(target_endian = "little") {
            return;
        }
        let (peer, ours) = (sa("127.0.0.1:41394"), sa("127.0.0.1:3848"));
        assert_eq!(match_row(V4, peer, ours), Some(1000));
        // Our own end of the connection is the mirror row: not the peer's.
        assert_eq!(match_row(V4, ours, peer), None);
        assert_eq!(match_row(V4, sa("127.0.0.1:41395"), ours), None);
        assert_eq!(match_row(V6_MAPPED, peer, ours), Some(65534));
        assert_eq!(match_row(V6, sa("[::1]:41394"), sa("[::1]:3848")), Some(0));
        // TIME_WAIT and orphaned sockets say nothing about who is connecting.
        assert_eq!(match_row(&V4.replace(" 01 ", " 06 "), peer, ours), None);
        assert_eq!(match_row(&V4.replace(" 123456 ", " 0 "), peer, ours), None);
        assert_eq!(match_row("garbage", peer, ours), None);
    }

    #[test]
    fn finds_this_process_on_a_real_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        if std::path::Path::new("/proc/net/tcp").exists() {
            let me = nix::unistd::geteuid().as_raw();
            assert_eq!(socket_uid(peer, listener.local_addr().unwrap()), Some(me));
            let info = PeerInfo::new(peer, listener.local_addr().unwrap());
            assert!(info.is_owner());
        }
        // IPv6 loopback, where the machine has it.
        if let Ok(l6) = std::net::TcpListener::bind("[::1]:0") {
            let c6 = std::net::TcpStream::connect(l6.local_addr().unwrap()).unwrap();
            let (_s6, p6) = l6.accept().unwrap();
            assert_eq!(p6, c6.local_addr().unwrap());
            if std::path::Path::new("/proc/net/tcp6").exists() {
                let me = nix::unistd::geteuid().as_raw();
                assert_eq!(proc_socket_uid(p6, l6.local_addr().unwrap()), Some(me));
                assert_eq!(socket_uid(p6, l6.local_addr().unwrap()), Some(me));
            }
        }
    }
}
