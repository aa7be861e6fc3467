//! kitty integration over kitty's own remote-control protocol.
//!
//! - [`transport`]: addresses (`unix:PATH`, `unix:@NAME`, `tcp:HOST:PORT`), our small
//!   [`RemoteControl`] trait and its socket implementation;
//! - [`protocol`]: request framing and answers (kitty-rc's framing and encryption, with a
//!   protocol version every kitty accepts);
//! - [`discovery`]: which kitty (`--to`, `$KITTY_LISTEN_ON`, config, `/tmp/kitty-sock-*`, …);
//! - [`model`]: the `ls` listing and which windows hold telepty sessions;
//! - [`layout`]: showing and changing the layouts of those tabs;
//! - [`settings`]: the `[kitty]` table of the config file.
//!
//! Text for agents never goes through kitty (`send-text`): it goes through the PTY telepty
//! owns. kitty is only asked to arrange, open, title and focus windows.

pub mod discovery;
pub mod layout;
pub mod model;
pub mod protocol;
pub mod settings;
pub mod transport;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::wire;

pub use discovery::Resolved;
pub use kitty_rc::Protection;
pub use layout::{
    Layout, LayoutChange, TabLayout, TabSelection, apply_layout, apply_to_tabs, current_layouts,
};
pub use model::{OsWindow, SessionWindow, Tab, Window, session_windows};
pub use settings::KittySettings;
pub use transport::{Address, RemoteControl, SocketRemote};

/// How to turn remote control on (ends every "no kitty" error).
pub const HINT: &str = "turn kitty's remote control on: add `allow_remote_control yes` and \
     `listen_on unix:/tmp/kitty-sock` to kitty.conf and restart kitty, or start it with \
     `kitty -o allow_remote_control=yes --listen-on unix:/tmp/kitty-sock`";

/// Title of the tab `telepty kitty open` puts windows in.
pub const TAB_TITLE: &str = "telepty";

#[derive(Debug, thiserror::Error)]
pub enum KittyError {
    #[error("no kitty with remote control found ({looked}); {HINT}")]
    NotFound { looked: String },
    #[error("cannot reach kitty at {addr}: {reason}; {HINT}")]
    Connect { addr: String, reason: String },
    #[error("kitty at {addr} did not answer within {}s (if kitty is asking whether to allow a remote-control password, answer it there, or list the password in remote_control_password in kitty.conf)", .after.as_secs_f32())]
    Timeout { addr: String, after: Duration },
    #[error("kitty at {addr} closed the connection without answering ({})", no_response_hint(*.encrypted))]
    NoResponse { addr: String, encrypted: bool },
    #[error("talking to kitty at {addr} failed: {reason}")]
    Io { addr: String, reason: String },
    #[error("kitty refused `{cmd}`: {message}{}", remote_hint(.message))]
    Remote { cmd: String, message: String },
    #[error("unexpected answer from kitty: {0}")]
    Protocol(String),
    #[error(
        "several kitty instances answer: {list}; choose one with --to ADDRESS (or set KITTY_LISTEN_ON)"
    )]
    Ambiguous { list: String },
    #[error("{0}")]
    Password(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NoSessions(String),
}

impl KittyError {
    /// Errors about finding or reaching kitty at all (as opposed to a refused command).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            KittyError::NotFound { .. }
                | KittyError::Connect { .. }
                | KittyError::Timeout { .. }
                | KittyError::NoResponse { .. }
                | KittyError::Io { .. }
                | KittyError::Ambiguous { .. }
        )
    }
}

fn no_response_hint(encrypted: bool) -> &'static str {
    if encrypted {
        "kitty ignores requests it cannot decrypt: the password or KITTY_PUBLIC_KEY may belong to \
         another kitty"
    } else {
        "it may not be kitty, or it ignored the request; is remote control allowed there?"
    }
}

fn remote_hint(message: &str) -> String {
    if message.contains("Remote control is disabled") {
        format!(
            "; if kitty uses `allow_remote_control password`, give the password with --password, \
             $KITTY_RC_PASSWORD or `password` under [kitty] in telepty's config.toml; otherwise {HINT}"
        )
    } else if message.contains("rejected this password") {
        "; check the password against remote_control_password in kitty.conf".to_string()
    } else if message.contains("newer than this kitty") {
        "; please report this: telepty should claim an older protocol version".to_string()
    } else {
        String::new()
    }
}

/// One kitty instance, spoken to through a [`RemoteControl`].
pub struct Kitty<R> {
    rc: R,
}

/// What `launch` should open: kitty's payload (unset fields are left out).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct LaunchSpec {
    pub args: Vec<String>,
    /// `window`, `tab`, `os-window`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub window_title: Option<String>,
    /// `NAME=VALUE` entries added to the window's environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    pub tab_title: Option<String>,
    /// The tab to open the window in (kitty match syntax, e.g. `id:3`).
    #[serde(rename = "match")]
    pub tab_match: Option<String>,
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_focus: bool,
}

/// The payload of the other commands telepty sends: a `match` and what to set.
#[serde_with::skip_serializing_none]
#[derive(Default, Serialize)]
struct Target<'a> {
    pub layout: Option<&'a str>,
    pub layouts: Option<&'a [String]>,
    pub title: Option<&'a str>,
    pub temporary: Option<bool>,
    #[serde(rename = "match")]
    pub matching: Option<&'a str>,
}

impl<R: RemoteControl> Kitty<R> {
    pub fn new(rc: R) -> Kitty<R> {
        Kitty { rc }
    }

    /// Where this kitty listens.
    pub fn describe(&self) -> String {
        self.rc.describe()
    }

    /// `ls`: OS windows, tabs, windows.
    pub async fn ls(&self) -> Result<Vec<OsWindow>, KittyError> {
        let data = self.rc.call("ls", Value::Null).await?;
        model::parse_ls(&data)
    }

    /// A command that only sets something: `target` says what, and where.
    async fn set(&self, cmd: &str, target: Target<'_>) -> Result<(), KittyError> {
        self.rc.call(cmd, wire::value(&target)).await.map(drop)
    }

    /// `goto-layout` in the matched tabs (the active tab without a match).
    pub async fn goto_layout(
        &self,
        tab_match: Option<&str>,
        layout: Layout,
    ) -> Result<(), KittyError> {
        let target = Target {
            layout: Some(layout.name()),
            matching: tab_match,
            ..Default::default()
        };
        self.set("goto-layout", target).await
    }

    /// `set-enabled-layouts` in the matched tabs.
    pub async fn set_enabled_layouts(
        &self,
        tab_match: Option<&str>,
        layouts: &[String],
    ) -> Result<(), KittyError> {
        let target = Target {
            layouts: Some(layouts),
            matching: tab_match,
            ..Default::default()
        };
        self.set("set-enabled-layouts", target).await
    }

    /// `launch`; returns the new window's id.
    pub async fn launch(&self, spec: &LaunchSpec) -> Result<u64, KittyError> {
        let data = self.rc.call("launch", wire::value(spec)).await?;
        let id = match &data {
            Value::String(s) => s.trim().parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        id.filter(|i| *i > 0).ok_or_else(|| {
            KittyError::Protocol(format!("`launch` answered {data} instead of a window id"))
        })
    }

    /// `focus-window` (which also brings its tab and OS window forward).
    pub async fn focus_window(&self, window_match: &str) -> Result<(), KittyError> {
        let target = Target {
            matching: Some(window_match),
            ..Default::default()
        };
        self.set("focus-window", target).await
    }
}

/// How to reach kitty, from flags; the environment and the config file fill the rest.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// `--to`
    pub to: Option<String>,
    /// `--password` (else `$KITTY_RC_PASSWORD`, else config)
    pub password: Option<String>,
    /// Answer timeout per request (default 10 s).
    pub timeout: Option<Duration>,
    /// Never talk to kitty through the controlling terminal: a full-screen program (the
    /// dashboard) owns it, and kitty's answers would land in its input.
    pub no_tty: bool,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ConnectOptions {
    /// Flags > environment (`KITTY_LISTEN_ON`, `KITTY_RC_PASSWORD`, `KITTY_PUBLIC_KEY`) >
    /// config (`[kitty]`).
    pub fn resolve(&self, settings: &KittySettings) -> Result<Resolved, KittyError> {
        let password = self
            .password
            .clone()
            .or_else(|| env_nonempty("KITTY_RC_PASSWORD"));
        let mut r = Resolved::new(
            self.to.as_deref(),
            env_nonempty("KITTY_LISTEN_ON").as_deref(),
            password.as_deref(),
            env_nonempty("KITTY_PUBLIC_KEY").as_deref(),
            settings,
        )?;
        if let Some(t) = self.timeout {
            r.timeout = t;
        }
        r.no_tty = self.no_tty;
        Ok(r)
    }
}

/// Find and connect to kitty. `known` session ids help pick among several kitties and
/// recognise windows titled with a session id.
pub async fn connect(
    opts: &ConnectOptions,
    settings: &KittySettings,
    known: &[String],
) -> Result<Kitty<SocketRemote>, KittyError> {
    let res = opts.resolve(settings)?;
    discovery::connect_resolved(&res, known).await
}

/// Environment for `telepty attach` windows: the daemon's address (`host`, `port`) and what
/// selects the token and the configuration.
pub fn attach_env(host: &str, port: u16) -> Vec<(String, String)> {
    let mut env = vec![
        ("TELEPTY_HOST".to_string(), host.to_string()),
        ("TELEPTY_PORT".to_string(), port.to_string()),
    ];
    for k in ["HOME", "TELEPTY_TOKEN", "TELEPTY_CONFIG", "XDG_CONFIG_HOME"] {
        if let Some(v) = env_nonempty(k) {
            env.push((k.to_string(), v));
        }
    }
    env
}

/// What `telepty kitty open` asks for.
#[derive(Clone, Debug)]
pub struct OpenRequest {
    /// Session ids (or `id@host`), each opened as `program attach ID`.
    pub sessions: Vec<String>,
    /// The telepty executable the windows run.
    pub program: PathBuf,
    /// Environment for the windows (besides `TELEPTY_SESSION_ID`): what selects the daemon.
    pub env: Vec<(String, String)>,
    /// Layout applied to the tab afterwards.
    pub layout: Option<Layout>,
    /// Title of the tab (reused when a tab with this title exists).
    pub tab_title: String,
}

/// What `open_windows` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpenReport {
    pub tab_id: Option<u64>,
    pub tab_title: String,
    pub opened: Vec<SessionWindow>,
    pub existing: Vec<SessionWindow>,
    pub layout: Vec<LayoutChange>,
}

/// Open one kitty window per session (running `telepty attach ID`, titled with the id) in one
/// tab, reusing a tab titled `tab_title` or creating it; sessions that already have a window
/// are left alone. Then apply the layout to that tab.
pub async fn open_windows<R: RemoteControl>(
    k: &Kitty<R>,
    req: &OpenRequest,
    known: &[String],
) -> Result<OpenReport, KittyError> {
    let known = [known, &req.sessions].concat();
    let before = k.ls().await?;
    let held = session_windows(&before, &known);
    let mut report = OpenReport {
        tab_title: req.tab_title.clone(),
        ..Default::default()
    };
    let mut tab_id = model::tabs(&before)
        .map(|(_, t)| t)
        .find(|t| t.title == req.tab_title)
        .map(|t| t.id);
    let closed = |id: &str, wid: u64| {
        KittyError::Protocol(format!(
            "the window kitty opened for {id} (window {wid}) closed right away; does `{} \
             attach {id}` work?",
            req.program.display()
        ))
    };
    let mut launched: Vec<(String, u64)> = Vec::new();
    for id in &req.sessions {
        if let Some(w) = held.iter().find(|w| &w.session == id) {
            report.existing.push(w.clone());
            continue;
        }
        let mut env = vec![format!("TELEPTY_SESSION_ID={id}")];
        env.extend(req.env.iter().map(|(k, v)| format!("{k}={v}")));
        let spec = LaunchSpec {
            args: vec![
                req.program.to_string_lossy().into_owned(),
                "attach".into(),
                id.clone(),
            ],
            window_title: Some(id.clone()),
            env,
            kind: if tab_id.is_some() { "window" } else { "tab" }.into(),
            tab_title: tab_id.is_none().then(|| req.tab_title.clone()),
            tab_match: tab_id.map(|t| format!("id:{t}")),
            ..Default::default()
        };
        let wid = k.launch(&spec).await?;
        if tab_id.is_none() {
            let list = k.ls().await?;
            tab_id = model::tab_of_window(&list, wid).map(|t| t.id);
            if tab_id.is_none() {
                return Err(closed(id, wid));
            }
        }
        launched.push((id.clone(), wid));
    }
    report.tab_id = tab_id;
    let list = k.ls().await?;
    for (id, wid) in &launched {
        let found = model::tabs(&list).find_map(|(os, tab)| {
            let w = tab.windows.iter().find(|w| w.id == *wid)?;
            Some((os, tab.id, w.title.clone()))
        });
        let Some((os_window_id, tab, title)) = found else {
            return Err(closed(id, *wid));
        };
        report.opened.push(SessionWindow {
            session: id.clone(),
            window_id: *wid,
            tab_id: tab,
            os_window_id,
            title,
        });
    }
    if let (Some(layout), Some(t)) = (req.layout, tab_id) {
        report.layout = apply_to_tabs(k, &list, &[t], layout).await?;
    }
    Ok(report)
}

/// Focus the window holding session `id`.
pub async fn focus_session<R: RemoteControl>(
    k: &Kitty<R>,
    id: &str,
    known: &[String],
) -> Result<SessionWindow, KittyError> {
    let mut known = known.to_vec();
    known.push(id.to_string());
    let list = k.ls().await?;
    let found = session_windows(&list, &known)
        .into_iter()
        .find(|w| w.session == id)
        .ok_or_else(|| {
            KittyError::NoSessions(format!(
                "no kitty window at {} holds session {id} (open one with `telepty kitty open {id}`)",
                k.describe()
            ))
        })?;
    k.focus_window(&format!("id:{}", found.window_id)).await?;
    Ok(found)
}

/// Whether this process runs inside a kitty window.
pub fn in_kitty() -> bool {
    env_nonempty("KITTY_WINDOW_ID").is_some()
        || std::env::var("TERM").is_ok_and(|t| t.contains("kitty"))
}

/// A title safe for OSC 2 and kitty: no control characters, at most 200 characters.
fn clean_title(s: &str) -> String {
    crate::wire::describe::cut(s.chars().filter(|c| !c.is_control()).collect(), 200)
}

/// OSC 2 (set window title) for `title`.
pub fn osc_title(title: &str) -> String {
    format!("\x1b]2;{}\x07", clean_title(title))
}

/// What [`set_window_title_if_kitty`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TitleSet {
    /// OSC 2 was written to the terminal.
    pub osc: bool,
    /// kitty set a title the program cannot replace (remote control, `KITTY_WINDOW_ID`).
    pub remote: bool,
}

/// For `telepty allow` inside kitty: show the session id as the window title. Writes OSC 2 to
/// the terminal, and when kitty's socket is known (`$KITTY_LISTEN_ON` or config) and
/// `KITTY_WINDOW_ID` is set, also sets it by remote control so that the wrapped program's own
/// title changes do not replace it (undo with [`restore_window_title_if_kitty`]). Blocks for
/// at most about a second; never fails.
pub fn set_window_title_if_kitty(id: &str) -> TitleSet {
    if !in_kitty() {
        return TitleSet::default();
    }
    let osc = write_to_terminal(osc_title(id).as_bytes());
    let remote = remote_window_title(&clean_title(id));
    TitleSet { osc, remote }
}

/// Give the window title back to the program (after [`set_window_title_if_kitty`]).
pub fn restore_window_title_if_kitty() -> bool {
    in_kitty() && remote_window_title("")
}

fn write_to_terminal(bytes: &[u8]) -> bool {
    use std::io::{IsTerminal, Write};
    let mut out = std::io::stdout();
    if out.is_terminal() {
        return out.write_all(bytes).and_then(|_| out.flush()).is_ok();
    }
    let tty = std::fs::OpenOptions::new().write(true).open("/dev/tty");
    tty.and_then(|mut tty| tty.write_all(bytes)).is_ok()
}

fn remote_window_title(title: &str) -> bool {
    let Some(wid) = env_nonempty("KITTY_WINDOW_ID").and_then(|w| w.trim().parse::<u64>().ok())
    else {
        return false;
    };
    let settings = KittySettings::load(&crate::config::Paths::from_env());
    let Ok(res) = ConnectOptions::default().resolve(&settings) else {
        return false;
    };
    let Some((addr, _)) = res.explicit.clone() else {
        return false;
    };
    let mut rc = res.remote(addr);
    rc.timeout = Duration::from_secs(1);
    pin_window_title(&rc, wid, title).is_ok()
}

/// Set the title of kitty window `window_id` so that its program cannot replace it (an empty
/// title gives it back to the program). Blocking, at most `rc.timeout`.
pub fn pin_window_title(rc: &SocketRemote, window_id: u64, title: &str) -> Result<(), KittyError> {
    rc.call_blocking(
        "set-window-title",
        &wire::value(&Target {
            matching: Some(&format!("id:{window_id}")),
            title: Some(&clean_title(title)),
            temporary: Some(false),
            ..Default::default()
        }),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use serde_json::json;

    /// A fake kitty: records calls, answers from a script.
    struct Fake {
        calls: Mutex<Vec<(String, Value)>>,
        #[allow(clippy::type_complexity)]
        answer: Box<
            dyn Fn(&str, &Value, &[(String, Value)]) -> Result<Value, KittyError> + Send + Sync,
        >,
    }

    impl RemoteControl for Fake {
        fn call(
            &self,
            cmd: &str,
            payload: Value,
        ) -> impl std::future::Future<Output = Result<Value, KittyError>> + Send {
            let mut calls = self.calls.lock();
            calls.push((cmd.to_string(), payload.clone()));
            let r = (self.answer)(cmd, &payload, &calls);
            async move { r }
        }
        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn ls_data(layout: &str, enabled: &[&str]) -> Value {
        Value::String(
            json!([{"id": 1, "tabs": [{"id": 4, "title": "agents", "layout": layout,
                "enabled_layouts": enabled,
                "windows": [{"id": 7, "title": "w", "cmdline": ["telepty", "attach", "w"]}]}]}])
            .to_string(),
        )
    }

    #[tokio::test]
    async fn a_disabled_layout_is_enabled_first_and_checked() {
        let fake = Fake {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(|cmd, _, calls| match (cmd, calls.len()) {
                ("ls", 1) => Ok(ls_data("stack", &["stack", "tall"])),
                ("ls", _) => Ok(ls_data("grid", &["stack", "tall", "grid"])),
                _ => Ok(Value::Null),
            }),
        };
        let k = Kitty::new(fake);
        let changes = apply_layout(&k, &TabSelection::Sessions, Layout::Grid, &[])
            .await
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].to_string(),
            "tab 4 \"agents\": stack → grid (enabled grid in the tab)"
        );
        let calls = k.rc.calls.lock().clone();
        let names: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["ls", "set-enabled-layouts", "goto-layout", "ls"]);
        assert_eq!(
            calls[1].1,
            json!({"layouts": ["stack", "tall", "grid"], "match": "id:4"})
        );
        assert_eq!(calls[2].1, json!({"layout": "grid", "match": "id:4"}));
    }

    #[tokio::test]
    async fn a_layout_kitty_did_not_apply_is_an_error() {
        let fake = Fake {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(|cmd, _, _| match cmd {
                "ls" => Ok(ls_data("stack", &[])),
                _ => Ok(Value::Null),
            }),
        };
        let k = Kitty::new(fake);
        let e = apply_layout(&k, &TabSelection::Sessions, Layout::Tall, &[])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("did not switch tab 4"), "{e}");
    }

    #[tokio::test]
    async fn open_launches_one_titled_window_per_missing_session() {
        // The listing shows tab 2 "telepty" with the windows launched so far.
        let fake = Fake {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(|cmd, p, calls| match cmd {
                "ls" => {
                    let mut wins = vec![];
                    let mut next = 10;
                    for (c, p) in calls {
                        if c == "launch" {
                            wins.push(json!({"id": next, "title": p["window_title"],
                                "cmdline": p["args"]}));
                            next += 1;
                        }
                    }
                    let layout = if calls.iter().any(|(c, _)| c == "goto-layout") {
                        "grid"
                    } else {
                        "tall"
                    };
                    Ok(Value::String(
                        json!([{"id": 1, "tabs": [
                            {"id": 1, "title": "shell", "layout": "tall", "windows": [
                                {"id": 1, "title": "w", "cmdline": ["telepty", "attach", "w"]}]},
                            {"id": 2, "title": "telepty", "layout": layout, "windows": wins}
                        ]}])
                        .to_string(),
                    ))
                }
                "launch" => {
                    assert_eq!(p["match"], json!("id:2"));
                    assert_eq!(p["type"], json!("window"));
                    let n = calls.iter().filter(|(c, _)| c == "launch").count();
                    Ok(json!((9 + n).to_string()))
                }
                _ => Ok(Value::Null),
            }),
        };
        let k = Kitty::new(fake);
        let req = OpenRequest {
            sessions: vec!["w".into(), "x".into(), "y".into()],
            program: "/t".into(),
            env: vec![("TELEPTY_PORT".into(), "1".into())],
            layout: Some(Layout::Grid),
            tab_title: TAB_TITLE.into(),
        };
        let r = open_windows(&k, &req, &[]).await.unwrap();
        assert_eq!(r.existing.len(), 1, "{r:?}");
        assert_eq!(r.existing[0].session, "w");
        let opened: Vec<(&str, u64, &str)> = r
            .opened
            .iter()
            .map(|o| (o.session.as_str(), o.window_id, o.title.as_str()))
            .collect();
        assert_eq!(opened, vec![("x", 10, "x"), ("y", 11, "y")]);
        assert_eq!(r.tab_id, Some(2));
        assert_eq!(r.layout[0].to_string(), "tab 2 \"telepty\": tall → grid");
        let calls = k.rc.calls.lock().clone();
        let launch = &calls.iter().find(|(c, _)| c == "launch").unwrap().1;
        assert_eq!(launch["args"], json!(["/t", "attach", "x"]));
        assert_eq!(
            launch["env"],
            json!(["TELEPTY_SESSION_ID=x", "TELEPTY_PORT=1"])
        );
    }

    #[test]
    fn launch_payloads() {
        let spec = LaunchSpec {
            args: vec!["/bin/telepty".into(), "attach".into(), "w1".into()],
            window_title: Some("w1".into()),
            env: vec!["TELEPTY_SESSION_ID=w1".into()],
            kind: "tab".into(),
            tab_title: Some("telepty".into()),
            ..Default::default()
        };
        assert_eq!(
            wire::value(&spec),
            json!({"args": ["/bin/telepty", "attach", "w1"], "type": "tab",
                   "window_title": "w1", "env": ["TELEPTY_SESSION_ID=w1"], "tab_title": "telepty"})
        );
        assert_eq!(osc_title("a\u{1b}b\u{7}c"), "\x1b]2;abc\x07");
    }

    #[test]
    fn errors_say_how_to_turn_remote_control_on() {
        let e = KittyError::Remote {
            cmd: "ls".into(),
            message: "Remote control is disabled. Add allow_remote_control to your kitty.conf"
                .into(),
        };
        let s = e.to_string();
        assert!(
            s.contains("--password") && s.contains("allow_remote_control yes"),
            "{s}"
        );
        let e = KittyError::NotFound { looked: "x".into() };
        assert!(
            e.to_string()
                .contains("kitty -o allow_remote_control=yes --listen-on unix:/tmp/kitty-sock")
        );
    }
}
