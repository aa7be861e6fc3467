//! `telepty service install|uninstall|status [--dry-run]`: run the daemon as a systemd user
//! service (Linux) or a launchd agent (macOS), from the templates in `assets/`.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{Args, Subcommand};

use super::output::{self, Failure};
use crate::client::open_log;
use crate::config::Paths;

const SYSTEMD_TEMPLATE: &str = include_str!("../../assets/telepty.service");
const LAUNCHD_TEMPLATE: &str = include_str!("../../assets/dev.telepty.daemon.plist");
const UNIT_NAME: &str = "telepty.service";
const LAUNCHD_LABEL: &str = "dev.telepty.daemon";

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty service install --dry-run",
    arg_required_else_help = true
)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub action: ServiceAction,
    /// Print what would be written or run, and change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    /// Write the service file and enable and start it
    #[command(after_help = "Example: telepty service install")]
    Install,
    /// Stop and disable the service and remove its file
    #[command(after_help = "Example: telepty service uninstall")]
    Uninstall,
    /// Show whether the service is installed and running
    #[command(after_help = "Example: telepty service status")]
    Status,
}

/// Which service manager a platform uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    pub fn current() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }

    /// Where the service file goes.
    pub fn file_path(self, paths: &Paths) -> PathBuf {
        match self {
            Manager::Systemd => std::env::var_os("XDG_CONFIG_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| paths.home.join(".config"))
                .join("systemd/user")
                .join(UNIT_NAME),
            Manager::Launchd => paths
                .home
                .join("Library/LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist")),
        }
    }

    /// The service file for the executable `exe`, with `path` as the service's PATH.
    pub fn render(self, exe: &Path, path: &str, log: &Path) -> String {
        let exe = exe.to_string_lossy();
        match self {
            Manager::Systemd => SYSTEMD_TEMPLATE
                .replace("{{EXE}}", &systemd_quote(&exe).replace('$', "$$"))
                .replace("{{PATH}}", &systemd_quote(path)),
            Manager::Launchd => LAUNCHD_TEMPLATE
                .replace("{{EXE}}", &xml_escape(&exe))
                .replace("{{PATH}}", &xml_escape(path))
                .replace("{{LOG}}", &xml_escape(&log.to_string_lossy())),
        }
    }

    /// The commands that activate the installed file (`on`), or deactivate it.
    fn switch(self, file: &Path, on: bool) -> Vec<Vec<String>> {
        let verb = if on { "load" } else { "unload" };
        match (self, on) {
            (Manager::Systemd, true) => vec![
                systemctl(&["daemon-reload"]),
                systemctl(&["enable", "--now", UNIT_NAME]),
            ],
            (Manager::Systemd, false) => vec![systemctl(&["disable", "--now", UNIT_NAME])],
            (Manager::Launchd, _) => {
                vec![argv(&["launchctl", verb, "-w", &file.to_string_lossy()])]
            }
        }
    }

    /// Whether the manager can be driven from here: its tool is on PATH and, for systemd,
    /// a user bus exists.
    fn available(self) -> bool {
        match self {
            Manager::Systemd => {
                on_path("systemctl")
                    && (std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
                        || std::env::var_os("XDG_RUNTIME_DIR")
                            .filter(|v| !v.is_empty())
                            .is_some_and(|d| Path::new(&d).join("bus").exists()))
            }
            Manager::Launchd => on_path("launchctl"),
        }
    }
}

/// systemd's double-quoted word: backslash and quote escaped, `%` doubled (specifiers).
fn systemd_quote(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(tool);
            f.is_file() && is_executable(&f)
        })
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// `systemctl --user ARGS`.
fn systemctl(args: &[&str]) -> Vec<String> {
    argv(&[&["systemctl", "--user"], args].concat())
}

fn shell_line(cmds: &[Vec<String>]) -> String {
    cmds.iter()
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Run the commands in order, stopping at the first failure.
fn run_all(cmds: &[Vec<String>]) -> Result<(), String> {
    for c in cmds {
        let status = Process::new(&c[0])
            .args(&c[1..])
            .status()
            .map_err(|e| format!("{}: {e}", c.join(" ")))?;
        if !status.success() {
            return Err(format!("{} exited with {status}", c.join(" ")));
        }
    }
    Ok(())
}

pub fn run(args: ServiceArgs) -> Result<(), Failure> {
    let paths = Paths::from_env();
    let mgr = Manager::current();
    let file = mgr.file_path(&paths);
    match args.action {
        ServiceAction::Install => {
            let exe = std::env::current_exe().map_err(|e| {
                Failure::new(
                    "service install",
                    format!("cannot find this executable: {e}"),
                )
            })?;
            let path =
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
            let log = paths.telepty_dir().join("logs/daemon.log");
            let text = mgr.render(&exe, &path, &log);
            let cmds = mgr.switch(&file, true);
            if args.dry_run {
                output::line(format!("# would write {}", file.display()));
                output::text_block(&text);
                output::line(format!("# then run: {}", shell_line(&cmds)));
                return Ok(());
            }
            write_file(&file, &text)
                .map_err(|e| Failure::new("service install", format!("{}: {e}", file.display())))?;
            output::line(format!("wrote {}", file.display()));
            if mgr == Manager::Launchd {
                std::fs::create_dir_all(paths.telepty_dir().join("logs")).ok();
            }
            if mgr.available() {
                run_all(&cmds).map_err(|e| Failure::new("service install", e))?;
                output::line("service enabled and started");
            } else {
                output::line(format!(
                    "to enable and start it, run: {}",
                    shell_line(&cmds)
                ));
            }
            Ok(())
        }
        ServiceAction::Uninstall => {
            let cmds = mgr.switch(&file, false);
            if args.dry_run {
                output::line(format!("# would run: {}", shell_line(&cmds)));
                output::line(format!("# would remove {}", file.display()));
                return Ok(());
            }
            if !file.exists() {
                output::line(format!("not installed ({} does not exist)", file.display()));
                return Ok(());
            }
            if mgr.available() {
                // A unit that is already stopped or disabled is fine.
                let _ = run_all(&cmds);
            } else {
                output::line(format!("to stop it, run: {}", shell_line(&cmds)));
            }
            std::fs::remove_file(&file).map_err(|e| {
                Failure::new("service uninstall", format!("{}: {e}", file.display()))
            })?;
            output::line(format!("removed {}", file.display()));
            if mgr == Manager::Systemd && mgr.available() {
                let _ = run_all(&[systemctl(&["daemon-reload"])]);
            }
            Ok(())
        }
        ServiceAction::Status => {
            let installed = file.exists();
            let state = if installed {
                "installed"
            } else {
                "not installed"
            };
            output::line(format!("{}: {state}", file.display()));
            if installed && mgr == Manager::Systemd && mgr.available() {
                let state = Process::new("systemctl")
                    .args(["--user", "is-active", UNIT_NAME])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_else(|e| format!("unknown ({e})"));
                output::line(format!("state: {state}"));
            } else if installed && mgr == Manager::Launchd && mgr.available() {
                let loaded = Process::new("launchctl")
                    .args(["list", LAUNCHD_LABEL])
                    .output()
                    .is_ok_and(|o| o.status.success());
                let state = if loaded { "loaded" } else { "not loaded" };
                output::line(format!("state: {state}"));
            }
            Ok(())
        }
    }
}

fn write_file(file: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, text)?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))
}

// ---- daemon logs ----

/// Default size at which `telepty.log` is rotated (`TELEPTY_LOG_MAX_MB` overrides).
const LOG_MAX_MB: u64 = 10;
/// Rotated files kept: `telepty.log.1` … `telepty.log.5`.
const LOG_KEEP: usize = 5;

/// A log file rotated by size: when a write would take it past `max_bytes`, `telepty.log`
/// becomes `telepty.log.1` (older ones shift up, the oldest beyond `keep` is removed).
pub struct RotatingLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    state: parking_lot::Mutex<(std::fs::File, u64)>,
}

impl RotatingLog {
    pub fn open(path: PathBuf, max_bytes: u64, keep: usize) -> std::io::Result<RotatingLog> {
        let file = open_log(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path,
            max_bytes: max_bytes.max(1),
            keep,
            state: parking_lot::Mutex::new((file, size)),
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn write_record(&self, buf: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut st = self.state.lock();
        if st.1 > 0 && st.1 + buf.len() as u64 > self.max_bytes {
            if self.keep == 0 {
                std::fs::remove_file(&self.path).ok();
            } else {
                std::fs::remove_file(self.rotated(self.keep)).ok();
                for n in (1..self.keep).rev() {
                    std::fs::rename(self.rotated(n), self.rotated(n + 1)).ok();
                }
                std::fs::rename(&self.path, self.rotated(1)).ok();
            }
            *st = (open_log(&self.path)?, 0);
        }
        st.0.write_all(buf)?;
        st.1 += buf.len() as u64;
        Ok(())
    }
}

/// One event's writer: tracing's fmt layer formats an event and writes it in one call.
pub struct LogRecord<'a>(&'a RotatingLog);

impl std::io::Write for LogRecord<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_record(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingLog {
    type Writer = LogRecord<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LogRecord(self)
    }
}

/// `TELEPTY_LOG`, then `RUST_LOG`; default `info`.
fn log_filter() -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    EnvFilter::try_from_env("TELEPTY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The daemon's subscriber: every event to `file` (no colour) and, when `stderr` is set, to
/// stderr too (coloured on a terminal unless NO_COLOR).
pub fn daemon_subscriber(
    file: Option<RotatingLog>,
    stderr: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static {
    use tracing_subscriber::layer::SubscriberExt;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let err_layer = stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
    });
    let file_layer = file.map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(f)
            .with_ansi(false)
    });
    tracing_subscriber::registry()
        .with(log_filter())
        .with(err_layer)
        .with(file_layer)
}

/// Install a process's logging: `file_name` in the log directory (`$XDG_STATE_HOME/telepty`;
/// rotated at `TELEPTY_LOG_MAX_MB`, default 10, keeping 5), plus stderr when asked (the
/// daemon's: the terminal in the foreground; the journal or `~/.telepty/logs/daemon.log`
/// otherwise). Returns the log file's path, or `None` when it could not be opened (stderr
/// logging still works).
pub fn init_logging(paths: &Paths, file_name: &str, stderr: bool) -> Option<PathBuf> {
    let dir = paths.log_dir();
    let path = dir.join(file_name);
    let max = crate::config::env_u64("TELEPTY_LOG_MAX_MB", LOG_MAX_MB, 1) * 1024 * 1024;
    let file = std::fs::create_dir_all(&dir)
        .and_then(|_| RotatingLog::open(path.clone(), max, LOG_KEEP))
        .map_err(|e| {
            if stderr {
                eprintln!("telepty: cannot open {}: {e}", path.display())
            }
        })
        .ok();
    let opened = file.is_some();
    let _ = tracing::subscriber::set_global_default(daemon_subscriber(file, stderr));
    opened.then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_unit_runs_the_exe_with_daemon_and_restarts_on_failure() {
        let text = Manager::Systemd.render(
            Path::new("/opt/my tools/telepty"),
            "/usr/bin:/bin",
            Path::new("/x"),
        );
        assert!(
            text.contains("ExecStart=\"/opt/my tools/telepty\" daemon\n"),
            "{text}"
        );
        assert!(text.contains("Restart=on-failure\n"));
        assert!(text.contains("Environment=\"PATH=/usr/bin:/bin\"\n"));
        assert!(text.contains("WantedBy=default.target"));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn systemd_specials_are_escaped() {
        let text = Manager::Systemd.render(Path::new("/a%b/$x\"y"), "/p%", Path::new("/x"));
        assert!(
            text.contains(r#"ExecStart="/a%%b/$$x\"y" daemon"#),
            "{text}"
        );
        assert!(text.contains("PATH=/p%%\""));
    }

    #[test]
    fn launchd_plist_is_filled_and_escaped() {
        let text = Manager::Launchd.render(
            Path::new("/bin/te&le"),
            "/usr/bin",
            Path::new("/h/.telepty/logs/daemon.log"),
        );
        assert!(
            text.contains("<string>/bin/te&amp;le</string>\n    <string>daemon</string>"),
            "{text}"
        );
        assert!(text.contains("<string>/h/.telepty/logs/daemon.log</string>"));
        assert!(text.contains("<string>dev.telepty.daemon</string>"));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn log_rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("telepty.log");
        let log = RotatingLog::open(path.clone(), 100, 2).unwrap();
        let sub = daemon_subscriber(Some(log), false);
        tracing::subscriber::with_default(sub, || {
            for i in 0..20 {
                tracing::info!("event number {i:02} with some padding");
            }
        });
        let cur = std::fs::read_to_string(&path).unwrap();
        assert!(cur.contains("event number 19"), "{cur}");
        assert!(!cur.contains("\u{1b}["), "colour in the log file");
        let one = std::fs::read_to_string(dir.path().join("telepty.log.1")).unwrap();
        assert!(one.contains("event number 18"), "{one}");
        assert!(dir.path().join("telepty.log.2").exists());
        assert!(!dir.path().join("telepty.log.3").exists());
        // Every line is whole: one event per write.
        for l in cur.lines().chain(one.lines()) {
            assert!(
                l.contains("INFO") && l.ends_with("with some padding"),
                "{l}"
            );
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn file_paths() {
        let paths = Paths {
            home: PathBuf::from("/home/u"),
        };
        assert_eq!(
            Manager::Launchd.file_path(&paths),
            Path::new("/home/u/Library/LaunchAgents/dev.telepty.daemon.plist")
        );
        assert!(
            Manager::Systemd
                .file_path(&paths)
                .ends_with("systemd/user/telepty.service")
        );
    }
}
