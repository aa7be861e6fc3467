//! `telepty up [FILE]`: start the agents a project file lists (as mprocs.yaml, tmuxp or a
//! compose file do), idempotently: a running session is left alone, a missing or exited one is
//! started, nothing is ever stopped. The file's format: [`crate::config::project`].

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use super::output::{self, Failure, OrFail};
use crate::client::SpawnRequest;
use crate::config::project::{DEFAULT_FILE, Plan, load, plan};

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty up            (reads ./telepty.toml)")]
pub struct UpArgs {
    /// The project file [default: ./telepty.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub async fn run(ctx: &mut Ctx, a: UpArgs) -> Result<(), Failure> {
    let path = a.file.unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    let agents = load(&path).map_err(|e| Failure::new("up failed", e))?;
    let mut failed = 0;
    for (agent, argv, cwd) in agents {
        let (client, target) = ctx.target(&agent.id).await?;
        let existing = client.session(&target.id).await.ok();
        let exited = |s: &serde_json::Value| s.get("exitedAt").is_some_and(|v| !v.is_null());
        let plan = plan(existing.as_ref().map(exited));
        if plan == Plan::LeaveRunning {
            output::line(format!("running   {}", target.label()));
            continue;
        }
        let req = SpawnRequest {
            session_id: target.id.clone(),
            command: argv[0].clone(),
            args: argv[1..].to_vec(),
            cwd: Some(cwd),
            cols: agent.cols,
            rows: agent.rows,
            record: agent.record,
            profile: agent.profile.clone(),
            env: agent.env.clone(),
            ..Default::default()
        };
        match client.spawn(&req).await.or_fail("spawn") {
            Ok(_) => {
                let verb = if plan == Plan::Restart {
                    "restarted"
                } else {
                    "started  "
                };
                output::line(format!("{verb} {}  ({})", target.label(), argv.join(" ")));
            }
            Err(f) => {
                failed += 1;
                output::line(format!("FAIL      {}: {}", target.label(), f.line));
            }
        }
    }
    if failed > 0 {
        return Err(Failure::new(
            "up failed",
            format!("{failed} agent(s) did not start"),
        ));
    }
    Ok(())
}
