//! The command palette: a fuzzy-filtered command list, then one prompt per argument with
//! Tab completion and per-argument history. `inject echo hi` typed straight into the filter
//! runs `inject` with `echo hi` as its first argument.

use std::collections::HashMap;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::fuzzy::{FuzzyMatch, rank};
use super::layout::LayoutKind;
use crate::kitty;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// Free text (a prompt to type).
    Text,
    /// One existing session id.
    Session,
    /// A comma list of session ids.
    Sessions,
    /// Space-separated key names (`ctrl+c up enter`).
    Keys,
    /// A new session id.
    NewId,
    /// A command line to run, optionally after `--cwd DIR` (see [`parse_spawn`]).
    Command,
    /// A project file (blank: `./telepty.toml`).
    File,
    /// A pane layout, or `kitty <layout>` for the kitty windows.
    Layout,
    /// `open [all|ID,…]`, `focus ID` or `layout NAME` (see [`parse_kitty_action`]).
    Kitty,
    Theme,
}

pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
}

pub struct CmdSpec {
    pub cmd: Cmd,
    pub name: &'static str,
    pub desc: &'static str,
    pub args: &'static [Arg],
}

/// Declares [`Cmd`] and [`COMMANDS`] from one table: the variant, the name typed in the
/// palette, the arguments prompted for (`"prompt": ArgKind`) and the description. A command's
/// entry is at its variant's index.
macro_rules! commands {
    ($($cmd:ident $name:literal [$($arg:literal: $kind:ident),*] $desc:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Cmd {
            $($cmd,)*
        }

        pub const COMMANDS: &[CmdSpec] = &[$(CmdSpec {
            cmd: Cmd::$cmd,
            name: $name,
            desc: $desc,
            args: &[$(Arg { name: $arg, kind: ArgKind::$kind }),*],
        },)*];
    };
}

commands! {
    Inject "inject" ["text": Text]
        "type text + Enter into the focused session (inject ID text…: into ID)",
    Broadcast "broadcast" ["text": Text] "type text + Enter into every session",
    Multicast "multicast" ["text": Text, "targets": Sessions]
        "type text + Enter into the marked sessions (or a comma list)",
    Enter "enter" [] "press Enter in the focused session",
    Keys "keys" ["keys": Keys] "send named keys (ctrl+c up enter …) to the focused session",
    Rename "rename" ["new id": NewId] "rename the focused session",
    Attach "attach" ["session": Session]
        "full screen + typing into one session until the prefix key",
    Focus "focus" ["session": Session] "move the focus to a session",
    Spawn "spawn" ["command": Command, "id": NewId]
        "start a command in a new session (spawn --cwd DIR command…: in DIR)",
    Up "up" ["file (blank: ./telepty.toml)": File]
        "start the agents a project file lists, as `telepty up` does",
    Kill "kill" ["session": Session] "stop a session and remove it (asks first)",
    Resurrect "resurrect" ["ids (blank: all lost)": Text]
        "restart sessions lost in a reboot (blank: all; or ids, comma-separated)",
    Layout "layout" ["layout": Layout]
        "grid | tall | stack | zoom; kitty grid|tall|stack|… arranges kitty's windows",
    Kitty "kitty" ["action": Kitty]
        "kitty windows: open [all|ids] (attached), focus ID, layout grid|tall|stack|…",
    Theme "theme" ["theme": Theme] "switch the colour theme",
    Log "log" [] "show or hide the event log",
    CopyMode "copy-mode" [] "scroll, search (/ ?), select (v V) and copy (y) in the focused pane",
    Filter "filter" ["state": Text]
        "show only one state: all, waiting, idle, working, exited (blank: the next)",
    Sidebar "sidebar" [] "show or hide the list of every session",
    MarkAll "mark-all" [] "mark every pane for multicast",
    UnmarkAll "unmark-all" [] "clear all marks",
    Help "help" [] "list every key binding",
    Quit "quit" [] "leave the dashboard",
}

/// A session id, or `id@peer` for one of the grid's peers (spawn and rename on that machine).
fn new_id_ok(value: &str, ctx: &Ctx) -> bool {
    let (id, host) = crate::client::split_target(value);
    crate::util::valid_session_id(id)
        && host.is_none_or(|h| ctx.hosts.iter().any(|k| k.eq_ignore_ascii_case(h)))
}

pub fn spec(cmd: Cmd) -> &'static CmdSpec {
    &COMMANDS[cmd as usize]
}

/// What the palette needs to know about the dashboard.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub ids: Vec<String>,
    pub focused: Option<String>,
    pub marked: Vec<String>,
    pub themes: Vec<String>,
    pub key_names: Vec<String>,
    /// The peers whose sessions the grid shows (a new id may be `id@peer`).
    pub hosts: Vec<String>,
}

/// A one-line text input (a paste may bring line breaks: shown as `⏎`). `cursor` is a byte
/// index on a char boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEdit {
    pub text: String,
    pub cursor: usize,
    /// The text is a proposed default, selected: the first character typed or pasted replaces
    /// it instead of being appended to it (a cursor movement keeps it for editing).
    pub selected: bool,
}

impl LineEdit {
    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = self.text.len();
        self.selected = false;
    }
    /// A default the user accepts with Enter or replaces by typing.
    pub fn propose(&mut self, text: &str) {
        self.set(text);
        self.selected = !text.is_empty();
    }
    fn take_selection(&mut self) {
        if std::mem::take(&mut self.selected) {
            self.text.clear();
            self.cursor = 0;
        }
    }
    /// Insert pasted text: line breaks are kept (as `\n`) when `multiline`, else only the first
    /// line is taken; other control characters are dropped.
    pub fn insert_str(&mut self, s: &str, multiline: bool) {
        let unified = s.replace("\r\n", "\n").replace('\r', "\n");
        let part = if multiline {
            unified.as_str()
        } else {
            unified.lines().next().unwrap_or("")
        };
        let clean: String = part
            .chars()
            .filter(|c| *c == '\n' || !c.is_control())
            .collect();
        self.take_selection();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }
    /// The text as drawn: line breaks as `⏎`.
    pub fn display(&self) -> String {
        self.text.replace('\n', "⏎")
    }
    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .char_indices()
            .last()
            .map_or(0, |(i, _)| i)
    }
    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .chars()
            .next()
            .map_or(self.cursor, |c| self.cursor + c.len_utf8())
    }
    /// Handle an editing key; false if the key is not an editing key.
    pub fn key(&mut self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let moves = matches!(
            ev.code,
            KeyCode::Left | KeyCode::Right | KeyCode::Home | KeyCode::End
        ) || (ctrl && matches!(ev.code, KeyCode::Char('a' | 'e')));
        if self.selected && !moves {
            match ev.code {
                KeyCode::Backspace | KeyCode::Delete => {
                    self.take_selection();
                    return true;
                }
                KeyCode::Char('u' | 'w') if ctrl => {
                    self.take_selection();
                    return true;
                }
                KeyCode::Char(_) if !ctrl => self.take_selection(),
                _ => {}
            }
        }
        match ev.code {
            KeyCode::Char('u') if ctrl => {
                self.text.drain(..self.cursor);
                self.cursor = 0;
            }
            KeyCode::Char('w') if ctrl => {
                let before = &self.text[..self.cursor];
                let trimmed = before.trim_end();
                let start = trimmed.rfind([' ', ',']).map_or(0, |i| i + 1);
                self.text.drain(start..self.cursor);
                self.cursor = start;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.len(),
            KeyCode::Char(c) if !ctrl => {
                self.text.insert(self.cursor, c);
                self.cursor += c.len_utf8();
            }
            KeyCode::Backspace => {
                if self.cursor > 0 {
                    let p = self.prev_boundary();
                    self.text.drain(p..self.cursor);
                    self.cursor = p;
                }
            }
            KeyCode::Delete => {
                if self.cursor < self.text.len() {
                    let n = self.next_boundary();
                    self.text.drain(self.cursor..n);
                }
            }
            KeyCode::Left => self.cursor = self.prev_boundary(),
            KeyCode::Right => self.cursor = self.next_boundary(),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            _ => return false,
        }
        self.selected = false;
        true
    }
    /// Display column of the cursor.
    pub fn cursor_col(&self) -> usize {
        ratatui::text::Span::raw(self.text[..self.cursor].replace('\n', "⏎")).width()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Choosing a command.
    #[default]
    Select,
    /// Prompting for `COMMANDS[spec].args[collected.len()]`.
    Args { spec: usize, collected: Vec<String> },
}

/// Per-argument-kind history, newest last (shared by all palette openings).
#[derive(Default, Debug)]
pub struct History {
    entries: HashMap<ArgKind, Vec<String>>,
}

impl History {
    pub fn push(&mut self, kind: ArgKind, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        let v = self.entries.entry(kind).or_default();
        v.retain(|x| x != value);
        v.push(value.to_string());
        if v.len() > 100 {
            v.remove(0);
        }
    }
    pub fn get(&self, kind: ArgKind) -> &[String] {
        self.entries.get(&kind).map_or(&[], Vec::as_slice)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep the palette open.
    Continue,
    Close,
    Run(Cmd, Vec<String>),
}

#[derive(Clone, Debug)]
struct Completion {
    /// The input the candidates were computed from, and what was inserted last.
    base: String,
    shown: String,
    candidates: Vec<String>,
    idx: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Palette {
    pub stage: Stage,
    pub input: LineEdit,
    pub selected: usize,
    pub error: Option<String>,
    history_pos: Option<usize>,
    draft: String,
    completion: Option<Completion>,
    /// `inject ID …`: the session named on the command line (else the focused one).
    pub target: Option<String>,
}

impl Palette {
    /// Open straight at the argument prompts of a command (e.g. `attach` from a key).
    pub fn for_command(cmd: Cmd, ctx: &Ctx) -> (Palette, Outcome) {
        let mut p = Palette::default();
        let out = p.begin(cmd as usize, Vec::new(), ctx);
        (p, out)
    }

    /// The filter part of the input (before the first space) in the select stage.
    pub fn filter(&self) -> &str {
        self.input.text.split(' ').next().unwrap_or("")
    }

    /// Commands matching the filter, best first.
    pub fn matches(&self) -> Vec<(&'static CmdSpec, FuzzyMatch)> {
        rank(self.filter(), COMMANDS, |s| s.name)
            .into_iter()
            .map(|(i, m)| (&COMMANDS[i], m))
            .collect()
    }

    pub fn current_arg(&self) -> Option<(&'static CmdSpec, &'static Arg)> {
        match &self.stage {
            Stage::Select => None,
            Stage::Args { spec, collected } => {
                let s = &COMMANDS[*spec];
                s.args.get(collected.len()).map(|a| (s, a))
            }
        }
    }

    /// Completion candidates currently offered (for display).
    pub fn candidates(&self) -> Option<(&[String], usize)> {
        self.completion
            .as_ref()
            .filter(|c| c.shown == self.input.text)
            .map(|c| (c.candidates.as_slice(), c.idx))
    }

    fn default_for(spec: &CmdSpec, kind: ArgKind, ctx: &Ctx, collected: &[String]) -> String {
        match (spec.cmd, kind) {
            (Cmd::Rename, ArgKind::NewId) => ctx.focused.clone().unwrap_or_default(),
            (Cmd::Multicast, ArgKind::Sessions) => ctx.marked.join(","),
            (Cmd::Spawn, ArgKind::NewId) => {
                let line = collected.first().map(String::as_str).unwrap_or("");
                let argv = parse_spawn(line).map(|(_, argv)| argv).unwrap_or_default();
                suggest_id(argv.first().map_or("", String::as_str), &ctx.ids)
            }
            (_, ArgKind::Session) => ctx.focused.clone().unwrap_or_default(),
            (_, ArgKind::Kitty) if !ctx.marked.is_empty() => {
                format!("open {}", ctx.marked.join(","))
            }
            (_, ArgKind::Kitty) => "open all".into(),
            _ => String::new(),
        }
    }

    fn begin(&mut self, spec_idx: usize, mut collected: Vec<String>, ctx: &Ctx) -> Outcome {
        let spec = &COMMANDS[spec_idx];
        if collected.len() >= spec.args.len() {
            collected.extend(self.target.take());
            return Outcome::Run(spec.cmd, collected);
        }
        let kind = spec.args[collected.len()].kind;
        let default = Palette::default_for(spec, kind, ctx, &collected);
        self.stage = Stage::Args {
            spec: spec_idx,
            collected,
        };
        self.input.propose(&default);
        self.error = None;
        self.history_pos = None;
        self.completion = None;
        Outcome::Continue
    }

    pub fn key(&mut self, ev: &KeyEvent, ctx: &Ctx, history: &mut History) -> Outcome {
        match self.stage.clone() {
            Stage::Select => self.key_select(ev, ctx, history),
            Stage::Args { spec, collected } => self.key_args(ev, ctx, history, spec, collected),
        }
    }

    /// A paste keeps its line breaks where the value is text (a prompt for `inject`, or the
    /// command line, whose rest may be one); an id or a key name takes the first line.
    pub fn paste(&mut self, text: &str) {
        let multiline = self
            .current_arg()
            .is_none_or(|(_, a)| a.kind == ArgKind::Text);
        self.input.insert_str(text, multiline);
        self.selected = 0;
        self.error = None;
    }

    fn key_select(&mut self, ev: &KeyEvent, ctx: &Ctx, history: &mut History) -> Outcome {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match ev.code {
            KeyCode::Esc => return Outcome::Close,
            KeyCode::Char('c') | KeyCode::Char('g') if ctrl => return Outcome::Close,
            KeyCode::Enter => {
                let text = self.input.text.clone();
                let (name, rest) = match text.split_once(' ') {
                    Some((n, r)) => (n.to_string(), r.trim().to_string()),
                    None => (text.trim().to_string(), String::new()),
                };
                let idx = COMMANDS
                    .iter()
                    .position(|s| s.name.eq_ignore_ascii_case(&name))
                    .or_else(|| {
                        let m = self.matches();
                        m.get(self.selected.min(m.len().saturating_sub(1)))
                            .map(|(s, _)| s.cmd as usize)
                    });
                let Some(idx) = idx else {
                    self.error = Some(format!("no command matches {name:?}"));
                    return Outcome::Continue;
                };
                return self.begin_inline(idx, rest, ctx, history);
            }
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => self.select_next(),
            KeyCode::Char('p') if ctrl => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('n') if ctrl => self.select_next(),
            KeyCode::Tab | KeyCode::BackTab => {
                self.complete_select(ctx, ev.code == KeyCode::BackTab)
            }
            _ => {
                if self.input.key(ev) {
                    self.selected = 0;
                    self.error = None;
                }
            }
        }
        Outcome::Continue
    }

    /// `kill w1`, `inject w2 hello`: a command with its first argument typed after it, checked
    /// as its prompt checks it and kept in that prompt's history. A bad one keeps the line
    /// open with the error, so it can be corrected.
    fn begin_inline(
        &mut self,
        idx: usize,
        rest: String,
        ctx: &Ctx,
        history: &mut History,
    ) -> Outcome {
        let spec = &COMMANDS[idx];
        let Some(arg) = spec.args.first().filter(|_| !rest.is_empty()) else {
            return self.begin(idx, Vec::new(), ctx);
        };
        let mut value = rest;
        if spec.cmd == Cmd::Inject {
            let (first, text) = value
                .split_once([' ', '\n'])
                .map_or((value.as_str(), ""), |(a, b)| (a, b.trim_start()));
            if ctx.ids.iter().any(|i| i == first) {
                history.push(ArgKind::Session, first);
                self.target = Some(first.to_string());
                value = text.to_string();
                if value.is_empty() {
                    return self.begin(idx, Vec::new(), ctx);
                }
            }
        }
        if let Err(e) = validate(spec.cmd, arg.kind, &value, ctx) {
            self.target = None;
            self.error = Some(e);
            return Outcome::Continue;
        }
        history.push(arg.kind, &value);
        self.begin(idx, vec![value], ctx)
    }

    /// Tab in the command list: the command's name, then its first argument (for `inject`,
    /// the target id). What was typed is never lost.
    fn complete_select(&mut self, ctx: &Ctx, backwards: bool) {
        let text = self.input.text.clone();
        let chosen = self
            .matches()
            .get(self.selected)
            .map(|(s, _)| s.name.to_string());
        let Some((name, rest)) = text.split_once(' ') else {
            if let Some(n) = chosen {
                self.input.set(&format!("{n} "));
                self.selected = 0;
            }
            return;
        };
        let Some(spec) = COMMANDS.iter().find(|s| s.name.eq_ignore_ascii_case(name)) else {
            if let Some(n) = chosen {
                self.input.set(&format!("{n} {rest}"));
            }
            return;
        };
        let kind = match (spec.cmd, spec.args.first()) {
            (Cmd::Inject, _) if rest.trim_start().contains([' ', '\n']) => return,
            (Cmd::Inject, _) => ArgKind::Session,
            (_, Some(a)) => a.kind,
            (_, None) => return,
        };
        self.complete(kind, ctx, backwards, name.len() + 1);
    }

    fn select_next(&mut self) {
        if self.selected + 1 < self.matches().len() {
            self.selected += 1;
        }
    }

    fn key_args(
        &mut self,
        ev: &KeyEvent,
        ctx: &Ctx,
        history: &mut History,
        spec_idx: usize,
        mut collected: Vec<String>,
    ) -> Outcome {
        let spec = &COMMANDS[spec_idx];
        let Some(arg) = spec.args.get(collected.len()) else {
            return Outcome::Run(spec.cmd, collected);
        };
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match ev.code {
            KeyCode::Esc => return Outcome::Close,
            KeyCode::Char('c') | KeyCode::Char('g') if ctrl => return Outcome::Close,
            KeyCode::Enter => {
                let value = if arg.kind == ArgKind::Text {
                    self.input.text.clone()
                } else {
                    self.input.text.trim().to_string()
                };
                if let Err(e) = validate(spec.cmd, arg.kind, &value, ctx) {
                    self.error = Some(e);
                    return Outcome::Continue;
                }
                history.push(arg.kind, &value);
                collected.push(value);
                return self.begin(spec_idx, collected, ctx);
            }
            KeyCode::Up | KeyCode::Down => {
                let h = history.get(arg.kind);
                if h.is_empty() {
                    return Outcome::Continue;
                }
                let pos = match (self.history_pos, ev.code) {
                    (None, KeyCode::Up) => {
                        self.draft = self.input.text.clone();
                        Some(h.len() - 1)
                    }
                    (None, _) => None,
                    (Some(p), KeyCode::Up) => Some(p.saturating_sub(1)),
                    (Some(p), _) if p + 1 < h.len() => Some(p + 1),
                    (Some(_), _) => None,
                };
                self.history_pos = pos;
                let text = pos.map_or_else(|| self.draft.clone(), |p| h[p].clone());
                self.input.set(&text);
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.complete(arg.kind, ctx, ev.code == KeyCode::BackTab, 0)
            }
            _ => {
                if self.input.key(ev) {
                    self.error = None;
                    self.history_pos = None;
                }
            }
        }
        Outcome::Continue
    }

    /// Complete the value that starts at byte `at` of the input (what is before it stays).
    fn complete(&mut self, kind: ArgKind, ctx: &Ctx, backwards: bool, at: usize) {
        if let Some(c) = self
            .completion
            .as_mut()
            .filter(|c| c.shown == self.input.text && !c.candidates.is_empty())
        {
            let n = c.candidates.len();
            c.idx = if backwards {
                (c.idx + n - 1) % n
            } else {
                (c.idx + 1) % n
            };
            let text = format!(
                "{}{}",
                &c.base[..at],
                replace_token(&c.base[at..], kind, &c.candidates[c.idx])
            );
            c.shown = text.clone();
            self.input.set(&text);
            return;
        }
        let base = self.input.text.clone();
        let (token, others) = current_token(&base[at..], kind);
        let pool: Vec<String> = match kind {
            ArgKind::Session | ArgKind::Sessions => ctx.ids.clone(),
            ArgKind::Keys => ctx.key_names.clone(),
            ArgKind::Layout => LayoutKind::ALL
                .iter()
                .map(|k| k.name().to_string())
                .chain(
                    kitty::Layout::ALL
                        .iter()
                        .map(|l| format!("kitty {}", l.name())),
                )
                .collect(),
            ArgKind::Kitty => kitty_completions(ctx),
            ArgKind::Theme => ctx.themes.clone(),
            ArgKind::Text | ArgKind::NewId | ArgKind::Command | ArgKind::File => Vec::new(),
        };
        let pool: Vec<String> = pool.into_iter().filter(|c| !others.contains(c)).collect();
        let mut candidates: Vec<String> = pool
            .iter()
            .filter(|c| c.starts_with(token))
            .cloned()
            .collect();
        if candidates.is_empty() {
            candidates = rank(token, &pool, |s| s.as_str())
                .into_iter()
                .map(|(i, _)| pool[i].clone())
                .collect();
        }
        if candidates.is_empty() {
            self.error = Some(format!("no completion for {token:?}"));
            return;
        }
        let text = format!(
            "{}{}",
            &base[..at],
            replace_token(&base[at..], kind, &candidates[0])
        );
        self.completion = Some(Completion {
            base,
            shown: text.clone(),
            candidates,
            idx: 0,
        });
        self.input.set(&text);
        self.error = None;
    }
}

/// What separates the values of a list argument.
fn separator(kind: ArgKind) -> Option<char> {
    match kind {
        ArgKind::Sessions => Some(','),
        ArgKind::Keys => Some(' '),
        _ => None,
    }
}

/// The token being completed and the tokens already present (not offered again).
fn current_token(text: &str, kind: ArgKind) -> (&str, Vec<String>) {
    match separator(kind).and_then(|s| text.rfind(s).map(|i| (s, i))) {
        Some((s, i)) => {
            let others = text[..i]
                .split(s)
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            (text[i + 1..].trim_start(), others)
        }
        None => (text.trim(), Vec::new()),
    }
}

fn replace_token(base: &str, kind: ArgKind, with: &str) -> String {
    match separator(kind).and_then(|s| base.rfind(s)) {
        Some(i) => format!("{}{with}", &base[..=i]),
        None => with.to_string(),
    }
}

/// Split a comma list of ids.
pub fn split_ids(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn validate(cmd: Cmd, kind: ArgKind, value: &str, ctx: &Ctx) -> Result<(), String> {
    match kind {
        ArgKind::Text if value.is_empty() && matches!(cmd, Cmd::Broadcast | Cmd::Multicast) => {
            Err("text is required".into())
        }
        ArgKind::Session if !ctx.ids.iter().any(|i| i == value) => {
            Err(format!("no session {value:?} (Tab completes)"))
        }
        ArgKind::Sessions if split_ids(value).is_empty() => {
            Err("no targets: mark panes with space, or list ids separated by commas".into())
        }
        ArgKind::Keys if value.split_whitespace().next().is_none() => {
            Err("name at least one key (ctrl+c, up, enter, …)".into())
        }
        ArgKind::Keys => match value
            .split_whitespace()
            .find(|n| !ctx.key_names.iter().any(|k| k.eq_ignore_ascii_case(n)))
        {
            Some(bad) => Err(format!("unknown key {bad:?} (Tab completes)")),
            None => Ok(()),
        },
        ArgKind::NewId if !new_id_ok(value, ctx) => {
            Err("ids use 1-128 characters from A-Z a-z 0-9 . _ - (id@peer for a peer)".into())
        }
        ArgKind::Command => parse_spawn(value).map(drop),
        ArgKind::File if !value.is_empty() && !std::path::Path::new(value).is_file() => {
            Err(format!("no file {value:?}"))
        }
        ArgKind::Layout => match kitty_layout_arg(value) {
            Some(rest) => parse_kitty_layout(rest).map(drop),
            None if LayoutKind::parse(value).is_none() => Err(
                "layout is one of grid, tall, stack, zoom, or kitty grid|tall|stack|… (Tab completes)"
                    .into(),
            ),
            None => Ok(()),
        },
        ArgKind::Kitty => parse_kitty_action(value, ctx).map(drop),
        ArgKind::Theme if !ctx.themes.iter().any(|t| t == value) => {
            Err(format!("unknown theme {value:?} (Tab completes)"))
        }
        _ => Ok(()),
    }
}

/// What the `kitty` palette command (and `layout kitty …`) asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KittyAction {
    /// A kitty window per session, attached; empty: every live session.
    Open(Vec<String>),
    Focus(String),
    Layout(kitty::Layout),
}

/// `kitty grid` → `Some("grid")`: the layout argument meant for kitty's windows.
pub fn kitty_layout_arg(value: &str) -> Option<&str> {
    let v = value.trim();
    let rest = v.strip_prefix("kitty")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

fn parse_kitty_layout(name: &str) -> Result<kitty::Layout, String> {
    name.parse::<kitty::Layout>().map_err(|e| match e {
        kitty::KittyError::Invalid(m) => m,
        other => other.to_string(),
    })
}

/// `open all`, `open w1,w2` (or `open w1 w2`), `focus w1`, `layout tall`.
pub fn parse_kitty_action(value: &str, ctx: &Ctx) -> Result<KittyAction, String> {
    let v = value.trim();
    let (verb, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
    let rest = rest.trim();
    let known = |id: &str| {
        if ctx.ids.iter().any(|i| i == id) {
            Ok(())
        } else {
            Err(format!("no session {id:?} (Tab completes)"))
        }
    };
    match verb {
        "open" if rest.is_empty() || rest == "all" => Ok(KittyAction::Open(Vec::new())),
        "open" => {
            let ids: Vec<String> = rest
                .split([',', ' '])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            ids.iter().try_for_each(|id| known(id))?;
            Ok(KittyAction::Open(ids))
        }
        "focus" if rest.is_empty() => Err("focus which session? (focus ID)".into()),
        "focus" => known(rest).map(|_| KittyAction::Focus(rest.to_string())),
        "layout" => parse_kitty_layout(rest).map(KittyAction::Layout),
        _ => Err("kitty open [all|ID,…], kitty focus ID or kitty layout NAME".into()),
    }
}

/// Whole-value completions for the `kitty` argument.
fn kitty_completions(ctx: &Ctx) -> Vec<String> {
    let mut v = vec!["open all".to_string()];
    v.extend(ctx.ids.iter().map(|id| format!("open {id}")));
    v.extend(ctx.ids.iter().map(|id| format!("focus {id}")));
    v.extend(
        kitty::Layout::ALL
            .iter()
            .map(|l| format!("layout {}", l.name())),
    );
    v
}

/// `bash` → `bash-1` (or the first free `-N`).
pub fn suggest_id(command: &str, ids: &[String]) -> String {
    let word = command.split_whitespace().next().unwrap_or("session");
    let base: String = word
        .rsplit('/')
        .next()
        .unwrap_or(word)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let base = if base.is_empty() || base.starts_with('.') {
        "session".to_string()
    } else {
        base
    };
    (1..)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !ids.contains(c))
        .unwrap_or(base)
}

/// Split a command line into program and arguments the way a POSIX shell would (quotes,
/// backslashes, `#` comments; no expansion): shell-words, so the spawn prompt reads a command
/// exactly as the user would type it in their shell.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let words = shell_words::split(line).map_err(|_| "unterminated quote".to_string())?;
    if words.is_empty() {
        return Err("command is required".into());
    }
    Ok(words)
}

/// The spawn prompt's line, `[--cwd DIR] COMMAND ARGS…`: the directory (absolute; `~/` is
/// the home directory; it must exist) and the command's words.
pub fn parse_spawn(line: &str) -> Result<(Option<String>, Vec<String>), String> {
    let mut words = split_command(line)?;
    let dir = if words[0] == "--cwd" {
        if words.len() < 2 {
            return Err("--cwd needs a directory: --cwd DIR command…".into());
        }
        words.drain(..2).nth(1)
    } else if let Some(d) = words[0].strip_prefix("--cwd=") {
        let d = d.to_string();
        words.remove(0);
        Some(d)
    } else {
        None
    };
    if words.is_empty() {
        return Err("command is required after --cwd DIR".into());
    }
    let dir = dir.map(|d| existing_dir(&d)).transpose()?;
    Ok((dir, words))
}

fn existing_dir(d: &str) -> Result<String, String> {
    let path = match d.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => crate::config::Paths::from_env()
            .home
            .join(rest.trim_start_matches('/')),
        _ => std::path::PathBuf::from(d),
    };
    match std::path::absolute(&path) {
        Ok(abs) if abs.is_dir() => Ok(abs.display().to_string()),
        _ => Err(format!("--cwd {d}: no such directory")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_is_at_its_variant_index() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.cmd as usize, i, "{}", c.name);
        }
    }

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }
    fn typ(p: &mut Palette, s: &str, ctx: &Ctx, h: &mut History) {
        for c in s.chars() {
            assert_eq!(p.key(&k(KeyCode::Char(c)), ctx, h), Outcome::Continue);
        }
    }
    fn ctx() -> Ctx {
        Ctx {
            ids: vec!["w1".into(), "w2".into(), "build".into()],
            focused: Some("w2".into()),
            marked: vec!["w1".into(), "build".into()],
            themes: vec!["dark".into(), "light".into()],
            key_names: crate::engine::keys::valid_keys(),
            hosts: vec!["hostB".into()],
        }
    }

    #[test]
    fn a_new_id_may_name_a_peer() {
        let c = ctx();
        assert!(new_id_ok("x", &c) && new_id_ok("x@hostB", &c) && new_id_ok("x@HOSTB", &c));
        assert!(!new_id_ok("x@nosuch", &c) && !new_id_ok("a b", &c) && !new_id_ok("@hostB", &c));
    }

    #[test]
    fn filter_then_argument_prompt() {
        let (c, mut h) = (ctx(), History::default());
        let mut p = Palette::default();
        typ(&mut p, "inj", &c, &mut h);
        assert_eq!(p.matches()[0].0.name, "inject");
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert_eq!(p.current_arg().unwrap().1.name, "text");
        typ(&mut p, "echo hi", &c, &mut h);
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Inject, vec!["echo hi".into()])
        );
    }

    #[test]
    fn inline_arguments_and_defaults() {
        let (c, mut h) = (ctx(), History::default());
        let mut p = Palette::default();
        typ(&mut p, "inject ls -la", &c, &mut h);
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Inject, vec!["ls -la".into()])
        );
        // multicast: the targets prompt starts with the marked panes.
        let mut p = Palette::default();
        typ(&mut p, "multicast hello", &c, &mut h);
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert_eq!(p.input.text, "w1,build");
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Multicast, vec!["hello".into(), "w1,build".into()])
        );
        // rename starts with the focused id; kill with the focused session.
        let (mut p, out) = Palette::for_command(Cmd::Rename, &c);
        assert_eq!((out, p.input.text.as_str()), (Outcome::Continue, "w2"));
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Rename, vec!["w2".into()])
        );
        // Commands without arguments run at once.
        assert_eq!(
            Palette::for_command(Cmd::Log, &c).1,
            Outcome::Run(Cmd::Log, vec![])
        );
    }

    #[test]
    fn tab_completes_session_ids() {
        let (c, mut h) = (ctx(), History::default());
        let (mut p, _) = Palette::for_command(Cmd::Attach, &c);
        p.input.set("w");
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "w1");
        assert_eq!(
            p.candidates().unwrap().0,
            &["w1".to_string(), "w2".to_string()]
        );
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "w2");
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "w1", "cycles");
        // Comma lists complete the last id and skip those already listed.
        let mut p = Palette::default();
        typ(&mut p, "multicast x", &c, &mut h);
        p.key(&k(KeyCode::Enter), &c, &mut h);
        p.input.set("w1,");
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "w1,w2");
        // Keys complete the last name.
        let (mut p, _) = Palette::for_command(Cmd::Keys, &c);
        p.input.set("ctrl+c pageu");
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "ctrl+c pageup");
    }

    #[test]
    fn validation_keeps_the_prompt_open() {
        let (c, mut h) = (ctx(), History::default());
        let (mut p, _) = Palette::for_command(Cmd::Attach, &c);
        p.input.set("nope");
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert!(p.error.as_deref().unwrap().contains("no session"));
        let (mut p, _) = Palette::for_command(Cmd::Keys, &c);
        p.input.set("ctrl+c hyper");
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert!(p.error.as_deref().unwrap().contains("hyper"));
        let (mut p, _) = Palette::for_command(Cmd::Layout, &c);
        p.input.set("tall");
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Layout, vec!["tall".into()])
        );
    }

    #[test]
    fn kitty_actions_parse_and_validate() {
        let c = ctx();
        let p = |v: &str| parse_kitty_action(v, &c);
        assert_eq!(p("open all"), Ok(KittyAction::Open(vec![])));
        assert_eq!(p("open"), Ok(KittyAction::Open(vec![])));
        assert_eq!(
            p("open w1, build"),
            Ok(KittyAction::Open(vec!["w1".into(), "build".into()]))
        );
        assert_eq!(
            p(" open w1 w2 "),
            Ok(KittyAction::Open(vec!["w1".into(), "w2".into()]))
        );
        assert_eq!(p("focus w2"), Ok(KittyAction::Focus("w2".into())));
        assert_eq!(
            p("layout TALL"),
            Ok(KittyAction::Layout(kitty::Layout::Tall))
        );
        assert!(p("open w1,nope").unwrap_err().contains("\"nope\""));
        assert!(p("focus").unwrap_err().contains("focus ID"));
        assert!(p("layout zoom").unwrap_err().contains("unknown layout"));
        assert!(p("close w1").unwrap_err().starts_with("kitty open"));

        assert_eq!(kitty_layout_arg("kitty grid"), Some("grid"));
        assert_eq!(kitty_layout_arg("  kitty  "), Some(""));
        assert_eq!(kitty_layout_arg("kittygrid"), None);
        assert_eq!(kitty_layout_arg("grid"), None);
    }

    #[test]
    fn kitty_in_the_palette() {
        let (c, mut h) = (ctx(), History::default());
        // The default proposes the marked panes.
        let (mut p, _) = Palette::for_command(Cmd::Kitty, &c);
        assert_eq!(p.input.text, "open w1,build");
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Kitty, vec!["open w1,build".into()])
        );
        let none = Ctx {
            marked: vec![],
            ..ctx()
        };
        let (p, _) = Palette::for_command(Cmd::Kitty, &none);
        assert_eq!(p.input.text, "open all");
        // `layout kitty …` is a layout argument too; a bad one keeps the prompt open.
        let (mut p, _) = Palette::for_command(Cmd::Layout, &c);
        p.input.set("kitty stack");
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Layout, vec!["kitty stack".into()])
        );
        let (mut p, _) = Palette::for_command(Cmd::Layout, &c);
        p.input.set("kitty zoom");
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert!(p.error.as_deref().unwrap().contains("unknown layout"));
        // Tab offers kitty's layouts after the dashboard's.
        let (mut p, _) = Palette::for_command(Cmd::Layout, &c);
        p.input.set("kitty t");
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "kitty tall");
    }

    #[test]
    fn history_up_down() {
        let (c, mut h) = (ctx(), History::default());
        for t in ["one", "two"] {
            let (mut p, _) = Palette::for_command(Cmd::Inject, &c);
            p.input.set(t);
            p.key(&k(KeyCode::Enter), &c, &mut h);
        }
        let (mut p, _) = Palette::for_command(Cmd::Broadcast, &c);
        p.input.set("draft");
        p.key(&k(KeyCode::Up), &c, &mut h);
        assert_eq!(p.input.text, "two");
        p.key(&k(KeyCode::Up), &c, &mut h);
        assert_eq!(p.input.text, "one");
        p.key(&k(KeyCode::Up), &c, &mut h);
        assert_eq!(p.input.text, "one");
        p.key(&k(KeyCode::Down), &c, &mut h);
        assert_eq!(p.input.text, "two");
        p.key(&k(KeyCode::Down), &c, &mut h);
        assert_eq!(p.input.text, "draft");
    }

    #[test]
    fn escape_closes_and_unknown_commands_are_reported() {
        let (c, mut h) = (ctx(), History::default());
        let mut p = Palette::default();
        typ(&mut p, "zzz", &c, &mut h);
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert!(p.error.is_some());
        assert_eq!(p.key(&k(KeyCode::Esc), &c, &mut h), Outcome::Close);
    }

    #[test]
    fn command_lines_and_ids() {
        assert_eq!(split_command("bash").unwrap(), vec!["bash"]);
        assert_eq!(
            split_command("  sh -c 'echo a b' \"x y\" z\\ w").unwrap(),
            vec!["sh", "-c", "echo a b", "x y", "z w"]
        );
        assert!(split_command("sh -c 'oops").is_err());
        assert_eq!(
            split_command(r#"echo "a\"b" 'c\d' # note"#).unwrap(),
            vec!["echo", "a\"b", "c\\d"]
        );
        assert!(split_command("   ").is_err());
        assert_eq!(suggest_id("/usr/bin/bash -l", &["bash-1".into()]), "bash-2");
        assert_eq!(suggest_id("", &[]), "session-1");
        assert_eq!(split_ids(" a, b,,c "), vec!["a", "b", "c"]);
    }

    #[test]
    fn arguments_on_the_command_line_are_checked_and_remembered() {
        let (c, mut h) = (ctx(), History::default());
        for (line, err) in [
            ("kill nosuch", "no session \"nosuch\""),
            ("focus x", "no session \"x\""),
            ("layout nosuch", "layout is one of"),
            ("theme neon", "unknown theme"),
            ("keys ctrl+c hyper", "unknown key \"hyper\""),
        ] {
            let mut p = Palette::default();
            typ(&mut p, line, &c, &mut h);
            assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
            assert!(
                p.error.as_deref().unwrap().contains(err),
                "{line}: {:?}",
                p.error
            );
            assert_eq!(
                (p.stage.clone(), p.input.text.as_str()),
                (Stage::Select, line)
            );
        }
        let mut p = Palette::default();
        typ(&mut p, "kill w1", &c, &mut h);
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Kill, vec!["w1".into()])
        );
        let mut p = Palette::default();
        typ(&mut p, "layout tall", &c, &mut h);
        p.key(&k(KeyCode::Enter), &c, &mut h);
        assert_eq!(h.get(ArgKind::Session), ["w1"]);
        assert_eq!(h.get(ArgKind::Layout), ["tall"]);
        assert!(
            h.get(ArgKind::Theme).is_empty(),
            "a refused value is not kept"
        );
    }

    #[test]
    fn inject_can_name_its_target() {
        let (c, mut h) = (ctx(), History::default());
        let run = |line: &str, h: &mut History| {
            let mut p = Palette::default();
            typ(&mut p, line, &c, h);
            p.key(&k(KeyCode::Enter), &c, h)
        };
        assert_eq!(
            run("inject build make test", &mut h),
            Outcome::Run(Cmd::Inject, vec!["make test".into(), "build".into()])
        );
        assert_eq!(
            run("inject make test", &mut h),
            Outcome::Run(Cmd::Inject, vec!["make test".into()])
        );
        // An id alone opens the text prompt for that session.
        let mut p = Palette::default();
        typ(&mut p, "inject w1", &c, &mut h);
        assert_eq!(p.key(&k(KeyCode::Enter), &c, &mut h), Outcome::Continue);
        assert_eq!(p.target.as_deref(), Some("w1"));
        typ(&mut p, "hi", &c, &mut h);
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Inject, vec!["hi".into(), "w1".into()])
        );
    }

    #[test]
    fn tab_in_the_command_list_completes_and_keeps_the_input() {
        let (c, mut h) = (ctx(), History::default());
        let mut p = Palette::default();
        typ(&mut p, "inj", &c, &mut h);
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "inject ");
        typ(&mut p, "w", &c, &mut h);
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "inject w1");
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "inject w2");
        typ(&mut p, " echo", &c, &mut h);
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(
            p.input.text, "inject w2 echo",
            "the text is not an id: kept"
        );
        let mut p = Palette::default();
        typ(&mut p, "layout t", &c, &mut h);
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "layout tall");
        // A misspelt command is completed, its argument kept.
        let mut p = Palette::default();
        typ(&mut p, "kil w1", &c, &mut h);
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "kill w1");
        let mut p = Palette::default();
        typ(&mut p, "kill b", &c, &mut h);
        p.key(&k(KeyCode::Tab), &c, &mut h);
        assert_eq!(p.input.text, "kill build");
    }

    #[test]
    fn proposed_values_are_replaced_by_typing() {
        let (c, mut h) = (ctx(), History::default());
        for cmd in [Cmd::Focus, Cmd::Attach, Cmd::Kill, Cmd::Rename] {
            let (mut p, _) = Palette::for_command(cmd, &c);
            assert_eq!((p.input.text.as_str(), p.input.selected), ("w2", true));
            typ(&mut p, "build", &c, &mut h);
            assert_eq!(p.input.text, "build", "{cmd:?}");
        }
        // A cursor movement keeps the value for editing; Backspace clears it.
        let (mut p, _) = Palette::for_command(Cmd::Rename, &c);
        p.key(&k(KeyCode::End), &c, &mut h);
        typ(&mut p, "-b", &c, &mut h);
        assert_eq!(p.input.text, "w2-b");
        let (mut p, _) = Palette::for_command(Cmd::Kill, &c);
        p.key(&k(KeyCode::Backspace), &c, &mut h);
        assert_eq!(p.input.text, "");
        // A paste replaces it too.
        let (mut p, _) = Palette::for_command(Cmd::Focus, &c);
        p.paste("w1\n");
        assert_eq!(p.input.text, "w1");
    }

    #[test]
    fn a_pasted_text_keeps_its_lines() {
        let (c, mut h) = (ctx(), History::default());
        let (mut p, _) = Palette::for_command(Cmd::Inject, &c);
        p.paste("prompt\r\nsecond line\rthird line");
        assert_eq!(p.input.display(), "prompt⏎second line⏎third line");
        assert_eq!(p.input.cursor_col(), 29);
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Inject, vec!["prompt\nsecond line\nthird line".into()])
        );
        // Typed after the command too; an id takes the first line only.
        let mut p = Palette::default();
        typ(&mut p, "inject w1 ", &c, &mut h);
        p.paste("a\nb");
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Inject, vec!["a\nb".into(), "w1".into()])
        );
        let (mut p, _) = Palette::for_command(Cmd::Keys, &c);
        p.paste("up\ndown");
        assert_eq!(p.input.text, "up");
    }

    #[test]
    fn spawn_takes_a_directory_and_up_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        assert_eq!(
            parse_spawn(&format!("--cwd {d} bash -l")).unwrap(),
            (Some(d.clone()), vec!["bash".to_string(), "-l".into()])
        );
        assert_eq!(
            parse_spawn(&format!("--cwd={d} sh")).unwrap().0,
            Some(d.clone())
        );
        assert_eq!(parse_spawn("sh -c 'x y'").unwrap().0, None);
        assert!(
            parse_spawn("--cwd /no/such/dir sh")
                .unwrap_err()
                .contains("no such directory")
        );
        assert!(
            parse_spawn("--cwd")
                .unwrap_err()
                .contains("needs a directory")
        );
        assert!(
            parse_spawn(&format!("--cwd {d}"))
                .unwrap_err()
                .contains("command is required")
        );
        // The prompt checks it, and the id is suggested from the command, not from --cwd.
        let (c, mut h) = (ctx(), History::default());
        let mut p = Palette::default();
        typ(&mut p, "spawn --cwd /no/such bash", &c, &mut h);
        p.key(&k(KeyCode::Enter), &c, &mut h);
        assert!(p.error.as_deref().unwrap().contains("no such directory"));
        let mut p = Palette::default();
        typ(&mut p, &format!("spawn --cwd {d} bash"), &c, &mut h);
        p.key(&k(KeyCode::Enter), &c, &mut h);
        assert_eq!(p.input.text, "bash-1");
        // up: a blank file is the default one; a named one must exist.
        let (mut p, _) = Palette::for_command(Cmd::Up, &c);
        assert_eq!(
            p.key(&k(KeyCode::Enter), &c, &mut h),
            Outcome::Run(Cmd::Up, vec![String::new()])
        );
        let mut p = Palette::default();
        typ(&mut p, "up nosuch.toml", &c, &mut h);
        p.key(&k(KeyCode::Enter), &c, &mut h);
        assert!(p.error.as_deref().unwrap().contains("no file"));
    }

    #[test]
    fn line_editing() {
        let mut e = LineEdit::default();
        for c in "héllo wörld".chars() {
            e.key(&k(KeyCode::Char(c)));
        }
        e.key(&k(KeyCode::Left));
        e.key(&k(KeyCode::Backspace));
        assert_eq!(e.text, "héllo wörd");
        e.key(&KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL));
        assert_eq!(e.text, "héllo d");
        e.key(&k(KeyCode::Home));
        e.key(&k(KeyCode::Delete));
        assert_eq!((e.text.as_str(), e.cursor_col()), ("éllo d", 0));
    }
}
