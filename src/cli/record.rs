//! `telepty record list|path`: the asciicast recordings in `~/.telepty/recordings`.

use clap::{Args, Subcommand};

use super::output::{self, Failure};
use crate::config::Paths;
use crate::engine::recording;

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty record path worker-1 | xargs asciinema play",
    arg_required_else_help = true
)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub action: RecordAction,
}

#[derive(Subcommand, Debug)]
pub enum RecordAction {
    /// List recordings (all, or one session's), oldest first
    #[command(
        visible_alias = "ls",
        after_help = "Example: telepty record list worker-1"
    )]
    List {
        /// Only this session's recordings
        id: Option<String>,
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Print the path of a session's newest recording
    #[command(after_help = "Example: telepty record path worker-1")]
    Path {
        /// Session id
        id: String,
    },
}

/// `~/.telepty/recordings`
pub fn recordings_dir(paths: &Paths) -> std::path::PathBuf {
    paths.telepty_dir().join(recording::DIR_NAME)
}

pub fn run(args: RecordArgs) -> Result<(), Failure> {
    let dir = recordings_dir(&Paths::from_env());
    match args.action {
        RecordAction::List { id, json } => {
            let all = recording::list(&dir)
                .map_err(|e| Failure::new("record list", format!("{}: {e}", dir.display())))?;
            let mut any = false;
            for r in all
                .into_iter()
                .filter(|r| id.as_deref().is_none_or(|i| r.id == i))
            {
                any = true;
                let started = crate::util::iso(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.started_ms),
                );
                let line = if json {
                    #[derive(serde::Serialize)]
                    struct Item<'a> {
                        id: &'a str,
                        started_at: &'a str,
                        size: u64,
                        path: &'a std::path::Path,
                    }
                    serde_json::to_string(&Item {
                        id: &r.id,
                        started_at: &started,
                        size: r.size,
                        path: &r.path,
                    })
                    .unwrap_or_default()
                } else {
                    let path = r.path.display();
                    format!("{}\t{started}\t{}\t{path}", r.id, r.size)
                };
                if !output::line(line) {
                    break;
                }
            }
            if !any && !json {
                eprintln!("no recordings in {}", dir.display());
            }
            Ok(())
        }
        RecordAction::Path { id } => {
            let found = recording::latest(&dir, &id)
                .map_err(|e| Failure::new("record path", format!("{}: {e}", dir.display())))?;
            let p = found.ok_or_else(|| {
                let why = format!("no recording of {id} in {}", dir.display());
                Failure::new("record path", why)
            })?;
            output::line(p.display());
            Ok(())
        }
    }
}
