//! The real terminal: raw mode, alternate screen, mouse capture, bracketed paste — and getting
//! out of them again on every path (normal exit, error, panic, SIGTERM/SIGHUP/SIGINT).

use std::io::{Stdout, stdout};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();
static HOOK: OnceLock<()> = OnceLock::new();

/// Put the terminal back the way we found it (idempotent).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::AcqRel) {
        let _ = disable_raw_mode();
        let _ = execute!(
            stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            LeaveAlternateScreen,
            Show
        );
    }
}

/// Capture the mouse, or give it back to the terminal (text selection).
pub fn mouse_capture(on: bool) {
    let _ = if on {
        execute!(stdout(), EnableMouseCapture)
    } else {
        execute!(stdout(), DisableMouseCapture)
    };
}

/// Restores the terminal when dropped (error paths, early returns).
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_ui = UI_THREAD
                .get()
                .is_some_and(|t| *t == std::thread::current().id());
            if on_ui || !ACTIVE.load(Ordering::Acquire) {
                // Restore first, so the message lands on a normal screen.
                restore();
                previous(info);
            } else {
                // A background task: the dashboard keeps running; the message goes to the log,
                // never over the screen.
                tracing::error!("panic in a background thread: {info}");
            }
        }));
    });
}

/// Enter the dashboard's terminal mode.
pub fn setup() -> std::io::Result<(Terminal<CrosstermBackend<Stdout>>, Guard)> {
    let _ = UI_THREAD.set(std::thread::current().id());
    install_panic_hook();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::Release);
    let guard = Guard;
    execute!(
        stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    terminal.clear()?;
    terminal.hide_cursor()?;
    Ok((terminal, guard))
}
