//! `telepty daemon`: run the daemon in the foreground.

use clap::Args;

use super::examples;

#[derive(Args, Debug)]
#[command(after_help = examples::DAEMON)]
pub struct DaemonArgs {
    /// Address to bind [env: HOST; default 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on [env: PORT, then TELEPTY_PORT; default 3848]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
}

pub fn run(args: DaemonArgs) -> i32 {
    let opts = crate::api::DaemonOptions { host: args.host, port: args.port };
    let (host, port) = match crate::api::resolve_bind_with(&opts, |k| std::env::var(k).ok()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("telepty: {e}");
            return 2;
        }
    };
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("telepty: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async move {
        crate::api::run_daemon(crate::api::DaemonOptions { host: Some(host), port: Some(port) }).await
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "telepty: daemon failed: {}",
                format!("{e:#}").replace('\n', " ")
            );
            1
        }
    }
}

/// The daemon logs to stderr (a terminal, or `~/.telepty/logs/daemon.log` when the CLI started
/// it). `TELEPTY_LOG`, then `RUST_LOG`, filter; the default is `info`.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TELEPTY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
