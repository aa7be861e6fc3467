//! Trust and authentication checks for the daemon's HTTP/WS API (API.md §1.2).
//!
//! Pure decision logic: the server layer extracts [`RequestFacts`] from a request and maps an
//! [`AuthFailure`] to a response, so everything here can be unit-tested without a socket.
//!
//! Order matters and is fixed: Origin, then Host, then peer trust, then token. Origin and Host
//! come first because they defend against browsers being turned against a loopback daemon
//! (cross-site requests and DNS rebinding), and a loopback peer would otherwise be trusted
//! without a token.
//!
//! Loopback is every local user, so a loopback peer is trusted only when its socket is the
//! daemon's own uid ([`RequestFacts::same_user`]); any other local user, or one whose uid is
//! unknown, needs the token like a remote peer. The allowlist never reopens loopback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ipnet::{Ipv4Net, Ipv6Net};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Everything the checks need to know about the daemon's own configuration.
#[derive(Clone, Default)]
pub struct TrustConfig {
    /// Exact `scheme://host[:port]` values; a trailing `/` in a configured value is tolerated.
    pub allowed_origins: Vec<String>,
    /// Extra names accepted in the Host header of loopback requests.
    pub allowed_hosts: Vec<String>,
    pub peer_allowlist: Vec<IpNet>,
    pub trust_tailscale: bool,
    pub token: String,
    pub jwt_secret: Option<String>,
    pub machine_id: String,
    pub hostname: String,
    pub bind_host: String,
}

// Hand-written so that logging a config can never leak the token or the JWT secret.
impl fmt::Debug for TrustConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustConfig")
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("peer_allowlist", &self.peer_allowlist)
            .field("trust_tailscale", &self.trust_tailscale)
            .field("token", &"<redacted>")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("machine_id", &self.machine_id)
            .field("hostname", &self.hostname)
            .field("bind_host", &self.bind_host)
            .finish()
    }
}

/// An allowlist entry: an `ipnet` network with host bits cleared. IPv4-mapped IPv6 networks
/// (`::ffff:a.b.c.d/96+`) are kept as IPv4 ones, and peers are compared in canonical (IPv4)
/// form, so a dual-stack socket's `::ffff:10.0.0.1` matches `10.0.0.0/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    fn canonical(net: ipnet::IpNet) -> IpNet {
        let net = match net {
            ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => Ipv4Net::new_assert(v4, v6.prefix_len() - 96).into(),
                None => net,
            },
            _ => net,
        };
        IpNet(net.trunc())
    }

    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for IpNet {
    type Err = String;

    /// `10.0.0.0/8`, `fd00::/8`, or a bare address (a single host).
    fn from_str(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty network entry".to_string());
        }
        let net = match s.parse::<IpAddr>() {
            Ok(addr) => Ok(ipnet::IpNet::from(addr)),
            Err(_) => s.parse::<ipnet::IpNet>(),
        };
        net.map(IpNet::canonical).map_err(|_| {
            format!("invalid network {s:?} (expected e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)")
        })
    }
}

/// What the checks need to know about one request.
#[derive(Clone, Copy)]
pub struct RequestFacts<'a> {
    pub peer: IpAddr,
    /// A loopback peer whose socket belongs to the daemon's own uid (`super::peer_uid`).
    pub same_user: bool,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
    pub token_header: Option<&'a str>,
    /// Already percent-decoded.
    pub query_token: Option<&'a str>,
    /// Whole `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// Set for `GET /api/health`: skips the token step only.
    pub skip_token: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("Origin not allowed.")]
    ForbiddenOrigin,
    #[error("Host not allowed.")]
    ForbiddenHost,
    #[error("Unauthorized: Invalid or missing token.")]
    Unauthorized,
}

impl AuthFailure {
    pub fn status(&self) -> u16 {
        match self {
            AuthFailure::ForbiddenOrigin | AuthFailure::ForbiddenHost => 403,
            AuthFailure::Unauthorized => 401,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::ForbiddenOrigin => "FORBIDDEN_ORIGIN",
            AuthFailure::ForbiddenHost => "FORBIDDEN_HOST",
            AuthFailure::Unauthorized => "PERMISSION_DENIED",
        }
    }
}

/// Runs the four checks against the current wall clock.
pub fn check(cfg: &TrustConfig, req: &RequestFacts<'_>) -> Result<(), AuthFailure> {
    check_at(cfg, req, crate::util::unix_secs(SystemTime::now()))
}

/// [`check`] with an explicit clock, so JWT expiry is testable.
pub fn check_at(
    cfg: &TrustConfig,
    req: &RequestFacts<'_>,
    now_unix: u64,
) -> Result<(), AuthFailure> {
    if let Some(origin) = req.origin
        && !origin_allowed(cfg, origin)
    {
        return Err(AuthFailure::ForbiddenOrigin);
    }
    if is_loopback(req.peer)
        && let Some(host) = req.host
        && !host_allowed(cfg, host)
    {
        return Err(AuthFailure::ForbiddenHost);
    }
    let trusted = if is_loopback(req.peer) {
        req.same_user
    } else {
        is_trusted_peer(cfg, req.peer)
    };
    if req.skip_token || trusted {
        return Ok(());
    }
    let presented = token_presented(cfg, req, now_unix).then_some(());
    presented.ok_or(AuthFailure::Unauthorized)
}

/// Whether a browser origin may talk to the daemon (also drives CORS headers).
pub fn origin_allowed(cfg: &TrustConfig, origin: &str) -> bool {
    // Sandboxed iframes, file: pages and redirects all send `null`; it identifies nobody.
    if origin.eq_ignore_ascii_case("null") {
        return false;
    }
    cfg.allowed_origins.iter().any(|allowed| {
        let allowed = allowed.trim();
        let allowed = allowed.strip_suffix('/').unwrap_or(allowed);
        !allowed.is_empty() && !allowed.eq_ignore_ascii_case("null") && allowed == origin
    })
}

/// The name part of a Host header (or a configured host), lowercased, without port or brackets.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[::1]:3848`: the brackets exist precisely because the address contains colons.
        rest.split_once(']').map_or(rest, |(inner, _)| inner)
    } else if host.matches(':').count() == 1 {
        host.split_once(':').map_or(host, |(name, _)| name)
    } else {
        // No colon, or a bare IPv6 literal whose colons are not a port separator.
        host
    };
    // A fully-qualified `localhost.` names the same host as `localhost`.
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

/// DNS-rebinding defence: a loopback request must name this machine in its Host header.
pub fn host_allowed(cfg: &TrustConfig, host: &str) -> bool {
    let name = host_name(host);
    if name.is_empty() {
        return false;
    }
    if name == "localhost" {
        return true;
    }
    // Covers every 127.x.x.x literal and ::1 (in any spelling, mapped forms included).
    if let Ok(ip) = name.parse::<IpAddr>()
        && is_loopback(ip)
    {
        return true;
    }
    [&cfg.hostname, &cfg.machine_id, &cfg.bind_host]
        .into_iter()
        .chain(cfg.allowed_hosts.iter())
        .map(|configured| host_name(configured))
        .any(|configured| !configured.is_empty() && configured == name)
}

/// 127.0.0.0/8, ::1 and IPv4-mapped ::ffff:127.0.0.0/104.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// Tailscale's CGNAT range.
const TAILSCALE_V4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10);
/// Tailscale's ULA range.
const TAILSCALE_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0xfd7a, 0x115c, 0xa1e0, 0, 0, 0, 0, 0), 48);

fn is_tailscale(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => TAILSCALE_V4.contains(&v4),
        IpAddr::V6(v6) => TAILSCALE_V6.contains(&v6),
    }
}

/// Step 3 for non-loopback peers: trusted without a token.
pub fn is_trusted_peer(cfg: &TrustConfig, ip: IpAddr) -> bool {
    !is_loopback(ip) && cfg.peer_allowlist.iter().any(|net| net.contains(ip))
        || (cfg.trust_tailscale && is_tailscale(ip))
}

/// Compares secrets without leaking where they differ. Hashing first also hides the length of
/// the configured secret, which a plain byte-wise constant-time compare would reveal.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let ha = Sha256::digest(a.as_bytes());
    let hb = Sha256::digest(b.as_bytes());
    ha.as_slice().ct_eq(hb.as_slice()).into()
}

fn bearer_token(authorization: &str) -> Option<&str> {
    let authorization = authorization.trim();
    let (scheme, rest) = authorization.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

fn token_presented(cfg: &TrustConfig, req: &RequestFacts<'_>, now_unix: u64) -> bool {
    let bearer = req.authorization.and_then(bearer_token);
    // An unset token must not let an empty header, query or bearer value through.
    if !cfg.token.is_empty() {
        let matches = [req.token_header, req.query_token, bearer]
            .into_iter()
            .flatten()
            .any(|candidate| constant_time_eq(candidate, &cfg.token));
        if matches {
            return true;
        }
    }
    match (&cfg.jwt_secret, bearer) {
        // An empty HMAC key would let anyone mint tokens.
        (Some(secret), Some(jwt)) if !secret.is_empty() => verify_jwt_hs256(jwt, secret, now_unix),
        _ => false,
    }
}

fn b64url_decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()
}

fn decode_json_object(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice(&b64url_decode(segment)?).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Verifies a compact HS256 JWS: header alg must be exactly `HS256`, the signature must verify,
/// and `exp` (if present) must be a number of seconds later than `now_unix`.
pub fn verify_jwt_hs256(token: &str, secret: &str, now_unix: u64) -> bool {
    jwt_claims(token, secret).is_some_and(|claims| match claims.get("exp") {
        None => true,
        Some(exp) => match (exp.as_u64(), exp.as_f64()) {
            (Some(exp), _) => now_unix < exp,
            (None, Some(exp)) => (now_unix as f64) < exp,
            // A non-numeric exp is malformed; failing closed beats guessing its meaning.
            (None, None) => false,
        },
    })
}

/// The claims of a compact HS256 JWS whose header and signature check out.
fn jwt_claims(token: &str, secret: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.trim().split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };

    // Pinning the algorithm is what stops `alg: none` and key-confusion forgeries.
    let header = decode_json_object(header_b64)?;
    if header.get("alg").and_then(|v| v.as_str()) != Some("HS256") {
        return None;
    }
    // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
    if header.contains_key("crit") {
        return None;
    }

    let signature = b64url_decode(sig_b64)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    // The signing input is the segments exactly as sent, padding and all.
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(payload_b64.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature).ok()?;

    // Claims are only looked at once the signature proves who wrote them.
    decode_json_object(payload_b64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comma-separated allowlist such as `"10.0.0.0/8, fd00::/8"`; empty entries are skipped.
    fn parse_allowlist(s: &str) -> Result<Vec<IpNet>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(IpNet::from_str)
            .collect()
    }

    const TOKEN: &str = "s3cret-token";
    const SECRET: &str = "jwt-signing-secret";
    const NOW: u64 = 1_700_000_000;

    fn cfg() -> TrustConfig {
        TrustConfig {
            allowed_origins: vec![
                "http://localhost:3848".into(),
                "https://dash.example.com/".into(),
            ],
            allowed_hosts: vec!["telepty.internal".into()],
            peer_allowlist: Vec::new(),
            trust_tailscale: false,
            token: TOKEN.into(),
            jwt_secret: None,
            machine_id: "build-box-7".into(),
            hostname: "MyLaptop".into(),
            bind_host: "127.0.0.1".into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn req(peer: &str) -> RequestFacts<'static> {
        RequestFacts {
            peer: ip(peer),
            // The daemon's own user, unless a test says otherwise.
            same_user: is_loopback(ip(peer)),
            origin: None,
            host: None,
            token_header: None,
            query_token: None,
            authorization: None,
            skip_token: false,
        }
    }

    const REMOTE: &str = "203.0.113.9";

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn make_jwt(header: &str, payload: &str, secret: &str) -> String {
        let h = b64(header.as_bytes());
        let p = b64(payload.as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let sig = b64(&mac.finalize().into_bytes());
        format!("{h}.{p}.{sig}")
    }

    fn hs256(payload: &str) -> String {
        make_jwt(r#"{"alg":"HS256","typ":"JWT"}"#, payload, SECRET)
    }

    // --- failure metadata ---

    #[test]
    fn failure_status_code_message() {
        assert_eq!(AuthFailure::ForbiddenOrigin.status(), 403);
        assert_eq!(AuthFailure::ForbiddenOrigin.code(), "FORBIDDEN_ORIGIN");
        assert_eq!(
            AuthFailure::ForbiddenOrigin.to_string(),
            "Origin not allowed."
        );
        assert_eq!(AuthFailure::ForbiddenHost.status(), 403);
        assert_eq!(AuthFailure::ForbiddenHost.code(), "FORBIDDEN_HOST");
        assert_eq!(AuthFailure::ForbiddenHost.to_string(), "Host not allowed.");
        assert_eq!(AuthFailure::Unauthorized.status(), 401);
        assert_eq!(AuthFailure::Unauthorized.code(), "PERMISSION_DENIED");
        assert_eq!(
            AuthFailure::Unauthorized.to_string(),
            "Unauthorized: Invalid or missing token."
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut c = cfg();
        c.jwt_secret = Some(SECRET.into());
        let s = format!("{c:?}");
        assert!(!s.contains(TOKEN));
        assert!(!s.contains(SECRET));
    }

    // --- step 1: origin ---

    #[test]
    fn foreign_origin_from_loopback_is_first_failure() {
        let mut r = req("127.0.0.1");
        r.origin = Some("https://evil.com");
        r.host = Some("evil.com"); // would also fail step 2
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenOrigin));
        r.skip_token = true;
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenOrigin));
    }

    #[test]
    fn foreign_origin_rejected_even_with_valid_token() {
        let mut r = req(REMOTE);
        r.origin = Some("https://evil.com");
        r.token_header = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenOrigin));
    }

    #[test]
    fn origin_null_never_allowed() {
        let mut c = cfg();
        c.allowed_origins.push("null".into());
        assert!(!origin_allowed(&c, "null"));
        let mut r = req("127.0.0.1");
        r.origin = Some("null");
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::ForbiddenOrigin));
    }

    #[test]
    fn allowed_origin_passes() {
        let mut r = req("127.0.0.1");
        r.origin = Some("http://localhost:3848");
        r.host = Some("localhost:3848");
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
    }

    #[test]
    fn origin_compare_is_exact_and_tolerates_configured_trailing_slash() {
        let c = cfg();
        assert!(origin_allowed(&c, "https://dash.example.com"));
        assert!(!origin_allowed(&c, "https://dash.example.com:443"));
        assert!(!origin_allowed(&c, "http://dash.example.com"));
        assert!(!origin_allowed(&c, "http://localhost:3849"));
        assert!(!origin_allowed(&c, "http://localhost"));
        assert!(!origin_allowed(&c, "http://localhost:3848.evil.com"));
        assert!(!origin_allowed(&c, ""));
    }

    #[test]
    fn default_empty_origin_list_rejects_every_origin() {
        let mut c = cfg();
        c.allowed_origins.clear();
        assert!(!origin_allowed(&c, "http://localhost:3848"));
        let mut r = req("127.0.0.1");
        r.origin = Some("http://localhost:3848");
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::ForbiddenOrigin));
    }

    #[test]
    fn no_origin_passes_step_one() {
        assert_eq!(check_at(&cfg(), &req("127.0.0.1"), NOW), Ok(()));
    }

    // --- step 2: host ---

    #[test]
    fn evil_host_from_loopback_forbidden() {
        let mut r = req("127.0.0.1");
        r.host = Some("evil.com");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
        r.host = Some("evil.com:3848");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
        r.host = Some("localhost.evil.com");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
        r.host = Some("");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
    }

    #[test]
    fn host_before_token() {
        let mut r = req("127.0.0.1");
        r.host = Some("evil.com");
        r.token_header = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
    }

    #[test]
    fn accepted_host_names() {
        let c = cfg();
        for host in [
            "localhost",
            "localhost:3848",
            "LocalHost:3848",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:3848",
            "127.8.9.10:80",
            "[::1]:3848",
            "[::1]",
            "::1",
            "mylaptop:3848",
            "MYLAPTOP",
            "build-box-7",
            "telepty.internal:3848",
        ] {
            let mut r = req("127.0.0.1");
            r.host = Some(host);
            assert_eq!(check_at(&c, &r, NOW), Ok(()), "host {host:?}");
        }
    }

    #[test]
    fn rejected_host_names() {
        let c = cfg();
        for host in [
            "128.0.0.1",
            "10.0.0.1:3848",
            "[::2]:3848",
            "mylaptop.evil.com",
            "build-box",
        ] {
            assert!(!host_allowed(&c, host), "host {host:?}");
        }
    }

    #[test]
    fn bind_address_is_accepted_host() {
        let mut c = cfg();
        c.bind_host = "0.0.0.0".into();
        assert!(host_allowed(&c, "0.0.0.0:3848"));
        c.bind_host = "192.168.1.20".into();
        assert!(host_allowed(&c, "192.168.1.20:3848"));
        assert!(!host_allowed(&c, "0.0.0.0:3848"));
    }

    #[test]
    fn empty_config_names_do_not_match_empty_host() {
        let c = TrustConfig::default();
        assert!(!host_allowed(&c, ""));
        assert!(!host_allowed(&c, ":3848"));
        assert!(host_allowed(&c, "localhost"));
    }

    #[test]
    fn missing_host_from_loopback_passes() {
        assert_eq!(check_at(&cfg(), &req("::1"), NOW), Ok(()));
    }

    #[test]
    fn non_loopback_peer_is_not_host_checked() {
        let mut r = req(REMOTE);
        r.host = Some("evil.com");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::Unauthorized));
        r.token_header = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
    }

    #[test]
    fn ipv4_mapped_loopback_is_host_checked_and_trusted() {
        let mut r = req("::ffff:127.0.0.1");
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
        r.host = Some("evil.com");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
        r.host = Some("localhost:3848");
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
    }

    // --- step 3: trust ---

    #[test]
    fn loopback_detection() {
        assert!(is_loopback(ip("127.0.0.1")));
        assert!(is_loopback(ip("127.255.0.3")));
        assert!(is_loopback(ip("::1")));
        assert!(is_loopback(ip("::ffff:127.0.0.1")));
        assert!(is_loopback(ip("::ffff:127.9.9.9")));
        assert!(!is_loopback(ip("::ffff:128.0.0.1")));
        assert!(!is_loopback(ip("128.0.0.1")));
        assert!(!is_loopback(ip("::2")));
        assert!(!is_loopback(ip("0.0.0.0")));
    }

    #[test]
    fn loopback_peer_trusted_without_token() {
        for peer in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(check_at(&cfg(), &req(peer), NOW), Ok(()), "peer {peer}");
        }
    }

    #[test]
    fn loopback_peer_of_another_user_needs_the_token() {
        let mut c = cfg();
        // Not even an allowlist entry for loopback lets another local user in.
        c.peer_allowlist = parse_allowlist("127.0.0.0/8, ::1").unwrap();
        for peer in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let mut r = req(peer);
            r.same_user = false;
            assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
            r.token_header = Some(TOKEN);
            assert_eq!(check_at(&c, &r, NOW), Ok(()), "a token holder is let in");
            r.token_header = None;
            r.skip_token = true;
            assert_eq!(check_at(&c, &r, NOW), Ok(()), "health stays open");
        }
        // Only loopback peers can be the same user; the flag means nothing elsewhere.
        let mut r = req(REMOTE);
        r.same_user = true;
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn allowlist_v4_cidr() {
        let mut c = cfg();
        c.peer_allowlist = parse_allowlist("10.0.0.0/8, 192.168.1.5").unwrap();
        assert!(is_trusted_peer(&c, ip("10.1.2.3")));
        assert!(is_trusted_peer(&c, ip("192.168.1.5")));
        assert!(!is_trusted_peer(&c, ip("192.168.1.6")));
        assert!(!is_trusted_peer(&c, ip("11.0.0.1")));
        assert_eq!(check_at(&c, &req("10.9.9.9"), NOW), Ok(()));
        assert_eq!(
            check_at(&c, &req("11.0.0.1"), NOW),
            Err(AuthFailure::Unauthorized)
        );
    }

    #[test]
    fn allowlist_v6_cidr() {
        let mut c = cfg();
        c.peer_allowlist = parse_allowlist("fd00::/8,2001:db8::1").unwrap();
        assert!(is_trusted_peer(&c, ip("fd12:3456::1")));
        assert!(is_trusted_peer(&c, ip("2001:db8::1")));
        assert!(!is_trusted_peer(&c, ip("2001:db8::2")));
        assert!(!is_trusted_peer(&c, ip("fe80::1")));
        // Families never cross: a v6 network does not swallow v4 peers.
        assert!(!is_trusted_peer(&c, ip("10.0.0.1")));
    }

    #[test]
    fn allowlist_ipv4_mapped_peer_compared_as_v4() {
        let mut c = cfg();
        c.peer_allowlist = parse_allowlist("10.0.0.0/8").unwrap();
        assert!(is_trusted_peer(&c, ip("::ffff:10.2.3.4")));
        assert!(!is_trusted_peer(&c, ip("::ffff:11.2.3.4")));
        assert_eq!(check_at(&c, &req("::ffff:10.2.3.4"), NOW), Ok(()));
    }

    #[test]
    fn allowlist_mapped_entry_normalised_to_v4() {
        let net: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(net, "10.0.0.0/8".parse().unwrap());
        assert!(net.contains(ip("10.200.0.1")));
        assert!(net.contains(ip("::ffff:10.200.0.1")));
    }

    #[test]
    fn empty_allowlist_trusts_nobody() {
        let mut c = cfg();
        c.peer_allowlist = parse_allowlist("").unwrap();
        assert!(c.peer_allowlist.is_empty());
        assert!(parse_allowlist(" , ,").unwrap().is_empty());
        assert!(!is_trusted_peer(&c, ip("10.0.0.1")));
        assert!(!is_trusted_peer(&c, ip("fd00::1")));
        assert_eq!(
            check_at(&c, &req("10.0.0.1"), NOW),
            Err(AuthFailure::Unauthorized)
        );
    }

    #[test]
    fn zero_prefix_matches_whole_family() {
        let net: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(net.contains(ip("8.8.8.8")));
        assert!(!net.contains(ip("2001:db8::1")));
        let net6: IpNet = "::/0".parse().unwrap();
        assert!(net6.contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipnet_parsing() {
        let n: IpNet = "10.0.0.5".parse().unwrap();
        assert_eq!((n.addr(), n.prefix_len()), (ip("10.0.0.5"), 32));
        let n: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!((n.addr(), n.prefix_len()), (ip("10.0.0.0"), 8));
        assert_eq!(n.to_string(), "10.0.0.0/8");
        let n: IpNet = "::1".parse().unwrap();
        assert_eq!((n.addr(), n.prefix_len()), (ip("::1"), 128));
        let n: IpNet = " fd00::/8 ".parse().unwrap();
        assert_eq!((n.addr(), n.prefix_len()), (ip("fd00::"), 8));

        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/x",
            "host.example",
        ] {
            let err = bad.parse::<IpNet>().unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
        }
        assert!("10.0.0.0/33".parse::<IpNet>().unwrap_err().contains("/33"));
        let err = parse_allowlist("10.0.0.0/8, nonsense").unwrap_err();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn tailscale_on_off() {
        let mut c = cfg();
        for peer in [
            "100.64.0.1",
            "100.127.255.254",
            "fd7a:115c:a1e0::1234",
            "::ffff:100.100.1.1",
        ] {
            assert!(
                !is_trusted_peer(&c, ip(peer)),
                "{peer} trusted with tailscale off"
            );
            assert_eq!(
                check_at(&c, &req(peer), NOW),
                Err(AuthFailure::Unauthorized)
            );
        }
        c.trust_tailscale = true;
        for peer in [
            "100.64.0.1",
            "100.127.255.254",
            "fd7a:115c:a1e0::1234",
            "::ffff:100.100.1.1",
        ] {
            assert!(
                is_trusted_peer(&c, ip(peer)),
                "{peer} not trusted with tailscale on"
            );
            assert_eq!(check_at(&c, &req(peer), NOW), Ok(()));
        }
        for peer in [
            "100.63.255.255",
            "100.128.0.0",
            "fd7a:115c:a1e1::1",
            "fd7a:115d:a1e0::1",
        ] {
            assert!(!is_trusted_peer(&c, ip(peer)), "{peer} wrongly trusted");
        }
    }

    // --- step 4: token ---

    #[test]
    fn token_in_header() {
        let mut r = req(REMOTE);
        r.token_header = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
    }

    #[test]
    fn token_in_query() {
        let mut r = req(REMOTE);
        r.query_token = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
    }

    #[test]
    fn token_as_bearer() {
        let auth = format!("Bearer {TOKEN}");
        let mut r = req(REMOTE);
        r.authorization = Some(&auth);
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
        let auth = format!("bearer   {TOKEN}");
        r.authorization = Some(&auth);
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
        let auth = format!("Basic {TOKEN}");
        r.authorization = Some(&auth);
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::Unauthorized));
        r.authorization = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn wrong_or_missing_token() {
        let c = cfg();
        assert_eq!(
            check_at(&c, &req(REMOTE), NOW),
            Err(AuthFailure::Unauthorized)
        );
        let mut r = req(REMOTE);
        r.token_header = Some("s3cret-tokeN");
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
        r.token_header = Some("s3cret-token-longer");
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
        r.token_header = Some("");
        r.query_token = Some("nope");
        r.authorization = Some("Bearer nope");
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn one_good_place_is_enough() {
        let mut r = req(REMOTE);
        r.token_header = Some("wrong");
        r.query_token = Some(TOKEN);
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
    }

    #[test]
    fn empty_configured_token_never_matches() {
        let mut c = cfg();
        c.token.clear();
        let mut r = req(REMOTE);
        r.token_header = Some("");
        r.query_token = Some("");
        r.authorization = Some("Bearer ");
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn constant_time_eq_semantics() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(constant_time_eq("", ""));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("abc", ""));
    }

    #[test]
    fn health_skips_token_only() {
        let mut r = req(REMOTE);
        r.skip_token = true;
        assert_eq!(check_at(&cfg(), &r, NOW), Ok(()));
        r.origin = Some("https://evil.com");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenOrigin));
        let mut r = req("127.0.0.1");
        r.skip_token = true;
        r.host = Some("evil.com");
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::ForbiddenHost));
    }

    #[test]
    fn check_uses_wall_clock() {
        let mut c = cfg();
        c.jwt_secret = Some(SECRET.into());
        let far_future = hs256(r#"{"sub":"x","exp":99999999999}"#);
        let past = hs256(r#"{"sub":"x","exp":1000}"#);
        let auth = format!("Bearer {far_future}");
        let mut r = req(REMOTE);
        r.authorization = Some(&auth);
        assert_eq!(check(&c, &r), Ok(()));
        let auth = format!("Bearer {past}");
        r.authorization = Some(&auth);
        assert_eq!(check(&c, &r), Err(AuthFailure::Unauthorized));
    }

    // --- JWT ---

    #[test]
    fn jwt_valid() {
        let jwt = hs256(&format!(r#"{{"sub":"dash","exp":{}}}"#, NOW + 60));
        assert!(verify_jwt_hs256(&jwt, SECRET, NOW));
        let no_exp = hs256(r#"{"sub":"dash"}"#);
        assert!(verify_jwt_hs256(&no_exp, SECRET, NOW));
        let frac = hs256(&format!(r#"{{"exp":{}.5}}"#, NOW));
        assert!(verify_jwt_hs256(&frac, SECRET, NOW));
    }

    #[test]
    fn jwt_accepted_via_bearer_only_when_secret_set() {
        let jwt = hs256(&format!(r#"{{"exp":{}}}"#, NOW + 60));
        let auth = format!("Bearer {jwt}");
        let mut r = req(REMOTE);
        r.authorization = Some(&auth);
        assert_eq!(check_at(&cfg(), &r, NOW), Err(AuthFailure::Unauthorized));
        let mut c = cfg();
        c.jwt_secret = Some(SECRET.into());
        assert_eq!(check_at(&c, &r, NOW), Ok(()));
        // The JWT path is the Authorization header, not the plain-token places.
        let mut r = req(REMOTE);
        r.token_header = Some(&jwt);
        r.query_token = Some(&jwt);
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn jwt_with_empty_secret_is_rejected() {
        let jwt = make_jwt(r#"{"alg":"HS256"}"#, r#"{"sub":"x"}"#, "");
        let mut c = cfg();
        c.jwt_secret = Some(String::new());
        let auth = format!("Bearer {jwt}");
        let mut r = req(REMOTE);
        r.authorization = Some(&auth);
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn jwt_bad_signature() {
        let jwt = make_jwt(r#"{"alg":"HS256"}"#, r#"{"sub":"x"}"#, "other-secret");
        assert!(!verify_jwt_hs256(&jwt, SECRET, NOW));
        // Tampered payload under the original signature.
        let good = hs256(r#"{"sub":"x"}"#);
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], b64(br#"{"sub":"admin"}"#), parts[2]);
        assert!(!verify_jwt_hs256(&forged, SECRET, NOW));
        // Truncated signature.
        let truncated = &good[..good.len() - 2];
        assert!(!verify_jwt_hs256(truncated, SECRET, NOW));
    }

    #[test]
    fn jwt_expired() {
        let jwt = hs256(&format!(r#"{{"exp":{}}}"#, NOW - 1));
        assert!(!verify_jwt_hs256(&jwt, SECRET, NOW));
        let at_now = hs256(&format!(r#"{{"exp":{NOW}}}"#));
        assert!(!verify_jwt_hs256(&at_now, SECRET, NOW));
        let mut c = cfg();
        c.jwt_secret = Some(SECRET.into());
        let auth = format!("Bearer {jwt}");
        let mut r = req(REMOTE);
        r.authorization = Some(&auth);
        assert_eq!(check_at(&c, &r, NOW), Err(AuthFailure::Unauthorized));
    }

    #[test]
    fn jwt_non_numeric_exp_rejected() {
        let jwt = hs256(r#"{"exp":"tomorrow"}"#);
        assert!(!verify_jwt_hs256(&jwt, SECRET, NOW));
        let jwt = hs256(r#"{"exp":null}"#);
        assert!(!verify_jwt_hs256(&jwt, SECRET, NOW));
    }

    #[test]
    fn jwt_alg_none_and_others_rejected() {
        // alg none with an empty signature segment.
        let h = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let p = b64(br#"{"sub":"x"}"#);
        assert!(!verify_jwt_hs256(&format!("{h}.{p}."), SECRET, NOW));
        // alg none even if someone signs it with the secret.
        let signed_none = make_jwt(r#"{"alg":"none"}"#, r#"{"sub":"x"}"#, SECRET);
        assert!(!verify_jwt_hs256(&signed_none, SECRET, NOW));
        for alg in [
            r#"{"alg":"HS384"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let jwt = make_jwt(alg, r#"{"sub":"x"}"#, SECRET);
            assert!(!verify_jwt_hs256(&jwt, SECRET, NOW), "{alg}");
        }
        let crit = make_jwt(r#"{"alg":"HS256","crit":["x"]}"#, r#"{"sub":"x"}"#, SECRET);
        assert!(!verify_jwt_hs256(&crit, SECRET, NOW));
    }

    #[test]
    fn jwt_padding_tolerated() {
        let std_b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE.encode(b);
        // Lengths chosen so every segment needs padding.
        let h = std_b64(br#"{"alg":"HS256" }"#);
        let p = std_b64(br#"{"sub":"a"}"#);
        assert!(h.ends_with('=') && p.ends_with('='));
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let sig = std_b64(&mac.finalize().into_bytes());
        assert!(sig.ends_with('='));
        assert!(verify_jwt_hs256(&format!("{h}.{p}.{sig}"), SECRET, NOW));
    }

    #[test]
    fn jwt_malformed() {
        for bad in ["", "a", "a.b", "a.b.c.d", "...", "!!!.???.***"] {
            assert!(!verify_jwt_hs256(bad, SECRET, NOW), "{bad:?}");
        }
        let arr_header = make_jwt(r#"["HS256"]"#, r#"{"sub":"x"}"#, SECRET);
        assert!(!verify_jwt_hs256(&arr_header, SECRET, NOW));
        let arr_claims = make_jwt(r#"{"alg":"HS256"}"#, r#"[1]"#, SECRET);
        assert!(!verify_jwt_hs256(&arr_claims, SECRET, NOW));
    }
}
