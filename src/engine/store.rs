//! Session metadata on disk (`~/.config/aigentry-telepty/sessions.json`, API.md §14).

use std::path::Path;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::session::{Kind, Session};
use crate::util::{iso, parse_iso, valid_session_id, write_atomic};

pub fn entry(s: &Session, aliases: Vec<String>) -> Value {
    let activity = s.last_activity();
    let m = s.meta();
    json!({
        "id": s.id(),
        "type": s.kind.as_str(),
        "command": m.command,
        "cwd": m.cwd,
        "backend": m.backend,
        "cmuxWorkspaceId": m.cmux_workspace_id,
        "cmuxSurfaceId": m.cmux_surface_id,
        "termProgram": m.term_program,
        "term": m.term,
        "delivery": m.delivery,
        "deliveryEndpoint": m.delivery_endpoint,
        "createdAt": m.created_at.map(iso),
        "lastActivityAt": activity.map(iso),
        "lastConnectedAt": m.last_connected_at.map(iso),
        "lastDisconnectedAt": m.last_disconnected_at.map(iso),
        "lastStateReportAt": m.last_state_report_at.map(iso),
        "stateReport": m.semantic,
        "aliases": aliases,
    })
}

pub fn save(path: &Path, doc: &Map<String, Value>) -> std::io::Result<()> {
    let text =
        serde_json::to_string_pretty(&Value::Object(doc.clone())).unwrap_or_else(|_| "{}".into());
    write_atomic(path, text.as_bytes())
}

/// A wrapped session restored from disk: everything needed to re-create it.
pub struct Restored {
    pub id: String,
    pub command: String,
    pub cwd: String,
    pub backend: String,
    pub term_program: Option<String>,
    pub term: Option<String>,
    pub cmux_workspace_id: Option<String>,
    pub cmux_surface_id: Option<String>,
    pub created_at: Option<SystemTime>,
    pub last_activity_at: Option<SystemTime>,
    pub last_connected_at: Option<SystemTime>,
    pub last_state_report_at: Option<SystemTime>,
    pub semantic: Option<Value>,
    pub aliases: Vec<String>,
}

/// Only `wrapped` entries come back (API.md §14); a corrupt file loads as empty.
pub fn load(path: &Path) -> Vec<Restored> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let t = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).and_then(parse_iso);
    let mut out = Vec::new();
    for (key, v) in &doc {
        let id = s(v, "id").unwrap_or_else(|| key.clone());
        if s(v, "type").as_deref() != Some(Kind::Wrapped.as_str()) || !valid_session_id(&id) {
            continue;
        }
        let aliases = v
            .get("aliases")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|a| valid_session_id(a))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.push(Restored {
            command: s(v, "command").unwrap_or_else(|| "wrapped".into()),
            cwd: s(v, "cwd").unwrap_or_default(),
            backend: s(v, "backend").unwrap_or_else(|| "pty".into()),
            term_program: s(v, "termProgram"),
            term: s(v, "term"),
            cmux_workspace_id: s(v, "cmuxWorkspaceId"),
            cmux_surface_id: s(v, "cmuxSurfaceId"),
            created_at: t(v, "createdAt"),
            last_activity_at: t(v, "lastActivityAt"),
            last_connected_at: t(v, "lastConnectedAt"),
            last_state_report_at: t(v, "lastStateReportAt"),
            semantic: v.get("stateReport").filter(|x| x.is_object()).cloned(),
            aliases,
            id,
        });
    }
    out.sort_by_key(|r| r.created_at);
    out
}
