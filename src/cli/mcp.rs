//! `telepty mcp` (the MCP server on stdio) and `telepty mcp install` (client configuration).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::{self, Failure};
use crate::client::{ClientEnv, Connector};
use crate::config::Paths;
use crate::mcp::install::{self, McpClient, ServerEntry};

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty mcp install --client codex --write\n\
                           Example: claude mcp add --scope user telepty -- telepty mcp")]
pub struct McpArgs {
    #[command(subcommand)]
    pub action: Option<McpAction>,
}

#[derive(Subcommand, Debug)]
pub enum McpAction {
    /// Print (or, with --write, merge) the configuration that plugs `telepty mcp` into an
    /// agent CLI
    #[command(after_help = "Example: telepty mcp install --client claude --project --write")]
    Install(InstallArgs),
    /// Remove the entry from an agent CLI's configuration (the previous file is kept as
    /// <file>.telepty-backup)
    #[command(after_help = "Example: telepty mcp uninstall --client codex")]
    Uninstall(ClientFile),
}

/// Which agent CLI, and which of its files.
#[derive(Args, Debug)]
pub struct ClientFile {
    /// The agent CLI
    #[arg(long, value_enum)]
    pub client: McpClient,
    /// The project's file (.mcp.json, .gemini/settings.json) instead of the user's
    #[arg(long)]
    pub project: bool,
    /// The server's name in the client's configuration
    #[arg(long, default_value = "telepty")]
    pub name: String,
    /// This file instead of the client's usual one
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub target: ClientFile,
    /// Merge the entry into the client's configuration file instead of printing it (the
    /// previous file is kept as <file>.telepty-backup)
    #[arg(long)]
    pub write: bool,
    /// Replace a different entry of the same name
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: McpArgs) -> i32 {
    match args.action {
        Some(McpAction::Install(a)) => super::finish(run_install(a)),
        Some(McpAction::Uninstall(t)) => super::finish(run_uninstall(t)),
        None => serve(),
    }
}

fn serve() -> i32 {
    let paths = Paths::from_env();
    let log = super::service::init_logging(&paths, "mcp.log", false);
    let rt = match super::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // Injects say who sent them: the session this server runs in, when there is one, so a
    // reply (`telepty reply`) finds its way back.
    let from = std::env::var("TELEPTY_SESSION_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "mcp".into());
    let conn = Connector::new(ClientEnv::from_env());
    tracing::info!(log = ?log, %from, "mcp server starting on stdio");
    let Err(e) = rt.block_on(crate::mcp::serve_stdio(conn, from)) else {
        return 0;
    };
    tracing::error!("mcp server: {e:#}");
    eprintln!("telepty: mcp server failed: {e:#}");
    1
}

/// The client's configuration file: `--file`, else the usual one for the client and scope.
fn client_file(t: &ClientFile, what: &str) -> Result<PathBuf, Failure> {
    install::validate_name(&t.name).map_err(Failure::usage)?;
    if let Some(p) = &t.file {
        return Ok(p.clone());
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| Failure::new(what, "HOME is not set"))?;
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new(what, format!("no current directory: {e}")))?;
    let codex_home = std::env::var_os("CODEX_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    install::config_file(t.client, t.project, &home, &cwd, codex_home.as_deref())
        .map_err(Failure::usage)
}

fn run_install(a: InstallArgs) -> Result<(), Failure> {
    let path = client_file(&a.target, "mcp install")?;
    let t = &a.target;
    let entry =
        ServerEntry::for_this_executable(&t.name).map_err(|e| Failure::new("mcp install", e))?;
    if a.write {
        let msg = install::write(t.client, &path, &entry, a.force)
            .map_err(|e| Failure::new("mcp install", e))?;
        output::line(msg);
        return Ok(());
    }
    // The snippet alone on stdout (so it can be piped); where it goes, on stderr.
    eprintln!("# {}", hint(t.client, t.project, &path, &entry));
    output::text_block(&install::snippet(t.client, &entry));
    Ok(())
}

fn run_uninstall(t: ClientFile) -> Result<(), Failure> {
    let path = client_file(&t, "mcp uninstall")?;
    let msg = install::uninstall(t.client, &path, &t.name)
        .map_err(|e| Failure::new("mcp uninstall", e))?;
    output::line(msg);
    Ok(())
}

/// Where the printed snippet belongs, and the client's own command when it has one.
fn hint(client: McpClient, project: bool, path: &std::path::Path, entry: &ServerEntry) -> String {
    let file = path.display();
    match client {
        McpClient::Claude => {
            let scope = if project { "project" } else { "user" };
            format!(
                "merge into {file} (or run: claude mcp add --scope {scope} {} -- {} mcp), or rerun with --write",
                entry.name, entry.command
            )
        }
        McpClient::Codex => format!("append to {file}, or rerun with --write"),
        McpClient::Gemini => format!("merge into {file}, or rerun with --write"),
    }
}
