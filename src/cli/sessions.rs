//! Session management: spawn, list, rename, kill, clean.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail, opt, s, s_or, value_name};
use crate::client::SpawnRequest;
use crate::wire::request::AgentState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SessionKind {
    #[value(name = "AGENT")]
    Agent,
    #[value(name = "USER")]
    User,
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty spawn --id worker-1 --cwd ~/src/app -- bash -l")]
pub struct SpawnArgs {
    /// Session id (1-128 of A-Z a-z 0-9 . _ -), optionally id@host
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// Working directory [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,
    /// Terminal width [default: this terminal's, else 80]
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub cols: Option<u16>,
    /// Terminal height [default: this terminal's, else 30]
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub rows: Option<u16>,
    /// Prompt badge of shells
    #[arg(
        long = "type",
        value_enum,
        ignore_case = true,
        value_name = "AGENT|USER"
    )]
    pub kind: Option<SessionKind>,
    /// Record the session as asciicast
    #[arg(long)]
    pub record: bool,
    /// Agent profile: how the program reads input and shows it is busy (claude, codex, gemini,
    /// shell, python, generic, or ~/.config/telepty/profiles/NAME.toml) [default: by command]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Set a variable for the program (repeatable)
    #[arg(long, short = 'e', value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Do not attach, even on a terminal
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
    /// The command and its arguments (after `--`)
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// `NAME=VALUE` of `--env`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// The size of the terminal on stdout, if stdout is one.
fn terminal_size() -> Option<(u16, u16)> {
    std::io::stdout()
        .is_terminal()
        .then(super::allow::terminal_size)
        .flatten()
}

pub async fn spawn(ctx: &mut Ctx, a: SpawnArgs) -> Result<(), Failure> {
    let (client, target) = ctx.target(&a.id).await?;
    let (tcols, trows) = terminal_size().unwrap_or((80, 30));
    let cwd = match &a.cwd {
        Some(dir) if target.is_remote() && dir.is_relative() => {
            return Err(Failure::usage(
                "--cwd must be an absolute path for a remote session",
            ));
        }
        // Remote: sent as given. Local: made absolute (and `..` resolved when it exists).
        Some(dir) if target.is_remote() => Some(dir.clone()),
        Some(dir) => Some(match std::fs::canonicalize(dir) {
            Ok(p) => p,
            Err(_) => std::path::absolute(dir)
                .map_err(|e| Failure::new("spawn failed", format!("invalid --cwd: {e}")))?,
        }),
        // A remote daemon cannot use our directory: let it use its own.
        None if target.is_remote() => None,
        None => Some(
            std::env::current_dir()
                .map_err(|e| Failure::new("spawn failed", format!("no current directory: {e}")))?,
        ),
    };
    let mut argv = a.command.into_iter();
    let command = argv.next().unwrap_or_default();
    let req = SpawnRequest {
        window_size: None,
        session_id: target.id.clone(),
        command: command.clone(),
        args: argv.collect(),
        cwd: cwd.map(|p| p.to_string_lossy().into_owned()),
        cols: Some(a.cols.unwrap_or(tcols)),
        rows: Some(a.rows.unwrap_or(trows)),
        kind: a.kind.map(|k| value_name(&k)),
        record: a.record,
        profile: a.profile,
        env: a.env.into_iter().collect(),
    };
    let resp = client.spawn(&req).await.or_fail("spawn")?;
    if a.json {
        output::json(&resp);
        return Ok(());
    }
    let id = s_or(&resp, "session_id", &target.id);
    let label = match &target.host {
        Some(h) => format!("{id}@{h}"),
        None => id.to_string(),
    };
    let shown = s_or(&resp, "command", &command);
    output::line(format!("Spawned session {label} ({shown})"));
    if !a.detach && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        let detach = super::attach::detach_byte("ctrl+]").unwrap_or(0x1d);
        return super::attach::attach_session(&client, &target, false, detach, "ctrl+]").await;
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty list --json")]
pub struct ListArgs {
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

/// `exited(<code>)`/`exited(<signal>)` for an exited process, else `healthStatus`.
pub(crate) fn state_label(sess: &Value) -> String {
    if let Some(code) = sess.get("exitCode").and_then(Value::as_i64) {
        return format!("exited({code})");
    }
    if let Some(sig) = opt(sess, "exitSignal") {
        return format!("exited({sig})");
    }
    s_or(sess, "healthStatus", "-").to_string()
}

/// What the session is doing, as `list` shows it: `working`, `waiting` (a question or a
/// permission prompt, or a self-report that needs input), `idle`, `stuck`, `exited(<code>)`;
/// a wrapped session that lost its owner shows its health (`disconnected`, `stale`).
pub(crate) fn agent_state(sess: &Value) -> String {
    let label = state_label(sess);
    if label.starts_with("exited(") {
        return label;
    }
    if matches!(label.as_str(), "DISCONNECTED" | "STALE") {
        return label.to_lowercase();
    }
    let needs_input = sess["semantic"]["needs_input"] == true;
    let auto = sess["autoState"]["state"].as_str();
    match auto.and_then(AgentState::from_auto) {
        _ if needs_input => "waiting",
        Some(state) => state.into(),
        None => "starting",
    }
    .to_string()
}

/// The `list` table for an array of session objects; with `hosts`, a HOST column first (each
/// object's `host`), and only this machine's directories shortened with `~`.
pub(crate) fn session_table(sessions: &[Value], home: Option<&str>, hosts: bool) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|sess| {
            let host = s(sess, "host");
            let cwd = if hosts && host != crate::client::LOCAL_HOST {
                s(sess, "cwd").to_string()
            } else {
                output::tilde(s(sess, "cwd"), home)
            };
            let mut row = vec![
                s(sess, "id").to_string(),
                s(sess, "type").to_string(),
                agent_state(sess),
                output::short_duration(sess.get("idleSeconds").and_then(Value::as_u64)),
                output::shorten(s(sess, "command"), 40),
                cwd,
            ];
            if hosts {
                row.insert(0, host.to_string());
            }
            row
        })
        .collect();
    let mut headers = vec!["ID", "TYPE", "STATE", "IDLE", "COMMAND", "CWD"];
    if hosts {
        headers.insert(0, "HOST");
    }
    output::table(&headers, &rows)
}

/// The table of `list`, or a line saying there is nothing to list.
fn print_sessions(sessions: &[Value], hosts: bool) {
    if sessions.is_empty() {
        output::line("No sessions.");
    } else {
        let home = std::env::var("HOME").ok();
        output::text_block(&session_table(sessions, home.as_deref(), hosts));
    }
}

pub async fn list(ctx: &mut Ctx, a: ListArgs) -> Result<(), Failure> {
    if !ctx.peer_list().await.is_empty() {
        return list_all_hosts(ctx, a.json).await;
    }
    let client = ctx.local().await?;
    let resp = client.list_sessions().await.or_fail("list")?;
    if a.json {
        output::json(&resp);
        return Ok(());
    }
    let Some(sessions) = resp.as_array() else {
        return Err(Failure::new(
            "list failed",
            "the daemon did not return a session array",
        ));
    };
    print_sessions(sessions, false);
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty rename worker-1 reviewer")]
pub struct RenameArgs {
    /// Current id (or alias), optionally id@host
    pub old: String,
    /// New id
    pub new: String,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

pub async fn rename(ctx: &mut Ctx, a: RenameArgs) -> Result<(), Failure> {
    let (client, target) = ctx.session_target(&a.old, "rename").await?;
    let resp = client.rename(&target.id, &a.new).await.or_fail("rename")?;
    output::json_or(a.json, &resp, || {
        let old = opt(&resp, "old_id").unwrap_or_else(|| target.id.clone());
        let new = opt(&resp, "new_id").unwrap_or_else(|| a.new.clone());
        format!("Renamed {old} → {new}")
    });
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty kill worker-1")]
pub struct KillArgs {
    /// Session id (or alias), optionally id@host
    pub target: String,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

pub async fn kill(ctx: &mut Ctx, a: KillArgs) -> Result<(), Failure> {
    let (client, target) = ctx.session_target(&a.target, "kill").await?;
    let resp = client.delete_session(&target.id).await.or_fail("kill")?;
    if a.json {
        output::json(&resp);
    } else if s(&resp, "status") == "force-removed" {
        output::line(format!(
            "Removed {} (cleanup hit an error; force-removed)",
            target.label()
        ));
    } else {
        output::line(format!("Killed {}", target.label()));
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty clean")]
pub struct CleanArgs {
    /// Print `{removed, failed}` as JSON
    #[arg(long)]
    pub json: bool,
}

/// Sessions `clean` removes: exited processes and stale sessions.
pub(crate) fn is_cleanable(sess: &Value) -> bool {
    let present = |k: &str| sess.get(k).is_some_and(|v| !v.is_null());
    present("exitCode")
        || present("exitSignal")
        || s(sess, "healthReason") == "PTY_EXITED"
        || s(sess, "healthStatus") == "STALE"
}

pub async fn clean(ctx: &mut Ctx, a: CleanArgs) -> Result<(), Failure> {
    let client = ctx.local().await?;
    let resp = client.list_sessions().await.or_fail("clean")?;
    let sessions = resp.as_array().cloned().unwrap_or_default();
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for sess in sessions.iter().filter(|x| is_cleanable(x)) {
        let id = s(sess, "id");
        match client.delete_session(id).await {
            Ok(_) => {
                if !a.json {
                    output::line(format!("Removed {id} ({})", state_label(sess)));
                }
                removed.push(id);
            }
            // Gone in the meantime: nothing left to clean.
            Err(e) if e.code() == Some("SESSION_NOT_FOUND") => {}
            Err(e) if e.is_connect() => return Err(Failure::client("clean", e)),
            Err(e) => {
                if !a.json {
                    output::line(format!("FAIL {id}: {e}"));
                }
                failed.push(super::input::failure(
                    id,
                    e.code().unwrap_or("ERROR"),
                    e.to_string(),
                ));
            }
        }
    }
    if a.json {
        #[derive(serde::Serialize)]
        struct Cleaned<'a> {
            removed: &'a [&'a str],
            failed: &'a [Value],
        }
        output::json(&Cleaned {
            removed: &removed,
            failed: &failed,
        });
    } else if removed.is_empty() && failed.is_empty() {
        output::line("Nothing to clean.");
    }
    if !failed.is_empty() {
        return Err(Failure::new(
            "clean failed",
            format!(
                "{} of {} sessions could not be removed",
                failed.len(),
                failed.len() + removed.len()
            ),
        ));
    }
    Ok(())
}

/// `telepty list` with peers configured: every host's sessions, with a HOST column (`--json`:
/// a `host` field on each object). Unreachable hosts are reported on stderr.
pub(crate) async fn list_all_hosts(ctx: &mut Ctx, json_out: bool) -> Result<(), Failure> {
    let hosts = ctx.hosts().await?;
    let answers =
        futures_util::future::join_all(hosts.iter().map(crate::client::Host::sessions)).await;
    let mut all: Vec<Value> = Vec::new();
    let mut down: Vec<Unreachable> = Vec::new();
    let mut failed = 0;
    for (h, r) in hosts.iter().zip(answers) {
        match r {
            Ok(list) => {
                for mut sess in list {
                    if let Value::Object(m) = &mut sess {
                        m.insert("host".into(), Value::String(h.label.clone()));
                    }
                    all.push(sess);
                }
            }
            Err(e) => {
                failed += 1;
                let why = super::peers::describe_peer_error(&e);
                eprintln!(
                    "telepty: {} ({}): {why}",
                    if h.local {
                        "local daemon".to_string()
                    } else {
                        format!("peer {}", h.label)
                    },
                    h.client.addr().authority(),
                );
                // A script must tell "down" from "no sessions": the host is in the JSON too.
                down.push(Unreachable {
                    host: &h.label,
                    error: why,
                });
            }
        }
    }
    if failed == hosts.len() {
        return Err(Failure::new("list failed", "no daemon answered"));
    }
    if json_out {
        all.extend(down.iter().filter_map(|d| serde_json::to_value(d).ok()));
        output::json(&all);
    } else {
        print_sessions(&all, true);
    }
    Ok(())
}

/// A host of `list --json` that did not answer: `{host, error}` among the sessions.
#[derive(serde::Serialize)]
struct Unreachable<'a> {
    host: &'a str,
    error: String,
}
