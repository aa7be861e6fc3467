//! The dashboard's state and its update functions: events in (keys, mouse, paste, the
//! terminal's size, session lists, bus events, outcomes), state changes and [`Effect`]s out.
//! Nothing here does I/O: typing into a pane, registering a pane's size with its session and
//! actions on sessions are effects the runner executes. The layout is computed here, by the
//! update that changes it ([`App::relayout`]), so drawing and key handling read the same one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use serde_json::Value;

use super::backend::{Op, Outcome as OpOutcome};
use super::copymode::{Action as CopyAction, Frozen};
use super::eventlog::EventLog;
use super::info::{Attention, Badge, SessionInfo, StateFilter};
use super::keymap::{KeySpec, encode_key, encode_paste};
use super::layout::{self, Dir, LayoutKind, Regions};
use super::palette::{self, Cmd, Ctx, History, Outcome, Palette};
use super::source::PaneSource;
use super::theme::Theme;

/// Rows scrolled per mouse wheel step.
const WHEEL_ROWS: usize = 3;
/// How the status line starts while typing into a pane (removed when typing ends).
const TYPING_MESSAGE: &str = "typing into ";
/// Output right after a resize is the program redrawing, not news.
const RESIZE_QUIET: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Keys drive the dashboard.
    #[default]
    Nav,
    /// Keys go to the focused pane's program (until the prefix key).
    Typing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmAction {
    Kill(String),
    Quit,
}

#[derive(Clone, Debug)]
pub struct Confirm {
    pub message: String,
    pub action: ConfirmAction,
}

#[derive(Default)]
pub enum Overlay {
    #[default]
    None,
    Help,
    /// The palette's commands, the help's second page.
    PaletteHelp,
    Palette(Box<Palette>),
    Confirm(Confirm),
}

/// What the runner must do after an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Run(Op),
    SetTheme(String),
    /// Through kitty's remote control, whichever backend: `known` are the session ids (to
    /// recognise their windows), `env` what the attach windows need to reach this daemon.
    Kitty {
        action: palette::KittyAction,
        known: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// Type into the pane's program at once (bypassing the inject queue).
    Input {
        uid: u64,
        data: String,
    },
    /// Capture the mouse (clicks focus, the wheel scrolls) or leave it to the terminal
    /// (selecting text the terminal's way).
    MouseCapture(bool),
    /// Put text on the system clipboard (OSC 52 through the outer terminal).
    Clipboard(String),
    /// A session entered a state the user asked to be told about (config `notify`).
    Notify {
        id: String,
        state: &'static str,
        text: String,
    },
    /// Register the pane's size as a viewer of its session (`Some`), or withdraw it (`None`:
    /// the pane is hidden, or the dashboard is leaving).
    ViewerSize {
        uid: u64,
        size: Option<(u16, u16)>,
    },
}

pub struct Pane {
    /// Stable identity across renames.
    pub uid: u64,
    pub info: SessionInfo,
    pub source: Arc<dyn PaneSource>,
    pub marked: bool,
    /// Generation when the pane was last focused (unread marker).
    pub seen_gen: u64,
    /// Generation at the last draw (redraw decisions).
    pub drawn_gen: u64,
    /// Scrollback offset (0 = live).
    pub scroll: usize,
    /// Inner size registered with the session (`None`: not counting toward its size).
    pub size: Option<(u16, u16)>,
    pub resized_at: Option<Instant>,
}

impl Pane {
    pub fn unread(&self) -> bool {
        self.source.generation() > self.seen_gen
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub ok: bool,
}

#[derive(Default)]
pub struct App {
    pub panes: Vec<Pane>,
    /// The mouse is the dashboard's (`M` hands it to the terminal and back).
    pub mouse: bool,
    /// `S`: the grid ordered by who needs the user (waiting, stuck, working, idle, …) instead
    /// of the sessions' own order.
    pub by_state: bool,
    /// The panes' uids in the sessions' own order (what `S` returns to).
    list_order: Vec<u64>,
    /// `f`: the grid shows only sessions in this state.
    pub filter: StateFilter,
    /// `b`: the list of every session left of the grid (config.toml `[tui] sidebar`).
    pub sidebar: bool,
    /// The keyboard is in the sidebar: up and down walk the list.
    pub sidebar_keys: bool,
    /// Copy mode, over a copy of one pane's screen.
    pub copy: Option<Box<Frozen>>,
    /// The focused pane's wheel offset when the current key arrived (copy mode starts there).
    wheel_at_key: usize,
    /// The states whose entry is announced (config.toml `[tui] notify`).
    pub notify_on: Vec<String>,
    pub focus: usize,
    pub layout: LayoutKind,
    /// The layout `z` returns to.
    pub unzoomed: LayoutKind,
    pub mode: Mode,
    /// Attached: zoomed typing into one pane with a banner, until the prefix key.
    pub attached: bool,
    pub overlay: Overlay,
    pub prefix: KeySpec,
    prefix_armed: bool,
    pub theme: Theme,
    pub no_color: bool,
    pub status: Option<Status>,
    /// `embedded :3848` / `client → 127.0.0.1:3848`
    pub conn_label: String,
    pub embedded: bool,
    /// The peers whose sessions the grid shows, and whether each answers.
    pub hosts: Vec<(String, bool)>,
    pub log: EventLog,
    pub history: History,
    pub themes: Vec<String>,
    pub key_names: Vec<String>,
    pub pending_focus: Option<String>,
    /// Environment of the kitty windows `kitty open` starts: what reaches this daemon.
    pub attach_env: Vec<(String, String)>,
    pub should_quit: bool,
    /// Quitting also stops every session (the user chose "stop all"); the default detaches.
    pub stop_sessions_on_quit: bool,
    /// UI state changed since the last draw.
    pub dirty: bool,
    next_uid: u64,
    /// The terminal's size, and the layout computed for it (`None`: too small to draw).
    pub screen: Rect,
    pub regions: Option<Regions>,
    /// The panes shown (index, rect) and the page: (page, pages).
    pub visible: Vec<(usize, Rect)>,
    pub page: (usize, usize),
}

impl App {
    pub fn new(
        conn_label: String,
        embedded: bool,
        theme: Theme,
        no_color: bool,
        prefix: KeySpec,
    ) -> App {
        let mut app = App {
            mouse: true,
            prefix,
            no_color,
            conn_label,
            embedded,
            themes: super::theme::BUILTIN
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            key_names: crate::engine::keys::valid_keys(),
            next_uid: 1,
            page: (0, 1),
            ..App::default()
        };
        app.set_theme(theme);
        app
    }

    pub fn set_theme(&mut self, theme: Theme) {
        self.theme = if self.no_color {
            theme.without_colors()
        } else {
            theme
        };
        self.dirty = true;
    }

    pub fn effective_layout(&self) -> LayoutKind {
        if self.attached {
            LayoutKind::Zoom
        } else {
            self.layout
        }
    }

    pub fn focused(&self) -> Option<&Pane> {
        self.panes.get(self.focus)
    }

    pub fn focused_id(&self) -> Option<String> {
        self.focused().map(|p| p.info.id.clone())
    }

    pub fn marked_ids(&self) -> Vec<String> {
        self.panes
            .iter()
            .filter(|p| p.marked)
            .map(|p| p.info.id.clone())
            .collect()
    }

    /// Sessions that die with an embedded dashboard.
    pub fn live_count(&self) -> usize {
        self.panes
            .iter()
            .filter(|p| p.info.is_spawned() && !p.info.exited)
            .count()
    }

    pub fn set_status(&mut self, text: impl Into<String>, ok: bool) {
        self.status = Some(Status {
            text: text.into(),
            ok,
        });
        self.dirty = true;
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            ids: self.panes.iter().map(|p| p.info.id.clone()).collect(),
            focused: self.focused_id(),
            marked: self.marked_ids(),
            themes: self.themes.clone(),
            key_names: self.key_names.clone(),
            hosts: self.hosts.iter().map(|(name, _)| name.clone()).collect(),
        }
    }

    /// Whether a draw would show something new.
    pub fn needs_draw(&self) -> bool {
        self.dirty
            || self.visible.iter().any(|(i, _)| {
                self.panes
                    .get(*i)
                    .is_some_and(|p| p.source.generation() != p.drawn_gen)
            })
    }

    // ---- sessions ----------------------------------------------------------------------

    /// Replace the session list. Existing panes keep their state (matched by id, or across a
    /// rename by creation time); new sessions get a source from `make` (none: a session gone
    /// meanwhile, left out).
    pub fn sync(
        &mut self,
        infos: Vec<SessionInfo>,
        make: &mut dyn FnMut(&SessionInfo) -> Option<Arc<dyn PaneSource>>,
    ) -> Vec<Effect> {
        let focused_uid = self.focused().map(|p| p.uid);
        let mut old: Vec<Option<Pane>> = std::mem::take(&mut self.panes)
            .into_iter()
            .map(Some)
            .collect();
        let mut panes = Vec::with_capacity(infos.len());
        let mut fx = Vec::new();
        for info in infos {
            let pos = old
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.info.id == info.id))
                .or_else(|| {
                    old.iter()
                        .position(|p| p.as_ref().is_some_and(|p| p.info.same_session(&info)))
                });
            let pane = match pos.and_then(|i| old[i].take()) {
                Some(mut p) => {
                    p.source.update(&info);
                    if p.info != info {
                        self.dirty = true;
                        let badge = info.badge();
                        if badge.kind() != p.info.badge().kind()
                            && self.notify_on.iter().any(|s| s == badge.kind())
                        {
                            fx.push(Effect::Notify {
                                id: info.id.clone(),
                                state: badge.kind(),
                                text: badge.text(),
                            });
                        }
                        p.info = info;
                    }
                    p
                }
                None => {
                    let Some(source) = make(&info) else {
                        continue;
                    };
                    let generation = source.generation();
                    self.dirty = true;
                    let uid = self.next_uid;
                    self.next_uid += 1;
                    Pane {
                        uid,
                        info,
                        source,
                        marked: false,
                        seen_gen: generation,
                        drawn_gen: u64::MAX,
                        scroll: 0,
                        size: None,
                        resized_at: None,
                    }
                }
            };
            panes.push(pane);
        }
        if old.iter().any(Option::is_some) {
            self.dirty = true;
        }
        self.panes = panes;
        self.list_order = self.panes.iter().map(|p| p.uid).collect();
        if let Some(c) = &self.copy
            && !self.panes.iter().any(|p| p.uid == c.uid)
        {
            let msg = format!("copy mode ended: {} is gone", c.id);
            self.copy = None;
            self.set_status(msg, false);
        }
        if self.by_state {
            self.sort_by_state();
        }
        let pending = self.pending_focus.clone();
        if let Some(i) = pending.and_then(|id| self.panes.iter().position(|p| p.info.id == id)) {
            self.pending_focus = None;
            self.set_focus(i);
        } else if let Some(i) =
            focused_uid.and_then(|uid| self.panes.iter().position(|p| p.uid == uid))
        {
            self.focus = i;
        } else {
            if focused_uid.is_some() {
                // The focused session went away.
                self.leave_typing();
                self.attached = false;
            }
            self.focus = self.focus.min(self.panes.len().saturating_sub(1));
        }
        fx.extend(self.relayout());
        fx
    }

    fn set_focus(&mut self, i: usize) {
        if i < self.panes.len() && i != self.focus {
            self.focus = i;
            let p = &mut self.panes[i];
            p.seen_gen = p.source.generation();
            self.dirty = true;
        }
    }

    /// Waiting first, then stuck, working, idle, starting, disconnected, exited; stable, so
    /// equal states keep the sessions' order. The focus stays on its session.
    fn sort_by_state(&mut self) {
        let rank = |p: &Pane| match p.info.badge() {
            Badge::Waiting => 0,
            Badge::Stuck => 1,
            Badge::Working => 2,
            Badge::Idle => 3,
            Badge::Unknown => 4,
            Badge::Disconnected | Badge::HostDown => 5,
            Badge::Exited { .. } => 6,
        };
        self.reorder(rank);
        self.dirty = true;
    }

    /// Reorder the panes (stable); the focus stays on its session.
    fn reorder<K: Ord>(&mut self, key: impl FnMut(&Pane) -> K) {
        let focused = self.focused().map(|p| p.uid);
        self.panes.sort_by_key(key);
        if let Some(i) = focused.and_then(|u| self.panes.iter().position(|p| p.uid == u)) {
            self.focus = i;
        }
    }

    /// `y`: the focused pane's screen as shown (scrolled back or live) onto the clipboard.
    fn copy_focused(&mut self) -> Vec<Effect> {
        let Some(p) = self.focused() else {
            return Vec::new();
        };
        let mut text = String::new();
        p.source.with_screen(p.scroll, &mut |screen| {
            let rows: Vec<String> = screen
                .rows(0, screen.size().1)
                .map(|r| r.trim_end().to_string())
                .collect();
            text = rows.join("\n").trim_end().to_string();
        });
        let id = p.info.id.clone();
        let lines = text.lines().count();
        self.set_status(format!("copied {lines} lines of {id} (OSC 52)"), true);
        vec![Effect::Clipboard(text)]
    }

    /// `R`: start the focused session again, exited, with its command, arguments, directory
    /// and size, under the same id.
    fn restart_focused(&mut self) -> Vec<Effect> {
        let Some(p) = self.focused() else {
            return Vec::new();
        };
        let info = &p.info;
        if !info.exited || !info.is_spawned() {
            let msg = format!(
                "{} is not an exited spawned session: R restarts those",
                info.id
            );
            self.set_status(msg, true);
            return Vec::new();
        }
        let op = Op::Spawn {
            id: info.id.clone(),
            argv: info.argv.clone(),
            cwd: Some(info.cwd.clone()).filter(|c| !c.is_empty()),
            cols: info.cols.max(1),
            rows: info.rows.max(1),
        };
        self.set_status(format!("restarting {}…", info.id), true);
        vec![Effect::Run(op)]
    }

    /// Counts per state over every session, for the attention strip.
    pub fn attention(&self) -> Attention {
        Attention::of(self.panes.iter().map(|p| &p.info))
    }

    /// Focus the next session (after the focused one, wrapping) whose badge is `want`; the
    /// page follows the focus. Says so when there is none.
    fn focus_next(&mut self, want: &Badge) {
        let n = self.panes.len();
        let next = (1..=n)
            .map(|k| (self.focus + k) % n)
            .find(|&i| self.panes[i].info.badge() == *want);
        match next {
            Some(i) => {
                if !self.filter.keeps(want) {
                    self.filter = StateFilter::All;
                    let id = &self.panes[i].info.id;
                    let msg = format!("{id} is {}: the filter is off", want.text());
                    self.set_status(msg, true);
                }
                self.set_focus(i);
            }
            None => self.set_status(format!("no session is {}", want.text()), true),
        }
    }

    fn focus_id(&mut self, id: &str) -> bool {
        let Some(i) = self.panes.iter().position(|p| p.info.id == id) else {
            return false;
        };
        self.set_focus(i);
        true
    }

    // ---- messages from the runner ------------------------------------------------------

    pub fn on_outcome(&mut self, out: OpOutcome) -> Vec<Effect> {
        if let Some(id) = out.focus
            && !self.focus_id(&id)
        {
            self.pending_focus = Some(id);
        }
        self.set_status(out.text, out.ok);
        self.relayout()
    }

    /// A theme the runner loaded (or could not) for [`Effect::SetTheme`].
    pub fn on_theme(&mut self, name: &str, theme: Result<Theme, String>) {
        match theme {
            Ok(t) => {
                self.set_theme(t);
                self.set_status(format!("theme {name}"), true);
            }
            Err(e) => self.set_status(e, false),
        }
    }

    /// [`Effect::Input`] found nowhere to go.
    pub fn input_dropped(&mut self, uid: u64) {
        if let Some(p) = self.panes.iter().find(|p| p.uid == uid) {
            let msg = format!("{}: not connected, input dropped", p.info.id);
            self.set_status(msg, false);
        }
    }

    pub fn on_bus(&mut self, peer: Option<&str>, v: &Value) {
        if self.log.push_from(peer, v) && self.log.visible {
            self.dirty = true;
        }
    }

    // ---- input -------------------------------------------------------------------------

    pub fn on_event(&mut self, ev: Event) -> Vec<Effect> {
        let mut fx = match ev {
            Event::Key(k) => self.on_key(k),
            Event::Mouse(m) => {
                self.on_mouse(m);
                Vec::new()
            }
            Event::Paste(text) => self.on_paste(&text),
            Event::Resize(cols, rows) => {
                self.screen = Rect::new(0, 0, cols, rows);
                self.dirty = true;
                Vec::new()
            }
            _ => Vec::new(),
        };
        fx.extend(self.relayout());
        fx
    }

    fn on_key(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if ev.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.dirty = true;
        self.wheel_at_key = self.focused().map_or(0, |p| p.scroll);
        // Any key returns scrolled panes to the live screen.
        self.panes.iter_mut().for_each(|p| p.scroll = 0);
        match std::mem::take(&mut self.overlay) {
            Overlay::None => {}
            Overlay::Help => {
                if matches!(ev.code, KeyCode::Tab | KeyCode::Char('?')) {
                    self.overlay = Overlay::PaletteHelp;
                }
                return Vec::new();
            }
            Overlay::PaletteHelp => {
                if ev.code == KeyCode::BackTab {
                    self.overlay = Overlay::Help;
                }
                return Vec::new();
            }
            Overlay::Confirm(c) => {
                match (c.action, ev.code) {
                    (ConfirmAction::Quit, KeyCode::Char('d' | 'D' | 'y' | 'Y' | 'q'))
                    | (ConfirmAction::Quit, KeyCode::Enter) => self.should_quit = true,
                    (ConfirmAction::Quit, KeyCode::Char('s' | 'S')) => {
                        self.should_quit = true;
                        self.stop_sessions_on_quit = true;
                    }
                    (ConfirmAction::Kill(id), KeyCode::Char('y' | 'Y')) => {
                        self.set_status(format!("kill {id}: …"), true);
                        return vec![Effect::Run(Op::Kill { id })];
                    }
                    _ => self.set_status("cancelled", true),
                }
                return Vec::new();
            }
            Overlay::Palette(mut p) => {
                let ctx = self.ctx();
                match p.key(&ev, &ctx, &mut self.history) {
                    Outcome::Continue => self.overlay = Overlay::Palette(p),
                    Outcome::Close => {}
                    Outcome::Run(cmd, args) => return self.execute(cmd, args),
                }
                return Vec::new();
            }
        }
        if self.log.editing {
            match ev.code {
                KeyCode::Esc => {
                    self.log.editing = false;
                    self.log.filter.clear();
                }
                KeyCode::Enter => self.log.editing = false,
                KeyCode::Backspace => {
                    self.log.filter.pop();
                }
                KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.log.filter.push(c)
                }
                _ => {}
            }
            return Vec::new();
        }
        if self.copy.is_some() {
            return self.key_copy(ev);
        }
        match self.mode {
            Mode::Typing => self.key_typing(ev),
            Mode::Nav if self.sidebar_keys => self.key_sidebar(ev),
            Mode::Nav => self.key_nav(ev),
        }
    }

    /// `c`: copy mode in the focused pane, from where the wheel left it.
    fn enter_copy(&mut self) {
        let Some(p) = self.focused().filter(|_| self.focus_shown()) else {
            self.set_status("copy mode: no session is shown", false);
            return;
        };
        let height = self
            .visible
            .iter()
            .find(|(i, _)| *i == self.focus)
            .map_or(1, |(_, r)| layout::inner(*r).height);
        let (uid, id) = (p.uid, p.info.id.clone());
        let mut frozen = None;
        p.source.with_screen(self.wheel_at_key, &mut |screen| {
            frozen = Some(Frozen::new(
                uid,
                id.clone(),
                screen,
                height,
                screen.scrollback(),
            ));
        });
        let Some(frozen) = frozen else {
            return;
        };
        let n = frozen.mode.len();
        self.copy = Some(Box::new(frozen));
        self.set_status(
            format!("copy mode in {id} ({n} lines): hjkl move · / ? search · v V select · y copy · q leave"),
            true,
        );
    }

    fn key_copy(&mut self, ev: KeyEvent) -> Vec<Effect> {
        let Some(c) = self.copy.as_mut() else {
            return Vec::new();
        };
        match c.key(&ev) {
            CopyAction::Stay => {}
            CopyAction::Say(text, ok) => self.set_status(text, ok),
            CopyAction::Refresh => self.refresh_copy(),
            CopyAction::Leave => {
                self.copy = None;
                self.set_status("left copy mode", true);
            }
            CopyAction::Copy(text) => {
                let id = c.id.clone();
                self.copy = None;
                let lines = text.lines().count().max(1);
                let s = if lines == 1 { "" } else { "s" };
                self.set_status(format!("copied {lines} line{s} of {id} (OSC 52)"), true);
                return vec![Effect::Clipboard(text)];
            }
        }
        Vec::new()
    }

    /// `r` in copy mode: the copy taken again from its pane, live (the view stays put).
    fn refresh_copy(&mut self) {
        let Some(c) = self.copy.as_mut() else {
            return;
        };
        let Some(p) = self.panes.iter().find(|p| p.uid == c.uid) else {
            return;
        };
        let mut kept = false;
        p.source
            .with_screen(0, &mut |screen| kept = c.refresh(screen));
        let msg = if kept {
            format!("refreshed from {}; the view stays on the same text", c.id)
        } else {
            format!(
                "refreshed from {}: the text in view has left the scrollback; at the bottom",
                c.id
            )
        };
        self.set_status(msg, kept);
    }

    /// `b`: show the sidebar with the keyboard in it; from the grid, back into it; in it, hide.
    fn toggle_sidebar(&mut self) {
        if self.sidebar && self.sidebar_keys {
            self.sidebar = false;
            self.sidebar_keys = false;
            self.set_status("sidebar hidden (b shows it)", true);
        } else {
            self.sidebar = true;
            self.sidebar_keys = true;
            self.set_status(
                "sidebar: ↑↓ jk choose a session · Esc/Enter back to the grid · b hides it",
                true,
            );
        }
    }

    /// Keys while the sidebar has them: up and down walk every shown session (the grid flips
    /// to the chosen one's page); the rest act as in the grid.
    fn key_sidebar(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return self.key_nav(ev);
        }
        let shown = self.shown();
        let pos = shown.iter().position(|&i| i == self.focus);
        let last = shown.len().saturating_sub(1);
        let to = match ev.code {
            KeyCode::Up | KeyCode::Char('k') => pos.map(|p| p.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => pos.map_or(Some(0), |p| Some((p + 1).min(last))),
            KeyCode::Home | KeyCode::Char('g') => Some(0),
            KeyCode::End | KeyCode::Char('G') => Some(last),
            KeyCode::Esc | KeyCode::Enter => {
                self.sidebar_keys = false;
                self.set_status("keys back in the grid (b: the sidebar)", true);
                return Vec::new();
            }
            _ => return self.key_nav(ev),
        };
        if let Some(&i) = to.and_then(|k| shown.get(k)) {
            self.set_focus(i);
        }
        Vec::new()
    }

    /// The panes the grid may show, in grid order: those the filter keeps, and the focused one
    /// while keys go to it (typing, attached, copy mode), so an answered agent that leaves
    /// the filter's state does not vanish under the user's hands.
    pub fn shown(&self) -> Vec<usize> {
        let busy = self.mode == Mode::Typing || self.attached || self.copy.is_some();
        self.panes
            .iter()
            .enumerate()
            .filter(|(i, p)| self.filter.keeps(&p.info.badge()) || (busy && *i == self.focus))
            .map(|(i, _)| i)
            .collect()
    }

    fn focus_shown(&self) -> bool {
        self.visible.iter().any(|(i, _)| *i == self.focus)
    }

    /// `f` / the palette's `filter`: show only the sessions in one state.
    fn set_filter(&mut self, filter: StateFilter) {
        self.filter = filter;
        // `relayout`, after this key, moves the focus onto a shown session.
        let shown = self.shown();
        let msg = if filter == StateFilter::All {
            "showing every session (f: filter by state)".to_string()
        } else {
            format!(
                "showing {} sessions: {} of {} (f: next filter)",
                filter.name(),
                shown.len(),
                self.panes.len()
            )
        };
        self.set_status(msg, true);
        self.dirty = true;
    }

    fn type_bytes(&mut self, bytes: &[u8]) -> Vec<Effect> {
        let Some(p) = self.panes.get(self.focus) else {
            self.mode = Mode::Nav;
            return Vec::new();
        };
        if p.info.exited {
            let msg = format!("{} has exited: input dropped", p.info.id);
            self.set_status(msg, false);
            return Vec::new();
        }
        vec![Effect::Input {
            uid: p.uid,
            data: String::from_utf8_lossy(bytes).into_owned(),
        }]
    }

    fn key_typing(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if self.prefix.matches(&ev) {
            self.leave_typing();
            self.prefix_armed = true;
            if self.attached {
                self.attached = false;
                self.set_status(
                    format!(
                        "detached ({} again sends it to the program)",
                        self.prefix.label()
                    ),
                    true,
                );
            }
            return Vec::new();
        }
        let Some(p) = self.panes.get(self.focus) else {
            self.mode = Mode::Nav;
            return Vec::new();
        };
        let (app_cursor, _) = p.source.modes();
        match encode_key(&ev, app_cursor) {
            Some(bytes) => self.type_bytes(&bytes),
            None => Vec::new(),
        }
    }

    /// Back to navigation; the "typing into …" message goes with the mode it described.
    fn leave_typing(&mut self) {
        self.mode = Mode::Nav;
        if self
            .status
            .as_ref()
            .is_some_and(|s| s.text.starts_with(TYPING_MESSAGE))
        {
            self.status = None;
        }
    }

    fn enter_typing(&mut self) {
        if let Some(id) = self.focused_id().filter(|_| self.focus_shown()) {
            self.mode = Mode::Typing;
            self.set_status(
                format!(
                    "{TYPING_MESSAGE}{id} — {} returns to navigation",
                    self.prefix.label()
                ),
                true,
            );
        } else {
            self.set_status("no session to type into", false);
        }
    }

    fn key_nav(&mut self, ev: KeyEvent) -> Vec<Effect> {
        if self.prefix_armed && self.prefix.matches(&ev) {
            self.prefix_armed = false;
            let Some(p) = self.panes.get(self.focus) else {
                return Vec::new();
            };
            let bytes = self.prefix.bytes(p.source.modes().0);
            let fx = self.type_bytes(&bytes);
            self.mode = Mode::Typing;
            return fx;
        }
        self.prefix_armed = false;
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        // Navigation keys are plain keys: ctrl+j must not move, ctrl+x must not ask to kill,
        // ctrl+Enter must not start typing (the prefix was handled above; ctrl+p and ctrl+c
        // have bindings of their own).
        let chorded = ev
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if chorded && !(ctrl && matches!(ev.code, KeyCode::Char('p' | 'c'))) {
            return Vec::new();
        }
        match ev.code {
            KeyCode::Char('q') if !ctrl => self.request_quit(),
            KeyCode::Char('c') if ctrl => self.set_status("press q to quit", true),
            KeyCode::Left | KeyCode::Char('h') => self.move_focus(Dir::Left),
            KeyCode::Right | KeyCode::Char('l') => self.move_focus(Dir::Right),
            KeyCode::Up | KeyCode::Char('k') => self.move_focus(Dir::Up),
            KeyCode::Down | KeyCode::Char('j') => self.move_focus(Dir::Down),
            KeyCode::Enter | KeyCode::Char('i') => self.enter_typing(),
            KeyCode::Char('z') if self.layout == LayoutKind::Zoom => self.set_layout(self.unzoomed),
            KeyCode::Char('z') => self.set_layout(LayoutKind::Zoom),
            KeyCode::Char(' ') => {
                if let Some(p) = self.panes.get_mut(self.focus) {
                    p.marked = !p.marked;
                    let n = self.marked_ids().len();
                    self.set_status(format!("{n} marked for multicast"), true);
                }
            }
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            KeyCode::Char(':') => self.overlay = Overlay::Palette(Box::default()),
            KeyCode::Char('p') if ctrl => self.overlay = Overlay::Palette(Box::default()),
            KeyCode::Char('e') => self.log.visible = !self.log.visible,
            KeyCode::Char('/') => {
                self.log.visible = true;
                self.log.editing = true;
            }
            KeyCode::Char('[') | KeyCode::PageUp => self.flip_page(-1),
            KeyCode::Char(']') | KeyCode::PageDown => self.flip_page(1),
            KeyCode::Tab => self.cycle_focus(1),
            KeyCode::BackTab => self.cycle_focus(-1),
            KeyCode::Char(d @ '1'..='9') => {
                let n = d as usize - '1' as usize;
                if let Some((i, _)) = self.visible.get(n) {
                    let i = *i;
                    self.set_focus(i);
                }
            }
            KeyCode::Char('a') => {
                if let Some(id) = self.focused_id() {
                    self.attach(&id);
                }
            }
            KeyCode::Char('r') if self.focused().is_some() => self.open_palette_at(Cmd::Rename),
            KeyCode::Char('s') => self.open_palette_at(Cmd::Spawn),
            KeyCode::Char('R') => return self.restart_focused(),
            KeyCode::Char('M') => {
                self.mouse = !self.mouse;
                let msg = if self.mouse {
                    "mouse: the dashboard's (click focuses, the wheel scrolls)"
                } else {
                    "mouse: the terminal's (select text as usual; M takes it back)"
                };
                self.set_status(msg, true);
                return vec![Effect::MouseCapture(self.mouse)];
            }
            KeyCode::Char('y') => return self.copy_focused(),
            KeyCode::Char('c') => self.enter_copy(),
            KeyCode::Char('b') => self.toggle_sidebar(),
            KeyCode::Char('f') => self.set_filter(self.filter.next()),
            KeyCode::Char('S') => {
                self.by_state = !self.by_state;
                if self.by_state {
                    self.sort_by_state();
                    self.set_status(
                        "grid by state: waiting first (S: the sessions' order)",
                        true,
                    );
                } else {
                    let order = std::mem::take(&mut self.list_order);
                    self.reorder(|p| order.iter().position(|u| *u == p.uid));
                    self.list_order = order;
                    self.set_status("grid in the sessions' order (S: by state)", true);
                }
            }
            KeyCode::Char('w') => self.focus_next(&Badge::Waiting),
            KeyCode::Char('n') => self.focus_next(&Badge::Idle),
            KeyCode::Char('x') => {
                if let Some(id) = self.focused_id() {
                    self.confirm_kill(id);
                }
            }
            KeyCode::Char('L') => {
                // The next one in declaration order (ALL's order), wrapping.
                let i = self.layout as usize + 1;
                self.set_layout(LayoutKind::ALL[i % LayoutKind::ALL.len()]);
            }
            KeyCode::Esc => {
                self.status = None;
                self.log.filter.clear();
            }
            _ => {}
        }
        Vec::new()
    }

    fn open_palette_at(&mut self, cmd: Cmd) {
        let (p, out) = Palette::for_command(cmd, &self.ctx());
        if out == Outcome::Continue {
            self.overlay = Overlay::Palette(Box::new(p));
        }
    }

    fn request_quit(&mut self) {
        let live = self.live_count();
        if self.embedded && live > 0 {
            let (s, verb) = if live == 1 {
                ("", "keeps")
            } else {
                ("s", "keep")
            };
            self.overlay = Overlay::Confirm(Confirm {
                message: format!(
                    "Quit: [d]etach — {live} running session{s} {verb} running (Enter) · [s]top all · Esc cancel"
                ),
                action: ConfirmAction::Quit,
            });
        } else {
            self.should_quit = true;
        }
    }

    fn confirm_kill(&mut self, id: String) {
        self.overlay = Overlay::Confirm(Confirm {
            message: format!("Kill session {id}? [y/N]"),
            action: ConfirmAction::Kill(id),
        });
    }

    fn attach(&mut self, id: &str) {
        if self.focus_id(id) || self.focused_id().as_deref() == Some(id) {
            self.attached = true;
            self.mode = Mode::Typing;
            self.set_status(format!("attached to {id}"), true);
        }
    }

    fn set_layout(&mut self, kind: LayoutKind) {
        if kind == LayoutKind::Zoom {
            if self.layout != LayoutKind::Zoom {
                self.unzoomed = self.layout;
            }
        } else {
            self.unzoomed = kind;
        }
        self.layout = kind;
        self.dirty = true;
    }

    fn move_focus(&mut self, dir: Dir) {
        let rects: Vec<Rect> = self.visible.iter().map(|(_, r)| *r).collect();
        let Some(from) = self.visible.iter().position(|(i, _)| *i == self.focus) else {
            return;
        };
        if let Some(to) = layout::neighbor(&rects, from, dir) {
            let i = self.visible[to].0;
            self.set_focus(i);
        }
    }

    fn cycle_focus(&mut self, delta: isize) {
        let shown = self.shown();
        let n = shown.len() as isize;
        if n > 0 {
            let pos = shown.iter().position(|&i| i == self.focus).unwrap_or(0);
            let k = (pos as isize + delta).rem_euclid(n) as usize;
            self.set_focus(shown[k]);
        }
    }

    fn flip_page(&mut self, delta: isize) {
        let kind = self.effective_layout();
        let shown = self.shown();
        let total = shown.len();
        let area = self.pane_area();
        let pos = shown.iter().position(|&i| i == self.focus).unwrap_or(0);
        let plan = layout::plan(kind, total, pos, area);
        let target = plan.page as isize + delta;
        if target < 0 || target as usize >= plan.pages {
            return;
        }
        let k = layout::page_start(kind, total, target as usize, area);
        if let Some(&i) = shown.get(k) {
            self.set_focus(i);
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        if !matches!(self.overlay, Overlay::None) {
            return;
        }
        let rects: Vec<Rect> = self.visible.iter().map(|(_, r)| *r).collect();
        let Some(hit) = layout::hit(&rects, m.column, m.row) else {
            return;
        };
        let i = self.visible[hit].0;
        let uid = self.panes[i].uid;
        if let Some(c) = self.copy.as_mut().filter(|c| c.uid == uid) {
            match m.kind {
                MouseEventKind::ScrollUp => c.scroll(-(WHEEL_ROWS as isize)),
                MouseEventKind::ScrollDown => c.scroll(WHEEL_ROWS as isize),
                _ => return,
            }
            self.dirty = true;
            return;
        }
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if self.copy.take().is_some() {
                    self.set_status("left copy mode", true);
                }
                self.set_focus(i);
            }
            MouseEventKind::ScrollUp => {
                // As far as the emulator's scrollback goes, so scrolling down again is
                // immediate.
                let p = &mut self.panes[i];
                let mut reached = 0;
                p.source
                    .with_screen(p.scroll + WHEEL_ROWS, &mut |s| reached = s.scrollback());
                p.scroll = reached;
                self.dirty = true;
            }
            MouseEventKind::ScrollDown => {
                self.panes[i].scroll = self.panes[i].scroll.saturating_sub(WHEEL_ROWS);
                self.dirty = true;
            }
            _ => {}
        }
    }

    fn on_paste(&mut self, text: &str) -> Vec<Effect> {
        self.dirty = true;
        if let Overlay::Palette(p) = &mut self.overlay {
            p.paste(text);
            return Vec::new();
        }
        if !matches!(self.overlay, Overlay::None) {
            return Vec::new();
        }
        if self.log.editing {
            self.log.filter.push_str(text.lines().next().unwrap_or(""));
            return Vec::new();
        }
        if let Some(c) = &mut self.copy {
            c.mode.paste(text);
            return Vec::new();
        }
        match self.panes.get(self.focus) {
            Some(p) if self.mode == Mode::Typing => {
                let bytes = encode_paste(text, p.source.modes().1);
                self.type_bytes(&bytes)
            }
            _ => Vec::new(),
        }
    }

    fn pane_area(&self) -> Rect {
        self.regions.map(|r| r.panes).unwrap_or_default()
    }

    /// Inner size a newly spawned pane will get (the last slot of the layout with one more pane).
    fn predicted_size(&self) -> (u16, u16) {
        let area = self.pane_area();
        if area.width < 3 || area.height < 3 {
            return (80, 24);
        }
        let n = self.shown().len() + 1;
        let plan = layout::plan(self.effective_layout(), n, n - 1, area);
        plan.rects.last().map_or((80, 24), |r| {
            (
                r.width.saturating_sub(2).max(1),
                r.height.saturating_sub(2).max(1),
            )
        })
    }

    /// Run a palette command.
    pub fn execute(&mut self, cmd: Cmd, args: Vec<String>) -> Vec<Effect> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
        // `inject ID text`: the palette passes the named session after the text.
        let target = (cmd == Cmd::Inject)
            .then(|| arg(1))
            .filter(|t| !t.is_empty());
        let focused = target.or_else(|| self.focused_id());
        let need_focus = matches!(cmd, Cmd::Inject | Cmd::Enter | Cmd::Keys | Cmd::Rename);
        if need_focus && focused.is_none() {
            self.set_status(
                format!("{}: no session is focused", palette::spec(cmd).name),
                false,
            );
            return Vec::new();
        }
        let id = focused.unwrap_or_default();
        let run = |op: Op| vec![Effect::Run(op)];
        // Commands with effects return them; the others only change the dashboard's state.
        match cmd {
            // An empty inject would press a bare Enter in the program: say so instead (the
            // palette's `enter` is the way to do that on purpose).
            Cmd::Inject if arg(0).trim().is_empty() => self.set_status(
                "inject: nothing to type, nothing sent (`enter` presses Enter)",
                false,
            ),
            Cmd::Inject => {
                self.set_status(format!("inject → {id}: …"), true);
                return run(Op::Inject { id, text: arg(0) });
            }
            Cmd::Broadcast => {
                self.set_status("broadcast: …", true);
                return run(Op::Broadcast { text: arg(0) });
            }
            Cmd::Multicast => {
                self.set_status("multicast: …", true);
                return run(Op::Multicast {
                    ids: palette::split_ids(&arg(1)),
                    text: arg(0),
                });
            }
            Cmd::Enter => return run(Op::Enter { id }),
            Cmd::Keys => {
                return run(Op::Keys {
                    id,
                    keys: arg(0).split_whitespace().map(str::to_string).collect(),
                });
            }
            Cmd::Rename => return run(Op::Rename { id, new_id: arg(0) }),
            Cmd::Attach => self.attach(&arg(0)),
            Cmd::Focus => {
                if !self.focus_id(&arg(0)) && self.focused_id() != Some(arg(0)) {
                    self.set_status(format!("no session {}", arg(0)), false);
                }
            }
            Cmd::Spawn => match palette::parse_spawn(&arg(0)) {
                Ok((cwd, argv)) => {
                    let (cols, rows) = self.predicted_size();
                    self.set_status(format!("spawn {}: …", arg(1)), true);
                    return run(Op::Spawn {
                        id: arg(1),
                        argv,
                        cwd,
                        cols,
                        rows,
                    });
                }
                Err(e) => self.set_status(format!("spawn: {e}"), false),
            },
            Cmd::Up => {
                let file = match arg(0).trim() {
                    "" => crate::config::project::DEFAULT_FILE.to_string(),
                    f => f.to_string(),
                };
                let (cols, rows) = self.predicted_size();
                self.set_status(format!("up {file}: …"), true);
                return run(Op::Up { file, cols, rows });
            }
            Cmd::Kill => self.confirm_kill(arg(0)),
            Cmd::Resurrect => {
                self.set_status("resurrect: …", true);
                return run(Op::Resurrect {
                    ids: palette::split_ids(&arg(0)),
                });
            }
            Cmd::Kitty => return self.kitty(&arg(0)),
            Cmd::Layout => match (
                palette::kitty_layout_arg(&arg(0)),
                LayoutKind::parse(&arg(0)),
            ) {
                (Some(kitty), _) => return self.kitty(&format!("layout {kitty}")),
                (None, Some(k)) => {
                    self.set_layout(k);
                    self.set_status(format!("layout {}", k.name()), true);
                }
                (None, None) => self.set_status(
                    format!(
                        "layout: no layout {:?} (grid, tall, stack, zoom, or kitty …)",
                        arg(0)
                    ),
                    false,
                ),
            },
            Cmd::Theme => return vec![Effect::SetTheme(arg(0))],
            Cmd::Log => self.log.visible = !self.log.visible,
            Cmd::CopyMode => self.enter_copy(),
            Cmd::Sidebar => {
                self.sidebar = !self.sidebar;
                self.sidebar_keys = false;
            }
            Cmd::Filter if arg(0).trim().is_empty() => self.set_filter(self.filter.next()),
            Cmd::Filter => match StateFilter::parse(&arg(0)) {
                Some(f) => self.set_filter(f),
                None => self.set_status(
                    format!(
                        "filter: no state {:?} (all, waiting, idle, working, exited)",
                        arg(0).trim()
                    ),
                    false,
                ),
            },
            Cmd::MarkAll => {
                self.panes.iter_mut().for_each(|p| p.marked = true);
                self.set_status(format!("{} marked for multicast", self.panes.len()), true);
            }
            Cmd::UnmarkAll => {
                self.panes.iter_mut().for_each(|p| p.marked = false);
                self.set_status("marks cleared", true);
            }
            Cmd::Help => self.overlay = Overlay::Help,
            Cmd::Quit => self.request_quit(),
        }
        Vec::new()
    }

    /// A kitty action from the palette (validated there; checked again here).
    fn kitty(&mut self, value: &str) -> Vec<Effect> {
        let ctx = palette::Ctx {
            ids: self.panes.iter().map(|p| p.info.id.clone()).collect(),
            ..Default::default()
        };
        let action = match palette::parse_kitty_action(value, &ctx) {
            Ok(palette::KittyAction::Open(ids)) if ids.is_empty() => {
                let live: Vec<String> = self
                    .panes
                    .iter()
                    .filter(|p| p.info.live())
                    .map(|p| p.info.id.clone())
                    .collect();
                if live.is_empty() {
                    self.set_status("kitty open: no live session", false);
                    return Vec::new();
                }
                palette::KittyAction::Open(live)
            }
            Ok(a) => a,
            Err(e) => {
                self.set_status(format!("kitty: {e}"), false);
                return Vec::new();
            }
        };
        self.set_status("kitty: …", true);
        vec![Effect::Kitty {
            action,
            known: ctx.ids,
            env: self.attach_env.clone(),
        }]
    }

    /// Lay the screen out again (after any change of size, session list, layout, focus or
    /// page): the regions, the page, the visible panes. A shown pane of a live spawned session
    /// registers its inner size with the session when that changed; a hidden one (another
    /// page, zoomed away) withdraws it, and registers again when shown. A screen too small to
    /// draw keeps the last layout.
    pub fn relayout(&mut self) -> Vec<Effect> {
        let Some(regions) =
            layout::regions(self.screen, self.attached, self.log.visible, self.sidebar)
        else {
            self.regions = None;
            return Vec::new();
        };
        self.regions = Some(regions);
        let mut shown = self.shown();
        // The focus stays on a session the grid shows (a filter, or a state change under it).
        if !shown.is_empty() && !shown.contains(&self.focus) {
            let i = shown
                .iter()
                .copied()
                .find(|&i| i > self.focus)
                .unwrap_or(shown[0]);
            self.set_focus(i);
            shown = self.shown();
        }
        let pos = shown.iter().position(|&i| i == self.focus).unwrap_or(0);
        let plan = layout::plan(self.effective_layout(), shown.len(), pos, regions.panes);
        self.page = (plan.page, plan.pages);
        self.visible = plan.range.map(|k| shown[k]).zip(plan.rects).collect();
        let mut fx = Vec::new();
        for &(idx, rect) in &self.visible {
            let Some(p) = self.panes.get_mut(idx) else {
                continue;
            };
            let inner = layout::inner(rect);
            let size = (inner.width, inner.height);
            if p.info.is_spawned()
                && p.info.live()
                && size.0 > 0
                && size.1 > 0
                && p.size != Some(size)
            {
                p.size = Some(size);
                p.resized_at = Some(Instant::now());
                fx.push(Effect::ViewerSize {
                    uid: p.uid,
                    size: Some(size),
                });
            }
        }
        for (i, p) in self.panes.iter_mut().enumerate() {
            if p.size.is_some() && !self.visible.iter().any(|(v, _)| *v == i) {
                p.size = None;
                fx.push(Effect::ViewerSize {
                    uid: p.uid,
                    size: None,
                });
            }
        }
        fx
    }

    /// The dashboard is going away: no pane counts toward a session's size any more, so
    /// sessions go back to their own size (unless another viewer is attached).
    pub fn release_all(&mut self) -> Vec<Effect> {
        self.panes
            .iter_mut()
            .filter_map(|p| {
                p.size.take().map(|_| Effect::ViewerSize {
                    uid: p.uid,
                    size: None,
                })
            })
            .collect()
    }

    /// A frame is about to be drawn: remember each shown pane's generation (redraw decisions),
    /// and keep the unread marker honest (the focused pane is read; output right after a
    /// resize is the program redrawing).
    pub fn on_frame(&mut self) {
        if self.regions.is_some() {
            for &(idx, _) in &self.visible {
                let focused = idx == self.focus;
                let Some(p) = self.panes.get_mut(idx) else {
                    continue;
                };
                let g = p.source.generation();
                if focused || p.resized_at.is_some_and(|t| t.elapsed() < RESIZE_QUIET) {
                    p.seen_gen = g;
                }
                p.drawn_gen = g;
            }
        }
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::super::runner::run_pane_effects;
    use super::super::source::ParserPane;
    use super::*;

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            kind: "spawned".into(),
            command: "bash".into(),
            host: "box".into(),
            health: "CONNECTED".into(),
            created_at: format!("2026-01-01T00:00:0{}.000Z", id.len()),
            pid: Some(id.len() as u64),
            ..Default::default()
        }
    }

    fn app_with(ids: &[&str]) -> (App, Vec<Arc<ParserPane>>) {
        let mut app = App::new(
            "embedded :1".into(),
            true,
            Theme::base(),
            false,
            KeySpec::default(),
        );
        let mut made = Vec::new();
        app.sync(ids.iter().map(|i| info(i)).collect(), &mut |_| {
            let p = Arc::new(ParserPane::new(10, 40, b""));
            made.push(p.clone());
            Some(p)
        });
        // A 120x40 terminal: the panes get 120x38.
        event(&mut app, Event::Resize(120, 40));
        (app, made)
    }

    /// Update, then run the pane effects the way the runner does; the others are returned.
    fn event(app: &mut App, ev: Event) -> Vec<Effect> {
        let fx = app.on_event(ev);
        run_pane_effects(app, fx)
    }

    fn key(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
        event(app, Event::Key(KeyEvent::new(code, mods)))
    }
    fn ch(app: &mut App, c: char) -> Vec<Effect> {
        key(app, KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn typing_mode_and_prefix() {
        let (mut app, panes) = app_with(&["a", "bb"]);
        ch(&mut app, 'i');
        assert_eq!(app.mode, Mode::Typing);
        for c in "ls".chars() {
            ch(&mut app, c);
        }
        key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        key(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(*panes[0].typed.lock(), b"ls\r\x03");
        // The prefix returns to navigation; pressed twice it is sent through.
        key(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
        assert_eq!(app.mode, Mode::Nav);
        key(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
        assert_eq!(app.mode, Mode::Typing);
        assert_eq!(*panes[0].typed.lock(), b"ls\r\x03\x01");
        // Navigation keys do not reach the program.
        key(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
        // A chorded letter is not a navigation action: ctrl+l does not move, ctrl+x and
        // alt+x do not ask to kill.
        key(&mut app, KeyCode::Char('l'), KeyModifiers::CONTROL);
        assert_eq!(app.focus, 0);
        key(&mut app, KeyCode::Char('x'), KeyModifiers::CONTROL);
        key(&mut app, KeyCode::Char('x'), KeyModifiers::ALT);
        assert!(matches!(app.overlay, Overlay::None));
        ch(&mut app, 'l');
        assert_eq!(app.focus, 1);
        assert_eq!(panes[1].typed.lock().len(), 0);
        // Paste in typing mode.
        ch(&mut app, 'i');
        event(&mut app, Event::Paste("x\ny".into()));
        assert_eq!(*panes[1].typed.lock(), b"x\ry");
    }

    #[test]
    fn chorded_keys_do_nothing_in_navigation_and_typing_ends_cleanly() {
        let (mut app, panes) = app_with(&["a", "bb"]);
        let alt = KeyModifiers::ALT;
        let ctrl = KeyModifiers::CONTROL;
        for (code, mods) in [
            (KeyCode::Char('j'), ctrl),
            (KeyCode::Char('l'), ctrl),
            (KeyCode::Right, ctrl),
            (KeyCode::Char('x'), ctrl),
            (KeyCode::Char('a'), alt),
            (KeyCode::Enter, ctrl),
            (KeyCode::Char('z'), alt),
        ] {
            assert!(key(&mut app, code, mods).is_empty());
            assert_eq!(
                (app.focus, app.mode, app.attached, app.layout),
                (0, Mode::Nav, false, LayoutKind::Grid),
                "{mods:?} {code:?}"
            );
            assert!(matches!(app.overlay, Overlay::None), "{code:?}");
        }
        // The "typing into" message leaves with the typing mode.
        ch(&mut app, 'i');
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .starts_with("typing into a")
        );
        key(&mut app, KeyCode::Char('a'), ctrl);
        assert_eq!((app.mode, app.status.clone()), (Mode::Nav, None));
        assert!(panes[0].typed.lock().is_empty());
    }

    #[test]
    fn inject_targets_spawn_directories_and_up() {
        let (mut app, _) = app_with(&["a", "bb"]);
        let fx = app.execute(Cmd::Inject, vec!["hi".into(), "bb".into()]);
        assert_eq!(
            fx,
            vec![Effect::Run(Op::Inject {
                id: "bb".into(),
                text: "hi".into()
            })]
        );
        assert_eq!(app.focused_id().as_deref(), Some("a"), "the focus stays");
        let fx = app.execute(Cmd::Spawn, vec!["--cwd / sh -l".into(), "sh-1".into()]);
        assert!(
            matches!(&fx[..], [Effect::Run(Op::Spawn { cwd: Some(d), argv, .. })] if d == "/" && argv == &["sh", "-l"]),
            "{fx:?}"
        );
        let fx = app.execute(Cmd::Up, vec![String::new()]);
        assert!(
            matches!(&fx[..], [Effect::Run(Op::Up { file, .. })] if file == "telepty.toml"),
            "{fx:?}"
        );
    }

    #[test]
    fn resurrect_runs_for_all_or_the_listed_ids() {
        let (mut app, _) = app_with(&["a"]);
        let fx = app.execute(Cmd::Resurrect, vec![String::new()]);
        assert_eq!(fx, vec![Effect::Run(Op::Resurrect { ids: vec![] })]);
        let fx = app.execute(Cmd::Resurrect, vec!["w1, w2".into()]);
        assert_eq!(
            fx,
            vec![Effect::Run(Op::Resurrect {
                ids: vec!["w1".into(), "w2".into()]
            })]
        );
        assert_eq!(palette::spec(Cmd::Resurrect).name, "resurrect");
    }

    #[test]
    fn kitty_commands_become_kitty_effects() {
        let (mut app, _) = app_with(&["a", "bb"]);
        app.attach_env = vec![("TELEPTY_PORT".into(), "4242".into())];
        let fx = app.execute(Cmd::Kitty, vec!["open all".into()]);
        assert_eq!(
            fx,
            vec![Effect::Kitty {
                action: palette::KittyAction::Open(vec!["a".into(), "bb".into()]),
                known: vec!["a".into(), "bb".into()],
                env: vec![("TELEPTY_PORT".into(), "4242".into())],
            }]
        );
        let fx = app.execute(Cmd::Layout, vec!["kitty tall".into()]);
        assert!(
            matches!(&fx[..], [Effect::Kitty { action: palette::KittyAction::Layout(l), .. }] if *l == crate::kitty::Layout::Tall),
            "{fx:?}"
        );
        // The dashboard's own layout is untouched by a kitty layout.
        assert_eq!(app.layout, LayoutKind::Grid);
        // An unknown layout and an empty inject say so instead of doing nothing (or pressing
        // a bare Enter).
        assert!(app.execute(Cmd::Layout, vec!["nosuch".into()]).is_empty());
        assert_eq!(app.layout, LayoutKind::Grid);
        assert!(
            format!("{:?}", app.status).contains("no layout"),
            "{:?}",
            app.status
        );
        assert!(app.execute(Cmd::Inject, vec!["  ".into()]).is_empty());
        assert!(
            format!("{:?}", app.status).contains("nothing to type"),
            "{:?}",
            app.status
        );
        let fx = app.execute(Cmd::Kitty, vec!["focus zz".into()]);
        assert!(fx.is_empty());
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .contains("no session \"zz\"")
        );
    }

    #[test]
    fn marks_multicast_and_confirmations() {
        let (mut app, _) = app_with(&["a", "bb", "ccc"]);
        ch(&mut app, ' ');
        ch(&mut app, 'l');
        ch(&mut app, 'l');
        assert_eq!(app.focus, 1, "a 2x2 grid: a bb / ccc");
        ch(&mut app, 'j');
        assert_eq!(app.focus, 2);
        ch(&mut app, ' ');
        assert_eq!(app.marked_ids(), vec!["a", "ccc"]);
        ch(&mut app, ':');
        for c in "multicast hi".chars() {
            ch(&mut app, c);
        }
        assert!(key(&mut app, KeyCode::Enter, KeyModifiers::NONE).is_empty());
        let fx = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            fx,
            vec![Effect::Run(Op::Multicast {
                ids: vec!["a".into(), "ccc".into()],
                text: "hi".into()
            })]
        );
        // Kill asks first.
        ch(&mut app, 'x');
        assert!(matches!(app.overlay, Overlay::Confirm(_)));
        assert!(ch(&mut app, 'n').is_empty());
        ch(&mut app, 'x');
        assert_eq!(
            ch(&mut app, 'y'),
            vec![Effect::Run(Op::Kill { id: "ccc".into() })]
        );
        // Quitting an embedded dashboard with live sessions asks: detach (the default) or
        // stop them all; anything else cancels.
        ch(&mut app, 'q');
        assert!(!app.should_quit);
        ch(&mut app, 'n');
        assert!(!app.should_quit);
        ch(&mut app, 'q');
        ch(&mut app, 'd');
        assert!(app.should_quit && !app.stop_sessions_on_quit);
        app.should_quit = false;
        ch(&mut app, 'q');
        ch(&mut app, 's');
        assert!(app.should_quit && app.stop_sessions_on_quit);
    }

    #[test]
    fn sync_keeps_state_across_rename_and_removal() {
        let (mut app, _) = app_with(&["a", "bb", "ccc"]);
        app.panes[1].marked = true;
        app.focus = 1;
        let mut renamed = info("bb");
        renamed.id = "zz".into();
        app.sync(vec![info("a"), renamed, info("ccc")], &mut |_| {
            unreachable!("no new panes")
        });
        assert_eq!(
            (
                app.focus,
                app.panes[1].info.id.as_str(),
                app.panes[1].marked
            ),
            (1, "zz", true)
        );
        app.mode = Mode::Typing;
        app.sync(vec![info("a"), info("ccc")], &mut |_| unreachable!());
        assert_eq!((app.focus, app.mode), (1, Mode::Nav));
        assert_eq!(app.focused_id().as_deref(), Some("ccc"));
        // A spawn's session is focused when it appears.
        app.on_outcome(OpOutcome {
            text: "spawn d: started".into(),
            ok: true,
            focus: Some("dddd".into()),
        });
        app.sync(vec![info("a"), info("ccc"), info("dddd")], &mut |_| {
            Some(Arc::new(ParserPane::new(5, 5, b"")))
        });
        assert_eq!(app.focused_id().as_deref(), Some("dddd"));
    }

    #[test]
    fn zoom_pages_and_attach() {
        let ids: Vec<String> = (0..9).map(|i| "p".repeat(i + 1)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (mut app, _) = app_with(&refs);
        ch(&mut app, ']');
        assert_eq!(
            app.focus, 6,
            "second page starts at pane 7 (6 per page at 120x38)"
        );
        ch(&mut app, ']');
        assert_eq!(app.focus, 6, "no third page");
        key(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
        assert_eq!(app.focus, 0);
        ch(&mut app, 'z');
        assert_eq!(app.effective_layout(), LayoutKind::Zoom);
        ch(&mut app, 'z');
        assert_eq!(app.effective_layout(), LayoutKind::Grid);
        ch(&mut app, 'a');
        assert!(app.attached && app.mode == Mode::Typing);
        assert_eq!(app.effective_layout(), LayoutKind::Zoom);
        key(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
        assert!(!app.attached && app.mode == Mode::Nav);
        assert_eq!(app.effective_layout(), LayoutKind::Grid);
    }

    #[test]
    fn layout_changes_register_and_release_viewer_sizes() {
        let (mut app, _) = app_with(&["a", "bb"]);
        let (a, b) = (app.panes[0].uid, app.panes[1].uid);
        let size = |uid, size| Effect::ViewerSize { uid, size };
        // Zoom: the focused pane takes the whole 120x38 area, the hidden one withdraws.
        let fx = app.on_event(Event::Key(KeyEvent::from(KeyCode::Char('z'))));
        assert_eq!(fx, vec![size(a, Some((118, 36))), size(b, None)]);
        // The terminal shrinks: only the shown pane follows.
        let fx = app.on_event(Event::Resize(100, 30));
        assert_eq!(fx, vec![size(a, Some((98, 26)))]);
        // Unchanged layout, no effects; leaving releases what is registered.
        assert!(app.on_event(Event::Resize(100, 30)).is_empty());
        assert_eq!(app.release_all(), vec![size(a, None)]);
    }

    #[test]
    fn mouse_focus_and_scroll() {
        let (mut app, panes) = app_with(&["a", "bb"]);
        for i in 0..60 {
            panes[0].feed(format!("line {i}\r\n").as_bytes());
        }
        let at = |kind, column, row| MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        };
        event(
            &mut app,
            Event::Mouse(at(MouseEventKind::Down(MouseButton::Left), 100, 5)),
        );
        assert_eq!(app.focus, 1);
        event(&mut app, Event::Mouse(at(MouseEventKind::ScrollUp, 10, 5)));
        event(&mut app, Event::Mouse(at(MouseEventKind::ScrollUp, 10, 5)));
        assert_eq!(app.panes[0].scroll, 6);
        event(
            &mut app,
            Event::Mouse(at(MouseEventKind::ScrollDown, 10, 5)),
        );
        assert_eq!(app.panes[0].scroll, 3);
        // No further than the scrollback goes (60 lines on the pane's 36 rows), so the way
        // down starts at once.
        for _ in 0..20 {
            event(&mut app, Event::Mouse(at(MouseEventKind::ScrollUp, 10, 5)));
        }
        let top = app.panes[0].scroll;
        assert!((20..30).contains(&top), "{top}");
        event(
            &mut app,
            Event::Mouse(at(MouseEventKind::ScrollDown, 10, 5)),
        );
        assert_eq!(app.panes[0].scroll, top - WHEEL_ROWS);
        ch(&mut app, 'j');
        assert_eq!(app.panes[0].scroll, 0, "any key returns to live");
    }

    fn typ(app: &mut App, s: &str) {
        for c in s.chars() {
            ch(app, c);
        }
    }

    /// Issue 12: copy mode finds a word printed long before (in the scrollback), selects its
    /// line and copies it with OSC 52; the program's later output does not move the view.
    #[test]
    fn copy_mode_searches_the_scrollback_and_copies_a_selection() {
        let (mut app, panes) = app_with(&["a", "bb"]);
        panes[0].feed(b"needle-7 was here\r\n");
        for i in 0..80 {
            panes[0].feed(format!("filler {i}\r\n").as_bytes());
        }
        ch(&mut app, 'c');
        let c = app.copy.as_ref().expect("in copy mode");
        assert_eq!((c.id.as_str(), c.mode.offset()), ("a", 0));
        typ(&mut app, "?needle");
        key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        let c = app.copy.as_ref().unwrap();
        assert_eq!(c.mode.cursor().line, 0, "the first line of the scrollback");
        assert!(c.mode.offset() > 0);
        assert_eq!(
            app.status.as_ref().unwrap().text,
            "\"needle\": match 1 of 1"
        );
        let view = c.screen.rows(0, 40).next().unwrap();
        panes[0].feed(b"more output\r\n");
        assert_eq!(
            app.copy
                .as_ref()
                .unwrap()
                .screen
                .rows(0, 40)
                .next()
                .unwrap(),
            view
        );
        // Keys are copy mode's: `l` moves its cursor, not the grid's focus.
        typ(&mut app, "wwwv$");
        assert_eq!(app.focus, 0);
        let fx = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(fx, vec![Effect::Clipboard("was here".into())]);
        assert!(app.copy.is_none());
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .starts_with("copied 1 line of a")
        );
        // A failed search says so and stays; q leaves.
        ch(&mut app, 'c');
        typ(&mut app, "/haystack");
        key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert!(app.copy.is_some());
        assert_eq!(
            app.status.clone().unwrap(),
            Status {
                text: "no match for \"haystack\"".into(),
                ok: false
            }
        );
        ch(&mut app, 'q');
        assert!(app.copy.is_none());
        // From the palette too; the pane going away ends it.
        app.execute(Cmd::CopyMode, vec![]);
        assert!(app.copy.is_some());
        app.sync(vec![info("bb")], &mut |_| unreachable!());
        assert!(app.copy.is_none());
        assert!(app.status.as_ref().unwrap().text.contains("a is gone"));
    }

    /// Copy mode starts where the wheel left the pane, and the wheel scrolls its view.
    #[test]
    fn copy_mode_starts_at_the_wheel_offset() {
        let (mut app, panes) = app_with(&["a"]);
        for i in 0..100 {
            panes[0].feed(format!("line {i}\r\n").as_bytes());
        }
        let wheel = |app: &mut App, kind| {
            event(
                app,
                Event::Mouse(MouseEvent {
                    kind,
                    column: 10,
                    row: 5,
                    modifiers: KeyModifiers::NONE,
                }),
            )
        };
        wheel(&mut app, MouseEventKind::ScrollUp);
        wheel(&mut app, MouseEventKind::ScrollUp);
        ch(&mut app, 'c');
        assert_eq!(app.copy.as_ref().unwrap().mode.offset(), 2 * WHEEL_ROWS);
        wheel(&mut app, MouseEventKind::ScrollDown);
        let c = app.copy.as_ref().unwrap();
        assert_eq!(
            (c.mode.offset(), c.screen.scrollback()),
            (WHEEL_ROWS, WHEEL_ROWS)
        );
        key(&mut app, KeyCode::Esc, KeyModifiers::NONE);
        assert!(app.copy.is_none());
    }
}
