//! Command-line entry points.
//!
//! Exit codes: 0 success; 1 failure (one `telepty: <what failed>: <why>` line on stderr);
//! 2 usage errors. Client commands run on a current-thread runtime; `daemon` builds its own
//! multi-thread runtime.

mod allow;
mod attach;
mod completions;
mod config_cmd;
mod coord;
mod daemon;
mod events;
mod info;
mod input;
mod kitty;
mod mcp;
mod output;
mod pair;
mod peers;
mod record;
mod reply;
mod resurrect;
mod screen;
mod service;
mod sessions;
mod tui;
mod up;

use clap::{Parser, Subcommand};

use crate::client::{self, Client, ClientEnv, Target};
use output::{Failure, OrFail};

/// Supervise and drive interactive terminal sessions through the telepty daemon.
#[derive(Parser, Debug)]
#[command(
    name = "telepty",
    version,
    arg_required_else_help = true,
    after_help = "Every session argument also accepts id@host[:port] to address another daemon.\n\
                  Environment: TELEPTY_HOST, TELEPTY_PORT, TELEPTY_TOKEN, TELEPTY_SESSION_ID, TELEPTY_CONFIG;\n\
                  the daemon's address falls back to [daemon] of config.toml."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon in the foreground
    Daemon(daemon::DaemonArgs),
    /// The dashboard: a live grid of every session, with a command palette
    Tui(tui::TuiArgs),
    /// Start a command in a new daemon-owned PTY session
    Spawn(sessions::SpawnArgs),
    /// Step into a session's terminal (detach with ctrl+], the session keeps running)
    Attach(attach::AttachArgs),
    /// List sessions
    #[command(visible_alias = "ls")]
    List(sessions::ListArgs),
    /// Type text into a session (and press Enter)
    Inject(input::InjectArgs),
    /// Press Enter in a session
    Enter(input::EnterArgs),
    /// Send named keys (ctrl+c, up, enter, …) to a session
    Keys(input::KeysArgs),
    /// Type text into several sessions
    Multicast(input::MulticastArgs),
    /// Type text into every session
    Broadcast(input::BroadcastArgs),
    /// Press Enter in every session
    SubmitAll(input::SubmitAllArgs),
    /// Rename a session
    Rename(sessions::RenameArgs),
    /// Print what a session's terminal shows
    ReadScreen(screen::ReadScreenArgs),
    /// Wait for a pattern on a session's screen, or for its output to settle
    Wait(screen::WaitArgs),
    /// Stop a session and remove it
    #[command(visible_alias = "delete")]
    Kill(sessions::KillArgs),
    /// Show the daemon's status, or one session's
    Status(info::StatusArgs),
    /// Remove exited and stale sessions
    Clean(sessions::CleanArgs),
    /// Restart sessions lost in a reboot (same id, command, cwd, size; agents resume), or
    /// list (--list) or forget (--forget) them
    Resurrect(resurrect::ResurrectArgs),
    /// Start the agents a project file lists (./telepty.toml): missing or exited ones start,
    /// running ones are left alone
    Up(up::UpArgs),
    /// Follow bus events, one readable line each
    Monitor(events::MonitorArgs),
    /// Follow bus events as JSON lines
    Listen(events::ListenArgs),
    /// Print the version
    Version(info::VersionArgs),
    /// Arrange kitty tabs holding sessions: grid, tall, stack, … (no layout: show)
    Layout(kitty::LayoutArgs),
    /// kitty windows of sessions: open, focus, list
    Kitty(kitty::KittyArgs),
    /// Run a command in this terminal as a wrapped session that accepts injects
    #[command(visible_aliases = ["wrap", "enable"])]
    Allow(allow::AllowArgs),
    /// Answer whoever last injected into this session ($TELEPTY_SESSION_ID)
    Reply(reply::ReplyArgs),
    /// Remote daemons: list, add, remove, check
    Peers(peers::PeersArgs),
    /// Make this machine and another each other's peers, with a one-time code
    Pair(pair::PairArgs),
    /// Handoffs between sessions: list, drop, claim, status, get
    Handoff(coord::HandoffArgs),
    /// Open a deliberation thread and inject its topic into each participant
    Deliberate(coord::DeliberateArgs),
    /// Report this session's phase, task and blockers ($TELEPTY_SESSION_ID)
    StatusReport(coord::StatusReportArgs),
    /// The configuration file: path, show (effective values and their source), init
    Config(config_cmd::ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish)
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff)
    Man(completions::ManArgs),
    /// Run the daemon as a user service: install, uninstall, status
    Service(service::ServiceArgs),
    /// Session recordings (asciicast v2): list, path
    Record(record::RecordArgs),
    /// Model Context Protocol server on stdio (tools: session_list, session_spawn,
    /// session_inject, …); `mcp install` configures Claude Code, Codex or Gemini CLI
    Mcp(mcp::McpArgs),
}

/// Run the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    match Cli::try_parse() {
        Ok(cli) => run(cli),
        Err(e) => {
            let _ = e.print();
            e.exit_code()
        }
    }
}

/// Run a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Daemon(args) => daemon::run(args),
        Command::Tui(args) => tui::run(args),
        Command::Allow(args) => allow::run(args),
        Command::Config(a) => finish(config_cmd::run(a)),
        Command::Completions(a) => finish(completions::completions(a)),
        Command::Man(a) => finish(completions::man(a)),
        Command::Service(a) => finish(service::run(a)),
        Command::Record(a) => finish(record::run(a)),
        Command::Mcp(a) => mcp::run(a),
        command => match runtime(false) {
            Ok(rt) => finish(rt.block_on(client_command(command))),
            Err(code) => code,
        },
    }
}

/// The commands that are clients of a daemon, on the current-thread runtime.
async fn client_command(command: Command) -> Result<(), Failure> {
    let mut ctx = Ctx::new();
    match command {
        Command::Spawn(a) => sessions::spawn(&mut ctx, a).await,
        Command::Attach(a) => attach::attach(&mut ctx, a).await,
        Command::List(a) => sessions::list(&mut ctx, a).await,
        Command::Inject(a) => input::inject(&mut ctx, a).await,
        Command::Enter(a) => input::enter(&mut ctx, a).await,
        Command::Keys(a) => input::keys(&mut ctx, a).await,
        Command::Multicast(a) => input::multicast(&mut ctx, a).await,
        Command::Broadcast(a) => input::broadcast(&mut ctx, a).await,
        Command::SubmitAll(a) => input::submit_all(&mut ctx, a).await,
        Command::Rename(a) => sessions::rename(&mut ctx, a).await,
        Command::ReadScreen(a) => screen::read_screen(&mut ctx, a).await,
        Command::Wait(a) => screen::wait(&mut ctx, a).await,
        Command::Kill(a) => sessions::kill(&mut ctx, a).await,
        Command::Status(a) => info::status(&mut ctx, a).await,
        Command::Clean(a) => sessions::clean(&mut ctx, a).await,
        Command::Resurrect(a) => resurrect::run(&mut ctx, a).await,
        Command::Up(a) => up::run(&mut ctx, a).await,
        Command::Monitor(a) => events::monitor(&mut ctx, a).await,
        Command::Listen(a) => events::listen(&mut ctx, a).await,
        Command::Version(a) => info::version(&mut ctx, a).await,
        Command::Layout(a) => kitty::run_layout(&mut ctx, a).await,
        Command::Kitty(a) => kitty::run_kitty(&mut ctx, a).await,
        Command::Reply(a) => reply::run_reply(&mut ctx, a).await,
        Command::Peers(a) => peers::run_peers(&mut ctx, a).await,
        Command::Pair(a) => pair::pair(&mut ctx, a).await,
        Command::Handoff(a) => coord::run_handoff(&mut ctx, a).await,
        Command::Deliberate(a) => coord::run_deliberate(&mut ctx, a).await,
        Command::StatusReport(a) => coord::run_status_report(&mut ctx, a).await,
        // Run by `run` itself, never here.
        _ => Ok(()),
    }
}

/// The async runtime for a command: one thread for clients and the bridge, several for the
/// daemon. On failure the error is printed and the exit code returned.
pub(crate) fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, i32> {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().map_err(|e| {
        eprintln!("telepty: cannot start the async runtime: {e}");
        1
    })
}

/// The exit code of a command's result (its failure line printed).
fn finish(result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("{}", f.line);
            f.code
        }
    }
}

/// Per-invocation state: the client environment, the local daemon client (started on first
/// use) and the peers.
pub(crate) struct Ctx {
    conn: client::Connector,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            conn: client::Connector::new(ClientEnv::from_env()),
        }
    }

    fn env(&self) -> &ClientEnv {
        &self.conn.env
    }

    /// The local daemon's port (for naming this machine's sessions to other hosts).
    fn local_port(&mut self) -> u16 {
        self.conn
            .local_client()
            .map_or(client::addr::DEFAULT_PORT, |c| c.addr().port)
    }

    /// The daemon chosen by the environment, without starting anything.
    fn local_client(&mut self) -> Result<Client, Failure> {
        self.conn.local_client().map_err(Failure::plain)
    }

    /// The daemon chosen by the environment, started first if it is local and not running.
    async fn local(&mut self) -> Result<Client, Failure> {
        self.conn.local().await.or_fail("start")
    }

    /// A session argument (`id` or `id@host`) and a client of its daemon. Local targets get
    /// the daemon started on demand; remote ones never do.
    async fn target(&mut self, spec: &str) -> Result<(Client, Target), Failure> {
        self.conn.target(spec).await.map_err(connect_failure)
    }

    /// Several session arguments, grouped by daemon (see [`client::Connector::group_targets`]).
    async fn targets(
        &mut self,
        specs: &[&str],
    ) -> Result<(Vec<client::TargetGroup>, Vec<(usize, usize)>), Failure> {
        self.conn
            .group_targets(specs)
            .await
            .map_err(connect_failure)
    }
}

pub(crate) fn connect_failure(e: client::ConnectError) -> Failure {
    match e {
        client::ConnectError::Invalid { .. } => Failure::usage(e),
        client::ConnectError::Daemon(e) => Failure::client("start", e),
        e => Failure::plain(e),
    }
}

#[cfg(test)]
mod tests;
