//! Pairing two machines (issue 13): `telepty pair` asks this daemon for a one-time code, and
//! `telepty pair CODE@host` on the other machine claims it. The claim carries that machine's
//! name, port and token; the answer carries this one's. Each side then holds the other as a
//! peer, so replies, reports and events come back without a second manual step.
//!
//! The claim is the one route a caller without a token may use, so the code is short-lived
//! (5 minutes), single-use, compared in constant time, and void after 5 wrong guesses.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use super::ApiState;
use super::body::JsonBody;
use super::error::{ApiError, ApiResult, ErrorBody, ok};
use super::peer_uid::PeerInfo;
use crate::config::Peer;
use crate::wire::request::PairClaim;
use crate::wire::response::{PairClaimed, PairStarted, PairStatus};

/// How long a code may be claimed.
const CODE_LIFE: Duration = Duration::from_secs(300);
/// Wrong guesses a code survives.
const MAX_WRONG: u32 = 5;
/// Letters and digits that cannot be misread for each other (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Default)]
pub struct Pairing {
    state: Mutex<Codes>,
}

#[derive(Default)]
struct Codes {
    pending: Option<Pending>,
    /// The name of the machine that claimed the last code, for `GET /api/pair`.
    paired: Option<String>,
}

struct Pending {
    code: String,
    until: Instant,
    wrong: u32,
}

impl Pairing {
    fn start(&self) -> PairStarted {
        let raw = *uuid::Uuid::new_v4().as_bytes();
        let code: String = raw[..10]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let mut st = self.state.lock();
        st.paired = None;
        st.pending = Some(Pending {
            code: code.clone(),
            until: Instant::now() + CODE_LIFE,
            wrong: 0,
        });
        PairStarted {
            code,
            expires_in_s: CODE_LIFE.as_secs(),
        }
    }

    fn status(&self) -> PairStatus {
        let mut st = self.state.lock();
        if st
            .pending
            .as_ref()
            .is_some_and(|p| p.until <= Instant::now())
        {
            st.pending = None;
        }
        PairStatus {
            pending: st.pending.is_some(),
            paired: st.paired.clone(),
        }
    }

    /// Take the code if `given` is it (case and dashes do not matter); a wrong guess counts.
    fn claim(&self, given: &str) -> bool {
        let given: String = given
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let mut st = self.state.lock();
        let Some(p) = st.pending.as_mut().filter(|p| p.until > Instant::now()) else {
            st.pending = None;
            return false;
        };
        if bool::from(p.code.as_bytes().ct_eq(given.as_bytes())) {
            st.pending = None;
            return true;
        }
        p.wrong += 1;
        if p.wrong >= MAX_WRONG {
            st.pending = None;
        }
        false
    }
}

type St = State<Arc<ApiState>>;

/// Start pairing: a one-time code another machine claims with `telepty pair CODE@host`
#[utoipa::path(
    post, path = "/api/pair", operation_id = "startPairing", tag = "daemon",
    responses((status = 200, body = PairStarted)),
)]
pub async fn start(State(st): St) -> ApiResult {
    ok(st.pairing.start())
}

/// Whether the code is still open, and who claimed the last one
#[utoipa::path(
    get, path = "/api/pair", operation_id = "getPairing", tag = "daemon",
    responses((status = 200, body = PairStatus)),
)]
pub async fn status(State(st): St) -> ApiResult {
    ok(st.pairing.status())
}

/// Claim a pairing code (no token: the code is the credential)
///
/// The caller becomes a peer here (`http://<its address>:<port>` with its token) and gets this
/// machine's name and token in return.
#[utoipa::path(
    post, path = "/api/pair/claim", operation_id = "claimPairing", tag = "daemon",
    request_body = PairClaim,
    responses(
        (status = 200, body = PairClaimed),
        (status = 403, description = "`PAIR_REFUSED`: no such code, or it expired or was used", body = ErrorBody),
    ),
)]
pub async fn claim(
    State(st): St,
    ConnectInfo(conn): ConnectInfo<PeerInfo>,
    JsonBody(b): JsonBody,
) -> ApiResult {
    let req = PairClaim::parse(&b)?;
    if !st.pairing.claim(&req.code) {
        return Err(ApiError::new(
            403,
            "PAIR_REFUSED",
            "Pairing refused: no such code (or it expired or was used).",
        ));
    }
    let host = match conn.peer.ip() {
        IpAddr::V6(ip) if ip.to_ipv4_mapped().is_none() => format!("[{ip}]"),
        ip => ip.to_canonical().to_string(),
    };
    let peer = Peer {
        name: req.name.clone(),
        url: format!("http://{host}:{}", req.port),
        token: Some(req.token),
    };
    let path = st.paths.config_toml();
    tokio::task::spawn_blocking(move || crate::config::add_peer(&path, &peer))
        .await
        .map_err(|_| ApiError::new(500, "INTERNAL", "Internal error"))?
        .map_err(|e| ApiError::new(500, "INTERNAL", format!("saving the peer: {e}")))?;
    tracing::info!("paired with {} at {host}:{}", req.name, req.port);
    st.pairing.state.lock().paired = Some(req.name);
    ok(PairClaimed {
        name: st.trust.machine_id.clone(),
        token: st.trust.token.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_taken_once_and_dies_after_five_wrong_guesses() {
        let p = Pairing::default();
        let code = p.start().code;
        assert_eq!(code.len(), 10);
        assert!(!p.claim("WRONG"));
        let dashed = format!("{}-{}", &code[..5], code[5..].to_lowercase());
        assert!(p.claim(&dashed));
        assert!(!p.claim(&code), "single use");

        let code = p.start().code;
        for _ in 0..MAX_WRONG {
            assert!(!p.claim("NOPE"));
        }
        assert!(!p.claim(&code), "void after {MAX_WRONG} wrong guesses");
        assert!(!p.status().pending);
    }
}
