//! Actions on sessions, against the embedded engine (direct calls) or a daemon (HTTP). Each
//! returns the one line the status bar shows.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::info::SessionInfo;
use crate::client::{self, Client, ClientError};
use crate::config::project;
use crate::engine::{self, Engine, EngineError, TargetResult};
use crate::wire::response::{FanOut, Resurrected, Resurrection};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Inject {
        id: String,
        text: String,
    },
    Enter {
        id: String,
    },
    Broadcast {
        text: String,
    },
    Multicast {
        ids: Vec<String>,
        text: String,
    },
    Keys {
        id: String,
        keys: Vec<String>,
    },
    Rename {
        id: String,
        new_id: String,
    },
    Kill {
        id: String,
    },
    Spawn {
        id: String,
        argv: Vec<String>,
        /// `None`: the daemon's directory.
        cwd: Option<String>,
        cols: u16,
        rows: u16,
    },
    /// Restart lost sessions (empty: all of them).
    Resurrect {
        ids: Vec<String>,
    },
    /// Start what a project file lists, as `telepty up` does; `cols`/`rows` for agents the
    /// file gives no size.
    Up {
        file: String,
        cols: u16,
        rows: u16,
    },
}

/// The line shown when the dashboard starts with sessions lost in a reboot.
pub fn lost_notice(n: usize) -> Option<String> {
    match n {
        0 => None,
        1 => Some("1 session lost (a reboot?): :resurrect to restart it".into()),
        n => Some(format!(
            "{n} sessions lost (a reboot?): :resurrect to restart them"
        )),
    }
}

/// `resurrect: 2 started (a, b), 1 failed (x: SESSION_NOT_FOUND)`.
fn resurrect_summary(results: &[Resurrected]) -> Outcome {
    if results.is_empty() {
        return Outcome::ok("resurrect: no lost sessions".into());
    }
    let (ok, failed): (Vec<&Resurrected>, Vec<&Resurrected>) =
        results.iter().partition(|r| r.success);
    let ok: Vec<&str> = ok.iter().map(|r| r.id.as_str()).collect();
    let failed: Vec<String> = failed
        .iter()
        .map(|r| format!("{}: {}", r.id, r.code.as_deref().unwrap_or("FAILED")))
        .collect();
    let mut text = format!("resurrect: {} started", ok.len());
    if !ok.is_empty() {
        text.push_str(&format!(" ({})", ok.join(", ")));
    }
    if !failed.is_empty() {
        text.push_str(&format!(
            ", {} failed ({})",
            failed.len(),
            failed.join(", ")
        ));
    }
    Outcome::new(text, failed.is_empty())
}

/// The result line of an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub text: String,
    pub ok: bool,
    /// A session to focus once it shows up (spawn).
    pub focus: Option<String>,
}

impl Outcome {
    pub(crate) fn new(text: String, ok: bool) -> Outcome {
        Outcome {
            text,
            ok,
            focus: None,
        }
    }
    pub(crate) fn ok(text: String) -> Outcome {
        Outcome::new(text, true)
    }
    pub(crate) fn err(text: String) -> Outcome {
        Outcome::new(text, false)
    }
}

#[derive(Clone)]
pub enum Backend {
    Embedded(Engine),
    Remote(Client),
}

/// `broadcast: 3 ok, 1 failed (w2: DISCONNECTED)`.
pub fn summarize(what: &str, ok: &[String], failed: &[(String, String)]) -> Outcome {
    if ok.is_empty() && failed.is_empty() {
        return Outcome::err(format!("{what}: no sessions"));
    }
    let mut text = format!("{what}: {} ok", ok.len());
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|(id, code)| format!("{id}: {code}"))
            .collect();
        text.push_str(&format!(", {} failed ({})", failed.len(), list.join(", ")));
    }
    Outcome::new(text, failed.is_empty())
}

fn split_results(results: Vec<TargetResult>) -> (Vec<String>, Vec<(String, String)>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            TargetResult::Ok(id) => ok.push(id),
            TargetResult::Failed { id, code, .. } => failed.push((id, code.to_string())),
        }
    }
    (ok, failed)
}

/// Who took a broadcast or multicast, and who did not (id, error code).
pub type Split = (Vec<String>, Vec<(String, String)>);

/// A daemon's broadcast or multicast answer, its ids as `qualify` writes them.
fn split_remote(v: &Value, qualify: &dyn Fn(&str) -> String) -> Split {
    let r = FanOut::deserialize(v).unwrap_or_default().results;
    let ok = r.successful.iter().map(|t| qualify(&t.id)).collect();
    let failed = r
        .failed
        .iter()
        .map(|f| (qualify(&f.id), f.code.clone()))
        .collect();
    (ok, failed)
}

fn engine_err(e: &EngineError) -> String {
    format!("{} ({e})", e.code())
}

pub(super) fn client_err(e: &ClientError) -> String {
    let msg = e.body().and_then(|b| b["error"].as_str());
    match (e.code(), msg.filter(|m| !m.is_empty())) {
        (Some(code), Some(msg)) => format!("{code} ({msg})"),
        (Some(code), None) => code.to_string(),
        (None, _) => e.to_string(),
    }
}

/// How long an inject may take to be delivered before we stop waiting for the answer.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

impl Backend {
    pub fn is_embedded(&self) -> bool {
        matches!(self, Backend::Embedded(_))
    }

    /// The session list, ordered by creation.
    pub async fn list(&self) -> Result<Vec<SessionInfo>, String> {
        match self {
            Backend::Embedded(engine) => {
                Ok(engine.list().iter().map(SessionInfo::from_view).collect())
            }
            Backend::Remote(client) => match client.list_sessions().await {
                Ok(v) => Ok(SessionInfo::list_from_json(&v)),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    pub async fn run(&self, op: Op) -> Outcome {
        match self {
            Backend::Embedded(engine) => run_embedded(engine, op).await,
            Backend::Remote(client) => run_remote(client, op, None).await,
        }
    }

    /// Broadcast (`ids` = `None`) or multicast `text`.
    pub async fn fanout(&self, ids: Option<&[String]>, text: &str) -> Result<Split, String> {
        match self {
            Backend::Embedded(engine) => Ok(split_results(match ids {
                None => engine.broadcast(text),
                Some(ids) => engine.multicast(ids, text),
            })),
            Backend::Remote(client) => fanout_remote(client, ids, text, None).await,
        }
    }
}

/// A broadcast or multicast on a daemon; `peer` qualifies the answer's ids.
pub(super) async fn fanout_remote(
    client: &Client,
    ids: Option<&[String]>,
    text: &str,
    peer: Option<&str>,
) -> Result<Split, String> {
    let answer = match ids {
        None => client.broadcast(text).await,
        Some(ids) => client.multicast(ids, text).await,
    };
    match answer {
        Ok(v) => Ok(split_remote(&v, &|id| qualify(id, peer))),
        Err(e) => Err(client_err(&e)),
    }
}

/// `id`, or `id@peer` for a peer's session.
pub(super) fn qualify(id: &str, peer: Option<&str>) -> String {
    match peer {
        Some(p) => format!("{id}@{p}"),
        None => id.to_string(),
    }
}

/// A fan-out's outcome line.
fn fanout_outcome(what: &str, split: Result<Split, String>) -> Outcome {
    match split {
        Ok((ok, failed)) => summarize(what, &ok, &failed),
        Err(e) => Outcome::err(format!("{what} failed: {e}")),
    }
}

/// `up: 2 started (a, b), 1 running, 1 failed (x: CODE)`.
fn up_summary(started: &[String], running: usize, failed: &[(String, String)]) -> Outcome {
    let mut text = format!("up: {} started", started.len());
    if !started.is_empty() {
        text.push_str(&format!(" ({})", started.join(", ")));
    }
    text.push_str(&format!(", {running} already running"));
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|(id, e)| format!("{id}: {e}")).collect();
        text.push_str(&format!(", {} failed ({})", failed.len(), list.join(", ")));
    }
    Outcome::new(text, failed.is_empty())
}

impl Backend {
    /// `:up [FILE]`: the file read and planned exactly as `telepty up` does (a running
    /// session is left alone, a missing or exited one started), through this dashboard's
    /// engine or daemon.
    async fn up(&self, file: &str, cols: u16, rows: u16) -> Outcome {
        let agents = match project::load(std::path::Path::new(file)) {
            Ok(a) => a,
            Err(e) => return Outcome::err(format!("up: {e}")),
        };
        let sessions = match self.list().await {
            Ok(s) => s,
            Err(e) => return Outcome::err(format!("up: {e}")),
        };
        let (mut started, mut running, mut failed) = (Vec::new(), 0, Vec::new());
        for (agent, argv, cwd) in agents {
            let existing = sessions.iter().find(|s| s.id == agent.id).map(|s| s.exited);
            if project::plan(existing) == project::Plan::LeaveRunning {
                running += 1;
                continue;
            }
            let size = (agent.cols.unwrap_or(cols), agent.rows.unwrap_or(rows));
            match self.spawn_agent(&agent, argv, cwd, size).await {
                Ok(()) => started.push(agent.id),
                Err(e) => failed.push((agent.id, e)),
            }
        }
        up_summary(&started, running, &failed)
    }

    async fn spawn_agent(
        &self,
        agent: &project::Agent,
        argv: Vec<String>,
        cwd: String,
        (cols, rows): (u16, u16),
    ) -> Result<(), String> {
        match self {
            Backend::Embedded(engine) => {
                let spec = engine::SpawnSpec {
                    id: agent.id.clone(),
                    command: argv[0].clone(),
                    args: argv[1..].to_vec(),
                    cwd: Some(cwd),
                    cols,
                    rows,
                    prompt_type: "AGENT".into(),
                    record: agent.record,
                    env: agent.env.clone().into_iter().collect(),
                    profile: agent.profile.clone(),
                };
                let engine = engine.clone();
                // Spawning forks and execs: keep it off the async workers.
                match tokio::task::spawn_blocking(move || engine.spawn(spec)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(engine_err(&e)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Backend::Remote(client) => {
                let req = client::SpawnRequest {
                    session_id: agent.id.clone(),
                    command: argv[0].clone(),
                    args: argv[1..].to_vec(),
                    cwd: Some(cwd),
                    cols: Some(cols),
                    rows: Some(rows),
                    record: agent.record,
                    profile: agent.profile.clone(),
                    env: agent.env.clone(),
                    ..Default::default()
                };
                client
                    .spawn(&req)
                    .await
                    .map(drop)
                    .map_err(|e| client_err(&e))
            }
        }
    }
}

async fn run_embedded(engine: &Engine, op: Op) -> Outcome {
    match op {
        Op::Inject { id, text } => inject_embedded(engine, &id, &text, "inject").await,
        Op::Enter { id } => inject_embedded(engine, &id, "", "enter").await,
        Op::Broadcast { text } => {
            let (ok, failed) = split_results(engine.broadcast(&text));
            summarize("broadcast", &ok, &failed)
        }
        Op::Multicast { ids, text } => {
            let (ok, failed) = split_results(engine.multicast(&ids, &text));
            summarize("multicast", &ok, &failed)
        }
        Op::Keys { id, keys } => match engine.keys(&id, &keys) {
            Ok((sid, n)) => Outcome::ok(format!("keys → {sid}: {n} sent")),
            Err(e) => Outcome::err(format!("keys → {id} failed: {}", engine_err(&e))),
        },
        Op::Rename { id, new_id } => match engine.rename(&id, &new_id) {
            Ok((old, new)) => Outcome::ok(format!("rename {old} → {new}: ok")),
            Err(e) => Outcome::err(format!("rename {id} failed: {}", engine_err(&e))),
        },
        Op::Kill { id } => match engine.delete(&id) {
            Ok(status) => Outcome::ok(format!("kill {id}: {status}")),
            Err(e) => Outcome::err(format!("kill {id} failed: {}", engine_err(&e))),
        },
        Op::Spawn {
            id,
            argv,
            cwd,
            cols,
            rows,
        } => {
            let engine = engine.clone();
            let command = argv.first().cloned().unwrap_or_default();
            let req = engine::SpawnSpec {
                id: id.clone(),
                command: command.clone(),
                args: argv[1.min(argv.len())..].to_vec(),
                cwd,
                cols,
                rows,
                prompt_type: "AGENT".into(),
                record: false,
                env: Vec::new(),
                profile: None,
            };
            // Spawning forks and execs: keep it off the async workers.
            match tokio::task::spawn_blocking(move || engine.spawn(req)).await {
                Ok(Ok(_)) => Outcome {
                    text: format!("spawn {id}: started ({})", argv.join(" ")),
                    ok: true,
                    focus: Some(id),
                },
                Ok(Err(e)) => Outcome::err(format!("spawn {id} failed: {}", engine_err(&e))),
                Err(e) => Outcome::err(format!("spawn {id} failed: {e}")),
            }
        }
        Op::Resurrect { ids } => {
            let e = engine.clone();
            // Each one is a spawn: fork/exec off the async workers.
            match tokio::task::spawn_blocking(move || e.resurrect(&ids)).await {
                Ok(outcomes) => {
                    let results: Vec<Resurrected> = outcomes.iter().map(|o| o.to_wire()).collect();
                    let mut out = resurrect_summary(&results);
                    if let Err(e) = engine.sync_store().await {
                        out = Outcome::err(format!("{}; {}", out.text, engine_err(&e)));
                    }
                    out
                }
                Err(e) => Outcome::err(format!("resurrect failed: {e}")),
            }
        }
        Op::Up { file, cols, rows } => {
            let backend = Backend::Embedded(engine.clone());
            backend.up(&file, cols, rows).await
        }
    }
}

async fn inject_embedded(engine: &Engine, id: &str, text: &str, what: &str) -> Outcome {
    let req = crate::wire::request::InjectRequest {
        prompt: text.to_string(),
        ..Default::default()
    };
    match engine.inject(id, req) {
        Err(e) => Outcome::err(format!("{what} → {id} failed: {}", engine_err(&e))),
        Ok(out) => match tokio::time::timeout(DELIVERY_WAIT, out.done).await {
            Ok(Ok(Ok(_))) => Outcome::ok(format!("{what} → {}: delivered", out.session_id)),
            Ok(Ok(Err(e))) => Outcome::err(format!(
                "{what} → {} failed: {}",
                out.session_id,
                engine_err(&e)
            )),
            Ok(Err(_)) => Outcome::err(format!(
                "{what} → {}: dropped (session closed)",
                out.session_id
            )),
            Err(_) => Outcome::ok(format!("{what} → {}: still queued", out.session_id)),
        },
    }
}

/// `op` on a daemon over HTTP; `peer` names it in the outcome (`id@peer`).
pub(super) async fn run_remote(client: &Client, op: Op, peer: Option<&str>) -> Outcome {
    let at = |id: &str| qualify(id, peer);
    match op {
        Op::Inject { id, text } => inject_remote(client, &id, &text, "inject", &at(&id)).await,
        Op::Enter { id } => inject_remote(client, &id, "", "enter", &at(&id)).await,
        Op::Broadcast { text } => {
            fanout_outcome("broadcast", fanout_remote(client, None, &text, peer).await)
        }
        Op::Multicast { ids, text } => fanout_outcome(
            "multicast",
            fanout_remote(client, Some(&ids), &text, peer).await,
        ),
        Op::Keys { id, keys } => match client.keys(&id, &keys).await {
            Ok(v) => Outcome::ok(format!(
                "keys → {}: {} sent",
                at(&id),
                v.get("count")
                    .and_then(Value::as_u64)
                    .unwrap_or(keys.len() as u64)
            )),
            Err(e) => Outcome::err(format!("keys → {} failed: {}", at(&id), client_err(&e))),
        },
        Op::Rename { id, new_id } => match client.rename(&id, &new_id).await {
            Ok(_) => Outcome::ok(format!("rename {} → {}: ok", at(&id), at(&new_id))),
            Err(e) => Outcome::err(format!("rename {} failed: {}", at(&id), client_err(&e))),
        },
        Op::Kill { id } => match client.delete_session(&id).await {
            Ok(v) => Outcome::ok(format!(
                "kill {}: {}",
                at(&id),
                v.get("status").and_then(Value::as_str).unwrap_or("closing")
            )),
            Err(e) => Outcome::err(format!("kill {} failed: {}", at(&id), client_err(&e))),
        },
        Op::Spawn {
            id,
            argv,
            cwd,
            cols,
            rows,
        } => {
            let req = client::SpawnRequest {
                session_id: id.clone(),
                command: argv.first().cloned().unwrap_or_default(),
                args: argv[1.min(argv.len())..].to_vec(),
                cwd,
                cols: Some(cols),
                rows: Some(rows),
                ..Default::default()
            };
            match client.spawn(&req).await {
                Ok(_) => Outcome {
                    text: format!("spawn {}: started ({})", at(&id), argv.join(" ")),
                    ok: true,
                    focus: Some(at(&id)),
                },
                Err(e) => Outcome::err(format!("spawn {} failed: {}", at(&id), client_err(&e))),
            }
        }
        // Without ids: every lost session; none lost is an empty result list.
        Op::Resurrect { ids } => match client.resurrect(&ids, false).await {
            Ok(v) => resurrect_summary(&Resurrection::deserialize(&v).unwrap_or_default().results),
            Err(e) => Outcome::err(format!("resurrect failed: {}", client_err(&e))),
        },
        Op::Up { file, cols, rows } => {
            let backend = Backend::Remote(client.clone());
            backend.up(&file, cols, rows).await
        }
    }
}

/// A keyed inject: a lost answer is asked again with the same key, which the daemon answers
/// without typing twice; no answer twice is said as "outcome unknown", never as a failure.
async fn inject_remote(client: &Client, id: &str, text: &str, what: &str, at: &str) -> Outcome {
    let req = client::InjectRequest {
        prompt: text.to_string(),
        inject_id: Some(uuid::Uuid::new_v4().to_string()),
        ..Default::default()
    };
    let lost = |r: &Result<Value, ClientError>| {
        matches!(
            r,
            Err(ClientError::Timeout { .. } | ClientError::BadResponse { .. })
        )
    };
    let mut sent = client.inject(id, &req, true).await;
    if lost(&sent) {
        sent = client.inject(id, &req, true).await;
    }
    let unknown = lost(&sent);
    match sent {
        Ok(_) => Outcome::ok(format!("{what} → {at}: delivered")),
        Err(e) if e.code() == Some("TIMEOUT") => {
            Outcome::ok(format!("{what} → {at}: still queued"))
        }
        Err(e) if unknown => Outcome::err(format!(
            "{what} → {at}: outcome unknown ({e}); it may have been delivered"
        )),
        Err(e) => Outcome::err(format!("{what} → {at} failed: {}", client_err(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lost_notice_and_resurrect_summary() {
        assert_eq!(lost_notice(0), None);
        assert_eq!(
            lost_notice(2).unwrap(),
            "2 sessions lost (a reboot?): :resurrect to restart them"
        );
        assert!(lost_notice(1).unwrap().starts_with("1 session lost"));
        let s = resurrect_summary(&[
            Resurrected {
                id: "a".into(),
                success: true,
                ..Default::default()
            },
            Resurrected {
                id: "x".into(),
                code: Some("SESSION_NOT_FOUND".into()),
                ..Default::default()
            },
        ]);
        assert_eq!(
            s.text,
            "resurrect: 1 started (a), 1 failed (x: SESSION_NOT_FOUND)"
        );
        assert!(!s.ok);
        assert!(resurrect_summary(&[]).ok);
    }

    #[test]
    fn up_summaries() {
        let s = up_summary(&["a".into(), "b".into()], 1, &[]);
        assert_eq!(
            (s.text.as_str(), s.ok),
            ("up: 2 started (a, b), 1 already running", true)
        );
        let s = up_summary(&[], 0, &[("x".into(), "INVALID_CWD".into())]);
        assert_eq!(
            s.text,
            "up: 0 started, 0 already running, 1 failed (x: INVALID_CWD)"
        );
        assert!(!s.ok);
    }

    #[test]
    fn summaries() {
        let s = summarize(
            "broadcast",
            &["a".into(), "b".into(), "c".into()],
            &[("w2".into(), "DISCONNECTED".into())],
        );
        assert_eq!(s.text, "broadcast: 3 ok, 1 failed (w2: DISCONNECTED)");
        assert!(!s.ok);
        assert_eq!(
            summarize("multicast", &["a".into()], &[]).text,
            "multicast: 1 ok"
        );
        assert!(!summarize("broadcast", &[], &[]).ok);
        let v = json!({"success": true, "results": {"successful": [{"id": "a", "strategy": "mailbox"}], "failed": [{"id": "x", "code": "SESSION_NOT_FOUND", "error": "Session not found"}]}});
        let split = split_remote(&v, &|id| qualify(id, Some("hostB")));
        assert_eq!(
            fanout_outcome("multicast", Ok(split)).text,
            "multicast: 1 ok, 1 failed (x@hostB: SESSION_NOT_FOUND)"
        );
    }
}
