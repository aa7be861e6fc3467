//! Themes: the colours of the dashboard's chrome (borders, titles, badges, status bar,
//! palette, event log, help). Built-in themes are embedded from `themes/*.toml`; a file
//! `~/.config/telepty/themes/<name>.toml` (or under `$XDG_CONFIG_HOME`) overrides or adds one.
//!
//! `NO_COLOR`: the chrome keeps only modifiers (bold, reverse…; a style that had a background
//! becomes reverse video so selections stay visible). Pane contents keep the programs' own
//! colours, as in tmux: NO_COLOR is about the colours telepty adds, and a program that honours
//! it sees it in its own environment.

use std::path::PathBuf;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

pub const DEFAULT_THEME: &str = "dark";

/// Declares [`Theme`] with one [`Style`] per `section.key` of a theme file, the lookup by
/// section and key, and the list of every key, from one table.
macro_rules! theme {
    ($($section:ident . $key:ident => $field:ident,)*) => {
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Theme {
            pub name: String,
            $(pub $field: Style,)*
        }

        /// Every `(section, key)` a theme file may set.
        const KEYS: &[(&str, &str)] = &[$((stringify!($section), stringify!($key)),)*];

        impl Theme {
            fn slot(&mut self, section: &str, key: &str) -> Option<&mut Style> {
                Some(match (section, key) {
                    $((stringify!($section), stringify!($key)) => &mut self.$field,)*
                    _ => return None,
                })
            }
        }
    };
}

theme! {
    border.focused => border_focused,
    border.unfocused => border_unfocused,
    border.marked => border_marked,
    title.text => title_text,
    title.focused => title_focused,
    title.host => title_host,
    title.command => title_command,
    title.unread => title_unread,
    title.scroll => title_scroll,
    title.marked => title_marked,
    badge.working => badge_working,
    badge.idle => badge_idle,
    badge.waiting => badge_waiting,
    badge.stuck => badge_stuck,
    badge.exited => badge_exited,
    badge.failed => badge_failed,
    badge.disconnected => badge_disconnected,
    badge.unknown => badge_unknown,
    status.bar => status_bar,
    status.nav => status_nav,
    status.typing => status_typing,
    status.attached => status_attached,
    status.info => status_info,
    status.key => status_key,
    status.ok => status_ok,
    status.error => status_error,
    status.message => status_message,
    palette.border => palette_border,
    palette.text => palette_text,
    palette.prompt => palette_prompt,
    palette.selected => palette_selected,
    palette.matched => palette_matched,
    palette.description => palette_description,
    palette.hint => palette_hint,
    log.border => log_border,
    log.text => log_text,
    log.time => log_time,
    log.title => log_title,
    help.border => help_border,
    help.title => help_title,
    help.key => help_key,
    help.text => help_text,
    overlay.banner => banner,
    overlay.confirm => confirm,
    overlay.empty => empty,
}

impl Theme {
    /// Apply a theme file on top of `self`. Unknown sections or keys are errors, so typos do
    /// not go unnoticed.
    fn apply(&mut self, text: &str) -> Result<(), String> {
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| format!("invalid TOML: {}", e.message()))?;
        for (section, value) in doc {
            if section == "name" {
                if let Some(n) = value.as_str() {
                    self.name = n.to_string();
                }
                continue;
            }
            let toml::Value::Table(t) = value else {
                return Err(format!("[{section}] must be a table"));
            };
            for (key, v) in t {
                let Some(spec) = v.as_str() else {
                    return Err(format!("{section}.{key} must be a string"));
                };
                let style = parse_style(spec).map_err(|e| format!("{section}.{key}: {e}"))?;
                let slot = self
                    .slot(&section, &key)
                    .ok_or_else(|| format!("unknown key {section}.{key}"))?;
                *slot = style;
            }
        }
        Ok(())
    }

    /// The built-in default theme.
    pub fn base() -> Theme {
        let mut t = Theme {
            name: DEFAULT_THEME.into(),
            ..Default::default()
        };
        // The embedded file is tested; a failure here would leave plain styles, never panic.
        let _ = t.apply(BUILTIN[0].1);
        t
    }

    /// Parse a theme file over the default theme.
    pub fn parse(name: &str, text: &str) -> Result<Theme, String> {
        let mut t = Theme::base();
        t.name = name.to_string();
        t.apply(text)?;
        Ok(t)
    }

    /// The chrome without colours (NO_COLOR).
    pub fn without_colors(&self) -> Theme {
        let mut t = self.clone();
        for (section, key) in KEYS {
            if let Some(s) = t.slot(section, key) {
                *s = strip(*s);
            }
        }
        // Focus must stay visible without colour: bold titles, and borders are drawn thick.
        t.title_focused = t.title_focused.add_modifier(Modifier::BOLD);
        t
    }
}

fn strip(s: Style) -> Style {
    let mut out = Style::default()
        .add_modifier(s.add_modifier)
        .remove_modifier(s.sub_modifier);
    if s.bg.is_some_and(|c| c != Color::Reset) {
        out = out.add_modifier(Modifier::REVERSED);
    }
    out
}

fn parse_color(s: &str) -> Result<Option<Color>, String> {
    if s.eq_ignore_ascii_case("default") || s.eq_ignore_ascii_case("reset") {
        return Ok(None);
    }
    Color::from_str(s)
        .map(Some)
        .map_err(|_| format!("unknown colour {s:?}"))
}

/// `"<fg> [on <bg>] [bold] [dim] [italic] [underline] [reverse]"`.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::default();
    let mut words = spec.split_whitespace();
    let mut fg_set = false;
    while let Some(w) = words.next() {
        let lw = w.to_ascii_lowercase();
        match lw.as_str() {
            "bold" => style = style.add_modifier(Modifier::BOLD),
            "dim" => style = style.add_modifier(Modifier::DIM),
            "italic" => style = style.add_modifier(Modifier::ITALIC),
            "underline" | "underlined" => style = style.add_modifier(Modifier::UNDERLINED),
            "reverse" | "reversed" => style = style.add_modifier(Modifier::REVERSED),
            "on" => {
                let bg = words.next().ok_or("\"on\" needs a colour")?;
                if let Some(c) = parse_color(bg)? {
                    style = style.bg(c);
                }
            }
            _ if !fg_set => {
                fg_set = true;
                if let Some(c) = parse_color(w)? {
                    style = style.fg(c);
                }
            }
            _ => return Err(format!("unexpected {w:?} in style {spec:?}")),
        }
    }
    Ok(style)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `$XDG_CONFIG_HOME/telepty/themes` or `~/.config/telepty/themes`.
pub fn user_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("telepty/themes"))
}

/// Load a theme by name: the user's file first, then the built-in one.
pub fn load(name: &str) -> Result<Theme, String> {
    let name = name.trim();
    if !valid_name(name) {
        return Err(format!("invalid theme name {name:?}"));
    }
    if let Some(dir) = user_dir() {
        let path = dir.join(format!("{name}.toml"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Theme::parse(name, &text).map_err(|e| format!("theme {}: {e}", path.display()));
        }
    }
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => Theme::parse(n, text),
        None => Err(format!(
            "unknown theme '{name}' (available: {})",
            available().join(", ")
        )),
    }
}

/// Built-in themes plus the user's, sorted, without duplicates.
pub fn available() -> Vec<String> {
    let mut v: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(dir) = user_dir() {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                if let Some(stem) = file.strip_suffix(".toml") {
                    if valid_name(stem) && !v.iter().any(|x| x == stem) {
                        v.push(stem.to_string());
                    }
                }
            }
        }
    }
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_themes_parse_completely() {
        for (name, text) in BUILTIN {
            let mut t = Theme {
                name: name.to_string(),
                ..Default::default()
            };
            t.apply(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Every key is set in every built-in theme ("default" is a choice too).
            let doc: toml::Table = toml::from_str(text).unwrap();
            for (section, key) in KEYS {
                assert!(
                    doc[*section].get(*key).is_some(),
                    "{name}: {section}.{key} unset"
                );
            }
            assert_eq!(&t.name, name);
        }
    }

    /// `light` may meet a dark terminal: text it draws on the terminal's own background is
    /// the terminal's colour or a mid tone, never near-black (nor near-white) alone.
    #[test]
    fn light_text_without_a_background_reads_on_dark_and_light() {
        fn luminance(c: Color) -> Option<f64> {
            let lin = |v: u8| {
                let v = f64::from(v) / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            match c {
                Color::Black => Some(0.0),
                Color::White => Some(1.0),
                Color::Rgb(r, g, b) => Some(0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)),
                _ => None,
            }
        }
        let contrast = |a: f64, b: f64| (a.max(b) + 0.05) / (a.min(b) + 0.05);
        let mut t = load("light").unwrap();
        assert_eq!(
            t.title_text.fg, None,
            "unfocused pane ids in the terminal's colour"
        );
        for (section, key) in KEYS {
            let s = *t.slot(section, key).unwrap();
            let Some(l) = s.fg.filter(|_| s.bg.is_none()).and_then(luminance) else {
                continue;
            };
            let worst = contrast(l, 0.0).min(contrast(l, 1.0));
            assert!(
                worst >= 3.0,
                "light: {section}.{key} {:?}: {worst:.1}",
                s.fg
            );
        }
    }

    #[test]
    fn style_strings() {
        assert_eq!(parse_style("red").unwrap(), Style::default().fg(Color::Red));
        assert_eq!(
            parse_style("black on #102030 bold").unwrap(),
            Style::default()
                .fg(Color::Black)
                .bg(Color::Rgb(0x10, 0x20, 0x30))
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            parse_style("on 208").unwrap(),
            Style::default().bg(Color::Indexed(208))
        );
        assert_eq!(
            parse_style("default reverse").unwrap(),
            Style::default().add_modifier(Modifier::REVERSED)
        );
        assert!(parse_style("red blue").is_err());
        assert!(parse_style("notacolour").is_err());
        assert!(parse_style("red on").is_err());
    }

    #[test]
    fn partial_theme_falls_back_and_typos_are_reported() {
        let t = Theme::parse("mine", "[border]\nfocused = \"red\"\n").unwrap();
        assert_eq!(t.border_focused, Style::default().fg(Color::Red));
        assert_eq!(t.border_unfocused, Theme::base().border_unfocused);
        assert_eq!(t.name, "mine");
        assert!(
            Theme::parse("x", "[border]\nfocussed = \"red\"\n")
                .unwrap_err()
                .contains("border.focussed")
        );
        assert!(Theme::parse("x", "[border\n").is_err());
    }

    #[test]
    fn no_color_keeps_modifiers_only() {
        let t = Theme::base().without_colors();
        assert_eq!(t.status_nav.fg, None);
        assert_eq!(t.status_nav.bg, None);
        assert!(t.status_nav.add_modifier.contains(Modifier::REVERSED));
        assert!(t.status_nav.add_modifier.contains(Modifier::BOLD));
        assert!(t.palette_selected.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(t.border_unfocused, Style::default());
    }

    #[test]
    fn loading_by_name() {
        assert_eq!(load("light").unwrap().name, "light");
        assert!(load("../etc/passwd").is_err());
        let err = load("no-such-theme").unwrap_err();
        assert!(
            err.contains("available: ") && err.contains("high-contrast"),
            "{err}"
        );
    }
}
