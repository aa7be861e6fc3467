//! Whole-screen snapshot tests: panes built from `vt100` parsers fed with fixed bytes, drawn
//! with `TestBackend`, compared as text (`src/tui/snapshots/`).

use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

use super::app::App;
use super::info::SessionInfo;
use super::keymap::KeySpec;
use super::runner::run_pane_effects;
use super::source::{PaneSource, ParserPane};
use super::theme::Theme;
use super::ui;

fn prompt(id: &str) -> String {
    format!("\x1b[35m[AGENT: {id}]\x1b[0m ~/proj $ ")
}

/// Screen fixtures: what typical programs leave on a terminal.
fn fixture(i: usize, id: &str) -> Vec<u8> {
    let p = prompt(id);
    let s = match i % 6 {
        0 => format!("{p}ls\r\nCargo.toml  README.md  \x1b[1;34msrc\x1b[0m  \x1b[1;34mtests\x1b[0m\r\n{p}"),
        1 => format!(
            "{p}cargo test\r\nrunning 3 tests\r\ntest engine::ok ... \x1b[32mok\x1b[0m\r\ntest tui::grid ... \x1b[32mok\x1b[0m\r\ntest api::auth ... \x1b[31mFAILED\x1b[0m\r\n\r\ntest result: \x1b[31mFAILED\x1b[0m. 2 passed; 1 failed\r\n{p}"
        ),
        2 => format!("{p}cat notes.txt\r\n日本語のメモ: 幅の広い文字\r\nemoji-free wide text ok\r\n{p}"),
        3 => "\x1b[?1049h\x1b[H\x1b[7m top - 12:00:00 up 1 day,  load average: 0.42 \x1b[0m\r\n  PID USER      %CPU COMMAND\r\n    1 root       0.0 init\r\n  812 agent     12.5 claude\x1b[5;1H\x1b[?25l".to_string(),
        4 => "╭──────────────────────────────╮\r\n│ ✻ Thinking… (12s · esc)      │\r\n╰──────────────────────────────╯\r\n> refactor the layout module\r\n".to_string(),
        _ => format!("{p}echo $TELEPTY_SESSION_ID\r\n{id}\r\n{p}"),
    };
    s.into_bytes()
}

fn info(i: usize, id: &str) -> SessionInfo {
    let states = [
        "idle",
        "running",
        "idle",
        "thinking",
        "waiting_input",
        "idle",
    ];
    let commands = ["bash", "bash", "bash", "top", "claude", "bash"];
    SessionInfo {
        id: id.to_string(),
        kind: "spawned".into(),
        command: commands[i % 6].into(),
        host: "devbox".into(),
        auto_state: Some(states[i % 6].into()),
        health: "CONNECTED".into(),
        created_at: format!("2026-01-01T00:00:{i:02}.000Z"),
        pid: Some(1000 + i as u64),
        ..Default::default()
    }
}

fn app(n: usize) -> (App, Vec<Arc<ParserPane>>) {
    let mut app = App::new(
        "embedded :3848".into(),
        true,
        Theme::base(),
        false,
        KeySpec::default(),
    );
    let infos: Vec<SessionInfo> = (0..n).map(|i| info(i, &format!("w{}", i + 1))).collect();
    let mut panes = Vec::new();
    let mut k = 0;
    app.sync(infos, &mut |inf| {
        let p = Arc::new(ParserPane::new(24, 80, &fixture(k, &inf.id)));
        k += 1;
        panes.push(p.clone());
        Some(p as Arc<dyn PaneSource>)
    });
    (app, panes)
}

/// Update, then run the pane effects (typing, viewer sizes) the way the runner does.
fn event(app: &mut App, ev: Event) {
    let fx = app.on_event(ev);
    run_pane_effects(app, fx);
}

/// What the runner does for a frame: tell the app the terminal's size, then draw.
fn draw(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    event(app, Event::Resize(w, h));
    app.on_frame();
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    ui::buffer_text(draw(app, w, h).backend().buffer())
}

fn key(app: &mut App, code: KeyCode) {
    event(app, Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn typ(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

#[test]
fn grid_1() {
    let (mut app, _) = app(1);
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn grid_4() {
    let (mut app, _) = app(4);
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn grid_9() {
    let (mut app, _) = app(9);
    insta::assert_snapshot!(render(&mut app, 132, 40));
}

#[test]
fn grid_9_paged() {
    // At 120x40 only 6 panes of at least 40x8 fit: two pages.
    let (mut app, _) = app(9);
    let first = render(&mut app, 120, 40);
    assert!(first.contains("page 1/2"), "{first}");
    key(&mut app, KeyCode::Char(']'));
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn zoom() {
    let (mut app, _) = app(4);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('z'));
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn palette_filtered() {
    let (mut app, _) = app(4);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char(':'));
    typ(&mut app, "ca");
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn palette_argument_prompt() {
    let (mut app, _) = app(4);
    // Mark w1 and w3, then multicast: the targets prompt starts with the marks.
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Char(':'));
    typ(&mut app, "multicast git status");
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn help_overlay() {
    let (mut app, _) = app(4);
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

/// Issue 12: the help lists the palette's commands (its second page, from the palette's table).
#[test]
fn help_lists_the_palette_commands() {
    let (mut app, _) = app(4);
    key(&mut app, KeyCode::Char('?'));
    key(&mut app, KeyCode::Tab);
    let screen = render(&mut app, 120, 40);
    for c in super::palette::COMMANDS {
        assert!(
            screen.contains(&format!("  {} ", c.name)),
            "{} missing:\n{screen}",
            c.name
        );
    }
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Char('x'));
    assert!(!render(&mut app, 120, 40).contains("palette commands"));
}

#[test]
fn exited_pane() {
    let mut app = App::new(
        "client → 127.0.0.1:3848".into(),
        false,
        Theme::base(),
        false,
        KeySpec::default(),
    );
    let mut a = info(0, "build");
    a.exited = true;
    a.exit_code = Some(3);
    a.auto_state = Some("idle".into());
    let b = info(1, "agent");
    app.sync(vec![a, b], &mut |inf| {
        let bytes = if inf.id == "build" {
            format!("{}make\r\ncc -o app main.c\r\nmain.c:3: error: expected ';'\r\nmake: *** [app] Error 3\r\n", prompt("build")).into_bytes()
        } else {
            fixture(4, "agent")
        };
        Some(Arc::new(ParserPane::new(24, 80, &bytes)))
    });
    let out = render(&mut app, 120, 40);
    assert!(out.contains("[exited 3]"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn typing_log_unread_and_scrollback() {
    let (mut app, panes) = app(2);
    app.log.visible = true;
    for ev in [
        serde_json::json!({"type": "session_spawn", "session_id": "w1", "command": "bash", "timestamp": "2026-04-08T12:00:01.000Z"}),
        serde_json::json!({"type": "session_health", "session_id": "w1", "timestamp": "2026-04-08T12:00:02.000Z"}),
        serde_json::json!({"type": "inject_written", "target_agent": "w2", "content": "npm test", "timestamp": "2026-04-08T12:00:03.000Z"}),
        serde_json::json!({"type": "session_rename", "old_id": "w9", "new_id": "w2", "timestamp": "2026-04-08T12:00:04.000Z"}),
    ] {
        app.on_bus(None, &ev);
    }
    render(&mut app, 120, 40);
    // New output in the unfocused pane (not right after a resize): unread marker.
    app.panes[1].resized_at = None;
    panes[1].feed(b"new output\r\n");
    // Scroll the first pane back.
    for i in 0..40 {
        panes[0].feed(format!("line {i}\r\n").as_bytes());
    }
    app.panes[0].scroll = 5;
    let out = render(&mut app, 120, 40);
    assert!(out.contains("[scrollback -5]"), "{out}");
    assert!(out.contains('●'), "unread marker: {out}");
    assert!(!out.contains("session_health"));
    insta::assert_snapshot!(out);
    // Any key returns to live; focusing the pane clears its unread marker.
    key(&mut app, KeyCode::Enter);
    let out = render(&mut app, 120, 40);
    assert!(!out.contains("[scrollback"), "{out}");
    assert!(out.contains("TYPING w1"), "{out}");
    key(&mut app, KeyCode::Char('a'));
    event(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::CONTROL)),
    );
    key(&mut app, KeyCode::Char('l'));
    assert!(!render(&mut app, 120, 40).contains('●'));
}

#[test]
fn empty_dashboard() {
    let mut app = App::new(
        "embedded :3848".into(),
        true,
        Theme::base(),
        false,
        KeySpec::default(),
    );
    let out = render(&mut app, 100, 20);
    assert!(out.contains("No sessions yet."), "{out}");
}

/// `NO_COLOR` is about telepty's own colours: the chrome loses them, the programs keep theirs
/// (as in tmux; a program that honours NO_COLOR sees it in its own environment).
#[test]
fn no_color_strips_the_chrome_and_keeps_the_programs_colours() {
    let mut app = App::new(
        "embedded :3848".into(),
        true,
        Theme::base(),
        true,
        KeySpec::default(),
    );
    app.sync(vec![info(0, "w1")], &mut |_| {
        Some(Arc::new(ParserPane::new(
            24,
            80,
            b"\x1b[31;44mred on blue\x1b[0m \x1b[1mbold\x1b[0m",
        )))
    });
    let t = draw(&mut app, 80, 20);
    let buf = t.backend().buffer();
    // The program's cells (the pane's inner area starts at 1,1).
    let red = &buf[(1, 1)];
    assert_eq!(red.symbol(), "r");
    assert_eq!((red.fg, red.bg), (Color::Indexed(1), Color::Indexed(4)));
    let bold = &buf[(13, 1)];
    assert_eq!(bold.symbol(), "b");
    assert!(bold.modifier.contains(ratatui::style::Modifier::BOLD));
    // Everything else: borders, title, status bar.
    for y in 0..20 {
        for x in 0..80 {
            if y == 1 && (1..25).contains(&x) {
                continue;
            }
            let c = &buf[(x, y)];
            assert!(matches!(c.fg, Color::Reset), "fg at {x},{y}: {:?}", c.fg);
            assert!(matches!(c.bg, Color::Reset), "bg at {x},{y}: {:?}", c.bg);
        }
    }
}

#[test]
fn panes_are_resized_to_their_inner_size_once() {
    let (mut app, panes) = app(2);
    render(&mut app, 120, 40);
    let size = |p: &ParserPane| {
        let mut s = (0, 0);
        p.with_screen(0, &mut |sc| s = sc.size());
        s
    };
    // 120 wide, two columns of 60: inner 58; 40 rows minus status lines: 38, inner 36.
    assert_eq!(size(&panes[0]), (36, 58));
    let g = panes[0].generation();
    render(&mut app, 120, 40);
    assert_eq!(
        panes[0].generation(),
        g,
        "no resize when the size did not change"
    );
}

#[test]
fn tiny_windows_never_panic() {
    for (w, h) in [
        (1, 1),
        (19, 4),
        (20, 5),
        (24, 6),
        (30, 8),
        (41, 9),
        (43, 11),
        (60, 16),
    ] {
        for setup in 0..9 {
            let (mut app, _) = app(5);
            match setup {
                1 => app.log.visible = true,
                2 => key(&mut app, KeyCode::Char('?')),
                3 => {
                    key(&mut app, KeyCode::Char(':'));
                    typ(&mut app, "multicast hello");
                    key(&mut app, KeyCode::Enter);
                }
                4 => key(&mut app, KeyCode::Char('a')),
                5 => {
                    key(&mut app, KeyCode::Char('L'));
                    key(&mut app, KeyCode::Char('x'));
                }
                // Copy mode entered on a large screen, drawn on a small one, and the other
                // way round.
                6 | 8 => {
                    let (ew, eh) = if setup == 6 { (120, 40) } else { (w, h) };
                    render(&mut app, ew, eh);
                    key(&mut app, KeyCode::Char('c'));
                    typ(&mut app, "/AGENT");
                    key(&mut app, KeyCode::Enter);
                    typ(&mut app, "vjj$");
                }
                7 => {
                    key(&mut app, KeyCode::Char('b'));
                    key(&mut app, KeyCode::Char('f'));
                    key(&mut app, KeyCode::Down);
                }
                _ => {}
            }
            render(&mut app, w, h);
        }
    }
}

#[test]
fn tall_layout() {
    let (mut app, _) = app(3);
    key(&mut app, KeyCode::Char('L'));
    insta::assert_snapshot!(render(&mut app, 120, 40));
}

#[test]
fn twenty_panes_page_at_sixteen() {
    let (mut app, _) = app(20);
    let out = render(&mut app, 200, 50);
    assert!(out.contains("page 1/2"), "{out}");
    assert!(out.contains(" w16 @") && !out.contains(" w17 @"), "{out}");
    key(&mut app, KeyCode::PageDown);
    let out = render(&mut app, 200, 50);
    assert!(
        out.contains("page 2/2") && out.contains(" w20 @") && !out.contains(" w1 @"),
        "{out}"
    );
    // Every pane keeps at least the minimum inner size.
    for (_, r) in &app.visible {
        assert!(r.width >= 42 && r.height >= 10, "{r:?}");
    }
}

/// Issue 12: `w` jumps to the session waiting for input wherever it is (here from page 2 to
/// page 1), `n` to the next idle one; with none, the bar says so.
#[test]
fn jump_to_the_waiting_and_the_idle() {
    let (mut app, _) = app(9);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char(']'));
    assert!(render(&mut app, 120, 40).contains("page 2/2"));
    key(&mut app, KeyCode::Char('w'));
    let screen = render(&mut app, 120, 40);
    assert_eq!(app.focused_id().as_deref(), Some("w5"));
    assert!(screen.contains("page 1/2"), "{screen}");
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(
        app.focused_id().as_deref(),
        Some("w6"),
        "next idle after w5"
    );
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.focused_id().as_deref(), Some("w7"));

    let (mut none, _) = self::app(2);
    render(&mut none, 120, 40);
    key(&mut none, KeyCode::Char('w'));
    assert!(render(&mut none, 120, 40).contains("no session is waiting for input"));
}

/// Issue 12: entering a state named in `notify` is announced once, per transition; the first
/// sight of a session and changes into other states are not.
#[test]
fn entering_a_notified_state_is_announced_once() {
    use super::app::Effect;
    let (mut app, _) = app(3);
    app.notify_on = vec!["waiting".into(), "exited".into()];
    let notices = |fx: Vec<Effect>| -> Vec<(String, &'static str)> {
        fx.into_iter()
            .filter_map(|e| match e {
                Effect::Notify { id, state, .. } => Some((id, state)),
                _ => None,
            })
            .collect()
    };
    let mut infos: Vec<SessionInfo> = (0..3).map(|i| info(i, &format!("w{}", i + 1))).collect();
    let mut no_new = |_: &SessionInfo| -> Option<Arc<dyn PaneSource>> { None };
    assert!(notices(app.sync(infos.clone(), &mut no_new)).is_empty());
    infos[0].auto_state = Some("waiting_input".into());
    infos[1].auto_state = Some("idle".into());
    assert_eq!(
        notices(app.sync(infos.clone(), &mut no_new)),
        vec![("w1".to_string(), "waiting")]
    );
    // Still waiting: nothing new. Then w3 exits.
    infos[2].exited = true;
    infos[2].exit_code = Some(0);
    assert_eq!(
        notices(app.sync(infos.clone(), &mut no_new)),
        vec![("w3".to_string(), "exited")]
    );
}

/// Issue 12: `R` starts an exited session again under its id, with its command, arguments,
/// directory and size; a running one is left alone.
#[test]
fn r_restarts_an_exited_session() {
    use super::app::Effect;
    use super::backend::Op;
    let (mut app, _) = app(2);
    render(&mut app, 120, 40);
    let mut infos: Vec<SessionInfo> = (0..2).map(|i| info(i, &format!("w{}", i + 1))).collect();
    infos[0].exited = true;
    infos[0].exit_code = Some(3);
    infos[0].argv = vec!["bash".into(), "-c".into(), "make test".into()];
    infos[0].cwd = "/home/u/app".into();
    infos[0].cols = 90;
    infos[0].rows = 30;
    app.sync(infos, &mut |_| None);
    let fx = app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('R'),
        KeyModifiers::SHIFT,
    )));
    assert_eq!(
        fx,
        vec![Effect::Run(Op::Spawn {
            id: "w1".into(),
            argv: vec!["bash".into(), "-c".into(), "make test".into()],
            cwd: Some("/home/u/app".into()),
            cols: 90,
            rows: 30,
        })]
    );
    key(&mut app, KeyCode::Tab);
    let fx = app.on_event(Event::Key(KeyEvent::new(
        KeyCode::Char('R'),
        KeyModifiers::SHIFT,
    )));
    assert!(fx.iter().all(|e| !matches!(e, Effect::Run(_))), "{fx:?}");
    assert!(render(&mut app, 120, 40).contains("R restarts those"));
}

/// Issue 12: `S` orders the grid by state, waiting first (the focus stays on its session),
/// and back; the order holds across a refresh of the list.
#[test]
fn s_orders_the_grid_by_state_and_back() {
    let (mut app, _) = app(6);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focused_id().as_deref(), Some("w2"));
    let ids = |app: &App| -> Vec<String> { app.panes.iter().map(|p| p.info.id.clone()).collect() };
    event(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT)),
    );
    // w5 waits; w2 and w4 work; w1, w3, w6 are idle.
    assert_eq!(ids(&app), ["w5", "w2", "w4", "w1", "w3", "w6"]);
    assert_eq!(app.focused_id().as_deref(), Some("w2"));
    let infos: Vec<SessionInfo> = (0..6).map(|i| info(i, &format!("w{}", i + 1))).collect();
    app.sync(infos, &mut |_| None);
    assert_eq!(ids(&app)[0], "w5", "still by state after a refresh");
    event(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT)),
    );
    assert_eq!(ids(&app), ["w1", "w2", "w3", "w4", "w5", "w6"]);
    assert_eq!(app.focused_id().as_deref(), Some("w2"));
}

/// Issue 12: typing mode shows on the pane itself (a TYPING tag in its title), not only in
/// the status bar.
#[test]
fn typing_mode_shows_on_the_pane() {
    let (mut app, _) = app(2);
    render(&mut app, 120, 40);
    assert!(
        !render(&mut app, 120, 40)
            .lines()
            .next()
            .unwrap()
            .contains("TYPING")
    );
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    let title = screen.lines().next().unwrap();
    assert!(title.contains(" TYPING  [idle]"), "{title}");
    insta::assert_snapshot!(screen);
}

/// The status bar and message line: the last two rows of a screen.
fn bottom(screen: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines[lines.len().saturating_sub(2)..].join("\n")
}

/// Issue 12: the attention strip counts every session, on every page, names the waiting ones
/// and shows the grid's state filter.
#[test]
fn attention_strip_counts_names_and_shows_the_filter() {
    let (mut app, _) = app(9);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char(']'));
    let paged = bottom(&render(&mut app, 120, 40));
    key(&mut app, KeyCode::Char('f'));
    let filtered = bottom(&render(&mut app, 120, 40));
    insta::assert_snapshot!(format!("{paged}\n{filtered}"));
}

/// Issue 12: `f` steps the grid through the states; only matching sessions are shown, the
/// focus goes onto one of them, and an empty state says so.
#[test]
fn filter_shows_only_sessions_in_one_state() {
    let (mut app, _) = app(6);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char('f'));
    let screen = render(&mut app, 120, 40);
    assert_eq!(app.focused_id().as_deref(), Some("w5"));
    assert!(screen.contains("filter: waiting (1 shown)"), "{screen}");
    assert!(!screen.contains(" w1 @"), "{screen}");
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Char('f'));
    let screen = render(&mut app, 120, 40);
    let shown: Vec<&str> = app
        .visible
        .iter()
        .map(|(i, _)| app.panes[*i].info.id.as_str())
        .collect();
    assert_eq!(shown, ["w1", "w3", "w6"], "{screen}");
    assert_eq!(
        app.focused_id().as_deref(),
        Some("w6"),
        "the next shown after w5"
    );
    key(&mut app, KeyCode::Tab);
    assert_eq!(
        app.focused_id().as_deref(),
        Some("w1"),
        "Tab walks the shown ones"
    );
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(
        app.focused_id().as_deref(),
        Some("w2"),
        "working: w2 and w4"
    );
    key(&mut app, KeyCode::Char('f'));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("No exited session"), "{screen}");
    // Nothing to type into or copy from while nothing is shown.
    key(&mut app, KeyCode::Char('c'));
    assert!(app.copy.is_none());
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.visible.len(), 6);
    // The palette names a state, and says which exist when it does not know one.
    app.execute(super::palette::Cmd::Filter, vec!["Waiting".into()]);
    assert_eq!(app.filter, super::info::StateFilter::Waiting);
    app.execute(super::palette::Cmd::Filter, vec!["busy".into()]);
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("no state \"busy\"")
    );
}

/// Issue 12: the sidebar lists every session (all pages) with its state; ↑↓ in it move the
/// focus and flip the grid to that session's page; Esc gives the keys back to the grid.
#[test]
fn sidebar_lists_every_session_and_walks_the_pages() {
    let (mut app, _) = app(9);
    render(&mut app, 120, 40);
    key(&mut app, KeyCode::Char('b'));
    let screen = render(&mut app, 120, 40);
    assert!(app.sidebar && app.sidebar_keys);
    for i in 1..=9 {
        assert!(
            screen.contains(&format!(" w{i} @devbox")),
            "w{i}:\n{screen}"
        );
    }
    assert!(screen.contains("page 1/2"), "{screen}");
    for _ in 0..6 {
        key(&mut app, KeyCode::Down);
    }
    let screen = render(&mut app, 120, 40);
    assert_eq!(app.focused_id().as_deref(), Some("w7"));
    assert!(screen.contains("page 2/2"), "{screen}");
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.focused_id().as_deref(), Some("w9"));
    key(&mut app, KeyCode::Up);
    assert_eq!(app.focused_id().as_deref(), Some("w8"));
    // Back to the grid: arrows move geometrically again; b brings the keys back, b hides.
    key(&mut app, KeyCode::Esc);
    assert!(app.sidebar && !app.sidebar_keys);
    key(&mut app, KeyCode::Char('b'));
    assert!(app.sidebar_keys);
    key(&mut app, KeyCode::Char('b'));
    assert!(!app.sidebar);
    assert!(!render(&mut app, 120, 40).contains(" sessions 9 "));
}

/// Issue 12: copy mode on the pane border and in the bottom bar; search matches, the
/// selection and the cursor drawn over the copied screen.
#[test]
fn copy_mode_marks_matches_selection_and_cursor() {
    use ratatui::style::Modifier;
    let (mut app, panes) = app(2);
    render(&mut app, 120, 40);
    for i in 0..60 {
        panes[0].feed(format!("log line {i}: ok\r\n").as_bytes());
    }
    key(&mut app, KeyCode::Char('c'));
    typ(&mut app, "?ne 3");
    let prompt = render(&mut app, 120, 40);
    assert!(prompt.contains("search up: ne 3▏"), "{prompt}");
    key(&mut app, KeyCode::Enter);
    typ(&mut app, "v$");
    let t = draw(&mut app, 120, 40);
    let screen = ui::buffer_text(t.backend().buffer());
    assert!(screen.contains(" COPY w1 · selecting "), "{screen}");
    assert!(screen.contains("COPY ["), "{screen}");
    insta::assert_snapshot!(screen);
    // Up from the bottom, "log line 39" is the current match; "log line 38" another.
    let buf = t.backend().buffer();
    let row_of = |text: &str| {
        screen
            .lines()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text} not on screen:\n{screen}")) as u16
    };
    let cur = row_of("log line 39: ok");
    let other = row_of("log line 38: ok");
    let theme = Theme::base();
    // "log li" is 6 cells; the match starts at column 1 + 6.
    assert_eq!(
        buf[(7, other)].bg,
        theme.title_scroll.bg.unwrap(),
        "a match"
    );
    assert_eq!(buf[(6, other)].bg, Color::Reset, "not a match");
    assert_eq!(
        buf[(7, cur)].bg,
        theme.palette_selected.bg.unwrap(),
        "the current match"
    );
    assert!(
        buf[(13, cur)].modifier.contains(Modifier::REVERSED),
        "selected"
    );
    // `$` left the cursor on the last character, "k" of "ok".
    assert_eq!(buf[(15, cur)].symbol(), "k");
    let cursor = buf[(15, cur)].modifier;
    assert!(
        !cursor.contains(Modifier::REVERSED) && cursor.contains(Modifier::UNDERLINED),
        "the cursor stands out in the selection: {cursor:?}"
    );
}
