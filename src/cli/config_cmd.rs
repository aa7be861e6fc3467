//! `telepty config path|show|init`: the configuration file and the effective settings.

use clap::{Args, Subcommand};

use super::output::{self, Failure};
use crate::config::{Config, DEFAULT_CONFIG_TOML, Flags, KEYS, Paths};

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty config show",
    arg_required_else_help = true
)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print where the configuration file is (TELEPTY_CONFIG, else XDG)
    #[command(after_help = "Example: telepty config path")]
    Path,
    /// Print every effective setting and where it came from (default, file, env, flag)
    #[command(after_help = "Example: telepty config show --port 4000")]
    Show {
        /// As if `telepty daemon --host HOST` (or `tui --host`) were run
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// As if `telepty daemon --port PORT` (or `tui --port`) were run
        #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// As if `telepty tui --theme NAME` were run
        #[arg(long, value_name = "NAME")]
        theme: Option<String>,
    },
    /// Write the fully commented default configuration file
    #[command(after_help = "Example: telepty config init --force")]
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: ConfigArgs) -> Result<(), Failure> {
    let paths = Paths::from_env();
    let path = paths.config_toml();
    match args.action {
        ConfigAction::Path => {
            output::line(path.display());
            Ok(())
        }
        ConfigAction::Show { host, port, theme } => {
            // The same loading as `telepty daemon` (api::daemon), so this is what it uses.
            let mut s =
                Config::load(&paths).map_err(|e| Failure::new("invalid configuration", e))?;
            s.apply_flags(&Flags { host, port, theme });
            let state = if path.exists() {
                ""
            } else {
                " (missing: defaults apply)"
            };
            output::line(format!("# {}{state}", path.display()));
            let width = KEYS.iter().map(|k| k.len()).max().unwrap_or(0);
            for k in KEYS {
                let line = format!("{k:<width$} = {}", s.value(k));
                if !output::line(format!("{line}  # {}", s.source(k))) {
                    break;
                }
            }
            Ok(())
        }
        ConfigAction::Init { force } => {
            if path.exists() && !force {
                return Err(Failure::new(
                    "config init",
                    format!(
                        "{} already exists (use --force to overwrite)",
                        path.display()
                    ),
                ));
            }
            crate::util::write_atomic(&path, DEFAULT_CONFIG_TOML.as_bytes())
                .map_err(|e| Failure::new("config init", format!("{}: {e}", path.display())))?;
            output::line(format!("wrote {}", path.display()));
            Ok(())
        }
    }
}
