//! Peers that did not answer lately, remembered across commands for [`DOWN_TTL`] in
//! `~/.telepty/run/peer-health.json` (0600, per HOME).
//!
//! A listing or a bare id's search gives such a peer [`RECHECK`] instead of the whole peer
//! deadline: a dead or hung machine costs each command a fraction of a second instead of
//! 2.5 s, and is still asked every time, so an answer clears it at once. The entry expires
//! after [`DOWN_TTL`]: a peer that is alive but slower than [`RECHECK`] gets its full deadline
//! again. Actions (inject, multicast, broadcast) never skip a peer on this record.
//!
//! The file is a cache: a lost or concurrent update only means one full deadline more, so it
//! is written plainly (no fsync) and read without locking.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{ClientError, DaemonAddr};

/// How long a failure is remembered.
pub const DOWN_TTL: Duration = Duration::from_secs(60);
/// The deadline of a peer remembered as down.
pub const RECHECK: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Record {
    /// authority → when it failed (ms since the epoch) and why.
    #[serde(default)]
    down: BTreeMap<String, Down>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Down {
    at_ms: u64,
    error: String,
}

/// The record of one HOME, read once per process.
pub struct PeerHealth {
    path: PathBuf,
    record: Mutex<Record>,
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

impl PeerHealth {
    pub fn load(path: PathBuf) -> PeerHealth {
        let record = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        PeerHealth {
            path,
            record: Mutex::new(record),
        }
    }

    /// This HOME's record.
    pub fn of_home() -> PeerHealth {
        let dir = crate::config::Paths::from_env().runtime_dir();
        PeerHealth::load(dir.join("peer-health.json"))
    }

    /// The deadline for asking the peer at `addr`: `full`, or [`RECHECK`] if it failed within
    /// [`DOWN_TTL`].
    pub fn deadline(&self, addr: &DaemonAddr, full: Duration) -> Duration {
        let record = self.record.lock();
        let recent = record
            .down
            .get(&addr.authority())
            .is_some_and(|d| now_ms().saturating_sub(d.at_ms) < DOWN_TTL.as_millis() as u64);
        if recent { full.min(RECHECK) } else { full }
    }

    /// What asking it gave: a failure to connect or to answer in time is remembered, an
    /// answer (even an error answer) clears it.
    pub fn record<T>(&self, addr: &DaemonAddr, result: &Result<T, ClientError>) {
        let key = addr.authority();
        let mut record = self.record.lock();
        let changed = match result {
            Err(e @ (ClientError::Timeout { .. } | ClientError::Connect { .. })) => {
                let fresh = record.down.get(&key).is_none_or(|d| {
                    now_ms().saturating_sub(d.at_ms) >= DOWN_TTL.as_millis() as u64 / 2
                });
                if fresh {
                    let down = Down {
                        at_ms: now_ms(),
                        error: e.to_string(),
                    };
                    record.down.insert(key, down);
                }
                fresh
            }
            _ => record.down.remove(&key).is_some(),
        };
        if changed {
            let expired =
                |d: &Down| now_ms().saturating_sub(d.at_ms) >= DOWN_TTL.as_millis() as u64;
            record.down.retain(|_, d| !expired(d));
            self.save(&record);
        }
    }

    /// A small file written plainly (see the module comment); a failure is only logged.
    fn save(&self, record: &Record) {
        let Ok(data) = serde_json::to_vec(record) else {
            return;
        };
        let tmp = self
            .path
            .with_extension(format!("json.{}", std::process::id()));
        let written = (|| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&data)?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            tracing::debug!("peer health record {}: {e}", self.path.display());
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> DaemonAddr {
        DaemonAddr {
            host: "198.18.0.9".into(),
            port,
            token: None,
            tunnel: None,
        }
    }

    #[test]
    fn a_failed_peer_gets_a_short_deadline_until_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/peer-health.json");
        let full = Duration::from_millis(2500);
        let h = PeerHealth::load(path.clone());
        assert_eq!(h.deadline(&addr(1), full), full);
        let timeout: Result<(), ClientError> = Err(ClientError::Timeout {
            addr: addr(1).authority(),
            after: full,
        });
        h.record(&addr(1), &timeout);
        assert_eq!(h.deadline(&addr(1), full), RECHECK);
        assert_eq!(h.deadline(&addr(2), full), full, "only that peer");
        // The next command (another process) reads it from the file.
        let next = PeerHealth::load(path.clone());
        assert_eq!(next.deadline(&addr(1), full), RECHECK);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Any answer clears it, for later commands too.
        next.record(&addr(1), &Ok(()));
        assert_eq!(next.deadline(&addr(1), full), full);
        assert_eq!(PeerHealth::load(path).deadline(&addr(1), full), full);
    }

    #[test]
    fn a_failure_is_forgotten_after_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let h = PeerHealth::load(dir.path().join("peer-health.json"));
        let old = now_ms() - DOWN_TTL.as_millis() as u64 - 1;
        let down = Down {
            at_ms: old,
            error: "x".into(),
        };
        h.record.lock().down.insert(addr(1).authority(), down);
        let full = Duration::from_secs(2);
        assert_eq!(h.deadline(&addr(1), full), full);
    }
}
