//! Input: inject, enter, keys, multicast, broadcast, submit-all.

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::output::{self, Failure, OrFail, s};
use super::{Ctx, examples};
use crate::client::{ClientError, InjectRequest};
use crate::wire::{self, response::TargetFailed};

#[derive(Args, Debug)]
#[command(after_help = examples::INJECT)]
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
    let spec = plan
        .as_ref()
        .map_or(a.target.as_str(), |p| p.target.as_str());
    if plan.is_some() {
        super::reply::refuse_remote_ref(ctx, spec, "inject").await?;
    }
    let (client, target) = ctx.session_target(spec, "inject").await?;
    let prompt = match &plan {
        Some(p) => super::reply::ref_prompt(p, &target, "inject")?,
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
        inject_id: a.inject_id,
        ..Default::default()
    };
    let resp = client
        .inject(&target.id, &req, a.wait)
        .await
        .or_fail("inject")?;
    if a.json {
        output::json(&resp);
    } else if resp.get("duplicate").and_then(serde_json::Value::as_bool) == Some(true) {
        output::line(format!(
            "Already injected into {} (same inject id; not typed again)",
            target.label()
        ));
    } else if !a.wait {
        output::line(format!("Injected into {}", target.label()));
    } else if resp.get("outcome").and_then(Value::as_str) == Some("typed") && !a.no_enter {
        let why = resp
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
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

#[derive(Args, Debug)]
#[command(after_help = examples::ENTER)]
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
#[command(after_help = examples::KEYS)]
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
        let valid = e
            .body()
            .and_then(|b| b.get("valid_keys"))
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            });
        match valid {
            Some(list) if !list.is_empty() => {
                Failure::new("keys failed", format!("{e}; valid keys: {list}"))
            }
            _ => Failure::client("keys", e),
        }
    })?;
    if a.json {
        output::json(&resp);
    } else {
        let n = resp
            .get("count")
            .and_then(Value::as_u64)
            .unwrap_or(a.keys.len() as u64);
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
        let code = match s(entry, "code") {
            "" => "ERROR",
            c => c,
        };
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
pub(crate) struct Merged {
    success: bool,
    results: MergedLists,
}

#[derive(Serialize)]
struct MergedLists {
    successful: Vec<Value>,
    failed: Vec<Value>,
}

impl Merged {
    pub(crate) fn new(successful: Vec<Value>, failed: Vec<Value>) -> Merged {
        Merged {
            success: true,
            results: MergedLists { successful, failed },
        }
    }
}

pub(crate) fn results_lists(resp: &Value) -> (Vec<Value>, Vec<Value>) {
    let list = |k: &str| {
        resp.get("results")
            .and_then(|r| r.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    (list("successful"), list("failed"))
}

/// Print every entry of a results object (daemon order); returns (ok, failed) counts.
fn print_results(resp: &Value) -> (usize, usize) {
    let (ok, failed) = results_lists(resp);
    for e in &ok {
        output::line(result_line(e, true, s(e, "id")));
    }
    for e in &failed {
        output::line(result_line(e, false, s(e, "id")));
    }
    (ok.len(), failed.len())
}

pub(crate) fn partial_failure(what: &str, failed: usize, total: usize) -> Result<(), Failure> {
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
#[command(after_help = examples::MULTICAST)]
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
    if let [only] = answers.as_mut_slice() {
        // One daemon: its failure is the command's failure; --json prints its answer as is.
        if let Err(e) = only {
            let e = std::mem::replace(e, ClientError::BadAddress(String::new()));
            return Err(Failure::client("multicast", e));
        }
        if let (Ok(resp), true) = (&*only, a.json) {
            output::json(resp);
            let (ok, failed) = results_lists(resp);
            return partial_failure("multicast", failed.len(), ok.len() + failed.len());
        }
    }

    // One line per target, in the order given; entries taken from each daemon's answer.
    let mut used: Vec<Vec<bool>> = answers.iter().map(|_| Vec::new()).collect();
    let mut merged_ok = Vec::new();
    let mut merged_failed = Vec::new();
    let mut lines = Vec::new();
    for (gi, ti) in order {
        let target = &groups[gi].targets[ti];
        let label = target.label();
        let (ok, entry) = match &answers[gi] {
            Err(e) => (
                false,
                failure(&target.id, e.code().unwrap_or("UNREACHABLE"), e.to_string()),
            ),
            Ok(resp) => {
                let (succ, fail) = results_lists(resp);
                let all: Vec<(bool, Value)> = succ
                    .into_iter()
                    .map(|e| (true, e))
                    .chain(fail.into_iter().map(|e| (false, e)))
                    .collect();
                if used[gi].len() < all.len() {
                    used[gi].resize(all.len(), false);
                }
                match all
                    .iter()
                    .enumerate()
                    .find(|(i, (_, e))| !used[gi][*i] && s(e, "id") == target.id)
                {
                    Some((i, (ok, e))) => {
                        used[gi][i] = true;
                        (*ok, e.clone())
                    }
                    None => (
                        false,
                        failure(
                            &target.id,
                            "NO_RESULT",
                            "the daemon reported nothing for this id".into(),
                        ),
                    ),
                }
            }
        };
        lines.push(result_line(&entry, ok, &label));
        let mut entry = entry;
        entry["id"] = Value::String(label);
        if ok {
            merged_ok.push(entry)
        } else {
            merged_failed.push(entry)
        }
    }
    let total = merged_ok.len() + merged_failed.len();
    let failed = merged_failed.len();
    if a.json {
        output::json(&Merged::new(merged_ok, merged_failed));
    } else {
        for l in lines {
            output::line(l);
        }
    }
    partial_failure("multicast", failed, total)
}

#[derive(Args, Debug)]
#[command(after_help = examples::BROADCAST)]
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
            let plan = super::reply::plan_broadcast_ref(value.as_deref(), &a.text)?;
            super::reply::store_ref(&plan, "broadcast")?
        }
        None => a.text.join(" "),
    };
    if a.all_hosts {
        return broadcast_all_hosts(ctx, &prompt, a.json).await;
    }
    let client = ctx.local().await?;
    let resp = client.broadcast(&prompt).await.or_fail("broadcast")?;
    finish_results("broadcast", &resp, a.json)
}

#[derive(Args, Debug)]
#[command(after_help = examples::SUBMIT_ALL)]
pub struct SubmitAllArgs {
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

pub async fn submit_all(ctx: &mut Ctx, a: SubmitAllArgs) -> Result<(), Failure> {
    let client = ctx.local().await?;
    let resp = client.submit_all().await.or_fail("submit-all")?;
    finish_results("submit-all", &resp, a.json)
}

fn finish_results(what: &str, resp: &Value, json: bool) -> Result<(), Failure> {
    let (ok, failed) = if json {
        output::json(resp);
        let (ok, failed) = results_lists(resp);
        (ok.len(), failed.len())
    } else {
        let counts = print_results(resp);
        if counts == (0, 0) {
            output::line("No sessions.");
        }
        counts
    };
    partial_failure(what, failed, ok + failed)
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
    let mut ok_list = Vec::new();
    let mut failed_list = Vec::new();
    let mut lines = Vec::new();
    for (h, r) in hosts.iter().zip(answers) {
        match r {
            Ok(resp) => {
                let (successful, failed) = results_lists(&resp);
                for (ok, entries) in [(true, successful), (false, failed)] {
                    for mut e in entries {
                        let label = h.address(s(&e, "id"));
                        lines.push(result_line(&e, ok, &label));
                        e["id"] = Value::String(label);
                        e["host"] = Value::String(h.label.clone());
                        if ok {
                            ok_list.push(e);
                        } else {
                            failed_list.push(e);
                        }
                    }
                }
            }
            Err(e) => {
                let label = format!("@{}", h.label);
                let mut entry = failure(
                    &label,
                    e.code().unwrap_or("UNREACHABLE"),
                    super::peers::describe_peer_error(&e),
                );
                entry["host"] = Value::String(h.label.clone());
                lines.push(result_line(&entry, false, &label));
                failed_list.push(entry);
            }
        }
    }
    let total = ok_list.len() + failed_list.len();
    let failed = failed_list.len();
    if json_out {
        output::json(&Merged::new(ok_list, failed_list));
    } else if lines.is_empty() {
        output::line("No sessions.");
    } else {
        for l in lines {
            output::line(l);
        }
    }
    partial_failure("broadcast", failed, total)
}
