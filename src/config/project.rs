//! Project files (`telepty.toml`): the agents `telepty up` and the dashboard's `:up` start,
//! parsed and checked in one place so both read a file the same way.
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
use std::path::Path;

use serde::Deserialize;

pub const DEFAULT_FILE: &str = "telepty.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default, rename = "agent")]
    agents: Vec<Agent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: String,
    command: Command,
    #[serde(default)]
    args: Vec<String>,
    cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub profile: Option<String>,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    #[serde(default)]
    pub record: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Command {
    Line(String),
    Argv(Vec<String>),
}

/// What `up` does for one agent.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    LeaveRunning,
    Start,
    Restart,
}

/// `existing`: whether a session of that id exists, and then whether it has exited. Running
/// ones are left alone (idempotent), exited ones started again, nothing is ever stopped.
pub fn plan(existing: Option<bool>) -> Plan {
    match existing {
        None => Plan::Start,
        Some(true) => Plan::Restart,
        Some(false) => Plan::LeaveRunning,
    }
}

/// The file, parsed and checked: every agent's argv and absolute directory.
pub fn load(path: &Path) -> Result<Vec<(Agent, Vec<String>, String)>, String> {
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
                Some(rest) => super::Paths::from_env().home.join(rest),
                None => base.join(c),
            },
        };
        out.push((a, argv, cwd.display().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(plan(None), Plan::Start);
        assert_eq!(plan(Some(false)), Plan::LeaveRunning);
        assert_eq!(plan(Some(true)), Plan::Restart);
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
