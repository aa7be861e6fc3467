//! Errors of the daemon client.

use std::time::Duration;

use serde_json::Value;

/// Why a call to a telepty daemon failed. The `Display` text is meant to follow
/// `telepty: <what failed>: ` on one stderr line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the address (daemon not running, wrong host/port, network down).
    #[error("cannot reach the telepty daemon at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The daemon answered with a non-2xx status and (usually) its `{code, error}` body.
    #[error("{}", http_message(message, code, body))]
    Http {
        status: u16,
        code: String,
        message: String,
        body: Value,
    },
    /// The daemon accepted the connection but did not answer in time.
    #[error("the telepty daemon at {addr} did not answer within {}", fmt_duration(*after))]
    Timeout { addr: String, after: Duration },
    /// The answer was not what the API contract promises (not JSON, broken connection…).
    #[error("bad response from the telepty daemon at {addr}: {reason}")]
    BadResponse { addr: String, reason: String },
    /// An address, target or client setting could not be understood.
    #[error("{0}")]
    BadAddress(String),
    /// `config.toml` is invalid (the settings error: `config.toml:LINE: message (key k)`), so
    /// the daemon's address cannot be known.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An open connection (WebSocket) to the daemon broke.
    #[error("lost the connection to the telepty daemon at {addr}")]
    Disconnected { addr: String },
    /// A local daemon had to be started and did not come up.
    #[error("cannot start the telepty daemon: {0}")]
    DaemonStart(String),
}

fn http_message(message: &str, code: &str, body: &Value) -> String {
    match body.get("requested").and_then(Value::as_str) {
        Some(req) => format!("{message} ({code}: {req})"),
        None => format!("{message} ({code})"),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl ClientError {
    /// The daemon's error `code` (`SESSION_NOT_FOUND`, …) for an HTTP error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Http { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The daemon's JSON error body for an HTTP error.
    pub fn body(&self) -> Option<&Value> {
        match self {
            ClientError::Http { body, .. } => Some(body),
            _ => None,
        }
    }

    /// True when nothing answered at the address (as opposed to an answer we did not like).
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }

    /// Build an HTTP error from a status and a response body (JSON `{code, error}` or anything).
    pub fn from_response(status: u16, body: &[u8]) -> ClientError {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let code = json
            .get("code")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP_{status}"));
        let message = json
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP status {status}")
                } else {
                    one_line(text, 200)
                }
            });
        ClientError::Http {
            status,
            code,
            message,
            body: json,
        }
    }
}

/// Make an OS/library error message fit a one-line report: `Connection refused (os error 111)`
/// becomes `connection refused`.
pub(crate) fn tidy_reason(msg: &str) -> String {
    let mut s = msg.trim();
    if let Some(pos) = s.find(" (os error ") {
        s = &s[..pos];
    }
    let mut out = one_line(s, 300);
    if let Some(first) = out.chars().next() {
        // Lower-case a leading capital unless the first word has others ("DNS", "WebSocket").
        let word = out.split(' ').next().unwrap_or("");
        if first.is_uppercase() && !word.chars().skip(1).any(char::is_uppercase) {
            out = first.to_lowercase().collect::<String>() + &out[first.len_utf8()..];
        }
    }
    out
}

/// Collapse whitespace runs (newlines included) and cut to `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        joined
    } else {
        let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_error_display_includes_code_and_requested() {
        let e = ClientError::from_response(
            404,
            br#"{"success":false,"code":"SESSION_NOT_FOUND","error":"Session not found","requested":"no-such"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Session not found (SESSION_NOT_FOUND: no-such)"
        );
        assert_eq!(e.code(), Some("SESSION_NOT_FOUND"));
        let e = ClientError::from_response(410, br#"{"code":"STALE","error":"Session is stale"}"#);
        assert_eq!(e.to_string(), "Session is stale (STALE)");
    }

    #[test]
    fn http_error_without_json() {
        let e = ClientError::from_response(502, b"<html>\nBad gateway\n</html>");
        assert_eq!(e.to_string(), "<html> Bad gateway </html> (HTTP_502)");
        let e = ClientError::from_response(500, b"");
        assert_eq!(e.to_string(), "HTTP status 500 (HTTP_500)");
    }

    #[test]
    fn reasons_are_tidied() {
        assert_eq!(
            tidy_reason("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(tidy_reason("DNS error: x"), "DNS error: x");
        assert_eq!(tidy_reason("WebSocket error"), "WebSocket error");
        let e = ClientError::Connect {
            addr: "127.0.0.1:3848".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach the telepty daemon at 127.0.0.1:3848: connection refused"
        );
        let e = ClientError::Timeout {
            addr: "h:1".into(),
            after: Duration::from_secs(10),
        };
        assert_eq!(
            e.to_string(),
            "the telepty daemon at h:1 did not answer within 10 s"
        );
    }
}
