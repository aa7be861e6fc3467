//! Output: read-screen and wait.

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail, s, value_name};
use crate::client::{ScreenQuery, WAIT_DEFAULT_MS, WAIT_MAX_MS, WaitRequest};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScreenFormat {
    Text,
    Ansi,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty read-screen worker-1 --lines 20")]
pub struct ReadScreenArgs {
    /// Session id (or alias), optionally id@host
    pub target: String,
    /// Number of rows (from the bottom) [daemon default: 50]
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub lines: Option<u32>,
    /// Raw output lines instead of the rendered screen
    #[arg(long)]
    pub raw: bool,
    /// Rendering: text, ansi (with colours) or json (rows, cursor, title)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ScreenFormat>,
    /// Print the daemon's whole JSON answer
    #[arg(long)]
    pub json: bool,
}

pub async fn read_screen(ctx: &mut Ctx, a: ReadScreenArgs) -> Result<(), Failure> {
    let (client, target) = ctx.session_target(&a.target, "read-screen").await?;
    let q = ScreenQuery {
        lines: a.lines,
        raw: a.raw,
        format: a.format.map(|f| value_name(&f)),
    };
    let resp = client.screen(&target.id, &q).await.or_fail("read-screen")?;
    if a.json || a.format == Some(ScreenFormat::Json) || resp.get("screen").is_none() {
        output::json(&resp);
    } else {
        output::text_block(s(&resp, "screen"));
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty wait worker-1 --pattern '\\$ $' --timeout-ms 30000")]
pub struct WaitArgs {
    /// Session id (or alias), optionally id@host
    pub target: String,
    /// Regular expression (Rust regex syntax) to wait for; without it, wait for quiet
    #[arg(long, short = 'p', value_name = "RE")]
    pub pattern: Option<String>,
    /// Wait until the session is in this state instead (what `list` shows)
    #[arg(long, value_name = "STATE", conflicts_with = "pattern",
          value_parser = ["working", "waiting", "idle", "stuck", "exited"])]
    pub state: Option<String>,
    /// Quiet time that counts as settled, without --pattern [daemon default: 300]
    #[arg(long, value_name = "N")]
    pub settle_ms: Option<u64>,
    /// Give up after this long [default: 10000, max 300000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=WAIT_MAX_MS))]
    pub timeout_ms: Option<u64>,
    /// Only output newer than this screen generation can match
    #[arg(long, value_name = "G")]
    pub since_generation: Option<u64>,
    /// Match the output stream instead of the rendered screen
    #[arg(long)]
    pub stream: bool,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

/// What a finished wait means: `Ok(Some(text))` to print, `Ok(None)` success with nothing to
/// print, `Err(why)` for exit 1.
pub(crate) fn wait_outcome(
    resp: &Value,
    a: &WaitArgs,
    label: &str,
) -> Result<Option<String>, String> {
    let flag = |k: &str| resp.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("matched") {
        return Ok(resp["match"].as_str().map(str::to_string));
    }
    if a.pattern.is_none() && a.state.is_none() && flag("settled") {
        return Ok(None);
    }
    let what = match (&a.pattern, &a.state) {
        (Some(p), _) => format!("/{p}/ did not appear in {label}"),
        (None, Some(st)) => format!("{label} did not become {st}"),
        (None, None) => format!("{label} did not settle"),
    };
    if flag("exited") {
        return Err(match (&a.pattern, &a.state) {
            (Some(p), _) => format!("session {label} exited before /{p}/ appeared"),
            (None, Some(st)) => format!("session {label} exited before it was {st}"),
            (None, None) => format!("session {label} exited"),
        });
    }
    if flag("timed_out") {
        let ms = a.timeout_ms.unwrap_or(WAIT_DEFAULT_MS);
        return Err(format!("timed out after {ms} ms: {what}"));
    }
    Err(format!("wait ended without a match: {what}"))
}

pub async fn wait(ctx: &mut Ctx, a: WaitArgs) -> Result<(), Failure> {
    let (client, target) = ctx.session_target(&a.target, "wait").await?;
    let req = WaitRequest {
        pattern: a.pattern.clone(),
        state: a.state.as_deref().and_then(|s| s.parse().ok()),
        settle_ms: a.settle_ms,
        timeout_ms: a.timeout_ms,
        since_generation: a.since_generation,
        scope: a.stream.then(|| "stream".to_string()),
        include_screen: if a.json { None } else { Some(false) },
    };
    let resp = client.wait(&target.id, &req).await.or_fail("wait")?;
    if a.json {
        output::json(&resp);
    }
    let text =
        wait_outcome(&resp, &a, &target.label()).map_err(|why| Failure::new("wait failed", why))?;
    if let (Some(t), false) = (text, a.json) {
        output::text_block(&t);
    }
    Ok(())
}
