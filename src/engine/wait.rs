//! `wait`: block until the screen (or the output stream) matches a pattern, or output settles.
//! A pattern wait never returns on mere silence: only a match, the timeout, or exit/delete.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::Engine;
use super::classifier::{EscapeStripper, push_tail_bytes};
use super::session::Session;
use crate::wire::request::AgentState;

/// A stream wait matches within the last this-many bytes of output: enough for any prompt or
/// marker, and it keeps a long wait on a chatty program bounded in memory and in regex work
/// (each new chunk rescans at most this much).
const STREAM_WINDOW: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitScope {
    Screen,
    Stream,
}

pub struct WaitParams {
    pub pattern: Option<Regex>,
    pub settle_ms: u64,
    pub timeout_ms: u64,
    pub since_generation: Option<u64>,
    pub scope: WaitScope,
    /// Wait for this state (no pattern then): like a pattern, silence never ends it.
    pub state: Option<AgentState>,
}

#[derive(Debug, Default)]
pub struct WaitResult {
    pub matched: bool,
    pub matched_text: Option<String>,
    pub timed_out: bool,
    pub exited: bool,
    pub settled: bool,
    pub generation: u64,
    pub state: Option<AgentState>,
}

/// The session's state as `list` shows it: a self-report that needs input counts as waiting.
pub fn agent_state(s: &Session) -> AgentState {
    if s.exited() {
        return AgentState::Exited;
    }
    if s.semantic().and_then(|v| v.get("needs_input")?.as_bool()) == Some(true) {
        return AgentState::Waiting;
    }
    AgentState::from_auto(s.classifier.lock().state().as_str()).unwrap_or(AgentState::Working)
}

impl Engine {
    fn gone(&self, s: &Arc<Session>) -> bool {
        s.exited()
            || s.meta().closing
            || self.get_exact(&s.id()).is_none_or(|x| !Arc::ptr_eq(&x, s))
    }

    pub async fn wait(&self, s: &Arc<Session>, p: WaitParams) -> WaitResult {
        let mut changes = s.term.watch_generation();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(p.timeout_ms);
        let start_gen = s.term.generation();
        let floor = p.since_generation.unwrap_or(match p.scope {
            WaitScope::Stream => start_gen,
            WaitScope::Screen => 0,
        });
        let mut stream_text = String::new();
        let mut stripper = EscapeStripper::new();
        let mut stream_seen = floor;
        let settle = Duration::from_millis(p.settle_ms);
        // Settling counts from the call, or from the first output past since_generation.
        let past_output_only = p.since_generation.is_some_and(|g| start_gen <= g);
        let mut settle_from = (!past_output_only).then(tokio::time::Instant::now);
        let mut first_check = true;
        loop {
            let generation = s.term.generation();
            if let Some(want) = p.state {
                if agent_state(s) == want {
                    return WaitResult {
                        matched: true,
                        exited: want == AgentState::Exited,
                        state: Some(want),
                        generation,
                        ..Default::default()
                    };
                }
            }
            if let Some(re) = &p.pattern {
                let fresh = generation > floor
                    || (first_check
                        && p.since_generation.is_none()
                        && p.scope == WaitScope::Screen);
                if fresh || (generation > stream_seen && p.scope == WaitScope::Stream) {
                    let found = match p.scope {
                        WaitScope::Screen => re
                            .find(&s.term.visible_text())
                            .map(|m| m.as_str().to_string()),
                        WaitScope::Stream => {
                            if generation > stream_seen {
                                let raw = s.term.raw_since(stream_seen);
                                let text = stripper.push(&String::from_utf8_lossy(&raw));
                                push_tail_bytes(&mut stream_text, &text, STREAM_WINDOW);
                                stream_seen = generation;
                            }
                            re.find(&stream_text).map(|m| m.as_str().to_string())
                        }
                    };
                    if let Some(m) = found {
                        return WaitResult {
                            matched: true,
                            matched_text: Some(m),
                            generation,
                            ..Default::default()
                        };
                    }
                }
            }
            first_check = false;
            if self.gone(s) {
                return WaitResult {
                    exited: true,
                    generation: s.term.generation(),
                    ..Default::default()
                };
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return WaitResult {
                    timed_out: true,
                    generation,
                    ..Default::default()
                };
            }
            let mut wake = deadline.min(now + Duration::from_millis(100));
            if p.pattern.is_none() && p.state.is_none() {
                if let Some(from) = settle_from {
                    let last = s
                        .term
                        .last_output()
                        .map(tokio::time::Instant::from_std)
                        .filter(|l| *l > from)
                        .unwrap_or(from);
                    if now >= last + settle {
                        return WaitResult {
                            settled: true,
                            generation,
                            ..Default::default()
                        };
                    }
                    wake = wake.min(last + settle);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                r = changes.changed() => {
                    if r.is_ok() && settle_from.is_none() && s.term.generation() > floor {
                        settle_from = Some(tokio::time::Instant::now());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_tail_bytes;

    #[test]
    fn the_stream_window_stays_bounded_and_keeps_whole_characters() {
        let mut t = String::new();
        for _ in 0..10_000 {
            push_tail_bytes(&mut t, "é-line\n", 1000);
            assert!(t.len() <= 2000 + 8);
        }
        push_tail_bytes(&mut t, "", 1000);
        assert!(t.ends_with("é-line\n"));
        let mut short = "keep me".to_string();
        push_tail_bytes(&mut short, "", 1000);
        assert_eq!(short, "keep me");
    }
}
