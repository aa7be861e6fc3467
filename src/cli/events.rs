//! Bus followers: monitor (readable lines) and listen (JSON lines).

use std::io::IsTerminal;
use std::time::SystemTime;

use clap::Args;
use serde_json::Value;

use super::Ctx;
use super::output::{self, Failure, OrFail};
use crate::client::{Bus, Client};
use crate::wire::describe::{Style, describe};

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty monitor --all")]
pub struct MonitorArgs {
    /// Also show the periodic session_health events
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Example: telepty listen | jq -c 'select(.type==\"session_exit\")'")]
pub struct ListenArgs {}

async fn open_bus(ctx: &mut Ctx, what: &str) -> Result<(Bus, Client), Failure> {
    let client = ctx.local().await?;
    let bus = Bus::connect(client.addr()).await.or_fail(what)?;
    Ok((bus, client))
}

/// The next bus event; the end of the connection stops the command.
async fn next_event(bus: &mut Bus, what: &str) -> Result<Value, Failure> {
    let why = match bus.next_event().await {
        Ok(Some(ev)) => return Ok(ev),
        Ok(None) => "the daemon closed the bus connection".to_string(),
        Err(e) => e.to_string(),
    };
    Err(Failure::new(&format!("{what} stopped"), why))
}

/// One readable line for a bus event (without the time), or `None` to skip it.
pub(crate) fn format_event(ev: &Value, all: bool) -> Option<String> {
    describe(ev, Style::Monitor { all })
}

fn event_time(ev: &Value) -> SystemTime {
    ev.get("timestamp")
        .and_then(Value::as_str)
        .and_then(crate::util::parse_iso)
        .unwrap_or_else(SystemTime::now)
}

pub async fn monitor(ctx: &mut Ctx, a: MonitorArgs) -> Result<(), Failure> {
    let (mut bus, client) = open_bus(ctx, "monitor").await?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "Watching the telepty bus at {} (Ctrl-C to stop)",
            client.addr().authority()
        );
    }
    loop {
        let ev = next_event(&mut bus, "monitor").await?;
        if let Some(text) = format_event(&ev, a.all)
            && !output::line(format!("{} {text}", output::clock(event_time(&ev))))
        {
            bus.close().await;
            return Ok(());
        }
    }
}

pub async fn listen(ctx: &mut Ctx, _a: ListenArgs) -> Result<(), Failure> {
    let (mut bus, _client) = open_bus(ctx, "listen").await?;
    loop {
        let ev = next_event(&mut bus, "listen").await?;
        // The JSON line carries the count; a reader watching stderr hears it too (first, so
        // the note is out before anyone sees the line).
        if ev.get("type").and_then(Value::as_str) == Some("bus_gap") {
            let n = ev.get("dropped").and_then(Value::as_u64).unwrap_or(0);
            eprintln!("telepty listen: {n} bus events were dropped (this client fell behind)");
        }
        if !output::line(ev.to_string()) {
            bus.close().await;
            return Ok(());
        }
    }
}
