//! The wire: serde types of what crosses the engine/API boundary and the HTTP/WS API
//! (shared/API.md is the contract). Below the engine; it depends on serde only, so the
//! engine, the API, the client, the dashboard and the MCP server share one definition of
//! every message and cannot disagree about a field.
//!
//! | module | job |
//! |---|---|
//! | `coord` | handoffs and deliberation threads (§10): views, bodies, events |
//! | `event` | bus events (§12): typed, and the one parser of what a bus socket delivers |
//! | `frame` | WebSocket frames of a session socket (§11.2) |
//! | `describe` | the one readable line per event (monitor, dashboard event log) |
//! | `session` | the session object and its blocks (§2) |
//! | `request` | request bodies: parsed and validated by the API, serialised by the client |
//! | `response` | response bodies of the session routes |

pub mod coord;
pub mod describe;
pub mod event;
pub mod frame;
pub mod request;
pub mod response;
pub mod schema;
pub mod session;

pub use event::Event;
pub use frame::Frame;

/// A wire type as a JSON value (serialising the wire types cannot fail: string keys, no
/// non-finite floats).
pub fn value(x: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(x).unwrap_or(serde_json::Value::Null)
}
