//! Every integration test in one binary: one link instead of one per file (minutes on 2
//! cores). Each module is one area; `cargo test --test it lifecycle::` runs one of them.
//!
//! They drive the real binary: daemons on loopback with private HOMEs (`common`), the dashboard
//! inside tmux (`tui_support`), real PTYs and programs, kitty under Xvfb, network namespaces.

mod common;
mod tui_support;

mod agents;
mod allow;
mod aterm;
mod bus;
mod cli;
mod config;
mod durable;
mod errors;
mod fleet;
mod inject;
mod kitty;
mod layers;
mod lifecycle;
mod limits;
mod mcp;
mod peers;
mod recording;
mod recording_api;
mod screen;
mod security;
mod sessions;
mod sizes;
mod tui_e2e;
mod websocket;
