//! `telepty config path|show|init`: the configuration file and the effective settings.

use clap::{Args, Subcommand};

use super::output::{self, Failure};
use crate::config::Paths;
use crate::settings::{self, DEFAULT_CONFIG_TOML, KEYS};

pub const EXAMPLE: &str = "Example: telepty config show";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLE, arg_required_else_help = true)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print where the configuration file is (TELEPTY_CONFIG, else XDG)
    #[command(after_help = "Example: telepty config path")]
    Path,
    /// Print every effective setting and where it came from (default, file, env)
    #[command(after_help = "Example: telepty config show")]
    Show,
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
        ConfigAction::Show => {
            let s = settings::load(&paths).map_err(|e| Failure::new("invalid configuration", e))?;
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
