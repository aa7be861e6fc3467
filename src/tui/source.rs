//! Where a pane's screen comes from. The grid renders any [`PaneSource`]: an embedded
//! session's own emulator, a remote mirror (see `remote.rs`), or a plain `vt100::Parser`
//! (fixtures in tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::engine::terminal::Terminal;
use crate::engine::{Engine, Session};

pub trait PaneSource: Send + Sync {
    /// Bumped on every change of the screen.
    fn generation(&self) -> u64;

    /// Run `f` with the screen viewed `scrollback` rows up (clamped by the emulator), holding
    /// the emulator's lock only for the call; the live view is restored before returning.
    fn with_screen(&self, scrollback: usize, f: &mut dyn FnMut(&vt100::Screen));

    /// DECCKM (cursor keys) and DECSET 2004 (bracketed paste) of the program.
    fn modes(&self) -> (bool, bool);

    /// Type into the program at once (bypassing the inject queue). False if it has nowhere to go.
    fn send_input(&self, data: &str) -> bool;

    /// This pane shows the program in `cols`x`rows`: register that as a viewer size (the
    /// session's size follows its `window_size` policy; the caller decides when it is worth
    /// it). A pane bigger than the session's size shows it top-left with a blank margin.
    fn resize(&self, cols: u16, rows: u16);

    /// The pane is no longer shown (another page, zoom, quit): its size stops counting.
    fn release(&self) {}

    /// Fires on screen changes, for the redraw loop.
    fn watch(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// A line to show instead of an empty screen (not attached, no terminal, …).
    fn note(&self) -> Option<String> {
        None
    }

    /// The session's metadata changed (id, health); remote mirrors use it to (re)attach.
    fn update(&self, _info: &super::info::SessionInfo) {}
}

/// Lock a [`Terminal`] and draw its screen at the given scrollback offset.
pub fn with_terminal(term: &Terminal, scrollback: usize, f: &mut dyn FnMut(&vt100::Screen)) {
    at_scrollback(term.lock().screen_mut(), scrollback, f)
}

/// Run `f` with `screen` viewed `scrollback` rows up, then restore the view it had.
fn at_scrollback(screen: &mut vt100::Screen, scrollback: usize, f: &mut dyn FnMut(&vt100::Screen)) {
    let saved = screen.scrollback();
    if saved != scrollback {
        screen.set_scrollback(scrollback);
    }
    f(screen);
    if saved != scrollback {
        screen.set_scrollback(saved);
    }
}

/// DECCKM (cursor keys) and DECSET 2004 (bracketed paste) of a screen.
pub fn screen_modes(s: &vt100::Screen) -> (bool, bool) {
    (s.application_cursor(), s.bracketed_paste())
}

/// A session of the embedded engine: its own emulator, input written straight to its PTY
/// (or forwarded to the owner of a wrapped session). The pane is a viewer of the session
/// under its own id, like an attached socket.
pub struct EmbeddedPane {
    engine: Engine,
    session: Arc<Session>,
    viewer: u64,
}

impl EmbeddedPane {
    pub fn new(engine: Engine, session: Arc<Session>) -> EmbeddedPane {
        let viewer = engine.next_conn_id();
        EmbeddedPane {
            engine,
            session,
            viewer,
        }
    }
}

impl Drop for EmbeddedPane {
    fn drop(&mut self) {
        self.engine.viewer_leave(&self.session, self.viewer);
    }
}

impl PaneSource for EmbeddedPane {
    fn generation(&self) -> u64 {
        self.session.term.generation()
    }
    fn with_screen(&self, scrollback: usize, f: &mut dyn FnMut(&vt100::Screen)) {
        with_terminal(&self.session.term, scrollback, f)
    }
    fn modes(&self) -> (bool, bool) {
        screen_modes(self.session.term.lock().screen())
    }
    fn send_input(&self, data: &str) -> bool {
        if self.session.kind == crate::engine::Kind::Aterm {
            return false;
        }
        self.engine.viewer_input(&self.session, data);
        true
    }
    fn resize(&self, cols: u16, rows: u16) {
        self.engine
            .viewer_resize(&self.session, self.viewer, cols, rows);
    }
    fn release(&self) {
        self.engine.viewer_leave(&self.session, self.viewer);
    }
    fn watch(&self) -> Option<watch::Receiver<u64>> {
        Some(self.session.term.watch_generation())
    }
    fn note(&self) -> Option<String> {
        (self.session.kind == crate::engine::Kind::Aterm)
            .then(|| "aterm session: no terminal to show".to_string())
    }
}

/// A plain parser with fixed content (tests, fixtures). Input is recorded.
pub struct ParserPane {
    parser: Mutex<vt100::Parser>,
    generation: AtomicU64,
    pub typed: Mutex<Vec<u8>>,
}

impl ParserPane {
    pub fn new(rows: u16, cols: u16, bytes: &[u8]) -> ParserPane {
        let mut parser = vt100::Parser::new(rows, cols, 200);
        parser.process(bytes);
        ParserPane {
            parser: Mutex::new(parser),
            generation: AtomicU64::new(1),
            typed: Mutex::new(Vec::new()),
        }
    }

    pub fn feed(&self, bytes: &[u8]) {
        self.parser.lock().process(bytes);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl PaneSource for ParserPane {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
    fn with_screen(&self, scrollback: usize, f: &mut dyn FnMut(&vt100::Screen)) {
        at_scrollback(self.parser.lock().screen_mut(), scrollback, f)
    }
    fn modes(&self) -> (bool, bool) {
        screen_modes(self.parser.lock().screen())
    }
    fn send_input(&self, data: &str) -> bool {
        self.typed.lock().extend_from_slice(data.as_bytes());
        true
    }
    fn resize(&self, cols: u16, rows: u16) {
        self.parser.lock().screen_mut().set_size(rows, cols);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrollback_view_is_restored() {
        let t = Terminal::new(3, 10, 100);
        for i in 0..10 {
            t.feed(format!("l{i}\r\n").as_bytes());
        }
        let mut top = String::new();
        let mut eff = 0;
        with_terminal(&t, 4, &mut |s| {
            top = s.rows(0, 10).next().unwrap_or_default();
            eff = s.scrollback();
        });
        assert_eq!((top.as_str(), eff), ("l4", 4));
        // The engine's own view is live again.
        assert_eq!(t.lock().screen().scrollback(), 0);
        // Asking for more than there is clamps.
        with_terminal(&t, 1000, &mut |s| eff = s.scrollback());
        assert_eq!(eff, 8);
    }
}
