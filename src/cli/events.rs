//! Bus followers: monitor (readable lines) and listen (JSON lines).

use std::io::IsTerminal;
use std::time::SystemTime;

use clap::Args;
use serde_json::Value;

use super::output::{self, Failure, opt, s, shorten};
use super::{Ctx, examples};
use crate::client::{Bus, Client};

#[derive(Args, Debug)]
#[command(after_help = examples::MONITOR)]
pub struct MonitorArgs {
    /// Also show the periodic session_health events
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
#[command(after_help = examples::LISTEN)]
pub struct ListenArgs {}

async fn open_bus(ctx: &mut Ctx, what: &str) -> Result<(Bus, Client), Failure> {
    let client = ctx.local().await?;
    let bus = Bus::connect(client.addr())
        .await
        .map_err(|e| Failure::client(what, e))?;
    Ok((bus, client))
}

/// `" → <target>"`-style helpers return "" when the field is absent.
fn field_or<'a>(ev: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter()
        .map(|k| s(ev, k))
        .find(|v| !v.is_empty())
        .unwrap_or("")
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", shorten(text, 80))
}

/// One readable line for a bus event (without the time), or `None` to skip it.
pub(crate) fn format_event(ev: &Value, all: bool) -> Option<String> {
    let ty = field_or(ev, &["type", "kind", "event_type"]);
    if ty == "session_health" && !all {
        return None;
    }
    let sid = s(ev, "session_id");
    let line = match ty {
        "inject_written" => {
            let target = field_or(ev, &["target_agent", "session_id"]);
            let mut l = format!("inject_written → {target}");
            if let Some(from) = opt(ev, "from").filter(|f| !f.is_empty()) {
                l.push_str(&format!(" from {from}"));
            }
            if s(ev, "source_type") == "bus_auto_route" {
                l.push_str(" (bus route)");
                if ev.get("delivered").and_then(Value::as_bool) == Some(false) {
                    l.push_str(&format!(" FAILED {} {}", s(ev, "code"), s(ev, "error")));
                }
            }
            if let Some(content) = ev.get("content").and_then(Value::as_str) {
                l.push_str(&format!(": {}", quoted(content)));
            }
            l
        }
        "inject_failed" => {
            let target = field_or(ev, &["target_agent", "session_id"]);
            let mut l = format!(
                "inject_failed → {target}: {} {}",
                s(ev, "code"),
                s(ev, "error")
            );
            if let Some(phase) = opt(ev, "phase") {
                l.push_str(&format!(" (phase {phase})"));
            }
            l
        }
        "injection" => {
            let target = s(ev, "target_agent");
            let content = ev.get("content").and_then(Value::as_str).unwrap_or("");
            format!("injection → {target}: {}", quoted(content))
        }
        "session_spawn" | "session_register" => {
            format!("{ty} {sid} ({})", s(ev, "command"))
        }
        "session_exit" => {
            let mut l = format!("session_exit {sid}");
            match (
                ev.get("exit_code").and_then(Value::as_i64),
                opt(ev, "signal"),
            ) {
                (Some(code), _) => l.push_str(&format!(" code={code}")),
                (None, Some(sig)) => l.push_str(&format!(" signal={sig}")),
                (None, None) => {}
            }
            l
        }
        "session_rename" => format!("session_rename {} → {}", s(ev, "old_id"), s(ev, "new_id")),
        "session.replaced" => format!(
            "session.replaced {} → {} (alias {})",
            s(ev, "old_id"),
            s(ev, "new_id"),
            s(ev, "alias")
        ),
        "session_auto_state" => {
            let from = s(ev, "auto_state_from");
            let to = s(ev, "auto_state");
            if from.is_empty() {
                format!("{ty} {sid} {to}")
            } else {
                format!("{ty} {sid} {from} → {to}")
            }
        }
        "session_disconnect" | "session_reconnect" | "session_stale" | "session_cleanup" => {
            format!("{ty} {sid} {}", s(ev, "healthStatus"))
                .trim_end()
                .to_string()
        }
        "session_health" => {
            let p = ev.get("payload").unwrap_or(&Value::Null);
            format!("{ty} {sid} {}", s(p, "healthStatus"))
                .trim_end()
                .to_string()
        }
        "mailbox_delivery_failed" => format!("{ty} {sid}: {}", s(ev, "error")),
        "message_routed" => format!("{ty} {} → {}", s(ev, "from"), s(ev, "to")),
        "submit" => format!("submit {sid}"),
        "" => format!("message {}", shorten(&ev.to_string(), 100)),
        _ => {
            let mut l = ty.to_string();
            for key in ["session_id", "handoff_id", "thread_id"] {
                if let Some(v) = opt(ev, key).filter(|v| !v.is_empty()) {
                    l.push(' ');
                    l.push_str(&v);
                    break;
                }
            }
            l
        }
    };
    Some(line)
}

fn event_time(ev: &Value) -> SystemTime {
    ev.get("timestamp")
        .and_then(Value::as_str)
        .and_then(crate::util::parse_iso)
        .unwrap_or_else(SystemTime::now)
}

pub async fn monitor(ctx: &mut Ctx, a: MonitorArgs) -> Result<(), Failure> {
    let (mut bus, client) = open_bus(ctx, "monitor").await?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "Watching the telepty bus at {} (Ctrl-C to stop)",
            client.addr().authority()
        );
    }
    loop {
        let ev = match bus.next_event().await {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                return Err(Failure::new(
                    "monitor stopped",
                    "the daemon closed the bus connection",
                ));
            }
            Err(e) => return Err(Failure::new("monitor stopped", e)),
        };
        if let Some(text) = format_event(&ev, a.all)
            && !output::line(format!("{} {text}", output::clock(event_time(&ev))))
        {
            bus.close().await;
            return Ok(());
        }
    }
}

pub async fn listen(ctx: &mut Ctx, _a: ListenArgs) -> Result<(), Failure> {
    let (mut bus, _client) = open_bus(ctx, "listen").await?;
    loop {
        let ev = match bus.next_event().await {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                return Err(Failure::new(
                    "listen stopped",
                    "the daemon closed the bus connection",
                ));
            }
            Err(e) => return Err(Failure::new("listen stopped", e)),
        };
        if !output::line(ev.to_string()) {
            bus.close().await;
            return Ok(());
        }
    }
}
