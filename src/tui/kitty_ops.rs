//! The dashboard's kitty actions (`kitty open|focus|layout`, `layout kitty …`): the same
//! src/kitty calls as `telepty kitty` / `telepty layout`, reported in one status line.

use super::backend::Outcome;
use super::palette::KittyAction;
use crate::config::Paths;
use crate::kitty::{self, ConnectOptions, KittySettings, OpenRequest, TabSelection};

pub async fn run(action: KittyAction, known: Vec<String>, env: Vec<(String, String)>) -> Outcome {
    let what = match &action {
        KittyAction::Open(_) => "kitty open",
        KittyAction::Focus(_) => "kitty focus",
        KittyAction::Layout(_) => "kitty layout",
    };
    match run_inner(action, &known, env).await {
        Ok(text) => Outcome::ok(format!("{what}: {text}")),
        Err(e) => Outcome::err(format!("{what} failed: {e}")),
    }
}

async fn run_inner(
    action: KittyAction,
    known: &[String],
    env: Vec<(String, String)>,
) -> Result<String, kitty::KittyError> {
    let settings = KittySettings::load(&Paths::from_env());
    // The dashboard owns the terminal: never route requests through it.
    let opts = ConnectOptions {
        no_tty: true,
        ..Default::default()
    };
    let k = kitty::connect(&opts, &settings, known).await?;
    match action {
        KittyAction::Layout(layout) => {
            let changes = kitty::apply_layout(&k, &TabSelection::Sessions, layout, known).await?;
            let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
            Ok(lines.join("; "))
        }
        KittyAction::Focus(id) => {
            let w = kitty::focus_session(&k, &id, known).await?;
            Ok(format!(
                "window {} of {} (tab {})",
                w.window_id, w.session, w.tab_id
            ))
        }
        KittyAction::Open(sessions) => {
            let program = std::env::current_exe().map_err(|e| {
                kitty::KittyError::Invalid(format!("cannot find the telepty executable: {e}"))
            })?;
            let req = OpenRequest {
                sessions,
                program,
                env,
                layout: Some(settings.open_layout()?),
                tab_title: kitty::TAB_TITLE.to_string(),
            };
            let report = kitty::open_windows(&k, &req, known).await?;
            let opened: Vec<&str> = report.opened.iter().map(|w| w.session.as_str()).collect();
            let mut text = match opened.len() {
                0 => "no new window".to_string(),
                n => format!(
                    "{n} window{} ({}) in tab {:?}",
                    if n == 1 { "" } else { "s" },
                    opened.join(", "),
                    report.tab_title
                ),
            };
            if !report.existing.is_empty() {
                text.push_str(&format!(", {} already open", report.existing.len()));
            }
            Ok(text)
        }
    }
}
