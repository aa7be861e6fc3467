//! Copy mode over one pane, the way tmux's copy-mode-vi and zellij's scroll mode work: a
//! cursor moves through the pane's screen and scrollback, `/` and `?` search, `v`/`V` select,
//! `y` or Enter copies. Like tmux, it works on a copy of the screen taken on entry: the program
//! keeps running and its pane keeps its emulator up to date, but what the user looks at and
//! selects does not move under them.
//!
//! [`CopyMode`] is the pure part (lines of text, a cursor, a view, a selection, a search), fed
//! key events; [`Frozen`] pairs it with the copied `vt100::Screen` the pane is drawn from.

use std::ops::Range;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::Span;

/// A place in the document: a line (0 = the oldest scrollback line) and a character in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelKind {
    /// `v`: from one character to another.
    Chars,
    /// `V`: whole lines.
    Lines,
}

/// One occurrence of the search text: `len` characters from `start` on `line`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub line: usize,
    pub start: usize,
    pub len: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    pub forward: bool,
    /// Every match in the document, in order.
    pub matches: Vec<Match>,
    /// The match last jumped to (drawn apart from the others).
    pub current: Option<Match>,
}

/// The `/` or `?` prompt being typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub forward: bool,
    pub input: String,
}

/// What a key asks of the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Stay in copy mode (the view may have changed).
    Stay,
    /// Stay, and tell the user (`ok` false: something failed, such as a search).
    Say(String, bool),
    /// Put the text on the clipboard and leave.
    Copy(String),
    /// `r` (tmux's refresh-from-pane): take a fresh copy of the pane, the view kept on the
    /// same text.
    Refresh,
    Leave,
}

#[derive(Clone, Debug)]
pub struct CopyMode {
    lines: Vec<Vec<char>>,
    /// `wrapped[i]`: line `i` continues on the next one (the program's text was longer than
    /// the screen was wide), so a copy joins them without a newline.
    wrapped: Vec<bool>,
    /// Lines in view.
    height: usize,
    /// The first line in view.
    top: usize,
    cursor: Pos,
    /// The column up and down keep aiming for across shorter lines (vi's "curswant").
    want_col: usize,
    selection: Option<(Pos, SelKind)>,
    search: Option<Search>,
    prompt: Option<Prompt>,
}

fn char_width(c: char) -> usize {
    Span::raw(c.encode_utf8(&mut [0; 4]).to_string()).width()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// 0 blank, 1 word, 2 punctuation: a `w`/`b` word is a run of one class.
fn class(c: char) -> u8 {
    if c.is_whitespace() {
        0
    } else if is_word(c) {
        1
    } else {
        2
    }
}

impl CopyMode {
    /// A document of `lines` (oldest first) whose last `height` lines are the screen, viewed
    /// `offset` lines up from the bottom, with the cursor at `cursor` (row, screen column) of
    /// that view.
    pub fn new(
        lines: Vec<String>,
        wrapped: Vec<bool>,
        height: usize,
        offset: usize,
        cursor: (usize, usize),
    ) -> CopyMode {
        let mut lines: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
        let height = height.max(1);
        while lines.len() < height {
            lines.push(Vec::new());
        }
        let mut wrapped = wrapped;
        wrapped.resize(lines.len(), false);
        let mut m = CopyMode {
            height,
            top: 0,
            want_col: 0,
            selection: None,
            search: None,
            prompt: None,
            cursor: Pos::default(),
            lines,
            wrapped,
        };
        m.top = m.max_top().saturating_sub(offset);
        let line = (m.top + cursor.0).min(m.last_line());
        let col = m.col_at(line, cursor.1);
        m.set_cursor(Pos { line, col });
        m
    }

    pub fn cursor(&self) -> Pos {
        self.cursor
    }

    pub fn top(&self) -> usize {
        self.top
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Lines above the live screen's top in view (the scrollback offset to draw at).
    pub fn offset(&self) -> usize {
        self.max_top() - self.top
    }

    pub fn search(&self) -> Option<&Search> {
        self.search.as_ref()
    }

    pub fn prompt(&self) -> Option<&Prompt> {
        self.prompt.as_ref()
    }

    pub fn selection_kind(&self) -> Option<SelKind> {
        self.selection.map(|(_, k)| k)
    }

    fn max_top(&self) -> usize {
        self.lines.len() - self.height
    }

    fn last_line(&self) -> usize {
        self.lines.len() - 1
    }

    /// The last character of `line` (vi keeps the cursor on a character).
    fn max_col(&self, line: usize) -> usize {
        self.lines[line].len().saturating_sub(1)
    }

    /// The screen column of character `col` of `line`.
    pub fn column_of(&self, line: usize, col: usize) -> usize {
        self.lines[line]
            .iter()
            .take(col)
            .map(|&c| char_width(c))
            .sum()
    }

    /// The character of `line` drawn at screen column `column` (clamped to the line).
    fn col_at(&self, line: usize, column: usize) -> usize {
        let mut x = 0;
        for (i, &c) in self.lines[line].iter().enumerate() {
            x += char_width(c);
            if x > column {
                return i;
            }
        }
        self.max_col(line)
    }

    fn set_cursor(&mut self, p: Pos) {
        let line = p.line.min(self.last_line());
        self.cursor = Pos {
            line,
            col: p.col.min(self.max_col(line)),
        };
        self.want_col = self.cursor.col;
        self.follow();
    }

    /// Move the view just enough to keep the cursor in it.
    fn follow(&mut self) {
        if self.cursor.line < self.top {
            self.top = self.cursor.line;
        } else if self.cursor.line >= self.top + self.height {
            self.top = self.cursor.line + 1 - self.height;
        }
        self.top = self.top.min(self.max_top());
    }

    fn vertical(&mut self, delta: isize) {
        let line = self
            .cursor
            .line
            .saturating_add_signed(delta)
            .min(self.last_line());
        self.cursor = Pos {
            line,
            col: self.want_col.min(self.max_col(line)),
        };
        self.follow();
    }

    /// Scroll the view by `delta` lines (the wheel, page keys); the cursor moves with it.
    pub fn scroll(&mut self, delta: isize) {
        self.top = self.top.saturating_add_signed(delta).min(self.max_top());
        self.vertical(delta);
    }

    fn line_end(&mut self) {
        let line = self.cursor.line;
        self.set_cursor(Pos {
            line,
            col: self.max_col(line),
        });
        // `$` sticks to the ends of lines, as in vi.
        self.want_col = usize::MAX;
    }

    fn first_non_blank(&mut self) {
        let line = self.cursor.line;
        let col = self.lines[line]
            .iter()
            .position(|c| !c.is_whitespace())
            .unwrap_or(0);
        self.set_cursor(Pos { line, col });
    }

    /// The character at `p`, a line's end reading as a blank (words stop at line ends).
    fn char_at(&self, p: Pos) -> char {
        self.lines[p.line].get(p.col).copied().unwrap_or(' ')
    }

    /// The position after `p`, across lines (the end of a line counts as one blank).
    fn next_pos(&self, p: Pos) -> Option<Pos> {
        if p.col < self.lines[p.line].len() {
            Some(Pos {
                line: p.line,
                col: p.col + 1,
            })
        } else if p.line < self.last_line() {
            Some(Pos {
                line: p.line + 1,
                col: 0,
            })
        } else {
            None
        }
    }

    fn prev_pos(&self, p: Pos) -> Option<Pos> {
        if p.col > 0 {
            Some(Pos {
                line: p.line,
                col: p.col - 1,
            })
        } else if p.line > 0 {
            Some(Pos {
                line: p.line - 1,
                col: self.lines[p.line - 1].len(),
            })
        } else {
            None
        }
    }

    /// `w`: the start of the next word.
    fn word_forward(&mut self) {
        let mut p = self.cursor;
        let start = class(self.char_at(p));
        while let Some(n) = self.next_pos(p) {
            p = n;
            if class(self.char_at(p)) != start {
                break;
            }
        }
        while class(self.char_at(p)) == 0 {
            match self.next_pos(p) {
                Some(n) => p = n,
                None => break,
            }
        }
        self.set_cursor(p);
    }

    /// `b`: the start of this word, or of the previous one.
    fn word_back(&mut self) {
        let mut p = self.cursor;
        while let Some(n) = self.prev_pos(p) {
            p = n;
            if class(self.char_at(p)) != 0 {
                break;
            }
        }
        let c = class(self.char_at(p));
        while let Some(n) = self.prev_pos(p) {
            if class(self.char_at(n)) != c {
                break;
            }
            p = n;
        }
        self.set_cursor(p);
    }

    /// The selection as (first, last) positions, both included.
    fn range(&self) -> Option<(Pos, Pos, SelKind)> {
        let (anchor, kind) = self.selection?;
        let (a, b) = if anchor <= self.cursor {
            (anchor, self.cursor)
        } else {
            (self.cursor, anchor)
        };
        Some((a, b, kind))
    }

    /// The selected characters of `line` (for drawing).
    pub fn selected_cols(&self, line: usize) -> Option<Range<usize>> {
        let (a, b, kind) = self.range()?;
        if line < a.line || line > b.line {
            return None;
        }
        let len = self.lines[line].len().max(1);
        Some(match kind {
            SelKind::Lines => 0..len,
            SelKind::Chars => {
                let start = if line == a.line { a.col } else { 0 };
                let end = if line == b.line { b.col + 1 } else { len };
                start..end.max(start + 1)
            }
        })
    }

    /// The selected text: lines joined with newlines (not where the program's line only
    /// wrapped), trailing blanks trimmed.
    pub fn selected_text(&self) -> Option<String> {
        let (a, b, _) = self.range()?;
        let mut out = String::new();
        for line in a.line..=b.line {
            let cols = self.selected_cols(line).unwrap_or(0..0);
            let chars = &self.lines[line];
            let text: String = chars[cols.start.min(chars.len())..cols.end.min(chars.len())]
                .iter()
                .collect();
            let continues = self.wrapped[line] && cols.end >= chars.len();
            if continues && line < b.line {
                out.push_str(&text);
            } else {
                out.push_str(text.trim_end());
                if line < b.line {
                    out.push('\n');
                }
            }
        }
        Some(out)
    }

    /// Every match of `query` (smart case, as tmux: a query without capitals ignores case).
    fn find_all(&self, query: &str) -> Vec<Match> {
        let fold = !query.chars().any(char::is_uppercase);
        let norm = |c: char| {
            if fold {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            }
        };
        let q: Vec<char> = query.chars().map(norm).collect();
        let mut out = Vec::new();
        if q.is_empty() {
            return out;
        }
        for (line, chars) in self.lines.iter().enumerate() {
            let hay: Vec<char> = chars.iter().map(|&c| norm(c)).collect();
            let mut start = 0;
            while start + q.len() <= hay.len() {
                if hay[start..start + q.len()] == q[..] {
                    out.push(Match {
                        line,
                        start,
                        len: q.len(),
                    });
                    start += q.len();
                } else {
                    start += 1;
                }
            }
        }
        out
    }

    /// Search for `query` from the cursor (`forward` or back), wrapping around the document.
    pub fn start_search(&mut self, query: &str, forward: bool) -> Action {
        let matches = self.find_all(query);
        self.search = Some(Search {
            query: query.to_string(),
            forward,
            matches,
            current: None,
        });
        self.next_match(true)
    }

    /// `n` (`same`) or `N`: the next match in the search's direction, or the other way.
    pub fn next_match(&mut self, same: bool) -> Action {
        let Some(s) = &mut self.search else {
            return Action::Say("no search yet: / or ? starts one".into(), false);
        };
        if s.matches.is_empty() {
            return Action::Say(format!("no match for \"{}\"", s.query), false);
        }
        let forward = s.forward == same;
        let at = |m: &Match| Pos {
            line: m.line,
            col: m.start,
        };
        let cur = self.cursor;
        let found = if forward {
            s.matches.iter().find(|m| at(m) > cur)
        } else {
            s.matches.iter().rev().find(|m| at(m) < cur)
        };
        let (target, wrapped) = match found {
            Some(m) => (*m, false),
            None if forward => (s.matches[0], true),
            None => (s.matches[s.matches.len() - 1], true),
        };
        s.current = Some(target);
        let n = s.matches.iter().position(|m| *m == target).unwrap_or(0) + 1;
        let total = s.matches.len();
        let query = s.query.clone();
        let (line, col) = (target.line, target.start);
        let want = self.want_col;
        self.set_cursor(Pos { line, col });
        if self.selection.is_some() {
            self.want_col = want;
        }
        let mut msg = format!("\"{query}\": match {n} of {total}");
        if wrapped {
            msg.push_str(if forward {
                " (wrapped to the top)"
            } else {
                " (wrapped to the bottom)"
            });
        }
        Action::Say(msg, true)
    }

    /// The match last jumped to.
    pub fn current_match(&self) -> Option<Match> {
        self.search.as_ref()?.current
    }

    fn prompt_key(&mut self, ev: &KeyEvent) -> Action {
        let Some(p) = &mut self.prompt else {
            return Action::Stay;
        };
        match ev.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                p.input.pop();
            }
            KeyCode::Enter => {
                let Prompt { forward, input } = self.prompt.take().unwrap_or(Prompt {
                    forward: true,
                    input: String::new(),
                });
                if input.is_empty() {
                    return match &self.search {
                        // An empty search repeats the last one, as in vi.
                        Some(s) => {
                            let q = s.query.clone();
                            self.start_search(&q, forward)
                        }
                        None => Action::Stay,
                    };
                }
                return self.start_search(&input, forward);
            }
            KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => p.input.push(c),
            _ => {}
        }
        Action::Stay
    }

    /// Text pasted while the search prompt is open goes into it (its first line).
    pub fn paste(&mut self, text: &str) {
        if let Some(p) = &mut self.prompt {
            p.input.push_str(text.lines().next().unwrap_or(""));
        }
    }

    fn toggle_selection(&mut self, kind: SelKind) {
        self.selection = match self.selection {
            Some((_, k)) if k == kind => None,
            Some((anchor, _)) => Some((anchor, kind)),
            None => Some((self.cursor, kind)),
        };
    }

    /// Where the text in view now is in `lines`: the last place at or before where it would
    /// be if lines were only added (the oldest also drop off a full scrollback, moving it up).
    fn find_view(&self, lines: &[Vec<char>]) -> Option<usize> {
        let view = &self.lines[self.top..self.top + self.height];
        let grown = lines.len().saturating_sub(self.lines.len());
        let guess = (self.top + grown).min(lines.len().saturating_sub(self.height));
        (0..=guess)
            .rev()
            .find(|&k| lines.get(k..k + self.height) == Some(view))
    }

    /// The same mode over a newer copy of the pane (`lines`, `wrapped`, `height` rows in
    /// view): the view, cursor and selection stay on the text they were on, and the search is
    /// run again. False when that text is gone (out of the scrollback): the view is then at
    /// the bottom.
    pub fn rebase(&mut self, lines: Vec<String>, wrapped: Vec<bool>, height: usize) -> bool {
        let mut next = CopyMode::new(lines, wrapped, height, 0, (height.max(1) - 1, 0));
        let found = self.find_view(&next.lines);
        if let Some(top) = found {
            let last = next.last_line();
            let shift = |p: Pos| Pos {
                line: (p.line + top).saturating_sub(self.top).min(last),
                col: p.col,
            };
            next.top = top.min(next.max_top());
            next.cursor = shift(self.cursor);
            next.want_col = self.want_col;
            next.selection = self.selection.map(|(a, k)| (shift(a), k));
            next.follow();
        }
        if let Some(s) = &self.search {
            next.search = Some(Search {
                query: s.query.clone(),
                forward: s.forward,
                matches: next.find_all(&s.query),
                current: None,
            });
        }
        *self = next;
        found.is_some()
    }

    pub fn key(&mut self, ev: &KeyEvent) -> Action {
        if self.prompt.is_some() {
            return self.prompt_key(ev);
        }
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let page = self.height as isize;
        let half = (self.height as isize / 2).max(1);
        match ev.code {
            KeyCode::Char('b') if ctrl => self.scroll(-page),
            KeyCode::Char('f') if ctrl => self.scroll(page),
            KeyCode::Char('u') if ctrl => self.scroll(-half),
            KeyCode::Char('d') if ctrl => self.scroll(half),
            KeyCode::Char('y') if ctrl => self.scroll(-1),
            KeyCode::Char('e') if ctrl => self.scroll(1),
            KeyCode::Char('c') if ctrl => return Action::Leave,
            _ if ctrl => {}
            KeyCode::Esc | KeyCode::Char('q') => return Action::Leave,
            KeyCode::Left | KeyCode::Char('h') => {
                let Pos { line, col } = self.cursor;
                self.set_cursor(Pos {
                    line,
                    col: col.saturating_sub(1),
                });
            }
            KeyCode::Right | KeyCode::Char('l') => {
                let Pos { line, col } = self.cursor;
                self.set_cursor(Pos { line, col: col + 1 });
            }
            KeyCode::Up | KeyCode::Char('k') => self.vertical(-1),
            KeyCode::Down | KeyCode::Char('j') => self.vertical(1),
            KeyCode::PageUp => self.scroll(-page),
            KeyCode::PageDown => self.scroll(page),
            KeyCode::Home | KeyCode::Char('0') => {
                let line = self.cursor.line;
                self.set_cursor(Pos { line, col: 0 });
            }
            KeyCode::End | KeyCode::Char('$') => self.line_end(),
            KeyCode::Char('^') => self.first_non_blank(),
            KeyCode::Char('g') => self.set_cursor(Pos::default()),
            KeyCode::Char('G') => self.set_cursor(Pos {
                line: self.last_line(),
                col: 0,
            }),
            KeyCode::Char('H') => self.set_cursor(Pos {
                line: self.top,
                col: 0,
            }),
            KeyCode::Char('L') => self.set_cursor(Pos {
                line: self.top + self.height - 1,
                col: 0,
            }),
            KeyCode::Char('w') => self.word_forward(),
            KeyCode::Char('b') => self.word_back(),
            KeyCode::Char('/') | KeyCode::Char('?') => {
                self.prompt = Some(Prompt {
                    forward: ev.code == KeyCode::Char('/'),
                    input: String::new(),
                });
            }
            KeyCode::Char('r') => return Action::Refresh,
            KeyCode::Char('n') => return self.next_match(true),
            KeyCode::Char('N') => return self.next_match(false),
            KeyCode::Char('v') | KeyCode::Char(' ') => self.toggle_selection(SelKind::Chars),
            KeyCode::Char('V') => self.toggle_selection(SelKind::Lines),
            KeyCode::Char('y') | KeyCode::Enter => {
                return match self.selected_text() {
                    Some(text) => Action::Copy(text),
                    None => Action::Say(
                        "nothing selected: v (characters) or V (lines) starts a selection".into(),
                        false,
                    ),
                };
            }
            _ => {}
        }
        Action::Stay
    }
}

/// The text of `screen` and its whole scrollback, oldest line first, with each line's wrap
/// flag; a pane `height` rows tall shows the screen's top rows, so the rows below are left
/// out. Returns the height in effect (at least 1, at most the screen's rows). Bounded by the
/// emulator's scrollback. Leaves `screen` scrolled back.
fn document(screen: &mut vt100::Screen, height: u16) -> (Vec<String>, Vec<bool>, usize) {
    let (rows, cols) = screen.size();
    let height = height.clamp(1, rows.max(1));
    screen.set_scrollback(usize::MAX);
    let history = screen.scrollback();
    let mut lines = Vec::with_capacity(history + rows as usize);
    let mut wrapped = Vec::with_capacity(lines.capacity());
    // Page down from the oldest line, a screenful at a time.
    let mut at = history;
    loop {
        screen.set_scrollback(at);
        let step = if at == 0 {
            rows as usize
        } else {
            at.min(rows as usize)
        };
        for (r, text) in screen.rows(0, cols).enumerate().take(step) {
            lines.push(text);
            wrapped.push(screen.row_wrapped(r as u16));
        }
        if at == 0 {
            break;
        }
        at -= step;
    }
    let hidden = rows.saturating_sub(height) as usize;
    lines.truncate(lines.len().saturating_sub(hidden));
    wrapped.truncate(lines.len());
    (lines, wrapped, height as usize)
}

/// A pane in copy mode: the copy of its screen it is drawn from, scrolled to the mode's view.
#[derive(Clone, Debug)]
pub struct Frozen {
    /// The pane (its uid) this copy is of.
    pub uid: u64,
    pub id: String,
    pub screen: vt100::Screen,
    pub mode: CopyMode,
}

impl Frozen {
    /// Copy `screen` (viewed `offset` lines up, of which the pane shows `height` rows) with
    /// its whole scrollback: that bounds the document and the search to the emulator's
    /// scrollback.
    pub fn new(uid: u64, id: String, screen: &vt100::Screen, height: u16, offset: usize) -> Frozen {
        let mut screen = screen.clone();
        let (lines, wrapped, height) = document(&mut screen, height);
        let offset = offset.min(lines.len() - height);
        screen.set_scrollback(offset);
        let cursor = if offset == 0 {
            let (r, c) = screen.cursor_position();
            (r as usize, c as usize)
        } else {
            (0, 0)
        };
        let mode = CopyMode::new(lines, wrapped, height, offset, cursor);
        Frozen {
            uid,
            id,
            screen,
            mode,
        }
    }

    /// `r`: a fresh copy of the pane's live `screen`, the view kept on the same text (false:
    /// that text has left the scrollback; the view is at the bottom).
    pub fn refresh(&mut self, screen: &vt100::Screen) -> bool {
        let mut screen = screen.clone();
        let (lines, wrapped, height) = document(&mut screen, self.mode.height() as u16);
        let kept = self.mode.rebase(lines, wrapped, height);
        self.screen = screen;
        self.sync_view();
        kept
    }

    /// A key in copy mode; the copied screen follows the view.
    pub fn key(&mut self, ev: &KeyEvent) -> Action {
        let action = self.mode.key(ev);
        self.sync_view();
        action
    }

    pub fn scroll(&mut self, delta: isize) {
        self.mode.scroll(delta);
        self.sync_view();
    }

    fn sync_view(&mut self) {
        if self.screen.scrollback() != self.mode.offset() {
            self.screen.set_scrollback(self.mode.offset());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(lines: &[&str], height: usize) -> CopyMode {
        let n = lines.len();
        let mut m = CopyMode::new(
            lines.iter().map(|s| s.to_string()).collect(),
            vec![false; n],
            height,
            0,
            (height - 1, 0),
        );
        m.selection = None;
        m
    }

    fn press(m: &mut CopyMode, keys: &str) -> Action {
        let mut last = Action::Stay;
        for c in keys.chars() {
            last = m.key(&KeyEvent::from(KeyCode::Char(c)));
        }
        last
    }

    fn code(m: &mut CopyMode, code: KeyCode) -> Action {
        m.key(&KeyEvent::from(code))
    }

    fn at(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn motions_keep_the_cursor_on_text_and_in_view() {
        let lines: Vec<String> = (0..20).map(|i| format!("line {i:02} text")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut m = doc(&refs, 5);
        // Starts at the live bottom: the last five lines in view, the cursor on the last row.
        assert_eq!((m.top(), m.offset(), m.cursor()), (15, 0, at(19, 0)));
        press(&mut m, "$");
        assert_eq!(m.cursor(), at(19, 11));
        press(&mut m, "l");
        assert_eq!(m.cursor(), at(19, 11), "no further than the last character");
        press(&mut m, "0w");
        assert_eq!(m.cursor(), at(19, 5));
        press(&mut m, "w");
        assert_eq!(m.cursor(), at(19, 8));
        press(&mut m, "b");
        assert_eq!(m.cursor(), at(19, 5));
        press(&mut m, "kkkkk");
        assert_eq!(m.cursor(), at(14, 5));
        assert_eq!((m.top(), m.offset()), (14, 1), "the view follows up by one");
        press(&mut m, "g");
        assert_eq!((m.cursor(), m.top(), m.offset()), (at(0, 0), 0, 15));
        code(&mut m, KeyCode::PageDown);
        assert_eq!((m.cursor(), m.top()), (at(5, 0), 5));
        press(&mut m, "G");
        assert_eq!((m.cursor(), m.offset()), (at(19, 0), 0));
        code(&mut m, KeyCode::PageUp);
        assert_eq!((m.cursor().line, m.top()), (14, 10));
        press(&mut m, "H");
        assert_eq!(m.cursor(), at(10, 0));
        press(&mut m, "L");
        assert_eq!(m.cursor(), at(14, 0));
        assert_eq!(press(&mut m, "q"), Action::Leave);
    }

    #[test]
    fn up_and_down_remember_the_column_across_short_lines() {
        let mut m = doc(&["a long line here", "", "short", "another long line"], 4);
        press(&mut m, "G$");
        assert_eq!(m.cursor(), at(3, 16));
        press(&mut m, "k");
        assert_eq!(m.cursor(), at(2, 4));
        press(&mut m, "k");
        assert_eq!(m.cursor(), at(1, 0));
        press(&mut m, "k");
        assert_eq!(m.cursor(), at(0, 15), "$ sticks to line ends");
        press(&mut m, "0llj");
        assert_eq!(m.cursor(), at(1, 0));
        press(&mut m, "j");
        assert_eq!(m.cursor(), at(2, 2));
    }

    #[test]
    fn search_forward_backward_wraps_and_says_no_match() {
        let mut m = doc(
            &["alpha", "error: one", "beta", "Error two", "gamma", "last"],
            3,
        );
        press(&mut m, "g");
        press(&mut m, "/error");
        assert!(m.prompt().is_some());
        let a = code(&mut m, KeyCode::Enter);
        assert_eq!(a, Action::Say("\"error\": match 1 of 2".into(), true));
        assert_eq!(m.cursor(), at(1, 0));
        assert_eq!(
            press(&mut m, "n"),
            Action::Say("\"error\": match 2 of 2".into(), true)
        );
        assert_eq!(m.cursor(), at(3, 0));
        assert_eq!(
            press(&mut m, "n"),
            Action::Say("\"error\": match 1 of 2 (wrapped to the top)".into(), true)
        );
        press(&mut m, "N");
        assert_eq!(m.cursor(), at(3, 0));
        assert_eq!(
            m.current_match(),
            Some(Match {
                line: 3,
                start: 0,
                len: 5
            })
        );
        // Capitals make it exact; `?` searches up.
        press(&mut m, "G?Error");
        code(&mut m, KeyCode::Enter);
        assert_eq!(m.cursor(), at(3, 0));
        assert_eq!(m.search().unwrap().matches.len(), 1);
        press(&mut m, "/nothing-here");
        let a = code(&mut m, KeyCode::Enter);
        assert_eq!(
            a,
            Action::Say("no match for \"nothing-here\"".into(), false)
        );
        assert_eq!(m.cursor(), at(3, 0), "a failed search does not move");
        // Esc closes the prompt, not the mode; backspace edits it.
        press(&mut m, "/xy");
        code(&mut m, KeyCode::Backspace);
        assert_eq!(m.prompt().unwrap().input, "x");
        assert_eq!(code(&mut m, KeyCode::Esc), Action::Stay);
        assert!(m.prompt().is_none());
    }

    #[test]
    fn char_and_line_selections_copy_what_they_cover() {
        let mut m = doc(&["first line", "second line   ", "third"], 3);
        press(&mut m, "gwv");
        assert_eq!(m.selection_kind(), Some(SelKind::Chars));
        press(&mut m, "j");
        assert_eq!(m.selected_cols(0), Some(6..10));
        assert_eq!(m.selected_cols(1), Some(0..7));
        assert_eq!(press(&mut m, "y"), Action::Copy("line\nsecond".into()));
        // Line-wise, upwards from the last line; trailing blanks are trimmed.
        let mut m = doc(&["first line", "second line   ", "third"], 3);
        press(&mut m, "Vk");
        assert_eq!(
            code(&mut m, KeyCode::Enter),
            Action::Copy("second line\nthird".into())
        );
        // Nothing selected: said, and the mode stays.
        let mut m = doc(&["x"], 1);
        assert!(matches!(press(&mut m, "y"), Action::Say(_, false)));
        // v twice clears it; V turns a character selection into lines.
        press(&mut m, "vv");
        assert_eq!(m.selection_kind(), None);
        press(&mut m, "vV");
        assert_eq!(m.selection_kind(), Some(SelKind::Lines));
    }

    #[test]
    fn wrapped_lines_are_copied_as_one() {
        let mut m = CopyMode::new(
            vec!["0123456789".into(), "abc".into(), "next".into()],
            vec![true, false, false],
            3,
            0,
            (0, 0),
        );
        press(&mut m, "Vjj");
        assert_eq!(
            press(&mut m, "y"),
            Action::Copy("0123456789abc\nnext".into())
        );
    }

    #[test]
    fn wide_characters_map_to_their_columns() {
        let m = CopyMode::new(vec!["日本語 ok".into()], vec![false], 1, 0, (0, 7));
        assert_eq!(
            m.cursor(),
            at(0, 4),
            "column 7 is the o after three wide characters"
        );
        assert_eq!(m.column_of(0, 4), 7);
    }

    fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("line {i}")).collect()
    }

    /// `r`: a newer copy keeps the view, cursor and selection on their text, whether lines
    /// were only added or the oldest also left a full scrollback; text that is gone sends the
    /// view to the bottom.
    #[test]
    fn rebase_keeps_the_view_on_the_same_text() {
        let mut m = CopyMode::new(numbered(0..10), vec![false; 10], 3, 4, (1, 2));
        assert_eq!((m.top(), m.cursor()), (3, at(4, 2)));
        press(&mut m, "vk/line 1");
        code(&mut m, KeyCode::Enter);
        assert_eq!(m.cursor(), at(1, 0), "wrapped to the only match");
        press(&mut m, "N");
        // Five lines more: the same place.
        let mut grown = m.clone();
        assert!(grown.rebase(numbered(0..15), vec![false; 15], 3));
        assert_eq!((grown.top(), grown.cursor()), (m.top(), m.cursor()));
        assert_eq!(grown.selected_text(), m.selected_text());
        assert_eq!(grown.search().unwrap().matches.len(), 6, "line 1, 10 … 14");
        // A full scrollback: four lines more, the four oldest gone; everything moves up four.
        let mut m = CopyMode::new(numbered(0..10), vec![false; 10], 3, 1, (0, 0));
        assert_eq!(m.top(), 6);
        assert!(m.rebase(numbered(4..14), vec![false; 10], 3));
        assert_eq!((m.top(), m.cursor(), m.offset()), (2, at(2, 0), 5));
        // The text in view is gone: the bottom.
        let mut m = CopyMode::new(numbered(0..10), vec![false; 10], 3, 7, (0, 0));
        assert!(!m.rebase(numbered(8..18), vec![false; 10], 3));
        assert_eq!((m.offset(), m.cursor().line), (0, 9));
    }

    #[test]
    fn frozen_reads_the_scrollback_and_follows_the_view() {
        let mut p = vt100::Parser::new(4, 20, 100);
        for i in 0..30 {
            p.process(format!("row {i}\r\n").as_bytes());
        }
        p.process(b"$ ");
        let mut f = Frozen::new(7, "w1".into(), p.screen(), 4, 0);
        // 27 lines of scrollback and the screen's 4.
        assert_eq!(f.mode.len(), 31);
        assert_eq!(
            f.mode.cursor(),
            at(30, 1),
            "on the prompt, where the program's cursor is"
        );
        f.key(&KeyEvent::from(KeyCode::Char('g')));
        assert_eq!(f.screen.scrollback(), 27);
        assert_eq!(f.screen.rows(0, 20).next().unwrap(), "row 0");
        // The live emulator goes on; the copy does not move.
        p.process(b"more\r\nand more\r\n");
        assert_eq!(f.screen.rows(0, 20).next().unwrap(), "row 0");
        for c in "/row 29".chars() {
            f.key(&KeyEvent::from(KeyCode::Char(c)));
        }
        f.key(&KeyEvent::from(KeyCode::Enter));
        assert_eq!(f.mode.cursor(), at(29, 0));
        let top = f.screen.rows(0, 20).next().unwrap();
        assert_eq!(top, format!("row {}", f.mode.top()));
        // `r` takes the live screen again; the view stays on "row 26".
        assert!(f.refresh(p.screen()));
        assert_eq!(
            f.screen.rows(0, 20).next().unwrap(),
            format!("row {}", f.mode.top())
        );
        assert_eq!(f.mode.len(), 33);
        assert_eq!(f.screen.rows(0, 20).last().unwrap(), "row 29");
        // Entered while scrolled back: the view starts there.
        let f = Frozen::new(7, "w1".into(), p.screen(), 4, 10);
        assert_eq!(f.mode.offset(), 10);
        assert_eq!(f.screen.scrollback(), 10);
    }
}
