//! Where kitty listens and how one request travels there: our small [`RemoteControl`] trait
//! and its socket implementation.

use std::fmt;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use kitty_rc::Protection;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};
use serde_json::Value;

use super::KittyError;
use super::protocol::{ResponseReader, decode_response, encode_request};

/// Default time kitty gets to answer one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A remote-control address, as kitty's `--listen-on` / `$KITTY_LISTEN_ON` spell it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// `unix:/path/to/socket`
    Unix(PathBuf),
    /// `unix:@name` (Linux abstract namespace)
    Abstract(String),
    /// `tcp:host:port` (`tcp:[::1]:port` for IPv6)
    Tcp { host: String, port: u16 },
    /// The controlling terminal (`/dev/tty`), when this runs inside a kitty window that does
    /// not listen on a socket. kitty reads the request from the window's output and writes its
    /// answer to the window's input.
    Tty,
}

impl FromStr for Address {
    type Err = KittyError;

    fn from_str(s: &str) -> Result<Address, KittyError> {
        let bad = |why: &str| {
            KittyError::Invalid(format!(
                "invalid kitty address {s:?}: {why} (use unix:PATH, unix:@NAME, tcp:HOST:PORT or tty)"
            ))
        };
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("unix:") {
            if let Some(name) = rest.strip_prefix('@') {
                if name.is_empty() {
                    return Err(bad("empty abstract socket name"));
                }
                return Ok(Address::Abstract(name.to_string()));
            }
            if rest.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Address::Unix(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("tcp:").or_else(|| s.strip_prefix("tcp6:")) {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(bad("missing host"));
            }
            let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
            return Ok(Address::Tcp {
                host: host.to_string(),
                port,
            });
        }
        if s.starts_with("fd:") {
            return Err(bad(
                "an inherited file descriptor only works for kitty's own children",
            ));
        }
        if s == "tty" {
            return Ok(Address::Tty);
        }
        if s.starts_with('/') {
            // A bare path is what people type most; accept it.
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        Err(bad("unknown scheme"))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Abstract(n) => write!(f, "unix:@{n}"),
            Address::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Address::Tty => f.write_str("tty"),
        }
    }
}

/// One kitty reached by remote control. Implemented by [`SocketRemote`]; tests use fakes.
pub trait RemoteControl: Send + Sync {
    /// Send `cmd` with `payload`; the answer's `data` (`Value::Null` when kitty sent none).
    fn call(
        &self,
        cmd: &str,
        payload: Value,
    ) -> impl Future<Output = Result<Value, KittyError>> + Send;

    /// Where this kitty listens, for messages.
    fn describe(&self) -> String;
}

/// Remote control over kitty's socket: one connection per request (every kitty version
/// answers that way), blocking I/O on the blocking pool.
#[derive(Clone, Debug)]
pub struct SocketRemote {
    pub addr: Address,
    pub protection: Protection,
    pub timeout: Duration,
    /// Said after refusals, e.g. why a configured password could not be used.
    pub note: Option<String>,
}

impl SocketRemote {
    pub fn new(addr: Address, protection: Protection) -> SocketRemote {
        SocketRemote {
            addr,
            protection,
            timeout: DEFAULT_TIMEOUT,
            note: None,
        }
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.protection, Protection::Encrypted { .. })
    }

    /// One request, blocking (at most about `timeout`).
    pub fn call_blocking(&self, cmd: &str, payload: &Value) -> Result<Value, KittyError> {
        let payload = (!payload.is_null()).then_some(payload);
        let bytes = encode_request(cmd, payload, &self.protection)?;
        let answer = exchange(&self.addr, &bytes, self.timeout).map_err(|e| match e {
            KittyError::NoResponse { addr, .. } => KittyError::NoResponse {
                addr,
                encrypted: self.is_encrypted(),
            },
            other => other,
        })?;
        decode_response(cmd, &answer).map_err(|e| match (e, &self.note) {
            (KittyError::Remote { cmd, message }, Some(note)) => {
                KittyError::Password(format!("kitty refused `{cmd}`: {message}; {note}"))
            }
            (e, _) => e,
        })
    }
}

impl RemoteControl for SocketRemote {
    fn call(
        &self,
        cmd: &str,
        payload: Value,
    ) -> impl Future<Output = Result<Value, KittyError>> + Send {
        let this = self.clone();
        let cmd = cmd.to_string();
        async move {
            let addr = this.addr.to_string();
            tokio::task::spawn_blocking(move || this.call_blocking(&cmd, &payload))
                .await
                .map_err(|e| KittyError::Io {
                    addr,
                    reason: format!("request task failed: {e}"),
                })?
        }
    }

    fn describe(&self) -> String {
        self.addr.to_string()
    }
}

/// A connected socket, Unix or TCP.
trait Stream: Read + Write {
    /// Read and write timeouts (`None`: block).
    fn timeouts(&self, t: Option<Duration>) -> std::io::Result<()>;

    fn set_timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.timeouts(Some(t.max(Duration::from_millis(1))))
    }
}

impl Stream for UnixStream {
    fn timeouts(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
            .and_then(|_| self.set_write_timeout(t))
    }
}

impl Stream for TcpStream {
    fn timeouts(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
            .and_then(|_| self.set_write_timeout(t))
    }
}

fn connect_error(addr: &Address, e: &std::io::Error) -> KittyError {
    use std::io::ErrorKind;
    let reason = match e.kind() {
        ErrorKind::NotFound => "no such socket".to_string(),
        ErrorKind::ConnectionRefused => {
            "connection refused (no kitty listens there any more)".to_string()
        }
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    KittyError::Connect {
        addr: addr.to_string(),
        reason,
    }
}

fn connect(addr: &Address, timeout: Duration) -> Result<Box<dyn Stream>, KittyError> {
    match addr {
        Address::Unix(path) => UnixStream::connect(path)
            .map(|s| Box::new(s) as Box<dyn Stream>)
            .map_err(|e| connect_error(addr, &e)),
        Address::Abstract(name) => connect_abstract(addr, name),
        Address::Tty => Err(KittyError::Invalid("the terminal is not a socket".into())),
        Address::Tcp { host, port } => {
            let addrs: Vec<_> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| connect_error(addr, &e))?
                .collect();
            let mut last = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, timeout) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Box::new(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(match last {
                Some(e) => connect_error(addr, &e),
                None => KittyError::Connect {
                    addr: addr.to_string(),
                    reason: "the host name has no address".into(),
                },
            })
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_abstract(addr: &Address, name: &str) -> Result<Box<dyn Stream>, KittyError> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| connect_error(addr, &e))?;
    UnixStream::connect_addr(&sa)
        .map(|s| Box::new(s) as Box<dyn Stream>)
        .map_err(|e| connect_error(addr, &e))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn connect_abstract(addr: &Address, _name: &str) -> Result<Box<dyn Stream>, KittyError> {
    Err(KittyError::Connect {
        addr: addr.to_string(),
        reason: "abstract sockets exist on Linux only".into(),
    })
}

/// Send one framed request and return the payload of kitty's answer frame.
pub fn exchange(addr: &Address, request: &[u8], timeout: Duration) -> Result<Vec<u8>, KittyError> {
    if *addr == Address::Tty {
        return exchange_tty(request, timeout);
    }
    let deadline = Instant::now() + timeout;
    let mut stream = connect(addr, timeout)?;
    let io = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            KittyError::Timeout {
                addr: addr.to_string(),
                after: timeout,
            }
        } else {
            KittyError::Io {
                addr: addr.to_string(),
                reason: e.to_string(),
            }
        }
    };
    stream.set_timeouts(timeout).map_err(io)?;
    stream.write_all(request).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut reader = ResponseReader::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(KittyError::Timeout {
                addr: addr.to_string(),
                after: timeout,
            });
        }
        stream.set_timeouts(left).map_err(io)?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            return Err(KittyError::NoResponse {
                addr: addr.to_string(),
                encrypted: false,
            });
        }
        if let Some(payload) = reader.feed(&buf[..n])? {
            return Ok(payload);
        }
    }
}

/// Restores the terminal's mode when dropped (through its own descriptor of the same tty).
struct TermiosGuard {
    tty: std::fs::File,
    saved: Termios,
}

impl Drop for TermiosGuard {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.tty, SetArg::TCSANOW, &self.saved);
    }
}

/// One request over the controlling terminal: raw mode, write the request, read kitty's answer
/// from the input (bytes typed before it are dropped), restore the mode.
fn exchange_tty(request: &[u8], timeout: Duration) -> Result<Vec<u8>, KittyError> {
    use std::os::fd::AsFd;
    let addr = Address::Tty.to_string();
    let io = |e: std::io::Error| KittyError::Io {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| KittyError::Connect {
            addr: addr.clone(),
            reason: format!("no controlling terminal ({e})"),
        })?;
    let saved = termios::tcgetattr(&tty).map_err(|e| io(e.into()))?;
    let mut raw = saved.clone();
    let _guard = TermiosGuard {
        tty: tty.try_clone().map_err(io)?,
        saved,
    };
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(&tty, SetArg::TCSANOW, &raw).map_err(|e| io(e.into()))?;
    tty.write_all(request).map_err(io)?;
    tty.flush().map_err(io)?;
    let prefix = kitty_rc_frame::PREFIX;
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<u8> = Vec::new();
    let mut reader: Option<ResponseReader> = None;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(KittyError::Timeout {
                addr: addr.clone(),
                after: timeout,
            });
        }
        let mut pfd = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
        let timeout =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        match poll(&mut pfd, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(io(e.into())),
        }
        let got = tty.read(&mut buf).map_err(io)?;
        if got == 0 {
            return Err(KittyError::NoResponse {
                addr: addr.clone(),
                encrypted: false,
            });
        }
        let mut chunk = &buf[..got];
        let owned;
        if reader.is_none() {
            // Skip anything before the answer's introducer (typed-ahead keys).
            pending.extend_from_slice(chunk);
            match pending.windows(prefix.len()).position(|w| w == prefix) {
                Some(at) => {
                    owned = pending.split_off(at);
                    chunk = &owned;
                    reader = Some(ResponseReader::default());
                }
                None => {
                    let keep = pending.len().min(prefix.len() - 1);
                    pending.drain(..pending.len() - keep);
                    continue;
                }
            }
        }
        if let Some(r) = reader.as_mut()
            && let Some(payload) = r.feed(chunk)?
        {
            return Ok(payload);
        }
    }
}

/// Inside a kitty window (`KITTY_WINDOW_ID`), not inside tmux or screen (which would swallow
/// the request), with a controlling terminal.
pub fn tty_route_available() -> bool {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    set("KITTY_WINDOW_ID")
        && !set("TMUX")
        && !std::env::var("TERM").is_ok_and(|t| t.starts_with("screen") || t.starts_with("tmux"))
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_parse_and_print() {
        let cases = [
            (
                "unix:/tmp/kitty-sock-12",
                Address::Unix("/tmp/kitty-sock-12".into()),
            ),
            ("unix:@kitty-main", Address::Abstract("kitty-main".into())),
            (
                "tcp:localhost:5000",
                Address::Tcp {
                    host: "localhost".into(),
                    port: 5000,
                },
            ),
            (
                "tcp:[::1]:5000",
                Address::Tcp {
                    host: "::1".into(),
                    port: 5000,
                },
            ),
        ];
        for (text, want) in cases {
            let got: Address = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), text);
        }
        assert_eq!(
            "/tmp/x".parse::<Address>().unwrap(),
            Address::Unix("/tmp/x".into())
        );
        for bad in [
            "",
            "unix:",
            "unix:@",
            "tcp:host",
            "tcp::1",
            "tcp:h:99999",
            "fd:3",
            "x:y",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }

    /// A fake kitty on a socket: answers each connection with `answer` after reading one frame.
    fn fake_kitty(
        path: &std::path::Path,
        answer: &'static [u8],
    ) -> std::thread::JoinHandle<Vec<u8>> {
        let l = std::os::unix::net::UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(b"\x1b\\") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            // Split the answer in two writes to exercise reassembly.
            let (a, b) = answer.split_at(answer.len() / 2);
            s.write_all(a).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b).unwrap();
            got
        })
    }

    #[test]
    fn one_request_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kitty-sock-1");
        let h = fake_kitty(
            &path,
            b"\x1bP@kitty-cmd{\"ok\": true, \"data\": \"7\"}\x1b\\",
        );
        let rc = SocketRemote::new(Address::Unix(path), Protection::Plain);
        let got = rc
            .call_blocking("launch", &json!({"args": ["true"]}))
            .unwrap();
        assert_eq!(got, json!("7"));
        let sent = h.join().unwrap();
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "\x1bP@kitty-cmd{\"cmd\":\"launch\",\"version\":[0,14,2],\"no_response\":false,\
             \"payload\":{\"args\":[\"true\"]}}\x1b\\"
        );
    }

    #[test]
    fn silence_and_absence_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = SocketRemote::new(Address::Unix(dir.path().join("nope")), Protection::Plain);
        let e = missing.call_blocking("ls", &Value::Null).unwrap_err();
        assert!(matches!(e, KittyError::Connect { .. }), "{e:?}");
        assert!(e.to_string().contains("allow_remote_control yes"), "{e}");

        // A listener that closes without answering.
        let path = dir.path().join("kitty-sock-2");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            drop(s);
        });
        let rc = SocketRemote::new(Address::Unix(path), Protection::Plain);
        let e = rc.call_blocking("ls", &Value::Null).unwrap_err();
        h.join().unwrap();
        assert!(matches!(e, KittyError::NoResponse { .. }), "{e:?}");

        // A listener that never answers.
        let path = dir.path().join("kitty-sock-3");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(600));
            drop(s);
        });
        let mut rc = SocketRemote::new(Address::Unix(path), Protection::Plain);
        rc.timeout = Duration::from_millis(200);
        let e = rc.call_blocking("ls", &Value::Null).unwrap_err();
        h.join().unwrap();
        assert!(matches!(e, KittyError::Timeout { .. }), "{e:?}");
    }
}
