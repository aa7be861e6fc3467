//! What one client may hold of the daemon: how long a request's head may take, how many
//! connections stay open (in all, and per remote address), and the file limit that backs them.
//!
//! Without these, idle or slow connections were never closed and, at the usual limit of 1024
//! files, ~1,100 of them made `accept` fail and `/api/health` time out (issue 14).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// A request's head must arrive within this; it also closes a keep-alive connection that sent
/// no new request for this long (hyper starts the timer whenever it waits for a head).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body must arrive within this (a slow POST would otherwise hold its connection).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Open connections (HTTP and upgraded WebSockets) before new ones are answered 503.
pub const MAX_CONNECTIONS: usize = 4096;
/// Open connections from one non-loopback address (a remote dashboard needs a few dozen).
pub const MAX_PER_ADDRESS: usize = 256;
/// Files kept for everything that is not a client connection (sessions' PTYs, rings, holder
/// sockets, recordings, the store).
const RESERVED_FILES: u64 = 512;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit, as servers do, and return the soft limit
/// now in force (`None` if it cannot be read).
pub fn raise_nofile() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The connection cap for a soft file limit: [`MAX_CONNECTIONS`], or fewer when the files
/// would run out first (a 503 beats `accept` failing for everyone).
pub fn max_connections(nofile: Option<u64>) -> usize {
    let usable = nofile.map_or(u64::MAX, |n| n.saturating_sub(RESERVED_FILES).max(64));
    MAX_CONNECTIONS.min(usize::try_from(usable).unwrap_or(usize::MAX))
}

/// Counts open connections; a [`Slot`] is held for a connection's whole life (through a
/// WebSocket upgrade too) and frees itself on drop.
#[derive(Clone)]
pub struct ConnLimiter {
    inner: Arc<Mutex<Counts>>,
    max: usize,
    per_address: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Only non-loopback addresses: loopback is the owner's own tools.
    by_addr: HashMap<IpAddr, usize>,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    PerAddress,
}

impl ConnLimiter {
    pub fn new(max: usize, per_address: usize) -> Self {
        ConnLimiter {
            inner: Arc::default(),
            max,
            per_address,
        }
    }

    pub fn try_acquire(&self, peer: IpAddr) -> Result<Slot, Refused> {
        let peer = peer.to_canonical();
        let remote = !peer.is_loopback();
        let mut c = self.inner.lock();
        if c.total >= self.max {
            return Err(Refused::Full);
        }
        if remote {
            let n = c.by_addr.entry(peer).or_default();
            if *n >= self.per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
        }
        c.total += 1;
        Ok(Slot {
            limiter: self.inner.clone(),
            addr: remote.then_some(peer),
        })
    }

    pub fn open(&self) -> usize {
        self.inner.lock().total
    }
}

pub struct Slot {
    limiter: Arc<Mutex<Counts>>,
    addr: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.limiter.lock();
        c.total -= 1;
        if let Some(a) = self.addr
            && let Some(n) = c.by_addr.get_mut(&a)
        {
            *n -= 1;
            if *n == 0 {
                c.by_addr.remove(&a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_total_and_per_address() {
        let l = ConnLimiter::new(3, 2);
        let a = l.try_acquire(ip("10.0.0.1")).unwrap();
        let _b = l.try_acquire(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            l.try_acquire(ip("10.0.0.1")).err(),
            Some(Refused::PerAddress)
        );
        let _c = l.try_acquire(ip("127.0.0.1")).unwrap();
        assert_eq!(l.try_acquire(ip("127.0.0.1")).err(), Some(Refused::Full));
        drop(a);
        assert_eq!(l.open(), 2);
        let _d = l.try_acquire(ip("10.0.0.1")).unwrap();
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn loopback_has_no_per_address_cap() {
        let l = ConnLimiter::new(10, 1);
        let _s: Vec<Slot> = (0..5).map(|_| l.try_acquire(ip("::1")).unwrap()).collect();
        assert_eq!(l.open(), 5);
    }

    #[test]
    fn cap_follows_the_file_limit() {
        assert_eq!(max_connections(None), MAX_CONNECTIONS);
        assert_eq!(max_connections(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(max_connections(Some(1024)), 512);
        assert_eq!(max_connections(Some(100)), 64);
    }
}
