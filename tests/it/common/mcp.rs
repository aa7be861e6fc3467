//! A real MCP client (the official `rmcp` SDK) driving a `telepty mcp` child process over its
//! stdin/stdout.

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::process::{Child, Command};

pub type Mcp = RunningService<RoleClient, ()>;

/// An MCP session with a `telepty mcp` child process.
pub struct Session {
    pub client: Mcp,
    pub child: Child,
}

/// Start `cmd` (a `telepty mcp` command line) and initialize an MCP session with it.
pub async fn connect(cmd: std::process::Command) -> Session {
    let mut cmd = Command::from(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run telepty mcp");
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let client = tokio::time::timeout(Duration::from_secs(20), ().serve((stdout, stdin)))
        .await
        .expect("initialize within 20 s")
        .expect("initialize");
    Session { client, child }
}

impl Session {
    /// `tools/call`; a protocol-level error panics (tool errors come back as `isError`).
    pub async fn call(&self, name: &'static str, args: Value) -> CallToolResult {
        self.try_call(name, args)
            .await
            .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
    }

    pub async fn try_call(
        &self,
        name: &'static str,
        args: Value,
    ) -> Result<CallToolResult, rmcp::ServiceError> {
        let params = CallToolRequestParams::new(name)
            .with_arguments(args.as_object().cloned().expect("arguments are an object"));
        tokio::time::timeout(Duration::from_secs(60), self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("tools/call {name} did not answer within 60 s"))
    }

    /// Close the client side (stdin) and wait for the server to exit.
    pub async fn close(mut self) -> std::process::ExitStatus {
        self.client.cancel().await.expect("close the MCP client");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("telepty mcp exits within 10 s of stdin closing")
            .expect("wait for telepty mcp")
    }
}

/// The text content of a tool result.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a successful tool result (panics on a tool error).
#[track_caller]
pub fn tool_ok(r: &CallToolResult) -> &Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {}", text(r));
    r.structured_content.as_ref().expect("structured content")
}

/// A current-thread runtime for a test's MCP session.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
