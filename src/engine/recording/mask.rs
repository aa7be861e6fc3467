//! Masks on a stream: a secret is masked in the recording however it was chunked.
//!
//! Masking each output read (or input event) on its own misses a secret split across two
//! reads, or echoed one keystroke at a time. A [`StreamMasker`] keeps the text of one stream
//! (output, or input) that is not final yet: only the text from the earliest position where a
//! mask could still be matching is held back, everything before it is masked and released.
//! "Could still be matching" is asked of a lazy DFA of all the masks, run anchored from each
//! position: if it is not dead at the end of the text, more text could complete or extend a
//! match there. Held text is bounded: past [`WINDOW`] bytes the oldest is released, and the
//! writer releases what has been held for [`HOLD`] (masked as far as it matches then).
//!
//! Released text keeps the chunks it came in, with their sequence numbers and times, so the
//! file's events keep their honest timestamps; a match spanning chunks is written once, in
//! the first of them.

use std::collections::VecDeque;

use regex::Regex;
use regex_automata::Anchored;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::start;

/// The most text one stream holds back; a longer secret may leak its tail.
pub const WINDOW: usize = 4096;
/// The longest time text is held back (seconds): a secret typed slower than this may be
/// written partly unmasked, and the recording is never further behind than this.
pub const HOLD: f64 = 2.0;

/// The compiled masks: the regexes that replace, and one lazy DFA of all of them that tells
/// where a match could still be in progress.
pub struct Masks {
    regexes: Vec<Regex>,
    /// `None` when the DFA cannot be built: then everything is held (up to the bounds).
    dfa: Option<DFA>,
    /// The bytes a match can begin with (from any start state): a quick "no" for the rest.
    first: [bool; 256],
}

impl Masks {
    pub fn new(regexes: Vec<Regex>) -> Masks {
        let dfa = if regexes.is_empty() {
            None
        } else {
            let patterns: Vec<&str> = regexes.iter().map(Regex::as_str).collect();
            DFA::builder()
                // `\b` works while the text is ASCII; a non-ASCII byte is a "quit", read as
                // "could be matching" (held, within the bounds).
                .configure(DFA::config().unicode_word_boundary(true))
                .build_many(&patterns)
                .inspect_err(|e| tracing::warn!("recording masks: no streaming matcher ({e})"))
                .ok()
        };
        let first = dfa.as_ref().map_or([true; 256], first_bytes);
        Masks {
            regexes,
            dfa,
            first,
        }
    }

    /// Replace every match of every mask with [`super::MASK`].
    pub fn apply(&self, text: &str) -> String {
        super::mask(text, &self.regexes)
    }

    fn cache(&self) -> Option<Cache> {
        self.dfa.as_ref().map(DFA::create_cache)
    }

    /// The earliest char boundary of `text` at or after `from` from which a mask could still
    /// match (or extend its match) given more text; `text.len()` when there is none.
    fn earliest_live(&self, cache: &mut Option<Cache>, text: &str, from: usize) -> usize {
        if self.regexes.is_empty() {
            return text.len();
        }
        let (Some(dfa), Some(cache)) = (&self.dfa, cache.as_mut()) else {
            return from;
        };
        let bytes = text.as_bytes();
        for (s, &b) in bytes.iter().enumerate().skip(from) {
            if !self.first[usize::from(b)] || !text.is_char_boundary(s) {
                continue;
            }
            let cfg = start::Config::new()
                .anchored(Anchored::Yes)
                .look_behind(s.checked_sub(1).map(|p| bytes[p]));
            let Ok(mut sid) = dfa.start_state(cache, &cfg) else {
                return s;
            };
            for &b in &bytes[s..] {
                match dfa.next_state(cache, sid, b) {
                    Ok(next) if !next.is_quit() => sid = next,
                    _ => return s,
                }
                if sid.is_dead() {
                    break;
                }
            }
            if !sid.is_dead() && !Self::only_dead_ahead(dfa, cache, sid) {
                return s;
            }
        }
        text.len()
    }

    /// A match state whose every next byte is dead: the DFA reports a match one byte late, so
    /// "not dead yet" can mean "matched just before the last byte, and cannot grow".
    fn only_dead_ahead(
        dfa: &DFA,
        cache: &mut Cache,
        sid: regex_automata::hybrid::LazyStateID,
    ) -> bool {
        sid.is_match()
            && (0..=255u8).all(|b| dfa.next_state(cache, sid, b).is_ok_and(|n| n.is_dead()))
    }
}

/// The bytes on which some anchored start state (whatever the byte before: none, a line end,
/// a word or non-word byte) is not dead.
fn first_bytes(dfa: &DFA) -> [bool; 256] {
    let mut cache = dfa.create_cache();
    let mut first = [false; 256];
    for behind in [None, Some(b'\n'), Some(b'\r'), Some(b'a'), Some(b' ')] {
        let cfg = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(behind);
        let Ok(sid) = dfa.start_state(&mut cache, &cfg) else {
            return [true; 256];
        };
        for (b, f) in first.iter_mut().enumerate() {
            *f |= dfa
                .next_state(&mut cache, sid, b as u8)
                .map_or(true, |n| !n.is_dead());
        }
    }
    first
}

/// A piece of released text: the stream's chunk it starts in (sequence number and time) and
/// its masked text.
#[derive(Debug, PartialEq)]
pub struct Piece {
    pub seq: u64,
    pub t: f64,
    pub text: String,
}

struct Chunk {
    seq: u64,
    t: f64,
    len: usize,
}

/// One stream's text not yet final (see the module's documentation).
#[derive(Default)]
pub struct StreamMasker {
    pending: String,
    chunks: VecDeque<Chunk>,
    cache: Option<Cache>,
}

impl StreamMasker {
    pub fn new(masks: &Masks) -> StreamMasker {
        StreamMasker {
            cache: masks.cache(),
            ..StreamMasker::default()
        }
    }

    /// The sequence number and time of the oldest text held back.
    pub fn held(&self) -> Option<(u64, f64)> {
        self.chunks.front().map(|c| (c.seq, c.t))
    }

    /// Add a chunk of the stream; returns what became final, masked.
    pub fn push(&mut self, masks: &Masks, seq: u64, t: f64, text: &str) -> Vec<Piece> {
        if text.is_empty() {
            return Vec::new();
        }
        self.pending.push_str(text);
        self.chunks.push_back(Chunk {
            seq,
            t,
            len: text.len(),
        });
        let cut = self.cut(masks);
        self.release(masks, cut)
    }

    /// Release everything held (the end of the stream, or held for too long).
    pub fn flush(&mut self, masks: &Masks) -> Vec<Piece> {
        self.release(masks, self.pending.len())
    }

    /// Where the final text ends: before the earliest place a mask could still be matching,
    /// and never inside a match; at most [`WINDOW`] bytes are kept.
    fn cut(&mut self, masks: &Masks) -> usize {
        let n = self.pending.len();
        // A match starting before the window would be cut by it anyway: look no further back
        // (which also keeps the work per chunk bounded, whatever its size).
        let window = floor_char_boundary(&self.pending, n.saturating_sub(WINDOW));
        let mut cut = masks.earliest_live(&mut self.cache, &self.pending, window);
        // A match across the cut would be masked in neither part: hold it whole; a chunk is
        // not split either (one event stays one event) while the window allows.
        loop {
            if let Some((start, _)) = self.straddled(masks, cut) {
                cut = start;
            } else {
                match self.chunk_start(cut) {
                    Some(start) if start < cut && n - start <= WINDOW => cut = start,
                    _ => break,
                }
            }
        }
        if n - cut <= WINDOW {
            return cut;
        }
        // Too much held: release all but the window, and a match across that cut with it
        // (masked).
        cut = window;
        while let Some((_, end)) = self.straddled(masks, cut) {
            cut = end;
        }
        cut
    }

    /// A match of the pending text that starts before `at` and ends after it.
    fn straddled(&self, masks: &Masks, at: usize) -> Option<(usize, usize)> {
        masks
            .regexes
            .iter()
            .flat_map(|re| re.find_iter(&self.pending))
            .map(|m| (m.start(), m.end()))
            .find(|&(start, end)| start < at && at < end)
    }

    /// Where the chunk holding byte `at` of the pending text starts.
    fn chunk_start(&self, at: usize) -> Option<usize> {
        let mut start = 0;
        for c in &self.chunks {
            if at < start + c.len {
                return Some(start);
            }
            start += c.len;
        }
        None
    }

    /// Mask and release `pending[..cut]`, one piece per chunk, except that chunks a match
    /// spans are joined into the first.
    fn release(&mut self, masks: &Masks, cut: usize) -> Vec<Piece> {
        if cut == 0 {
            return Vec::new();
        }
        let rest = self.pending.split_off(cut);
        let text = std::mem::replace(&mut self.pending, rest);
        let matches: Vec<(usize, usize)> = masks
            .regexes
            .iter()
            .flat_map(|re| re.find_iter(&text))
            .map(|m| (m.start(), m.end()))
            .collect();
        let mut pieces: Vec<Piece> = Vec::new();
        let (mut at, mut from) = (0, 0);
        let mut first: Option<(u64, f64)> = None;
        while at < cut {
            let Some(c) = self.chunks.front_mut() else {
                break;
            };
            first.get_or_insert((c.seq, c.t));
            let take = c.len.min(cut - at);
            at += take;
            c.len -= take;
            if c.len == 0 {
                self.chunks.pop_front();
            }
            let joined = matches.iter().any(|&(s, e)| s < at && at < e);
            if !joined || at == cut {
                let (seq, t) = first.take().unwrap_or_default();
                pieces.push(Piece {
                    seq,
                    t,
                    text: masks.apply(&text[from..at]),
                });
                from = at;
            }
        }
        pieces
    }
}

/// The largest char boundary of `s` at or before `i` (`str::floor_char_boundary` is newer than
/// the crate's minimum Rust).
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks() -> Masks {
        Masks::new(super::super::compile_masks(crate::config::DEFAULT_MASKS).unwrap())
    }

    /// Stream `chunks` through one masker and return the released pieces, flushed at the end.
    fn stream(m: &Masks, chunks: &[&str]) -> Vec<Piece> {
        let mut s = StreamMasker::new(m);
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            out.extend(s.push(m, i as u64, i as f64, c));
        }
        out.extend(s.flush(m));
        assert_eq!(s.held(), None);
        out
    }

    fn joined(p: &[Piece]) -> String {
        p.iter().map(|p| p.text.as_str()).collect()
    }

    const SECRETS: &[&str] = &[
        "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-123456789012-abcdefghij",
    ];

    /// Texts around each secret: alone, at the end of the stream, after candidates that fail
    /// (`sk-` too short, `ghp_` cut), between non-ASCII text.
    fn corpus() -> Vec<String> {
        let mut v = Vec::new();
        for s in SECRETS {
            v.push(format!("key={s}\r\n$ "));
            v.push(format!("export T={s}"));
            v.push(format!("sk-short sk- ghp_x AKIA {s} then {s}!"));
            v.push(format!("clé «{s}» é\r\n"));
        }
        v
    }

    #[test]
    fn a_secret_split_at_every_position_is_masked() {
        let m = masks();
        let mut cases = 0;
        for text in corpus() {
            let whole = m.apply(&text);
            for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
                let out = stream(&m, &[&text[..cut], &text[cut..]]);
                assert_eq!(joined(&out), whole, "split at {cut} of {text:?}");
                cases += 1;
            }
            let chars: Vec<String> = text.chars().map(String::from).collect();
            let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
            let out = stream(&m, &refs);
            assert_eq!(joined(&out), whole, "one char per chunk: {text:?}");
            cases += 1;
            for s in SECRETS {
                assert!(!joined(&out).contains(s));
            }
        }
        eprintln!("{cases} split secrets streamed, 0 unmasked");
    }

    #[test]
    fn pieces_keep_their_chunks_and_a_match_lives_in_its_first_chunk() {
        let m = masks();
        let out = stream(
            &m,
            &["a", "b sk-ABCDEFGHIJ", "KLMNOPQRSTUVWXYZ", " c", "\r"],
        );
        let got: Vec<(u64, &str)> = out.iter().map(|p| (p.seq, p.text.as_str())).collect();
        assert_eq!(got, [(0, "a"), (1, "b ***"), (3, " c"), (4, "\r")]);
        assert_eq!(
            out[1].t, 1.0,
            "the masked secret is timed by its first chunk"
        );
    }

    #[test]
    fn only_a_possible_secret_is_held() {
        let m = masks();
        let mut s = StreamMasker::new(&m);
        assert_eq!(joined(&s.push(&m, 0, 0.0, "hello\r\n")), "hello\r\n");
        assert_eq!(joined(&s.push(&m, 1, 0.1, "ls -la")), "ls -la");
        // "s" could begin "sk-": held (its whole chunk), and told when.
        assert_eq!(joined(&s.push(&m, 2, 0.2, "cat notes")), "");
        assert_eq!(s.held(), Some((2, 0.2)));
        assert_eq!(joined(&s.push(&m, 3, 0.3, ".txt")), "cat notes.txt");
        assert_eq!(s.held(), None);
        // A complete match that could still grow is held until it cannot.
        assert!(
            s.push(&m, 4, 0.4, "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                .is_empty()
        );
        assert_eq!(joined(&s.push(&m, 5, 0.5, "0123 ")), "*** ");
    }

    #[test]
    fn held_text_is_bounded() {
        let m = masks();
        let mut s = StreamMasker::new(&m);
        let long = format!("sk-{}", "a".repeat(3 * WINDOW));
        let mut out = Vec::new();
        for c in long.as_bytes().chunks(100) {
            out.extend(s.push(&m, 0, 0.0, std::str::from_utf8(c).unwrap()));
            assert!(s.pending.len() <= WINDOW + 100);
        }
        out.extend(s.flush(&m));
        assert!(joined(&out).starts_with("***"), "the start is masked");
    }

    #[test]
    fn without_masks_nothing_is_held() {
        let m = Masks::new(Vec::new());
        let mut s = StreamMasker::new(&m);
        assert_eq!(joined(&s.push(&m, 0, 0.0, "sk-")), "sk-");
    }
}
