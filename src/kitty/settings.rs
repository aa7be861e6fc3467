//! The `[kitty]` table of telepty's config file, as read by `crate::config` (its
//! [`crate::config::KittyConfig`] section), plus what kitty makes of it.

use crate::config::{Config, Paths};

pub use crate::config::KittyConfig as KittySettings;

impl KittySettings {
    /// The layout `kitty open` applies: `layout` under `[kitty]`, else grid.
    pub fn open_layout(&self) -> Result<super::Layout, super::KittyError> {
        match self.layout.as_deref() {
            Some(name) => name.parse().map_err(|e| {
                super::KittyError::Invalid(format!("[kitty] layout in config.toml: {e}"))
            }),
            None => Ok(super::Layout::Grid),
        }
    }

    /// Read from the config file (`$TELEPTY_CONFIG`, else `$XDG_CONFIG_HOME/telepty/config.toml`);
    /// an invalid file means the defaults here (the commands that need a valid one say so).
    pub fn load(paths: &Paths) -> KittySettings {
        Config::load_files(paths)
            .map(|c| c.kitty)
            .unwrap_or_default()
    }
}
