//! `telepty up [FILE]`: start the agents a project file lists (as mprocs.yaml, tmuxp or a
//! compose file do), idempotently: a running session is left alone, a missing or exited one is
//! started, nothing is ever stopped.
//!
//! ```toml
//! [[agent]]
//! id = "claude-main"
//! command = "claude --model opus"   # a string (split like a shell) or ["claude", "--model", "opus"]
//! cwd = "app"                       # relative to this file's directory; default: that directory
//! env = { ANTHROPIC_LOG = "debug" }
//! profile = "claude"                # default: chosen by the command
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use super::Ctx;
use super::output::{self, Failure, OrFail};
use crate::client::SpawnRequest;

pub const DEFAULT_FILE: &str = "telepty.toml";

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty up            (reads ./telepty.toml)")]
pub struct UpArgs {
    /// The project file [default: ./telepty.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default, rename = "agent")]
    agents: Vec<Agent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Agent {
    id: String,
    command: Command,
    #[serde(default)]
    args: Vec<String>,
    cwd: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    profile: Option<String>,
    cols: Option<u16>,
    rows: Option<u16>,
    #[serde(default)]
    record: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Command {
    Line(String),
    Argv(Vec<String>),
}

/// What `up` does for one agent.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    LeaveRunning,
    Start,
    Restart,
}

fn plan(existing: Option<&serde_json::Value>) -> Plan {
    match existing {
        None => Plan::Start,
        Some(s) if s.get("exitedAt").is_some_and(|v| !v.is_null()) => Plan::Restart,
        Some(_) => Plan::LeaveRunning,
    }
}

/// The file, parsed and checked: every agent's argv and absolute directory.
fn load(path: &Path) -> Result<Vec<(Agent, Vec<String>, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: ProjectFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(1);
        format!("{}:{line}: {}", path.display(), e.message())
    })?;
    if file.agents.is_empty() {
        return Err(format!("{}: no [[agent]] entries", path.display()));
    }
    let base = std::path::absolute(path)
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for a in file.agents {
        if !seen.insert(a.id.clone()) {
            return Err(format!(
                "{}: agent {:?} is listed twice",
                path.display(),
                a.id
            ));
        }
        let mut argv = match &a.command {
            Command::Line(l) => shell_words::split(l)
                .map_err(|e| format!("{}: agent {}: command: {e}", path.display(), a.id))?,
            Command::Argv(v) => v.clone(),
        };
        if argv.first().is_none_or(|c| c.trim().is_empty()) {
            return Err(format!("{}: agent {}: empty command", path.display(), a.id));
        }
        argv.extend(a.args.iter().cloned());
        let cwd = match a.cwd.as_deref() {
            None => base.clone(),
            Some(c) => match c.strip_prefix("~/") {
                Some(rest) => crate::config::Paths::from_env().home.join(rest),
                None => base.join(c),
            },
        };
        out.push((a, argv, cwd.display().to_string()));
    }
    Ok(out)
}

pub async fn run(ctx: &mut Ctx, a: UpArgs) -> Result<(), Failure> {
    let path = a.file.unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    let agents = load(&path).map_err(|e| Failure::new("up failed", e))?;
    let mut failed = 0;
    for (agent, argv, cwd) in agents {
        let (client, target) = ctx.target(&agent.id).await?;
        let existing = client.session(&target.id).await.ok();
        let plan = plan(existing.as_ref());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans() {
        assert_eq!(plan(None), Plan::Start);
        assert_eq!(plan(Some(&json!({"exitedAt": null}))), Plan::LeaveRunning);
        assert_eq!(
            plan(Some(&json!({"exitedAt": "2026-01-01T00:00:00Z"}))),
            Plan::Restart
        );
    }

    #[test]
    fn files_parse_with_lines_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("telepty.toml");
        std::fs::write(
            &f,
            "[[agent]]\nid = \"a\"\ncommand = \"claude --model 'big one'\"\ncwd = \"app\"\n\n[[agent]]\nid = \"b\"\ncommand = [\"bash\", \"-l\"]\nargs = [\"-i\"]\n",
        )
        .unwrap();
        let agents = load(&f).unwrap();
        assert_eq!(agents[0].1, ["claude", "--model", "big one"]);
        assert!(agents[0].2.ends_with("/app"));
        assert_eq!(agents[1].1, ["bash", "-l", "-i"]);
        std::fs::write(&f, "[[agent]]\nid = \"a\"\ncomand = \"x\"\n").unwrap();
        let e = load(&f).unwrap_err();
        assert!(e.contains("telepty.toml:3:"), "{e}");
        std::fs::write(
            &f,
            "[[agent]]\nid = \"a\"\ncommand = \"x\"\n[[agent]]\nid = \"a\"\ncommand = \"y\"\n",
        )
        .unwrap();
        assert!(load(&f).unwrap_err().contains("listed twice"));
    }
}
