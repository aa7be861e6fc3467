//! Telling the user a session needs them while they look elsewhere: the terminal bell, a
//! desktop notification through the outer terminal (OSC 9, or OSC 777 where that is the
//! terminal's dialect; wrapped for tmux's passthrough), and the user's `notify_command`.
//!
//! Nothing is printed besides those escape sequences: the hook's output goes nowhere, so it
//! cannot scribble over the dashboard.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::config::TuiConfig;

/// A hook that has not finished by then is killed (one stuck hook per transition at most).
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default)]
pub struct Notifier {
    command: Option<String>,
    osc: Osc,
    tmux: bool,
}

/// The desktop-notification dialect of the outer terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Osc {
    /// `OSC 9 ; text`: kitty, iTerm2, WezTerm, Windows Terminal, ghostty…
    #[default]
    Nine,
    /// `OSC 777 ; notify ; title ; body`: foot, urxvt, VTE terminals.
    SevenSevenSeven,
}

impl Notifier {
    pub fn from_config(cfg: &TuiConfig) -> Notifier {
        let term = std::env::var("TERM").unwrap_or_default();
        let vte = std::env::var_os("VTE_VERSION").is_some();
        let osc = if term.starts_with("foot") || term.starts_with("rxvt") || vte {
            Osc::SevenSevenSeven
        } else {
            Osc::Nine
        };
        Notifier {
            command: cfg.notify_command.clone(),
            osc,
            tmux: std::env::var_os("TMUX").is_some(),
        }
    }

    /// The bytes for the outer terminal: a bell, then the notification.
    fn sequence(&self, text: &str) -> String {
        // Control characters in an id or a message would end the sequence early.
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        let osc = match self.osc {
            Osc::Nine => format!("\x1b]9;{text}\x1b\\"),
            Osc::SevenSevenSeven => format!("\x1b]777;notify;telepty;{text}\x1b\\"),
        };
        // tmux keeps unknown OSCs to itself; its passthrough (allow-passthrough on) hands
        // them to the outer terminal, with every ESC doubled.
        let osc = if self.tmux {
            format!("\x1bPtmux;{}\x1b\\", osc.replace('\x1b', "\x1b\x1b"))
        } else {
            osc
        };
        format!("\x07{osc}")
    }

    /// Notify that session `id` entered `state` (described as `text`).
    pub fn notify(&self, id: &str, state: &str, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.sequence(&format!("{id}: {text}")).as_bytes());
        let _ = out.flush();
        if let Some(cmd) = &self.command {
            run_hook(cmd, id, state);
        }
    }
}

/// OSC 52: `text` onto the system clipboard, through the outer terminal (kitty, iTerm2,
/// WezTerm, foot, xterm with allowWindowOps; tmux keeps it as a paste buffer and, with
/// `set-clipboard on`, passes it on).
pub fn clipboard(text: &str) {
    use base64::Engine as _;
    let seq = format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(seq.as_bytes());
    let _ = out.flush();
}

/// `sh -c COMMAND` with the session in the environment, never in the command text (an id is
/// data, not shell).
fn run_hook(cmd: &str, id: &str, state: &str) {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("TELEPTY_SESSION", id)
        .env("TELEPTY_STATE", state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    match child {
        Ok(mut child) => {
            tokio::spawn(async move {
                if tokio::time::timeout(HOOK_TIMEOUT, child.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!("notify_command still running after 10 s: killed");
                }
            });
        }
        Err(e) => tracing::warn!("notify_command: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_per_dialect_and_inside_tmux() {
        let mut n = Notifier::default();
        assert_eq!(n.sequence("w1: waiting"), "\x07\x1b]9;w1: waiting\x1b\\");
        n.osc = Osc::SevenSevenSeven;
        assert_eq!(
            n.sequence("w1: waiting"),
            "\x07\x1b]777;notify;telepty;w1: waiting\x1b\\"
        );
        n.osc = Osc::Nine;
        n.tmux = true;
        assert_eq!(
            n.sequence("a\x07b\x1b"),
            "\x07\x1bPtmux;\x1b\x1b]9;ab\x1b\x1b\\\x1b\\"
        );
    }
}
