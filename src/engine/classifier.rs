//! Heuristic agent-state classifier (API.md §5) and the escape stripper that feeds it.
//!
//! Pure logic: no I/O and no clock reads. The caller passes a monotonic millisecond
//! counter (for durations) and the wall clock (for the timestamps it reports).

use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;
use std::time::SystemTime;

use regex::Regex;
use serde_json::Value;

use crate::util::{iso, unix_ms};

use crate::wire::{
    self,
    session::{AutoBrief, AutoView},
};

/// Characters of output kept for `last_output_preview`.
const PREVIEW_CHARS: usize = 200;
/// How long a prompt must stand without output before a program without a profile counts as
/// idle at it (a prompt drawn mid-output is not a resting one).
const PROMPT_SETTLE_MS: u64 = 500;
/// Bytes of recent output kept for analysis; trimmed lazily at twice this size.
const RECENT_BYTES: usize = 4096;
/// A line longer than this without a newline is analysed anyway, so a program that
/// never prints `\n` cannot grow the buffer without bound.
const MAX_PARTIAL_LINE_BYTES: usize = 4096;
const FINGERPRINT_CHARS: usize = 120;
/// Hard cap on remembered error occurrences, independent of the time window.
const MAX_ERROR_OCCURRENCES: usize = 1024;
/// How many non-blank lines (screen or output) the detectors look at.
const CONTEXT_LINES: usize = 5;
/// Output lines consulted for thinking cues; fewer than the screen because raw output
/// keeps lines the screen has already overwritten.
const OUTPUT_THINKING_LINES: usize = 3;
const DETAIL_EXCERPT_CHARS: usize = 80;

/// What an agent's profile reads on its screen (`gate::View::busy` / `ready`).
#[derive(Clone, Debug)]
pub struct AgentSignal {
    pub profile: String,
    pub busy: bool,
    pub ready: bool,
}

/// For a shell: whether the shell itself holds the terminal's foreground (at its prompt, or
/// in a builtin such as `read`) or a job it started does. The kernel's answer, so a silent
/// `sleep 600` is working and a prompt redrawn by a resize is not activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShellSignal {
    pub at_prompt: bool,
}

/// What the kernel says of a program that has no profile: its foreground process is blocked
/// reading the terminal (ready for input, whatever the screen shows), or busy (running, on a
/// timer, waiting for a child or a pipe), or neither can be told (poll, futex, …: the screen
/// decides, as before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessSignal {
    ReadsTerminal,
    Busy,
    Unknown,
}

impl ProcessSignal {
    /// From `/proc/PID/stat`'s state letter, `/proc/PID/wchan`, and whether the process has
    /// a socket open. `wait_woken` is where a read of a terminal sleeps, but a socket read
    /// sleeps there too: with a socket open it could be either.
    pub fn from_proc(state: char, wchan: &str, has_socket: bool) -> ProcessSignal {
        match (state, wchan) {
            ('R', _) => ProcessSignal::Busy,
            (_, "wait_woken" | "n_tty_read") if !has_socket => ProcessSignal::ReadsTerminal,
            (_, "hrtimer_nanosleep" | "do_nanosleep" | "do_wait" | "pipe_read") => {
                ProcessSignal::Busy
            }
            _ => ProcessSignal::Unknown,
        }
    }

    /// The reading of process `pid` (`Unknown` if /proc does not say). A few small reads of
    /// /proc, no syscall tracing: `wchan` and `fd` need only the read access a process's
    /// owner has, not the ptrace rights `/proc/PID/syscall` would.
    pub fn of_pid(pid: u32) -> ProcessSignal {
        let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            return ProcessSignal::Unknown;
        };
        // The state follows the command's closing parenthesis (which may itself hold spaces).
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next());
        let wchan = std::fs::read_to_string(dir.join("wchan")).unwrap_or_default();
        let has_socket = std::fs::read_dir(dir.join("fd")).map_or(true, |fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
        });
        match state {
            Some(state) => ProcessSignal::from_proc(state, wchan.trim(), has_socket),
            None => ProcessSignal::Unknown,
        }
    }
}

/// Whether a shell started with `args` reads commands from its terminal: not with `-c` (also
/// in a cluster such as `-lc`) or a script, unless `-i` says so. Only then does its holding
/// the foreground mean "at the prompt" (a script runs its commands without job control).
pub fn interactive_shell(args: &[String]) -> bool {
    let short = |a: &str, f: char| a.starts_with('-') && !a.starts_with("--") && a.contains(f);
    if args.iter().any(|a| short(a, 'i')) {
        return true;
    }
    !args.iter().any(|a| short(a, 'c') || !a.starts_with('-'))
}

#[derive(Clone, Debug)]
pub struct ClassifierConfig {
    pub idle_timeout_ms: u64,
    pub stuck_repeat_count: u32,
    pub stuck_window_ms: u64,
    pub thinking_timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AutoState {
    Running,
    Idle,
    Thinking,
    Stuck,
    WaitingInput,
}

impl AutoState {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub from: AutoState,
    pub to: AutoState,
    pub detail: String,
}

/// One evaluation result; kept separate so `tick` can compare before committing.
struct Verdict {
    state: AutoState,
    confidence: f64,
    detail: String,
}

impl Verdict {
    fn new(state: AutoState, confidence: f64, detail: impl Into<String>) -> Verdict {
        Verdict {
            state,
            confidence,
            detail: detail.into(),
        }
    }
}

pub struct Classifier {
    cfg: ClassifierConfig,
    started_ms: u64,
    state: AutoState,
    since_ms: u64,
    since_wall: SystemTime,
    confidence: f64,
    detail: String,
    last_output_ms: Option<u64>,
    last_output_wall: Option<SystemTime>,
    preview: String,
    recent: String,
    /// Output received since the previous tick. Thinking cues are looked for here rather
    /// than in `recent` because `\r`-redrawn spinners leave their frames glued to the
    /// line that replaced them once the carriage returns are stripped.
    fresh: String,
    partial_line: String,
    /// (fingerprint, monotonic ms) of error lines, oldest first.
    errors: VecDeque<(String, u64)>,
    /// Start of the current uninterrupted run of thinking cues.
    thinking_since: Option<u64>,
    /// Output read before this (monotonic ms) is the program's redraw after a resize (a new
    /// size, a viewer joining or leaving): it is screen, not activity.
    redraw_until_ms: u64,
    /// What the kernel last said of a program without a profile (see [`ProcessSignal`]).
    process: ProcessSignal,
}

/// How long after a resize output counts as the redraw it causes. It covers the program's
/// reaction and the classifier's tick (200 ms) that reads it.
const REDRAW_GRACE_MS: u64 = 500;

impl Classifier {
    pub fn new(cfg: ClassifierConfig, now_ms: u64, now_wall: SystemTime) -> Self {
        Self {
            cfg,
            started_ms: now_ms,
            state: AutoState::Running,
            since_ms: now_ms,
            since_wall: now_wall,
            confidence: 0.5,
            detail: "session started".to_string(),
            last_output_ms: None,
            last_output_wall: None,
            preview: String::new(),
            recent: String::new(),
            fresh: String::new(),
            partial_line: String::new(),
            errors: VecDeque::new(),
            thinking_since: None,
            redraw_until_ms: 0,
            process: ProcessSignal::Unknown,
        }
    }

    /// The kernel's reading of the foreground process, for a program without a profile.
    pub fn note_process(&mut self, signal: ProcessSignal) {
        self.process = signal;
    }

    /// The terminal was resized: the redraw that follows is not activity.
    pub fn note_resize(&mut self, now_ms: u64) {
        self.redraw_until_ms = now_ms + REDRAW_GRACE_MS;
    }

    /// Escape-stripped output text as it arrives (may split lines anywhere). Keeps a
    /// bounded tail (last 200 chars preview, last ~4 KiB for analysis) and feeds the
    /// error-fingerprint counter.
    pub fn observe_output(&mut self, text: &str, now_ms: u64, now_wall: SystemTime) {
        if text.is_empty() {
            return;
        }
        if now_ms >= self.redraw_until_ms {
            self.last_output_ms = Some(now_ms);
            self.last_output_wall = Some(now_wall);
        }
        push_tail_chars(&mut self.preview, text, PREVIEW_CHARS);
        push_tail_bytes(&mut self.recent, text, RECENT_BYTES);
        push_tail_bytes(&mut self.fresh, text, RECENT_BYTES);

        for piece in text.split_inclusive('\n') {
            if let Some(body) = piece.strip_suffix('\n') {
                self.partial_line.push_str(body);
                let line = std::mem::take(&mut self.partial_line);
                self.note_line(&line, now_ms);
            } else {
                self.partial_line.push_str(piece);
                if self.partial_line.len() > MAX_PARTIAL_LINE_BYTES {
                    let line = std::mem::take(&mut self.partial_line);
                    self.note_line(&line, now_ms);
                }
            }
        }
        self.prune_errors(now_ms);
    }

    /// Called once a second with the last non-blank rendered screen lines (up to ~5,
    /// oldest first), what the session's agent profile reads on the screen (the same model
    /// delivery waits on: a turn running, or the input area ready) and, when the session is a
    /// shell, its foreground reading. Returns a transition when the state changed.
    pub fn tick_full(
        &mut self,
        screen_tail: &[String],
        agent: Option<AgentSignal>,
        shell: Option<ShellSignal>,
        now_ms: u64,
        now_wall: SystemTime,
    ) -> Option<Transition> {
        self.prune_errors(now_ms);
        let verdict = agent
            .and_then(|a| self.profile_verdict(a, screen_tail, now_ms))
            .or_else(|| shell.and_then(|sh| self.shell_verdict(sh, screen_tail)));
        let verdict = match verdict {
            Some(v) => v,
            None => self.evaluate(screen_tail, now_ms),
        };
        self.fresh.clear();
        let from = self.state;
        self.confidence = verdict.confidence;
        self.detail = verdict.detail;
        if verdict.state == from {
            return None;
        }
        self.state = verdict.state;
        self.since_ms = now_ms;
        self.since_wall = now_wall;
        Some(Transition {
            from,
            to: verdict.state,
            detail: self.detail.clone(),
        })
    }

    pub fn state(&self) -> AutoState {
        self.state
    }

    /// JSON for GET /api/sessions/:id/state `auto`.
    pub fn view(&self, now_ms: u64) -> Value {
        wire::value(&AutoView {
            state: self.state.as_str().into(),
            since: iso(self.since_wall),
            since_ms: unix_ms(self.since_wall),
            duration_ms: now_ms.saturating_sub(self.since_ms),
            confidence: self.confidence,
            last_output_at: self.last_output_wall.map(iso),
            last_output_preview: self.preview.clone(),
            detail: self.detail.clone(),
        })
    }

    /// `{state, since, confidence}` for the session object's `autoState`.
    pub fn brief(&self) -> Value {
        wire::value(&AutoBrief {
            state: self.state.as_str().into(),
            since: iso(self.since_wall),
            confidence: self.confidence,
        })
    }

    fn note_line(&mut self, line: &str, now_ms: u64) {
        if let Some(fp) = error_fingerprint(line) {
            self.errors.push_back((fp, now_ms));
            while self.errors.len() > MAX_ERROR_OCCURRENCES {
                self.errors.pop_front();
            }
        }
    }

    fn prune_errors(&mut self, now_ms: u64) {
        let expired = |at: &u64| now_ms.saturating_sub(*at) > self.cfg.stuck_window_ms;
        while self.errors.front().is_some_and(|(_, at)| expired(at)) {
            self.errors.pop_front();
        }
    }

    /// The fingerprint seen often enough inside the window, if any (most frequent wins).
    fn repeated_error(&self) -> Option<(&str, u32)> {
        let needed = self.cfg.stuck_repeat_count.max(1);
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for (fp, _) in &self.errors {
            *counts.entry(fp.as_str()).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n >= needed)
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
    }

    /// The last non-blank `lines`, normalised, oldest first.
    fn tail_lines<'a>(lines: impl DoubleEndedIterator<Item = &'a str>, max: usize) -> Vec<String> {
        let mut lines: Vec<String> = lines
            .rev()
            .map(normalize_line)
            .filter(|l| !l.is_empty())
            .take(max)
            .map(str::to_string)
            .collect();
        lines.reverse();
        lines
    }

    /// The profile's reading, when it has one: a busy marker means a turn runs (however long
    /// it prints nothing); a ready input area means idle (however much a resize redrew). A
    /// question on the screen still outranks both.
    fn profile_verdict(
        &mut self,
        a: AgentSignal,
        screen_tail: &[String],
        now_ms: u64,
    ) -> Option<Verdict> {
        if asks_question(screen_tail) {
            return None;
        }
        if a.busy {
            let since = *self.thinking_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) > self.cfg.thinking_timeout_ms {
                return Some(Verdict::new(
                    AutoState::Stuck,
                    0.7,
                    format!("busy for over {}s", self.cfg.thinking_timeout_ms / 1000),
                ));
            }
            return Some(Verdict::new(
                AutoState::Thinking,
                0.95,
                format!("{}: a turn is running", a.profile),
            ));
        }
        self.thinking_since = None;
        a.ready.then(|| {
            Verdict::new(
                AutoState::Idle,
                0.95,
                format!("{}: ready for input", a.profile),
            )
        })
    }

    /// A shell's reading: at its prompt it is idle, with a job in the foreground it works,
    /// however quiet either is. A question on the screen and a repeated error (stuck) still
    /// go to the screen heuristics.
    fn shell_verdict(&self, sh: ShellSignal, screen_tail: &[String]) -> Option<Verdict> {
        if asks_question(screen_tail) || self.repeated_error().is_some() {
            return None;
        }
        Some(if sh.at_prompt {
            Verdict::new(AutoState::Idle, 0.95, "shell: at its prompt")
        } else {
            Verdict::new(
                AutoState::Running,
                0.9,
                "shell: a command runs in the foreground",
            )
        })
    }

    fn evaluate(&mut self, screen_tail: &[String], now_ms: u64) -> Verdict {
        let screen = Self::tail_lines(screen_tail.iter().map(String::as_str), CONTEXT_LINES);
        // Without an emulator view the raw output tail is the best stand-in for the screen.
        let context = if screen.is_empty() {
            Self::tail_lines(self.recent.lines(), CONTEXT_LINES)
        } else {
            screen
        };

        if let Some(line) = waiting_input_line(&context) {
            self.thinking_since = None;
            return Verdict::new(
                AutoState::WaitingInput,
                0.9,
                format!("waiting for input: {}", excerpt(line)),
            );
        }

        // Silence outranks stuck/thinking: whatever the last output said, nothing is
        // happening now.
        let last_activity = self.last_output_ms.unwrap_or(self.started_ms);
        let silent_ms = now_ms.saturating_sub(last_activity);
        if silent_ms >= self.cfg.idle_timeout_ms {
            self.thinking_since = None;
            match self.process {
                ProcessSignal::Busy => {
                    return Verdict::new(AutoState::Running, 0.6, "no output, but busy (kernel)");
                }
                ProcessSignal::ReadsTerminal => {
                    return Verdict::new(AutoState::Idle, 0.9, "reading its terminal, quiet");
                }
                ProcessSignal::Unknown => {}
            }
            if self.last_output_ms.is_none() {
                return Verdict::new(AutoState::Idle, 0.6, "no output since start");
            }
            let at_prompt = context.last().is_some_and(|l| looks_like_prompt(l));
            return if at_prompt {
                Verdict::new(AutoState::Idle, 0.9, "no recent output; prompt visible")
            } else {
                Verdict::new(AutoState::Idle, 0.6, "no recent output")
            };
        }

        let at_prompt = context.last().is_some_and(|l| looks_like_prompt(l));
        let mut candidates = context;
        candidates.extend(Self::tail_lines(self.fresh.lines(), OUTPUT_THINKING_LINES));
        let thinking_cue = candidates
            .iter()
            .find(|l| is_thinking_line(l))
            .map(|l| excerpt(l));
        if thinking_cue.is_some() {
            self.thinking_since.get_or_insert(now_ms);
        } else {
            self.thinking_since = None;
        }

        // A prompt that has stood still for a moment: the program waits for its next input.
        // Without this, a program that has no profile read `running` at its prompt for the
        // whole idle timeout (scripts/state-accuracy.py, the plain program). The kernel can
        // say more: a program blocked reading its terminal waits for input whatever its
        // screen shows, and one that sleeps or waits for a child is not at a resting prompt.
        let settled = now_ms.saturating_sub(last_activity) >= PROMPT_SETTLE_MS;
        let quiet = settled && self.last_output_ms.is_some();
        if settled && thinking_cue.is_none() && self.repeated_error().is_none() {
            match self.process {
                ProcessSignal::ReadsTerminal => {
                    return Verdict::new(AutoState::Idle, 0.9, "reading its terminal, quiet");
                }
                ProcessSignal::Unknown if at_prompt && quiet => {
                    return Verdict::new(AutoState::Idle, 0.9, "prompt visible, quiet");
                }
                _ => {}
            }
        }

        if let Some((fp, n)) = self.repeated_error() {
            return Verdict::new(
                AutoState::Stuck,
                0.8,
                format!(
                    "same error {n}x within {}s: {}",
                    self.cfg.stuck_window_ms / 1000,
                    excerpt(fp)
                ),
            );
        }

        if let Some(cue) = thinking_cue {
            let thinking_for = self
                .thinking_since
                .map_or(0, |since| now_ms.saturating_sub(since));
            if thinking_for > self.cfg.thinking_timeout_ms {
                return Verdict::new(
                    AutoState::Stuck,
                    0.7,
                    format!("thinking for over {}s", self.cfg.thinking_timeout_ms / 1000),
                );
            }
            return Verdict::new(AutoState::Thinking, 0.7, format!("thinking: {cue}"));
        }

        if self.last_output_ms.is_none() {
            return Verdict::new(AutoState::Running, 0.5, "session started");
        }
        Verdict::new(AutoState::Running, 0.7, "producing output")
    }
}

fn push_tail_chars(buf: &mut String, text: &str, max_chars: usize) {
    buf.push_str(text);
    let count = buf.chars().count();
    if count > max_chars {
        let cut = buf
            .char_indices()
            .nth(count - max_chars)
            .map_or(buf.len(), |(i, _)| i);
        buf.drain(..cut);
    }
}

/// Append, keeping about the last `max_bytes` (cut at a character boundary). Trims only when
/// the buffer doubles, so per-chunk cost stays amortised O(chunk).
pub(super) fn push_tail_bytes(buf: &mut String, text: &str, max_bytes: usize) {
    buf.push_str(text);
    if buf.len() > max_bytes * 2 {
        let mut cut = buf.len() - max_bytes;
        while !buf.is_char_boundary(cut) {
            cut += 1;
        }
        buf.drain(..cut);
    }
}

fn excerpt(s: &str) -> String {
    wire::describe::cut(s.to_string(), DETAIL_EXCERPT_CHARS)
}

/// TUIs draw prompts inside boxes (`│ > │`), so box-drawing borders are not content.
fn normalize_line(line: &str) -> &str {
    line.trim_matches(|c: char| c.is_whitespace() || ('\u{2500}'..='\u{257f}').contains(&c))
}

/// Shell/REPL prompt: ends with `$ # % > ❯ ›` (so `>>>` too), trailing spaces allowed.
fn looks_like_prompt(line: &str) -> bool {
    normalize_line(line)
        .chars()
        .last()
        .is_some_and(|c| matches!(c, '$' | '#' | '%' | '>' | '❯' | '›'))
}

static ERROR_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:\b(0|no|zero)\s+)?(?:error|failed|exception|traceback|panicked)")
        .expect("error regex")
});
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+").expect("digit regex"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("space regex"));

/// Normalised fingerprint of an error line, or None when the line reports no error.
/// Summaries such as `0 failed` / `no errors` mention the words without reporting a
/// failure; counting them would flag every repeated successful test run as stuck.
pub fn error_fingerprint(line: &str) -> Option<String> {
    let is_error = ERROR_WORD
        .captures_iter(line)
        .any(|caps| caps.get(1).is_none());
    if !is_error {
        return None;
    }
    let lowered = line.to_lowercase();
    let hashed = DIGITS.replace_all(&lowered, "#");
    let collapsed = SPACES.replace_all(&hashed, " ");
    let fp: String = collapsed.trim().chars().take(FINGERPRINT_CHARS).collect();
    if fp.is_empty() { None } else { Some(fp) }
}

// Answer-slot prompts: valid only on the last line, because after the answer is given
// the prompt line stays on screen (a typed password is invisible) while output continues.
static YES_NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[\[(]\s*y(?:es)?\s*/\s*n(?:o)?\s*(?:/[^\])]*)?[\])]").expect("yes/no regex")
});
static SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:password|passphrase|passcode)\b[^:]*:").expect("secret regex")
});
// Questions and menus span several lines (a dialog draws its options below the question).
static QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\b(?:do you want to|would you like to|are you sure|shall i|should i)\b[^?]*|^(?:continue|proceed)(?: anyway)?)\?\s*(?:[\[(][^\])]*[\])])?",
    )
    .expect("question regex")
});
static PRESS_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:press|hit)\s+(?:enter|return|any key)\b").expect("press regex")
});
static MENU: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:❯|›|>|▶|→)\s*\d+[.)]\s+\S").expect("menu regex"));

/// True when nothing that looks like a typed answer follows the prompt.
fn answer_pending(rest: &str) -> bool {
    !rest.chars().any(char::is_alphanumeric)
}

/// Whether the screen asks something (the question outranks a profile's or a shell's reading).
fn asks_question(screen_tail: &[String]) -> bool {
    let lines: Vec<String> = screen_tail
        .iter()
        .map(|l| normalize_line(l).to_string())
        .collect();
    waiting_input_line(&lines).is_some()
}

fn waiting_input_line(lines: &[String]) -> Option<&str> {
    let last = lines.last()?;
    let slot_open = |re: &Regex| {
        re.find_iter(last)
            .last()
            .is_some_and(|m| answer_pending(&last[m.end()..]))
    };
    if slot_open(&YES_NO) || slot_open(&SECRET) {
        return Some(last);
    }
    lines.iter().rev().map(String::as_str).find(|line| {
        MENU.is_match(line)
            || PRESS_KEY.is_match(line)
            || QUESTION
                .find_iter(line)
                .last()
                .is_some_and(|m| answer_pending(&line[m.end()..]))
    })
}

static THINKING_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:thinking|reading|analy[sz]ing|working)\b|\b(?:esc|ctrl\+c) to interrupt\b",
    )
    .expect("thinking regex")
});

fn is_thinking_line(line: &str) -> bool {
    let line = normalize_line(line);
    if line.is_empty() {
        return false;
    }
    // Braille spinners (⠋⠙⠹…) practically never occur in ordinary text.
    if line.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)) {
        return true;
    }
    // Star/dot spinners are also ordinary punctuation, so only count them as a line lead.
    let mut chars = line.chars();
    if let Some(first) = chars.next()
        && matches!(first, '✻' | '✽' | '✶' | '✢' | '✳' | '·')
        && chars.next().is_none_or(char::is_whitespace)
    {
        return true;
    }
    if line.ends_with("...") || line.ends_with('…') {
        return true;
    }
    // Path components (`~/working$ make`) and bare prompts are not signs of thinking.
    !looks_like_prompt(line)
        && THINKING_WORD
            .find_iter(line)
            .any(|m| !line[..m.start()].ends_with('/') && !line[m.end()..].starts_with('/'))
}

/// Removes ANSI/VT escape sequences (CSI, OSC ended by BEL or ST, two-char ESC
/// sequences with optional intermediates, DCS/SOS/PM/APC strings), C1 controls and C0
/// controls other than `\n` and `\t`; `\r` is dropped. Text arrives in chunks: a sequence
/// split across them is held back until it completes, so no fragment of it leaks into the text.
/// Hand-written rather than `vte`: vte is 7-bit only (8-bit C1 introducers and ST leak or
/// swallow text) and buffers OSC without a bound; see docs/ARCHITECTURE.md.
#[derive(Clone, Debug, Default)]
pub struct EscapeStripper {
    pending: String,
}

/// An unterminated string sequence longer than this is abandoned, so a stray OSC
/// introducer cannot make the stripper swallow output forever.
const MAX_PENDING_BYTES: usize = 64 * 1024;

impl EscapeStripper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &str) -> String {
        let input = if self.pending.is_empty() {
            std::borrow::Cow::Borrowed(chunk)
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.push_str(chunk);
            std::borrow::Cow::Owned(joined)
        };
        let mut out = String::with_capacity(input.len());
        let end = strip_into(&input, &mut out);
        if input.len() - end <= MAX_PENDING_BYTES {
            self.pending = input[end..].to_string();
        }
        out
    }
}

/// Appends the stripped text to `out`; returns the offset of a trailing unterminated
/// sequence (or `s.len()`). Escape syntax is pure ASCII and UTF-8 continuation bytes
/// are >= 0x80, so scanning bytes never splits a character.
fn strip_into(s: &str, out: &mut String) -> usize {
    let b = s.as_bytes();
    let is_c1 = |i: usize| b[i] == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
    let mut i = 0;
    while i < b.len() {
        let run_start = i;
        while i < b.len() && b[i] >= 0x20 && b[i] != 0x7f && !is_c1(i) {
            i += 1;
        }
        out.push_str(&s[run_start..i]);
        if i >= b.len() {
            break;
        }
        let next = match b[i] {
            0x1b => escape_end(b, i + 1),
            0xc2 => match b[i + 1] {
                0x9b => csi_end(b, i + 2),
                0x9d => string_end(b, i + 2, true),
                0x90 | 0x98 | 0x9e | 0x9f => string_end(b, i + 2, false),
                _ => Some(i + 2),
            },
            b'\n' | b'\t' => {
                out.push(b[i] as char);
                Some(i + 1)
            }
            _ => Some(i + 1),
        };
        match next {
            Some(n) => i = n,
            None => return i,
        }
    }
    b.len()
}

/// `j` is just past the ESC. None means the sequence is cut off by the end of input.
fn escape_end(b: &[u8], j: usize) -> Option<usize> {
    match *b.get(j)? {
        b'[' => csi_end(b, j + 1),
        b']' => string_end(b, j + 1, true),
        b'P' | b'X' | b'^' | b'_' => string_end(b, j + 1, false),
        0x20..=0x2f => {
            let mut k = j;
            while k < b.len() && (0x20..=0x2f).contains(&b[k]) {
                k += 1;
            }
            match *b.get(k)? {
                0x30..=0x7e => Some(k + 1),
                _ => Some(k),
            }
        }
        0x30..=0x7e => Some(j + 1),
        // ESC before a control or non-ASCII char: drop the ESC, keep what follows.
        _ => Some(j),
    }
}

/// Parameters and intermediates, then one final byte; an invalid byte aborts the
/// sequence and is processed as ordinary input, as terminals do.
fn csi_end(b: &[u8], mut k: usize) -> Option<usize> {
    while k < b.len() && (0x20..=0x3f).contains(&b[k]) {
        k += 1;
    }
    match *b.get(k)? {
        0x40..=0x7e => Some(k + 1),
        _ => Some(k),
    }
}

/// OSC/DCS/SOS/PM/APC payload up to ST (`ESC \` or U+009C); BEL also ends OSC. Any other
/// ESC cancels the string and starts a new sequence.
fn string_end(b: &[u8], mut k: usize, bel_ends: bool) -> Option<usize> {
    while k < b.len() {
        match b[k] {
            0x07 if bel_ends => return Some(k + 1),
            0x1b => {
                return match *b.get(k + 1)? {
                    b'\\' => Some(k + 2),
                    _ => Some(k),
                };
            }
            0xc2 if b.get(k + 1) == Some(&0x9c) => return Some(k + 2),
            _ => k += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults of `[engine]` (the engine gets its values from the configuration).
    impl Default for ClassifierConfig {
        fn default() -> Self {
            Self {
                idle_timeout_ms: 5000,
                stuck_repeat_count: 3,
                stuck_window_ms: 180_000,
                thinking_timeout_ms: 300_000,
            }
        }
    }

    impl Classifier {
        /// [`Classifier::tick_full`] for a session that is not a shell.
        fn tick_with(
            &mut self,
            screen_tail: &[String],
            agent: Option<AgentSignal>,
            now_ms: u64,
            now_wall: SystemTime,
        ) -> Option<Transition> {
            self.tick_full(screen_tail, agent, None, now_ms, now_wall)
        }
    }

    #[test]
    fn interactive_shells() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(interactive_shell(&a(&[])));
        assert!(interactive_shell(&a(&["--norc", "--noprofile"])));
        assert!(interactive_shell(&a(&["-l"])));
        assert!(!interactive_shell(&a(&["-c", "sleep 1"])));
        assert!(!interactive_shell(&a(&["-lc", "make"])));
        assert!(!interactive_shell(&a(&["script.sh"])));
        assert!(interactive_shell(&a(&["-i", "-c", "x"])));
    }

    #[test]
    fn a_shell_is_idle_at_its_prompt_and_working_in_a_job_however_quiet() {
        let wall = SystemTime::now();
        let mut c = Classifier::new(ClassifierConfig::default(), 0, wall);
        let prompt = vec!["$ ".to_string()];
        let at = |p| Some(ShellSignal { at_prompt: p });
        // A fresh shell at its prompt is idle at the first tick, not "working".
        let t = c.tick_full(&prompt, None, at(true), 100, wall).unwrap();
        assert_eq!(t.to, AutoState::Idle);
        // `sleep 600` prints nothing for minutes: still working.
        c.tick_full(&["$ sleep 600".into()], None, at(false), 1_000, wall);
        assert_eq!(c.state(), AutoState::Running);
        c.tick_full(&["$ sleep 600".into()], None, at(false), 400_000, wall);
        assert_eq!(c.state(), AutoState::Running);
        // A question still reads as waiting.
        let ask = vec!["Proceed? [y/N] ".to_string()];
        c.tick_full(&ask, None, at(true), 401_000, wall);
        assert_eq!(c.state(), AutoState::WaitingInput);
    }
    use std::time::{Duration, UNIX_EPOCH};

    /// The whole of `bytes` stripped; an unterminated sequence at the end is dropped.
    fn strip_escapes(bytes: &str) -> String {
        let mut out = String::with_capacity(bytes.len());
        strip_into(bytes, &mut out);
        out
    }

    fn wall(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    fn new_at(ms: u64) -> Classifier {
        Classifier::new(ClassifierConfig::default(), ms, wall(ms))
    }

    fn screen(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    fn out(c: &mut Classifier, text: &str, ms: u64) {
        c.observe_output(text, ms, wall(ms));
    }

    fn tick(c: &mut Classifier, lines: &[&str], ms: u64) -> Option<Transition> {
        c.tick_with(&screen(lines), None, ms, wall(ms))
    }

    fn confidence(c: &Classifier) -> f64 {
        c.brief()["confidence"].as_f64().unwrap()
    }

    // ---- strip_escapes ----

    #[test]
    fn strip_plain_text_untouched() {
        assert_eq!(
            strip_escapes("hello wörld ✻ 日本\n\tx"),
            "hello wörld ✻ 日本\n\tx"
        );
        assert_eq!(strip_escapes(""), "");
    }

    #[test]
    fn strip_csi_sequences() {
        assert_eq!(strip_escapes("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(strip_escapes("\x1b[1;32;40mA\x1b[m"), "A");
        assert_eq!(strip_escapes("\x1b[?25l\x1b[?2004hX\x1b[?25h"), "X");
        assert_eq!(strip_escapes("a\x1b[2J\x1b[H\x1b[10;20Hb\x1b[K"), "ab");
        assert_eq!(strip_escapes("\x1b[>0c\x1b[38;2;255;0;0mz"), "z");
        assert_eq!(strip_escapes("\x1b[1 q|"), "|");
    }

    #[test]
    fn strip_osc_bel_and_st() {
        assert_eq!(strip_escapes("\x1b]0;my title\x07prompt$ "), "prompt$ ");
        assert_eq!(strip_escapes("\x1b]2;title\x1b\\after"), "after");
        assert_eq!(
            strip_escapes("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
        assert_eq!(strip_escapes("\x1b]133;A\u{9c}ok"), "ok");
    }

    #[test]
    fn strip_dcs_apc_pm_sos_strings() {
        assert_eq!(strip_escapes("a\x1bPq#0;2;0;0;0\x1b\\b"), "ab");
        assert_eq!(strip_escapes("a\x1b_Gf=100;AAAA\x1b\\b"), "ab");
        assert_eq!(strip_escapes("a\x1b^private\x1b\\b"), "ab");
        assert_eq!(strip_escapes("a\x1bXsos\x1b\\b"), "ab");
        // BEL does not end a DCS string: the payload continues to ST.
        assert_eq!(strip_escapes("a\x1bPx\x07y\x1b\\b"), "ab");
    }

    #[test]
    fn strip_two_char_and_intermediate_escapes() {
        assert_eq!(
            strip_escapes("\x1b7a\x1b8b\x1b=c\x1b>d\x1bMe\x1bcf"),
            "abcdef"
        );
        assert_eq!(strip_escapes("\x1b(Bx\x1b)0y\x1b#8z\x1b%Gw"), "xyzw");
    }

    #[test]
    fn strip_c0_controls_and_carriage_returns() {
        assert_eq!(strip_escapes("a\x07b\x08c\x00d\x7fe\x0ef"), "abcdef");
        assert_eq!(strip_escapes("line1\r\nline2\r\n"), "line1\nline2\n");
        assert_eq!(strip_escapes("50%\r100%"), "50%100%");
        assert_eq!(strip_escapes("tab\there\n"), "tab\there\n");
    }

    #[test]
    fn strip_c1_controls() {
        assert_eq!(strip_escapes("\u{9b}31mred\u{9b}0m"), "red");
        assert_eq!(strip_escapes("\u{9d}0;t\u{07}x"), "x");
        assert_eq!(strip_escapes("\u{90}dcs\u{9c}x\u{85}y"), "xy");
    }

    #[test]
    fn strip_malformed_and_truncated() {
        // ESC before a non-ASCII char: only the ESC goes.
        assert_eq!(strip_escapes("\x1bé"), "é");
        // An invalid byte aborts a CSI and is then handled normally.
        assert_eq!(strip_escapes("\x1b[12\nX"), "\nX");
        // Cut-off sequences at the end are dropped.
        assert_eq!(strip_escapes("ok\x1b"), "ok");
        assert_eq!(strip_escapes("ok\x1b[3"), "ok");
        assert_eq!(strip_escapes("ok\x1b]0;tit"), "ok");
        assert_eq!(strip_escapes("ok\x1b("), "ok");
        // A new ESC inside an OSC cancels it and starts a new sequence.
        assert_eq!(strip_escapes("\x1b]0;t\x1b[31mred"), "red");
    }

    #[test]
    fn stripper_handles_sequences_split_across_chunks() {
        let mut s = EscapeStripper::new();
        assert_eq!(s.push("a\x1b"), "a");
        assert_eq!(s.push("[3"), "");
        assert_eq!(s.push("1mred\x1b]0;ti"), "red");
        assert_eq!(s.push("tle\x07done\r"), "done");
        assert_eq!(s.push("\nnext"), "\nnext");
    }

    // ---- fingerprints ----

    #[test]
    fn fingerprint_normalizes() {
        assert_eq!(
            error_fingerprint("  Error:   file   line 12,  col 345  ").as_deref(),
            Some("error: file line #, col #")
        );
        assert_eq!(
            error_fingerprint("Build FAILED in 3.2s"),
            error_fingerprint("build failed in 10.75s")
        );
        assert!(error_fingerprint("Traceback (most recent call last):").is_some());
        assert!(error_fingerprint("thread 'main' panicked at src/x.rs:1:2").is_some());
        assert!(error_fingerprint("java.lang.NullPointerException").is_some());
        assert!(error_fingerprint("all good").is_none());
        assert!(error_fingerprint("test result: ok. 5 passed; 0 failed").is_none());
        assert!(error_fingerprint("no errors found").is_none());
        let long = format!("error {}", "x".repeat(300));
        assert_eq!(error_fingerprint(&long).unwrap().chars().count(), 120);
    }

    // ---- classifier ----

    #[test]
    fn never_output_is_running_then_idle() {
        let mut c = new_at(1000);
        assert_eq!(c.state(), AutoState::Running);
        assert!(tick(&mut c, &[], 5999).is_none());
        assert_eq!(c.state(), AutoState::Running);
        let t = tick(&mut c, &["user@host:~$ "], 6000).unwrap();
        assert_eq!((t.from, t.to), (AutoState::Running, AutoState::Idle));
        // No output ever: 0.6 even with a prompt on screen.
        assert_eq!(confidence(&c), 0.6);
    }

    #[test]
    fn idle_confidence_depends_on_prompt() {
        // A prompt that stands still for PROMPT_SETTLE_MS is idle at once; other silence only
        // after the idle timeout, with less confidence.
        for (line, at, want) in [
            ("user@host:~/src$ ", 600, 0.9),
            ("root@box:/# ", 600, 0.9),
            ("zsh %", 600, 0.9),
            (">>> ", 600, 0.9),
            ("irb(main):001> ", 600, 0.9),
            ("~/proj ❯ ", 600, 0.9),
            ("│ >                         │", 600, 0.9),
            ("Done compiling", 5100, 0.6),
            ("$ ls -la", 5100, 0.6),
        ] {
            let mut c = new_at(0);
            out(&mut c, "some output\n", 100);
            assert!(
                tick(&mut c, &["some output", line], at - 101).is_none(),
                "{line}"
            );
            let t = tick(&mut c, &["some output", line], at).unwrap();
            assert_eq!(t.to, AutoState::Idle, "{line}");
            assert_eq!(confidence(&c), want, "{line}");
        }
    }

    #[test]
    fn the_kernel_reading_of_a_program_without_a_profile() {
        use ProcessSignal::*;
        assert_eq!(
            ProcessSignal::from_proc('S', "wait_woken", false),
            ReadsTerminal
        );
        assert_eq!(
            ProcessSignal::from_proc('S', "wait_woken", true),
            Unknown,
            "a socket?"
        );
        assert_eq!(
            ProcessSignal::from_proc('S', "hrtimer_nanosleep", true),
            Busy
        );
        assert_eq!(ProcessSignal::from_proc('S', "do_wait", false), Busy);
        assert_eq!(ProcessSignal::from_proc('R', "0", false), Busy);
        assert_eq!(
            ProcessSignal::from_proc('S', "do_epoll_wait", false),
            Unknown
        );
        // A real sleeping process, read from /proc.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while ProcessSignal::of_pid(sleeper.id()) != Busy {
            assert!(
                std::time::Instant::now() < deadline,
                "sleep never read as busy"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert_eq!(ProcessSignal::of_pid(u32::MAX), Unknown);

        // Reading its terminal: idle once quiet, with no prompt on screen.
        let mut c = new_at(0);
        out(&mut c, "Enter a name:\n", 10);
        c.note_process(ReadsTerminal);
        assert!(
            tick(&mut c, &["Enter a name:"], 400).is_none(),
            "not settled yet"
        );
        let t = tick(&mut c, &["Enter a name:"], 600).unwrap();
        assert_eq!(t.to, AutoState::Idle);
        // Busy: a prompt-like last line is not a resting prompt, and silence stays working.
        let mut c = new_at(0);
        out(&mut c, "progress 45%\n", 10);
        c.note_process(Busy);
        for ms in [600, 5_000, 60_000] {
            tick(&mut c, &["progress 45%"], ms);
            assert_eq!(c.state(), AutoState::Running, "at {ms} ms");
        }
    }

    #[test]
    fn output_returns_idle_to_running() {
        let mut c = new_at(0);
        out(&mut c, "x\n", 10);
        tick(&mut c, &["x"], 6000);
        assert_eq!(c.state(), AutoState::Idle);
        out(&mut c, "more output\n", 7000);
        let t = tick(&mut c, &["x", "more output"], 7100).unwrap();
        assert_eq!((t.from, t.to), (AutoState::Idle, AutoState::Running));
        assert_eq!(t.detail, c.view(7100)["detail"]);
    }

    /// Issue 12: a program without a profile, idle at its prompt, that redraws because the
    /// terminal was resized (or a viewer came) stays idle; output after the redraw's grace
    /// is activity again (found by scripts/state-accuracy.py --only spurious).
    #[test]
    fn a_redraw_after_a_resize_is_not_activity() {
        let mut c = new_at(0);
        out(&mut c, "$ \n", 10);
        tick(&mut c, &["$"], 6000);
        assert_eq!(c.state(), AutoState::Idle);
        c.note_resize(7000);
        out(&mut c, "$ \n", 7150);
        assert_eq!(tick(&mut c, &["$"], 7200), None);
        assert_eq!(c.state(), AutoState::Idle);
        out(&mut c, "real output\n", 8000);
        let t = tick(&mut c, &["$", "real output"], 8100).unwrap();
        assert_eq!(t.to, AutoState::Running);
    }

    #[test]
    fn waiting_input_patterns() {
        for tail in [
            vec!["Overwrite config? [Y/n] "],
            vec!["Continue (y/n)?"],
            vec!["Really delete? [yes/no]:"],
            vec!["[sudo] password for alice:"],
            vec!["Password: "],
            vec!["Enter passphrase for key '/home/a/.ssh/id_ed25519': "],
            vec!["Press ENTER to continue", "footer"],
            vec!["Do you want to proceed?", "hint line"],
            vec!["DO YOU WANT TO MAKE THIS EDIT TO main.rs?"],
            vec![
                "│ Do you want to proceed?              │",
                "│ ❯ 1. Yes                             │",
                "│   2. No, and tell Claude what to do  │",
                "╰──────────────────────────────────────╯",
            ],
            vec!["❯ 1. Yes", "  2. No"],
            vec!["Should I continue with the refactor?"],
            vec!["Continue?", "footer"],
        ] {
            let mut c = new_at(0);
            out(&mut c, "stuff\n", 10);
            let t = tick(&mut c, &tail, 500);
            assert_eq!(t.map(|t| t.to), Some(AutoState::WaitingInput), "{tail:?}");
            assert_eq!(confidence(&c), 0.9);
            assert!(
                c.view(500)["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("waiting for input")
            );
        }
    }

    #[test]
    fn not_waiting_when_answered_or_scrolled() {
        for tail in [
            vec!["Continue? [Y/n] y"],
            vec!["[sudo] password for alice:", "building...", "compiling foo"],
            vec!["Overwrite? [y/N] ", "next output line"],
            vec!["Do you want to continue? [Y/n] y", "Get:1 http://x"],
            vec!["$ echo done", "done"],
            vec!["why does the loop continue?", "compiling foo"],
        ] {
            let mut c = new_at(0);
            out(&mut c, "compiling foo\n", 10);
            tick(&mut c, &tail, 500);
            assert_ne!(c.state(), AutoState::WaitingInput, "{tail:?}");
        }
    }

    #[test]
    fn waiting_input_falls_back_to_output_without_screen() {
        let mut c = new_at(0);
        out(&mut c, "Proceed with install? ", 10);
        out(&mut c, "[Y/n] ", 20);
        tick(&mut c, &[], 100);
        assert_eq!(c.state(), AutoState::WaitingInput);
    }

    #[test]
    fn waiting_input_beats_idle_stuck_and_thinking() {
        let mut c = new_at(0);
        for i in 0..3 {
            out(&mut c, "Error: connection refused\n", 100 + i);
        }
        out(&mut c, "✻ Thinking…\n", 200);
        tick(&mut c, &["✻ Thinking…", "Do you want to proceed?"], 300);
        assert_eq!(c.state(), AutoState::WaitingInput);
        // Long silence: still waiting because the question is on screen.
        assert!(tick(&mut c, &["Do you want to proceed?", "❯ 1. Yes"], 60_000).is_none());
        assert_eq!(c.state(), AutoState::WaitingInput);
        // Once the question is gone the silence makes it idle.
        let t = tick(&mut c, &["$ "], 61_000).unwrap();
        assert_eq!((t.from, t.to), (AutoState::WaitingInput, AutoState::Idle));
    }

    #[test]
    fn thinking_cues() {
        for (tail, output) in [
            (vec!["⠋ Installing dependencies"], ""),
            (vec!["✻ Crafting… (esc to interrupt)", "> "], ""),
            (vec!["✽ Pondering"], ""),
            (vec!["· Musing", "│ > │"], ""),
            (vec!["Thinking about the problem"], ""),
            (vec!["reading src/main.rs"], ""),
            (vec!["Analyzing the codebase"], ""),
            (vec!["Working on it"], ""),
            (vec!["Fetching package index..."], ""),
            (vec!["Loading model…"], ""),
            (vec!["some static line"], "⠙ spinning\n"),
            (vec![], "Analysing results\n"),
        ] {
            let mut c = new_at(0);
            out(
                &mut c,
                if output.is_empty() { "tick\n" } else { output },
                10,
            );
            let t = tick(&mut c, &tail, 500);
            assert_eq!(
                t.map(|t| t.to),
                Some(AutoState::Thinking),
                "{tail:?} {output:?}"
            );
            assert_eq!(confidence(&c), 0.7);
        }
    }

    #[test]
    fn plain_output_is_running() {
        for tail in [
            vec!["Compiling serde v1.0"],
            vec!["a · b"],
            vec!["user@host:~/working$ make"],
            vec!["user@host:~/working$ "],
        ] {
            let mut c = new_at(0);
            out(&mut c, "Compiling serde v1.0\n", 10);
            assert!(tick(&mut c, &tail, 500).is_none(), "{tail:?}");
            assert_eq!(c.state(), AutoState::Running);
            assert_eq!(confidence(&c), 0.7);
        }
    }

    #[test]
    fn an_agent_profile_reads_busy_and_ready_from_the_screen() {
        let sig = |busy, ready| {
            Some(AgentSignal {
                profile: "gemini".into(),
                busy,
                ready,
            })
        };
        let wall = SystemTime::now();
        let mut c = new_at(0);
        // Busy without output for a minute is still a running turn, not idle.
        out(&mut c, "SLOW please\n", 1000);
        let t = c.tick_with(&["> SLOW please".into()], sig(true, false), 60_000, wall);
        assert_eq!(t.map(|t| t.to), Some(AutoState::Thinking));
        // Ready at once when the turn ends, whatever was just redrawn.
        out(&mut c, "redraw after a resize\n", 61_000);
        let t = c.tick_with(&["> ".into()], sig(false, true), 61_100, wall);
        assert_eq!(t.map(|t| t.to), Some(AutoState::Idle));
        // A question on the screen outranks the profile.
        let t = c.tick_with(&["Proceed? [y/N]".into()], sig(false, true), 62_000, wall);
        assert_eq!(t.map(|t| t.to), Some(AutoState::WaitingInput));
        // Busy past the thinking limit is stuck.
        let mut c = new_at(0);
        c.tick_with(&[], sig(true, false), 1_000, wall);
        let t = c.tick_with(&[], sig(true, false), 302_000, wall);
        assert_eq!(t.map(|t| t.to), Some(AutoState::Stuck));
    }

    #[test]
    fn repeated_error_is_stuck_within_window() {
        let mut c = new_at(0);
        out(&mut c, "Error: cannot connect to db at port 5432\n", 1000);
        out(&mut c, "retrying\n", 30_000);
        out(&mut c, "Error: cannot connect to db at port 5433\n", 60_000);
        tick(&mut c, &["retrying"], 60_500);
        assert_eq!(c.state(), AutoState::Running);
        // Third occurrence arrives split across chunks.
        out(&mut c, "Err", 120_000);
        out(&mut c, "or: cannot connect to db at port 9\n", 120_001);
        let t = tick(&mut c, &["retrying"], 120_500).unwrap();
        assert_eq!((t.from, t.to), (AutoState::Running, AutoState::Stuck));
        assert!(
            t.detail.contains("error: cannot connect to db at port #"),
            "{}",
            t.detail
        );
        assert_eq!(confidence(&c), 0.8);
        // Keep output flowing; the first occurrence leaves the window after 180 s.
        out(&mut c, "retrying\n", 181_000);
        tick(&mut c, &["retrying"], 181_000);
        assert_eq!(c.state(), AutoState::Stuck);
        out(&mut c, "retrying\n", 181_001);
        let t = tick(&mut c, &["retrying"], 181_001).unwrap();
        assert_eq!((t.from, t.to), (AutoState::Stuck, AutoState::Running));
    }

    #[test]
    fn errors_spread_beyond_window_are_not_stuck() {
        let mut c = new_at(0);
        for at in [0, 100_000, 200_000, 300_000] {
            out(&mut c, "error: boom\n", at);
            tick(&mut c, &["x"], at + 1);
            assert_ne!(c.state(), AutoState::Stuck, "at {at}");
        }
    }

    #[test]
    fn different_errors_do_not_add_up() {
        let mut c = new_at(0);
        out(&mut c, "error: a\nerror: b\nfailed: c\nerror: a\n", 10);
        tick(&mut c, &["x"], 20);
        assert_eq!(c.state(), AutoState::Running);
        out(&mut c, "ERROR:   A\n", 30);
        tick(&mut c, &["x"], 40);
        assert_eq!(c.state(), AutoState::Stuck);
    }

    #[test]
    fn stuck_beats_thinking_and_idle_beats_stuck() {
        let mut c = new_at(0);
        out(&mut c, "Traceback (most recent call last):\n", 0);
        out(&mut c, "Traceback (most recent call last):\n", 1);
        out(&mut c, "Traceback (most recent call last):\n⠋ Thinking", 2);
        tick(&mut c, &["⠋ Thinking"], 3);
        assert_eq!(c.state(), AutoState::Stuck);
        tick(&mut c, &["⠋ Thinking"], 5002);
        assert_eq!(c.state(), AutoState::Idle);
    }

    #[test]
    fn thinking_too_long_is_stuck() {
        let cfg = ClassifierConfig {
            thinking_timeout_ms: 10_000,
            ..ClassifierConfig::default()
        };
        let mut c = Classifier::new(cfg, 0, wall(0));
        let mut now = 0;
        let mut seen = Vec::new();
        while now <= 12_000 {
            out(&mut c, "⠋", now);
            if let Some(t) = tick(&mut c, &["⠋ Working (esc to interrupt)"], now) {
                seen.push((now, t.to));
            }
            now += 1000;
        }
        assert_eq!(
            seen,
            vec![(0, AutoState::Thinking), (11_000, AutoState::Stuck)]
        );
        assert!(
            c.view(now)["detail"]
                .as_str()
                .unwrap()
                .contains("thinking for over 10s")
        );
        // The cue disappearing resets the clock.
        out(&mut c, "done\n", now);
        tick(&mut c, &["done"], now);
        assert_eq!(c.state(), AutoState::Running);
        out(&mut c, "⠋", now + 1);
        tick(&mut c, &["⠋ Working"], now + 1);
        assert_eq!(c.state(), AutoState::Thinking);
    }

    #[test]
    fn view_and_brief_shapes() {
        let mut c = new_at(1000);
        let v = c.view(1500);
        assert_eq!(v["state"], "running");
        assert_eq!(v["since"], "2023-11-14T22:13:21.000Z");
        assert_eq!(v["since_ms"], 1_700_000_001_000u64);
        assert_eq!(v["duration_ms"], 500);
        assert_eq!(v["last_output_at"], Value::Null);
        assert_eq!(v["last_output_preview"], "");
        assert!(v["detail"].is_string());
        assert_eq!(v["confidence"], 0.5);

        out(&mut c, "hello\n", 2000);
        tick(&mut c, &["hello"], 7000);
        let v = c.view(9000);
        assert_eq!(v["state"], "idle");
        assert_eq!(v["since_ms"], 1_700_000_007_000u64);
        assert_eq!(v["duration_ms"], 2000);
        assert_eq!(v["last_output_at"], "2023-11-14T22:13:22.000Z");
        assert_eq!(v["last_output_preview"], "hello\n");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 8);

        let b = c.brief();
        assert_eq!(b.as_object().unwrap().len(), 3);
        assert_eq!(b["state"], "idle");
        assert_eq!(b["since"], v["since"]);
        assert_eq!(b["confidence"], 0.6);
    }

    #[test]
    fn preview_and_recent_are_bounded() {
        let mut c = new_at(0);
        let long: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        out(&mut c, &long, 1);
        out(&mut c, "é✻", 2);
        let p = c.view(3)["last_output_preview"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(p.chars().count(), 200);
        assert!(p.ends_with("é✻"));
        for i in 0..10_000u64 {
            out(&mut c, "some line of output without newline ", i);
        }
        assert!(c.recent.len() <= RECENT_BYTES * 2);
        assert!(c.partial_line.len() <= MAX_PARTIAL_LINE_BYTES + 64);
    }

    #[test]
    fn state_names_and_serde() {
        assert_eq!(AutoState::WaitingInput.as_str(), "waiting_input");
        assert_eq!(
            serde_json::to_value(AutoState::WaitingInput).unwrap(),
            "waiting_input"
        );
        for s in [
            AutoState::Running,
            AutoState::Idle,
            AutoState::Thinking,
            AutoState::Stuck,
            AutoState::WaitingInput,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let d = ClassifierConfig::default();
        assert_eq!(
            (
                d.idle_timeout_ms,
                d.stuck_repeat_count,
                d.stuck_window_ms,
                d.thinking_timeout_ms
            ),
            (5000, 3, 180_000, 300_000)
        );
    }
}
