//! `telepty resurrect`: list, restart or forget the sessions lost in a reboot.

use clap::Args;
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail, s};

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty resurrect --list   (then: telepty resurrect, or telepty resurrect --forget ID)\n\
        Resume arguments per command come from [resume] in config.toml (claude --continue, codex resume --last, gemini --resume latest)."
)]
pub struct ResurrectArgs {
    /// Lost sessions to restart (or to forget); all lost sessions when none are given
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Only list the lost sessions and what a resurrection would run
    #[arg(long, conflicts_with = "forget")]
    pub list: bool,
    /// Drop the given lost sessions from the saved state instead of restarting them
    #[arg(long, requires = "ids")]
    pub forget: bool,
    /// Print the daemon's JSON answer
    #[arg(long)]
    pub json: bool,
}

fn argv_text(command: &str, args: &Value) -> String {
    let args = args.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut words = vec![command];
    words.extend(args.iter().filter_map(Value::as_str));
    words.join(" ")
}

/// The `--list` table: one line per lost session.
pub(crate) fn lost_text(lost: &[Value], home: Option<&str>) -> String {
    if lost.is_empty() {
        return "No lost sessions.\n".into();
    }
    let mut out = format!(
        "{} lost session{} (not running since the last restart):\n",
        lost.len(),
        if lost.len() == 1 { "" } else { "s" }
    );
    for l in lost {
        let size = match (l.get("cols"), l.get("rows")) {
            (Some(c), Some(r)) => format!("{c}x{r}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {}  {}  in {}  {size}\n",
            s(l, "id"),
            argv_text(s(l, "command"), &l["resurrectArgs"]),
            output::tilde(s(l, "cwd"), home),
        ));
    }
    out.push_str("`telepty resurrect` restarts them; `telepty resurrect --forget ID` drops one.\n");
    out
}

pub async fn run(ctx: &mut Ctx, a: ResurrectArgs) -> Result<(), Failure> {
    let client = ctx.local().await?;
    if a.list {
        let lost = client.lost_sessions().await.or_fail("resurrect")?;
        let list = lost.as_array().cloned().unwrap_or_default();
        if a.json {
            output::json(&list);
        } else {
            let home = std::env::var("HOME").ok();
            output::text_block(&lost_text(&list, home.as_deref()));
        }
        return Ok(());
    }
    // Without ids: every lost session (none lost: an empty result list).
    let resp = client
        .resurrect(&a.ids, a.forget)
        .await
        .or_fail("resurrect")?;
    let results = resp["results"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = results.iter().filter(|r| r["success"] != true).collect();
    if a.json {
        output::json(&resp);
    } else {
        if results.is_empty() {
            output::line("No lost sessions.");
        }
        let home = std::env::var("HOME").ok();
        for r in &results {
            let id = s(r, "id");
            let text = match (r["success"] == true, s(r, "status")) {
                (true, "forgotten") => format!("Forgot {id}"),
                (true, _) => format!(
                    "Resurrected {id}: {} in {}",
                    argv_text(s(r, "command"), &r["args"]),
                    output::tilde(s(r, "cwd"), home.as_deref())
                ),
                (false, _) => format!("Failed {id}: {}", s(r, "error")),
            };
            output::line(text);
        }
    }
    if !failed.is_empty() {
        return Err(Failure::new(
            "resurrect failed",
            format!(
                "{} of {} did not {}",
                failed.len(),
                results.len(),
                if a.forget { "drop" } else { "start" }
            ),
        ));
    }
    Ok(())
}
