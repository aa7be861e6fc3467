//! Session recordings: asciicast v2 files (API.md §17 "Recording").
//!
//! A [`Recorder`] is cheap to call from the PTY reader thread: every call only timestamps the
//! event and pushes it onto a bounded in-memory queue; a writer thread decodes, masks (as a
//! stream, [`mask`]: a secret split across events is masked too) and writes. When the queue is over budget the oldest events are dropped and counted (an `m`
//! marker in the file says how many). Dropping the recorder (or [`Recorder::finish`]) drains
//! the queue and flushes the file.
//!
//! Files: `<dir>/<id>.<unix ms>.cast`, mode 0600, where `<dir>` is `~/.telepty/recordings`
//! (the engine is handed the directory; it does not know about `$HOME`).

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use regex::Regex;

mod mask;
use mask::{Masks, Piece, StreamMasker};

/// The name of the recordings directory under `~/.telepty`.
pub const DIR_NAME: &str = "recordings";
/// What a masked secret is replaced with.
pub const MASK: &str = "***";
/// Queue budget in bytes of event payload; past it the oldest events are dropped.
const QUEUE_BYTES: usize = 8 * 1024 * 1024;

enum Kind {
    Output(Vec<u8>),
    Input(String),
    Marker(String),
    Resize(u16, u16),
}

struct Event {
    /// The order of arrival: the file is written in this order.
    seq: u64,
    t: f64,
    kind: Kind,
}

impl Event {
    fn size(&self) -> usize {
        match &self.kind {
            Kind::Output(b) => b.len(),
            Kind::Input(s) | Kind::Marker(s) => s.len(),
            Kind::Resize(..) => 8,
        }
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    bytes: usize,
    next_seq: u64,
    closed: bool,
    /// Tests hold the writer back to overflow the queue deterministically.
    paused: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    dropped: AtomicU64,
    start: Instant,
    limit: usize,
}

/// One session's recording in progress.
pub struct Recorder {
    path: PathBuf,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

/// `<dir>/<id>.<unix ms>.cast` for a recording starting now.
pub fn new_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!(
        "{id}.{}.cast",
        crate::util::unix_ms(SystemTime::now())
    ))
}

/// One recording file found in the recordings directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFile {
    pub id: String,
    pub started_ms: u64,
    pub path: PathBuf,
    pub size: u64,
}

/// Split `<id>.<unix ms>.cast` into its parts.
pub fn parse_file_name(name: &str) -> Option<(String, u64)> {
    let stem = name.strip_suffix(".cast")?;
    let (id, ms) = stem.rsplit_once('.')?;
    let ms = ms.parse::<u64>().ok()?;
    (!id.is_empty()).then(|| (id.to_string(), ms))
}

/// Every recording in `dir`, oldest first (a missing directory has none).
pub fn list(dir: &Path) -> io::Result<Vec<RecordingFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<RecordingFile> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (id, started_ms) = parse_file_name(&name)?;
            let size = e.metadata().ok()?.len();
            Some(RecordingFile {
                id,
                started_ms,
                path: e.path(),
                size,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id)));
    Ok(out)
}

/// The newest recording of session `id` in `dir` (what `GET /api/sessions/:id/recording`
/// serves).
pub fn latest(dir: &Path, id: &str) -> io::Result<Option<PathBuf>> {
    Ok(list(dir)?.into_iter().rfind(|r| r.id == id).map(|r| r.path))
}

/// Compile secret patterns, reporting the first invalid one.
pub fn compile_masks<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<Regex>, regex::Error> {
    patterns.iter().map(|p| Regex::new(p.as_ref())).collect()
}

/// Replace every match of every pattern with [`MASK`].
pub fn mask(text: &str, masks: &[Regex]) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for re in masks {
        if let std::borrow::Cow::Owned(s) = re.replace_all(&out, MASK) {
            out = std::borrow::Cow::Owned(s);
        }
    }
    out.into_owned()
}

impl Recorder {
    /// Create the file (and its directory, 0700), write the header and start the writer
    /// thread. Fails if the file already exists.
    pub fn new(
        path: impl Into<PathBuf>,
        id: &str,
        cols: u16,
        rows: u16,
        masks: Vec<Regex>,
    ) -> io::Result<Recorder> {
        Self::with_limit(path.into(), id, cols, rows, masks, QUEUE_BYTES)
    }

    fn with_limit(
        path: PathBuf,
        id: &str,
        cols: u16,
        rows: u16,
        masks: Vec<Regex>,
        limit: usize,
    ) -> io::Result<Recorder> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).ok();
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let mut out = BufWriter::new(file);
        /// The asciicast v2 header line.
        #[derive(serde::Serialize)]
        struct Header<'a> {
            version: u8,
            width: u16,
            height: u16,
            timestamp: u64,
            title: &'a str,
        }
        let header = Header {
            version: 2,
            width: cols,
            height: rows,
            timestamp: crate::util::unix_secs(SystemTime::now()),
            title: id,
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&header).unwrap_or_default()
        )?;
        out.flush()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
            start: Instant::now(),
            limit,
        });
        let s2 = shared.clone();
        let writer = std::thread::Builder::new()
            .name(format!("rec-{id}"))
            .spawn(move || write_loop(&s2, out, Masks::new(masks)))?;
        Ok(Recorder {
            path,
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Output from the program (raw PTY bytes; UTF-8 split across calls is handled).
    pub fn output(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.push(vec![Kind::Output(bytes.to_vec())]);
        }
    }

    /// Input to the program: injected text, keys or attached typing. With `from`, an
    /// `inject from <from>` marker goes just before it.
    pub fn input(&self, text: &str, from: Option<&str>) {
        let mut kinds = Vec::with_capacity(2);
        if let Some(f) = from {
            kinds.push(Kind::Marker(format!("inject from {f}")));
        }
        if !text.is_empty() {
            kinds.push(Kind::Input(text.to_string()));
        }
        self.push(kinds);
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        self.push(vec![Kind::Resize(cols, rows)]);
    }

    fn push(&self, kinds: Vec<Kind>) {
        if kinds.is_empty() {
            return;
        }
        let mut q = self.shared.queue.lock();
        if q.closed {
            return;
        }
        // Timestamped under the lock, so times never go backwards in the file.
        let t = self.shared.start.elapsed().as_secs_f64();
        for kind in kinds {
            let ev = Event {
                seq: q.next_seq,
                t,
                kind,
            };
            q.next_seq += 1;
            q.bytes += ev.size();
            q.events.push_back(ev);
        }
        while q.bytes > self.shared.limit && q.events.len() > 1 {
            if let Some(old) = q.events.pop_front() {
                q.bytes -= old.size();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(q);
        self.shared.ready.notify_one();
    }

    /// Stop accepting events, write what is queued and flush the file.
    pub fn finish(&self) -> io::Result<()> {
        self.shared.queue.lock().closed = true;
        self.shared.ready.notify_one();
        let handle = self.writer.lock().take();
        let panicked = |_| Err(io::Error::other("recording writer panicked"));
        handle.map_or(Ok(()), |h| h.join().unwrap_or_else(panicked))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!("recording {}: {e}", self.path.display());
        }
    }
}

fn write_loop(shared: &Shared, out: BufWriter<std::fs::File>, masks: Masks) -> io::Result<()> {
    let mut w = Writer::new(out, masks);
    let mut carry = Vec::new();
    let mut reported = 0u64;
    loop {
        let (batch, closed) = {
            let mut q = shared.queue.lock();
            // Wait for events, or until held text is due.
            while (q.events.is_empty() || q.paused) && !q.closed {
                let Some(due) = w.due() else {
                    shared.ready.wait(&mut q);
                    continue;
                };
                let now = shared.start.elapsed().as_secs_f64();
                if now >= due {
                    break;
                }
                shared
                    .ready
                    .wait_for(&mut q, std::time::Duration::from_secs_f64(due - now));
            }
            if q.paused && !q.closed {
                (VecDeque::new(), false)
            } else {
                q.bytes = 0;
                (std::mem::take(&mut q.events), q.closed)
            }
        };
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            let (seq, t) = batch.front().map_or(w.last, |e| (e.seq, e.t));
            let text = format!("recording dropped {} events", dropped - reported);
            w.stage(seq, t, "m", text);
            reported = dropped;
        }
        for ev in batch {
            w.last = (ev.seq, ev.t);
            match ev.kind {
                Kind::Output(bytes) => {
                    let text = crate::util::decode_utf8_stream(&mut carry, &bytes);
                    let pieces = w.output.push(&w.masks, ev.seq, ev.t, &text);
                    w.stage_pieces("o", pieces);
                }
                Kind::Input(text) => {
                    let pieces = w.input.push(&w.masks, ev.seq, ev.t, &text);
                    w.stage_pieces("i", pieces);
                }
                Kind::Marker(text) => w.stage(ev.seq, ev.t, "m", text),
                Kind::Resize(c, r) => w.stage(ev.seq, ev.t, "r", format!("{c}x{r}")),
            }
        }
        if closed && !carry.is_empty() {
            let t = shared.start.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&carry).into_owned();
            let pieces = w.output.push(&w.masks, w.last.0 + 1, t, &text);
            w.stage_pieces("o", pieces);
        }
        // Release held text at the end, or once it has been held for `mask::HOLD`.
        let now = shared.start.elapsed().as_secs_f64();
        w.release_due(if closed { f64::INFINITY } else { now });
        w.write_ready()?;
        if closed {
            w.out.flush()?;
            return w.out.get_ref().sync_all();
        }
    }
}

/// The writer thread's state: the two masked streams and the events waiting behind text
/// they hold, so the file keeps the order (and times) in which events arrived.
struct Writer {
    out: BufWriter<std::fs::File>,
    masks: Masks,
    output: StreamMasker,
    input: StreamMasker,
    /// Final events, not yet written: `(seq, t, code, data)`.
    staged: Vec<(u64, f64, &'static str, String)>,
    /// The sequence number and time of the last event seen.
    last: (u64, f64),
}

impl Writer {
    fn new(out: BufWriter<std::fs::File>, masks: Masks) -> Writer {
        Writer {
            out,
            output: StreamMasker::new(&masks),
            input: StreamMasker::new(&masks),
            masks,
            staged: Vec::new(),
            last: (0, 0.0),
        }
    }

    fn stage(&mut self, seq: u64, t: f64, code: &'static str, data: String) {
        self.staged.push((seq, t, code, data));
    }

    fn stage_pieces(&mut self, code: &'static str, pieces: Vec<Piece>) {
        for p in pieces {
            self.stage(p.seq, p.t, code, p.text);
        }
    }

    /// When the oldest held text must be released (seconds since the start).
    fn due(&self) -> Option<f64> {
        [self.output.held(), self.input.held()]
            .into_iter()
            .flatten()
            .map(|(_, t)| t + mask::HOLD)
            .reduce(f64::min)
    }

    fn release_due(&mut self, now: f64) {
        for (code, stream) in [("o", &mut self.output), ("i", &mut self.input)] {
            if stream.held().is_some_and(|(_, t)| t + mask::HOLD <= now) {
                let pieces = stream.flush(&self.masks);
                for p in pieces {
                    self.staged.push((p.seq, p.t, code, p.text));
                }
            }
        }
    }

    /// Write the staged events that come before any held text, in order of arrival.
    fn write_ready(&mut self) -> io::Result<()> {
        let held = [self.output.held(), self.input.held()]
            .into_iter()
            .flatten()
            .map(|(seq, _)| seq)
            .min()
            .unwrap_or(u64::MAX);
        // Stable: pieces of one event, and a drop marker before its event, keep their order.
        // What has the held chunk's own number is its released beginning (or the drop marker
        // before it): the rest of that chunk comes after it anyway.
        self.staged.sort_by_key(|e| e.0);
        let n = self.staged.partition_point(|e| e.0 <= held);
        for (_, t, code, data) in self.staged.drain(..n) {
            line(&mut self.out, t, code, &data)?;
        }
        self.out.flush()
    }
}

fn line(out: &mut impl Write, t: f64, code: &str, data: &str) -> io::Result<()> {
    let t = (t * 1e6).round() / 1e6;
    // An asciicast event: `[time, code, data]`.
    let v = serde_json::to_string(&(t, code, data)).unwrap_or_default();
    writeln!(out, "{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(
            parse_file_name("w.1.1700000000000.cast"),
            Some(("w.1".into(), 1_700_000_000_000))
        );
        assert_eq!(parse_file_name("x.cast"), None);
        assert_eq!(parse_file_name(".5.cast"), None);
        let p = new_path(Path::new("/r"), "abc");
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_file_name(name).unwrap().0, "abc");
    }

    #[test]
    fn utf8_split_across_chunks_is_joined() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.1.cast");
        let r = Recorder::new(&p, "a", 80, 24, Vec::new()).unwrap();
        let bytes = "héllo".as_bytes();
        r.output(&bytes[..2]);
        r.output(&bytes[2..]);
        r.finish().unwrap();
        let text: String = events(&p)
            .iter()
            .map(|e| e[2].as_str().unwrap().to_string())
            .collect();
        assert_eq!(text, "héllo");
    }

    #[test]
    fn overflow_drops_oldest_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.1.cast");
        let r = Recorder::with_limit(p.clone(), "a", 80, 24, Vec::new(), 16).unwrap();
        r.shared.queue.lock().paused = true;
        for i in 0..1000 {
            r.output(format!("chunk-{i:04}\n").as_bytes());
        }
        r.finish().unwrap();
        let ev = events(&p);
        let last = ev.last().unwrap();
        assert_eq!(last[2], "chunk-0999\n");
        assert_eq!(r.shared.dropped.load(Ordering::Relaxed), 999);
        assert_eq!(ev[0][1], "m");
        assert_eq!(ev[0][2], "recording dropped 999 events");
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn masks_apply_to_output_and_input_not_markers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.1.cast");
        let masks = compile_masks(&[r"sk-[A-Za-z0-9]{20,}"]).unwrap();
        let r = Recorder::new(&p, "a", 80, 24, masks).unwrap();
        r.output(b"key sk-abcdefghijklmnopqrstuvwxyz ok");
        r.input("export K=sk-ABCDEFGHIJKLMNOPQRSTUV\r", Some("boss"));
        r.resize(100, 30);
        drop(r);
        let ev = events(&p);
        assert_eq!(ev[0][1], "o");
        assert_eq!(ev[0][2], "key *** ok");
        assert_eq!(ev[1][1], "m");
        assert_eq!(ev[1][2], "inject from boss");
        assert_eq!(ev[2][1], "i");
        assert_eq!(ev[2][2], "export K=***\r");
        assert_eq!(ev[3][1], "r");
        assert_eq!(ev[3][2], "100x30");
    }

    #[test]
    fn a_secret_echoed_one_byte_at_a_time_is_masked_in_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.1.cast");
        let masks = compile_masks(crate::config::DEFAULT_MASKS).unwrap();
        let r = Recorder::new(&p, "a", 80, 24, masks).unwrap();
        let secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        // Typed and echoed key by key; the echo of `é` comes in two reads.
        for c in format!("é={secret} é\r").chars() {
            r.input(&c.to_string(), None);
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                r.output(&[byte]);
            }
        }
        r.resize(90, 20);
        r.finish().unwrap();
        let ev = events(&p);
        let stream = |k: &str| -> String {
            ev.iter()
                .filter(|e| e[1] == k)
                .map(|e| e[2].as_str().unwrap())
                .collect()
        };
        assert_eq!(stream("i"), "é=*** é\r");
        assert_eq!(stream("o"), "é=*** é\r");
        let order: Vec<(&str, &str)> = ev
            .iter()
            .map(|e| (e[1].as_str().unwrap(), e[2].as_str().unwrap()))
            .collect();
        assert_eq!(
            &order[2..6],
            [("i", "="), ("o", "="), ("i", "***"), ("o", "***")]
        );
        assert_eq!(order.last(), Some(&("r", "90x20")), "after the held text");
        let times: Vec<f64> = ev.iter().map(|e| e[0].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn held_text_is_written_after_a_short_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.1.cast");
        let masks = compile_masks(crate::config::DEFAULT_MASKS).unwrap();
        let r = Recorder::new(&p, "a", 80, 24, masks).unwrap();
        r.output(b"$ ls");
        r.input("s", None);
        std::thread::sleep(std::time::Duration::from_secs_f64(mask::HOLD / 2.0));
        assert_eq!(events(&p).len(), 0, "`s` could start a secret: held");
        std::thread::sleep(std::time::Duration::from_secs_f64(mask::HOLD));
        let ev = events(&p);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!((&ev[0][1], &ev[0][2]), (&"o".into(), &"$ ls".into()));
        assert_eq!((&ev[1][1], &ev[1][2]), (&"i".into(), &"s".into()));
        drop(r);
    }
}
