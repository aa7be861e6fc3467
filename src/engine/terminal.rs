//! One session's terminal: the VT emulator, the raw output ring, the output fan-out and the
//! generation counter. Fed by a PTY reader thread (spawned sessions) or by owner `output`
//! frames (wrapped sessions); read by the API, `wait`, the classifier and the dashboard.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{broadcast, watch};

use crate::util;
use crate::wire::response::{Cursor, ScreenGrid};

/// Keep at least this much raw output (API.md §7: "at least the last 256 KiB").
pub const RAW_RING_BYTES: usize = 256 * 1024;
const OUTPUT_FANOUT: usize = 1024;

/// A chunk of output as viewers see it: whole UTF-8 characters, stamped with the generation it
/// produced, so a snapshot at generation G is followed by exactly the chunks with gen > G.
#[derive(Clone, Debug)]
pub struct OutputChunk {
    pub generation: u64,
    pub text: Arc<str>,
    /// Set (with empty `text`) when the terminal was resized to (cols, rows): viewers that
    /// mirror the screen must resize at exactly this point of the stream.
    pub size: Option<(u16, u16)>,
}

/// Answers the child's terminal queries (agent CLIs block until they get them) and records
/// the window title, which vt100 0.16 leaves to its callbacks.
#[derive(Default)]
pub struct Hooks {
    replies: Vec<u8>,
    title: Option<String>,
}

impl vt100::Callbacks for Hooks {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = Some(String::from_utf8_lossy(title).into_owned());
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, c, first) {
            (None, 'n', 5) => self.replies.extend_from_slice(b"\x1b[0n"),
            // Cursor position, in the DEC form (`?`) when asked in it.
            (None | Some(b'?'), 'n', 6) => {
                let (r, c) = screen.cursor_position();
                let dec = if i1.is_some() { "?" } else { "" };
                let reply = format!("\x1b[{dec}{};{}R", r + 1, c + 1);
                self.replies.extend_from_slice(reply.as_bytes());
            }
            // Primary device attributes: a VT100 with advanced video, what most TUIs probe for.
            (None, 'c', 0) => self.replies.extend_from_slice(b"\x1b[?1;2c"),
            (Some(b'>'), 'c', 0) => self.replies.extend_from_slice(b"\x1b[>0;10;1c"),
            _ => {}
        }
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        // Foreground/background colour queries: some agent CLIs pick their palette from these.
        match params {
            [b"10", b"?"] => self
                .replies
                .extend_from_slice(b"\x1b]10;rgb:e5e5/e5e5/e5e5\x1b\\"),
            [b"11", b"?"] => self
                .replies
                .extend_from_slice(b"\x1b]11;rgb:0000/0000/0000\x1b\\"),
            _ => {}
        }
    }
}

/// Bounded raw output, kept as generation-stamped chunks so `wait` can look at the output
/// that arrived after a given generation.
#[derive(Default)]
struct Ring {
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl Ring {
    fn push(&mut self, generation: u64, data: &[u8]) {
        self.chunks
            .push_back((generation, Bytes::copy_from_slice(data)));
        self.bytes += data.len();
        while self.bytes > RAW_RING_BYTES && self.chunks.len() > 1 {
            if let Some((_, old)) = self.chunks.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// What is kept of the output after `generation` (everything: after 0).
    fn since(&self, generation: u64) -> Vec<u8> {
        let kept = self.chunks.iter().filter(|(g, _)| *g > generation);
        kept.map(|(_, c)| &c[..]).collect::<Vec<_>>().concat()
    }
}

pub struct TermState {
    parser: vt100::Parser<Hooks>,
    ring: Ring,
    generation: u64,
    carry: Vec<u8>,
    last_output_at: Option<SystemTime>,
}

impl TermState {
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }
    pub fn screen_mut(&mut self) -> &mut vt100::Screen {
        self.parser.screen_mut()
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn title(&self) -> Option<&str> {
        self.parser.callbacks().title.as_deref()
    }
}

pub struct Terminal {
    state: Mutex<TermState>,
    output_tx: broadcast::Sender<OutputChunk>,
    generation_tx: watch::Sender<u64>,
    generation: AtomicU64,
    /// Monotonic time of the latest output, in ns since `epoch` (+1 so that 0 means never).
    last_output_ns: AtomicU64,
    epoch: Instant,
    /// Cleared while attached clients are expected to answer queries themselves.
    answer_queries: AtomicBool,
    /// asciicast recording, when enabled for this session.
    recorder: std::sync::OnceLock<Arc<super::recording::Recorder>>,
}

pub struct Snapshot {
    pub data: String,
    pub cols: u16,
    pub rows: u16,
    pub generation: u64,
}

impl Terminal {
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Self {
        let (output_tx, _) = broadcast::channel(OUTPUT_FANOUT);
        let (generation_tx, _) = watch::channel(0);
        Terminal {
            state: Mutex::new(TermState {
                parser: vt100::Parser::new_with_callbacks(
                    rows.max(1),
                    cols.max(1),
                    scrollback,
                    Hooks::default(),
                ),
                ring: Ring::default(),
                generation: 0,
                carry: Vec::new(),
                last_output_at: None,
            }),
            output_tx,
            generation_tx,
            generation: AtomicU64::new(0),
            last_output_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            answer_queries: AtomicBool::new(true),
            recorder: std::sync::OnceLock::new(),
        }
    }

    /// Lock the emulator state. A poisoned lock only means a reader panicked mid-parse; the
    /// screen is still the best information we have, so keep serving it.
    pub fn lock(&self) -> MutexGuard<'_, TermState> {
        self.state.lock()
    }

    /// Apply output. Returns the bytes the emulator wants to send back to the child (query
    /// replies), empty when attached clients answer for themselves.
    pub fn feed(&self, bytes: &[u8]) -> Vec<u8> {
        if bytes.is_empty() {
            return Vec::new();
        }
        let mut st = self.lock();
        st.parser.process(bytes);
        if let Some(r) = self.recorder.get() {
            // Under the lock, so output and resize events keep their order in the file.
            r.output(bytes);
        }
        st.generation += 1;
        let generation = st.generation;
        st.ring.push(generation, bytes);
        st.last_output_at = Some(SystemTime::now());
        let replies = std::mem::take(&mut st.parser.callbacks_mut().replies);
        if self.output_tx.receiver_count() > 0 {
            let text = util::decode_utf8_stream(&mut st.carry, bytes);
            // Sent under the lock so that a snapshot taken under the same lock is followed by
            // exactly the chunks after it.
            let _ = self.output_tx.send(OutputChunk {
                generation,
                text: text.into(),
                size: None,
            });
        } else {
            // Nobody decodes right now: keep only an incomplete trailing character, so a
            // viewer that subscribes later starts on a character boundary.
            st.carry = bytes[bytes.len() - util::incomplete_utf8_tail(bytes)..].to_vec();
        }
        drop(st);
        self.generation.store(generation, Ordering::Release);
        self.last_output_ns.store(
            self.epoch.elapsed().as_nanos() as u64 + 1,
            Ordering::Release,
        );
        self.generation_tx.send_replace(generation);
        if self.answer_queries.load(Ordering::Acquire) {
            replies
        } else {
            Vec::new()
        }
    }

    /// Rebuild the screen from output a holder kept while no engine was attached (or before a
    /// restart). Not activity: no timestamps, no fan-out, no query replies (the program asked
    /// those of an earlier engine long ago).
    pub fn replay(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut st = self.lock();
        st.parser.process(bytes);
        st.parser.callbacks_mut().replies.clear();
        st.generation += 1;
        let generation = st.generation;
        st.ring.push(generation, bytes);
        st.carry = bytes[bytes.len() - util::incomplete_utf8_tail(bytes)..].to_vec();
        drop(st);
        self.generation.store(generation, Ordering::Release);
        self.generation_tx.send_replace(generation);
    }

    pub fn set_answer_queries(&self, on: bool) {
        self.answer_queries.store(on, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Time of the latest output, if any.
    pub fn last_output(&self) -> Option<Instant> {
        match self.last_output_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.epoch + std::time::Duration::from_nanos(ns - 1)),
        }
    }

    pub fn last_output_at(&self) -> Option<SystemTime> {
        self.lock().last_output_at
    }

    pub fn watch_generation(&self) -> watch::Receiver<u64> {
        self.generation_tx.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<OutputChunk> {
        self.output_tx.subscribe()
    }

    pub fn size(&self) -> (u16, u16) {
        self.lock().screen().size()
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        let (rows, cols) = (rows.max(1), cols.max(1));
        let mut st = self.lock();
        if st.screen().size() == (rows, cols) {
            return;
        }
        st.screen_mut().set_size(rows, cols);
        if let Some(r) = self.recorder.get() {
            r.resize(cols, rows);
        }
        // Under the lock, like output: viewers see the resize between the right chunks.
        if self.output_tx.receiver_count() > 0 {
            let _ = self.output_tx.send(OutputChunk {
                generation: st.generation,
                text: Arc::from(""),
                size: Some((cols, rows)),
            });
        }
    }

    pub fn set_recorder(&self, r: Arc<super::recording::Recorder>) {
        let _ = self.recorder.set(r);
    }

    pub fn recorder(&self) -> Option<&Arc<super::recording::Recorder>> {
        self.recorder.get()
    }

    /// A byte sequence that redraws the current screen on a fresh terminal of the same size,
    /// plus a subscription that continues exactly after it.
    pub fn snapshot_and_subscribe(&self) -> (Snapshot, broadcast::Receiver<OutputChunk>) {
        let st = self.lock();
        let snap = snapshot_of(&st);
        let rx = self.output_tx.subscribe();
        (snap, rx)
    }

    pub fn snapshot(&self) -> Snapshot {
        snapshot_of(&self.lock())
    }

    /// The last `lines` lines of raw output (the ring), decoded lossily.
    pub fn raw_tail(&self, lines: usize) -> (String, usize) {
        let all = self.lock().ring.since(0);
        let text = String::from_utf8_lossy(&all);
        if text.is_empty() {
            return (String::new(), 0);
        }
        let parts: Vec<&str> = text.split('\n').collect();
        let start = parts.len().saturating_sub(lines);
        (parts[start..].join("\n"), parts.len() - start)
    }

    pub fn raw_total_lines(&self) -> usize {
        let all = self.lock().ring.since(0);
        if all.is_empty() {
            0
        } else {
            all.iter().filter(|&&b| b == b'\n').count() + 1
        }
    }

    /// Raw output that arrived after `generation` (as far as the ring still holds it).
    pub fn raw_since(&self, generation: u64) -> Vec<u8> {
        self.lock().ring.since(generation)
    }

    pub fn bracketed_paste(&self) -> bool {
        self.lock().screen().bracketed_paste()
    }

    pub fn application_cursor(&self) -> bool {
        self.lock().screen().application_cursor()
    }

    /// Rendered candidate rows (API.md §7): primary scrollback + visible rows, or only the
    /// visible rows on the alternate screen; trailing spaces and trailing blank rows dropped.
    pub fn text_rows(&self) -> Vec<String> {
        candidate_rows(self.lock().screen_mut(), false)
    }

    pub fn ansi_rows(&self) -> Vec<String> {
        candidate_rows(self.lock().screen_mut(), true)
    }

    /// The visible screen as the screen gate reads it.
    pub fn view(&self) -> super::gate::View {
        let st = self.lock();
        super::gate::View::of(st.screen(), st.title())
    }

    /// The visible screen as text rows (for `wait` and the classifier).
    pub fn visible_text(&self) -> String {
        self.json_view().rows.join("\n")
    }

    /// The grid of `screen?format=json` (the API fills in `session_id`).
    pub fn json_view(&self) -> ScreenGrid {
        let st = self.lock();
        let screen = st.screen();
        let (rows, cols) = screen.size();
        let (row, col) = screen.cursor_position();
        ScreenGrid {
            format: "json".into(),
            rows: screen
                .rows(0, cols)
                .map(|r| r.trim_end().to_string())
                .collect(),
            cols,
            row_count: rows,
            cursor: Cursor {
                row,
                col,
                visible: !screen.hide_cursor(),
            },
            alt_screen: screen.alternate_screen(),
            title: st.title().map(str::to_string),
            generation: st.generation,
            session_id: String::new(),
        }
    }
}

fn snapshot_of(st: &TermState) -> Snapshot {
    let screen = st.screen();
    let (rows, cols) = screen.size();
    // Reset, then the alternate screen if active, then cells, modes and cursor, then the title.
    let mut data: Vec<u8> = b"\x1bc".to_vec();
    if screen.alternate_screen() {
        data.extend_from_slice(b"\x1b[?1049h");
    }
    data.extend_from_slice(&screen.state_formatted());
    if let Some(t) = st.title() {
        data.extend_from_slice(format!("\x1b]2;{t}\x07").as_bytes());
    }
    Snapshot {
        data: String::from_utf8_lossy(&data).into_owned(),
        cols,
        rows,
        generation: st.generation,
    }
}

/// Walk every candidate row, paging through scrollback with the view offset (the only way
/// vt100 exposes it), and restore the caller's offset afterwards.
fn candidate_rows(screen: &mut vt100::Screen, ansi: bool) -> Vec<String> {
    let saved = screen.scrollback();
    let (rows, cols) = screen.size();
    let mut out = Vec::new();
    if !screen.alternate_screen() {
        screen.set_scrollback(usize::MAX);
        let depth = screen.scrollback();
        let mut start = 0usize;
        while start < depth {
            screen.set_scrollback(depth - start);
            let take = (depth - start).min(rows as usize);
            for r in 0..take as u16 {
                out.push(render_row(screen, r, cols, ansi));
            }
            start += take;
        }
    }
    screen.set_scrollback(0);
    for r in 0..rows {
        out.push(render_row(screen, r, cols, ansi));
    }
    screen.set_scrollback(saved);
    while out.last().is_some_and(|r| r.is_empty()) {
        out.pop();
    }
    out
}

fn render_row(screen: &vt100::Screen, row: u16, cols: u16, ansi: bool) -> String {
    // Find the last cell worth printing so trailing blanks disappear.
    let worth = |cell: &vt100::Cell| {
        let blank = !cell.has_contents() || cell.contents() == " ";
        !blank || (ansi && cell.bgcolor() != vt100::Color::Default)
    };
    let Some(last) = (0..cols).rfind(|&c| screen.cell(row, c).is_some_and(worth)) else {
        return String::new();
    };
    let mut s = String::new();
    let mut pen: Option<Pen> = None;
    for c in 0..=last {
        let Some(cell) = screen.cell(row, c) else {
            continue;
        };
        if cell.is_wide_continuation() {
            continue;
        }
        if ansi {
            let p = Pen::of(cell);
            if pen.as_ref() != Some(&p) {
                s.push_str(&p.sgr());
                pen = Some(p);
            }
        }
        if cell.has_contents() {
            s.push_str(cell.contents());
        } else {
            s.push(' ');
        }
    }
    if ansi {
        s.push_str("\x1b[0m");
    } else {
        let trimmed = s.trim_end().len();
        s.truncate(trimmed);
    }
    s
}

#[derive(PartialEq, Eq)]
struct Pen {
    fg: vt100::Color,
    bg: vt100::Color,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    inverse: bool,
}

impl Pen {
    fn of(cell: &vt100::Cell) -> Self {
        Pen {
            fg: cell.fgcolor(),
            bg: cell.bgcolor(),
            bold: cell.bold(),
            dim: cell.dim(),
            italic: cell.italic(),
            underline: cell.underline(),
            inverse: cell.inverse(),
        }
    }

    fn sgr(&self) -> String {
        let attrs = [
            (self.bold, "1"),
            (self.dim, "2"),
            (self.italic, "3"),
            (self.underline, "4"),
            (self.inverse, "7"),
        ];
        let mut p: Vec<String> = std::iter::once("0")
            .chain(attrs.iter().filter(|(on, _)| *on).map(|(_, code)| *code))
            .map(String::from)
            .collect();
        p.extend(colour(self.fg, 30));
        p.extend(colour(self.bg, 40));
        format!("\x1b[{}m", p.join(";"))
    }
}

/// The SGR parameter of a colour: `base` is 30 for the foreground, 40 for the background
/// (bright colours at base + 60, indexed and RGB ones at base + 8).
fn colour(c: vt100::Color, base: u8) -> Option<String> {
    match c {
        vt100::Color::Default => None,
        vt100::Color::Idx(i) if i < 8 => Some(format!("{}", base + i)),
        vt100::Color::Idx(i) if i < 16 => Some(format!("{}", base + 60 + i - 8)),
        vt100::Color::Idx(i) => Some(format!("{};5;{i}", base + 8)),
        vt100::Color::Rgb(r, g, b) => Some(format!("{};2;{r};{g};{b}", base + 8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(bytes: &[u8]) -> Terminal {
        let t = Terminal::new(5, 20, 100);
        t.feed(bytes);
        t
    }

    #[test]
    fn carriage_return_overwrites() {
        assert_eq!(term(b"abcdef\rXY").text_rows(), vec!["XYcdef"]);
    }

    #[test]
    fn clear_screen_clears_visible_rows() {
        let t = term(b"one\r\ntwo\r\n\x1b[H\x1b[2Jthree");
        let rows = t.text_rows();
        assert_eq!(rows.last().unwrap(), "three");
        assert!(!t.visible_text().contains("one"));
    }

    #[test]
    fn alternate_screen_shows_only_visible_rows_and_restores() {
        let t = term(b"primary\r\n\x1b[?1049h\x1b[Halt");
        assert_eq!(t.text_rows(), vec!["alt"]);
        assert!(t.json_view().alt_screen);
        t.feed(b"\x1b[?1049l");
        assert_eq!(t.text_rows()[0], "primary");
    }

    #[test]
    fn scrollback_rows_come_first_in_order() {
        let t = Terminal::new(3, 10, 100);
        for i in 0..10 {
            t.feed(format!("line{i}\r\n").as_bytes());
        }
        let rows = t.text_rows();
        let expect: Vec<String> = (0..10).map(|i| format!("line{i}")).collect();
        assert_eq!(rows, expect);
    }

    #[test]
    fn answers_cursor_position_and_device_attributes() {
        let t = Terminal::new(5, 20, 0);
        assert_eq!(t.feed(b"ab\x1b[6n"), b"\x1b[1;3R");
        assert_eq!(t.feed(b"\x1b[c"), b"\x1b[?1;2c");
        assert_eq!(t.feed(b"\x1b[5n"), b"\x1b[0n");
        t.set_answer_queries(false);
        assert!(t.feed(b"\x1b[6n").is_empty());
    }

    #[test]
    fn title_and_json_view() {
        let t = term(b"\x1b]2;hello\x07hi");
        let v = t.json_view();
        assert_eq!(v.title.as_deref(), Some("hello"));
        assert_eq!(v.cursor.col, 2);
        assert_eq!(v.generation, 1);
        assert_eq!(v.rows[0], "hi");
    }

    #[test]
    fn ansi_rows_carry_colours_and_reset() {
        let t = term(b"\x1b[31mred\x1b[0m plain");
        let rows = t.ansi_rows();
        assert!(rows[0].contains("\x1b[0;31mred"), "{:?}", rows[0]);
        assert!(rows[0].ends_with("\x1b[0m"));
    }

    #[test]
    fn wide_characters_render_once() {
        assert_eq!(term("日本語x".as_bytes()).text_rows(), vec!["日本語x"]);
    }

    #[test]
    fn snapshot_redraws_the_screen() {
        let t = term(b"\x1b[?1049h\x1b[2;3Hmid");
        let snap = t.snapshot();
        let other = Terminal::new(snap.rows, snap.cols, 0);
        other.feed(snap.data.as_bytes());
        assert_eq!(other.visible_text(), t.visible_text());
        assert_eq!(other.json_view().cursor, t.json_view().cursor);
        assert!(other.json_view().alt_screen);
    }

    #[test]
    fn resizes_reach_subscribers_in_order_with_output() {
        let t = term(b"");
        let mut rx = t.subscribe();
        t.feed(b"a");
        t.resize(10, 40);
        t.resize(10, 40); // unchanged: nothing to tell
        t.feed(b"b");
        let got: Vec<(String, Option<(u16, u16)>)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| (c.text.to_string(), c.size))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), None),
                (String::new(), Some((40, 10))),
                ("b".into(), None)
            ]
        );
        assert_eq!(t.size(), (10, 40));
    }

    #[test]
    fn subscription_after_snapshot_sees_only_new_output() {
        let t = term(b"before");
        let (snap, mut rx) = t.snapshot_and_subscribe();
        t.feed(b"after");
        let chunk = rx.try_recv().unwrap();
        assert_eq!(&*chunk.text, "after");
        assert!(chunk.generation > snap.generation);
    }

    #[test]
    fn raw_ring_keeps_the_tail() {
        let t = Terminal::new(5, 20, 0);
        for i in 0..100_000 {
            t.feed(format!("{i}\n").as_bytes());
        }
        let (tail, n) = t.raw_tail(3);
        assert_eq!(n, 3);
        assert_eq!(tail, "99998\n99999\n");
        assert!(t.raw_since(t.generation() - 1).starts_with(b"99999"));
    }
}
