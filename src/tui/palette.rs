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
    /// A command line to run.
    Command,
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
    Inject "inject" ["text": Text] "type text + Enter into the focused session",
    Broadcast "broadcast" ["text": Text] "type text + Enter into every session",
    Multicast "multicast" ["text": Text, "targets": Sessions]
        "type text + Enter into the marked sessions (or a comma list)",
    Enter "enter" [] "press Enter in the focused session",
    Keys "keys" ["keys": Keys] "send named keys (ctrl+c up enter …) to the focused session",
    Rename "rename" ["new id": NewId] "rename the focused session",
    Attach "attach" ["session": Session]
        "full screen + typing into one session until the prefix key",
    Focus "focus" ["session": Session] "move the focus to a session",
    Spawn "spawn" ["command": Command, "id": NewId] "start a command in a new session",
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
}

/// A one-line text input. `cursor` is a byte index on a char boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEdit {
    pub text: String,
    pub cursor: usize,
}

impl LineEdit {
    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = self.text.len();
    }
    pub fn insert_str(&mut self, s: &str) {
        let clean: String = s.chars().filter(|c| !c.is_control()).collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
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
        true
    }
    /// Display column of the cursor.
    pub fn cursor_col(&self) -> usize {
        ratatui::text::Span::raw(&self.text[..self.cursor]).width()
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
                let cmd = collected.first().map(String::as_str).unwrap_or("");
                suggest_id(cmd, &ctx.ids)
            }
            (_, ArgKind::Session) => ctx.focused.clone().unwrap_or_default(),
            (_, ArgKind::Kitty) if !ctx.marked.is_empty() => {
                format!("open {}", ctx.marked.join(","))
            }
            (_, ArgKind::Kitty) => "open all".into(),
            _ => String::new(),
        }
    }

    fn begin(&mut self, spec_idx: usize, collected: Vec<String>, ctx: &Ctx) -> Outcome {
        let spec = &COMMANDS[spec_idx];
        if collected.len() >= spec.args.len() {
            return Outcome::Run(spec.cmd, collected);
        }
        let kind = spec.args[collected.len()].kind;
        let default = Palette::default_for(spec, kind, ctx, &collected);
        self.stage = Stage::Args {
            spec: spec_idx,
            collected,
        };
        self.input.set(&default);
        self.error = None;
        self.history_pos = None;
        self.completion = None;
        Outcome::Continue
    }

    pub fn key(&mut self, ev: &KeyEvent, ctx: &Ctx, history: &mut History) -> Outcome {
        match self.stage.clone() {
            Stage::Select => self.key_select(ev, ctx),
            Stage::Args { spec, collected } => self.key_args(ev, ctx, history, spec, collected),
        }
    }

    pub fn paste(&mut self, text: &str) {
        let first = text.lines().next().unwrap_or("");
        self.input.insert_str(first);
        self.selected = 0;
    }

    fn key_select(&mut self, ev: &KeyEvent, ctx: &Ctx) -> Outcome {
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
                let mut collected = Vec::new();
                if !rest.is_empty() && !COMMANDS[idx].args.is_empty() {
                    collected.push(rest);
                }
                return self.begin(idx, collected, ctx);
            }
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => self.select_next(),
            KeyCode::Char('p') if ctrl => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('n') if ctrl => self.select_next(),
            KeyCode::Tab => {
                if let Some((s, _)) = self.matches().get(self.selected) {
                    self.input.set(&format!("{} ", s.name));
                    self.selected = 0;
                }
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
                self.complete(arg.kind, ctx, ev.code == KeyCode::BackTab)
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

    fn complete(&mut self, kind: ArgKind, ctx: &Ctx, backwards: bool) {
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
            let text = replace_token(&c.base, kind, &c.candidates[c.idx]);
            c.shown = text.clone();
            self.input.set(&text);
            return;
        }
        let base = self.input.text.clone();
        let (token, others) = current_token(&base, kind);
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
            ArgKind::Text | ArgKind::NewId | ArgKind::Command => Vec::new(),
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
        let text = replace_token(&base, kind, &candidates[0]);
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
        ArgKind::NewId if !crate::util::valid_session_id(value) => {
            Err("ids use 1-128 characters from A-Z a-z 0-9 . _ -".into())
        }
        ArgKind::Command if value.is_empty() => Err("command is required".into()),
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
        }
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
