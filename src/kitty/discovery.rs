//! Finding kitty: `--to`, `$KITTY_LISTEN_ON`, the config's `[kitty] to`; inside a kitty window
//! that does not listen, the terminal itself; else the sockets kitty creates from `listen_on`
//! (`/tmp/kitty-sock-<pid>`, abstract `@kitty…` names on Linux).
//! Several kitties: the one holding telepty session windows, else an error listing them.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kitty_rc::Protection;
use serde_json::Value;

use super::model::{OsWindow, parse_ls, session_windows};
use super::settings::KittySettings;
use super::transport::{self, Address, DEFAULT_TIMEOUT, RemoteControl, SocketRemote};
use super::{Kitty, KittyError};

/// How long a discovered socket gets to answer `ls` while we choose among several.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Socket files in `dir` whose name mentions kitty (`kitty-sock-1234`, `mykitty-77`, …).
pub fn scan_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("kitty"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Listening Unix sockets from `/proc/net/unix` whose name mentions kitty: abstract ones
/// (`@kitty-…`) and paths anywhere.
pub fn parse_proc_net_unix(text: &str) -> Vec<Address> {
    const ACCEPTING: u32 = 0x0001_0000;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode Path
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 8 {
            continue;
        }
        let listening = u32::from_str_radix(cols[3], 16).is_ok_and(|f| f & ACCEPTING != 0);
        if !listening {
            continue;
        }
        let path = cols[7..].join(" ");
        let base = path.rsplit('/').next().unwrap_or(&path);
        if !base.contains("kitty") {
            continue;
        }
        let addr = match path.strip_prefix('@') {
            Some(name) => Address::Abstract(name.to_string()),
            None => Address::Unix(PathBuf::from(&path)),
        };
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// Directories kitty puts `listen_on` sockets in: /tmp, `$TMPDIR` (macOS) and
/// `$XDG_RUNTIME_DIR`; `$TELEPTY_KITTY_SOCKET_DIRS` (colon-separated) replaces the list (and
/// turns off the `/proc/net/unix` scan).
pub fn socket_dirs() -> Vec<PathBuf> {
    if let Some(v) = std::env::var_os("TELEPTY_KITTY_SOCKET_DIRS") {
        return std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let mut dirs = vec![PathBuf::from("/tmp")];
    for var in ["TMPDIR", "XDG_RUNTIME_DIR"] {
        if let Some(d) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            let d = PathBuf::from(d);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// Every candidate address, scanned sockets first, then the rest of `/proc/net/unix`.
pub fn candidates(dirs: &[PathBuf], proc_net_unix: Option<&str>) -> Vec<Address> {
    let mut out: Vec<Address> = Vec::new();
    for d in dirs {
        for p in scan_dir(d) {
            let a = Address::Unix(p);
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    if let Some(text) = proc_net_unix {
        for a in parse_proc_net_unix(text) {
            // The same socket may be listed under a canonical path.
            let dup = out.iter().any(|o| match (o, &a) {
                (Address::Unix(q), Address::Unix(p)) => same_file(p, q),
                _ => *o == a,
            });
            if !dup {
                out.push(a);
            }
        }
    }
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

/// What probing one candidate gave.
#[derive(Debug)]
pub enum Probe {
    /// kitty answered `ls`.
    Listing(Vec<OsWindow>),
    /// A kitty answered but refused (e.g. a password is required).
    Refused(KittyError),
    /// Nothing useful there (stale socket, not kitty, timeout).
    Dead(KittyError),
}

/// Pick one kitty among probed candidates.
pub fn choose(probed: Vec<(Address, Probe)>, known: &[String]) -> Result<Address, KittyError> {
    let looked = probed
        .iter()
        .map(|(a, p)| match p {
            Probe::Dead(e) => format!("{a} ({})", short_reason(e)),
            _ => a.to_string(),
        })
        .collect::<Vec<_>>();
    let live: Vec<&(Address, Probe)> = probed
        .iter()
        .filter(|(_, p)| matches!(p, Probe::Listing(_)))
        .collect();
    let refused: Vec<&(Address, Probe)> = probed
        .iter()
        .filter(|(_, p)| matches!(p, Probe::Refused(_)))
        .collect();
    match (live.len(), refused.len()) {
        (0, 0) => {
            let mut what = String::from("$KITTY_LISTEN_ON is not set");
            if looked.is_empty() {
                what.push_str(", and no kitty socket in /tmp");
            } else {
                what.push_str(&format!(", sockets found: {}", looked.join(", ")));
            }
            return Err(KittyError::NotFound { looked: what });
        }
        (1, _) => return Ok(live[0].0.clone()),
        (0, 1) => return Ok(refused[0].0.clone()),
        _ => {}
    }
    // Several: the one(s) holding session windows.
    let holding: Vec<&Address> = live
        .iter()
        .filter_map(|(a, p)| match p {
            Probe::Listing(l) if !session_windows(l, known).is_empty() => Some(a),
            _ => None,
        })
        .collect();
    if holding.len() == 1 {
        return Ok(holding[0].clone());
    }
    let list = probed
        .iter()
        .filter_map(|(a, p)| match p {
            Probe::Listing(l) => {
                let tabs: usize = l.iter().map(|o| o.tabs.len()).sum();
                let n = session_windows(l, known).len();
                Some(format!(
                    "{a} ({tabs} tab{}, {n} telepty window{})",
                    if tabs == 1 { "" } else { "s" },
                    if n == 1 { "" } else { "s" }
                ))
            }
            Probe::Refused(e) => Some(format!("{a} ({})", short_reason(e))),
            Probe::Dead(_) => None,
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(KittyError::Ambiguous { list })
}

fn short_reason(e: &KittyError) -> String {
    match e {
        KittyError::Connect { reason, .. } => reason.clone(),
        KittyError::Remote { message, .. } => message.clone(),
        KittyError::Timeout { .. } => "no answer".into(),
        KittyError::NoResponse { .. } => "closed without answering".into(),
        other => other.to_string(),
    }
}

/// Where to connect and with which protection, before any socket is touched.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Given by `--to`, `$KITTY_LISTEN_ON` or the config: used as is, no probing.
    pub explicit: Option<(Address, &'static str)>,
    pub protection: Protection,
    /// Why a configured password is not used, if it is not.
    pub note: Option<String>,
    pub timeout: Duration,
    /// Skip the controlling-terminal route (see `ConnectOptions::no_tty`).
    pub no_tty: bool,
}

impl Resolved {
    /// Precedence: flag > environment > config file.
    pub fn new(
        to_flag: Option<&str>,
        env_listen_on: Option<&str>,
        password: Option<&str>,
        public_key: Option<&str>,
        settings: &KittySettings,
    ) -> Result<Resolved, KittyError> {
        let pick = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let explicit = if let Some(t) = pick(to_flag) {
            Some((t.parse::<Address>()?, "--to"))
        } else if let Some(t) = pick(env_listen_on) {
            Some((
                t.parse::<Address>()
                    .map_err(|e| KittyError::Invalid(format!("$KITTY_LISTEN_ON: {e}")))?,
                "$KITTY_LISTEN_ON",
            ))
        } else if let Some(t) = pick(settings.to.as_deref()) {
            Some((t.parse::<Address>()?, "[kitty] to"))
        } else {
            None
        };
        let password = password
            .map(str::to_string)
            .or_else(|| settings.password.clone())
            .filter(|p| !p.is_empty());
        let key = pick(public_key).or_else(|| pick(settings.public_key.as_deref()));
        let (protection, note) = match (password, key) {
            (None, _) => (Protection::Plain, None),
            (Some(password), Some(key)) => {
                let key = kitty_rc::parse_server_public_key(&key)
                    .map_err(|e| KittyError::Password(format!("invalid KITTY_PUBLIC_KEY: {e}")))?;
                (
                    Protection::Encrypted {
                        key,
                        password,
                        key_origin: "KITTY_PUBLIC_KEY".into(),
                    },
                    None,
                )
            }
            (Some(_), None) => (
                Protection::Plain,
                Some(
                    "a remote-control password is configured but cannot be used: kitty's public \
                     key is unknown; run telepty inside a kitty window, where kitty sets \
                     KITTY_PUBLIC_KEY, or export KITTY_PUBLIC_KEY from one"
                        .to_string(),
                ),
            ),
        };
        Ok(Resolved {
            explicit,
            protection,
            note,
            timeout: DEFAULT_TIMEOUT,
            no_tty: false,
        })
    }

    pub fn remote(&self, addr: Address) -> SocketRemote {
        let mut r = SocketRemote::new(addr, self.protection.clone());
        r.timeout = self.timeout;
        r.note = self.note.clone();
        r
    }
}

/// Connect: the explicit address, else probe the discovered sockets and choose.
pub async fn connect_resolved(
    res: &Resolved,
    known: &[String],
) -> Result<Kitty<SocketRemote>, KittyError> {
    if let Some((addr, _)) = &res.explicit {
        return Ok(Kitty::new(res.remote(addr.clone())));
    }
    // Inside a kitty window whose kitty does not listen on a socket ($KITTY_LISTEN_ON unset):
    // talk to that kitty through the terminal rather than to some other kitty.
    if !res.no_tty && transport::tty_route_available() {
        return Ok(Kitty::new(res.remote(Address::Tty)));
    }
    // `$TELEPTY_KITTY_SOCKET_DIRS` restricts the search to those directories.
    let proc_text = if std::env::var_os("TELEPTY_KITTY_SOCKET_DIRS").is_some() {
        None
    } else {
        std::fs::read_to_string("/proc/net/unix").ok()
    };
    let found = candidates(&socket_dirs(), proc_text.as_deref());
    let mut probed = Vec::with_capacity(found.len());
    for addr in found {
        let mut rc = res.remote(addr.clone());
        rc.timeout = PROBE_TIMEOUT.min(res.timeout);
        let p = match rc.call("ls", Value::Null).await {
            Ok(data) => parse_ls(&data).map_or_else(Probe::Dead, Probe::Listing),
            Err(e @ (KittyError::Remote { .. } | KittyError::NoResponse { .. })) => {
                Probe::Refused(e)
            }
            Err(e) => Probe::Dead(e),
        };
        probed.push((addr, p));
    }
    let addr = choose(probed, known)?;
    Ok(Kitty::new(res.remote(addr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kitty::model::{Tab, Window};

    #[test]
    fn sockets_named_kitty_are_found_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let _a = std::os::unix::net::UnixListener::bind(d.join("kitty-sock-1234")).unwrap();
        let _b = std::os::unix::net::UnixListener::bind(d.join("mykitty")).unwrap();
        let _c = std::os::unix::net::UnixListener::bind(d.join("other-sock")).unwrap();
        std::fs::write(d.join("kitty-sock-9"), b"a regular file").unwrap();
        std::fs::create_dir(d.join("kitty-dir")).unwrap();
        let found = scan_dir(d);
        assert_eq!(found, vec![d.join("kitty-sock-1234"), d.join("mykitty")]);
        assert!(scan_dir(&d.join("missing")).is_empty());
        let c = candidates(&[d.to_path_buf(), d.to_path_buf()], None);
        assert_eq!(c.len(), 2, "{c:?}");
    }

    #[test]
    fn proc_net_unix_lists_listening_kitty_sockets() {
        let text = "\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 41234 @kitty-main
0000000000000000: 00000002 00000000 00010000 0001 01 41235 /tmp/kitty-sock-77
0000000000000000: 00000003 00000000 00000000 0001 03 41236 @kitty-main
0000000000000000: 00000002 00000000 00010000 0001 01 41237 /run/user/0/bus
0000000000000000: 00000002 00000000 00000000 0001 03 41238 /tmp/kitty-sock-88
0000000000000000: 00000002 00000000 00010000 0005 01 41239
";
        assert_eq!(
            parse_proc_net_unix(text),
            vec![
                Address::Abstract("kitty-main".into()),
                Address::Unix("/tmp/kitty-sock-77".into())
            ]
        );
    }

    fn listing(windows: &[&[&str]]) -> Vec<OsWindow> {
        vec![OsWindow {
            id: 1,
            tabs: vec![Tab {
                id: 1,
                windows: windows
                    .iter()
                    .enumerate()
                    .map(|(i, argv)| Window {
                        id: i as u64 + 1,
                        cmdline: argv.iter().map(|s| s.to_string()).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn choosing_among_several_kitties() {
        let a = Address::Unix("/tmp/kitty-sock-1".into());
        let b = Address::Unix("/tmp/kitty-sock-2".into());
        let stale = Address::Unix("/tmp/kitty-sock-3".into());
        let dead = || {
            Probe::Dead(KittyError::Connect {
                addr: "x".into(),
                reason: "connection refused".into(),
            })
        };
        // Nothing at all.
        let e = choose(vec![], &[]).unwrap_err();
        assert!(matches!(e, KittyError::NotFound { .. }));
        assert!(e.to_string().contains("allow_remote_control yes"), "{e}");
        // Only stale sockets: listed in the error.
        let e = choose(vec![(stale.clone(), dead())], &[]).unwrap_err();
        assert!(
            e.to_string().contains("kitty-sock-3 (connection refused)"),
            "{e}"
        );
        // One live kitty among stale sockets.
        let got = choose(
            vec![
                (stale.clone(), dead()),
                (a.clone(), Probe::Listing(listing(&[&["bash"]]))),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(got, a);
        // Two live: the one holding session windows wins.
        let got = choose(
            vec![
                (a.clone(), Probe::Listing(listing(&[&["bash"]]))),
                (
                    b.clone(),
                    Probe::Listing(listing(&[&["telepty", "attach", "w1"]])),
                ),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(got, b);
        // Two live, neither (or both) holding sessions: an error listing them.
        let e = choose(
            vec![
                (a.clone(), Probe::Listing(listing(&[&["bash"]]))),
                (b.clone(), Probe::Listing(listing(&[&["bash"], &["zsh"]]))),
                (stale, dead()),
            ],
            &[],
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, KittyError::Ambiguous { .. }));
        assert!(
            msg.contains("unix:/tmp/kitty-sock-1 (1 tab, 0 telepty windows)")
                && msg.contains("unix:/tmp/kitty-sock-2 (1 tab, 0 telepty windows)")
                && msg.contains("--to"),
            "{msg}"
        );
        // A kitty that refuses (password) is still chosen when it is the only one.
        let refused = Probe::Refused(KittyError::Remote {
            cmd: "ls".into(),
            message: "Remote control is disabled".into(),
        });
        assert_eq!(choose(vec![(a.clone(), refused)], &[]).unwrap(), a);
    }

    #[test]
    fn explicit_addresses_take_precedence() {
        let s = KittySettings {
            to: Some("unix:/from/config".into()),
            ..Default::default()
        };
        let r = Resolved::new(Some("tcp:127.0.0.1:9"), Some("unix:/env"), None, None, &s).unwrap();
        assert_eq!(r.explicit.unwrap().1, "--to");
        let r = Resolved::new(None, Some("unix:@kitty-env"), None, None, &s).unwrap();
        assert_eq!(
            r.explicit.unwrap(),
            (Address::Abstract("kitty-env".into()), "$KITTY_LISTEN_ON")
        );
        let r = Resolved::new(None, Some(""), None, None, &s).unwrap();
        assert_eq!(r.explicit.unwrap().1, "[kitty] to");
        let r = Resolved::new(None, None, None, None, &KittySettings::default()).unwrap();
        assert!(r.explicit.is_none());
        assert!(Resolved::new(Some("bogus"), None, None, None, &s).is_err());
    }

    #[test]
    fn passwords_need_kittys_public_key() {
        let s = KittySettings::default();
        let r = Resolved::new(None, None, Some("pw"), None, &s).unwrap();
        assert!(matches!(r.protection, Protection::Plain));
        assert!(r.note.unwrap().contains("KITTY_PUBLIC_KEY"));
        let key = "1:BZ^#f5u6<j1(?<@|BC4-Ve?VfcZ@0Ep2<W@Ltk}H";
        let r = Resolved::new(None, None, Some("pw"), Some(key), &s).unwrap();
        assert!(matches!(r.protection, Protection::Encrypted { .. }));
        let s = KittySettings {
            password: Some("from-config".into()),
            ..Default::default()
        };
        let r = Resolved::new(None, None, None, Some(key), &s).unwrap();
        match r.protection {
            Protection::Encrypted { password, .. } => assert_eq!(password, "from-config"),
            other => panic!("{other:?}"),
        }
        assert!(Resolved::new(None, None, Some("pw"), Some("2:zz"), &s).is_err());
    }
}
