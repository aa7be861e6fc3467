//! Requests and responses of kitty's remote-control protocol.
//!
//! Every message is a DCS string: `ESC P @kitty-cmd <JSON> ESC \`. A request is
//! `{"cmd":…,"version":[0,14,2],"no_response":false,"payload":{…}}`; the answer is
//! `{"ok":true,"data":…}` or `{"ok":false,"error":…}`.
//!
//! kitty refuses a client whose version is newer than its own ("client … newer than this kitty
//! instance"), and kitty-rc's typed commands claim 0.43.1, which Debian's kitty 0.26 rejects.
//! So requests are built here with the lowest version any kitty with remote control accepts
//! ([`PROTOCOL_VERSION`]); kitty-rc provides the framing (`kitty-rc-frame`) and, for
//! password-protected remote control, the encryption (`kitty-rc-exchange`/`-crypto`).

use kitty_rc::Protection;
use kitty_rc::commands::{Class, Command, DecodeError};
use kitty_rc_frame::FrameDecoder;
use kitty_rc_schema::{PlainRequest, ProtocolVersion};
use serde::Serialize;
use serde_json::Value;

use super::KittyError;

/// The protocol version we claim: remote control as of kitty 0.14.2, accepted by every kitty
/// since (kitty only refuses clients newer than itself).
pub const PROTOCOL_VERSION: [u32; 3] = [0, 14, 2];

/// Upper bound of one request (payloads are small: layouts, titles, command lines).
pub const MAX_REQUEST: usize = 1 << 20;
/// Upper bound of one answer (`ls` with many windows and their environments).
pub const MAX_RESPONSE: usize = 64 << 20;

/// The JSON of a plain request, fields in the order kitty's own client writes them.
pub fn request_json(cmd: &str, payload: Option<&Value>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Request<'a> {
        cmd: &'a str,
        version: [u32; 3],
        no_response: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<&'a Value>,
    }
    serde_json::to_vec(&Request {
        cmd,
        version: PROTOCOL_VERSION,
        no_response: false,
        payload,
    })
    .unwrap_or_default()
}

/// One framed request, encrypted when `protection` carries a password.
pub fn encode_request(
    cmd: &str,
    payload: Option<&Value>,
    protection: &Protection,
) -> Result<Vec<u8>, KittyError> {
    match protection {
        Protection::Plain => Ok(kitty_rc_frame::frame(&request_json(cmd, payload))),
        Protection::Encrypted { .. } => {
            // kitty-rc's exchange layer seals the request (X25519 + AES-256-GCM, password and
            // timestamp inside) with the version our `RawCommand` claims.
            let raw = RawCommand {
                cmd: cmd.to_string(),
                payload: payload.cloned(),
            };
            let prepared = kitty_rc_exchange::prepare(&raw, protection, MAX_REQUEST)
                .map_err(|e| KittyError::Protocol(format!("cannot prepare `{cmd}`: {e}")))?;
            prepared
                .protect(protection)
                .map_err(|e| KittyError::Password(format!("cannot encrypt `{cmd}`: {e}")))
        }
    }
}

/// A command with a hand-built payload, claiming [`PROTOCOL_VERSION`].
struct RawCommand {
    cmd: String,
    payload: Option<Value>,
}

impl Command for RawCommand {
    type Output = Option<Value>;

    fn request(&self) -> PlainRequest {
        let mut r = PlainRequest::new(self.cmd.clone());
        r.version = ProtocolVersion::new(PROTOCOL_VERSION);
        r.payload = self.payload.clone();
        r
    }

    fn class(&self) -> Class {
        Class::Short
    }

    fn decode(data: Option<Value>) -> Result<Self::Output, DecodeError> {
        Ok(data)
    }
}

/// Reassembles the answer frame from socket reads.
pub struct ResponseReader {
    decoder: FrameDecoder,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader {
            decoder: FrameDecoder::with_limits(MAX_RESPONSE, MAX_RESPONSE, 4),
        }
    }
}

impl ResponseReader {
    /// Feed one read; returns the payload of the first complete frame, if any.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, KittyError> {
        self.decoder
            .extend(bytes)
            .map_err(|e| KittyError::Protocol(format!("bad answer framing: {e}")))?;
        self.decoder
            .next_frame()
            .map_err(|e| KittyError::Protocol(format!("bad answer framing: {e}")))
    }
}

/// The `data` of a successful answer (`Value::Null` when there is none); kitty's `error` as
/// [`KittyError::Remote`] otherwise.
pub fn decode_response(cmd: &str, payload: &[u8]) -> Result<Value, KittyError> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| KittyError::Protocol(format!("answer to `{cmd}` is not JSON ({e})")))?;
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(v.get("data").cloned().unwrap_or(Value::Null)),
        Some(false) => {
            let message = match v.get("error") {
                Some(Value::String(s)) => s.trim().to_string(),
                Some(other) => other.to_string(),
                None => "no reason given".to_string(),
            };
            Err(KittyError::Remote {
                cmd: cmd.to_string(),
                message,
            })
        }
        None => Err(KittyError::Protocol(format!(
            "answer to `{cmd}` has no boolean `ok`: {}",
            crate::wire::describe::cut(v.to_string(), 200)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Decode a whole framed answer.
    fn decode_framed(cmd: &str, bytes: &[u8]) -> Result<Value, KittyError> {
        match ResponseReader::default().feed(bytes)? {
            Some(p) => decode_response(cmd, &p),
            None => Err(KittyError::Protocol("incomplete answer".into())),
        }
    }

    #[test]
    fn plain_requests_have_exact_bytes() {
        let bytes = encode_request("ls", None, &Protection::Plain).unwrap();
        assert_eq!(
            bytes,
            b"\x1bP@kitty-cmd{\"cmd\":\"ls\",\"version\":[0,14,2],\"no_response\":false}\x1b\\"
                .to_vec()
        );
        let payload = json!({"layout": "grid", "match": "id:3"});
        let bytes = encode_request("goto-layout", Some(&payload), &Protection::Plain).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "\x1bP@kitty-cmd{\"cmd\":\"goto-layout\",\"version\":[0,14,2],\"no_response\":false,\
             \"payload\":{\"layout\":\"grid\",\"match\":\"id:3\"}}\x1b\\"
        );
    }

    #[test]
    fn control_characters_never_reach_the_frame_body() {
        let payload = json!({"title": "a\u{1b}\\b\u{7}"});
        let bytes = encode_request("set-window-title", Some(&payload), &Protection::Plain).unwrap();
        let body = &bytes[kitty_rc_frame::PREFIX.len()..bytes.len() - 2];
        assert!(
            !body.contains(&0x1b),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(bytes.ends_with(b"\x1b\\"));
    }

    #[test]
    fn encrypted_requests_carry_our_version_outside() {
        // Any valid X25519 public key will do to check the envelope's shape.
        let key = kitty_rc::parse_server_public_key("1:BZ^#f5u6<j1(?<@|BC4-Ve?VfcZ@0Ep2<W@Ltk}H")
            .unwrap();
        let prot = Protection::Encrypted {
            key,
            // Long enough that random ciphertext cannot contain it by chance (a two-letter
            // password made this check flaky).
            password: "telepty-test-password-0d1f3".into(),
            key_origin: "test".into(),
        };
        let bytes = encode_request("ls", Some(&json!({})), &prot).unwrap();
        assert!(bytes.starts_with(kitty_rc_frame::PREFIX));
        assert!(bytes.ends_with(kitty_rc_frame::SUFFIX));
        let body = &bytes[kitty_rc_frame::PREFIX.len()..bytes.len() - 2];
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["version"], json!([0, 14, 2]));
        for k in ["iv", "tag", "pubkey", "encrypted"] {
            assert!(v[k].is_string(), "{k} missing: {v}");
        }
        assert!(v.get("cmd").is_none(), "the command must be sealed: {v}");
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("telepty-test-password-0d1f3"),
            "password in clear: {text}"
        );
        assert!(
            !text.contains("\"password\""),
            "password field in clear: {text}"
        );
    }

    #[test]
    fn responses_are_parsed() {
        let ok = decode_framed(
            "ls",
            b"\x1bP@kitty-cmd{\"ok\": true, \"data\": \"[]\"}\x1b\\",
        );
        assert_eq!(ok.unwrap(), json!("[]"));
        let none = decode_framed("goto-layout", b"\x1bP@kitty-cmd{\"ok\": true}\x1b\\");
        assert_eq!(none.unwrap(), Value::Null);
        let err = decode_framed(
            "ls",
            b"\x1bP@kitty-cmd{\"ok\": false, \"error\": \"The kitty client you are using to send remote commands is newer than this kitty instance. This is not supported.\"}\x1b\\",
        )
        .unwrap_err();
        match &err {
            KittyError::Remote { cmd, message } => {
                assert_eq!(cmd, "ls");
                assert!(message.contains("newer than this kitty"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_framed("ls", b"\x1bP@kitty-cmd{\"data\": 1}\x1b\\"),
            Err(KittyError::Protocol(_))
        ));
        assert!(matches!(
            decode_framed("ls", b"garbage"),
            Err(KittyError::Protocol(_))
        ));
        assert!(matches!(
            decode_framed("ls", b"\x1bP@kitty-cmd{\"ok\": tr"),
            Err(KittyError::Protocol(_))
        ));
    }

    #[test]
    fn split_reads_are_reassembled() {
        let frame = b"\x1bP@kitty-cmd{\"ok\": true, \"data\": \"12\"}\x1b\\";
        let mut r = ResponseReader::default();
        for (i, b) in frame.iter().enumerate() {
            let got = r.feed(std::slice::from_ref(b)).unwrap();
            if i + 1 < frame.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(decode_response("ls", &got.unwrap()).unwrap(), json!("12"));
            }
        }
    }
}
