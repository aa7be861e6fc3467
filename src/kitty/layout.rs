//! kitty layouts of the tabs that hold telepty sessions: show them, change them.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;
use serde::Serialize;
use strum::{Display, IntoStaticStr};

use super::model::{OsWindow, Tab, find_tab, session_windows, tabs};
use super::transport::RemoteControl;
use super::{Kitty, KittyError};

/// The kitty layouts telepty offers (by kitty's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ValueEnum, IntoStaticStr, Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Layout {
    Grid,
    Tall,
    Stack,
    Fat,
    Horizontal,
    Vertical,
    Splits,
}

impl Layout {
    pub const ALL: [Layout; 7] = [
        Layout::Grid,
        Layout::Tall,
        Layout::Stack,
        Layout::Fat,
        Layout::Horizontal,
        Layout::Vertical,
        Layout::Splits,
    ];

    /// kitty's name of the layout.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Layout {
    type Err = KittyError;
    fn from_str(s: &str) -> Result<Layout, KittyError> {
        let s = s.trim().to_ascii_lowercase();
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                KittyError::Invalid(format!(
                    "unknown layout {s:?} (one of: {})",
                    Layout::ALL.map(Layout::name).join(", ")
                ))
            })
    }
}

/// The layout name of an `enabled_layouts` entry (which may carry options: `tall:bias=60`).
fn base_name(entry: &str) -> String {
    let name = entry.split_once(':').map_or(entry, |(name, _)| name);
    name.trim().to_ascii_lowercase()
}

fn is_enabled(tab: &Tab, layout: Layout) -> bool {
    // An empty list means kitty did not say: assume everything is enabled.
    tab.enabled_layouts.is_empty()
        || tab
            .enabled_layouts
            .iter()
            .any(|e| base_name(e) == layout.name())
}

/// Which tabs a layout command is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TabSelection {
    /// Tabs holding at least one telepty session window.
    Sessions,
    /// Every tab of the kitty instance.
    All,
    /// Tabs matched by a kitty match expression (`id:3`, `title:agents`, …).
    Match(String),
}

/// One tab and its layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TabLayout {
    pub os_window_id: u64,
    pub tab_id: u64,
    pub title: String,
    pub layout: String,
    pub enabled_layouts: Vec<String>,
    pub sessions: Vec<String>,
}

impl fmt::Display for TabLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tab {} {:?}: {}", self.tab_id, self.title, self.layout)?;
        if !self.sessions.is_empty() {
            write!(f, " ({})", self.sessions.join(", "))?;
        }
        Ok(())
    }
}

/// What a layout command did to one tab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayoutChange {
    pub tab_id: u64,
    pub title: String,
    pub from: String,
    pub to: String,
    /// The layout had to be enabled in the tab first.
    pub enabled: bool,
}

impl LayoutChange {
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

impl fmt::Display for LayoutChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changed() {
            write!(
                f,
                "tab {} {:?}: {} → {}",
                self.tab_id, self.title, self.from, self.to
            )?;
            if self.enabled {
                write!(f, " (enabled {} in the tab)", self.to)?;
            }
            Ok(())
        } else {
            write!(
                f,
                "tab {} {:?}: {} (unchanged)",
                self.tab_id, self.title, self.to
            )
        }
    }
}

fn tab_layout(os_window_id: u64, tab: &Tab, list: &[OsWindow], known: &[String]) -> TabLayout {
    let sessions = session_windows(list, known)
        .into_iter()
        .filter(|s| s.tab_id == tab.id)
        .map(|s| s.session)
        .collect();
    TabLayout {
        os_window_id,
        tab_id: tab.id,
        title: tab.title.clone(),
        layout: tab.layout.clone(),
        enabled_layouts: tab.enabled_layouts.clone(),
        sessions,
    }
}

fn no_session_tabs() -> KittyError {
    KittyError::NoSessions(
        "no kitty tab holds a telepty session window (use --all-tabs or --match EXPR, or open \
         windows with `telepty kitty open`)"
            .into(),
    )
}

/// The tabs chosen by `sel` (a match expression is evaluated locally; see [`tab_matches`]).
pub fn select_tabs(
    list: &[OsWindow],
    sel: &TabSelection,
    known: &[String],
) -> Result<Vec<TabLayout>, KittyError> {
    let holding: Vec<u64> = session_windows(list, known)
        .iter()
        .map(|s| s.tab_id)
        .collect();
    let mut out = Vec::new();
    for osw in list {
        for (index, tab) in osw.tabs.iter().enumerate() {
            let keep = match sel {
                TabSelection::Sessions => holding.contains(&tab.id),
                TabSelection::All => true,
                TabSelection::Match(expr) => tab_matches(expr, osw, index, tab)?,
            };
            if keep {
                out.push(tab_layout(osw.id, tab, list, known));
            }
        }
    }
    match sel {
        TabSelection::Sessions if out.is_empty() => Err(no_session_tabs()),
        TabSelection::Match(expr) if out.is_empty() => Err(KittyError::Invalid(format!(
            "no kitty tab matches {expr:?}"
        ))),
        _ => Ok(out),
    }
}

/// A single-term kitty tab match, evaluated on an `ls` listing (for showing layouts without
/// touching anything): `all`, `id:N`, `index:N`, `title:RE`, `window_id:N`, `window_title:RE`,
/// `pid:N`, `cwd:RE`, `cmdline:RE`, `env:NAME=RE`, `state:active|focused`. Changing layouts
/// passes the expression to kitty itself, which understands its whole syntax.
pub fn tab_matches(
    expr: &str,
    osw: &OsWindow,
    index: usize,
    tab: &Tab,
) -> Result<bool, KittyError> {
    let expr = expr.trim();
    if expr == "all" {
        return Ok(true);
    }
    let unsupported = || {
        KittyError::Invalid(format!(
            "showing layouts with --match supports one term (id:, index:, title:, window_id:, \
             window_title:, pid:, cwd:, cmdline:, env:, state:), not {expr:?}; to change layouts \
             any kitty match expression works"
        ))
    };
    if expr.split_whitespace().count() != 1 {
        return Err(unsupported());
    }
    let (field, value) = expr.split_once(':').ok_or_else(unsupported)?;
    let re = |pattern: &str| {
        regex::Regex::new(pattern).map_err(|e| {
            KittyError::Invalid(format!("invalid regular expression in {expr:?}: {e}"))
        })
    };
    let num = || {
        value
            .parse::<i64>()
            .map_err(|_| KittyError::Invalid(format!("{field}: needs a number in {expr:?}")))
    };
    Ok(match field {
        "id" => num()? == tab.id as i64,
        "index" => {
            let n = num()?;
            let len = osw.tabs.len() as i64;
            let want = if n < 0 { len + n } else { n };
            want == index as i64
        }
        "title" => re(value)?.is_match(&tab.title),
        "window_id" => {
            let n = num()?;
            tab.windows.iter().any(|w| w.id as i64 == n)
        }
        "window_title" => {
            let r = re(value)?;
            tab.windows.iter().any(|w| r.is_match(&w.title))
        }
        "pid" => {
            let n = num()?;
            tab.windows
                .iter()
                .any(|w| w.pid.is_some_and(|p| p as i64 == n))
        }
        "cwd" => {
            let r = re(value)?;
            tab.windows.iter().any(|w| r.is_match(&w.cwd))
        }
        "cmdline" => {
            let r = re(value)?;
            tab.windows
                .iter()
                .any(|w| w.cmdline.iter().any(|a| r.is_match(a)))
        }
        "env" => {
            let (name, pat) = value.split_once('=').unwrap_or((value, ""));
            let r = re(pat)?;
            tab.windows
                .iter()
                .any(|w| w.env.get(name).is_some_and(|v| r.is_match(v)))
        }
        "state" => match value {
            "focused" => tab.is_focused,
            "active" => tab.active() || tab.is_focused,
            _ => return Err(unsupported()),
        },
        _ => return Err(unsupported()),
    })
}

/// The current layout of the chosen tabs.
pub async fn current_layouts<R: RemoteControl>(
    k: &Kitty<R>,
    sel: &TabSelection,
    known: &[String],
) -> Result<Vec<TabLayout>, KittyError> {
    let list = k.ls().await?;
    select_tabs(&list, sel, known)
}

/// Apply `layout` to the chosen tabs; enables it in a tab first when needed, then checks with
/// `ls` that kitty switched. Returns one entry per tab (changed or not).
pub async fn apply_layout<R: RemoteControl>(
    k: &Kitty<R>,
    sel: &TabSelection,
    layout: Layout,
    known: &[String],
) -> Result<Vec<LayoutChange>, KittyError> {
    let before = k.ls().await?;
    let ids: Vec<u64> = match sel {
        TabSelection::Sessions => {
            let windows = session_windows(&before, known);
            let mut ids: Vec<u64> = windows.iter().map(|s| s.tab_id).collect();
            // In listing order: a tab's windows are next to each other.
            ids.dedup();
            if ids.is_empty() {
                return Err(no_session_tabs());
            }
            ids
        }
        TabSelection::All => tabs(&before).map(|(_, t)| t.id).collect(),
        TabSelection::Match(expr) => {
            // kitty evaluates the expression. Learn which tabs it matched by enabling only the
            // new layout in them (kitty switches a tab whose layout is no longer enabled), then
            // give each its own enabled list back plus the new layout.
            k.set_enabled_layouts(Some(expr), &[layout.name().to_string()])
                .await?;
            let mid = k.ls().await?;
            let matched: Vec<u64> = tabs(&mid)
                .map(|(_, t)| t)
                .filter(|t| {
                    t.enabled_layouts.len() == 1
                        && base_name(&t.enabled_layouts[0]) == layout.name()
                })
                .map(|t| t.id)
                .collect();
            for id in &matched {
                if let Some(old) = find_tab(&before, *id) {
                    let mut list = old.enabled_layouts.clone();
                    if list.is_empty() || !is_enabled(old, layout) {
                        list.push(layout.name().to_string());
                    }
                    k.set_enabled_layouts(Some(&format!("id:{id}")), &list)
                        .await?;
                }
            }
            matched
        }
    };
    apply_to_tabs(k, &before, &ids, layout).await
}

/// Apply `layout` to the tabs with these ids (`before` is a fresh listing).
pub async fn apply_to_tabs<R: RemoteControl>(
    k: &Kitty<R>,
    before: &[OsWindow],
    ids: &[u64],
    layout: Layout,
) -> Result<Vec<LayoutChange>, KittyError> {
    let mut enabled_now = Vec::new();
    for id in ids {
        let Some(tab) = find_tab(before, *id) else {
            continue;
        };
        let m = format!("id:{id}");
        if !is_enabled(tab, layout) {
            let mut list = tab.enabled_layouts.clone();
            list.push(layout.name().to_string());
            k.set_enabled_layouts(Some(&m), &list).await?;
            enabled_now.push(*id);
        }
        k.goto_layout(Some(&m), layout).await?;
    }
    let after = k.ls().await?;
    let mut out = Vec::new();
    for id in ids {
        let old = find_tab(before, *id);
        let Some(new) = find_tab(&after, *id) else {
            continue; // closed meanwhile
        };
        if base_name(&new.layout) != layout.name() {
            return Err(KittyError::Protocol(format!(
                "kitty did not switch tab {id} {:?} to {layout}: it shows {:?}",
                new.title, new.layout
            )));
        }
        out.push(LayoutChange {
            tab_id: *id,
            title: new.title.clone(),
            from: old.map(|t| t.layout.clone()).unwrap_or_default(),
            to: new.layout.clone(),
            enabled: enabled_now.contains(id) || old.is_some_and(|t| !is_enabled(t, layout)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kitty::model::Window;

    fn tab(id: u64, title: &str, layout: &str, windows: Vec<Window>) -> Tab {
        Tab {
            id,
            title: title.into(),
            layout: layout.into(),
            enabled_layouts: vec!["tall".into(), "stack".into()],
            windows,
            ..Default::default()
        }
    }

    fn win(id: u64, title: &str, argv: &[&str]) -> Window {
        Window {
            id,
            title: title.into(),
            cmdline: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_lines() {
        for l in Layout::ALL {
            assert_eq!(l.name().parse::<Layout>().unwrap(), l);
        }
        assert!("zoom".parse::<Layout>().is_err());
        let c = LayoutChange {
            tab_id: 1,
            title: "agents".into(),
            from: "stack".into(),
            to: "grid".into(),
            enabled: false,
        };
        assert_eq!(c.to_string(), "tab 1 \"agents\": stack → grid");
        let c = LayoutChange {
            from: "grid".into(),
            ..c
        };
        assert_eq!(c.to_string(), "tab 1 \"agents\": grid (unchanged)");
        assert_eq!(base_name("tall:bias=50;full_size=1"), "tall");
    }

    #[test]
    fn selecting_tabs() {
        let list = vec![OsWindow {
            id: 1,
            tabs: vec![
                tab(1, "shell", "stack", vec![win(1, "bash", &["bash"])]),
                tab(
                    2,
                    "agents",
                    "tall",
                    vec![
                        win(2, "a", &["telepty", "attach", "a"]),
                        win(3, "b", &["telepty", "attach", "b"]),
                    ],
                ),
            ],
            ..Default::default()
        }];
        let s = select_tabs(&list, &TabSelection::Sessions, &[]).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].to_string(), "tab 2 \"agents\": tall (a, b)");
        assert_eq!(
            select_tabs(&list, &TabSelection::All, &[]).unwrap().len(),
            2
        );
        for (expr, want) in [
            ("id:1", vec![1]),
            ("title:^ag", vec![2]),
            ("index:-1", vec![2]),
            ("window_title:^bash$", vec![1]),
            ("cmdline:telepty", vec![2]),
            ("all", vec![1, 2]),
        ] {
            let got: Vec<u64> = select_tabs(&list, &TabSelection::Match(expr.into()), &[])
                .unwrap()
                .iter()
                .map(|t| t.tab_id)
                .collect();
            assert_eq!(got, want, "{expr}");
        }
        assert!(select_tabs(&list, &TabSelection::Match("id:9".into()), &[]).is_err());
        assert!(select_tabs(&list, &TabSelection::Match("id:1 or id:2".into()), &[]).is_err());
        let empty = vec![OsWindow {
            id: 1,
            tabs: vec![tab(1, "shell", "stack", vec![win(1, "bash", &["bash"])])],
            ..Default::default()
        }];
        let e = select_tabs(&empty, &TabSelection::Sessions, &[]).unwrap_err();
        assert!(e.to_string().contains("--all-tabs"), "{e}");
    }
}
