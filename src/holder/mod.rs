//! Session holders: one small process per spawned session that owns its PTY and child, so the
//! session outlives every engine (daemon restarts, upgrades, crashes, a dashboard quitting).
//!
//! The pattern of dtach/abduco and containerd's shim, with one twist for throughput: output
//! does not flow through the holder. On adoption the holder passes the PTY master and a shared
//! output ring to the engine over a unix seqpacket socket (`SCM_RIGHTS`); the engine reads and
//! writes the PTY directly and appends what it reads to the ring. While no engine is attached
//! the holder drains the PTY into the ring itself, so the next engine can replay the screen.
//!
//! - [`server`]: the holder process (`telepty __hold`).
//! - [`client`]: start, find and adopt holders (used by the engine).
//! - [`proto`]: the control messages.
//! - [`ring`]: the shared output ring.

pub mod client;
pub mod proto;
pub mod ring;
pub mod server;
pub mod spawn;

pub use client::{Attached, HolderError};
pub use proto::ExitStatus;
pub use server::{kill_session, session_members};
pub use spawn::Spec;

/// Entry point for `telepty __hold`, dispatched by `main` before anything else runs (the holder
/// forks, which is only sound while the process has a single thread).
pub fn main_if_holder() -> Option<i32> {
    let mut args = std::env::args();
    let _exe = args.next();
    if args.next().as_deref() != Some("__hold") {
        return None;
    }
    let rest: Vec<String> = args.collect();
    Some(server::main(&rest))
}
