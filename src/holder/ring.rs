//! The output ring shared by a holder and its engine: a `memfd` both map, so whoever is reading
//! the PTY appends to the same history and the next engine can replay it.
//!
//! Layout: a 64-byte header (magic, capacity, total bytes ever written) and `capacity` bytes of
//! data. Exactly one side writes at a time — the engine while it is attached, the holder while
//! no engine is — and the handover happens through the control socket, so the ring needs no
//! lock: the writer copies the bytes in first and publishes the new total last.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// At least the last 1 MiB of output survives an engine restart.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
const HEADER: usize = 64;
const MAGIC: u64 = 0x7465_6c65_7074_7931; // "telepty1"

pub struct Ring {
    fd: OwnedFd,
    base: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through `&self` methods that
// copy bytes in or out, and the one-writer rule is kept by the protocol (see the module doc).
unsafe impl Send for Ring {}
unsafe impl Sync for Ring {}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("cannot create the output ring: {0}")]
    Create(nix::Error),
    #[error("cannot map the output ring: {0}")]
    Map(nix::Error),
    #[error("the output ring is not a telepty ring (bad header)")]
    BadHeader,
}

impl Ring {
    /// A new ring of `capacity` bytes in a fresh memfd (pages are allocated as they are
    /// written, so an idle session costs what it printed).
    pub fn create(capacity: usize) -> Result<Ring, RingError> {
        let fd =
            nix::sys::memfd::memfd_create(c"telepty-ring", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .map_err(RingError::Create)?;
        let len = HEADER + capacity;
        nix::unistd::ftruncate(&fd, len as i64).map_err(RingError::Create)?;
        let ring = Ring::map(fd, len)?;
        ring.header(0).store(MAGIC, Ordering::Relaxed);
        ring.header(1).store(capacity as u64, Ordering::Relaxed);
        ring.header(2).store(0, Ordering::Release);
        Ok(ring)
    }

    /// Map a ring received from a holder.
    pub fn open(fd: OwnedFd) -> Result<Ring, RingError> {
        let len = nix::sys::stat::fstat(&fd).map_err(RingError::Map)?.st_size as usize;
        if len <= HEADER {
            return Err(RingError::BadHeader);
        }
        let mut ring = Ring::map(fd, len)?;
        let cap = ring.header(1).load(Ordering::Relaxed) as usize;
        if ring.header(0).load(Ordering::Relaxed) != MAGIC || cap + HEADER != len {
            return Err(RingError::BadHeader);
        }
        ring.capacity = cap;
        Ok(ring)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<Ring, RingError> {
        let size = NonZeroUsize::new(len).ok_or(RingError::BadHeader)?;
        // SAFETY: a shared mapping of a memfd we hold open, of exactly its size.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .map_err(RingError::Map)?;
        Ok(Ring {
            fd,
            base: ptr.cast(),
            len,
            capacity: len - HEADER,
        })
    }

    fn header(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the header holds 8 aligned u64 slots at the start of a page-aligned mapping.
        unsafe { &*(self.base.as_ptr().add(i * 8) as *const AtomicU64) }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data area starts right after the header, inside the mapping.
        unsafe { self.base.as_ptr().add(HEADER) }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes ever written.
    pub fn total(&self) -> u64 {
        self.header(2).load(Ordering::Acquire)
    }

    /// Append `bytes` (only the writer of the moment calls this).
    pub fn append(&self, bytes: &[u8]) {
        let cap = self.capacity;
        let total = self.total();
        // Only the last `cap` bytes can matter.
        let src = &bytes[bytes.len().saturating_sub(cap)..];
        let start = ((total + (bytes.len() - src.len()) as u64) % cap as u64) as usize;
        let first = src.len().min(cap - start);
        // SAFETY: both copies stay inside the data area ([start, start+first) and [0, rest)).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data().add(start), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.data(), src.len() - first);
        }
        self.header(2)
            .store(total + bytes.len() as u64, Ordering::Release);
    }

    /// The bytes still held, oldest first, and whether older output was overwritten.
    pub fn contents(&self) -> (Vec<u8>, bool) {
        let cap = self.capacity as u64;
        let total = self.total();
        let held = total.min(cap) as usize;
        let start = ((total - held as u64) % cap) as usize;
        let mut out = Vec::with_capacity(held);
        let first = held.min(self.capacity - start);
        // SAFETY: reads inside the data area, as in `append`.
        unsafe {
            out.extend_from_slice(std::slice::from_raw_parts(self.data().add(start), first));
            out.extend_from_slice(std::slice::from_raw_parts(self.data(), held - first));
        }
        (out, total > cap)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `map`, which nothing borrows any more.
        unsafe {
            let _ = munmap(self.base.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_capacity_bytes_across_wraps() {
        let r = Ring::create(16).unwrap();
        assert_eq!(r.contents(), (Vec::new(), false));
        r.append(b"hello ");
        assert_eq!(r.contents(), (b"hello ".to_vec(), false));
        r.append(b"world, again");
        let (bytes, wrapped) = r.contents();
        assert!(wrapped);
        assert_eq!(bytes, b"llo world, again");
        // A write larger than the ring keeps its tail.
        r.append(b"0123456789abcdefXYZ");
        assert_eq!(r.contents().0, b"3456789abcdefXYZ");
        assert_eq!(r.total(), 6 + 12 + 19);
    }

    #[test]
    fn a_second_mapping_sees_the_same_history() {
        let r = Ring::create(32).unwrap();
        r.append(b"before the handover ");
        let dup = r.fd().try_clone_to_owned().unwrap();
        let other = Ring::open(dup).unwrap();
        assert_eq!(other.capacity, 32);
        other.append(b"and after");
        assert_eq!(r.contents().0, b"before the handover and after".to_vec());
    }

    #[test]
    fn refuses_a_file_that_is_not_a_ring() {
        let fd =
            nix::sys::memfd::memfd_create(c"x", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        assert!(matches!(Ring::open(fd), Err(RingError::BadHeader)));
    }
}
