//! Information: status and version.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Ctx;
use super::output::{self, Failure, OrFail, opt, s, s_or, short_duration};
use super::sessions::state_label;
use crate::client::REQUEST_TIMEOUT;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty status worker-1")]
pub struct StatusArgs {
    /// A session id (or alias), optionally id@host; without it, the daemon's status
    pub target: Option<String>,
    /// Print JSON (`{meta, sessions}` or `{session, state}`)
    #[arg(long)]
    pub json: bool,
}

/// Session counts by health, plus exited processes.
#[derive(Serialize)]
pub(crate) struct Counts {
    pub total: usize,
    /// In order of first appearance.
    pub by_health: Map<String, Value>,
    pub exited: u64,
}

pub(crate) fn session_counts(sessions: &[Value]) -> Counts {
    let mut by_health = Map::new();
    let mut exited = 0u64;
    for sess in sessions {
        let h = s_or(sess, "healthStatus", "UNKNOWN");
        let n = by_health.get(h).and_then(Value::as_u64).unwrap_or(0);
        by_health.insert(h.to_string(), Value::from(n + 1));
        if state_label(sess).starts_with("exited(") {
            exited += 1;
        }
    }
    Counts {
        total: sessions.len(),
        by_health,
        exited,
    }
}

/// `Saved state:` line(s) from the `persistence` block of `/api/health` (absent on daemons
/// that predate it: nothing printed).
pub(crate) fn persistence_text(health: &Value) -> String {
    let Some(p) = health.get("persistence").filter(|p| p.is_object()) else {
        return String::new();
    };
    let mut out = String::new();
    if p.get("ok") == Some(&Value::Bool(false)) {
        let since = opt(p, "since")
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "Saved state: NOT SAVED{since}: {} ({})\n",
            s(p, "error"),
            s(p, "path")
        ));
    } else if let Some(at) = opt(p, "lastSavedAt") {
        out.push_str(&format!("Saved state: ok (last write {at})\n"));
    } else {
        out.push_str("Saved state: ok\n");
    }
    if let Some(w) = opt(p, "warning") {
        out.push_str(&format!("Warning:   {w}\n"));
    }
    let lost = p.get("lostSessions").and_then(Value::as_u64).unwrap_or(0);
    if lost > 0 {
        out.push_str(&format!(
            "Lost:      {lost} session{} (a reboot?): `telepty resurrect --list`\n",
            if lost == 1 { "" } else { "s" }
        ));
    }
    out
}

pub(crate) fn daemon_status_text(meta: &Value, counts: &Counts, authority: &str) -> String {
    let mut out = String::new();
    let implementation = s_or(meta, "implementation", "telepty");
    let mut daemon = format!("{implementation} {}", s(meta, "version"));
    if let Some(pid) = opt(meta, "pid") {
        daemon.push_str(&format!(" (pid {pid})"));
    }
    daemon.push_str(&format!(" at {authority}"));
    out.push_str(&format!("Daemon:    {daemon}\n"));
    let mut machine = s(meta, "machine_id").to_string();
    if let Some(t) = opt(meta, "terminal") {
        machine.push_str(&format!(" (terminal: {t})"));
    }
    if !machine.is_empty() {
        out.push_str(&format!("Machine:   {}\n", machine.trim_start()));
    }
    let mut line = format!("Sessions:  {}", counts.total);
    if let Some(map) = Some(&counts.by_health).filter(|m| !m.is_empty()) {
        let mut keys: Vec<&String> = map.keys().collect();
        let rank = |k: &str| match k {
            "CONNECTED" => 0,
            "DISCONNECTED" => 1,
            "STALE" => 2,
            _ => 3,
        };
        keys.sort_by_key(|k| (rank(k), k.to_string()));
        let parts: Vec<String> = keys
            .iter()
            .map(|k| format!("{} {}", map[k.as_str()], k.to_lowercase()))
            .collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    let exited = counts.exited;
    if exited > 0 {
        line.push_str(&format!(", {exited} exited"));
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Readable `key: value` lines for one session and its `/state` answer.
pub(crate) fn session_status_text(
    sess: &Value,
    state: Option<&Value>,
    home: Option<&str>,
) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    // ` (<prefix><value>)` when the field is there, to follow a main value.
    let paren = |key, prefix| {
        opt(sess, key)
            .map(|v| format!(" ({prefix}{v})"))
            .unwrap_or_default()
    };
    let id = s(sess, "id");
    rows.push((
        "Session",
        format!("{id}{}", paren("alias", "requested as ")),
    ));
    let ty = s(sess, "type");
    rows.push(("Type", format!("{ty}{}", paren("terminal", ""))));
    rows.push(("Command", s(sess, "command").to_string()));
    rows.push(("Cwd", output::tilde(s(sess, "cwd"), home)));
    let health = state_label(sess);
    rows.push(("Health", format!("{health}{}", paren("healthReason", ""))));
    let field = |label, key| opt(sess, key).map(|v| (label, v));
    rows.extend(field("Exited at", "exitedAt"));
    rows.extend(field("PID", "pid"));
    if let (Some(c), Some(r)) = (opt(sess, "cols"), opt(sess, "rows")) {
        rows.push(("Size", format!("{c}x{r}")));
    }
    rows.extend(field("Clients", "active_clients"));
    rows.push((
        "Idle",
        short_duration(sess.get("idleSeconds").and_then(Value::as_u64)),
    ));
    rows.extend(field("Created", "createdAt"));

    let auto = state.map(|st| &st["auto"]).filter(|a| a.is_object());
    if let Some(auto) = auto {
        let mut st = s(auto, "state").to_string();
        let mut extra = Vec::new();
        if let Some(c) = auto.get("confidence").and_then(Value::as_f64) {
            extra.push(format!("confidence {c}"));
        }
        if let Some(ms) = auto.get("duration_ms").and_then(Value::as_u64) {
            extra.push(format!("for {}", short_duration(Some(ms / 1000))));
        }
        if let Some(d) = opt(auto, "detail").filter(|d| !d.is_empty()) {
            extra.push(d);
        }
        if !extra.is_empty() {
            st.push_str(&format!(" ({})", extra.join(", ")));
        }
        rows.push(("State", st));
        if let Some(p) = opt(auto, "last_output_preview").filter(|p| !p.trim().is_empty()) {
            rows.push((
                "Last output",
                format!("\"{}\"", output::shorten(p.trim(), 70)),
            ));
        }
    } else if let Some(a) = sess.get("autoState").filter(|a| a.is_object()) {
        rows.push(("State", s(a, "state").to_string()));
    }
    let semantic = state
        .and_then(|st| st.get("self_report"))
        .filter(|v| v.is_object())
        .or_else(|| sess.get("semantic").filter(|v| v.is_object()));
    if let Some(sem) = semantic {
        let mut parts = Vec::new();
        for (key, label) in [
            ("phase", "phase"),
            ("current_task", "task"),
            ("blocker", "blocker"),
        ] {
            if let Some(v) = opt(sem, key) {
                parts.push(format!("{label}: {v}"));
            }
        }
        if sem.get("needs_input").and_then(Value::as_bool) == Some(true) {
            parts.push("needs input".into());
        }
        if !parts.is_empty() {
            rows.push(("Self-report", parts.join("; ")));
        }
    }
    if let Some(from) = opt(sess, "lastInjectFrom") {
        let to = paren("lastInjectReplyTo", "reply to ");
        rows.push(("Last inject", format!("{from}{to}")));
    }
    if let Some(mb) = sess.get("mailbox").filter(|m| m.is_object()) {
        let n = |k: &str| mb.get(k).and_then(Value::as_u64).unwrap_or(0);
        rows.push((
            "Mailbox",
            format!("{} pending, {} dead-letter", n("pending"), n("dead_letter")),
        ));
    }
    if let Some(aliases) = sess["aliases"].as_array().filter(|a| !a.is_empty()) {
        let list: Vec<&str> = aliases.iter().filter_map(Value::as_str).collect();
        rows.push(("Aliases", list.join(", ")));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (k, v) in rows {
        let key = format!("{k}:");
        out.push_str(format!("{key:<width$}{v}").trim_end());
        out.push('\n');
    }
    out
}

pub async fn status(ctx: &mut Ctx, a: StatusArgs) -> Result<(), Failure> {
    let Some(spec) = a.target else {
        let client = ctx.local().await?;
        let meta = client.meta().await.or_fail("status")?;
        let sessions = client.list_sessions().await.or_fail("status")?;
        let counts = session_counts(sessions.as_array().map(Vec::as_slice).unwrap_or(&[]));
        // Whether session state reaches the disk (additive; older daemons lack it).
        let health = client.health(REQUEST_TIMEOUT).await.unwrap_or(Value::Null);
        let persistence = health.get("persistence").cloned().unwrap_or(Value::Null);
        if a.json {
            output::json(&DaemonStatus {
                meta: &meta,
                sessions: &counts,
                persistence: &persistence,
            });
        } else {
            let mut text = daemon_status_text(&meta, &counts, &client.addr().authority());
            text.push_str(&persistence_text(&health));
            output::text_block(&text);
        }
        return Ok(());
    };
    let (client, target) = ctx.session_target(&spec, "status").await?;
    let sess = client.session(&target.id).await.or_fail("status")?;
    // Use the resolved id so an alias that moves meanwhile still reads the same session.
    let id = s_or(&sess, "id", &target.id).to_string();
    let state = client.session_state(&id).await.ok();
    if a.json {
        output::json(&SessionStatus {
            session: &sess,
            state: state.as_ref(),
        });
    } else {
        let home = std::env::var("HOME").ok();
        output::text_block(&session_status_text(&sess, state.as_ref(), home.as_deref()));
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty version --json")]
pub struct VersionArgs {
    /// Also report the daemon's version (if it answers)
    #[arg(long)]
    pub json: bool,
}

/// `telepty version --json`.
#[derive(Serialize)]
struct Version {
    name: &'static str,
    version: &'static str,
    daemon: Option<Daemon>,
}

#[derive(Serialize)]
struct Daemon {
    address: String,
    version: Value,
    status: Value,
}

/// `telepty status --json` without a session.
#[derive(Serialize)]
struct DaemonStatus<'a> {
    meta: &'a Value,
    sessions: &'a Counts,
    persistence: &'a Value,
}

/// `telepty status ID --json`.
#[derive(Serialize)]
struct SessionStatus<'a> {
    session: &'a Value,
    state: Option<&'a Value>,
}

pub async fn version(ctx: &mut Ctx, a: VersionArgs) -> Result<(), Failure> {
    if !a.json {
        output::line(format!("telepty {VERSION}"));
        return Ok(());
    }
    // Never starts a daemon: only report one that is already there.
    let daemon = match ctx.local_client() {
        Ok(c) => c.health(Duration::from_secs(2)).await.ok().map(|h| Daemon {
            address: c.addr().authority(),
            version: h.get("version").cloned().unwrap_or(Value::Null),
            status: h.get("status").cloned().unwrap_or(Value::Null),
        }),
        Err(_) => None,
    };
    output::json(&Version {
        name: "telepty",
        version: VERSION,
        daemon,
    });
    Ok(())
}
