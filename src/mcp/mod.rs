//! `telepty mcp`: a Model Context Protocol server on stdio (the `rmcp` SDK) whose tools drive
//! telepty sessions. It is a client of the daemon like the CLI: it starts a local daemon on the
//! first tool call that needs one, and reaches peers through `id@host`.
//!
//! - [`server`]: the tools;
//! - [`params`]: their arguments (and the JSON Schemas the calling model sees);
//! - [`install`]: the configuration snippets for Claude Code, Codex and Gemini CLI.

pub mod install;
mod params;
mod server;

use rmcp::ServiceExt;

pub use server::TeleptyMcp;

use crate::client::Connector;

/// Serve MCP on stdin/stdout until the client closes stdin. `from` names the sender of
/// injects that give none.
pub async fn serve_stdio(conn: Connector, from: String) -> anyhow::Result<()> {
    let server = TeleptyMcp::new(conn, from);
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
