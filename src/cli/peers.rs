//! `telepty peers`: the remote daemons of `[[peers]]` in config.toml, and the multi-host
//! helpers other commands use (finding which host holds a bare session id; `list` and
//! `broadcast --all-hosts` fan out from their own modules).
//!
//! A peer that is down is reported and never holds a command up: every peer call is preceded
//! by a TCP connect probe bounded by 2 s.

use clap::{Args, Subcommand};
use futures_util::future::join_all;
use serde::Serialize;

use super::Ctx;
use super::output::{self, Failure, s};
use crate::client::peers::{self as peer_config, PEER_CONNECT_TIMEOUT};
use crate::client::{self, Client, ClientError, Host, Peer, Target};
use crate::config::Paths;

pub use crate::client::LOCAL_HOST;

#[derive(Args, Debug)]
#[command(
    after_help = "Example: telepty peers add lab http://10.0.0.2:3848 --token <lab's authToken>\n\
     More:    telepty peers check\n         telepty inject worker@lab run the tests"
)]
pub struct PeersArgs {
    #[command(subcommand)]
    pub cmd: Option<PeersCmd>,
    /// Print JSON
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PeersCmd {
    /// List configured (and discovered) peers [default]
    #[command(visible_alias = "ls")]
    List,
    /// Add or replace a peer
    Add(PeersAddArgs),
    /// Remove a peer
    #[command(visible_alias = "rm")]
    Remove {
        /// Peer name
        name: String,
    },
    /// Check that each peer answers and accepts its token
    Check,
}

#[derive(Args, Debug)]
pub struct PeersAddArgs {
    /// Name used in id@NAME (A-Z a-z 0-9 . _ -)
    pub name: String,
    /// The peer daemon: http://host:port, host:port or host (port 3848)
    pub url: String,
    /// The peer's token (its ~/.telepty/config.json authToken)
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TELEPTY_PEER_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// A peer given as a bare name (no scheme, no port) must at least resolve: `peers add x
/// notaurl` is far more often a slip than a LAN host. Explicit URLs are taken as given (the
/// machine may be down right now).
async fn check_resolvable(given: &str, url: &str) -> Result<(), Failure> {
    let g = given.trim();
    let bare = !g.contains("://") && !g.contains(':');
    if !bare || g.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let authority = url.trim_start_matches("http://");
    let resolved = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::lookup_host(authority.to_string()),
    )
    .await;
    if resolved.is_ok_and(|r| r.is_ok_and(|mut addrs| addrs.next().is_some())) {
        return Ok(());
    }
    Err(Failure::new(
        "peers add failed",
        format!("{g}: not a URL and no such host (give http://HOST[:PORT] of the peer's daemon)"),
    ))
}

pub async fn run_peers(ctx: &mut Ctx, a: PeersArgs) -> Result<(), Failure> {
    let paths = Paths::from_env();
    match a.cmd.unwrap_or(PeersCmd::List) {
        PeersCmd::List => list_peers(ctx.env(), &paths, a.json).await,
        PeersCmd::Add(add) => {
            peer_config::validate_name(&add.name).map_err(Failure::usage)?;
            if add.name.eq_ignore_ascii_case(LOCAL_HOST) {
                return Err(Failure::usage(format!(
                    "{LOCAL_HOST:?} is reserved for this machine's daemon; pick another peer name"
                )));
            }
            let url = peer_config::normalize_url(&add.url).map_err(Failure::usage)?;
            check_resolvable(&add.url, &url).await?;
            let token = add
                .token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty());
            let has_token = token.is_some();
            let peer = Peer {
                name: add.name.clone(),
                url: url.clone(),
                token,
            };
            let replaced = crate::config::add_peer(&paths.config_toml(), &peer)
                .map_err(|e| Failure::new("peers add failed", e))?;
            if a.json {
                output::json(&PeerOut {
                    url: Some(&url),
                    token: Some(has_token),
                    replaced: Some(replaced),
                    name: &peer.name,
                    ..Default::default()
                });
            } else {
                let verb = if replaced { "Updated" } else { "Added" };
                output::line(format!("{verb} peer {} → {url}", peer.name));
                if !has_token && !client::ssh::is_ssh_url(&url) {
                    eprintln!(
                        "telepty: note: peer {} has no token; requests will carry TELEPTY_TOKEN or this machine's token, which that daemon must accept",
                        peer.name
                    );
                }
            }
            Ok(())
        }
        PeersCmd::Remove { name } => {
            // An ssh peer's tunnel ends with it.
            let known = peer_config::configured(ctx.env()).unwrap_or_default();
            if let Some(p) = known.iter().find(|p| p.name.eq_ignore_ascii_case(&name)) {
                if let Ok(t) = client::ssh::SshPeer::new(&p.url, &paths) {
                    t.stop().await;
                }
            }
            let removed = crate::config::remove_peer(&paths.config_toml(), &name)
                .map_err(|e| Failure::new("peers remove failed", e))?;
            if !removed {
                return Err(Failure::new(
                    "peers remove failed",
                    format!("no peer named {name:?}"),
                ));
            }
            if a.json {
                output::json(&PeerOut {
                    removed: Some(true),
                    name: &name,
                    ..Default::default()
                });
            } else {
                output::line(format!("Removed peer {name}"));
            }
            Ok(())
        }
        PeersCmd::Check => check_peers(ctx, a.json).await,
    }
}

/// A peer in `peers list|add|remove --json`.
#[derive(Default, Serialize)]
struct PeerOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<bool>,
}

/// A peer in `peers check --json`.
#[derive(Default, Serialize)]
struct PeerCheck<'a> {
    name: &'a str,
    url: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn list_peers(env: &client::ClientEnv, paths: &Paths, json: bool) -> Result<(), Failure> {
    // Report a broken config.toml here (elsewhere it silently means "no peers").
    peer_config::configured(env).map_err(|e| Failure::new("peers failed", e))?;
    let known = peer_config::load_known(env).await;
    if json {
        let arr: Vec<PeerOut> = known
            .iter()
            .map(|k| PeerOut {
                url: Some(&k.peer.url),
                token: Some(k.peer.token.is_some()),
                source: Some(k.source.into()),
                name: &k.peer.name,
                ..Default::default()
            })
            .collect();
        output::json(&arr);
        return Ok(());
    }
    if known.is_empty() {
        output::line(format!(
            "No peers (add one with: telepty peers add NAME URL --token T; file: {})",
            paths.config_toml().display()
        ));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = known
        .iter()
        .map(|k| {
            vec![
                k.peer.name.clone(),
                k.peer.url.clone(),
                if k.peer.token.is_some() { "yes" } else { "no" }.to_string(),
                <&str>::from(k.source).to_string(),
            ]
        })
        .collect();
    output::text_block(&output::table(&["NAME", "URL", "TOKEN", "SOURCE"], &rows));
    Ok(())
}

async fn check_peers(ctx: &mut Ctx, json: bool) -> Result<(), Failure> {
    peer_config::configured(ctx.env()).map_err(|e| Failure::new("peers check failed", e))?;
    let known = peer_config::load_known(ctx.env()).await;
    if known.is_empty() {
        if json {
            output::json(&[(); 0]);
        } else {
            output::line("No peers.");
        }
        return Ok(());
    }
    let base = ctx.local_client().ok();
    let checks = known.iter().map(|k| {
        let env = ctx.env().clone();
        let base = base.clone();
        async move {
            let addr = match peer_config::peer_addr(&k.peer, &env) {
                Ok(a) => a,
                Err(e) => return (k, Err(e)),
            };
            let c = match base {
                Some(b) => b.with_addr(addr),
                None => Client::new(addr),
            };
            (k, check_one(&c).await)
        }
    });
    let results = join_all(checks).await;
    let mut failed = 0;
    let mut out = Vec::new();
    for (k, r) in &results {
        match r {
            Ok((version, n)) => {
                out.push(PeerCheck {
                    version: Some(version),
                    sessions: Some(*n),
                    name: &k.peer.name,
                    url: &k.peer.url,
                    ok: true,
                    ..Default::default()
                });
                if !json {
                    output::line(format!(
                        "ok   {}  {}  v{version}, {n} sessions",
                        k.peer.name, k.peer.url
                    ));
                }
            }
            Err(e) => {
                failed += 1;
                let why = describe_peer_error(e);
                out.push(PeerCheck {
                    code: Some(e.code().unwrap_or("UNREACHABLE")),
                    error: Some(why.clone()),
                    name: &k.peer.name,
                    url: &k.peer.url,
                    ..Default::default()
                });
                if !json {
                    output::line(format!("FAIL {}  {}  {why}", k.peer.name, k.peer.url));
                }
            }
        }
    }
    if json {
        output::json(&out);
    }
    if failed > 0 {
        return Err(Failure::new(
            "peers check failed",
            format!("{failed} of {} peers failed", results.len()),
        ));
    }
    Ok(())
}

/// Health (no token needed) then the session list (token needed): (version, session count).
async fn check_one(c: &Client) -> Result<(String, usize), ClientError> {
    peer_config::probe(c.addr(), PEER_CONNECT_TIMEOUT).await?;
    let health = c.health(client::REQUEST_TIMEOUT).await?;
    let list = c.list_sessions().await?;
    let n = list.as_array().map(Vec::len).unwrap_or(0);
    Ok((s(&health, "version").to_string(), n))
}

/// One line for a peer failure, with a hint for a refused token.
pub(crate) fn describe_peer_error(e: &ClientError) -> String {
    match e.code() {
        Some("PERMISSION_DENIED") => {
            format!(
                "{e} — the peer's token is missing or wrong (telepty peers add NAME URL --token T)"
            )
        }
        _ => e.to_string(),
    }
}

impl Ctx {
    /// Configured and discovered peers, loaded once per invocation.
    pub(crate) async fn peer_list(&mut self) -> Vec<Peer> {
        self.conn.peers().await
    }

    /// This machine's daemon (started on demand) and one client per peer.
    pub(crate) async fn hosts(&mut self) -> Result<Vec<Host>, Failure> {
        self.conn.hosts().await.map_err(super::connect_failure)
    }

    /// A session argument for commands that address an existing session (inject,
    /// read-screen, …); see [`client::Connector::session_target`].
    pub(crate) async fn session_target(
        &mut self,
        spec: &str,
        action: &str,
    ) -> Result<(Client, Target), Failure> {
        self.conn.session_target(spec).await.map_err(|e| match e {
            e @ (client::ConnectError::Unreachable { .. }
            | client::ConnectError::Ambiguous { .. }) => {
                Failure::new(&format!("{action} failed"), e)
            }
            e => super::connect_failure(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses() {
        let c = Client::new(client::DaemonAddr {
            host: "127.0.0.1".into(),
            port: 1,
            token: None,
            tunnel: None,
        });
        let local = Host {
            label: LOCAL_HOST.into(),
            client: c.clone(),
            local: true,
            deadline: std::time::Duration::from_secs(3),
            health: None,
        };
        let peer = Host {
            label: "lab".into(),
            client: c,
            local: false,
            deadline: std::time::Duration::from_secs(3),
            health: None,
        };
        assert_eq!(local.address("w"), "w");
        assert_eq!(peer.address("w"), "w@lab");
    }

    #[test]
    fn permission_errors_get_a_hint() {
        let e = ClientError::from_response(
            401,
            br#"{"success":false,"code":"PERMISSION_DENIED","error":"Unauthorized: Invalid or missing token."}"#,
        );
        let d = describe_peer_error(&e);
        assert!(d.contains("Unauthorized: Invalid or missing token."), "{d}");
        assert!(d.contains("--token"), "{d}");
    }
}
