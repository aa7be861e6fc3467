//! Client of a telepty daemon (HTTP/WS), used by the CLI and the dashboard's client mode.
//!
//! - [`addr`]: which daemon (`TELEPTY_HOST`/`TELEPTY_PORT`, `id@host`) and which token;
//! - [`Client`]: typed calls to the HTTP routes, each returning the daemon's JSON;
//! - [`ensure_daemon`]: start a local daemon on demand;
//! - [`Connector`]: the client for a session argument (`id` or `id@host`);
//! - [`ws`]: WebSocket connections, the event bus above all.

pub mod addr;
mod api;
mod connector;
mod daemon;
mod error;
pub mod health;
pub mod peers;
pub mod shared_ref;
pub mod ssh;
pub mod ws;

pub use addr::{ClientEnv, DaemonAddr, Peer, Target, resolve_host, resolve_target, split_target};
pub use api::{
    Client, INJECT_WAIT_TIMEOUT, InjectRequest, REQUEST_TIMEOUT, ScreenQuery, SpawnRequest,
    WAIT_DEFAULT_MS, WAIT_GRACE, WAIT_MAX_MS, WaitRequest,
};
pub use connector::{ConnectError, Connector, Host, LOCAL_HOST, TargetGroup};
pub use daemon::ensure_daemon;
pub(crate) use daemon::open_log;
pub use error::ClientError;
/// The configured (and discovered) peers.
pub use peers::load as load_peers;
pub use ws::{Bus, connect_ws};
