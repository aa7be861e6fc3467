//! Bus events as one readable line: the one formatter behind `telepty monitor` and the
//! dashboard's event log. Both read the same typed [`Event`]; they differ only in wording
//! (the monitor names events by their `type`, the log by a short verb).

use serde_json::Value;

use super::event::{Env, Envelope, Event, InjectWrittenDetail, Payload};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `telepty monitor`; `all` also shows the periodic `session_health`.
    Monitor { all: bool },
    /// The dashboard's event log.
    Log,
}

/// Cut to `max` characters with a trailing `…`, and show control characters as escapes.
pub fn shorten(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    cut(out, max)
}

/// One line (control characters as spaces), cut to `max` characters.
fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(one_line, max)
}

pub fn cut(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A field as display text: strings bare, null/missing as `None`, others as JSON.
pub fn opt(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The log shows an unknown value as `?`, the monitor as nothing.
fn or_q(s: &str, log: bool) -> &str {
    if log && s.is_empty() { "?" } else { s }
}

fn sid(e: &Envelope) -> &str {
    e.session_id.as_deref().unwrap_or("")
}

/// `<type> <session>` for the monitor (trailing space trimmed), `<verb> <session>` for the log.
fn named<P: Payload>(e: &Env<P>, verb: &str, log: bool, extra: &str) -> String {
    let name = if log { verb } else { P::TYPE };
    let id = or_q(sid(&e.envelope), log);
    if log || extra.is_empty() {
        format!("{name} {id}").trim_end().to_string()
    } else {
        format!("{name} {id} {extra}").trim_end().to_string()
    }
}

/// One line for a bus event (without the time), or `None` for events not worth one.
pub fn describe(v: &Value, style: Style) -> Option<String> {
    let log = style == Style::Log;
    // Wording per style: (monitor, log).
    let pick = |m: String, l: String| if log { l } else { m };
    let line = match Event::parse(v) {
        Event::SessionSpawn(e) => {
            let (id, cmd) = (or_q(&e.session_id, log), &e.command);
            pick(
                format!("session_spawn {id} ({cmd})"),
                format!("spawn {id} ({cmd})"),
            )
        }
        Event::SessionRegister(e) => {
            let (id, cmd) = (or_q(&e.session_id, log), &e.command);
            pick(
                format!("session_register {id} ({cmd})"),
                format!("register {id} ({cmd})"),
            )
        }
        Event::SessionReplaced(e) => format!(
            "{} {} → {} (alias {})",
            if log { "replaced" } else { "session.replaced" },
            or_q(&e.old_id, log),
            or_q(&e.new_id, log),
            or_q(&e.alias, log)
        ),
        Event::SessionRename(e) => format!(
            "{} {} → {}",
            if log { "rename" } else { "session_rename" },
            or_q(&e.old_id, log),
            or_q(&e.new_id, log)
        ),
        Event::SessionReady(e) => pick(
            format!("session_ready {}", e.session_id)
                .trim_end()
                .to_string(),
            format!("ready {}", or_q(&e.session_id, log)),
        ),
        Event::SessionIdle(e) => pick(
            format!("session.idle {}", e.session_id)
                .trim_end()
                .to_string(),
            format!("idle {} ({}s)", or_q(&e.session_id, log), e.idle_seconds),
        ),
        Event::MessageRouted(e) => format!(
            "{} {} → {}",
            if log { "message" } else { "message_routed" },
            or_q(&e.from, log),
            or_q(&e.to, log)
        ),
        Event::Injection(e) => {
            let target = or_q(&e.target_agent, log);
            if !log {
                format!("injection → {target}: \"{}\"", shorten(&e.content, 80))
            } else if target == "all" {
                let n = e.session_ids.as_ref().map_or(0, Vec::len);
                format!("broadcast → all ({n}): {}", clip(&e.content, 60))
            } else {
                format!("multicast → {target}: {}", clip(&e.content, 60))
            }
        }
        Event::Submit(e) => format!("submit {}", or_q(&e.session_id, log)),
        Event::BusGap(e) => pick(
            format!(
                "bus_gap {} events dropped: this client fell behind",
                e.dropped
            ),
            format!("missed {} events (fell behind)", e.dropped),
        ),
        Event::SessionAutoState(e) => {
            let (from, to) = (&e.payload.auto_state_from, &e.payload.auto_state);
            let id = or_q(sid(&e.envelope), log);
            if log {
                format!("state {id}: {} → {}", or_q(from, log), or_q(to, log))
            } else if from.is_empty() {
                format!("session_auto_state {id} {to}")
            } else {
                format!("session_auto_state {id} {from} → {to}")
            }
        }
        Event::SessionStateReport(e) => {
            let phase = e
                .envelope
                .semantic
                .as_ref()
                .and_then(|s| s.get("phase"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            pick(
                named(&e, "", false, ""),
                format!("report {}: {phase}", or_q(sid(&e.envelope), log)),
            )
        }
        Event::SessionHealth(e) => match style {
            Style::Monitor { all: true } => {
                named(&e, "", false, &e.payload.payload.health.health_status)
            }
            _ => return None,
        },
        Event::SessionDisconnect(e) => {
            named(&e, "disconnect", log, &e.payload.health.health_status)
        }
        Event::SessionReconnect(e) => named(&e, "reconnect", log, &e.payload.health.health_status),
        Event::SessionStale(e) => named(&e, "stale", log, &e.payload.health.health_status),
        Event::SessionCleanup(e) => named(&e, "cleanup", log, &e.payload.health.health_status),
        Event::SessionAdopt(e) => named(&e, "session_adopt", log, ""),
        Event::SessionExit(e) => {
            let id = or_q(sid(&e.envelope), log);
            let (code, signal) = (e.payload.exit_code, e.payload.signal.as_deref());
            if log {
                let how = match (signal, code) {
                    (Some(sig), _) => format!("signal {sig}"),
                    (None, Some(c)) => format!("code {c}"),
                    (None, None) => "unknown status".into(),
                };
                format!("exit {id} with {how}")
            } else {
                match (code, signal) {
                    (Some(code), _) => format!("session_exit {id} code={code}"),
                    (None, Some(sig)) => format!("session_exit {id} signal={sig}"),
                    (None, None) => format!("session_exit {id}"),
                }
            }
        }
        Event::InjectWritten(e) => {
            let target = match (&e.payload.target_agent, sid(&e.envelope)) {
                (t, s) if t.is_empty() && !log => s.to_string(),
                (t, _) => or_q(t, log).to_string(),
            };
            match &e.payload.detail {
                InjectWrittenDetail::Route {
                    source_type,
                    delivered,
                    code,
                    error,
                    ..
                } if !log => {
                    let mut l = format!("inject_written → {target}");
                    if source_type == "bus_auto_route" {
                        l.push_str(" (bus route)");
                        if !delivered {
                            let code = code.as_deref().unwrap_or("");
                            let error = error.as_deref().unwrap_or("");
                            l.push_str(&format!(" FAILED {code} {error}"));
                        }
                    }
                    l
                }
                InjectWrittenDetail::Route { .. } => format!("route → {target}"),
                InjectWrittenDetail::Inject(i) => {
                    let from = i.from.as_deref().filter(|f| log || !f.is_empty());
                    let content = i.content.as_deref();
                    if log {
                        let body = content.map(|c| format!(": {}", clip(c, 60)));
                        let body = body.unwrap_or_default();
                        match from {
                            Some(from) => format!("inject {from} → {target}{body}"),
                            None => format!("inject → {target}{body}"),
                        }
                    } else {
                        let mut l = format!("inject_written → {target}");
                        if let Some(from) = from {
                            l.push_str(&format!(" from {from}"));
                        }
                        if let Some(c) = content {
                            l.push_str(&format!(": \"{}\"", shorten(c, 80)));
                        }
                        l
                    }
                }
            }
        }
        Event::InjectFailed(e) => {
            let p = &e.payload;
            if log {
                format!(
                    "inject failed → {}: {} {}",
                    or_q(&p.target_agent, log),
                    or_q(&p.code, log),
                    or_q(&p.error, log)
                )
            } else {
                let target = if p.target_agent.is_empty() {
                    sid(&e.envelope)
                } else {
                    &p.target_agent
                };
                let mut l = format!("inject_failed → {target}: {} {}", p.code, p.error);
                if let Some(phase) = &p.phase {
                    l.push_str(&format!(" (phase {phase})"));
                }
                l
            }
        }
        Event::MailboxDelivered(e) => match style {
            Style::Log => return None,
            Style::Monitor { .. } => named(&e, "", false, ""),
        },
        Event::MailboxDeliveryFailed(e) => {
            let id = or_q(sid(&e.envelope), log);
            pick(
                format!("mailbox_delivery_failed {id}: {}", e.payload.error),
                format!("delivery failed {id}: {}", or_q(&e.payload.error, log)),
            )
        }
        Event::Other(v) => return other(&v, style),
    };
    Some(line)
}

/// Messages without a typed shape: client messages, handoff and thread events.
fn other(v: &Value, style: Style) -> Option<String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|t| !t.is_empty());
    match style {
        Style::Log => {
            let ty = v
                .get("type")
                .and_then(Value::as_str)
                .or_else(|| v.get("kind").and_then(Value::as_str))?;
            Some(match ty {
                "session_health" | "mailbox_delivered" => return None,
                // The dashboard's own notice (not a bus event): sessions lost in a reboot.
                "telepty_notice" => text("message").unwrap_or("?").to_string(),
                _ => match v.get("session_id").and_then(Value::as_str) {
                    Some(id) => format!("{ty} {id}"),
                    None => ty.to_string(),
                },
            })
        }
        Style::Monitor { all } => {
            let ty = text("type")
                .or_else(|| text("kind"))
                .or_else(|| text("event_type"));
            let Some(ty) = ty else {
                return Some(format!("message {}", shorten(&v.to_string(), 100)));
            };
            if ty == "session_health" && !all {
                return None;
            }
            let mut l = ty.to_string();
            if let Some(id) = ["session_id", "handoff_id", "thread_id"]
                .iter()
                .find_map(|k| opt(v, k).filter(|x| !x.is_empty()))
            {
                l.push(' ');
                l.push_str(&id);
            }
            Some(l)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MON: Style = Style::Monitor { all: false };

    #[test]
    fn both_wordings_of_one_event() {
        let ev = json!({"type": "session_spawn", "session_id": "w1", "command": "bash"});
        assert_eq!(describe(&ev, MON).unwrap(), "session_spawn w1 (bash)");
        assert_eq!(describe(&ev, Style::Log).unwrap(), "spawn w1 (bash)");
        let health = json!({"type": "session_health", "session_id": "w",
                            "payload": {"healthStatus": "CONNECTED"}});
        assert_eq!(describe(&health, MON), None);
        assert_eq!(describe(&health, Style::Log), None);
        assert_eq!(
            describe(&health, Style::Monitor { all: true }).unwrap(),
            "session_health w CONNECTED"
        );
    }

    #[test]
    fn routes_and_failures() {
        let route = json!({"type": "inject_written", "inject_id": "i", "target_agent": "w",
            "source_host": null, "source_type": "bus_auto_route", "turn_id": null,
            "original_message_id": null, "delivered": false, "code": "STALE", "error": "gone"});
        assert_eq!(
            describe(&route, MON).unwrap(),
            "inject_written → w (bus route) FAILED STALE gone"
        );
        assert_eq!(describe(&route, Style::Log).unwrap(), "route → w");
        let failed = json!({"type": "inject_failed", "target_agent": "w", "code": "C",
                            "error": "e", "phase": "text", "source": "inject"});
        assert_eq!(
            describe(&failed, MON).unwrap(),
            "inject_failed → w: C e (phase text)"
        );
        assert_eq!(
            describe(&failed, Style::Log).unwrap(),
            "inject failed → w: C e"
        );
        let turn = json!({"kind": "turn_request", "target": "w"});
        assert_eq!(describe(&turn, MON).unwrap(), "turn_request");
        assert_eq!(describe(&turn, Style::Log).unwrap(), "turn_request");
        assert_eq!(
            describe(&json!({"x": 1}), MON).unwrap(),
            "message {\"x\":1}"
        );
    }
}
