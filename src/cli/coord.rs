//! Coordination: `handoff` (API.md §10 handoff routes), `deliberate` (threads, with the topic
//! injected into each participant) and `status-report` (a session's self-reported state, §5).

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail, opt, s};
use crate::client::addr::encode_component;
use crate::client::{Client, InjectRequest, REQUEST_TIMEOUT};
use crate::wire::coord::{ClaimHandoff, CreateHandoff, CreateThread, PatchStatus};
use crate::wire::request::StateReport;
use crate::wire::session::Semantic;

async fn send(
    c: &Client,
    method: &str,
    path: &str,
    body: &impl Serialize,
    action: &str,
) -> Result<Value, Failure> {
    c.send(method, path, body, REQUEST_TIMEOUT)
        .await
        .or_fail(action)
}

fn own_session() -> Option<String> {
    crate::util::env_nonempty("TELEPTY_SESSION_ID")
}

// ------------------------------------------------------------------------------- handoff

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty handoff drop --synthesis plan.json\n\
     More:    telepty handoff claim <ID> --agent worker-1\n         telepty handoff status <ID> executing --message 'step 1 done'")]
pub struct HandoffArgs {
    #[command(subcommand)]
    pub cmd: HandoffCmd,
    /// Print the daemon's JSON answer
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum HandoffCmd {
    /// List handoffs
    #[command(visible_alias = "ls")]
    List {
        /// Only handoffs with this status (pending, claimed, executing, completed, failed)
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
    },
    /// Create a handoff from a synthesis (POST /api/handoff)
    Drop(HandoffDropArgs),
    /// Claim a pending handoff for an agent session
    Claim {
        /// Handoff id
        id: String,
        /// The claiming session [default: $TELEPTY_SESSION_ID]
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
    },
    /// Move a handoff on (claimed → executing → completed | failed) and/or add a progress message
    Status {
        /// Handoff id
        id: String,
        /// New status
        status: String,
        /// Progress message to append
        #[arg(long, short = 'm', value_name = "TEXT")]
        message: Option<String>,
        /// Result (JSON, or plain text) to record
        #[arg(long, value_name = "JSON")]
        result: Option<String>,
    },
    /// Show one handoff
    Get {
        /// Handoff id
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct HandoffDropArgs {
    /// The synthesis: a JSON file, or inline JSON (an object; `tasks` is counted)
    #[arg(long, value_name = "FILE|JSON")]
    pub synthesis: String,
    /// Source session [default: $TELEPTY_SESSION_ID]
    #[arg(long, value_name = "ID")]
    pub source: Option<String>,
    /// Deliberation (thread) id this handoff concludes
    #[arg(long, value_name = "ID")]
    pub deliberation: Option<String>,
    /// Mark the handoff for automatic execution
    #[arg(long)]
    pub auto_execute: bool,
}

/// `--synthesis FILE|JSON`: a readable file holding JSON, else inline JSON. Must be an object.
pub(crate) fn parse_synthesis(arg: &str) -> Result<Value, Failure> {
    let path = std::path::Path::new(arg);
    let (text, from_file) = if !arg.trim_start().starts_with('{') && path.is_file() {
        let t = std::fs::read_to_string(path)
            .map_err(|e| Failure::new("handoff drop failed", format!("cannot read {arg}: {e}")))?;
        (t, true)
    } else {
        (arg.to_string(), false)
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        let what = if from_file {
            format!("{arg} is not valid JSON ({e})")
        } else if !arg.trim_start().starts_with('{') {
            format!("--synthesis must be a JSON file or an inline JSON object: {arg} is neither")
        } else {
            format!("--synthesis is not valid JSON ({e})")
        };
        Failure::usage(what)
    })?;
    if !v.is_object() {
        return Err(Failure::usage("--synthesis must be a JSON object"));
    }
    Ok(v)
}

pub async fn run_handoff(ctx: &mut Ctx, a: HandoffArgs) -> Result<(), Failure> {
    let c = ctx.local().await?;
    let path = |id: &str| format!("/api/handoff/{}", encode_component(id));
    match a.cmd {
        HandoffCmd::List { status } => {
            let path = match &status {
                Some(st) => format!("/api/handoff?status={}", encode_component(st)),
                None => "/api/handoff".to_string(),
            };
            let v = c.get(&path).await.or_fail("handoff list")?;
            let rows = |h: &Value| {
                vec![
                    s(h, "id").to_string(),
                    s(h, "status").to_string(),
                    opt(h, "task_count").unwrap_or_else(|| "-".into()),
                    opt(h, "source_session_id").unwrap_or_else(|| "-".into()),
                    opt(h, "claimed_by").unwrap_or_else(|| "-".into()),
                    s(h, "created_at").to_string(),
                ]
            };
            let headers = ["ID", "STATUS", "TASKS", "SOURCE", "CLAIMED BY", "CREATED"];
            list_table(a.json, &v, "No handoffs.", &headers, rows);
        }
        HandoffCmd::Drop(d) => {
            let body = CreateHandoff {
                synthesis: parse_synthesis(&d.synthesis)?,
                source_session_id: d.source.or_else(own_session),
                deliberation_id: d.deliberation,
                auto_execute: d.auto_execute,
            };
            let v = send(&c, "POST", "/api/handoff", &body, "handoff drop").await?;
            output::json_or(a.json, &v, || {
                format!(
                    "Dropped handoff {} ({})",
                    s(&v, "handoff_id"),
                    s(&v, "status")
                )
            });
        }
        HandoffCmd::Claim { id, agent } => {
            let Some(agent) = agent.or_else(own_session) else {
                return Err(Failure::usage(
                    "handoff claim needs --agent ID (or TELEPTY_SESSION_ID)",
                ));
            };
            let body = ClaimHandoff {
                agent_session_id: agent.clone(),
            };
            let claim = format!("{}/claim", path(&id));
            let v = send(&c, "POST", &claim, &body, "handoff claim").await?;
            output::json_or(a.json, &v, || format!("Claimed handoff {id} for {agent}"));
        }
        HandoffCmd::Status {
            id,
            status,
            message,
            result,
        } => {
            let body = PatchStatus {
                status: Some(status),
                message,
                result: result
                    .map(|r| serde_json::from_str::<Value>(&r).unwrap_or(Value::String(r))),
            };
            let v = send(&c, "PATCH", &path(&id), &body, "handoff status").await?;
            output::json_or(a.json, &v, || {
                format!("Handoff {id} is {}", s(&v, "status"))
            });
        }
        HandoffCmd::Get { id } => {
            let v = c.get(&path(&id)).await.or_fail("handoff get")?;
            if a.json {
                output::json(&v);
            } else {
                output::text_block(&handoff_text(&v));
            }
        }
    }
    Ok(())
}

/// A list answer: JSON, a line saying it is empty, or a table with one row per item.
fn list_table(
    json: bool,
    v: &Value,
    empty: &str,
    headers: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if json {
        output::json(v);
    } else if list.is_empty() {
        output::line(empty);
    } else {
        let rows: Vec<Vec<String>> = list.iter().map(row).collect();
        output::text_block(&output::table(headers, &rows));
    }
}

fn handoff_text(h: &Value) -> String {
    let mut out = String::new();
    let field = |k: &str| opt(h, k).unwrap_or_else(|| "-".into());
    out.push_str(&format!("Handoff:     {}\n", field("id")));
    out.push_str(&format!("Status:      {}\n", field("status")));
    out.push_str(&format!("Source:      {}\n", field("source_session_id")));
    out.push_str(&format!("Deliberation: {}\n", field("deliberation_id")));
    out.push_str(&format!("Claimed by:  {}\n", field("claimed_by")));
    out.push_str(&format!("Created:     {}\n", field("created_at")));
    out.push_str(&format!("Updated:     {}\n", field("updated_at")));
    if let Some(p) = h["progress"].as_array().filter(|p| !p.is_empty()) {
        out.push_str("Progress:\n");
        for e in p {
            out.push_str(&format!("  {}  {}\n", s(e, "timestamp"), s(e, "message")));
        }
    }
    if let Some(r) = h.get("result").filter(|r| !r.is_null()) {
        out.push_str(&format!("Result:      {r}\n"));
    }
    out.push_str("Synthesis:\n");
    let pretty = serde_json::to_string_pretty(&h["synthesis"]).unwrap_or_default();
    for l in pretty.lines() {
        out.push_str(&format!("  {l}\n"));
    }
    out
}

// ---------------------------------------------------------------------------- deliberate

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty deliberate --topic 'API shape for v2' --sessions alice,bob --context notes.md\n\
     More:    telepty deliberate status\n         telepty deliberate end <THREAD_ID>",
    args_conflicts_with_subcommands = true
)]
pub struct DeliberateArgs {
    #[command(subcommand)]
    pub cmd: Option<DeliberateCmd>,
    /// What to deliberate; each participant receives it as an inject
    #[arg(long, value_name = "TEXT")]
    pub topic: Option<String>,
    /// Participants: comma-separated session ids, each optionally id@host
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub sessions: Vec<String>,
    /// A file with background material, stored with the thread and shared with local
    /// participants as a context-ref pointer
    #[arg(long, value_name = "FILE")]
    pub context: Option<std::path::PathBuf>,
    /// Orchestrating session [default: $TELEPTY_SESSION_ID]
    #[arg(long, value_name = "ID")]
    pub orchestrator: Option<String>,
    /// Print JSON
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum DeliberateCmd {
    /// Show one thread, or list them
    Status {
        /// Thread id; without it, every thread
        id: Option<String>,
    },
    /// Close a thread
    End {
        /// Thread id
        id: String,
    },
}

pub async fn run_deliberate(ctx: &mut Ctx, a: DeliberateArgs) -> Result<(), Failure> {
    let c = ctx.local().await?;
    let path = |id: &str| format!("/api/threads/{}", encode_component(id));
    match a.cmd {
        Some(DeliberateCmd::Status { id: None }) => {
            let v = c.get("/api/threads").await.or_fail("deliberate status")?;
            let rows = |t: &Value| {
                vec![
                    s(t, "id").to_string(),
                    s(t, "status").to_string(),
                    opt(t, "participant_count").unwrap_or_else(|| "-".into()),
                    opt(t, "message_count").unwrap_or_else(|| "-".into()),
                    output::shorten(s(t, "topic"), 50),
                ]
            };
            let headers = ["ID", "STATUS", "PARTICIPANTS", "MESSAGES", "TOPIC"];
            list_table(a.json, &v, "No deliberations.", &headers, rows);
        }
        Some(DeliberateCmd::Status { id: Some(id) }) => {
            let v = c.get(&path(&id)).await.or_fail("deliberate status")?;
            if a.json {
                output::json(&v);
            } else {
                output::text_block(&thread_text(&v));
            }
        }
        Some(DeliberateCmd::End { id }) => {
            let body = PatchStatus {
                status: Some("closed".into()),
                ..Default::default()
            };
            let v = send(&c, "PATCH", &path(&id), &body, "deliberate end").await?;
            output::json_or(a.json, &v, || format!("Closed deliberation {id}"));
        }
        None => return start_deliberation(ctx, &c, a).await,
    }
    Ok(())
}

fn thread_text(v: &Value) -> String {
    let parts = v["participant_session_ids"].as_array();
    let parts: Vec<&str> = parts.map_or(vec![], |p| p.iter().filter_map(Value::as_str).collect());
    let field = |k: &str| opt(v, k).unwrap_or_else(|| "-".into());
    format!(
        "Thread:       {}\nTopic:        {}\nStatus:       {}\nOrchestrator: {}\nParticipants: {}\nMessages:     {}\nCreated:      {}\nClosed:       {}\n",
        field("id"),
        field("topic"),
        field("status"),
        field("orchestrator_session_id"),
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(", ")
        },
        field("message_count"),
        field("created_at"),
        field("closed_at"),
    )
}

/// A participant of `deliberate` and whether the topic reached it.
#[derive(Serialize)]
struct Invited {
    id: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `deliberate --json`.
#[derive(Serialize)]
struct Deliberation<'a> {
    thread_id: &'a str,
    status: &'a str,
    participants: &'a [Invited],
}

async fn start_deliberation(ctx: &mut Ctx, c: &Client, a: DeliberateArgs) -> Result<(), Failure> {
    let Some(topic) = a
        .topic
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        return Err(Failure::usage(
            "deliberate needs --topic TEXT (or a subcommand: status, end)",
        ));
    };
    let participants: Vec<String> = a
        .sessions
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let context = match &a.context {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                "deliberate failed",
                format!("cannot read {}: {e}", path.display()),
            )
        })?),
        None => None,
    };
    let orchestrator = a.orchestrator.or_else(own_session);
    let body = CreateThread {
        topic: topic.clone(),
        participant_session_ids: participants.clone(),
        orchestrator_session_id: orchestrator.clone(),
        context: context.clone(),
    };
    let v = send(c, "POST", "/api/threads", &body, "deliberate").await?;
    let thread_id = s(&v, "thread_id").to_string();
    if thread_id.is_empty() {
        return Err(Failure::new(
            "deliberate failed",
            format!("the daemon returned no thread_id: {v}"),
        ));
    }

    // The context is shared once as a context-ref file (local participants only).
    let pointer = match context.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => {
            let stored = crate::client::shared_ref::store(&crate::config::Paths::from_env(), text)
                .map_err(|e| Failure::new("deliberate failed", e))?;
            Some(crate::client::shared_ref::pointer_line(&stored.sha))
        }
        None => None,
    };
    let mut results = Vec::new();
    for p in &participants {
        let outcome = async {
            let (pc, target) = ctx.session_target(p, "deliberate").await?;
            let port = ctx.local_port();
            let mut prompt = topic.clone();
            if let Some(ptr) = &pointer
                && (!target.is_remote() || target.is_this_machine())
            {
                prompt.push('\n');
                prompt.push_str(ptr);
            }
            let req = InjectRequest {
                prompt,
                from: orchestrator.as_deref().map(|o| target.sender(o, port)),
                thread_id: Some(thread_id.clone()),
                ..Default::default()
            };
            pc.inject(&target.id, &req, false)
                .await
                .or_fail("deliberate")
        }
        .await;
        let error = outcome.err().map(|f| f.line);
        results.push(Invited {
            id: p.clone(),
            ok: error.is_none(),
            error,
        });
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if a.json {
        output::json(&Deliberation {
            thread_id: &thread_id,
            status: s(&v, "status"),
            participants: &results,
        });
    } else {
        output::line(format!("Opened deliberation {thread_id}"));
        if participants.is_empty() {
            output::line("No participants (pass --sessions a,b to invite sessions).");
        }
        for r in &results {
            match &r.error {
                None => output::line(format!("ok   {}", r.id)),
                Some(e) => output::line(format!(
                    "FAIL {}: {}",
                    r.id,
                    e.trim_start_matches("telepty: ")
                )),
            };
        }
    }
    if failed > 0 {
        return Err(Failure::new(
            "deliberate failed",
            format!(
                "{failed} of {} participants could not be reached",
                participants.len()
            ),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------- status-report

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty status-report --phase testing --task 'run suite' --needs-input   (inside a telepty session)"
)]
pub struct StatusReportArgs {
    /// Current phase (e.g. planning, implementing, testing, done)
    #[arg(long, value_name = "PHASE")]
    pub phase: String,
    /// What is being worked on
    #[arg(long, value_name = "TEXT")]
    pub task: Option<String>,
    /// What blocks progress
    #[arg(long, value_name = "TEXT")]
    pub blocker: Option<String>,
    /// The session waits for a person
    #[arg(long)]
    pub needs_input: bool,
    /// Thread (deliberation) this report belongs to
    #[arg(long, value_name = "ID")]
    pub thread_id: Option<String>,
    /// The reporting session [default: $TELEPTY_SESSION_ID]
    #[arg(long, value_name = "ID", env = "TELEPTY_SESSION_ID")]
    pub session: Option<String>,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

/// The `POST /api/sessions/:id/state` body of a report.
pub(crate) fn state_body(a: &StatusReportArgs) -> StateReport {
    StateReport {
        phase: a.phase.clone(),
        current_task: a.task.clone(),
        blocker: a.blocker.clone(),
        needs_input: a.needs_input,
        thread_id: a.thread_id.clone(),
        source: "self_report".into(),
    }
}

pub async fn run_status_report(ctx: &mut Ctx, a: StatusReportArgs) -> Result<(), Failure> {
    let Some(me) = a.session.clone().filter(|s| !s.trim().is_empty()) else {
        return Err(Failure::new(
            "status-report failed",
            "TELEPTY_SESSION_ID is not set: status-report only works inside a telepty session (or pass --session ID)",
        ));
    };
    let (c, target) = ctx.target(&me).await?;
    let path = format!("/api/sessions/{}/state", encode_component(&target.id));
    let v = send(&c, "POST", &path, &state_body(&a), "status-report").await?;
    output::json_or(a.json, &v, || {
        let sem: Semantic = v
            .get("semantic")
            .and_then(|s| Semantic::deserialize(s).ok())
            .unwrap_or_default();
        let mut line = format!("Reported {} for {}", sem.phase, target.label());
        if let Some(t) = &sem.current_task {
            line.push_str(&format!(": {t}"));
        }
        if sem.needs_input {
            line.push_str(" (needs input)");
        }
        line
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn synthesis_from_inline_json_or_file() {
        let v = parse_synthesis(r#"{"tasks":[1,2]}"#).unwrap();
        assert_eq!(v["tasks"], json!([1, 2]));
        assert_eq!(parse_synthesis("[1]").unwrap_err().code, 2);
        assert_eq!(parse_synthesis("not json").unwrap_err().code, 2);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.json");
        std::fs::write(&f, r#"{"summary":"x"}"#).unwrap();
        let v = parse_synthesis(f.to_str().unwrap()).unwrap();
        assert_eq!(v["summary"], json!("x"));
    }

    #[test]
    fn state_report_body() {
        let a = StatusReportArgs {
            phase: "testing".into(),
            task: Some("suite".into()),
            blocker: None,
            needs_input: true,
            thread_id: None,
            session: Some("w".into()),
            json: false,
        };
        assert_eq!(
            crate::wire::value(&state_body(&a)),
            json!({"phase":"testing","current_task":"suite","needs_input":true,"source":"self_report"})
        );
    }
}
