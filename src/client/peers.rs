//! Remote daemons the CLI knows by name: `[[peers]]` in `~/.config/telepty/config.toml`
//! (`name`, `url`, `token`; API.md §14/§15), plus, when `discover_tailscale = true`, the online
//! machines of `tailscale status --json` (best effort).
//!
//! The entries are read by `crate::config` (part of the one [`crate::config::Config`]) and
//! written by `crate::config::add_peer` / `remove_peer`, which keep the file's comments.
//! Tokens are never printed.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::ClientError;
use super::addr::{self, ClientEnv, DaemonAddr, Peer};

/// How long a peer gets to accept a TCP connection before it counts as down.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `fut` on the peer at `addr`, within `deadline` in all ([`ClientEnv::peer_deadline`]): when
/// the answer only completes a picture (a list, a bare id's search, a bus), a hung daemon that
/// accepts connections and never answers must not hold every command for the 10 s request
/// timeout.
pub async fn within_deadline<T>(
    addr: &DaemonAddr,
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Timeout {
                addr: addr.authority(),
                after: deadline,
            })
        })
}
/// How long `tailscale status --json` may take.
const TAILSCALE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a peer entry came from (`config`, `tailscale` in `peers list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum PeerSource {
    /// `[[peers]]` in config.toml
    Config,
    /// `tailscale status --json` (`discover_tailscale = true`)
    Tailscale,
}

/// A peer and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPeer {
    pub peer: Peer,
    pub source: PeerSource,
}

/// Every peer the CLI should use: configured ones first, then discovered Tailscale machines
/// whose name no configured peer already uses. Problems are silent here (a broken config
/// simply yields no peers); `telepty peers list` reports them.
pub async fn load(env: &ClientEnv) -> Vec<Peer> {
    load_known(env).await.into_iter().map(|k| k.peer).collect()
}

/// Like [`load`], keeping where each peer came from.
pub async fn load_known(env: &ClientEnv) -> Vec<KnownPeer> {
    let mut out: Vec<KnownPeer> = env
        .config
        .peers
        .iter()
        .map(|peer| KnownPeer {
            peer: peer.clone(),
            source: PeerSource::Config,
        })
        .collect();
    if env.config.discover_tailscale {
        let port = env.default_port().unwrap_or(addr::DEFAULT_PORT);
        for peer in discover_tailscale(port).await {
            if !out
                .iter()
                .any(|k| k.peer.name.eq_ignore_ascii_case(&peer.name))
            {
                out.push(KnownPeer {
                    peer,
                    source: PeerSource::Tailscale,
                });
            }
        }
    }
    out
}

/// The configured `[[peers]]` only (no discovery), or why config.toml cannot be read.
pub fn configured(env: &ClientEnv) -> Result<Vec<Peer>, String> {
    match &env.file_error {
        Some(e) => Err(e.clone()),
        None => Ok(env.config.peers.clone()),
    }
}

/// Peer names are used in `id@name`, so they follow the session-id charset.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid peer name {name:?}: use 1-128 characters from A-Z a-z 0-9 . _ -"
        ))
    }
}

/// Normalize a peer URL: `host`, `host:port`, `http://host[:port][/]` → `http://host:port`
/// (port 3848 when none is given); `ssh://[user@]host[:port][?port=N]` is checked and kept.
/// Only plain `http://` is spoken over the network.
pub fn normalize_url(url: &str) -> Result<String, String> {
    let u = url.trim();
    if super::ssh::is_ssh_url(u) {
        super::ssh::parse_url(u)?;
        return Ok(u.to_string());
    }
    if u.starts_with("https://") {
        return Err(format!(
            "{u}: https is not supported (telepty daemons speak plain HTTP; put TLS in front and give its http address)"
        ));
    }
    let rest = u.strip_prefix("http://").unwrap_or(u);
    if rest.contains("://") {
        return Err(format!("{u}: only http:// and ssh:// URLs are supported"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = addr::parse_host_port(authority).map_err(|e| format!("{u}: {e}"))?;
    if host.is_empty() {
        return Err(format!("{u}: no host"));
    }
    let port = port.unwrap_or(addr::DEFAULT_PORT);
    let shown = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("http://{shown}:{port}"))
}

/// The daemon address of a peer: its URL's host and port (80 when the URL has none, as in
/// `id@host` resolution) and its token, else `TELEPTY_TOKEN`, else the local token (§15).
pub fn peer_addr(peer: &Peer, env: &ClientEnv) -> Result<DaemonAddr, ClientError> {
    if super::ssh::is_ssh_url(&peer.url) {
        return addr::ssh_addr(peer);
    }
    let (host, port) = peer.host_port().ok_or_else(|| {
        ClientError::BadAddress(format!("peer {}: invalid url {:?}", peer.name, peer.url))
    })?;
    Ok(DaemonAddr {
        host,
        port,
        token: peer.token.clone().or_else(|| env.token()),
        tunnel: None,
    })
}

/// Can a TCP connection to the daemon (an ssh peer's tunnel) be opened within `within`? A down or unreachable peer
/// fails fast with [`ClientError::Connect`] instead of holding a command up.
pub async fn probe(addr: &DaemonAddr, within: Duration) -> Result<(), ClientError> {
    if let Some(t) = &addr.tunnel {
        return t.ensure(within).await;
    }
    let target = (addr.host.as_str(), addr.port);
    let reason = match tokio::time::timeout(within, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => super::error::tidy_reason(&e.to_string()),
        Err(_) => format!("no answer within {} s", within.as_secs()),
    };
    Err(ClientError::Connect {
        addr: addr.authority(),
        reason,
    })
}

/// Online machines of the tailnet, as peers named by their host name with URL
/// `http://<tailscale IPv4>:<port>` and no token. Empty when the binary is absent, fails or
/// takes longer than 2 s.
pub async fn discover_tailscale(port: u16) -> Vec<Peer> {
    let status = run_tailscale_status().await;
    status.map_or_else(Vec::new, |v| parse_tailscale_status(&v, port))
}

/// Runs on the async runtime without blocking it (tokio's child reaper); a `tailscale` that
/// takes too long is killed when the timed-out future drops it.
async fn run_tailscale_status() -> Option<Value> {
    let child = tokio::process::Command::new("tailscale")
        .args(["status", "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let out = tokio::time::timeout(TAILSCALE_TIMEOUT, child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// The peers of a `tailscale status --json` document (pure, for tests).
pub fn parse_tailscale_status(status: &Value, port: u16) -> Vec<Peer> {
    let Some(peers) = status.get("Peer").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out: Vec<Peer> = peers
        .values()
        .filter(|p| p.get("Online").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|p| {
            let host = p
                .get("HostName")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .or_else(|| {
                    p.get("DNSName")
                        .and_then(Value::as_str)
                        .and_then(|d| d.split('.').next())
                        .filter(|h| !h.is_empty())
                        .map(str::to_string)
                })?;
            let name: String = host
                .to_ascii_lowercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            validate_name(&name).ok()?;
            let ips: Vec<IpAddr> = p
                .get("TailscaleIPs")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(|ip| ip.as_str()?.parse().ok())
                .collect();
            let ip = ips.iter().find(|ip| ip.is_ipv4()).or(ips.first())?;
            let url = match ip {
                IpAddr::V4(v4) => format!("http://{v4}:{port}"),
                IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
            };
            Some(Peer {
                name,
                url,
                token: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name.eq_ignore_ascii_case(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize_url("box").unwrap(), "http://box:3848");
        assert_eq!(normalize_url("box:4000").unwrap(), "http://box:4000");
        assert_eq!(
            normalize_url("http://10.0.0.2:3900/").unwrap(),
            "http://10.0.0.2:3900"
        );
        assert_eq!(
            normalize_url("http://[fd7a::1]:3900").unwrap(),
            "http://[fd7a::1]:3900"
        );
        assert!(normalize_url("https://box").is_err());
        assert!(normalize_url("ftp://box").is_err());
        assert!(normalize_url("box:x").is_err());
        assert!(normalize_url("").is_err());
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("lab-2.x_y").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a@b").is_err());
        assert!(validate_name("a:1").is_err());
    }

    #[test]
    fn peer_addresses() {
        let env = ClientEnv {
            local_token: Some("local".into()),
            ..Default::default()
        };
        let p = Peer {
            name: "lab".into(),
            url: "http://10.1.2.3:3900".into(),
            token: None,
        };
        let a = peer_addr(&p, &env).unwrap();
        assert_eq!(a.authority(), "10.1.2.3:3900");
        assert_eq!(a.token.as_deref(), Some("local"));
        let p = Peer {
            token: Some("t".into()),
            url: "http://box".into(),
            ..p
        };
        let a = peer_addr(&p, &env).unwrap();
        assert_eq!((a.port, a.token.as_deref()), (80, Some("t")));
    }

    #[test]
    fn tailscale_status_is_parsed() {
        let v = json!({
            "Self": {"HostName": "me", "TailscaleIPs": ["100.64.0.1"]},
            "Peer": {
                "nodekey:a": {"HostName": "Lab Box", "DNSName": "lab-box.tail.ts.net.",
                               "TailscaleIPs": ["fd7a:115c:a1e0::2", "100.64.0.2"], "Online": true},
                "nodekey:b": {"HostName": "off", "TailscaleIPs": ["100.64.0.3"], "Online": false},
                "nodekey:c": {"HostName": "", "DNSName": "v6only.tail.ts.net.",
                               "TailscaleIPs": ["fd7a:115c:a1e0::4"], "Online": true}
            }
        });
        let p = parse_tailscale_status(&v, 3848);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].name, "lab-box");
        assert_eq!(p[0].url, "http://100.64.0.2:3848");
        assert_eq!(p[0].token, None);
        assert_eq!(p[1].name, "v6only");
        assert_eq!(p[1].url, "http://[fd7a:115c:a1e0::4]:3848");
        assert!(parse_tailscale_status(&json!({}), 3848).is_empty());
    }

    #[tokio::test]
    async fn probe_fails_fast_on_a_closed_port() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let a = DaemonAddr {
            host: "127.0.0.1".into(),
            port,
            token: None,
            tunnel: None,
        };
        let t = std::time::Instant::now();
        let e = probe(&a, PEER_CONNECT_TIMEOUT).await.unwrap_err();
        assert!(e.is_connect());
        assert!(t.elapsed() < PEER_CONNECT_TIMEOUT);
    }
}
