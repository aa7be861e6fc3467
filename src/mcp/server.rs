//! The MCP tools: each one is a call (or two) to the daemon's HTTP API through the shared
//! [`Connector`]: the same sessions, errors and addressing as the CLI (`id@host` reaches a
//! peer; a bare id of an existing session is looked up on every host when peers are
//! configured).

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::*;
use crate::client::{
    Client, ClientError, ConnectError, Connector, Host, InjectRequest, ScreenQuery, SpawnRequest,
    Target, WaitRequest,
};
use crate::wire::{
    self,
    response::{Cursor, FanOut, ScreenGrid, TargetFailed, TargetResults},
};

type ToolResult = Result<CallToolResult, ErrorData>;

const INSTRUCTIONS: &str = "telepty drives interactive terminal sessions (shells, REPLs, AI \
coding agents) held by the telepty daemon. Typical loop: session_spawn (or session_list to \
find existing ones) → session_inject with wait_for, or session_inject then session_wait → \
session_read. Use session_keys for ctrl+c, arrows and other named keys. Ids may be written \
id@host to reach a peer daemon.";

/// Default size of a session spawned through MCP: wide enough for agent CLIs, and a size the
/// dashboard can show without wrapping much.
const SPAWN_COLS: u16 = 120;
const SPAWN_ROWS: u16 = 40;

#[derive(Clone)]
pub struct TeleptyMcp {
    /// Shared without a lock: the connector's caches are once-cells, so one tool's peer probes
    /// never hold up another tool.
    conn: Arc<Connector>,
    /// Sender name of injects when the caller gives none.
    from: String,
    tool_router: ToolRouter<Self>,
}

/// A failed tool call the model should read: `isError: true`, one line of text, and the
/// daemon's error code when there is one.
fn failure(tool: &str, why: impl std::fmt::Display, code: Option<&str>) -> CallToolResult {
    let text = format!("{tool} failed: {why}");
    let mut r = CallToolResult::error(vec![ContentBlock::text(text.clone())]);
    #[derive(Serialize)]
    struct Failed<'a> {
        error: &'a str,
        code: Option<&'a str>,
    }
    r.structured_content = Some(wire::value(&Failed { error: &text, code }));
    r
}

fn connect_failure(tool: &str, e: ConnectError) -> CallToolResult {
    let code = match e {
        ConnectError::Daemon(e) => return client_failure(tool, e),
        ConnectError::Invalid { .. } => "INVALID_TARGET",
        ConnectError::Unreachable { .. } => "UNREACHABLE",
        ConnectError::Ambiguous { .. } => "AMBIGUOUS",
    };
    failure(tool, e, Some(code))
}

fn client_failure(tool: &str, e: ClientError) -> CallToolResult {
    let code = e.code().map(str::to_string);
    failure(tool, &e, code.as_deref())
}

/// `session_send` with a pattern: what was typed and what the wait saw.
#[derive(Serialize)]
struct Sent {
    delivered: Value,
    wait: Value,
}

/// `session_read`.
#[derive(Serialize)]
struct Read {
    session_id: String,
    screen: String,
    format: &'static str,
    cursor: Cursor,
    cols: u16,
    rows: u16,
    alt_screen: bool,
    title: Option<String>,
    generation: u64,
}

/// A successful call whose first content block is `text` (what a model reads best) and whose
/// structured content is `value` (what a program reads best).
fn answer(text: impl Into<String>, value: impl Serialize) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text.into())]);
    r.structured_content = Some(wire::value(&value));
    r
}

impl TeleptyMcp {
    pub fn new(conn: Connector, from: String) -> TeleptyMcp {
        TeleptyMcp {
            conn: Arc::new(conn),
            from,
            tool_router: Self::tool_router(),
        }
    }

    /// Where a new session goes: the local daemon, or the peer of `id@host`.
    async fn target(&self, tool: &str, spec: &str) -> Result<(Client, Target), CallToolResult> {
        self.conn
            .target(spec)
            .await
            .map_err(|e| connect_failure(tool, e))
    }

    /// An existing session: `id@host`, or a bare id looked up on every host when peers are
    /// configured (as the CLI does).
    async fn session(&self, tool: &str, spec: &str) -> Result<(Client, Target), CallToolResult> {
        self.conn
            .session_target(spec)
            .await
            .map_err(|e| connect_failure(tool, e))
    }

    async fn local(&self, tool: &str) -> Result<Client, CallToolResult> {
        self.conn.local().await.map_err(|e| client_failure(tool, e))
    }
}

/// `Err` early-returns the finished tool result; with a tool name, a daemon error becomes
/// that tool's failure.
macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(r),
        }
    };
    ($e:expr, $tool:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(client_failure($tool, e)),
        }
    };
}

#[tool_router]
impl TeleptyMcp {
    #[tool(
        description = "List the sessions of the local telepty daemon and, when peers are \
                       configured, of every peer (each session then has a host; address it as \
                       id@host): id, command, working directory, state \
                       (running/idle/thinking/waiting_input/stuck/exited), attached clients.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_list(&self) -> ToolResult {
        let hosts = self.conn.hosts().await;
        let hosts = attempt!(hosts.map_err(|e| connect_failure("session_list", e)));
        // With peers configured every host is listed, as `telepty list` does.
        let multi = hosts.len() > 1;
        let answers = futures_util::future::join_all(hosts.iter().map(Host::sessions)).await;
        let mut sessions = Vec::new();
        let mut unreachable = Vec::new();
        let mut lines = Vec::new();
        for (h, r) in hosts.iter().zip(answers) {
            match r {
                Ok(list) => {
                    for mut sess in list {
                        let id = sess["id"].as_str().unwrap_or("?").to_string();
                        lines.push(session_line(&h.address(&id), &sess));
                        if multi && let Value::Object(m) = &mut sess {
                            m.insert("host".into(), Value::String(h.label.clone()));
                        }
                        sessions.push(sess);
                    }
                }
                // The local daemon's failure is the tool's failure; a peer's is reported.
                Err(e) if h.local => return Ok(client_failure("session_list", e)),
                Err(e) => {
                    lines.push(format!("{}: unreachable ({e})", h.label));
                    unreachable.push(Unreachable {
                        host: &h.label,
                        error: e.to_string(),
                    });
                }
            }
        }
        let n = sessions.len();
        lines.insert(0, format!("{n} session{}", if n == 1 { "" } else { "s" }));
        #[derive(Serialize)]
        struct Unreachable<'a> {
            host: &'a str,
            error: String,
        }
        /// `unreachable` only with peers configured.
        #[derive(Serialize)]
        struct Listed<'a> {
            sessions: Vec<Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            unreachable: Option<Vec<Unreachable<'a>>>,
        }
        let value = Listed {
            sessions,
            unreachable: multi.then_some(unreachable),
        };
        Ok(answer(lines.join("\n"), value))
    }

    #[tool(
        description = "Start a program in a new terminal session held by the daemon (it keeps \
                       running after this call). Returns the session id.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn session_spawn(&self, Parameters(p): Parameters<SpawnParams>) -> ToolResult {
        let (c, target) = attempt!(self.target("session_spawn", &p.id).await);
        let cwd = match p.cwd {
            Some(dir) if !std::path::Path::new(&dir).is_absolute() => {
                return Ok(failure(
                    "session_spawn",
                    format!("cwd must be an absolute path, got {dir:?}"),
                    Some("INVALID_REQUEST"),
                ));
            }
            Some(dir) => Some(dir),
            None if target.is_remote() => None,
            None => std::env::current_dir()
                .ok()
                .map(|d| d.to_string_lossy().into_owned()),
        };
        let command = match p.command.filter(|c| !c.trim().is_empty()) {
            Some(c) => c,
            None => crate::config::Config::load(&crate::config::Paths::from_env())
                .map(|s| s.default_shell())
                .unwrap_or_else(|_| "/bin/sh".into()),
        };
        let req = SpawnRequest {
            window_size: None,
            session_id: target.id.clone(),
            command,
            args: p.args,
            cwd,
            cols: Some(p.cols.unwrap_or(SPAWN_COLS)),
            rows: Some(p.rows.unwrap_or(SPAWN_ROWS)),
            kind: None,
            record: p.record,
            profile: None,
            env: Default::default(),
        };
        let resp = attempt!(c.spawn(&req).await, "session_spawn");
        let id = resp["session_id"].as_str().unwrap_or(&target.id);
        let label = match &target.host {
            Some(h) => format!("{id}@{h}"),
            None => id.to_string(),
        };
        Ok(answer(format!("spawned {label}"), resp))
    }

    #[tool(
        description = "Type text into a session, then press Enter (submit=false: don't). \
                       Returns once the text is written; with wait_for, once the regex \
                       matches output that arrived after the inject (or the timeout).",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn session_inject(&self, Parameters(p): Parameters<InjectParams>) -> ToolResult {
        const TOOL: &str = "session_inject";
        let (c, target) = attempt!(self.session(TOOL, &p.id).await);
        // The generation before typing: a wait counted from it cannot match stale screen.
        let before = match &p.wait_for {
            Some(_) => {
                attempt!(c.screen(&target.id, &ScreenQuery::default()).await, TOOL)["generation"]
                    .as_u64()
            }
            None => None,
        };
        // Another machine gets `me@this-machine`, so replies and reports can come back.
        let port = self
            .conn
            .local_client()
            .map_or(crate::client::addr::DEFAULT_PORT, |c| c.addr().port);
        let from = p.from.unwrap_or_else(|| self.from.clone());
        let req = InjectRequest {
            prompt: p.text,
            no_enter: !p.submit,
            from: Some(target.sender(&from, port)),
            ..Default::default()
        };
        let delivered = attempt!(c.inject(&target.id, &req, true).await, TOOL);
        let Some(pattern) = p.wait_for else {
            return Ok(answer(
                format!("delivered to {}", target.label()),
                delivered,
            ));
        };
        let wait = WaitRequest {
            pattern: Some(pattern),
            timeout_ms: p.timeout_ms,
            since_generation: before,
            include_screen: Some(true),
            ..Default::default()
        };
        let w = attempt!(c.wait(&target.id, &wait).await, TOOL);
        let text = wait_text(&target.label(), &w);
        Ok(answer(text, Sent { delivered, wait: w }))
    }

    #[tool(
        description = "Press named keys in a session, in order: ctrl+c, ctrl+d, enter, tab, \
                       escape, up/down/left/right, home/end, pageup/pagedown, f1…f12 …",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn session_keys(&self, Parameters(p): Parameters<KeysParams>) -> ToolResult {
        let (c, target) = attempt!(self.session("session_keys", &p.id).await);
        let v = attempt!(c.keys(&target.id, &p.keys).await, "session_keys");
        let text = format!("pressed {} in {}", p.keys.join(" "), target.label());
        Ok(answer(text, v))
    }

    #[tool(
        description = "Read what a session's terminal shows, as rendered by its terminal \
                       emulator: the visible screen (or the last N lines with scrollback), \
                       cursor, alternate-screen flag, title and generation.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_read(&self, Parameters(p): Parameters<ReadParams>) -> ToolResult {
        const TOOL: &str = "session_read";
        let (c, target) = attempt!(self.session(TOOL, &p.id).await);
        let meta_q = ScreenQuery {
            format: Some("json".into()),
            ..Default::default()
        };
        let meta = attempt!(c.screen(&target.id, &meta_q).await, TOOL);
        let format = if p.ansi { "ansi" } else { "text" };
        let screen = match (p.lines, p.ansi) {
            // The visible screen, plain: the json rows already are that.
            (None, false) => visible_text(&meta),
            (lines, _) => {
                let q = ScreenQuery {
                    // Visible rows only: as many lines as the screen has rows.
                    lines: lines.or(meta["row_count"].as_u64().map(|n| n as u32)),
                    format: Some(format.into()),
                    ..Default::default()
                };
                let v = attempt!(c.screen(&target.id, &q).await, TOOL);
                v["screen"].as_str().unwrap_or_default().to_string()
            }
        };
        let grid = ScreenGrid::deserialize(&meta).unwrap_or_default();
        let value = Read {
            session_id: grid.session_id,
            screen: screen.clone(),
            format,
            cursor: grid.cursor,
            cols: grid.cols,
            rows: grid.row_count,
            alt_screen: grid.alt_screen,
            title: grid.title,
            generation: grid.generation,
        };
        Ok(answer(screen, value))
    }

    #[tool(
        description = "Wait for a regex on a session's screen, or (no pattern) for its output \
                       to settle. With a pattern it returns only on a match, the timeout or \
                       the session's exit — never on mere silence. Pass since_generation from \
                       an earlier read to ignore what was already on screen.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_wait(&self, Parameters(p): Parameters<WaitParams>) -> ToolResult {
        let (c, target) = attempt!(self.session("session_wait", &p.id).await);
        let req = WaitRequest {
            pattern: p.pattern,
            state: p.state.map(Into::into),
            settle_ms: p.settle_ms,
            timeout_ms: p.timeout_ms,
            since_generation: p.since_generation,
            scope: p.stream.then(|| "stream".to_string()),
            include_screen: Some(p.include_screen),
        };
        let w = attempt!(c.wait(&target.id, &req).await, "session_wait");
        Ok(answer(wait_text(&target.label(), &w), w))
    }

    #[tool(
        description = "Type text into every session of the local daemon, each followed by \
                       Enter. Reports which sessions took it and which failed.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn session_broadcast(&self, Parameters(p): Parameters<BroadcastParams>) -> ToolResult {
        let c = attempt!(self.local("session_broadcast").await);
        let v = attempt!(c.broadcast(&p.text).await, "session_broadcast");
        Ok(answer(fanout_text("broadcast", &v), v))
    }

    #[tool(
        description = "Type text into the listed sessions (each may be id@host), each \
                       followed by Enter. Reports which took it and which failed.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn session_multicast(&self, Parameters(p): Parameters<MulticastParams>) -> ToolResult {
        const TOOL: &str = "session_multicast";
        if p.ids.is_empty() {
            return Ok(failure(
                TOOL,
                "ids must not be empty",
                Some("INVALID_REQUEST"),
            ));
        }
        let groups = match self.conn.group_targets(&p.ids).await {
            Ok((groups, _)) => groups,
            Err(ConnectError::Daemon(e)) => return Ok(client_failure(TOOL, e)),
            Err(e) => return Ok(failure(TOOL, e, Some("INVALID_TARGET"))),
        };
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        for g in &groups {
            let ids: Vec<String> = g.targets.iter().map(|t| t.id.clone()).collect();
            let host = g.targets.first().and_then(|t| t.host.clone());
            let label = |id: &str| match &host {
                Some(h) => format!("{id}@{h}"),
                None => id.to_string(),
            };
            match g.client.multicast(&ids, &p.text).await {
                Ok(v) => {
                    // The daemon's entries, ids labelled with their host.
                    let mut r = FanOut::deserialize(&v).unwrap_or_default().results;
                    r.successful.iter_mut().for_each(|e| e.id = label(&e.id));
                    r.failed.iter_mut().for_each(|e| e.id = label(&e.id));
                    successful.append(&mut r.successful);
                    failed.append(&mut r.failed);
                }
                Err(e) => {
                    for id in &ids {
                        failed.push(TargetFailed {
                            id: label(id),
                            strategy: None,
                            code: e.code().unwrap_or("UNREACHABLE").to_string(),
                            error: e.to_string(),
                        });
                    }
                }
            }
        }
        let v = wire::value(&FanOut {
            success: failed.is_empty(),
            results: TargetResults { successful, failed },
        });
        Ok(answer(fanout_text("multicast", &v), v))
    }

    #[tool(
        description = "Give a session a new id (the old one keeps working as an alias).",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn session_rename(&self, Parameters(p): Parameters<RenameParams>) -> ToolResult {
        let (c, target) = attempt!(self.session("session_rename", &p.id).await);
        let v = attempt!(c.rename(&target.id, &p.new_id).await, "session_rename");
        let text = format!("renamed {} to {}", target.label(), p.new_id);
        Ok(answer(text, v))
    }

    #[tool(
        description = "Stop a session's program and remove the session.",
        annotations(
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn session_kill(&self, Parameters(p): Parameters<KillParams>) -> ToolResult {
        let (c, target) = attempt!(self.session("session_kill", &p.id).await);
        let v = attempt!(c.delete_session(&target.id).await, "session_kill");
        Ok(answer(format!("killed {}", target.label()), v))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TeleptyMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("telepty", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// One line per session for `session_list`: `id[@host]  [state]  command  cwd`.
fn session_line(label: &str, s: &Value) -> String {
    let state = match (s["alive"].as_bool(), s["exit_code"].as_i64()) {
        (Some(false), Some(code)) => format!("exited {code}"),
        (Some(false), None) => "exited".to_string(),
        _ => s["state"].as_str().unwrap_or("running").to_string(),
    };
    format!(
        "{label}  [{}]  {}  {}",
        state,
        s["command"].as_str().unwrap_or(""),
        s["cwd"].as_str().unwrap_or(""),
    )
}

/// The visible screen of a `format=json` answer, trailing blank rows dropped.
fn visible_text(meta: &Value) -> String {
    let rows: Vec<&str> = meta["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap_or_default())
        .collect();
    let end = rows
        .iter()
        .rposition(|r| !r.is_empty())
        .map_or(0, |i| i + 1);
    rows[..end].join("\n")
}

/// A wait's outcome in one line, then the screen if it came back.
fn wait_text(label: &str, w: &Value) -> String {
    let outcome = if let (Some(true), Some(state)) = (w["matched"].as_bool(), w["state"].as_str()) {
        format!("{label} is {state}")
    } else if w["matched"].as_bool() == Some(true) {
        format!("matched {:?} in {label}", w["match"].as_str().unwrap_or(""))
    } else if w["exited"].as_bool() == Some(true) {
        format!("{label} exited before a match")
    } else if w["timed_out"].as_bool() == Some(true) {
        format!("timed out waiting on {label}")
    } else if w["settled"].as_bool() == Some(true) {
        format!("{label} settled")
    } else {
        format!("wait on {label} ended")
    };
    let mut text = format!("{outcome} (generation {})", w["generation"]);
    if let Some(screen) = w["screen"].as_str() {
        text.push_str("\n\n");
        text.push_str(screen.trim_end_matches('\n'));
    }
    text
}

/// `broadcast: 3 delivered, 1 failed (x: why)`.
fn fanout_text(what: &str, v: &Value) -> String {
    let ok = v["results"]["successful"].as_array().map_or(0, Vec::len);
    let failed: Vec<String> = v["results"]["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{}: {}",
                f["id"].as_str().unwrap_or("?"),
                f["error"].as_str().unwrap_or("failed")
            )
        })
        .collect();
    let mut text = format!("{what}: {ok} delivered, {} failed", failed.len());
    if !failed.is_empty() {
        text.push_str(&format!(" ({})", failed.join("; ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn visible_text_drops_trailing_blank_rows() {
        let meta = json!({ "rows": ["$ echo hi", "hi", "$", "", ""] });
        assert_eq!(visible_text(&meta), "$ echo hi\nhi\n$");
        assert_eq!(visible_text(&json!({ "rows": ["", ""] })), "");
        assert_eq!(visible_text(&json!({})), "");
    }

    #[test]
    fn wait_text_names_the_outcome() {
        let w = json!({ "matched": true, "match": "42", "generation": 7, "screen": "42\n$\n" });
        assert_eq!(
            wait_text("w", &w),
            "matched \"42\" in w (generation 7)\n\n42\n$"
        );
        let w = json!({ "matched": false, "timed_out": true, "generation": 3 });
        assert_eq!(
            wait_text("w@box", &w),
            "timed out waiting on w@box (generation 3)"
        );
        let w = json!({ "matched": false, "exited": true, "timed_out": false, "generation": 3 });
        assert_eq!(wait_text("w", &w), "w exited before a match (generation 3)");
    }

    #[test]
    fn fanout_text_lists_failures() {
        let v = json!({ "results": { "successful": ["a", "b"],
            "failed": [{ "id": "c", "error": "Session 'c' not found" }] } });
        assert_eq!(
            fanout_text("multicast", &v),
            "multicast: 2 delivered, 1 failed (c: Session 'c' not found)"
        );
    }
}
