//! Session metadata on disk (`~/.config/aigentry-telepty/sessions.json`, API.md §14).
//!
//! One owner writes it (`persist.rs`); this module is the format: what an entry holds, how the
//! file is written (durably, `util::write_atomic`) and read back. Wrapped entries are restored
//! as disconnected sessions; spawned entries that are not live when the engine starts are
//! *lost* sessions (`telepty resurrect`), kept in the file until resurrected or forgotten.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use super::session::{Kind, Meta, Session};
use crate::util::{iso, parse_iso, valid_session_id, write_atomic};
use crate::wire::response::LostSession;

/// One session of the file (API.md §14).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    command: String,
    cwd: String,
    backend: String,
    cmux_workspace_id: Option<String>,
    cmux_surface_id: Option<String>,
    term_program: Option<String>,
    term: Option<String>,
    delivery: Option<Value>,
    delivery_endpoint: Option<String>,
    created_at: Option<String>,
    last_activity_at: Option<String>,
    last_connected_at: Option<String>,
    last_disconnected_at: Option<String>,
    last_state_report_at: Option<String>,
    state_report: Option<Value>,
    aliases: Vec<String>,
    /// Spawned: what resurrection needs to start it again (issue 10, item 7).
    #[serde(flatten)]
    spawned: Option<SpawnedFields>,
}

#[derive(Serialize)]
struct SpawnedFields {
    args: Vec<String>,
    cols: u16,
    rows: u16,
    env: Map<String, Value>,
    #[serde(flatten)]
    exit: Option<ExitFields>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExitFields {
    exit_code: Option<i32>,
    exit_signal: Option<String>,
    exited_at: String,
}

fn env_map(env: &[(String, String)]) -> Map<String, Value> {
    env.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

pub fn entry(s: &Session, aliases: Vec<String>) -> Value {
    let activity = s.last_activity();
    let (rows, cols) = s.term.size();
    let m = s.meta();
    let spawned = (s.kind == Kind::Spawned).then(|| SpawnedFields {
        args: m.args.clone(),
        cols,
        rows,
        env: env_map(&m.env),
        exit: m.exit.as_ref().map(|e| ExitFields {
            exit_code: e.code,
            exit_signal: e.signal.clone(),
            exited_at: iso(e.at),
        }),
    });
    let e = Entry {
        id: s.id(),
        kind: s.kind.as_str(),
        command: m.command.clone(),
        cwd: m.cwd.clone(),
        backend: m.backend.clone(),
        cmux_workspace_id: m.cmux_workspace_id.clone(),
        cmux_surface_id: m.cmux_surface_id.clone(),
        term_program: m.term_program.clone(),
        term: m.term.clone(),
        delivery: m.delivery.clone(),
        delivery_endpoint: m.delivery_endpoint.clone(),
        created_at: m.created_at.map(iso),
        last_activity_at: activity.map(iso),
        last_connected_at: m.last_connected_at.map(iso),
        last_disconnected_at: m.last_disconnected_at.map(iso),
        last_state_report_at: m.last_state_report_at.map(iso),
        state_report: m.semantic.clone(),
        aliases,
        spawned,
    };
    serde_json::to_value(e).unwrap_or(Value::Null)
}

pub fn save(path: &Path, doc: &Map<String, Value>) -> std::io::Result<()> {
    let text =
        serde_json::to_string_pretty(&Value::Object(doc.clone())).unwrap_or_else(|_| "{}".into());
    write_atomic(path, text.as_bytes())
}

/// A wrapped session restored from disk: its metadata as saved (an empty `cwd` when none
/// was) and its aliases.
pub struct Restored {
    pub id: String,
    pub meta: Meta,
    pub aliases: Vec<String>,
}

/// A spawned session found in the file: live (adopted) or lost, the engine decides.
#[derive(Clone, Debug)]
pub struct SpawnedEntry {
    pub id: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub cols: u16,
    pub rows: u16,
    /// The allowlisted environment it ran with (`[resurrect] env`).
    pub env: Vec<(String, String)>,
    pub created_at: Option<SystemTime>,
    pub last_activity_at: Option<SystemTime>,
    /// It had exited before the engine went away: nothing to resurrect.
    pub exited: bool,
    /// The entry as read, written back unchanged while the session stays lost.
    pub raw: Value,
}

impl SpawnedEntry {
    /// The `GET /api/sessions/lost` item (without the resume arguments, which the engine adds).
    pub fn view(&self) -> LostSession {
        LostSession {
            id: self.id.clone(),
            kind: Kind::Spawned.as_str().into(),
            command: self.command.clone(),
            args: self.args.clone(),
            cwd: self.cwd.clone(),
            cols: self.cols,
            rows: self.rows,
            env: env_map(&self.env),
            created_at: self.created_at.map(iso),
            last_activity_at: self.last_activity_at.map(iso),
            ..Default::default()
        }
    }
}

/// The file moved aside because it could not be loaded (not JSON, not an object, unreadable).
#[derive(Clone, Debug)]
pub struct Corrupt {
    pub moved_to: Option<PathBuf>,
    pub error: String,
    pub at: SystemTime,
}

impl Corrupt {
    /// One line for the log, `/api/health` and `telepty status`.
    pub fn message(&self, path: &Path) -> String {
        let moved = match &self.moved_to {
            Some(to) => format!("; moved aside to {}", to.display()),
            None => " nor moved aside".into(),
        };
        format!(
            "{} could not be loaded ({}){moved}; no saved sessions were restored from it",
            path.display(),
            self.error
        )
    }
}

#[derive(Default)]
pub struct Loaded {
    pub wrapped: Vec<Restored>,
    pub spawned: Vec<SpawnedEntry>,
    pub corrupt: Option<Corrupt>,
}

/// Read the file. A missing file is empty. A file that is not a JSON object (or cannot be
/// read) is moved aside
/// (`sessions.json.corrupt-<UTC timestamp>`) and reported, never silently reset. Entries with
/// invalid ids are skipped.
pub fn load(path: &Path) -> Loaded {
    let mut out = Loaded::default();
    let bytes = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            // Moved aside like a corrupt file: the next write would otherwise replace it.
            out.corrupt = Some(move_aside(path, format!("cannot read it: {e}")));
            return out;
        }
    };
    let doc = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(doc)) => doc,
        other => {
            let why = other.map_or_else(|e| e.to_string(), |_| "not a JSON object".into());
            out.corrupt = Some(move_aside(path, why));
            return out;
        }
    };
    for (key, v) in &doc {
        let id = text(v, "id").unwrap_or_else(|| key.clone());
        if !valid_session_id(&id) {
            continue;
        }
        let ty = text(v, "type");
        if ty.as_deref() == Some(Kind::Spawned.as_str()) {
            if let Some(e) = spawned_entry(id, v) {
                out.spawned.push(e);
            }
            continue;
        }
        if ty.as_deref() != Some(Kind::Wrapped.as_str()) {
            continue;
        }
        let mut aliases = strings(v, "aliases");
        aliases.retain(|a| valid_session_id(a));
        let meta = Meta {
            command: text(v, "command").unwrap_or_else(|| "wrapped".into()),
            cwd: text(v, "cwd").unwrap_or_default(),
            backend: text(v, "backend").unwrap_or_else(|| "pty".into()),
            term_program: text(v, "termProgram"),
            term: text(v, "term"),
            cmux_workspace_id: text(v, "cmuxWorkspaceId"),
            cmux_surface_id: text(v, "cmuxSurfaceId"),
            created_at: time(v, "createdAt"),
            last_activity_at: time(v, "lastActivityAt"),
            last_connected_at: time(v, "lastConnectedAt"),
            last_state_report_at: time(v, "lastStateReportAt"),
            semantic: v.get("stateReport").filter(|x| x.is_object()).cloned(),
            ..Default::default()
        };
        out.wrapped.push(Restored { id, meta, aliases });
    }
    out.wrapped.sort_by_key(|r| r.meta.created_at);
    out.spawned.sort_by_key(|r| r.created_at);
    out
}

/// A string field of an entry (anything else counts as absent).
fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// A list of strings (other items are skipped; anything but a list counts as empty).
fn strings(v: &Value, k: &str) -> Vec<String> {
    let items = v.get(k).and_then(Value::as_array).into_iter().flatten();
    items
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A timestamp field of an entry.
fn time(v: &Value, k: &str) -> Option<SystemTime> {
    v.get(k).and_then(Value::as_str).and_then(parse_iso)
}

fn spawned_entry(id: String, v: &Value) -> Option<SpawnedEntry> {
    let command = text(v, "command").filter(|c| !c.trim().is_empty())?;
    let dim = |k: &str, d: u16| {
        v.get(k)
            .and_then(Value::as_u64)
            .filter(|n| (1..=1000).contains(n))
            .map_or(d, |n| n as u16)
    };
    let env = v
        .get("env")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Some(SpawnedEntry {
        command,
        args: strings(v, "args"),
        cwd: text(v, "cwd").unwrap_or_default(),
        cols: dim("cols", 80),
        rows: dim("rows", 30),
        env,
        created_at: time(v, "createdAt"),
        last_activity_at: time(v, "lastActivityAt"),
        exited: v.get("exitedAt").is_some_and(|x| !x.is_null()),
        raw: v.clone(),
        id,
    })
}

/// Rename a corrupt file out of the way, keeping it for inspection.
fn move_aside(path: &Path, error: String) -> Corrupt {
    let at = SystemTime::now();
    // 2026-04-08T12:34:56.789Z -> 20260408T123456.789Z: no colons in file names.
    let stamp: String = iso(at)
        .chars()
        .filter(|c| !matches!(c, ':' | '-'))
        .collect();
    let mut to = path.with_file_name(format!(
        "{}.corrupt-{stamp}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    if to.exists() {
        to = to.with_extension(format!("{}", std::process::id()));
    }
    let moved = std::fs::rename(path, &to);
    let moved = moved.inspect_err(|e| tracing::error!("cannot move {} aside: {e}", path.display()));
    let moved_to = moved.ok().map(|()| to);
    let c = Corrupt {
        moved_to,
        error,
        at,
    };
    tracing::error!("{}", c.message(path));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_corrupt_file_is_moved_aside_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        std::fs::write(&path, "{\"a\": {\"id\": \"a\", \"type\": \"wra").unwrap();
        let l = load(&path);
        let c = l.corrupt.expect("reported as corrupt");
        let to = c.moved_to.clone().expect("moved aside");
        assert!(!path.exists());
        assert!(
            to.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sessions.json.corrupt-"),
            "{}",
            to.display()
        );
        assert_eq!(
            std::fs::read_to_string(&to).unwrap(),
            "{\"a\": {\"id\": \"a\", \"type\": \"wra"
        );
        let msg = c.message(&path);
        assert!(msg.contains("could not be loaded"), "{msg}");
        assert!(msg.contains(&to.display().to_string()), "{msg}");
        // A JSON value that is not an object is corrupt too.
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(load(&path).corrupt.is_some());
        // Missing: empty, nothing reported.
        let l = load(&path);
        assert!(l.corrupt.is_none() && l.wrapped.is_empty() && l.spawned.is_empty());
    }

    #[test]
    fn spawned_entries_round_trip_what_resurrection_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let doc = json!({
            "w1": {"id": "w1", "type": "wrapped", "command": "claude", "cwd": "/tmp", "aliases": ["w0", "bad id"]},
            "s1": {"id": "s1", "type": "spawned", "command": "claude", "args": ["--model", "x"],
                   "cwd": "/srv", "cols": 120, "rows": 40, "env": {"LANG": "C.UTF-8"},
                   "createdAt": "2026-01-01T00:00:00.000Z"},
            "s2": {"id": "s2", "type": "spawned", "command": "bash", "cols": 5000,
                   "exitedAt": "2026-01-01T00:00:00.000Z"},
            "s3": {"id": "s3", "type": "spawned"},
            "a1": {"id": "a1", "type": "aterm", "command": "x"},
            "../x": {"id": "../x", "type": "spawned", "command": "sh"},
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        let l = load(&path);
        assert_eq!(l.wrapped.len(), 1);
        assert_eq!(l.wrapped[0].aliases, vec!["w0".to_string()]);
        let ids: Vec<&str> = l.spawned.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        let s1 = l.spawned.iter().find(|e| e.id == "s1").unwrap();
        assert_eq!(s1.args, ["--model", "x"]);
        assert_eq!((s1.cols, s1.rows), (120, 40));
        assert_eq!(s1.env, vec![("LANG".to_string(), "C.UTF-8".to_string())]);
        assert!(!s1.exited);
        assert_eq!(s1.raw, doc["s1"]);
        let s2 = l.spawned.iter().find(|e| e.id == "s2").unwrap();
        assert!(s2.exited);
        assert_eq!((s2.cols, s2.rows), (80, 30), "out-of-range size falls back");
    }
}
