//! `telepty tui`: the dashboard (embedded engine + API, or a mirror of a running daemon).

use clap::Args;

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty tui --theme light   (press ? inside for every key)")]
pub struct TuiArgs {
    /// Address to serve on, and of a running daemon to mirror [env: HOST; file: [daemon] host;
    /// default 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port [env: PORT, then TELEPTY_PORT; file: [daemon] port; default 3848]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Theme: dark, light, high-contrast, or a file in ~/.config/telepty/themes/ [file: theme]
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Show that daemon's sessions alone, without starting an engine here: a peer's name or
    /// HOST[:PORT]
    #[arg(long, value_name = "HOST", conflicts_with_all = ["host", "port", "no_peers"])]
    pub connect: Option<String>,
    /// Only this machine's sessions: leave the peers' (`telepty peers list`) out of the grid
    #[arg(long)]
    pub no_peers: bool,
}

pub fn run(a: TuiArgs) -> i32 {
    crate::util::tune_allocator();
    crate::tui::run(crate::tui::TuiOptions {
        host: a.host,
        port: a.port,
        theme: a.theme,
        connect: a.connect,
        no_peers: a.no_peers,
    })
}
