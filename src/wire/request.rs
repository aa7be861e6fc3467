//! Request bodies of the session routes (API.md §4–§7, §17). The client serialises these
//! types; the API reads bodies into them with `parse`, which validates the way the routes
//! always have (strings for numbers where the contract allows them, the exact 400 messages),
//! so the two sides agree by construction.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema::MAX_COUNT;

/// A body the route refuses (400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// `INVALID_REQUEST`
    #[error("{0}")]
    Invalid(String),
    /// `INVALID_PATTERN`
    #[error("{0}")]
    Pattern(String),
}

fn invalid(msg: impl Into<String>) -> BadRequest {
    BadRequest::Invalid(msg.into())
}

/// Field access over a JSON object body, as loose as the original daemon was.
pub trait Fields {
    fn str_field(&self, key: &str) -> Option<String>;
    /// A string that is not empty.
    fn text_field(&self, key: &str) -> Option<String>;
    /// Integer, or a string holding one (spawn's cols/rows).
    fn int_field(&self, key: &str) -> Option<Result<i64, ()>>;
    /// An optional array of strings (absent or null: empty).
    fn strings(&self, key: &str, msg: &str) -> Result<Vec<String>, BadRequest>;
    /// An optional boolean (absent or null: none); any other type is refused.
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, BadRequest> {
        match self.field(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!("{key} must be a boolean"))),
        }
    }
    /// [`Fields::opt_bool`], with none as false.
    fn flag(&self, key: &str) -> Result<bool, BadRequest> {
        Ok(self.opt_bool(key)?.unwrap_or(false))
    }
    /// An optional string (absent or null: none); any other type is refused.
    fn opt_str(&self, key: &str) -> Result<Option<String>, BadRequest> {
        match self.field(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{key} must be a string"))),
        }
    }
    /// [`Fields::opt_str`], with an empty string as none.
    fn opt_text(&self, key: &str) -> Result<Option<String>, BadRequest> {
        Ok(self.opt_str(key)?.filter(|s| !s.is_empty()))
    }
    fn field(&self, key: &str) -> Option<&Value>;
}

impl Fields for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
    fn str_field(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_str).map(str::to_string)
    }
    fn text_field(&self, key: &str) -> Option<String> {
        self.str_field(key).filter(|s| !s.is_empty())
    }
    fn int_field(&self, key: &str) -> Option<Result<i64, ()>> {
        match self.get(key)? {
            Value::Null => None,
            // JSON does not tell 3 from 3.0.
            Value::Number(n) => Some(
                n.as_i64()
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_COUNT as f64)
                            .map(|f| f as i64)
                    })
                    .ok_or(()),
            ),
            Value::String(s) => Some(s.trim().parse::<i64>().map_err(|_| ())),
            _ => Some(Err(())),
        }
    }
    fn strings(&self, key: &str, msg: &str) -> Result<Vec<String>, BadRequest> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or_else(|| invalid(msg)))
                .collect(),
            Some(_) => Err(invalid(msg)),
        }
    }
}

/// A terminal dimension: 1–1000, as a number or a string holding one.
pub fn dimension(b: &Value, key: &str) -> Result<Option<u16>, BadRequest> {
    match b.int_field(key) {
        None => Ok(None),
        Some(Ok(n)) if (1..=1000).contains(&n) => Ok(Some(n as u16)),
        _ => Err(invalid(format!(
            "{key} must be an integer between 1 and 1000"
        ))),
    }
}

/// `POST /api/sessions/spawn`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpawnRequest {
    #[schema(pattern = r"^(?!\.$|multicast$|broadcast$)(?!.*\.\.)[A-Za-z0-9._-]{1,128}$")]
    pub session_id: String,
    /// A program on the daemon's PATH (else 400 `SPAWN_FAILED`).
    #[schema(pattern = r"\S")]
    pub command: String,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub args: Vec<String>,
    /// An absolute path to an existing directory; default: the daemon's.
    pub cwd: Option<String>,
    #[schema(schema_with = super::schema::dimension)]
    pub cols: Option<u16>,
    #[schema(schema_with = super::schema::dimension)]
    pub rows: Option<u16>,
    /// `AGENT` (default) or `USER`, in any case.
    #[serde(rename = "type")]
    #[schema(pattern = "^([Aa][Gg][Ee][Nn][Tt]|[Uu][Ss][Ee][Rr])$")]
    pub kind: Option<String>,
    /// Extension: an asciicast recording.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub record: bool,
    /// Extension (read by the route): how viewers' sizes pick this session's size; null:
    /// the configured default.
    #[schema(pattern = "^(smallest|largest|latest|manual)$")]
    pub window_size: Option<String>,
    /// Extension: the agent profile to use (`claude`, `codex`, `gemini`, `shell`, `python`,
    /// `generic`, or one of the user's); absent: chosen by the command.
    #[schema(min_length = 1)]
    pub profile: Option<String>,
    /// Extension: variables for the program, over the daemon's own environment.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    #[schema(schema_with = super::schema::env)]
    pub env: std::collections::BTreeMap<String, String>,
}

/// Bounds of a spawn's `env`: it is kept with the session (and its holder) for its life.
const MAX_ENV_VARS: usize = 128;
const MAX_ENV_VALUE: usize = 32 * 1024;

/// `env` of a spawn: an object of `NAME: "value"`, names as a shell would accept them.
fn env_field(b: &Value) -> Result<std::collections::BTreeMap<String, String>, BadRequest> {
    let bad = || {
        invalid(
            "env must be an object of NAME: \"value\" (at most 128, names [A-Za-z_][A-Za-z0-9_]*, values up to 32 KiB)",
        )
    };
    let Some(v) = b.get("env").filter(|v| !v.is_null()) else {
        return Ok(Default::default());
    };
    let obj = v
        .as_object()
        .filter(|o| o.len() <= MAX_ENV_VARS)
        .ok_or_else(bad)?;
    let name_ok = |k: &str| {
        k.chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && k.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    };
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) if name_ok(k) && s.len() <= MAX_ENV_VALUE => Ok((k.clone(), s.to_string())),
            _ => Err(bad()),
        })
        .collect()
}

impl SpawnRequest {
    /// The id alone: spawn checks it against the live sessions before the rest of the body.
    pub fn session_id(b: &Value) -> Result<String, BadRequest> {
        b.text_field("session_id")
            .ok_or_else(|| invalid("session_id is strictly required."))
    }

    /// Everything but `window_size` (a policy, which the engine's type reads).
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        let session_id = Self::session_id(b)?;
        let command = b
            .str_field("command")
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| invalid("command is required"))?;
        let args = b.strings("args", "args must be an array of strings")?;
        let cwd = b.opt_str("cwd")?;
        let cols = dimension(b, "cols")?;
        let rows = dimension(b, "rows")?;
        let kind = match b.opt_text("type") {
            Ok(None) => None,
            Ok(Some(t)) if t.eq_ignore_ascii_case("user") => Some("USER".to_string()),
            Ok(Some(t)) if t.eq_ignore_ascii_case("agent") => Some("AGENT".to_string()),
            _ => return Err(invalid("type must be USER or AGENT")),
        };
        Ok(SpawnRequest {
            session_id,
            command,
            args,
            cwd,
            cols,
            rows,
            kind,
            record: b.flag("record")?,
            window_size: None,
            profile: match b.get("profile") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if !p.is_empty() => Some(p.clone()),
                Some(_) => return Err(invalid("profile must be a non-empty string")),
            },
            env: env_field(b)?,
        })
    }
}

/// `POST /api/sessions/register`, as `telepty allow` sends it (API.md §4; the daemon reads
/// the body leniently).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RegisterBody {
    #[schema(pattern = r"^(?!\.$|multicast$|broadcast$)(?!.*\.\.)[A-Za-z0-9._-]{1,128}$")]
    pub session_id: String,
    #[schema(value_type = Option<String>)]
    pub command: String,
    #[schema(value_type = Option<String>)]
    pub cwd: String,
    #[schema(value_type = Option<String>)]
    pub backend: String,
    #[schema(schema_with = super::schema::dimension, required = false)]
    pub cols: u16,
    #[schema(schema_with = super::schema::dimension, required = false)]
    pub rows: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub record: bool,
    pub term_program: Option<String>,
    pub term: Option<String>,
    pub cmux_workspace_id: Option<String>,
    pub cmux_surface_id: Option<String>,
    /// `aterm`: deliver injects over HTTP to `delivery_endpoint` (or `delivery.address`).
    pub delivery_type: Option<String>,
    pub delivery_endpoint: Option<String>,
    /// Where a wrapped session's owner takes deliveries: `{address, transport, ...}`.
    #[schema(value_type = Option<Object>)]
    pub delivery: Option<Value>,
}

/// `POST /api/sessions/:id/inject`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InjectRequest {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub no_enter: bool,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub thread_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub reply_expected: bool,
    pub deliberation_session_id: Option<String>,
    /// A client-chosen idempotency key: a retry with the same key (after a timeout, say) is
    /// answered with the first request's result and never types the text twice.
    #[schema(pattern = "^[A-Za-z0-9._:-]{0,128}$")]
    pub inject_id: Option<String>,
}

/// 1–128 characters of letters, digits, `.`, `_`, `:` or `-` (a UUID fits).
pub fn valid_inject_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl InjectRequest {
    /// Empty strings count as absent.
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        let inject_id = b.opt_text("inject_id")?;
        if inject_id.as_deref().is_some_and(|i| !valid_inject_id(i)) {
            return Err(invalid(
                "inject_id must be 1-128 letters, digits, '.', '_', ':' or '-'",
            ));
        }
        Ok(InjectRequest {
            inject_id,
            prompt: b
                .str_field("prompt")
                .ok_or_else(|| invalid("prompt is required"))?,
            no_enter: b.flag("no_enter")?,
            from: b.opt_text("from")?,
            reply_to: b.opt_text("reply_to")?,
            thread_id: b.opt_text("thread_id")?,
            reply_expected: b.flag("reply_expected")?,
            deliberation_session_id: b.opt_text("deliberation_session_id")?,
        })
    }
}

fn prompt(b: &Value) -> Result<String, BadRequest> {
    b.text_field("prompt")
        .ok_or_else(|| invalid("prompt is required"))
}

/// `POST /api/sessions/multicast/inject`: exact ids, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MulticastRequest {
    /// Exact ids; one that is not a valid id (or not a string) fails in the results.
    #[schema(value_type = Vec<Value>)]
    pub session_ids: Vec<String>,
    #[schema(min_length = 1)]
    pub prompt: String,
}

impl MulticastRequest {
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        let prompt = prompt(b)?;
        let Some(Value::Array(ids)) = b.get("session_ids") else {
            return Err(invalid("session_ids must be an array"));
        };
        // A non-string id is kept as its JSON text, so it fails as an invalid id.
        let session_ids = ids
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        Ok(MulticastRequest {
            session_ids,
            prompt,
        })
    }
}

/// `POST /api/sessions/broadcast/inject`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BroadcastRequest {
    #[schema(min_length = 1)]
    pub prompt: String,
}

impl BroadcastRequest {
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        Ok(BroadcastRequest { prompt: prompt(b)? })
    }
}

/// `POST /api/sessions/:id/keys`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeysRequest {
    /// Key names (`enter`, `ctrl+c`, `up`, …; an unknown one: 400 `UNKNOWN_KEY`).
    #[schema(min_items = 1, max_items = 64)]
    pub keys: Vec<String>,
}

impl KeysRequest {
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        const MSG: &str = "keys must be an array of 1-64 key names";
        match b.get("keys") {
            Some(Value::Array(a)) if !a.is_empty() && a.len() <= 64 => Ok(KeysRequest {
                keys: b.strings("keys", MSG)?,
            }),
            _ => Err(invalid(MSG)),
        }
    }
}

/// `PATCH /api/sessions/:id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RenameRequest {
    #[schema(pattern = r"^(?!\.$|multicast$|broadcast$)(?!.*\.\.)[A-Za-z0-9._-]{1,128}$")]
    pub new_id: String,
}

impl RenameRequest {
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        Ok(RenameRequest {
            new_id: b
                .text_field("new_id")
                .ok_or_else(|| invalid("new_id is required"))?,
        })
    }
}

/// `POST /api/sessions/:id/resize`: a size, a `window_size` policy, or both.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResizeRequest {
    /// With `rows`: both or neither.
    #[schema(minimum = 1, maximum = 1000)]
    pub cols: Option<u16>,
    #[schema(minimum = 1, maximum = 1000)]
    pub rows: Option<u16>,
    /// Extension (read by the route): the session's size policy; null: the configured default.
    #[schema(pattern = "^(smallest|largest|latest|manual)$")]
    pub window_size: Option<String>,
}

impl ResizeRequest {
    /// `None` when neither `cols` nor `rows` is there (a policy-only resize); both must then
    /// be numbers 1–1000.
    pub fn parse(b: &Value) -> Result<Option<(u16, u16)>, BadRequest> {
        if b.get("cols").is_none() && b.get("rows").is_none() {
            return Ok(None);
        }
        let dim = |k: &str| {
            b.get(k)
                .and_then(Value::as_i64)
                .filter(|n| (1..=1000).contains(n))
                .map(|n| n as u16)
        };
        match (dim("cols"), dim("rows")) {
            (Some(c), Some(r)) => Ok(Some((c, r))),
            _ => Err(invalid("cols and rows must be integers between 1 and 1000")),
        }
    }
}

/// What a session is doing, as `list` shows it and `wait --state` waits for (issue 12).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    utoipa::ToSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AgentState {
    Working,
    Waiting,
    Idle,
    Stuck,
    Exited,
}

impl AgentState {
    /// The classifier's state (`autoState.state`: running, thinking, waiting_input, idle,
    /// stuck) as the user reads it; `None` for anything else (unknown, not yet classified).
    pub fn from_auto(state: &str) -> Option<AgentState> {
        match state {
            "running" | "thinking" => Some(AgentState::Working),
            "waiting_input" => Some(AgentState::Waiting),
            "idle" => Some(AgentState::Idle),
            "stuck" => Some(AgentState::Stuck),
            _ => None,
        }
    }
}

/// `POST /api/sessions/:id/wait`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitRequest {
    /// A regular expression (an invalid one: 400 `INVALID_PATTERN`); empty: none.
    pub pattern: Option<String>,
    /// Wait for this state instead of a pattern or quiet.
    pub state: Option<AgentState>,
    /// Quiet time that counts as settled, default 300.
    #[schema(schema_with = super::schema::count)]
    pub settle_ms: Option<u64>,
    /// Default 10000, at most 300000.
    #[schema(schema_with = super::schema::count)]
    pub timeout_ms: Option<u64>,
    #[schema(schema_with = super::schema::count)]
    pub since_generation: Option<u64>,
    /// `screen` (default) or `stream`
    #[schema(pattern = "^(screen|stream)$")]
    pub scope: Option<String>,
    pub include_screen: Option<bool>,
}

impl WaitRequest {
    /// The pattern stays text (the API compiles it); an empty one counts as none.
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        let pattern = match b.get("pattern") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.is_empty() => None,
            Some(Value::String(p)) => Some(p.clone()),
            Some(_) => {
                return Err(BadRequest::Pattern(
                    "Invalid pattern: pattern must be a string".into(),
                ));
            }
        };
        let num = |k: &str| match b.int_field(k) {
            None => Ok(None),
            Some(Ok(n)) if (0..=MAX_COUNT).contains(&n) => Ok(Some(n as u64)),
            _ => Err(invalid(format!("{k} must be a non-negative integer"))),
        };
        let settle_ms = num("settle_ms")?;
        let timeout_ms = num("timeout_ms")?;
        let since_generation = num("since_generation")?;
        let scope = match b.opt_str("scope")? {
            None => None,
            Some(s) if s == "screen" || s == "stream" => Some(s),
            Some(_) => return Err(invalid("scope must be screen or stream")),
        };
        let state = match b.get("state") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| s.parse::<AgentState>().ok())
                    .ok_or_else(|| {
                        invalid("state must be one of working, waiting, idle, stuck, exited")
                    })?,
            ),
        };
        if state.is_some() && pattern.is_some() {
            return Err(invalid("give pattern or state, not both"));
        }
        Ok(WaitRequest {
            pattern,
            state,
            settle_ms,
            timeout_ms,
            since_generation,
            scope,
            include_screen: b.opt_bool("include_screen")?,
        })
    }
}

/// `POST /api/sessions/:id/state` as `telepty status-report` sends it.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateReport {
    /// Required, here or as `task_phase`: a non-blank string. The text fields take strings;
    /// anything else counts as absent. `seq` (a non-negative integer) defaults to the previous
    /// report's + 1.
    #[schema(value_type = Option<Value>)]
    pub phase: String,
    #[schema(value_type = Option<Value>)]
    pub current_task: Option<String>,
    #[schema(value_type = Option<Value>)]
    pub blocker: Option<String>,
    #[schema(value_type = Option<bool>)]
    pub needs_input: bool,
    #[schema(value_type = Option<Value>)]
    pub thread_id: Option<String>,
    #[schema(value_type = Option<Value>)]
    pub source: String,
}

/// `POST /api/sessions/:id/submit`: each value is clamped to its range; one that is not an
/// integer means the default.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmitRequest {
    /// Extra Enters when the first is not confirmed: 0–3, default 0.
    #[schema(value_type = Option<Value>)]
    pub retries: Option<i64>,
    /// 100–2000, default 500.
    #[schema(value_type = Option<Value>)]
    pub retry_delay_ms: Option<i64>,
    /// 0–1000, default 0.
    #[schema(value_type = Option<Value>)]
    pub pre_delay_ms: Option<i64>,
}

impl SubmitRequest {
    /// `(retries, retry delay, delay before the first Enter)`.
    pub fn parse(b: &Value) -> (u32, std::time::Duration, std::time::Duration) {
        let clamp = |k: &str, lo: i64, hi: i64, dflt: i64| match b.int_field(k) {
            Some(Ok(n)) => n.clamp(lo, hi),
            _ => dflt,
        };
        let ms = |n: i64| std::time::Duration::from_millis(n as u64);
        (
            clamp("retries", 0, 3, 0) as u32,
            ms(clamp("retry_delay_ms", 100, 2000, 500)),
            ms(clamp("pre_delay_ms", 0, 1000, 0)),
        )
    }
}

/// `POST /api/sessions/:id/mailbox/ack`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AckRequest {
    #[schema(min_length = 1)]
    pub msg_id: String,
}

impl AckRequest {
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        Ok(AckRequest {
            msg_id: b
                .text_field("msg_id")
                .ok_or_else(|| invalid("msg_id is required"))?,
        })
    }
}

/// `POST /api/sessions/resurrect` (extension): restart the given lost sessions (all of them
/// without `ids`), or with `forget: true` drop the given ones from the store.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResurrectRequest {
    pub ids: Option<Vec<String>>,
    pub forget: Option<bool>,
}

impl ResurrectRequest {
    pub fn parse(b: &Value) -> Result<(Vec<String>, bool), BadRequest> {
        let ids = b.strings("ids", "ids must be an array of session ids")?;
        let forget = b.flag("forget")?;
        if forget && ids.is_empty() {
            return Err(invalid("forget needs the ids to drop"));
        }
        Ok((ids, forget))
    }
}

/// `POST /api/pair/claim`: the claiming machine's name (as this one will call it), its
/// daemon's port and token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairClaim {
    /// The code `telepty pair` showed (case and dashes do not matter).
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    /// A peer name: 1-128 of A-Z a-z 0-9 . _ -
    #[schema(pattern = r"^(?!\.$|multicast$|broadcast$)(?!.*\.\.)[A-Za-z0-9._-]{1,128}$")]
    pub name: String,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: u16,
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
}

impl PairClaim {
    pub fn parse(b: &Value) -> Result<Self, BadRequest> {
        let text = |k: &str, max: usize| {
            b.opt_str(k)?
                .filter(|v| !v.is_empty() && v.chars().count() <= max)
                .ok_or_else(|| invalid(format!("{k} is required (at most {max} characters)")))
        };
        let name = text("name", 128)?;
        if !crate::util::valid_session_id(&name) {
            return Err(invalid(
                "name must be 1-128 characters from A-Z a-z 0-9 . _ -",
            ));
        }
        // A number only (3848.0 is one too), not a string holding one.
        let port = match b
            .get("port")
            .filter(|v| v.is_number())
            .map(|_| b.int_field("port"))
        {
            Some(Some(Ok(p @ 1..=65535))) => p as u16,
            _ => return Err(invalid("port must be an integer between 1 and 65535")),
        };
        Ok(PairClaim {
            code: text("code", 64)?,
            name,
            port,
            token: text("token", 512)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the client sends, the API reads back unchanged.
    #[test]
    fn client_bodies_parse_back() {
        let spawn = SpawnRequest {
            session_id: "w".into(),
            command: "bash".into(),
            args: vec!["-l".into()],
            cols: Some(100),
            kind: Some("USER".into()),
            ..Default::default()
        };
        assert_eq!(SpawnRequest::parse(&json!(spawn)), Ok(spawn));
        let inject = InjectRequest {
            prompt: "hi".into(),
            from: Some("o".into()),
            reply_expected: true,
            ..Default::default()
        };
        assert_eq!(InjectRequest::parse(&json!(inject)), Ok(inject));
        let wait = WaitRequest {
            pattern: Some("x".into()),
            scope: Some("stream".into()),
            include_screen: Some(false),
            ..Default::default()
        };
        assert_eq!(WaitRequest::parse(&json!(wait)), Ok(wait));
    }

    #[test]
    fn loose_fields_and_messages() {
        let b = json!({"session_id": "w", "command": "sh", "cols": "90", "type": "agent"});
        let s = SpawnRequest::parse(&b).unwrap();
        assert_eq!((s.cols, s.kind.as_deref()), (Some(90), Some("AGENT")));
        let bad = json!({"session_id": "w", "command": "sh", "rows": 0});
        assert_eq!(
            SpawnRequest::parse(&bad).unwrap_err().to_string(),
            "rows must be an integer between 1 and 1000"
        );
        assert_eq!(
            ResizeRequest::parse(&json!({"cols": "80", "rows": 24})),
            Err(invalid("cols and rows must be integers between 1 and 1000"))
        );
        assert_eq!(
            ResizeRequest::parse(&json!({"window_size": null})),
            Ok(None)
        );
        assert!(matches!(
            WaitRequest::parse(&json!({"pattern": 3})),
            Err(BadRequest::Pattern(_))
        ));
    }

    /// What the OpenAPI document promises, the parsers hold: a value of the wrong type is
    /// refused rather than silently read as absent, and a number is a number however JSON
    /// spells it (found by scripts/schemathesis.sh).
    #[test]
    fn wrong_types_are_refused_as_the_document_says() {
        let spawn = |extra: Value| {
            let mut b = json!({"session_id": "w", "command": "sh"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            SpawnRequest::parse(&b).map_err(|e| e.to_string())
        };
        assert_eq!(
            spawn(json!({"record": "yes"})).unwrap_err(),
            "record must be a boolean"
        );
        assert_eq!(
            spawn(json!({"type": 5})).unwrap_err(),
            "type must be USER or AGENT"
        );
        assert_eq!(spawn(json!({"cols": 219.0})).unwrap().cols, Some(219));
        assert!(spawn(json!({"record": null})).is_ok_and(|s| !s.record));
        let inject = |b: Value| InjectRequest::parse(&b).map_err(|e| e.to_string());
        assert_eq!(
            inject(json!({"prompt": "x", "no_enter": 1})).unwrap_err(),
            "no_enter must be a boolean"
        );
        assert_eq!(
            inject(json!({"prompt": "x", "from": ["a"]})).unwrap_err(),
            "from must be a string"
        );
        assert_eq!(
            inject(json!({"prompt": "x", "from": ""})).unwrap().from,
            None
        );
        let wait = |b: Value| WaitRequest::parse(&b).map_err(|e| e.to_string());
        assert_eq!(
            wait(json!({"scope": 1})).unwrap_err(),
            "scope must be a string"
        );
        assert_eq!(
            wait(json!({"include_screen": "no"})).unwrap_err(),
            "include_screen must be a boolean"
        );
        assert_eq!(
            wait(json!({"timeout_ms": MAX_COUNT})).unwrap().timeout_ms,
            Some(MAX_COUNT as u64)
        );
        assert!(wait(json!({"since_generation": 9.3e18})).is_err());
        assert!(wait(json!({"since_generation": MAX_COUNT + 1})).is_err());
    }
}
