//! `telepty layout` and `telepty kitty open|focus|list`: kitty windows of telepty sessions,
//! driven by kitty's remote control (src/kitty).

use clap::{Args, Subcommand};

use super::Ctx;
use super::output::{self, Failure, OrFail, session_ids};
use crate::config::Paths;
use crate::kitty::{
    self, ConnectOptions, Kitty, KittyError, KittySettings, Layout, OpenRequest, SocketRemote,
    TabSelection,
};

/// Where kitty listens and its remote-control password.
#[derive(Args, Clone, Debug, Default)]
pub struct KittyConn {
    /// kitty's remote-control address: unix:PATH, unix:@NAME, tcp:HOST:PORT or tty [default:
    /// $KITTY_LISTEN_ON, then `to` under [kitty] in config.toml, then (inside kitty) the
    /// terminal, then the sockets kitty creates, e.g. /tmp/kitty-sock-<pid>]
    #[arg(long, value_name = "ADDRESS", global = true)]
    pub to: Option<String>,
    /// kitty's remote_control_password [default: $KITTY_RC_PASSWORD, then `password` under
    /// [kitty] in config.toml]; needs KITTY_PUBLIC_KEY, which kitty sets in its windows
    #[arg(long, value_name = "PASSWORD", global = true)]
    pub password: Option<String>,
}

impl KittyConn {
    fn options(&self) -> ConnectOptions {
        ConnectOptions {
            to: self.to.clone(),
            password: self.password.clone(),
            timeout: None,
            no_tty: false,
        }
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty layout grid   (tabs holding telepty sessions; \
     no layout: show theirs)\n         telepty layout stack --match title:agents\n         \
     telepty layout tall --all-tabs --to unix:/tmp/kitty-sock"
)]
pub struct LayoutArgs {
    /// Layout to apply; without it, print the current layout of each tab
    #[arg(value_enum, value_name = "LAYOUT")]
    pub layout: Option<Layout>,
    /// Every tab of that kitty, not only the tabs holding telepty session windows
    #[arg(long, conflicts_with = "match_expr")]
    pub all_tabs: bool,
    /// Tabs chosen by a kitty match expression (id:3, title:agents, …), passed to kitty
    #[arg(long = "match", value_name = "EXPR", id = "match_expr")]
    pub match_expr: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: KittyConn,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty kitty open --all   (a window per session, in a \
     tab titled \"telepty\")\n         telepty kitty open worker-1 worker-2\n         \
     telepty kitty focus worker-1\n         telepty kitty list",
    arg_required_else_help = true
)]
pub struct KittyArgs {
    #[command(subcommand)]
    pub command: KittyCommand,
    #[command(flatten)]
    pub conn: KittyConn,
}

#[derive(Subcommand, Debug)]
pub enum KittyCommand {
    /// Open a kitty window per session (running `telepty attach ID`, titled with the id) in a
    /// tab titled "telepty", then apply the layout
    Open(OpenArgs),
    /// Focus the kitty window of a session
    Focus(FocusArgs),
    /// List the kitty windows that hold telepty sessions
    #[command(visible_alias = "ls")]
    List(KittyListArgs),
}

#[derive(Args, Debug)]
pub struct OpenArgs {
    /// Sessions to open (id or id@host)
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<String>,
    /// Every running session of the local daemon
    #[arg(long)]
    pub all: bool,
    /// Layout of the tab afterwards [default: `layout` under [kitty] in config.toml, else grid]
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub layout: Option<Layout>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FocusArgs {
    /// Session id
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KittyListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// A kitty error as a command failure: "cannot find/reach kitty" stands alone.
fn fail(action: &'static str) -> impl Fn(KittyError) -> Failure {
    move |e| {
        if e.is_connection() {
            Failure::plain(e)
        } else {
            Failure::new(&format!("{action} failed"), e)
        }
    }
}

/// Session ids of the local daemon, if one runs (never starts one).
async fn known_sessions(ctx: &mut Ctx) -> Vec<String> {
    let Ok(c) = ctx.local_client() else {
        return Vec::new();
    };
    // Only a hint for recognising windows: do not wait long for it.
    let quick = std::time::Duration::from_secs(2);
    let list = c.request("GET", "/api/sessions", None, quick).await;
    list.map(|l| session_ids(&l, false)).unwrap_or_default()
}

async fn connect(
    conn: &KittyConn,
    settings: &KittySettings,
    known: &[String],
    action: &'static str,
) -> Result<Kitty<SocketRemote>, Failure> {
    kitty::connect(&conn.options(), settings, known)
        .await
        .map_err(fail(action))
}

/// `telepty layout [LAYOUT] [--all-tabs | --match EXPR]`.
pub async fn run_layout(ctx: &mut Ctx, a: LayoutArgs) -> Result<(), Failure> {
    let settings = KittySettings::load(&Paths::from_env());
    let known = known_sessions(ctx).await;
    let k = connect(&a.conn, &settings, &known, "layout").await?;
    let sel = match (&a.match_expr, a.all_tabs) {
        (Some(m), _) => TabSelection::Match(m.clone()),
        (None, true) => TabSelection::All,
        (None, false) => TabSelection::Sessions,
    };
    match a.layout {
        None => {
            let tabs = kitty::current_layouts(&k, &sel, &known).await;
            output::json_or_lines(a.json, &tabs.map_err(fail("layout"))?);
        }
        Some(l) => {
            let changes = kitty::apply_layout(&k, &sel, l, &known).await;
            output::json_or_lines(a.json, &changes.map_err(fail("layout"))?);
        }
    }
    Ok(())
}

/// `telepty kitty open|focus|list`.
pub async fn run_kitty(ctx: &mut Ctx, a: KittyArgs) -> Result<(), Failure> {
    let settings = KittySettings::load(&Paths::from_env());
    match a.command {
        KittyCommand::Open(o) => open(ctx, &a.conn, &settings, o).await,
        KittyCommand::Focus(f) => {
            let known = known_sessions(ctx).await;
            let k = connect(&a.conn, &settings, &known, "kitty focus").await?;
            let w = kitty::focus_session(&k, &f.id, &known)
                .await
                .map_err(fail("kitty focus"))?;
            output::line(format!(
                "focused window {} of session {} (tab {})",
                w.window_id, w.session, w.tab_id
            ));
            Ok(())
        }
        KittyCommand::List(l) => {
            let known = known_sessions(ctx).await;
            let k = connect(&a.conn, &settings, &known, "kitty list").await?;
            let list = k.ls().await.map_err(fail("kitty list"))?;
            let wins = kitty::session_windows(&list, &known);
            if l.json {
                #[derive(serde::Serialize)]
                struct Listing<'a, W> {
                    kitty: String,
                    windows: &'a W,
                }
                output::json(&Listing {
                    kitty: k.describe(),
                    windows: &wins,
                });
                return Ok(());
            }
            if wins.is_empty() {
                output::line(format!(
                    "no kitty window at {} holds a telepty session",
                    k.describe()
                ));
            }
            for w in &wins {
                let tab = kitty::model::find_tab(&list, w.tab_id);
                let line = format!(
                    "{}  window {}  tab {} {:?}  layout {}",
                    w.session,
                    w.window_id,
                    w.tab_id,
                    tab.map(|t| t.title.as_str()).unwrap_or(""),
                    tab.map(|t| t.layout.as_str()).unwrap_or("?"),
                );
                if !output::line(line) {
                    break;
                }
            }
            Ok(())
        }
    }
}

async fn open(
    ctx: &mut Ctx,
    conn: &KittyConn,
    settings: &KittySettings,
    o: OpenArgs,
) -> Result<(), Failure> {
    let layout = match o.layout {
        Some(l) => l,
        None => settings.open_layout().map_err(fail("kitty open"))?,
    };
    // Which sessions (and that they exist).
    let mut sessions: Vec<String> = Vec::new();
    let known: Vec<String>;
    if o.all {
        let c = ctx.local().await?;
        let list = c.list_sessions().await.or_fail("kitty open")?;
        known = session_ids(&list, false);
        sessions = session_ids(&list, true);
        if sessions.is_empty() {
            return Err(Failure::new(
                "kitty open failed",
                "the daemon has no running session",
            ));
        }
    } else {
        for spec in &o.ids {
            let (c, target) = ctx.target(spec).await?;
            c.session(&target.id).await.or_fail("kitty open")?;
            if !sessions.contains(spec) {
                sessions.push(spec.clone());
            }
        }
        known = known_sessions(ctx).await;
    }
    let k = connect(conn, settings, &known, "kitty open").await?;
    let program = std::env::current_exe().map_err(|e| {
        Failure::new(
            "kitty open failed",
            format!("cannot find the telepty executable: {e}"),
        )
    })?;
    let req = OpenRequest {
        sessions,
        program,
        env: {
            let addr = ctx.local_client()?.addr().clone();
            kitty::attach_env(&addr.host, addr.port)
        },
        layout: Some(layout),
        tab_title: kitty::TAB_TITLE.to_string(),
    };
    let report = kitty::open_windows(&k, &req, &known)
        .await
        .map_err(fail("kitty open"))?;
    if o.json {
        output::json(&report);
        return Ok(());
    }
    for w in &report.opened {
        output::line(format!(
            "opened window {} for {} in tab {} {:?}",
            w.window_id, w.session, w.tab_id, report.tab_title
        ));
    }
    for w in &report.existing {
        output::line(format!(
            "{} already has window {} (tab {})",
            w.session, w.window_id, w.tab_id
        ));
    }
    for c in &report.layout {
        output::line(c);
    }
    Ok(())
}
