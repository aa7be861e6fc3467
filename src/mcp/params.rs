//! The arguments of each MCP tool. Their doc comments become the JSON Schema descriptions the
//! calling model reads, so they say what a value does, not how it is stored.

use rmcp::schemars::JsonSchema;
use serde::Deserialize;

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SpawnParams {
    /// Session id to create (letters, digits, `.`, `_`, `-`; `id@host` spawns on a peer).
    pub id: String,
    /// Program to run; omitted: the configured default shell.
    #[serde(default)]
    pub command: Option<String>,
    /// Arguments of the program.
    #[serde(default)]
    pub args: Vec<String>,
    /// Absolute working directory; omitted: the MCP server's directory (local sessions).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Terminal width in columns (default 120).
    #[serde(default)]
    pub cols: Option<u16>,
    /// Terminal height in rows (default 40).
    #[serde(default)]
    pub rows: Option<u16>,
    /// Record the session as an asciicast v2 file.
    #[serde(default)]
    pub record: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct InjectParams {
    /// Target session id (or `id@host`).
    pub id: String,
    /// Text to type. Multi-line text is pasted as one block when the program supports it.
    pub text: String,
    /// Press Enter after the text (default true).
    #[serde(default = "yes")]
    pub submit: bool,
    /// Regex to wait for after the text is delivered. Only output that arrives after the
    /// inject can match (the echo of the typed text counts as output). Omitted: return as
    /// soon as the text is written.
    #[serde(default)]
    pub wait_for: Option<String>,
    /// Longest wait for `wait_for`, in ms (default 10000, max 300000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Sender shown to the target (default: $TELEPTY_SESSION_ID of this server, else "mcp").
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct KeysParams {
    /// Target session id (or `id@host`).
    pub id: String,
    /// Named keys pressed in order, e.g. ["ctrl+c"], ["up", "enter"]. Names: ctrl+a…ctrl+z,
    /// enter, tab, shift+tab, escape, backspace, delete, insert, up, down, left, right, home,
    /// end, pageup, pagedown, ctrl+left, ctrl+right, f1…f12.
    pub keys: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ReadParams {
    /// Session id (or `id@host`).
    pub id: String,
    /// Return the last N rows including scrollback (1–10000). Omitted: the visible screen.
    #[serde(default)]
    pub lines: Option<u32>,
    /// Keep colours and attributes as ANSI SGR sequences (default false: plain text).
    #[serde(default)]
    pub ansi: bool,
}

/// The states `session_wait` can wait for (the wire's `AgentState`, with a schema).
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum WaitState {
    Working,
    Waiting,
    Idle,
    Stuck,
    Exited,
}

impl From<WaitState> for crate::wire::request::AgentState {
    fn from(s: WaitState) -> Self {
        use crate::wire::request::AgentState as A;
        match s {
            WaitState::Working => A::Working,
            WaitState::Waiting => A::Waiting,
            WaitState::Idle => A::Idle,
            WaitState::Stuck => A::Stuck,
            WaitState::Exited => A::Exited,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct WaitParams {
    /// Session id (or `id@host`).
    pub id: String,
    /// Regex (Rust syntax) to wait for on the screen. With a pattern the call returns only
    /// on a match, the timeout or the session's exit; silence never ends it. Omitted: wait
    /// until the output settles.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Wait until the session is in this state instead (not with a pattern): working,
    /// waiting (a question or permission prompt), idle (ready for a prompt), stuck, exited.
    #[serde(default)]
    pub state: Option<WaitState>,
    /// Quiet time that counts as settled, in ms (default 300; only without a pattern).
    #[serde(default)]
    pub settle_ms: Option<u64>,
    /// Longest wait in ms (default 10000, max 300000). A timeout is not an error.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Only output newer than this generation (from session_read or an earlier wait) counts.
    #[serde(default)]
    pub since_generation: Option<u64>,
    /// Match against the escape-stripped output stream instead of the rendered screen.
    #[serde(default)]
    pub stream: bool,
    /// Include the screen in the answer (default true).
    #[serde(default = "yes")]
    pub include_screen: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct BroadcastParams {
    /// Text typed into every session of the local daemon, each followed by Enter.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct MulticastParams {
    /// Target session ids (each may be `id@host`).
    pub ids: Vec<String>,
    /// Text typed into each target, followed by Enter.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RenameParams {
    /// Current session id (or `id@host`).
    pub id: String,
    /// New id.
    pub new_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct KillParams {
    /// Session id to stop and remove (or `id@host`).
    pub id: String,
}
