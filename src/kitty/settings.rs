//! The `[kitty]` table of telepty's config file (`~/.config/telepty/config.toml`):
//!
//! ```toml
//! [kitty]
//! to = "unix:/tmp/kitty-sock"   # where kitty listens (else $KITTY_LISTEN_ON, else discovery)
//! password = "…"                # kitty's remote_control_password
//! public_key = "1:…"            # kitty's KITTY_PUBLIC_KEY, when telepty runs outside kitty
//! layout = "grid"               # layout applied by `telepty kitty open`
//! ```

use serde::Deserialize;

use crate::config::Paths;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct KittySettings {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub layout: Option<String>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    kitty: Option<KittySettings>,
}

impl KittySettings {
    /// The `[kitty]` table of a config file's text (absent or invalid → defaults).
    pub fn parse(text: &str) -> KittySettings {
        toml::from_str::<File>(text)
            .ok()
            .and_then(|f| f.kitty)
            .unwrap_or_default()
    }

    /// The layout `kitty open` applies: `layout` under `[kitty]`, else grid.
    pub fn open_layout(&self) -> Result<super::Layout, super::KittyError> {
        match self.layout.as_deref() {
            Some(name) => name.parse().map_err(|e| {
                super::KittyError::Invalid(format!("[kitty] layout in config.toml: {e}"))
            }),
            None => Ok(super::Layout::Grid),
        }
    }

    /// Read from the config file (`$TELEPTY_CONFIG`, else `$XDG_CONFIG_HOME/telepty/config.toml`).
    pub fn load(paths: &Paths) -> KittySettings {
        std::fs::read_to_string(paths.config_toml())
            .map(|t| KittySettings::parse(&t))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitty_table_is_read() {
        let s = KittySettings::parse(
            "peer_allowlist = []\n[kitty]\npassword = \"pw\"\nlayout = \"tall\"\nto = \"unix:/k\"\n",
        );
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.layout.as_deref(), Some("tall"));
        assert_eq!(s.to.as_deref(), Some("unix:/k"));
        assert_eq!(KittySettings::parse("x = 1"), KittySettings::default());
        assert_eq!(KittySettings::parse("not toml ["), KittySettings::default());
    }
}
