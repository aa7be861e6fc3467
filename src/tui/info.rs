//! What the dashboard shows about a session besides its screen, read from the session object
//! of API.md §2 — the same JSON whether it comes from `Engine::list()` (embedded) or
//! `GET /api/sessions` (client mode).

use serde::Deserialize;
use serde_json::Value;

use crate::wire::session::SessionView;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    /// `spawned` | `wrapped` | `aterm`
    pub kind: String,
    /// Command and arguments, for the title.
    pub command: String,
    /// The command and its arguments as spawned (a restart runs them again).
    pub argv: Vec<String>,
    pub cwd: String,
    pub cols: u16,
    pub rows: u16,
    /// Machine id of the daemon that owns it.
    pub host: String,
    /// `autoState.state`: running, thinking, idle, stuck, waiting_input.
    pub auto_state: Option<String>,
    /// Self-reported `semantic.needs_input`.
    pub needs_input: bool,
    pub exited: bool,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    /// `healthStatus`: CONNECTED, DISCONNECTED, STALE.
    pub health: String,
    /// `createdAt` (identity across renames, with `pid`).
    pub created_at: String,
    pub pid: Option<u64>,
    /// The peer whose daemon holds it (`None`: this dashboard's own daemon). Its `id` is then
    /// the address a user types, `name@peer`.
    pub peer: Option<String>,
    /// Its peer did not answer the last list: what is shown is the last known state.
    pub host_down: bool,
}

/// The agent-state badge of a pane title; its name is the state's in config.toml's `notify`
/// (and `TELEPTY_STATE` of the hook).
#[derive(Clone, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Badge {
    Working,
    Idle,
    Waiting,
    Stuck,
    /// Exit code / signal; `failed` when the code is non-zero or a signal ended it.
    Exited {
        text: String,
        failed: bool,
    },
    Disconnected,
    /// The session's peer does not answer (the last known screen is shown).
    #[strum(serialize = "host down")]
    HostDown,
    #[strum(serialize = "starting")]
    Unknown,
}

impl Badge {
    pub fn kind(&self) -> &'static str {
        self.into()
    }

    pub fn text(&self) -> String {
        match self {
            Badge::Waiting => "waiting for input".into(),
            Badge::Exited { text, .. } => text.clone(),
            other => other.kind().into(),
        }
    }
}

/// What needs the user, across every session (not only the page on screen): the counts per
/// state and the ids of those waiting for input, in grid order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attention {
    pub working: usize,
    pub waiting: usize,
    pub idle: usize,
    pub stuck: usize,
    pub exited: usize,
    pub waiting_ids: Vec<String>,
}

impl Attention {
    pub fn of<'a>(sessions: impl IntoIterator<Item = &'a SessionInfo>) -> Attention {
        let mut a = Attention::default();
        for s in sessions {
            match s.badge() {
                Badge::Working => a.working += 1,
                Badge::Waiting => {
                    a.waiting += 1;
                    a.waiting_ids.push(s.id.clone());
                }
                Badge::Idle => a.idle += 1,
                Badge::Stuck => a.stuck += 1,
                Badge::Exited { .. } => a.exited += 1,
                Badge::Disconnected | Badge::HostDown | Badge::Unknown => {}
            }
        }
        a
    }
}

/// `f`: which sessions the grid shows, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum StateFilter {
    #[default]
    All,
    Waiting,
    Idle,
    Working,
    Exited,
}

impl StateFilter {
    /// The order `f` steps through.
    pub const ALL: [StateFilter; 5] = [
        StateFilter::All,
        StateFilter::Waiting,
        StateFilter::Idle,
        StateFilter::Working,
        StateFilter::Exited,
    ];

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<StateFilter> {
        s.trim().parse().ok()
    }

    pub fn next(self) -> StateFilter {
        Self::ALL[(self as usize + 1) % Self::ALL.len()]
    }

    pub fn keeps(self, badge: &Badge) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Waiting => *badge == Badge::Waiting,
            StateFilter::Idle => *badge == Badge::Idle,
            StateFilter::Working => *badge == Badge::Working,
            StateFilter::Exited => matches!(badge, Badge::Exited { .. }),
        }
    }
}

impl SessionInfo {
    /// From the engine's own session object (embedded mode): no JSON in between.
    pub fn from_view(v: &SessionView) -> SessionInfo {
        let argv: Vec<String> = std::iter::once(v.command.clone())
            .chain(v.args.iter().cloned())
            .collect();
        SessionInfo {
            id: v.id.clone(),
            kind: v.kind.clone(),
            command: argv.join(" "),
            argv,
            cwd: v.cwd.clone(),
            cols: v.cols,
            rows: v.rows,
            host: v.locator.machine_id.clone(),
            auto_state: v
                .auto_state
                .as_ref()
                .and_then(|a| Some(a["state"].as_str()?.into())),
            needs_input: v
                .semantic
                .as_ref()
                .is_some_and(|s| s["needs_input"] == true),
            exited: v.exited_at.is_some(),
            exit_code: v.exit_code.map(i64::from),
            exit_signal: v.exit_signal.clone(),
            health: v.health_status.clone(),
            created_at: v.created_at.clone().unwrap_or_default(),
            pid: v.pid.map(u64::from),
            peer: None,
            host_down: false,
        }
    }

    /// `GET /api/sessions` (client mode): an entry that is not a session object, or has no
    /// id, is left out rather than failing the whole list.
    pub fn list_from_json(v: &Value) -> Vec<SessionInfo> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| SessionView::deserialize(x).ok())
            .filter(|view| !view.id.is_empty())
            .map(|view| SessionInfo::from_view(&view))
            .collect()
    }

    /// The same list as seen from a peer's daemon: each id becomes `id@peer`.
    pub fn at_peer(list: Vec<SessionInfo>, peer: &str) -> Vec<SessionInfo> {
        list.into_iter()
            .map(|s| SessionInfo {
                id: format!("{}@{peer}", s.id),
                peer: Some(peer.to_string()),
                ..s
            })
            .collect()
    }

    /// The id its own daemon knows it by (without `@peer`).
    pub fn daemon_id(&self) -> &str {
        match &self.peer {
            Some(peer) => self
                .id
                .strip_suffix(peer.as_str())
                .and_then(|s| s.strip_suffix('@'))
                .unwrap_or(&self.id),
            None => &self.id,
        }
    }

    pub fn is_spawned(&self) -> bool {
        self.kind == "spawned"
    }

    /// Running: input and resizes make sense.
    pub fn live(&self) -> bool {
        !self.exited
            && !self.host_down
            && self.health != "STALE"
            && (self.is_spawned() || self.health == "CONNECTED")
    }

    pub fn badge(&self) -> Badge {
        if self.host_down {
            return Badge::HostDown;
        }
        if self.exited {
            let (text, failed) = match (&self.exit_signal, self.exit_code) {
                (Some(sig), _) => (format!("exited {sig}"), true),
                (None, Some(c)) => (format!("exited {c}"), c != 0),
                (None, None) => ("exited".to_string(), false),
            };
            return Badge::Exited { text, failed };
        }
        if !self.is_spawned() && self.health != "CONNECTED" {
            return Badge::Disconnected;
        }
        if self.needs_input {
            return Badge::Waiting;
        }
        use crate::wire::request::AgentState;
        match self.auto_state.as_deref().and_then(AgentState::from_auto) {
            Some(AgentState::Working) => Badge::Working,
            Some(AgentState::Idle) => Badge::Idle,
            Some(AgentState::Waiting) => Badge::Waiting,
            Some(AgentState::Stuck) => Badge::Stuck,
            Some(AgentState::Exited) | None => Badge::Unknown,
        }
    }

    /// Same session across a rename: same creation time, type and pid.
    pub fn same_session(&self, other: &SessionInfo) -> bool {
        !self.created_at.is_empty()
            && self.created_at == other.created_at
            && self.kind == other.kind
            && self.pid == other.pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_session_object() {
        let v = json!({
            "id": "w1", "type": "spawned", "command": "bash", "args": ["-l"],
            "locator": {"machine_id": "box", "session_id": "w1", "project_id": "p"},
            "autoState": {"state": "thinking", "since": "x", "confidence": 0.8},
            "semantic": null, "healthStatus": "CONNECTED", "exitCode": null, "exitSignal": null,
            "exitedAt": null, "createdAt": "2026-01-01T00:00:00.000Z", "pid": 42
        });
        let list = SessionInfo::list_from_json(&json!([v, {"type": "spawned"}, 3]));
        assert_eq!(list.len(), 1, "entries without an id are left out");
        let i = &list[0];
        assert_eq!(i.command, "bash -l");
        assert_eq!(i.host, "box");
        assert_eq!(i.badge(), Badge::Working);
        assert!(i.live());
    }

    #[test]
    fn badges() {
        let mut i = SessionInfo {
            kind: "spawned".into(),
            health: "CONNECTED".into(),
            ..Default::default()
        };
        assert_eq!(i.badge().text(), "starting");
        i.auto_state = Some("idle".into());
        assert_eq!(i.badge(), Badge::Idle);
        i.auto_state = Some("waiting_input".into());
        assert_eq!(i.badge().text(), "waiting for input");
        i.auto_state = Some("idle".into());
        i.needs_input = true;
        assert_eq!(i.badge(), Badge::Waiting);
        i.exited = true;
        i.exit_code = Some(3);
        assert_eq!(
            i.badge(),
            Badge::Exited {
                text: "exited 3".into(),
                failed: true
            }
        );
        i.exit_code = Some(0);
        assert_eq!(
            i.badge(),
            Badge::Exited {
                text: "exited 0".into(),
                failed: false
            }
        );
        i.exit_signal = Some("SIGTERM".into());
        assert_eq!(i.badge().text(), "exited SIGTERM");
        assert!(!i.live());
        let w = SessionInfo {
            kind: "wrapped".into(),
            health: "DISCONNECTED".into(),
            ..Default::default()
        };
        assert_eq!(w.badge(), Badge::Disconnected);
        assert!(!w.live());
    }
}
