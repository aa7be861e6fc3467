//! telepty: supervise and drive many interactive terminal programs (AI coding agents above all).
//!
//! Layers (dependencies point down only; docs/ARCHITECTURE.md has the picture): the composition
//! roots `cli`, `tui` and `mcp` over `client`, `api` and `kitty`, over the `engine`, which drives
//! each session through its `holder` process, over `config`, `util`, `lock` and `httpc`.
//! The engine knows nothing of HTTP, peers or any UI.

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
