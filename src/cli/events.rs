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
    /// Merge the buses of this machine and every peer, each line with its host
    #[arg(long)]
    pub all_hosts: bool,
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
    if a.all_hosts {
        return monitor_all_hosts(ctx, a.all).await;
    }
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

/// One bus per host, merged as the events arrive. A host whose bus cannot be reached or
/// drops is said once on stderr and tried again (every 1 s, up to every 30 s), so one down
/// machine never holds up the others' lines.
async fn monitor_all_hosts(ctx: &mut Ctx, all: bool) -> Result<(), Failure> {
    let hosts = ctx.hosts().await?;
    let width = hosts.iter().map(|h| h.label.len()).max().unwrap_or(5);
    if std::io::stderr().is_terminal() {
        let names: Vec<&str> = hosts.iter().map(|h| h.label.as_str()).collect();
        eprintln!(
            "Watching the telepty buses of {} (Ctrl-C to stop)",
            names.join(", ")
        );
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Value)>(1024);
    for h in hosts {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut backoff = std::time::Duration::from_secs(1);
            let mut said = false;
            loop {
                let why = match crate::client::peers::within_deadline(
                    h.client.addr(),
                    h.deadline,
                    Bus::connect(h.client.addr()),
                )
                .await
                {
                    Ok(mut bus) => {
                        if said {
                            eprintln!("telepty: monitor: {}: bus back", h.label);
                        }
                        said = false;
                        backoff = std::time::Duration::from_secs(1);
                        loop {
                            match bus.next_event().await {
                                Ok(Some(ev)) => {
                                    if tx.send((h.label.clone(), ev)).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => break "the daemon closed the bus".to_string(),
                                Err(e) => break e.to_string(),
                            }
                        }
                    }
                    Err(e) => e.to_string(),
                };
                if !said {
                    eprintln!("telepty: monitor: {}: {why}; retrying", h.label);
                    said = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
            }
        });
    }
    drop(tx);
    while let Some((host, ev)) = rx.recv().await {
        if let Some(text) = format_event(&ev, all) {
            let clock = output::clock(event_time(&ev));
            if !output::line(format!("{clock} {host:<width$} {text}")) {
                return Ok(());
            }
        }
    }
    Ok(())
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
