//! The screen gate: what the rendered screen says about typed input, read through a session's
//! [`Profile`]. Pure functions over a [`View`] of the visible rows, so the rules are unit-tested
//! on screens; the waiting itself lives in `input.rs`.
//!
//! A quiet window is not proof that a program read its input (an agent that did not read its
//! terminal for a second gets text and Enter in one read and takes the Enter as a pasted line
//! break); the rendered input area is.

use super::profile::Profile;

/// Rows an input area may span below its prompt row when no end marker closes it.
const MAX_INPUT_ROWS: usize = 24;
/// Rows above the input area where a busy marker counts (the agents draw their spinner row
/// just above the input: Codex 3, Gemini 4 rows).
const BUSY_ROWS_ABOVE: usize = 8;
/// Characters of the text's end looked for in the input area.
const TAIL_CHARS: usize = 24;

/// The visible screen, as the gate reads it.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub rows: Vec<String>,
    /// `wrapped[i]`: row `i` continues on row `i + 1` (a soft wrap).
    pub wrapped: Vec<bool>,
    pub cursor_row: usize,
    /// The window title the program set (OSC 0/2).
    pub title: String,
}

impl View {
    pub fn of(screen: &vt100::Screen, title: Option<&str>) -> View {
        let (rows, cols) = screen.size();
        View {
            rows: screen.rows(0, cols).collect(),
            wrapped: (0..rows).map(|r| screen.row_wrapped(r)).collect(),
            cursor_row: screen.cursor_position().0 as usize,
            title: title.unwrap_or_default().to_string(),
        }
    }

    /// The rows of the input area: from the last prompt row down to the end marker, or, for a
    /// profile without a prompt pattern, the logical line under the cursor. `None` when the
    /// profile's prompt is not on the screen.
    fn input_rows(&self, p: &Profile) -> Option<&[String]> {
        match &p.prompt {
            Some(prompt) => {
                let start = self.rows.iter().rposition(|r| prompt.is_match(r))?;
                let limit = (start + MAX_INPUT_ROWS).min(self.rows.len());
                let end = match &p.input_end {
                    Some(end) => (start + 1..limit)
                        .find(|&i| end.is_match(&self.rows[i]))
                        .unwrap_or(limit),
                    None => limit,
                };
                Some(&self.rows[start..end])
            }
            None => {
                let row = self.cursor_row.min(self.rows.len().checked_sub(1)?);
                let mut start = row;
                while start > 0 && self.wrapped.get(start - 1).copied().unwrap_or(false) {
                    start -= 1;
                }
                Some(&self.rows[start..=row])
            }
        }
    }

    /// The input area, normalized (see [`normalize`]).
    pub fn input_area(&self, p: &Profile) -> Option<String> {
        self.input_rows(p).map(|rows| normalize(&rows.concat()))
    }

    /// Paste placeholders in the input area.
    pub fn pasted(&self, p: &Profile) -> usize {
        match (&p.pasted, self.input_rows(p)) {
            (Some(re), Some(rows)) => rows.iter().map(|r| re.find_iter(r).count()).sum(),
            _ => 0,
        }
    }

    /// A turn runs: the busy marker near the input area (not in the transcript, where a reply
    /// may quote it), or the busy title.
    pub fn busy(&self, p: &Profile) -> bool {
        let from = p
            .prompt
            .as_ref()
            .and_then(|re| self.rows.iter().rposition(|r| re.is_match(r)))
            .map_or(0, |row| row.saturating_sub(BUSY_ROWS_ABOVE));
        p.busy
            .as_ref()
            .is_some_and(|re| self.rows[from..].iter().any(|r| re.is_match(r)))
            || p.busy_title
                .as_ref()
                .is_some_and(|re| re.is_match(&self.title))
    }

    /// Ready for the next message (the profile's view; the caller adds the quiet window):
    /// no busy marker, and the input area on the screen.
    pub fn ready(&self, p: &Profile) -> bool {
        !self.busy(p) && self.input_rows(p).is_some()
    }
}

/// Text as compared with the screen: without whitespace (wrapping and padding move it) and
/// without box-drawing characters (an input box's borders cut wrapped text).
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !('\u{2500}'..='\u{259f}').contains(c))
        .collect()
}

/// What must show in the input area once the text was read: the end of its last non-blank
/// line, normalized. Empty for text with nothing visible.
pub fn tail(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .map(normalize)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let n = line.chars().count();
    line.chars().skip(n.saturating_sub(TAIL_CHARS)).collect()
}

/// The input area before one message is typed, and what the screen must show for it.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub tail: String,
    area: Option<String>,
    pasted: usize,
}

impl Baseline {
    pub fn take(view: &View, p: &Profile, text: &str) -> Baseline {
        Baseline {
            tail: tail(text),
            area: view.input_area(p),
            pasted: view.pasted(p),
        }
    }

    /// The text shows in the input area: its tail there (or one more paste placeholder), and
    /// the area changed since before the text was typed (a placeholder such as "Type your
    /// message" may hold the tail already).
    pub fn consumed(&self, view: &View, p: &Profile) -> bool {
        let Some(area) = view.input_area(p) else {
            return false;
        };
        if self.area.as_deref() == Some(area.as_str()) {
            return false;
        }
        (!self.tail.is_empty() && area.contains(&self.tail)) || view.pasted(p) > self.pasted
    }

    /// The text left the input area (or the agent turned busy): the Enter was taken as a submit.
    pub fn submitted(&self, view: &View, p: &Profile) -> bool {
        if view.busy(p) {
            return true;
        }
        let Some(area) = view.input_area(p) else {
            // The input area is gone: for a profile with a prompt pattern that is a redraw in
            // progress, not yet proof.
            return p.prompt.is_none();
        };
        let holds_tail = !self.tail.is_empty() && area.contains(&self.tail);
        !holds_tail && view.pasted(p) <= self.pasted
    }

    /// The input area still holds this text (unsubmitted).
    pub fn still_typed(&self, view: &View, p: &Profile) -> bool {
        !self.submitted(view, p) && self.consumed(view, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::profile::Profiles;

    impl View {
        /// A view of plain rows; no soft wraps.
        fn from_rows(rows: &[&str], cursor_row: usize) -> View {
            View {
                rows: rows.iter().map(|r| r.to_string()).collect(),
                wrapped: vec![false; rows.len()],
                cursor_row,
                title: String::new(),
            }
        }
    }

    fn prof(name: &str) -> std::sync::Arc<Profile> {
        Profiles::builtin().get(name).unwrap()
    }

    #[test]
    fn tails_are_normalized_ends_of_the_last_line() {
        assert_eq!(tail("say hi"), "sayhi");
        assert_eq!(tail("first\nsecond line\n\n"), "secondline");
        assert_eq!(tail("   "), "");
        assert_eq!(tail(&"x".repeat(100)).len(), TAIL_CHARS);
        assert_eq!(normalize("│ > a b │"), ">ab");
    }

    const READY: &[&str] = &[
        "",
        "╭──────────────────────────────╮",
        "│ >   Type your message        │",
        "╰──────────────────────────────╯",
        "  ? for shortcuts",
    ];

    fn boxed(input: &str, status: &str) -> Vec<String> {
        vec![
            "> earlier prompt".to_string(),
            "╭──────────────────────────────╮".to_string(),
            format!("│ > {input:<27}│"),
            "╰──────────────────────────────╯".to_string(),
            status.to_string(),
        ]
    }

    fn view(rows: &[String]) -> View {
        let r: Vec<&str> = rows.iter().map(String::as_str).collect();
        View::from_rows(&r, 0)
    }

    #[test]
    fn an_agent_input_box_is_found_by_its_prompt() {
        let p = prof("gemini");
        let ready = View::from_rows(READY, 4);
        assert!(ready.ready(&p));
        let base = Baseline::take(&ready, &p, "message");
        // The placeholder holds "message" already: only a changed area counts.
        assert!(!base.consumed(&ready, &p));
        let typed = view(&boxed("message", ""));
        assert!(base.consumed(&typed, &p));
        assert!(!base.submitted(&typed, &p));
        assert!(base.still_typed(&typed, &p));
        // After the Enter: the text moved to the transcript, the box is empty.
        let mut after = boxed("", "⠋ Thinking (esc to cancel, 1s)");
        after.insert(0, "> message".into());
        assert!(base.submitted(&view(&after), &p));
        let after_idle = boxed("", "");
        // A reply that quotes the busy marker far above the input is not a running turn.
        let mut quoted = vec!["✦ press esc to cancel a turn".to_string()];
        quoted.extend(std::iter::repeat_n(String::new(), 12));
        quoted.extend(boxed("", ""));
        assert!(!view(&quoted).busy(&p));
        assert!(base.submitted(&view(&after_idle), &p));
        assert!(!view(&after).ready(&p));
    }

    #[test]
    fn an_enter_taken_as_a_line_break_is_not_a_submit() {
        let p = prof("gemini");
        let base = Baseline::take(&View::from_rows(READY, 4), &p, "say hi");
        let rows = [
            "╭──────────────────────────────╮",
            "│ > say hi                     │",
            "│                              │",
            "╰──────────────────────────────╯",
        ];
        let v = View::from_rows(&rows, 2);
        assert!(base.consumed(&v, &p));
        assert!(!base.submitted(&v, &p));
    }

    #[test]
    fn paste_placeholders_count_as_consumed() {
        let p = prof("claude");
        let base = Baseline::take(&View::from_rows(READY, 4), &p, &"long line\n".repeat(40));
        let v = view(&boxed("[Pasted text #1 +40 lines]", ""));
        assert!(base.consumed(&v, &p));
        assert!(!base.submitted(&v, &p));
        assert!(base.submitted(&view(&boxed("", "")), &p));
    }

    #[test]
    fn a_shell_line_is_the_logical_line_under_the_cursor() {
        let p = prof("shell");
        let before = View::from_rows(&["$ ls", "a b", "$ "], 2);
        let base = Baseline::take(&before, &p, "echo hi");
        let typed = View::from_rows(&["$ ls", "a b", "$ echo hi"], 2);
        assert!(base.consumed(&typed, &p));
        assert!(!base.submitted(&typed, &p));
        let ran = View::from_rows(&["$ ls", "a b", "$ echo hi", "hi", "$ "], 4);
        assert!(base.submitted(&ran, &p));
        // A long line wraps onto the cursor's row: the logical line joins them.
        let long = "echo 0123456789abcdefghijklmnopqrstuvwxyz";
        let base = Baseline::take(&before, &p, long);
        let mut wrapped = View::from_rows(&["$ echo 0123456789abcdefghij", "klmnopqrstuvwxyz"], 1);
        wrapped.wrapped[0] = true;
        assert!(base.consumed(&wrapped, &p));
    }

    #[test]
    fn no_prompt_on_screen_is_not_ready() {
        let p = prof("claude");
        let v = View::from_rows(&["Welcome to Claude Code", "Loading…"], 1);
        assert!(!v.ready(&p));
        assert!(!Baseline::take(&v, &p, "x").consumed(&v, &p));
    }

    /// A screen recorded from the real CLI (tests/fixtures/screens, taken through telepty by
    /// scripts/agents-check.sh --screens): a title line, a cursor line, then the rows.
    fn recorded(name: &str) -> View {
        let path = format!(
            "{}/tests/fixtures/screens/{name}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut lines = text.lines();
        let title = lines
            .next()
            .and_then(|l| l.strip_prefix("title: "))
            .unwrap_or("");
        let cursor: usize = lines
            .next()
            .and_then(|l| l.strip_prefix("cursor: "))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let rows: Vec<&str> = lines.collect();
        let mut v = View::from_rows(&rows, cursor);
        v.title = title.to_string();
        v
    }

    #[test]
    fn the_real_agents_screens_read_as_their_profiles_say() {
        let long = format!("{}Z\nsecond line", "abcdefghi ".repeat(200));
        for agent in ["claude", "codex", "gemini"] {
            let p = prof(agent);
            let ready = recorded(&format!("{agent}-a"));
            assert!(ready.ready(&p), "{agent}: (a) is ready");
            let typed = Baseline::take(&ready, &p, "hello there");
            let b = recorded(&format!("{agent}-b"));
            assert!(typed.consumed(&b, &p), "{agent}: (b) shows the text");
            assert!(!typed.submitted(&b, &p), "{agent}: (b) is not submitted");
            let lines = Baseline::take(&ready, &p, "line one\nline two\nline three");
            assert!(
                lines.consumed(&recorded(&format!("{agent}-c")), &p),
                "{agent}: (c)"
            );
            let pasted = Baseline::take(&ready, &p, &long);
            let d = recorded(&format!("{agent}-dprime"));
            assert!(pasted.consumed(&d, &p), "{agent}: (d') placeholder");
            assert!(!pasted.submitted(&d, &p), "{agent}: (d') not submitted");
            let busy = recorded(&format!("{agent}-e"));
            assert!(busy.busy(&p) && !busy.ready(&p), "{agent}: (e) is busy");
            let slow = Baseline::take(&ready, &p, "SLOW please");
            assert!(
                slow.submitted(&busy, &p),
                "{agent}: (e) confirms the submit"
            );
            let after = recorded(&format!("{agent}-f"));
            assert!(
                after.ready(&p) && !after.busy(&p),
                "{agent}: (f) ready again"
            );
            assert!(slow.submitted(&after, &p), "{agent}: (f) input area clear");
        }
        // Text and Enter in one read: Codex and Gemini keep the text unsubmitted.
        for agent in ["codex", "gemini"] {
            let p = prof(agent);
            let base = Baseline::take(
                &recorded(&format!("{agent}-a")),
                &p,
                &format!("STOPTEST one read {agent}"),
            );
            let h = recorded(&format!("{agent}-h"));
            assert!(base.still_typed(&h, &p), "{agent}: (h) still typed");
        }
    }
}
