//! `telepty reply`: answer whoever last injected into the calling session; and the CLI side
//! of `--ref` (API.md §15) used by `inject` and `broadcast`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail, s_or};
use crate::client::shared_ref;
use crate::client::{InjectRequest, Target};
use crate::config::Paths;

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty reply done, 3 tests fixed   (inside a telepty session)")]
pub struct ReplyArgs {
    /// This session's id [default: $TELEPTY_SESSION_ID]
    #[arg(long = "from", value_name = "ID", env = "TELEPTY_SESSION_ID")]
    pub session: Option<String>,
    /// Type the text without pressing Enter
    #[arg(long)]
    pub no_enter: bool,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
    /// Text to send; the words are joined with spaces
    #[arg(value_name = "TEXT", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub text: Vec<String>,
}

/// Who to answer: `lastInjectReplyTo`, else `lastInjectFrom`, of a session object.
pub(crate) fn reply_target(session: &Value) -> Option<String> {
    ["lastInjectReplyTo", "lastInjectFrom"]
        .iter()
        .filter_map(|k| session.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

pub async fn run_reply(ctx: &mut Ctx, a: ReplyArgs) -> Result<(), Failure> {
    let Some(me) = a.session.filter(|s| !s.trim().is_empty()) else {
        return Err(Failure::new(
            "reply failed",
            "TELEPTY_SESSION_ID is not set: reply only works inside a telepty session (or pass --from ID)",
        ));
    };
    let (c, own) = ctx.target(&me).await?;
    let info = c.session(&own.id).await.or_fail("reply")?;
    let own_id = s_or(&info, "id", &own.id).to_string();
    let Some(to) = reply_target(&info) else {
        return Err(Failure::new(
            "reply failed",
            format!("nobody has injected into {own_id} yet, so there is no one to reply to"),
        ));
    };
    let (tc, target) = ctx.target(&to).await?;
    let port = ctx.local_port();
    let req = InjectRequest {
        prompt: a.text.join(" "),
        no_enter: a.no_enter,
        from: Some(target.sender(&own_id, port)),
        ..Default::default()
    };
    let resp = tc.inject(&target.id, &req, false).await.or_fail("reply")?;
    output::json_or(a.json, &resp, || format!("Replied to {}", target.label()));
    Ok(())
}

/// What `--ref` will share: the payload, and (file mode) the message that follows the pointer
/// line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefPlan {
    pub payload: String,
    pub message: Option<String>,
}

fn ref_file(value: &str) -> Result<Option<PathBuf>, Failure> {
    let p = Path::new(value);
    if p.is_file() {
        return Ok(Some(p.to_path_buf()));
    }
    // Something that can only be a path but is not a readable file: say so instead of sending
    // it somewhere as text.
    if value.contains('/') || p.exists() {
        return Err(Failure::new(
            "--ref failed",
            format!("{value}: not a readable file"),
        ));
    }
    Ok(None)
}

/// `inject --ref [FILE] TARGET TEXT…`: the session argument and what to share. When the
/// `--ref` value is not a readable file it was the target (clap takes the first word after
/// `--ref` as its value), and TARGET starts the inline text.
pub(crate) fn plan_inject_ref(
    value: Option<&str>,
    target: &str,
    text: &[String],
) -> Result<(String, RefPlan), Failure> {
    if let Some(v) = value
        && ref_file(v)?.is_none()
    {
        let words = [&[target.to_string()], text].concat();
        return Ok((v.to_string(), plan_ref(None, &words)?));
    }
    Ok((target.to_string(), plan_ref(value, text)?))
}

/// `--ref [FILE] TEXT…`: a readable file is the payload (TEXT the message); otherwise the
/// value is the first word of the inline text.
pub(crate) fn plan_ref(value: Option<&str>, text: &[String]) -> Result<RefPlan, Failure> {
    Ok(match value.map(ref_file).transpose()?.flatten() {
        Some(f) => RefPlan {
            payload: shared_ref::read_payload(&f).map_err(|e| Failure::new("--ref failed", e))?,
            message: Some(text.join(" ")),
        },
        None => RefPlan {
            payload: value
                .into_iter()
                .chain(text.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            message: None,
        },
    })
}

/// Write the shared file and return the prompt to inject.
pub(crate) fn store_ref(plan: &RefPlan, action: &str) -> Result<String, Failure> {
    let stored = shared_ref::store(&Paths::from_env(), &plan.payload)
        .map_err(|e| Failure::new(&format!("{action} failed"), e))?;
    Ok(shared_ref::prompt(&stored.sha, plan.message.as_deref()))
}

/// Refuse `--ref` for an `id@host` target on another machine before anything is contacted.
pub(crate) async fn refuse_remote_ref(
    ctx: &mut Ctx,
    spec: &str,
    action: &str,
) -> Result<(), Failure> {
    if crate::client::split_target(spec).1.is_none() {
        return Ok(());
    }
    let peers = ctx.peer_list().await;
    let target = crate::client::resolve_target(spec, ctx.env(), &peers)
        .map_err(|e| Failure::usage(format!("invalid target {spec:?}: {e}")))?;
    if target.is_this_machine() {
        return Ok(());
    }
    Err(remote_ref_failure(&target, action))
}

fn remote_ref_failure(target: &Target, action: &str) -> Failure {
    Failure::new(
        &format!("{action} failed"),
        format!(
            "--ref cannot be used with {}: the shared file would only exist on this machine",
            target.label()
        ),
    )
}

/// [`store_ref`] for one resolved target; refused for another machine, where the shared file
/// would not exist.
pub(crate) fn ref_prompt(plan: &RefPlan, target: &Target, action: &str) -> Result<String, Failure> {
    if target.is_remote() && !target.is_this_machine() {
        return Err(remote_ref_failure(target, action));
    }
    store_ref(plan, action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_target_prefers_reply_to() {
        assert_eq!(
            reply_target(&json!({"lastInjectReplyTo": "orch", "lastInjectFrom": "x"})),
            Some("orch".into())
        );
        assert_eq!(
            reply_target(&json!({"lastInjectReplyTo": null, "lastInjectFrom": "x"})),
            Some("x".into())
        );
        assert_eq!(
            reply_target(&json!({"lastInjectReplyTo": "", "lastInjectFrom": null})),
            None
        );
        assert_eq!(reply_target(&json!({})), None);
    }

    #[test]
    fn inject_ref_forms() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ctx.md");
        std::fs::write(&f, "the context").unwrap();
        let fs = f.to_str().unwrap();
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        // --ref FILE TARGET message
        let (t, p) = plan_inject_ref(Some(fs), "w1", &words(&["do", "it"])).unwrap();
        assert_eq!(t, "w1");
        assert_eq!(p.payload, "the context");
        assert_eq!(p.message.as_deref(), Some("do it"));
        // --ref TARGET inline text (clap took TARGET as the value)
        let (t, p) = plan_inject_ref(Some("w1"), "long", &words(&["text"])).unwrap();
        assert_eq!(t, "w1");
        assert_eq!(p.payload, "long text");
        assert_eq!(p.message, None);
        // bare --ref
        let (t, p) = plan_inject_ref(None, "w1", &words(&["inline"])).unwrap();
        assert_eq!((t.as_str(), p.payload.as_str()), ("w1", "inline"));
        // a path that is not a file
        assert!(plan_inject_ref(Some("./missing/file.md"), "w1", &[]).is_err());

        let p = plan_ref(Some(fs), &words(&["go"])).unwrap();
        assert_eq!(
            (p.payload.as_str(), p.message.as_deref()),
            ("the context", Some("go"))
        );
        let p = plan_ref(Some("hello"), &words(&["world"])).unwrap();
        assert_eq!(p.payload, "hello world");
    }
}
