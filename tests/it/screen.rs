//! Rendered screen (API.md §7, §17 `vt-screen`) of spawned sessions driven through inject.

use crate::common;

use common::*;
use serde_json::json;

#[test]
fn inject_runs_command_and_screen_shows_exact_output_line() {
    let d = Daemon::start();
    let spawned = d.spawn_bash("calc");
    assert_eq!(spawned["session_id"], json!("calc"), "{spawned}");
    assert_eq!(spawned["command"], json!("bash"), "{spawned}");
    assert!(
        spawned["cwd"].is_string(),
        "spawn answer needs cwd: {spawned}"
    );

    let r = d.inject("calc", "echo $((6*7))");
    assert_uuid_v4(&r["inject_id"]);
    assert_eq!(r["strategy"], json!("mailbox"), "{r}");
    assert_eq!(r["submit"], json!("deferred"), "{r}");

    let screen = d.wait_line("calc", "42");
    // The command line itself was typed, not replaced: the prompt line shows it.
    assert!(
        screen.lines().any(|l| l.starts_with("[AGENT: calc]")
            && (l.ends_with("$ echo $((6*7))") || l.ends_with("# echo $((6*7))"))),
        "the typed command is not on a prompt line:\n{screen}"
    );

    let full = d.get("/api/sessions/calc/screen?lines=500");
    assert_eq!(full.0, 200);
    let b = &full.1;
    assert_eq!(b["session_id"], json!("calc"));
    assert_eq!(b["raw"], json!(false));
    assert!(
        b["generation"].as_u64().unwrap_or(0) > 0,
        "generation must advance: {b}"
    );
    let lines = b["lines"].as_u64().expect("lines");
    assert_eq!(
        lines as usize,
        b["screen"].as_str().unwrap().split('\n').count(),
        "{b}"
    );
    assert!(b["total_lines"].as_u64().unwrap() >= lines, "{b}");

    // `lines=1` returns only the last row: the fresh prompt.
    let last = d.get("/api/sessions/calc/screen?lines=1").1;
    assert_eq!(last["lines"], json!(1), "{last}");
    assert!(
        last["screen"]
            .as_str()
            .unwrap()
            .starts_with("[AGENT: calc]"),
        "{last}"
    );

    // ansi format: same rows with SGR; every row ends in ESC[0m.
    let ansi = d.get("/api/sessions/calc/screen?format=ansi").1;
    let ansi_screen = ansi["screen"].as_str().expect("ansi screen");
    assert!(ansi_screen.contains("42"), "{ansi}");
    assert!(
        ansi_screen.split('\n').all(|row| row.ends_with("\x1b[0m")),
        "ansi rows must end in ESC[0m: {ansi_screen:?}"
    );
}

#[test]
fn carriage_return_overwrites_like_a_real_terminal() {
    let d = Daemon::start();
    d.spawn_bash("cr");
    d.inject("cr", r"printf 'abcdef\rXY\n'");
    let screen = d.wait_screen("cr", "the printf output line", |s| {
        s.lines().any(|l| l.starts_with("XY"))
    });
    let out: Vec<&str> = screen.lines().filter(|l| l.starts_with("XY")).collect();
    assert_eq!(out, vec!["XYcdef"], "rendered output line wrong:\n{screen}");
    assert!(
        !screen.lines().any(|l| l.starts_with("abcdef")),
        "the overwritten text is still visible:\n{screen}"
    );

    // raw=1 keeps the bytes as they came, CR included.
    let raw = d.get("/api/sessions/cr/screen?raw=1&lines=100").1;
    assert_eq!(raw["raw"], json!(true), "{raw}");
    assert!(
        raw["screen"].as_str().unwrap().contains("abcdef\rXY"),
        "raw output must contain the CR sequence: {raw}"
    );
}

#[test]
fn clear_title_and_alternate_screen() {
    let d = Daemon::start();
    d.spawn_bash("alt");

    // Clear screen: the visible rows lose earlier output.
    d.inject("alt", "echo before-clear");
    d.wait_line("alt", "before-clear");
    d.inject("alt", "clear");
    d.inject("alt", "echo after");
    wait_for(
        T,
        "visible rows show `after` and not `before-clear`",
        || {
            let j = d.screen_json("alt");
            let rows: Vec<String> = j["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            (rows.iter().any(|r| r == "after") && !rows.iter().any(|r| r.contains("before-clear")))
                .then_some(())
        },
    );
    let j = d.screen_json("alt");
    assert_eq!(j["format"], json!("json"), "{j}");
    assert_eq!(j["session_id"], json!("alt"), "{j}");
    assert_eq!(j["cols"], json!(100), "{j}");
    assert_eq!(j["row_count"], json!(30), "{j}");
    assert_eq!(j["rows"].as_array().unwrap().len(), 30, "{j}");
    assert_eq!(j["alt_screen"], json!(false), "{j}");
    assert!(
        j["cursor"]["row"].is_u64() && j["cursor"]["col"].is_u64(),
        "{j}"
    );
    assert!(j["cursor"]["visible"].is_boolean(), "{j}");
    assert!(
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r.as_str().unwrap().ends_with(' '))
    );

    // OSC 0 title.
    d.inject("alt", r"printf '\e]0;my-title\a'; echo title-set");
    d.wait_line("alt", "title-set");
    wait_until(T, "title my-title", || {
        d.screen_json("alt")["title"] == json!("my-title")
    });

    // Alternate screen: enter, show INALT, wait for Enter, leave.
    d.inject("alt", "echo primary-mark");
    d.wait_line("alt", "primary-mark");
    d.inject(
        "alt",
        r"printf '\e[?1049h'; echo INALT; read; printf '\e[?1049l'",
    );
    wait_until(T, "alt_screen:true", || {
        d.screen_json("alt")["alt_screen"] == json!(true)
    });
    let s = d.wait_line("alt", "INALT");
    assert!(
        !s.contains("primary-mark"),
        "on the alternate screen only its visible rows are returned:\n{s}"
    );

    d.inject("alt", ""); // Enter only: `read` returns, the program leaves the alt screen
    wait_until(T, "alt_screen:false", || {
        d.screen_json("alt")["alt_screen"] == json!(false)
    });
    let s = d.wait_line("alt", "primary-mark");
    assert!(
        !has_line(&s, "INALT"),
        "alternate screen content leaked into the primary:\n{s}"
    );
}

#[test]
fn cursor_position_query_is_answered() {
    let d = Daemon::start();
    d.spawn_bash("cpr");
    d.inject(
        "cpr",
        r#"stty -echo; printf '\e[6n'; read -rs -d R reply; stty echo; echo "GOT${reply#*\[}""#,
    );
    let re = regex::Regex::new(r"^GOT(\d+);(\d+)$").unwrap();
    let screen = d.wait_screen("cpr", "a GOT<row>;<col> line", |s| {
        s.lines().any(|l| re.is_match(l))
    });
    let j = d.screen_json("cpr");
    let rows: Vec<&str> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let idx = rows
        .iter()
        .position(|r| re.is_match(r))
        .unwrap_or_else(|| panic!("GOT line not in visible rows: {rows:?}\n{screen}"));
    let caps = re.captures(rows[idx]).unwrap();
    // The query was issued at the start of the line where GOT is then printed (1-based reply).
    assert_eq!(
        (
            caps[1].parse::<usize>().unwrap(),
            caps[2].parse::<usize>().unwrap()
        ),
        (idx + 1, 1),
        "cursor position report does not match the cursor: {rows:?}"
    );
}

#[test]
fn scrollback_is_capped_and_lines_is_validated() {
    let d = Daemon::start();
    d.spawn_bash("sc");
    d.inject("sc", "seq 1 1500");
    d.wait_line("sc", "1500");
    let full = d.get("/api/sessions/sc/screen?lines=10000").1;
    let total = full["total_lines"].as_u64().unwrap();
    assert!(
        (1000..=1030).contains(&total),
        "1000 scrollback lines + 30 rows expected, got {total}"
    );
    assert_eq!(full["lines"], json!(total), "{}", full["lines"]);
    let screen = full["screen"].as_str().unwrap();
    assert!(
        !has_line(screen, "400"),
        "the oldest lines must have been dropped"
    );
    assert!(has_line(screen, "1499"));
    for q in ["lines=abc", "lines=0", "lines=10001"] {
        let v = d.get(&format!("/api/sessions/sc/screen?{q}")).1;
        assert_eq!(v["lines"], json!(50), "{q} falls back to 50");
    }
    let raw = d.get("/api/sessions/sc/screen?raw=true&lines=5").1;
    assert_eq!(raw["raw"], json!(true));
    assert_eq!(raw["lines"], json!(5), "{raw}");
}
