//! Bus events (API.md §12): what the engine publishes, typed, and the one parser of what
//! arrives on a bus socket (the monitor and the dashboard's event log read it).
//!
//! *Flat* events carry exactly their own fields; *envelope* events carry the [`Envelope`]
//! (`event_type`, `sender`, `session_id`, `timestamp`, `transport`, `semantic`) plus a payload.
//! Everything else on the bus (client-published messages) stays a JSON value: [`Event::Other`].
//!
//! Deserialising is lenient (missing fields take their defaults) because the readers only
//! describe events, and clients may publish partial ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::session::Transport;

/// `sender` of the daemon's own events.
pub const DAEMON: &str = "daemon";

/// The fields every envelope event carries (API.md §12).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    /// Always the event's `type` (set by [`Env::new`]).
    pub event_type: String,
    pub sender: String,
    pub session_id: Option<String>,
    pub timestamp: String,
    /// Null when the session is unknown.
    pub transport: Option<Transport>,
    /// The last self-report (`{phase, …, seq}`), null before any.
    pub semantic: Option<Value>,
}

/// An envelope event: the envelope and the event's own fields, side by side on the wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Env<P> {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(flatten)]
    pub payload: P,
}

/// The payload of an envelope event knows its `type` and its variant of [`Event`].
pub trait Payload: Sized {
    const TYPE: &'static str;
    fn wrap(env: Env<Self>) -> Event;
}

impl<P: Payload> Env<P> {
    pub fn new(mut envelope: Envelope, payload: P) -> Self {
        envelope.event_type = P::TYPE.to_string();
        Env { envelope, payload }
    }
}

/// Declares [`Event`]: flat variants hold their struct, envelope variants an [`Env`] of the
/// payload struct of the same name (whose [`Payload`] impl is generated here, so a variant's
/// `type` is written once).
macro_rules! events {
    (
        flat { $($fv:ident($ft:ty) = $fname:literal,)* }
        envelope { $($ev:ident = $ename:literal,)* }
    ) => {
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum Event {
            $(#[serde(rename = $fname)] $fv($ft),)*
            $(#[serde(rename = $ename)] $ev(Env<$ev>),)*
            /// Anything else: client messages, handoff and thread events, malformed ones.
            #[serde(untagged)]
            Other(Value),
        }
        $(impl Payload for $ev {
            const TYPE: &'static str = $ename;
            fn wrap(env: Env<Self>) -> Event {
                Event::$ev(env)
            }
        })*
    };
}

events! {
    flat {
        SessionSpawn(SessionCreated) = "session_spawn",
        SessionRegister(SessionCreated) = "session_register",
        SessionReplaced(SessionReplaced) = "session.replaced",
        SessionRename(SessionRename) = "session_rename",
        SessionReady(SessionReady) = "session_ready",
        SessionIdle(SessionIdle) = "session.idle",
        MessageRouted(MessageRouted) = "message_routed",
        Injection(Injection) = "injection",
        Submit(Submit) = "submit",
        BusGap(BusGap) = "bus_gap",
    }
    envelope {
        SessionAutoState = "session_auto_state",
        SessionStateReport = "session_state_report",
        SessionHealth = "session_health",
        SessionDisconnect = "session_disconnect",
        SessionReconnect = "session_reconnect",
        SessionStale = "session_stale",
        SessionCleanup = "session_cleanup",
        SessionExit = "session_exit",
        SessionAdopt = "session_adopt",
        InjectWritten = "inject_written",
        InjectFailed = "inject_failed",
        MailboxDelivered = "mailbox_delivered",
        MailboxDeliveryFailed = "mailbox_delivery_failed",
    }
}

impl Event {
    /// An envelope event from its envelope and payload.
    pub fn envelope<P: Payload>(envelope: Envelope, payload: P) -> Event {
        P::wrap(Env::new(envelope, payload))
    }

    /// Read a bus message: a known event when it has the shape of one, else [`Event::Other`].
    pub fn parse(v: &Value) -> Event {
        Event::deserialize(v).unwrap_or_else(|_| Event::Other(v.clone()))
    }

    pub fn to_value(&self) -> Value {
        // Serialising these types cannot fail: string keys, no non-finite floats.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

// ---- flat events

/// `session_spawn` and `session_register`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCreated {
    pub sender: String,
    pub session_id: String,
    pub command: String,
    pub cwd: String,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionReplaced {
    pub sender: String,
    pub old_id: String,
    pub new_id: String,
    pub alias: String,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRename {
    pub sender: String,
    pub old_id: String,
    pub new_id: String,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionReady {
    pub session_id: String,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionIdle {
    pub session_id: String,
    #[serde(rename = "idleSeconds")]
    pub idle_seconds: u64,
    #[serde(rename = "lastActivityAt")]
    pub last_activity_at: Option<String>,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageRouted {
    /// The inject id.
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub reply_to: Option<String>,
    pub inject_id: String,
    pub deliberation_session_id: Option<String>,
    pub thread_id: Option<String>,
    pub timestamp: String,
}

/// Multicast (one per target) and broadcast (`target_agent: "all"` with `session_ids`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Injection {
    /// `"cli"`
    pub sender: String,
    pub target_agent: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ids: Option<Vec<super::response::TargetOk>>,
    pub timestamp: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Submit {
    pub sender: String,
    pub session_id: String,
    pub strategy: String,
    pub attempts: u32,
    pub timestamp: String,
}

/// Sent to one bus client only, in place of the events it fell too far behind to receive
/// (API.md §11.3): the bus never drops an event silently.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BusGap {
    pub sender: String,
    pub dropped: u64,
    pub timestamp: String,
}

// ---- envelope payloads

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionAutoState {
    pub auto_state: String,
    pub auto_state_from: String,
    pub auto_detail: String,
}

/// Only the envelope (`timestamp` = the report's time, `semantic` = the report).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStateReport {}

/// Health fields as the lifecycle events name them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HealthFields {
    pub health_status: String,
    pub health_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionHealth {
    pub payload: HealthPayload,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HealthPayload {
    pub alive: bool,
    pub pid: Option<u32>,
    #[serde(rename = "type")]
    pub kind: String,
    pub clients: usize,
    pub idle_seconds: Option<u64>,
    #[serde(flatten)]
    pub health: HealthFields,
    /// Null while connected.
    pub disconnected_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionDisconnect {
    #[serde(flatten)]
    pub health: HealthFields,
    pub clients: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionReconnect {
    #[serde(flatten)]
    pub health: HealthFields,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SessionStale {
    #[serde(flatten)]
    pub health: HealthFields,
    pub disconnected_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SessionCleanup {
    #[serde(flatten)]
    pub health: HealthFields,
    /// `"STALE_DISCONNECTED"`
    pub reason: String,
    pub disconnected_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionExit {
    pub exit_code: Option<i64>,
    /// A signal name (`"SIGTERM"`).
    pub signal: Option<String>,
}

/// A live holder taken over at start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionAdopt {
    pub pid: u32,
    pub exit_code: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InjectWritten {
    #[serde(default)]
    pub inject_id: String,
    #[serde(default)]
    pub target_agent: String,
    #[serde(flatten)]
    pub detail: InjectWrittenDetail,
}

/// An HTTP inject, or a bus auto-route (which names its `source_type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InjectWrittenDetail {
    Route {
        source_host: Value,
        /// `"bus_auto_route"`
        source_type: String,
        turn_id: Value,
        original_message_id: Value,
        delivered: bool,
        code: Option<String>,
        error: Option<String>,
    },
    Inject(Injected),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Injected {
    pub content: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub thread_id: Option<String>,
    pub reply_expected: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InjectFailed {
    #[serde(default)]
    pub target_agent: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub error: String,
    /// `text` or `submit`: a delivery that failed after it was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `inject`, `multicast`, `broadcast`, `bus_auto_route`, `auto_report`, …
    #[serde(default)]
    pub source: String,
    pub inject_id: Option<String>,
    #[serde(flatten)]
    pub origin: FailedOrigin,
}

/// Who asked: a bus route (turn and message ids) or a sender (`from`, `reply_to`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FailedOrigin {
    Route {
        turn_id: Value,
        original_message_id: Value,
    },
    Sender {
        from: Option<String>,
        reply_to: Option<String>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MailboxDelivered {
    pub msg_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MailboxDeliveryFailed {
    pub msg_id: String,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_events_carry_their_type_twice() {
        let ev = Event::envelope(
            Envelope {
                sender: DAEMON.into(),
                session_id: Some("w".into()),
                timestamp: "t".into(),
                ..Default::default()
            },
            SessionExit {
                exit_code: Some(3),
                signal: None,
            },
        );
        assert_eq!(
            ev.to_value(),
            json!({"type": "session_exit", "event_type": "session_exit", "sender": "daemon",
                   "session_id": "w", "timestamp": "t", "transport": null, "semantic": null,
                   "exit_code": 3, "signal": null})
        );
        assert_eq!(Event::parse(&ev.to_value()), ev);
    }

    #[test]
    fn inject_events_keep_their_two_shapes() {
        let route = json!({"type": "inject_written", "inject_id": "i", "target_agent": "w",
            "source_host": null, "source_type": "bus_auto_route", "turn_id": null,
            "original_message_id": "m", "delivered": false, "code": "STALE", "error": "x"});
        let Event::InjectWritten(e) = Event::parse(&route) else {
            panic!("not parsed")
        };
        assert!(matches!(
            e.payload.detail,
            InjectWrittenDetail::Route { .. }
        ));
        let mut back = Event::InjectWritten(e).to_value();
        back.as_object_mut()
            .unwrap()
            .retain(|k, _| route.get(k).is_some());
        assert_eq!(back, route);

        let failed = Event::envelope(
            Envelope::default(),
            InjectFailed {
                target_agent: "w".into(),
                code: "STALE".into(),
                error: "e".into(),
                phase: None,
                source: "inject".into(),
                inject_id: Some(String::new()),
                origin: FailedOrigin::Sender {
                    from: None,
                    reply_to: None,
                },
            },
        )
        .to_value();
        assert!(failed.get("phase").is_none());
        assert!(failed["from"].is_null() && failed.get("reply_to").is_some());
        assert!(failed.get("turn_id").is_none());
    }

    #[test]
    fn unknown_and_partial_messages() {
        let v = json!({"type": "turn_request", "target": "w"});
        assert_eq!(Event::parse(&v), Event::Other(v.clone()));
        assert_eq!(Event::Other(v.clone()).to_value(), v);
        let partial = json!({"type": "session_exit", "session_id": "w"});
        assert!(matches!(Event::parse(&partial), Event::SessionExit(_)));
    }
}

/// Text an event or a notification carries at most, in bytes. The bus keeps its last 4096
/// events and each viewer's socket queue up to 1024 frames: a 1 MiB prompt copied into each
/// would make them hold gigabytes. Longer text is cut, and says how much was left out.
pub const CONTENT_MAX: usize = 64 * 1024;

/// `text` as an event carries it (see [`CONTENT_MAX`]).
pub fn bounded_content(text: &str) -> String {
    if text.len() <= CONTENT_MAX {
        return text.to_string();
    }
    let mut cut = CONTENT_MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[+{} bytes not shown]", &text[..cut], text.len() - cut)
}

#[cfg(test)]
mod content_tests {
    use super::*;

    #[test]
    fn long_content_is_cut_and_says_so() {
        assert_eq!(bounded_content("hi"), "hi");
        let long = "é".repeat(CONTENT_MAX);
        let cut = bounded_content(&long);
        assert!(cut.len() < CONTENT_MAX + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!("…[+{} bytes not shown]", long.len() - CONTENT_MAX)));
    }
}
