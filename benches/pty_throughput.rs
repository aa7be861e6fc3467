//! Benchmark 1: PTY -> emulator throughput.
//!
//! `cat` of a generated, deterministic 50 MB file of mixed terminal output (SGR colours in 16 /
//! 256 / truecolor, cursor moves, save/restore, long wrapping lines, UTF-8 incl. wide CJK and
//! emoji, progress bars redrawn with `\r`, erase-in-line) through
//!
//! * telepty: `telepty::engine::Engine::spawn` in-process (the daemon's real path: portable-pty,
//!   the reader thread, `Terminal::feed` -> vt100 + raw ring + generation), timed from the spawn
//!   call until the reader hit EOF (every byte parsed) and the reaper recorded the exit;
//! * raw: portable-pty openpty + spawn `cat` + a 64 KiB read loop to EOF, no parsing (the ceiling);
//! * tmux: `tmux -L <private> new-session -d -x 200 -y 50 "cat FILE; tmux wait-for -S done"`
//!   then `tmux wait-for done` (tmux parses into its grid with no client attached).
//!
//! All at 200x50. Each is run `TELEPTY_BENCH_RUNS` (3) times, interleaved; medians are reported.
//! `TELEPTY_BENCH_MB` changes the file size (default 50).

mod support;

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

const COLS: u16 = 200;
const ROWS: u16 = 50;
const END_MARKER: &str = "BENCH-END-MARKER";

// ------------------------------------------------------------------------------------------
// deterministic input
// ------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "telepty",
    "session",
    "Compiling",
    "Finished",
    "warning:",
    "error[E0382]:",
    "-->",
    "src/engine/terminal.rs:142:17",
    "let",
    "mut",
    "fn",
    "=>",
    "0x7ffd5c1e",
    "Ok(())",
    "PASS",
    "FAIL",
    "test",
    "running",
    "agent",
    "thinking",
    "tokens:",
    "12.4k",
    "|",
    "{",
    "}",
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "cargo",
    "build",
    "--release",
    "npm",
    "install",
    "✓",
    "✗",
    "…",
];

const UNICODE: &[&str] = &[
    "é",
    "ñ",
    "ü",
    "ß",
    "Ω",
    "λ",
    "π",
    "Жизнь",
    "привет",
    "日本語",
    "中文字符",
    "한국어",
    "漢字",
    "😀",
    "🚀",
    "🦀",
    "│",
    "─",
    "┌",
    "┐",
    "└",
    "┘",
    "→",
    "⇒",
    "•",
    "€",
    "½",
    "ｆｕｌｌ",
    "カタカナ",
];

fn sgr(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("\x1b[{}m", 30 + rng.below(8)),
        1 => format!("\x1b[1;{}m", 90 + rng.below(8)),
        2 => format!("\x1b[38;5;{}m", rng.below(256)),
        3 => format!(
            "\x1b[38;2;{};{};{}m",
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        4 => format!("\x1b[{};{}m", 40 + rng.below(8), 30 + rng.below(8)),
        _ => "\x1b[0m".to_string(),
    }
}

fn words(rng: &mut Rng, out: &mut String, n: u64, colour_every: u64) {
    for i in 0..n {
        if colour_every > 0 && rng.below(colour_every) == 0 {
            out.push_str(&sgr(rng));
        }
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
}

/// One "line" of output (may contain cursor movement, carriage returns and several rows).
fn line(rng: &mut Rng, out: &mut String) {
    match rng.below(100) {
        // coloured log line
        0..=39 => {
            let n = 5 + rng.below(20);
            words(rng, out, n, 3);
            out.push_str("\x1b[0m\n");
        }
        // long line that wraps several times
        40..=54 => {
            let n = 60 + rng.below(250);
            words(rng, out, n, 12);
            out.push_str("\x1b[0m\n");
        }
        // unicode heavy, including wide characters
        55..=69 => {
            for i in 0..(8 + rng.below(25)) {
                if i > 0 {
                    out.push(' ');
                }
                if rng.below(3) == 0 {
                    out.push_str(rng.pick(WORDS));
                } else {
                    out.push_str(rng.pick(UNICODE));
                }
                if rng.below(8) == 0 {
                    out.push_str(&sgr(rng));
                }
            }
            out.push_str("\x1b[0m\n");
        }
        // absolute and relative cursor moves, save / restore, erase to end of line
        70..=79 => {
            out.push_str("\x1b7");
            for _ in 0..(1 + rng.below(4)) {
                out.push_str(&format!(
                    "\x1b[{};{}H",
                    1 + rng.below(ROWS as u64),
                    1 + rng.below(COLS as u64)
                ));
                out.push_str(&sgr(rng));
                let n = 1 + rng.below(6);
                words(rng, out, n, 0);
                out.push_str("\x1b[K");
            }
            out.push_str(&format!(
                "\x1b[{}A\x1b[{}B\x1b[{}C\x1b[{}D",
                rng.below(5),
                rng.below(5),
                rng.below(20),
                rng.below(10)
            ));
            out.push_str("\x1b8\x1b[0mstatus: ");
            let n = 2 + rng.below(6);
            words(rng, out, n, 0);
            out.push('\n');
        }
        // progress bar redrawn in place
        80..=91 => {
            let steps = 4 + rng.below(12);
            for s in 0..=steps {
                let p = (s * 40 / steps) as usize;
                out.push_str(&format!(
                    "\r\x1b[32m[{}{}]\x1b[0m {:3}% ",
                    "#".repeat(p),
                    " ".repeat(40 - p),
                    s * 100 / steps
                ));
                out.push_str(rng.pick(WORDS));
                out.push_str("\x1b[K");
            }
            out.push('\n');
        }
        // erase-in-line variants
        92..=98 => {
            let n = 3 + rng.below(10);
            words(rng, out, n, 4);
            out.push_str(match rng.below(3) {
                0 => "\x1b[2K\r",
                1 => "\x1b[1K\r",
                _ => "\r\x1b[0K",
            });
            let n = 2 + rng.below(8);
            words(rng, out, n, 4);
            out.push_str("\x1b[0m\n");
        }
        // clear the screen now and then
        _ => {
            out.push_str("\x1b[H\x1b[2J");
            let n = 3 + rng.below(5);
            words(rng, out, n, 0);
            out.push('\n');
        }
    }
}

fn generate(path: &Path, bytes: usize) -> usize {
    let mut rng = Rng(0x7e1e_b7e5_0000_0001);
    let mut w =
        BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create input"));
    let mut total = 0;
    let mut s = String::with_capacity(8192);
    while total < bytes {
        s.clear();
        line(&mut rng, &mut s);
        w.write_all(s.as_bytes()).unwrap();
        total += s.len();
    }
    let tail = format!("\x1b[0m\r\n{END_MARKER}\r\n");
    w.write_all(tail.as_bytes()).unwrap();
    total += tail.len();
    w.flush().unwrap();
    total
}

// ------------------------------------------------------------------------------------------
// the three contestants
// ------------------------------------------------------------------------------------------

/// A bench-only prototype of a fix for `engine/pty.rs`: the same PTY + `Terminal::feed`, with
/// either the daemon's shape (one thread reads and parses) or a pipelined one (a reader thread
/// hands chunks through a bounded channel to a parse thread, which coalesces whatever is
/// queued into one `feed`). Returns seconds until every byte was parsed.
fn run_prototype(file: &Path, pipelined: bool) -> f64 {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use telepty::engine::terminal::Terminal;
    let t0 = Instant::now();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new("cat");
    cmd.arg(file);
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn cat");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let term = std::sync::Arc::new(Terminal::new(ROWS, COLS, 1000));
    let mut buf = vec![0u8; 64 * 1024];
    if pipelined {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let t2 = term.clone();
        let parser = std::thread::spawn(move || {
            while let Ok(mut chunk) = rx.recv() {
                while chunk.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => chunk.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                t2.feed(&chunk);
            }
        });
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    if tx.send(buf[..k].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        drop(tx);
        parser.join().unwrap();
    } else {
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    term.feed(&buf[..k]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    let _ = child.wait();
    assert!(
        term.visible_text().contains(END_MARKER),
        "prototype lost output"
    );
    dt
}

/// Raw portable-pty read loop: (seconds, bytes read from the master).
fn run_raw(file: &Path) -> (f64, u64) {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let t0 = Instant::now();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new("cat");
    cmd.arg(file);
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn cat");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut buf = vec![0u8; 64 * 1024];
    let mut n: u64 = 0;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO: slave closed
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    let _ = child.wait();
    (dt, n)
}

struct TeleptyRun {
    total: f64,
    /// spawn -> reader EOF (all output parsed)
    parsed: f64,
    generations: u64,
}

/// In-process engine: spawn `cat FILE`, wait for reader EOF and the recorded exit.
fn run_telepty(
    rt: &tokio::runtime::Runtime,
    engine: &telepty::engine::Engine,
    file: &Path,
    n: usize,
) -> TeleptyRun {
    rt.block_on(async {
        let id = format!("tput-{n}");
        let req = telepty::engine::SpawnSpec {
            id: id.clone(),
            command: "cat".into(),
            args: vec![file.display().to_string()],
            cwd: None,
            cols: COLS,
            rows: ROWS,
            prompt_type: "AGENT".into(),
            record: false,
            env: Vec::new(),
            profile: None,
        };
        let t0 = Instant::now();
        engine.spawn(req).expect("engine spawn");
        let s = engine.resolve(&id).expect("session");
        let mut parsed = None;
        // Poll every 5 ms (<= 0.5 % of a run): polling every 0.5 ms cost the reader ~20 % on 2
        // cores, through the wake-ups alone.
        loop {
            if parsed.is_none() && s.reader_finished() {
                parsed = Some(t0.elapsed().as_secs_f64());
            }
            if parsed.is_some() && s.exited() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let total = t0.elapsed().as_secs_f64();
        let screen = s.term.visible_text();
        assert!(
            screen.contains(END_MARKER),
            "telepty screen lacks the end marker:\n{screen}"
        );
        let generations = s.term.generation();
        let _ = engine.delete(&id);
        TeleptyRun {
            total,
            parsed: parsed.unwrap(),
            generations,
        }
    })
}

/// The emulator alone, in memory, fed the PTY's 4 KiB chunking: (bare vt100 s, Terminal::feed s).
/// This is the ceiling of (a) on this CPU, whatever the PTY does.
fn parse_only(data: &[u8]) -> (f64, f64, f64) {
    let mut p = vt100::Parser::new(ROWS, COLS, 1000);
    let t0 = Instant::now();
    for c in data.chunks(4095) {
        p.process(c);
    }
    let bare = t0.elapsed().as_secs_f64();
    assert!(p.screen().contents().contains(END_MARKER));
    let t = telepty::engine::terminal::Terminal::new(ROWS, COLS, 1000);
    let t0 = Instant::now();
    for c in data.chunks(4095) {
        t.feed(c);
    }
    let term = t0.elapsed().as_secs_f64();
    assert!(t.visible_text().contains(END_MARKER));
    // Terminal::feed's own per-chunk work besides vt100: the UTF-8 carry/decode it does even
    // with no viewer subscribed, and the raw-ring copy.
    let mut carry = Vec::new();
    let t0 = Instant::now();
    for c in data.chunks(4095) {
        std::hint::black_box(telepty::util::decode_utf8_stream(&mut carry, c));
        std::hint::black_box(bytes::Bytes::copy_from_slice(c));
    }
    let extra = t0.elapsed().as_secs_f64();
    (bare, term, extra)
}

/// tmux: new-session running cat, then `wait-for`.
fn run_tmux(file: &Path, n: usize) -> f64 {
    let t = Tmux::new(&format!("tput{n}"));
    let chan = format!("done-{n}");
    let inner = format!(
        "cat '{}'; tmux -L {} wait-for -S {chan}",
        file.display(),
        t.socket
    );
    let t0 = Instant::now();
    let st = t
        .cmd()
        .args([
            "new-session",
            "-d",
            "-x",
            &COLS.to_string(),
            "-y",
            &ROWS.to_string(),
            &inner,
        ])
        .stdout(Stdio::null())
        .status()
        .expect("tmux new-session");
    assert!(st.success(), "tmux new-session failed");
    let st = t
        .cmd()
        .args(["wait-for", &chan])
        .status()
        .expect("tmux wait-for");
    let dt = t0.elapsed().as_secs_f64();
    assert!(st.success(), "tmux wait-for failed");
    dt
}

fn main() {
    let mb = env_usize("TELEPTY_BENCH_MB", 50);
    let runs = env_usize("TELEPTY_BENCH_RUNS", 3).max(1);
    let dir = tempdir("telepty-bench-tput-");
    let file = dir.path().join("mixed-ansi.txt");
    let t = Instant::now();
    let size = generate(&file, mb * 1_000_000);
    eprintln!(
        "[throughput] generated {} ({:.1} MB) in {:.2}s",
        file.display(),
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    // warm the page cache
    let _ = std::fs::read(&file);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let home = tempdir("telepty-bench-engine-");
    let paths = telepty::config::Paths {
        home: home.path().to_path_buf(),
    };
    // The environment's knobs over the defaults (config.toml only if TELEPTY_CONFIG names one).
    let config = telepty::config::Config::load(&paths).unwrap_or_default();
    let mut settings = telepty::engine::EngineSettings::from_config(&config, &paths);
    settings.sessions_path = None;
    // Sessions run in holders (`telepty __hold`): this bench binary is not telepty.
    settings.holder_exe = env!("CARGO_BIN_EXE_telepty-hold").into();
    let engine = rt.block_on(async {
        let e = telepty::engine::Engine::new(settings);
        e.start();
        e
    });
    let have_tmux = Tmux::available();

    let (mut raw, mut tp, mut tp_parsed, mut tm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut proto_seq, mut proto_pipe) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let (dt, bytes) = run_raw(&file);
        raw.push(dt);
        eprintln!(
            "[throughput] run {i}: raw     {:.3}s  {:7.1} MB/s  ({bytes} bytes off the master)",
            dt,
            size as f64 / 1e6 / dt
        );
        let r = run_telepty(&rt, &engine, &file, i);
        tp.push(r.total);
        tp_parsed.push(r.parsed);
        eprintln!(
            "[throughput] run {i}: telepty {:.3}s  {:7.1} MB/s  (parsed at {:.3}s, {} feeds, {:.1} KiB/feed)",
            r.total,
            size as f64 / 1e6 / r.total,
            r.parsed,
            r.generations,
            size as f64 / 1024.0 / r.generations.max(1) as f64
        );
        let dt = run_prototype(&file, false);
        proto_seq.push(dt);
        let dp = run_prototype(&file, true);
        proto_pipe.push(dp);
        eprintln!(
            "[throughput] run {i}: prototype one thread {:.1} MB/s, pipelined {:.1} MB/s",
            size as f64 / 1e6 / dt,
            size as f64 / 1e6 / dp
        );
        if have_tmux {
            let dt = run_tmux(&file, i);
            tm.push(dt);
            eprintln!(
                "[throughput] run {i}: tmux    {:.3}s  {:7.1} MB/s",
                dt,
                size as f64 / 1e6 / dt
            );
        }
    }
    let mbps = |secs: f64| size as f64 / 1e6 / secs;
    let (raw_m, tp_m) = (mbps(median(&raw)), mbps(median(&tp)));
    eprintln!(
        "[throughput] medians: raw {raw_m:.1} MB/s, telepty {tp_m:.1} MB/s (to reader EOF: {:.1} MB/s)",
        mbps(median(&tp_parsed))
    );
    let r = tp_m / raw_m;
    row(
        "1a PTY->emulator, telepty vs raw PTY (MB/s)",
        format!("{tp_m:.1}"),
        format!("raw {raw_m:.1}"),
        format!("{:.0}%", r * 100.0),
        Goal::AtLeast,
        ">= 75% of raw",
        r,
        0.75,
    );
    if have_tmux {
        let tm_m = mbps(median(&tm));
        eprintln!("[throughput] medians: tmux {tm_m:.1} MB/s");
        let r = tp_m / tm_m;
        row(
            "1b PTY->emulator, telepty vs tmux (MB/s)",
            format!("{tp_m:.1}"),
            format!("tmux {tm_m:.1}"),
            format!("{r:.2}x"),
            Goal::AtLeast,
            ">= 2x tmux",
            r,
            2.0,
        );
    } else {
        println!(
            "ROW\t1b PTY->emulator, telepty vs tmux (MB/s)\t{tp_m:.1}\ttmux missing\t-\t>= 2x tmux\tSKIP"
        );
    }
    let (seq_m, pipe_m) = (mbps(median(&proto_seq)), mbps(median(&proto_pipe)));
    row(
        "1c prototype: read + parse on 2 threads (MB/s)",
        format!("{pipe_m:.1}"),
        format!("1 thread {seq_m:.1}"),
        format!("{:.0}% of raw", pipe_m / raw_m * 100.0),
        Goal::Info,
        "-",
        0.0,
        0.0,
    );
    // Where the time goes: the emulator alone, without a PTY (ONLCR applied like the tty does).
    let mut data = Vec::with_capacity(size + size / 50);
    for &b in &std::fs::read(&file).unwrap() {
        if b == b'\n' {
            data.push(b'\r');
        }
        data.push(b);
    }
    let (mut bare, mut term, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (b, t, e) = parse_only(&data);
        bare.push(b);
        term.push(t);
        extra.push(e);
    }
    eprintln!(
        "[throughput] in memory: vt100 {:.3}s, Terminal::feed {:.3}s, of which decode_utf8_stream + ring copy {:.3}s",
        median(&bare),
        median(&term),
        median(&extra)
    );
    let (bare_m, term_m) = (mbps(median(&bare)), mbps(median(&term)));
    eprintln!(
        "[throughput] in memory, 4 KiB chunks: bare vt100 {bare_m:.1} MB/s, Terminal::feed {term_m:.1} MB/s"
    );
    row(
        "1d emulator alone in memory: Terminal::feed (MB/s)",
        format!("{term_m:.1}"),
        format!("bare vt100 {bare_m:.1}"),
        format!("{:.0}%", term_m / bare_m * 100.0),
        Goal::Info,
        "-",
        0.0,
        0.0,
    );
    drop(engine);
    drop(rt);
}
