//! `[sessions] window_size`: how viewers' sizes pick a session's size (a setting, and a value
//! of spawn and resize bodies). The engine's `sizing` applies it.

use std::str::FromStr;

/// How viewers' sizes turn into the session's size (`[sessions] window_size`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum WindowSize {
    /// The smallest width and the smallest height among the viewers: every viewer sees the
    /// whole screen (the default: two dashboards at once both show unclipped content).
    #[default]
    Smallest,
    /// The largest width and height: small viewers are clipped.
    Largest,
    /// The viewer that resized (or registered) most recently.
    Latest,
    /// Viewers never change the size; only spawn and explicit resizes do.
    Manual,
}

impl WindowSize {
    pub const NAMES: &'static str = "smallest, largest, latest or manual";

    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("window_size must be one of {names}, not {0:?}", names = WindowSize::NAMES)]
pub struct BadWindowSize(pub String);

impl FromStr for WindowSize {
    type Err = BadWindowSize;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "smallest" => Ok(WindowSize::Smallest),
            "largest" => Ok(WindowSize::Largest),
            "latest" => Ok(WindowSize::Latest),
            "manual" => Ok(WindowSize::Manual),
            _ => Err(BadWindowSize(s.to_string())),
        }
    }
}
