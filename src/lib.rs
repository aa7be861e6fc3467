//! telepty: supervise and drive many interactive terminal programs (AI coding agents above all).
//!
//! Layers (dependencies point one way): `cli -> client`, `api -> engine`, `tui -> engine | client`.
//! The engine knows nothing of HTTP or of any UI.

pub mod api;
pub mod cli;
pub mod client;
/// The configuration: data, at the bottom of the layers (it depends only on `util`).
pub mod config;
pub mod engine;
pub mod holder;
pub mod httpc;
pub mod kitty;
pub mod lock;
pub mod mcp;
pub mod tui;
pub mod util;
/// Serde types of requests, responses and bus events (below the engine).
pub mod wire;
