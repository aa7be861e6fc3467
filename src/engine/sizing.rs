//! Size negotiation (tmux's `window-size`): a session has its own size, viewers register
//! theirs, and the PTY gets the size the policy picks. Viewers never set the session's own
//! size, so when the last one leaves the session is back at the size it was spawned (or
//! explicitly resized) to.
//!
//! The arithmetic is the pure [`effective`]; [`Sizing`] is the per-session state it runs on.

pub use crate::config::{BadWindowSize, WindowSize};

/// One viewer's registered size. `seq` orders registrations for [`WindowSize::Latest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerSize {
    pub id: u64,
    pub cols: u16,
    pub rows: u16,
    pub seq: u64,
}

/// The size (cols, rows) the PTY should have: the session's own size when no viewer counts
/// (none registered, or `manual`), else what the policy picks. Widths and heights are
/// chosen independently for smallest/largest, as tmux does. Never 0.
pub fn effective(own: (u16, u16), viewers: &[ViewerSize], policy: WindowSize) -> (u16, u16) {
    let clamp = |(c, r): (u16, u16)| (c.max(1), r.max(1));
    if viewers.is_empty() || policy == WindowSize::Manual {
        return clamp(own);
    }
    let size = match policy {
        WindowSize::Smallest => (
            viewers.iter().map(|v| v.cols).min().unwrap_or(own.0),
            viewers.iter().map(|v| v.rows).min().unwrap_or(own.1),
        ),
        WindowSize::Largest => (
            viewers.iter().map(|v| v.cols).max().unwrap_or(own.0),
            viewers.iter().map(|v| v.rows).max().unwrap_or(own.1),
        ),
        WindowSize::Latest => viewers
            .iter()
            .max_by_key(|v| v.seq)
            .map(|v| (v.cols, v.rows))
            .unwrap_or(own),
        WindowSize::Manual => own,
    };
    clamp(size)
}

/// A session's size state: its own size, its per-session policy override, the viewers'
/// sizes, and the size last applied to the PTY.
#[derive(Clone, Debug)]
pub struct Sizing {
    pub own: (u16, u16),
    pub policy: Option<WindowSize>,
    pub viewers: Vec<ViewerSize>,
    pub applied: (u16, u16),
    seq: u64,
}

impl Sizing {
    pub fn new(own: (u16, u16)) -> Sizing {
        Sizing {
            own,
            policy: None,
            viewers: Vec::new(),
            applied: own,
            seq: 0,
        }
    }

    /// Register or update a viewer's size (it becomes the latest).
    pub fn set_viewer(&mut self, id: u64, cols: u16, rows: u16) {
        self.seq += 1;
        let v = ViewerSize {
            id,
            cols,
            rows,
            seq: self.seq,
        };
        match self.viewers.iter_mut().find(|v| v.id == id) {
            Some(slot) => *slot = v,
            None => self.viewers.push(v),
        }
    }

    /// The viewer stops counting; false if it was not registered.
    pub fn remove_viewer(&mut self, id: u64) -> bool {
        let before = self.viewers.len();
        self.viewers.retain(|v| v.id != id);
        self.viewers.len() != before
    }

    pub fn policy_or(&self, default: WindowSize) -> WindowSize {
        self.policy.unwrap_or(default)
    }

    pub fn effective(&self, default: WindowSize) -> (u16, u16) {
        effective(self.own, &self.viewers, self.policy_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::WindowSize::*;
    use super::*;

    fn v(id: u64, cols: u16, rows: u16, seq: u64) -> ViewerSize {
        ViewerSize {
            id,
            cols,
            rows,
            seq,
        }
    }

    #[test]
    fn no_viewers_means_own_size_under_every_policy() {
        for p in [Smallest, Largest, Latest, Manual] {
            assert_eq!(effective((120, 40), &[], p), (120, 40), "{p}");
        }
    }

    #[test]
    fn smallest_and_largest_pick_each_dimension_independently() {
        let vs = [v(1, 100, 20, 1), v(2, 65, 51, 2)];
        assert_eq!(effective((120, 40), &vs, Smallest), (65, 20));
        assert_eq!(effective((120, 40), &vs, Largest), (100, 51));
    }

    #[test]
    fn viewers_may_be_larger_than_the_own_size() {
        // The own size only matters when nobody is looking: one big viewer gets its size.
        let vs = [v(1, 200, 60, 1)];
        assert_eq!(effective((80, 24), &vs, Smallest), (200, 60));
    }

    #[test]
    fn latest_follows_the_highest_sequence() {
        let vs = [v(1, 100, 20, 5), v(2, 65, 51, 3)];
        assert_eq!(effective((120, 40), &vs, Latest), (100, 20));
    }

    #[test]
    fn manual_ignores_viewers() {
        let vs = [v(1, 10, 5, 1)];
        assert_eq!(effective((120, 40), &vs, Manual), (120, 40));
    }

    #[test]
    fn never_zero() {
        assert_eq!(effective((0, 0), &[], Smallest), (1, 1));
        assert_eq!(effective((80, 24), &[v(1, 0, 0, 1)], Smallest), (1, 1));
    }

    #[test]
    fn sizing_tracks_viewers_and_falls_back_to_own_size() {
        let mut s = Sizing::new((120, 40));
        s.set_viewer(7, 65, 51);
        s.set_viewer(8, 90, 30);
        assert_eq!(s.effective(Smallest), (65, 30));
        assert_eq!(s.effective(Latest), (90, 30));
        // A viewer resizing becomes the latest, and is updated in place.
        s.set_viewer(7, 70, 50);
        assert_eq!(s.viewers.len(), 2);
        assert_eq!(s.effective(Latest), (70, 50));
        assert!(s.remove_viewer(7));
        assert!(!s.remove_viewer(7));
        assert_eq!(s.effective(Smallest), (90, 30));
        assert!(s.remove_viewer(8));
        assert_eq!(s.effective(Smallest), (120, 40));
        // The per-session override wins over the configured default.
        s.set_viewer(9, 10, 10);
        s.policy = Some(Manual);
        assert_eq!(s.effective(Smallest), (120, 40));
    }

    #[test]
    fn parses_policy_names() {
        assert_eq!("Smallest".parse::<WindowSize>(), Ok(Smallest));
        assert_eq!(" latest ".parse::<WindowSize>(), Ok(Latest));
        let e = "biggest".parse::<WindowSize>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "window_size must be one of smallest, largest, latest or manual, not \"biggest\""
        );
    }
}
