//! Printing helpers shared by the commands: failures, stdout lines, JSON, small formatters.

use std::fmt::Display;
use std::io::Write;
use std::time::SystemTime;

use serde_json::Value;

use crate::client::ClientError;

/// A command failure: exactly one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub line: String,
    pub code: i32,
}

impl Failure {
    /// `telepty: <what>: <why>` with exit code 1.
    pub fn new(what: &str, why: impl Display) -> Failure {
        Failure {
            line: format!("telepty: {what}: {}", one_line(&why.to_string())),
            code: 1,
        }
    }

    /// `telepty: <why>` with exit code 1.
    pub fn plain(why: impl Display) -> Failure {
        Failure {
            line: format!("telepty: {}", one_line(&why.to_string())),
            code: 1,
        }
    }

    /// A usage problem found after parsing (exit code 2).
    pub fn usage(msg: impl Display) -> Failure {
        Failure {
            code: 2,
            ..Failure::plain(msg)
        }
    }

    /// A client error while doing `action` ("inject" → `telepty: inject failed: …`). Errors
    /// that are about reaching/starting the daemon stand on their own.
    pub fn client(action: &str, err: ClientError) -> Failure {
        match err {
            ClientError::Connect { .. }
            | ClientError::DaemonStart(_)
            | ClientError::Config(_)
            | ClientError::Timeout { .. } => Failure::plain(err),
            other => Failure::new(&format!("{action} failed"), other),
        }
    }
}

/// `?` for client calls: the error becomes the command's failure for `action`.
pub trait OrFail<T> {
    fn or_fail(self, action: &str) -> Result<T, Failure>;
}

impl<T> OrFail<T> for Result<T, ClientError> {
    fn or_fail(self, action: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::client(action, e))
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write one line to stdout. Returns false when stdout is gone (closed pipe).
pub fn line(s: impl Display) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").and_then(|_| out.flush()).is_ok()
}

/// Write text that may or may not end in a newline, ending it with exactly one.
pub fn text_block(s: &str) -> bool {
    s.is_empty() || line(s.strip_suffix('\n').unwrap_or(s))
}

/// Pretty JSON on stdout.
pub fn json(v: &impl serde::Serialize) -> bool {
    // Serialising the CLI's types cannot fail: string keys, finite numbers.
    line(serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `--json`: the answer as pretty JSON; otherwise the line `text` makes.
pub fn json_or<T: Display>(json: bool, v: &impl serde::Serialize, text: impl FnOnce() -> T) {
    if json {
        self::json(v);
    } else {
        line(text());
    }
}

/// `--json`: the items as a JSON array; otherwise one line each (until stdout is gone).
pub fn json_or_lines<T: Display + serde::Serialize>(json: bool, items: &[T]) {
    if json {
        self::json(&items);
    } else {
        for item in items {
            if !line(item) {
                break;
            }
        }
    }
}

/// The name a `ValueEnum` value is given on the command line (and on the wire).
pub fn value_name(v: &impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// A string field (or "").
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A string field, or `fallback` when it is missing or empty.
pub fn s_or<'a>(v: &'a Value, key: &str, fallback: &'a str) -> &'a str {
    match s(v, key) {
        "" => fallback,
        x => x,
    }
}

/// `12s`, `5m`, `3h`, `2d`; `-` when unknown.
pub fn short_duration(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 86_400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

pub use crate::wire::describe::{opt, shorten};

/// Replace the home directory prefix by `~`.
pub fn tilde(path: &str, home: Option<&str>) -> String {
    let home = home.filter(|h| !h.is_empty() && *h != "/");
    match home.and_then(|h| path.strip_prefix(h)) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("~{rest}"),
        _ => path.to_string(),
    }
}

/// `HH:MM:SS` in local time.
pub fn clock(t: SystemTime) -> String {
    let secs = crate::util::unix_secs(t) as libc::time_t;
    // SAFETY: localtime_r only writes into the zeroed `tm` we pass it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if ok {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let s = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// Render rows as a left-aligned table with two spaces between columns; the last column is
/// not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (i, cell) in cells.enumerate().take(n) {
            line.push_str(cell);
            if i + 1 < n {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(&mut headers.iter().copied());
    for r in rows {
        push_row(&mut r.iter().map(String::as_str));
    }
    out
}

/// The ids in a session list answer; with `running`, only the sessions whose process has not
/// exited.
pub(crate) fn session_ids(list: &Value, running: bool) -> Vec<String> {
    let all = list.as_array().map(Vec::as_slice).unwrap_or_default();
    all.iter()
        .filter(|x| !running || x.get("exitedAt").is_none_or(Value::is_null))
        .filter_map(|x| x.get("id").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures() {
        let f = Failure::client(
            "inject",
            ClientError::from_response(
                404,
                br#"{"code":"SESSION_NOT_FOUND","error":"Session not found","requested":"no-such"}"#,
            ),
        );
        assert_eq!(
            f.line,
            "telepty: inject failed: Session not found (SESSION_NOT_FOUND: no-such)"
        );
        assert_eq!(f.code, 1);
        let f = Failure::client(
            "list",
            ClientError::Connect {
                addr: "127.0.0.1:3848".into(),
                reason: "connection refused".into(),
            },
        );
        assert_eq!(
            f.line,
            "telepty: cannot reach the telepty daemon at 127.0.0.1:3848: connection refused"
        );
        assert_eq!(Failure::new("x", "a\nb").line, "telepty: x: a b");
    }

    #[test]
    fn durations_and_strings() {
        assert_eq!(short_duration(None), "-");
        assert_eq!(short_duration(Some(0)), "0s");
        assert_eq!(short_duration(Some(59)), "59s");
        assert_eq!(short_duration(Some(61)), "1m");
        assert_eq!(short_duration(Some(7200)), "2h");
        assert_eq!(short_duration(Some(200_000)), "2d");
        assert_eq!(shorten("a\nb", 10), "a\\nb");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("\x1b[0m", 20), "\\u{1b}[0m");
        assert_eq!(tilde("/home/u/p", Some("/home/u")), "~/p");
        assert_eq!(tilde("/home/u", Some("/home/u")), "~");
        assert_eq!(tilde("/home/user2", Some("/home/u")), "/home/user2");
        assert_eq!(tilde("/x", None), "/x");
    }

    #[test]
    fn table_layout() {
        let t = table(
            &["ID", "TYPE", "CWD"],
            &[
                vec!["worker-1".into(), "spawned".into(), "/tmp".into()],
                vec!["a".into(), "wrapped".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "ID        TYPE     CWD\nworker-1  spawned  /tmp\na         wrapped\n"
        );
    }

    #[test]
    fn clock_format() {
        let c = clock(SystemTime::now());
        assert_eq!(c.len(), 8);
        assert_eq!(&c[2..3], ":");
    }
}
