//! `telepty pair`: two machines become each other's peers in one step (issue 13). On one,
//! `telepty pair` shows a one-time code and waits; on the other, `telepty pair CODE@host`
//! claims it. Each side keeps the other as a peer with its token (config.toml), so injects,
//! replies and events go both ways. The code is the only credential, for 5 minutes, once.

use std::time::Duration;

use clap::Args;

use super::Ctx;
use super::output::{self, Failure, OrFail};
use crate::client::{self, Client, DaemonAddr};
use crate::config::{Paths, Peer};
use crate::wire::request::PairClaim;
use crate::wire::response::{PairClaimed, PairStarted, PairStatus};

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty pair   (then on the other machine: telepty pair CODE@this-host)"
)]
pub struct PairArgs {
    /// The code another machine's `telepty pair` shows, as CODE@HOST[:PORT]; without it,
    /// show a code here and wait for the other machine
    pub code_at_host: Option<String>,
}

pub async fn pair(ctx: &mut Ctx, a: PairArgs) -> Result<(), Failure> {
    match a.code_at_host {
        None => offer(ctx).await,
        Some(spec) => claim(ctx, &spec).await,
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value, what: &str) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::new(what, format!("unexpected answer: {e}")))
}

/// Show a code and wait until it is claimed (or expires).
async fn offer(ctx: &mut Ctx) -> Result<(), Failure> {
    let local = ctx.local().await?;
    let started: PairStarted = typed(
        local
            .send(
                "POST",
                "/api/pair",
                &serde_json::Map::new(),
                client::REQUEST_TIMEOUT,
            )
            .await
            .or_fail("pair")?,
        "pair",
    )?;
    let port = local.addr().port;
    let here = match port {
        client::addr::DEFAULT_PORT => crate::config::machine_id(),
        p => format!("{}:{p}", crate::config::machine_id()),
    };
    output::line(format!(
        "Pairing code {} (valid {} minutes, once). On the other machine:\n  telepty pair {}@{here}",
        started.code,
        started.expires_in_s / 60,
        started.code
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(started.expires_in_s);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let st: PairStatus = typed(local.get("/api/pair").await.or_fail("pair")?, "pair")?;
        if let Some(name) = st.paired {
            output::line(format!(
                "Paired with {name}: it is a peer here, and this machine is one there."
            ));
            return Ok(());
        }
        if !st.pending || tokio::time::Instant::now() >= deadline {
            return Err(Failure::new(
                "pair",
                "the code expired (or was guessed wrong too often) before another machine claimed it",
            ));
        }
    }
}

/// Claim `CODE@HOST[:PORT]`, then keep that machine as a peer here.
async fn claim(ctx: &mut Ctx, spec: &str) -> Result<(), Failure> {
    let (code, host) = spec
        .split_once('@')
        .filter(|(c, h)| !c.is_empty() && !h.is_empty())
        .ok_or_else(|| Failure::usage(format!("{spec}: give CODE@HOST[:PORT]")))?;
    let (host, port) = client::addr::parse_host_port(host).map_err(Failure::usage)?;
    let port = port.unwrap_or(client::addr::DEFAULT_PORT);
    let local = ctx.local().await?;
    let body = PairClaim {
        code: code.to_string(),
        name: crate::config::machine_id(),
        port: local.addr().port,
        token: ctx
            .env()
            .token()
            .ok_or_else(|| Failure::plain("pair: this machine's daemon has no token yet"))?,
    };
    let there = Client::new(DaemonAddr {
        host: host.clone(),
        port,
        token: None,
        tunnel: None,
    });
    let answer: PairClaimed = typed(
        there
            .send("POST", "/api/pair/claim", &body, client::REQUEST_TIMEOUT)
            .await
            .or_fail("pair")?,
        "pair",
    )?;
    let shown = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let peer = Peer {
        name: answer.name.clone(),
        url: format!("http://{shown}:{port}"),
        token: Some(answer.token),
    };
    let paths = Paths::from_env();
    crate::config::add_peer(&paths.config_toml(), &peer).map_err(|e| Failure::new("pair", e))?;
    output::line(format!("Paired with {} (both ways).", answer.name));
    if crate::client::addr::is_local_host(&local.addr().host)
        && crate::config::DaemonState::running(&paths)
            .is_some_and(|s| crate::client::addr::is_local_host(&s.host))
    {
        eprintln!(
            "telepty: note: this machine's daemon listens on loopback only, so {} cannot reach it; restart it with --host 0.0.0.0 (or have {} add this machine as an ssh:// peer)",
            answer.name, answer.name
        );
    }
    Ok(())
}
