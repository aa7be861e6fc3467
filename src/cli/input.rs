//! Input: inject, enter, keys, multicast, broadcast, submit-all.

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail, s, s_or};
use crate::client::{ClientError, InjectRequest};
use crate::wire::{self, response::TargetFailed};

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty inject --from orchestrator worker-1 run the tests")]
pub struct InjectArgs {
    /// Type the text without pressing Enter
    #[arg(long)]
    pub no_enter: bool,
    /// Sender session id, for replies and the completion report
    #[arg(long, value_name = "ID", env = "TELEPTY_SESSION_ID")]
    pub from: Option<String>,
    /// Where replies should go [default: --from]
    #[arg(long, value_name = "ID")]
    pub reply_to: Option<String>,
    /// Thread id to record with the message
    #[arg(long, value_name = "ID")]
    pub thread_id: Option<String>,
    /// Return once the text (and Enter) were written, saying whether the screen confirms the
    /// submit (at most 30 s)
    #[arg(long)]
    pub wait: bool,
    /// Print the daemon's JSON answer (with the inject id)
    #[arg(long)]
    pub json: bool,
    /// An idempotency key of your choosing (letters, digits, . _ : -): retrying the same
    /// inject with the same key never types it twice
    #[arg(long, value_name = "KEY", value_parser = parse_inject_id)]
    pub inject_id: Option<String>,
    /// Store the text (or FILE's contents, then TEXT is an optional message) as
    /// ~/.telepty/shared/<sha256>.md and inject a one-line pointer to it
    #[arg(long = "ref", value_name = "FILE", num_args = 0..=1)]
    pub reference: Option<Option<String>>,
    /// Session id (or alias), optionally id@host
    pub target: String,
    /// Text to type; the words are joined with spaces ("" = Enter only)
    #[arg(value_name = "TEXT", required_unless_present = "reference", num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub text: Vec<String>,
}

pub async fn inject(ctx: &mut Ctx, a: InjectArgs) -> Result<(), Failure> {
    let plan = match &a.reference {
        Some(value) => Some(super::reply::plan_inject_ref(
            value.as_deref(),
            &a.target,
            &a.text,
        )?),
        None => None,
    };
    let spec = plan.as_ref().map_or(a.target.as_str(), |(t, _)| t.as_str());
    if plan.is_some() {
        super::reply::refuse_remote_ref(ctx, spec, "inject").await?;
    }
    let (client, target) = ctx.session_target(spec, "inject").await?;
    let prompt = match &plan {
        Some((_, p)) => super::reply::ref_prompt(p, &target, "inject")?,
        None => a.text.join(" "),
    };
    // Another machine gets `me@this-machine`, so its replies and reports can come back.
    let port = ctx.local_port();
    let req = InjectRequest {
        prompt,
        no_enter: a.no_enter,
        from: a
            .from
            .filter(|f| !f.is_empty())
            .map(|f| target.sender(&f, port)),
        reply_to: a.reply_to.map(|r| target.sender(&r, port)),
        thread_id: a.thread_id,
        // Always keyed: a retry after a lost answer is then answered, never typed twice.
        inject_id: Some(
            a.inject_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        ),
        ..Default::default()
    };
    let may_have_arrived = |r: &Result<Value, ClientError>| {
        matches!(
            r,
            Err(ClientError::Timeout { .. } | ClientError::BadResponse { .. })
        )
    };
    let mut sent = client.inject(&target.id, &req, a.wait).await;
    let retried = may_have_arrived(&sent);
    if retried {
        sent = client.inject(&target.id, &req, a.wait).await;
    }
    if may_have_arrived(&sent) {
        return Err(unknown_outcome(&target.label(), &req, sent, a.json));
    }
    let resp = sent.or_fail("inject")?;
    if a.json {
        output::json(&resp);
    } else if !retried && resp["duplicate"] == true {
        output::line(format!(
            "Already injected into {} (same inject id; not typed again)",
            target.label()
        ));
    } else if !a.wait {
        output::line(format!("Injected into {}", target.label()));
    } else if resp["outcome"] == "typed" && !a.no_enter {
        let why = resp["reason"].as_str().unwrap_or("no reason given");
        output::line(format!(
            "Typed into {} (not confirmed: {why})",
            target.label()
        ));
    } else if a.no_enter {
        output::line(format!("Typed into {}", target.label()));
    } else {
        output::line(format!("Submitted into {}", target.label()));
    }
    Ok(())
}

/// Twice no answer after sending: the text may or may not have been typed. Said as such
/// (exit 3), with the key that makes a later retry safe.
fn unknown_outcome(
    label: &str,
    req: &InjectRequest,
    sent: Result<Value, ClientError>,
    json: bool,
) -> Failure {
    let key = req.inject_id.as_deref().unwrap_or_default();
    let why = sent.err().map(|e| e.to_string()).unwrap_or_default();
    if json {
        output::json(&serde_json::json!({
            "success": false, "outcome": "unknown", "inject_id": key, "error": why,
        }));
    }
    Failure {
        code: 3,
        ..Failure::plain(format!(
            "inject into {label}: outcome unknown ({why}); it may have been delivered: repeat with --inject-id {key} to be sure it is typed once"
        ))
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty enter worker-1")]
pub struct EnterArgs {
    /// Session id (or alias), optionally id@host
    pub target: String,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

pub async fn enter(ctx: &mut Ctx, a: EnterArgs) -> Result<(), Failure> {
    let (client, target) = ctx.session_target(&a.target, "enter").await?;
    let resp = client.submit(&target.id).await.or_fail("enter")?;
    output::json_or(a.json, &resp, || {
        format!("Sent Enter to {}", target.label())
    });
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty keys worker-1 ctrl+c up enter")]
pub struct KeysArgs {
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
    /// Session id (or alias), optionally id@host
    pub target: String,
    /// Key names: ctrl+a…ctrl+z, enter, tab, shift+tab, escape, backspace, delete, insert,
    /// up, down, left, right, home, end, pageup, pagedown, f1…f12, ctrl+left, ctrl+right
    #[arg(value_name = "KEY", required = true, num_args = 1..)]
    pub keys: Vec<String>,
}

pub async fn keys(ctx: &mut Ctx, a: KeysArgs) -> Result<(), Failure> {
    let (client, target) = ctx.session_target(&a.target, "keys").await?;
    let resp = client.keys(&target.id, &a.keys).await.map_err(|e| {
        let valid = e.body().and_then(|b| b["valid_keys"].as_array());
        let names: Vec<&str> =
            valid.map_or(vec![], |v| v.iter().filter_map(Value::as_str).collect());
        let list = names.join(" ");
        if list.is_empty() {
            return Failure::client("keys", e);
        }
        Failure::new("keys failed", format!("{e}; valid keys: {list}"))
    })?;
    if a.json {
        output::json(&resp);
    } else {
        let n = resp["count"].as_u64().unwrap_or(a.keys.len() as u64);
        let plural = if n == 1 { "" } else { "s" };
        output::line(format!("Sent {n} key{plural} to {}", target.label()));
    }
    Ok(())
}

/// One line per target of a `{successful:[{id}], failed:[{id, code, error}]}` result.
pub(crate) fn result_line(entry: &Value, ok: bool, label: &str) -> String {
    if ok {
        format!("ok   {label}")
    } else {
        let code = s_or(entry, "code", "ERROR");
        format!("FAIL {label}: {code} {}", s(entry, "error"))
    }
}

/// A failed target as a fan-out answer lists it.
pub(crate) fn failure(id: &str, code: &str, error: String) -> Value {
    wire::value(&TargetFailed {
        id: id.to_string(),
        strategy: None,
        code: code.to_string(),
        error,
    })
}

/// The answers of several daemons as one fan-out answer (the entries as each daemon gave
/// them, `id` relabelled with its host).
#[derive(Serialize)]
struct Merged {
    success: bool,
    results: MergedLists,
}

#[derive(Serialize)]
struct MergedLists {
    successful: Vec<Value>,
    failed: Vec<Value>,
}

/// Every target of a fan-out answer as `(ok, entry)`, in the daemon's order.
fn entries(resp: &Value) -> Vec<(bool, Value)> {
    let list = |k: &str| resp["results"][k].as_array().cloned().unwrap_or_default();
    let ok = list("successful").into_iter().map(|e| (true, e));
    ok.chain(list("failed").into_iter().map(|e| (false, e)))
        .collect()
}

/// Print the targets' results, one line each (an entry's `id` is its label), or with --json
/// `answer` (a daemon's own) or else all entries as one fan-out answer; fail if any failed.
fn report(
    what: &str,
    entries: Vec<(bool, Value)>,
    json: bool,
    answer: Option<&Value>,
) -> Result<(), Failure> {
    let failed = entries.iter().filter(|(ok, _)| !ok).count();
    let total = entries.len();
    if let (true, Some(answer)) = (json, answer) {
        output::json(answer);
    } else if json {
        let (ok, bad): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(ok, _)| *ok);
        let values = |v: Vec<(bool, Value)>| v.into_iter().map(|(_, e)| e).collect();
        output::json(&Merged {
            success: true,
            results: MergedLists {
                successful: values(ok),
                failed: values(bad),
            },
        });
    } else if entries.is_empty() {
        output::line("No sessions.");
    } else {
        for (ok, e) in &entries {
            output::line(result_line(e, *ok, s(e, "id")));
        }
    }
    if failed == 0 {
        return Ok(());
    }
    let noun = if total == 1 { "target" } else { "targets" };
    Err(Failure::new(
        &format!("{what} failed"),
        format!("{failed} of {total} {noun} failed"),
    ))
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty multicast worker-1,worker-2@box git pull")]
pub struct MulticastArgs {
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
    /// Comma-separated exact session ids, each optionally id@host
    #[arg(value_name = "ID1,ID2")]
    pub ids: String,
    /// Text to type; the words are joined with spaces
    #[arg(value_name = "TEXT", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub text: Vec<String>,
}

/// Targets that live on the same daemon, in first-appearance order.
pub async fn multicast(ctx: &mut Ctx, a: MulticastArgs) -> Result<(), Failure> {
    let specs: Vec<&str> = a
        .ids
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    if specs.is_empty() {
        return Err(Failure::usage("multicast needs at least one session id"));
    }
    let prompt = a.text.join(" ");
    let (groups, order) = ctx.targets(&specs).await?;

    let mut answers: Vec<Result<Value, ClientError>> = Vec::new();
    for g in &groups {
        let ids: Vec<String> = g.targets.iter().map(|t| t.id.clone()).collect();
        answers.push(g.client.multicast(&ids, &prompt).await);
    }
    // One daemon: its failure is the command's failure; --json prints its answer as is.
    if let [only] = answers.as_slice()
        && (only.is_err() || a.json)
    {
        let resp = answers.remove(0).or_fail("multicast")?;
        return report("multicast", entries(&resp), true, Some(&resp));
    }

    // One line per target, in the order given; each takes the first entry left for its id in
    // its daemon's answer.
    let mut left: Vec<Vec<(bool, Value)>> = answers
        .iter()
        .map(|r| r.as_ref().map(entries).unwrap_or_default())
        .collect();
    let mut merged = Vec::new();
    for (gi, ti) in order {
        let target = &groups[gi].targets[ti];
        let (ok, mut entry) = match &answers[gi] {
            Err(e) => (
                false,
                failure(&target.id, e.code().unwrap_or("UNREACHABLE"), e.to_string()),
            ),
            Ok(_) => match left[gi].iter().position(|(_, e)| s(e, "id") == target.id) {
                Some(i) => left[gi].remove(i),
                None => (
                    false,
                    failure(
                        &target.id,
                        "NO_RESULT",
                        "the daemon reported nothing for this id".into(),
                    ),
                ),
            },
        };
        entry["id"] = Value::String(target.label());
        merged.push((ok, entry));
    }
    report("multicast", merged, a.json, None)
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty broadcast /compact")]
pub struct BroadcastArgs {
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
    /// Every session of every configured peer too (`telepty peers`)
    #[arg(long)]
    pub all_hosts: bool,
    /// Store the text (or FILE's contents, then TEXT is an optional message) as
    /// ~/.telepty/shared/<sha256>.md and inject a one-line pointer to it
    #[arg(long = "ref", value_name = "FILE", num_args = 0..=1)]
    pub reference: Option<Option<String>>,
    /// Text to type; the words are joined with spaces
    #[arg(value_name = "TEXT", required_unless_present = "reference", num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub text: Vec<String>,
}

pub async fn broadcast(ctx: &mut Ctx, a: BroadcastArgs) -> Result<(), Failure> {
    let prompt = match &a.reference {
        Some(value) => {
            if a.all_hosts && !ctx.peer_list().await.is_empty() {
                return Err(Failure::new(
                    "broadcast failed",
                    "--ref cannot reach other hosts (the shared file would only exist on this machine); drop --all-hosts or --ref",
                ));
            }
            let plan = super::reply::plan_ref(value.as_deref(), &a.text)?;
            super::reply::store_ref(&plan, "broadcast")?
        }
        None => a.text.join(" "),
    };
    if a.all_hosts {
        return broadcast_all_hosts(ctx, &prompt, a.json).await;
    }
    let client = ctx.local().await?;
    let resp = client.broadcast(&prompt).await.or_fail("broadcast")?;
    report("broadcast", entries(&resp), a.json, Some(&resp))
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty submit-all")]
pub struct SubmitAllArgs {
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

pub async fn submit_all(ctx: &mut Ctx, a: SubmitAllArgs) -> Result<(), Failure> {
    let client = ctx.local().await?;
    let resp = client.submit_all().await.or_fail("submit-all")?;
    report("submit-all", entries(&resp), a.json, Some(&resp))
}

fn parse_inject_id(s: &str) -> Result<String, String> {
    if crate::wire::request::valid_inject_id(s) {
        Ok(s.to_string())
    } else {
        Err("1-128 letters, digits, '.', '_', ':' or '-'".into())
    }
}

/// `telepty broadcast --all-hosts`: the same prompt to every session of every host. One line
/// per target (`id` locally, `id@peer` elsewhere); a host that fails is one FAIL line.
pub(crate) async fn broadcast_all_hosts(
    ctx: &mut Ctx,
    prompt: &str,
    json_out: bool,
) -> Result<(), Failure> {
    let hosts = ctx.hosts().await?;
    let sends = hosts.iter().map(|h| async move {
        if !h.local {
            crate::client::peers::probe(
                h.client.addr(),
                crate::client::peers::PEER_CONNECT_TIMEOUT,
            )
            .await?;
        }
        h.client.broadcast(prompt).await
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut merged = Vec::new();
    for (h, r) in hosts.iter().zip(answers) {
        match r {
            Ok(resp) => {
                for (ok, mut e) in entries(&resp) {
                    e["id"] = Value::String(h.address(s(&e, "id")));
                    e["host"] = Value::String(h.label.clone());
                    merged.push((ok, e));
                }
            }
            Err(e) => {
                let mut entry = failure(
                    &format!("@{}", h.label),
                    e.code().unwrap_or("UNREACHABLE"),
                    super::peers::describe_peer_error(&e),
                );
                entry["host"] = Value::String(h.label.clone());
                merged.push((false, entry));
            }
        }
    }
    report("broadcast", merged, json_out, None)
}
