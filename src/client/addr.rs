//! Where a daemon lives and which token it gets (API.md §15): `TELEPTY_HOST`/`TELEPTY_PORT`,
//! else `[daemon] host`/`port` of config.toml, else 127.0.0.1:3848; `TELEPTY_TOKEN` or the
//! local token file; and `id@host` targets.

use std::net::IpAddr;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::ClientError;
pub use crate::config::Peer;
use crate::config::{self, Config, Paths};
use crate::util::env_nonempty;

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 3848;

/// One daemon: `http://<host>:<port>`, plus the token to present (if any).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DaemonAddr {
    /// Host name or IP literal, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    /// An `ssh://` peer: the daemon is reached only through this tunnel's socket (`host` and
    /// `port` are then the remote daemon's loopback address, what its `Host` check expects).
    pub tunnel: Option<Box<super::ssh::SshPeer>>,
}

impl std::fmt::Debug for DaemonAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("DaemonAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("tunnel", &self.tunnel.as_ref().map(|t| t.label()))
            .finish()
    }
}

impl DaemonAddr {
    /// `host:port`, with IPv6 literals bracketed (an ssh peer's `ssh://…`): what error
    /// messages show.
    pub fn authority(&self) -> String {
        match &self.tunnel {
            Some(t) => t.label(),
            None => self.host_port(),
        }
    }

    /// `host:port` of URLs and the `Host` header.
    fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.host_port())
    }

    /// `ws://host:port<path>` with `?token=` appended when a token is known. `path` may
    /// already carry a query string.
    pub fn ws_url(&self, path: &str) -> String {
        let mut url = format!("ws://{}{}", self.host_port(), path);
        if let Some(tok) = &self.token {
            url.push(if path.contains('?') { '&' } else { '?' });
            url.push_str("token=");
            url.push_str(&encode_component(tok));
        }
        url
    }

    /// Loopback targets are the only ones for which the CLI may start a daemon.
    pub fn is_local(&self) -> bool {
        self.tunnel.is_none() && is_local_host(&self.host)
    }

    /// The unix socket of a daemon on this machine (this HOME's, for this port): what the
    /// owner's tools use before TCP. `TELEPTY_NO_UNIX_SOCKET=1` keeps them on TCP.
    pub fn local_socket(&self) -> Option<PathBuf> {
        let off = env_nonempty("TELEPTY_NO_UNIX_SOCKET").is_some();
        (self.is_local() && !off).then(|| Paths::from_env().daemon_socket(self.port))
    }
}

/// The address to connect to for a daemon bound to `bind`: the loopback address of the same
/// family for an unspecified one (`0.0.0.0` → `127.0.0.1`, `::` → `::1`), else `bind` itself
/// (without brackets).
pub fn connect_host(bind: &str) -> String {
    let bare = bind.trim().trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => DEFAULT_HOST.to_string(),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => "::1".to_string(),
        _ => bare.to_string(),
    }
}

pub fn is_local_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client-side environment, captured once (and injectable in tests).
///
/// Precedence for the local daemon: `TELEPTY_HOST` / `TELEPTY_PORT`, then `[daemon] host` /
/// `port` of config.toml, then 127.0.0.1:3848. The daemon's own `HOST` / `PORT` variables are
/// not the client's.
#[derive(Clone, Debug, Default)]
pub struct ClientEnv {
    /// `TELEPTY_HOST`
    pub host: Option<String>,
    /// `TELEPTY_PORT` (unparsed)
    pub port: Option<String>,
    /// `TELEPTY_TOKEN`
    pub token: Option<String>,
    /// `authToken` of `~/.telepty/config.json` (read only when `TELEPTY_TOKEN` is unset).
    pub local_token: Option<String>,
    /// The configuration files over the defaults (no environment: the daemon's `HOST`/`PORT`
    /// are not the client's): `daemon_file`, `peers`, `discover_tailscale`, `kitty`.
    pub config: Config,
    /// Why config.toml is invalid (the error naming file, line and key). Resolving the
    /// daemon's address then fails with it rather than silently using defaults.
    pub file_error: Option<String>,
    /// Where this HOME's running daemon really listens (its state file, its pid alive): the
    /// default when nothing names an address, so a daemon started with `HOST`/`PORT` of its
    /// own is found, not doubled.
    pub running: Option<(String, u16)>,
}

impl ClientEnv {
    pub fn from_env() -> ClientEnv {
        let token = env_nonempty("TELEPTY_TOKEN");
        let local_token = if token.is_none() {
            config::read_token(&Paths::from_env())
        } else {
            None
        };
        let (config, file_error) = match Config::load_files(&Paths::from_env()) {
            Ok(c) => (c, None),
            Err(e) => (Config::default(), Some(e.to_string())),
        };
        let running = config::DaemonState::running(&Paths::from_env())
            .map(|st| (connect_host(&st.host), st.port));
        ClientEnv {
            host: env_nonempty("TELEPTY_HOST"),
            port: env_nonempty("TELEPTY_PORT"),
            token,
            local_token,
            config,
            file_error,
            running,
        }
    }

    /// An invalid config.toml, as the error every address resolution returns.
    fn check_file(&self) -> Result<(), ClientError> {
        match &self.file_error {
            Some(e) => Err(ClientError::Config(e.clone())),
            None => Ok(()),
        }
    }

    /// `TELEPTY_PORT`, else `[daemon] port` of config.toml, else 3848.
    pub fn default_port(&self) -> Result<u16, ClientError> {
        self.check_file()?;
        match &self.port {
            None => Ok(self.config.daemon_file.port.unwrap_or(DEFAULT_PORT)),
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                ClientError::BadAddress(format!("TELEPTY_PORT is not a valid port: {p:?}"))
            }),
        }
    }

    /// The token sent when no peer entry supplies one: `TELEPTY_TOKEN`, else the local token.
    /// `TELEPTY_PEER_DEADLINE_MS`, else `peer_deadline_ms` of config.toml, else 2.5 s (each
    /// within 100 ms – 60 s).
    pub fn peer_deadline(&self) -> std::time::Duration {
        let ms = env_nonempty("TELEPTY_PEER_DEADLINE_MS")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(self.config.peer_deadline_ms);
        std::time::Duration::from_millis(ms.clamp(100, 60_000))
    }

    pub fn token(&self) -> Option<String> {
        self.token.clone().or_else(|| self.local_token.clone())
    }

    /// The daemon the CLI talks to when no `@host` is given: `TELEPTY_HOST` (which may carry
    /// a `:port`), else `[daemon] host` of config.toml (an unspecified bind address such as
    /// `0.0.0.0` or `::` means its loopback), else 127.0.0.1; the port as [`Self::default_port`].
    pub fn local_addr(&self) -> Result<DaemonAddr, ClientError> {
        self.check_file()?;
        let named = self.host.is_some()
            || self.port.is_some()
            || self.config.daemon_file.host.is_some()
            || self.config.daemon_file.port.is_some();
        if let (false, Some((host, port))) = (named, &self.running) {
            return Ok(DaemonAddr {
                host: host.clone(),
                port: *port,
                token: self.token(),
                tunnel: None,
            });
        }
        let (host, port) = match (&self.host, &self.config.daemon_file.host) {
            (Some(h), _) => parse_host_port(h)?,
            (None, Some(h)) => (connect_host(h), None),
            (None, None) => (DEFAULT_HOST.to_string(), None),
        };
        let port = port.map_or_else(|| self.default_port(), Ok)?;
        Ok(DaemonAddr {
            host,
            port,
            token: self.token(),
            tunnel: None,
        })
    }
}

impl Peer {
    /// Host and port of the peer's URL (port 80 when the URL has none).
    pub(super) fn host_port(&self) -> Option<(String, u16)> {
        let rest = self.url.trim().strip_prefix("http://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = parse_host_port(authority).ok()?;
        if host.is_empty() {
            return None;
        }
        Some((host, port.unwrap_or(80)))
    }
}

/// The address of an `ssh://` peer: its remote daemon's loopback port, through its tunnel.
/// The remote daemon takes the tunnel's connections as its owner's; a token is sent only when
/// the peer names one (never this machine's own).
pub fn ssh_addr(peer: &Peer) -> Result<DaemonAddr, ClientError> {
    let tunnel = super::ssh::SshPeer::new(&peer.url, &Paths::from_env())
        .map_err(|e| ClientError::BadAddress(format!("peer {}: {e}", peer.name)))?;
    Ok(DaemonAddr {
        host: DEFAULT_HOST.to_string(),
        port: tunnel.daemon_port,
        token: peer.token.clone(),
        tunnel: Some(Box::new(tunnel)),
    })
}

/// A session addressed as `id` or `id@host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The id, passed through unchanged (the daemon resolves it, §1.4).
    pub id: String,
    /// The `host` part as typed, if any.
    pub host: Option<String>,
    pub addr: DaemonAddr,
}

impl Target {
    /// True for an `id@host` target.
    pub fn is_remote(&self) -> bool {
        self.host.is_some()
    }

    /// True unless the target is on another machine: no `@host`, a loopback address,
    /// `localhost`, this host name or `TELEPTY_MACHINE_ID`.
    pub fn is_this_machine(&self) -> bool {
        if self.addr.is_local() {
            return true;
        }
        let Some(h) = &self.host else { return true };
        let name = parse_host_port(h)
            .map(|(n, _)| n)
            .unwrap_or_else(|_| h.clone());
        name.eq_ignore_ascii_case(&crate::util::hostname())
            || name.eq_ignore_ascii_case(&config::machine_id())
    }

    /// How a session of this machine is named to this target: `id` for this machine, else
    /// `id@<TELEPTY_MACHINE_ID or host name>[:port]` (the port of this machine's daemon, when
    /// not 3848), so a reply or report from the other side finds its way back. Already
    /// qualified names pass through.
    pub fn sender(&self, id: &str, local_port: u16) -> String {
        if self.is_this_machine() || id.contains('@') {
            return id.to_string();
        }
        match local_port {
            DEFAULT_PORT => format!("{id}@{}", config::machine_id()),
            port => format!("{id}@{}:{port}", config::machine_id()),
        }
    }

    /// `id` or `id@host`, as the user typed it.
    pub fn label(&self) -> String {
        match &self.host {
            Some(h) => format!("{}@{}", self.id, h),
            None => self.id.clone(),
        }
    }
}

/// Split `id@host` at the last `@`. When the `@` is the first or last character (or absent)
/// the whole string is the id.
pub fn split_target(spec: &str) -> (&str, Option<&str>) {
    match spec.rfind('@') {
        Some(pos) if pos > 0 && pos + 1 < spec.len() => (&spec[..pos], Some(&spec[pos + 1..])),
        _ => (spec, None),
    }
}

/// Parse `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal.
pub fn parse_host_port(s: &str) -> Result<(String, Option<u16>), ClientError> {
    let bad = || ClientError::BadAddress(format!("invalid host {s:?}"));
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| ClientError::BadAddress(format!("invalid port in {s:?}")))
    };
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        if host.is_empty() {
            return Err(bad());
        }
        return match after {
            "" => Ok((host.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), Some(parse_port(p)?))),
                None => Err(bad()),
            },
        };
    }
    match s.matches(':').count() {
        0 if !s.is_empty() => Ok((s.to_string(), None)),
        1 => {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            if h.is_empty() {
                return Err(bad());
            }
            Ok((h.to_string(), Some(parse_port(p)?)))
        }
        // A bare IPv6 literal such as `::1` or `fd7a:115c::5`.
        n if n >= 2 && s.parse::<IpAddr>().is_ok() => Ok((s.to_string(), None)),
        _ => Err(bad()),
    }
}

/// Resolve `id` / `id@host` (§15). Without `@host` the target is the local daemon of `env`.
/// With it: a peer named `host` (or whose URL host is `host`) supplies URL and token;
/// otherwise `http://<host>:<port>` with port = the `:port` given, else `TELEPTY_PORT`,
/// else `[daemon] port` of config.toml, else 3848, and token = `TELEPTY_TOKEN`, else the local token.
pub fn resolve_target(spec: &str, env: &ClientEnv, peers: &[Peer]) -> Result<Target, ClientError> {
    let (id, host) = split_target(spec);
    let Some(host) = host else {
        return Ok(Target {
            id: id.to_string(),
            host: None,
            addr: env.local_addr()?,
        });
    };
    Ok(Target {
        id: id.to_string(),
        host: Some(host.to_string()),
        addr: resolve_host(host, env, peers)?,
    })
}

/// The daemon `host` (the part after `@`) names: a peer by name (case-insensitive) or by its
/// host, with the peer's token (an `ssh://` peer through its tunnel); else `host[:port]` itself.
pub fn resolve_host(
    host: &str,
    env: &ClientEnv,
    peers: &[Peer],
) -> Result<DaemonAddr, ClientError> {
    let (name, port) = parse_host_port(host)?;
    let peer = peers
        .iter()
        // Peer names are case-insensitive (discovery lower-cases them; people type either).
        .find(|p| p.name.eq_ignore_ascii_case(host) || p.name.eq_ignore_ascii_case(&name))
        .or_else(|| {
            peers.iter().find(|p| {
                p.host_port()
                    .is_some_and(|(h, _)| h.eq_ignore_ascii_case(&name))
            })
        });
    Ok(match (peer, peer.and_then(Peer::host_port)) {
        (Some(p), _) if super::ssh::is_ssh_url(&p.url) => ssh_addr(p)?,
        (Some(p), Some((phost, pport))) => DaemonAddr {
            host: phost,
            port: port.unwrap_or(pport),
            token: p.token.clone().or_else(|| env.token()),
            tunnel: None,
        },
        _ => DaemonAddr {
            host: name,
            port: port.map_or_else(|| env.default_port(), Ok)?,
            token: env.token(),
            tunnel: None,
        },
    })
}

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode a path segment or query value.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> ClientEnv {
        ClientEnv {
            local_token: Some("local".into()),
            ..Default::default()
        }
    }

    #[test]
    fn split_at_last_at() {
        assert_eq!(split_target("worker"), ("worker", None));
        assert_eq!(split_target("worker@box"), ("worker", Some("box")));
        assert_eq!(split_target("a@b@box:4000"), ("a@b", Some("box:4000")));
        assert_eq!(split_target("@worker"), ("@worker", None));
        assert_eq!(split_target("worker@"), ("worker@", None));
        assert_eq!(split_target("@"), ("@", None));
        assert_eq!(split_target(""), ("", None));
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(parse_host_port("box").unwrap(), ("box".into(), None));
        assert_eq!(
            parse_host_port("box:4000").unwrap(),
            ("box".into(), Some(4000))
        );
        assert_eq!(
            parse_host_port("[::1]:4000").unwrap(),
            ("::1".into(), Some(4000))
        );
        assert_eq!(parse_host_port("[::1]").unwrap(), ("::1".into(), None));
        assert_eq!(parse_host_port("::1").unwrap(), ("::1".into(), None));
        assert!(parse_host_port("box:").is_err());
        assert!(parse_host_port("box:x").is_err());
        assert!(parse_host_port("box:0").is_err());
        assert!(parse_host_port("box:70000").is_err());
        assert!(parse_host_port(":80").is_err());
        assert!(parse_host_port("[::1").is_err());
        assert!(parse_host_port("a:b:c").is_err());
    }

    #[test]
    fn local_target_uses_env() {
        let t = resolve_target("w1", &env(), &[]).unwrap();
        assert_eq!(t.id, "w1");
        assert!(!t.is_remote());
        assert_eq!(t.addr.host, "127.0.0.1");
        assert_eq!(t.addr.port, 3848);
        assert_eq!(t.addr.token.as_deref(), Some("local"));
        assert!(t.addr.is_local());

        let e = ClientEnv {
            host: Some("10.0.0.2".into()),
            port: Some("4000".into()),
            token: Some("envtok".into()),
            local_token: Some("local".into()),
            ..Default::default()
        };
        let t = resolve_target("w1", &e, &[]).unwrap();
        assert_eq!(t.addr.authority(), "10.0.0.2:4000");
        assert_eq!(t.addr.token.as_deref(), Some("envtok"));
        assert!(!t.addr.is_local());
    }

    /// A config whose file set `[daemon] host` / `port`.
    fn file(host: Option<&str>, port: Option<u16>) -> Config {
        let mut c = Config::default();
        c.daemon_file = config::DaemonSection {
            host: host.map(str::to_string),
            port,
        };
        c
    }

    #[test]
    fn senders_are_qualified_only_for_other_machines() {
        let env = ClientEnv::default();
        let t = |spec: &str| resolve_target(spec, &env, &[]).unwrap();
        let me = crate::config::machine_id();
        assert_eq!(t("w").sender("me", 3848), "me");
        assert_eq!(t("w@127.0.0.1:4000").sender("me", 3848), "me");
        assert_eq!(t("w@localhost").sender("me", 3848), "me");
        assert_eq!(t(&format!("w@{me}")).sender("me", 3848), "me");
        assert_eq!(t("w@box").sender("me", 3848), format!("me@{me}"));
        assert_eq!(
            t("w@10.0.0.9:4000").sender("me", 4100),
            format!("me@{me}:4100")
        );
        // Already qualified: passed through.
        assert_eq!(t("w@box").sender("me@lab", 3848), "me@lab");
    }

    #[test]
    fn env_beats_file_beats_default() {
        // The file alone.
        let e = ClientEnv {
            config: file(Some("127.0.0.2"), Some(4000)),
            ..env()
        };
        assert_eq!(e.local_addr().unwrap().authority(), "127.0.0.2:4000");
        assert_eq!(e.default_port().unwrap(), 4000);
        // Only a port in the file: the default host.
        let e = ClientEnv {
            config: file(None, Some(4000)),
            ..env()
        };
        assert_eq!(e.local_addr().unwrap().authority(), "127.0.0.1:4000");
        // Only a host in the file: the default port.
        let e = ClientEnv {
            config: file(Some("10.0.0.9"), None),
            ..env()
        };
        assert_eq!(e.local_addr().unwrap().authority(), "10.0.0.9:3848");
        // TELEPTY_PORT beats the file's port, TELEPTY_HOST its host.
        let e = ClientEnv {
            port: Some("5000".into()),
            config: file(Some("127.0.0.2"), Some(4000)),
            ..env()
        };
        assert_eq!(e.local_addr().unwrap().authority(), "127.0.0.2:5000");
        let e = ClientEnv {
            host: Some("127.0.0.3".into()),
            config: file(Some("127.0.0.2"), Some(4000)),
            ..env()
        };
        assert_eq!(e.local_addr().unwrap().authority(), "127.0.0.3:4000");
        // A `:port` in TELEPTY_HOST beats both ports.
        let e = ClientEnv {
            host: Some("127.0.0.3:4100".into()),
            port: Some("5000".into()),
            config: file(None, Some(4000)),
            ..env()
        };
        assert_eq!(e.local_addr().unwrap().authority(), "127.0.0.3:4100");
        // The file's port is also the default for `id@host` targets.
        let e = ClientEnv {
            config: file(None, Some(4000)),
            ..env()
        };
        let t = resolve_target("w1@box", &e, &[]).unwrap();
        assert_eq!(t.addr.authority(), "box:4000");
        // Token unaffected.
        assert_eq!(t.addr.token.as_deref(), Some("local"));
    }

    #[test]
    fn unspecified_bind_addresses_mean_loopback() {
        for (bind, want) in [
            ("0.0.0.0", "127.0.0.1:3848"),
            ("::", "[::1]:3848"),
            ("[::]", "[::1]:3848"),
            ("::1", "[::1]:3848"),
            ("localhost", "localhost:3848"),
            ("192.0.2.7", "192.0.2.7:3848"),
        ] {
            let e = ClientEnv {
                config: file(Some(bind), None),
                ..env()
            };
            let a = e.local_addr().unwrap();
            assert_eq!(a.authority(), want, "{bind}");
        }
        let e = ClientEnv {
            config: file(Some("0.0.0.0"), Some(4000)),
            ..env()
        };
        assert!(e.local_addr().unwrap().is_local());
    }

    #[test]
    fn an_invalid_file_fails_every_resolution() {
        let e = ClientEnv {
            file_error: Some("config.toml:3: must be 1-65535 (key daemon.port)".into()),
            ..env()
        };
        let err = e.local_addr().unwrap_err();
        assert!(matches!(err, ClientError::Config(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid configuration: config.toml:3: must be 1-65535 (key daemon.port)"
        );
        assert!(e.default_port().is_err());
        assert!(resolve_target("w1", &e, &[]).is_err());
        assert!(resolve_target("w1@box", &e, &[]).is_err());
        // Even when the environment names the whole address.
        let e = ClientEnv {
            host: Some("127.0.0.1".into()),
            port: Some("4000".into()),
            ..e
        };
        assert!(e.local_addr().is_err());
    }

    #[test]
    fn from_env_reads_the_file_section() {
        // Only the pure part: what `from_env` stores comes from `Config`'s file layer.
        let c = Config::parse_str("[daemon]\nhost = \"::\"\nport = 4321\n", "c").unwrap();
        let e = ClientEnv { config: c, ..env() };
        assert_eq!(e.local_addr().unwrap().authority(), "[::1]:4321");
    }

    #[test]
    fn remote_target_ports_and_tokens() {
        let t = resolve_target("w1@box", &env(), &[]).unwrap();
        assert_eq!(
            (t.id.as_str(), t.addr.host.as_str(), t.addr.port),
            ("w1", "box", 3848)
        );
        assert_eq!(t.addr.token.as_deref(), Some("local"));
        assert_eq!(t.label(), "w1@box");
        assert!(t.is_remote());

        let e = ClientEnv {
            port: Some("5000".into()),
            token: Some("tt".into()),
            ..env()
        };
        let t = resolve_target("w1@box", &e, &[]).unwrap();
        assert_eq!(t.addr.port, 5000);
        assert_eq!(t.addr.token.as_deref(), Some("tt"));
        let t = resolve_target("w1@box:4100", &e, &[]).unwrap();
        assert_eq!(t.addr.port, 4100);
        let t = resolve_target("w1@[fd7a::1]:4100", &e, &[]).unwrap();
        assert_eq!(t.addr.base_url(), "http://[fd7a::1]:4100");

        assert!(resolve_target("w1@box:nope", &e, &[]).is_err());
        let bad_env = ClientEnv {
            port: Some("x".into()),
            ..env()
        };
        assert!(resolve_target("w1@box", &bad_env, &[]).is_err());
        assert!(resolve_target("w1", &bad_env, &[]).is_err());
    }

    #[test]
    fn peers_supply_url_and_token() {
        let peers = vec![Peer {
            name: "lab".into(),
            url: "http://10.1.2.3:3900/".into(),
            token: Some("peertok".into()),
        }];
        let t = resolve_target("w1@lab", &env(), &peers).unwrap();
        assert_eq!(t.addr.authority(), "10.1.2.3:3900");
        assert_eq!(t.addr.token.as_deref(), Some("peertok"));
        // By the URL's host too.
        let t = resolve_target("w1@10.1.2.3", &env(), &peers).unwrap();
        assert_eq!(t.addr.token.as_deref(), Some("peertok"));
        assert_eq!(t.addr.port, 3900);
        // Unknown host: plain address.
        let t = resolve_target("w1@other", &env(), &peers).unwrap();
        assert_eq!(t.addr.token.as_deref(), Some("local"));
    }

    #[test]
    fn urls() {
        let a = DaemonAddr {
            host: "127.0.0.1".into(),
            port: 3848,
            token: Some("a b&c".into()),
            tunnel: None,
        };
        assert_eq!(a.base_url(), "http://127.0.0.1:3848");
        assert_eq!(
            a.ws_url("/api/bus"),
            "ws://127.0.0.1:3848/api/bus?token=a%20b%26c"
        );
        assert_eq!(
            a.ws_url("/api/sessions/x?snapshot=1"),
            "ws://127.0.0.1:3848/api/sessions/x?snapshot=1&token=a%20b%26c"
        );
        assert!(format!("{a:?}").contains("<set>"));
        assert!(!format!("{a:?}").contains("a b"));
        assert!(is_local_host("localhost"));
        assert!(is_local_host("::1"));
        assert!(is_local_host("[::1]"));
        assert!(is_local_host("127.0.0.2"));
        assert!(!is_local_host("10.0.0.1"));
        assert_eq!(encode_component("a b/é"), "a%20b%2F%C3%A9");
    }
}
