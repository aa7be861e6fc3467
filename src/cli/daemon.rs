//! `telepty daemon`: run the daemon in the foreground.

use clap::Args;

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty daemon --port 3848")]
pub struct DaemonArgs {
    /// Address to bind [env: HOST; file: [daemon] host; default 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on [env: PORT, then TELEPTY_PORT; file: [daemon] port; default 3848]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// On SIGTERM/SIGINT also end every session (by default they keep running in their
    /// holders and the next daemon adopts them)
    #[arg(long)]
    pub stop_sessions: bool,
    /// Take over the sessions of the daemon already running for this HOME (an in-place
    /// upgrade: it detaches and exits, this one adopts its live sessions)
    #[arg(long)]
    pub replace: bool,
}

pub fn run(args: DaemonArgs) -> i32 {
    crate::util::tune_allocator();
    let opts = crate::api::DaemonOptions {
        host: args.host,
        port: args.port,
    };
    let paths = crate::config::Paths::from_env();
    // Flags > env > file > defaults. An invalid config file (or PORT value) stops the daemon
    // with the line and key, never silent defaults.
    let (host, port) =
        match crate::api::resolve_bind_with(&opts, &paths.config_toml(), |k| std::env::var(k).ok())
        {
            Ok(v) => v,
            Err(e) => {
                eprintln!("telepty: invalid configuration: {e}");
                return 1;
            }
        };
    super::service::init_logging(&paths, "telepty.log", true);
    let rt = match super::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(crate::api::run_daemon(
        crate::api::DaemonOptions {
            host: Some(host),
            port: Some(port),
        },
        crate::api::RunFlags {
            stop_sessions: args.stop_sessions,
            replace: args.replace,
        },
    ));
    result.unwrap_or_else(|e| {
        let why = format!("{e:#}").replace('\n', " ");
        eprintln!("telepty: daemon failed: {why}");
        1
    })
}
