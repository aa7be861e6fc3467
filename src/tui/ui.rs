//! Drawing. Pure functions of the [`App`] (plus the pane sources' screens, each locked only
//! while that pane is drawn), so whole screens can be snapshot-tested with `TestBackend`.
//! The layout was computed by the update that changed it (`App::relayout`); nothing here
//! changes state, resizes a session or does I/O.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use tui_term::widget::{Cursor, PseudoTerminal};

use super::app::{App, Mode, Overlay};
use super::copymode::{Frozen, SelKind};
use super::info::{Badge, StateFilter};
use super::layout::{self, LayoutKind};
use super::palette::{Palette, Stage};
use super::theme::Theme;

fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Cut `s` to at most `max` columns, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = width(c.encode_utf8(&mut [0; 4]));
        if w + cw > max - 1 {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

fn line_width(spans: &[Span]) -> usize {
    spans.iter().map(Span::width).sum()
}

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    // The runner tells the app the terminal's size before drawing; a layout made for another
    // size would draw out of bounds.
    let regions = app.regions.filter(|_| area == app.screen);
    let Some(r) = regions else {
        f.render_widget(Paragraph::new("window too small"), area);
        return;
    };
    if app.attached {
        draw_banner(f, app, r.banner);
    }
    if r.sidebar.width > 0 {
        draw_sidebar(f, app, r.sidebar);
    }
    draw_panes(f, app, r.panes);
    if app.log.visible {
        draw_log(f, app, r.log);
    }
    draw_status(f, app, r.status);
    draw_message(f, app, r.message);
    match &app.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(f, app, area),
        Overlay::PaletteHelp => draw_palette_help(f, app, area),
        Overlay::Palette(p) => draw_palette(f, &app.theme, p, area),
        Overlay::Confirm(c) => draw_confirm(f, &app.theme, &c.message, area),
    }
}

fn draw_banner(f: &mut Frame, app: &App, area: Rect) {
    let id = app.focused_id().unwrap_or_default();
    let text = format!(
        " ATTACHED to {id} — every key goes to the program; {} detaches ",
        app.prefix.label()
    );
    f.render_widget(
        Paragraph::new(Line::from(text))
            .style(app.theme.banner)
            .alignment(Alignment::Center),
        area,
    );
}

fn draw_panes(f: &mut Frame, app: &App, area: Rect) {
    if app.panes.is_empty() {
        let msg = vec![
            Line::from("No sessions yet."),
            Line::from(""),
            Line::from("Press : and run `spawn`, or start one over the API:"),
            Line::from("POST /api/sessions/spawn {\"session_id\":\"w1\",\"command\":\"bash\"}"),
        ];
        draw_centered(f, area, msg, app.theme.empty);
        return;
    }
    if app.visible.is_empty() {
        let msg = format!(
            "No {} session (f: next filter · :filter all)",
            app.filter.name()
        );
        draw_centered(f, area, vec![Line::from(msg)], app.theme.empty);
        return;
    }
    for &(idx, rect) in &app.visible {
        draw_pane(f, app, idx, rect);
    }
}

/// A short state word for the sidebar's narrow column.
fn short_badge(b: &Badge) -> String {
    match b {
        Badge::Working => "work".into(),
        Badge::Idle => "idle".into(),
        Badge::Waiting => "WAIT".into(),
        Badge::Stuck => "stuck".into(),
        Badge::Exited { text, .. } => text.replace("exited", "exit"),
        Badge::Disconnected => "disc".into(),
        Badge::HostDown => "down".into(),
        Badge::Unknown => "start".into(),
    }
}

/// The session sidebar: one line per session, every session (however the grid pages), the
/// focused one highlighted; sessions the filter hides are dimmed. It scrolls to keep the
/// focused one in sight.
fn draw_sidebar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let border = if app.sidebar_keys && app.mode == Mode::Nav {
        (BorderType::Thick, t.border_focused)
    } else {
        (BorderType::Plain, t.border_unfocused)
    };
    let title = format!(" sessions {} ", app.panes.len());
    let block = Block::bordered()
        .border_type(border.0)
        .border_style(border.1)
        .title(Span::styled(title, t.title_text));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows = inner.height as usize;
    if rows == 0 {
        return;
    }
    let start = app.focus.saturating_sub(rows - 1);
    let shown = app.shown();
    let w = inner.width as usize;
    // The state column is as wide as its longest word, so ids line up.
    let state_w = app
        .panes
        .iter()
        .map(|p| width(&short_badge(&p.info.badge())))
        .max()
        .unwrap_or(0)
        .min(12);
    let lines: Vec<Line> = app
        .panes
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, p)| {
            let badge = p.info.badge();
            let focused = i == app.focus;
            let dim = !shown.contains(&i);
            let mut state = truncate(&short_badge(&badge), state_w);
            state.push_str(&" ".repeat(state_w.saturating_sub(width(&state))));
            let mark = if focused {
                "▶"
            } else if p.marked {
                "◆"
            } else {
                " "
            };
            let mut spans = vec![
                Span::styled(mark, t.title_marked),
                Span::styled(state, badge_style(t, &badge)),
            ];
            let id_style = if focused {
                t.title_focused
            } else {
                t.title_text
            };
            let mut rest = format!(" {}", p.info.id);
            let id_len = rest.len();
            if !p.info.host.is_empty() {
                rest.push_str(&format!(" @{}", p.info.host));
            }
            let host_len = rest.len();
            if !p.info.command.is_empty() {
                rest.push_str(&format!(" {}", p.info.command));
            }
            let rest = truncate(&rest, w.saturating_sub(line_width(&spans)));
            let cut = |n: usize| n.min(rest.len());
            let (id, tail) = rest.split_at(if rest.is_char_boundary(cut(id_len)) {
                cut(id_len)
            } else {
                rest.len()
            });
            let split = cut(host_len).saturating_sub(id.len()).min(tail.len());
            let (host, cmd) = tail.split_at(if tail.is_char_boundary(split) {
                split
            } else {
                tail.len()
            });
            spans.push(Span::styled(id.to_string(), id_style));
            spans.push(Span::styled(host.to_string(), t.title_host));
            spans.push(Span::styled(cmd.to_string(), t.title_command));
            let mut line = Line::from(spans);
            if focused {
                line = line.patch_style(Style::default().add_modifier(Modifier::REVERSED));
            } else if dim {
                line = line.patch_style(Style::default().add_modifier(Modifier::DIM));
            }
            line
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn badge_style(t: &Theme, b: &Badge) -> Style {
    match b {
        Badge::Working => t.badge_working,
        Badge::Idle => t.badge_idle,
        Badge::Waiting => t.badge_waiting,
        Badge::Stuck => t.badge_stuck,
        Badge::Exited { failed: true, .. } => t.badge_failed,
        Badge::Exited { .. } => t.badge_exited,
        Badge::Disconnected | Badge::HostDown => t.badge_disconnected,
        Badge::Unknown => t.badge_unknown,
    }
}

/// `lines` centred in `area`, both ways.
fn draw_centered(f: &mut Frame, area: Rect, lines: Vec<Line>, style: Style) {
    let h = lines.len() as u16;
    let r = Rect::new(
        area.x,
        area.y + area.height.saturating_sub(h) / 2,
        area.width,
        h.min(area.height),
    );
    let text = Paragraph::new(lines)
        .alignment(Alignment::Center)
        .style(style);
    f.render_widget(text, r);
}

fn draw_pane(f: &mut Frame, app: &App, idx: usize, rect: Rect) {
    let inner = layout::inner(rect);
    let Some(pane) = app.panes.get(idx) else {
        return;
    };
    let focused = idx == app.focus;
    let show_cursor = focused && app.mode == Mode::Typing;
    let t = &app.theme;
    let unread = !focused && pane.unread();

    // Draw the screen first: the effective scrollback offset is known only under the lock.
    let mut eff_scroll = 0usize;
    let note = pane.source.note();
    let mut blank = false;
    let scroll = pane.scroll;
    let copy = app.copy.as_deref().filter(|c| c.uid == pane.uid);
    if let Some(c) = copy {
        let cursor = Cursor::default().visibility(false);
        f.render_widget(PseudoTerminal::new(&c.screen).cursor(cursor), inner);
        draw_copy_marks(f, t, c, inner);
        eff_scroll = c.mode.offset();
    } else {
        pane.source.with_screen(scroll, &mut |screen| {
            let cursor = Cursor::default().visibility(show_cursor && screen.scrollback() == 0);
            f.render_widget(PseudoTerminal::new(screen).cursor(cursor), inner);
            eff_scroll = screen.scrollback();
            if note.is_some() {
                blank = screen.contents().trim().is_empty();
            }
        });
    }
    if blank && let Some(note) = note {
        let line = Line::from(truncate(&note, inner.width as usize));
        draw_centered(f, inner, vec![line], t.empty);
    }

    // Title: left = mark, id, host, command; right = badge, unread, scrollback.
    let badge = pane.info.badge();
    let mut right: Vec<Span> = Vec::new();
    if show_cursor {
        // Typing goes to this program: said on the pane itself, not only in the status bar.
        right.push(Span::styled(" TYPING ", t.status_typing));
    }
    right.push(Span::raw(" "));
    right.push(Span::styled(
        format!("[{}]", badge.text()),
        badge_style(t, &badge),
    ));
    if unread {
        right.push(Span::raw(" "));
        right.push(Span::styled("●", t.title_unread));
    }
    if let Some(c) = copy {
        // tmux's position indicator: the view's distance from the live screen, of the whole.
        right.push(Span::raw(" "));
        right.push(Span::styled(
            format!(
                "COPY [{}/{}]",
                c.mode.offset(),
                c.mode.len() - c.mode.height()
            ),
            t.title_scroll,
        ));
    } else if eff_scroll > 0 {
        right.push(Span::raw(" "));
        right.push(Span::styled(
            format!("[scrollback -{eff_scroll}]"),
            t.title_scroll,
        ));
    }
    right.push(Span::raw(" "));
    let avail = (rect.width as usize).saturating_sub(2);
    let right_w = line_width(&right);
    let left_max = avail.saturating_sub(right_w + 1);
    let mut left: Vec<Span> = vec![Span::raw(" ")];
    if pane.marked {
        left.push(Span::styled("◆ ", t.title_marked));
    }
    let id_style = if focused {
        t.title_focused
    } else {
        t.title_text.add_modifier(Modifier::BOLD)
    };
    let used = line_width(&left) + 1;
    left.push(Span::styled(
        truncate(&pane.info.id, left_max.saturating_sub(used)),
        id_style,
    ));
    let mut rest = String::new();
    if !pane.info.host.is_empty() {
        rest.push_str(&format!(" @{}", pane.info.host));
    }
    let host_len = rest.len();
    if !pane.info.command.is_empty() {
        rest.push_str(&format!(" · {}", pane.info.command));
    }
    let room = left_max.saturating_sub(line_width(&left) + 1);
    let rest = truncate(&rest, room);
    // Truncation may have cut into the host (its `…` then straddles `host_len`).
    let (host_part, cmd_part) = if rest.len() >= host_len && rest.is_char_boundary(host_len) {
        rest.split_at(host_len)
    } else {
        (rest.as_str(), "")
    };
    left.push(Span::styled(host_part.to_string(), t.title_host));
    left.push(Span::styled(cmd_part.to_string(), t.title_command));
    left.push(Span::raw(" "));

    let typing_border = Style::default().fg(t.status_typing.bg.unwrap_or(Color::Reset));
    let copy_border = Style::default().fg(t.title_scroll.bg.unwrap_or(Color::Reset));
    let (border_type, border_style) = if copy.is_some() {
        (BorderType::Thick, t.border_focused.patch(copy_border))
    } else if show_cursor {
        (BorderType::Thick, t.border_focused.patch(typing_border))
    } else if focused {
        (BorderType::Thick, t.border_focused)
    } else if pane.marked {
        (BorderType::Double, t.border_marked)
    } else {
        (BorderType::Plain, t.border_unfocused)
    };
    let mut block = Block::bordered()
        .border_type(border_type)
        .border_style(border_style)
        .title(Line::from(left));
    if right_w < avail {
        block = block.title(Line::from(right).right_aligned());
    }
    f.render_widget(block, rect);
}

/// Copy mode over the pane's copied screen: the search's matches, the selection and the
/// cursor, as styles on the cells already drawn.
fn draw_copy_marks(f: &mut Frame, t: &Theme, c: &Frozen, inner: Rect) {
    let m = &c.mode;
    let rows = (inner.height as usize).min(m.height());
    let current = m.current_match();
    let buf = f.buffer_mut();
    let mut mark = |line: usize, cols: std::ops::Range<usize>, style: &dyn Fn(Style) -> Style| {
        let y = inner.y + (line - m.top()) as u16;
        let from = m.column_of(line, cols.start);
        let to = m.column_of(line, cols.end).max(from + 1);
        for x in from..to.min(inner.width as usize) {
            let cell = &mut buf[(inner.x + x as u16, y)];
            cell.set_style(style(cell.style()));
        }
    };
    for line in m.top()..m.top() + rows {
        for hit in m.search().map_or(&[][..], |s| &s.matches[..]) {
            if hit.line != line {
                continue;
            }
            let style = if Some(*hit) == current {
                t.palette_selected
            } else {
                t.title_scroll
            };
            mark(line, hit.start..hit.start + hit.len, &|s| s.patch(style));
        }
        if let Some(cols) = m.selected_cols(line) {
            mark(line, cols, &|s| s.add_modifier(Modifier::REVERSED));
        }
    }
    let cur = m.cursor();
    if (m.top()..m.top() + rows).contains(&cur.line) {
        // The cursor shows inside a selection too: its cell is inverted against the rest.
        mark(cur.line, cur.col..cur.col + 1, &|s| {
            if s.add_modifier.contains(Modifier::REVERSED) {
                s.remove_modifier(Modifier::REVERSED)
                    .add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
            } else {
                s.add_modifier(Modifier::REVERSED)
            }
        });
    }
}

/// The attention strip: counts per state over every session (not only this page), waiting
/// first and with its ids, since that is who needs the user.
fn attention_spans(app: &App) -> Vec<Span<'static>> {
    const SHOWN_IDS: usize = 3;
    let t = &app.theme;
    let a = app.attention();
    let mut waiting = format!("{} waiting", a.waiting);
    if a.waiting > 0 {
        waiting.push(':');
        for id in a.waiting_ids.iter().take(SHOWN_IDS) {
            waiting.push(' ');
            waiting.push_str(id);
        }
        if a.waiting > SHOWN_IDS {
            waiting.push_str(&format!(" +{}", a.waiting - SHOWN_IDS));
        }
    }
    let parts = [
        (a.waiting, waiting, t.badge_waiting),
        (a.stuck, format!("{} stuck", a.stuck), t.badge_stuck),
        (a.working, format!("{} working", a.working), t.badge_working),
        (a.idle, format!("{} idle", a.idle), t.badge_idle),
        (a.exited, format!("{} exited", a.exited), t.badge_exited),
    ];
    let mut spans = Vec::new();
    for (n, text, style) in parts {
        if n > 0 {
            let lead = if spans.is_empty() { ": " } else { " · " };
            spans.push(Span::styled(lead, t.status_info));
            spans.push(Span::styled(text, style));
        }
    }
    spans
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let copy = app.copy.as_deref();
    let (label, style) = match (app.mode, app.attached) {
        (_, _) if let Some(c) = copy => {
            let selecting = match c.mode.selection_kind() {
                Some(SelKind::Chars) => "· selecting ",
                Some(SelKind::Lines) => "· selecting lines ",
                None => "",
            };
            (format!(" COPY {} {selecting}", c.id), t.title_scroll)
        }
        (_, true) => (
            format!(" ATTACHED {} ", app.focused_id().unwrap_or_default()),
            t.status_attached,
        ),
        (Mode::Typing, _) => (
            format!(" TYPING {} ", app.focused_id().unwrap_or_default()),
            t.status_typing,
        ),
        (Mode::Nav, _) => (" NAV ".to_string(), t.status_nav),
    };
    let mut spans = vec![
        Span::styled(label, style),
        Span::styled(format!(" {}", app.conn_label), t.status_info),
    ];
    if !app.hosts.is_empty() {
        let n = app.hosts.len();
        let peers = format!(" + {n} peer{}", if n == 1 { "" } else { "s" });
        spans.push(Span::styled(peers, t.status_info));
        let down: Vec<&str> = app
            .hosts
            .iter()
            .filter(|h| !h.1)
            .map(|h| h.0.as_str())
            .collect();
        if !down.is_empty() {
            spans.push(Span::styled(
                format!(" ({} down)", down.join(", ")),
                t.badge_failed,
            ));
        }
    }
    let n = app.panes.len();
    let sep = || Span::styled(" │ ", t.status_info);
    spans.push(sep());
    spans.push(Span::styled(
        format!("{n} session{}", if n == 1 { "" } else { "s" }),
        t.status_info,
    ));
    spans.extend(attention_spans(app));
    if app.filter != StateFilter::All {
        spans.push(sep());
        spans.push(Span::styled(
            format!(
                "filter: {} ({} shown)",
                app.filter.name(),
                app.shown().len()
            ),
            t.status_key,
        ));
    }
    spans.push(sep());
    let kind = app.effective_layout();
    spans.push(Span::styled(kind.name().to_string(), t.status_info));
    let (page, pages) = app.page;
    if kind == LayoutKind::Zoom && n > 0 {
        spans.push(Span::styled(
            format!(" {}/{}", page + 1, pages),
            t.status_info,
        ));
    } else if pages > 1 {
        spans.push(sep());
        spans.push(Span::styled(
            format!("page {}/{}", page + 1, pages),
            t.status_key,
        ));
    }
    let marked = app.panes.iter().filter(|p| p.marked).count();
    if marked > 0 {
        spans.push(sep());
        spans.push(Span::styled(format!("{marked} marked"), t.status_info));
    }
    let hint = match app.mode {
        _ if copy.is_some() => "/ ? search  v V select  y copy  q leave ".to_string(),
        Mode::Nav if app.sidebar_keys => "↑↓ choose  Esc grid  b hide ".to_string(),
        Mode::Typing => format!("{} → navigation ", app.prefix.label()),
        Mode::Nav => "? help  : palette  q quit ".to_string(),
    };
    let used = line_width(&spans);
    let hint_w = width(&hint);
    if used + hint_w < area.width as usize {
        spans.push(Span::styled(
            " ".repeat(area.width as usize - used - hint_w),
            t.status_bar,
        ));
        spans.push(Span::styled(hint, t.status_key));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(t.status_bar), area);
}

fn draw_message(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let prompt = app.copy.as_deref().and_then(|c| c.mode.prompt());
    let line = match (&app.status, prompt) {
        (_, Some(p)) => Line::from(vec![
            Span::styled(
                format!(" search {}: ", if p.forward { "down" } else { "up" }),
                t.palette_prompt,
            ),
            Span::styled(format!("{}▏", p.input), t.palette_text),
        ]),
        (Some(s), None) => Line::from(Span::styled(
            format!(" {}", s.text),
            if s.ok { t.status_ok } else { t.status_error },
        )),
        (None, None) => Line::from(Span::styled(
            " Enter/i: type into the pane · space: mark · z: zoom · e: events",
            t.status_message,
        )),
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let title = if app.log.editing || !app.log.filter.is_empty() {
        let caret = if app.log.editing { "▏" } else { "" };
        format!(" events — filter: {}{caret} ", app.log.filter)
    } else {
        " events (/ filters) ".to_string()
    };
    let block = Block::bordered()
        .border_style(t.log_border)
        .title(Span::styled(title, t.log_title));
    let inner = block.inner(area);
    let lines = app.log.filtered();
    let start = lines.len().saturating_sub(inner.height as usize);
    let text: Vec<Line> = lines[start..]
        .iter()
        .map(|l| {
            Line::from(vec![
                Span::styled(format!("{} ", l.time), t.log_time),
                Span::styled(l.text.clone(), t.log_text),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(text).block(block), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn help_lines(prefix: &str) -> Vec<(&str, &str)> {
    vec![
        ("Navigation mode", ""),
        ("←↓↑→  h j k l", "move the focus to the neighbouring pane"),
        ("Enter  i", "type into the focused pane (typing mode)"),
        (
            prefix,
            "typing mode: back to navigation; twice: send it to the program",
        ),
        ("a", "attach: full screen + typing until the prefix key"),
        ("z", "zoom the focused pane / back"),
        ("space", "mark / unmark the pane for multicast"),
        (":  ctrl+p", "command palette"),
        ("[ ]  PgUp PgDn", "previous / next page"),
        ("Tab  shift+Tab", "next / previous pane"),
        (
            "w  n",
            "next session waiting for input / next idle one (any page)",
        ),
        ("1 … 9", "focus pane n of this page"),
        ("L", "next layout (grid, tall, stack, zoom)"),
        ("r  s", "rename the focused session / spawn a new one"),
        ("x", "kill the focused session (asks first)"),
        (
            "R",
            "restart the focused exited session (same command, directory)",
        ),
        ("e  /", "event log; filter it"),
        ("Esc", "clear the message and the log filter"),
        ("?", "this help (Tab: the palette's commands)"),
        ("q", "quit (asks first when sessions would stop)"),
        (
            "y",
            "copy the focused pane's screen to the clipboard (OSC 52)",
        ),
        (
            "M",
            "mouse to the terminal (select text) / back to the dashboard",
        ),
        (
            "c",
            "copy mode: move, / ? search, v V select, y copy, r refresh, q leave",
        ),
        (
            "b  f",
            "session sidebar (↑↓ choose, Esc: grid, b: hide) / show one state or all",
        ),
        ("Mouse", ""),
        ("click", "focus a pane"),
        ("wheel", "scroll back (any key returns to live)"),
        ("Palette", ""),
        (
            "type",
            "filter commands; `inject echo hi` (or `inject ID echo hi`) runs at once",
        ),
        (
            "Enter  Tab",
            "run / next argument; complete commands, ids, keys, themes",
        ),
        ("typing", "replaces a proposed value (← → keep it to edit)"),
        ("↑ ↓", "select a command; recall earlier arguments"),
        ("Esc", "close"),
    ]
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let lines = key_table(t, &help_lines(app.prefix.label()));
    let title = " keys — Tab: the palette's commands · any other key closes ";
    draw_help_box(f, t, area, title, lines);
}

/// The help's second page: every palette command with its arguments, from the palette's own
/// table (so it cannot drift from what the palette runs).
fn draw_palette_help(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let names: Vec<String> = super::palette::COMMANDS
        .iter()
        .map(|c| {
            let args: Vec<String> = c.args.iter().map(|a| format!("<{}>", a.name)).collect();
            format!("{} {}", c.name, args.join(" "))
        })
        .collect();
    let rows: Vec<(&str, &str)> = names
        .iter()
        .zip(super::palette::COMMANDS)
        .map(|(n, c)| (n.as_str(), c.desc))
        .collect();
    let mut lines = vec![
        Line::from(Span::styled(
            "`:` or ctrl+p, then a command; arguments typed after it run at once",
            t.help_text,
        )),
        Line::from(""),
    ];
    lines.extend(key_table(t, &rows));
    let title = " palette commands — shift+Tab: keys · any other key closes ";
    draw_help_box(f, t, area, title, lines);
}

/// `key  description` rows with the keys padded to one column; a row without a description is
/// a section title (a blank line before it, except first).
fn key_table<'a>(t: &Theme, rows: &[(&'a str, &'a str)]) -> Vec<Line<'a>> {
    let key_w = rows.iter().map(|(k, _)| width(k)).max().unwrap_or(0) + 2;
    let mut lines = Vec::new();
    for (k, d) in rows {
        if d.is_empty() {
            if !lines.is_empty() {
                lines.push(Line::from(""));
            }
            lines.push(Line::from(Span::styled(*k, t.help_title)));
        } else {
            let pad = " ".repeat(key_w.saturating_sub(width(k)));
            lines.push(Line::from(vec![
                Span::styled(format!("  {k}{pad}"), t.help_key),
                Span::styled(*d, t.help_text),
            ]));
        }
    }
    lines
}

/// A help page: `lines` in a rounded box sized to them, centred over `area`.
fn draw_help_box(f: &mut Frame, t: &Theme, area: Rect, title: &str, lines: Vec<Line>) {
    let w = lines.iter().map(Line::width).max().unwrap_or(40) as u16 + 4;
    let h = lines.len() as u16 + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.help_border)
        .title(Span::styled(title, t.help_title));
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn draw_confirm(f: &mut Frame, t: &Theme, message: &str, area: Rect) {
    let w = (width(message) as u16 + 6).min(area.width);
    let r = centered(area, w, 3);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.confirm);
    f.render_widget(
        Paragraph::new(Line::from(Span::styled(message.to_string(), t.confirm)))
            .alignment(Alignment::Center)
            .block(block)
            .wrap(Wrap { trim: true }),
        r,
    );
}

const PALETTE_ROWS: usize = 10;

fn draw_palette(f: &mut Frame, t: &Theme, p: &Palette, area: Rect) {
    let w = 76.min(area.width.saturating_sub(4)).max(20);
    let mut body: Vec<Line> = Vec::new();
    let (title, label) = match p.current_arg() {
        None => (" command palette ".to_string(), ": ".to_string()),
        Some((spec, arg)) => match &p.target {
            Some(id) => (
                format!(" {} → {id} ", spec.name),
                format!("{} › ", arg.name),
            ),
            None => (format!(" {} ", spec.name), format!("{} › ", arg.name)),
        },
    };
    // A proposed default is drawn selected: typing replaces it.
    let input_style = if p.input.selected {
        t.palette_selected
    } else {
        t.palette_text
    };
    let input_line = Line::from(vec![
        Span::styled(label.clone(), t.palette_prompt),
        Span::styled(p.input.display(), input_style),
    ]);
    let inner_w = w.saturating_sub(2) as usize;
    match &p.stage {
        Stage::Select => {
            let matches = p.matches();
            let sel = p.selected.min(matches.len().saturating_sub(1));
            let start = sel.saturating_sub(PALETTE_ROWS - 1);
            for (i, (spec, m)) in matches.iter().enumerate().skip(start).take(PALETTE_ROWS) {
                let selected = i == sel;
                let base = if selected {
                    t.palette_selected
                } else {
                    t.palette_text
                };
                let mut spans: Vec<Span> =
                    vec![Span::styled(if selected { "› " } else { "  " }, base)];
                for (ci, c) in spec.name.chars().enumerate() {
                    let st = if m.positions.contains(&ci) {
                        base.patch(t.palette_matched)
                    } else {
                        base
                    };
                    spans.push(Span::styled(c.to_string(), st));
                }
                let pad = 12usize.saturating_sub(spec.name.len());
                let desc = truncate(
                    spec.desc,
                    inner_w.saturating_sub(2 + spec.name.len() + pad + 1),
                );
                spans.push(Span::styled(" ".repeat(pad), base));
                let desc_style = if selected {
                    base
                } else {
                    t.palette_description
                };
                spans.push(Span::styled(format!(" {desc}"), desc_style));
                let used = line_width(&spans);
                if selected && used < inner_w {
                    spans.push(Span::styled(" ".repeat(inner_w - used), base));
                }
                body.push(Line::from(spans));
            }
            if matches.is_empty() {
                body.push(Line::from(Span::styled(
                    "  no matching command",
                    t.palette_hint,
                )));
            }
        }
        Stage::Args { spec, collected } => {
            let spec = &super::palette::COMMANDS[*spec];
            for (i, v) in collected.iter().enumerate() {
                let name = spec.args.get(i).map_or("", |a| a.name);
                body.push(Line::from(vec![
                    Span::styled(format!("  {name}: "), t.palette_description),
                    Span::styled(
                        truncate(v, inner_w.saturating_sub(name.len() + 4)),
                        t.palette_text,
                    ),
                ]));
            }
            if let Some((cands, idx)) = p.candidates() {
                let mut spans = vec![Span::styled("  ", t.palette_hint)];
                for (i, c) in cands.iter().enumerate().take(12) {
                    let st = if i == idx {
                        t.palette_selected
                    } else {
                        t.palette_description
                    };
                    spans.push(Span::styled(c.clone(), st));
                    spans.push(Span::raw(" "));
                }
                body.push(Line::from(spans));
            }
            body.push(Line::from(Span::styled(
                "  Enter: ok · Tab: complete · ↑↓: history · Esc: cancel",
                t.palette_hint,
            )));
        }
    }
    if let Some(e) = &p.error {
        body.push(Line::from(Span::styled(format!("  {e}"), t.status_error)));
    }
    let h = (body.len() as u16 + 4).min(area.height.saturating_sub(1));
    let r = Rect::new(
        area.x + (area.width.saturating_sub(w)) / 2,
        area.y + 1.min(area.height),
        w,
        h,
    );
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.palette_border)
        .title(Span::styled(title, t.palette_prompt));
    let inner = block.inner(r);
    f.render_widget(block, r);
    if inner.height == 0 {
        return;
    }
    f.render_widget(
        Paragraph::new(input_line),
        Rect::new(inner.x, inner.y, inner.width, 1),
    );
    let cx = inner.x + (width(&label) + p.input.cursor_col()).min(inner.width as usize - 1) as u16;
    f.set_cursor_position((cx, inner.y));
    if inner.height > 2 {
        let sep = Rect::new(inner.x, inner.y + 1, inner.width, 1);
        f.render_widget(
            Paragraph::new(Span::styled(
                "─".repeat(inner.width as usize),
                t.palette_border,
            )),
            sep,
        );
        let list = Rect::new(inner.x, inner.y + 2, inner.width, inner.height - 2);
        f.render_widget(Paragraph::new(body), list);
    }
}

/// The visible text of a buffer, one line per row (trailing spaces trimmed), wide characters
/// once. Used by the snapshot tests.
#[cfg(test)]
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        let mut skip = 0;
        for x in area.left()..area.right() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            line.push_str(sym);
            skip = width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
